// mode: preload direct glibc
// expect: abort
// stderr: xalloc: free(): double free $PTR
// stderr@glibc: double free or corruption (!prev)
//
// A medium block (100 KB) is freed, then other blocks (medium neighbours
// allocated right after it, whose freed runs may merge with its own, and
// small ones) are freed, with no allocation in between, then the first
// block is freed again: caught as a double free.
#include "testhelper.h"

int main(void)
{
    printf("misuse_double_free_medium_between: start\n");
    fflush(stdout);
    char *m[4];
    void *s[20];
    for (int i = 0; i < 4; i++) {
        m[i] = malloc(th_size(100 * 1000));
        CHECK(m[i] != NULL);
        memset(m[i], 0x70 + i, 100 * 1000);
    }
    for (int i = 0; i < 20; i++) {
        s[i] = malloc(th_size(64));
        CHECK(s[i] != NULL);
    }
    char *a = m[1];
    th_announce_ptr(a); /* before the frees: printing may allocate */
    free(a);
    free(m[0]);
    free(m[2]);
    for (int i = 0; i < 20; i++)
        free(s[i]);
    free(th_launder(a));
    th_misuse_not_detected("second free of a 100 KB block");
}

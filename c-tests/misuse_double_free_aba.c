// mode: preload direct glibc
// expect: abort
// stderr: xalloc: free(): double free $PTR
// stderr@glibc: free(): double free detected in tcache 2
//
// free(a); free(b); free(a) with a and b small blocks of one class: a is no
// longer the most recently freed block (b is on top of it in the cache), and
// the second free of a is still caught: a freed block carries the free mark
// until it is handed out again.
#include "testhelper.h"

int main(void)
{
    void *a = malloc(th_size(48));
    void *b = malloc(th_size(48));
    CHECK(a != NULL && b != NULL && a != b);
    memset(a, 0x11, 48);
    memset(b, 0x22, 48);
    th_announce_ptr(a); /* before the frees: printing may allocate */
    free(a);
    free(b);
    free(th_launder(a));
    th_misuse_not_detected("free(a); free(b); free(a)");
}

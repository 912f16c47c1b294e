// mode: preload direct
// expect: abort
// stderr: xalloc: free(): invalid pointer $PTR
//
// free() of a pointer inside a large block whose pages earlier held small-block slabs (the page
// map there still marks them as a freed run) is reported as an invalid pointer, not as a double
// free.
#include "testhelper.h"

#define N 20000
#define TRIES 8

int main(void)
{
    static void *small[N];
    uintptr_t lo = UINTPTR_MAX, hi = 0;
    for (int i = 0; i < N; i++) {
        small[i] = malloc(256);
        CHECK(small[i] != NULL);
        memset(small[i], 1, 256);
        uintptr_t a = (uintptr_t)small[i];
        lo = a < lo ? a : lo;
        hi = a > hi ? a : hi;
    }
    for (int i = 0; i < N; i++)
        free(small[i]);
    /* 5 MB of slabs went back to the buddy; 1 MiB blocks now take those pages */
    unsigned char *reused = NULL;
    for (int i = 0; i < TRIES && !reused; i++) {
        unsigned char *p = (unsigned char *)malloc(TH_MIB);
        CHECK(p != NULL);
        memset(p, 0, TH_MIB);
        if ((uintptr_t)p >= lo && (uintptr_t)p + TH_MIB <= hi)
            reused = p;
    }
    CHECK(reused != NULL);
    void *inner = th_launder(reused + 16 * 4096);
    th_announce_ptr(inner);
    free(inner);
    th_misuse_not_detected("free(p + 64 KiB)");
}

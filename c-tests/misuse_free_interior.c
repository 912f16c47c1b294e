// mode: preload direct glibc
// expect: abort
// stderr: xalloc: free(): invalid pointer $PTR
// stderr@glibc: free(): invalid pointer
//
// free() of a pointer into the middle of a small block (p + 8 of a
// malloc(64)) is detected.
#include "testhelper.h"

int main(void)
{
    unsigned char *p = (unsigned char *)malloc(64);
    CHECK(p != NULL);
    memset(p, 0, 64);
    void *inner = th_launder(p + 8);
    th_announce_ptr(inner);
    free(inner);
    th_misuse_not_detected("free(p + 8)");
}

// mode: preload direct glibc
// expect: abort
// stderr: xalloc: free(): invalid pointer $PTR
// stderr@glibc: free(): invalid pointer
//
// free() of a pointer one page into a large (1 MiB) block is detected.
#include "testhelper.h"

int main(void)
{
    unsigned char *p = (unsigned char *)malloc(TH_MIB);
    CHECK(p != NULL);
    memset(p, 0, TH_MIB);
    void *inner = th_launder(p + 4096);
    th_announce_ptr(inner);
    free(inner);
    th_misuse_not_detected("free(p + 4096)");
}

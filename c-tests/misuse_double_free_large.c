// mode: preload direct
// expect: abort
// stderr: xalloc: free():
// stderr: $PTR
//
// A double free of a large (1 MiB) block is detected (reported as a double
// free or an invalid pointer), not a crash or silent corruption.
#include "testhelper.h"

int main(void)
{
    void *p = malloc(TH_MIB);
    CHECK(p != NULL);
    memset(p, 0x5a, TH_MIB);
    th_announce_ptr(p);
    free(p);
    free(th_launder(p));
    th_misuse_not_detected("second free(p) of a 1 MiB block");
}

// mode: preload direct
// expect: abort
// stderr: xalloc: free():
// stderr: $PTR
//
// A double free of a huge (64 MiB) block is detected (reported as a double
// free or an invalid pointer), even though its memory went back to the
// system at the first free.
#include "testhelper.h"

int main(void)
{
    void *p = malloc(64 * TH_MIB);
    CHECK(p != NULL);
    memset(p, 0x5a, 4096);
    th_announce_ptr(p);
    free(p);
    free(th_launder(p));
    th_misuse_not_detected("second free(p) of a 64 MiB block");
}

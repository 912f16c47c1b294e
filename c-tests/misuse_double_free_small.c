// mode: preload direct glibc
// expect: abort
// stderr: xalloc: free(): double free $PTR
// stderr@glibc: free(): double free detected
//
// An immediate double free of a small block is detected.
#include "testhelper.h"

int main(void)
{
    void *p = malloc(32);
    CHECK(p != NULL);
    memset(p, 0x5a, 32);
    th_announce_ptr(p);
    free(p);
    free(th_launder(p));
    th_misuse_not_detected("second free(p)");
}

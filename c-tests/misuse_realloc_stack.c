// mode: preload direct glibc
// expect: abort
// stderr: xalloc: realloc(): invalid pointer $PTR
// stderr@glibc: realloc(): invalid pointer
//
// realloc() of a stack address is detected.
#include "testhelper.h"

int main(void)
{
    struct {
        uint64_t pad[4];
        _Alignas(16) unsigned char buf[64];
    } frame;
    memset(&frame, 0, sizeof frame);
    void *p = th_launder(frame.buf);
    free(malloc(10));
    th_announce_ptr(p);
    void *q = realloc(p, 100);
    (void)q;
    th_misuse_not_detected("realloc(stack address)");
}

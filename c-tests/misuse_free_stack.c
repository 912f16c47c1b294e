// mode: preload direct glibc
// expect: abort
// stderr: xalloc: free(): invalid pointer $PTR
// stderr@glibc: free(): invalid pointer
//
// free() of a stack address is detected and aborts with a message that
// names the pointer.
#include "testhelper.h"

int main(void)
{
    /* zeroed bytes before the buffer make the C library's own check take
     * its "invalid pointer" path too (used by the glibc trial) */
    struct {
        uint64_t pad[4];
        _Alignas(16) unsigned char buf[64];
    } frame;
    memset(&frame, 0, sizeof frame);
    void *p = th_launder(frame.buf);
    free(malloc(10)); /* the allocator is initialised */
    th_announce_ptr(p);
    free(p);
    th_misuse_not_detected("free(stack address)");
}

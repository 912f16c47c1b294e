// mode: preload direct
// expect: abort
// stderr: xalloc: malloc_usable_size(): invalid pointer $PTR
//
// malloc_usable_size() of a stack address is detected.
#include "testhelper.h"

int main(void)
{
    _Alignas(16) unsigned char buf[64];
    memset(buf, 0, sizeof buf);
    void *p = th_launder(buf);
    free(malloc(10));
    th_announce_ptr(p);
    size_t n = malloc_usable_size(p);
    printf("malloc_usable_size returned %zu\n", n);
    th_misuse_not_detected("malloc_usable_size(stack address)");
}

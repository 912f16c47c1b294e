// mode: preload direct
// expect: abort
// stderr: xalloc: free(): invalid pointer $PTR
//
// free() of memory that came from the program's own mmap() is detected
// without touching bytes outside the mapping.
#include "testhelper.h"

#include <sys/mman.h>

int main(void)
{
    free(malloc(10)); /* the allocator is initialised */
    void *m = mmap(NULL, 65536, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK(m != MAP_FAILED);
    memset(m, 0, 65536);
    th_announce_ptr(m);
    free(m);
    th_misuse_not_detected("free(mmap'ed memory)");
}

// mode: preload direct
// expect: abort
// stderr: xalloc: operator delete(): size 50000 does not match the block $PTR (a block of 102400 bytes)
//
// A sized delete with the wrong size is caught for a medium block too: the
// block must have as many pages as the size needs, or at most a quarter more
// (a cached run a little larger than asked for).
#include "testhelper.h"

#include <new>

int main()
{
    void *p = ::operator new(100000);
    th_announce_ptr(p);
    ::operator delete[](th_launder(p), th_size(50000));
    th_misuse_not_detected("operator delete[](p, 50000) of a 100000-byte block");
}

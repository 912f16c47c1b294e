// mode: preload direct
// expect: abort
// stderr: xalloc: operator delete(): size 100 does not match the block $PTR (a block of 32 bytes)
//
// A sized delete with the wrong size (deleting an object as a type it is not)
// is caught: the size must be one that gives the block's size class.
#include "testhelper.h"

#include <new>

int main()
{
    void *p = ::operator new(24);
    th_announce_ptr(p);
    ::operator delete(th_launder(p), th_size(100));
    th_misuse_not_detected("operator delete(p, 100) of a 24-byte block");
}

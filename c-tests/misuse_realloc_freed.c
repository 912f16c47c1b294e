// mode: preload direct
// expect: abort
// stderr: xalloc: realloc(): double free $PTR
//
// realloc() of a small block the same thread has just freed is detected
// (the block is still on top of its slab's free list).
#include "testhelper.h"

int main(void)
{
    void *p = malloc(th_size(64));
    CHECK(p != NULL);
    th_announce_ptr(p); /* before free: printing may allocate and reuse the block */
    free(p);
    void *q = realloc(p, th_size(32));
    (void)q;
    th_misuse_not_detected("realloc(freed small block)");
}

// mode: preload direct
// expect: abort
// stderr: xalloc: free(): double free $PTR
//
// A small block freed when the thread's cache for its class is already full
// goes straight to its slab's free list; freed again after 10 more frees of
// the class, it is still caught (the free mark stays on it in the slab's
// lists too).  20 frees first fill the cache (at most 16 blocks per class).
// glibc is not covered: there the block sits below the top of a fastbin,
// which glibc does not search.
#include "testhelper.h"

#define BEFORE 20
#define AFTER 10

int main(void)
{
    void *o[BEFORE + AFTER];
    void *a = malloc(th_size(48));
    CHECK(a != NULL);
    memset(a, 0x55, 48);
    for (int i = 0; i < BEFORE + AFTER; i++) {
        o[i] = malloc(th_size(48));
        CHECK(o[i] != NULL && o[i] != a);
        memset(o[i], 0x66, 48);
    }
    th_announce_ptr(a); /* before the frees: printing may allocate */
    for (int i = 0; i < BEFORE; i++)
        free(o[i]);
    free(a);
    CHECK_NOT_OWNED(a);
    for (int i = BEFORE; i < BEFORE + AFTER; i++)
        free(o[i]);
    free(th_launder(a));
    th_misuse_not_detected("second free of a block on its slab's free list");
}

// mode: preload direct glibc
// expect: abort
// stderr: xalloc: realloc(): double free $PTR
// stderr@glibc: free(): double free detected in tcache 2
//
// realloc() of a freed small block that is no longer the most recently
// freed one (free(a); free(b); realloc(a, 100)), to a size that needs a
// new block: caught before anything is copied.  (glibc reaches its free of
// the old block and catches it there.)
#include "testhelper.h"

int main(void)
{
    void *a = malloc(th_size(48));
    void *b = malloc(th_size(48));
    CHECK(a != NULL && b != NULL);
    th_announce_ptr(a); /* before the frees: printing may allocate */
    free(a);
    free(b);
    void *q = realloc(th_launder(a), th_size(100));
    (void)q;
    th_misuse_not_detected("realloc(a, 100) after free(a); free(b)");
}

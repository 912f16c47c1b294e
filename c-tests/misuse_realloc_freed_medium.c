// mode: preload direct
// expect: abort
// stderr: xalloc: realloc(): double free $PTR
//
// realloc() of a freed page-run block (100 KiB) is detected: its pages are
// marked as a freed run.
#include "testhelper.h"

int main(void)
{
    void *p = malloc(th_size(100 * 1024));
    CHECK(p != NULL);
    memset(p, 1, 100 * 1024);
    th_announce_ptr(p); /* before free: printing may allocate and reuse the block */
    free(p);
    void *q = realloc(p, th_size(200 * 1024));
    (void)q;
    th_misuse_not_detected("realloc(freed 100 KiB block)");
}

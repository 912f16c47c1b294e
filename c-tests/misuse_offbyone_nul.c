// mode: preload direct
// expect: abort
// stderr: xalloc: malloc(): corrupted free list at $PTR
//
// An off-by-one string copy writes its NUL into the first byte of the next
// block, which is free: the low byte of its encoded free-list link becomes
// zero.  The link mask's low four bits are never all zero, so the decoded
// link is not 16-byte aligned and the next pop aborts naming that block
// (glibc is not covered: a 32-byte request there has 40 usable bytes, so the
// 33-byte copy does not overflow).  Should the allocator not abort, the
// blocks it returns must at least not be live ones.
#include "testhelper.h"

int main(void)
{
    printf("misuse_offbyone_nul: start\n");
    fflush(stdout);

    char *v[64];
    for (int i = 0; i < 64; i++) {
        v[i] = malloc(th_size(32));
        CHECK(v[i] != NULL);
        memset(v[i], 'A', 32);
    }
    /* The NUL lands on v[11] only if it follows v[10] directly. */
    CHECKF(malloc_usable_size(v[10]) == 32 && v[11] == v[10] + 32,
           "layout: v[10] = %p (usable %zu), v[11] = %p are not adjacent", (void *)v[10],
           malloc_usable_size(v[10]), (void *)v[11]);
    th_announce_ptr(v[11]);
    free(v[37]);
    free(v[11]);
    char s[33];
    memset(s, 'x', 32);
    s[32] = 0;
    strcpy(v[10], s); /* off by one: the NUL goes to v[10][32] == v[11][0] */
    char *q = malloc(th_size(32));
    char *p = malloc(th_size(32));
    CHECK(q != NULL && p != NULL);
    for (int i = 0; i < 64; i++) {
        if (i == 11 || i == 37)
            continue;
        CHECKF(q != v[i] && p != v[i], "malloc returned live block v[%d] = %p", i,
               (void *)v[i]);
    }
    th_misuse_not_detected("malloc after an off-by-one NUL into a freed block");
}

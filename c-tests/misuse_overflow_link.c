// mode: preload direct
// expect: abort
// stderr: xalloc: malloc(): corrupted free list at $PTR
//
// An 8-byte heap overflow from a live small block into the first word (the
// free-list link) of its freed upper neighbour is caught when that block is
// taken again: malloc aborts naming the freed block instead of following
// the forged link.  Blocks of one size class sit back to back in their slab;
// the test picks two adjacent live blocks (checked by address and xa_owns),
// frees the upper one and writes 8 bytes past the usable end of the lower.
// glibc is not covered: its chunk header sits between the blocks, so the
// same overflow hits a size field and goes unnoticed here.
#include "testhelper.h"

#define N 64
#define SZ 48

int main(void)
{
    printf("misuse_overflow_link: start\n");
    fflush(stdout);

    char *v[N];
    for (int i = 0; i < N; i++) {
        v[i] = malloc(th_size(SZ));
        CHECK(v[i] != NULL);
        memset(v[i], 'a' + i % 26, SZ);
        CHECK_OWNED(v[i]);
    }
    /* A pair (lo, hi) of live blocks with hi right after lo. */
    int lo = -1, hi = -1;
    for (int i = 0; i < N && lo < 0; i++) {
        size_t us = malloc_usable_size(v[i]);
        CHECK(us >= SZ);
        for (int j = 0; j < N; j++) {
            if (v[j] == v[i] + us) {
                lo = i;
                hi = j;
                break;
            }
        }
    }
    CHECKF(lo >= 0, "no two of %d blocks of %d bytes are adjacent", N, SZ);
    size_t us = malloc_usable_size(v[lo]);
    printf("lower neighbour %p (usable %zu), freed block %p\n", (void *)v[lo], us,
           (void *)v[hi]);
    th_announce_ptr(v[hi]);

    free(v[hi]);
    CHECK_NOT_OWNED(v[hi]);
    CHECK_OWNED(v[lo]);
    /* The overflow: 8 bytes past the usable end of the lower block. */
    memset(v[lo] + us, 'A', 8);

    /* malloc until the corrupted block would have been popped. */
    for (int k = 0; k < 4 * N; k++) {
        char *p = malloc(th_size(SZ));
        CHECK(p != NULL);
        CHECKF(p != (char *)0x4141414141414141ULL, "malloc returned the forged link %p",
               (void *)p);
        for (int i = 0; i < N; i++)
            CHECKF(i == hi || p != v[i], "malloc returned live block v[%d] = %p", i,
                   (void *)p);
    }
    th_misuse_not_detected("malloc after an overflow into a freed block's link");
}

// mode: preload direct
//
// A thread's run cache: page runs it frees (medium blocks, emptied slabs) serve its next
// medium blocks and slab refills without the shared page lock.
//
// Part 1: after a warm-up, 20 000 rounds of malloc+free of 40 KB, 100 KB and 300 KB blocks
// (each touched) take the shared locks at most a handful of times (printed; asserted <= 16):
// every block comes from the run its last free left in the cache.
// Part 2: the cached runs count as free and dirty memory in xa_stats, never as in use; live
// blocks are exact: in_use returns to the baseline after the frees.
// Part 3: malloc_trim gives the cache back: afterwards no dirty page is left (the whole
// cache went back to the arenas and was purged), and RSS falls.
// Part 4: a block from the cache may be larger than asked (at most a quarter): its usable
// size says so, and all of it is writable.
// Part 5: runs of every origin mixed: many slabs of several classes (batched refills put
// spare runs in the cache), freed, then medium blocks of 33 KB-300 KB kept live, each filled
// over its whole usable size with its own pattern; every pattern intact, and the heap's
// invariants (xa_check_heap) hold throughout.
#include "testhelper.h"
#include "xalloc.h"
#include "xa_stats_helper.h"

static void cycle(size_t n, unsigned char tag)
{
    unsigned char *p = malloc(n);
    CHECK(p != NULL);
    p[0] = tag;
    p[n / 2] = tag;
    p[n - 1] = tag;
    CHECK(p[0] == tag && p[n - 1] == tag);
    free(p);
}

int main(void)
{
    static const size_t sizes[] = {40000, 100000, 300000};
    /* stdout's buffer is allocated by the first printf: before any baseline. */
    printf("run_cache: start\n");
    fflush(stdout);

    /* warm-up: one run of each size in the cache */
    for (int r = 0; r < 4; r++)
        for (int i = 0; i < 3; i++)
            cycle(sizes[i], 1);
    xa_stats_t a = th_xa_stats();
    for (int r = 0; r < 20000; r++)
        cycle(sizes[r % 3], (unsigned char)r);
    xa_stats_t b = th_xa_stats();
    uint64_t locks = b.lock_acquired - a.lock_acquired;
    printf("20000 medium malloc+free rounds: %llu shared-lock acquisitions\n",
           (unsigned long long)locks);
    /* the two xa_stats calls themselves take a few locks: allow those */
    CHECKF(locks <= 16, "%llu shared-lock acquisitions", (unsigned long long)locks);

    /* part 2: the cached runs are free and dirty, not in use */
    CHECKF(b.in_use == a.in_use, "in_use %zu != %zu", b.in_use, a.in_use);
    size_t cached = (40000 / 4096 + 1 + 100000 / 4096 + 1 + 300000 / 4096 + 1) * 4096;
    CHECKF(b.dirty_pages >= cached && b.free_pages >= b.dirty_pages,
           "dirty %zu free %zu, cached runs %zu", b.dirty_pages, b.free_pages, cached);

    /* part 3: malloc_trim empties the cache */
    malloc_trim(0);
    xa_stats_t c = th_xa_stats();
    printf("after malloc_trim: dirty %zu (was %zu), free %zu\n", c.dirty_pages, b.dirty_pages,
           c.free_pages);
    CHECKF(c.dirty_pages == 0, "dirty pages left after malloc_trim: %zu", c.dirty_pages);
    CHECKF(c.in_use == a.in_use, "in_use %zu != %zu", c.in_use, a.in_use);

    /* part 4: a run up to a quarter larger serves a request */
    unsigned char *big = malloc(120 * 4096);
    CHECK(big != NULL);
    free(big); /* a 120-page run in the cache */
    unsigned char *p = malloc(100 * 4096);
    CHECK(p != NULL);
    size_t us = malloc_usable_size(p);
    printf("100-page request after a 120-page free: usable %zu pages\n", us / 4096);
    CHECKF(us >= 100 * 4096 && us <= 125 * 4096, "usable %zu", us);
    memset(p, 7, us);
    CHECK(p[us - 1] == 7);
    free(p);

    /* part 5 */
    void *s2 = th_sym("xa_check_heap", 1);
    int (*check_heap)(void);
    memcpy(&check_heap, &s2, sizeof check_heap);
    static const size_t small[] = {100, 200, 500, 1000, 2000, 3000, 6000, 10000, 20000};
    enum { PER = 2000, MED = 200 };
    static void *v[PER];
    static unsigned char *m[MED];
    static size_t mlen[MED];
    uint64_t rng = 42;
    for (int round = 0; round < 3; round++) {
        for (size_t k = 0; k < sizeof small / sizeof small[0]; k++) {
            for (int i = 0; i < PER; i++) {
                v[i] = malloc(small[k]);
                CHECK(v[i] != NULL);
                memset(v[i], 1, small[k]);
            }
            for (int i = 0; i < PER; i++)
                free(v[i]);
            CHECK(check_heap() == 0);
            for (int i = 0; i < MED; i++) {
                size_t n = th_rand_range(&rng, 33000, 300000);
                m[i] = malloc(n);
                CHECK(m[i] != NULL);
                mlen[i] = malloc_usable_size(m[i]);
                CHECK(mlen[i] >= n);
                th_fill(m[i], 0, mlen[i], (uint64_t)i * 7 + (uint64_t)round);
            }
            for (int i = 0; i < MED; i++) {
                CHECK_PAT(m[i], 0, mlen[i], (uint64_t)i * 7 + (uint64_t)round);
                free(m[i]);
            }
            CHECK(check_heap() == 0);
        }
    }
    printf("mixed slab and medium runs: patterns intact\n");
    return 0;
}

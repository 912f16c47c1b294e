// mode: preload direct
//
// calloc of a large block that reuses freed memory clears it without
// making its untouched pages resident: an 8 MiB block of which only two
// pages were written is freed and calloc'd back (the same run, whose pages
// the allocator only knows as "may hold data") ten times; the resident set
// may grow by a few pages each time, not by 8 MiB. The blocks read as zero
// throughout, including pages written before the free. Then blocks of 64
// KiB .. 2 MiB with a random subset of pages written are freed and
// calloc'd back in a scrambled order and checked to be zero.
#include "testhelper.h"

#define BIG (8 * TH_MIB)
#define PG 4096

static void touch_some(unsigned char *p, size_t n, uint64_t *rng, int every)
{
    for (size_t off = 0; off < n; off += PG)
        if (th_rand(rng) % (uint64_t)every == 0)
            memset(p + off, 0xAB, PG < n - off ? PG : n - off);
}

int main(void)
{
    /* Warm up: a fully written 8 MiB block, freed, so the run is dirty. */
    unsigned char *p = malloc(BIG);
    CHECK(p != NULL);
    memset(p, 0xCD, BIG);
    free(p);

    size_t grew = 0;
    for (int round = 0; round < 10; round++) {
        size_t before = th_rss_bytes();
        unsigned char *q = calloc(1, BIG);
        CHECK(q != NULL);
        size_t after = th_rss_bytes();
        grew += after > before ? after - before : 0;
        CHECK_ALL_BYTES(q, BIG, 0);
        /* write the first and last page only, then give it back */
        q[0] = 1;
        q[BIG - 1] = 1;
        free(q);
    }
    printf("resident growth over 10 calloc(8 MiB) of a reused run: %zu KiB\n", grew / 1024);
    CHECKF(grew < 2 * TH_MIB, "calloc made %zu KiB resident over 10 rounds", grew / 1024);

    /* Partly written blocks of many sizes, calloc'd back in another order. */
    enum { N = 64 };
    static unsigned char *b[N];
    static size_t n[N];
    uint64_t rng = 0x5BA45EULL;
    for (int round = 0; round < 8; round++) {
        for (int i = 0; i < N; i++) {
            n[i] = th_rand_range(&rng, 64 * TH_KIB, 2 * TH_MIB);
            b[i] = malloc(n[i]);
            CHECK(b[i] != NULL);
            touch_some(b[i], n[i], &rng, 1 + round % 4);
        }
        for (int i = 0; i < N; i++)
            free(b[(i * 37) % N]);
        for (int i = 0; i < N; i++) {
            b[i] = calloc(n[i], 1);
            CHECKF(b[i] != NULL, "calloc(%zu, 1)", n[i]);
            CHECK_ALL_BYTES(b[i], n[i], 0);
            touch_some(b[i], n[i], &rng, 2);
        }
        for (int i = 0; i < N; i++)
            free(b[i]);
    }
    return 0;
}

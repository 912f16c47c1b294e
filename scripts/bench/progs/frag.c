/*
 * frag.c - fragmentation and memory return, single thread, one shot.
 *
 *   Phase 1: allocate 400000 blocks, 99% log-uniform 16..4096 B and 1%
 *            log-uniform 16..256 KiB; every page of each block is written.
 *            Record RSS (rss_phase1_kb).
 *   Phase 2: free a random 90% of them.
 *   Phase 3: allocate blocks of 24..96 B (uniform) until as many bytes as
 *            phase 2 freed are live again, so the live total is about the
 *            same as in phase 1 but in a different size mix. Record RSS
 *            (rss_phase3_kb) and the requested live bytes (live_kb).
 *   Phase 4: free everything, sleep 300 ms, do 1000 malloc/free pairs of
 *            32 B (a chance for lazy allocators to purge), sleep 300 ms,
 *            record RSS (rss_final_kb).
 *
 * Measures whether memory freed by one size class can be reused by
 * another (rss_phase3_kb vs live_kb) and whether freed memory is returned
 * to the OS (rss_final_kb).
 *
 * SCALE is ignored: the program always runs once. ops = allocations in
 * phases 1-3; secs = time of phases 1-3.
 */
#include "bench.h"

#define N1 400000
#define PAGE 4096

static const char *const modes[] = { "frag" };

/* write the header pattern and one word in every page */
static void fill(void *p, size_t n, uint64_t tag)
{
    fill_hdr_block(p, n, tag);
    for (size_t off = PAGE; off + 8 <= n - 8; off += PAGE)
        put64((unsigned char *)p + off, tag);
}

static void check(void *p, size_t maxn)
{
    size_t n = check_hdr_block(p, maxn);
    uint64_t tag = get64((unsigned char *)p + 8);
    for (size_t off = PAGE; off + 8 <= n - 8; off += PAGE)
        if (get64((unsigned char *)p + off) != tag)
            corrupt("page word", p);
}

int main(int argc, char **argv)
{
    (void)bench_args(argc, argv, modes, 1);
    struct rng r = rng_make(0xF2A6);
    uint64_t ops = 0, tag = 0;
    size_t live = 0, freed = 0;

    double t0 = now_sec();
    /* phase 1 */
    void **a = xmalloc(N1 * sizeof *a);
    for (size_t i = 0; i < N1; i++) {
        size_t n = rng_below(&r, 100) == 0 ? rng_logu(&r, 16384, 262144)
                                           : rng_logu(&r, 16, 4096);
        a[i] = xmalloc(n);
        fill(a[i], n, ++tag);
        live += n;
    }
    ops += N1;
    double t1 = now_sec();
    long rss1 = rss_kb();

    /* phase 2: free 90%, keep the survivors at the front of a[] */
    double t2 = now_sec();
    size_t kept = 0;
    for (size_t i = 0; i < N1; i++) {
        if (rng_below(&r, 10) != 0) {
            size_t n = (size_t)(get64(a[i]) ^ HDR_KEY);
            check(a[i], 262144);
            free(a[i]);
            freed += n;
        } else {
            a[kept++] = a[i];
        }
    }
    live -= freed;

    /* phase 3: small blocks until the freed bytes are live again */
    size_t cap = freed / 24 + 1, nb = 0, got = 0;
    void **b = xmalloc(cap * sizeof *b);
    while (got < freed && nb < cap) {
        size_t n = rng_range(&r, 24, 96);
        b[nb] = xmalloc(n);
        fill_hdr_block(b[nb], n, ++tag);
        nb++;
        got += n;
    }
    ops += nb;
    live += got;
    double t3 = now_sec();
    long rss3 = rss_kb();
    double secs = (t1 - t0) + (t3 - t2);

    /* phase 4 */
    for (size_t i = 0; i < kept; i++) {
        check(a[i], 262144);
        free(a[i]);
    }
    for (size_t i = 0; i < nb; i++) {
        check_hdr_block(b[i], 96);
        free(b[i]);
    }
    free(a);
    free(b);
    sleep_ms(300);
    for (int i = 0; i < 1000; i++) {
        void *p = xmalloc(32);
        fill_block(p, 32, (uint64_t)i);
        check_block(p, 32, (uint64_t)i);
        free(p);
    }
    sleep_ms(300);
    long rssf = rss_kb();

    report(ops, secs,
           "rss_phase1_kb=%ld rss_phase3_kb=%ld rss_final_kb=%ld live_kb=%zu",
           rss1, rss3, rssf, live / 1024);
    return 0;
}

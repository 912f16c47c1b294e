/*
 * churn.c - steady-state random replacement, single thread.
 *
 * A working set of 20000 slots is filled once; then each step frees a
 * random slot and allocates a new block into it (written, and checked
 * before it is freed). Measures the malloc/free fast path under a random
 * (non-LIFO) free pattern and how well freed space of one size is reused
 * for another.
 *
 * Modes:
 *   fixed     all blocks 64 B (pure size-class fast path)
 *   uniform   sizes uniform in 8..512 B (many size classes mixed)
 *   powerlaw  size = 8<<k plus a random offset inside [8<<k, 16<<k), with
 *             P(k) proportional to 2^(-k/2), k = 0..8 (8 B..4 KiB):
 *             about 80% of blocks are <= 128 B, about 5% are >= 1 KiB
 *
 * Timed section: the replacement steps only (not the initial fill).
 * ops = allocations in the timed section.
 */
#include "bench.h"

#define SLOTS 20000
#define PL_BUCKETS 9

enum { FIXED, UNIFORM, POWERLAW };
static const char *const modes[] = { "fixed", "uniform", "powerlaw" };
/* replacement steps at scale 1.0 */
static const uint64_t steps_base[] = { 20000000, 12000000, 10000000 };

static uint64_t pl_cut[PL_BUCKETS]; /* cumulative thresholds out of 2^32 */

static void powerlaw_init(void)
{
    double w[PL_BUCKETS], sum = 0, acc = 0;
    for (int k = 0; k < PL_BUCKETS; k++)
        sum += w[k] = pow(2.0, -0.5 * k);
    for (int k = 0; k < PL_BUCKETS; k++) {
        acc += w[k];
        pl_cut[k] = (uint64_t)(acc / sum * 4294967296.0);
    }
    pl_cut[PL_BUCKETS - 1] = 1ull << 32;
}

static size_t pick_size(struct rng *r, int mode)
{
    switch (mode) {
    case FIXED:
        return 64;
    case UNIFORM:
        return rng_range(r, 8, 512);
    default: {
        uint64_t u = rng_next(r) >> 32;
        int k = 0;
        while (u >= pl_cut[k])
            k++;
        size_t base = (size_t)8 << k;
        return base + (size_t)rng_below(r, base);
    }
    }
}

int main(int argc, char **argv)
{
    struct bench_opts o = bench_args(argc, argv, modes, 3);
    uint64_t steps = scaled(steps_base[o.mode], o.scale);
    struct rng r = rng_make(0xC0FFEE + (uint64_t)o.mode);
    powerlaw_init();

    static void *ptr[SLOTS];
    static uint32_t len[SLOTS];
    static uint32_t tag[SLOTS];
    uint32_t serial = 0;

    for (int i = 0; i < SLOTS; i++) {
        len[i] = (uint32_t)pick_size(&r, o.mode);
        tag[i] = serial++;
        ptr[i] = xmalloc(len[i]);
        fill_block(ptr[i], len[i], tag[i]);
    }

    double t0 = now_sec();
    for (uint64_t s = 0; s < steps; s++) {
        size_t i = (size_t)rng_below(&r, SLOTS);
        check_block(ptr[i], len[i], tag[i]);
        free(ptr[i]);
        len[i] = (uint32_t)pick_size(&r, o.mode);
        tag[i] = serial++;
        ptr[i] = xmalloc(len[i]);
        fill_block(ptr[i], len[i], tag[i]);
    }
    double secs = now_sec() - t0;

    for (int i = 0; i < SLOTS; i++) {
        check_block(ptr[i], len[i], tag[i]);
        free(ptr[i]);
    }
    report(steps, secs, NULL);
    return 0;
}

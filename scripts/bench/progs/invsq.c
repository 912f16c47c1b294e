/*
 * invsq.c - per-thread churn with an inverse-square size distribution.
 *
 * THREADS threads, each with its own working set of SLOTS blocks and no
 * sharing: every step frees a random slot (after checking it) and
 * allocates a new block for it, of a size drawn with density proportional
 * to 1/size^2 between 8 B and 32 KiB (half the blocks are at most 16 B,
 * about one in 200 is above 2 KiB, one in 2000 above 16 KiB), writes it
 * and keeps it.
 *
 * Stresses the thread-local small-block paths with a long tail of sizes:
 * most requests hit a few small classes, while the rare large ones go
 * through slabs of big classes (or page runs) that fill and empty slowly.
 *
 * ops = allocations in the timed section, all threads.
 */
#include "bench.h"

#define SLOTS 1000
#define MINSZ 8
#define MAXSZ 32768
#define STEPS 4000000ull /* per thread at scale 1.0 */

static const char *const modes[] = { "invsq" };
static uint64_t steps;

/* inverse CDF of the density c / s^2 on [MINSZ, MAXSZ] */
static size_t pick_size(struct rng *r)
{
    const double a = 1.0 / MINSZ, b = 1.0 / MAXSZ;
    double s = 1.0 / (a - rng_unit(r) * (a - b));
    size_t n = (size_t)s;
    return n < MINSZ ? MINSZ : n > MAXSZ ? MAXSZ : n;
}

static void *worker(void *arg)
{
    uint64_t seed = (uint64_t)(uintptr_t)arg;
    struct rng r = rng_make(seed);
    static _Thread_local void *p[SLOTS];
    static _Thread_local uint32_t len[SLOTS];
    static _Thread_local uint64_t tag[SLOTS];

    for (size_t i = 0; i < SLOTS; i++) {
        len[i] = (uint32_t)pick_size(&r);
        tag[i] = seed * 1000003 + i;
        p[i] = xmalloc(len[i]);
        fill_block(p[i], len[i], tag[i]);
    }
    for (uint64_t s = 0; s < steps; s++) {
        size_t i = (size_t)rng_below(&r, SLOTS);
        check_block(p[i], len[i], tag[i]);
        free(p[i]);
        len[i] = (uint32_t)pick_size(&r);
        tag[i] = seed * 1000003 + SLOTS + s;
        p[i] = xmalloc(len[i]);
        fill_block(p[i], len[i], tag[i]);
    }
    for (size_t i = 0; i < SLOTS; i++) {
        check_block(p[i], len[i], tag[i]);
        free(p[i]);
    }
    return NULL;
}

int main(int argc, char **argv)
{
    struct bench_opts o = bench_args(argc, argv, modes, 1);
    int nt = o.threads;
    steps = scaled(STEPS, o.scale);
    pthread_t *tid = xmalloc((size_t)nt * sizeof *tid);

    double t0 = now_sec();
    for (int t = 0; t < nt; t++)
        xthread(&tid[t], worker, (void *)(uintptr_t)(t + 1));
    for (int t = 0; t < nt; t++)
        pthread_join(tid[t], NULL);
    double secs = now_sec() - t0;

    free(tid);
    report(steps * (uint64_t)nt, secs, NULL);
    return 0;
}

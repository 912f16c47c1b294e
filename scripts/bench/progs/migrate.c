/*
 * migrate.c - rounds of short-lived threads whose objects outlive them.
 *
 * A shared exchange of SLOTS pointers lives for the whole run. Each round
 * creates THREADS threads and joins them. Thread t of a round makes
 * STEPS * (t % 4 + 1) steps; each step it allocates a block with calloc
 * and appends it to its own array of blocks (grown with realloc), then
 * with probability 2/3 checks and frees a random entry of the array, and
 * with probability 1/4 swaps a random entry with a random exchange slot
 * (one atomic exchange). About 3/5 of a thread's blocks are live when it
 * ends and frees its array. Blocks that went through the exchange move to
 * other threads of the round and to the threads of later rounds, which
 * free them after their first owners have exited; the main thread frees
 * what is left at the end.
 *
 * Sizes: 16 B times a power of two up to 256 B, each equally likely; one
 * block in 100 is 64 times that (1-16 KiB), one in 1000 1024 times
 * (16-256 KiB), one in 10 000 8192 times (128 KiB-2 MiB).
 *
 * Stresses memory reuse across thread lifetimes: heaps of exited threads
 * with blocks still live elsewhere, remote frees into them, large blocks
 * freed by threads that did not allocate them, and a growing pointer
 * array per thread. Peak RSS is the figure to watch.
 *
 * ops = allocations by all threads.
 */
#include <stdatomic.h>
#include "bench.h"

#define ROUNDS 40     /* at scale 1.0 */
#define STEPS 10000   /* per thread, times (t % 4 + 1) */
#define SLOTS 1000    /* shared exchange */
#define GROW 4096     /* array growth, entries */
#define MAXSZ (256 * 8192)

static const char *const modes[] = { "migrate" };

static _Atomic(void *) exchange[SLOTS];

struct job {
    uint64_t seed;
    uint64_t steps;
};

static size_t pick_size(struct rng *r)
{
    size_t n = (size_t)16 << rng_below(r, 5);   /* 16 .. 256 B */
    uint64_t u = rng_below(r, 10000);
    if (u == 0)
        n *= 8192;
    else if (u < 10)
        n *= 1024;
    else if (u < 100)
        n *= 64;
    return n;
}

static void drop(void *p)
{
    if (p) {
        check_hdr_block(p, MAXSZ);
        free(p);
    }
}

static void *worker(void *arg)
{
    struct job *j = arg;
    struct rng r = rng_make(j->seed);
    void **data = NULL;
    size_t top = 0, cap = 0;

    for (uint64_t s = 0; s < j->steps; s++) {
        if (top == cap) {
            cap += GROW;
            data = realloc(data, cap * sizeof *data);
            if (!data)
                oom(cap * sizeof *data);
        }
        size_t n = pick_size(&r);
        void *p = calloc(1, n);
        if (!p)
            oom(n);
        fill_hdr_block(p, n, j->seed + s);
        data[top++] = p;
        if (rng_below(&r, 3) < 2) {
            size_t i = (size_t)rng_below(&r, top);
            drop(data[i]);
            data[i] = NULL;
        }
        if (rng_below(&r, 4) == 0) {
            size_t i = (size_t)rng_below(&r, top);
            size_t e = (size_t)rng_below(&r, SLOTS);
            data[i] = atomic_exchange_explicit(&exchange[e], data[i],
                                               memory_order_acq_rel);
        }
    }
    for (size_t i = 0; i < top; i++)
        drop(data[i]);
    free(data);
    return NULL;
}

int main(int argc, char **argv)
{
    struct bench_opts o = bench_args(argc, argv, modes, 1);
    int nt = o.threads;
    uint64_t rounds = scaled(ROUNDS, o.scale);
    pthread_t *tid = xmalloc((size_t)nt * sizeof *tid);
    struct job *jobs = xmalloc((size_t)nt * sizeof *jobs);
    uint64_t seed = 0x316A7E, ops = 0;

    double t0 = now_sec();
    for (uint64_t round = 0; round < rounds; round++) {
        for (int t = 0; t < nt; t++) {
            jobs[t].seed = (seed += 1000003);
            jobs[t].steps = STEPS * (uint64_t)(t % 4 + 1);
            ops += jobs[t].steps;
            xthread(&tid[t], worker, &jobs[t]);
        }
        for (int t = 0; t < nt; t++)
            pthread_join(tid[t], NULL);
    }
    for (size_t e = 0; e < SLOTS; e++)
        drop(atomic_exchange(&exchange[e], NULL));
    double secs = now_sec() - t0;

    free(jobs);
    free(tid);
    report(ops, secs, NULL);
    return 0;
}

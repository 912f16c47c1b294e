/*
 * larson.c - server simulation (after the Larson & Krishnan benchmark).
 *
 * A shared array of 4096*THREADS slots holds blocks (16..1024 B, uniform),
 * initially filled by the main thread. Each of THREADS workers loops a fixed
 * (scaled) number of times; every iteration allocates and writes a new
 * block, then with probability 1/2 swaps it into a random shared slot with
 * an atomic exchange and frees the block it got back (most likely allocated
 * by another thread: a remote free), otherwise replaces a random slot of
 * its private 256-slot array (a local free). Every block is checked before
 * it is freed; blocks carry their own size (self-describing header).
 *
 * Stresses cross-thread frees (remote free queues, ownership hand-off),
 * producer/consumer imbalance between heaps, and lock contention.
 *
 * ops = allocations by the workers. The timed section runs from starting
 * the workers to joining them.
 */
#include <pthread.h>
#include "bench.h"

#define SHARED_PER_THREAD 4096
#define LOCAL 256
#define ITERS 1500000ull /* per thread at scale 1.0 */
#define MINSZ 16
#define MAXSZ 1024

static const char *const modes[] = { "larson" };

static void **shared;
static size_t nshared;
static uint64_t iters;

static void *new_block(struct rng *r, uint64_t salt)
{
    size_t n = rng_range(r, MINSZ, MAXSZ);
    void *p = xmalloc(n);
    fill_hdr_block(p, n, salt);
    return p;
}

static void *worker(void *arg)
{
    uint64_t id = (uint64_t)(uintptr_t)arg;
    struct rng r = rng_make(0x1A850A + id * 7919);
    void *local[LOCAL];
    uint64_t salt = id << 40;

    for (int i = 0; i < LOCAL; i++)
        local[i] = new_block(&r, salt++);
    for (uint64_t it = 0; it < iters; it++) {
        void *p = new_block(&r, salt++);
        void *old;
        if (rng_next(&r) & 1) {
            size_t i = (size_t)rng_below(&r, nshared);
            old = __atomic_exchange_n(&shared[i], p, __ATOMIC_ACQ_REL);
        } else {
            size_t i = (size_t)rng_below(&r, LOCAL);
            old = local[i];
            local[i] = p;
        }
        check_hdr_block(old, MAXSZ);
        free(old);
    }
    for (int i = 0; i < LOCAL; i++) {
        check_hdr_block(local[i], MAXSZ);
        free(local[i]);
    }
    return NULL;
}

int main(int argc, char **argv)
{
    struct bench_opts o = bench_args(argc, argv, modes, 1);
    int nt = o.threads;
    iters = scaled(ITERS, o.scale);
    nshared = (size_t)SHARED_PER_THREAD * (size_t)nt;
    shared = xmalloc(nshared * sizeof *shared);
    struct rng r = rng_make(0x1A850);
    for (size_t i = 0; i < nshared; i++)
        shared[i] = new_block(&r, ~(uint64_t)0 - i);

    pthread_t *tid = xmalloc((size_t)nt * sizeof *tid);
    double t0 = now_sec();
    for (int t = 0; t < nt; t++)
        if (pthread_create(&tid[t], NULL, worker, (void *)(uintptr_t)t)) {
            fprintf(stderr, "pthread_create failed\n");
            return 1;
        }
    for (int t = 0; t < nt; t++)
        pthread_join(tid[t], NULL);
    double secs = now_sec() - t0;

    for (size_t i = 0; i < nshared; i++) {
        check_hdr_block(shared[i], MAXSZ);
        free(shared[i]);
    }
    free(shared);
    free(tid);
    report(iters * (uint64_t)nt, secs, NULL);
    return 0;
}

/*
 * threads.c - thread churn: many short-lived threads that allocate.
 *
 * The main thread repeatedly creates THREADS threads and joins them
 * (CREATIONS total at scale 1.0, rounded to whole rounds). Each thread
 * allocates 100 blocks of 16..2048 B (uniform, written), checks and frees
 * half of them, and leaves the other half in its result array; after the
 * join the main thread checks and frees those.
 *
 * Stresses per-thread heap/cache setup and teardown at thread exit, heap
 * reuse by later threads, and frees of blocks whose owning thread has
 * already exited (orphaned memory).
 *
 * ops = allocations by all threads.
 */
#include <pthread.h>
#include "bench.h"

#define CREATIONS 20000ull /* threads created at scale 1.0 */
#define PER_THREAD 100
#define MINSZ 16
#define MAXSZ 2048

static const char *const modes[] = { "threads" };

struct job {
    uint64_t seed;
    void *keep[PER_THREAD / 2];
    uint16_t len[PER_THREAD / 2];
};

static void *worker(void *arg)
{
    struct job *j = arg;
    struct rng r = rng_make(j->seed);
    void *p[PER_THREAD];
    size_t n[PER_THREAD];

    for (int i = 0; i < PER_THREAD; i++) {
        n[i] = rng_range(&r, MINSZ, MAXSZ);
        p[i] = xmalloc(n[i]);
        fill_block(p[i], n[i], j->seed + (uint64_t)i);
    }
    /* free the odd ones here, hand the even ones to the main thread */
    for (int i = 0; i < PER_THREAD; i++) {
        if (i & 1) {
            check_block(p[i], n[i], j->seed + (uint64_t)i);
            free(p[i]);
        } else {
            j->keep[i / 2] = p[i];
            j->len[i / 2] = (uint16_t)n[i];
        }
    }
    return NULL;
}

int main(int argc, char **argv)
{
    struct bench_opts o = bench_args(argc, argv, modes, 1);
    int nt = o.threads;
    uint64_t rounds = scaled(CREATIONS, o.scale) / (uint64_t)nt;
    if (rounds == 0)
        rounds = 1;
    pthread_t *tid = xmalloc((size_t)nt * sizeof *tid);
    struct job *jobs = xmalloc((size_t)nt * sizeof *jobs);
    uint64_t seed = 0x7EAD5;

    double t0 = now_sec();
    for (uint64_t round = 0; round < rounds; round++) {
        for (int t = 0; t < nt; t++) {
            jobs[t].seed = (seed += PER_THREAD);
            if (pthread_create(&tid[t], NULL, worker, &jobs[t])) {
                fprintf(stderr, "pthread_create failed\n");
                return 1;
            }
        }
        for (int t = 0; t < nt; t++) {
            pthread_join(tid[t], NULL);
            for (int k = 0; k < PER_THREAD / 2; k++) {
                check_block(jobs[t].keep[k], jobs[t].len[k],
                            jobs[t].seed + (uint64_t)(2 * k));
                free(jobs[t].keep[k]);
            }
        }
    }
    double secs = now_sec() - t0;

    free(jobs);
    free(tid);
    report(rounds * (uint64_t)nt * PER_THREAD, secs, NULL);
    return 0;
}

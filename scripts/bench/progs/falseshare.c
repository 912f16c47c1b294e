/*
 * falseshare.c - allocator-induced false sharing (after Hoard's
 * cache-scratch and cache-thrash tests).
 *
 * THREADS workers each run R (scaled) rounds of: allocate an 8-byte object,
 * write it 1000 times (volatile increments), check it, free it. If the
 * allocator hands objects on the same cache line to different threads,
 * the writes bounce the line between cores and the run is much slower.
 *
 * Modes:
 *   scratch  the main thread first allocates one 8-byte object per worker
 *            (these are likely adjacent) and hands one to each worker,
 *            which writes it, then frees it before its rounds. An allocator
 *            that gives the freed object (or its neighbours) back to the
 *            freeing thread induces false sharing ("passive").
 *   thrash   no hand-off; each worker allocates its own objects. An
 *            allocator serving several threads from one shared heap
 *            induces false sharing ("active").
 *
 * ops = total allocations (including the handed-off objects).
 */
#include <pthread.h>
#include "bench.h"

#define ROUNDS 400000ull /* per worker at scale 1.0 */
#define WRITES 1000

enum { SCRATCH, THRASH };
static const char *const modes[] = { "scratch", "thrash" };

static uint64_t rounds;

/* Write the object WRITES times and check the result. */
static void hammer(void *obj, uint64_t start)
{
    volatile uint64_t *v = obj;
    *v = start;
    for (int k = 0; k < WRITES; k++)
        *v = *v + 1;
    if (*v != start + WRITES)
        corrupt("8-byte object", obj);
}

static void *worker(void *arg)
{
    void *handed = arg;
    if (handed) {
        hammer(handed, 7);
        free(handed);
    }
    for (uint64_t i = 0; i < rounds; i++) {
        void *p = xmalloc(8);
        hammer(p, i);
        free(p);
    }
    return NULL;
}

int main(int argc, char **argv)
{
    struct bench_opts o = bench_args(argc, argv, modes, 2);
    int nt = o.threads;
    rounds = scaled(ROUNDS, o.scale);
    pthread_t *tid = xmalloc((size_t)nt * sizeof *tid);
    void **objs = xmalloc((size_t)nt * sizeof *objs);
    uint64_t ops = rounds * (uint64_t)nt;

    double t0 = now_sec();
    for (int t = 0; t < nt; t++) {
        objs[t] = NULL;
        if (o.mode == SCRATCH) {
            objs[t] = xmalloc(8);
            ops++;
        }
    }
    for (int t = 0; t < nt; t++)
        if (pthread_create(&tid[t], NULL, worker, objs[t])) {
            fprintf(stderr, "pthread_create failed\n");
            return 1;
        }
    for (int t = 0; t < nt; t++)
        pthread_join(tid[t], NULL);
    double secs = now_sec() - t0;

    free(objs);
    free(tid);
    report(ops, secs, NULL);
    return 0;
}

/*
 * prodcons.c - producer/consumer pairs: allocate in one thread, free in
 * another.
 *
 * THREADS/2 pairs (at least one). Each producer allocates blocks of
 * 16..512 B (uniform), fills them and sends them to its consumer through a
 * lock-free single-producer/single-consumer ring of 1024 entries (C11
 * atomics; sched_yield while full or empty). The consumer checks and frees
 * every block, so every free is a remote free and memory flows one way.
 *
 * Modes:
 *   single  one block per message
 *   batch   a message is a malloc'd array of 64 block pointers; the
 *           consumer frees the blocks and the array
 *
 * Stresses remote-free paths (per-thread heaps that only ever allocate on
 * one side and only ever free on the other), and memory return to the
 * owning heap. ops = block allocations + batch-array allocations.
 */
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include "bench.h"

#define RING 1024
#define BATCH 64
#define BLOCKS 3000000ull /* per producer at scale 1.0 */
#define MINSZ 16
#define MAXSZ 512
#define MAXPAIRS 256

enum { SINGLE, BATCHED };
static const char *const modes[] = { "single", "batch" };

struct ring {
    _Alignas(64) atomic_size_t head; /* written by the producer */
    _Alignas(64) atomic_size_t tail; /* written by the consumer */
    _Alignas(64) void *slot[RING];
};

struct pair {
    struct ring ring;
    uint64_t id;
    uint64_t ops; /* allocations done by the producer */
};

static struct pair pairs[MAXPAIRS]; /* static: keeps the 64 B alignment */
static int mode;
static uint64_t blocks;

static void ring_put(struct ring *q, void *p)
{
    size_t h = atomic_load_explicit(&q->head, memory_order_relaxed);
    while (h - atomic_load_explicit(&q->tail, memory_order_acquire) == RING)
        sched_yield();
    q->slot[h % RING] = p;
    atomic_store_explicit(&q->head, h + 1, memory_order_release);
}

static void *ring_get(struct ring *q)
{
    size_t t = atomic_load_explicit(&q->tail, memory_order_relaxed);
    while (atomic_load_explicit(&q->head, memory_order_acquire) == t)
        sched_yield();
    void *p = q->slot[t % RING];
    atomic_store_explicit(&q->tail, t + 1, memory_order_release);
    return p;
}

static void *new_block(struct rng *r, uint64_t salt)
{
    size_t n = rng_range(r, MINSZ, MAXSZ);
    void *p = xmalloc(n);
    fill_hdr_block(p, n, salt);
    return p;
}

static void *producer(void *arg)
{
    struct pair *pr = arg;
    struct rng r = rng_make(0x9D0C + pr->id * 104729);
    uint64_t salt = pr->id << 40, ops = 0;

    if (mode == SINGLE) {
        for (uint64_t i = 0; i < blocks; i++)
            ring_put(&pr->ring, new_block(&r, salt++));
        ops = blocks;
    } else {
        for (uint64_t i = 0; i < blocks; i += BATCH) {
            void **b = xmalloc(BATCH * sizeof *b);
            for (int k = 0; k < BATCH; k++)
                b[k] = i + (uint64_t)k < blocks ? new_block(&r, salt++) : NULL;
            ops += BATCH + 1;
            ring_put(&pr->ring, b);
        }
    }
    ring_put(&pr->ring, NULL); /* end of stream */
    pr->ops = ops;
    return NULL;
}

static void *consumer(void *arg)
{
    struct pair *pr = arg;
    void *p;
    while ((p = ring_get(&pr->ring)) != NULL) {
        if (mode == SINGLE) {
            check_hdr_block(p, MAXSZ);
            free(p);
        } else {
            void **b = p;
            for (int k = 0; k < BATCH && b[k]; k++) {
                check_hdr_block(b[k], MAXSZ);
                free(b[k]);
            }
            free(b);
        }
    }
    return NULL;
}

int main(int argc, char **argv)
{
    struct bench_opts o = bench_args(argc, argv, modes, 2);
    mode = o.mode;
    blocks = scaled(BLOCKS, o.scale);
    int np = o.threads / 2 > 0 ? o.threads / 2 : 1;
    if (np > MAXPAIRS)
        np = MAXPAIRS;
    pthread_t *tid = xmalloc((size_t)np * 2 * sizeof *tid);

    double t0 = now_sec();
    for (int i = 0; i < np; i++) {
        pairs[i].id = (uint64_t)i;
        if (pthread_create(&tid[2 * i], NULL, consumer, &pairs[i]) ||
            pthread_create(&tid[2 * i + 1], NULL, producer, &pairs[i])) {
            fprintf(stderr, "pthread_create failed\n");
            return 1;
        }
    }
    for (int i = 0; i < 2 * np; i++)
        pthread_join(tid[i], NULL);
    double secs = now_sec() - t0;

    uint64_t ops = 0;
    for (int i = 0; i < np; i++)
        ops += pairs[i].ops;
    free(tid);
    report(ops, secs, NULL);
    return 0;
}

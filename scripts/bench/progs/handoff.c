/*
 * handoff.c - batches of many sizes, freed in reverse order, half of them
 * by another thread.
 *
 * THREADS threads in a ring. Each round a thread allocates a batch of
 * BATCH blocks of 1..1000 B (uniform), writes them, then frees the odd
 * ones itself in reverse order of allocation and passes the even ones to
 * the next thread of the ring (a mutex-protected mailbox holding up to
 * MAILBOX batches; a full mailbox makes the sender wait, freeing its own
 * mailbox's batches meanwhile, or free the batch itself once the receiver
 * has finished). Before each round
 * a thread frees, in reverse order, every batch waiting in its own mailbox,
 * so half of all frees are remote and arrive in bulk.
 *
 * Stresses many size classes at once, LIFO frees over a whole batch, and
 * remote frees that come in large groups to one owner.
 *
 * ops = allocations, all threads.
 */
#include <sched.h>
#include "bench.h"

#define BATCH 512
#define HALF (BATCH / 2)
#define MAILBOX 4
#define ROUNDS 6000ull /* per thread at scale 1.0 */
#define MINSZ 1
#define MAXSZ 1000
#define MAXT 1024

static const char *const modes[] = { "handoff" };

struct batch {
    void *p[HALF];
    uint16_t len[HALF];
    uint64_t tag;
};

struct mailbox {
    pthread_mutex_t lock;
    struct batch *b[MAILBOX];
    int n;
    int done; /* its thread has finished: nobody waits for room any more */
} __attribute__((aligned(64)));

static struct mailbox box[MAXT];
static int nthreads;
static uint64_t rounds;

static void free_batch(struct batch *b)
{
    for (int k = HALF - 1; k >= 0; k--) {
        check_block(b->p[k], b->len[k], b->tag + 2 * (uint64_t)k);
        free(b->p[k]);
    }
    free(b);
}

static void drain(struct mailbox *m)
{
    struct batch *got[MAILBOX];
    pthread_mutex_lock(&m->lock);
    int n = m->n;
    for (int i = 0; i < n; i++)
        got[i] = m->b[i];
    m->n = 0;
    pthread_mutex_unlock(&m->lock);
    for (int i = 0; i < n; i++)
        free_batch(got[i]);
}

static void send(struct mailbox *to, struct mailbox *mine, struct batch *b)
{
    for (;;) {
        pthread_mutex_lock(&to->lock);
        if (to->n < MAILBOX) {
            to->b[to->n++] = b;
            pthread_mutex_unlock(&to->lock);
            return;
        }
        int gone = to->done;
        pthread_mutex_unlock(&to->lock);
        if (gone) {
            free_batch(b);
            return;
        }
        drain(mine); /* never wait with a full mailbox of our own */
        sched_yield();
    }
}

static void *worker(void *arg)
{
    int me = (int)(uintptr_t)arg;
    struct mailbox *mine = &box[me], *next = &box[(me + 1) % nthreads];
    struct rng r = rng_make(0xB47C4 + (uint64_t)me);
    void *p[BATCH];
    size_t len[BATCH];

    for (uint64_t round = 0; round < rounds; round++) {
        drain(mine);
        uint64_t tag = ((uint64_t)me << 40) + round * BATCH;
        for (int i = 0; i < BATCH; i++) {
            len[i] = rng_range(&r, MINSZ, MAXSZ);
            p[i] = xmalloc(len[i]);
            fill_block(p[i], len[i], tag + (uint64_t)i);
        }
        struct batch *b = xmalloc(sizeof *b);
        b->tag = tag;
        for (int k = 0; k < HALF; k++) {
            b->p[k] = p[2 * k];
            b->len[k] = (uint16_t)len[2 * k];
        }
        for (int i = BATCH - 1; i >= 1; i -= 2) {
            check_block(p[i], len[i], tag + (uint64_t)i);
            free(p[i]);
        }
        send(next, mine, b);
    }
    pthread_mutex_lock(&mine->lock);
    mine->done = 1;
    pthread_mutex_unlock(&mine->lock);
    drain(mine);
    return NULL;
}

int main(int argc, char **argv)
{
    struct bench_opts o = bench_args(argc, argv, modes, 1);
    nthreads = o.threads > MAXT ? MAXT : o.threads;
    rounds = scaled(ROUNDS, o.scale);
    for (int t = 0; t < nthreads; t++)
        pthread_mutex_init(&box[t].lock, NULL);
    pthread_t *tid = xmalloc((size_t)nthreads * sizeof *tid);

    double t0 = now_sec();
    for (int t = 0; t < nthreads; t++)
        xthread(&tid[t], worker, (void *)(uintptr_t)t);
    for (int t = 0; t < nthreads; t++)
        pthread_join(tid[t], NULL);
    for (int t = 0; t < nthreads; t++)
        drain(&box[t]);
    double secs = now_sec() - t0;

    free(tid);
    report(rounds * (uint64_t)nthreads * BATCH, secs, NULL);
    return 0;
}

// mode: preload direct glibc
//
// Cross-thread frees: 4 threads in a ring; each allocates blocks, fills
// them with a pattern and hands them to the next thread through a
// mutex-protected queue; the receiver checks the pattern, sometimes
// reallocs the block, and frees it.  Every block is accounted for.
#include "testhelper.h"

#include <pthread.h>

#define NTHREADS 4
#define PER_THREAD 25000

struct msg {
    struct msg *next;
    unsigned char *p;
    size_t n;
    uint64_t seed;
};

struct queue {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    struct msg *head, *tail;
};

static struct queue queues[NTHREADS];
static long received[NTHREADS];

static void push(struct queue *q, struct msg *m)
{
    m->next = NULL;
    pthread_mutex_lock(&q->lock);
    if (q->tail)
        q->tail->next = m;
    else
        q->head = m;
    q->tail = m;
    pthread_cond_signal(&q->cond);
    pthread_mutex_unlock(&q->lock);
}

/* Take the whole list; wait for it only if `wait` is set. */
static struct msg *take_all(struct queue *q, int wait)
{
    pthread_mutex_lock(&q->lock);
    while (wait && q->head == NULL)
        pthread_cond_wait(&q->cond, &q->lock);
    struct msg *m = q->head;
    q->head = q->tail = NULL;
    pthread_mutex_unlock(&q->lock);
    return m;
}

static void consume(int self, struct msg *m, uint64_t *rng)
{
    while (m != NULL) {
        struct msg *next = m->next;
        CHECK_PAT(m->p, 0, m->n, m->seed);
        CHECK_OWNED(m->p);
        if (th_rand(rng) % 8 == 0) {
            size_t bigger = m->n * 2 + 1;
            unsigned char *q = (unsigned char *)realloc(m->p, bigger);
            CHECK(q != NULL);
            CHECK_PAT(q, 0, m->n, m->seed);
            m->p = q;
        }
        free(m->p);
        free(m); /* the message itself was allocated by the sender too */
        received[self]++;
        m = next;
    }
}

static void *worker(void *arg)
{
    int self = (int)(intptr_t)arg;
    int to = (self + 1) % NTHREADS;
    uint64_t rng = 0x9999ULL + (uint64_t)self * 7777;
    for (int i = 0; i < PER_THREAD; i++) {
        uint64_t r = th_rand(&rng);
        size_t n;
        if (r % 500 == 0)
            n = th_rand_range(&rng, 100 * TH_KIB, 2 * TH_MIB);
        else if (r % 20 == 0)
            n = th_rand_range(&rng, 4097, 40000);
        else
            n = th_rand_range(&rng, 1, 512);
        struct msg *m = (struct msg *)malloc(sizeof *m);
        CHECK(m != NULL);
        m->p = (unsigned char *)malloc(n);
        CHECK(m->p != NULL);
        m->n = n;
        m->seed = ((uint64_t)self << 32) | (uint64_t)i;
        th_fill(m->p, 0, n, m->seed);
        push(&queues[to], m);
        if (i % 16 == 0)
            consume(self, take_all(&queues[self], 0), &rng);
    }
    while (received[self] < PER_THREAD)
        consume(self, take_all(&queues[self], 1), &rng);
    return NULL;
}

int main(void)
{
    pthread_t t[NTHREADS];
    for (int i = 0; i < NTHREADS; i++) {
        pthread_mutex_init(&queues[i].lock, NULL);
        pthread_cond_init(&queues[i].cond, NULL);
    }
    for (int i = 0; i < NTHREADS; i++)
        CHECK(pthread_create(&t[i], NULL, worker, (void *)(intptr_t)i) == 0);
    for (int i = 0; i < NTHREADS; i++)
        CHECK(pthread_join(t[i], NULL) == 0);
    for (int i = 0; i < NTHREADS; i++) {
        CHECKF(received[i] == PER_THREAD, "thread %d received %ld", i, received[i]);
        CHECK(queues[i].head == NULL);
    }
    printf("threads_cross ok\n");
    return 0;
}

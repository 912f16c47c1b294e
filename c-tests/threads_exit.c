// mode: preload direct glibc
//
// Threads that exit with live blocks: their blocks stay valid and are
// freed later by the main thread.  Also 200 short-lived threads, each
// leaving blocks behind, created in small concurrent batches.
#include "testhelper.h"

#include <pthread.h>

#define LONG_THREADS 8
#define LONG_BLOCKS 500
#define SHORT_THREADS 200
#define SHORT_BLOCKS 40
#define BATCH 8

struct blk {
    unsigned char *p;
    size_t n;
    uint64_t seed;
};

static struct blk long_blocks[LONG_THREADS][LONG_BLOCKS];
static struct blk short_blocks[SHORT_THREADS][SHORT_BLOCKS];

static size_t pick_size(uint64_t *rng)
{
    uint64_t r = th_rand(rng);
    if (r % 100 == 0)
        return th_rand_range(rng, 200 * TH_KIB, 3 * TH_MIB);
    if (r % 10 == 0)
        return th_rand_range(rng, 2000, 30000);
    return th_rand_range(rng, 1, 600);
}

static void *long_worker(void *arg)
{
    int self = (int)(intptr_t)arg;
    uint64_t rng = 1000 + (uint64_t)self;
    /* churn first so the thread has cached/free memory of its own */
    for (int i = 0; i < 2000; i++) {
        void *p = malloc(pick_size(&rng));
        CHECK(p != NULL);
        free(p);
    }
    for (int i = 0; i < LONG_BLOCKS; i++) {
        struct blk *b = &long_blocks[self][i];
        b->n = pick_size(&rng);
        b->seed = (uint64_t)self * 100000 + (uint64_t)i;
        b->p = (unsigned char *)(i % 3 == 0 ? calloc(1, b->n) : malloc(b->n));
        CHECK(b->p != NULL);
        th_fill(b->p, 0, b->n, b->seed);
    }
    return NULL;
}

static void *short_worker(void *arg)
{
    int self = (int)(intptr_t)arg;
    uint64_t rng = 77 + (uint64_t)self;
    void *tmp[SHORT_BLOCKS];
    for (int i = 0; i < SHORT_BLOCKS; i++) {
        struct blk *b = &short_blocks[self][i];
        b->n = pick_size(&rng);
        b->seed = (uint64_t)self * 1000 + (uint64_t)i;
        b->p = (unsigned char *)malloc(b->n);
        CHECK(b->p != NULL);
        th_fill(b->p, 0, b->n, b->seed);
        tmp[i] = memalign(64, (size_t)i * 10 + 1);
        CHECK(tmp[i] != NULL);
    }
    for (int i = 0; i < SHORT_BLOCKS; i++)
        free(tmp[i]); /* half of the work is freed by the thread itself */
    return NULL;
}

#define DETACHED 16
static struct blk detached_blocks[DETACHED][SHORT_BLOCKS];
static int detached_done;

static void *detached_worker(void *arg)
{
    int self = (int)(intptr_t)arg;
    uint64_t rng = 555 + (uint64_t)self;
    for (int i = 0; i < SHORT_BLOCKS; i++) {
        struct blk *b = &detached_blocks[self][i];
        b->n = pick_size(&rng);
        b->seed = (uint64_t)self * 1000 + (uint64_t)i + 7;
        b->p = (unsigned char *)malloc(b->n);
        CHECK(b->p != NULL);
        th_fill(b->p, 0, b->n, b->seed);
    }
    __atomic_add_fetch(&detached_done, 1, __ATOMIC_RELEASE);
    return NULL;
}

int main(void)
{
    pthread_t t[LONG_THREADS];
    for (int i = 0; i < LONG_THREADS; i++)
        CHECK(pthread_create(&t[i], NULL, long_worker, (void *)(intptr_t)i) == 0);
    for (int i = 0; i < LONG_THREADS; i++)
        CHECK(pthread_join(t[i], NULL) == 0);

    /* The exited threads' blocks are intact; new allocations from main do
     * not overlap them. */
    void *fresh[1000];
    for (int i = 0; i < 1000; i++) {
        fresh[i] = malloc((size_t)(i % 700) + 1);
        CHECK(fresh[i] != NULL);
        memset(fresh[i], 0x11, (size_t)(i % 700) + 1);
    }
    for (int i = 0; i < LONG_THREADS; i++)
        for (int j = 0; j < LONG_BLOCKS; j++) {
            struct blk *b = &long_blocks[i][j];
            CHECK_PAT(b->p, 0, b->n, b->seed);
            CHECK_OWNED(b->p);
        }
    for (int i = 0; i < LONG_THREADS; i++)
        for (int j = 0; j < LONG_BLOCKS; j++)
            free(long_blocks[i][j].p);
    for (int i = 0; i < 1000; i++) {
        CHECK_ALL_BYTES(fresh[i], (size_t)(i % 700) + 1, 0x11);
        free(fresh[i]);
    }

    /* 200 short-lived threads in batches of BATCH */
    for (int base = 0; base < SHORT_THREADS; base += BATCH) {
        pthread_t s[BATCH];
        for (int k = 0; k < BATCH; k++)
            CHECK(pthread_create(&s[k], NULL, short_worker, (void *)(intptr_t)(base + k)) == 0);
        for (int k = 0; k < BATCH; k++)
            CHECK(pthread_join(s[k], NULL) == 0);
    }
    for (int i = 0; i < SHORT_THREADS; i++)
        for (int j = 0; j < SHORT_BLOCKS; j++) {
            struct blk *b = &short_blocks[i][j];
            CHECK_PAT(b->p, 0, b->n, b->seed);
            free(b->p);
        }

    /* Detached threads that exit with blocks and are never joined; main
     * frees their blocks while they may still be tearing down. */
    for (int i = 0; i < DETACHED; i++) {
        pthread_t d;
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        CHECK(pthread_create(&d, &attr, detached_worker, (void *)(intptr_t)i) == 0);
        pthread_attr_destroy(&attr);
    }
    for (int spin = 0; __atomic_load_n(&detached_done, __ATOMIC_ACQUIRE) < DETACHED; spin++) {
        CHECKF(spin < 20000, "only %d of %d detached threads finished", detached_done, DETACHED);
        usleep(500);
    }
    for (int i = 0; i < DETACHED; i++)
        for (int j = 0; j < SHORT_BLOCKS; j++) {
            struct blk *b = &detached_blocks[i][j];
            CHECK_PAT(b->p, 0, b->n, b->seed);
            free(b->p);
        }
    printf("threads_exit ok\n");
    return 0;
}

// mode: preload direct glibc
// timeout: 60
// stdout: remote_adopt: ok
//
// Remote frees racing with thread exit and heap adoption. Waves of short-lived threads each
// allocate blocks (16 B - 2 KiB, every byte patterned), put them in a shared pool, free blocks
// other threads put there (remote frees onto those threads' slabs), and exit with blocks of
// theirs still in the pool, so their heaps are abandoned with slabs that other threads keep
// freeing into, and the next waves adopt them. Two long-lived threads free from the pool all
// along. Every block's pattern is checked before its free; at the end the main thread frees
// what is left, and (on xalloc) the heap check passes and in_use is back to its baseline.
#include "testhelper.h"
#include "xalloc.h"
#include "xa_stats_helper.h"

#include <pthread.h>

#define POOL 4096
#define WAVES 40
#define PER_WAVE 6
#define PER_THREAD 600

struct slot {
    unsigned char *p;
    size_t n;
    uint64_t seed;
};

static struct slot pool[POOL];
static int pool_len;
static pthread_mutex_t pool_lock = PTHREAD_MUTEX_INITIALIZER;
static volatile int stop;

static int pool_put(unsigned char *p, size_t n, uint64_t seed)
{
    pthread_mutex_lock(&pool_lock);
    int ok = pool_len < POOL;
    if (ok)
        pool[pool_len++] = (struct slot){p, n, seed};
    pthread_mutex_unlock(&pool_lock);
    return ok;
}

static int pool_take(uint64_t *rng, struct slot *out)
{
    pthread_mutex_lock(&pool_lock);
    int ok = pool_len > 0;
    if (ok) {
        int i = (int)th_rand_range(rng, 0, (size_t)pool_len - 1);
        *out = pool[i];
        pool[i] = pool[--pool_len];
    }
    pthread_mutex_unlock(&pool_lock);
    return ok;
}

static void release(struct slot *s)
{
    CHECK_PAT(s->p, 0, s->n, s->seed);
    free(s->p);
}

static void *short_lived(void *arg)
{
    uint64_t rng = (uint64_t)(uintptr_t)arg * 0x9e3779b97f4a7c15ull + 1;
    for (int i = 0; i < PER_THREAD; i++) {
        size_t n = th_rand_range(&rng, 16, 2048);
        unsigned char *p = malloc(n);
        CHECK(p != NULL);
        uint64_t seed = th_rand(&rng);
        th_fill(p, 0, n, seed);
        if (!pool_put(p, n, seed))
            free(p);
        struct slot s;
        if ((i & 1) && pool_take(&rng, &s))
            release(&s);
    }
    return NULL;
}

static void *warm(void *arg)
{
    (void)arg;
    free(malloc(100));
    return NULL;
}

static void *freer(void *arg)
{
    uint64_t rng = (uint64_t)(uintptr_t)arg + 77;
    struct slot s;
    while (!stop) {
        if (pool_take(&rng, &s))
            release(&s);
        else
            sched_yield();
    }
    return NULL;
}

int main(void)
{
    void *chk = th_sym("xa_check_heap", 0);
    printf("remote_adopt: start\n");
    fflush(stdout);
    /* glibc keeps a little memory of its own once threads have run (1280 bytes here): let
       it do so before the baseline, with as many threads at once as below */
    pthread_t t0[PER_WAVE + 2];
    for (int i = 0; i < PER_WAVE + 2; i++)
        CHECK(pthread_create(&t0[i], NULL, warm, NULL) == 0);
    for (int i = 0; i < PER_WAVE + 2; i++)
        CHECK(pthread_join(t0[i], NULL) == 0);
    int have_stats = th_have_xa_stats() && chk != NULL;
    size_t base = have_stats ? th_xa_stats().in_use : 0;
    pthread_t f[2];
    for (int i = 0; i < 2; i++)
        CHECK(pthread_create(&f[i], NULL, freer, (void *)(uintptr_t)i) == 0);
    for (int w = 0; w < WAVES; w++) {
        pthread_t t[PER_WAVE];
        for (int i = 0; i < PER_WAVE; i++)
            CHECK(pthread_create(&t[i], NULL, short_lived, (void *)(uintptr_t)(w * PER_WAVE + i + 1)) == 0);
        for (int i = 0; i < PER_WAVE; i++)
            CHECK(pthread_join(t[i], NULL) == 0);
    }
    stop = 1;
    for (int i = 0; i < 2; i++)
        CHECK(pthread_join(f[i], NULL) == 0);
    uint64_t rng = 5;
    struct slot s;
    while (pool_take(&rng, &s))
        release(&s);
    if (have_stats) {
        int (*check_heap)(void);
        memcpy(&check_heap, &chk, sizeof check_heap);
        CHECK(check_heap() == 0);
        size_t now = th_xa_stats().in_use;
        CHECKF(now == base, "in_use %zu, baseline %zu", now, base);
    }
    printf("remote_adopt: ok\n");
    return 0;
}

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

#define POOL 4096
#include "pool_helper.h"

#define WAVES 40
#define PER_WAVE 6
#define PER_THREAD 600

static volatile int stop;

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
    printf("remote_adopt: start\n");
    fflush(stdout);
    /* as many threads at once as below */
    th_warm_threads(PER_WAVE + 2);
    size_t base = th_heap_baseline();
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
    th_check_heap_back_to(base);
    printf("remote_adopt: ok\n");
    return 0;
}

// mode: preload direct glibc
// timeout: 120
// stdout: idle_owner_stress: ok
//
// Borrowing from idle threads, racing with their return, with thread exit and with adoption.
// Three long-lived threads allocate blocks (16 B - 1 KiB, every byte patterned) into a
// shared pool and free blocks other threads put there; each now and then sleeps 50 ms, long
// enough for the others to find its heap idle and borrow the blocks they free to it, and
// wakes to allocate and free again, so that they give its blocks back. Waves of short-lived
// threads do the same and exit holding borrowed blocks and with blocks of theirs in the pool.
// Every block's pattern is checked before its free; at the end the main thread frees what
// is left, and (on xalloc) the heap check passes and in_use is back to its baseline.
#include "testhelper.h"
#include "xalloc.h"
#include "xa_stats_helper.h"

#include <time.h>

#define POOL 8192
#include "pool_helper.h"

#define SLEEPERS 3
#define WAVES 12
#define PER_WAVE 3
#define SHORT_STEPS 20000
#define SLEEPER_ROUNDS 6
#define STEPS_PER_ROUND 60000

/* steps of: allocate a block (into the pool, or freed at once when it is full), free one
   from the pool every other step, and cycle a private block */
static void steps(uint64_t *rng, int n)
{
    for (int i = 0; i < n; i++) {
        size_t len = th_rand_range(rng, 16, 1024);
        unsigned char *p = malloc(len);
        CHECK(p != NULL);
        uint64_t seed = th_rand(rng);
        th_fill(p, 0, len, seed);
        if (!pool_put(p, len, seed)) {
            CHECK_PAT(p, 0, len, seed);
            free(p);
        }
        struct slot s;
        if ((i & 1) && pool_take(rng, &s))
            release(&s);
        void *q = malloc(48);
        CHECK(q != NULL);
        memset(q, 0x5a, 48);
        free(q);
    }
}

static void *sleeper(void *arg)
{
    uint64_t rng = (uint64_t)(uintptr_t)arg * 0x9e3779b97f4a7c15ull + 3;
    for (int r = 0; r < SLEEPER_ROUNDS; r++) {
        steps(&rng, STEPS_PER_ROUND);
        struct timespec ts = {0, 50 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    return NULL;
}

static void *short_lived(void *arg)
{
    uint64_t rng = (uint64_t)(uintptr_t)arg * 0x9e3779b97f4a7c15ull + 1;
    steps(&rng, SHORT_STEPS);
    return NULL;
}

int main(void)
{
    printf("idle_owner_stress: start\n");
    fflush(stdout);
    /* as many threads at once as below */
    th_warm_threads(SLEEPERS + PER_WAVE);
    size_t base = th_heap_baseline();
    pthread_t s[SLEEPERS];
    for (int i = 0; i < SLEEPERS; i++)
        CHECK(pthread_create(&s[i], NULL, sleeper, (void *)(uintptr_t)(i + 1)) == 0);
    for (int w = 0; w < WAVES; w++) {
        pthread_t t[PER_WAVE];
        for (int i = 0; i < PER_WAVE; i++)
            CHECK(pthread_create(&t[i], NULL, short_lived,
                                 (void *)(uintptr_t)(100 + w * PER_WAVE + i)) == 0);
        for (int i = 0; i < PER_WAVE; i++)
            CHECK(pthread_join(t[i], NULL) == 0);
    }
    for (int i = 0; i < SLEEPERS; i++)
        CHECK(pthread_join(s[i], NULL) == 0);
    uint64_t rng = 5;
    struct slot sl;
    while (pool_take(&rng, &sl))
        release(&sl);
    th_check_heap_back_to(base);
    printf("idle_owner_stress: ok\n");
    return 0;
}

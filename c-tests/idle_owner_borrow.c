// mode: preload direct glibc
// timeout: 120
// stdout: idle_owner_borrow: ok
//
// Blocks freed to the slabs of a thread that is not taking them back. The main thread
// allocates N blocks (every byte patterned), then runs two workers one after the other and
// waits for each in pthread_join. Each worker checks and frees its half (remote frees onto
// the main thread's slabs), allocates a few blocks of the same size, cycles small blocks long
// enough for the main thread to count as idle, then allocates N / 2 blocks of the same size
// again, and counts how many sit at addresses of the main thread's blocks. Under xalloc
// nearly all must: a worker borrows the blocks the waiting thread left untaken rather than
// carve new memory.
// The workers then free some of those blocks (kept on their borrowed lists while the main
// thread is still idle) and allocate them again, and exit holding borrowed blocks, which
// their exit sends home. At the end the main thread frees everything; on xalloc the heap
// check passes and in_use is back to its baseline.
//
// With DOUBLE_FREE defined (idle_owner_double_free.c), a worker frees one block twice after
// the first free kept it on its borrowed list: that must be reported.
#include "testhelper.h"
#include "xalloc.h"
#include "xa_stats_helper.h"

#define POOL 1
#include "pool_helper.h"

#define N 20000
#define SZ 96
#define CYCLES 40000
#define HOLD 64

static unsigned char *mains[N];
static uintptr_t sorted[N];
static unsigned char *again[N];

static int cmp_addr(const void *a, const void *b)
{
    uintptr_t x = *(const uintptr_t *)a, y = *(const uintptr_t *)b;
    return x < y ? -1 : x > y;
}

static int was_main(const void *p)
{
    uintptr_t a = (uintptr_t)p;
    return bsearch(&a, sorted, N, sizeof sorted[0], cmp_addr) != NULL;
}

static uint64_t seed_of(size_t i)
{
    return 0x5eed0000u + i;
}

static void *worker(void *arg)
{
    size_t id = (size_t)(uintptr_t)arg;
    size_t lo = id * (N / 2), hi = lo + N / 2;
    for (size_t i = lo; i < hi; i++) {
        CHECK_PAT(mains[i], 0, SZ, seed_of(i));
        free(mains[i]);
    }
    /* some blocks of the class, so that the worker has looked at the main thread's heap
       before it counts as idle */
    void *hold[HOLD];
    for (int i = 0; i < HOLD; i++) {
        hold[i] = malloc(SZ);
        CHECK(hold[i] != NULL);
    }
    for (int i = 0; i < CYCLES; i++) {
        void *p = malloc(16);
        CHECK(p != NULL);
        memset(p, i, 16);
        free(p);
    }
    size_t reused = 0;
    for (size_t i = lo; i < hi; i++) {
        again[i] = malloc(SZ);
        CHECK(again[i] != NULL);
        th_fill(again[i], 0, SZ, seed_of(N + i));
        reused += was_main(again[i]);
    }
    /* free and allocate again some of them: those of the main thread's slabs stay with
       this thread while the main thread is idle */
    for (size_t i = lo; i < lo + 1000; i++) {
        CHECK_PAT(again[i], 0, SZ, seed_of(N + i));
        free(again[i]);
    }
#ifdef DOUBLE_FREE
    /* the last of the main thread's blocks freed above: past the few the hot list keeps */
    if (id == 0) {
        for (size_t i = lo + 1000; i-- > lo;)
            if (was_main(again[i])) {
                printf("XALLOC_TEST_PTR=%p\n", (void *)again[i]);
                fflush(stdout);
                free(again[i]);
                break;
            }
        fprintf(stderr, "no double free reported\n");
    }
#endif
    for (size_t i = lo; i < lo + 1000; i++) {
        again[i] = malloc(SZ);
        CHECK(again[i] != NULL);
        th_fill(again[i], 0, SZ, seed_of(N + i));
    }
    for (int i = 0; i < HOLD; i++)
        free(hold[i]);
    return (void *)reused;
}

int main(void)
{
    printf("idle_owner_borrow: start\n");
    fflush(stdout);
    th_warm_threads(2);
    size_t base = th_heap_baseline();
    pthread_t t[2];

    for (size_t i = 0; i < N; i++) {
        mains[i] = malloc(SZ);
        CHECK(mains[i] != NULL);
        th_fill(mains[i], 0, SZ, seed_of(i));
        sorted[i] = (uintptr_t)mains[i];
    }
    qsort(sorted, N, sizeof sorted[0], cmp_addr);
    /* one worker after the other, so that each finds its own half waiting (two at once may
       split the blocks between them in any proportion) */
    for (int i = 0; i < 2; i++) {
        void *r;
        CHECK(pthread_create(&t[i], NULL, worker, (void *)(uintptr_t)i) == 0);
        CHECK(pthread_join(t[i], &r) == 0);
        size_t reused = (size_t)(uintptr_t)r;
        printf("worker %d reused %zu of %d\n", i, reused, N / 2);
        if (th_expect_xalloc())
            CHECKF(reused >= N / 2 * 9 / 10, "worker %d: only %zu of %d blocks reused the "
                   "waiting thread's", i, reused, N / 2);
    }
    for (size_t i = 0; i < N; i++) {
        CHECK_PAT(again[i], 0, SZ, seed_of(N + i));
        free(again[i]);
    }
    th_check_heap_back_to(base);
    printf("idle_owner_borrow: ok\n");
    return 0;
}

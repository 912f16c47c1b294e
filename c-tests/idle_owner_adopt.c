// mode: preload direct glibc
// timeout: 120
// stdout: idle_owner_adopt: ok
//
// A thread borrows the blocks of an idle thread's heap, the idle thread exits, and the
// borrower adopts its heap: blocks on the borrower's borrowed lists become blocks of its own
// slabs. A lender thread allocates N blocks (patterned) and waits; the watcher frees them,
// cycles small blocks until the lender counts as idle, allocates N blocks (borrowed), frees
// some of them (kept), then lets the lender exit and allocates blocks of another class until
// it adopts the abandoned heap (on xalloc: the abandoned count drops back). Every block is
// checked; on xalloc the heap check passes at each step, after malloc_trim, and in_use is
// back to its baseline at the end.
#include "testhelper.h"
#include "xalloc.h"
#include "xa_stats_helper.h"

#include <malloc.h>

#define POOL 1
#include "pool_helper.h"

#define N 20000
#define SZ 96
#define OTHER 3000 /* the class the watcher adopts for */

static unsigned char *blocks[N];
static unsigned char *again[N];
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static int phase;
static int on_xalloc;

static void wait_phase(int p)
{
    pthread_mutex_lock(&mu);
    while (phase < p)
        pthread_cond_wait(&cv, &mu);
    pthread_mutex_unlock(&mu);
}

static void set_phase(int p)
{
    pthread_mutex_lock(&mu);
    phase = p;
    pthread_cond_broadcast(&cv);
    pthread_mutex_unlock(&mu);
}

static void check_heap(void)
{
    if (!on_xalloc)
        return;
    void *sym = th_sym("xa_check_heap", 1);
    int (*chk)(void);
    memcpy(&chk, &sym, sizeof chk);
    CHECK(chk() == 0);
}

static void *lender(void *arg)
{
    (void)arg;
    for (size_t i = 0; i < N; i++) {
        blocks[i] = malloc(SZ);
        CHECK(blocks[i] != NULL);
        th_fill(blocks[i], 0, SZ, i);
    }
    set_phase(1);
    wait_phase(2);
    return NULL;
}

static void *watcher(void *arg)
{
    pthread_t *lender_thread = arg;
    wait_phase(1);
    for (size_t i = 0; i < N; i++) {
        CHECK_PAT(blocks[i], 0, SZ, i);
        free(blocks[i]);
    }
    void *hold[64];
    for (int i = 0; i < 64; i++) {
        hold[i] = malloc(SZ);
        CHECK(hold[i] != NULL);
    }
    for (int i = 0; i < 40000; i++) {
        void *p = malloc(16);
        CHECK(p != NULL);
        memset(p, i, 16);
        free(p);
    }
    for (size_t i = 0; i < N; i++) {
        again[i] = malloc(SZ);
        CHECK(again[i] != NULL);
        th_fill(again[i], 0, SZ, N + i);
    }
    for (size_t i = 0; i < 3000; i++) {
        CHECK_PAT(again[i], 0, SZ, N + i);
        free(again[i]);
    }
    check_heap();
    /* the lender exits; its heap keeps slabs with blocks held here: abandoned */
    set_phase(2);
    CHECK(pthread_join(*lender_thread, NULL) == 0);
    size_t abandoned = on_xalloc ? th_xa_stats().abandoned_heaps : 0;
    void *q[2000];
    for (int i = 0; i < 2000; i++) {
        q[i] = malloc(OTHER);
        CHECK(q[i] != NULL);
        memset(q[i], 0x77, OTHER);
    }
    if (on_xalloc) {
        size_t now = th_xa_stats().abandoned_heaps;
        printf("abandoned heaps: %zu, then %zu\n", abandoned, now);
        CHECKF(abandoned >= 1 && now < abandoned, "abandoned heaps %zu, then %zu", abandoned,
               now);
    }
    check_heap();
    for (size_t i = 0; i < 3000; i++) {
        again[i] = malloc(SZ);
        CHECK(again[i] != NULL);
        th_fill(again[i], 0, SZ, N + i);
    }
    check_heap();
    for (int i = 0; i < 2000; i++)
        free(q[i]);
    for (int i = 0; i < 64; i++)
        free(hold[i]);
    for (size_t i = 0; i < N; i++) {
        CHECK_PAT(again[i], 0, SZ, N + i);
        free(again[i]);
    }
    check_heap();
    malloc_trim(0);
    check_heap();
    return NULL;
}

int main(void)
{
    printf("idle_owner_adopt: start\n");
    fflush(stdout);
    th_warm_threads(2);
    size_t base = th_heap_baseline();
    on_xalloc = base != SIZE_MAX;
    pthread_t l, w;
    CHECK(pthread_create(&l, NULL, lender, NULL) == 0);
    CHECK(pthread_create(&w, NULL, watcher, &l) == 0);
    CHECK(pthread_join(w, NULL) == 0);
    th_check_heap_back_to(base);
    printf("idle_owner_adopt: ok\n");
    return 0;
}

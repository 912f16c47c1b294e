// mode: preload direct
// timeout: 60
//
// A thread that never allocates frees what another allocated (a consumer).
// In each of two rounds the main thread allocates 60 000 blocks of
// 16..512 bytes (a size per block, in turn) and writes them; a consumer
// thread that makes no allocator call of its own frees them all in order,
// checks its heap (xa_check_heap: the chains of blocks it has not sent home
// yet included), and waits for the next round.  Between the rounds the
// main thread takes its blocks back (xa_trim), so in the second round it
// has taken in enough remote frees for the consumer to send its blocks in
// chains, one slab's blocks together.  Checked:
//   - the consumer was given a heap of its own by its first free (the
//     heap count is one more after its frees than before them);
//   - right after its frees, in_use is exactly the baseline: blocks still
//     on the consumer's chains, or kept in its caches, count as freed;
//   - after the second round, with the consumer asleep, the main thread
//     allocates and frees a small block in a loop for 400 ms; then the
//     resident set is back near the baseline (at most 2 MiB above it; the
//     peak was at least 5 MiB above it): what the sleeping consumer still
//     holds is bounded, and the rest went home, emptied slabs and all.
// Then the consumer exits, and in_use is still the baseline.
#include "testhelper.h"
#include "xalloc.h"
#include "xa_stats_helper.h"

#include <malloc.h>
#include <pthread.h>

#define N 60000
#define ROUNDS 2
#define LOOP_MS 400

static void *blocks[N];
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cond = PTHREAD_COND_INITIALIZER;
static int go, freed, finish;
static int (*check_heap)(void);

static void *consumer(void *arg)
{
    (void)arg;
    for (int round = 1; round <= ROUNDS; round++) {
        pthread_mutex_lock(&lock);
        while (go < round)
            pthread_cond_wait(&cond, &lock);
        pthread_mutex_unlock(&lock);
        for (int i = 0; i < N; i++)
            free(blocks[i]);
        CHECK(check_heap() == 0);
        pthread_mutex_lock(&lock);
        freed = round;
        pthread_cond_broadcast(&cond);
        pthread_mutex_unlock(&lock);
    }
    pthread_mutex_lock(&lock);
    while (!finish)
        pthread_cond_wait(&cond, &lock);
    pthread_mutex_unlock(&lock);
    return NULL;
}

int main(void)
{
    if (th_mode() == TH_MODE_GLIBC) {
        printf("consumer_chains: xalloc only\n");
        return 0;
    }
    if (!th_have_xa_stats()) {
        printf("consumer_chains: not running on xalloc, skipped\n");
        return 0;
    }
    void *sym = th_sym("xa_check_heap", 1);
    memcpy(&check_heap, &sym, sizeof sym);
    int (*trim)(void);
    sym = th_sym("xa_trim", 1);
    memcpy(&trim, &sym, sizeof sym);
    printf("consumer_chains: start\n"); /* stdout's buffer is allocated before the baseline */
    fflush(stdout);
    memset(blocks, 0, sizeof blocks);
    pthread_t t;
    CHECK(pthread_create(&t, NULL, consumer, NULL) == 0);
    xa_stats_t base = th_xa_stats();
    size_t rss_base = th_rss_bytes(), rss_peak = 0;

    xa_stats_t s;
    for (int round = 1; round <= ROUNDS; round++) {
        size_t bytes = 0;
        for (int i = 0; i < N; i++) {
            size_t sz = 16 + (size_t)(i % 32) * 16;
            blocks[i] = malloc(th_size(sz));
            CHECK(blocks[i] != NULL);
            memset(blocks[i], 0x5a, sz);
            bytes += malloc_usable_size(blocks[i]);
        }
        s = th_xa_stats();
        if (th_rss_bytes() > rss_peak)
            rss_peak = th_rss_bytes();
        CHECKF(s.in_use == base.in_use + bytes, "round %d: in_use grew by %zd, expected %zu",
               round, (ssize_t)(s.in_use - base.in_use), bytes);

        pthread_mutex_lock(&lock);
        go = round;
        pthread_cond_broadcast(&cond);
        while (freed < round)
            pthread_cond_wait(&cond, &lock);
        pthread_mutex_unlock(&lock);
        s = th_xa_stats();
        printf("round %d, consumer freed all: heaps %zu (before %zu), in_use %zu (baseline %zu)\n",
               round, s.heaps, base.heaps, s.in_use, base.in_use);
        CHECKF(s.heaps == base.heaps + 1, "%zu heaps after the consumer's frees, %zu before",
               s.heaps, base.heaps);
        CHECKF(s.in_use == base.in_use, "round %d: in_use %zu right after the frees, expected "
               "exactly %zu", round, s.in_use, base.in_use);
        trim();
        CHECK(check_heap() == 0);
    }
    CHECKF(rss_peak >= rss_base + 5 * TH_MIB, "the blocks raised the resident set by only %.2f MiB",
           ((double)rss_peak - (double)rss_base) / TH_MIB);

    double t0 = th_now_ms();
    while (th_now_ms() - t0 < LOOP_MS) {
        for (int k = 0; k < 1000; k++) {
            void *p = malloc(th_size(32));
            CHECK(p != NULL);
            *(volatile char *)p = 1;
            free(p);
        }
    }
    s = th_xa_stats();
    size_t rss_after = th_rss_bytes();
    printf("rss baseline %.2f MiB, peak %.2f MiB, after the loop %.2f MiB\n",
           (double)rss_base / TH_MIB, (double)rss_peak / TH_MIB, (double)rss_after / TH_MIB);
    CHECKF(s.in_use == base.in_use, "in_use %zu after the loop, expected %zu", s.in_use,
           base.in_use);
    CHECKF(rss_after <= rss_base + 2 * TH_MIB,
           "resident set %.2f MiB above the baseline after %d ms: the consumer's blocks did "
           "not go home",
           ((double)rss_after - (double)rss_base) / TH_MIB, LOOP_MS);

    pthread_mutex_lock(&lock);
    finish = 1;
    pthread_cond_broadcast(&cond);
    pthread_mutex_unlock(&lock);
    CHECK(pthread_join(t, NULL) == 0);
    trim();
    s = th_xa_stats();
    CHECKF(s.in_use == base.in_use, "in_use %zu after the consumer exited, expected %zu",
           s.in_use, base.in_use);
    printf("consumer_chains: ok\n");
    return 0;
}

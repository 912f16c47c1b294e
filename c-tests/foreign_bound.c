// mode: preload direct
// timeout: 60
//
// Blocks freed by a thread that does not own them are kept only boundedly
// and go home.  The main thread allocates 100 000 blocks of 64 bytes plus
// 2 000 each of 32, 128, 256 and 512 bytes (about 8 MiB) and hands them to
// a consumer thread, which frees them all (interleaved sizes) and then
// sleeps in pthread_cond_wait.  The main thread then mallocs and frees a
// small block in a loop for 400 ms (four purge epochs of the default
// XALLOC_PURGE_DELAY_MS=100; the free path's periodic tick takes the
// returned blocks in, releases the emptied slabs and runs the purge clock).
// Then, with the consumer still asleep:
//   - in_use is exactly the baseline again;
//   - cached_free is at most the baseline plus 128 blocks of the largest
//     size (what the consumer may keep) plus one full cache of the loop's
//     class in the main thread;
//   - the resident set is back near the baseline (at most 2 MiB above it,
//     where the peak was at least 6 MiB above it): the emptied slabs went
//     back to the page allocator and their pages were purged.
// Then the consumer is woken and joined.
#include "testhelper.h"
#include "xalloc.h"
#include "xa_stats_helper.h"

#include <pthread.h>

#define N64 100000
#define NEACH 2000
#define NOTHER (4 * NEACH)
#define NTOTAL (N64 + NOTHER)
#define LOOP_MS 400
#define LOOP_SZ 32

static void *blocks[NTOTAL];
static const size_t other_sizes[4] = {32, 128, 256, 512};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cond = PTHREAD_COND_INITIALIZER;
static int ready, go, freed, finish;

static void *consumer(void *arg)
{
    (void)arg;
    /* A heap and caches of its own, so it may keep foreign blocks. */
    for (int i = 0; i < 4; i++) {
        void *own = malloc(th_size(other_sizes[i]));
        CHECK(own != NULL);
        free(own);
    }
    pthread_mutex_lock(&lock);
    ready = 1;
    pthread_cond_broadcast(&cond);
    while (!go)
        pthread_cond_wait(&cond, &lock);
    pthread_mutex_unlock(&lock);
    for (int i = 0; i < NTOTAL; i++)
        free(blocks[i]);
    pthread_mutex_lock(&lock);
    freed = 1;
    pthread_cond_broadcast(&cond);
    while (!finish) /* asleep: no allocator call until woken */
        pthread_cond_wait(&cond, &lock);
    pthread_mutex_unlock(&lock);
    return NULL;
}


static void show(const char *what, const xa_stats_t *s, size_t rss)
{
    printf("%-28s rss %7.2f MiB  in_use %9zu  cached_free %7zu  slab_free %9zu  "
           "free_pages %9zu  dirty %9zu\n",
           what, (double)rss / TH_MIB, s->in_use, s->cached_free, s->slab_free, s->free_pages,
           s->dirty_pages);
    fflush(stdout);
}

int main(void)
{
    if (th_mode() == TH_MODE_GLIBC) {
        printf("foreign_bound: xalloc only\n");
        return 0;
    }
    if (!th_have_xa_stats()) {
        printf("foreign_bound: not running on xalloc, skipped\n");
        return 0;
    }
    printf("foreign_bound: start\n");
    fflush(stdout);
    memset(blocks, 0, sizeof blocks); /* touch the pointer array before the baseline */

    pthread_t t;
    CHECK(pthread_create(&t, NULL, consumer, NULL) == 0);
    pthread_mutex_lock(&lock);
    while (!ready)
        pthread_cond_wait(&cond, &lock);
    pthread_mutex_unlock(&lock);

    xa_stats_t base = th_xa_stats();
    size_t rss_base = th_rss_bytes();
    show("baseline", &base, rss_base);

    /* Interleaved sizes: 2 of every 27 blocks are of the other sizes, in turn. */
    size_t bytes = 0, nother = 0;
    for (int i = 0; i < NTOTAL; i++) {
        size_t sz = 64;
        if (i % 27 < 2)
            sz = other_sizes[nother++ % 4];
        blocks[i] = malloc(th_size(sz));
        CHECK(blocks[i] != NULL);
        CHECK(malloc_usable_size(blocks[i]) == sz);
        memset(blocks[i], 0x3c, sz);
        bytes += sz;
    }
    CHECK(nother == NOTHER);
    xa_stats_t s = th_xa_stats();
    size_t rss_peak = th_rss_bytes();
    show("allocated", &s, rss_peak);
    CHECKF(s.in_use == base.in_use + bytes, "in_use grew by %zd, expected %zu",
           (ssize_t)(s.in_use - base.in_use), bytes);
    CHECKF(rss_peak >= rss_base + 6 * TH_MIB,
           "the %zu bytes of blocks raised the resident set by only %.2f MiB", bytes,
           ((double)rss_peak - (double)rss_base) / TH_MIB);

    pthread_mutex_lock(&lock);
    go = 1;
    pthread_cond_broadcast(&cond);
    while (!freed)
        pthread_cond_wait(&cond, &lock);
    pthread_mutex_unlock(&lock);
    s = th_xa_stats();
    show("consumer freed all", &s, th_rss_bytes());
    CHECKF(s.in_use == base.in_use, "in_use %zu right after the frees, expected exactly %zu",
           s.in_use, base.in_use);

    /* The owner keeps allocating and freeing one small block. */
    double t0 = th_now_ms();
    long iters = 0;
    while (th_now_ms() - t0 < LOOP_MS) {
        for (int k = 0; k < 1000; k++) {
            void *p = malloc(th_size(LOOP_SZ));
            CHECK(p != NULL);
            *(volatile char *)p = 1;
            free(p);
        }
        iters += 1000;
    }
    s = th_xa_stats();
    size_t rss_after = th_rss_bytes();
    show("after the loop", &s, rss_after);
    printf("loop: %ld malloc/free pairs in %.0f ms; rss baseline %.2f MiB, peak %.2f MiB "
           "(+%.2f), after %.2f MiB (%+.2f)\n",
           iters, th_now_ms() - t0, (double)rss_base / TH_MIB, (double)rss_peak / TH_MIB,
           ((double)rss_peak - (double)rss_base) / TH_MIB, (double)rss_after / TH_MIB,
           ((double)rss_after - (double)rss_base) / TH_MIB);
    fflush(stdout);

    CHECKF(s.in_use == base.in_use, "in_use %zu after the loop, expected exactly %zu", s.in_use,
           base.in_use);
    size_t bound = base.cached_free + 128 * 512 + 16 * LOOP_SZ;
    CHECKF(s.cached_free <= bound,
           "cached_free %zu: expected at most %zu (baseline %zu + 128 kept blocks of at most "
           "512 bytes + one cache of %d-byte blocks): the freed blocks did not go home",
           s.cached_free, bound, base.cached_free, LOOP_SZ);
    CHECKF(rss_after <= rss_base + 2 * TH_MIB,
           "resident set %.2f MiB above the baseline after %d ms (peak was %.2f MiB above): "
           "the emptied slabs were not released or not purged",
           ((double)rss_after - (double)rss_base) / TH_MIB, LOOP_MS,
           ((double)rss_peak - (double)rss_base) / TH_MIB);

    pthread_mutex_lock(&lock);
    finish = 1;
    pthread_cond_broadcast(&cond);
    pthread_mutex_unlock(&lock);
    CHECK(pthread_join(t, NULL) == 0);
    printf("foreign_bound: ok\n");
    return 0;
}

/*
 * Helpers for the threaded tests that pass patterned blocks between threads. Include after
 * testhelper.h, xalloc.h and xa_stats_helper.h, with POOL defined (the pool's capacity):
 *
 *   - pool_put(p, n, seed): add a block of n bytes filled with th_fill(p, 0, n, seed) to the
 *     shared pool (mutex-protected); 0 when the pool is full;
 *   - pool_take(rng, out): take a block at random out of the pool; 0 when it is empty;
 *   - release(slot): check a block's pattern and free it;
 *   - th_warm_threads(n): run n threads at once that each malloc and free one block (glibc
 *     keeps a little memory of its own once threads have run, 1280 bytes here: let it do so
 *     before a baseline is taken);
 *   - th_heap_baseline() / th_check_heap_back_to(base): on xalloc, in_use now, and at the
 *     end the heap check (xa_check_heap) and in_use back at the baseline; nothing elsewhere.
 */
#ifndef XALLOC_POOL_HELPER_H
#define XALLOC_POOL_HELPER_H

#include <pthread.h>

struct slot {
    unsigned char *p;
    size_t n;
    uint64_t seed;
};

static struct slot pool[POOL];
static int pool_len;
static pthread_mutex_t pool_lock = PTHREAD_MUTEX_INITIALIZER;

TH_UNUSED static int pool_put(unsigned char *p, size_t n, uint64_t seed)
{
    pthread_mutex_lock(&pool_lock);
    int ok = pool_len < POOL;
    if (ok)
        pool[pool_len++] = (struct slot){p, n, seed};
    pthread_mutex_unlock(&pool_lock);
    return ok;
}

TH_UNUSED static int pool_take(uint64_t *rng, struct slot *out)
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

TH_UNUSED static void release(struct slot *s)
{
    CHECK_PAT(s->p, 0, s->n, s->seed);
    free(s->p);
}

static void *th_warm_one(void *arg)
{
    (void)arg;
    free(malloc(100));
    return NULL;
}

TH_UNUSED static void th_warm_threads(int n)
{
    pthread_t t[64];
    CHECK(n <= 64);
    for (int i = 0; i < n; i++)
        CHECK(pthread_create(&t[i], NULL, th_warm_one, NULL) == 0);
    for (int i = 0; i < n; i++)
        CHECK(pthread_join(t[i], NULL) == 0);
}

/* in_use on xalloc (with xa_check_heap there), SIZE_MAX elsewhere */
TH_UNUSED static size_t th_heap_baseline(void)
{
    if (!th_have_xa_stats() || th_sym("xa_check_heap", 0) == NULL)
        return SIZE_MAX;
    return th_xa_stats().in_use;
}

TH_UNUSED static void th_check_heap_back_to(size_t base)
{
    if (base == SIZE_MAX)
        return;
    void *chk = th_sym("xa_check_heap", 1);
    int (*check_heap)(void);
    memcpy(&check_heap, &chk, sizeof check_heap);
    CHECK(check_heap() == 0);
    size_t now = th_xa_stats().in_use;
    CHECKF(now == base, "in_use %zu, baseline %zu", now, base);
}

#endif

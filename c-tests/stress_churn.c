// mode: preload direct glibc
// timeout: 40
// stdout: stress_churn: ok
//
// Thread churn: 20000 short-lived threads, at most 8 alive at a time (a few
// detached), with bursts of 64 started at once.  Each thread's first
// allocator call varies (malloc, calloc, posix_memalign, or free of a block
// another thread left behind); it then allocates, verifies, reallocs and
// frees some 24 blocks of mixed sizes, leaves 3 blocks in a shared table,
// and takes over and frees blocks that earlier threads left (so blocks
// outlive the heaps of the threads that made them and are freed by
// unrelated threads).  The main thread frees whatever is left once it is
// old.  Every block is verified against the pattern of its id before it is
// freed.  Resident memory is sampled every 250 threads and must stay below
// 200 MiB.
// Optional argument: seed.
#include "stress.h"
#include "xalloc.h"

#define TOTAL_THREADS 20000
#define WINDOW 8
#define BURST 64
#define LEFT 3
#define BLOCKS_PER_THREAD 24
#define RSS_LIMIT (200 * TH_MIB)
#define RSS_EVERY 250
#define TIME_CAP 4.0

struct left_blk {
    unsigned char *p; /* claimed by atomic exchange with NULL */
    size_t n;
    uint64_t id;
};

static struct left_blk left[TOTAL_THREADS][LEFT];
static uint64_t freed_by_threads, freed_by_main, thread_blocks, first_was_free;
static int detached_done;

static size_t pick_size(uint64_t *rng)
{
    uint64_t r = th_rand(rng) % 1000;
    if (r < 700)
        return th_rand_range(rng, 0, 256);
    if (r < 960)
        return st_log_range(rng, 257, 32 * TH_KIB);
    if (r < 999)
        return st_log_range(rng, 32 * TH_KIB + 1, 256 * TH_KIB);
    return st_log_range(rng, 256 * TH_KIB + 1, 2 * TH_MIB);
}

/* Take the block thread `owner` left in slot `k`, verify it and free it. */
static int take_left(int owner, int k, int self)
{
    struct left_blk *l = &left[owner][k];
    unsigned char *p = __atomic_exchange_n(&l->p, NULL, __ATOMIC_ACQUIRE);
    if (p == NULL)
        return 0;
    ST_VERIFY(p, 0, l->n, st_block_seed(l->id, 0),
              "block %d/%d left by thread %d, freed by %d (size %zu)", owner, k, owner, self,
              l->n);
    free(p);
    return 1;
}

static void *churn_thread(void *arg)
{
    int self = (int)((intptr_t)arg >> 1);
    int is_detached = (int)((intptr_t)arg & 1);
    uint64_t rng = st_rng((uint64_t)self);
    uint64_t freed = 0;
    struct {
        unsigned char *p;
        size_t n;
        uint64_t id;
    } b[BLOCKS_PER_THREAD];
    uint64_t id0 = (uint64_t)self * 1000;

    /* The first allocator call of the thread. */
    int first = self % 4;
    int nb = 0;
    if (first == 3 && self >= 20) {
        int owner = self - 20;
        for (int k = 0; k < LEFT; k++)
            freed += (uint64_t)take_left(owner, k, self);
        __atomic_add_fetch(&first_was_free, 1, __ATOMIC_RELAXED);
    }
    for (; nb < BLOCKS_PER_THREAD; nb++) {
        size_t n = pick_size(&rng);
        void *p;
        if (nb == 0 && first == 1) {
            p = calloc(1, n);
            ST_CHECK(p != NULL, "thread %d: calloc(1, %zu)", self, n);
            ST_VERIFY_ZERO(p, n, "thread %d: first calloc", self);
        } else if (nb == 0 && first == 2) {
            int rc = posix_memalign(&p, 256, n);
            ST_CHECK(rc == 0 && th_aligned(p, 256), "thread %d: posix_memalign rc %d p %p", self,
                     rc, p);
        } else {
            p = malloc(n);
            ST_CHECK(p != NULL, "thread %d: malloc(%zu)", self, n);
        }
        b[nb].p = (unsigned char *)p;
        b[nb].n = n;
        b[nb].id = id0 + (uint64_t)nb;
        st_fill(p, 0, n, st_block_seed(b[nb].id, 0));
    }
    /* Churn: realloc some, free and replace some. */
    for (int round = 0; round < 2; round++) {
        for (int i = 0; i < nb; i++) {
            ST_VERIFY(b[i].p, 0, b[i].n, st_block_seed(b[i].id, 0), "thread %d block %d", self,
                      i);
            uint64_t r = th_rand(&rng) % 4;
            if (r == 0) {
                size_t m = b[i].n + th_rand_range(&rng, 1, 3000);
                unsigned char *q = (unsigned char *)realloc(b[i].p, m);
                ST_CHECK(q != NULL, "realloc(%zu)", m);
                ST_VERIFY(q, 0, b[i].n, st_block_seed(b[i].id, 0),
                          "thread %d block %d after realloc to %zu", self, i, m);
                st_fill(q, b[i].n, m, st_block_seed(b[i].id, 0));
                b[i].p = q;
                b[i].n = m;
            } else if (r == 1) {
                free(b[i].p);
                b[i].n = pick_size(&rng);
                b[i].p = (unsigned char *)malloc(b[i].n);
                ST_CHECK(b[i].p != NULL, "malloc(%zu)", b[i].n);
                st_fill(b[i].p, 0, b[i].n, st_block_seed(b[i].id, 0));
            }
        }
    }
    /* Leave LEFT blocks behind, free the rest. */
    for (int i = 0; i < nb; i++) {
        if (i < LEFT) {
            left[self][i].n = b[i].n;
            left[self][i].id = b[i].id;
            __atomic_store_n(&left[self][i].p, b[i].p, __ATOMIC_RELEASE);
        } else {
            ST_VERIFY(b[i].p, 0, b[i].n, st_block_seed(b[i].id, 0), "thread %d block %d at exit",
                      self, i);
            free(b[i].p);
        }
    }
    /* Free what a recent thread left. */
    int back = (int)th_rand_range(&rng, 1, 64);
    if (self >= back)
        for (int k = 0; k < LEFT; k++)
            freed += (uint64_t)take_left(self - back, k, self);
    __atomic_add_fetch(&freed_by_threads, freed, __ATOMIC_RELAXED);
    __atomic_add_fetch(&thread_blocks, (uint64_t)nb, __ATOMIC_RELAXED);
    st_thread_done();
    if (is_detached)
        __atomic_add_fetch(&detached_done, 1, __ATOMIC_RELEASE);
    return NULL;
}

typedef int (*stats_fn)(xa_stats_t *);

int main(int argc, char **argv)
{
    st_init("stress_churn", argc, argv);
    double t0 = st_now();
    st_deadline_set(TIME_CAP);
    stats_fn stats = NULL;
    if (th_mode() != TH_MODE_GLIBC) {
        void *s = th_sym("xa_stats", 1);
        memcpy(&stats, &s, sizeof stats);
    }

    pthread_t win[WINDOW];
    int nwin = 0, started = 0, detached = 0;
    size_t rss_max = 0;
    char samples[512] = "";
    size_t slen = 0;
    int main_swept = 0; /* threads below this have been swept by main */
    int next_rss = RSS_EVERY, bursts = 0;
    for (int i = 0; i < TOTAL_THREADS;) {
        if (st_time_up())
            break;
        if (i % 500 == 250 && i + BURST <= TOTAL_THREADS) {
            /* A burst: BURST threads alive at once. */
            pthread_t burst[BURST];
            for (int j = 0; j < BURST; j++)
                CHECKF(pthread_create(&burst[j], NULL, churn_thread, (void *)(intptr_t)((i + j) << 1)) == 0,
                       "pthread_create %d", i + j);
            for (int j = 0; j < BURST; j++)
                CHECK(pthread_join(burst[j], NULL) == 0);
            started += BURST;
            i += BURST;
            bursts++;
        } else {
            if (nwin == WINDOW) {
                /* join the oldest */
                CHECK(pthread_join(win[0], NULL) == 0);
                memmove(win, win + 1, sizeof win[0] * (WINDOW - 1));
                nwin--;
            }
            pthread_t t;
            int detach = i % 16 == 5;
            CHECKF(pthread_create(&t, NULL, churn_thread, (void *)(intptr_t)((i << 1) | detach)) == 0,
                   "pthread_create %d", i);
            started++;
            if (detach) {
                CHECK(pthread_detach(t) == 0);
                detached++;
            } else {
                win[nwin++] = t;
            }
            i++;
        }
        /* Main frees what threads well in the past left behind. */
        while (main_swept < i - 256) {
            for (int k = 0; k < LEFT; k++)
                freed_by_main += (uint64_t)take_left(main_swept, k, -1);
            main_swept++;
        }
        if (i >= next_rss) {
            next_rss += RSS_EVERY;
            size_t rss = th_rss_bytes();
            if (rss > rss_max)
                rss_max = rss;
            if (slen < sizeof samples - 16)
                slen += (size_t)snprintf(samples + slen, sizeof samples - slen, " %.0f",
                                         ST_MIB(rss));
            ST_CHECK(rss < RSS_LIMIT, "after %d threads: resident %.1f MiB >= limit %.0f MiB",
                     i, ST_MIB(rss), ST_MIB(RSS_LIMIT));
        }
    }
    for (int k = 0; k < nwin; k++)
        CHECK(pthread_join(win[k], NULL) == 0);
    while (__atomic_load_n(&detached_done, __ATOMIC_ACQUIRE) < detached)
        usleep(1000);
    /* Everything still left behind. */
    for (int i = 0; i < started; i++)
        for (int k = 0; k < LEFT; k++)
            freed_by_main += (uint64_t)take_left(i, k, -1);
    CHECKF(freed_by_main + freed_by_threads == (uint64_t)started * LEFT,
           "left behind %llu blocks, freed %llu by threads + %llu by main",
           (unsigned long long)started * LEFT, (unsigned long long)freed_by_threads,
           (unsigned long long)freed_by_main);
    size_t rss_end = th_rss_bytes();
    if (rss_end > rss_max)
        rss_max = rss_end;
    ST_CHECK(rss_end < RSS_LIMIT, "at the end: resident %.1f MiB", ST_MIB(rss_end));
    st_check_heap();

    printf("stress_churn: %d threads (%d detached; at most %d at once, plus %d bursts of %d), "
           "%llu blocks made, %.2f s%s\n",
           started, detached, WINDOW + 1, bursts, BURST, (unsigned long long)thread_blocks,
           st_now() - t0, st_cap_note());
    printf("  left behind %llu blocks: %llu freed by later threads (%llu as their first call), "
           "%llu by main\n",
           (unsigned long long)started * LEFT, (unsigned long long)freed_by_threads,
           (unsigned long long)first_was_free, (unsigned long long)freed_by_main);
    printf("  resident MiB every %d threads:%s; max %.1f MiB, end %.1f MiB (limit %.0f)\n",
           RSS_EVERY, samples, ST_MIB(rss_max), ST_MIB(rss_end), ST_MIB(RSS_LIMIT));
    if (stats != NULL) {
        xa_stats_t s = {.version = XA_STATS_VERSION};
        CHECK(stats(&s) == 0);
        printf("  xalloc: heaps created %zu, abandoned %zu, arena %.0f MiB, in use %.1f MiB\n",
               s.heaps, s.abandoned_heaps, ST_MIB(s.arena_bytes), ST_MIB(s.in_use));
    }
    printf("  bytes verified %.1f MiB\n", ST_MIB(st_verified_total()));
    printf("stress_churn: ok\n");
    return 0;
}

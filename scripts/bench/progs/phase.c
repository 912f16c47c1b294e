/*
 * phase.c - memory return after a program phase.
 *
 * One cycle: allocate 256 MiB in blocks of 16 B .. 64 KiB (log-uniform),
 * writing every page; record RSS; check and free everything; sleep 500 ms;
 * do 1000 malloc/free pairs of 64 B (a chance for lazy allocators to
 * purge); sleep 200 ms; record RSS. Three cycles are run in the main thread
 * (one when SCALE < 1), then one cross-thread cycle: thread A allocates all
 * blocks and hands the array to thread B, which checks and frees them while
 * A waits; then A (still alive, the owner) sleeps, does the 1000 pairs,
 * sleeps, and records RSS.
 *
 * Stresses returning memory to the OS after a peak (purging/decommit of
 * free spans, trimming) and the same after remote frees.
 *
 * Extra keys: rss_peak_kb (largest RSS seen after an allocation phase),
 * rss_final_kb (after the last main-thread cycle), rss_final_xthread_kb
 * (after the cross-thread cycle).
 * ops = allocations; secs = time of the allocate and free phases (no
 * sleeps, no pairs).
 */
#include <pthread.h>
#include "bench.h"

#define TOTAL (256ull << 20)
#define MINSZ 16
#define MAXSZ 65536
#define PAGE 4096

static const char *const modes[] = { "phase" };

struct set {
    void **p;
    size_t n;
};

static uint64_t ops;
static double busy; /* seconds spent in allocate/free phases */
static long rss_peak, rss_xthread;

static void fill(void *p, size_t n, uint64_t tag)
{
    fill_hdr_block(p, n, tag);
    for (size_t off = PAGE; off + 8 <= n - 8; off += PAGE)
        put64((unsigned char *)p + off, tag);
}

static void check(void *p)
{
    size_t n = check_hdr_block(p, MAXSZ);
    uint64_t tag = get64((unsigned char *)p + 8);
    for (size_t off = PAGE; off + 8 <= n - 8; off += PAGE)
        if (get64((unsigned char *)p + off) != tag)
            corrupt("page word", p);
}

static struct set alloc_phase(uint64_t seed)
{
    struct rng r = rng_make(seed);
    struct set s = { NULL, 0 };
    size_t cap = 0, total = 0;
    double t0 = now_sec();
    while (total < TOTAL) {
        if (s.n == cap) {
            cap = cap ? cap * 2 : 4096;
            s.p = realloc(s.p, cap * sizeof *s.p);
            if (!s.p)
                oom(cap * sizeof *s.p);
        }
        size_t n = rng_logu(&r, MINSZ, MAXSZ);
        void *p = xmalloc(n);
        fill(p, n, seed + s.n);
        s.p[s.n++] = p;
        total += n;
    }
    busy += now_sec() - t0;
    ops += s.n;
    long rss = rss_kb();
    if (rss > rss_peak)
        rss_peak = rss;
    return s;
}

static void free_phase(struct set *s)
{
    double t0 = now_sec();
    for (size_t i = 0; i < s->n; i++) {
        check(s->p[i]);
        free(s->p[i]);
    }
    free(s->p);
    s->p = NULL;
    busy += now_sec() - t0;
}

/* sleep, 1000 small pairs, sleep; returns RSS afterwards */
static long settle(void)
{
    sleep_ms(500);
    for (int i = 0; i < 1000; i++) {
        void *p = xmalloc(64);
        fill_block(p, 64, (uint64_t)i);
        check_block(p, 64, (uint64_t)i);
        free(p);
    }
    sleep_ms(200);
    return rss_kb();
}

static void *thread_b(void *arg)
{
    free_phase(arg);
    return NULL;
}

static void *thread_a(void *arg)
{
    (void)arg;
    struct set s = alloc_phase(0xA11CE);
    pthread_t b;
    if (pthread_create(&b, NULL, thread_b, &s)) {
        fprintf(stderr, "pthread_create failed\n");
        exit(1);
    }
    pthread_join(b, NULL);
    rss_xthread = settle();
    return NULL;
}

int main(int argc, char **argv)
{
    struct bench_opts o = bench_args(argc, argv, modes, 1);
    int cycles = o.scale < 1.0 ? 1 : (int)(3.0 * o.scale + 0.5);
    long rss_final = 0;

    for (int c = 0; c < cycles; c++) {
        struct set s = alloc_phase(0x9A5E + (uint64_t)c * 1000003);
        free_phase(&s);
        rss_final = settle();
    }

    pthread_t a;
    if (pthread_create(&a, NULL, thread_a, NULL)) {
        fprintf(stderr, "pthread_create failed\n");
        return 1;
    }
    pthread_join(a, NULL);

    report(ops, busy,
           "rss_peak_kb=%ld rss_final_kb=%ld rss_final_xthread_kb=%ld",
           rss_peak, rss_final, rss_xthread);
    return 0;
}

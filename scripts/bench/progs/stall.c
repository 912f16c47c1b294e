/*
 * stall.c - how long a small-block thread waits while another thread's
 * freed memory goes back to the system.
 *
 * Thread F (the main thread) allocates 1 GiB (times SCALE, at least
 * 64 MiB) in blocks of 64 KiB .. 1 MiB (log-uniform) and writes one word in
 * every 4 KiB page, so every page is resident. Then thread M starts and F
 * frees all the blocks in random order, sleeps 300 ms (past the default
 * 100 ms purge epoch of xalloc and the decay times of the others), frees 64
 * more blocks of 64 KiB that it allocated before (the first frees after
 * the idle time), and sleeps 300 ms more. An allocator that purges lazily
 * returns most of the gigabyte to the system somewhere in that time, from
 * whichever thread notices first: a free of F, or a malloc or free of M.
 *
 * Thread M runs from just before the first free to the end: each step
 * frees a random slot of 1024 live blocks of 16 B .. 4 KiB and allocates a
 * new block into it, and times the malloc + free pair with
 * clock_gettime(CLOCK_MONOTONIC). It keeps the longest pair and a
 * log-linear histogram (1/16 of an octave per bucket) for the
 * percentiles.
 *
 * The stall figures are noisy by nature (a preempted thread shows the
 * scheduler's time slice, not the allocator's); compare maxima over
 * several runs.
 *
 * Output: the usual "result:" line (ops = M's pairs, secs = M's run time)
 * with max_stall_us, p999_us and p99_us (M's longest pair, 99.9th and 99th
 * percentile in microseconds), over_1ms (pairs longer than 1 ms) and
 * rss_final_kb (resident memory at the end), and a line
 * "stall: max_us=... p999_us=... p99_us=... over_1ms=..." for people.
 */
#include <pthread.h>
#include <stdatomic.h>
#include "bench.h"

#define GIB (1ull << 30)
#define MINSZ (64u * 1024)
#define MAXSZ (1024u * 1024)
#define PAGE 4096
#define SLOTS 1024
#define SMALL_MIN 16
#define SMALL_MAX 4096
#define TRIGGER 64
#define IDLE_MS 300

static const char *const modes[] = { "stall" };

/* Histogram of pair latencies in ns: bucket 16 * octave + the next 4 bits. */
#define SUB 16
#define BUCKETS (64 * SUB)

static atomic_int running = 1;
static uint64_t hist[BUCKETS];
static uint64_t m_ops, m_max_ns, m_over_1ms;
static double m_secs;

static unsigned bucket_of(uint64_t ns)
{
    if (ns < SUB)
        return (unsigned)ns;
    unsigned oct = 63u - (unsigned)__builtin_clzll(ns); /* >= 4 */
    unsigned frac = (unsigned)(ns >> (oct - 4)) & (SUB - 1);
    return (oct - 3) * SUB + frac;
}

/* Upper bound (ns) of a bucket. */
static double bucket_top(unsigned b)
{
    if (b < SUB)
        return (double)b + 1;
    unsigned oct = b / SUB + 3, frac = b % SUB;
    return ldexp((double)(SUB + frac + 1), (int)oct - 4);
}

static double percentile_us(double q)
{
    uint64_t total = 0;
    for (unsigned b = 0; b < BUCKETS; b++)
        total += hist[b];
    uint64_t want = (uint64_t)ceil(q * (double)total), seen = 0;
    for (unsigned b = 0; b < BUCKETS; b++) {
        seen += hist[b];
        if (seen >= want && hist[b])
            return bucket_top(b) / 1000.0;
    }
    return 0;
}

static inline uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void *measurer(void *arg)
{
    (void)arg;
    struct rng r = rng_make(0x57A11);
    void *p[SLOTS];
    size_t n[SLOTS];
    uint64_t tag[SLOTS], serial = 0;
    for (int i = 0; i < SLOTS; i++) {
        n[i] = rng_range(&r, SMALL_MIN, SMALL_MAX);
        tag[i] = serial++;
        p[i] = xmalloc(n[i]);
        fill_block(p[i], n[i], tag[i]);
    }
    uint64_t start = now_ns();
    while (atomic_load_explicit(&running, memory_order_relaxed)) {
        size_t i = (size_t)rng_below(&r, SLOTS);
        check_block(p[i], n[i], tag[i]);
        size_t len = rng_range(&r, SMALL_MIN, SMALL_MAX);
        uint64_t t0 = now_ns();
        free(p[i]);
        void *q = malloc(len);
        uint64_t d = now_ns() - t0;
        if (!q)
            oom(len);
        hist[bucket_of(d)]++;
        if (d > m_max_ns)
            m_max_ns = d;
        m_over_1ms += d > 1000000;
        p[i] = q;
        n[i] = len;
        tag[i] = serial++;
        fill_block(q, len, tag[i]);
        m_ops++;
    }
    m_secs = (double)(now_ns() - start) * 1e-9;
    for (int i = 0; i < SLOTS; i++) {
        check_block(p[i], n[i], tag[i]);
        free(p[i]);
    }
    return NULL;
}

int main(int argc, char **argv)
{
    struct bench_opts o = bench_args(argc, argv, modes, 1);
    uint64_t total = (uint64_t)((double)GIB * o.scale);
    if (total < 64ull << 20)
        total = 64ull << 20;
    struct rng r = rng_make(0x5E11);

    size_t cap = (size_t)(total / MINSZ) + 1, nb = 0;
    unsigned char **blk = malloc(cap * sizeof *blk);
    size_t *len = malloc(cap * sizeof *len);
    uint32_t *order = malloc(cap * sizeof *order);
    if (!blk || !len || !order)
        oom(cap * sizeof *blk);
    for (uint64_t sum = 0; sum < total; nb++) {
        len[nb] = rng_logu(&r, MINSZ, MAXSZ);
        blk[nb] = xmalloc(len[nb]);
        for (size_t off = 0; off + 8 <= len[nb]; off += PAGE)
            put64(blk[nb] + off, (uint64_t)nb * 4099 + off);
        sum += len[nb];
        order[nb] = (uint32_t)nb;
    }
    void *trig[TRIGGER];
    for (int i = 0; i < TRIGGER; i++) {
        trig[i] = xmalloc(MINSZ);
        memset(trig[i], i, MINSZ);
    }
    shuffle_u32(&r, order, nb);

    pthread_t m;
    if (pthread_create(&m, NULL, measurer, NULL)) {
        fprintf(stderr, "pthread_create failed\n");
        return 1;
    }
    sleep_ms(20);
    for (size_t k = 0; k < nb; k++) {
        size_t i = order[k];
        if (get64(blk[i]) != (uint64_t)i * 4099)
            corrupt("medium block", blk[i]);
        free(blk[i]);
    }
    sleep_ms(IDLE_MS);
    for (int i = 0; i < TRIGGER; i++)
        free(trig[i]);
    sleep_ms(IDLE_MS);
    atomic_store(&running, 0);
    pthread_join(m, NULL);
    long rss = rss_kb();

    double max_us = (double)m_max_ns / 1000.0;
    double p999 = percentile_us(0.999), p99 = percentile_us(0.99);
    report(m_ops, m_secs,
           "max_stall_us=%.1f p999_us=%.1f p99_us=%.1f over_1ms=%llu rss_final_kb=%ld", max_us,
           p999, p99, (unsigned long long)m_over_1ms, rss);
    printf("stall: max_us=%.1f p999_us=%.1f p99_us=%.1f over_1ms=%llu (%llu pairs, %zu blocks "
           "freed, %.0f MiB)\n",
           max_us, p999, p99, (unsigned long long)m_over_1ms, (unsigned long long)m_ops, nb,
           (double)total / (1 << 20));
    free(blk);
    free(len);
    free(order);
    return 0;
}

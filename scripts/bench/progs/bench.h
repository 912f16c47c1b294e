/*
 * bench.h - shared helpers for the allocator benchmark programs.
 *
 * Everything here is static inline so each benchmark is a single .c file:
 *   gcc -O2 -g -std=gnu11 -pthread -o OUT progs/NAME.c -lm
 *
 * Provides: command line parsing (-m MODE -t THREADS -s SCALE), a monotonic
 * clock, a xorshift64* RNG, RSS reading from /proc/self/statm, block
 * fill/check patterns for corruption detection, and the report() helper
 * that prints the single "result: ..." line on stdout.
 *
 * Only plain malloc/free/realloc/calloc are used by the benchmarks; the
 * allocator under test is selected with LD_PRELOAD.
 */
#ifndef BENCH_H
#define BENCH_H

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* ------------------------------------------------------------------ */
/* command line                                                        */

struct bench_opts {
    int mode;       /* index into the modes array */
    int threads;    /* -t, default 4 */
    double scale;   /* -s, default 1.0 */
};

static inline void bench_usage(const char *prog, const char *const *modes,
                               int nmodes)
{
    fprintf(stderr, "usage: %s -m MODE [-t THREADS] [-s SCALE]\n  modes:",
            prog);
    for (int i = 0; i < nmodes; i++)
        fprintf(stderr, " %s", modes[i]);
    fprintf(stderr, "\n");
    exit(2);
}

/*
 * Parse argv. A program with a single mode may omit -m; otherwise a missing
 * or unknown mode prints usage and exits with status 2.
 */
static inline struct bench_opts bench_args(int argc, char **argv,
                                           const char *const *modes,
                                           int nmodes)
{
    struct bench_opts o = { -1, 4, 1.0 };
    const char *prog = argc > 0 ? argv[0] : "bench";
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (i + 1 >= argc || a[0] != '-' || a[1] == 0 || a[2] != 0)
            bench_usage(prog, modes, nmodes);
        const char *v = argv[++i];
        char *end;
        switch (a[1]) {
        case 'm':
            for (int k = 0; k < nmodes; k++)
                if (strcmp(v, modes[k]) == 0)
                    o.mode = k;
            if (o.mode < 0)
                bench_usage(prog, modes, nmodes);
            break;
        case 't':
            errno = 0;
            o.threads = (int)strtol(v, &end, 10);
            if (errno || *end || o.threads < 1 || o.threads > 1024)
                bench_usage(prog, modes, nmodes);
            break;
        case 's':
            errno = 0;
            o.scale = strtod(v, &end);
            if (errno || *end || !(o.scale > 0.0) || o.scale > 1e6)
                bench_usage(prog, modes, nmodes);
            break;
        default:
            bench_usage(prog, modes, nmodes);
        }
    }
    if (o.mode < 0) {
        if (nmodes == 1)
            o.mode = 0;
        else
            bench_usage(prog, modes, nmodes);
    }
    return o;
}

/* Scale an iteration count, never below 1. */
static inline uint64_t scaled(uint64_t base, double scale)
{
    double v = (double)base * scale;
    return v < 1.0 ? 1 : (uint64_t)(v + 0.5);
}

/* ------------------------------------------------------------------ */
/* time, RSS, errors                                                   */

static inline double now_sec(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static inline void sleep_ms(long ms)
{
    struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

/* Current resident set size in KiB (resident pages from /proc/self/statm). */
static inline long rss_kb(void)
{
    long size = 0, resident = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (!f)
        return -1;
    if (fscanf(f, "%ld %ld", &size, &resident) != 2)
        resident = -1;
    fclose(f);
    if (resident < 0)
        return -1;
    return resident * (sysconf(_SC_PAGESIZE) / 1024);
}

static inline void corrupt(const char *what, const void *p)
{
    fprintf(stderr, "CORRUPT: %s at %p\n", what, p);
    exit(1);
}

static inline void oom(size_t n)
{
    fprintf(stderr, "out of memory allocating %zu bytes\n", n);
    exit(1);
}

/* malloc that exits on NULL (the benchmarks never expect failure). */
static inline void *xmalloc(size_t n)
{
    void *p = malloc(n);
    if (!p)
        oom(n);
    return p;
}

/* pthread_create that exits on failure. */
static inline void xthread(pthread_t *t, void *(*fn)(void *), void *arg)
{
    if (pthread_create(t, NULL, fn, arg)) {
        fprintf(stderr, "pthread_create failed\n");
        exit(1);
    }
}

/* ------------------------------------------------------------------ */
/* RNG: xorshift64*                                                    */

struct rng {
    uint64_t s;
};

static inline struct rng rng_make(uint64_t seed)
{
    /* splitmix64 step so that nearby seeds (thread indices) diverge */
    uint64_t z = seed + 0x9E3779B97F4A7C15ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    struct rng r = { z ? z : 1 };
    return r;
}

static inline uint64_t rng_next(struct rng *r)
{
    uint64_t x = r->s;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    r->s = x;
    return x * 0x2545F4914F6CDD1Dull;
}

/* uniform in [0, n) */
static inline uint64_t rng_below(struct rng *r, uint64_t n)
{
    return (uint64_t)(((unsigned __int128)rng_next(r) * n) >> 64);
}

/* uniform in [lo, hi] */
static inline size_t rng_range(struct rng *r, size_t lo, size_t hi)
{
    return lo + (size_t)rng_below(r, (uint64_t)(hi - lo) + 1);
}

/* uniform double in [0, 1) */
static inline double rng_unit(struct rng *r)
{
    return (double)(rng_next(r) >> 11) * (1.0 / 9007199254740992.0);
}

/* log-uniform in [lo, hi] */
static inline size_t rng_logu(struct rng *r, size_t lo, size_t hi)
{
    double v = (double)lo * exp(rng_unit(r) * log((double)hi / (double)lo));
    size_t n = (size_t)v;
    if (n < lo)
        n = lo;
    if (n > hi)
        n = hi;
    return n;
}

/* Fisher-Yates shuffle of an index array. */
static inline void shuffle_u32(struct rng *r, uint32_t *a, size_t n)
{
    for (size_t i = n; i > 1; i--) {
        size_t j = (size_t)rng_below(r, i);
        uint32_t t = a[i - 1];
        a[i - 1] = a[j];
        a[j] = t;
    }
}

/* ------------------------------------------------------------------ */
/* block patterns                                                      */

/*
 * fill_block/check_block: the caller remembers n and tag. Blocks up to
 * FILL_FULL bytes are written completely (8-byte words, then the last
 * 8 bytes); larger ones get their first and last 8 bytes written. Blocks
 * under 8 bytes are written byte by byte.
 */
#define FILL_FULL 256

static inline uint64_t pat_word(uint64_t tag, size_t i)
{
    return (tag + i + 1) * 0x9E3779B97F4A7C15ull;
}

static inline void put64(void *p, uint64_t v) { memcpy(p, &v, 8); }
static inline uint64_t get64(const void *p)
{
    uint64_t v;
    memcpy(&v, p, 8);
    return v;
}

static inline void fill_block(void *p, size_t n, uint64_t tag)
{
    unsigned char *b = p;
    if (n < 8) {
        for (size_t i = 0; i < n; i++)
            b[i] = (unsigned char)pat_word(tag, i);
        return;
    }
    if (n <= FILL_FULL) {
        for (size_t off = 0; off + 16 <= n; off += 8)
            put64(b + off, pat_word(tag, off));
    } else {
        put64(b, pat_word(tag, 0));
    }
    put64(b + n - 8, pat_word(tag, ~(size_t)0));
}

static inline void check_block(const void *p, size_t n, uint64_t tag)
{
    const unsigned char *b = p;
    if (n < 8) {
        for (size_t i = 0; i < n; i++)
            if (b[i] != (unsigned char)pat_word(tag, i))
                corrupt("small block", p);
        return;
    }
    if (n <= FILL_FULL) {
        for (size_t off = 0; off + 16 <= n; off += 8)
            if (get64(b + off) != pat_word(tag, off))
                corrupt("block body", p);
    } else if (get64(b) != pat_word(tag, 0)) {
        corrupt("block head", p);
    }
    if (get64(b + n - 8) != pat_word(tag, ~(size_t)0))
        corrupt("block tail", p);
}

/*
 * Self-describing blocks (n >= 16) for programs where the freeing thread
 * does not know the size: word 0 holds n ^ HDR_KEY, word 1 holds a salt
 * (for example the allocating thread), the rest follows fill_block with a
 * tag derived from both. check_hdr_block returns n.
 */
#define HDR_KEY 0x5A17C0DEF00DBA5Eull

static inline void fill_hdr_block(void *p, size_t n, uint64_t salt)
{
    unsigned char *b = p;
    put64(b, (uint64_t)n ^ HDR_KEY);
    put64(b + 8, salt);
    if (n > 16)
        fill_block(b + 16, n - 16, salt * 31 + n);
}

static inline size_t check_hdr_block(const void *p, size_t maxn)
{
    const unsigned char *b = p;
    size_t n = (size_t)(get64(b) ^ HDR_KEY);
    if (n < 16 || n > maxn)
        corrupt("block header", p);
    uint64_t salt = get64(b + 8);
    if (n > 16)
        check_block(b + 16, n - 16, salt * 31 + n);
    return n;
}

/* ------------------------------------------------------------------ */
/* output                                                              */

/*
 * Print the one result line: "result: ops=N secs=S" followed by the
 * optional extra " key=value" text given as a printf format.
 */
__attribute__((format(printf, 3, 4)))
static inline void report(uint64_t ops, double secs, const char *extra, ...)
{
    printf("result: ops=%llu secs=%.6f", (unsigned long long)ops, secs);
    if (extra && *extra) {
        va_list ap;
        va_start(ap, extra);
        putchar(' ');
        vprintf(extra, ap);
        va_end(ap);
    }
    putchar('\n');
    fflush(stdout);
}

#endif /* BENCH_H */

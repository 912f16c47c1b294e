/*
 * Shared helpers for the stress_*.c programs (included instead of
 * testhelper.h, which it pulls in).
 *
 *   - st_init(name, argc, argv): picks the run seed (argv[1], else
 *     $XALLOC_STRESS_SEED, else from the clock and pid) and prints it with
 *     the command line that repeats the run; every failure message repeats
 *     it too;
 *   - st_mix(): splitmix64, to derive per-thread / per-block seeds;
 *   - st_block_seed(id, gen): pattern seed of a block from its identity (an
 *     address-independent id and a generation), mixed with the run seed;
 *   - st_fill() / ST_VERIFY(): a word-at-a-time pattern (fast enough for
 *     64 MiB blocks) where byte i depends on the seed and on i, so shifted,
 *     swapped or stale contents are all detected; ST_VERIFY counts the
 *     bytes it checked in a per-thread counter;
 *   - ST_VERIFY_ZERO(): all bytes zero, also counted;
 *   - st_thread_done(): adds the thread's counters to the process totals;
 *   - st_now() / st_deadline_*: a time cap so that every program stays
 *     bounded on a slow or loaded machine (the figures printed say whether
 *     the cap cut a run short);
 *   - st_check_heap(): xa_check_heap() when running on xalloc (looked up
 *     with dlsym, so the same binary runs on glibc).
 */
#ifndef XALLOC_STRESS_H
#define XALLOC_STRESS_H

#include "testhelper.h"

#include <pthread.h>
#include <time.h>

static uint64_t st_run_seed;
static const char *st_name = "stress";

/* Bytes verified (pattern or zero) by this thread since its last flush. */
static __thread uint64_t st_tls_verified;
static uint64_t st_total_verified;

/* ------------------------------------------------------------------ */
/* Seeds                                                               */
/* ------------------------------------------------------------------ */

static inline uint64_t st_mix(uint64_t x)
{
    x += 0x9E3779B97F4A7C15ULL;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
    return x ^ (x >> 31);
}

/* A non-zero xorshift state for th_rand(), distinct per `stream`. */
TH_UNUSED static uint64_t st_rng(uint64_t stream)
{
    uint64_t s = st_mix(st_run_seed ^ st_mix(stream + 0x5851F42D4C957F2DULL));
    return s != 0 ? s : 1;
}

/* Pattern seed of block `id` in generation `gen`. */
static inline uint64_t st_block_seed(uint64_t id, uint64_t gen)
{
    return st_mix(st_run_seed ^ st_mix(id * 0x100000001B3ULL + gen));
}

TH_UNUSED static uint64_t st_parse_u64(const char *s, int *ok)
{
    char *end = NULL;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 0);
    *ok = errno == 0 && end != s && *end == '\0';
    return (uint64_t)v;
}

TH_UNUSED static void st_init(const char *name, int argc, char **argv)
{
    st_name = name;
    const char *env = getenv("XALLOC_STRESS_SEED");
    const char *src = argc > 1 ? argv[1] : (env != NULL && *env != '\0' ? env : NULL);
    if (src != NULL) {
        int ok = 0;
        st_run_seed = st_parse_u64(src, &ok);
        CHECKF(ok, "bad seed '%s' (a decimal or 0x number)", src);
    } else {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        st_run_seed = st_mix((uint64_t)ts.tv_sec * 1000000007ULL ^ (uint64_t)ts.tv_nsec ^
                             ((uint64_t)getpid() << 40));
        st_run_seed &= 0xFFFFFFFFFFFFULL; /* short enough to type */
    }
    printf("%s: seed %llu (repeat with XALLOC_STRESS_SEED=%llu; mode %s)\n", name,
           (unsigned long long)st_run_seed, (unsigned long long)st_run_seed,
           getenv("XALLOC_TEST_MODE") ? getenv("XALLOC_TEST_MODE") : "unset");
    fflush(stdout);
}

/* ------------------------------------------------------------------ */
/* Failure with context                                                */
/* ------------------------------------------------------------------ */

TH_NORETURN TH_PRINTF(4, 5) static void st_fail(const char *file, int line, const char *cond,
                                                const char *fmt, ...)
{
    char msg[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    th_fail(file, line, cond, "%s [%s seed %llu]", msg, st_name,
            (unsigned long long)st_run_seed);
}

/* CHECKF that also prints the run seed. */
#define ST_CHECK(cond, ...)                                                \
    do {                                                                   \
        if (!(cond))                                                       \
            st_fail(__FILE__, __LINE__, #cond, __VA_ARGS__);               \
    } while (0)

/* CHECK_CHILD (testhelper.h) that also prints the run seed. */
#define ST_CHECK_CHILD(pid, ...) th_check_child(st_fail, __FILE__, __LINE__, (pid), __VA_ARGS__)

/* Log-uniform value in [lo, hi] (0 < lo <= hi): a random octave, then uniform in it. */
TH_UNUSED static size_t st_log_range(uint64_t *rng, size_t lo, size_t hi)
{
    int klo = 63 - __builtin_clzll((unsigned long long)lo);
    int khi = 63 - __builtin_clzll((unsigned long long)hi);
    int k = (int)th_rand_range(rng, (size_t)klo, (size_t)khi);
    size_t a = (size_t)1 << k, b = ((size_t)2 << k) - 1;
    if (a < lo)
        a = lo;
    if (b > hi)
        b = hi;
    return th_rand_range(rng, a, b);
}

/* ------------------------------------------------------------------ */
/* Patterns                                                            */
/* ------------------------------------------------------------------ */

typedef uint64_t __attribute__((may_alias, aligned(1))) st_u64u;

static inline uint64_t st_word(uint64_t seed, uint64_t w)
{
    uint64_t x = (w + seed) * 0x9E3779B97F4A7C15ULL;
    return x ^ (x >> 29) ^ seed;
}

/* Byte i of the pattern of `seed` (little-endian bytes of the words). */
static inline uint8_t st_pat(uint64_t seed, size_t i)
{
    return (uint8_t)(st_word(seed, (uint64_t)(i >> 3)) >> (8 * (i & 7)));
}

/* Fill bytes [from, to) of p with the pattern of `seed`. */
TH_UNUSED static void st_fill(void *p, size_t from, size_t to, uint64_t seed)
{
    uint8_t *b = (uint8_t *)p;
    size_t i = from;
    while (i < to && (i & 7) != 0) {
        b[i] = st_pat(seed, i);
        i++;
    }
    for (; i + 8 <= to; i += 8)
        *(st_u64u *)(b + i) = st_word(seed, (uint64_t)(i >> 3));
    for (; i < to; i++)
        b[i] = st_pat(seed, i);
}

/* First byte in [from, to) that does not match, or SIZE_MAX. */
TH_UNUSED static size_t st_find_bad(const void *p, size_t from, size_t to, uint64_t seed)
{
    const uint8_t *b = (const uint8_t *)p;
    size_t i = from;
    while (i < to && (i & 7) != 0) {
        if (b[i] != st_pat(seed, i))
            return i;
        i++;
    }
    for (; i + 8 <= to; i += 8) {
        if (*(const st_u64u *)(b + i) != st_word(seed, (uint64_t)(i >> 3))) {
            for (size_t k = i; k < i + 8; k++)
                if (b[k] != st_pat(seed, k))
                    return k;
        }
    }
    for (; i < to; i++)
        if (b[i] != st_pat(seed, i))
            return i;
    return SIZE_MAX;
}

TH_UNUSED TH_PRINTF(7, 8) static void st_verify(const char *file, int line, const void *p,
                                                size_t from, size_t to, uint64_t seed,
                                                const char *what, ...)
{
    size_t bad = st_find_bad(p, from, to, seed);
    if (bad != SIZE_MAX) {
        char ctx[256];
        va_list ap;
        va_start(ap, what);
        vsnprintf(ctx, sizeof ctx, what, ap);
        va_end(ap);
        const uint8_t *b = (const uint8_t *)p;
        size_t run = 0;
        while (bad + run < to && b[bad + run] != st_pat(seed, bad + run))
            run++;
        st_fail(file, line, "pattern intact",
                "%s: block %p bytes [%zu, %zu) pattern %#llx: byte %zu is 0x%02x, expected "
                "0x%02x (%zu bad bytes in a row from there)",
                ctx, p, from, to, (unsigned long long)seed, bad, b[bad], st_pat(seed, bad), run);
    }
    st_tls_verified += to - from;
}

/* ST_VERIFY(p, from, to, seed, "context fmt", args...) */
#define ST_VERIFY(p, from, to, seed, ...)                                         \
    st_verify(__FILE__, __LINE__, (p), (from), (to), (seed), __VA_ARGS__)

TH_UNUSED static size_t st_find_nonzero(const void *p, size_t n)
{
    const uint8_t *b = (const uint8_t *)p;
    size_t i = 0;
    while (i < n && ((uintptr_t)(b + i) & 7) != 0) {
        if (b[i] != 0)
            return i;
        i++;
    }
    for (; i + 8 <= n; i += 8)
        if (*(const st_u64u *)(b + i) != 0)
            break;
    for (; i < n; i++)
        if (b[i] != 0)
            return i;
    return SIZE_MAX;
}

TH_UNUSED TH_PRINTF(5, 6) static void st_verify_zero(const char *file, int line, const void *p,
                                                     size_t n, const char *what, ...)
{
    size_t bad = st_find_nonzero(p, n);
    if (bad != SIZE_MAX) {
        char ctx[256];
        va_list ap;
        va_start(ap, what);
        vsnprintf(ctx, sizeof ctx, what, ap);
        va_end(ap);
        const uint8_t *b = (const uint8_t *)p;
        size_t run = 0;
        while (bad + run < n && b[bad + run] != 0)
            run++;
        st_fail(file, line, "zeroed", "%s: block %p size %zu: byte %zu is 0x%02x (%zu non-zero bytes in a row)",
                ctx, p, n, bad, b[bad], run);
    }
    st_tls_verified += n;
}

#define ST_VERIFY_ZERO(p, n, ...) st_verify_zero(__FILE__, __LINE__, (p), (n), __VA_ARGS__)

/* Add this thread's counters to the totals (call once per thread, at its end). */
TH_UNUSED static void st_thread_done(void)
{
    __atomic_add_fetch(&st_total_verified, st_tls_verified, __ATOMIC_RELAXED);
    st_tls_verified = 0;
}

TH_UNUSED static uint64_t st_verified_total(void)
{
    st_thread_done();
    return __atomic_load_n(&st_total_verified, __ATOMIC_RELAXED);
}

/* ------------------------------------------------------------------ */
/* Time                                                                */
/* ------------------------------------------------------------------ */

TH_UNUSED static double st_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static double st_deadline_at;
static int st_deadline_hit;

/* Work loops stop early once `seconds` from now have passed. */
TH_UNUSED static void st_deadline_set(double seconds)
{
    st_deadline_at = st_now() + seconds;
    st_deadline_hit = 0;
}

/* 1 once the time cap has passed (cheap enough to call every few ops). */
TH_UNUSED static int st_time_up(void)
{
    if (__atomic_load_n(&st_deadline_hit, __ATOMIC_RELAXED))
        return 1;
    if (st_now() >= st_deadline_at) {
        __atomic_store_n(&st_deadline_hit, 1, __ATOMIC_RELAXED);
        return 1;
    }
    return 0;
}

TH_UNUSED static const char *st_cap_note(void)
{
    return __atomic_load_n(&st_deadline_hit, __ATOMIC_RELAXED) ? " (time cap reached: cut short)"
                                                               : "";
}

/* ------------------------------------------------------------------ */
/* Allocator hooks                                                     */
/* ------------------------------------------------------------------ */

/* xa_check_heap() on xalloc (the calling thread's heap and every arena); no-op on glibc. */
TH_UNUSED static void st_check_heap(void)
{
    static int (*fn)(void);
    static int looked;
    if (!__atomic_load_n(&looked, __ATOMIC_ACQUIRE)) {
        if (th_mode() != TH_MODE_GLIBC) {
            void *s = th_sym("xa_check_heap", 1);
            int (*f)(void);
            memcpy(&f, &s, sizeof f);
            __atomic_store_n(&fn, f, __ATOMIC_RELAXED);
        }
        __atomic_store_n(&looked, 1, __ATOMIC_RELEASE);
    }
    int (*f)(void) = __atomic_load_n(&fn, __ATOMIC_RELAXED);
    if (f != NULL)
        f();
}

/* malloc_usable_size, checked against the requested size. */
#define ST_CHECK_USABLE(p, n)                                                        \
    do {                                                                             \
        size_t st_u_ = malloc_usable_size(p);                                        \
        ST_CHECK(st_u_ >= (size_t)(n), "%p: usable size %zu < requested %zu", (void *)(p), \
                 st_u_, (size_t)(n));                                                \
    } while (0)

#define ST_MIB(x) ((double)(x) / (1024.0 * 1024.0))

#endif /* XALLOC_STRESS_H */

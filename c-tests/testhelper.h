/*
 * Shared helpers for the xalloc C and C++ tests in this directory.
 *
 * Every test program includes this header exactly once.  It provides:
 *   - CHECK(cond) / CHECKF(cond, fmt, ...): on failure print file:line and
 *     the condition (plus an optional message) to stderr and _exit(1);
 *   - a position-dependent byte pattern: th_fill() / CHECK_PAT();
 *   - th_rss_bytes(): resident set size from /proc/self/statm;
 *   - th_now_ms(): a monotonic clock in milliseconds;
 *   - waiting for forked children: CHECK_CHILD(pid, fmt, ...) waits and
 *     fails unless the child exited with status 0; th_wait_child() returns
 *     the wait status instead; th_waitpid() is the async-signal-safe core;
 *     th_status_str() describes a wait status (TH_EXIT_TIMEOUT: the exit
 *     status of the fork tests' SIGALRM handlers);
 *   - knowledge of how the harness runs the program (XALLOC_TEST_MODE):
 *       "preload" - LD_PRELOAD of the xalloc library,
 *       "direct"  - linked against the library with -lxalloc,
 *       "glibc"   - plain C library, no xalloc (checks the test itself),
 *       unset     - run by hand; xalloc-only checks run if the library
 *                   symbols are present;
 *   - CHECK_OWNED(p): p is a live block start of xalloc (via xa_owns, which
 *     is looked up with dlsym so the same binary also runs without xalloc);
 *   - th_announce_ptr(p): prints "XALLOC_TEST_PTR=<p>" on stdout so the
 *     harness can match "$PTR" in `// stderr:` expectations.
 *
 * When the program is run by the harness in a mode that uses xalloc, a
 * constructor verifies that `malloc` really resolves into the xalloc library
 * (otherwise every test would silently exercise glibc).
 */
#ifndef XALLOC_TESTHELPER_H
#define XALLOC_TESTHELPER_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <dlfcn.h>
#include <errno.h>
#include <malloc.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define TH_KIB ((size_t)1024)
#define TH_MIB ((size_t)1024 * 1024)
#define TH_GIB ((size_t)1024 * 1024 * 1024)

#if defined(__GNUC__)
#define TH_UNUSED __attribute__((unused))
#define TH_NORETURN __attribute__((noreturn))
#define TH_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define TH_UNUSED
#define TH_NORETURN
#define TH_PRINTF(a, b)
#endif

/* ------------------------------------------------------------------ */
/* Failure reporting                                                   */
/* ------------------------------------------------------------------ */

TH_UNUSED TH_NORETURN TH_PRINTF(4, 5) static void
th_fail(const char *file, int line, const char *cond, const char *fmt, ...)
{
    fflush(stdout);
    fprintf(stderr, "%s:%d: CHECK failed: %s", file, line, cond);
    if (fmt != NULL) {
        va_list ap;
        va_start(ap, fmt);
        fputs(": ", stderr);
        vfprintf(stderr, fmt, ap);
        va_end(ap);
    }
    fputc('\n', stderr);
    fflush(stderr);
    /* _exit: other threads may be inside the allocator or stdio. */
    _exit(1);
}

#define CHECK(cond)                                                        \
    do {                                                                   \
        if (!(cond))                                                       \
            th_fail(__FILE__, __LINE__, #cond, NULL);                      \
    } while (0)

#define CHECKF(cond, ...)                                                  \
    do {                                                                   \
        if (!(cond))                                                       \
            th_fail(__FILE__, __LINE__, #cond, __VA_ARGS__);               \
    } while (0)

/* ------------------------------------------------------------------ */
/* Small utilities                                                     */
/* ------------------------------------------------------------------ */

TH_UNUSED static int th_aligned(const void *p, size_t align)
{
    return ((uintptr_t)p & (align - 1)) == 0;
}

TH_UNUSED static size_t th_page_size(void)
{
    return (size_t)sysconf(_SC_PAGESIZE);
}

TH_UNUSED static size_t th_round_up(size_t n, size_t to)
{
    return (n + to - 1) / to * to;
}

/* xorshift64* generator; state must be non-zero. */
TH_UNUSED static uint64_t th_rand(uint64_t *state)
{
    uint64_t x = *state;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *state = x;
    return x * 0x2545F4914F6CDD1DULL;
}

/* Uniform-ish value in [lo, hi]. */
TH_UNUSED static size_t th_rand_range(uint64_t *state, size_t lo, size_t hi)
{
    return lo + (size_t)(th_rand(state) % (uint64_t)(hi - lo + 1));
}

/* Resident set size of this process in bytes. */
TH_UNUSED static size_t th_rss_bytes(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    CHECKF(f != NULL, "cannot open /proc/self/statm: %s", strerror(errno));
    unsigned long total = 0, resident = 0;
    int n = fscanf(f, "%lu %lu", &total, &resident);
    fclose(f);
    CHECK(n == 2);
    return (size_t)resident * th_page_size();
}

/* CLOCK_MONOTONIC in milliseconds. */
TH_UNUSED static double th_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec * 1e-6;
}

/* ------------------------------------------------------------------ */
/* Data patterns                                                       */
/* ------------------------------------------------------------------ */

/*
 * Byte at absolute index i of a block filled with `seed`.  Not periodic with
 * any small power of two, so shifted copies are detected.
 */
static inline uint8_t th_pat(uint64_t seed, size_t i)
{
    uint64_t h = (uint64_t)i * 0x9E3779B97F4A7C15ULL + seed * 0xD1B54A32D192ED03ULL;
    return (uint8_t)((h >> 29) ^ (h >> 47) ^ (uint64_t)(i >> 12));
}

/* Fill bytes [from, to) of p with the pattern of `seed`. */
TH_UNUSED static void th_fill(void *p, size_t from, size_t to, uint64_t seed)
{
    uint8_t *b = (uint8_t *)p;
    for (size_t i = from; i < to; i++)
        b[i] = th_pat(seed, i);
}

/* Index of the first byte in [from, to) that does not match, or SIZE_MAX. */
TH_UNUSED static size_t th_find_bad(const void *p, size_t from, size_t to, uint64_t seed)
{
    const uint8_t *b = (const uint8_t *)p;
    for (size_t i = from; i < to; i++)
        if (b[i] != th_pat(seed, i))
            return i;
    return SIZE_MAX;
}

TH_UNUSED static void th_check_pat(const char *file, int line, const void *p,
                                   size_t from, size_t to, uint64_t seed)
{
    size_t bad = th_find_bad(p, from, to, seed);
    if (bad != SIZE_MAX)
        th_fail(file, line, "pattern intact",
                "block %p bytes [%zu, %zu) seed %llu: byte %zu is 0x%02x, expected 0x%02x",
                p, from, to, (unsigned long long)seed, bad,
                ((const uint8_t *)p)[bad], th_pat(seed, bad));
}

#define CHECK_PAT(p, from, to, seed) th_check_pat(__FILE__, __LINE__, (p), (from), (to), (seed))

/* Index of the first byte in [0, n) that is not `value`, or SIZE_MAX. */
TH_UNUSED static size_t th_find_not(const void *p, size_t n, uint8_t value)
{
    const uint8_t *b = (const uint8_t *)p;
    for (size_t i = 0; i < n; i++)
        if (b[i] != value)
            return i;
    return SIZE_MAX;
}

#define CHECK_ALL_BYTES(p, n, value)                                              \
    do {                                                                          \
        size_t th_bad_ = th_find_not((p), (n), (uint8_t)(value));                 \
        if (th_bad_ != SIZE_MAX)                                                  \
            th_fail(__FILE__, __LINE__, "all bytes == " #value,                   \
                    "block %p size %zu: byte %zu is 0x%02x", (const void *)(p),   \
                    (size_t)(n), th_bad_, ((const uint8_t *)(p))[th_bad_]);       \
    } while (0)

/* ------------------------------------------------------------------ */
/* Forked children                                                     */
/* ------------------------------------------------------------------ */

/*
 * Exit status with which the fork tests' SIGALRM handlers end the process
 * when an alarm() fires (a hang, most likely a deadlock).  A forked child
 * that keeps the handler exits with it too; one that resets SIGALRM to
 * SIG_DFL is killed by SIGALRM instead.  th_status_str() names both cases.
 */
#define TH_EXIT_TIMEOUT 2

/*
 * waitpid(pid, status, 0), started again while it fails with EINTR;
 * otherwise the same result (pid, or -1 with errno set).  Only waitpid is
 * called, so a signal handler that forks may reap its child with it (it
 * changes errno, which such a handler saves and restores).
 */
TH_UNUSED static pid_t th_waitpid(pid_t pid, int *status)
{
    pid_t r;
    do
        r = waitpid(pid, status, 0);
    while (r < 0 && errno == EINTR);
    return r;
}

/* 1 if the wait status says the child exited normally with status 0. */
TH_UNUSED static int th_status_ok(int status)
{
    return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

/*
 * Describes a wait status in buf ("exit status 3", "killed by signal 11
 * (Segmentation fault)", ...) and returns buf.  A time-out (exit status
 * TH_EXIT_TIMEOUT or death by SIGALRM) is marked as a probable deadlock.
 */
TH_UNUSED static const char *th_status_str(int status, char *buf, size_t len)
{
    if (WIFEXITED(status)) {
        int code = WEXITSTATUS(status);
        snprintf(buf, len, "exit status %d%s", code,
                 code == TH_EXIT_TIMEOUT ? " (TH_EXIT_TIMEOUT: timed out, deadlock?)" : "");
    } else if (WIFSIGNALED(status)) {
        int sig = WTERMSIG(status);
        int core = 0;
#ifdef WCOREDUMP
        core = WCOREDUMP(status) != 0;
#endif
        snprintf(buf, len, "killed by signal %d (%s%s)%s", sig, strsignal(sig),
                 core ? ", core dumped" : "",
                 sig == SIGALRM ? ": its alarm() fired, timed out (deadlock?)" : "");
    } else {
        snprintf(buf, len, "wait status 0x%x", (unsigned)status);
    }
    return buf;
}

/*
 * Waits for the child `pid` (EINTR is retried) and returns its wait status,
 * for a test that looks at the status itself.  Fails the test if waitpid
 * fails (the message gives the pid; the location is this function's).
 */
TH_UNUSED static int th_wait_child(pid_t pid)
{
    int status = 0;
    pid_t r = th_waitpid(pid, &status);
    CHECKF(r == pid, "waitpid(%d) returned %d: %s", (int)pid, (int)r,
           r < 0 ? strerror(errno) : "not that child");
    return status;
}

/* A failure function with th_fail's parameters (th_fail, or a wrapper). */
typedef void (*th_fail_fn)(const char *file, int line, const char *cond, const char *fmt, ...);

/*
 * CHECK_CHILD's body; `fail` reports the failure (stress.h passes st_fail,
 * which adds the run seed).
 */
TH_UNUSED TH_PRINTF(5, 6) static void th_check_child(th_fail_fn fail, const char *file, int line,
                                                     pid_t pid, const char *fmt, ...)
{
    int status = 0;
    pid_t r = th_waitpid(pid, &status);
    if (r == pid && th_status_ok(status))
        return;
    int err = errno;
    char what[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    if (r != pid) {
        fail(file, line, "waitpid(pid) == pid", "%s: waitpid(%d) returned %d: %s", what, (int)pid,
             (int)r, r < 0 ? strerror(err) : "not that child");
    } else {
        char how[160];
        fail(file, line, "child exited with status 0", "%s: %s", what,
             th_status_str(status, how, sizeof how));
    }
}

/*
 * CHECK_CHILD(pid, "fmt", args...): waits for the forked child `pid`
 * (retrying on EINTR) and fails the test unless it exited normally with
 * status 0.  The message names the child with the printf-style arguments
 * and says how it ended, e.g. "fork 7: child: killed by signal 11 (...)".
 */
#define CHECK_CHILD(pid, ...) th_check_child(th_fail, __FILE__, __LINE__, (pid), __VA_ARGS__)

/* ------------------------------------------------------------------ */
/* How the harness runs us                                             */
/* ------------------------------------------------------------------ */

enum th_mode { TH_MODE_UNSET, TH_MODE_PRELOAD, TH_MODE_DIRECT, TH_MODE_GLIBC };

TH_UNUSED static enum th_mode th_mode(void)
{
    const char *m = getenv("XALLOC_TEST_MODE");
    if (m == NULL || *m == '\0')
        return TH_MODE_UNSET;
    if (strcmp(m, "preload") == 0)
        return TH_MODE_PRELOAD;
    if (strcmp(m, "direct") == 0)
        return TH_MODE_DIRECT;
    if (strcmp(m, "glibc") == 0)
        return TH_MODE_GLIBC;
    th_fail(__FILE__, __LINE__, "known XALLOC_TEST_MODE", "unknown mode '%s'", m);
}

/* 1 if the harness says the program runs on xalloc. */
TH_UNUSED static int th_expect_xalloc(void)
{
    enum th_mode m = th_mode();
    return m == TH_MODE_PRELOAD || m == TH_MODE_DIRECT;
}

/*
 * Look up a symbol in the global scope.  When the program runs on xalloc
 * and `required` is set, a missing symbol is a failure (never a skip).
 */
TH_UNUSED static void *th_sym(const char *name, int required)
{
    void *s = dlsym(RTLD_DEFAULT, name);
    if (s == NULL && required && th_expect_xalloc())
        th_fail(__FILE__, __LINE__, "symbol exported by xalloc",
                "dlsym(RTLD_DEFAULT, \"%s\") found nothing", name);
    return s;
}

typedef int (*th_owns_fn)(const void *);

/* xa_owns, or NULL when not running on xalloc. */
TH_UNUSED static th_owns_fn th_xa_owns(void)
{
    static th_owns_fn fn;
    static int looked;
    if (!looked) {
        if (th_mode() != TH_MODE_GLIBC) {
            void *s = th_sym("xa_owns", 1);
            memcpy(&fn, &s, sizeof fn);
        }
        looked = 1;
    }
    return fn;
}

/* Returns xa_owns(p), or -1 when xa_owns is not available (glibc run). */
TH_UNUSED static int th_owns(const void *p)
{
    th_owns_fn fn = th_xa_owns();
    return fn != NULL ? fn(p) : -1;
}

#define CHECK_OWNED(p)                                                          \
    do {                                                                        \
        int th_o_ = th_owns((const void *)(p));                                 \
        CHECKF(th_o_ != 0, "%p (" #p ") is not a live xalloc block (xa_owns returned 0)", \
               (const void *)(p));                                              \
        CHECKF(th_o_ == 1 || th_o_ == -1, "xa_owns(%p) returned %d, expected 0 or 1", \
               (const void *)(p), th_o_);                                       \
    } while (0)

#define CHECK_NOT_OWNED(p)                                                      \
    do {                                                                        \
        int th_o_ = th_owns((const void *)(p));                                 \
        CHECKF(th_o_ != 1, "xa_owns(%p) (" #p ") returned 1, expected 0",       \
               (const void *)(p));                                              \
        CHECKF(th_o_ == 0 || th_o_ == -1, "xa_owns(%p) returned %d, expected 0 or 1", \
               (const void *)(p), th_o_);                                       \
    } while (0)

/* Same file (device and inode)? */
TH_UNUSED static int th_same_file(const char *a, const char *b)
{
    struct stat sa, sb;
    if (stat(a, &sa) != 0 || stat(b, &sb) != 0)
        return 0;
    return sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

/*
 * Path of the object that defines `name` in the global scope, or NULL.
 */
TH_UNUSED static const char *th_sym_origin(const char *name)
{
    void *s = dlsym(RTLD_DEFAULT, name);
    Dl_info info;
    if (s == NULL || dladdr(s, &info) == 0)
        return NULL;
    return info.dli_fname;
}

/*
 * 1 if `name` resolves into the xalloc library.  The harness passes the
 * library path in XALLOC_TEST_LIB; without it, the file name is checked.
 */
TH_UNUSED static int th_sym_in_xalloc(const char *name)
{
    const char *origin = th_sym_origin(name);
    if (origin == NULL)
        return 0;
    const char *lib = getenv("XALLOC_TEST_LIB");
    if (lib != NULL && *lib != '\0')
        return th_same_file(origin, lib);
    const char *base = strrchr(origin, '/');
    return strstr(base != NULL ? base : origin, "xalloc") != NULL;
}

/* Print the pointer for `$PTR` matching in the harness; flushed at once. */
TH_UNUSED static void th_announce_ptr(const void *p)
{
    printf("XALLOC_TEST_PTR=%p\n", p);
    fflush(stdout);
}

/* Call after a misuse that should have aborted the program. */
TH_UNUSED TH_NORETURN static void th_misuse_not_detected(const char *what)
{
    fprintf(stderr, "misuse was not detected: %s returned normally\n", what);
    fflush(stderr);
    _exit(3);
}

/* Hide a pointer's origin from the compiler (no warnings, no folding). */
TH_UNUSED static void *th_launder(void *p)
{
    void *volatile v = p;
    return v;
}

TH_UNUSED static size_t th_size(size_t n)
{
    volatile size_t v = n;
    return v;
}

#if defined(__GNUC__)
__attribute__((constructor)) static void th_check_interposition(void)
{
    if (!th_expect_xalloc())
        return;
    static const char *const names[] = {"malloc", "free", "calloc", "realloc"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        if (!th_sym_in_xalloc(names[i])) {
            const char *origin = th_sym_origin(names[i]);
            fprintf(stderr,
                    "testhelper: running in XALLOC_TEST_MODE=%s but '%s' resolves to %s, "
                    "not to the xalloc library (%s)\n",
                    getenv("XALLOC_TEST_MODE"), names[i], origin ? origin : "(nothing)",
                    getenv("XALLOC_TEST_LIB") ? getenv("XALLOC_TEST_LIB") : "?");
            _exit(1);
        }
    }
}
#endif

#endif /* XALLOC_TESTHELPER_H */

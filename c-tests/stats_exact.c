// mode: preload direct
//
// xa_stats() is exact: `in_use` counts the bytes of live blocks (rounded to
// their block size), blocks freed into a thread's cache or on their way to
// their owner count in `cached_free` and never in `in_use`, and
// mallinfo2().uordblks equals `in_use`.
//
// Part 1 (one thread): 1000 mallocs of 64 bytes add exactly 64000 to
// in_use; freeing them all brings in_use back exactly, with some of them
// (at most one class cache: 16 KiB) cached; malloc_trim (xa_trim) empties
// the thread's caches: cached_free 0, in_use unchanged.
//
// Part 2 (blocks freed by another thread): the main thread allocates 1000
// blocks, a second thread frees them all.  in_use is back to the baseline
// at once and cached_free grows by exactly 64000 (the blocks the freeing
// thread keeps, at most 128 (fewer here: one class's hot list holds 16), plus those pushed to the owner, which has not
// taken them in yet).  After the owner's xa_trim only the freeing thread's
// kept blocks remain cached (at most 16 here, in its hot list) with the last
// chain it has not sent yet (at most 16 blocks of one slab); after the freeing thread's
// malloc_trim and the owner's xa_trim nothing is.  Then the second thread
// frees 100 more and exits: its kept blocks go home, and after the owner's
// xa_trim nothing is cached.
#include "testhelper.h"
#include "xalloc.h"

#include <pthread.h>

#define N 1000
#define SZ 64

typedef int (*stats_fn)(xa_stats_t *);
typedef int (*trim_fn)(void);

static stats_fn xstats;
static trim_fn xtrim;
static void *blocks[N];

static xa_stats_t snap(const char *what)
{
    xa_stats_t s;
    memset(&s, 0, sizeof s);
    s.version = XA_STATS_VERSION;
    CHECK(xstats(&s) == 0);
    struct mallinfo2 mi = mallinfo2();
    CHECKF(mi.uordblks == s.in_use, "%s: mallinfo2().uordblks %zu != xa_stats in_use %zu",
           what, mi.uordblks, s.in_use);
    return s;
}

static void show(const char *what, const xa_stats_t *s)
{
    printf("%-40s in_use %zu (small %zu) cached_free %zu slab_free %zu\n", what, s->in_use,
           s->small_in_use, s->cached_free, s->slab_free);
    fflush(stdout);
}

/* ---- the second thread: does what main asks, one command at a time ---- */

enum cmd { C_NONE, C_FREE_ALL, C_TRIM, C_FREE_100_EXIT };

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cond = PTHREAD_COND_INITIALIZER;
static enum cmd cmd = C_NONE;
static int done_count; /* commands completed (0 = started) */
static int ready;

static void *worker(void *arg)
{
    (void)arg;
    /* Get a heap (and a cache) of its own. */
    void *own = malloc(th_size(16));
    CHECK(own != NULL);
    free(own);
    pthread_mutex_lock(&lock);
    ready = 1;
    pthread_cond_broadcast(&cond);
    for (;;) {
        while (cmd == C_NONE)
            pthread_cond_wait(&cond, &lock);
        enum cmd c = cmd;
        cmd = C_NONE;
        pthread_mutex_unlock(&lock);
        if (c == C_FREE_ALL) {
            for (int i = 0; i < N; i++)
                free(blocks[i]);
        } else if (c == C_TRIM) {
            malloc_trim(0);
        } else {
            for (int i = 0; i < 100; i++)
                free(blocks[i]);
        }
        pthread_mutex_lock(&lock);
        done_count++;
        pthread_cond_broadcast(&cond);
        if (c == C_FREE_100_EXIT)
            break;
    }
    pthread_mutex_unlock(&lock);
    return NULL;
}

static void ask(enum cmd c)
{
    pthread_mutex_lock(&lock);
    int target = done_count + 1;
    cmd = c;
    pthread_cond_broadcast(&cond);
    while (done_count < target)
        pthread_cond_wait(&cond, &lock);
    pthread_mutex_unlock(&lock);
}

int main(void)
{
    if (th_mode() == TH_MODE_GLIBC) {
        printf("stats_exact: xalloc only\n");
        return 0;
    }
    void *s1 = th_sym("xa_stats", 1), *s2 = th_sym("xa_trim", 1);
    if (s1 == NULL || s2 == NULL) {
        printf("stats_exact: not running on xalloc, skipped\n");
        return 0;
    }
    memcpy(&xstats, &s1, sizeof xstats);
    memcpy(&xtrim, &s2, sizeof xtrim);
    /* stdout's buffer is allocated by the first printf: before any baseline. */
    printf("stats_exact: start\n");
    fflush(stdout);

    /* ---- Part 1: one thread ---- */
    xtrim();
    xa_stats_t base = snap("baseline");
    show("part 1 baseline (after xa_trim)", &base);
    CHECKF(base.cached_free == 0, "one thread, just trimmed: cached_free %zu, expected 0",
           base.cached_free);

    for (int i = 0; i < N; i++) {
        blocks[i] = malloc(th_size(SZ));
        CHECK(blocks[i] != NULL);
        CHECK(malloc_usable_size(blocks[i]) == SZ);
        memset(blocks[i], 0x5a, SZ);
    }
    xa_stats_t s = snap("after mallocs");
    show("after 1000 x 64 B malloc", &s);
    CHECKF(s.in_use == base.in_use + N * SZ, "in_use grew by %zd, expected exactly %d",
           (ssize_t)(s.in_use - base.in_use), N * SZ);
    CHECKF(s.cached_free == 0, "cached_free %zu after mallocs only, expected 0", s.cached_free);

    for (int i = 0; i < N; i++)
        free(blocks[i]);
    s = snap("after frees");
    show("after freeing them", &s);
    CHECKF(s.in_use == base.in_use, "in_use %zu after freeing all, expected exactly %zu",
           s.in_use, base.in_use);
    CHECKF(s.cached_free > 0, "no freed block is cached (cached_free 0)");
    CHECKF(s.cached_free % SZ == 0 && s.cached_free <= 16384,
           "cached_free %zu: expected a multiple of %d, at most one class cache (16 KiB)",
           s.cached_free, SZ);

    xtrim();
    s = snap("after trim");
    show("after xa_trim", &s);
    CHECKF(s.in_use == base.in_use, "xa_trim changed in_use: %zu, expected %zu", s.in_use,
           base.in_use);
    CHECKF(s.cached_free == 0, "cached_free %zu after xa_trim (one thread), expected 0",
           s.cached_free);

    /* ---- Part 2: blocks freed by another thread ---- */
    pthread_t t;
    CHECK(pthread_create(&t, NULL, worker, NULL) == 0);
    pthread_mutex_lock(&lock);
    while (!ready)
        pthread_cond_wait(&cond, &lock);
    pthread_mutex_unlock(&lock);
    xtrim();
    base = snap("part 2 baseline");
    show("part 2 baseline (worker started)", &base);
    /* The worker caches the one 16-byte block it freed. */
    CHECKF(base.cached_free == 16, "cached_free %zu: expected 16 (the worker's one freed block)",
           base.cached_free);

    for (int i = 0; i < N; i++) {
        blocks[i] = malloc(th_size(SZ));
        CHECK(blocks[i] != NULL);
        memset(blocks[i], 0x6b, SZ);
    }
    s = snap("part 2 mallocs");
    show("after 1000 x 64 B malloc", &s);
    CHECKF(s.in_use == base.in_use + N * SZ, "in_use grew by %zd, expected exactly %d",
           (ssize_t)(s.in_use - base.in_use), N * SZ);

    ask(C_FREE_ALL);
    s = snap("worker freed");
    show("after the worker freed them", &s);
    CHECKF(s.in_use == base.in_use,
           "in_use %zu after another thread freed every block, expected exactly %zu", s.in_use,
           base.in_use);
    CHECKF(s.cached_free == base.cached_free + N * SZ,
           "cached_free %zu, expected exactly %zu (every freed block kept by the worker or "
           "waiting for its owner)",
           s.cached_free, base.cached_free + N * SZ);

    xtrim(); /* the owner takes in what was sent home */
    s = snap("owner trimmed");
    show("after the owner's xa_trim", &s);
    CHECKF(s.in_use == base.in_use, "in_use %zu, expected %zu", s.in_use, base.in_use);
    CHECKF(s.cached_free >= base.cached_free &&
               s.cached_free - base.cached_free <= 32 * SZ,
           "cached_free %zu: the worker may keep at most 32 blocks (one class's hot list, and "
           "one chain of blocks on their way home) (%d bytes) beyond the baseline %zu",
           s.cached_free, 32 * SZ, base.cached_free);

    ask(C_TRIM); /* the worker sends its kept blocks home, its own to its slab */
    xtrim();
    s = snap("both trimmed");
    show("after the worker's and the owner's trim", &s);
    CHECKF(s.in_use == base.in_use, "in_use %zu, expected %zu", s.in_use, base.in_use);
    CHECKF(s.cached_free == 0, "cached_free %zu after both threads trimmed, expected 0",
           s.cached_free);

    for (int i = 0; i < 100; i++) {
        blocks[i] = malloc(th_size(SZ));
        CHECK(blocks[i] != NULL);
    }
    ask(C_FREE_100_EXIT);
    CHECK(pthread_join(t, NULL) == 0);
    xtrim();
    s = snap("worker exited");
    show("worker freed 100 and exited; owner trimmed", &s);
    CHECKF(s.in_use == base.in_use, "in_use %zu, expected %zu", s.in_use, base.in_use);
    CHECKF(s.cached_free == 0, "cached_free %zu after the freeing thread exited, expected 0",
           s.cached_free);
    printf("stats_exact: ok\n");
    return 0;
}

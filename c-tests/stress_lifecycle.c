// mode: preload direct glibc
// timeout: 40
// stdout: stress_lifecycle: ok
// stdout: stress_lifecycle: atexit handler ok
// stdout: stress_lifecycle: atexit handler registered by a thread ok
// stdout: stress_lifecycle: program destructor ok
//
// Allocation at the edges of a thread's and the program's life.
//   - 40 pthread keys are created by a constructor that runs before the
//     program's first allocation (so the allocator's own key, if it makes
//     one at its first call, is numbered 40 or above); then 1000 threads
//     whose first allocator call is the calloc glibc makes inside
//     pthread_setspecific for a key numbered 32 or above (the second-level
//     key table), each then allocating and freeing 64 blocks; resident
//     memory may grow by at most 64 MiB over them (a torn-down thread's
//     memory must be reused);
//   - threads whose first call is a free of another thread's block, or
//     posix_memalign, and threads whose first allocation happens inside a
//     key destructor at thread exit;
//   - key destructors that verify, free and allocate blocks, and re-set
//     their key so glibc runs further destructor rounds (3 rounds);
//   - blocks a thread allocated during its life, freed by that thread in a
//     late destructor round (after its heap was torn down), and blocks
//     handed to main and freed after the thread is gone;
//   - allocation and free in atexit handlers (one registered by a thread)
//     and in the program's destructor, after main returns;
//   - a shared library, compiled at run time with `cc` (run without
//     LD_PRELOAD) into a temporary directory and dlopen'ed, whose
//     constructor allocates; threads touch
//     its dynamic TLS (allocated by glibc with malloc on first use in each
//     thread); dlclose runs its destructor, which frees.  Without a C
//     compiler this sub-case prints a skip line.
// Every block is verified against the pattern of its id.  Optional
// argument: seed.
#include "stress.h"

#include <sys/wait.h>

#define NKEYS 40
#define NTHREADS 800
#define CONCURRENT 4
#define STASH_MAX (NTHREADS * 8 + 64)

/* ------------------------------------------------------------------ */
/* Self-describing blocks, for values passed through void *            */
/* ------------------------------------------------------------------ */

#define TB_MAGIC 0x7B10C5EEDULL

struct tblk {
    uint64_t magic;
    uint64_t id;
    uint64_t gen;
    size_t n;
    unsigned char data[];
};

static size_t pick_size(uint64_t *rng)
{
    uint64_t r = th_rand(rng) % 100;
    if (r < 80)
        return th_rand_range(rng, 0, 300);
    if (r < 97)
        return st_log_range(rng, 301, 40 * TH_KIB);
    return st_log_range(rng, 40 * TH_KIB, 1 * TH_MIB);
}

static struct tblk *tb_new(uint64_t id, uint64_t gen, size_t n)
{
    struct tblk *b = (struct tblk *)malloc(sizeof *b + n);
    ST_CHECK(b != NULL, "malloc(%zu)", sizeof *b + n);
    b->magic = TB_MAGIC ^ id;
    b->id = id;
    b->gen = gen;
    b->n = n;
    st_fill(b->data, 0, n, st_block_seed(id, gen));
    return b;
}

static void tb_verify(const struct tblk *b, const char *where)
{
    ST_CHECK(b != NULL && b->magic == (TB_MAGIC ^ b->id), "%s: block %p has a bad header", where,
             (const void *)b);
    ST_VERIFY(b->data, 0, b->n, st_block_seed(b->id, b->gen), "%s: block id %#llx gen %llu",
              where, (unsigned long long)b->id, (unsigned long long)b->gen);
}

static void tb_free(struct tblk *b, const char *where)
{
    tb_verify(b, where);
    b->magic = 0;
    free(b);
}

/* Blocks for main (after the threads are gone) and for the atexit handler. */
static pthread_mutex_t stash_lock = PTHREAD_MUTEX_INITIALIZER;
static struct tblk *stash[STASH_MAX];
static int nstash;

static void stash_put(struct tblk *b)
{
    pthread_mutex_lock(&stash_lock);
    ST_CHECK(nstash < STASH_MAX, "stash full");
    stash[nstash++] = b;
    pthread_mutex_unlock(&stash_lock);
}

/* ------------------------------------------------------------------ */
/* The run-time built shared library                                   */
/* ------------------------------------------------------------------ */

static const char lib_source[] =
    "#include <stdlib.h>\n"
    "#include <string.h>\n"
    "#define N 24\n"
    "static unsigned char *blocks[N];\n"
    "static size_t sizes[N];\n"
    "static char *name;\n"
    "static __thread unsigned long tls_words[2048];\n"
    "static unsigned char pat(size_t i, size_t j) { return (unsigned char)(i * 131 + j * 7 + (j >> 9)); }\n"
    "__attribute__((constructor)) static void lib_init(void) {\n"
    "    for (size_t i = 0; i < N; i++) {\n"
    "        sizes[i] = (i * i * i * 37 + 1) % (3u << 20) + 1;\n"
    "        if (i % 4 == 0) blocks[i] = calloc(1, sizes[i]);\n"
    "        else if (i % 4 == 1) { void *p = 0; if (posix_memalign(&p, 4096, sizes[i]) != 0) p = 0; blocks[i] = p; }\n"
    "        else blocks[i] = malloc(sizes[i]);\n"
    "        if (!blocks[i]) abort();\n"
    "        for (size_t j = 0; j < sizes[i]; j++) blocks[i][j] = pat(i, j);\n"
    "        if (i % 3 == 0) {\n"
    "            unsigned char *q = realloc(blocks[i], sizes[i] * 2 + 5);\n"
    "            if (!q) abort();\n"
    "            for (size_t j = sizes[i]; j < sizes[i] * 2 + 5; j++) q[j] = pat(i, j);\n"
    "            blocks[i] = q; sizes[i] = sizes[i] * 2 + 5;\n"
    "        }\n"
    "    }\n"
    "    name = strdup(\"xalloc stress library\");\n"
    "}\n"
    "long lib_check(void) {\n"
    "    long bad = 0;\n"
    "    for (size_t i = 0; i < N; i++)\n"
    "        for (size_t j = 0; j < sizes[i]; j++) bad += blocks[i][j] != pat(i, j);\n"
    "    if (!name || strcmp(name, \"xalloc stress library\") != 0) bad++;\n"
    "    return bad;\n"
    "}\n"
    "unsigned long *lib_tls(void) { return tls_words; }\n"
    "__attribute__((destructor)) static void lib_fini(void) {\n"
    "    if (lib_check() != 0) abort();\n"
    "    for (size_t i = 0; i < N; i++) free(blocks[i]);\n"
    "    free(name);\n"
    "    void *p = malloc(12345); if (!p) abort(); memset(p, 1, 12345); free(p);\n"
    "}\n";

static char lib_dir[64];
static void *lib_handle;
static unsigned long *(*lib_tls)(void);
static long (*lib_check)(void);
static uint64_t tls_checked;

static int write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    if (f == NULL)
        return -1;
    size_t len = strlen(text);
    int ok = fwrite(text, 1, len, f) == len;
    return fclose(f) == 0 && ok ? 0 : -1;
}

/*
 * Run a shell command without LD_PRELOAD, so that the compiler does not
 * run on the allocator under test: a failure to build is then a reason to
 * skip, never a hidden allocator failure.
 */
static int run_clean(const char *cmd)
{
    char *saved = getenv("LD_PRELOAD");
    char *copy = saved != NULL ? strdup(saved) : NULL;
    if (saved != NULL)
        CHECK(copy != NULL && unsetenv("LD_PRELOAD") == 0);
    int rc = system(cmd);
    if (copy != NULL) {
        CHECK(setenv("LD_PRELOAD", copy, 1) == 0);
        free(copy);
    }
    return rc;
}

/* Build and dlopen the library; 0 when skipped (reason printed). */
static int load_library(void)
{
    if (run_clean("command -v cc >/dev/null 2>&1") != 0) {
        printf("stress_lifecycle: skip dlopen sub-case: no `cc` to build the library\n");
        return 0;
    }
    strcpy(lib_dir, "/tmp/xalloc_stress_lc_XXXXXX");
    if (mkdtemp(lib_dir) == NULL) {
        printf("stress_lifecycle: skip dlopen sub-case: mkdtemp: %s\n", strerror(errno));
        return 0;
    }
    char src[128], so[128], cmd[512];
    snprintf(src, sizeof src, "%s/lib.c", lib_dir);
    snprintf(so, sizeof so, "%s/lib.so", lib_dir);
    CHECKF(write_file(src, lib_source) == 0, "cannot write %s", src);
    snprintf(cmd, sizeof cmd, "cc -shared -fPIC -O1 -o %s %s 2>%s/cc.log", so, src, lib_dir);
    int rc = run_clean(cmd);
    if (rc != 0) {
        printf("stress_lifecycle: skip dlopen sub-case: `%s` failed (status %d)\n", cmd, rc);
        return 0;
    }
    lib_handle = dlopen(so, RTLD_NOW | RTLD_LOCAL);
    CHECKF(lib_handle != NULL, "dlopen(%s): %s", so, dlerror());
    void *a = dlsym(lib_handle, "lib_tls"), *b = dlsym(lib_handle, "lib_check");
    CHECK(a != NULL && b != NULL);
    memcpy(&lib_tls, &a, sizeof a);
    memcpy(&lib_check, &b, sizeof b);
    long bad = lib_check();
    CHECKF(bad == 0, "library constructor's blocks: %ld bad bytes after dlopen", bad);
    return 1;
}

static void unload_library(void)
{
    if (lib_handle == NULL)
        return;
    long bad = lib_check();
    CHECKF(bad == 0, "library blocks: %ld bad bytes before dlclose", bad);
    CHECK(dlclose(lib_handle) == 0); /* its destructor verifies and frees */
    char path[128];
    const char *names[] = {"lib.c", "lib.so", "cc.log"};
    for (size_t i = 0; i < 3; i++) {
        snprintf(path, sizeof path, "%s/%s", lib_dir, names[i]);
        unlink(path);
    }
    rmdir(lib_dir);
}

/* The library's dynamic TLS: first use in a thread makes glibc malloc it. */
static void touch_tls(int self)
{
    if (lib_tls == NULL)
        return;
    unsigned long *w = lib_tls();
    for (int i = 0; i < 2048; i++)
        ST_CHECK(w[i] == 0, "thread %d: library TLS word %d is %#lx, not 0", self, i, w[i]);
    for (int i = 0; i < 2048; i++)
        w[i] = (unsigned long)self * 2048 + (unsigned long)i;
    for (int i = 0; i < 2048; i++)
        ST_CHECK(w[i] == (unsigned long)self * 2048 + (unsigned long)i, "thread %d: TLS word %d",
                 self, i);
    __atomic_add_fetch(&tls_checked, 1, __ATOMIC_RELAXED);
}

/* ------------------------------------------------------------------ */
/* Keys and destructors                                                */
/* ------------------------------------------------------------------ */

static pthread_key_t keys[NKEYS];
static int high_key_first = -1; /* first index in keys[] whose key number is >= 32 */
static int low_key = -1;        /* an index whose key number is below 32 */
static pthread_key_t key_rounds;
static char marker;

static uint64_t dtor_rounds, dtor_high_frees, dtor_lazy_runs, late_frees, first_high_calls;

#define LATE 4
static __thread struct tblk *late[LATE]; /* freed by the thread in its 2nd destructor round */

/* Re-sets its key twice: rounds 0, 1, 2. */
static void dtor_reset(void *v)
{
    struct tblk *b = (struct tblk *)v;
    tb_verify(b, "round destructor");
    uint64_t round = b->gen;
    uint64_t id = b->id;
    tb_free(b, "round destructor");
    __atomic_add_fetch(&dtor_rounds, 1, __ATOMIC_RELAXED);
    if (round == 1) {
        /* Blocks from the thread's life, freed after its own teardown. */
        for (int i = 0; i < LATE; i++) {
            if (late[i] != NULL) {
                tb_free(late[i], "late free in a destructor");
                late[i] = NULL;
                __atomic_add_fetch(&late_frees, 1, __ATOMIC_RELAXED);
            }
        }
        /* And one for main to free. */
        stash_put(tb_new(id + 100, 0, 2000));
    }
    if (round < 2) {
        uint64_t r = id * 7 + round;
        struct tblk *nb = tb_new(id, round + 1, (size_t)(r % 3 == 0 ? 70000 : r % 500));
        ST_CHECK(pthread_setspecific(key_rounds, nb) == 0, "setspecific in a destructor");
    }
}

static void dtor_high(void *v)
{
    if (v == &marker)
        return;
    tb_free((struct tblk *)v, "high key destructor");
    __atomic_add_fetch(&dtor_high_frees, 1, __ATOMIC_RELAXED);
}

/* For threads that never allocated: the first allocation happens here. */
static void dtor_lazy(void *v)
{
    ST_CHECK(v == &marker, "lazy destructor got %p", v);
    uint64_t id = (uint64_t)pthread_self() & 0xFFFFFFFFFFULL;
    struct tblk *a = tb_new(id << 8, 0, 100);
    struct tblk *b = tb_new((id << 8) + 1, 0, 50000);
    tb_free(a, "lazy destructor");
    stash_put(b);
    /* Start the round chain from here: glibc runs more rounds. */
    ST_CHECK(pthread_setspecific(key_rounds, tb_new((id << 8) + 2, 1, 64)) == 0,
             "setspecific in the lazy destructor");
    __atomic_add_fetch(&dtor_lazy_runs, 1, __ATOMIC_RELAXED);
}

/*
 * The keys are made before anything in the program allocates (a
 * constructor that runs before the default-priority ones; nothing before
 * main allocates here), so an allocator that creates its own key at its
 * first call gets a number >= 40, in the same second-level table as keys
 * 32..39.
 */
static int keys_ok;
__attribute__((constructor(101))) static void make_keys_early(void)
{
    keys_ok = 1;
    for (int i = 0; i < NKEYS; i++)
        if (pthread_key_create(&keys[i], dtor_high) != 0)
            keys_ok = 0;
}

/* ------------------------------------------------------------------ */
/* Phase 0: threads whose first allocator call is inside setspecific   */
/* ------------------------------------------------------------------ */

#define HF_THREADS 1000
#define HF_CONCURRENT 2
#define HF_RSS_GROWTH (64 * TH_MIB)

static uint64_t hf_blocks;
static int hf_started;

static void *high_first_thread(void *arg)
{
    int self = (int)(intptr_t)arg;
    int k = high_key_first + self % (NKEYS - high_key_first);
    /* First allocator call of this thread: glibc's calloc of the key table. */
    ST_CHECK(pthread_setspecific(keys[k], &marker) == 0, "setspecific key %u",
             (unsigned)keys[k]);
    uint64_t rng = st_rng(20000 + (uint64_t)self);
    struct tblk *b[64];
    for (int i = 0; i < 64; i++) {
        size_t n = (size_t)16 << (i % 12); /* 16 B .. 32 KiB, many size classes */
        n += th_rand_range(&rng, 0, n / 2);
        if (i == 63)
            n = st_log_range(&rng, 40 * TH_KIB, 256 * TH_KIB);
        b[i] = tb_new(((uint64_t)self << 16) + (uint64_t)i, 0, n);
    }
    for (int i = 0; i < 64; i++)
        tb_free(b[i], "high-key-first thread");
    ST_CHECK(pthread_getspecific(keys[k]) == &marker, "key %u lost its value",
             (unsigned)keys[k]);
    __atomic_add_fetch(&hf_blocks, 64, __ATOMIC_RELAXED);
    st_thread_done();
    return NULL;
}

static size_t hf_rss_before, hf_rss_after, hf_rss_max;
static double hf_seconds;

static void high_first_phase(void)
{
    double t0 = st_now();
    hf_rss_before = th_rss_bytes();
    hf_rss_max = hf_rss_before;
    pthread_t t[HF_CONCURRENT];
    st_deadline_set(3.0);
    for (int i = 0; i < HF_THREADS; i += HF_CONCURRENT) {
        if (i >= 300 && st_time_up())
            break; /* slow machine: 300 threads are enough to see a leak */
        hf_started = i + HF_CONCURRENT;
        for (int j = 0; j < HF_CONCURRENT; j++)
            CHECK(pthread_create(&t[j], NULL, high_first_thread, (void *)(intptr_t)(i + j)) == 0);
        for (int j = 0; j < HF_CONCURRENT; j++)
            CHECK(pthread_join(t[j], NULL) == 0);
        if ((i + HF_CONCURRENT) % 100 == 0) {
            size_t rss = th_rss_bytes();
            if (rss > hf_rss_max)
                hf_rss_max = rss;
            ST_CHECK(rss < hf_rss_before + HF_RSS_GROWTH,
                     "after %d threads whose first allocation was inside pthread_setspecific "
                     "(key >= 32): resident %.1f MiB, was %.1f MiB before them (growth limit "
                     "%.0f MiB): the memory of exited threads is not reused",
                     i + HF_CONCURRENT, ST_MIB(rss), ST_MIB(hf_rss_before),
                     ST_MIB(HF_RSS_GROWTH));
        }
    }
    hf_rss_after = th_rss_bytes();
    hf_seconds = st_now() - t0;
}

/* ------------------------------------------------------------------ */
/* Threads                                                             */
/* ------------------------------------------------------------------ */

static struct tblk *main_blocks[NTHREADS]; /* one per thread, freed first by kind 1 */
static void atexit_from_thread(void);

static void *lc_thread(void *arg)
{
    int self = (int)(intptr_t)arg;
    int kind = self % 4;
    uint64_t rng = st_rng(500 + (uint64_t)self);
    uint64_t id0 = ((uint64_t)self + 1) << 20;

    switch (kind) {
    case 0: {
        /* First allocator call: the calloc inside pthread_setspecific (key >= 32). */
        int k = high_key_first + self % (NKEYS - high_key_first);
        ST_CHECK(pthread_setspecific(keys[k], &marker) == 0, "setspecific high key %u",
                 (unsigned)keys[k]);
        ST_CHECK(pthread_getspecific(keys[k]) == &marker, "getspecific high key");
        __atomic_add_fetch(&first_high_calls, 1, __ATOMIC_RELAXED);
        break;
    }
    case 1:
        /* First allocator call: free of a block main made. */
        tb_free(main_blocks[self], "first call of a thread: free");
        main_blocks[self] = NULL;
        break;
    case 2:
        /* Never allocates while alive; the destructor makes its first allocation. */
        ST_CHECK(pthread_setspecific(keys[low_key], &marker) == 0, "setspecific low key");
        return NULL;
    default: {
        void *p = NULL;
        ST_CHECK(posix_memalign(&p, 64, 100) == 0 && th_aligned(p, 64), "posix_memalign");
        memset(p, 0xAB, 100);
        free(p);
        break;
    }
    }
    touch_tls(self);

    /* Ordinary life: some churn. */
    struct tblk *b[16];
    for (int i = 0; i < 16; i++)
        b[i] = tb_new(id0 + (uint64_t)i, 0, pick_size(&rng));
    for (int i = 0; i < 16; i++) {
        if (th_rand(&rng) % 2) {
            tb_free(b[i], "thread churn");
            b[i] = tb_new(id0 + 16 + (uint64_t)i, 0, pick_size(&rng));
        }
    }
    /* Every key >= 32 gets a block (its destructor frees it): b[0..3], then fresh ones. */
    for (int k = high_key_first; k < NKEYS; k++) {
        int j = k - high_key_first;
        struct tblk *v = j < 4 ? b[j] : tb_new(id0 + 64 + (uint64_t)k, 0, 48);
        ST_CHECK(pthread_setspecific(keys[k], v) == 0, "setspecific key %u", (unsigned)keys[k]);
    }
    /* b[4..7] go to main, b[8..11] are freed late by this thread, b[12..15] now. */
    for (int i = 4; i < 8; i++)
        stash_put(b[i]);
    for (int i = 0; i < LATE; i++)
        late[i] = b[8 + i];
    for (int i = 12; i < 16; i++)
        tb_free(b[i], "thread end");
    ST_CHECK(pthread_setspecific(key_rounds, tb_new(id0 + 200, 0, pick_size(&rng))) == 0,
             "setspecific rounds");
    if (self == 3)
        ST_CHECK(atexit(atexit_from_thread) == 0, "atexit from a thread");
    st_thread_done();
    return NULL;
}

/* ------------------------------------------------------------------ */
/* After main                                                          */
/* ------------------------------------------------------------------ */

static struct tblk *for_atexit[32];

static void atexit_handler(void)
{
    int freed = 0;
    for (int i = 0; i < 32; i++) {
        if (for_atexit[i] != NULL) {
            tb_free(for_atexit[i], "atexit handler");
            freed++;
        }
    }
    uint64_t rng = st_rng(9000);
    for (int i = 0; i < 50; i++) {
        struct tblk *b = tb_new(0xA7E0000 + (uint64_t)i, 3, pick_size(&rng));
        tb_free(b, "atexit handler own block");
    }
    unsigned char *big = (unsigned char *)malloc(40 * TH_MIB);
    ST_CHECK(big != NULL, "atexit: malloc(40 MiB)");
    st_fill(big, 0, 40 * TH_MIB, 41);
    ST_VERIFY(big, 0, 40 * TH_MIB, 41, "atexit: huge block");
    free(big);
    printf("stress_lifecycle: atexit handler ok (%d blocks from main freed, 51 allocated)\n",
           freed);
}

static void atexit_from_thread(void)
{
    char *s = strdup("registered by a thread");
    ST_CHECK(s != NULL, "strdup");
    char *t = (char *)realloc(s, 100000);
    ST_CHECK(t != NULL && strcmp(t, "registered by a thread") == 0, "realloc in atexit");
    free(t);
    printf("stress_lifecycle: atexit handler registered by a thread ok\n");
}

static struct tblk *for_fini;

__attribute__((destructor)) static void program_fini(void)
{
    if (for_fini == NULL)
        return; /* main did not get that far */
    tb_free(for_fini, "program destructor");
    struct tblk *b = tb_new(0xF1, 0, 300000);
    tb_free(b, "program destructor");
    printf("stress_lifecycle: program destructor ok\n");
}

int main(int argc, char **argv)
{
    st_init("stress_lifecycle", argc, argv);
    double t0 = st_now();
    CHECK(atexit(atexit_handler) == 0);

    int have_lib = load_library();

    ST_CHECK(keys_ok, "pthread_key_create failed in the early constructor");
    for (int i = 0; i < NKEYS; i++) {
        if (keys[i] >= 32 && high_key_first < 0)
            high_key_first = i;
        if (keys[i] < 32)
            low_key = i;
    }
    CHECKF(high_key_first >= 0 && high_key_first < NKEYS - 4,
           "40 keys but too few numbered 32 or above (first at index %d)", high_key_first);
    CHECKF(low_key >= 0, "no key below 32");
    high_first_phase();
    /* The low key gets the lazy destructor: replace it. */
    CHECK(pthread_key_delete(keys[low_key]) == 0);
    CHECK(pthread_key_create(&keys[low_key], dtor_lazy) == 0);
    CHECKF(keys[low_key] < 32, "recreated low key is %u", (unsigned)keys[low_key]);
    CHECK(pthread_key_create(&key_rounds, dtor_reset) == 0);

    uint64_t rng = st_rng(1);
    for (int i = 0; i < NTHREADS; i++)
        main_blocks[i] = i % 4 == 1 ? tb_new(0xB0000 + (uint64_t)i, 0, pick_size(&rng)) : NULL;

    pthread_t t[CONCURRENT];
    int started = 0;
    for (int i = 0; i < NTHREADS; i += CONCURRENT) {
        int n = 0;
        for (int j = i; j < i + CONCURRENT && j < NTHREADS; j++) {
            CHECK(pthread_create(&t[n], NULL, lc_thread, (void *)(intptr_t)j) == 0);
            n++;
        }
        for (int j = 0; j < n; j++)
            CHECK(pthread_join(t[j], NULL) == 0);
        started += n;
    }
    /* Every thread is gone: free what they left (keep some for the atexit handler). */
    int freed_by_main = 0;
    int keep = 0;
    for (int i = 0; i < nstash; i++) {
        if (keep < 32 && i % 7 == 0) {
            tb_verify(stash[i], "stash for atexit");
            for_atexit[keep++] = stash[i];
            continue;
        }
        if (i % 3 == 0) { /* grow it first: realloc of a dead thread's block */
            struct tblk *b = stash[i];
            size_t n = b->n;
            tb_verify(b, "stash before realloc");
            struct tblk *nb = (struct tblk *)realloc(b, sizeof *b + n * 3 + 1);
            ST_CHECK(nb != NULL, "realloc");
            nb->n = n;
            stash[i] = nb;
        }
        tb_free(stash[i], "main after the threads exited");
        freed_by_main++;
    }
    for (int i = 0; i < NTHREADS; i++)
        CHECKF(main_blocks[i] == NULL, "thread %d did not free its block", i);

    int per_life = NTHREADS - NTHREADS / 4; /* kinds 0, 1, 3 */
    int lazy = NTHREADS / 4;
    CHECKF(dtor_lazy_runs == (uint64_t)lazy, "lazy destructor ran %llu times, expected %d",
           (unsigned long long)dtor_lazy_runs, lazy);
    CHECKF(dtor_rounds == (uint64_t)(per_life * 3 + lazy * 2),
           "round destructor ran %llu times, expected %d", (unsigned long long)dtor_rounds,
           per_life * 3 + lazy * 2);
    CHECKF(late_frees == (uint64_t)(per_life * LATE), "late frees %llu, expected %d",
           (unsigned long long)late_frees, per_life * LATE);
    CHECKF(first_high_calls == (uint64_t)(NTHREADS / 4), "high-key first calls %llu",
           (unsigned long long)first_high_calls);
    if (have_lib)
        CHECKF(tls_checked == (uint64_t)per_life, "library TLS checked by %llu threads",
               (unsigned long long)tls_checked);
    unload_library();
    st_check_heap();

    for_fini = tb_new(0xF0, 0, 777);
    printf("stress_lifecycle: phase 0: %d threads (%d at a time) whose first allocator call was calloc in "
           "pthread_setspecific (keys %u..%u, made before the first allocation), %llu blocks; "
           "resident %.1f MiB before, %.1f MiB max, %.1f MiB after (growth limit %.0f MiB), "
           "%.2f s%s\n",
           hf_started, HF_CONCURRENT, (unsigned)keys[high_key_first], (unsigned)keys[NKEYS - 1],
           (unsigned long long)hf_blocks, ST_MIB(hf_rss_before), ST_MIB(hf_rss_max),
           ST_MIB(hf_rss_after), ST_MIB(HF_RSS_GROWTH), hf_seconds, st_cap_note());
    printf("stress_lifecycle: phase 1: %d threads (%d concurrent): %d whose first call was calloc in "
           "pthread_setspecific on a key >= 32 (keys %u..%u), %d free-first, %d first "
           "allocating in a destructor, %d posix_memalign-first\n",
           started, CONCURRENT, NTHREADS / 4, (unsigned)keys[high_key_first],
           (unsigned)keys[NKEYS - 1], NTHREADS / 4, lazy, NTHREADS / 4);
    printf("  destructor rounds %llu, high-key destructor frees %llu, late frees after "
           "teardown %llu, blocks freed by main after exit %d, kept for atexit %d\n",
           (unsigned long long)dtor_rounds, (unsigned long long)dtor_high_frees,
           (unsigned long long)late_frees, freed_by_main, keep);
    if (have_lib)
        printf("  dlopen'ed library: constructor blocks verified, dynamic TLS used by %llu "
               "threads, dlclose ok\n",
               (unsigned long long)tls_checked);
    printf("  bytes verified %.1f MiB, %.2f s\n", ST_MIB(st_verified_total()), st_now() - t0);
    printf("stress_lifecycle: ok\n");
    return 0;
}

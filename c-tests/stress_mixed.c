// mode: preload direct glibc
// timeout: 40
// stdout: stress_mixed: ok
// env@direct: XALLOC_PURGE_DELAY_MS=0
// env@direct: XALLOC_DIRTY_CAP=0
//
// Mixed random workload: 4 threads each run a random sequence of malloc,
// calloc, realloc (also from NULL and to 0), posix_memalign, aligned_alloc,
// memalign and free over sizes from 0 B to 64 MiB, skewed the way real
// programs are (most requests below 256 B, a few huge ones).  Each thread
// keeps a pool of young slots (most blocks die within a few hundred
// operations) and a pool of old slots (blocks that live for most of the
// run), and caps its live bytes at 128 MiB.  Every block carries a pattern
// derived from its id, verified before every free, realloc and rewrite;
// realloc must preserve the common prefix; calloc memory must be zero;
// alignment and malloc_usable_size are checked.  Now and then a thread
// calls malloc_trim(0) or mallinfo2() while the others keep allocating.
// The direct-link trial runs with XALLOC_PURGE_DELAY_MS=0 and
// XALLOC_DIRTY_CAP=0: freed pages are purged at once.
// Optional argument: seed.
#include "stress.h"

#define NTHREADS 4
#define YOUNG 256
#define OLD 2048
#define OPS_PER_THREAD 100000
#define MAX_SIZE (64 * TH_MIB)
#define LIVE_CAP (128 * TH_MIB)
#define TIME_CAP 3.5

enum how { H_MALLOC, H_CALLOC, H_REALLOC_NULL, H_POSIX_MEMALIGN, H_ALIGNED_ALLOC, H_MEMALIGN, H_NHOW };
static const char *const how_name[H_NHOW] = {"malloc", "calloc", "realloc(NULL)",
                                             "posix_memalign", "aligned_alloc", "memalign"};

struct blk {
    unsigned char *p;
    size_t n;   /* requested size */
    size_t ext; /* bytes holding the pattern: n, or the usable size */
    uint64_t id;
    uint64_t gen;
};

struct tstate {
    int idx;
    uint64_t rng;
    uint64_t next_id;
    struct blk young[YOUNG];
    struct blk old[OLD];
    size_t live, peak, biggest;
    uint64_t ops, allocs[H_NHOW], frees, reallocs, realloc0, rewrites, zero_checked;
    uint64_t trims, infos;
};

static struct tstate ts[NTHREADS];

/* Request sizes skewed towards small: 80% at most 256 B, 0.015% above 8 MiB. */
static size_t pick_size(uint64_t *rng)
{
    uint64_t r = th_rand(rng) % 100000;
    if (r < 55000)
        return th_rand_range(rng, 0, 128);
    if (r < 80000)
        return th_rand_range(rng, 129, 256);
    if (r < 93000)
        return st_log_range(rng, 257, 2048);
    if (r < 98500)
        return st_log_range(rng, 2049, 32 * TH_KIB);
    if (r < 99850)
        return st_log_range(rng, 32 * TH_KIB + 1, TH_MIB);
    if (r < 99985)
        return st_log_range(rng, TH_MIB + 1, 8 * TH_MIB);
    if (r < 99997)
        return st_log_range(rng, 8 * TH_MIB + 1, 32 * TH_MIB);
    return st_log_range(rng, 32 * TH_MIB + 1, MAX_SIZE);
}

/* A size that keeps the thread under its live-byte cap (`freed` bytes are about to go). */
static size_t pick_size_capped(struct tstate *t, size_t freed)
{
    size_t n = pick_size(&t->rng);
    if (t->live - freed + n > LIVE_CAP)
        n = th_rand_range(&t->rng, 0, 256);
    return n;
}

static void verify_blk(struct tstate *t, const struct blk *b, const char *when)
{
    ST_VERIFY(b->p, 0, b->ext, st_block_seed(b->id, b->gen),
              "thread %d block id %llu gen %llu size %zu (ext %zu) before %s", t->idx,
              (unsigned long long)b->id, (unsigned long long)b->gen, b->n, b->ext, when);
}

/* Fill [from, n), and sometimes extend the pattern over the whole usable size. */
static void fill_blk(struct tstate *t, struct blk *b, size_t from)
{
    size_t usable = malloc_usable_size(b->p);
    ST_CHECK(usable >= b->n, "thread %d id %llu: usable size %zu < requested %zu", t->idx,
             (unsigned long long)b->id, usable, b->n);
    b->ext = b->n;
    if (th_rand(&t->rng) % 4 == 0 && usable - b->n <= 2 * TH_MIB)
        b->ext = usable;
    if (from < b->ext)
        st_fill(b->p, from, b->ext, st_block_seed(b->id, b->gen));
}

static void note_live(struct tstate *t, size_t add, size_t sub)
{
    t->live = t->live - sub + add;
    if (t->live > t->peak)
        t->peak = t->live;
    if (add > t->biggest)
        t->biggest = add;
}

static void alloc_blk(struct tstate *t, struct blk *b)
{
    size_t n = pick_size_capped(t, 0);
    uint64_t r = th_rand(&t->rng) % 100;
    enum how how;
    size_t align = 16;
    void *p = NULL;
    if (r < 50) {
        how = H_MALLOC;
        p = malloc(n);
    } else if (r < 70) {
        how = H_CALLOC;
        size_t nmemb = n, size = 1;
        uint64_t f = th_rand(&t->rng) % 4;
        if (f == 1 && n % 16 == 0) {
            nmemb = n / 16;
            size = 16;
        } else if (f == 2) {
            nmemb = 1;
            size = n;
        } else if (f == 3 && n % 3 == 0) {
            nmemb = 3;
            size = n / 3;
        }
        p = calloc(nmemb, size);
    } else if (r < 78) {
        how = H_REALLOC_NULL;
        p = realloc(NULL, n);
    } else if (r < 90) {
        how = H_POSIX_MEMALIGN;
        unsigned shift = (unsigned)th_rand_range(&t->rng, 3, 16);
        if (th_rand(&t->rng) % 50 == 0)
            shift = (unsigned)th_rand_range(&t->rng, 17, 20);
        align = (size_t)1 << shift;
        int rc = posix_memalign(&p, align, n);
        ST_CHECK(rc == 0, "posix_memalign(%zu, %zu) returned %d", align, n, rc);
    } else if (r < 95) {
        how = H_ALIGNED_ALLOC;
        align = (size_t)1 << th_rand_range(&t->rng, 4, 12);
        p = aligned_alloc(align, n);
    } else {
        how = H_MEMALIGN;
        align = (size_t)1 << th_rand_range(&t->rng, 0, 14);
        p = memalign(align, n);
    }
    ST_CHECK(p != NULL, "thread %d: %s of %zu bytes (align %zu) returned NULL", t->idx,
             how_name[how], n, align);
    if (align < 16)
        align = 16;
    ST_CHECK(th_aligned(p, align), "thread %d: %s(%zu) = %p is not %zu-aligned", t->idx,
             how_name[how], n, p, align);
    if (how == H_CALLOC) {
        ST_VERIFY_ZERO(p, n, "thread %d: calloc of %zu bytes", t->idx, n);
        t->zero_checked += n;
    }
    b->p = (unsigned char *)p;
    b->n = n;
    b->id = ((uint64_t)t->idx << 48) | t->next_id++;
    b->gen = 0;
    fill_blk(t, b, 0);
    note_live(t, n, 0);
    t->allocs[how]++;
    if (th_rand(&t->rng) % 64 == 0)
        CHECK_OWNED(p);
}

static void free_blk(struct tstate *t, struct blk *b)
{
    verify_blk(t, b, "free");
    free(b->p);
    note_live(t, 0, b->n);
    b->p = NULL;
    t->frees++;
}

static void realloc_blk(struct tstate *t, struct blk *b)
{
    size_t m;
    if (th_rand(&t->rng) % 2 == 0) {
        /* near the old size: shrink or grow by up to 50% */
        size_t d = b->n / 2 + 1;
        m = th_rand_range(&t->rng, b->n > d ? b->n - d : 1, b->n + d);
        if (m > MAX_SIZE)
            m = MAX_SIZE;
        if (t->live - b->n + m > LIVE_CAP)
            m = b->n / 2 + 1;
    } else {
        m = pick_size_capped(t, b->n);
    }
    if (m == 0)
        m = 1; /* realloc(p, 0) is its own operation */
    verify_blk(t, b, "realloc");
    size_t keep = b->n < m ? b->n : m;
    unsigned char *q = (unsigned char *)realloc(b->p, m);
    ST_CHECK(q != NULL, "thread %d: realloc(%p, %zu) returned NULL", t->idx, (void *)b->p, m);
    ST_CHECK(th_aligned(q, 16), "realloc returned %p, not 16-aligned", (void *)q);
    ST_VERIFY(q, 0, keep, st_block_seed(b->id, b->gen),
              "thread %d block id %llu: realloc %zu -> %zu moved %p -> %p", t->idx,
              (unsigned long long)b->id, b->n, m, (void *)b->p, (void *)q);
    note_live(t, m, b->n);
    b->p = q;
    b->n = m;
    fill_blk(t, b, keep);
    t->reallocs++;
}

static void realloc0_blk(struct tstate *t, struct blk *b)
{
    verify_blk(t, b, "realloc to 0");
    unsigned char *q = (unsigned char *)realloc(b->p, 0);
    note_live(t, 0, b->n);
    t->realloc0++;
    if (q == NULL) { /* glibc semantics: the block was freed */
        b->p = NULL;
        return;
    }
    b->p = q;
    b->n = 0;
    b->gen++;
    fill_blk(t, b, 0);
}

static void rewrite_blk(struct tstate *t, struct blk *b)
{
    verify_blk(t, b, "rewrite");
    b->gen++;
    fill_blk(t, b, 0);
    t->rewrites++;
}

static void step(struct tstate *t, struct blk *b)
{
    if (b->p == NULL) {
        alloc_blk(t, b);
        return;
    }
    uint64_t r = th_rand(&t->rng) % 100;
    if (r < 55)
        free_blk(t, b);
    else if (r < 85)
        realloc_blk(t, b);
    else if (r < 87)
        realloc0_blk(t, b);
    else
        rewrite_blk(t, b);
}

static void *worker(void *arg)
{
    struct tstate *t = (struct tstate *)arg;
    for (uint64_t i = 0; i < OPS_PER_THREAD; i++) {
        if ((i & 1023) == 0 && st_time_up())
            break;
        if (i % 25000 == 12500) {
            /* Purge and statistics while the other threads keep allocating. */
            if (t->idx % 2 == 0) {
                malloc_trim(0);
                t->trims++;
            } else {
                struct mallinfo2 mi = mallinfo2();
                ST_CHECK(mi.uordblks > 0, "thread %d: mallinfo2 reports %zu bytes in use",
                         t->idx, mi.uordblks);
                t->infos++;
            }
        }
        uint64_t r = th_rand(&t->rng);
        if (r % 100 < 2)
            step(t, &t->old[(r >> 8) % OLD]);
        else
            step(t, &t->young[(r >> 8) % YOUNG]);
        t->ops++;
    }
    for (int i = 0; i < YOUNG; i++)
        if (t->young[i].p != NULL)
            free_blk(t, &t->young[i]);
    for (int i = 0; i < OLD; i++)
        if (t->old[i].p != NULL)
            free_blk(t, &t->old[i]);
    ST_CHECK(t->live == 0, "thread %d: %zu live bytes left", t->idx, t->live);
    st_check_heap();
    st_thread_done();
    return NULL;
}

int main(int argc, char **argv)
{
    st_init("stress_mixed", argc, argv);
    double t0 = st_now();
    st_deadline_set(TIME_CAP);
    pthread_t tid[NTHREADS];
    for (int i = 0; i < NTHREADS; i++) {
        ts[i].idx = i;
        ts[i].rng = st_rng((uint64_t)i);
        CHECK(pthread_create(&tid[i], NULL, worker, &ts[i]) == 0);
    }
    for (int i = 0; i < NTHREADS; i++)
        CHECK(pthread_join(tid[i], NULL) == 0);
    st_check_heap();

    uint64_t ops = 0, allocs[H_NHOW] = {0}, frees = 0, reallocs = 0, realloc0 = 0, rewrites = 0,
             zero = 0, trims = 0, infos = 0;
    size_t peak = 0, biggest = 0;
    for (int i = 0; i < NTHREADS; i++) {
        ops += ts[i].ops;
        for (int h = 0; h < H_NHOW; h++)
            allocs[h] += ts[i].allocs[h];
        frees += ts[i].frees;
        reallocs += ts[i].reallocs;
        realloc0 += ts[i].realloc0;
        rewrites += ts[i].rewrites;
        zero += ts[i].zero_checked;
        trims += ts[i].trims;
        infos += ts[i].infos;
        if (ts[i].peak > peak)
            peak = ts[i].peak;
        if (ts[i].biggest > biggest)
            biggest = ts[i].biggest;
    }
    printf("stress_mixed: %d threads, %llu ops in %.2f s%s\n", NTHREADS, (unsigned long long)ops,
           st_now() - t0, st_cap_note());
    printf("  allocations:");
    for (int h = 0; h < H_NHOW; h++)
        printf(" %s %llu", how_name[h], (unsigned long long)allocs[h]);
    printf("\n  frees %llu, reallocs %llu, realloc(p, 0) %llu, rewrites %llu, malloc_trim(0) %llu, "
           "mallinfo2 %llu\n",
           (unsigned long long)frees, (unsigned long long)reallocs, (unsigned long long)realloc0,
           (unsigned long long)rewrites, (unsigned long long)trims, (unsigned long long)infos);
    printf("  peak live bytes per thread %.1f MiB, biggest block %.1f MiB\n", ST_MIB(peak),
           ST_MIB(biggest));
    printf("  bytes verified %.1f MiB (calloc zeroes %.1f MiB)\n", ST_MIB(st_verified_total()),
           ST_MIB(zero));
    printf("stress_mixed: ok\n");
    return 0;
}

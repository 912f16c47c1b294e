// mode: preload direct glibc
// timeout: 40
// stdout: stress_align_sweep: ok
//
// Alignment sweep: every power of two from 1 B to 1 MiB through
// posix_memalign, aligned_alloc and memalign, and valloc / pvalloc (page
// alignment), each with sizes 0, 1, align-1, align, align+1 and 3*align.
// For every result: not NULL, aligned, malloc_usable_size covers the size
// (pvalloc: the size rounded up to pages), every usable byte is written
// with the block's pattern; all blocks of one alignment are live together
// and must not overlap; then each is verified and either freed or
// realloc'ed (grown or shrunk, prefix checked) and freed.  posix_memalign
// with an alignment that is not a power-of-two multiple of sizeof(void *)
// must return EINVAL and leave the pointer alone.  A few huge (> 32 MiB)
// aligned blocks are made and realloc'ed too.  The sweep runs twice on the
// main thread (ascending, then descending alignments) and then on 2
// threads at once.  Optional argument: seed.
#include "stress.h"

#define MAX_SHIFT 20
#define NSIZES 6

enum entry { E_POSIX, E_ALIGNED, E_MEMALIGN, E_VALLOC, E_PVALLOC, E_N };
static const char *const entry_name[E_N] = {"posix_memalign", "aligned_alloc", "memalign",
                                            "valloc", "pvalloc"};

struct ablk {
    unsigned char *p;
    size_t n, usable, align;
    uint64_t id;
    int entry;
};

static uint64_t blocks_made, reallocs_done, einval_checked;

static int cmp_addr(const void *a, const void *b)
{
    uintptr_t x = (uintptr_t)((const struct ablk *)a)->p, y = (uintptr_t)((const struct ablk *)b)->p;
    return x < y ? -1 : x > y;
}

static void check_bad_alignments(void)
{
    static const size_t bad[] = {0, 1, 2, 4, 3, 12, 24, 48, 4095, 4097, (size_t)1 << 63 | 8};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        void *p = (void *)&bad[i];
        int rc = posix_memalign(&p, bad[i], 64);
        ST_CHECK(rc == EINVAL, "posix_memalign(align %zu) returned %d, expected EINVAL", bad[i],
                 rc);
        ST_CHECK(p == (void *)&bad[i], "posix_memalign(align %zu) changed *memptr to %p", bad[i],
                 p);
        __atomic_add_fetch(&einval_checked, 1, __ATOMIC_RELAXED);
    }
}

static void make(struct ablk *b, int entry, size_t align, size_t n, uint64_t id)
{
    void *p = NULL;
    size_t need = n, want_align = align;
    size_t page = th_page_size();
    switch (entry) {
    case E_POSIX: {
        int rc = posix_memalign(&p, align, n);
        ST_CHECK(rc == 0, "posix_memalign(%zu, %zu) returned %d", align, n, rc);
        break;
    }
    case E_ALIGNED:
        p = aligned_alloc(align, n);
        break;
    case E_MEMALIGN:
        p = memalign(align, n);
        break;
    case E_VALLOC:
        p = valloc(n);
        want_align = page;
        break;
    default:
        p = pvalloc(n);
        want_align = page;
        need = th_round_up(n, page);
        break;
    }
    ST_CHECK(p != NULL, "%s(align %zu, size %zu) returned NULL", entry_name[entry], align, n);
    ST_CHECK(th_aligned(p, want_align), "%s(align %zu, size %zu) = %p is not %zu-aligned",
             entry_name[entry], align, n, p, want_align);
    size_t usable = malloc_usable_size(p);
    ST_CHECK(usable >= need, "%s(align %zu, size %zu) = %p: usable size %zu < %zu",
             entry_name[entry], align, n, p, usable, need);
    ST_CHECK(usable - need <= 2 * align + 2 * page + (n >> 3) + 64 || usable <= 64 * TH_KIB,
             "%s(align %zu, size %zu): usable size %zu is far above the request",
             entry_name[entry], align, n, usable);
    CHECK_OWNED(p);
    b->p = (unsigned char *)p;
    b->n = n;
    b->usable = usable;
    b->align = want_align;
    b->id = id;
    b->entry = entry;
    st_fill(p, 0, usable, st_block_seed(id, 0));
    __atomic_add_fetch(&blocks_made, 1, __ATOMIC_RELAXED);
}

static void verify(const struct ablk *b, const char *when)
{
    ST_VERIFY(b->p, 0, b->usable, st_block_seed(b->id, 0),
              "%s block (align %zu, size %zu, usable %zu) %s", entry_name[b->entry], b->align,
              b->n, b->usable, when);
}

static void release(struct ablk *b, uint64_t *rng)
{
    verify(b, "before release");
    uint64_t r = th_rand(rng) % 3;
    if (r == 0) {
        free(b->p);
        return;
    }
    size_t m = r == 1 ? b->n + b->align * 2 + 7 : b->n / 2;
    if (m > 8 * TH_MIB)
        m = b->n / 2;
    if (m == 0)
        m = 1;
    size_t keep = b->n < m ? b->n : m;
    unsigned char *q = (unsigned char *)realloc(b->p, m);
    ST_CHECK(q != NULL, "realloc of a %s block (align %zu, size %zu) to %zu returned NULL",
             entry_name[b->entry], b->align, b->n, m);
    ST_VERIFY(q, 0, keep, st_block_seed(b->id, 0),
              "%s block (align %zu, size %zu) after realloc to %zu (%p -> %p)",
              entry_name[b->entry], b->align, b->n, m, (void *)b->p, (void *)q);
    ST_CHECK_USABLE(q, m);
    st_fill(q, 0, m, 5);
    free(q);
    __atomic_add_fetch(&reallocs_done, 1, __ATOMIC_RELAXED);
}

/* All entry points and sizes for one alignment; the blocks live together. */
static void sweep_align(size_t align, uint64_t *rng, uint64_t id_base)
{
    size_t sizes[NSIZES] = {0, 1, align - 1, align, align + 1, 3 * align};
    struct ablk blk[E_N * NSIZES];
    int nb = 0;
    for (int e = 0; e < E_N; e++) {
        if (e == E_POSIX && align < sizeof(void *))
            continue; /* not a valid posix_memalign alignment (checked separately) */
        for (int s = 0; s < NSIZES; s++) {
            make(&blk[nb], e, align, sizes[s], id_base + (uint64_t)nb);
            nb++;
        }
    }
    /* No two live blocks may overlap. */
    qsort(blk, (size_t)nb, sizeof blk[0], cmp_addr);
    for (int i = 1; i < nb; i++)
        ST_CHECK((uintptr_t)blk[i - 1].p + blk[i - 1].usable <= (uintptr_t)blk[i].p,
                 "align %zu: %s block %p (usable %zu) overlaps %s block %p", align,
                 entry_name[blk[i - 1].entry], (void *)blk[i - 1].p, blk[i - 1].usable,
                 entry_name[blk[i].entry], (void *)blk[i].p);
    for (int i = 0; i < nb; i++)
        verify(&blk[i], "with its neighbours live");
    /* Release in a random order. */
    for (int i = nb - 1; i > 0; i--) {
        int j = (int)(th_rand(rng) % (uint64_t)(i + 1));
        struct ablk t = blk[i];
        blk[i] = blk[j];
        blk[j] = t;
    }
    for (int i = 0; i < nb; i++)
        release(&blk[i], rng);
}

static void huge_aligned(uint64_t *rng)
{
    static const size_t aligns[] = {4096, 64 * TH_KIB, TH_MIB, 2 * TH_MIB};
    for (size_t i = 0; i < sizeof aligns / sizeof aligns[0]; i++) {
        size_t n = 33 * TH_MIB + 1 + th_rand_range(rng, 0, 5000);
        struct ablk b;
        make(&b, i % 2 ? E_MEMALIGN : E_POSIX, aligns[i], n, 0xB16000 + i);
        verify(&b, "huge");
        size_t m = 40 * TH_MIB;
        unsigned char *q = (unsigned char *)realloc(b.p, m);
        ST_CHECK(q != NULL, "realloc(huge aligned, %zu)", m);
        ST_VERIFY(q, 0, b.n, st_block_seed(b.id, 0), "huge aligned block (align %zu) after "
                  "realloc to 40 MiB", aligns[i]);
        q = (unsigned char *)realloc(q, 1000);
        ST_CHECK(q != NULL, "realloc(huge, 1000)");
        ST_VERIFY(q, 0, 1000, st_block_seed(b.id, 0), "huge aligned block after shrinking to 1000");
        free(q);
    }
}

static void sweep(int descending, uint64_t stream)
{
    uint64_t rng = st_rng(stream);
    check_bad_alignments();
    for (int k = 0; k <= MAX_SHIFT; k++) {
        int shift = descending ? MAX_SHIFT - k : k;
        sweep_align((size_t)1 << shift, &rng, (stream << 32) + ((uint64_t)shift << 8));
    }
    huge_aligned(&rng);
}

static void *sweep_thread(void *arg)
{
    int self = (int)(intptr_t)arg;
    sweep(self % 2, 10 + (uint64_t)self);
    st_check_heap();
    st_thread_done();
    return NULL;
}

int main(int argc, char **argv)
{
    st_init("stress_align_sweep", argc, argv);
    double t0 = st_now();
    sweep(0, 1);
    sweep(1, 2);
    pthread_t t[2];
    for (int i = 0; i < 2; i++)
        CHECK(pthread_create(&t[i], NULL, sweep_thread, (void *)(intptr_t)i) == 0);
    for (int i = 0; i < 2; i++)
        CHECK(pthread_join(t[i], NULL) == 0);
    st_check_heap();
    printf("stress_align_sweep: alignments 1 B .. %zu KiB, %d sizes each, %d entry points; "
           "4 sweeps (2 on main, 2 on threads at once)\n",
           ((size_t)1 << MAX_SHIFT) / 1024, NSIZES, E_N);
    printf("  %llu blocks checked (alignment, usable size, no overlap, pattern), %llu "
           "reallocs, %llu bad posix_memalign alignments rejected\n",
           (unsigned long long)blocks_made, (unsigned long long)reallocs_done,
           (unsigned long long)einval_checked);
    printf("  bytes verified %.1f MiB, %.2f s\n", ST_MIB(st_verified_total()), st_now() - t0);
    printf("stress_align_sweep: ok\n");
    return 0;
}

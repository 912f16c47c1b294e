// mode: preload direct glibc
//
// memalign / aligned_alloc for every power-of-two alignment from 1 to 1 GiB
// (alignments below 16 still give 16-byte aligned blocks), memalign with a
// non power of two alignment (rounded up to the next power of two),
// invalid huge alignments, valloc (page aligned) and pvalloc (page aligned,
// usable size rounded up to whole pages).
#include "testhelper.h"

typedef void *(*align_fn)(size_t, size_t);

static void *call_aligned_alloc(size_t a, size_t n) { return aligned_alloc(th_size(a), th_size(n)); }
static void *call_memalign(size_t a, size_t n) { return memalign(th_size(a), th_size(n)); }

static void exercise(align_fn fn, const char *name)
{
    for (int k = 0; k <= 30; k++) {
        size_t a = (size_t)1 << k;
        size_t want = a < 16 ? 16 : a;
        /* Sizes to try; for big alignments only small sizes (address space
         * is what those cost, not memory). */
        size_t sizes[8];
        int ns = 0;
        sizes[ns++] = 100;
        sizes[ns++] = 1;
        if (k <= 20) {
            sizes[ns++] = a > 1 ? a - 1 : 0;
            sizes[ns++] = a;
            sizes[ns++] = a + 1;
            sizes[ns++] = 3 * a + 5;
            sizes[ns++] = 0;
        }
        void *blocks[8];
        for (int i = 0; i < ns; i++) {
            size_t n = sizes[i];
            void *p = fn(a, n);
            CHECKF(p != NULL, "%s(%zu, %zu) failed: %s", name, a, n, strerror(errno));
            CHECKF(th_aligned(p, want), "%s(%zu, %zu) returned %p", name, a, n, p);
            CHECKF(malloc_usable_size(p) >= n, "%s(%zu, %zu): usable %zu", name, a, n,
                   malloc_usable_size(p));
            CHECK_OWNED(p);
            th_fill(p, 0, n, (uint64_t)(k * 16 + i));
            blocks[i] = p;
        }
        for (int i = 0; i < ns; i++) {
            CHECK_PAT(blocks[i], 0, sizes[i], (uint64_t)(k * 16 + i));
            free(blocks[i]);
        }
    }
}

int main(void)
{
    size_t page = th_page_size();

    exercise(call_memalign, "memalign");
    exercise(call_aligned_alloc, "aligned_alloc");

    /* The canonical big one: 1 GiB alignment is address space only. */
    void *g = aligned_alloc(th_size(TH_GIB), 100);
    CHECK(g != NULL && th_aligned(g, TH_GIB));
    memset(g, 0x77, 100);
    free(g);

    /* Many small aligned blocks live at once do not overlap. */
    static void *many[3000];
    for (int i = 0; i < 3000; i++) {
        size_t a = (size_t)16 << (i % 8);
        size_t n = (size_t)(i % 500) + 1;
        many[i] = memalign(a, n);
        CHECK(many[i] != NULL && th_aligned(many[i], a));
        th_fill(many[i], 0, n, (uint64_t)i);
    }
    for (int i = 0; i < 3000; i++) {
        CHECK_PAT(many[i], 0, (size_t)(i % 500) + 1, (uint64_t)i);
        free(many[i]);
    }

    /* memalign with a non power of two alignment rounds it up. */
    static const size_t odd[][2] = {
        {3, 16}, {17, 32}, {24, 32}, {48, 64}, {100, 128}, {1000, 1024},
        {4097, 8192}, {12288, 16384}, {100000, 131072}, {3 << 20, 4 << 20},
    };
    for (size_t i = 0; i < sizeof odd / sizeof odd[0]; i++) {
        void *p = memalign(th_size(odd[i][0]), 100);
        CHECKF(p != NULL, "memalign(%zu, 100) failed", odd[i][0]);
        CHECKF(th_aligned(p, odd[i][1]), "memalign(%zu, 100) returned %p, want %zu-aligned",
               odd[i][0], p, odd[i][1]);
        memset(p, 1, 100);
        free(p);
    }

    /* Alignments that cannot be honoured. */
    errno = 0;
    CHECK(memalign(th_size(SIZE_MAX), page) == NULL);
    CHECKF(errno == EINVAL, "memalign(SIZE_MAX, page): errno %d", errno);
    errno = 0;
    CHECK(memalign(th_size(SIZE_MAX / 2 + 2), 1) == NULL);
    CHECKF(errno == EINVAL, "memalign(SIZE_MAX/2+2, 1): errno %d", errno);
    errno = 0;
    CHECK(memalign(th_size(SIZE_MAX / 2 + 1), 1) == NULL);
    CHECKF(errno == EINVAL || errno == ENOMEM, "memalign(2^63, 1): errno %d", errno);

    /* valloc: page aligned. */
    static const size_t vsizes[] = {0, 1, 100, 4095, 4096, 4097, 100000, 3 * TH_MIB + 5};
    for (size_t i = 0; i < sizeof vsizes / sizeof vsizes[0]; i++) {
        size_t n = vsizes[i];
        void *p = valloc(th_size(n));
        CHECKF(p != NULL && th_aligned(p, page), "valloc(%zu) returned %p", n, p);
        CHECK(malloc_usable_size(p) >= n);
        CHECK_OWNED(p);
        th_fill(p, 0, n, n);
        CHECK_PAT(p, 0, n, n);
        free(p);
    }

    /* pvalloc: page aligned, usable size covers n rounded up to pages. */
    static const size_t psizes[] = {1, 100, 4095, 4096, 4097, 10000, TH_MIB + 1, 5 * TH_MIB - 3};
    for (size_t i = 0; i < sizeof psizes / sizeof psizes[0]; i++) {
        size_t n = psizes[i];
        size_t rounded = th_round_up(n, page);
        void *p = pvalloc(th_size(n));
        CHECKF(p != NULL && th_aligned(p, page), "pvalloc(%zu) returned %p", n, p);
        size_t u = malloc_usable_size(p);
        CHECKF(u >= rounded, "pvalloc(%zu): usable %zu < %zu", n, u, rounded);
        memset(p, 0xee, u);
        free(p);
    }
    void *p0 = pvalloc(th_size(0));
    CHECK(p0 != NULL && th_aligned(p0, page));
    free(p0);

    static const size_t impossible[] = {SIZE_MAX, SIZE_MAX - 100, SIZE_MAX - 4096, (size_t)PTRDIFF_MAX + 1};
    for (size_t i = 0; i < sizeof impossible / sizeof impossible[0]; i++) {
        errno = 0;
        CHECK(valloc(th_size(impossible[i])) == NULL);
        CHECKF(errno == ENOMEM, "valloc(%zu): errno %d", impossible[i], errno);
        errno = 0;
        CHECK(pvalloc(th_size(impossible[i])) == NULL);
        CHECKF(errno == ENOMEM, "pvalloc(%zu): errno %d", impossible[i], errno);
    }

    printf("memalign ok\n");
    return 0;
}

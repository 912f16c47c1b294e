// mode: preload direct glibc
//
// Requests that cannot be satisfied fail cleanly with ENOMEM:
//   - calloc / reallocarray multiplication overflow;
//   - any size above PTRDIFF_MAX for every entry point (and sizes that
//     overflow when rounded up internally, or exceed the address space);
//   - a failed realloc/reallocarray leaves the old block intact;
//   - posix_memalign returns ENOMEM and leaves *memptr untouched.
#include "testhelper.h"

#include <stdint.h>

#define SENTINEL ((void *)0x5eed)

static const size_t too_big[] = {
    (size_t)PTRDIFF_MAX + 1,
    (size_t)PTRDIFF_MAX + 4096,
    SIZE_MAX,
    SIZE_MAX - 1,
    SIZE_MAX - 15,
    SIZE_MAX - 16,
    SIZE_MAX - 4095,
    SIZE_MAX - 4096,
    SIZE_MAX - (2u << 20),
    SIZE_MAX - (1ull << 30),
    SIZE_MAX / 2 + 1,
    (size_t)PTRDIFF_MAX, /* not above the limit, but cannot be satisfied */
    (size_t)1 << 48,     /* larger than the user address space */
    (size_t)1 << 47,
};
#define N_TOO_BIG (sizeof too_big / sizeof too_big[0])

#define EXPECT_ENOMEM(call, what, n)                                               \
    do {                                                                           \
        errno = 0;                                                                 \
        void *r_ = (call);                                                         \
        CHECKF(r_ == NULL, "%s(%zu) returned %p", what, (size_t)(n), r_);          \
        CHECKF(errno == ENOMEM, "%s(%zu): errno %d (%s), expected ENOMEM", what,   \
               (size_t)(n), errno, strerror(errno));                               \
    } while (0)

int main(void)
{
    /* calloc overflow. */
    static const size_t mul[][2] = {
        {SIZE_MAX / 2 + 1, 2}, {2, SIZE_MAX / 2 + 1}, {SIZE_MAX, SIZE_MAX},
        {(size_t)1 << 32, (size_t)1 << 32}, {SIZE_MAX / 16 + 1, 16}, {16, SIZE_MAX / 16 + 1},
        {3, SIZE_MAX / 3 + 1}, {65537, SIZE_MAX / 65536},
    };
    for (size_t i = 0; i < sizeof mul / sizeof mul[0]; i++) {
        errno = 0;
        void *r = calloc(th_size(mul[i][0]), th_size(mul[i][1]));
        CHECKF(r == NULL, "calloc(%zu, %zu) returned %p", mul[i][0], mul[i][1], r);
        CHECKF(errno == ENOMEM, "calloc(%zu, %zu): errno %d", mul[i][0], mul[i][1], errno);
    }
    /* calloc products that do not overflow but are above PTRDIFF_MAX. */
    EXPECT_ENOMEM(calloc(th_size(1), th_size((size_t)PTRDIFF_MAX + 1)), "calloc(1, n)",
                  (size_t)PTRDIFF_MAX + 1);
    EXPECT_ENOMEM(calloc(th_size((size_t)PTRDIFF_MAX / 2 + 1), th_size(2)), "calloc(n, 2)",
                  (size_t)PTRDIFF_MAX / 2 + 1);

    /* reallocarray overflow keeps the old block. */
    for (int big = 0; big < 2; big++) {
        size_t n = big ? 3 * TH_MIB : 200;
        char *p = (char *)malloc(n);
        CHECK(p != NULL);
        th_fill(p, 0, n, 5);
        for (size_t i = 0; i < sizeof mul / sizeof mul[0]; i++) {
            errno = 0;
            void *r = reallocarray(p, th_size(mul[i][0]), th_size(mul[i][1]));
            CHECKF(r == NULL, "reallocarray(p, %zu, %zu) returned %p", mul[i][0], mul[i][1], r);
            CHECK(errno == ENOMEM);
        }
        CHECK_PAT(p, 0, n, 5);
        CHECK_OWNED(p);
        /* A valid reallocarray still works on the same block. */
        char *q = (char *)reallocarray(p, th_size(n / 4), 8);
        CHECK(q != NULL);
        CHECK_PAT(q, 0, n, 5);
        free(q);
    }
    void *ra = reallocarray(NULL, th_size(12), 12);
    CHECK(ra != NULL);
    memset(ra, 1, 144);
    free(ra);

    /* Sizes above PTRDIFF_MAX for every entry point. */
    char *keep_small = (char *)malloc(100), *keep_large = (char *)malloc(5 * TH_MIB);
    CHECK(keep_small != NULL && keep_large != NULL);
    th_fill(keep_small, 0, 100, 11);
    th_fill(keep_large, 0, 5 * TH_MIB, 12);
    for (size_t i = 0; i < N_TOO_BIG; i++) {
        size_t n = th_size(too_big[i]);
        EXPECT_ENOMEM(malloc(n), "malloc", n);
        EXPECT_ENOMEM(calloc(1, n), "calloc(1, n)", n);
        EXPECT_ENOMEM(realloc(keep_small, n), "realloc(small, n)", n);
        EXPECT_ENOMEM(realloc(keep_large, n), "realloc(large, n)", n);
        EXPECT_ENOMEM(realloc(NULL, n), "realloc(NULL, n)", n);
        EXPECT_ENOMEM(memalign(16, n), "memalign(16, n)", n);
        EXPECT_ENOMEM(memalign(64, n), "memalign(64, n)", n);
        EXPECT_ENOMEM(memalign(4096, n), "memalign(4096, n)", n);
        EXPECT_ENOMEM(memalign(2 * TH_MIB, n), "memalign(2 MiB, n)", n);
        EXPECT_ENOMEM(aligned_alloc(16, n), "aligned_alloc(16, n)", n);
        EXPECT_ENOMEM(aligned_alloc(256, n), "aligned_alloc(256, n)", n);
        EXPECT_ENOMEM(valloc(n), "valloc", n);
        EXPECT_ENOMEM(pvalloc(n), "pvalloc", n);

        void *out = SENTINEL;
        int rc = posix_memalign(&out, 64, n);
        CHECKF(rc == ENOMEM, "posix_memalign(64, %zu) returned %d", n, rc);
        CHECKF(out == SENTINEL, "posix_memalign(64, %zu) changed *memptr to %p", n, out);
        out = SENTINEL;
        rc = posix_memalign(&out, 8, n);
        CHECKF(rc == ENOMEM, "posix_memalign(8, %zu) returned %d", n, rc);
        CHECK(out == SENTINEL);
        out = SENTINEL;
        rc = posix_memalign(&out, TH_MIB, n);
        CHECKF(rc == ENOMEM, "posix_memalign(1 MiB, %zu) returned %d", n, rc);
        CHECK(out == SENTINEL);

        CHECK_PAT(keep_small, 0, 100, 11);
        CHECK_PAT(keep_large, 0, 5 * TH_MIB, 12);
    }
    CHECK_OWNED(keep_small);
    CHECK_OWNED(keep_large);
    /* The old blocks are still fully usable after the failures. */
    keep_small = (char *)realloc(keep_small, 1000);
    CHECK(keep_small != NULL);
    CHECK_PAT(keep_small, 0, 100, 11);
    keep_large = (char *)realloc(keep_large, 6 * TH_MIB);
    CHECK(keep_large != NULL);
    CHECK_PAT(keep_large, 0, 5 * TH_MIB, 12);
    free(keep_small);
    free(keep_large);

    /* The allocator keeps working after all those failures. */
    for (int i = 0; i < 100; i++) {
        void *p = malloc((size_t)i * 1000 + 1);
        CHECK(p != NULL);
        free(p);
    }
    printf("overflow ok\n");
    return 0;
}

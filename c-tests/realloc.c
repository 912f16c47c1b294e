// mode: preload direct glibc
//
// realloc keeps contents:
//   - grow one block from 1 byte to 64 MiB by x1.5 steps, then shrink it
//     back down, checking the whole pattern after every step;
//   - jump across the small / medium / large / huge size classes
//     (16 B <-> 40 KiB <-> 2 MiB <-> 48 MiB) in every order;
//   - many interleaved blocks resized at random.
#include "testhelper.h"

static size_t min_sz(size_t a, size_t b) { return a < b ? a : b; }

static void grow_and_shrink(void)
{
    const uint64_t seed = 424242;
    unsigned char *p = NULL;
    size_t n = 0, next = 1;
    while (next <= 64 * TH_MIB) {
        p = (unsigned char *)realloc(p, th_size(next));
        CHECKF(p != NULL, "realloc grow to %zu", next);
        CHECK(th_aligned(p, 16));
        CHECK_PAT(p, 0, n, seed);
        th_fill(p, n, next, seed);
        n = next;
        next = next * 3 / 2 + 1;
    }
    CHECK_OWNED(p);
    while (n > 1) {
        size_t smaller = n * 2 / 3;
        if (smaller == 0)
            smaller = 1;
        p = (unsigned char *)realloc(p, th_size(smaller));
        CHECKF(p != NULL, "realloc shrink to %zu", smaller);
        CHECK_PAT(p, 0, smaller, seed);
        n = smaller;
    }
    free(p);
}

static void class_jumps(void)
{
    static const size_t steps[] = {
        16, 40 * TH_KIB, 2 * TH_MIB, 48 * TH_MIB, 2 * TH_MIB, 40 * TH_KIB, 16,
        48 * TH_MIB, 16, 2 * TH_MIB, 16, 40 * TH_KIB, 48 * TH_MIB, 40 * TH_KIB,
        2 * TH_MIB + 1, 40 * TH_KIB - 1, 17, 48 * TH_MIB - 7, 15,
    };
    const size_t nsteps = sizeof steps / sizeof steps[0];
    unsigned char *p = (unsigned char *)malloc(steps[0]);
    CHECK(p != NULL);
    th_fill(p, 0, steps[0], 1);
    size_t n = steps[0];
    for (size_t i = 1; i < nsteps; i++) {
        size_t m = steps[i];
        p = (unsigned char *)realloc(p, th_size(m));
        CHECKF(p != NULL, "realloc %zu -> %zu", n, m);
        CHECKF(th_find_bad(p, 0, min_sz(n, m), i) == SIZE_MAX,
               "realloc %zu -> %zu lost contents (byte %zu)", n, m, th_find_bad(p, 0, min_sz(n, m), i));
        CHECK_OWNED(p);
        /* re-fill everything with the next step's seed */
        th_fill(p, 0, m, i + 1);
        n = m;
    }
    free(p);
}

static void same_and_near_sizes(void)
{
    static const size_t sizes[] = {1, 15, 16, 17, 100, 1024, 4095, 4096, 4097, 65536,
                                   131072, 262144, TH_MIB, 3 * TH_MIB};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        size_t n = sizes[i];
        unsigned char *p = (unsigned char *)malloc(n);
        CHECK(p != NULL);
        th_fill(p, 0, n, n);
        p = (unsigned char *)realloc(p, th_size(n));
        CHECK(p != NULL);
        CHECK_PAT(p, 0, n, n);
        p = (unsigned char *)realloc(p, th_size(n + 1));
        CHECK(p != NULL);
        CHECK_PAT(p, 0, n, n);
        p = (unsigned char *)realloc(p, th_size(n - 1 > 0 ? n - 1 : 1));
        CHECK(p != NULL);
        CHECK_PAT(p, 0, n - 1 > 0 ? n - 1 : 1, n);
        /* grow to the full usable size reported: the contents stay */
        size_t u = malloc_usable_size(p);
        p = (unsigned char *)realloc(p, th_size(u));
        CHECK(p != NULL);
        CHECK_PAT(p, 0, n - 1 > 0 ? n - 1 : 1, n);
        free(p);
    }
    /* an aligned block can be realloc'ed like any other */
    unsigned char *a = (unsigned char *)memalign(4096, 3000);
    th_fill(a, 0, 3000, 3);
    a = (unsigned char *)realloc(a, 90000);
    CHECK(a != NULL);
    CHECK_PAT(a, 0, 3000, 3);
    a = (unsigned char *)realloc(a, 10);
    CHECK(a != NULL);
    CHECK_PAT(a, 0, 10, 3);
    free(a);
}

#define NB 128

static void random_resizes(void)
{
    static unsigned char *p[NB];
    static size_t n[NB];
    static uint64_t seed[NB];
    uint64_t rng = 0x1234567887654321ULL;
    for (int iter = 0; iter < 20000; iter++) {
        int i = (int)(th_rand(&rng) % NB);
        uint64_t r = th_rand(&rng);
        size_t m;
        if (r % 1000 == 0)
            m = th_rand_range(&rng, TH_MIB, 6 * TH_MIB);
        else if (r % 50 == 0)
            m = th_rand_range(&rng, 16 * TH_KIB, 300 * TH_KIB);
        else
            m = th_rand_range(&rng, 1, 2000);
        unsigned char *q = (unsigned char *)realloc(p[i], th_size(m));
        CHECKF(q != NULL, "realloc(%p, %zu)", (void *)p[i], m);
        if (p[i] != NULL)
            CHECK_PAT(q, 0, min_sz(n[i], m), seed[i]);
        seed[i] = (uint64_t)iter;
        th_fill(q, 0, m, seed[i]);
        p[i] = q;
        n[i] = m;
    }
    for (int i = 0; i < NB; i++) {
        CHECK_PAT(p[i], 0, n[i], seed[i]);
        free(p[i]);
    }
}

int main(void)
{
    grow_and_shrink();
    class_jumps();
    same_and_near_sizes();
    random_resizes();
    printf("realloc ok\n");
    return 0;
}

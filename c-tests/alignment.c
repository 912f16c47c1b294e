// mode: preload direct glibc
//
// Every block is 16-byte aligned whatever its size and entry point, and
// blocks that are live at the same time never overlap (each carries its own
// pattern over its full requested size, checked after all are allocated).
#include "testhelper.h"

#define MAX_LIVE 6000

struct blk {
    void *p;
    size_t n;
};

static struct blk live[MAX_LIVE];
static int nlive;

static void add(void *p, size_t n, const char *how)
{
    CHECKF(p != NULL, "%s(%zu) failed", how, n);
    CHECKF(th_aligned(p, 16), "%s(%zu) returned %p, not 16-byte aligned", how, n, p);
    CHECK(nlive < MAX_LIVE);
    th_fill(p, 0, n, (uint64_t)nlive);
    live[nlive].p = p;
    live[nlive].n = n;
    nlive++;
}

static void verify_and_free_all(void)
{
    for (int i = 0; i < nlive; i++) {
        CHECK_PAT(live[i].p, 0, live[i].n, (uint64_t)i);
        CHECK_OWNED(live[i].p);
    }
    for (int i = 0; i < nlive; i++)
        free(live[i].p);
    nlive = 0;
}

int main(void)
{
    /* Every size up to 4 KiB via malloc. */
    for (size_t n = 0; n <= 4096; n++)
        add(malloc(th_size(n)), n, "malloc");
    verify_and_free_all();

    /* Odd sizes up to ~70 KB via malloc and calloc. */
    for (size_t n = 4097; n <= 70000; n += 61) {
        add(malloc(th_size(n)), n, "malloc");
        add(calloc(1, th_size(n)), n, "calloc");
    }
    verify_and_free_all();

    /* calloc with element counts and sizes that are not powers of two. */
    for (size_t n = 0; n <= 600; n++)
        add(calloc(th_size(n), 3), n * 3, "calloc");
    for (size_t n = 1; n <= 600; n += 7)
        add(calloc(7, th_size(n)), n * 7, "calloc");
    verify_and_free_all();

    /* Large and huge sizes, including ones just off page/power boundaries. */
    size_t big[] = {100000, 131071, 131072, 131073, 262145, TH_MIB - 1, TH_MIB,
                    TH_MIB + 1, 2 * TH_MIB + 8, 7 * TH_MIB + 3, 33 * TH_MIB, 64 * TH_MIB + 1};
    for (size_t i = 0; i < sizeof big / sizeof big[0]; i++)
        add(malloc(th_size(big[i])), big[i], "malloc");
    verify_and_free_all();

    /* realloc results are aligned at every step. */
    void *p = NULL;
    size_t prev = 0;
    for (size_t n = 1; n <= 3 * TH_MIB; n = n * 5 / 3 + 1) {
        p = realloc(p, th_size(n));
        CHECKF(p != NULL && th_aligned(p, 16), "realloc to %zu gave %p", n, p);
        if (prev != 0)
            CHECK_PAT(p, 0, prev < n ? prev : n, 99);
        th_fill(p, 0, n, 99);
        prev = n;
    }
    free(p);

    printf("alignment ok\n");
    return 0;
}

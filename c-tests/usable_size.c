// mode: preload direct glibc
//
// malloc_usable_size(NULL) == 0; for every size from 0 to ~70000 (dense at
// first, then a step pattern) and for large sizes, the usable size is at
// least the requested size and every usable byte can be written without
// disturbing any other live block.
#include "testhelper.h"

#define RING 64

struct blk {
    unsigned char *p;
    size_t usable;
    uint64_t seed;
};

static struct blk ring[RING];

static void retire(struct blk *b)
{
    if (b->p == NULL)
        return;
    CHECK_PAT(b->p, 0, b->usable, b->seed);
    CHECK(malloc_usable_size(b->p) == b->usable);
    free(b->p);
    b->p = NULL;
}

static void one(size_t n, uint64_t seed, int how)
{
    unsigned char *p;
    switch (how) {
    case 0: p = (unsigned char *)malloc(th_size(n)); break;
    case 1: p = (unsigned char *)calloc(1, th_size(n)); break;
    case 2: p = (unsigned char *)memalign(64, th_size(n)); break;
    default: {
        /* realloc down from a bigger block */
        p = (unsigned char *)malloc(n * 2 + 64);
        CHECK(p != NULL);
        p = (unsigned char *)realloc(p, th_size(n));
        if (n == 0) {
            CHECK(p == NULL); /* realloc(p, 0) frees */
            return;
        }
        break;
    }
    }
    CHECKF(p != NULL, "allocation of %zu (kind %d) failed", n, how);
    size_t u = malloc_usable_size(p);
    CHECKF(u >= n, "malloc_usable_size(%p) = %zu < requested %zu (kind %d)", (void *)p, u, n, how);
    if (how == 1)
        CHECK_ALL_BYTES(p, n, 0);
    /* Every usable byte is ours: write all of them with a pattern that is
     * checked again when the block is retired, after RING-1 other blocks
     * were written in the meantime. */
    th_fill(p, 0, u, seed);
    struct blk *slot = &ring[seed % RING];
    retire(slot);
    slot->p = p;
    slot->usable = u;
    slot->seed = seed;
}

int main(void)
{
    CHECK(malloc_usable_size(NULL) == 0);

    uint64_t seed = 1;
    for (size_t n = 0; n <= 2048; n++)
        one(n, seed++, 0);
    for (size_t n = 2049; n <= 70000; n += 37)
        one(n, seed++, 0);
    for (size_t n = 0; n <= 70000; n += (n < 1024 ? 3 : 331)) {
        one(n, seed++, 1);
        one(n, seed++, 2);
        one(n, seed++, 3);
    }
    for (int i = 0; i < RING; i++)
        retire(&ring[i]);

    static const size_t large[] = {100 * 1024, 256 * 1024, TH_MIB, TH_MIB + 1,
                                   40 * TH_MIB, 100 * TH_MIB};
    for (size_t i = 0; i < sizeof large / sizeof large[0]; i++) {
        size_t n = large[i];
        unsigned char *p = (unsigned char *)malloc(th_size(n));
        CHECKF(p != NULL, "malloc(%zu)", n);
        size_t u = malloc_usable_size(p);
        CHECKF(u >= n, "malloc_usable_size = %zu < %zu", u, n);
        memset(p, 0xc3, u);
        CHECK_ALL_BYTES(p + u - 4096, 4096, 0xc3);
        CHECK_OWNED(p);
        free(p);
    }
    printf("usable_size ok\n");
    return 0;
}

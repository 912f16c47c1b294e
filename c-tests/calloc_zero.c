// mode: preload direct glibc
//
// calloc memory is zero, also when it reuses blocks that were dirtied and
// freed just before (same size, many times), for small, medium (100 KiB)
// and large (40 MiB) sizes, and for many counts/sizes combinations.
#include "testhelper.h"

#define NBATCH 1000

static void dirty_then_calloc_batch(size_t n, int rounds)
{
    static void *blocks[NBATCH];
    for (int r = 0; r < rounds; r++) {
        for (int i = 0; i < NBATCH; i++) {
            blocks[i] = malloc(n);
            CHECK(blocks[i] != NULL);
            memset(blocks[i], 0xAB, malloc_usable_size(blocks[i]));
        }
        for (int i = 0; i < NBATCH; i++)
            free(blocks[i]);
        for (int i = 0; i < NBATCH; i++) {
            blocks[i] = calloc(1, th_size(n));
            CHECKF(blocks[i] != NULL, "calloc(1, %zu)", n);
            CHECK_ALL_BYTES(blocks[i], n, 0);
            memset(blocks[i], 0xAB, n); /* dirty again for the next round */
        }
        for (int i = 0; i < NBATCH; i++)
            free(blocks[i]);
    }
}

static void dirty_then_calloc_one(size_t n, int rounds)
{
    for (int r = 0; r < rounds; r++) {
        unsigned char *p = (unsigned char *)malloc(n);
        CHECK(p != NULL);
        memset(p, 0xAB, malloc_usable_size(p));
        free(p);
        unsigned char *q = (unsigned char *)calloc(th_size(n / 8), 8);
        CHECKF(q != NULL, "calloc(%zu, 8)", n / 8);
        CHECK_ALL_BYTES(q, n / 8 * 8, 0);
        memset(q, 0xAB, n / 8 * 8);
        free(q);
    }
}

int main(void)
{
    static const size_t small[] = {1, 8, 16, 24, 48, 64, 100, 128, 250, 512, 1000, 2048, 4000};
    for (size_t i = 0; i < sizeof small / sizeof small[0]; i++)
        dirty_then_calloc_batch(small[i], 5);

    dirty_then_calloc_one(100 * TH_KIB, 200);
    dirty_then_calloc_one(100 * TH_KIB + 24, 50);
    dirty_then_calloc_one(1 * TH_MIB, 30);
    dirty_then_calloc_one(40 * TH_MIB, 6);

    /* A mix: dirty a range of sizes, free in a scrambled order, calloc the
     * same sizes back. */
    static void *mix[2000];
    static size_t mixn[2000];
    uint64_t rng = 99;
    for (int round = 0; round < 4; round++) {
        for (int i = 0; i < 2000; i++) {
            mixn[i] = th_rand_range(&rng, 1, i % 50 == 0 ? 200000 : 3000);
            mix[i] = malloc(mixn[i]);
            CHECK(mix[i] != NULL);
            memset(mix[i], 0xAB, mixn[i]);
        }
        for (int i = 0; i < 2000; i++)
            free(mix[(i * 7919) % 2000]);
        for (int i = 0; i < 2000; i++) {
            mix[i] = calloc(mixn[i], 1);
            CHECK(mix[i] != NULL);
            CHECK_ALL_BYTES(mix[i], mixn[i], 0);
        }
        for (int i = 0; i < 2000; i++)
            free(mix[i]);
    }

    /* count x size combinations */
    for (size_t count = 1; count <= 64; count++) {
        for (size_t size = 1; size <= 64; size += 3) {
            unsigned char *p = (unsigned char *)calloc(th_size(count), th_size(size));
            CHECK(p != NULL);
            CHECK_ALL_BYTES(p, count * size, 0);
            memset(p, 0xAB, count * size);
            free(p);
        }
    }
    printf("calloc_zero ok\n");
    return 0;
}

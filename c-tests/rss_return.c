// mode: preload direct glibc
//
// Freed memory goes back to the system: allocate ~200 MiB in 4 KiB..64 KiB
// blocks, touch every byte, free them all (scrambled order), call
// malloc_trim(0); the resident set must fall back below start + 20 MiB.
#include "testhelper.h"

#define TARGET (200 * TH_MIB)
#define MAXBLK 60000

static void *blocks[MAXBLK];

int main(void)
{
    size_t rss0 = th_rss_bytes();
    uint64_t rng = 0xfeedfaceULL;
    size_t total = 0;
    int n = 0;
    while (total < TARGET) {
        CHECK(n < MAXBLK);
        size_t sz = th_rand_range(&rng, 4 * TH_KIB, 64 * TH_KIB);
        blocks[n] = malloc(sz);
        CHECKF(blocks[n] != NULL, "malloc(%zu) after %zu bytes", sz, total);
        memset(blocks[n], (int)(n & 0xff) | 1, sz);
        total += sz;
        n++;
    }
    size_t rss1 = th_rss_bytes();
    printf("blocks=%d total=%zu MiB rss start=%zu MiB full=%zu MiB\n", n, total / TH_MIB,
           rss0 / TH_MIB, rss1 / TH_MIB);
    CHECKF(rss1 >= rss0 + 180 * TH_MIB, "touching 200 MiB only raised RSS from %zu to %zu",
           rss0, rss1);

    /* spot-check the data before freeing */
    for (int i = 0; i < n; i += 97)
        CHECK(((unsigned char *)blocks[i])[0] == ((i & 0xff) | 1));

    /* free in a scrambled order (stride coprime with n) */
    size_t stride = 7919;
    while (n % (int)stride == 0)
        stride += 2;
    for (int i = 0; i < n; i++)
        free(blocks[(size_t)i * stride % (size_t)n]);

    int t = malloc_trim(0);
    CHECK(t == 0 || t == 1);
    size_t rss2 = th_rss_bytes();
    printf("rss after free+trim=%zu MiB\n", rss2 / TH_MIB);
    CHECKF(rss2 < rss0 + 20 * TH_MIB,
           "RSS did not come back: start %zu MiB, full %zu MiB, after free+trim %zu MiB",
           rss0 / TH_MIB, rss1 / TH_MIB, rss2 / TH_MIB);

    /* The memory can be used again. */
    for (int i = 0; i < 1000; i++) {
        void *p = malloc(32 * TH_KIB);
        CHECK(p != NULL);
        memset(p, 1, 32 * TH_KIB);
        free(p);
    }
    printf("rss_return ok\n");
    return 0;
}

// mode: preload direct glibc
//
// A seeded random mix of every allocation entry point over 1024 slots,
// with sizes from 0 bytes to a few MiB.  Each live block carries a pattern
// over its whole usable size, checked before it is resized or freed, so a
// block that overlaps another or loses data is caught.
#include "testhelper.h"

#define SLOTS 1024
#define OPS 80000

struct slot {
    unsigned char *p;
    size_t n;      /* requested size: pattern length */
    uint64_t seed;
};

static struct slot slots[SLOTS];

static size_t pick_size(uint64_t *rng)
{
    uint64_t r = th_rand(rng) % 1000;
    if (r == 0)
        return th_rand_range(rng, TH_MIB, 4 * TH_MIB);
    if (r < 10)
        return th_rand_range(rng, 32 * TH_KIB, 512 * TH_KIB);
    if (r < 100)
        return th_rand_range(rng, 1024, 32 * TH_KIB);
    if (r < 110)
        return 0;
    return th_rand_range(rng, 1, 1024);
}

int main(void)
{
    uint64_t rng = 0xabcdef12345ULL;
    for (int op = 0; op < OPS; op++) {
        struct slot *s = &slots[th_rand(&rng) % SLOTS];
        if (s->p != NULL)
            CHECK_PAT(s->p, 0, s->n, s->seed);
        size_t n = pick_size(&rng);
        unsigned kind = (unsigned)(th_rand(&rng) % 10);
        unsigned char *p = NULL;
        if (s->p != NULL && kind < 3) {
            p = (unsigned char *)realloc(s->p, th_size(n));
            if (n == 0) {
                CHECK(p == NULL); /* realloc(p, 0) frees */
                s->p = NULL;
                continue;
            }
            CHECKF(p != NULL, "realloc to %zu", n);
            CHECK_PAT(p, 0, s->n < n ? s->n : n, s->seed);
        } else {
            if (s->p != NULL)
                free(s->p);
            s->p = NULL;
            if (kind == 9)
                continue; /* leave the slot empty */
            switch (kind) {
            case 3: p = (unsigned char *)calloc(1, th_size(n)); break;
            case 4: {
                size_t a = (size_t)16 << (th_rand(&rng) % 9);
                p = (unsigned char *)memalign(a, th_size(n));
                CHECK(p == NULL || th_aligned(p, a));
                break;
            }
            case 5: {
                void *q = NULL;
                size_t a = (size_t)8 << (th_rand(&rng) % 10);
                CHECK(posix_memalign(&q, a, th_size(n)) == 0);
                CHECK(th_aligned(q, a));
                p = (unsigned char *)q;
                break;
            }
            case 6: p = (unsigned char *)reallocarray(NULL, th_size(n), 1); break;
            default: p = (unsigned char *)malloc(th_size(n)); break;
            }
            CHECKF(p != NULL, "allocation of %zu (kind %u)", n, kind);
            if (kind == 3)
                CHECK_ALL_BYTES(p, n, 0);
        }
        CHECK(th_aligned(p, 16));
        size_t u = malloc_usable_size(p);
        CHECKF(u >= n, "usable %zu < %zu", u, n);
        /* scribble on the slack beyond n; nobody else may see it */
        if (u > n)
            memset(p + n, 0xee, u - n > 256 ? 256 : u - n);
        s->p = p;
        s->n = n;
        s->seed = (uint64_t)op;
        th_fill(p, 0, n, s->seed);
    }
    for (int i = 0; i < SLOTS; i++) {
        if (slots[i].p != NULL) {
            CHECK_PAT(slots[i].p, 0, slots[i].n, slots[i].seed);
            CHECK_OWNED(slots[i].p);
            free(slots[i].p);
        }
    }
    printf("random_ops ok\n");
    return 0;
}

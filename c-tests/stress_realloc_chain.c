// mode: preload direct glibc
// timeout: 40
// stdout: stress_realloc_chain: ok
// env@direct: XALLOC_PURGE_DELAY_MS=0
// env@direct: XALLOC_DIRTY_CAP=0
//
// Realloc chains.  Single-threaded and fully determined by the seed, so a
// failure repeats with the same seed.
//   1. Geometric: 4 chains, interleaved in random order, each grows one
//      block from 1 byte to 40 MiB (x1.3 per step) and back down to 1 byte;
//      after every step each chain also allocates a neighbour block (which
//      lives for a few steps), so blocks sit next to the growing ones.
//   2. Fine: 2 chains grow from 1 byte to 2 MiB and back in small random
//      steps, crossing every size-class boundary.
//   3. Boundaries: a block goes back and forth across 32 KiB (small/medium)
//      and 32 MiB (medium/huge) and across page multiples, by 1 byte to
//      several pages.
// At every step the kept prefix must equal the chain's pattern (which
// depends only on the chain and the byte index), new bytes get the
// pattern, and malloc_usable_size must cover the size.
// The direct-link trial runs with XALLOC_PURGE_DELAY_MS=0 and
// XALLOC_DIRTY_CAP=0: freed pages are purged at once.
// Optional argument: seed.
#include "stress.h"

#define NCHAINS 4
#define TOP (40 * TH_MIB)
#define NEIGH 8

struct chain {
    unsigned char *p;
    size_t n;
    uint64_t id;
    int up; /* 1 while growing */
    int done;
    uint64_t steps, moves;
    struct {
        unsigned char *p;
        size_t n;
        uint64_t id;
    } neigh[NEIGH];
    int nh;
};

static uint64_t total_steps, total_moves, neighbours;

static void step_to(struct chain *c, size_t m, const char *phase)
{
    size_t keep = c->n < m ? c->n : m;
    uint64_t seed = st_block_seed(c->id, 0);
    unsigned char *q = (unsigned char *)realloc(c->p, m);
    ST_CHECK(q != NULL, "%s chain %llu: realloc(%p, %zu) returned NULL", phase,
             (unsigned long long)c->id, (void *)c->p, m);
    ST_CHECK(th_aligned(q, 16), "%s: realloc returned %p", phase, (void *)q);
    ST_VERIFY(q, 0, keep, seed, "%s chain %llu step %llu: realloc %zu -> %zu (%p -> %p)", phase,
              (unsigned long long)c->id, (unsigned long long)c->steps, c->n, m, (void *)c->p,
              (void *)q);
    size_t usable = malloc_usable_size(q);
    ST_CHECK(usable >= m, "%s chain %llu: usable %zu < %zu", phase, (unsigned long long)c->id,
             usable, m);
    if (m > c->n)
        st_fill(q, c->n, m, seed);
    if (q != c->p)
        c->moves++;
    c->p = q;
    c->n = m;
    c->steps++;
    total_steps++;
}

static void neighbour(struct chain *c, uint64_t *rng)
{
    int k = c->nh % NEIGH;
    if (c->neigh[k].p != NULL) {
        ST_VERIFY(c->neigh[k].p, 0, c->neigh[k].n, st_block_seed(c->neigh[k].id, 1),
                  "neighbour of chain %llu", (unsigned long long)c->id);
        free(c->neigh[k].p);
    }
    size_t n = th_rand(rng) % 2 ? c->n : th_rand_range(rng, 1, 4096);
    if (n > 4 * TH_MIB)
        n = th_rand_range(rng, 1, 4 * TH_MIB);
    c->neigh[k].p = (unsigned char *)malloc(n);
    ST_CHECK(c->neigh[k].p != NULL, "malloc(%zu)", n);
    c->neigh[k].n = n;
    c->neigh[k].id = c->id * 1000003 + (uint64_t)c->nh;
    st_fill(c->neigh[k].p, 0, n, st_block_seed(c->neigh[k].id, 1));
    c->nh++;
    neighbours++;
}

static void chain_release(struct chain *c)
{
    ST_VERIFY(c->p, 0, c->n, st_block_seed(c->id, 0), "chain %llu at the end",
              (unsigned long long)c->id);
    free(c->p);
    c->p = NULL;
    for (int k = 0; k < NEIGH; k++) {
        if (c->neigh[k].p == NULL)
            continue;
        ST_VERIFY(c->neigh[k].p, 0, c->neigh[k].n, st_block_seed(c->neigh[k].id, 1),
                  "neighbour of chain %llu", (unsigned long long)c->id);
        free(c->neigh[k].p);
        c->neigh[k].p = NULL;
    }
}

static void chain_start(struct chain *c, uint64_t id)
{
    memset(c, 0, sizeof *c);
    c->id = id;
    c->p = (unsigned char *)malloc(1);
    ST_CHECK(c->p != NULL, "malloc(1)");
    c->n = 1;
    st_fill(c->p, 0, 1, st_block_seed(id, 0));
    c->up = 1;
}

static void phase_geometric(uint64_t *rng)
{
    struct chain ch[NCHAINS];
    for (int i = 0; i < NCHAINS; i++)
        chain_start(&ch[i], 100 + (uint64_t)i);
    int left = NCHAINS;
    while (left > 0) {
        struct chain *c = &ch[th_rand(rng) % NCHAINS];
        if (c->done)
            continue;
        size_t m;
        if (c->up) {
            m = c->n + c->n * 3 / 10 + 1;
            if (m >= TOP) {
                m = TOP;
                c->up = 0;
            }
        } else {
            m = c->n * 10 / 13;
            if (m <= 1) {
                m = 1;
                c->done = 1;
                left--;
            }
        }
        step_to(c, m, "geometric");
        neighbour(c, rng);
    }
    for (int i = 0; i < NCHAINS; i++) {
        total_moves += ch[i].moves;
        chain_release(&ch[i]);
    }
}

static void phase_fine(uint64_t *rng)
{
    struct chain ch[2];
    for (int i = 0; i < 2; i++)
        chain_start(&ch[i], 200 + (uint64_t)i);
    int left = 2;
    while (left > 0) {
        struct chain *c = &ch[th_rand(rng) % 2];
        if (c->done)
            continue;
        size_t d = th_rand_range(rng, 1, c->n / 16 + 24);
        size_t m;
        if (c->up) {
            m = c->n + d;
            if (m >= 2 * TH_MIB) {
                m = 2 * TH_MIB;
                c->up = 0;
            }
        } else {
            m = c->n > d + 1 ? c->n - d : 1;
            if (m == 1) {
                c->done = 1;
                left--;
            }
        }
        step_to(c, m, "fine");
        if (c->steps % 8 == 0)
            neighbour(c, rng);
    }
    for (int i = 0; i < 2; i++) {
        total_moves += ch[i].moves;
        chain_release(&ch[i]);
    }
}

static void phase_boundaries(uint64_t *rng)
{
    static const size_t marks[] = {32 * TH_KIB, 32 * TH_MIB, 4096, 64 * TH_KIB, 1 * TH_MIB,
                                   2 * TH_MIB};
    static const size_t deltas[] = {1, 15, 16, 17, 4095, 4096, 4097, 3 * 4096};
    struct chain c;
    chain_start(&c, 300);
    for (size_t i = 0; i < sizeof marks / sizeof marks[0]; i++) {
        for (size_t j = 0; j < sizeof deltas / sizeof deltas[0]; j++) {
            size_t lo = marks[i] > deltas[j] ? marks[i] - deltas[j] : 1;
            size_t hi = marks[i] + deltas[j];
            step_to(&c, lo, "boundary");
            step_to(&c, hi, "boundary");
            step_to(&c, lo, "boundary");
            step_to(&c, marks[i], "boundary");
            step_to(&c, hi, "boundary");
            if (th_rand(rng) % 2)
                neighbour(&c, rng);
        }
    }
    total_moves += c.moves;
    chain_release(&c);
}

int main(int argc, char **argv)
{
    st_init("stress_realloc_chain", argc, argv);
    uint64_t rng = st_rng(0);
    double t0 = st_now();
    phase_geometric(&rng);
    double t1 = st_now();
    uint64_t s1 = total_steps;
    phase_fine(&rng);
    double t2 = st_now();
    uint64_t s2 = total_steps;
    phase_boundaries(&rng);
    double t3 = st_now();
    st_check_heap();
    printf("stress_realloc_chain: geometric: %d chains 1 B -> %.0f MiB -> 1 B (x1.3): %llu "
           "steps, %.2f s\n",
           NCHAINS, ST_MIB(TOP), (unsigned long long)s1, t1 - t0);
    printf("  fine: 2 chains 1 B -> 2 MiB -> 1 B in small steps: %llu steps, %.2f s\n",
           (unsigned long long)(s2 - s1), t2 - t1);
    printf("  boundaries (32 KiB, 32 MiB, pages): %llu steps, %.2f s\n",
           (unsigned long long)(total_steps - s2), t3 - t2);
    printf("  1 thread, %llu reallocs (%llu moved the block), %llu neighbour blocks, bytes "
           "verified %.1f MiB\n",
           (unsigned long long)total_steps, (unsigned long long)total_moves,
           (unsigned long long)neighbours, ST_MIB(st_verified_total()));
    printf("stress_realloc_chain: ok\n");
    return 0;
}

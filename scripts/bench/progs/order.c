/*
 * order.c - bulk allocate, then bulk free in a given order, single thread.
 *
 * Each round allocates N = 100000 blocks of 16..256 B (uniform, fully
 * written), then checks and frees all of them in an order chosen by the
 * mode, and starts over. Stresses free-list handling when a whole
 * generation dies at once: LIFO is the friendliest order (stack-like
 * reuse), FIFO walks memory in allocation order, random order scatters
 * frees over all pages and defeats locality / bump-pointer reuse.
 *
 * Modes: lifo, fifo, random (a fresh permutation per round; shuffling is
 * inside the timed section but not counted as ops).
 *
 * ops = allocations.
 */
#include "bench.h"

#define N 100000
#define ROUNDS 50 /* at scale 1.0 */

enum { LIFO, FIFO, RANDOM };
static const char *const modes[] = { "lifo", "fifo", "random" };

int main(int argc, char **argv)
{
    struct bench_opts o = bench_args(argc, argv, modes, 3);
    uint64_t rounds = scaled(ROUNDS, o.scale);
    struct rng r = rng_make(0x0DE7 + (uint64_t)o.mode);

    void **ptr = xmalloc(N * sizeof *ptr);
    uint16_t *len = xmalloc(N * sizeof *len);
    uint32_t *idx = xmalloc(N * sizeof *idx);
    for (uint32_t i = 0; i < N; i++)
        idx[i] = i;
    uint64_t ops = 0;

    double t0 = now_sec();
    for (uint64_t round = 0; round < rounds; round++) {
        for (uint32_t i = 0; i < N; i++) {
            len[i] = (uint16_t)rng_range(&r, 16, 256);
            ptr[i] = xmalloc(len[i]);
            fill_block(ptr[i], len[i], round * N + i);
        }
        ops += N;
        if (o.mode == RANDOM)
            shuffle_u32(&r, idx, N);
        for (uint32_t k = 0; k < N; k++) {
            uint32_t i = o.mode == LIFO ? N - 1 - k
                       : o.mode == FIFO ? k
                       : idx[k];
            check_block(ptr[i], len[i], round * N + i);
            free(ptr[i]);
        }
    }
    double secs = now_sec() - t0;

    free(idx);
    free(len);
    free(ptr);
    report(ops, secs, NULL);
    return 0;
}

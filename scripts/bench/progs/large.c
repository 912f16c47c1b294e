/*
 * large.c - large blocks, single thread.
 *
 * A working set of 32 slots holds blocks of 64 KiB .. 16 MiB (log-uniform
 * sizes); each step checks and frees a random slot and allocates a new
 * block into it. Stresses the large-object path: mmap/munmap cost, caching
 * of freed large regions, page-fault and zeroing cost, and how much address
 * space / RSS is retained.
 *
 * Modes:
 *   touched    write one byte in every 4 KiB page of each new block (so all
 *              its pages are faulted in); check first, last and one random
 *              page before free
 *   untouched  write only the first and last byte
 *
 * Timed section: the replacement steps only (not the initial fill).
 * ops = allocations in the timed section.
 */
#include "bench.h"

#define SLOTS 32
#define MINSZ (64u * 1024)
#define MAXSZ (16u * 1024 * 1024)
#define PAGE 4096

enum { TOUCHED, UNTOUCHED };
static const char *const modes[] = { "touched", "untouched" };
static const uint64_t steps_base[] = { 6000, 800000 }; /* at scale 1.0 */

static inline unsigned char pbyte(uint32_t tag, size_t off)
{
    return (unsigned char)(tag * 13u + (off >> 12) * 7u + 1u);
}

static void fill(unsigned char *p, size_t n, uint32_t tag, int mode)
{
    if (mode == TOUCHED)
        for (size_t off = 0; off < n; off += PAGE)
            p[off] = pbyte(tag, off);
    p[0] = pbyte(tag, 0);
    p[n - 1] = pbyte(tag, n - 1);
}

static void check(const unsigned char *p, size_t n, uint32_t tag, int mode,
                  struct rng *r)
{
    if (p[0] != pbyte(tag, 0) || p[n - 1] != pbyte(tag, n - 1))
        corrupt("large block ends", p);
    if (mode == TOUCHED) {
        size_t off = (size_t)rng_below(r, (n + PAGE - 1) / PAGE) * PAGE;
        if (p[off] != pbyte(tag, off))
            corrupt("large block page", p);
    }
}

int main(int argc, char **argv)
{
    struct bench_opts o = bench_args(argc, argv, modes, 2);
    uint64_t steps = scaled(steps_base[o.mode], o.scale);
    struct rng r = rng_make(0x1A26E + (uint64_t)o.mode);
    unsigned char *ptr[SLOTS];
    size_t len[SLOTS];
    uint32_t tag[SLOTS], serial = 0;

    for (int i = 0; i < SLOTS; i++) {
        len[i] = rng_logu(&r, MINSZ, MAXSZ);
        tag[i] = serial++;
        ptr[i] = xmalloc(len[i]);
        fill(ptr[i], len[i], tag[i], o.mode);
    }

    double t0 = now_sec();
    for (uint64_t s = 0; s < steps; s++) {
        size_t i = (size_t)rng_below(&r, SLOTS);
        check(ptr[i], len[i], tag[i], o.mode, &r);
        free(ptr[i]);
        len[i] = rng_logu(&r, MINSZ, MAXSZ);
        tag[i] = serial++;
        ptr[i] = xmalloc(len[i]);
        fill(ptr[i], len[i], tag[i], o.mode);
    }
    double secs = now_sec() - t0;

    for (int i = 0; i < SLOTS; i++) {
        check(ptr[i], len[i], tag[i], o.mode, &r);
        free(ptr[i]);
    }
    report(steps, secs, NULL);
    return 0;
}

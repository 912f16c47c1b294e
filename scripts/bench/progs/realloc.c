/*
 * realloc.c - growing buffers via realloc, single thread.
 *
 * Mode grow (the only mode):
 *   - 512 "string" buffers, visited round-robin; each step appends 1..64
 *     random bytes with realloc(p, len + n) (string building). A buffer that
 *     passes 64 KiB is freed and restarted from empty.
 *   - 64 "vectors", one of them grown every VEC_EVERY string steps by
 *     doubling its capacity (16 B .. 1 MiB); after reaching 1 MiB it is
 *     freed and restarted at 16 B. New space is written at every offset that is a multiple of 64.
 * Every byte position has a value derived from its offset and the buffer's
 * generation; after each realloc the last previously written bytes and a
 * random sample are checked, so a realloc that moves the block must copy it.
 *
 * Before the timed section every buffer is prefilled to a random point of
 * its life (untimed), so the footprint does not depend on the scale.
 *
 * Stresses in-place growth, size-class promotion (copy on class change),
 * and large realloc (mremap or copy).
 *
 * ops = realloc calls + malloc calls.
 */
#include "bench.h"

#define NSTR 512
#define STR_MAX (64 * 1024)
#define NVEC 64
#define VEC_MIN 16
#define VEC_MAX (1024 * 1024)
#define VEC_STRIDE 64
#define VEC_EVERY 128
#define STEPS 1200000ull /* string steps at scale 1.0 */

static const char *const modes[] = { "grow" };

struct buf {
    unsigned char *p;
    size_t len; /* bytes written (strings) or capacity (vectors) */
    uint32_t gen;
};

static inline unsigned char sbyte(uint32_t gen, size_t i)
{
    return (unsigned char)(i * 167u + gen * 29u + (i >> 9));
}

static void check_str(const struct buf *b, struct rng *r)
{
    size_t from = b->len > 8 ? b->len - 8 : 0;
    for (size_t i = from; i < b->len; i++)
        if (b->p[i] != sbyte(b->gen, i))
            corrupt("string tail after realloc", b->p);
    if (b->len) {
        size_t i = (size_t)rng_below(r, b->len);
        if (b->p[i] != sbyte(b->gen, i))
            corrupt("string sample after realloc", b->p);
    }
}

static void check_vec(const struct buf *v, size_t upto, struct rng *r)
{
    size_t nstr = (upto + VEC_STRIDE - 1) / VEC_STRIDE; /* grid points */
    size_t last = (nstr - 1) * VEC_STRIDE;
    size_t any = (size_t)rng_below(r, nstr) * VEC_STRIDE;
    if (v->p[last] != sbyte(v->gen, last) || v->p[any] != sbyte(v->gen, any) ||
        v->p[0] != sbyte(v->gen, 0))
        corrupt("vector content after realloc", v->p);
}

static void *xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n);
    if (!q)
        oom(n);
    return q;
}

int main(int argc, char **argv)
{
    struct bench_opts o = bench_args(argc, argv, modes, 1);
    uint64_t steps = scaled(STEPS, o.scale);
    struct rng r = rng_make(0x4EA110C);
    static struct buf str[NSTR], vec[NVEC];
    uint32_t gen = 1;
    uint64_t ops = 0;

    /* Untimed prefill to a random point of each buffer's life, so the
     * working set is at steady state from the first timed step. */
    for (int i = 0; i < NSTR; i++) {
        struct buf *b = &str[i];
        b->gen = gen++;
        b->len = (size_t)rng_below(&r, STR_MAX);
        b->p = xmalloc(b->len + 1);
        for (size_t k = 0; k < b->len; k++)
            b->p[k] = sbyte(b->gen, k);
    }
    for (int i = 0; i < NVEC; i++) {
        struct buf *v = &vec[i];
        v->gen = gen++;
        v->len = (size_t)VEC_MIN << rng_below(&r, 17); /* 16 B .. 1 MiB */
        v->p = xmalloc(v->len);
        for (size_t k = 0; k < v->len; k += VEC_STRIDE)
            v->p[k] = sbyte(v->gen, k);
    }

    double t0 = now_sec();
    size_t vi = 0;
    for (uint64_t s = 0; s < steps; s++) {
        struct buf *b = &str[s % NSTR];
        size_t n = rng_range(&r, 1, 64);
        b->p = xrealloc(b->p, b->len + n);
        ops++;
        check_str(b, &r);
        for (size_t i = b->len; i < b->len + n; i++)
            b->p[i] = sbyte(b->gen, i);
        b->len += n;
        if (b->len > STR_MAX) {
            check_str(b, &r);
            free(b->p);
            b->p = NULL;
            b->len = 0;
            b->gen = gen++;
        }

        if (s % VEC_EVERY == 0) {
            struct buf *v = &vec[vi++ % NVEC];
            size_t old = v->len;
            if (old >= VEC_MAX) {
                check_vec(v, old, &r);
                free(v->p);
                v->p = NULL;
                v->len = old = 0;
                v->gen = gen++;
            }
            size_t cap = old ? old * 2 : VEC_MIN;
            if (old) {
                v->p = xrealloc(v->p, cap);
                check_vec(v, old, &r);
            } else {
                v->p = xmalloc(cap);
            }
            ops++;
            size_t first = (old + VEC_STRIDE - 1) / VEC_STRIDE * VEC_STRIDE;
            for (size_t i = first; i < cap; i += VEC_STRIDE)
                v->p[i] = sbyte(v->gen, i);
            v->len = cap;
        }
    }
    double secs = now_sec() - t0;

    for (int i = 0; i < NSTR; i++) {
        if (str[i].p)
            check_str(&str[i], &r);
        free(str[i].p);
    }
    for (int i = 0; i < NVEC; i++) {
        if (vec[i].p)
            check_vec(&vec[i], vec[i].len, &r);
        free(vec[i].p);
    }
    report(ops, secs, NULL);
    return 0;
}

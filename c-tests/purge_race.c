// mode: preload direct glibc
// timeout: 60
// env: XALLOC_PURGE_DELAY_MS=0
// env: XALLOC_DIRTY_CAP=0
//
// Purging while other threads take pages: with a purge delay and a dirty cap
// of 0 every page given back is purged at once, with the page lock dropped
// while MADV_DONTNEED runs. 4 threads each keep 12 live medium blocks
// (40 KiB .. 1 MiB; malloc or calloc) and replace a random one per step:
// a calloc'ed block must read as zero (a page handed out as clean must be),
// every block is filled with its own pattern on every page and checked
// before it is freed (a page purged while in use would read as zero), and
// small blocks in between drive the purge clock of the small-block paths.
// One thread also calls malloc_trim(0) now and then, on xalloc another
// checks every arena's invariants (xa_check_heap) while pages are being
// purged, and a third forks: the child (where the other threads' purges in
// flight never finish) checks the arenas, allocates and frees, and exits.
#include "testhelper.h"
#include <pthread.h>

#define THREADS 4
#define LIVE 12
#define STEPS 1500
#define PAGE 4096

struct block {
    unsigned char *p;
    size_t n;
    uint64_t tag;
};

/* xa_check_heap on xalloc, NULL on glibc. */
static int (*check_heap)(void);

/* The tag at the start of every page (where it fits before the last byte), and
 * its low byte in the last byte. */
static void fill(struct block *b)
{
    for (size_t off = 0; off + sizeof b->tag < b->n; off += PAGE)
        memcpy(b->p + off, &b->tag, sizeof b->tag);
    b->p[b->n - 1] = (unsigned char)b->tag;
}

static void check(const struct block *b)
{
    for (size_t off = 0; off + sizeof b->tag < b->n; off += PAGE) {
        uint64_t v;
        memcpy(&v, b->p + off, sizeof v);
        CHECKF(v == b->tag, "block %p (%zu bytes) tag %llu: page at %zu holds %llu", (void *)b->p,
               b->n, (unsigned long long)b->tag, off, (unsigned long long)v);
    }
    CHECK(b->p[b->n - 1] == (unsigned char)b->tag);
}

static void *worker(void *arg)
{
    uint64_t id = (uint64_t)(uintptr_t)arg;
    uint64_t rng = 0x9E3779B97F4A7C15ULL * (id + 1);
    struct block live[LIVE];
    uint64_t serial = id << 32;
    for (int i = 0; i < LIVE; i++) {
        live[i].n = th_rand_range(&rng, 40 * TH_KIB, TH_MIB);
        live[i].p = malloc(live[i].n);
        CHECK(live[i].p != NULL);
        live[i].tag = ++serial;
        fill(&live[i]);
    }
    for (int step = 0; step < STEPS; step++) {
        struct block *b = &live[th_rand(&rng) % LIVE];
        check(b);
        free(b->p);
        b->n = th_rand_range(&rng, 40 * TH_KIB, TH_MIB);
        if (th_rand(&rng) % 2) {
            b->p = calloc(1, b->n);
            CHECK(b->p != NULL);
            size_t bad = th_find_not(b->p, b->n, 0);
            CHECKF(bad == SIZE_MAX, "calloc(1, %zu) = %p: byte %zu is 0x%02x", b->n,
                   (void *)b->p, bad, b->p[bad]);
        } else {
            b->p = malloc(b->n);
            CHECK(b->p != NULL);
        }
        b->tag = ++serial;
        fill(b);
        /* Small blocks: their paths check the purge clock too. */
        for (int k = 0; k < 64; k++) {
            char *s = malloc(16 + (size_t)k * 8);
            CHECK(s != NULL);
            s[0] = (char)k;
            free(s);
        }
        if (id == 0 && step % 100 == 0)
            malloc_trim(0);
        if (id == 1 && step % 50 == 0 && check_heap != NULL)
            check_heap();
        if (id == 2 && step % 150 == 0) {
            pid_t pid = fork();
            CHECK(pid >= 0);
            if (pid == 0) {
                if (check_heap != NULL)
                    check_heap();
                for (int k = 0; k < 64; k++) {
                    size_t n = th_rand_range(&rng, 40 * TH_KIB, TH_MIB);
                    unsigned char *c = calloc(1, n);
                    if (c == NULL || th_find_not(c, n, 0) != SIZE_MAX)
                        _exit(2);
                    memset(c, 0xff, n);
                    free(c);
                }
                if (check_heap != NULL)
                    check_heap();
                _exit(0);
            }
            CHECK_CHILD(pid, "fork at step %d", step);
        }
    }
    for (int i = 0; i < LIVE; i++) {
        check(&live[i]);
        free(live[i].p);
    }
    return NULL;
}

int main(void)
{
    if (th_mode() != TH_MODE_GLIBC) {
        void *s = th_sym("xa_check_heap", 1);
        memcpy(&check_heap, &s, sizeof check_heap);
    }
    pthread_t t[THREADS];
    for (int i = 0; i < THREADS; i++)
        CHECK(pthread_create(&t[i], NULL, worker, (void *)(uintptr_t)i) == 0);
    for (int i = 0; i < THREADS; i++)
        CHECK(pthread_join(t[i], NULL) == 0);
    printf("purge_race ok\n");
    return 0;
}

// mode: preload direct glibc
// timeout: 40
// stdout: stress_calloc_reuse: ok
// env@direct: XALLOC_PURGE_DELAY_MS=0
// env@direct: XALLOC_DIRTY_CAP=0
//
// calloc must return zeroed memory, also when it reuses memory: blocks of
// small (1 B .. 32 KiB), medium (40 KiB .. 4 MiB) and huge (40 MiB) sizes
// are allocated, filled with 0xFF over their whole usable size and freed;
// then the same sizes are calloc'ed (as n x 1, 1 x n or (n/k) x k) and
// must be all zero.  8 rounds vary how the memory went back: freed by the
// allocating thread or by another thread, in order, reversed or shuffled;
// then nothing, malloc_trim(0), a 120 ms pause (longer than the purge
// delay), or a realloc that shrinks 0xFF-filled medium blocks so their
// tails go back dirty.  calloc's result is then filled with 0xFF and freed
// in turn, so each round reuses the previous one's dirty memory.  Also:
// calloc overflow returns NULL with ENOMEM.
// The direct-link trial runs with XALLOC_PURGE_DELAY_MS=0 and
// XALLOC_DIRTY_CAP=0: freed pages are purged at once.
// Optional argument: seed.
#include "stress.h"

static const size_t small_sizes[] = {1,    8,    15,   16,   17,    24,    31,    32,   48,
                                     64,   100,  128,  200,  256,   500,   512,   1000, 1024,
                                     2000, 2048, 3000, 4096, 5000,  8192,  10000, 16384,
                                     20000, 32767, 32768};
static const size_t medium_sizes[] = {40 * TH_KIB,  64 * TH_KIB,  100 * TH_KIB, 256 * TH_KIB,
                                      1 * TH_MIB,   1536 * TH_KIB, 4 * TH_MIB};
#define HUGE_SIZE (40 * TH_MIB)
#define NSMALL (sizeof small_sizes / sizeof small_sizes[0])
#define NMEDIUM (sizeof medium_sizes / sizeof medium_sizes[0])
#define MAXB 4096
#define ROUNDS 8

struct cblk {
    unsigned char *p;
    size_t n;
    int group; /* 0 small, 1 medium, 2 huge */
};

static struct cblk blocks[MAXB];
static int nblocks;
static uint64_t zero_bytes[3], calloc_calls[3];

static void fill_ff(struct cblk *b)
{
    size_t usable = malloc_usable_size(b->p);
    ST_CHECK(usable >= b->n, "usable %zu < %zu", usable, b->n);
    memset(b->p, 0xFF, usable);
}

/* The list of sizes of one round, in a random order. */
static void plan(uint64_t *rng)
{
    nblocks = 0;
    for (size_t i = 0; i < NSMALL; i++) {
        int count = small_sizes[i] <= 1024 ? 64 : 16;
        for (int k = 0; k < count; k++)
            blocks[nblocks++] = (struct cblk){NULL, small_sizes[i], 0};
    }
    for (size_t i = 0; i < NMEDIUM; i++)
        for (int k = 0; k < 4; k++)
            blocks[nblocks++] = (struct cblk){NULL, medium_sizes[i], 1};
    for (int k = 0; k < 2; k++)
        blocks[nblocks++] = (struct cblk){NULL, HUGE_SIZE, 2};
    CHECK(nblocks <= MAXB);
    for (int i = nblocks - 1; i > 0; i--) {
        int j = (int)(th_rand(rng) % (uint64_t)(i + 1));
        struct cblk t = blocks[i];
        blocks[i] = blocks[j];
        blocks[j] = t;
    }
}

static void free_all(int order, uint64_t *rng)
{
    if (order == 2) {
        for (int i = nblocks - 1; i > 0; i--) {
            int j = (int)(th_rand(rng) % (uint64_t)(i + 1));
            struct cblk t = blocks[i];
            blocks[i] = blocks[j];
            blocks[j] = t;
        }
    }
    for (int k = 0; k < nblocks; k++) {
        int i = order == 1 ? nblocks - 1 - k : k;
        free(blocks[i].p);
        blocks[i].p = NULL;
    }
}

static int remote_order;
static uint64_t remote_rng;
static void *remote_free(void *arg)
{
    (void)arg;
    free_all(remote_order, &remote_rng);
    return NULL;
}

static void calloc_all(int round, uint64_t *rng)
{
    for (int i = 0; i < nblocks; i++) {
        struct cblk *b = &blocks[i];
        size_t n = b->n, nmemb = n, size = 1;
        switch (th_rand(rng) % 3) {
        case 1:
            nmemb = 1;
            size = n;
            break;
        case 2:
            if (n % 8 == 0) {
                nmemb = n / 8;
                size = 8;
            } else if (n % 3 == 0) {
                nmemb = 3;
                size = n / 3;
            }
            break;
        default:
            break;
        }
        b->p = (unsigned char *)calloc(nmemb, size);
        ST_CHECK(b->p != NULL, "calloc(%zu, %zu) returned NULL", nmemb, size);
        ST_VERIFY_ZERO(b->p, n, "round %d: calloc(%zu, %zu) (%s)", round, nmemb, size,
                       b->group == 0 ? "small" : b->group == 1 ? "medium" : "huge");
        zero_bytes[b->group] += n;
        calloc_calls[b->group]++;
    }
}

int main(int argc, char **argv)
{
    st_init("stress_calloc_reuse", argc, argv);
    double t0 = st_now();
    uint64_t rng = st_rng(0);

    errno = 0;
    void *over = calloc(th_size(SIZE_MAX / 2), 3);
    ST_CHECK(over == NULL && errno == ENOMEM, "calloc overflow: %p, errno %d", over, errno);

    /* Round 0's memory: malloc + 0xFF. */
    plan(&rng);
    for (int i = 0; i < nblocks; i++) {
        blocks[i].p = (unsigned char *)malloc(blocks[i].n);
        ST_CHECK(blocks[i].p != NULL, "malloc(%zu)", blocks[i].n);
        fill_ff(&blocks[i]);
    }
    static const char *const how[4] = {"nothing", "malloc_trim(0)", "120 ms pause",
                                       "shrinking reallocs"};
    int shrunk_total = 0;
    for (int round = 0; round < ROUNDS; round++) {
        int remote = round % 2;
        int between = (round / 2) % 4;
        int order = (int)(th_rand(&rng) % 3);
        int shrunk = 0;
        if (between == 3) {
            /* Medium blocks give their tail back dirty. */
            for (int i = 0; i < nblocks; i++) {
                if (blocks[i].group != 1)
                    continue;
                size_t m = blocks[i].n / 4 + 1;
                unsigned char *q = (unsigned char *)realloc(blocks[i].p, m);
                ST_CHECK(q != NULL, "realloc(%zu)", m);
                CHECK_ALL_BYTES(q, m, 0xFF);
                blocks[i].p = q;
                shrunk++;
            }
            /* calloc sizes that fit in the freed tails, while the heads stay live. */
            for (int i = 0; i < nblocks; i++) {
                if (blocks[i].group != 1)
                    continue;
                size_t m = blocks[i].n - blocks[i].n / 4 - 1;
                unsigned char *z = (unsigned char *)calloc(1, m);
                ST_CHECK(z != NULL, "calloc(1, %zu)", m);
                ST_VERIFY_ZERO(z, m, "round %d: calloc(1, %zu) after a shrinking realloc", round, m);
                memset(z, 0xFF, m);
                free(z);
            }
            shrunk_total += shrunk;
        }
        if (remote) {
            remote_order = order;
            remote_rng = th_rand(&rng) | 1;
            pthread_t t;
            CHECK(pthread_create(&t, NULL, remote_free, NULL) == 0);
            CHECK(pthread_join(t, NULL) == 0);
        } else {
            free_all(order, &rng);
        }
        if (between == 1)
            malloc_trim(0);
        else if (between == 2)
            usleep(120 * 1000);
        plan(&rng);
        calloc_all(round, &rng);
        for (int i = 0; i < nblocks; i++)
            fill_ff(&blocks[i]);
        printf("  round %d: freed by %s thread, %s order, then %s: %d callocs zero\n", round,
               remote ? "another" : "the same",
               order == 0 ? "allocation" : order == 1 ? "reverse" : "shuffled", how[between],
               nblocks);
    }
    free_all(0, &rng);
    st_check_heap();
    printf("stress_calloc_reuse: 1 thread (+1 for remote frees), %d rounds, %d shrinking "
           "reallocs; calloc'ed and checked zero: small %llu blocks %.1f MiB, medium %llu "
           "blocks %.1f MiB, huge %llu blocks %.1f MiB; %.2f s\n",
           ROUNDS, shrunk_total, (unsigned long long)calloc_calls[0], ST_MIB(zero_bytes[0]),
           (unsigned long long)calloc_calls[1], ST_MIB(zero_bytes[1]),
           (unsigned long long)calloc_calls[2], ST_MIB(zero_bytes[2]), st_now() - t0);
    printf("  bytes verified %.1f MiB\n", ST_MIB(st_verified_total()));
    printf("stress_calloc_reuse: ok\n");
    return 0;
}

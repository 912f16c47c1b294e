// mode: preload direct glibc
//
// Allocation around thread-specific data and thread/process teardown:
//   - a thread whose first allocation is glibc's own calloc inside
//     pthread_setspecific on a key numbered above 32 (40 keys exist);
//   - malloc/free/realloc inside pthread key destructors, including
//     destructors that set a new value (further destructor rounds);
//   - malloc and free from the destructor of a key created after the
//     allocator initialised, i.e. after the allocator's own per-thread
//     teardown has run; blocks made there are freed later by main;
//   - allocation in atexit handlers and ELF destructors.
#include "testhelper.h"

#include <pthread.h>

#define NKEYS 40
#define NTHREADS 6

static pthread_key_t keys[NKEYS];
static pthread_key_t rearm_key, late_key;
static int marker;

static int rearm_calls, late_calls;
static pthread_mutex_t leftovers_lock = PTHREAD_MUTEX_INITIALIZER;
static struct {
    unsigned char *p;
    size_t n;
    uint64_t seed;
} leftovers[NTHREADS * 4];
static int nleft;

/* --- first allocation through pthread_setspecific ------------------- */

static void *setspecific_first(void *arg)
{
    (void)arg;
    /* No allocation before this: glibc allocates the second-level key
     * array with calloc here. */
    CHECK(pthread_setspecific(keys[NKEYS - 1], &marker) == 0);
    CHECK(pthread_getspecific(keys[NKEYS - 1]) == &marker);
    unsigned char *p = (unsigned char *)malloc(1000);
    CHECK(p != NULL);
    th_fill(p, 0, 1000, 9);
    CHECK_PAT(p, 0, 1000, 9);
    free(p);
    CHECK(pthread_getspecific(keys[NKEYS - 1]) == &marker);
    return NULL;
}

/* --- destructors that allocate --------------------------------------- */

struct tsd_val {
    int round;
    size_t n;
    uint64_t seed;
    unsigned char data[];
};

static struct tsd_val *new_val(int round, size_t n, uint64_t seed)
{
    struct tsd_val *v = (struct tsd_val *)malloc(sizeof *v + n);
    CHECK(v != NULL);
    v->round = round;
    v->n = n;
    v->seed = seed;
    th_fill(v->data, 0, n, seed);
    return v;
}

static void rearm_destructor(void *arg)
{
    struct tsd_val *v = (struct tsd_val *)arg;
    CHECK_PAT(v->data, 0, v->n, v->seed);
    __atomic_add_fetch(&rearm_calls, 1, __ATOMIC_RELAXED);
    /* allocate and free inside the destructor */
    void *tmp = malloc(v->n * 3 + 1);
    CHECK(tmp != NULL);
    memset(tmp, 0x3c, v->n * 3 + 1);
    tmp = realloc(tmp, 50000);
    CHECK(tmp != NULL);
    free(tmp);
    void *z = calloc(32, 32);
    CHECK(z != NULL);
    CHECK_ALL_BYTES(z, 1024, 0);
    free(z);
    int round = v->round;
    uint64_t seed = v->seed;
    free(v);
    if (round < 2) /* ask for another destructor round */
        CHECK(pthread_setspecific(rearm_key, new_val(round + 1, 700, seed + 1)) == 0);
}

static void late_destructor(void *arg)
{
    struct tsd_val *v = (struct tsd_val *)arg;
    CHECK_PAT(v->data, 0, v->n, v->seed);
    __atomic_add_fetch(&late_calls, 1, __ATOMIC_RELAXED);
    /* free a block the thread allocated while it was fully alive */
    free(v);
    /* allocator churn after the allocator's per-thread teardown */
    for (int i = 0; i < 200; i++) {
        void *p = malloc((size_t)i * 13 + 1);
        CHECK(p != NULL);
        memset(p, i, (size_t)i * 13 + 1);
        free(p);
    }
    void *a = memalign(128, 4000);
    CHECK(a != NULL && th_aligned(a, 128));
    free(a);
    /* blocks that outlive the thread, freed by main */
    pthread_mutex_lock(&leftovers_lock);
    for (int k = 0; k < 4; k++) {
        size_t n = k == 3 ? 300000 : (size_t)(k + 1) * 100;
        uint64_t seed = (uint64_t)nleft + 500;
        unsigned char *p = (unsigned char *)malloc(n);
        CHECK(p != NULL);
        th_fill(p, 0, n, seed);
        leftovers[nleft].p = p;
        leftovers[nleft].n = n;
        leftovers[nleft].seed = seed;
        nleft++;
    }
    pthread_mutex_unlock(&leftovers_lock);
}

static void *worker(void *arg)
{
    int self = (int)(intptr_t)arg;
    /* fill the thread's caches */
    void *junk[300];
    for (int i = 0; i < 300; i++) {
        junk[i] = malloc((size_t)(i % 60) * 16 + 8);
        CHECK(junk[i] != NULL);
    }
    for (int i = 0; i < 300; i += 2)
        free(junk[i]);
    CHECK(pthread_setspecific(rearm_key, new_val(0, 100, (uint64_t)self * 10)) == 0);
    CHECK(pthread_setspecific(late_key, new_val(0, 5000, (uint64_t)self * 10 + 5)) == 0);
    for (int i = 1; i < 300; i += 2)
        free(junk[i]);
    return NULL;
}

/* --- process teardown ------------------------------------------------ */

static void at_exit_handler(void)
{
    unsigned char *p = (unsigned char *)malloc(4096);
    if (p == NULL)
        _exit(10);
    th_fill(p, 0, 4096, 3);
    if (th_find_bad(p, 0, 4096, 3) != SIZE_MAX)
        _exit(11);
    p = (unsigned char *)realloc(p, 1 << 20);
    if (p == NULL || th_find_bad(p, 0, 4096, 3) != SIZE_MAX)
        _exit(12);
    free(p);
}

__attribute__((destructor)) static void elf_destructor(void)
{
    void *p = calloc(10, 10);
    if (p == NULL || th_find_not(p, 100, 0) != SIZE_MAX)
        _exit(13);
    free(p);
}

int main(void)
{
    /* Make sure the allocator is initialised (and has created whatever
     * per-thread keys it needs) before the test's keys. */
    free(malloc(16));

    for (int i = 0; i < NKEYS; i++)
        CHECK(pthread_key_create(&keys[i], NULL) == 0);
    CHECKF(keys[NKEYS - 1] >= 32, "key %u is not in the second level", keys[NKEYS - 1]);

    for (int round = 0; round < 3; round++) {
        pthread_t t;
        CHECK(pthread_create(&t, NULL, setspecific_first, NULL) == 0);
        CHECK(pthread_join(t, NULL) == 0);
    }

    CHECK(pthread_key_create(&rearm_key, rearm_destructor) == 0);
    CHECK(pthread_key_create(&late_key, late_destructor) == 0);
    pthread_t t[NTHREADS];
    for (int i = 0; i < NTHREADS; i++)
        CHECK(pthread_create(&t[i], NULL, worker, (void *)(intptr_t)i) == 0);
    for (int i = 0; i < NTHREADS; i++)
        CHECK(pthread_join(t[i], NULL) == 0);

    CHECKF(rearm_calls == NTHREADS * 3, "rearm destructor ran %d times", rearm_calls);
    CHECKF(late_calls == NTHREADS, "late destructor ran %d times", late_calls);
    CHECK(nleft == NTHREADS * 4);
    for (int i = 0; i < nleft; i++) {
        CHECK_PAT(leftovers[i].p, 0, leftovers[i].n, leftovers[i].seed);
        CHECK_OWNED(leftovers[i].p);
        free(leftovers[i].p);
    }

    CHECK(atexit(at_exit_handler) == 0);
    printf("threads_tsd ok\n");
    return 0;
}

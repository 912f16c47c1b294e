// mode: preload direct glibc
//
// A brand-new thread's very first allocator call can be any entry point:
// free of a block from main, realloc, memalign, calloc, posix_memalign,
// malloc_usable_size, free(NULL), malloc_trim.  Run each alone and then all
// at once, several times.
#include "testhelper.h"

#include <pthread.h>

static unsigned char *shared_block;
static size_t shared_n;

static void *first_free(void *arg)
{
    (void)arg;
    free(shared_block);
    return NULL;
}

static void *first_realloc(void *arg)
{
    unsigned char *p = (unsigned char *)arg;
    unsigned char *q = (unsigned char *)realloc(p, 100000);
    CHECK(q != NULL);
    CHECK_PAT(q, 0, 300, 31);
    q = (unsigned char *)realloc(q, 10);
    CHECK(q != NULL);
    CHECK_PAT(q, 0, 10, 31);
    free(q);
    return NULL;
}

static void *first_realloc_null(void *arg)
{
    (void)arg;
    unsigned char *p = (unsigned char *)realloc(NULL, 123);
    CHECK(p != NULL && th_aligned(p, 16));
    th_fill(p, 0, 123, 1);
    CHECK_PAT(p, 0, 123, 1);
    free(p);
    return NULL;
}

static void *first_memalign(void *arg)
{
    (void)arg;
    void *p = memalign(64, 100);
    CHECK(p != NULL && th_aligned(p, 64));
    memset(p, 0x42, 100);
    CHECK_OWNED(p);
    free(p);
    return NULL;
}

static void *first_calloc(void *arg)
{
    (void)arg;
    unsigned char *p = (unsigned char *)calloc(100, 10);
    CHECK(p != NULL);
    CHECK_ALL_BYTES(p, 1000, 0);
    free(p);
    return NULL;
}

static void *first_posix_memalign(void *arg)
{
    (void)arg;
    void *p = NULL;
    CHECK(posix_memalign(&p, 256, 5000) == 0);
    CHECK(p != NULL && th_aligned(p, 256));
    free(p);
    return NULL;
}

static void *first_usable_size(void *arg)
{
    unsigned char *p = (unsigned char *)arg;
    CHECK(malloc_usable_size(p) >= 77);
    CHECK_PAT(p, 0, 77, 77);
    free(p);
    return NULL;
}

static void *first_free_null(void *arg)
{
    (void)arg;
    free(NULL);
    void *p = malloc(10);
    CHECK(p != NULL);
    free(p);
    return NULL;
}

static void *first_trim(void *arg)
{
    (void)arg;
    int t = malloc_trim(0);
    CHECK(t == 0 || t == 1);
    void *p = malloc(5000);
    CHECK(p != NULL);
    free(p);
    return NULL;
}

static void *first_large(void *arg)
{
    (void)arg;
    unsigned char *p = (unsigned char *)malloc(5 * TH_MIB);
    CHECK(p != NULL);
    th_fill(p, 0, 4096, 5);
    CHECK_PAT(p, 0, 4096, 5);
    free(p);
    return NULL;
}

typedef void *(*thread_fn)(void *);

static void *make_arg(int which)
{
    if (which == 1) {
        unsigned char *p = (unsigned char *)malloc(300);
        CHECK(p != NULL);
        th_fill(p, 0, 300, 31);
        return p;
    }
    if (which == 6) {
        unsigned char *p = (unsigned char *)malloc(77);
        CHECK(p != NULL);
        th_fill(p, 0, 77, 77);
        return p;
    }
    return NULL;
}

int main(void)
{
    static const thread_fn fns[] = {first_free, first_realloc, first_realloc_null,
                                    first_memalign, first_calloc, first_posix_memalign,
                                    first_usable_size, first_free_null, first_trim, first_large};
    const int nf = (int)(sizeof fns / sizeof fns[0]);

    for (int round = 0; round < 5; round++) {
        /* one at a time */
        for (int i = 0; i < nf; i++) {
            shared_n = 1000 + (size_t)round;
            shared_block = (unsigned char *)malloc(shared_n);
            CHECK(shared_block != NULL);
            pthread_t t;
            CHECK(pthread_create(&t, NULL, fns[i], make_arg(i)) == 0);
            CHECK(pthread_join(t, NULL) == 0);
            if (i != 0)
                free(shared_block);
        }
        /* all at once (first_free gets its own block) */
        shared_block = (unsigned char *)malloc(2000);
        CHECK(shared_block != NULL);
        pthread_t ts[16];
        for (int i = 0; i < nf; i++)
            CHECK(pthread_create(&ts[i], NULL, fns[i], make_arg(i)) == 0);
        for (int i = 0; i < nf; i++)
            CHECK(pthread_join(ts[i], NULL) == 0);
    }
    printf("thread_first_op ok\n");
    return 0;
}

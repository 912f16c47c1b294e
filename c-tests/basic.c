// mode: preload direct glibc
//
// Edge cases of malloc/realloc/calloc/free with glibc semantics:
// malloc(0) gives unique freeable pointers, realloc(NULL, n) is malloc,
// realloc(p, 0) frees and returns NULL, realloc(NULL, 0) is non-NULL,
// free(NULL) does nothing.
#include "testhelper.h"

#define N_ZERO 1000

static int cmp_ptr(const void *a, const void *b)
{
    uintptr_t x = (uintptr_t) * (void *const *)a, y = (uintptr_t) * (void *const *)b;
    return x < y ? -1 : x > y;
}

int main(void)
{
    /* malloc(0): unique, non-NULL, aligned, freeable. */
    static void *zero[N_ZERO];
    for (int i = 0; i < N_ZERO; i++) {
        zero[i] = malloc(th_size(0));
        CHECKF(zero[i] != NULL, "malloc(0) #%d", i);
        CHECK(th_aligned(zero[i], 16));
        CHECK_OWNED(zero[i]);
    }
    qsort(zero, N_ZERO, sizeof zero[0], cmp_ptr);
    for (int i = 1; i < N_ZERO; i++)
        CHECKF(zero[i] != zero[i - 1], "malloc(0) returned %p twice", zero[i]);
    for (int i = 0; i < N_ZERO; i++)
        free(zero[i]);

    /* calloc with a zero count or size behaves like malloc(0). */
    void *c0 = calloc(th_size(0), 16), *c1 = calloc(16, th_size(0)), *c2 = calloc(0, 0);
    CHECK(c0 != NULL && c1 != NULL && c2 != NULL);
    CHECK(c0 != c1 && c1 != c2 && c0 != c2);
    free(c0);
    free(c1);
    free(c2);

    /* realloc(NULL, n) == malloc(n). */
    size_t sizes[] = {1, 16, 100, 5000, 70000, 300000, 5 * TH_MIB};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        size_t n = sizes[i];
        char *p = (char *)realloc(NULL, th_size(n));
        CHECKF(p != NULL, "realloc(NULL, %zu)", n);
        CHECK(th_aligned(p, 16));
        CHECK(malloc_usable_size(p) >= n);
        CHECK_OWNED(p);
        th_fill(p, 0, n, n);
        CHECK_PAT(p, 0, n, n);
        free(p);
    }

    /* realloc(p, 0) frees p and returns NULL. */
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        void *p = malloc(sizes[i]);
        CHECK(p != NULL);
        void *r = realloc(p, th_size(0));
        CHECKF(r == NULL, "realloc(p, 0) for a %zu-byte block returned %p", sizes[i], r);
        CHECK_NOT_OWNED(p);
    }

    /* realloc(NULL, 0) returns a freeable non-NULL pointer. */
    void *rz = realloc(NULL, th_size(0));
    CHECK(rz != NULL);
    CHECK(th_aligned(rz, 16));
    CHECK_OWNED(rz);
    void *rz2 = realloc(rz, 10); /* and it can be grown */
    CHECK(rz2 != NULL);
    memset(rz2, 1, 10);
    free(rz2);

    /* free(NULL) is a no-op and keeps errno. */
    errno = 4242;
    free(NULL);
    CHECK(errno == 4242);

    /* malloc(1) .. malloc(64): writable, distinct, survive each other. */
    void *small[64];
    for (int i = 0; i < 64; i++) {
        small[i] = malloc((size_t)i + 1);
        CHECK(small[i] != NULL);
        th_fill(small[i], 0, (size_t)i + 1, (uint64_t)i + 1000);
    }
    for (int i = 0; i < 64; i++) {
        CHECK_PAT(small[i], 0, (size_t)i + 1, (uint64_t)i + 1000);
        free(small[i]);
    }

    /* realloc to the same size keeps the contents. */
    char *same = (char *)malloc(777);
    th_fill(same, 0, 777, 7);
    same = (char *)realloc(same, th_size(777));
    CHECK(same != NULL);
    CHECK_PAT(same, 0, 777, 7);
    free(same);

    /* cfree is an alias of free when the library provides it. */
    void (*cfree_fn)(void *);
    *(void **)&cfree_fn = th_sym("cfree", 1);
    if (cfree_fn != NULL) {
        void *p = malloc(123);
        CHECK(p != NULL);
        cfree_fn(p);
        CHECK_NOT_OWNED(p);
        cfree_fn(NULL);
    }

    printf("basic ok\n");
    return 0;
}

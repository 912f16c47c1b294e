// mode: preload direct glibc
//
// The __libc_* and __posix_memalign aliases behave like the standard entry
// points and mix freely with them.  Under xalloc they must all exist; on
// plain glibc only the ones glibc still exports are exercised.
#include "testhelper.h"

typedef void *(*malloc_fn)(size_t);
typedef void (*free_fn)(void *);
typedef void *(*calloc_fn)(size_t, size_t);
typedef void *(*realloc_fn)(void *, size_t);
typedef void *(*memalign_fn)(size_t, size_t);
typedef int (*posix_memalign_fn)(void **, size_t, size_t);

#define LOOKUP(type, name) ((type)(uintptr_t)th_sym(name, 1))

int main(void)
{
    malloc_fn l_malloc = LOOKUP(malloc_fn, "__libc_malloc");
    free_fn l_free = LOOKUP(free_fn, "__libc_free");
    calloc_fn l_calloc = LOOKUP(calloc_fn, "__libc_calloc");
    realloc_fn l_realloc = LOOKUP(realloc_fn, "__libc_realloc");
    memalign_fn l_memalign = LOOKUP(memalign_fn, "__libc_memalign");
    malloc_fn l_valloc = LOOKUP(malloc_fn, "__libc_valloc");
    malloc_fn l_pvalloc = LOOKUP(malloc_fn, "__libc_pvalloc");
    posix_memalign_fn l_posix_memalign = LOOKUP(posix_memalign_fn, "__posix_memalign");
    size_t page = th_page_size();
    int used = 0;

    if (l_malloc != NULL) {
        used++;
        char *p = (char *)l_malloc(200);
        CHECK(p != NULL && th_aligned(p, 16));
        CHECK_OWNED(p);
        th_fill(p, 0, 200, 1);
        p = (char *)realloc(p, 5000); /* mixes with the standard names */
        CHECK(p != NULL);
        CHECK_PAT(p, 0, 200, 1);
        free(p);
    }
    if (l_free != NULL) {
        used++;
        void *p = malloc(300);
        l_free(p);
        CHECK_NOT_OWNED(p);
        l_free(NULL);
        void *q = malloc(4 * TH_MIB);
        l_free(q);
        CHECK_NOT_OWNED(q);
    }
    if (l_calloc != NULL) {
        used++;
        char *p = (char *)l_calloc(100, 33);
        CHECK(p != NULL);
        CHECK_ALL_BYTES(p, 3300, 0);
        CHECK_OWNED(p);
        errno = 0;
        CHECK(l_calloc(SIZE_MAX / 2, th_size(3)) == NULL);
        CHECK(errno == ENOMEM);
        free(p);
    }
    if (l_realloc != NULL) {
        used++;
        char *p = (char *)malloc(64);
        th_fill(p, 0, 64, 2);
        p = (char *)l_realloc(p, 100000);
        CHECK(p != NULL);
        CHECK_PAT(p, 0, 64, 2);
        CHECK_OWNED(p);
        CHECK(l_realloc(p, 0) == NULL);
        void *q = l_realloc(NULL, 10);
        CHECK(q != NULL);
        free(q);
    }
    if (l_memalign != NULL) {
        used++;
        for (size_t a = 16; a <= 65536; a *= 4) {
            void *p = l_memalign(a, 100);
            CHECK(p != NULL && th_aligned(p, a));
            CHECK_OWNED(p);
            free(p);
        }
    }
    if (l_valloc != NULL) {
        used++;
        void *p = l_valloc(10);
        CHECK(p != NULL && th_aligned(p, page));
        CHECK_OWNED(p);
        free(p);
    }
    if (l_pvalloc != NULL) {
        used++;
        void *p = l_pvalloc(10);
        CHECK(p != NULL && th_aligned(p, page));
        CHECK(malloc_usable_size(p) >= page);
        memset(p, 0x5a, page);
        free(p);
    }
    if (l_posix_memalign != NULL) {
        used++;
        void *p = (void *)0x1234;
        CHECK(l_posix_memalign(&p, 128, 1000) == 0);
        CHECK(p != NULL && th_aligned(p, 128));
        CHECK_OWNED(p);
        free(p);
        void *q = (void *)0x1234;
        CHECK(l_posix_memalign(&q, 24, 1000) == EINVAL);
        CHECK(q == (void *)0x1234);
    }
    if (th_expect_xalloc())
        CHECK(used == 8);
    printf("aliases ok (%d of 8 present)\n", used);
    return 0;
}

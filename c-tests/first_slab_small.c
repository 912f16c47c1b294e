// mode: preload direct
// stdout: first_slab_small: ok
//
// A thread that takes over the heap of a thread that exited makes its first slab of a class
// up to 2 KiB smaller (4 pages) than a full one; the first thread of a heap makes full
// slabs. A first thread allocates and frees one block of a class nobody else uses and exits
// (its heap, left with no slab, is free for the next thread); a second thread does the same,
// and each reads the class's slabs while its block is live.
#include "testhelper.h"
#include "xalloc.h"

#include <pthread.h>

#define SIZE 1700 /* a class (1792 B) the rest of the program does not use */

/* looked up at run time: the preload build does not link the library */
static int (*class_stats)(size_t, xa_class_stats_t *);

static size_t class_index(void)
{
    for (size_t i = 0; i < XA_NUM_CLASSES; i++) {
        xa_class_stats_t c;
        CHECK(class_stats(i, &c) == 0);
        if (c.size >= SIZE)
            return i;
    }
    CHECK(0);
    return 0;
}

static void *one_block(void *arg)
{
    size_t *pages = arg;
    void *p = malloc(SIZE);
    CHECK(p != NULL);
    memset(p, 0x5c, SIZE);
    xa_class_stats_t c;
    CHECK(class_stats(class_index(), &c) == 0);
    CHECK(c.slabs == 1);
    *pages = c.pages;
    free(p);
    return NULL;
}

int main(void)
{
    void *sym = th_sym("xa_class_stats", 1);
    memcpy(&class_stats, &sym, sizeof class_stats);
    size_t first = 0, second = 0;
    pthread_t t;
    CHECK(pthread_create(&t, NULL, one_block, &first) == 0);
    CHECK(pthread_join(t, NULL) == 0);
    CHECK(pthread_create(&t, NULL, one_block, &second) == 0);
    CHECK(pthread_join(t, NULL) == 0);
    printf("first thread: %zu pages, second: %zu\n", first, second);
    CHECKF(second == 4, "the second thread's first slab has %zu pages", second);
    CHECKF(first > second, "the first thread's slab has %zu pages", first);
    printf("first_slab_small: ok\n");
    return 0;
}

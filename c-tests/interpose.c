// mode: preload direct
//
// The library must replace the whole malloc family: every exported name
// resolves into libxalloc, blocks from every entry point (and from the C
// library's own internal allocations) are xalloc blocks, and xa_owns
// answers 1 only for live block starts.
#include "testhelper.h"

#include <pthread.h>
#include <sys/mman.h>

static const char *const exported[] = {
    "malloc", "free", "calloc", "realloc", "reallocarray", "posix_memalign",
    "aligned_alloc", "memalign", "valloc", "pvalloc", "malloc_usable_size",
    "cfree", "__libc_malloc", "__libc_free", "__libc_calloc", "__libc_realloc",
    "__libc_memalign", "__libc_valloc", "__libc_pvalloc", "__posix_memalign",
    "malloc_trim", "mallopt", "mallinfo", "mallinfo2", "malloc_stats", "malloc_info",
    "xa_malloc", "xa_free", "xa_usable_size", "xa_trim", "xa_owns",
};

static int global_object[16];

static void *free_arg(void *p)
{
    free(p);
    return NULL;
}

static void *malloc_one(void *arg)
{
    return malloc((size_t)(uintptr_t)arg);
}

int main(void)
{
    int failures = 0;
    for (size_t i = 0; i < sizeof exported / sizeof exported[0]; i++) {
        if (!th_sym_in_xalloc(exported[i])) {
            const char *o = th_sym_origin(exported[i]);
            fprintf(stderr, "symbol %s resolves to %s, not to the xalloc library\n",
                    exported[i], o ? o : "(nothing)");
            failures++;
        }
    }
    CHECKF(failures == 0, "%d symbols not provided by xalloc", failures);

    void *(*xa_malloc)(size_t);
    void (*xa_free)(void *);
    size_t (*xa_usable_size)(const void *);
    int (*xa_trim)(void);
    *(void **)&xa_malloc = th_sym("xa_malloc", 1);
    *(void **)&xa_free = th_sym("xa_free", 1);
    *(void **)&xa_usable_size = th_sym("xa_usable_size", 1);
    *(void **)&xa_trim = th_sym("xa_trim", 1);

    /* Blocks from every entry point are live xalloc blocks. */
    void *blocks[16];
    int nb = 0;
    blocks[nb++] = malloc(16);
    blocks[nb++] = malloc(0);
    blocks[nb++] = calloc(10, 10);
    blocks[nb++] = realloc(NULL, 100);
    blocks[nb++] = reallocarray(NULL, 10, 30);
    blocks[nb++] = memalign(256, 1000);
    blocks[nb++] = aligned_alloc(4096, 4096);
    blocks[nb++] = valloc(10);
    blocks[nb++] = pvalloc(10);
    void *pm = NULL;
    CHECK(posix_memalign(&pm, 64, 300) == 0);
    blocks[nb++] = pm;
    blocks[nb++] = xa_malloc(48);
    blocks[nb++] = malloc(3 * TH_MIB);   /* large */
    blocks[nb++] = malloc(80 * TH_MIB);  /* huge */
    blocks[nb++] = strdup("from the C library");
    for (int i = 0; i < nb; i++) {
        CHECKF(blocks[i] != NULL, "block %d", i);
        CHECK_OWNED(blocks[i]);
        CHECKF(xa_usable_size(blocks[i]) == malloc_usable_size(blocks[i]), "block %d", i);
    }

    /* Interior pointers, stack, globals, foreign mmap and NULL are not blocks. */
    char *small = (char *)malloc(64);
    CHECK_OWNED(small);
    CHECK_NOT_OWNED(small + 16);
    CHECK_NOT_OWNED(small + 1);
    char *big = (char *)malloc(2 * TH_MIB);
    CHECK_NOT_OWNED(big + 4096);
    int on_stack[4] = {0};
    CHECK_NOT_OWNED(th_launder(on_stack));
    CHECK_NOT_OWNED(global_object);
    CHECK_NOT_OWNED(NULL);
    void *m = mmap(NULL, 65536, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK(m != MAP_FAILED);
    CHECK_NOT_OWNED(m);
    munmap(m, 65536);

    /* Freed blocks are no longer live. */
    free(small);
    CHECK_NOT_OWNED(small);
    free(big);
    CHECK_NOT_OWNED(big);
    void *huge = malloc(70 * TH_MIB);
    CHECK_OWNED(huge);
    free(huge);
    CHECK_NOT_OWNED(huge);

    /* xa_* and the standard entry points interoperate. */
    void *a = xa_malloc(1000);
    CHECK_OWNED(a);
    free(a);
    void *b = malloc(1000);
    xa_free(b);
    CHECK_NOT_OWNED(b);
    xa_free(NULL);

    /* The C library's internal allocations come from xalloc too. */
    char *s = NULL;
    CHECK(asprintf(&s, "%s-%d", "number", 42) > 0);
    CHECK_OWNED(s);
    free(s);
    char *buf = NULL;
    size_t len = 0;
    FILE *ms = open_memstream(&buf, &len);
    CHECK(ms != NULL);
    fprintf(ms, "hello %d", 7);
    fclose(ms);
    CHECK(strcmp(buf, "hello 7") == 0);
    CHECK_OWNED(buf);
    free(buf);

    for (int i = 0; i < nb; i++)
        free(blocks[i]);
    for (int i = 0; i < nb; i++)
        CHECK_NOT_OWNED(blocks[i]);

    (void)xa_trim();
    void *after = malloc(100);
    CHECK_OWNED(after);
    free(after);
    /* A block freed by another thread than the one that made it is no
     * longer live either (see the exception for small blocks below). */
    static const size_t cross_sizes[] = {16, 64, 1000, 4096, 40000, 300000, 3 * TH_MIB, 70 * TH_MIB};
    for (size_t i = 0; i < sizeof cross_sizes / sizeof cross_sizes[0]; i++) {
        pthread_t t;
        void *p = malloc(cross_sizes[i]);
        CHECK_OWNED(p);
        CHECK(pthread_create(&t, NULL, free_arg, p) == 0);
        CHECK(pthread_join(t, NULL) == 0);
        CHECKF(th_owns(p) != 1, "malloc(%zu) in main, freed by a thread: xa_owns still 1",
               cross_sizes[i]);
        void *q = NULL;
        CHECK(pthread_create(&t, NULL, malloc_one, (void *)(uintptr_t)cross_sizes[i]) == 0);
        CHECK(pthread_join(t, &q) == 0);
        CHECK_OWNED(q);
        free(q);
        /* A small block freed by a thread other than its (here exited) owner stays counted
         * as live until an owner collects it; page runs and huge blocks are exact. */
        if (cross_sizes[i] > 32768)
            CHECKF(th_owns(q) != 1, "malloc(%zu) in a thread, freed by main: xa_owns still 1",
                   cross_sizes[i]);
    }

    printf("interpose ok\n");
    return 0;
}

// mode: preload direct glibc
//
// free() never changes errno, whatever the block size and however the
// block was obtained (including frees that return memory to the system),
// and free(NULL) is a no-op.
#include "testhelper.h"

#define SENTINEL 12345

static void free_checked(void *p, const char *what, size_t n)
{
    errno = SENTINEL;
    free(p);
    CHECKF(errno == SENTINEL, "free of %s(%zu) changed errno to %d (%s)", what, n, errno,
           strerror(errno));
}

int main(void)
{
    static const size_t sizes[] = {0,      1,      16,         100,        1000,
                                   4096,   65536,  100000,     256 * 1024, TH_MIB,
                                   TH_MIB + 1, 4 * TH_MIB, 17 * TH_MIB, 64 * TH_MIB};
    const size_t nsizes = sizeof sizes / sizeof sizes[0];

    for (int round = 0; round < 3; round++) {
        for (size_t i = 0; i < nsizes; i++) {
            size_t n = sizes[i];
            char *p = (char *)malloc(n);
            CHECK(p != NULL);
            if (n > 0) {
                p[0] = 1;
                p[n - 1] = 2;
            }
            free_checked(p, "malloc", n);
            free_checked(calloc(1, n), "calloc", n);
            free_checked(memalign(4096, n), "memalign", n);
            free_checked(valloc(n), "valloc", n);
            void *r = realloc(malloc(16), n + 1);
            CHECK(r != NULL);
            free_checked(r, "realloc", n + 1);
        }
    }

    /* Many blocks of one size freed in a row: lets the allocator release
     * whole spans/slabs back to the system in the middle of a free. */
    static void *many[20000];
    static const size_t batch_sizes[] = {24, 512, 8192, 40000, 300000};
    for (size_t s = 0; s < sizeof batch_sizes / sizeof batch_sizes[0]; s++) {
        size_t n = batch_sizes[s];
        size_t count = n >= 300000 ? 200 : n >= 40000 ? 1000 : n >= 8192 ? 4000 : 20000;
        for (size_t i = 0; i < count; i++) {
            many[i] = malloc(n);
            CHECK(many[i] != NULL);
            ((char *)many[i])[0] = (char)i;
        }
        for (size_t i = 0; i < count; i++)
            free_checked(many[i], "malloc (batch)", n);
    }

    for (int i = 0; i < 10; i++) {
        errno = SENTINEL;
        free(NULL);
        CHECK(errno == SENTINEL);
    }
    /* errno value 0 is preserved too. */
    void *p = malloc(64 * TH_MIB);
    CHECK(p != NULL);
    errno = 0;
    free(p);
    CHECK(errno == 0);

    printf("free_errno ok\n");
    return 0;
}

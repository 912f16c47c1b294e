// mode: preload direct glibc
//
// For posix_memalign, invalid alignments (0, not a power of two, not a multiple
// of sizeof(void *)) return EINVAL and leave *memptr untouched; valid ones
// give aligned, writable, freeable blocks; ENOMEM leaves *memptr untouched.
#include "testhelper.h"

#define SENTINEL ((void *)0xdeadbee0)

int main(void)
{
    static const size_t bad[] = {0, 1, 2, 3, 4, 5, 6, 12, 24, 40, 48, 96, 100, 4095,
                                 4097, 4096 + 8, (1u << 20) + 8, 3u << 20, SIZE_MAX,
                                 SIZE_MAX / 2, (size_t)PTRDIFF_MAX};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        void *out = SENTINEL;
        errno = 0;
        int rc = posix_memalign(&out, th_size(bad[i]), 64);
        CHECKF(rc == EINVAL, "posix_memalign(align=%zu) returned %d, expected EINVAL", bad[i], rc);
        CHECKF(out == SENTINEL, "posix_memalign(align=%zu) changed *memptr to %p", bad[i], out);
    }

    /* Valid alignments: powers of two that are multiples of sizeof(void *). */
    for (size_t a = sizeof(void *); a <= ((size_t)1 << 24); a *= 2) {
        size_t sizes[] = {0, 1, a - 1, a, a + 1, 3 * a + 5, 100};
        void *blocks[7];
        for (int k = 0; k < 7; k++) {
            size_t n = sizes[k];
            if (a >= (1u << 22) && n > a + 1)
                n = 100; /* keep the largest cases small in memory */
            void *out = SENTINEL;
            int rc = posix_memalign(&out, th_size(a), th_size(n));
            CHECKF(rc == 0, "posix_memalign(align=%zu, size=%zu) returned %d", a, n, rc);
            CHECKF(out != NULL && out != SENTINEL, "posix_memalign(%zu, %zu) gave %p", a, n, out);
            CHECKF(th_aligned(out, a), "posix_memalign(%zu, %zu) gave %p", a, n, out);
            CHECKF(th_aligned(out, 16), "posix_memalign(%zu, %zu) gave %p", a, n, out);
            CHECK(malloc_usable_size(out) >= n);
            CHECK_OWNED(out);
            th_fill(out, 0, n, a + (size_t)k);
            blocks[k] = out;
            sizes[k] = n;
        }
        for (int k = 0; k < 7; k++) {
            CHECK_PAT(blocks[k], 0, sizes[k], a + (size_t)k);
            free(blocks[k]);
        }
    }

    /* Many live small aligned blocks at once. */
    static void *many[4000];
    for (int i = 0; i < 4000; i++) {
        size_t a = (size_t)32 << (i % 6);
        CHECK(posix_memalign(&many[i], a, (size_t)(i % 300) + 1) == 0);
        CHECK(th_aligned(many[i], a));
        th_fill(many[i], 0, (size_t)(i % 300) + 1, (uint64_t)i);
    }
    for (int i = 0; i < 4000; i++) {
        CHECK_PAT(many[i], 0, (size_t)(i % 300) + 1, (uint64_t)i);
        free(many[i]);
    }

    /* ENOMEM leaves *memptr untouched. */
    static const size_t huge[] = {SIZE_MAX, SIZE_MAX - 64, (size_t)PTRDIFF_MAX + 1, (size_t)1 << 48};
    for (size_t i = 0; i < sizeof huge / sizeof huge[0]; i++) {
        void *out = SENTINEL;
        int rc = posix_memalign(&out, 64, th_size(huge[i]));
        CHECKF(rc == ENOMEM, "posix_memalign(64, %zu) returned %d", huge[i], rc);
        CHECK(out == SENTINEL);
    }

    printf("posix_memalign ok\n");
    return 0;
}

// mode: preload direct glibc
//
// posix_memalign and errno, as glibc 2.36 has them: a request that cannot be
// met (an impossible size, or an alignment no address space can give)
// returns ENOMEM and also sets errno to ENOMEM; a bad alignment returns
// EINVAL and leaves errno as it was; success leaves errno as it was.
// *memptr is written only on success.
#include "testhelper.h"

#define SENTINEL_PTR ((void *)0xdeadbee0)
#define SENTINEL_ERRNO 12345

int main(void)
{
    static const size_t aligns[] = {sizeof(void *), 16, 32, 64, 4096, (size_t)1 << 20,
                                    (size_t)1 << 26};
    static const size_t sizes[] = {SIZE_MAX, SIZE_MAX - 64, (size_t)PTRDIFF_MAX + 1,
                                   (size_t)PTRDIFF_MAX, (size_t)1 << 48};
    for (size_t a = 0; a < sizeof aligns / sizeof aligns[0]; a++) {
        for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
            void *out = SENTINEL_PTR;
            errno = SENTINEL_ERRNO;
            int rc = posix_memalign(&out, th_size(aligns[a]), th_size(sizes[s]));
            int err = errno;
            CHECKF(rc == ENOMEM, "posix_memalign(%zu, %zu) returned %d, expected ENOMEM",
                   aligns[a], sizes[s], rc);
            CHECKF(err == ENOMEM, "posix_memalign(%zu, %zu) left errno %d (%s), expected ENOMEM",
                   aligns[a], sizes[s], err, strerror(err));
            CHECKF(out == SENTINEL_PTR, "posix_memalign(%zu, %zu) changed *memptr to %p",
                   aligns[a], sizes[s], out);
        }
    }

    /* An alignment larger than any free address range, with a small size. */
    for (int shift = 48; shift <= 63; shift++) {
        void *out = SENTINEL_PTR;
        errno = SENTINEL_ERRNO;
        int rc = posix_memalign(&out, th_size((size_t)1 << shift), th_size(64));
        int err = errno;
        CHECKF(rc == ENOMEM, "posix_memalign(1 << %d, 64) returned %d", shift, rc);
        CHECKF(err == ENOMEM, "posix_memalign(1 << %d, 64) left errno %d", shift, err);
        CHECK(out == SENTINEL_PTR);
    }

    /* EINVAL does not touch errno. */
    static const size_t bad[] = {0, 1, 4, 12, 24, 4097, SIZE_MAX, SIZE_MAX / 2};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        void *out = SENTINEL_PTR;
        errno = SENTINEL_ERRNO;
        int rc = posix_memalign(&out, th_size(bad[i]), th_size(SIZE_MAX));
        CHECKF(rc == EINVAL, "posix_memalign(%zu, SIZE_MAX) returned %d, expected EINVAL", bad[i],
               rc);
        CHECKF(errno == SENTINEL_ERRNO, "posix_memalign(%zu, SIZE_MAX) set errno to %d", bad[i],
               errno);
        CHECK(out == SENTINEL_PTR);
    }

    /* Success does not touch errno, also right after a failure. */
    for (size_t a = 0; a < sizeof aligns / sizeof aligns[0]; a++) {
        void *out = SENTINEL_PTR;
        errno = SENTINEL_ERRNO;
        int rc = posix_memalign(&out, th_size(aligns[a]), th_size(100));
        CHECKF(rc == 0, "posix_memalign(%zu, 100) returned %d", aligns[a], rc);
        CHECKF(errno == SENTINEL_ERRNO, "posix_memalign(%zu, 100) set errno to %d", aligns[a],
               errno);
        CHECK(out != SENTINEL_PTR && th_aligned(out, aligns[a]));
        memset(out, 0x5a, 100);
        free(out);
    }

    printf("posix_memalign_errno ok\n");
    return 0;
}

// mode: preload direct glibc
// stdout: <malloc
//
// The glibc introspection/tuning API answers from the allocator's state:
// malloc_trim returns 0 or 1 and keeps live data intact; mallopt returns
// 0 or 1 and does not crash; mallinfo2/mallinfo report real numbers that
// follow allocations; malloc_stats prints to stderr; malloc_info prints
// XML starting with "<malloc".
#include "testhelper.h"

#include <sys/mman.h>

#define NBLK 1000
#define BLK 10486 /* NBLK * BLK >= 10 MiB */

static void *blocks[NBLK];

static size_t capture_fd_output(int fd, void (*fn)(void), char *buf, size_t cap)
{
    int mfd = memfd_create("capture", 0);
    CHECK(mfd >= 0);
    int saved = dup(fd);
    CHECK(saved >= 0);
    fflush(NULL);
    CHECK(dup2(mfd, fd) == fd);
    fn();
    fflush(NULL);
    CHECK(dup2(saved, fd) == fd);
    close(saved);
    off_t len = lseek(mfd, 0, SEEK_CUR);
    CHECK(len >= 0);
    CHECK(lseek(mfd, 0, SEEK_SET) == 0);
    ssize_t got = read(mfd, buf, cap - 1);
    CHECK(got >= 0);
    buf[got] = '\0';
    close(mfd);
    return (size_t)len;
}

static void call_malloc_stats(void) { malloc_stats(); }

int main(void)
{
    /* mallopt: known parameters with their usual default values, and an
     * unknown parameter.  Only 0 or 1 are valid answers. */
    static const int params[][2] = {
        {M_MMAP_THRESHOLD, 128 * 1024}, {M_TRIM_THRESHOLD, 128 * 1024}, {M_TOP_PAD, 128 * 1024},
        {M_MMAP_MAX, 65536}, {M_ARENA_MAX, 8}, {M_ARENA_TEST, 8}, {M_MXFAST, 128},
        {12345, 1}, {-77, 0},
    };
    for (size_t i = 0; i < sizeof params / sizeof params[0]; i++) {
        int r = mallopt(params[i][0], params[i][1]);
        CHECKF(r == 0 || r == 1, "mallopt(%d, %d) returned %d", params[i][0], params[i][1], r);
    }

    /* mallinfo2 follows 10 MiB of live blocks. */
    struct mallinfo2 before = mallinfo2();
    for (int i = 0; i < NBLK; i++) {
        blocks[i] = malloc(BLK);
        CHECK(blocks[i] != NULL);
        th_fill(blocks[i], 0, BLK, (uint64_t)i);
    }
    struct mallinfo2 during = mallinfo2();
    printf("mallinfo2 before: arena=%zu uordblks=%zu fordblks=%zu hblkhd=%zu\n",
           before.arena, before.uordblks, before.fordblks, before.hblkhd);
    printf("mallinfo2 during: arena=%zu uordblks=%zu fordblks=%zu hblkhd=%zu\n",
           during.arena, during.uordblks, during.fordblks, during.hblkhd);
    CHECKF(during.uordblks >= 10 * TH_MIB, "uordblks = %zu with 10 MiB live", during.uordblks);
    CHECKF(during.uordblks > before.uordblks, "uordblks %zu -> %zu", before.uordblks,
           during.uordblks);

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
    struct mallinfo old = mallinfo();
#pragma GCC diagnostic pop
    CHECKF((size_t)(unsigned)old.uordblks >= 10 * TH_MIB, "mallinfo().uordblks = %d", old.uordblks);

    /* malloc_trim with live blocks keeps their contents. */
    int t = malloc_trim(0);
    CHECKF(t == 0 || t == 1, "malloc_trim(0) returned %d", t);
    t = malloc_trim(TH_MIB);
    CHECKF(t == 0 || t == 1, "malloc_trim(1 MiB) returned %d", t);
    for (int i = 0; i < NBLK; i++)
        CHECK_PAT(blocks[i], 0, BLK, (uint64_t)i);

    for (int i = 0; i < NBLK; i++)
        free(blocks[i]);
    struct mallinfo2 after = mallinfo2();
    printf("mallinfo2 after:  arena=%zu uordblks=%zu fordblks=%zu hblkhd=%zu\n",
           after.arena, after.uordblks, after.fordblks, after.hblkhd);
    CHECKF(after.uordblks < during.uordblks, "uordblks %zu -> %zu after freeing 10 MiB",
           during.uordblks, after.uordblks);
    CHECKF(during.uordblks - after.uordblks >= 5 * TH_MIB,
           "freeing 10 MiB only lowered uordblks from %zu to %zu", during.uordblks,
           after.uordblks);

    t = malloc_trim(0);
    CHECKF(t == 0 || t == 1, "malloc_trim(0) returned %d", t);
    /* Still working after the trim. */
    for (int i = 0; i < NBLK; i++) {
        blocks[i] = malloc((size_t)i * 37 + 1);
        CHECK(blocks[i] != NULL);
        th_fill(blocks[i], 0, (size_t)i * 37 + 1, (uint64_t)i);
    }
    for (int i = 0; i < NBLK; i++) {
        CHECK_PAT(blocks[i], 0, (size_t)i * 37 + 1, (uint64_t)i);
        free(blocks[i]);
    }

    /* malloc_stats prints something on stderr. */
    static char text[1 << 16];
    size_t len = capture_fd_output(2, call_malloc_stats, text, sizeof text);
    CHECKF(len > 0, "malloc_stats() printed nothing on stderr");

    /* malloc_info: XML document starting with <malloc. */
    char *xml = NULL;
    size_t xlen = 0;
    FILE *ms = open_memstream(&xml, &xlen);
    CHECK(ms != NULL);
    int r = malloc_info(0, ms);
    fclose(ms);
    CHECKF(r == 0, "malloc_info(0, memstream) returned %d", r);
    const char *s = xml;
    while (*s == ' ' || *s == '\n' || *s == '\t')
        s++;
    CHECKF(strncmp(s, "<malloc", 7) == 0, "malloc_info output starts with '%.40s'", s);
    CHECKF(strstr(s, "</malloc>") != NULL, "malloc_info output is not closed: '%.200s'", s);
    free(xml);

    /* and to stdout, as a program would use it (checked by the harness) */
    r = malloc_info(0, stdout);
    CHECKF(r == 0, "malloc_info(0, stdout) returned %d", r);
    fflush(stdout);
    printf("\nmalloc_api ok\n");
    return 0;
}

// mode: preload direct
// env: XALLOC_PROF=1
// env: XALLOC_PROF_FILE=/dev/null
// env: XALLOC_PROF_RATE=4K
// libs: -ldl -lm
// stdout: ok
//
// With the heap profiler on, xa_prof_dump() writes a profile in the format of
// docs/profile-format.md: a header, the executable mappings, one `live` line
// per sampled block still allocated (size, weight, return addresses), the
// cumulative `alloc` lines and `end`.  At a 4 KiB mean interval, 2000 live
// 1000-byte blocks (about 2 MB) leave about 500 samples; each weighs
// 1000 / (1 - e^(-1000/4096)) bytes, and the live weights add up to an
// estimate of the live bytes.  Every live sample's first frame is a return
// address inside this program's code (the allocator's own frames are left
// out).  After the blocks are freed, the next dump has no live sample of
// size 1000 left, while the cumulative lines still count them.
#include "testhelper.h"

#include <dlfcn.h>
#include <errno.h>
#include <math.h>

#define N 2000
#define SZ 1000

typedef int (*dump_fn)(const char *);
static void *keep[N];

__attribute__((noinline)) static void *grab(size_t n)
{
    void *p = malloc(n);
    __asm__ volatile("" : : "r"(p) : "memory");
    return p;
}

extern char __executable_start[], etext[];

struct summary {
    int header, end, maps, live_sz, live_other, alloc_lines, frames_in_prog;
    double live_weight;
};

static struct summary read_dump(const char *path)
{
    struct summary s = {0};
    FILE *f = fopen(path, "r");
    CHECKF(f != NULL, "cannot open %s", path);
    char line[8192];
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, "xalloc-heap-profile 1", 21) == 0)
            s.header++;
        else if (strcmp(line, "end\n") == 0)
            s.end++;
        else if (strncmp(line, "map 0x", 6) == 0)
            s.maps++;
        else if (strncmp(line, "alloc ", 6) == 0)
            s.alloc_lines++;
        else if (strncmp(line, "live ", 5) == 0) {
            unsigned long size, weight, frame;
            int used = 0;
            CHECKF(sscanf(line, "live %lu %lu %lx%n", &size, &weight, &frame, &used) == 3,
                   "bad line %s", line);
            if (size != SZ) {
                s.live_other++;
                continue;
            }
            s.live_sz++;
            s.live_weight += (double)weight;
            double want = SZ / (1 - exp(-(double)SZ / 4096));
            CHECKF(fabs((double)weight - want) < 1.0, "weight %lu, want %.1f", weight, want);
            if (frame > (unsigned long)__executable_start && frame < (unsigned long)etext)
                s.frames_in_prog++;
        }
    }
    fclose(f);
    return s;
}

int main(void)
{
    dump_fn dump = (dump_fn)dlsym(RTLD_DEFAULT, "xa_prof_dump");
    CHECK(dump != NULL);
    for (int i = 0; i < N; i++) {
        keep[i] = grab(SZ);
        CHECK(keep[i] != NULL);
        memset(keep[i], i & 0xff, SZ);
    }
    // each trial (preload, direct) runs at the same time: one file per process
    char path[128];
    snprintf(path, sizeof path, "target/c-tests/prof_dump.%d.heap", (int)getpid());
    CHECK(dump("target/c-tests/prof_dump.%p.heap") == 0);
    struct summary a = read_dump(path);
    CHECK(a.header == 1 && a.end == 1);
    CHECKF(a.maps >= 2, "%d map lines", a.maps);
    // ~488 expected (2e6 / 4096): 5 standard deviations either way
    CHECKF(a.live_sz > 370 && a.live_sz < 610, "%d live samples of %d bytes", a.live_sz, SZ);
    CHECKF(a.frames_in_prog == a.live_sz, "%d of %d samples start in the program",
           a.frames_in_prog, a.live_sz);
    double est = a.live_weight, real = (double)N * SZ;
    CHECKF(fabs(est - real) / real < 0.25, "estimate %.0f for %.0f live bytes", est, real);
    CHECK(a.alloc_lines >= 1);

    for (int i = 0; i < N; i++) {
        for (int j = 0; j < SZ; j += 97)
            CHECKF(((unsigned char *)keep[i])[j] == (i & 0xff), "block %d corrupted", i);
        free(keep[i]);
    }
    CHECK(dump(path) == 0);
    struct summary b = read_dump(path);
    CHECK(b.header == 1 && b.end == 1);
    CHECKF(b.live_sz == 0, "%d samples of freed blocks still live", b.live_sz);
    CHECK(b.alloc_lines >= a.alloc_lines);
    // a file that cannot be created: the errno comes back
    CHECK(dump("/nonexistent-dir/x.heap") == ENOENT);
    unlink(path);
    printf("ok %d samples, estimate %.0f of %.0f bytes\n", a.live_sz, est, real);
    return 0;
}

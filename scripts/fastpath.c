/* Fast-path probe: N malloc(size)+free pairs. Run twice under callgrind with different N; the
 * difference in instruction counts divided by the difference in N is the cost of one pair,
 * free of start-up costs. Used by scripts/fastpath-count.sh.
 *
 * Arguments: size (default 64), N (default 1000000), keep (default 0): blocks of the same size
 * allocated before the loop and kept live through it. With keep = 0 the loop frees the only
 * live block of its page on every iteration, so allocators that retire empty pages pay that
 * slow path each time; with a few kept live (8 in the reports) the probe measures the plain
 * fast path of every allocator. */
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv) {
    size_t size = argc > 1 ? strtoul(argv[1], 0, 10) : 64;
    long n = argc > 2 ? strtol(argv[2], 0, 10) : 1000000;
    long keep = argc > 3 ? strtol(argv[3], 0, 10) : 0;
    void *volatile sink;
    void **kept = keep > 0 ? calloc((size_t)keep, sizeof(void *)) : NULL;
    for (long i = 0; i < keep; i++)
        kept[i] = malloc(size);
    for (long i = 0; i < n; i++) {
        void *p = malloc(size);
        sink = p;
        free(p);
    }
    for (long i = 0; i < keep; i++)
        free(kept[i]);
    free(kept);
    (void)sink;
    return 0;
}

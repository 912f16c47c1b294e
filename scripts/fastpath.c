/* Fast-path probe: N malloc(size)+free pairs. Run twice under callgrind with different N; the
 * difference in instruction counts divided by the difference in N is the cost of one pair,
 * free of start-up costs. Used by scripts/fastpath-count.sh. */
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv) {
    size_t size = argc > 1 ? strtoul(argv[1], 0, 10) : 64;
    long n = argc > 2 ? strtol(argv[2], 0, 10) : 1000000;
    void *volatile sink;
    for (long i = 0; i < n; i++) {
        void *p = malloc(size);
        sink = p;
        free(p);
    }
    (void)sink;
    return 0;
}

/* Fast-path probe for C++: N `::operator new(size)` + `::operator delete` pairs, the C++
 * counterpart of scripts/fastpath.c (same arguments: size, N, keep), run by
 * `scripts/fastpath-count.sh --new`. A fourth argument picks the delete: `sized` (the default,
 * what g++ emits for `delete p` of a complete type since C++14) or `plain`. The operators are
 * called as functions, which the compiler may not elide (it may elide new-expressions). */
#include <cstdlib>
#include <cstring>
#include <new>

int main(int argc, char **argv)
{
    size_t size = argc > 1 ? strtoul(argv[1], 0, 10) : 64;
    long n = argc > 2 ? strtol(argv[2], 0, 10) : 1000000;
    long keep = argc > 3 ? strtol(argv[3], 0, 10) : 0;
    bool sized = !(argc > 4 && strcmp(argv[4], "plain") == 0);
    void *volatile sink;
    void **kept = new void *[keep > 0 ? keep : 1];
    for (long i = 0; i < keep; i++)
        kept[i] = ::operator new(size);
    for (long i = 0; i < n; i++) {
        void *p = ::operator new(size);
        sink = p;
        if (sized)
            ::operator delete(p, size);
        else
            ::operator delete(p);
    }
    for (long i = 0; i < keep; i++)
        ::operator delete(kept[i], size);
    delete[] kept;
    (void)sink;
    return 0;
}

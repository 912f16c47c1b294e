// mode: preload direct
// env: XALLOC_PROF=1
// env: XALLOC_PROF_FILE=/dev/null
// env: XALLOC_PROF_RATE=64
// stdout: ok
//
// With the profiler sampling nearly every request, a sampled small object is
// a medium block of its own page; C++ sized delete (and the aligned forms)
// must still accept it with the size it was made with, and never report a
// size mismatch.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <new>

struct alignas(64) Wide {
    char b[200];
};

int main()
{
    for (int round = 0; round < 20000; round++) {
        size_t n = 1 + round % 700;
        char *p = static_cast<char *>(::operator new(n));
        p[0] = 1;
        p[n - 1] = 2;
        ::operator delete(p, n);
        Wide *w = new Wide;
        w->b[0] = 3;
        delete w;
        int *a = new int[1 + round % 50];
        a[0] = 4;
        delete[] a;
        void *q = ::operator new(n, std::align_val_t(128));
        if (reinterpret_cast<uintptr_t>(q) % 128 != 0) {
            std::printf("misaligned\n");
            return 1;
        }
        ::operator delete(q, n, std::align_val_t(128));
    }
    std::printf("ok\n");
    return 0;
}

// mode: preload direct glibc
//
// A sized delete of a medium block that reused a slightly larger freed run:
// 40 000-byte blocks (10 pages) are freed, then 36 000-byte ones (9 pages) are
// asked for, which may get the 10-page runs whole. Deleting them with the size
// they were asked for is right and must not be reported as a size mismatch.
// Under xalloc the test also checks that some block did get a larger run, so
// that the case is exercised.
#include "testhelper.h"

#include <new>

int main()
{
    enum { N = 8 };
    void *a[N];
    for (int i = 0; i < N; i++)
        a[i] = ::operator new(40000);
    for (int i = 0; i < N; i++)
        ::operator delete(a[i], th_size(40000));
    size_t larger = 0;
    for (int i = 0; i < N; i++) {
        a[i] = ::operator new(36000);
        memset(a[i], 0x3c, 36000);
        if (malloc_usable_size(a[i]) > th_round_up(36000, th_page_size()))
            larger++;
    }
    if (th_expect_xalloc())
        CHECKF(larger > 0, "no 36000-byte block got a larger run");
    for (int i = 0; i < N; i++)
        ::operator delete(a[i], th_size(36000));
    // The same with the array form.
    for (int i = 0; i < N; i++)
        a[i] = ::operator new[](40000);
    for (int i = 0; i < N; i++)
        ::operator delete[](a[i], th_size(40000));
    for (int i = 0; i < N; i++)
        a[i] = ::operator new[](36000);
    for (int i = 0; i < N; i++)
        ::operator delete[](a[i], th_size(36000));
    puts("ok");
    return 0;
}

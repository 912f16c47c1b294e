// mode: preload direct glibc
//
// mallopt answers as glibc 2.36 does: every parameter is accepted (1), unknown
// ones included, except M_MXFAST with a value outside 0..160 (0). The same
// program runs on glibc itself.
#include "testhelper.h"

int main(void)
{
    CHECK(mallopt(12345, 0) == 1);
    CHECK(mallopt(0, 0) == 1);
    CHECK(mallopt(-100, 7) == 1);
    CHECK(mallopt(M_MXFAST, 0) == 1);
    CHECK(mallopt(M_MXFAST, 160) == 1);
    CHECK(mallopt(M_MXFAST, 161) == 0);
    CHECK(mallopt(M_MXFAST, -1) == 0);
    CHECK(mallopt(M_ARENA_MAX, 0) == 1);
    CHECK(mallopt(M_TRIM_THRESHOLD, -1) == 1);
    CHECK(mallopt(M_MMAP_THRESHOLD, 64 << 20) == 1);
    printf("ok\n");
    return 0;
}

// mode: preload direct
// env: XALLOC_STATS=1
// stdout: stderr closed
// stderr: statistics: 
// stderr: stats_closed_stderr
// stderr: in use 
// stderr: calls         calloc 
// stderr: size classes with slabs
//
// XALLOC_STATS=1 reports at exit even when the program closed stderr in an
// exit handler of its own, as coreutils' close_stdout does: the report goes to
// a copy of stderr the library made at start-up.
#include "testhelper.h"

static void close_stderr(void)
{
    close(2);
    if (write(2, "x", 1) < 0 && errno == EBADF)
        printf("stderr closed\n");
    fflush(stdout);
}

int main(void)
{
    void *keep[100];
    for (int i = 0; i < 100; i++)
        keep[i] = malloc((size_t)i * 24 + 1);
    void *c = calloc(10, 10);
    CHECK_OWNED(c);
    for (int i = 0; i < 100; i += 2)
        free(keep[i]);
    atexit(close_stderr);
    return 0;
}

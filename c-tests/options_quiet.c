// mode: preload direct
// env: XALLOC_STATS=Off
// env: XALLOC_DIRTY_CAP=16MiB
// env: XALLOC_PURGE_DELAY_MS=50
// env: XALLOC_VERBOSE=FALSE
// stdout: stderr was empty
//
// Good values, in any case, draw no output at all; nor do the variables the
// test harness and the scripts use (XALLOC_TEST_MODE, XALLOC_TEST_LIB, and
// XALLOC_SO, set here).
#include "testhelper.h"

#include <fcntl.h>

int main(int argc, char **argv)
{
    if (argc > 1) {
        /* the re-executed child: allocate and exit */
        free(malloc(64));
        return 0;
    }
    /* Run ourselves again with stderr going to a file, and check it stays empty. */
    char path[] = "/tmp/xalloc-options-quiet.XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        dup2(fd, 2);
        setenv("XALLOC_SO", "/nowhere/libxalloc.so", 1);
        execl("/proc/self/exe", argv[0], "child", (char *)NULL);
        _exit(126);
    }
    CHECK_CHILD(pid, "re-executed child");
    struct stat st;
    CHECK(fstat(fd, &st) == 0);
    char text[512] = "";
    ssize_t n = pread(fd, text, sizeof text - 1, 0);
    close(fd);
    unlink(path);
    CHECKF(st.st_size == 0, "stderr of the child: %.*s", (int)(n > 0 ? n : 0), text);
    printf("stderr was empty\n");
    return 0;
}

// mode: preload direct
// env: XALLOC_STATS_FILE=target/c-tests/stats_file.%p.txt
// stdout: ok
//
// XALLOC_STATS_FILE sends the exit report to a file, %p becoming the process
// id (so each process of a tree gets its own), a relative name being taken
// from the directory the program started in. A forked child changes directory
// and exits; its report names it by program and pid.
#include "testhelper.h"

int main(void)
{
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        void *p = malloc(200000);
        void *q = calloc(3, 100);
        CHECK(p != NULL && q != NULL);
        free(p);
        CHECK(chdir("/") == 0);
        exit(0); /* through exit: the report is written */
    }
    CHECK_CHILD(pid, "child");
    char path[256];
    snprintf(path, sizeof path, "target/c-tests/stats_file.%d.txt", (int)pid);
    FILE *f = fopen(path, "r");
    CHECKF(f != NULL, "%s: %s", path, strerror(errno));
    char text[16384];
    size_t n = fread(text, 1, sizeof text - 1, f);
    text[n] = '\0';
    fclose(f);
    unlink(path);
    char want[64];
    snprintf(want, sizeof want, "(pid %d)", (int)pid);
    CHECKF(strstr(text, want) != NULL, "no '%s' in: %s", want, text);
    CHECKF(strstr(text, "statistics: ") != NULL && strstr(text, "stats_file") != NULL, "%s", text);
    CHECKF(strstr(text, "medium blocks 1 allocated, 1 freed") != NULL, "%s", text);
    printf("ok\n");
    /* _exit: this process writes no report of its own (it would stay behind as a file). */
    fflush(stdout);
    _exit(0);
}

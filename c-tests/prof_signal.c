// mode: preload direct
// env: XALLOC_PROF=1
// env: XALLOC_PROF_RATE=8K
// env: XALLOC_DUMP_SIGNAL=USR2
// env: XALLOC_PROF_FILE=target/c-tests/prof_signal.%p.heap
// env: XALLOC_HEAPMAP_FILE=target/c-tests/prof_signal.%p.map
// stdout: ok
// timeout: 60
//
// XALLOC_DUMP_SIGNAL: on SIGUSR2 a helper thread writes the profile and the
// heap map to their files (%p = pid).  The signal arrives while the main
// thread is busy allocating and freeing (so it often lands inside malloc);
// the dumps must appear, complete, without a deadlock, while the program
// goes on allocating.  A second signal rewrites them.
#include "testhelper.h"

#include <signal.h>

static int complete(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    char line[8192], last[8192] = "";
    while (fgets(line, sizeof line, f))
        strcpy(last, line);
    fclose(f);
    return strcmp(last, "end\n") == 0;
}

static void churn(int rounds)
{
    static void *v[1024];
    uint64_t r = 99;
    for (int i = 0; i < rounds; i++) {
        int k = (int)(th_rand(&r) % 1024);
        free(v[k]);
        v[k] = malloc(th_rand_range(&r, 1, 3000));
        CHECK(v[k] != NULL);
    }
}

int main(void)
{
    char prof[256], map[256];
    snprintf(prof, sizeof prof, "target/c-tests/prof_signal.%d.heap", (int)getpid());
    snprintf(map, sizeof map, "target/c-tests/prof_signal.%d.map", (int)getpid());
    for (int round = 0; round < 2; round++) {
        unlink(prof);
        unlink(map);
        churn(100000);
        CHECK(kill(getpid(), SIGUSR2) == 0);
        int ok = 0;
        for (int i = 0; i < 500 && !ok; i++) {
            churn(2000);
            ok = complete(prof) && complete(map);
            if (!ok)
                usleep(10000);
        }
        CHECKF(ok, "round %d: dumps not written", round);
    }
    unlink(prof);
    unlink(map);
    printf("ok\n");
    return 0;
}

// mode: preload direct
// env: XALLOC_PROF=1
// env: XALLOC_PROF_FILE=/dev/null
// env: XALLOC_PROF_RATE=1K
// libs: -ldl
// stdout: ok
// timeout: 120
//
// fork() while other threads sample and one writes profiles in a loop: the
// fork handlers take the profiler's lock with the others, so no child starts
// with it held mid-update.  Each child allocates (sampling, which takes the
// lock), dumps a profile of its own and exits; none may hang.
#include "testhelper.h"

#include <dlfcn.h>
#include <pthread.h>
#include <sys/wait.h>

typedef int (*dump_fn)(const char *);
static dump_fn dump;
static volatile int stop;

static void *sampler(void *arg)
{
    (void)arg;
    uint64_t r = 7;
    void *v[256] = {0};
    while (!stop) {
        int k = (int)(th_rand(&r) % 256);
        free(v[k]);
        v[k] = malloc(th_rand_range(&r, 1, 5000));
    }
    for (int k = 0; k < 256; k++)
        free(v[k]);
    return NULL;
}

static void *dumper(void *arg)
{
    (void)arg;
    while (!stop)
        CHECK(dump("target/c-tests/prof_fork.parent.%p.heap") == 0);
    return NULL;
}

int main(void)
{
    dump = (dump_fn)dlsym(RTLD_DEFAULT, "xa_prof_dump");
    CHECK(dump != NULL);
    pthread_t s, d;
    CHECK(pthread_create(&s, NULL, sampler, NULL) == 0);
    CHECK(pthread_create(&d, NULL, dumper, NULL) == 0);
    for (int i = 0; i < 100; i++) {
        pid_t pid = fork();
        CHECK(pid >= 0);
        if (pid == 0) {
            void *v[1000];
            for (int j = 0; j < 1000; j++)
                v[j] = malloc(100 + j);
            char path[128];
            snprintf(path, sizeof path, "target/c-tests/prof_fork.%d.heap", (int)getpid());
            int rc = dump(path);
            unlink(path);
            for (int j = 0; j < 1000; j++)
                free(v[j]);
            _exit(rc == 0 ? 0 : 3);
        }
        CHECK_CHILD(pid, "child %d", i);
    }
    stop = 1;
    CHECK(pthread_join(s, NULL) == 0);
    CHECK(pthread_join(d, NULL) == 0);
    printf("ok\n");
    return 0;
}

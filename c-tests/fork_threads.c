// mode: preload direct glibc
//
// fork() from a multithreaded process: 4 threads allocate and free in a
// loop while the main thread forks 20 times.  Each child checks a block
// inherited from the parent, does a few thousand malloc/realloc/free
// operations with pattern checks (some children fork a grandchild that
// allocates too) and _exit(0)s.  Deadlocks are caught with alarm().
#include "testhelper.h"

#include <pthread.h>
#include <signal.h>
#include <sys/wait.h>

#define NTHREADS 4
#define NFORKS 20
#define CHILD_SLOTS 256

static volatile int stop;

static void on_alarm(int sig)
{
    (void)sig;
    static const char msg[] = "fork_threads: timed out (deadlock?)\n";
    ssize_t r = write(2, msg, sizeof msg - 1);
    (void)r;
    _exit(TH_EXIT_TIMEOUT);
}

static void *churn(void *arg)
{
    uint64_t rng = 4242 + (uint64_t)(intptr_t)arg;
    unsigned char *slots[64] = {0};
    size_t sizes[64] = {0};
    uint64_t seeds[64] = {0};
    uint64_t iter = 0;
    while (!__atomic_load_n(&stop, __ATOMIC_RELAXED)) {
        int i = (int)(th_rand(&rng) % 64);
        if (slots[i]) {
            CHECK_PAT(slots[i], 0, sizes[i], seeds[i]);
            free(slots[i]);
        }
        uint64_t r = th_rand(&rng);
        sizes[i] = r % 200 == 0 ? th_rand_range(&rng, 100000, 2 * TH_MIB)
                                : th_rand_range(&rng, 1, 3000);
        seeds[i] = ++iter;
        slots[i] = (unsigned char *)(r % 7 == 0 ? memalign(64, sizes[i]) : malloc(sizes[i]));
        CHECK(slots[i] != NULL);
        th_fill(slots[i], 0, sizes[i] < 256 ? sizes[i] : 256, seeds[i]);
        sizes[i] = sizes[i] < 256 ? sizes[i] : 256;
    }
    for (int i = 0; i < 64; i++)
        free(slots[i]);
    return NULL;
}

static void child_work(int which, unsigned char *inherited, size_t inherited_n)
{
    alarm(20);
    CHECK_PAT(inherited, 0, inherited_n, 777);
    if (which % 2 == 0)
        free(inherited); /* free a parent block in the child */

    static unsigned char *slots[CHILD_SLOTS];
    static size_t sizes[CHILD_SLOTS];
    static uint64_t seeds[CHILD_SLOTS];
    uint64_t rng = 99 + (uint64_t)which;
    for (int op = 0; op < 4000; op++) {
        int i = (int)(th_rand(&rng) % CHILD_SLOTS);
        uint64_t r = th_rand(&rng);
        size_t n = r % 100 == 0 ? th_rand_range(&rng, 50000, 600000) : th_rand_range(&rng, 1, 2000);
        if (slots[i] && r % 3 == 0) {
            unsigned char *q = (unsigned char *)realloc(slots[i], n);
            CHECK(q != NULL);
            CHECK_PAT(q, 0, sizes[i] < n ? sizes[i] : n, seeds[i]);
            slots[i] = q;
        } else {
            if (slots[i]) {
                CHECK_PAT(slots[i], 0, sizes[i], seeds[i]);
                free(slots[i]);
            }
            slots[i] = (unsigned char *)malloc(n);
            CHECK(slots[i] != NULL);
        }
        sizes[i] = n;
        seeds[i] = (uint64_t)op + 1;
        th_fill(slots[i], 0, n, seeds[i]);
    }
    for (int i = 0; i < CHILD_SLOTS; i++) {
        if (slots[i]) {
            CHECK_PAT(slots[i], 0, sizes[i], seeds[i]);
            free(slots[i]);
        }
    }
    if (which % 5 == 0) {
        pid_t g = fork();
        CHECK(g >= 0);
        if (g == 0) {
            void *p = malloc(12345);
            CHECK(p != NULL);
            memset(p, 1, 12345);
            free(p);
            _exit(0);
        }
        CHECK_CHILD(g, "grandchild");
    }
    _exit(0);
}

int main(void)
{
    signal(SIGALRM, on_alarm);
    alarm(30);

    pthread_t t[NTHREADS];
    for (int i = 0; i < NTHREADS; i++)
        CHECK(pthread_create(&t[i], NULL, churn, (void *)(intptr_t)i) == 0);

    for (int k = 0; k < NFORKS; k++) {
        size_t n = 1000 + (size_t)k * 5000;
        unsigned char *inherited = (unsigned char *)malloc(n);
        CHECK(inherited != NULL);
        th_fill(inherited, 0, n, 777);
        usleep(2000); /* let the threads get busy */
        pid_t pid = fork();
        CHECK(pid >= 0);
        if (pid == 0) {
            signal(SIGALRM, SIG_DFL);
            child_work(k, inherited, n);
        }
        CHECK_CHILD(pid, "child %d", k);
        /* the parent's copy is untouched by whatever the child did */
        CHECK_PAT(inherited, 0, n, 777);
        free(inherited);
    }
    __atomic_store_n(&stop, 1, __ATOMIC_RELAXED);
    for (int i = 0; i < NTHREADS; i++)
        CHECK(pthread_join(t[i], NULL) == 0);
    alarm(0);
    printf("fork_threads ok\n");
    return 0;
}

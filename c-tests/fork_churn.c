// mode: preload direct glibc
// timeout: 120
//
// Many forks while other threads are in the middle of small allocations:
// two threads churn small blocks without pause; the main thread forks 250
// times and each child runs 8000 malloc/free operations on small blocks
// with pattern checks, so heaps inherited in any intermediate state are
// used by the child.  Hangs are caught with alarm().
#include "testhelper.h"

#include <pthread.h>
#include <signal.h>
#include <sys/wait.h>

#define NFORKS 250
#define CHILD_OPS 8000
#define CHILD_SLOTS 512

static volatile int stop;

static void on_alarm(int sig)
{
    (void)sig;
    static const char msg[] = "fork_churn: timed out (deadlock?)\n";
    ssize_t r = write(2, msg, sizeof msg - 1);
    (void)r;
    _exit(TH_EXIT_TIMEOUT);
}

static void *churn(void *arg)
{
    uint64_t rng = 17 + (uint64_t)(intptr_t)arg;
    void *slot[64] = {0};
    while (!__atomic_load_n(&stop, __ATOMIC_RELAXED)) {
        int i = (int)(th_rand(&rng) % 64);
        free(slot[i]);
        slot[i] = malloc(th_rand_range(&rng, 1, 3000));
        CHECK(slot[i] != NULL);
    }
    for (int i = 0; i < 64; i++)
        free(slot[i]);
    return NULL;
}

static void child(int k)
{
    alarm(5);
    static unsigned char *v[CHILD_SLOTS];
    static size_t n[CHILD_SLOTS];
    uint64_t rng = 1000 + (uint64_t)k;
    for (int i = 0; i < CHILD_OPS; i++) {
        int j = (int)(th_rand(&rng) % CHILD_SLOTS);
        if (v[j] != NULL) {
            CHECK_PAT(v[j], 0, n[j], (uint64_t)j);
            free(v[j]);
        }
        n[j] = th_rand_range(&rng, 1, 4000);
        v[j] = (unsigned char *)malloc(n[j]);
        CHECK(v[j] != NULL);
        th_fill(v[j], 0, n[j] < 64 ? n[j] : 64, (uint64_t)j);
        if (n[j] > 64)
            n[j] = 64;
    }
    _exit(0);
}

int main(void)
{
    signal(SIGALRM, on_alarm);
    alarm(100);
    pthread_t t[2];
    for (int i = 0; i < 2; i++)
        CHECK(pthread_create(&t[i], NULL, churn, (void *)(intptr_t)i) == 0);
    int bad = 0;
    for (int k = 0; k < NFORKS; k++) {
        usleep(500);
        pid_t pid = fork();
        CHECK(pid >= 0);
        if (pid == 0) {
            signal(SIGALRM, SIG_DFL);
            child(k);
        }
        /* a failed child is counted and reported; the forks go on */
        int st = th_wait_child(pid);
        if (!th_status_ok(st)) {
            bad++;
            char how[160];
            fprintf(stderr, "fork %d: child: %s\n", k, th_status_str(st, how, sizeof how));
        }
    }
    __atomic_store_n(&stop, 1, __ATOMIC_RELAXED);
    for (int i = 0; i < 2; i++)
        CHECK(pthread_join(t[i], NULL) == 0);
    alarm(0);
    CHECKF(bad == 0, "%d of %d children failed", bad, NFORKS);
    printf("fork_churn ok\n");
    return 0;
}

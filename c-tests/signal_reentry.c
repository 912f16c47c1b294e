// mode: preload direct
// expect: abort
// stderr: xalloc: malloc re-entered while this thread holds
// stderr: (from a signal handler?)
// timeout: 30
//
// A signal handler that calls malloc while the thread it interrupted is inside malloc or free.
// The main loop allocates 100-byte and 300 KB blocks (a 300 KB block goes through the thread's
// run cache and at times takes PAGE_LOCK in the page allocator); a SIGALRM handler, run every
// 50 microseconds by setitimer, does free(malloc(40000)), which needs both too. Sooner or
// later the signal lands while the thread is inside its run cache or holds PAGE_LOCK, and the
// handler asks for it again: the message names which.
//
// This is undefined behaviour, but a hang is the worst answer: xalloc must abort with its
// re-entry message. The loop runs until that happens; if it has not after 20 seconds the
// program says how often the handler ran and exits with status 1.
//
// Not run on glibc: there the program is undefined too (glibc may deadlock or crash).
#include "testhelper.h"

#include <sys/time.h>
#include <time.h>

#define SECONDS 20

static volatile sig_atomic_t handler_runs;

static void on_alarm(int sig)
{
    (void)sig;
    char *p = malloc(40000);
    if (p != NULL)
        p[0] = 1;
    free(p);
    handler_runs++;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(void)
{
    /* The thread's heap and the first arena exist before the first signal. */
    free(malloc(100));
    free(malloc(300000));

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_alarm;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    CHECK(sigaction(SIGALRM, &sa, NULL) == 0);
    struct itimerval every_50us = {{0, 50}, {0, 50}};
    CHECK(setitimer(ITIMER_REAL, &every_50us, NULL) == 0);

    double end = now_s() + SECONDS;
    long pairs = 0;
    while (now_s() < end) {
        for (int i = 0; i < 1000; i++) {
            char *small = malloc(th_size(100));
            char *medium = malloc(th_size(300000));
            CHECK(small != NULL && medium != NULL);
            small[0] = 1;
            medium[0] = 1;
            free(medium);
            free(small);
        }
        pairs += 1000;
    }

    struct itimerval off = {{0, 0}, {0, 0}};
    setitimer(ITIMER_REAL, &off, NULL);
    fprintf(stderr,
            "signal_reentry: no abort after %d s: %ld iterations, %ld handler runs\n",
            SECONDS, pairs, (long)handler_runs);
    return 1;
}

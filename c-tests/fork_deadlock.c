// mode: preload direct glibc
//
// fork() while other threads hold stdio and allocator locks: two threads
// read a file line by line with getline (which reallocs its buffer), one
// thread calls fflush(NULL) in a loop, one thread allocates, and one thread
// forks in a loop (children _exit at once, or after a malloc/free).  The
// whole test and every child are bounded with alarm().
#include "testhelper.h"

#include <pthread.h>
#include <signal.h>
#include <sys/wait.h>

#define NFORKS 300

static volatile int stop;
static FILE *files[2];
static long lines_read[2];

static void on_alarm(int sig)
{
    (void)sig;
    static const char msg[] = "fork_deadlock: timed out (deadlock?)\n";
    ssize_t r = write(2, msg, sizeof msg - 1);
    (void)r;
    _exit(TH_EXIT_TIMEOUT);
}

static FILE *make_file(int which)
{
    FILE *f = tmpfile();
    CHECK(f != NULL);
    for (int i = 0; i < 2000; i++) {
        /* lines of growing length so getline has to grow its buffer */
        fprintf(f, "%d:%d:", which, i);
        for (int k = 0; k < i % 300; k++)
            fputc('a' + (k % 26), f);
        fputc('\n', f);
    }
    fflush(f);
    return f;
}

static void *reader(void *arg)
{
    int which = (int)(intptr_t)arg;
    FILE *f = files[which];
    while (!__atomic_load_n(&stop, __ATOMIC_RELAXED)) {
        char *line = NULL;
        size_t cap = 0;
        ssize_t len;
        int expect = 0;
        rewind(f);
        while ((len = getline(&line, &cap, f)) > 0) {
            int w = -1, i = -1;
            CHECKF(sscanf(line, "%d:%d:", &w, &i) == 2 && w == which && i == expect,
                   "reader %d: bad line %d: '%.40s'", which, expect, line);
            CHECK((size_t)len == strlen(line));
            expect++;
            __atomic_add_fetch(&lines_read[which], 1, __ATOMIC_RELAXED);
            if (__atomic_load_n(&stop, __ATOMIC_RELAXED))
                break;
        }
        free(line);
    }
    return NULL;
}

static void *flusher(void *arg)
{
    (void)arg;
    while (!__atomic_load_n(&stop, __ATOMIC_RELAXED)) {
        fflush(NULL);
        sched_yield();
    }
    return NULL;
}

static void *allocator_churn(void *arg)
{
    (void)arg;
    uint64_t rng = 5;
    void *slots[32] = {0};
    while (!__atomic_load_n(&stop, __ATOMIC_RELAXED)) {
        int i = (int)(th_rand(&rng) % 32);
        free(slots[i]);
        slots[i] = malloc(th_rand_range(&rng, 1, 70000));
        CHECK(slots[i] != NULL);
    }
    for (int i = 0; i < 32; i++)
        free(slots[i]);
    return NULL;
}

static void *forker(void *arg)
{
    (void)arg;
    for (int k = 0; k < NFORKS; k++) {
        pid_t pid = fork();
        CHECK(pid >= 0);
        if (pid == 0) {
            if (k % 2 == 0)
                _exit(0);
            alarm(10);
            void *p = malloc((size_t)k * 100 + 1);
            if (p == NULL)
                _exit(3);
            memset(p, 7, (size_t)k * 100 + 1);
            free(p);
            char *s = strdup("child");
            if (s == NULL)
                _exit(4);
            free(s);
            _exit(0);
        }
        CHECK_CHILD(pid, "fork %d: child", k);
    }
    return NULL;
}

int main(void)
{
    signal(SIGALRM, on_alarm);
    alarm(30);
    files[0] = make_file(0);
    files[1] = make_file(1);

    pthread_t r0, r1, fl, ch, fk;
    CHECK(pthread_create(&r0, NULL, reader, (void *)(intptr_t)0) == 0);
    CHECK(pthread_create(&r1, NULL, reader, (void *)(intptr_t)1) == 0);
    CHECK(pthread_create(&fl, NULL, flusher, NULL) == 0);
    CHECK(pthread_create(&ch, NULL, allocator_churn, NULL) == 0);
    CHECK(pthread_create(&fk, NULL, forker, NULL) == 0);

    CHECK(pthread_join(fk, NULL) == 0);
    __atomic_store_n(&stop, 1, __ATOMIC_RELAXED);
    CHECK(pthread_join(r0, NULL) == 0);
    CHECK(pthread_join(r1, NULL) == 0);
    CHECK(pthread_join(fl, NULL) == 0);
    CHECK(pthread_join(ch, NULL) == 0);
    alarm(0);
    CHECK(lines_read[0] > 0 && lines_read[1] > 0);
    fclose(files[0]);
    fclose(files[1]);
    printf("fork_deadlock ok (%ld + %ld lines read)\n", lines_read[0], lines_read[1]);
    return 0;
}

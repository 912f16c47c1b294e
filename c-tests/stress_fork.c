// mode: preload direct glibc
// timeout: 40
// stdout: stress_fork: ok
//
// Fork storm.
//
// Phase 1 (single-threaded): the main thread runs a malloc / calloc /
// realloc / free loop over small, medium and huge sizes while a profiling
// timer (SIGPROF, every 1 ms of CPU time) interrupts it; the handler forks.
// When the handler interrupted an allocator call, the child only _exits
// (malloc in such a child is undefined); otherwise it mallocs, verifies and
// frees a few blocks first.  The handler reaps the child itself.
//
// Phase 2 (multi-threaded): 2 worker threads allocate, verify, realloc and
// free blocks, partly through a shared table (so blocks change threads),
// and one of them keeps starting short-lived threads that leave blocks in
// that table; the main thread forks 100 times, the other worker forks now
// and then too, and a fourth thread that never allocates takes the timer
// signals and forks from the handler (its children may malloc, since it
// was not interrupted inside the allocator).  Main's children verify every
// block the parent had published, free or realloc some of them, run their
// own allocation loop (small to huge), sometimes also in new threads of
// their own and sometimes in a grandchild, and _exit(0).  alarm() in the
// parent and in every child turns a deadlock into a failure.
// Optional argument: seed.
#include "stress.h"

#include <signal.h>
#include <sys/time.h>
#include <sys/wait.h>

#define MAIN_FORKS 100
#define SIG_FORKS_1 100
#define NWORKERS 2
#define PUB 256
#define PRIV 64

static void on_alarm(int sig)
{
    (void)sig;
    static const char msg[] = "stress_fork: timed out (deadlock?)\n";
    ssize_t r = write(2, msg, sizeof msg - 1);
    (void)r;
    _exit(TH_EXIT_TIMEOUT);
}

static size_t pick_size(uint64_t *rng)
{
    uint64_t r = th_rand(rng) % 10000;
    if (r < 8000)
        return th_rand_range(rng, 0, 512);
    if (r < 9700)
        return st_log_range(rng, 513, 32 * TH_KIB);
    if (r < 9995)
        return st_log_range(rng, 32 * TH_KIB + 1, 2 * TH_MIB);
    return th_rand_range(rng, 32 * TH_MIB + 1, 36 * TH_MIB);
}

/* A child's own allocation loop: returns 0, or fails with a message. */
static void child_churn(uint64_t rng, int ops, int allow_huge)
{
    struct {
        unsigned char *p;
        size_t n;
        uint64_t id;
    } b[32];
    memset(b, 0, sizeof b);
    for (int i = 0; i < ops; i++) {
        int k = (int)(th_rand(&rng) % 32);
        if (b[k].p != NULL) {
            ST_VERIFY(b[k].p, 0, b[k].n, st_block_seed(b[k].id, 7), "child pid %d block %d",
                      (int)getpid(), k);
            free(b[k].p);
        }
        size_t n = pick_size(&rng);
        if (!allow_huge && n > 4 * TH_MIB)
            n = 100;
        b[k].p = (unsigned char *)(i % 3 == 0 ? calloc(1, n) : malloc(n));
        ST_CHECK(b[k].p != NULL, "child: allocation of %zu failed", n);
        if (i % 3 == 0)
            ST_VERIFY_ZERO(b[k].p, n, "child pid %d calloc", (int)getpid());
        b[k].n = n;
        b[k].id = (uint64_t)i;
        st_fill(b[k].p, 0, n, st_block_seed(b[k].id, 7));
    }
    for (int k = 0; k < 32; k++) {
        if (b[k].p == NULL)
            continue;
        ST_VERIFY(b[k].p, 0, b[k].n, st_block_seed(b[k].id, 7), "child pid %d block %d",
                  (int)getpid(), k);
        free(b[k].p);
    }
}

/* ------------------------------------------------------------------ */
/* Forks from a signal handler                                         */
/* ------------------------------------------------------------------ */

static volatile sig_atomic_t in_alloc;  /* phase 1: main is inside an allocator call */
static volatile sig_atomic_t sig_phase; /* 1 or 2; 0: the handler does nothing */
static int sig_forks, sig_forks_in_alloc, sig_forks_malloc, sig_bad;
/* The last failure: the call that failed and its errno, or the child's wait status. */
static const char *sig_bad_call;
static int sig_bad_errno, sig_bad_status;

static void on_prof(int sig)
{
    (void)sig;
    if (sig_phase == 0)
        return;
    int saved = errno;
    int interrupted_alloc = sig_phase == 1 && in_alloc;
    pid_t pid = fork();
    if (pid == 0) {
        if (interrupted_alloc)
            _exit(0);
        alarm(10);
        /* Not interrupted inside the allocator: a few allocations are fine. */
        for (int i = 0; i < 20; i++) {
            size_t n = (size_t)(i * 997 % 70000) + 1;
            unsigned char *p = (unsigned char *)malloc(n);
            if (p == NULL)
                _exit(3);
            st_fill(p, 0, n, (uint64_t)i);
            if (st_find_bad(p, 0, n, (uint64_t)i) != SIZE_MAX)
                _exit(4);
            free(p);
        }
        _exit(0);
    }
    if (pid < 0) {
        sig_bad++;
        sig_bad_call = "fork";
        sig_bad_errno = errno;
    } else {
        int st = 0;
        if (th_waitpid(pid, &st) != pid) {
            sig_bad++;
            sig_bad_call = "waitpid";
            sig_bad_errno = errno;
        } else if (!th_status_ok(st)) {
            sig_bad++;
            sig_bad_call = NULL;
            sig_bad_status = st;
        }
        sig_forks++;
        if (interrupted_alloc)
            sig_forks_in_alloc++;
        else
            sig_forks_malloc++;
    }
    errno = saved;
}

/* How the last failed fork from the signal handler went wrong. */
static const char *sig_bad_str(char *buf, size_t len)
{
    if (sig_bad_call != NULL) {
        snprintf(buf, len, "%s failed: %s", sig_bad_call, strerror(sig_bad_errno));
        return buf;
    }
    return th_status_str(sig_bad_status, buf, len);
}

static void set_prof_timer(long usec)
{
    struct itimerval it;
    memset(&it, 0, sizeof it);
    it.it_interval.tv_usec = usec;
    it.it_value.tv_usec = usec;
    CHECK(setitimer(ITIMER_PROF, &it, NULL) == 0);
}

#define ALLOC_CALL(expr)                                                                     \
    (__extension__({                                                                         \
        in_alloc = 1;                                                                        \
        __atomic_signal_fence(__ATOMIC_SEQ_CST);                                             \
        void *r_ = (expr);                                                                   \
        __atomic_signal_fence(__ATOMIC_SEQ_CST);                                             \
        in_alloc = 0;                                                                        \
        r_;                                                                                  \
    }))

#define FREE_CALL(p)                                                                         \
    do {                                                                                     \
        in_alloc = 1;                                                                        \
        __atomic_signal_fence(__ATOMIC_SEQ_CST);                                             \
        free(p);                                                                             \
        __atomic_signal_fence(__ATOMIC_SEQ_CST);                                             \
        in_alloc = 0;                                                                        \
    } while (0)

static uint64_t phase1_ops;

static void phase1(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_prof;
    sa.sa_flags = SA_RESTART;
    sigemptyset(&sa.sa_mask);
    CHECK(sigaction(SIGPROF, &sa, NULL) == 0);

    uint64_t rng = st_rng(1);
    struct {
        unsigned char *p;
        size_t n;
        uint64_t id;
    } b[64];
    memset(b, 0, sizeof b);
    uint64_t next_id = 1;
    double stop = st_now() + 0.8;
    sig_phase = 1;
    set_prof_timer(1000);
    while (__atomic_load_n(&sig_forks, __ATOMIC_RELAXED) < SIG_FORKS_1 && st_now() < stop) {
        int k = (int)(th_rand(&rng) % 64);
        if (b[k].p != NULL) {
            ST_VERIFY(b[k].p, 0, b[k].n, st_block_seed(b[k].id, 1), "phase 1 block %d", k);
            if (th_rand(&rng) % 3 == 0) {
                size_t m = pick_size(&rng);
                unsigned char *q = (unsigned char *)ALLOC_CALL(realloc(b[k].p, m ? m : 1));
                ST_CHECK(q != NULL, "realloc(%zu)", m);
                size_t keep = b[k].n < m ? b[k].n : m;
                ST_VERIFY(q, 0, keep, st_block_seed(b[k].id, 1), "phase 1 block %d realloc", k);
                st_fill(q, keep, m, st_block_seed(b[k].id, 1));
                b[k].p = q;
                b[k].n = m;
                phase1_ops++;
                continue;
            }
            FREE_CALL(b[k].p);
        }
        /* A burst of short-lived small blocks: more time spent inside the allocator. */
        for (int j = 0; j < 8; j++) {
            size_t sn = th_rand_range(&rng, 8, 300);
            uint64_t *q = (uint64_t *)ALLOC_CALL(malloc(sn));
            ST_CHECK(q != NULL, "phase 1: malloc(%zu) failed", sn);
            q[0] = ~(uint64_t)sn;
            ST_CHECK(q[0] == ~(uint64_t)sn, "phase 1: small block %p changed under us", (void *)q);
            FREE_CALL(q);
        }
        size_t n = pick_size(&rng);
        int zero = th_rand(&rng) % 4 == 0;
        b[k].p = (unsigned char *)(zero ? ALLOC_CALL(calloc(n, 1)) : ALLOC_CALL(malloc(n)));
        ST_CHECK(b[k].p != NULL, "phase 1: allocation of %zu failed", n);
        if (zero)
            ST_VERIFY_ZERO(b[k].p, n, "phase 1 calloc");
        b[k].n = n;
        b[k].id = next_id++;
        st_fill(b[k].p, 0, n, st_block_seed(b[k].id, 1));
        phase1_ops++;
    }
    set_prof_timer(0);
    sig_phase = 0;
    for (int k = 0; k < 64; k++) {
        if (b[k].p == NULL)
            continue;
        ST_VERIFY(b[k].p, 0, b[k].n, st_block_seed(b[k].id, 1), "phase 1 block %d", k);
        free(b[k].p);
    }
    char buf[160];
    ST_CHECK(sig_bad == 0, "phase 1: %d forks from the signal handler failed (last: %s)",
             sig_bad, sig_bad_str(buf, sizeof buf));
}

/* ------------------------------------------------------------------ */
/* Phase 2                                                             */
/* ------------------------------------------------------------------ */

struct pub_meta {
    size_t n;
    uint64_t id;
};

/*
 * A shared slot holds NULL (empty), BUSY (a thread is working on it) or a
 * published block whose metadata is complete.  A thread claims a slot by
 * exchanging BUSY into it; only the claimer writes the slot afterwards.
 */
#define BUSY ((unsigned char *)1)
static unsigned char *pub_p[PUB];
static struct pub_meta pub_meta[PUB];
static int stop_workers;
static uint64_t worker_ops, worker_forks;

static void publish(int k, unsigned char *p, size_t n, uint64_t id)
{
    pub_meta[k].n = n;
    pub_meta[k].id = id;
    __atomic_store_n(&pub_p[k], p, __ATOMIC_RELEASE);
}

struct priv_blk {
    unsigned char *p;
    size_t n;
    uint64_t id;
};

static void verify_priv(struct priv_blk *b, int nb, const char *who)
{
    for (int k = 0; k < nb; k++)
        if (b[k].p != NULL)
            ST_VERIFY(b[k].p, 0, b[k].n, st_block_seed(b[k].id, 2), "%s private block %d", who,
                      k);
}

/* A short-lived thread: allocates, publishes a few blocks, frees the rest, exits. */
static uint64_t short_threads;
static void *short_thread(void *arg)
{
    uint64_t base = (uint64_t)(uintptr_t)arg;
    uint64_t rng = st_rng(base);
    struct priv_blk b[20];
    for (int i = 0; i < 20; i++) {
        b[i].n = pick_size(&rng);
        if (b[i].n > TH_MIB)
            b[i].n = 1000;
        b[i].id = base + (uint64_t)i;
        b[i].p = (unsigned char *)malloc(b[i].n);
        ST_CHECK(b[i].p != NULL, "malloc(%zu)", b[i].n);
        st_fill(b[i].p, 0, b[i].n, st_block_seed(b[i].id, 2));
    }
    verify_priv(b, 20, "short-lived thread");
    for (int i = 0; i < 20; i++) {
        if (i < 4) { /* outlives this thread: published for the others (and the children) */
            int k = (int)(th_rand(&rng) % PUB);
            unsigned char *old = __atomic_exchange_n(&pub_p[k], BUSY, __ATOMIC_ACQUIRE);
            if (old == NULL) {
                publish(k, b[i].p, b[i].n, b[i].id);
                continue;
            }
            if (old != BUSY)
                __atomic_store_n(&pub_p[k], old, __ATOMIC_RELEASE);
        }
        free(b[i].p);
    }
    __atomic_add_fetch(&short_threads, 1, __ATOMIC_RELAXED);
    st_thread_done();
    return NULL;
}

static void *worker(void *arg)
{
    int self = (int)(intptr_t)arg;
    uint64_t rng = st_rng(10 + (uint64_t)self);
    uint64_t next_id = (uint64_t)(self + 1) << 40;
    struct priv_blk b[PRIV];
    memset(b, 0, sizeof b);
    uint64_t ops = 0, forks = 0;
    while (!__atomic_load_n(&stop_workers, __ATOMIC_RELAXED)) {
        uint64_t r = th_rand(&rng);
        if (r % 2 == 0) {
            int k = (int)((r >> 8) % PUB);
            unsigned char *p = __atomic_exchange_n(&pub_p[k], BUSY, __ATOMIC_ACQUIRE);
            if (p == BUSY)
                continue; /* another worker has it */
            if (p != NULL) {
                struct pub_meta m = pub_meta[k];
                ST_VERIFY(p, 0, m.n, st_block_seed(m.id, 2), "worker %d: shared block %d", self,
                          k);
                if ((r >> 20) % 4 == 0) {
                    size_t n2 = m.n + (size_t)((r >> 24) % 5000);
                    unsigned char *q = (unsigned char *)realloc(p, n2);
                    ST_CHECK(q != NULL, "realloc(%zu)", n2);
                    ST_VERIFY(q, 0, m.n, st_block_seed(m.id, 2), "worker %d: realloc shared", self);
                    st_fill(q, m.n, n2, st_block_seed(m.id, 2));
                    publish(k, q, n2, m.id);
                } else {
                    free(p);
                    __atomic_store_n(&pub_p[k], NULL, __ATOMIC_RELEASE);
                }
            } else {
                size_t n = pick_size(&rng);
                if (n > 4 * TH_MIB)
                    n = 4 * TH_MIB;
                p = (unsigned char *)malloc(n);
                ST_CHECK(p != NULL, "malloc(%zu)", n);
                uint64_t id = next_id++;
                st_fill(p, 0, n, st_block_seed(id, 2));
                publish(k, p, n, id);
            }
        } else {
            int k = (int)((r >> 8) % PRIV);
            if (b[k].p != NULL) {
                ST_VERIFY(b[k].p, 0, b[k].n, st_block_seed(b[k].id, 2), "worker %d private %d",
                          self, k);
                free(b[k].p);
            }
            b[k].n = pick_size(&rng);
            b[k].id = next_id++;
            b[k].p = (unsigned char *)malloc(b[k].n);
            ST_CHECK(b[k].p != NULL, "malloc(%zu)", b[k].n);
            st_fill(b[k].p, 0, b[k].n, st_block_seed(b[k].id, 2));
        }
        ops++;
        if (self == 1 && ops % 300 == 0) {
            /* Thread churn while main forks. */
            pthread_t t;
            CHECK(pthread_create(&t, NULL, short_thread, (void *)(uintptr_t)(next_id += 64)) == 0);
            CHECK(pthread_join(t, NULL) == 0);
        }
        if (self == 0 && ops % 3000 == 0) {
            /* A second thread that forks, at the same time as main. */
            pid_t pid = fork();
            CHECK(pid >= 0);
            if (pid == 0) {
                alarm(10);
                verify_priv(b, PRIV, "worker 0's child");
                child_churn(st_rng(ops), 100, 0);
                _exit(0);
            }
            ST_CHECK_CHILD(pid, "worker 0's child");
            forks++;
        }
    }
    verify_priv(b, PRIV, "worker at the end");
    for (int k = 0; k < PRIV; k++)
        free(b[k].p);
    __atomic_add_fetch(&worker_ops, ops, __ATOMIC_RELAXED);
    __atomic_add_fetch(&worker_forks, forks, __ATOMIC_RELAXED);
    st_check_heap();
    st_thread_done();
    return NULL;
}

/*
 * Never allocates; sleeps, and takes the SIGPROF signals of phase 2 (the
 * other threads block them) and forks from the handler.
 */
static int stop_sigthread;
static void *sig_thread(void *arg)
{
    (void)arg;
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGPROF);
    CHECK(pthread_sigmask(SIG_UNBLOCK, &set, NULL) == 0);
    while (!__atomic_load_n(&stop_sigthread, __ATOMIC_RELAXED)) {
        struct timespec ts = {0, 1000 * 1000};
        nanosleep(&ts, NULL); /* the signals interrupt the sleep */
    }
    CHECK(pthread_sigmask(SIG_BLOCK, &set, NULL) == 0);
    return NULL;
}

static void *child_thread(void *arg)
{
    child_churn(*(uint64_t *)arg, 100, 1);
    return NULL;
}

/* What a child of the main thread does. */
static TH_NORETURN void main_child(int k, struct priv_blk *mine, int nmine)
{
    alarm(10);
    uint64_t rng = st_rng(1000 + (uint64_t)k);
    verify_priv(mine, nmine, "main's child");
    /* Every block the parent had published, whichever thread made it. */
    for (int i = 0; i < PUB; i++) {
        unsigned char *p = pub_p[i];
        if (p == NULL || p == BUSY)
            continue; /* empty, or a worker was in the middle of it */
        ST_VERIFY(p, 0, pub_meta[i].n, st_block_seed(pub_meta[i].id, 2),
                  "fork %d child: shared block %d", k, i);
        uint64_t r = th_rand(&rng) % 4;
        if (r == 0) {
            free(p);
        } else if (r == 1) {
            size_t n2 = pub_meta[i].n * 2 + 10;
            unsigned char *q = (unsigned char *)realloc(p, n2);
            ST_CHECK(q != NULL, "child realloc(%zu)", n2);
            ST_VERIFY(q, 0, pub_meta[i].n, st_block_seed(pub_meta[i].id, 2),
                      "fork %d child: shared block %d after realloc", k, i);
            st_fill(q, 0, n2, 99);
            free(q);
        }
    }
    for (int i = 0; i < nmine; i += 2)
        free(mine[i].p);
    child_churn(rng, 150, k % 10 == 0);
    if (k % 5 == 3) {
        /* New threads in the child (they take over free or abandoned heaps). */
        for (int j = 0; j < 3; j++) {
            pthread_t t;
            uint64_t s = rng ^ (77 + (uint64_t)j);
            ST_CHECK(pthread_create(&t, NULL, child_thread, &s) == 0, "child pthread_create");
            child_churn(rng ^ (5 + (uint64_t)j), 100, 0);
            ST_CHECK(pthread_join(t, NULL) == 0, "child pthread_join");
        }
    }
    if (k % 25 == 7) {
        pid_t g = fork();
        ST_CHECK(g >= 0, "grandchild fork");
        if (g == 0) {
            alarm(10);
            child_churn(rng ^ 9, 200, 1);
            _exit(0);
        }
        ST_CHECK_CHILD(g, "grandchild");
    }
    _exit(0);
}

int main(int argc, char **argv)
{
    st_init("stress_fork", argc, argv);
    signal(SIGALRM, on_alarm);
    alarm(30);
    double t0 = st_now();

    phase1();
    int p1_forks = sig_forks, p1_in_alloc = sig_forks_in_alloc, p1_malloc = sig_forks_malloc;
    double t1 = st_now();
    printf("stress_fork: phase 1: single thread, %llu allocator ops, %d forks from SIGPROF "
           "(%d interrupted an allocator call: child only _exits; %d children malloc), %.2f s\n",
           (unsigned long long)phase1_ops, p1_forks, p1_in_alloc, p1_malloc, t1 - t0);
    fflush(stdout);

    /* Phase 2: only the signal thread takes SIGPROF. */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGPROF);
    CHECK(pthread_sigmask(SIG_BLOCK, &set, NULL) == 0);
    sig_forks = sig_forks_in_alloc = sig_forks_malloc = 0;
    sig_phase = 2;
    pthread_t w[NWORKERS], st_tid;
    for (int i = 0; i < NWORKERS; i++)
        CHECK(pthread_create(&w[i], NULL, worker, (void *)(intptr_t)i) == 0);
    CHECK(pthread_create(&st_tid, NULL, sig_thread, NULL) == 0);
    set_prof_timer(5000);

    uint64_t rng = st_rng(2);
    struct priv_blk mine[PRIV];
    memset(mine, 0, sizeof mine);
    uint64_t next_id = (uint64_t)100 << 40;
    double stop = st_now() + 2.0;
    int forks = 0;
    for (; forks < MAIN_FORKS && st_now() < stop; forks++) {
        /* main's own blocks change between forks */
        for (int j = 0; j < 8; j++) {
            int k = (int)(th_rand(&rng) % PRIV);
            if (mine[k].p != NULL) {
                ST_VERIFY(mine[k].p, 0, mine[k].n, st_block_seed(mine[k].id, 2), "main block");
                free(mine[k].p);
            }
            mine[k].n = pick_size(&rng);
            mine[k].id = next_id++;
            mine[k].p = (unsigned char *)malloc(mine[k].n);
            ST_CHECK(mine[k].p != NULL, "malloc(%zu)", mine[k].n);
            st_fill(mine[k].p, 0, mine[k].n, st_block_seed(mine[k].id, 2));
        }
        pid_t pid = fork();
        CHECK(pid >= 0);
        if (pid == 0)
            main_child(forks, mine, PRIV);
        ST_CHECK_CHILD(pid, "fork %d: child", forks);
    }
    set_prof_timer(0);
    __atomic_store_n(&stop_sigthread, 1, __ATOMIC_RELAXED);
    CHECK(pthread_join(st_tid, NULL) == 0);
    sig_phase = 0;
    __atomic_store_n(&stop_workers, 1, __ATOMIC_RELAXED);
    for (int i = 0; i < NWORKERS; i++)
        CHECK(pthread_join(w[i], NULL) == 0);
    char buf[160];
    ST_CHECK(sig_bad == 0, "phase 2: %d forks from the signal handler failed (last: %s)", sig_bad,
             sig_bad_str(buf, sizeof buf));
    verify_priv(mine, PRIV, "main at the end");
    for (int k = 0; k < PRIV; k++)
        free(mine[k].p);
    int shared_left = 0;
    for (int i = 0; i < PUB; i++) {
        ST_CHECK(pub_p[i] != BUSY, "shared slot %d still busy", i);
        if (pub_p[i] == NULL)
            continue;
        ST_VERIFY(pub_p[i], 0, pub_meta[i].n, st_block_seed(pub_meta[i].id, 2), "shared %d", i);
        free(pub_p[i]);
        shared_left++;
    }
    st_check_heap();
    alarm(0);
    printf("stress_fork: phase 2: %d workers (%llu ops, %llu short-lived threads), %d forks by "
           "main, %llu by a worker, %d from SIGPROF on a non-allocating thread (children "
           "malloc), %.2f s\n",
           NWORKERS, (unsigned long long)worker_ops, (unsigned long long)short_threads, forks,
           (unsigned long long)worker_forks, sig_forks, st_now() - t1);
    printf("stress_fork: bytes verified in the parent %.1f MiB, %.2f s\n",
           ST_MIB(st_verified_total()), st_now() - t0);
    (void)shared_left;
    printf("stress_fork: ok\n");
    return 0;
}

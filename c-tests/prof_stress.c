// mode: preload direct
// env: XALLOC_PROF=1
// env: XALLOC_PROF_FILE=/dev/null
// env: XALLOC_PROF_RATE=300
// libs: -ldl
// stdout: ok
// timeout: 120
//
// The profiler samples about one request in three at a 300-byte mean
// interval, so sampled blocks (each a medium block of its own pages) and
// plain ones mix in every operation: malloc, calloc (zeroed), realloc
// (growing, shrinking, between small, medium and huge), aligned_alloc and
// posix_memalign (alignment kept), malloc_usable_size, and frees by the
// allocating thread and by another one.  Four threads; every block carries a
// pattern that is checked before it is freed or resized.  At the end, with
// everything freed, a dump has no live sample left of the sizes used here.
#include "testhelper.h"

#include <dlfcn.h>
#include <pthread.h>

#define THREADS 4
#define SLOTS 512
#define ROUNDS 40000

struct slot {
    unsigned char *p;
    size_t n;
    uint64_t seed;
};

static struct slot handoff[THREADS][SLOTS];
static pthread_mutex_t handoff_lock = PTHREAD_MUTEX_INITIALIZER;

static size_t pick_size(uint64_t *r)
{
    switch (th_rand(r) % 16) {
    case 0: return th_rand_range(r, 33000, 200000);
    case 1: return th_rand_range(r, 5000, 32768);
    case 2: if (th_rand(r) % 64 == 0) return th_rand_range(r, 33u << 20, 34u << 20);
            /* fall through */
    default: return th_rand_range(r, 1, 1024);
    }
}

static void fill(struct slot *s)
{
    for (size_t i = 0; i < s->n; i += 61)
        s->p[i] = th_pat(s->seed, i);
}

static void check(const struct slot *s, size_t upto)
{
    for (size_t i = 0; i < upto && i < s->n; i += 61)
        CHECKF(s->p[i] == th_pat(s->seed, i), "block %p byte %zu", (void *)s->p, i);
}

static void *run(void *arg)
{
    long me = (long)arg;
    uint64_t r = 0x1234567ull * (uint64_t)(me + 1);
    struct slot mine[SLOTS] = {{0}};
    for (int round = 0; round < ROUNDS; round++) {
        struct slot *s = &mine[th_rand(&r) % SLOTS];
        if (s->p) {
            check(s, s->n);
            switch (th_rand(&r) % 4) {
            case 0: {
                size_t n = pick_size(&r);
                unsigned char *q = realloc(s->p, n);
                CHECK(q != NULL);
                s->p = q;
                check(s, n);
                s->n = n;
                fill(s);
                continue;
            }
            case 1: {
                // hand it to another thread, take one back
                pthread_mutex_lock(&handoff_lock);
                struct slot *h = &handoff[(me + 1) % THREADS][th_rand(&r) % SLOTS];
                struct slot t = *h;
                *h = *s;
                *s = t;
                pthread_mutex_unlock(&handoff_lock);
                continue;
            }
            default:
                free(s->p);
                s->p = NULL;
                continue;
            }
        }
        s->n = pick_size(&r);
        s->seed = th_rand(&r);
        switch (th_rand(&r) % 4) {
        case 0:
            s->p = calloc(1, s->n);
            CHECK(s->p != NULL);
            for (size_t i = 0; i < s->n; i += 53)
                CHECKF(s->p[i] == 0, "calloc byte %zu", i);
            break;
        case 1: {
            size_t a = (size_t)1 << th_rand_range(&r, 4, 14);
            s->p = aligned_alloc(a, (s->n + a - 1) / a * a);
            CHECK(s->p != NULL && (uintptr_t)s->p % a == 0);
            break;
        }
        case 2: {
            void *q = NULL;
            size_t a = (size_t)1 << th_rand_range(&r, 3, 13);
            CHECK(posix_memalign(&q, a, s->n) == 0 && (uintptr_t)q % a == 0);
            s->p = q;
            break;
        }
        default:
            s->p = malloc(s->n);
            CHECK(s->p != NULL);
        }
        CHECK(malloc_usable_size(s->p) >= s->n);
        fill(s);
    }
    for (int i = 0; i < SLOTS; i++)
        if (mine[i].p) {
            check(&mine[i], mine[i].n);
            free(mine[i].p);
        }
    return NULL;
}

int main(void)
{
    pthread_t t[THREADS];
    for (long i = 0; i < THREADS; i++)
        CHECK(pthread_create(&t[i], NULL, run, (void *)i) == 0);
    for (int i = 0; i < THREADS; i++)
        CHECK(pthread_join(t[i], NULL) == 0);
    for (int i = 0; i < THREADS; i++)
        for (int j = 0; j < SLOTS; j++)
            if (handoff[i][j].p) {
                check(&handoff[i][j], handoff[i][j].n);
                free(handoff[i][j].p);
            }
    int (*dump)(const char *) = (int (*)(const char *))dlsym(RTLD_DEFAULT, "xa_prof_dump");
    char path[128];
    snprintf(path, sizeof path, "target/c-tests/prof_stress.%d.heap", (int)getpid());
    CHECK(dump != NULL && dump(path) == 0);
    FILE *f = fopen(path, "r");
    CHECK(f != NULL);
    char line[8192];
    int live = 0, alloc = 0;
    while (fgets(line, sizeof line, f)) {
        unsigned long size;
        if (sscanf(line, "live %lu", &size) == 1 && size > 4096)
            live++;
        alloc += strncmp(line, "alloc ", 6) == 0;
    }
    fclose(f);
    unlink(path);
    CHECKF(live == 0, "%d large samples still live after everything was freed", live);
    CHECK(alloc > 0);
    printf("ok\n");
    return 0;
}

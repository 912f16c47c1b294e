// mode: preload direct
// expect: abort
// stderr: xalloc: free(): double free $PTR
//
// The main thread allocates small blocks; a second thread frees 20 of them
// (filling its cache for the class, which keeps at most 16) and then block
// `a`, which therefore is on its way home: on the second thread's chain of
// blocks of that slab, or on the slab's remote list.  Before the main thread
// takes it in, it frees `a` a second time: caught as a double free (the
// block carries the free mark).
// The second thread stays alive until then.  glibc is not covered: the block
// is in a fastbin below its top, which glibc does not search.
#include "testhelper.h"

#include <pthread.h>

#define FILL 20

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cond = PTHREAD_COND_INITIALIZER;
static int freed, finish;
static void *blocks[FILL];
static void *a;

static void *freer(void *arg)
{
    (void)arg;
    void *own = malloc(th_size(48));
    CHECK(own != NULL);
    free(own);
    for (int i = 0; i < FILL; i++)
        free(blocks[i]);
    free(a);
    pthread_mutex_lock(&lock);
    freed = 1;
    pthread_cond_broadcast(&cond);
    while (!finish)
        pthread_cond_wait(&cond, &lock);
    pthread_mutex_unlock(&lock);
    return NULL;
}

int main(void)
{
    for (int i = 0; i < FILL; i++) {
        blocks[i] = malloc(th_size(48));
        CHECK(blocks[i] != NULL);
    }
    a = malloc(th_size(48));
    CHECK(a != NULL);
    memset(a, 0x78, 48);
    th_announce_ptr(a);
    pthread_t t;
    CHECK(pthread_create(&t, NULL, freer, NULL) == 0);
    pthread_mutex_lock(&lock);
    while (!freed)
        pthread_cond_wait(&cond, &lock);
    pthread_mutex_unlock(&lock);
    free(th_launder(a));
    pthread_mutex_lock(&lock);
    finish = 1;
    pthread_cond_broadcast(&cond);
    pthread_mutex_unlock(&lock);
    pthread_join(t, NULL);
    th_misuse_not_detected("free of a block another thread freed to its owner's stack");
}

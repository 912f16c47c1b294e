// mode: preload direct
// expect: abort
// stderr: xalloc: free(): double free $PTR
//
// The main thread allocates a small block, a second thread frees it (the
// block then waits in that thread's cache: a thread keeps a few blocks of
// other threads' slabs), and while that thread is still alive and the block
// still cached there, the main thread frees it again: caught as a double
// free.  The second thread allocates and frees a block of the class first,
// so it has a cache.  glibc is not covered: the block sits in the other
// thread's tcache, which the main thread's double-free check does not search.
#include "testhelper.h"

#include <pthread.h>

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cond = PTHREAD_COND_INITIALIZER;
static int freed, finish;
static void *shared;

static void *freer(void *arg)
{
    (void)arg;
    void *own = malloc(th_size(48));
    CHECK(own != NULL);
    free(own);
    free(shared);
    pthread_mutex_lock(&lock);
    freed = 1;
    pthread_cond_broadcast(&cond);
    while (!finish) /* stay alive: an exiting thread sends its cache home */
        pthread_cond_wait(&cond, &lock);
    pthread_mutex_unlock(&lock);
    return NULL;
}

int main(void)
{
    shared = malloc(th_size(48));
    CHECK(shared != NULL);
    memset(shared, 0x77, 48);
    th_announce_ptr(shared);
    pthread_t t;
    CHECK(pthread_create(&t, NULL, freer, NULL) == 0);
    pthread_mutex_lock(&lock);
    while (!freed)
        pthread_cond_wait(&cond, &lock);
    pthread_mutex_unlock(&lock);
    free(th_launder(shared));
    /* Not reached if the double free is caught. */
    pthread_mutex_lock(&lock);
    finish = 1;
    pthread_cond_broadcast(&cond);
    pthread_mutex_unlock(&lock);
    pthread_join(t, NULL);
    th_misuse_not_detected("free of a block another thread freed and still caches");
}

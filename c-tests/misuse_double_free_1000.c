// mode: preload direct glibc
// expect: abort
// stderr: xalloc: free(): double free $PTR
// stderr@glibc: free(): double free detected in tcache 2
//
// A small block (48 bytes) is freed, then 1000 other blocks of the same size
// class are freed, then the first one is freed again: caught wherever the
// block waits by then (the thread's cache or its slab's free lists), since
// a freed block keeps the free mark until it is handed out again.
//
// With 1000 the frees pass the cache's size and several periodic ticks (one
// every 256 frees), and fill the slab's own free list.
#include "testhelper.h"

#define OTHERS 1000

int main(void)
{
    static void *o[OTHERS];
    void *a = malloc(th_size(48));
    CHECK(a != NULL);
    memset(a, 0x33, 48);
    for (int i = 0; i < OTHERS; i++) {
        o[i] = malloc(th_size(48));
        CHECK(o[i] != NULL && o[i] != a);
        memset(o[i], 0x44, 48);
    }
    th_announce_ptr(a); /* before the frees: printing may allocate */
    free(a);
    for (int i = 0; i < OTHERS; i++)
        free(o[i]);
    free(th_launder(a));
    th_misuse_not_detected("free(a) after 1000 other frees of its class");
}

// mode: preload direct
// expect: abort
// stdout: XALLOC_TEST_PTR=
// stderr: free(): double free
// stderr: $PTR
// timeout: 120
//
// A block of a waiting thread's slab, freed by the thread that borrowed it and kept on that
// thread's borrowed list, is freed again: the second free is reported as a double free (see
// idle_owner_borrow.c for the set-up).
#define DOUBLE_FREE 1
#include "idle_owner_borrow.c"

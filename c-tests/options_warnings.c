// mode: preload direct
// env: XALLOC_STATS=maybe
// env: XALLOC_DIRTY_CAP=lots
// env: XALLOC_PURGE_DELAY_MS=-5
// env: XALLOC_STAT=1
// env: XALLOC_VERBOSE=Yes
// stderr: xalloc: XALLOC_STATS=maybe: not valid (accepted: 1, true, yes, on or 0, false, no, off); using the default, off
// stderr: xalloc: XALLOC_DIRTY_CAP=lots: not valid (accepted: a number of bytes
// stderr: xalloc: XALLOC_PURGE_DELAY_MS=-5: not valid (accepted: a whole number of milliseconds); using the default, 100
// stderr: xalloc: XALLOC_STAT=1: unknown option, ignored (options: XALLOC_PURGE_DELAY_MS
// stderr: options in force (pid
// stderr: xalloc:   XALLOC_DIRTY_CAP=8M (default)
// stderr: xalloc:   XALLOC_STATS=off (default)
// stderr: xalloc:   XALLOC_VERBOSE=on
//
// Options answer back: bad values and a misspelt name get one warning line
// each (and the defaults stay), values are case-insensitive (Yes), and
// XALLOC_VERBOSE prints the options in force. The harness's own XALLOC_TEST_*
// variables draw no warning.
#include "testhelper.h"

int main(void)
{
    void *p = malloc(100);
    CHECK_OWNED(p);
    free(p);
    printf("ok\n");
    return 0;
}

/*
 * xa_stats() for tests that also build without linking xalloc: the function is looked up
 * with dlsym (through th_sym), so include this after testhelper.h and xalloc.h.
 *
 *   - th_have_xa_stats(): whether xa_stats is there (the test runs on xalloc);
 *   - th_xa_stats(): a snapshot (aborts the test if xa_stats fails or is missing).
 */
#ifndef XALLOC_XA_STATS_HELPER_H
#define XALLOC_XA_STATS_HELPER_H

TH_UNUSED static int th_have_xa_stats(void)
{
    return th_sym("xa_stats", 0) != NULL;
}

TH_UNUSED static xa_stats_t th_xa_stats(void)
{
    void *sym = th_sym("xa_stats", 1);
    int (*stats)(xa_stats_t *);
    CHECK(sym != NULL);
    memcpy(&stats, &sym, sizeof stats);
    xa_stats_t s;
    memset(&s, 0, sizeof s);
    s.version = XA_STATS_VERSION;
    CHECK(stats(&s) == 0);
    return s;
}

#endif

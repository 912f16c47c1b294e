// mode: preload direct
//
// The statistics API: xa_stats fills the layout version the caller asks for
// (and refuses 0 or a newer one), counts calloc, realloc, aligned, medium and
// huge calls, and reports peaks; xa_class_stats gives each size class; the
// version is the same in the header, xa_version() and malloc_info.
#include "testhelper.h"

#include "xalloc.h"

typedef int (*stats_fn)(xa_stats_t *);
typedef int (*class_fn)(size_t, xa_class_stats_t *);
typedef const char *(*version_fn)(void);

int main(void)
{
    stats_fn stats;
    class_fn class_stats;
    version_fn version;
    void *s = th_sym("xa_stats", 1), *c = th_sym("xa_class_stats", 1), *v = th_sym("xa_version", 1);
    memcpy(&stats, &s, sizeof s);
    memcpy(&class_stats, &c, sizeof c);
    memcpy(&version, &v, sizeof v);

    CHECKF(strcmp(version(), XALLOC_VERSION_STRING) == 0, "%s", version());
    char vs[64];
    snprintf(vs, sizeof vs, "%d.%d.%d", XALLOC_VERSION_MAJOR, XALLOC_VERSION_MINOR,
             XALLOC_VERSION_PATCH);
    CHECK(strcmp(vs, XALLOC_VERSION_STRING) == 0);

    xa_stats_t a = {.version = 0};
    CHECK(stats(&a) == -1);
    a.version = XA_STATS_VERSION + 1;
    CHECK(stats(&a) == -1);
    CHECK(stats(NULL) == -1);
    a.version = XA_STATS_VERSION;
    CHECK(stats(&a) == 0);
    CHECK(a.version == XA_STATS_VERSION);

    void *small = calloc(4, 25);
    void *r = realloc(NULL, 50);
    r = realloc(r, 5000);
    void *al = NULL;
    CHECK(posix_memalign(&al, 256, 100) == 0);
    void *med = malloc(300000);
    void *huge = malloc(40 * TH_MIB);
    memset(huge, 1, 4096);
    xa_stats_t b = {.version = XA_STATS_VERSION};
    CHECK(stats(&b) == 0);
    CHECK(b.calloc_calls >= a.calloc_calls + 1);
    CHECK(b.realloc_calls >= a.realloc_calls + 2);
    CHECK(b.aligned_calls >= a.aligned_calls + 1);
    CHECK(b.medium_allocs >= a.medium_allocs + 1);
    CHECK(b.huge_allocs >= a.huge_allocs + 1);
    CHECK(b.huge_in_use >= 40 * TH_MIB && b.huge_count >= 1);
    CHECK(b.huge_peak >= 40 * TH_MIB);
    CHECK(b.in_use >= b.small_in_use + b.medium_in_use);
    CHECK(b.peak_pages >= b.medium_in_use);
    CHECK(b.process_rss > 0 && b.process_rss_peak >= b.process_rss / 2);
    CHECK(b.purged <= b.free_pages);
    free(huge);
    free(med);
    xa_stats_t d = {.version = XA_STATS_VERSION};
    CHECK(stats(&d) == 0);
    CHECK(d.huge_frees >= b.huge_frees + 1 && d.medium_frees >= b.medium_frees + 1);
    CHECK(d.huge_peak >= 40 * TH_MIB);

    /* The class of a 100-byte block has a slab with a block handed out. */
    size_t found = XA_NUM_CLASSES;
    for (size_t i = 0; i < XA_NUM_CLASSES; i++) {
        xa_class_stats_t cs;
        CHECK(class_stats(i, &cs) == 0);
        CHECK(cs.used <= cs.blocks);
        CHECK(cs.blocks * cs.size + cs.tail_waste == cs.pages * 4096);
        if (cs.size >= 100 && found == XA_NUM_CLASSES) {
            found = i;
            CHECKF(cs.slabs >= 1 && cs.used >= 1, "class %zu: %zu slabs, %zu used", i, cs.slabs,
                   cs.used);
        }
    }
    CHECK(found < XA_NUM_CLASSES);
    xa_class_stats_t none;
    CHECK(class_stats(XA_NUM_CLASSES, &none) == -1);
    CHECK(class_stats(0, NULL) == -1);

    char *buf = NULL;
    size_t len = 0;
    FILE *ms = open_memstream(&buf, &len);
    CHECK(malloc_info(0, ms) == 0);
    fclose(ms);
    char want[64];
    snprintf(want, sizeof want, "<malloc version=\"xalloc-%s\">", XALLOC_VERSION_STRING);
    CHECKF(strstr(buf, want) != NULL, "%s", buf);
    free(buf);

    free(small);
    free(r);
    free(al);
    printf("ok\n");
    return 0;
}

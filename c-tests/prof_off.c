// mode: preload direct
// libs: -ldl
// stdout: ok
//
// With the profiler off (the default), xa_prof_dump() writes nothing and
// returns ENODEV; xa_heap_map() with no file named and none set returns
// EINVAL, and with a file writes a heap map even so.
#include "testhelper.h"

#include <dlfcn.h>
#include <errno.h>

typedef int (*dump_fn)(const char *);

int main(void)
{
    dump_fn dump = (dump_fn)dlsym(RTLD_DEFAULT, "xa_prof_dump");
    dump_fn map = (dump_fn)dlsym(RTLD_DEFAULT, "xa_heap_map");
    CHECK(dump != NULL && map != NULL);
    char p[128], m[128];
    snprintf(p, sizeof p, "target/c-tests/prof_off.%d.heap", (int)getpid());
    snprintf(m, sizeof m, "target/c-tests/prof_off.%d.map", (int)getpid());
    unlink(p);
    CHECK(dump(p) == ENODEV);
    CHECK(access(p, F_OK) != 0);
    CHECK(map(NULL) == EINVAL);
    void *x = malloc(100);
    CHECK(map(m) == 0);
    FILE *f = fopen(m, "r");
    CHECK(f != NULL);
    char line[256];
    CHECK(fgets(line, sizeof line, f) && strcmp(line, "xalloc-heap-map 1\n") == 0);
    int slabs = 0, end = 0;
    while (fgets(line, sizeof line, f)) {
        slabs += strstr(line, " slab ") != NULL;
        end += strcmp(line, "end\n") == 0;
    }
    fclose(f);
    unlink(m);
    CHECK(slabs >= 1 && end == 1);
    free(x);
    printf("ok\n");
    return 0;
}

// mode: preload direct
//
// The library exports the C++ operators, yet a C program that loads it does
// not load the C++ runtime: the operators find it only when they need it.
#include "testhelper.h"

int main(void)
{
    void *p = malloc(100);
    CHECK_OWNED(p);
    free(p);
    CHECK(th_sym_in_xalloc("_Znwm"));
    CHECK(th_sym_in_xalloc("_ZdlPvm"));
    FILE *maps = fopen("/proc/self/maps", "r");
    CHECK(maps != NULL);
    char line[4096];
    while (fgets(line, sizeof line, maps) != NULL)
        CHECKF(strstr(line, "libstdc++") == NULL && strstr(line, "libc++") == NULL,
               "a C++ runtime is mapped: %s", line);
    fclose(maps);
    CHECK(dlsym(RTLD_DEFAULT, "__cxa_throw") == NULL);
    printf("ok\n");
    return 0;
}

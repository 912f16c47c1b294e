// mode: preload direct
// env: XALLOC_PROF=1
// env: XALLOC_PROF_FILE=/dev/null
// env: XALLOC_PROF_RATE=128
// libs: -ldl -lpthread
// stdout: ok
// timeout: 120
//
// Stack capture from inside malloc must never wait on a lock the sampled
// thread or another holds: four threads throw and catch C++ exceptions
// (each allocates its exception object inside the C++ runtime and runs the
// unwinder) while sampling about every other request, and a fifth opens
// and closes a shared library in a loop (the loader allocates while it holds
// its lock).  Everything must finish, and exceptions carry their values.
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <dlfcn.h>
#include <pthread.h>
#include <stdexcept>
#include <string>
#include <vector>

static std::atomic<int> stop{0};

__attribute__((noinline)) static void thrower(int depth, int v)
{
    std::vector<std::string> junk(3, std::string(40, 'x'));
    if (depth == 0)
        throw std::runtime_error("value " + std::to_string(v));
    thrower(depth - 1, v);
}

static void *exceptions(void *arg)
{
    long me = (long)arg;
    for (int i = 0; i < 3000; i++) {
        try {
            thrower(1 + i % 7, i);
            std::printf("no throw\n");
            std::exit(1);
        } catch (const std::runtime_error &e) {
            std::string want = "value " + std::to_string(i);
            if (want != e.what()) {
                std::printf("thread %ld: got %s want %s\n", me, e.what(), want.c_str());
                std::exit(1);
            }
        }
    }
    return nullptr;
}

static void *loader(void *)
{
    int n = 0;
    while (!stop.load()) {
        void *h = dlopen("libm.so.6", RTLD_NOW | RTLD_LOCAL);
        if (!h) {
            std::printf("dlopen: %s\n", dlerror());
            std::exit(1);
        }
        void *f = dlsym(h, "cos");
        if (!f) {
            std::printf("dlsym failed\n");
            std::exit(1);
        }
        dlclose(h);
        void *h2 = dlopen("libnonexistent-xalloc-test.so", RTLD_NOW);
        if (h2)
            dlclose(h2);
        n++;
    }
    return nullptr;
}

int main()
{
    pthread_t t[5];
    for (long i = 0; i < 4; i++)
        pthread_create(&t[i], nullptr, exceptions, (void *)i);
    pthread_create(&t[4], nullptr, loader, nullptr);
    for (int i = 0; i < 4; i++)
        pthread_join(t[i], nullptr);
    stop = 1;
    pthread_join(t[4], nullptr);
    std::printf("ok\n");
    return 0;
}

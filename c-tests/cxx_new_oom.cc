// mode: preload direct glibc
//
// What operator new does when memory runs out, as the standard says: with no
// new_handler it throws std::bad_alloc (plain, array and aligned forms) and the
// nothrow forms return null; with a handler it calls the handler in a loop, so
// a handler that frees a reserve lets the retry succeed; an exception thrown by
// the handler leaves the throwing forms as is, and the nothrow forms return
// null instead. Memory is made to run out with RLIMIT_AS around a reserve.
#include "testhelper.h"

#include <new>
#include <stdexcept>
#include <sys/resource.h>

namespace {

const size_t impossible = SIZE_MAX - 4096;
const size_t reserve_size = 256 * TH_MIB;
const size_t wanted = 200 * TH_MIB;

void *reserve;
int handler_calls;

void free_reserve_handler()
{
    handler_calls++;
    CHECK(reserve != nullptr);
    ::operator delete(reserve);
    reserve = nullptr;
}

void throwing_handler()
{
    handler_calls++;
    throw std::bad_alloc();
}

void runtime_error_handler()
{
    handler_calls++;
    throw std::runtime_error("from the handler");
}

void give_up_after_three()
{
    if (++handler_calls == 3)
        std::set_new_handler(nullptr);
}

size_t vm_size()
{
    FILE *f = fopen("/proc/self/statm", "r");
    CHECK(f != nullptr);
    unsigned long pages = 0;
    CHECK(fscanf(f, "%lu", &pages) == 1);
    fclose(f);
    return (size_t)pages * th_page_size();
}

// Take a reserve, then limit the address space so that `wanted` more bytes do not fit until
// the reserve is given back.
struct Squeeze {
    struct rlimit old;
    Squeeze()
    {
        reserve = ::operator new(reserve_size);
        memset(reserve, 1, 4096);
        CHECK(getrlimit(RLIMIT_AS, &old) == 0);
        struct rlimit lim = old;
        lim.rlim_cur = vm_size() + 128 * TH_MIB;
        CHECK(setrlimit(RLIMIT_AS, &lim) == 0);
    }
    ~Squeeze()
    {
        CHECK(setrlimit(RLIMIT_AS, &old) == 0);
        ::operator delete(reserve);
        reserve = nullptr;
    }
};

template <class F> bool throws_bad_alloc(F f)
{
    try {
        f();
    } catch (const std::bad_alloc &) {
        return true;
    }
    return false;
}

} // namespace

int main()
{
    // No handler: bad_alloc, or null from the nothrow forms.
    CHECK(std::get_new_handler() == nullptr);
    CHECK(throws_bad_alloc([] { th_launder(::operator new(th_size(impossible))); }));
    CHECK(throws_bad_alloc([] { th_launder(::operator new[](th_size(impossible))); }));
    CHECK(throws_bad_alloc(
        [] { th_launder(::operator new(th_size(impossible), std::align_val_t(64))); }));
    CHECK(throws_bad_alloc(
        [] { th_launder(::operator new[](th_size(impossible), std::align_val_t(4096))); }));
    CHECK(throws_bad_alloc([] { th_launder(new char[th_size(impossible)]); }));
    CHECK(::operator new(th_size(impossible), std::nothrow) == nullptr);
    CHECK(::operator new[](th_size(impossible), std::nothrow) == nullptr);
    CHECK(::operator new(th_size(impossible), std::align_val_t(256), std::nothrow) == nullptr);
    CHECK(::operator new[](th_size(impossible), std::align_val_t(256), std::nothrow) == nullptr);
    CHECK(new (std::nothrow) char[th_size(impossible)] == nullptr);
    // The exception object is a real std::bad_alloc.
    try {
        th_launder(::operator new(th_size(impossible)));
        CHECK(!"no exception");
    } catch (const std::exception &e) {
        CHECK(dynamic_cast<const std::bad_alloc *>(&e) != nullptr);
        CHECK(strlen(e.what()) > 0);
    }

    // A handler that frees a reserve: the retry succeeds, for each form.
    for (int form = 0; form < 4; form++) {
        Squeeze s;
        handler_calls = 0;
        std::set_new_handler(free_reserve_handler);
        void *p = nullptr;
        switch (form) {
        case 0: p = ::operator new(wanted); break;
        case 1: p = ::operator new[](wanted, std::nothrow); break;
        case 2: p = ::operator new(wanted, std::align_val_t(4096)); break;
        case 3: p = ::operator new[](wanted, std::align_val_t(64), std::nothrow); break;
        }
        std::set_new_handler(nullptr);
        CHECKF(p != nullptr, "form %d", form);
        CHECKF(handler_calls == 1, "form %d: handler called %d times", form, handler_calls);
        memset(p, 2, 4096);
        CHECK_OWNED(p);
        if (form >= 2)
            ::operator delete(p, std::align_val_t(form == 2 ? 4096 : 64));
        else
            ::operator delete(p);
    }

    // The handler runs until it gives up; then bad_alloc (or null).
    handler_calls = 0;
    std::set_new_handler(give_up_after_three);
    CHECK(throws_bad_alloc([] { th_launder(::operator new(th_size(impossible))); }));
    CHECK(handler_calls == 3);
    handler_calls = 0;
    std::set_new_handler(give_up_after_three);
    CHECK(::operator new(th_size(impossible), std::nothrow) == nullptr);
    CHECK(handler_calls == 3);

    // A handler that throws: the throwing forms pass its exception on...
    handler_calls = 0;
    std::set_new_handler(throwing_handler);
    CHECK(throws_bad_alloc([] { th_launder(::operator new(th_size(impossible))); }));
    CHECK(handler_calls == 1);
    std::set_new_handler(runtime_error_handler);
    bool caught = false;
    try {
        th_launder(::operator new(th_size(impossible), std::align_val_t(32)));
    } catch (const std::runtime_error &e) {
        caught = strcmp(e.what(), "from the handler") == 0;
    }
    CHECK(caught);
    CHECK(handler_calls == 2);
    // ... and the nothrow forms return null (the exception is caught and destroyed).
    for (int i = 0; i < 1000; i++) {
        std::set_new_handler(i % 2 ? throwing_handler : runtime_error_handler);
        CHECK(::operator new(th_size(impossible), std::nothrow) == nullptr);
        CHECK(::operator new[](th_size(impossible), std::align_val_t(128), std::nothrow) ==
              nullptr);
    }
    CHECK(handler_calls == 2002);
    CHECK(std::uncaught_exceptions() == 0);
    std::set_new_handler(nullptr);

    // Normal allocation still works afterwards.
    char *ok = new char[100];
    CHECK_OWNED(ok);
    delete[] ok;
    printf("ok\n");
    return 0;
}

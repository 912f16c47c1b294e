// mode: preload direct glibc
//
// The C++ operators from the library: all 20 forms of operator new/delete
// resolve into it; over-aligned types (alignas(64) to alignas(65536)) get
// aligned blocks, single and arrays; sized and unsized deletes are mixed freely
// (delete of a complete type is sized, ::operator delete(p) is not, arrays of
// types with destructors pass the size with the array cookie); explicit sizes
// and alignments over small, medium and huge blocks; new of 0 bytes.
#include "testhelper.h"

#include <new>
#include <string>
#include <vector>

namespace {

const char *const operators[] = {
    "_Znwm", "_Znam", "_ZnwmRKSt9nothrow_t", "_ZnamRKSt9nothrow_t",
    "_ZnwmSt11align_val_t", "_ZnamSt11align_val_t", "_ZnwmSt11align_val_tRKSt9nothrow_t",
    "_ZnamSt11align_val_tRKSt9nothrow_t", "_ZdlPv", "_ZdaPv", "_ZdlPvm", "_ZdaPvm",
    "_ZdlPvRKSt9nothrow_t", "_ZdaPvRKSt9nothrow_t", "_ZdlPvSt11align_val_t",
    "_ZdaPvSt11align_val_t", "_ZdlPvmSt11align_val_t", "_ZdaPvmSt11align_val_t",
    "_ZdlPvSt11align_val_tRKSt9nothrow_t", "_ZdaPvSt11align_val_tRKSt9nothrow_t",
};

template <size_t A> struct alignas(A) Over {
    unsigned char bytes[A / 2 + 3];
    Over() { memset(bytes, 0x5c, sizeof bytes); }
    ~Over()
    {
        for (unsigned char b : bytes)
            CHECK(b == 0x5c);
    }
};

template <size_t A> void over_aligned()
{
    std::vector<Over<A> *> v;
    for (int i = 0; i < 40; i++) {
        auto *p = new Over<A>;
        CHECKF(th_aligned(p, A), "new Over<%zu> = %p", A, (void *)p);
        CHECK_OWNED(p);
        v.push_back(p);
    }
    for (size_t i = 0; i < v.size(); i++) {
        if (i % 2)
            delete v[i]; // sized, aligned
        else {
            v[i]->~Over<A>();
            ::operator delete(v[i], std::align_val_t(A)); // unsized, aligned
        }
    }
    for (size_t n : {1, 3, 17}) {
        auto *arr = new Over<A>[n];
        CHECK(th_aligned(arr, A));
        delete[] arr; // array with a cookie: sized array delete
    }
}

struct WithDtor {
    std::string s;
    WithDtor() : s(40, 'w') {}
};

} // namespace

int main()
{
    if (th_expect_xalloc())
        for (const char *name : operators)
            CHECKF(th_sym_in_xalloc(name), "%s resolves to %s", name,
                   th_sym_origin(name) ? th_sym_origin(name) : "(nothing)");

    over_aligned<64>();
    over_aligned<256>();
    over_aligned<4096>();
    over_aligned<65536>();

    // Sized and unsized deletes of the same kinds of objects.
    for (int i = 0; i < 2000; i++) {
        size_t n = (size_t)(i * 7919) % 5000 + 1;
        void *p = ::operator new(n);
        memset(p, 0x33, n);
        CHECK_OWNED(p);
        if (i % 3 == 0)
            ::operator delete(p, n);
        else if (i % 3 == 1)
            ::operator delete(p);
        else
            ::operator delete[](th_launder(p), n);
    }
    for (size_t n : {(size_t)0, (size_t)1, (size_t)16, (size_t)17, (size_t)32768, (size_t)32769,
                     (size_t)100000, (size_t)8 * TH_MIB + 1, (size_t)40 * TH_MIB}) {
        void *p = ::operator new(n);
        CHECK(p != nullptr);
        CHECK_OWNED(p);
        ::operator delete(p, n);
        p = ::operator new[](n);
        ::operator delete[](p, n);
        for (size_t a : {(size_t)8, (size_t)16, (size_t)32, (size_t)64, (size_t)512,
                         (size_t)4096, (size_t)65536, (size_t)1 << 21}) {
            void *q = ::operator new(n, std::align_val_t(a));
            CHECKF(th_aligned(q, a), "new(%zu, align %zu) = %p", n, a, q);
            CHECK_OWNED(q);
            if (n)
                memset(q, 0x44, n < 4096 ? n : 4096);
            if (a % 3)
                ::operator delete(q, n, std::align_val_t(a));
            else
                ::operator delete(q, std::align_val_t(a));
            q = ::operator new[](n, std::align_val_t(a), std::nothrow);
            CHECK(q != nullptr && th_aligned(q, a));
            ::operator delete[](q, n, std::align_val_t(a));
        }
    }
    // new of 0 bytes: distinct, non-null.
    void *z1 = ::operator new(0), *z2 = ::operator new(0);
    CHECK(z1 != nullptr && z2 != nullptr && z1 != z2);
    ::operator delete(z1, (size_t)0);
    ::operator delete(z2);
    // Nothrow deletes and deletes of null.
    void *nt = ::operator new(50, std::nothrow);
    ::operator delete(nt, std::nothrow);
    ::operator delete[](::operator new[](70, std::nothrow), std::nothrow);
    ::operator delete(::operator new(70, std::align_val_t(128), std::nothrow),
                      std::align_val_t(128), std::nothrow);
    ::operator delete[](::operator new[](70, std::align_val_t(128), std::nothrow),
                        std::align_val_t(128), std::nothrow);
    ::operator delete(nullptr);
    ::operator delete(nullptr, (size_t)24);
    ::operator delete[](nullptr, (size_t)24, std::align_val_t(64));

    // Arrays of a type with a destructor: the compiler passes the size including its cookie.
    for (size_t n = 1; n < 300; n += 37) {
        WithDtor *w = new WithDtor[n];
        CHECK(w[n - 1].s.size() == 40);
        delete[] w;
    }
    // Containers use sized deletes throughout.
    std::vector<std::string> v;
    for (int i = 0; i < 20000; i++)
        v.emplace_back(std::to_string(i) + std::string((size_t)i % 100, 'x'));
    v.clear();
    v.shrink_to_fit();
    printf("ok\n");
    return 0;
}

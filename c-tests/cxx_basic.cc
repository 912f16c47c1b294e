// mode: preload direct glibc
//
// C++ on top of the allocator: new/delete of many objects (scalar and
// array), std::vector<std::string> growth, std::map churn, exceptions
// thrown and caught, aligned new of alignas(128)/alignas(4096) types,
// objects handed between std::threads, and thread_local destructors that
// allocate and free.
#include "testhelper.h"

#include <atomic>
#include <condition_variable>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace {

struct Base {
    virtual ~Base() = default;
    virtual uint64_t value() const = 0;
};

struct Small : Base {
    uint64_t v;
    explicit Small(uint64_t x) : v(x) {}
    uint64_t value() const override { return v; }
};

struct Big : Base {
    uint64_t v;
    char payload[3000];
    explicit Big(uint64_t x) : v(x) { memset(payload, (int)(x & 0x7f), sizeof payload); }
    uint64_t value() const override
    {
        for (char c : payload)
            CHECK(c == (char)(v & 0x7f));
        return v;
    }
};

struct alignas(128) Aligned128 {
    uint64_t a[3];
};

struct alignas(4096) AlignedPage {
    char bytes[100];
};

std::string make_string(size_t i)
{
    // longer than the small-string buffer, so it lives on the heap
    return "string number " + std::to_string(i) + " with some padding text " +
           std::string(i % 50, 'x');
}

void objects()
{
    std::vector<Base *> v;
    for (uint64_t i = 0; i < 50000; i++) {
        if (i % 10 == 0)
            v.push_back(new Big(i));
        else
            v.push_back(new Small(i));
    }
    for (uint64_t i = 0; i < v.size(); i++)
        CHECK(v[i]->value() == i);
    CHECK_OWNED(v[1]);
    for (Base *b : v)
        delete b;

    for (int round = 0; round < 100; round++) {
        size_t n = (size_t)round * 37 + 1;
        int *arr = new int[n];
        for (size_t i = 0; i < n; i++)
            arr[i] = (int)(i * 3 + (size_t)round);
        for (size_t i = 0; i < n; i++)
            CHECK(arr[i] == (int)(i * 3 + (size_t)round));
        delete[] arr;
    }
    std::unique_ptr<char[]> big(new char[10 * TH_MIB]);
    memset(big.get(), 1, 10 * TH_MIB);
}

void strings()
{
    std::vector<std::string> v;
    for (size_t i = 0; i < 100000; i++)
        v.push_back(make_string(i));
    for (size_t i = 0; i < v.size(); i++)
        CHECK(v[i] == make_string(i));
    v.erase(v.begin(), v.begin() + 50000);
    v.shrink_to_fit();
    for (size_t i = 0; i < v.size(); i++)
        CHECK(v[i] == make_string(i + 50000));
    std::string s;
    for (int i = 0; i < 20000; i++)
        s += "abc";
    CHECK(s.size() == 60000);
    for (size_t i = 0; i < s.size(); i += 3)
        CHECK(s.compare(i, 3, "abc") == 0);
}

void maps()
{
    std::map<int, std::string> m;
    for (int i = 0; i < 50000; i++)
        m.emplace(i * 7 % 50000, make_string((size_t)i));
    CHECK(m.size() == 50000);
    for (int i = 0; i < 50000; i += 2)
        m.erase(i);
    CHECK(m.size() == 25000);
    for (const auto &kv : m) {
        CHECK(kv.first % 2 == 1);
        // key k was inserted at i with i*7 % 50000 == k
        int i = (int)((long)kv.first * 7143 % 50000); // 7143 = 7^-1 mod 50000
        CHECK(kv.second == make_string((size_t)i));
    }
}

void exceptions()
{
    int caught = 0;
    for (int i = 0; i < 2000; i++) {
        try {
            if (i % 2)
                throw std::runtime_error(std::string("failure number ") + std::to_string(i) +
                                         std::string(200, 'e'));
            throw std::vector<int>((size_t)i + 1, i);
        } catch (const std::runtime_error &e) {
            std::string expect = std::string("failure number ") + std::to_string(i);
            CHECK(strncmp(e.what(), expect.c_str(), expect.size()) == 0);
            caught++;
        } catch (const std::vector<int> &v) {
            CHECK(v.size() == (size_t)i + 1 && v.back() == i);
            caught++;
        }
    }
    CHECK(caught == 2000);
}

void aligned_new()
{
    std::vector<Aligned128 *> v;
    for (int i = 0; i < 1000; i++) {
        Aligned128 *p = new Aligned128();
        CHECKF(th_aligned(p, 128), "new Aligned128 returned %p", (void *)p);
        p->a[0] = (uint64_t)i;
        v.push_back(p);
    }
    for (int i = 0; i < 1000; i++) {
        CHECK(v[(size_t)i]->a[0] == (uint64_t)i);
        delete v[(size_t)i];
    }
    Aligned128 *arr = new Aligned128[33];
    CHECK(th_aligned(arr, 128));
    delete[] arr;
    std::vector<Aligned128> vec(500);
    CHECK(th_aligned(vec.data(), 128));
    for (int i = 0; i < 20; i++) {
        AlignedPage *p = new AlignedPage();
        CHECKF(th_aligned(p, 4096), "new AlignedPage returned %p", (void *)p);
        p->bytes[99] = 1;
        delete p;
    }
}

void threads_handoff()
{
    std::mutex mu;
    std::condition_variable cv;
    std::deque<std::unique_ptr<std::vector<uint64_t>>> q;
    const int producers = 2, per = 5000;
    std::atomic<int> done_producers{0};
    std::vector<std::thread> ts;
    for (int p = 0; p < producers; p++) {
        ts.emplace_back([&, p] {
            for (int i = 0; i < per; i++) {
                auto v = std::make_unique<std::vector<uint64_t>>((size_t)(i % 300) + 1);
                for (size_t k = 0; k < v->size(); k++)
                    (*v)[k] = (uint64_t)p * 1000000 + (uint64_t)i + k;
                std::lock_guard<std::mutex> g(mu);
                q.push_back(std::move(v));
                cv.notify_one();
            }
            done_producers++;
            cv.notify_all();
        });
    }
    std::atomic<int> consumed{0};
    for (int c = 0; c < 2; c++) {
        ts.emplace_back([&] {
            for (;;) {
                std::unique_ptr<std::vector<uint64_t>> v;
                {
                    std::unique_lock<std::mutex> l(mu);
                    cv.wait(l, [&] { return !q.empty() || done_producers == producers; });
                    if (q.empty())
                        return;
                    v = std::move(q.front());
                    q.pop_front();
                }
                uint64_t base = (*v)[0];
                for (size_t k = 0; k < v->size(); k++)
                    CHECK((*v)[k] == base + k);
                consumed++;
                // v is destroyed here, on another thread than it was made
            }
        });
    }
    for (auto &t : ts)
        t.join();
    CHECK(consumed == producers * per);
}

std::atomic<int> tl_destroyed{0};

struct ThreadLocalHolder {
    std::vector<std::string> *strings = nullptr;
    ~ThreadLocalHolder()
    {
        if (strings == nullptr)
            return;
        for (size_t i = 0; i < strings->size(); i++)
            CHECK((*strings)[i] == make_string(i));
        delete strings;
        // allocate and free during thread teardown
        std::vector<std::string> tmp;
        for (size_t i = 0; i < 100; i++)
            tmp.push_back(make_string(i));
        void *p = malloc(5000);
        CHECK(p != nullptr);
        memset(p, 1, 5000);
        free(p);
        tl_destroyed++;
    }
};

thread_local ThreadLocalHolder tl_holder;

void thread_local_destructors()
{
    std::vector<std::thread> ts;
    for (int t = 0; t < 8; t++) {
        ts.emplace_back([] {
            tl_holder.strings = new std::vector<std::string>();
            for (size_t i = 0; i < 500; i++)
                tl_holder.strings->push_back(make_string(i));
        });
    }
    for (auto &t : ts)
        t.join();
    CHECK(tl_destroyed == 8);
}

} // namespace

int main()
{
    objects();
    strings();
    maps();
    exceptions();
    aligned_new();
    threads_handoff();
    thread_local_destructors();
    printf("cxx_basic ok\n");
    return 0;
}

// A C++ workload: compiled with g++ (template-heavy, so the compiler itself
// allocates a lot) and then run. operator new/delete in libstdc++ call
// malloc/free, so the program exercises the allocator from several threads
// through std::string, std::map, std::unordered_map, std::vector, std::regex,
// std::shared_ptr and std::function. The output is deterministic.
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <list>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

namespace {

std::uint64_t fnv(const std::string &s, std::uint64_t h = 1469598103934665603ULL) {
    for (unsigned char c : s) {
        h ^= c;
        h *= 1099511628211ULL;
    }
    return h;
}

struct Node {
    std::string key;
    std::vector<int> vals;
    std::shared_ptr<Node> next;
};

std::uint64_t containers(std::uint32_t seed, int n) {
    std::mt19937 rng(seed);
    std::map<std::string, std::vector<std::string>> tree;
    std::unordered_map<std::uint32_t, std::string> hash;
    std::list<std::unique_ptr<Node>> owned;
    std::set<std::uint64_t> seen;
    std::uint64_t h = 0;
    for (int i = 0; i < n; i++) {
        std::uint32_t r = rng();
        std::string k = std::to_string(r % 5000) + "/" + std::string(1 + r % 48, char('a' + r % 26));
        tree[k].push_back(k + std::to_string(i));
        if (tree[k].size() > 8) tree[k].erase(tree[k].begin(), tree[k].begin() + 4);
        hash[r % 20000] = k;
        if (i % 3 == 0) {
            auto node = std::make_unique<Node>();
            node->key = k;
            node->vals.assign(r % 100, int(i));
            owned.push_back(std::move(node));
        }
        if (owned.size() > 3000) owned.pop_front();
        if (i % 1000 == 999) {
            for (auto it = tree.begin(); it != tree.end();) {
                if (fnv(it->first) % 3 == 0) it = tree.erase(it); else ++it;
            }
        }
        seen.insert(fnv(k) % 100000);
    }
    for (const auto &kv : tree) h = fnv(kv.first, h) + kv.second.size();
    std::vector<std::pair<std::uint32_t, std::string>> flat(hash.begin(), hash.end());
    std::sort(flat.begin(), flat.end());
    for (const auto &kv : flat) h = fnv(kv.second, h ^ kv.first);
    for (const auto &p : owned) h += p->vals.size();
    return h ^ seen.size();
}

std::uint64_t regexes(int n) {
    std::ostringstream log;
    std::mt19937 rng(7);
    for (int i = 0; i < n; i++) {
        log << "id=" << i << " user=u" << rng() % 50 << " ms=" << rng() % 1000 << " path=/p/" << rng() % 77 << "\n";
    }
    std::string text = log.str();
    std::regex re(R"(id=(\d+) user=(u\d+) ms=(\d+) path=(\S+))");
    std::map<std::string, long> per_user;
    for (auto it = std::sregex_iterator(text.begin(), text.end(), re); it != std::sregex_iterator(); ++it) {
        per_user[(*it)[2].str()] += std::stol((*it)[3].str());
    }
    std::uint64_t h = 0;
    for (const auto &kv : per_user) h = fnv(kv.first, h) + std::uint64_t(kv.second);
    return h;
}

std::uint64_t closures(int n) {
    std::vector<std::function<std::string(int)>> fns;
    for (int i = 0; i < n; i++) {
        std::string cap(std::size_t(i % 64), 'z');
        fns.emplace_back([cap, i](int x) { return cap + std::to_string(x * i); });
    }
    std::uint64_t h = 0;
    for (int i = 0; i < n; i++) h = fnv(fns[std::size_t(i)](i), h);
    return h;
}

}  // namespace

int main() {
    const int nthreads = 4;
    std::vector<std::uint64_t> results(nthreads);
    std::vector<std::thread> threads;
    for (int t = 0; t < nthreads; t++) {
        threads.emplace_back([t, &results] { results[std::size_t(t)] = containers(100 + std::uint32_t(t), 60000); });
    }
    for (auto &t : threads) t.join();
    for (int t = 0; t < nthreads; t++) std::printf("containers[%d] %016llx\n", t, (unsigned long long)results[std::size_t(t)]);
    std::printf("regex %016llx\n", (unsigned long long)regexes(4000));
    std::printf("closures %016llx\n", (unsigned long long)closures(50000));
    return 0;
}

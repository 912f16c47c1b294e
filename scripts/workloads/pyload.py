#!/usr/bin/env python3
"""An allocation-heavy Python workload with deterministic output.

Run it with PYTHONMALLOC=malloc so that every Python object is allocated
with the C library's malloc (and therefore with xalloc when preloaded),
instead of CPython's own small-object arena allocator.

It builds and tears down many objects of many sizes: JSON documents, regex
matches, dicts/sets/deques/Counters, big sorts, long integers, bytes
growth (realloc), and the same from several threads at once. Each phase
prints a digest; the whole output is identical on every run.

usage: pyload.py [--scale N] [--threads N]
"""

import argparse
import array
import collections
import hashlib
import heapq
import json
import random
import re
import struct
import sys
import threading
import zlib


def digest(obj):
    return hashlib.sha256(repr(obj).encode()).hexdigest()[:16]


def words(rng, n):
    alphabet = "abcdefghijklmnopqrstuvwxyz"
    return [
        "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 12)))
        for _ in range(n)
    ]


def phase_json(rng, scale):
    docs = []
    for i in range(300 * scale):
        doc = {
            "id": i,
            "name": "item-%d" % i,
            "tags": words(rng, rng.randint(0, 8)),
            "price": round(rng.random() * 1000, 3),
            "nested": {
                "values": [rng.randint(-(10**9), 10**9) for _ in range(rng.randint(0, 40))],
                "flags": {w: rng.random() < 0.5 for w in words(rng, 5)},
            },
        }
        docs.append(doc)
    text = json.dumps(docs, sort_keys=True)
    back = json.loads(text)
    assert back == docs
    pretty = json.dumps(back, indent=2, sort_keys=True)
    return len(text), len(pretty), digest(hashlib.sha256(pretty.encode()).hexdigest())


def phase_regex(rng, scale):
    lines = []
    for i in range(4000 * scale):
        lines.append(
            "%s user=%s ip=%d.%d.%d.%d code=%d path=/%s/%s?q=%s"
            % (
                "2024-%02d-%02dT%02d:%02d:%02d" % (
                    rng.randint(1, 12), rng.randint(1, 28),
                    rng.randint(0, 23), rng.randint(0, 59), rng.randint(0, 59)),
                rng.choice(["alice", "bob", "carol", "dave", "eve"]),
                rng.randint(1, 255), rng.randint(0, 255), rng.randint(0, 255), rng.randint(0, 255),
                rng.choice([200, 200, 200, 301, 404, 500]),
                rng.choice(["api", "static", "v1", "v2"]),
                "/".join(words(rng, rng.randint(1, 4))),
                "+".join(words(rng, rng.randint(0, 3))),
            )
        )
    log = "\n".join(lines)
    pat = re.compile(
        r"^(?P<ts>\S+) user=(?P<user>\w+) ip=(?P<ip>[\d.]+) code=(?P<code>\d+) path=(?P<path>[^?]+)\?q=(?P<q>.*)$",
        re.M,
    )
    per_user = collections.Counter()
    per_code = collections.defaultdict(list)
    for m in pat.finditer(log):
        per_user[m["user"]] += 1
        per_code[m["code"]].append(m["path"])
    subst = re.sub(r"(\d+)\.(\d+)\.(\d+)\.(\d+)", lambda m: m.group(4) + "." + m.group(1), log)
    split = re.split(r"[/=?+ ]+", log)
    # many short-lived patterns, to churn the re compile cache
    hits = 0
    for w in words(rng, 300 * scale):
        hits += len(re.findall(re.escape(w[:3]) + r"\w*", log[: 20000]))
    return (
        sorted(per_user.items()),
        {k: len(v) for k, v in sorted(per_code.items())},
        len(subst),
        len(split),
        hits,
    )


def phase_containers(rng, scale):
    d = {}
    s = set()
    dq = collections.deque()
    od = collections.OrderedDict()
    for i in range(60000 * scale):
        k = rng.randint(0, 20000 * scale)
        d[k] = d.get(k, 0) + i
        if i % 3 == 0:
            s.add(str(k) * (1 + k % 7))
        dq.append((k, str(i)))
        if len(dq) > 5000:
            dq.popleft()
        od[k % 3000] = i
        od.move_to_end(k % 3000, last=bool(i & 1))
        if i % 7 == 0 and d:
            d.pop(k, None)
    chain = collections.ChainMap({"a": 1}, d)
    h = []
    for k, v in d.items():
        heapq.heappush(h, (v % 1009, k))
    top = [heapq.heappop(h) for _ in range(min(100, len(h)))]
    return len(d), len(s), digest(sorted(s)[:50]), len(dq), digest(list(od.items())[:50]), len(chain), top[:10]


def phase_sort(rng, scale):
    n = 150000 * scale
    ints = [rng.randint(-(10**12), 10**12) for _ in range(n)]
    strs = [str(x) for x in ints]
    tuples = [(x % 97, str(x)[-3:], x) for x in ints]
    a = sorted(ints)
    b = sorted(strs, key=lambda t: (len(t), t))
    c = sorted(tuples, reverse=True)
    arr = array.array("q", ints)
    arr2 = array.array("q", sorted(arr))
    return digest(a[::1000]), digest(b[::1000]), digest(c[::1000]), arr2[0], arr2[-1]


def phase_bigint_bytes(rng, scale):
    # Large integers and growing bytes objects: many realloc()s of big blocks.
    x = 1
    for i in range(1, 2500 * scale):
        x = x * i + rng.randint(0, 1000)
    digits = "%x" % x  # hex: no digit limit, still a big allocation
    buf = bytearray()
    for i in range(20000 * scale):
        buf += struct.pack("<qd", i * 2654435761 % 2**63, i / 7)
        if i % 1000 == 0:
            buf = bytearray(zlib.decompress(zlib.compress(bytes(buf))))
    chunks = [bytes(rng.getrandbits(8) for _ in range(rng.randint(1, 4096))) for _ in range(200 * scale)]
    joined = b"".join(chunks)
    return len(digits), digits[:20], len(buf), hashlib.sha256(buf).hexdigest()[:16], zlib.crc32(joined)


def thread_worker(seed, scale, out, idx):
    rng = random.Random(seed)
    acc = collections.Counter()
    keep = []
    for i in range(20000 * scale):
        w = "".join(rng.choice("abcdef") for _ in range(rng.randint(1, 30)))
        acc[w[:3]] += 1
        keep.append(w * rng.randint(1, 20))
        if len(keep) > 2000:
            # free from the middle, not in allocation order
            del keep[rng.randint(0, len(keep) - 1000):]
        if i % 5000 == 0:
            json.loads(json.dumps({"k": keep[-100:]}))
    out[idx] = (sorted(acc.most_common(10)), len(keep), digest(keep[-10:]))


def phase_threads(scale, nthreads):
    out = [None] * nthreads
    ts = [threading.Thread(target=thread_worker, args=(1000 + i, scale, out, i)) for i in range(nthreads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--scale", type=int, default=1)
    ap.add_argument("--threads", type=int, default=4)
    args = ap.parse_args()
    rng = random.Random(12345)
    for name, fn in [
        ("json", lambda: phase_json(rng, args.scale)),
        ("regex", lambda: phase_regex(rng, args.scale)),
        ("containers", lambda: phase_containers(rng, args.scale)),
        ("sort", lambda: phase_sort(rng, args.scale)),
        ("bigint+bytes", lambda: phase_bigint_bytes(rng, args.scale)),
        ("threads", lambda: phase_threads(args.scale, args.threads)),
    ]:
        result = fn()
        print("%-13s %s" % (name, digest(result)))
        sys.stdout.flush()
    print("done")


if __name__ == "__main__":
    main()

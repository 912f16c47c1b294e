# CPython workload for scripts/profile-demo/python.sh.
import json, re, collections
words = [("w%d" % i) * (1 + i % 7) for i in range(200000)]
index = collections.defaultdict(list)
for i, w in enumerate(words):
    index[w[:3]].append(i)
docs = [{"id": i, "text": " ".join(words[i:i + 20]), "tags": [w[:2] for w in words[i:i + 5]]} for i in range(0, 150000, 3)]
blob = json.dumps(docs)
back = json.loads(blob)
pat = re.compile(r"w(\d+)w")
hits = [m.group(1) for d in back[:20000] for m in pat.finditer(d["text"])]

import ctypes, os
# at the peak: the profile and the heap map (the library is preloaded, so its xa_* functions
# are in the global scope)
lib = ctypes.CDLL(None)
out = os.environ.get("XALLOC_DEMO_OUT", ".").encode()
assert lib.xa_prof_dump(out + b"/python.heap") == 0
assert lib.xa_heap_map(out + b"/python.map") == 0
print(len(words), len(index), len(back), len(hits))

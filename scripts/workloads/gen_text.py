#!/usr/bin/env python3
"""Write a large deterministic text file: tab-separated records of a word
key, a number and a free-text field, with many duplicate keys. Input for
the sort and xz workloads.

usage: gen_text.py LINES > file
"""

import random
import sys

WORDS = (
    "alloc free span slab buddy page arena cache thread local remote list "
    "lock atomic size class bin chunk block header footer merge split order "
    "bitmap region segment pool map unmap grow shrink align guard canary "
    "Größe Speicher mémoire tas 内存 分配 ヒープ куча"
).split()


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    rng = random.Random(99)
    out = sys.stdout
    batch = []
    choice = rng.choice
    randint = rng.randint
    for i in range(n):
        key = choice(WORDS) + choice(WORDS) + str(randint(0, 999))
        text = " ".join(choice(WORDS) for _ in range(randint(1, 6)))
        batch.append("%s\t%d\t%s\n" % (key, randint(-(10**9), 10**9), text))
        if len(batch) == 10000:
            out.write("".join(batch))
            batch.clear()
    out.write("".join(batch))


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Emit a deterministic `git fast-import` stream: a repository with a long
history (many commits editing many text files, a side branch merged back,
tags), for the git workload. Fixed names and dates make every object id the
same on every run.

usage: gen_git.py [--commits N] [--files N] > history.fi
"""

import argparse
import random
import sys

WORDS = (
    "alloc free span slab buddy page arena cache thread local remote list "
    "lock atomic size class bin chunk block header footer merge split order "
    "bitmap region segment pool map unmap grow shrink align guard canary"
).split()


def line(rng):
    n = rng.randint(2, 12)
    return " ".join(rng.choice(WORDS) for _ in range(n)) + ";\n"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--commits", type=int, default=1200)
    ap.add_argument("--files", type=int, default=40)
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args()
    rng = random.Random(args.seed)
    out = sys.stdout.buffer

    files = {}
    for f in range(args.files):
        files["src/dir%d/file%d.txt" % (f % 5, f)] = [line(rng) for _ in range(rng.randint(50, 400))]

    def data(text):
        b = text.encode()
        out.write(b"data %d\n" % len(b))
        out.write(b)
        out.write(b"\n")

    mark = 0
    t0 = 1_600_000_000
    heads = {"main": None, "side": None}

    def commit(branch, changed, removed, msg, merge=None):
        nonlocal mark
        mark += 1
        when = t0 + mark * 3600
        out.write(b"commit refs/heads/%s\n" % branch.encode())
        out.write(b"mark :%d\n" % mark)
        out.write(b"author Dev %d <dev%d@example.org> %d +0000\n" % (mark % 7, mark % 7, when))
        out.write(b"committer Dev %d <dev%d@example.org> %d +0000\n" % (mark % 7, mark % 7, when))
        data(msg)
        if heads[branch] is not None:
            out.write(b"from :%d\n" % heads[branch])
        if merge is not None:
            out.write(b"merge :%d\n" % merge)
        for path in removed:
            out.write(b"D %s\n" % path.encode())
        for path in changed:
            out.write(b"M 100644 inline %s\n" % path.encode())
            data("".join(files[path]))
        heads[branch] = mark
        return mark

    # initial import
    commit("main", sorted(files), [], "initial import\n")
    heads["side"] = heads["main"]
    side_files = {}
    for i in range(1, args.commits):
        branch = "side" if 300 <= i < 600 and i % 2 == 0 else "main"
        changed, removed = set(), []
        for _ in range(rng.randint(1, 3)):
            path = rng.choice(sorted(files))
            lines = files[path]
            for _ in range(rng.randint(1, 6)):
                op = rng.random()
                pos = rng.randint(0, len(lines))
                if op < 0.5:
                    lines.insert(pos, line(rng))
                elif op < 0.8 and len(lines) > 10:
                    del lines[min(pos, len(lines) - 1)]
                elif lines:
                    lines[min(pos, len(lines) - 1)] = line(rng)
            if branch == "side":
                side_files[path] = True
            changed.add(path)
        if i % 97 == 0:
            path = "src/new/file%d.txt" % i
            files[path] = [line(rng) for _ in range(rng.randint(5, 50))]
            changed.add(path)
        if i % 151 == 0 and len(files) > 10:
            victim = rng.choice(sorted(p for p in files if p not in changed))
            del files[victim]
            removed.append(victim)
        msg = "change %d: %s\n\n%s" % (i, rng.choice(WORDS), "".join(line(rng) for _ in range(rng.randint(0, 4))))
        m = commit(branch, sorted(changed), removed, msg)
        if i % 100 == 0:
            out.write(b"tag v%d\nfrom :%d\ntagger Rel <rel@example.org> %d +0000\n" % (i // 100, m, t0 + m * 3600))
            data("release %d\n" % (i // 100))
        if i == 600:
            # merge the side branch back; the tree is the current state of every file
            commit("main", sorted(files), [], "merge side\n", merge=heads["side"])
    out.write(b"done\n")


if __name__ == "__main__":
    main()

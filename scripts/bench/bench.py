#!/usr/bin/env python3
"""Run xalloc's benchmark suite side by side with glibc, jemalloc, tcmalloc and mimalloc.

Every benchmark (our own programs in scripts/bench/progs/ plus real-program workloads) runs
under every allocator, interleaved (A B C D E, then again in a rotated order, ...), several
times. For each pair the runner keeps the median wall time, CPU time (user + system, from
wait4) and peak RSS (ru_maxrss of the process and the children it waited for), plus the
figures the program prints itself (e.g. resident memory after freeing everything).

It writes, under the output folder:
  bench.md    the tables: per benchmark medians, ratios to mimalloc, geometric means,
              the xalloc / best-peer ratios, instructions per malloc+free pair, the machine
  bench.svg   the chart: time and peak RSS relative to mimalloc, side by side
  summary.md  the short table the README quotes (xalloc against mimalloc and the best peer)
  bench.json  every raw measurement

usage: bench.py [--quick] [--reps N] [--only NAME,...] [--allocs NAME,...] [--out DIR]
                [--threads N] [--no-callgrind] [--no-real] [--scaling 1,2,4,8,16]

With --scaling, only the threaded benchmarks run, at each thread count, and the runner writes
scaling.md, scaling.svg (throughput against threads, a line per allocator) and scaling.json.
"""

import argparse
import json
import math
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
PROGS = os.path.join(HERE, "progs")
WORKLOADS = os.path.join(ROOT, "scripts", "workloads")
LIBDIR = "/usr/lib/x86_64-linux-gnu"

# name -> (library to preload or None, Debian package that ships it)
ALLOCATORS = {
    "glibc": (None, "libc6"),
    "jemalloc": (LIBDIR + "/libjemalloc.so.2", "libjemalloc2"),
    "tcmalloc": (LIBDIR + "/libtcmalloc_minimal.so.4", "libtcmalloc-minimal4"),
    "mimalloc": (LIBDIR + "/libmimalloc.so.2", "libmimalloc2.0"),
    "xalloc": (os.path.join(ROOT, "target", "release", "libxalloc.so"), None),
    # xalloc with its heap profiler on at the default rate (not in the default list: name it
    # with --allocs to measure the profiler's cost)
    "xalloc-prof": (os.path.join(ROOT, "target", "release", "libxalloc.so"), None),
    # xalloc with its arenas on transparent huge pages (XALLOC_HUGE_PAGES=1)
    "xalloc-thp": (os.path.join(ROOT, "target", "release", "libxalloc.so"), None),
}
# XALLOC_BENCH_BASE=<path to another build's libxalloc.so> adds the allocator "xalloc-base",
# to compare a change with the build before it (name it with --allocs).
if os.environ.get("XALLOC_BENCH_BASE"):
    ALLOCATORS["xalloc-base"] = (os.environ["XALLOC_BENCH_BASE"], None)
# environment an allocator runs with
ALLOC_ENV = {"xalloc-prof": {"XALLOC_PROF": "1", "XALLOC_PROF_FILE": "/dev/null"},
             "xalloc-thp": {"XALLOC_HUGE_PAGES": "1"}}
DEFAULT_ALLOCS = ["glibc", "jemalloc", "tcmalloc", "mimalloc", "xalloc"]
BASELINE = "mimalloc"
COLORS = {
    "glibc": "#8c8c8c",
    "jemalloc": "#4e79a7",
    "tcmalloc": "#f28e2b",
    "mimalloc": "#59a14f",
    "xalloc": "#e15759",
    "xalloc-prof": "#b07aa1",
    "xalloc-thp": "#ff9da7",
    "xalloc-base": "#9c755f",
}


def benchmarks(threads, scale, quick):
    """(name, kind, argv-builder, description). kind 'prog' runs target/bench/<prog>."""
    t = str(threads)
    s = str(scale)
    b = []

    def prog(name, exe, *args, desc):
        b.append((name, "prog", [exe, *args, "-s", s], desc))

    prog("churn-fixed", "churn", "-m", "fixed", desc="1 thread, 20k live 64 B blocks, random replace")
    prog("churn-uniform", "churn", "-m", "uniform", desc="1 thread, 20k live blocks of 8-512 B")
    prog("churn-powerlaw", "churn", "-m", "powerlaw", desc="1 thread, 20k live blocks, power-law sizes to 4 KiB")
    prog("order-lifo", "order", "-m", "lifo", desc="allocate 100k blocks, free in reverse order")
    prog("order-fifo", "order", "-m", "fifo", desc="allocate 100k blocks, free in allocation order")
    prog("order-random", "order", "-m", "random", desc="allocate 100k blocks, free in random order")
    prog("realloc-grow", "realloc", "-m", "grow", desc="strings grown by appends, vectors by doubling")
    prog("larson", "larson", "-t", t, desc=f"{t} threads replacing blocks in a shared array (remote frees)")
    prog("handoff", "handoff", "-t", t, desc=f"{t} threads in a ring: batches of 512 blocks of 1-1000 B, half freed "
         "in reverse order, half by the next thread")
    prog("invsq", "invsq", "-t", t, desc=f"{t} threads, each replacing blocks of its own 1000 at random, sizes "
         "8 B-32 KiB with density 1/size^2")
    prog("prodcons-single", "prodcons", "-m", "single", "-t", t, desc="producer/consumer pairs, one block per message")
    prog("prodcons-batch", "prodcons", "-m", "batch", "-t", t, desc="producer/consumer pairs, 64 blocks per message")
    prog("falseshare-scratch", "falseshare", "-m", "scratch", "-t", t, desc="objects from one thread written by others")
    prog("falseshare-thrash", "falseshare", "-m", "thrash", "-t", t, desc="each thread writes its own small objects")
    prog("thread-churn", "threads", "-t", t, desc="threads created and joined in a loop, each allocating")
    prog("migrate", "migrate", "-t", t, desc="rounds of threads whose calloc'd blocks (16 B-2 MiB) pass to "
         "other and later threads through a shared exchange")
    prog("large-touched", "large", "-m", "touched", desc="64 KiB-16 MiB blocks, every page written")
    prog("large-untouched", "large", "-m", "untouched", desc="64 KiB-16 MiB blocks, first and last byte written")
    prog("frag", "frag", "-m", "frag", desc="mixed sizes, free 90%, new size mix; resident memory")
    prog("phase", "phase", desc="256 MiB allocated then freed; resident memory after idle")
    prog("stall", "stall", desc="one thread frees 1 GiB of 64 KiB-1 MiB blocks and idles while another "
         "times small malloc+free pairs; the longest pair is the figure")
    return b


def real_benchmarks(work, quick):
    """Real programs: gcc compiling a generated file, CPython building and dropping objects."""
    b = []
    py = sys.executable or "python3"
    funcs = "60" if quick else "200"
    big = os.path.join(work, "big.c")
    if shutil.which("gcc"):
        with open(big, "w") as f:
            subprocess.run([py, os.path.join(WORKLOADS, "gen_c.py"), "--funcs", funcs], stdout=f, check=True)
        b.append(("gcc", "real", ["gcc", "-O1", "-c", big, "-o", os.path.join(work, "big.o")],
                  f"gcc -O1 on a generated {funcs}-function C file"))
    pyscale = "1" if quick else "2"
    b.append(("python", "real",
              [py, os.path.join(WORKLOADS, "pyload.py"), "--scale", pyscale, "--threads", "2"],
              "CPython (PYTHONMALLOC=malloc): JSON, regex, dicts, sorts, threads"))
    return b


def ensure_peers(allocs):
    missing = [ALLOCATORS[a][1] for a in allocs if ALLOCATORS[a][0] and ALLOCATORS[a][1]
               and not os.path.exists(ALLOCATORS[a][0])]
    if not missing:
        return
    print("bench: installing " + " ".join(missing), flush=True)
    sudo = [] if os.geteuid() == 0 else ["sudo", "-n"]
    subprocess.run(sudo + ["apt-get", "update", "-q"], check=True)
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    subprocess.run(sudo + ["apt-get", "install", "-y", "-q", *missing], check=True, env=env)


def build_progs(bindir):
    os.makedirs(bindir, exist_ok=True)
    srcs = [os.path.join(PROGS, f) for f in sorted(os.listdir(PROGS)) if f.endswith(".c")]
    for src in srcs + [os.path.join(HERE, "measure.c")]:
        exe = os.path.join(bindir, os.path.basename(src)[:-2])
        deps = [src, os.path.join(PROGS, "bench.h")]
        if os.path.exists(exe) and all(os.path.getmtime(d) <= os.path.getmtime(exe) for d in deps if os.path.exists(d)):
            continue
        subprocess.run(["gcc", "-O2", "-g", "-std=gnu11", "-pthread", "-Wall", "-Wextra", "-o", exe, src, "-lm"],
                       check=True)


RESULT = re.compile(r"^result:(.*)$", re.M)


def run_once(measure, argv, lib, extra_env, cwd):
    """Run argv under `lib` through the measure tool (scripts/bench/measure.c)."""
    env = dict(os.environ)
    env.pop("LD_PRELOAD", None)
    pairs = [f"{k}={v}" for k, v in extra_env.items()]
    if lib:
        pairs.append("LD_PRELOAD=" + lib)
    fig = os.path.join(cwd, "measure.out")
    r = subprocess.run([measure, fig, *pairs, "--", *argv], env=env, cwd=cwd, capture_output=True)
    text = r.stdout.decode(errors="replace")
    if r.returncode != 0:
        err = r.stderr.decode(errors="replace")
        raise RuntimeError(f"{' '.join(argv)} under {lib or 'glibc'} exited {r.returncode}: {err[-2000:]}")
    with open(fig) as f:
        wall, cpu, rss, _ = f.read().split()
    extra = {}
    m = RESULT.findall(text)
    if m:
        for kv in m[-1].split():
            k, _, v = kv.partition("=")
            try:
                extra[k] = float(v)
            except ValueError:
                pass
    return {"wall": float(wall), "cpu": float(cpu), "rss_kb": int(rss), "extra": extra}


def fastpath_counts(allocs, sizes, keep=0):
    """Instructions per malloc+free pair from scripts/fastpath-count.sh: (pair in the loop,
    inside the allocator) per allocator and size; `keep` blocks of the size stay live through
    the loop (0: the probe frees the only live block of its page each time)."""
    if not shutil.which("valgrind"):
        print("bench: valgrind missing, no instruction counts", flush=True)
        return {}
    libs = [ALLOCATORS[a][0] or "glibc" for a in allocs]
    out = subprocess.run([os.path.join(ROOT, "scripts", "fastpath-count.sh"), "--keep", str(keep),
                          *map(str, sizes), "--", *libs],
                         capture_output=True, text=True, check=True).stdout.splitlines()
    res = {}
    for a, line in zip(allocs, out[1:]):
        cells = line.split()[1:]
        res[a] = {}
        for size, cell in zip(sizes, cells):
            pair, inside = cell.split("/")
            res[a][size] = {"pair": float(pair), "inside": float(inside)}
        print(f"  {a:9} keep={keep} " + " ".join(f"{s}B:{c}" for s, c in zip(sizes, cells)), flush=True)
    return res


def machine_info(allocs):
    info = {"date": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "cpus": os.cpu_count(), "kernel": platform.release()}
    try:
        with open("/proc/cpuinfo") as f:
            m = re.search(r"model name\s*:\s*(.*)", f.read())
            info["cpu"] = m.group(1) if m else "?"
        with open("/proc/meminfo") as f:
            kb = int(re.search(r"MemTotal:\s*(\d+)", f.read()).group(1))
            info["memory"] = f"{kb / 1048576:.1f} GiB"
    except OSError:
        pass
    info["glibc"] = platform.libc_ver()[1]
    vers = {}
    for a in allocs:
        pkg = ALLOCATORS[a][1]
        if pkg:
            r = subprocess.run(["dpkg-query", "-W", "-f=${Version}", pkg], capture_output=True, text=True)
            vers[a] = r.stdout.strip() or "?"
    r = subprocess.run(["git", "-C", ROOT, "describe", "--always", "--dirty"], capture_output=True, text=True)
    vers["xalloc"] = r.stdout.strip() or "?"
    info["versions"] = vers
    return info


def geomean(xs):
    xs = [x for x in xs if x and x > 0]
    return math.exp(sum(math.log(x) for x in xs) / len(xs)) if xs else float("nan")


def summarize(raw, allocs):
    """Medians per (bench, alloc)."""
    med = {}
    for bench, per in raw.items():
        med[bench] = {}
        for a, runs in per.items():
            if not runs:
                continue
            keys = set().union(*(r["extra"].keys() for r in runs))
            med[bench][a] = {
                "wall": statistics.median(r["wall"] for r in runs),
                "cpu": statistics.median(r["cpu"] for r in runs),
                "rss_kb": statistics.median(r["rss_kb"] for r in runs),
                "extra": {k: statistics.median(r["extra"].get(k, 0) for r in runs) for k in sorted(keys)},
            }
    return med


def fmt_mb(kb):
    return f"{kb / 1024:.1f}"


def fastpath_tables(fp):
    """Markdown tables of instructions per malloc+free, one per probe in `fp` ({probe: {allocator:
    {size: {"pair", "inside"}}}})."""
    L = []
    for probe, title in (("live", "live-block probe (8 kept)"), ("solo", "solo probe")):
        counts = fp.get(probe)
        if not counts:
            continue
        sizes = sorted({s for a in counts for s in counts[a]})
        L.append(f"| {title}: loop / inside | " + " | ".join(f"{s} B" for s in sizes) + " |")
        L.append("|---|" + "---:|" * len(sizes))
        for a in counts:
            L.append(f"| {a} | " + " | ".join(f"{counts[a][s]['pair']:.0f} / {counts[a][s]['inside']:.0f}"
                                              for s in sizes) + " |")
        L.append("")
    return L


LOCKS = re.compile(r"^locks\s+(.*)$", re.M)


def lock_counts(measure, benches, bindir, work):
    """xalloc's shared-lock acquisitions per million operations (the programs' own `ops`), from
    its exit statistics: one extra run of each program benchmark with XALLOC_STATS on."""
    res = {}
    for name, kind, argv, _ in benches:
        if kind != "prog":
            continue
        argv = [os.path.join(bindir, argv[0])] + argv[1:]
        stats = os.path.join(work, "locks.%p.txt")
        for f in os.listdir(work):
            if f.startswith("locks."):
                os.unlink(os.path.join(work, f))
        r = run_once(measure, argv, ALLOCATORS["xalloc"][0], {"XALLOC_STATS_FILE": stats}, work)
        ops = r["extra"].get("ops", 0)
        text = "".join(open(os.path.join(work, f)).read() for f in os.listdir(work)
                       if f.startswith("locks."))
        m = LOCKS.findall(text)
        if not m or not ops:
            continue
        counts = {}
        for part in m[-1].split(", "):
            w = part.split()
            if len(w) >= 2 and w[1].isdigit():
                counts[w[0]] = int(w[1])
        res[name] = {"ops": ops, "per_million": {k: v * 1e6 / ops for k, v in counts.items()}}
        print(f"{name:20} locks per million ops: " + ", ".join(
            f"{k} {v:.0f}" for k, v in res[name]["per_million"].items()), flush=True)
    return res


def lock_table(locks):
    L = ["\n## Shared-lock acquisitions of xalloc, per million operations\n",
         "From one more run of each benchmark with `XALLOC_STATS` on: the acquisitions its exit "
         "report counts, divided by the operations the program reports (`ops`). Zero means the "
         "benchmark never touched the lock after start-up.\n"]
    names = sorted({k for v in locks.values() for k in v["per_million"]})
    L.append("| benchmark | " + " | ".join(names) + " |")
    L.append("|---|" + "---:|" * len(names))
    for n, v in locks.items():
        L.append(f"| {n} | " + " | ".join(f"{v['per_million'].get(k, 0):.0f}" for k in names) + " |")
    return L


def write_markdown(path, med, benches, allocs, info, fp, args, elapsed, locks=None):
    names = [b[0] for b in benches if b[0] in med]
    L = []
    L.append("# xalloc benchmark results\n")
    L.append(f"Made by `{args.cmdline}` on {info['date']} in {elapsed / 60:.1f} min.\n")
    L.append(f"Machine: {info.get('cpu', '?')}, {info['cpus']} CPUs, {info.get('memory', '?')}, "
             f"Linux {info['kernel']}, glibc {info['glibc']}. Versions: "
             + ", ".join(f"{a} {v}" for a, v in info["versions"].items()) + ".\n")
    L.append(f"Each figure is the median of {args.reps} runs, allocators interleaved. Threaded benchmarks "
             f"use {args.threads} threads. Wall and CPU time in seconds, peak RSS in MiB "
             "(`ru_maxrss`, including waited-for children).\n")
    have_base = BASELINE in allocs

    def ratio_table(title, key, unit_fmt):
        L.append(f"\n## {title}\n")
        L.append("| benchmark | " + " | ".join(allocs) + " |" + (" xalloc / best peer |" if "xalloc" in allocs else ""))
        L.append("|---|" + "---:|" * len(allocs) + ("---:|" if "xalloc" in allocs else ""))
        for n in names:
            row = [n]
            for a in allocs:
                v = med[n].get(a, {}).get(key)
                if v is None:
                    row.append("-")
                    continue
                cell = unit_fmt(v)
                if have_base and a != BASELINE and med[n].get(BASELINE):
                    cell += f" ({v / med[n][BASELINE][key]:.2f})"
                row.append(cell)
            if "xalloc" in allocs and "xalloc" in med[n]:
                peers = [med[n][a][key] for a in allocs if not a.startswith("xalloc") and a in med[n]]
                if peers:
                    r = med[n]["xalloc"][key] / min(peers)
                    row.append(f"**{r:.2f}**" if r > 1.25 else f"{r:.2f}")
            L.append("| " + " | ".join(row) + " |")
        if have_base:
            row = [f"geomean vs {BASELINE}"]
            for a in allocs:
                row.append(f"{geomean([med[n][a][key] / med[n][BASELINE][key] for n in names if a in med[n] and BASELINE in med[n]]):.3f}")
            if "xalloc" in allocs:
                row.append("")
            L.append("| " + " | ".join(row) + " |")

    ratio_table("Wall time (s; ratio to mimalloc)", "wall", lambda v: f"{v:.3f}")
    ratio_table("CPU time (s; ratio to mimalloc)", "cpu", lambda v: f"{v:.3f}")
    ratio_table("Peak RSS (MiB; ratio to mimalloc)", "rss_kb", fmt_mb)

    # resident memory the programs report themselves
    mem_rows = []
    for n in names:
        keys = sorted({k for a in allocs if a in med[n] for k in med[n][a]["extra"] if k.startswith("rss_")})
        for k in keys:
            mem_rows.append((n, k))
    # latencies the programs report themselves (stall: the longest malloc+free pair and percentiles)
    lat_rows = []
    for n in names:
        keys = sorted({k for a in allocs if a in med[n] for k in med[n][a]["extra"] if k.endswith("_us")})
        for k in keys:
            lat_rows.append((n, k))
    if lat_rows:
        L.append("\n## Latency reported by the programs (µs, median of the runs)\n")
        L.append("| benchmark | figure | " + " | ".join(allocs) + " |")
        L.append("|---|---|" + "---:|" * len(allocs))
        for n, k in lat_rows:
            L.append(f"| {n} | {k[:-3]} | "
                     + " | ".join(f"{med[n][a]['extra'].get(k, 0):.1f}" if a in med[n] else "-" for a in allocs)
                     + " |")

    if mem_rows:
        L.append("\n## Resident memory reported by the programs (MiB)\n")
        L.append("| benchmark | figure | " + " | ".join(allocs) + " |")
        L.append("|---|---|" + "---:|" * len(allocs))
        for n, k in mem_rows:
            L.append(f"| {n} | {k[:-3] if k.endswith('_kb') else k} | "
                     + " | ".join(fmt_mb(med[n][a]["extra"].get(k, 0)) if a in med[n] else "-" for a in allocs) + " |")

    if fp:
        L.append("\n## Instructions per malloc+free pair (callgrind)\n")
        L.append("`pair`: the whole loop iteration of `scripts/fastpath.c` (malloc, free, calls, loop); "
                 "`inside`: the same less the loop's own instructions in `main` (what the allocator "
                 "executes, PLT stubs included). Difference of two runs (100k and 300k pairs), so start-up "
                 "cost cancels. *Live-block probe*: 8 blocks of the size stay live through the loop "
                 "(every allocator's plain fast path); *solo probe*: the loop frees the only live block "
                 "of its page each time (allocators that retire empty pages take a slow path).\n")
        L.extend(fastpath_tables(fp))

    if locks:
        L.extend(lock_table(locks))

    L.append("\n## Benchmarks\n")
    for n, kind, argv, desc in benches:
        if n in med:
            L.append(f"- **{n}**: {desc}.")
    with open(path, "w") as f:
        f.write("\n".join(L) + "\n")


def write_summary(path, med, benches, allocs, fp):
    """The short table the README quotes: xalloc against mimalloc and against the best peer."""
    if "xalloc" not in allocs or BASELINE not in allocs:
        return
    names = [b[0] for b in benches if b[0] in med and "xalloc" in med[b[0]] and BASELINE in med[b[0]]]
    peers = [a for a in allocs if not a.startswith("xalloc")]
    L = ["| benchmark | xalloc wall (s) | vs mimalloc | vs best peer | xalloc peak RSS (MiB) | vs mimalloc | vs best peer |",
         "|---|---:|---:|---:|---:|---:|---:|"]
    for n in names:
        row = [n]
        for key, fmt in (("wall", lambda v: f"{v:.3f}"), ("rss_kb", fmt_mb)):
            x = med[n]["xalloc"][key]
            best_a = min((a for a in peers if a in med[n]), key=lambda a: med[n][a][key])
            best = med[n][best_a][key]
            r = x / best
            row += [fmt(x), f"{x / med[n][BASELINE][key]:.2f}",
                    (f"**{r:.2f}** ({best_a})" if r > 1.25 else f"{r:.2f} ({best_a})")]
        L.append("| " + " | ".join(row) + " |")
    gw = {a: geomean([med[n][a]["wall"] / med[n][BASELINE]["wall"] for n in names if a in med[n]]) for a in allocs}
    gr = {a: geomean([med[n][a]["rss_kb"] / med[n][BASELINE]["rss_kb"] for n in names if a in med[n]]) for a in allocs}
    L.append("")
    L.append("| geometric mean vs mimalloc | " + " | ".join(allocs) + " |")
    L.append("|---|" + "---:|" * len(allocs))
    L.append("| wall time | " + " | ".join(f"{gw[a]:.3f}" for a in allocs) + " |")
    L.append("| peak RSS | " + " | ".join(f"{gr[a]:.3f}" for a in allocs) + " |")
    if fp:
        L.append("")
        L.extend(fastpath_tables(fp))
    with open(path, "w") as f:
        f.write("\n".join(L) + "\n")


def write_svg(path, med, benches, allocs, title):
    """Two panels: wall time and peak RSS relative to mimalloc (log scale), one bar per allocator."""
    names = [b[0] for b in benches if b[0] in med and BASELINE in med[b[0]]]
    if not names or BASELINE not in allocs:
        return
    names.append("geomean")
    rowh, barh = 6 + 5 * len(allocs), 5
    top, left, pw, gap = 60, 140, 330, 40
    width = left + 2 * pw + gap + 20
    height = top + rowh * len(names) + 60
    lo, hi = 0.25, 4.0

    def xpos(r, x0):
        r = min(max(r, lo), hi)
        return x0 + (math.log(r) - math.log(lo)) / (math.log(hi) - math.log(lo)) * pw

    def ratios(key):
        out = {}
        for a in allocs:
            rs = [med[n][a][key] / med[n][BASELINE][key] if a in med[n] else None for n in names[:-1]]
            out[a] = rs + [geomean([r for r in rs if r])]
        return out

    S = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
         f'font-family="sans-serif" font-size="11">',
         f'<rect width="{width}" height="{height}" fill="white"/>',
         f'<text x="{width / 2}" y="18" text-anchor="middle" font-size="14">{title}</text>']
    for k, (key, label) in enumerate((("wall", "wall time / mimalloc (lower is better)"),
                                      ("rss_kb", "peak RSS / mimalloc (lower is better)"))):
        x0 = left + k * (pw + gap)
        S.append(f'<text x="{x0 + pw / 2}" y="{top - 22}" text-anchor="middle">{label}</text>')
        for t in (0.25, 0.5, 1, 2, 4):
            x = xpos(t, x0)
            S.append(f'<line x1="{x:.1f}" y1="{top - 8}" x2="{x:.1f}" y2="{top + rowh * len(names)}" '
                     f'stroke="{"#444" if t == 1 else "#ddd"}"/>')
            S.append(f'<text x="{x:.1f}" y="{top - 10}" text-anchor="middle" fill="#666">{t:g}x</text>')
        rs = ratios(key)
        for i, n in enumerate(names):
            y = top + i * rowh + 3
            if k == 0:
                bold = ' font-weight="bold"' if n == "geomean" else ""
                S.append(f'<text x="{left - 6}" y="{y + rowh / 2}" text-anchor="end"{bold}>{n}</text>')
            for j, a in enumerate(allocs):
                r = rs[a][i]
                if not r:
                    continue
                x1, x2 = xpos(1.0, x0), xpos(r, x0)
                S.append(f'<rect x="{min(x1, x2):.1f}" y="{y + j * barh}" width="{max(abs(x2 - x1), 0.8):.1f}" '
                         f'height="{barh - 1}" fill="{COLORS.get(a, "#000")}"><title>{a} {n}: {r:.2f}x</title></rect>')
    ly = top + rowh * len(names) + 25
    S.append(f'<text x="{width - 10}" y="{ly + 18}" text-anchor="end" fill="#666" font-size="10">'
             'log scale; bars beyond 0.25x or 4x are cut at the edge</text>')
    for j, a in enumerate(allocs):
        x = left + j * 110
        S.append(f'<rect x="{x}" y="{ly - 9}" width="12" height="10" fill="{COLORS.get(a, "#000")}"/>')
        label = f"{a} (= 1)" if a == BASELINE else a
        S.append(f'<text x="{x + 16}" y="{ly}">{label}</text>')
    S.append("</svg>")
    with open(path, "w") as f:
        f.write("\n".join(S) + "\n")


THREADED = ["larson", "handoff", "invsq", "prodcons-single", "prodcons-batch", "falseshare-scratch", "falseshare-thrash",
            "thread-churn", "migrate"]


def run_scaling(args, allocs, counts, scale, bindir, measure, work, out):
    """The threaded benchmarks at each thread count: throughput (the program's ops / secs)."""
    res = {}
    for name in THREADED:
        for t in counts:
            bench = {b[0]: b for b in benchmarks(t, scale, args.quick)}[name]
            argv = [os.path.join(bindir, bench[2][0])] + bench[2][1:]
            runs = {a: [] for a in allocs}
            for rep in range(args.reps):
                order = allocs[rep % len(allocs):] + allocs[:rep % len(allocs)]
                for a in order:
                    r = run_once(measure, argv, ALLOCATORS[a][0], ALLOC_ENV.get(a, {}), work)
                    runs[a].append(r["extra"].get("ops", 0) / max(r["extra"].get("secs", 0), 1e-9))
            res.setdefault(name, {})[t] = {a: statistics.median(v) for a, v in runs.items()}
            print(f"{name:20} {t:3} threads " + " ".join(f"{a}={res[name][t][a] / 1e6:.2f}M/s" for a in allocs),
                  flush=True)
    info = machine_info(allocs)
    with open(os.path.join(out, "scaling.json"), "w") as f:
        json.dump({"info": info, "threads": counts, "ops_per_s": res}, f, indent=1)
    L = ["# xalloc scaling results", "",
         f"Made by `{args.cmdline}` on {info['date']}: {info.get('cpu', '?')}, {info['cpus']} CPUs. "
         f"Median of {args.reps} runs; millions of allocations per second (the programs' own ops / secs).", ""]
    for name in THREADED:
        L.append(f"## {name}\n")
        L.append("| threads | " + " | ".join(allocs) + " |")
        L.append("|---:|" + "---:|" * len(allocs))
        for t in counts:
            L.append(f"| {t} | " + " | ".join(f"{res[name][t][a] / 1e6:.2f}" for a in allocs) + " |")
        L.append("")
    with open(os.path.join(out, "scaling.md"), "w") as f:
        f.write("\n".join(L) + "\n")
    # one panel per benchmark: throughput against threads (log2 axis), a line per allocator
    pw, ph, gap, top, left = 250, 160, 40, 50, 60
    cols = 3
    rows = (len(THREADED) + cols - 1) // cols
    width = left + cols * (pw + gap)
    height = top + rows * (ph + gap + 20) + 30
    S = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" '
         'font-size="11">', f'<rect width="{width}" height="{height}" fill="white"/>',
         f'<text x="{width / 2}" y="20" text-anchor="middle" font-size="14">Throughput (M allocations/s) '
         f'against threads, {info["cpus"]} CPUs</text>']
    lx = [math.log2(t) for t in counts]
    for k, name in enumerate(THREADED):
        x0 = left + (k % cols) * (pw + gap)
        y0 = top + (k // cols) * (ph + gap + 20)
        ymax = max(res[name][t][a] for t in counts for a in allocs) or 1

        def px(t, x0=x0):
            span = (lx[-1] - lx[0]) or 1
            return x0 + (math.log2(t) - lx[0]) / span * pw

        def py(v, y0=y0, ymax=ymax):
            return y0 + ph - v / ymax * ph

        S.append(f'<text x="{x0 + pw / 2}" y="{y0 - 6}" text-anchor="middle">{name}</text>')
        S.append(f'<rect x="{x0}" y="{y0}" width="{pw}" height="{ph}" fill="none" stroke="#ccc"/>')
        S.append(f'<text x="{x0 - 4}" y="{y0 + 10}" text-anchor="end" fill="#666">{ymax / 1e6:.1f}</text>')
        S.append(f'<text x="{x0 - 4}" y="{y0 + ph}" text-anchor="end" fill="#666">0</text>')
        for t in counts:
            S.append(f'<text x="{px(t):.1f}" y="{y0 + ph + 14}" text-anchor="middle" fill="#666">{t}</text>')
        for a in allocs:
            pts = " ".join(f"{px(t):.1f},{py(res[name][t][a]):.1f}" for t in counts)
            S.append(f'<polyline points="{pts}" fill="none" stroke="{COLORS.get(a, "#000")}" stroke-width="2">'
                     f'<title>{a}</title></polyline>')
    ly = height - 12
    for j, a in enumerate(allocs):
        S.append(f'<rect x="{left + j * 110}" y="{ly - 9}" width="12" height="10" fill="{COLORS.get(a, "#000")}"/>')
        S.append(f'<text x="{left + j * 110 + 16}" y="{ly}">{a}</text>')
    S.append("</svg>")
    with open(os.path.join(out, "scaling.svg"), "w") as f:
        f.write("\n".join(S) + "\n")
    print(f"bench: wrote {out}/scaling.md, scaling.svg, scaling.json")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="smaller work (scale 0.2), 2 repetitions")
    ap.add_argument("--reps", type=int)
    ap.add_argument("--scale", type=float)
    ap.add_argument("--threads", type=int, default=4)
    ap.add_argument("--only", help="comma-separated benchmark names")
    ap.add_argument("--allocs", default=",".join(DEFAULT_ALLOCS),
                    help="comma-separated, from " + ", ".join(ALLOCATORS))
    ap.add_argument("--out", help="output folder (default scripts/bench/results, or results/quick)")
    ap.add_argument("--no-callgrind", action="store_true")
    ap.add_argument("--no-real", action="store_true", help="skip the real-program workloads")
    ap.add_argument("--locks-only", action="store_true",
                    help="only xalloc's shared-lock acquisitions per million operations (no timing)")
    ap.add_argument("--scaling", help="thread counts, e.g. 1,2,4,8,16: run only the threaded "
                    "benchmarks at each and write scaling.md / scaling.svg")
    args = ap.parse_args()
    args.cmdline = "scripts/bench/bench.py " + " ".join(sys.argv[1:]) if len(sys.argv) > 1 else "scripts/bench/bench.py"
    args.reps = args.reps or (2 if args.quick else 5)
    scale = args.scale or (0.2 if args.quick else 1.0)
    out = args.out or (os.path.join(HERE, "results", "quick") if args.quick else os.path.join(HERE, "results"))
    os.makedirs(out, exist_ok=True)
    allocs = [a for a in args.allocs.split(",") if a]
    for a in allocs:
        if a not in ALLOCATORS:
            sys.exit(f"bench: unknown allocator {a}")
    ensure_peers(allocs)
    if "xalloc" in allocs and not os.path.exists(ALLOCATORS["xalloc"][0]):
        sys.exit("bench: build xalloc first (make build)")
    bindir = os.path.join(ROOT, "target", "bench")
    build_progs(bindir)
    measure = os.path.join(bindir, "measure")
    work = tempfile.mkdtemp(prefix="xalloc-bench-")
    if args.scaling:
        try:
            counts = [int(t) for t in args.scaling.split(",")]
            run_scaling(args, allocs, counts, scale, bindir, measure, work, out)
        finally:
            shutil.rmtree(work, ignore_errors=True)
        return
    if args.locks_only:
        try:
            benches = benchmarks(args.threads, scale, args.quick)
            if args.only:
                benches = [b for b in benches if b[0] in set(args.only.split(","))]
            locks = lock_counts(measure, benches, bindir, work)
            print("\n".join(lock_table(locks)))
        finally:
            shutil.rmtree(work, ignore_errors=True)
        return
    t_start = time.time()
    try:
        benches = benchmarks(args.threads, scale, args.quick)
        if not args.no_real:
            benches += real_benchmarks(work, args.quick)
        if args.only:
            want = set(args.only.split(","))
            benches = [b for b in benches if b[0] in want]
        raw = {b[0]: {a: [] for a in allocs} for b in benches}
        for name, kind, argv, desc in benches:
            if kind == "prog":
                argv = [os.path.join(bindir, argv[0])] + argv[1:]
            env = {"PYTHONMALLOC": "malloc"} if name == "python" else {}
            line = f"{name:20}"
            for rep in range(args.reps):
                # rotate the order every repetition so no allocator always runs first
                order = allocs[rep % len(allocs):] + allocs[:rep % len(allocs)]
                for a in order:
                    raw[name][a].append(run_once(measure, argv, ALLOCATORS[a][0],
                                                  {**env, **ALLOC_ENV.get(a, {})}, work))
            med_now = summarize({name: raw[name]}, allocs)[name]
            for a in allocs:
                line += f" {a}={med_now[a]['wall']:.2f}s/{med_now[a]['rss_kb'] / 1024:.0f}M"
                if "max_stall_us" in med_now[a]["extra"]:
                    line += f"/stall {med_now[a]['extra']['max_stall_us'] / 1000:.1f}ms"
            print(line, flush=True)
        fp = {}
        if not args.no_callgrind:
            print("instructions per malloc+free pair (pair/inside):", flush=True)
            fp = {"live": fastpath_counts(allocs, [16, 64, 256, 4096], keep=8),
                  "solo": fastpath_counts(allocs, [16, 64, 256, 4096], keep=0)}
        locks = {}
        if "xalloc" in allocs:
            locks = lock_counts(measure, benches, bindir, work)
        elapsed = time.time() - t_start
        info = machine_info(allocs)
        med = summarize(raw, allocs)
        with open(os.path.join(out, "bench.json"), "w") as f:
            json.dump({"info": info, "args": vars(args), "raw": raw, "fastpath": fp, "locks": locks},
                      f, indent=1)
        write_markdown(os.path.join(out, "bench.md"), med, benches, allocs, info, fp, args, elapsed,
                       locks)
        write_summary(os.path.join(out, "summary.md"), med, benches, allocs, fp)
        write_svg(os.path.join(out, "bench.svg"), med, benches, allocs,
                  f"xalloc vs peers, relative to mimalloc ({info['cpus']} CPUs, {args.threads} threads)")
        names = [b[0] for b in benches]
        if BASELINE in allocs:
            print("geomean vs mimalloc (wall / peak RSS): " + ", ".join(
                f"{a} {geomean([med[n][a]['wall'] / med[n][BASELINE]['wall'] for n in names]):.3f} / "
                f"{geomean([med[n][a]['rss_kb'] / med[n][BASELINE]['rss_kb'] for n in names]):.3f}"
                for a in allocs))
        print(f"bench: wrote {out}/bench.md, summary.md, bench.svg, bench.json ({elapsed / 60:.1f} min)")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

//! The profiler end to end: C programs run under the real library (`target/release/libxalloc.so`,
//! or `$XALLOC_SO`; `cargo build --release` first) with the profiler or the heap map on, and
//! `xalloc-prof` reading what they wrote.
//!
//! Sampling is random; each assertion on sampled figures leaves a margin of many standard
//! deviations (see each test), so none fails by chance in practice.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn library() -> PathBuf {
    let p = match std::env::var_os("XALLOC_SO") {
        Some(p) => PathBuf::from(p),
        None => {
            let target = std::env::var_os("CARGO_TARGET_DIR")
                .map(PathBuf::from)
                .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"));
            target.join("release/libxalloc.so")
        }
    };
    assert!(
        p.exists(),
        "{} is missing: run `cargo build --release` first",
        p.display()
    );
    p
}

fn scratch(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("xalloc-prof-lib-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Compile `src` (C) with `flags` into `dir/prog`.
fn compile(dir: &Path, src: &str, flags: &[&str]) -> PathBuf {
    let c = dir.join("prog.c");
    std::fs::write(&c, src).unwrap();
    let exe = dir.join("prog");
    let out = Command::new("cc")
        .args(flags)
        .arg(&c)
        .arg("-o")
        .arg(&exe)
        .arg("-ldl")
        .output()
        .expect("cc runs");
    assert!(
        out.status.success(),
        "cc failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    exe
}

/// Run `exe` in `dir` under the library with `env`.
fn run_under(dir: &Path, exe: &Path, env: &[(&str, &str)]) -> Output {
    let out = Command::new(exe)
        .current_dir(dir)
        .env("LD_PRELOAD", library())
        .envs(env.iter().copied())
        .output()
        .expect("program runs");
    assert!(
        out.status.success(),
        "program failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn tool(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_xalloc-prof"))
        .args(args)
        .output()
        .expect("xalloc-prof runs");
    assert!(
        out.status.success(),
        "xalloc-prof {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// The one file in `dir` whose name starts with `prefix`.
fn only_file(dir: &Path, prefix: &str) -> PathBuf {
    let v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().unwrap().to_string_lossy().starts_with(prefix))
        .collect();
    assert_eq!(v.len(), 1, "files {prefix}* in {}: {v:?}", dir.display());
    v.into_iter().next().unwrap()
}

/// The share (percent) `top` gives the row naming `func`.
fn share_of(top: &str, func: &str) -> Option<f64> {
    top.lines()
        .filter(|l| l.split_whitespace().any(|w| w == func))
        .find_map(|l| {
            l.split_whitespace()
                .find(|w| w.ends_with('%'))
                .and_then(|w| w.trim_end_matches('%').parse().ok())
        })
}

/// 80% of the live bytes from `hog`, 20% from `small`, in blocks of sizes the classes hold
/// exactly; built like a distribution binary (optimised, no frame pointers).
const HOG: &str = r#"#include <stdlib.h>
#include <string.h>
#define HOGS 40000
#define SMALLS 40000
static void *keep[HOGS + SMALLS];
__attribute__((noinline)) void *hog(void) {
    char *p = malloc(1280);
    if (p) memset(p, 1, 16);
    return p;
}
__attribute__((noinline)) void *small(void) {
    char *p = malloc(320);
    if (p) memset(p, 2, 16);
    return p;
}
int main(void) {
    int n = 0;
    for (int i = 0; i < HOGS; i++) {
        keep[n++] = hog();
        keep[n++] = small();
    }
    /* exits with everything live: the profile is written at exit */
    return keep[0] == 0;
}
"#;

/// `top` names `hog` with a share between 70% and 90% (it holds 80% of the live bytes).
///
/// 64 MB live at a mean interval of 32 KiB gives about 2000 samples; the estimated share of
/// `hog` then has a standard deviation under 1%, so the 70-90% window is more than ten
/// standard deviations wide on each side.
#[test]
fn top_names_the_hog() {
    let dir = scratch("hog");
    let exe = compile(&dir, HOG, &["-O2", "-g", "-fomit-frame-pointer"]);
    run_under(
        &dir,
        &exe,
        &[
            ("XALLOC_PROF", "1"),
            ("XALLOC_PROF_RATE", "32K"),
            ("XALLOC_PROF_FILE", "hog.%p.heap"),
        ],
    );
    let dump = only_file(&dir, "hog.");
    let top = tool(&["top", dump.to_str().unwrap()]);
    let hog = share_of(&top, "hog").unwrap_or_else(|| panic!("no row for hog:\n{top}"));
    let small = share_of(&top, "small").unwrap_or_else(|| panic!("no row for small:\n{top}"));
    assert!((70.0..=90.0).contains(&hog), "hog {hog}%:\n{top}");
    assert!((10.0..=30.0).contains(&small), "small {small}%:\n{top}");
    // the rows come heaviest first
    let first = top
        .lines()
        .find(|l| l.contains('%') && !l.starts_with("total"))
        .unwrap();
    assert!(first.contains("hog"), "{top}");
    // the flame graph and the pprof file are made from the same dump
    let svg = dir.join("flame.svg");
    tool(&["flame", dump.to_str().unwrap(), "-o", svg.to_str().unwrap()]);
    let text = std::fs::read_to_string(&svg).unwrap();
    assert!(text.contains("hog") && text.contains("small") && text.contains("main"));
    let pb = dir.join("heap.pb.gz");
    tool(&["pprof", dump.to_str().unwrap(), "-o", pb.to_str().unwrap()]);
    go_pprof_names_hog(&dir, &pb);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Go's pprof reads the profile and finds `hog` at the top of the live bytes (the gzip'd
/// profile.proto is the format `go tool pprof` and `pprof` read).
fn go_pprof_names_hog(dir: &Path, pb: &Path) {
    let out = Command::new("go")
        .args(["tool", "pprof", "-top", "-sample_index=inuse_space"])
        .arg(pb)
        .env("HOME", dir)
        .env("GOCACHE", dir.join("gocache"))
        .env("PPROF_TMPDIR", dir)
        .output()
        .expect("go (golang-go) is installed by `make deps` for this test");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "go tool pprof failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    // rows: flat flat% sum% cum cum% name; the first row is the heaviest
    let row = text
        .lines()
        .skip_while(|l| !l.trim_start().starts_with("flat"))
        .nth(1)
        .unwrap_or_else(|| panic!("no rows:\n{text}"));
    assert!(row.ends_with(" hog"), "first row {row:?}:\n{text}");
}

const LEAK: &str = r#"#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
typedef int (*dump_fn)(const char *);
static void *leaked[100000];
static int nleaked;
__attribute__((noinline)) void leak_some(void) {
    for (int i = 0; i < 2000; i++) {
        char *p = malloc(700);
        memset(p, 3, 700);
        leaked[nleaked++] = p;
    }
}
__attribute__((noinline)) void churn(void) {
    static void *v[4000];
    for (int i = 0; i < 4000; i++) {
        v[i] = malloc(900);
        memset(v[i], 4, 900);
    }
    for (int i = 0; i < 4000; i++)
        free(v[i]);
}
int main(void) {
    dump_fn dump = (dump_fn)dlsym(RTLD_DEFAULT, "xa_prof_dump");
    if (!dump)
        return 2;
    for (int round = 0; round < 10; round++) {
        leak_some();
        churn();
        if (round == 1 && dump("old.heap") != 0)
            return 3;
    }
    if (dump("new.heap") != 0)
        return 4;
    return 0;
}
"#;

/// `diff` of two dumps of a leaking program puts the leaking site first: between the dumps it
/// leaked 8 x 2000 x 700 bytes = 11.2 MB (about 350 samples at 32 KiB), while the other site
/// frees all it allocates, so it has no live bytes in either dump.
#[test]
fn diff_names_the_leak() {
    let dir = scratch("leak");
    let exe = compile(&dir, LEAK, &["-O1", "-g"]);
    run_under(
        &dir,
        &exe,
        &[("XALLOC_PROF", "1"), ("XALLOC_PROF_RATE", "32K")],
    );
    let old = dir.join("old.heap");
    let new = dir.join("new.heap");
    let diff = tool(&["diff", old.to_str().unwrap(), new.to_str().unwrap()]);
    let first = diff
        .lines()
        .find(|l| l.contains("leak_some") || l.contains("churn"))
        .unwrap_or_else(|| panic!("no call site rows:\n{diff}"));
    assert!(first.contains("leak_some"), "{diff}");
    let old_top = tool(&["top", old.to_str().unwrap()]);
    let new_top = tool(&["top", new.to_str().unwrap()]);
    assert!(old_top.contains("leak_some") && new_top.contains("leak_some"));
    assert!(
        !new_top.contains("churn"),
        "churn frees everything:\n{new_top}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

const FRAG: &str = r#"#include <dlfcn.h>
#include <stdlib.h>
#include <string.h>
typedef int (*map_fn)(const char *);
#define N 512
int main(void) {
    map_fn map = (map_fn)dlsym(RTLD_DEFAULT, "xa_heap_map");
    if (!map)
        return 2;
    static char *v[N];
    for (int i = 0; i < N; i++) {
        v[i] = malloc(64 * 1024);
        memset(v[i], 5, 64 * 1024);
    }
    for (int i = 0; i < N; i += 2)
        free(v[i]);
    if (map("frag.map") != 0)
        return 3;
    return 0;
}
"#;

/// The value of `key: value` in `text`.
fn figure(text: &str, key: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(": "))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no {key:?} in:\n{text}"))
}

/// The heap map of a known fragmentation pattern: 512 medium blocks of 64 KiB, every other one
/// freed, with purging held off. The figures are what the program did: 256 live blocks of
/// 64 KiB, 256 free resident holes of 64 KiB between them, and a fragmentation that counts
/// those holes as unusable for anything larger.
#[test]
fn heapmap_figures_match_the_pattern() {
    let dir = scratch("frag");
    let exe = compile(&dir, FRAG, &["-O1", "-g"]);
    run_under(
        &dir,
        &exe,
        &[
            ("XALLOC_PURGE_DELAY_MS", "1000000"),
            ("XALLOC_DIRTY_CAP", "1G"),
        ],
    );
    let map = dir.join("frag.map");
    let raw = std::fs::read_to_string(&map).unwrap();
    let medium_runs = raw.lines().filter(|l| l.ends_with(" medium 65536")).count();
    assert_eq!(medium_runs, 256, "{raw}");
    let out = tool(&["heapmap", map.to_str().unwrap(), "--text-only"]);
    let block = 64.0 * 1024.0;
    let live = figure(&out, "live bytes");
    // 256 blocks of 64 KiB, plus what the C library allocated for itself (a few KiB)
    assert!(
        live >= 256.0 * block && live < 256.0 * block + 512.0 * 1024.0,
        "live {live}:\n{out}"
    );
    let free_resident = figure(&out, "free resident bytes");
    // the 256 holes (a freed neighbour pair merges only where both are free: none here, every
    // other block is live); slabs the C library freed may add a little
    assert!(
        free_resident >= 256.0 * block && free_resident < 256.0 * block + 512.0 * 1024.0,
        "free resident {free_resident}:\n{out}"
    );
    // the free pages are the holes plus the untouched rest of the arena; fragmentation is
    // 1 - largest free run / free pages, and the largest run is that rest
    let purged = figure(&out, "purged bytes");
    let frag = figure(&out, "external fragmentation");
    let total_free = free_resident + purged;
    assert!(frag > 0.0 && frag < 1.0, "{out}");
    let largest = (1.0 - frag) * total_free;
    assert!(
        largest <= purged + block,
        "largest free run {largest} is the arena's untouched rest:\n{out}"
    );
    let svg = dir.join("frag.svg");
    tool(&[
        "heapmap",
        map.to_str().unwrap(),
        "-o",
        svg.to_str().unwrap(),
    ]);
    assert!(std::fs::read_to_string(&svg).unwrap().contains("<svg"));
    let _ = std::fs::remove_dir_all(&dir);
}

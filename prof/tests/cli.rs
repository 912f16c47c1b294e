//! The `xalloc-prof` command on real ELF files: a small C program compiled with `cc -g`, run to
//! learn its real return addresses and mappings, and profiles written around them.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use object::{Object, ObjectSegment, ObjectSymbol};
use xalloc_prof::profile::Mapping;
use xalloc_prof::symbolize::Symbolizer;

const PROG: &str = r#"#include <stdio.h>
#include <stdlib.h>

static void *ra_inner[2];
static void *ra_outer[2];
static int n;

__attribute__((noinline)) void *traced_alloc(size_t size) {
    ra_inner[n] = __builtin_return_address(0);
    return malloc(size);
}

__attribute__((noinline)) void *make_records(void) {
    ra_outer[0] = __builtin_return_address(0);
    void *p = traced_alloc(64); /* MARK make_records */
    n = 1;
    return p;
}

__attribute__((noinline)) void *grow_cache(void) {
    ra_outer[1] = __builtin_return_address(0);
    void *p = traced_alloc(128); /* MARK grow_cache */
    return p;
}

int main(void) {
    void *a = make_records();
    void *b = grow_cache();
    printf("records %p %p\n", ra_inner[0], ra_outer[0]);
    printf("cache %p %p\n", ra_inner[1], ra_outer[1]);
    FILE *f = fopen("/proc/self/maps", "r");
    char line[4096];
    while (f && fgets(line, sizeof line, f))
        printf("maps %s", line);
    free(a);
    free(b);
    return 0;
}
"#;

const LIBSTDCXX: &str = "/usr/lib/x86_64-linux-gnu/libstdc++.so.6";

fn line_of(mark: &str) -> usize {
    PROG.lines().position(|l| l.contains(mark)).unwrap() + 1
}

fn scratch(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("xalloc-prof-it-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn run(cmd: &mut Command) -> Output {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn tool(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_xalloc-prof"))
        .args(args)
        .output()
        .unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// The compiled program, the `map` lines of its run and its return addresses.
struct Run {
    dir: PathBuf,
    exe: PathBuf,
    maps: Vec<String>,
    /// (into make_records, into main) and (into grow_cache, into main)
    records: (u64, u64),
    cache: (u64, u64),
}

fn hex(s: &str) -> u64 {
    u64::from_str_radix(s.trim_start_matches("0x"), 16).unwrap()
}

fn build_and_run(name: &str) -> Run {
    let dir = scratch(name);
    let src = dir.join("prog.c");
    std::fs::write(&src, PROG).unwrap();
    let exe = dir.join("prog");
    run(Command::new("cc")
        .args([
            "-g",
            "-O0",
            "-fno-omit-frame-pointer",
            "-Wl,--build-id",
            "-o",
        ])
        .arg(&exe)
        .arg(&src));
    let out = stdout(&run(&mut Command::new(&exe)));
    let mut maps = Vec::new();
    let (mut records, mut cache) = ((0, 0), (0, 0));
    for line in out.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        match f[0] {
            "records" => records = (hex(f[1]), hex(f[2])),
            "cache" => cache = (hex(f[1]), hex(f[2])),
            "maps" if f.len() >= 7 && f[2].contains('x') && f[6].starts_with('/') => {
                let (start, end) = f[1].split_once('-').unwrap();
                maps.push(format!(
                    "map 0x{start} 0x{end} {:#x} {}",
                    hex(f[3]),
                    f[6..].join(" ")
                ));
            }
            _ => {}
        }
    }
    assert!(records.0 != 0 && cache.0 != 0, "{out}");
    assert!(maps.iter().any(|m| m.ends_with("/prog")), "{maps:?}");
    Run {
        dir,
        exe,
        maps,
        records,
        cache,
    }
}

/// The file offset and size of `_Znwm` (operator new) in libstdc++, if it is there.
fn operator_new_offset() -> Option<(u64, u64)> {
    let data = std::fs::read(LIBSTDCXX).ok()?;
    let file = object::File::parse(&*data).ok()?;
    let sym = file.dynamic_symbols().find(|s| s.name() == Ok("_Znwm"))?;
    let seg = file.segments().find(|s| {
        let (a, sz) = (s.address(), s.size());
        a <= sym.address() && sym.address() < a + sz
    })?;
    Some((
        sym.address() - seg.address() + seg.file_range().0,
        data.len() as u64,
    ))
}

const STDCXX_BASE: u64 = 0x1_0000_0000;
const XALLOC_BASE: u64 = 0x2_0000_0000;

/// A profile of the run: make_records holds 900000 live bytes (stack starting in xalloc and
/// operator new when libstdc++ is there), grow_cache 100000; `end` optional.
fn write_profile(r: &Run, path: &Path, exe_name: &str, weights: (u64, u64), end: bool) {
    let mut text = format!(
        "xalloc-heap-profile 1\npid 77\nrate 524288\nexe {}\n",
        r.exe.display()
    );
    let mut inner = vec![XALLOC_BASE + 0x1234];
    if let Some((off, size)) = operator_new_offset() {
        text += &format!(
            "map {STDCXX_BASE:#x} {:#x} 0x0 {LIBSTDCXX}\n",
            STDCXX_BASE + size
        );
        inner.push(STDCXX_BASE + off + 4);
    }
    text += &format!(
        "map {XALLOC_BASE:#x} {:#x} 0x0 /nonexistent/lib/libxalloc.so.0.1.0\n",
        XALLOC_BASE + 0x100000
    );
    for m in &r.maps {
        text += &m.replace(&format!("/{}", "prog"), &format!("/{exe_name}"));
        text.push('\n');
    }
    let frames = |v: &[u64]| v.iter().map(|a| format!(" {a:#x}")).collect::<String>();
    let mut rec = inner.clone();
    rec.extend([r.records.0, r.records.1]);
    text += &format!("live 64 {}{}\n", weights.0, frames(&rec));
    text += &format!(
        "live 128 {}{}\n",
        weights.1,
        frames(&[r.cache.0, r.cache.1])
    );
    text += &format!("alloc 4 {}{}\n", 3 * weights.0, frames(&rec));
    if end {
        text += "end\n";
    }
    std::fs::write(path, text).unwrap();
}

fn p(path: &Path) -> &str {
    path.to_str().unwrap()
}

#[test]
fn top_names_functions_files_and_lines_of_a_real_program() {
    let r = build_and_run("top");
    let prof = r.dir.join("heap.prof");
    write_profile(&r, &prof, "prog", (900_000, 100_000), true);
    let o = tool(&["top", p(&prof)]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    let rec_line = format!("prog.c:{}", line_of("MARK make_records"));
    let cache_line = format!("prog.c:{}", line_of("MARK grow_cache"));
    let rows: Vec<&str> = out.lines().filter(|l| l.contains('%')).collect();
    assert_eq!(rows.len(), 2, "{out}");
    assert!(
        rows[0].contains("make_records")
            && rows[0].contains("90.0%")
            && rows[0].contains(&rec_line),
        "{out}"
    );
    assert!(rows[0].contains("878.9 KiB (900000)"), "{out}");
    assert!(
        rows[1].contains("grow_cache")
            && rows[1].contains("10.0%")
            && rows[1].contains(&cache_line),
        "{out}"
    );
    assert!(
        out.contains("total: 976.6 KiB (1000000 bytes) live in"),
        "{out}"
    );
    assert!(
        !out.contains("operator new") && !out.contains("libxalloc"),
        "{out}"
    );
    // the missing libxalloc file is reported once
    let err = stderr(&o);
    assert_eq!(
        err.lines()
            .filter(|l| l.contains("libxalloc.so.0.1.0"))
            .count(),
        1,
        "{err}"
    );
    assert!(err.contains("No such file"), "{err}");

    // --cum ranks the alloc lines: make_records only
    let out = stdout(&tool(&["top", "--cum", p(&prof)]));
    assert!(out.contains("cumulative allocation"), "{out}");
    let rows: Vec<&str> = out.lines().filter(|l| l.contains('%')).collect();
    assert_eq!(rows.len(), 1, "{out}");
    assert!(
        rows[0].contains("make_records") && rows[0].contains("100.0%"),
        "{out}"
    );

    // -n 1
    let out = stdout(&tool(&["top", "-n", "1", p(&prof)]));
    assert!(
        out.contains("make_records") && !out.contains("grow_cache (") && out.contains("showing 1"),
        "{out}"
    );

    // collapse: root first, allocator frames gone
    let out = stdout(&tool(&["collapse", p(&prof)]));
    assert_eq!(out, "main;grow_cache 100000\nmain;make_records 900000\n");

    // flame: an SVG naming the functions
    let svg = r.dir.join("flame.svg");
    let o = tool(&["flame", p(&prof), "-o", p(&svg)]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = std::fs::read_to_string(&svg).unwrap();
    assert!(text.contains("<svg") && text.contains("make_records") && text.contains("grow_cache"));

    // pprof: decodes, symbolised, with the totals
    let pb = r.dir.join("heap.pb.gz");
    let o = tool(&["pprof", p(&prof), "-o", p(&pb)]);
    assert!(o.status.success(), "{}", stderr(&o));
    let prof_pb = xalloc_prof::pprof::decode_gz(&std::fs::read(&pb).unwrap()).unwrap();
    let total = |i: usize| prof_pb.sample.iter().map(|s| s.value[i]).sum::<i64>();
    assert_eq!((total(1), total(3)), (2_700_000, 1_000_000));
    assert!(prof_pb.string_table.iter().any(|s| s == "make_records"));
    assert!(prof_pb.string_table.iter().any(|s| s.ends_with("prog.c")));
    let exe_map = prof_pb
        .mapping
        .iter()
        .find(|m| prof_pb.string_table[m.filename as usize].ends_with("/prog"))
        .unwrap();
    assert!(exe_map.has_functions && exe_map.has_line_numbers);

    std::fs::remove_dir_all(&r.dir).unwrap();
}

#[test]
fn operator_new_in_libstdcxx_is_named_and_skipped() {
    let Some((off, size)) = operator_new_offset() else {
        eprintln!("{LIBSTDCXX} or its _Znwm not found: skipped");
        return;
    };
    let maps = [Mapping {
        start: STDCXX_BASE,
        end: STDCXX_BASE + size,
        offset: 0,
        path: LIBSTDCXX.into(),
    }];
    let l = Symbolizer::new().locate(&maps, STDCXX_BASE + off + 4);
    assert_eq!(l.mapping, Some(0));
    assert!(
        l.frames[0].function.starts_with("operator new"),
        "{:?}",
        l.frames
    );
    assert!(xalloc_prof::report::is_allocator_frame(&l.frames[0]));
}

/// The same run, symbolised through copies of the program stripped in different ways.
#[test]
fn separate_debug_files_and_fallbacks() {
    let r = build_and_run("debug");
    let rec_line = format!("prog.c:{}", line_of("MARK make_records"));
    let objcopy = |args: &[&str], from: &Path, to: &Path| {
        run(Command::new("objcopy").args(args).arg(from).arg(to));
    };
    let top_of = |name: &str, extra: &[&str]| -> String {
        let prof = r.dir.join(format!("{name}.prof"));
        write_profile(&r, &prof, name, (900_000, 100_000), true);
        let mut args = vec!["top", p(&prof)];
        args.extend_from_slice(extra);
        let o = tool(&args);
        assert!(o.status.success(), "{}", stderr(&o));
        stdout(&o)
    };
    let debug = r.dir.join("prog.debug");
    objcopy(&["--only-keep-debug"], &r.exe, &debug);

    // .gnu_debuglink, the debug file beside the program
    let linked = r.dir.join("prog-linked");
    objcopy(
        &[
            "--strip-debug",
            &format!("--add-gnu-debuglink={}", p(&debug)),
        ],
        &r.exe,
        &linked,
    );
    let out = top_of("prog-linked", &[]);
    assert!(
        out.contains("make_records") && out.contains(&rec_line),
        "debuglink beside: {out}"
    );

    // .gnu_debuglink, the debug file in .debug/
    let sub = r.dir.join("sub");
    std::fs::create_dir_all(sub.join(".debug")).unwrap();
    std::fs::copy(&linked, sub.join("prog-linked")).unwrap();
    std::fs::copy(&debug, sub.join(".debug/prog.debug")).unwrap();
    let out = top_of("sub/prog-linked", &[]);
    assert!(out.contains(&rec_line), "debuglink in .debug/: {out}");

    // a debug file whose CRC does not match is not used: names from .symtab, no lines
    let bad = r.dir.join("bad");
    std::fs::create_dir_all(&bad).unwrap();
    std::fs::copy(&linked, bad.join("prog-linked")).unwrap();
    std::fs::write(bad.join("prog.debug"), b"not the debug file").unwrap();
    let out = top_of("bad/prog-linked", &[]);
    assert!(
        out.contains("make_records") && !out.contains("prog.c:"),
        "bad CRC: {out}"
    );

    // build-id under --debug-root
    let data = std::fs::read(&r.exe).unwrap();
    let id = object::File::parse(&*data)
        .unwrap()
        .build_id()
        .unwrap()
        .expect("a build-id");
    let id: String = id.iter().map(|b| format!("{b:02x}")).collect();
    let root = r.dir.join("debug-root");
    let idd = root.join(".build-id").join(&id[..2]);
    std::fs::create_dir_all(&idd).unwrap();
    std::fs::copy(&debug, idd.join(format!("{}.debug", &id[2..]))).unwrap();
    let plain = r.dir.join("prog-plain");
    objcopy(&["--strip-debug"], &r.exe, &plain);
    let out = top_of("prog-plain", &["--debug-root", p(&root)]);
    assert!(out.contains(&rec_line), "build-id: {out}");
    // without the root: the symbol table names it, no line
    let out = top_of("prog-plain", &[]);
    assert!(
        out.contains("make_records") && !out.contains("prog.c:"),
        "symtab only: {out}"
    );

    // nothing left: PATH+0xOFFSET
    let bare = r.dir.join("prog-bare");
    objcopy(&["--strip-all"], &r.exe, &bare);
    let out = top_of("prog-bare", &[]);
    assert!(!out.contains("make_records"), "{out}");
    assert!(out.contains(&format!("{}+0x", p(&bare))), "{out}");

    std::fs::remove_dir_all(&r.dir).unwrap();
}

#[test]
fn diff_shows_the_growing_site_first() {
    let r = build_and_run("diff");
    let old = r.dir.join("old.prof");
    let new = r.dir.join("new.prof");
    write_profile(&r, &old, "prog", (100_000, 500_000), true);
    write_profile(&r, &new, "prog", (2_100_000, 400_000), false);
    let o = tool(&["diff", p(&old), p(&new)]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("cut short"), "{}", stderr(&o));
    let out = stdout(&o);
    let rows: Vec<&str> = out.lines().skip(2).take(2).collect();
    assert!(
        rows[0].contains("+1.9 MiB (+2000000)") && rows[0].contains("make_records"),
        "{out}"
    );
    assert!(
        rows[1].contains("(-100000)") && rows[1].contains("grow_cache"),
        "{out}"
    );
    assert!(
        out.contains("delta +1.8 MiB (+1900000 bytes); 2 of 2 call sites changed"),
        "{out}"
    );
    std::fs::remove_dir_all(&r.dir).unwrap();
}

const CXX_PROG: &str = r#"#include <execinfo.h>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <new>
#include <string>
#include <vector>

static void *frames[64][32];
static int depth[64];
static size_t sizes[64];
static int nrec;
static bool recording;

// records the stack of each allocation, as the profiler does
void *operator new(size_t n) {
    if (recording && nrec < 64) {
        recording = false;
        depth[nrec] = backtrace(frames[nrec], 32);
        sizes[nrec] = n;
        nrec++;
        recording = true;
    }
    void *p = malloc(n);
    if (!p) throw std::bad_alloc();
    return p;
}
void operator delete(void *p) noexcept { free(p); }
void operator delete(void *p, size_t) noexcept { free(p); }

static inline void add_items(std::vector<int> &v, int n) {
    for (int i = 0; i < n; i++) v.push_back(i); // MARK push_back
}

__attribute__((noinline)) std::vector<int> *build_vector() {
    auto *v = new std::vector<int>(); // MARK new vector
    add_items(*v, 3);
    return v;
}

__attribute__((noinline)) std::map<std::string, int> *build_map() {
    auto *m = new std::map<std::string, int>(); // MARK new map
    (*m)["a key too long for the short string buffer"] = 1; // MARK insert
    return m;
}

int main() {
    recording = true;
    auto *v = build_vector();
    auto *m = build_map();
    recording = false;
    for (int i = 0; i < nrec; i++) {
        printf("live %zu %zu", sizes[i], sizes[i] * 1000);
        for (int j = 1; j < depth[i]; j++) printf(" %p", frames[i][j]);
        printf("\n");
    }
    FILE *f = fopen("/proc/self/maps", "r");
    char line[4096];
    while (f && fgets(line, sizeof line, f)) printf("maps %s", line);
    delete v;
    delete m;
}
"#;

/// C++ at -O2: the standard library's code inlined into the program's functions is skipped, so
/// the rows are the program's own lines.
#[test]
fn cxx_call_sites_skip_inlined_standard_library_code() {
    if Command::new("g++").arg("--version").output().is_err() {
        eprintln!("no g++: skipped");
        return;
    }
    let dir = scratch("cxx");
    let src = dir.join("t.cc");
    std::fs::write(&src, CXX_PROG).unwrap();
    let exe = dir.join("t");
    run(Command::new("g++")
        .args(["-O2", "-g", "-o"])
        .arg(&exe)
        .arg(&src));
    let out = stdout(&run(&mut Command::new(&exe)));
    let mut text = format!(
        "xalloc-heap-profile 1\nrate 524288\nexe {}\n",
        exe.display()
    );
    for line in out.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f[0] == "live" {
            text += line;
            text.push('\n');
        } else if f.len() >= 7 && f[2].contains('x') && f[6].starts_with('/') {
            let (start, end) = f[1].split_once('-').unwrap();
            text += &format!(
                "map 0x{start} 0x{end} {:#x} {}\n",
                hex(f[3]),
                f[6..].join(" ")
            );
        }
    }
    text += "end\n";
    let prof = dir.join("t.prof");
    std::fs::write(&prof, &text).unwrap();
    let o = tool(&["top", p(&prof)]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    let line = |mark: &str| {
        format!(
            "t.cc:{}",
            CXX_PROG.lines().position(|l| l.contains(mark)).unwrap() + 1
        )
    };
    let rows: Vec<&str> = out.lines().filter(|l| l.contains('%')).collect();
    assert!(rows.len() >= 4, "{out}");
    for r in &rows {
        assert!(r.contains("t.cc:"), "a row outside the program: {r}\n{out}");
        assert!(!r.contains("std::") && !r.contains("operator new"), "{r}");
    }
    let has = |func: &str, mark: &str| {
        rows.iter()
            .any(|r| r.contains(func) && r.contains(&line(mark)))
    };
    assert!(has("add_items", "MARK push_back"), "{out}");
    assert!(has("build_vector", "MARK new vector"), "{out}");
    assert!(has("build_map", "MARK new map"), "{out}");
    assert!(has("build_map", "MARK insert"), "{out}");
    // the flame graph keeps the standard library's frames under the program's
    let c = stdout(&tool(&["collapse", p(&prof)]));
    assert!(
        c.lines()
            .any(|l| l.contains(";add_items;std::vector<int") && l.contains("_M_realloc_insert")),
        "{c}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

const MAP: &str = "xalloc-heap-map 1
pid 5
page 4096
arena 0 0x7f0000000000 32
run 0 1 meta
run 1 8 slab 2 48 600 682
run 9 2 medium 8192
run 11 3 free-resident
run 14 2 slab 40 2560 1 3
run 16 16 free-purged
huge 0x7f1000000000 40000000 40001536
end
";

#[test]
fn heapmap_figures_and_pictures() {
    let dir = scratch("heapmap");
    let map = dir.join("heap.map");
    std::fs::write(&map, MAP).unwrap();
    let o = tool(&["heapmap", "--text-only", p(&map)]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    // slabs: 600*48 + 1*2560 in use; medium 8192; huge 40000000
    assert!(out.contains("live bytes: 40039552\n"), "{out}");
    // pages 0..16 resident (16 * 4096) + huge mapped
    assert!(out.contains("resident bytes: 40067072\n"), "{out}");
    assert!(out.contains("free resident bytes: 12288\n"), "{out}");
    assert!(out.contains("purged bytes: 65536\n"), "{out}");
    assert!(out.contains("external fragmentation: 0.1579\n"), "{out}");
    // 8 pages of 48-byte blocks: 682 blocks, 82 free, 32 bytes of tail
    assert!(
        out.contains("class 2 (BLOCK 48): used 600/682 slabs 1 waste 3968"),
        "{out}"
    );
    assert!(
        out.contains("class 40 (BLOCK 2560): used 1/3 slabs 1 waste 5632"),
        "{out}"
    );
    assert!(!out.contains("failed"), "{out}");

    for name in ["heap.svg", "heap.png"] {
        let pic = dir.join(name);
        let o = tool(&["heapmap", p(&map), "-o", p(&pic)]);
        assert!(o.status.success(), "{}", stderr(&o));
        assert!(stdout(&o).contains("live bytes: 40039552"));
        let bytes = std::fs::read(&pic).unwrap();
        if name.ends_with(".png") {
            assert_eq!(&bytes[..4], b"\x89PNG");
        } else {
            let text = String::from_utf8(bytes).unwrap();
            assert!(text.contains("<svg") && text.contains("arena 0 at 0x7f0000000000"));
        }
    }

    // an output or --text-only is needed; a profile is not a heap map
    assert!(!tool(&["heapmap", p(&map)]).status.success());
    let o = tool(&["top", p(&map)]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("heap map"), "{}", stderr(&o));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn help_and_version() {
    let o = tool(&["--version"]);
    assert!(o.status.success());
    assert_eq!(
        stdout(&o).trim(),
        format!("xalloc-prof {}", env!("CARGO_PKG_VERSION"))
    );
    for sub in ["top", "flame", "collapse", "diff", "pprof", "heapmap"] {
        let o = tool(&[sub, "--help"]);
        assert!(o.status.success(), "{sub}");
        assert!(stdout(&o).contains("Usage: xalloc-prof"), "{sub}");
    }
    assert!(!tool(&["no-such-command"]).status.success());
}

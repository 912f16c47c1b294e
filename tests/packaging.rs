//! The library as users get it: `make install` into a temporary `DESTDIR` (the files, the
//! SONAME, the stripped library and its separate debug info, a C program built with
//! `pkg-config --cflags --libs xalloc` that runs on the installed library, the installed
//! `xalloc-run`, `man -l` on both pages, `make uninstall`); `scripts/xalloc-run`'s own options;
//! and a Rust program that depends on the crate and declares `XAlloc` its global allocator.
//!
//! Like `tests/c_tests.rs`, these use the built library, `$XALLOC_SO` or
//! `target/release/libxalloc.so` (`cargo build --release` first), and never build it
//! themselves.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const VERSION: &str = env!("CARGO_PKG_VERSION");

mod common;
use common::{manifest_dir, target_dir};

/// The library under test.
fn library() -> PathBuf {
    let lib = match std::env::var_os("XALLOC_SO") {
        Some(p) if !p.is_empty() => PathBuf::from(p),
        _ => target_dir().join("release").join("libxalloc.so"),
    };
    assert!(
        lib.is_file(),
        "{} is missing: run `cargo build --release` first",
        lib.display()
    );
    fs::canonicalize(&lib).expect("canonical library path")
}

/// A fresh empty directory for one test.
fn scratch(name: &str) -> PathBuf {
    let dir = target_dir()
        .join("packaging")
        .join(format!("{name}.{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).expect("scratch directory");
    dir
}

/// Run `cmd`, failing the test (with its output) unless it exits 0.
fn run(cmd: &mut Command) -> Output {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed ({})\n--- stdout\n{}\n--- stderr\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn readelf(args: &[&str], file: &Path) -> String {
    stdout(&run(Command::new("readelf").args(args).arg(file)))
}

const PROGRAM: &str = r#"
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xalloc.h>

int main(void) {
    void *p = malloc(100);
    Dl_info info;
    if (!xa_owns(p) || !dladdr((void *)malloc, &info)) return 1;
    xa_stats_t st = { .version = XA_STATS_VERSION };
    if (xa_stats(&st) != 0 || st.in_use < 100) return 2;
    if (strcmp(xa_version(), XALLOC_VERSION_STRING) != 0) return 3;
    printf("malloc from %s, version %s\n", info.dli_fname, xa_version());
    free(p);
    return 0;
}
"#;

/// The library needs the C library alone: no libgcc_s, no libm, none of the Rust standard
/// library's code (its panic and backtrace machinery) — each would be mapped into every program
/// the library is preloaded into.
#[test]
fn the_library_needs_only_libc() {
    let lib = library();
    let dynamic = readelf(&["-d", "-W"], &lib);
    let needed: Vec<&str> = dynamic
        .lines()
        .filter(|l| l.contains("(NEEDED)"))
        .filter_map(|l| l.split('[').nth(1)?.split(']').next())
        .collect();
    assert_eq!(needed, ["libc.so.6"], "{dynamic}");
    let symbols = readelf(&["--dyn-syms", "-W"], &lib);
    for foreign in [
        "_Unwind_",
        "rust_begin_unwind",
        "rust_eh_personality",
        "gimli",
    ] {
        assert!(
            !symbols.contains(foreign),
            "the library names {foreign}:\n{symbols}"
        );
    }
    let sections = readelf(&["-S", "-W"], &lib);
    let text = sections
        .lines()
        .find(|l| l.contains(" .text "))
        // name, type, address, offset, size
        .and_then(|l| l.split_whitespace().skip_while(|w| *w != ".text").nth(4))
        .map(|size| usize::from_str_radix(size, 16).expect("hex size"))
        .expect("a .text section");
    // About 150 KiB; the standard library's panic and backtrace code alone is about 280 KiB.
    assert!(text < 256 << 10, ".text is {text} bytes:\n{sections}");
}

#[test]
fn make_install_into_a_destdir() {
    let lib = library();
    let dest = scratch("destdir");
    let prefix = "/opt/xalloc-test";
    let root = dest.join(prefix.trim_start_matches('/'));
    let make = |target: &str| {
        run(Command::new("make")
            .arg("--no-print-directory")
            .arg("-s")
            .arg(target)
            .arg(format!("DESTDIR={}", dest.display()))
            .arg(format!("PREFIX={prefix}"))
            .arg(format!("LIB={}", lib.display()))
            .current_dir(manifest_dir()))
    };
    make("install-files");

    // The files, and the library's names.
    let major = VERSION.split('.').next().unwrap();
    let libdir = root.join("lib");
    let real = libdir.join(format!("libxalloc.so.{VERSION}"));
    let soname = format!("libxalloc.so.{major}");
    for f in [
        real.clone(),
        libdir
            .join(".debug")
            .join(format!("libxalloc.so.{VERSION}.debug")),
        root.join("include/xalloc.h"),
        libdir.join("pkgconfig/xalloc.pc"),
        root.join("bin/xalloc-run"),
        root.join("share/man/man3/xalloc.3"),
        root.join("share/man/man1/xalloc-run.1"),
    ] {
        assert!(f.is_file(), "{} was not installed", f.display());
    }
    assert_eq!(
        fs::read_link(libdir.join(&soname)).unwrap(),
        PathBuf::from(format!("libxalloc.so.{VERSION}"))
    );
    assert_eq!(
        fs::read_link(libdir.join("libxalloc.so")).unwrap(),
        PathBuf::from(&soname)
    );
    let dynamic = readelf(&["-d"], &real);
    assert!(
        dynamic.contains(&format!("Library soname: [{soname}]")),
        "{dynamic}"
    );
    assert!(
        !dynamic.contains("libstdc++") && !dynamic.contains("libc++"),
        "the library needs a C++ runtime:\n{dynamic}"
    );

    // Stripped, with the debug info beside it and a link to it.
    let sections = readelf(&["-S", "-W"], &real);
    assert!(
        !sections.contains(".debug_info"),
        "not stripped:\n{sections}"
    );
    assert!(!sections.contains(" .symtab "), "not stripped:\n{sections}");
    assert!(sections.contains(".gnu_debuglink"), "{sections}");
    let debug = libdir
        .join(".debug")
        .join(format!("libxalloc.so.{VERSION}.debug"));
    let debug_sections = readelf(&["-S", "-W"], &debug);
    assert!(
        debug_sections.contains(".debug_info") && debug_sections.contains(".symtab"),
        "{debug_sections}"
    );
    let link = stdout(&run(Command::new("objcopy")
        .args(["--dump-section", ".gnu_debuglink=/dev/stdout"])
        .arg(&real)
        .arg(dest.join("scratch.o"))));
    assert!(
        link.starts_with(&format!("libxalloc.so.{VERSION}.debug\0")),
        "{link:?}"
    );
    assert!(
        fs::metadata(&real).unwrap().len() < fs::metadata(&lib).unwrap().len() / 2,
        "the installed library is not much smaller than the built one"
    );

    // pkg-config finds it, and a program built with its flags runs on the installed library.
    let pkg = |args: &[&str]| {
        stdout(&run(Command::new("pkg-config")
            .args(args)
            .arg("xalloc")
            .env("PKG_CONFIG_PATH", libdir.join("pkgconfig"))
            .env("PKG_CONFIG_SYSROOT_DIR", &dest)))
    };
    assert_eq!(pkg(&["--modversion"]).trim(), VERSION);
    let flags = pkg(&["--cflags", "--libs"]);
    let src = dest.join("prog.c");
    fs::write(&src, PROGRAM).unwrap();
    let exe = dest.join("prog");
    run(Command::new("cc")
        .arg(&src)
        .args(flags.split_whitespace())
        .arg("-ldl")
        .arg("-o")
        .arg(&exe));
    assert!(
        readelf(&["-d"], &exe).contains(&format!("Shared library: [{soname}]")),
        "prog does not link {soname}"
    );
    let out = stdout(&run(Command::new(&exe)
        .env("LD_LIBRARY_PATH", &libdir)
        .env_remove("LD_PRELOAD")));
    let expect = format!(
        "malloc from {}, version {VERSION}",
        libdir.join(&soname).display()
    );
    assert_eq!(out.trim(), expect);

    // The installed xalloc-run knows its version and the installed library.
    let xrun = root.join("bin/xalloc-run");
    let out = stdout(&run(Command::new(&xrun).arg("--version")));
    assert!(
        out.contains(&format!("xalloc-run (xalloc) {VERSION}")),
        "{out}"
    );
    assert!(
        out.contains(&format!("library: {prefix}/lib/{soname}")),
        "{out}"
    );
    let out = stdout(&run(Command::new(&xrun)
        .args(["/bin/sh", "-c", "echo $LD_PRELOAD"])
        .env("XALLOC_SO", &real)));
    assert_eq!(out.trim(), real.display().to_string());

    // The man pages format without warnings, the version filled in.
    for (page, needle) in [
        ("share/man/man3/xalloc.3", "XALLOC_STATS_FILE"),
        ("share/man/man1/xalloc-run.1", "XALLOC_SO"),
    ] {
        let out = run(Command::new("man")
            .args(["--warnings", "-l"])
            .arg(root.join(page))
            .env("MANWIDTH", "80")
            .env_remove("MAN_KEEP_FORMATTING"));
        let text = stdout(&out);
        assert!(text.contains(needle), "{page}:\n{text}");
        assert!(
            text.contains(&format!("xalloc {VERSION}")),
            "{page}:\n{text}"
        );
        assert!(
            out.stderr.is_empty(),
            "{page}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    // make uninstall leaves no file behind.
    make("uninstall");
    let mut left = Vec::new();
    let mut stack = vec![root.clone()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() && !p.is_symlink() {
                stack.push(p);
            } else {
                left.push(p);
            }
        }
    }
    assert!(left.is_empty(), "left after make uninstall: {left:?}");
    let _ = fs::remove_dir_all(&dest);
}

#[test]
fn xalloc_run_options() {
    let lib = library();
    let script = manifest_dir().join("scripts/xalloc-run");
    let xrun = || {
        let mut c = Command::new(&script);
        c.env("XALLOC_SO", &lib);
        c
    };
    let help = stdout(&run(xrun().arg("--help")));
    for name in [
        "XALLOC_PURGE_DELAY_MS",
        "XALLOC_DIRTY_CAP",
        "XALLOC_STATS",
        "XALLOC_STATS_FILE",
        "XALLOC_VERBOSE",
        "XALLOC_SO",
    ] {
        assert!(help.contains(name), "--help does not list {name}:\n{help}");
    }
    let version = stdout(&run(xrun().arg("--version")));
    assert!(
        version.starts_with(&format!("xalloc-run (xalloc) {VERSION}\n")),
        "{version}"
    );

    // An unknown option is an error, not an option of `exec` (`-c` would empty the
    // environment).
    let out = xrun().args(["-c", "true"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown option '-c'"));
    let out = xrun().output().unwrap();
    assert_eq!(out.status.code(), Some(2));

    // After --, a command whose name starts with '-' runs, with the library preloaded.
    let dir = scratch("dash-command");
    let cmd = dir.join("-odd-name");
    fs::write(&cmd, "#!/bin/sh\necho \"args=$* preload=$LD_PRELOAD\"\n").unwrap();
    run(Command::new("chmod").arg("755").arg(&cmd));
    let path = format!(
        "{}:{}",
        dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = stdout(&run(xrun()
        .args(["--", "-odd-name", "-x", "y"])
        .env("PATH", path)));
    assert_eq!(
        out.trim(),
        format!("args=-x y preload={}", lib.display()),
        "{out}"
    );
    let _ = fs::remove_dir_all(&dir);
}

const RUST_MAIN: &str = r#"
use std::alloc::Layout;
use std::ffi::c_void;

#[global_allocator]
static GLOBAL: xalloc::XAlloc = xalloc::XAlloc;

fn owned<T: ?Sized>(p: *const T) -> bool {
    xalloc::ffi::xa_owns(p as *const c_void) == 1
}

#[repr(align(4096))]
struct Page([u8; 100]);

fn main() {
    let b = Box::new([7u8; 100]);
    let v: Vec<u64> = (0..100_000).collect();
    let s = "xalloc".repeat(1000);
    let page = Box::new(Page([1; 100]));
    let zeroed = unsafe { std::alloc::alloc_zeroed(Layout::from_size_align(5000, 64).unwrap()) };
    assert!(owned(&*b), "Box");
    assert!(owned(v.as_ptr()), "Vec");
    assert!(owned(s.as_ptr()), "String");
    assert!(owned(&*page) && (&*page as *const Page as usize) % 4096 == 0, "aligned Box");
    assert!(owned(zeroed), "alloc_zeroed");
    unsafe { std::alloc::dealloc(zeroed, Layout::from_size_align(5000, 64).unwrap()) };
    // Threads allocate from it too.
    let t = std::thread::spawn(|| {
        let x = Box::new(5u32);
        owned(&*x)
    });
    assert!(t.join().unwrap(), "Box in a thread");
    assert_eq!(v.iter().sum::<u64>(), 4_999_950_000);
    println!("allocations come from xalloc {}", unsafe {
        std::ffi::CStr::from_ptr(xalloc::ffi::xa_version()).to_str().unwrap()
    });
}
"#;

#[test]
fn a_rust_program_declares_xalloc_its_global_allocator() {
    // Sources are rewritten each time; the build directory is kept so later runs are quick.
    let dir = target_dir().join("packaging").join("rust-user");
    fs::create_dir_all(dir.join("src")).unwrap();
    let manifest = format!(
        "[package]\nname = \"xalloc-user\"\nversion = \"0.0.0\"\nedition = \"2021\"\n\
         publish = false\n\n[dependencies]\nxalloc = {{ path = {:?} }}\n\n\
         # not a member of the xalloc workspace above it\n[workspace]\n",
        manifest_dir().display().to_string()
    );
    fs::write(dir.join("Cargo.toml"), manifest).unwrap();
    fs::write(dir.join("src/main.rs"), RUST_MAIN).unwrap();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string());
    run(Command::new(&cargo)
        .args(["build", "--offline", "--quiet"])
        .current_dir(&dir)
        .env(
            "CARGO_TARGET_DIR",
            target_dir().join("packaging/rust-user-target"),
        )
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_BUILD_TARGET"));
    let exe = target_dir().join("packaging/rust-user-target/debug/xalloc-user");
    let out = stdout(&run(Command::new(&exe).env_remove("LD_PRELOAD")));
    assert_eq!(
        out.trim(),
        format!("allocations come from xalloc {VERSION}")
    );
}

//! The free-block mark must not reach a fuzzer's comparison hooks.
//!
//! `cargo fuzz` builds every crate, xalloc included, with SanitizerCoverage's
//! `trace-compares`: each integer comparison also calls `__sanitizer_cov_trace_cmp8(a, b)` (and
//! its kin), and libFuzzer keeps the operands in its table of recent compares. Its `CMP`
//! mutation then writes one operand into the next input wherever the input holds the other:
//! exactly how it solves `input == magic`. The double-free check of `free` compares a block's
//! second word with `mark ^ address`; libFuzzer copies every input into a fresh
//! `new uint8_t[size]` buffer before the run and deletes it after, so the compare it saw was
//! "bytes 8..16 of my input == mark ^ X", X being the buffer's address, which the next input of
//! the same size class gets again (hot lists are last in, first out). The mutation made the
//! input hold `mark ^ X` there, libFuzzer copied it into the buffer at X, and deleting the
//! buffer aborted with `free(): double free` on a live block (outside the target function, so
//! the saved crash input was empty and reproduced nothing).
//!
//! Built with `--cfg fuzzing` (which `cargo fuzz` passes), `Block::is_marked` compares in
//! assembly, out of the instrumentation's sight. This test builds a small program the way
//! `cargo fuzz` builds the fuzz target (same `RUSTFLAGS`), with hooks of its own that record
//! every traced operand, and checks that a `free` records some compares but never the mark of
//! the block it frees.
//!
//! The build directory is kept under the target directory, so only the first run is slow.

use std::fs;
use std::path::Path;
use std::process::Command;

mod common;
use common::{manifest_dir, target_dir};

/// What `cargo fuzz build --sanitizer none` (cargo-fuzz 0.13) gives rustc, less the flags that
/// only shape code generation.
const FUZZ_RUSTFLAGS: &str = "-Cpasses=sancov-module \
    -Cllvm-args=-sanitizer-coverage-level=4 \
    -Cllvm-args=-sanitizer-coverage-inline-8bit-counters \
    -Cllvm-args=-sanitizer-coverage-pc-table \
    -Cllvm-args=-sanitizer-coverage-trace-compares \
    --cfg fuzzing";

/// The probe: the hooks libFuzzer would define, recording operands into a ring without a
/// comparison of their own (they are instrumented too), and a malloc/free cycle.
const PROBE_MAIN: &str = r#"
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
use xalloc as _;

const N: usize = 1 << 16;
static POS: AtomicUsize = AtomicUsize::new(0);
static OPS: [AtomicU64; N] = [const { AtomicU64::new(0) }; N];

#[inline(always)]
fn record(a: u64, b: u64) {
    let i = POS.fetch_add(2, Relaxed);
    // No bounds check (it would be a traced comparison calling back in here).
    unsafe {
        (*OPS.as_ptr().wrapping_add(i & (N - 1))).store(a, Relaxed);
        (*OPS.as_ptr().wrapping_add((i + 1) & (N - 1))).store(b, Relaxed);
    }
}

#[no_mangle] pub extern "C" fn __sanitizer_cov_trace_cmp8(a: u64, b: u64) { record(a, b) }
#[no_mangle] pub extern "C" fn __sanitizer_cov_trace_const_cmp8(a: u64, b: u64) { record(a, b) }
#[no_mangle] pub extern "C" fn __sanitizer_cov_trace_cmp4(a: u32, b: u32) { record(a as u64, b as u64) }
#[no_mangle] pub extern "C" fn __sanitizer_cov_trace_const_cmp4(a: u32, b: u32) { record(a as u64, b as u64) }
#[no_mangle] pub extern "C" fn __sanitizer_cov_trace_cmp2(a: u16, b: u16) { record(a as u64, b as u64) }
#[no_mangle] pub extern "C" fn __sanitizer_cov_trace_const_cmp2(a: u16, b: u16) { record(a as u64, b as u64) }
#[no_mangle] pub extern "C" fn __sanitizer_cov_trace_cmp1(a: u8, b: u8) { record(a as u64, b as u64) }
#[no_mangle] pub extern "C" fn __sanitizer_cov_trace_const_cmp1(a: u8, b: u8) { record(a as u64, b as u64) }
#[no_mangle] pub extern "C" fn __sanitizer_cov_trace_switch(v: u64, _cases: *const u64) { record(v, 0) }
#[no_mangle] pub extern "C" fn __sanitizer_cov_trace_pc_indir(_callee: usize) {}
#[no_mangle] pub extern "C" fn __sanitizer_cov_8bit_counters_init(_: *mut u8, _: *mut u8) {}
#[no_mangle] pub extern "C" fn __sanitizer_cov_pcs_init(_: *const usize, _: *const usize) {}

extern "C" {
    fn malloc(n: usize) -> *mut u8;
    fn free(p: *mut u8);
}

fn main() {
    unsafe {
        let p = malloc(32);
        free(p);
        // The freed block's second word now holds mark ^ p (the memory stays ours).
        let mark_p = core::ptr::read_volatile(p.add(8) as *const u64);
        let q = malloc(32);
        assert!(q == p, "the hot list handed out another block");
        // A live block whose second word the program filled (as libFuzzer copies its input).
        core::ptr::write_volatile(q.add(8) as *mut u64, 0x0123_4567_89ab_cdef);
        let before = POS.load(Relaxed);
        free(q);
        let after = POS.load(Relaxed);
        assert!(after > before, "free traced no comparison: xalloc is not instrumented");
        assert!(after - before < N, "too many comparisons to keep");
        let leaked = (before..after).any(|i| OPS[i & (N - 1)].load(Relaxed) == mark_p);
        if leaked {
            println!("leaked: free handed mark ^ address to a comparison hook");
            std::process::exit(1);
        }
        println!("ok: {} operands traced, none of them the mark", after - before);
    }
}
"#;

fn host_triple() -> String {
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".to_string());
    let out = Command::new(rustc).arg("-vV").output().expect("rustc -vV");
    let text = String::from_utf8(out.stdout).expect("rustc -vV prints UTF-8");
    text.lines()
        .find_map(|l| l.strip_prefix("host: "))
        .expect("rustc -vV names the host")
        .to_string()
}

fn run(cmd: &mut Command) -> String {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}):\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

#[test]
fn the_free_block_mark_is_never_a_traced_comparison_operand() {
    let dir = target_dir().join("fuzz-secret").join("probe");
    fs::create_dir_all(dir.join("src")).unwrap();
    let manifest = format!(
        "[package]\nname = \"xalloc-fuzz-secret-probe\"\nversion = \"0.0.0\"\n\
         edition = \"2021\"\npublish = false\n\n[dependencies]\nxalloc = {{ path = {:?} }}\n\n\
         # not a member of the xalloc workspace above it\n[workspace]\n",
        manifest_dir().display().to_string()
    );
    fs::write(dir.join("Cargo.toml"), manifest).unwrap();
    fs::write(dir.join("src/main.rs"), PROBE_MAIN).unwrap();
    let build = target_dir().join("fuzz-secret").join("target");
    let triple = host_triple();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string());
    // An explicit --target keeps the instrumentation off build scripts, as cargo fuzz does.
    run(Command::new(&cargo)
        .args([
            "build",
            "--release",
            "--offline",
            "--quiet",
            "--target",
            &triple,
        ])
        .current_dir(&dir)
        .env("CARGO_TARGET_DIR", &build)
        .env("RUSTFLAGS", FUZZ_RUSTFLAGS)
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("CARGO_BUILD_TARGET"));
    let exe: &Path = &build.join(&triple).join("release/xalloc-fuzz-secret-probe");
    let out = run(Command::new(exe).env_remove("LD_PRELOAD"));
    assert!(out.starts_with("ok:"), "{out}");
}

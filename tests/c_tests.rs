//! Runs the C and C++ test programs in `c-tests/` against the xalloc shared
//! library.
//!
//! Every `c-tests/*.c` (built with `gcc`) and `c-tests/*.cc` (built with
//! `g++`) file is one test program; `c-tests/testhelper.h` holds the shared
//! helpers and is not a test.  Programs are compiled with
//! `-O1 -g -Wall -Wextra -pthread -fno-builtin` into `target/c-tests/`
//! (inside each trial, so trials build and run in parallel) and run with a
//! timeout, stdin closed and stdout/stderr captured.  The executable
//! `target/c-tests/<name>` serves the `preload` and `glibc` trials,
//! `<name>.direct` the `direct` one; a mode whose `cflags`/`libs` differ
//! from the others gets its own `<name>.<mode>`.
//!
//! # Library
//!
//! The library is `$XALLOC_SO` if set, else
//! `<manifest dir>/target/release/libxalloc.so` (the target directory follows
//! `$CARGO_TARGET_DIR` when that is set).  The harness never builds it: when
//! it is missing, every trial that needs it fails and says to run
//! `cargo build --release` first.
//!
//! # Header directives
//!
//! The first 20 lines of a test file may hold directives, one per line, as
//! `// key: value` comments.  A lowercase word followed by `:` right after
//! `//` is a directive; an unknown key is an error (so typos do not pass
//! silently), so write prose lines starting with a capital letter.
//!
//! | key       | value                                     | default  |
//! |-----------|-------------------------------------------|----------|
//! | `mode`    | one or more of `preload direct glibc`     | preload  |
//! | `expect`  | `exit N`, `abort` (SIGABRT), `signal N`   | exit 0   |
//! | `stderr`  | substring stderr must contain (repeatable)| none     |
//! | `stdout`  | substring stdout must contain (repeatable)| none     |
//! | `args`    | whitespace-separated program arguments    | none     |
//! | `timeout` | seconds before the program is killed      | 60       |
//! | `libs`    | extra link flags, e.g. `-ldl`             | none     |
//! | `cflags`  | extra compile flags                       | none     |
//! | `env`     | `NAME=value` for the program (repeatable) | none     |
//!
//! Modes, each one trial:
//! - `preload` (trial `<name>`): run with `LD_PRELOAD=<library>`;
//! - `direct` (trial `<name>::direct`): linked with
//!   `-L<dir> -lxalloc -Wl,-rpath,<dir>`, run without `LD_PRELOAD`;
//! - `glibc` (trial `<name>::glibc`): plain C library, no xalloc; checks that
//!   the test itself is right.
//!
//! A key may be limited to one mode with `key@mode:`, e.g.
//! `// stderr@glibc: free(): invalid pointer`.  For a given mode, the
//! `key@mode` lines replace the plain `key` lines when there are any.
//!
//! In `stderr`/`stdout` patterns, `$PTR` stands for the pointer the program
//! announced on stdout with a line `XALLOC_TEST_PTR=0x...` (the last such
//! line): it matches a `0x` hexadecimal number of the same value, whatever
//! its zero padding or case.  A pattern that is only `$PTR` matches that
//! number anywhere.
//!
//! The program gets `XALLOC_TEST_MODE=<mode>` and, in the xalloc modes,
//! `XALLOC_TEST_LIB=<library path>` in its environment; core dumps are
//! disabled.  Each program runs in its own process group: the whole group
//! (forked children included) is killed when it times out or once the
//! program exits, and the program is killed if the harness dies.

use std::collections::HashMap;
use std::ffi::c_ulong;
use std::fmt::Write as _;
use std::fs;
use std::io::Read;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

use libtest_mimic::{Arguments, Failed, Trial};
use parking_lot::Mutex;

const HEADER_LINES: usize = 20;
const DEFAULT_TIMEOUT_S: f64 = 60.0;
const BASE_CFLAGS: &[&str] = &["-O1", "-g", "-Wall", "-Wextra", "-pthread", "-fno-builtin"];
const TAIL_LINES_STDERR: usize = 30;
const TAIL_LINES_STDOUT: usize = 15;
const PTR_ANNOUNCE: &str = "XALLOC_TEST_PTR=";

// ---------------------------------------------------------------------------
// Small libc surface (std already links the C library).

#[repr(C)]
struct RLimit {
    cur: c_ulong,
    max: c_ulong,
}

unsafe extern "C" {
    fn setrlimit(resource: i32, rlim: *const RLimit) -> i32;
    fn kill(pid: i32, sig: i32) -> i32;
    fn prctl(option: i32, ...) -> i32;
}

const RLIMIT_CORE: i32 = 4;
const PR_SET_PDEATHSIG: i32 = 1;
const SIGKILL: i32 = 9;

fn kill_group(pgid: i32) {
    if pgid > 0 {
        // SAFETY: plain syscall wrapper; a negative pid names the group.
        unsafe {
            kill(-pgid, SIGKILL);
        }
    }
}

fn signal_name(sig: i32) -> &'static str {
    match sig {
        1 => "SIGHUP",
        2 => "SIGINT",
        3 => "SIGQUIT",
        4 => "SIGILL",
        5 => "SIGTRAP",
        6 => "SIGABRT",
        7 => "SIGBUS",
        8 => "SIGFPE",
        9 => "SIGKILL",
        11 => "SIGSEGV",
        13 => "SIGPIPE",
        14 => "SIGALRM",
        15 => "SIGTERM",
        24 => "SIGXCPU",
        25 => "SIGXFSZ",
        31 => "SIGSYS",
        _ => "signal",
    }
}

fn parse_signal(s: &str) -> Option<i32> {
    if let Ok(n) = s.parse::<i32>() {
        return Some(n);
    }
    let upper = s.to_ascii_uppercase();
    let name = if upper.starts_with("SIG") {
        upper
    } else {
        format!("SIG{upper}")
    };
    (1..=31).find(|&n| signal_name(n) == name)
}

// ---------------------------------------------------------------------------
// Header directives.

#[derive(Clone, Copy, PartialEq, Eq, Debug, Hash)]
enum Mode {
    Preload,
    Direct,
    Glibc,
}

impl Mode {
    const ALL: [Mode; 3] = [Mode::Preload, Mode::Direct, Mode::Glibc];

    fn name(self) -> &'static str {
        match self {
            Mode::Preload => "preload",
            Mode::Direct => "direct",
            Mode::Glibc => "glibc",
        }
    }

    fn parse(s: &str) -> Option<Mode> {
        Mode::ALL.into_iter().find(|m| m.name() == s)
    }

    fn trial_suffix(self) -> &'static str {
        match self {
            Mode::Preload => "",
            Mode::Direct => "::direct",
            Mode::Glibc => "::glibc",
        }
    }

    fn uses_library(self) -> bool {
        self != Mode::Glibc
    }
}

const KEYS: &[&str] = &[
    "mode", "expect", "stderr", "stdout", "args", "timeout", "libs", "cflags", "env",
];

#[derive(Clone, Debug)]
struct Directive {
    key: String,
    mode: Option<Mode>,
    value: String,
}

#[derive(Clone, Debug)]
struct Header {
    modes: Vec<Mode>,
    directives: Vec<Directive>,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Expect {
    Exit(i32),
    Signal(i32),
}

impl std::fmt::Display for Expect {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match *self {
            Expect::Exit(c) => write!(f, "exit status {c}"),
            Expect::Signal(s) => write!(f, "death by signal {s} ({})", signal_name(s)),
        }
    }
}

/// What one trial needs, resolved from the header for its mode.
#[derive(Clone, Debug)]
struct TrialSpec {
    expect: Expect,
    stderr: Vec<String>,
    stdout: Vec<String>,
    args: Vec<String>,
    timeout: Duration,
    libs: Vec<String>,
    cflags: Vec<String>,
    env: Vec<(String, String)>,
}

/// Splits `key` or `key@mode` off a comment line; None if not a directive.
fn split_directive(text: &str) -> Option<(&str, &str)> {
    let colon = text.find(':')?;
    let (key, rest) = text.split_at(colon);
    let mut chars = key.chars();
    let first = chars.next()?;
    if !first.is_ascii_lowercase() {
        return None;
    }
    if !key
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '@' || c == '_')
    {
        return None;
    }
    Some((key, &rest[1..]))
}

fn parse_header(source: &str) -> Result<Header, String> {
    let mut directives = Vec::new();
    let mut modes: Option<Vec<Mode>> = None;
    for (idx, line) in source.lines().take(HEADER_LINES).enumerate() {
        let lineno = idx + 1;
        let Some(text) = line.trim_start().strip_prefix("//") else {
            continue;
        };
        let text = text.trim_start();
        let Some((key, value)) = split_directive(text) else {
            continue;
        };
        let value = value.trim().to_string();
        let (key, mode) = match key.split_once('@') {
            Some((k, m)) => {
                let mode = Mode::parse(m)
                    .ok_or_else(|| format!("line {lineno}: unknown mode `{m}` in `{key}:`"))?;
                (k, Some(mode))
            }
            None => (key, None),
        };
        if !KEYS.contains(&key) {
            return Err(format!(
                "line {lineno}: unknown directive `{key}:` (known: {}); \
                 start prose comments with a capital letter",
                KEYS.join(", ")
            ));
        }
        if key == "mode" {
            if mode.is_some() {
                return Err(format!("line {lineno}: `mode` cannot be limited to a mode"));
            }
            let list = modes.get_or_insert_with(Vec::new);
            for word in value.split_whitespace() {
                let m = Mode::parse(word).ok_or_else(|| {
                    format!("line {lineno}: unknown mode `{word}` (known: preload, direct, glibc)")
                })?;
                if !list.contains(&m) {
                    list.push(m);
                }
            }
            continue;
        }
        if value.is_empty() {
            return Err(format!("line {lineno}: `{key}:` needs a value"));
        }
        directives.push(Directive {
            key: key.to_string(),
            mode,
            value,
        });
    }
    let modes = modes.unwrap_or_else(|| vec![Mode::Preload]);
    if modes.is_empty() {
        return Err("`mode:` lists no mode".to_string());
    }
    let header = Header { modes, directives };
    // Validate every mode's view now, so errors show up for every trial.
    for m in Mode::ALL {
        header.spec(m)?;
    }
    Ok(header)
}

impl Header {
    /// Values of `key` for `mode`: the `key@mode` lines if any, else `key`.
    fn values(&self, key: &str, mode: Mode) -> Vec<&str> {
        let qualified: Vec<&str> = self
            .directives
            .iter()
            .filter(|d| d.key == key && d.mode == Some(mode))
            .map(|d| d.value.as_str())
            .collect();
        if !qualified.is_empty() {
            return qualified;
        }
        self.directives
            .iter()
            .filter(|d| d.key == key && d.mode.is_none())
            .map(|d| d.value.as_str())
            .collect()
    }

    fn single(&self, key: &str, mode: Mode) -> Result<Option<&str>, String> {
        let v = self.values(key, mode);
        match v.len() {
            0 => Ok(None),
            1 => Ok(Some(v[0])),
            _ => Err(format!(
                "`{key}:` given {} times for mode {}",
                v.len(),
                mode.name()
            )),
        }
    }

    fn spec(&self, mode: Mode) -> Result<TrialSpec, String> {
        let expect = match self.single("expect", mode)? {
            None => Expect::Exit(0),
            Some(v) => {
                let words: Vec<&str> = v.split_whitespace().collect();
                match words.as_slice() {
                    ["abort"] => Expect::Signal(6),
                    ["exit", n] => Expect::Exit(
                        n.parse()
                            .map_err(|_| format!("`expect: {v}`: bad exit status"))?,
                    ),
                    ["signal", s] => Expect::Signal(
                        parse_signal(s).ok_or_else(|| format!("`expect: {v}`: bad signal"))?,
                    ),
                    _ => {
                        return Err(format!(
                            "`expect: {v}`: use `exit N`, `abort` or `signal N`"
                        ));
                    }
                }
            }
        };
        let timeout = match self.single("timeout", mode)? {
            None => DEFAULT_TIMEOUT_S,
            Some(v) => match v.parse::<f64>() {
                Ok(t) if t > 0.0 && t.is_finite() => t,
                _ => return Err(format!("`timeout: {v}`: not a positive number of seconds")),
            },
        };
        let words = |key: &str| -> Result<Vec<String>, String> {
            Ok(self
                .single(key, mode)?
                .map(|v| v.split_whitespace().map(str::to_string).collect())
                .unwrap_or_default())
        };
        let mut env = Vec::new();
        for v in self.values("env", mode) {
            let (k, val) = v
                .split_once('=')
                .filter(|(k, _)| !k.is_empty())
                .ok_or_else(|| format!("`env: {v}`: use NAME=value"))?;
            env.push((k.to_string(), val.to_string()));
        }
        let patterns = |key: &str| -> Result<Vec<String>, String> {
            let v: Vec<String> = self
                .values(key, mode)
                .into_iter()
                .map(str::to_string)
                .collect();
            for p in &v {
                if p.matches("$PTR").count() > 1 {
                    return Err(format!("`{key}: {p}`: at most one $PTR per pattern"));
                }
            }
            Ok(v)
        };
        Ok(TrialSpec {
            expect,
            stderr: patterns("stderr")?,
            stdout: patterns("stdout")?,
            args: words("args")?,
            timeout: Duration::from_secs_f64(timeout),
            libs: words("libs")?,
            cflags: words("cflags")?,
            env,
        })
    }
}

// ---------------------------------------------------------------------------
// Environment and discovery.

struct Config {
    manifest_dir: PathBuf,
    test_dir: PathBuf,
    out_dir: PathBuf,
    lib: PathBuf,
    lib_found: bool,
}

impl Config {
    fn discover() -> Config {
        let manifest_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
        let target_dir = match std::env::var_os("CARGO_TARGET_DIR") {
            Some(d) if !d.is_empty() => {
                let d = PathBuf::from(d);
                if d.is_absolute() {
                    d
                } else {
                    manifest_dir.join(d)
                }
            }
            _ => manifest_dir.join("target"),
        };
        let lib = match std::env::var_os("XALLOC_SO") {
            Some(p) if !p.is_empty() => {
                let p = PathBuf::from(p);
                if p.is_absolute() {
                    p
                } else {
                    std::env::current_dir().unwrap_or_default().join(p)
                }
            }
            _ => target_dir.join("release").join("libxalloc.so"),
        };
        let lib_found = lib.is_file();
        let lib = if lib_found {
            fs::canonicalize(&lib).unwrap_or(lib)
        } else {
            lib
        };
        Config {
            test_dir: manifest_dir.join("c-tests"),
            out_dir: target_dir.join("c-tests"),
            manifest_dir,
            lib,
            lib_found,
        }
    }

    fn missing_library_message(&self) -> String {
        format!(
            "xalloc library not found at {}: run `cargo build --release` first \
             (or point XALLOC_SO at the library)",
            self.lib.display()
        )
    }
}

struct TestFile {
    name: String,
    path: PathBuf,
    is_cxx: bool,
}

fn discover_files(cfg: &Config) -> Result<Vec<TestFile>, String> {
    let entries = fs::read_dir(&cfg.test_dir)
        .map_err(|e| format!("cannot read {}: {e}", cfg.test_dir.display()))?;
    let mut files = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| format!("cannot read {}: {e}", cfg.test_dir.display()))?;
        let path = entry.path();
        let is_cxx = match path.extension().and_then(|e| e.to_str()) {
            Some("c") => false,
            Some("cc") => true,
            _ => continue,
        };
        if !path.is_file() {
            continue;
        }
        let Some(name) = path
            .file_stem()
            .and_then(|s| s.to_str())
            .map(str::to_string)
        else {
            continue;
        };
        files.push(TestFile { name, path, is_cxx });
    }
    files.sort_by(|a, b| a.name.cmp(&b.name).then(a.is_cxx.cmp(&b.is_cxx)));
    Ok(files)
}

// ---------------------------------------------------------------------------
// Building.

#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
enum Variant {
    /// Plain executable: run with LD_PRELOAD or on glibc.
    Plain,
    /// Linked against the library.
    Direct,
}

impl Variant {
    fn of(mode: Mode) -> Variant {
        if mode == Mode::Direct {
            Variant::Direct
        } else {
            Variant::Plain
        }
    }
}

/// One executable shared by the trials that need the same build: the
/// variant plus the mode's `cflags` and `libs`.  Built by the first trial
/// that needs it, under the lock.
#[derive(Clone, Default)]
struct BuildSlot {
    out_name: String,
    result: Arc<Mutex<Option<Result<PathBuf, String>>>>,
}

fn compile(
    cfg: &Config,
    file: &TestFile,
    spec: &TrialSpec,
    variant: Variant,
    out_name: &str,
) -> Result<PathBuf, String> {
    let out = cfg.out_dir.join(out_name);
    let tmp = cfg
        .out_dir
        .join(format!(".{out_name}.tmp{}", std::process::id()));
    let compiler = if file.is_cxx {
        std::env::var("CXX").unwrap_or_else(|_| "g++".to_string())
    } else {
        std::env::var("CC").unwrap_or_else(|_| "gcc".to_string())
    };
    let mut cmd = Command::new(&compiler);
    cmd.args(BASE_CFLAGS)
        .arg("-I")
        .arg(&cfg.test_dir)
        .arg("-I")
        .arg(cfg.manifest_dir.join("include"))
        .args(&spec.cflags)
        .arg(&file.path)
        .arg("-o")
        .arg(&tmp);
    if variant == Variant::Direct {
        let dir = cfg.lib.parent().unwrap_or(Path::new("/"));
        cmd.arg("-Wl,--no-as-needed");
        if cfg.lib.file_name().and_then(|n| n.to_str()) == Some("libxalloc.so") {
            cmd.arg(format!("-L{}", dir.display())).arg("-lxalloc");
        } else {
            cmd.arg(&cfg.lib);
        }
        cmd.arg(format!("-Wl,-rpath,{}", dir.display()));
    }
    cmd.args(&spec.libs);
    cmd.stdin(Stdio::null());
    let shown = format!("{cmd:?}");
    let output = cmd
        .output()
        .map_err(|e| format!("cannot run {compiler}: {e}\ncommand: {shown}"))?;
    if !output.status.success() {
        let _ = fs::remove_file(&tmp);
        return Err(format!(
            "compilation failed ({})\ncommand: {shown}\n{}{}",
            describe_status(output.status),
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    fs::rename(&tmp, &out)
        .map_err(|e| format!("cannot move {} to {}: {e}", tmp.display(), out.display()))?;
    Ok(out)
}

fn build_once(
    slot: &BuildSlot,
    build: impl FnOnce(&str) -> Result<PathBuf, String>,
) -> Result<PathBuf, String> {
    let mut guard = slot.result.lock();
    if guard.is_none() {
        *guard = Some(build(&slot.out_name));
    }
    guard.as_ref().unwrap().clone()
}

// ---------------------------------------------------------------------------
// Running.

struct RunOutput {
    /// None when the program was killed for running past its timeout.
    status: Option<ExitStatus>,
    stdout: String,
    stderr: String,
    elapsed: Duration,
    notes: Vec<String>,
}

fn describe_status(status: ExitStatus) -> String {
    if let Some(code) = status.code() {
        format!("exit status {code}")
    } else if let Some(sig) = status.signal() {
        format!(
            "killed by signal {sig} ({}){}",
            signal_name(sig),
            if status.core_dumped() {
                ", core dumped"
            } else {
                ""
            }
        )
    } else {
        format!("{status}")
    }
}

fn spawn_reader(
    pipe: Option<impl Read + Send + 'static>,
    which: usize,
    tx: mpsc::Sender<(usize, Vec<u8>)>,
) {
    std::thread::spawn(move || {
        let mut buf = Vec::new();
        if let Some(mut p) = pipe {
            let _ = p.read_to_end(&mut buf);
        }
        let _ = tx.send((which, buf));
    });
}

fn run_program(mut cmd: Command, timeout: Duration) -> Result<RunOutput, String> {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    // SAFETY: the closure only makes async-signal-safe system calls: no core
    // dumps, and the program dies with the harness (e.g. on Ctrl-C) even
    // though it runs in its own process group.
    unsafe {
        cmd.pre_exec(|| {
            let none = RLimit { cur: 0, max: 0 };
            setrlimit(RLIMIT_CORE, &none);
            prctl(PR_SET_PDEATHSIG, SIGKILL as std::ffi::c_ulong);
            Ok(())
        });
    }
    let start = Instant::now();
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("cannot start {cmd:?}: {e}"))?;
    let pgid = child.id() as i32;
    let (tx, rx) = mpsc::channel();
    spawn_reader(child.stdout.take(), 0, tx.clone());
    spawn_reader(child.stderr.take(), 1, tx);

    let mut notes = Vec::new();
    let deadline = start + timeout;
    let status = loop {
        match child.try_wait() {
            Ok(Some(st)) => break Some(st),
            Ok(None) => {}
            Err(e) => {
                kill_group(pgid);
                let _ = child.wait();
                return Err(format!("waiting for the program failed: {e}"));
            }
        }
        if Instant::now() >= deadline {
            kill_group(pgid);
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let elapsed = start.elapsed();
    // Whatever the program left running (forked children) goes too.
    kill_group(pgid);

    let mut outputs: [Option<Vec<u8>>; 2] = [None, None];
    let grace = Instant::now() + Duration::from_secs(10);
    while outputs.iter().any(Option::is_none) {
        let left = grace.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok((which, buf)) => outputs[which] = Some(buf),
            Err(_) => {
                notes.push("the program's output pipes stayed open after it ended".to_string());
                break;
            }
        }
    }
    let [out, err] = outputs;
    Ok(RunOutput {
        status,
        stdout: String::from_utf8_lossy(&out.unwrap_or_default()).into_owned(),
        stderr: String::from_utf8_lossy(&err.unwrap_or_default()).into_owned(),
        elapsed,
        notes,
    })
}

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    let start = all.len().saturating_sub(lines);
    let mut s = String::new();
    if start > 0 {
        let _ = writeln!(s, "    [... {start} earlier lines]");
    }
    for l in &all[start..] {
        let _ = writeln!(s, "    {l}");
    }
    s
}

/// The pointer announced by the program with `XALLOC_TEST_PTR=0x...`.
fn announced_pointer(stdout: &str) -> Option<u64> {
    stdout
        .lines()
        .rev()
        .find_map(|l| l.trim().strip_prefix(PTR_ANNOUNCE))
        .and_then(parse_hex)
}

fn parse_hex(s: &str) -> Option<u64> {
    let s = s.trim();
    let digits = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X"))?;
    if digits.is_empty() {
        return None;
    }
    u64::from_str_radix(digits, 16).ok()
}

/// Does `text` contain `pattern`, with `$PTR` matching a hex number equal
/// to `ptr`?
fn pattern_matches(text: &str, pattern: &str, ptr: Option<u64>) -> Result<bool, String> {
    let Some((pre, post)) = pattern.split_once("$PTR") else {
        return Ok(text.contains(pattern));
    };
    let ptr = ptr.ok_or_else(|| {
        format!("pattern `{pattern}` uses $PTR but the program printed no `{PTR_ANNOUNCE}0x...` line on stdout")
    })?;
    let mut from = 0;
    while from <= text.len() {
        let hay = &text[from..];
        let pos = if pre.is_empty() {
            hay.find("0x")
        } else {
            hay.find(pre)
        };
        let Some(pos) = pos else { break };
        let at = from + pos + pre.len();
        let rest = &text[at..];
        if let Some(hex) = rest.strip_prefix("0x").or_else(|| rest.strip_prefix("0X")) {
            let len = hex.bytes().take_while(u8::is_ascii_hexdigit).count();
            if len > 0 && len <= 16 {
                if let Ok(v) = u64::from_str_radix(&hex[..len], 16) {
                    if v == ptr && hex[len..].starts_with(post) {
                        return Ok(true);
                    }
                }
            }
        }
        from = from + pos + 1;
        while from < text.len() && !text.is_char_boundary(from) {
            from += 1;
        }
    }
    Ok(false)
}

fn check_result(spec: &TrialSpec, out: &RunOutput) -> Vec<String> {
    let mut problems = Vec::new();
    match out.status {
        None => problems.push(format!(
            "timed out after {:.1}s (limit {:.0}s); the process group was killed",
            out.elapsed.as_secs_f64(),
            spec.timeout.as_secs_f64()
        )),
        Some(st) => {
            let ok = match spec.expect {
                Expect::Exit(c) => st.code() == Some(c),
                Expect::Signal(s) => st.signal() == Some(s),
            };
            if !ok {
                problems.push(format!(
                    "expected {}, got {}",
                    spec.expect,
                    describe_status(st)
                ));
            }
        }
    }
    let ptr = announced_pointer(&out.stdout);
    for (stream, patterns, text) in [
        ("stderr", &spec.stderr, &out.stderr),
        ("stdout", &spec.stdout, &out.stdout),
    ] {
        for p in patterns {
            match pattern_matches(text, p, ptr) {
                Ok(true) => {}
                Ok(false) => match (p.contains("$PTR"), ptr) {
                    (true, Some(v)) => {
                        problems.push(format!("{stream} does not contain `{p}` ($PTR = {v:#x})"))
                    }
                    _ => problems.push(format!("{stream} does not contain `{p}`")),
                },
                Err(e) => problems.push(e),
            }
        }
    }
    problems.extend(out.notes.iter().cloned());
    problems
}

fn shell_quote(s: &str) -> String {
    if !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"/._-=,:+@".contains(&b))
    {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

struct TrialCtx {
    cfg: Arc<Config>,
    file: Arc<TestFile>,
    header: Result<Header, String>,
    mode: Mode,
    slot: BuildSlot,
}

fn run_trial(ctx: TrialCtx) -> Result<(), Failed> {
    let header = ctx
        .header
        .map_err(|e| format!("{}: bad header: {e}", ctx.file.path.display()))?;
    let spec = header.spec(ctx.mode)?;
    let cfg = &ctx.cfg;
    if ctx.mode.uses_library() && !cfg.lib_found {
        return Err(cfg.missing_library_message().into());
    }
    let variant = Variant::of(ctx.mode);
    let bin = build_once(&ctx.slot, |out_name| {
        compile(cfg, &ctx.file, &spec, variant, out_name)
    })?;

    let mut cmd = Command::new(&bin);
    cmd.args(&spec.args).current_dir(&cfg.manifest_dir);
    let mut shown_env = vec![format!("XALLOC_TEST_MODE={}", ctx.mode.name())];
    cmd.env("XALLOC_TEST_MODE", ctx.mode.name());
    cmd.env_remove("LD_PRELOAD");
    if ctx.mode.uses_library() {
        cmd.env("XALLOC_TEST_LIB", &cfg.lib);
        shown_env.push(format!("XALLOC_TEST_LIB={}", cfg.lib.display()));
    } else {
        cmd.env_remove("XALLOC_TEST_LIB");
    }
    if ctx.mode == Mode::Preload {
        cmd.env("LD_PRELOAD", &cfg.lib);
        shown_env.push(format!("LD_PRELOAD={}", cfg.lib.display()));
    }
    for (k, v) in &spec.env {
        cmd.env(k, v);
        shown_env.push(format!("{k}={v}"));
    }
    let mut repro: Vec<String> = shown_env.iter().map(|s| shell_quote(s)).collect();
    repro.push(shell_quote(&bin.display().to_string()));
    repro.extend(spec.args.iter().map(|a| shell_quote(a)));

    let out = run_program(cmd, spec.timeout)?;
    let problems = check_result(&spec, &out);
    if problems.is_empty() {
        return Ok(());
    }
    let mut msg = String::new();
    for p in &problems {
        let _ = writeln!(msg, "{p}");
    }
    let _ = writeln!(
        msg,
        "status: {}",
        match out.status {
            Some(st) => describe_status(st),
            None => "killed after timeout".to_string(),
        }
    );
    let _ = writeln!(msg, "reproduce: {}", repro.join(" "));
    let _ = writeln!(msg, "--- stdout (last {TAIL_LINES_STDOUT} lines) ---");
    msg.push_str(&tail(&out.stdout, TAIL_LINES_STDOUT));
    let _ = writeln!(msg, "--- stderr (last {TAIL_LINES_STDERR} lines) ---");
    msg.push_str(&tail(&out.stderr, TAIL_LINES_STDERR));
    Err(msg.into())
}

fn main() {
    let args = Arguments::from_args();
    let cfg = Arc::new(Config::discover());

    let files = match discover_files(&cfg) {
        Ok(f) => f,
        Err(e) => {
            let trials = vec![Trial::test("c-tests discovery", move || Err(e.into()))];
            libtest_mimic::run(&args, trials).exit();
        }
    };

    // The output directory is created once, before any trial compiles.
    let out_dir_error = fs::create_dir_all(&cfg.out_dir)
        .err()
        .map(|e| format!("cannot create {}: {e}", cfg.out_dir.display()));

    let mut seen: HashMap<String, PathBuf> = HashMap::new();
    let mut trials = vec![Trial::test("harness::self_check", self_check)];
    for file in files {
        let file = Arc::new(file);
        if let Some(other) = seen.insert(file.name.clone(), file.path.clone()) {
            let msg = format!(
                "{} and {} would both be trial `{}`; rename one",
                other.display(),
                file.path.display(),
                file.name
            );
            trials.push(Trial::test(
                format!("{}::name-clash", file.name),
                move || Err(msg.into()),
            ));
            continue;
        }
        let header = fs::read_to_string(&file.path)
            .map_err(|e| format!("cannot read: {e}"))
            .and_then(|src| parse_header(&src));
        let modes = match &header {
            Ok(h) => h.modes.clone(),
            Err(_) => vec![Mode::Preload],
        };
        let mut slots: HashMap<(Variant, Vec<String>, Vec<String>), BuildSlot> = HashMap::new();
        for mode in modes {
            let variant = Variant::of(mode);
            let flags = match header.as_ref().map(|h| h.spec(mode)) {
                Ok(Ok(spec)) => (spec.cflags, spec.libs),
                _ => (Vec::new(), Vec::new()),
            };
            let key = (variant, flags.0, flags.1);
            let taken: Vec<&str> = slots.values().map(|s| s.out_name.as_str()).collect();
            let out_name = [
                match variant {
                    Variant::Plain => file.name.clone(),
                    Variant::Direct => format!("{}.direct", file.name),
                },
                format!("{}.{}", file.name, mode.name()),
            ]
            .into_iter()
            .find(|n| !taken.contains(&n.as_str()))
            .unwrap_or_default();
            let slot = slots
                .entry(key)
                .or_insert_with(|| BuildSlot {
                    out_name,
                    result: Default::default(),
                })
                .clone();
            let ctx = TrialCtx {
                cfg: cfg.clone(),
                file: file.clone(),
                header: header.clone(),
                mode,
                slot,
            };
            let name = format!("{}{}", file.name, mode.trial_suffix());
            let out_dir_error = out_dir_error.clone();
            trials.push(Trial::test(name, move || {
                if let Some(e) = out_dir_error {
                    return Err(e.into());
                }
                run_trial(ctx)
            }));
        }
    }
    libtest_mimic::run(&args, trials).exit();
}

/// Checks of the harness's own header parsing and pattern matching; run as
/// the trial `harness::self_check`.
fn self_check() -> Result<(), Failed> {
    fn ensure(cond: bool, what: &str) -> Result<(), Failed> {
        if cond {
            Ok(())
        } else {
            Err(format!("harness self-check failed: {what}").into())
        }
    }
    let h = parse_header(
        "// mode: preload direct glibc\n// expect: abort\n// stderr: a $PTR b\n\
         // stderr@glibc: plain\n// Prose: not a directive\n// timeout: 5\n// env: A=b=c\n",
    )?;
    ensure(
        h.modes == [Mode::Preload, Mode::Direct, Mode::Glibc],
        "modes",
    )?;
    let pre = h.spec(Mode::Preload)?;
    let gl = h.spec(Mode::Glibc)?;
    ensure(pre.expect == Expect::Signal(6), "abort")?;
    ensure(pre.stderr == ["a $PTR b"], "plain stderr for preload")?;
    ensure(gl.stderr == ["plain"], "qualified stderr replaces plain")?;
    ensure(pre.timeout == Duration::from_secs(5), "timeout")?;
    ensure(pre.env == [("A".to_string(), "b=c".to_string())], "env")?;
    ensure(
        parse_header("// mode: preload\n// expcet: abort\n").is_err(),
        "typo rejected",
    )?;
    ensure(
        parse_header("// mode: preload nowhere\n").is_err(),
        "bad mode rejected",
    )?;
    ensure(
        parse_header("// expect: exit\n").is_err(),
        "bad expect rejected",
    )?;
    ensure(
        parse_header("int x;\n")
            .map(|h| h.modes == [Mode::Preload])
            .unwrap_or(false),
        "default mode",
    )?;
    ensure(
        parse_header("// expect: signal SIGSEGV\n")?
            .spec(Mode::Preload)?
            .expect
            == Expect::Signal(11),
        "signal name",
    )?;

    let text = "xalloc: free(): invalid pointer 0x00007f00dead0010\n";
    let p = Some(0x7f00_dead_0010u64);
    ensure(
        pattern_matches(text, "xalloc: free(): invalid pointer $PTR", p)?,
        "padded $PTR",
    )?;
    ensure(
        pattern_matches("x 0x7F00DEAD0010 y", "x $PTR y", p)?,
        "uppercase $PTR",
    )?;
    ensure(
        !pattern_matches(text, "xalloc: free(): invalid pointer $PTR", Some(0x10))?,
        "wrong $PTR",
    )?;
    ensure(
        !pattern_matches(text, "double free $PTR", p)?,
        "wrong prefix",
    )?;
    ensure(
        pattern_matches("at 0x1 and 0x7f00dead0010.", "$PTR", p)?,
        "bare $PTR",
    )?;
    ensure(
        pattern_matches("at 0x7f00dead0010.", "$PTR.", p)?,
        "suffix after $PTR",
    )?;
    ensure(
        !pattern_matches("at 0x7f00dead00101", "$PTR", p)?,
        "longer number",
    )?;
    ensure(
        pattern_matches(text, "$PTR", None).is_err(),
        "$PTR without announcement",
    )?;
    ensure(
        announced_pointer("a\nXALLOC_TEST_PTR=0x10\nXALLOC_TEST_PTR=0x20\n") == Some(0x20),
        "last announcement",
    )?;
    Ok(())
}

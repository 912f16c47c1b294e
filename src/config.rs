//! L2: runtime options, read once from `XALLOC_*` environment variables without allocating.
//!
//! [`OPTIONS`] is the one table of them: the environment is parsed from it, and the options
//! tables of `README.md`, `man/xalloc.3` and `xalloc-run --help` are generated from it (a test
//! fails when one of them differs; `UPDATE_DOCS=1 cargo test --release --lib options` rewrites
//! them). Values are case-insensitive. A bad value, or an `XALLOC_` name that is neither an
//! option nor one of the names the project's own scripts use ([`TOOL_NAMES`],
//! [`TOOL_PREFIXES`]), gets one warning line on standard error naming the variable, the value
//! and what is accepted; the option keeps its default. With `XALLOC_VERBOSE=1` the options in
//! force are printed once, when they are read.
//!
//! They are read at the first call that needs them: the library's load-time constructor, or an
//! allocation before it (the C++ runtime allocates before preloaded constructors run), which
//! may come before `main` or from any thread. If `environ` is not set up yet, the defaults
//! serve that call and the next call reads again.

use crate::debug::LineBuf;
use crate::os;
use core::sync::atomic::{AtomicU8, Ordering};

/// The option values.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Config {
    /// Length of a purge epoch in milliseconds (see `purge`).
    pub purge_delay_ms: u64,
    /// Bytes of dirty free pages that trigger an immediate purge (raised to twice the peak
    /// bytes in use when that is larger).
    pub dirty_cap: usize,
    /// Print statistics at exit.
    pub stats_at_exit: bool,
    /// Where the exit statistics go (`%p` = the pid); `None`: standard error.
    pub stats_file: Option<&'static [u8]>,
    /// Print the options in force when they are read.
    pub verbose: bool,
    /// Run the sampling heap profiler.
    pub prof: bool,
    /// Mean bytes allocated between two samples.
    pub prof_rate: usize,
    /// Where profiles go (`%p` = the pid); `None`: `xalloc.%p.heap`.
    pub prof_file: Option<&'static [u8]>,
    /// The signal that asks for dumps; 0: none.
    pub dump_signal: u32,
    /// Where the heap map goes at exit and on the dump signal; `None`: no heap map.
    pub heapmap_file: Option<&'static [u8]>,
    /// Back arenas with transparent huge pages.
    pub huge_pages: bool,
    /// Bit `i` set iff option `OPTIONS[i]` was taken from the environment.
    pub from_env: u32,
}

/// The defaults; `defaults_match_the_table` checks them against [`OPTIONS`].
const DEFAULT: Config = Config {
    purge_delay_ms: 100,
    dirty_cap: 8 << 20,
    stats_at_exit: false,
    stats_file: None,
    verbose: false,
    prof: false,
    prof_rate: 512 << 10,
    prof_file: None,
    dump_signal: 0,
    heapmap_file: None,
    huge_pages: false,
    from_env: 0,
};

/// How an option's value is written.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Kind {
    /// `1/true/yes/on` or `0/false/no/off`.
    Bool,
    /// A whole number of milliseconds.
    Millis,
    /// A number of bytes with an optional binary suffix.
    Size,
    /// A file name.
    Path,
    /// A signal: its number or name.
    Signal,
}

impl Kind {
    /// What a value of this kind may be, for warnings and documentation.
    pub const fn accepted(self) -> &'static str {
        match self {
            Kind::Bool => "1, true, yes, on or 0, false, no, off",
            Kind::Millis => "a whole number of milliseconds",
            Kind::Size => {
                "a number of bytes, optionally with a K, M or G suffix (or KiB, MiB, GiB)"
            }
            Kind::Path => "a file name",
            Kind::Signal => "a signal number, a name such as USR1 or SIGUSR2, or none",
        }
    }
}

/// A parsed option value.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Value {
    /// For [`Kind::Bool`].
    Bool(bool),
    /// For [`Kind::Millis`], [`Kind::Size`] and [`Kind::Signal`] (0: none).
    Num(u64),
    /// For [`Kind::Path`]: the name, or `None` for the default (standard error).
    Path(Option<&'static [u8]>),
}

/// One row of the options table.
pub struct Opt {
    /// The environment variable.
    pub name: &'static str,
    /// How its value is written.
    pub kind: Kind,
    /// The default, as the documentation shows it (parsed by the test that checks [`DEFAULT`],
    /// except for a `Path`, whose default is written in words).
    pub default: &'static str,
    /// One sentence for the documentation (`code` in backticks); read by the tests that
    /// generate and check the documentation.
    #[cfg_attr(not(test), allow(dead_code))]
    pub doc: &'static str,
    /// Store a parsed value.
    set: fn(&mut Config, Value),
    /// The value in force.
    get: fn(&Config) -> Value,
}

/// Every option, in the order the documentation lists them.
pub const OPTIONS: [Opt; 11] = [
    Opt {
        name: "XALLOC_PURGE_DELAY_MS",
        kind: Kind::Millis,
        default: "100",
        doc: "purge epoch: free pages that stayed unused and resident for a whole epoch are \
              given back with `MADV_DONTNEED`",
        set: |c, v| {
            if let Value::Num(n) = v {
                c.purge_delay_ms = n;
            }
        },
        get: |c| Value::Num(c.purge_delay_ms),
    },
    Opt {
        name: "XALLOC_DIRTY_CAP",
        kind: Kind::Size,
        default: "8M",
        doc: "purge at once when more free-but-resident bytes than this (or than twice the \
              peak bytes in use, if larger) pile up",
        set: |c, v| {
            if let Value::Num(n) = v {
                c.dirty_cap = n as usize;
            }
        },
        get: |c| Value::Num(c.dirty_cap as u64),
    },
    Opt {
        name: "XALLOC_STATS",
        kind: Kind::Bool,
        default: "off",
        doc: "print statistics when the program exits (through `exit`, not `_exit`), to a \
              copy of standard error made at start-up or to `XALLOC_STATS_FILE`",
        set: |c, v| {
            if let Value::Bool(b) = v {
                c.stats_at_exit = b;
            }
        },
        get: |c| Value::Bool(c.stats_at_exit),
    },
    Opt {
        name: "XALLOC_STATS_FILE",
        kind: Kind::Path,
        default: "standard error",
        doc: "append the exit statistics to this file instead (`%p` becomes the process id; \
              a relative name is taken from the directory the program started in); setting it \
              turns `XALLOC_STATS` on unless that is set to off",
        set: |c, v| {
            if let Value::Path(p) = v {
                c.stats_file = p;
            }
        },
        get: |c| Value::Path(c.stats_file),
    },
    Opt {
        name: "XALLOC_VERBOSE",
        kind: Kind::Bool,
        default: "off",
        doc: "print the options in force on standard error when the library reads them (at \
              start-up)",
        set: |c, v| {
            if let Value::Bool(b) = v {
                c.verbose = b;
            }
        },
        get: |c| Value::Bool(c.verbose),
    },
    Opt {
        name: "XALLOC_PROF",
        kind: Kind::Bool,
        default: "off",
        doc: "run the sampling heap profiler: about one allocation per `XALLOC_PROF_RATE` \
              bytes is sampled with its call stack; the profile is written at exit, on \
              `XALLOC_DUMP_SIGNAL` and by `xa_prof_dump`, for `xalloc-prof` to read",
        set: |c, v| {
            if let Value::Bool(b) = v {
                c.prof = b;
            }
        },
        get: |c| Value::Bool(c.prof),
    },
    Opt {
        name: "XALLOC_PROF_RATE",
        kind: Kind::Size,
        default: "512K",
        doc: "mean bytes allocated between two samples of the heap profiler (intervals are \
              drawn at random, so every byte has the same chance to be sampled)",
        set: |c, v| {
            if let Value::Num(n) = v {
                c.prof_rate = (n as usize).max(1);
            }
        },
        get: |c| Value::Num(c.prof_rate as u64),
    },
    Opt {
        name: "XALLOC_PROF_FILE",
        kind: Kind::Path,
        default: "xalloc.%p.heap",
        doc: "where the heap profile is written (`%p` becomes the process id; a relative name \
              is taken from the directory the program started in); setting it turns \
              `XALLOC_PROF` on unless that is set to off",
        set: |c, v| {
            if let Value::Path(p) = v {
                c.prof_file = p;
            }
        },
        get: |c| Value::Path(c.prof_file),
    },
    Opt {
        name: "XALLOC_DUMP_SIGNAL",
        kind: Kind::Signal,
        default: "none",
        doc: "on this signal (for example `USR2`) write the heap profile and the heap map, if \
              they are on, as at exit (a helper thread writes them; the program's own handler \
              for the signal is replaced)",
        set: |c, v| {
            if let Value::Num(n) = v {
                c.dump_signal = n as u32;
            }
        },
        get: |c| Value::Num(c.dump_signal as u64),
    },
    Opt {
        name: "XALLOC_HEAPMAP_FILE",
        kind: Kind::Path,
        default: "no heap map",
        doc: "write the heap map (every arena page's state, the huge blocks) to this file at \
              exit and on `XALLOC_DUMP_SIGNAL`, for `xalloc-prof heapmap` (`%p` becomes the \
              process id)",
        set: |c, v| {
            if let Value::Path(p) = v {
                c.heapmap_file = p;
            }
        },
        get: |c| Value::Path(c.heapmap_file),
    },
    Opt {
        name: "XALLOC_HUGE_PAGES",
        kind: Kind::Bool,
        default: "off",
        doc: "back the arenas (64 MiB each) with transparent huge pages (`MADV_HUGEPAGE`) where \
              the kernel allows them: fewer TLB misses for large heaps, resident memory in \
              2 MiB steps",
        set: |c, v| {
            if let Value::Bool(b) = v {
                c.huge_pages = b;
            }
        },
        get: |c| Value::Bool(c.huge_pages),
    },
];

/// `XALLOC_*` variables that the project's scripts and tests use for themselves
/// (`scripts/xalloc-run`, `build.rs`, the test harnesses); the library ignores them silently.
pub const TOOL_NAMES: [&str; 6] = [
    "XALLOC_SO",
    "XALLOC_SO_GIVEN",
    "XALLOC_HEADER_OUT",
    "XALLOC_SKIP_PROBE",
    "XALLOC_EXPECT_MAPPED",
    "XALLOC_OPSEQ_TRACE",
];

/// Prefixes of further `XALLOC_*` names reserved for tests and benchmarks (ignored silently).
pub const TOOL_PREFIXES: [&str; 3] = ["XALLOC_TEST_", "XALLOC_STRESS_", "XALLOC_BENCH_"];

/// 0 = not read, 1 = being read, 2 = ready.
static STATE: AtomicU8 = AtomicU8::new(0);
/// The values, written once by the thread that wins the 0 -> 1 transition of `STATE`.
struct Cell(core::cell::UnsafeCell<Config>);
// SAFETY: written once before STATE is published as 2 (Release) and only read after observing 2
// (Acquire).
unsafe impl Sync for Cell {}
static CONFIG: Cell = Cell(core::cell::UnsafeCell::new(DEFAULT));

/// The options; the first call reads the environment. A call racing the first read, or made
/// from inside it, or made before the environment exists, gets the defaults.
#[inline]
pub fn get() -> &'static Config {
    if STATE.load(Ordering::Acquire) == 2 {
        // SAFETY: CONFIG is written once before STATE becomes 2 and never again.
        return unsafe { &*CONFIG.0.get() };
    }
    init()
}

#[cold]
fn init() -> &'static Config {
    static FALLBACK: Config = DEFAULT;
    if STATE
        .compare_exchange(0, 1, Ordering::Acquire, Ordering::Relaxed)
        .is_err()
    {
        return &FALLBACK;
    }
    let Some(env) = os::env_entries() else {
        // Too early: no environment yet. Read it on a later call.
        STATE.store(0, Ordering::Release);
        return &FALLBACK;
    };
    let c = read(env, &mut |l: &LineBuf| l.write_to(2));
    // SAFETY: only the thread that won the 0 -> 1 transition writes, before publishing 2.
    unsafe { *CONFIG.0.get() = c };
    STATE.store(2, Ordering::Release);
    if c.verbose {
        print_options(&c, &mut |l: &LineBuf| l.write_to(2));
    }
    // SAFETY: as above.
    unsafe { &*CONFIG.0.get() }
}

/// The options set by the `NAME=value` entries of `env` over the defaults; each warning line
/// goes to `out`.
fn read(env: impl Iterator<Item = &'static [u8]>, out: &mut dyn FnMut(&LineBuf)) -> Config {
    let mut c = DEFAULT;
    let mut stats_given = false;
    let mut prof_given = false;
    for entry in env {
        if !entry.starts_with(b"XALLOC_") {
            continue;
        }
        let eq = entry.iter().position(|&b| b == b'=').unwrap_or(entry.len());
        let (name, value) = (&entry[..eq], entry.get(eq + 1..).unwrap_or(b""));
        let Some(i) = OPTIONS.iter().position(|o| o.name.as_bytes() == name) else {
            if !is_tool_name(name) {
                warn_unknown(name, value, out);
            }
            continue;
        };
        if c.from_env & (1 << i) != 0 {
            continue; // the first of duplicate entries wins, as with getenv
        }
        let opt = &OPTIONS[i];
        match parse(opt.kind, value) {
            Some(v) => {
                (opt.set)(&mut c, v);
                c.from_env |= 1 << i;
                stats_given |= opt.name == "XALLOC_STATS";
                prof_given |= opt.name == "XALLOC_PROF";
            }
            None => warn_bad(opt, value, out),
        }
    }
    if c.stats_file.is_some() && !stats_given {
        c.stats_at_exit = true;
    }
    if c.prof_file.is_some() && !prof_given {
        c.prof = true;
    }
    c
}

fn is_tool_name(name: &[u8]) -> bool {
    TOOL_NAMES.iter().any(|t| t.as_bytes() == name)
        || TOOL_PREFIXES.iter().any(|p| name.starts_with(p.as_bytes()))
}

/// Parse `s` as a value of kind `k`.
pub fn parse(k: Kind, s: &'static [u8]) -> Option<Value> {
    match k {
        Kind::Bool => parse_bool(s).map(Value::Bool),
        Kind::Millis => parse_number(s).map(Value::Num),
        Kind::Size => parse_size(s).map(|n| Value::Num(n as u64)),
        Kind::Path => (!s.is_empty()).then_some(Value::Path(Some(s))),
        Kind::Signal => parse_signal(s).map(|n| Value::Num(n as u64)),
    }
}

/// A signal number (1 to 64), a name with or without `SIG` (`USR1`, `SIGUSR2`, ...), or
/// `none` / `0` for none.
pub fn parse_signal(s: &[u8]) -> Option<u32> {
    if s.eq_ignore_ascii_case(b"none") {
        return Some(0);
    }
    if let Some(n) = parse_number(s) {
        return (n <= 64).then_some(n as u32);
    }
    let name = if s.len() > 3 && s[..3].eq_ignore_ascii_case(b"sig") {
        &s[3..]
    } else {
        s
    };
    [
        ("hup", libc::SIGHUP),
        ("int", libc::SIGINT),
        ("quit", libc::SIGQUIT),
        ("usr1", libc::SIGUSR1),
        ("usr2", libc::SIGUSR2),
        ("alrm", libc::SIGALRM),
        ("term", libc::SIGTERM),
        ("prof", libc::SIGPROF),
        ("winch", libc::SIGWINCH),
    ]
    .iter()
    .find(|(n, _)| name.eq_ignore_ascii_case(n.as_bytes()))
    .map(|&(_, v)| v as u32)
}

/// A decimal number (digits only).
fn parse_number(s: &[u8]) -> Option<u64> {
    if s.is_empty() {
        return None;
    }
    let mut v: u64 = 0;
    for &b in s {
        if !b.is_ascii_digit() {
            return None;
        }
        v = v.checked_mul(10)?.checked_add((b - b'0') as u64)?;
    }
    Some(v)
}

/// A decimal number of bytes with an optional K/M/G (or KiB/MiB/GiB) suffix, any case.
pub fn parse_size(s: &[u8]) -> Option<usize> {
    let digits = s.iter().take_while(|b| b.is_ascii_digit()).count();
    let v = parse_number(&s[..digits])?;
    let suffix = &s[digits..];
    let shift = [
        ("", 0),
        ("k", 10),
        ("kib", 10),
        ("m", 20),
        ("mib", 20),
        ("g", 30),
        ("gib", 30),
    ]
    .iter()
    .find(|(name, _)| suffix.eq_ignore_ascii_case(name.as_bytes()))?
    .1;
    let v = usize::try_from(v).ok()?;
    v.checked_mul(1 << shift)
}

/// `1/true/yes/on` and `0/false/no/off`, any case.
pub fn parse_bool(s: &[u8]) -> Option<bool> {
    let is = |words: [&str; 4]| words.iter().any(|w| s.eq_ignore_ascii_case(w.as_bytes()));
    if is(["1", "true", "yes", "on"]) {
        Some(true)
    } else if is(["0", "false", "no", "off"]) {
        Some(false)
    } else {
        None
    }
}

/// Longest part of a value a warning repeats.
const SHOWN: usize = 48;

fn push_value(l: &mut LineBuf, value: &[u8]) {
    if value.len() > SHOWN {
        l.push(&value[..SHOWN]).push(b"...");
    } else {
        l.push(value);
    }
}

/// `xalloc: XALLOC_X=value: not valid (accepted: ...); using the default D`
fn warn_bad(opt: &Opt, value: &[u8], out: &mut dyn FnMut(&LineBuf)) {
    let mut l = LineBuf::new();
    l.push(b"xalloc: ").push(opt.name.as_bytes()).push(b"=");
    push_value(&mut l, value);
    l.push(b": not valid (accepted: ")
        .push(opt.kind.accepted().as_bytes())
        .push(b"); using the default, ")
        .push(opt.default.as_bytes())
        .push(b"\n");
    out(&l);
}

/// `xalloc: XALLOC_X=value: unknown option, ignored (options: ...)`
fn warn_unknown(name: &[u8], value: &[u8], out: &mut dyn FnMut(&LineBuf)) {
    let mut l = LineBuf::new();
    l.push(b"xalloc: ");
    push_value(&mut l, name);
    l.push(b"=");
    push_value(&mut l, value);
    l.push(b": unknown option, ignored (options:");
    for o in &OPTIONS {
        l.push(b" ").push(o.name.as_bytes());
    }
    l.push(b")\n");
    out(&l);
}

/// The options in force, one line each, after a line with the version and the pid.
pub fn print_options(c: &Config, out: &mut dyn FnMut(&LineBuf)) {
    let mut l = LineBuf::new();
    l.push(b"xalloc ")
        .push(env!("CARGO_PKG_VERSION").as_bytes())
        .push(b": options in force (pid ")
        .dec(os::pid() as u64)
        .push(b"):\n");
    out(&l);
    for (i, o) in OPTIONS.iter().enumerate() {
        let mut l = LineBuf::new();
        l.push(b"xalloc:   ").push(o.name.as_bytes());
        match (o.get)(c) {
            Value::Bool(b) => {
                l.push(b"=").push(if b { b"on" } else { b"off" });
            }
            Value::Num(n) if o.kind == Kind::Size => {
                l.push(b"=");
                push_size(&mut l, n);
            }
            Value::Num(0) if o.kind == Kind::Signal => {
                l.push(b"=none");
            }
            Value::Num(n) => {
                l.push(b"=").dec(n);
            }
            Value::Path(Some(p)) => {
                l.push(b"=").push(p);
            }
            Value::Path(None) => {
                l.push(b" unset (").push(o.default.as_bytes()).push(b")");
            }
        }
        if c.from_env & (1 << i) == 0 && o.kind != Kind::Path {
            l.push(b" (default)");
        }
        l.push(b"\n");
        out(&l);
    }
}

/// `n` bytes with the largest suffix that divides it exactly (`8M`, `1536K`, `100`).
fn push_size(l: &mut LineBuf, n: u64) {
    for (shift, suffix) in [(30, b"G"), (20, b"M"), (10, b"K")] {
        if n != 0 && n % (1 << shift) == 0 {
            l.dec(n >> shift).push(suffix);
            return;
        }
    }
    l.dec(n);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(x: &'static str) -> &'static [u8] {
        x.as_bytes()
    }

    #[test]
    fn parses_sizes_bools_and_numbers() {
        assert_eq!(parse_size(b"100"), Some(100));
        assert_eq!(parse_size(b"8M"), Some(8 << 20));
        assert_eq!(parse_size(b"8m"), Some(8 << 20));
        assert_eq!(parse_size(b"8MiB"), Some(8 << 20));
        assert_eq!(parse_size(b"8mib"), Some(8 << 20));
        assert_eq!(parse_size(b"2k"), Some(2048));
        assert_eq!(parse_size(b"1G"), Some(1 << 30));
        assert_eq!(parse_size(b"x"), None);
        assert_eq!(parse_size(b"lots"), None);
        assert_eq!(parse_size(b"5q"), None);
        assert_eq!(parse_size(b"-5"), None);
        assert_eq!(parse_size(b""), None);
        assert_eq!(parse_size(b"8 M"), None);
        assert_eq!(parse_size(b"99999999999999999999999"), None);
        assert_eq!(parse_size(b"17179869184G"), None);
        for t in ["1", "true", "TRUE", "Yes", "on", "ON"] {
            assert_eq!(parse_bool(t.as_bytes()), Some(true), "{t}");
        }
        for f in ["0", "false", "No", "OFF"] {
            assert_eq!(parse_bool(f.as_bytes()), Some(false), "{f}");
        }
        for bad in ["2", "maybe", "", "yes please"] {
            assert_eq!(parse_bool(bad.as_bytes()), None, "{bad}");
        }
        assert_eq!(parse(Kind::Millis, s("250")), Some(Value::Num(250)));
        assert_eq!(parse(Kind::Millis, s("-1")), None);
        assert_eq!(parse(Kind::Millis, s("1.5")), None);
        assert_eq!(parse(Kind::Path, s("")), None);
        assert_eq!(
            parse(Kind::Signal, s("USR2")),
            Some(Value::Num(libc::SIGUSR2 as u64))
        );
        assert_eq!(
            parse(Kind::Signal, s("sigusr1")),
            Some(Value::Num(libc::SIGUSR1 as u64))
        );
        assert_eq!(parse(Kind::Signal, s("12")), Some(Value::Num(12)));
        assert_eq!(parse(Kind::Signal, s("none")), Some(Value::Num(0)));
        assert_eq!(parse(Kind::Signal, s("65")), None);
        assert_eq!(parse(Kind::Signal, s("SIGFOO")), None);
    }

    #[test]
    fn defaults_match_the_table() {
        let mut c = DEFAULT;
        for o in &OPTIONS {
            if o.kind == Kind::Path {
                assert_eq!((o.get)(&DEFAULT), Value::Path(None), "{}", o.name);
                continue;
            }
            let v = parse(o.kind, s(o.default)).unwrap_or_else(|| panic!("{}", o.name));
            (o.set)(&mut c, v);
            assert_eq!((o.get)(&c), v, "{}: set and get disagree", o.name);
        }
        assert_eq!(c, DEFAULT);
        assert!(OPTIONS.len() <= 32, "from_env has one bit per option");
    }

    /// Run `read` over `env`, returning the options and the warning lines.
    fn read_env(env: &[&'static str]) -> (Config, Vec<String>) {
        let mut lines = Vec::new();
        let c = read(env.iter().map(|e| e.as_bytes()), &mut |l: &LineBuf| {
            lines.push(String::from_utf8_lossy(l.as_bytes()).into_owned())
        });
        (c, lines)
    }

    #[test]
    fn reads_the_environment_and_warns() {
        let (c, w) = read_env(&[
            "PATH=/bin",
            "XALLOC_STATS=TRUE",
            "XALLOC_DIRTY_CAP=16m",
            "XALLOC_PURGE_DELAY_MS=250",
            "XALLOC_SO=/x/libxalloc.so",
            "XALLOC_TEST_MODE=preload",
        ]);
        assert!(w.is_empty(), "{w:?}");
        assert!(c.stats_at_exit);
        assert_eq!(c.dirty_cap, 16 << 20);
        assert_eq!(c.purge_delay_ms, 250);
        assert_eq!(c.from_env, 0b111);

        let (c, w) = read_env(&[
            "XALLOC_STATS=2",
            "XALLOC_DIRTY_CAP=lots",
            "XALLOC_PURGE_DELAY_MS=-5",
            "XALLOC_STAT=1",
        ]);
        assert_eq!(c, DEFAULT);
        assert_eq!(w.len(), 4, "{w:?}");
        assert!(w[0].starts_with("xalloc: XALLOC_STATS=2: not valid (accepted: 1, true"));
        assert!(w[0].ends_with("using the default, off\n"), "{}", w[0]);
        assert!(w[1].contains("XALLOC_DIRTY_CAP=lots: not valid"));
        assert!(w[2].contains("XALLOC_PURGE_DELAY_MS=-5: not valid"));
        assert!(
            w[3].starts_with("xalloc: XALLOC_STAT=1: unknown option, ignored (options: XALLOC_")
        );
        for l in &w {
            assert!(
                l.ends_with('\n') && l.matches('\n').count() == 1,
                "one line: {l:?}"
            );
        }

        // A long value is cut, and the line still ends.
        let long: &'static str =
            Box::leak(format!("XALLOC_STATS={}", "y".repeat(300)).into_boxed_str());
        let (_, w) = read_env(&[long]);
        assert!(w[0].ends_with('\n') && w[0].contains("yyy..."), "{w:?}");

        // The stats file turns the report on, unless XALLOC_STATS says off.
        let (c, _) = read_env(&["XALLOC_STATS_FILE=/tmp/s.%p"]);
        assert!(c.stats_at_exit);
        assert_eq!(c.stats_file, Some(&b"/tmp/s.%p"[..]));
        let (c, _) = read_env(&["XALLOC_STATS=off", "XALLOC_STATS_FILE=/tmp/s"]);
        assert!(!c.stats_at_exit);
        // The first of duplicate entries wins.
        let (c, _) = read_env(&["XALLOC_DIRTY_CAP=1k", "XALLOC_DIRTY_CAP=2k"]);
        assert_eq!(c.dirty_cap, 1024);
    }

    #[test]
    fn verbose_lists_every_option() {
        let (c, _) = read_env(&["XALLOC_VERBOSE=yes", "XALLOC_DIRTY_CAP=1536k"]);
        let mut lines = Vec::new();
        print_options(&c, &mut |l: &LineBuf| {
            lines.push(String::from_utf8_lossy(l.as_bytes()).into_owned())
        });
        assert_eq!(lines.len(), 1 + OPTIONS.len());
        assert!(lines[0].starts_with(concat!("xalloc ", env!("CARGO_PKG_VERSION"))));
        assert_eq!(lines[1], "xalloc:   XALLOC_PURGE_DELAY_MS=100 (default)\n");
        assert_eq!(lines[2], "xalloc:   XALLOC_DIRTY_CAP=1536K\n");
        assert_eq!(lines[3], "xalloc:   XALLOC_STATS=off (default)\n");
        assert_eq!(
            lines[4],
            "xalloc:   XALLOC_STATS_FILE unset (standard error)\n"
        );
        assert_eq!(lines[5], "xalloc:   XALLOC_VERBOSE=on\n");
    }

    // ----- the generated documentation -------------------------------------------------------

    /// `code` spans of a doc sentence in roff (bold).
    fn roff(text: &str) -> String {
        let mut out = String::new();
        for (i, part) in text.split('`').enumerate() {
            let part = part.replace('\\', "\\e").replace('-', "\\-");
            if i % 2 == 1 {
                out.push_str(&format!("\\fB{part}\\fR"));
            } else {
                out.push_str(&part);
            }
        }
        out
    }

    fn wrap(text: &str, indent: &str, width: usize) -> Vec<String> {
        let mut lines = Vec::new();
        let mut line = String::new();
        for word in text.split_whitespace() {
            if !line.is_empty() && indent.len() + line.len() + 1 + word.len() > width {
                lines.push(format!("{indent}{line}"));
                line.clear();
            }
            if !line.is_empty() {
                line.push(' ');
            }
            line.push_str(word);
        }
        if !line.is_empty() {
            lines.push(format!("{indent}{line}"));
        }
        lines
    }

    fn readme_rows() -> Vec<String> {
        let mut v = vec![
            "| variable | default | values | meaning |".to_string(),
            "| --- | --- | --- | --- |".to_string(),
        ];
        for o in &OPTIONS {
            let default = match o.kind {
                Kind::Path => o.default.to_string(),
                _ => format!("`{}`", o.default),
            };
            v.push(format!(
                "| `{}` | {default} | {} | {} |",
                o.name,
                o.kind.accepted().replace("%p", "`%p`"),
                o.doc
            ));
        }
        v
    }

    fn man_rows() -> Vec<String> {
        let mut v = Vec::new();
        for o in &OPTIONS {
            v.push(".TP".to_string());
            v.push(format!(".B {}", o.name));
            v.push(format!(
                "{}. Default: {}. Values: {}.",
                capitalise(&roff(o.doc)),
                roff(o.default),
                roff(o.kind.accepted())
            ));
        }
        v
    }

    fn capitalise(s: &str) -> String {
        let mut c = s.chars();
        match c.next() {
            Some(f) => f.to_uppercase().collect::<String>() + c.as_str(),
            None => String::new(),
        }
    }

    fn help_rows() -> Vec<String> {
        let mut v = vec![
            "    cat <<'EOF'".to_string(),
            "options (environment variables read by the library, see xalloc(3)):".to_string(),
        ];
        for o in &OPTIONS {
            v.push(format!("  {} (default: {})", o.name, o.default));
            let text = format!(
                "{}. Values: {}.",
                capitalise(&o.doc.replace('`', "")),
                o.kind.accepted()
            );
            v.extend(wrap(&text, "      ", 79));
        }
        v.push("EOF".to_string());
        v
    }

    /// Check (or, with `UPDATE_DOCS=1`, rewrite) the lines of `file` between the line that
    /// starts with `begin` and the next that starts with `end`.
    fn check_region(file: &str, begin: &str, end: &str, want: Vec<String>) -> Option<String> {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(file);
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{file}: {e}"));
        let lines: Vec<&str> = text.lines().collect();
        let b = lines
            .iter()
            .position(|l| l.starts_with(begin))
            .unwrap_or_else(|| panic!("{file}: no line starting with {begin:?}"));
        let e = b
            + 1
            + lines[b + 1..]
                .iter()
                .position(|l| l.starts_with(end))
                .unwrap_or_else(|| panic!("{file}: no line starting with {end:?}"));
        let have: Vec<String> = lines[b + 1..e].iter().map(|l| l.to_string()).collect();
        if have == want {
            return None;
        }
        if std::env::var_os("UPDATE_DOCS").is_some() {
            let mut out: Vec<String> = lines[..=b].iter().map(|l| l.to_string()).collect();
            out.extend(want);
            out.extend(lines[e..].iter().map(|l| l.to_string()));
            std::fs::write(&path, out.join("\n") + "\n").expect("writable");
            return None;
        }
        Some(format!(
            "{file}: the options differ from src/config.rs OPTIONS \
             (UPDATE_DOCS=1 cargo test --release --lib options rewrites them)\n\
             --- {file}\n{}\n--- generated\n{}",
            have.join("\n"),
            want.join("\n")
        ))
    }

    #[test]
    fn options_documentation_matches_the_table() {
        let problems: Vec<String> = [
            check_region(
                "README.md",
                "<!-- options:",
                "<!-- end of options",
                readme_rows(),
            ),
            check_region(
                "man/xalloc.3",
                ".\\\" options:",
                ".\\\" end of options",
                man_rows(),
            ),
            check_region(
                "scripts/xalloc-run",
                "    # options:",
                "    # end of options",
                help_rows(),
            ),
        ]
        .into_iter()
        .flatten()
        .collect();
        assert!(problems.is_empty(), "{}", problems.join("\n\n"));
    }
}

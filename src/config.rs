//! L2: runtime options, read once from `XALLOC_*` environment variables without allocating.
//!
//! | variable | default | meaning |
//! |---|---|---|
//! | `XALLOC_PURGE_DELAY_MS` | 100 | purge epoch: free pages unused and resident for a whole epoch get `MADV_DONTNEED` |
//! | `XALLOC_DIRTY_CAP` | 8M | purge at once when more free-but-resident bytes than this (or than twice the peak bytes in use, if larger) pile up (suffixes k/M/G) |
//! | `XALLOC_STATS` | off | print statistics to stderr at exit (`1/true/yes/on`) |

use crate::os;
use core::sync::atomic::{AtomicU8, Ordering};

/// The option values.
pub struct Config {
    /// Length of a purge epoch in milliseconds (see `purge`).
    pub purge_delay_ms: u64,
    /// Bytes of dirty free pages that trigger an immediate purge (raised to twice the peak
    /// bytes in use when that is larger).
    pub dirty_cap: usize,
    /// Print statistics at exit.
    pub stats_at_exit: bool,
}

const DEFAULT: Config = Config {
    purge_delay_ms: 100,
    dirty_cap: 8 << 20,
    stats_at_exit: false,
};

/// 0 = not read, 1 = being read, 2 = ready.
static STATE: AtomicU8 = AtomicU8::new(0);
/// The values, written once by the thread that wins the 0 -> 1 transition of `STATE`.
struct Cell(core::cell::UnsafeCell<Config>);
// SAFETY: written once before STATE is published as 2 (Release) and only read after observing 2
// (Acquire).
unsafe impl Sync for Cell {}
static CONFIG: Cell = Cell(core::cell::UnsafeCell::new(DEFAULT));

/// The options; the first call reads the environment. A call racing the first read, or made
/// from inside it, gets the defaults.
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
    let mut c = DEFAULT;
    if let Some(v) = os::getenv(c"XALLOC_PURGE_DELAY_MS").and_then(parse_size) {
        c.purge_delay_ms = v as u64;
    }
    if let Some(v) = os::getenv(c"XALLOC_DIRTY_CAP").and_then(parse_size) {
        c.dirty_cap = v;
    }
    if let Some(v) = os::getenv(c"XALLOC_STATS").and_then(parse_bool) {
        c.stats_at_exit = v;
    }
    // SAFETY: only the thread that won the 0 -> 1 transition writes, before publishing 2.
    unsafe { *CONFIG.0.get() = c };
    STATE.store(2, Ordering::Release);
    // SAFETY: as above.
    unsafe { &*CONFIG.0.get() }
}

/// Parse a decimal number with an optional k/M/G suffix.
pub fn parse_size(s: &[u8]) -> Option<usize> {
    let mut v: usize = 0;
    let mut i = 0;
    while i < s.len() && s[i].is_ascii_digit() {
        v = v.checked_mul(10)?.checked_add((s[i] - b'0') as usize)?;
        i += 1;
    }
    if i == 0 {
        return None;
    }
    let mul = match &s[i..] {
        b"" => 1,
        b"k" | b"K" | b"KiB" => 1 << 10,
        b"m" | b"M" | b"MiB" => 1 << 20,
        b"g" | b"G" | b"GiB" => 1 << 30,
        _ => return None,
    };
    v.checked_mul(mul)
}

/// Parse `1/true/yes/on` and `0/false/no/off`.
pub fn parse_bool(s: &[u8]) -> Option<bool> {
    match s {
        b"1" | b"true" | b"yes" | b"on" => Some(true),
        b"0" | b"false" | b"no" | b"off" => Some(false),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_sizes_and_bools() {
        assert_eq!(parse_size(b"100"), Some(100));
        assert_eq!(parse_size(b"8M"), Some(8 << 20));
        assert_eq!(parse_size(b"2k"), Some(2048));
        assert_eq!(parse_size(b"x"), None);
        assert_eq!(parse_size(b"5q"), None);
        assert_eq!(parse_size(b"99999999999999999999999"), None);
        assert_eq!(parse_bool(b"on"), Some(true));
        assert_eq!(parse_bool(b"off"), Some(false));
        assert_eq!(parse_bool(b"maybe"), None);
    }
}

//! L1: fatal errors and assertions that never allocate or format through `core::fmt`.
//!
//! Messages are assembled in a stack buffer and written with `write(2)`; then the process
//! aborts. Three assertion levels: [`xa_assert!`] (debug builds), [`xa_check!`] (always on; for
//! cheap checks whose failure means heap corruption) and `check_invariants` methods on the types,
//! run by tests and debug builds.

use crate::os;

/// A fixed-capacity byte buffer for building one line of output without allocating.
pub struct LineBuf {
    /// The bytes written so far.
    buf: [u8; 256],
    /// How many bytes of `buf` are used.
    len: usize,
}

impl LineBuf {
    /// An empty line.
    pub const fn new() -> Self {
        LineBuf {
            buf: [0; 256],
            len: 0,
        }
    }

    /// Append bytes, truncating at capacity.
    pub fn push(&mut self, s: &[u8]) -> &mut Self {
        for &b in s {
            if self.len < self.buf.len() {
                self.buf[self.len] = b;
                self.len += 1;
            }
        }
        self
    }

    /// Append `v` as `0x` followed by lower-case hex digits.
    pub fn hex(&mut self, v: usize) -> &mut Self {
        let mut tmp = [0u8; 18];
        tmp[0] = b'0';
        tmp[1] = b'x';
        let mut n = 2;
        let mut started = false;
        for i in (0..16).rev() {
            let d = (v >> (i * 4)) & 0xf;
            if d != 0 || started || i == 0 {
                started = true;
                tmp[n] = b"0123456789abcdef"[d];
                n += 1;
            }
        }
        self.push(&tmp[..n])
    }

    /// Append `v` in decimal.
    pub fn dec(&mut self, mut v: u64) -> &mut Self {
        let mut tmp = [0u8; 20];
        let mut n = tmp.len();
        loop {
            n -= 1;
            tmp[n] = b'0' + (v % 10) as u8;
            v /= 10;
            if v == 0 {
                break;
            }
        }
        let digits = tmp;
        self.push(&digits[n..])
    }

    /// Append `v` in decimal, right-aligned in a field of `width` characters.
    pub fn dec_width(&mut self, v: u64, width: usize) -> &mut Self {
        let mut digits = 1;
        let mut t = v;
        while t >= 10 {
            t /= 10;
            digits += 1;
        }
        self.spaces(width.saturating_sub(digits)).dec(v)
    }

    /// Append `n` spaces.
    pub fn spaces(&mut self, n: usize) -> &mut Self {
        for _ in 0..n {
            self.push(b" ");
        }
        self
    }

    /// Append `v` bytes in human units: `17 B`, `4.0 KiB`, `1.5 MiB`, ... (one decimal, rounded
    /// down).
    pub fn bytes(&mut self, v: u64) -> &mut Self {
        const UNITS: [&[u8]; 5] = [b" KiB", b" MiB", b" GiB", b" TiB", b" PiB"];
        if v < 1024 {
            return self.dec(v).push(b" B");
        }
        let mut unit = 0;
        let mut scale: u64 = 1024;
        while unit + 1 < UNITS.len() && v / scale >= 1024 {
            scale *= 1024;
            unit += 1;
        }
        let tenths = (v as u128 * 10 / scale as u128) as u64;
        self.dec(tenths / 10)
            .push(b".")
            .dec(tenths % 10)
            .push(UNITS[unit])
    }

    /// Append [`LineBuf::bytes`] right-aligned in a field of `width` characters.
    pub fn bytes_width(&mut self, v: u64, width: usize) -> &mut Self {
        let mut tmp = LineBuf::new();
        tmp.bytes(v);
        let n = tmp.as_bytes().len();
        self.spaces(width.saturating_sub(n)).push(tmp.as_bytes())
    }

    /// The bytes written.
    pub fn as_bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }

    /// Write the line to file descriptor `fd`.
    pub fn write_to(&self, fd: i32) {
        os::write_all(fd, self.as_bytes());
    }
}

impl Default for LineBuf {
    fn default() -> Self {
        Self::new()
    }
}

/// Report misuse by the program (`xalloc: <call>(): <what> 0x<addr>`) and abort.
#[cold]
#[inline(never)]
pub fn misuse(call: &str, what: &str, addr: usize) -> ! {
    let mut l = LineBuf::new();
    l.push(b"xalloc: ")
        .push(call.as_bytes())
        .push(b"(): ")
        .push(what.as_bytes())
        .push(b" ")
        .hex(addr)
        .push(b"\n");
    l.write_to(2);
    os::abort()
}

/// Report that the calling thread asked for the lock named `lock` while holding it — malloc
/// called from a signal handler that interrupted malloc, most likely — and abort, rather than
/// wait for ever on itself.
#[cold]
#[inline(never)]
pub fn reentered(lock: &str) -> ! {
    let mut l = LineBuf::new();
    l.push(b"xalloc: malloc re-entered while this thread holds ")
        .push(lock.as_bytes())
        .push(b" (from a signal handler?)\n");
    l.write_to(2);
    os::abort()
}

/// Report a size that does not match its block (`xalloc: <call>(): size <size> does not match
/// the block 0x<addr> (a block of <usable> bytes)`) and abort.
#[cold]
#[inline(never)]
pub fn misuse_size(call: &str, addr: usize, size: usize, usable: usize) -> ! {
    let mut l = LineBuf::new();
    l.push(b"xalloc: ")
        .push(call.as_bytes())
        .push(b"(): size ")
        .dec(size as u64)
        .push(b" does not match the block ")
        .hex(addr)
        .push(b" (a block of ")
        .dec(usable as u64)
        .push(b" bytes)\n");
    l.write_to(2);
    os::abort()
}

/// Report a broken internal invariant and abort.
#[cold]
#[inline(never)]
pub fn fatal(file: &str, line: u32, cond: &str) -> ! {
    let mut l = LineBuf::new();
    l.push(b"xalloc: internal error at ")
        .push(file.as_bytes())
        .push(b":")
        .dec(line as u64)
        .push(b": ")
        .push(cond.as_bytes())
        .push(b"\n");
    l.write_to(2);
    os::abort()
}

/// Assert in debug builds and tests only; compiles to nothing in release builds.
#[macro_export]
macro_rules! xa_assert {
    ($cond:expr) => {
        if cfg!(debug_assertions) && !$cond {
            $crate::debug::fatal(file!(), line!(), stringify!($cond));
        }
    };
}

/// Assert in every build: for cheap checks whose failure means the heap is corrupt.
#[macro_export]
macro_rules! xa_check {
    ($cond:expr) => {
        if !$cond {
            $crate::debug::fatal(file!(), line!(), stringify!($cond));
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_numbers() {
        let mut l = LineBuf::new();
        l.hex(0)
            .push(b" ")
            .hex(0xdead_beef)
            .push(b" ")
            .dec(0)
            .push(b" ")
            .dec(1234567890);
        assert_eq!(l.as_bytes(), b"0x0 0xdeadbeef 0 1234567890");
    }

    #[test]
    fn formats_human_units_and_columns() {
        let mut l = LineBuf::new();
        l.bytes(0)
            .push(b"|")
            .bytes(1023)
            .push(b"|")
            .bytes(1024)
            .push(b"|")
            .bytes(1536 * 1024)
            .push(b"|")
            .bytes(u64::MAX)
            .push(b"|")
            .dec_width(42, 5)
            .push(b"|")
            .bytes_width(2048, 9);
        assert_eq!(
            l.as_bytes(),
            b"0 B|1023 B|1.0 KiB|1.5 MiB|16383.9 PiB|   42|  2.0 KiB"
        );
    }

    #[test]
    fn truncates_at_capacity() {
        let mut l = LineBuf::new();
        for _ in 0..100 {
            l.push(b"abcdef");
        }
        assert_eq!(l.as_bytes().len(), 256);
    }
}

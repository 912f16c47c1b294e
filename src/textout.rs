//! L2: text output to a file without allocating — a buffered writer for the dumps, and file
//! names with `%p` expanded.

use crate::debug::LineBuf;
use crate::os;

/// Text output: bytes, and numbers written with [`LineBuf`]'s digits.
pub trait Text {
    /// Append bytes.
    fn put(&mut self, s: &[u8]) -> &mut Self;

    /// Append `v` in decimal.
    fn dec(&mut self, v: u64) -> &mut Self {
        let mut l = LineBuf::new();
        l.dec(v);
        self.put(l.as_bytes())
    }

    /// Append `v` as `0x` and lower-case hex digits.
    fn hex(&mut self, v: usize) -> &mut Self {
        let mut l = LineBuf::new();
        l.hex(v);
        self.put(l.as_bytes())
    }
}

/// A stack buffer in front of a file descriptor; full buffers go out with `write(2)`.
pub struct FileOut {
    fd: i32,
    buf: [u8; 8192],
    len: usize,
}

impl FileOut {
    /// Write to `fd` (which the caller opened and closes).
    pub const fn new(fd: i32) -> Self {
        FileOut {
            fd,
            buf: [0; 8192],
            len: 0,
        }
    }

    /// Write out what is buffered.
    pub fn flush(&mut self) {
        os::write_all(self.fd, &self.buf[..self.len]);
        self.len = 0;
    }
}

impl Text for FileOut {
    fn put(&mut self, s: &[u8]) -> &mut Self {
        for chunk in s.chunks(self.buf.len()) {
            if self.len + chunk.len() > self.buf.len() {
                self.flush();
            }
            self.buf[self.len..self.len + chunk.len()].copy_from_slice(chunk);
            self.len += chunk.len();
        }
        self
    }
}

impl Drop for FileOut {
    fn drop(&mut self) {
        self.flush();
    }
}

/// Copy file name `name` into `out` with `%p` replaced by `pid` and `%%` by `%`, and a NUL
/// after it. Returns the length without the NUL, or `None` if it does not fit or `name` holds
/// a NUL.
pub fn expand_pid(name: &[u8], pid: u32, out: &mut [u8]) -> Option<usize> {
    let mut digits = LineBuf::new();
    digits.dec(pid as u64);
    let mut n = 0;
    let mut put = |b: u8, n: &mut usize| -> Option<()> {
        *out.get_mut(*n)? = b;
        *n += 1;
        Some(())
    };
    let mut i = 0;
    while i < name.len() {
        match (name[i], name.get(i + 1)) {
            (b'%', Some(b'p')) => {
                for &d in digits.as_bytes() {
                    put(d, &mut n)?;
                }
                i += 2;
            }
            (b'%', Some(b'%')) => {
                put(b'%', &mut n)?;
                i += 2;
            }
            (0, _) => return None,
            (b, _) => {
                put(b, &mut n)?;
                i += 1;
            }
        }
    }
    put(0, &mut n)?;
    Some(n - 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expands_the_pid() {
        let mut out = [0u8; 32];
        let n = expand_pid(b"/tmp/s.%p.txt", 4242, &mut out).unwrap();
        assert_eq!(&out[..=n], b"/tmp/s.4242.txt\0");
        let n = expand_pid(b"a%%p%q", 7, &mut out).unwrap();
        assert_eq!(&out[..n], b"a%p%q");
        assert_eq!(expand_pid(&[b'x'; 40], 1, &mut out), None);
        assert_eq!(expand_pid(b"a\0b", 1, &mut out), None);
    }

    #[test]
    fn buffers_and_writes_everything() {
        let mut fds = [0i32; 2];
        // SAFETY: fds is a valid out-array of two descriptors.
        assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
        {
            let mut o = FileOut::new(fds[1]);
            o.put(b"x ").dec(12345).put(b" ").hex(0xbeef).put(b"\n");
            for _ in 0..3000 {
                o.put(b"abcdefgh");
            }
        }
        // SAFETY: closing our own pipe end.
        unsafe { libc::close(fds[1]) };
        let mut got = Vec::new();
        let mut buf = [0u8; 4096];
        while let Some(n) = os::read(fds[0], &mut buf) {
            if n == 0 {
                break;
            }
            got.extend_from_slice(&buf[..n]);
        }
        // SAFETY: closing our own pipe end.
        unsafe { libc::close(fds[0]) };
        assert!(got.starts_with(b"x 12345 0xbeef\n"));
        assert_eq!(got.len(), 15 + 3000 * 8);
    }
}

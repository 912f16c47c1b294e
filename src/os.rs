//! L0: the module that calls the C library and the kernel (the others use `libc`'s types and
//! constants only; `unwind` calls glibc's `_dl_find_object` through the address found here).
//!
//! Contract shared by every function here: arguments are page aligned where the name says so,
//! none takes a lock of the allocator's, and none touches `errno` in a way its caller can see
//! (every system call here restores `errno`, so `free` never changes it; failures are reported
//! by return value and the callers set `ENOMEM` themselves). The memory, clock, futex and
//! `write` calls never allocate. The others are set-up and reporting calls that run only on
//! cold paths and say so: [`atfork`], [`key_set`] and [`at_exit`] may call `malloc` (re-entering
//! us), [`fwrite`] and [`dlsym_default`] may too, and the stdio list functions take glibc's stdio
//! lock. The file and process calls ([`env_entries`], [`dup_high`], [`open_append`],
//! [`file_id`], [`pid`], [`rss_now`], [`rss_peak`], [`create_file`], [`read`], ...) serve the
//! options, the statistics report and the profiler's dumps and never allocate;
//! [`spawn_detached`] may allocate and [`code_range_of`] takes the loader's lock (set-up only).
//! [`thread_pointer`] calls nothing: it reads the thread's TCB address, which the x86-64 ABI
//! keeps at `%fs:0`.

use core::ptr;
use core::sync::atomic::AtomicUsize;

/// Size of a system page, fixed at 4 KiB on x86-64 Linux.
pub const PAGE_SHIFT: usize = 12;
/// Bytes in one page.
pub const PAGE: usize = 1 << PAGE_SHIFT;

/// Saves `errno` on creation and restores it on drop, so `free` never changes it.
pub struct ErrnoGuard(i32);

impl ErrnoGuard {
    /// Remember the current `errno`.
    #[inline]
    pub fn new() -> Self {
        // SAFETY: __errno_location always returns this thread's valid errno slot.
        ErrnoGuard(unsafe { *libc::__errno_location() })
    }
}

impl Default for ErrnoGuard {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for ErrnoGuard {
    #[inline]
    fn drop(&mut self) {
        // SAFETY: as in `new`.
        unsafe { *libc::__errno_location() = self.0 }
    }
}

/// Set `errno` for the calling thread.
#[inline]
pub fn set_errno(e: i32) {
    // SAFETY: __errno_location always returns this thread's valid errno slot.
    unsafe { *libc::__errno_location() = e }
}

/// Map `len` bytes (a multiple of the page size) of fresh zeroed read-write memory, reserving
/// address space lazily (`MAP_NORESERVE`). Returns null on failure.
pub fn map(len: usize) -> *mut u8 {
    let _e = ErrnoGuard::new();
    // SAFETY: an anonymous private mapping with a null hint has no preconditions.
    let p = unsafe {
        libc::mmap(
            ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
            -1,
            0,
        )
    };
    if p == libc::MAP_FAILED {
        ptr::null_mut()
    } else {
        p as *mut u8
    }
}

/// Map `len` bytes aligned to `align` (a power of two no smaller than a page) by over-mapping
/// and trimming both ends. Returns null on failure.
pub fn map_aligned(len: usize, align: usize) -> *mut u8 {
    let Some(total) = len.checked_add(align - PAGE) else {
        return ptr::null_mut();
    };
    let raw = map(total);
    if raw.is_null() {
        return raw;
    }
    let start = raw as usize;
    let aligned = (start + align - 1) & !(align - 1);
    let head = aligned - start;
    let tail = total - head - len;
    if head > 0 {
        unmap(raw, head);
    }
    if tail > 0 {
        unmap((aligned + len) as *mut u8, tail);
    }
    aligned as *mut u8
}

/// Unmap a range previously returned by [`map`] or [`map_aligned`] (or a page-aligned part of it).
pub fn unmap(p: *mut u8, len: usize) {
    let _e = ErrnoGuard::new();
    // SAFETY: the caller hands back a page-aligned range it mapped itself; munmap of such a range
    // cannot affect memory anyone else owns.
    unsafe {
        libc::munmap(p as *mut libc::c_void, len);
    }
}

/// Give the physical pages of a page-aligned range back to the kernel. The range stays mapped
/// and reads back as zeros (`MADV_DONTNEED`, which lowers the resident size at once, unlike
/// `MADV_FREE`). Returns whether the kernel did so (when not, any page may still hold its bytes).
pub fn decommit(p: *mut u8, len: usize) -> bool {
    let _e = ErrnoGuard::new();
    // SAFETY: the caller owns the page-aligned range; DONTNEED on private anonymous memory only
    // drops its contents.
    unsafe { libc::madvise(p as *mut libc::c_void, len, libc::MADV_DONTNEED) == 0 }
}

/// Pages asked about per `mincore` call (the answer vector is on the stack).
const RESIDENCY_CHUNK: usize = 256;

/// Ask `mincore` about the `pages` pages at `p` (page aligned, mapped) in chunks of
/// [`RESIDENCY_CHUNK`], calling `f(first, answers)` for each chunk: the index of its first
/// page, and one byte per page whose low bit says "in memory". Stops at the first call that
/// fails; returns how many pages were answered (`pages` if none failed).
fn for_residency_chunks(p: *mut u8, pages: usize, mut f: impl FnMut(usize, &[u8])) -> usize {
    let mut vec = [0u8; RESIDENCY_CHUNK];
    let mut done = 0;
    while done < pages {
        let n = (pages - done).min(RESIDENCY_CHUNK);
        let at = p.wrapping_add(done << PAGE_SHIFT);
        // SAFETY: mincore only reads the page tables of [at, at + n pages), which the caller
        // says is mapped, and writes n answers into vec, which has room for them.
        if unsafe { libc::mincore(at as *mut libc::c_void, n << PAGE_SHIFT, vec.as_mut_ptr()) } != 0
        {
            break;
        }
        f(done, &vec[..n]);
        done += n;
    }
    done
}

/// How many of the `pages` pages at `p` (page aligned, mapped) are in memory, by `mincore`;
/// `None` if a call fails.
pub fn resident_pages(p: *mut u8, pages: usize) -> Option<usize> {
    let _e = ErrnoGuard::new();
    let mut resident = 0;
    let done = for_residency_chunks(p, pages, |_, answers| {
        resident += answers.iter().filter(|&&v| v & 1 != 0).count();
    });
    (done == pages).then_some(resident)
}

/// Make the `len` bytes at `p` (page aligned) read as zero without making pages resident that
/// are not: `mincore` tells which pages are in memory; those are cleared with stores (they are
/// resident already, so this costs no memory), the others are dropped with `MADV_DONTNEED`,
/// after which they read as zero and take memory only when the program touches them (a page
/// that is not resident may still hold data in swap, so it is dropped rather than skipped).
/// If a call fails, the rest of the range is cleared with stores. `calloc` of a large reused
/// run uses this: stores over the whole run would make every page of it resident, although a
/// program often writes only some of them (glibc and jemalloc likewise skip clearing memory
/// they know to be fresh from the kernel).
///
/// # Safety
/// The caller owns the whole pages that cover `[p, p + len)` and nobody else uses them.
pub unsafe fn zero_pages(p: *mut u8, len: usize) {
    let _e = ErrnoGuard::new();
    let pages = len.div_ceil(PAGE);
    let done = for_residency_chunks(p, pages, |first, answers| {
        let n = answers.len();
        let mut i = 0;
        while i < n {
            let resident = answers[i] & 1 != 0;
            let mut j = i + 1;
            while j < n && (answers[j] & 1 != 0) == resident {
                j += 1;
            }
            let from = (first + i) << PAGE_SHIFT;
            let to = ((first + j) << PAGE_SHIFT).min(len);
            // SAFETY: whole pages of the caller's range; DONTNEED on private anonymous memory
            // only drops contents.
            let dropped = !resident
                && unsafe {
                    libc::madvise(
                        p.add(from) as *mut libc::c_void,
                        (j - i) << PAGE_SHIFT,
                        libc::MADV_DONTNEED,
                    )
                } == 0;
            if !dropped {
                // SAFETY: [from, to) lies in the caller's range, whole pages from `from`.
                unsafe { clear_nonzero_pages(p.add(from), to - from) };
            }
            i = j;
        }
    });
    if done < pages {
        let from = done << PAGE_SHIFT;
        // SAFETY: the rest of the caller's range.
        unsafe { ptr::write_bytes(p.add(from), 0, len - from) };
    }
}

/// Clear the `len` bytes at `p` (page aligned) a page at a time, skipping pages that already
/// read as zero: a page the program only read is mapped to the kernel's shared zero page, which
/// `mincore` reports resident, and a store would give it a page of its own.
///
/// # Safety
/// The caller owns `[p, p + len)`.
unsafe fn clear_nonzero_pages(p: *mut u8, len: usize) {
    let mut off = 0;
    while off < len {
        let n = (len - off).min(PAGE);
        // SAFETY: [p + off, p + off + n) is the caller's; p + off is page (so 8-byte) aligned
        // and only whole words are read.
        unsafe {
            let words = core::slice::from_raw_parts(p.add(off) as *const u64, n / 8);
            if words.iter().any(|&w| w != 0) || n % 8 != 0 {
                ptr::write_bytes(p.add(off), 0, n);
            }
        }
        off += n;
    }
}

/// Ask the kernel to back the page-aligned range with transparent huge pages where it can
/// (`MADV_HUGEPAGE`; effective when `/sys/kernel/mm/transparent_hugepage/enabled` is `always`
/// or `madvise`). Returns whether the kernel accepted the advice.
pub fn advise_huge(p: *mut u8, len: usize) -> bool {
    let _e = ErrnoGuard::new();
    // SAFETY: advice on a range of our own mapping; it changes no contents.
    unsafe { libc::madvise(p as *mut libc::c_void, len, libc::MADV_HUGEPAGE) == 0 }
}

/// Grow or shrink a mapping, moving it if needed. Returns null on failure (the old mapping is
/// then untouched).
pub fn remap(p: *mut u8, old_len: usize, new_len: usize) -> *mut u8 {
    let _e = ErrnoGuard::new();
    // SAFETY: the caller owns the mapping [p, p+old_len); MREMAP_MAYMOVE never clobbers other
    // mappings.
    let q = unsafe {
        libc::mremap(
            p as *mut libc::c_void,
            old_len,
            new_len,
            libc::MREMAP_MAYMOVE,
        )
    };
    if q == libc::MAP_FAILED {
        ptr::null_mut()
    } else {
        q as *mut u8
    }
}

/// Write all of `buf` to file descriptor `fd`, retrying on short writes; errors are ignored.
pub fn write_all(fd: i32, mut buf: &[u8]) {
    let _g = ErrnoGuard::new();
    while !buf.is_empty() {
        // SAFETY: buf is a valid readable slice for its length.
        let n = unsafe { libc::write(fd, buf.as_ptr() as *const libc::c_void, buf.len()) };
        if n <= 0 {
            return;
        }
        buf = &buf[n as usize..];
    }
}

/// Abort the process with SIGABRT.
pub fn abort() -> ! {
    // SAFETY: abort has no preconditions.
    unsafe { libc::abort() }
}

/// The 16 random bytes the kernel passes every new program (`AT_RANDOM`), as two words; zeros
/// if the auxiliary vector has none. Never allocates.
pub fn startup_random() -> [u64; 2] {
    // SAFETY: getauxval only reads the auxiliary vector.
    let p = unsafe { libc::getauxval(libc::AT_RANDOM) } as *const [u64; 2];
    if p.is_null() {
        return [0; 2];
    }
    // SAFETY: AT_RANDOM points at 16 bytes on the initial stack that live as long as the
    // process; they may be unaligned.
    unsafe { p.read_unaligned() }
}

/// Milliseconds from a coarse monotonic clock (a vDSO read, a few nanoseconds).
pub fn now_ms() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: ts is a valid out-parameter.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC_COARSE, &mut ts) };
    (ts.tv_sec as u64) * 1000 + (ts.tv_nsec as u64) / 1_000_000
}

/// Block while the low 32 bits of `*word` equal those of `expected` (a private futex wait);
/// returns on wake-up, signal or mismatch.
///
/// A futex is 32 bits wide: the kernel compares only the half of `word` at its address, which
/// on this little-endian target is the low half. A caller that keeps state in the high half
/// must make a match of the low halves enough reason to sleep.
pub fn futex_wait(word: &AtomicUsize, expected: usize) {
    // EAGAIN and EINTR are normal here; they must not leak into the program's errno.
    let _e = ErrnoGuard::new();
    // SAFETY: the word is valid and 8-byte aligned for the duration of the call, so its first
    // 4 bytes are a valid, aligned futex word; the kernel only reads it.
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr() as *const u32,
            libc::FUTEX_WAIT | libc::FUTEX_PRIVATE_FLAG,
            expected as u32,
            ptr::null::<libc::timespec>(),
        );
    }
}

/// Wake one waiter blocked on `word` by [`futex_wait`].
pub fn futex_wake_one(word: &AtomicUsize) {
    let _e = ErrnoGuard::new();
    // SAFETY: as in `futex_wait`; FUTEX_WAKE does not even read the word.
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr() as *const u32,
            libc::FUTEX_WAKE | libc::FUTEX_PRIVATE_FLAG,
            1,
        );
    }
}

/// The calling thread's thread pointer: the address of its thread control block (TCB). One
/// `mov %fs:0`, no call, no state of ours, so it works in any context malloc can run in,
/// signal handlers included, and a handler gets the value of the thread it interrupted.
///
/// Every live thread has its own TCB, so no two live threads share a value; the value is never
/// 0 and is 8-byte aligned (the TCB is aligned for the pointers it holds). The TCB of a thread
/// that has exited, hence its value, may be reused by a thread created later.
#[inline(always)]
pub fn thread_pointer() -> usize {
    let tp: usize;
    // SAFETY: the x86-64 ELF TLS ABI (variant II) makes %fs point at the thread's TCB and
    // requires the TCB's first word to hold the TCB's own address, so that this very load
    // yields the thread pointer. glibc sets both up before any code of this library runs in
    // the thread (ld.so before it relocates us, for the main thread; `clone` with its TLS
    // argument, for the others), and neither changes for the thread's life. The load writes
    // nothing, touches no Rust object and leaves the flags alone.
    unsafe {
        core::arch::asm!(
            "mov {tp}, qword ptr fs:[0]",
            tp = out(reg) tp,
            options(nostack, readonly, preserves_flags, pure)
        );
    }
    tp
}

unsafe extern "C" {
    /// glibc's recursive lock over the list of all FILE streams (exported since 2.2.5).
    fn _IO_list_lock();
    /// Release one level of `_IO_list_lock`.
    fn _IO_list_unlock();
    /// Reset the list lock to its initial state (used in a fork child).
    fn _IO_list_resetlock();
    /// glibc's flag: true while the process has never created a thread.
    static __libc_single_threaded: libc::c_char;
}

/// Whether the process may have more than one thread.
pub fn multi_threaded() -> bool {
    // SAFETY: a plain read of a byte glibc only ever moves from 1 to 0 while threads exist.
    unsafe { ptr::read_volatile(&raw const __libc_single_threaded) == 0 }
}

/// Take glibc's stdio list lock (before our own locks in the fork prepare handler).
pub fn stdio_list_lock() {
    // SAFETY: a recursive lock; we release it in the parent or reset it in the child.
    unsafe { _IO_list_lock() }
}

/// Release glibc's stdio list lock.
pub fn stdio_list_unlock() {
    // SAFETY: paired with `stdio_list_lock` in the parent after fork.
    unsafe { _IO_list_unlock() }
}

/// Reset glibc's stdio list lock in a fork child.
pub fn stdio_list_reset() {
    // SAFETY: only called in a fork child, where no other thread exists.
    unsafe { _IO_list_resetlock() }
}

/// Run `f` at normal process exit (or when this library is unloaded). May allocate.
pub fn at_exit(f: extern "C" fn()) {
    // SAFETY: f is a plain function that lives as long as the program.
    unsafe {
        libc::atexit(f);
    }
}

/// `fwrite` all of `buf` to the program's stream `fp`. May allocate (stdio buffers).
///
/// # Safety
/// `fp` is an open stream.
pub unsafe fn fwrite(fp: *mut libc::FILE, buf: &[u8]) {
    // SAFETY: buf is readable for its length; fp is open per the contract.
    unsafe { libc::fwrite(buf.as_ptr() as *const libc::c_void, 1, buf.len(), fp) };
}

/// Register fork handlers. May allocate.
pub fn atfork(prepare: extern "C" fn(), parent: extern "C" fn(), child: extern "C" fn()) {
    // SAFETY: the handlers are plain functions that live as long as the program.
    unsafe {
        libc::pthread_atfork(Some(prepare), Some(parent), Some(child));
    }
}

/// Create a pthread key whose destructor runs at thread exit. Returns `None` on failure.
pub fn key_create(dtor: unsafe extern "C" fn(*mut libc::c_void)) -> Option<libc::pthread_key_t> {
    let mut key: libc::pthread_key_t = 0;
    // SAFETY: key is a valid out-parameter; pthread_key_create does not allocate.
    let r = unsafe { libc::pthread_key_create(&mut key, Some(dtor)) };
    if r == 0 { Some(key) } else { None }
}

/// Attach a value to `key` for the calling thread (so its destructor runs at exit).
pub fn key_set(key: libc::pthread_key_t, v: *mut u8) {
    // SAFETY: key came from key_create. For keys past the first 32 glibc may call calloc, which
    // re-enters us; callers make that safe by publishing the thread heap first.
    unsafe {
        libc::pthread_setspecific(key, v as *const libc::c_void);
    }
}

/// The calling thread's value for `key`.
pub fn key_get(key: libc::pthread_key_t) -> *mut u8 {
    // SAFETY: pthread_getspecific has no preconditions for a key from key_create.
    unsafe { libc::pthread_getspecific(key) as *mut u8 }
}

/// The entries of the process environment (`NAME=value`, as bytes), read from `environ`
/// without allocating. `None` while there is no environment yet (a call made before the C
/// library has set `environ` up).
pub fn env_entries() -> Option<EnvEntries> {
    // SAFETY: a plain read of the C library's `environ` pointer.
    let p = unsafe { ptr::read_volatile(&raw const libc::environ) };
    if p.is_null() {
        None
    } else {
        Some(EnvEntries(p as *const *const libc::c_char))
    }
}

/// Iterator over the environment (see [`env_entries`]). Holds the position in the
/// null-terminated array `environ` points to.
pub struct EnvEntries(*const *const libc::c_char);

impl Iterator for EnvEntries {
    type Item = &'static [u8];

    fn next(&mut self) -> Option<&'static [u8]> {
        // SAFETY: `self.0` points into the null-terminated `environ` array (it only advances
        // while the current entry is not null); its strings live as long as the program keeps
        // them in the environment, which we treat as the program's lifetime (we read them at
        // start-up, as `getenv` would).
        unsafe {
            let e = *self.0;
            if e.is_null() {
                return None;
            }
            self.0 = self.0.add(1);
            Some(core::ffi::CStr::from_ptr(e).to_bytes())
        }
    }
}

/// A duplicate of descriptor `fd` numbered 3 or above, closed on `exec`; `None` if `fd` is not
/// open.
pub fn dup_high(fd: i32) -> Option<i32> {
    let _e = ErrnoGuard::new();
    // SAFETY: fcntl(F_DUPFD_CLOEXEC) on any number only reads it.
    let r = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 3) };
    if r < 0 { None } else { Some(r) }
}

/// The (device, inode) pair of the file open on `fd`, to tell later whether the number still
/// names the same file; `None` if `fd` is not open.
pub fn file_id(fd: i32) -> Option<(u64, u64)> {
    let _e = ErrnoGuard::new();
    // SAFETY: zero is a valid `struct stat`; fstat fills it or fails.
    let mut st: libc::stat = unsafe { core::mem::zeroed() };
    // SAFETY: st is a valid out-parameter.
    if unsafe { libc::fstat(fd, &mut st) } != 0 {
        return None;
    }
    Some((st.st_dev, st.st_ino))
}

/// A descriptor for the current directory (`O_PATH`, closed on `exec`), so that a relative file
/// name given at start-up can be opened later from the same place; `None` on failure.
pub fn cwd_handle() -> Option<i32> {
    let _e = ErrnoGuard::new();
    // SAFETY: a constant NUL-terminated path.
    let r = unsafe {
        libc::open(
            c".".as_ptr(),
            libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC,
        )
    };
    if r < 0 { None } else { Some(r) }
}

/// Open `path` (NUL-terminated) for appending, creating it (mode 0644) if needed; a relative
/// path is taken from directory descriptor `dir` (`libc::AT_FDCWD` for the current one).
/// Returns the descriptor, or the `errno` of the failure.
pub fn open_append(dir: i32, path: &core::ffi::CStr) -> Result<i32, i32> {
    open_for_writing(dir, path, libc::O_APPEND)
}

/// `openat(dir, path, O_WRONLY | O_CREAT | O_CLOEXEC | extra, 0644)`: the descriptor, or the
/// `errno` of the failure.
fn open_for_writing(dir: i32, path: &core::ffi::CStr, extra: i32) -> Result<i32, i32> {
    let _e = ErrnoGuard::new();
    // SAFETY: path is NUL-terminated; the mode argument is read because of O_CREAT.
    let r = unsafe {
        libc::openat(
            dir,
            path.as_ptr(),
            libc::O_WRONLY | libc::O_CREAT | libc::O_CLOEXEC | extra,
            0o644 as libc::c_uint,
        )
    };
    if r < 0 {
        // SAFETY: __errno_location always returns this thread's valid errno slot.
        Err(unsafe { *libc::__errno_location() })
    } else {
        Ok(r)
    }
}

/// Close a descriptor this library opened.
pub fn close(fd: i32) {
    let _e = ErrnoGuard::new();
    // SAFETY: closing a number only affects that descriptor, which the caller owns.
    unsafe { libc::close(fd) };
}

/// The process id.
pub fn pid() -> u32 {
    // SAFETY: getpid has no preconditions.
    unsafe { libc::getpid() as u32 }
}

/// The program's name as it was started (`argv[0]`, glibc's `program_invocation_name`); empty
/// if unknown.
pub fn program_name() -> &'static [u8] {
    unsafe extern "C" {
        /// glibc: `argv[0]` of the program, set before any constructor runs.
        static program_invocation_name: *const libc::c_char;
    }
    // SAFETY: a plain read of a pointer glibc sets once at start-up.
    let p = unsafe { ptr::read_volatile(&raw const program_invocation_name) };
    if p.is_null() {
        return b"";
    }
    // SAFETY: a NUL-terminated string that lives as long as the process.
    unsafe { core::ffi::CStr::from_ptr(p).to_bytes() }
}

/// Resident bytes of the process now (from `/proc/self/statm`); 0 if unreadable.
pub fn rss_now() -> usize {
    let _e = ErrnoGuard::new();
    let mut buf = [0u8; 128];
    // SAFETY: a constant NUL-terminated path.
    let fd = unsafe {
        libc::open(
            c"/proc/self/statm".as_ptr(),
            libc::O_RDONLY | libc::O_CLOEXEC,
        )
    };
    if fd < 0 {
        return 0;
    }
    // SAFETY: buf is writable for its length.
    let n = unsafe { libc::read(fd, buf.as_mut_ptr() as *mut libc::c_void, buf.len()) };
    // SAFETY: fd is ours.
    unsafe { libc::close(fd) };
    if n <= 0 {
        return 0;
    }
    // "size resident shared ...": the second number, in pages.
    let mut fields = buf[..n as usize].split(|&b| b == b' ');
    let resident = fields.nth(1).unwrap_or(b"");
    let mut pages = 0usize;
    for &b in resident {
        if !b.is_ascii_digit() {
            break;
        }
        pages = pages.saturating_mul(10).saturating_add((b - b'0') as usize);
    }
    pages.saturating_mul(PAGE)
}

/// Peak resident bytes of the process so far (`getrusage`); 0 if unknown.
pub fn rss_peak() -> usize {
    let _e = ErrnoGuard::new();
    // SAFETY: zero is a valid `struct rusage`.
    let mut ru: libc::rusage = unsafe { core::mem::zeroed() };
    // SAFETY: ru is a valid out-parameter.
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) } != 0 {
        return 0;
    }
    (ru.ru_maxrss.max(0) as usize).saturating_mul(1024)
}

/// The address of `name` in the program's global scope (`dlsym(RTLD_DEFAULT, name)`), or null.
/// May allocate (glibc records a failed lookup's message with `malloc`): cold paths only, with
/// no lock of ours held.
pub fn dlsym_default(name: &core::ffi::CStr) -> *mut libc::c_void {
    let _e = ErrnoGuard::new();
    // SAFETY: RTLD_DEFAULT with a NUL-terminated name has no other precondition.
    unsafe { libc::dlsym(libc::RTLD_DEFAULT, name.as_ptr()) }
}

/// Create (or truncate) `path` for writing, mode 0644; a relative path is taken from directory
/// descriptor `dir` (`libc::AT_FDCWD` for the current one). Returns the descriptor, or the
/// `errno` of the failure. Never allocates.
pub fn create_file(dir: i32, path: &core::ffi::CStr) -> Result<i32, i32> {
    open_for_writing(dir, path, libc::O_TRUNC)
}

/// Open `path` for reading; `None` on failure. Never allocates.
pub fn open_read(path: &core::ffi::CStr) -> Option<i32> {
    let _e = ErrnoGuard::new();
    // SAFETY: path is NUL-terminated.
    let r = unsafe { libc::open(path.as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC) };
    if r < 0 { None } else { Some(r) }
}

/// Read up to `buf.len()` bytes from `fd` (retrying on `EINTR`): the count, 0 at the end, or
/// `None` on an error.
pub fn read(fd: i32, buf: &mut [u8]) -> Option<usize> {
    let _e = ErrnoGuard::new();
    loop {
        // SAFETY: buf is writable for its length.
        let n = unsafe { libc::read(fd, buf.as_mut_ptr() as *mut libc::c_void, buf.len()) };
        if n >= 0 {
            return Some(n as usize);
        }
        // SAFETY: __errno_location always returns this thread's valid errno slot.
        if unsafe { *libc::__errno_location() } != libc::EINTR {
            return None;
        }
    }
}

/// The target of symbolic link `path` into `buf` (not NUL-terminated): its length, or `None`.
pub fn readlink(path: &core::ffi::CStr, buf: &mut [u8]) -> Option<usize> {
    let _e = ErrnoGuard::new();
    // SAFETY: path is NUL-terminated and buf writable for its length.
    let n = unsafe {
        libc::readlink(
            path.as_ptr(),
            buf.as_mut_ptr() as *mut libc::c_char,
            buf.len(),
        )
    };
    if n < 0 { None } else { Some(n as usize) }
}

/// Run `f` when signal `sig` arrives (`SA_RESTART`, every other signal left alone). `f` must be
/// async-signal-safe. Returns false if the signal cannot be caught.
pub fn on_signal(sig: i32, f: extern "C" fn(i32)) -> bool {
    let _e = ErrnoGuard::new();
    // SAFETY: zero is a valid sigaction (empty mask, no flags).
    let mut sa: libc::sigaction = unsafe { core::mem::zeroed() };
    sa.sa_sigaction = f as usize;
    sa.sa_flags = libc::SA_RESTART;
    // SAFETY: sa is a valid, fully initialised sigaction; the old action is not wanted.
    unsafe { libc::sigaction(sig, &sa, ptr::null_mut()) == 0 }
}

/// Start a detached thread running `f(0)`. May allocate (the thread's stack and descriptor):
/// set-up paths only, with no lock of ours held. Returns false on failure.
pub fn spawn_detached(f: extern "C" fn(*mut libc::c_void) -> *mut libc::c_void) -> bool {
    let _e = ErrnoGuard::new();
    // SAFETY: zero is a valid pthread_t to be overwritten.
    let mut t: libc::pthread_t = unsafe { core::mem::zeroed() };
    // SAFETY: default attributes; f lives as long as the program.
    if unsafe { libc::pthread_create(&mut t, ptr::null(), f, ptr::null_mut()) } != 0 {
        return false;
    }
    // SAFETY: t is the thread just created and nobody joins it.
    unsafe { libc::pthread_detach(t) };
    true
}

/// The start and end address of the executable segments of the ELF object (the program or a
/// shared library) that holds the code address `inside`, and whether that object is the
/// program itself; `None` if no loaded object holds it. Takes the loader's lock
/// (`dl_iterate_phdr`) and never allocates: set-up paths only.
pub fn code_range_of(inside: usize) -> Option<(usize, usize, bool)> {
    struct Find {
        inside: usize,
        found: Option<(usize, usize, bool)>,
    }
    extern "C" fn each(
        info: *mut libc::dl_phdr_info,
        _size: usize,
        data: *mut libc::c_void,
    ) -> i32 {
        // SAFETY: data is the `Find` passed below; info is valid for this call.
        let (find, info) = unsafe { (&mut *(data as *mut Find), &*info) };
        let base = info.dlpi_addr as usize;
        let (mut lo, mut hi, mut holds) = (usize::MAX, 0, false);
        for i in 0..info.dlpi_phnum as usize {
            // SAFETY: the loader's table has dlpi_phnum entries.
            let ph = unsafe { &*info.dlpi_phdr.add(i) };
            if ph.p_type != libc::PT_LOAD || ph.p_flags & libc::PF_X == 0 {
                continue;
            }
            let start = base + ph.p_vaddr as usize;
            let end = start + ph.p_memsz as usize;
            lo = lo.min(start);
            hi = hi.max(end);
            holds |= start <= find.inside && find.inside < end;
        }
        if !holds {
            return 0;
        }
        // SAFETY: dlpi_name is a NUL-terminated string (empty for the program).
        let program = info.dlpi_name.is_null() || unsafe { *info.dlpi_name } == 0;
        find.found = Some((lo, hi, program));
        1
    }
    let mut find = Find {
        inside,
        found: None,
    };
    let _e = ErrnoGuard::new();
    // SAFETY: `each` only reads the loader's records and writes `find`, which outlives the call.
    unsafe { libc::dl_iterate_phdr(Some(each), &mut find as *mut Find as *mut libc::c_void) };
    find.found
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Resident pages of `[p, p + pages)`, by `mincore`.
    fn resident(p: *mut u8, pages: usize) -> usize {
        let mut v = vec![0u8; pages];
        // SAFETY: the range is mapped; v has an entry per page.
        let rc = unsafe { libc::mincore(p as *mut libc::c_void, pages * PAGE, v.as_mut_ptr()) };
        assert_eq!(rc, 0);
        v.iter().filter(|&&b| b & 1 != 0).count()
    }

    #[test]
    fn resident_pages_counts_what_mincore_reports() {
        let pages = 600;
        let p = map(pages * PAGE);
        assert!(!p.is_null());
        assert_eq!(resident_pages(p, pages), Some(0));
        for i in (0..pages).step_by(3) {
            // SAFETY: inside the mapping.
            unsafe { ptr::write_volatile(p.add(i * PAGE), 1u8) };
        }
        assert_eq!(resident_pages(p, pages), Some(resident(p, pages)));
        assert_eq!(resident_pages(p, pages), Some(200));
        assert!(decommit(p, pages * PAGE));
        assert_eq!(resident_pages(p, pages), Some(0));
        unmap(p, pages * PAGE);
    }

    #[test]
    fn zero_pages_clears_without_faulting_pages_in() {
        // 600 pages: more than one mincore chunk. Pages written (every 7th), read (every
        // 5th: mapped to the zero page) and never touched; the length ends mid-page.
        let pages = 600;
        let p = map(pages * PAGE);
        assert!(!p.is_null());
        for i in 0..pages {
            // SAFETY: inside the mapping.
            unsafe {
                if i % 7 == 0 {
                    ptr::write_bytes(p.add(i * PAGE), 0xA5, PAGE);
                } else if i % 5 == 0 {
                    assert_eq!(ptr::read_volatile(p.add(i * PAGE + 8)), 0);
                }
            }
        }
        let written = pages.div_ceil(7);
        let read = (0..pages).filter(|i| i % 7 != 0 && i % 5 == 0).count();
        let len = pages * PAGE - 100;
        // SAFETY: the mapping is ours.
        unsafe { zero_pages(p, len) };
        // Only the written pages and the read ones (mapped to the shared zero page, which
        // mincore counts) are resident now; checked before the contents are read. That the
        // read pages got no page of their own shows in c-tests/calloc_sparse.c's RSS figure.
        let now = resident(p, pages);
        assert!(now <= written + read, "{now} > {written} + {read}");
        // SAFETY: the mapping is ours and at least len bytes long.
        let bytes = unsafe { core::slice::from_raw_parts(p, len) };
        assert!(bytes.iter().all(|&b| b == 0));
        unmap(p, pages * PAGE);
    }

    #[test]
    fn thread_pointer_is_glibc_thread_self() {
        let me = thread_pointer();
        // glibc's pthread_self() is the TCB's `self` field, which holds the same address.
        // SAFETY: pthread_self has no preconditions.
        assert_eq!(me, unsafe { libc::pthread_self() } as usize);
        assert_ne!(me, 0);
        assert_eq!(me % 8, 0);
        assert_eq!(thread_pointer(), me);
        let other = std::thread::spawn(thread_pointer).join().unwrap();
        assert_ne!(other, me);
    }
}

//! L4: the sampling heap profiler's state — when to take a sample, and what the samples are —
//! and the profile dump (format: `docs/profile-format.md`).
//!
//! # Sampling
//! Each thread counts down the bytes it allocates; when a request reaches the end of the
//! count, that request is sampled and a new count is drawn from an exponential distribution of
//! mean `rate` (`XALLOC_PROF_RATE`). Sample points are then a Poisson process over the bytes
//! allocated, as in tcmalloc and Go's runtime: a request of `s` bytes is sampled with
//! probability `p(s) = 1 - exp(-s / rate)`, independently of what came before. A sample
//! therefore stands for `1 / p(s)` requests like it, `s / p(s)` bytes (its *weight*), and the
//! sum of the weights of the samples taken at a call site is an unbiased estimate of the bytes
//! allocated there (and, over the samples still live, of its live bytes). Small blocks weigh
//! about `rate`, blocks much larger than `rate` weigh their size.
//!
//! The count lives in the thread's heap, read only off the fast path: `alloc`'s fast path
//! serves requests up to [`small_limit`], which is the slab limit while the profiler is off and
//! 0 while it is on, so every request then takes `alloc`'s cold path, which counts it. The
//! test costs nothing: it compares with a memory operand where it compared with a constant,
//! the same instruction count.
//!
//! A sampled request gets a block of its own pages (a medium block, or a huge one), whatever
//! its size, so that its `free` leaves the fast path too and can [`forget`] it; the small
//! blocks' fast `free` never looks for samples.
//!
//! # Records
//! A sample's stack ([`crate::unwind`]) is interned in a table of distinct stacks, each with
//! its cumulative sample count and weight; each sampled block that is still allocated has an
//! entry in the live table, keyed by address, removed by [`forget`]. Both tables live in
//! memory mapped here at start-up (reserved, touched as they fill), under [`PROF_LOCK`], which
//! is never held while calling anything that allocates or takes another lock. When a table is
//! full further samples are counted as dropped.

use crate::fmath;
use crate::os;
use crate::size_class::SLAB_LIMIT;
use crate::sync::{Guard, RawLock};
use crate::textout::{FileOut, Text};
use crate::unwind;
use core::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

/// Lock 5 in the lock order: the stack and live tables.
pub static PROF_LOCK: RawLock = RawLock::new("PROF_LOCK");

/// Frames kept per sample.
pub const MAX_FRAMES: usize = 64;
/// Distinct stacks at most.
const MAX_STACKS: usize = 1 << 16;
/// Frames stored over all distinct stacks.
const FRAME_POOL: usize = 1 << 21;
/// Slots of the hash tables (stack index, live blocks) at most, and to begin with (powers of
/// two; a table doubles when 3/4 full). Small tables first: slots are used at random, and
/// every page a slot lands on becomes resident.
const MAX_SLOTS: usize = 1 << 18;
const MIN_SLOTS: usize = 1 << 10;

static ENABLED: AtomicBool = AtomicBool::new(false);
/// Requests up to this many bytes take `alloc`'s fast path: [`SLAB_LIMIT`], or 0 while the
/// profiler is on.
static SMALL_LIMIT: AtomicUsize = AtomicUsize::new(SLAB_LIMIT);

/// The largest request `alloc`'s fast path serves (see the module docs).
#[inline(always)]
pub fn small_limit() -> usize {
    SMALL_LIMIT.load(Ordering::Relaxed)
}
static RATE: AtomicU64 = AtomicU64::new(512 * 1024);
/// The allocator's own code (left out of stacks): start and end, or 0..0.
static OWN_CODE: [AtomicUsize; 2] = [AtomicUsize::new(0), AtomicUsize::new(0)];
static RNG: AtomicU64 = AtomicU64::new(0);
/// Samples taken, samples dropped for lack of room (under PROF_LOCK; atomic for lock-free reads).
static TAKEN: AtomicU64 = AtomicU64::new(0);
static DROPPED: AtomicU64 = AtomicU64::new(0);
/// The tables, mapped by [`enable`].
static TABLES: AtomicUsize = AtomicUsize::new(0);

#[repr(C)]
#[derive(Clone, Copy)]
struct Stack {
    hash: u64,
    /// First frame in the pool.
    first: u32,
    /// Frames (at least one: a stack the unwinder found empty is kept as one frame 0).
    len: u32,
    /// Samples taken at this stack.
    count: u64,
    /// Their summed weight (bytes).
    weight: u64,
}

#[repr(C)]
#[derive(Clone, Copy)]
struct Live {
    /// Block address; 0 for an empty slot.
    addr: usize,
    size: usize,
    weight: u64,
    stack: usize,
}

/// Everything the profiler records, in one mapping (touched as it fills).
///
/// Invariants: `stacks[..stacks_used]` are the distinct stacks, their frames in
/// `frames[..frames_used]`; `index[side]` is an open-addressing table of `index_cap` slots
/// holding `id + 1` of every stack (0: empty), placed by its hash; `live[side]` one of
/// `live_cap` slots holding every sampled block still allocated (`addr` 0: empty), placed by
/// address, with no tombstones (deletion shifts entries back). The other side of each is
/// unused (its pages given back), the place the next doubling rehashes into.
#[repr(C)]
struct Tables {
    stacks: [Stack; MAX_STACKS],
    frames: [usize; FRAME_POOL],
    index: [[u32; MAX_SLOTS]; 2],
    live: [[Live; MAX_SLOTS]; 2],
    frames_used: usize,
    stacks_used: usize,
    index_cap: usize,
    index_side: usize,
    live_used: usize,
    live_cap: usize,
    live_side: usize,
}

// The per-thread flag set while the thread captures a stack (an allocation by the unwinder is
// never sampled).
core::arch::global_asm!(
    ".pushsection .tbss,\"awT\",@nobits",
    ".p2align 3",
    ".globl xalloc_tls_prof_busy",
    ".hidden xalloc_tls_prof_busy",
    ".type xalloc_tls_prof_busy,@object",
    ".size xalloc_tls_prof_busy, 8",
    "xalloc_tls_prof_busy:",
    ".zero 8",
    ".popsection",
);

/// The calling thread's flag (see the slot above).
#[inline(always)]
fn busy() -> u64 {
    let v: u64;
    // SAFETY: reads the GOT entry holding the slot's offset from the thread pointer, then the
    // thread's own slot (initial-exec TLS, valid in every thread).
    unsafe {
        core::arch::asm!(
            "mov {off}, qword ptr [rip + xalloc_tls_prof_busy@GOTTPOFF]",
            "mov {v}, qword ptr fs:[{off}]",
            off = out(reg) _,
            v = out(reg) v,
            options(nostack, readonly, preserves_flags)
        );
    }
    v
}

/// Set the calling thread's flag.
#[inline(always)]
fn set_busy(v: u64) {
    // SAFETY: writes the calling thread's own slot (see `busy`).
    unsafe {
        core::arch::asm!(
            "mov {off}, qword ptr [rip + xalloc_tls_prof_busy@GOTTPOFF]",
            "mov qword ptr fs:[{off}], {v}",
            off = out(reg) _,
            v = in(reg) v,
            options(nostack, preserves_flags)
        );
    }
}

/// Whether the profiler is on.
#[inline]
pub fn enabled() -> bool {
    ENABLED.load(Ordering::Relaxed)
}

/// The mean sampling interval in bytes.
pub fn rate() -> u64 {
    RATE.load(Ordering::Relaxed)
}

/// Turn the profiler on with mean interval `rate` bytes (at least 1), leaving the code from
/// `own_code.0` to `own_code.1` out of stacks. Maps the tables; false if that fails. Set-up
/// only (before threads sample); later calls only change the rate.
pub fn enable(rate: u64, own_code: (usize, usize)) -> bool {
    RATE.store(rate.max(1), Ordering::Relaxed);
    OWN_CODE[0].store(own_code.0, Ordering::Relaxed);
    OWN_CODE[1].store(own_code.1, Ordering::Relaxed);
    if TABLES.load(Ordering::Relaxed) == 0 {
        let t = os::map(core::mem::size_of::<Tables>().next_multiple_of(os::PAGE));
        if t.is_null() {
            return false;
        }
        TABLES.store(t as usize, Ordering::Relaxed);
        let seed = os::startup_random();
        RNG.store(seed[0] ^ seed[1].rotate_left(17), Ordering::Relaxed);
    }
    ENABLED.store(true, Ordering::Release);
    SMALL_LIMIT.store(0, Ordering::Relaxed);
    true
}

/// A uniform 64-bit value (splitmix64 over a shared counter: one atomic add per call, which
/// happens once per sample).
fn random() -> u64 {
    let mut z = RNG
        .fetch_add(0x9E37_79B9_7F4A_7C15, Ordering::Relaxed)
        .wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Bytes until the next sample: exponential with mean `rate` (inverse transform of a uniform
/// in (0, 1]), at least 1.
fn next_interval(rate: u64) -> u64 {
    let u = ((random() >> 11) + 1) as f64 / (1u64 << 53) as f64;
    let x = -fmath::ln(u) * rate as f64;
    if x < 1.0 {
        1
    } else if x > 1e15 {
        1_000_000_000_000_000
    } else {
        x as u64
    }
}

/// The bytes a sample of a `size`-byte request stands for: `size / p(size)` with
/// `p(size) = 1 - exp(-size / rate)`, the probability that such a request is sampled.
pub fn weight(size: usize, rate: u64) -> u64 {
    let s = size.max(1) as f64;
    let p = -fmath::exp_m1(-s / rate as f64);
    fmath::round(s / p) as u64
}

/// Count a request of `size` bytes against a thread's interval `left` (the bytes before its
/// next sample; 0 when not drawn yet; the thread's heap keeps it): `Some(weight)` when this
/// request is to be sampled. Never samples while the thread captures a stack.
pub fn take_sample(left: &mut u64, size: usize) -> Option<u64> {
    let rate = rate();
    let mut l = *left;
    if l == 0 {
        l = next_interval(rate);
    }
    let s = size as u64;
    if l > s {
        *left = l - s;
        return None;
    }
    *left = next_interval(rate);
    if busy() != 0 {
        return None;
    }
    Some(weight(size, rate))
}

fn tables() -> *mut Tables {
    TABLES.load(Ordering::Relaxed) as *mut Tables
}

fn hash_frames(f: &[usize]) -> u64 {
    let mut h = 0xCBF2_9CE4_8422_2325u64 ^ f.len() as u64;
    for &a in f {
        h = (h ^ a as u64)
            .wrapping_mul(0x0000_0100_0000_01B3)
            .rotate_left(29);
    }
    h | 1
}

/// Give the pages of `len` bytes at `p` back (a table side no longer used).
fn release<T>(p: &mut [T]) {
    let (start, len) = (p.as_mut_ptr() as usize, core::mem::size_of_val(p));
    let a = start.next_multiple_of(os::PAGE);
    let end = (start + len) & !(os::PAGE - 1);
    if end > a {
        os::decommit(a as *mut u8, end - a);
    }
}

/// Put stack `id` into index side `side` of `cap` slots.
fn index_put(t: &mut Tables, side: usize, cap: usize, id: usize) {
    let mut i = t.stacks[id].hash as usize & (cap - 1);
    while t.index[side][i] != 0 {
        i = (i + 1) & (cap - 1);
    }
    t.index[side][i] = id as u32 + 1;
}

/// The id of stack `f`, added if new; `None` when the tables are full. Under PROF_LOCK.
fn intern(t: &mut Tables, f: &[usize]) -> Option<usize> {
    if t.index_cap == 0 {
        t.index_cap = MIN_SLOTS;
    }
    let h = hash_frames(f);
    let (side, cap) = (t.index_side, t.index_cap);
    let mut i = h as usize & (cap - 1);
    loop {
        let id = t.index[side][i] as usize;
        if id == 0 {
            break;
        }
        let s = t.stacks[id - 1];
        if s.hash == h
            && s.len as usize == f.len().max(1)
            && (f.is_empty() || t.frames[s.first as usize..][..f.len()] == *f)
        {
            return Some(id - 1);
        }
        i = (i + 1) & (cap - 1);
    }
    // A stack of no frames (the unwinder found none) is kept as one frame of address 0.
    let n = f.len().max(1);
    if t.stacks_used == MAX_STACKS || t.frames_used + n > FRAME_POOL {
        return None;
    }
    let first = t.frames_used;
    if f.is_empty() {
        t.frames[first] = 0;
    } else {
        t.frames[first..first + n].copy_from_slice(f);
    }
    t.frames_used += n;
    let id = t.stacks_used;
    t.stacks_used += 1;
    t.stacks[id] = Stack {
        hash: h,
        first: first as u32,
        len: n as u32,
        count: 0,
        weight: 0,
    };
    if t.stacks_used > cap / 4 * 3 {
        // Double into the other side, then give this one's pages back.
        let (new, new_cap) = (1 - side, cap * 2);
        for k in 0..id {
            index_put(t, new, new_cap, k);
        }
        t.index[side][..cap].fill(0);
        release(&mut t.index[side][..cap]);
        (t.index_side, t.index_cap) = (new, new_cap);
    }
    index_put(t, t.index_side, t.index_cap, id);
    Some(id)
}

#[inline]
fn live_home(addr: usize, cap: usize) -> usize {
    ((addr >> 4).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 40) & (cap - 1)
}

/// Put `e` into live side `side` of `cap` slots.
fn live_put(t: &mut Tables, side: usize, cap: usize, e: Live) {
    let mut i = live_home(e.addr, cap);
    while t.live[side][i].addr != 0 {
        i = (i + 1) & (cap - 1);
    }
    t.live[side][i] = e;
}

/// Record block `p` of `size` bytes as a sample of weight `weight`, with the calling thread's
/// stack. Call with no lock held, after the block was allocated.
pub fn record(p: *mut u8, size: usize, weight: u64) {
    let mut frames = [0usize; MAX_FRAMES];
    set_busy(1);
    let skip = (
        OWN_CODE[0].load(Ordering::Relaxed),
        OWN_CODE[1].load(Ordering::Relaxed),
    );
    let n = unwind::backtrace(&mut frames, skip);
    set_busy(0);
    let _g = Guard::new(&PROF_LOCK);
    // SAFETY: the tables are mapped (the profiler is on) and ours under PROF_LOCK.
    let t = unsafe { &mut *tables() };
    insert(t, p as usize, size, weight, &frames[..n]);
}

/// [`record`]'s work under PROF_LOCK: count the sample for its stack, remember the block.
fn insert(t: &mut Tables, addr: usize, size: usize, weight: u64, frames: &[usize]) {
    if t.live_cap == 0 {
        t.live_cap = MIN_SLOTS;
    }
    if t.live_used + 1 > t.live_cap / 4 * 3 {
        if t.live_cap == MAX_SLOTS {
            DROPPED.fetch_add(1, Ordering::Relaxed);
            return;
        }
        // Double into the other side, then give this one's pages back.
        let (side, cap) = (t.live_side, t.live_cap);
        let (new, new_cap) = (1 - side, cap * 2);
        for k in 0..cap {
            let e = t.live[side][k];
            if e.addr != 0 {
                live_put(t, new, new_cap, e);
            }
        }
        t.live[side][..cap].fill(Live {
            addr: 0,
            size: 0,
            weight: 0,
            stack: 0,
        });
        release(&mut t.live[side][..cap]);
        (t.live_side, t.live_cap) = (new, new_cap);
    }
    let Some(id) = intern(t, frames) else {
        DROPPED.fetch_add(1, Ordering::Relaxed);
        return;
    };
    t.stacks[id].count += 1;
    t.stacks[id].weight += weight;
    let e = Live {
        addr,
        size,
        weight,
        stack: id,
    };
    live_put(t, t.live_side, t.live_cap, e);
    t.live_used += 1;
    TAKEN.fetch_add(1, Ordering::Relaxed);
}

/// Forget block `p` if it was sampled (it is being freed). Returns whether it was.
pub fn forget(p: *mut u8) -> bool {
    if TABLES.load(Ordering::Relaxed) == 0 {
        return false;
    }
    let _g = Guard::new(&PROF_LOCK);
    // SAFETY: the tables are mapped and ours under PROF_LOCK.
    let t = unsafe { &mut *tables() };
    remove(t, p as usize)
}

/// [`forget`]'s work under PROF_LOCK.
fn remove(t: &mut Tables, addr: usize) -> bool {
    let (side, cap) = (t.live_side, t.live_cap);
    if cap == 0 {
        return false;
    }
    let live = &mut t.live[side];
    let mut i = live_home(addr, cap);
    loop {
        let a = live[i].addr;
        if a == addr {
            break;
        }
        if a == 0 {
            return false;
        }
        i = (i + 1) & (cap - 1);
    }
    // Backward-shift deletion: move later entries of the probe chain into the hole.
    let mut j = i;
    loop {
        j = (j + 1) & (cap - 1);
        let e = live[j];
        if e.addr == 0 {
            break;
        }
        let home = live_home(e.addr, cap);
        let between = if i <= j {
            i < home && home <= j
        } else {
            i < home || home <= j
        };
        if !between {
            live[i] = e;
            i = j;
        }
    }
    live[i].addr = 0;
    t.live_used -= 1;
    true
}

/// Samples taken, dropped, and live now.
pub fn counts() -> (u64, u64, usize) {
    let live = if TABLES.load(Ordering::Relaxed) == 0 {
        0
    } else {
        let _g = Guard::new(&PROF_LOCK);
        // SAFETY: mapped; read under PROF_LOCK.
        unsafe { (*tables()).live_used }
    };
    (
        TAKEN.load(Ordering::Relaxed),
        DROPPED.load(Ordering::Relaxed),
        live,
    )
}

fn put_frames(o: &mut FileOut, t: &Tables, id: usize) {
    let s = t.stacks[id];
    for &a in &t.frames[s.first as usize..][..s.len as usize] {
        o.put(b" ").hex(a);
    }
}

/// Write the profile to `fd` (`docs/profile-format.md`). Holds PROF_LOCK while it writes, so
/// sampling threads wait for it.
pub fn dump(fd: i32) {
    let mut o = FileOut::new(fd);
    o.put(b"xalloc-heap-profile 1\npid ")
        .dec(os::pid() as u64)
        .put(b"\nrate ")
        .dec(rate())
        .put(b"\n");
    let mut exe = [0u8; 4096];
    if let Some(n) = os::readlink(c"/proc/self/exe", &mut exe) {
        o.put(b"exe ").put(&exe[..n]).put(b"\n");
    }
    write_maps(&mut o);
    if TABLES.load(Ordering::Relaxed) != 0 {
        let _g = Guard::new(&PROF_LOCK);
        // SAFETY: mapped; read under PROF_LOCK.
        let t = unsafe { &*tables() };
        for e in t.live[t.live_side][..t.live_cap]
            .iter()
            .filter(|e| e.addr != 0)
        {
            o.put(b"live ").dec(e.size as u64).put(b" ").dec(e.weight);
            put_frames(&mut o, t, e.stack);
            o.put(b"\n");
        }
        for (id, s) in t.stacks[..t.stacks_used].iter().enumerate() {
            if s.count != 0 {
                o.put(b"alloc ").dec(s.count).put(b" ").dec(s.weight);
                put_frames(&mut o, t, id);
                o.put(b"\n");
            }
        }
        o.put(b"dropped ")
            .dec(DROPPED.load(Ordering::Relaxed))
            .put(b"\n");
    }
    o.put(b"end\n");
}

/// Copy the executable file mappings of `/proc/self/maps` as `map` lines.
fn write_maps(o: &mut FileOut) {
    let Some(fd) = os::open_read(c"/proc/self/maps") else {
        return;
    };
    let mut buf = [0u8; 8192];
    let mut have = 0;
    while let Some(n) = os::read(fd, &mut buf[have..]) {
        have += n;
        let mut start = 0;
        while let Some(nl) = buf[start..have].iter().position(|&b| b == b'\n') {
            map_line(o, &buf[start..start + nl]);
            start += nl + 1;
        }
        if n == 0 {
            break;
        }
        if start == 0 && have == buf.len() {
            // A line longer than the buffer: drop it.
            have = 0;
            continue;
        }
        buf.copy_within(start..have, 0);
        have -= start;
    }
    os::close(fd);
}

/// One `/proc/self/maps` line (`START-END PERMS OFFSET DEV INODE PATH`) as a `map` line, if it
/// maps a file with execute permission.
fn map_line(o: &mut FileOut, line: &[u8]) {
    let mut f = line.split(|&b| b == b' ').filter(|w| !w.is_empty());
    let (Some(range), Some(perms), Some(off)) = (f.next(), f.next(), f.next()) else {
        return;
    };
    if perms.get(2) != Some(&b'x') {
        return;
    }
    let Some(slash) = line.iter().position(|&b| b == b'/') else {
        return;
    };
    let Some(dash) = range.iter().position(|&b| b == b'-') else {
        return;
    };
    o.put(b"map 0x")
        .put(&range[..dash])
        .put(b" 0x")
        .put(&range[dash + 1..])
        .put(b" 0x")
        .put(off)
        .put(b" ")
        .put(&line[slash..])
        .put(b"\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weights_are_unbiased_estimates() {
        let rate = 512 * 1024;
        // a block far above the rate is always sampled: it stands for itself
        assert_eq!(weight(64 << 20, rate), 64 << 20);
        // a small block stands for about `rate` bytes (s / (1 - e^(-s/r)) -> r + s/2)
        let w = weight(64, rate);
        assert!((rate + 32 - 1..=rate + 32 + 1).contains(&w), "{w}");
        // at size == rate: r / (1 - 1/e)
        let w = weight(rate as usize, rate) as f64;
        assert!((w - rate as f64 / (1.0 - (-1.0f64).exp())).abs() < 2.0);
    }

    #[test]
    fn intervals_have_the_mean_rate() {
        let rate = 1000u64;
        let n = 200_000;
        let sum: u64 = (0..n).map(|_| next_interval(rate)).sum();
        let mean = sum as f64 / n as f64;
        // standard error of the mean is rate / sqrt(n) ~ 2.2
        assert!((mean - rate as f64).abs() < 15.0, "mean {mean}");
    }

    #[test]
    fn stacks_are_interned_once() {
        let t = os::map(core::mem::size_of::<Tables>().next_multiple_of(os::PAGE)) as *mut Tables;
        assert!(!t.is_null());
        // SAFETY: freshly mapped zeroed memory is a valid empty Tables.
        let t = unsafe { &mut *t };
        let a = intern(t, &[1, 2, 3]).unwrap();
        let b = intern(t, &[1, 2, 4]).unwrap();
        let e = intern(t, &[]).unwrap();
        assert_ne!(a, b);
        assert_ne!(a, e);
        assert_eq!(intern(t, &[1, 2, 3]), Some(a));
        assert_eq!(intern(t, &[]), Some(e));
        assert_eq!(t.stacks_used, 3);
        assert_eq!(t.frames_used, 7);
    }

    #[test]
    fn tables_grow_and_keep_everything() {
        let len = core::mem::size_of::<Tables>().next_multiple_of(os::PAGE);
        let t = os::map(len) as *mut Tables;
        assert!(!t.is_null());
        // SAFETY: freshly mapped zeroed memory is a valid empty Tables.
        let t = unsafe { &mut *t };
        // stacks: well past the first index's 3/4, through several doublings
        let ids: Vec<usize> = (0..5000usize)
            .map(|k| intern(t, &[k + 1, k * 7 + 3]).unwrap())
            .collect();
        assert!(t.index_cap >= 8192, "{}", t.index_cap);
        for (k, &id) in ids.iter().enumerate() {
            assert_eq!(intern(t, &[k + 1, k * 7 + 3]), Some(id));
        }
        assert_eq!(t.stacks_used, 5000);
        // live blocks: 40 000 in, every other one out, the rest still found
        let addr = |k: usize| 0x7f00_0000_0000 + k * 48;
        for k in 0..40_000 {
            insert(t, addr(k), 100, 5, &[k % 50 + 1]);
        }
        assert_eq!(t.live_used, 40_000);
        assert!(t.live_cap >= 65536);
        for k in (0..40_000).step_by(2) {
            assert!(remove(t, addr(k)));
        }
        assert!(!remove(t, addr(0)));
        for k in 0..40_000 {
            assert_eq!(remove(t, addr(k)), k % 2 == 1, "{k}");
        }
        assert_eq!(t.live_used, 0);
        // counts went to the stacks: 800 samples of weight 5 at each of 50 stacks
        let total: u64 = t.stacks[..t.stacks_used].iter().map(|s| s.count).sum();
        assert_eq!(total, 40_000);
        os::unmap(t as *mut Tables as *mut u8, len);
    }

    #[test]
    fn map_lines_keep_executable_files() {
        let mut fds = [0i32; 2];
        // SAFETY: fds is a valid out-array.
        assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
        {
            let mut o = FileOut::new(fds[1]);
            map_line(
                &mut o,
                b"55d0c0a00000-55d0c0c00000 r-xp 00001000 08:01 1234   /usr/bin/x y",
            );
            map_line(
                &mut o,
                b"7f0000000000-7f0000001000 rw-p 00000000 08:01 1234   /usr/bin/x",
            );
            map_line(
                &mut o,
                b"7ffd0000000-7ffd0001000 r-xp 00000000 00:00 0   [vdso]",
            );
        }
        // SAFETY: our pipe end.
        unsafe { libc::close(fds[1]) };
        let mut buf = [0u8; 512];
        let n = os::read(fds[0], &mut buf).unwrap();
        // SAFETY: our pipe end.
        unsafe { libc::close(fds[0]) };
        assert_eq!(
            &buf[..n],
            b"map 0x55d0c0a00000 0x55d0c0c00000 0x00001000 /usr/bin/x y\n"
        );
    }
}

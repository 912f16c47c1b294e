//! L14: statistics for `xa_stats`, `xa_class_stats`, `mallinfo2`, `malloc_stats`,
//! `malloc_info` and the exit report (`XALLOC_STATS`), computed on demand from the layers below:
//! span headers through their atomic fields, the page allocator's totals under its lock, the
//! huge-block table, the heap registry, the call counters of [`crate::counters`] (which count
//! only off the small-block fast path) and the shared locks' acquisition counts. Sitting on top, it reads what it counts; nothing
//! below calls it.
//!
//! The exit report goes to a duplicate of standard error made when the library is loaded (so a
//! program that closes fd 2 in its own exit handlers, as coreutils do, still gets it) or to
//! `XALLOC_STATS_FILE`.

use crate::arena::{self, ARENA_BYTES, PEAK_IN_USE_PAGES};
use crate::config;
use crate::counters::{self, Counter};
use crate::debug::LineBuf;
use crate::huge;
use crate::os;
use crate::pages;
use crate::profile;
use crate::registry;
use crate::size_class::{CLASS_SIZE, NUM_CLASSES};
use crate::span::Kind;
use crate::textout;
use core::cell::Cell;
use core::sync::atomic::{AtomicI32, AtomicU64, Ordering};

/// A snapshot of the allocator's memory.
#[derive(Clone, Copy, Default, Debug)]
#[repr(C)]
pub struct Stats {
    /// Bytes of address space reserved for arenas.
    pub arena_bytes: usize,
    /// Bytes in live small blocks (size-class rounded): handed out and not freed.
    pub small_in_use: usize,
    /// Bytes in freed small blocks that threads cache for reuse (hot lists, and blocks on
    /// their way to their owner): free, but not yet back in their slab's lists.
    pub cached_free: usize,
    /// Bytes in live medium blocks (page rounded).
    pub medium_in_use: usize,
    /// Bytes in live huge mappings.
    pub huge_in_use: usize,
    /// Number of live huge blocks.
    pub huge_count: usize,
    /// Bytes in slab pages neither live nor cached (free in their slab's lists, or never
    /// carved).
    pub slab_free: usize,
    /// Bytes in free page runs of the arenas, the runs kept in heaps' run caches included.
    pub free_pages: usize,
    /// Bytes in free page runs that may still be resident (not yet purged; cached runs
    /// included).
    pub dirty_pages: usize,
    /// Heaps created (one per concurrently live thread, reused).
    pub heaps: usize,
    /// Heaps whose thread exited while they held live blocks.
    pub abandoned_heaps: usize,
    /// Highest bytes of arena pages in use at once (slabs and medium blocks, whole pages).
    pub peak_pages_bytes: usize,
    /// Highest bytes in huge blocks at once (as seen after each huge allocation).
    pub huge_peak: usize,
    /// Resident bytes of the whole process now (`/proc/self/statm`).
    pub process_rss: usize,
    /// Peak resident bytes of the whole process (`getrusage`).
    pub process_rss_peak: usize,
    /// Calls counted by [`crate::counters`], indexed by `Counter as usize`.
    pub calls: [u64; counters::COUNTERS],
    /// Acquisitions of the locks shared by all threads (global heap, heap registry, pages,
    /// huge blocks), and how many of them found the lock taken.
    pub lock_acquired: u64,
    /// See `lock_acquired`.
    pub lock_contended: u64,
}

/// The locks shared by all threads, in lock order.
fn shared_locks() -> [&'static crate::sync::RawLock; 5] {
    [
        &registry::GLOBAL_LOCK,
        &registry::HEAPS_LOCK,
        &arena::PAGE_LOCK,
        &huge::HUGE_LOCK,
        &profile::PROF_LOCK,
    ]
}

impl Stats {
    /// Bytes handed out to the program.
    pub fn in_use(&self) -> usize {
        self.small_in_use + self.medium_in_use + self.huge_in_use
    }

    /// Bytes of free arena pages given back to the system (purged).
    pub fn purged(&self) -> usize {
        self.free_pages.saturating_sub(self.dirty_pages)
    }

    /// Calls counted for `c`.
    pub fn calls(&self, c: Counter) -> u64 {
        self.calls[c as usize]
    }
}

const ALL_COUNTERS: [Counter; counters::COUNTERS] = [
    Counter::Calloc,
    Counter::Realloc,
    Counter::Aligned,
    Counter::MediumAlloc,
    Counter::MediumFree,
    Counter::HugeAlloc,
    Counter::HugeFree,
];

/// Take a snapshot.
pub fn snapshot() -> Stats {
    // Blocks counted as used by their slab: live ones and cached ones.
    let slab_used = arena::sum_spans(|s| match s.kind() {
        Kind::Slab => s.used() as usize * s.block_size(),
        _ => 0,
    });
    let (cached, runs) = registry::cached_bytes();
    let cached = cached.min(slab_used);
    let small = slab_used - cached;
    let medium = arena::sum_spans(|s| match s.kind() {
        Kind::Medium => s.pages() * os::PAGE,
        _ => 0,
    });
    let slab_pages = arena::sum_spans(|s| match s.kind() {
        Kind::Slab => s.pages() * os::PAGE,
        _ => 0,
    });
    // Runs in the heaps' run caches are free and resident, like dirty arena pages.
    let (free, dirty) = pages::totals();
    let (free, dirty) = (free + runs, dirty + runs);
    let (heaps, abandoned) = registry::heap_counts();
    let rss = os::rss_now();
    let mut calls = [0; counters::COUNTERS];
    for c in ALL_COUNTERS {
        calls[c as usize] = counters::total(c);
    }
    Stats {
        arena_bytes: ARENA_BYTES.load(Ordering::Relaxed),
        small_in_use: small,
        cached_free: cached,
        medium_in_use: medium,
        huge_in_use: huge::HUGE_BYTES.load(Ordering::Relaxed),
        huge_count: huge::count(),
        slab_free: slab_pages.saturating_sub(slab_used),
        free_pages: free,
        dirty_pages: dirty,
        heaps,
        abandoned_heaps: abandoned,
        peak_pages_bytes: PEAK_IN_USE_PAGES.load(Ordering::Relaxed) * os::PAGE,
        huge_peak: counters::huge_peak(),
        process_rss: rss,
        // The kernel updates its high-water mark lazily; the peak is at least the present.
        process_rss_peak: os::rss_peak().max(rss),
        calls,
        lock_acquired: shared_locks().iter().map(|l| l.counts().0).sum(),
        lock_contended: shared_locks().iter().map(|l| l.counts().1).sum(),
    }
}

/// The slabs of one size class.
#[derive(Clone, Copy, Default, Debug, PartialEq, Eq)]
pub struct ClassStats {
    /// Block size of the class.
    pub size: usize,
    /// Slabs of the class.
    pub slabs: usize,
    /// Pages in those slabs.
    pub pages: usize,
    /// Blocks that fit in those slabs.
    pub blocks: usize,
    /// Blocks handed out by the slabs: live, or cached free by a thread.
    pub used: usize,
    /// Bytes at the ends of the slabs too small for a block.
    pub tail_waste: usize,
}

/// Every class's slabs, in one pass over the span headers.
pub fn class_table() -> [ClassStats; NUM_CLASSES] {
    let acc: [[Cell<usize>; 5]; NUM_CLASSES] = core::array::from_fn(|_| Default::default());
    arena::sum_spans(|s| {
        if s.kind() == Kind::Slab {
            let row = &acc[s.class().index()];
            let (bytes, bs) = (s.pages() * os::PAGE, s.block_size().max(1));
            let add = |i: usize, v: usize| row[i].set(row[i].get() + v);
            add(0, 1);
            add(1, s.pages());
            add(2, bytes / bs);
            add(3, s.used() as usize);
            add(4, bytes % bs);
        }
        0
    });
    let mut out = [ClassStats::default(); NUM_CLASSES];
    for (c, (o, a)) in out.iter_mut().zip(acc.iter()).enumerate() {
        *o = ClassStats {
            size: CLASS_SIZE[c] as usize,
            slabs: a[0].get(),
            pages: a[1].get(),
            blocks: a[2].get(),
            used: a[3].get().min(a[2].get()),
            tail_waste: a[4].get(),
        };
    }
    out
}

/// Width of the label column of the report.
const LABEL: usize = 14;
/// Width of the first number column of the report.
const NUMBER: usize = 11;

/// A report line: `label  <bytes>  ` then whatever the caller adds.
fn row(label: &[u8], bytes: usize) -> LineBuf {
    let mut l = LineBuf::new();
    l.push(label)
        .spaces(LABEL.saturating_sub(label.len()))
        .bytes_width(bytes as u64, NUMBER)
        .push(b"  ");
    l
}

/// Write the human-readable report to file descriptor `fd`: a header naming the program, the
/// pid and the version, the memory figures in human units, the call counts, and a table of
/// the size classes that have slabs.
pub fn print(fd: i32) {
    let s = snapshot();
    let mut l = LineBuf::new();
    l.push(b"== xalloc ")
        .push(env!("CARGO_PKG_VERSION").as_bytes())
        .push(b" statistics: ")
        .push(os::program_name())
        .push(b" (pid ")
        .dec(os::pid() as u64)
        .push(b")\n");
    l.write_to(fd);

    let mut l = row(b"in use", s.in_use());
    l.push(b"small ")
        .bytes(s.small_in_use as u64)
        .push(b", medium ")
        .bytes(s.medium_in_use as u64)
        .push(b", huge ")
        .bytes(s.huge_in_use as u64)
        .push(b" (")
        .dec(s.huge_count as u64)
        .push(b" blocks)\n");
    l.write_to(fd);

    let mut l = row(b"peak", s.peak_pages_bytes);
    l.push(b"pages of slabs and medium blocks; huge blocks ")
        .bytes(s.huge_peak as u64)
        .push(b"\n");
    l.write_to(fd);

    let mut l = row(b"cached free", s.cached_free);
    l.push(b"freed small blocks threads keep for reuse\n");
    l.write_to(fd);

    let mut l = row(b"slab free", s.slab_free);
    l.push(b"in slabs, neither in use nor cached\n");
    l.write_to(fd);

    let mut l = row(b"free pages", s.free_pages);
    l.bytes(s.dirty_pages as u64)
        .push(b" not yet purged, ")
        .bytes(s.purged() as u64)
        .push(b" purged (given back)\n");
    l.write_to(fd);

    let mut l = row(b"reserved", s.arena_bytes);
    l.push(b"address space of the arenas\n");
    l.write_to(fd);

    let mut l = row(b"resident", s.process_rss);
    l.push(b"the whole process; peak ")
        .bytes(s.process_rss_peak as u64)
        .push(b"\n");
    l.write_to(fd);

    let mut l = LineBuf::new();
    l.push(b"heaps")
        .spaces(LABEL - 5)
        .dec_width(s.heaps as u64, NUMBER)
        .push(b"  ")
        .dec(s.abandoned_heaps as u64)
        .push(b" abandoned by exited threads\n");
    l.write_to(fd);

    let mut l = LineBuf::new();
    l.push(b"calls")
        .spaces(LABEL - 5)
        .push(b"calloc ")
        .dec(s.calls(Counter::Calloc))
        .push(b", realloc ")
        .dec(s.calls(Counter::Realloc))
        .push(b", aligned ")
        .dec(s.calls(Counter::Aligned))
        .push(b"; medium blocks ")
        .dec(s.calls(Counter::MediumAlloc))
        .push(b" allocated, ")
        .dec(s.calls(Counter::MediumFree))
        .push(b" freed; huge blocks ")
        .dec(s.calls(Counter::HugeAlloc))
        .push(b" allocated, ")
        .dec(s.calls(Counter::HugeFree))
        .push(b" freed\n");
    l.write_to(fd);
    let mut l = LineBuf::new();
    l.spaces(LABEL).push(
        b"(malloc and free of small blocks are not counted: their fast path has no counter)\n",
    );
    l.write_to(fd);

    let mut l = LineBuf::new();
    l.push(b"locks").spaces(LABEL - 5);
    for (i, lock) in shared_locks().iter().enumerate() {
        let (n, c) = lock.counts();
        if i > 0 {
            l.push(b", ");
        }
        l.push(lock.name().as_bytes())
            .push(b" ")
            .dec(n)
            .push(b" (")
            .dec(c)
            .push(b" contended)");
    }
    l.push(b"\n");
    l.write_to(fd);

    if profile::enabled() {
        let (taken, dropped, live) = profile::counts();
        let mut l = LineBuf::new();
        l.push(b"profiler")
            .spaces(LABEL - 8)
            .push(b"every ")
            .bytes(profile::rate())
            .push(b" on average: ")
            .dec(taken)
            .push(b" samples, ")
            .dec(live as u64)
            .push(b" live, ")
            .dec(dropped)
            .push(b" dropped (tables full)\n");
        l.write_to(fd);
    }

    let table = class_table();
    let mut l = LineBuf::new();
    l.push(b"size classes with slabs (used: handed out, blocks cached by threads included)\n");
    l.write_to(fd);
    let mut l = LineBuf::new();
    l.push(b"  class   size  slabs    pages     blocks       used       free   tail waste\n");
    l.write_to(fd);
    for (c, t) in table.iter().enumerate() {
        if t.slabs == 0 {
            continue;
        }
        let mut l = LineBuf::new();
        l.dec_width(c as u64, 7)
            .dec_width(t.size as u64, 7)
            .dec_width(t.slabs as u64, 7)
            .dec_width(t.pages as u64, 9)
            .dec_width(t.blocks as u64, 11)
            .dec_width(t.used as u64, 11)
            .dec_width((t.blocks - t.used) as u64, 11)
            .bytes_width(t.tail_waste as u64, 13)
            .push(b"\n");
        l.write_to(fd);
    }
}

/// The duplicate of standard error made at load time, or -1.
static REPORT_FD: AtomicI32 = AtomicI32::new(-1);
/// The (device, inode) of `REPORT_FD`'s file, packed as `dev ^ ino.rotate_left(32)`, to notice
/// that the program closed it and the number now names another file.
static REPORT_ID: AtomicU64 = AtomicU64::new(0);
/// For a relative `XALLOC_STATS_FILE`: the directory the program started in, or -1.
static REPORT_DIR: AtomicI32 = AtomicI32::new(libc::AT_FDCWD);

fn pack((dev, ino): (u64, u64)) -> u64 {
    dev ^ ino.rotate_left(32)
}

/// Where the exit report goes: a descriptor and whether it must be closed after.
fn report_fd() -> Option<(i32, bool)> {
    let c = config::get();
    if let Some(name) = c.stats_file {
        let mut path = [0u8; 512];
        let Some(n) = textout::expand_pid(name, os::pid(), &mut path) else {
            let mut l = LineBuf::new();
            l.push(b"xalloc: XALLOC_STATS_FILE is too long; statistics not written\n");
            l.write_to(2);
            return None;
        };
        let Ok(cpath) = core::ffi::CStr::from_bytes_with_nul(&path[..=n]) else {
            return None;
        };
        return match os::open_append(REPORT_DIR.load(Ordering::Relaxed), cpath) {
            Ok(fd) => Some((fd, true)),
            Err(e) => {
                let mut l = LineBuf::new();
                l.push(b"xalloc: cannot open XALLOC_STATS_FILE ")
                    .push(&path[..n])
                    .push(b" (errno ")
                    .dec(e as u64)
                    .push(b"); statistics not written\n");
                l.write_to(2);
                None
            }
        };
    }
    let fd = REPORT_FD.load(Ordering::Relaxed);
    match os::file_id(fd) {
        Some(id) if fd >= 0 && pack(id) == REPORT_ID.load(Ordering::Relaxed) => Some((fd, false)),
        // Our copy is gone (the program closed it): standard error, if it is still open.
        _ => Some((2, false)),
    }
}

extern "C" fn print_at_exit() {
    if let Some((fd, close)) = report_fd() {
        print(fd);
        if close {
            os::close(fd);
        }
    }
}

/// At load time: if `XALLOC_STATS` asks for the exit report, keep a copy of standard error
/// (or, for a relative `XALLOC_STATS_FILE`, a handle on the starting directory) and register
/// the report.
extern "C" fn register_exit_report() {
    let c = config::get();
    if !c.stats_at_exit {
        return;
    }
    match c.stats_file {
        Some(name) if !name.starts_with(b"/") => {
            if let Some(d) = os::cwd_handle() {
                REPORT_DIR.store(d, Ordering::Relaxed);
            }
        }
        Some(_) => {}
        None => {
            if let Some(fd) = os::dup_high(2) {
                if let Some(id) = os::file_id(fd) {
                    REPORT_ID.store(pack(id), Ordering::Relaxed);
                    REPORT_FD.store(fd, Ordering::Relaxed);
                } else {
                    os::close(fd);
                }
            }
        }
    }
    os::at_exit(print_at_exit);
}

#[used]
#[unsafe(link_section = ".init_array")]
static REGISTER_EXIT_REPORT: extern "C" fn() = register_exit_report;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[cfg(feature = "override")]
    fn the_class_table_counts_slabs() {
        // The test program's `malloc` is xalloc's (feature "override"), and std's allocator
        // calls it.
        let v: Vec<u8> = Vec::with_capacity(100);
        let t = class_table();
        let c = crate::size_class::class_of(100).index();
        assert!(t[c].slabs >= 1 && t[c].used >= 1 && t[c].blocks >= t[c].used);
        assert_eq!(t[c].size, CLASS_SIZE[c] as usize);
        drop(v);
    }
}

//! L13: statistics for `xa_stats`, `mallinfo2`, `malloc_stats` and `malloc_info`, computed on
//! demand from the layers below (no counters on the fast paths): span headers through their
//! atomic fields, the page allocator's totals under its lock, the huge-block table, the heap
//! registry. Sitting on top, it reads what it counts; nothing below calls it.

use crate::arena::{self, ARENA_BYTES};
use crate::config;
use crate::debug::LineBuf;
use crate::huge;
use crate::os;
use crate::pages;
use crate::registry;
use crate::span::Kind;
use core::sync::atomic::Ordering;

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
    /// Bytes in free page runs of the arenas.
    pub free_pages: usize,
    /// Bytes in free page runs that may still be resident (not yet purged).
    pub dirty_pages: usize,
    /// Heaps created (one per concurrently live thread, reused).
    pub heaps: usize,
    /// Heaps whose thread exited while they held live blocks.
    pub abandoned_heaps: usize,
    /// Acquisitions of the locks shared by all threads (global heap, heap registry, pages,
    /// huge blocks), and how many of them found the lock taken.
    pub lock_acquired: u64,
    /// See `lock_acquired`.
    pub lock_contended: u64,
}

/// The locks shared by all threads, in lock order.
fn shared_locks() -> [&'static crate::sync::RawLock; 4] {
    [
        &registry::GLOBAL_LOCK,
        &registry::HEAPS_LOCK,
        &arena::PAGE_LOCK,
        &huge::HUGE_LOCK,
    ]
}

impl Stats {
    /// Bytes handed out to the program.
    pub fn in_use(&self) -> usize {
        self.small_in_use + self.medium_in_use + self.huge_in_use
    }
}

/// Take a snapshot.
pub fn snapshot() -> Stats {
    // Blocks counted as used by their slab: live ones and cached ones.
    let slab_used = arena::sum_spans(|s| match s.kind() {
        Kind::Slab => s.used() as usize * s.block_size(),
        _ => 0,
    });
    let cached = registry::cached_bytes().min(slab_used);
    let small = slab_used - cached;
    let medium = arena::sum_spans(|s| match s.kind() {
        Kind::Medium => s.pages() * os::PAGE,
        _ => 0,
    });
    let slab_pages = arena::sum_spans(|s| match s.kind() {
        Kind::Slab => s.pages() * os::PAGE,
        _ => 0,
    });
    let (free, dirty) = pages::totals();
    let (heaps, abandoned) = registry::heap_counts();
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
        lock_acquired: shared_locks().iter().map(|l| l.counts().0).sum(),
        lock_contended: shared_locks().iter().map(|l| l.counts().1).sum(),
    }
}

/// Write a human-readable summary to file descriptor `fd`.
pub fn print(fd: i32) {
    let s = snapshot();
    let rows: [(&[u8], usize); 11] = [
        (b"arena bytes reserved", s.arena_bytes),
        (b"in use bytes        ", s.in_use()),
        (b"  small blocks      ", s.small_in_use),
        (b"  medium blocks     ", s.medium_in_use),
        (b"  huge blocks       ", s.huge_in_use),
        (b"huge block count    ", s.huge_count),
        (b"cached free bytes   ", s.cached_free),
        (b"slab free bytes     ", s.slab_free),
        (b"free page bytes     ", s.free_pages),
        (b"  not yet purged    ", s.dirty_pages),
        (b"heaps (abandoned)   ", s.heaps),
    ];
    let mut l = LineBuf::new();
    l.push(b"xalloc statistics\n");
    l.write_to(fd);
    for lock in shared_locks() {
        let (n, c) = lock.counts();
        let mut l = LineBuf::new();
        l.push(b"lock ")
            .push(lock.name().as_bytes())
            .push(b" acquired ")
            .dec(n)
            .push(b" contended ")
            .dec(c)
            .push(b"\n");
        l.write_to(fd);
    }
    for (name, v) in rows {
        let mut l = LineBuf::new();
        l.push(name).push(b" ").dec(v as u64);
        if name.starts_with(b"heaps") {
            l.push(b" (").dec(s.abandoned_heaps as u64).push(b")");
        }
        l.push(b"\n");
        l.write_to(fd);
    }
}

extern "C" fn print_at_exit() {
    print(2);
}

/// At load time: register the exit-time report if `XALLOC_STATS` asks for it.
extern "C" fn register_exit_report() {
    if config::get().stats_at_exit {
        os::at_exit(print_at_exit);
    }
}

#[used]
#[unsafe(link_section = ".init_array")]
static REGISTER_EXIT_REPORT: extern "C" fn() = register_exit_report;

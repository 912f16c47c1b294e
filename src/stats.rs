//! L1: statistics for `mallinfo2`, `malloc_stats` and `malloc_info`, computed on demand from
//! the allocator's own state (no counters on the fast paths).

use crate::buddy;
use crate::debug::LineBuf;
use crate::heap;
use crate::huge;
use crate::os::PAGE;
use crate::slab::Kind;
use core::sync::atomic::Ordering;

/// A snapshot of the allocator's memory.
#[derive(Clone, Copy, Default, Debug)]
#[repr(C)]
pub struct Stats {
    /// Bytes of address space reserved for arenas.
    pub arena_bytes: usize,
    /// Bytes in live small blocks (size-class rounded).
    pub small_in_use: usize,
    /// Bytes in live medium blocks (page rounded).
    pub large_in_use: usize,
    /// Bytes in live huge mappings.
    pub huge_in_use: usize,
    /// Number of live huge blocks.
    pub huge_count: usize,
    /// Bytes in slab pages not holding a live block.
    pub slab_free: usize,
    /// Bytes in free page runs of the arenas.
    pub free_pages: usize,
    /// Bytes in free page runs that may still be resident (not yet purged).
    pub dirty_pages: usize,
    /// Heaps created (one per concurrently live thread, reused).
    pub heaps: usize,
    /// Heaps whose thread exited while they held live blocks.
    pub abandoned_heaps: usize,
}

impl Stats {
    /// Bytes handed out to the program.
    pub fn in_use(&self) -> usize {
        self.small_in_use + self.large_in_use + self.huge_in_use
    }
}

/// Take a snapshot.
pub fn snapshot() -> Stats {
    let small = heap::small_bytes_in_use();
    let large = buddy::sum_spans(|s| {
        if s.kind == Kind::Large {
            s.pages as usize * PAGE
        } else {
            0
        }
    });
    let slab_pages = buddy::sum_spans(|s| {
        if s.kind == Kind::Slab {
            s.pages as usize * PAGE
        } else {
            0
        }
    });
    let (free, dirty) = buddy::totals();
    let (heaps, abandoned) = heap::heap_counts();
    Stats {
        arena_bytes: buddy::ARENA_BYTES.load(Ordering::Relaxed),
        small_in_use: small,
        large_in_use: large,
        huge_in_use: huge::HUGE_BYTES.load(Ordering::Relaxed),
        huge_count: huge::count(),
        slab_free: slab_pages.saturating_sub(small),
        free_pages: free,
        dirty_pages: dirty,
        heaps,
        abandoned_heaps: abandoned,
    }
}

/// Write a human-readable summary to file descriptor `fd`.
pub fn print(fd: i32) {
    let s = snapshot();
    let rows: [(&[u8], usize); 10] = [
        (b"arena bytes reserved", s.arena_bytes),
        (b"in use bytes        ", s.in_use()),
        (b"  small blocks      ", s.small_in_use),
        (b"  medium blocks     ", s.large_in_use),
        (b"  huge blocks       ", s.huge_in_use),
        (b"huge block count    ", s.huge_count),
        (b"slab free bytes     ", s.slab_free),
        (b"free page bytes     ", s.free_pages),
        (b"  not yet purged    ", s.dirty_pages),
        (b"heaps (abandoned)   ", s.heaps),
    ];
    let mut l = LineBuf::new();
    l.push(b"xalloc statistics\n");
    l.write_to(fd);
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

/// Register the exit-time report if `XALLOC_STATS` asks for it.
pub fn register_exit_hook() {
    if crate::config::get().stats_at_exit {
        // SAFETY: print_at_exit is a plain function that lives as long as the program.
        unsafe {
            libc::atexit(print_at_exit);
        }
    }
}

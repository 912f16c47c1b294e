//! L5: arenas — 64 MiB of address space each, with their header — and the list of all arenas,
//! guarded by [`PAGE_LOCK`].
//!
//! An arena is reserved with one `mmap`, aligned to 64 MiB, so the arena holding any address is
//! `addr & !(ARENA_SIZE - 1)`. Its first [`META_PAGES`] pages hold the [`Arena`] header itself:
//! the page map (page → owning [`Span`]), the buddy state over its pages, the dirty-page
//! bitmaps and the span headers. The rest are handed out as runs of pages.
//!
//! A bitmap marks the free pages that may hold non-zero bytes and be resident (*dirty*): pages
//! of runs given back, until they are purged (`MADV_DONTNEED` on each maximal dirty range) or
//! handed out again. A run is known to read as zero iff none of its pages is dirty.

use crate::bitmap::Bits;
use crate::buddy::{self, Buddy, Order};
use crate::os::{self, PAGE, PAGE_SHIFT};
use crate::span::{Kind, Span};
use crate::sync::RawLock;
use core::ptr;
use core::sync::atomic::{AtomicPtr, AtomicUsize, Ordering};

/// Pages in one arena: as many as one buddy manages.
pub const ARENA_PAGES: usize = buddy::PAGES;
/// Bytes in one arena (64 MiB).
pub const ARENA_SIZE: usize = ARENA_PAGES * PAGE;
/// log2 of the arena size.
pub const ARENA_SHIFT: usize = ARENA_SIZE.trailing_zeros() as usize;
/// Pages at the start of each arena reserved for its header (1 MiB).
pub const META_PAGES: usize = 256;
/// Every run starts on a multiple of this many pages (runs are at least 4 pages), so span
/// headers are kept one per `RUN_ALIGN` pages.
pub const RUN_ALIGN: usize = 4;
/// The smallest order a run is taken at (a run's first page is a multiple of `RUN_ALIGN`).
pub const MIN_RUN_ORDER: Order = Order::new(2);
/// Largest run handed out: half an arena (32 MiB); larger blocks are mapped directly.
pub const MAX_RUN_PAGES: usize = ARENA_PAGES / 2;

const WORDS: usize = ARENA_PAGES / 64;

/// Lock 3 in the lock order (see the crate docs): every arena's buddy state and bitmaps, the
/// arena list, and the page counters below.
pub static PAGE_LOCK: RawLock = RawLock::new("PAGE_LOCK");
/// First arena; arenas are never unmapped.
static ARENAS: AtomicPtr<Arena> = AtomicPtr::new(ptr::null_mut());
/// Bytes of address space reserved by arenas.
pub static ARENA_BYTES: AtomicUsize = AtomicUsize::new(0);
/// Total dirty free pages across arenas (under PAGE_LOCK; atomic only for lock-free reads).
pub static DIRTY_PAGES: AtomicUsize = AtomicUsize::new(0);
/// Pages handed out as runs (under PAGE_LOCK; atomic for lock-free reads).
pub static IN_USE_PAGES: AtomicUsize = AtomicUsize::new(0);
/// The most pages ever handed out at once (under PAGE_LOCK).
pub static PEAK_IN_USE_PAGES: AtomicUsize = AtomicUsize::new(0);

/// The header at the start of every arena.
///
/// Invariants (checked by [`Arena::check_invariants`]):
/// - `buddy` is valid (its own invariants) over pages `META_PAGES..ARENA_PAGES`;
/// - a page's bit in `dirty` is set only if the page is free; `dirty_pages` counts the set
///   bits; `old` is a subset of `dirty` (pages dirty since before the current purge epoch
///   began);
/// - `pagemap[i]` is null or an unused span (the freed-run marker) for free and header pages;
///   a live slab maps every page of its run to its span, a live medium run only its first
///   page (its other pages hold null or the marker).
#[repr(C)]
pub struct Arena {
    /// For each page: the span of the run covering it, or null. First: the page map's
    /// registry points here (biased, see `pagemap`).
    pub pagemap: [AtomicPtr<Span>; ARENA_PAGES],
    /// Next arena in the list.
    next: *mut Arena,
    /// Free dirty pages.
    dirty_pages: u32,
    /// The free runs.
    buddy: Buddy,
    /// One bit per page: set iff the page is free and may be dirty.
    dirty: Bits<WORDS>,
    /// One bit per page: dirty when the current purge epoch began and not handed out since.
    old: Bits<WORDS>,
    /// Span headers, one per `RUN_ALIGN` pages, used for runs starting there.
    spans: [Span; ARENA_PAGES / RUN_ALIGN],
}

const _: () = assert!(core::mem::size_of::<Arena>() <= META_PAGES * PAGE);
const _: () = assert!(META_PAGES.is_power_of_two() && META_PAGES % RUN_ALIGN == 0);
const _: () = assert!(RUN_ALIGN == MIN_RUN_ORDER.pages());

impl Arena {
    /// Map and initialise a new arena, and add it to the list. Null if the system is out of
    /// address space. Caller holds [`PAGE_LOCK`].
    pub fn create() -> *mut Arena {
        let a = Self::map();
        if a.is_null() {
            return a;
        }
        // Append: older arenas are searched first.
        let mut last = ARENAS.load(Ordering::Relaxed);
        if last.is_null() {
            ARENAS.store(a, Ordering::Release);
        } else {
            // SAFETY: arenas in the list are live; PAGE_LOCK held.
            unsafe {
                while !(*last).next.is_null() {
                    last = (*last).next;
                }
                (*last).next = a;
            }
        }
        ARENA_BYTES.fetch_add(ARENA_SIZE, Ordering::Relaxed);
        a
    }

    /// Map and initialise an arena that is on no list.
    fn map() -> *mut Arena {
        let base = os::map_aligned(ARENA_SIZE, ARENA_SIZE);
        if base.is_null() {
            return ptr::null_mut();
        }
        let a = base as *mut Arena;
        // SAFETY: the fresh mapping is zeroed, writable, and large enough for the header; zero
        // is a valid bit pattern for every field, and the buddy is made valid here.
        unsafe { (*a).buddy.init(META_PAGES) };
        a
    }

    /// Base address of this arena.
    #[inline]
    pub fn base(&self) -> usize {
        self as *const Arena as usize
    }

    /// Page index of `addr` inside its arena.
    #[inline(always)]
    pub fn page_of(addr: usize) -> usize {
        (addr >> PAGE_SHIFT) & (ARENA_PAGES - 1)
    }

    /// The span header for a run starting at page `idx`.
    #[inline]
    pub fn span_at(&mut self, idx: usize) -> *mut Span {
        xa_check!(idx % RUN_ALIGN == 0);
        &mut self.spans[idx / RUN_ALIGN]
    }

    /// Take a run of `n` pages whose first page index is a multiple of `min_order`'s block.
    /// Returns the page index and whether any of it may be dirty.
    ///
    /// Prefers the smallest fitting order whose first block starts on a dirty page (a run freed
    /// lately: its pages are resident, so reusing it costs no page faults and keeps the
    /// resident set from growing while free resident pages wait to be purged).
    pub fn alloc_run(&mut self, n: usize, min_order: Order) -> Option<(usize, bool)> {
        let dirty = &self.dirty;
        let idx = self.buddy.take(n, min_order, |head| dirty.get(head))?;
        Some((idx, self.take_dirty(idx, n)))
    }

    /// Pages `idx..idx+n` leave the free pool: clear their dirty (and old) bits. Returns
    /// whether any was dirty.
    fn take_dirty(&mut self, idx: usize, n: usize) -> bool {
        let was = self.dirty.clear(idx, n);
        if was != 0 {
            self.old.clear(idx, n);
            self.dirty_pages -= was as u32;
            DIRTY_PAGES.fetch_sub(was, Ordering::Relaxed);
        }
        was != 0
    }

    /// Free pages `idx..idx+n` (any alignment), marking them dirty if they may hold data.
    pub fn free_range(&mut self, idx: usize, n: usize, dirty: bool) {
        if dirty {
            let was = self.dirty.set(idx, n);
            self.dirty_pages += (n - was) as u32;
            DIRTY_PAGES.fetch_add(n - was, Ordering::Relaxed);
        }
        self.buddy.free_range(idx, n);
    }

    /// Grow the run of `pages` pages at `idx` to `new_pages` in place if the following pages
    /// are free.
    pub fn extend_run(&mut self, idx: usize, pages: usize, new_pages: usize) -> bool {
        if !self.buddy.extend(idx, pages, new_pages) {
            return false;
        }
        self.take_dirty(idx + pages, new_pages - pages);
        true
    }

    /// Free pages in this arena.
    pub fn free_pages(&self) -> usize {
        self.buddy.free_pages()
    }

    /// Dirty free pages in this arena.
    pub fn dirty_pages(&self) -> usize {
        self.dirty_pages as usize
    }

    /// Start a purge epoch: every page dirty now is old.
    pub fn start_epoch(&mut self) {
        self.old = self.dirty;
    }

    /// Purge up to `limit` dirty pages (all of them for `usize::MAX`), only old ones (dirty
    /// since before the epoch began) if `only_old`: `MADV_DONTNEED` on maximal ranges of such
    /// pages (all of which are free), then clear their bits. Returns pages purged.
    pub fn purge(&mut self, limit: usize, only_old: bool) -> usize {
        let word = |a: &Arena, w: usize| {
            if only_old {
                a.dirty.word(w) & a.old.word(w)
            } else {
                a.dirty.word(w)
            }
        };
        let mut purged = 0;
        let mut i = 0;
        while i < ARENA_PAGES && purged < limit {
            let w = word(self, i / 64) >> (i % 64);
            if w == 0 {
                i = (i / 64 + 1) * 64;
                continue;
            }
            i += w.trailing_zeros() as usize;
            let start = i;
            while i < ARENA_PAGES
                && i - start < limit - purged
                && word(self, i / 64) & (1 << (i % 64)) != 0
            {
                i += 1;
            }
            os::decommit(
                (self.base() + (start << PAGE_SHIFT)) as *mut u8,
                (i - start) << PAGE_SHIFT,
            );
            self.dirty.clear(start, i - start);
            self.old.clear(start, i - start);
            purged += i - start;
        }
        self.dirty_pages -= purged as u32;
        DIRTY_PAGES.fetch_sub(purged, Ordering::Relaxed);
        purged
    }

    /// Verify every invariant documented on the type. Aborts on violation.
    pub fn check_invariants(&self) {
        let mut free = Bits::<WORDS>::new();
        self.buddy.check_invariants(|p| {
            free.set(p, 1);
            let e = self.pagemap[p].load(Ordering::Relaxed);
            // SAFETY: page-map entries are null or valid span headers.
            xa_check!(e.is_null() || unsafe { (*e).kind() } == Kind::Unused);
        });
        xa_check!(self.old.is_subset_of(&self.dirty));
        // Dirty pages are free pages.
        xa_check!(self.dirty.is_subset_of(&free));
        xa_check!(self.dirty.ones() == self.dirty_pages as usize);
    }
}

/// Call `f` on every arena, oldest first. Caller holds [`PAGE_LOCK`].
pub fn for_each_arena(mut f: impl FnMut(&mut Arena)) {
    let mut a = ARENAS.load(Ordering::Relaxed);
    while !a.is_null() {
        // SAFETY: arenas in the list are live; PAGE_LOCK is held, so nobody else changes them.
        let ar = unsafe { &mut *a };
        f(ar);
        a = ar.next;
    }
}

/// Sum `f` over the span header of every run in every arena, without a lock: `f` may read only
/// the atomic fields of a span (a snapshot, which is what statistics need).
pub fn sum_spans(f: impl Fn(&Span) -> usize) -> usize {
    let mut total = 0;
    let mut a = ARENAS.load(Ordering::Acquire);
    while !a.is_null() {
        // SAFETY: arenas are never unmapped; their `next` is written once, under PAGE_LOCK,
        // before the arena is published.
        let spans = unsafe { &(*a).spans };
        for s in spans.iter() {
            total += f(s);
        }
        // SAFETY: as above.
        a = unsafe { (*a).next };
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A private arena, not on the list, for model tests.
    struct TestArena(*mut Arena);
    impl Drop for TestArena {
        fn drop(&mut self) {
            os::unmap(self.0 as *mut u8, ARENA_SIZE);
        }
    }

    #[test]
    fn dirty_pages_follow_frees_and_purges() {
        let t = TestArena(Arena::map());
        // SAFETY: private arena, single thread.
        let a = unsafe { &mut *t.0 };
        a.check_invariants();
        assert_eq!(a.free_pages(), ARENA_PAGES - META_PAGES);
        let (i1, d1) = a.alloc_run(5, MIN_RUN_ORDER).unwrap();
        let (i2, d2) = a.alloc_run(MAX_RUN_PAGES, MIN_RUN_ORDER).unwrap();
        assert!(!d1 && !d2, "fresh pages are clean");
        a.free_range(i1, 5, true);
        a.free_range(i2, MAX_RUN_PAGES, false);
        a.check_invariants();
        assert_eq!(a.free_pages(), ARENA_PAGES - META_PAGES);
        // Only the 5 pages freed dirty count, though their merged block is larger.
        assert_eq!(a.dirty_pages, 5);
        assert_eq!(a.dirty.count(i1, 5), 5);
        assert_eq!(a.dirty.count(i1 + 5, 3), 0);
        assert_eq!(a.purge(2, true), 0);
        assert_eq!(a.purge(2, false), 2);
        assert_eq!(a.dirty_pages, 3);
        a.check_invariants();
        a.start_epoch();
        assert_eq!(a.purge(usize::MAX, true), 3);
        assert_eq!(a.dirty_pages, 0);
        a.check_invariants();
    }

    #[test]
    fn only_runs_over_dirty_pages_are_dirty() {
        let t = TestArena(Arena::map());
        // SAFETY: private arena, single thread.
        let a = unsafe { &mut *t.0 };
        let mut runs = Vec::new();
        while let Some((i, dirty)) = a.alloc_run(4, MIN_RUN_ORDER) {
            assert!(!dirty, "fresh pages are clean");
            runs.push(i);
        }
        // Give back every other run dirty, the rest clean.
        for (k, &i) in runs.iter().enumerate() {
            a.free_range(i, 4, k % 2 == 0);
        }
        a.check_invariants();
        assert_eq!(a.dirty_pages as usize, runs.len().div_ceil(2) * 4);
        let mut dirty_runs = 0;
        while let Some((i, dirty)) = a.alloc_run(4, MIN_RUN_ORDER) {
            let k = runs.iter().position(|&r| r == i).unwrap();
            assert_eq!(dirty, k % 2 == 0, "run {i}");
            dirty_runs += dirty as usize;
        }
        assert_eq!(dirty_runs, runs.len().div_ceil(2));
        assert_eq!(a.dirty_pages, 0);
        a.check_invariants();
    }

    #[test]
    fn growth_in_place_takes_the_dirty_bits() {
        let t = TestArena(Arena::map());
        // SAFETY: private arena, single thread.
        let a = unsafe { &mut *t.0 };
        let (i, _) = a.alloc_run(64, MIN_RUN_ORDER).unwrap();
        a.free_range(i + 9, 64 - 9, true);
        assert_eq!(a.dirty_pages, 55);
        assert!(a.extend_run(i, 9, 40));
        assert_eq!(a.dirty_pages, 24);
        a.check_invariants();
        a.free_range(i, 40, true);
        a.check_invariants();
        assert_eq!(a.free_pages(), ARENA_PAGES - META_PAGES);
    }

    #[test]
    fn random_runs_keep_contents_and_invariants() {
        let t = TestArena(Arena::map());
        // SAFETY: private arena, single thread.
        let a = unsafe { &mut *t.0 };
        let mut live: Vec<(usize, usize, u8)> = Vec::new();
        let mut s = 0x9e3779b97f4a7c15u64;
        let mut rng = || {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            s
        };
        for step in 0..3000 {
            let r = rng();
            if live.is_empty() || r % 3 != 0 {
                let n = 1 + (rng() % 64) as usize;
                if let Some((idx, _)) = a.alloc_run(n, MIN_RUN_ORDER) {
                    let tag = (step % 251) as u8;
                    let base = a.base();
                    // SAFETY: the run is ours and mapped.
                    unsafe {
                        *((base + (idx << PAGE_SHIFT)) as *mut u8) = tag;
                        *((base + ((idx + n - 1) << PAGE_SHIFT) + 7) as *mut u8) = tag;
                    }
                    live.push((idx, n, tag));
                }
            } else {
                let (idx, n, tag) = live.swap_remove((r as usize / 3) % live.len());
                let base = a.base();
                // SAFETY: the run is ours and mapped.
                unsafe {
                    assert_eq!(*((base + (idx << PAGE_SHIFT)) as *const u8), tag);
                    assert_eq!(
                        *((base + ((idx + n - 1) << PAGE_SHIFT) + 7) as *const u8),
                        tag
                    );
                }
                a.free_range(idx, n, true);
            }
            if step % 50 == 0 {
                a.purge(usize::MAX, step % 100 == 0);
                a.start_epoch();
            }
            a.check_invariants();
        }
    }
}

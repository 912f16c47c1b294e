//! L5: arenas — 64 MiB of address space each, with their header — and the list of all arenas,
//! guarded by [`PAGE_LOCK`].
//!
//! An arena is reserved with one `mmap`, aligned to 64 MiB, so the arena holding any address is
//! `addr & !(ARENA_SIZE - 1)`. Its first [`META_PAGES`] pages hold the [`Arena`] header itself:
//! the page map (page → owning [`Span`]), the buddy state over its pages, the dirty-page
//! bitmaps and the span headers. The rest are handed out as runs of pages.
//!
//! A bitmap marks the free pages that may hold non-zero bytes and be resident (*dirty*): pages
//! of runs given back, until they are purged or handed out again. A run is known to read as
//! zero iff none of its pages is dirty.
//!
//! Purging happens in two steps so that `MADV_DONTNEED` never runs under [`PAGE_LOCK`]. The
//! purge policy marks dirty pages *due*; [`Arena::collect_due`] then takes maximal ranges of
//! due pages out of the buddy (they become *purging*: neither free nor in use, so no run that
//! is handed out can overlap them) into a [`PurgeBatch`] of bounded size; the lock is dropped,
//! [`PurgeBatch::decommit`] purges them, and [`PurgeBatch::give_back`] returns them to the
//! buddy as clean pages under the lock again.

use crate::bitmap::{self, Bits};
use crate::buddy::{self, Buddy, Order};
use crate::config;
use crate::os::{self, PAGE, PAGE_SHIFT};
use crate::span::{Kind, Span};
use crate::stack_vec::StackVec;
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
/// log2 of [`RUN_ALIGN`]: the page map has an entry per group of `RUN_ALIGN` pages, since no
/// two runs share a group (see `pagemap`).
pub const MAP_SHIFT: usize = MIN_RUN_ORDER.get();
/// Page-map entries per arena.
pub const MAP_ENTRIES: usize = ARENA_PAGES >> MAP_SHIFT;
/// Largest run handed out: half an arena (32 MiB); larger blocks are mapped directly.
pub const MAX_RUN_PAGES: usize = ARENA_PAGES / 2;

const WORDS: usize = ARENA_PAGES / 64;

/// A span that is never written.
#[repr(transparent)]
pub struct Marker(pub core::cell::UnsafeCell<Span>);
// SAFETY: never written after construction (no heap owns it and it has no blocks, so every
// write path is cut off before touching it).
unsafe impl Sync for Marker {}

/// The page-map entry of pages no run has covered yet: an unused span in which no pointer is a
/// block start.
pub static NEVER_USED: Marker = Marker(core::cell::UnsafeCell::new(Span::empty()));

/// Lock 3 in the lock order (see the crate docs): every arena's buddy state and bitmaps, the
/// arena list, and the page counters below.
pub static PAGE_LOCK: RawLock = RawLock::new("PAGE_LOCK");
/// First arena; arenas are never unmapped.
static ARENAS: AtomicPtr<Arena> = AtomicPtr::new(ptr::null_mut());
/// Bytes of address space reserved by arenas.
pub static ARENA_BYTES: AtomicUsize = AtomicUsize::new(0);
/// Total dirty free pages across arenas (under PAGE_LOCK; atomic only for lock-free reads).
pub static DIRTY_PAGES: AtomicUsize = AtomicUsize::new(0);
/// Total due pages across arenas, a part of `DIRTY_PAGES` (under PAGE_LOCK; atomic only for
/// lock-free reads).
pub static DUE_PAGES: AtomicUsize = AtomicUsize::new(0);
/// Total pages being purged across arenas (under PAGE_LOCK; atomic only for lock-free reads).
pub static PURGING_PAGES: AtomicUsize = AtomicUsize::new(0);
/// Pages handed out as runs (under PAGE_LOCK; atomic for lock-free reads).
pub static IN_USE_PAGES: AtomicUsize = AtomicUsize::new(0);
/// The most pages ever handed out at once (under PAGE_LOCK).
pub static PEAK_IN_USE_PAGES: AtomicUsize = AtomicUsize::new(0);

/// The header at the start of every arena.
///
/// Invariants (checked by [`Arena::check_invariants`]):
/// - `buddy` is valid (its own invariants) over pages `META_PAGES..ARENA_PAGES`;
/// - every page from `META_PAGES` on is exactly one of: free (in a free buddy block), purging
///   (its bit in `purging` set; out of the buddy while a thread purges it with no lock held)
///   or in use (in a run handed out);
/// - a page's bit in `dirty` is set only if the page is free; `old` and `due` are disjoint
///   subsets of `dirty` (`old`: dirty since before the current purge epoch began; `due`:
///   chosen by the purge policy to be purged next);
/// - `dirty_pages`, `due_pages` and `purging_pages` count the set bits of `dirty`, `due` and
///   `purging`;
/// - `pagemap[g]`, the entry of the group of `RUN_ALIGN` pages from `g * RUN_ALIGN`, is never
///   null: it is an unused span ([`NEVER_USED`], or the page map's freed-run marker) for a
///   group of header pages or of free and purging pages only; a live slab maps every group
///   its run touches to its span, a live medium run only its first group (its other groups
///   hold an unused span). A run starts on a group, so a group holds pages of one run at most:
///   the free pages after the end of a run in its last group are never handed out (no run
///   can start there) until the run is freed and they merge.
///
/// Across arenas (checked by `pages::check_all`): [`DIRTY_PAGES`], [`DUE_PAGES`] and
/// [`PURGING_PAGES`] are the sums of `dirty_pages`, `due_pages` and `purging_pages`, and
/// [`IN_USE_PAGES`] + free pages + purging pages = arenas × (`ARENA_PAGES` − `META_PAGES`).
#[repr(C)]
pub struct Arena {
    /// For each group of `RUN_ALIGN` pages: the span of the run covering it, or an unused
    /// span. First: the page map's registry points here (biased, see `pagemap`).
    pub pagemap: [AtomicPtr<Span>; MAP_ENTRIES],
    /// Next arena in the list.
    next: *mut Arena,
    /// Free dirty pages.
    dirty_pages: u32,
    /// Due pages.
    due_pages: u32,
    /// Pages being purged.
    purging_pages: u32,
    /// The free runs.
    buddy: Buddy,
    /// One bit per page: set iff the page is free and may be dirty.
    dirty: Bits<WORDS>,
    /// One bit per page: dirty when the current purge epoch began, not handed out since, and
    /// not due.
    old: Bits<WORDS>,
    /// One bit per page: dirty and chosen by the purge policy to be purged, not yet taken for
    /// it by [`Arena::collect_due`].
    due: Bits<WORDS>,
    /// One bit per page: taken out of the buddy by [`Arena::collect_due`] and being purged;
    /// [`Arena::end_purge`] gives it back.
    purging: Bits<WORDS>,
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

    /// Map and initialise an arena that is on no list. Every page-map entry starts at
    /// [`NEVER_USED`] (writing the page map's 32 KiB), so that `free` needs no null test on
    /// an entry.
    fn map() -> *mut Arena {
        let base = os::map_aligned(ARENA_SIZE, ARENA_SIZE);
        if base.is_null() {
            return ptr::null_mut();
        }
        if config::get().huge_pages {
            os::advise_huge(base, ARENA_SIZE);
        }
        let a = base as *mut Arena;
        // SAFETY: the fresh mapping is zeroed, writable, and large enough for the header; zero
        // is a valid bit pattern for every field, and the buddy is made valid here.
        unsafe {
            (*a).buddy.init(META_PAGES);
            for e in (*a).pagemap.iter() {
                e.store(NEVER_USED.0.get(), Ordering::Relaxed);
            }
        }
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

    /// Whether free page `idx` may hold data and be resident (dirty) rather than purged or
    /// never touched. Caller holds [`PAGE_LOCK`].
    pub fn is_dirty(&self, idx: usize) -> bool {
        self.dirty.get(idx)
    }

    /// Take a run of `n` pages whose first page index is a multiple of `min_order`'s block.
    /// Returns the page index and whether any of it may be dirty.
    ///
    /// Prefers the smallest fitting order with a block offered (see `buddy::Buddy::take`) that
    /// starts on a dirty page (a run freed lately: its pages are resident, so reusing it costs
    /// no page faults and keeps the resident set from growing while free resident pages wait to
    /// be purged).
    pub fn alloc_run(&mut self, n: usize, min_order: Order) -> Option<(usize, bool)> {
        let dirty = &self.dirty;
        let idx = self.buddy.take(n, min_order, |head| dirty.get(head))?;
        Some((idx, self.take_dirty(idx, n)))
    }

    /// Where a run of `n` pages would go by best fit: its first page, a multiple of a
    /// granule (see `buddy::Buddy::best_fit`).
    pub fn best_fit(&self, n: usize) -> Option<usize> {
        self.buddy.best_fit(n).map(|(idx, _)| idx)
    }

    /// Take the run of `n` free pages at `idx` (a place [`Arena::best_fit`] found). Returns
    /// whether any of it may be dirty.
    pub fn alloc_run_at(&mut self, idx: usize, n: usize) -> bool {
        self.buddy.take_range(idx, n);
        self.take_dirty(idx, n)
    }

    /// Pages `idx..idx+n` leave the free pool: clear their dirty (and old and due) bits.
    /// Returns whether any was dirty.
    ///
    /// One pass over the words: `old` and `due` are subsets of `dirty`, so a word with no
    /// dirty page in the range has none of theirs either. (Three passes were 400 instructions
    /// for an average run of `large -m untouched`.)
    fn take_dirty(&mut self, idx: usize, n: usize) -> bool {
        let (mut was, mut due) = (0, 0);
        Bits::<WORDS>::for_masks(idx, n, |w, mask| {
            let d = self.dirty.word(w);
            if d & mask != 0 {
                was += bitmap::ones(d & mask);
                self.dirty.set_word(w, d & !mask);
                self.old.set_word(w, self.old.word(w) & !mask);
                let u = self.due.word(w);
                due += bitmap::ones(u & mask);
                self.due.set_word(w, u & !mask);
            }
        });
        if was != 0 {
            self.dirty_pages -= was as u32;
            if due != 0 {
                self.due_pages -= due as u32;
                DUE_PAGES.fetch_sub(due, Ordering::Relaxed);
            }
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

    /// Due pages in this arena.
    pub fn due_pages(&self) -> usize {
        self.due_pages as usize
    }

    /// Pages of this arena being purged.
    pub fn purging_pages(&self) -> usize {
        self.purging_pages as usize
    }

    /// Add `n` to the due pages of this arena and of all.
    fn note_due(&mut self, n: usize) {
        self.due_pages += n as u32;
        DUE_PAGES.fetch_add(n, Ordering::Relaxed);
    }

    /// The next purge epoch begins. If one ended (`ended`; false for the first), its old pages
    /// (dirty since before it began and not handed out during it) become due. Then every dirty
    /// page that is not due is old.
    pub fn next_epoch(&mut self, ended: bool) {
        let mut newly_due = 0;
        for w in 0..WORDS {
            let mut due = self.due.word(w);
            if ended {
                let old = self.old.word(w);
                newly_due += old.count_ones() as usize;
                due |= old;
                self.due.set_word(w, due);
            }
            self.old.set_word(w, self.dirty.word(w) & !due);
        }
        self.note_due(newly_due);
    }

    /// Make every dirty page due. Returns how many became due.
    pub fn schedule_all(&mut self) -> usize {
        let newly_due = (self.dirty_pages - self.due_pages) as usize;
        self.due = self.dirty;
        self.old = Bits::new();
        self.note_due(newly_due);
        newly_due
    }

    /// Mark up to `want` more dirty pages due, lowest first: old ones only if `only_old`, else
    /// any not due yet. Returns how many became due.
    pub fn schedule(&mut self, want: usize, only_old: bool) -> usize {
        let mut done = 0;
        for w in 0..WORDS {
            if done == want {
                break;
            }
            let mut pick = if only_old {
                self.old.word(w)
            } else {
                self.dirty.word(w) & !self.due.word(w)
            };
            if pick.count_ones() as usize > want - done {
                // Keep the lowest `want - done` of them.
                let mut keep = 0;
                for _ in 0..want - done {
                    keep |= pick & pick.wrapping_neg();
                    pick &= pick - 1;
                }
                pick = keep;
            }
            self.due.set_word(w, self.due.word(w) | pick);
            self.old.set_word(w, self.old.word(w) & !pick);
            done += pick.count_ones() as usize;
        }
        self.note_due(done);
        done
    }

    /// Take due pages out of the free pool to be purged, as maximal ranges, lowest first, while
    /// `batch` has room: each range leaves the buddy, loses its dirty and due bits, gains its
    /// purging bits, and is added to `batch`. No run handed out can overlap them until
    /// [`Arena::end_purge`] gives them back.
    pub fn collect_due(&mut self, batch: &mut PurgeBatch) {
        let mut from = 0;
        while self.due_pages != 0 && batch.has_room() {
            let Some((idx, n)) = self.due.next_run(from, batch.page_room()) else {
                break;
            };
            // Due pages are dirty, and dirty pages free: the whole range is in free blocks.
            self.buddy.take_range(idx, n);
            let dirty = self.dirty.clear(idx, n);
            let due = self.due.clear(idx, n);
            let purging = self.purging.set(idx, n);
            xa_check!(dirty == n && due == n && purging == 0);
            self.dirty_pages -= n as u32;
            self.due_pages -= n as u32;
            self.purging_pages += n as u32;
            DIRTY_PAGES.fetch_sub(n, Ordering::Relaxed);
            DUE_PAGES.fetch_sub(n, Ordering::Relaxed);
            PURGING_PAGES.fetch_add(n, Ordering::Relaxed);
            batch.push(self, idx, n);
            from = idx + n;
        }
    }

    /// Pages `idx..idx+n`, taken by [`Arena::collect_due`], go back to the free pool: clean if
    /// `zeroed` (the kernel dropped them, so they read as zero), else dirty.
    pub fn end_purge(&mut self, idx: usize, n: usize, zeroed: bool) {
        let was = self.purging.clear(idx, n);
        xa_check!(was == n);
        self.purging_pages -= n as u32;
        PURGING_PAGES.fetch_sub(n, Ordering::Relaxed);
        self.free_range(idx, n, !zeroed);
    }

    /// In a fork child: the pages threads of the parent were purging go back to the free pool,
    /// dirty. Those threads do not exist here to give them back, and the child's copy of the
    /// pages was taken before, or without, their `MADV_DONTNEED`.
    pub fn reclaim_purging(&mut self) {
        while let Some((idx, n)) = self.purging.next_run(0, ARENA_PAGES) {
            self.end_purge(idx, n, false);
        }
    }

    /// Verify every invariant documented on the type. Aborts on violation.
    pub fn check_invariants(&self) {
        let mut free = Bits::<WORDS>::new();
        self.buddy.check_invariants(|p| {
            free.set(p, 1);
        });
        // Purging pages are neither free nor header pages.
        xa_check!(self.purging.is_disjoint_from(&free));
        xa_check!(
            self.purging
                .next_run(0, META_PAGES)
                .is_none_or(|(p, _)| p >= META_PAGES)
        );
        // A group of header pages, or of pages each free or purging, maps to an unused span;
        // any other entry is a span header of this arena (a live run's) or unused.
        for (g, e) in self.pagemap.iter().enumerate() {
            let e = e.load(Ordering::Relaxed);
            xa_check!(!e.is_null());
            let first = g << MAP_SHIFT;
            let idle = first < META_PAGES
                || (first..first + RUN_ALIGN).all(|p| free.get(p) || self.purging.get(p));
            // SAFETY: page-map entries are valid span headers.
            let kind = unsafe { (*e).kind() };
            xa_check!(!idle || kind == Kind::Unused);
            if kind != Kind::Unused {
                // SAFETY: as above; a live run's span covers its first group.
                let start = unsafe { (*e).start() } as usize;
                xa_check!(start >= self.base() + META_PAGES * PAGE);
                xa_check!(start <= self.base() + first * PAGE);
            }
        }
        xa_check!(self.old.is_subset_of(&self.dirty));
        xa_check!(self.due.is_subset_of(&self.dirty));
        xa_check!(self.old.is_disjoint_from(&self.due));
        // Dirty pages are free pages.
        xa_check!(self.dirty.is_subset_of(&free));
        xa_check!(self.dirty.ones() == self.dirty_pages as usize);
        xa_check!(self.due.ones() == self.due_pages as usize);
        xa_check!(self.purging.ones() == self.purging_pages as usize);
    }
}

/// Most ranges in one [`PurgeBatch`].
pub const PURGE_RANGES: usize = 64;
/// Most pages in one [`PurgeBatch`] (2 MiB: a few tenths of a millisecond of `MADV_DONTNEED`
/// on resident pages, and what one round keeps out of the free pool).
pub const PURGE_PAGES: usize = 512;

/// One range of a [`PurgeBatch`] (16 bytes, so a batch takes 1 KiB of stack).
#[derive(Clone, Copy)]
struct PurgeRange {
    /// Its arena.
    arena: *mut Arena,
    /// Its first page index.
    idx: u16,
    /// Its page count.
    pages: u16,
    /// Whether `MADV_DONTNEED` dropped its pages.
    zeroed: bool,
}

const _: () = assert!(ARENA_PAGES <= 1 << 16 && PURGE_PAGES <= u16::MAX as usize);
const _: () = assert!(core::mem::size_of::<PurgeRange>() == 16);

/// One round of purging: up to [`PURGE_RANGES`] ranges holding up to [`PURGE_PAGES`] pages
/// in all, taken out of the free pool under [`PAGE_LOCK`] by [`Arena::collect_due`], purged by
/// [`PurgeBatch::decommit`] with no lock held, and given back by [`PurgeBatch::give_back`]
/// under the lock. It lives on the stack of the thread that purges.
///
/// Invariants: `ranges` holds ranges of purging pages (set bits in their arena's `purging`)
/// that this batch alone will give back, and `pages` is the sum of
/// their page counts.
pub struct PurgeBatch {
    /// The ranges (a batch is made for every run given back: its free slots are not cleared).
    ranges: StackVec<PurgeRange, PURGE_RANGES>,
    /// Pages in the ranges.
    pages: usize,
}

impl PurgeBatch {
    /// An empty batch.
    pub const fn new() -> Self {
        PurgeBatch {
            ranges: StackVec::new(),
            pages: 0,
        }
    }

    /// Whether the batch holds no range.
    pub fn is_empty(&self) -> bool {
        self.ranges.is_empty()
    }

    /// Pages in the batch.
    pub fn pages(&self) -> usize {
        self.pages
    }

    /// Whether another range fits.
    pub fn has_room(&self) -> bool {
        !self.ranges.is_full() && self.pages < PURGE_PAGES
    }

    /// Pages that still fit.
    fn page_room(&self) -> usize {
        PURGE_PAGES - self.pages
    }

    /// Add pages `idx..idx+n` of `arena`, just taken for purging.
    fn push(&mut self, arena: &mut Arena, idx: usize, n: usize) {
        xa_check!(self.has_room() && n <= self.page_room());
        self.ranges.push(PurgeRange {
            arena,
            idx: idx as u16,
            pages: n as u16,
            zeroed: false,
        });
        self.pages += n;
    }

    /// `MADV_DONTNEED` on every range, with no lock held (the pages are out of the free pool,
    /// so no other thread can be using them). Returns the pages the kernel dropped.
    pub fn decommit(&mut self) -> usize {
        let mut dropped = 0;
        for r in self.ranges.as_mut_slice() {
            // An arena's base is its header's address.
            let start = (r.arena as usize + ((r.idx as usize) << PAGE_SHIFT)) as *mut u8;
            r.zeroed = os::decommit(start, (r.pages as usize) << PAGE_SHIFT);
            if r.zeroed {
                dropped += r.pages as usize;
            }
        }
        dropped
    }

    /// Give every range back to the free pool (clean where [`PurgeBatch::decommit`] dropped
    /// it, dirty otherwise) and empty the batch. Caller holds [`PAGE_LOCK`].
    pub fn give_back(&mut self) {
        for r in self.ranges.as_mut_slice() {
            // SAFETY: arenas are never unmapped; PAGE_LOCK is held; the range is this batch's.
            unsafe { (*r.arena).end_purge(r.idx as usize, r.pages as usize, r.zeroed) };
        }
        self.ranges.clear();
        self.pages = 0;
    }
}

impl Default for PurgeBatch {
    fn default() -> Self {
        Self::new()
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

    /// Purge every due page of `a` in rounds, as `purge::run` does (with the lock dropped
    /// between taking the pages out and giving them back). Returns the pages purged.
    fn purge_due(a: &mut Arena) -> usize {
        let mut total = 0;
        loop {
            let mut b = PurgeBatch::new();
            a.collect_due(&mut b);
            if b.is_empty() {
                return total;
            }
            a.check_invariants();
            total += b.decommit();
            b.give_back();
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
        // No page is old before the first epoch.
        assert_eq!(a.schedule(2, true), 0);
        assert_eq!(a.schedule(2, false), 2);
        assert_eq!((a.due_pages, a.due.count(i1, 2)), (2, 2));
        a.check_invariants();
        assert_eq!(purge_due(a), 2);
        assert_eq!((a.dirty_pages, a.due_pages, a.purging_pages), (3, 0, 0));
        a.check_invariants();
        // The first epoch begins: the 3 dirty pages are old; when it ends they are due.
        a.next_epoch(false);
        assert_eq!((a.old.ones(), a.due_pages), (3, 0));
        a.next_epoch(true);
        assert_eq!((a.old.ones(), a.due_pages), (0, 3));
        a.check_invariants();
        assert_eq!(purge_due(a), 3);
        assert_eq!(a.dirty_pages, 0);
        a.check_invariants();
        assert_eq!(a.free_pages(), ARENA_PAGES - META_PAGES);
        // Every page is clean again: the whole arena comes out clean.
        let (_, dirty) = a.alloc_run(MAX_RUN_PAGES, MIN_RUN_ORDER).unwrap();
        assert!(!dirty);
    }

    #[test]
    fn a_round_is_bounded() {
        let t = TestArena(Arena::map());
        // SAFETY: private arena, single thread.
        let a = unsafe { &mut *t.0 };
        // 100 dirty ranges of 4 pages, 4 clean pages apart: more ranges than a round takes.
        let runs: Vec<usize> = (0..200)
            .map(|_| a.alloc_run(4, MIN_RUN_ORDER).unwrap().0)
            .collect();
        for (k, &i) in runs.iter().enumerate() {
            a.free_range(i, 4, k % 2 == 0);
        }
        assert_eq!(a.schedule_all(), 400);
        let mut b = PurgeBatch::new();
        a.collect_due(&mut b);
        assert_eq!((b.ranges.len(), b.pages), (PURGE_RANGES, 4 * PURGE_RANGES));
        assert_eq!(a.due_pages as usize, 400 - 4 * PURGE_RANGES);
        a.check_invariants();
        b.decommit();
        b.give_back();
        assert_eq!(purge_due(a), 400 - 4 * PURGE_RANGES);
        a.check_invariants();
        // One long dirty range: a round takes PURGE_PAGES of it.
        let (i, _) = a.alloc_run(MAX_RUN_PAGES, MIN_RUN_ORDER).unwrap();
        a.free_range(i, MAX_RUN_PAGES, true);
        a.schedule_all();
        a.collect_due(&mut b);
        assert_eq!((b.ranges.len(), b.pages), (1, PURGE_PAGES));
        b.decommit();
        b.give_back();
        assert_eq!(purge_due(a), MAX_RUN_PAGES - PURGE_PAGES);
        a.check_invariants();
    }

    #[test]
    fn a_fork_child_takes_back_the_pages_being_purged() {
        let t = TestArena(Arena::map());
        // SAFETY: private arena, single thread.
        let a = unsafe { &mut *t.0 };
        let (i, _) = a.alloc_run(64, MIN_RUN_ORDER).unwrap();
        a.free_range(i, 64, true);
        a.schedule(10, false);
        let mut b = PurgeBatch::new();
        a.collect_due(&mut b);
        assert_eq!((a.purging_pages, a.dirty_pages, b.pages), (10, 54, 10));
        assert_eq!(a.free_pages(), ARENA_PAGES - META_PAGES - 10);
        a.check_invariants();
        // The batch belongs to a thread that does not exist in the child: it is never given
        // back there.
        a.reclaim_purging();
        assert_eq!((a.purging_pages, a.dirty_pages), (0, 64));
        assert_eq!(a.free_pages(), ARENA_PAGES - META_PAGES);
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
        let base = a.base();
        let page = |i: usize| (base + (i << PAGE_SHIFT)) as *mut u64;
        let mut live: Vec<(usize, usize, u8)> = Vec::new();
        // A round taken out for purging and not given back yet, as by another thread.
        let mut batch = PurgeBatch::new();
        let mut s = 0x9e3779b97f4a7c15u64;
        let mut rng = || {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            s
        };
        for step in 0..3000 {
            let r = rng();
            match r % 10 {
                _ if live.is_empty() => {}
                0..=4 => {}
                5..=6 => {
                    let (idx, n, tag) = live.swap_remove((r as usize / 10) % live.len());
                    // SAFETY: the run is ours and mapped.
                    unsafe {
                        assert_eq!(*(page(idx) as *const u8), tag);
                        assert_eq!(*((page(idx + n - 1) as *const u8).add(7)), tag);
                    }
                    a.free_range(idx, n, true);
                    continue;
                }
                7 => {
                    match rng() % 4 {
                        0 => a.next_epoch(true),
                        1 => a.next_epoch(false),
                        2 => _ = a.schedule_all(),
                        _ => _ = a.schedule((rng() % 300) as usize, rng() % 2 == 0),
                    }
                    continue;
                }
                8 => {
                    if batch.is_empty() {
                        a.collect_due(&mut batch);
                        // What the pages held before the purge.
                        for r in batch.ranges.as_mut_slice() {
                            for i in r.idx as usize..(r.idx + r.pages) as usize {
                                // SAFETY: the page is mapped; nobody else uses it.
                                unsafe { *page(i) = 0xdead };
                            }
                        }
                    }
                    continue;
                }
                _ => {
                    batch.decommit();
                    batch.give_back();
                    continue;
                }
            }
            let n = 1 + (rng() % 64) as usize;
            if let Some((idx, dirty)) = a.alloc_run(n, MIN_RUN_ORDER) {
                for r in batch.ranges.as_mut_slice().iter() {
                    let (j, m) = (r.idx as usize, r.pages as usize);
                    assert!(
                        idx + n <= j || j + m <= idx,
                        "step {step}: run over purging pages"
                    );
                }
                if !dirty {
                    for i in idx..idx + n {
                        // SAFETY: the run is ours and mapped.
                        assert_eq!(unsafe { *page(i) }, 0, "step {step}: clean run not zero");
                    }
                }
                let tag = (step % 251) as u8;
                // SAFETY: the run is ours and mapped.
                unsafe {
                    *(page(idx) as *mut u8) = tag;
                    *((page(idx + n - 1) as *mut u8).add(7)) = tag;
                }
                live.push((idx, n, tag));
            }
            a.check_invariants();
        }
        batch.decommit();
        batch.give_back();
        for (idx, n, _) in live.drain(..) {
            a.free_range(idx, n, true);
        }
        a.schedule_all();
        purge_due(a);
        a.check_invariants();
        assert_eq!(
            (a.dirty_pages, a.free_pages()),
            (0, ARENA_PAGES - META_PAGES)
        );
    }
}

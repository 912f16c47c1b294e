//! L2: arenas, the page map and the binary buddy allocator over their pages.
//!
//! An arena is 64 MiB of address space reserved with one `mmap`, aligned to 64 MiB, so the
//! arena holding any address is `addr & !(ARENA_SIZE - 1)`. Its first [`META_PAGES`] pages hold
//! the [`Arena`] header itself: free lists, the per-page buddy state, the page map (page →
//! owning [`Span`]) and the span headers. The rest are handed out as runs of pages.
//!
//! Buddy arithmetic works on page indices relative to the arena base. A free block of order `o`
//! covers `2^o` pages starting at an index that is a multiple of `2^o`. Its buddy is
//! `idx ^ (1 << o)`; for example the order-2 block at page 8 (pages 8..12) has its buddy at
//! `8 ^ 4 = 12` (pages 12..16), and together they form the order-3 block at `8 & !4 = 8`.
//! A run of `n` pages takes a block of order `ceil(log2 n)` and gives the unused tail back as
//! smaller blocks, so a run wastes less than one page.
//!
//! A bitmap marks the free pages that may hold non-zero bytes and be resident (*dirty*): pages
//! of runs given back, until they are purged (`MADV_DONTNEED` on each maximal dirty range) or
//! handed out again. A run is known to read as zero iff none of its pages is dirty. All of this module's state is protected by [`PAGE_LOCK`].

use crate::os::{self, PAGE, PAGE_SHIFT};
use crate::slab::{Kind, Span};
use crate::sync::{Guard, RawLock};
use core::ptr;
use core::sync::atomic::{AtomicPtr, AtomicU64, AtomicUsize, Ordering};

/// log2 of the arena size.
pub const ARENA_SHIFT: usize = 26;
/// Bytes in one arena (64 MiB).
pub const ARENA_SIZE: usize = 1 << ARENA_SHIFT;
/// Pages in one arena.
pub const ARENA_PAGES: usize = ARENA_SIZE / PAGE;
/// Number of block orders: 0 (one page) to 14 (the whole arena).
pub const ORDERS: usize = 15;
/// Pages at the start of each arena reserved for its header (1 MiB).
pub const META_PAGES: usize = 256;
/// Every run starts on a multiple of this many pages (runs are at least 4 pages), so span
/// headers are kept one per `RUN_ALIGN` pages.
pub const RUN_ALIGN: usize = 4;
/// Largest run the buddy hands out: half an arena (32 MiB); larger blocks are mapped directly.
pub const MAX_RUN_PAGES: usize = ARENA_PAGES / 2;
/// Number of 64 MiB slots in the 47-bit user address space.
const REGISTRY_SLOTS: usize = 1 << (47 - ARENA_SHIFT);

const NIL: u32 = u32::MAX;

/// Free-list links of a free block head, stored outside the block so purged memory is never
/// touched.
#[derive(Clone, Copy)]
#[repr(C)]
struct Link {
    /// Previous free block of the same order, or NIL.
    prev: u32,
    /// Next free block of the same order, or NIL.
    next: u32,
}

/// The header at the start of every arena.
///
/// Invariants (checked by [`Arena::check_invariants`]):
/// - `order[i] == o + 1` iff page `i` heads a free block of order `o`; then `i % 2^o == 0`, the
///   block lies inside the arena past the header, and it is on `free_head[o]`'s list exactly once;
/// - free blocks never overlap, and no two free buddies of the same order exist (they merge);
/// - bit `o` of `nonempty` is set iff `free_head[o] != NIL`;
/// - `free_pages` is the sum of the free blocks' sizes;
/// - a page's bit in `dirty_bits` is set only if the page is free; `dirty_pages` counts the set
///   bits; `old_bits` is a subset of `dirty_bits` (pages dirty since before the current purge
///   epoch began);
/// - `pagemap[i]` is null or an unused span (the freed-run marker) for free and header pages;
///   a live slab maps every page of its run to its span, a live large run only its first page
///   (its other pages hold null or the marker).
#[repr(C)]
pub struct Arena {
    /// Head of the free list of each order, NIL if empty.
    free_head: [u32; ORDERS],
    /// Bit `o` set iff the free list of order `o` is non-empty.
    nonempty: u32,
    /// Pages in free blocks.
    free_pages: u32,
    /// Free pages marked dirty.
    dirty_pages: u32,
    /// Next arena in the global list.
    next: *mut Arena,
    /// For each page: the span of the run covering it, or null.
    pagemap: [AtomicPtr<Span>; ARENA_PAGES],
    /// For each page heading a free block: its order + 1; 0 otherwise.
    order: [u8; ARENA_PAGES],
    /// One bit per page: set iff the page is free and may be dirty.
    dirty_bits: [u64; ARENA_PAGES / 64],
    /// One bit per page: dirty when the current purge epoch began and not handed out since.
    old_bits: [u64; ARENA_PAGES / 64],
    /// Free-list links, valid for free block heads.
    link: [Link; ARENA_PAGES],
    /// Span headers, one per `RUN_ALIGN` pages, used for runs starting there.
    spans: [Span; ARENA_PAGES / RUN_ALIGN],
}

const _: () = assert!(core::mem::size_of::<Arena>() <= META_PAGES * PAGE);
const _: () = assert!(META_PAGES.is_power_of_two());

/// Arena of each 64 MiB slot of the address space, or null. Lives in `.bss`: untouched slots
/// cost no memory.
static REGISTRY: [AtomicPtr<Arena>; REGISTRY_SLOTS] =
    [const { AtomicPtr::new(ptr::null_mut()) }; REGISTRY_SLOTS];

/// Lock 3 in the lock order (see the crate docs): protects every arena's buddy state and the
/// arena list.
pub static PAGE_LOCK: RawLock = RawLock::new();
/// First arena; arenas are never unmapped.
static ARENAS: AtomicPtr<Arena> = AtomicPtr::new(ptr::null_mut());
/// Bytes of address space reserved by arenas.
pub static ARENA_BYTES: AtomicUsize = AtomicUsize::new(0);
/// Total dirty free pages across arenas (under PAGE_LOCK; atomic only for lock-free reads).
static DIRTY_PAGES: AtomicUsize = AtomicUsize::new(0);
/// Start (ms) of the current purge epoch; 0 before the first one.
static EPOCH_START: AtomicU64 = AtomicU64::new(0);
/// When pages were last given back (ms; 0 = never).
static LAST_FREED: AtomicU64 = AtomicU64::new(0);
/// Pages handed out as runs (under PAGE_LOCK; atomic for lock-free reads).
static IN_USE_PAGES: AtomicUsize = AtomicUsize::new(0);
/// The most pages ever handed out at once (under PAGE_LOCK).
static PEAK_IN_USE_PAGES: AtomicUsize = AtomicUsize::new(0);

/// The registered arena holding `addr`, or null: a shift, a bounds test, a load.
#[inline(always)]
fn arena_of(addr: usize) -> *mut Arena {
    let mut slot = addr;
    // The shift is opaque to the optimiser on purpose: seeing `(addr >> 26) < 2^21` it tests
    // `addr >> 47` and then shifts again, an instruction more on every `free`.
    // SAFETY: a register shift; no memory, no stack, no flags anyone reads.
    unsafe {
        core::arch::asm!("shr {0}, {s}", inout(reg) slot, s = const ARENA_SHIFT,
                         options(pure, nomem, nostack));
    }
    if slot >= REGISTRY_SLOTS {
        return ptr::null_mut();
    }
    // SAFETY: slot < REGISTRY_SLOTS.
    unsafe { REGISTRY.get_unchecked(slot) }.load(Ordering::Relaxed)
}

/// Find the span owning `addr`, or null if `addr` is not inside a run of one of our arenas.
/// About 8 instructions: a shift, a bounds test, two dependent loads.
#[inline(always)]
pub fn span_of(addr: usize) -> *mut Span {
    let arena = arena_of(addr);
    if arena.is_null() {
        return ptr::null_mut();
    }
    let page = (addr >> PAGE_SHIFT) & (ARENA_PAGES - 1);
    // SAFETY: a registered arena is mapped for the life of the process and page < ARENA_PAGES.
    unsafe { (*arena).pagemap.get_unchecked(page).load(Ordering::Relaxed) }
}

/// Whether `addr` lies in a page of a live large run other than its first (such pages are not
/// in the page map, which may still hold the freed-run marker there from an earlier run).
/// Scans the page map backwards for the run's head: for error reports only.
pub fn inside_live_large(addr: usize) -> bool {
    let arena = arena_of(addr);
    if arena.is_null() {
        return false;
    }
    let page = (addr >> PAGE_SHIFT) & (ARENA_PAGES - 1);
    let lowest = page.saturating_sub(MAX_RUN_PAGES).max(META_PAGES);
    for i in (lowest..page).rev() {
        // SAFETY: a registered arena is mapped for the life of the process.
        let s = unsafe { (*arena).pagemap[i].load(Ordering::Relaxed) };
        if s.is_null() {
            continue;
        }
        // SAFETY: page-map entries point at valid span headers.
        let span = unsafe { &*s };
        match span.kind {
            Kind::Large => return (span.idx as usize + span.pages as usize) > page,
            // runs do not overlap: a live slab before `page` that does not cover it means no
            // live run covering `page` starts before it
            Kind::Slab => return false,
            Kind::Unused => {}
        }
    }
    false
}

/// Set (`Some(true)`), clear (`Some(false)`) or just count (`None`) bits `idx..idx+n` of a
/// page bitmap; returns how many were set before.
fn bit_range(bits: &mut [u64; ARENA_PAGES / 64], idx: usize, n: usize, set: Option<bool>) -> usize {
    let (mut i, end, mut was) = (idx, idx + n, 0);
    while i < end {
        let (w, b) = (i / 64, i % 64);
        let k = (64 - b).min(end - i);
        let mask = if k == 64 {
            u64::MAX
        } else {
            ((1u64 << k) - 1) << b
        };
        was += (bits[w] & mask).count_ones() as usize;
        match set {
            Some(true) => bits[w] |= mask,
            Some(false) => bits[w] &= !mask,
            None => {}
        }
        i += k;
    }
    was
}

/// Smallest order whose block holds `pages` pages.
#[inline]
pub fn order_for(pages: usize) -> usize {
    pages.next_power_of_two().trailing_zeros() as usize
}

impl Arena {
    /// Map and initialise a new arena; null if the system is out of address space.
    fn create() -> *mut Arena {
        let base = os::map_aligned(ARENA_SIZE, ARENA_SIZE);
        if base.is_null() {
            return ptr::null_mut();
        }
        let a = base as *mut Arena;
        // SAFETY: the fresh mapping is zeroed, writable, and large enough for the header; zero
        // is a valid bit pattern for every field except the free heads, which we set here.
        unsafe {
            (*a).free_head = [NIL; ORDERS];
            (*a).free_range(META_PAGES, ARENA_PAGES - META_PAGES, false);
        }
        a
    }

    /// Base address of this arena.
    #[inline]
    pub fn base(&self) -> usize {
        self as *const Arena as usize
    }

    /// The span header for a run starting at page `idx`.
    #[inline]
    pub fn span_at(&mut self, idx: usize) -> *mut Span {
        xa_check!(idx % RUN_ALIGN == 0);
        &mut self.spans[idx / RUN_ALIGN]
    }

    /// Point pages `idx..idx+n` of the page map at `span` (or null).
    pub fn map_pages(&self, idx: usize, n: usize, span: *mut Span) {
        for e in &self.pagemap[idx..idx + n] {
            e.store(span, Ordering::Relaxed);
        }
    }

    fn list_push(&mut self, idx: usize, o: usize) {
        let head = self.free_head[o];
        self.link[idx] = Link {
            prev: NIL,
            next: head,
        };
        if head != NIL {
            self.link[head as usize].prev = idx as u32;
        }
        self.free_head[o] = idx as u32;
        self.nonempty |= 1 << o;
        self.order[idx] = o as u8 + 1;
        self.free_pages += 1 << o;
    }

    /// Unlink free block `idx` of order `o`.
    fn list_remove(&mut self, idx: usize, o: usize) {
        let Link { prev, next } = self.link[idx];
        if prev == NIL {
            self.free_head[o] = next;
        } else {
            self.link[prev as usize].next = next;
        }
        if next != NIL {
            self.link[next as usize].prev = prev;
        }
        if self.free_head[o] == NIL {
            self.nonempty &= !(1 << o);
        }
        self.order[idx] = 0;
        self.free_pages -= 1 << o;
    }

    /// Free the block at `idx` of order `o`, merging with free buddies.
    fn free_block(&mut self, mut idx: usize, mut o: usize) {
        while o + 1 < ORDERS {
            let buddy = idx ^ (1 << o);
            if self.order[buddy] as usize != o + 1 {
                break;
            }
            self.list_remove(buddy, o);
            idx &= !(1 << o);
            o += 1;
        }
        self.list_push(idx, o);
    }

    /// Set (`Some(true)`), clear (`Some(false)`) or just count (`None`) the dirty bits of pages
    /// `idx..idx+n`; returns how many were set before.
    fn dirty_range(&mut self, idx: usize, n: usize, set: Option<bool>) -> usize {
        bit_range(&mut self.dirty_bits, idx, n, set)
    }

    /// Pages `idx..idx+n` leave the free pool: clear their dirty (and old) bits. Returns
    /// whether any was dirty.
    fn take_dirty(&mut self, idx: usize, n: usize) -> bool {
        let was = self.dirty_range(idx, n, Some(false));
        if was != 0 {
            bit_range(&mut self.old_bits, idx, n, Some(false));
            self.dirty_pages -= was as u32;
            DIRTY_PAGES.fetch_sub(was, Ordering::Relaxed);
        }
        was != 0
    }

    /// Free pages `idx..idx+n` (any alignment) as maximal aligned blocks, marking them dirty if
    /// they may hold data.
    fn free_range(&mut self, mut idx: usize, n: usize, dirty: bool) {
        if dirty {
            let was = self.dirty_range(idx, n, Some(true));
            self.dirty_pages += (n - was) as u32;
            DIRTY_PAGES.fetch_add(n - was, Ordering::Relaxed);
        }
        let end = idx + n;
        while idx < end {
            let align = if idx == 0 {
                ORDERS - 1
            } else {
                idx.trailing_zeros() as usize
            };
            let fit = (usize::BITS - 1 - (end - idx).leading_zeros()) as usize;
            let o = align.min(fit).min(ORDERS - 1);
            self.free_block(idx, o);
            idx += 1 << o;
        }
    }

    /// Take a run of `n` pages whose first page index is a multiple of `2^min_order`.
    /// Returns the page index and whether any of it may be dirty.
    fn alloc_run(&mut self, n: usize, min_order: usize) -> Option<(usize, bool)> {
        let want = order_for(n).max(min_order);
        let avail = self.nonempty & !((1u32 << want) - 1);
        if avail == 0 {
            return None;
        }
        // Prefer the smallest fitting order whose first block starts on a dirty page (a run
        // freed lately: its pages are resident, so reusing it costs no page faults and keeps
        // the resident set from growing while free resident pages wait to be purged), else
        // the smallest fitting order.
        let mut o = avail.trailing_zeros() as usize;
        let mut rest = avail;
        while rest != 0 {
            let k = rest.trailing_zeros() as usize;
            let head = self.free_head[k] as usize;
            if self.dirty_bits[head / 64] & (1 << (head % 64)) != 0 {
                o = k;
                break;
            }
            rest &= rest - 1;
        }
        let idx = self.free_head[o] as usize;
        self.list_remove(idx, o);
        while o > want {
            o -= 1;
            self.list_push(idx + (1 << o), o);
        }
        let block = 1usize << want;
        if block > n {
            // The tail keeps its own dirty bits.
            self.free_range(idx + n, block - n, false);
        }
        Some((idx, self.take_dirty(idx, n)))
    }

    /// Grow the run of `pages` pages at `idx` to `new_pages` in place, if the pages right after
    /// it are free. The free blocks there necessarily start exactly where the run (or the
    /// previous block) ends, since a block starting earlier would overlap the run.
    fn extend_run(&mut self, idx: usize, pages: usize, new_pages: usize) -> bool {
        let end = idx + new_pages;
        if end > ARENA_PAGES {
            return false;
        }
        let mut j = idx + pages;
        while j < end {
            let o = self.order[j] as usize;
            if o == 0 {
                return false;
            }
            j += 1 << (o - 1);
        }
        let mut j = idx + pages;
        while j < end {
            let o = self.order[j] as usize - 1;
            self.list_remove(j, o);
            let block_end = j + (1 << o);
            if block_end > end {
                self.free_range(end, block_end - end, false);
            }
            j = block_end;
        }
        self.take_dirty(idx + pages, new_pages - pages);
        true
    }

    /// Purge up to `limit` dirty pages (all of them for `usize::MAX`), only old ones (dirty
    /// since before the epoch began) if `only_old`: `MADV_DONTNEED` on maximal ranges of such
    /// pages (all of which are free), then clear their bits. Returns pages purged.
    fn purge(&mut self, limit: usize, only_old: bool) -> usize {
        let word = |a: &Arena, w: usize| {
            if only_old {
                a.dirty_bits[w] & a.old_bits[w]
            } else {
                a.dirty_bits[w]
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
            self.dirty_range(start, i - start, Some(false));
            bit_range(&mut self.old_bits, start, i - start, Some(false));
            purged += i - start;
        }
        self.dirty_pages -= purged as u32;
        DIRTY_PAGES.fetch_sub(purged, Ordering::Relaxed);
        purged
    }

    /// Verify every invariant documented on the type. Aborts on violation.
    pub fn check_invariants(&self) {
        let mut covered = [0u64; ARENA_PAGES / 64];
        let mut free = 0u32;
        for o in 0..ORDERS {
            xa_check!(((self.nonempty >> o) & 1 == 1) == (self.free_head[o] != NIL));
            let mut prev = NIL;
            let mut i = self.free_head[o];
            while i != NIL {
                let idx = i as usize;
                xa_check!(self.order[idx] as usize == o + 1);
                xa_check!(idx % (1 << o) == 0);
                xa_check!(idx >= META_PAGES && idx + (1 << o) <= ARENA_PAGES);
                xa_check!(self.link[idx].prev == prev);
                for p in idx..idx + (1 << o) {
                    xa_check!(covered[p / 64] & (1 << (p % 64)) == 0);
                    covered[p / 64] |= 1 << (p % 64);
                    let e = self.pagemap[p].load(Ordering::Relaxed);
                    // SAFETY: page-map entries are null or valid span headers.
                    xa_check!(e.is_null() || unsafe { (*e).kind } == crate::slab::Kind::Unused);
                }
                if o + 1 < ORDERS {
                    xa_check!(self.order[idx ^ (1 << o)] as usize != o + 1);
                }
                free += 1 << o;
                prev = i;
                i = self.link[idx].next;
            }
        }
        for (p, &ord) in self.order.iter().enumerate() {
            if ord != 0 {
                xa_check!(covered[p / 64] & (1 << (p % 64)) != 0);
            }
        }
        xa_check!(free == self.free_pages);
        let mut dirty = 0u32;
        for (w, &bits) in self.old_bits.iter().enumerate() {
            xa_check!(bits & !self.dirty_bits[w] == 0);
        }
        for (w, &bits) in self.dirty_bits.iter().enumerate() {
            // Dirty pages are free pages.
            xa_check!(bits & !covered[w] == 0);
            dirty += bits.count_ones();
        }
        xa_check!(dirty == self.dirty_pages);
    }
}

/// A run handed out by [`alloc_pages`].
pub struct Run {
    /// The arena holding the run.
    pub arena: *mut Arena,
    /// Index of its first page.
    pub idx: usize,
    /// Whether its pages are known to read as zero.
    pub zeroed: bool,
}

impl Run {
    /// Address of the run's first byte.
    pub fn addr(&self) -> usize {
        // SAFETY: arena is a live arena.
        unsafe { (*self.arena).base() + (self.idx << PAGE_SHIFT) }
    }
}

/// Allocate `n` pages (`1 <= n <= MAX_RUN_PAGES`), starting on a multiple of `2^min_order`
/// pages (`min_order >= 2`). Takes [`PAGE_LOCK`]. Returns `None` when out of memory.
pub fn alloc_pages(n: usize, min_order: usize) -> Option<Run> {
    xa_assert!((1..=MAX_RUN_PAGES).contains(&n) && min_order >= 2);
    let _g = Guard::new(&PAGE_LOCK);
    let mut a = ARENAS.load(Ordering::Relaxed);
    let mut last: *mut Arena = ptr::null_mut();
    while !a.is_null() {
        // SAFETY: arenas in the list are live; PAGE_LOCK is held.
        let ar = unsafe { &mut *a };
        if let Some((idx, dirty)) = ar.alloc_run(n, min_order) {
            note_in_use(n);
            return Some(Run {
                arena: a,
                idx,
                zeroed: !dirty,
            });
        }
        last = a;
        a = ar.next;
    }
    let new = Arena::create();
    if new.is_null() {
        return None;
    }
    // SAFETY: new is a fresh arena; PAGE_LOCK is held.
    let ar = unsafe { &mut *new };
    REGISTRY[new as usize >> ARENA_SHIFT].store(new, Ordering::Release);
    ARENA_BYTES.fetch_add(ARENA_SIZE, Ordering::Relaxed);
    if last.is_null() {
        ARENAS.store(new, Ordering::Release);
    } else {
        // SAFETY: last is a live arena, PAGE_LOCK held.
        unsafe { (*last).next = new };
    }
    let (idx, dirty) = ar.alloc_run(n, min_order)?;
    note_in_use(n);
    Some(Run {
        arena: new,
        idx,
        zeroed: !dirty,
    })
}

/// Return `n` pages at `idx` of `arena` to the buddy as dirty, then purge if the dirty total
/// passed the cap or has waited longer than the purge delay. Takes [`PAGE_LOCK`].
///
/// # Safety
/// The pages must be a run (or the tail of one) handed out by [`alloc_pages`] that nobody uses
/// any more, with their page-map entries already cleared.
pub unsafe fn free_pages(arena: *mut Arena, idx: usize, n: usize) {
    let _g = Guard::new(&PAGE_LOCK);
    let now = os::now_ms().max(1);
    purge_if_idle_locked(now);
    // SAFETY: the caller guarantees arena is live and the range is ours to free.
    unsafe { (*arena).free_range(idx, n, true) };
    IN_USE_PAGES.fetch_sub(n, Ordering::Relaxed);
    LAST_FREED.store(now, Ordering::Relaxed);
    maybe_purge_locked(now);
}

/// Count `n` more pages as handed out (under PAGE_LOCK).
fn note_in_use(n: usize) {
    let now = IN_USE_PAGES.fetch_add(n, Ordering::Relaxed) + n;
    if now > PEAK_IN_USE_PAGES.load(Ordering::Relaxed) {
        PEAK_IN_USE_PAGES.store(now, Ordering::Relaxed);
    }
}

/// Grow the run of `pages` pages at `idx` of `arena` to `new_pages` pages in place if the
/// following pages are free. Takes [`PAGE_LOCK`].
///
/// # Safety
/// `arena` is live and the run is a live run of the caller's.
pub unsafe fn extend_pages(arena: *mut Arena, idx: usize, pages: usize, new_pages: usize) -> bool {
    let _g = Guard::new(&PAGE_LOCK);
    // SAFETY: the caller guarantees the arena is live; PAGE_LOCK is held.
    let grown = unsafe { (*arena).extend_run(idx, pages, new_pages) };
    if grown {
        note_in_use(new_pages - pages);
    }
    grown
}

/// The purge policy, run whenever pages are given back and from [`tick`]. Caller holds
/// [`PAGE_LOCK`]; `now` is the time in ms.
///
/// - Decay: time is cut into epochs of `XALLOC_PURGE_DELAY_MS`. When an epoch ends, the pages
///   that were free and resident when it began and were not handed out during it (`old_bits`)
///   are purged; pages a busy program keeps freeing and reusing are left alone, so it does not
///   fault them in again (jemalloc's decay and tcmalloc's release rate follow the same idea
///   with other curves).
/// - Cap: when dirty pages exceed `max(XALLOC_DIRTY_CAP, 2 * peak pages in use)`, they are
///   purged down to half of that at once, old pages first. (Tighter caps made programs that
///   cycle large blocks fault the same pages in again and again: with 32 live blocks of
///   64 KiB-16 MiB, free runs are scattered enough that the dirty total passes the peak in use.)
fn maybe_purge_locked(now: u64) {
    let dirty = DIRTY_PAGES.load(Ordering::Relaxed);
    let cfg = crate::config::get();
    let cap = (cfg.dirty_cap / PAGE).max(2 * PEAK_IN_USE_PAGES.load(Ordering::Relaxed));
    if dirty > cap {
        let want = dirty - cap / 2;
        let done = purge_locked(want, true);
        if done < want {
            purge_locked(want - done, false);
        }
    }
    let start = EPOCH_START.load(Ordering::Relaxed);
    if start == 0 || now.saturating_sub(start) >= cfg.purge_delay_ms {
        if start != 0 {
            purge_locked(usize::MAX, true);
        }
        // The next epoch's old pages: every page dirty now.
        let mut a = ARENAS.load(Ordering::Relaxed);
        while !a.is_null() {
            // SAFETY: arenas in the list are live; PAGE_LOCK is held.
            let ar = unsafe { &mut *a };
            ar.old_bits = ar.dirty_bits;
            a = ar.next;
        }
        EPOCH_START.store(now, Ordering::Relaxed);
    }
}

/// Idle rule, checked before new pages are given back: when none were given back for a whole
/// epoch, every dirty page has waited at least that long, and all are purged. Caller holds
/// [`PAGE_LOCK`].
fn purge_if_idle_locked(now: u64) {
    let last = LAST_FREED.load(Ordering::Relaxed);
    if last != 0
        && DIRTY_PAGES.load(Ordering::Relaxed) != 0
        && now.saturating_sub(last) >= crate::config::get().purge_delay_ms
    {
        purge_locked(usize::MAX, false);
    }
}

/// Check the purge clock from a slow path that does not otherwise touch the buddy.
pub fn tick() {
    if DIRTY_PAGES.load(Ordering::Relaxed) == 0 {
        return;
    }
    let now = os::now_ms().max(1);
    let delay = crate::config::get().purge_delay_ms;
    let since_epoch = now.saturating_sub(EPOCH_START.load(Ordering::Relaxed));
    let since_free = now.saturating_sub(LAST_FREED.load(Ordering::Relaxed));
    if since_epoch >= delay || since_free >= delay {
        let _g = Guard::new(&PAGE_LOCK);
        purge_if_idle_locked(now);
        maybe_purge_locked(now);
    }
}

/// Purge up to `limit` dirty pages (only old ones if `only_old`), arena by arena. Caller holds
/// [`PAGE_LOCK`].
fn purge_locked(limit: usize, only_old: bool) -> usize {
    let mut total = 0;
    let mut a = ARENAS.load(Ordering::Relaxed);
    while !a.is_null() && total < limit {
        // SAFETY: arenas in the list are live; PAGE_LOCK is held.
        let ar = unsafe { &mut *a };
        if ar.dirty_pages != 0 {
            total += ar.purge(limit - total, only_old);
        }
        a = ar.next;
    }
    total
}

/// Purge every dirty free page now (`malloc_trim`). Returns bytes released.
pub fn purge_all() -> usize {
    let _g = Guard::new(&PAGE_LOCK);
    purge_locked(usize::MAX, false) * PAGE
}

/// Totals for statistics: (free bytes in arenas, dirty free bytes).
pub fn totals() -> (usize, usize) {
    let _g = Guard::new(&PAGE_LOCK);
    let (mut free, mut dirty) = (0, 0);
    let mut a = ARENAS.load(Ordering::Relaxed);
    while !a.is_null() {
        // SAFETY: arenas in the list are live; PAGE_LOCK is held.
        let ar = unsafe { &*a };
        free += ar.free_pages as usize * PAGE;
        dirty += ar.dirty_pages as usize * PAGE;
        a = ar.next;
    }
    (free, dirty)
}

/// Sum `f` over the span header of every run in every arena. Reads owner-only fields without
/// synchronisation: the result is a racy snapshot, which is what statistics need.
pub fn sum_spans(f: impl Fn(&Span) -> usize) -> usize {
    let mut total = 0;
    let mut a = ARENAS.load(Ordering::Acquire);
    while !a.is_null() {
        // SAFETY: arenas are never unmapped; span headers are plain data, and a torn read of a
        // counter only skews a statistic.
        let ar = unsafe { &*a };
        for s in ar.spans.iter() {
            total += f(s);
        }
        a = ar.next;
    }
    total
}

/// Check the invariants of every arena (tests and debug tooling).
pub fn check_all() {
    let _g = Guard::new(&PAGE_LOCK);
    let (mut arenas, mut free, mut dirty) = (0, 0, 0);
    let mut a = ARENAS.load(Ordering::Relaxed);
    while !a.is_null() {
        // SAFETY: arenas in the list are live; PAGE_LOCK is held.
        let ar = unsafe { &*a };
        ar.check_invariants();
        arenas += 1;
        free += ar.free_pages as usize;
        dirty += ar.dirty_pages as usize;
        a = ar.next;
    }
    // the global counters agree with the arenas
    xa_check!(DIRTY_PAGES.load(Ordering::Relaxed) == dirty);
    xa_check!(IN_USE_PAGES.load(Ordering::Relaxed) + free == arenas * (ARENA_PAGES - META_PAGES));
    xa_check!(IN_USE_PAGES.load(Ordering::Relaxed) <= PEAK_IN_USE_PAGES.load(Ordering::Relaxed));
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A private arena, not registered globally, for model tests.
    struct TestArena(*mut Arena);
    impl Drop for TestArena {
        fn drop(&mut self) {
            os::unmap(self.0 as *mut u8, ARENA_SIZE);
        }
    }

    fn rng(state: &mut u64) -> u64 {
        *state ^= *state << 13;
        *state ^= *state >> 7;
        *state ^= *state << 17;
        *state
    }

    #[test]
    fn order_arithmetic() {
        assert_eq!(order_for(1), 0);
        assert_eq!(order_for(4), 2);
        assert_eq!(order_for(5), 3);
        assert_eq!(order_for(MAX_RUN_PAGES), 13);
    }

    #[test]
    fn fresh_arena_is_all_free_and_merges_back() {
        let t = TestArena(Arena::create());
        // SAFETY: private arena, single thread.
        let a = unsafe { &mut *t.0 };
        a.check_invariants();
        assert_eq!(a.free_pages as usize, ARENA_PAGES - META_PAGES);
        let (i1, _) = a.alloc_run(5, 2).unwrap();
        let (i2, _) = a.alloc_run(MAX_RUN_PAGES, 2).unwrap();
        a.check_invariants();
        assert_eq!(i1 % 8, 0);
        assert_eq!(i2 % MAX_RUN_PAGES, 0);
        a.free_range(i1, 5, true);
        a.free_range(i2, MAX_RUN_PAGES, false);
        a.check_invariants();
        assert_eq!(a.free_pages as usize, ARENA_PAGES - META_PAGES);
        // Everything merged back: the upper half is one order-13 block again.
        assert!(a.nonempty & (1 << 13) != 0);
        // Only the 5 pages freed dirty count, though their merged block is larger.
        assert_eq!(a.dirty_pages, 5);
        assert_eq!(a.dirty_range(i1, 5, None), 5);
        assert_eq!(a.dirty_range(i1 + 5, 3, None), 0);
        assert_eq!(a.purge(2, true), 0);
        assert_eq!(a.purge(2, false), 2);
        assert_eq!(a.dirty_pages, 3);
        a.check_invariants();
        a.old_bits = a.dirty_bits;
        assert_eq!(a.purge(usize::MAX, true), 3);
        assert_eq!(a.dirty_pages, 0);
    }

    #[test]
    fn only_runs_over_dirty_pages_are_dirty() {
        let t = TestArena(Arena::create());
        // SAFETY: private arena, single thread.
        let a = unsafe { &mut *t.0 };
        let mut runs = Vec::new();
        while let Some((i, dirty)) = a.alloc_run(4, 2) {
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
        while let Some((i, dirty)) = a.alloc_run(4, 2) {
            let k = runs.iter().position(|&r| r == i).unwrap();
            assert_eq!(dirty, k % 2 == 0, "run {i}");
            dirty_runs += dirty as usize;
        }
        assert_eq!(dirty_runs, runs.len().div_ceil(2));
        assert_eq!(a.dirty_pages, 0);
        a.check_invariants();
    }

    #[test]
    fn runs_grow_in_place_into_free_pages() {
        let t = TestArena(Arena::create());
        // SAFETY: private arena, single thread.
        let a = unsafe { &mut *t.0 };
        let (i, _) = a.alloc_run(9, 2).unwrap();
        assert!(a.extend_run(i, 9, 40));
        a.check_invariants();
        assert_eq!(a.free_pages as usize, ARENA_PAGES - META_PAGES - 40);
        // A neighbour blocks further growth.
        let (j, _) = a.alloc_run(64, 6).unwrap();
        if j == i + 64 {
            assert!(!a.extend_run(i, 40, 65));
        }
        a.free_range(i, 40, true);
        a.free_range(j, 64, true);
        a.check_invariants();
        assert_eq!(a.free_pages as usize, ARENA_PAGES - META_PAGES);
    }

    #[test]
    fn random_runs_against_a_model() {
        let t = TestArena(Arena::create());
        // SAFETY: private arena, single thread.
        let a = unsafe { &mut *t.0 };
        let mut live: Vec<(usize, usize, u8)> = Vec::new();
        let mut s = 0x9e3779b97f4a7c15u64;
        for step in 0..4000 {
            let r = rng(&mut s);
            if live.is_empty() || r % 3 != 0 {
                let n = match r % 10 {
                    0 => 1 + (rng(&mut s) % 4096) as usize,
                    1..=4 => 1 + (rng(&mut s) % 64) as usize,
                    _ => 4 + (rng(&mut s) % 12) as usize,
                };
                let min_order = 2 + (rng(&mut s) % 3) as usize;
                if let Some((idx, _)) = a.alloc_run(n, min_order) {
                    assert_eq!(idx % (1 << min_order), 0);
                    assert!(idx >= META_PAGES && idx + n <= ARENA_PAGES);
                    for &(j, m, _) in &live {
                        assert!(idx + n <= j || j + m <= idx, "overlap at step {step}");
                    }
                    // Contents survive: stamp the first and last page.
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
                let k = (r as usize / 3) % live.len();
                let (idx, n, tag) = live.swap_remove(k);
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
                a.old_bits = a.dirty_bits;
            }
            a.check_invariants();
            let used: usize = live.iter().map(|l| l.1).sum();
            assert_eq!(a.free_pages as usize + used, ARENA_PAGES - META_PAGES);
        }
        for (idx, n, _) in live.drain(..) {
            a.free_range(idx, n, true);
        }
        a.check_invariants();
        assert_eq!(a.free_pages as usize, ARENA_PAGES - META_PAGES);
    }
}

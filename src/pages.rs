//! L7: the page allocator — runs of pages from the arenas, for slabs and medium blocks. Every
//! function takes [`PAGE_LOCK`] for its whole work, except that [`free_runs`] purges (see
//! `purge`) after dropping it. Heaps keep runs they free in a `run_cache` first, so most
//! refills and medium blocks of a busy thread never come here.

use crate::arena::{
    self, ARENA_PAGES, Arena, IN_USE_PAGES, MAX_RUN_PAGES, META_PAGES, MIN_RUN_ORDER, PAGE_LOCK,
    PEAK_IN_USE_PAGES, PurgeBatch,
};
use crate::buddy::{GRANULE_ORDER, Order};
use crate::os::{PAGE, PAGE_SHIFT};
use crate::pagemap;
use crate::purge;
use crate::span::Span;
use crate::sync::Guard;
use core::sync::atomic::{AtomicUsize, Ordering};

/// The most pages a request asked for that no existing arena could serve (so a new arena was
/// mapped for it); 0 if none. For the heap map's fragmentation figures.
pub static LARGEST_MISS_PAGES: AtomicUsize = AtomicUsize::new(0);

/// A run handed out by [`alloc_run`].
pub struct Run {
    /// Its first byte.
    pub start: *mut u8,
    /// The span header reserved for it (unused until the caller initialises it).
    pub span: *mut Span,
    /// Whether its pages are known to read as zero.
    pub zeroed: bool,
}

/// Allocate `n` pages (`1 <= n <= MAX_RUN_PAGES`), starting on a multiple of `min_order`'s
/// block (at least [`MIN_RUN_ORDER`]). Returns `None` when out of memory.
pub fn alloc_run(n: usize, min_order: Order) -> Option<Run> {
    let mut out = [const { None }; 1];
    alloc_runs(n, min_order, &mut out);
    out[0].take()
}

/// Fill `out` with runs as [`alloc_run`] makes them, under one acquisition of [`PAGE_LOCK`]
/// (a run cache's batched refill), stopping at the first failure. Returns how many it made.
pub fn alloc_runs(n: usize, min_order: Order, out: &mut [Option<Run>]) -> usize {
    xa_assert!((1..=MAX_RUN_PAGES).contains(&n) && min_order >= MIN_RUN_ORDER);
    let _g = Guard::new(&PAGE_LOCK);
    for (i, slot) in out.iter_mut().enumerate() {
        *slot = alloc_run_locked(n, min_order);
        if slot.is_none() {
            return i;
        }
    }
    out.len()
}

/// Runs of at least this many pages (256 KiB) are placed by best fit
/// (`buddy::Buddy::best_fit`) in the first arena that has room for them; smaller ones by the
/// buddy's power-of-two blocks (`arena::Arena::alloc_run`), which is cheaper and prefers pages
/// freed lately. Arenas are tried in list order for both, so the later ones stay empty and
/// their pages age and are purged.
///
/// Measured with `large -m touched` (32 live blocks of 64 KiB-16 MiB): peak RSS 283 MiB with
/// every run placed by the buddy (320 MiB of arenas for 176 MiB in use at peak), 222-223 MiB
/// with best fit from 16, 64 or 256 pages on. The `-m untouched` variant, all bookkeeping and
/// almost no page touched, is the cost: medians of 5 interleaved runs 0.65 s with the buddy,
/// 0.84 s from 64 pages, 0.74 s from 256; but from 256 pages `migrate -t 4` (blocks to 2 MiB)
/// peaked at 25.4 MiB against 22.4 from 64 and 21.8 with the buddy (7 runs). Comparing the
/// best stretch of every arena instead of taking the first arena's cost more (1.22-1.34 s
/// for the untouched variant) and left more resident (219 MiB against 181).
pub const FIT_PAGES: usize = 64;

/// [`alloc_run`] with [`PAGE_LOCK`] held.
fn alloc_run_locked(n: usize, min_order: Order) -> Option<Run> {
    // Best-fit stretches start on a granule, which meets any `min_order` up to its order.
    let fit = n >= FIT_PAGES && min_order.get() <= GRANULE_ORDER;
    let place = |a: &mut Arena| {
        if fit {
            a.best_fit(n).map(|idx| (idx, a.alloc_run_at(idx, n)))
        } else {
            a.alloc_run(n, min_order)
        }
    };
    let mut found = None;
    arena::for_each_arena(|a| {
        if found.is_none() {
            found = place(a).map(|(idx, dirty)| (a as *mut Arena, idx, dirty));
        }
    });
    if found.is_none() {
        if arena::ARENA_BYTES.load(Ordering::Relaxed) != 0 {
            LARGEST_MISS_PAGES.fetch_max(n, Ordering::Relaxed);
        }
        let a = Arena::create();
        if a.is_null() {
            return None;
        }
        pagemap::register(a);
        // SAFETY: a fresh arena; PAGE_LOCK is held.
        found = place(unsafe { &mut *a }).map(|(idx, dirty)| (a, idx, dirty));
    }
    let (a, idx, dirty) = found?;
    note_in_use(n);
    // SAFETY: a is a live arena; PAGE_LOCK is held; the run starting at idx is ours now.
    unsafe {
        Some(Run {
            start: ((*a).base() + (idx << PAGE_SHIFT)) as *mut u8,
            span: (*a).span_at(idx),
            zeroed: !dirty,
        })
    }
}

/// The arena and page index of `start`, a page of one of our arenas.
fn locate(start: *mut u8) -> (*mut Arena, usize) {
    let a = pagemap::arena_of(start as usize);
    xa_check!(!a.is_null());
    (a, Arena::page_of(start as usize))
}

/// Give `n` pages at `start` back as dirty, then apply the purge policy: under the lock it
/// chooses pages and takes the first round of them; the purging itself runs after the lock is
/// dropped, for about `n` pages (at least one round) while pages are due.
///
/// # Safety
/// The pages are a run (or the tail of one) handed out by [`alloc_run`] that nobody uses any
/// more, with their page-map entries already cleared.
pub unsafe fn free_run(start: *mut u8, n: usize) {
    // SAFETY: forwarded contract.
    unsafe { free_runs_as(&[(start, n)], true) }
}

/// [`free_run`] for a run whose pages the caller has just dropped (`os::decommit`): they go
/// back clean, so they are neither purged again nor cleared for `calloc`.
///
/// # Safety
/// As for [`free_run`]; the pages read as zero.
pub unsafe fn free_clean_run(start: *mut u8, n: usize) {
    // SAFETY: forwarded contract.
    unsafe { free_runs_as(&[(start, n)], false) }
}

/// [`free_run`] for several runs `(start, pages)` under one acquisition of [`PAGE_LOCK`] (a
/// run cache gives its runs back in batches); the purge budget is their total.
///
/// # Safety
/// Each as for [`free_run`].
pub unsafe fn free_runs(runs: &[(*mut u8, usize)]) {
    // SAFETY: forwarded contract.
    unsafe { free_runs_as(runs, true) }
}

/// [`free_runs`], the pages given back `dirty` or clean.
///
/// # Safety
/// As for [`free_run`]; if not `dirty`, the pages read as zero.
unsafe fn free_runs_as(runs: &[(*mut u8, usize)], dirty: bool) {
    let mut batch = PurgeBatch::new();
    let mut total = 0;
    {
        let _g = Guard::new(&PAGE_LOCK);
        let now = purge::now();
        purge::before_free_locked(now);
        for &(start, n) in runs {
            let (a, idx) = locate(start);
            // SAFETY: the caller guarantees the range is ours to free; PAGE_LOCK is held.
            unsafe { (*a).free_range(idx, n, dirty) };
            total += n;
        }
        IN_USE_PAGES.fetch_sub(total, Ordering::Relaxed);
        purge::after_free_locked(now, &mut batch);
    }
    // Clean pages add nothing to purge: only the round already taken, if any.
    purge::run(&mut batch, if dirty { total } else { 0 });
}

/// Grow the run of `pages` pages at `start` to `new_pages` pages in place if the following
/// pages are free.
///
/// # Safety
/// The run is a live run of the caller's.
pub unsafe fn extend_run(start: *mut u8, pages: usize, new_pages: usize) -> bool {
    let (a, idx) = locate(start);
    let _g = Guard::new(&PAGE_LOCK);
    // SAFETY: a is a live arena; PAGE_LOCK is held.
    let grown = unsafe { (*a).extend_run(idx, pages, new_pages) };
    if grown {
        note_in_use(new_pages - pages);
    }
    grown
}

/// Count `n` more pages as handed out (under PAGE_LOCK).
fn note_in_use(n: usize) {
    let now = IN_USE_PAGES.fetch_add(n, Ordering::Relaxed) + n;
    if now > PEAK_IN_USE_PAGES.load(Ordering::Relaxed) {
        PEAK_IN_USE_PAGES.store(now, Ordering::Relaxed);
    }
}

/// Totals for statistics: (free bytes in arenas, free bytes not yet purged). Pages being
/// purged count in both: they are free, and resident until their purge returns.
pub fn totals() -> (usize, usize) {
    let _g = Guard::new(&PAGE_LOCK);
    let (mut free, mut dirty) = (0, 0);
    arena::for_each_arena(|a| {
        free += (a.free_pages() + a.purging_pages()) * PAGE;
        dirty += (a.dirty_pages() + a.purging_pages()) * PAGE;
    });
    (free, dirty)
}

/// Check the invariants of every arena and the global page counters (tests and debugging).
pub fn check_all() {
    let _g = Guard::new(&PAGE_LOCK);
    let (mut arenas, mut free, mut dirty, mut due, mut purging) = (0, 0, 0, 0, 0);
    arena::for_each_arena(|a| {
        a.check_invariants();
        arenas += 1;
        free += a.free_pages();
        dirty += a.dirty_pages();
        due += a.due_pages();
        purging += a.purging_pages();
    });
    // the global counters agree with the arenas
    let in_use = IN_USE_PAGES.load(Ordering::Relaxed);
    xa_check!(arena::DIRTY_PAGES.load(Ordering::Relaxed) == dirty);
    xa_check!(arena::DUE_PAGES.load(Ordering::Relaxed) == due);
    xa_check!(arena::PURGING_PAGES.load(Ordering::Relaxed) == purging);
    xa_check!(in_use + free + purging == arenas * (ARENA_PAGES - META_PAGES));
    xa_check!(in_use <= PEAK_IN_USE_PAGES.load(Ordering::Relaxed));
}

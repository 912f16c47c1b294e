//! L9: medium blocks — more than [`SLAB_LIMIT`] and at most [`MEDIUM_LIMIT`] bytes, or
//! page-aligned — each a run of whole pages with a span of kind `Medium`.
//!
//! A medium run maps only its first group of pages in the page map: the one block starts
//! there, and every lookup of a live block is a lookup of its start. (Mapping all the pages of
//! a 16 MiB run cost 4096 stores on malloc and again on free.) Its other groups keep an
//! unused span (the freed-run marker, say); error reports tell an interior pointer from a
//! double free with [`pagemap::inside_live_medium`].
//!
//! [`SLAB_LIMIT`]: crate::size_class::SLAB_LIMIT

use crate::arena::{MAX_RUN_PAGES, MIN_RUN_ORDER};
use crate::buddy::{GRANULE, Order};
use crate::os::{self, PAGE, PAGE_SHIFT};
use crate::pagemap;
use crate::pages;
use crate::run_cache::{self, RunCache};
use crate::span::Span;
use core::sync::atomic::{AtomicU32, Ordering};

/// Largest request served as a medium block (32 MiB); larger ones are huge.
pub const MEDIUM_LIMIT: usize = MAX_RUN_PAGES * PAGE;

/// Pages of the medium block made for `size` bytes: whole pages, and whole granules (16
/// pages, 64 KiB) for runs too large for a run cache (over 1 MiB). Such runs (unless aligned
/// to more than a granule) are placed by best fit at the start of a stretch of free granules
/// (`pages::alloc_run`); one that ended inside a granule left the rest of it as up to four
/// listed buddy blocks when taken, and had them merge back when freed. The pages past `size`
/// are never touched by the allocator (`calloc` clears `size` bytes).
///
/// `large -m untouched -s 0.1` under callgrind: 220.0 M instructions unrounded, 201.7 M
/// rounded from here on, 193.1 M rounded from 64 pages (the best-fit threshold) on; but the
/// last also raised its peak RSS from 84 to 97 MiB (and `-m touched` from 222 to 235 MiB):
/// rounded runs of up to 1 MiB fit the run cache's quarter of slack more often, and a cached
/// run reused block after block keeps the pages each of them touched.
pub fn pages_for(size: usize) -> usize {
    let pages = size.div_ceil(PAGE).max(1);
    if pages > run_cache::MAX_RUN_PAGES {
        pages.next_multiple_of(GRANULE)
    } else {
        pages
    }
}

/// The most pages the block of a request for `pages` pages may have: [`alloc`] takes a cached
/// run up to a quarter larger than asked for, and the block then has the whole run. (A sized
/// `operator delete` checks its size against this range.)
pub const fn max_pages(pages: usize) -> usize {
    pages + pages / 4
}

/// A medium block of `size` bytes (`size <= MEDIUM_LIMIT`) aligned to `align` (a power of two
/// from a page to `MEDIUM_LIMIT`), from a run of the calling thread's run cache `cache` (up to
/// [`max_pages`]: the block then has the whole run) or else from the page allocator.
/// Returns the block and whether its bytes are known to be zero, or `None` when out of memory.
pub fn alloc(size: usize, align: usize, cache: Option<&mut RunCache>) -> Option<(*mut u8, bool)> {
    let pages = pages_for(size);
    let align_pages = align >> PAGE_SHIFT;
    xa_assert!(pages <= MAX_RUN_PAGES && align_pages <= MAX_RUN_PAGES);
    let min_order = Order::for_pages(align_pages).max(MIN_RUN_ORDER);
    let (run, pages) = match cache.and_then(|c| c.take(pages, max_pages(pages), min_order)) {
        Some(r) => r,
        None => (pages::alloc_run(pages, min_order)?, pages),
    };
    // SAFETY: the run and its span header are ours.
    unsafe { (*run.span).init_medium(run.start, pages) };
    pagemap::map_run(run.start, 1, run.span);
    Some((run.start, run.zeroed))
}

/// Medium runs of at least this many pages (1 MiB, the most a run cache keeps) are looked
/// at when freed, one in [`SPARSE_EVERY`]: see [`drop_if_sparse`].
pub const SPARSE_PAGES: usize = 256;
/// One in this many frees of runs of [`SPARSE_PAGES`] or more is looked at. `large -m
/// untouched`, medians of 5 interleaved runs (time, peak RSS): never 0.82 s, 181 MiB; one in
/// 256: 0.96 s, 145 MiB; 128: 1.11 s, 84 MiB; 64: 1.21 s, 77 MiB; 32: 1.25 s, 73 MiB (glibc
/// 0.85 s, 88 MiB; jemalloc 1.6 s, 75 MiB; mimalloc 0.65 s, 311 MiB). The time is the page
/// faults of the pages the next blocks touch again.
pub const SPARSE_EVERY: u32 = 128;
/// Frees of runs of [`SPARSE_PAGES`] or more so far (wrapping), for the one-in-[`SPARSE_EVERY`]
/// choice.
static SPARSE_TICK: AtomicU32 = AtomicU32::new(0);

/// Drop the pages of a freed run of `pages` pages at `start` if few of them are in memory
/// (a quarter or fewer, by `mincore`). Returns whether it did (the run then reads as zero).
///
/// Why: a program that keeps large blocks it writes only in places (the ends, a header,
/// a sparse table) leaves a few resident pages in each run it frees, and the next block
/// placed there keeps them and adds its own. The free pool's purge rules never see them
/// age, since a busy program reuses every free run within a purge epoch, so the resident set
/// grows towards the whole footprint: `large -m untouched` (32 live blocks of 64 KiB-16 MiB,
/// first and last byte written) reached a peak RSS of 181 MiB for 216 MiB at most in use.
/// Dropping a mostly non-resident run costs a `mincore` and one `MADV_DONTNEED` that skips the
/// absent pages; the next block placed there faults in only what it touches. A run that is
/// mostly resident (a block the program wrote all over, which the next one is likely to reuse
/// as much) is left alone, so programs that use their large blocks fully pay only the
/// `mincore`, and only for one free in [`SPARSE_EVERY`].
///
/// # Safety
/// The run is the caller's, unused, and no longer in the page map.
unsafe fn drop_if_sparse(start: *mut u8, pages: usize) -> bool {
    match os::resident_pages(start, pages) {
        Some(r) if r <= pages / 4 => os::decommit(start, pages * PAGE),
        _ => false,
    }
}

/// Free the medium block of span `s`: into the calling thread's run cache `cache` if it has
/// one, else to the page allocator (clean, if [`drop_if_sparse`] dropped its pages).
///
/// # Safety
/// `s` is the span of a live medium block that the caller gives up.
pub unsafe fn free(s: *mut Span, cache: Option<&mut RunCache>) {
    // SAFETY: forwarded contract.
    let span = unsafe { &mut *s };
    let (start, pages) = (span.start(), span.pages());
    span.retire();
    pagemap::unmap_run(start, 1);
    if pages >= SPARSE_PAGES
        && SPARSE_TICK.fetch_add(1, Ordering::Relaxed) % SPARSE_EVERY == 0
        // SAFETY: the run is ours, unused and out of the page map.
        && unsafe { drop_if_sparse(start, pages) }
    {
        // SAFETY: as below; its pages read as zero.
        return unsafe { pages::free_clean_run(start, pages) };
    }
    // SAFETY: the run is ours, its span retired, and no longer mapped in the page map.
    unsafe {
        match cache {
            Some(c) => c.put(start, s, pages),
            None => pages::free_run(start, pages),
        }
    }
}

/// Usable size of the medium block of `s`.
pub fn usable_size(s: &Span) -> usize {
    s.pages() * PAGE
}

/// Resize the medium block of `s` in place to hold `size` bytes (`SLAB_LIMIT < size <=
/// MEDIUM_LIMIT`): give the tail pages back, or take the following pages if they are free.
/// Returns whether the block now holds `size` bytes.
///
/// # Safety
/// `s` is the span of a live medium block of the caller's.
pub unsafe fn resize_in_place(s: &Span, size: usize) -> bool {
    let have = s.pages();
    let want = pages_for(size);
    if want < have {
        // SAFETY: the tail pages belong to this live run (and are not in the page map: a
        // medium run maps only its first page).
        unsafe {
            s.set_pages(want);
            pages::free_run(s.start().add(want * PAGE), have - want);
        }
        return true;
    }
    if want == have {
        return true;
    }
    // SAFETY: the run is a live run of ours.
    if unsafe { pages::extend_run(s.start(), have, want) } {
        s.set_pages(want);
        return true;
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_sparse_runs_are_dropped() {
        let pages = 300;
        let p = os::map(pages * PAGE);
        assert!(!p.is_null());
        // SAFETY: inside the mapping, which this test owns.
        unsafe { p.write_volatile(1) };
        // SAFETY: as above; nothing else uses the range.
        assert!(unsafe { drop_if_sparse(p, pages) });
        assert_eq!(os::resident_pages(p, pages), Some(0));
        // SAFETY: as above; the dropped page reads as zero.
        assert_eq!(unsafe { p.read_volatile() }, 0);
        for i in 0..pages / 2 {
            // SAFETY: as above.
            unsafe { p.add(i * PAGE).write_volatile(2) };
        }
        // SAFETY: as above.
        assert!(!unsafe { drop_if_sparse(p, pages) });
        assert_eq!(os::resident_pages(p, pages), Some(pages / 2));
        // SAFETY: as above: a page the program wrote keeps its bytes.
        assert_eq!(unsafe { p.add(PAGE).read_volatile() }, 2);
        os::unmap(p, pages * PAGE);
    }
}

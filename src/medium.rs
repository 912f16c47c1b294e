//! L9: medium blocks — more than [`SLAB_LIMIT`] and at most [`MEDIUM_LIMIT`] bytes, or
//! page-aligned — each a run of whole pages with a span of kind `Medium`.
//!
//! A medium run maps only its first page in the page map: the one block starts there, and
//! every lookup of a live block is a lookup of its start. (Mapping all the pages of a 16 MiB
//! run cost 4096 stores on malloc and again on free.) Its other pages keep null or the
//! freed-run marker; error reports tell an interior pointer from a double free with
//! [`pagemap::inside_live_medium`].
//!
//! [`SLAB_LIMIT`]: crate::size_class::SLAB_LIMIT

use crate::arena::{MAX_RUN_PAGES, MIN_RUN_ORDER};
use crate::buddy::Order;
use crate::os::{PAGE, PAGE_SHIFT};
use crate::pagemap;
use crate::pages;
use crate::run_cache::RunCache;
use crate::span::Span;

/// Largest request served as a medium block (32 MiB); larger ones are huge.
pub const MEDIUM_LIMIT: usize = MAX_RUN_PAGES * PAGE;

/// A medium block of `size` bytes (`size <= MEDIUM_LIMIT`) aligned to `align` (a power of two
/// from a page to `MEDIUM_LIMIT`), from a run of the calling thread's run cache `cache` (up to
/// a quarter larger: the block then has the whole run) or else from the page allocator.
/// Returns the block and whether its bytes are known to be zero, or `None` when out of memory.
pub fn alloc(size: usize, align: usize, cache: Option<&mut RunCache>) -> Option<(*mut u8, bool)> {
    let pages = size.div_ceil(PAGE).max(1);
    let align_pages = align >> PAGE_SHIFT;
    xa_assert!(pages <= MAX_RUN_PAGES && align_pages <= MAX_RUN_PAGES);
    let min_order = Order::for_pages(align_pages).max(MIN_RUN_ORDER);
    let (run, pages) = match cache.and_then(|c| c.take(pages, pages + pages / 4, min_order)) {
        Some(r) => r,
        None => (pages::alloc_run(pages, min_order)?, pages),
    };
    // SAFETY: the run and its span header are ours.
    unsafe { (*run.span).init_medium(run.start, pages) };
    pagemap::map_run(run.start, 1, run.span);
    Some((run.start, run.zeroed))
}

/// Free the medium block of span `s`: into the calling thread's run cache `cache` if it has
/// one, else to the page allocator.
///
/// # Safety
/// `s` is the span of a live medium block that the caller gives up.
pub unsafe fn free(s: *mut Span, cache: Option<&mut RunCache>) {
    // SAFETY: forwarded contract.
    let span = unsafe { &mut *s };
    let (start, pages) = (span.start(), span.pages());
    span.retire();
    pagemap::unmap_run(start, 1);
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
    let want = size.div_ceil(PAGE);
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

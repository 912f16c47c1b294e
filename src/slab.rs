//! L8: the slab tier's page work — making a slab from a run of pages and giving an empty one
//! back. (The block lists of a slab are [`crate::span`]'s; which heap uses which slab is
//! [`crate::heap`]'s.)

use crate::arena::MIN_RUN_ORDER;
use crate::pagemap;
use crate::pages;
use crate::size_class::SizeClass;
use crate::span::Span;
use core::ptr;

/// Make a new empty slab of class `c` owned by `owner` (a heap), on no list; null when out of
/// memory.
pub fn create(owner: *mut (), c: SizeClass) -> *mut Span {
    let pages = c.slab_pages();
    let Some(run) = pages::alloc_run(pages, MIN_RUN_ORDER) else {
        return ptr::null_mut();
    };
    // SAFETY: the run and its span header are ours now.
    unsafe { (*run.span).init_slab(owner, c, run.start, pages) };
    pagemap::map_run(run.start, pages, run.span);
    run.span
}

/// Return an empty slab's pages to the page allocator.
///
/// # Safety
/// `s` is a slab with no block in use (`used == 0`), on no list, that the caller owns.
pub unsafe fn release(s: *mut Span) {
    // SAFETY: forwarded contract.
    let span = unsafe { &mut *s };
    xa_assert!(span.used() == 0);
    span.retire();
    pagemap::unmap_run(span.start(), span.pages());
    // SAFETY: the run is unused and unmapped from the page map.
    unsafe { pages::free_run(span.start(), span.pages()) };
}

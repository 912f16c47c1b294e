//! L9: the slab tier's page work — making a slab from a run of pages and giving an empty one
//! back. (The block lists of a slab are [`crate::span`]'s; which heap uses which slab is
//! [`crate::heap`]'s.)

use crate::arena::MIN_RUN_ORDER;
use crate::pagemap;
use crate::run_cache::RunCache;
use crate::size_class::SizeClass;
use crate::span::Span;
use core::ptr;

/// Make a new empty slab of class `c` owned by `owner` (a heap), on no list, from a run of
/// `pages` pages (`c.slab_pages()` or `c.first_slab_pages()`) of the owner's run cache
/// `cache` or else from the page allocator; null when out of memory.
pub fn create(owner: *mut (), c: SizeClass, pages: usize, cache: &mut RunCache) -> *mut Span {
    let Some(run) = cache
        .take(pages, pages, MIN_RUN_ORDER)
        .map(|(r, _)| r)
        .or_else(|| cache.fetch(pages, MIN_RUN_ORDER))
    else {
        return ptr::null_mut();
    };
    // SAFETY: the run and its span header are ours now.
    unsafe { (*run.span).init_slab(owner, c, run.start, pages) };
    pagemap::map_run(run.start, pages, run.span);
    run.span
}

/// Give an empty slab's pages up, into its owner's run cache `cache` (which gives runs back to
/// the page allocator as it sees fit).
///
/// # Safety
/// `s` is a slab with no block in use (`used == 0`), on no list, that the caller owns.
pub unsafe fn release(s: *mut Span, cache: &mut RunCache) {
    // SAFETY: forwarded contract.
    let span = unsafe { &mut *s };
    xa_assert!(span.used() == 0);
    span.retire();
    pagemap::unmap_run(span.start(), span.pages());
    // SAFETY: the run is unused, its span retired, and unmapped from the page map.
    unsafe { cache.put(span.start(), s, span.pages()) };
}

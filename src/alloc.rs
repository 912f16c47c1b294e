//! L5: size → path dispatch (small slabs / medium page runs / huge mappings), and
//! `free(ptr)` → owner through the page map, with the C library's semantics for errors.
//!
//! Every function here sets `errno = ENOMEM` when it returns null for lack of memory and never
//! changes `errno` otherwise.

use crate::buddy::{self, MAX_RUN_PAGES, span_of};
use crate::debug::misuse;
use crate::heap;
use crate::huge;
use crate::os::{self, PAGE, PAGE_SHIFT};
use crate::size_class::{CLASS_SIZE, SLAB_LIMIT, class_of};
use crate::slab::{Kind, LARGE_OWNER, Span};
use core::ptr;
use core::sync::atomic::Ordering;

/// Largest request we accept (glibc ≥ 2.30 fails anything above `PTRDIFF_MAX`).
pub const MAX_REQUEST: usize = isize::MAX as usize;
/// Largest request served from the buddy; larger ones are mapped directly.
pub const MAX_RUN_BYTES: usize = MAX_RUN_PAGES * PAGE;

#[cold]
fn enomem() -> *mut u8 {
    os::set_errno(libc::ENOMEM);
    ptr::null_mut()
}

/// `malloc`. Fast path: a class lookup and a pop from the thread's slab.
#[inline(always)]
pub fn malloc(size: usize) -> *mut u8 {
    if size <= SLAB_LIMIT {
        return heap::alloc_small(class_of(size));
    }
    malloc_big(size, PAGE).0
}

/// A medium or huge block of `size` bytes aligned to `align` (a power of two ≥ page size).
/// Returns the block and whether its bytes are known to be zero.
#[cold]
#[inline(never)]
fn malloc_big(size: usize, align: usize) -> (*mut u8, bool) {
    if size > MAX_REQUEST {
        return (enomem(), false);
    }
    let pages = size.div_ceil(PAGE).max(1);
    let align_pages = align >> PAGE_SHIFT;
    if pages <= MAX_RUN_PAGES && align_pages <= MAX_RUN_PAGES {
        let min_order = (align_pages.trailing_zeros() as usize).max(2);
        let Some(run) = buddy::alloc_pages(pages, min_order) else {
            return (enomem(), false);
        };
        // SAFETY: the run and its span header are ours.
        unsafe {
            let arena = &mut *run.arena;
            let s = arena.span_at(run.idx);
            let span = &mut *s;
            span.free = ptr::null_mut();
            span.local_free = ptr::null_mut();
            span.used = 1;
            span.block_size = 0;
            span.class = 0;
            span.kind = Kind::Large;
            span.zeroed = run.zeroed;
            span.capacity = 1;
            span.reserved = 1;
            span.pages = pages as u32;
            span.start = run.addr() as *mut u8;
            // off * 1 < 1 only for off == 0: the run's first byte is its one block start.
            span.div_magic = 1;
            span.start_limit = 1;
            span.idx = run.idx as u32;
            span.arena = run.arena;
            span.heap.store(LARGE_OWNER, Ordering::Release);
            // Only the first page: the one block of a large span starts there, and every
            // lookup of a live block is a lookup of its start. (Mapping all the pages of a
            // 16 MiB run cost 4096 stores on malloc and again on free.) The other pages keep
            // null or the freed-run marker; `free_bad` tells an interior pointer from a
            // double free by looking for the live run around it.
            arena.map_pages(run.idx, 1, s);
            return (span.start, run.zeroed);
        }
    }
    let p = huge::alloc(size, align);
    if p.is_null() {
        return (enomem(), false);
    }
    (p, true)
}

/// `free`. Fast path: page-map lookup, block-start check, owner check, push.
///
/// # Safety
/// `p` is null or a pointer the program got from this allocator and has not freed; anything
/// else that we can detect aborts with a message.
#[inline(always)]
pub unsafe fn free(p: *mut u8) {
    // Null needs no test here: no arena covers address 0, so it takes the cold path below.
    let s = span_of(p as usize);
    if s.is_null() {
        return free_unmapped(p);
    }
    // SAFETY: span_of returns valid span headers.
    if !unsafe { (*s).is_block_start(p as usize) } {
        return free_rejected(s, p);
    }
    // SAFETY: s is a slab or large span and p a block start of it.
    unsafe { heap::free_small(s, p) }
}

#[cold]
#[inline(never)]
fn free_unmapped(p: *mut u8) {
    if !p.is_null() && !huge::free(p) {
        misuse("free", "invalid pointer", p as usize);
    }
}

/// `free` of a pointer that is not a block start: a `()`-returning cold function so the fast
/// path can tail-call it.
#[cold]
#[inline(never)]
fn free_rejected(s: *mut Span, p: *mut u8) {
    // `black_box` hides from the optimiser that this never returns; a function it knows to be
    // `noreturn` is reached by `call`, which makes `free` align its stack on every call.
    if core::hint::black_box(true) {
        free_bad(s, p, "free")
    }
}

#[cold]
#[inline(never)]
fn free_bad(s: *mut Span, p: *mut u8, call: &str) -> ! {
    // SAFETY: s is a valid span header.
    if unsafe { (*s).kind } == Kind::Unused && !buddy::inside_live_large(p as usize) {
        misuse(call, "double free", p as usize)
    }
    misuse(call, "invalid pointer", p as usize)
}

/// The usable size of block `p`; aborts naming `call` if `p` is not a live block of ours.
fn usable_or_die(p: *mut u8, call: &str) -> usize {
    let s = span_of(p as usize);
    if s.is_null() {
        return match huge::usable_size(p) {
            Some(n) => n,
            None => misuse(call, "invalid pointer", p as usize),
        };
    }
    // SAFETY: valid span header.
    let span = unsafe { &*s };
    if !span.is_block_start(p as usize) {
        free_bad(s, p, call);
    }
    match span.kind {
        Kind::Slab => span.block_size(),
        _ => span.pages as usize * PAGE,
    }
}

/// `malloc_usable_size`.
pub fn usable_size(p: *mut u8) -> usize {
    if p.is_null() {
        return 0;
    }
    usable_or_die(p, "malloc_usable_size")
}

/// Whether `p` is the start of a live block of ours (for tests and `xa_owns`). O(blocks in
/// the slab) for small blocks: a debugging aid, not a fast path.
pub fn owns(p: *const u8) -> bool {
    if p.is_null() {
        return false;
    }
    let s = span_of(p as usize);
    if s.is_null() {
        return huge::usable_size(p as *mut u8).is_some();
    }
    // SAFETY: valid span header.
    let span = unsafe { &*s };
    if span.kind == Kind::Unused || !span.is_block_start(p as usize) {
        return false;
    }
    // A block this thread freed into its hot list is free, whoever owns its slab.
    if span.kind == Kind::Slab && heap::hot_holds(p, span.class as usize) {
        return false;
    }
    // A block of a slab this thread owns is live unless it sits on the slab's free lists or on
    // our remote stack. A block of a slab another thread owns counts as live until that owner
    // collects it.
    let me = heap::tls_heap();
    if span.kind == Kind::Slab && span.owner() == me {
        // Take in the blocks other threads freed to us first (this may even release the slab).
        heap::collect_remote_current();
        if span.kind != Kind::Slab || span.owner() != me {
            return false;
        }
        if (span.capacity as usize) * span.block_size() <= (p as usize - span.start as usize) {
            return false;
        }
        for mut b in [span.free, span.local_free] {
            while !b.is_null() {
                if b as *const u8 == p {
                    return false;
                }
                // SAFETY: blocks on our own slab's lists are valid.
                b = unsafe { (*b).next };
            }
        }
    }
    true
}

/// `calloc` for an already-multiplied size.
pub fn calloc(total: usize) -> *mut u8 {
    if total <= SLAB_LIMIT {
        let p = heap::alloc_small(class_of(total));
        if !p.is_null() {
            // SAFETY: p holds at least `total` bytes.
            unsafe { ptr::write_bytes(p, 0, total) };
        }
        return p;
    }
    let (p, zeroed) = malloc_big(total, PAGE);
    if !p.is_null() && !zeroed {
        // SAFETY: p holds at least `total` bytes.
        unsafe { ptr::write_bytes(p, 0, total) };
    }
    p
}

/// `aligned_alloc` core: `align` is a power of two.
pub fn aligned(align: usize, size: usize) -> *mut u8 {
    if align <= 16 {
        return malloc(size);
    }
    if size > MAX_REQUEST {
        return enomem();
    }
    if size <= SLAB_LIMIT && align <= SLAB_LIMIT {
        let n = size.max(1).next_multiple_of(align);
        let mut c = class_of(n);
        if CLASS_SIZE[c] as usize % align != 0 {
            c = class_of(n.next_power_of_two());
        }
        let p = heap::alloc_small(c);
        xa_assert!(p as usize % align == 0);
        return p;
    }
    malloc_big(size, align.max(PAGE)).0
}

/// `realloc` with glibc's semantics: null `p` allocates; size 0 frees and returns null; on
/// failure returns null with `p` intact.
///
/// # Safety
/// As for [`free`].
pub unsafe fn realloc(p: *mut u8, size: usize) -> *mut u8 {
    if p.is_null() {
        return malloc(size);
    }
    if size == 0 {
        // SAFETY: forwarded contract.
        unsafe { free(p) };
        return ptr::null_mut();
    }
    if size > MAX_REQUEST {
        let _ = usable_or_die(p, "realloc");
        return enomem();
    }
    let s = span_of(p as usize);
    let old = if s.is_null() {
        let Some(old) = huge::usable_size(p) else {
            misuse("realloc", "invalid pointer", p as usize)
        };
        if size > MAX_RUN_BYTES {
            let q = huge::resize(p, size);
            return if q.is_null() { enomem() } else { q };
        }
        old
    } else {
        // SAFETY: valid span header.
        let span = unsafe { &mut *s };
        if !span.is_block_start(p as usize) {
            free_bad(s, p, "realloc");
        }
        match span.kind {
            Kind::Slab => {
                // The block this thread freed last is in its hot slot or on top of its slab's
                // local list.
                if (span.local_free as *mut u8 == p && span.owner() == heap::tls_heap())
                    || heap::hot_holds(p, span.class as usize)
                {
                    misuse("realloc", "double free", p as usize);
                }
                let bs = span.block_size();
                if size <= bs && (size > bs / 2 || class_of(size) == span.class as usize) {
                    return p;
                }
                bs
            }
            _ => {
                let have = span.pages as usize * PAGE;
                if size > SLAB_LIMIT && size <= have {
                    let keep = size.div_ceil(PAGE);
                    let drop = span.pages as usize - keep;
                    if drop > 0 {
                        // Give the tail back in place.
                        let idx = span.idx as usize + keep;
                        // SAFETY: the tail pages belong to this live run (and are not in the
                        // page map: a large run maps only its first page).
                        unsafe {
                            span.pages = keep as u32;
                            buddy::free_pages(span.arena, idx, drop);
                        }
                    }
                    return p;
                }
                if size > have && size <= MAX_RUN_BYTES {
                    let want = size.div_ceil(PAGE);
                    // SAFETY: the run is a live run of ours.
                    if unsafe {
                        buddy::extend_pages(
                            span.arena,
                            span.idx as usize,
                            span.pages as usize,
                            want,
                        )
                    } {
                        span.pages = want as u32;
                        return p;
                    }
                }
                have
            }
        }
    };
    let q = malloc(size);
    if q.is_null() {
        return q;
    }
    // SAFETY: both blocks hold at least min(old, size) bytes and do not overlap.
    unsafe {
        ptr::copy_nonoverlapping(p, q, old.min(size));
        free(p);
    }
    q
}

/// `malloc_trim`: release what the calling thread's heap and the arenas can. Returns whether
/// any memory was released.
pub fn trim() -> bool {
    heap::trim_current();
    buddy::purge_all() > 0
}

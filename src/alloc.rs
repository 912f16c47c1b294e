//! L14: the C library's semantics over the three tiers — size → tier for `malloc`, and
//! `free(ptr)` → page map → span kind → tier.
//!
//! Tiers: small blocks (at most [`SLAB_LIMIT`]) from the calling thread's slabs
//! ([`crate::thread`] over [`crate::heap`]); medium blocks (page runs up to [`MEDIUM_LIMIT`],
//! [`crate::medium`]); huge blocks (their own mappings, [`crate::huge`]).
//!
//! Every function here sets `errno = ENOMEM` when it returns null for lack of memory and never
//! changes `errno` otherwise.
//!
//! The call counters of the statistics ([`crate::counters`]) are bumped here, off the small
//! `malloc`/`free` fast path: in `calloc`, `realloc`, `aligned`, and where medium and huge blocks
//! come and go.

use crate::counters::{self, Counter};
use crate::debug::{misuse, misuse_size};
use crate::heap::Heap;
use crate::huge;
use crate::medium::{self, MEDIUM_LIMIT};
use crate::os::{self, PAGE};
use crate::pagemap;
use crate::profile;
use crate::purge;
use crate::run_cache::{self, RunCache};
use crate::secret;
use crate::size_class::{SLAB_LIMIT, SizeClass, class_of};
use crate::span::{Block, Kind, Span};
use crate::thread;
use crate::tls;
use core::ptr;

/// Largest request we accept (glibc ≥ 2.30 fails anything above `PTRDIFF_MAX`).
pub const MAX_REQUEST: usize = isize::MAX as usize;

#[cold]
fn enomem() -> *mut u8 {
    os::set_errno(libc::ENOMEM);
    ptr::null_mut()
}

/// `malloc`. Fast path: a class lookup, then the thread's hot list or current slab. The size
/// limit of the fast path is a field of the thread's heap (`SLAB_LIMIT`; 0 while the heap
/// profiler is on, and for a thread that has no heap yet): compared with a memory operand
/// instead of a constant, it costs no instruction.
#[inline(always)]
pub fn malloc(size: usize) -> *mut u8 {
    let h = tls::heap();
    // SAFETY: h is the calling thread's heap or a static empty one.
    if size <= unsafe { Heap::small_limit(h) } {
        return thread::alloc_small_in(h, class_of(size));
    }
    malloc_cold(size, h)
}

/// `malloc` past the fast path (`h` is the thread's heap, which `malloc` read already): a
/// thread's first request, any request while the profiler is on, a medium or huge block.
/// A small request the profiler does not sample costs a countdown here and the usual small
/// path.
#[cold]
#[inline(never)]
fn malloc_cold(size: usize, h: *mut Heap) -> *mut u8 {
    if size <= SLAB_LIMIT {
        // SAFETY: h is the calling thread's heap or a static empty one.
        if unsafe { Heap::count_unsampled(h, size) } || !profile::enabled() {
            return thread::alloc_small_in(h, class_of(size));
        }
        return profiled(size, 16).0;
    }
    if profile::enabled() {
        return profiled(size, 16).0;
    }
    malloc_big(size, PAGE).0
}

/// A request of `size` bytes aligned to `align` (a power of two) while the profiler is on:
/// counted against the thread's sampling interval; a sampled request gets a medium or huge
/// block of its own (so that its `free` takes the slow path, which forgets the sample) and is
/// recorded; any other is served as usual. Returns the block and whether it is known to be
/// zero.
#[cold]
#[inline(never)]
fn profiled(size: usize, align: usize) -> (*mut u8, bool) {
    if size > MAX_REQUEST {
        return (enomem(), false);
    }
    let h = tls::heap();
    // A thread without a heap of its own (its first request, or after its exit destructor)
    // is not sampled.
    // SAFETY: h is the calling thread's own heap; the reference lives for this call only.
    let sample = tls::is_own(h)
        .then(|| profile::take_sample(unsafe { Heap::prof_left(h) }, size))
        .flatten();
    if let Some(weight) = sample {
        let r = malloc_big(size, align.max(PAGE));
        if !r.0.is_null() {
            if let Some(s) = pagemap::lookup(r.0 as usize) {
                // SAFETY: the span of the medium block just allocated, ours alone.
                unsafe { s.as_ref() }.set_sampled();
            }
            profile::record(r.0, size, weight);
        }
        return r;
    }
    if size <= SLAB_LIMIT && align <= SLAB_LIMIT {
        let c = if align <= 16 {
            class_of(size)
        } else {
            aligned_class(align, size)
        };
        return (thread::alloc_small(c), false);
    }
    malloc_big(size, align.max(PAGE))
}

/// Free medium block `p` of span `s`, forgetting its sample if it is one.
///
/// # Safety
/// `s` is the span of live medium block `p`, which the caller gives up.
unsafe fn free_medium(s: *mut Span, p: *mut u8) {
    // SAFETY: a valid span header.
    if unsafe { (*s).is_sampled() } {
        profile::forget(p);
    }
    counters::add(Counter::MediumFree);
    // SAFETY: forwarded contract.
    unsafe { medium::free(s, own_runs()) }
}

/// The calling thread's run cache (its heap's, made now if it has none), if it has a heap of
/// its own.
#[inline]
fn own_runs() -> Option<&'static mut RunCache> {
    // SAFETY: our own heap; the medium tier's call is the only user of its cache meanwhile
    // (a signal handler re-entering it is caught by the cache).
    thread::own_heap_or_init().map(|h| unsafe { Heap::runs(h) })
}

/// A medium or huge block of `size` bytes aligned to `align` (a power of two ≥ page size).
/// Returns the block and whether its bytes are known to be zero.
#[cold]
#[inline(never)]
fn malloc_big(size: usize, align: usize) -> (*mut u8, bool) {
    if size > MAX_REQUEST {
        return (enomem(), false);
    }
    if size <= MEDIUM_LIMIT && align <= MEDIUM_LIMIT {
        return match medium::alloc(size, align, own_runs()) {
            Some(r) => {
                counters::add(Counter::MediumAlloc);
                r
            }
            None => (enomem(), false),
        };
    }
    let p = huge::alloc(size, align);
    if p.is_null() {
        return (enomem(), false);
    }
    counters::add(Counter::HugeAlloc);
    counters::note_huge(huge::HUGE_BYTES.load(core::sync::atomic::Ordering::Relaxed));
    (p, true)
}

/// `free`: page map → span kind → tier. Fast path (a slab of the calling thread's heap): the
/// page-map lookup, the block-start check, one compare of the slab's owner word with the
/// thread's heap (medium spans and slabs on their heap's full list never match), a push.
///
/// # Safety
/// `p` is null or a pointer the program got from this allocator and has not freed; anything
/// else that we can detect aborts with a message.
#[inline(always)]
pub unsafe fn free(p: *mut u8) {
    // Null needs no test here: no arena covers address 0, so it takes the cold path below.
    let Some(s) = pagemap::lookup(p as usize) else {
        return free_unmapped(p);
    };
    let s = s.as_ptr();
    // SAFETY: span_of returns valid span headers.
    if !unsafe { (*s).is_block_start(p as usize) } {
        return free_rejected(s, p);
    }
    // SAFETY: forwarded contract; p is a block start of s.
    unsafe { free_block(s, p) }
}

/// The rest of `free` once `p` is known to be a block start of live span `s`.
///
/// # Safety
/// `s` is a live slab or medium span and `p` a block start of it that the caller gives up.
#[inline(always)]
unsafe fn free_block(s: *mut Span, p: *mut u8) {
    let h = tls::heap();
    // SAFETY: s is a valid span header.
    if unsafe { (*s).owner_word() } == h.cast() {
        // SAFETY: h owns slab s (not on its full list) and p is a block start of it.
        return unsafe { Heap::free_own(h, s, p) };
    }
    // SAFETY: s is a live slab or medium span and p its block start.
    unsafe { free_by_kind(s, p) }
}

/// The rest of `free` for a live block: a medium block, or a slab block that is not on a
/// non-full slab of the calling thread.
///
/// # Safety
/// `s` is a live slab or medium span and `p` a block start of it.
#[cold]
#[inline(never)]
unsafe fn free_by_kind(s: *mut Span, p: *mut u8) {
    // SAFETY: forwarded contract.
    unsafe {
        match (*s).kind() {
            Kind::Medium => free_medium(s, p),
            _ => thread::free_foreign(s, p),
        }
    }
}

/// C++ sized `operator delete(p, size)` (and its aligned form, `align` > 16; 0 otherwise): `free`
/// after checking that `size` is one `operator new` could have been asked for to get `p`'s
/// block (the size class of a small block; the page count of a huge one; for a medium one,
/// from the pages [`medium::pages_for`] gives the size up to [`medium::max_pages`] of them).
/// A mismatch means the program deletes an object as a type it is not, and aborts with a
/// message.
/// Fast path (a plain small block of a non-full slab of this thread): `free`'s, plus a class
/// lookup and a compare; every other case is a tail call.
///
/// # Safety
/// As for [`free`].
#[inline(always)]
pub unsafe fn free_sized(p: *mut u8, size: usize, align: usize) {
    let Some(s) = pagemap::lookup(p as usize) else {
        return free_unmapped_sized(p, size);
    };
    let s = s.as_ptr();
    // SAFETY: span_of returns valid span headers.
    let span = unsafe { &*s };
    if !span.is_block_start(p as usize) {
        return free_rejected_as(s, p, "operator delete");
    }
    let h = tls::heap();
    // Equal owner word: a slab of this thread's heap (medium spans never match).
    if span.owner_word() == h.cast() && size <= SLAB_LIMIT && align <= 16 {
        if span.class() != class_of(size) {
            return size_mismatch(p, size);
        }
        // SAFETY: h owns slab s (not on its full list) and p is a block start of it.
        return unsafe { Heap::free_own(h, s, p) };
    }
    // SAFETY: forwarded contract; p is a block start of s.
    unsafe { free_sized_slow(s, p, size, align) }
}

/// The rest of [`free_sized`]: check the size against any kind of block, then free it.
///
/// # Safety
/// `s` is a live slab or medium span and `p` a block start of it that the caller gives up.
#[cold]
#[inline(never)]
unsafe fn free_sized_slow(s: *mut Span, p: *mut u8, size: usize, align: usize) {
    // SAFETY: a valid span header.
    let span = unsafe { &*s };
    let fits = match span.kind() {
        Kind::Slab if align <= 16 => size <= SLAB_LIMIT && span.class() == class_of(size),
        Kind::Slab => {
            size <= SLAB_LIMIT && align <= SLAB_LIMIT && span.class() == aligned_class(align, size)
        }
        // (A sampled request of the profiler gets a medium block, whatever its size; a
        // request may get a cached run a little larger than it asked for.)
        Kind::Medium => {
            let want = medium::pages_for(size);
            (size > SLAB_LIMIT || align > SLAB_LIMIT || profile::enabled())
                && (want..=medium::max_pages(want)).contains(&span.pages())
        }
        Kind::Unused => false,
    };
    if !fits {
        return size_mismatch(p, size);
    }
    // SAFETY: forwarded contract.
    unsafe { free_block(s, p) }
}

/// Pages of a huge block made for `size` bytes.
fn pages_for(size: usize) -> usize {
    size.max(1).div_ceil(PAGE)
}

/// `free_sized` of a pointer outside every arena: null, a huge block, or not ours.
#[cold]
#[inline(never)]
fn free_unmapped_sized(p: *mut u8, size: usize) {
    if p.is_null() {
        return;
    }
    match huge::usable_size(p) {
        Some(len) if len == pages_for(size) * PAGE => free_unmapped(p),
        Some(_) => size_mismatch(p, size),
        None => misuse("operator delete", "invalid pointer", p as usize),
    }
}

/// A sized delete whose size does not match the block: a `()`-returning cold function, as
/// [`free_rejected`].
#[cold]
#[inline(never)]
fn size_mismatch(p: *mut u8, size: usize) {
    if core::hint::black_box(true) {
        misuse_size("operator delete", p as usize, size, usable_size(p))
    }
}

/// `free` of a pointer outside every arena: null, a huge block, or not ours.
#[cold]
#[inline(never)]
fn free_unmapped(p: *mut u8) {
    if p.is_null() {
        return;
    }
    if profile::enabled() {
        profile::forget(p);
    }
    if !huge::free(p) {
        misuse("free", "invalid pointer", p as usize);
    }
    counters::add(Counter::HugeFree);
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

/// [`free_rejected`] for another entry point, named `call` in the report.
#[cold]
#[inline(never)]
fn free_rejected_as(s: *mut Span, p: *mut u8, call: &str) {
    if core::hint::black_box(true) {
        free_bad(s, p, call)
    }
}

#[cold]
#[inline(never)]
fn free_bad(s: *mut Span, p: *mut u8, call: &str) -> ! {
    // (The first page of a run in a run cache maps to the run's unused span.)
    // SAFETY: s is a valid span header.
    if (unsafe { (*s).kind() } == Kind::Unused && pagemap::is_freed_marker(s)
        || run_cache::cached_run_at(s, p as usize).is_some())
        && !pagemap::inside_live_medium(p as usize)
    {
        misuse(call, "double free", p as usize)
    }
    misuse(call, "invalid pointer", p as usize)
}

/// The usable size of block `p`; aborts naming `call` if `p` is not a live block of ours.
fn usable_or_die(p: *mut u8, call: &str) -> usize {
    let s = pagemap::span_of(p as usize);
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
    match span.kind() {
        Kind::Slab => span.block_size(),
        _ => medium::usable_size(span),
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
    let s = pagemap::span_of(p as usize);
    if s.is_null() {
        return huge::usable_size(p as *mut u8).is_some();
    }
    // SAFETY: valid span header.
    let span = unsafe { &*s };
    if span.kind() == Kind::Unused || !span.is_block_start(p as usize) {
        return false;
    }
    if span.kind() != Kind::Slab {
        return true;
    }
    // A freed block carries the mark until it is handed out again, wherever it waits (a hot
    // list, a slab's remote list, its slab's local lists).
    // SAFETY: p is a block start of a live slab.
    if unsafe { Block::is_marked(p as *mut Block, secret::keys().1) } {
        return false;
    }
    // An unmarked block of a slab this thread owns is live unless it was never handed out (on
    // the slab's free list, or not carved yet). A block of a slab another thread owns counts
    // as live then.
    let me = tls::heap().cast();
    if span.owner() == me {
        // Take in the blocks other threads freed to us first (this may even release the slab).
        thread::collect_remote_current();
        if span.kind() != Kind::Slab || span.owner() != me {
            return false;
        }
        // SAFETY: we own the slab.
        return !unsafe { span.holds_free(p) };
    }
    true
}

/// `calloc` for an already-multiplied size.
pub fn calloc(total: usize) -> *mut u8 {
    counters::add(Counter::Calloc);
    if total <= SLAB_LIMIT && !profile::enabled() {
        let p = thread::alloc_small(class_of(total));
        if !p.is_null() {
            // SAFETY: p holds at least `total` bytes.
            unsafe { ptr::write_bytes(p, 0, total) };
        }
        return p;
    }
    let (p, zeroed) = if profile::enabled() {
        profiled(total, 16)
    } else {
        malloc_big(total, PAGE)
    };
    if !p.is_null() && !zeroed {
        if total >= ZERO_BY_RESIDENCY {
            // Above SLAB_LIMIT, a block not known zero is a medium block: a run of whole pages.
            xa_assert!(p as usize % PAGE == 0);
            // SAFETY: p starts a run of whole pages of the caller's covering `total` bytes.
            unsafe { os::zero_pages(p, total) };
        } else {
            // SAFETY: p holds at least `total` bytes.
            unsafe { ptr::write_bytes(p, 0, total) };
        }
    }
    p
}

/// `calloc` requests from this size up that get a reused (not known zero) run clear only its
/// resident pages and drop the others (`os::zero_pages`): a program that writes a few pages of
/// a large zeroed block then keeps only those resident. Below it, `mincore` would cost more
/// than the stores it saves. (A program that cycles large `calloc` blocks it writes only in
/// part kept every page of them resident: `scripts/bench/progs/migrate.c` peaked at 25-31 MiB
/// before this, 20-24 MiB after, 5 runs each.)
const ZERO_BY_RESIDENCY: usize = 64 * 1024;
const _: () = assert!(ZERO_BY_RESIDENCY > SLAB_LIMIT);

/// `aligned_alloc` core: `align` is a power of two.
pub fn aligned(align: usize, size: usize) -> *mut u8 {
    counters::add(Counter::Aligned);
    if align <= 16 {
        return malloc(size);
    }
    if size > MAX_REQUEST {
        return enomem();
    }
    if profile::enabled() {
        return profiled(size, align).0;
    }
    if size <= SLAB_LIMIT && align <= SLAB_LIMIT {
        let p = thread::alloc_small(aligned_class(align, size));
        xa_assert!(p as usize % align == 0);
        return p;
    }
    malloc_big(size, align.max(PAGE)).0
}

/// The class of a small block of `size` bytes aligned to `align` (a power of two, both at most
/// `SLAB_LIMIT`): the first class whose blocks are multiples of `align` (then every block of
/// the slab is aligned, the slab starting on a page or, for blocks above a page, on a multiple
/// of the block size) holding a multiple of `align` at least `size`.
fn aligned_class(align: usize, size: usize) -> SizeClass {
    let n = size.max(1).next_multiple_of(align.max(1));
    let c = class_of(n);
    if c.size() % align.max(1) != 0 {
        return class_of(n.next_power_of_two());
    }
    c
}

/// `realloc` with glibc's semantics: null `p` allocates; size 0 frees and returns null; on
/// failure returns null with `p` intact.
///
/// # Safety
/// As for [`free`].
pub unsafe fn realloc(p: *mut u8, size: usize) -> *mut u8 {
    counters::add(Counter::Realloc);
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
    let s = pagemap::span_of(p as usize);
    let old = if s.is_null() {
        let Some(old) = huge::usable_size(p) else {
            misuse("realloc", "invalid pointer", p as usize)
        };
        if size > MEDIUM_LIMIT {
            if profile::enabled() {
                profile::forget(p);
            }
            let q = huge::resize(p, size);
            return if q.is_null() { enomem() } else { q };
        }
        old
    } else {
        // SAFETY: valid span header.
        let span = unsafe { &*s };
        if !span.is_block_start(p as usize) {
            free_bad(s, p, "realloc");
        }
        match span.kind() {
            Kind::Slab => {
                // A freed block carries the mark until it is handed out again.
                // SAFETY: p is a block start of a live slab.
                if unsafe { Block::is_marked(p as *mut Block, secret::keys().1) } {
                    misuse("realloc", "double free", p as usize);
                }
                let bs = span.block_size();
                if size <= bs && (size > bs / 2 || class_of(size) == span.class()) {
                    return p;
                }
                bs
            }
            _ => {
                // A sampled block that changes size is no longer the sample it was.
                if span.is_sampled() {
                    profile::forget(p);
                }
                if size > SLAB_LIMIT && size <= MEDIUM_LIMIT {
                    // SAFETY: a live medium block of the caller's.
                    if unsafe { medium::resize_in_place(span, size) } {
                        return p;
                    }
                }
                medium::usable_size(span)
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
    thread::trim_current();
    purge::purge_all() > 0
}

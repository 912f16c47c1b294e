//! L6: the page map — address → span — which makes `free(p)` O(1) and tells our pointers from
//! everybody else's.
//!
//! A registry indexed by `addr >> ARENA_SHIFT` holds every arena of ours (it lives in `.bss`:
//! untouched slots cost no memory); the arena's header maps each of its pages to the span of
//! the run covering it. An address outside every arena, or in a page no live run maps, gives
//! null or the freed-run marker (an unused span in which no address is a block start).

use crate::arena::{ARENA_SHIFT, Arena, MAX_RUN_PAGES, META_PAGES};
use crate::span::{Kind, Span};
use core::cell::UnsafeCell;
use core::ptr;
use core::sync::atomic::{AtomicPtr, Ordering};

/// Number of 64 MiB slots in the 47-bit user address space.
const REGISTRY_SLOTS: usize = 1 << (47 - ARENA_SHIFT);

/// Arena of each 64 MiB slot of the address space, or null.
static REGISTRY: [AtomicPtr<Arena>; REGISTRY_SLOTS] =
    [const { AtomicPtr::new(ptr::null_mut()) }; REGISTRY_SLOTS];

/// Publish a new arena: from now on its addresses are ours.
pub fn register(a: *mut Arena) {
    REGISTRY[a as usize >> ARENA_SHIFT].store(a, Ordering::Release);
}

/// The registered arena holding `addr`, or null: a shift, a bounds test, a load.
#[inline(always)]
pub fn arena_of(addr: usize) -> *mut Arena {
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

/// Find the span owning `addr`, or null if `addr` is not inside one of our arenas (an entry
/// may also be null, or the freed-run marker, for pages of no live run). About 8
/// instructions: a shift, a bounds test, two dependent loads.
#[inline(always)]
pub fn span_of(addr: usize) -> *mut Span {
    let arena = arena_of(addr);
    if arena.is_null() {
        return ptr::null_mut();
    }
    // SAFETY: a registered arena is mapped for the life of the process; the index is masked
    // below ARENA_PAGES.
    unsafe { (*arena).pagemap.get_unchecked(Arena::page_of(addr)) }.load(Ordering::Relaxed)
}

/// A span that is never written.
#[repr(transparent)]
struct Marker(UnsafeCell<Span>);
// SAFETY: never written after construction (no heap owns it and it has no blocks, so every
// write path is cut off before touching it).
unsafe impl Sync for Marker {}

/// The page-map entry of freed runs: a span no heap owns, of kind `Unused`, in which no
/// pointer is a block start, so `free` of a pointer into a freed run reports a double free.
static FREED: Marker = Marker(UnsafeCell::new(Span::empty()));

/// Point the page-map entries of the first `n` pages at `start` (in one of our arenas) to
/// `span`.
pub fn map_run(start: *mut u8, n: usize, span: *mut Span) {
    set_run(start, n, span);
}

/// The run at `start` is gone: its first `n` pages map to the freed-run marker.
pub fn unmap_run(start: *mut u8, n: usize) {
    set_run(start, n, FREED.0.get());
}

fn set_run(start: *mut u8, n: usize, span: *mut Span) {
    let a = arena_of(start as usize);
    xa_check!(!a.is_null());
    let idx = Arena::page_of(start as usize);
    // SAFETY: registered arenas are mapped for the life of the process.
    for e in unsafe { &(&(*a).pagemap)[idx..idx + n] } {
        e.store(span, Ordering::Relaxed);
    }
}

/// Whether `addr` lies in a page of a live medium run other than its first (such pages are not
/// in the page map, which may still hold the freed-run marker there from an earlier run).
/// Scans the page map backwards for the run's head: for error reports only.
pub fn inside_live_medium(addr: usize) -> bool {
    let arena = arena_of(addr);
    if arena.is_null() {
        return false;
    }
    let page = Arena::page_of(addr);
    let lowest = page.saturating_sub(MAX_RUN_PAGES).max(META_PAGES);
    for i in (lowest..page).rev() {
        // SAFETY: a registered arena is mapped for the life of the process.
        let s = unsafe { (*arena).pagemap[i].load(Ordering::Relaxed) };
        if s.is_null() {
            continue;
        }
        // SAFETY: page-map entries point at valid span headers.
        let span = unsafe { &*s };
        match span.kind() {
            Kind::Medium => return span.start() as usize + span.pages() * crate::os::PAGE > addr,
            // runs do not overlap: a live slab before `page` that does not cover it means no
            // live run covering `page` starts before it
            Kind::Slab => return false,
            Kind::Unused => {}
        }
    }
    false
}

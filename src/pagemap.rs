//! L6: the page map — address → span — which makes `free(p)` O(1) and tells our pointers from
//! everybody else's.
//!
//! A registry indexed by `addr >> ARENA_SHIFT` holds every arena of ours (it lives in `.bss`:
//! untouched slots cost no memory); the arena's header maps each group of
//! [`RUN_ALIGN`] pages to the span of the run covering it (runs start on a group and no two
//! share one, so a group holds pages of one run at most). An address outside every arena gives
//! null; one in a group no live run maps gives an unused span in which no address is a block
//! start: the freed-run marker, or `arena::NEVER_USED` for groups no run ever covered.
//!
//! An entry per group rather than per page: the page map of a new arena is all
//! `NEVER_USED`, written when the arena is made, and per page it took 128 KiB of resident
//! memory in every arena (a third of the memory of a small program on top of glibc's), per
//! group 32 KiB. A lookup costs the same instructions: one shift amount changes.

use crate::arena::{
    ARENA_PAGES, ARENA_SHIFT, ARENA_SIZE, Arena, MAP_SHIFT, MAX_RUN_PAGES, META_PAGES, Marker,
    RUN_ALIGN,
};
use crate::os::PAGE_SHIFT;
use crate::span::{Kind, Span};
use core::cell::UnsafeCell;
use core::ptr::{self, NonNull};
use core::sync::atomic::{AtomicPtr, Ordering};

/// Number of 64 MiB slots in the 47-bit user address space.
const REGISTRY_SLOTS: usize = 1 << (47 - ARENA_SHIFT);
/// log2 of the bytes a page-map entry covers (a group of [`RUN_ALIGN`] pages).
const GROUP_SHIFT: usize = PAGE_SHIFT + MAP_SHIFT;
/// log2 of the groups in an arena.
const SLOT_GROUPS_SHIFT: usize = ARENA_SHIFT - GROUP_SHIFT;

/// For each 64 MiB slot of the address space: null, or the page map of the arena there biased
/// by the slot's first group, so that `entry + (addr >> GROUP_SHIFT)` is the page-map entry of
/// `addr` with no masking: `arena - (arena >> GROUP_SHIFT) * 8`.
static REGISTRY: [AtomicPtr<AtomicPtr<Span>>; REGISTRY_SLOTS] =
    [const { AtomicPtr::new(ptr::null_mut()) }; REGISTRY_SLOTS];

/// The byte offset that biases arena `base`'s page map (see [`REGISTRY`]).
#[inline(always)]
const fn bias(base: usize) -> usize {
    (base >> GROUP_SHIFT) * core::mem::size_of::<AtomicPtr<Span>>()
}

/// Publish a new arena: from now on its addresses are ours.
pub fn register(a: *mut Arena) {
    // The page map is the arena header's first field (see `Arena`).
    let map = a
        .cast::<AtomicPtr<Span>>()
        .wrapping_byte_sub(bias(a as usize));
    REGISTRY[a as usize >> ARENA_SHIFT].store(map, Ordering::Release);
}

/// The biased page map (see [`REGISTRY`]) of the arena holding group number `group` (an
/// address shifted right by `GROUP_SHIFT`), or null: a shift, a bounds test, a load.
#[inline(always)]
fn biased_map(group: usize) -> *mut AtomicPtr<Span> {
    let mut slot = group;
    // The shift is opaque to the optimiser on purpose: seeing `(group >> 12) < 2^21` it tests
    // `group >> 33` and then shifts again, an instruction more on every `free`.
    // SAFETY: a register shift; no memory, no stack, no flags anyone reads.
    unsafe {
        core::arch::asm!("shr {0}, {s}", inout(reg) slot, s = const SLOT_GROUPS_SHIFT,
                         options(pure, nomem, nostack));
    }
    if slot >= REGISTRY_SLOTS {
        return ptr::null_mut();
    }
    // SAFETY: slot < REGISTRY_SLOTS.
    unsafe { REGISTRY.get_unchecked(slot) }.load(Ordering::Relaxed)
}

/// The registered arena holding `addr`, or null.
pub fn arena_of(addr: usize) -> *mut Arena {
    let map = biased_map(addr >> GROUP_SHIFT);
    if map.is_null() {
        return ptr::null_mut();
    }
    map.wrapping_byte_add(bias(addr & !(ARENA_SIZE - 1))).cast()
}

/// The span whose group covers `addr`, or `None` if `addr` is not inside one of our arenas
/// (for groups of no live run: an unused span, see the module docs). About 10 instructions:
/// two shifts, a bounds test, two dependent loads and one null test (a page-map entry is
/// never null).
#[inline(always)]
pub fn lookup(addr: usize) -> Option<NonNull<Span>> {
    let group = addr >> GROUP_SHIFT;
    let map = biased_map(group);
    if map.is_null() {
        return None;
    }
    // SAFETY: a registered slot's biased map plus the group number of an address in that slot
    // is that address's entry in the arena's page map, mapped for the life of the process; an
    // arena's entries are set to a span before it is registered and never to null (`Arena`).
    Some(unsafe { NonNull::new_unchecked((*map.wrapping_add(group)).load(Ordering::Relaxed)) })
}

/// [`lookup`] as a pointer: the span covering `addr`, or null outside our arenas.
#[inline(always)]
pub fn span_of(addr: usize) -> *mut Span {
    lookup(addr).map_or(ptr::null_mut(), NonNull::as_ptr)
}

/// Whether `s` is the freed-run marker (the entry of a page whose run was freed, as opposed to
/// one no run ever covered).
pub fn is_freed_marker(s: *const Span) -> bool {
    ptr::eq(s, FREED.0.get())
}

/// The page-map entry of freed runs: a span no heap owns, of kind `Unused`, in which no
/// pointer is a block start, so `free` of a pointer into a freed run reports a double free.
static FREED: Marker = Marker(UnsafeCell::new(Span::empty()));

/// Point the page-map entries of the groups of the first `n` pages at `start` (a run's first
/// page, in one of our arenas) to `span`.
pub fn map_run(start: *mut u8, n: usize, span: *mut Span) {
    set_run(start, n, span);
}

/// The run at `start` is gone: the groups of its first `n` pages map to the freed-run marker.
pub fn unmap_run(start: *mut u8, n: usize) {
    set_run(start, n, FREED.0.get());
}

fn set_run(start: *mut u8, n: usize, span: *mut Span) {
    let group = start as usize >> GROUP_SHIFT;
    let map = biased_map(group);
    xa_check!(!map.is_null() && n >= 1 && start as usize & ((1 << GROUP_SHIFT) - 1) == 0);
    xa_check!(Arena::page_of(start as usize) + n <= ARENA_PAGES);
    for g in group..group + n.div_ceil(RUN_ALIGN) {
        // SAFETY: as in `lookup`: the entries of the groups of a run inside the registered
        // arena holding its start (a run never leaves its arena).
        unsafe { (*map.wrapping_add(g)).store(span, Ordering::Relaxed) };
    }
}

/// Whether `addr` lies in a live medium run (the page map names only a medium run's first
/// group; the entries of its other groups may still hold the freed-run marker from an earlier
/// run). Scans the page map backwards for the run's head: for error reports only.
pub fn inside_live_medium(addr: usize) -> bool {
    let arena = arena_of(addr);
    if arena.is_null() {
        return false;
    }
    let group = Arena::page_of(addr) >> MAP_SHIFT;
    let lowest = (group.saturating_sub(MAX_RUN_PAGES >> MAP_SHIFT)).max(META_PAGES >> MAP_SHIFT);
    for i in (lowest..=group).rev() {
        // SAFETY: a registered arena is mapped for the life of the process.
        let s = unsafe { (*arena).pagemap[i].load(Ordering::Relaxed) };
        // SAFETY: page-map entries point at valid span headers (never null).
        let span = unsafe { &*s };
        match span.kind() {
            Kind::Medium => return span.start() as usize + span.pages() * crate::os::PAGE > addr,
            // runs do not overlap: a live slab at or before `addr` that does not cover it
            // means no live run covering `addr` starts before it
            Kind::Slab => return false,
            Kind::Unused => {}
        }
    }
    false
}

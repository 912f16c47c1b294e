//! xalloc: a general-purpose memory allocator that replaces the C library's `malloc`.
//!
//! # Architecture
//!
//! ```text
//!   ffi        L6  #[no_mangle] exports: glibc names (feature "override") and xa_* API
//!    |
//!   alloc      L5  size -> path: small (slab) / medium (page run) / huge (mmap); free(ptr) -> owner
//!    |
//!   heap       L4  per-thread heaps: initial-exec TLS pointer, slab queues, remote-free stacks,
//!    |             thread exit (pthread key), adoption of abandoned heaps, fork handlers
//!   slab, huge L3  span headers and slab block lists; direct mappings above 32 MiB
//!   size_class L3  the 56 size classes (16 B .. 32 KiB)
//!    |
//!   buddy      L2  64 MiB arenas, page map (address -> span), binary buddy over pages, purge
//!    |
//!   config, stats, sync, debug   L1  options, statistics, futex lock, fatal errors
//!    |
//!   os         L0  the only module that calls libc / the kernel
//! ```
//!
//! Each layer uses only the layers below it.
//!
//! # Lock order
//!
//! A thread holding lock *n* may only take locks numbered above *n*. None of these is held
//! while calling anything that can allocate.
//!
//! 1. `heap::GLOBAL_LOCK` — the global heap that serves threads after their exit destructor.
//!    Malloc path: only for such threads.
//! 2. `heap::HEAPS_LOCK` — the lists of all, abandoned and free heaps. Malloc path: thread
//!    start, thread exit, adoption.
//! 3. `buddy::PAGE_LOCK` — every arena's buddy state. Malloc path: slab refills (once per slab),
//!    medium blocks, purging; on `free`: a slab emptied (or, every 256 frees that empty a
//!    current slab, the purge clock).
//! 4. `huge::HUGE_LOCK` — the huge-block table. Malloc path: huge blocks, and `free` of
//!    pointers outside every arena.
//!
//! The fork prepare handler takes glibc's stdio list lock, then 1-4 in order.
//!
//! # Glossary
//!
//! - *arena*: 64 MiB of address space aligned to 64 MiB; its header holds the page map.
//! - *page*: 4 KiB. *run*: consecutive pages handed out by the buddy. *order*: log2 of a
//!   buddy block's page count.
//! - *span*: the header of a run. *slab*: a span cut into blocks of one *class*.
//! - *block*: what `malloc` returns.
//! - *heap*: a thread's set of slabs. *remote free*: a free by a thread that does not own the slab.

#![deny(unsafe_op_in_unsafe_fn)]
#![deny(clippy::undocumented_unsafe_blocks)]
#![deny(clippy::missing_safety_doc)]

#[macro_use]
pub mod debug;
pub mod alloc;
pub mod buddy;
pub mod config;
pub mod ffi;
pub mod heap;
pub mod huge;
pub mod os;
pub mod size_class;
pub mod slab;
pub mod stats;
pub mod sync;

pub use crate::alloc::MAX_RUN_BYTES as MEDIUM_LIMIT;
pub use crate::os::PAGE;
pub use crate::size_class::{CLASS_SIZE, NUM_CLASSES, SLAB_LIMIT};

use core::alloc::{GlobalAlloc, Layout};

/// The allocator as a Rust global allocator:
///
/// ```ignore
/// #[global_allocator]
/// static A: xalloc::XAlloc = xalloc::XAlloc;
/// ```
///
/// With the default `global` feature the crate installs it itself.
pub struct XAlloc;

// SAFETY: alloc returns blocks of at least layout.size() bytes aligned to layout.align() or
// null; dealloc/realloc accept exactly the blocks alloc returned.
unsafe impl GlobalAlloc for XAlloc {
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if layout.align() <= 16 {
            alloc::malloc(layout.size())
        } else {
            alloc::aligned(layout.align(), layout.size())
        }
    }

    #[inline]
    unsafe fn dealloc(&self, ptr: *mut u8, _layout: Layout) {
        // SAFETY: ptr came from alloc on this allocator.
        unsafe { alloc::free(ptr) }
    }

    #[inline]
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if layout.align() <= 16 {
            alloc::calloc(layout.size())
        } else {
            let p = alloc::aligned(layout.align(), layout.size());
            if !p.is_null() {
                // SAFETY: p holds layout.size() bytes.
                unsafe { core::ptr::write_bytes(p, 0, layout.size()) };
            }
            p
        }
    }

    #[inline]
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if layout.align() <= 16 {
            // SAFETY: ptr came from this allocator; new_size > 0 per GlobalAlloc's contract.
            return unsafe { alloc::realloc(ptr, new_size) };
        }
        let q = alloc::aligned(layout.align(), new_size);
        if !q.is_null() {
            // SAFETY: both blocks are valid for the copied length and distinct.
            unsafe {
                core::ptr::copy_nonoverlapping(ptr, q, layout.size().min(new_size));
                alloc::free(ptr);
            }
        }
        q
    }
}

/// With the `global` feature, every Rust allocation in this library (and in a program that
/// links the crate) goes to xalloc, never back through the C library.
#[cfg(feature = "global")]
#[global_allocator]
static GLOBAL: XAlloc = XAlloc;

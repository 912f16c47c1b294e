//! xalloc: a general-purpose memory allocator that replaces the C library's `malloc`.
//!
//! # Architecture
//!
//! Each module uses only modules of lower layers: never one of its own layer, never one above.
//! `tests/layers.rs` reads the table below and every `crate::` path under `src/`, and fails on
//! an import that breaks the rule (the crate root, this file, sits above everything).
//!
//! ```text
//! layer | modules                 | what
//! L15   | ffi cxx                 | exports: glibc names (feature "override"), xa_* API; C++ new/delete
//! L14   | alloc stats dumps       | C semantics, size -> tier, free -> page map -> kind -> tier; statistics; when profiles and heap maps are written
//! L13   | thread                  | a thread's heap from first malloc to exit; small-block entry points
//! L12   | fork                    | fork handlers: every lock, orphaned heaps in the child
//! L11   | tls registry            | the TLS heap slot; abandoned / free heaps, the global heap
//! L10   | heap heapmap            | one heap: hot lists, class queues, run cache, slabs with remote frees, borrowed blocks, fast and slow paths; the list of all heaps; the heap map dump
//! L9    | slab medium huge        | the tiers: slabs from page runs, medium runs, huge mappings
//! L8    | run_cache               | a heap's cache of free runs in front of the page allocator
//! L7    | pages                   | the page allocator: runs of pages under PAGE_LOCK
//! L6    | pagemap purge           | address -> span, "not ours"; the purge policy and its rounds
//! L5    | arena span_list         | 64 MiB arenas and their header, the arena list; lists of spans
//! L4    | span buddy profile      | the header of a run and a slab's block lists; buddy arithmetic and best fit for large runs; heap profiler samples
//! L3    | size_class bitmap       | class tables; page bitmaps
//! L2    | sync config secret counters textout fmath stack_vec | the futex lock that names its holder; XALLOC_* options; free-list mask and mark; call counters; buffered file output; ln, exp_m1, round without libm; fixed-size lists that leave free slots unwritten
//! L1    | debug                   | fatal errors, misuse reports, assertions, no allocation
//! L0    | os unwind               | libc and kernel calls (only `unwind` besides, for its stack walk); the profiler's stack walk
//! ```
//!
//! `ffi` holds the `#[no_mangle]` exports. The C++ operators are the one other export file,
//! `cxx`: its `new` forms are naked assembly functions, because an exception from a
//! `new_handler` or the `std::bad_alloc` they throw must never cross a Rust frame of this
//! `panic = "abort"` crate (see its docs); its deletes sit beside them. Besides `os` and
//! `unwind` (the heap profiler's stack walk, through libgcc's `_Unwind_Backtrace` where glibc
//! lacks `_dl_find_object`), it is the one module that calls foreign code: the C++ runtime and
//! its unwinder (`_Unwind_*`), through the addresses `os::dlsym_default` finds.
//!
//! The crate is `#![no_std]` (its unit tests use std): `so/` links it into `libxalloc.so`,
//! which needs libc alone. Nothing here links libgcc or libm; `fmath` computes the profiler's
//! logarithm and exponential.
//!
//! # The two data paths
//!
//! `malloc(n)`: `ffi` → `alloc::malloc` → `tls::heap`; for `n` up to the heap's fast-path limit
//! (32 KiB; 0 while the heap profiler is on, and for a thread's first request):
//! `size_class::class_of` → `thread::alloc_small_in` → `heap::Heap::alloc_fast` (hot list, else
//! `span::Span::pop` / `pop_local` on the current slab); on a miss `thread::alloc_small_slow` →
//! `heap::Heap::pop_borrowed` (blocks taken from an idle heap), else, before fresh memory,
//! `heap::Heap::borrow` (`heap::Heap::idle_victim` → `heap::Heap::steal` →
//! `span::Span::steal_remote`), else `heap::Heap::refill_current` (when no remote frees wait:
//! `span::Span::refill` of the current slab, its local list or its next page), else
//! `heap::Heap::collect_remote` (`span::Span::take_remote`, other threads' frees) →
//! `heap::Heap::alloc_from_queues` / `registry::adopt_into` / `heap::Heap::borrow` /
//! `heap::Heap::alloc_from_new_slab`
//! → `slab::create` → `run_cache::RunCache::take` (the heap's cached runs), else
//! `run_cache::RunCache::fetch` → `pages::alloc_runs` (`arena::Arena::alloc_run` →
//! `buddy::Buddy::take`; runs of `pages::FIT_PAGES` or more: `arena::Arena::best_fit` →
//! `buddy::Buddy::best_fit`, then `buddy::Buddy::take_range`), and `pagemap::map_run`. Past
//! the limit, `alloc::malloc_cold`: the first request of a thread, the profiler's countdown
//! and samples (`alloc::profiled` → `profile::record`, a sampled block being a medium block
//! of its own), `medium::alloc` → `run_cache::RunCache::take`, else `pages::alloc_run`, or
//! `huge::alloc` → `os::map`.
//! `alloc::calloc` clears a reused medium run of 64 KiB or more with `os::zero_pages`.
//!
//! `free(p)`: `ffi` → `alloc::free` → `pagemap::lookup` (outside every arena: `huge::free`,
//! else "invalid pointer"; inside, a page no live run covers maps to an unused span) →
//! `span::Span::is_block_start` (no: "invalid pointer" / "double free") → owner word
//! equal to `tls::heap()`: `heap::Heap::free_own` (hot list, else `span::Span::push_local`;
//! an emptied slab → `slab::release` → `run_cache::RunCache::put`, which gives runs to
//! `pages::free_runs` → `purge` in batches); otherwise `alloc::free_by_kind` → `medium::free`
//! (a sampled block: `profile::forget` first; one run of 1 MiB or more in 128:
//! `os::resident_pages`, and `pages::free_clean_run` if it was sparse and dropped) →
//! `run_cache::RunCache::put`, or
//! `thread::free_foreign` (a thread with no heap yet gets one: `thread::own_heap_or_init`;
//! own full slab: `heap::Heap::free_local`; another heap's: `heap::Heap::keep_foreign`, else
//! `heap::Heap::keep_lent` (a block of the idle heap this one borrows from), else
//! `heap::Heap::send_foreign`, whose full or displaced chain, like a heapless thread's block
//! through `heap::remote_free`, goes to `span::Span::push_remote`, and `heap::notify` when
//! that finds the slab's remote list empty).
//!
//! # Lock order
//!
//! A thread holding lock *n* may only take locks numbered above *n*. None of these is held
//! while calling anything that can allocate.
//!
//! 1. `registry::GLOBAL_LOCK` — the global heap that serves threads after their exit
//!    destructor. Malloc path: only for such threads.
//! 2. `registry::HEAPS_LOCK` — the lists of all, abandoned and free heaps. Malloc path: thread
//!    start (a thread's first `malloc`, or its first `free` of another thread's block), thread
//!    exit, adoption.
//! 3. `arena::PAGE_LOCK` — every arena's buddy state and page bitmaps, the arena list and page
//!    counters. Malloc path: slab refills and medium blocks that the heap's run cache cannot
//!    serve (a refill that keeps missing fetches several runs at once), runs a run cache
//!    gives back (in batches: on overflow, decay, thread exit, `malloc_trim`), medium blocks
//!    of threads past their exit, choosing pages to purge and taking them out of and back
//!    into the free pool; on `free`: (every 256 frees into a hot list or onto a chain of
//!    another heap's blocks, or that empty a current slab; every 4 while pages are due; or when
//!    a malloc finds its current slab used up, or other threads' frees waiting) a purge clock
//!    that says an epoch is over or pages are due. Not held while `MADV_DONTNEED` runs: a
//!    purge round drops it between taking its pages out and giving them back (see `purge`). A
//!    round may run with lock 1 held (the global heap's slab refill checks the purge clock).
//! 4. `huge::HUGE_LOCK` — the huge-block table. Malloc path: huge blocks, and `free` of
//!    pointers outside every arena.
//! 5. `profile::PROF_LOCK` — the heap profiler's tables. Only while the profiler is on: a
//!    sample taken or a sampled block freed; and while a profile is written.
//!
//! The fork prepare handler takes glibc's stdio list lock, then 1-5 in order.
//!
//! Re-entry: each lock's word names the thread that holds it (`sync::RawLock`). A thread that
//! asks for a lock it already holds — malloc or free called from a signal handler that
//! interrupted malloc or free, which is undefined behaviour — aborts with `xalloc: malloc
//! re-entered while this thread holds <LOCK> (from a signal handler?)` instead of waiting for
//! ever on itself. The check runs only when a lock is found taken, and never fires for a lock
//! another thread holds.
//!
//! # Glossary
//!
//! - *arena*: 64 MiB of address space aligned to 64 MiB; its header holds the page map.
//! - *page*: 4 KiB. *run*: consecutive pages handed out by the buddy. *order*: log2 of a
//!   buddy block's page count.
//! - *span*: the header of a run. *slab*: a span cut into blocks of one *class*. *medium
//!   block*: a run holding one block (32 KiB to 32 MiB). *huge block*: its own mapping.
//! - *block*: what `malloc` returns.
//! - *heap*: a thread's set of slabs, with its *run cache* of free runs. *remote free*: a
//!   free by a thread that does not own the slab. *hot list*: per class, the blocks a thread
//!   freed last, handed out first.

// No standard library: the shared library links only libc (see `so/`); the unit tests use std.
#![cfg_attr(not(test), no_std)]
#![deny(unsafe_op_in_unsafe_fn)]
#![deny(clippy::undocumented_unsafe_blocks)]
#![deny(clippy::missing_safety_doc)]

#[macro_use]
mod debug;
mod alloc;
mod arena;
mod bitmap;
mod buddy;
mod config;
mod counters;
#[cfg(feature = "override")]
mod cxx;
mod dumps;
pub mod ffi;
mod fmath;
mod fork;
mod heap;
mod heapmap;
mod huge;
mod medium;
mod os;
mod pagemap;
mod pages;
mod profile;
mod purge;
mod registry;
mod run_cache;
mod secret;
mod size_class;
mod slab;
mod span;
mod span_list;
mod stack_vec;
mod stats;
mod sync;
mod textout;
mod thread;
mod tls;
mod unwind;

/// Largest request served by a medium block (a page run); larger ones are mapped directly.
pub use crate::medium::MEDIUM_LIMIT;
/// Bytes in a page.
pub use crate::os::PAGE;
/// The size classes' block sizes, and how many there are.
pub use crate::size_class::{CLASS_SIZE, NUM_CLASSES, SLAB_LIMIT};

use core::alloc::{GlobalAlloc, Layout};

/// The allocator as a Rust global allocator. A program that depends on the crate declares it:
///
/// ```ignore
/// #[global_allocator]
/// static GLOBAL: xalloc::XAlloc = xalloc::XAlloc;
/// ```
///
/// (Merely depending on the crate installs nothing: rustc does not link a crate the code never
/// names.) The non-default `global` feature declares it inside the crate instead, for
/// programs that name the crate anyway (`use xalloc as _;`); it cannot be combined with a
/// declaration of the program's own.
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
/// links the crate) goes to xalloc directly. (Without it, the library's own code allocates
/// nothing through Rust's allocator, and a program built with the default `override` feature
/// reaches xalloc through the `malloc` the crate exports.)
#[cfg(feature = "global")]
#[global_allocator]
static GLOBAL: XAlloc = XAlloc;

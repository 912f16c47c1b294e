//! L11: the registry of heaps — every heap ever made, the abandoned ones and the free ones —
//! and the global heap that serves threads past their exit destructor.
//!
//! Heaps are never unmapped (a slab's owner pointer stays valid for as long as any block of it
//! travels). When a thread exits, its heap is emptied where possible and then marked
//! abandoned (if it still owns live blocks) or free. A new thread takes a free or abandoned
//! heap over whole, and a thread that runs short of slabs adopts an abandoned heap's slabs, so
//! live slabs of dead threads are reused (and a thread about to use fresh memory may borrow
//! the blocks that an idle thread's heap leaves untaken: [`Heap::steal`]). The list of every
//! heap ever made is [`Heap::publish`]'s. In a fork child, the heaps of the parent's other
//! threads are orphaned, never adopted: their threads may have been in the middle of changing
//! them. Their free blocks are lost to the child (the memory stays mapped, shared
//! copy-on-write with the parent), but for those freed to their slabs that the child's
//! threads borrow as from any idle heap.

use crate::heap::{Heap, StaticHeap};
use crate::os::{self, PAGE};
use crate::sync::{Guard, RawLock};
use core::ptr;
use core::sync::atomic::{AtomicPtr, AtomicUsize, Ordering};

/// Lock 1 in the lock order: the global heap.
pub static GLOBAL_LOCK: RawLock = RawLock::new("GLOBAL_LOCK");
/// Serves threads past their exit destructor, under [`GLOBAL_LOCK`]. Never registered: it
/// neither adopts nor is abandoned.
pub static GLOBAL_HEAP: StaticHeap = StaticHeap::new();
/// Lock 2 in the lock order: the heap lists, every entry's `state` and list links, and the
/// entries' memory.
pub static HEAPS_LOCK: RawLock = RawLock::new("HEAPS_LOCK");

/// Lifecycle state of a heap, changed under [`HEAPS_LOCK`].
#[derive(Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
enum State {
    /// Owned by a running thread.
    Active = 1,
    /// Its thread exited while it still owned live blocks.
    Abandoned = 2,
    /// Owns nothing; ready for a new thread.
    Free = 3,
    /// Belonged to a thread that did not survive a fork (its lists may be mid-update in the
    /// child): never used again.
    Orphaned = 4,
}

/// A registered heap and its bookkeeping. `heap` comes first, so a `*mut Heap` handed out by
/// [`take_heap`] is also a pointer to its entry.
#[repr(C)]
pub struct Entry {
    /// The heap.
    heap: Heap,
    /// Lifecycle state (a `State`), under HEAPS_LOCK.
    state: u32,
    /// Next entry on the abandoned or free list, under HEAPS_LOCK.
    list_next: *mut Entry,
    /// For [`crate::thread`], written only by the heap's thread: whether the thread-exit key
    /// holds this heap.
    pub key_registered: bool,
    /// For [`crate::thread`], written only by the heap's thread: whether its next slow path
    /// should check that the key still holds this heap.
    pub key_verify: bool,
}

static ABANDONED: AtomicPtr<Entry> = AtomicPtr::new(ptr::null_mut());
static FREE: AtomicPtr<Entry> = AtomicPtr::new(ptr::null_mut());
/// Number of abandoned heaps (read without the lock as a hint).
static ABANDONED_COUNT: AtomicUsize = AtomicUsize::new(0);
/// Bump region for entries, under HEAPS_LOCK.
static META_CUR: AtomicUsize = AtomicUsize::new(0);
static META_END: AtomicUsize = AtomicUsize::new(0);

/// The entry of `h`, a heap from [`take_heap`].
#[inline]
pub fn entry(h: *mut Heap) -> *mut Entry {
    h.cast()
}

/// Bump-allocate a 64-byte aligned entry holding an empty heap. Caller holds HEAPS_LOCK.
fn meta_alloc() -> *mut Entry {
    let size = core::mem::size_of::<Entry>().next_multiple_of(64);
    let mut cur = META_CUR.load(Ordering::Relaxed);
    if cur == 0 || cur + size > META_END.load(Ordering::Relaxed) {
        let chunk = 64 * PAGE;
        let p = os::map(chunk);
        if p.is_null() {
            return ptr::null_mut();
        }
        cur = p as usize;
        META_END.store(cur + chunk, Ordering::Relaxed);
    }
    META_CUR.store(cur + size, Ordering::Relaxed);
    let e = cur as *mut Entry;
    // SAFETY: fresh, exclusively owned memory of the right size and alignment.
    unsafe {
        e.write(Entry {
            heap: Heap::new(),
            state: 0,
            list_next: ptr::null_mut(),
            key_registered: false,
            key_verify: false,
        })
    };
    // SAFETY: a new heap, published once, under HEAPS_LOCK.
    unsafe { Heap::publish(&raw mut (*e).heap) };
    e
}

/// Pop the head of `list`. Caller holds HEAPS_LOCK.
fn pop(list: &AtomicPtr<Entry>) -> *mut Entry {
    let e = list.load(Ordering::Relaxed);
    if !e.is_null() {
        // SAFETY: entries on the lists are valid; HEAPS_LOCK held.
        list.store(unsafe { (*e).list_next }, Ordering::Relaxed);
    }
    e
}

/// A heap for a new thread: a free one, else an abandoned one (with its slabs), else a new
/// one. Null only when out of memory.
pub fn take_heap() -> *mut Heap {
    let _g = Guard::new(&HEAPS_LOCK);
    let mut e = pop(&FREE);
    if e.is_null() {
        e = pop(&ABANDONED);
        if !e.is_null() {
            ABANDONED_COUNT.fetch_sub(1, Ordering::Relaxed);
        } else {
            e = meta_alloc();
            if e.is_null() {
                return ptr::null_mut();
            }
        }
    }
    // SAFETY: e is off every list now: exclusively ours.
    unsafe {
        (*e).state = State::Active as u32;
        (*e).list_next = ptr::null_mut();
        (*e).key_registered = false;
        (*e).key_verify = false;
        (*e).heap.set_keys();
        (*e).heap.revive();
        &raw mut (*e).heap
    }
}

/// Release what a heap can give back and put it on the abandoned or free list.
///
/// # Safety
/// `h` came from [`take_heap`] and the caller owns it exclusively (its thread is gone or is
/// the caller, which will not use it again).
pub unsafe fn abandon(h: *mut Heap) {
    let e = entry(h);
    // SAFETY: exclusive ownership per the contract.
    let heap = unsafe { &mut (*e).heap };
    heap.flush_hot();
    heap.collect_remote();
    heap.release_empty_slabs();
    heap.flush_runs();
    heap.set_exited();
    let empty = heap.owns_nothing();
    let _g = Guard::new(&HEAPS_LOCK);
    // SAFETY: the entry's list fields are ours under HEAPS_LOCK.
    unsafe {
        if empty {
            (*e).state = State::Free as u32;
            (*e).list_next = FREE.load(Ordering::Relaxed);
            FREE.store(e, Ordering::Relaxed);
        } else {
            (*e).state = State::Abandoned as u32;
            (*e).list_next = ABANDONED.load(Ordering::Relaxed);
            ABANDONED.store(e, Ordering::Relaxed);
            ABANDONED_COUNT.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Whether any heap is abandoned (a hint, read without the lock).
#[inline]
pub fn has_abandoned() -> bool {
    ABANDONED_COUNT.load(Ordering::Relaxed) != 0
}

/// Move one abandoned heap's slabs into `me`, and put the emptied heap on the free list.
/// Returns whether there was one.
pub fn adopt_into(me: &mut Heap) -> bool {
    let victim = {
        let _g = Guard::new(&HEAPS_LOCK);
        let v = pop(&ABANDONED);
        if v.is_null() {
            return false;
        }
        ABANDONED_COUNT.fetch_sub(1, Ordering::Relaxed);
        v
    };
    // SAFETY: victim is off every list: we own it exclusively, and it is not `me` (which is
    // active).
    me.absorb(unsafe { &mut (*victim).heap });
    let _g = Guard::new(&HEAPS_LOCK);
    // SAFETY: the entry's list fields are ours under HEAPS_LOCK.
    unsafe {
        (*victim).state = State::Free as u32;
        (*victim).list_next = FREE.load(Ordering::Relaxed);
    }
    FREE.store(victim, Ordering::Relaxed);
    true
}

/// In a fork child: every active heap but `me` belonged to a thread that is gone, and may be
/// half-updated: orphan it. Its blocks that the child frees land on their slabs' remote lists
/// (a CAS each, and one to name the slab on the heap's stack: safe whatever the heap's lists
/// look like) and stay there.
///
/// # Safety
/// Only in a fork child, single-threaded, with HEAPS_LOCK reset.
pub unsafe fn orphan_all_but(me: *mut Heap) {
    let mut h = Heap::first_of_all();
    while !h.is_null() {
        let e = entry(h);
        // SAFETY: single-threaded child; every heap on the list is an entry's, and entries
        // are never freed.
        unsafe {
            if h != me && (*e).state == State::Active as u32 {
                (*e).state = State::Orphaned as u32;
            }
            h = Heap::next_of_all(h);
        }
    }
}

/// What every heap caches, the global heap's included (statistics; a snapshot): bytes of free
/// blocks in hot lists and on slabs' remote lists, and bytes of free runs in run caches.
pub fn cached_bytes() -> (usize, usize) {
    let _g = Guard::new(&HEAPS_LOCK);
    let (mut hot, mut sent, mut collected, mut run_pages) = (0, Heap::orphan_sent(), 0, 0);
    let mut add = |h: *const Heap| {
        // SAFETY: heaps are never unmapped.
        let ((a, b, c), r) = unsafe { (Heap::cache_counts(h), Heap::cached_run_pages(h)) };
        hot += a;
        sent += b;
        collected += c;
        run_pages += r;
    };
    let mut h = Heap::first_of_all();
    while !h.is_null() {
        add(h);
        // SAFETY: heaps are never unmapped.
        h = unsafe { Heap::next_of_all(h) };
    }
    add(GLOBAL_HEAP.get());
    (hot + sent.saturating_sub(collected), run_pages * PAGE)
}

/// Number of heaps ever created and of abandoned heaps (statistics).
pub fn heap_counts() -> (usize, usize) {
    let _g = Guard::new(&HEAPS_LOCK);
    let mut n = 0;
    let mut h = Heap::first_of_all();
    while !h.is_null() {
        n += 1;
        // SAFETY: heaps are never unmapped.
        h = unsafe { Heap::next_of_all(h) };
    }
    (n, ABANDONED_COUNT.load(Ordering::Relaxed))
}

//! L13: threads — which heap a thread allocates from, from its first malloc to its exit — and
//! the small-block entry points that start from the thread's heap.
//!
//! A thread's first allocation misses on the static empty heap and lands in
//! [`alloc_small_slow`], which sets the process up once ([`global_init`]: the thread-exit key
//! and the fork handlers) and gives the thread a heap from the registry. A pthread key's
//! destructor hands the heap back to the registry when the thread exits; from then on the
//! thread's slot points at the dead heap and it allocates from the registry's global heap,
//! under its lock.

use crate::debug::misuse;
use crate::fork;
use crate::heap::{self, Heap};
use crate::os;
use crate::pages;
use crate::purge;
use crate::registry::{self, GLOBAL_HEAP, GLOBAL_LOCK};
use crate::secret;
use crate::size_class::SizeClass;
use crate::span::{Block, Span};
use crate::sync::Guard;
use crate::tls::{self, DEAD_HEAP, EMPTY_HEAP};
use core::ptr;
use core::sync::atomic::{AtomicU32, Ordering};

/// The pthread key whose destructor hands a heap back; `u32::MAX` until created.
static KEY: AtomicU32 = AtomicU32::new(u32::MAX);
/// 0 = not started, 1 = in progress, 2 = done.
static INIT: AtomicU32 = AtomicU32::new(0);

/// One-time process set-up: the thread-exit key and the fork handlers. Everything else the
/// allocator needs is zero-initialised static data, so a call that re-enters from inside this
/// function (pthread_atfork may allocate) simply proceeds.
fn global_init() {
    if INIT.load(Ordering::Acquire) == 2 {
        return;
    }
    if INIT
        .compare_exchange(0, 1, Ordering::Acquire, Ordering::Relaxed)
        .is_err()
    {
        return;
    }
    if let Some(k) = os::key_create(thread_exit) {
        KEY.store(k, Ordering::Release);
    }
    fork::register();
    INIT.store(2, Ordering::Release);
}

/// Create the thread-exit key at load time, while few keys exist, so it is one of the first 32
/// (whose slots glibc keeps inline, without the calloc that the nested case in
/// [`register_exit`] needs).
extern "C" fn load_time_init() {
    global_init();
}

#[used]
#[unsafe(link_section = ".init_array")]
static LOAD_TIME_INIT: extern "C" fn() = load_time_init;

/// Give the calling thread a heap. Returns null only when out of memory.
#[cold]
fn thread_init() -> *mut Heap {
    global_init();
    // global_init may have allocated (pthread_atfork), which installed a heap already.
    let cur = tls::heap();
    if cur != EMPTY_HEAP.get() {
        return cur;
    }
    let h = registry::take_heap();
    if h.is_null() {
        return h;
    }
    tls::set_heap(h);
    register_exit(h);
    h
}

/// The calling thread's own heap, given to it now if it has none yet (a thread whose first
/// requests are medium blocks, for its run cache); `None` for a thread past its exit
/// destructor, or when out of memory.
pub fn own_heap_or_init() -> Option<*mut Heap> {
    if tls::heap() == EMPTY_HEAP.get() && thread_init().is_null() {
        return None;
    }
    tls::own_heap()
}

/// Attach `h` to the thread-exit key if the key exists yet.
fn register_exit(h: *mut Heap) {
    let e = registry::entry(h);
    let k = KEY.load(Ordering::Acquire);
    if k != u32::MAX {
        // SAFETY: h is the calling thread's heap; these fields are its thread's.
        unsafe { (*e).key_registered = true };
        // May re-enter calloc for keys >= 32: the slot already holds h, so that works.
        os::key_set(k, h as *mut u8);
        // Only now: a slow path nested in key_set must not use up the check.
        // SAFETY: as above.
        unsafe { (*e).key_verify = true };
    }
}

/// Set the key again if a nested `pthread_setspecific` lost our value: when a thread's first
/// allocation is the `calloc` glibc makes inside `pthread_setspecific` for a key past the first
/// 32, and our key shares that second-level table, glibc's outer call overwrites the table our
/// inner call just filled.
#[cold]
fn verify_exit_key(h: *mut Heap) {
    // SAFETY: h is the calling thread's heap; the field is its thread's.
    unsafe { (*registry::entry(h)).key_verify = false };
    let k = KEY.load(Ordering::Acquire);
    if os::key_get(k) != h as *mut u8 {
        os::key_set(k, h as *mut u8);
    }
}

/// pthread key destructor: hand the exiting thread's heap back.
///
/// # Safety
/// Called by glibc at thread exit, on the exiting thread, with the value [`register_exit`]
/// attached to the key: that thread's heap (or null).
unsafe extern "C" fn thread_exit(arg: *mut libc::c_void) {
    let h = arg as *mut Heap;
    tls::set_heap(DEAD_HEAP.get());
    if h.is_null() {
        return;
    }
    // SAFETY: h was this thread's heap, from the registry; nobody else owns it.
    unsafe { registry::abandon(h) };
}

/// Allocate a block of class `c` for the calling thread. The fast path is a few
/// instructions: TLS read, then [`Heap::alloc_fast`].
#[inline(always)]
pub fn alloc_small(c: SizeClass) -> *mut u8 {
    alloc_small_in(tls::heap(), c)
}

/// [`alloc_small`] for a caller that already read the thread's heap: `h` is `tls::heap()`.
#[inline(always)]
pub fn alloc_small_in(h: *mut Heap, c: SizeClass) -> *mut u8 {
    xa_assert!(h == tls::heap());
    // SAFETY: h is the thread's heap or a static empty one.
    let p = unsafe { Heap::alloc_fast(h, c) };
    if !p.is_null() {
        return p;
    }
    alloc_small_slow(c, h)
}

#[cold]
#[inline(never)]
fn alloc_small_slow(c: SizeClass, h: *mut Heap) -> *mut u8 {
    let p = if h == EMPTY_HEAP.get() {
        if thread_init().is_null() {
            ptr::null_mut()
        } else {
            return alloc_small(c);
        }
    } else if h == DEAD_HEAP.get() {
        let _g = Guard::new(&GLOBAL_LOCK);
        // SAFETY: GLOBAL_HEAP is ours under GLOBAL_LOCK.
        let heap = unsafe { &mut *GLOBAL_HEAP.get() };
        heap.set_keys();
        refill_and_alloc(heap, c, false)
    } else {
        let e = registry::entry(h);
        // SAFETY: h is this thread's own heap, from the registry.
        let (registered, verify) = unsafe { ((*e).key_registered, (*e).key_verify) };
        if !registered {
            register_exit(h);
        } else if verify {
            verify_exit_key(h);
        }
        // SAFETY: h is this thread's own heap; the key calls above (which may re-enter
        // malloc) are over, so this is the only reference to it.
        let heap = unsafe { &mut *h };
        heap.check_hot(c);
        let mut p = ptr::null_mut();
        if heap.has_borrowed(c) {
            p = heap.pop_borrowed(c);
        } else if heap.would_carve(c) {
            // Blocks an idle heap's thread left untaken before fresh memory.
            p = heap.borrow(c);
        }
        if !p.is_null() {
            return p;
        }
        let p = heap.refill_current(c);
        if !p.is_null() {
            return p;
        }
        refill_and_alloc(heap, c, true)
    };
    if p.is_null() {
        os::set_errno(libc::ENOMEM);
    }
    p
}

/// The slow path of a heap: collect remote frees, check the purge clock, then find a slab with
/// a free block, adopting an abandoned heap's slabs, or borrowing blocks an idle heap's thread
/// left untaken (both if `may_adopt`: a registered heap), before making a new slab.
/// (Kept foreign blocks stay until the tick: sending them home here, on every refill, cost
/// larson about 9% more instructions under callgrind, 47.1M against 43.2M, and took away
/// their reuse.)
fn refill_and_alloc(heap: &mut Heap, c: SizeClass, may_adopt: bool) -> *mut u8 {
    heap.collect_remote();
    purge::tick();
    let mut p = heap.alloc_from_queues(c);
    if p.is_null() && may_adopt && registry::has_abandoned() && registry::adopt_into(heap) {
        p = heap.alloc_from_queues(c);
    }
    if p.is_null() && may_adopt {
        p = heap.borrow(c);
    }
    if p.is_null() {
        p = heap.alloc_from_new_slab(c);
    }
    p
}

/// Free block `p` of slab `s` when the calling thread's heap is not `s`'s owner word: `s` is
/// one of its slabs on the full list, or another heap's slab. A marked block is a double
/// free. A thread with no heap yet gets one here: a thread that only frees what others
/// allocate (a consumer) then sends its blocks home in chains, one CAS per chain, where a
/// heapless thread pushes each block alone and counts it on one global counter (the lock
/// `add` on that counter's line, shared by every such thread, was two thirds of the consumer's
/// `free` samples in `prodcons -m batch`). Cold.
///
/// # Safety
/// `s` is a live slab and `p` a block start of it that the caller gives up.
#[cold]
#[inline(never)]
pub unsafe fn free_foreign(s: *mut Span, p: *mut u8) {
    let b = p as *mut Block;
    let mut h = tls::heap();
    // SAFETY: a live block keeps its slab valid; when we own it, its lists are ours, and h is
    // this thread's heap with no other reference to it live.
    unsafe {
        if Block::is_marked(b, secret::keys().1) {
            misuse("free", "double free", p as usize);
        }
        if h == EMPTY_HEAP.get() {
            // (A thread past its exit destructor has the dead heap and stays heapless.)
            if let Some(own) = own_heap_or_init() {
                h = own;
            }
        }
        if (*s).owner() == h.cast() {
            Block::set_mark(b, secret::keys().1);
            return (*h).free_local(s, b);
        }
        if !tls::is_own(h) {
            return heap::remote_free(s, b, ptr::null_mut());
        }
        if Heap::keep_foreign(h, (*s).class(), b) || Heap::keep_lent(h, s, b) {
            return;
        }
        Heap::send_foreign(h, s, b)
    }
}

/// Take in the blocks other threads freed to the calling thread's heap.
pub fn collect_remote_current() {
    if let Some(h) = tls::own_heap() {
        // SAFETY: our own heap.
        unsafe { (*h).collect_remote() };
    }
}

/// Empty the calling thread's heap as far as possible (flush its hot lists, collect remote
/// frees, release empty slabs, give its cached runs back), for `malloc_trim`.
pub fn trim_current() {
    if let Some(h) = tls::own_heap() {
        // SAFETY: our own heap.
        let heap = unsafe { &mut *h };
        heap.flush_hot();
        heap.collect_remote();
        heap.release_empty_slabs();
        heap.flush_runs();
    }
}

/// Check the calling thread's heap and every arena (tests and debugging).
pub fn check_current() {
    if let Some(h) = tls::own_heap() {
        // SAFETY: our own heap.
        unsafe { (*h).check_invariants() };
    }
    pages::check_all();
}

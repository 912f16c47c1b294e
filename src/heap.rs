//! L4: per-thread heaps.
//!
//! Each thread allocates from its own [`Heap`], found through one initial-exec TLS slot (three
//! instructions, no `__tls_get_addr` call: see [`tls_heap`]). A new thread's slot starts pointing
//! at [`EMPTY_HEAP`], whose every class points at an empty span, so the fast path has no
//! "initialised?" test: its first allocation simply misses and the slow path installs a real heap.
//!
//! A heap owns slabs. The owner allocates and frees on them with no lock and no atomic
//! instruction. A thread that frees a block of a slab it does not own pushes the block onto the
//! owning heap's `remote` stack (one CAS); the owner takes the whole stack with one swap in its
//! slow path and frees the blocks locally.
//!
//! Heaps are never unmapped. When a thread exits, a pthread key destructor empties its heap
//! where it can and then marks it abandoned (if it still owns live blocks) or free. A new
//! thread takes a free or abandoned heap over whole, and a thread that runs short of slabs
//! adopts an abandoned heap's slabs, so live slabs of dead threads are reused. After its
//! destructor ran, a thread's slot points at [`DEAD_HEAP`]: it still allocates, through the
//! locked global heap, and its frees take the remote path.
//!
//! In a fork child, the heaps of the parent's other threads are orphaned, never adopted: their
//! threads may have been in the middle of changing them. Their free blocks are lost to the child
//! (the memory stays mapped, shared copy-on-write with the parent).

use crate::buddy::{self, RUN_ALIGN};
use crate::os::{self, PAGE};
use crate::size_class::{CLASS_SIZE, NUM_CLASSES, SLAB_PAGES, SizeClass};
use crate::slab::{Block, FULL_TAG, Kind, Span};
use crate::sync::{Guard, RawLock};
use core::ptr;
use core::sync::atomic::{AtomicPtr, AtomicU32, AtomicUsize, Ordering};

/// A doubly linked list of spans.
#[derive(Clone, Copy)]
#[repr(C)]
pub struct SpanList {
    /// First span, or null.
    pub head: *mut Span,
    /// Last span, or null.
    pub tail: *mut Span,
    /// Number of spans on the list.
    pub len: u32,
}

impl SpanList {
    const EMPTY: SpanList = SpanList {
        head: ptr::null_mut(),
        tail: ptr::null_mut(),
        len: 0,
    };

    /// # Safety
    /// `s` is a valid span on no list; the caller owns both.
    unsafe fn push_back(&mut self, s: *mut Span) {
        // SAFETY: forwarded contract.
        unsafe {
            (*s).next = ptr::null_mut();
            (*s).prev = self.tail;
            if self.tail.is_null() {
                self.head = s;
            } else {
                (*self.tail).next = s;
            }
        }
        self.tail = s;
        self.len += 1;
    }

    /// # Safety
    /// `s` is a valid span on no list; the caller owns both.
    unsafe fn push_front(&mut self, s: *mut Span) {
        // SAFETY: forwarded contract.
        unsafe {
            (*s).prev = ptr::null_mut();
            (*s).next = self.head;
            if self.head.is_null() {
                self.tail = s;
            } else {
                (*self.head).prev = s;
            }
        }
        self.head = s;
        self.len += 1;
    }

    /// # Safety
    /// `s` is on this list; the caller owns both.
    unsafe fn remove(&mut self, s: *mut Span) {
        // SAFETY: forwarded contract.
        unsafe {
            let (p, n) = ((*s).prev, (*s).next);
            if p.is_null() {
                self.head = n;
            } else {
                (*p).next = n;
            }
            if n.is_null() {
                self.tail = p;
            } else {
                (*n).prev = p;
            }
            (*s).next = ptr::null_mut();
            (*s).prev = ptr::null_mut();
        }
        self.len -= 1;
    }
}

/// Keeps a field on its own cache line so remote pushes do not disturb the owner's lines.
#[repr(C, align(64))]
pub struct Padded<T>(pub T);

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

/// A thread's heap.
///
/// Invariants (checked by [`Heap::check_invariants`]):
/// - `direct[c]` is `queues[c].head`, or the shared empty span when that queue is empty;
/// - `hot[c]` heads a list (linked through the blocks' first word) of
///   `HOT_LIMIT[c] - hot_room[c]` block starts of slabs of class `c` (this heap's, or blocks of
///   other heaps' slabs that this thread freed), each on none of its slab's free lists and
///   counted in its slab's `used`;
/// - every span on `queues[c]` is a slab of class `c` whose `heap` is `self` (no full tag);
///   every span on `full` has `heap == self | FULL_TAG`;
/// - each owned span is on exactly one of those lists.
#[repr(C)]
pub struct Heap {
    /// Span to allocate from for each class.
    pub direct: [*mut Span; NUM_CLASSES],
    /// Per class, the few blocks this thread freed last (at most `HOT_LIMIT[c]`, 16 for
    /// classes up to 1 KiB, fewer above, so at most 16 KiB each), handed out first, last freed
    /// first, by the next mallocs of the class: the malloc-free-malloc cycle and churn reuse
    /// blocks still in the cache, with no slab bookkeeping. A held block still counts as used
    /// in its slab (so the slab is never released under it), and goes back to the slab in
    /// [`Heap::flush_hot`] (thread exit, `malloc_trim`). A list rather than one slot, so the
    /// "is there one?" branches are predictable when classes alternate at random.
    hot: [*mut Block; NUM_CLASSES],
    /// Free places left in each `hot` list (never negative outside `free_small`).
    hot_room: [i8; NUM_CLASSES],
    /// Slabs with (possibly) free blocks, per class.
    queues: [SpanList; NUM_CLASSES],
    /// Slabs found with no free block.
    full: SpanList,
    /// Lifecycle state (a `State`), under HEAPS_LOCK.
    state: u32,
    /// Next heap of all heaps ever made (for fork), under HEAPS_LOCK.
    all_next: *mut Heap,
    /// Next heap on the abandoned or free list, under HEAPS_LOCK.
    list_next: *mut Heap,
    /// Whether the thread-exit key was set to this heap (it cannot be when the heap was made
    /// while another thread was still creating the key; the slow path retries).
    registered: bool,
    /// Whether the next slow path should check that the key still holds this heap. When a
    /// thread's first allocation is the `calloc` glibc makes inside `pthread_setspecific` for a
    /// key past the first 32, and our key shares that second-level table, glibc's outer call
    /// overwrites the table our inner call just filled, losing our value.
    verify_key: bool,
    /// Counts down the frees that fill a `hot` slot or empty the class's current slab (what a
    /// program can repeat forever without reaching a slow path); at zero the purge clock is
    /// checked, so a program that freed a lot and now only cycles a few blocks still gives
    /// memory back.
    tick_countdown: u32,
    /// Blocks freed by other threads, linked through their first word.
    remote: Padded<AtomicPtr<Block>>,
}

/// A `Heap` that may live in a `static`.
#[repr(transparent)]
pub struct StaticHeap(pub core::cell::UnsafeCell<Heap>);
// SAFETY: EMPTY_HEAP and DEAD_HEAP are never written (their spans are empty, so every write path
// is cut off before touching them); GLOBAL_HEAP is only used under GLOBAL_LOCK.
unsafe impl Sync for StaticHeap {}

/// A span with no blocks (and the page-map marker for freed runs).
#[repr(transparent)]
pub struct StaticSpan(pub core::cell::UnsafeCell<Span>);
// SAFETY: never written: pop on an empty span writes nothing, and no heap owns it.
unsafe impl Sync for StaticSpan {}

/// The empty span every `direct` slot of a fresh heap points to.
pub static EMPTY_SPAN: StaticSpan = StaticSpan(core::cell::UnsafeCell::new(Span::empty()));

/// Most blocks each class's `hot` list holds: 16, or fewer to keep a list within 16 KiB.
const HOT_LIMIT: [i8; NUM_CLASSES] = {
    let mut t = [0i8; NUM_CLASSES];
    let mut c = 0;
    while c < NUM_CLASSES {
        let n = 16384 / CLASS_SIZE[c] as usize;
        t[c] = if n > 16 {
            16
        } else if n < 1 {
            1
        } else {
            n as i8
        };
        c += 1;
    }
    t
};

/// Frees into `hot` lists or emptying a current slab between two checks of the purge clock.
const TICK_EVERY: u32 = 256;

const fn heap_init() -> Heap {
    Heap {
        direct: [EMPTY_SPAN.0.get(); NUM_CLASSES],
        hot: [ptr::null_mut(); NUM_CLASSES],
        hot_room: HOT_LIMIT,
        queues: [SpanList::EMPTY; NUM_CLASSES],
        full: SpanList::EMPTY,
        state: 0,
        all_next: ptr::null_mut(),
        list_next: ptr::null_mut(),
        registered: false,
        verify_key: false,
        tick_countdown: TICK_EVERY,
        remote: Padded(AtomicPtr::new(ptr::null_mut())),
    }
}

/// The heap of a thread that has not allocated yet.
pub static EMPTY_HEAP: StaticHeap = StaticHeap(core::cell::UnsafeCell::new(heap_init()));
/// The heap of a thread whose exit destructor already ran.
pub static DEAD_HEAP: StaticHeap = StaticHeap(core::cell::UnsafeCell::new(heap_init()));
/// Serves threads past their exit destructor, under GLOBAL_LOCK.
static GLOBAL_HEAP: StaticHeap = StaticHeap(core::cell::UnsafeCell::new(heap_init()));

/// Lock 1 in the lock order: the global heap.
pub static GLOBAL_LOCK: RawLock = RawLock::new();
/// Lock 2 in the lock order: heap lists (all, abandoned, free) and heap metadata memory.
pub static HEAPS_LOCK: RawLock = RawLock::new();
static ALL_HEAPS: AtomicPtr<Heap> = AtomicPtr::new(ptr::null_mut());
static ABANDONED: AtomicPtr<Heap> = AtomicPtr::new(ptr::null_mut());
static FREE_HEAPS: AtomicPtr<Heap> = AtomicPtr::new(ptr::null_mut());
/// Number of abandoned heaps (read without the lock as a hint).
static ABANDONED_COUNT: AtomicUsize = AtomicUsize::new(0);
/// Bump region for heap structs.
static META_CUR: AtomicUsize = AtomicUsize::new(0);
static META_END: AtomicUsize = AtomicUsize::new(0);

// The thread's heap pointer lives in one initial-exec TLS slot whose initial value (copied into
// every new thread) is the address of EMPTY_HEAP.
core::arch::global_asm!(
    ".pushsection .tdata,\"awT\",@progbits",
    ".p2align 3",
    ".globl xalloc_tls_heap",
    ".hidden xalloc_tls_heap",
    ".type xalloc_tls_heap,@object",
    ".size xalloc_tls_heap, 8",
    "xalloc_tls_heap:",
    ".quad {empty}",
    ".popsection",
    empty = sym EMPTY_HEAP,
);

/// The calling thread's heap: `mov off(%rip),%rax; mov %fs:(%rax),%rax` — no call.
#[inline(always)]
pub fn tls_heap() -> *mut Heap {
    let off: usize;
    let h: *mut Heap;
    // SAFETY: reads the GOT entry holding our TLS slot's offset from the thread pointer, then
    // the slot itself; both are valid for every thread for the life of the process.
    unsafe {
        core::arch::asm!(
            "mov {off}, qword ptr [rip + xalloc_tls_heap@GOTTPOFF]",
            "mov {h}, qword ptr fs:[{off}]",
            off = out(reg) off,
            h = out(reg) h,
            options(nostack, readonly, preserves_flags, pure)
        );
    }
    let _ = off;
    h
}

fn set_tls_heap(h: *mut Heap) {
    // SAFETY: writes this thread's own TLS slot (see tls_heap).
    unsafe {
        core::arch::asm!(
            "mov {off}, qword ptr [rip + xalloc_tls_heap@GOTTPOFF]",
            "mov qword ptr fs:[{off}], {h}",
            off = out(reg) _,
            h = in(reg) h,
            options(nostack, preserves_flags)
        );
    }
}

/// The pthread key whose destructor tears a heap down; `u32::MAX` until created.
static KEY: AtomicU32 = AtomicU32::new(u32::MAX);
/// 0 = not started, 1 = in progress, 2 = done.
static INIT: AtomicU32 = AtomicU32::new(0);

/// One-time process set-up: the thread-exit key and fork handlers. Everything else the
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
    os::atfork(fork_prepare, fork_parent, fork_child);
    crate::stats::register_exit_hook();
    INIT.store(2, Ordering::Release);
}

/// Bump-allocate a zeroed, 64-byte aligned heap struct. Caller holds HEAPS_LOCK.
fn meta_alloc_heap() -> *mut Heap {
    let size = (core::mem::size_of::<Heap>() + 63) & !63;
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
    let h = cur as *mut Heap;
    // SAFETY: fresh, exclusively owned memory of the right size and alignment.
    unsafe { h.write(heap_init()) };
    h
}

/// Give the calling thread a heap. Returns null only when out of memory.
#[cold]
fn thread_init() -> *mut Heap {
    global_init();
    // global_init may have allocated (pthread_atfork, atexit), which installed a heap already.
    let cur = tls_heap();
    if cur != EMPTY_HEAP.0.get() {
        return cur;
    }
    let h = {
        let _g = Guard::new(&HEAPS_LOCK);
        let mut h = FREE_HEAPS.load(Ordering::Relaxed);
        if !h.is_null() {
            // SAFETY: heaps on the free list are valid; HEAPS_LOCK held.
            FREE_HEAPS.store(unsafe { (*h).list_next }, Ordering::Relaxed);
        } else {
            h = ABANDONED.load(Ordering::Relaxed);
            if !h.is_null() {
                // SAFETY: as above.
                ABANDONED.store(unsafe { (*h).list_next }, Ordering::Relaxed);
                ABANDONED_COUNT.fetch_sub(1, Ordering::Relaxed);
            } else {
                h = meta_alloc_heap();
                if h.is_null() {
                    return h;
                }
                // SAFETY: h is fresh; HEAPS_LOCK held.
                unsafe { (*h).all_next = ALL_HEAPS.load(Ordering::Relaxed) };
                ALL_HEAPS.store(h, Ordering::Relaxed);
            }
        }
        // SAFETY: h is now exclusively ours.
        unsafe {
            (*h).state = State::Active as u32;
            (*h).list_next = ptr::null_mut();
            (*h).registered = false;
            (*h).verify_key = false;
        }
        h
    };
    set_tls_heap(h);
    register_exit(h);
    h
}

/// Attach `h` to the thread-exit key if the key exists yet.
fn register_exit(h: *mut Heap) {
    let k = KEY.load(Ordering::Acquire);
    if k != u32::MAX {
        // SAFETY: h is the calling thread's heap.
        unsafe { (*h).registered = true };
        // May re-enter calloc for keys >= 32: the slot already holds h, so that works.
        os::key_set(k, h as *mut u8);
        // Only now: a slow path nested in key_set must not use up the check.
        // SAFETY: as above.
        unsafe { (*h).verify_key = true };
    }
}

/// Set the key again if a nested `pthread_setspecific` lost our value (see `verify_key`).
#[cold]
fn verify_exit_key(h: *mut Heap) {
    // SAFETY: h is the calling thread's heap.
    unsafe { (*h).verify_key = false };
    let k = KEY.load(Ordering::Acquire);
    if os::key_get(k) != h as *mut u8 {
        os::key_set(k, h as *mut u8);
    }
}

/// Create the thread-exit key at load time, while few keys exist, so it is one of the first 32
/// (whose slots glibc keeps inline, without the calloc that the nested case above needs).
extern "C" fn load_time_init() {
    global_init();
}

#[used]
#[unsafe(link_section = ".init_array")]
static LOAD_TIME_INIT: extern "C" fn() = load_time_init;

/// pthread key destructor: tear the exiting thread's heap down.
unsafe extern "C" fn thread_exit(arg: *mut libc::c_void) {
    let h = arg as *mut Heap;
    set_tls_heap(DEAD_HEAP.0.get());
    if h.is_null() {
        return;
    }
    // SAFETY: h was this thread's heap; nobody else owns it.
    unsafe { abandon(h) };
}

/// Release what a heap can give back and put it on the abandoned or free list.
///
/// # Safety
/// The caller exclusively owns `h` (its thread is gone or is the caller).
unsafe fn abandon(h: *mut Heap) {
    // SAFETY: exclusive ownership per the contract.
    let heap = unsafe { &mut *h };
    heap.flush_hot(h);
    heap.collect_remote(h);
    heap.release_empty_slabs();
    let empty = heap.full.len == 0 && heap.queues.iter().all(|q| q.len == 0);
    let _g = Guard::new(&HEAPS_LOCK);
    if empty {
        heap.state = State::Free as u32;
        heap.list_next = FREE_HEAPS.load(Ordering::Relaxed);
        FREE_HEAPS.store(h, Ordering::Relaxed);
    } else {
        heap.state = State::Abandoned as u32;
        heap.list_next = ABANDONED.load(Ordering::Relaxed);
        ABANDONED.store(h, Ordering::Relaxed);
        ABANDONED_COUNT.fetch_add(1, Ordering::Relaxed);
    }
}

/// Return an empty slab's pages to the buddy.
///
/// # Safety
/// `s` is an owned slab with `used == 0`, on no list.
unsafe fn release_slab(s: *mut Span) {
    // SAFETY: forwarded contract.
    let span = unsafe { &mut *s };
    xa_assert!(span.used == 0);
    span.kind = Kind::Unused;
    span.div_magic = 0;
    span.start_limit = 0;
    span.heap.store(ptr::null_mut(), Ordering::Relaxed);
    // SAFETY: the span's arena is live.
    let arena = unsafe { &*span.arena };
    arena.map_pages(span.idx as usize, span.pages as usize, freed_marker());
    // SAFETY: the run is unused and unmapped from the page map.
    unsafe { buddy::free_pages(span.arena, span.idx as usize, span.pages as usize) };
}

/// The page-map entry of freed runs: a span no heap owns, of kind `Unused`, in which no
/// pointer is a block start, so `free` of a pointer into a freed run reports a double free.
#[inline]
pub fn freed_marker() -> *mut Span {
    static FREED: StaticSpan = StaticSpan(core::cell::UnsafeCell::new(Span::empty()));
    FREED.0.get()
}

impl Heap {
    /// Point `direct[c]` at the head of the class queue, or the empty span.
    #[inline]
    fn sync_direct(&mut self, c: SizeClass) {
        let h = self.queues[c].head;
        self.direct[c] = if h.is_null() { EMPTY_SPAN.0.get() } else { h };
    }

    /// Take every block other threads freed to this heap and free it locally (or forward it
    /// to the slab's current owner if the slab changed hands).
    fn collect_remote(&mut self, me: *mut Heap) {
        if self.remote.0.load(Ordering::Relaxed).is_null() {
            return;
        }
        let list = self.remote.0.swap(ptr::null_mut(), Ordering::Acquire);
        // SAFETY: the list holds live blocks freed to this heap, now ours.
        unsafe { self.take_blocks(me, list) };
    }

    /// Free every block of `list` (linked through their first word): locally when its slab is
    /// ours, else by forwarding it to the slab's current owner (the slab changed hands).
    ///
    /// # Safety
    /// `me` is this heap, owned by the caller; the blocks are live blocks handed to us.
    unsafe fn take_blocks(&mut self, me: *mut Heap, mut b: *mut Block) {
        while !b.is_null() {
            // SAFETY: the caller hands us live blocks.
            let next = unsafe { (*b).next };
            let s = buddy::span_of(b as usize);
            // SAFETY: a block in transit keeps its slab alive.
            if unsafe { (*s).owner() } == me {
                // SAFETY: we own s.
                unsafe { self.free_local(s, b) };
            } else {
                // SAFETY: s is a live slab.
                unsafe { remote_free(s, b) };
            }
            b = next;
        }
    }

    /// Give every block held in `hot` back to its slab (or its slab's owner). `me` is this
    /// heap.
    fn flush_hot(&mut self, me: *mut Heap) {
        for (c, &limit) in HOT_LIMIT.iter().enumerate() {
            let list = self.hot[c];
            self.hot[c] = ptr::null_mut();
            self.hot_room[c] = limit;
            // SAFETY: hot blocks are live blocks this thread gave up (type invariant).
            unsafe { self.take_blocks(me, list) };
        }
    }

    /// Return every empty slab on the class queues to the buddy.
    fn release_empty_slabs(&mut self) {
        for c in 0..NUM_CLASSES {
            let mut s = self.queues[c].head;
            while !s.is_null() {
                // SAFETY: spans on our queues are ours.
                let next = unsafe { (*s).next };
                // SAFETY: as above.
                if unsafe { (*s).used } == 0 {
                    // SAFETY: s is on queue c, empty and ours.
                    unsafe {
                        self.queues[c].remove(s);
                        release_slab(s);
                    }
                }
                s = next;
            }
            self.sync_direct(c);
        }
    }

    /// Free block `b` of our slab `s` (the path taken by collected remote frees and the cold
    /// part of the local fast path).
    ///
    /// # Safety
    /// We own `s`; `b` is a live block of it.
    unsafe fn free_local(&mut self, s: *mut Span, b: *mut Block) {
        // SAFETY: forwarded contract.
        unsafe {
            (*b).next = (*s).local_free;
            (*s).local_free = b;
            (*s).used -= 1;
            self.after_free(s);
        }
    }

    /// Housekeeping after a local free made `s` leave the full list or become empty.
    ///
    /// # Safety
    /// We own `s`.
    #[cold]
    pub unsafe fn after_free(&mut self, s: *mut Span) {
        // SAFETY: forwarded contract.
        let span = unsafe { &mut *s };
        let c = span.class as usize;
        if span.in_full() {
            // SAFETY: s is on our full list.
            unsafe {
                self.full.remove(s);
                span.set_in_full(false);
                self.queues[c].push_back(s);
            }
            self.sync_direct(c);
        }
        if span.used == 0 && self.queues[c].len > 1 {
            // Keep one empty slab per class to avoid thrashing; release the others.
            // SAFETY: s is on queue c.
            unsafe {
                self.queues[c].remove(s);
                release_slab(s);
            }
            self.sync_direct(c);
        }
    }

    /// Verify the invariants documented on the type. Aborts on violation.
    ///
    /// # Safety
    /// The caller owns the heap.
    pub unsafe fn check_invariants(&self, me: *mut Heap) {
        for (c, &head) in self.hot.iter().enumerate() {
            let (mut b, mut n) = (head, 0usize);
            while !b.is_null() {
                n += 1;
                xa_check!(n <= HOT_LIMIT[c] as usize);
                let s = buddy::span_of(b as usize);
                xa_check!(!s.is_null());
                // SAFETY: page-map entries are valid span headers.
                let span = unsafe { &*s };
                xa_check!(span.kind == Kind::Slab && span.class as usize == c);
                xa_check!(span.is_block_start(b as usize));
                // another heap's slab lists are its owner's to walk
                let lists = if span.owner() == me {
                    [span.free, span.local_free]
                } else {
                    [ptr::null_mut(); 2]
                };
                for head in lists {
                    let mut f = head;
                    while !f.is_null() {
                        xa_check!(f != b);
                        // SAFETY: blocks on our slab's lists are valid.
                        f = unsafe { (*f).next };
                    }
                }
                // SAFETY: hot blocks are ours (checked above).
                b = unsafe { (*b).next };
            }
            xa_check!(n == (HOT_LIMIT[c] - self.hot_room[c]) as usize);
        }
        for c in 0..NUM_CLASSES {
            let q = &self.queues[c];
            if q.head.is_null() {
                xa_check!(self.direct[c] == EMPTY_SPAN.0.get());
            } else {
                xa_check!(self.direct[c] == q.head);
            }
            let (mut s, mut n) = (q.head, 0);
            while !s.is_null() {
                // SAFETY: spans on our queues are ours.
                let span = unsafe { &*s };
                xa_check!(span.class as usize == c && !span.in_full() && span.kind == Kind::Slab);
                xa_check!(span.heap.load(Ordering::Relaxed) == me);
                // SAFETY: we own the span.
                unsafe { span.check_invariants() };
                n += 1;
                s = span.next;
            }
            xa_check!(n == q.len);
        }
        let (mut s, mut n) = (self.full.head, 0);
        while !s.is_null() {
            // SAFETY: spans on our full list are ours.
            let span = unsafe { &*s };
            xa_check!(span.in_full() && span.owner() == me);
            n += 1;
            s = span.next;
        }
        xa_check!(n == self.full.len);
    }
}

/// Push block `b` of slab `s` onto its owner's remote stack. One CAS.
///
/// # Safety
/// `s` is a live slab and `b` a live block of it that the caller gives up.
pub unsafe fn remote_free(s: *mut Span, b: *mut Block) {
    // SAFETY: a live block keeps its slab (and the slab's heap pointer) valid; heaps are never
    // unmapped.
    let owner = unsafe { (*s).owner() };
    // SAFETY: heaps are never unmapped.
    let stack = unsafe { &(*owner).remote.0 };
    let mut head = stack.load(Ordering::Relaxed);
    loop {
        // SAFETY: we own b until the CAS publishes it.
        unsafe { (*b).next = head };
        match stack.compare_exchange_weak(head, b, Ordering::Release, Ordering::Relaxed) {
            Ok(_) => return,
            Err(h) => head = h,
        }
    }
}

/// Allocate a block of class `c` for the calling thread. The fast path is a few
/// instructions: TLS read, take `hot[c]`, or pop from `direct[c]`.
#[inline(always)]
pub fn alloc_small(c: SizeClass) -> *mut u8 {
    let h = tls_heap();
    // SAFETY: h is the thread's heap (or a static empty one, whose hot slots are all null and
    // never written); direct[c] is always a valid span, and pop writes only to spans that have
    // free blocks, which only the owner has.
    unsafe {
        let hot = (*h).hot.get_unchecked_mut(c);
        let b = *hot;
        if !b.is_null() {
            *hot = (*b).next;
            *(*h).hot_room.get_unchecked_mut(c) += 1;
            return b as *mut u8;
        }
        let s = *(*h).direct.get_unchecked(c);
        let b = (*s).pop();
        if !b.is_null() {
            return b as *mut u8;
        }
        // The free list ran dry: take the blocks the owner freed since (a swap of two words;
        // large classes carve one block per page, so this keeps their malloc-free cycle out of
        // the slow path). The empty span never has local frees.
        let lf = (*s).local_free;
        if !lf.is_null() {
            (*s).local_free = ptr::null_mut();
            (*s).free = (*lf).next;
            (*s).used += 1;
            return lf as *mut u8;
        }
    }
    alloc_small_slow(h, c)
}

#[cold]
#[inline(never)]
fn alloc_small_slow(h: *mut Heap, c: SizeClass) -> *mut u8 {
    if h == EMPTY_HEAP.0.get() {
        let h = thread_init();
        if h.is_null() {
            os::set_errno(libc::ENOMEM);
            return ptr::null_mut();
        }
        return alloc_small(c);
    }
    if h == DEAD_HEAP.0.get() {
        let _g = Guard::new(&GLOBAL_LOCK);
        // SAFETY: GLOBAL_HEAP is ours under GLOBAL_LOCK.
        let p = unsafe { heap_alloc_slow(GLOBAL_HEAP.0.get(), c) };
        if p.is_null() {
            os::set_errno(libc::ENOMEM);
        }
        return p;
    }
    // SAFETY: h is this thread's own heap.
    let p = unsafe { heap_alloc_slow(h, c) };
    if p.is_null() {
        os::set_errno(libc::ENOMEM);
    }
    p
}

/// Find or make a slab with a free block of class `c` and pop one.
///
/// # Safety
/// The caller owns `h`.
unsafe fn heap_alloc_slow(h: *mut Heap, c: SizeClass) -> *mut u8 {
    // SAFETY: forwarded contract.
    let heap = unsafe { &mut *h };
    if h != GLOBAL_HEAP.0.get() {
        if !heap.registered {
            register_exit(h);
        } else if heap.verify_key {
            verify_exit_key(h);
        }
    }
    heap.collect_remote(h);
    buddy::tick();
    let mut adopted = false;
    loop {
        let mut s = heap.queues[c].head;
        while !s.is_null() {
            // SAFETY: spans on our queue are ours.
            let span = unsafe { &mut *s };
            // SAFETY: as above.
            if !span.free.is_null() || unsafe { span.refill() } {
                if heap.queues[c].head != s {
                    // SAFETY: s is on queue c.
                    unsafe {
                        heap.queues[c].remove(s);
                        heap.queues[c].push_front(s);
                    }
                }
                heap.sync_direct(c);
                // SAFETY: s now has a free block.
                return unsafe { span.pop() } as *mut u8;
            }
            let next = span.next;
            // SAFETY: s is on queue c; moving it to the full list.
            unsafe {
                heap.queues[c].remove(s);
                span.set_in_full(true);
                heap.full.push_back(s);
            }
            s = next;
        }
        heap.sync_direct(c);
        if !adopted && ABANDONED_COUNT.load(Ordering::Relaxed) != 0 && h != GLOBAL_HEAP.0.get() {
            adopted = true;
            // SAFETY: we own h.
            if unsafe { adopt_one(h) } {
                continue;
            }
        }
        break;
    }
    let s = new_slab(h, c);
    if s.is_null() {
        return ptr::null_mut();
    }
    // SAFETY: s is a fresh slab owned by h, on no list.
    unsafe {
        heap.queues[c].push_front(s);
        heap.sync_direct(c);
        (*s).refill();
        (*s).pop() as *mut u8
    }
}

/// Make a new empty slab of class `c` owned by `h`; null when out of memory.
fn new_slab(h: *mut Heap, c: SizeClass) -> *mut Span {
    let pages = SLAB_PAGES[c] as usize;
    let Some(run) = buddy::alloc_pages(pages, 2) else {
        return ptr::null_mut();
    };
    // SAFETY: the run and its span header are ours now.
    unsafe {
        let arena = &mut *run.arena;
        let s = arena.span_at(run.idx);
        let span = &mut *s;
        span.init_slab(h, c, CLASS_SIZE[c] as usize, run.addr() as *mut u8, pages);
        span.arena = run.arena;
        span.idx = run.idx as u32;
        span.zeroed = run.zeroed;
        arena.map_pages(run.idx, pages, s);
        s
    }
}

/// Take one abandoned heap's slabs into `me`. Returns whether anything was adopted.
///
/// # Safety
/// The caller owns `me`.
unsafe fn adopt_one(me: *mut Heap) -> bool {
    let victim = {
        let _g = Guard::new(&HEAPS_LOCK);
        let v = ABANDONED.load(Ordering::Relaxed);
        if v.is_null() {
            return false;
        }
        // SAFETY: heaps on the list are valid; HEAPS_LOCK held.
        ABANDONED.store(unsafe { (*v).list_next }, Ordering::Relaxed);
        ABANDONED_COUNT.fetch_sub(1, Ordering::Relaxed);
        v
    };
    // SAFETY: victim is off every list: we own it exclusively; we own me.
    let (v, heap) = unsafe { (&mut *victim, &mut *me) };
    for c in 0..NUM_CLASSES {
        while !v.queues[c].head.is_null() {
            let s = v.queues[c].head;
            // SAFETY: s is on v's queue; we own both heaps.
            unsafe {
                v.queues[c].remove(s);
                (*s).heap.store(me, Ordering::Release);
                heap.queues[c].push_back(s);
            }
        }
        v.sync_direct(c);
        heap.sync_direct(c);
    }
    while !v.full.head.is_null() {
        let s = v.full.head;
        // SAFETY: as above.
        unsafe {
            v.full.remove(s);
            (*s).heap
                .store(me.map_addr(|a| a | FULL_TAG), Ordering::Release);
            heap.full.push_back(s);
        }
    }
    // Blocks already pushed to the victim's stack belong to slabs that are now ours.
    let list = v.remote.0.swap(ptr::null_mut(), Ordering::Acquire);
    // SAFETY: live blocks in transit, now ours to free or forward.
    unsafe { heap.take_blocks(me, list) };
    let _g = Guard::new(&HEAPS_LOCK);
    v.state = State::Free as u32;
    v.list_next = FREE_HEAPS.load(Ordering::Relaxed);
    FREE_HEAPS.store(victim, Ordering::Relaxed);
    true
}

/// Free a block of a slab, from any thread. The local case is a handful of instructions: one
/// compare of the owner against the TLS heap, a push, a counter.
///
/// # Safety
/// `s` is the slab span `buddy::span_of(p)` returned (kind Slab) and `p` is a block start of it.
#[inline(always)]
pub unsafe fn free_small(s: *mut Span, p: *mut u8) {
    let h = tls_heap();
    let b = p as *mut Block;
    // SAFETY: s is a valid span; if we own it, the owner-only fields are ours.
    unsafe {
        if (*s).heap.load(Ordering::Relaxed) == h {
            let c = (*s).class as usize;
            let head = *(*h).hot.get_unchecked(c);
            if b == head {
                return double_free(p);
            }
            if !hot_push(h, c, head, b) {
                return free_to_slab(h, s, b);
            }
            return count_tick(h);
        }
        free_small_slow(s, b)
    }
}

/// Push `b` (not the list's head) onto `h`'s hot list of class `c`, whose head is `head`, if
/// there is room. The room count is decremented first, so the fast path pays a `dec` and a
/// sign test; when the list was full this returns false with the count one below zero, and
/// the caller restores it with [`hot_unpush`] (kept off the fast path, where restoring in
/// place cost three instructions per pair).
///
/// # Safety
/// `h` is the calling thread's own heap; `b` a live block start of class `c` that the caller
/// gives up.
#[inline(always)]
unsafe fn hot_push(h: *mut Heap, c: SizeClass, head: *mut Block, b: *mut Block) -> bool {
    // SAFETY: forwarded contract; c < NUM_CLASSES.
    unsafe {
        let room = (*h).hot_room.get_unchecked_mut(c);
        *room -= 1;
        if *room < 0 {
            return false;
        }
        (*b).next = head;
        *(*h).hot.get_unchecked_mut(c) = b;
    }
    true
}

/// Undo the decrement of a [`hot_push`] that returned false.
///
/// # Safety
/// As for [`hot_push`].
#[inline(always)]
unsafe fn hot_unpush(h: *mut Heap, c: SizeClass) {
    // SAFETY: forwarded contract; c < NUM_CLASSES.
    unsafe { *(*h).hot_room.get_unchecked_mut(c) += 1 };
}

/// Count one free that a program can repeat without reaching a slow path; every
/// [`TICK_EVERY`] of them, run [`tick_now`].
///
/// # Safety
/// `h` is the calling thread's own heap.
#[inline(always)]
unsafe fn count_tick(h: *mut Heap) {
    // SAFETY: forwarded contract.
    unsafe {
        (*h).tick_countdown -= 1;
        if (*h).tick_countdown == 0 {
            tick_now(h);
        }
    }
}

/// A local free whose class's hot list is full: give the block to its slab.
///
/// # Safety
/// `h` is the calling thread's heap, which owns slab `s`; `b` is a live block start of `s`;
/// a [`hot_push`] of `b` just returned false.
#[inline(never)]
unsafe fn free_to_slab(h: *mut Heap, s: *mut Span, b: *mut Block) {
    // SAFETY: forwarded contract.
    unsafe {
        let c = (*s).class as usize;
        hot_unpush(h, c);
        let lf = (*s).local_free;
        if b == lf {
            return double_free(b as *mut u8);
        }
        (*b).next = lf;
        (*s).local_free = b;
        (*s).used -= 1;
        if (*s).used == 0 {
            if *(*h).direct.get_unchecked(c) != s {
                return (*h).after_free(s);
            }
            // An empty slab that is its class's current one stays, ready for the next malloc.
            count_tick(h);
        }
    }
}

/// Every [`TICK_EVERY`] frees that empty a current slab: take in the blocks other threads
/// freed to us (a thread that only cycles a few blocks would otherwise never collect them)
/// and check the purge clock.
#[cold]
#[inline(never)]
fn tick_now(h: *mut Heap) {
    // SAFETY: h is the calling thread's own heap, and no list of it is being changed (the free
    // that brought us here is complete).
    unsafe {
        (*h).tick_countdown = TICK_EVERY;
        (*h).collect_remote(h);
    }
    buddy::tick();
}

/// Report a double free (a `()`-returning cold function, so the fast path can tail-call it).
#[cold]
#[inline(never)]
fn double_free(p: *mut u8) {
    // Hidden divergence, so the fast path reaches this by a tail jump (see `free_rejected`).
    if core::hint::black_box(true) {
        crate::debug::misuse("free", "double free", p as usize)
    }
}

#[cold]
#[inline(never)]
unsafe fn free_small_slow(s: *mut Span, b: *mut Block) {
    // SAFETY: caller's contract: s is a live slab or large span.
    unsafe {
        if (*s).kind == Kind::Large {
            free_large(s)
        } else if (*s).owner() == tls_heap() {
            // One of our slabs on the full list (its heap field carries FULL_TAG).
            if b == (*s).local_free {
                return double_free(b as *mut u8);
            }
            (*tls_heap()).free_local(s, b)
        } else {
            // Another heap's block (or the global heap's). A thread with a heap of its own
            // keeps it in its hot list if there is room (it stays counted as used in its slab,
            // and this thread's next malloc of the class hands it out again: no atomic at
            // all, where handing it to the owner costs a CAS here and work there); otherwise
            // it goes to the owner.
            let h = tls_heap();
            if h != EMPTY_HEAP.0.get() && h != DEAD_HEAP.0.get() {
                let c = (*s).class as usize;
                let head = *(*h).hot.get_unchecked(c);
                if b == head {
                    return double_free(b as *mut u8);
                }
                if hot_push(h, c, head, b) {
                    return;
                }
                hot_unpush(h, c);
            }
            remote_free(s, b)
        }
    }
}

/// Free a medium block (called from the free slow path).
///
/// # Safety
/// `s` is a live large span.
#[cold]
pub unsafe fn free_large(s: *mut Span) {
    // SAFETY: forwarded contract.
    let span = unsafe { &mut *s };
    span.kind = Kind::Unused;
    span.div_magic = 0;
    span.start_limit = 0;
    span.heap.store(ptr::null_mut(), Ordering::Relaxed);
    // SAFETY: live arena. A large run maps only its first page.
    unsafe { (*span.arena).map_pages(span.idx as usize, 1, freed_marker()) };
    // SAFETY: the run is ours and no longer mapped in the page map.
    unsafe { buddy::free_pages(span.arena, span.idx as usize, span.pages as usize) };
}

/// Statistics: bytes in live small blocks, summed over every arena's span headers. Racy by
/// design (owner-only counters are read without synchronisation); good enough for mallinfo.
pub fn small_bytes_in_use() -> usize {
    buddy::sum_spans(|s| {
        if s.kind == Kind::Slab {
            s.used as usize * s.block_size as usize
        } else {
            0
        }
    })
}

/// Number of heaps ever created and of abandoned heaps (statistics).
pub fn heap_counts() -> (usize, usize) {
    let _g = Guard::new(&HEAPS_LOCK);
    let mut n = 0;
    let mut h = ALL_HEAPS.load(Ordering::Relaxed);
    while !h.is_null() {
        n += 1;
        // SAFETY: heaps are never freed; HEAPS_LOCK held.
        h = unsafe { (*h).all_next };
    }
    (n, ABANDONED_COUNT.load(Ordering::Relaxed))
}

/// Check the calling thread's heap and every arena (tests).
pub fn check_current() {
    let h = tls_heap();
    if h != EMPTY_HEAP.0.get() && h != DEAD_HEAP.0.get() {
        // SAFETY: our own heap.
        unsafe { (*h).check_invariants(h) };
    }
    buddy::check_all();
}

/// Take in the blocks other threads freed to the calling thread's heap.
pub fn collect_remote_current() {
    let h = tls_heap();
    if h != EMPTY_HEAP.0.get() && h != DEAD_HEAP.0.get() {
        // SAFETY: our own heap.
        unsafe { (*h).collect_remote(h) };
    }
}

/// Empty the calling thread's heap as far as possible (collect remote frees, release empty
/// slabs), for `malloc_trim`.
pub fn trim_current() {
    let h = tls_heap();
    if h == EMPTY_HEAP.0.get() || h == DEAD_HEAP.0.get() {
        return;
    }
    // SAFETY: our own heap.
    let heap = unsafe { &mut *h };
    heap.flush_hot(h);
    heap.collect_remote(h);
    heap.release_empty_slabs();
}

/// Whether `p`, a block of class `c`, is held in the calling thread's hot list (a block it
/// freed).
pub fn hot_holds(p: *const u8, c: SizeClass) -> bool {
    let h = tls_heap();
    // SAFETY: the thread's own heap (or a static one whose lists are empty); c < NUM_CLASSES;
    // hot lists hold live blocks of ours.
    unsafe {
        let mut b = *(*h).hot.get_unchecked(c);
        while !b.is_null() {
            if b as *const u8 == p {
                return true;
            }
            b = (*b).next;
        }
    }
    false
}

extern "C" fn fork_prepare() {
    if !os::multi_threaded() {
        return;
    }
    // Take glibc's stdio list lock before ours, the order a thread inside getdelim or
    // fflush(NULL) already follows (it holds stdio locks when it calls malloc). Taking ours
    // first would deadlock against it.
    os::stdio_list_lock();
    GLOBAL_LOCK.lock();
    HEAPS_LOCK.lock();
    buddy::PAGE_LOCK.lock();
    crate::huge::HUGE_LOCK.lock();
    FORK_LOCKED.store(1, Ordering::Relaxed);
}

/// Whether the prepare handler took the locks (per fork).
static FORK_LOCKED: AtomicU32 = AtomicU32::new(0);

extern "C" fn fork_parent() {
    if FORK_LOCKED.swap(0, Ordering::Relaxed) == 0 {
        return;
    }
    crate::huge::HUGE_LOCK.unlock();
    buddy::PAGE_LOCK.unlock();
    HEAPS_LOCK.unlock();
    GLOBAL_LOCK.unlock();
    os::stdio_list_unlock();
}

extern "C" fn fork_child() {
    let locked = FORK_LOCKED.swap(0, Ordering::Relaxed) != 0;
    crate::huge::HUGE_LOCK.reset();
    buddy::PAGE_LOCK.reset();
    HEAPS_LOCK.reset();
    GLOBAL_LOCK.reset();
    if locked {
        // glibc resets the list lock itself when it saw several threads; resetting again is
        // harmless and also covers the case where only we took it.
        os::stdio_list_reset();
    }
    // Every other thread is gone. Their heaps' owner-only lists may have been caught in the
    // middle of an update, so they are never walked again: they become orphans. Blocks the child
    // frees into them land on their remote stacks (a CAS, safe whatever the lists look like)
    // and stay there; the child allocates from its own heap.
    let me = tls_heap();
    let mut h = ALL_HEAPS.load(Ordering::Relaxed);
    while !h.is_null() {
        // SAFETY: single-threaded child; heaps are never freed.
        let heap = unsafe { &mut *h };
        if h != me && heap.state == State::Active as u32 {
            heap.state = State::Orphaned as u32;
        }
        h = heap.all_next;
    }
}

const _: () = assert!(RUN_ALIGN == 4);

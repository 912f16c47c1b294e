//! L9: a heap — one thread's slabs, its hot lists and its remote-free stack — with the malloc
//! and free fast paths and the slow paths over its own slabs.
//!
//! The owner allocates and frees on its slabs with no lock and no atomic read-modify-write. A
//! thread that frees a block of a slab it does not own keeps it in its own hot list if there is
//! room, else pushes it onto the owning heap's `remote` stack (one CAS); the owner takes the
//! whole stack with one swap in its slow path and frees the blocks locally.
//!
//! This file knows nothing of threads: which heap a thread uses, and what happens to a heap
//! when its thread exits, is [`crate::thread`]'s and [`crate::registry`]'s. The fast paths take
//! the heap as a raw pointer, which may be one of the static empty heaps ([`Heap::new`]
//! values, whose lists are all empty): they only read those, and every miss leads to the
//! caller's slow path.

use crate::pagemap;
use crate::purge;
use crate::size_class::{CLASS_SIZE, NUM_CLASSES, SizeClass};
use crate::slab;
use crate::span::{Block, Kind, Span};
use crate::span_list::SpanList;
use core::cell::UnsafeCell;
use core::ptr;
use core::sync::atomic::{AtomicPtr, Ordering};

/// Keeps a field on its own cache line so remote pushes do not disturb the owner's lines.
#[repr(C, align(64))]
pub struct Padded<T>(pub T);

/// A span that is never written.
#[repr(transparent)]
pub struct StaticSpan(UnsafeCell<Span>);
// SAFETY: never written: it has no blocks and no owner, so every write path is cut off before
// touching it (the fast path only reads it through raw pointers).
unsafe impl Sync for StaticSpan {}

/// The empty span every `direct` slot of a heap points to while its class has no slab.
static EMPTY_SPAN: StaticSpan = StaticSpan(UnsafeCell::new(Span::empty()));

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

/// Frees into a hot list, or that empty a class's current slab, between two checks of the
/// purge clock.
const TICK_EVERY: u32 = 256;
/// The same while pages wait to be purged: each check purges one bounded round of them (see
/// `purge::tick`), so a thread that keeps cycling blocks works off a purge backlog in small
/// steps rather than in one long call.
const TICK_SOON: u32 = 4;

/// A heap.
///
/// Invariants (checked by [`Heap::check_invariants`]):
/// - `direct[c]` is `queues[c].head`, or the shared empty span when that queue is empty;
/// - `hot[c]` heads a list (linked through the blocks' first word) of
///   `HOT_LIMIT[c] - hot_room[c]` block starts of slabs of class `c` (this heap's, or blocks of
///   other heaps' slabs that this heap's thread freed), each on none of its slab's free lists
///   and counted in its slab's `used`;
/// - every span on `queues[c]` is a slab of class `c` whose owner word is `self` (no full
///   tag); every span on `full` has owner word `self | FULL_TAG`;
/// - each owned span is on exactly one of those lists.
#[repr(C)]
pub struct Heap {
    /// Span to allocate from for each class.
    direct: [*mut Span; NUM_CLASSES],
    /// Per class, the few blocks this heap's thread freed last (at most `HOT_LIMIT[c]`: 16 for
    /// classes up to 1 KiB, fewer above, so at most 16 KiB each), handed out first, last freed
    /// first, by the next mallocs of the class: the malloc-free-malloc cycle and churn reuse
    /// blocks still in the cache, with no slab bookkeeping. Blocks of other heaps' slabs that
    /// the thread frees go here too when there is room (no atomic at all). A held block still
    /// counts as used in its slab (so the slab is never released under it), and goes back to
    /// its slab or its slab's owner in [`Heap::flush_hot`] (thread exit, `malloc_trim`). A list
    /// rather than one slot, so the "is there one?" branches are predictable when classes
    /// alternate at random.
    hot: [*mut Block; NUM_CLASSES],
    /// Free places left in each `hot` list (never negative outside a free).
    hot_room: [i8; NUM_CLASSES],
    /// Slabs with (possibly) free blocks, per class.
    queues: [SpanList; NUM_CLASSES],
    /// Slabs found with no free block.
    full: SpanList,
    /// Counts down the frees that fill a hot list place or empty the class's current slab
    /// (what a program can repeat forever without reaching a slow path); at zero the remote
    /// stack is collected and the purge clock checked, so a program that freed a lot and now
    /// only cycles a few blocks still gives memory back. Starts from [`TICK_EVERY`], or from
    /// [`TICK_SOON`] while pages wait to be purged.
    tick_countdown: u32,
    /// Blocks freed to this heap by other threads, linked through their first word.
    remote: Padded<AtomicPtr<Block>>,
}

/// A `Heap` that may live in a `static`.
#[repr(transparent)]
pub struct StaticHeap(UnsafeCell<Heap>);
// SAFETY: the empty heaps are never written (their spans are empty and their hot lists null,
// so every write path is cut off before touching them); a heap used under a lock is only
// reached with that lock held (see its owner).
unsafe impl Sync for StaticHeap {}

impl StaticHeap {
    /// A static heap with no slabs.
    pub const fn new() -> Self {
        StaticHeap(UnsafeCell::new(Heap::new()))
    }

    /// The heap.
    #[inline(always)]
    pub const fn get(&self) -> *mut Heap {
        self.0.get()
    }
}

impl Default for StaticHeap {
    fn default() -> Self {
        Self::new()
    }
}

/// The type-erased owner word of a heap's spans.
#[inline(always)]
fn erased(h: *mut Heap) -> *mut () {
    h.cast()
}

impl Heap {
    /// A heap with no slabs and empty hot lists.
    pub const fn new() -> Heap {
        Heap {
            direct: [EMPTY_SPAN.0.get(); NUM_CLASSES],
            hot: [ptr::null_mut(); NUM_CLASSES],
            hot_room: HOT_LIMIT,
            queues: [SpanList::EMPTY; NUM_CLASSES],
            full: SpanList::EMPTY,
            tick_countdown: TICK_EVERY,
            remote: Padded(AtomicPtr::new(ptr::null_mut())),
        }
    }

    /// Allocate a block of class `c` without a slow path: from the hot list, else the current
    /// slab's free list, else its local list. Null on a miss. About 10 instructions.
    ///
    /// # Safety
    /// `h` is the calling thread's own heap or a static empty heap.
    #[inline(always)]
    pub unsafe fn alloc_fast(h: *mut Heap, c: SizeClass) -> *mut u8 {
        let c = c.index();
        // SAFETY: c < NUM_CLASSES; an empty heap's hot lists are null and its direct spans
        // empty, so nothing below writes to it; otherwise h is ours. direct[c] is always a
        // valid span.
        unsafe {
            let hot = (*h).hot.get_unchecked_mut(c);
            let b = *hot;
            if !b.is_null() {
                *hot = (*b).next;
                *(*h).hot_room.get_unchecked_mut(c) += 1;
                return b as *mut u8;
            }
            let s = *(*h).direct.get_unchecked(c);
            let b = Span::pop(s);
            if !b.is_null() {
                return b as *mut u8;
            }
            // The empty span never has local frees.
            Span::pop_local(s) as *mut u8
        }
    }

    /// Free block `p` of slab `s`, owned by `h` and not on its full list (the caller compared
    /// the owner word with `h`): into the hot list, or the slab's local list when that is full.
    /// About 12 instructions.
    ///
    /// # Safety
    /// `h` is the calling thread's own heap; `p` is a block start of `s`.
    #[inline(always)]
    pub unsafe fn free_own(h: *mut Heap, s: *mut Span, p: *mut u8) {
        let b = p as *mut Block;
        // SAFETY: forwarded contract.
        unsafe {
            let c = (*s).class().index();
            let head = *(*h).hot.get_unchecked(c);
            if b == head {
                return double_free(p);
            }
            if !hot_push(h, c, head, b) {
                return free_to_slab(h, s, b);
            }
            count_tick(h)
        }
    }

    /// Find a slab of class `c` with a free block among this heap's, make it the class's
    /// current one, and pop a block; slabs found full move to the full list. Null when none
    /// has one.
    pub fn alloc_from_queues(&mut self, c: SizeClass) -> *mut u8 {
        let ci = c.index();
        let mut s = self.queues[ci].head();
        while !s.is_null() {
            // SAFETY: spans on our queue are ours.
            let span = unsafe { &mut *s };
            let next = span.next();
            // SAFETY: as above; refill needs `free` empty, which pop just found.
            let b = unsafe {
                let mut b = Span::pop(s);
                if b.is_null() && span.refill() {
                    b = Span::pop(s);
                }
                b
            };
            if !b.is_null() {
                if self.queues[ci].head() != s {
                    // SAFETY: s is on queue c.
                    unsafe {
                        self.queues[ci].remove(s);
                        self.queues[ci].push_front(s);
                    }
                }
                self.sync_direct(ci);
                return b as *mut u8;
            }
            // SAFETY: s is on queue c; moving it to the full list.
            unsafe {
                self.queues[ci].remove(s);
                span.set_in_full(true);
                self.full.push_back(s);
            }
            s = next;
        }
        self.sync_direct(ci);
        ptr::null_mut()
    }

    /// Make a new slab of class `c`, make it current, and pop a block. Null when out of memory.
    pub fn alloc_from_new_slab(&mut self, c: SizeClass) -> *mut u8 {
        let s = slab::create(erased(self), c);
        if s.is_null() {
            return ptr::null_mut();
        }
        // SAFETY: s is a fresh slab owned by self, on no list.
        unsafe {
            self.queues[c.index()].push_front(s);
            self.sync_direct(c.index());
            (*s).refill();
            Span::pop(s) as *mut u8
        }
    }

    /// Point `direct[c]` at the head of the class queue, or the empty span.
    #[inline]
    fn sync_direct(&mut self, c: usize) {
        let h = self.queues[c].head();
        self.direct[c] = if h.is_null() { EMPTY_SPAN.0.get() } else { h };
    }

    /// Take every block other threads freed to this heap and free it locally (or forward it
    /// to the slab's current owner if the slab changed hands).
    pub fn collect_remote(&mut self) {
        if self.remote.0.load(Ordering::Relaxed).is_null() {
            return;
        }
        let list = self.remote.0.swap(ptr::null_mut(), Ordering::Acquire);
        // SAFETY: the list holds live blocks freed to this heap, now ours.
        unsafe { self.take_blocks(list) };
    }

    /// Free every block of `list` (linked through their first word): locally when its slab is
    /// ours, else by forwarding it to the slab's current owner (the slab changed hands).
    ///
    /// # Safety
    /// The blocks are live blocks of slabs, handed to this heap.
    unsafe fn take_blocks(&mut self, mut b: *mut Block) {
        let me = erased(self);
        while !b.is_null() {
            // SAFETY: the caller hands us live blocks.
            let next = unsafe { (*b).next };
            let s = pagemap::span_of(b as usize);
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

    /// Give every block held in the hot lists back to its slab (or its slab's owner).
    pub fn flush_hot(&mut self) {
        for (c, &limit) in HOT_LIMIT.iter().enumerate() {
            let list = self.hot[c];
            self.hot[c] = ptr::null_mut();
            self.hot_room[c] = limit;
            // SAFETY: hot blocks are live blocks this thread gave up (type invariant).
            unsafe { self.take_blocks(list) };
        }
    }

    /// Return every empty slab on the class queues to the page allocator.
    pub fn release_empty_slabs(&mut self) {
        for c in 0..NUM_CLASSES {
            let mut s = self.queues[c].head();
            while !s.is_null() {
                // SAFETY: spans on our queues are ours.
                let next = unsafe { (*s).next() };
                // SAFETY: as above.
                if unsafe { (*s).used() } == 0 {
                    // SAFETY: s is on queue c, empty and ours.
                    unsafe {
                        self.queues[c].remove(s);
                        slab::release(s);
                    }
                }
                s = next;
            }
            self.sync_direct(c);
        }
    }

    /// Whether the heap owns no slab.
    pub fn owns_nothing(&self) -> bool {
        self.full.is_empty() && self.queues.iter().all(|q| q.is_empty())
    }

    /// Free block `b` of our slab `s` (collected remote frees, flushed hot lists, and frees
    /// into our slabs on the full list).
    ///
    /// # Safety
    /// We own `s`; `b` is a live block of it.
    pub unsafe fn free_local(&mut self, s: *mut Span, b: *mut Block) {
        // SAFETY: forwarded contract.
        unsafe {
            Span::push_local(s, b);
            self.after_free(s);
        }
    }

    /// Housekeeping after a local free made `s` leave the full list or become empty.
    ///
    /// # Safety
    /// We own `s`.
    #[cold]
    unsafe fn after_free(&mut self, s: *mut Span) {
        // SAFETY: forwarded contract.
        let span = unsafe { &mut *s };
        let c = span.class().index();
        if span.in_full() {
            // SAFETY: s is on our full list.
            unsafe {
                self.full.remove(s);
                span.set_in_full(false);
                self.queues[c].push_back(s);
            }
            self.sync_direct(c);
        }
        if span.used() == 0 && self.queues[c].len() > 1 {
            // Keep one empty slab per class to avoid thrashing; release the others.
            // SAFETY: s is on queue c.
            unsafe {
                self.queues[c].remove(s);
                slab::release(s);
            }
            self.sync_direct(c);
        }
    }

    /// Keep `b`, a block of another heap's slab of class `c` that the calling thread frees, in
    /// this heap's hot list if there is room (it stays counted as used in its slab, and the
    /// thread's next malloc of the class hands it out again: no atomic at all, where handing it
    /// to the owner costs a CAS here and work there). Returns false when the list is full.
    ///
    /// # Safety
    /// This is the calling thread's heap; `b` is a live block start the caller gives up.
    pub unsafe fn keep_foreign(&mut self, c: SizeClass, b: *mut Block) -> bool {
        let h = self as *mut Heap;
        let c = c.index();
        // SAFETY: forwarded contract; c < NUM_CLASSES.
        unsafe {
            let head = *(*h).hot.get_unchecked(c);
            if b == head {
                double_free(b as *mut u8);
                return true;
            }
            if hot_push(h, c, head, b) {
                return true;
            }
            hot_unpush(h, c);
        }
        false
    }

    /// Whether block `p` of class `c` sits in this heap's hot list of its class.
    pub fn hot_holds(&self, p: *const u8, c: SizeClass) -> bool {
        let mut b = self.hot[c.index()];
        while !b.is_null() {
            if b as *const u8 == p {
                return true;
            }
            // SAFETY: hot lists hold live blocks of ours.
            b = unsafe { (*b).next };
        }
        false
    }

    /// Take over every slab of `victim` (whose thread is gone), and the blocks on its remote
    /// stack. `victim` is left owning nothing.
    pub fn absorb(&mut self, victim: &mut Heap) {
        let me = erased(self);
        for c in 0..NUM_CLASSES {
            // SAFETY: the spans are victim's, which we hold exclusively.
            unsafe {
                loop {
                    let s = victim.queues[c].pop_front();
                    if s.is_null() {
                        break;
                    }
                    (*s).set_owner(me, false);
                    self.queues[c].push_back(s);
                }
            }
            victim.sync_direct(c);
            self.sync_direct(c);
        }
        // SAFETY: as above.
        unsafe {
            loop {
                let s = victim.full.pop_front();
                if s.is_null() {
                    break;
                }
                (*s).set_owner(me, true);
                self.full.push_back(s);
            }
        }
        // Blocks already pushed to the victim's stack belong to slabs that are now ours.
        let list = victim.remote.0.swap(ptr::null_mut(), Ordering::Acquire);
        // SAFETY: live blocks in transit, now ours to free or forward.
        unsafe { self.take_blocks(list) };
    }

    /// Verify the invariants documented on the type. Aborts on violation.
    ///
    /// # Safety
    /// The caller owns the heap.
    pub unsafe fn check_invariants(&self) {
        let me = erased(self as *const Heap as *mut Heap);
        for (c, &head) in self.hot.iter().enumerate() {
            let (mut b, mut n) = (head, 0usize);
            while !b.is_null() {
                n += 1;
                xa_check!(n <= HOT_LIMIT[c] as usize);
                let s = pagemap::span_of(b as usize);
                xa_check!(!s.is_null());
                // SAFETY: page-map entries are valid span headers.
                let span = unsafe { &*s };
                xa_check!(span.kind() == Kind::Slab && span.class().index() == c);
                xa_check!(span.is_block_start(b as usize));
                // another heap's slab lists are its owner's to walk
                // SAFETY: we own the span when its owner is us.
                xa_check!(span.owner() != me || !unsafe { span.holds_free(b as *const u8) });
                // SAFETY: hot blocks are ours (checked above).
                b = unsafe { (*b).next };
            }
            xa_check!(n == (HOT_LIMIT[c] - self.hot_room[c]) as usize);
        }
        for c in 0..NUM_CLASSES {
            let q = &self.queues[c];
            let head = if q.is_empty() {
                EMPTY_SPAN.0.get()
            } else {
                q.head()
            };
            xa_check!(self.direct[c] == head);
            // SAFETY: we own the queue and its spans.
            unsafe {
                q.check(|span| {
                    xa_check!(span.kind() == Kind::Slab && span.class().index() == c);
                    xa_check!(span.owner_word() == me);
                    span.check_invariants();
                });
            }
        }
        // SAFETY: we own the full list and its spans.
        unsafe {
            self.full.check(|span| {
                xa_check!(span.in_full() && span.owner() == me);
            });
        }
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
unsafe fn hot_push(h: *mut Heap, c: usize, head: *mut Block, b: *mut Block) -> bool {
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
unsafe fn hot_unpush(h: *mut Heap, c: usize) {
    // SAFETY: forwarded contract; c < NUM_CLASSES.
    unsafe { *(*h).hot_room.get_unchecked_mut(c) += 1 };
}

/// Count one free that a program can repeat without reaching a slow path; when the countdown
/// runs out, run [`tick_now`].
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
        let c = (*s).class().index();
        hot_unpush(h, c);
        if b == (*s).local_head() {
            return double_free(b as *mut u8);
        }
        if Span::push_local(s, b) == 0 {
            if *(*h).direct.get_unchecked(c) != s {
                return (*h).after_free(s);
            }
            // An empty slab that is its class's current one stays, ready for the next malloc.
            count_tick(h);
        }
    }
}

/// Every [`TICK_EVERY`] counted frees ([`TICK_SOON`] while pages wait to be purged): take in
/// the blocks other threads freed to us (a thread that only cycles a few blocks would
/// otherwise never collect them) and check the purge clock.
#[cold]
#[inline(never)]
fn tick_now(h: *mut Heap) {
    // SAFETY: h is the calling thread's own heap, and no list of it is being changed (the free
    // that brought us here is complete).
    unsafe { (*h).collect_remote() };
    let soon = purge::tick();
    // SAFETY: as above.
    unsafe { (*h).tick_countdown = if soon { TICK_SOON } else { TICK_EVERY } };
}

/// Report a double free (a `()`-returning cold function, so the fast path can tail-call it).
#[cold]
#[inline(never)]
fn double_free(p: *mut u8) {
    // Hidden divergence, so the fast path reaches this by a tail jump rather than a call that
    // would make it align its stack on every call.
    if core::hint::black_box(true) {
        crate::debug::misuse("free", "double free", p as usize)
    }
}

/// Push block `b` of slab `s` onto its owner's remote stack. One CAS.
///
/// # Safety
/// `s` is a live slab and `b` a live block of it that the caller gives up.
pub unsafe fn remote_free(s: *mut Span, b: *mut Block) {
    // SAFETY: a live block keeps its slab (and the slab's owner) valid; heaps are never
    // unmapped.
    let owner: *mut Heap = unsafe { (*s).owner() }.cast();
    // SAFETY: as above.
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

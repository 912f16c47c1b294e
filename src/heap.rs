//! L10: a heap — one thread's slabs, its hot lists, its run cache and its stack of slabs with
//! remote frees — with the malloc and free fast paths and the slow paths over its own slabs.
//!
//! The owner allocates and frees on its slabs with no lock and no atomic read-modify-write. A
//! thread that frees a block of a slab it does not own keeps it in its own hot list if there is
//! room and it holds fewer than [`FOREIGN_LIMIT`] such blocks, else chains it to the blocks of
//! the same slab it freed just before ([`Heap::send_foreign`]: a chain per class, at most
//! [`OUT_LIMIT`] blocks), and pushes the chain onto the slab's own remote list when it is full,
//! when a block of another slab of its class comes, or at the next tick (one CAS a chain; the
//! push that finds that list empty also puts the slab on its owner's stack of slabs with
//! remote frees, [`Remote`]). Kept foreign blocks go home at the
//! heap's next tick (or `malloc_trim`, or thread exit), one chain and one CAS per slab, so a
//! thread holds at most [`FOREIGN_LIMIT`] of them, and only until it next frees
//! [`TICK_EVERY`] blocks. (Sending them home in a batch whenever the limit or a full hot list
//! turned one away cost larson 8% more instructions under callgrind, its blocks being
//! scattered over many slabs; producer-consumer pairs gained nothing measurable over the
//! per-slab pushes.) The owner takes its stack of slabs with one swap in its slow path, and
//! each slab's remote list, with its count, with another: the list becomes the slab's local
//! list, or is spliced in front of it when that is not empty, with no walk: the slab keeps the
//! list's last block ([`Span::take_remote`]). No remote block is touched before it is handed
//! out again, and no per-block sorting.
//!
//! Every stored link is encoded and checked when followed, every freed block marked, and every
//! free of a marked block reported as a double free (see [`crate::secret`]).
//!
//! This file knows nothing of threads: which heap a thread uses, and what happens to a heap
//! when its thread exits, is [`crate::thread`]'s and [`crate::registry`]'s. The fast paths take
//! the heap as a raw pointer, which may be one of the static empty heaps ([`Heap::new`]
//! values, whose lists are all empty): they only read those, and every miss leads to the
//! caller's slow path.

use crate::pagemap;
use crate::profile;
use crate::purge;
use crate::run_cache::RunCache;
use crate::secret;
use crate::size_class::{CLASS_SIZE, NUM_CLASSES, SizeClass};
use crate::slab;
use crate::span::{Block, IMPLAUSIBLE, Kind, Span, corrupt};
use crate::span_list::SpanList;
use core::cell::UnsafeCell;
use core::ptr;
use core::sync::atomic::{AtomicBool, AtomicI8, AtomicPtr, AtomicU32, AtomicUsize, Ordering};

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

/// How many blocks of class `c` fit in `bytes`, at least 1 and at most `most`.
const fn blocks_within(c: usize, bytes: usize, most: usize) -> usize {
    let n = bytes / CLASS_SIZE[c] as usize;
    if n > most {
        most
    } else if n < 1 {
        1
    } else {
        n
    }
}

/// Most blocks each class's `hot` list holds: 16, or fewer to keep a list within 16 KiB.
const HOT_LIMIT: [i8; NUM_CLASSES] = {
    let mut t = [0i8; NUM_CLASSES];
    let mut c = 0;
    while c < NUM_CLASSES {
        t[c] = blocks_within(c, 16384, 16) as i8;
        c += 1;
    }
    t
};

/// Frees into a hot list or onto a chain of another heap's blocks, or that empty a class's
/// current slab, between two ticks (remote stack collected, kept foreign blocks and chains
/// sent home, purge clock checked).
pub const TICK_EVERY: u32 = 256;
/// The same while pages wait to be purged: each check purges one bounded round of them (see
/// `purge::tick`), so a thread that keeps cycling blocks works off a purge backlog in small
/// steps rather than in one long call.
const TICK_SOON: u32 = 4;

/// Most blocks of other heaps' slabs a heap keeps in its hot lists (their room bounds them
/// too: at most 16 KiB per class). 128 rather than 32: larson with 4 threads ran 6-11% faster
/// in wall time (medians of 10 runs) and 5% leaner, its threads reusing more of the blocks
/// they free for one another instead of pushing them home; producer-consumer pairs, whose
/// consumers do not allocate, did not change. 512 took another 7% off larson's peak RSS, but
/// in a full `make bench` thread churn's peak RSS went from 4.8 to 6.3 MiB (exiting threads
/// send more blocks to heaps whose threads are gone, where they wait for an adoption) and the
/// suite's RSS geomean from 0.953 to 0.976 of mimalloc's.
pub const FOREIGN_LIMIT: u32 = 128;

/// Most blocks a heap chains for one other heap's slab before it pushes them onto that slab's
/// remote list ([`Heap::send_foreign`]): 16, or fewer to keep a chain within 8 KiB, so a
/// chain holds back little of its owner's memory (32 blocks within 32 KiB were no faster on
/// `handoff` and `prodcons`, and `prodcons -m single` kept 0.1 MiB more).
const OUT_LIMIT: [u8; NUM_CLASSES] = {
    let mut t = [0u8; NUM_CLASSES];
    let mut c = 0;
    while c < NUM_CLASSES {
        t[c] = blocks_within(c, 8192, 16) as u8;
        c += 1;
    }
    t
};

/// A heap.
///
/// Invariants (checked by [`Heap::check_invariants`]):
/// - `direct[c]` is `queues[c].head`, or the shared empty span when that queue is empty;
/// - `hot_room[c] >= 0`;
/// - `hot[c]` heads a list (links encoded with `mask`) of `HOT_LIMIT[c] - hot_room[c]` block
///   starts of slabs of class `c`, each marked free, on none of its slab's lists and counted
///   in its slab's `used`; those of other heaps' slabs number at most `foreign_held` (at most
///   [`FOREIGN_LIMIT`]) and sit only in classes whose bit is set in `foreign_classes`;
/// - `out[c]` is empty ([`Pending::EMPTY`]: no slab) and bit `c` of `out_classes` clear, or
///   bit `c` is set and it chains (links encoded with `mask`, from `head` to `tail`) `count`
///   (1 to `OUT_LIMIT[c]`) marked block starts of its slab, a slab of class `c`, on none of
///   its slab's lists and counted in its `used` and in this heap's `sent`;
/// - every span on `queues[c]` is a slab of class `c` whose owner word is `self` (no full
///   tag); every span on `full` has owner word `self | FULL_TAG`;
/// - each owned span is on exactly one of those lists;
/// - `borrowed[c]` heads a null-terminated list (links encoded with `mask`) of marked block
///   starts of slabs of class `c`, on none of their slabs' lists and counted in their `used`;
///   bit `c` of `borrowed_classes` is set iff it is not empty, and `borrowed_bytes` is the
///   sum of their sizes;
/// - summed over all heaps (and the heapless pushers' count), `sent - collected` is at least
///   the bytes of the blocks on all slabs' remote lists (a pusher counts its block before
///   publishing it, a collector or a [`Heap::steal`] after taking it).
#[repr(C)]
pub struct Heap {
    /// Span to allocate from for each class.
    direct: [*mut Span; NUM_CLASSES],
    /// Per class, the few blocks this heap's thread freed last (at most `HOT_LIMIT[c]`: 16 for
    /// classes up to 1 KiB, fewer above, so at most 16 KiB each), handed out first, last freed
    /// first, by the next mallocs of the class: the malloc-free-malloc cycle and churn reuse
    /// blocks still in the cache, with no slab bookkeeping. A few blocks of other heaps' slabs
    /// the thread frees go here too (no atomic at all), until the next tick. A held block still
    /// counts as used in its slab (so the slab is never released under it); statistics count
    /// it as cached, not in use. A list rather than one slot, so the "is there one?" branches
    /// are predictable when classes alternate at random.
    hot: [*mut Block; NUM_CLASSES],
    /// The mask of this heap's hot lists (the process's, [`crate::secret`]).
    mask: u64,
    /// The process's free-block mark.
    mark: u64,
    /// [`IMPLAUSIBLE`], kept here so the hot-list check is one `test` with a memory operand
    /// (a 64-bit constant would need an instruction of its own to load).
    implausible: u64,
    /// The largest request `alloc::malloc`'s fast path serves for this heap's thread (compared
    /// with a memory operand, free of charge): [`crate::profile::small_limit`], taken with the
    /// keys; 0 until then, and always 0 for the static empty heaps, so that a thread's first
    /// `malloc` and every `malloc` while the profiler is on take the cold path.
    small_limit: usize,
    /// Bytes this heap's thread may allocate before the heap profiler's next sample; 0 when
    /// not drawn yet, and always 0 in the static empty heaps (their threads are not sampled).
    prof_left: u64,
    /// Free places left in each `hot` list. Written by the
    /// owner only, with relaxed loads and stores; read by statistics from other threads.
    hot_room: [AtomicI8; NUM_CLASSES],
    /// An upper bound on the blocks of other heaps' slabs in the hot lists (kept foreign
    /// blocks that malloc handed out again are not subtracted); reset when they are sent home.
    foreign_held: u32,
    /// Bit `c` set if `hot[c]` may hold blocks of other heaps' slabs.
    foreign_classes: u64,
    /// Per class, a chain of blocks of one other heap's slab that this thread freed and did
    /// not keep, to be pushed onto that slab's remote list together ([`Heap::send_foreign`]).
    out: [Pending; NUM_CLASSES],
    /// Bit `c` set while `out[c]` holds a chain, so that the tick skips the empty ones (with
    /// a scan of every class at each tick, `scripts/fastpath-count.sh` counted 68 / 58
    /// instructions per `malloc`+`free` pair instead of 66 / 56).
    out_classes: u64,
    /// Slabs with (possibly) free blocks, per class.
    queues: [SpanList; NUM_CLASSES],
    /// Slabs found with no free block.
    full: SpanList,
    /// Counts down the frees that fill a hot list place, join a chain of another heap's blocks
    /// or empty the class's current slab (what a program can repeat forever without reaching a
    /// slow path); at zero, the tick.
    /// Starts from [`TICK_EVERY`], or from [`TICK_SOON`] while pages wait to be purged.
    tick_countdown: u32,
    /// The value `tick_countdown` last started from.
    tick_period: u32,
    /// Counted frees left until the next collection of remote frees and return of kept
    /// foreign blocks: those happen every [`TICK_EVERY`] counted frees even while the purge
    /// clock is checked every [`TICK_SOON`].
    flush_countdown: i32,
    /// Bytes of blocks this heap's thread pushed onto other heaps' slabs' remote lists, ever.
    /// Written by the owner only (relaxed load and store), read by statistics: the bytes on
    /// all remote lists are what all heaps sent less what all collected.
    sent: AtomicUsize,
    /// Bytes of blocks this heap took off its slabs' remote lists (its own, or an adopted
    /// heap's), ever.
    collected: AtomicUsize,
    /// Runs this heap's thread gave up (emptied slabs, freed medium blocks), for its next
    /// slab refills and medium blocks.
    runs: RunCache,
    /// This heap's slabs that other threads freed blocks to.
    remote: Padded<Remote>,
    /// Whether other threads' frees chain this heap's blocks ([`Heap::send_foreign`]): set by
    /// the owner once it has taken in [`CHAIN_AFTER`] bytes of remote frees since the heap
    /// went to its thread, cleared when that thread exits (so a heap goes to its next thread
    /// with it clear). On a line of its own, which only those two events write.
    chained: Padded<AtomicBool>,
    /// `collected` when the heap last went to a thread.
    chain_from: usize,
    /// Per class, blocks of other heaps' slabs taken off those slabs' remote lists because
    /// their owner was not taking them in ([`Heap::steal`]): the slow path hands them out
    /// before this heap carves or makes a slab. Links encoded with `mask`.
    borrowed: [*mut Block; NUM_CLASSES],
    /// Bit `c` set iff `borrowed[c]` is not empty.
    borrowed_classes: u64,
    /// Bit `c` set when a block of `borrowed[c]` was handed out since the last return of
    /// unused borrowed blocks (every [`RETURN_EVERY`] ticks): the lists of the other classes
    /// go home then, so blocks this thread stopped asking for do not stay held here.
    borrowed_used: u64,
    /// Bytes of the blocks on the borrowed lists (the owner writes, relaxed; statistics read).
    borrowed_bytes: AtomicUsize,
    /// Ticks so far (those that collect remote frees): the clock by which another heap is
    /// found idle ([`Heap::idle_victim`]).
    ticks: u32,
    /// The idle heap this one last borrowed from, while it stays idle (null: none): blocks
    /// of its slabs that this thread frees go onto the borrowed lists too, rather than home
    /// to a thread that is not taking them.
    lender: *mut Heap,
    /// The lender's collection count when it was found idle: when it changes, its thread is
    /// taking its blocks again, and the borrowed blocks go home at the next tick.
    lender_seen: u32,
    /// The watch for an idle heap ([`Heap::idle_victim`]), used only by the owner: the heap
    /// watched (null: none), the last heap looked at, the watched heap's collection count and
    /// this heap's tick when the watch began, the classes a steal from it found nothing of,
    /// this heap's tick when the first of those did, and its tick at the last look for a
    /// heap to watch.
    watch: *mut Heap,
    cursor: *mut Heap,
    watch_seen: u32,
    watch_tick: u32,
    watch_missed: u64,
    missed_tick: u32,
    scan_tick: u32,
    /// The next heap on the list of all heaps ([`Heap::publish`]): set once, before the heap
    /// is published.
    all_next: AtomicPtr<Heap>,
    /// Bit `c` clear while this heap's thread may make a smaller slab of class `c`
    /// ([`SizeClass::first_slab_pages`]): until it has made one, on a heap that went to a
    /// thread before (see [`Heap::revive`]).
    slabs_made: u64,
    /// Whether the heap went to a thread before.
    reused: bool,
}

/// Bytes of remote frees a heap takes in before other threads chain its blocks: until then
/// each goes home at once. A thread that lives long and takes many blocks back from other
/// threads (a producer) gains from chains; a short-lived one loses: a block held on a chain
/// when its owner exits keeps that slab from being released with the heap. `threads -t 4`
/// (threads that live a few hundred microseconds; some adopt the slabs of threads that
/// exited just before, whose blocks the main thread is freeing) had a peak RSS of 4.1 MiB
/// without chains, 5.2 MiB with chains for every owner, 4.6 MiB with chains for every owner
/// not yet exited.
pub const CHAIN_AFTER: usize = 256 * 1024;

/// Most bytes of blocks one [`Heap::steal`] takes (it may pass this by one slab's list): a
/// few slabs' worth, so that one steal serves many mallocs, while a thread that borrows and
/// then stops (blocked, it has no tick to send them home) holds back little. `larson -t 4`
/// peaked at 22.3 MiB with 64 KiB, 21.4 with 256 (medians of 7 interleaved runs).
pub const STEAL_BYTES: usize = 64 * 1024;

/// Ticks between two returns of the borrowed blocks of classes this thread stopped asking
/// for: a thread that allocates a class now and then, while its own slabs have room, keeps
/// what it borrowed for it.
const RETURN_EVERY: u32 = 8;

/// A heap's stack of slabs with remote frees: a slab whose `remote` list a push made
/// non-empty is pushed here by that pusher (one more CAS, once per batch the owner takes);
/// the owner takes the whole stack with one swap and each slab's list with another, and
/// touches only the slabs concerned. (mimalloc's pages likewise keep their own thread-free
/// lists; where it finds pages with frees by scanning its page queues, plus a delayed-free
/// list for full pages, this stack names every such slab, full or not.)
#[repr(C)]
pub struct Remote {
    /// Top slab, linked through `Span::remote_next`.
    head: AtomicPtr<Span>,
    /// Set when another heap adopted this one's slabs ([`Heap::absorb`]); cleared when the
    /// heap is handed to a new thread. A pusher that read a slab's owner just before the
    /// adoption may name the slab on this stack after the adopter took it: the pusher sees
    /// the flag and forwards the stack to the slabs' owners itself.
    retired: AtomicBool,
    /// Times the owner took this stack when it was not empty, or found it empty after a
    /// borrowing heap took it (written by the owner only, relaxed; read by other threads). A
    /// stack that stays non-empty while this count stays the same belongs to a thread that
    /// stopped taking its blocks back (blocked, busy elsewhere, or done allocating): see
    /// [`Heap::steal`].
    collections: AtomicU32,
}

/// Bytes pushed onto slabs' remote lists by threads without a heap of their own (statistics).
static ORPHAN_SENT: AtomicUsize = AtomicUsize::new(0);

/// Every heap ever published, newest first, linked through `Heap::all_next` (heaps are never
/// unmapped): for the registry's walks, and for the watch for idle heaps, which walks it
/// without a lock.
static ALL_HEAPS: AtomicPtr<Heap> = AtomicPtr::new(ptr::null_mut());

/// Ticks of its own (each [`TICK_EVERY`] counted frees) a heap waits before it takes another
/// heap for idle. Long enough that a thread which merely waited its turn for a core, or for a
/// full mailbox, is not taken for idle: with 2 ticks `handoff -t 4` (four threads on two
/// cores) peaked at 9.7 MiB instead of 6.5, with 64 at 6.6, while `larson -t 4`'s main
/// thread, which waits for its workers, is found idle in time either way (peak 21.9 and 22.4
/// MiB against 26.0 without borrowing; medians of 5 interleaved runs).
const IDLE_TICKS: u32 = 64;
/// Ticks after which a heap stops watching an idle heap that has had nothing waiting
/// (counted from the start of the watch).
const WATCH_EMPTY_TICKS: u32 = 64;
/// Heaps one look for a heap to watch goes through, at most.
const WATCH_SCAN: usize = 4;

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

/// `HOT_LIMIT` as atomics.
const fn full_room() -> [AtomicI8; NUM_CLASSES] {
    let mut t = [const { AtomicI8::new(0) }; NUM_CLASSES];
    let mut c = 0;
    while c < NUM_CLASSES {
        t[c] = AtomicI8::new(HOT_LIMIT[c]);
        c += 1;
    }
    t
}

impl Heap {
    /// A heap with no slabs and empty hot lists. Its keys are unset: a heap that will hold
    /// blocks gets them from [`Heap::set_keys`].
    pub const fn new() -> Heap {
        Heap {
            direct: [EMPTY_SPAN.0.get(); NUM_CLASSES],
            hot: [ptr::null_mut(); NUM_CLASSES],
            mask: 0,
            mark: 0,
            implausible: IMPLAUSIBLE,
            small_limit: 0,
            prof_left: 0,
            hot_room: full_room(),
            foreign_held: 0,
            foreign_classes: 0,
            out: [Pending::EMPTY; NUM_CLASSES],
            out_classes: 0,
            queues: [SpanList::EMPTY; NUM_CLASSES],
            full: SpanList::EMPTY,
            tick_countdown: TICK_EVERY,
            tick_period: TICK_EVERY,
            flush_countdown: TICK_EVERY as i32,
            sent: AtomicUsize::new(0),
            collected: AtomicUsize::new(0),
            runs: RunCache::new(),
            remote: Padded(Remote {
                head: AtomicPtr::new(ptr::null_mut()),
                retired: AtomicBool::new(false),
                collections: AtomicU32::new(0),
            }),
            chained: Padded(AtomicBool::new(false)),
            chain_from: 0,
            borrowed: [ptr::null_mut(); NUM_CLASSES],
            borrowed_classes: 0,
            borrowed_used: 0,
            borrowed_bytes: AtomicUsize::new(0),
            ticks: 0,
            lender: ptr::null_mut(),
            lender_seen: 0,
            watch: ptr::null_mut(),
            cursor: ptr::null_mut(),
            watch_seen: 0,
            watch_tick: 0,
            watch_missed: 0,
            missed_tick: 0,
            scan_tick: u32::MAX,
            all_next: AtomicPtr::new(ptr::null_mut()),
            slabs_made: u64::MAX,
            reused: false,
        }
    }

    /// Take the process's keys (before the heap's first free).
    pub fn set_keys(&mut self) {
        (self.mask, self.mark) = secret::keys();
        self.small_limit = profile::small_limit();
    }

    /// Count a request of `size` bytes against the profiler's interval of heap `h` when it does
    /// not reach its end: true then (not sampled). False when it may be sampled, the interval is
    /// not drawn yet, or `h` is a static heap (0 left, never written): the caller then asks
    /// [`profile::take_sample`] through [`Heap::prof_left`], or serves the request unsampled.
    ///
    /// # Safety
    /// `h` is the calling thread's own heap or a static empty heap.
    #[inline(always)]
    pub unsafe fn count_unsampled(h: *mut Heap, size: usize) -> bool {
        // SAFETY: forwarded contract: only h's thread touches the field; a static heap's is
        // 0, so it is never written.
        unsafe {
            let l = (*h).prof_left;
            if l > size as u64 {
                (*h).prof_left = l - size as u64;
                return true;
            }
        }
        false
    }

    /// The profiler's interval of the calling thread's own heap `h`.
    ///
    /// # Safety
    /// `h` is the calling thread's own heap (not a static one), and the reference is dropped
    /// before anything else reaches the heap.
    pub unsafe fn prof_left<'a>(h: *mut Heap) -> &'a mut u64 {
        // SAFETY: forwarded contract.
        unsafe { &mut (*h).prof_left }
    }

    /// The largest request the `malloc` fast path serves for heap `h`'s thread (see the field).
    ///
    /// # Safety
    /// `h` is the calling thread's own heap or a static empty heap.
    #[inline(always)]
    pub unsafe fn small_limit(h: *mut Heap) -> usize {
        // SAFETY: forwarded contract: h is valid and only its own thread writes the field.
        unsafe { (*h).small_limit }
    }

    /// Allocate a block of class `c` without a slow path: from the hot list (its next link
    /// checked), else the current slab's free list, else its local list. Null on a miss, and
    /// on a link that fails its check (which [`Heap::check_hot`] and the slow path's
    /// [`Span::pop_checked`] then report).
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
                let n = Block::next(b, (*h).mask);
                // Block::plausible, against the heap's copy of the constant
                if n.addr() as u64 & (*h).implausible != 0 {
                    // left in place for the slow path to report (no call here)
                    return ptr::null_mut();
                }
                *hot = n;
                room_inc(h, c);
                Block::clear_mark(b);
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
    /// the owner word with `h`): a marked block is a double free; else into the hot list, or
    /// the slab's local list when that is full.
    ///
    /// # Safety
    /// `h` is the calling thread's own heap; `p` is a block start of `s`.
    #[inline(always)]
    pub unsafe fn free_own(h: *mut Heap, s: *mut Span, p: *mut u8) {
        let b = p as *mut Block;
        // SAFETY: forwarded contract.
        unsafe {
            let mark = (*h).mark;
            if Block::is_marked(b, mark) {
                return double_free(p);
            }
            let c = (*s).class().index();
            // Marked before the room test, so a full hot list's path need not mark it again.
            Block::set_mark(b, mark);
            if !hot_push(h, c, b) {
                return free_to_slab(h, s, b, c);
            }
            count_tick(h)
        }
    }

    /// Keep `b`, a block of another heap's slab of class `c` that the calling thread frees
    /// (not marked), in the hot list if there is room and fewer than [`FOREIGN_LIMIT`] are kept
    /// (it stays counted as used in its slab, and the thread's next malloc of the class may
    /// hand it out again: no atomic at all, where handing it to the owner costs a CAS here and
    /// work there). Returns false when it was not kept.
    ///
    /// # Safety
    /// `h` is the calling thread's own heap; `b` is a live block start the caller gives up.
    pub unsafe fn keep_foreign(h: *mut Heap, c: SizeClass, b: *mut Block) -> bool {
        let c = c.index();
        // SAFETY: forwarded contract; c < NUM_CLASSES.
        unsafe {
            if (*h).foreign_held >= FOREIGN_LIMIT {
                return false;
            }
            Block::set_mark(b, (*h).mark);
            if !hot_push(h, c, b) {
                room_inc(h, c);
                return false;
            }
            (*h).foreign_held += 1;
            (*h).foreign_classes |= 1 << c;
            count_tick(h);
        }
        true
    }

    /// Send `b`, a block of another heap's slab `s` that the calling thread frees (not marked)
    /// and did not keep, towards its slab: onto the chain of its class in `out`, which goes
    /// onto the slab's remote list with one CAS when it holds `OUT_LIMIT` blocks, when a block
    /// of another slab of the class takes its place, or at the heap's next tick. One atomic
    /// per chain rather than per block: a consumer that frees what a producer allocated frees
    /// runs of blocks of the same slab, and each CAS moves the slab's remote word to this
    /// thread's cache and back (in `handoff` the pushes and the owner's swaps were 18% of the
    /// `perf` samples, mostly waiting on that line).
    ///
    /// # Safety
    /// `h` is the calling thread's own heap; `s` is a live slab of another heap (or of one
    /// this heap may adopt) and `b` a live block start of it the caller gives up.
    pub unsafe fn send_foreign(h: *mut Heap, s: *mut Span, b: *mut Block) {
        // SAFETY: forwarded contract; c < NUM_CLASSES; b is ours until pushed, and a live
        // block keeps its slab valid.
        unsafe {
            let owner = (*s).owner() as *const Heap;
            if owner.is_null() || !(*owner).chained.0.load(Ordering::Relaxed) {
                return remote_free(s, b, h);
            }
            let c = (*s).class().index();
            let bytes = (*s).block_size();
            Block::set_mark(b, (*h).mark);
            // Counted as sent now, so the statistics do not count it as in use.
            add_relaxed(&(*h).sent, bytes);
            let mask = (*h).mask;
            let e = (*h).out.get_unchecked_mut(c);
            if e.slab == s {
                e.add(b, mask);
                if e.count >= OUT_LIMIT[c] as u32 {
                    push_counted(s, e.head, e.tail, e.count);
                    *e = Pending::EMPTY;
                    (*h).out_classes &= !(1 << c);
                }
            } else {
                if !e.slab.is_null() {
                    push_counted(e.slab, e.head, e.tail, e.count);
                }
                *e = Pending::start(s, b);
                (*h).out_classes |= 1 << c;
            }
            count_tick(h);
        }
    }

    /// Push every chain of `out` onto its slab's remote list.
    pub fn flush_out(&mut self) {
        let mut classes = self.out_classes;
        while classes != 0 {
            let e = &mut self.out[classes.trailing_zeros() as usize];
            classes &= classes - 1;
            // SAFETY: the chain holds marked blocks of its slab, counted as sent (type
            // invariant).
            unsafe { push_counted(e.slab, e.head, e.tail, e.count) };
            *e = Pending::EMPTY;
        }
        self.out_classes = 0;
    }

    /// Abort if the hot list of class `c` is not empty: the fast path gave up on it because
    /// its head's link failed the check (see [`Block::plausible`]).
    pub fn check_hot(&self, c: SizeClass) {
        let b = self.hot[c.index()];
        if !b.is_null() {
            corrupt("malloc", b);
        }
    }

    /// Whether the next block of class `c` would come from fresh memory: no remote frees wait,
    /// the class's current slab (if any) has no free block but those it has yet to carve, and
    /// no other slab of the class is on its queue (those may have free blocks).
    pub fn would_carve(&self, c: SizeClass) -> bool {
        if !self.remote.0.head.load(Ordering::Relaxed).is_null() || self.queues[c.index()].len() > 1
        {
            return false;
        }
        let s = self.direct[c.index()];
        // SAFETY: direct[c] is always a valid span (ours, or the empty one, only read).
        unsafe { (*s).free_is_empty() && (*s).local_is_empty() }
    }

    /// The common slow path, short: when no other thread has freed blocks to this heap's slabs
    /// since it last looked, give a block of the class's current slab after refilling its
    /// `free` list from its local list or by carving its next page (`Span::refill`). Null, for
    /// the full slow path, when remote frees wait, when the current slab has neither (or is
    /// the empty span), or when its `free` list is not empty (the fast path found a bad link
    /// there, which the full path reports).
    ///
    /// Why: a thread allocating many blocks without freeing them carves a page at a time, and
    /// each page went through the whole slow path (the purge clock, `collect_remote`, the
    /// queue walk): under callgrind `order -m fifo -s 0.1` made 25 382 slow-path calls, about
    /// 400 instructions each, for 500 000 mallocs. The purge clock is still checked by the
    /// heap's tick and the full slow path.
    pub fn refill_current(&mut self, c: SizeClass) -> *mut u8 {
        if !self.remote.0.head.load(Ordering::Relaxed).is_null() {
            return ptr::null_mut();
        }
        let s = self.direct[c.index()];
        if s == EMPTY_SPAN.0.get() {
            return ptr::null_mut();
        }
        // SAFETY: a current slab other than the empty span is a slab of ours, on queue c.
        unsafe {
            let span = &mut *s;
            if !span.free_is_empty() || !span.refill() {
                return ptr::null_mut();
            }
            Span::pop_checked(s) as *mut u8
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
                let mut b = Span::pop_checked(s);
                if b.is_null() && span.refill() {
                    b = Span::pop_checked(s);
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
        let bit = 1u64 << c.index();
        let pages = if self.slabs_made & bit == 0 {
            c.first_slab_pages()
        } else {
            c.slab_pages()
        };
        self.slabs_made |= bit;
        let s = slab::create(erased(self), c, pages, &mut self.runs);
        if s.is_null() {
            return ptr::null_mut();
        }
        // SAFETY: s is a fresh slab owned by self, on no list.
        unsafe {
            self.queues[c.index()].push_front(s);
            self.sync_direct(c.index());
            (*s).refill();
            Span::pop_checked(s) as *mut u8
        }
    }

    /// Point `direct[c]` at the head of the class queue, or the empty span.
    #[inline]
    fn sync_direct(&mut self, c: usize) {
        let h = self.queues[c].head();
        self.direct[c] = if h.is_null() { EMPTY_SPAN.0.get() } else { h };
    }

    /// Take in every block other threads freed to this heap's slabs: one swap for the stack of
    /// slabs with remote frees, one for each slab's list.
    pub fn collect_remote(&mut self) {
        if self.remote.0.head.load(Ordering::Relaxed).is_null() {
            return;
        }
        let list = self.remote.0.head.swap(ptr::null_mut(), Ordering::Acquire);
        let n = &self.remote.0.collections;
        n.store(n.load(Ordering::Relaxed).wrapping_add(1), Ordering::Relaxed);
        // SAFETY: the slabs were pushed onto our stack; now they are ours to take from.
        unsafe { self.take_spans(list) };
    }

    /// Take the remote lists of the slabs on `list` (a stack of slabs with remote frees taken
    /// off a heap: this one's, or one this heap adopts) into their local lists; a slab that is
    /// not ours (it changed hands after the push that named it) goes to its owner's stack.
    ///
    /// # Safety
    /// `list` was taken whole off a heap's stack of slabs with remote frees.
    unsafe fn take_spans(&mut self, mut s: *mut Span) {
        let me = erased(self);
        let mut bytes = 0;
        while !s.is_null() {
            // SAFETY: a span on the stack is a live slab (its remote list is not empty, so it
            // holds blocks in use). Its link is read before its list is taken: once the list
            // is empty, a remote free may push the span onto a stack again.
            unsafe {
                let next = (*s).remote_next().load(Ordering::Relaxed);
                if (*s).owner() == me {
                    let n = (*s).take_remote();
                    bytes += n as usize * (*s).block_size();
                    self.after_free(s);
                } else {
                    notify((*s).owner().cast(), s);
                }
                s = next;
            }
        }
        add_relaxed(&self.collected, bytes);
        if bytes != 0
            && !self.chained.0.load(Ordering::Relaxed)
            && self.collected.load(Ordering::Relaxed) - self.chain_from >= CHAIN_AFTER
        {
            self.chained.0.store(true, Ordering::Relaxed);
        }
    }

    /// Empty hot list `c`, each link checked: blocks of other heaps' slabs go to `out`; this
    /// heap's own stay on the list if `keep_own`, else go back to their slabs.
    fn drain_hot(&mut self, c: usize, keep_own: bool, out: &mut Outbox) {
        let me = erased(self);
        let (mut b, mut kept, mut n) = (self.hot[c], ptr::null_mut::<Block>(), 0i8);
        while !b.is_null() {
            // SAFETY: hot blocks are marked free blocks (type invariant), checked as they are
            // followed.
            unsafe {
                let (s, next) = follow_held(b, self.mask);
                if (*s).owner() != me {
                    if !self.lender.is_null() && (*s).owner() == self.lender.cast() && keep_own {
                        // b leaves the hot list (rebuilt below without it) for the borrowed one
                        self.push_borrowed(c, b);
                    } else {
                        out.add(s, b, self);
                    }
                } else if keep_own {
                    Block::set_next(b, kept, self.mask);
                    kept = b;
                    n += 1;
                } else {
                    self.free_local(s, b);
                }
                b = next;
            }
        }
        self.hot[c] = kept;
        self.hot_room[c].store(HOT_LIMIT[c] - n, Ordering::Relaxed);
    }

    /// Give every block held in the hot lists and the borrowed lists back to its slab, or
    /// send it to its slab's owner (one chain and one CAS per slab, see [`Outbox`]), and push
    /// the chains of `out`.
    pub fn flush_hot(&mut self) {
        let mut out = Outbox::new();
        for c in 0..NUM_CLASSES {
            self.drain_hot(c, false, &mut out);
        }
        self.drain_borrowed(self.borrowed_classes, &mut out);
        out.send(self);
        self.foreign_held = 0;
        self.foreign_classes = 0;
        self.flush_out();
    }

    /// Send the other heaps' blocks kept in the hot lists home, one chain and one CAS per
    /// slab (up to [`Outbox`]'s capacity; blocks of further slabs go one by one), and push the
    /// chains of `out`; the heap's own blocks stay.
    pub fn flush_foreign(&mut self) {
        self.flush_out();
        if self.foreign_classes == 0 {
            // (The common case at a tick: no outbox to build.)
            return;
        }
        let mut out = Outbox::new();
        let mut classes = self.foreign_classes;
        while classes != 0 {
            let c = classes.trailing_zeros() as usize;
            classes &= classes - 1;
            self.drain_hot(c, true, &mut out);
        }
        out.send(self);
        self.foreign_held = 0;
        self.foreign_classes = 0;
    }

    /// Whether `borrowed[c]` holds blocks.
    #[inline]
    pub fn has_borrowed(&self, c: SizeClass) -> bool {
        self.borrowed_classes & (1 << c.index()) != 0
    }

    /// Hand out the first block of `borrowed[c]`, or null when that list is empty. The next
    /// block is checked (a free block start of a slab of class `c`) before it becomes the
    /// head: a bad link aborts with a report.
    pub fn pop_borrowed(&mut self, c: SizeClass) -> *mut u8 {
        let ci = c.index();
        let b = self.borrowed[ci];
        if b.is_null() {
            return b as *mut u8;
        }
        // SAFETY: borrowed blocks are marked free blocks held by this heap (type invariant);
        // the successor is checked before it is followed any further.
        unsafe {
            let n = Block::next(b, self.mask);
            if n.is_null() {
                self.borrowed_classes &= !(1 << ci);
            } else if !Block::plausible(n)
                || (*slab_of_free_block(n)).class().index() != ci
                || !Block::is_marked(n, self.mark)
            {
                corrupt("malloc", b);
            }
            self.borrowed[ci] = n;
            Block::clear_mark(b);
        }
        self.borrowed_used |= 1 << ci;
        sub_relaxed(&self.borrowed_bytes, CLASS_SIZE[ci] as usize);
        b as *mut u8
    }

    /// Take blocks that other threads freed to slabs of class `c` of `victim`, a heap whose
    /// thread has left them there, not taken, for a while ([`Heap::idle_victim`]). The
    /// victim's stack of slabs with remote frees is taken whole; the remote lists of its slabs
    /// of class `c`, up to [`STEAL_BYTES`], go onto `borrowed[c]` (one swap each: no block is
    /// touched but the old head's tail), and the other slabs go back onto their owners'
    /// stacks. The blocks stay counted as used in their
    /// slabs, so no slab is released under them; this thread's mallocs hand them out, and its
    /// frees of them keep them too while the victim stays idle ([`Heap::keep_lent`]), else
    /// send them home like any other heap's blocks. Returns whether any was taken.
    ///
    /// Why: a thread that allocates and then waits (a main thread that builds the data its
    /// workers then replace, and joins them) owns slabs whose blocks the others free, and it
    /// never takes them back while it waits. `larson -t 4` peaked at 27 MiB against 22.5 when
    /// its main thread kept allocating meanwhile (and so kept collecting).
    ///
    /// # Safety
    /// `victim` is a heap other than this one (heaps are never unmapped).
    unsafe fn steal(&mut self, victim: *mut Heap, c: SizeClass) -> bool {
        let ci = c.index();
        // SAFETY: forwarded contract; the stack head is an atomic.
        let stack = unsafe { &(*ptr::addr_of!((*victim).remote)).0.head };
        if stack.load(Ordering::Relaxed).is_null() {
            return false;
        }
        let mut s = stack.swap(ptr::null_mut(), Ordering::Acquire);
        let me = erased(self);
        let (mut bytes, mut others, mut others_tail) =
            (0, ptr::null_mut::<Span>(), ptr::null_mut());
        let mut mine = ptr::null_mut::<Span>();
        while !s.is_null() {
            // SAFETY: taken whole off a stack: live slabs with remote frees, which we may take
            // lists from or put back on a stack. Each link is read before the slab's list is
            // taken or the slab pushed again (either lets a push name it on a stack anew).
            unsafe {
                let next = (*s).remote_next().load(Ordering::Relaxed);
                if (*s).class().index() == ci && bytes < STEAL_BYTES {
                    let (head, tail, n) = Span::steal_remote(s);
                    if n != 0 {
                        Block::set_next(tail, self.borrowed[ci], self.mask);
                        self.borrowed[ci] = head;
                        bytes += n as usize * (*s).block_size();
                    }
                } else if (*s).owner() == victim.cast() {
                    (*s).remote_next().store(others, Ordering::Relaxed);
                    if others.is_null() {
                        others_tail = s;
                    }
                    others = s;
                } else if (*s).owner() == me {
                    // ours (we adopted the victim's slabs since the push): taken in below,
                    // through `self`, as a collection would
                    (*s).remote_next().store(mine, Ordering::Relaxed);
                    mine = s;
                } else {
                    notify((*s).owner().cast(), s);
                }
                s = next;
            }
        }
        if !others.is_null() {
            // SAFETY: a chain of the victim's own slabs with remote frees, on no stack.
            unsafe { notify_chain(victim, others, others_tail) };
        }
        // SAFETY: a chain of slabs with remote frees taken off a stack, linked as one.
        unsafe { self.take_spans(mine) };
        if bytes == 0 {
            return false;
        }
        self.borrowed_classes |= 1 << ci;
        add_relaxed(&self.borrowed_bytes, bytes);
        // Taken off remote lists: collected, for the statistics (see the type's invariants);
        // not taken in by this heap's own slabs, so not counted towards its chaining.
        add_relaxed(&self.collected, bytes);
        self.chain_from = self.chain_from.wrapping_add(bytes);
        true
    }

    /// Send the blocks of the borrowed lists of `classes` (a bit per class) home: those of
    /// our own slabs (we may have adopted their heap since) to their slabs, the others
    /// through `out`.
    fn drain_borrowed(&mut self, classes: u64, out: &mut Outbox) {
        let me = erased(self);
        let mut left = classes & self.borrowed_classes;
        while left != 0 {
            let c = left.trailing_zeros() as usize;
            left &= left - 1;
            let mut b = self.borrowed[c];
            while !b.is_null() {
                // SAFETY: borrowed blocks are marked free blocks of slabs of class c held by
                // this heap (type invariant), checked as they are followed.
                unsafe {
                    let (s, next) = follow_held(b, self.mask);
                    if (*s).owner() != me {
                        out.add(s, b, self);
                    } else {
                        self.free_local(s, b);
                    }
                    sub_relaxed(&self.borrowed_bytes, CLASS_SIZE[c] as usize);
                    b = next;
                }
            }
            self.borrowed[c] = ptr::null_mut();
            self.borrowed_classes &= !(1 << c);
        }
    }

    /// At the tick: send every borrowed block home when the lender's thread is taking its
    /// blocks again, else every [`RETURN_EVERY`] ticks those of the classes none of whose
    /// borrowed blocks was handed out since the previous time.
    fn return_unused_borrowed(&mut self) {
        if self.borrowed_classes == 0 {
            return;
        }
        let unused = if !self.lender.is_null()
            // SAFETY: heaps are never unmapped.
            && unsafe { Heap::remote_state(self.lender) }.1 != self.lender_seen
        {
            // Its thread is taking its blocks again: every borrowed block goes home now.
            self.lender = ptr::null_mut();
            self.borrowed_classes
        } else if self.ticks % RETURN_EVERY == 0 {
            self.borrowed_classes & !self.borrowed_used
        } else {
            return;
        };
        self.borrowed_used = 0;
        if unused != 0 {
            let mut out = Outbox::new();
            self.drain_borrowed(unused, &mut out);
            out.send(self);
        }
    }

    /// Keep `b`, a block of slab `s` that the calling thread frees, on the borrowed list of
    /// its class if `s` belongs to the idle heap this one borrows from (see [`Heap::steal`]).
    /// Returns false when it was not kept.
    ///
    /// # Safety
    /// `h` is the calling thread's own heap; `s` is a live slab of another heap and `b` a live
    /// block start of it the caller gives up.
    pub unsafe fn keep_lent(h: *mut Heap, s: *mut Span, b: *mut Block) -> bool {
        // SAFETY: forwarded contract.
        unsafe {
            if (*h).lender.is_null() || (*s).owner() != (*h).lender.cast() {
                return false;
            }
            Block::set_mark(b, (*h).mark);
            // b is a live block of s, which the caller gives up, now marked.
            (*h).push_borrowed((*s).class().index(), b);
            count_tick(h);
        }
        true
    }

    /// Put `b` on `borrowed[c]`.
    ///
    /// # Safety
    /// `b` is a marked free block start of a live slab of class `c` (another heap's, or one
    /// this heap adopted), on no list, that nobody else uses: the caller gives it to this heap.
    unsafe fn push_borrowed(&mut self, c: usize, b: *mut Block) {
        // SAFETY: forwarded contract: b is ours to link.
        unsafe { Block::set_next(b, self.borrowed[c], self.mask) };
        self.borrowed[c] = b;
        self.borrowed_classes |= 1 << c;
        add_relaxed(&self.borrowed_bytes, CLASS_SIZE[c] as usize);
    }

    /// Set or clear (null) the idle heap this one borrows from ([`Heap::keep_lent`]), with
    /// its collection count `seen` (when found idle).
    fn set_lender(&mut self, h: *mut Heap, seen: u32) {
        self.lender = h;
        self.lender_seen = seen;
    }

    /// Whether heap `h`'s stack of slabs with remote frees is not empty, and how many times
    /// its owner has taken that stack (relaxed reads of atomics: a snapshot).
    ///
    /// # Safety
    /// `h` is a heap (heaps are never unmapped).
    unsafe fn remote_state(h: *const Heap) -> (bool, u32) {
        // SAFETY: forwarded contract; atomic fields read through shared references to them.
        let r = unsafe { &(*ptr::addr_of!((*h).remote)).0 };
        (
            !r.head.load(Ordering::Relaxed).is_null(),
            r.collections.load(Ordering::Relaxed),
        )
    }

    /// Put heap `h` at the head of the list of all heaps.
    ///
    /// # Safety
    /// `h` is a heap that is never unmapped and not on the list yet; the caller keeps
    /// publishers apart (the registry holds its lock).
    pub unsafe fn publish(h: *mut Heap) {
        // SAFETY: forwarded contract; the link is an atomic.
        unsafe {
            (*ptr::addr_of!((*h).all_next))
                .store(ALL_HEAPS.load(Ordering::Relaxed), Ordering::Relaxed);
        }
        // Release: the watch walks the list without a lock.
        ALL_HEAPS.store(h, Ordering::Release);
    }

    /// The newest heap on the list of all heaps (null: none yet).
    pub fn first_of_all() -> *mut Heap {
        ALL_HEAPS.load(Ordering::Acquire)
    }

    /// The heap after `h` on the list of all heaps (null: `h` is the oldest).
    ///
    /// # Safety
    /// `h` is on the list.
    pub unsafe fn next_of_all(h: *mut Heap) -> *mut Heap {
        // SAFETY: forwarded contract; the link is an atomic, set before `h` was published.
        unsafe { &*ptr::addr_of!((*h).all_next) }.load(Ordering::Relaxed)
    }

    /// At the tick, and at most once a tick: when this heap watches no heap, look at up to
    /// [`WATCH_SCAN`] more heaps of the list of all heaps, round-robin, for one with blocks
    /// waiting on its stack of slabs with remote frees, and start watching it. (At the tick
    /// rather than only when memory runs short: a thread that frees a lot and then allocates
    /// a lot has watched the idle heap long enough by the time it allocates.)
    fn look_for_watch(&mut self) {
        let me: *mut Heap = self;
        let now = self.ticks;
        if !self.watch.is_null() || self.scan_tick == now {
            return;
        }
        self.scan_tick = now;
        let mut n = self.cursor;
        for _ in 0..WATCH_SCAN {
            if !n.is_null() {
                // SAFETY: the cursor is a heap of the list (heaps are never unmapped).
                n = unsafe { Heap::next_of_all(n) };
            }
            if n.is_null() {
                n = Heap::first_of_all();
            }
            if n == me {
                continue;
            }
            // SAFETY: as above.
            let (waiting, seen) = unsafe { Heap::remote_state(n) };
            if waiting {
                self.watch = n;
                self.watch_seen = seen;
                self.watch_tick = now;
                self.watch_missed = 0;
                break;
            }
        }
        self.cursor = n;
    }

    /// Take blocks of class `c` that other threads freed to an idle heap's slabs
    /// ([`Heap::idle_victim`], [`Heap::steal`]) and hand out one; null when there is none.
    /// Its first check (this heap watches a heap, or has not looked for one since its last
    /// tick) is inline: most calls end there.
    #[inline(always)]
    pub fn borrow(&mut self, c: SizeClass) -> *mut u8 {
        if self.watch.is_null() && self.scan_tick == self.ticks {
            return ptr::null_mut();
        }
        self.borrow_slow(c)
    }

    /// [`Heap::borrow`] past its first check.
    #[inline(never)]
    fn borrow_slow(&mut self, c: SizeClass) -> *mut u8 {
        let victim = self.idle_victim(c);
        if victim.is_null() {
            return ptr::null_mut();
        }
        // SAFETY: the watched heap is never this one (`look_for_watch` skips it).
        if !unsafe { self.steal(victim, c) } {
            self.steal_missed(c);
            return ptr::null_mut();
        }
        self.pop_borrowed(c)
    }

    /// The heap this one watches, if its owner has left blocks freed to its slabs there, not
    /// taken, for at least [`IDLE_TICKS`] of this heap's ticks, and a steal of class `c` from
    /// it has not come back empty lately ([`Heap::steal_missed`]); else null. A heap found
    /// idle becomes this heap's lender ([`Heap::keep_lent`]); one found taking its blocks
    /// again, or idle with nothing waiting for [`WATCH_EMPTY_TICKS`], is no longer watched,
    /// and the next heap with blocks waiting is looked for ([`Heap::look_for_watch`]). The
    /// lender changes only when another heap is found idle; the tick drops it once it
    /// collects again.
    ///
    /// "Not taken" is read from the heap's collection count ([`Heap::remote_state`]): a
    /// thread that allocates takes its remote frees at its next refill, and one that frees at
    /// its next tick, so a count that stays the same while blocks wait means the thread is
    /// doing neither. The heap may be a live thread's (blocked, or busy elsewhere), an exited
    /// one's (abandoned, until adopted), or orphaned by a fork.
    fn idle_victim(&mut self, c: SizeClass) -> *mut Heap {
        let w = self.watch;
        if !w.is_null() {
            let now = self.ticks;
            // SAFETY: heaps are never unmapped.
            let (waiting, seen) = unsafe { Heap::remote_state(w) };
            let since = now.wrapping_sub(self.watch_tick);
            if seen == self.watch_seen && (waiting || since < WATCH_EMPTY_TICKS) {
                if now.wrapping_sub(self.missed_tick) >= IDLE_TICKS {
                    // blocks of those classes may have come since
                    self.watch_missed = 0;
                }
                if since >= IDLE_TICKS {
                    self.set_lender(w, seen);
                    if waiting && self.watch_missed & (1 << c.index()) == 0 {
                        return w;
                    }
                }
                return ptr::null_mut();
            }
            // (The lender, if it was this heap, stays until the tick sees it collect again
            // and sends every borrowed block home: see `return_unused_borrowed`.)
            self.watch = ptr::null_mut();
        }
        self.look_for_watch();
        ptr::null_mut()
    }

    /// A steal of class `c` from the heap [`Heap::idle_victim`] gave came back empty: do not
    /// try that class again for [`IDLE_TICKS`] ticks while the watch lasts (each try takes
    /// the watched heap's whole stack of slabs with remote frees and puts it back).
    fn steal_missed(&mut self, c: SizeClass) {
        if self.watch_missed == 0 {
            self.missed_tick = self.ticks;
        }
        self.watch_missed |= 1 << c.index();
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
                        slab::release(s, &mut self.runs);
                    }
                }
                s = next;
            }
            self.sync_direct(c);
        }
    }

    /// The run cache of heap `h`, for the medium tier.
    ///
    /// # Safety
    /// `h` is the calling thread's own heap (not a static or shared one), and no other
    /// reference to its run cache is live.
    pub unsafe fn runs<'a>(h: *mut Heap) -> &'a mut RunCache {
        // SAFETY: forwarded contract.
        unsafe { &mut *ptr::addr_of_mut!((*h).runs) }
    }

    /// Give every cached run back to the page allocator.
    pub fn flush_runs(&mut self) {
        self.runs.flush();
    }

    /// Pages in the run cache of heap `h` (statistics: a relaxed read of an atomic).
    ///
    /// # Safety
    /// `h` is a valid heap (heaps are never unmapped).
    pub unsafe fn cached_run_pages(h: *const Heap) -> usize {
        // SAFETY: forwarded contract; the counter is an atomic read through a shared
        // reference to the cache alone.
        unsafe { (*ptr::addr_of!((*h).runs)).pages() }
    }

    /// The heap goes to a new thread: it is no longer retired (see `Remote::retired`), it
    /// borrows from nobody, other threads send its blocks home one by one until it has taken
    /// in [`CHAIN_AFTER`] bytes of them, and, if it served a thread before, its first slab
    /// of each class up to 2 KiB is a small one.
    ///
    /// Why small first slabs: a short-lived thread that allocates a few blocks of many
    /// classes holds a slab of each; slabs reuse runs whose pages earlier slabs made resident,
    /// so each costs its whole run, not just the pages it carves. `threads -t 4` (threads
    /// that allocate 100 blocks of 16 B-2 KiB) peaked at 3.9 MiB with 8-page first slabs and
    /// 3.2-3.3 with 4-page ones (glibc 2.6); `migrate -t 4` 20.6 -> 19.8 MiB (medians of 7
    /// interleaved runs), at 4% more instructions for `threads` (68.4M -> 71.4M under
    /// callgrind, -s 0.1), whose threads make more slabs. For every heap, first thread
    /// included, `realloc -m grow` (one long-lived thread) peaked at 45.9 MiB against 44.6.
    pub fn revive(&mut self) {
        self.remote.0.retired.store(false, Ordering::SeqCst);
        self.lender = ptr::null_mut();
        self.watch = ptr::null_mut();
        // A thread that takes over an exited thread's heap is taken for as short-lived: its
        // first slab of each class is a small one.
        self.slabs_made = if self.reused { 0 } else { u64::MAX };
        self.reused = true;
        self.chain_from = self.collected.load(Ordering::Relaxed);
    }

    /// The heap's thread has exited: other threads send its blocks home one by one.
    pub fn set_exited(&mut self) {
        self.chained.0.store(false, Ordering::Relaxed);
    }

    /// Whether the heap owns no slab.
    pub fn owns_nothing(&self) -> bool {
        self.full.is_empty() && self.queues.iter().all(|q| q.is_empty())
    }

    /// Free block `b` of our slab `s` (flushed hot lists, and frees into our slabs on the full
    /// list).
    ///
    /// # Safety
    /// We own `s`; `b` is a block of it, already marked free, that nobody else uses.
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
                slab::release(s, &mut self.runs);
            }
            self.sync_direct(c);
        }
    }

    /// Statistics of heap `h`: (bytes of the blocks in its hot and borrowed lists, bytes it
    /// sent to slabs' remote lists, bytes it collected from them). Relaxed reads of atomics only, through
    /// the raw pointer (the owner may be changing the heap meanwhile): a snapshot, exact when
    /// the heap's thread is not in the allocator.
    ///
    /// # Safety
    /// `h` is a valid heap (heaps are never unmapped).
    pub unsafe fn cache_counts(h: *const Heap) -> (usize, usize, usize) {
        let mut hot = 0;
        for (c, &limit) in HOT_LIMIT.iter().enumerate() {
            // SAFETY: forwarded contract; an atomic field, read through a shared reference to
            // itself only.
            let room = unsafe { &*ptr::addr_of!((*h).hot_room[c]) }.load(Ordering::Relaxed);
            hot += (limit - room).max(0) as usize * CLASS_SIZE[c] as usize;
        }
        // SAFETY: as above.
        hot += unsafe { &*ptr::addr_of!((*h).borrowed_bytes) }.load(Ordering::Relaxed);
        // SAFETY: as above.
        let (sent, collected) = unsafe {
            (
                (*ptr::addr_of!((*h).sent)).load(Ordering::Relaxed),
                (*ptr::addr_of!((*h).collected)).load(Ordering::Relaxed),
            )
        };
        (hot, sent, collected)
    }

    /// Bytes pushed onto slabs' remote lists by threads without a heap of their own.
    pub fn orphan_sent() -> usize {
        ORPHAN_SENT.load(Ordering::Relaxed)
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
        // Retired before its stack is taken, and both SeqCst like the pushers' CAS and load:
        // a push that lands on the stack after the swap then sees the flag and forwards the
        // slab to its new owner itself. (With the flag set after the swap, such a slab stayed
        // on this heap's stack, with the blocks freed to it afterwards, until the heap went
        // to another thread; with an Acquire swap the model would not promise that the push
        // sees the flag, though x86's `xchg` would.) Slabs already on the stack are ours now.
        victim.remote.0.retired.store(true, Ordering::SeqCst);
        let list = victim.remote.0.head.swap(ptr::null_mut(), Ordering::SeqCst);
        // SAFETY: taken whole off the victim's stack.
        unsafe { self.take_spans(list) };
        victim.runs.flush();
    }

    /// Check `b`, a block on one of this heap's hot or borrowed lists of class `c`: a marked
    /// block start of a slab of class `c`, and, if the slab is ours, on none of its lists.
    /// Returns whether the slab is ours. Aborts on violation.
    fn check_held(&self, b: *mut Block, c: usize) -> bool {
        let s = pagemap::span_of(b as usize);
        xa_check!(!s.is_null());
        // SAFETY: page-map entries are valid span headers.
        let span = unsafe { &*s };
        xa_check!(span.kind() == Kind::Slab && span.class().index() == c);
        xa_check!(span.is_block_start(b as usize));
        // SAFETY: b is a block start of a live slab (checked above).
        xa_check!(unsafe { Block::is_marked(b, self.mark) });
        let own = span.owner() == erased(self as *const Heap as *mut Heap);
        if own {
            // another heap's slab lists are its owner's to walk
            // SAFETY: we own the span.
            xa_check!(!unsafe { span.holds_free(b as *const u8) });
        }
        own
    }

    /// Verify the invariants documented on the type. Aborts on violation.
    ///
    /// # Safety
    /// The caller owns the heap.
    pub unsafe fn check_invariants(&self) {
        let me = erased(self as *const Heap as *mut Heap);
        let mut foreign = 0;
        for (c, &head) in self.hot.iter().enumerate() {
            let (mut b, mut n) = (head, 0usize);
            while !b.is_null() {
                n += 1;
                xa_check!(n <= HOT_LIMIT[c] as usize);
                if !self.check_held(b, c) {
                    foreign += 1;
                    xa_check!(self.foreign_classes & (1 << c) != 0);
                }
                // SAFETY: hot blocks are ours (checked above).
                b = unsafe { Block::next(b, self.mask) };
            }
            let room = self.hot_room[c].load(Ordering::Relaxed);
            xa_check!(n == (HOT_LIMIT[c] - room) as usize);
        }
        xa_check!(foreign <= self.foreign_held && self.foreign_held <= FOREIGN_LIMIT);
        let mut borrowed = 0;
        for (c, &head) in self.borrowed.iter().enumerate() {
            xa_check!(head.is_null() == (self.borrowed_classes & (1 << c) == 0));
            let mut b = head;
            while !b.is_null() {
                self.check_held(b, c);
                borrowed += CLASS_SIZE[c] as usize;
                // SAFETY: as above.
                b = unsafe { Block::next(b, self.mask) };
            }
        }
        xa_check!(borrowed == self.borrowed_bytes.load(Ordering::Relaxed));
        for (c, e) in self.out.iter().enumerate() {
            xa_check!(e.slab.is_null() == (self.out_classes & (1 << c) == 0));
            if e.slab.is_null() {
                xa_check!(e.count == 0);
                continue;
            }
            xa_check!(e.count >= 1 && e.count <= OUT_LIMIT[c] as u32);
            // SAFETY: the chain's blocks keep its slab live (type invariant).
            let span = unsafe { &*e.slab };
            xa_check!(span.kind() == Kind::Slab && span.class().index() == c);
            let (mut b, mut n, mut last) = (e.head, 0u32, ptr::null_mut());
            while n < e.count {
                xa_check!(!b.is_null() && pagemap::span_of(b as usize) == e.slab);
                xa_check!(span.is_block_start(b as usize));
                // SAFETY: a block of the chain, ours until pushed.
                xa_check!(unsafe { Block::is_marked(b, self.mark) });
                n += 1;
                last = b;
                if n < e.count {
                    // SAFETY: as above; the tail's link is not followed.
                    b = unsafe { Block::next(b, self.mask) };
                }
            }
            xa_check!(last == e.tail);
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
                    span.check_invariants(self.mark);
                });
            }
        }
        // SAFETY: we own the full list and its spans.
        unsafe {
            self.full.check(|span| {
                xa_check!(span.in_full() && span.owner() == me);
            });
        }
        self.runs.check_invariants();
    }
}

/// The slab of `b`, a free block a heap holds (on a hot or borrowed list), and the next block
/// of its list: aborts if the link does not decode to a plausible pointer, or `b` is not a
/// block start of a live slab.
///
/// # Safety
/// `b` was reached through a checked link of such a list (or is its head).
unsafe fn follow_held(b: *mut Block, mask: u64) -> (*mut Span, *mut Block) {
    // SAFETY: forwarded contract; a plausible head was checked when it was pushed or reached.
    let next = unsafe { Block::next(b, mask) };
    if !Block::plausible(next) {
        corrupt("malloc", b);
    }
    (slab_of_free_block(b), next)
}

/// The slab of `b`, a block taken from a free list; aborts if `b` is not a block start of a
/// live slab of ours (the link that led here was bad).
fn slab_of_free_block(b: *mut Block) -> *mut Span {
    let s = pagemap::span_of(b as usize);
    // SAFETY: page-map entries are valid span headers.
    let ok =
        !s.is_null() && unsafe { (*s).kind() == Kind::Slab && (*s).is_block_start(b as usize) };
    if !ok {
        corrupt("malloc", b);
    }
    s
}

/// `hot_room[c] += 1` by a relaxed load and store (the owner is the only writer): a pop, or
/// the undoing of a failed [`hot_push`].
///
/// # Safety
/// `h` is the calling thread's own heap; `c < NUM_CLASSES`.
#[inline(always)]
unsafe fn room_inc(h: *mut Heap, c: usize) {
    // SAFETY: forwarded contract.
    let room = unsafe { (*h).hot_room.get_unchecked(c) };
    room.store(room.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
}

/// Push `b` onto `h`'s hot list of class `c`, if there is room. The room count is decremented
/// first, so the fast path pays one `sub` on memory and a sign test; when the list was full
/// this returns false with the count one below zero, and the caller restores it with
/// [`room_inc`] (off the fast path).
///
/// # Safety
/// `h` is the calling thread's own heap; `b` a block start of class `c` that the caller gives
/// up, already marked free with `h`'s mark.
#[inline(always)]
unsafe fn hot_push(h: *mut Heap, c: usize, b: *mut Block) -> bool {
    // SAFETY: forwarded contract; c < NUM_CLASSES.
    unsafe {
        // The decrement and its sign test as one instruction and a branch, addressing
        // `hot_room[c]` as `h + c + offset`. Compiled from atomics, the relaxed load, test,
        // decrement and store take four (the compiler folds neither the load into the test nor
        // the store into the decrement). The asm is the only writer's load and store of the
        // atomic byte `hot_room[c]` (c < NUM_CLASSES): other threads only load it.
        core::arch::asm!(
            "sub byte ptr [{h} + {c} + {off}], 1",
            "jl {full}",
            h = in(reg) h,
            c = in(reg) c,
            off = const core::mem::offset_of!(Heap, hot_room),
            full = label { return false; },
            options(nostack),
        );
        let head = (*h).hot.get_unchecked_mut(c);
        Block::set_next(b, *head, (*h).mask);
        *head = b;
    }
    true
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
/// `h` is the calling thread's heap, which owns slab `s` of class `c`; `b` is a block start
/// of `s` in use until now, which the caller marked free and gives up; a [`hot_push`] of `b`
/// just returned false.
#[inline(never)]
unsafe fn free_to_slab(h: *mut Heap, s: *mut Span, b: *mut Block, c: usize) {
    // SAFETY: forwarded contract.
    unsafe {
        room_inc(h, c);
        if Span::push_local(s, b) {
            if *(*h).direct.get_unchecked(c) != s {
                return (*h).after_free(s);
            }
            // An empty slab that is its class's current one stays, ready for the next malloc.
            count_tick(h);
        }
    }
}

/// Every [`TICK_EVERY`] counted frees ([`TICK_SOON`] while pages wait to be purged): check the
/// purge clock; and every [`TICK_EVERY`], take in the blocks other threads freed to us (a
/// thread that only cycles a few blocks would otherwise never collect them) and send kept
/// foreign blocks and the chains of `out` home.
#[cold]
#[inline(never)]
fn tick_now(h: *mut Heap) {
    // SAFETY: h is the calling thread's own heap, and no list of it is being changed (the free
    // that brought us here is complete).
    unsafe {
        (*h).flush_countdown -= (*h).tick_period as i32;
        if (*h).flush_countdown <= 0 {
            (*h).flush_countdown = TICK_EVERY as i32;
            (*h).ticks = (*h).ticks.wrapping_add(1);
            (*h).collect_remote();
            (*h).flush_foreign();
            (*h).return_unused_borrowed();
            (*h).look_for_watch();
            (*h).runs.decay();
        }
    }
    let period = if purge::tick() { TICK_SOON } else { TICK_EVERY };
    // SAFETY: as above.
    unsafe {
        (*h).tick_period = period;
        (*h).tick_countdown = period;
    }
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

/// `a += n` by a relaxed load and store: for counters only their owner writes.
#[inline]
fn add_relaxed(a: &AtomicUsize, n: usize) {
    a.store(a.load(Ordering::Relaxed).wrapping_add(n), Ordering::Relaxed);
}

/// `a -= n` by a relaxed load and store, for counters with a single writer.
fn sub_relaxed(a: &AtomicUsize, n: usize) {
    a.store(a.load(Ordering::Relaxed).wrapping_sub(n), Ordering::Relaxed);
}

/// Mark block `b` of slab `s` free and push it onto the slab's remote list: one CAS (and one
/// more when the list was empty, to name the slab to its owner). `from` is the pushing
/// thread's own heap, which counts the bytes sent, or null for a thread without one.
///
/// # Safety
/// `s` is a live slab and `b` a live block of it that the caller gives up; `from` is null or
/// the calling thread's own heap (or one it holds exclusively).
pub unsafe fn remote_free(s: *mut Span, b: *mut Block, from: *mut Heap) {
    let mark = secret::keys().1;
    // SAFETY: we own b until the push publishes it; a live block keeps its slab valid.
    unsafe {
        Block::set_mark(b, mark);
        push_chain(s, b, b, 1, from);
    }
}

/// Push the chain `head ..= tail` of `n` marked blocks of slab `s` (linked with the process's
/// mask, the tail's link about to be overwritten) onto the slab's remote
/// list; if that list was empty, put the slab on its owner's stack of slabs with remote frees.
/// `from` counts the bytes sent (null: a thread without a heap).
///
/// # Safety
/// `s` is a live slab; the blocks are marked, live blocks of it, given up by the caller;
/// `from` as for [`remote_free`].
unsafe fn push_chain(s: *mut Span, head: *mut Block, tail: *mut Block, n: u32, from: *mut Heap) {
    // SAFETY: a live slab's header.
    let bytes = n as usize * unsafe { (*s).block_size() };
    // Counted before the push, so the bytes collected never pass the bytes sent.
    if from.is_null() {
        ORPHAN_SENT.fetch_add(bytes, Ordering::Relaxed);
    } else {
        // SAFETY: the caller's own heap; the counter is an atomic field.
        add_relaxed(unsafe { &*ptr::addr_of!((*from).sent) }, bytes);
    }
    // SAFETY: forwarded contract.
    unsafe { push_counted(s, head, tail, n) }
}

/// [`push_chain`] for blocks already counted as sent.
///
/// # Safety
/// As for [`push_chain`].
unsafe fn push_counted(s: *mut Span, head: *mut Block, tail: *mut Block, n: u32) {
    // SAFETY: forwarded contract. Once the push succeeds the owner may take the blocks, but
    // not free the slab: the span stays live while its remote list is not empty, and only
    // its owner empties that list after taking the span off a stack, which it cannot do
    // before this thread pushed it (only the push that found the list empty pushes the span).
    unsafe {
        if Span::push_remote(s, head, tail, n) {
            notify((*s).owner().cast(), s);
        }
    }
}

/// Put slab `s` on heap `to`'s stack of slabs with remote frees (one CAS).
///
/// # Safety
/// `s` is a live slab whose remote list is not empty, on no such stack; `to` is a heap (heaps
/// are never unmapped).
unsafe fn notify(to: *mut Heap, s: *mut Span) {
    // SAFETY: forwarded contract.
    let (stack, link) = unsafe { (&(*to).remote.0.head, (*s).remote_next()) };
    let mut old = stack.load(Ordering::Relaxed);
    loop {
        link.store(old, Ordering::Relaxed);
        match stack.compare_exchange_weak(old, s, Ordering::SeqCst, Ordering::Relaxed) {
            Ok(_) => break,
            Err(h) => old = h,
        }
    }
    // SAFETY: heaps are never unmapped.
    if unsafe { (*to).remote.0.retired.load(Ordering::SeqCst) } {
        // `to` was adopted, maybe after its adopter took this stack: forward what is on it
        // to the slabs' owners (the adopter set them before it set the flag).
        forward_stack(stack);
    }
}

/// Put the chain `first ..= last` of slabs of heap `to` (linked through `remote_next`, each
/// with a non-empty remote list and on no stack) back on `to`'s stack of slabs with remote
/// frees, with one CAS; when `to` was adopted meanwhile, forward what is on its stack to the
/// slabs' owners, as [`notify`] does.
///
/// # Safety
/// As for [`notify`], for every slab of the chain.
unsafe fn notify_chain(to: *mut Heap, first: *mut Span, last: *mut Span) {
    // SAFETY: forwarded contract.
    let stack = unsafe { &(*to).remote.0.head };
    let mut old = stack.load(Ordering::Relaxed);
    loop {
        // SAFETY: `last` is a live slab of the chain, ours to link.
        unsafe { (*last).remote_next().store(old, Ordering::Relaxed) };
        match stack.compare_exchange_weak(old, first, Ordering::SeqCst, Ordering::Relaxed) {
            Ok(_) => break,
            Err(h) => old = h,
        }
    }
    // SAFETY: heaps are never unmapped.
    if unsafe { (*to).remote.0.retired.load(Ordering::SeqCst) } {
        forward_stack(stack);
    }
}

/// Take the whole stack `stack` of an adopted heap and put each slab on its owner's stack.
fn forward_stack(stack: &AtomicPtr<Span>) {
    let mut s = stack.swap(ptr::null_mut(), Ordering::SeqCst);
    while !s.is_null() {
        // SAFETY: taken whole off a stack: live slabs with remote frees, ours to move.
        unsafe {
            let next = (*s).remote_next().load(Ordering::Relaxed);
            notify((*s).owner().cast(), s);
            s = next;
        }
    }
}

/// A chain of blocks of one slab on its way to the slab's remote list (a heap's `out`).
#[derive(Clone, Copy)]
struct Pending {
    /// The slab, null when the chain is empty.
    slab: *mut Span,
    /// The block freed last.
    head: *mut Block,
    /// The block freed first, whose link the push overwrites.
    tail: *mut Block,
    /// Blocks on the chain.
    count: u32,
}

impl Pending {
    const EMPTY: Pending = Pending {
        slab: ptr::null_mut(),
        head: ptr::null_mut(),
        tail: ptr::null_mut(),
        count: 0,
    };

    /// A chain of slab `s` holding block `b` alone.
    fn start(s: *mut Span, b: *mut Block) -> Pending {
        Pending {
            slab: s,
            head: b,
            tail: b,
            count: 1,
        }
    }

    /// Link `b`, a marked block of this chain's slab that the caller gives up, in front.
    ///
    /// # Safety
    /// `b` is a live block start of `self.slab`, ours until the chain is pushed; `mask` is the
    /// process's.
    unsafe fn add(&mut self, b: *mut Block, mask: u64) {
        // SAFETY: forwarded contract.
        unsafe { Block::set_next(b, self.head, mask) };
        self.head = b;
        self.count += 1;
    }
}

/// Blocks on their way to other heaps' slabs, one chain per slab (at most
/// [`Outbox::SLABS`]), each pushed with one CAS.
struct Outbox {
    chains: [Pending; Outbox::SLABS],
    len: usize,
}

impl Outbox {
    const SLABS: usize = 8;

    fn new() -> Self {
        Outbox {
            chains: [Pending::EMPTY; Self::SLABS],
            len: 0,
        }
    }

    /// Add block `b` of another heap's slab `s` (a marked free block the caller gives up) to
    /// its slab's chain, or send it alone when all chains are taken. `from` is the caller's
    /// own heap.
    ///
    /// # Safety
    /// As for [`remote_free`].
    unsafe fn add(&mut self, s: *mut Span, b: *mut Block, from: *mut Heap) {
        match self.chains[..self.len].iter_mut().find(|e| e.slab == s) {
            // SAFETY: b is ours until sent; a live block keeps its slab valid; the mask is
            // the process's.
            Some(e) => unsafe { e.add(b, secret::keys().0) },
            None if self.len < Self::SLABS => {
                self.chains[self.len] = Pending::start(s, b);
                self.len += 1;
            }
            // SAFETY: forwarded contract.
            None => unsafe { remote_free(s, b, from) },
        }
    }

    /// Push every chain onto its slab's remote list.
    fn send(&mut self, from: *mut Heap) {
        for e in &self.chains[..self.len] {
            // SAFETY: the chains hold marked blocks of their slab given up through `add`.
            unsafe { push_chain(e.slab, e.head, e.tail, e.count, from) };
        }
        self.len = 0;
    }
}

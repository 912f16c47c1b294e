//! L4: spans — the header of every run of pages — and the block lists of slabs.
//!
//! A span describes one run of pages handed out by the page allocator. A *slab* span cuts its
//! pages into blocks of one size class; blocks are carved lazily, a page's worth at a time, so
//! memory is touched only when handed out. A *medium* span holds one block: the whole run.
//! Span headers live in their arena's header, never inside the run.
//!
//! The fields are private: [`Span::init_slab`], [`Span::init_medium`] and [`Span::retire`] are
//! the only writers of what a span *is* (kind, class, start, size); the slab's owner changes
//! the block lists through the methods below; [`crate::span_list`] owns the list links.
//!
//! Who may touch what: `free`, `local_free` and `capacity` are the owning heap's only (its
//! thread, or whoever holds that heap exclusively). `owner`, `used`, `kind`, `block_size` and
//! `pages` are atomics, read by other threads (`owner` to route a free, the rest by
//! statistics), written only by the owner (relaxed loads and stores: no read-modify-write
//! instruction, so they cost what plain fields cost). The other fields are written before the
//! span's first block is handed out and read by whoever frees a block of it, which the program
//! synchronised with the allocation.

use crate::os::PAGE;
use crate::size_class::{CLASS_SIZE, NUM_CLASSES, SizeClass, slab_pages};
use core::ptr;
use core::sync::atomic::{AtomicBool, AtomicPtr, AtomicU8, AtomicU32, AtomicUsize, Ordering};

/// A free block: its first word links to the next free block of the same list, encoded with
/// the list's mask ([`crate::secret`]); its second word holds the process's mark XORed with
/// the block's own address once the block has been freed (blocks are at least 16 bytes).
///
/// Why the address: memory keeps a freed block's mark after the block leaves the small-block
/// world (its slab released, the pages reused for a medium block the program copies from), and
/// programs copy uninitialised bytes. A plain process-wide mark could travel that way into the
/// second word of some live block, whose next free would then be taken for a double free (the
/// reason glibc confirms a tcache key match by scanning its cache). A mark bound to the
/// address is found only at the block it was written for, and every hand-out of a small block
/// clears it there.
#[repr(C)]
pub struct Block {
    /// `next ^ mask`.
    link: u64,
    /// `mark ^ address` while the block is free (after a free), anything while it is live.
    mark: u64,
}

impl Block {
    /// The next block of the list `b` is on, decoded with `mask`.
    ///
    /// # Safety
    /// `b` is a free block of ours.
    #[inline(always)]
    pub unsafe fn next(b: *mut Block, mask: u64) -> *mut Block {
        // SAFETY: forwarded contract; blocks are ours, mapped and at least 16 bytes.
        ptr::with_exposed_provenance_mut(unsafe { (*b).link ^ mask } as usize)
    }

    /// Link `b` to `next`, encoded with `mask`.
    ///
    /// # Safety
    /// `b` is a block of ours that nobody else uses now.
    #[inline(always)]
    pub unsafe fn set_next(b: *mut Block, next: *mut Block, mask: u64) {
        // SAFETY: forwarded contract.
        unsafe { (*b).link = next.expose_provenance() as u64 ^ mask };
    }

    /// Whether `b` carries the process's `mark` (bound to its address), i.e. was freed and
    /// not handed out since.
    ///
    /// # Safety
    /// `b` is a block start of one of our slabs.
    #[inline(always)]
    pub unsafe fn is_marked(b: *mut Block, mark: u64) -> bool {
        // SAFETY: forwarded contract.
        let word = unsafe { (*b).mark };
        // Not a plain `==` under a fuzzer: see `same_as_secret`.
        crate::secret::same_as_secret(word, mark ^ b.addr() as u64)
    }

    /// Mark `b` as free with the process's `mark`.
    ///
    /// # Safety
    /// `b` is a block of ours that the program gave up.
    #[inline(always)]
    pub unsafe fn set_mark(b: *mut Block, mark: u64) {
        // SAFETY: forwarded contract.
        unsafe { (*b).mark = mark ^ b.addr() as u64 };
    }

    /// Clear the mark of `b`, which is being handed out.
    ///
    /// # Safety
    /// `b` is a block of ours being handed out.
    #[inline(always)]
    pub unsafe fn clear_mark(b: *mut Block) {
        // SAFETY: forwarded contract.
        unsafe { (*b).mark = 0 };
    }

    /// Whether `next`, decoded from a link, may be a block pointer at all: null or a 16-byte
    /// aligned user-space address (below 2^47). A value written over a link by anybody who
    /// does not know the mask decodes to random high bits and a random low nibble, and
    /// passes with probability 2^-21.
    #[inline(always)]
    pub fn plausible(next: *mut Block) -> bool {
        next.addr() as u64 & IMPLAUSIBLE == 0
    }
}

/// The bits no block address has: above the 47-bit user address space, and below 16.
pub const IMPLAUSIBLE: u64 = 0xffff_8000_0000_000f;

/// Report a free list whose link at `at` decodes to something that is not a block of the list,
/// and abort: `xalloc: <call>(): corrupted free list at 0x…`.
#[cold]
#[inline(never)]
pub fn corrupt(call: &str, at: *mut Block) -> ! {
    crate::debug::misuse(call, "corrupted free list at", at as usize)
}

/// What a span holds.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[repr(u8)]
pub enum Kind {
    /// Not in use: the header of no live run (or the page map's marker of freed runs).
    Unused = 0,
    /// Blocks of one size class.
    Slab = 1,
    /// One medium block: the whole run.
    Medium = 2,
}

/// Marker stored in the owner of medium spans: never equal to a real heap, so the local free
/// fast path (an exact compare with the thread's heap) sends medium blocks to the slow path.
pub const MEDIUM_OWNER: *mut () = ptr::without_provenance_mut(8);

/// Low bit of the owner word, set while a slab sits on its heap's full list (heaps are at least
/// 8-byte aligned, so the bit is free).
pub const FULL_TAG: usize = 1;

/// The list links of a span: used by [`crate::span_list::SpanList`] only.
#[derive(Clone, Copy)]
#[repr(C)]
pub struct Links {
    /// Next span in the same list, or null.
    pub next: *mut Span,
    /// Previous span in the same list, or null.
    pub prev: *mut Span,
}

/// The header of a run of pages.
///
/// Invariants for a slab (checked by [`Span::check_invariants`]):
/// - `used + |free| + |local_free| == capacity <= reserved`, where `used` counts blocks not on
///   this span's two lists: blocks the program holds, blocks other threads freed onto its
///   `remote` list that the owner has not taken yet, and blocks cached in some thread's hot
///   or borrowed list;
/// - `remote` holds blocks of this slab only (each link checked as the owner pops them, once
///   the list is part of `local_free`), marked, links encoded with `mask`, and its word counts
///   them (see [`RemoteWord`]); from the push that makes it
///   non-empty until the owner (or a heap that borrows its blocks, [`Span::steal_remote`])
///   takes it, the span is on exactly one heap's stack of slabs with
///   remote frees (`remote_next`), pushed there by that push (see `heap`), and `remote_tail`
///   is the list's last block (the last block of that push's chain, its link null);
/// - every block on `free`/`local_free` lies in `start..start + capacity * block_size` at a
///   multiple of `block_size`, and appears once; its link is encoded with `mask`; every block
///   on `local_free` carries the process's mark (it was freed), as does every block on `free`
///   that was ever handed out (carved blocks never were);
/// - the [`FULL_TAG`] bit of `owner` is set iff the span sits on its heap's full list (then
///   `free` and `local_free` were empty and `capacity == reserved` when it moved there);
/// - `owner` less that bit is the owning heap; it changes only when a heap is adopted.
///
/// For a medium span: `used == capacity == reserved == 1`, `owner == MEDIUM_OWNER`, the block
/// is the run's first byte. For an unused span: `div_magic == start_limit == 0` and a null
/// owner, so no address is a block start of it.
#[repr(C, align(64))]
pub struct Span {
    /// Blocks ready to hand out (owner pops).
    free: *mut Block,
    /// Blocks freed by the owner since the last refill.
    local_free: *mut Block,
    /// Owning heap (type-erased: spans sit below heaps), [`MEDIUM_OWNER`], or null when
    /// unused; with [`FULL_TAG`] set while the span is on its heap's full list, so the local
    /// fast path of `free` (an exact compare with the thread's heap) sends frees into full
    /// spans to the slow path without testing a flag.
    owner: AtomicPtr<()>,
    /// Blocks handed out and not yet back on this span's lists (see the invariants).
    used: AtomicU32,
    /// Size class (slabs).
    class: u8,
    /// What the span holds (a [`Kind`]).
    kind: AtomicU8,
    /// A medium block the heap profiler sampled (its `free` tells the profiler).
    sampled: AtomicBool,
    /// First byte of the run.
    start: *mut u8,
    /// `floor(2^64 / block_size) + 1` for slabs, 1 for medium spans, 0 when unused: see
    /// [`Span::is_block_start`].
    div_magic: u64,
    /// `reserved * e` with `e = div_magic * block_size - 2^64` for slabs, 1 for medium spans,
    /// 0 when unused: `(off * div_magic) mod 2^64 < start_limit` iff `off` is the offset of one
    /// of the span's `reserved` block slots.
    start_limit: u64,
    /// The mask of this slab's two lists (the process's, [`crate::secret`]).
    mask: u64,
    /// Size of each block in bytes (slabs).
    block_size: AtomicU32,
    /// Blocks carved so far.
    capacity: u32,
    /// Blocks that fit in the run.
    reserved: u32,
    /// Pages in the run.
    pages: AtomicU32,
    /// Links of the heap list the span is on.
    links: Links,
    /// Blocks other threads freed (a stack: pushed by CAS, taken whole by the owner's swap),
    /// with their number: a [`RemoteWord`]. On the second cache line, with `remote_next` and
    /// `remote_tail`: remote frees do not disturb the fields of the owner's fast paths.
    remote: AtomicUsize,
    /// Next slab on the heap stack of slabs with remote frees this span is on.
    remote_next: AtomicPtr<Span>,
    /// The last block of the `remote` list (its link is null): written by the push that made
    /// the list non-empty, before that push puts the span on its owner's stack, so the owner
    /// (or a borrowing heap), which takes the list only after taking the span off a stack,
    /// reads the right one.
    remote_tail: AtomicPtr<Block>,
}

/// A slab's `remote` word: the head of its remote list in the low 48 bits (user addresses
/// lie below 2^47), the number of blocks on the list in the high 16 (a slab holds at most
/// 2 048 blocks), so that one CAS pushes a chain and counts it, and the owner's swap learns
/// how many blocks it took without walking them.
#[derive(Clone, Copy)]
struct RemoteWord(usize);

impl RemoteWord {
    const SHIFT: u32 = 48;

    fn new(head: *mut Block, count: u32) -> RemoteWord {
        RemoteWord(head as usize | (count as usize) << Self::SHIFT)
    }

    fn head(self) -> *mut Block {
        ptr::with_exposed_provenance_mut(self.0 & ((1 << Self::SHIFT) - 1))
    }

    fn count(self) -> u32 {
        (self.0 >> Self::SHIFT) as u32
    }
}

// Every slab's block count fits the word's 16 bits.
const _: () = {
    let mut c = 0;
    while c < NUM_CLASSES {
        assert!(slab_pages(c) * PAGE / (CLASS_SIZE[c] as usize) < 1 << (64 - RemoteWord::SHIFT));
        c += 1;
    }
};

const _: () = assert!(core::mem::size_of::<Span>() <= 128);
const _: () = assert!(core::mem::offset_of!(Span, remote) >= 64);
// The fields the malloc and free fast paths read share the first cache line.
const _: () = assert!(core::mem::offset_of!(Span, mask) <= 64 - 8);

/// `(div_magic, start_limit)` for a slab of `reserved` blocks of `block_size` bytes (see
/// [`Span::is_block_start`]).
pub const fn block_start_magic(block_size: usize, reserved: usize) -> (u64, u64) {
    let m = ((1u128 << 64) / block_size as u128) as u64 + 1;
    let e = m.wrapping_mul(block_size as u64);
    (m, reserved as u64 * e)
}

impl Span {
    /// An unused span with no blocks: the initial `direct` entry of every class of a heap (so
    /// the malloc fast path needs no null test), and the page map's freed-run marker.
    pub const fn empty() -> Span {
        Span {
            free: ptr::null_mut(),
            local_free: ptr::null_mut(),
            owner: AtomicPtr::new(ptr::null_mut()),
            used: AtomicU32::new(0),
            class: 0,
            kind: AtomicU8::new(Kind::Unused as u8),
            sampled: AtomicBool::new(false),
            start: ptr::null_mut(),
            div_magic: 0,
            start_limit: 0,
            mask: 0,
            block_size: AtomicU32::new(0),
            capacity: 0,
            reserved: 0,
            pages: AtomicU32::new(0),
            links: Links {
                next: ptr::null_mut(),
                prev: ptr::null_mut(),
            },
            remote: AtomicUsize::new(0),
            remote_next: AtomicPtr::new(ptr::null_mut()),
            remote_tail: AtomicPtr::new(ptr::null_mut()),
        }
    }

    /// Make this header an empty slab of class `class` owned by `owner`, over `pages` pages at
    /// `start`, on no list.
    pub fn init_slab(&mut self, owner: *mut (), class: SizeClass, start: *mut u8, pages: usize) {
        let block_size = class.size();
        self.free = ptr::null_mut();
        self.local_free = ptr::null_mut();
        self.used.store(0, Ordering::Relaxed);
        self.block_size.store(block_size as u32, Ordering::Relaxed);
        self.class = class.index() as u8;
        self.capacity = 0;
        self.reserved = (pages * PAGE / block_size) as u32;
        self.pages.store(pages as u32, Ordering::Relaxed);
        self.start = start;
        let (magic, limit) = block_start_magic(block_size, self.reserved as usize);
        self.div_magic = magic;
        self.start_limit = limit;
        self.mask = crate::secret::keys().0;
        self.links = Links {
            next: ptr::null_mut(),
            prev: ptr::null_mut(),
        };
        self.remote.store(0, Ordering::Relaxed);
        self.remote_next.store(ptr::null_mut(), Ordering::Relaxed);
        self.kind.store(Kind::Slab as u8, Ordering::Relaxed);
        self.owner.store(owner, Ordering::Release);
    }

    /// Make this header a medium span: one block, the whole run of `pages` pages at `start`.
    pub fn init_medium(&mut self, start: *mut u8, pages: usize) {
        self.free = ptr::null_mut();
        self.local_free = ptr::null_mut();
        self.used.store(1, Ordering::Relaxed);
        self.block_size.store(0, Ordering::Relaxed);
        self.class = 0;
        self.capacity = 1;
        self.reserved = 1;
        self.pages.store(pages as u32, Ordering::Relaxed);
        self.start = start;
        // off * 1 < 1 only for off == 0: the run's first byte is its one block start.
        self.div_magic = 1;
        self.start_limit = 1;
        self.sampled.store(false, Ordering::Relaxed);
        self.kind.store(Kind::Medium as u8, Ordering::Relaxed);
        self.owner.store(MEDIUM_OWNER, Ordering::Release);
    }

    /// Mark this medium span's block as one the heap profiler sampled (by the thread that
    /// allocated it, before anyone else can know the block).
    pub fn set_sampled(&self) {
        self.sampled.store(true, Ordering::Relaxed);
    }

    /// Whether the heap profiler sampled this medium span's block.
    pub fn is_sampled(&self) -> bool {
        self.sampled.load(Ordering::Relaxed)
    }

    /// The header of a free run of `pages` pages at `start` kept in a heap's run cache: unused
    /// (no address is a block start of it, no heap owns it), but its first page maps to it, so
    /// that the heap map can show the run, and a free of that page's address is a double free.
    pub fn init_cached(&mut self, start: *mut u8, pages: usize) {
        self.retire();
        self.start = start;
        self.pages.store(pages as u32, Ordering::Relaxed);
    }

    /// The run is being given back: no address is a block start of this span any more, and no
    /// heap owns it.
    pub fn retire(&mut self) {
        self.kind.store(Kind::Unused as u8, Ordering::Relaxed);
        self.div_magic = 0;
        self.start_limit = 0;
        self.owner.store(ptr::null_mut(), Ordering::Relaxed);
    }

    /// What the span holds.
    #[inline]
    pub fn kind(&self) -> Kind {
        match self.kind.load(Ordering::Relaxed) {
            1 => Kind::Slab,
            2 => Kind::Medium,
            _ => Kind::Unused,
        }
    }

    /// Size class (slabs).
    #[inline(always)]
    pub fn class(&self) -> SizeClass {
        SizeClass::new(self.class as usize)
    }

    /// Usable size of a block of this slab.
    #[inline]
    pub fn block_size(&self) -> usize {
        self.block_size.load(Ordering::Relaxed) as usize
    }

    /// First byte of the run.
    #[inline]
    pub fn start(&self) -> *mut u8 {
        self.start
    }

    /// Pages in the run.
    #[inline]
    pub fn pages(&self) -> usize {
        self.pages.load(Ordering::Relaxed) as usize
    }

    /// A medium run grew or shrank in place to `pages` pages. Owner of the block only.
    pub fn set_pages(&self, pages: usize) {
        self.pages.store(pages as u32, Ordering::Relaxed);
    }

    /// Whether the `free` list is empty (owner only).
    #[inline]
    pub fn free_is_empty(&self) -> bool {
        self.free.is_null()
    }

    /// Whether the local free list is empty (owner only).
    #[inline]
    pub fn local_is_empty(&self) -> bool {
        self.local_free.is_null()
    }

    /// Blocks handed out (see the invariants). Relaxed: exact for the owner, a snapshot for
    /// others.
    #[inline]
    pub fn used(&self) -> u32 {
        self.used.load(Ordering::Relaxed)
    }

    /// The owner word, [`FULL_TAG`] included: equal to a heap's address iff that heap owns the
    /// slab and it is not on the full list.
    #[inline(always)]
    pub fn owner_word(&self) -> *mut () {
        self.owner.load(Ordering::Relaxed)
    }

    /// The owning heap (the owner word without [`FULL_TAG`]).
    #[inline]
    pub fn owner(&self) -> *mut () {
        self.owner
            .load(Ordering::Acquire)
            .map_addr(|a| a & !FULL_TAG)
    }

    /// Hand the slab to `owner` (adoption), on its full list or not.
    pub fn set_owner(&self, owner: *mut (), full: bool) {
        self.owner
            .store(owner.map_addr(|a| a | full as usize), Ordering::Release);
    }

    /// Whether the span is on its heap's full list.
    #[inline]
    pub fn in_full(&self) -> bool {
        self.owner.load(Ordering::Relaxed).addr() & FULL_TAG != 0
    }

    /// Mark the span as on (or off) its heap's full list. Owner only.
    #[inline]
    pub fn set_in_full(&self, full: bool) {
        self.set_owner(self.owner(), full);
    }

    /// The list links, for [`crate::span_list`].
    #[inline]
    pub fn links(&mut self) -> &mut Links {
        &mut self.links
    }

    /// The next span on the list this one is on.
    #[inline]
    pub fn next(&self) -> *mut Span {
        self.links.next
    }

    /// Pop a block from `free`, or null: decode the link of the head and check that it is
    /// null or a block start of this slab, clear the handed out block's mark. About 12
    /// instructions. A link that fails the check leaves the list as it is and gives null, so
    /// the fast path stays free of calls: the slow path's [`Span::pop_checked`] reports it.
    /// Through a raw pointer: the fast path calls it on the shared empty span too (which it
    /// only reads).
    ///
    /// # Safety
    /// `this` is valid, and the caller owns it or its lists are empty.
    #[inline(always)]
    pub unsafe fn pop(this: *mut Span) -> *mut Block {
        // SAFETY: forwarded contract; blocks on the free list are valid, owned by this span.
        unsafe {
            let b = (*this).free;
            if b.is_null() {
                return b;
            }
            let n = Block::next(b, (*this).mask);
            if !n.is_null() && !(*this).is_block_start(n as usize) {
                return ptr::null_mut();
            }
            (*this).free = n;
            (*this).add_used(1);
            Block::clear_mark(b);
            b
        }
    }

    /// [`Span::pop`] for slow paths: a bad link aborts with a report.
    ///
    /// # Safety
    /// As for [`Span::pop`].
    pub unsafe fn pop_checked(this: *mut Span) -> *mut Block {
        // SAFETY: forwarded contract.
        unsafe {
            let b = (*this).free;
            if !b.is_null() {
                (*this).free = (*this).checked_next(b);
                (*this).add_used(1);
                Block::clear_mark(b);
            }
            b
        }
    }

    /// When [`Span::pop`] gave null: if `free` is empty, take the whole `local_free` list and
    /// hand out its first block (a swap of two words; large classes carve one block per page,
    /// so this keeps their malloc-free cycle out of the slow path). Null if `local_free` is
    /// empty too, if its head's link fails the check, or if `free` is not empty (a bad link
    /// there, for the slow path to report).
    ///
    /// # Safety
    /// As for [`Span::pop`].
    #[inline(always)]
    pub unsafe fn pop_local(this: *mut Span) -> *mut Block {
        // SAFETY: forwarded contract; blocks on the local list are valid, owned by this span.
        unsafe {
            let lf = (*this).local_free;
            if lf.is_null() || !(*this).free.is_null() {
                return ptr::null_mut();
            }
            let n = Block::next(lf, (*this).mask);
            if !n.is_null() && !(*this).is_block_start(n as usize) {
                return ptr::null_mut();
            }
            (*this).local_free = ptr::null_mut();
            (*this).free = n;
            (*this).add_used(1);
            Block::clear_mark(lf);
            lf
        }
    }

    /// The successor of `b` on one of this slab's lists, checked: null or a block start of
    /// this slab; anything else aborts.
    ///
    /// # Safety
    /// `b` is on one of this slab's lists.
    #[inline(always)]
    unsafe fn checked_next(&self, b: *mut Block) -> *mut Block {
        // SAFETY: forwarded contract.
        let n = unsafe { Block::next(b, self.mask) };
        if !n.is_null() && !self.is_block_start(n as usize) {
            corrupt("malloc", b);
        }
        n
    }

    /// Whether `b` is the head of the local free list (the block the owner freed last, if it
    /// is still there).
    #[cfg(test)]
    pub fn is_local_head(&self, b: *mut Block) -> bool {
        self.local_free == b
    }

    /// Put block `b` on the local free list. Returns whether no block is in use any more.
    ///
    /// # Safety
    /// The caller owns the span; `b` is a block of it that is in use (counted in `used`),
    /// already marked free.
    #[inline(always)]
    pub unsafe fn push_local(this: *mut Span, b: *mut Block) -> bool {
        // SAFETY: forwarded contract: b is a block of ours that nobody else uses now.
        unsafe {
            Block::set_next(b, (*this).local_free, (*this).mask);
            (*this).local_free = b;
            // `used -= 1` and its zero test as one instruction and a branch (compiled from
            // the atomic, the relaxed load, decrement, store and test take four). The asm is
            // the owner's load and store of `used`, which only the owner writes; other threads
            // only load it (statistics).
            core::arch::asm!(
                "sub dword ptr [{s} + {off}], 1",
                "jnz {busy}",
                s = in(reg) this,
                off = const core::mem::offset_of!(Span, used),
                busy = label { return false; },
                options(nostack),
            );
        }
        true
    }

    /// Push the chain `head ..= tail` of `n` marked blocks of this slab (linked with the slab's
    /// mask; the tail's link is overwritten) onto the `remote` list: one CAS, which also adds
    /// `n` to the list's count. Returns whether the list was empty, in which case the caller
    /// must put the span on its owner's stack of slabs with remote frees
    /// ([`Span::remote_next`]).
    ///
    /// # Safety
    /// `this` is a live slab; the `n` blocks are blocks of it in use, marked, that the caller
    /// gives up.
    pub unsafe fn push_remote(this: *mut Span, head: *mut Block, tail: *mut Block, n: u32) -> bool {
        // SAFETY: a live slab's header; the blocks are the caller's until the CAS publishes
        // them.
        unsafe {
            let (remote, mask) = (&(*this).remote, (*this).mask);
            let mut old = remote.load(Ordering::Relaxed);
            loop {
                let w = RemoteWord(old);
                Block::set_next(tail, w.head(), mask);
                let new = RemoteWord::new(head, w.count() + n).0;
                match remote.compare_exchange_weak(old, new, Ordering::Release, Ordering::Relaxed) {
                    Ok(_) => {
                        if w.head().is_null() {
                            // Published by the caller's push of the span onto its owner's
                            // stack, which comes after this.
                            (*this).remote_tail.store(tail, Ordering::Relaxed);
                            return true;
                        }
                        return false;
                    }
                    Err(h) => old = h,
                }
            }
        }
    }

    /// The link of the heap stack of slabs with remote frees.
    pub fn remote_next(&self) -> &AtomicPtr<Span> {
        &self.remote_next
    }

    /// Take the whole `remote` list and put its blocks on `local_free`. Returns the number of
    /// blocks taken (the count the pushes kept in the list's word); `used` drops by as many.
    ///
    /// The list becomes the front of `local_free` with no walk: its last block is known
    /// (`remote_tail`), and only that block is written, to link the old local list after it.
    /// The remote blocks were last written by the threads that freed them, so following their
    /// links would have pulled each into this thread's cache, one miss per block: taking the
    /// lists that way took 20-23% of the `perf` samples of `handoff` and 14-16% of those of
    /// `prodcons -m batch`. The links are checked as the blocks are popped, like every local
    /// list's; the tail's link, which is written here, is checked to end the list.
    ///
    /// # Safety
    /// The caller owns the span, and took it off a heap's stack of slabs with remote frees.
    pub unsafe fn take_remote(&mut self) -> u32 {
        // Read before the swap: once the list is empty, a push may make it non-empty again
        // and write another tail.
        let tail = self.remote_tail.load(Ordering::Relaxed);
        let w = RemoteWord(self.remote.swap(0, Ordering::Acquire));
        let (head, n) = (w.head(), w.count());
        if head.is_null() {
            return 0;
        }
        // The blocks were counted in `used` when handed out and stay there until taken.
        if !self.is_block_start(head as usize)
            || !self.is_block_start(tail as usize)
            || n == 0
            || n > self.used()
        {
            corrupt("malloc", head);
        }
        if !self.local_free.is_null() {
            // SAFETY: tail is the last block of the remote list, now ours.
            unsafe {
                if !Block::next(tail, self.mask).is_null() {
                    corrupt("malloc", tail);
                }
                Block::set_next(tail, self.local_free, self.mask);
            }
        }
        self.local_free = head;
        self.add_used(-(n as i32));
        n
    }

    /// Take the whole `remote` list for a heap that does not own the slab ([`crate::heap`]'s
    /// borrowed blocks): its first block, its last (whose link is null) and its length, or
    /// null and 0 when it is empty. The blocks stay counted in `used`, and the slab's lists
    /// are not touched: only the remote word, with one swap. The head, the tail and the count
    /// are checked as [`Span::take_remote`] checks them.
    ///
    /// # Safety
    /// `this` is a live slab that the caller took off a heap's stack of slabs with remote
    /// frees (so nobody else takes its list meanwhile).
    pub unsafe fn steal_remote(this: *const Span) -> (*mut Block, *mut Block, u32) {
        // SAFETY: a live slab's header, read through atomics and fields that do not change
        // while it holds blocks in use (its list is not empty, so it does).
        unsafe {
            // Read before the swap, as in take_remote.
            let tail = (*this).remote_tail.load(Ordering::Relaxed);
            let w = RemoteWord((*this).remote.swap(0, Ordering::Acquire));
            let (head, n) = (w.head(), w.count());
            if head.is_null() {
                return (head, head, 0);
            }
            // (`used` cannot drop below the count now: the blocks are the caller's.)
            if !(*this).is_block_start(head as usize)
                || !(*this).is_block_start(tail as usize)
                || n == 0
                || n > (*this).used()
                || !Block::next(tail, (*this).mask).is_null()
            {
                corrupt("malloc", head);
            }
            (head, tail, n)
        }
    }

    /// `used += d` by a relaxed load and store (the owner is the only writer). Returns the new
    /// count.
    #[inline(always)]
    fn add_used(&self, d: i32) -> u32 {
        let n = self.used.load(Ordering::Relaxed).wrapping_add(d as u32);
        self.used.store(n, Ordering::Relaxed);
        n
    }

    /// Refill `free` from `local_free`, or by carving fresh blocks. Returns whether `free` is now
    /// non-empty.
    ///
    /// # Safety
    /// The caller owns the span, and `free` is empty.
    pub unsafe fn refill(&mut self) -> bool {
        if !self.local_free.is_null() {
            // SAFETY: the head is on our local list; a bad link aborts here.
            unsafe { self.checked_next(self.local_free) };
            self.free = self.local_free;
            self.local_free = ptr::null_mut();
            return true;
        }
        if self.capacity < self.reserved {
            // SAFETY: forwarded contract.
            unsafe { self.carve() };
            return true;
        }
        false
    }

    /// Carve fresh blocks up to the end of the next page (at least one block) onto `free`.
    ///
    /// # Safety
    /// The caller owns the span; `capacity < reserved`.
    unsafe fn carve(&mut self) {
        let bs = self.block_size();
        let first = self.capacity as usize;
        let begin = self.start as usize + first * bs;
        let page_end = (begin & !(PAGE - 1)) + PAGE;
        let mut n = (page_end.saturating_sub(begin)) / bs;
        n = n.clamp(1, (self.reserved - self.capacity) as usize);
        // Link blocks in address order; the last one ends the list.
        let mut next: *mut Block = self.free;
        for i in (0..n).rev() {
            let b = ptr::with_exposed_provenance_mut::<Block>(begin + i * bs);
            // SAFETY: b lies inside the span's run, which the caller owns, and is block aligned.
            unsafe { Block::set_next(b, next, self.mask) };
            next = b;
        }
        self.free = next;
        self.capacity += n as u32;
    }

    /// Whether `p` is the start of a block slot of this span (carved or not), for `p` inside the
    /// span's pages: a subtraction, a multiplication and one compare.
    ///
    /// With `M = floor(2^64 / b) + 1` and `e = M * b - 2^64` (so `1 <= e <= b`), an offset
    /// `off = k * b + r` (`0 <= r < b`) gives `off * M mod 2^64 = k * e + r * M`: just `k * e`
    /// for a block start, and at least `M` (far above any `k * e` here) otherwise. So one
    /// compare with `reserved * e` tests both "multiple of `b`" and "below `reserved` blocks"
    /// (the divisibility half is Lemire, Kaser and Kurz, "Faster remainder by direct
    /// computation", 2019). The unit tests check every offset of every class exhaustively.
    #[inline(always)]
    pub fn is_block_start(&self, p: usize) -> bool {
        let off = p.wrapping_sub(self.start as usize) as u64;
        off.wrapping_mul(self.div_magic) < self.start_limit
    }

    /// Whether block start `p` of this slab is free: past the carved blocks or on one of its
    /// lists. O(blocks): for `xa_owns`, not for fast paths.
    ///
    /// # Safety
    /// The caller owns the span.
    pub unsafe fn holds_free(&self, p: *const u8) -> bool {
        if self.capacity as usize * self.block_size() <= p as usize - self.start as usize {
            return true;
        }
        for mut b in [self.free, self.local_free] {
            while !b.is_null() {
                if b as *const u8 == p {
                    return true;
                }
                // SAFETY: blocks on our own slab's lists are valid.
                b = unsafe { self.checked_next(b) };
            }
        }
        false
    }

    /// Verify the invariants documented on the type for a slab, with `mark` the process's
    /// mark. Aborts on violation. Walks the lists, so it costs O(capacity).
    ///
    /// # Safety
    /// The caller owns the span (no concurrent changes).
    pub unsafe fn check_invariants(&self, mark: u64) {
        xa_check!(self.kind() == Kind::Slab);
        xa_check!(self.capacity <= self.reserved);
        let mut n = 0u32;
        for (head, freed) in [(self.free, false), (self.local_free, true)] {
            let mut b = head;
            while !b.is_null() {
                let a = b as usize;
                xa_check!(self.is_block_start(a));
                xa_check!(((a - self.start as usize) / self.block_size()) < self.capacity as usize);
                // SAFETY: b is a free block of this span.
                xa_check!(!freed || unsafe { Block::is_marked(b, mark) });
                n += 1;
                xa_check!(n <= self.capacity);
                // SAFETY: b is a free block of this span.
                b = unsafe { Block::next(b, self.mask) };
            }
        }
        xa_check!(self.used() + n == self.capacity);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::os;
    use crate::size_class::{CLASS_SIZE, NUM_CLASSES, slab_pages};

    const MARK: u64 = 0x5a5a_5a5a_5a5a_5a5f;

    #[test]
    fn block_start_test_is_exact_for_every_class_and_offset() {
        let base = 0x7f00_0000_0000usize;
        for (c, &size) in CLASS_SIZE.iter().enumerate() {
            let bs = size as usize;
            let pages = slab_pages(c);
            let mut s = Span::empty();
            s.init_slab(ptr::null_mut(), SizeClass::new(c), base as *mut u8, pages);
            let reserved = s.reserved as usize;
            assert!(reserved >= 1);
            for off in 0..pages * PAGE {
                let want = off % bs == 0 && off / bs < reserved;
                assert_eq!(
                    s.is_block_start(base + off),
                    want,
                    "class {c} size {bs} off {off}"
                );
            }
        }
        // medium spans: only the first byte; unused spans: nothing
        let mut s = Span::empty();
        s.start = base as *mut u8;
        for off in [0usize, 1, 16, PAGE, 77 * PAGE] {
            assert!(!s.is_block_start(base + off));
        }
        s.init_medium(base as *mut u8, 100);
        assert!(s.is_block_start(base));
        for off in [1usize, 16, PAGE, 77 * PAGE, usize::MAX / 2] {
            assert!(!s.is_block_start(base + off));
        }
        s.retire();
        assert!(!s.is_block_start(base));
    }

    #[test]
    fn slab_against_a_model() {
        for &(c, pages) in &[
            (0usize, 4usize),
            (2, 4),
            (9, 4),
            (30, 8),
            (NUM_CLASSES - 1, 32),
        ] {
            let bs = CLASS_SIZE[c] as usize;
            let region = os::map(pages * PAGE);
            let mut s = Span::empty();
            s.init_slab(ptr::null_mut(), SizeClass::new(c), region, pages);
            let mut live: Vec<usize> = Vec::new();
            // blocks pushed onto the remote list and not taken yet
            let mut remote: Vec<usize> = Vec::new();
            // takes of a non-empty list onto an empty / a non-empty local list
            let mut takes = [0usize; 2];
            // the model of `remote_tail`: the last block of the chain that made the list
            // non-empty
            let mut bottom = 0usize;
            let mut st = 0x1234_5678_9abc_def1u64 ^ bs as u64;
            for step in 0..8000 {
                st ^= st << 13;
                st ^= st >> 7;
                st ^= st << 17;
                let action = st % 8;
                if action < 4 {
                    // SAFETY: single-threaded owner of the span.
                    let b = unsafe {
                        let mut b = Span::pop(&mut s);
                        if b.is_null() {
                            b = Span::pop_local(&mut s);
                        }
                        if b.is_null() && s.refill() {
                            b = Span::pop(&mut s);
                        }
                        b
                    };
                    if b.is_null() {
                        assert_eq!(live.len() + remote.len(), s.reserved as usize);
                        continue;
                    }
                    let a = b as usize;
                    assert!(s.is_block_start(a));
                    assert!(!live.contains(&a), "block handed out twice");
                    assert!(!remote.contains(&a), "block on the remote list handed out");
                    // SAFETY: single-threaded owner; a was just handed out.
                    assert!(!unsafe { s.holds_free(a as *const u8) });
                    // SAFETY: the block is ours, bs bytes.
                    unsafe { ptr::write_bytes(b as *mut u8, (step % 255) as u8 + 1, bs) };
                    live.push(a);
                } else if action < 6 && !live.is_empty() {
                    let a = live.swap_remove((st as usize / 8) % live.len());
                    // SAFETY: the block is live and ours: its contents must be intact.
                    let (first, last) =
                        unsafe { (*(a as *const u8).add(8), *(a as *const u8).add(bs - 1)) };
                    assert_eq!(first, last);
                    // SAFETY: owner-side free of a live block.
                    let emptied = unsafe {
                        Block::set_mark(a as *mut Block, MARK);
                        Span::push_local(&mut s, a as *mut Block)
                    };
                    assert_eq!(s.used() as usize, live.len() + remote.len());
                    assert_eq!(emptied, s.used() == 0);
                    assert!(s.is_local_head(a as *mut Block));
                    // SAFETY: as above.
                    assert!(unsafe { s.holds_free(a as *const u8) });
                } else if action == 6 && !live.is_empty() {
                    // another thread frees a chain of up to three blocks: one push
                    let n = 1 + (st as usize / 8) % live.len().min(3);
                    let chain: Vec<usize> = (0..n).map(|_| live.pop().unwrap()).collect();
                    // SAFETY: the chain's blocks are live blocks of the span, linked here
                    // with its mask; the push publishes them.
                    let was_empty = unsafe {
                        for w in chain.windows(2) {
                            Block::set_mark(w[0] as *mut Block, MARK);
                            Block::set_next(w[0] as *mut Block, w[1] as *mut Block, s.mask);
                        }
                        Block::set_mark(chain[n - 1] as *mut Block, MARK);
                        Span::push_remote(
                            &mut s,
                            chain[0] as *mut Block,
                            chain[n - 1] as *mut Block,
                            n as u32,
                        )
                    };
                    assert_eq!(was_empty, remote.is_empty());
                    if was_empty {
                        bottom = chain[n - 1];
                    }
                    assert_eq!(s.remote_tail.load(Ordering::Relaxed) as usize, bottom);
                    remote.extend(chain);
                } else if action == 7 {
                    // the owner takes the remote list: the count the pushes kept
                    if !remote.is_empty() {
                        takes[!s.local_free.is_null() as usize] += 1;
                    }
                    // SAFETY: single-threaded owner.
                    let n = unsafe { s.take_remote() };
                    assert_eq!(n as usize, remote.len());
                    for &a in &remote {
                        // SAFETY: as above.
                        assert!(unsafe { s.holds_free(a as *const u8) });
                    }
                    remote.clear();
                }
                // SAFETY: single-threaded owner.
                unsafe { s.check_invariants(MARK) };
                assert_eq!(s.used() as usize, live.len() + remote.len());
            }
            // both ways of taking the list ran: as the local list, and spliced in front of it
            assert!(takes[0] > 0 && takes[1] > 0, "class {c}: takes {takes:?}");
            os::unmap(region, pages * PAGE);
        }
    }

    #[test]
    fn remote_word_keeps_head_and_count() {
        let head = 0x7fff_ffff_fff0usize as *mut Block;
        let w = RemoteWord::new(head, 2047);
        assert_eq!(w.head(), head);
        assert_eq!(w.count(), 2047);
        assert!(RemoteWord(0).head().is_null());
        assert_eq!(RemoteWord(0).count(), 0);
    }

    #[test]
    fn links_are_encoded_and_popped_blocks_unmarked() {
        let region = os::map(8 * PAGE);
        let mut s = Span::empty();
        s.init_slab(ptr::null_mut(), SizeClass::new(3), region, 8);
        // SAFETY: single-threaded owner.
        unsafe {
            assert!(s.refill());
            let head = s.free;
            // the stored link is not the plain address of the second block
            assert_ne!((*head).link as usize, head as usize + 64);
            assert_eq!(Block::next(head, s.mask) as usize, head as usize + 64);
            Block::set_mark(head, MARK);
            let b = Span::pop(&mut s);
            assert_eq!(b, head);
            assert!(!Block::is_marked(b, MARK));
        }
        os::unmap(region, 8 * PAGE);
    }

    #[test]
    fn carving_touches_one_page_at_a_time() {
        let region = os::map(8 * PAGE);
        let mut s = Span::empty();
        s.init_slab(ptr::null_mut(), SizeClass::new(3), region, 8);
        // SAFETY: single-threaded owner.
        assert!(unsafe { s.refill() });
        assert_eq!(s.capacity as usize, PAGE / 64);
        os::unmap(region, 8 * PAGE);
    }

    #[test]
    fn owner_word_carries_the_full_tag() {
        let mut s = Span::empty();
        let h = 0x1000usize as *mut ();
        s.init_slab(h, SizeClass::new(0), ptr::null_mut(), 8);
        assert_eq!(s.owner_word(), h);
        s.set_in_full(true);
        assert!(s.in_full() && s.owner() == h && s.owner_word() != h);
        s.set_in_full(false);
        assert_eq!(s.owner_word(), h);
    }
}

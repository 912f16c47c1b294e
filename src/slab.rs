//! L3: spans — the header of every run of pages — and the slab operations on them.
//!
//! A *slab* is a span whose pages are cut into blocks of one size class. Blocks are carved
//! lazily: `capacity` grows a page's worth at a time, so memory is touched only when handed out.
//! A *large* span is a page run holding one block (a medium allocation).
//!
//! All fields are owner-only (the owning heap's thread, or `PAGE_LOCK` holders for large spans)
//! except `heap`, which other threads read to route a free to the owner's remote queue.

use crate::heap::Heap;
use crate::os::PAGE;
use core::ptr;
use core::sync::atomic::{AtomicPtr, Ordering};

/// A free block: the first word links to the next free block.
#[repr(C)]
pub struct Block {
    /// Next free block in the same list.
    pub next: *mut Block,
}

/// What a span holds.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[repr(u8)]
pub enum Kind {
    /// Not in use.
    Unused = 0,
    /// Blocks of one size class.
    Slab = 1,
    /// One medium block.
    Large = 2,
}

/// Marker stored in `Span::heap` for large spans: never equal to a real heap, so the local
/// fast path of `free` falls through to the slow path.
pub const LARGE_OWNER: *mut Heap = core::ptr::without_provenance_mut(8);

/// Low bit of [`Span::heap`], set while a slab sits on its heap's full list (heaps are at least
/// 8-byte aligned, so the bit is free).
pub const FULL_TAG: usize = 1;

/// The header of a run of pages.
///
/// Invariants for a slab (checked by [`Span::check_invariants`]):
/// - `used + |free| + |local_free| == capacity <= reserved`, where `used` counts blocks handed
///   out, including those travelling through some heap's remote queue;
/// - every block on `free`/`local_free` lies in `start..start + capacity * block_size` at a
///   multiple of `block_size`, and appears once;
/// - the [`FULL_TAG`] bit of `heap` is set iff the span sits on its heap's full list (then
///   `free` and `local_free` were empty and `capacity == reserved` when it moved there);
/// - `heap` less that bit is the owning heap; it changes only when a heap is adopted.
#[repr(C, align(64))]
pub struct Span {
    /// Blocks ready to hand out (owner pops).
    pub free: *mut Block,
    /// Blocks freed by the owner since the last collection.
    pub local_free: *mut Block,
    /// Owning heap, [`LARGE_OWNER`], or null when unused; with [`FULL_TAG`] set while the span
    /// is on its heap's full list, so the local fast path of `free` (an exact compare with the
    /// thread's heap) sends frees into full spans to the slow path without testing a flag.
    pub heap: AtomicPtr<Heap>,
    /// Blocks handed out and not yet freed back to this span.
    pub used: u32,
    /// Size of each block in bytes.
    pub block_size: u32,
    /// Size class (slabs).
    pub class: u8,
    /// What the span holds.
    pub kind: Kind,
    /// Whether the run's pages read as zero when it was created.
    pub zeroed: bool,
    /// Blocks carved so far.
    pub capacity: u32,
    /// Blocks that fit in the run.
    pub reserved: u32,
    /// Pages in the run.
    pub pages: u32,
    /// First byte of the run.
    pub start: *mut u8,
    /// `floor(2^64 / block_size) + 1` for slabs, 1 for large spans, 0 when unused: see
    /// [`Span::is_block_start`].
    pub div_magic: u64,
    /// `reserved * e` with `e = div_magic * block_size - 2^64` for slabs, 1 for large spans,
    /// 0 when unused: `(off * div_magic) mod 2^64 < start_limit` iff `off` is the offset of one
    /// of the span's `reserved` block slots.
    pub start_limit: u64,
    /// Page index of the run inside its arena.
    pub idx: u32,
    /// Next span in the heap's class queue or full list.
    pub next: *mut Span,
    /// Previous span in the same list.
    pub prev: *mut Span,
    /// Arena holding the run.
    pub arena: *mut crate::buddy::Arena,
}

const _: () = assert!(core::mem::size_of::<Span>() <= 128);

/// `(div_magic, start_limit)` for a slab of `reserved` blocks of `block_size` bytes (see
/// [`Span::is_block_start`]).
pub const fn block_start_magic(block_size: usize, reserved: usize) -> (u64, u64) {
    let m = ((1u128 << 64) / block_size as u128) as u64 + 1;
    let e = m.wrapping_mul(block_size as u64);
    (m, reserved as u64 * e)
}

impl Span {
    /// A span with no blocks, used as the initial `direct` entry of every class so the malloc
    /// fast path needs no null test.
    pub const fn empty() -> Span {
        Span {
            free: ptr::null_mut(),
            local_free: ptr::null_mut(),
            heap: AtomicPtr::new(ptr::null_mut()),
            used: 0,
            block_size: 0,
            class: 0,
            kind: Kind::Unused,
            zeroed: false,
            capacity: 0,
            reserved: 0,
            pages: 0,
            start: ptr::null_mut(),
            div_magic: 0,
            start_limit: 0,
            idx: 0,
            next: ptr::null_mut(),
            prev: ptr::null_mut(),
            arena: ptr::null_mut(),
        }
    }

    /// Set up the span as an empty slab of `block_size` blocks over `pages` pages at `start`.
    pub fn init_slab(
        &mut self,
        heap: *mut Heap,
        class: usize,
        block_size: usize,
        start: *mut u8,
        pages: usize,
    ) {
        self.free = ptr::null_mut();
        self.local_free = ptr::null_mut();
        self.heap.store(heap, Ordering::Release);
        self.used = 0;
        self.block_size = block_size as u32;
        self.class = class as u8;
        self.kind = Kind::Slab;
        self.capacity = 0;
        self.reserved = (pages * PAGE / block_size) as u32;
        self.pages = pages as u32;
        self.start = start;
        let (magic, limit) = block_start_magic(block_size, self.reserved as usize);
        self.div_magic = magic;
        self.start_limit = limit;
        self.next = ptr::null_mut();
        self.prev = ptr::null_mut();
    }

    /// The owning heap (the `heap` field without [`FULL_TAG`]).
    #[inline]
    pub fn owner(&self) -> *mut Heap {
        self.heap
            .load(Ordering::Acquire)
            .map_addr(|a| a & !FULL_TAG)
    }

    /// Whether the span is on its heap's full list.
    #[inline]
    pub fn in_full(&self) -> bool {
        self.heap.load(Ordering::Relaxed).addr() & FULL_TAG != 0
    }

    /// Mark the span as on (or off) its heap's full list. Owner only.
    #[inline]
    pub fn set_in_full(&mut self, full: bool) {
        let owner = self.owner();
        self.heap
            .store(owner.map_addr(|a| a | full as usize), Ordering::Release);
    }

    /// Pop a block from `free`. About 4 instructions.
    ///
    /// # Safety
    /// The caller owns the span.
    #[inline(always)]
    pub unsafe fn pop(&mut self) -> *mut Block {
        let b = self.free;
        if !b.is_null() {
            // SAFETY: blocks on the free list are valid, owned by this span.
            self.free = unsafe { (*b).next };
            self.used += 1;
        }
        b
    }

    /// Refill `free` from `local_free`, or by carving fresh blocks. Returns whether `free` is now
    /// non-empty.
    ///
    /// # Safety
    /// The caller owns the span, and `free` is empty.
    pub unsafe fn refill(&mut self) -> bool {
        if !self.local_free.is_null() {
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
        let bs = self.block_size as usize;
        let first = self.capacity as usize;
        let begin = self.start as usize + first * bs;
        let page_end = (begin & !(PAGE - 1)) + PAGE;
        let mut n = (page_end.saturating_sub(begin)) / bs;
        n = n.clamp(1, (self.reserved - self.capacity) as usize);
        // Link blocks in address order; the last one ends the list.
        let mut next: *mut Block = self.free;
        for i in (0..n).rev() {
            let b = (begin + i * bs) as *mut Block;
            // SAFETY: b lies inside the span's run, which the caller owns, and is block aligned.
            unsafe { (*b).next = next };
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

    /// Usable size of a block of this span.
    #[inline]
    pub fn block_size(&self) -> usize {
        self.block_size as usize
    }

    /// Verify the invariants documented on the type for a slab. Aborts on violation. Walks the
    /// lists, so it costs O(capacity).
    ///
    /// # Safety
    /// The caller owns the span (no concurrent changes).
    pub unsafe fn check_invariants(&self) {
        xa_check!(self.kind == Kind::Slab);
        xa_check!(self.capacity <= self.reserved);
        let mut n = 0u32;
        for head in [self.free, self.local_free] {
            let mut b = head;
            while !b.is_null() {
                let a = b as usize;
                xa_check!(self.is_block_start(a));
                xa_check!(((a - self.start as usize) / self.block_size()) < self.capacity as usize);
                n += 1;
                xa_check!(n <= self.capacity);
                // SAFETY: b is a free block of this span.
                b = unsafe { (*b).next };
            }
        }
        xa_check!(self.used + n == self.capacity);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::os;

    #[test]
    fn block_start_test_is_exact_for_every_class_and_offset() {
        use crate::size_class::{CLASS_SIZE, slab_pages};
        let base = 0x7f00_0000_0000usize;
        for (c, &size) in CLASS_SIZE.iter().enumerate() {
            let bs = size as usize;
            let pages = slab_pages(c);
            let mut s = Span::empty();
            s.init_slab(ptr::null_mut(), c, bs, base as *mut u8, pages);
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
        // large spans: only the first byte; unused spans: nothing
        let mut s = Span::empty();
        s.start = base as *mut u8;
        for off in [0usize, 1, 16, PAGE, 77 * PAGE] {
            assert!(!s.is_block_start(base + off));
        }
        s.div_magic = 1;
        s.start_limit = 1;
        assert!(s.is_block_start(base));
        for off in [1usize, 16, PAGE, 77 * PAGE, usize::MAX / 2] {
            assert!(!s.is_block_start(base + off));
        }
    }

    #[test]
    fn slab_against_a_model() {
        for &(bs, pages) in &[(16usize, 4usize), (48, 4), (160, 4), (3072, 8), (32768, 32)] {
            let region = os::map(pages * PAGE);
            let mut s = Span::empty();
            s.init_slab(ptr::null_mut(), 0, bs, region, pages);
            let mut live: Vec<usize> = Vec::new();
            let mut st = 0x1234_5678_9abc_def1u64 ^ bs as u64;
            for step in 0..5000 {
                st ^= st << 13;
                st ^= st >> 7;
                st ^= st << 17;
                if st % 5 < 3 {
                    // SAFETY: single-threaded owner of the span.
                    let b = unsafe {
                        let mut b = s.pop();
                        if b.is_null() && s.refill() {
                            b = s.pop();
                        }
                        b
                    };
                    if b.is_null() {
                        assert_eq!(live.len(), s.reserved as usize);
                        continue;
                    }
                    let a = b as usize;
                    assert!(s.is_block_start(a));
                    assert!(!live.contains(&a), "block handed out twice");
                    // SAFETY: the block is ours, bs bytes.
                    unsafe { ptr::write_bytes(b as *mut u8, (step % 255) as u8 + 1, bs) };
                    live.push(a);
                } else if !live.is_empty() {
                    let a = live.swap_remove((st as usize / 5) % live.len());
                    // SAFETY: the block is live and ours: its contents must be intact.
                    let (first, last) =
                        unsafe { (*(a as *const u8).add(8), *(a as *const u8).add(bs - 1)) };
                    assert_eq!(first, last);
                    let b = a as *mut Block;
                    // SAFETY: owner-side free onto local_free.
                    unsafe { (*b).next = s.local_free };
                    s.local_free = b;
                    s.used -= 1;
                }
                // SAFETY: single-threaded owner.
                unsafe { s.check_invariants() };
                assert_eq!(s.used as usize, live.len());
            }
            os::unmap(region, pages * PAGE);
        }
    }

    #[test]
    fn carving_touches_one_page_at_a_time() {
        let region = os::map(4 * PAGE);
        let mut s = Span::empty();
        s.init_slab(ptr::null_mut(), 0, 64, region, 4);
        // SAFETY: single-threaded owner.
        assert!(unsafe { s.refill() });
        assert_eq!(s.capacity as usize, PAGE / 64);
        os::unmap(region, 4 * PAGE);
    }
}

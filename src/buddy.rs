//! L4: the binary buddy arithmetic over the page indices of one arena. Safe code only: it
//! knows page indices, never addresses, and never touches the pages themselves (so purged
//! memory stays untouched).
//!
//! A free block of order `o` covers `2^o` pages starting at an index that is a multiple of
//! `2^o`. Its buddy is `idx ^ (1 << o)`; for example the order-2 block at page 8 (pages 8..12)
//! has its buddy at `8 ^ 4 = 12` (pages 12..16), and together they form the order-3 block at
//! `8 & !4 = 8`. A run of `n` pages takes a block of order `ceil(log2 n)` and gives the unused
//! tail back as smaller blocks, so a run wastes less than one page.
//!
//! Large runs are placed by best fit instead ([`Buddy::best_fit`]), over a bitmap of the
//! wholly free *granules* (16 aligned pages) that the free lists keep up to date; such a run
//! is taken out of the free blocks with [`Buddy::take_range`] and freed like any other.

use crate::bitmap::Bits;

/// Number of block orders: 0 (one page) to 14 (every page of the range).
pub const ORDERS: usize = 15;
/// Pages managed by one [`Buddy`]: the largest block.
pub const PAGES: usize = 1 << (ORDERS - 1);

const NIL: u32 = u32::MAX;

/// log2 of the pages in a *granule*, the unit of the free-granule index (16 pages, 64 KiB).
pub const GRANULE_ORDER: usize = 4;
/// Pages in a granule.
pub const GRANULE: usize = 1 << GRANULE_ORDER;
/// Words of the free-granule index.
const GRANULE_WORDS: usize = PAGES / GRANULE / 64;

/// log2 of a block's page count.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
pub struct Order(u8);

impl Order {
    /// Order `o`; `o < ORDERS`.
    pub const fn new(o: usize) -> Order {
        assert!(o < ORDERS);
        Order(o as u8)
    }

    /// The smallest order whose block holds `pages` pages.
    #[inline]
    pub fn for_pages(pages: usize) -> Order {
        Order(pages.next_power_of_two().trailing_zeros() as u8)
    }

    /// The order as a number.
    #[inline]
    pub const fn get(self) -> usize {
        self.0 as usize
    }

    /// Pages in a block of this order.
    #[inline]
    pub const fn pages(self) -> usize {
        1 << self.0
    }
}

/// Free-list links of a free block head, stored outside the block.
#[derive(Clone, Copy)]
#[repr(C)]
struct Link {
    /// Previous free block of the same order, or NIL.
    prev: u32,
    /// Next free block of the same order, or NIL.
    next: u32,
}

/// The buddy state of [`PAGES`] pages.
///
/// Invariants (checked by [`Buddy::check_invariants`]):
/// - `order[i] == o + 1` iff page `i` heads a free block of order `o`; then `i % 2^o == 0`, the
///   block lies inside `first..PAGES` (pages below `first` are never free), and it is on
///   `free_head[o]`'s list exactly once, whose `prev` links mirror its `next` links;
/// - free blocks never overlap, and no two free buddies of the same order exist (they merge);
/// - bit `o` of `nonempty` is set iff `free_head[o] != NIL`;
/// - `free_pages` is the sum of the free blocks' sizes;
/// - bit `g` of `free_granules` is set iff granule `g` lies inside a free block. (A wholly
///   free granule always does: its free pages would otherwise be split into aligned blocks
///   of lower orders, and two such blocks covering one aligned range are buddies, which
///   merge.)
///
/// All zeros is "not initialised": [`Buddy::init`] makes it valid.
#[repr(C)]
pub struct Buddy {
    /// Head of the free list of each order, NIL if empty.
    free_head: [u32; ORDERS],
    /// Bit `o` set iff the free list of order `o` is non-empty.
    nonempty: u32,
    /// Pages in free blocks.
    free_pages: u32,
    /// First page that may ever be free.
    first: u32,
    /// For each page heading a free block: its order + 1; 0 otherwise.
    order: [u8; PAGES],
    /// Free-list links, valid for free block heads.
    link: [Link; PAGES],
    /// Bit `g` set iff granule `g` (pages `g * GRANULE..(g + 1) * GRANULE`) is wholly free.
    free_granules: Bits<GRANULE_WORDS>,
}

impl Buddy {
    /// Make a zeroed `Buddy` valid, with pages `first..PAGES` free.
    pub fn init(&mut self, first: usize) {
        self.free_head = [NIL; ORDERS];
        self.first = first as u32;
        self.free_range(first, PAGES - first);
    }

    /// Pages in free blocks.
    #[inline]
    pub fn free_pages(&self) -> usize {
        self.free_pages as usize
    }

    /// The order of the free block headed by page `idx`, if one is.
    #[cfg(test)]
    pub fn free_block_at(&self, idx: usize) -> Option<Order> {
        match self.order[idx] {
            0 => None,
            o => Some(Order(o - 1)),
        }
    }

    fn list_push(&mut self, idx: usize, o: usize) {
        let head = self.free_head[o];
        self.link[idx] = Link {
            prev: NIL,
            next: head,
        };
        if head != NIL {
            self.link[head as usize].prev = idx as u32;
        }
        self.free_head[o] = idx as u32;
        self.nonempty |= 1 << o;
        self.order[idx] = o as u8 + 1;
        self.free_pages += 1 << o;
        if o >= GRANULE_ORDER {
            self.free_granules
                .set(idx >> GRANULE_ORDER, 1 << (o - GRANULE_ORDER));
        }
    }

    /// Unlink free block `idx` of order `o`.
    fn list_remove(&mut self, idx: usize, o: usize) {
        let Link { prev, next } = self.link[idx];
        if prev == NIL {
            self.free_head[o] = next;
        } else {
            self.link[prev as usize].next = next;
        }
        if next != NIL {
            self.link[next as usize].prev = prev;
        }
        if self.free_head[o] == NIL {
            self.nonempty &= !(1 << o);
        }
        self.order[idx] = 0;
        self.free_pages -= 1 << o;
        if o >= GRANULE_ORDER {
            self.free_granules
                .clear(idx >> GRANULE_ORDER, 1 << (o - GRANULE_ORDER));
        }
    }

    /// Free the block at `idx` of order `o`, merging with free buddies.
    fn free_block(&mut self, mut idx: usize, mut o: usize) {
        while o + 1 < ORDERS {
            let buddy = idx ^ (1 << o);
            if self.order[buddy] as usize != o + 1 {
                break;
            }
            self.list_remove(buddy, o);
            idx &= !(1 << o);
            o += 1;
        }
        self.list_push(idx, o);
    }

    /// Free pages `idx..idx+n` (any alignment; none of them free) as maximal aligned blocks.
    pub fn free_range(&mut self, mut idx: usize, n: usize) {
        let end = idx + n;
        while idx < end {
            let align = if idx == 0 {
                ORDERS - 1
            } else {
                idx.trailing_zeros() as usize
            };
            let fit = (usize::BITS - 1 - (end - idx).leading_zeros()) as usize;
            let o = align.min(fit).min(ORDERS - 1);
            self.free_block(idx, o);
            idx += 1 << o;
        }
    }

    /// Take a run of `n` pages (`1 <= n <= PAGES`) whose first page is a multiple of
    /// `min_order`'s block size, from the smallest fitting order whose first free block
    /// `prefer`s (given its page index), else from the smallest fitting order. The pages of
    /// the block past `n` are freed again. Returns the first page.
    pub fn take(
        &mut self,
        n: usize,
        min_order: Order,
        prefer: impl Fn(usize) -> bool,
    ) -> Option<usize> {
        let want = Order::for_pages(n).max(min_order).get();
        let avail = self.nonempty & !((1u32 << want) - 1);
        if avail == 0 {
            return None;
        }
        let mut o = avail.trailing_zeros() as usize;
        let mut rest = avail;
        while rest != 0 {
            let k = rest.trailing_zeros() as usize;
            if prefer(self.free_head[k] as usize) {
                o = k;
                break;
            }
            rest &= rest - 1;
        }
        let idx = self.free_head[o] as usize;
        self.list_remove(idx, o);
        while o > want {
            o -= 1;
            self.list_push(idx + (1 << o), o);
        }
        let block = 1usize << want;
        if block > n {
            self.free_range(idx + n, block - n);
        }
        Some(idx)
    }

    /// Where a run of `n` pages fits best: of the maximal stretches of wholly free granules
    /// that hold `n` pages, the shortest, and of those the lowest. Returns its first page and
    /// its length in pages; the run goes at the stretch's start, next to pages in use.
    ///
    /// Best fit, lowest address first, keeps the pages in use packed and leaves the largest
    /// free stretches whole (Johnstone and Wilson, "The memory fragmentation problem: solved?",
    /// ISMM 1998, found best fit and address-ordered first fit to fragment least, and binary
    /// buddies most). [`Buddy::take`] instead places a run in the block of the next power of
    /// two, aligned to it: a 9 MiB run needs a free, 16 MiB-aligned 16 MiB, and its 7 MiB tail
    /// becomes blocks that only smaller runs fit.
    pub fn best_fit(&self, n: usize) -> Option<(usize, usize)> {
        let need = n.div_ceil(GRANULE).max(1);
        // A stretch of `need` granules holds an aligned block of at least half its power of
        // two: with no free block that large, no stretch is long enough.
        let at_least = GRANULE_ORDER + (need.ilog2() as usize).saturating_sub(1);
        if at_least >= ORDERS || self.nonempty >> at_least == 0 {
            return None;
        }
        let (mut best_at, mut best_len) = (0, usize::MAX);
        let (mut run_at, mut run_len) = (0, 0);
        for w in 0..GRANULE_WORDS {
            let mut word = self.free_granules.word(w);
            let mut bit = 0;
            while bit < 64 {
                // Free granules from `bit` on continue the current stretch.
                let ones = word.trailing_ones() as usize;
                if ones > 0 {
                    if run_len == 0 {
                        run_at = w * 64 + bit;
                    }
                    run_len += ones;
                    bit += ones;
                    if bit == 64 {
                        break;
                    }
                    word >>= ones;
                }
                // A granule in use ends it.
                if run_len >= need && run_len < best_len {
                    (best_at, best_len) = (run_at, run_len);
                    if run_len == need {
                        return Some((best_at * GRANULE, best_len * GRANULE));
                    }
                }
                run_len = 0;
                let zeros = (word.trailing_zeros() as usize).min(64 - bit);
                bit += zeros;
                word = word.checked_shr(zeros as u32).unwrap_or(0);
            }
        }
        if run_len >= need && run_len < best_len {
            (best_at, best_len) = (run_at, run_len);
        }
        (best_len != usize::MAX).then(|| (best_at * GRANULE, best_len * GRANULE))
    }

    /// The free block holding page `p`, as (head, order), if `p` is free. The head of the block
    /// of order `o` that could hold `p` is `p` with its low `o` bits cleared; the first order
    /// whose candidate head heads a free block of exactly that order is the one: a page inside
    /// a free block but not its head has `order` 0, and a head's `order` names one order only.
    /// For example page 13 inside the free order-3 block 8..16: order 0 tries 13, order 1 tries
    /// 12, order 2 tries 12, all with `order` 0; order 3 tries 8, which heads an order-3 block.
    fn block_holding(&self, p: usize) -> Option<(usize, usize)> {
        (0..ORDERS).find_map(|o| {
            let head = p & !((1 << o) - 1);
            (self.order[head] as usize == o + 1).then_some((head, o))
        })
    }

    /// Take pages `idx..idx+n` (any alignment; every one of them free) out of the free blocks:
    /// each free block overlapping the range is unlinked and the parts of it outside the range
    /// are freed again (as maximal aligned blocks, as [`Buddy::free_range`] does). Afterwards
    /// the pages are in use as far as the buddy knows, until [`Buddy::free_range`] gives them
    /// back.
    pub fn take_range(&mut self, idx: usize, n: usize) {
        let end = idx + n;
        let mut j = idx;
        while j < end {
            let found = self.block_holding(j);
            xa_check!(found.is_some());
            let Some((head, o)) = found else { return };
            self.list_remove(head, o);
            let block_end = head + (1 << o);
            if head < j {
                self.free_range(head, j - head);
            }
            if block_end > end {
                self.free_range(end, block_end - end);
            }
            j = block_end;
        }
    }

    /// Grow the run of `pages` pages at `idx` to `new_pages` in place, if the pages right after
    /// it are free. The free blocks there necessarily start exactly where the run (or the
    /// previous block) ends, since a block starting earlier would overlap the run.
    pub fn extend(&mut self, idx: usize, pages: usize, new_pages: usize) -> bool {
        let end = idx + new_pages;
        if end > PAGES {
            return false;
        }
        let mut j = idx + pages;
        while j < end {
            let o = self.order[j] as usize;
            if o == 0 {
                return false;
            }
            j += 1 << (o - 1);
        }
        let mut j = idx + pages;
        while j < end {
            let o = self.order[j] as usize - 1;
            self.list_remove(j, o);
            let block_end = j + (1 << o);
            if block_end > end {
                self.free_range(end, block_end - end);
            }
            j = block_end;
        }
        true
    }

    /// Verify the invariants documented on the type. Aborts on violation. Calls `free_page(p)`
    /// for every free page.
    pub fn check_invariants(&self, mut free_page: impl FnMut(usize)) {
        let mut covered = Bits::<{ PAGES / 64 }>::new();
        let mut free = 0u32;
        for o in 0..ORDERS {
            xa_check!(((self.nonempty >> o) & 1 == 1) == (self.free_head[o] != NIL));
            let mut prev = NIL;
            let mut i = self.free_head[o];
            while i != NIL {
                let idx = i as usize;
                xa_check!(self.order[idx] as usize == o + 1);
                xa_check!(idx % (1 << o) == 0);
                xa_check!(idx >= self.first as usize && idx + (1 << o) <= PAGES);
                xa_check!(self.link[idx].prev == prev);
                xa_check!(covered.set(idx, 1 << o) == 0);
                for p in idx..idx + (1 << o) {
                    free_page(p);
                }
                if o + 1 < ORDERS {
                    xa_check!(self.order[idx ^ (1 << o)] as usize != o + 1);
                }
                free += 1 << o;
                prev = i;
                i = self.link[idx].next;
            }
        }
        for (p, &ord) in self.order.iter().enumerate() {
            if ord != 0 {
                xa_check!(covered.get(p));
            }
        }
        for g in 0..PAGES / GRANULE {
            let whole = covered.count(g * GRANULE, GRANULE) == GRANULE;
            let in_block = self
                .block_holding(g * GRANULE)
                .is_some_and(|(_, o)| o >= GRANULE_ORDER);
            xa_check!(self.free_granules.get(g) == whole && whole == in_block);
        }
        xa_check!(free == self.free_pages);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fresh(first: usize) -> Box<Buddy> {
        // SAFETY: all zeros is a valid bit pattern for every field (integers and arrays of them).
        let mut b = unsafe { Box::<Buddy>::new_zeroed().assume_init() };
        b.init(first);
        b
    }

    fn rng(state: &mut u64) -> u64 {
        *state ^= *state << 13;
        *state ^= *state >> 7;
        *state ^= *state << 17;
        *state
    }

    #[test]
    fn order_arithmetic() {
        assert_eq!(Order::for_pages(1).get(), 0);
        assert_eq!(Order::for_pages(4).get(), 2);
        assert_eq!(Order::for_pages(5).get(), 3);
        assert_eq!(Order::for_pages(PAGES / 2).get(), 13);
        assert_eq!(Order::new(3).pages(), 8);
    }

    #[test]
    fn takes_split_and_merge_back() {
        let mut b = fresh(256);
        b.check_invariants(|_| {});
        assert_eq!(b.free_pages(), PAGES - 256);
        let i1 = b.take(5, Order::new(2), |_| false).unwrap();
        let i2 = b.take(PAGES / 2, Order::new(2), |_| false).unwrap();
        b.check_invariants(|_| {});
        assert_eq!(i1 % 8, 0);
        assert_eq!(i2 % (PAGES / 2), 0);
        assert_eq!(b.free_pages(), PAGES - 256 - 5 - PAGES / 2);
        b.free_range(i1, 5);
        b.free_range(i2, PAGES / 2);
        b.check_invariants(|_| {});
        assert_eq!(b.free_pages(), PAGES - 256);
        // Everything merged back: the upper half is one order-13 block again.
        assert_eq!(b.free_block_at(PAGES / 2), Some(Order::new(13)));
    }

    #[test]
    fn preference_picks_the_block() {
        let mut b = fresh(256);
        // 256..512 is an order-8 block, 512..1024 order 9, ...: prefer the order-9 one.
        let i = b.take(4, Order::new(2), |idx| idx == 512).unwrap();
        assert_eq!(i, 512);
        b.check_invariants(|_| {});
    }

    #[test]
    fn runs_grow_in_place_into_free_pages() {
        let mut b = fresh(256);
        let i = b.take(9, Order::new(2), |_| false).unwrap();
        assert!(b.extend(i, 9, 40));
        b.check_invariants(|_| {});
        assert_eq!(b.free_pages(), PAGES - 256 - 40);
        // A neighbour blocks further growth.
        let j = b.take(64, Order::new(6), |_| false).unwrap();
        if j == i + 64 {
            assert!(!b.extend(i, 40, 65));
        }
        b.free_range(i, 40);
        b.free_range(j, 64);
        b.check_invariants(|_| {});
        assert_eq!(b.free_pages(), PAGES - 256);
    }

    #[test]
    fn ranges_come_out_of_free_blocks_and_go_back() {
        let mut b = fresh(256);
        // 1000..1005 lies inside the free order-9 block 512..1024; 1020..1030 straddles it and
        // the order-10 block 1024..2048.
        b.take_range(1000, 5);
        b.check_invariants(|_| {});
        assert_eq!(b.free_pages(), PAGES - 256 - 5);
        assert_eq!(b.block_holding(1000), None);
        assert_eq!(b.block_holding(1004), None);
        assert!(b.block_holding(999).is_some() && b.block_holding(1005).is_some());
        b.take_range(1020, 10);
        b.check_invariants(|_| {});
        assert_eq!(b.free_pages(), PAGES - 256 - 15);
        // Nothing taken is handed out.
        let mut runs = Vec::new();
        while let Some(i) = b.take(1, Order::new(0), |_| false) {
            assert!(
                !(1000..1005).contains(&i) && !(1020..1030).contains(&i),
                "page {i}"
            );
            runs.push(i);
        }
        assert_eq!(b.free_pages(), 0);
        for i in runs {
            b.free_range(i, 1);
        }
        b.free_range(1000, 5);
        b.free_range(1020, 10);
        b.check_invariants(|_| {});
        assert_eq!(b.free_pages(), PAGES - 256);
        assert_eq!(b.free_block_at(PAGES / 2), Some(Order::new(13)));
    }

    /// The best fit by brute force over `free` (one flag per page): the shortest maximal
    /// stretch of wholly free granules holding `n` pages, the lowest of equals.
    fn model_best_fit(free: &[bool], n: usize) -> Option<(usize, usize)> {
        let whole: Vec<bool> = free.chunks(GRANULE).map(|g| g.iter().all(|&f| f)).collect();
        let mut best: Option<(usize, usize)> = None;
        let mut g = 0;
        while g < whole.len() {
            if !whole[g] {
                g += 1;
                continue;
            }
            let start = g;
            while g < whole.len() && whole[g] {
                g += 1;
            }
            let len = (g - start) * GRANULE;
            if len >= n && best.is_none_or(|(_, l)| len < l) {
                best = Some((start * GRANULE, len));
            }
        }
        best
    }

    #[test]
    fn best_fit_takes_the_shortest_stretch_that_holds_the_run() {
        let mut b = fresh(256);
        // Leave free stretches of 3, 2 and 2 granules below 1024 and everything from 1024 on.
        b.take_range(256, 1024 - 256);
        for (at, len) in [(400, 48), (608, 32), (800, 32)] {
            b.free_range(at, len);
        }
        b.check_invariants(|_| {});
        assert_eq!(b.best_fit(1), Some((608, 32)));
        assert_eq!(b.best_fit(32), Some((608, 32)));
        assert_eq!(b.best_fit(33), Some((400, 48)));
        assert_eq!(b.best_fit(49), Some((1024, PAGES - 1024)));
        assert_eq!(b.best_fit(PAGES), None);
        // A stretch across buddy blocks of different orders (1008..1024 and 1024..) counts as
        // one, and a taken run splits it.
        b.free_range(1008, 16);
        assert_eq!(b.best_fit(PAGES - 1008), Some((1008, PAGES - 1008)));
        b.take_range(1008, 100);
        b.check_invariants(|_| {});
        assert_eq!(b.best_fit(64), Some((1120, PAGES - 1120)));
    }

    #[test]
    fn random_runs_against_a_model() {
        let mut b = fresh(256);
        let mut live: Vec<(usize, usize)> = Vec::new();
        let mut s = 0x9e3779b97f4a7c15u64;
        for step in 0..4000 {
            let r = rng(&mut s);
            if live.is_empty() || r % 3 != 0 {
                let n = match r % 10 {
                    0 => 1 + (rng(&mut s) % 4096) as usize,
                    1..=4 => 1 + (rng(&mut s) % 64) as usize,
                    _ => 4 + (rng(&mut s) % 12) as usize,
                };
                let min_order = Order::new(2 + (rng(&mut s) % 3) as usize);
                let taken = if r % 4 == 0 {
                    // By best fit, as large runs are placed.
                    b.best_fit(n).map(|(idx, _)| {
                        b.take_range(idx, n);
                        idx
                    })
                } else {
                    b.take(n, min_order, |i| i % 3 == 0)
                };
                if let Some(idx) = taken {
                    assert_eq!(idx % min_order.pages(), 0);
                    assert!(idx >= 256 && idx + n <= PAGES);
                    for &(j, m) in &live {
                        assert!(idx + n <= j || j + m <= idx, "overlap at step {step}");
                    }
                    live.push((idx, n));
                }
            } else if r % 7 == 0 {
                // Take out a free range at a random free page, as a purge does.
                let p = 256 + (rng(&mut s) as usize) % (PAGES - 256);
                if let Some((head, o)) = b.block_holding(p) {
                    let end = (head + (1 << o)).min(p + 1 + (rng(&mut s) % 40) as usize);
                    b.take_range(p, end - p);
                    live.push((p, end - p));
                }
            } else {
                let k = (r as usize / 3) % live.len();
                let (idx, n) = live.swap_remove(k);
                b.free_range(idx, n);
            }
            let mut free = 0;
            let mut free_map = vec![false; PAGES];
            b.check_invariants(|p| {
                free += 1;
                free_map[p] = true;
            });
            let used: usize = live.iter().map(|l| l.1).sum();
            assert_eq!(free, b.free_pages());
            let want = 1 + (rng(&mut s) % 2048) as usize;
            assert_eq!(
                b.best_fit(want),
                model_best_fit(&free_map, want),
                "step {step}"
            );
            assert_eq!(b.free_pages() + used, PAGES - 256);
        }
        for (idx, n) in live.drain(..) {
            b.free_range(idx, n);
        }
        b.check_invariants(|_| {});
        assert_eq!(b.free_pages(), PAGES - 256);
    }
}

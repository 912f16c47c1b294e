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
//! Two levels. Blocks smaller than a *granule* (16 aligned pages, 64 KiB) are kept on free
//! lists, one per order, as in a textbook buddy. A wholly free granule is a bit in a bitmap of
//! 1 024 bits (128 bytes) instead, and the blocks of higher orders are implicit in it: the free
//! block of order `o >= 4` at page `p` is the aligned group of `2^(o-4)` set bits at granule
//! `p / 16` whose parent group (twice as large) is not all set. Large runs are what made the
//! difference: a run of a few MiB cut out of free space, or given back, split or merged a
//! dozen or more blocks, each a list operation on scattered links (about 14 list operations
//! and 3 500 instructions for a free and a malloc of 64 KiB-16 MiB in `large -m untouched`);
//! in the bitmap the whole granules of a run are set or cleared a word (64 granules) at a
//! time, and only the pages of its partial first and last granules touch the lists.
//!
//! [`Buddy::take`] places a run at the head of a free block of the next power of two. Large
//! runs are placed by best fit instead ([`Buddy::best_fit`]), over the same bitmap, and taken
//! out of the free pages with [`Buddy::take_range`]; both are freed alike.

use crate::bitmap::Bits;

/// Number of block orders: 0 (one page) to 14 (every page of the range).
pub const ORDERS: usize = 15;
/// Pages managed by one [`Buddy`]: the largest block.
pub const PAGES: usize = 1 << (ORDERS - 1);

const NIL: u32 = u32::MAX;

/// log2 of the pages in a *granule*, the unit of the free-granule bitmap (16 pages, 64 KiB).
pub const GRANULE_ORDER: usize = 4;
/// Pages in a granule.
pub const GRANULE: usize = 1 << GRANULE_ORDER;
/// Granules in the range.
const GRANULES: usize = PAGES / GRANULE;
/// Words of the free-granule bitmap.
const GRANULE_WORDS: usize = GRANULES / 64;
/// Orders kept on free lists: those of blocks smaller than a granule.
const LIST_ORDERS: usize = GRANULE_ORDER;

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
/// - bit `g` of `free_granules` is set iff every page of granule `g` is free; such a granule
///   lies inside `first..PAGES` (pages below `first` are never free) and has no page on a free
///   list; `free_granule_count` counts the set bits;
/// - every other free page is in exactly one *listed* block: `order[i] == o + 1` (`o <
///   LIST_ORDERS`) iff page `i` heads a free listed block of order `o`; then `i % 2^o == 0`,
///   the block lies inside `first..PAGES`, and it is on `free_head[o]`'s list exactly once,
///   whose `prev` links mirror its `next` links;
/// - no two listed buddies of the same order are both free (they merge; two order-3 buddies
///   make a free granule);
/// - bit `o` of `nonempty` is set iff `free_head[o] != NIL`;
/// - `free_pages` is the number of free pages (listed blocks and free granules).
///
/// All zeros is "not initialised": [`Buddy::init`] makes it valid.
#[repr(C)]
pub struct Buddy {
    /// Head of the free list of each listed order, NIL if empty.
    free_head: [u32; LIST_ORDERS],
    /// Bit `o` set iff the free list of order `o` is non-empty.
    nonempty: u32,
    /// Free pages.
    free_pages: u32,
    /// Wholly free granules.
    free_granule_count: u32,
    /// First page that may ever be free.
    first: u32,
    /// For each page heading a free listed block: its order + 1; 0 otherwise.
    order: [u8; PAGES],
    /// Free-list links, valid for free listed block heads.
    link: [Link; PAGES],
    /// Bit `g` set iff granule `g` (pages `g * GRANULE..(g + 1) * GRANULE`) is wholly free.
    free_granules: Bits<GRANULE_WORDS>,
}

/// The positions that are multiples of `g` (a power of two up to 64) in a word.
const fn stride_mask(g: usize) -> u64 {
    let mut m = 0u64;
    let mut p = 0;
    while p < 64 {
        m |= 1 << p;
        p += g;
    }
    m
}

/// `STRIDE[k]`: [`stride_mask`] of `2^k`. With `groups` marking the aligned groups of `2^k`
/// set bits of a word (a bit at the first of each), `groups & groups >> 2^k & STRIDE[k + 1]`
/// marks those of `2^(k+1)`.
const STRIDE: [u64; 7] = [
    stride_mask(1),
    stride_mask(2),
    stride_mask(4),
    stride_mask(8),
    stride_mask(16),
    stride_mask(32),
    stride_mask(64),
];

impl Buddy {
    /// Make a zeroed `Buddy` valid, with pages `first..PAGES` free (`first` a multiple of a
    /// granule).
    pub fn init(&mut self, first: usize) {
        xa_check!(first % GRANULE == 0);
        self.free_head = [NIL; LIST_ORDERS];
        self.first = first as u32;
        self.free_range(first, PAGES - first);
    }

    /// Pages in free blocks.
    #[inline]
    pub fn free_pages(&self) -> usize {
        self.free_pages as usize
    }

    /// The order of the free block headed by page `idx`, if one is: a listed block, or the
    /// largest aligned group of free granules that starts at `idx` and whose parent group is
    /// not wholly free.
    #[cfg(test)]
    pub fn free_block_at(&self, idx: usize) -> Option<Order> {
        if self.order[idx] != 0 {
            return Some(Order(self.order[idx] - 1));
        }
        if idx % GRANULE != 0 || !self.free_granules.get(idx / GRANULE) {
            return None;
        }
        let g = idx / GRANULE;
        let mut o = GRANULE_ORDER;
        // Grow while the block is the lower half of its parent and the parent is all free.
        while o + 1 < ORDERS
            && g % (1 << (o + 1 - GRANULE_ORDER)) == 0
            && self.free_granules.count(g, 1 << (o + 1 - GRANULE_ORDER))
                == 1 << (o + 1 - GRANULE_ORDER)
        {
            o += 1;
        }
        Some(Order(o as u8))
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
    }

    /// Unlink free listed block `idx` of order `o`.
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
    }

    /// Granules `g..g+n` become wholly free.
    fn set_granules(&mut self, g: usize, n: usize) {
        self.free_granules.fill(g, n);
        self.free_granule_count += n as u32;
        self.free_pages += (n * GRANULE) as u32;
    }

    /// Granules `g..g+n`, all wholly free, are taken.
    fn clear_granules(&mut self, g: usize, n: usize) {
        let was = self.free_granules.clear(g, n);
        xa_check!(was == n);
        self.free_granule_count -= n as u32;
        self.free_pages -= (n * GRANULE) as u32;
    }

    /// Free the listed-order block at `idx` of order `o`, merging with free buddies; two
    /// order-3 buddies make a free granule.
    fn free_block(&mut self, mut idx: usize, mut o: usize) {
        loop {
            let buddy = idx ^ (1 << o);
            if self.order[buddy] as usize != o + 1 {
                break;
            }
            self.list_remove(buddy, o);
            idx &= !(1 << o);
            o += 1;
            if o == GRANULE_ORDER {
                self.set_granules(idx / GRANULE, 1);
                return;
            }
        }
        self.list_push(idx, o);
    }

    /// Free pages `idx..end`, inside one granule and not all of it, as maximal aligned blocks.
    fn free_small(&mut self, mut idx: usize, end: usize) {
        while idx < end {
            let align = idx.trailing_zeros() as usize;
            let fit = (usize::BITS - 1 - (end - idx).leading_zeros()) as usize;
            let o = align.min(fit).min(LIST_ORDERS - 1);
            self.free_block(idx, o);
            idx += 1 << o;
        }
    }

    /// Free pages `idx..idx+n` (any alignment; none of them free): the whole granules among
    /// them in the bitmap, the pages before the first and after the last as listed blocks.
    pub fn free_range(&mut self, idx: usize, n: usize) {
        let end = idx + n;
        let whole_from = idx.next_multiple_of(GRANULE);
        let whole_to = end & !(GRANULE - 1);
        if whole_from >= whole_to {
            // No whole granule: the pages lie in one granule or straddle two.
            let mid = whole_from.min(end);
            self.free_small(idx, mid);
            self.free_small(mid, end);
            return;
        }
        self.free_small(idx, whole_from);
        self.set_granules(whole_from / GRANULE, (whole_to - whole_from) / GRANULE);
        self.free_small(whole_to, end);
    }

    /// The listed free block holding page `p`, as (head, order), if any. The head of the block
    /// of order `o` that could hold `p` is `p` with its low `o` bits cleared; the first order
    /// whose candidate head heads a free block of exactly that order is the one: a page inside
    /// a free block but not its head has `order` 0, and a head's `order` names one order only.
    /// For example page 13 inside the free order-3 block 8..16: order 0 tries 13, order 1 tries
    /// 12, order 2 tries 12, all with `order` 0; order 3 tries 8, which heads an order-3 block.
    fn listed_block_holding(&self, p: usize) -> Option<(usize, usize)> {
        (0..LIST_ORDERS).find_map(|o| {
            let head = p & !((1 << o) - 1);
            (self.order[head] as usize == o + 1).then_some((head, o))
        })
    }

    /// The free block holding page `p`, if `p` is free: its listed block, or its granule
    /// (as a block of the granule's order).
    #[cfg(test)]
    fn block_holding(&self, p: usize) -> Option<(usize, usize)> {
        if self.free_granules.get(p / GRANULE) {
            return Some((p & !(GRANULE - 1), GRANULE_ORDER));
        }
        self.listed_block_holding(p)
    }

    /// Take pages `idx..idx+n` (any alignment; every one of them free) out of the free pages:
    /// whole free granules inside the range leave the bitmap; a free granule or listed block
    /// that the range only overlaps leaves too, and its pages outside the range are freed
    /// again as listed blocks. Afterwards the pages are in use as far as the buddy knows, until
    /// [`Buddy::free_range`] gives them back.
    pub fn take_range(&mut self, idx: usize, n: usize) {
        let end = idx + n;
        let mut j = idx;
        while j < end {
            let g = j / GRANULE;
            let (g_start, g_end) = (g * GRANULE, (g + 1) * GRANULE);
            if self.free_granules.get(g) {
                if j == g_start && end >= g_end {
                    // Whole granules: all of them must be free.
                    let whole = (end - j) / GRANULE;
                    self.clear_granules(g, whole);
                    j += whole * GRANULE;
                    continue;
                }
                self.clear_granules(g, 1);
                self.free_small(g_start, j);
                if end < g_end {
                    self.free_small(end, g_end);
                }
                j = g_end;
                continue;
            }
            let found = self.listed_block_holding(j);
            xa_check!(found.is_some());
            let Some((head, o)) = found else { return };
            self.list_remove(head, o);
            let block_end = head + (1 << o);
            self.free_small(head, j);
            if block_end > end {
                self.free_small(end, block_end);
            }
            j = block_end;
        }
    }

    /// Take a run of `n` pages (`1 <= n <= PAGES`) whose first page is a multiple of
    /// `min_order`'s block size, at the head of a free block: of the smallest fitting order
    /// whose block `prefer`s (given its page index), else of the smallest fitting order. Each
    /// order offers one block: a listed order the head of its list (the one freed last), an
    /// order of a granule and above its lowest block. The pages of the block past `n` stay
    /// free. Returns the first page.
    pub fn take(
        &mut self,
        n: usize,
        min_order: Order,
        prefer: impl Fn(usize) -> bool,
    ) -> Option<usize> {
        let want = Order::for_pages(n).max(min_order).get();
        let mut first = None;
        let mut rest = self.nonempty & !((1u32 << want) - 1);
        while rest != 0 {
            let head = self.free_head[rest.trailing_zeros() as usize] as usize;
            if prefer(head) {
                self.take_range(head, n);
                return Some(head);
            }
            first.get_or_insert(head);
            rest &= rest - 1;
        }
        if self.free_granule_count as usize >= 1 << (want.max(GRANULE_ORDER) - GRANULE_ORDER) {
            // The lowest block of the wanted order first: a word or two in a busy bitmap.
            if first.is_none() && (GRANULE_ORDER..GRANULE_ORDER + 6).contains(&want) {
                if let Some(head) = self.lowest_block_of(want) {
                    if prefer(head) {
                        self.take_range(head, n);
                        return Some(head);
                    }
                }
            }
            let lowest = self.lowest_granule_blocks();
            for &head in &lowest[want.max(GRANULE_ORDER)..] {
                if head == usize::MAX {
                    continue;
                }
                if prefer(head) {
                    self.take_range(head, n);
                    return Some(head);
                }
                first.get_or_insert(head);
            }
        }
        let head = first?;
        self.take_range(head, n);
        Some(head)
    }

    /// The head page of the lowest free block of order `o` (`GRANULE_ORDER <= o <
    /// GRANULE_ORDER + 6`: groups inside a word), if any.
    fn lowest_block_of(&self, o: usize) -> Option<usize> {
        let k = o - GRANULE_ORDER;
        for w in 0..GRANULE_WORDS {
            let x = self.free_granules.word(w);
            if x == 0 || x == u64::MAX {
                continue;
            }
            let mut groups = x;
            for j in 0..k {
                groups &= (groups >> (1 << j)) & STRIDE[j + 1];
            }
            let parents = groups & (groups >> (1 << k)) & STRIDE[k + 1];
            let blocks = groups & !(parents | parents << (1 << k));
            if blocks != 0 {
                return Some((w * 64 + blocks.trailing_zeros() as usize) * GRANULE);
            }
        }
        None
    }

    /// The head page of the lowest free block of each order of a granule and above
    /// (`usize::MAX` where there is none; entries under [`GRANULE_ORDER`] are unused), in one
    /// pass over the bitmap. Inside a word that is neither empty nor full, the aligned groups of
    /// 2^k set bits come from those of 2^(k-1) (see [`STRIDE`]), and a group is a block if its
    /// parent group is not full. A full word is no block of a lower order
    /// than a word's (all its groups' parents are full); the orders of a word and above are
    /// the same arithmetic over the 16-bit mask of full words.
    fn lowest_granule_blocks(&self) -> [usize; ORDERS] {
        let mut lowest = [usize::MAX; ORDERS];
        let mut full_words = 0u64;
        for w in 0..GRANULE_WORDS {
            let x = self.free_granules.word(w);
            if x == 0 {
                continue;
            }
            if x == u64::MAX {
                full_words |= 1 << w;
                continue;
            }
            let mut groups = x;
            for k in 0..6 {
                let parents = groups & (groups >> (1 << k)) & STRIDE[k + 1];
                let blocks = groups & !(parents | parents << (1 << k));
                let o = GRANULE_ORDER + k;
                if blocks != 0 && lowest[o] == usize::MAX {
                    lowest[o] = (w * 64 + blocks.trailing_zeros() as usize) * GRANULE;
                }
                groups = parents;
            }
        }
        let mut groups = full_words;
        for k in 0..=4 {
            // The top order's block is the whole range: it has no parent.
            let parents = if k < 4 {
                groups & (groups >> (1 << k)) & STRIDE[k + 1]
            } else {
                0
            };
            let blocks = groups & !(parents | parents << (1 << k));
            if blocks != 0 {
                lowest[GRANULE_ORDER + 6 + k] = blocks.trailing_zeros() as usize * 64 * GRANULE;
            }
            groups = parents;
        }
        lowest
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
        if (self.free_granule_count as usize) < need {
            return None;
        }
        let (mut best_at, mut best_len) = (0, usize::MAX);
        // The stretch that reaches the end of the words scanned so far, if any.
        let (mut run_at, mut run_len) = (0, 0);
        let mut consider = |at: usize, len: usize| {
            if len >= need && len < best_len {
                (best_at, best_len) = (at, len);
            }
            len == need
        };
        // Each word's stretches come from two masks: the first and the last granule of each
        // stretch inside it, so a stretch costs a few instructions whatever its length.
        for w in 0..GRANULE_WORDS {
            let x = self.free_granules.word(w);
            if x == u64::MAX {
                if run_len == 0 {
                    run_at = w * 64;
                }
                run_len += 64;
                continue;
            }
            // A set bit 0 continues the open stretch, if any: it is no first granule.
            let carry = (run_len != 0) as u64;
            let mut firsts = x & !((x << 1) | carry);
            // Bit 63 ends nothing yet: the stretch may go on in the next word.
            let mut lasts = x & !(x >> 1) & !(1 << 63);
            if run_len != 0 {
                if x & 1 != 0 {
                    // The open stretch ends at the first last granule (x is not all ones).
                    let e = lasts.trailing_zeros() as usize;
                    run_len += e + 1;
                    lasts &= lasts - 1;
                }
                if consider(run_at, run_len) {
                    return Some((best_at * GRANULE, best_len * GRANULE));
                }
                run_len = 0;
            }
            while firsts != 0 {
                let f = firsts.trailing_zeros() as usize;
                firsts &= firsts - 1;
                if lasts == 0 {
                    // Runs to bit 63: open.
                    (run_at, run_len) = (w * 64 + f, 64 - f);
                    break;
                }
                let e = lasts.trailing_zeros() as usize;
                lasts &= lasts - 1;
                if consider(w * 64 + f, e + 1 - f) {
                    return Some((best_at * GRANULE, best_len * GRANULE));
                }
            }
        }
        if run_len != 0 {
            consider(run_at, run_len);
        }
        (best_len != usize::MAX).then(|| (best_at * GRANULE, best_len * GRANULE))
    }

    /// Grow the run of `pages` pages at `idx` to `new_pages` in place, if the pages right after
    /// it are free. A free listed block there necessarily starts exactly where the run (or the
    /// previous block) ends, since a block starting earlier would overlap the run; so does a
    /// free granule.
    pub fn extend(&mut self, idx: usize, pages: usize, new_pages: usize) -> bool {
        let end = idx + new_pages;
        if end > PAGES {
            return false;
        }
        let mut j = idx + pages;
        while j < end {
            if self.free_granules.get(j / GRANULE) {
                j = (j / GRANULE + 1) * GRANULE;
                continue;
            }
            let o = self.order[j] as usize;
            if o == 0 {
                return false;
            }
            j += 1 << (o - 1);
        }
        self.take_range(idx + pages, new_pages - pages);
        true
    }

    /// Verify the invariants documented on the type. Aborts on violation. Calls `free_page(p)`
    /// for every free page.
    pub fn check_invariants(&self, mut free_page: impl FnMut(usize)) {
        let mut covered = Bits::<{ PAGES / 64 }>::new();
        let mut free = 0u32;
        for o in 0..LIST_ORDERS {
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
                xa_check!(!self.free_granules.get(idx / GRANULE));
                for p in idx..idx + (1 << o) {
                    free_page(p);
                }
                xa_check!(self.order[idx ^ (1 << o)] as usize != o + 1);
                free += 1 << o;
                prev = i;
                i = self.link[idx].next;
            }
        }
        xa_check!(self.nonempty >> LIST_ORDERS == 0);
        for (p, &ord) in self.order.iter().enumerate() {
            if ord != 0 {
                xa_check!(covered.get(p));
            }
        }
        let mut granules = 0;
        for g in 0..GRANULES {
            if self.free_granules.get(g) {
                xa_check!(g * GRANULE >= self.first as usize);
                xa_check!(covered.count(g * GRANULE, GRANULE) == 0);
                for p in g * GRANULE..(g + 1) * GRANULE {
                    free_page(p);
                }
                granules += 1;
                free += GRANULE as u32;
            }
        }
        xa_check!(granules == self.free_granule_count);
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

    /// The free blocks by brute force over `free` (one flag per page): `(head, order)` for
    /// every aligned block of free pages whose parent block is not all free.
    fn model_blocks(free: &[bool]) -> Vec<(usize, usize)> {
        let all_free = |at: usize, o: usize| free[at..at + (1 << o)].iter().all(|&f| f);
        let mut blocks = Vec::new();
        for o in 0..ORDERS {
            for at in (0..PAGES).step_by(1 << o) {
                let parent = at & !((2 << o) - 1);
                if all_free(at, o) && (o + 1 == ORDERS || !all_free(parent, o + 1)) {
                    blocks.push((at, o));
                }
            }
        }
        blocks
    }

    #[test]
    fn take_uses_the_smallest_free_block_that_fits() {
        let mut b = fresh(256);
        let mut live: Vec<(usize, usize)> = Vec::new();
        let mut s = 0x2545f4914f6cdd1du64;
        for step in 0..600 {
            let r = rng(&mut s);
            if live.len() < 40 && r % 3 != 0 {
                let n = 1 + (rng(&mut s) % 300) as usize;
                if let Some((idx, _)) = b.best_fit(n) {
                    b.take_range(idx, n);
                    live.push((idx, n));
                }
            } else if !live.is_empty() {
                let (idx, n) = live.swap_remove((r as usize / 3) % live.len());
                b.free_range(idx, n);
            }
            let mut free = vec![false; PAGES];
            b.check_invariants(|p| free[p] = true);
            let blocks = model_blocks(&free);
            let n = 1 + (rng(&mut s) % 64) as usize;
            let want = Order::for_pages(n).get().max(2);
            let smallest = blocks
                .iter()
                .filter(|&&(_, o)| o >= want)
                .map(|&(_, o)| o)
                .min();
            let got = b.take(n, Order::new(2), |_| false);
            match (got, smallest) {
                (None, None) => {}
                (Some(idx), Some(o)) => {
                    assert!(
                        blocks.contains(&(idx, o)),
                        "step {step}: {idx} is no order-{o} block"
                    );
                    if o >= GRANULE_ORDER {
                        let lowest = blocks.iter().find(|&&(_, bo)| bo == o).unwrap().0;
                        assert_eq!(idx, lowest, "step {step}");
                    }
                    b.free_range(idx, n);
                }
                (got, want) => panic!("step {step}: took {got:?}, smallest block {want:?}"),
            }
            // With no listed block that fits, each order of a granule and above offers its
            // lowest block: the one of the largest order wins if preferred, others never.
            if blocks.iter().all(|&(_, o)| o < want || o >= GRANULE_ORDER) {
                let mut offered: Vec<(usize, usize)> = Vec::new();
                for o in want..ORDERS {
                    offered.extend(blocks.iter().find(|&&(_, bo)| bo == o));
                }
                if let Some(&(head, _)) = offered.last() {
                    let got = b.take(n, Order::new(2), |i| i == head);
                    assert_eq!(got, Some(head), "step {step}");
                    b.free_range(head, n);
                }
                if let Some(&(head, _)) = blocks.iter().rfind(|b| !offered.contains(b)) {
                    let got = b.take(n, Order::new(2), |i| i == head);
                    assert_ne!(got, Some(head), "step {step}: not offered, yet taken");
                    if let Some(idx) = got {
                        b.free_range(idx, n);
                    }
                }
            }
        }
    }

    /// Every operation against a model of one flag per page, with the arena's header at 0 or
    /// 256 pages: `take` (any alignment, with a preference), `best_fit` then `take_range`, a
    /// `take_range` of any free stretch (as a purge takes its pages), `extend`, and `free_range`
    /// of whole runs and of their tails. After every step the invariants hold and the free
    /// pages are the model's; every 50 steps every free block is where the model has it and
    /// the lowest block of each order of a granule and above is the model's.
    #[test]
    fn every_operation_against_a_model() {
        for seed in 1..9u64 {
            let first = if seed % 3 == 0 { 0 } else { 256 };
            let mut b = fresh(first);
            let mut free = vec![false; PAGES];
            free[first..].fill(true);
            let mut live: Vec<(usize, usize)> = Vec::new();
            let mut s = seed.wrapping_mul(0x9e3779b97f4a7c15) | 1;
            for step in 0..2000 {
                let r = rng(&mut s);
                match r % 8 {
                    0 | 1 => {
                        let n = match rng(&mut s) % 4 {
                            0 => 1 + (rng(&mut s) % 8192) as usize,
                            1 => 1 + (rng(&mut s) % 16) as usize,
                            _ => 1 + (rng(&mut s) % 300) as usize,
                        };
                        let min_order = (rng(&mut s) % 8) as usize;
                        let pick = rng(&mut s) % 5;
                        let blocks = model_blocks(&free);
                        let want = Order::for_pages(n).get().max(min_order);
                        let any = blocks.iter().any(|&(_, o)| o >= want);
                        match b.take(n, Order::new(min_order), |i| (i / 4) % 5 == pick as usize) {
                            None => assert!(!any, "seed {seed} step {step}"),
                            Some(idx) => {
                                assert_eq!(idx % (1 << want), 0, "seed {seed} step {step}");
                                assert!(blocks.iter().any(|&(h, o)| h == idx && o >= want));
                                for f in &mut free[idx..idx + n] {
                                    assert!(*f);
                                    *f = false;
                                }
                                live.push((idx, n));
                            }
                        }
                    }
                    2 => {
                        let n = 1 + (rng(&mut s) % 3000) as usize;
                        let fit = model_best_fit(&free, n);
                        assert_eq!(b.best_fit(n), fit, "seed {seed} step {step}");
                        if let Some((idx, _)) = fit {
                            b.take_range(idx, n);
                            free[idx..idx + n].fill(false);
                            live.push((idx, n));
                        }
                    }
                    3 => {
                        let p = rng(&mut s) as usize % PAGES;
                        let most = 1 + (rng(&mut s) % 200) as usize;
                        let mut end = p;
                        while end < PAGES && end - p < most && free[end] {
                            end += 1;
                        }
                        if end > p {
                            b.take_range(p, end - p);
                            free[p..end].fill(false);
                            live.push((p, end - p));
                        }
                    }
                    4 if !live.is_empty() => {
                        let k = rng(&mut s) as usize % live.len();
                        let (idx, n) = live[k];
                        let grown = n + 1 + (rng(&mut s) % 100) as usize;
                        let fits =
                            idx + grown <= PAGES && free[idx + n..idx + grown].iter().all(|&f| f);
                        assert_eq!(b.extend(idx, n, grown), fits, "seed {seed} step {step}");
                        if fits {
                            free[idx + n..idx + grown].fill(false);
                            live[k].1 = grown;
                        }
                    }
                    _ if !live.is_empty() => {
                        let k = rng(&mut s) as usize % live.len();
                        let (idx, n) = live.swap_remove(k);
                        if n > 2 && r % 3 == 0 {
                            let keep = 1 + rng(&mut s) as usize % (n - 1);
                            b.free_range(idx + keep, n - keep);
                            free[idx + keep..idx + n].fill(true);
                            live.push((idx, keep));
                        } else {
                            b.free_range(idx, n);
                            free[idx..idx + n].fill(true);
                        }
                    }
                    _ => {}
                }
                let mut seen = vec![false; PAGES];
                b.check_invariants(|p| {
                    assert!(!seen[p]);
                    seen[p] = true;
                });
                assert!(seen == free, "seed {seed} step {step}");
                assert_eq!(b.free_pages(), free.iter().filter(|&&f| f).count());
                if step % 50 == 0 {
                    let blocks = model_blocks(&free);
                    for &(h, o) in &blocks {
                        assert_eq!(b.free_block_at(h), Some(Order::new(o)));
                    }
                    let lowest = b.lowest_granule_blocks();
                    for (o, &head) in lowest.iter().enumerate().skip(GRANULE_ORDER) {
                        let model = blocks
                            .iter()
                            .find(|&&(_, bo)| bo == o)
                            .map_or(usize::MAX, |b| b.0);
                        assert_eq!(head, model, "seed {seed} step {step} order {o}");
                        if o < GRANULE_ORDER + 6 {
                            let some = (head != usize::MAX).then_some(head);
                            assert_eq!(b.lowest_block_of(o), some);
                        }
                    }
                }
            }
        }
    }

    /// `best_fit` over granule bitmaps whose words are empty, full, a lone bit 0 or 63, full
    /// but for one bit, or random: stretches that cross words and end at a word's edges.
    #[test]
    fn best_fit_across_word_edges() {
        let mut s = 0x1234567u64;
        for it in 0..1000 {
            let mut b = fresh(0);
            b.take_range(0, PAGES);
            let mut free = vec![false; PAGES];
            for w in 0..GRANULE_WORDS {
                let x = match rng(&mut s) % 6 {
                    0 => 0,
                    1 => u64::MAX,
                    2 => 1 << 63,
                    3 => 1,
                    4 => !(1u64 << (rng(&mut s) % 64)),
                    _ => rng(&mut s),
                };
                for bit in (0..64).filter(|bit| x >> bit & 1 == 1) {
                    let g = w * 64 + bit;
                    b.free_range(g * GRANULE, GRANULE);
                    free[g * GRANULE..(g + 1) * GRANULE].fill(true);
                }
            }
            let random = 1 + rng(&mut s) as usize % PAGES;
            for n in [
                1, 16, 17, 32, 1024, 1025, 1040, 2048, 2064, 2000, 5000, PAGES, random,
            ] {
                assert_eq!(b.best_fit(n), model_best_fit(&free, n), "it {it} n {n}");
            }
        }
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

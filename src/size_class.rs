//! L3: size classes — pure tables, no `unsafe`.
//!
//! Classes step by 16 bytes from 16 to 128, then four per doubling (×1.25, ×1.5, ×1.75, ×2) up
//! to 2 KiB, then eight per doubling (×1.125 steps) up to [`SLAB_LIMIT`] = 32 KiB: 56 classes.
//! The finer steps above 2 KiB matter because programs often ask for "a page plus a header"
//! (SQLite's 4104-byte page buffers would waste 20% in a 5120-byte class, 11% in 4608).
//! Every class size is a multiple of 16, so every block is 16-byte aligned; every power of two
//! is a class, and power-of-two blocks are naturally aligned (slabs start on a page, and a slab
//! whose blocks exceed a page starts on a multiple of its block size — see `slab_pages`).
//!
//! Internal waste (block − request) / block: at most 15/16 for 1-byte requests (the 16-byte
//! minimum), at most 15/32 below 128 B, below 20% from 128 B to 2 KiB (a request one byte over a
//! class boundary `b` gets `1.25 b`) and below 11.2% above. Averaged over request sizes drawn
//! log-uniformly in 128 B..32 KiB it is about 7.5% (`mean_waste_is_documented` computes it).

use crate::os::PAGE;

/// Largest request served from slabs; larger ones are page runs from the buddy.
pub const SLAB_LIMIT: usize = 32 * 1024;
/// Number of size classes.
pub const NUM_CLASSES: usize = 56;
/// First class of the eight-per-doubling range (2304 bytes).
const FINE_START: usize = 24;

/// A size class: an index in `0..NUM_CLASSES` into [`CLASS_SIZE`].
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct SizeClass(u8);

impl SizeClass {
    /// Class number `i`; `i < NUM_CLASSES`.
    #[inline(always)]
    pub const fn new(i: usize) -> SizeClass {
        debug_assert!(i < NUM_CLASSES);
        SizeClass(i as u8)
    }

    /// The class number, for indexing per-class tables.
    #[inline(always)]
    pub const fn index(self) -> usize {
        self.0 as usize
    }

    /// Block size of the class in bytes.
    #[inline(always)]
    pub const fn size(self) -> usize {
        CLASS_SIZE[self.0 as usize] as usize
    }

    /// Pages in a slab of the class.
    #[inline]
    pub fn slab_pages(self) -> usize {
        SLAB_PAGES[self.0 as usize] as usize
    }

    /// Pages in the first slab a reused heap makes of the class ([`first_slab_pages`]).
    #[inline]
    pub fn first_slab_pages(self) -> usize {
        first_slab_pages(self.0 as usize)
    }
}

/// Block size of each class.
pub const CLASS_SIZE: [u32; NUM_CLASSES] = build_sizes();

const fn build_sizes() -> [u32; NUM_CLASSES] {
    let mut t = [0u32; NUM_CLASSES];
    let mut i = 0;
    while i < 8 {
        t[i] = 16 * (i as u32 + 1);
        i += 1;
    }
    let mut base = 128u32;
    while i < NUM_CLASSES {
        let steps = if i < FINE_START { 4 } else { 8 };
        let mut k = 1;
        while k <= steps {
            t[i] = base + base / steps * k;
            i += 1;
            k += 1;
        }
        base *= 2;
    }
    t
}

/// Entries of [`CLASS_TABLE`]: one per 16 bytes of request size up to [`SLAB_LIMIT`].
const TABLE_LEN: usize = SLAB_LIMIT / 16 + 1;

/// Class of each request size up to [`SLAB_LIMIT`], indexed by `(size + 15) / 16` (every class
/// size is a multiple of 16, so sizes rounded up to 16 never cross a class). 2 KiB, of which a
/// program touches the lines of the sizes it uses; one load replaces a branchy computation.
static CLASS_TABLE: [u8; TABLE_LEN] = build_class_table();

const fn build_class_table() -> [u8; TABLE_LEN] {
    let mut t = [0u8; TABLE_LEN];
    let mut idx = 0;
    let mut c = 0;
    while idx < TABLE_LEN {
        let size = idx * 16;
        while (CLASS_SIZE[c] as usize) < size {
            c += 1;
        }
        t[idx] = c as u8;
        idx += 1;
    }
    t
}

/// The class for a request of `size` bytes, `size <= SLAB_LIMIT`: an add, a shift, a load.
#[inline(always)]
pub fn class_of(size: usize) -> SizeClass {
    debug_assert!(size <= SLAB_LIMIT);
    // SAFETY: (size + 15) >> 4 <= SLAB_LIMIT / 16 < TABLE_LEN for size <= SLAB_LIMIT.
    SizeClass(unsafe { *CLASS_TABLE.get_unchecked((size + 15) >> 4) })
}

/// Pages in a slab of class number `c`: the smallest count of at least 8 pages (32 KiB) that holds at
/// least 8 blocks (4 above 8 KiB) and wastes at most 1/16 of the slab at its tail.
///
/// Bigger slabs mean fewer trips to the slow path when frees land at random (each slab gathers
/// more free blocks before it is picked again): under callgrind, 16 KiB -> 32 KiB -> 64 KiB
/// slabs took 91 -> 82 -> 76 M instructions on `larson -s 0.05` and 157 -> 150 -> 147 M on
/// `churn -m uniform -s 0.05`, while the fragmentation benchmark's resident peak went 973 ->
/// 1003 -> 1044 MB (blocks carve a page at a time, so only partly used slabs cost memory).
pub const fn slab_pages(c: usize) -> usize {
    let bs = CLASS_SIZE[c] as usize;
    pages_holding(bs, 8, if bs > 8192 { 4 } else { 8 })
}

/// The smallest count of at least `from` pages that holds at least `min_blocks` blocks of
/// `bs` bytes and wastes at most 1/16 of itself at its tail.
const fn pages_holding(bs: usize, from: usize, min_blocks: usize) -> usize {
    let mut n = from;
    loop {
        let bytes = n * PAGE;
        if bytes / bs >= min_blocks && (bytes % bs) * 16 <= bytes {
            return n;
        }
        n += 1;
    }
}

/// Pages in the first slab a reused heap makes of class number `c` (see `heap::Heap::revive`):
/// as [`slab_pages`] but from 4 pages (16 KiB, the smallest run) and 4 blocks, for classes up
/// to 2 KiB; the others' first slab is a full one.
pub const fn first_slab_pages(c: usize) -> usize {
    let bs = CLASS_SIZE[c] as usize;
    if bs > 2048 {
        return slab_pages(c);
    }
    pages_holding(bs, 4, 4)
}

/// Pages per slab of each class.
pub static SLAB_PAGES: [u16; NUM_CLASSES] = build_slab_pages();

const fn build_slab_pages() -> [u16; NUM_CLASSES] {
    let mut t = [0u16; NUM_CLASSES];
    let mut c = 0;
    while c < NUM_CLASSES {
        t[c] = slab_pages(c) as u16;
        c += 1;
    }
    t
}

const _: () = assert!(CLASS_SIZE[NUM_CLASSES - 1] as usize == SLAB_LIMIT);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes_are_increasing_multiples_of_16() {
        for c in 0..NUM_CLASSES {
            assert_eq!(CLASS_SIZE[c] % 16, 0);
            if c > 0 {
                assert!(CLASS_SIZE[c] > CLASS_SIZE[c - 1]);
            }
        }
        for p in 4..=15 {
            assert!(CLASS_SIZE.contains(&(1u32 << p)), "2^{p} must be a class");
        }
    }

    #[test]
    fn every_size_maps_to_the_smallest_fitting_class() {
        for size in 0..=SLAB_LIMIT {
            let c = class_of(size).index();
            assert!(c < NUM_CLASSES);
            assert!(CLASS_SIZE[c] as usize >= size.max(1), "size {size}");
            if c > 0 {
                assert!((CLASS_SIZE[c - 1] as usize) < size, "size {size} class {c}");
            }
        }
    }

    #[test]
    fn waste_bounds_hold() {
        for size in 129..=SLAB_LIMIT {
            let bs = class_of(size).size();
            assert!((bs - size) * 5 < bs, "size {size} block {bs}");
            if size > 2048 {
                assert!((bs - size) * 1000 < bs * 112, "size {size} block {bs}");
            }
        }
        assert_eq!(class_of(4104).size(), 4608);
        assert_eq!(CLASS_SIZE[FINE_START], 2304);
    }

    #[test]
    fn mean_waste_is_documented() {
        // Log-uniform request sizes over 128 B..32 KiB, sampled densely.
        let (mut sum, mut n) = (0.0f64, 0u32);
        let steps = 100_000;
        for i in 0..steps {
            let x = 128.0 * (256.0f64).powf(i as f64 / steps as f64);
            let size = x as usize + 1;
            let bs = class_of(size).size() as f64;
            sum += (bs - size as f64) / bs;
            n += 1;
        }
        let mean = sum / n as f64;
        assert!(mean > 0.06 && mean < 0.09, "mean waste {mean}");
    }

    #[test]
    fn slabs_hold_enough_blocks_and_align_power_of_two_blocks() {
        for c in 0..NUM_CLASSES {
            let n = SLAB_PAGES[c] as usize;
            let bs = CLASS_SIZE[c] as usize;
            assert!(n >= 4);
            assert!(n * PAGE / bs >= 4);
            assert!((n * PAGE % bs) * 16 <= n * PAGE);
            // A slab of n pages comes from a buddy block of order ceil(log2 n), so it starts on a
            // multiple of next_power_of_two(n) pages.
            if bs.is_power_of_two() && bs > PAGE {
                assert!(n.next_power_of_two() * PAGE >= bs, "class {c}");
            }
        }
    }

    #[test]
    fn first_slabs_are_smaller_up_to_2_kib_and_hold_enough_blocks() {
        for (c, &size) in CLASS_SIZE.iter().enumerate() {
            let (first, full) = (first_slab_pages(c), slab_pages(c));
            let bs = size as usize;
            assert!(first >= 4 && first <= full, "class {c}");
            assert!(first * PAGE / bs >= 4, "class {c}");
            assert!((first * PAGE % bs) * 16 <= first * PAGE, "class {c}");
            if bs <= 2048 {
                assert!(first < full, "class {c}: {first} pages");
            } else {
                assert_eq!(first, full, "class {c}");
            }
        }
    }
}

//! Block contents: the byte pattern written over every live block, where it is written (all of
//! a small block, samples of a large one), and the checks that read it back.

use xalloc::PAGE;

/// Blocks up to this size are written and verified in full; larger ones by sample.
pub const FULL_CHECK_LIMIT: usize = 64 << 10;
/// `calloc` blocks up to this size are checked for zeros in full; larger ones by sample.
const FULL_ZERO_LIMIT: usize = 4 << 20;
/// Sampled blocks: bytes written in full at each end.
const EDGE: usize = 4096;
/// Sampled blocks up to this size get a sample at every page boundary, up to
/// [`MID_STRIDE_LIMIT`] every 4 pages, larger ones every 16 pages.
const PAGE_STRIDE_LIMIT: usize = 1 << 20;
const MID_STRIDE_LIMIT: usize = 8 << 20;

/// A 64-bit mix (the splitmix64 finaliser).
pub fn mix64(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// The pattern seed of a block: from its slot and the engine's allocation count when it was
/// allocated, so two blocks of one engine never share a seed.
pub(crate) fn seed_for(slot: u8, generation: u64) -> u64 {
    mix64((generation << 8) | u64::from(slot))
}

/// Byte `i` of the pattern with `seed`: a Weyl sequence, so shifted copies and other seeds
/// differ from it almost everywhere.
#[inline(always)]
pub(crate) fn pattern(seed: u64, i: usize) -> u8 {
    let x = ((i as u32) ^ (seed as u32)).wrapping_mul(0x9E37_79B1);
    ((x >> 24) as u8) ^ ((seed >> 32) as u8)
}

/// Call `f(lo, hi)` for each byte range of a `len`-byte block that holds the pattern: all of
/// it up to [`FULL_CHECK_LIMIT`], else both ends and 16 bytes around every stride boundary
/// (1, 4 or 16 pages, growing with `len`).
pub(crate) fn sample_ranges(len: usize, mut f: impl FnMut(usize, usize)) {
    if len <= FULL_CHECK_LIMIT {
        f(0, len);
        return;
    }
    let stride = if len <= PAGE_STRIDE_LIMIT {
        PAGE
    } else if len <= MID_STRIDE_LIMIT {
        4 * PAGE
    } else {
        16 * PAGE
    };
    f(0, EDGE);
    let mut p = stride;
    while p + 8 <= len - EDGE {
        if p - 8 >= EDGE {
            f(p - 8, p + 8);
        }
        p += stride;
    }
    f(len - EDGE, len);
}

/// Bytes of a `len`-byte block's pattern that lie below `limit`.
pub(crate) fn sampled_bytes(len: usize, limit: usize) -> usize {
    let mut n = 0;
    sample_ranges(len, |lo, hi| n += hi.min(limit).saturating_sub(lo));
    n
}

/// Write the pattern over the sampled ranges of a `len`-byte block.
///
/// # Safety
/// `p` is valid for writes of `len` bytes.
pub(crate) unsafe fn fill(p: *mut u8, len: usize, seed: u64) {
    sample_ranges(len, |lo, hi| {
        // SAFETY: lo..hi lies inside the block (caller's contract).
        let s = unsafe { core::slice::from_raw_parts_mut(p.add(lo), hi - lo) };
        for (k, b) in s.iter_mut().enumerate() {
            *b = pattern(seed, lo + k);
        }
    });
}

/// The first byte below `limit` of the sampled ranges of a `len`-byte pattern block at `p`
/// that does not match, if any.
///
/// # Safety
/// `p` is valid for reads of `min(len, limit)` bytes.
pub(crate) unsafe fn check_sampled(
    p: *const u8,
    len: usize,
    limit: usize,
    seed: u64,
) -> Option<usize> {
    let mut bad = None;
    sample_ranges(len, |lo, hi| {
        let hi = hi.min(limit);
        if bad.is_some() || lo >= hi {
            return;
        }
        // SAFETY: lo..hi lies inside the readable prefix (caller's contract).
        let s = unsafe { core::slice::from_raw_parts(p.add(lo), hi - lo) };
        bad = first_mismatch(s, |i| pattern(seed, lo + i)).map(|i| lo + i);
    });
    bad
}

/// Index of the first byte of `s` that differs from `want(i)`. Compares in chunks without an
/// early exit inside one, so the loop vectorises.
#[inline(always)]
fn first_mismatch(s: &[u8], want: impl Fn(usize) -> u8) -> Option<usize> {
    const CHUNK: usize = 256;
    for (c, chunk) in s.chunks(CHUNK).enumerate() {
        let base = c * CHUNK;
        let diff = chunk
            .iter()
            .enumerate()
            .fold(0u8, |acc, (k, &b)| acc | (b ^ want(base + k)));
        if diff != 0 {
            return chunk
                .iter()
                .enumerate()
                .position(|(k, &b)| b != want(base + k))
                .map(|k| base + k);
        }
    }
    None
}

/// The first non-zero byte among the first `len` bytes at `p` (all of them up to 4 MiB, the
/// sampled ranges beyond).
///
/// # Safety
/// `p` is valid for reads of `len` bytes.
pub(crate) unsafe fn check_zero(p: *const u8, len: usize) -> Option<usize> {
    let scan = |lo: usize, hi: usize| {
        // SAFETY: lo..hi lies inside the block (caller's contract).
        let s = unsafe { core::slice::from_raw_parts(p.add(lo), hi - lo) };
        first_mismatch(s, |_| 0).map(|i| lo + i)
    };
    if len <= FULL_ZERO_LIMIT {
        return scan(0, len);
    }
    let mut bad = None;
    sample_ranges(len, |lo, hi| {
        if bad.is_none() {
            bad = scan(lo, hi);
        }
    });
    bad
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sampling_covers_the_ends_and_stays_inside() {
        for len in [
            0,
            1,
            4096,
            FULL_CHECK_LIMIT,
            FULL_CHECK_LIMIT + 1,
            5 << 20,
            40 << 20,
        ] {
            let mut last = 0;
            let mut first = usize::MAX;
            sample_ranges(len, |lo, hi| {
                assert!(lo < hi || len == 0);
                assert!(lo >= last, "ranges overlap for {len}");
                first = first.min(lo);
                last = hi;
            });
            assert_eq!(last, len);
            assert!(first == 0 || len == 0);
        }
    }

    #[test]
    fn patterns_differ_between_seeds_and_shifts() {
        let (a, b) = (seed_for(1, 1), seed_for(1, 2));
        let same = (0..4096)
            .filter(|&i| pattern(a, i) == pattern(b, i))
            .count();
        assert!(same < 64, "{same}");
        let shifted = (0..4096)
            .filter(|&i| pattern(a, i) == pattern(a, i + 16))
            .count();
        assert!(shifted < 64, "{shifted}");
    }
}

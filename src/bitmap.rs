//! L3: a fixed-size bitmap with range operations, one bit per page (the arenas' dirty and
//! old-page maps). Safe code only.

/// `W * 64` bits, all clear when zeroed.
#[derive(Clone, Copy)]
#[repr(transparent)]
pub struct Bits<const W: usize>([u64; W]);

impl<const W: usize> Bits<W> {
    /// Every bit clear.
    pub const fn new() -> Self {
        Bits([0; W])
    }

    /// Whether bit `i` is set.
    #[inline]
    pub fn get(&self, i: usize) -> bool {
        self.0[i / 64] & (1 << (i % 64)) != 0
    }

    /// Word `w`: bits `64 w .. 64 w + 64`, lowest first.
    #[inline]
    pub fn word(&self, w: usize) -> u64 {
        self.0[w]
    }

    /// The number of set bits in `idx..idx+n`.
    #[cfg(test)]
    pub fn count(&self, idx: usize, n: usize) -> usize {
        let mut was = 0;
        Self::for_masks(idx, n, |w, mask| {
            was += (self.0[w] & mask).count_ones() as usize
        });
        was
    }

    /// Set bits `idx..idx+n`; returns how many were set before.
    pub fn set(&mut self, idx: usize, n: usize) -> usize {
        let mut was = 0;
        Self::for_masks(idx, n, |w, mask| {
            was += (self.0[w] & mask).count_ones() as usize;
            self.0[w] |= mask;
        });
        was
    }

    /// Clear bits `idx..idx+n`; returns how many were set before.
    pub fn clear(&mut self, idx: usize, n: usize) -> usize {
        let mut was = 0;
        Self::for_masks(idx, n, |w, mask| {
            was += (self.0[w] & mask).count_ones() as usize;
            self.0[w] &= !mask;
        });
        was
    }

    /// The number of set bits.
    pub fn ones(&self) -> usize {
        self.0.iter().map(|w| w.count_ones() as usize).sum()
    }

    /// Whether every bit set here is also set in `other`.
    pub fn is_subset_of(&self, other: &Self) -> bool {
        self.0.iter().zip(other.0.iter()).all(|(a, b)| a & !b == 0)
    }

    /// Call `f(word, mask)` for the words covering bits `idx..idx+n`.
    fn for_masks(idx: usize, n: usize, mut f: impl FnMut(usize, u64)) {
        let (mut i, end) = (idx, idx + n);
        while i < end {
            let (w, b) = (i / 64, i % 64);
            let k = (64 - b).min(end - i);
            let mask = if k == 64 {
                u64::MAX
            } else {
                ((1u64 << k) - 1) << b
            };
            f(w, mask);
            i += k;
        }
    }
}

impl<const W: usize> Default for Bits<W> {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_across_words() {
        let mut b = Bits::<4>::new();
        assert_eq!(b.set(60, 70), 0);
        assert_eq!(b.ones(), 70);
        assert!(b.get(60) && b.get(129) && !b.get(59) && !b.get(130));
        assert_eq!(b.count(0, 256), 70);
        assert_eq!(b.clear(64, 64), 64);
        assert_eq!(b.word(1), 0);
        assert_eq!(b.count(0, 256), 6);
        let mut all = Bits::<4>::new();
        all.set(0, 256);
        assert!(b.is_subset_of(&all) && !all.is_subset_of(&b));
        assert_eq!(all.word(3), u64::MAX);
    }
}

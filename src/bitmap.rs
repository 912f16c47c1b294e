//! L3: a fixed-size bitmap with range operations, one bit per page (the arenas' dirty, old,
//! due and purging page maps). Safe code only.

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

    /// Replace word `w`.
    #[inline]
    pub fn set_word(&mut self, w: usize, v: u64) {
        self.0[w] = v;
    }

    /// The number of set bits in `idx..idx+n`.
    pub fn count(&self, idx: usize, n: usize) -> usize {
        let mut was = 0;
        Self::for_masks(idx, n, |w, mask| was += ones(self.0[w] & mask));
        was
    }

    /// Set bits `idx..idx+n`; returns how many were set before.
    pub fn set(&mut self, idx: usize, n: usize) -> usize {
        let mut was = 0;
        Self::for_masks(idx, n, |w, mask| {
            was += ones(self.0[w] & mask);
            self.0[w] |= mask;
        });
        was
    }

    /// Set bits `idx..idx+n`, without counting.
    pub fn fill(&mut self, idx: usize, n: usize) {
        Self::for_masks(idx, n, |w, mask| self.0[w] |= mask);
    }

    /// Clear bits `idx..idx+n`; returns how many were set before.
    pub fn clear(&mut self, idx: usize, n: usize) -> usize {
        let mut was = 0;
        Self::for_masks(idx, n, |w, mask| {
            was += ones(self.0[w] & mask);
            self.0[w] &= !mask;
        });
        was
    }

    /// The first run of set bits at or after bit `from`, cut to at most `max` bits (`max >= 1`):
    /// its first bit and its length. `None` if no bit from `from` on is set.
    pub fn next_run(&self, from: usize, max: usize) -> Option<(usize, usize)> {
        let bits = W * 64;
        let mut start = from;
        loop {
            if start >= bits {
                return None;
            }
            let w = self.0[start / 64] >> (start % 64);
            if w != 0 {
                start += w.trailing_zeros() as usize;
                break;
            }
            start = (start / 64 + 1) * 64;
        }
        // The shift brings in zeros from the top, so the ones counted stop at the word's end;
        // a run that reaches it goes on in the next word.
        let mut end = start;
        while end < bits && end - start < max {
            let ones = (self.0[end / 64] >> (end % 64)).trailing_ones() as usize;
            end += ones;
            if ones == 0 || end % 64 != 0 {
                break;
            }
        }
        Some((start, (end - start).min(max)))
    }

    /// The number of set bits.
    pub fn ones(&self) -> usize {
        self.0.iter().map(|w| w.count_ones() as usize).sum()
    }

    /// Whether no bit is set both here and in `other`.
    pub fn is_disjoint_from(&self, other: &Self) -> bool {
        self.0.iter().zip(other.0.iter()).all(|(a, b)| a & b == 0)
    }

    /// Whether every bit set here is also set in `other`.
    pub fn is_subset_of(&self, other: &Self) -> bool {
        self.0.iter().zip(other.0.iter()).all(|(a, b)| a & !b == 0)
    }

    /// Call `f(word, mask)` for the words covering bits `idx..idx+n`: a partial first and last
    /// word, and whole words (mask all ones) between them.
    #[inline(always)]
    pub fn for_masks(idx: usize, n: usize, mut f: impl FnMut(usize, u64)) {
        if n == 0 {
            return;
        }
        let end = idx + n;
        let (first, last) = (idx / 64, (end - 1) / 64);
        let head = u64::MAX << (idx % 64);
        let tail = u64::MAX >> (63 - (end - 1) % 64);
        if first == last {
            f(first, head & tail);
            return;
        }
        f(first, head);
        for w in first + 1..last {
            f(w, u64::MAX);
        }
        f(last, tail);
    }
}

/// The set bits of `v`, with the all-clear and all-set words of long ranges (a 16 MiB run's
/// dirty bits, say) answered without counting: the baseline x86-64 target has no `popcnt`
/// instruction, and its replacement takes about a dozen.
#[inline]
pub fn ones(v: u64) -> usize {
    match v {
        0 => 0,
        u64::MAX => 64,
        _ => v.count_ones() as usize,
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
        assert!(!b.is_disjoint_from(&all));
        all.set_word(0, 0);
        all.set_word(1, 0);
        all.set_word(2, 0);
        assert!(b.is_disjoint_from(&all) && all.ones() == 64);
    }

    #[test]
    fn runs_are_found_whole_and_cut() {
        let mut b = Bits::<4>::new();
        assert_eq!(b.next_run(0, 1000), None);
        b.set(3, 2);
        b.set(60, 70);
        b.set(192, 64);
        assert_eq!(b.next_run(0, 1000), Some((3, 2)));
        assert_eq!(b.next_run(4, 1000), Some((4, 1)));
        assert_eq!(b.next_run(5, 1000), Some((60, 70)));
        assert_eq!(b.next_run(5, 10), Some((60, 10)));
        assert_eq!(b.next_run(64, 1000), Some((64, 66)));
        assert_eq!(b.next_run(130, 1000), Some((192, 64)));
        assert_eq!(b.next_run(255, 1000), Some((255, 1)));
        assert_eq!(b.next_run(256, 1000), None);
        b.set(128, 64);
        assert_eq!(b.next_run(100, 1000), Some((100, 156)));
    }
}

//! L2: a list of at most `N` `Copy` items in place (on the stack, say) whose free slots are
//! never written: making one costs two stores, not a copy or a clear of `N` slots. The page
//! path builds such lists on every run it gives back (`arena::PurgeBatch`, the run cache's
//! evicted runs), where clearing 1 KiB showed up as a `memcpy` a free under callgrind.
//! Safe to use: its one `unsafe` block is here.

use core::mem::MaybeUninit;

/// Up to `N` items; the first `len` slots are set.
///
/// Invariant: `len <= N`, and slots `0..len` are initialised.
pub struct StackVec<T: Copy, const N: usize> {
    items: [MaybeUninit<T>; N],
    len: usize,
}

impl<T: Copy, const N: usize> StackVec<T, N> {
    /// An empty list.
    pub const fn new() -> Self {
        StackVec {
            items: [const { MaybeUninit::uninit() }; N],
            len: 0,
        }
    }

    /// Items held.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether it holds no item.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Whether it holds `N` items.
    #[inline]
    pub fn is_full(&self) -> bool {
        self.len == N
    }

    /// Append `v`; the list is not full (aborts if it is).
    #[inline]
    pub fn push(&mut self, v: T) {
        xa_check!(self.len < N);
        self.items[self.len].write(v);
        self.len += 1;
    }

    /// The items held.
    #[inline]
    pub fn as_mut_slice(&mut self) -> &mut [T] {
        let set = &mut self.items[..self.len];
        // SAFETY: slots `0..len` are initialised (type invariant: `push` writes a slot before
        // counting it), and `MaybeUninit<T>` has the layout of `T`.
        unsafe { &mut *(set as *mut [MaybeUninit<T>] as *mut [T]) }
    }

    /// Forget every item.
    #[inline]
    pub fn clear(&mut self) {
        self.len = 0;
    }
}

impl<T: Copy, const N: usize> Default for StackVec<T, N> {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holds_what_was_pushed() {
        let mut v = StackVec::<(u32, u64), 3>::new();
        assert!(v.is_empty() && v.as_mut_slice().is_empty());
        v.push((1, 10));
        v.push((2, 20));
        assert_eq!(v.len(), 2);
        assert!(!v.is_full());
        v.as_mut_slice()[1].1 += 1;
        assert_eq!(v.as_mut_slice(), &[(1, 10), (2, 21)]);
        v.push((3, 30));
        assert!(v.is_full());
        v.clear();
        assert!(v.is_empty());
        v.push((4, 40));
        assert_eq!(v.as_mut_slice(), &[(4, 40)]);
    }
}

//! L2: the only lock the allocator takes on a malloc path.
//!
//! [`RawLock`] is a three-state futex mutex (0 free, 1 locked, 2 locked with waiters). It never
//! allocates, has no thread-local state, is `const`-constructible, and a fork child can reset it
//! by storing 0 — none of which holds for `parking_lot`, whose first contended park allocates.

use crate::os;
use core::sync::atomic::{AtomicU32, Ordering};

/// A non-recursive futex lock.
///
/// Invariant: `state` is 0 iff nobody holds the lock; 2 means a holder exists and a waiter may be
/// sleeping, so unlock must wake one.
pub struct RawLock {
    /// 0 free, 1 held, 2 held and maybe contended.
    state: AtomicU32,
}

impl RawLock {
    /// A free lock.
    pub const fn new() -> Self {
        RawLock {
            state: AtomicU32::new(0),
        }
    }

    /// Acquire the lock, spinning briefly, then sleeping on the futex.
    #[inline]
    pub fn lock(&self) {
        if self
            .state
            .compare_exchange(0, 1, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            self.lock_slow();
        }
    }

    #[cold]
    fn lock_slow(&self) {
        for _ in 0..64 {
            core::hint::spin_loop();
            if self.state.load(Ordering::Relaxed) == 0
                && self
                    .state
                    .compare_exchange(0, 1, Ordering::Acquire, Ordering::Relaxed)
                    .is_ok()
            {
                return;
            }
        }
        while self.state.swap(2, Ordering::Acquire) != 0 {
            os::futex_wait(&self.state, 2);
        }
    }

    /// Release the lock. Must be called by the holder.
    #[inline]
    pub fn unlock(&self) {
        if self.state.swap(0, Ordering::Release) == 2 {
            os::futex_wake_one(&self.state);
        }
    }

    /// Reset to free without waking anyone. Only for a fork child, where the holder is gone.
    pub fn reset(&self) {
        self.state.store(0, Ordering::Relaxed);
    }

    /// Whether somebody holds the lock (for tests).
    #[cfg(test)]
    pub fn is_locked(&self) -> bool {
        self.state.load(Ordering::Relaxed) != 0
    }
}

impl Default for RawLock {
    fn default() -> Self {
        Self::new()
    }
}

/// Holds a [`RawLock`] until dropped.
pub struct Guard<'a>(&'a RawLock);

impl<'a> Guard<'a> {
    /// Acquire `l` for the guard's lifetime.
    #[inline]
    pub fn new(l: &'a RawLock) -> Self {
        l.lock();
        Guard(l)
    }
}

impl Drop for Guard<'_> {
    #[inline]
    fn drop(&mut self) {
        self.0.unlock();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn lock_excludes() {
        struct Shared {
            l: RawLock,
            n: core::cell::UnsafeCell<u64>,
        }
        // SAFETY: n is only touched under l.
        unsafe impl Sync for Shared {}
        let s = Arc::new(Shared {
            l: RawLock::new(),
            n: core::cell::UnsafeCell::new(0),
        });
        let hs: Vec<_> = (0..4)
            .map(|_| {
                let s = s.clone();
                std::thread::spawn(move || {
                    for _ in 0..20000 {
                        let _g = Guard::new(&s.l);
                        // SAFETY: protected by the lock.
                        unsafe { *s.n.get() += 1 };
                    }
                })
            })
            .collect();
        for h in hs {
            h.join().unwrap();
        }
        // SAFETY: all threads joined.
        assert_eq!(unsafe { *s.n.get() }, 80000);
        assert!(!s.l.is_locked());
    }
}

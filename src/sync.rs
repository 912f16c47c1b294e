//! L2: the only lock the allocator takes on a malloc path.
//!
//! [`RawLock`] is a futex mutex whose one word holds its holder's thread pointer and a "waiters"
//! bit. It never allocates, has no thread-local state, is `const`-constructible, and a fork
//! child can reset it by storing 0 — none of which holds for `parking_lot`, whose first
//! contended park allocates. Because the word names its holder, a thread that asks for a lock
//! it already holds (malloc called from a signal handler that interrupted malloc) aborts with a
//! message instead of sleeping for ever on itself.

use crate::debug;
use crate::os;
use core::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

/// `c += 1` by the lock's holder, the counter's only writer: a relaxed load and store.
#[inline(always)]
fn bump(c: &AtomicU64) {
    c.store(c.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
}

/// The bit of [`RawLock`]'s word that says a waiter may be asleep. Thread pointers are 8-byte
/// aligned, so it never collides with one.
const WAITERS: usize = 1;

/// A non-recursive futex lock that knows which thread holds it.
///
/// Invariants:
/// - `word` is 0 iff nobody holds the lock. Otherwise it is `holder | w`, where `holder` is
///   the holding thread's [`os::thread_pointer`] and `w` is [`WAITERS`] if a waiter may be
///   asleep, in which case unlock must wake one.
/// - The holder is written by the very atomic operation that takes the lock and removed by the
///   one that releases it, so there is no instant at which a thread holds the lock and the word
///   names another thread or none. (An owner field stored after the acquiring compare-and-swap
///   would leave such an instant, and a signal is likely to land right there, after the slow
///   locked instruction: with one, `c-tests/signal_reentry.c` hung in 11 runs of 100.)
///
/// Re-entry: [`lock`](Self::lock) by the thread the word names aborts with
/// `xalloc: malloc re-entered while this thread holds <name> (from a signal handler?)`. The
/// check costs nothing on the uncontended path (it runs only after the compare-and-swap
/// failed), and it never accuses a thread falsely. A thread T aborts only when it loads a word
/// naming its own thread pointer X. In the word's modification order, values naming X lie only
/// between an acquisition by a thread whose thread pointer is X and that thread's release:
/// the acquisition writes X, a waiter's compare-and-swap that adds WAITERS keeps the name, and
/// the release (a swap, which reads the latest value) writes 0; nothing else writes the word
/// while it is held (`reset` aside, in a fork child). Live threads have distinct thread
/// pointers, so the stretch T's load fell into belongs to T or to an exited thread whose TCB
/// T inherited:
/// - T's own: had T released the lock since, that release would be sequenced before the load
///   and coherence would forbid the load from reading an earlier value; so T still holds it;
/// - an exited thread's: its release happens before its exit, which happens before T is
///   created on the reused TCB (a TCB is reused only after `pthread_join` returned, or after
///   the exiting thread queued it in glibc's stack cache under the cache's lock), so coherence
///   forbids reading it as well.
///
/// A thread that leaves malloc without releasing (a `longjmp` or `pthread_exit` out of a signal
/// handler that interrupted it) leaves the lock held for ever; a later `lock` by that thread, or
/// by a thread that inherits its TCB, then aborts with the message instead of hanging.
pub struct RawLock {
    /// 0 when free; else the holder's thread pointer, plus [`WAITERS`] if a waiter may sleep.
    word: AtomicUsize,
    /// The lock's name in the re-entry message, e.g. `PAGE_LOCK`.
    name: &'static str,
    /// Acquisitions, ever. Written only by the holder (relaxed load and store), read by
    /// statistics.
    acquired: AtomicU64,
    /// Acquisitions that found the lock taken (and spun or slept), ever; same rules.
    contended: AtomicU64,
}

impl RawLock {
    /// A free lock; `name` is what the re-entry message calls it.
    pub const fn new(name: &'static str) -> Self {
        RawLock {
            word: AtomicUsize::new(0),
            name,
            acquired: AtomicU64::new(0),
            contended: AtomicU64::new(0),
        }
    }

    /// Acquire the lock, spinning briefly, then sleeping on the futex. Aborts with a message if
    /// the calling thread already holds it.
    ///
    /// Cost when free: one `mov %fs:0`, one compare-and-swap, one counter increment.
    #[inline]
    pub fn lock(&self) {
        let me = os::thread_pointer();
        if let Err(seen) = self
            .word
            .compare_exchange(0, me, Ordering::Acquire, Ordering::Relaxed)
        {
            self.lock_slow(me, seen);
            bump(&self.contended);
        }
        bump(&self.acquired);
    }

    /// `(acquisitions, contended acquisitions)` since the process started (statistics; a
    /// snapshot).
    pub fn counts(&self) -> (u64, u64) {
        (
            self.acquired.load(Ordering::Relaxed),
            self.contended.load(Ordering::Relaxed),
        )
    }

    /// The lock's name.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// `lock` after its compare-and-swap found the word at `seen`.
    #[cold]
    fn lock_slow(&self, me: usize, seen: usize) {
        // Only the holder can be the one waiting on itself, and the word names the holder
        // exactly (see the type's docs), so one look suffices: if it is not us now, we do not
        // hold the lock, and cannot come to hold it while we wait.
        if seen & !WAITERS == me {
            debug::reentered(self.name);
        }
        for _ in 0..64 {
            core::hint::spin_loop();
            if self.word.load(Ordering::Relaxed) == 0
                && self
                    .word
                    .compare_exchange(0, me, Ordering::Acquire, Ordering::Relaxed)
                    .is_ok()
            {
                return;
            }
        }
        // From here on the lock is taken marked WAITERS: others may be asleep, and our unlock
        // must wake one of them.
        let mut w = self.word.load(Ordering::Relaxed);
        loop {
            if w == 0 {
                match self.word.compare_exchange(
                    0,
                    me | WAITERS,
                    Ordering::Acquire,
                    Ordering::Relaxed,
                ) {
                    Ok(_) => return,
                    Err(now) => {
                        w = now;
                        continue;
                    }
                }
            }
            if w & WAITERS == 0 {
                if let Err(now) =
                    self.word
                        .compare_exchange(w, w | WAITERS, Ordering::Relaxed, Ordering::Relaxed)
                {
                    w = now;
                    continue;
                }
                w |= WAITERS;
            }
            // The kernel compares only the low 32 bits, so we may also sleep on the word of a
            // later holder whose thread pointer has the same low half. That is safe: WAITERS is
            // in the low half and set in `w`, so such a holder's word has it set too, and it
            // wakes a waiter when it releases.
            os::futex_wait(&self.word, w);
            w = self.word.load(Ordering::Relaxed);
        }
    }

    /// Release the lock. Must be called by the holder.
    ///
    /// Cost: one swap and one test; the swap also removes the holder's name.
    #[inline]
    pub fn unlock(&self) {
        let was = self.word.swap(0, Ordering::Release);
        xa_assert!(was & !WAITERS == os::thread_pointer());
        if was & WAITERS != 0 {
            os::futex_wake_one(&self.word);
        }
    }

    /// Reset to free without waking anyone. Only for a fork child, where the holder is gone
    /// (the prepare handler took every lock in the thread the child is a copy of, so the word
    /// names the child's own thread until this clears it).
    pub fn reset(&self) {
        self.word.store(0, Ordering::Relaxed);
    }

    /// Whether somebody holds the lock (for tests).
    #[cfg(test)]
    pub fn is_locked(&self) -> bool {
        self.word.load(Ordering::Relaxed) != 0
    }

    /// The holder's thread pointer, 0 if none (for tests).
    #[cfg(test)]
    pub fn holder(&self) -> usize {
        self.word.load(Ordering::Relaxed) & !WAITERS
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
    use std::sync::atomic::AtomicBool;
    use std::time::Duration;

    #[test]
    fn lock_excludes() {
        struct Shared {
            l: RawLock,
            n: core::cell::UnsafeCell<u64>,
        }
        // SAFETY: n is only touched under l.
        unsafe impl Sync for Shared {}
        let s = Arc::new(Shared {
            l: RawLock::new("TEST_LOCK"),
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

    #[test]
    fn word_names_the_holder() {
        let l = RawLock::new("TEST_LOCK");
        assert_eq!(l.holder(), 0);
        l.lock();
        assert_eq!(l.holder(), os::thread_pointer());
        l.unlock();
        assert!(!l.is_locked());
        l.lock();
        l.reset();
        assert!(!l.is_locked());
    }

    /// Threads that find the lock held by another thread wait (past the spin, asleep on the
    /// futex) and are not taken for re-entry, also when they run on the TCB of an exited thread
    /// that once held the lock; each gets the lock in turn once it is released.
    #[test]
    fn other_threads_wait() {
        let l = Arc::new(RawLock::new("TEST_LOCK"));
        // Threads that took and released the lock and exited: their TCBs may be reused below.
        for _ in 0..4 {
            let l = l.clone();
            std::thread::spawn(move || drop(Guard::new(&l)))
                .join()
                .unwrap();
        }
        let got = Arc::new(AtomicUsize::new(0));
        let holding = Arc::new(AtomicBool::new(false));
        l.lock();
        let hs: Vec<_> = (0..3)
            .map(|_| {
                let (l, got, holding) = (l.clone(), got.clone(), holding.clone());
                std::thread::spawn(move || {
                    l.lock();
                    assert!(!holding.swap(true, Ordering::Relaxed));
                    got.fetch_add(1, Ordering::Relaxed);
                    std::thread::sleep(Duration::from_millis(5));
                    holding.store(false, Ordering::Relaxed);
                    l.unlock();
                })
            })
            .collect();
        std::thread::sleep(Duration::from_millis(100));
        assert_eq!(got.load(Ordering::Relaxed), 0);
        l.unlock();
        for h in hs {
            h.join().unwrap();
        }
        assert_eq!(got.load(Ordering::Relaxed), 3);
        assert!(!l.is_locked());
    }

    /// Set in the child process of `relock_by_holder_aborts`.
    const CHILD_ENV: &str = "XALLOC_TEST_RELOCK_CHILD";

    /// The child half of `relock_by_holder_aborts`: one thread takes a lock twice. Aborts if
    /// the second `lock` detects the re-entry; exits with status 3 if it returned.
    #[test]
    #[ignore = "run in a child process by relock_by_holder_aborts"]
    fn relock_child() {
        if std::env::var_os(CHILD_ENV).is_none() {
            return;
        }
        let l = RawLock::new("TEST_LOCK");
        l.lock();
        l.lock();
        std::process::exit(3);
    }

    /// Taking a lock the thread already holds aborts with the re-entry message, through the
    /// real `lock` (in a child process: the check ends its process). A child still running
    /// after 20 s is waiting on itself, the hang the check exists to prevent.
    #[test]
    fn relock_by_holder_aborts() {
        use std::io::Read;
        use std::os::unix::process::ExitStatusExt;
        use std::process::{Command, Stdio};
        use std::time::Instant;
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "sync::tests::relock_child", "--ignored"])
            .args(["--nocapture", "--test-threads=1"])
            .env(CHILD_ENV, "1")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break status;
            }
            if Instant::now() > deadline {
                child.kill().unwrap();
                child.wait().unwrap();
                panic!("the second lock() waited instead of aborting");
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        let mut stderr = String::new();
        child
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut stderr)
            .unwrap();
        assert_eq!(status.signal(), Some(libc::SIGABRT), "{status}: {stderr}");
        assert!(
            stderr.contains(
                "xalloc: malloc re-entered while this thread holds TEST_LOCK \
                 (from a signal handler?)\n"
            ),
            "{stderr}"
        );
    }
}

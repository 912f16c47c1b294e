//! L12: the fork handlers. `prepare` takes every allocator lock (after glibc's stdio list
//! lock) so that no lock is held mid-update when the process is copied; `parent` releases
//! them; `child` resets them, takes back the pages other threads were purging (with no lock
//! held) when the process was copied, and orphans the heaps of the threads that did not
//! survive.

use crate::arena::PAGE_LOCK;
use crate::huge::HUGE_LOCK;
use crate::os;
use crate::profile::PROF_LOCK;
use crate::purge;
use crate::registry::{self, GLOBAL_LOCK, HEAPS_LOCK};
use crate::tls;
use core::sync::atomic::{AtomicU32, Ordering};

/// Whether the prepare handler took the locks (per fork).
static LOCKED: AtomicU32 = AtomicU32::new(0);

/// Register the handlers (once, at process set-up). May allocate.
pub fn register() {
    os::atfork(prepare, parent, child);
}

extern "C" fn prepare() {
    if !os::multi_threaded() {
        return;
    }
    // Take glibc's stdio list lock before ours, the order a thread inside getdelim or
    // fflush(NULL) already follows (it holds stdio locks when it calls malloc). Taking ours
    // first would deadlock against it.
    os::stdio_list_lock();
    GLOBAL_LOCK.lock();
    HEAPS_LOCK.lock();
    PAGE_LOCK.lock();
    HUGE_LOCK.lock();
    PROF_LOCK.lock();
    LOCKED.store(1, Ordering::Relaxed);
}

extern "C" fn parent() {
    if LOCKED.swap(0, Ordering::Relaxed) == 0 {
        return;
    }
    PROF_LOCK.unlock();
    HUGE_LOCK.unlock();
    PAGE_LOCK.unlock();
    HEAPS_LOCK.unlock();
    GLOBAL_LOCK.unlock();
    os::stdio_list_unlock();
}

extern "C" fn child() {
    let locked = LOCKED.swap(0, Ordering::Relaxed) != 0;
    PROF_LOCK.reset();
    HUGE_LOCK.reset();
    PAGE_LOCK.reset();
    HEAPS_LOCK.reset();
    GLOBAL_LOCK.reset();
    if locked {
        // glibc resets the list lock itself when it saw several threads; resetting again is
        // harmless and also covers the case where only we took it.
        os::stdio_list_reset();
    }
    // A thread purging pages outside PAGE_LOCK would give them back; it did not survive.
    purge::reclaim_after_fork();
    // Every other thread is gone; the child allocates from its own heap.
    // SAFETY: a fork child, single-threaded, locks reset.
    unsafe { registry::orphan_all_but(tls::heap()) };
}

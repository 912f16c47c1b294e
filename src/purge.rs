//! L6: the purge policy — when free resident pages go back to the system. Every function here
//! except [`tick`] and [`purge_all`] runs with [`PAGE_LOCK`] held by its caller.
//!
//! - Decay: time is cut into epochs of `XALLOC_PURGE_DELAY_MS`. When an epoch ends, the pages
//!   that were free and resident when it began and were not handed out during it (old pages)
//!   are purged; pages a busy program keeps freeing and reusing are left alone, so it does not
//!   fault them in again (jemalloc's decay and tcmalloc's release rate follow the same idea
//!   with other curves).
//! - Cap: when dirty pages exceed `max(XALLOC_DIRTY_CAP, 2 * peak pages in use)`, they are
//!   purged down to half of that at once, old pages first. (Tighter caps made programs that
//!   cycle large blocks fault the same pages in again and again: with 32 live blocks of
//!   64 KiB-16 MiB, free runs are scattered enough that the dirty total passes the peak in use.)
//! - Idle: when no pages were given back for a whole epoch, every dirty page has waited at
//!   least that long, and all are purged.

use crate::arena::{self, DIRTY_PAGES, PAGE_LOCK, PEAK_IN_USE_PAGES};
use crate::config;
use crate::os::{self, PAGE};
use crate::sync::Guard;
use core::sync::atomic::{AtomicU64, Ordering};

/// Start (ms) of the current purge epoch; 0 before the first one.
static EPOCH_START: AtomicU64 = AtomicU64::new(0);
/// When pages were last given back (ms; 0 = never).
static LAST_FREED: AtomicU64 = AtomicU64::new(0);

/// The time in ms for the policy (never 0, which means "never" above).
pub fn now() -> u64 {
    os::now_ms().max(1)
}

/// Pages are being given back at `now`: first the idle rule (before they count as freed), then
/// the caller frees them, then [`after_free_locked`]. Caller holds [`PAGE_LOCK`].
pub fn before_free_locked(now: u64) {
    let last = LAST_FREED.load(Ordering::Relaxed);
    if last != 0
        && DIRTY_PAGES.load(Ordering::Relaxed) != 0
        && now.saturating_sub(last) >= config::get().purge_delay_ms
    {
        purge_locked(usize::MAX, false);
    }
}

/// Pages were given back at `now`: apply the cap and the epoch rule. Caller holds
/// [`PAGE_LOCK`].
pub fn after_free_locked(now: u64) {
    LAST_FREED.store(now, Ordering::Relaxed);
    maybe_purge_locked(now);
}

/// The cap and the epoch rule. Caller holds [`PAGE_LOCK`].
fn maybe_purge_locked(now: u64) {
    let dirty = DIRTY_PAGES.load(Ordering::Relaxed);
    let cfg = config::get();
    let cap = (cfg.dirty_cap / PAGE).max(2 * PEAK_IN_USE_PAGES.load(Ordering::Relaxed));
    if dirty > cap {
        let want = dirty - cap / 2;
        let done = purge_locked(want, true);
        if done < want {
            purge_locked(want - done, false);
        }
    }
    let start = EPOCH_START.load(Ordering::Relaxed);
    if start == 0 || now.saturating_sub(start) >= cfg.purge_delay_ms {
        if start != 0 {
            purge_locked(usize::MAX, true);
        }
        // The next epoch's old pages: every page dirty now.
        arena::for_each_arena(|a| a.start_epoch());
        EPOCH_START.store(now, Ordering::Relaxed);
    }
}

/// Check the purge clock from a path that does not otherwise give pages back (a slab refill,
/// the heaps' periodic tick). Takes [`PAGE_LOCK`] only when an epoch or the idle delay is over.
pub fn tick() {
    if DIRTY_PAGES.load(Ordering::Relaxed) == 0 {
        return;
    }
    let now = now();
    let delay = config::get().purge_delay_ms;
    let since_epoch = now.saturating_sub(EPOCH_START.load(Ordering::Relaxed));
    let since_free = now.saturating_sub(LAST_FREED.load(Ordering::Relaxed));
    if since_epoch >= delay || since_free >= delay {
        let _g = Guard::new(&PAGE_LOCK);
        before_free_locked(now);
        maybe_purge_locked(now);
    }
}

/// Purge up to `limit` dirty pages (only old ones if `only_old`), arena by arena. Caller holds
/// [`PAGE_LOCK`].
fn purge_locked(limit: usize, only_old: bool) -> usize {
    let mut total = 0;
    arena::for_each_arena(|a| {
        if total < limit && a.dirty_pages() != 0 {
            total += a.purge(limit - total, only_old);
        }
    });
    total
}

/// Purge every dirty free page now (`malloc_trim`). Returns bytes released.
pub fn purge_all() -> usize {
    let _g = Guard::new(&PAGE_LOCK);
    purge_locked(usize::MAX, false) * PAGE
}

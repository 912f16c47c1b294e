//! L6: the purge policy — when free resident pages go back to the system — and the purging
//! itself, done in rounds so that `MADV_DONTNEED` never runs under [`PAGE_LOCK`].
//!
//! The rules only choose pages: under the lock, they mark dirty pages *due*.
//!
//! - Decay: time is cut into epochs of `XALLOC_PURGE_DELAY_MS`. When an epoch ends, the pages
//!   that were free and resident when it began and were not handed out during it (old pages)
//!   become due; pages a busy program keeps freeing and reusing are left alone, so it does not
//!   fault them in again (jemalloc's decay and tcmalloc's release rate follow the same idea
//!   with other curves).
//! - Cap: when the dirty pages not yet due exceed `max(XALLOC_DIRTY_CAP, 2 * peak pages in
//!   use)`, enough of them to bring that down to half of the bound become due at once, old
//!   pages first. (Tighter caps made programs that cycle large blocks fault the same pages in
//!   again and again: with 32 live blocks of 64 KiB-16 MiB, free runs are scattered enough
//!   that the dirty total passes the peak in use.)
//! - Idle: when no pages were given back for a whole epoch, every dirty page has waited at
//!   least that long, and all become due.
//!
//! Purging goes in rounds. Under the lock, a round takes due pages out of the free pool
//! (`arena::Arena::collect_due`: at most `arena::PURGE_RANGES` ranges and
//! `arena::PURGE_PAGES` pages, into an `arena::PurgeBatch` on the stack), so that no thread
//! can be handed a page while it is being zapped; then the lock is dropped and
//! `MADV_DONTNEED` runs; then, under the lock again, the pages go back to the free pool clean
//! and, if the caller's budget allows, the next round is taken.
//!
//! Every call purges a bounded amount. A thread that gives `n` pages back
//! ([`after_free_locked`] and [`run`], from `pages::free_run`) purges about `n` pages (whole
//! rounds, at least one), so purging keeps pace with freeing. A thread that only checks the
//! clock ([`tick`], from the small-block paths) purges one round, well under a millisecond of
//! `MADV_DONTNEED`, and checks again soon while pages are due (`heap::TICK_SOON`). Only
//! `malloc_trim` ([`purge_all`]) purges everything in one call. A backlog (all dirty pages
//! after an idle epoch, say) is worked off by the calls that follow, none of which waits for
//! the whole of it, and several threads may purge at once: each round holds pages no other
//! round holds. (jemalloc's decay purging likewise first takes the extents it will purge out
//! of its dirty set, then purges them with its decay mutex dropped, at most a given number of
//! pages per call; mimalloc's arenas claim a range in their in-use bitmap before purging it,
//! so that allocation cannot hand it out.)

use crate::arena::{
    self, DIRTY_PAGES, DUE_PAGES, PAGE_LOCK, PEAK_IN_USE_PAGES, PURGING_PAGES, PurgeBatch,
};
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
    if last != 0 && now.saturating_sub(last) >= config::get().purge_delay_ms {
        schedule_all_locked();
    }
}

/// Pages were given back at `now`: apply the cap and the epoch rule, and take the first round
/// of due pages into `batch` (empty), which the caller hands to [`run`] once it has dropped
/// [`PAGE_LOCK`]. Caller holds [`PAGE_LOCK`].
pub fn after_free_locked(now: u64, batch: &mut PurgeBatch) {
    LAST_FREED.store(now, Ordering::Relaxed);
    schedule_locked(now);
    collect_locked(batch);
}

/// Make every dirty page due. Caller holds [`PAGE_LOCK`].
fn schedule_all_locked() {
    if DUE_PAGES.load(Ordering::Relaxed) != DIRTY_PAGES.load(Ordering::Relaxed) {
        arena::for_each_arena(|a| {
            a.schedule_all();
        });
    }
}

/// The cap and the epoch rule. Caller holds [`PAGE_LOCK`].
fn schedule_locked(now: u64) {
    let waiting = DIRTY_PAGES
        .load(Ordering::Relaxed)
        .saturating_sub(DUE_PAGES.load(Ordering::Relaxed));
    let cfg = config::get();
    let cap = (cfg.dirty_cap / PAGE).max(2 * PEAK_IN_USE_PAGES.load(Ordering::Relaxed));
    if waiting > cap {
        let want = waiting - cap / 2;
        let mut done = 0;
        for only_old in [true, false] {
            arena::for_each_arena(|a| {
                if done < want {
                    done += a.schedule(want - done, only_old);
                }
            });
        }
    }
    let start = EPOCH_START.load(Ordering::Relaxed);
    if start == 0 || now.saturating_sub(start) >= cfg.purge_delay_ms {
        // The old pages of the epoch that ended become due; the next epoch's old pages are
        // every other page dirty now.
        arena::for_each_arena(|a| a.next_epoch(start != 0));
        EPOCH_START.store(now, Ordering::Relaxed);
    }
}

/// Take the next round of due pages into `batch` (empty), oldest arena first. Caller holds
/// [`PAGE_LOCK`].
fn collect_locked(batch: &mut PurgeBatch) {
    if DUE_PAGES.load(Ordering::Relaxed) == 0 {
        return;
    }
    arena::for_each_arena(|a| {
        if a.due_pages() != 0 && batch.has_room() {
            a.collect_due(batch);
        }
    });
}

/// Purge the round in `batch` with no lock held, give its pages back, and go on with further
/// rounds while pages are due, until the rounds held `budget` pages (the round in `batch` is
/// purged whatever the budget). The caller holds no lock of ours; `batch` comes from
/// [`after_free_locked`] (or is empty). Returns the pages the kernel dropped.
pub fn run(batch: &mut PurgeBatch, budget: usize) -> usize {
    let (mut taken, mut dropped) = (0, 0);
    while !batch.is_empty() {
        taken += batch.pages();
        dropped += batch.decommit();
        let _g = Guard::new(&PAGE_LOCK);
        batch.give_back();
        if taken < budget {
            collect_locked(batch);
        }
    }
    dropped
}

/// Check the purge clock from a path that does not otherwise give pages back (a slab refill,
/// the heaps' periodic tick). Takes [`PAGE_LOCK`] only when pages are due or an epoch or the
/// idle delay is over, and purges one round at most. Returns whether pages are still due.
pub fn tick() -> bool {
    if DIRTY_PAGES.load(Ordering::Relaxed) == 0 {
        return false;
    }
    let now = now();
    let delay = config::get().purge_delay_ms;
    let since_epoch = now.saturating_sub(EPOCH_START.load(Ordering::Relaxed));
    let since_free = now.saturating_sub(LAST_FREED.load(Ordering::Relaxed));
    if DUE_PAGES.load(Ordering::Relaxed) != 0 || since_epoch >= delay || since_free >= delay {
        let mut batch = PurgeBatch::new();
        {
            let _g = Guard::new(&PAGE_LOCK);
            before_free_locked(now);
            schedule_locked(now);
            collect_locked(&mut batch);
        }
        run(&mut batch, 0);
    }
    DUE_PAGES.load(Ordering::Relaxed) != 0
}

/// Purge every dirty free page now (`malloc_trim`), in rounds. Returns bytes released. Pages
/// that other threads are purging meanwhile are released by those threads and not counted.
pub fn purge_all() -> usize {
    let mut batch = PurgeBatch::new();
    {
        let _g = Guard::new(&PAGE_LOCK);
        schedule_all_locked();
        collect_locked(&mut batch);
    }
    run(&mut batch, usize::MAX) * PAGE
}

/// In a fork child (one thread, locks reset): the pages the parent's other threads were
/// purging when it forked go back to the free pool, dirty (see
/// `arena::Arena::reclaim_purging`).
pub fn reclaim_after_fork() {
    if PURGING_PAGES.load(Ordering::Relaxed) != 0 {
        let _g = Guard::new(&PAGE_LOCK);
        arena::for_each_arena(|a| a.reclaim_purging());
    }
}

//! L8: a heap's cache of free runs — page runs its thread gave up (an emptied slab, a medium
//! block it freed), kept for the thread's next slab refill or medium block so that neither
//! takes `PAGE_LOCK`. The shared arenas are touched in batches: when the cache overflows, and
//! when its runs went unused for a decay period.
//!
//! Runs are whole: a run is handed out only for a request of its own page count (slabs) or
//! at most a quarter fewer pages (medium blocks, which then use the whole run), never split,
//! so the cache needs no page arithmetic and a medium block's usable size is still its run.
//! (jemalloc's thread caches hold large extents per size class in the same spirit; mimalloc
//! keeps a thread's freed pages in its own segments; tcmalloc's per-thread caches stop at
//! small objects.)
//!
//! Bounds: [`SLOTS`] runs, [`MAX_PAGES`] pages in all, runs of at most [`MAX_RUN_PAGES`]. A
//! cached run is resident and out of the purge policy's reach, so it decays: every
//! [`DECAY_EVERY`] runs put in, and at its heap's tick, the runs not taken or put since the
//! previous decay go back to the arenas (where the purge policy sees them). A thread exit,
//! `malloc_trim` and heap adoption empty the cache. A thread that stops calling the allocator
//! altogether keeps at most [`MAX_PAGES`] pages cached.
//!
//! A cached run's span is unused (`span::Span::init_cached`): no address is a block start of
//! it, and only its first group of pages maps to it (the others to the freed-run marker), so
//! a stale pointer into it is reported as a double free or an invalid pointer, as for a run
//! given back to the arenas, and the heap map shows it as free and resident. The arenas count
//! its pages as in use; statistics count them as free ([`RunCache::pages`]).

use crate::arena::MIN_RUN_ORDER;
use crate::buddy::Order;
use crate::pagemap;
use crate::pages::{self, Run};
use crate::span::{Kind, Span};
use crate::stack_vec::StackVec;
use core::ptr;
use core::sync::atomic::{AtomicBool, AtomicUsize, Ordering, compiler_fence};

/// Runs a cache holds at most.
pub const SLOTS: usize = 16;
/// Pages a cache holds at most (2 MiB).
pub const MAX_PAGES: usize = 512;
/// The largest run kept (1 MiB); larger ones go straight back to the arenas.
pub const MAX_RUN_PAGES: usize = 256;
/// Runs put in between two decays.
pub const DECAY_EVERY: u32 = 64;
/// Runs fetched from the page allocator at once when the cache keeps missing.
pub const BATCH: usize = 4;
/// Runs evicted at once (or all the cache holds) when a put finds no room.
pub const EVICT_AT_LEAST: usize = 4;

/// A heap's cache of free runs.
///
/// Invariants (checked by [`RunCache::check_invariants`]):
/// - slot `i` is empty iff `pages[i] == 0`, and then `start[i]` and `span[i]` are null;
/// - a full slot holds a run of `pages[i]` pages (`<= MAX_RUN_PAGES`) at `start[i]`, with its
///   retired span header `span[i]`, that nobody else uses;
/// - `held` is the sum of `pages`, at most [`MAX_PAGES`]; `fresh` has bits of full slots only.
pub struct RunCache {
    /// First byte of each cached run.
    start: [*mut u8; SLOTS],
    /// Span header of each cached run.
    span: [*mut Span; SLOTS],
    /// Pages of each cached run; 0 for an empty slot.
    pages: [u32; SLOTS],
    /// Bit `i`: slot `i` was filled since the last decay.
    fresh: u32,
    /// The slot the next run goes into (its occupant, the oldest, is evicted).
    next: u32,
    /// Puts left until the next decay.
    countdown: u32,
    /// Refills from the page allocator since the last decay.
    misses: u32,
    /// Pages held. Written by the owner only (relaxed load and store), read by statistics.
    held: AtomicUsize,
    /// Set while the owner is inside a method that changes the cache: a signal handler that
    /// interrupted it and calls malloc finds it set and aborts (see [`RunCache::enter`]).
    busy: AtomicBool,
}

/// The page count of the cached run starting at `addr` whose page-map entry is `sp`, if `sp`
/// is the span of a run in some heap's run cache (unused, not the freed-run marker, starting
/// at `addr`). For the heap map and error reports, which read other threads' page maps.
pub fn cached_run_at(sp: *mut Span, addr: usize) -> Option<usize> {
    // SAFETY: page-map entries are null or valid span headers.
    let span = unsafe { sp.as_ref() }?;
    (span.kind() == Kind::Unused
        && !pagemap::is_freed_marker(sp)
        && span.start() as usize == addr
        && span.pages() != 0)
        .then(|| span.pages())
}

impl Default for RunCache {
    fn default() -> Self {
        Self::new()
    }
}

/// Runs on their way back to the arenas, given back under one lock.
struct Evicted {
    runs: StackVec<(*mut u8, usize), { SLOTS + 1 }>,
}

impl Evicted {
    const fn new() -> Self {
        Evicted {
            runs: StackVec::new(),
        }
    }

    fn push(&mut self, start: *mut u8, pages: usize) {
        self.runs.push((start, pages));
    }

    /// Give the runs back to the arenas.
    fn give_back(&mut self) {
        let runs = self.runs.as_mut_slice();
        for &(start, _) in runs.iter() {
            pagemap::unmap_run(start, 1);
        }
        if !runs.is_empty() {
            // SAFETY: every run here left a cache, whose invariant says nobody uses it and
            // its page-map entries are cleared.
            unsafe { pages::free_runs(runs) };
            self.runs.clear();
        }
    }
}

impl RunCache {
    /// An empty cache.
    pub const fn new() -> Self {
        RunCache {
            start: [ptr::null_mut(); SLOTS],
            span: [ptr::null_mut(); SLOTS],
            pages: [0; SLOTS],
            fresh: 0,
            next: 0,
            countdown: DECAY_EVERY,
            misses: 0,
            held: AtomicUsize::new(0),
            busy: AtomicBool::new(false),
        }
    }

    /// Mark the cache busy; if it already is, the owner thread re-entered the allocator from
    /// a signal handler that interrupted it here (undefined behaviour): abort with the
    /// re-entry message rather than hand a run out twice. Only the owner thread touches the
    /// flag, so plain loads and stores kept in program order (compiler fences) suffice: a
    /// signal handler runs on the same thread.
    #[inline]
    fn enter(&self) {
        if self.busy.load(Ordering::Relaxed) {
            crate::debug::reentered("its run cache");
        }
        self.busy.store(true, Ordering::Relaxed);
        compiler_fence(Ordering::SeqCst);
    }

    /// Clear the busy mark.
    #[inline]
    fn leave(&self) {
        compiler_fence(Ordering::SeqCst);
        self.busy.store(false, Ordering::Relaxed);
    }

    /// Pages held (statistics; a relaxed read, exact when the owner is not in the allocator).
    pub fn pages(&self) -> usize {
        self.held.load(Ordering::Relaxed)
    }

    fn set_held(&self, n: usize) {
        self.held.store(n, Ordering::Relaxed);
    }

    /// Empty slot `i` and return its run.
    fn remove(&mut self, i: usize) -> (*mut u8, *mut Span, usize) {
        let r = (self.start[i], self.span[i], self.pages[i] as usize);
        self.start[i] = ptr::null_mut();
        self.span[i] = ptr::null_mut();
        self.pages[i] = 0;
        self.fresh &= !(1 << i);
        self.set_held(self.pages() - r.2);
        r
    }

    /// A cached run of `n` to `max` pages (`n <= max`) whose first page is aligned to
    /// `min_order`'s block, smallest first, and its page count; `None` if there is none. Its
    /// span header is unused (only this cache knows the run's length), its pages dirty.
    pub fn take(&mut self, n: usize, max: usize, min_order: Order) -> Option<(Run, usize)> {
        // Every run starts on a MIN_RUN_ORDER boundary; stricter alignment is rare (aligned
        // medium blocks) and goes to the arenas.
        if self.pages() < n || min_order > MIN_RUN_ORDER {
            return None;
        }
        self.enter();
        let mut best = usize::MAX;
        let mut best_pages = usize::MAX;
        for (i, &p) in self.pages.iter().enumerate() {
            let p = p as usize;
            if p >= n && p <= max && p < best_pages {
                best = i;
                best_pages = p;
                if p == n {
                    break;
                }
            }
        }
        if best == usize::MAX {
            self.leave();
            return None;
        }
        let (start, span, pages) = self.remove(best);
        self.leave();
        Some((
            Run {
                start,
                span,
                zeroed: false,
            },
            pages,
        ))
    }

    /// A run of `n` pages from the page allocator, for a caller whose [`RunCache::take`] found
    /// none. After two such misses since the last decay (a thread that keeps making slabs of
    /// this size), it fetches up to [`BATCH`] runs under one lock and keeps the others, room
    /// permitting.
    pub fn fetch(&mut self, n: usize, min_order: Order) -> Option<Run> {
        self.misses += 1;
        let room = (SLOTS - self.pages.iter().filter(|&&p| p != 0).count())
            .min(MAX_PAGES.saturating_sub(self.pages()) / n.max(1));
        let want = if self.misses > 2 && n <= MAX_RUN_PAGES {
            BATCH.min(room + 1)
        } else {
            1
        };
        if want <= 1 {
            return pages::alloc_run(n, min_order);
        }
        let mut runs = [const { None }; BATCH];
        let got = pages::alloc_runs(n, min_order, &mut runs[..want]);
        if got == 0 {
            return None;
        }
        self.enter();
        for r in runs[1..got].iter_mut().filter_map(Option::take) {
            // There is room (counted above): no eviction.
            self.insert(r.start, r.span, n);
        }
        self.leave();
        runs[0].take()
    }

    /// Put a run into a free slot (the caller made room), its span made a cached run's and its
    /// first group of pages mapped to it.
    fn insert(&mut self, start: *mut u8, span: *mut Span, n: usize) {
        // SAFETY: the run and its span header are the caller's, unused.
        unsafe { (*span).init_cached(start, n) };
        pagemap::map_run(start, 1, span);
        let mut i = self.next as usize;
        while self.pages[i] != 0 {
            i = (i + 1) % SLOTS;
        }
        self.start[i] = start;
        self.span[i] = span;
        self.pages[i] = n as u32;
        self.fresh |= 1 << i;
        self.next = ((i + 1) % SLOTS) as u32;
        self.set_held(self.pages() + n);
    }

    /// Keep the run of `n` pages at `start` (span header `span`), or give it back to the
    /// arenas if it is too large; evicts the oldest runs to make room, and every
    /// [`DECAY_EVERY`] puts runs the decay rule.
    ///
    /// # Safety
    /// The run was handed out by the page allocator (directly or through a cache), nobody uses
    /// it any more, its span is retired and its page-map entries are cleared (the cache maps
    /// the first page again while it holds the run).
    pub unsafe fn put(&mut self, start: *mut u8, span: *mut Span, n: usize) {
        self.enter();
        let mut out = Evicted::new();
        if n > MAX_RUN_PAGES {
            out.push(start, n);
        } else {
            // Room: the oldest runs go first, from the ring position on, at least
            // EVICT_AT_LEAST of them (or all) so the next puts find room without a lock.
            let full = self.pages.iter().all(|&p| p != 0);
            if full || self.pages() + n > MAX_PAGES {
                let mut i = self.next as usize;
                let mut evicted = 0;
                while self.pages() != 0
                    && (evicted < EVICT_AT_LEAST || self.pages() + n > MAX_PAGES)
                {
                    if self.pages[i] != 0 {
                        let (s, _, p) = self.remove(i);
                        out.push(s, p);
                        evicted += 1;
                    }
                    i = (i + 1) % SLOTS;
                }
            }
            self.insert(start, span, n);
        }
        self.countdown -= 1;
        if self.countdown == 0 {
            self.countdown = DECAY_EVERY;
            self.decay_into(&mut out);
        }
        out.give_back();
        self.leave();
    }

    /// Give back the runs neither taken nor put since the previous decay.
    pub fn decay(&mut self) {
        self.enter();
        let mut out = Evicted::new();
        self.decay_into(&mut out);
        out.give_back();
        self.leave();
    }

    fn decay_into(&mut self, out: &mut Evicted) {
        self.misses = 0;
        for i in 0..SLOTS {
            if self.pages[i] != 0 && self.fresh & (1 << i) == 0 {
                let (s, _, p) = self.remove(i);
                out.push(s, p);
            }
        }
        self.fresh = 0;
    }

    /// Give every run back to the arenas.
    pub fn flush(&mut self) {
        self.enter();
        let mut out = Evicted::new();
        for i in 0..SLOTS {
            if self.pages[i] != 0 {
                let (s, _, p) = self.remove(i);
                out.push(s, p);
            }
        }
        out.give_back();
        self.leave();
    }

    /// Verify the invariants documented on the type. Aborts on violation.
    pub fn check_invariants(&self) {
        let mut sum = 0;
        for i in 0..SLOTS {
            let p = self.pages[i] as usize;
            if p == 0 {
                xa_check!(self.start[i].is_null() && self.span[i].is_null());
                xa_check!(self.fresh & (1 << i) == 0);
            } else {
                xa_check!(p <= MAX_RUN_PAGES && !self.start[i].is_null());
                // SAFETY: a full slot's span header is valid (type invariant); read only.
                let span = unsafe { &*self.span[i] };
                xa_check!(span.kind() == Kind::Unused);
                xa_check!(span.start() == self.start[i] && span.pages() == p);
                xa_check!(pagemap::span_of(self.start[i] as usize) == self.span[i]);
                sum += p;
            }
        }
        xa_check!(sum == self.pages() && sum <= MAX_PAGES);
        xa_check!((self.fresh as u64) < (1u64 << SLOTS));
    }
}

//! The engine: runs [`Op`]s against the allocator and keeps the shadow model of their blocks.

use crate::errno;
use crate::model::{Block, Model, SharedModel, release};
use crate::ops::{Bad, NewSize, Op, SLOTS, decode};
use crate::pattern::{check_sampled, check_zero, fill, sampled_bytes, seed_for};
use core::ffi::c_void;
use core::fmt;
use std::sync::Arc;
use xalloc::PAGE;
use xalloc::ffi::{
    XaStats, xa_aligned_alloc, xa_calloc, xa_check_heap, xa_free, xa_malloc, xa_owns, xa_realloc,
    xa_stats, xa_trim, xa_usable_size,
};

/// Default cap on the usable bytes of all live blocks of one engine.
pub const DEFAULT_MAX_LIVE_BYTES: usize = 256 << 20;

/// How an [`Engine`] runs.
#[derive(Clone, Copy, Debug)]
pub struct Config {
    /// Skip allocations that would take the live blocks' usable bytes above this.
    pub max_live_bytes: usize,
    /// No other thread allocates or frees while the engine runs, so a block just freed must
    /// not read as owned and the statistics must cover the model's blocks.
    pub exclusive: bool,
    /// At most this many [`Op::CheckHeap`]s actually call `xa_check_heap` (it is slow).
    pub max_heap_checks: u32,
    /// Call `xa_check_heap` after freeing everything at the end.
    pub check_heap_at_end: bool,
    /// Print each op and each new block to stderr.
    pub trace: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            max_live_bytes: DEFAULT_MAX_LIVE_BYTES,
            exclusive: false,
            max_heap_checks: 8,
            check_heap_at_end: true,
            trace: false,
        }
    }
}

/// What a run did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    /// Ops executed.
    pub ops: usize,
    /// Blocks the model took in: allocations, and every successful non-zero `realloc`'s result.
    pub allocations: u64,
    /// Blocks the model let go: frees, and every `realloc`'s argument.
    pub frees: u64,
    /// Bytes whose contents were compared against the model.
    pub bytes_verified: u64,
    /// Allocations skipped to stay under [`Config::max_live_bytes`].
    pub skipped: u64,
    /// Largest total of live usable bytes.
    pub peak_live_bytes: usize,
    /// `xa_check_heap` calls made.
    pub heap_checks: u32,
}

impl core::ops::AddAssign for Summary {
    fn add_assign(&mut self, o: Summary) {
        self.ops += o.ops;
        self.allocations += o.allocations;
        self.frees += o.frees;
        self.bytes_verified += o.bytes_verified;
        self.skipped += o.skipped;
        self.peak_live_bytes = self.peak_live_bytes.max(o.peak_live_bytes);
        self.heap_checks += o.heap_checks;
    }
}

/// A live block taken out of one engine by [`Engine::hand_off`], to be checked and freed (or
/// taken in by another engine) on another thread. Only an engine makes one, and it is not
/// `Clone`, so each stands for exactly one live block. Dropping it leaks the block; with a
/// [`SharedModel`] the block stays listed there, for [`SharedModel::free_leftovers`].
#[derive(Debug)]
pub struct Handoff {
    b: Block,
    /// The shared model of the engine that handed it off, which still lists the block.
    shared: Option<Arc<SharedModel>>,
}

impl Handoff {
    /// The block's address.
    pub fn addr(&self) -> usize {
        self.b.addr
    }

    /// The block as the model knows it.
    pub fn block(&self) -> &Block {
        &self.b
    }

    /// Check that the block is still intact and ours; returns the bytes compared.
    pub fn verify(&self) -> u64 {
        self.b
            .check("handed-off block")
            .unwrap_or_else(|msg| panic!("opseq: {msg}"))
    }

    /// Verify the block, take it out of the shared model, then free it (from whichever thread
    /// holds the handoff) and check that `errno` is unchanged; returns the bytes compared.
    pub fn free(self) -> u64 {
        self.verify();
        if let Some(s) = &self.shared {
            // Out of the model before it is freed: once freed, another thread may get the
            // same address and enter it.
            assert!(
                s.remove(self.b.addr).is_some(),
                "opseq: the shared model lost handed-off block {:#x}",
                self.b.addr
            );
        }
        release(&self.b, "handed-off block")
    }
}

/// Runs ops against the allocator and the model.
pub struct Engine {
    cfg: Config,
    slots: Vec<Option<Block>>,
    /// This engine's live blocks (those of the slots).
    model: Model,
    /// The model shared with the engines of other threads, if any: it holds this engine's
    /// live blocks too.
    shared: Option<Arc<SharedModel>>,
    generation: u64,
    /// Index and value of the op running, for messages.
    at: usize,
    current: Option<Op>,
    sum: Summary,
}

impl Engine {
    /// An engine with no live blocks, checking overlaps among its own blocks.
    pub fn new(cfg: Config) -> Self {
        Engine {
            cfg,
            slots: vec![None; SLOTS],
            model: Model::new(),
            shared: None,
            generation: 0,
            at: 0,
            current: None,
            sum: Summary::default(),
        }
    }

    /// An engine with no live blocks that also enters every block it allocates in `shared`,
    /// so that its blocks are checked for overlaps with those of every engine using the same
    /// model, on any thread.
    pub fn with_shared(cfg: Config, shared: Arc<SharedModel>) -> Self {
        let mut e = Engine::new(cfg);
        e.shared = Some(shared);
        e
    }

    /// Usable bytes of all live blocks.
    pub fn live_bytes(&self) -> usize {
        self.model.live_bytes()
    }

    /// Number of live blocks.
    pub fn live_blocks(&self) -> usize {
        self.model.len()
    }

    /// This engine's model of its live blocks.
    pub fn model(&self) -> &Model {
        &self.model
    }

    /// Whether `slot` holds a block.
    pub fn occupied(&self, slot: u8) -> bool {
        self.slots[usize::from(slot)].is_some()
    }

    /// The counts so far.
    pub fn summary(&self) -> Summary {
        self.sum
    }

    #[cold]
    #[track_caller]
    fn fail(&self, msg: fmt::Arguments<'_>) -> ! {
        match self.current {
            Some(op) => panic!("opseq: op #{} {:?}: {}", self.at, op, msg),
            None => panic!("opseq: {msg}"),
        }
    }

    /// Run one op.
    pub fn apply(&mut self, op: &Op) {
        self.current = Some(*op);
        if self.cfg.trace {
            eprintln!("opseq #{} {:?}", self.at, op);
        }
        match *op {
            Op::Malloc { slot, size } => self.alloc_into(slot, Kind::Malloc, size),
            Op::Calloc { slot, n, size } => self.alloc_into(slot, Kind::Calloc(n, size), n * size),
            Op::AlignedAlloc {
                slot,
                align_log2,
                size,
            } => self.alloc_into(slot, Kind::Aligned(1 << align_log2), size),
            Op::Realloc { slot, size } => self.realloc(slot, size),
            Op::Free { slot } => {
                if !self.vacate(slot) {
                    errno::set(errno::SENTINEL);
                    // SAFETY: free(NULL) is a no-op.
                    unsafe { xa_free(core::ptr::null_mut()) };
                    self.expect_errno_kept("free(NULL)");
                }
            }
            Op::Inspect { slot } => {
                if let Some(b) = self.slots[usize::from(slot)] {
                    self.verify(&b);
                }
            }
            Op::Burst { first, count, size } => {
                for k in 0..count {
                    self.alloc_into(first.wrapping_add(k), Kind::Malloc, size);
                }
            }
            Op::FreeRange {
                first,
                count,
                stride,
            } => {
                for k in 0..count {
                    self.vacate(first.wrapping_add(k.wrapping_mul(stride)));
                }
            }
            Op::Invalid { kind, slot } => self.invalid(kind, slot),
            Op::Trim => {
                xa_trim();
                self.verify_all();
            }
            Op::CheckHeap => {
                if self.sum.heap_checks < self.cfg.max_heap_checks {
                    self.sum.heap_checks += 1;
                    xa_check_heap();
                    self.verify_all();
                }
            }
            Op::Stats => {
                let mut s = XaStats::default();
                // SAFETY: `s` is a valid, writable XaStats.
                let r = unsafe { xa_stats(&mut s) };
                if r != 0 {
                    self.fail(format_args!("xa_stats returned {r}"));
                }
                if self.cfg.exclusive && s.in_use < self.model.live_bytes() {
                    self.fail(format_args!(
                        "xa_stats in_use {} below the model's {} live bytes ({s:?})",
                        s.in_use,
                        self.model.live_bytes()
                    ));
                }
            }
        }
        self.sum.ops += 1;
        self.at += 1;
        self.current = None;
    }

    /// Allocate into `slot` (freeing its block first), unless that would exceed the cap.
    fn alloc_into(&mut self, slot: u8, kind: Kind, req: usize) {
        self.vacate(slot);
        if !self.fits(req) {
            self.sum.skipped += 1;
            return;
        }
        errno::set(errno::SENTINEL);
        let (p, align) = match kind {
            Kind::Malloc => (xa_malloc(req), 16),
            Kind::Calloc(n, size) => (xa_calloc(n, size), 16),
            Kind::Aligned(align) => (xa_aligned_alloc(align, req), align.max(16)),
        };
        if p.is_null() {
            self.fail(format_args!(
                "{kind:?} of {req} bytes returned NULL (errno {})",
                errno::get()
            ));
        }
        self.expect_errno_kept("a successful allocation");
        if let Kind::Calloc(..) = kind {
            self.expect_zero(p as usize, req);
        }
        self.admit(slot, p as usize, req, align);
    }

    fn fits(&self, req: usize) -> bool {
        req <= self.cfg.max_live_bytes
            && self.model.live_bytes() + req.next_multiple_of(PAGE) <= self.cfg.max_live_bytes
    }

    /// Enter a new block into the model and write its pattern.
    fn admit(&mut self, slot: u8, addr: usize, req: usize, align: usize) {
        if addr % align != 0 || addr % 16 != 0 {
            self.fail(format_args!(
                "block {addr:#x} ({req} bytes) is not aligned to {align}"
            ));
        }
        // SAFETY: addr is a live block just returned by the allocator.
        let usable = unsafe { xa_usable_size(addr as *const c_void) };
        if usable < req {
            self.fail(format_args!(
                "block {addr:#x}: usable size {usable} below the request {req}"
            ));
        }
        if xa_owns(addr as *const c_void) != 1 {
            self.fail(format_args!("xa_owns is not 1 for the new block {addr:#x}"));
        }
        self.generation += 1;
        let b = Block {
            addr,
            req,
            usable,
            seed: seed_for(slot, self.generation),
        };
        self.enter(b, "new block");
        self.enter_shared(b, "new block");
        // SAFETY: the usable range of a live block is ours to write.
        unsafe { fill(addr as *mut u8, usable, b.seed) };
        if self.cfg.trace {
            eprintln!("  slot {slot} <- {addr:#x} req {req} usable {usable}");
        }
        self.sum.allocations += 1;
        self.slots[usize::from(slot)] = Some(b);
    }

    /// Enter a live block into this engine's model; fails if it overlaps one there.
    fn enter(&mut self, b: Block, what: &str) {
        if let Err(o) = self.model.insert(b) {
            self.fail(format_args!(
                "{what} {:#x}..{:#x} ({} bytes) overlaps live block {:#x}..{:#x}",
                b.addr,
                b.end(),
                b.req,
                o.addr,
                o.end()
            ));
        }
        let live = self.model.live_bytes();
        self.sum.peak_live_bytes = self.sum.peak_live_bytes.max(live);
    }

    /// Enter a live block into the shared model, if there is one; fails if it overlaps one
    /// there (after [`Engine::enter`], that is a block of another engine, or one in transit).
    fn enter_shared(&self, b: Block, what: &str) {
        if let Some(s) = &self.shared {
            if let Err(o) = s.insert(b) {
                self.fail(format_args!(
                    "{what} {:#x}..{:#x} ({} bytes) overlaps live block {:#x}..{:#x} of another \
                     thread",
                    b.addr,
                    b.end(),
                    b.req,
                    o.addr,
                    o.end()
                ));
            }
        }
    }

    /// Take a block out of this engine's model and, with `shared_too`, out of the shared one
    /// (it stays allocated). Done before the block is freed or reallocated: afterwards its
    /// address may come back to any thread.
    fn forget(&mut self, b: &Block, shared_too: bool) {
        if self.model.remove(b.addr).is_none() {
            self.fail(format_args!("model lost block {:#x}", b.addr));
        }
        if shared_too {
            if let Some(s) = &self.shared {
                if s.remove(b.addr).is_none() {
                    self.fail(format_args!("shared model lost block {:#x}", b.addr));
                }
            }
        }
    }

    /// Verify and free the slot's block; false if the slot was empty.
    fn vacate(&mut self, slot: u8) -> bool {
        let Some(b) = self.slots[usize::from(slot)].take() else {
            return false;
        };
        self.verify(&b);
        self.forget(&b, true);
        errno::set(errno::SENTINEL);
        // SAFETY: b is a live block of the model, and the model drops it here.
        unsafe { xa_free(b.addr as *mut c_void) };
        let e = errno::get();
        let owned = self.cfg.exclusive && xa_owns(b.addr as *const c_void) != 0;
        if e != errno::SENTINEL {
            self.fail(format_args!("free({:#x}) changed errno to {e}", b.addr));
        }
        if owned {
            self.fail(format_args!(
                "xa_owns is still 1 for {:#x} ({} bytes) right after free",
                b.addr, b.req
            ));
        }
        self.sum.frees += 1;
        true
    }

    fn realloc(&mut self, slot: u8, size: NewSize) {
        let Some(b) = self.slots[usize::from(slot)] else {
            // realloc(NULL, n) is malloc(n).
            let n = match size {
                NewSize::Abs(n) | NewSize::Grow(n) => n,
                NewSize::Shrink(_) | NewSize::Half => 0,
                NewSize::Double => 1,
            };
            if !self.fits(n) {
                self.sum.skipped += 1;
                return;
            }
            errno::set(errno::SENTINEL);
            // SAFETY: realloc(NULL, n) allocates.
            let p = unsafe { xa_realloc(core::ptr::null_mut(), n) };
            if p.is_null() {
                self.fail(format_args!("realloc(NULL, {n}) returned NULL"));
            }
            self.expect_errno_kept("realloc(NULL, n)");
            self.admit(slot, p as usize, n, 16);
            return;
        };
        let n = match size {
            NewSize::Abs(n) => n,
            NewSize::Grow(d) => b.req + d,
            NewSize::Shrink(d) => b.req.saturating_sub(d),
            NewSize::Double => (b.req * 2).max(1),
            NewSize::Half => b.req / 2,
        };
        if n > b.usable && !self.fits(n - b.usable) {
            self.sum.skipped += 1;
            return;
        }
        self.verify(&b);
        self.slots[usize::from(slot)] = None;
        self.forget(&b, true);
        errno::set(errno::SENTINEL);
        // SAFETY: b is a live block of the model; the model dropped it and takes in the result.
        let q = unsafe { xa_realloc(b.addr as *mut c_void, n) } as usize;
        let e = errno::get();
        let old_owned = self.cfg.exclusive && q != b.addr && xa_owns(b.addr as *const c_void) != 0;
        if n == 0 {
            if q != 0 {
                self.fail(format_args!(
                    "realloc({:#x}, 0) returned {q:#x}, not NULL",
                    b.addr
                ));
            }
            self.sum.frees += 1;
        } else if q == 0 {
            self.fail(format_args!(
                "realloc({:#x}, {n}) from {} bytes returned NULL (errno {e})",
                b.addr, b.req
            ));
        }
        if e != errno::SENTINEL {
            self.fail(format_args!(
                "realloc({:#x}, {n}) changed errno to {e}",
                b.addr
            ));
        }
        if old_owned {
            self.fail(format_args!(
                "xa_owns is still 1 for {:#x} after realloc to {n} bytes moved it to {q:#x}",
                b.addr
            ));
        }
        if n == 0 {
            return;
        }
        // The common prefix survived, wherever the block is now.
        let keep = b.req.min(n);
        // SAFETY: q is live with at least n >= keep bytes.
        let bad = unsafe { check_sampled(q as *const u8, b.usable, keep, b.seed) };
        self.sum.bytes_verified += sampled_bytes(b.usable, keep) as u64;
        if let Some(i) = bad {
            self.fail(format_args!(
                "realloc({:#x}, {n}) -> {q:#x} from {} bytes: byte {i} of the kept prefix \
                 ({keep} bytes) changed",
                b.addr, b.req
            ));
        }
        // The old block counts as freed and the result as a new allocation, moved or not.
        self.sum.frees += 1;
        self.admit(slot, q, n, 16);
    }

    fn invalid(&mut self, kind: Bad, slot: u8) {
        let huge = isize::MAX as usize + 1;
        let (p, want) = match kind {
            Bad::MallocTooBig => (malloc_fresh(huge), libc::ENOMEM),
            Bad::MallocMax => (malloc_fresh(usize::MAX), libc::ENOMEM),
            Bad::CallocOverflow => {
                errno::set(errno::SENTINEL);
                (xa_calloc(usize::MAX / 2 + 1, 2), libc::ENOMEM)
            }
            Bad::CallocTooBig => {
                errno::set(errno::SENTINEL);
                (xa_calloc(isize::MAX as usize / 16 + 1, 16), libc::ENOMEM)
            }
            Bad::AlignZero => {
                errno::set(errno::SENTINEL);
                (xa_aligned_alloc(0, 16), libc::EINVAL)
            }
            Bad::AlignNotPowerOfTwo => {
                errno::set(errno::SENTINEL);
                (xa_aligned_alloc(48, 64), libc::EINVAL)
            }
            Bad::AlignedTooBig => {
                errno::set(errno::SENTINEL);
                (xa_aligned_alloc(1 << 20, usize::MAX - 4095), libc::ENOMEM)
            }
            Bad::ReallocTooBig => {
                let b = self.slots[usize::from(slot)];
                errno::set(errno::SENTINEL);
                let old = b.map_or(core::ptr::null_mut(), |b| b.addr as *mut c_void);
                // SAFETY: old is NULL or a live block of the model; a failing realloc leaves
                // it in place, which is checked below.
                let q = unsafe { xa_realloc(old, huge) };
                let e = errno::get();
                if !q.is_null() || e != libc::ENOMEM {
                    self.fail(format_args!(
                        "realloc({old:p}, {huge}) returned {q:p} with errno {e}, \
                         not NULL with ENOMEM"
                    ));
                }
                if let Some(b) = b {
                    self.verify(&b);
                }
                return;
            }
            Bad::NullAndInterior => {
                errno::set(errno::SENTINEL);
                // SAFETY: free(NULL) is a no-op.
                unsafe { xa_free(core::ptr::null_mut()) };
                self.expect_errno_kept("free(NULL)");
                // SAFETY: usable_size(NULL) is defined as 0.
                let u = unsafe { xa_usable_size(core::ptr::null()) };
                if u != 0 {
                    self.fail(format_args!("usable_size(NULL) = {u}"));
                }
                if xa_owns(core::ptr::null()) != 0 {
                    self.fail(format_args!("xa_owns(NULL) is not 0"));
                }
                if let Some(b) = self.slots[usize::from(slot)] {
                    if b.usable >= 32 && xa_owns((b.addr + 16) as *const c_void) != 0 {
                        self.fail(format_args!(
                            "xa_owns is 1 for {:#x}, 16 bytes into live block {:#x}",
                            b.addr + 16,
                            b.addr
                        ));
                    }
                }
                return;
            }
        };
        let e = errno::get();
        if !p.is_null() || e != want {
            self.fail(format_args!(
                "returned {p:p} with errno {e}, not NULL with errno {want}"
            ));
        }
    }

    /// Check one block: owned, same usable size, contents intact.
    fn verify(&mut self, b: &Block) {
        match b.check("live block") {
            Ok(n) => self.sum.bytes_verified += n,
            Err(msg) => self.fail(format_args!("{msg}")),
        }
    }

    fn verify_all(&mut self) {
        for i in 0..SLOTS {
            if let Some(b) = self.slots[i] {
                self.verify(&b);
            }
        }
    }

    fn expect_errno_kept(&self, what: &str) {
        let e = errno::get();
        if e != errno::SENTINEL {
            self.fail(format_args!("{what} changed errno to {e}"));
        }
    }

    fn expect_zero(&self, addr: usize, req: usize) {
        // SAFETY: addr is a fresh block of at least req bytes.
        let bad = unsafe { check_zero(addr as *const u8, req) };
        if let Some(i) = bad {
            self.fail(format_args!(
                "calloc block {addr:#x} ({req} bytes): byte {i} is not zero"
            ));
        }
    }

    /// Take the slot's block out of the model, verified but still allocated, to be freed or
    /// taken in elsewhere. `None` for an empty slot. With a shared model, the block stays in
    /// that one while it travels.
    pub fn hand_off(&mut self, slot: u8) -> Option<Handoff> {
        let b = self.slots[usize::from(slot)].take()?;
        self.verify(&b);
        self.forget(&b, false);
        Some(Handoff {
            b,
            shared: self.shared.clone(),
        })
    }

    /// Put a block handed off by some engine (possibly on another thread) into `slot`, after
    /// freeing the slot's block; later ops may verify, resize or free it here. The block is
    /// verified and checked for overlaps with this engine's blocks; if it comes from an engine
    /// with another shared model (or none), it moves from that model into this engine's.
    pub fn take_in(&mut self, h: Handoff, slot: u8) {
        self.vacate(slot);
        let Handoff { b, shared } = h;
        match b.check("handed-in block") {
            Ok(n) => self.sum.bytes_verified += n,
            Err(msg) => self.fail(format_args!("{msg}")),
        }
        self.enter(b, "handed-in block");
        let same_shared = match (&shared, &self.shared) {
            (Some(from), Some(to)) => Arc::ptr_eq(from, to),
            _ => false,
        };
        if !same_shared {
            if let Some(from) = &shared {
                if from.remove(b.addr).is_none() {
                    self.fail(format_args!(
                        "the sender's shared model lost handed-in block {:#x}",
                        b.addr
                    ));
                }
            }
            self.enter_shared(b, "handed-in block");
        }
        self.slots[usize::from(slot)] = Some(b);
    }

    /// Verify and free every live block, check the model is empty, run `xa_check_heap` if
    /// configured, and return the counts.
    pub fn finish(mut self) -> Summary {
        self.release_all();
        if !self.model.is_empty() || self.model.live_bytes() != 0 {
            self.fail(format_args!(
                "model not empty after freeing every slot: {} blocks, {} bytes",
                self.model.len(),
                self.model.live_bytes()
            ));
        }
        if self.cfg.check_heap_at_end {
            self.sum.heap_checks += 1;
            xa_check_heap();
        }
        self.sum
    }

    fn release_all(&mut self) {
        for slot in 0..SLOTS {
            self.vacate(slot as u8);
        }
    }
}

impl Drop for Engine {
    /// Free what is left (verified), unless a check already failed: then the heap may be
    /// corrupt and the blocks are leaked.
    fn drop(&mut self) {
        if !std::thread::panicking() {
            self.release_all();
        }
    }
}

/// How an allocation is made.
#[derive(Clone, Copy, Debug)]
enum Kind {
    Malloc,
    Calloc(usize, usize),
    Aligned(usize),
}

/// Run `ops` with the default [`Config`] (not exclusive); frees everything at the end.
pub fn run(ops: &[Op]) -> Summary {
    run_with(Config::default(), ops)
}

/// Run `ops` with `cfg`; frees everything at the end.
pub fn run_with(cfg: Config, ops: &[Op]) -> Summary {
    let mut e = Engine::new(cfg);
    for op in ops {
        e.apply(op);
    }
    e.finish()
}

/// Decode `data` and run it with `cfg`.
pub fn run_bytes(cfg: Config, data: &[u8]) -> Summary {
    run_with(cfg, &decode(data))
}

/// `malloc(size)` with `errno` set to the sentinel first.
fn malloc_fresh(size: usize) -> *mut c_void {
    errno::set(errno::SENTINEL);
    xa_malloc(size)
}

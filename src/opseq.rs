//! Test support: random operation sequences run against the allocator and checked against a
//! shadow model. Used by `tests/opseq_property.rs` and by the cargo-fuzz target in `fuzz/`;
//! never called by the allocator itself, and free to allocate (its own `Vec`s and `BTreeMap`
//! come from xalloc too when the `global` feature is on).
//!
//! # Pieces
//!
//! - [`Op`]: one step — allocate into a slot (`malloc`, `calloc`, `aligned_alloc`, a burst of
//!   `malloc`s), `realloc` or free a slot, inspect a slot, ask for something that must fail,
//!   `xa_trim`, `xa_check_heap`, `xa_stats`. There are [`SLOTS`] slots; allocating into an
//!   occupied slot first frees the block there.
//! - [`decode`]: turns arbitrary bytes into at most [`MAX_OPS`] ops. Every byte string is a
//!   valid program: an opcode byte picks the op, the bytes after it its arguments, and missing
//!   bytes at the end read as zero. Sizes come from [`Reader::size`], which covers 0, tiny
//!   sizes, every class region, sizes next to every class boundary, page multiples ± a little,
//!   medium runs up to a few MiB, the medium/huge border, and (rarely) huge blocks of 33–64 MiB.
//! - [`Engine`]: runs ops and keeps the model: for each slot the block's address, requested
//!   size, usable size and a pattern seed derived from (slot, generation). Live
//!   blocks are also indexed by address, and a new block must not overlap its neighbours.
//!   [`Engine::hand_off`] and [`Engine::take_in`] move live blocks between engines (threads).
//! - [`run`] / [`run_with`] / [`run_bytes`]: run a whole sequence, free everything at the end,
//!   and return a [`Summary`].
//!
//! # Checked properties
//!
//! Any violation panics with the op index, the op, and what went wrong.
//!
//! - A successful allocation is non-null, 16-byte aligned and aligned as asked, its usable size
//!   covers the request, `xa_owns` says 1, and its usable range overlaps no other live block.
//!   `calloc` memory reads as zero over the requested size.
//! - The whole usable range is written with the block's pattern (blocks above 64 KiB only at
//!   samples: the first and last 4 KiB, and 16 bytes around every 1st, 4th or 16th page
//!   boundary, sparser as blocks grow), and verified before every free and realloc, on
//!   [`Op::Inspect`], and after trim and heap checks.
//! - `xa_usable_size` does not change while a block lives, and `xa_owns` stays 1.
//! - `realloc` keeps the common prefix of the requested sizes; `realloc(p, 0)` returns NULL;
//!   `realloc(NULL, n)` allocates.
//! - Requests above `isize::MAX`, overflowing `calloc`s and bad alignments return NULL and set
//!   `errno` (`ENOMEM` / `EINVAL`); a failed `realloc` leaves the block intact. Successful calls
//!   and `free` leave `errno` alone.
//! - With [`Config::exclusive`] (no other thread allocates meanwhile): `xa_owns` is 0 for a
//!   block just freed or just moved by `realloc`, and `xa_stats` counts at least the model's
//!   live bytes.
//! - `xa_check_heap` (which aborts on a broken invariant) runs on [`Op::CheckHeap`] (up to
//!   [`Config::max_heap_checks`] times) and at the end.
//!
//! Total live bytes stay under [`Config::max_live_bytes`]: an allocation that would exceed it
//! is skipped (and counted in [`Summary::skipped`]), so every run stays memory-bounded.

use crate::MEDIUM_LIMIT as MAX_RUN_BYTES;
use crate::ffi::{
    XaStats, xa_aligned_alloc, xa_calloc, xa_check_heap, xa_free, xa_malloc, xa_owns, xa_realloc,
    xa_stats, xa_trim, xa_usable_size,
};
use crate::{CLASS_SIZE, NUM_CLASSES, PAGE, SLAB_LIMIT};
use core::ffi::c_void;
use core::fmt;
use std::collections::BTreeMap;

/// Number of slots an op can name (a slot is one byte).
pub const SLOTS: usize = 256;
/// [`decode`] stops after this many ops.
pub const MAX_OPS: usize = 1024;
/// Default cap on the usable bytes of all live blocks of one engine.
pub const DEFAULT_MAX_LIVE_BYTES: usize = 256 << 20;
/// Blocks up to this size are written and verified in full; larger ones by sample.
pub const FULL_CHECK_LIMIT: usize = 64 << 10;
/// `calloc` blocks up to this size are checked for zeros in full; larger ones by sample.
const FULL_ZERO_LIMIT: usize = 4 << 20;
/// Sampled blocks: bytes written in full at each end.
const EDGE: usize = 4096;
/// Sampled blocks up to this size get a sample at every page boundary, up to
/// [`MID_STRIDE_LIMIT`] every 4 pages, larger ones every 16 pages.
const PAGE_STRIDE_LIMIT: usize = 1 << 20;
const MID_STRIDE_LIMIT: usize = 8 << 20;
/// [`Op::Burst`] sizes stay below this (two slab limits).
pub const BURST_SIZE_LIMIT: usize = 2 * SLAB_LIMIT;
/// The value `errno` is set to before each call whose `errno` behaviour is checked.
const ERRNO_SENTINEL: i32 = 0x7eed;

/// The requested size of a `realloc`, absolute or relative to the block's current request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NewSize {
    /// Exactly this many bytes (0 frees).
    Abs(usize),
    /// The current request plus this many bytes.
    Grow(usize),
    /// The current request minus this many bytes (0 if that underflows, which frees).
    Shrink(usize),
    /// Twice the current request (at least 1).
    Double,
    /// Half the current request (0 for a 1-byte block, which frees).
    Half,
}

/// A request that must fail (or, for [`Bad::NullAndInterior`], must answer "not ours").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Bad {
    /// `malloc(isize::MAX + 1)`: NULL, `ENOMEM`.
    MallocTooBig,
    /// `malloc(usize::MAX)`: NULL, `ENOMEM`.
    MallocMax,
    /// `calloc(usize::MAX / 2 + 1, 2)` overflows: NULL, `ENOMEM`.
    CallocOverflow,
    /// `calloc(isize::MAX / 16 + 1, 16)` exceeds `isize::MAX` without overflowing: NULL, `ENOMEM`.
    CallocTooBig,
    /// `aligned_alloc(0, 16)`: NULL, `EINVAL`.
    AlignZero,
    /// `aligned_alloc(48, 64)`: NULL, `EINVAL`.
    AlignNotPowerOfTwo,
    /// `aligned_alloc(1 MiB, usize::MAX - 4095)`: NULL, `ENOMEM`.
    AlignedTooBig,
    /// `realloc(slot, isize::MAX + 1)`: NULL, `ENOMEM`, the block intact (`realloc(NULL, ..)`
    /// for an empty slot).
    ReallocTooBig,
    /// `free(NULL)` is a no-op, `usable_size(NULL)` is 0, `owns(NULL)` is 0, and `owns` of a
    /// pointer 16 bytes into the slot's block (if it is at least 32 bytes) is 0.
    NullAndInterior,
}

const BADS: [Bad; 9] = [
    Bad::MallocTooBig,
    Bad::MallocMax,
    Bad::CallocOverflow,
    Bad::CallocTooBig,
    Bad::AlignZero,
    Bad::AlignNotPowerOfTwo,
    Bad::AlignedTooBig,
    Bad::ReallocTooBig,
    Bad::NullAndInterior,
];

/// One step of a sequence.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    /// `malloc(size)` into `slot`.
    Malloc {
        /// Target slot (its current block is freed first).
        slot: u8,
        /// Requested bytes.
        size: usize,
    },
    /// `calloc(n, size)` into `slot`.
    Calloc {
        /// Target slot (its current block is freed first).
        slot: u8,
        /// Element count.
        n: usize,
        /// Element size.
        size: usize,
    },
    /// `aligned_alloc(1 << align_log2, size)` into `slot`.
    AlignedAlloc {
        /// Target slot (its current block is freed first).
        slot: u8,
        /// log2 of the alignment.
        align_log2: u8,
        /// Requested bytes.
        size: usize,
    },
    /// `realloc(slot's block or NULL, size)`.
    Realloc {
        /// The slot resized.
        slot: u8,
        /// The new request.
        size: NewSize,
    },
    /// `free(slot's block)` (`free(NULL)` for an empty slot).
    Free {
        /// The slot emptied.
        slot: u8,
    },
    /// Check the slot's block: `xa_owns`, `xa_usable_size`, all its (sampled) contents.
    Inspect {
        /// The slot checked.
        slot: u8,
    },
    /// `count` `malloc(size)`s into slots `first`, `first + 1`, … (wrapping).
    Burst {
        /// First slot.
        first: u8,
        /// Number of blocks.
        count: u8,
        /// Requested bytes of each.
        size: usize,
    },
    /// Free the blocks of `count` slots `first`, `first + stride`, … (wrapping).
    FreeRange {
        /// First slot.
        first: u8,
        /// Number of slots.
        count: u8,
        /// Slot step (odd, so the slots are distinct).
        stride: u8,
    },
    /// A request that must fail.
    Invalid {
        /// Which one.
        kind: Bad,
        /// The slot involved, for the kinds that use one.
        slot: u8,
    },
    /// `xa_trim()`, then verify every live block.
    Trim,
    /// `xa_check_heap()`, then verify every live block.
    CheckHeap,
    /// `xa_stats()`.
    Stats,
}

/// Reads op arguments from a byte string; past its end every byte reads as 0.
pub struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    /// A reader at the start of `data`.
    pub fn new(data: &'a [u8]) -> Self {
        Reader { data, pos: 0 }
    }

    /// Whether every byte has been read.
    pub fn at_end(&self) -> bool {
        self.pos >= self.data.len()
    }

    /// The next byte (0 past the end).
    pub fn byte(&mut self) -> u8 {
        let b = self.data.get(self.pos).copied().unwrap_or(0);
        self.pos += 1;
        b
    }

    /// The next two bytes, little-endian.
    pub fn u16(&mut self) -> u16 {
        u16::from(self.byte()) | (u16::from(self.byte()) << 8)
    }

    /// The next three bytes, little-endian.
    pub fn u24(&mut self) -> u32 {
        u32::from(self.u16()) | (u32::from(self.byte()) << 16)
    }

    /// A request size. The first byte picks the region (out of 256):
    ///
    /// | first byte | size |
    /// |---|---|
    /// | 0–7 | 0 |
    /// | 8–47 | 1–32 |
    /// | 48–111 | 1–1024 |
    /// | 112–159 | a class size + {-16, -8, -1, 0, +1, +8, +16} (every class: 16·k ± 1, 1024, 4096 ± 8, 32768 ± 1, …) |
    /// | 160–199 | 1025–32768 |
    /// | 200–229 | 32 KiB + up to 2^(15..=22) bytes (medium runs up to 4 MiB) |
    /// | 230–249 | k pages + {-16, -1, 0, +1, +16}, k in 8..=1024 |
    /// | 250–252 | next to the medium/huge border (8 MiB .. 32 MiB + 1 page) |
    /// | 253–255 | huge: 33–64 MiB |
    pub fn size(&mut self) -> usize {
        let sel = self.byte();
        match sel {
            0..=7 => 0,
            8..=47 => 1 + usize::from(self.byte() % 32),
            48..=111 => 1 + usize::from(self.u16() % 1024),
            112..=159 => {
                const DELTA: [isize; 7] = [-16, -8, -1, 0, 1, 8, 16];
                let class = usize::from(self.byte()) % NUM_CLASSES;
                let d = DELTA[usize::from(self.byte()) % DELTA.len()];
                (CLASS_SIZE[class] as usize).saturating_add_signed(d)
            }
            160..=199 => 1025 + usize::from(self.u16()) % (SLAB_LIMIT - 1024),
            200..=229 => {
                let bits = 15 + u32::from(self.byte() % 8);
                SLAB_LIMIT + (self.u24() as usize & ((1 << bits) - 1))
            }
            230..=249 => {
                const DELTA: [isize; 5] = [-16, -1, 0, 1, 16];
                let pages = 8 + usize::from(self.u16()) % 1017;
                let d = DELTA[usize::from(self.byte()) % DELTA.len()];
                (pages * PAGE).saturating_add_signed(d)
            }
            250..=252 => {
                let edge = [
                    MAX_RUN_BYTES - PAGE,
                    MAX_RUN_BYTES - 1,
                    MAX_RUN_BYTES,
                    MAX_RUN_BYTES + 1,
                    MAX_RUN_BYTES + PAGE,
                    MAX_RUN_BYTES / 2,
                    MAX_RUN_BYTES / 2 + 1,
                    MAX_RUN_BYTES / 4,
                ];
                edge[usize::from(self.byte()) % edge.len()]
            }
            253..=255 => (33 << 20) + self.u24() as usize % (31 << 20),
        }
    }

    /// A size for [`Op::Burst`]: [`Reader::size`] folded below [`BURST_SIZE_LIMIT`], since bursts
    /// are there to fill and empty slabs.
    pub fn burst_size(&mut self) -> usize {
        let n = self.size();
        if n >= BURST_SIZE_LIMIT {
            n % BURST_SIZE_LIMIT
        } else {
            n
        }
    }

    /// A `realloc` target from a selector byte b: b % 8 in 0–3 is [`NewSize::Abs`] (a
    /// [`Reader::size`] follows), 4 [`NewSize::Grow`] and 5 [`NewSize::Shrink`] (by a u16 % 8192
    /// that follows), 6 [`NewSize::Double`], 7 [`NewSize::Half`].
    pub fn new_size(&mut self) -> NewSize {
        match self.byte() % 8 {
            0..=3 => NewSize::Abs(self.size()),
            4 => NewSize::Grow(usize::from(self.u16() % 8192)),
            5 => NewSize::Shrink(usize::from(self.u16() % 8192)),
            6 => NewSize::Double,
            _ => NewSize::Half,
        }
    }

    /// The next op, or `None` at the end of the input. The opcode byte picks the op; the
    /// arguments follow in the order listed (`size` is [`Reader::size`], `new_size`
    /// [`Reader::new_size`]):
    ///
    /// | opcode | op | argument bytes |
    /// |---|---|---|
    /// | 0–69, 252–255 | [`Op::Malloc`] | slot, size |
    /// | 70–89 | [`Op::Calloc`] | slot, n (b % 8 picks 1, 1, 2, 3, 4, 7, 16 or 1000), total size (size = total / n) |
    /// | 90–109 | [`Op::AlignedAlloc`] | slot, a (log2 = a % 24, or 24 + a % 3 for a ≥ 240), size |
    /// | 110–149 | [`Op::Realloc`] | slot, new_size |
    /// | 150–199 | [`Op::Free`] | slot |
    /// | 200–219 | [`Op::Inspect`] | slot |
    /// | 220–227 | [`Op::Burst`] | first, count = 1 + b % 64, [`Reader::burst_size`] |
    /// | 228–233 | [`Op::FreeRange`] | first, count = 1 + b % 64, stride = 2 (b % 16) + 1 |
    /// | 234–241 | [`Op::Invalid`] | kind (b % 9, in [`Bad`]'s order), slot |
    /// | 242–245 | [`Op::Trim`] | |
    /// | 246–247 | [`Op::CheckHeap`] | |
    /// | 248–251 | [`Op::Stats`] | |
    pub fn op(&mut self) -> Option<Op> {
        if self.at_end() {
            return None;
        }
        let code = self.byte();
        Some(match code {
            0..=69 | 252..=255 => Op::Malloc {
                slot: self.byte(),
                size: self.size(),
            },
            70..=89 => {
                const N: [usize; 8] = [1, 1, 2, 3, 4, 7, 16, 1000];
                let slot = self.byte();
                let n = N[usize::from(self.byte() % 8)];
                let total = self.size();
                Op::Calloc {
                    slot,
                    n,
                    size: total / n,
                }
            }
            90..=109 => {
                let slot = self.byte();
                let a = self.byte();
                // Mostly up to 8 MiB; 1 in 16 up to 64 MiB (the huge path).
                let align_log2 = if a >= 240 { 24 + a % 3 } else { a % 24 };
                Op::AlignedAlloc {
                    slot,
                    align_log2,
                    size: self.size(),
                }
            }
            110..=149 => Op::Realloc {
                slot: self.byte(),
                size: self.new_size(),
            },
            150..=199 => Op::Free { slot: self.byte() },
            200..=219 => Op::Inspect { slot: self.byte() },
            220..=227 => Op::Burst {
                first: self.byte(),
                count: 1 + self.byte() % 64,
                size: self.burst_size(),
            },
            228..=233 => Op::FreeRange {
                first: self.byte(),
                count: 1 + self.byte() % 64,
                stride: (self.byte() % 16) * 2 + 1,
            },
            234..=241 => Op::Invalid {
                kind: BADS[usize::from(self.byte()) % BADS.len()],
                slot: self.byte(),
            },
            242..=245 => Op::Trim,
            246..=247 => Op::CheckHeap,
            248..=251 => Op::Stats,
        })
    }
}

/// Decode a byte string into at most [`MAX_OPS`] ops (see [`Reader`]).
pub fn decode(data: &[u8]) -> Vec<Op> {
    let mut r = Reader::new(data);
    let mut ops = Vec::new();
    while ops.len() < MAX_OPS {
        match r.op() {
            Some(op) => ops.push(op),
            None => break,
        }
    }
    ops
}

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

/// A live block as the model knows it.
#[derive(Clone, Copy, Debug)]
struct Live {
    addr: usize,
    /// Requested bytes.
    req: usize,
    /// `xa_usable_size` when allocated; the whole range holds the pattern.
    usable: usize,
    /// Pattern seed, from (slot, generation).
    seed: u64,
}

/// A live block taken out of one engine by [`Engine::hand_off`], to be checked and freed (or
/// taken in by another engine) on another thread. Only an engine makes one, and it is not
/// `Clone`, so each stands for exactly one live block. Dropping it leaks the block.
#[derive(Debug)]
pub struct Handoff {
    b: Live,
}

impl Handoff {
    /// The block's address.
    pub fn addr(&self) -> usize {
        self.b.addr
    }

    /// Check that the block is still intact and ours; returns the bytes compared.
    pub fn verify(&self) -> u64 {
        check_live(&self.b, "handed-off block")
    }

    /// Verify the block, then free it (from whichever thread holds the handoff); returns the
    /// bytes compared.
    pub fn free(self) -> u64 {
        let n = self.verify();
        os_errno_set(ERRNO_SENTINEL);
        // SAFETY: a Handoff stands for one live block that nothing else refers to; `self` is
        // consumed, so it is freed once.
        unsafe { xa_free(self.b.addr as *mut c_void) };
        let e = errno();
        assert!(
            e == ERRNO_SENTINEL,
            "opseq: free of handed-off block {:#x} changed errno to {e}",
            self.b.addr
        );
        n
    }
}

/// Runs ops against the allocator and the model.
pub struct Engine {
    cfg: Config,
    slots: Vec<Option<Live>>,
    /// Live blocks by address: address -> end of the usable range.
    by_addr: BTreeMap<usize, usize>,
    live_bytes: usize,
    generation: u64,
    /// Index and value of the op running, for messages.
    at: usize,
    current: Option<Op>,
    sum: Summary,
}

impl Engine {
    /// An engine with no live blocks.
    pub fn new(cfg: Config) -> Self {
        Engine {
            cfg,
            slots: vec![None; SLOTS],
            by_addr: BTreeMap::new(),
            live_bytes: 0,
            generation: 0,
            at: 0,
            current: None,
            sum: Summary::default(),
        }
    }

    /// Usable bytes of all live blocks.
    pub fn live_bytes(&self) -> usize {
        self.live_bytes
    }

    /// Number of live blocks.
    pub fn live_blocks(&self) -> usize {
        self.by_addr.len()
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
                    os_errno_set(ERRNO_SENTINEL);
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
                if self.cfg.exclusive && s.in_use < self.live_bytes {
                    self.fail(format_args!(
                        "xa_stats in_use {} below the model's {} live bytes ({s:?})",
                        s.in_use, self.live_bytes
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
        os_errno_set(ERRNO_SENTINEL);
        let (p, align) = match kind {
            Kind::Malloc => (xa_malloc(req), 16),
            Kind::Calloc(n, size) => (xa_calloc(n, size), 16),
            Kind::Aligned(align) => (xa_aligned_alloc(align, req), align.max(16)),
        };
        if p.is_null() {
            self.fail(format_args!(
                "{kind:?} of {req} bytes returned NULL (errno {})",
                errno()
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
            && self.live_bytes + req.next_multiple_of(PAGE) <= self.cfg.max_live_bytes
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
        let end = addr + usable.max(1);
        if let Some((&a, &e)) = self.by_addr.range(..end).next_back() {
            if e > addr {
                self.fail(format_args!(
                    "new block {addr:#x}..{end:#x} ({req} bytes) overlaps live block {a:#x}..{e:#x}"
                ));
            }
        }
        self.by_addr.insert(addr, end);
        self.generation += 1;
        let b = Live {
            addr,
            req,
            usable,
            seed: seed_for(slot, self.generation),
        };
        // SAFETY: the usable range of a live block is ours to write.
        unsafe { fill(addr as *mut u8, usable, b.seed) };
        if self.cfg.trace {
            eprintln!("  slot {slot} <- {addr:#x} req {req} usable {usable}");
        }
        self.live_bytes += usable;
        self.sum.peak_live_bytes = self.sum.peak_live_bytes.max(self.live_bytes);
        self.sum.allocations += 1;
        self.slots[usize::from(slot)] = Some(b);
    }

    /// Take a block out of the model (it stays allocated).
    fn forget(&mut self, b: &Live) {
        if self.by_addr.remove(&b.addr).is_none() {
            self.fail(format_args!("model lost block {:#x}", b.addr));
        }
        self.live_bytes -= b.usable;
    }

    /// Verify and free the slot's block; false if the slot was empty.
    fn vacate(&mut self, slot: u8) -> bool {
        let Some(b) = self.slots[usize::from(slot)].take() else {
            return false;
        };
        self.verify(&b);
        self.forget(&b);
        os_errno_set(ERRNO_SENTINEL);
        // SAFETY: b is a live block of the model, and the model drops it here.
        unsafe { xa_free(b.addr as *mut c_void) };
        let e = errno();
        let owned = self.cfg.exclusive && xa_owns(b.addr as *const c_void) != 0;
        if e != ERRNO_SENTINEL {
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
            os_errno_set(ERRNO_SENTINEL);
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
        self.forget(&b);
        os_errno_set(ERRNO_SENTINEL);
        // SAFETY: b is a live block of the model; the model dropped it and takes in the result.
        let q = unsafe { xa_realloc(b.addr as *mut c_void, n) } as usize;
        let e = errno();
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
        if e != ERRNO_SENTINEL {
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
            Bad::MallocTooBig => (xa_malloc_fresh(huge), libc::ENOMEM),
            Bad::MallocMax => (xa_malloc_fresh(usize::MAX), libc::ENOMEM),
            Bad::CallocOverflow => {
                os_errno_set(ERRNO_SENTINEL);
                (xa_calloc(usize::MAX / 2 + 1, 2), libc::ENOMEM)
            }
            Bad::CallocTooBig => {
                os_errno_set(ERRNO_SENTINEL);
                (xa_calloc(isize::MAX as usize / 16 + 1, 16), libc::ENOMEM)
            }
            Bad::AlignZero => {
                os_errno_set(ERRNO_SENTINEL);
                (xa_aligned_alloc(0, 16), libc::EINVAL)
            }
            Bad::AlignNotPowerOfTwo => {
                os_errno_set(ERRNO_SENTINEL);
                (xa_aligned_alloc(48, 64), libc::EINVAL)
            }
            Bad::AlignedTooBig => {
                os_errno_set(ERRNO_SENTINEL);
                (xa_aligned_alloc(1 << 20, usize::MAX - 4095), libc::ENOMEM)
            }
            Bad::ReallocTooBig => {
                let b = self.slots[usize::from(slot)];
                os_errno_set(ERRNO_SENTINEL);
                let old = b.map_or(core::ptr::null_mut(), |b| b.addr as *mut c_void);
                // SAFETY: old is NULL or a live block of the model; a failing realloc leaves
                // it in place, which is checked below.
                let q = unsafe { xa_realloc(old, huge) };
                let e = errno();
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
                os_errno_set(ERRNO_SENTINEL);
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
        let e = errno();
        if !p.is_null() || e != want {
            self.fail(format_args!(
                "returned {p:p} with errno {e}, not NULL with errno {want}"
            ));
        }
    }

    /// Check one block: owned, same usable size, contents intact.
    fn verify(&mut self, b: &Live) {
        if xa_owns(b.addr as *const c_void) != 1 {
            self.fail(format_args!(
                "xa_owns is not 1 for live block {:#x} ({} bytes)",
                b.addr, b.req
            ));
        }
        // SAFETY: b is live.
        let u = unsafe { xa_usable_size(b.addr as *const c_void) };
        if u != b.usable {
            self.fail(format_args!(
                "usable size of live block {:#x} ({} bytes) changed from {} to {u}",
                b.addr, b.req, b.usable
            ));
        }
        // SAFETY: b is live with b.usable bytes.
        let bad = unsafe { check_sampled(b.addr as *const u8, b.usable, b.usable, b.seed) };
        if let Some(i) = bad {
            // SAFETY: i < b.usable.
            let got = unsafe { *((b.addr + i) as *const u8) };
            self.fail(format_args!(
                "live block {:#x} ({} bytes, usable {}) was overwritten: byte {i} is {got:#04x}, \
                 expected {:#04x}",
                b.addr,
                b.req,
                b.usable,
                pattern(b.seed, i)
            ));
        }
        self.sum.bytes_verified += sampled_bytes(b.usable, b.usable) as u64;
    }

    fn verify_all(&mut self) {
        for i in 0..SLOTS {
            if let Some(b) = self.slots[i] {
                self.verify(&b);
            }
        }
    }

    fn expect_errno_kept(&self, what: &str) {
        let e = errno();
        if e != ERRNO_SENTINEL {
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
    /// taken in elsewhere. `None` for an empty slot.
    pub fn hand_off(&mut self, slot: u8) -> Option<Handoff> {
        let b = self.slots[usize::from(slot)].take()?;
        self.verify(&b);
        self.forget(&b);
        Some(Handoff { b })
    }

    /// Put a block handed off by some engine (possibly on another thread) into `slot`, after
    /// freeing the slot's block; later ops may verify, resize or free it here.
    pub fn take_in(&mut self, h: Handoff, slot: u8) {
        self.vacate(slot);
        let b = h.b;
        self.sum.bytes_verified += check_live(&b, "handed-in block");
        let end = b.addr + b.usable.max(1);
        if let Some((&a, &e)) = self.by_addr.range(..end).next_back() {
            if e > b.addr {
                self.fail(format_args!(
                    "handed-in block {:#x}..{end:#x} overlaps live block {a:#x}..{e:#x}",
                    b.addr
                ));
            }
        }
        self.by_addr.insert(b.addr, end);
        self.live_bytes += b.usable;
        self.sum.peak_live_bytes = self.sum.peak_live_bytes.max(self.live_bytes);
        self.slots[usize::from(slot)] = Some(b);
    }

    /// Verify and free every live block, check the model is empty, run `xa_check_heap` if
    /// configured, and return the counts.
    pub fn finish(mut self) -> Summary {
        self.release_all();
        if !self.by_addr.is_empty() || self.live_bytes != 0 {
            self.fail(format_args!(
                "model not empty after freeing every slot: {} blocks, {} bytes",
                self.by_addr.len(),
                self.live_bytes
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

// ---------------------------------------------------------------------------------------------
// Patterns.

/// A 64-bit mix (the splitmix64 finaliser).
pub fn mix64(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

fn seed_for(slot: u8, generation: u64) -> u64 {
    mix64((generation << 8) | u64::from(slot))
}

/// Byte `i` of the pattern with `seed`: a Weyl sequence, so shifted copies and other seeds
/// differ from it almost everywhere.
#[inline(always)]
fn pattern(seed: u64, i: usize) -> u8 {
    let x = ((i as u32) ^ (seed as u32)).wrapping_mul(0x9E37_79B1);
    ((x >> 24) as u8) ^ ((seed >> 32) as u8)
}

/// Call `f(lo, hi)` for each byte range of a `len`-byte block that holds the pattern: all of
/// it up to [`FULL_CHECK_LIMIT`], else both ends and 16 bytes around every stride boundary
/// (1, 4 or 16 pages, growing with `len`).
fn sample_ranges(len: usize, mut f: impl FnMut(usize, usize)) {
    if len <= FULL_CHECK_LIMIT {
        f(0, len);
        return;
    }
    let stride = if len <= PAGE_STRIDE_LIMIT {
        PAGE
    } else if len <= MID_STRIDE_LIMIT {
        4 * PAGE
    } else {
        16 * PAGE
    };
    f(0, EDGE);
    let mut p = stride;
    while p + 8 <= len - EDGE {
        if p - 8 >= EDGE {
            f(p - 8, p + 8);
        }
        p += stride;
    }
    f(len - EDGE, len);
}

/// Bytes of a `len`-byte block's pattern that lie below `limit`.
fn sampled_bytes(len: usize, limit: usize) -> usize {
    let mut n = 0;
    sample_ranges(len, |lo, hi| n += hi.min(limit).saturating_sub(lo));
    n
}

/// Write the pattern over the sampled ranges of a `len`-byte block.
///
/// # Safety
/// `p` is valid for writes of `len` bytes.
unsafe fn fill(p: *mut u8, len: usize, seed: u64) {
    sample_ranges(len, |lo, hi| {
        // SAFETY: lo..hi lies inside the block (caller's contract).
        let s = unsafe { core::slice::from_raw_parts_mut(p.add(lo), hi - lo) };
        for (k, b) in s.iter_mut().enumerate() {
            *b = pattern(seed, lo + k);
        }
    });
}

/// The first byte below `limit` of the sampled ranges of a `len`-byte pattern block at `p`
/// that does not match, if any.
///
/// # Safety
/// `p` is valid for reads of `min(len, limit)` bytes.
unsafe fn check_sampled(p: *const u8, len: usize, limit: usize, seed: u64) -> Option<usize> {
    let mut bad = None;
    sample_ranges(len, |lo, hi| {
        let hi = hi.min(limit);
        if bad.is_some() || lo >= hi {
            return;
        }
        // SAFETY: lo..hi lies inside the readable prefix (caller's contract).
        let s = unsafe { core::slice::from_raw_parts(p.add(lo), hi - lo) };
        bad = first_mismatch(s, |i| pattern(seed, lo + i)).map(|i| lo + i);
    });
    bad
}

/// Index of the first byte of `s` that differs from `want(i)`. Compares in chunks without an
/// early exit inside one, so the loop vectorises.
#[inline(always)]
fn first_mismatch(s: &[u8], want: impl Fn(usize) -> u8) -> Option<usize> {
    const CHUNK: usize = 256;
    for (c, chunk) in s.chunks(CHUNK).enumerate() {
        let base = c * CHUNK;
        let diff = chunk
            .iter()
            .enumerate()
            .fold(0u8, |acc, (k, &b)| acc | (b ^ want(base + k)));
        if diff != 0 {
            return chunk
                .iter()
                .enumerate()
                .position(|(k, &b)| b != want(base + k))
                .map(|k| base + k);
        }
    }
    None
}

/// The first non-zero byte among the first `len` bytes at `p` (all of them up to 4 MiB, the
/// sampled ranges beyond).
///
/// # Safety
/// `p` is valid for reads of `len` bytes.
unsafe fn check_zero(p: *const u8, len: usize) -> Option<usize> {
    let scan = |lo: usize, hi: usize| {
        // SAFETY: lo..hi lies inside the block (caller's contract).
        let s = unsafe { core::slice::from_raw_parts(p.add(lo), hi - lo) };
        first_mismatch(s, |_| 0).map(|i| lo + i)
    };
    if len <= FULL_ZERO_LIMIT {
        return scan(0, len);
    }
    let mut bad = None;
    sample_ranges(len, |lo, hi| {
        if bad.is_none() {
            bad = scan(lo, hi);
        }
    });
    bad
}

/// Check a live block outside an engine: owned, same usable size, contents intact. Returns
/// the bytes compared; panics naming `what` otherwise.
fn check_live(b: &Live, what: &str) -> u64 {
    let p = b.addr as *const c_void;
    assert!(
        xa_owns(p) == 1,
        "opseq: xa_owns is not 1 for {what} {:#x} ({} bytes)",
        b.addr,
        b.req
    );
    // SAFETY: b is a live block.
    let u = unsafe { xa_usable_size(p) };
    assert!(
        u == b.usable,
        "opseq: usable size of {what} {:#x} changed from {} to {u}",
        b.addr,
        b.usable
    );
    // SAFETY: b is live with b.usable bytes.
    if let Some(i) = unsafe { check_sampled(p as *const u8, b.usable, b.usable, b.seed) } {
        panic!(
            "opseq: {what} {:#x} ({} bytes, usable {}) was overwritten at byte {i}",
            b.addr, b.req, b.usable
        );
    }
    sampled_bytes(b.usable, b.usable) as u64
}

fn xa_malloc_fresh(size: usize) -> *mut c_void {
    os_errno_set(ERRNO_SENTINEL);
    xa_malloc(size)
}

fn os_errno_set(e: i32) {
    crate::os::set_errno(e);
}

fn errno() -> i32 {
    std::io::Error::last_os_error()
        .raw_os_error()
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decoding_is_total_and_bounded() {
        assert!(decode(&[]).is_empty());
        // One opcode byte alone decodes, with zero arguments.
        assert_eq!(decode(&[0]), vec![Op::Malloc { slot: 0, size: 0 }]);
        let long = vec![150u8; 10 * MAX_OPS];
        assert_eq!(decode(&long).len(), MAX_OPS);
    }

    #[test]
    fn sizes_reach_every_region() {
        let mut seen = [false; 6];
        let mut s = 1u64;
        for _ in 0..20_000 {
            s = mix64(s);
            let bytes = s.to_le_bytes();
            let n = Reader::new(&bytes).size();
            let region = match n {
                0 => 0,
                1..=1024 => 1,
                1025..=SLAB_LIMIT => 2,
                _ if n <= 4 << 20 => 3,
                _ if n <= MAX_RUN_BYTES => 4,
                _ => 5,
            };
            seen[region] = true;
            assert!(n <= 64 << 20);
        }
        assert_eq!(seen, [true; 6]);
    }

    #[test]
    fn sampling_covers_the_ends_and_stays_inside() {
        for len in [
            0,
            1,
            4096,
            FULL_CHECK_LIMIT,
            FULL_CHECK_LIMIT + 1,
            5 << 20,
            40 << 20,
        ] {
            let mut last = 0;
            let mut first = usize::MAX;
            sample_ranges(len, |lo, hi| {
                assert!(lo < hi || len == 0);
                assert!(lo >= last, "ranges overlap for {len}");
                first = first.min(lo);
                last = hi;
            });
            assert_eq!(last, len);
            assert!(first == 0 || len == 0);
        }
    }

    #[test]
    fn patterns_differ_between_seeds_and_shifts() {
        let (a, b) = (seed_for(1, 1), seed_for(1, 2));
        let same = (0..4096)
            .filter(|&i| pattern(a, i) == pattern(b, i))
            .count();
        assert!(same < 64, "{same}");
        let shifted = (0..4096)
            .filter(|&i| pattern(a, i) == pattern(a, i + 16))
            .count();
        assert!(shifted < 64, "{shifted}");
    }
}

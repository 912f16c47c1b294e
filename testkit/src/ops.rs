//! Operations and their decoding from bytes.
//!
//! An [`Op`] is one step of a sequence: allocate into a slot (`malloc`, `calloc`,
//! `aligned_alloc`, a burst of `malloc`s), `realloc` or free a slot, inspect a slot, ask for
//! something that must fail, `xa_trim`, `xa_check_heap`, `xa_stats`. There are [`SLOTS`] slots;
//! allocating into an occupied slot first frees the block there.
//!
//! [`decode`] turns arbitrary bytes into at most [`MAX_OPS`] ops. Every byte string is a valid
//! program: an opcode byte picks the op, the bytes after it its arguments, and missing bytes at
//! the end read as zero. Sizes come from [`Reader::size`], which covers 0, tiny sizes, every
//! class region, sizes next to every class boundary, page multiples ± a little, medium runs up
//! to a few MiB, the medium/huge border, and (rarely) huge blocks of 33–64 MiB.

use xalloc::{CLASS_SIZE, MEDIUM_LIMIT, NUM_CLASSES, PAGE, SLAB_LIMIT};

/// Number of slots an op can name (a slot is one byte).
pub const SLOTS: usize = 256;
/// [`decode`] stops after this many ops.
pub const MAX_OPS: usize = 1024;
/// [`Op::Burst`] sizes stay below this (two slab limits).
pub const BURST_SIZE_LIMIT: usize = 2 * SLAB_LIMIT;

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
                    MEDIUM_LIMIT - PAGE,
                    MEDIUM_LIMIT - 1,
                    MEDIUM_LIMIT,
                    MEDIUM_LIMIT + 1,
                    MEDIUM_LIMIT + PAGE,
                    MEDIUM_LIMIT / 2,
                    MEDIUM_LIMIT / 2 + 1,
                    MEDIUM_LIMIT / 4,
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pattern::mix64;

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
                _ if n <= MEDIUM_LIMIT => 4,
                _ => 5,
            };
            seen[region] = true;
            assert!(n <= 64 << 20);
        }
        assert_eq!(seen, [true; 6]);
    }
}

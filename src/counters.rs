//! L2: call counters for the statistics, kept only where counting costs the `malloc` and
//! `free` fast paths nothing: the `calloc`, `realloc` and aligned entry points, and the medium
//! and huge tiers (whose paths take a lock or a system call anyway). Small-block `malloc` and
//! `free` are not counted: a counter there would be an instruction or more on every call.
//!
//! The counters are sharded by thread: each thread adds to the shard its thread pointer hashes
//! to (one cache line of counters each), so threads seldom write the same line; the shards are
//! summed when the statistics are read. Adds are relaxed atomic read-modify-writes, so a count
//! is never lost, and a total read while other threads count is a snapshot.

use crate::os;
use core::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

/// What is counted.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Counter {
    /// `calloc` calls (and zeroed Rust allocations).
    Calloc,
    /// `realloc` and `reallocarray` calls.
    Realloc,
    /// Aligned allocations: `posix_memalign`, `aligned_alloc`, `memalign`, `valloc`, `pvalloc`,
    /// aligned C++ `new`, over-aligned Rust allocations.
    Aligned,
    /// Medium blocks allocated (any entry point).
    MediumAlloc,
    /// Medium blocks freed.
    MediumFree,
    /// Huge blocks allocated.
    HugeAlloc,
    /// Huge blocks freed.
    HugeFree,
}

/// Number of [`Counter`]s.
pub const COUNTERS: usize = 7;
/// Number of shards (a power of two).
const SHARDS: usize = 32;

/// One shard: a cache line of counters, indexed by `Counter as usize`.
#[repr(C, align(64))]
struct Shard([AtomicU64; 8]);

const _: () = assert!(COUNTERS <= 8 && core::mem::size_of::<Shard>() == 64);

#[allow(clippy::declare_interior_mutable_const)]
const ZERO: Shard = Shard([const { AtomicU64::new(0) }; 8]);
static TABLE: [Shard; SHARDS] = [ZERO; SHARDS];

/// The highest `huge::HUGE_BYTES` seen after a huge allocation.
static HUGE_PEAK: AtomicUsize = AtomicUsize::new(0);

/// This thread's shard: a multiplicative hash of its thread pointer (two threads may share a
/// shard, which the atomic adds make harmless).
#[inline]
fn shard() -> &'static Shard {
    let h = os::thread_pointer() as u64;
    let i =
        ((h >> 6).wrapping_mul(0x9e37_79b9_7f4a_7c15) >> (64 - SHARDS.trailing_zeros())) as usize;
    &TABLE[i % SHARDS]
}

/// Count one event.
#[inline]
pub fn add(c: Counter) {
    shard().0[c as usize].fetch_add(1, Ordering::Relaxed);
}

/// The sum over all shards of counter `c`.
pub fn total(c: Counter) -> u64 {
    TABLE
        .iter()
        .map(|s| s.0[c as usize].load(Ordering::Relaxed))
        .fold(0, u64::wrapping_add)
}

/// Record `bytes`, the huge bytes in use just after a huge allocation, for the peak.
pub fn note_huge(bytes: usize) {
    HUGE_PEAK.fetch_max(bytes, Ordering::Relaxed);
}

/// The highest huge bytes in use recorded by [`note_huge`].
pub fn huge_peak() -> usize {
    HUGE_PEAK.load(Ordering::Relaxed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_add_up_across_threads() {
        let before = total(Counter::MediumFree);
        let threads: Vec<_> = (0..4)
            .map(|_| {
                std::thread::spawn(|| {
                    for _ in 0..1000 {
                        add(Counter::MediumFree);
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        // Other tests may count medium frees meanwhile: at least ours are there.
        assert!(total(Counter::MediumFree) >= before + 4000);
    }
}

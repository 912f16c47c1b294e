//! L2: the process's secrets for free lists: the mask that encodes every stored next pointer
//! and the mark written into every free block's second word.
//!
//! Both derive from the 16 random bytes the kernel hands every program (`AT_RANDOM`, which
//! glibc also uses for its stack protector), through a fixed mixing function, so every call
//! computes the same values and no initialisation order matters. Encoding: a free block's first
//! word holds `next ^ mask`, so a stray or malicious write there decodes to an unaligned,
//! far-away value with high probability, and a forged pointer needs the mask (glibc 2.32's
//! safe-linking XORs with the storage address >> 12 for the same end). Mark: a freed block's
//! second word holds `mark ^ address` (glibc's tcache key is the same idea, without the
//! address; see `span::Block` for why the address), so freeing it again is caught by one
//! compare; a live block never holds it, since every pop clears it, unless the program wrote
//! it there.

use crate::os;
use core::sync::atomic::{AtomicU64, Ordering};

/// `a == b`, for the comparisons whose one side derives from the mark (the double-free test).
///
/// Fuzzers build every crate with comparison tracing (SanitizerCoverage's `trace-compares`,
/// which `cargo fuzz` turns on): each integer compare also hands both operands to the fuzzer,
/// which keeps them and writes one into its next inputs wherever those hold the other. Here
/// that is `mark ^ address` against the second word of a block being freed; libFuzzer frees a
/// copy of each input after running it, at an address the next copy of the same size class
/// gets again, so it learned `mark ^ address` for its own buffer, put it into an input, and
/// the free of the copy then read as a double free. Under `cfg(fuzzing)` (set by `cargo fuzz`
/// and `cargo afl`) the compare is made in assembly, which no instrumentation sees; otherwise
/// it is a plain compare the optimiser can fuse with its branch.
#[inline(always)]
pub fn same_as_secret(a: u64, b: u64) -> bool {
    #[cfg(fuzzing)]
    {
        let eq: u8;
        // SAFETY: a compare of two registers and a flag read into a third; no memory, no
        // stack.
        unsafe {
            core::arch::asm!(
                "cmp {a}, {b}",
                "sete {eq}",
                a = in(reg) a,
                b = in(reg) b,
                eq = out(reg_byte) eq,
                options(pure, nomem, nostack),
            );
        }
        eq != 0
    }
    #[cfg(not(fuzzing))]
    {
        a == b
    }
}

/// The cached pair; (0, 0) until first computed.
static MASK: AtomicU64 = AtomicU64::new(0);
static MARK: AtomicU64 = AtomicU64::new(0);

/// A 64-bit mixing function (splitmix64's finaliser).
const fn mix(mut x: u64) -> u64 {
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// `(mask, mark)`: the mask's low four bits are not all zero; the mark's are all set, so it is
/// never a 16-byte aligned pointer.
#[inline]
pub fn keys() -> (u64, u64) {
    let m = MASK.load(Ordering::Acquire);
    if m != 0 {
        return (m, MARK.load(Ordering::Relaxed));
    }
    compute()
}

#[cold]
fn compute() -> (u64, u64) {
    let [a, b] = os::startup_random();
    // The mask's low four bits are never all clear, so a link whose low byte was overwritten
    // with zero (the NUL of an off-by-one string copy) decodes to an unaligned pointer and is
    // caught; the mark is never zero nor aligned.
    let mask = mix(a ^ 0x6a09_e667_f3bc_c908) | 0x8;
    let mark = mix(b ^ 0xbb67_ae85_84ca_a73b) | 0xf;
    // Publish the mark first: a reader that sees the mask sees the mark.
    MARK.store(mark, Ordering::Relaxed);
    MASK.store(mask, Ordering::Release);
    (mask, mark)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_as_secret_is_equality() {
        let (_, mark) = keys();
        for (a, b) in [
            (mark, mark),
            (mark, mark ^ 1),
            (0, 0),
            (0, u64::MAX),
            (u64::MAX, u64::MAX),
        ] {
            assert_eq!(same_as_secret(a, b), a == b, "{a:#x} {b:#x}");
        }
    }

    #[test]
    fn keys_are_stable_and_well_formed() {
        let (mask, mark) = keys();
        assert_eq!(keys(), (mask, mark));
        assert_ne!(mask & 0xf, 0);
        assert_eq!(mark & 0xf, 0xf);
    }
}

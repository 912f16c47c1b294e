//! L2: the three floating-point functions the heap profiler needs — `ln`, `exp_m1`, `round` —
//! computed here, so that the library links neither `libm` nor the Rust standard library
//! (`core` has no `f64::ln`). Relative error a few units in the last place over the ranges the
//! profiler uses (`ln` on (0, 1], `exp_m1` on [-2^40, 0]); the unit tests compare with the
//! standard library's.
//!
//! Method: reduce the argument by a power of two (`ln`) or a multiple of ln 2 (`exp_m1`), then
//! a short series on the small remainder: `ln m = 2 atanh((m - 1) / (m + 1))` for `m` in
//! [√½, √2), Taylor for `e^r - 1` with |r| ≤ ½ ln 2.

/// ln 2 split in two so that `k * LN2_HI` is exact for |k| < 2^20 (the split of fdlibm).
const LN2_HI: f64 = f64::from_bits(0x3fe6_2e42_fee0_0000);
const LN2_LO: f64 = f64::from_bits(0x3dea_39ef_3579_3c76);
const LN2: f64 = core::f64::consts::LN_2;

/// Natural logarithm of `x`; NaN for `x < 0` or NaN, -∞ for 0, +∞ for +∞.
pub fn ln(x: f64) -> f64 {
    if x.is_nan() || x < 0.0 {
        return f64::NAN;
    }
    if x == 0.0 {
        return f64::NEG_INFINITY;
    }
    if x.is_infinite() {
        return x;
    }
    let mut bits = x.to_bits();
    let mut k: i64 = 0;
    if bits >> 52 == 0 {
        // subnormal: scale into the normal range first
        bits = (x * (1u64 << 54) as f64).to_bits();
        k = -54;
    }
    k += ((bits >> 52) & 0x7ff) as i64 - 1023;
    // m in [1, 2), then folded into [√½, √2)
    let mut m = f64::from_bits((bits & ((1u64 << 52) - 1)) | (1023u64 << 52));
    if m > core::f64::consts::SQRT_2 {
        m *= 0.5;
        k += 1;
    }
    let z = (m - 1.0) / (m + 1.0);
    let z2 = z * z;
    // atanh(z) = z (1 + z²/3 + z⁴/5 + ...), |z| ≤ 0.1716, z² ≤ 0.0295: 12 terms reach 2^-60
    let mut s = 0.0;
    let mut i = 23.0;
    while i > 1.0 {
        s = (s + 1.0 / i) * z2;
        i -= 2.0;
    }
    let lnm = 2.0 * z * (1.0 + s);
    k as f64 * LN2_HI + (k as f64 * LN2_LO + lnm)
}

/// `e^x - 1`, accurate also for `x` near 0.
pub fn exp_m1(x: f64) -> f64 {
    if x.is_nan() {
        return x;
    }
    if x < -40.0 {
        // e^x < 2^-57: below half an ulp of 1
        return -1.0;
    }
    if x > 709.0 {
        return f64::INFINITY;
    }
    if x.abs() <= 0.5 * LN2 {
        return expm1_small(x);
    }
    // x = k ln 2 + r, |r| ≤ ½ ln 2; e^x - 1 = 2^k (e^r - 1) + (2^k - 1)
    let k = round(x / LN2);
    let r = (x - k * LN2_HI) - k * LN2_LO;
    let p = expm1_small(r);
    let two_k = f64::from_bits(((k as i64 + 1023) as u64) << 52);
    two_k * p + (two_k - 1.0)
}

/// Taylor series of `e^r - 1` for |r| ≤ ½ ln 2 (r^18 / 18! < 2^-60 there).
fn expm1_small(r: f64) -> f64 {
    let mut s = 0.0;
    let mut n = 18.0;
    while n >= 1.0 {
        s = r / n * (1.0 + s);
        n -= 1.0;
    }
    s
}

/// `x` rounded to the nearest integer, halves away from zero (as `f64::round`), for
/// |x| < 2^52.
pub fn round(x: f64) -> f64 {
    let t = x.abs() + 0.5;
    let r = (t as u64) as f64;
    if x < 0.0 { -r } else { r }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rel(a: f64, b: f64) -> f64 {
        if a == b { 0.0 } else { ((a - b) / b).abs() }
    }

    /// A spread of values: powers of two and their neighbours, and a pseudo-random sample.
    fn samples(lo: f64, hi: f64) -> Vec<f64> {
        let mut v = Vec::new();
        let mut z: u64 = 0x1234_5678_9abc_def0;
        for _ in 0..200_000 {
            z = z
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let u = (z >> 11) as f64 / (1u64 << 53) as f64;
            v.push(lo + (hi - lo) * u);
        }
        v
    }

    #[test]
    fn ln_matches_std() {
        let mut worst = 0.0f64;
        let mut xs = samples(1e-300, 1.0);
        xs.extend(samples(0.0, 1e-6));
        xs.extend(samples(0.5, 2.0));
        xs.extend(samples(1.0, 1e12));
        for e in -1074..1024 {
            xs.push(2f64.powi(e));
        }
        xs.extend([
            f64::MIN_POSITIVE,
            5e-324,
            1.0 / (1u64 << 53) as f64,
            f64::MAX,
        ]);
        for x in xs.into_iter().filter(|&x| x > 0.0) {
            let (a, b) = (ln(x), x.ln());
            if b == 0.0 {
                assert!(a.abs() < 1e-15, "ln({x}) = {a}");
                continue;
            }
            worst = worst.max(rel(a, b));
        }
        assert!(worst < 1e-15, "worst relative error {worst:e}");
        assert_eq!(ln(1.0), 0.0);
        assert_eq!(ln(0.0), f64::NEG_INFINITY);
        assert!(ln(-1.0).is_nan() && ln(f64::NAN).is_nan());
        assert_eq!(ln(f64::INFINITY), f64::INFINITY);
    }

    #[test]
    fn exp_m1_matches_std() {
        let mut worst = 0.0f64;
        let mut xs = samples(-50.0, 0.0);
        xs.extend(samples(-1e-3, 1e-3));
        xs.extend(samples(-1e-12, 0.0));
        xs.extend(samples(0.0, 700.0));
        xs.extend([-0.5 * LN2, 0.5 * LN2, -LN2, -1.0, -1e-300, -2f64.powi(40)]);
        for x in xs {
            let (a, b) = (exp_m1(x), x.exp_m1());
            worst = worst.max(rel(a, b));
        }
        assert!(worst < 1e-15, "worst relative error {worst:e}");
        assert_eq!(exp_m1(0.0), 0.0);
        assert_eq!(exp_m1(-1e9), -1.0);
        assert_eq!(exp_m1(1e9), f64::INFINITY);
    }

    #[test]
    fn round_matches_std() {
        for x in [
            0.0,
            0.4999,
            0.5,
            1.5,
            2.5,
            -0.5,
            -1.5,
            -2.4,
            1e15 + 0.5,
            123456.789,
        ] {
            assert_eq!(round(x), x.round(), "round({x})");
        }
        for x in samples(-1e12, 1e12) {
            assert_eq!(round(x), x.round(), "round({x})");
        }
    }
}

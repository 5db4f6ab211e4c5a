//! The float bound: everything numeric in the crate is generic over [`Real`],
//! implemented for `f32` and `f64`.
//!
//! Beside the arithmetic of [`num_traits::Float`], `Real` carries the few
//! kernels whose best form depends on the width of the float: a branch-free
//! `exp` that the compiler vectorizes, and the default convergence tolerance.

use std::fmt::{Debug, Display};
use std::iter::Sum;

use num_traits::{Float, FromPrimitive, NumAssign, ToPrimitive};

mod sealed {
    pub trait Sealed {}
    impl Sealed for f32 {}
    impl Sealed for f64 {}
}

/// A floating-point type the crate computes in: `f32` or `f64`.
///
/// The trait is sealed: its kernels ([`Real::exp_fast`]) are written per
/// width, so it is implemented for exactly these two types.
pub trait Real:
    Float
    + FromPrimitive
    + ToPrimitive
    + NumAssign
    + Sum
    + Default
    + Debug
    + Display
    + Send
    + Sync
    + ndarray::ScalarOperand
    + sealed::Sealed
    + 'static
{
    /// Default tolerance of the refit convergence test: 1e-9 for `f64`, 1e-4 for `f32`.
    const DEFAULT_TOL: Self;

    /// `exp(x)` without branches, so that a loop over a slice vectorizes.
    ///
    /// Relative error within a few ulp of `Self::exp` down to `x = −707`
    /// (`f64`) or `x = −86` (`f32`); below that the result is flushed to 0
    /// (the true value is below 9.1e-308, resp. 4.5e-38), so that no
    /// subnormal number is ever computed: subnormal arithmetic is slow on
    /// many CPUs, and softmax pads its inputs with −inf.
    /// `exp(-inf) = 0`, `exp(+inf) = +inf`, `exp(NaN) = NaN`.
    ///
    /// It is written in fused multiply-adds: inside the crate's kernels,
    /// which run compiled for AVX2 + FMA where the CPU has them, each is one
    /// instruction; called directly from code built for the x86-64 baseline,
    /// each is a call into libm's `fma` (same result, slower).
    fn exp_fast(self) -> Self;

    /// `ln(x)` without branches, so that a loop over a slice vectorizes.
    ///
    /// Relative error within a few ulp of `Self::ln` for every positive
    /// finite `x` (subnormal ones included);
    /// `ln(0) = −inf`, `ln(+inf) = +inf`, `ln(x < 0) = ln(NaN) = NaN`.
    /// Written in fused multiply-adds, as [`Real::exp_fast`], so that it
    /// gives the same bits on every CPU.
    fn ln_fast(self) -> Self;

    /// Converts an `f64` constant, rounding to nearest.
    fn c(x: f64) -> Self;

    /// Converts to `f64` (exact for both implementors).
    fn f64(self) -> f64;
}

impl Real for f64 {
    const DEFAULT_TOL: f64 = 1e-9;

    #[inline(always)]
    fn exp_fast(self) -> f64 {
        exp_f64(self)
    }

    #[inline(always)]
    fn ln_fast(self) -> f64 {
        ln_f64(self)
    }

    #[inline(always)]
    fn c(x: f64) -> f64 {
        x
    }

    #[inline(always)]
    fn f64(self) -> f64 {
        self
    }
}

impl Real for f32 {
    const DEFAULT_TOL: f32 = 1e-4;

    #[inline(always)]
    fn exp_fast(self) -> f32 {
        exp_f32(self)
    }

    #[inline(always)]
    fn ln_fast(self) -> f32 {
        ln_f32(self)
    }

    #[inline(always)]
    fn c(x: f64) -> f32 {
        x as f32
    }

    #[inline(always)]
    fn f64(self) -> f64 {
        f64::from(self)
    }
}

/// Branch-free `exp` for `f64` in fused multiply-adds (exactly rounded, so
/// the result is the same on every CPU; see `kernels::dispatch`): Cody–Waite
/// reduction `x = n ln2 + r`,
/// |r| ≤ ln2/2, a degree-13 Taylor polynomial for `exp(r)` (truncation error
/// below 2e-16 relative) evaluated by Estrin's scheme, and the scale applied
/// as `2 · 2ⁿ⁻¹` so that it stays a normal number up to overflow, which gives
/// +inf. Arguments below −707 give 0 without passing through subnormal numbers.
#[inline(always)]
fn exp_f64(x: f64) -> f64 {
    const LOG2E: f64 = std::f64::consts::LOG2_E;
    // fdlibm's split of ln 2: LN2_HI has 32 trailing zero bits, so n * LN2_HI is exact.
    const LN2_HI: f64 = f64::from_bits(0x3FE6_2E42_FEE0_0000);
    const LN2_LO: f64 = f64::from_bits(0x3DEA_39EF_3579_3C76);
    // Adding 1.5 * 2^52 rounds to the nearest integer, which lands in the low mantissa bits.
    const MAGIC: f64 = 6_755_399_441_055_744.0;
    const MAGIC_BITS: u64 = 0x4338_0000_0000_0000;
    // Below LO the result is flushed to 0 (exp(-707) = 9.1e-308 is still
    // normal); beyond HI it is +inf. Clamping keeps n in [-1020, 1024].
    const LO: f64 = -707.0;
    const HI: f64 = 710.0;

    let xc = if x < LO { LO } else { x };
    let xc = if xc > HI { HI } else { xc };
    let k = xc.mul_add(LOG2E, MAGIC);
    let n = k - MAGIC;
    let r = (-n).mul_add(LN2_HI, xc);
    let r = (-n).mul_add(LN2_LO, r);
    // Taylor coefficients 1/j!, j = 0..=13, by Estrin's scheme: a short
    // dependency chain, which is what bounds a softmax over ten logits.
    let r2 = r * r;
    let r4 = r2 * r2;
    let r8 = r4 * r4;
    let p01 = 1.0 + r;
    let p23 = r.mul_add(1.0 / 6.0, 0.5);
    let p45 = r.mul_add(1.0 / 120.0, 1.0 / 24.0);
    let p67 = r.mul_add(1.0 / 5_040.0, 1.0 / 720.0);
    let p89 = r.mul_add(1.0 / 362_880.0, 1.0 / 40_320.0);
    let p1011 = r.mul_add(1.0 / 39_916_800.0, 1.0 / 3_628_800.0);
    let p1213 = r.mul_add(1.0 / 6_227_020_800.0, 1.0 / 479_001_600.0);
    let p03 = r2.mul_add(p23, p01);
    let p47 = r2.mul_add(p67, p45);
    let p811 = r2.mul_add(p1011, p89);
    let p07 = r4.mul_add(p47, p03);
    let p813 = r4.mul_add(p1213, p811);
    let p = r8.mul_add(p813, p07);
    // 2ⁿ = 2 · 2ⁿ⁻¹, with n − 1 in the normal exponent range for every clamped x.
    let scale = f64::from_bits(
        k.to_bits()
            .wrapping_sub(MAGIC_BITS)
            .wrapping_add(1022)
            .wrapping_shl(52),
    );
    let y = (p + p) * scale;
    if x < LO { 0.0 } else { y }
}

/// Branch-free `exp` for `f32`, as [`exp_f64`] with a degree-7 polynomial;
/// arguments below −86 give 0.
#[inline(always)]
fn exp_f32(x: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    // Cephes' split of ln 2 for single precision.
    const LN2_HI: f32 = f32::from_bits(0x3F31_8000); // 0.693359375
    const LN2_LO: f32 = -2.121_944_4e-4;
    const MAGIC: f32 = 12_582_912.0; // 1.5 * 2^23
    const MAGIC_BITS: u32 = 0x4B40_0000;
    // Clamping keeps n in [-124, 128].
    const LO: f32 = -86.0;
    const HI: f32 = 89.0;

    let xc = if x < LO { LO } else { x };
    let xc = if xc > HI { HI } else { xc };
    let k = xc.mul_add(LOG2E, MAGIC);
    let n = k - MAGIC;
    let r = (-n).mul_add(LN2_HI, xc);
    let r = (-n).mul_add(LN2_LO, r);
    let r2 = r * r;
    let r4 = r2 * r2;
    let p01 = 1.0 + r;
    let p23 = r.mul_add(1.0 / 6.0, 0.5);
    let p45 = r.mul_add(1.0 / 120.0, 1.0 / 24.0);
    let p67 = r.mul_add(1.0 / 5_040.0, 1.0 / 720.0);
    let p = r4.mul_add(r2.mul_add(p67, p45), r2.mul_add(p23, p01));
    let scale = f32::from_bits(
        k.to_bits()
            .wrapping_sub(MAGIC_BITS)
            .wrapping_add(126)
            .wrapping_shl(23),
    );
    let y = (p + p) * scale;
    if x < LO { 0.0 } else { y }
}

/// Branch-free `ln` for `f64` (fdlibm's reduction, as in musl's `log`):
/// x = 2ᵏ·m with m ∈ [√½, √2), f = m − 1 (exact), and
/// ln(1 + f) = 2 atanh(u) = 2u + 2u·Σⱼ u²ʲ/(2j + 1), u = f/(2 + f),
/// |u| ≤ 0.1716, summed for j = 1..=10 (the first term left out is below
/// 1e-18 relative). Then ln x = k·ln2_hi + (ln(1 + f) + k·ln2_lo).
#[inline(always)]
fn ln_f64(x: f64) -> f64 {
    const LN2_HI: f64 = f64::from_bits(0x3FE6_2E42_FEE0_0000);
    const LN2_LO: f64 = f64::from_bits(0x3DEA_39EF_3579_3C76);
    const TWO54: f64 = 18_014_398_509_481_984.0;
    // Subnormal inputs are scaled into the normal range first.
    let sub = x < f64::MIN_POSITIVE;
    let xs = if sub { x * TWO54 } else { x };
    let bits = xs.to_bits();
    // High word shifted so that the exponent counts from √½ (0x3fe6a09e).
    let hx = (bits >> 32).wrapping_add(0x3ff0_0000 - 0x3fe6_a09e);
    let k = ((hx >> 20) as i64 - 0x3ff) as f64 - if sub { 54.0 } else { 0.0 };
    let hm = (hx & 0x000f_ffff) + 0x3fe6_a09e;
    let m = f64::from_bits((hm << 32) | (bits & 0xffff_ffff));
    let f = m - 1.0;
    let u = f / (2.0 + f);
    let u2 = u * u;
    let mut p = 1.0 / 21.0;
    p = u2.mul_add(p, 1.0 / 19.0);
    p = u2.mul_add(p, 1.0 / 17.0);
    p = u2.mul_add(p, 1.0 / 15.0);
    p = u2.mul_add(p, 1.0 / 13.0);
    p = u2.mul_add(p, 1.0 / 11.0);
    p = u2.mul_add(p, 1.0 / 9.0);
    p = u2.mul_add(p, 1.0 / 7.0);
    p = u2.mul_add(p, 1.0 / 5.0);
    p = u2.mul_add(p, 1.0 / 3.0);
    let p = p * u2;
    let two_u = u + u;
    let log1pf = two_u.mul_add(p, two_u);
    let y = k.mul_add(LN2_HI, k.mul_add(LN2_LO, log1pf));
    if x > 0.0 && x < f64::INFINITY {
        y
    } else if x == 0.0 {
        f64::NEG_INFINITY
    } else if x == f64::INFINITY {
        x
    } else {
        f64::NAN
    }
}

/// Branch-free `ln` for `f32`, as [`ln_f64`] with the series summed for
/// j = 1..=5.
#[inline(always)]
fn ln_f32(x: f32) -> f32 {
    const LN2_HI: f32 = f32::from_bits(0x3F31_7180); // 6.9313812256e-01
    const LN2_LO: f32 = f32::from_bits(0x3717_F7D1); // 9.0580006145e-06
    const TWO25: f32 = 33_554_432.0;
    let sub = x < f32::MIN_POSITIVE;
    let xs = if sub { x * TWO25 } else { x };
    let bits = xs.to_bits();
    // 0x3f3504f3 is √½.
    let ix = bits.wrapping_add(0x3f80_0000 - 0x3f35_04f3);
    let k = ((ix >> 23) as i32 - 0x7f) as f32 - if sub { 25.0 } else { 0.0 };
    let im = (ix & 0x007f_ffff) + 0x3f35_04f3;
    let m = f32::from_bits(im);
    let f = m - 1.0;
    let u = f / (2.0 + f);
    let u2 = u * u;
    let mut p = 1.0 / 11.0;
    p = u2.mul_add(p, 1.0 / 9.0);
    p = u2.mul_add(p, 1.0 / 7.0);
    p = u2.mul_add(p, 1.0 / 5.0);
    p = u2.mul_add(p, 1.0 / 3.0);
    let p = p * u2;
    let two_u = u + u;
    let log1pf = two_u.mul_add(p, two_u);
    let y = k.mul_add(LN2_HI, k.mul_add(LN2_LO, log1pf));
    if x > 0.0 && x < f32::INFINITY {
        y
    } else if x == 0.0 {
        f32::NEG_INFINITY
    } else if x == f32::INFINITY {
        x
    } else {
        f32::NAN
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ulp_err_f64(got: f64, want: f64) -> f64 {
        if got == want {
            return 0.0;
        }
        ((got - want) / (want.abs() * f64::EPSILON)).abs()
    }

    #[test]
    fn exp_f64_matches_std_over_the_normal_range() {
        // A dense sweep of [-707, 709.78] plus the neighbourhood of 0.
        let mut worst: f64 = 0.0;
        let n = 2_000_000;
        for i in 0..=n {
            let x = -707.0 + 1416.78 * (i as f64) / (n as f64);
            worst = worst.max(ulp_err_f64(x.exp_fast(), x.exp()));
        }
        for i in -100_000..=100_000 {
            let x = i as f64 * 1e-5;
            worst = worst.max(ulp_err_f64(x.exp_fast(), x.exp()));
        }
        assert!(worst <= 4.0, "worst error {worst} ulp");
    }

    #[test]
    fn exp_f64_edges() {
        assert_eq!(0.0f64.exp_fast(), 1.0);
        assert_eq!(f64::NEG_INFINITY.exp_fast(), 0.0);
        assert_eq!((-1e4f64).exp_fast(), 0.0);
        assert_eq!(f64::INFINITY.exp_fast(), f64::INFINITY);
        assert_eq!(1e4f64.exp_fast(), f64::INFINITY);
        assert!(f64::NAN.exp_fast().is_nan());
        // Below -708 the result is flushed to 0, never subnormal.
        assert!((-707.0f64).exp_fast() > f64::MIN_POSITIVE);
        for i in 1..1000 {
            let x = -707.0 - 40.0 * (i as f64) / 1000.0;
            assert_eq!(x.exp_fast(), 0.0);
            assert!(x.exp() < 9.1e-308);
        }
        // Overflow is where f64::exp overflows.
        let top = f64::MAX.ln();
        assert!(top.exp_fast().is_finite());
        assert_eq!(709.79f64.exp_fast(), f64::INFINITY);
    }

    #[test]
    fn ln_f64_matches_std() {
        let mut worst: f64 = 0.0;
        // Mantissas densely, exponents across the whole range (subnormals too).
        for e in -1074..=1023 {
            for i in 0..200 {
                let x = 2f64.powi(e) * (1.0 + i as f64 / 200.0);
                if x == 0.0 || !x.is_finite() {
                    continue;
                }
                worst = worst.max(ulp_err_f64(x.ln_fast(), x.ln()));
            }
        }
        // Around 1, where ln is small.
        for i in -100_000..=100_000 {
            let x = 1.0 + i as f64 * 1e-6;
            worst = worst.max(ulp_err_f64(x.ln_fast(), x.ln()));
        }
        for x in [f64::MIN_POSITIVE, 5e-324, f64::MAX, 1.0, 2.0, 0.5, 12.0] {
            worst = worst.max(ulp_err_f64(x.ln_fast(), x.ln()));
        }
        assert!(worst <= 2.0, "worst error {worst} ulp");
        assert_eq!(1.0f64.ln_fast(), 0.0);
        assert_eq!(0.0f64.ln_fast(), f64::NEG_INFINITY);
        assert_eq!(f64::INFINITY.ln_fast(), f64::INFINITY);
        assert!((-1.0f64).ln_fast().is_nan());
        assert!(f64::NAN.ln_fast().is_nan());
        assert!(f64::NEG_INFINITY.ln_fast().is_nan());
    }

    #[test]
    fn ln_f32_matches_std() {
        let mut worst: f64 = 0.0;
        for e in -149..=127 {
            for i in 0..400 {
                let x = (2f64.powi(e) * (1.0 + i as f64 / 400.0)) as f32;
                if x == 0.0 || !x.is_finite() {
                    continue;
                }
                let (got, want) = (x.ln_fast(), x.ln());
                if got != want {
                    worst = worst.max(((got - want) / (want.abs() * f32::EPSILON)).abs() as f64);
                }
            }
        }
        for i in -100_000..=100_000 {
            let x = 1.0 + i as f32 * 1e-6;
            let (got, want) = (x.ln_fast(), x.ln());
            if got != want {
                worst = worst.max(((got - want) / (want.abs() * f32::EPSILON)).abs() as f64);
            }
        }
        assert!(worst <= 2.0, "worst error {worst} ulp");
        assert_eq!(0.0f32.ln_fast(), f32::NEG_INFINITY);
        assert_eq!(f32::INFINITY.ln_fast(), f32::INFINITY);
        assert!((-1.0f32).ln_fast().is_nan());
        assert!(f32::NAN.ln_fast().is_nan());
    }

    #[test]
    fn exp_f32_matches_std_over_the_normal_range() {
        let mut worst: f64 = 0.0;
        let n = 2_000_000;
        for i in 0..=n {
            let x = -86.0 + 174.7 * (i as f64) / (n as f64);
            let x = x as f32;
            let got = x.exp_fast();
            let want = x.exp();
            if got != want {
                worst = worst.max(((got - want) / (want.abs() * f32::EPSILON)).abs() as f64);
            }
        }
        assert!(worst <= 4.0, "worst error {worst} ulp");
        assert_eq!(f32::NEG_INFINITY.exp_fast(), 0.0);
        assert!((-86.0f32).exp_fast() > f32::MIN_POSITIVE);
        assert_eq!((-86.5f32).exp_fast(), 0.0);
        assert!(88.72f32.exp_fast().is_finite());
        assert_eq!(88.73f32.exp_fast(), f32::INFINITY);
        assert_eq!(f32::INFINITY.exp_fast(), f32::INFINITY);
        assert!(f32::NAN.exp_fast().is_nan());
    }
}

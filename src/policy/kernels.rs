//! Slice kernels of the softmax policies: logits, a max-shifted softmax,
//! sampling, the score update and the Hessian-vector product (DESIGN §3).
//!
//! Everything here works on contiguous row-major slices and is written so
//! that the compiler vectorizes the inner loops; the hot kernels are
//! `#[inline(always)]` so that `crate::simd` can compile them again with
//! wider vector instructions. Callers check lengths.

use rand::{Rng, RngExt};

use crate::real::Real;

/// Dot product with four independent accumulators (a fixed summation order,
/// so results are deterministic, and short dependency chains).
#[inline(always)]
pub(crate) fn dot<F: Real>(a: &[F], b: &[F]) -> F {
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    let mut acc = [F::zero(); 4];
    let mut ca = a.chunks_exact(4);
    let mut cb = b.chunks_exact(4);
    for (x, y) in (&mut ca).zip(&mut cb) {
        acc[0] += x[0] * y[0];
        acc[1] += x[1] * y[1];
        acc[2] += x[2] * y[2];
        acc[3] += x[3] * y[3];
    }
    for (x, y) in ca.remainder().iter().zip(cb.remainder()) {
        acc[0] += *x * *y;
    }
    (acc[0] + acc[1]) + (acc[2] + acc[3])
}

/// Sum with four independent accumulators.
#[inline(always)]
pub(crate) fn sum<F: Real>(a: &[F]) -> F {
    let mut acc = [F::zero(); 4];
    let mut c = a.chunks_exact(4);
    for x in &mut c {
        acc[0] += x[0];
        acc[1] += x[1];
        acc[2] += x[2];
        acc[3] += x[3];
    }
    for x in c.remainder() {
        acc[0] += *x;
    }
    (acc[0] + acc[1]) + (acc[2] + acc[3])
}

/// `out = θ x` for row-major `θ` with `out.len()` rows and `x.len()` columns.
#[inline(always)]
pub(crate) fn linear_logits<F: Real>(theta: &[F], x: &[F], out: &mut [F]) {
    let d = x.len();
    if d == 1 {
        let x0 = x[0];
        for (z, t) in out.iter_mut().zip(theta) {
            *z = *t * x0;
        }
    } else {
        for (z, row) in out.iter_mut().zip(theta.chunks_exact(d)) {
            *z = dot(row, x);
        }
    }
}

/// Normalizer of a softmax: `π(a) = exp(z_a − max) / sum`, so
/// `log π(a) = z_a − max − ln(sum)`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Normalizer<F> {
    /// The largest logit.
    pub max: F,
    /// `Σ_b exp(z_b − max)`, at least 1 when finite.
    pub sum: F,
}

impl<F: Real> Normalizer<F> {
    /// `log Σ_b exp(z_b)`.
    pub fn log_partition(&self) -> F {
        self.max + self.sum.ln()
    }
}

/// Largest element (−inf for an empty slice), with four lanes.
#[inline(always)]
pub(crate) fn max<F: Real>(a: &[F]) -> F {
    let mut acc = [F::neg_infinity(); 4];
    let mut c = a.chunks_exact(4);
    for x in &mut c {
        for (m, &v) in acc.iter_mut().zip(x) {
            *m = if v > *m { v } else { *m };
        }
    }
    for &v in c.remainder() {
        acc[0] = if v > acc[0] { v } else { acc[0] };
    }
    let m01 = if acc[1] > acc[0] { acc[1] } else { acc[0] };
    let m23 = if acc[3] > acc[2] { acc[3] } else { acc[2] };
    if m23 > m01 { m23 } else { m01 }
}

/// Whether every element is finite, in one pass with no early exit.
#[inline(always)]
pub(crate) fn all_finite<F: Real>(a: &[F]) -> bool {
    a.iter().fold(true, |ok, v| ok & v.is_finite())
}

/// `out = softmax(θ x)`: the logits and the softmax in one call.
#[inline(always)]
pub(crate) fn logits_softmax<F: Real>(
    theta: &[F],
    x: &[F],
    out: &mut [F],
) -> Option<Normalizer<F>> {
    linear_logits(theta, x, out);
    softmax_in_place(out)
}

/// Turns logits into probabilities in place, never exponentiating an
/// unshifted logit: `z_a ← exp(z_a − m) / Σ_b exp(z_b − m)` with `m = max_b z_b`.
///
/// Returns `None` (and leaves `z` holding unspecified values) when the logits
/// hold a NaN or +inf, or are all −inf, so that no NaN probability escapes.
/// A −inf logit beside finite ones gets probability 0.
#[inline(always)]
pub(crate) fn softmax_in_place<F: Real>(z: &mut [F]) -> Option<Normalizer<F>> {
    // A NaN logit is caught below: it makes the sum NaN.
    let m = max(z);
    // exp(z - m) with m the largest logit: every argument is <= 0.
    exp_shifted(z, m);
    let s = sum(z);
    // s >= 1 unless a logit was NaN or +inf, or all were -inf (then s is NaN).
    if !(s.is_finite() && m.is_finite()) {
        return None;
    }
    let inv = F::one() / s;
    for v in z.iter_mut() {
        *v *= inv;
    }
    Some(Normalizer { max: m, sum: s })
}

/// Lanes of the `exp` kernel: a tail shorter than this is padded, so that it
/// runs in vector registers too instead of as a long scalar chain.
const EXP_LANES: usize = 4;

/// `z ← exp(z − m)`, in blocks of [`EXP_LANES`].
#[inline(always)]
fn exp_shifted<F: Real>(z: &mut [F], m: F) {
    let mut blocks = z.chunks_exact_mut(EXP_LANES);
    for b in &mut blocks {
        for v in b.iter_mut() {
            *v = (*v - m).exp_fast();
        }
    }
    let tail = blocks.into_remainder();
    if !tail.is_empty() {
        // Padding with m costs exp(0); element loops, not memcpy calls.
        let mut buf = [m; EXP_LANES];
        for (b, t) in buf.iter_mut().zip(tail.iter()) {
            *b = *t;
        }
        for v in buf.iter_mut() {
            *v = (*v - m).exp_fast();
        }
        for (t, b) in tail.iter_mut().zip(buf.iter()) {
            *t = *b;
        }
    }
}

/// Draws an action from `probs` with one uniform draw (inverse CDF).
/// Never panics: with rounding leaving the total a hair below `u`, the last
/// action with positive probability is returned.
#[inline]
pub(crate) fn sample<F: Real, R: Rng + ?Sized>(probs: &[F], rng: &mut R) -> usize {
    let u = F::c(rng.random::<f64>());
    let mut cum = F::zero();
    let mut last = 0;
    for (a, &p) in probs.iter().enumerate() {
        cum += p;
        if p > F::zero() {
            last = a;
            if u < cum {
                return a;
            }
        }
    }
    last
}

/// `θ ← θ + scale · (e_a − π) ⊗ x`, the REINFORCE step for a linear softmax.
#[inline(always)]
pub(crate) fn add_scaled_score<F: Real>(
    theta: &mut [F],
    x: &[F],
    probs: &[F],
    action: usize,
    scale: F,
) {
    let d = x.len();
    if d == 1 {
        let sx = scale * x[0];
        for (t, &p) in theta.iter_mut().zip(probs) {
            *t -= sx * p;
        }
        if let Some(t) = theta.get_mut(action) {
            *t += sx;
        }
        return;
    }
    for (a, (row, &p)) in theta.chunks_exact_mut(d).zip(probs).enumerate() {
        let c = if a == action {
            scale * (F::one() - p)
        } else {
            -(scale * p)
        };
        for (t, &xj) in row.iter_mut().zip(x) {
            *t += c * xj;
        }
    }
}

/// `out = (e_a − π) ⊗ x`, the score of a linear softmax.
#[inline]
pub(crate) fn score<F: Real>(x: &[F], probs: &[F], action: usize, out: &mut [F]) {
    let d = x.len();
    for (a, (row, &p)) in out.chunks_exact_mut(d).zip(probs).enumerate() {
        let c = if a == action { F::one() - p } else { -p };
        for (o, &xj) in row.iter_mut().zip(x) {
            *o = c * xj;
        }
    }
}

/// `out = H v` with `H = −(diag π − π πᵀ) ⊗ x xᵀ`, the Hessian of `log π(a|x)`
/// for a linear softmax, in O(K·d): `u = V x`, `g = π ⊙ u − π (πᵀ u)`,
/// `out = −g ⊗ x`. `u` is scratch of length K.
#[inline]
pub(crate) fn hessian_vector<F: Real>(x: &[F], probs: &[F], v: &[F], u: &mut [F], out: &mut [F]) {
    linear_logits(v, x, u);
    let pu = dot(probs, u);
    let d = x.len();
    for ((row, &p), &ua) in out.chunks_exact_mut(d).zip(probs).zip(u.iter()) {
        let g = p * (ua - pu);
        for (o, &xj) in row.iter_mut().zip(x) {
            *o = -(g * xj);
        }
    }
}

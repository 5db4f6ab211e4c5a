//! The smallest eigenvalue of −∇²J by Lanczos, for the curvature check of
//! the trust-region solver.

use rand::SeedableRng;
use rand_distr::{Distribution, StandardNormal};

use crate::error::Result;
use crate::objective::Objective;
use crate::real::Real;

/// What [`min_eigen`] found.
pub(crate) struct Extreme<F> {
    /// The smallest Ritz value of −∇²J.
    pub value: F,
    /// Its Ritz vector (unit 2-norm).
    pub vector: Vec<F>,
    /// A bound on the spectral radius of the Lanczos matrix (the scale of
    /// the curvature).
    pub scale: F,
}

/// `steps` steps of Lanczos with full reorthogonalization on the products
/// of [`Objective::neg_hess_vec`] at the objective's remembered θ, from a
/// fixed pseudo-random start (the same for every call: deterministic).
/// Each step is one pass, added to `passes`. `None` for dimension 0.
pub(crate) fn min_eigen<F: Real, O: Objective<F>>(
    obj: &mut O,
    steps: usize,
    passes: &mut usize,
) -> Result<Option<Extreme<F>>> {
    let n = obj.dim();
    let m = steps.min(n);
    if m == 0 {
        return Ok(None);
    }
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0x1a2c_305e);
    let mut q: Vec<F> = (0..n)
        .map(|_| {
            let z: f64 = StandardNormal.sample(&mut rng);
            F::c(z)
        })
        .collect();
    let nq = norm2(&q);
    q.iter_mut().for_each(|v| *v /= nq);
    let mut basis: Vec<Vec<F>> = Vec::with_capacity(m);
    let (mut alpha, mut beta) = (Vec::with_capacity(m), Vec::with_capacity(m));
    let mut w = vec![F::zero(); n];
    for j in 0..m {
        obj.neg_hess_vec(&q, &mut w)?;
        *passes += 1;
        let a = dot(&q, &w);
        alpha.push(a);
        basis.push(q.clone());
        // w − a q − β q_{j−1}, then reorthogonalized twice against the basis.
        for _ in 0..2 {
            for b in &basis {
                let c = dot(b, &w);
                for (wi, bi) in w.iter_mut().zip(b) {
                    *wi -= c * *bi;
                }
            }
        }
        let b = norm2(&w);
        let size = alpha.iter().fold(F::zero(), |s, v| s.max(v.abs()));
        if j + 1 == m || b.is_nan() || b <= F::epsilon() * F::c(64.0) * (F::one() + size) {
            break;
        }
        beta.push(b);
        for (qi, wi) in q.iter_mut().zip(&w) {
            *qi = *wi / b;
        }
    }
    let k = alpha.len();
    beta.truncate(k - 1);
    // Gershgorin bounds of the tridiagonal matrix.
    let mut lo = F::infinity();
    let mut hi = F::neg_infinity();
    for i in 0..k {
        let r = if i > 0 { beta[i - 1] } else { F::zero() }
            + if i + 1 < k { beta[i] } else { F::zero() };
        lo = lo.min(alpha[i] - r);
        hi = hi.max(alpha[i] + r);
    }
    let scale = lo.abs().max(hi.abs());
    // Bisection on the Sturm count: the number of eigenvalues below x.
    let below = |x: F| -> usize {
        let mut count = 0;
        let mut d = F::one();
        for i in 0..k {
            let b2 = if i > 0 {
                beta[i - 1] * beta[i - 1]
            } else {
                F::zero()
            };
            d = alpha[i] - x - if i > 0 { b2 / d } else { F::zero() };
            if d == F::zero() {
                d = F::epsilon() * (F::one() + scale);
            }
            if d < F::zero() {
                count += 1;
            }
        }
        count
    };
    let (mut a, mut b) = (lo, hi);
    for _ in 0..200 {
        let mid = F::c(0.5) * (a + b);
        if mid <= a || mid >= b {
            break;
        }
        if below(mid) >= 1 { b = mid } else { a = mid }
    }
    let value = F::c(0.5) * (a + b);
    // Ritz vector: inverse iteration on T − σI with σ just below the
    // eigenvalue (positive definite, so the tridiagonal solve is stable).
    let sigma = value - F::epsilon().sqrt() * (F::one() + scale);
    let mut y = vec![F::one(); k];
    for _ in 0..4 {
        solve_tridiagonal(&alpha, &beta, sigma, &mut y);
        let ny = norm2(&y);
        if !(ny.is_finite() && ny > F::zero()) {
            y = vec![F::one(); k];
            break;
        }
        y.iter_mut().for_each(|v| *v /= ny);
    }
    let mut vector = vec![F::zero(); n];
    for (b, &yi) in basis.iter().zip(&y) {
        for (v, bi) in vector.iter_mut().zip(b) {
            *v += yi * *bi;
        }
    }
    let nv = norm2(&vector);
    if nv > F::zero() {
        vector.iter_mut().for_each(|v| *v /= nv);
    }
    Ok(Some(Extreme {
        value,
        vector,
        scale,
    }))
}

/// Solves (T − σI) y = rhs in place (Thomas algorithm), T symmetric
/// tridiagonal with diagonal `alpha` and off-diagonal `beta`.
fn solve_tridiagonal<F: Real>(alpha: &[F], beta: &[F], sigma: F, y: &mut [F]) {
    let k = alpha.len();
    let mut c = vec![F::zero(); k];
    let mut d = alpha[0] - sigma;
    if k > 1 {
        c[0] = beta[0] / d;
    }
    y[0] /= d;
    for i in 1..k {
        d = alpha[i] - sigma - beta[i - 1] * c[i - 1];
        if i + 1 < k {
            c[i] = beta[i] / d;
        }
        y[i] = (y[i] - beta[i - 1] * y[i - 1]) / d;
    }
    for i in (0..k.saturating_sub(1)).rev() {
        let next = y[i + 1];
        y[i] -= c[i] * next;
    }
}

pub(crate) fn dot<F: Real>(a: &[F], b: &[F]) -> F {
    a.iter().zip(b).map(|(x, y)| *x * *y).sum()
}

pub(crate) fn norm2<F: Real>(a: &[F]) -> F {
    dot(a, a).sqrt()
}

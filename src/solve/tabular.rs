//! Newton on the log-likelihood of a context-free softmax in O(K) per step
//! (docs/ARCHITECTURE.md, "Solvers").
//!
//! With one (compressed) row of weights W_a, their total S = Σ_a W_a ≥ 0
//! and λ > 0,
//!
//! J(θ) = Σ_a W_a log π_a(θ) − (λ/2)‖θ‖²,  π = softmax(θ),
//! ∇J = W − S π − λθ,  −∇²J = S (diag π − π πᵀ) + λI = D − S π πᵀ,
//!
//! with D = diag(S π_a + λ) positive. Sherman–Morrison solves the Newton
//! system in O(K): with u = D⁻¹∇J and v = D⁻¹π,
//!
//! δ = u + v · S πᵀu / (1 − S πᵀv),  1 − S πᵀv = Σ_a π_a λ / (S π_a + λ) > 0,
//!
//! the denominator written in the second form so that nothing cancels when
//! S ≫ λ. Steps are Newton's with the Armijo backtracking of the other
//! solvers; −∇²J is positive definite, so the optimum is the unique
//! maximum and its curvature needs no check.

use super::{Options, Report, StopReason, accept_step, norm_inf, report, stop_reason};
use crate::error::{Error, Result};
use crate::real::Real;

/// Halvings of a Newton step before the line search gives up.
const MAX_HALVINGS: usize = 60;

/// Scratch of [`solve`]: π, ∇J, the step, and a trial point with its π and
/// gradient, K each; and a memo of π and its normalizer at the θ [`solve`]
/// returned last. Both are functions of θ alone, computed by the same
/// kernel, so reusing them gives the bits a new computation would: a
/// refit after new points starts without an exponential, and a learner
/// read from a checkpoint (which does not save the memo) continues bit for
/// bit.
#[derive(Debug, Clone, Default)]
pub(crate) struct Scratch<F> {
    buf: Vec<F>,
    /// θ where `buf[..k]` holds π and `norm` its (max θ, ln Σ e^(θ − max)),
    /// if `memo`.
    at: Vec<F>,
    norm: (F, F),
    memo: bool,
}

/// Whether two θ are the same bits (the same value and sign of zero).
impl<F: Real> Scratch<F> {
    /// π at `theta` if the last solve ended there (the memo), else `None`.
    pub(crate) fn probabilities_at(&self, theta: &[F]) -> Option<&[F]> {
        let k = theta.len();
        (self.memo && self.buf.len() >= k && same(&self.at, theta)).then(|| &self.buf[..k])
    }
}

fn same<F: Real>(a: &[F], b: &[F]) -> bool {
    a.len() == b.len()
        && a.iter()
            .zip(b)
            .all(|(x, y)| x == y && x.is_sign_negative() == y.is_sign_negative())
}

/// Maximizes J from `theta` (overwritten with the result), to
/// ‖∇J‖∞ ≤ `threshold` or `options.max_iter` Newton steps. Every
/// evaluation of J and ∇J is counted as a pass.
///
/// # Errors
/// [`Error::NonFiniteLogits`] if J or ∇J is not finite at `theta`;
/// allocation failures.
pub(crate) fn solve<F: Real>(
    w: &[F],
    s: F,
    lambda: F,
    theta: &mut [F],
    threshold: F,
    options: &Options<F>,
    scratch: &mut Scratch<F>,
) -> Result<Report<F>> {
    let k = theta.len();
    let need = 6 * k;
    if scratch.buf.len() != need || scratch.at.len() != k {
        scratch.memo = false;
        crate::limits::try_reserve_to(&mut scratch.buf, need, "refit scratch")?;
        scratch.buf.resize(need, F::zero());
        crate::limits::try_reserve_to(&mut scratch.at, k, "refit scratch")?;
        scratch.at.resize(k, F::zero());
    }
    let w = &w[..k];
    let (p, rest) = scratch.buf.split_at_mut(k);
    let (g, rest) = rest.split_at_mut(k);
    let (step, rest) = rest.split_at_mut(k);
    let (trial, rest) = rest.split_at_mut(k);
    let (tp, tg) = rest.split_at_mut(k);
    if !(scratch.memo && same(&scratch.at, theta)) {
        scratch.memo = false;
        scratch.norm = crate::kernels::tabular_softmax(theta, p).ok_or(Error::NonFiniteLogits)?;
        scratch.at.copy_from_slice(theta);
        scratch.memo = true;
    }
    let (m, ln_z) = scratch.norm;
    let mut value = crate::kernels::tabular_loglik(w, s, lambda, theta, p, m, ln_z, g)
        .ok_or(Error::NonFiniteLogits)?;
    let mut passes = 1;
    let mut iterations = 0;
    loop {
        let gn = norm_inf(g);
        if let Some(stop) = stop_reason(gn, threshold, iterations, options.max_iter) {
            return Ok(report(
                iterations, passes, gn, threshold, value, false, stop,
            ));
        }
        // The Newton step by Sherman–Morrison (module docs); `trial` is
        // free until the line search and holds D⁻¹ meanwhile.
        let expected = crate::kernels::tabular_newton_step(g, p, s, lambda, step, trial);
        iterations += 1;
        let mut t = F::one();
        let mut accepted = false;
        for _ in 0..MAX_HALVINGS {
            for ((x, &th), &st) in trial.iter_mut().zip(theta.iter()).zip(step.iter()) {
                *x = th + t * st;
            }
            passes += 1;
            let norm = crate::kernels::tabular_softmax(trial, tp);
            let vt = norm
                .and_then(|(m, ln_z)| {
                    crate::kernels::tabular_loglik(w, s, lambda, trial, tp, m, ln_z, tg)
                })
                .unwrap_or(F::neg_infinity());
            if let (Some(norm), true) =
                (norm, accept_step(value, vt, t * expected, gn, norm_inf(tg)))
            {
                theta.copy_from_slice(trial);
                p.copy_from_slice(tp);
                g.copy_from_slice(tg);
                scratch.at.copy_from_slice(trial);
                scratch.norm = norm;
                value = vt;
                accepted = true;
                break;
            }
            t *= F::c(0.5);
        }
        if !accepted {
            return Ok(report(
                iterations,
                passes,
                gn,
                threshold,
                value,
                false,
                StopReason::LineSearchFailed,
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{RngExt, SeedableRng};

    /// −∇²J formed densely and solved by Gaussian elimination: the
    /// Sherman–Morrison step against a direct solve, from S ≪ λ to S ≫ λ.
    #[test]
    #[allow(clippy::needless_range_loop)] // index loops read as the elimination does
    fn newton_step_matches_a_dense_solve() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
        for &(s, lambda) in &[(0.5, 2.0), (40.0, 1.0), (1e6, 1e-3), (3e8, 1.0)] {
            for k in [1usize, 2, 5, 10, 33] {
                let theta: Vec<f64> = (0..k).map(|_| rng.random_range(-4.0..4.0)).collect();
                let g: Vec<f64> = (0..k).map(|_| rng.random_range(-1.0..1.0)).collect();
                let mut p = vec![0.0; k];
                crate::kernels::tabular_softmax(&theta, &mut p).expect("finite");
                let (mut step, mut inv) = (vec![0.0; k], vec![0.0; k]);
                let expected =
                    crate::kernels::tabular_newton_step(&g, &p, s, lambda, &mut step, &mut inv);
                // Dense: H = S (diag p − p pᵀ) + λ I, solve H δ = g.
                let mut a: Vec<Vec<f64>> = (0..k)
                    .map(|i| {
                        let mut row: Vec<f64> = (0..k).map(|j| -s * p[i] * p[j]).collect();
                        row[i] += s * p[i] + lambda;
                        row.push(g[i]);
                        row
                    })
                    .collect();
                for c in 0..k {
                    let piv = (c..k)
                        .max_by(|&x, &y| a[x][c].abs().total_cmp(&a[y][c].abs()))
                        .expect("rows");
                    a.swap(c, piv);
                    for r in c + 1..k {
                        let f = a[r][c] / a[c][c];
                        for j in c..=k {
                            a[r][j] -= f * a[c][j];
                        }
                    }
                }
                let mut x = vec![0.0; k];
                for r in (0..k).rev() {
                    let t: f64 = (r + 1..k).map(|j| a[r][j] * x[j]).sum();
                    x[r] = (a[r][k] - t) / a[r][r];
                }
                // The condition number grows with S/λ: compare relative to
                // it (H's eigenvalues lie in [λ, S + λ]).
                let cond = (s + lambda) / lambda;
                let scale = x.iter().fold(0.0f64, |m, v| m.max(v.abs()));
                for (a, b) in step.iter().zip(&x) {
                    assert!(
                        (a - b).abs() <= 1e-13 * cond * scale.max(1e-300),
                        "S {s} λ {lambda} K {k}: {a} vs {b}"
                    );
                }
                let gd: f64 = g.iter().zip(&x).map(|(a, b)| a * b).sum();
                assert!((expected - gd).abs() <= 1e-12 * cond * gd.abs().max(1e-300));
                assert!(expected > 0.0, "an ascent direction");
            }
        }
    }

    /// The optimum satisfies W = S π + λ θ, and a second solve from it
    /// takes no step.
    #[test]
    fn solve_reaches_the_stationary_point() {
        let w = [3.0, 0.0, 1.5, 10.0, 0.25];
        let s: f64 = w.iter().sum();
        let lambda = 0.7;
        let mut theta = [5.0, -3.0, 0.0, 1.0, 2.0];
        let options = Options::default();
        let mut scratch = Scratch::default();
        let threshold = 1e-13 * (1.0 + s);
        let rep = solve(&w, s, lambda, &mut theta, threshold, &options, &mut scratch).expect("ok");
        assert_eq!(rep.stop, StopReason::Converged, "{rep:?}");
        let m = theta.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        let z: f64 = theta.iter().map(|t| (t - m).exp()).sum();
        for a in 0..w.len() {
            let g = w[a] - s * (theta[a] - m).exp() / z - lambda * theta[a];
            assert!(g.abs() <= 1e-12, "{a}: {g}");
        }
        let before = theta;
        let again =
            solve(&w, s, lambda, &mut theta, threshold, &options, &mut scratch).expect("ok");
        assert_eq!((again.iterations, again.passes), (0, 1));
        assert_eq!(before, theta);
        // The memo gives the bits of a fresh evaluation.
        let mut fresh = Scratch::default();
        let rep2 = solve(&w, s, lambda, &mut theta, threshold, &options, &mut fresh).expect("ok");
        assert_eq!(again, rep2);
        // Overflowing logits are an error, not a panic.
        let mut bad = [f64::INFINITY, 0.0, 0.0, 0.0, 0.0];
        assert!(solve(&w, s, lambda, &mut bad, threshold, &options, &mut fresh).is_err());
    }
}

//! The warm-started solver of the refit learner: lagged Newton.
//!
//! Between two refits the history grows by a point or a few, and θ*_{t−1}
//! is optimal for all but those. The solver keeps, from the previous refit,
//! the gradient and value at θ*_{t−1} and a dense negated Hessian; a new
//! point (x, a, w) adds its exact gradient w (e_a − π) ⊗ x, value
//! w log π(a|x) and Hessian w S(π) ⊗ x xᵀ at θ*_{t−1}, in O(K·d + (K·d)²),
//! with no pass over the history. Then Newton steps with that Hessian
//! (re-factored, not re-formed) are taken, each followed by one pass over
//! the data that both certifies convergence and supplies the next gradient.
//! The kept Hessian lags behind θ (points enter it at the θ of their
//! arrival), so a step contracts the gradient linearly rather than
//! quadratically. When a step contracts it by less than half, the Hessian
//! is formed afresh at that point and the lagged steps go on with it; when
//! that happens a second time in one refit, or a step does not increase J,
//! the solver falls back to full Newton with a freshly formed Hessian and a
//! line search, whose Hessian it then keeps. Convergence is certified by a
//! full pass, exactly as for a cold solve.

use super::newton::{Workspace, newton_with};
use super::{
    DENSE_MAX_DIM, Method, Options, Report, accept_step, newton_cg, norm_inf, stop_reason,
};
use crate::error::Result;
use crate::objective::{HistoryObjective, Objective, Terms};
use crate::real::Real;

/// State carried from one refit to the next.
#[derive(Debug, Clone, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub(crate) struct Warm<F> {
    n: usize,
    ws: Workspace<F>,
    /// Whether `ws.h` holds a (lagged) negated Hessian for all current data.
    h_valid: bool,
    /// Whether `ws.chol` is the factor of the current `ws.h`.
    chol_valid: bool,
    /// ∇J and J at the current θ, when `have_grad`.
    grad: Vec<F>,
    value: F,
    have_grad: bool,
    /// Secant pairs of the current refit, not yet folded into H.
    pairs: Pairs<F>,
    scratch: Scratch<F>,
    /// Times the lagged Hessian was replaced by a freshly formed one.
    pub refreshes: usize,
}

/// Buffers of [`Warm::solve`], kept from one refit to the next.
#[derive(Debug, Clone, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
struct Scratch<F> {
    /// The step s, then the final gradient of a full Newton.
    s: Vec<F>,
    y: Vec<F>,
    hs: Vec<F>,
    trial: Vec<F>,
    trial_grad: Vec<F>,
}

impl<F: Real> Warm<F> {
    /// A solver for objectives with `n` parameters.
    pub(crate) fn new(n: usize) -> Result<Self> {
        let filled = || crate::limits::try_filled(n, F::zero(), "number of parameters");
        Ok(Self {
            n,
            // Dense n² matrices are allocated when first used: a
            // Hessian-free solve never needs them.
            ws: Workspace::default(),
            h_valid: false,
            chol_valid: false,
            grad: filled()?,
            value: F::zero(),
            have_grad: false,
            pairs: Pairs::default(),
            scratch: Scratch {
                s: filled()?,
                y: filled()?,
                hs: filled()?,
                trial: filled()?,
                trial_grad: filled()?,
            },
            refreshes: 0,
        })
    }

    /// Where a new interaction's own terms at the current θ go: the kept
    /// value and gradient, and the lagged Hessian, for those that are kept.
    /// Call [`Warm::absorbed`] once they were added.
    pub(crate) fn terms(&mut self) -> Terms<'_, F> {
        Terms {
            value: self.have_grad.then_some(&mut self.value),
            grad: self.have_grad.then_some(&mut self.grad[..]),
            neg_hessian: self.h_valid.then_some(&mut self.ws.h[..]),
        }
    }

    /// A new interaction's terms were added: the Hessian's factor is stale.
    pub(crate) fn absorbed(&mut self) {
        if self.h_valid {
            self.chol_valid = false;
        }
    }

    /// Checks the buffer lengths against the objective's dimension.
    pub(crate) fn validate(&self, n: usize) -> Result<()> {
        use crate::error::ensure;
        let sc = &self.scratch;
        let nn = n.checked_mul(n);
        ensure(
            self.n == n
                && (self.ws.h.is_empty() || Some(self.ws.h.len()) == nn)
                && (self.ws.chol.is_empty() || Some(self.ws.chol.len()) == nn)
                && (!self.h_valid || Some(self.ws.h.len()) == nn)
                && self.grad.len() == n
                && [&sc.s, &sc.y, &sc.hs, &sc.trial, &sc.trial_grad]
                    .iter()
                    .all(|v| v.len() == n)
                && self
                    .pairs
                    .s
                    .iter()
                    .chain(&self.pairs.y)
                    .all(|v| v.len() == n)
                && self.pairs.s.len() == self.pairs.rho.len()
                && self.pairs.y.len() == self.pairs.rho.len(),
            "refit solver state lengths",
        )?;
        ensure(
            self.value.is_finite() && self.grad.iter().all(|v| v.is_finite()),
            "refit solver state values",
        )
    }

    /// Makes `self` a copy of `other`, reusing its buffers (no allocation
    /// once they are large enough): what a refit saves before it solves,
    /// to put back if the refit fails.
    pub(crate) fn copy_from(&mut self, other: &Self) {
        self.n = other.n;
        self.ws.h.clone_from(&other.ws.h);
        self.ws.chol.clone_from(&other.ws.chol);
        self.ws.valid = other.ws.valid;
        self.h_valid = other.h_valid;
        self.chol_valid = other.chol_valid;
        self.grad.clone_from(&other.grad);
        self.value = other.value;
        self.have_grad = other.have_grad;
        self.pairs.s.clone_from(&other.pairs.s);
        self.pairs.y.clone_from(&other.pairs.y);
        self.pairs.rho.clone_from(&other.pairs.rho);
        self.pairs.alpha.clone_from(&other.pairs.alpha);
        let (a, b) = (&mut self.scratch, &other.scratch);
        a.s.clone_from(&b.s);
        a.y.clone_from(&b.y);
        a.hs.clone_from(&b.hs);
        a.trial.clone_from(&b.trial);
        a.trial_grad.clone_from(&b.trial_grad);
        self.refreshes = other.refreshes;
    }

    /// Drops everything carried over (after θ was changed from outside).
    pub(crate) fn reset(&mut self) {
        self.pairs.clear();
        self.have_grad = false;
        self.h_valid = false;
        self.chol_valid = false;
    }

    /// Solves from `theta` (overwritten with the result).
    pub(crate) fn solve<O: HistoryObjective<F>>(
        &mut self,
        obj: &mut O,
        theta: &mut [F],
        options: &Options<F>,
    ) -> Result<Report<F>> {
        options.check()?;
        let n = self.n;
        crate::policy::check_len("theta", theta.len(), n)?;
        crate::policy::check_len("objective dimension", obj.dim(), n)?;
        let dense = match options.method {
            Method::Newton => true,
            Method::NewtonCg | Method::TrustRegion => false,
            Method::Auto => n <= DENSE_MAX_DIM,
        };
        if !dense {
            return self.hessian_free(obj, theta, options);
        }
        let nn = crate::limits::newton_dim(n)?;
        for m in [&mut self.ws.h, &mut self.ws.chol] {
            crate::limits::try_reserve_to(m, nn, "dense Hessian")?;
        }
        // With few rows, forming the exact Hessian costs less than the extra
        // passes a lagged one needs: it is formed afresh before every step.
        let exact = obj.rows() <= n;
        let threshold = options.tol * obj.gradient_scale();
        let mut passes = 0;
        if !self.have_grad {
            self.value = obj.value_grad_only(theta, &mut self.grad)?;
            self.have_grad = true;
            passes += 1;
        }
        let sc = &mut self.scratch;
        let mut iterations = 0;
        let mut reformed = false;
        loop {
            let gn = norm_inf(&self.grad);
            if let Some(stop) = stop_reason(gn, threshold, iterations, options.max_iter) {
                self.fold_pairs();
                if exact {
                    // Formed afresh before every step: nothing to keep up to date.
                    self.h_valid = false;
                }
                return Ok(Report {
                    iterations,
                    passes,
                    grad_norm: gn,
                    threshold,
                    value: self.value,
                    stop,
                    negative_curvature: false,
                    min_curvature: None,
                    saddle: false,
                });
            }
            if exact {
                // At the objective's remembered θ, which is `theta`: the
                // last evaluation was at `theta` (or at a step accepted into it).
                self.ws.h.resize(n * n, F::zero());
                obj.neg_hessian(&mut self.ws.h)?;
                self.h_valid = true;
                self.chol_valid = false;
            }
            if !self.h_valid {
                break;
            }
            if !self.chol_valid {
                self.ws.chol.clone_from(&self.ws.h);
                self.chol_valid = crate::kernels::factor(&mut self.ws.chol, n);
                if !self.chol_valid {
                    break;
                }
            }
            sc.s.copy_from_slice(&self.grad);
            self.pairs.apply_inverse(&self.ws.chol, n, &mut sc.s);
            let expected: F = sc.s.iter().zip(&self.grad).map(|(d, g)| *d * *g).sum();
            for ((x, &t), &d) in sc.trial.iter_mut().zip(theta.iter()).zip(&sc.s) {
                *x = t + d;
            }
            iterations += 1;
            passes += 1;
            let vt = match obj.value_grad_only(&sc.trial, &mut sc.trial_grad) {
                Ok(v) => v,
                Err(crate::Error::NonFiniteLogits) => F::neg_infinity(),
                Err(e) => return Err(e),
            };
            let gt = norm_inf(&sc.trial_grad);
            if !accept_step(self.value, vt, expected, gn, gt) {
                break;
            }
            if exact {
                theta.copy_from_slice(&sc.trial);
                std::mem::swap(&mut self.grad, &mut sc.trial_grad);
                self.value = vt;
                continue;
            }
            // Secant correction of the lagged Hessian (BFGS): with s = δ and
            // y = ∇J(θ) − ∇J(θ + δ) (≈ −∇²J s), make H s = y.
            for (yi, (&g0, &g1)) in sc.y.iter_mut().zip(self.grad.iter().zip(&sc.trial_grad)) {
                *yi = g0 - g1;
            }
            // Kept as a pair (applied by the two-loop recursion on top of
            // the factor), folded into H when the refit ends: one
            // factorization per refit.
            self.pairs.push(&sc.s, &sc.y);
            theta.copy_from_slice(&sc.trial);
            std::mem::swap(&mut self.grad, &mut sc.trial_grad);
            self.value = vt;
            if gt > F::c(0.5) * gn && gt > threshold {
                // The lagged Hessian no longer contracts fast: form it
                // afresh at θ (the objective's remembered θ, the step just
                // accepted) and go on with it; if that happens twice in a
                // refit, full Newton with line search takes over.
                if reformed {
                    break;
                }
                obj.neg_hessian(&mut self.ws.h)?;
                self.pairs.clear();
                self.chol_valid = false;
                self.refreshes += 1;
                reformed = true;
            }
        }
        self.pairs.clear();
        self.refreshes += 1;
        self.full_newton(obj, theta, options, iterations, passes)
    }

    /// Applies the secant pairs of this refit to H (BFGS, in order) and
    /// drops them; H has then changed, so its factor is stale.
    fn fold_pairs(&mut self) {
        if self.pairs.is_empty() {
            return;
        }
        let n = self.n;
        let hs = &mut self.scratch.hs;
        for (s, y) in self.pairs.iter() {
            bfgs_update(&mut self.ws.h, n, s, y, hs);
        }
        self.pairs.clear();
        self.chol_valid = false;
    }

    /// Newton-CG from `theta`, for dimensions too large for dense Hessians.
    fn hessian_free<O: Objective<F>>(
        &mut self,
        obj: &mut O,
        theta: &mut [F],
        options: &Options<F>,
    ) -> Result<Report<F>> {
        let report = newton_cg(obj, theta, options)?;
        // Newton-CG leaves the objective's θ at its result: one more pass
        // would give the gradient there; the next refit takes it instead.
        self.have_grad = false;
        self.h_valid = false;
        self.chol_valid = false;
        self.value = report.value;
        Ok(report)
    }

    /// Newton with freshly formed Hessians from `theta`, keeping the last
    /// Hessian for the lagged steps of later refits.
    fn full_newton<O: Objective<F>>(
        &mut self,
        obj: &mut O,
        theta: &mut [F],
        options: &Options<F>,
        iterations: usize,
        passes: usize,
    ) -> Result<Report<F>> {
        let rest = Options {
            max_iter: options.max_iter.saturating_sub(iterations).max(1),
            ..*options
        };
        let report = newton_with(obj, theta, &rest, &mut self.ws, &mut self.grad)?;
        self.value = report.value;
        self.have_grad = true;
        self.h_valid = self.ws.valid;
        self.chol_valid = self.ws.valid;
        Ok(Report {
            iterations: iterations + report.iterations,
            passes: passes + report.passes,
            ..report
        })
    }
}

/// BFGS update of a symmetric positive definite matrix stored as the lower
/// triangle of `h` (row-major n×n): H ← H − (Hs)(Hs)ᵀ/(sᵀHs) + y yᵀ/(yᵀs),
/// skipped unless yᵀs > 0 (which keeps H positive definite).
fn bfgs_update<F: Real>(h: &mut [F], n: usize, s: &[F], y: &[F], hs: &mut [F]) {
    // H s from the lower triangle, row by row: row i gives (H s)_i its
    // entries j <= i and, by symmetry, (H s)_j its entries j < i.
    hs.iter_mut().for_each(|v| *v = F::zero());
    for (i, row) in h.chunks_exact(n).enumerate().take(n) {
        let si = s[i];
        let (lower, diag) = (&row[..i], row[i]);
        let mut acc = diag * si;
        for ((hj, &l), &sj) in hs[..i].iter_mut().zip(lower).zip(&s[..i]) {
            acc += l * sj;
            *hj += l * si;
        }
        hs[i] += acc;
    }
    let shs: F = s.iter().zip(hs.iter()).map(|(a, b)| *a * *b).sum();
    let ys: F = y.iter().zip(s).map(|(a, b)| *a * *b).sum();
    if !(shs > F::zero() && ys > F::c(1e-12) * shs) {
        return;
    }
    for (i, row) in h.chunks_exact_mut(n).enumerate().take(n) {
        let (a, b) = (hs[i] / shs, y[i] / ys);
        for ((v, &yj), &hj) in row[..=i].iter_mut().zip(y).zip(hs.iter()) {
            *v += yj * b - hj * a;
        }
    }
}

/// BFGS secant pairs (s, y, 1/yᵀs) applied on top of a factored H₀ by the
/// two-loop recursion: H⁻¹ = (I − ρ s yᵀ) H₀⁻¹ (I − ρ y sᵀ) + ρ s sᵀ, nested.
#[derive(Debug, Clone, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
struct Pairs<F> {
    s: Vec<Vec<F>>,
    y: Vec<Vec<F>>,
    rho: Vec<F>,
    alpha: Vec<F>,
}

impl<F: Real> Pairs<F> {
    fn is_empty(&self) -> bool {
        self.rho.is_empty()
    }

    fn clear(&mut self) {
        self.s.clear();
        self.y.clear();
        self.rho.clear();
    }

    fn iter(&self) -> impl Iterator<Item = (&[F], &[F])> {
        self.s.iter().zip(&self.y).map(|(s, y)| (&s[..], &y[..]))
    }

    /// Keeps (s, y) if yᵀs > 0 (the curvature condition, which keeps the
    /// updated matrix positive definite).
    fn push(&mut self, s: &[F], y: &[F]) {
        let ys: F = y.iter().zip(s).map(|(a, b)| *a * *b).sum();
        let ss: F = s.iter().map(|a| *a * *a).sum();
        if ys > F::c(1e-12) * ss && ys.is_finite() {
            self.s.push(s.to_vec());
            self.y.push(y.to_vec());
            self.rho.push(F::one() / ys);
        }
    }

    /// q ← H⁻¹ q, with H₀ = L Lᵀ given by `chol`.
    fn apply_inverse(&mut self, chol: &[F], n: usize, q: &mut [F]) {
        let m = self.rho.len();
        self.alpha.resize(m, F::zero());
        for i in (0..m).rev() {
            let a = self.rho[i]
                * self.s[i]
                    .iter()
                    .zip(q.iter())
                    .map(|(a, b)| *a * *b)
                    .sum::<F>();
            self.alpha[i] = a;
            for (qj, &yj) in q.iter_mut().zip(&self.y[i]) {
                *qj -= a * yj;
            }
        }
        crate::kernels::solve(chol, n, q);
        for i in 0..m {
            let b = self.rho[i]
                * self.y[i]
                    .iter()
                    .zip(q.iter())
                    .map(|(a, b)| *a * *b)
                    .sum::<F>();
            let c = self.alpha[i] - b;
            for (qj, &sj) in q.iter_mut().zip(&self.s[i]) {
                *qj += c * sj;
            }
        }
    }
}

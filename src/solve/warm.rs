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
    DENSE_MAX_DIM, Method, Options, Report, StopReason, accept_step, newton_cg, norm_inf,
    stop_reason,
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
    /// Whether that factor is of `ws.h` + σI (a non-concave refit's damped
    /// steps), not of `ws.h`.
    #[cfg_attr(feature = "serde", serde(default))]
    shifted: bool,
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
            shifted: false,
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
        self.unshift();
    }

    /// Drops a factor of H + σI (it must not pass for H's own).
    fn unshift(&mut self) {
        if self.shifted {
            self.shifted = false;
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
        self.shifted = other.shifted;
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
        self.shifted = false;
    }

    /// Checks the options and that θ and the objective have this solver's
    /// dimension, which it returns.
    fn check(&self, options: &Options<F>, theta: usize, dim: usize) -> Result<usize> {
        options.check()?;
        crate::policy::check_len("theta", theta, self.n)?;
        crate::policy::check_len("objective dimension", dim, self.n)?;
        Ok(self.n)
    }

    /// Solves from `theta` (overwritten with the result).
    pub(crate) fn solve<O: HistoryObjective<F>>(
        &mut self,
        obj: &mut O,
        theta: &mut [F],
        options: &Options<F>,
    ) -> Result<Report<F>> {
        let n = self.check(options, theta.len(), obj.dim())?;
        self.unshift();
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

/// Full steps in a row that contract the gradient by less than half before
/// the Hessian is formed afresh (forming it costs some twenty passes).
const MAX_SLOW: usize = 4;

/// Halvings of a lagged Newton step before the Hessian is formed afresh.
const MAX_HALVINGS: usize = 8;

/// Lanczos steps of the curvature check after a lagged solve.
const CHECK_STEPS: usize = 3;

/// Inverse-iteration steps of the smallest eigenvalue of a factored matrix.
const INVERSE_STEPS: usize = 4;

/// The certificate of a stationary point of a non-concave refit.
enum Curvature<F> {
    /// −∇²J is positive definite (this estimate of its smallest eigenvalue).
    Maximum(F),
    /// It is not (or the check could not tell): the trust region takes over.
    Unknown,
    /// Not checked (`curvature_steps = 0`).
    Unchecked,
}

impl<F: Real> Warm<F> {
    /// Solves an objective that need not be concave from `theta`
    /// (overwritten with the result) by lagged Newton on a dense negated
    /// Hessian (docs/ARCHITECTURE.md, "Solvers"). The Hessian is formed
    /// ([`Objective::neg_hessian`] in one pass, else from `dim`
    /// Hessian-vector products) when there is none, kept from refit to
    /// refit, corrected by BFGS secant pairs along the steps, and formed
    /// afresh when a step contracts the gradient by less than half or fails.
    /// At a stationary point the curvature is certified: by the
    /// factorization of the Hessian where it was just formed there, else
    /// by three steps of Lanczos on L⁻¹(−∇²J)L⁻ᵀ, −∇²J the exact Hessian
    /// products at θ and L Lᵀ the factored lagged one, whose Ritz values
    /// must lie in (½, 2): if they do not, the Hessian is formed at θ and
    /// factored. Where it is not positive definite (a saddle, or a region
    /// where J is not concave) the solver hands over to
    /// [`super::trust_region`] from where it is.
    pub(crate) fn solve_nonconcave<O: HistoryObjective<F>>(
        &mut self,
        obj: &mut O,
        theta: &mut [F],
        options: &Options<F>,
    ) -> Result<Report<F>> {
        let n = self.check(options, theta.len(), obj.dim())?;
        let nn = crate::limits::newton_dim(n)?;
        for m in [&mut self.ws.h, &mut self.ws.chol] {
            crate::limits::try_reserve_to(m, nn, "dense Hessian")?;
            m.resize(nn, F::zero());
        }
        let threshold = options.tol * obj.gradient_scale();
        // The gradient at θ is kept from the last refit when the objective
        // added the new points' terms to it; otherwise it takes a pass.
        let mut passes = 0;
        if !(self.have_grad && obj.adds_terms()) {
            self.value = obj.value_grad(theta, &mut self.grad)?;
            self.have_grad = true;
            passes += 1;
        }
        let mut iterations = 0;
        let mut exact = false;
        if !self.h_valid {
            self.form(obj, &mut passes)?;
            exact = true;
        }
        // Full steps in a row that contracted the gradient by less than half.
        let mut slow = 0;
        loop {
            let gn = norm_inf(&self.grad);
            if gn <= threshold {
                break;
            }
            if iterations >= options.max_iter {
                self.fold_pairs();
                self.unshift();
                return Ok(Report {
                    iterations,
                    passes,
                    grad_norm: gn,
                    threshold,
                    value: self.value,
                    stop: StopReason::MaxIterations,
                    negative_curvature: false,
                    min_curvature: None,
                    saddle: false,
                });
            }
            if !self.chol_valid {
                self.ws.chol.copy_from_slice(&self.ws.h);
                self.chol_valid = crate::kernels::factor(&mut self.ws.chol, n);
                // Not positive definite (a new point's terms can make J
                // not concave here): steps with H + σI, σ from a doubling
                // sequence (damped Newton steps, ascent directions), the
                // factor kept for the rest of the refit.
                if !self.chol_valid && !self.factor_shifted() {
                    return self.hand_over(obj, theta, options, iterations, passes);
                }
            }
            let sc = &mut self.scratch;
            sc.s.copy_from_slice(&self.grad);
            self.pairs.apply_inverse(&self.ws.chol, n, &mut sc.s);
            let expected: F = sc.s.iter().zip(&self.grad).map(|(d, g)| *d * *g).sum();
            iterations += 1;
            // Backtracking from the full step: far from θ the objective
            // need not look like its quadratic model (a point of large
            // importance weight pulls hard).
            let mut t = F::one();
            let mut accepted = false;
            for _ in 0..MAX_HALVINGS {
                for ((x, &th), &d) in sc.trial.iter_mut().zip(theta.iter()).zip(&sc.s) {
                    *x = th + t * d;
                }
                passes += 1;
                let vt = match obj.value_grad(&sc.trial, &mut sc.trial_grad) {
                    Ok(v) => v,
                    Err(crate::Error::NonFiniteLogits) => F::neg_infinity(),
                    Err(e) => return Err(e),
                };
                if accept_step(self.value, vt, t * expected, gn, norm_inf(&sc.trial_grad)) {
                    self.value = vt;
                    accepted = true;
                    break;
                }
                t *= F::c(0.5);
            }
            if !accepted {
                // The objective remembers the last trial: back to θ.
                self.value = obj.value_grad(theta, &mut self.grad)?;
                passes += 1;
                if exact && self.pairs.is_empty() {
                    return self.hand_over(obj, theta, options, iterations, passes);
                }
                self.form(obj, &mut passes)?;
                exact = true;
                slow = 0;
                continue;
            }
            let gt = norm_inf(&sc.trial_grad);
            for (si, yi) in sc.s.iter_mut().zip(sc.y.iter_mut()) {
                *si *= t;
                *yi = F::zero();
            }
            for (yi, (&g0, &g1)) in sc.y.iter_mut().zip(self.grad.iter().zip(&sc.trial_grad)) {
                *yi = g0 - g1;
            }
            self.pairs.push(&sc.s, &sc.y);
            theta.copy_from_slice(&sc.trial);
            std::mem::swap(&mut self.grad, &mut sc.trial_grad);
            exact = false;
            slow = if t == F::one() && gt > F::c(0.5) * gn && gt > threshold {
                slow + 1
            } else {
                0
            };
            if slow == MAX_SLOW {
                // The lagged Hessian no longer fits: formed afresh at θ,
                // the objective's remembered point.
                self.form(obj, &mut passes)?;
                exact = true;
                slow = 0;
            }
        }
        let gn = norm_inf(&self.grad);
        let min_curvature = match self.certify(obj, options, exact, &mut passes)? {
            Curvature::Maximum(c) => Some(c),
            Curvature::Unchecked => None,
            Curvature::Unknown => {
                return self.hand_over(obj, theta, options, iterations, passes);
            }
        };
        Ok(Report {
            iterations,
            passes,
            grad_norm: gn,
            threshold,
            value: self.value,
            stop: StopReason::Converged,
            negative_curvature: false,
            min_curvature,
            saddle: false,
        })
    }

    /// Forms −∇²J at the objective's remembered θ into H (lower triangle):
    /// in one pass where the objective can, else column by column from
    /// Hessian-vector products, symmetrized.
    fn form<O: Objective<F>>(&mut self, obj: &mut O, passes: &mut usize) -> Result<()> {
        if self.form_one_pass(obj, passes)? {
            return Ok(());
        }
        let n = self.n;
        self.pairs.clear();
        self.chol_valid = false;
        self.shifted = false;
        self.refreshes += 1;
        *passes += n;
        // The full matrix of products in `chol` (as scratch), then the
        // symmetric part's lower triangle in H.
        let sc = &mut self.scratch;
        for j in 0..n {
            sc.s.iter_mut().for_each(|v| *v = F::zero());
            sc.s[j] = F::one();
            obj.neg_hess_vec(&sc.s, &mut sc.hs)?;
            for (i, &v) in sc.hs.iter().enumerate() {
                self.ws.chol[i * n + j] = v;
            }
        }
        for i in 0..n {
            for j in 0..=i {
                self.ws.h[i * n + j] =
                    F::c(0.5) * (self.ws.chol[i * n + j] + self.ws.chol[j * n + i]);
            }
        }
        self.h_valid = true;
        Ok(())
    }

    /// Forms −∇²J at the objective's remembered θ into H if the objective
    /// can in one pass ([`Objective::neg_hessian`]); `false`, changing
    /// nothing, if it cannot.
    fn form_one_pass<O: Objective<F>>(&mut self, obj: &mut O, passes: &mut usize) -> Result<bool> {
        if !obj.neg_hessian(&mut self.ws.h)? {
            return Ok(false);
        }
        self.pairs.clear();
        self.chol_valid = false;
        self.shifted = false;
        self.refreshes += 1;
        *passes += 1;
        self.h_valid = true;
        Ok(true)
    }

    /// The curvature at the objective's remembered θ, stationary (see
    /// [`Warm::solve_nonconcave`]). Folds the secant pairs into H first.
    fn certify<O: Objective<F>>(
        &mut self,
        obj: &mut O,
        options: &Options<F>,
        exact: bool,
        passes: &mut usize,
    ) -> Result<Curvature<F>> {
        if !exact && options.curvature_steps > 0 {
            // Where the objective forms −∇²J in one pass, the certificate
            // is its factorization here, and the next refit starts from
            // the exact Hessian (plus the new points' exact terms).
            let n = self.n;
            if self.form_one_pass(obj, passes)? {
                self.ws.chol.copy_from_slice(&self.ws.h);
                self.chol_valid = crate::kernels::factor(&mut self.ws.chol, n);
                return Ok(if self.chol_valid {
                    Curvature::Maximum(self.smallest_eigenvalue())
                } else {
                    Curvature::Unknown
                });
            }
        }
        // Fold the pairs into H, keeping the factor of H before them.
        let keep = self.chol_valid && !self.shifted;
        self.fold_pairs();
        self.chol_valid = keep;
        self.unshift();
        if options.curvature_steps == 0 {
            return Ok(Curvature::Unchecked);
        }
        let n = self.n;
        if !self.chol_valid {
            self.ws.chol.copy_from_slice(&self.ws.h);
            self.chol_valid = crate::kernels::factor(&mut self.ws.chol, n);
        }
        if !exact {
            // The factor of the kept Hessian before this refit's secant
            // pairs is preconditioner enough (no second factorization).
            let ritz = if self.chol_valid {
                let steps = CHECK_STEPS.min(options.curvature_steps).min(n);
                let mut probes = Vec::with_capacity(steps);
                let r = preconditioned_ritz(obj, &self.ws.chol, n, steps, passes, &mut probes)?;
                Some((r, probes))
            } else {
                None
            };
            match ritz {
                Some(((lo, hi), probes)) if lo > F::c(0.5) && hi < F::c(2.0) => {
                    let estimate = lo * self.smallest_eigenvalue();
                    // The exact products just taken correct the kept
                    // Hessian where it fits worst (the extreme directions
                    // of L⁻¹(−∇²J)L⁻ᵀ), for the next refit: BFGS with the
                    // pairs (u, −∇²J u), uᵀ(−∇²J)u > 0 where certified.
                    for (u, au) in &probes {
                        bfgs_update(&mut self.ws.h, n, u, au, &mut self.scratch.hs);
                    }
                    self.chol_valid = false;
                    return Ok(Curvature::Maximum(estimate));
                }
                _ => {
                    self.form(obj, passes)?;
                    self.ws.chol.copy_from_slice(&self.ws.h);
                    self.chol_valid = crate::kernels::factor(&mut self.ws.chol, n);
                }
            }
        }
        Ok(if self.chol_valid {
            Curvature::Maximum(self.smallest_eigenvalue())
        } else {
            Curvature::Unknown
        })
    }

    /// Factors H + 4σI for the smallest σ = 2^j · 10⁻⁴ (1 + max |H_ii|),
    /// j = 0..60, for which H + σI is positive definite (four times over,
    /// so that the damped steps are not huge along an eigenvalue near 0);
    /// `false` if none is.
    fn factor_shifted(&mut self) -> bool {
        let n = self.n;
        let scale = (0..n).fold(F::zero(), |m, i| m.max(self.ws.h[i * n + i].abs()));
        let mut sigma = F::c(1e-4) * (F::one() + scale);
        let mut found = false;
        for _ in 0..62 {
            self.ws.chol.copy_from_slice(&self.ws.h);
            for i in 0..n {
                self.ws.chol[i * n + i] += sigma;
            }
            if crate::kernels::factor(&mut self.ws.chol, n) {
                if found {
                    // A factor, but not of H: certify factors H itself.
                    self.chol_valid = true;
                    self.shifted = true;
                    return true;
                }
                found = true;
                sigma *= F::c(3.0);
            } else {
                sigma *= F::c(2.0);
            }
        }
        false
    }

    /// The smallest eigenvalue of H by inverse iteration on its factor
    /// (a few steps from a fixed start: an estimate).
    fn smallest_eigenvalue(&mut self) -> F {
        let n = self.n;
        let sc = &mut self.scratch;
        sc.s.iter_mut()
            .enumerate()
            .for_each(|(i, v)| *v = F::one() + F::c(((i * 37) % 11) as f64 / 11.0));
        let mut q = F::zero();
        for _ in 0..INVERSE_STEPS {
            let norm = sc.s.iter().map(|v| *v * *v).sum::<F>().sqrt();
            if !(norm > F::zero() && norm.is_finite()) {
                return F::zero();
            }
            sc.s.iter_mut().for_each(|v| *v /= norm);
            sc.hs.copy_from_slice(&sc.s);
            crate::kernels::solve(&self.ws.chol, n, &mut sc.hs);
            // Rayleigh quotient of H⁻¹: sᵀH⁻¹s with ‖s‖ = 1.
            q = sc.s.iter().zip(&sc.hs).map(|(a, b)| *a * *b).sum();
            std::mem::swap(&mut sc.s, &mut sc.hs);
        }
        if q > F::zero() {
            F::one() / q
        } else {
            F::zero()
        }
    }

    /// The trust region from `theta`, after `iterations` and `passes` of
    /// the lagged solve; the next refit forms the Hessian afresh.
    fn hand_over<O: HistoryObjective<F>>(
        &mut self,
        obj: &mut O,
        theta: &mut [F],
        options: &Options<F>,
        iterations: usize,
        passes: usize,
    ) -> Result<Report<F>> {
        self.reset();
        let rest = Options {
            max_iter: options.max_iter.saturating_sub(iterations).max(1),
            ..*options
        };
        let report = super::trust_region(obj, theta, &rest)?;
        Ok(Report {
            iterations: iterations + report.iterations,
            passes: passes + report.passes,
            ..report
        })
    }
}

/// The smallest and largest Ritz values of L⁻¹ A L⁻ᵀ after `steps` steps
/// of Lanczos (full reorthogonalization, a fixed start vector), A the
/// objective's negated Hessian at its remembered θ (one product per step,
/// added to `passes`) and L the Cholesky factor in `chol`.
fn preconditioned_ritz<F: Real, O: Objective<F>>(
    obj: &mut O,
    chol: &[F],
    n: usize,
    steps: usize,
    passes: &mut usize,
    probes: &mut Vec<(Vec<F>, Vec<F>)>,
) -> Result<(F, F)> {
    use crate::kernels::cholesky::{backward, forward};
    let dot = |a: &[F], b: &[F]| -> F { a.iter().zip(b).map(|(x, y)| *x * *y).sum() };
    let mut q: Vec<F> = (0..n)
        .map(|i| F::c(((i * 7919 + 13) % 101) as f64 / 50.5 - 1.0))
        .collect();
    let nq = dot(&q, &q).sqrt();
    if nq <= F::zero() || nq.is_nan() {
        return Ok((F::zero(), F::zero()));
    }
    q.iter_mut().for_each(|v| *v /= nq);
    let mut basis: Vec<Vec<F>> = Vec::with_capacity(steps);
    let mut t = vec![F::zero(); steps * steps];
    let (mut u, mut w) = (vec![F::zero(); n], vec![F::zero(); n]);
    let mut m = 0;
    for j in 0..steps {
        u.copy_from_slice(&q);
        backward(chol, n, &mut u);
        obj.neg_hess_vec(&u, &mut w)?;
        *passes += 1;
        probes.push((u.clone(), w.clone()));
        forward(chol, n, &mut w);
        basis.push(q.clone());
        m = j + 1;
        for (i, b) in basis.iter().enumerate() {
            t[i * steps + j] = dot(b, &w);
            t[j * steps + i] = t[i * steps + j];
        }
        // w − Σ (bᵀw) b, twice: the next direction.
        for _ in 0..2 {
            for b in &basis {
                let c = dot(b, &w);
                for (wi, &bi) in w.iter_mut().zip(b) {
                    *wi -= c * bi;
                }
            }
        }
        let beta = dot(&w, &w).sqrt();
        if j + 1 == steps || beta <= F::epsilon().sqrt() || beta.is_nan() {
            break;
        }
        for (qi, &wi) in q.iter_mut().zip(&w) {
            *qi = wi / beta;
        }
    }
    // The projected matrix is symmetric m×m (the Rayleigh–Ritz matrix of
    // the basis): its eigenvalues by Jacobi rotations.
    let mut a = vec![F::zero(); m * m];
    for i in 0..m {
        for j in 0..m {
            a[i * m + j] = t[i * steps + j];
        }
    }
    let eig = jacobi_eigenvalues(&mut a, m);
    let lo = eig.iter().fold(F::infinity(), |x, &v| x.min(v));
    let hi = eig.iter().fold(F::neg_infinity(), |x, &v| x.max(v));
    Ok((lo, hi))
}

/// The eigenvalues of a small symmetric matrix (row-major m×m, destroyed)
/// by cyclic Jacobi rotations.
fn jacobi_eigenvalues<F: Real>(a: &mut [F], m: usize) -> Vec<F> {
    for _ in 0..30 {
        let off: F = (0..m)
            .flat_map(|i| (0..m).filter(move |&j| j != i).map(move |j| (i, j)))
            .map(|(i, j)| a[i * m + j] * a[i * m + j])
            .sum();
        if off <= F::epsilon() * F::epsilon() || off.is_nan() {
            break;
        }
        for p in 0..m {
            for q in p + 1..m {
                let apq = a[p * m + q];
                if apq == F::zero() {
                    continue;
                }
                let theta = (a[q * m + q] - a[p * m + p]) / (F::c(2.0) * apq);
                let t = theta.signum() / (theta.abs() + (theta * theta + F::one()).sqrt());
                let c = F::one() / (t * t + F::one()).sqrt();
                let s = t * c;
                for k in 0..m {
                    let (akp, akq) = (a[k * m + p], a[k * m + q]);
                    a[k * m + p] = c * akp - s * akq;
                    a[k * m + q] = s * akp + c * akq;
                }
                for k in 0..m {
                    let (apk, aqk) = (a[p * m + k], a[q * m + k]);
                    a[p * m + k] = c * apk - s * aqk;
                    a[q * m + k] = s * apk + c * aqk;
                }
            }
        }
    }
    (0..m).map(|i| a[i * m + i]).collect()
}

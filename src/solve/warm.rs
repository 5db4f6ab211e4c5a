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
//! quadratically; when a step contracts it by less than half, or does not
//! increase J, the solver falls back to full Newton with a freshly formed
//! Hessian and a line search, whose Hessian it then keeps. Convergence is
//! certified by a full pass, exactly as for a cold solve.

use super::newton::{Workspace, newton_with};
use super::{Options, Report, StopReason, accept_step, cholesky, norm_inf};
use crate::error::Result;
use crate::objective::LogLikelihood;
use crate::real::Real;

/// State carried from one refit to the next.
#[derive(Debug, Clone)]
pub(crate) struct Warm<F> {
    n: usize,
    ws: Workspace<F>,
    /// Whether `ws.h` holds a (lagged) negated Hessian for all current data.
    h_valid: bool,
    /// Whether `ws.chol` is the factor of the current `ws.h`.
    chol_valid: bool,
    /// ∇J (padded) and J at the current θ, when `have_grad`.
    grad_t: Vec<F>,
    value: F,
    have_grad: bool,
    c: Vec<F>,
    /// Times the Hessian was formed afresh.
    pub refreshes: usize,
}

impl<F: Real> Warm<F> {
    pub(crate) fn new(obj: &LogLikelihood<F>) -> Self {
        let data = obj.data();
        let (k, d) = (data.num_actions(), data.context_dim());
        let kp = crate::policy::kernels::padded(k);
        Self {
            n: k * d,
            ws: Workspace::default(),
            h_valid: false,
            chol_valid: false,
            grad_t: vec![F::zero(); kp * d],
            value: F::zero(),
            have_grad: false,
            c: vec![F::zero(); kp],
            refreshes: 0,
        }
    }

    /// Accounts for the point (x, a, w) just added to the objective's data,
    /// given π(·|x) (`probs`, padded) and log π(a|x) at the current θ.
    pub(crate) fn absorb(
        &mut self,
        obj: &LogLikelihood<F>,
        x: &[F],
        action: usize,
        weight: F,
        probs: &[F],
        log_p: F,
    ) {
        if self.have_grad {
            self.value += weight * log_p;
            for (a, (c, &p)) in self.c.iter_mut().zip(probs).enumerate() {
                let e = if a == action { F::one() } else { F::zero() };
                *c = weight * (e - p);
            }
            crate::simd::add_outer_t(&mut self.grad_t, x, &self.c);
        }
        if self.h_valid {
            obj.add_point_hessian(x, probs, weight, &mut self.ws.h);
            self.chol_valid = false;
        }
    }

    /// Drops everything carried over (after θ was changed from outside).
    pub(crate) fn reset(&mut self) {
        self.have_grad = false;
        self.h_valid = false;
        self.chol_valid = false;
    }

    /// Solves from `theta_t` (padded layout, overwritten with the result).
    pub(crate) fn solve(
        &mut self,
        obj: &mut LogLikelihood<F>,
        theta_t: &mut [F],
        options: &Options<F>,
    ) -> Result<Report<F>> {
        options.check()?;
        let n = self.n;
        let threshold = options.tol * crate::objective::Objective::gradient_scale(obj);
        let mut passes = 0;
        if !self.have_grad {
            self.value = obj.value_grad_t(theta_t, &mut self.grad_t, false)?;
            self.have_grad = true;
            passes += 1;
        }
        let mut g = vec![F::zero(); n];
        let mut trial_t = theta_t.to_vec();
        let mut trial_grad_t = vec![F::zero(); self.grad_t.len()];
        let mut dir_t = vec![F::zero(); self.grad_t.len()];
        let mut iterations = 0;
        loop {
            let gn = norm_inf(&self.grad_t);
            if gn <= threshold {
                return Ok(self.report(iterations, passes, gn, threshold, StopReason::Converged));
            }
            if iterations >= options.max_iter {
                return Ok(self.report(
                    iterations,
                    passes,
                    gn,
                    threshold,
                    StopReason::MaxIterations,
                ));
            }
            if !self.h_valid {
                break;
            }
            if !self.chol_valid {
                self.ws.chol.clone_from(&self.ws.h);
                self.chol_valid = cholesky::factor(&mut self.ws.chol, n);
                if !self.chol_valid {
                    break;
                }
            }
            obj.to_flat(&self.grad_t, &mut g);
            cholesky::solve(&self.ws.chol, n, &mut g);
            obj.to_padded(&g, &mut dir_t);
            let expected: F = dir_t.iter().zip(&self.grad_t).map(|(d, g)| *d * *g).sum();
            for ((x, &t), &d) in trial_t.iter_mut().zip(theta_t.iter()).zip(&dir_t) {
                *x = t + d;
            }
            iterations += 1;
            passes += 1;
            let vt = match obj.value_grad_t(&trial_t, &mut trial_grad_t, false) {
                Ok(v) => v,
                Err(crate::Error::NonFiniteLogits) => F::neg_infinity(),
                Err(e) => return Err(e),
            };
            let gt = norm_inf(&trial_grad_t);
            if !accept_step(self.value, vt, expected, gn, gt) {
                break;
            }
            theta_t.copy_from_slice(&trial_t);
            std::mem::swap(&mut self.grad_t, &mut trial_grad_t);
            self.value = vt;
            if gt > F::c(0.5) * gn && gt > threshold {
                // The lagged Hessian no longer contracts fast: form it afresh.
                break;
            }
        }
        // Full Newton from the current point, keeping its Hessian.
        self.refreshes += 1;
        let mut theta = vec![F::zero(); n];
        obj.to_flat(theta_t, &mut theta);
        let rest = Options {
            max_iter: options.max_iter.saturating_sub(iterations).max(1),
            ..*options
        };
        let report = newton_with(obj, &mut theta, &rest, &mut self.ws, &mut g)?;
        obj.to_padded(&theta, theta_t);
        obj.to_padded(&g, &mut self.grad_t);
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

    fn report(
        &self,
        iterations: usize,
        passes: usize,
        grad_norm: F,
        threshold: F,
        stop: StopReason,
    ) -> Report<F> {
        Report {
            iterations,
            passes,
            grad_norm,
            threshold,
            value: self.value,
            stop,
        }
    }
}

//! Hessian-free (truncated) Newton: conjugate gradients on Hessian-vector products.

use super::{Options, Report, backtrack, line_search_failed, norm_inf, stop_reason};
use crate::error::Result;
use crate::objective::Objective;
use crate::real::Real;

/// Maximizes a concave objective by Newton-CG from `theta`, which is
/// overwritten with the result.
///
/// The Newton system −∇²J d = ∇J is solved by conjugate gradients on
/// products with the negated Hessian, to a relative residual
/// min(0.5, √(‖∇J‖∞ / s)) (superlinear convergence), then a backtracking
/// line search runs along d. Nothing of size (K·d)² is formed.
///
/// # Errors
/// Errors of the objective.
pub fn newton_cg<F: Real, O: Objective<F>>(
    obj: &mut O,
    theta: &mut [F],
    options: &Options<F>,
) -> Result<Report<F>> {
    options.check()?;
    let n = obj.dim();
    crate::policy::check_len("theta", theta.len(), n)?;
    let scale = obj.gradient_scale();
    let threshold = options.tol * scale;
    let mut grad = vec![F::zero(); n];
    let mut value = obj.value_grad(theta, &mut grad)?;
    let mut passes = 1;
    let (mut dir, mut res, mut p, mut hp) = (
        vec![F::zero(); n],
        vec![F::zero(); n],
        vec![F::zero(); n],
        vec![F::zero(); n],
    );
    let mut trial = vec![F::zero(); n];
    let mut trial_grad = vec![F::zero(); n];
    let mut iterations = 0;
    loop {
        let gn = norm_inf(&grad);
        if let Some(stop) = stop_reason(gn, threshold, iterations, options.max_iter) {
            return Ok(Report {
                iterations,
                passes,
                grad_norm: gn,
                threshold,
                value,
                stop,
                negative_curvature: false,
                min_curvature: None,
                saddle: false,
            });
        }
        iterations += 1;
        // CG on H d = g, H = −∇²J positive definite, from d = 0.
        let eta = F::c(0.5).min((gn / scale).sqrt());
        let g2: F = grad.iter().map(|g| *g * *g).sum();
        let target = eta * eta * g2;
        dir.iter_mut().for_each(|v| *v = F::zero());
        res.copy_from_slice(&grad);
        p.copy_from_slice(&grad);
        let mut rr = g2;
        for _ in 0..n.clamp(1, 500) {
            obj.neg_hess_vec(&p, &mut hp)?;
            passes += 1;
            let php: F = p.iter().zip(&hp).map(|(a, b)| *a * *b).sum();
            // php ≤ 0 (or NaN) only from rounding at a converged point.
            if php.partial_cmp(&F::zero()) != Some(std::cmp::Ordering::Greater) {
                break;
            }
            let alpha = rr / php;
            for i in 0..n {
                dir[i] += alpha * p[i];
                res[i] -= alpha * hp[i];
            }
            let rr_new: F = res.iter().map(|r| *r * *r).sum();
            if rr_new <= target {
                break;
            }
            let beta = rr_new / rr;
            for i in 0..n {
                p[i] = res[i] + beta * p[i];
            }
            rr = rr_new;
        }
        if dir.iter().all(|v| *v == F::zero()) {
            dir.copy_from_slice(&grad);
        }
        let expected: F = dir.iter().zip(&grad).map(|(d, g)| *d * *g).sum();
        let step = backtrack(
            obj,
            theta,
            &mut grad,
            &dir,
            value,
            expected,
            &mut trial,
            &mut trial_grad,
            &mut passes,
        )?;
        match step {
            Some(v) => value = v,
            None => {
                return line_search_failed(obj, theta, &mut grad, iterations, passes, threshold);
            }
        }
    }
}

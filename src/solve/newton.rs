//! Newton's method with a dense Cholesky solve and a backtracking line search.

use super::{Options, Report, StopReason, accept_step, norm_inf};
use crate::error::{Error, Result};
use crate::objective::Objective;
use crate::real::Real;

/// Dense Newton workspace: the negated Hessian of the last iteration and its
/// factor, kept so that a caller (the warm solver) can reuse them.
#[derive(Debug, Clone, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub(crate) struct Workspace<F> {
    /// −∇²J (lower triangle, row-major n×n) at the last Newton iterate.
    pub h: Vec<F>,
    /// Its Cholesky factor.
    pub chol: Vec<F>,
    /// Whether `h` and `chol` are set.
    pub valid: bool,
}

/// Maximizes a concave objective by Newton's method from `theta`, which is
/// overwritten with the result.
///
/// Each iteration forms the dense negated Hessian, factors it by Cholesky,
/// and backtracks along the Newton direction until the Armijo condition
/// holds. Stops when ‖∇J‖∞ ≤ tol · s (s from [`Objective::gradient_scale`]).
///
/// # Errors
/// Errors of the objective ([`Error::NonFiniteLogits`] if θ overflows);
/// [`Error::SingularHessian`] if the negated Hessian is not positive
/// definite (λ = 0 without a closed form).
pub fn newton<F: Real, O: Objective<F>>(
    obj: &mut O,
    theta: &mut [F],
    options: &Options<F>,
) -> Result<Report<F>> {
    let mut ws = Workspace::default();
    let mut grad = vec![F::zero(); obj.dim()];
    newton_with(obj, theta, options, &mut ws, &mut grad)
}

/// [`newton`] with a reusable workspace; `grad` receives ∇J at the result,
/// and the objective's remembered θ is the result.
pub(crate) fn newton_with<F: Real, O: Objective<F>>(
    obj: &mut O,
    theta: &mut [F],
    options: &Options<F>,
    ws: &mut Workspace<F>,
    grad: &mut [F],
) -> Result<Report<F>> {
    options.check()?;
    let n = obj.dim();
    crate::policy::check_len("theta", theta.len(), n)?;
    crate::policy::check_len("grad", grad.len(), n)?;
    let threshold = options.tol * obj.gradient_scale();
    let mut value = obj.value_grad(theta, grad)?;
    let mut passes = 1;
    let mut dir = vec![F::zero(); n];
    let mut trial = vec![F::zero(); n];
    let mut trial_grad = vec![F::zero(); n];
    ws.h.resize(n * n, F::zero());
    ws.chol.resize(n * n, F::zero());
    let mut iterations = 0;
    loop {
        let gn = norm_inf(grad);
        let stop = if gn <= threshold {
            Some(StopReason::Converged)
        } else if iterations >= options.max_iter {
            Some(StopReason::MaxIterations)
        } else {
            None
        };
        if let Some(stop) = stop {
            return Ok(Report {
                iterations,
                passes,
                grad_norm: gn,
                threshold,
                value,
                stop,
            });
        }
        iterations += 1;
        obj.neg_hessian(&mut ws.h)?;
        passes += 1;
        ws.chol.copy_from_slice(&ws.h);
        ws.valid = crate::simd::factor(&mut ws.chol, n);
        if !ws.valid {
            return Err(Error::SingularHessian);
        }
        dir.copy_from_slice(grad);
        crate::simd::solve(&ws.chol, n, &mut dir);
        let expected: F = dir.iter().zip(grad.iter()).map(|(d, g)| *d * *g).sum();
        let mut t = F::one();
        let mut accepted = false;
        for _ in 0..50 {
            for ((x, &t0), &d) in trial.iter_mut().zip(theta.iter()).zip(&dir) {
                *x = t0 + t * d;
            }
            // A step so long that the logits overflow is just too long.
            let vt = match obj.value_grad(&trial, &mut trial_grad) {
                Ok(v) => v,
                Err(Error::NonFiniteLogits) => F::neg_infinity(),
                Err(e) => return Err(e),
            };
            passes += 1;
            if accept_step(value, vt, t * expected, gn, norm_inf(&trial_grad)) {
                theta.copy_from_slice(&trial);
                grad.copy_from_slice(&trial_grad);
                value = vt;
                accepted = true;
                break;
            }
            t *= F::c(0.5);
        }
        if !accepted {
            // Leave the objective's remembered θ at the returned point.
            value = obj.value_grad(theta, grad)?;
            passes += 1;
            return Ok(Report {
                iterations,
                passes,
                grad_norm: norm_inf(grad),
                threshold,
                value,
                stop: StopReason::LineSearchFailed,
            });
        }
    }
}

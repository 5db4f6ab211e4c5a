//! Newton's method with a dense Cholesky solve and a backtracking line search.

use super::{Options, Report, backtrack, line_search_failed, norm_inf, stop_reason};
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
/// definite (λ = 0 without a closed form); [`Error::TooLarge`] above
/// [`crate::limits::MAX_NEWTON_DIM`] parameters (use [`super::newton_cg`]).
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
    let nn = crate::limits::newton_dim(n)?;
    crate::limits::try_reserve_to(&mut ws.h, nn, "dense Hessian")?;
    crate::limits::try_reserve_to(&mut ws.chol, nn, "dense Hessian")?;
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
        obj.neg_hessian(&mut ws.h)?;
        passes += 1;
        ws.chol.copy_from_slice(&ws.h);
        ws.valid = crate::kernels::factor(&mut ws.chol, n);
        if !ws.valid {
            return Err(Error::SingularHessian);
        }
        dir.copy_from_slice(grad);
        crate::kernels::solve(&ws.chol, n, &mut dir);
        let expected: F = dir.iter().zip(grad.iter()).map(|(d, g)| *d * *g).sum();
        let step = backtrack(
            obj,
            theta,
            grad,
            &dir,
            value,
            expected,
            &mut trial,
            &mut trial_grad,
            &mut passes,
        )?;
        match step {
            Some(v) => value = v,
            None => return line_search_failed(obj, theta, grad, iterations, passes, threshold),
        }
    }
}

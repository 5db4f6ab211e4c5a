//! Trust-region Newton with Steihaug conjugate gradients, for objectives
//! that are not concave.

use super::lanczos::{dot, min_eigen, norm2};
use super::{Options, Report, StopReason, norm_inf, report};
use crate::error::{Error, Result};
use crate::objective::Objective;
use crate::real::Real;

/// Saddle escapes a solve tries before it reports a saddle point.
const MAX_ESCAPES: usize = 8;

/// Maximizes an objective that need not be concave by trust-region Newton
/// from `theta`, which is overwritten with the result.
///
/// Each iteration minimizes the quadratic model of −J inside a ball of
/// radius Δ by Steihaug's truncated conjugate gradients on
/// [`Objective::neg_hess_vec`]: CG stops at the boundary, at the
/// relative residual min(0.5, √(‖∇J‖∞/s)), or on a direction of
/// non-positive curvature dᵀ(−∇²J)d ≤ 0, which it follows to the
/// boundary (reported as [`Report::negative_curvature`]). The step is taken
/// when the actual increase of J is at least 10⁻⁴ of the model's; Δ shrinks
/// to ¼‖p‖ when the ratio is below ¼ and doubles when it is above ¾ at the
/// boundary. An indefinite Hessian is therefore never factored.
///
/// The solver stops when ‖∇J‖∞ ≤ tol · s (s from
/// [`Objective::gradient_scale`]). There, unless
/// [`Options::curvature_steps`] is 0, a Lanczos check estimates the
/// smallest eigenvalue of −∇²J ([`Report::min_curvature`]); if it is
/// negative beyond √ε of the curvature's scale, θ is a saddle (or a
/// minimum) and the solver steps along that eigenvector, halving the step
/// until J increases, and goes on. If no such step increases J (up to 8
/// escapes), the point is reported with [`Report::saddle`] set. The
/// objective's remembered θ is the returned one.
///
/// # Errors
/// Errors of the objective ([`Error::NonFiniteLogits`] if θ overflows at
/// the start; a trial step that overflows is only rejected);
/// [`Error::Length`] for a wrong θ; [`Error::InvalidParameter`] for bad
/// options.
pub fn trust_region<F: Real, O: Objective<F>>(
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
    let mut buf = Buffers::new(n);
    let mut radius = F::one().max(norm2(theta));
    let max_radius = F::c(1e4) * (F::one() + norm2(theta));
    let mut negative = false;
    let mut escapes = 0;
    let mut iterations = 0;
    loop {
        let gn = norm_inf(&grad);
        if gn <= threshold {
            let extreme = if options.curvature_steps > 0 {
                min_eigen(obj, options.curvature_steps, &mut passes)?
            } else {
                None
            };
            let mut saddle = false;
            if let Some(e) = &extreme {
                let tol_c = F::epsilon().sqrt() * (F::one() + e.scale);
                if e.value < -tol_c {
                    negative = true;
                    if escapes < MAX_ESCAPES && iterations < options.max_iter {
                        let sign = if dot(&grad, &e.vector) >= F::zero() {
                            F::one()
                        } else {
                            -F::one()
                        };
                        let mut t = radius;
                        let mut moved = false;
                        for _ in 0..40 {
                            for ((x, &t0), &v) in
                                buf.trial.iter_mut().zip(theta.iter()).zip(&e.vector)
                            {
                                *x = t0 + sign * t * v;
                            }
                            let vt = evaluate(obj, &buf.trial, &mut buf.trial_grad)?;
                            passes += 1;
                            if vt > value + noise(value) {
                                theta.copy_from_slice(&buf.trial);
                                grad.copy_from_slice(&buf.trial_grad);
                                value = vt;
                                moved = true;
                                break;
                            }
                            t *= F::c(0.5);
                        }
                        if moved {
                            escapes += 1;
                            iterations += 1;
                            continue;
                        }
                        // The objective remembers the last trial: back to θ.
                        value = obj.value_grad(theta, &mut grad)?;
                        passes += 1;
                    }
                    saddle = true;
                }
            }
            return Ok(Report {
                iterations,
                passes,
                grad_norm: norm_inf(&grad),
                threshold,
                value,
                stop: StopReason::Converged,
                negative_curvature: negative,
                min_curvature: extreme.map(|e| e.value),
                saddle,
            });
        }
        if iterations >= options.max_iter {
            return Ok(report(
                iterations,
                passes,
                gn,
                threshold,
                value,
                negative,
                StopReason::MaxIterations,
            ));
        }
        if radius.is_nan() || radius <= F::epsilon() * (F::one() + norm2(theta)) {
            return Ok(report(
                iterations,
                passes,
                gn,
                threshold,
                value,
                negative,
                StopReason::TrustRegionCollapsed,
            ));
        }
        iterations += 1;
        let met_negative = steihaug(obj, &grad, radius, gn / scale, &mut buf, &mut passes)?;
        negative |= met_negative;
        let predicted = dot(&grad, &buf.p) - F::c(0.5) * dot(&buf.p, &buf.hp);
        let step = norm2(&buf.p);
        for ((x, &t0), &pi) in buf.trial.iter_mut().zip(theta.iter()).zip(&buf.p) {
            *x = t0 + pi;
        }
        let vt = evaluate(obj, &buf.trial, &mut buf.trial_grad)?;
        passes += 1;
        let actual = vt - value;
        let rho = if predicted > F::zero() {
            actual / predicted
        } else {
            F::neg_infinity()
        };
        let flat = vt.is_finite() && actual.abs() <= noise(value) && norm_inf(&buf.trial_grad) < gn;
        if rho < F::c(0.25) {
            radius = F::c(0.25) * step;
        } else if rho > F::c(0.75) && step >= F::c(0.99) * radius {
            radius = (F::c(2.0) * radius).min(max_radius);
        }
        if (rho > F::c(1e-4) && vt.is_finite()) || flat {
            theta.copy_from_slice(&buf.trial);
            grad.copy_from_slice(&buf.trial_grad);
            value = vt;
        } else {
            // Rejected: the objective remembers the trial, so back to θ.
            value = obj.value_grad(theta, &mut grad)?;
            passes += 1;
        }
    }
}

/// J at a trial point; a point where the logits overflow has J = −∞.
fn evaluate<F: Real, O: Objective<F>>(obj: &mut O, theta: &[F], grad: &mut [F]) -> Result<F> {
    match obj.value_grad(theta, grad) {
        Ok(v) => Ok(v),
        Err(Error::NonFiniteLogits) => Ok(F::neg_infinity()),
        Err(e) => Err(e),
    }
}

/// The rounding level of J near `value`.
fn noise<F: Real>(value: F) -> F {
    F::c(64.0) * F::epsilon() * (F::one() + value.abs())
}

/// Work vectors of the solver.
struct Buffers<F> {
    /// The step, and −∇²J times it.
    p: Vec<F>,
    hp: Vec<F>,
    r: Vec<F>,
    d: Vec<F>,
    hd: Vec<F>,
    trial: Vec<F>,
    trial_grad: Vec<F>,
}

impl<F: Real> Buffers<F> {
    fn new(n: usize) -> Self {
        let z = || vec![F::zero(); n];
        Self {
            p: z(),
            hp: z(),
            r: z(),
            d: z(),
            hd: z(),
            trial: z(),
            trial_grad: z(),
        }
    }
}

/// Steihaug CG on (−∇²J) p = ∇J inside ‖p‖ ≤ Δ, leaving p and (−∇²J)p in
/// the buffers; returns whether a direction of non-positive curvature was met.
fn steihaug<F: Real, O: Objective<F>>(
    obj: &mut O,
    grad: &[F],
    radius: F,
    relative: F,
    buf: &mut Buffers<F>,
    passes: &mut usize,
) -> Result<bool> {
    let n = grad.len();
    buf.p.iter_mut().for_each(|v| *v = F::zero());
    buf.hp.iter_mut().for_each(|v| *v = F::zero());
    buf.r.copy_from_slice(grad);
    buf.d.copy_from_slice(grad);
    let mut rr = dot(grad, grad);
    let eta = F::c(0.5).min(relative.sqrt());
    let target = eta * eta * rr;
    for _ in 0..(2 * n).max(1) {
        obj.neg_hess_vec(&buf.d, &mut buf.hd)?;
        *passes += 1;
        let dhd = dot(&buf.d, &buf.hd);
        if dhd.is_nan() || dhd <= F::zero() {
            let tau = to_boundary(&buf.p, &buf.d, radius);
            axpy(&mut buf.p, tau, &buf.d);
            axpy(&mut buf.hp, tau, &buf.hd);
            return Ok(true);
        }
        let alpha = rr / dhd;
        let pd = dot(&buf.p, &buf.d);
        let dd = dot(&buf.d, &buf.d);
        let pp = dot(&buf.p, &buf.p);
        if pp + F::c(2.0) * alpha * pd + alpha * alpha * dd >= radius * radius {
            let tau = to_boundary(&buf.p, &buf.d, radius);
            axpy(&mut buf.p, tau, &buf.d);
            axpy(&mut buf.hp, tau, &buf.hd);
            return Ok(false);
        }
        axpy(&mut buf.p, alpha, &buf.d);
        axpy(&mut buf.hp, alpha, &buf.hd);
        axpy(&mut buf.r, -alpha, &buf.hd);
        let rr_new = dot(&buf.r, &buf.r);
        if rr_new <= target {
            break;
        }
        let beta = rr_new / rr;
        for (di, &ri) in buf.d.iter_mut().zip(&buf.r) {
            *di = ri + beta * *di;
        }
        rr = rr_new;
    }
    Ok(false)
}

/// τ ≥ 0 with ‖p + τ d‖ = Δ (p inside the ball).
fn to_boundary<F: Real>(p: &[F], d: &[F], radius: F) -> F {
    let a = dot(d, d);
    if a == F::zero() {
        return F::zero();
    }
    let b = F::c(2.0) * dot(p, d);
    let c = dot(p, p) - radius * radius;
    let disc = (b * b - F::c(4.0) * a * c).max(F::zero()).sqrt();
    ((-b + disc) / (F::c(2.0) * a)).max(F::zero())
}

fn axpy<F: Real>(y: &mut [F], a: F, x: &[F]) {
    for (yi, &xi) in y.iter_mut().zip(x) {
        *yi += a * xi;
    }
}

//! Solvers for the refit objective, and [`fit`], the public entry point
//! that solves it on any logged dataset (docs/ARCHITECTURE.md, "Solvers").
//!
//! A solver asks an [`Objective`] only for what it uses and returns a
//! [`Report`] with its [`StopReason`]. Running out of iterations is
//! reported, never hidden.
//!
//! * [`newton`]: Newton's method with a dense Cholesky solve and a
//!   backtracking (Armijo) line search, for small K·d;
//! * [`newton_cg`]: Hessian-free Newton, conjugate gradients on
//!   Hessian-vector products, for large K·d;
//! * [`trust_region`]: trust-region Newton with Steihaug conjugate
//!   gradients, for objectives that are not concave (the expected return,
//!   signed weights): it handles indefinite Hessians, reports negative
//!   curvature, checks the curvature at the end and escapes saddle points;
//!   [`multi_start`] runs it from several seeded starts and counts the
//!   distinct local maxima;
//! * [`closed_form`]: the λ = 0 optimum when every context is the same,
//!   π*(a) = R_a / Σ_b R_b;
//! * a warm-started lagged Newton, used by [`crate::learner::Refit`]
//!   between consecutive refits.

mod cg;
mod lanczos;
mod multistart;
mod newton;
pub(crate) mod tabular;
mod trust;
pub(crate) mod warm;

pub use cg::newton_cg;
pub use multistart::{Maximum, MultiStart, MultiStartOptions, multi_start, multi_start_from};
pub use newton::newton;
pub use trust::trust_region;

use ndarray::ArrayView2;

use crate::error::{Error, Result};
use crate::objective::{Dataset, LogLikelihood, Objective, Weighting};
use crate::policy::{LinearSoftmax, Policy};
use crate::real::Real;

/// Why a solver stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub enum StopReason {
    /// ‖∇J‖∞ ≤ tol · (1 + Σ|w|): the optimum is certified.
    Converged,
    /// The iteration cap was reached first.
    MaxIterations,
    /// No step along the Newton direction increased J (the gradient is then
    /// at the level of rounding error in J).
    LineSearchFailed,
    /// The optimum was computed in closed form (λ = 0, tabular).
    ClosedForm,
    /// The trust region of [`trust_region`] shrank below the rounding
    /// level of θ without a step that increased J.
    TrustRegionCollapsed,
}

/// What a solve did and where it ended.
#[derive(Debug, Clone, Copy, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Report<F> {
    /// Newton (outer) iterations taken.
    pub iterations: usize,
    /// Passes over the data: gradient evaluations and Hessian(-vector) products.
    pub passes: usize,
    /// ‖∇J(θ)‖∞ at the returned θ.
    pub grad_norm: F,
    /// The convergence threshold tol · (1 + Σ|w|) it was compared with.
    pub threshold: F,
    /// J(θ) at the returned θ.
    pub value: F,
    /// Why the solver stopped.
    pub stop: StopReason,
    /// Whether the solver met a direction along which J is not concave
    /// (dᵀ(−∇²J)d ≤ 0 in a conjugate-gradient step). The concave solvers
    /// report `false`; [`trust_region`] reports what it met.
    #[cfg_attr(feature = "serde", serde(default))]
    pub negative_curvature: bool,
    /// The smallest eigenvalue of −∇²J at the returned θ, estimated
    /// (> 0 at a strict local maximum): by Lanczos in [`trust_region`]
    /// ([`Options::curvature_steps`] steps, at a stationary point only);
    /// in the warm refit of a non-concave objective by inverse iteration on
    /// the factored dense Hessian, scaled by the smallest Ritz value of the
    /// preconditioned check where the Hessian was kept rather than formed
    /// (docs/ARCHITECTURE.md, "Solvers"). `None` when not checked.
    #[cfg_attr(feature = "serde", serde(default))]
    pub min_curvature: Option<F>,
    /// Whether the returned θ is stationary but not a local maximum: the
    /// curvature check found a direction along which J increases, and no
    /// step along it increased J.
    #[cfg_attr(feature = "serde", serde(default))]
    pub saddle: bool,
}

impl<F: Real> Report<F> {
    /// Whether the optimum is certified (converged, or exact in closed form).
    pub fn converged(&self) -> bool {
        matches!(self.stop, StopReason::Converged | StopReason::ClosedForm)
    }
}

/// Which solver [`fit`] uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum Method {
    /// Newton with Cholesky for K·d ≤ 256, Newton-CG above.
    #[default]
    Auto,
    /// [`newton`].
    Newton,
    /// [`newton_cg`].
    NewtonCg,
    /// [`trust_region`], for objectives that need not be concave (Auto
    /// selects it for those).
    TrustRegion,
}

/// Largest K·d for which [`Method::Auto`] forms the dense Hessian.
pub const DENSE_MAX_DIM: usize = 256;

/// Solver settings.
#[derive(Debug, Clone, Copy, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Options<F> {
    /// Tolerance of the convergence test ‖∇J‖∞ ≤ tol · (1 + Σ|w|);
    /// [`Real::DEFAULT_TOL`] by default (1e-9 for f64, 1e-4 for f32).
    pub tol: F,
    /// Cap on Newton iterations (default 100).
    pub max_iter: usize,
    /// The solver (default [`Method::Auto`]).
    pub method: Method,
    /// Lanczos steps of the curvature check that [`trust_region`] runs at a
    /// stationary point (default 20, capped at the dimension; 0 turns the
    /// check off). The concave solvers ignore it.
    #[cfg_attr(feature = "serde", serde(default = "default_curvature_steps"))]
    pub curvature_steps: usize,
}

/// [`Options::curvature_steps`] of a checkpoint written before it existed.
#[cfg(feature = "serde")]
fn default_curvature_steps() -> usize {
    20
}

impl<F: Real> Default for Options<F> {
    fn default() -> Self {
        Self {
            tol: F::DEFAULT_TOL,
            max_iter: 100,
            method: Method::Auto,
            curvature_steps: 20,
        }
    }
}

impl<F: Real> Options<F> {
    /// Checks the settings.
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] for tol ≤ 0 or non-finite, or max_iter = 0.
    pub fn check(&self) -> Result<()> {
        if !(self.tol.is_finite() && self.tol > F::zero()) {
            return Err(Error::InvalidParameter {
                name: "tol",
                value: self.tol.f64(),
                expected: "finite and > 0",
            });
        }
        if self.max_iter == 0 {
            return Err(Error::InvalidParameter {
                name: "max_iter",
                value: 0.0,
                expected: ">= 1",
            });
        }
        Ok(())
    }
}

/// The maximizer of Σ_s w_s log π(a_s) over all distributions π when every
/// context of `data` is the same (the λ = 0 refit optimum):
/// π*(a) = R_a / Σ_b R_b with R_a = Σ_{s: a_s = a} w_s; actions with
/// R_a = 0 get probability 0, and with no weight at all the uniform π is
/// returned. The report has `stop = ClosedForm`, gradient norm 0 (the
/// optimality condition holds exactly) and value Σ_a R_a ln π*(a).
///
/// # Errors
/// [`Error::ZeroLambda`] if the contexts differ: λ = 0 has no closed form,
/// and no maximizer in general, outside the tabular case.
pub fn closed_form<F: Real>(data: &Dataset<F>) -> Result<(Vec<F>, Report<F>)> {
    let c = crate::objective::loglik::closed_form(data)?;
    Ok((c.probs, closed_form_report(c.value)))
}

/// The report of a solve whose end point's curvature was not checked (a
/// concave solver, or one that stopped before the convergence test held).
pub(crate) fn report<F: Real>(
    iterations: usize,
    passes: usize,
    grad_norm: F,
    threshold: F,
    value: F,
    negative_curvature: bool,
    stop: StopReason,
) -> Report<F> {
    Report {
        iterations,
        passes,
        grad_norm,
        threshold,
        value,
        stop,
        negative_curvature,
        min_curvature: None,
        saddle: false,
    }
}

/// The report of a closed-form optimum with value `value`.
pub(crate) fn closed_form_report<F: Real>(value: F) -> Report<F> {
    Report {
        iterations: 0,
        passes: 1,
        grad_norm: F::zero(),
        threshold: F::zero(),
        value,
        stop: StopReason::ClosedForm,
        negative_curvature: false,
        min_curvature: None,
        saddle: false,
    }
}

/// The result of [`fit`] and [`fit_arrays`].
#[derive(Debug, Clone, PartialEq)]
pub struct Fit<F> {
    /// The maximizer θ*, flat in the policy's layout (for the linear
    /// softmax, K×d row-major: entry a·d + j). In the closed form (λ = 0)
    /// it is θ*_a = ln π*(a) for every entry of action a, which is −∞ for
    /// actions with R_a = 0.
    pub theta: Vec<F>,
    /// How the solve went.
    pub report: Report<F>,
    /// The optimal probabilities π*(a) (length K) when the optimum is the
    /// closed form (λ = 0), zeros included; `None` otherwise.
    /// [`crate::policy::Fixed`] makes them a policy.
    pub probabilities: Option<Vec<F>>,
}

/// Solves the refit objective J(θ) = Σ_s w_s log π_θ(a_s | x_s) − (λ/2)‖θ‖²
/// of any policy family on a logged dataset, without a learner: offline
/// analysis of logs, and a way to check the solvers against other solvers.
///
/// `policy` gives the family and the starting point (its θ); `data` holds
/// the points, checked once when it was built ([`Dataset::from_points`],
/// [`Dataset::push`]). With λ = 0 the policy must be context-free (or the
/// data tabular, for a linear softmax), and the closed form is returned.
///
/// # Examples
/// ```
/// use ndarray::array;
/// use refit::objective::Dataset;
/// use refit::policy::LinearSoftmax;
/// use refit::solve::{fit, Options};
/// let x = array![[1.0, 0.0], [1.0, 1.0], [1.0, 1.0]];
/// let data = Dataset::from_points(x.view(), &[0, 1, 1], &[1.0, 2.0, 0.5], 2, true)?;
/// let f = fit(&LinearSoftmax::new(2, 2)?, &data, 0.1, &Options::default())?;
/// assert!(f.report.converged());
/// # Ok::<(), refit::Error>(())
/// ```
///
/// # Errors
/// [`Error::InvalidLambda`] for λ < 0 or non-finite, [`Error::ZeroLambda`]
/// for λ = 0 without a closed form; [`Error::ContextLength`] or
/// [`Error::Length`] if the data's shape is not the policy's;
/// [`Error::InvalidParameter`] for bad options; the solver's errors.
pub fn fit<F: Real, P: Policy<F>>(
    policy: &P,
    data: &Dataset<F>,
    lambda: F,
    options: &Options<F>,
) -> Result<Fit<F>> {
    options.check()?;
    if lambda == F::zero()
        && !data.allows_negative()
        && (policy.context_free() || is_linear_on_tabular(policy, data))
    {
        crate::policy::check_len("actions", data.num_actions(), policy.num_actions())?;
        let (probs, report) = if policy.context_free() {
            closed_form(&data.with_unit_contexts()?)?
        } else {
            closed_form(data)?
        };
        let per_action = (policy.num_params() / policy.num_actions().max(1)).max(1);
        let theta = (0..policy.num_params())
            .map(|i| probs[i / per_action].ln())
            .collect();
        return Ok(Fit {
            theta,
            report,
            probabilities: Some(probs),
        });
    }
    let mut theta = policy.params();
    let mut obj = LogLikelihood::new(policy.clone(), data.clone(), lambda, Weighting::Identity)?;
    let report = solve(&mut obj, &mut theta, options)?;
    Ok(Fit {
        theta,
        report,
        probabilities: None,
    })
}

/// Whether `policy` is a linear softmax (p = K·d, logits linear) and every
/// context of `data` is the same, where λ = 0 has the closed form.
fn is_linear_on_tabular<F: Real, P: Policy<F>>(policy: &P, data: &Dataset<F>) -> bool {
    policy.logits_linear()
        && policy.num_params() == policy.num_actions() * policy.context_dim()
        && data.context_dim() == policy.context_dim()
        && data.is_tabular()
}

/// [`fit`] for a linear softmax policy from arrays: `contexts` holds one
/// context per row; `actions` and `weights` one entry per row (weights
/// w ≥ 0, already transformed from rewards; see
/// [`crate::objective::Weighting`]). `warm_start`, if given, is the K×d
/// starting point. With λ = 0 the problem must be tabular (every context
/// the same), and the closed form is returned.
///
/// # Examples
/// ```
/// use ndarray::array;
/// use refit::solve::{fit_arrays, Options};
/// let x = array![[1.0, 0.0], [1.0, 1.0], [1.0, 1.0]];
/// let f = fit_arrays(x.view(), &[0, 1, 1], &[1.0, 2.0, 0.5], 2, 0.1, &Options::default(), None)?;
/// assert!(f.report.converged());
/// # Ok::<(), refit::Error>(())
/// ```
///
/// # Errors
/// [`Error::Length`] if the lengths disagree; [`Error::NegativeSampleWeight`],
/// [`Error::NonFiniteContext`], [`Error::ActionOutOfRange`];
/// [`Error::InvalidLambda`] for λ < 0, [`Error::ZeroLambda`] for λ = 0 on a
/// non-tabular dataset; [`Error::InvalidParameter`] for bad options;
/// [`Error::Length`] or [`Error::NonFiniteParameter`] for a bad warm start.
#[allow(clippy::too_many_arguments)]
pub fn fit_arrays<F: Real>(
    contexts: ArrayView2<'_, F>,
    actions: &[usize],
    weights: &[F],
    k: usize,
    lambda: F,
    options: &Options<F>,
    warm_start: Option<ArrayView2<'_, F>>,
) -> Result<Fit<F>> {
    options.check()?;
    let data = Dataset::from_points(contexts, actions, weights, k, true)?;
    if !(lambda.is_finite() && lambda >= F::zero()) {
        return Err(Error::InvalidLambda {
            value: lambda.f64(),
        });
    }
    let d = data.context_dim();
    let policy = match warm_start {
        Some(w) => {
            if w.dim() != (k, d) {
                return Err(Error::Length {
                    name: "warm_start",
                    expected: k * d,
                    got: w.len(),
                });
            }
            LinearSoftmax::from_params(w)?
        }
        None => LinearSoftmax::new(k, d)?,
    };
    fit(&policy, &data, lambda, options)
}

/// Maximizes any [`Objective`] from `theta` (overwritten with the result)
/// with the solver `options.method` selects: for [`Method::Auto`], Newton
/// with Cholesky (dimension ≤ 256) or Newton-CG for a concave objective,
/// [`trust_region`] for one that is not ([`Objective::concave`]). Use it
/// for the objectives [`fit`] does not build: the expected return
/// ([`crate::objective::ExpectedReturn`]), importance or signed weights
/// ([`LogLikelihood`] with a [`Weighting`]).
///
/// # Examples
/// ```
/// use refit::history::History;
/// use refit::objective::{Estimator, ExpectedReturn};
/// use refit::policy::Tabular;
/// use refit::solve::{Options, maximize};
/// let mut logs = History::new(1);
/// logs.push(&[1.0], 0, 0.2, 0.5)?;
/// logs.push(&[1.0], 1, 0.9, 0.5)?;
/// let mut obj = ExpectedReturn::new(Tabular::<f64>::new(2)?, logs, 0.1, Estimator::SelfNormalized, None)?;
/// let mut theta = vec![0.0; 2];
/// let report = maximize(&mut obj, &mut theta, &Options::default())?;
/// assert!(report.converged() && !report.saddle);
/// # Ok::<(), refit::Error>(())
/// ```
///
/// # Errors
/// The solver's and the objective's errors; [`Error::Length`] for a wrong θ.
pub fn maximize<F: Real, O: Objective<F>>(
    obj: &mut O,
    theta: &mut [F],
    options: &Options<F>,
) -> Result<Report<F>> {
    crate::policy::check_len("theta", theta.len(), obj.dim())?;
    solve(obj, theta, options)
}

/// Runs the solver `options.method` selects.
pub(crate) fn solve<F: Real, O: Objective<F>>(
    obj: &mut O,
    theta: &mut [F],
    options: &Options<F>,
) -> Result<Report<F>> {
    let dense = match options.method {
        Method::Auto if !obj.concave() => return trust_region(obj, theta, options),
        Method::TrustRegion => return trust_region(obj, theta, options),
        Method::Auto => obj.dim() <= DENSE_MAX_DIM,
        Method::Newton => true,
        Method::NewtonCg => false,
    };
    if dense {
        newton(obj, theta, options)
    } else {
        newton_cg(obj, theta, options)
    }
}

/// Backtracking line search along `dir` from `theta`, whose value is
/// `value`, gradient `grad` (norm `gn`) and directional derivative
/// ∇J·dir = `expected`: the step is halved until [`accept_step`] holds, at
/// most 50 times. On success `theta` and `grad` hold the accepted point and
/// its gradient and its value is returned; on failure they are unchanged and
/// `None` is returned. `passes` counts the objective evaluations.
#[allow(clippy::too_many_arguments)]
pub(crate) fn backtrack<F: Real, O: Objective<F>>(
    obj: &mut O,
    theta: &mut [F],
    grad: &mut [F],
    dir: &[F],
    value: F,
    expected: F,
    trial: &mut [F],
    trial_grad: &mut [F],
    passes: &mut usize,
) -> Result<Option<F>> {
    let gn = norm_inf(grad);
    let mut t = F::one();
    for _ in 0..50 {
        for ((x, &t0), &d) in trial.iter_mut().zip(theta.iter()).zip(dir) {
            *x = t0 + t * d;
        }
        // A step so long that the logits overflow is just too long.
        let vt = match obj.value_grad(trial, trial_grad) {
            Ok(v) => v,
            Err(Error::NonFiniteLogits) => F::neg_infinity(),
            Err(e) => return Err(e),
        };
        *passes += 1;
        if accept_step(value, vt, t * expected, gn, norm_inf(trial_grad)) {
            theta.copy_from_slice(trial);
            grad.copy_from_slice(trial_grad);
            return Ok(Some(vt));
        }
        t *= F::c(0.5);
    }
    Ok(None)
}

/// The report of a solve whose line search found no acceptable step: the
/// objective is evaluated once more at the returned `theta`, so that its
/// remembered θ is the returned one.
pub(crate) fn line_search_failed<F: Real, O: Objective<F>>(
    obj: &mut O,
    theta: &[F],
    grad: &mut [F],
    iterations: usize,
    passes: usize,
    threshold: F,
) -> Result<Report<F>> {
    let value = obj.value_grad(theta, grad)?;
    Ok(Report {
        iterations,
        passes: passes + 1,
        grad_norm: norm_inf(grad),
        threshold,
        value,
        stop: StopReason::LineSearchFailed,
        negative_curvature: false,
        min_curvature: None,
        saddle: false,
    })
}

/// `Converged` below the threshold, `MaxIterations` at the cap, else `None`.
pub(crate) fn stop_reason<F: Real>(
    grad_norm: F,
    threshold: F,
    iterations: usize,
    max_iter: usize,
) -> Option<StopReason> {
    if grad_norm <= threshold {
        Some(StopReason::Converged)
    } else if iterations >= max_iter {
        Some(StopReason::MaxIterations)
    } else {
        None
    }
}

/// max |v_i|.
pub(crate) fn norm_inf<F: Real>(v: &[F]) -> F {
    crate::policy::max_abs(v)
}

/// Whether a trial point with value `vt` and gradient norm `gt` is an
/// acceptable step from value `v`, gradient norm `g`, with expected
/// first-order increase `expected` (Armijo, with a fallback for the regime
/// where the change in J is below its rounding error).
pub(crate) fn accept_step<F: Real>(v: F, vt: F, expected: F, g: F, gt: F) -> bool {
    if !vt.is_finite() {
        return false;
    }
    if vt >= v + F::c(1e-4) * expected {
        return true;
    }
    let noise = F::c(64.0) * F::epsilon() * (F::one() + v.abs());
    (vt - v).abs() <= noise && gt < g
}

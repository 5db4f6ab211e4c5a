//! Refit objectives, kept apart from the solvers (docs/ARCHITECTURE.md,
//! "Objectives").
//!
//! * [`Weighting`]: how a logged interaction (reward, propensity) becomes a
//!   sample weight;
//! * [`Dataset`]: logged (context, action, weight) points, compressed
//!   exactly into one row per distinct context;
//! * [`Objective`]: what a solver asks of any objective over a flat
//!   parameter vector — value and gradient, Hessian products, the scale of
//!   the convergence test;
//! * [`HistoryObjective`]: what the refit learner and its warm-started
//!   solver ask besides — to take a new interaction and add its terms at
//!   the current optimum;
//! * [`LogLikelihood`]: J(θ) = Σ_s w_s log π_θ(a_s | x_s) − (λ/2)‖θ‖², for
//!   any [`crate::policy::Policy`];
//! * [`ExpectedReturn`]: J(θ) = V̂(θ) − (λ/2)‖θ‖², the importance-weighted
//!   estimate of the policy's expected return on logged data (IPS,
//!   self-normalized, or with POEM's variance penalty), not concave;
//! * [`FullInformation`]: J(θ) = Σ_t Σ_a π_θ(a | x_t) q(x_t, a) −
//!   (λ/2)‖θ‖² with the environment's exact expected rewards q: π* of the
//!   history with every counterfactual reward known, not concave.

mod dataset;
mod expected_return;
mod full_information;
pub(crate) mod loglik;
mod weighting;

pub use dataset::Dataset;
pub(crate) use dataset::{CHUNK_ROWS, blocks_map};
pub use expected_return::{Estimator, ExpectedReturn};
pub use full_information::FullInformation;
pub use loglik::LogLikelihood;
pub use weighting::Weighting;

use crate::error::Result;
use crate::policy::Policy;
use crate::real::Real;

/// −∇²J v by central differences of the exact gradient `grad_at` of J =
/// data − (λ/2)‖θ‖² around θ, two gradient evaluations per product (for
/// policies whose logits are not linear in θ). The step is ε^⅓ (1 +
/// ‖θ‖∞) / ‖v‖∞; v = 0 gives λ v without an evaluation. The caller puts
/// back whatever `grad_at` leaves remembered.
pub(crate) fn difference_hess_vec<F: Real>(
    theta: &[F],
    v: &[F],
    lambda: F,
    out: &mut [F],
    mut grad_at: impl FnMut(&[F], &mut [F]) -> Result<F>,
) -> Result<()> {
    let vmax = crate::policy::max_abs(v);
    if vmax == F::zero() {
        for (o, &vi) in out.iter_mut().zip(v) {
            *o = lambda * vi;
        }
        return Ok(());
    }
    let h = F::epsilon().cbrt() * (F::one() + crate::policy::max_abs(theta)) / vmax;
    let p = theta.len();
    let (mut gp, mut gm) = (vec![F::zero(); p], vec![F::zero(); p]);
    let shifted = |s: F| -> Vec<F> {
        theta
            .iter()
            .zip(v)
            .map(|(t, vi)| *t + s * h * *vi)
            .collect()
    };
    grad_at(&shifted(F::one()), &mut gp)?;
    grad_at(&shifted(-F::one()), &mut gm)?;
    let inv = F::one() / (F::c(2.0) * h);
    for ((o, a), b) in out.iter_mut().zip(&gp).zip(&gm) {
        *o = -(*a - *b) * inv;
    }
    Ok(())
}

/// The gradient in the logits of V(z) = softmax(z) · A into `f`:
/// f = π ⊙ (A − π·A).
fn softmax_value_gradient<F: Real>(pi: &[F], a: &[F], f: &mut [F]) {
    let mean: F = pi.iter().zip(a).map(|(p, v)| *p * *v).sum();
    for ((fb, &pb), &ab) in f.iter_mut().zip(pi).zip(a) {
        *fb = pb * (ab - mean);
    }
}

/// The Hessian in the logits of V(z) = softmax(z) · A, for the dense
/// Hessians of the expected returns: with f = π ⊙ (A − π·A) (the
/// gradient), C_bc = δ_bc f_b − π_c f_b − π_b f_c, written row-major into
/// `c` (K×K).
pub(crate) fn softmax_value_hessian<F: Real>(pi: &[F], a: &[F], f: &mut [F], c: &mut [F]) {
    let k = pi.len();
    softmax_value_gradient(pi, a, f);
    for (b, row) in c.chunks_exact_mut(k).enumerate().take(k) {
        for (cc, o) in row.iter_mut().enumerate() {
            let diag = if b == cc { f[b] } else { F::zero() };
            *o = diag - pi[cc] * f[b] - pi[b] * f[cc];
        }
    }
}

/// [`softmax_value_hessian`]'s C as a packed lower triangle appended to
/// `out` (entries (a, b ≤ a) row by row), with f into `f`.
pub(crate) fn softmax_value_hessian_lower<F: Real>(
    pi: &[F],
    a: &[F],
    f: &mut [F],
    out: &mut Vec<F>,
) {
    let k = pi.len();
    softmax_value_gradient(pi, a, f);
    for b in 0..k {
        let (fb, pb) = (f[b], pi[b]);
        out.extend(
            pi[..b]
                .iter()
                .zip(&f[..b])
                .map(|(&pc, &fc)| F::zero() - pc * fb - pb * fc),
        );
        out.push(fb - pb * fb - pb * fb);
    }
}

/// Adds the terms at `at`'s θ of one row whose contribution to J is
/// V(z) = softmax(z(x)) · A (the expected returns' rows) to `terms`: V, its
/// gradient Jᵀ f (f = π ⊙ (A − π·A)) and its negated Hessian −Jᵀ C J
/// ([`softmax_value_hessian`]), for a policy whose logits are linear in θ.
/// The sums are formed in place over a copy in `saved` that is put back if
/// one is not finite: the call then fails with
/// [`crate::Error::NonFiniteUpdate`] and `terms` are as before.
pub(crate) fn add_row_terms<F: Real, P: Policy<F>>(
    at: &P,
    x: &[F],
    a: &[F],
    terms: Terms<'_, F>,
    saved: &mut Vec<F>,
) -> Result<()> {
    let k = at.num_actions();
    let p = at.num_params();
    if terms.value.is_none() && terms.grad.is_none() && terms.neg_hessian.is_none() {
        return Ok(());
    }
    if let Some(g) = &terms.grad {
        crate::policy::check_len("grad", g.len(), p)?;
    }
    if let Some(h) = &terms.neg_hessian {
        crate::policy::check_len("neg_hessian", h.len(), p * p)?;
    }
    let mut pi = vec![F::zero(); at.probs_len().max(k)];
    at.probabilities_into(x, &mut pi)?;
    let pi = &pi[..k];
    let (mut f, mut c) = (vec![F::zero(); k], vec![F::zero(); k * k]);
    softmax_value_hessian(pi, a, &mut f, &mut c);
    let v: F = pi.iter().zip(a).map(|(p, v)| *p * *v).sum();
    let value = terms.value.as_deref().map(|old| *old + v);
    if value.is_some_and(|v| !v.is_finite()) {
        return Err(crate::Error::NonFiniteUpdate);
    }
    let (mut grad, mut hess) = (terms.grad, terms.neg_hessian);
    saved.clear();
    let total = grad.as_ref().map_or(0, |g| g.len()) + hess.as_ref().map_or(0, |h| h.len());
    crate::limits::try_reserve(saved, total, "the refit's kept Hessian")?;
    if let Some(g) = &grad {
        saved.extend_from_slice(g);
    }
    if let Some(h) = &hess {
        saved.extend_from_slice(h);
    }
    c.iter_mut().for_each(|v| *v = -*v);
    let mut added = || -> Result<()> {
        if let Some(g) = grad.as_deref_mut() {
            at.add_logits_vjp(x, &f, g)?;
        }
        if let Some(h) = hess.as_deref_mut() {
            at.add_logits_hessian(x, &c, h)?;
        }
        let finite =
            |v: &Option<&mut [F]>| v.as_deref().is_none_or(|v| v.iter().all(|x| x.is_finite()));
        if finite(&grad) && finite(&hess) {
            Ok(())
        } else {
            Err(crate::Error::NonFiniteUpdate)
        }
    };
    if let Err(e) = added() {
        let (sg, sh) = saved.split_at(grad.as_ref().map_or(0, |g| g.len()));
        if let Some(g) = grad {
            g.copy_from_slice(sg);
        }
        if let Some(h) = hess {
            h.copy_from_slice(sh);
        }
        return Err(e);
    }
    if let (Some(slot), Some(v)) = (terms.value, value) {
        *slot = v;
    }
    Ok(())
}

/// What a solver asks of an objective to maximize: its value and gradient,
/// and products with its negated Hessian (positive definite for a strictly
/// concave objective). Parameters are a flat vector of [`Objective::dim`]
/// entries, in the layout of the objective's policy.
pub trait Objective<F: Real> {
    /// Number of parameters.
    fn dim(&self) -> usize;

    /// J(θ), writing ∇J(θ) into `grad`, and remembering θ for the Hessian calls.
    ///
    /// # Errors
    /// [`crate::Error::Length`] for wrong lengths,
    /// [`crate::Error::NonFiniteLogits`] if θ overflows the logits (or is
    /// not finite).
    fn value_grad(&mut self, theta: &[F], grad: &mut [F]) -> Result<F>;

    /// [`Objective::value_grad`] for a caller that asks for no
    /// Hessian-vector product at this θ (an objective may then skip
    /// storing what those need). By default the same call.
    ///
    /// # Errors
    /// As [`Objective::value_grad`].
    fn value_grad_only(&mut self, theta: &[F], grad: &mut [F]) -> Result<F> {
        self.value_grad(theta, grad)
    }

    /// `out = −∇²J · v` at the θ of the last [`Objective::value_grad`]
    /// (θ = 0 before the first).
    ///
    /// # Errors
    /// [`crate::Error::Length`] for wrong lengths,
    /// [`crate::Error::NonFiniteLogits`] if θ overflows the logits.
    fn neg_hess_vec(&mut self, v: &[F], out: &mut [F]) -> Result<()>;

    /// The dense negated Hessian −∇²J at the θ of the last
    /// [`Objective::value_grad`] (θ = 0 before the first), lower triangle of
    /// a row-major dim×dim matrix, written to `out`; `Ok(false)` if the
    /// objective cannot form it.
    ///
    /// # Errors
    /// [`crate::Error::Length`] for wrong lengths.
    fn neg_hessian(&mut self, out: &mut [F]) -> Result<bool>;

    /// The scale s of the convergence test ‖∇J‖∞ ≤ tol · s.
    fn gradient_scale(&self) -> F;

    /// Whether J is known to be concave at every θ (the default). A solver
    /// for concave objectives (Newton with Cholesky, Newton-CG, the warm
    /// lagged Newton) is used only then; otherwise
    /// [`crate::solve::trust_region`].
    fn concave(&self) -> bool {
        true
    }
}

/// Where [`HistoryObjective::push`] adds a new interaction's own terms at
/// the current optimum: J, ∇J (flat, length dim) and the dense negated
/// Hessian (lower triangle, dim×dim). Each is optional.
#[derive(Debug, Default)]
pub struct Terms<'a, F> {
    /// J.
    pub value: Option<&'a mut F>,
    /// ∇J.
    pub grad: Option<&'a mut [F]>,
    /// −∇²J.
    pub neg_hessian: Option<&'a mut [F]>,
}

/// Scratch of a dense Hessian formed from its rows (not saved): the rows'
/// contexts and logit-space Hessians, and the policy's work space for
/// [`Policy::add_logits_hessian_rows`]. Kept so that a refit that forms
/// the Hessian does not allocate (and fault in) megabytes each time.
#[derive(Debug, Clone, Default)]
pub(crate) struct HessianRows<F> {
    pub(crate) xs: Vec<F>,
    pub(crate) cs: Vec<F>,
    pub(crate) work: Vec<F>,
}

/// The closed-form optimum of an objective that has one: the optimal
/// probabilities of the (context-free) policy, and J there.
#[derive(Debug, Clone, PartialEq)]
pub struct ClosedForm<F> {
    /// π*(a), length K.
    pub probs: Vec<F>,
    /// J(π*).
    pub value: F,
}

/// An objective over a growing history, as [`crate::learner::Refit`] and
/// its warm-started solver use it: it takes one interaction at a time, and
/// can add that interaction's own terms at the current optimum, so that a
/// refit starts from exact value, gradient and (lagged) Hessian without a
/// pass over the history.
pub trait HistoryObjective<F: Real>: Objective<F> + Clone + std::fmt::Debug + Send + Sync {
    /// The policy family the parameters belong to.
    type Policy: Policy<F>;

    /// A policy of the family (its θ is the last one evaluated).
    fn model(&self) -> &Self::Policy;

    /// Number of interactions taken.
    fn points(&self) -> usize;

    /// Number of rows a pass iterates over.
    fn rows(&self) -> usize;

    /// Takes one interaction (context `x`, action, reward, logged
    /// propensity), and adds its own terms at the parameters of `at` to
    /// `terms`. Everything is checked before anything changes: on error the
    /// objective and `terms` are as before.
    ///
    /// # Errors
    /// [`crate::Error::ContextLength`], [`crate::Error::NonFiniteContext`],
    /// [`crate::Error::ActionOutOfRange`], the weighting's errors, and
    /// [`crate::Error::NonFiniteLogits`] if `at` overflows at `x`.
    fn push(
        &mut self,
        at: &Self::Policy,
        x: &[F],
        action: usize,
        reward: F,
        propensity: F,
        terms: Terms<'_, F>,
    ) -> Result<()>;

    /// Whether [`HistoryObjective::push`] adds the new point's exact value,
    /// gradient and negated Hessian at `at` to the `terms` it is given (J
    /// is then a sum over points). The warm solvers then carry the
    /// gradient from one refit to the next instead of taking a pass.
    /// Default `false`.
    fn adds_terms(&self) -> bool {
        false
    }

    /// The optimum in closed form, where the objective has one (λ = 0 for a
    /// context-free policy); `None` otherwise.
    ///
    /// # Errors
    /// Objective-specific.
    fn closed_form(&self) -> Option<Result<ClosedForm<F>>> {
        None
    }

    /// A refit from `theta` (overwritten with the optimum) by a solver that
    /// uses the objective's structure, where it has one that applies now;
    /// `None` otherwise, and the generic solvers run. The log-likelihood of
    /// a tabular policy ([`Policy::identity_logits`]) with λ > 0, its
    /// history in one compressed row of non-negative total weight, and
    /// [`crate::solve::Method::Auto`] or [`crate::solve::Method::Newton`],
    /// solves its Newton systems in O(K) (docs/ARCHITECTURE.md, "Solvers").
    /// The returned report is certified as the generic solvers' are. It
    /// changes nothing but `theta`: the objective's remembered θ (its
    /// [`HistoryObjective::model`]) stays where the last evaluation left
    /// it. Default `None`.
    ///
    /// # Errors
    /// Objective-specific; on error the caller puts back what it saved.
    fn structured_refit(
        &mut self,
        theta: &mut [F],
        options: &crate::solve::Options<F>,
    ) -> Option<Result<crate::solve::Report<F>>> {
        let _ = (theta, options);
        None
    }

    /// π at `theta` as the last [`HistoryObjective::structured_refit`]
    /// formed it, if that refit ended at `theta` and the policy's π is the
    /// same at every context ([`Policy::identity_logits`]): bit for bit the
    /// first K entries of what [`Policy::probabilities_into`] writes there
    /// (the rest are zero), so a learner need not form it again. `None`
    /// otherwise, and the policy forms π. Default `None`.
    fn structured_probabilities(&self, theta: &[F]) -> Option<&[F]> {
        let _ = theta;
        None
    }

    /// Checks the internal invariants, as after reading from a checkpoint.
    ///
    /// # Errors
    /// [`crate::Error::Checkpoint`] with [`crate::CheckpointProblem::Inconsistent`].
    fn validate(&self) -> Result<()> {
        Ok(())
    }
}

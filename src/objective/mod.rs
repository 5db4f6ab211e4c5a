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

    /// The optimum in closed form, where the objective has one (λ = 0 for a
    /// context-free policy); `None` otherwise.
    ///
    /// # Errors
    /// Objective-specific.
    fn closed_form(&self) -> Option<Result<ClosedForm<F>>> {
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

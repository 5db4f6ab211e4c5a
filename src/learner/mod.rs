//! Learners: a policy that acts and learns from the outcome (docs/ARCHITECTURE.md, "Learners").

mod explore;
mod incremental;
mod refit;
mod ridge;

pub use explore::{
    BetaThompson, DEFAULT_PROPENSITY_DRAWS, EpsilonGreedy, LinTs, LinUcb, MAX_PROPENSITY_DRAWS,
    SquareCb,
};
pub use incremental::{Baseline, Incremental, StepSize};
pub use refit::{Cadence, Refit, RefitConfig, Schedule};
pub use ridge::Ridge;

use rand::Rng;

use crate::error::{Error, Result};
use crate::real::Real;

/// An action and the probability it was sampled with (the propensity),
/// as returned by [`Learner::act`].
#[derive(Debug, Clone, Copy, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Decision<F> {
    /// The chosen action.
    pub action: usize,
    /// π(action | x) under the policy that sampled it.
    pub propensity: F,
}

/// A learner of a stochastic policy, playing one interaction at a time:
/// [`Learner::act`] on a context, then [`Learner::learn`] from the reward.
///
/// A call that returns an error changes nothing in the learner.
pub trait Learner<F: Real> {
    /// Number of actions K.
    fn num_actions(&self) -> usize;

    /// Length d of the contexts.
    fn context_dim(&self) -> usize;

    /// Samples an action from the current policy at context `x`.
    ///
    /// The whole probability vector it sampled from is then available from
    /// [`Learner::probabilities`].
    ///
    /// # Errors
    /// [`Error::ContextLength`], [`Error::NonFiniteContext`], or
    /// [`Error::NonFiniteLogits`] if the logits overflow.
    fn act<R: Rng + ?Sized>(&mut self, x: &[F], rng: &mut R) -> Result<Decision<F>>;

    /// π(· | x) of the last successful [`Learner::act`], or `None` before the first.
    fn probabilities(&self) -> Option<&[F]>;

    /// Writes π(· | x) of the policy the next [`Learner::act`] samples from
    /// into `out` (length K), without sampling. A learner that refits before
    /// acting refits first if it is due, exactly as `act` would.
    ///
    /// # Errors
    /// As [`Learner::act`], and [`Error::Length`] for `out`.
    fn policy_into(&mut self, x: &[F], out: &mut [F]) -> Result<()>;

    /// Learns from one interaction: at context `x` the action `action`, sampled
    /// with probability `propensity`, earned `reward`.
    ///
    /// # Errors
    /// [`Error::ContextLength`], [`Error::NonFiniteContext`],
    /// [`Error::ActionOutOfRange`], [`Error::NonFiniteReward`],
    /// [`Error::InvalidPropensity`], and learner-specific errors.
    fn learn(&mut self, x: &[F], action: usize, reward: F, propensity: F) -> Result<()>;

    /// Checks the learner's internal invariants, as after reading it from a
    /// checkpoint.
    ///
    /// # Errors
    /// [`Error::Checkpoint`] with [`crate::CheckpointProblem::Inconsistent`].
    fn validate(&self) -> Result<()> {
        Ok(())
    }
}

/// Checks the scalar parts of an interaction.
pub(crate) fn check_interaction<F: Real>(
    action: usize,
    k: usize,
    reward: F,
    propensity: F,
) -> Result<()> {
    crate::policy::check_action(action, k)?;
    if !reward.is_finite() {
        return Err(Error::NonFiniteReward {
            value: reward.f64(),
        });
    }
    if !(propensity > F::zero() && propensity <= F::one()) {
        return Err(Error::InvalidPropensity {
            value: propensity.f64(),
        });
    }
    Ok(())
}

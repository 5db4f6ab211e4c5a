//! How a logged interaction becomes a sample weight.

use crate::error::{Error, Result};
use crate::real::Real;

/// How a logged interaction (reward r, propensity μ) becomes a sample
/// weight w in the refit objective.
#[derive(Debug, Clone, Copy, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum Weighting<F> {
    /// w = r. A negative reward is an error ([`Error::NegativeWeight`]).
    Identity,
    /// w = r − c, for a known lower bound c of the rewards; a reward below c
    /// is an error ([`Error::NegativeWeight`]).
    Shift(F),
    /// w = exp(β r), positive for every reward.
    Exp(F),
    /// w = r / μ, the importance-weighted reward: Σ_s (r_s/μ_s) log π(a_s|x_s)
    /// weighs each logged action by how unlikely the logging policy was to
    /// take it. In the tabular case (λ = 0) its maximizer is π ∝ Q̂ with
    /// Q̂(a) the importance-sampling estimate of a's mean reward
    /// (probability matching), where [`Weighting::Identity`] gives π ∝ R,
    /// the reward summed over the times a was taken (self-reinforcing). A
    /// negative reward is an error ([`Error::NegativeWeight`]).
    Importance,
    /// w = exp(β r) / μ: [`Weighting::Importance`] for rewards of either
    /// sign, the exponential weighting ([`Weighting::Exp`]) importance-weighted.
    ExpImportance(F),
    /// w = r of either sign: the literal REINFORCE surrogate Σ_s r_s log π
    /// with signed rewards. A negative weight makes the objective
    /// non-concave (and, with λ = 0, unbounded), so it needs λ > 0 and is
    /// solved by [`crate::solve::trust_region`] once a row's total weight
    /// is negative.
    Signed,
}

impl<F: Real> Weighting<F> {
    /// Checks the transform's own parameter.
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] for a non-finite shift or β.
    pub fn check(&self) -> Result<()> {
        let (name, v) = match *self {
            Weighting::Identity | Weighting::Importance | Weighting::Signed => return Ok(()),
            Weighting::Shift(c) => ("shift", c),
            Weighting::Exp(b) | Weighting::ExpImportance(b) => ("beta", b),
        };
        if v.is_finite() {
            Ok(())
        } else {
            Err(Error::InvalidParameter {
                name,
                value: v.f64(),
                expected: "finite",
            })
        }
    }

    /// Whether the weights may be negative ([`Weighting::Signed`]).
    pub fn signed(&self) -> bool {
        matches!(self, Weighting::Signed)
    }

    /// w for the interaction at `index` of a history, with reward
    /// `reward` and logged propensity `propensity` = μ(a | x) (which the
    /// weightings so far ignore; an importance weight uses it).
    ///
    /// # Errors
    /// [`Error::NonFiniteReward`], [`Error::InvalidPropensity`] for a
    /// propensity outside (0, 1], [`Error::NegativeWeight`], and
    /// [`Error::InvalidParameter`] if exp(βr) overflows.
    pub fn weight(&self, reward: F, propensity: F, index: usize) -> Result<F> {
        if !(propensity > F::zero() && propensity <= F::one()) {
            return Err(Error::InvalidPropensity {
                value: propensity.f64(),
            });
        }
        if !reward.is_finite() {
            return Err(Error::NonFiniteReward {
                value: reward.f64(),
            });
        }
        let w = match *self {
            Weighting::Identity => reward,
            Weighting::Shift(c) => reward - c,
            Weighting::Exp(b) => (b * reward).exp(),
            Weighting::Importance => reward / propensity,
            Weighting::ExpImportance(b) => (b * reward).exp() / propensity,
            Weighting::Signed => reward,
        };
        if !w.is_finite() {
            return Err(Error::InvalidParameter {
                name: "weight",
                value: w.f64(),
                expected: "a finite weight (exp(beta * reward) or reward / propensity overflows)",
            });
        }
        if w < F::zero() && !self.signed() {
            return Err(Error::NegativeWeight {
                index,
                reward: reward.f64(),
                weight: w.f64(),
            });
        }
        Ok(w)
    }
}

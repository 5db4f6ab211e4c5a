//! Environments: the bandits the learners play (docs/ARCHITECTURE.md, "Environments").
//!
//! Each environment knows its exact expected reward for every action at the
//! current context, so regret is computed exactly, not estimated. Every draw
//! an environment makes per step is independent of the action taken, so two
//! learners that share an environment seed see the same contexts and the
//! same noise (common random numbers).

/// The methods every plain (context-free) bandit shares: K = `self.means.len()`,
/// d = 1 with the context `[1]`, and expected rewards `self.means`.
macro_rules! plain_bandit {
    () => {
        fn num_actions(&self) -> usize {
            self.means.len()
        }

        fn context_dim(&self) -> usize {
            1
        }

        fn next_context<R: Rng + ?Sized>(&mut self, _rng: &mut R, out: &mut [F]) -> Result<()> {
            super::unit_context(out)
        }

        fn expected_rewards(&self, out: &mut [F]) -> Result<()> {
            super::copy_means(&self.means, out)
        }

        fn expected_rewards_at(&self, x: &[F], out: &mut [F]) -> Result<()> {
            crate::policy::check_context(x, 1)?;
            super::copy_means(&self.means, out)
        }
    };
}

mod bernoulli;
mod drifting;
mod finite_context;
mod gaussian;
mod gridnav;
mod linear_adf;
mod linear_contextual;

pub use bernoulli::Bernoulli;
pub use drifting::Drifting;
pub use finite_context::FiniteContext;
pub use gaussian::Gaussian;
pub use gridnav::{CuePlacement, GridConfig, GridNav};
pub use linear_adf::LinearAdf;
pub use linear_contextual::LinearContextual;

use rand::Rng;

use crate::error::{Error, Result};
use crate::real::Real;

/// A bandit environment: emits a context, then a reward for the action taken.
///
/// One step is [`Environment::next_context`], then any number of
/// [`Environment::expected_rewards`], then one [`Environment::reward`],
/// which also advances the environment's own state (a drift, say).
pub trait Environment<F: Real> {
    /// Number of actions K.
    fn num_actions(&self) -> usize;

    /// Length d of the contexts (1 for a plain multi-armed bandit, whose context is `[1]`).
    fn context_dim(&self) -> usize;

    /// Draws the next context x_t into `out` (length d).
    ///
    /// # Errors
    /// [`Error::ContextLength`] if `out` has the wrong length; nothing is drawn then.
    fn next_context<R: Rng + ?Sized>(&mut self, rng: &mut R, out: &mut [F]) -> Result<()>;

    /// Writes the expected reward of every action at the current context into `out` (length K).
    ///
    /// # Errors
    /// [`Error::Length`] if `out` has the wrong length.
    fn expected_rewards(&self, out: &mut [F]) -> Result<()>;

    /// Writes the expected reward of every action at context `x` (in the
    /// environment's current state, e.g. its drift) into `out` (length K),
    /// without drawing anything: for evaluating a policy at probe contexts.
    ///
    /// # Errors
    /// [`Error::ContextLength`], [`Error::NonFiniteContext`], [`Error::Length`]
    /// for `out`, and [`Error::InvalidParameter`] for a context the
    /// environment never emits (a finite-context bandit takes only its
    /// one-hot contexts).
    fn expected_rewards_at(&self, x: &[F], out: &mut [F]) -> Result<()>;

    /// Draws the reward of `action` at the current context and advances the
    /// environment to the next step.
    ///
    /// # Errors
    /// [`Error::ActionOutOfRange`]; nothing is drawn or advanced then.
    fn reward<R: Rng + ?Sized>(&mut self, action: usize, rng: &mut R) -> Result<F>;

    /// Checks the environment's internal invariants, as after reading it
    /// from a checkpoint.
    ///
    /// # Errors
    /// [`Error::Checkpoint`] with [`crate::CheckpointProblem::Inconsistent`].
    fn validate(&self) -> Result<()> {
        Ok(())
    }
}

pub(crate) fn check_means<F: Real>(name: &'static str, means: &[F]) -> Result<()> {
    if means.is_empty() {
        return Err(Error::ZeroActions);
    }
    match means.iter().find(|m| !m.is_finite()) {
        Some(m) => Err(Error::InvalidParameter {
            name,
            value: m.f64(),
            expected: "finite",
        }),
        None => Ok(()),
    }
}

pub(crate) fn check_nonneg<F: Real>(name: &'static str, v: F) -> Result<()> {
    if v.is_finite() && v >= F::zero() {
        Ok(())
    } else {
        Err(Error::InvalidParameter {
            name,
            value: v.f64(),
            expected: "finite and >= 0",
        })
    }
}

/// Writes the constant context `[1]` of a plain bandit.
pub(crate) fn unit_context<F: Real>(out: &mut [F]) -> Result<()> {
    match out {
        [x] => {
            *x = F::one();
            Ok(())
        }
        _ => Err(Error::ContextLength {
            expected: 1,
            got: out.len(),
        }),
    }
}

pub(crate) fn copy_means<F: Real>(means: &[F], out: &mut [F]) -> Result<()> {
    crate::policy::check_len("out", out.len(), means.len())?;
    out.copy_from_slice(means);
    Ok(())
}

/// An r×c matrix filled by `f`, or an error if its size cannot be allocated.
pub(crate) fn try_matrix<F: Real>(
    rows: usize,
    cols: usize,
    mut f: impl FnMut() -> F,
) -> Result<ndarray::Array2<F>> {
    let too_big = || Error::InvalidParameter {
        name: "shape",
        value: rows as f64 * cols as f64,
        expected: "a size that fits in memory",
    };
    let n = rows.checked_mul(cols).ok_or_else(too_big)?;
    let mut v = crate::limits::try_filled(0, F::zero(), "shape")?;
    v.try_reserve_exact(n).map_err(|_| too_big())?;
    v.extend((0..n).map(|_| f()));
    ndarray::Array2::from_shape_vec((rows, cols), v).map_err(|_| too_big())
}

/// Draws a context of standard normals into the environment's own copy
/// `state` and into `out` (both of length `state.len()`).
pub(crate) fn draw_normal_context<F: Real, R: Rng + ?Sized>(
    rng: &mut R,
    state: &mut [F],
    out: &mut [F],
) -> Result<()> {
    if out.len() != state.len() {
        return Err(Error::ContextLength {
            expected: state.len(),
            got: out.len(),
        });
    }
    for (s, o) in state.iter_mut().zip(out.iter_mut()) {
        *s = std_normal(rng);
        *o = *s;
    }
    Ok(())
}

/// A standard normal draw in `F`.
#[inline]
pub(crate) fn std_normal<F: Real, R: Rng + ?Sized>(rng: &mut R) -> F {
    use rand_distr::Distribution;
    F::c(rand_distr::StandardNormal.sample(rng))
}

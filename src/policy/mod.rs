//! Softmax policies over K actions (DESIGN §3).
//!
//! [`LinearSoftmax`] has logits `z = θ x` with `θ ∈ R^{K×d}` (row `a` holds
//! the weights of action `a`); [`Tabular`] has K logits and one state, and
//! agrees with `LinearSoftmax` at `d = 1`, `x = [1]` to rounding.
//! Probabilities are computed from max-shifted logits.

pub(crate) mod kernels;
mod linear;
mod tabular;

pub use kernels::Normalizer;
pub use linear::LinearSoftmax;
pub use tabular::Tabular;

pub(crate) use kernels::{dot, dot_plain, hessian_vector, sample};

/// Turns logits into probabilities in place, never exponentiating an
/// unshifted logit: `z_a ← exp(z_a − m) / Σ_b exp(z_b − m)` with `m = max_b z_b`.
/// Returns the normalizer, so that `log π(a) = z_a − normalizer.log_partition()`.
///
/// Returns `None` (and leaves `z` holding unspecified values) when the logits
/// hold a NaN or +inf, or are all −inf, so that no NaN probability escapes.
/// A −inf logit beside finite ones gets probability 0.
///
/// # Examples
/// ```
/// let mut z = [1000.0f64, 1000.0];
/// let norm = refit::policy::softmax_in_place(&mut z).expect("finite logits");
/// assert_eq!(z, [0.5, 0.5]);
/// assert!((norm.log_partition() - (1000.0 + 2f64.ln())).abs() < 1e-12);
/// ```
#[inline]
pub fn softmax_in_place<F: Real>(z: &mut [F]) -> Option<Normalizer<F>> {
    crate::simd::softmax_in_place(z)
}

use ndarray::{Array2, ArrayView2};

use crate::error::{Error, Result};
use crate::real::Real;

/// A stochastic policy π_θ(a | x) over `num_actions()` actions, differentiable
/// in its parameters θ.
///
/// Every method validates its arguments (lengths, finiteness, action range)
/// and returns an [`Error`] instead of panicking; a method that fails leaves
/// the policy unchanged.
pub trait Policy<F: Real>: Clone + std::fmt::Debug + Send + Sync {
    /// Number of actions K.
    fn num_actions(&self) -> usize;

    /// Length of the contexts the policy takes.
    fn context_dim(&self) -> usize;

    /// Length of the probability buffers the policy computes in: K, or K
    /// rounded up to the block width of its kernels. Buffers of this length
    /// skip a copy in [`Policy::probabilities_into`] and
    /// [`Policy::add_scaled_score`]; entries past K hold probability 0.
    fn probs_len(&self) -> usize;

    /// The parameters θ as a K×d matrix (row `a` holds action `a`'s weights).
    fn params(&self) -> Array2<F>;

    /// Replaces the parameters with a K×d matrix.
    ///
    /// # Errors
    /// [`Error::Length`] if `theta` has the wrong shape,
    /// [`Error::NonFiniteParameter`] if it holds a NaN or an infinity.
    fn set_params(&mut self, theta: ArrayView2<'_, F>) -> Result<()>;

    /// Writes π_θ(· | x) into `out` and returns its normalizer. `out` has
    /// length K, or [`Policy::probs_len`] (then the entries past K are 0).
    ///
    /// # Errors
    /// [`Error::ContextLength`], [`Error::NonFiniteContext`], [`Error::Length`]
    /// for `out`, and [`Error::NonFiniteLogits`] if θ·x overflows.
    fn probabilities_into(&self, x: &[F], out: &mut [F]) -> Result<Normalizer<F>>;

    /// Writes the score ∇_θ log π_θ(a | x) into `out`, a row-major K×d matrix.
    ///
    /// # Errors
    /// As [`Policy::probabilities_into`], and [`Error::ActionOutOfRange`].
    fn score_into(&self, x: &[F], action: usize, out: &mut [F]) -> Result<()>;

    /// Writes the product of the Hessian ∇²_θ log π_θ(a | x) (the same for
    /// every a) with the direction `v` into `out` (both row-major K×d), in O(K·d).
    ///
    /// # Errors
    /// As [`Policy::probabilities_into`], and [`Error::Length`] for `v`, `out`.
    fn hessian_vector_into(&self, x: &[F], v: &[F], out: &mut [F]) -> Result<()>;

    /// The REINFORCE update θ ← θ + scale · (e_a − π) ⊗ x, where `probs` is
    /// π_θ(· | x) as returned by [`Policy::probabilities_into`] for this θ and
    /// x (length K, or [`Policy::probs_len`]).
    ///
    /// # Errors
    /// As [`Policy::score_into`], [`Error::Length`] for `probs`, and
    /// [`Error::NonFiniteUpdate`] if the result would not be finite; θ is then
    /// unchanged.
    fn add_scaled_score(&mut self, x: &[F], action: usize, probs: &[F], scale: F) -> Result<()>;

    /// π_θ(· | x) as a new vector.
    ///
    /// # Errors
    /// As [`Policy::probabilities_into`].
    fn probabilities(&self, x: &[F]) -> Result<Vec<F>> {
        let mut out = vec![F::zero(); self.num_actions()];
        self.probabilities_into(x, &mut out)?;
        Ok(out)
    }

    /// Checks the policy's internal invariants (lengths, finiteness), as
    /// after reading it from a checkpoint.
    ///
    /// # Errors
    /// [`Error::Checkpoint`] with [`crate::CheckpointProblem::Inconsistent`].
    fn validate(&self) -> Result<()> {
        Ok(())
    }

    /// log π_θ(a | x), computed from the logits (exact for tiny probabilities).
    ///
    /// # Errors
    /// As [`Policy::score_into`].
    fn log_prob(&self, x: &[F], action: usize) -> Result<F>;
}

/// Checks a context's length and finiteness.
#[inline]
pub(crate) fn check_context<F: Real>(x: &[F], d: usize) -> Result<()> {
    if x.len() != d {
        return Err(Error::ContextLength {
            expected: d,
            got: x.len(),
        });
    }
    // One pass (inlined: a call would cost more than the check); the index
    // is looked up only on failure.
    if !kernels::all_finite(x) {
        let index = x.iter().position(|v| !v.is_finite()).unwrap_or(0);
        return Err(Error::NonFiniteContext {
            index,
            value: x[index].f64(),
        });
    }
    Ok(())
}

#[inline]
pub(crate) fn check_len(name: &'static str, got: usize, expected: usize) -> Result<()> {
    if got == expected {
        Ok(())
    } else {
        Err(Error::Length {
            name,
            expected,
            got,
        })
    }
}

#[inline]
pub(crate) fn check_action(action: usize, k: usize) -> Result<()> {
    if action < k {
        Ok(())
    } else {
        Err(Error::ActionOutOfRange {
            action,
            num_actions: k,
        })
    }
}

/// Largest |θ + scale·(e_a − π)⊗x| the update can produce is below
/// `max|θ| + |scale|·max|x|`; this checks that bound against overflow.
#[inline]
pub(crate) fn update_is_finite<F: Real>(theta_bound: F, scale: F, xmax: F) -> bool {
    let step = scale.abs() * xmax;
    step.is_finite() && theta_bound + step < F::max_value() * F::c(0.5)
}

#[inline]
pub(crate) fn max_abs<F: Real>(a: &[F]) -> F {
    a.iter().fold(F::zero(), |m, v| {
        let a = v.abs();
        if a > m { a } else { m }
    })
}

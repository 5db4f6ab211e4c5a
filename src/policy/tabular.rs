//! The tabular softmax policy: K logits, one state.

use ndarray::{Array2, ArrayView2};

use super::{LinearSoftmax, Normalizer, Policy, check_context};
use crate::error::Result;
use crate::real::Real;

/// Softmax over K logits with no state: `π(a) = exp(θ_a − m) / Σ_b exp(θ_b − m)`.
///
/// This is the gradient-bandit policy of Sutton & Barto (2nd ed., §2.8). It
/// takes contexts of length 1, as the plain bandits in [`crate::env`] emit
/// (`x = [1]`); the context is checked to be finite and then ignored: the
/// policy is a [`LinearSoftmax`] with d = 1 evaluated at `x = [1]`, so the two
/// agree exactly there. `params()` is the K×1 matrix of logits.
///
/// # Examples
/// ```
/// use refit::policy::{Policy, Tabular};
/// let mut pi = Tabular::<f64>::new(2)?;
/// pi.set_params(ndarray::array![[0.0], [2.0f64.ln()]].view())?;
/// let p = pi.probabilities(&[1.0])?;
/// assert!((p[1] - 2.0 / 3.0).abs() < 1e-15);
/// # Ok::<(), refit::Error>(())
/// ```
#[derive(Debug, Clone)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(
    feature = "serde",
    serde(bound = "F: crate::real::Real + serde::Serialize + serde::de::DeserializeOwned")
)]
pub struct Tabular<F> {
    inner: LinearSoftmax<F>,
}

impl<F: Real> PartialEq for Tabular<F> {
    fn eq(&self, other: &Self) -> bool {
        self.inner == other.inner
    }
}

impl<F: Real> Tabular<F> {
    /// A uniform policy over `k` actions (θ = 0).
    ///
    /// # Errors
    /// [`crate::Error::ZeroActions`] if `k = 0`.
    pub fn new(k: usize) -> Result<Self> {
        Ok(Self {
            inner: LinearSoftmax::new(k, 1)?,
        })
    }

    /// The same policy as a [`LinearSoftmax`] with d = 1.
    pub fn to_linear(&self) -> LinearSoftmax<F> {
        self.inner.clone()
    }

    /// Checks the context and replaces it by the one state `[1]`.
    #[inline]
    fn state(x: &[F]) -> Result<[F; 1]> {
        check_context(x, 1)?;
        Ok([F::one()])
    }
}

impl<F: Real> Policy<F> for Tabular<F> {
    fn num_actions(&self) -> usize {
        self.inner.num_actions()
    }

    fn context_dim(&self) -> usize {
        1
    }

    fn probs_len(&self) -> usize {
        self.inner.probs_len()
    }

    fn params(&self) -> Array2<F> {
        self.inner.params()
    }

    fn set_params(&mut self, theta: ArrayView2<'_, F>) -> Result<()> {
        self.inner.set_params(theta)
    }

    #[inline]
    fn probabilities_into(&self, x: &[F], out: &mut [F]) -> Result<Normalizer<F>> {
        self.inner.probabilities_into(&Self::state(x)?, out)
    }

    fn score_into(&self, x: &[F], action: usize, out: &mut [F]) -> Result<()> {
        self.inner.score_into(&Self::state(x)?, action, out)
    }

    fn hessian_vector_into(&self, x: &[F], v: &[F], out: &mut [F]) -> Result<()> {
        self.inner.hessian_vector_into(&Self::state(x)?, v, out)
    }

    #[inline]
    fn add_scaled_score(&mut self, x: &[F], action: usize, probs: &[F], scale: F) -> Result<()> {
        self.inner
            .add_scaled_score(&Self::state(x)?, action, probs, scale)
    }

    fn validate(&self) -> Result<()> {
        crate::error::ensure(self.inner.context_dim() == 1, "tabular policy context")?;
        self.inner.validate()
    }

    fn log_prob(&self, x: &[F], action: usize) -> Result<F> {
        self.inner.log_prob(&Self::state(x)?, action)
    }
}

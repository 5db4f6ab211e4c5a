//! The tabular softmax policy: K logits, one state.

use super::{
    LinearSoftmax, Normalizer, Policy, check_action, check_context, check_len, check_params,
    hessian_vector, max_abs, score, update_is_finite,
};
use crate::error::{Error, Result};
use crate::real::Real;

/// Softmax over K logits with no state: `π(a) = exp(θ_a − m) / Σ_b exp(θ_b − m)`.
///
/// This is the gradient-bandit policy of Sutton & Barto (2nd ed., §2.8). It
/// takes contexts of length 1, as the plain bandits in [`crate::env`] emit
/// (`x = [1]`); the value of the context is checked to be finite and then
/// ignored, so `Tabular` agrees with a [`LinearSoftmax`] with d = 1 at
/// `x = [1]`, to rounding.
///
/// # Examples
/// ```
/// use refit::policy::{Policy, Tabular};
/// let mut pi = Tabular::<f64>::new(2)?;
/// pi.set_params(&[0.0, 2.0f64.ln()])?;
/// let p = pi.probabilities(&[1.0])?;
/// assert!((p[1] - 2.0 / 3.0).abs() < 1e-15);
/// # Ok::<(), refit::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Tabular<F> {
    theta: Vec<F>,
    theta_bound: F,
}

impl<F: Real> Tabular<F> {
    /// A uniform policy over `k` actions (θ = 0).
    ///
    /// # Errors
    /// [`Error::ZeroActions`] if `k = 0`.
    pub fn new(k: usize) -> Result<Self> {
        if k == 0 {
            return Err(Error::ZeroActions);
        }
        Ok(Self {
            theta: vec![F::zero(); k],
            theta_bound: F::zero(),
        })
    }

    /// The same policy as a [`LinearSoftmax`] with d = 1.
    pub fn to_linear(&self) -> LinearSoftmax<F> {
        LinearSoftmax::from_parts(self.theta.len(), 1, self.theta.clone(), self.theta_bound)
    }

    fn one() -> [F; 1] {
        [F::one()]
    }
}

impl<F: Real> Policy<F> for Tabular<F> {
    fn num_actions(&self) -> usize {
        self.theta.len()
    }

    fn context_dim(&self) -> usize {
        1
    }

    fn params(&self) -> &[F] {
        &self.theta
    }

    fn set_params(&mut self, params: &[F]) -> Result<()> {
        check_params(params, self.theta.len())?;
        self.theta.copy_from_slice(params);
        self.theta_bound = max_abs(&self.theta);
        Ok(())
    }

    #[inline]
    fn probabilities_into(&self, x: &[F], out: &mut [F]) -> Result<Normalizer<F>> {
        check_context(x, 1)?;
        check_len("out", out.len(), self.theta.len())?;
        out.copy_from_slice(&self.theta);
        crate::simd::softmax_in_place(out).ok_or(Error::NonFiniteLogits)
    }

    fn score_into(&self, x: &[F], action: usize, out: &mut [F]) -> Result<()> {
        check_action(action, self.theta.len())?;
        check_len("out", out.len(), self.theta.len())?;
        let probs = self.probabilities(x)?;
        score(&Self::one(), &probs, action, out);
        Ok(())
    }

    fn hessian_vector_into(&self, x: &[F], v: &[F], out: &mut [F]) -> Result<()> {
        check_len("v", v.len(), self.theta.len())?;
        check_len("out", out.len(), self.theta.len())?;
        let probs = self.probabilities(x)?;
        let mut u = vec![F::zero(); self.theta.len()];
        hessian_vector(&Self::one(), &probs, v, &mut u, out);
        Ok(())
    }

    #[inline]
    fn add_scaled_score(&mut self, x: &[F], action: usize, probs: &[F], scale: F) -> Result<()> {
        check_context(x, 1)?;
        check_action(action, self.theta.len())?;
        check_len("probs", probs.len(), self.theta.len())?;
        let one = Self::one();
        if !update_is_finite(self.theta_bound, scale, &one) {
            self.theta_bound = max_abs(&self.theta);
            if !update_is_finite(self.theta_bound, scale, &one) {
                return Err(Error::NonFiniteUpdate);
            }
        }
        crate::simd::add_scaled_score(&mut self.theta, &one, probs, action, scale);
        self.theta_bound += scale.abs();
        Ok(())
    }

    fn log_prob(&self, x: &[F], action: usize) -> Result<F> {
        check_action(action, self.theta.len())?;
        check_context(x, 1)?;
        let mut z = self.theta.clone();
        let norm = super::softmax_in_place(&mut z).ok_or(Error::NonFiniteLogits)?;
        Ok(self.theta[action] - norm.log_partition())
    }
}

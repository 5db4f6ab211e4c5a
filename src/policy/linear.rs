//! The linear softmax policy, π(a | x) ∝ exp(θ_a · x).

use ndarray::Array2;

use super::{
    Normalizer, Policy, check_action, check_context, check_len, check_params, hessian_vector,
    linear_logits, max_abs, score, update_is_finite,
};
use crate::error::{Error, Result};
use crate::real::Real;

/// Linear softmax policy over K actions with d-dimensional contexts:
/// `π(a | x) = exp(θ_a·x − m) / Σ_b exp(θ_b·x − m)`, `m = max_b θ_b·x`.
///
/// # Examples
/// ```
/// use refit::policy::{LinearSoftmax, Policy};
/// let pi = LinearSoftmax::<f64>::new(3, 2)?;
/// let p = pi.probabilities(&[0.5, -1.0])?;
/// assert!((p.iter().sum::<f64>() - 1.0).abs() < 1e-15); // θ = 0: uniform
/// # Ok::<(), refit::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct LinearSoftmax<F> {
    k: usize,
    d: usize,
    theta: Vec<F>,
    /// An upper bound on max |θ|, kept so that an update can be checked for
    /// overflow in O(d) instead of O(K·d).
    theta_bound: F,
}

impl<F: Real> LinearSoftmax<F> {
    /// A policy with θ = 0 (uniform over actions).
    ///
    /// # Errors
    /// [`Error::ZeroActions`] if `k = 0`, [`Error::ZeroContextDim`] if `d = 0`,
    /// [`Error::InvalidParameter`] if K·d overflows `usize`.
    pub fn new(k: usize, d: usize) -> Result<Self> {
        if k == 0 {
            return Err(Error::ZeroActions);
        }
        if d == 0 {
            return Err(Error::ZeroContextDim);
        }
        let n = k.checked_mul(d).ok_or(Error::InvalidParameter {
            name: "k * d",
            value: f64::INFINITY,
            expected: "K·d fits in memory",
        })?;
        Ok(Self {
            k,
            d,
            theta: vec![F::zero(); n],
            theta_bound: F::zero(),
        })
    }

    /// A policy with the given K×d parameter matrix.
    ///
    /// # Errors
    /// As [`LinearSoftmax::new`], and [`Error::NonFiniteParameter`].
    pub fn from_params(theta: &Array2<F>) -> Result<Self> {
        let (k, d) = theta.dim();
        let mut p = Self::new(k, d)?;
        let flat: Vec<F> = theta.iter().copied().collect();
        p.set_params(&flat)?;
        Ok(p)
    }

    /// From parts that are already known good (K, d ≥ 1, θ finite, of length K·d).
    pub(crate) fn from_parts(k: usize, d: usize, theta: Vec<F>, theta_bound: F) -> Self {
        Self {
            k,
            d,
            theta,
            theta_bound,
        }
    }

    /// θ as a K×d matrix (a copy).
    pub fn params_matrix(&self) -> Array2<F> {
        Array2::from_shape_fn((self.k, self.d), |(a, j)| self.theta[a * self.d + j])
    }
}

impl<F: Real> Policy<F> for LinearSoftmax<F> {
    fn num_actions(&self) -> usize {
        self.k
    }

    fn context_dim(&self) -> usize {
        self.d
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
        check_context(x, self.d)?;
        check_len("out", out.len(), self.k)?;
        crate::simd::logits_softmax(&self.theta, x, out).ok_or(Error::NonFiniteLogits)
    }

    fn score_into(&self, x: &[F], action: usize, out: &mut [F]) -> Result<()> {
        check_action(action, self.k)?;
        check_len("out", out.len(), self.theta.len())?;
        let probs = self.probabilities(x)?;
        score(x, &probs, action, out);
        Ok(())
    }

    fn hessian_vector_into(&self, x: &[F], v: &[F], out: &mut [F]) -> Result<()> {
        check_len("v", v.len(), self.theta.len())?;
        check_len("out", out.len(), self.theta.len())?;
        let probs = self.probabilities(x)?;
        let mut u = vec![F::zero(); self.k];
        hessian_vector(x, &probs, v, &mut u, out);
        Ok(())
    }

    #[inline]
    fn add_scaled_score(&mut self, x: &[F], action: usize, probs: &[F], scale: F) -> Result<()> {
        check_context(x, self.d)?;
        check_action(action, self.k)?;
        check_len("probs", probs.len(), self.k)?;
        if !update_is_finite(self.theta_bound, scale, x) {
            // The cheap bound may be loose: tighten it once before refusing.
            self.theta_bound = max_abs(&self.theta);
            if !update_is_finite(self.theta_bound, scale, x) {
                return Err(Error::NonFiniteUpdate);
            }
        }
        crate::simd::add_scaled_score(&mut self.theta, x, probs, action, scale);
        self.theta_bound += scale.abs() * max_abs(x);
        Ok(())
    }

    fn log_prob(&self, x: &[F], action: usize) -> Result<F> {
        check_action(action, self.k)?;
        let mut z = vec![F::zero(); self.k];
        check_context(x, self.d)?;
        linear_logits(&self.theta, x, &mut z);
        let za = z[action];
        let norm = super::softmax_in_place(&mut z).ok_or(Error::NonFiniteLogits)?;
        Ok(za - norm.log_partition())
    }
}

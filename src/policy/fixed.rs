//! A policy with fixed probabilities, zeros allowed: the representation of
//! a closed-form optimum.

use super::{Normalizer, Policy, check_context, check_len};
use crate::error::{Error, Result};
use crate::real::Real;

/// A context-free policy with given probabilities π(a), zeros allowed, and
/// no parameters. It is what the λ = 0 closed form π*(a) = R_a / Σ_b R_b
/// ([`crate::solve::Fit::probabilities`]) becomes to be evaluated like any
/// other policy — by [`crate::ope::evaluate`], say — since its logits ln
/// π*(a) are −∞ where π*(a) = 0, which no parametric softmax holds. Its
/// contexts have length `d` (checked, then ignored).
///
/// # Examples
/// ```
/// use refit::policy::{Fixed, Policy};
/// let pi = Fixed::<f64>::new(vec![0.75, 0.25, 0.0], 1)?;
/// assert_eq!(pi.probabilities(&[1.0])?, vec![0.75, 0.25, 0.0]);
/// assert_eq!(pi.log_prob(&[1.0], 2)?, f64::NEG_INFINITY);
/// # Ok::<(), refit::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Fixed<F> {
    probs: Vec<F>,
    d: usize,
}

impl<F: Real> Fixed<F> {
    /// The policy π(a) = `probs[a]` for contexts of length `d`.
    ///
    /// # Errors
    /// [`Error::ZeroActions`], [`Error::ZeroContextDim`];
    /// [`Error::InvalidParameter`] if a probability is negative or not
    /// finite, or if they do not sum to 1 (within 1e-6 relative).
    pub fn new(probs: Vec<F>, d: usize) -> Result<Self> {
        if probs.is_empty() {
            return Err(Error::ZeroActions);
        }
        if d == 0 {
            return Err(Error::ZeroContextDim);
        }
        if let Some(p) = probs.iter().find(|p| !(p.is_finite() && **p >= F::zero())) {
            return Err(Error::InvalidParameter {
                name: "probability",
                value: p.f64(),
                expected: "finite and >= 0",
            });
        }
        let total: f64 = probs.iter().map(|p| p.f64()).sum();
        if (total - 1.0).abs() > 1e-6 {
            return Err(Error::InvalidParameter {
                name: "sum of the probabilities",
                value: total,
                expected: "1",
            });
        }
        Ok(Self { probs, d })
    }

    /// π(a) for every action.
    pub fn probs(&self) -> &[F] {
        &self.probs
    }
}

impl<F: Real> Policy<F> for Fixed<F> {
    fn num_actions(&self) -> usize {
        self.probs.len()
    }

    fn context_dim(&self) -> usize {
        self.d
    }

    fn num_params(&self) -> usize {
        0
    }

    fn params_into(&self, out: &mut [F]) -> Result<()> {
        check_len("out", out.len(), 0)
    }

    fn set_params(&mut self, theta: &[F]) -> Result<()> {
        check_len("theta", theta.len(), 0)
    }

    /// ln π(a), −∞ where π(a) = 0.
    fn logits_into(&self, x: &[F], out: &mut [F]) -> Result<()> {
        check_context(x, self.d)?;
        check_len("out", out.len(), self.probs.len())?;
        for (o, p) in out.iter_mut().zip(&self.probs) {
            *o = p.ln();
        }
        Ok(())
    }

    fn add_logits_vjp(&self, x: &[F], c: &[F], grad: &mut [F]) -> Result<()> {
        check_context(x, self.d)?;
        if c.len() < self.probs.len() {
            return Err(Error::Length {
                name: "c",
                expected: self.probs.len(),
                got: c.len(),
            });
        }
        check_len("grad", grad.len(), 0)
    }

    fn context_free(&self) -> bool {
        true
    }

    /// The stored probabilities, exactly (zeros stay zeros).
    fn probabilities_into(&self, x: &[F], out: &mut [F]) -> Result<Normalizer<F>> {
        check_context(x, self.d)?;
        check_len("out", out.len(), self.probs.len())?;
        out.copy_from_slice(&self.probs);
        // The logits ln π have max ln π_max and Σ exp(z − max) = 1/π_max
        // (log-partition 0).
        let top = self.probs.iter().fold(F::zero(), |m, p| m.max(*p));
        Ok(Normalizer {
            max: top.ln(),
            sum: F::one() / top,
        })
    }

    fn log_prob(&self, x: &[F], action: usize) -> Result<F> {
        check_context(x, self.d)?;
        super::check_action(action, self.probs.len())?;
        Ok(self.probs[action].ln())
    }

    fn validate(&self) -> Result<()> {
        Self::new(self.probs.clone(), self.d)
            .map(|_| ())
            .map_err(|_| crate::error::inconsistent("fixed policy probabilities"))
    }
}

//! Bernoulli bandit.

use rand::{Rng, RngExt};

use super::Environment;
use crate::error::{Error, Result};
use crate::policy::check_action;
use crate::real::Real;

/// K arms; arm `a` pays 1 with probability `means[a]` and 0 otherwise.
///
/// Each step draws one uniform `u` and pays `u < means[a]`: the same `u`
/// whichever arm is pulled, so learners sharing a seed see coupled rewards.
///
/// # Examples
/// ```
/// use refit::env::{Bernoulli, Environment};
/// use rand::SeedableRng;
/// let mut env = Bernoulli::new(vec![0.2, 0.8])?;
/// let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
/// let mut x = [0.0];
/// env.next_context(&mut rng, &mut x)?;
/// let r: f64 = env.reward(1, &mut rng)?;
/// assert!(r == 0.0 || r == 1.0);
/// # Ok::<(), refit::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Bernoulli<F> {
    means: Vec<F>,
}

impl<F: Real> Bernoulli<F> {
    /// A bandit with the given arm means, each in [0, 1].
    ///
    /// # Errors
    /// [`Error::ZeroActions`] for no arms, [`Error::InvalidParameter`] for a
    /// mean outside [0, 1] or NaN.
    pub fn new(means: Vec<F>) -> Result<Self> {
        if means.is_empty() {
            return Err(Error::ZeroActions);
        }
        if let Some(m) = means
            .iter()
            .find(|m| !(**m >= F::zero() && **m <= F::one()))
        {
            return Err(Error::InvalidParameter {
                name: "means",
                value: m.f64(),
                expected: "each mean in [0, 1]",
            });
        }
        Ok(Self { means })
    }

    /// The arm means.
    pub fn means(&self) -> &[F] {
        &self.means
    }
}

impl<F: Real> Environment<F> for Bernoulli<F> {
    plain_bandit!();

    fn validate(&self) -> Result<()> {
        Self::new(self.means.clone())
            .map(|_| ())
            .map_err(|_| crate::error::inconsistent("Bernoulli means"))
    }

    fn reward<R: Rng + ?Sized>(&mut self, action: usize, rng: &mut R) -> Result<F> {
        check_action(action, self.means.len())?;
        let u = F::c(rng.random::<f64>());
        Ok(if u < self.means[action] {
            F::one()
        } else {
            F::zero()
        })
    }
}

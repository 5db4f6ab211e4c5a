//! Non-stationary bandit whose arm means drift by a random walk.

use rand::Rng;

use super::{Environment, check_means, check_nonneg, std_normal};
use crate::error::Result;
use crate::policy::check_action;
use crate::real::Real;

/// K arms with Gaussian rewards `q_t(a) + sd · ε`, where after every step each
/// mean takes an independent random-walk step `q_{t+1}(a) = q_t(a) + walk_sd · η_a`
/// (Sutton & Barto 2nd ed., Exercise 2.5 uses equal starts and walk_sd = 0.01).
///
/// Each step draws one ε and K η's, whichever arm is pulled.
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Drifting<F> {
    means: Vec<F>,
    sd: F,
    walk_sd: F,
}

impl<F: Real> Drifting<F> {
    /// A drifting bandit starting from `means`.
    ///
    /// # Errors
    /// [`crate::Error::ZeroActions`] for no arms, [`crate::Error::InvalidParameter`]
    /// for a non-finite mean or a negative or non-finite `sd` or `walk_sd`.
    pub fn new(means: Vec<F>, sd: F, walk_sd: F) -> Result<Self> {
        check_means("means", &means)?;
        check_nonneg("sd", sd)?;
        check_nonneg("walk_sd", walk_sd)?;
        Ok(Self { means, sd, walk_sd })
    }

    /// The current arm means q_t(a).
    pub fn means(&self) -> &[F] {
        &self.means
    }
}

impl<F: Real> Environment<F> for Drifting<F> {
    plain_bandit!();

    fn validate(&self) -> Result<()> {
        Self::new(self.means.clone(), self.sd, self.walk_sd)
            .map(|_| ())
            .map_err(|_| crate::error::inconsistent("drifting bandit parameters"))
    }

    fn reward<R: Rng + ?Sized>(&mut self, action: usize, rng: &mut R) -> Result<F> {
        check_action(action, self.means.len())?;
        let eps: F = std_normal(rng);
        let r = self.means[action] + self.sd * eps;
        for m in &mut self.means {
            let eta: F = std_normal(rng);
            *m += self.walk_sd * eta;
        }
        Ok(r)
    }
}

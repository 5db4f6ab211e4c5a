//! Gaussian bandit and the 10-armed testbed.

use rand::Rng;

use super::{Environment, check_means, check_nonneg, std_normal};
use crate::error::Result;
use crate::policy::check_action;
use crate::real::Real;

/// K arms; arm `a` pays `means[a] + sd · ε` with ε ~ N(0, 1).
///
/// Each step draws one ε, the same whichever arm is pulled.
///
/// # Examples
/// The 10-armed testbed of Sutton & Barto (2nd ed., §2.3), shifted by +4 as
/// in their Figure 2.5:
/// ```
/// use refit::env::{Environment, Gaussian};
/// use rand::SeedableRng;
/// let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
/// let env = Gaussian::<f64>::testbed(10, 4.0, &mut rng)?;
/// assert_eq!(env.num_actions(), 10);
/// # Ok::<(), refit::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Gaussian<F> {
    means: Vec<F>,
    sd: F,
}

impl<F: Real> Gaussian<F> {
    /// A bandit with the given arm means and reward noise standard deviation.
    ///
    /// # Errors
    /// [`crate::Error::ZeroActions`] for no arms, [`crate::Error::InvalidParameter`]
    /// for a non-finite mean or a negative or non-finite `sd`.
    pub fn new(means: Vec<F>, sd: F) -> Result<Self> {
        check_means("means", &means)?;
        check_nonneg("sd", sd)?;
        Ok(Self { means, sd })
    }

    /// The k-armed testbed: q*(a) ~ N(mean_offset, 1), rewards ~ N(q*(a), 1).
    ///
    /// # Errors
    /// As [`Gaussian::new`].
    pub fn testbed<R: Rng + ?Sized>(k: usize, mean_offset: F, rng: &mut R) -> Result<Self> {
        let means = super::try_matrix(1, k, || mean_offset + std_normal::<F, R>(rng))?;
        Self::new(means.into_raw_vec_and_offset().0, F::one())
    }

    /// The arm means q*(a).
    pub fn means(&self) -> &[F] {
        &self.means
    }
}

impl<F: Real> Environment<F> for Gaussian<F> {
    plain_bandit!();

    fn validate(&self) -> Result<()> {
        Self::new(self.means.clone(), self.sd)
            .map(|_| ())
            .map_err(|_| crate::error::inconsistent("Gaussian bandit parameters"))
    }

    fn reward<R: Rng + ?Sized>(&mut self, action: usize, rng: &mut R) -> Result<F> {
        check_action(action, self.means.len())?;
        let eps: F = std_normal(rng);
        Ok(self.means[action] + self.sd * eps)
    }
}

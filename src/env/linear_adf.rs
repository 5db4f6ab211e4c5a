//! Linear bandit with action-dependent features.

use rand::Rng;

use super::{Environment, check_nonneg, std_normal};
use crate::error::{Error, Result};
use crate::kernels::dot_plain;
use crate::policy::{check_action, check_context, check_len};
use crate::real::Real;

/// A bandit whose context holds one feature vector per action: each step
/// draws φ_a ~ N(0, I_p) for every action a, and action `a` pays
/// `⟨w, φ_a⟩ + noise_sd · ε` for one shared weight vector w ∈ R^p.
///
/// The context is `[φ_0 | φ_1 | … | φ_{K−1}]` (length K·p), the layout of
/// [`crate::policy::ActionFeatures`], whose optimal policy puts all mass on
/// argmax_a ⟨w, φ_a⟩: the conditional logit with θ ∝ w is the best policy
/// of its family as its scale grows. Each step draws K·p normals and one ε,
/// whichever action is taken.
///
/// # Examples
/// ```
/// use refit::env::{Environment, LinearAdf};
/// use rand::SeedableRng;
/// let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
/// let mut env = LinearAdf::<f64>::random(5, 4, 0.1, &mut rng)?;
/// let mut x = vec![0.0; 5 * 4];
/// env.next_context(&mut rng, &mut x)?;
/// let mut mu = vec![0.0; 5];
/// env.expected_rewards(&mut mu)?;
/// # Ok::<(), refit::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct LinearAdf<F> {
    k: usize,
    weights: Vec<F>,
    noise_sd: F,
    x: Vec<F>,
}

impl<F: Real> LinearAdf<F> {
    /// A bandit over `k` actions with reward weights `weights` (length p).
    ///
    /// # Errors
    /// [`Error::ZeroActions`], [`Error::ZeroContextDim`] for empty weights,
    /// [`Error::InvalidParameter`] for non-finite weights, a negative or
    /// non-finite `noise_sd`, or a K·p too large to allocate.
    pub fn new(k: usize, weights: Vec<F>, noise_sd: F) -> Result<Self> {
        if k == 0 {
            return Err(Error::ZeroActions);
        }
        if weights.is_empty() {
            return Err(Error::ZeroContextDim);
        }
        if let Some(w) = weights.iter().find(|w| !w.is_finite()) {
            return Err(Error::InvalidParameter {
                name: "weights",
                value: w.f64(),
                expected: "finite",
            });
        }
        check_nonneg("noise_sd", noise_sd)?;
        let n = k
            .checked_mul(weights.len())
            .ok_or(Error::InvalidParameter {
                name: "k * p",
                value: k as f64 * weights.len() as f64,
                expected: "a size that fits in memory",
            })?;
        Ok(Self {
            k,
            x: crate::limits::try_filled(n, F::zero(), "k * p")?,
            weights,
            noise_sd,
        })
    }

    /// A bandit with w ~ N(0, I/p), so that each ⟨w, φ_a⟩ has unit variance.
    ///
    /// # Errors
    /// As [`LinearAdf::new`].
    pub fn random<R: Rng + ?Sized>(k: usize, p: usize, noise_sd: F, rng: &mut R) -> Result<Self> {
        let scale = F::one() / F::c(p.max(1) as f64).sqrt();
        let mut w = crate::limits::try_filled(p, F::zero(), "p")?;
        for v in &mut w {
            *v = scale * std_normal::<F, R>(rng);
        }
        Self::new(k, w, noise_sd)
    }

    /// The reward weights w.
    pub fn weights(&self) -> &[F] {
        &self.weights
    }

    /// Number of features per action p.
    pub fn features(&self) -> usize {
        self.weights.len()
    }
}

impl<F: Real> Environment<F> for LinearAdf<F> {
    fn num_actions(&self) -> usize {
        self.k
    }

    fn context_dim(&self) -> usize {
        self.x.len()
    }

    fn next_context<R: Rng + ?Sized>(&mut self, rng: &mut R, out: &mut [F]) -> Result<()> {
        super::draw_normal_context(rng, &mut self.x, out)
    }

    fn expected_rewards(&self, out: &mut [F]) -> Result<()> {
        self.expected_rewards_at(&self.x, out)
    }

    fn expected_rewards_at(&self, x: &[F], out: &mut [F]) -> Result<()> {
        check_context(x, self.x.len())?;
        check_len("out", out.len(), self.k)?;
        for (o, phi) in out.iter_mut().zip(x.chunks_exact(self.weights.len())) {
            *o = dot_plain(&self.weights, phi);
        }
        Ok(())
    }

    fn reward<R: Rng + ?Sized>(&mut self, action: usize, rng: &mut R) -> Result<F> {
        check_action(action, self.k)?;
        let eps: F = std_normal(rng);
        let p = self.weights.len();
        let phi = &self.x[action * p..(action + 1) * p];
        Ok(dot_plain(&self.weights, phi) + self.noise_sd * eps)
    }

    fn validate(&self) -> Result<()> {
        use crate::error::ensure;
        ensure(
            self.k >= 1
                && !self.weights.is_empty()
                && self.k.checked_mul(self.weights.len()) == Some(self.x.len()),
            "linear ADF bandit lengths",
        )?;
        ensure(
            self.weights.iter().chain(&self.x).all(|v| v.is_finite())
                && self.noise_sd.is_finite()
                && self.noise_sd >= F::zero(),
            "linear ADF bandit values",
        )
    }
}

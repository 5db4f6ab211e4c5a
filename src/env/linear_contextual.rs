//! Linear contextual bandit.

use ndarray::Array2;
use rand::Rng;

use super::{Environment, check_nonneg, std_normal};
use crate::error::{Error, Result};
use crate::kernels::dot_plain;
use crate::policy::{check_action, check_len};
use crate::real::Real;

/// Contexts x ~ N(0, I_d); action `a` pays `⟨w_a, x⟩ + noise_sd · ε`.
///
/// Each step draws d normals for x and one ε, whichever arm is pulled.
///
/// # Examples
/// ```
/// use refit::env::{Environment, LinearContextual};
/// use rand::SeedableRng;
/// let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
/// let mut env = LinearContextual::<f64>::random(10, 8, 0.1, &mut rng)?;
/// let mut x = vec![0.0; 8];
/// env.next_context(&mut rng, &mut x)?;
/// let mut mu = vec![0.0; 10];
/// env.expected_rewards(&mut mu)?;
/// # Ok::<(), refit::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct LinearContextual<F> {
    k: usize,
    d: usize,
    /// Row-major K×d reward weights.
    weights: Vec<F>,
    noise_sd: F,
    x: Vec<F>,
}

impl<F: Real> LinearContextual<F> {
    /// A bandit with the given K×d weight matrix (row `a` is w_a).
    ///
    /// # Errors
    /// [`Error::ZeroActions`], [`Error::ZeroContextDim`], and
    /// [`Error::InvalidParameter`] for non-finite weights or a negative or
    /// non-finite `noise_sd`.
    pub fn new(weights: &Array2<F>, noise_sd: F) -> Result<Self> {
        let (k, d) = weights.dim();
        if k == 0 {
            return Err(Error::ZeroActions);
        }
        if d == 0 {
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
        Ok(Self {
            k,
            d,
            weights: weights.iter().copied().collect(),
            noise_sd,
            x: vec![F::zero(); d],
        })
    }

    /// A bandit with weights w_a ~ N(0, I/d), so that each ⟨w_a, x⟩ has unit variance.
    ///
    /// # Errors
    /// As [`LinearContextual::new`].
    pub fn random<R: Rng + ?Sized>(k: usize, d: usize, noise_sd: F, rng: &mut R) -> Result<Self> {
        let scale = F::one() / F::c(d.max(1) as f64).sqrt();
        let w = super::try_matrix(k, d, || scale * std_normal::<F, R>(rng))?;
        Self::new(&w, noise_sd)
    }

    /// The K×d weight matrix.
    pub fn weights(&self) -> Array2<F> {
        Array2::from_shape_fn((self.k, self.d), |(a, j)| self.weights[a * self.d + j])
    }
}

impl<F: Real> Environment<F> for LinearContextual<F> {
    fn num_actions(&self) -> usize {
        self.k
    }

    fn context_dim(&self) -> usize {
        self.d
    }

    fn next_context<R: Rng + ?Sized>(&mut self, rng: &mut R, out: &mut [F]) -> Result<()> {
        super::draw_normal_context(rng, &mut self.x, out)
    }

    fn expected_rewards(&self, out: &mut [F]) -> Result<()> {
        self.expected_rewards_at(&self.x, out)
    }

    fn expected_rewards_at(&self, x: &[F], out: &mut [F]) -> Result<()> {
        crate::policy::check_context(x, self.d)?;
        check_len("out", out.len(), self.k)?;
        for (o, w) in out.iter_mut().zip(self.weights.chunks_exact(self.d)) {
            *o = dot_plain(w, x);
        }
        Ok(())
    }

    fn validate(&self) -> Result<()> {
        use crate::error::ensure;
        ensure(
            self.k >= 1
                && self.d >= 1
                && self.k.checked_mul(self.d) == Some(self.weights.len())
                && self.x.len() == self.d,
            "linear contextual bandit lengths",
        )?;
        ensure(
            self.weights.iter().chain(&self.x).all(|v| v.is_finite())
                && self.noise_sd.is_finite()
                && self.noise_sd >= F::zero(),
            "linear contextual bandit values",
        )
    }

    fn reward<R: Rng + ?Sized>(&mut self, action: usize, rng: &mut R) -> Result<F> {
        check_action(action, self.k)?;
        let eps: F = std_normal(rng);
        let w = &self.weights[action * self.d..(action + 1) * self.d];
        Ok(dot_plain(w, &self.x) + self.noise_sd * eps)
    }
}

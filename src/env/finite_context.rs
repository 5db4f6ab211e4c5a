//! Bandit with a handful of one-hot contexts.

use ndarray::Array2;
use rand::{Rng, RngExt};

use super::Environment;
use crate::error::{Error, Result};
use crate::policy::{check_action, check_len};
use crate::real::Real;

/// M contexts, each the one-hot vector e_c ∈ R^M, drawn uniformly each step;
/// action `a` in context `c` pays 1 with probability `means[c, a]`, else 0.
///
/// With finitely many contexts, identical (x, a) pairs recur, which is where
/// compressing a history pays. Each step draws the context index and one
/// uniform for the reward, whichever arm is pulled.
///
/// # Examples
/// ```
/// use refit::env::{Environment, FiniteContext};
/// use ndarray::array;
/// let env = FiniteContext::new(&array![[0.1, 0.9], [0.8, 0.2]])?;
/// assert_eq!((env.context_dim(), env.num_actions()), (2, 2));
/// # Ok::<(), refit::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct FiniteContext<F> {
    m: usize,
    k: usize,
    /// Row-major M×K Bernoulli means.
    means: Vec<F>,
    current: usize,
}

impl<F: Real> FiniteContext<F> {
    /// A bandit with the given M×K matrix of Bernoulli means (row c: context c).
    ///
    /// # Errors
    /// [`Error::ZeroContextDim`] for no contexts, [`Error::ZeroActions`] for no
    /// actions, [`Error::InvalidParameter`] for a mean outside [0, 1].
    pub fn new(means: &Array2<F>) -> Result<Self> {
        let (m, k) = means.dim();
        if m == 0 {
            return Err(Error::ZeroContextDim);
        }
        if k == 0 {
            return Err(Error::ZeroActions);
        }
        if let Some(v) = means
            .iter()
            .find(|v| !(**v >= F::zero() && **v <= F::one()))
        {
            return Err(Error::InvalidParameter {
                name: "means",
                value: v.f64(),
                expected: "each mean in [0, 1]",
            });
        }
        Ok(Self {
            m,
            k,
            means: means.iter().copied().collect(),
            current: 0,
        })
    }

    /// A bandit with means drawn uniformly from [0, 1].
    ///
    /// # Errors
    /// As [`FiniteContext::new`].
    pub fn random<R: Rng + ?Sized>(m: usize, k: usize, rng: &mut R) -> Result<Self> {
        let means = super::try_matrix(m, k, || F::c(rng.random::<f64>()))?;
        Self::new(&means)
    }

    /// The M one-hot contexts, one per row: probe contexts that cover the environment.
    pub fn contexts(&self) -> Array2<F> {
        Array2::from_shape_fn(
            (self.m, self.m),
            |(i, j)| if i == j { F::one() } else { F::zero() },
        )
    }

    /// The index of the current context.
    pub fn current(&self) -> usize {
        self.current
    }

    fn row(&self) -> &[F] {
        &self.means[self.current * self.k..(self.current + 1) * self.k]
    }
}

impl<F: Real> Environment<F> for FiniteContext<F> {
    fn num_actions(&self) -> usize {
        self.k
    }

    fn context_dim(&self) -> usize {
        self.m
    }

    fn next_context<R: Rng + ?Sized>(&mut self, rng: &mut R, out: &mut [F]) -> Result<()> {
        if out.len() != self.m {
            return Err(Error::ContextLength {
                expected: self.m,
                got: out.len(),
            });
        }
        self.current = rng.random_range(0..self.m);
        for (j, o) in out.iter_mut().enumerate() {
            *o = if j == self.current {
                F::one()
            } else {
                F::zero()
            };
        }
        Ok(())
    }

    fn expected_rewards(&self, out: &mut [F]) -> Result<()> {
        check_len("out", out.len(), self.k)?;
        out.copy_from_slice(self.row());
        Ok(())
    }

    fn expected_rewards_at(&self, x: &[F], out: &mut [F]) -> Result<()> {
        crate::policy::check_context(x, self.m)?;
        check_len("out", out.len(), self.k)?;
        let ones = x.iter().filter(|v| **v == F::one()).count();
        let zeros = x.iter().filter(|v| **v == F::zero()).count();
        match x.iter().position(|v| *v == F::one()) {
            Some(c) if ones == 1 && zeros + 1 == self.m => {
                out.copy_from_slice(&self.means[c * self.k..(c + 1) * self.k]);
                Ok(())
            }
            _ => Err(Error::InvalidParameter {
                name: "x",
                value: f64::NAN,
                expected: "one of the environment's one-hot contexts",
            }),
        }
    }

    fn validate(&self) -> Result<()> {
        use crate::error::ensure;
        ensure(
            self.m >= 1
                && self.k >= 1
                && self.m.checked_mul(self.k) == Some(self.means.len())
                && self.current < self.m,
            "finite-context bandit shape",
        )?;
        ensure(
            self.means.iter().all(|v| *v >= F::zero() && *v <= F::one()),
            "finite-context bandit means",
        )
    }

    fn reward<R: Rng + ?Sized>(&mut self, action: usize, rng: &mut R) -> Result<F> {
        check_action(action, self.k)?;
        let u = F::c(rng.random::<f64>());
        Ok(if u < self.row()[action] {
            F::one()
        } else {
            F::zero()
        })
    }
}

//! The linear softmax policy, π(a | x) ∝ exp(θ_a · x).

use ndarray::{Array2, ArrayView2};

use super::kernels::{LANES, padded, score};
use super::{
    Normalizer, Policy, check_action, check_context, check_len, hessian_vector, max_abs,
    update_is_finite,
};
use crate::error::{Error, Result};
use crate::real::Real;

/// Linear softmax policy over K actions with d-dimensional contexts:
/// `π(a | x) = exp(θ_a·x − m) / Σ_b exp(θ_b·x − m)`, `m = max_b θ_b·x`.
///
/// θ is stored feature-major with K padded to a multiple of 4 (see
/// [`Policy::probs_len`]), so that every hot loop runs over whole vector blocks.
///
/// # Examples
/// ```
/// use refit::policy::{LinearSoftmax, Policy};
/// let pi = LinearSoftmax::<f64>::new(3, 2)?;
/// let p = pi.probabilities(&[0.5, -1.0])?;
/// assert!((p.iter().sum::<f64>() - 1.0).abs() < 1e-15); // θ = 0: uniform
/// # Ok::<(), refit::Error>(())
/// ```
#[derive(Debug, Clone)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(
    feature = "serde",
    serde(bound = "F: crate::real::Real + serde::Serialize + serde::de::DeserializeOwned")
)]
pub struct LinearSoftmax<F> {
    k: usize,
    d: usize,
    /// K rounded up to a multiple of [`LANES`].
    kp: usize,
    /// θᵀ, d rows of kp: entry (a, j) at j·kp + a; padded entries are 0.
    theta: Vec<F>,
    /// 0 for real actions, −inf for padding.
    #[cfg_attr(feature = "serde", serde(with = "crate::serde_util::bias"))]
    bias: Vec<F>,
    /// An upper bound on max |θ|, kept so that an update can be checked for
    /// overflow in O(d) instead of O(K·d).
    theta_bound: F,
    /// Update coefficients, kp.
    coef: Vec<F>,
}

impl<F: Real> PartialEq for LinearSoftmax<F> {
    fn eq(&self, other: &Self) -> bool {
        self.k == other.k && self.d == other.d && self.theta == other.theta
    }
}

impl<F: Real> LinearSoftmax<F> {
    /// A policy with θ = 0 (uniform over actions).
    ///
    /// # Errors
    /// [`Error::ZeroActions`] if `k = 0`, [`Error::ZeroContextDim`] if `d = 0`,
    /// [`Error::InvalidParameter`] if K·d is too large to allocate.
    pub fn new(k: usize, d: usize) -> Result<Self> {
        if k == 0 {
            return Err(Error::ZeroActions);
        }
        if d == 0 {
            return Err(Error::ZeroContextDim);
        }
        let kp = padded(k);
        let n = kp
            .checked_mul(d)
            .filter(|n| {
                n.checked_mul(std::mem::size_of::<F>())
                    .is_some_and(|b| b <= isize::MAX as usize)
            })
            .ok_or(Error::InvalidParameter {
                name: "k * d",
                value: k as f64 * d as f64,
                expected: "K·d small enough to allocate",
            })?;
        let mut bias = crate::error::try_filled(kp, F::zero(), "k")?;
        for b in &mut bias[k..] {
            *b = F::neg_infinity();
        }
        Ok(Self {
            k,
            d,
            kp,
            theta: crate::error::try_filled(n, F::zero(), "k * d")?,
            bias,
            theta_bound: F::zero(),
            coef: vec![F::zero(); kp],
        })
    }

    /// A policy with the given K×d parameter matrix.
    ///
    /// # Errors
    /// As [`LinearSoftmax::new`], and [`Error::NonFiniteParameter`].
    pub fn from_params(theta: ArrayView2<'_, F>) -> Result<Self> {
        let (k, d) = theta.dim();
        let mut p = Self::new(k, d)?;
        p.set_params(theta)?;
        Ok(p)
    }

    /// θ_{a, j}, the weight of feature `j` for action `a`, or `None` out of range.
    pub fn param(&self, a: usize, j: usize) -> Option<F> {
        (a < self.k && j < self.d).then(|| self.theta[j * self.kp + a])
    }

    /// π(· | x) into a buffer of length kp, unchecked lengths, checked context.
    #[inline]
    fn probs_padded(&self, x: &[F], out: &mut [F]) -> Result<Normalizer<F>> {
        check_context(x, self.d)?;
        crate::simd::logits_softmax_t(&self.theta, &self.bias, x, out).ok_or(Error::NonFiniteLogits)
    }
}

impl<F: Real> Policy<F> for LinearSoftmax<F> {
    fn num_actions(&self) -> usize {
        self.k
    }

    fn context_dim(&self) -> usize {
        self.d
    }

    fn probs_len(&self) -> usize {
        self.kp
    }

    fn params(&self) -> Array2<F> {
        Array2::from_shape_fn((self.k, self.d), |(a, j)| self.theta[j * self.kp + a])
    }

    fn set_params(&mut self, theta: ArrayView2<'_, F>) -> Result<()> {
        if theta.dim() != (self.k, self.d) {
            return Err(Error::Length {
                name: "params",
                expected: self.k * self.d,
                got: theta.len(),
            });
        }
        if let Some((index, v)) = theta.iter().enumerate().find(|(_, v)| !v.is_finite()) {
            return Err(Error::NonFiniteParameter {
                index,
                value: v.f64(),
            });
        }
        for ((a, j), &v) in theta.indexed_iter() {
            self.theta[j * self.kp + a] = v;
        }
        self.theta_bound = max_abs(&self.theta);
        Ok(())
    }

    #[inline]
    fn probabilities_into(&self, x: &[F], out: &mut [F]) -> Result<Normalizer<F>> {
        if out.len() == self.kp {
            return self.probs_padded(x, out);
        }
        check_len("out", out.len(), self.k)?;
        let mut buf = vec![F::zero(); self.kp];
        let norm = self.probs_padded(x, &mut buf)?;
        out.copy_from_slice(&buf[..self.k]);
        Ok(norm)
    }

    fn score_into(&self, x: &[F], action: usize, out: &mut [F]) -> Result<()> {
        check_action(action, self.k)?;
        check_len("out", out.len(), self.k * self.d)?;
        let probs = self.probabilities(x)?;
        score(x, &probs, action, out);
        Ok(())
    }

    fn hessian_vector_into(&self, x: &[F], v: &[F], out: &mut [F]) -> Result<()> {
        check_len("v", v.len(), self.k * self.d)?;
        check_len("out", out.len(), self.k * self.d)?;
        let probs = self.probabilities(x)?;
        let mut u = vec![F::zero(); self.k];
        hessian_vector(x, &probs, v, &mut u, out);
        Ok(())
    }

    #[inline]
    fn add_scaled_score(&mut self, x: &[F], action: usize, probs: &[F], scale: F) -> Result<()> {
        check_context(x, self.d)?;
        check_action(action, self.k)?;
        let padded_probs;
        let probs = if probs.len() == self.kp {
            probs
        } else {
            check_len("probs", probs.len(), self.k)?;
            let mut p = vec![F::zero(); self.kp];
            p[..self.k].copy_from_slice(probs);
            padded_probs = p;
            &padded_probs
        };
        let xmax = max_abs(x);
        if !update_is_finite(self.theta_bound, scale, xmax) {
            // The cheap bound may be loose: tighten it once before refusing.
            self.theta_bound = max_abs(&self.theta);
            if !update_is_finite(self.theta_bound, scale, xmax) {
                return Err(Error::NonFiniteUpdate);
            }
        }
        crate::simd::add_scaled_score_t(&mut self.theta, x, probs, action, scale, &mut self.coef);
        self.theta_bound += scale.abs() * xmax;
        Ok(())
    }

    fn validate(&self) -> Result<()> {
        use crate::error::ensure;
        ensure(self.k >= 1 && self.d >= 1, "policy shape")?;
        ensure(self.kp == padded(self.k), "policy padding")?;
        ensure(
            self.theta.len() == self.kp * self.d
                && self.bias.len() == self.kp
                && self.coef.len() == self.kp,
            "policy buffer lengths",
        )?;
        ensure(
            self.theta.iter().all(|v| v.is_finite()) && self.theta_bound.is_finite(),
            "policy parameters finite",
        )?;
        let pad_ok = self.bias.iter().enumerate().all(|(a, b)| {
            if a < self.k {
                *b == F::zero()
            } else {
                *b == F::neg_infinity()
            }
        }) && self
            .theta
            .chunks_exact(self.kp)
            .all(|row| row[self.k..].iter().all(|v| *v == F::zero()));
        ensure(pad_ok, "policy padding entries")?;
        ensure(
            self.theta_bound >= max_abs(&self.theta),
            "policy parameter bound",
        )
    }

    fn log_prob(&self, x: &[F], action: usize) -> Result<F> {
        check_action(action, self.k)?;
        check_context(x, self.d)?;
        let mut z = vec![F::zero(); self.kp];
        crate::simd::logits_t(&self.theta, x, &mut z);
        let za = z[action];
        let norm = crate::simd::softmax_padded(&mut z, &self.bias).ok_or(Error::NonFiniteLogits)?;
        Ok(za - norm.log_partition())
    }
}

const _: () = assert!(LANES == 4);

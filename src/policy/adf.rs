//! The conditional logit: one feature vector per action, one shared θ.

use super::{Policy, check_action, check_context, check_len, max_abs};
use crate::error::{Error, Result};
use crate::real::Real;

/// Softmax over action-dependent features (the conditional logit of
/// McFadden, the form of Vowpal Wabbit's ADF):
/// `π(a | x) ∝ exp(θ · φ_a(x))`, with one shared θ ∈ R^p.
///
/// A context holds the K feature vectors back to back, `x = [φ_0 | φ_1 |
/// … | φ_{K−1}]`, so its length is K·p; the flat parameters are θ itself.
/// The logits are linear in θ, so every Hessian product is exact.
///
/// # Examples
/// ```
/// use refit::policy::{ActionFeatures, Policy};
/// let mut pi = ActionFeatures::<f64>::new(2, 3)?;
/// pi.set_params(&[1.0, 0.0, -1.0])?;
/// // Action 0 has features [1, 0, 0], action 1 [0, 0, 1]: logits 1 and −1.
/// let p = pi.probabilities(&[1.0, 0.0, 0.0, 0.0, 0.0, 1.0])?;
/// assert!((p[0] / p[1] - 2f64.exp()).abs() < 1e-12);
/// # Ok::<(), refit::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct ActionFeatures<F> {
    k: usize,
    p: usize,
    theta: Vec<F>,
}

impl<F: Real> ActionFeatures<F> {
    /// A policy over `k` actions with `p` features per action, θ = 0 (uniform).
    ///
    /// # Errors
    /// [`Error::ZeroActions`], [`Error::ZeroContextDim`] for p = 0, and
    /// [`Error::TooLarge`] if K, p or the context length K·p is over its
    /// limit ([`crate::limits`]).
    pub fn new(k: usize, p: usize) -> Result<Self> {
        if k == 0 {
            return Err(Error::ZeroActions);
        }
        if p == 0 {
            return Err(Error::ZeroContextDim);
        }
        crate::limits::actions(k)?;
        crate::limits::context_dim(p)?;
        crate::limits::product("context length K·p", k, p, crate::limits::MAX_CONTEXT_DIM)?;
        Ok(Self {
            k,
            p,
            theta: crate::limits::try_filled(p, F::zero(), "p")?,
        })
    }

    /// Number of features per action p (= the number of parameters).
    pub fn features(&self) -> usize {
        self.p
    }

    /// u_a = φ_a · v for every action.
    fn feature_dots(&self, x: &[F], v: &[F], out: &mut [F]) {
        for (o, phi) in out.iter_mut().zip(x.chunks_exact(self.p)) {
            *o = crate::kernels::dot_plain(phi, v);
        }
    }
}

impl<F: Real> Policy<F> for ActionFeatures<F> {
    fn num_actions(&self) -> usize {
        self.k
    }

    fn context_dim(&self) -> usize {
        self.k * self.p
    }

    fn num_params(&self) -> usize {
        self.p
    }

    fn params_into(&self, out: &mut [F]) -> Result<()> {
        check_len("out", out.len(), self.p)?;
        out.copy_from_slice(&self.theta);
        Ok(())
    }

    fn set_params(&mut self, theta: &[F]) -> Result<()> {
        check_len("theta", theta.len(), self.p)?;
        super::check_finite_params(theta)?;
        self.theta.copy_from_slice(theta);
        Ok(())
    }

    fn logits_into(&self, x: &[F], out: &mut [F]) -> Result<()> {
        check_len("x", x.len(), self.k * self.p)?;
        check_len("out", out.len(), self.k)?;
        self.feature_dots(x, &self.theta, out);
        Ok(())
    }

    fn add_logits_vjp(&self, x: &[F], c: &[F], grad: &mut [F]) -> Result<()> {
        check_len("x", x.len(), self.k * self.p)?;
        if c.len() < self.k {
            return Err(Error::Length {
                name: "c",
                expected: self.k,
                got: c.len(),
            });
        }
        check_len("grad", grad.len(), self.p)?;
        for (phi, &ca) in x.chunks_exact(self.p).zip(c) {
            for (g, &f) in grad.iter_mut().zip(phi) {
                *g += ca * f;
            }
        }
        Ok(())
    }

    fn logits_linear(&self) -> bool {
        true
    }

    fn add_scaled_score(&mut self, x: &[F], action: usize, probs: &[F], scale: F) -> Result<()> {
        check_context(x, self.k * self.p)?;
        check_action(action, self.k)?;
        check_len("probs", probs.len(), self.k)?;
        // θ += scale · (φ_a − Σ_b π_b φ_b), checked before it is applied.
        let step = max_abs(x) * scale.abs() * F::c(2.0);
        if !(step.is_finite() && max_abs(&self.theta) + step < F::max_value() * F::c(0.5)) {
            return Err(Error::NonFiniteUpdate);
        }
        for (b, (phi, &pb)) in x.chunks_exact(self.p).zip(probs).enumerate() {
            let cb = scale * (if b == action { F::one() } else { F::zero() } - pb);
            for (t, &f) in self.theta.iter_mut().zip(phi) {
                *t += cb * f;
            }
        }
        Ok(())
    }

    fn add_loglik_neg_hvp(&self, x: &[F], w: &[F], c: F, v: &[F], out: &mut [F]) -> Result<()> {
        let _ = w;
        check_len("v", v.len(), self.p)?;
        check_len("out", out.len(), self.p)?;
        let mut probs = vec![F::zero(); self.k];
        self.probabilities_into(x, &mut probs)?;
        let mut u = vec![F::zero(); self.k];
        self.feature_dots(x, v, &mut u);
        let pu: F = probs.iter().zip(&u).map(|(a, b)| *a * *b).sum();
        for (ua, &pa) in u.iter_mut().zip(&probs) {
            *ua = c * pa * (*ua - pu);
        }
        self.add_logits_vjp(x, &u, out)
    }

    /// c (Σ_a π_a φ_a φ_aᵀ − φ̄ φ̄ᵀ), φ̄ = Σ_a π_a φ_a, in O(K·p²).
    fn add_loglik_neg_hessian(&self, x: &[F], w: &[F], c: F, h: &mut [F]) -> Result<()> {
        let _ = w;
        let p = self.p;
        check_len("h", h.len(), p * p)?;
        let mut probs = vec![F::zero(); self.k];
        self.probabilities_into(x, &mut probs)?;
        let mut mean = vec![F::zero(); p];
        for (phi, &pa) in x.chunks_exact(p).zip(&probs) {
            for (m, &f) in mean.iter_mut().zip(phi) {
                *m += pa * f;
            }
        }
        for i in 0..p {
            for j in 0..=i {
                let second: F = x
                    .chunks_exact(p)
                    .zip(&probs)
                    .map(|(phi, &pa)| pa * phi[i] * phi[j])
                    .sum();
                h[i * p + j] += c * (second - mean[i] * mean[j]);
            }
        }
        Ok(())
    }

    fn validate(&self) -> Result<()> {
        crate::error::ensure(
            self.k >= 1
                && self.p >= 1
                && self.theta.len() == self.p
                && crate::limits::actions(self.k).is_ok()
                && crate::limits::context_dim(self.p).is_ok()
                && crate::limits::product(
                    "context length K·p",
                    self.k,
                    self.p,
                    crate::limits::MAX_CONTEXT_DIM,
                )
                .is_ok(),
            "action-feature policy shape",
        )?;
        crate::error::ensure(
            self.theta.iter().all(|v| v.is_finite()),
            "action-feature policy parameters finite",
        )
    }
}

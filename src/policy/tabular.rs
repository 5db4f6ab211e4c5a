//! The tabular softmax policy: K logits, one state.

use super::{Checked, LinearSoftmax, Normalizer, Policy, Rows, check_context, check_len};
use crate::error::Result;
use crate::real::Real;

/// Softmax over K logits with no state: `π(a) = exp(θ_a − m) / Σ_b exp(θ_b − m)`.
///
/// This is the gradient-bandit policy of Sutton & Barto (2nd ed., §2.8). It
/// takes contexts of length 1, as the plain bandits in [`crate::env`] emit
/// (`x = [1]`); the context is checked to be finite and then ignored: the
/// policy is a [`LinearSoftmax`] with d = 1 evaluated at `x = [1]`, so the two
/// agree exactly there. Its flat parameters are the K logits (p = K).
///
/// # Examples
/// ```
/// use refit::policy::{Policy, Tabular};
/// let mut pi = Tabular::<f64>::new(2)?;
/// pi.set_params(&[0.0, 2.0f64.ln()])?;
/// let p = pi.probabilities(&[1.0])?;
/// assert!((p[1] - 2.0 / 3.0).abs() < 1e-15);
/// # Ok::<(), refit::Error>(())
/// ```
#[derive(Debug, Clone)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(
    feature = "serde",
    serde(bound = "F: crate::real::Real + serde::Serialize + serde::de::DeserializeOwned")
)]
pub struct Tabular<F> {
    inner: LinearSoftmax<F>,
}

impl<F: Real> PartialEq for Tabular<F> {
    fn eq(&self, other: &Self) -> bool {
        self.inner == other.inner
    }
}

impl<F: Real> Tabular<F> {
    /// A uniform policy over `k` actions (θ = 0).
    ///
    /// # Errors
    /// [`crate::Error::ZeroActions`] if `k = 0`.
    pub fn new(k: usize) -> Result<Self> {
        Ok(Self {
            inner: LinearSoftmax::new(k, 1)?,
        })
    }

    /// The same policy as a [`LinearSoftmax`] with d = 1.
    pub fn to_linear(&self) -> LinearSoftmax<F> {
        self.inner.clone()
    }

    /// Checks the context and replaces it by the one state `[1]`.
    #[inline]
    fn state(x: &[F]) -> Result<[F; 1]> {
        check_context(x, 1)?;
        Ok([F::one()])
    }
}

impl<F: Real> Policy<F> for Tabular<F> {
    fn num_actions(&self) -> usize {
        self.inner.num_actions()
    }

    fn context_dim(&self) -> usize {
        1
    }

    fn probs_len(&self) -> usize {
        self.inner.probs_len()
    }

    fn num_params(&self) -> usize {
        self.inner.num_params()
    }

    fn params_into(&self, out: &mut [F]) -> Result<()> {
        self.inner.params_into(out)
    }

    fn set_params(&mut self, theta: &[F]) -> Result<()> {
        self.inner.set_params(theta)
    }

    fn logits_into(&self, _x: &[F], out: &mut [F]) -> Result<()> {
        self.inner.logits_into(&[F::one()], out)
    }

    fn add_logits_vjp(&self, _x: &[F], c: &[F], grad: &mut [F]) -> Result<()> {
        self.inner.add_logits_vjp(&[F::one()], c, grad)
    }

    fn logits_linear(&self) -> bool {
        true
    }

    fn context_free(&self) -> bool {
        true
    }

    fn identity_logits(&self) -> bool {
        true
    }

    #[inline]
    fn probabilities_into(&self, x: &[F], out: &mut [F]) -> Result<Normalizer<F>> {
        self.inner.probabilities_into(&Self::state(x)?, out)
    }

    fn score_into(&self, x: &[F], action: usize, out: &mut [F]) -> Result<()> {
        self.inner.score_into(&Self::state(x)?, action, out)
    }

    fn hessian_vector_into(&self, x: &[F], action: usize, v: &[F], out: &mut [F]) -> Result<()> {
        self.inner
            .hessian_vector_into(&Self::state(x)?, action, v, out)
    }

    fn add_loglik_neg_hvp(&self, _x: &[F], w: &[F], c: F, v: &[F], out: &mut [F]) -> Result<()> {
        self.inner.add_loglik_neg_hvp(&[F::one()], w, c, v, out)
    }

    /// J = I: the lower triangle of C itself.
    fn add_logits_hessian(&self, _x: &[F], c: &[F], h: &mut [F]) -> Result<()> {
        let k = self.num_actions();
        check_len("c", c.len(), k * k)?;
        check_len("h", h.len(), k * k)?;
        for (i, (row, crow)) in h.chunks_exact_mut(k).zip(c.chunks_exact(k)).enumerate() {
            for (o, &v) in row[..=i].iter_mut().zip(crow) {
                *o += v;
            }
        }
        Ok(())
    }

    fn add_loglik_neg_hessian(&self, _x: &[F], w: &[F], c: F, h: &mut [F]) -> Result<()> {
        self.inner.add_loglik_neg_hessian(&[F::one()], w, c, h)
    }

    fn loglik_neg_hessian_pass(&self, rows: Rows<'_, F>, h: &mut [F]) -> Result<()> {
        check_unit_rows(rows)?;
        self.inner.loglik_neg_hessian_pass(rows, h)
    }

    /// The linear pass at x = `[1]` for every row: the rows' stored contexts
    /// must be `[1]`, as [`crate::objective::Dataset`] stores them for a
    /// context-free policy; other rows are an [`crate::Error::InvalidParameter`].
    fn loglik_pass(
        &self,
        rows: Rows<'_, F>,
        grad: &mut [F],
        probs: Option<&mut [F]>,
        scratch: &mut Vec<F>,
    ) -> Result<F> {
        check_unit_rows(rows)?;
        self.inner.loglik_pass(rows, grad, probs, scratch)
    }

    fn loglik_neg_hvp_pass(
        &self,
        rows: Rows<'_, F>,
        probs: Option<&[F]>,
        v: &[F],
        out: &mut [F],
        scratch: &mut Vec<F>,
    ) -> Result<()> {
        check_unit_rows(rows)?;
        self.inner.loglik_neg_hvp_pass(rows, probs, v, out, scratch)
    }

    #[inline]
    fn add_scaled_score(&mut self, x: &[F], action: usize, probs: &[F], scale: F) -> Result<()> {
        self.inner
            .add_scaled_score(&Self::state(x)?, action, probs, scale)
    }

    #[inline]
    fn probabilities_checked(&self, x: Checked<'_, F>, out: &mut [F]) -> Result<Normalizer<F>> {
        check_len("x", x.get().len(), 1)?;
        let one = [F::one()];
        self.inner
            .probabilities_checked(Checked::trusted(&one, F::one()), out)
    }

    #[inline]
    fn add_scaled_score_checked(
        &mut self,
        x: Checked<'_, F>,
        action: usize,
        probs: &[F],
        scale: F,
    ) -> Result<()> {
        check_len("x", x.get().len(), 1)?;
        let one = [F::one()];
        self.inner
            .add_scaled_score_checked(Checked::trusted(&one, F::one()), action, probs, scale)
    }

    fn validate(&self) -> Result<()> {
        crate::error::ensure(self.inner.context_dim() == 1, "tabular policy context")?;
        self.inner.validate()
    }

    fn log_prob(&self, x: &[F], action: usize) -> Result<F> {
        self.inner.log_prob(&Self::state(x)?, action)
    }
}

/// Rows of a context-free policy hold the context `[1]`.
fn check_unit_rows<F: Real>(rows: Rows<'_, F>) -> Result<()> {
    if rows.xs.iter().all(|x| *x == F::one()) {
        Ok(())
    } else {
        Err(crate::Error::InvalidParameter {
            name: "rows",
            value: rows
                .xs
                .iter()
                .copied()
                .find(|x| *x != F::one())
                .map_or(0.0, |x| x.f64()),
            expected: "contexts stored as [1] for a tabular policy",
        })
    }
}

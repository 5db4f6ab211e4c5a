//! The linear softmax policy, π(a | x) ∝ exp(θ_a · x).

use ndarray::{Array2, ArrayView2};

use super::{
    Checked, Normalizer, Policy, Rows, check_action, check_context, check_len, max_abs, row_count,
    update_is_finite,
};
use crate::error::{Error, Result};
use crate::kernels::{LANES, hessian_vector, padded, score};
use crate::real::Real;

/// Linear softmax policy over K actions with d-dimensional contexts:
/// `π(a | x) = exp(θ_a·x − m) / Σ_b exp(θ_b·x − m)`, `m = max_b θ_b·x`.
///
/// Its flat parameters are θ ∈ R^{K×d} row-major: entry a·d + j is the
/// weight of feature j for action a (p = K·d). Inside, θ is stored
/// feature-major with K padded to a multiple of 4 (see
/// [`Policy::probs_len`]), so that every hot loop runs over whole vector
/// blocks; the log-likelihood passes run on that layout directly.
///
/// # Examples
/// ```
/// use refit::policy::{LinearSoftmax, Policy};
/// let pi = LinearSoftmax::<f64>::new(3, 2)?;
/// let p = pi.probabilities(&[0.5, -1.0])?;
/// assert!((p.iter().sum::<f64>() - 1.0).abs() < 1e-15); // θ = 0: uniform
/// # Ok::<(), refit::Error>(())
/// ```
///
/// Saved (feature `serde`) as its plain data — K, d and θ — and read back
/// through [`LinearSoftmax`]'s checks: the shape is checked against the
/// limits of [`crate::limits`] and against θ's length before the derived
/// buffers are built, so a crafted file cannot make it allocate more than
/// the file holds.
#[derive(Debug, Clone)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(
    feature = "serde",
    serde(
        bound = "F: crate::real::Real + serde::Serialize + serde::de::DeserializeOwned",
        try_from = "LinearSoftmaxData<F>",
        into = "LinearSoftmaxData<F>"
    )
)]
pub struct LinearSoftmax<F> {
    k: usize,
    d: usize,
    /// K rounded up to a multiple of [`LANES`].
    kp: usize,
    /// θᵀ, d rows of kp: entry (a, j) at j·kp + a; padded entries are 0.
    theta: Vec<F>,
    /// 0 for real actions, −inf for padding.
    bias: Vec<F>,
    /// An upper bound on max |θ|, kept so that an update can be checked for
    /// overflow in O(d) instead of O(K·d).
    theta_bound: F,
    /// Update coefficients, kp.
    coef: Vec<F>,
}

/// What a [`LinearSoftmax`] saves: K, d and θ in its padded layout.
#[cfg(feature = "serde")]
#[derive(serde::Serialize, serde::Deserialize)]
#[serde(bound = "F: crate::real::Real + serde::Serialize + serde::de::DeserializeOwned")]
struct LinearSoftmaxData<F> {
    k: usize,
    d: usize,
    theta: Vec<F>,
}

#[cfg(feature = "serde")]
impl<F: Real> From<LinearSoftmax<F>> for LinearSoftmaxData<F> {
    fn from(p: LinearSoftmax<F>) -> Self {
        Self {
            k: p.k,
            d: p.d,
            theta: p.theta,
        }
    }
}

#[cfg(feature = "serde")]
impl<F: Real> TryFrom<LinearSoftmaxData<F>> for LinearSoftmax<F> {
    type Error = Error;

    fn try_from(data: LinearSoftmaxData<F>) -> Result<Self> {
        let bad = || crate::error::inconsistent("policy shape");
        let (k, d) = (data.k, data.d);
        if k == 0 || d == 0 || crate::limits::actions(k).is_err() {
            return Err(bad());
        }
        let kp = padded(k);
        if crate::limits::parameters(kp, d).ok() != Some(data.theta.len()) {
            return Err(bad());
        }
        let mut bias = vec![F::zero(); kp];
        for b in &mut bias[k..] {
            *b = F::neg_infinity();
        }
        let p = Self {
            k,
            d,
            kp,
            theta_bound: max_abs(&data.theta),
            theta: data.theta,
            bias,
            coef: vec![F::zero(); kp],
        };
        p.validate()?;
        Ok(p)
    }
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
    /// [`Error::TooLarge`] if K, d or K·d (K rounded up to the lane width)
    /// is over its limit ([`crate::limits`]), [`Error::Allocation`] if the
    /// parameters cannot be allocated.
    pub fn new(k: usize, d: usize) -> Result<Self> {
        if k == 0 {
            return Err(Error::ZeroActions);
        }
        if d == 0 {
            return Err(Error::ZeroContextDim);
        }
        crate::limits::actions(k)?;
        crate::limits::context_dim(d)?;
        // K rounded up to the lane width: below MAX_ACTIONS this cannot wrap.
        let kp = padded(k);
        let n = crate::limits::parameters(kp, d)?;
        let mut bias = crate::limits::try_filled(kp, F::zero(), "k")?;
        for b in &mut bias[k..] {
            *b = F::neg_infinity();
        }
        Ok(Self {
            k,
            d,
            kp,
            theta: crate::limits::try_filled(n, F::zero(), "k * d")?,
            bias,
            theta_bound: F::zero(),
            coef: crate::limits::try_filled(kp, F::zero(), "k")?,
        })
    }

    /// A policy with the given K×d parameter matrix.
    ///
    /// # Errors
    /// As [`LinearSoftmax::new`], and [`Error::NonFiniteParameter`].
    pub fn from_params(theta: ArrayView2<'_, F>) -> Result<Self> {
        let (k, d) = theta.dim();
        let mut p = Self::new(k, d)?;
        let flat: Vec<F> = theta.iter().copied().collect();
        p.set_params(&flat)?;
        Ok(p)
    }

    /// θ as a K×d matrix (row a holds action a's weights).
    pub fn matrix(&self) -> Array2<F> {
        Array2::from_shape_fn((self.k, self.d), |(a, j)| self.theta[j * self.kp + a])
    }

    /// Row-major K×d (flat) → padded feature-major.
    pub(crate) fn flat_to_padded(&self, flat: &[F], out_t: &mut [F]) {
        let (k, d, kp) = (self.k, self.d, self.kp);
        for a in 0..k {
            for j in 0..d {
                out_t[j * kp + a] = flat[a * d + j];
            }
        }
    }

    /// Padded feature-major → row-major K×d (flat).
    pub(crate) fn padded_to_flat(&self, t: &[F], flat: &mut [F]) {
        let (k, d, kp) = (self.k, self.d, self.kp);
        for a in 0..k {
            for j in 0..d {
                flat[a * d + j] = t[j * kp + a];
            }
        }
    }

    /// θ_{a, j}, the weight of feature `j` for action `a`, or `None` out of range.
    pub fn param(&self, a: usize, j: usize) -> Option<F> {
        (a < self.k && j < self.d).then(|| self.theta[j * self.kp + a])
    }

    /// π(· | x) into a buffer of length kp, unchecked lengths, checked context.
    #[inline]
    fn probs_padded(&self, x: &[F], out: &mut [F]) -> Result<Normalizer<F>> {
        check_context(x, self.d)?;
        crate::kernels::logits_softmax_t(&self.theta, &self.bias, x, out)
            .ok_or(Error::NonFiniteLogits)
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

    fn num_params(&self) -> usize {
        self.k * self.d
    }

    fn params_into(&self, out: &mut [F]) -> Result<()> {
        check_len("out", out.len(), self.k * self.d)?;
        self.padded_to_flat(&self.theta, out);
        Ok(())
    }

    fn set_params(&mut self, theta: &[F]) -> Result<()> {
        check_len("theta", theta.len(), self.k * self.d)?;
        super::check_finite_params(theta)?;
        let mut t = std::mem::take(&mut self.theta);
        self.flat_to_padded(theta, &mut t);
        self.theta = t;
        self.theta_bound = max_abs(&self.theta);
        Ok(())
    }

    fn logits_into(&self, x: &[F], out: &mut [F]) -> Result<()> {
        check_len("x", x.len(), self.d)?;
        if out.len() == self.kp {
            crate::kernels::logits_t(&self.theta, x, out);
            return Ok(());
        }
        check_len("out", out.len(), self.k)?;
        let mut z = vec![F::zero(); self.kp];
        crate::kernels::logits_t(&self.theta, x, &mut z);
        out.copy_from_slice(&z[..self.k]);
        Ok(())
    }

    fn add_logits_vjp(&self, x: &[F], c: &[F], grad: &mut [F]) -> Result<()> {
        check_len("x", x.len(), self.d)?;
        if c.len() < self.k {
            return Err(Error::Length {
                name: "c",
                expected: self.k,
                got: c.len(),
            });
        }
        check_len("grad", grad.len(), self.k * self.d)?;
        for (row, &ca) in grad.chunks_exact_mut(self.d).zip(c) {
            for (g, &xj) in row.iter_mut().zip(x) {
                *g += ca * xj;
            }
        }
        Ok(())
    }

    fn logits_linear(&self) -> bool {
        true
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

    fn hessian_vector_into(&self, x: &[F], action: usize, v: &[F], out: &mut [F]) -> Result<()> {
        check_action(action, self.k)?;
        check_len("v", v.len(), self.k * self.d)?;
        check_len("out", out.len(), self.k * self.d)?;
        let probs = self.probabilities(x)?;
        let mut u = vec![F::zero(); self.k];
        hessian_vector(x, &probs, v, &mut u, out);
        Ok(())
    }

    #[inline]
    fn add_scaled_score(&mut self, x: &[F], action: usize, probs: &[F], scale: F) -> Result<()> {
        self.add_scaled_score_checked(Checked::new(x, self.d)?, action, probs, scale)
    }

    #[inline]
    fn probabilities_checked(&self, x: Checked<'_, F>, out: &mut [F]) -> Result<Normalizer<F>> {
        let x = x.get();
        // Checked for some d: only the length remains to be seen.
        check_len("x", x.len(), self.d)?;
        if out.len() == self.kp {
            return crate::kernels::logits_softmax_t(&self.theta, &self.bias, x, out)
                .ok_or(Error::NonFiniteLogits);
        }
        self.probabilities_into(x, out)
    }

    #[inline]
    fn add_scaled_score_checked(
        &mut self,
        x: Checked<'_, F>,
        action: usize,
        probs: &[F],
        scale: F,
    ) -> Result<()> {
        // Checked for some d: only the length remains to be seen.
        let (xmax, x) = (x.max_abs(), x.get());
        check_len("x", x.len(), self.d)?;
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
        if !update_is_finite(self.theta_bound, scale, xmax) {
            // The cheap bound may be loose: tighten it once before refusing
            // (and keep the tighter bound only if the update goes ahead: a
            // refused update changes nothing).
            let tight = max_abs(&self.theta);
            if !update_is_finite(tight, scale, xmax) {
                return Err(Error::NonFiniteUpdate);
            }
            self.theta_bound = tight;
        }
        crate::kernels::add_scaled_score_t(
            &mut self.theta,
            x,
            probs,
            action,
            scale,
            &mut self.coef,
        );
        self.theta_bound += scale.abs() * xmax;
        Ok(())
    }

    fn add_loglik_neg_hessian(&self, x: &[F], w: &[F], c: F, h: &mut [F]) -> Result<()> {
        let _ = w;
        check_context(x, self.d)?;
        let (k, kp) = (self.k, self.kp);
        check_len("h", h.len(), (k * self.d) * (k * self.d))?;
        let mut scratch = vec![F::zero(); kp + k * (k + 1) / 2 + self.d];
        if crate::kernels::neg_hessian_rows(&self.theta, &self.bias, x, &[c], k, h, &mut scratch) {
            Ok(())
        } else {
            Err(Error::NonFiniteLogits)
        }
    }

    fn probabilities_rows(&self, xs: &[F], out: &mut [F]) -> Result<()> {
        let (d, kp) = (self.d, self.kp);
        row_count(("xs", xs.len(), d), ("out", out.len(), kp))?;
        if let Some(i) = xs.iter().position(|v| !v.is_finite()) {
            return Err(Error::NonFiniteContext {
                index: i % d,
                value: xs[i].f64(),
            });
        }
        if crate::kernels::logits_softmax_rows(&self.theta, &self.bias, xs, out) {
            Ok(())
        } else {
            Err(Error::NonFiniteLogits)
        }
    }

    fn logits_rows(&self, xs: &[F], out: &mut [F]) -> Result<()> {
        let (d, kp) = (self.d, self.kp);
        row_count(("xs", xs.len(), d), ("out", out.len(), kp))?;
        crate::kernels::logits_rows(&self.theta, xs, out, kp);
        Ok(())
    }

    /// Σ_i x_i ⊗ c_i added in the padded feature-major layout (each block
    /// of the gradient in registers over the rows), then to `grad`.
    fn add_logits_vjp_rows(&self, xs: &[F], cs: &[F], grad: &mut [F]) -> Result<()> {
        let (k, d, kp) = (self.k, self.d, self.kp);
        row_count(("xs", xs.len(), d), ("cs", cs.len(), kp))?;
        check_len("grad", grad.len(), k * d)?;
        let mut acc = crate::limits::try_filled(kp * d, F::zero(), "gradient")?;
        crate::kernels::add_outer_batch_t(&mut acc, xs, cs, kp);
        for (a, row) in grad.chunks_exact_mut(d).enumerate() {
            for (j, g) in row.iter_mut().enumerate() {
                *g += acc[j * kp + a];
            }
        }
        Ok(())
    }

    /// C ⊗ x xᵀ: entry (a·d + i, b·d + j) += C_ab x_i x_j.
    fn add_logits_hessian(&self, x: &[F], c: &[F], h: &mut [F]) -> Result<()> {
        let (k, d) = (self.k, self.d);
        check_len("x", x.len(), d)?;
        check_len("c", c.len(), k * k)?;
        let p = k * d;
        check_len("h", h.len(), p * p)?;
        for a in 0..k {
            for i in 0..d {
                let row = &mut h[(a * d + i) * p..(a * d + i + 1) * p];
                let xi = x[i];
                // Columns b·d + j ≤ a·d + i: actions b < a whole, b = a up to i.
                for b in 0..=a {
                    let cx = c[a * k + b] * xi;
                    let end = if b == a { i + 1 } else { d };
                    for (o, &xj) in row[b * d..b * d + end].iter_mut().zip(x) {
                        *o += cx * xj;
                    }
                }
            }
        }
        Ok(())
    }

    fn add_logits_hessian_rows(
        &self,
        xs: &[F],
        cs: &[F],
        h: &mut [F],
        scratch: &mut Vec<F>,
    ) -> Result<()> {
        let (k, d) = (self.k, self.d);
        let p = k * d;
        let pairs = k * (k + 1) / 2;
        let rows = row_count(("cs", cs.len(), pairs), ("xs", xs.len(), d))?;
        check_len("h", h.len(), p * p)?;
        if rows == 0 {
            return Ok(());
        }
        // Z: the products x_i x_j (i ≤ j) of each row, padded to tp; C:
        // each row's packed lower triangle, padded to a multiple of 4
        // pairs; G = Cᵀ Z.
        let tri = d * (d + 1) / 2;
        let tp = tri.div_ceil(12) * 12;
        let nq = pairs.div_ceil(4) * 4;
        let zlen = crate::limits::product("Hessian rows", rows, tp, crate::limits::MAX_PARAMETERS)?;
        let clen = crate::limits::product("Hessian rows", rows, nq, crate::limits::MAX_PARAMETERS)?;
        let need = zlen + clen + nq * tp;
        if scratch.len() < need {
            crate::limits::try_reserve_to(scratch, need, "Hessian rows")?;
            scratch.resize(need, F::zero());
        }
        let (z, rest) = scratch.split_at_mut(zlen);
        let (ct, rest) = rest.split_at_mut(clen);
        let g = &mut rest[..nq * tp];
        for (((x, zr), cr), c) in xs
            .chunks_exact(d)
            .zip(z.chunks_exact_mut(tp))
            .zip(ct.chunks_exact_mut(nq))
            .zip(cs.chunks_exact(pairs))
        {
            let mut t = 0;
            for (i, &xi) in x.iter().enumerate() {
                for &xj in &x[i..] {
                    zr[t] = xi * xj;
                    t += 1;
                }
            }
            zr[tri..].iter_mut().for_each(|v| *v = F::zero());
            cr[..pairs].copy_from_slice(c);
            cr[pairs..].iter_mut().for_each(|v| *v = F::zero());
        }
        crate::kernels::gram_product(ct, z, rows, nq, tp, 0, g);
        // Block (a, b), a ≥ b, of the lower triangle: entry (i, j) is
        // G_ab[min(i, j), max(i, j)]; within a diagonal block j ≤ i only.
        let tri_index = |i: usize, j: usize| i * d - i * i.saturating_sub(1) / 2 + (j - i);
        let mut q = 0;
        for a in 0..k {
            for b in 0..=a {
                let gab = &g[q * tp..q * tp + tri];
                for i in 0..d {
                    let row = &mut h[(a * d + i) * p + b * d..(a * d + i) * p + b * d + d];
                    let end = if b == a { i + 1 } else { d };
                    for (j, o) in row[..end].iter_mut().enumerate() {
                        let (lo, hi) = if i <= j { (i, j) } else { (j, i) };
                        *o += gab[tri_index(lo, hi)];
                    }
                }
                q += 1;
            }
        }
        Ok(())
    }

    fn loglik_neg_hessian_pass(&self, rows: Rows<'_, F>, h: &mut [F]) -> Result<()> {
        let (k, d, kp) = (self.k, self.d, self.kp);
        let n = k * d;
        check_len("h", h.len(), n * n)?;
        check_len("rows", rows.xs.len(), rows.len() * d)?;
        let mut scratch = vec![F::zero(); crate::kernels::neg_hessian_scratch_len(k, kp, d)];
        if crate::kernels::neg_hessian_rows(
            &self.theta,
            &self.bias,
            rows.xs,
            rows.cs,
            k,
            h,
            &mut scratch,
        ) {
            Ok(())
        } else {
            Err(Error::NonFiniteLogits)
        }
    }

    fn loglik_pass(
        &self,
        rows: Rows<'_, F>,
        grad: &mut [F],
        probs: Option<&mut [F]>,
        scratch: &mut Vec<F>,
    ) -> Result<F> {
        let (kp, d) = (self.kp, self.d);
        check_len("grad", grad.len(), self.k * d)?;
        check_len("stride", rows.stride, kp)?;
        check_len("rows", rows.xs.len(), rows.len() * d)?;
        check_len("rows", rows.ws.len(), rows.len() * kp)?;
        if let Some(p) = &probs {
            check_len("probs", p.len(), rows.len() * kp)?;
        }
        let batch = crate::kernels::BATCH * kp;
        scratch.resize(kp * d + 2 * batch, F::zero());
        let (grad_t, zr) = scratch.split_at_mut(kp * d);
        let (z, r) = zr.split_at_mut(batch);
        grad_t.iter_mut().for_each(|g| *g = F::zero());
        self.flat_to_padded(grad, grad_t);
        let value = crate::kernels::loglik_pass(
            &self.theta,
            &self.bias,
            rows.xs,
            rows.ws,
            rows.cs,
            grad_t,
            probs,
            z,
            r,
        )
        .ok_or(Error::NonFiniteLogits)?;
        self.padded_to_flat(grad_t, grad);
        Ok(value)
    }

    fn loglik_neg_hvp_pass(
        &self,
        rows: Rows<'_, F>,
        probs: Option<&[F]>,
        v: &[F],
        out: &mut [F],
        scratch: &mut Vec<F>,
    ) -> Result<()> {
        let (kp, d) = (self.kp, self.d);
        let n = self.k * d;
        check_len("v", v.len(), n)?;
        check_len("out", out.len(), n)?;
        check_len("stride", rows.stride, kp)?;
        check_len("rows", rows.xs.len(), rows.len() * d)?;
        let Some(probs) = probs.filter(|p| p.len() == rows.len() * kp) else {
            // No stored probabilities: row by row.
            return super::neg_hvp_rows(self, rows, v, out);
        };
        scratch.resize(2 * kp * d + kp, F::zero());
        let (v_t, rest) = scratch.split_at_mut(kp * d);
        let (out_t, u) = rest.split_at_mut(kp * d);
        v_t.iter_mut().for_each(|g| *g = F::zero());
        out_t.iter_mut().for_each(|g| *g = F::zero());
        self.flat_to_padded(v, v_t);
        self.flat_to_padded(out, out_t);
        crate::kernels::neg_hess_vec_pass(v_t, rows.xs, rows.cs, probs, out_t, u);
        self.padded_to_flat(out_t, out);
        Ok(())
    }

    fn add_loglik_neg_hvp(&self, x: &[F], w: &[F], c: F, v: &[F], out: &mut [F]) -> Result<()> {
        let _ = w;
        let n = self.k * self.d;
        check_len("v", v.len(), n)?;
        check_len("out", out.len(), n)?;
        let mut probs = vec![F::zero(); self.kp];
        self.probs_padded(x, &mut probs)?;
        let mut u = vec![F::zero(); self.k];
        let mut hv = vec![F::zero(); n];
        hessian_vector(x, &probs[..self.k], v, &mut u, &mut hv);
        for (o, h) in out.iter_mut().zip(&hv) {
            *o -= c * *h;
        }
        Ok(())
    }

    fn validate(&self) -> Result<()> {
        use crate::error::ensure;
        ensure(
            self.k >= 1
                && self.d >= 1
                && crate::limits::actions(self.k).is_ok()
                && crate::limits::context_dim(self.d).is_ok(),
            "policy shape",
        )?;
        ensure(self.kp == padded(self.k), "policy padding")?;
        ensure(
            crate::limits::parameters(self.kp, self.d).ok() == Some(self.theta.len())
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
        crate::kernels::logits_t(&self.theta, x, &mut z);
        let za = z[action];
        let norm =
            crate::kernels::softmax_padded(&mut z, &self.bias).ok_or(Error::NonFiniteLogits)?;
        Ok(za - norm.log_partition())
    }
}

const _: () = assert!(LANES == 4);

//! The per-action ridge reward model the exploration baselines share.

use crate::error::{Error, Result, ensure, inconsistent};
use crate::policy::{check_action, check_context, check_len};
use crate::real::Real;

/// A per-action ("disjoint") ridge regression of the reward on the
/// context: for each action a, with the points (x, r) where a was taken,
///
/// A_a = λI + Σ x xᵀ,  b_a = Σ r x,  θ_a = A_a⁻¹ b_a,
///
/// the posterior mean of a Gaussian linear model with prior N(0, I/λ).
/// It keeps A_a⁻¹ by Sherman–Morrison rank-one updates and θ_a by the
/// matching recursive least-squares step, so an update costs O(d²), a
/// prediction θ_aᵀx O(d) and its width √(xᵀA_a⁻¹x) O(d²). Once a width
/// is asked for, it also keeps the upper triangles of the A_a⁻¹ packed
/// side by side (entry (i ≤ j) of every action next to each other), so
/// the K widths are one pass over d(d + 1)/2 entries with all actions in
/// vector registers. This is the
/// reward model of LinUCB, LinTS, ε-greedy and SquareCB's oracle
/// ([`super::LinUcb`], [`super::LinTs`], [`super::EpsilonGreedy`],
/// [`super::SquareCb`]); with contexts of length 1 equal to 1 it is the
/// shrunk per-arm mean, r̄_a · n_a / (n_a + λ).
///
/// # Examples
/// ```
/// use refit::learner::Ridge;
/// let mut m = Ridge::<f64>::new(2, 1, 1.0)?;
/// m.update(&[1.0], 0, 1.0)?;
/// m.update(&[1.0], 0, 1.0)?;
/// let mut mean = [0.0; 2];
/// m.means_into(&[1.0], &mut mean)?;
/// assert!((mean[0] - 2.0 / 3.0).abs() < 1e-15); // Σr / (n + λ)
/// assert_eq!(mean[1], 0.0);
/// # Ok::<(), refit::Error>(())
/// ```
#[derive(Debug, Clone)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Ridge<F> {
    k: usize,
    d: usize,
    lambda: F,
    /// A_a⁻¹, K blocks of d×d, row-major (exactly symmetric).
    a_inv: Vec<F>,
    /// θ_a = A_a⁻¹ b_a, K×d row-major.
    theta: Vec<F>,
    /// Points per action.
    counts: Vec<u64>,
    /// Where an update works before it is committed (not saved).
    #[cfg_attr(feature = "serde", serde(skip))]
    work: Vec<F>,
    /// The upper triangles of the A_a⁻¹ side by side for the widths, built
    /// by [`Ridge::widths_scratch`] and kept up to date from then on (not
    /// saved): entry (i ≤ j) of action a at `p(i, j)·kp + a`, p numbering
    /// the upper triangle row by row, kp = K rounded up to 4.
    #[cfg_attr(feature = "serde", serde(skip))]
    packed: Vec<F>,
}

/// Equality of the model (λ, A⁻¹, θ and the counts), not of its scratch.
impl<F: PartialEq> PartialEq for Ridge<F> {
    fn eq(&self, other: &Self) -> bool {
        self.k == other.k
            && self.d == other.d
            && self.lambda == other.lambda
            && self.a_inv == other.a_inv
            && self.theta == other.theta
            && self.counts == other.counts
    }
}

/// The sizes of a model of K actions over contexts of length d, K·d and
/// K·d², checked against the limits.
fn sizes(k: usize, d: usize) -> Result<(usize, usize)> {
    crate::limits::actions(k)?;
    crate::limits::context_dim(d)?;
    let kd = crate::limits::parameters(k, d)?;
    let kdd = crate::limits::product(
        "ridge model entries K·d²",
        kd,
        d,
        crate::limits::MAX_PARAMETERS,
    )?;
    Ok((kd, kdd))
}

impl<F: Real> Ridge<F> {
    /// A model of `k` actions over contexts of length `d` with prior
    /// precision `lambda` (θ_a = 0 before any point).
    ///
    /// # Errors
    /// [`Error::ZeroActions`], [`Error::ZeroContextDim`],
    /// [`Error::InvalidLambda`] unless λ and 1/λ are finite and λ > 0
    /// (A_a must be invertible, A_a⁻¹ = I/λ finite), [`Error::TooLarge`] if K·d² is above
    /// [`crate::limits::MAX_PARAMETERS`], [`Error::Allocation`].
    pub fn new(k: usize, d: usize, lambda: F) -> Result<Self> {
        if k == 0 {
            return Err(Error::ZeroActions);
        }
        if d == 0 {
            return Err(Error::ZeroContextDim);
        }
        let (kd, kdd) = sizes(k, d)?;
        // A⁻¹ = I/λ must be finite too: a subnormal λ would make it ∞.
        let inv = F::one() / lambda;
        if !(lambda.is_finite() && lambda > F::zero() && inv.is_finite()) {
            return Err(Error::InvalidLambda {
                value: lambda.f64(),
            });
        }
        let mut a_inv = crate::limits::try_filled(kdd, F::zero(), "ridge model")?;
        for block in a_inv.chunks_exact_mut(d * d) {
            block.iter_mut().step_by(d + 1).for_each(|v| *v = inv);
        }
        Ok(Self {
            k,
            d,
            lambda,
            a_inv,
            theta: crate::limits::try_filled(kd, F::zero(), "ridge model")?,
            counts: crate::limits::try_filled(k, 0, "ridge model")?,
            work: crate::limits::try_filled(2 * d, F::zero(), "ridge model")?,
            packed: Vec::new(),
        })
    }

    /// Number of actions K.
    pub fn num_actions(&self) -> usize {
        self.k
    }

    /// Context length d.
    pub fn context_dim(&self) -> usize {
        self.d
    }

    /// The prior precision λ.
    pub fn lambda(&self) -> F {
        self.lambda
    }

    /// Points learned per action.
    pub fn counts(&self) -> &[u64] {
        &self.counts
    }

    /// θ, K×d row-major: θ_a = A_a⁻¹ b_a.
    pub fn theta(&self) -> &[F] {
        &self.theta
    }

    /// A_a⁻¹ of action `a`, d×d row-major.
    ///
    /// # Errors
    /// [`Error::ActionOutOfRange`].
    pub fn inverse(&self, a: usize) -> Result<&[F]> {
        check_action(a, self.k)?;
        let dd = self.d * self.d;
        Ok(&self.a_inv[a * dd..(a + 1) * dd])
    }

    /// The predicted rewards θ_aᵀx of every action into `out` (length K).
    ///
    /// # Errors
    /// [`Error::ContextLength`], [`Error::NonFiniteContext`],
    /// [`Error::Length`] for `out`.
    pub fn means_into(&self, x: &[F], out: &mut [F]) -> Result<()> {
        check_context(x, self.d)?;
        check_len("out", out.len(), self.k)?;
        self.means_unchecked(x, out);
        Ok(())
    }

    /// The widths ‖x‖ in A_a⁻¹, √(xᵀA_a⁻¹x), of every action into `out`
    /// (length K): the posterior standard deviation of θ_aᵀx per unit of
    /// noise.
    ///
    /// # Errors
    /// As [`Ridge::means_into`].
    pub fn widths_into(&self, x: &[F], out: &mut [F]) -> Result<()> {
        check_context(x, self.d)?;
        check_len("out", out.len(), self.k)?;
        let (mut model, mut scratch) = (self.clone(), Vec::new());
        model.widths_scratch(&mut scratch)?;
        model.widths_with(x, &mut scratch, out);
        Ok(())
    }

    /// θ_aᵀx for every a, `x` of length d and `out` of length K.
    #[inline]
    pub(crate) fn means_unchecked(&self, x: &[F], out: &mut [F]) {
        crate::kernels::ridge_means(&self.theta, x, out);
    }

    /// Sizes `scratch` for [`Ridge::widths_with`] (d(d + 1)/2 + kp), and
    /// packs the upper triangles if they are not there yet (after
    /// construction or a checkpoint; the updates keep them from then on).
    pub(crate) fn widths_scratch(&mut self, scratch: &mut Vec<F>) -> Result<()> {
        let (d, kp) = (self.d, crate::kernels::padded(self.k));
        let tri = d * (d + 1) / 2;
        let need = tri + kp;
        if scratch.len() != need {
            crate::limits::try_reserve_to(scratch, need, "ridge model")?;
            scratch.resize(need, F::zero());
        }
        if self.packed.len() != tri * kp {
            let mut packed = crate::limits::try_filled(tri * kp, F::zero(), "ridge model")?;
            for (a, block) in self.a_inv.chunks_exact(d * d).enumerate() {
                let mut p = 0;
                for (i, row) in block.chunks_exact(d).enumerate() {
                    for &v in &row[i..] {
                        packed[p * kp + a] = v;
                        p += 1;
                    }
                }
            }
            self.packed = packed;
        }
        Ok(())
    }

    /// √(xᵀA_a⁻¹x) for every a, with `scratch` sized by
    /// [`Ridge::widths_scratch`]: one pass over the packed triangles, all
    /// K actions side by side (the logits kernel with the entries of x xᵀ
    /// as features, off-diagonal ones doubled).
    #[inline]
    pub(crate) fn widths_with(&self, x: &[F], scratch: &mut [F], out: &mut [F]) {
        let (xx, z) = scratch.split_at_mut(self.d * (self.d + 1) / 2);
        crate::kernels::ridge_widths(&self.packed, x, xx, z, out);
    }

    /// Adds the point (x, r) to action `a`'s regression.
    ///
    /// # Errors
    /// [`Error::ContextLength`], [`Error::NonFiniteContext`],
    /// [`Error::ActionOutOfRange`], [`Error::NonFiniteReward`], and
    /// [`Error::NonFiniteUpdate`] if the new A_a⁻¹ or θ_a would not be
    /// finite or A_a⁻¹ would lose its positive diagonal to rounding; the
    /// model is then unchanged.
    pub fn update(&mut self, x: &[F], a: usize, r: F) -> Result<()> {
        check_context(x, self.d)?;
        check_action(a, self.k)?;
        if !r.is_finite() {
            return Err(Error::NonFiniteReward { value: r.f64() });
        }
        self.update_unchecked(x, a, r)
    }

    /// [`Ridge::update`] with the context, action and reward already checked.
    pub(crate) fn update_unchecked(&mut self, x: &[F], a: usize, r: F) -> Result<()> {
        let d = self.d;
        if self.work.len() != 2 * d {
            crate::limits::try_reserve_to(&mut self.work, 2 * d, "ridge model")?;
            self.work.resize(2 * d, F::zero());
        }
        let dd = d * d;
        let ok = crate::kernels::ridge_update(
            &mut self.a_inv[a * dd..(a + 1) * dd],
            &mut self.theta[a * d..(a + 1) * d],
            x,
            r,
            &mut self.work,
            &mut self.packed,
            crate::kernels::padded(self.k),
            a,
        );
        if !ok {
            return Err(Error::NonFiniteUpdate);
        }
        self.counts[a] += 1;
        Ok(())
    }

    /// Checks the invariants, as after reading the model from a checkpoint:
    /// sizes (before anything is indexed), λ, finiteness, and the symmetry
    /// and positive diagonals of the A_a⁻¹.
    pub(crate) fn validate(&self) -> Result<()> {
        ensure(self.k > 0 && self.d > 0, "ridge model sizes")?;
        let (kd, kdd) = sizes(self.k, self.d).map_err(|_| inconsistent("ridge model sizes"))?;
        ensure(
            self.a_inv.len() == kdd && self.theta.len() == kd && self.counts.len() == self.k,
            "ridge model lengths",
        )?;
        ensure(
            self.lambda.is_finite()
                && self.lambda > F::zero()
                && (F::one() / self.lambda).is_finite(),
            "ridge lambda",
        )?;
        ensure(
            crate::kernels::all_finite(&self.a_inv) && crate::kernels::all_finite(&self.theta),
            "ridge model finite",
        )?;
        let d = self.d;
        ensure(
            self.a_inv.chunks_exact(d * d).all(|m| {
                (0..d).all(|i| {
                    m[i * d + i] > F::zero() && (0..i).all(|j| m[i * d + j] == m[j * d + i])
                })
            }),
            "ridge inverse symmetric with a positive diagonal",
        )
    }
}

//! Softmax policies over K actions, as one model over flat parameters
//! (docs/ARCHITECTURE.md, "Policies").
//!
//! A policy is π_θ(a | x) = softmax(z_θ(x))_a for logits z_θ(x) ∈ R^K and
//! parameters θ ∈ R^p, a flat vector in the policy's own documented
//! layout. The [`Policy`] trait asks for the few things that define a
//! policy — K, p, the context length, θ, the logits, and the
//! vector–Jacobian product of the logits — and provides the rest
//! (probabilities, log-probabilities, the score, the REINFORCE update, the
//! Hessian-vector product, and the passes of the log-likelihood objective),
//! which a policy may override with faster code.
//!
//! * [`LinearSoftmax`]: z = θ x with θ ∈ R^{K×d} (flat row-major, entry a·d + j);
//! * [`Tabular`]: K logits and no context (the d = 1 linear policy at x = `[1]`);
//! * [`ActionFeatures`]: the conditional logit, z_a = θ · φ_a(x) with one
//!   feature vector per action and one shared θ ∈ R^p (Vowpal Wabbit's
//!   action-dependent features).
//!
//! The helpers a user's own policy or learner needs are public here:
//! [`check_context`], [`check_action`], [`check_len`], [`sample_action`],
//! and [`Checked`], a context checked once for an act and its learn.

mod adf;
mod fixed;
mod linear;
mod planner;
mod tabular;

pub use crate::kernels::Normalizer;
pub use adf::ActionFeatures;
pub use fixed::Fixed;
pub use linear::LinearSoftmax;
pub use planner::{BETA, Planner, W_CUE, W_GOAL, alignment, soft_value_iteration};
pub use tabular::Tabular;

/// A context checked once: its length is the policy's d and every entry
/// is finite. [`Policy::probabilities_checked`] and
/// [`Policy::add_scaled_score_checked`] take it and skip checking again,
/// so that an interaction (an `act`, then a `learn` on the same context)
/// is validated once. It also carries max_j |x_j|, which bounds the size
/// of an update.
///
/// # Examples
/// ```
/// use refit::policy::{Checked, LinearSoftmax, Policy};
/// let mut pi = LinearSoftmax::<f64>::new(3, 2)?;
/// let x = Checked::new(&[0.5, -1.0], pi.context_dim())?;
/// let mut p = vec![0.0; pi.probs_len()];
/// pi.probabilities_checked(x, &mut p)?;
/// pi.add_scaled_score_checked(x, 1, &p, 0.1)?;
/// assert!(Checked::new(&[0.5, f64::NAN], 2).is_err());
/// # Ok::<(), refit::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Checked<'a, F> {
    x: &'a [F],
    max_abs: F,
}

impl<'a, F: Real> Checked<'a, F> {
    /// Checks `x` as a context of dimension `d`.
    ///
    /// # Errors
    /// [`Error::ContextLength`] and [`Error::NonFiniteContext`], as
    /// [`check_context`].
    #[inline]
    pub fn new(x: &'a [F], d: usize) -> Result<Self> {
        check_context(x, d)?;
        Ok(Self {
            x,
            max_abs: max_abs(x),
        })
    }

    /// A context the caller knows to be checked, with its max |x_j|.
    #[inline]
    pub(crate) fn trusted(x: &'a [F], max_abs: F) -> Self {
        Self { x, max_abs }
    }

    /// The context.
    #[inline]
    pub fn get(&self) -> &'a [F] {
        self.x
    }

    /// max_j |x_j|.
    #[inline]
    pub fn max_abs(&self) -> F {
        self.max_abs
    }
}

pub(crate) use crate::kernels::sample;

/// Turns logits into probabilities in place, never exponentiating an
/// unshifted logit: `z_a ← exp(z_a − m) / Σ_b exp(z_b − m)` with `m = max_b z_b`.
/// Returns the normalizer, so that `log π(a) = z_a − normalizer.log_partition()`.
///
/// Returns `None` (and leaves `z` holding unspecified values) when the logits
/// hold a NaN or +inf, or are all −inf, so that no NaN probability escapes.
/// A −inf logit beside finite ones gets probability 0.
///
/// # Examples
/// ```
/// let mut z = [1000.0f64, 1000.0];
/// let norm = refit::policy::softmax_in_place(&mut z).expect("finite logits");
/// assert_eq!(z, [0.5, 0.5]);
/// assert!((norm.log_partition() - (1000.0 + 2f64.ln())).abs() < 1e-12);
/// ```
#[inline]
pub fn softmax_in_place<F: Real>(z: &mut [F]) -> Option<Normalizer<F>> {
    crate::kernels::softmax_in_place(z)
}

/// Draws an action from the probabilities `probs` with one uniform draw
/// (inverse CDF), as the crate's learners do. Never panics: entries past a
/// total of 1 (rounding) fall to the last action with positive probability;
/// an empty or all-zero `probs` gives action 0.
///
/// # Examples
/// ```
/// use rand::SeedableRng;
/// let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
/// let a = refit::policy::sample_action(&[0.0f64, 1.0, 0.0], &mut rng);
/// assert_eq!(a, 1);
/// ```
#[inline]
pub fn sample_action<F: Real, R: Rng + ?Sized>(probs: &[F], rng: &mut R) -> usize {
    sample(probs, rng)
}

use rand::Rng;

use crate::error::{Error, Result};
use crate::real::Real;

/// The compressed rows of a log-likelihood pass (see
/// [`crate::objective::Dataset`]): row i has context `xs[i·d..(i+1)·d]`,
/// per-action weights `ws[i·stride..i·stride + K]` (entries past K are 0)
/// and total weight `cs[i] = Σ_a W_ia`.
#[derive(Debug, Clone, Copy)]
pub struct Rows<'a, F> {
    /// Contexts, rows × d.
    pub xs: &'a [F],
    /// Action weights, rows × stride.
    pub ws: &'a [F],
    /// Row totals.
    pub cs: &'a [F],
    /// Length of a row of `ws` (K rounded up to a multiple of 4).
    pub stride: usize,
}

impl<'a, F: Real> Rows<'a, F> {
    /// Number of rows.
    pub fn len(&self) -> usize {
        self.cs.len()
    }

    /// Whether there are no rows.
    pub fn is_empty(&self) -> bool {
        self.cs.is_empty()
    }

    /// Row `i`: (context, action weights of length `stride`, total), or
    /// `None` past the end.
    pub fn get(&self, i: usize) -> Option<(&'a [F], &'a [F], F)> {
        let d = self.xs.len().checked_div(self.cs.len())?;
        Some((
            self.xs.get(i * d..(i + 1) * d)?,
            self.ws.get(i * self.stride..(i + 1) * self.stride)?,
            *self.cs.get(i)?,
        ))
    }
}

/// A stochastic softmax policy π_θ(a | x) over `num_actions()` actions,
/// differentiable in its flat parameter vector θ.
///
/// # Implementing a policy
/// Seven methods define a policy: [`Policy::num_actions`],
/// [`Policy::context_dim`], [`Policy::num_params`], [`Policy::params_into`],
/// [`Policy::set_params`], [`Policy::logits_into`] and
/// [`Policy::add_logits_vjp`]. Everything else is provided: probabilities,
/// log-probabilities, the score, the REINFORCE update (used by
/// [`crate::learner::Incremental`]) and the Hessian-vector product and
/// log-likelihood passes (used by [`crate::learner::Refit`] and
/// [`crate::solve::fit`]). The provided Hessian-vector products take
/// central differences of exact gradients; a policy whose logits are linear
/// in θ should override [`Policy::logits_linear`] to make them exact.
///
/// The two logit methods receive contexts already checked by
/// [`check_context`] (length `context_dim()`, finite): the provided
/// methods check before they call them. They check their other lengths,
/// return an [`Error`] instead of panicking, and change nothing on failure.
///
/// # Examples
/// A user's own policy: one logit per action, θ_a plus a shared slope on
/// the one context feature.
/// ```
/// use refit::policy::{check_len, Policy};
/// use refit::Result;
///
/// #[derive(Debug, Clone)]
/// struct Slope { theta: Vec<f64> } // K biases, then one slope
///
/// impl Policy<f64> for Slope {
///     fn num_actions(&self) -> usize { self.theta.len() - 1 }
///     fn context_dim(&self) -> usize { 1 }
///     fn num_params(&self) -> usize { self.theta.len() }
///     fn params_into(&self, out: &mut [f64]) -> Result<()> {
///         check_len("out", out.len(), self.theta.len())?;
///         out.copy_from_slice(&self.theta);
///         Ok(())
///     }
///     fn set_params(&mut self, theta: &[f64]) -> Result<()> {
///         check_len("theta", theta.len(), self.theta.len())?;
///         self.theta.copy_from_slice(theta);
///         Ok(())
///     }
///     // z_a = θ_a + a · s · x
///     fn logits_into(&self, x: &[f64], out: &mut [f64]) -> Result<()> {
///         let k = self.num_actions();
///         check_len("out", out.len(), k)?;
///         for (a, z) in out.iter_mut().enumerate() {
///             *z = self.theta[a] + a as f64 * self.theta[k] * x[0];
///         }
///         Ok(())
///     }
///     // grad += Σ_a c_a ∇θ z_a
///     fn add_logits_vjp(&self, x: &[f64], c: &[f64], grad: &mut [f64]) -> Result<()> {
///         let k = self.num_actions();
///         check_len("c", c.len(), k)?;
///         check_len("grad", grad.len(), k + 1)?;
///         for (a, &ca) in c.iter().enumerate() {
///             grad[a] += ca;
///             grad[k] += ca * a as f64 * x[0];
///         }
///         Ok(())
///     }
/// }
///
/// let pi = Slope { theta: vec![0.0, 0.0, 1.0] };
/// let p = pi.probabilities(&[2.0])?;
/// assert!((p[1] / p[0] - 2f64.exp()).abs() < 1e-12);
/// # Ok::<(), refit::Error>(())
/// ```
pub trait Policy<F: Real>: Clone + std::fmt::Debug + Send + Sync {
    /// Number of actions K.
    fn num_actions(&self) -> usize;

    /// Length of the contexts the policy takes.
    fn context_dim(&self) -> usize;

    /// Number of parameters p.
    fn num_params(&self) -> usize;

    /// Writes θ (length p, the policy's documented layout) into `out`.
    ///
    /// # Errors
    /// [`Error::Length`] for `out`.
    fn params_into(&self, out: &mut [F]) -> Result<()>;

    /// Replaces θ.
    ///
    /// # Errors
    /// [`Error::Length`] for a θ of the wrong length,
    /// [`Error::NonFiniteParameter`] if it holds a NaN or an infinity.
    fn set_params(&mut self, theta: &[F]) -> Result<()>;

    /// Writes the logits z_θ(x) into `out` (length K), for a checked context.
    ///
    /// # Errors
    /// [`Error::Length`] for `out`.
    fn logits_into(&self, x: &[F], out: &mut [F]) -> Result<()>;

    /// Adds the vector–Jacobian product ∇_θ Σ_a c_a z_a(x) to `grad`
    /// (length p), for a checked context and `c` of length K.
    ///
    /// # Errors
    /// [`Error::Length`] for `c` or `grad`.
    fn add_logits_vjp(&self, x: &[F], c: &[F], grad: &mut [F]) -> Result<()>;

    /// Whether the logits are linear in θ (z = J(x) θ), as for every policy
    /// of the crate. The provided Hessian-vector products are then exact:
    /// ∇²_θ Σ_a w_a log π_a = −c Jᵀ S(π) J with S = diag π − π πᵀ,
    /// and J v is read off the logits at θ = v. Default `false`.
    fn logits_linear(&self) -> bool {
        false
    }

    /// Whether the logits ignore the context (a tabular policy). Then the
    /// λ = 0 refit optimum exists in closed form. Default `false`.
    fn context_free(&self) -> bool {
        false
    }

    /// Whether the logits are the parameters themselves, z_a = θ_a at every
    /// context (the tabular softmax, [`Tabular`]). The refit of the
    /// log-likelihood then solves its Newton systems in O(K) with the
    /// softmax's diagonal-plus-rank-one Hessian. Default `false`.
    fn identity_logits(&self) -> bool {
        false
    }

    /// θ as a new vector.
    fn params(&self) -> Vec<F> {
        let mut out = vec![F::zero(); self.num_params()];
        // The length is right by construction.
        let _ = self.params_into(&mut out);
        out
    }

    /// Length of the probability buffers the policy computes in: K, or K
    /// rounded up to the block width of its kernels. Buffers of this length
    /// skip a copy in [`Policy::probabilities_into`] and
    /// [`Policy::add_scaled_score`]; entries past K hold probability 0.
    fn probs_len(&self) -> usize {
        self.num_actions()
    }

    /// Writes π_θ(· | x) into `out` and returns its normalizer. `out` has
    /// length K, or [`Policy::probs_len`] (then the entries past K are 0).
    ///
    /// # Errors
    /// [`Error::ContextLength`], [`Error::NonFiniteContext`], [`Error::Length`]
    /// for `out`, and [`Error::NonFiniteLogits`] if the logits overflow.
    fn probabilities_into(&self, x: &[F], out: &mut [F]) -> Result<Normalizer<F>> {
        check_context(x, self.context_dim())?;
        let k = self.num_actions();
        if out.len() != k && out.len() != self.probs_len() {
            return Err(Error::Length {
                name: "out",
                expected: k,
                got: out.len(),
            });
        }
        let (head, tail) = out.split_at_mut(k);
        self.logits_into(x, head)?;
        let norm = softmax_in_place(head).ok_or(Error::NonFiniteLogits)?;
        tail.iter_mut().for_each(|v| *v = F::zero());
        Ok(norm)
    }

    /// π_θ(· | x) as a new vector.
    ///
    /// # Errors
    /// As [`Policy::probabilities_into`].
    fn probabilities(&self, x: &[F]) -> Result<Vec<F>> {
        let mut out = vec![F::zero(); self.num_actions()];
        self.probabilities_into(x, &mut out)?;
        Ok(out)
    }

    /// log π_θ(a | x), computed from the logits (exact for tiny probabilities).
    ///
    /// # Errors
    /// As [`Policy::probabilities_into`], and [`Error::ActionOutOfRange`].
    fn log_prob(&self, x: &[F], action: usize) -> Result<F> {
        check_action(action, self.num_actions())?;
        check_context(x, self.context_dim())?;
        let mut z = vec![F::zero(); self.num_actions()];
        self.logits_into(x, &mut z)?;
        let za = z[action];
        let norm = softmax_in_place(&mut z).ok_or(Error::NonFiniteLogits)?;
        Ok(za - norm.log_partition())
    }

    /// Writes the score ∇_θ log π_θ(a | x) = Jᵀ (e_a − π) into `out` (length p).
    ///
    /// # Errors
    /// As [`Policy::log_prob`], and [`Error::Length`] for `out`.
    fn score_into(&self, x: &[F], action: usize, out: &mut [F]) -> Result<()> {
        check_action(action, self.num_actions())?;
        check_len("out", out.len(), self.num_params())?;
        let mut c = self.probabilities(x)?;
        for (a, ca) in c.iter_mut().enumerate() {
            *ca = if a == action { F::one() - *ca } else { -*ca };
        }
        out.iter_mut().for_each(|v| *v = F::zero());
        self.add_logits_vjp(x, &c, out)
    }

    /// The REINFORCE update θ ← θ + scale · ∇_θ log π_θ(a | x), where
    /// `probs` is π_θ(· | x) as returned by [`Policy::probabilities_into`]
    /// for this θ and x (length K, or [`Policy::probs_len`]).
    ///
    /// # Errors
    /// As [`Policy::score_into`], [`Error::Length`] for `probs`, and
    /// [`Error::NonFiniteUpdate`] if the result would not be finite; θ is then
    /// unchanged.
    fn add_scaled_score(&mut self, x: &[F], action: usize, probs: &[F], scale: F) -> Result<()> {
        check_context(x, self.context_dim())?;
        let k = self.num_actions();
        check_action(action, k)?;
        if probs.len() != k && probs.len() != self.probs_len() {
            return Err(Error::Length {
                name: "probs",
                expected: k,
                got: probs.len(),
            });
        }
        let c: Vec<F> = probs[..k]
            .iter()
            .enumerate()
            .map(|(a, &p)| scale * (if a == action { F::one() } else { F::zero() } - p))
            .collect();
        let mut theta = self.params();
        self.add_logits_vjp(x, &c, &mut theta)?;
        if !theta.iter().all(|v| v.is_finite()) {
            return Err(Error::NonFiniteUpdate);
        }
        self.set_params(&theta)
    }

    /// [`Policy::probabilities_into`] for a context checked by
    /// [`Checked::new`]: a policy may skip checking it again (the linear
    /// ones do; by default it is checked as usual).
    ///
    /// # Errors
    /// As [`Policy::probabilities_into`].
    #[inline]
    fn probabilities_checked(&self, x: Checked<'_, F>, out: &mut [F]) -> Result<Normalizer<F>> {
        self.probabilities_into(x.get(), out)
    }

    /// [`Policy::add_scaled_score`] for a context checked by
    /// [`Checked::new`], which a policy may skip checking again.
    ///
    /// # Errors
    /// As [`Policy::add_scaled_score`].
    #[inline]
    fn add_scaled_score_checked(
        &mut self,
        x: Checked<'_, F>,
        action: usize,
        probs: &[F],
        scale: F,
    ) -> Result<()> {
        self.add_scaled_score(x.get(), action, probs, scale)
    }

    /// Writes the product of the Hessian ∇²_θ log π_θ(a | x) with the
    /// direction `v` into `out` (both length p). With
    /// [`Policy::logits_linear`] the Hessian is the same for every a and the
    /// product exact; otherwise it is a central difference of exact scores.
    ///
    /// # Errors
    /// As [`Policy::score_into`], and [`Error::Length`] for `v`, `out`.
    fn hessian_vector_into(&self, x: &[F], action: usize, v: &[F], out: &mut [F]) -> Result<()> {
        let k = self.num_actions();
        check_action(action, k)?;
        check_context(x, self.context_dim())?;
        check_len("v", v.len(), self.num_params())?;
        check_len("out", out.len(), self.num_params())?;
        let mut w = vec![F::zero(); k];
        w[action] = F::one();
        let mut neg = vec![F::zero(); out.len()];
        self.add_loglik_neg_hvp(x, &w, F::one(), v, &mut neg)?;
        for (o, n) in out.iter_mut().zip(&neg) {
            *o = -*n;
        }
        Ok(())
    }

    /// Adds −∇²_θ Σ_a w_a log π_θ(a | x) · v to `out`, where `w` (length K,
    /// or longer with zeros past K) are per-action weights with total `c`:
    /// the negated Hessian-vector product of one row of the log-likelihood.
    /// Exact with [`Policy::logits_linear`] (c Jᵀ S J v), else a central
    /// difference of exact gradients.
    ///
    /// # Errors
    /// [`Error::Length`], [`Error::NonFiniteLogits`].
    fn add_loglik_neg_hvp(&self, x: &[F], w: &[F], c: F, v: &[F], out: &mut [F]) -> Result<()> {
        let (k, p) = (self.num_actions(), self.num_params());
        check_len("v", v.len(), p)?;
        check_len("out", out.len(), p)?;
        if w.len() < k {
            return Err(Error::Length {
                name: "w",
                expected: k,
                got: w.len(),
            });
        }
        if self.logits_linear() {
            let mut probs = vec![F::zero(); k];
            self.probabilities_into(x, &mut probs)?;
            // J v: the logits of the same policy at θ = v.
            let mut at_v = self.clone();
            at_v.set_params(v)?;
            let mut u = vec![F::zero(); k];
            at_v.logits_into(x, &mut u)?;
            let pu: F = probs.iter().zip(&u).map(|(a, b)| *a * *b).sum();
            for (ua, &pa) in u.iter_mut().zip(&probs) {
                *ua = c * pa * (*ua - pu);
            }
            return self.add_logits_vjp(x, &u, out);
        }
        // Central difference of g(θ) = Jᵀ(w − c π) along v.
        let vmax = max_abs(v);
        if vmax == F::zero() {
            return Ok(());
        }
        let theta = self.params();
        let h = F::epsilon().cbrt() * (F::one() + max_abs(&theta)) / vmax;
        let grad_at = |sign: F| -> Result<Vec<F>> {
            let mut q = self.clone();
            let shifted: Vec<F> = theta
                .iter()
                .zip(v)
                .map(|(t, vi)| *t + sign * h * *vi)
                .collect();
            q.set_params(&shifted)?;
            let mut r = vec![F::zero(); k];
            q.probabilities_into(x, &mut r)?;
            for (ra, &wa) in r.iter_mut().zip(w) {
                *ra = wa - c * *ra;
            }
            let mut g = vec![F::zero(); p];
            q.add_logits_vjp(x, &r, &mut g)?;
            Ok(g)
        };
        let (gp, gm) = (grad_at(F::one())?, grad_at(-F::one())?);
        let inv = F::one() / (F::c(2.0) * h);
        for ((o, a), b) in out.iter_mut().zip(&gp).zip(&gm) {
            *o -= (*a - *b) * inv;
        }
        Ok(())
    }

    /// Adds c · Jᵀ S(π) J (the negated Hessian of Σ_a w_a log π_a(x) when
    /// the logits are linear in θ) to the lower triangle of the dense p×p
    /// row-major matrix `h`, with π at the policy's θ. Other policies get
    /// the symmetrized Hessian from p Hessian-vector products.
    ///
    /// # Errors
    /// [`Error::Length`], [`Error::NonFiniteLogits`].
    fn add_loglik_neg_hessian(&self, x: &[F], w: &[F], c: F, h: &mut [F]) -> Result<()> {
        let p = self.num_params();
        check_len("h", h.len(), p * p)?;
        let mut e = vec![F::zero(); p];
        let mut col = vec![F::zero(); p];
        for j in 0..p {
            e[j] = F::one();
            col.iter_mut().for_each(|v| *v = F::zero());
            self.add_loglik_neg_hvp(x, w, c, &e, &mut col)?;
            e[j] = F::zero();
            // Column j of the product; the lower triangle is (i ≥ j).
            for i in j..p {
                h[i * p + j] += col[i];
            }
        }
        Ok(())
    }

    /// π(· | x_i) of every row of `xs` (rows × d, back to back) into
    /// `out` (rows × [`Policy::probs_len`]), at the policy's θ: the
    /// expected returns' passes. By default one
    /// [`Policy::probabilities_into`] per row; the linear softmax runs the
    /// rows in one kernel call.
    ///
    /// # Errors
    /// [`Error::Length`] for shapes that do not fit,
    /// [`Error::NonFiniteLogits`], errors of the context checks.
    fn probabilities_rows(&self, xs: &[F], out: &mut [F]) -> Result<()> {
        let (d, pl) = (self.context_dim(), self.probs_len());
        row_count(("xs", xs.len(), d), ("out", out.len(), pl))?;
        for (x, o) in xs
            .chunks_exact(d.max(1))
            .zip(out.chunks_exact_mut(pl.max(1)))
        {
            self.probabilities_into(x, o)?;
        }
        Ok(())
    }

    /// The logits z(x_i) of every row of `xs` into `out` (rows ×
    /// [`Policy::probs_len`], entries past K unspecified). By default one
    /// [`Policy::logits_into`] per row.
    ///
    /// # Errors
    /// As [`Policy::probabilities_rows`].
    fn logits_rows(&self, xs: &[F], out: &mut [F]) -> Result<()> {
        let (k, d, pl) = (self.num_actions(), self.context_dim(), self.probs_len());
        row_count(("xs", xs.len(), d), ("out", out.len(), pl))?;
        for (x, o) in xs
            .chunks_exact(d.max(1))
            .zip(out.chunks_exact_mut(pl.max(1)))
        {
            self.logits_into(x, &mut o[..k])?;
        }
        Ok(())
    }

    /// grad += Σ_i J_iᵀ c_i over the rows of `xs`, `cs` rows ×
    /// [`Policy::probs_len`] (entries past K must be 0). By default one
    /// [`Policy::add_logits_vjp`] per row.
    ///
    /// # Errors
    /// As [`Policy::add_logits_vjp`].
    fn add_logits_vjp_rows(&self, xs: &[F], cs: &[F], grad: &mut [F]) -> Result<()> {
        let (k, d, pl) = (self.num_actions(), self.context_dim(), self.probs_len());
        row_count(("xs", xs.len(), d), ("cs", cs.len(), pl))?;
        for (x, c) in xs.chunks_exact(d.max(1)).zip(cs.chunks_exact(pl.max(1))) {
            self.add_logits_vjp(x, &c[..k], grad)?;
        }
        Ok(())
    }

    /// Adds Jᵀ C J to the lower triangle of the dense p×p row-major matrix
    /// `h`, with J the Jacobian of the logits at `x` (K×p) and C a
    /// symmetric K×K matrix (row-major) in logit space: the Hessian in θ of
    /// a function of the logits whose Hessian in z is C, for a policy
    /// whose logits are linear in θ. The default takes the K rows of J by
    /// vector–Jacobian products; the linear policies add C ⊗ x xᵀ directly.
    ///
    /// # Errors
    /// [`Error::Length`] for `c` or `h`; errors of [`Policy::add_logits_vjp`].
    fn add_logits_hessian(&self, x: &[F], c: &[F], h: &mut [F]) -> Result<()> {
        let (k, p) = (self.num_actions(), self.num_params());
        check_len("c", c.len(), k * k)?;
        check_len("h", h.len(), p * p)?;
        let mut jac = vec![F::zero(); k * p];
        let mut e = vec![F::zero(); k];
        for (a, row) in jac.chunks_exact_mut(p).enumerate() {
            e[a] = F::one();
            self.add_logits_vjp(x, &e, row)?;
            e[a] = F::zero();
        }
        // U = C J (K×p), then h += Jᵀ U on the lower triangle.
        let mut u = vec![F::zero(); k * p];
        for (ua, ca) in u.chunks_exact_mut(p).zip(c.chunks_exact(k)) {
            for (&cab, jb) in ca.iter().zip(jac.chunks_exact(p)) {
                for (o, &v) in ua.iter_mut().zip(jb) {
                    *o += cab * v;
                }
            }
        }
        for (ja, ua) in jac.chunks_exact(p).zip(u.chunks_exact(p)) {
            for (i, row) in h.chunks_exact_mut(p).enumerate() {
                let jai = ja[i];
                for (o, &v) in row[..=i].iter_mut().zip(ua) {
                    *o += jai * v;
                }
            }
        }
        Ok(())
    }

    /// [`Policy::add_logits_hessian`] of several rows at once: adds
    /// Σ_r J_rᵀ C_r J_r to the lower triangle of `h`, with the contexts
    /// `xs` (rows × d) and the symmetric K×K matrices C_r as packed lower
    /// triangles `cs` (rows × K(K + 1)/2, entries (a, b ≤ a) row by row).
    /// The default takes the rows one by one; the linear softmax forms the
    /// weighted Gram matrices Σ_r C_r[a, b] x_r x_rᵀ as one blocked
    /// product, the rows summed in order, in `scratch` (grown as needed and
    /// kept by the caller, so that repeated calls do not allocate).
    ///
    /// # Errors
    /// [`Error::Length`] for `xs`, `cs` or `h`; errors of
    /// [`Policy::add_logits_hessian`].
    fn add_logits_hessian_rows(
        &self,
        xs: &[F],
        cs: &[F],
        h: &mut [F],
        scratch: &mut Vec<F>,
    ) -> Result<()> {
        let (k, d) = (self.num_actions(), self.context_dim());
        let pairs = (k * (k + 1) / 2).max(1);
        row_count(("cs", cs.len(), pairs), ("xs", xs.len(), d))?;
        crate::limits::try_reserve_to(scratch, k * k, "Hessian rows")?;
        scratch.resize(k * k, F::zero());
        for (x, c) in xs.chunks_exact(d.max(1)).zip(cs.chunks_exact(pairs)) {
            let mut q = 0;
            for a in 0..k {
                for b in 0..=a {
                    scratch[a * k + b] = c[q];
                    scratch[b * k + a] = c[q];
                    q += 1;
                }
            }
            self.add_logits_hessian(x, scratch, h)?;
        }
        Ok(())
    }

    /// Adds Σ_i [`Policy::add_loglik_neg_hessian`] of the rows (the
    /// negated Hessian of the log-likelihood's data term, lower triangle)
    /// to `h`, at the policy's θ. The linear policies form it in one
    /// vectorized pass with no allocation per row.
    ///
    /// # Errors
    /// As [`Policy::add_loglik_neg_hessian`].
    fn loglik_neg_hessian_pass(&self, rows: Rows<'_, F>, h: &mut [F]) -> Result<()> {
        for i in 0..rows.len() {
            let Some((x, w, c)) = rows.get(i) else { break };
            if c == F::zero() {
                continue;
            }
            self.add_loglik_neg_hessian(x, w, c, h)?;
        }
        Ok(())
    }

    /// One pass of the weighted log-likelihood over `rows` at the policy's
    /// θ: returns Σ_i (W_i · z_i − c_i log Z_i) and adds
    /// Σ_i Jᵢᵀ (W_i − c_i π_i) to `grad` (length p). When `probs` is given
    /// (rows × stride), π_i is stored there. `scratch` is the policy's own
    /// to use between calls.
    ///
    /// # Errors
    /// [`Error::Length`], [`Error::NonFiniteLogits`] if a logit overflows.
    fn loglik_pass(
        &self,
        rows: Rows<'_, F>,
        grad: &mut [F],
        mut probs: Option<&mut [F]>,
        scratch: &mut Vec<F>,
    ) -> Result<F> {
        let k = self.num_actions();
        check_len("grad", grad.len(), self.num_params())?;
        scratch.resize(2 * k, F::zero());
        let (z, r) = scratch.split_at_mut(k);
        let mut value = F::zero();
        for i in 0..rows.len() {
            let Some((x, w, c)) = rows.get(i) else { break };
            self.logits_into(x, z)?;
            let wz: F = w.iter().zip(z.iter()).map(|(a, b)| *a * *b).sum();
            let norm = softmax_in_place(z).ok_or(Error::NonFiniteLogits)?;
            value += wz - c * norm.log_partition();
            for ((ra, &wa), &pa) in r.iter_mut().zip(w).zip(z.iter()) {
                *ra = wa - c * pa;
            }
            self.add_logits_vjp(x, r, grad)?;
            if let Some(dst) = probs
                .as_deref_mut()
                .and_then(|p| p.get_mut(i * rows.stride..i * rows.stride + k))
            {
                dst.copy_from_slice(z);
            }
        }
        Ok(value)
    }

    /// Adds the negated Hessian of the log-likelihood's data term over
    /// `rows`, times `v`, to `out` (both length p), at the policy's θ.
    /// `probs`, when given, holds π per row at this θ (as stored by
    /// [`Policy::loglik_pass`]).
    ///
    /// # Errors
    /// [`Error::Length`], [`Error::NonFiniteLogits`].
    fn loglik_neg_hvp_pass(
        &self,
        rows: Rows<'_, F>,
        probs: Option<&[F]>,
        v: &[F],
        out: &mut [F],
        scratch: &mut Vec<F>,
    ) -> Result<()> {
        let _ = (probs, scratch);
        neg_hvp_rows(self, rows, v, out)
    }

    /// Checks the policy's internal invariants (lengths, finiteness), as
    /// after reading it from a checkpoint.
    ///
    /// # Errors
    /// [`Error::Checkpoint`] with [`crate::CheckpointProblem::Inconsistent`].
    fn validate(&self) -> Result<()> {
        Ok(())
    }
}

/// Adds the negated Hessian-vector product of every row with weight to
/// `out`, one row at a time through [`Policy::add_loglik_neg_hvp`].
pub(crate) fn neg_hvp_rows<F: Real, P: Policy<F>>(
    policy: &P,
    rows: Rows<'_, F>,
    v: &[F],
    out: &mut [F],
) -> Result<()> {
    for i in 0..rows.len() {
        let Some((x, w, c)) = rows.get(i) else { break };
        if c != F::zero() {
            policy.add_loglik_neg_hvp(x, w, c, v, out)?;
        }
    }
    Ok(())
}

/// Checks a context's length and finiteness, as every entry point of the
/// crate does: [`Error::ContextLength`] or [`Error::NonFiniteContext`]
/// (with the first bad entry's index and value).
///
/// # Errors
/// As described.
#[inline]
pub fn check_context<F: Real>(x: &[F], d: usize) -> Result<()> {
    if x.len() != d {
        return Err(Error::ContextLength {
            expected: d,
            got: x.len(),
        });
    }
    // One pass (inlined: a call would cost more than the check); the index
    // is looked up only on failure.
    if !crate::kernels::all_finite(x) {
        let index = x.iter().position(|v| !v.is_finite()).unwrap_or(0);
        return Err(Error::NonFiniteContext {
            index,
            value: x[index].f64(),
        });
    }
    Ok(())
}

/// `Ok` if an argument named `name` has the length `expected`, else
/// [`Error::Length`] naming it.
///
/// # Errors
/// As described.
#[inline]
pub fn check_len(name: &'static str, got: usize, expected: usize) -> Result<()> {
    if got == expected {
        Ok(())
    } else {
        Err(Error::Length {
            name,
            expected,
            got,
        })
    }
}

/// The number of rows of two row-major slices that must hold the same
/// rows: `a` = (name, length, width) fixes it (length / width), and each
/// slice must then be exactly that many rows; else [`Error::Length`]
/// naming the slice. A width of 0 counts as 1.
pub(crate) fn row_count(
    a: (&'static str, usize, usize),
    b: (&'static str, usize, usize),
) -> Result<usize> {
    let rows = a.1 / a.2.max(1);
    check_len(a.0, a.1, rows * a.2)?;
    check_len(b.0, b.1, rows * b.2)?;
    Ok(rows)
}

/// `Ok` if every parameter is finite, else [`Error::NonFiniteParameter`]
/// naming the first that is not.
pub(crate) fn check_finite_params<F: Real>(theta: &[F]) -> Result<()> {
    match theta.iter().enumerate().find(|(_, v)| !v.is_finite()) {
        Some((index, v)) => Err(Error::NonFiniteParameter {
            index,
            value: v.f64(),
        }),
        None => Ok(()),
    }
}

/// `Ok` if `action < k`, else [`Error::ActionOutOfRange`].
///
/// # Errors
/// As described.
#[inline]
pub fn check_action(action: usize, k: usize) -> Result<()> {
    if action < k {
        Ok(())
    } else {
        Err(Error::ActionOutOfRange {
            action,
            num_actions: k,
        })
    }
}

/// Largest |θ + scale·(e_a − π)⊗x| the update can produce is below
/// `max|θ| + |scale|·max|x|`; this checks that bound against overflow.
#[inline]
pub(crate) fn update_is_finite<F: Real>(theta_bound: F, scale: F, xmax: F) -> bool {
    let step = scale.abs() * xmax;
    step.is_finite() && theta_bound + step < F::max_value() * F::c(0.5)
}

/// max |a_i| (0 for an empty slice; NaNs are passed over), in four lanes
/// so that the loop vectorizes.
#[inline]
pub(crate) fn max_abs<F: Real>(a: &[F]) -> F {
    let mut acc = [F::zero(); 4];
    let mut c = a.chunks_exact(4);
    for x in &mut c {
        for (m, v) in acc.iter_mut().zip(x) {
            let v = v.abs();
            *m = if v > *m { v } else { *m };
        }
    }
    for v in c.remainder() {
        let v = v.abs();
        acc[0] = if v > acc[0] { v } else { acc[0] };
    }
    let m02 = if acc[2] > acc[0] { acc[2] } else { acc[0] };
    let m13 = if acc[3] > acc[1] { acc[3] } else { acc[1] };
    if m13 > m02 { m13 } else { m02 }
}

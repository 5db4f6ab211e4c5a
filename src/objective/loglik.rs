//! The weighted log-likelihood, written once for every policy.

use super::{
    CHUNK_ROWS, ClosedForm, Dataset, HistoryObjective, Objective, Terms, Weighting, blocks_map,
};
use crate::error::{Error, Result};
use crate::policy::{Policy, check_action, check_context, check_len};
use crate::real::Real;

/// The weighted log-likelihood objective over a [`Dataset`], for any
/// [`Policy`]:
///
/// J(θ) = Σ_s w_s log π_θ(a_s | x_s) − (λ/2)‖θ‖²,
///
/// with θ the policy's flat parameters. With w ≥ 0, λ > 0 and logits linear
/// in θ it is strictly concave (for the linear softmax: multinomial
/// logistic regression with sample weights and an L2 penalty). The
/// convergence scale is 1 + Σ_s |w_s|. The weights come from a
/// [`Weighting`]: the reward ([`Weighting::Identity`]), the
/// importance-weighted reward r/μ ([`Weighting::Importance`]), or the
/// signed reward ([`Weighting::Signed`]), with which a row of negative
/// total weight makes J non-concave ([`Objective::concave`] is then false
/// and the solvers use the trust region).
///
/// The passes are the policy's ([`Policy::loglik_pass`]; the linear
/// softmax runs its own vectorized kernel), over blocks of 512 rows whose
/// partial sums are added in block order: the result is the same bit for
/// bit on one thread or, with feature `parallel`, on several.
///
/// For a context-free policy ([`Policy::context_free`]) the contexts are
/// stored as all ones, so every point shares one row; λ = 0 is allowed
/// only there, where the optimum has a closed form.
#[derive(Debug, Clone)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(
    feature = "serde",
    serde(
        bound = "F: crate::real::Real + serde::Serialize + serde::de::DeserializeOwned, P: serde::Serialize + serde::de::DeserializeOwned"
    )
)]
pub struct LogLikelihood<F, P> {
    data: Dataset<F>,
    lambda: F,
    weighting: Weighting<F>,
    /// The policy at the θ of the last evaluation.
    model: P,
    /// π per row at the model's θ (rows × stride), when `probs_valid`: a
    /// cache, formed again from the model's θ when needed, so not saved.
    #[cfg_attr(feature = "serde", serde(skip))]
    probs: Vec<F>,
    #[cfg_attr(feature = "serde", serde(skip))]
    probs_valid: bool,
    #[cfg_attr(feature = "serde", serde(skip))]
    scratch: Vec<F>,
    /// A push's copy of the gradient and Hessian it adds to, put back if
    /// the sums would not be finite.
    #[cfg_attr(feature = "serde", serde(skip))]
    saved: Vec<F>,
    /// Scratch of a push: π at the new point, then the gradient
    /// coefficients (not saved; sized when first used).
    #[cfg_attr(feature = "serde", serde(skip))]
    point: Vec<F>,
    unit: Vec<F>,
    /// Scratch of the O(K) refit of a tabular policy (not saved).
    #[cfg_attr(feature = "serde", serde(skip))]
    tabular: crate::solve::tabular::Scratch<F>,
}

impl<F: Real, P: Policy<F>> LogLikelihood<F, P> {
    /// The objective over `data` for the policy family of `policy` (whose
    /// θ is where evaluation starts), with L2 penalty λ and the weighting
    /// that [`HistoryObjective::push`] applies to new interactions.
    ///
    /// # Errors
    /// [`Error::InvalidLambda`] for λ < 0 or non-finite,
    /// [`Error::ZeroLambda`] for λ = 0 with a policy that is not context-free,
    /// [`Error::InvalidParameter`] for a bad weighting,
    /// [`Error::ContextLength`]/[`Error::Length`] if the data's shape is not
    /// the policy's.
    pub fn new(policy: P, data: Dataset<F>, lambda: F, weighting: Weighting<F>) -> Result<Self> {
        if !(lambda.is_finite() && lambda >= F::zero()) {
            return Err(Error::InvalidLambda {
                value: lambda.f64(),
            });
        }
        if lambda == F::zero() && !policy.context_free() {
            return Err(Error::ZeroLambda);
        }
        weighting.check()?;
        if lambda == F::zero() && (weighting.signed() || data.allows_negative()) {
            return Err(Error::InvalidParameter {
                name: "lambda",
                value: 0.0,
                expected: "> 0 with signed weights (a negative weight makes J unbounded at lambda = 0)",
            });
        }
        let data = if weighting.signed() {
            data.signed()
        } else {
            data
        };
        check_len("actions", data.num_actions(), policy.num_actions())?;
        if data.context_dim() != policy.context_dim() {
            return Err(Error::ContextLength {
                expected: policy.context_dim(),
                got: data.context_dim(),
            });
        }
        let data = if policy.context_free() && !data.unit_contexts() {
            data.with_unit_contexts()?
        } else {
            data
        };
        let stride = data.stride();
        let d = data.context_dim();
        Ok(Self {
            data,
            lambda,
            weighting,
            model: policy,
            probs: Vec::new(),
            probs_valid: false,
            scratch: Vec::new(),
            saved: Vec::new(),
            point: crate::limits::try_filled(2 * stride, F::zero(), "k")?,
            unit: crate::limits::try_filled(d, F::one(), "d")?,
            tabular: Default::default(),
        })
    }

    /// The data.
    pub fn data(&self) -> &Dataset<F> {
        &self.data
    }

    /// λ.
    pub fn lambda(&self) -> F {
        self.lambda
    }

    /// The weighting applied to new interactions.
    pub fn weighting(&self) -> Weighting<F> {
        self.weighting
    }

    /// Adds a point with weight `weight` (≥ 0 unless the data is signed, see
    /// [`Dataset::signed`] and [`Dataset::push`]).
    ///
    /// # Errors
    /// As [`Dataset::push`].
    pub fn push_weighted(&mut self, x: &[F], action: usize, weight: F) -> Result<()> {
        let x = if self.model.context_free() {
            check_context(x, self.data.context_dim())?;
            &self.unit[..]
        } else {
            x
        };
        self.data.push(x, action, weight)?;
        self.probs_valid = false;
        Ok(())
    }

    /// Sets the model's θ, reading a non-finite θ as overflowing logits
    /// (a line search then just shortens the step).
    fn set_theta(&mut self, theta: &[F]) -> Result<()> {
        check_len("theta", theta.len(), self.model.num_params())?;
        self.model.set_params(theta).map_err(|e| match e {
            Error::NonFiniteParameter { .. } => Error::NonFiniteLogits,
            e => e,
        })
    }

    /// The data term of J and its gradient (into `grad`) at the model's θ,
    /// storing π per row if `keep_probs`.
    fn data_term(&mut self, grad: &mut [F], keep_probs: bool) -> Result<F> {
        let rows = self.data.rows();
        let stride = self.data.stride();
        grad.iter_mut().for_each(|g| *g = F::zero());
        self.probs_valid = false;
        if keep_probs {
            self.probs.resize(rows * stride, F::zero());
        }
        let model = &self.model;
        let data = &self.data;
        let data_term = if rows <= CHUNK_ROWS {
            // One block: accumulate straight into grad (0 + x = x, so this
            // equals the blocked sum).
            let probs = keep_probs.then_some(&mut self.probs[..]);
            model.loglik_pass(data.as_rows(), grad, probs, &mut self.scratch)?
        } else {
            let chunks: Vec<Option<&mut [F]>> = if keep_probs {
                self.probs
                    .chunks_mut(CHUNK_ROWS * stride)
                    .map(Some)
                    .collect()
            } else {
                (0..rows.div_ceil(CHUNK_ROWS)).map(|_| None).collect()
            };
            let p = grad.len();
            let block = |(c, probs): (usize, Option<&mut [F]>)| -> Result<(F, Vec<F>)> {
                let lo = c * CHUNK_ROWS;
                let hi = (lo + CHUNK_ROWS).min(rows);
                let mut g = vec![F::zero(); p];
                let mut scratch = Vec::new();
                let v = model.loglik_pass(data.rows_range(lo, hi), &mut g, probs, &mut scratch)?;
                Ok((v, g))
            };
            let partials: Vec<Result<(F, Vec<F>)>> = blocks_map(chunks, block);
            let mut total = F::zero();
            for part in partials {
                let (v, g) = part?;
                total += v;
                for (a, b) in grad.iter_mut().zip(&g) {
                    *a += *b;
                }
            }
            total
        };
        self.probs_valid = keep_probs;
        Ok(data_term)
    }

    /// J and ∇J at `theta`, storing π per row if `keep_probs`.
    fn evaluate(&mut self, theta: &[F], grad: &mut [F], keep_probs: bool) -> Result<F> {
        check_len("grad", grad.len(), self.model.num_params())?;
        self.set_theta(theta)?;
        let data_term = self.data_term(grad, keep_probs)?;
        let mut sq = F::zero();
        for (g, &t) in grad.iter_mut().zip(theta) {
            *g -= self.lambda * t;
            sq += t * t;
        }
        Ok(data_term - self.lambda * F::c(0.5) * sq)
    }

    /// Checks the data, λ and the buffer lengths.
    pub(crate) fn validate_state(&self) -> Result<()> {
        use crate::error::ensure;
        self.data.validate()?;
        self.model.validate()?;
        ensure(
            self.lambda.is_finite()
                && self.lambda >= F::zero()
                && (self.lambda > F::zero()
                    || (self.model.context_free() && !self.data.allows_negative()))
                && self.weighting.check().is_ok(),
            "lambda",
        )?;
        ensure(
            self.data.num_actions() == self.model.num_actions()
                && self.data.context_dim() == self.model.context_dim()
                && self.unit.len() == self.data.context_dim()
                && (!self.probs_valid || self.probs.len() == self.data.rows() * self.data.stride()),
            "objective buffer lengths",
        )
    }
}

impl<F: Real, P: Policy<F>> Objective<F> for LogLikelihood<F, P> {
    fn dim(&self) -> usize {
        self.model.num_params()
    }

    fn value_grad(&mut self, theta: &[F], grad: &mut [F]) -> Result<F> {
        self.evaluate(theta, grad, true)
    }

    fn value_grad_only(&mut self, theta: &[F], grad: &mut [F]) -> Result<F> {
        self.evaluate(theta, grad, false)
    }

    fn neg_hess_vec(&mut self, v: &[F], out: &mut [F]) -> Result<()> {
        let n = self.model.num_params();
        check_len("v", v.len(), n)?;
        check_len("out", out.len(), n)?;
        if !self.probs_valid {
            // Points were pushed, or the last pass did not keep π: form π
            // per row at the remembered θ.
            let mut g = vec![F::zero(); n];
            self.data_term(&mut g, true)?;
        }
        for (o, &vi) in out.iter_mut().zip(v) {
            *o = self.lambda * vi;
        }
        self.model.loglik_neg_hvp_pass(
            self.data.as_rows(),
            Some(&self.probs),
            v,
            out,
            &mut self.scratch,
        )
    }

    fn neg_hessian(&mut self, out: &mut [F]) -> Result<bool> {
        let n = self.model.num_params();
        check_len("out", out.len(), n * n)?;
        out.iter_mut().for_each(|v| *v = F::zero());
        self.model
            .loglik_neg_hessian_pass(self.data.as_rows(), out)?;
        for i in 0..n {
            out[i * n + i] += self.lambda;
        }
        Ok(true)
    }

    fn gradient_scale(&self) -> F {
        F::one() + self.data.total_weight()
    }

    /// Concave when the logits are linear in θ and no row's total weight
    /// is negative (signed weights); a planner's logits, say, are not.
    fn concave(&self) -> bool {
        self.model.logits_linear() && !self.data.has_negative_row()
    }
}

impl<F: Real, P: Policy<F>> HistoryObjective<F> for LogLikelihood<F, P> {
    type Policy = P;

    fn adds_terms(&self) -> bool {
        true
    }

    fn model(&self) -> &P {
        &self.model
    }

    fn points(&self) -> usize {
        self.data.points()
    }

    fn rows(&self) -> usize {
        self.data.rows()
    }

    fn push(
        &mut self,
        at: &P,
        x: &[F],
        action: usize,
        reward: F,
        propensity: F,
        terms: Terms<'_, F>,
    ) -> Result<()> {
        check_context(x, self.data.context_dim())?;
        check_action(action, self.data.num_actions())?;
        let weight = self
            .weighting
            .weight(reward, propensity, self.data.points())?;
        let n = self.model.num_params();
        if let Some(g) = &terms.grad {
            check_len("grad", g.len(), n)?;
        }
        if let Some(h) = &terms.neg_hessian {
            check_len("neg_hessian", h.len(), n * n)?;
        }
        let k = self.data.num_actions();
        let state = if self.model.context_free() {
            &self.unit[..]
        } else {
            x
        };
        // Everything that can fail runs before anything is changed.
        let wants = terms.value.is_some() || terms.grad.is_some() || terms.neg_hessian.is_some();
        // π in the policy's own buffer length (its padded layout, if any),
        // the same bits as its act computes.
        let pl = at.probs_len().min(self.data.stride()).max(k);
        self.data.check_point(state, action, weight)?;
        self.data.reserve_point()?;
        let stride = self.data.stride();
        if self.point.len() < 2 * stride {
            crate::limits::try_reserve_to(&mut self.point, 2 * stride, "probabilities")?;
            self.point.resize(2 * stride, F::zero());
        }
        let log_p = if wants {
            let (probs, _) = self.point.split_at_mut(pl);
            at.probabilities_into(state, probs)?;
            at.log_prob(state, action)?
        } else {
            F::zero()
        };
        let value = terms.value.as_deref().map(|v| *v + weight * log_p);
        if value.is_some_and(|v| !v.is_finite()) {
            return Err(Error::NonFiniteUpdate);
        }
        // The gradient and Hessian terms are added in place (the same bits
        // as a sum formed elsewhere) over a copy that is put back if a sum
        // is not finite: the push then fails and changes nothing.
        let (mut grad, mut hess) = (terms.grad, terms.neg_hessian);
        let saved_len = grad.as_ref().map_or(0, |g| g.len()) + hess.as_ref().map_or(0, |h| h.len());
        if saved_len > 0 {
            self.saved.clear();
            crate::limits::try_reserve(&mut self.saved, saved_len, "the refit's kept Hessian")?;
            if let Some(g) = &grad {
                self.saved.extend_from_slice(g);
            }
            if let Some(h) = &hess {
                self.saved.extend_from_slice(h);
            }
        }
        let (probs, c) = self.point.split_at_mut(pl);
        let mut added = || -> Result<()> {
            if let Some(g) = grad.as_deref_mut() {
                for (a, (ca, &p)) in c[..k].iter_mut().zip(probs.iter()).enumerate() {
                    let e = if a == action { F::one() } else { F::zero() };
                    *ca = weight * (e - p);
                }
                at.add_logits_vjp(state, &c[..k], g)?;
            }
            if let Some(h) = hess.as_deref_mut() {
                c[..k].iter_mut().for_each(|v| *v = F::zero());
                c[action] = F::one();
                at.add_loglik_neg_hessian(state, &c[..k], weight, h)?;
            }
            let finite =
                |v: &Option<&mut [F]>| v.as_deref().is_none_or(|v| v.iter().all(|x| x.is_finite()));
            if finite(&grad) && finite(&hess) {
                Ok(())
            } else {
                Err(Error::NonFiniteUpdate)
            }
        };
        if let Err(e) = added() {
            let (sg, sh) = self.saved.split_at(grad.as_ref().map_or(0, |g| g.len()));
            if let Some(g) = grad {
                g.copy_from_slice(sg);
            }
            if let Some(h) = hess {
                h.copy_from_slice(sh);
            }
            return Err(e);
        }
        if let (Some(v), Some(new)) = (terms.value, value) {
            *v = new;
        }
        self.data.push_unchecked(state, action, weight);
        self.probs_valid = false;
        Ok(())
    }

    fn closed_form(&self) -> Option<Result<ClosedForm<F>>> {
        (self.lambda == F::zero()).then(|| closed_form(&self.data))
    }

    fn structured_refit(
        &mut self,
        theta: &mut [F],
        options: &crate::solve::Options<F>,
    ) -> Option<Result<crate::solve::Report<F>>> {
        use crate::solve::Method;
        let k = self.model.num_actions();
        let applies = matches!(options.method, Method::Auto | Method::Newton)
            && self.model.identity_logits()
            && self.model.num_params() == k
            && theta.len() == k
            && self.lambda > F::zero()
            && self.data.rows() == 1
            && !self.data.has_negative_row();
        if !applies {
            return None;
        }
        if let Err(e) = options.check() {
            return Some(Err(e));
        }
        let threshold = options.tol * self.gradient_scale();
        let (w, s) = self.data.row_weights(0);
        Some(crate::solve::tabular::solve(
            &w[..k],
            s,
            self.lambda,
            theta,
            threshold,
            options,
            &mut self.tabular,
        ))
    }

    fn structured_probabilities(&self, theta: &[F]) -> Option<&[F]> {
        if !self.model.identity_logits() {
            return None;
        }
        self.tabular.probabilities_at(theta)
    }

    fn validate(&self) -> Result<()> {
        self.validate_state()
    }
}

/// The maximizer of Σ_s w_s log π(a_s) over all distributions π, when every
/// context is the same: π*(a) = R_a / Σ_b R_b with R_a = Σ_{s: a_s = a} w_s.
/// Actions with R_a = 0 get probability 0. With no weight at all (Σ R = 0)
/// every π is optimal and the uniform one is returned. The value is
/// Σ_a R_a ln π*(a) (with 0 ln 0 = 0).
///
/// # Errors
/// [`Error::ZeroLambda`] if the contexts differ: λ = 0 has no closed form,
/// and no maximizer in general, outside the tabular case.
pub(crate) fn closed_form<F: Real>(data: &Dataset<F>) -> Result<ClosedForm<F>> {
    if !data.is_tabular() {
        return Err(Error::ZeroLambda);
    }
    let r = data.action_weights();
    let k = r.len();
    let total: F = r.iter().copied().sum();
    let probs: Vec<F> = if total > F::zero() {
        r.iter().map(|&ra| ra / total).collect()
    } else {
        vec![F::one() / F::c(k as f64); k]
    };
    let value = r
        .iter()
        .zip(&probs)
        .filter(|(ra, _)| **ra > F::zero())
        .map(|(&ra, &p)| ra * p.ln())
        .sum();
    Ok(ClosedForm { probs, value })
}

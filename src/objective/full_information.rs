//! The expected return of a policy on the history's contexts with the
//! environment's exact expected rewards: the objective whose maximizer is
//! π* of the history with every counterfactual reward known.

use super::{HistoryObjective, Objective, Terms};
use crate::env::Environment;
use crate::error::{Error, Result};
use crate::history::check_row;
use crate::policy::{Policy, check_context, check_len};
use crate::real::Real;

/// Rows a block of a pass takes (blocks run in parallel with feature
/// `parallel` and are added in block order: the same bits either way).
const BLOCK: usize = 32;

/// The full-information expected return over a history's contexts,
///
/// J(θ) = Σ_t Σ_a π_θ(a | x_t) q(x_t, a) − (λ/2)‖θ‖²,
///
/// with q(x, a) the environment's exact expected reward
/// ([`Environment::expected_rewards_at`]; for [`crate::env::GridNav`] the
/// breadth-first rewards). It needs no propensities and has no estimator
/// noise: its maximizer is π* = argmax_π E[Σ_t r_t | π] over the contexts
/// seen so far — what [`super::ExpectedReturn`] estimates by importance
/// weighting from logs. As a [`HistoryObjective`] it makes
/// [`crate::learner::Refit::with_objective`] an *oracle refit*: before
/// every action it plays π* of its history, the counterfactual rewards
/// known (the actions, rewards and propensities it is given are checked
/// and otherwise ignored).
///
/// The gradient is exact: ∇J = Σ_t J_tᵀ c_t − λθ with c_t,a = π_a (q_a −
/// π·q) (the softmax pull-back of ∂(π·q)/∂z). For a policy with
/// [`Policy::logits_linear`] the Hessian-vector products are exact too
/// (ċ_a = π_a (u_a − π·u)(q_a − π·q) − π_a Σ_b π_b (q_b − π·q) u_b with
/// u = J v); for other policies (the [`crate::policy::Planner`]) they are
/// central differences of the exact gradient, two passes each. J is not
/// concave ([`Objective::concave`] is false): it is solved by
/// [`crate::solve::trust_region`], and λ > 0 is required (J is bounded, so
/// without a penalty its supremum lies at infinity). The convergence scale
/// is 1 + Σ_t max_a |q(x_t, a)|.
///
/// # Examples
/// ```
/// use refit::env::Bernoulli;
/// use refit::objective::{FullInformation, Objective};
/// use refit::policy::Tabular;
/// use refit::solve::{Options, trust_region};
/// let env = Bernoulli::<f64>::new(vec![0.2, 0.8])?;
/// let mut obj = FullInformation::new(Tabular::<f64>::new(2)?, env, 0.1)?;
/// for _ in 0..10 {
///     obj.add(&[1.0])?; // q = (0.2, 0.8) at each of 10 steps
/// }
/// let mut theta = vec![0.0; 2];
/// let report = trust_region(&mut obj, &mut theta, &Options::default())?;
/// assert!(report.converged() && theta[1] > theta[0]);
/// # Ok::<(), refit::Error>(())
/// ```
#[derive(Debug, Clone)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(
    feature = "serde",
    serde(
        bound = "F: crate::real::Real + serde::Serialize + serde::de::DeserializeOwned, P: serde::Serialize + serde::de::DeserializeOwned, E: serde::Serialize + serde::de::DeserializeOwned"
    )
)]
pub struct FullInformation<F, P, E> {
    /// The policy at the θ of the last evaluation.
    model: P,
    /// Gives q(x, ·) for the contexts [`HistoryObjective::push`] takes.
    oracle: E,
    lambda: F,
    /// Contexts, n × d, back to back.
    xs: Vec<F>,
    /// Expected rewards, n × K, back to back.
    q: Vec<F>,
    /// Σ_t max_a |q_t,a|.
    abs_q: F,
    /// Where a push keeps the terms it adds, to put back on failure (not saved).
    #[cfg_attr(feature = "serde", serde(skip))]
    saved: Vec<F>,
    /// Scratch of [`Objective::neg_hessian`] (not saved).
    #[cfg_attr(feature = "serde", serde(skip))]
    hess: super::HessianRows<F>,
}

impl<F: Real, P: Policy<F>, E: Environment<F>> FullInformation<F, P, E> {
    /// The objective for the policy family of `policy` (whose θ is where
    /// evaluation starts), with `oracle` giving the expected rewards and L2
    /// penalty λ > 0, over no contexts yet.
    ///
    /// # Errors
    /// [`Error::InvalidLambda`] for λ < 0 or non-finite,
    /// [`Error::InvalidParameter`] for λ = 0, [`Error::Mismatch`] if the
    /// oracle's number of actions or context length is not the policy's.
    pub fn new(policy: P, oracle: E, lambda: F) -> Result<Self> {
        if !(lambda.is_finite() && lambda >= F::zero()) {
            return Err(Error::InvalidLambda {
                value: lambda.f64(),
            });
        }
        if lambda == F::zero() {
            return Err(Error::InvalidParameter {
                name: "lambda",
                value: 0.0,
                expected: "> 0 for the expected return (it is bounded, so without a penalty its supremum lies at infinity)",
            });
        }
        if oracle.num_actions() != policy.num_actions() {
            return Err(Error::Mismatch {
                what: "number of actions K",
                learner: policy.num_actions(),
                environment: oracle.num_actions(),
            });
        }
        if oracle.context_dim() != policy.context_dim() {
            return Err(Error::Mismatch {
                what: "context length d",
                learner: policy.context_dim(),
                environment: oracle.context_dim(),
            });
        }
        Ok(Self {
            model: policy,
            oracle,
            lambda,
            xs: Vec::new(),
            q: Vec::new(),
            abs_q: F::zero(),
            saved: Vec::new(),
            hess: Default::default(),
        })
    }

    /// Adds the context `x` with the oracle's expected rewards q(x, ·).
    ///
    /// # Errors
    /// [`Error::ContextLength`], [`Error::NonFiniteContext`], the oracle's
    /// errors for a context it cannot evaluate, and
    /// [`Error::NonFiniteReward`] for an expected reward that is not finite;
    /// nothing is added then.
    pub fn add(&mut self, x: &[F]) -> Result<()> {
        check_context(x, self.model.context_dim())?;
        let mut q = vec![F::zero(); self.model.num_actions()];
        self.oracle.expected_rewards_at(x, &mut q)?;
        self.add_unchecked_context(x, &q)
    }

    /// Adds the context `x` with given expected rewards `q` (length K),
    /// bypassing the oracle.
    ///
    /// # Errors
    /// [`Error::ContextLength`], [`Error::NonFiniteContext`],
    /// [`Error::Length`] for `q`, [`Error::NonFiniteReward`]; nothing is
    /// added then.
    pub fn add_with_rewards(&mut self, x: &[F], q: &[F]) -> Result<()> {
        check_context(x, self.model.context_dim())?;
        check_len("q", q.len(), self.model.num_actions())?;
        self.add_unchecked_context(x, q)
    }

    fn add_unchecked_context(&mut self, x: &[F], q: &[F]) -> Result<()> {
        self.add_with_terms(x, q, None)
    }

    /// Adds the context `x` with expected rewards `q`, and, given an
    /// evaluation point and terms, the row's terms there (all checked
    /// first: on error nothing is added).
    fn add_with_terms(
        &mut self,
        x: &[F],
        q: &[F],
        terms: Option<(&P, Terms<'_, F>)>,
    ) -> Result<()> {
        if let Some(v) = q.iter().find(|v| !v.is_finite()) {
            return Err(Error::NonFiniteReward { value: v.f64() });
        }
        let m = q.iter().fold(F::zero(), |m, v| m.max(v.abs()));
        if !(self.abs_q + m).is_finite() {
            return Err(Error::NonFiniteReward { value: m.f64() });
        }
        self.xs.try_reserve(x.len()).map_err(|_| too_many())?;
        self.q.try_reserve(q.len()).map_err(|_| too_many())?;
        if let Some((at, terms)) = terms {
            super::add_row_terms(at, x, q, terms, &mut self.saved)?;
        }
        self.xs.extend_from_slice(x);
        self.q.extend_from_slice(q);
        self.abs_q += m;
        Ok(())
    }

    /// Number of contexts.
    pub fn len(&self) -> usize {
        self.q.len() / self.model.num_actions().max(1)
    }

    /// Whether there are no contexts.
    pub fn is_empty(&self) -> bool {
        self.q.is_empty()
    }

    /// λ.
    pub fn lambda(&self) -> F {
        self.lambda
    }

    /// The oracle.
    pub fn oracle(&self) -> &E {
        &self.oracle
    }

    /// Context t and its expected rewards.
    pub fn row(&self, t: usize) -> Option<(&[F], &[F])> {
        let (d, k) = (self.model.context_dim(), self.model.num_actions());
        Some((
            self.xs.get(t * d..(t + 1) * d)?,
            self.q.get(t * k..(t + 1) * k)?,
        ))
    }

    /// The data term Σ_t π_θ(·|x_t)·q_t at θ, without the penalty.
    ///
    /// # Errors
    /// [`Error::Length`] for a wrong θ, [`Error::NonFiniteLogits`].
    pub fn expected_return(&mut self, theta: &[F]) -> Result<F> {
        let mut g = vec![F::zero(); self.dim()];
        let v = self.value_grad(theta, &mut g)?;
        let sq: F = theta.iter().map(|t| *t * *t).sum();
        Ok(v + self.lambda * F::c(0.5) * sq)
    }

    fn set_theta(&mut self, theta: &[F]) -> Result<()> {
        check_len("theta", theta.len(), self.model.num_params())?;
        self.model.set_params(theta).map_err(|e| match e {
            Error::NonFiniteParameter { .. } => Error::NonFiniteLogits,
            e => e,
        })
    }

    /// Runs `row` over the rows block by block (in parallel with feature
    /// `parallel`) with a clone of the model each, and adds the blocks'
    /// values and p-vectors in block order.
    fn blocks<G>(&self, row: G) -> Result<(F, Vec<F>)>
    where
        G: Fn(&P, &[F], &[F], &mut [F], &mut [F]) -> Result<F> + Sync,
    {
        let n = self.len();
        let (d, k, p) = (
            self.model.context_dim(),
            self.model.num_actions(),
            self.model.num_params(),
        );
        let pl = self.model.probs_len().max(k);
        let (xs, qs, base) = (&self.xs, &self.q, &self.model);
        let block = |b: usize| -> Result<(F, Vec<F>)> {
            let model = base.clone();
            let mut acc = vec![F::zero(); p];
            let mut buf = vec![F::zero(); 2 * pl];
            let mut value = F::zero();
            for t in b * BLOCK..((b + 1) * BLOCK).min(n) {
                let (x, q) = (&xs[t * d..(t + 1) * d], &qs[t * k..(t + 1) * k]);
                let (pi, c) = buf.split_at_mut(pl);
                value += row(&model, x, q, pi, &mut c[..k])?;
                model.add_logits_vjp(x, &c[..k], &mut acc)?;
            }
            Ok((value, acc))
        };
        let count = n.div_ceil(BLOCK);
        #[cfg(feature = "parallel")]
        let parts: Vec<Result<(F, Vec<F>)>> = {
            use rayon::prelude::*;
            (0..count).into_par_iter().map(block).collect()
        };
        #[cfg(not(feature = "parallel"))]
        let parts: Vec<Result<(F, Vec<F>)>> = (0..count).map(block).collect();
        let mut value = F::zero();
        let mut acc = vec![F::zero(); p];
        for part in parts {
            let (v, g) = part?;
            value += v;
            for (a, b) in acc.iter_mut().zip(&g) {
                *a += *b;
            }
        }
        Ok((value, acc))
    }

    /// −∇²J v by central differences of the exact gradient.
    fn neg_hess_vec_fd(&mut self, v: &[F], out: &mut [F]) -> Result<()> {
        let theta = self.model.params();
        // The remembered θ is put back afterwards, whatever happens.
        let saved = self.model.clone();
        let lambda = self.lambda;
        let result =
            super::difference_hess_vec(&theta, v, lambda, out, |t, g| self.value_grad(t, g));
        self.model = saved;
        result
    }
}

fn too_many() -> Error {
    Error::InvalidParameter {
        name: "contexts",
        value: f64::NAN,
        expected: "a history that fits in memory",
    }
}

impl<F: Real, P: Policy<F>, E: Environment<F>> Objective<F> for FullInformation<F, P, E> {
    fn dim(&self) -> usize {
        self.model.num_params()
    }

    fn value_grad(&mut self, theta: &[F], grad: &mut [F]) -> Result<F> {
        check_len("grad", grad.len(), self.model.num_params())?;
        self.set_theta(theta)?;
        let (value, acc) = self.blocks(|model, x, q, pi, c| {
            model.probabilities_into(x, pi)?;
            let f: F = pi.iter().zip(q).map(|(a, b)| *a * *b).sum();
            for ((ca, &pa), &qa) in c.iter_mut().zip(pi.iter()).zip(q) {
                *ca = pa * (qa - f);
            }
            Ok(f)
        })?;
        let mut sq = F::zero();
        for ((g, &a), &t) in grad.iter_mut().zip(&acc).zip(theta) {
            *g = a - self.lambda * t;
            sq += t * t;
        }
        Ok(value - self.lambda * F::c(0.5) * sq)
    }

    fn neg_hess_vec(&mut self, v: &[F], out: &mut [F]) -> Result<()> {
        let p = self.model.num_params();
        check_len("v", v.len(), p)?;
        check_len("out", out.len(), p)?;
        if !self.model.logits_linear() {
            return self.neg_hess_vec_fd(v, out);
        }
        // J v per row: the logits of the same family at θ = v.
        let mut at_v = self.model.clone();
        at_v.set_params(v).map_err(|_| Error::NonFiniteLogits)?;
        let k = self.model.num_actions();
        let (_, acc) = self.blocks(|model, x, q, pi, c| {
            model.probabilities_into(x, pi)?;
            at_v.logits_into(x, c)?;
            let pu: F = pi.iter().zip(c.iter()).map(|(a, b)| *a * *b).sum();
            let f: F = pi.iter().zip(q).map(|(a, b)| *a * *b).sum();
            let df: F = (0..k).map(|b| pi[b] * (q[b] - f) * c[b]).sum();
            for a in 0..k {
                c[a] = pi[a] * ((c[a] - pu) * (q[a] - f) - df);
            }
            Ok(F::zero())
        })?;
        for ((o, a), &vi) in out.iter_mut().zip(&acc).zip(v) {
            *o = self.lambda * vi - *a;
        }
        Ok(())
    }

    /// The dense −∇²J in one pass for a policy whose logits are linear in
    /// θ (per row, the Hessian in the logits of π·q pulled back by
    /// [`Policy::add_logits_hessian`]); `Ok(false)` otherwise.
    fn neg_hessian(&mut self, out: &mut [F]) -> Result<bool> {
        let p = self.dim();
        check_len("out", out.len(), p * p)?;
        if !self.model.logits_linear() {
            return Ok(false);
        }
        let (d, k) = (self.model.context_dim(), self.model.num_actions());
        let pl = self.model.probs_len().max(k);
        out.iter_mut().for_each(|v| *v = F::zero());
        let (mut pi, mut f) = (vec![F::zero(); pl], vec![F::zero(); k]);
        let mut hess = std::mem::take(&mut self.hess);
        hess.cs.clear();
        let cs_rows = &mut hess.cs;
        for t in 0..self.len() {
            let (x, q) = (&self.xs[t * d..(t + 1) * d], &self.q[t * k..(t + 1) * k]);
            self.model.probabilities_into(x, &mut pi)?;
            super::softmax_value_hessian_lower(&pi[..k], q, &mut f, cs_rows);
        }
        let formed = self.model.add_logits_hessian_rows(
            &self.xs[..self.len() * d],
            &hess.cs,
            out,
            &mut hess.work,
        );
        self.hess = hess;
        formed?;
        for (i, row) in out.chunks_exact_mut(p).enumerate() {
            for (j, o) in row[..=i].iter_mut().enumerate() {
                *o = if i == j { self.lambda } else { F::zero() } - *o;
            }
        }
        Ok(true)
    }

    fn gradient_scale(&self) -> F {
        F::one() + self.abs_q
    }

    fn concave(&self) -> bool {
        false
    }
}

impl<F, P, E> HistoryObjective<F> for FullInformation<F, P, E>
where
    F: Real,
    P: Policy<F>,
    E: Environment<F> + Clone + std::fmt::Debug + Send + Sync,
{
    type Policy = P;

    fn model(&self) -> &P {
        &self.model
    }

    fn points(&self) -> usize {
        self.len()
    }

    fn rows(&self) -> usize {
        self.len()
    }

    /// Checks the interaction and adds its context with the oracle's
    /// expected rewards ([`FullInformation::add`]); the action, reward and
    /// propensity are not used. For a policy whose logits are linear in θ
    /// the row's value, gradient and negated Hessian at `at` are added to
    /// `terms` ([`HistoryObjective::adds_terms`]).
    fn push(
        &mut self,
        at: &P,
        x: &[F],
        action: usize,
        reward: F,
        propensity: F,
        terms: Terms<'_, F>,
    ) -> Result<()> {
        check_context(x, self.model.context_dim())?;
        let i = self.len();
        check_row(
            x,
            action,
            reward,
            propensity,
            self.model.num_actions(),
            || format!("row {i}"),
        )?;
        let mut q = vec![F::zero(); self.model.num_actions()];
        self.oracle.expected_rewards_at(x, &mut q)?;
        let terms = self.adds_terms().then_some((at, terms));
        self.add_with_terms(x, &q, terms)
    }

    fn adds_terms(&self) -> bool {
        self.model.logits_linear()
    }

    fn validate(&self) -> Result<()> {
        use crate::error::ensure;
        self.model.validate()?;
        self.oracle.validate()?;
        let (d, k) = (self.model.context_dim(), self.model.num_actions());
        ensure(
            self.lambda.is_finite() && self.lambda > F::zero() && self.abs_q.is_finite(),
            "full-information settings",
        )?;
        ensure(
            k > 0
                && self.q.len() % k == 0
                && self.xs.len() == self.len() * d
                && self.oracle.num_actions() == k
                && self.oracle.context_dim() == d
                && self.xs.iter().chain(&self.q).all(|v| v.is_finite()),
            "full-information rows",
        )
    }
}

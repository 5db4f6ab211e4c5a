//! The expected return of a policy on logged data, estimated with
//! importance weights: the objective whose maximizer is the policy optimal
//! on the history.

use super::{HistoryObjective, Objective, Terms};
use crate::error::{Error, Result};
use crate::history::{History, check_row};
use crate::policy::{Policy, check_len};
use crate::real::Real;

/// How the expected return is estimated from logs, with the importance
/// weights w_t = π_θ(a_t | x_t) / μ_t (clipped at M if asked).
#[derive(Debug, Clone, Copy, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum Estimator<F> {
    /// Inverse propensity scoring, V̂ = (1/n) Σ_t r_t w_t (unbiased without clipping).
    Ips,
    /// Self-normalized, V̂ = Σ_t r_t w_t / Σ_t w_t (as in BanditNet):
    /// invariant to a shift of the rewards, biased but of lower variance.
    SelfNormalized,
    /// POEM's sample-variance penalty: V̂ = ū − κ √(Var(u)/n) with
    /// u_t = r_t w_t and Var the sample variance (ddof 1), κ ≥ 0 the
    /// parameter. With n < 2 or Var = 0 the penalty is 0 (and so is its
    /// derivative).
    VariancePenalty(F),
}

impl<F: Real> Estimator<F> {
    fn check(&self) -> Result<()> {
        if let Estimator::VariancePenalty(k) = *self {
            if !(k.is_finite() && k >= F::zero()) {
                return Err(Error::InvalidParameter {
                    name: "kappa",
                    value: k.f64(),
                    expected: "finite and >= 0",
                });
            }
        }
        Ok(())
    }
}

/// The expected return of the policy on the logged history,
///
/// J(θ) = V̂(θ) − (λ/2)‖θ‖²,
///
/// where V̂ estimates E[r | π_θ] from logged (x_t, a_t, r_t, μ_t) by
/// importance weighting ([`Estimator`]): w_t = π_θ(a_t|x_t)/μ_t, or
/// min(w_t, M) with clipping at M (a clipped weight has zero gradient).
/// Its maximizer is π* = argmax E[Σ r | π] on the history, the policy
/// optimal on it, where the log-likelihood objective ([`super::LogLikelihood`])
/// is only the REINFORCE surrogate.
///
/// J is not concave ([`Objective::concave`] is false): it is solved by
/// [`crate::solve::trust_region`] (and by the warm lagged Newton of
/// [`crate::learner::Refit`]), and [`crate::solve::multi_start`] counts
/// its local maxima. For a policy with [`Policy::logits_linear`] and the
/// IPS or self-normalized estimate, the dense −∇²J is formed in one pass
/// ([`Objective::neg_hessian`]). λ > 0 is required (V̂ is bounded, so without a penalty
/// its supremum lies at infinity). Gradients are exact; for a policy with
/// [`Policy::logits_linear`] so are the Hessian-vector products (formulas
/// in docs/ARCHITECTURE.md, "Objectives"); for other policies they are
/// central differences of the exact gradient (two passes each). The
/// convergence scale is 1 + (1/n) Σ |r_t|/μ_t.
///
/// Without clipping, V̂ depends on the rows of one context only through
/// per-action sums of r/μ, 1/μ and r²/μ²: the rows are grouped by context
/// (exactly, by their bits), and a pass costs one softmax per distinct
/// context — O(K) for a context-free policy — when that halves the work;
/// otherwise, and with clipping, the pass runs row by row.
///
/// # Examples
/// ```
/// use refit::history::History;
/// use refit::objective::{Estimator, ExpectedReturn, Objective};
/// use refit::policy::Tabular;
/// use refit::solve::{Options, trust_region};
/// let mut logs = History::new(1);
/// // Uniform logging over 2 arms: arm 1 paid 1, arm 0 paid 0.
/// logs.push(&[1.0], 0, 0.0, 0.5)?;
/// logs.push(&[1.0], 1, 1.0, 0.5)?;
/// let mut obj = ExpectedReturn::new(Tabular::<f64>::new(2)?, logs, 0.01, Estimator::Ips, None)?;
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
        bound = "F: crate::real::Real + serde::Serialize + serde::de::DeserializeOwned, P: serde::Serialize + serde::de::DeserializeOwned"
    )
)]
pub struct ExpectedReturn<F, P> {
    logs: History<F>,
    lambda: F,
    estimator: Estimator<F>,
    clip: Option<F>,
    /// The policy at the θ of the last evaluation.
    model: P,
    /// Σ_t |r_t| / μ_t.
    abs_weighted: F,
    /// Whether J sums the estimate over the points (n·V̂) instead of
    /// averaging it.
    #[cfg_attr(feature = "serde", serde(default))]
    summed: bool,
    /// The rows grouped by context (all in one for a context-free
    /// policy), with per-action sums: all an unclipped estimate needs.
    #[cfg_attr(feature = "serde", serde(skip))]
    groups: Groups<F>,
    /// What the last evaluation left for the Hessian products.
    #[cfg_attr(feature = "serde", serde(skip))]
    state: State<F>,
    /// Where a push keeps the terms it adds, to put back on failure.
    #[cfg_attr(feature = "serde", serde(skip))]
    saved: Vec<F>,
    /// Scratch of [`Objective::neg_hessian`] (not saved).
    #[cfg_attr(feature = "serde", serde(skip))]
    hess: super::HessianRows<F>,
}

/// Per-row and aggregate values at the model's θ.
#[derive(Debug, Clone, Default)]
struct State<F> {
    valid: bool,
    /// π per row (n × K).
    probs: Vec<F>,
    /// w_t, and whether it was clipped.
    w: Vec<F>,
    clipped: Vec<bool>,
    /// V̂, Σ w, ū, the standard error s = √(Var(u)/n).
    value: F,
    sum_w: F,
    mean_u: F,
    sd: F,
    /// ∇V̂ (data part); with the variance penalty also ∇ū and ∇s.
    grad_v: Vec<F>,
    grad_mean: Vec<F>,
    grad_sd: Vec<F>,
    /// Scratch: logits coefficients and logits of the direction.
    c: Vec<F>,
    u: Vec<F>,
    /// Per-row coefficients and logits of a pass (n × probs_len).
    cs: Vec<F>,
    us: Vec<F>,
    /// Whether the last evaluation used the groups; then per group π,
    /// ∂V̂/∂π, ∂Var/∂π (variance penalty) and scratch for π̇ (K each).
    grouped: bool,
    pi: Vec<F>,
    dv: Vec<F>,
    dvar: Vec<F>,
    pdot: Vec<F>,
}

impl<F: Real> State<F> {
    /// Stores Σ w, ū = Σ u / n, V̂ and the standard error of ū.
    fn set_aggregates(&mut self, n: usize, sum_u: F, sum_w: F, value: F, sd: F) {
        self.sum_w = sum_w;
        self.mean_u = if n > 0 {
            sum_u / F::c(n as f64)
        } else {
            F::zero()
        };
        self.value = value;
        self.sd = sd;
    }
}

/// V̂ and s = √(Var(u)/n) from Σ u = Σ r w and Σ w over n rows; `variance`
/// gives the sample variance (ddof 1) of u from ū, and is called only for
/// the variance penalty with n ≥ 2 (otherwise s = 0).
fn finish_estimate<F: Real>(
    estimator: Estimator<F>,
    n: usize,
    sum_u: F,
    sum_w: F,
    variance: impl FnOnce(F) -> F,
) -> (F, F) {
    let nf = F::c(n as f64);
    let mean_u = if n > 0 { sum_u / nf } else { F::zero() };
    match estimator {
        Estimator::Ips => (mean_u, F::zero()),
        Estimator::SelfNormalized => {
            let v = if sum_w > F::zero() {
                sum_u / sum_w
            } else {
                F::zero()
            };
            (v, F::zero())
        }
        Estimator::VariancePenalty(kappa) => {
            let sd = if n >= 2 {
                (variance(mean_u) / nf).sqrt()
            } else {
                F::zero()
            };
            (mean_u - kappa * sd, sd)
        }
    }
}

impl<F: Real, P: Policy<F>> ExpectedReturn<F, P> {
    /// The objective over `logs` for the policy family of `policy` (whose
    /// θ is where evaluation starts), with L2 penalty λ > 0, an estimator,
    /// and optional clipping of the weights at M > 0.
    ///
    /// # Errors
    /// [`Error::InvalidLambda`] for λ < 0 or non-finite,
    /// [`Error::InvalidParameter`] for λ = 0, a clip M ≤ 0 or non-finite, or
    /// a bad κ; [`Error::ContextLength`] if the logs' context length is
    /// not the policy's; [`Error::BadLog`] for a logged value out of range.
    pub fn new(
        policy: P,
        logs: History<F>,
        lambda: F,
        estimator: Estimator<F>,
        clip: Option<F>,
    ) -> Result<Self> {
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
        if let Some(m) = clip {
            if !(m.is_finite() && m > F::zero()) {
                return Err(Error::InvalidParameter {
                    name: "clip",
                    value: m.f64(),
                    expected: "finite and > 0",
                });
            }
        }
        estimator.check()?;
        if logs.context_dim() != policy.context_dim() {
            return Err(Error::ContextLength {
                expected: policy.context_dim(),
                got: logs.context_dim(),
            });
        }
        logs.check(policy.num_actions())?;
        let k = policy.num_actions();
        let abs_weighted = logs.iter().map(|it| it.reward.abs() / it.propensity).sum();
        Ok(Self {
            logs,
            lambda,
            estimator,
            clip,
            model: policy,
            abs_weighted,
            groups: Groups::new(k),
            summed: false,
            state: State::default(),
            saved: Vec::new(),
            hess: Default::default(),
        })
    }

    /// The same objective with the estimate summed over the n points
    /// instead of averaged: J(θ) = n·V̂(θ) − (λ/2)‖θ‖² (for IPS,
    /// Σ_t r_t w_t − (λ/2)‖θ‖²), the scale of the log-likelihood, so that
    /// the same λ weighs the prior against the same amount of data and its
    /// pull fades as the history grows (with the mean, a fixed λ keeps the
    /// optimum at the same distance from the unpenalized one forever). The
    /// convergence scale is then 1 + Σ_t |r_t|/μ_t.
    #[must_use]
    pub fn summed(mut self) -> Self {
        self.summed = true;
        self
    }

    /// Whether the estimate is summed ([`ExpectedReturn::summed`]).
    pub fn is_summed(&self) -> bool {
        self.summed
    }

    /// The factor of V̂ in J: n when summed, else 1.
    fn factor(&self) -> F {
        if self.summed {
            F::c(self.logs.len() as f64)
        } else {
            F::one()
        }
    }

    /// The logs.
    pub fn logs(&self) -> &History<F> {
        &self.logs
    }

    /// λ.
    pub fn lambda(&self) -> F {
        self.lambda
    }

    /// The estimator.
    pub fn estimator(&self) -> Estimator<F> {
        self.estimator
    }

    /// The clipping level M, if any.
    pub fn clip(&self) -> Option<F> {
        self.clip
    }

    fn set_theta(&mut self, theta: &[F]) -> Result<()> {
        check_len("theta", theta.len(), self.model.num_params())?;
        self.model.set_params(theta).map_err(|e| match e {
            Error::NonFiniteParameter { .. } => Error::NonFiniteLogits,
            e => e,
        })
    }

    /// V̂ and its gradient (data part) at the model's θ, leaving the
    /// per-row values in the state.
    fn estimate(&mut self) -> Result<()> {
        if self.clip.is_none() {
            // Grouping pays where contexts repeat (always for a
            // context-free policy); else the row-by-row pass is faster.
            self.sync_groups();
            if 2 * self.groups.len() <= self.logs.len() || self.model.context_free() {
                return self.estimate_grouped();
            }
        }
        self.state.grouped = false;
        let k = self.model.num_actions();
        let p = self.model.num_params();
        let n = self.logs.len();
        let st = &mut self.state;
        st.valid = false;
        let pl = self.model.probs_len().max(k);
        st.probs.resize(n * pl, F::zero());
        st.w.resize(n, F::zero());
        st.clipped.resize(n, false);
        st.c.resize(pl, F::zero());
        st.u.resize(pl, F::zero());
        for v in [&mut st.grad_v, &mut st.grad_mean, &mut st.grad_sd] {
            v.clear();
            v.resize(p, F::zero());
        }
        // π of every row (one π for every row of a context-free policy).
        if self.model.context_free() {
            if let Some(first) = self.logs.get(0) {
                self.model.probabilities_into(first.context, &mut st.c)?;
                for row in st.probs.chunks_exact_mut(pl) {
                    row.copy_from_slice(&st.c[..pl]);
                }
            }
        } else {
            self.model
                .probabilities_rows(self.logs.contexts(), &mut st.probs)?;
        }
        // Weights and the aggregates.
        let (mut sum_u, mut sum_w) = (F::zero(), F::zero());
        for (i, it) in self.logs.iter().enumerate() {
            let raw = st.probs[i * pl + it.action] / it.propensity;
            let (w, clipped) = match self.clip {
                Some(m) if raw > m => (m, true),
                _ => (raw, false),
            };
            st.w[i] = w;
            st.clipped[i] = clipped;
            sum_u += it.reward * w;
            sum_w += w;
        }
        let nf = F::c(n as f64);
        let rewards = self.logs.rewards();
        let w = &st.w;
        let (value, sd) = finish_estimate(self.estimator, n, sum_u, sum_w, |mean_u| {
            rewards
                .iter()
                .zip(w)
                .map(|(r, w)| {
                    let d = *r * *w - mean_u;
                    d * d
                })
                .sum::<F>()
                / F::c((n - 1) as f64)
        });
        st.set_aggregates(n, sum_u, sum_w, value, sd);
        // Gradient: Σ_t g_t ∇w_t with ∇w_t = w_t Jᵀ(e_a − π), zero if
        // clipped; the coefficients of all rows, then one pull-back.
        st.cs.resize(n * pl, F::zero());
        // ∇ of the mean and of the sd only for the variance penalty (they
        // stay zero otherwise).
        let targets = match self.estimator {
            Estimator::VariancePenalty(_) => 3,
            _ => 1,
        };
        for target in 0..targets {
            let mut any = false;
            for (i, it) in self.logs.iter().enumerate() {
                let row = &mut st.cs[i * pl..(i + 1) * pl];
                row.iter_mut().for_each(|v| *v = F::zero());
                if st.clipped[i] || st.w[i] == F::zero() {
                    continue;
                }
                let pi = &st.probs[i * pl..i * pl + k];
                let w = st.w[i];
                let u = it.reward * w;
                let g = match (self.estimator, target) {
                    (Estimator::Ips, 0) => it.reward / nf,
                    (Estimator::SelfNormalized, 0) => (it.reward - st.value) / st.sum_w,
                    (Estimator::VariancePenalty(_), 1) => it.reward / nf,
                    (Estimator::VariancePenalty(_), 2) if st.sd > F::zero() => {
                        it.reward * (u - st.mean_u) / (F::c((n - 1) as f64) * nf * st.sd)
                    }
                    _ => F::zero(),
                };
                if g == F::zero() {
                    continue;
                }
                any = true;
                for (a, ca) in row[..k].iter_mut().enumerate() {
                    let e = if a == it.action { F::one() } else { F::zero() };
                    *ca = g * w * (e - pi[a]);
                }
            }
            if !any {
                continue;
            }
            let out = match target {
                0 => &mut st.grad_v,
                1 => &mut st.grad_mean,
                _ => &mut st.grad_sd,
            };
            self.model
                .add_logits_vjp_rows(self.logs.contexts(), &st.cs, out)?;
        }
        if let Estimator::VariancePenalty(kappa) = self.estimator {
            for ((g, m), s) in st.grad_v.iter_mut().zip(&st.grad_mean).zip(&st.grad_sd) {
                *g = *m - kappa * *s;
            }
        }
        st.valid = true;
        Ok(())
    }

    /// Brings the context groups up to date with the logs (after a
    /// checkpoint was read, they are rebuilt from the logs).
    fn sync_groups(&mut self) {
        let k = self.model.num_actions();
        if self.groups.rows > self.logs.len() || self.groups.k != k {
            self.groups = Groups::new(k);
        }
        let free = self.model.context_free();
        let unit = vec![F::one(); self.logs.context_dim()];
        for i in self.groups.rows..self.logs.len() {
            if let Some(it) = self.logs.get(i) {
                let x = if free { &unit[..] } else { it.context };
                self.groups.add(x, it.action, it.reward, it.propensity);
            }
        }
    }

    /// [`Self::estimate`] without clipping: V̂ from per-context,
    /// per-action sums, one π per distinct context (one for a
    /// context-free policy).
    fn estimate_grouped(&mut self) -> Result<()> {
        let k = self.model.num_actions();
        let p = self.model.num_params();
        let n = self.logs.len();
        let nf = F::c(n as f64);
        let g_count = self.groups.len();
        let gr = &self.groups;
        let st = &mut self.state;
        st.valid = false;
        st.grouped = true;
        let pl = self.model.probs_len().max(k);
        st.c.resize(pl, F::zero());
        st.u.resize(pl, F::zero());
        for v in [&mut st.pi, &mut st.dv, &mut st.dvar, &mut st.pdot] {
            v.clear();
            v.resize(g_count * k, F::zero());
        }
        st.grad_v.clear();
        st.grad_v.resize(p, F::zero());
        let dot = |x: &[F], y: &[F]| -> F { x.iter().zip(y).map(|(u, v)| *u * *v).sum() };
        let (mut sum_u, mut sum_w, mut s2) = (F::zero(), F::zero(), F::zero());
        for g in 0..g_count {
            let (x, a, b, c2) = gr.get(g);
            self.model.probabilities_into(x, &mut st.c)?;
            let pi = &mut st.pi[g * k..(g + 1) * k];
            pi.copy_from_slice(&st.c[..k]);
            sum_u += dot(pi, a);
            sum_w += dot(pi, b);
            s2 += pi.iter().zip(c2).map(|(q, c)| *q * *q * *c).sum::<F>();
        }
        let (value, sd) = finish_estimate(self.estimator, n, sum_u, sum_w, |mean_u| {
            ((s2 - nf * mean_u * mean_u) / F::c((n - 1) as f64)).max(F::zero())
        });
        st.set_aggregates(n, sum_u, sum_w, value, sd);
        for g in 0..g_count {
            let (x, a, b, c2) = gr.get(g);
            let pi = &st.pi[g * k..(g + 1) * k];
            let dv = &mut st.dv[g * k..(g + 1) * k];
            let dvar = &mut st.dvar[g * k..(g + 1) * k];
            for i in 0..k {
                dv[i] = match self.estimator {
                    _ if n == 0 => F::zero(),
                    Estimator::Ips => a[i] / nf,
                    Estimator::SelfNormalized => {
                        if sum_w > F::zero() {
                            (a[i] - st.value * b[i]) / sum_w
                        } else {
                            F::zero()
                        }
                    }
                    Estimator::VariancePenalty(kappa) => {
                        let mut d = a[i] / nf;
                        if st.sd > F::zero() {
                            dvar[i] = F::c(2.0) * (pi[i] * c2[i] - st.mean_u * a[i])
                                / F::c((n - 1) as f64);
                            d -= kappa * dvar[i] / (F::c(2.0) * nf * st.sd);
                        }
                        d
                    }
                };
            }
            // Through the softmax: ∂V̂/∂z_b = π_b (∂V̂/∂π_b − π·∂V̂/∂π).
            let mean = dot(pi, dv);
            for ((cb, &pb), &db) in st.c[..k].iter_mut().zip(pi).zip(dv.iter()) {
                *cb = pb * (db - mean);
            }
            self.model.add_logits_vjp(x, &st.c[..k], &mut st.grad_v)?;
        }
        st.valid = true;
        Ok(())
    }

    /// −∇²J v for the grouped estimate: per group, the exact directional
    /// derivative of ∂V̂/∂z along u = J v, pulled back through J.
    fn neg_hess_vec_grouped(&mut self, at_v: &P, v: &[F], out: &mut [F]) -> Result<()> {
        let k = self.model.num_actions();
        let n = self.logs.len();
        let nf = F::c(n as f64);
        let g_count = self.groups.len();
        let gr = &self.groups;
        let st = &mut self.state;
        let dot = |x: &[F], y: &[F]| -> F { x.iter().zip(y).map(|(u, v)| *u * *v).sum() };
        // π̇ = π ⊙ (u − π·u) per group, and the global rates of change.
        let (mut vdot, mut qdot, mut udot, mut sdot) = (F::zero(), F::zero(), F::zero(), F::zero());
        for g in 0..g_count {
            let (x, a, b, _) = gr.get(g);
            at_v.logits_into(x, &mut st.u)?;
            let pi = &st.pi[g * k..(g + 1) * k];
            let pu = dot(pi, &st.u[..k]);
            let pdot = &mut st.pdot[g * k..(g + 1) * k];
            for ((d, &p), &u) in pdot.iter_mut().zip(pi).zip(&st.u[..k]) {
                *d = p * (u - pu);
            }
            vdot += dot(&st.dv[g * k..(g + 1) * k], pdot);
            qdot += dot(b, pdot);
            udot += dot(a, pdot);
            sdot += dot(&st.dvar[g * k..(g + 1) * k], pdot);
        }
        let two_ns = F::c(2.0) * nf * st.sd;
        if n > 0 {
            udot /= nf;
        }
        if st.sd > F::zero() {
            sdot /= two_ns;
        }
        let mut acc = vec![F::zero(); v.len()];
        let mut ddv = vec![F::zero(); k];
        for g in 0..g_count {
            let (x, a, b, c2) = gr.get(g);
            let pi = &st.pi[g * k..(g + 1) * k];
            let dv = &st.dv[g * k..(g + 1) * k];
            let dvar = &st.dvar[g * k..(g + 1) * k];
            let pdot = &st.pdot[g * k..(g + 1) * k];
            for i in 0..k {
                ddv[i] = match self.estimator {
                    Estimator::Ips => F::zero(),
                    Estimator::SelfNormalized if st.sum_w > F::zero() => {
                        -vdot * b[i] / st.sum_w - dv[i] * qdot / st.sum_w
                    }
                    Estimator::VariancePenalty(kappa) if st.sd > F::zero() && n >= 2 => {
                        let dvar_dot =
                            F::c(2.0) * (pdot[i] * c2[i] - udot * a[i]) / F::c((n - 1) as f64);
                        -kappa * (dvar_dot / two_ns - dvar[i] * sdot / (two_ns * st.sd))
                    }
                    _ => F::zero(),
                };
            }
            // ġ_b = π̇_b (dv_b − π·dv) + π_b (ddv_b − (π̇·dv + π·ddv)).
            let mean = dot(pi, dv);
            let mean_dot = dot(pdot, dv) + dot(pi, &ddv);
            for i in 0..k {
                st.c[i] = pdot[i] * (dv[i] - mean) + pi[i] * (ddv[i] - mean_dot);
            }
            self.model.add_logits_vjp(x, &st.c[..k], &mut acc)?;
        }
        let s = self.factor();
        for ((o, a), &vi) in out.iter_mut().zip(&acc).zip(v) {
            *o = self.lambda * vi - s * *a;
        }
        Ok(())
    }

    /// −∇²J v by central differences of the exact gradient, for policies
    /// whose logits are not linear in θ.
    fn neg_hess_vec_fd(&mut self, v: &[F], out: &mut [F]) -> Result<()> {
        let theta = self.model.params();
        // The remembered θ and what its evaluation left are put back
        // afterwards, whatever happens: two passes per product, not three.
        let saved = (self.model.clone(), std::mem::take(&mut self.state));
        let lambda = self.lambda;
        let result =
            super::difference_hess_vec(&theta, v, lambda, out, |t, g| self.value_grad(t, g));
        (self.model, self.state) = saved;
        result
    }
}

impl<F: Real, P: Policy<F>> Objective<F> for ExpectedReturn<F, P> {
    fn dim(&self) -> usize {
        self.model.num_params()
    }

    fn value_grad(&mut self, theta: &[F], grad: &mut [F]) -> Result<F> {
        check_len("grad", grad.len(), self.model.num_params())?;
        self.set_theta(theta)?;
        self.estimate()?;
        let s = self.factor();
        let mut sq = F::zero();
        for ((g, &gv), &t) in grad.iter_mut().zip(&self.state.grad_v).zip(theta) {
            *g = s * gv - self.lambda * t;
            sq += t * t;
        }
        Ok(s * self.state.value - self.lambda * F::c(0.5) * sq)
    }

    fn neg_hess_vec(&mut self, v: &[F], out: &mut [F]) -> Result<()> {
        let p = self.model.num_params();
        check_len("v", v.len(), p)?;
        check_len("out", out.len(), p)?;
        if !self.model.logits_linear() {
            return self.neg_hess_vec_fd(v, out);
        }
        if !self.state.valid {
            self.estimate()?;
        }
        // J v per row: the logits of the same family at θ = v.
        let mut at_v = self.model.clone();
        at_v.set_params(v).map_err(|_| Error::NonFiniteLogits)?;
        if self.state.grouped {
            return self.neg_hess_vec_grouped(&at_v, v, out);
        }
        let k = self.model.num_actions();
        let n = self.logs.len();
        let nf = F::c(n as f64);
        let st = &mut self.state;
        let dot = |a: &[F], b: &[F]| -> F { a.iter().zip(b).map(|(x, y)| *x * *y).sum() };
        let gv_v = dot(&st.grad_v, v);
        let gm_v = dot(&st.grad_mean, v);
        let gs_v = dot(&st.grad_sd, v);
        // H_J v = Σ_t Jᵀ c_t + (vector terms), c_t in logit space: the
        // logits of every row at θ = v, the coefficients, one pull-back.
        let pl = self.model.probs_len().max(k);
        let mut acc = vec![F::zero(); p];
        let mut sum_wsv = F::zero();
        st.us.resize(n * pl, F::zero());
        st.cs.resize(n * pl, F::zero());
        at_v.logits_rows(self.logs.contexts(), &mut st.us)?;
        for (i, it) in self.logs.iter().enumerate() {
            let row = &mut st.cs[i * pl..(i + 1) * pl];
            row.iter_mut().for_each(|v| *v = F::zero());
            if st.clipped[i] || st.w[i] == F::zero() {
                continue;
            }
            let pi = &st.probs[i * pl..i * pl + k];
            let w = st.w[i];
            let u = &st.us[i * pl..i * pl + k];
            let pu = dot(pi, u);
            let sv = u[it.action] - pu; // s_t · v
            sum_wsv += w * sv;
            // Coefficients of ∇²w_t v (second) and ∇w_t (first), per unit.
            let (a_sec, a_first) = match self.estimator {
                Estimator::Ips => (it.reward / nf, F::zero()),
                Estimator::SelfNormalized => ((it.reward - st.value) / st.sum_w, -gv_v / st.sum_w),
                Estimator::VariancePenalty(kappa) => {
                    let mut sec = it.reward / nf;
                    let mut first = F::zero();
                    if st.sd > F::zero() {
                        let q = kappa / (nf * st.sd * F::c((n - 1) as f64));
                        let ru = it.reward * w;
                        sec -= q * (ru - st.mean_u) * it.reward;
                        first -= q * it.reward * ru * sv;
                    }
                    (sec, first)
                }
            };
            for (a, ca) in row[..k].iter_mut().enumerate() {
                let e = if a == it.action { F::one() } else { F::zero() };
                let first = w * (e - pi[a]);
                let second = w * ((e - pi[a]) * sv - pi[a] * (u[a] - pu));
                *ca = a_sec * second + a_first * first;
            }
        }
        self.model
            .add_logits_vjp_rows(self.logs.contexts(), &st.cs, &mut acc)?;
        match self.estimator {
            Estimator::Ips => {}
            Estimator::SelfNormalized => {
                if st.sum_w > F::zero() {
                    let s = sum_wsv / st.sum_w;
                    for (a, g) in acc.iter_mut().zip(&st.grad_v) {
                        *a -= s * *g;
                    }
                }
            }
            Estimator::VariancePenalty(kappa) => {
                if st.sd > F::zero() && n >= 2 {
                    let c_mean = kappa * nf * gm_v / (nf * st.sd * F::c((n - 1) as f64));
                    let c_sd = kappa * gs_v / st.sd;
                    for ((a, m), s) in acc.iter_mut().zip(&st.grad_mean).zip(&st.grad_sd) {
                        *a += c_mean * *m + c_sd * *s;
                    }
                }
            }
        }
        let s = self.factor();
        for ((o, a), &vi) in out.iter_mut().zip(&acc).zip(v) {
            *o = self.lambda * vi - s * *a;
        }
        Ok(())
    }

    /// The dense −∇²J in one pass, for a policy whose logits are linear in
    /// θ and the IPS or self-normalized estimate (per row, or per context
    /// group, the Hessian in the logits pulled back by
    /// [`Policy::add_logits_hessian`]); `Ok(false)` otherwise.
    fn neg_hessian(&mut self, out: &mut [F]) -> Result<bool> {
        let p = self.dim();
        check_len("out", out.len(), p * p)?;
        if !self.model.logits_linear() || matches!(self.estimator, Estimator::VariancePenalty(_)) {
            return Ok(false);
        }
        if !self.state.valid {
            self.estimate()?;
        }
        let k = self.model.num_actions();
        let n = self.logs.len();
        let nf = F::c(n as f64);
        let sn = matches!(self.estimator, Estimator::SelfNormalized);
        out.iter_mut().for_each(|v| *v = F::zero());
        let (mut a, mut f) = (vec![F::zero(); k], vec![F::zero(); k]);
        // ∇B = Σ ∇w (the self-normalized estimate's denominator).
        let mut grad_b = vec![F::zero(); p];
        // The contexts and logit-space Hessians of the rows that count.
        let mut hess = std::mem::take(&mut self.hess);
        hess.xs.clear();
        hess.cs.clear();
        let (xs_rows, cs_rows) = (&mut hess.xs, &mut hess.cs);
        let st = &self.state;
        let (value, sum_w) = (st.value, st.sum_w);
        if n > 0 && (!sn || sum_w > F::zero()) {
            if st.grouped {
                for g in 0..self.groups.len() {
                    let (x, sa, sb, _) = self.groups.get(g);
                    let pi = &st.pi[g * k..(g + 1) * k];
                    for i in 0..k {
                        a[i] = if sn {
                            (sa[i] - value * sb[i]) / sum_w
                        } else {
                            sa[i] / nf
                        };
                    }
                    super::softmax_value_hessian_lower(pi, &a, &mut f, cs_rows);
                    xs_rows.extend_from_slice(x);
                    if sn {
                        // ∂B/∂z through the softmax: π ⊙ (b − π·b).
                        let mean: F = pi.iter().zip(sb).map(|(p, v)| *p * *v).sum();
                        for ((fb, &pb), &bb) in f.iter_mut().zip(pi).zip(sb) {
                            *fb = pb * (bb - mean);
                        }
                        self.model.add_logits_vjp(x, &f, &mut grad_b)?;
                    }
                }
            } else {
                for (i, it) in self.logs.iter().enumerate() {
                    if st.clipped[i] || st.w[i] == F::zero() {
                        continue;
                    }
                    let pl = self.model.probs_len().max(k);
                    let pi = &st.probs[i * pl..i * pl + k];
                    let coef = if sn {
                        (it.reward - value) / sum_w
                    } else {
                        it.reward / nf
                    };
                    a.iter_mut().for_each(|v| *v = F::zero());
                    a[it.action] = coef / it.propensity;
                    super::softmax_value_hessian_lower(pi, &a, &mut f, cs_rows);
                    xs_rows.extend_from_slice(it.context);
                    if sn {
                        let w = st.w[i];
                        for (b, fb) in f.iter_mut().enumerate() {
                            let e = if b == it.action { F::one() } else { F::zero() };
                            *fb = w * (e - pi[b]);
                        }
                        self.model.add_logits_vjp(it.context, &f, &mut grad_b)?;
                    }
                }
            }
        }
        // The rows' Hessians pulled back together (one blocked product for
        // the linear softmax).
        let formed = self
            .model
            .add_logits_hessian_rows(&hess.xs, &hess.cs, out, &mut hess.work);
        self.hess = hess;
        formed?;
        let scale = self.factor();
        let grad_v = &self.state.grad_v;
        for (i, row) in out.chunks_exact_mut(p).enumerate() {
            for (j, o) in row[..=i].iter_mut().enumerate() {
                let mut h = *o;
                if sn && sum_w > F::zero() {
                    h -= (grad_v[i] * grad_b[j] + grad_b[i] * grad_v[j]) / sum_w;
                }
                *o = if i == j { self.lambda } else { F::zero() } - scale * h;
            }
        }
        Ok(true)
    }

    fn gradient_scale(&self) -> F {
        if self.summed {
            return F::one() + self.abs_weighted;
        }
        let n = self.logs.len().max(1);
        F::one() + self.abs_weighted / F::c(n as f64)
    }

    fn concave(&self) -> bool {
        false
    }
}

impl<F: Real, P: Policy<F>> HistoryObjective<F> for ExpectedReturn<F, P> {
    type Policy = P;

    fn model(&self) -> &P {
        &self.model
    }

    fn points(&self) -> usize {
        self.logs.len()
    }

    fn rows(&self) -> usize {
        self.logs.len()
    }

    /// Appends the interaction to the logs. Where J is a sum over the
    /// points ([`ExpectedReturn::summed`] IPS without clipping, for a
    /// policy whose logits are linear in θ) the point's value, gradient and
    /// negated Hessian at `at` are added to `terms`
    /// ([`HistoryObjective::adds_terms`]); otherwise `terms` are left as
    /// they are.
    fn push(
        &mut self,
        at: &P,
        x: &[F],
        action: usize,
        reward: F,
        propensity: F,
        terms: Terms<'_, F>,
    ) -> Result<()> {
        crate::policy::check_context(x, self.logs.context_dim())?;
        let i = self.logs.len();
        check_row(
            x,
            action,
            reward,
            propensity,
            self.model.num_actions(),
            || format!("row {i}"),
        )?;
        let add = reward.abs() / propensity;
        if !(self.abs_weighted + add).is_finite() {
            return Err(Error::NonFiniteReward {
                value: reward.f64(),
            });
        }
        self.logs.reserve(1)?;
        if self.adds_terms() {
            let mut a = vec![F::zero(); self.model.num_actions()];
            a[action] = reward / propensity;
            let x_eval = if self.model.context_free() {
                vec![F::one(); x.len()]
            } else {
                x.to_vec()
            };
            super::add_row_terms(at, &x_eval, &a, terms, &mut self.saved)?;
        }
        self.logs.push_unchecked(x, action, reward, propensity);
        self.abs_weighted += add;

        self.state.valid = false;
        Ok(())
    }

    fn adds_terms(&self) -> bool {
        self.summed
            && matches!(self.estimator, Estimator::Ips)
            && self.clip.is_none()
            && self.model.logits_linear()
    }

    fn validate(&self) -> Result<()> {
        use crate::error::ensure;
        self.model.validate()?;
        ensure(
            self.lambda.is_finite()
                && self.lambda > F::zero()
                && self.estimator.check().is_ok()
                && self.clip.is_none_or(|m| m.is_finite() && m > F::zero())
                && self.abs_weighted.is_finite(),
            "expected return settings",
        )?;
        ensure(
            self.logs.context_dim() == self.model.context_dim(),
            "expected return shapes",
        )?;
        self.logs
            .check(self.model.num_actions())
            .map_err(|_| crate::error::inconsistent("expected return logs"))
    }
}

/// Logged rows grouped by their context bits: per group the context and,
/// per action a, Σ r/μ, Σ 1/μ and Σ r²/μ² over its rows that took a.
#[derive(Debug, Clone, Default)]
struct Groups<F> {
    k: usize,
    /// Log rows absorbed.
    rows: usize,
    /// Contexts, one per group, back to back.
    xs: Vec<F>,
    d: usize,
    /// Per group 3K sums: [Σ r/μ | Σ 1/μ | Σ r²/μ²].
    sums: Vec<F>,
    index: std::collections::HashMap<Box<[u64]>, usize>,
    key: Vec<u64>,
}

impl<F: Real> Groups<F> {
    fn new(k: usize) -> Self {
        Self {
            k,
            ..Self::default()
        }
    }

    fn len(&self) -> usize {
        self.index.len()
    }

    /// Context and the three per-action sums of group g.
    fn get(&self, g: usize) -> (&[F], &[F], &[F], &[F]) {
        let k = self.k;
        let s = &self.sums[3 * k * g..3 * k * (g + 1)];
        (
            &self.xs[self.d * g..self.d * (g + 1)],
            &s[..k],
            &s[k..2 * k],
            &s[2 * k..],
        )
    }

    fn add(&mut self, x: &[F], action: usize, reward: F, propensity: F) {
        let k = self.k;
        self.d = x.len();
        self.key.clear();
        self.key
            .extend(x.iter().map(|v| super::dataset::key_bits(*v)));
        let g = match self.index.get(&self.key[..]) {
            Some(&g) => g,
            None => {
                let g = self.index.len();
                self.index.insert(self.key.as_slice().into(), g);
                self.xs.extend_from_slice(x);
                self.sums.extend(std::iter::repeat_n(F::zero(), 3 * k));
                g
            }
        };
        let s = &mut self.sums[3 * k * g..3 * k * (g + 1)];
        let q = reward / propensity;
        s[action] += q;
        s[k + action] += F::one() / propensity;
        s[2 * k + action] += q * q;
        self.rows += 1;
    }
}

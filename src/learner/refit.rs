//! The refit-to-convergence learner.

use rand::Rng;

use super::{Decision, Learner, check_interaction};
use crate::error::{Error, Result};
use crate::history::History;
use crate::objective::{Dataset, HistoryObjective, LogLikelihood, Weighting};
use crate::policy::{LinearSoftmax, Policy, Tabular, check_context, sample};
use crate::real::Real;
use crate::solve::warm::Warm;
use crate::solve::{Options, Report, StopReason, closed_form_report};

/// How often a [`Refit`] learner refits: the refit is due before an action
/// when the rule holds for n, the points learned so far, and n₀ < n, the
/// points at the last refit (n₀ = 0 before the first).
///
/// ```
/// use refit::learner::Cadence;
/// // Every 10 points; at n = 1, 2, 4, 8, …; before every action up to 100 points.
/// assert!(Cadence::Every(10).due(20, 10) && !Cadence::Every(10).due(19, 10));
/// assert!(Cadence::Doubling.due(4, 3) && !Cadence::Doubling.due(7, 4));
/// assert!(Cadence::WarmUp(100).due(100, 99) && !Cadence::WarmUp(100).due(101, 100));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(try_from = "CadenceRepr"))]
pub enum Cadence {
    /// When at least k ≥ 1 points arrived since the last refit: n − n₀ ≥ k.
    /// `Every(1)` (the default) refits before every action, the learner's
    /// definition.
    Every(usize),
    /// At doubling epochs: when the history has reached a power of two it
    /// had not reached at the last refit (n = 1, 2, 4, 8, … when one point
    /// arrives per action), ⌊log₂ n⌋ > ⌊log₂ n₀⌋. About log₂ T refits in T steps.
    Doubling,
    /// Before every action until the history holds w ≥ 1 points, never
    /// after: due while n₀ < w (the last refit is on the first w points).
    WarmUp(usize),
}

impl Default for Cadence {
    fn default() -> Self {
        Cadence::Every(1)
    }
}

impl Cadence {
    /// Checks the cadence.
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] for `Every(0)` or `WarmUp(0)`.
    pub fn check(&self) -> Result<()> {
        match *self {
            Cadence::Every(0) => Err(Error::InvalidParameter {
                name: "cadence.every",
                value: 0.0,
                expected: ">= 1",
            }),
            Cadence::WarmUp(0) => Err(Error::InvalidParameter {
                name: "cadence.warm_up",
                value: 0.0,
                expected: ">= 1",
            }),
            _ => Ok(()),
        }
    }

    /// Whether a refit is due with `points` learned in all and `at_last`
    /// of them at the last refit (0 before the first). Nothing is due
    /// without a new point.
    pub fn due(&self, points: usize, at_last: usize) -> bool {
        if points <= at_last {
            return false;
        }
        match *self {
            Cadence::Every(k) => points - at_last >= k,
            Cadence::Doubling => at_last == 0 || points.ilog2() > at_last.ilog2(),
            Cadence::WarmUp(w) => at_last < w,
        }
    }
}

/// What a cadence reads from a checkpoint: a bare number is the
/// `refit_every` of files written before [`Cadence`] existed.
#[cfg(feature = "serde")]
#[derive(serde::Deserialize)]
#[serde(untagged)]
enum CadenceRepr {
    Legacy(usize),
    Tagged(CadenceTagged),
}

#[cfg(feature = "serde")]
#[derive(serde::Deserialize)]
enum CadenceTagged {
    Every(usize),
    Doubling,
    WarmUp(usize),
}

#[cfg(feature = "serde")]
impl TryFrom<CadenceRepr> for Cadence {
    type Error = Error;
    fn try_from(r: CadenceRepr) -> Result<Self> {
        let c = match r {
            CadenceRepr::Legacy(k) | CadenceRepr::Tagged(CadenceTagged::Every(k)) => {
                Cadence::Every(k)
            }
            CadenceRepr::Tagged(CadenceTagged::Doubling) => Cadence::Doubling,
            CadenceRepr::Tagged(CadenceTagged::WarmUp(w)) => Cadence::WarmUp(w),
        };
        c.check()?;
        Ok(c)
    }
}

/// When a [`Refit`] learner refits and what it does with a refit that does
/// not converge: the part of its settings that any objective shares.
#[derive(Debug, Clone, Copy, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Schedule<F> {
    /// Solver tolerance, iteration cap and method (defaults of [`Options`]).
    pub options: Options<F>,
    /// When to refit (default [`Cadence::Every`]`(1)`: before every
    /// action, the learner's definition). Checkpoints written with the
    /// former `refit_every: k` read as `Every(k)`.
    #[cfg_attr(feature = "serde", serde(alias = "refit_every"))]
    pub cadence: Cadence,
    /// Treat a refit that reaches the iteration cap as an error
    /// ([`Error::NotConverged`]) instead of reporting it (default false).
    pub strict: bool,
}

impl<F: Real> Default for Schedule<F> {
    fn default() -> Self {
        Self {
            options: Options::default(),
            cadence: Cadence::default(),
            strict: false,
        }
    }
}

impl<F: Real> Schedule<F> {
    /// Checks the settings.
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] for bad options or a bad cadence.
    pub fn check(&self) -> Result<()> {
        self.options.check()?;
        self.cadence.check()
    }
}

/// Settings of a [`Refit`] learner.
#[derive(Debug, Clone, Copy, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct RefitConfig<F> {
    /// L2 penalty λ ≥ 0 (default 1). λ = 0 is allowed only for a tabular
    /// (context-free) policy, where the optimum is in closed form.
    pub lambda: F,
    /// Reward → weight transform (default [`Weighting::Identity`]).
    pub weighting: Weighting<F>,
    /// Solver tolerance, iteration cap and method (defaults of [`Options`]).
    pub options: Options<F>,
    /// When to refit (default [`Cadence::Every`]`(1)`: before every
    /// action, the learner's definition).
    #[cfg_attr(feature = "serde", serde(alias = "refit_every"))]
    pub cadence: Cadence,
    /// Merge identical contexts into one row of the objective (default true; exact).
    pub compress: bool,
    /// Treat a refit that reaches the iteration cap as an error
    /// ([`Error::NotConverged`]) instead of reporting it (default false).
    pub strict: bool,
}

impl<F: Real> RefitConfig<F> {
    /// The solver settings and refit schedule.
    pub fn schedule(&self) -> Schedule<F> {
        Schedule {
            options: self.options,
            cadence: self.cadence,
            strict: self.strict,
        }
    }
}

impl<F: Real> Default for RefitConfig<F> {
    fn default() -> Self {
        Self {
            lambda: F::one(),
            weighting: Weighting::Identity,
            options: Options::default(),
            cadence: Cadence::default(),
            compress: true,
            strict: false,
        }
    }
}

/// The refit-to-convergence learner: before every action it re-optimizes
/// all of θ on the whole history,
///
/// θ_t = argmax_θ J_t(θ), by default J_t(θ) = Σ_{s<t} w(r_s) log π_θ(a_s | x_s) − (λ/2)‖θ‖²,
///
/// and samples from π_θt (docs/ARCHITECTURE.md, "Learners"). It is generic
/// over the policy family `P` (any [`Policy`]: [`LinearSoftmax`] by
/// default, [`Tabular`], [`crate::policy::ActionFeatures`], a user's own)
/// and the objective `O` (any [`HistoryObjective`] over `P`;
/// [`LogLikelihood`] by default). Every refit is certified
/// (‖∇J‖∞ ≤ tol · (1 + Σ|w|)) and reported ([`Refit::last_report`]).
///
/// A refit is warm-started from the previous optimum with the lagged Newton
/// of [`crate::solve`]: the new points' gradient, value and Hessian are
/// added exactly ([`HistoryObjective::push`]), then Newton steps with the
/// kept (BFGS-corrected) Hessian follow, each certified by one pass over
/// the (compressed) history — about two passes per refit at n = 10⁴ points
/// for K = 10, d = 8, four at n = 10³. With no more rows than parameters
/// the exact Hessian is formed instead; with more than 256 parameters (or
/// [`crate::solve::Method::NewtonCg`]) the refit is Hessian-free. With
/// λ = 0 on a tabular learner the optimum is the closed form
/// π*(a) = R_a / Σ_b R_b; with λ > 0 its log-likelihood takes Newton
/// steps in O(K) (the softmax's Hessian is a diagonal minus a rank one,
/// [`HistoryObjective::structured_refit`]). An objective that is not concave
/// ([`crate::objective::Objective::concave`]: the expected returns
/// [`crate::objective::ExpectedReturn`] and
/// [`crate::objective::FullInformation`], signed weights) is refit, up to
/// 256 parameters, by lagged Newton on a dense Hessian kept from refit to
/// refit (damped where J is not concave at the start), each optimum's
/// curvature certified — by a factorization of the Hessian formed at the
/// optimum where the objective forms it in one pass (logits linear in θ;
/// the next refit then starts from it), else by three steps of Lanczos on
/// the exact Hessian products preconditioned by the kept one
/// ([`Report::min_curvature`]) —
/// and by [`crate::solve::trust_region`] from where it stands when that
/// fails, above 256 parameters or with
/// [`crate::solve::Method::TrustRegion`]; the report says whether it met
/// negative curvature or stopped at a saddle.
///
/// A refit that fails (logits that overflow; no convergence with
/// `strict`) returns an error from [`Learner::act`] and loses nothing: the
/// history keeps every interaction, θ stays at the last good optimum, and
/// the next `act` tries again.
///
/// # Examples
/// ```
/// use refit::learner::{Learner, Refit, RefitConfig};
/// use rand::SeedableRng;
/// let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
/// let mut learner = Refit::<f64, _>::tabular(3, RefitConfig::default())?;
/// for _ in 0..5 {
///     let d = learner.act(&[1.0], &mut rng)?;
///     learner.learn(&[1.0], d.action, 1.0, d.propensity)?;
/// }
/// learner.act(&[1.0], &mut rng)?; // refits on the 5 points first
/// assert!(learner.last_report().expect("refit ran").converged());
/// # Ok::<(), refit::Error>(())
/// ```
#[derive(Debug, Clone)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(
    feature = "serde",
    serde(
        bound = "F: crate::real::Real + serde::Serialize + serde::de::DeserializeOwned, P: serde::Serialize + serde::de::DeserializeOwned, O: serde::Serialize + serde::de::DeserializeOwned"
    )
)]
pub struct Refit<F, P = LinearSoftmax<F>, O = LogLikelihood<F, P>> {
    schedule: Schedule<F>,
    obj: O,
    /// The policy at the current optimum.
    policy: P,
    history: History<F>,
    /// The current optimum (flat).
    theta: Vec<F>,
    /// Where a refit works before its result replaces `theta` (scratch,
    /// not saved).
    #[cfg_attr(feature = "serde", serde(skip))]
    theta_trial: Vec<F>,
    /// π* of the closed form, when the objective has one (length probs_len).
    closed: Option<Vec<F>>,
    warm: Warm<F>,
    /// The solver state before the current refit, put back if it fails.
    #[cfg_attr(feature = "serde", serde(skip))]
    warm_saved: Warm<F>,
    /// The objective's remembered θ before the current refit.
    #[cfg_attr(feature = "serde", serde(skip))]
    model_saved: Vec<F>,
    pending: usize,
    report: Option<Report<F>>,
    refits: usize,
    /// π at the context of the last `act`.
    probs: Vec<F>,
    /// Where π at a new context is formed (a scratch buffer, not saved).
    #[cfg_attr(feature = "serde", serde(skip))]
    scratch: Vec<F>,
    acted: bool,
}

impl<F: Real> Refit<F, LinearSoftmax<F>> {
    /// A learner of a linear softmax policy over `k` actions with
    /// `d`-dimensional contexts and the log-likelihood objective of
    /// `config`, θ = 0 before the first refit.
    ///
    /// # Errors
    /// [`Error::ZeroActions`], [`Error::ZeroContextDim`];
    /// [`Error::InvalidLambda`] for λ < 0 or non-finite, [`Error::ZeroLambda`]
    /// for λ = 0 (no closed form outside the tabular case);
    /// [`Error::InvalidParameter`] for bad options, weighting, or cadence.
    pub fn linear(k: usize, d: usize, config: RefitConfig<F>) -> Result<Self> {
        Self::new(LinearSoftmax::new(k, d)?, config)
    }
}

impl<F: Real> Refit<F, Tabular<F>> {
    /// A learner of a tabular policy over `k` actions: contexts have length
    /// 1 and their value is ignored, as for [`Tabular`]. λ = 0 selects the
    /// closed form.
    ///
    /// # Errors
    /// As [`Refit::linear`], except that λ = 0 is allowed.
    pub fn tabular(k: usize, config: RefitConfig<F>) -> Result<Self> {
        Self::new(Tabular::new(k)?, config)
    }
}

impl<F: Real, P: Policy<F>> Refit<F, P, LogLikelihood<F, P>> {
    /// A learner of any policy family with the log-likelihood objective of
    /// `config`, starting from `policy`'s θ before the first refit.
    ///
    /// # Errors
    /// As [`LogLikelihood::new`] and [`Refit::with_objective`].
    pub fn new(policy: P, config: RefitConfig<F>) -> Result<Self> {
        let data = Dataset::new(policy.num_actions(), policy.context_dim(), config.compress)?;
        let obj = LogLikelihood::new(policy, data, config.lambda, config.weighting)?;
        Self::with_objective(obj, config.schedule())
    }

    /// The objective's (compressed) data.
    pub fn dataset(&self) -> &Dataset<F> {
        self.obj.data()
    }
}

impl<F: Real, P: Policy<F>, O: HistoryObjective<F, Policy = P>> Refit<F, P, O> {
    /// A learner that refits `objective` (which may already hold data; its
    /// policy's θ is the starting point) on the `schedule`.
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] for a bad schedule; allocation failures
    /// as [`Error::InvalidParameter`].
    pub fn with_objective(objective: O, schedule: Schedule<F>) -> Result<Self> {
        schedule.check()?;
        let policy = objective.model().clone();
        let n = policy.num_params();
        let k = policy.num_actions();
        let pl = policy.probs_len();
        let theta = policy.params();
        let closed = objective.closed_form().map(|_| {
            (0..pl)
                .map(|a| {
                    if a < k {
                        F::one() / F::c(k as f64)
                    } else {
                        F::zero()
                    }
                })
                .collect()
        });
        let pending = objective.points();
        Ok(Self {
            schedule,
            warm: Warm::new(n)?,
            warm_saved: Warm::default(),
            model_saved: Vec::new(),
            history: History::new(policy.context_dim()),
            theta_trial: theta.clone(),
            theta,
            closed,
            pending,
            report: None,
            refits: 0,
            probs: crate::limits::try_filled(pl, F::zero(), "k")?,
            scratch: crate::limits::try_filled(pl, F::zero(), "k")?,
            acted: false,
            obj: objective,
            policy,
        })
    }

    /// The refit schedule and solver settings.
    pub fn schedule(&self) -> &Schedule<F> {
        &self.schedule
    }

    /// The objective, with its data.
    pub fn objective(&self) -> &O {
        &self.obj
    }

    /// The policy at the last refit's optimum (the starting policy before
    /// the first refit; in the closed form, see [`Refit::theta`]).
    pub fn policy(&self) -> &P {
        &self.policy
    }

    /// θ of the last refit, flat in the policy's layout (for the linear
    /// softmax, K×d row-major). In the closed form (λ = 0) every parameter
    /// of action a is ln π*(a), −∞ where π*(a) = 0.
    pub fn theta(&self) -> Vec<F> {
        match &self.closed {
            Some(p) => {
                let n = self.theta.len();
                let per = (n / self.policy.num_actions().max(1)).max(1);
                (0..n).map(|i| p[i / per].ln()).collect()
            }
            None => self.theta.clone(),
        }
    }

    /// The report of the last refit, `None` before the first.
    pub fn last_report(&self) -> Option<&Report<F>> {
        self.report.as_ref()
    }

    /// Number of refits made.
    pub fn refits(&self) -> usize {
        self.refits
    }

    /// Number of times a refit formed the Hessian afresh (the rest reused
    /// the lagged one).
    pub fn hessian_refreshes(&self) -> usize {
        self.warm.refreshes
    }

    /// Every interaction learned from, with its propensity.
    pub fn history(&self) -> &History<F> {
        &self.history
    }

    /// Interactions learned since the last refit.
    pub fn pending(&self) -> usize {
        self.pending
    }

    /// Refits if due, then writes π(·|x) (length probs_len) into `scratch`.
    /// A refit is kept only if π at `x` exists under its θ: a failed call
    /// changes nothing.
    fn current_policy(&mut self, x: &[F]) -> Result<()> {
        check_context(x, self.policy.context_dim())?;
        let pl = self.policy.probs_len();
        crate::limits::try_reserve_to(&mut self.scratch, pl, "probabilities")?;
        self.scratch.resize(pl, F::zero());
        let n = self.obj.points();
        if self.schedule.cadence.due(n, n.saturating_sub(self.pending)) {
            self.refit_at(Some(x))
        } else {
            self.probabilities_at(x)
        }
    }

    /// π(·|x) under the current θ into `scratch`.
    fn probabilities_at(&mut self, x: &[F]) -> Result<()> {
        match &self.closed {
            Some(p) => self.scratch.copy_from_slice(p),
            None => {
                self.policy.probabilities_into(x, &mut self.scratch)?;
            }
        }
        Ok(())
    }

    /// Refits now if anything was learned since the last refit.
    ///
    /// # Errors
    /// [`Error::NonFiniteLogits`] if θ overflows the logits on the history,
    /// [`Error::SingularHessian`], and [`Error::NotConverged`] with
    /// `strict`; the learner is then exactly as before the call (θ, the
    /// history, the counters and the solver state, so the next call tries
    /// the same refit again).
    pub fn refit_now(&mut self) -> Result<()> {
        self.refit_at(None)
    }

    /// Refits if anything is pending and, given a context, forms π at it
    /// under the new θ into `scratch` (the current π if nothing is pending);
    /// the new θ, report, counters and solver state are committed only if
    /// everything succeeded.
    fn refit_at(&mut self, x: Option<&[F]>) -> Result<()> {
        if self.pending == 0 {
            return x.map_or(Ok(()), |x| self.probabilities_at(x));
        }
        let report = if let Some(closed) = self.obj.closed_form() {
            // π* does not depend on the context: nothing after it can fail.
            let c = closed?;
            let mut p = crate::limits::try_filled(self.probs.len(), F::zero(), "probabilities")?;
            p[..c.probs.len()].copy_from_slice(&c.probs);
            if x.is_some() {
                self.scratch.copy_from_slice(&p);
            }
            self.closed = Some(p);
            closed_form_report(c.value)
        } else if let Some(report) = self.structured_refit(x)? {
            report
        } else {
            // Solved on copies: θ, the solver state and the objective's
            // remembered θ are put back if anything fails.
            self.warm_saved.copy_from(&self.warm);
            self.model_saved.clear();
            self.model_saved
                .extend_from_slice(&self.obj.model().params());
            let mut theta = std::mem::take(&mut self.theta_trial);
            theta.clone_from(&self.theta);
            use crate::solve::Method;
            let method = self.schedule.options.method;
            let result = if self.obj.concave() && method != Method::TrustRegion {
                self.warm
                    .solve(&mut self.obj, &mut theta, &self.schedule.options)
            } else if matches!(method, Method::Auto | Method::Newton)
                && self.obj.dim() <= crate::solve::DENSE_MAX_DIM
            {
                // Not concave, small: lagged Newton on a dense Hessian
                // kept from refit to refit, curvature certified, the trust
                // region where it is not a maximum.
                self.warm
                    .solve_nonconcave(&mut self.obj, &mut theta, &self.schedule.options)
            } else {
                // Not concave and large, or asked for: the trust region
                // from the previous optimum.
                self.warm.reset();
                crate::solve::trust_region(&mut self.obj, &mut theta, &self.schedule.options)
            };
            let result = result.and_then(|report| self.adopt(&theta, x, report));
            match result {
                Ok(report) => {
                    self.theta_trial = std::mem::replace(&mut self.theta, theta);
                    report
                }
                Err(e) => {
                    self.theta_trial = theta;
                    self.roll_back();
                    return Err(e);
                }
            }
        };
        self.report = Some(report);
        self.refits += 1;
        self.pending = 0;
        Ok(())
    }

    /// The refit by the objective's own structured solver
    /// ([`HistoryObjective::structured_refit`]), `Ok(None)` where it has
    /// none. That solver leaves the objective as it was, so a failure
    /// changes nothing here; on success the warm solver's state is dropped
    /// (it starts afresh if the generic solvers take over again).
    fn structured_refit(&mut self, x: Option<&[F]>) -> Result<Option<Report<F>>> {
        let mut theta = std::mem::take(&mut self.theta_trial);
        theta.clone_from(&self.theta);
        let Some(result) = self
            .obj
            .structured_refit(&mut theta, &self.schedule.options)
        else {
            self.theta_trial = theta;
            return Ok(None);
        };
        let report = match result.and_then(|report| self.adopt(&theta, x, report)) {
            Ok(report) => report,
            Err(e) => {
                // Only the policy may have changed: back to the current
                // optimum, where it was valid.
                self.theta_trial = theta;
                let _ = self.policy.set_params(&self.theta);
                return Err(e);
            }
        };
        self.warm.reset();
        self.theta_trial = std::mem::replace(&mut self.theta, theta);
        Ok(Some(report))
    }

    /// Takes a solver's `report` and θ: refuses a refit that did not
    /// converge (with `strict`) or whose value is not finite, then sets the
    /// policy to θ and, given a context, forms π there into `scratch`. On
    /// error the policy may hold θ: the caller puts back what it changed.
    fn adopt(&mut self, theta: &[F], x: Option<&[F]>, report: Report<F>) -> Result<Report<F>> {
        if report.stop != StopReason::Converged && self.schedule.strict {
            return Err(Error::NotConverged {
                iterations: report.iterations,
                grad_norm: report.grad_norm.f64(),
                threshold: report.threshold.f64(),
            });
        }
        if !report.value.is_finite() {
            return Err(Error::NonFiniteUpdate);
        }
        self.policy.set_params(theta)?;
        if let Some(x) = x {
            match self.obj.structured_probabilities(theta) {
                // The solver's π at θ, the same bits the policy would form.
                Some(p) if p.len() <= self.scratch.len() => {
                    let (head, pad) = self.scratch.split_at_mut(p.len());
                    head.copy_from_slice(p);
                    pad.fill(F::zero());
                }
                _ => {
                    self.policy.probabilities_into(x, &mut self.scratch)?;
                }
            }
        }
        Ok(report)
    }

    /// Puts back what a failed refit changed: the policy's θ, the solver
    /// state and the objective's remembered θ (by one evaluation there,
    /// which also forms its caches again).
    fn roll_back(&mut self) {
        std::mem::swap(&mut self.warm, &mut self.warm_saved);
        // θ was valid before the refit: setting it again cannot fail.
        let _ = self.policy.set_params(&self.theta);
        if let Ok(mut grad) =
            crate::limits::try_filled(self.model_saved.len(), F::zero(), "gradient")
        {
            let _ = self.obj.value_grad_only(&self.model_saved, &mut grad);
        }
    }
}

impl<F: Real, P: Policy<F>, O: HistoryObjective<F, Policy = P>> Learner<F> for Refit<F, P, O> {
    fn num_actions(&self) -> usize {
        self.policy.num_actions()
    }

    fn context_dim(&self) -> usize {
        self.policy.context_dim()
    }

    fn act<R: Rng + ?Sized>(&mut self, x: &[F], rng: &mut R) -> Result<Decision<F>> {
        self.current_policy(x)?;
        std::mem::swap(&mut self.probs, &mut self.scratch);
        self.acted = true;
        let k = self.policy.num_actions();
        let action = sample(&self.probs[..k], rng);
        Ok(Decision {
            action,
            propensity: self.probs[action],
        })
    }

    fn probabilities(&self) -> Option<&[F]> {
        let k = self.policy.num_actions();
        self.acted.then(|| &self.probs[..k])
    }

    fn policy_into(&mut self, x: &[F], out: &mut [F]) -> Result<()> {
        let k = self.policy.num_actions();
        crate::policy::check_len("out", out.len(), k)?;
        self.current_policy(x)?;
        out.copy_from_slice(&self.scratch[..k]);
        Ok(())
    }

    fn validate(&self) -> Result<()> {
        use crate::error::ensure;
        self.schedule
            .check()
            .map_err(|_| crate::error::inconsistent("refit schedule"))?;
        self.obj.validate()?;
        self.policy.validate()?;
        let model = self.obj.model();
        let n = model.num_params();
        self.warm.validate(n)?;
        self.history.validate()?;
        ensure(
            self.policy.num_actions() == model.num_actions()
                && self.policy.context_dim() == model.context_dim()
                && self.policy.num_params() == n
                && self.history.context_dim() == model.context_dim(),
            "refit shapes",
        )?;
        let pl = self.policy.probs_len();
        ensure(
            self.theta.len() == n
                && self.probs.len() == pl
                && self.closed.as_ref().is_none_or(|c| c.len() == pl)
                && self.closed.is_some() == self.obj.closed_form().is_some()
                && self.history.len() == self.obj.points()
                && self.pending <= self.obj.points(),
            "refit buffer lengths",
        )?;
        ensure(
            self.theta.iter().all(|v| v.is_finite()),
            "refit parameters finite",
        )
    }

    fn learn(&mut self, x: &[F], action: usize, reward: F, propensity: F) -> Result<()> {
        check_interaction(action, self.policy.num_actions(), reward, propensity)?;
        self.history.reserve(1)?;
        // The objective checks the context (and everything else) before it
        // changes anything; the history is written only after it succeeded.
        if self.closed.is_some() {
            self.obj.push(
                &self.policy,
                x,
                action,
                reward,
                propensity,
                Default::default(),
            )?;
        } else {
            self.obj.push(
                &self.policy,
                x,
                action,
                reward,
                propensity,
                self.warm.terms(),
            )?;
            self.warm.absorbed();
        }
        self.history.push_unchecked(x, action, reward, propensity);
        self.pending += 1;
        Ok(())
    }
}

//! The refit-to-convergence learner.

use ndarray::Array2;
use rand::Rng;

use super::{Decision, Learner, check_interaction};
use crate::error::{Error, Result};
use crate::history::History;
use crate::objective::{Dataset, LogLikelihood, Weighting};
use crate::policy::kernels::padded;
use crate::policy::{check_context, sample};
use crate::real::Real;
use crate::solve::warm::Warm;
use crate::solve::{Options, Report, StopReason, closed_form};

/// Settings of a [`Refit`] learner.
#[derive(Debug, Clone, Copy, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct RefitConfig<F> {
    /// L2 penalty λ ≥ 0 (default 1). λ = 0 is allowed only for a tabular
    /// learner, where the optimum is in closed form.
    pub lambda: F,
    /// Reward → weight transform (default [`Weighting::Identity`]).
    pub weighting: Weighting<F>,
    /// Solver tolerance, iteration cap and method (defaults of [`Options`]).
    pub options: Options<F>,
    /// Refit when at least this many interactions arrived since the last
    /// refit (default 1: before every action, the learner's definition).
    pub refit_every: usize,
    /// Merge identical contexts into one row of the objective (default true; exact).
    pub compress: bool,
    /// Treat a refit that reaches the iteration cap as an error
    /// ([`Error::NotConverged`]) instead of reporting it (default false).
    pub strict: bool,
}

impl<F: Real> Default for RefitConfig<F> {
    fn default() -> Self {
        Self {
            lambda: F::one(),
            weighting: Weighting::Identity,
            options: Options::default(),
            refit_every: 1,
            compress: true,
            strict: false,
        }
    }
}

/// The refit-to-convergence learner: before every action it re-optimizes
/// all of θ on the whole history,
///
/// θ_t = argmax_θ Σ_{s<t} w(r_s) log π_θ(a_s | x_s) − (λ/2)‖θ‖²,
///
/// and samples from π_θt (DESIGN §4). Every refit is certified
/// (‖∇J‖∞ ≤ tol · (1 + Σ|w|)) and reported ([`Refit::last_report`]).
///
/// A refit is warm-started from the previous optimum with the lagged Newton
/// of [`crate::solve`]: the new points' gradient, value and Hessian are
/// added exactly, then Newton steps with the kept (BFGS-corrected) Hessian
/// follow, each certified by one pass over the (compressed) history — about
/// two passes per refit at n = 10⁴ points for K = 10, d = 8, four at
/// n = 10³. With no more rows than parameters the exact Hessian is formed
/// instead; with K·d > 256 (or [`crate::solve::Method::NewtonCg`]) the
/// refit is Hessian-free. With λ = 0 on a tabular learner the optimum is the
/// closed form π*(a) = R_a / Σ_b R_b.
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
/// let mut learner = Refit::<f64>::tabular(3, RefitConfig::default())?;
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
    serde(bound = "F: crate::real::Real + serde::Serialize + serde::de::DeserializeOwned")
)]
pub struct Refit<F> {
    k: usize,
    d: usize,
    tabular: bool,
    config: RefitConfig<F>,
    obj: LogLikelihood<F>,
    history: History<F>,
    /// The current optimum, padded feature-major.
    theta_t: Vec<F>,
    /// Where a refit works before its result replaces `theta_t`.
    theta_trial: Vec<F>,
    /// π* of the closed form (λ = 0), padded.
    closed: Option<Vec<F>>,
    warm: Warm<F>,
    pending: usize,
    report: Option<Report<F>>,
    refits: usize,
    probs: Vec<F>,
    scratch: Vec<F>,
    acted: bool,
}

impl<F: Real> Refit<F> {
    /// A learner of a linear softmax policy over `k` actions with
    /// `d`-dimensional contexts, θ = 0 before the first refit.
    ///
    /// # Errors
    /// [`Error::ZeroActions`], [`Error::ZeroContextDim`];
    /// [`Error::InvalidLambda`] for λ < 0, non-finite, or 0 (no closed form
    /// outside the tabular case); [`Error::InvalidParameter`] for bad
    /// options, weighting, or `refit_every = 0`.
    pub fn linear(k: usize, d: usize, config: RefitConfig<F>) -> Result<Self> {
        Self::build(k, d, false, config)
    }

    /// A learner of a tabular policy over `k` actions: contexts have length
    /// 1 and their value is ignored, as for [`crate::policy::Tabular`].
    /// λ = 0 selects the closed form.
    ///
    /// # Errors
    /// As [`Refit::linear`], except that λ = 0 is allowed.
    pub fn tabular(k: usize, config: RefitConfig<F>) -> Result<Self> {
        Self::build(k, 1, true, config)
    }

    fn build(k: usize, d: usize, tabular: bool, config: RefitConfig<F>) -> Result<Self> {
        if !(config.lambda.is_finite() && config.lambda >= F::zero()) {
            return Err(Error::InvalidLambda {
                value: config.lambda.f64(),
            });
        }
        if config.lambda == F::zero() && !tabular {
            return Err(Error::InvalidLambda { value: 0.0 });
        }
        config.options.check()?;
        config.weighting.check()?;
        if config.refit_every == 0 {
            return Err(Error::InvalidParameter {
                name: "refit_every",
                value: 0.0,
                expected: ">= 1",
            });
        }
        let data = Dataset::new(k, d, config.compress)?;
        let obj = LogLikelihood::new(data, config.lambda)?;
        let kp = padded(k);
        let warm = Warm::new(&obj)?;
        let closed = (config.lambda == F::zero()).then(|| {
            (0..kp)
                .map(|a| {
                    if a < k {
                        F::one() / F::c(k as f64)
                    } else {
                        F::zero()
                    }
                })
                .collect()
        });
        Ok(Self {
            k,
            d,
            tabular,
            config,
            obj,
            history: History::new(d),
            theta_t: crate::error::try_filled(kp * d, F::zero(), "k * d")?,
            theta_trial: crate::error::try_filled(kp * d, F::zero(), "k * d")?,
            closed,
            warm,
            pending: 0,
            report: None,
            refits: 0,
            probs: vec![F::zero(); kp],
            scratch: vec![F::zero(); kp],
            acted: false,
        })
    }

    /// The settings.
    pub fn config(&self) -> &RefitConfig<F> {
        &self.config
    }

    /// θ of the last refit as a K×d matrix (θ = 0 before the first). In the
    /// closed form (λ = 0) it is θ_a = ln π*(a), −∞ where π*(a) = 0.
    pub fn theta(&self) -> Array2<F> {
        let kp = padded(self.k);
        match &self.closed {
            Some(p) => Array2::from_shape_fn((self.k, self.d), |(a, _)| p[a].ln()),
            None => Array2::from_shape_fn((self.k, self.d), |(a, j)| self.theta_t[j * kp + a]),
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

    /// The objective's (compressed) data.
    pub fn dataset(&self) -> &Dataset<F> {
        self.obj.data()
    }

    /// Interactions learned since the last refit.
    pub fn pending(&self) -> usize {
        self.pending
    }

    /// The context the policy sees: `[1]` for a tabular learner.
    fn state<'a>(&self, x: &'a [F], one: &'a [F; 1]) -> Result<&'a [F]> {
        check_context(x, self.d)?;
        Ok(if self.tabular { one } else { x })
    }

    /// Refits if due, then writes π(·|x) (padded) into `scratch`.
    fn current_policy(&mut self, x: &[F]) -> Result<()> {
        let one = [F::one()];
        let state = self.state(x, &one)?;
        if self.pending >= self.config.refit_every {
            self.refit_now()?;
        }
        match &self.closed {
            Some(p) => self.scratch.copy_from_slice(p),
            None => self.obj.probs_at(&self.theta_t, state, &mut self.scratch)?,
        }
        Ok(())
    }

    /// Refits now if anything was learned since the last refit.
    ///
    /// # Errors
    /// [`Error::NonFiniteLogits`] if θ overflows the logits on the history,
    /// [`Error::SingularHessian`], and [`Error::NotConverged`] with
    /// `strict`; θ and the history are then as before.
    pub fn refit_now(&mut self) -> Result<()> {
        if self.pending == 0 {
            return Ok(());
        }
        let report = if self.closed.is_some() {
            let (p, report) = closed_form(self.obj.data())?;
            let mut padded_p = vec![F::zero(); padded(self.k)];
            padded_p[..self.k].copy_from_slice(&p);
            self.closed = Some(padded_p);
            report
        } else {
            // Solved on a copy: θ changes only when the refit succeeds.
            let mut theta_t = std::mem::take(&mut self.theta_trial);
            theta_t.clone_from(&self.theta_t);
            let result = self
                .warm
                .solve(&mut self.obj, &mut theta_t, &self.config.options);
            let report = match result {
                Ok(r) => r,
                Err(e) => {
                    self.theta_trial = theta_t;
                    self.warm.reset();
                    return Err(e);
                }
            };
            if report.stop != StopReason::Converged && self.config.strict {
                self.theta_trial = theta_t;
                self.warm.reset();
                return Err(Error::NotConverged {
                    iterations: report.iterations,
                    grad_norm: report.grad_norm.f64(),
                    threshold: report.threshold.f64(),
                });
            }
            self.theta_trial = std::mem::replace(&mut self.theta_t, theta_t);
            report
        };
        self.report = Some(report);
        self.refits += 1;
        self.pending = 0;
        Ok(())
    }
}

impl<F: Real> Learner<F> for Refit<F> {
    fn num_actions(&self) -> usize {
        self.k
    }

    fn context_dim(&self) -> usize {
        self.d
    }

    fn act<R: Rng + ?Sized>(&mut self, x: &[F], rng: &mut R) -> Result<Decision<F>> {
        self.current_policy(x)?;
        std::mem::swap(&mut self.probs, &mut self.scratch);
        self.acted = true;
        let action = sample(&self.probs[..self.k], rng);
        Ok(Decision {
            action,
            propensity: self.probs[action],
        })
    }

    fn probabilities(&self) -> Option<&[F]> {
        self.acted.then(|| &self.probs[..self.k])
    }

    fn policy_into(&mut self, x: &[F], out: &mut [F]) -> Result<()> {
        crate::policy::check_len("out", out.len(), self.k)?;
        self.current_policy(x)?;
        out.copy_from_slice(&self.scratch[..self.k]);
        Ok(())
    }

    fn validate(&self) -> Result<()> {
        use crate::error::{ensure, inconsistent};
        let fresh = Self::build(self.k, self.d, self.tabular, self.config)
            .map_err(|_| inconsistent("refit configuration"))?;
        self.obj.validate()?;
        self.warm.validate(&self.obj)?;
        self.history.validate()?;
        let data = self.obj.data();
        ensure(
            data.num_actions() == self.k
                && data.context_dim() == self.d
                && self.history.context_dim() == self.d
                && (!self.tabular || self.d == 1),
            "refit shapes",
        )?;
        ensure(
            self.theta_t.len() == fresh.theta_t.len()
                && self.theta_trial.len() == fresh.theta_trial.len()
                && self.probs.len() == fresh.probs.len()
                && self.scratch.len() == fresh.scratch.len()
                && self.closed.as_ref().map(Vec::len) == fresh.closed.as_ref().map(Vec::len)
                && self.history.len() == data.points(),
            "refit buffer lengths",
        )?;
        ensure(
            self.theta_t.iter().all(|v| v.is_finite()),
            "refit parameters finite",
        )
    }

    fn learn(&mut self, x: &[F], action: usize, reward: F, propensity: F) -> Result<()> {
        check_interaction(action, self.k, reward, propensity)?;
        let one = [F::one()];
        let state = self.state(x, &one)?;
        let weight = self.config.weighting.weight(reward, self.history.len())?;
        // Everything that can fail runs before anything is changed.
        let log_p = if self.closed.is_some() {
            F::zero()
        } else {
            self.obj
                .point_at(&self.theta_t, state, action, &mut self.scratch)?
        };
        // Context, action and weight were checked above.
        self.obj.push_unchecked(state, action, weight);
        if self.closed.is_none() {
            self.warm
                .absorb(&self.obj, state, action, weight, &self.scratch, log_p);
        }
        self.history.push_unchecked(x, action, reward, propensity);
        self.pending += 1;
        Ok(())
    }
}

//! The incremental learner: one REINFORCE step per interaction.

use rand::Rng;

use super::{Decision, Learner, check_interaction};
use crate::error::{Error, Result};
use crate::policy::{Checked, LinearSoftmax, Policy, Tabular, max_abs, sample};
use crate::real::Real;

/// Step size schedule α_t, with t the number of updates made before this one.
#[derive(Debug, Clone, Copy, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum StepSize<F> {
    /// α_t = α.
    Constant(F),
    /// α_t = α₀ / (1 + t)^κ.
    Decaying {
        /// α₀ > 0.
        alpha0: F,
        /// κ ≥ 0.
        kappa: F,
    },
}

impl<F: Real> StepSize<F> {
    fn check(&self) -> Result<()> {
        let alpha = match *self {
            StepSize::Constant(a) => a,
            StepSize::Decaying { alpha0, kappa } => {
                if !(kappa.is_finite() && kappa >= F::zero()) {
                    return Err(Error::InvalidParameter {
                        name: "kappa",
                        value: kappa.f64(),
                        expected: "finite and >= 0",
                    });
                }
                alpha0
            }
        };
        if alpha.is_finite() && alpha > F::zero() {
            Ok(())
        } else {
            Err(Error::InvalidStepSize { value: alpha.f64() })
        }
    }

    /// α_t for update number `t` (0-based).
    #[inline]
    pub fn at(&self, t: u64) -> F {
        match *self {
            StepSize::Constant(a) => a,
            StepSize::Decaying { alpha0, kappa } => {
                alpha0 / (F::one() + F::c(t as f64)).powf(kappa)
            }
        }
    }
}

/// The reward baseline b_t subtracted in the update.
#[derive(Debug, Clone, Copy, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum Baseline<F> {
    /// b_t = 0.
    None,
    /// b_t = mean of all rewards up to and including r_t (Sutton & Barto,
    /// 2nd ed., §2.8, eq. 2.12).
    RunningMean,
    /// b_t = b_{t−1} + rate · (r_t − b_{t−1}), including r_t, starting from b_1 = r_1.
    Ema {
        /// rate ∈ (0, 1].
        rate: F,
    },
}

/// Incremental policy-gradient (REINFORCE) learner:
/// θ_{t+1} = θ_t + α_t (r_t − b_t) ∇_θ log π_θt(a_t | x_t).
///
/// With a [`Tabular`] policy and [`Baseline::RunningMean`] this is the
/// gradient bandit algorithm of Sutton & Barto (2nd ed., §2.8). An update
/// touches O(K·d) numbers and allocates nothing. The gradient is taken at
/// π_θt(· | x_t): when `learn` follows `act` on the same context, the
/// probabilities that `act` computed are reused, otherwise they are recomputed.
///
/// # Examples
/// ```
/// use refit::learner::{Baseline, Incremental, Learner, StepSize};
/// use rand::SeedableRng;
/// let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
/// let mut learner = Incremental::<f64, _>::tabular(3, StepSize::Constant(0.1), Baseline::RunningMean)?;
/// let d = learner.act(&[1.0], &mut rng)?;
/// learner.learn(&[1.0], d.action, 1.0, d.propensity)?;
/// # Ok::<(), refit::Error>(())
/// ```
///
/// # References
/// R. J. Williams (1992), Simple statistical gradient-following algorithms for
/// connectionist reinforcement learning. Sutton & Barto (2018), *Reinforcement
/// Learning: An Introduction*, 2nd ed., §2.8 and §13.3.
#[derive(Debug, Clone)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Incremental<F, P = LinearSoftmax<F>> {
    policy: P,
    step_size: StepSize<F>,
    baseline: Baseline<F>,
    /// Baseline value after the last update.
    baseline_value: F,
    /// Number of successful updates.
    steps: u64,
    /// π(· | probs_x) computed by the last successful `act`; it is π at the
    /// current θ while `probs_valid` (no update since).
    probs: Vec<F>,
    probs_x: Vec<F>,
    probs_valid: bool,
    acted: bool,
    /// Where `act` and `learn` compute π when the cache does not hold it
    /// (scratch, not saved; sized when first used).
    #[cfg_attr(feature = "serde", serde(skip))]
    scratch: Vec<F>,
}

impl<F: Real> Incremental<F, Tabular<F>> {
    /// A learner with a uniform [`Tabular`] policy over `k` actions.
    ///
    /// # Errors
    /// As [`Incremental::new`] and [`Tabular::new`].
    pub fn tabular(k: usize, step_size: StepSize<F>, baseline: Baseline<F>) -> Result<Self> {
        Self::new(Tabular::new(k)?, step_size, baseline)
    }
}

impl<F: Real> Incremental<F, LinearSoftmax<F>> {
    /// A learner with a [`LinearSoftmax`] policy, θ = 0.
    ///
    /// # Errors
    /// As [`Incremental::new`] and [`LinearSoftmax::new`].
    pub fn linear(
        k: usize,
        d: usize,
        step_size: StepSize<F>,
        baseline: Baseline<F>,
    ) -> Result<Self> {
        Self::new(LinearSoftmax::new(k, d)?, step_size, baseline)
    }
}

impl<F: Real, P: Policy<F>> Incremental<F, P> {
    /// A learner starting from `policy`.
    ///
    /// # Errors
    /// [`Error::InvalidStepSize`] for α ≤ 0 or non-finite,
    /// [`Error::InvalidParameter`] for κ < 0 or an EMA rate outside (0, 1].
    pub fn new(policy: P, step_size: StepSize<F>, baseline: Baseline<F>) -> Result<Self> {
        step_size.check()?;
        if let Baseline::Ema { rate } = baseline {
            if !(rate > F::zero() && rate <= F::one()) {
                return Err(Error::InvalidParameter {
                    name: "rate",
                    value: rate.f64(),
                    expected: "in (0, 1]",
                });
            }
        }
        let k = policy.probs_len();
        let d = policy.context_dim();
        Ok(Self {
            policy,
            step_size,
            baseline,
            baseline_value: F::zero(),
            steps: 0,
            probs: vec![F::zero(); k],
            probs_x: vec![F::zero(); d],
            probs_valid: false,
            acted: false,
            scratch: vec![F::zero(); k],
        })
    }

    /// The policy being learned.
    pub fn policy(&self) -> &P {
        &self.policy
    }

    /// Number of updates made so far.
    pub fn steps(&self) -> u64 {
        self.steps
    }

    /// The baseline value after the last update (0 before the first).
    pub fn baseline_value(&self) -> F {
        self.baseline_value
    }

    /// The step size schedule.
    pub fn step_size(&self) -> StepSize<F> {
        self.step_size
    }

    /// The baseline kind.
    pub fn baseline(&self) -> Baseline<F> {
        self.baseline
    }

    /// The baseline b_t after seeing `reward`, without committing it.
    #[inline]
    fn next_baseline(&self, reward: F) -> F {
        match self.baseline {
            Baseline::None => F::zero(),
            Baseline::RunningMean => {
                let n = F::c((self.steps + 1) as f64);
                self.baseline_value + (reward - self.baseline_value) / n
            }
            Baseline::Ema { rate } => {
                if self.steps == 0 {
                    reward
                } else {
                    self.baseline_value + rate * (reward - self.baseline_value)
                }
            }
        }
    }

    /// Whether the cached probabilities are π_θ(· | x) for the current θ.
    #[inline]
    fn cached_at(&self, x: &[F]) -> bool {
        self.probs_valid
            && x.len() == self.probs_x.len()
            && x.iter()
                .zip(&self.probs_x)
                .fold(true, |same, (a, b)| same & (a == b))
    }
}

impl<F: Real, P: Policy<F>> Incremental<F, P> {
    /// The scratch buffer at the policy's length (it is not saved, so a
    /// loaded learner sizes it on first use).
    #[inline]
    fn sized_scratch(&mut self) -> Result<()> {
        let kp = self.policy.probs_len();
        if self.scratch.len() != kp {
            crate::limits::try_reserve_to(&mut self.scratch, kp, "probabilities")?;
            self.scratch.resize(kp, F::zero());
        }
        Ok(())
    }
}

impl<F: Real, P: Policy<F>> Learner<F> for Incremental<F, P> {
    fn num_actions(&self) -> usize {
        self.policy.num_actions()
    }

    fn context_dim(&self) -> usize {
        self.policy.context_dim()
    }

    #[inline]
    fn act<R: Rng + ?Sized>(&mut self, x: &[F], rng: &mut R) -> Result<Decision<F>> {
        if !self.cached_at(x) {
            // The interaction's one validation of the context; computed
            // aside, so that a failure leaves the last decision's π in place.
            let checked = Checked::new(x, self.policy.context_dim())?;
            self.sized_scratch()?;
            self.policy
                .probabilities_checked(checked, &mut self.scratch)?;
            std::mem::swap(&mut self.probs, &mut self.scratch);
            self.probs_x.copy_from_slice(x);
            self.probs_valid = true;
        }
        self.acted = true;
        let action = sample(&self.probs, rng);
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
        crate::policy::check_len("out", out.len(), self.policy.num_actions())?;
        self.policy.probabilities_into(x, out).map(|_| ())
    }

    fn validate(&self) -> Result<()> {
        use crate::error::{ensure, inconsistent};
        self.policy.validate()?;
        self.step_size
            .check()
            .map_err(|_| inconsistent("step size"))?;
        if let Baseline::Ema { rate } = self.baseline {
            ensure(rate > F::zero() && rate <= F::one(), "baseline rate")?;
        }
        ensure(self.baseline_value.is_finite(), "baseline value")?;
        // `learn` trusts a context equal to the cached one as checked.
        ensure(
            !self.probs_valid || self.probs_x.iter().all(|v| v.is_finite()),
            "cached context finite",
        )?;
        let (kp, d) = (self.policy.probs_len(), self.policy.context_dim());
        ensure(
            self.probs.len() == kp && self.probs_x.len() == d,
            "learner buffer lengths",
        )
    }

    #[inline]
    fn learn(&mut self, x: &[F], action: usize, reward: F, propensity: F) -> Result<()> {
        check_interaction(action, self.policy.num_actions(), reward, propensity)?;
        // The context `act` checked (compared bit for bit), or a new one,
        // checked here.
        let (x, probs) = if self.cached_at(x) {
            (Checked::trusted(x, max_abs(x)), &self.probs)
        } else {
            let x = Checked::new(x, self.policy.context_dim())?;
            self.sized_scratch()?;
            self.policy.probabilities_checked(x, &mut self.scratch)?;
            (x, &self.scratch)
        };
        let b = self.next_baseline(reward);
        let scale = self.step_size.at(self.steps) * (reward - b);
        if !scale.is_finite() {
            return Err(Error::NonFiniteUpdate);
        }
        self.policy
            .add_scaled_score_checked(x, action, probs, scale)?;
        self.baseline_value = b;
        self.steps += 1;
        self.probs_valid = false;
        Ok(())
    }
}

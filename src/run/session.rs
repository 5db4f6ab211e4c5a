//! One seed of an experiment, played step by step.

use rand_chacha::ChaCha8Rng;

use super::{Step, env_rng, learner_rng};
use crate::env::Environment;
use crate::error::{Error, Result};
use crate::learner::Learner;
use crate::real::Real;

/// One seed of an experiment: an environment, a learner and their two
/// random streams (see [`crate::run`]), advanced one interaction at a time.
///
/// [`crate::run::Runner`] plays its seeds through sessions; a session can
/// also be driven by hand, and, with feature `serde`, saved and resumed
/// bit for bit (`refit::checkpoint`).
///
/// A step that fails (a learner's error, say) may leave the environment
/// advanced: the session then refuses further steps with
/// [`Error::SessionFailed`]; resume from a checkpoint instead.
///
/// # Examples
/// ```
/// use refit::env::Bernoulli;
/// use refit::learner::{Baseline, Incremental, StepSize};
/// use refit::session::Session;
/// let mut s = Session::new(
///     7,
///     |_| Bernoulli::new(vec![0.2f64, 0.8]),
///     || Incremental::tabular(2, StepSize::Constant(0.1), Baseline::RunningMean),
/// )?;
/// let step = s.step()?;
/// assert!(step.reward == 0.0 || step.reward == 1.0);
/// assert_eq!(s.steps_done(), 1);
/// # Ok::<(), refit::Error>(())
/// ```
#[derive(Debug, Clone)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Session<F, E, L> {
    seed: u64,
    steps_done: usize,
    failed: bool,
    env: E,
    learner: L,
    env_rng: ChaCha8Rng,
    learner_rng: ChaCha8Rng,
    x: Vec<F>,
    mu: Vec<F>,
}

impl<F: Real, E: Environment<F>, L: Learner<F>> Session<F, E, L> {
    /// Seed `seed`'s session: the environment is built from its environment
    /// stream, the learner by `make_learner`.
    ///
    /// # Errors
    /// Errors of the two constructors, and [`Error::Length`] if the learner
    /// and the environment disagree on K or d.
    pub fn new(
        seed: u64,
        make_env: impl FnOnce(&mut ChaCha8Rng) -> Result<E>,
        make_learner: impl FnOnce() -> Result<L>,
    ) -> Result<Self> {
        let mut env_rng = env_rng(seed);
        let env = make_env(&mut env_rng)?;
        let learner = make_learner()?;
        let (k, d) = (env.num_actions(), env.context_dim());
        for (what, learner, environment) in [
            ("number of actions K", learner.num_actions(), k),
            ("context length d", learner.context_dim(), d),
        ] {
            if learner != environment {
                return Err(Error::Mismatch {
                    what,
                    learner,
                    environment,
                });
            }
        }
        Ok(Self {
            seed,
            steps_done: 0,
            failed: false,
            env,
            learner,
            env_rng,
            learner_rng: learner_rng(seed),
            x: vec![F::zero(); d],
            mu: vec![F::zero(); k],
        })
    }

    /// Plays one interaction: a context, an action, its reward, learning.
    ///
    /// # Errors
    /// Errors of the environment and the learner; after one, every call
    /// returns [`Error::SessionFailed`].
    pub fn step(&mut self) -> Result<Step> {
        if self.failed {
            return Err(Error::SessionFailed {
                seed: self.seed,
                step: self.steps_done + 1,
            });
        }
        let result = self.try_step();
        match result {
            Ok(_) => self.steps_done += 1,
            Err(_) => self.failed = true,
        }
        result
    }

    fn try_step(&mut self) -> Result<Step> {
        self.env.next_context(&mut self.env_rng, &mut self.x)?;
        let d = self.learner.act(&self.x, &mut self.learner_rng)?;
        self.env.expected_rewards(&mut self.mu)?;
        // In four lanes: a K-long chain of dependent compares costs more than
        // the rest of the step's bookkeeping at K = 100.
        let best = crate::kernels::max(&self.mu);
        let chosen = self.mu[d.action];
        let r = self.env.reward(d.action, &mut self.env_rng)?;
        self.learner.learn(&self.x, d.action, r, d.propensity)?;
        Ok(Step {
            action: d.action,
            propensity: d.propensity.f64(),
            reward: r.f64(),
            regret: (best - chosen).f64(),
            optimal: chosen >= best,
        })
    }

    /// Checks the session's invariants and those of its learner and
    /// environment, as after reading it from a checkpoint.
    ///
    /// # Errors
    /// [`Error::Checkpoint`] with [`crate::CheckpointProblem::Inconsistent`].
    pub fn validate(&self) -> Result<()> {
        use crate::error::ensure;
        self.env.validate()?;
        self.learner.validate()?;
        let (k, d) = (self.env.num_actions(), self.env.context_dim());
        ensure(
            self.learner.num_actions() == k
                && self.learner.context_dim() == d
                && self.x.len() == d
                && self.mu.len() == k,
            "session shapes",
        )
    }

    /// The seed.
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// Interactions played.
    pub fn steps_done(&self) -> usize {
        self.steps_done
    }

    /// The context of the last step.
    pub fn context(&self) -> &[F] {
        &self.x
    }

    /// The environment.
    pub fn env(&self) -> &E {
        &self.env
    }

    /// The learner.
    pub fn learner(&self) -> &L {
        &self.learner
    }

    /// The learner, mutably (to evaluate its policy, say).
    pub fn learner_mut(&mut self) -> &mut L {
        &mut self.learner
    }

    /// The learner, mutably, beside the environment.
    pub fn learner_and_env(&mut self) -> (&mut L, &E) {
        (&mut self.learner, &self.env)
    }
}

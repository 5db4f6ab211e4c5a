//! # refit
//!
//! Online learning of a stochastic softmax policy, with two learners that can
//! be played on exactly the same stream of experience:
//!
//! * [`learner::Incremental`] takes one REINFORCE step per interaction,
//!   θ ← θ + α (r − b) ∇ log π_θ(a | x);
//! * [`learner::Refit`] re-optimizes all of θ to convergence on the whole
//!   history before every action, θ_t = argmax Σ_{s<t} w(r_s) log π_θ(a_s|x_s)
//!   − (λ/2)‖θ‖² (or another [`objective::HistoryObjective`]), and
//!   certifies every optimum.
//!
//! Both learn any [`policy::Policy`]: the linear softmax, the tabular one,
//! the conditional logit over action-dependent features, or a user's own
//! (seven methods). The design — modules, what flows between them, the
//! invariants, how to add a policy, an objective or an environment — is in
//! `docs/ARCHITECTURE.md`.
//!
//! The question behind the crate: does optimizing θ all the way to
//! convergence before every action behave differently from one gradient step,
//! and is the optimum of the history objective even the policy we want?
//!
//! # Quick start
//! The gradient bandit of Sutton & Barto (§2.8) on a two-armed Bernoulli
//! bandit, over 20 seeds:
//! ```
//! use refit::env::Bernoulli;
//! use refit::learner::{Baseline, Incremental, StepSize};
//! use refit::run::Runner;
//!
//! let summary = Runner::new(1000, 20)?.run(
//!     |_env_rng| Bernoulli::new(vec![0.2f64, 0.8]),
//!     || Incremental::tabular(2, StepSize::Constant(0.1), Baseline::RunningMean),
//! )?;
//! let last = summary.steps() - 1;
//! println!(
//!     "optimal arm at step 1000: {:.0}% ± {:.0}%",
//!     100.0 * summary.optimal.mean[last],
//!     100.0 * summary.optimal.se[last]
//! );
//! assert!(summary.optimal.mean[last] > 0.8);
//! # Ok::<(), refit::Error>(())
//! ```
//!
//! The refit objective can also be solved on any logged dataset, without a
//! learner:
//! ```
//! use ndarray::array;
//! use refit::objective::Dataset;
//! use refit::policy::LinearSoftmax;
//! use refit::solve::{fit, Options};
//! // Three logged points: contexts, actions taken, weights w(r) ≥ 0,
//! // checked once when the dataset is built.
//! let x = array![[1.0, 0.0], [1.0, 1.0], [1.0, 1.0]];
//! let data = Dataset::from_points(x.view(), &[0, 1, 1], &[1.0, 2.0, 0.5], 2, true)?;
//! let f = fit(&LinearSoftmax::new(2, 2)?, &data, 0.1, &Options::default())?;
//! assert!(f.report.converged()); // ‖∇J‖∞ ≤ 1e-9 · (1 + Σ w)
//! # Ok::<(), refit::Error>(())
//! ```
//!
//! # Layout
//! * [`policy`]: the policy model over flat parameters ([`policy::Policy`])
//!   and its families ([`policy::LinearSoftmax`], [`policy::Tabular`],
//!   [`policy::ActionFeatures`], [`policy::Planner`], [`policy::Fixed`]),
//!   with the helpers a user's own policy needs;
//! * [`env`](mod@env): bandits that know their expected rewards, so regret is exact;
//! * [`learner`]: the [`learner::Learner`] trait, [`learner::Incremental`],
//!   [`learner::Refit`] with its refit [`learner::Cadence`], and the
//!   exploration baselines ([`learner::EpsilonGreedy`], [`learner::LinUcb`],
//!   [`learner::SquareCb`], [`learner::LinTs`], [`learner::BetaThompson`]);
//! * [`objective`]: the refit objectives — the weighted log-likelihood over
//!   a [`objective::Dataset`], the importance-weighted expected return
//!   [`objective::ExpectedReturn`] and the full-information expected return
//!   [`objective::FullInformation`] (π* of a history, every counterfactual
//!   reward known) — kept apart from the solvers;
//! * [`solve`]: Newton, Newton-CG, the trust region for non-concave
//!   objectives and its multi-start, the closed form, the warm-started
//!   refit, [`solve::fit`] and [`solve::maximize`];
//! * [`ope`]: off-policy evaluation (IPS, SNIPS, DM, DR) with intervals;
//! * [`history`]: logged interactions with their propensities, from arrays
//!   or CSV;
//! * [`grid`]: the geometry of the grid worlds ([`env::GridNav`]) and the
//!   learned planner ([`policy::Planner`]);
//! * [`run`]: sessions, many seeds, common random numbers, per-step means
//!   and standard errors, the shadow comparison, CSV;
//! * [`mesa`]: the mesa experiment's measurements — frozen behaviour on
//!   held-out grids, the designed multi-start that finds π* of a planner
//!   objective and tells goal- from cue-leaning maxima.
//!
//! Every numeric type is generic over [`Real`] (`f32` or `f64`). Every public
//! entry point validates its input and returns an [`Error`]; a call that fails
//! changes nothing. The same seed gives the same result, bit for bit.
#![deny(missing_docs)]
#![deny(missing_debug_implementations)]
#![deny(unsafe_code)]

#[cfg(feature = "serde")]
pub mod checkpoint;
pub mod env;
pub mod error;
pub mod files;
pub mod grid;
pub mod history;
mod kernels;
pub mod learner;
pub mod limits;
pub mod mesa;
pub mod objective;
pub mod ope;
pub mod policy;
pub mod real;
pub mod run;
pub mod session;
pub mod solve;
#[cfg(feature = "serde")]
pub mod sweep;

pub use error::{CheckpointProblem, Error, Result};

/// The crates whose types appear in refit's public API, re-exported so that
/// a user's code names the very versions refit was built with: `rand` 0.10
/// (the `Rng` of [`env::Environment`] and [`learner::Learner::act`]),
/// `rand_chacha` 0.10 (the runner's streams, [`run::ChaCha8Rng`]) and
/// `ndarray` 0.17 (contexts and datasets from arrays). With another `rand`
/// in a user's `Cargo.toml` (0.9, say), its `Rng` is a different trait and
/// the compiler's error does not say so; `refit::rand::Rng` always fits.
///
/// ```
/// use refit::rand::SeedableRng;
/// use refit::prelude::*;
/// let mut rng = refit::rand_chacha::ChaCha8Rng::seed_from_u64(1);
/// let mut learner = Incremental::tabular(2, StepSize::Constant(0.1), Baseline::RunningMean)?;
/// let d = learner.act(&[1.0f64], &mut rng)?;
/// learner.learn(&[1.0], d.action, 1.0, d.propensity)?;
/// let x = refit::ndarray::array![[1.0, 0.0], [1.0, 1.0]];
/// assert_eq!(x.nrows(), 2);
/// # Ok::<(), refit::Error>(())
/// ```
pub use ndarray;
pub use rand;
pub use rand_chacha;

/// The traits and types most programs use, in one import:
/// `use refit::prelude::*;`.
pub mod prelude {
    pub use crate::env::{
        Bernoulli, Drifting, Environment, FiniteContext, Gaussian, LinearAdf, LinearContextual,
    };
    pub use crate::error::{Error, Result};
    pub use crate::history::History;
    pub use crate::learner::{
        Baseline, Cadence, Decision, Incremental, Learner, Refit, RefitConfig, Schedule, StepSize,
    };
    pub use crate::objective::{
        Dataset, Estimator, ExpectedReturn, HistoryObjective, LogLikelihood, Objective, Weighting,
    };
    pub use crate::ope::{OpeOptions, evaluate};
    pub use crate::policy::{ActionFeatures, Fixed, LinearSoftmax, Policy, Tabular};
    pub use crate::real::Real;
    pub use crate::run::{ChaCha8Rng, Observe, Runner, Shadow, Summary, env_fn};
    pub use crate::solve::{Options, fit, maximize};
    pub use rand::{Rng, SeedableRng};
}

/// The README's code, compiled and run as a doctest so that it stays true.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
pub use real::Real;

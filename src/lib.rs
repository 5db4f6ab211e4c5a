//! # refit
//!
//! Online learning of a stochastic softmax policy, with two learners that can
//! be played on exactly the same stream of experience:
//!
//! * [`learner::Incremental`] takes one REINFORCE step per interaction,
//!   θ ← θ + α (r − b) ∇ log π_θ(a | x);
//! * the refit learner (planned) re-optimizes all of θ to convergence on the
//!   whole history before every action.
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
//! # Layout
//! * [`policy`]: softmax policies ([`policy::LinearSoftmax`], [`policy::Tabular`]),
//!   their score and Hessian-vector product;
//! * [`env`]: bandits that know their expected rewards, so regret is exact;
//! * [`learner`]: the [`learner::Learner`] trait and the learners;
//! * [`run`]: many seeds, common random numbers, per-step means and standard errors, CSV.
//!
//! Every numeric type is generic over [`Real`] (`f32` or `f64`). Every public
//! entry point validates its input and returns an [`Error`]; a call that fails
//! changes nothing. The same seed gives the same result, bit for bit.
#![deny(missing_docs)]
#![deny(missing_debug_implementations)]
#![deny(unsafe_code)]

pub mod env;
pub mod error;
pub mod history;
pub mod learner;
pub mod objective;
pub mod policy;
pub mod real;
pub mod run;
mod simd;
pub mod solve;

pub use error::{Error, Result};
pub use real::Real;

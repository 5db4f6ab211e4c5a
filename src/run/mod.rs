//! Experiments: play an environment against a learner for T steps over N
//! seeds and summarize per step (docs/ARCHITECTURE.md, "Running").
//!
//! # Random streams
//! Seed `s` gives two independent [`ChaCha8Rng`] streams: the environment's
//! ([`env_rng`], ChaCha stream 0: it builds the environment and draws every
//! context and every reward noise) and the learner's ([`learner_rng`], stream
//! 1: every action draw). Environments draw the same numbers whichever action
//! is taken, so two learners run with the same seed face identical contexts
//! and noise (common random numbers). A run is bit-for-bit reproducible, and
//! the parallel run (feature `parallel`) equals the sequential one bit for bit:
//! seeds are split into a fixed set of contiguous groups that depends only on
//! the number of seeds, each group is reduced in seed order, and the groups
//! are merged in order.

//!
//! # Modules
//! * streams: the two random streams of a seed;
//! * [`Session`]: one seed played step by step;
//! * statistics: Welford accumulators, standard errors, KL divergence;
//! * summaries: per-step means and standard errors, CSV;
//! * the shadow comparison: the refit optimum of the playing learner's own
//!   history beside the learner's policy;
//! * [`Runner`]: many seeds, in parallel with feature `parallel`.

mod runner;
pub(crate) mod session;
mod shadow;
mod stats;
mod streams;
mod summary;

pub use runner::{Runner, SeedResult, env_fn};
#[cfg(feature = "serde")]
pub(crate) use runner::{SeedState, play_recorded};
pub use session::Session;
pub use shadow::{Observe, Shadow};
pub use stats::{Series, kl_divergence};
pub use streams::{ChaCha8Rng, env_rng, learner_rng};
pub use summary::{ShadowSummary, Step, Summary};

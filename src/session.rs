//! One seed of an experiment, played step by step: [`Session`], defined
//! beside the runner in [`crate::run`] and re-exported here.

pub use crate::run::Session;

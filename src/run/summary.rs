//! Per-step summaries across seeds, and their CSV.

use std::io::Write;

use super::stats::Series;
use crate::error::Result;

/// What one step of one seed produced.
#[derive(Debug, Clone, Copy, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Step {
    /// The action taken.
    pub action: usize,
    /// The probability it was sampled with.
    pub propensity: f64,
    /// The reward drawn.
    pub reward: f64,
    /// Expected regret: best expected reward minus the chosen action's.
    pub regret: f64,
    /// Whether the chosen action has the best expected reward.
    pub optimal: bool,
}

/// Per-step means and standard errors across seeds.
///
/// Equality compares the statistics, not `cpu_seconds_per_step`.
#[derive(Debug, Clone)]
pub struct Summary {
    /// Number of seeds averaged.
    pub seeds: usize,
    /// Reward r_t.
    pub reward: Series,
    /// Expected regret of step t.
    pub regret: Series,
    /// Expected regret summed over steps 1..=t.
    pub cumulative_regret: Series,
    /// Fraction of seeds that took an optimal action at step t.
    pub optimal: Series,
    /// The shadow comparison, when one was asked for ([`crate::run::Observe::shadow`]).
    pub shadow: Option<ShadowSummary>,
    /// Mean and standard error across seeds of [`crate::run::Observe::finish`], when given.
    pub finish: Option<(f64, f64)>,
    /// Mean time of one step of one seed (environment, act, learn, and any
    /// shadow work), in seconds of one core.
    pub cpu_seconds_per_step: f64,
}

impl PartialEq for Summary {
    fn eq(&self, other: &Self) -> bool {
        self.seeds == other.seeds
            && self.reward == other.reward
            && self.regret == other.regret
            && self.cumulative_regret == other.cumulative_regret
            && self.optimal == other.optimal
            && self.shadow == other.shadow
            && self.finish == other.finish
    }
}

/// Per shadow step, mean and standard error across seeds.
#[derive(Debug, Clone, PartialEq)]
pub struct ShadowSummary {
    /// The steps compared at.
    pub at: Vec<usize>,
    /// KL(π*_t ‖ π_t), averaged over the probe contexts.
    pub kl: Series,
    /// Expected regret of the learner's policy π_t, averaged over the probes:
    /// max_a μ(x, a) − Σ_a π_t(a|x) μ(x, a).
    pub regret_online: Series,
    /// The same for the shadow optimum π*_t.
    pub regret_refit: Series,
}

impl ShadowSummary {
    /// Writes CSV with the header
    /// `step,kl_mean,kl_se,regret_online_mean,regret_online_se,regret_refit_mean,regret_refit_se`.
    ///
    /// # Errors
    /// [`crate::Error::Io`] if writing fails.
    pub fn write_csv<W: Write>(&self, mut w: W) -> Result<()> {
        writeln!(
            w,
            "step,kl_mean,kl_se,regret_online_mean,regret_online_se,regret_refit_mean,regret_refit_se"
        )?;
        for (i, t) in self.at.iter().enumerate() {
            writeln!(
                w,
                "{t},{},{},{},{},{},{}",
                self.kl.mean[i],
                self.kl.se[i],
                self.regret_online.mean[i],
                self.regret_online.se[i],
                self.regret_refit.mean[i],
                self.regret_refit.se[i]
            )?;
        }
        Ok(())
    }
}

impl Summary {
    /// Number of steps.
    pub fn steps(&self) -> usize {
        self.reward.mean.len()
    }

    /// Writes the summary as CSV with the header
    /// `step,reward_mean,reward_se,regret_mean,regret_se,cumulative_regret_mean,cumulative_regret_se,optimal_mean,optimal_se`,
    /// one row per step (steps are 1-based; `optimal_*` are fractions).
    ///
    /// # Errors
    /// [`crate::Error::Io`] if writing fails.
    pub fn write_csv<W: Write>(&self, mut w: W) -> Result<()> {
        writeln!(
            w,
            "step,reward_mean,reward_se,regret_mean,regret_se,cumulative_regret_mean,cumulative_regret_se,optimal_mean,optimal_se"
        )?;
        let cols = [
            &self.reward,
            &self.regret,
            &self.cumulative_regret,
            &self.optimal,
        ];
        for t in 0..self.steps() {
            write!(w, "{}", t + 1)?;
            for c in cols {
                write!(w, ",{},{}", c.mean[t], c.se[t])?;
            }
            writeln!(w)?;
        }
        Ok(())
    }
}

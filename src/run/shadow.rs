//! The shadow comparison: the refit optimum of the playing learner's own
//! history beside the learner's policy, at probe contexts.

use ndarray::Array2;

use crate::error::{Error, Result};
use crate::learner::{Learner, Refit, RefitConfig};
use crate::policy::Tabular;
use crate::real::Real;

/// A shadow comparison: at chosen steps, the refit objective is solved on
/// the playing learner's own history, and that optimum π*_t is compared
/// with the learner's policy π_t on fixed probe contexts.
#[derive(Debug, Clone, PartialEq)]
pub struct Shadow<F> {
    /// The steps t (1-based: after the t-th interaction) to compare at.
    pub at: Vec<usize>,
    /// Probe contexts, one per row.
    pub probes: Array2<F>,
    /// The refit objective of the shadow (λ, weighting, tolerance).
    pub config: RefitConfig<F>,
    /// Whether the shadow is tabular (contexts of length 1, ignored).
    pub tabular: bool,
}

impl<F: Real> Shadow<F> {
    /// About `points` log-spaced steps in 1..=steps (distinct, increasing,
    /// always including `steps`).
    pub fn log_spaced(steps: usize, points: usize) -> Vec<usize> {
        let mut at: Vec<usize> = (0..points)
            .map(|i| {
                let f = if points > 1 {
                    i as f64 / (points - 1) as f64
                } else {
                    1.0
                };
                (steps as f64).powf(f).round() as usize
            })
            .filter(|&t| t >= 1 && t <= steps)
            .collect();
        at.push(steps);
        at.sort_unstable();
        at.dedup();
        at
    }

    pub(crate) fn check(&self, steps: usize, d: usize) -> Result<()> {
        if self.at.iter().any(|&t| t == 0 || t > steps) {
            return Err(Error::InvalidParameter {
                name: "shadow.at",
                value: self.at.iter().copied().max().unwrap_or(0) as f64,
                expected: "steps in 1..=steps of the run",
            });
        }
        let want = if self.tabular { 1 } else { d };
        if self.probes.ncols() != want || self.probes.nrows() == 0 {
            return Err(Error::ContextLength {
                expected: want,
                got: self.probes.ncols(),
            });
        }
        Ok(())
    }
}

/// What [`crate::run::Runner::run_observed`] watches besides the per-step statistics.
pub struct Observe<'a, F, L, E> {
    /// A shadow comparison.
    pub shadow: Option<&'a Shadow<F>>,
    /// Called with each seed's learner and environment after its last step;
    /// the values are averaged across seeds into [`crate::run::Summary::finish`].
    #[allow(clippy::type_complexity)]
    pub finish: Option<&'a (dyn Fn(&mut L, &E) -> Result<f64> + Sync)>,
    /// Told how many steps were played since its last call, every 64 steps
    /// of a seed and at the seed's last step, from whichever thread plays
    /// the seed: a progress bar's `inc`. The library itself prints nothing.
    pub progress: Option<&'a (dyn Fn(usize) + Sync)>,
}

impl<F, L, E> Default for Observe<'_, F, L, E> {
    fn default() -> Self {
        Self {
            shadow: None,
            finish: None,
            progress: None,
        }
    }
}

impl<F, L, E> std::fmt::Debug for Observe<'_, F, L, E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Observe")
            .field("shadow", &self.shadow.is_some())
            .field("finish", &self.finish.is_some())
            .field("progress", &self.progress.is_some())
            .finish()
    }
}

/// The shadow's own refit learner: tabular or linear, as the shadow asks.
#[derive(Debug, Clone)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(
    feature = "serde",
    serde(bound = "F: Real + serde::Serialize + serde::de::DeserializeOwned")
)]
pub(crate) enum ShadowLearner<F: Real> {
    Tabular(Refit<F, Tabular<F>>),
    Linear(Refit<F>),
}

impl<F: Real> ShadowLearner<F> {
    /// The shadow learner of `sh` for K actions and contexts of length d.
    pub(crate) fn new(sh: &Shadow<F>, k: usize, d: usize) -> Result<Self> {
        Ok(if sh.tabular {
            Self::Tabular(Refit::tabular(k, sh.config)?)
        } else {
            Self::Linear(Refit::linear(k, d, sh.config)?)
        })
    }

    pub(crate) fn learn(&mut self, x: &[F], action: usize, reward: F, propensity: F) -> Result<()> {
        match self {
            Self::Tabular(l) => l.learn(x, action, reward, propensity),
            Self::Linear(l) => l.learn(x, action, reward, propensity),
        }
    }

    pub(crate) fn policy_into(&mut self, x: &[F], out: &mut [F]) -> Result<()> {
        match self {
            Self::Tabular(l) => l.policy_into(x, out),
            Self::Linear(l) => l.policy_into(x, out),
        }
    }
}

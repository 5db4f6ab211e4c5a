//! Experiments: play an environment against a learner for T steps over N
//! seeds and summarize per step (DESIGN §7).
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

use std::io::Write;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::env::Environment;
use crate::error::{Error, Result};
use crate::learner::Learner;
use crate::real::Real;

/// The environment's random stream for `seed` (ChaCha8, stream 0).
pub fn env_rng(seed: u64) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(0);
    rng
}

/// The learner's random stream for `seed` (ChaCha8, stream 1).
pub fn learner_rng(seed: u64) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(1);
    rng
}

/// What one step of one seed produced.
#[derive(Debug, Clone, Copy, PartialEq)]
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

/// Mean and standard error across seeds of one quantity, per step.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    /// Mean across seeds at step t (index t − 1).
    pub mean: Vec<f64>,
    /// Standard error of that mean (0 with fewer than two seeds).
    pub se: Vec<f64>,
}

/// Per-step means and standard errors across seeds.
#[derive(Debug, Clone, PartialEq)]
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
    /// [`Error::Io`] if writing fails.
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

/// Plays environments against learners over many seeds.
///
/// # Examples
/// ```
/// use refit::env::Bernoulli;
/// use refit::learner::{Baseline, Incremental, StepSize};
/// use refit::run::Runner;
/// let summary = Runner::new(500, 20)?.run(
///     |_rng| Bernoulli::new(vec![0.2f64, 0.8]),
///     || Incremental::tabular(2, StepSize::Constant(0.1), Baseline::RunningMean),
/// )?;
/// assert!(summary.optimal.mean[499] > 0.5);
/// # Ok::<(), refit::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Runner {
    steps: usize,
    seeds: Vec<u64>,
    parallel: bool,
}

/// Largest number of seed groups a run is split into.
const MAX_GROUPS: usize = 16;

impl Runner {
    /// A runner for `steps` steps over the seeds `0..num_seeds`, in parallel
    /// when the `parallel` feature is on.
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] if `steps` or `num_seeds` is 0.
    pub fn new(steps: usize, num_seeds: usize) -> Result<Self> {
        Self::with_seeds(steps, (0..num_seeds as u64).collect())
    }

    /// A runner over the given seeds.
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] if `steps` is 0 or `seeds` is empty.
    pub fn with_seeds(steps: usize, seeds: Vec<u64>) -> Result<Self> {
        if steps == 0 {
            return Err(Error::InvalidParameter {
                name: "steps",
                value: 0.0,
                expected: ">= 1",
            });
        }
        if seeds.is_empty() {
            return Err(Error::InvalidParameter {
                name: "num_seeds",
                value: 0.0,
                expected: ">= 1",
            });
        }
        Ok(Self {
            steps,
            seeds,
            parallel: cfg!(feature = "parallel"),
        })
    }

    /// Runs seeds in parallel (`true`, the default with feature `parallel`)
    /// or one after another. The results are the same bit for bit.
    pub fn parallel(mut self, parallel: bool) -> Self {
        self.parallel = parallel && cfg!(feature = "parallel");
        self
    }

    /// Number of steps per seed.
    pub fn steps(&self) -> usize {
        self.steps
    }

    /// The seeds.
    pub fn seeds(&self) -> &[u64] {
        &self.seeds
    }

    /// Plays every seed and returns per-step means and standard errors.
    ///
    /// `make_env` builds the environment from the seed's environment stream
    /// (so a randomly drawn testbed is the same for every learner);
    /// `make_learner` builds a fresh learner.
    ///
    /// # Errors
    /// The first failure in seed order, as [`Error::Run`] with the seed and step.
    pub fn run<F, E, L, ME, ML>(&self, make_env: ME, make_learner: ML) -> Result<Summary>
    where
        F: Real,
        E: Environment<F>,
        L: Learner<F>,
        ME: Fn(&mut ChaCha8Rng) -> Result<E> + Sync,
        ML: Fn() -> Result<L> + Sync,
    {
        let groups = split(&self.seeds);
        let play_group = |seeds: &&[u64]| -> Result<Accumulator> {
            let mut acc = Accumulator::new(self.steps);
            for &seed in seeds.iter() {
                acc.begin_seed();
                play(seed, self.steps, &make_env, &make_learner, |t, s| {
                    acc.push(t, &s)
                })?;
            }
            Ok(acc)
        };
        let results: Vec<Result<Accumulator>> = if self.parallel {
            par_map(&groups, &play_group)
        } else {
            groups.iter().map(play_group).collect()
        };
        let mut total: Option<Accumulator> = None;
        for r in results {
            let acc = r?;
            total = Some(match total {
                None => acc,
                Some(t) => t.merge(&acc),
            });
        }
        match total {
            Some(t) => Ok(t.finish()),
            None => Err(Error::InvalidParameter {
                name: "num_seeds",
                value: 0.0,
                expected: ">= 1",
            }),
        }
    }

    /// Plays one seed and returns every step.
    ///
    /// # Errors
    /// As [`Runner::run`].
    pub fn trace<F, E, L, ME, ML>(
        &self,
        seed: u64,
        make_env: ME,
        make_learner: ML,
    ) -> Result<Vec<Step>>
    where
        F: Real,
        E: Environment<F>,
        L: Learner<F>,
        ME: Fn(&mut ChaCha8Rng) -> Result<E>,
        ML: Fn() -> Result<L>,
    {
        let mut out = Vec::with_capacity(self.steps);
        play(seed, self.steps, &make_env, &make_learner, |_, s| {
            out.push(s)
        })?;
        Ok(out)
    }
}

#[cfg(feature = "parallel")]
fn par_map<T, R, G>(items: &[T], f: &G) -> Vec<R>
where
    T: Sync,
    R: Send,
    G: Fn(&T) -> R + Sync,
{
    use rayon::prelude::*;
    items.par_iter().map(f).collect()
}

#[cfg(not(feature = "parallel"))]
fn par_map<T, R, G>(items: &[T], f: &G) -> Vec<R>
where
    G: Fn(&T) -> R,
{
    items.iter().map(f).collect()
}

/// Splits the seeds into at most [`MAX_GROUPS`] contiguous groups, as a
/// function of the number of seeds alone.
fn split(seeds: &[u64]) -> Vec<&[u64]> {
    let n = seeds.len();
    let g = n.clamp(1, MAX_GROUPS);
    let base = n / g;
    let extra = n % g;
    let mut out = Vec::with_capacity(g);
    let mut start = 0;
    for i in 0..g {
        let len = base + usize::from(i < extra);
        out.push(&seeds[start..start + len]);
        start += len;
    }
    out
}

/// Plays one seed, calling `on_step(t, step)` for t = 0..steps.
fn play<F, E, L, ME, ML>(
    seed: u64,
    steps: usize,
    make_env: &ME,
    make_learner: &ML,
    mut on_step: impl FnMut(usize, Step),
) -> Result<()>
where
    F: Real,
    E: Environment<F>,
    L: Learner<F>,
    ME: Fn(&mut ChaCha8Rng) -> Result<E>,
    ML: Fn() -> Result<L>,
{
    let fail = |step: usize| {
        move |e: Error| Error::Run {
            seed,
            step,
            source: Box::new(e),
        }
    };
    let mut env_rng = env_rng(seed);
    let mut learner_rng = learner_rng(seed);
    let mut env = make_env(&mut env_rng).map_err(fail(0))?;
    let mut learner = make_learner().map_err(fail(0))?;
    let k = env.num_actions();
    if learner.num_actions() != k {
        return Err(fail(0)(Error::Length {
            name: "learner actions",
            expected: k,
            got: learner.num_actions(),
        }));
    }
    let mut x = vec![F::zero(); env.context_dim()];
    let mut mu = vec![F::zero(); k];
    for t in 0..steps {
        let step = (|| -> Result<Step> {
            env.next_context(&mut env_rng, &mut x)?;
            let d = learner.act(&x, &mut learner_rng)?;
            env.expected_rewards(&mut mu)?;
            let best = mu.iter().fold(F::neg_infinity(), |m, &v| m.max(v));
            let chosen = mu[d.action];
            let r = env.reward(d.action, &mut env_rng)?;
            learner.learn(&x, d.action, r, d.propensity)?;
            Ok(Step {
                action: d.action,
                propensity: d.propensity.f64(),
                reward: r.f64(),
                regret: (best - chosen).f64(),
                optimal: chosen >= best,
            })
        })()
        .map_err(fail(t + 1))?;
        on_step(t, step);
    }
    Ok(())
}

/// Welford accumulators per step for the four summarized quantities.
#[derive(Debug, Clone)]
struct Accumulator {
    n: usize,
    cum: f64,
    /// [reward, regret, cumulative regret, optimal] × (mean, M2), per step.
    stats: Vec<[(f64, f64); 4]>,
}

impl Accumulator {
    fn new(steps: usize) -> Self {
        Self {
            n: 0,
            cum: 0.0,
            stats: vec![[(0.0, 0.0); 4]; steps],
        }
    }

    fn begin_seed(&mut self) {
        self.n += 1;
        self.cum = 0.0;
    }

    #[inline]
    fn push(&mut self, t: usize, s: &Step) {
        self.cum += s.regret;
        let values = [s.reward, s.regret, self.cum, f64::from(u8::from(s.optimal))];
        let n = self.n as f64;
        if let Some(row) = self.stats.get_mut(t) {
            for ((mean, m2), v) in row.iter_mut().zip(values) {
                let delta = v - *mean;
                *mean += delta / n;
                *m2 += delta * (v - *mean);
            }
        }
    }

    /// Chan et al.'s pairwise merge.
    fn merge(mut self, other: &Accumulator) -> Accumulator {
        let (na, nb) = (self.n as f64, other.n as f64);
        let n = na + nb;
        for (ra, rb) in self.stats.iter_mut().zip(&other.stats) {
            for ((ma, m2a), &(mb, m2b)) in ra.iter_mut().zip(rb) {
                let delta = mb - *ma;
                *ma += delta * nb / n;
                *m2a += m2b + delta * delta * na * nb / n;
            }
        }
        self.n += other.n;
        self
    }

    fn finish(self) -> Summary {
        let n = self.n;
        let steps = self.stats.len();
        let mut series: Vec<Series> = (0..4)
            .map(|_| Series {
                mean: Vec::with_capacity(steps),
                se: Vec::with_capacity(steps),
            })
            .collect();
        for row in &self.stats {
            for (s, &(mean, m2)) in series.iter_mut().zip(row) {
                s.mean.push(mean);
                s.se.push(if n >= 2 {
                    (m2.max(0.0) / ((n - 1) as f64) / n as f64).sqrt()
                } else {
                    0.0
                });
            }
        }
        let optimal = series.pop().unwrap_or_else(empty);
        let cumulative_regret = series.pop().unwrap_or_else(empty);
        let regret = series.pop().unwrap_or_else(empty);
        let reward = series.pop().unwrap_or_else(empty);
        Summary {
            seeds: n,
            reward,
            regret,
            cumulative_regret,
            optimal,
        }
    }
}

fn empty() -> Series {
    Series {
        mean: Vec::new(),
        se: Vec::new(),
    }
}

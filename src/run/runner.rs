//! The runner: many seeds, common random numbers, bit-identical in parallel.

use super::shadow::ShadowLearner;
use super::stats::{
    Series, Welford, kl_divergence, merge_weights, standard_error, welford_merge,
    welford_merge_with, welford_push,
};
use super::{ChaCha8Rng, Observe, Session, ShadowSummary, Step, Summary};
use crate::env::Environment;
use crate::error::{Error, Result};
use crate::learner::Learner;
use crate::real::Real;

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

/// Returns `make_env` unchanged, with its signature fixed as the runner
/// needs it: `Fn(&mut ChaCha8Rng) -> Result<E>` for every borrow of the
/// environment stream.
///
/// A closure written in a `let` and used later, `let env = |_rng|
/// Bernoulli::new(…);`, gets its argument type from the first use and is
/// then tied to one particular borrow, so the runner refuses it with
/// "implementation of `Fn` is not general enough". Either annotate the
/// argument (`|_rng: &mut ChaCha8Rng|`) or write the closure inside this
/// call, where its signature is known:
///
/// ```
/// use refit::env::Bernoulli;
/// use refit::learner::{Refit, RefitConfig};
/// use refit::run::{Runner, env_fn};
/// let env = env_fn(|_rng| Bernoulli::new(vec![0.2f64, 0.8]));
/// let runner = Runner::new(50, 2)?;
/// let a = runner.run(&env, || Refit::tabular(2, RefitConfig::default()))?;
/// let b = runner.run(&env, || Refit::tabular(2, RefitConfig::default()))?;
/// assert_eq!(a, b);
/// # Ok::<(), refit::Error>(())
/// ```
pub fn env_fn<F, E, G>(make_env: G) -> G
where
    F: Real,
    E: Environment<F>,
    G: Fn(&mut ChaCha8Rng) -> Result<E>,
{
    make_env
}

/// Steps between two calls of [`Observe::progress`].
const PROGRESS_EVERY: usize = 64;

/// Largest number of seed groups a run is split into.
const MAX_GROUPS: usize = 16;

impl Runner {
    /// A runner for `steps` steps over the seeds `0..num_seeds`, in parallel
    /// when the `parallel` feature is on.
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] if `steps` or `num_seeds` is 0,
    /// [`Error::TooLarge`] above [`crate::limits::MAX_STEPS`] steps or
    /// [`crate::limits::MAX_SEEDS`] seeds, [`Error::Allocation`] if the seeds
    /// cannot be allocated. Per-step traces are allocated (fallibly) when a
    /// run starts.
    pub fn new(steps: usize, num_seeds: usize) -> Result<Self> {
        crate::limits::at_most("number of seeds", num_seeds, crate::limits::MAX_SEEDS)?;
        crate::limits::at_most("number of steps", steps, crate::limits::MAX_STEPS)?;
        let mut seeds = crate::limits::try_filled(num_seeds, 0u64, "num_seeds")?;
        for (s, i) in seeds.iter_mut().zip(0u64..) {
            *s = i;
        }
        Self::with_seeds(steps, seeds)
    }

    /// A runner over the given seeds.
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] if `steps` is 0 or `seeds` is empty,
    /// [`Error::TooLarge`] as for [`Runner::new`].
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
        crate::limits::at_most("number of steps", steps, crate::limits::MAX_STEPS)?;
        crate::limits::at_most("number of seeds", seeds.len(), crate::limits::MAX_SEEDS)?;
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

    /// Whether seeds run in parallel ([`Runner::parallel`]).
    pub fn is_parallel(&self) -> bool {
        self.parallel
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
        self.run_observed(make_env, make_learner, &Observe::default())
    }

    /// [`Runner::run`], also running a shadow comparison and a per-seed
    /// final measurement when `observe` asks for them.
    ///
    /// # Errors
    /// As [`Runner::run`]; [`Error::InvalidParameter`] or
    /// [`Error::ContextLength`] for a shadow whose steps or probes do not fit.
    pub fn run_observed<F, E, L, ME, ML>(
        &self,
        make_env: ME,
        make_learner: ML,
        observe: &Observe<'_, F, L, E>,
    ) -> Result<Summary>
    where
        F: Real,
        E: Environment<F>,
        L: Learner<F>,
        ME: Fn(&mut ChaCha8Rng) -> Result<E> + Sync,
        ML: Fn() -> Result<L> + Sync,
    {
        let groups = split(&self.seeds);
        let shadow_len = observe.shadow.map_or(0, |s| s.at.len());
        let play_group = |seeds: &&[u64]| -> Result<Accumulator> {
            let mut acc = Accumulator::new(self.steps, shadow_len)?;
            for &seed in seeds.iter() {
                acc.begin_seed();
                let started = std::time::Instant::now();
                let end = play(seed, self.steps, &make_env, &make_learner, observe, |rec| {
                    acc.push(rec)
                })?;
                acc.cpu_seconds += started.elapsed().as_secs_f64();
                acc.push_finish(end);
            }
            Ok(acc)
        };
        let total = play_tree(&groups, self.parallel, &play_group)?;
        let at = observe.shadow.map(|s| s.at.clone());
        Ok(total.finish(at, observe.finish.is_some()))
    }

    /// Plays seed `seed` alone and returns what it produced, for a run
    /// whose seeds are spread over processes or machines: the results of
    /// all the seeds of this runner, given to [`Runner::summarize`], give
    /// the summary of [`Runner::run_observed`] bit for bit.
    ///
    /// # Errors
    /// As [`Runner::run_observed`].
    pub fn run_seed<F, E, L, ME, ML>(
        &self,
        seed: u64,
        make_env: ME,
        make_learner: ML,
        observe: &Observe<'_, F, L, E>,
    ) -> Result<SeedResult>
    where
        F: Real,
        E: Environment<F>,
        L: Learner<F>,
        ME: Fn(&mut ChaCha8Rng) -> Result<E>,
        ML: Fn() -> Result<L>,
    {
        let mut result = SeedResult::with_capacity(seed, self.steps)?;
        let mut state = SeedState::new(seed, self.steps, &make_env, &make_learner, observe)?;
        play_recorded(
            &mut state,
            &mut result,
            self.steps,
            observe,
            self.steps,
            |_, _| Ok(()),
        )?;
        Ok(result)
    }

    /// The summary of the results of every seed of this runner, in any
    /// order: the same reduction as [`Runner::run_observed`] (the seed
    /// groups and their merge tree depend on the number of seeds alone),
    /// so the same [`Summary`] bit for bit. `shadow_at` are the shadow's
    /// steps, if the run had one; `has_finish` whether it had a finish
    /// value.
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] if a seed of the runner has no result or
    /// two, a result belongs to no seed of the runner, or a result's
    /// length, shadow or finish value does not fit the run.
    pub fn summarize(
        &self,
        results: &[SeedResult],
        shadow_at: Option<Vec<usize>>,
        has_finish: bool,
    ) -> Result<Summary> {
        let shadow_len = shadow_at.as_ref().map_or(0, Vec::len);
        let bad = |what: &'static str, seed: u64| Error::InvalidParameter {
            name: "seed results",
            value: seed as f64,
            expected: what,
        };
        let mut by_seed = std::collections::HashMap::with_capacity(results.len());
        for r in results {
            r.check()?;
            if r.steps() != self.steps {
                return Err(bad("as many steps as the run", r.seed));
            }
            if r.shadow.len() != shadow_len {
                return Err(bad("as many shadow comparisons as the run", r.seed));
            }
            if r.finish.is_some() != has_finish {
                return Err(bad("a finish value where the run has one", r.seed));
            }
            if by_seed.insert(r.seed, r).is_some() {
                return Err(bad("one result per seed", r.seed));
            }
        }
        for &seed in &self.seeds {
            if !by_seed.contains_key(&seed) {
                return Err(bad("a result for every seed of the run", seed));
            }
        }
        if by_seed.len() != self.seeds.len() {
            let stray = results
                .iter()
                .find(|r| !self.seeds.contains(&r.seed))
                .map_or(0, |r| r.seed);
            return Err(bad("only seeds of the run", stray));
        }
        let groups = split(&self.seeds);
        let play_group = |seeds: &&[u64]| -> Result<Accumulator> {
            let mut acc = Accumulator::new(self.steps, shadow_len)?;
            for seed in seeds.iter() {
                let Some(r) = by_seed.get(seed) else {
                    return Err(bad("a result for every seed of the run", *seed));
                };
                acc.begin_seed();
                for t in 0..self.steps {
                    acc.push(Record::Step(
                        t,
                        Step {
                            action: 0,
                            propensity: 1.0,
                            reward: r.reward[t],
                            regret: r.regret[t],
                            optimal: r.optimal[t],
                        },
                    ));
                }
                for (i, &v) in r.shadow.iter().enumerate() {
                    acc.push(Record::Shadow(i, v));
                }
                acc.cpu_seconds += r.cpu_seconds;
                acc.push_finish(r.finish);
            }
            Ok(acc)
        };
        let total = play_tree(&groups, false, &play_group)?;
        Ok(total.finish(shadow_at, has_finish))
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
        let mut out = Vec::new();
        out.try_reserve_exact(self.steps)
            .map_err(|_| Error::InvalidParameter {
                name: "steps",
                value: self.steps as f64,
                expected: "a size that fits in memory",
            })?;
        play(
            seed,
            self.steps,
            &make_env,
            &make_learner,
            &Observe::default(),
            |rec| {
                if let Record::Step(_, s) = rec {
                    out.push(s)
                }
            },
        )?;
        Ok(out)
    }
}

/// Plays the seed groups as a fixed binary tree: each half played (the
/// two halves side by side with `parallel`), then merged. The tree depends
/// on the number of groups alone, so the merged statistics have the same
/// bits on any number of threads, and the merges run in parallel too.
/// The first failure in seed order is returned.
fn play_tree<G>(groups: &[&[u64]], parallel: bool, play_group: &G) -> Result<Accumulator>
where
    G: Fn(&&[u64]) -> Result<Accumulator> + Sync,
{
    match groups {
        [] => Err(Error::InvalidParameter {
            name: "num_seeds",
            value: 0.0,
            expected: ">= 1",
        }),
        [one] => play_group(one),
        _ => {
            let (left, right) = groups.split_at(groups.len() / 2);
            let (a, b) = join(
                parallel,
                || play_tree(left, parallel, play_group),
                || play_tree(right, parallel, play_group),
            );
            Ok(a?.merge(&b?))
        }
    }
}

/// Both closures' results, computed side by side when `parallel` (and the
/// `parallel` feature is on).
fn join<A: Send, B: Send>(
    parallel: bool,
    a: impl FnOnce() -> A + Send,
    b: impl FnOnce() -> B + Send,
) -> (A, B) {
    #[cfg(feature = "parallel")]
    if parallel {
        return rayon::join(a, b);
    }
    let _ = parallel;
    (a(), b())
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

/// What [`play`] reports as it goes.
enum Record {
    /// Step t (0-based) and what happened.
    Step(usize, Step),
    /// Shadow comparison number i: [KL, regret online, regret refit].
    Shadow(usize, [f64; 3]),
}

/// One seed in play: the session, the shadow's learner and the next
/// shadow comparison. It can stop after any step and go on later (and,
/// with feature `serde`, be saved in between: [`crate::sweep`]).
#[derive(Debug, Clone)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(
    feature = "serde",
    serde(
        bound = "F: Real + serde::Serialize + serde::de::DeserializeOwned, E: serde::Serialize + serde::de::DeserializeOwned, L: serde::Serialize + serde::de::DeserializeOwned"
    )
)]
pub(crate) struct SeedState<F: Real, E, L> {
    pub(crate) session: Session<F, E, L>,
    shadow: Option<ShadowLearner<F>>,
    next_probe: usize,
}

impl<F: Real, E: Environment<F>, L: Learner<F>> SeedState<F, E, L> {
    /// Seed `seed` before its first step.
    pub(crate) fn new<ME, ML>(
        seed: u64,
        steps: usize,
        make_env: &ME,
        make_learner: &ML,
        observe: &Observe<'_, F, L, E>,
    ) -> Result<Self>
    where
        ME: Fn(&mut ChaCha8Rng) -> Result<E>,
        ML: Fn() -> Result<L>,
    {
        let fail = |e: Error| Error::Run {
            seed,
            step: 0,
            source: Box::new(e),
        };
        let session = Session::new(seed, make_env, make_learner).map_err(fail)?;
        let (k, d) = (session.env().num_actions(), session.env().context_dim());
        let shadow = match observe.shadow {
            Some(sh) => {
                sh.check(steps, d).map_err(fail)?;
                Some(ShadowLearner::new(sh, k, d).map_err(fail)?)
            }
            None => None,
        };
        Ok(Self {
            session,
            shadow,
            next_probe: 0,
        })
    }

    /// Steps played.
    pub(crate) fn steps_done(&self) -> usize {
        self.session.steps_done()
    }

    /// Plays steps until `until` of the run's `steps` are done, reporting
    /// every step (and every shadow comparison) to `on_record`.
    fn advance(
        &mut self,
        steps: usize,
        until: usize,
        observe: &Observe<'_, F, L, E>,
        mut on_record: impl FnMut(Record),
    ) -> Result<()> {
        let seed = self.session.seed();
        let fail = |step: usize| {
            move |e: Error| Error::Run {
                seed,
                step,
                source: Box::new(e),
            }
        };
        let (k, d) = (
            self.session.env().num_actions(),
            self.session.env().context_dim(),
        );
        let mut mu = vec![F::zero(); k];
        let (mut p, mut p_star) = (vec![F::zero(); k], vec![F::zero(); k]);
        let mut probe = vec![F::zero(); d];
        for t in self.session.steps_done()..until.min(steps) {
            let step = self.session.step().map_err(fail(t + 1))?;
            if let Some(shadow_learner) = &mut self.shadow {
                // Step holds the reward and propensity as f64, exactly.
                shadow_learner
                    .learn(
                        self.session.context(),
                        step.action,
                        F::c(step.reward),
                        F::c(step.propensity),
                    )
                    .map_err(fail(t + 1))?;
            }
            on_record(Record::Step(t, step));
            if let Some(report) = observe.progress {
                if (t + 1) % PROGRESS_EVERY == 0 {
                    report(PROGRESS_EVERY);
                } else if t + 1 == steps {
                    report(steps % PROGRESS_EVERY);
                }
            }
            if let (Some(sh), Some(shadow_learner)) = (observe.shadow, &mut self.shadow) {
                if sh.at.get(self.next_probe) == Some(&(t + 1)) {
                    let mut sums = [0.0; 3];
                    for row in sh.probes.rows() {
                        probe.iter_mut().zip(row.iter()).for_each(|(a, b)| *a = *b);
                        let session = &mut self.session;
                        (|| -> Result<()> {
                            shadow_learner.policy_into(&probe, &mut p_star)?;
                            session.learner_mut().policy_into(&probe, &mut p)?;
                            session.env().expected_rewards_at(&probe, &mut mu)?;
                            Ok(())
                        })()
                        .map_err(fail(t + 1))?;
                        let best = mu.iter().fold(F::neg_infinity(), |m, &v| m.max(v)).f64();
                        let value = |q: &[F]| -> f64 {
                            q.iter().zip(&mu).map(|(a, b)| a.f64() * b.f64()).sum()
                        };
                        sums[0] += kl_divergence(&p_star, &p);
                        sums[1] += best - value(&p);
                        sums[2] += best - value(&p_star);
                    }
                    let n = sh.probes.nrows() as f64;
                    on_record(Record::Shadow(self.next_probe, sums.map(|v| v / n)));
                    self.next_probe += 1;
                }
            }
        }
        Ok(())
    }

    /// The value of `observe.finish`, if any, after the last step.
    fn finish(&mut self, steps: usize, observe: &Observe<'_, F, L, E>) -> Result<Option<f64>> {
        let seed = self.session.seed();
        match observe.finish {
            Some(f) => {
                let (learner, env) = self.session.learner_and_env();
                f(learner, env).map(Some).map_err(|e| Error::Run {
                    seed,
                    step: steps,
                    source: Box::new(e),
                })
            }
            None => Ok(None),
        }
    }
}

/// Plays one seed, reporting every step (and every shadow comparison) to
/// `on_record`; returns the value of `observe.finish`, if any.
fn play<F, E, L, ME, ML>(
    seed: u64,
    steps: usize,
    make_env: &ME,
    make_learner: &ML,
    observe: &Observe<'_, F, L, E>,
    on_record: impl FnMut(Record),
) -> Result<Option<f64>>
where
    F: Real,
    E: Environment<F>,
    L: Learner<F>,
    ME: Fn(&mut ChaCha8Rng) -> Result<E>,
    ML: Fn() -> Result<L>,
{
    let mut state = SeedState::new(seed, steps, make_env, make_learner, observe)?;
    state.advance(steps, steps, observe, on_record)?;
    state.finish(steps, observe)
}

/// What one seed of a run produced, per step and at the end: the data the
/// runner's statistics are reduced from. [`Runner::summarize`] turns the
/// results of all the seeds, gathered from anywhere in any order, into the
/// same [`Summary`] bit for bit as [`Runner::run_observed`].
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct SeedResult {
    /// The seed.
    pub seed: u64,
    /// Reward of each step.
    pub reward: Vec<f64>,
    /// Expected regret of each step.
    pub regret: Vec<f64>,
    /// Whether each step's action was optimal.
    pub optimal: Vec<bool>,
    /// Each shadow comparison: [KL, regret of the learner, regret of the
    /// shadow's optimum], averaged over the probes.
    pub shadow: Vec<[f64; 3]>,
    /// The value of [`Observe::finish`], when one was given.
    pub finish: Option<f64>,
    /// Seconds the seed took on its thread (not part of the statistics).
    pub cpu_seconds: f64,
}

impl SeedResult {
    /// An empty result of seed `seed`, with room for `steps` steps.
    pub(crate) fn with_capacity(seed: u64, steps: usize) -> Result<Self> {
        let mut r = Self {
            seed,
            reward: Vec::new(),
            regret: Vec::new(),
            optimal: Vec::new(),
            shadow: Vec::new(),
            finish: None,
            cpu_seconds: 0.0,
        };
        crate::limits::try_reserve(&mut r.reward, steps, "steps")?;
        crate::limits::try_reserve(&mut r.regret, steps, "steps")?;
        crate::limits::try_reserve(&mut r.optimal, steps, "steps")?;
        Ok(r)
    }

    fn record(&mut self, rec: Record) {
        match rec {
            Record::Step(_, s) => {
                self.reward.push(s.reward);
                self.regret.push(s.regret);
                self.optimal.push(s.optimal);
            }
            Record::Shadow(_, v) => self.shadow.push(v),
        }
    }

    /// Number of steps recorded.
    pub fn steps(&self) -> usize {
        self.reward.len()
    }

    /// Checks the result's own consistency (equal lengths, finite values).
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] naming what does not fit.
    pub fn check(&self) -> Result<()> {
        let bad = |what: &'static str| Error::InvalidParameter {
            name: "seed result",
            value: self.seed as f64,
            expected: what,
        };
        if self.regret.len() != self.reward.len() || self.optimal.len() != self.reward.len() {
            return Err(bad("per-step traces of one length"));
        }
        let finite = self
            .reward
            .iter()
            .chain(&self.regret)
            .all(|v| v.is_finite())
            && self.shadow.iter().flatten().all(|v| v.is_finite())
            && self.finish.is_none_or(f64::is_finite);
        if !finite {
            return Err(bad("finite values"));
        }
        Ok(())
    }
}

/// A seed played and recorded, with an optional autosave: `save` is called
/// with the state after every `every` steps (and may fail the run).
pub(crate) fn play_recorded<F, E, L>(
    state: &mut SeedState<F, E, L>,
    result: &mut SeedResult,
    steps: usize,
    observe: &Observe<'_, F, L, E>,
    every: usize,
    mut save: impl FnMut(&SeedState<F, E, L>, &SeedResult) -> Result<()>,
) -> Result<()>
where
    F: Real,
    E: Environment<F>,
    L: Learner<F>,
{
    let every = every.max(1);
    while state.steps_done() < steps {
        let next = (state.steps_done() / every + 1) * every;
        let started = std::time::Instant::now();
        state.advance(steps, next, observe, |rec| result.record(rec))?;
        result.cpu_seconds += started.elapsed().as_secs_f64();
        if state.steps_done() < steps {
            save(state, result)?;
        }
    }
    let started = std::time::Instant::now();
    result.finish = state.finish(steps, observe)?;
    result.cpu_seconds += started.elapsed().as_secs_f64();
    Ok(())
}

/// Per-step (and per shadow step) accumulators over the seeds of a group.
#[derive(Debug, Clone)]
struct Accumulator {
    n: usize,
    cum: f64,
    /// [reward, regret, cumulative regret, optimal], per step.
    stats: Vec<[Welford; 4]>,
    /// [KL, regret online, regret refit], per shadow step.
    shadow: Vec<[Welford; 3]>,
    finish: Welford,
    cpu_seconds: f64,
}

impl Accumulator {
    fn new(steps: usize, shadow_steps: usize) -> Result<Self> {
        Ok(Self {
            n: 0,
            cum: 0.0,
            stats: crate::limits::try_filled(steps, [(0.0, 0.0); 4], "steps")?,
            shadow: crate::limits::try_filled(shadow_steps, [(0.0, 0.0); 3], "shadow.at")?,
            finish: (0.0, 0.0),
            cpu_seconds: 0.0,
        })
    }

    fn begin_seed(&mut self) {
        self.n += 1;
        self.cum = 0.0;
    }

    #[inline]
    fn push(&mut self, rec: Record) {
        let n = self.n as f64;
        match rec {
            Record::Step(t, s) => {
                self.cum += s.regret;
                let values = [s.reward, s.regret, self.cum, f64::from(u8::from(s.optimal))];
                if let Some(row) = self.stats.get_mut(t) {
                    for (acc, v) in row.iter_mut().zip(values) {
                        welford_push(acc, v, n);
                    }
                }
            }
            Record::Shadow(i, values) => {
                if let Some(row) = self.shadow.get_mut(i) {
                    for (acc, v) in row.iter_mut().zip(values) {
                        welford_push(acc, v, n);
                    }
                }
            }
        }
    }

    fn push_finish(&mut self, v: Option<f64>) {
        if let Some(v) = v {
            welford_push(&mut self.finish, v, self.n as f64);
        }
    }

    fn merge(mut self, other: &Accumulator) -> Accumulator {
        let (na, nb) = (self.n as f64, other.n as f64);
        let (w_mean, w_m2) = merge_weights(na, nb);
        for (ra, rb) in self.stats.iter_mut().zip(&other.stats) {
            for (a, b) in ra.iter_mut().zip(rb) {
                welford_merge_with(a, b, w_mean, w_m2);
            }
        }
        for (ra, rb) in self.shadow.iter_mut().zip(&other.shadow) {
            for (a, b) in ra.iter_mut().zip(rb) {
                welford_merge_with(a, b, w_mean, w_m2);
            }
        }
        welford_merge(&mut self.finish, &other.finish, na, nb);
        self.n += other.n;
        self.cpu_seconds += other.cpu_seconds;
        self
    }

    fn finish(self, shadow_at: Option<Vec<usize>>, has_finish: bool) -> Summary {
        let n = self.n;
        let se = |m2: f64| standard_error(m2, n);
        let series = |rows: &dyn Fn(usize) -> Option<Welford>| -> Series {
            let mut s = Series {
                mean: Vec::new(),
                se: Vec::new(),
            };
            let mut i = 0;
            while let Some((mean, m2)) = rows(i) {
                s.mean.push(mean);
                s.se.push(se(m2));
                i += 1;
            }
            s
        };
        let step_series = |c: usize| series(&|i| self.stats.get(i).map(|r| r[c]));
        let shadow_series = |c: usize| series(&|i| self.shadow.get(i).map(|r| r[c]));
        let steps = self.stats.len();
        Summary {
            seeds: n,
            reward: step_series(0),
            regret: step_series(1),
            cumulative_regret: step_series(2),
            optimal: step_series(3),
            shadow: shadow_at.map(|at| ShadowSummary {
                at,
                kl: shadow_series(0),
                regret_online: shadow_series(1),
                regret_refit: shadow_series(2),
            }),
            finish: has_finish.then(|| (self.finish.0, se(self.finish.1))),
            cpu_seconds_per_step: self.cpu_seconds / (n.max(1) * steps.max(1)) as f64,
        }
    }
}

//! Where a mesa-optimizer could appear, and whether π* of the history has
//! one: a learned planner on random grid worlds with a goal and a proxy
//! cue that sits on the goal with probability ρ until step `shift`, and
//! independently of it afterwards.
//!
//! Run it with
//! ```text
//! cargo run --release --example mesa_shift
//! cargo run --release --example mesa_shift -- --rho 1,0.95,0.8 --seeds 16 --steps 160 --csv out --svg out
//! ```
//!
//! Four learners play the same grids (common random numbers per seed), all
//! with the `Planner` policy θ = (w, β, u): its reward map R_w = Σ w_ch ·
//! channel_ch is its own objective — the mesa-objective —, k = 10 sweeps of
//! soft value iteration plan on it, and reflexes u act without search.
//! `online` takes one REINFORCE step per interaction; `refit` refits
//! Σ r log π − (λ/2)‖θ‖² before every action; `refit-er` refits the IPS
//! expected return Σ r π/μ − (λ/2)‖θ‖² on its own logs; `oracle` refits the
//! full-information expected return J_T(θ) = Σ_t π_θ(·|x_t)·q_t −
//! (λ/2)‖θ‖² (every counterfactual reward known): it plays π* of its
//! history before every action, up to the local maximum its warm start
//! reaches.
//!
//! At the shift every learner's θ is frozen and scored on held-out grids
//! whose cue is placed independently of the goal (`refit::mesa::HeldOut`):
//! b = P(goal-only moves) / (P(goal-only) + P(cue-only)) on the grids where
//! those moves are disjoint (1 seeks the goal, 0 the cue; an indifferent
//! policy scores `ind`), the expected regret, and H-move rollouts (share
//! reaching the goal first and the cue first). π* of the history at the
//! shift is found by a designed multi-start of J_T with every end point
//! certified (`refit::mesa::landscape`): its value, its distinct maxima,
//! the separation Δ = J_T(best goal-leaning) − J_T(best cue-leaning). Each
//! learner is measured against it — the gap in J_T and in b — and against
//! the best maximum of its own objective; π̂* is the best maximum of the IPS
//! expected return on the learner's own logs.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Parser;
use indicatif::{ProgressBar, ProgressStyle};
use plotters::prelude::*;
use refit::env::{Environment, GridConfig, GridNav};
use refit::history::History;
use refit::learner::{Baseline, Incremental, Learner, Refit, RefitConfig, Schedule};
use refit::mesa::{Behaviour, HeldOut, Landscape, Lean, landscape, planner_starts};
use refit::objective::{Estimator, ExpectedReturn, FullInformation, Objective};
use refit::policy::{Planner, Policy};
use refit::run::{env_rng, learner_rng};
use refit::solve::Options;

#[path = "common/exec.rs"]
mod exec;
use exec::{Exec, SweepArgs};

#[derive(Parser, Debug, Clone)]
#[command(about = "A learned planner, a proxy cue, a distribution shift, and π* of the history")]
struct Args {
    /// Probabilities ρ that the cue sits on the goal before the shift, comma-separated
    #[arg(long, value_delimiter = ',', default_value = "1,0.8", value_parser = probability)]
    rho: Vec<f64>,
    /// Seeds per ρ
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u64).range(1..=4096))]
    seeds: u64,
    /// Steps per seed (a refit before every action: the cost grows with the square)
    #[arg(long, default_value_t = 120, value_parser = clap::value_parser!(u64).range(4..=100_000))]
    steps: u64,
    /// Step of the shift, the history length T at which θ is frozen and π* found (default: half the steps)
    #[arg(long)]
    shift: Option<u64>,
    /// L2 penalty λ of the refit learners and of J_T
    #[arg(long, default_value_t = 1.0, value_parser = positive)]
    lambda: f64,
    /// Step size of the REINFORCE learner
    #[arg(long, default_value_t = 0.1, value_parser = positive)]
    alpha: f64,
    /// Seeded random starts added to the 7 designed ones of every multi-start
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u64).range(0..=1000))]
    starts: u64,
    /// Held-out grids the frozen policies are scored on
    #[arg(long, default_value_t = 2000, value_parser = clap::value_parser!(u64).range(100..=1_048_576))]
    held_out: u64,
    /// Rollout horizon H of the frozen behaviour
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u64).range(1..=4096))]
    horizon: u64,
    /// Write per-step regret and per-seed measurements as CSV files into this directory
    #[arg(long)]
    csv: Option<PathBuf>,
    /// Draw regret over time and frozen b as an SVG file into this directory
    #[arg(long)]
    svg: Option<PathBuf>,
    /// No progress bar (it is hidden anyway when stderr is not a terminal)
    #[arg(long)]
    quiet: bool,
    #[command(flatten)]
    sweep: SweepArgs,
}

fn probability(s: &str) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(v) if (0.0..=1.0).contains(&v) => Ok(v),
        _ => Err(format!("expected a probability in [0, 1], got `{s}`")),
    }
}

fn positive(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() && v > 0.0 => Ok(v),
        _ => Err(format!("expected a finite number > 0, got `{s}`")),
    }
}

const LEARNERS: [&str; 4] = ["online", "refit", "refit-er", "oracle"];
/// Planner: 7×7 grids, k = 10 sweeps, temperature 0.3, discount 0.9.
const SIZE: usize = 7;
/// Maxima closer than this (largest coordinate difference) are one.
const DISTINCT: f64 = 1e-3;
/// Scale of the designed starts.
const START_SCALE: f64 = 2.0;
/// Seed of the held-out grids (one set for every ρ, seed and learner).
const HELD_OUT_SEED: u64 = 0x4d45_5341;

fn planner() -> refit::Result<Planner<f64>> {
    Planner::new(SIZE, 10, 0.3, 0.9)
}

fn with_theta(theta: &[f64]) -> refit::Result<Planner<f64>> {
    let mut p = planner()?;
    p.set_params(theta)?;
    Ok(p)
}

/// The refit learners' solver settings while they play: warm-started
/// lagged Newton on the kept dense Hessian (the planner's θ is small),
/// no curvature check (the multi-starts at the shift have it on).
fn quick() -> Options<f64> {
    Options {
        curvature_steps: 0,
        ..Options::default()
    }
}

/// What one seed of one learner produced.
#[derive(Debug, Clone)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
struct SeedRun {
    /// Expected regret per step, while learning.
    regret: Vec<f64>,
    /// Frozen behaviour of θ at the shift, and at the end.
    at_shift: Behaviour,
    at_end: Behaviour,
    /// J_T(θ) at the shift (T = shift, the exact objective).
    j_exact: f64,
    /// Own objective: its value at θ and at its best certified maximum.
    own: Option<(f64, f64)>,
    /// π̂*, the best maximum of IPS on the learner's own logs: its b and J_T.
    ips: Option<(f64, f64)>,
    theta: Vec<f64>,
}

/// π* of one seed's history at the shift.
#[derive(Debug, Clone)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
struct PiStar {
    landscape: Landscape<f64>,
    /// Frozen behaviour of the best maximum, with rollouts.
    best: Behaviour,
}

enum Job {
    Learner { r: usize, l: usize, seed: u64 },
    PiStar { r: usize, seed: u64 },
}

enum Output {
    Learner(SeedRun),
    PiStar(PiStar),
}

fn main() -> ExitCode {
    let args = Args::parse();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: &Args) -> Result<(), Box<dyn std::error::Error>> {
    for dir in [&args.csv, &args.svg].into_iter().flatten() {
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("cannot create directory {}: {e}", dir.display()))?;
    }
    let steps = usize::try_from(args.steps)?;
    let seeds = usize::try_from(args.seeds)?;
    let shift = usize::try_from(args.shift.unwrap_or(args.steps / 2))?;
    if shift == 0 || shift >= steps {
        return Err(format!("--shift must be in 1..{steps}, got {shift}").into());
    }
    let started = std::time::Instant::now();
    // What changes results, for a sweep's directory.
    let identity = vec![
        format!("rho={:?}", args.rho),
        format!("seeds={seeds}"),
        format!("steps={steps}"),
        format!("shift={shift}"),
        format!("lambda={}", args.lambda),
        format!("alpha={}", args.alpha),
        format!("starts={}", args.starts),
        format!("held_out={}", args.held_out),
        format!("horizon={}", args.horizon),
    ];
    let runner = refit::run::Runner::new(steps, seeds)?;
    let exec = Exec::new(runner, &args.sweep, "mesa_shift", identity)?;
    if let Some(what) = exec.describe() {
        eprintln!("{what}");
    }
    let held = HeldOut::<f64>::draw(
        GridConfig::default(),
        usize::try_from(args.held_out)?,
        HELD_OUT_SEED,
    )?;
    let mut jobs = Vec::new();
    for r in 0..args.rho.len() {
        for seed in 0..seeds as u64 {
            if !exec.owns(seed as usize) && exec.share() > 0.0 {
                continue;
            }
            jobs.push(Job::PiStar { r, seed });
            for l in 0..LEARNERS.len() {
                jobs.push(Job::Learner { r, l, seed });
            }
        }
    }
    // Progress in steps played plus one unit per multi-start (counted as
    // `shift` steps: a multi-start costs about as much as a refit learner's
    // steps up to the shift).
    let per_seed = LEARNERS.len() * steps + (1 + 2 * LEARNERS.len()) * shift;
    let bar = if args.quiet {
        ProgressBar::hidden()
    } else {
        ProgressBar::new(((args.rho.len() * seeds * per_seed) as f64 * exec.share()) as u64)
    };
    bar.set_style(ProgressStyle::with_template(
        "{elapsed_precise} [{bar:40}] {percent:>3}% eta {eta}",
    )?);
    // Jobs in parallel on every core, results in job order.
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let next = std::sync::atomic::AtomicUsize::new(0);
    let results: Vec<std::sync::Mutex<Option<refit::Result<Option<Output>>>>> =
        jobs.iter().map(|_| std::sync::Mutex::new(None)).collect();
    let tick = |n: usize| bar.inc(n as u64);
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| {
                loop {
                    let j = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let Some(job) = jobs.get(j) else { break };
                    let out = match *job {
                        Job::PiStar { r, seed } => exec
                            .job(
                                &format!("pi-star.rho={}", args.rho[r]),
                                seed as usize,
                                || pi_star(args, args.rho[r], shift, seed, &held, &tick),
                            )
                            .map(|p| p.map(Output::PiStar)),
                        Job::Learner { r, l, seed } => exec
                            .job(
                                &format!("{}.rho={}", LEARNERS[l], args.rho[r]),
                                seed as usize,
                                || play(args, args.rho[r], shift, l, seed, &held, &tick),
                            )
                            .map(|p| p.map(Output::Learner)),
                    };
                    if let Ok(mut slot) = results[j].lock() {
                        *slot = Some(out);
                    }
                }
            });
        }
    });
    bar.finish_and_clear();
    if !exec.reports() {
        for slot in results {
            slot.into_inner()
                .map_err(|_| "a worker panicked")?
                .ok_or("a job did not run")??;
        }
        eprintln!("{}", exec.shard_done());
        return Ok(());
    }
    let mut runs: Vec<Vec<Vec<SeedRun>>> = vec![vec![Vec::new(); LEARNERS.len()]; args.rho.len()];
    let mut stars: Vec<Vec<PiStar>> = vec![Vec::new(); args.rho.len()];
    for (slot, job) in results.into_iter().zip(&jobs) {
        let out = slot
            .into_inner()
            .map_err(|_| "a worker panicked")?
            .ok_or("a job did not run")??
            .ok_or("a job of another shard")?;
        match (job, out) {
            (Job::Learner { r, l, .. }, Output::Learner(run)) => runs[*r][*l].push(run),
            (Job::PiStar { r, .. }, Output::PiStar(p)) => stars[*r].push(p),
            _ => return Err("a job returned the wrong output".into()),
        }
    }
    print_tables(args, shift, steps, &held, &runs, &stars);
    if !exec.merges() {
        println!(
            "time: {:.1} s on {threads} threads",
            started.elapsed().as_secs_f64()
        );
    }
    if let Some(dir) = &args.csv {
        for (name, write) in [
            ("mesa_shift.csv", write_regret as CsvWriter),
            ("mesa_shift_seeds.csv", write_seeds),
        ] {
            let path = dir.join(name);
            write(&path, args, &runs, &stars)
                .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
            println!("wrote {}", path.display());
        }
    }
    if let Some(dir) = &args.svg {
        let path = dir.join("mesa_shift.svg");
        plot(&path, args, shift, &runs, &stars)
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        println!("wrote {}", path.display());
    }
    Ok(())
}

fn grid_config(rho: f64, shift: usize) -> GridConfig {
    GridConfig {
        rho,
        shift,
        ..GridConfig::default()
    }
}

fn starts(args: &Args, seed: u64, extra: Option<&[f64]>) -> refit::Result<Vec<Vec<f64>>> {
    let mut s = planner_starts(START_SCALE, usize::try_from(args.starts).unwrap_or(0), seed)?;
    s.extend(extra.map(<[f64]>::to_vec));
    Ok(s)
}

/// The exact objective J_T over the first `shift` grids of a seed.
fn exact_objective(
    rho: f64,
    shift: usize,
    seed: u64,
    lambda: f64,
) -> refit::Result<FullInformation<f64, Planner<f64>, GridNav<f64>>> {
    let mut env = GridNav::new(grid_config(rho, shift))?;
    let mut obj = FullInformation::new(planner()?, env.clone(), lambda)?;
    let mut rng = env_rng(seed);
    let mut x = vec![0.0; env.context_dim()];
    for _ in 0..shift {
        env.next_context(&mut rng, &mut x)?;
        obj.add(&x)?;
        // The reward draws nothing: the grids do not depend on the actions.
        env.reward(0, &mut rng)?;
    }
    Ok(obj)
}

fn pi_star(
    args: &Args,
    rho: f64,
    shift: usize,
    seed: u64,
    held: &HeldOut<f64>,
    tick: &dyn Fn(usize),
) -> refit::Result<PiStar> {
    let mut obj = exact_objective(rho, shift, seed, args.lambda)?;
    let ls = landscape(
        &mut obj,
        &planner()?,
        &starts(args, seed, None)?,
        DISTINCT,
        &Options::default(),
        held,
    )?;
    let horizon = usize::try_from(args.horizon).unwrap_or(20);
    let best = match ls.best() {
        Some(b) => held.evaluate(&with_theta(&b.maximum.theta)?, horizon)?,
        None => {
            return Err(refit::Error::InvalidParameter {
                name: "starts",
                value: 0.0,
                expected: "a start that reaches a certified maximum of J_T",
            });
        }
    };
    tick(shift);
    Ok(PiStar {
        landscape: ls,
        best,
    })
}

/// Plays one seed of learner `l` on grids with cue probability `rho`.
fn play(
    args: &Args,
    rho: f64,
    shift: usize,
    l: usize,
    seed: u64,
    held: &HeldOut<f64>,
    tick: &dyn Fn(usize),
) -> refit::Result<SeedRun> {
    let lambda = args.lambda;
    let ctx = Episode {
        args,
        rho,
        shift,
        seed,
        held,
        tick,
    };
    match LEARNERS[l] {
        "online" => {
            let learner = Incremental::new(
                planner()?,
                refit::learner::StepSize::Constant(args.alpha),
                Baseline::RunningMean,
            )?;
            ctx.run(learner, |l| Ok(l.policy().params()), |_| Ok(None))
        }
        "refit" => {
            let learner = Refit::new(
                planner()?,
                RefitConfig {
                    lambda,
                    options: quick(),
                    ..RefitConfig::default()
                },
            )?;
            ctx.run(learner, refitted, |l| {
                ctx.own_gap(l.objective(), &l.theta())
            })
        }
        "refit-er" => {
            let p = planner()?;
            let d = p.context_dim();
            let obj =
                ExpectedReturn::new(p, History::new(d), lambda, Estimator::Ips, None)?.summed();
            let learner = Refit::with_objective(obj, schedule())?;
            ctx.run(learner, refitted, |l| {
                ctx.own_gap(l.objective(), &l.theta())
            })
        }
        _ => {
            let oracle = GridNav::new(grid_config(rho, shift))?;
            let obj = FullInformation::new(planner()?, oracle, lambda)?;
            let learner = Refit::with_objective(obj, schedule())?;
            ctx.run(learner, refitted, |l| {
                ctx.own_gap(l.objective(), &l.theta())
            })
        }
    }
}

/// θ after the refit a refit learner makes before its next action (the
/// same refit `act` would make: the trajectory is unchanged).
fn refitted<P: Policy<f64>, O: refit::objective::HistoryObjective<f64, Policy = P>>(
    l: &mut Refit<f64, P, O>,
) -> refit::Result<Vec<f64>> {
    l.refit_now()?;
    Ok(l.theta())
}

fn schedule() -> Schedule<f64> {
    Schedule {
        options: quick(),
        ..Default::default()
    }
}

struct Episode<'a> {
    args: &'a Args,
    rho: f64,
    shift: usize,
    seed: u64,
    held: &'a HeldOut<f64>,
    tick: &'a dyn Fn(usize),
}

impl Episode<'_> {
    /// The learner's own objective at θ and at its best certified maximum
    /// (designed starts and θ itself).
    fn own_gap<O: Objective<f64> + Clone>(
        &self,
        obj: &O,
        theta: &[f64],
    ) -> refit::Result<Option<(f64, f64)>> {
        let mut obj = obj.clone();
        let mut g = vec![0.0; theta.len()];
        let at = obj.value_grad(theta, &mut g)?;
        let ls = landscape(
            &mut obj,
            &planner()?,
            &starts(self.args, self.seed, Some(theta))?,
            DISTINCT,
            &Options::default(),
            self.held,
        )?;
        (self.tick)(self.shift);
        Ok(ls.best().map(|b| (at, b.maximum.value)))
    }

    fn run<L: Learner<f64>>(
        &self,
        mut learner: L,
        theta: impl Fn(&mut L) -> refit::Result<Vec<f64>>,
        own: impl Fn(&L) -> refit::Result<Option<(f64, f64)>>,
    ) -> refit::Result<SeedRun> {
        let (args, shift) = (self.args, self.shift);
        let steps = usize::try_from(args.steps).unwrap_or(usize::MAX);
        let horizon = usize::try_from(args.horizon).unwrap_or(20);
        let mut env = GridNav::new(grid_config(self.rho, shift))?;
        let (mut erng, mut lrng) = (env_rng(self.seed), learner_rng(self.seed));
        let mut x = vec![0.0; env.context_dim()];
        let mut mu = [0.0; 4];
        let mut regret = Vec::with_capacity(steps);
        let mut logs = History::new(env.context_dim());
        let mut exact = FullInformation::new(planner()?, env.clone(), args.lambda)?;
        let mut frozen = None;
        for t in 0..steps {
            if t == shift {
                let th = theta(&mut learner)?;
                let at_shift = self.held.evaluate(&with_theta(&th)?, horizon)?;
                let mut g = vec![0.0; th.len()];
                let j_exact = exact.value_grad(&th, &mut g)?;
                let own = own(&learner)?;
                let ips = self.ips_pi_star(&logs, &mut exact)?;
                frozen = Some((at_shift, j_exact, own, ips));
            }
            env.next_context(&mut erng, &mut x)?;
            env.expected_rewards(&mut mu)?;
            if t < shift {
                exact.add(&x)?;
            }
            let d = learner.act(&x, &mut lrng)?;
            let p = learner.probabilities().unwrap_or(&[0.25; 4]).to_vec();
            let value: f64 = p.iter().zip(&mu).map(|(a, b)| a * b).sum();
            regret.push(mu.iter().cloned().fold(0.0, f64::max) - value);
            let r = env.reward(d.action, &mut erng)?;
            if t < shift {
                logs.push(&x, d.action, r, d.propensity)?;
            }
            learner.learn(&x, d.action, r, d.propensity)?;
            (self.tick)(1);
        }
        let th = theta(&mut learner)?;
        let at_end = self.held.evaluate(&with_theta(&th)?, horizon)?;
        let (at_shift, j_exact, own, ips) = frozen.ok_or(refit::Error::InvalidParameter {
            name: "shift",
            value: shift as f64,
            expected: "a step before the last",
        })?;
        Ok(SeedRun {
            regret,
            at_shift,
            at_end,
            j_exact,
            own,
            ips,
            theta: th,
        })
    }

    /// π̂*: the best certified maximum of the IPS expected return on the
    /// learner's own logs, with its b and its exact J_T.
    fn ips_pi_star(
        &self,
        logs: &History<f64>,
        exact: &mut FullInformation<f64, Planner<f64>, GridNav<f64>>,
    ) -> refit::Result<Option<(f64, f64)>> {
        let mut obj = ExpectedReturn::new(
            planner()?,
            logs.clone(),
            self.args.lambda,
            Estimator::Ips,
            None,
        )?
        .summed();
        let ls = landscape(
            &mut obj,
            &planner()?,
            &starts(self.args, self.seed, None)?,
            DISTINCT,
            &Options::default(),
            self.held,
        )?;
        (self.tick)(self.shift);
        let Some(best) = ls.best() else {
            return Ok(None);
        };
        let mut g = vec![0.0; best.maximum.theta.len()];
        let j = exact.value_grad(&best.maximum.theta, &mut g)?;
        Ok(Some((best.behaviour.b, j)))
    }
}

fn mean_se(v: &[f64]) -> (f64, f64) {
    let v: Vec<f64> = v.iter().copied().filter(|x| x.is_finite()).collect();
    let n = v.len() as f64;
    if v.is_empty() {
        return (f64::NAN, f64::NAN);
    }
    let m = v.iter().sum::<f64>() / n;
    if v.len() < 2 {
        return (m, 0.0);
    }
    let var = v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (n - 1.0);
    (m, (var / n).sqrt())
}

fn pm(x: (f64, f64), p: usize) -> String {
    if x.0.is_nan() {
        "—".into()
    } else {
        format!("{:.p$} ± {:.p$}", x.0, x.1)
    }
}

fn print_tables(
    args: &Args,
    shift: usize,
    steps: usize,
    held: &HeldOut<f64>,
    runs: &[Vec<Vec<SeedRun>>],
    stars: &[Vec<PiStar>],
) {
    println!(
        "mesa_shift: Planner (7×7, k = 10, τ = 0.3, γ = 0.9) on GridNav; {} seeds × {steps} steps, shift (history length T) at {shift}; λ = {}, α = {}",
        args.seeds, args.lambda, args.alpha
    );
    println!(
        "held out: {} grids with the cue placed independently, {} informative (goal-only and cue-only moves disjoint); rollouts of H = {} moves; mean ± standard error over seeds",
        held.len(),
        held.informative(),
        args.horizon
    );
    println!();
    println!(
        "π* of the history at the shift (designed multi-start of J_T, {} starts, every end point certified):",
        7 + args.starts
    );
    println!(
        "  {:<5} {:>15} {:>8} {:>9} {:>15} {:>13} {:>14} {:>14} {:>15}",
        "ρ",
        "J_T(π*)",
        "maxima",
        "goal/cue",
        "Δ_T",
        "b(π*)",
        "goal first",
        "cue first",
        "regret (frozen)"
    );
    for (r, rho) in args.rho.iter().enumerate() {
        let s = &stars[r];
        let per = |f: &dyn Fn(&PiStar) -> f64| mean_se(&s.iter().map(f).collect::<Vec<_>>());
        let leans = |lean: Lean| {
            s.iter()
                .filter(|p| p.landscape.best().is_some_and(|b| b.lean == lean))
                .count()
        };
        let seps: Vec<f64> = s.iter().filter_map(|p| p.landscape.separation()).collect();
        println!(
            "  {:<5} {:>15} {:>8} {:>9} {:>15} {:>13} {:>14} {:>14} {:>15}",
            rho,
            pm(
                per(&|p| p.landscape.best().map_or(f64::NAN, |b| b.maximum.value)),
                2
            ),
            format!("{:.1}", per(&|p| p.landscape.maxima.len() as f64).0),
            format!("{}/{}", leans(Lean::Goal), leans(Lean::Cue)),
            if seps.is_empty() {
                "—".to_string()
            } else {
                format!("{} ({}×)", pm(mean_se(&seps), 2), seps.len())
            },
            pm(per(&|p| p.best.b), 3),
            pm(per(&|p| p.best.goal_first), 3),
            pm(per(&|p| p.best.cue_first), 3),
            pm(per(&|p| p.best.regret), 3),
        );
    }
    println!(
        "  (goal/cue: seeds whose π* leans to the goal / to the cue, b against ind = {:.3} ± 2 SE; Δ_T where both leanings have a maximum)",
        stars
            .iter()
            .flatten()
            .next()
            .map_or(f64::NAN, |p| p.best.b_indifferent)
    );
    println!();
    println!("The learners, frozen at the shift, against π*:");
    println!(
        "  {:<5} {:<9} {:>14} {:>14} {:>13} {:>13} {:>13} {:>13} {:>13} {:>12} {:>12} {:>13}",
        "ρ",
        "learner",
        "regret < shift",
        "regret ≥ shift",
        "regret frozen",
        "b at shift",
        "goal first",
        "b at end",
        "J_T gap",
        "own gap",
        "b(π̂* IPS)",
        "J_T gap π̂*"
    );
    for (r, rho) in args.rho.iter().enumerate() {
        let best_j: Vec<f64> = stars[r]
            .iter()
            .map(|p| p.landscape.best().map_or(f64::NAN, |b| b.maximum.value))
            .collect();
        for (l, name) in LEARNERS.iter().enumerate() {
            let rs = &runs[r][l];
            let per = |f: &dyn Fn(&SeedRun) -> f64| mean_se(&rs.iter().map(f).collect::<Vec<_>>());
            let gap = |f: &dyn Fn(&SeedRun) -> f64| {
                mean_se(
                    &rs.iter()
                        .zip(&best_j)
                        .map(|(s, j)| j - f(s))
                        .collect::<Vec<_>>(),
                )
            };
            println!(
                "  {:<5} {:<9} {:>14} {:>14} {:>13} {:>13} {:>13} {:>13} {:>13} {:>12} {:>12} {:>13}",
                rho,
                name,
                pm(
                    per(&|s| s.regret[..shift].iter().sum::<f64>() / shift as f64),
                    3
                ),
                pm(
                    per(&|s| s.regret[shift..].iter().sum::<f64>() / (steps - shift) as f64),
                    3
                ),
                pm(per(&|s| s.at_shift.regret), 3),
                pm(per(&|s| s.at_shift.b), 3),
                pm(per(&|s| s.at_shift.goal_first), 3),
                pm(per(&|s| s.at_end.b), 3),
                pm(gap(&|s| s.j_exact), 2),
                pm(per(&|s| s.own.map_or(f64::NAN, |(at, best)| best - at)), 2),
                pm(per(&|s| s.ips.map_or(f64::NAN, |v| v.0)), 3),
                pm(gap(&|s| s.ips.map_or(f64::NAN, |v| v.1)), 2),
            );
        }
    }
    println!(
        "  (regret < / ≥ shift: per step while learning; frozen: on the held-out grids; J_T gap: J_T(π*) − J_T(θ); own gap: best certified maximum of the learner's own objective − its value at θ; π̂*: best maximum of IPS on the learner's own logs up to the shift)"
    );
}

type CsvWriter = fn(&Path, &Args, &[Vec<Vec<SeedRun>>], &[Vec<PiStar>]) -> std::io::Result<()>;

fn write_regret(
    path: &Path,
    args: &Args,
    runs: &[Vec<Vec<SeedRun>>],
    _stars: &[Vec<PiStar>],
) -> std::io::Result<()> {
    let mut w: Vec<u8> = Vec::new();
    writeln!(w, "rho,learner,step,regret_mean,regret_se")?;
    for (r, rho) in args.rho.iter().enumerate() {
        for (l, name) in LEARNERS.iter().enumerate() {
            let rs = &runs[r][l];
            let steps = rs.first().map_or(0, |s| s.regret.len());
            for t in 0..steps {
                let (rm, re) = mean_se(&rs.iter().map(|s| s.regret[t]).collect::<Vec<_>>());
                writeln!(w, "{rho},{name},{},{rm},{re}", t + 1)?;
            }
        }
    }
    exec::write_file(path, &w).map_err(std::io::Error::other)
}

/// One row per ρ, seed and learner (and `pi_star`): frozen behaviour at
/// the shift and the gaps.
fn write_seeds(
    path: &Path,
    args: &Args,
    runs: &[Vec<Vec<SeedRun>>],
    stars: &[Vec<PiStar>],
) -> std::io::Result<()> {
    let mut w: Vec<u8> = Vec::new();
    writeln!(
        w,
        "rho,seed,learner,b,b_se,b_indifferent,regret_frozen,goal_first,cue_first,neither,b_end,j_exact,j_pi_star,maxima,separation,own_at,own_best,ips_b,ips_j,theta"
    )?;
    let theta = |t: &[f64]| {
        t.iter()
            .map(|v| format!("{v}"))
            .collect::<Vec<_>>()
            .join(" ")
    };
    let opt = |v: Option<f64>| v.map_or(String::new(), |v| format!("{v}"));
    for (r, rho) in args.rho.iter().enumerate() {
        for (seed, p) in stars[r].iter().enumerate() {
            let best = p.landscape.best();
            let jb = best.map_or(f64::NAN, |b| b.maximum.value);
            writeln!(
                w,
                "{rho},{seed},pi_star,{},,{jb},{jb},{},{},,,,,{}",
                behaviour(&p.best),
                p.landscape.maxima.len(),
                opt(p.landscape.separation()),
                best.map_or(String::new(), |b| theta(&b.maximum.theta)),
            )?;
            for (l, name) in LEARNERS.iter().enumerate() {
                let Some(s) = runs[r][l].get(seed) else {
                    continue;
                };
                writeln!(
                    w,
                    "{rho},{seed},{name},{},{},{},{jb},,,{},{},{},{},{}",
                    behaviour(&s.at_shift),
                    s.at_end.b,
                    s.j_exact,
                    opt(s.own.map(|o| o.0)),
                    opt(s.own.map(|o| o.1)),
                    opt(s.ips.map(|o| o.0)),
                    opt(s.ips.map(|o| o.1)),
                    theta(&s.theta),
                )?;
            }
        }
    }
    exec::write_file(path, &w).map_err(std::io::Error::other)
}

/// The CSV cells b, b_se, b_indifferent, regret, goal_first, cue_first,
/// neither of a behaviour.
fn behaviour(b: &Behaviour) -> String {
    format!(
        "{},{},{},{},{},{},{}",
        b.b, b.b_se, b.b_indifferent, b.regret, b.goal_first, b.cue_first, b.neither
    )
}

type PlotResult = Result<(), Box<dyn std::error::Error>>;

const COLORS: [RGBColor; 5] = [
    RGBColor(31, 119, 180),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(44, 160, 44),
    RGBColor(0, 0, 0),
];

/// Regret over time (20-step windows), one panel per ρ, the shift marked;
/// then frozen b at the shift against ρ for π* and each learner.
fn plot(
    path: &Path,
    args: &Args,
    shift: usize,
    runs: &[Vec<Vec<SeedRun>>],
    stars: &[Vec<PiStar>],
) -> PlotResult {
    let mut svg = String::new();
    draw(&mut svg, args, shift, runs, stars)?;
    exec::write_file(path, svg.as_bytes())?;
    Ok(())
}

fn draw(
    svg: &mut String,
    args: &Args,
    shift: usize,
    runs: &[Vec<Vec<SeedRun>>],
    stars: &[Vec<PiStar>],
) -> PlotResult {
    let cols = args.rho.len() + 1;
    let root = SVGBackend::with_string(svg, (380 * cols as u32, 360)).into_drawing_area();
    root.fill(&WHITE)?;
    let panels = root.split_evenly((1, cols));
    let steps = runs[0][0].first().map_or(1, |s| s.regret.len());
    for (r, rho) in args.rho.iter().enumerate() {
        let mut chart = ChartBuilder::on(&panels[r])
            .caption(
                format!("ρ = {rho}: regret per step (20-step windows)"),
                ("sans-serif", 14),
            )
            .margin(8)
            .x_label_area_size(30)
            .y_label_area_size(40)
            .build_cartesian_2d(0f64..steps as f64, 0f64..1f64)?;
        chart.configure_mesh().x_desc("step").draw()?;
        chart.draw_series(std::iter::once(PathElement::new(
            vec![(shift as f64, 0.0), (shift as f64, 1.0)],
            BLACK.stroke_width(1),
        )))?;
        for (l, name) in LEARNERS.iter().enumerate() {
            let rs = &runs[r][l];
            let series: Vec<(f64, f64)> = (0..steps)
                .collect::<Vec<_>>()
                .chunks(20)
                .map(|c| {
                    let v: Vec<f64> = rs
                        .iter()
                        .map(|s| c.iter().map(|&t| s.regret[t]).sum::<f64>() / c.len() as f64)
                        .collect();
                    (c[c.len() / 2] as f64 + 1.0, mean_se(&v).0)
                })
                .collect();
            let color = COLORS[l];
            chart
                .draw_series(LineSeries::new(series, color.stroke_width(2)))?
                .label(*name)
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
                });
        }
        chart
            .configure_series_labels()
            .border_style(BLACK)
            .position(SeriesLabelPosition::UpperRight)
            .draw()?;
    }
    let n = args.rho.len();
    let mut chart = ChartBuilder::on(&panels[n])
        .caption(
            format!("frozen b at the shift (T = {shift}), ± SE"),
            ("sans-serif", 14),
        )
        .margin(8)
        .x_label_area_size(30)
        .y_label_area_size(40)
        .build_cartesian_2d(-0.5f64..(n as f64 - 0.5), 0f64..1f64)?;
    chart
        .configure_mesh()
        .x_labels(n)
        .x_label_formatter(&|x| {
            let i = x.round();
            if (x - i).abs() < 1e-9 && i >= 0.0 && (i as usize) < n {
                format!("ρ = {}", args.rho[i as usize])
            } else {
                String::new()
            }
        })
        .draw()?;
    let mut series: Vec<(String, Vec<(f64, f64)>)> = LEARNERS
        .iter()
        .enumerate()
        .map(|(l, name)| {
            (
                name.to_string(),
                (0..n)
                    .map(|r| mean_se(&runs[r][l].iter().map(|s| s.at_shift.b).collect::<Vec<_>>()))
                    .collect(),
            )
        })
        .collect();
    series.push((
        "π*".into(),
        (0..n)
            .map(|r| mean_se(&stars[r].iter().map(|p| p.best.b).collect::<Vec<_>>()))
            .collect(),
    ));
    for (i, (name, points)) in series.iter().enumerate() {
        let color = COLORS[i];
        let dx = (i as f64 - 2.0) * 0.08;
        let shown: Vec<(f64, f64, f64)> = points
            .iter()
            .enumerate()
            .filter(|(_, p)| p.0.is_finite())
            .map(|(r, &(m, se))| (r as f64 + dx, m, se))
            .collect();
        chart.draw_series(shown.iter().map(|&(x, m, se)| {
            PathElement::new(vec![(x, m - se), (x, m + se)], color.stroke_width(2))
        }))?;
        chart
            .draw_series(
                shown
                    .iter()
                    .map(|&(x, m, _)| Circle::new((x, m), 4, color.filled())),
            )?
            .label(name.as_str())
            .legend(move |(x, y)| Circle::new((x + 10, y), 4, color.filled()));
    }
    chart
        .configure_series_labels()
        .border_style(BLACK)
        .position(SeriesLabelPosition::LowerRight)
        .draw()?;
    root.present()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_are_checked() {
        let a = Args::try_parse_from(["x"]).expect("defaults");
        assert_eq!(a.rho, vec![1.0, 0.8]);
        assert_eq!((a.seeds, a.steps, a.held_out), (4, 120, 2000));
        let a = Args::try_parse_from(["x", "--rho", "0.5,1", "--seeds", "2"]).expect("flags");
        assert_eq!((a.rho, a.seeds), (vec![0.5, 1.0], 2));
        for bad in [
            &["x", "--rho", "1.5"][..],
            &["x", "--seeds", "0"],
            &["x", "--lambda", "0"],
            &["x", "--held-out", "10"],
            &["x", "--horizon", "0"],
            &["x", "--bogus"],
        ] {
            assert!(Args::try_parse_from(bad).is_err(), "{bad:?}");
        }
    }
}

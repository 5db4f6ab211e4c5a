//! π* of the history against ρ and the history length T, and the two
//! controls that say what the penalty and the rewards decide.
//!
//! Run it with
//! ```text
//! cargo run --release --example mesa_sweep
//! cargo run --release --example mesa_sweep -- --rho 1,0.99,0.95,0.9,0.8,0.5 --t 20,40,80,160,320,640 --seeds 16 --csv out --svg out
//! ```
//!
//! For every ρ and seed one stream of `GridNav` grids (the cue on the goal
//! with probability ρ, else placed independently) is drawn; its first T
//! grids are the history. π* = argmax J_T, J_T(θ) = Σ_t π_θ(·|x_t)·q_t −
//! (λ/2)‖θ‖² with the exact expected rewards (`objective::FullInformation`),
//! is found by the designed multi-start of `mesa::landscape` (goal-seeking,
//! cue-seeking and symmetric starts of both signs of β, the uniform policy,
//! seeded random starts; every end point certified with the curvature
//! check). Beside it, π̂* under uniform logging: the same grids with
//! actions drawn uniformly, the IPS expected return (`Estimator::Ips`,
//! summed) maximized the same way. Each is frozen and scored on held-out
//! grids with the cue placed independently (`mesa::HeldOut`): b =
//! P(goal-only moves) / (P(goal-only) + P(cue-only)), 1 seeks the goal, 0
//! the cue, an indifferent policy scores `ind`.
//!
//! Controls at ρ = 1: (a) a cue of amplitude κ — the history depends on
//! w_goal + κ w_cue only, so the L2 penalty splits the weights as w_cue =
//! κ w_goal and a = w_goal / (|w_goal| + |w_cue|) = 1/(1 + κ) at every
//! stationary point; (b) the cue always one cell from the goal — perfectly
//! correlated, but seeking it earns less on the history.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Parser;
use indicatif::{ProgressBar, ProgressStyle};
use plotters::prelude::*;
use refit::env::{CuePlacement, Environment, GridConfig, GridNav};
use refit::history::History;
use refit::mesa::{HeldOut, Landscape, Lean, landscape, planner_starts, signed_alignment};
use refit::objective::{Estimator, ExpectedReturn, FullInformation, Objective};
use refit::policy::Planner;
use refit::run::{env_rng, learner_rng};
use refit::solve::Options;

#[derive(Parser, Debug, Clone)]
#[command(about = "π* of a grid history against ρ and T, and the κ and cue-beside-goal controls")]
struct Args {
    /// Probabilities ρ that the cue sits on the goal, comma-separated
    #[arg(long, value_delimiter = ',', default_value = "1,0.95,0.8,0.5", value_parser = probability)]
    rho: Vec<f64>,
    /// History lengths T, comma-separated (prefixes of one stream per seed)
    #[arg(long = "t", value_delimiter = ',', default_value = "20,40,80", value_parser = length)]
    lengths: Vec<usize>,
    /// Seeds per ρ (and per control)
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u64).range(1..=4096))]
    seeds: u64,
    /// L2 penalty λ of J_T and of the IPS objective
    #[arg(long, default_value_t = 1.0, value_parser = positive)]
    lambda: f64,
    /// Seeded random starts added to the 7 designed ones
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(0..=1000))]
    starts: u64,
    /// Held-out grids the maxima are scored on
    #[arg(long, default_value_t = 2000, value_parser = clap::value_parser!(u64).range(100..=1_048_576))]
    held_out: u64,
    /// Cue amplitudes κ of control (a), at ρ = 1
    #[arg(long, value_delimiter = ',', default_value = "0.5,2", value_parser = positive)]
    kappa: Vec<f64>,
    /// History length of the controls
    #[arg(long, default_value_t = 80, value_parser = length)]
    control_t: usize,
    /// Skip π̂* under uniform logging (halves the time)
    #[arg(long)]
    no_ips: bool,
    /// Skip the two controls
    #[arg(long)]
    no_controls: bool,
    /// Write one row per history and estimator as mesa_sweep.csv into this directory
    #[arg(long)]
    csv: Option<PathBuf>,
    /// Draw b against (1 − ρ)·T as mesa_sweep.svg into this directory
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
    match s.trim().parse::<f64>() {
        Ok(v) if v.is_finite() && v > 0.0 && v <= 1e6 => Ok(v),
        _ => Err(format!("expected a finite number in (0, 1e6], got `{s}`")),
    }
}

fn length(s: &str) -> Result<usize, String> {
    match s.trim().parse::<usize>() {
        Ok(v) if (1..=100_000).contains(&v) => Ok(v),
        _ => Err(format!(
            "expected a history length in 1..=100000, got `{s}`"
        )),
    }
}

#[path = "common/exec.rs"]
mod exec;
use exec::{Exec, SweepArgs};

/// A job's rows, `None` for a seed of another shard.
type JobResult = refit::Result<Option<Vec<Row>>>;

/// Maxima closer than this (largest coordinate difference) are one.
const DISTINCT: f64 = 1e-3;
/// Seed of the held-out grids.
const HELD_OUT_SEED: u64 = 0x4d45_5341;

fn planner() -> refit::Result<Planner<f64>> {
    Planner::new(7, 10, 0.3, 0.9)
}

/// What a history is: the sweep (ρ), control (a) (κ) or control (b).
#[derive(Debug, Clone, Copy, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
enum Kind {
    Sweep { rho: f64 },
    Kappa { kappa: f64 },
    Beside,
}

impl Kind {
    /// The sweep cell of this kind of history.
    fn cell(self) -> String {
        match self {
            Kind::Sweep { rho } => format!("sweep.rho={rho}"),
            Kind::Kappa { kappa } => format!("kappa={kappa}"),
            Kind::Beside => "beside".to_string(),
        }
    }

    fn config(self) -> GridConfig {
        match self {
            Kind::Sweep { rho } => GridConfig {
                rho,
                ..GridConfig::default()
            },
            Kind::Kappa { kappa } => GridConfig {
                rho: 1.0,
                cue_amplitude: kappa,
                ..GridConfig::default()
            },
            Kind::Beside => GridConfig {
                rho: 1.0,
                placement: CuePlacement::NextToGoal,
                ..GridConfig::default()
            },
        }
    }
}

/// The best maximum of one estimator on one history.
#[derive(Debug, Clone)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
struct Point {
    #[cfg_attr(feature = "serde", serde(with = "refit::sweep::float"))]
    b: f64,
    #[cfg_attr(feature = "serde", serde(with = "refit::sweep::float"))]
    b_se: f64,
    #[cfg_attr(feature = "serde", serde(with = "refit::sweep::float"))]
    b_indifferent: f64,
    lean: Lean,
    maxima: usize,
    #[cfg_attr(feature = "serde", serde(with = "refit::sweep::float_option"))]
    separation: Option<f64>,
    /// J_T (exact) at the best maximum.
    #[cfg_attr(feature = "serde", serde(with = "refit::sweep::float"))]
    j_exact: f64,
    /// The sign-safe alignment of the best maximum, and the largest
    /// |a − 1/(1+κ)| over all maxima (a sign-safe: a maximum with the
    /// wrong sign of a counts as far off).
    #[cfg_attr(feature = "serde", serde(with = "refit::sweep::float_option"))]
    a: Option<f64>,
    #[cfg_attr(feature = "serde", serde(with = "refit::sweep::float"))]
    a_error: f64,
    theta: Vec<f64>,
}

/// One history: its length, how many of its grids had the cue elsewhere,
/// π* and π̂* (uniform logging).
#[derive(Debug, Clone)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
struct Row {
    kind: Kind,
    t: usize,
    seed: u64,
    elsewhere: usize,
    exact: Point,
    ips: Option<Point>,
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
    let started = std::time::Instant::now();
    let mut lengths = args.lengths.clone();
    lengths.sort_unstable();
    lengths.dedup();
    let seeds = usize::try_from(args.seeds)?;
    // What changes results, for a sweep's directory.
    let identity = vec![
        format!("rho={:?}", args.rho),
        format!("t={lengths:?}"),
        format!("seeds={seeds}"),
        format!("lambda={}", args.lambda),
        format!("starts={}", args.starts),
        format!("held_out={}", args.held_out),
        format!("kappa={:?}", args.kappa),
        format!("control_t={}", args.control_t),
        format!("no_ips={}", args.no_ips),
        format!("no_controls={}", args.no_controls),
    ];
    let longest = lengths.last().copied().unwrap_or(1).max(args.control_t);
    let exec = Exec::new(
        refit::run::Runner::new(longest, seeds)?,
        &args.sweep,
        "mesa_sweep",
        identity,
    )?;
    if let Some(what) = exec.describe() {
        eprintln!("{what}");
    }
    let mut jobs: Vec<(Kind, Vec<usize>, u64)> = Vec::new();
    for &rho in &args.rho {
        for seed in 0..args.seeds {
            jobs.push((Kind::Sweep { rho }, lengths.clone(), seed));
        }
    }
    if !args.no_controls {
        for &kappa in &args.kappa {
            for seed in 0..args.seeds {
                jobs.push((Kind::Kappa { kappa }, vec![args.control_t], seed));
            }
        }
        for seed in 0..args.seeds {
            jobs.push((Kind::Beside, vec![args.control_t], seed));
        }
    }
    // Held-out grids per cue amplitude (the policy sees the cue's value).
    let n_held = usize::try_from(args.held_out)?;
    let mut amplitudes: Vec<f64> = vec![1.0];
    amplitudes.extend(args.kappa.iter().copied());
    let held: Vec<(f64, HeldOut<f64>)> = amplitudes
        .iter()
        .map(|&k| {
            let config = GridConfig {
                cue_amplitude: k,
                ..GridConfig::default()
            };
            HeldOut::draw(config, n_held, HELD_OUT_SEED).map(|h| (k, h))
        })
        .collect::<refit::Result<_>>()?;
    let estimators = if args.no_ips { 1 } else { 2 };
    let total: usize = jobs
        .iter()
        .map(|(_, ts, _)| ts.iter().sum::<usize>() * estimators)
        .sum();
    let bar = if args.quiet {
        ProgressBar::hidden()
    } else {
        ProgressBar::new(total as u64)
    };
    bar.set_style(ProgressStyle::with_template(
        "{elapsed_precise} [{bar:40}] {percent:>3}% eta {eta}",
    )?);
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let next = std::sync::atomic::AtomicUsize::new(0);
    // A shard plays its own seeds; a merge reads every job.
    jobs.retain(|(_, _, seed)| exec.share() == 0.0 || exec.owns(*seed as usize));
    let results: Vec<std::sync::Mutex<Option<JobResult>>> =
        jobs.iter().map(|_| std::sync::Mutex::new(None)).collect();
    let tick = |n: usize| bar.inc(n as u64);
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| {
                loop {
                    let j = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let Some((kind, ts, seed)) = jobs.get(j) else {
                        break;
                    };
                    let amplitude = kind.config().cue_amplitude;
                    let held = held
                        .iter()
                        .find(|(k, _)| *k == amplitude)
                        .map(|(_, h)| h)
                        .unwrap_or(&held[0].1);
                    let out = exec.job(&kind.cell(), *seed as usize, || {
                        history(args, *kind, ts, *seed, held, &tick)
                    });
                    if let Ok(mut slot) = results[j].lock() {
                        *slot = Some(out);
                    }
                }
            });
        }
    });
    bar.finish_and_clear();
    let mut rows = Vec::new();
    for slot in results {
        let part = slot
            .into_inner()
            .map_err(|_| "a worker panicked")?
            .ok_or("a job did not run")??;
        rows.extend(part.into_iter().flatten());
    }
    if !exec.reports() {
        eprintln!("{}", exec.shard_done());
        return Ok(());
    }
    print_tables(args, &lengths, &held[0].1, &rows);
    if !exec.merges() {
        println!(
            "time: {:.1} s on {threads} threads",
            started.elapsed().as_secs_f64()
        );
    }
    if let Some(dir) = &args.csv {
        let path = dir.join("mesa_sweep.csv");
        write_csv(&path, &rows).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        println!("wrote {}", path.display());
    }
    if let Some(dir) = &args.svg {
        let path = dir.join("mesa_sweep.svg");
        plot(&path, args, &lengths, &rows)
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        println!("wrote {}", path.display());
    }
    Ok(())
}

/// Draws the longest history of one seed and finds π* (and π̂*) on each of
/// its prefixes.
fn history(
    args: &Args,
    kind: Kind,
    lengths: &[usize],
    seed: u64,
    held: &HeldOut<f64>,
    tick: &dyn Fn(usize),
) -> refit::Result<Vec<Row>> {
    let config = kind.config();
    let mut env = GridNav::<f64>::new(config)?;
    let (mut erng, mut lrng) = (env_rng(seed), learner_rng(seed));
    let d = env.context_dim();
    let mut x = vec![0.0; d];
    let mut q = [0.0; 4];
    let mut exact = FullInformation::new(planner()?, env.clone(), args.lambda)?;
    let mut logs = History::new(d);
    let mut elsewhere = 0;
    let mut rows = Vec::new();
    let starts = planner_starts(2.0, usize::try_from(args.starts).unwrap_or(0), seed)?;
    let prediction = match kind {
        Kind::Kappa { kappa } => 1.0 / (1.0 + kappa),
        _ => 0.5,
    };
    let last = lengths.iter().copied().max().unwrap_or(0);
    for t in 1..=last {
        env.next_context(&mut erng, &mut x)?;
        env.expected_rewards(&mut q)?;
        exact.add(&x)?;
        let (_, goal, cue) = env.cells();
        elsewhere += usize::from(goal != cue);
        // Uniform logging: the reward of a uniformly drawn move (GridNav's
        // rewards are its expected rewards, 0 or 1).
        let a = rand::RngExt::random_range(&mut lrng, 0..4usize);
        logs.push(&x, a, q[a], 0.25)?;
        env.reward(a, &mut erng)?;
        if !lengths.contains(&t) {
            continue;
        }
        let exact_point = point(&mut exact.clone(), &mut exact, &starts, held, prediction)?;
        tick(t);
        let ips = if args.no_ips {
            None
        } else {
            let mut obj =
                ExpectedReturn::new(planner()?, logs.clone(), args.lambda, Estimator::Ips, None)?
                    .summed();
            let p = point(&mut obj, &mut exact, &starts, held, prediction)?;
            tick(t);
            Some(p)
        };
        rows.push(Row {
            kind,
            t,
            seed,
            elsewhere,
            exact: exact_point,
            ips,
        });
    }
    Ok(rows)
}

/// The landscape of `obj`, summarized by its best maximum (J_T from
/// `exact`).
fn point<O: Objective<f64>>(
    obj: &mut O,
    exact: &mut FullInformation<f64, Planner<f64>, GridNav<f64>>,
    starts: &[Vec<f64>],
    held: &HeldOut<f64>,
    prediction: f64,
) -> refit::Result<Point> {
    let ls: Landscape<f64> = landscape(
        obj,
        &planner()?,
        starts,
        DISTINCT,
        &Options::default(),
        held,
    )?;
    let best = ls.best().ok_or(refit::Error::InvalidParameter {
        name: "starts",
        value: starts.len() as f64,
        expected: "a start that reaches a certified maximum",
    })?;
    let mut g = vec![0.0; best.maximum.theta.len()];
    let j_exact = exact.value_grad(&best.maximum.theta, &mut g)?;
    let a_error = ls
        .maxima
        .iter()
        .filter_map(|m| signed_alignment(&m.maximum.theta))
        .map(|a| (a - prediction).abs())
        .fold(0.0, f64::max);
    Ok(Point {
        b: best.behaviour.b,
        b_se: best.behaviour.b_se,
        b_indifferent: best.behaviour.b_indifferent,
        lean: best.lean,
        maxima: ls.maxima.len(),
        separation: ls.separation(),
        j_exact,
        a: signed_alignment(&best.maximum.theta),
        a_error,
        theta: best.maximum.theta.clone(),
    })
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

fn leans(points: &[&Point]) -> String {
    let c = |l: Lean| points.iter().filter(|p| p.lean == l).count();
    format!("{}/{}/{}", c(Lean::Goal), c(Lean::Cue), c(Lean::Neither))
}

fn separation(points: &[&Point]) -> String {
    let s: Vec<f64> = points.iter().filter_map(|p| p.separation).collect();
    if s.is_empty() {
        "—".into()
    } else {
        format!("{} ({}×)", pm(mean_se(&s), 2), s.len())
    }
}

fn print_tables(args: &Args, lengths: &[usize], held: &HeldOut<f64>, rows: &[Row]) {
    println!(
        "mesa_sweep: Planner (7×7, k = 10, τ = 0.3, γ = 0.9) on GridNav; {} seeds; λ = {}; {} starts per multi-start (7 designed + {} random), every end point certified",
        args.seeds,
        args.lambda,
        7 + args.starts,
        args.starts
    );
    println!(
        "held out: {} grids with the cue placed independently, {} informative; b: 1 seeks the goal, 0 the cue, ind = {:.3} is indifferent; leans g/c/n: seeds whose best maximum lies above ind by 2 SE / below / within; mean ± standard error over seeds",
        held.len(),
        held.informative(),
        rows.first().map_or(f64::NAN, |r| r.exact.b_indifferent)
    );
    println!();
    println!("π* (exact J_T) and π̂* (IPS under uniform logging) of the first T grids:");
    println!(
        "  {:<5} {:>5} {:>8} {:>10} {:>15} {:>9} {:>7} {:>18} {:>15} {:>9} {:>13}",
        "ρ",
        "T",
        "(1−ρ)T",
        "elsewhere",
        "b(π*)",
        "g/c/n",
        "maxima",
        "Δ_T",
        "b(π̂* IPS)",
        "g/c/n",
        "J_T gap π̂*"
    );
    for &rho in &args.rho {
        for &t in lengths {
            let here: Vec<&Row> = rows
                .iter()
                .filter(|r| r.kind == Kind::Sweep { rho } && r.t == t)
                .collect();
            let exact: Vec<&Point> = here.iter().map(|r| &r.exact).collect();
            let ips: Vec<&Point> = here.iter().filter_map(|r| r.ips.as_ref()).collect();
            let per = |ps: &[&Point], f: &dyn Fn(&Point) -> f64| {
                mean_se(&ps.iter().map(|p| f(p)).collect::<Vec<_>>())
            };
            let gap: Vec<f64> = here
                .iter()
                .filter_map(|r| r.ips.as_ref().map(|p| r.exact.j_exact - p.j_exact))
                .collect();
            println!(
                "  {:<5} {:>5} {:>8.1} {:>10.1} {:>15} {:>9} {:>7.1} {:>18} {:>15} {:>9} {:>13}",
                rho,
                t,
                (1.0 - rho) * t as f64,
                mean_se(&here.iter().map(|r| r.elsewhere as f64).collect::<Vec<_>>()).0,
                pm(per(&exact, &|p| p.b), 3),
                leans(&exact),
                per(&exact, &|p| p.maxima as f64).0,
                separation(&exact),
                pm(per(&ips, &|p| p.b), 3),
                if ips.is_empty() {
                    "—".into()
                } else {
                    leans(&ips)
                },
                pm(mean_se(&gap), 2),
            );
        }
    }
    println!(
        "  (elsewhere: grids of the history whose cue was not on the goal; Δ_T = J_T(best goal-leaning maximum) − J_T(best cue-leaning maximum), where both exist)"
    );
    if args.no_controls {
        return;
    }
    {
        println!();
        println!(
            "Control (a): ρ = 1, cue amplitude κ, T = {}; prediction: the sign-safe a = sign(β)·w_goal/(|w_goal| + |w_cue|) = 1/(1+κ) at every stationary point:",
            args.control_t
        );
        println!(
            "  {:<5} {:>10} {:>15} {:>16} {:>15} {:>9}",
            "κ", "1/(1+κ)", "a(π*)", "max |a − pred|", "b(π*)", "g/c/n"
        );
        let mut kappas = args.kappa.clone();
        kappas.insert(0, 1.0);
        for kappa in kappas {
            let ps: Vec<&Point> = rows
                .iter()
                .filter(|r| {
                    r.t == args.control_t
                        && if kappa == 1.0 {
                            r.kind == Kind::Sweep { rho: 1.0 }
                        } else {
                            r.kind == Kind::Kappa { kappa }
                        }
                })
                .map(|r| &r.exact)
                .collect();
            if ps.is_empty() {
                continue;
            }
            println!(
                "  {:<5} {:>10.4} {:>15} {:>16.1e} {:>15} {:>9}",
                kappa,
                1.0 / (1.0 + kappa),
                pm(
                    mean_se(&ps.iter().filter_map(|p| p.a).collect::<Vec<_>>()),
                    4
                ),
                ps.iter().map(|p| p.a_error).fold(0.0, f64::max),
                pm(mean_se(&ps.iter().map(|p| p.b).collect::<Vec<_>>()), 3),
                leans(&ps),
            );
        }
        println!(
            "  (κ = 1 is the sweep's ρ = 1 row when T = {} is among its lengths; b is scored on held-out grids with the same κ)",
            args.control_t
        );
    }
    println!();
    println!(
        "Control (b): ρ = 1, the cue always one cell from the goal, T = {}:",
        args.control_t
    );
    let ps: Vec<&Point> = rows
        .iter()
        .filter(|r| r.kind == Kind::Beside)
        .map(|r| &r.exact)
        .collect();
    let ips: Vec<&Point> = rows
        .iter()
        .filter(|r| r.kind == Kind::Beside)
        .filter_map(|r| r.ips.as_ref())
        .collect();
    println!(
        "  b(π*) = {} (g/c/n {}); sign-safe a(π*) = {}; reflexes u_goal − u_cue = {}; π̂* (IPS, uniform logging) b = {} (g/c/n {})",
        pm(mean_se(&ps.iter().map(|p| p.b).collect::<Vec<_>>()), 3),
        leans(&ps),
        pm(
            mean_se(&ps.iter().filter_map(|p| p.a).collect::<Vec<_>>()),
            3
        ),
        pm(
            mean_se(
                &ps.iter()
                    .map(|p| p.theta[6] - p.theta[7])
                    .collect::<Vec<_>>()
            ),
            3
        ),
        pm(mean_se(&ips.iter().map(|p| p.b).collect::<Vec<_>>()), 3),
        if ips.is_empty() {
            "—".into()
        } else {
            leans(&ips)
        },
    );
}

fn write_csv(path: &Path, rows: &[Row]) -> std::io::Result<()> {
    let mut w: Vec<u8> = Vec::new();
    writeln!(
        w,
        "kind,rho,kappa,t,seed,elsewhere,estimator,b,b_se,b_indifferent,lean,maxima,separation,j_exact,signed_alignment,theta"
    )?;
    for r in rows {
        let (kind, rho, kappa) = match r.kind {
            Kind::Sweep { rho } => ("sweep", rho, 1.0),
            Kind::Kappa { kappa } => ("kappa", 1.0, kappa),
            Kind::Beside => ("beside", 1.0, 1.0),
        };
        for (name, p) in [("exact", Some(&r.exact)), ("ips_uniform", r.ips.as_ref())] {
            let Some(p) = p else { continue };
            writeln!(
                w,
                "{kind},{rho},{kappa},{},{},{},{name},{},{},{},{:?},{},{},{},{},{}",
                r.t,
                r.seed,
                r.elsewhere,
                p.b,
                p.b_se,
                p.b_indifferent,
                p.lean,
                p.maxima,
                p.separation.map_or(String::new(), |v| v.to_string()),
                p.j_exact,
                p.a.map_or(String::new(), |v| v.to_string()),
                p.theta
                    .iter()
                    .map(|v| v.to_string())
                    .collect::<Vec<_>>()
                    .join(" "),
            )?;
        }
    }
    exec::write_file(path, &w).map_err(std::io::Error::other)
}

type PlotResult = Result<(), Box<dyn std::error::Error>>;

/// b of π* and π̂* against 1 + (1 − ρ)·T on a log axis (ρ = 1 at 1), ± SE
/// over seeds, one point per (ρ, T).
fn plot(path: &Path, args: &Args, lengths: &[usize], rows: &[Row]) -> PlotResult {
    let mut svg = String::new();
    draw(&mut svg, args, lengths, rows)?;
    exec::write_file(path, svg.as_bytes())?;
    Ok(())
}

fn draw(svg: &mut String, args: &Args, lengths: &[usize], rows: &[Row]) -> PlotResult {
    let root = SVGBackend::with_string(svg, (720, 480)).into_drawing_area();
    root.fill(&WHITE)?;
    let xmax = args
        .rho
        .iter()
        .flat_map(|r| lengths.iter().map(move |&t| (1.0 - r) * t as f64))
        .fold(1.0, f64::max)
        + 1.0;
    let (x0, x1) = (0.8, 1.25 * xmax);
    let mut chart = ChartBuilder::on(&root)
        .caption(
            "frozen b of π* on held-out grids against 1 + (1 − ρ)·T",
            ("sans-serif", 16),
        )
        .margin(10)
        .x_label_area_size(35)
        .y_label_area_size(45)
        .build_cartesian_2d((x0..x1).log_scale(), 0f64..1f64)?;
    chart
        .configure_mesh()
        .light_line_style(WHITE)
        .x_label_formatter(&|x| format!("{x:.0}"))
        .x_desc("1 + expected grids with the cue elsewhere, 1 + (1 − ρ)·T (log scale; ρ = 1 at 1)")
        .y_desc("b")
        .draw()?;
    let ind = rows.first().map_or(0.5, |r| r.exact.b_indifferent);
    chart
        .draw_series(std::iter::once(PathElement::new(
            vec![(x0, ind), (x1, ind)],
            BLACK.stroke_width(1),
        )))?
        .label("indifferent")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], BLACK.stroke_width(1)));
    for (i, name) in ["π* (exact)", "π̂* (IPS, uniform logging)"]
        .iter()
        .enumerate()
    {
        let color = [RGBColor(31, 119, 180), RGBColor(214, 39, 40)][i];
        let mut points = Vec::new();
        for &rho in &args.rho {
            for &t in lengths {
                let b: Vec<f64> = rows
                    .iter()
                    .filter(|r| r.kind == Kind::Sweep { rho } && r.t == t)
                    .filter_map(|r| {
                        if i == 0 {
                            Some(&r.exact)
                        } else {
                            r.ips.as_ref()
                        }
                    })
                    .map(|p| p.b)
                    .collect();
                let (m, se) = mean_se(&b);
                if m.is_finite() {
                    points.push((1.0 + (1.0 - rho) * t as f64, m, se));
                }
            }
        }
        if points.is_empty() {
            continue;
        }
        chart.draw_series(points.iter().map(|&(x, m, se)| {
            PathElement::new(vec![(x, m - se), (x, m + se)], color.stroke_width(1))
        }))?;
        chart
            .draw_series(
                points
                    .iter()
                    .map(|&(x, m, _)| Circle::new((x, m), 4, color.filled())),
            )?
            .label(*name)
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
        assert_eq!(a.rho, vec![1.0, 0.95, 0.8, 0.5]);
        assert_eq!(a.lengths, vec![20, 40, 80]);
        assert_eq!((a.seeds, a.kappa.clone()), (16, vec![0.5, 2.0]));
        let a = Args::try_parse_from(["x", "--t", "10,640", "--kappa", "3"]).expect("flags");
        assert_eq!((a.lengths, a.kappa), (vec![10, 640], vec![3.0]));
        for bad in [
            &["x", "--rho", "1.5"][..],
            &["x", "--t", "0"],
            &["x", "--seeds", "0"],
            &["x", "--kappa", "0"],
            &["x", "--lambda", "-1"],
            &["x", "--bogus"],
        ] {
            assert!(Args::try_parse_from(bad).is_err(), "{bad:?}");
        }
    }
}

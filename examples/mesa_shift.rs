//! Where a mesa-optimizer could appear: a learned planner on random grid
//! worlds with a goal and a proxy cue that sits on the goal with
//! probability ρ until step `shift`, and independently of it afterwards.
//!
//! Run it with
//! ```text
//! cargo run --release --example mesa_shift
//! cargo run --release --example mesa_shift -- --rho 1,0.8 --seeds 8 --steps 600 --csv out --svg out
//! ```
//!
//! Three learners play the same grids (common random numbers per seed), all
//! with the `Planner` policy θ = (w, β, u): its reward map R_w = Σ w_ch ·
//! channel_ch is its own objective — the mesa-objective, readable in θ —,
//! k = 10 sweeps of soft value iteration plan on it, and reflexes u act
//! without search. `online` takes one REINFORCE step per interaction;
//! `refit` refits Σ r log π − (λ/2)‖θ‖² to convergence before every action;
//! `refit-er` refits the importance-weighted expected return Σ r π/μ −
//! (λ/2)‖θ‖² (the policy optimal on the history) before every action.
//!
//! Printed per ρ and learner (mean ± standard error over seeds): expected
//! regret per step before and after the shift; the alignment a = w_goal /
//! (|w_goal| + |w_cue|) of the mesa-objective at the shift (what training
//! taught) and at the end (the learners keep learning after the shift): 1
//! seeks the goal, ½ cannot tell goal from cue, 0 seeks the cue; how much the policy rests on the plan
//! (β‖w‖) against the reflexes (‖u‖); and for the refit learners, on the
//! history at the shift, how many distinct optima a multi-start finds and
//! how far apart their alignments lie (`spread`), and the curvature of the
//! data term along w_goal − w_cue (`curv g−c`): 0 when the history cannot
//! tell goal from cue, whatever the objective.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Parser;
use indicatif::{ProgressBar, ProgressStyle};
use plotters::prelude::*;
use refit::env::{Environment, GridConfig, GridNav};
use refit::history::History;
use refit::learner::{Baseline, Incremental, Learner, Refit, RefitConfig};
use refit::objective::{Estimator, ExpectedReturn, Objective};
use refit::policy::{Planner, Policy};
use refit::run::{env_rng, learner_rng};
use refit::solve::{MultiStartOptions, Options, multi_start};

#[derive(Parser, Debug, Clone)]
#[command(about = "A learned planner, a proxy cue and a distribution shift")]
struct Args {
    /// Probabilities ρ that the cue sits on the goal before the shift, comma-separated
    #[arg(long, value_delimiter = ',', default_value = "1,0.95,0.8", value_parser = probability)]
    rho: Vec<f64>,
    /// Seeds per ρ and learner
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u64).range(1..))]
    seeds: u64,
    /// Steps per seed (a refit before every action: the cost grows with the square)
    #[arg(long, default_value_t = 160, value_parser = clap::value_parser!(u64).range(4..))]
    steps: u64,
    /// Step of the shift (default: half the steps)
    #[arg(long)]
    shift: Option<u64>,
    /// L2 penalty λ of the refit learners
    #[arg(long, default_value_t = 1.0, value_parser = positive)]
    lambda: f64,
    /// Step size of the REINFORCE learner
    #[arg(long, default_value_t = 0.1, value_parser = positive)]
    alpha: f64,
    /// Starts of the final multi-start of each refit learner
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u64).range(1..))]
    starts: u64,
    /// Write per-step regret and alignment as CSV files into this directory
    #[arg(long)]
    csv: Option<PathBuf>,
    /// Draw alignment and regret over time as SVG files into this directory
    #[arg(long)]
    svg: Option<PathBuf>,
    /// No progress bar (it is hidden anyway when stderr is not a terminal)
    #[arg(long)]
    quiet: bool,
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

const LEARNERS: [&str; 3] = ["online", "refit", "refit-er"];
/// Planner: 7×7 grids, k = 10 sweeps, temperature 0.3, discount 0.9.
const SIZE: usize = 7;

fn planner() -> refit::Result<Planner<f64>> {
    Planner::new(SIZE, 10, 0.3, 0.9)
}

/// The refit learners' solver settings: the planner's logits are not
/// linear in θ, so both objectives are solved by the trust region, whose
/// Hessian products are differences of exact gradients; the Lanczos
/// curvature check is left to the final multi-start.
fn quick() -> Options<f64> {
    Options {
        curvature_steps: 0,
        ..Options::default()
    }
}

/// What one seed of one learner produced.
#[derive(Debug, Clone)]
struct SeedRun {
    /// Expected regret per step.
    regret: Vec<f64>,
    /// Alignment of the learner's θ after every step.
    alignment: Vec<f64>,
    theta: Vec<f64>,
    /// On the history at the shift: distinct optima, the spread of their
    /// alignments, and the curvature of the data term along w_goal − w_cue.
    optima: Option<(usize, f64, f64)>,
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
    let jobs: Vec<(usize, usize, usize)> = (0..args.rho.len())
        .flat_map(|r| (0..LEARNERS.len()).flat_map(move |l| (0..seeds).map(move |s| (r, l, s))))
        .collect();
    let bar = if args.quiet {
        ProgressBar::hidden()
    } else {
        ProgressBar::new((jobs.len() * steps) as u64)
    };
    bar.set_style(ProgressStyle::with_template(
        "{elapsed_precise} [{bar:40}] {percent:>3}% eta {eta}",
    )?);
    // Seeds in parallel on every core, results in job order.
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let next = std::sync::atomic::AtomicUsize::new(0);
    let results: Vec<std::sync::Mutex<Option<refit::Result<SeedRun>>>> =
        jobs.iter().map(|_| std::sync::Mutex::new(None)).collect();
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| {
                loop {
                    let j = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let Some(&(r, l, s)) = jobs.get(j) else { break };
                    let out = play(args, args.rho[r], shift, l, s as u64, &|| bar.inc(1));
                    if let Ok(mut slot) = results[j].lock() {
                        *slot = Some(out);
                    }
                }
            });
        }
    });
    bar.finish_and_clear();
    let mut runs: Vec<Vec<Vec<SeedRun>>> = vec![vec![Vec::new(); LEARNERS.len()]; args.rho.len()];
    for (slot, &(r, l, _)) in results.into_iter().zip(&jobs) {
        let run = slot
            .into_inner()
            .map_err(|_| "a worker panicked")?
            .ok_or("a job did not run")??;
        runs[r][l].push(run);
    }
    print_table(args, shift, steps, &runs);
    if let Some(dir) = &args.csv {
        let path = dir.join("mesa_shift.csv");
        write_csv(&path, args, &runs)
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        println!("wrote {}", path.display());
    }
    if let Some(dir) = &args.svg {
        let path = dir.join("mesa_shift.svg");
        plot(&path, args, shift, &runs)
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        println!("wrote {}", path.display());
    }
    Ok(())
}

/// Plays one seed of learner `l` on grids with cue probability `rho`.
fn play(
    args: &Args,
    rho: f64,
    shift: usize,
    l: usize,
    seed: u64,
    tick: &dyn Fn(),
) -> refit::Result<SeedRun> {
    let config = GridConfig {
        rho,
        shift,
        ..GridConfig::default()
    };
    let steps = usize::try_from(args.steps).unwrap_or(usize::MAX);
    let lambda = args.lambda;
    match LEARNERS[l] {
        "online" => {
            let learner = Incremental::new(
                planner()?,
                refit::learner::StepSize::Constant(args.alpha),
                Baseline::RunningMean,
            )?;
            episode(
                learner,
                config,
                seed,
                steps,
                tick,
                |l| l.policy().params(),
                |_| Ok(None),
            )
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
            episode(
                learner,
                config,
                seed,
                steps,
                tick,
                |l| l.theta(),
                |l| identifiability(l.objective(), &l.theta(), lambda, args),
            )
        }
        _ => {
            let p = planner()?;
            let d = p.context_dim();
            let obj =
                ExpectedReturn::new(p, History::new(d), lambda, Estimator::Ips, None)?.summed();
            let schedule = refit::learner::Schedule {
                options: quick(),
                ..Default::default()
            };
            let learner = Refit::with_objective(obj, schedule)?;
            episode(
                learner,
                config,
                seed,
                steps,
                tick,
                |l| l.theta(),
                |l| identifiability(l.objective(), &l.theta(), lambda, args),
            )
        }
    }
}

/// How well a refit learner's history determines its mesa-objective: a
/// multi-start around θ (distinct optima, spread of their alignments), and
/// the curvature vᵀ(−∇²J_data)v of the data term along v = (e_goal −
/// e_cue)/√2 at θ — exactly 0 when the cue always sat on the goal.
fn identifiability<O: Objective<f64> + Clone>(
    obj: &O,
    theta: &[f64],
    lambda: f64,
    args: &Args,
) -> refit::Result<Option<(usize, f64, f64)>> {
    let mut obj = obj.clone();
    let mut g = vec![0.0; theta.len()];
    obj.value_grad(theta, &mut g)?;
    let mut v = vec![0.0; theta.len()];
    v[2] = std::f64::consts::FRAC_1_SQRT_2;
    v[3] = -std::f64::consts::FRAC_1_SQRT_2;
    let mut hv = vec![0.0; theta.len()];
    obj.neg_hess_vec(&v, &mut hv)?;
    let curvature = v.iter().zip(&hv).map(|(a, b)| a * b).sum::<f64>() - lambda;
    let ms = multi_start(
        &mut obj,
        theta,
        &MultiStartOptions {
            starts: usize::try_from(args.starts).unwrap_or(4),
            seed: 7,
            spread: 1.0,
            distinct: 0.02,
        },
        &Options {
            tol: 1e-8,
            curvature_steps: 0,
            ..Options::default()
        },
    )?;
    let a: Vec<f64> = ms
        .maxima
        .iter()
        .filter_map(|m| alignment(&m.theta))
        .collect();
    let spread = a.iter().cloned().fold(f64::NEG_INFINITY, f64::max)
        - a.iter().cloned().fold(f64::INFINITY, f64::min);
    Ok(Some((
        ms.maxima.len(),
        if a.is_empty() { f64::NAN } else { spread },
        curvature,
    )))
}

fn episode<L: Learner<f64>>(
    mut learner: L,
    config: GridConfig,
    seed: u64,
    steps: usize,
    tick: &dyn Fn(),
    theta: impl Fn(&L) -> Vec<f64>,
    optima: impl Fn(&L) -> refit::Result<Option<(usize, f64, f64)>>,
) -> refit::Result<SeedRun> {
    let mut env = GridNav::new(config)?;
    let (mut erng, mut lrng) = (env_rng(seed), learner_rng(seed));
    let mut x = vec![0.0; env.context_dim()];
    let mut mu = [0.0; 4];
    let mut run = SeedRun {
        regret: Vec::with_capacity(steps),
        alignment: Vec::with_capacity(steps),
        theta: Vec::new(),
        optima: None,
    };
    let shift = config.shift;
    for t in 0..steps {
        if t == shift {
            run.optima = optima(&learner)?;
        }
        env.next_context(&mut erng, &mut x)?;
        env.expected_rewards(&mut mu)?;
        let d = learner.act(&x, &mut lrng)?;
        let p = learner.probabilities().unwrap_or(&[0.25; 4]).to_vec();
        let value: f64 = p.iter().zip(&mu).map(|(a, b)| a * b).sum();
        run.regret
            .push(mu.iter().cloned().fold(0.0, f64::max) - value);
        let r = env.reward(d.action, &mut erng)?;
        learner.learn(&x, d.action, r, d.propensity)?;
        run.alignment
            .push(alignment(&theta(&learner)).unwrap_or(0.5));
        tick();
    }
    run.theta = theta(&learner);
    Ok(run)
}

/// The alignment a = w_goal / (|w_goal| + |w_cue|) of a planner's θ, ½
/// (undetermined) while both weights are below 10⁻⁶.
fn alignment(theta: &[f64]) -> Option<f64> {
    let (g, c) = (theta[2], theta[3]);
    if g.abs() + c.abs() < 1e-6 {
        return Some(0.5);
    }
    refit::policy::alignment(theta)
}

fn mean_se(v: &[f64]) -> (f64, f64) {
    let n = v.len() as f64;
    let m = v.iter().sum::<f64>() / n;
    if v.len() < 2 {
        return (m, 0.0);
    }
    let var = v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (n - 1.0);
    (m, (var / n).sqrt())
}

fn print_table(args: &Args, shift: usize, steps: usize, runs: &[Vec<Vec<SeedRun>>]) {
    println!(
        "mesa_shift: Planner (7×7, k = 10, τ = 0.3, γ = 0.9) on GridNav; {} seeds × {steps} steps, shift at {shift}; λ = {}, α = {}",
        args.seeds, args.lambda, args.alpha
    );
    println!(
        "  {:<5} {:<9} {:>15} {:>15} {:>13} {:>13} {:>13} {:>13} {:>7} {:>7} {:>9}",
        "ρ",
        "learner",
        "regret < shift",
        "regret ≥ shift",
        "a at shift",
        "a at end",
        "β‖w‖",
        "‖u‖",
        "optima",
        "spread",
        "curv g−c"
    );
    for (r, rho) in args.rho.iter().enumerate() {
        for (l, name) in LEARNERS.iter().enumerate() {
            let rs = &runs[r][l];
            let per = |f: &dyn Fn(&SeedRun) -> f64| mean_se(&rs.iter().map(f).collect::<Vec<_>>());
            let before = per(&|s| s.regret[..shift].iter().sum::<f64>() / shift as f64);
            let after = per(&|s| s.regret[shift..].iter().sum::<f64>() / (steps - shift) as f64);
            let a_shift = per(&|s| s.alignment[shift - 1]);
            let a = per(&|s| alignment(&s.theta).unwrap_or(0.5));
            let plan =
                per(&|s| s.theta[4].abs() * s.theta[..4].iter().map(|w| w * w).sum::<f64>().sqrt());
            let reflex = per(&|s| s.theta[5..].iter().map(|u| u * u).sum::<f64>().sqrt());
            let optima = rs.iter().filter_map(|s| s.optima).collect::<Vec<_>>();
            let curvature = if optima.is_empty() {
                "—".to_string()
            } else {
                format!(
                    "{:.1e}",
                    mean_se(&optima.iter().map(|o| o.2).collect::<Vec<_>>()).0
                )
            };
            let (count, spread) = if optima.is_empty() {
                ("—".to_string(), "—".to_string())
            } else {
                let c = mean_se(&optima.iter().map(|o| o.0 as f64).collect::<Vec<_>>());
                let sp: Vec<f64> = optima
                    .iter()
                    .map(|o| o.1)
                    .filter(|v| v.is_finite())
                    .collect();
                (
                    format!("{:.1}", c.0),
                    if sp.is_empty() {
                        "—".into()
                    } else {
                        format!("{:.3}", mean_se(&sp).0)
                    },
                )
            };
            let pm = |x: (f64, f64), p: usize| format!("{:.p$} ± {:.p$}", x.0, x.1);
            println!(
                "  {:<5} {:<9} {:>15} {:>15} {:>13} {:>13} {:>13} {:>13} {:>7} {:>7} {:>9}",
                rho,
                name,
                pm(before, 3),
                pm(after, 3),
                pm(a_shift, 2),
                pm(a, 2),
                pm(plan, 2),
                pm(reflex, 2),
                count,
                spread,
                curvature
            );
        }
    }
}

fn write_csv(path: &Path, args: &Args, runs: &[Vec<Vec<SeedRun>>]) -> std::io::Result<()> {
    let mut w = std::io::BufWriter::new(std::fs::File::create(path)?);
    writeln!(
        w,
        "rho,learner,step,regret_mean,regret_se,alignment_mean,alignment_se"
    )?;
    for (r, rho) in args.rho.iter().enumerate() {
        for (l, name) in LEARNERS.iter().enumerate() {
            let rs = &runs[r][l];
            let steps = rs.first().map_or(0, |s| s.regret.len());
            for t in 0..steps {
                let (rm, re) = mean_se(&rs.iter().map(|s| s.regret[t]).collect::<Vec<_>>());
                let (am, ae) = mean_se(&rs.iter().map(|s| s.alignment[t]).collect::<Vec<_>>());
                writeln!(w, "{rho},{name},{},{rm},{re},{am},{ae}", t + 1)?;
            }
        }
    }
    w.flush()
}

type PlotResult = Result<(), Box<dyn std::error::Error>>;

/// Alignment (top) and regret (bottom, 20-step windows) over time, one
/// column per ρ, the shift marked.
fn plot(path: &Path, args: &Args, shift: usize, runs: &[Vec<Vec<SeedRun>>]) -> PlotResult {
    let cols = args.rho.len();
    let root = SVGBackend::new(path, (420 * cols as u32, 640)).into_drawing_area();
    root.fill(&WHITE)?;
    let panels = root.split_evenly((2, cols));
    let colors = [
        RGBColor(31, 119, 180),
        RGBColor(214, 39, 40),
        RGBColor(148, 103, 189),
    ];
    let steps = runs[0][0].first().map_or(1, |s| s.regret.len());
    for (r, rho) in args.rho.iter().enumerate() {
        for (row, what) in ["alignment a", "regret per step (20-step windows)"]
            .iter()
            .enumerate()
        {
            let (lo, hi) = if row == 0 { (-0.2, 1.05) } else { (0.0, 1.0) };
            let mut chart = ChartBuilder::on(&panels[row * cols + r])
                .caption(format!("ρ = {rho}: {what}"), ("sans-serif", 15))
                .margin(8)
                .x_label_area_size(30)
                .y_label_area_size(40)
                .build_cartesian_2d(0f64..steps as f64, lo..hi)?;
            chart.configure_mesh().x_desc("step").draw()?;
            chart.draw_series(std::iter::once(PathElement::new(
                vec![(shift as f64, lo), (shift as f64, hi)],
                BLACK.stroke_width(1),
            )))?;
            for (l, name) in LEARNERS.iter().enumerate() {
                let rs = &runs[r][l];
                let series: Vec<(f64, f64)> = if row == 0 {
                    (0..steps)
                        .map(|t| {
                            (
                                t as f64 + 1.0,
                                mean_se(&rs.iter().map(|s| s.alignment[t]).collect::<Vec<_>>()).0,
                            )
                        })
                        .collect()
                } else {
                    (0..steps)
                        .collect::<Vec<_>>()
                        .chunks(20)
                        .map(|c| {
                            let v: Vec<f64> = rs
                                .iter()
                                .map(|s| {
                                    c.iter().map(|&t| s.regret[t]).sum::<f64>() / c.len() as f64
                                })
                                .collect();
                            (c[c.len() / 2] as f64 + 1.0, mean_se(&v).0)
                        })
                        .collect()
                };
                let color = colors[l];
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
                .position(SeriesLabelPosition::LowerRight)
                .draw()?;
        }
    }
    root.present()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_are_checked() {
        let a = Args::try_parse_from(["x"]).expect("defaults");
        assert_eq!(a.rho, vec![1.0, 0.95, 0.8]);
        let a = Args::try_parse_from(["x", "--rho", "0.5,1", "--seeds", "2"]).expect("flags");
        assert_eq!((a.rho, a.seeds), (vec![0.5, 1.0], 2));
        for bad in [
            &["x", "--rho", "1.5"][..],
            &["x", "--seeds", "0"],
            &["x", "--lambda", "0"],
            &["x", "--bogus"],
        ] {
            assert!(Args::try_parse_from(bad).is_err(), "{bad:?}");
        }
    }
}

//! The crate's main job: an incremental REINFORCE learner and three learners
//! that refit to convergence before every action — on the REINFORCE
//! surrogate Σ w(r) log π, on the importance-weighted log-likelihood
//! Σ (w(r)/μ) log π, and on the importance-weighted expected return
//! Σ r π/μ (the policy optimal on the history) — beside the exploration
//! baselines a bandit reviewer expects (ε-greedy, LinUCB, SquareCB, linear
//! and Beta–Bernoulli Thompson sampling), played with common random numbers
//! on the same environments, and how far apart their policies are.
//!
//! Run it with
//! ```text
//! cargo run --release --example online_vs_refit
//! cargo run --release --example online_vs_refit -- --seeds 200 --steps 5000 --csv out --svg out
//! cargo run --release --example online_vs_refit -- --schedules
//! ```
//!
//! For each of four environments (a 10-armed Bernoulli bandit, a linear
//! contextual bandit, a finite-context bandit and a drifting bandit) it plays
//! the learners over the same seeds and prints: cumulative expected
//! regret at the last step (mean ± standard error over seeds), % optimal
//! action over the last 10% of steps, CPU time per step, and the shadow
//! `KL`: at log-spaced steps the surrogate Σ w(r) log π is solved on the
//! playing learner's own history and KL(π*_t ‖ π_t) is averaged over fixed
//! probe contexts. For the surrogate's refit learner that KL is ~0 (it *is*
//! the optimum); for the others it measures how far their policy is from
//! the surrogate's optimum on the same history (LinUCB's policy is a point
//! mass: no KL). Then a λ sweep of the refit learners on the Bernoulli
//! bandit shows how often each locks onto a suboptimal arm: the fraction
//! of seeds whose final policy puts more than 90% on one. The sweep adds
//! the literal surrogate with signed rewards, Σ (r − ½) log π, which pushes
//! probability away from failures. With `--schedules` it also asks how
//! often to refit: each refit objective before every action, every 10
//! actions, at doubling epochs and during a warm-up of 100 points only, on
//! every bandit (regret, % optimal, refits per run, time per step).
//!
//! Flags: `--seeds N` (default 32), `--steps T` (default 1000), `--csv DIR`
//! (per-step traces, one CSV per environment, plus the λ sweep and the
//! schedules), `--svg DIR` (plots), `--schedules`, `--quiet` (no progress
//! bar; the bar is hidden anyway when stderr is not a terminal). `--help`
//! lists them.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Parser;
use indicatif::{ProgressBar, ProgressStyle};
use ndarray::Array2;
use plotters::prelude::*;
use rand::SeedableRng;
use rand_distr::{Distribution, StandardNormal};
use refit::env::{Bernoulli, Drifting, Environment, FiniteContext, LinearContextual};
use refit::history::History;
use refit::learner::{
    Baseline, BetaThompson, Cadence, EpsilonGreedy, Incremental, Learner, LinTs, LinUcb, Refit,
    RefitConfig, Schedule, SquareCb, StepSize,
};
use refit::objective::{Estimator, ExpectedReturn, Weighting};
use refit::policy::{LinearSoftmax, Policy, Tabular};
use refit::run::{Observe, Runner, Shadow, Summary};

#[path = "common/exec.rs"]
mod exec;
use exec::{Exec, Saveable, SweepArgs};

const K: usize = 10;
const ALPHA: f64 = 0.1;

#[derive(Parser, Debug)]
#[command(about = "REINFORCE against learners that refit to convergence before every action")]
struct Args {
    /// Seeds (independent runs with common random numbers across learners)
    #[arg(long, default_value_t = 32, value_parser = clap::value_parser!(u64).range(1..))]
    seeds: u64,
    /// Steps per seed (at least 10)
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u64).range(10..))]
    steps: u64,
    /// Write per-step traces, the shadow and the λ sweep as CSV files into this directory
    #[arg(long)]
    csv: Option<PathBuf>,
    /// Draw the plots as SVG files into this directory
    #[arg(long)]
    svg: Option<PathBuf>,
    /// No progress bar (it is hidden anyway when stderr is not a terminal)
    #[arg(long)]
    quiet: bool,
    /// Also study how often to refit: every refit objective refit before
    /// every action, every 10 actions, at doubling epochs and during a
    /// warm-up of 100 points only, on every bandit (about half again the
    /// default run's time)
    #[arg(long)]
    schedules: bool,
    #[command(flatten)]
    sweep: SweepArgs,
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

/// One environment of the comparison and what both learners need for it.
struct Setting {
    name: &'static str,
    title: &'static str,
    /// Context length (1 for the plain bandits, whose learners are tabular).
    d: usize,
    tabular: bool,
    weighting: Weighting<f64>,
    probes: Array2<f64>,
    /// The reward noise scale LinTS assumes (v).
    noise: f64,
    /// Whether rewards are 0/1 and contexts absent (Bernoulli Thompson sampling applies).
    bernoulli: bool,
}

/// The learners of the comparison, in table order: the four of the
/// question, then the exploration baselines (Bernoulli Thompson sampling
/// only where rewards are 0/1 and contexts absent).
const LEARNERS: [&str; 9] = [
    "online",
    "refit",
    "refit-iw",
    "refit-er",
    "eps-greedy",
    "linucb",
    "squarecb",
    "lints",
    "beta-ts",
];

/// Plot colour of the i-th learner of [`LEARNERS`].
fn colour(name: &str) -> RGBColor {
    const PALETTE: [RGBColor; 9] = [
        RGBColor(31, 119, 180),
        RGBColor(214, 39, 40),
        RGBColor(44, 160, 44),
        RGBColor(148, 103, 189),
        RGBColor(255, 127, 14),
        RGBColor(140, 86, 75),
        RGBColor(227, 119, 194),
        RGBColor(127, 127, 127),
        RGBColor(188, 189, 34),
    ];
    LEARNERS
        .iter()
        .position(|n| *n == name)
        .map_or(RGBColor(0, 0, 0), |i| PALETTE[i])
}

/// Every learner's summary on one environment, in the order of `LEARNERS`.
struct Outcome {
    setting: Setting,
    runs: Vec<(&'static str, Summary)>,
    /// The `--schedules` study on this bandit (empty without it).
    schedules: Vec<ScheduleCell>,
}

impl Outcome {
    fn named(&self) -> impl Iterator<Item = (&'static str, RGBColor, &Summary)> {
        self.runs.iter().map(|(n, s)| (*n, colour(n), s))
    }
}

/// The sweep cell of `learner` on the setting's bandit.
fn cell(s: &Setting, learner: &str) -> String {
    format!("{}.{learner}", s.name)
}

/// The sweep cell of `learner` with a refit schedule on the setting's bandit.
fn schedule_cell(s: &Setting, learner: &str, cadence: &str) -> String {
    format!(
        "schedule.{}.{learner}.{}",
        s.name,
        cadence.replace(' ', "-")
    )
}

/// The sweep cell of a λ-sweep learner.
fn sweep_cell(learner: &str, lambda: f64) -> String {
    format!("lambda-sweep.{learner}.lambda={lambda:e}")
}

/// The importance-weighted form of a weighting: w(r)/μ.
fn importance(w: Weighting<f64>) -> Weighting<f64> {
    match w {
        Weighting::Exp(b) => Weighting::ExpImportance(b),
        _ => Weighting::Importance,
    }
}

fn refit_config(weighting: Weighting<f64>) -> RefitConfig<f64> {
    RefitConfig {
        lambda: 1.0,
        weighting,
        ..RefitConfig::default()
    }
}

fn run(args: &Args) -> Result<(), Box<dyn std::error::Error>> {
    for dir in [&args.csv, &args.svg].into_iter().flatten() {
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("cannot create directory {}: {e}", dir.display()))?;
    }
    let (seeds, steps) = (usize::try_from(args.seeds)?, usize::try_from(args.steps)?);
    let identity = vec![
        format!("seeds={seeds}"),
        format!("steps={steps}"),
        format!("schedules={}", args.schedules),
    ];
    let exec = Exec::new(
        Runner::new(steps, seeds)?,
        &args.sweep,
        "online_vs_refit",
        identity,
    )?;
    if let Some(what) = exec.describe() {
        eprintln!("{what}");
    }
    let at = Shadow::<f64>::log_spaced(steps, 8);
    let one = Array2::from_elem((1, 1), 1.0);
    // Probe contexts of the linear contextual bandit: 32 fixed N(0, I) draws.
    let mut probe_rng = rand_chacha::ChaCha8Rng::seed_from_u64(2024);
    let gaussian_probes = Array2::from_shape_fn((32, 8), |_| {
        let z: f64 = StandardNormal.sample(&mut probe_rng);
        z
    });
    let bernoulli_means: Vec<f64> = (0..K).map(|a| 0.05 + 0.09 * a as f64).collect();
    // Rewards of the Gaussian-noise bandits are unbounded below, so they are
    // weighted by exp(r); the 0/1 rewards of the Bernoulli bandits by r itself.
    let settings = [
        Setting {
            name: "bernoulli",
            title: "10-armed Bernoulli bandit (means 0.05 .. 0.86)",
            d: 1,
            tabular: true,
            weighting: Weighting::Identity,
            probes: one.clone(),
            noise: 0.5,
            bernoulli: true,
        },
        Setting {
            name: "linear_contextual",
            title: "linear contextual bandit (K = 10, d = 8, noise 0.5)",
            d: 8,
            tabular: false,
            weighting: Weighting::Exp(1.0),
            probes: gaussian_probes,
            noise: 0.5,
            bernoulli: false,
        },
        Setting {
            name: "finite_context",
            title: "finite-context Bernoulli bandit (5 one-hot contexts, K = 10)",
            d: 5,
            tabular: false,
            weighting: Weighting::Identity,
            probes: Array2::from_shape_fn((5, 5), |(i, j)| f64::from(u8::from(i == j))),
            noise: 0.5,
            bernoulli: false,
        },
        Setting {
            name: "drifting",
            title: "drifting Gaussian bandit (K = 10, walk sd 0.01, noise 1)",
            d: 1,
            tabular: true,
            weighting: Weighting::Exp(1.0),
            probes: one.clone(),
            noise: 1.0,
            bernoulli: false,
        },
    ];
    // Runs: 4 learners on each of 4 bandits, and the sweep's cells.
    let cells = SWEPT.len() * LAMBDAS.len() - 2;
    // Runs: the learners on each bandit (Bernoulli Thompson sampling on
    // one), the sweep's cells, and with --schedules 3 objectives × 4
    // cadences on each bandit.
    let runs_total = 4 * (LEARNERS.len() - 1) + 1 + cells + usize::from(args.schedules) * 48;
    let bar = if args.quiet {
        ProgressBar::hidden()
    } else {
        ProgressBar::new(((runs_total * seeds * steps) as f64 * exec.share()) as u64)
    };
    bar.set_style(ProgressStyle::with_template(
        "{elapsed_precise} [{bar:40}] {percent:>3}% eta {eta} {msg}",
    )?);
    let tick = |n: usize| bar.inc(n as u64);
    let mut outcomes = Vec::new();
    for (i, setting) in settings.into_iter().enumerate() {
        bar.set_message(format!("[{}/5] {}", i + 1, setting.name));
        let config = refit_config(setting.weighting);
        let shadow = Shadow {
            at: at.clone(),
            probes: setting.probes.clone(),
            config,
            tabular: setting.tabular,
        };
        let study = args.schedules;
        let (runs, cadences) = match setting.name {
            "bernoulli" => {
                let env = |_: &mut rand_chacha::ChaCha8Rng| Bernoulli::new(bernoulli_means.clone());
                let runs = play(&exec, &shadow, env, &setting, &tick)?;
                (
                    runs,
                    if study {
                        schedules(&exec, env, &setting, &tick)?
                    } else {
                        Vec::new()
                    },
                )
            }
            "linear_contextual" => {
                let env =
                    |rng: &mut rand_chacha::ChaCha8Rng| LinearContextual::random(K, 8, 0.5, rng);
                let runs = play(&exec, &shadow, env, &setting, &tick)?;
                (
                    runs,
                    if study {
                        schedules(&exec, env, &setting, &tick)?
                    } else {
                        Vec::new()
                    },
                )
            }
            "finite_context" => {
                let env = |rng: &mut rand_chacha::ChaCha8Rng| FiniteContext::random(5, K, rng);
                let runs = play(&exec, &shadow, env, &setting, &tick)?;
                (
                    runs,
                    if study {
                        schedules(&exec, env, &setting, &tick)?
                    } else {
                        Vec::new()
                    },
                )
            }
            _ => {
                let env = |_: &mut rand_chacha::ChaCha8Rng| Drifting::new(vec![0.0; K], 1.0, 0.01);
                let runs = play(&exec, &shadow, env, &setting, &tick)?;
                (
                    runs,
                    if study {
                        schedules(&exec, env, &setting, &tick)?
                    } else {
                        Vec::new()
                    },
                )
            }
        };
        outcomes.push(Outcome {
            setting,
            runs,
            schedules: cadences,
        });
    }
    bar.set_message("[5/5] λ sweep of the refit learners");
    let sweep = lambda_sweep(&exec, &bernoulli_means, &tick)?;
    bar.finish_and_clear();
    if !exec.reports() {
        // One shard of several: its seeds are in the directory; the merge
        // prints and writes.
        eprintln!("{}", exec.shard_done());
        return Ok(());
    }

    println!("online    REINFORCE, α = {ALPHA}, running-mean baseline, one step per interaction");
    println!(
        "refit     refit before every action on Σ w(r) log π − ½‖θ‖² (the REINFORCE surrogate)"
    );
    println!("refit-iw  ... on Σ (w(r)/μ) log π − ½‖θ‖² (importance-weighted log-likelihood)");
    println!(
        "refit-er  ... on Σ r π/μ − ½‖θ‖² (importance-weighted expected return: π* of the history)"
    );
    println!(
        "eps-greedy  ε-greedy over a per-action ridge model (λ = {RIDGE_LAMBDA}), ε = {EPSILON}"
    );
    println!(
        "linucb      LinUCB (disjoint, Li et al. 2010), α = {UCB_ALPHA}, ties shared (deterministic: no KL)"
    );
    println!(
        "squarecb    SquareCB (Foster & Rakhlin 2020) over the ridge model, γ_t = {SQUARECB_GAMMA0}·t^{SQUARECB_EXPONENT}"
    );
    println!(
        "lints       linear Thompson sampling, v = the bandit's noise sd; propensity by 100 seeded posterior draws"
    );
    println!(
        "beta-ts     Beta(1, 1)–Bernoulli Thompson sampling (0/1 rewards, no contexts); propensity as lints"
    );
    println!(
        "the plain bandits' models see the constant context 1 (per-arm means); w(r) = r for 0/1 rewards, exp(r) for Gaussian ones"
    );
    println!(
        "μ = logged propensity; KL = KL(π*_surrogate ‖ π) of the surrogate refit on the learner's own history"
    );
    println!(
        "{} seeds × {} steps, common random numbers per seed\n",
        seeds, steps
    );
    for o in &outcomes {
        print_table(o, steps);
    }
    print_sweep(&sweep, steps);
    if args.schedules {
        print_schedules(&outcomes, steps);
    }

    // Errors name the file they are about.
    let named =
        |path: &Path, e: &dyn std::fmt::Display| format!("cannot write {}: {e}", path.display());
    if let Some(dir) = &args.csv {
        for o in &outcomes {
            let path = dir.join(format!("{}.csv", o.setting.name));
            write_traces(&path, o).map_err(|e| named(&path, &e))?;
        }
        let path = dir.join("lambda_sweep.csv");
        write_sweep(&path, &sweep).map_err(|e| named(&path, &e))?;
        if args.schedules {
            let path = dir.join("schedules.csv");
            write_schedules(&path, &outcomes).map_err(|e| named(&path, &e))?;
        }
        println!("wrote CSV files to {}", dir.display());
    }
    if let Some(dir) = &args.svg {
        for o in &outcomes {
            let path = dir.join(format!("{}.svg", o.setting.name));
            plot_outcome(&path, o).map_err(|e| named(&path, &e))?;
        }
        let path = dir.join("lambda_sweep.svg");
        plot_sweep(&path, &sweep).map_err(|e| named(&path, &e))?;
        if args.schedules {
            let path = dir.join("schedules.svg");
            plot_schedules(&path, &outcomes).map_err(|e| named(&path, &e))?;
        }
        println!("wrote SVG plots to {}", dir.display());
    }
    Ok(())
}

/// The refit learner on the importance-weighted expected return (summed,
/// IPS) of a policy family with penalty λ, refit before every action.
fn expected_return<P: Policy<f64>>(
    policy: P,
    lambda: f64,
) -> refit::Result<Refit<f64, P, ExpectedReturn<f64, P>>> {
    expected_return_with(policy, lambda, refit_config(Weighting::Identity).schedule())
}

/// [`expected_return`] on a given schedule.
fn expected_return_with<P: Policy<f64>>(
    policy: P,
    lambda: f64,
    schedule: Schedule<f64>,
) -> refit::Result<Refit<f64, P, ExpectedReturn<f64, P>>> {
    let d = policy.context_dim();
    let obj = ExpectedReturn::new(policy, History::new(d), lambda, Estimator::Ips, None)?.summed();
    Refit::with_objective(obj, schedule)
}

/// The progress bar's tick.
type Tick<'a> = &'a (dyn Fn(usize) + Sync);

/// What the comparison watches: the shadow, and the progress.
fn watch<'a, L, E>(shadow: &'a Shadow<f64>, tick: Tick<'a>) -> Observe<'a, f64, L, E> {
    Observe {
        shadow: Some(shadow),
        finish: None,
        progress: Some(tick),
    }
}

/// Plays the learners of `LEARNERS` on `env`: the four of the question and
/// the baselines, each with a shadow but LinUCB (a deterministic policy:
/// its KL to π* is that of a point mass).
fn play<E, ME>(
    exec: &Exec,
    shadow: &Shadow<f64>,
    env: ME,
    s: &Setting,
    tick: Tick<'_>,
) -> Result<Vec<(&'static str, Summary)>, refit::Error>
where
    E: Environment<f64> + Saveable,
    ME: Fn(&mut rand_chacha::ChaCha8Rng) -> refit::Result<E> + Sync,
{
    let step = StepSize::Constant(ALPHA);
    let config = shadow.config;
    let iw = RefitConfig {
        weighting: importance(config.weighting),
        ..config
    };
    let mut out = if s.tabular {
        vec![
            (
                "online",
                exec.run(
                    &cell(s, "online"),
                    &env,
                    || Incremental::tabular(K, step, Baseline::RunningMean),
                    &watch(shadow, tick),
                )?,
            ),
            (
                "refit",
                exec.run(
                    &cell(s, "refit"),
                    &env,
                    || Refit::tabular(K, config),
                    &watch(shadow, tick),
                )?,
            ),
            (
                "refit-iw",
                exec.run(
                    &cell(s, "refit-iw"),
                    &env,
                    || Refit::tabular(K, iw),
                    &watch(shadow, tick),
                )?,
            ),
            (
                "refit-er",
                exec.run(
                    &cell(s, "refit-er"),
                    &env,
                    || expected_return(Tabular::new(K)?, config.lambda),
                    &watch(shadow, tick),
                )?,
            ),
        ]
    } else {
        vec![
            (
                "online",
                exec.run(
                    &cell(s, "online"),
                    &env,
                    || Incremental::linear(K, s.d, step, Baseline::RunningMean),
                    &watch(shadow, tick),
                )?,
            ),
            (
                "refit",
                exec.run(
                    &cell(s, "refit"),
                    &env,
                    || Refit::linear(K, s.d, config),
                    &watch(shadow, tick),
                )?,
            ),
            (
                "refit-iw",
                exec.run(
                    &cell(s, "refit-iw"),
                    &env,
                    || Refit::linear(K, s.d, iw),
                    &watch(shadow, tick),
                )?,
            ),
            (
                "refit-er",
                exec.run(
                    &cell(s, "refit-er"),
                    &env,
                    || expected_return(LinearSoftmax::new(K, s.d)?, config.lambda),
                    &watch(shadow, tick),
                )?,
            ),
        ]
    };
    out.extend(baselines(exec, shadow, &env, s, tick)?);
    Ok(out)
}

/// The exploration baselines' hyperparameters (documented in the legend).
const EPSILON: f64 = 0.1;
const UCB_ALPHA: f64 = 1.0;
const SQUARECB_GAMMA0: f64 = 10.0;
const SQUARECB_EXPONENT: f64 = 0.5;
const RIDGE_LAMBDA: f64 = 1.0;

/// The baselines on `env`, over the setting's contexts (length 1 for the
/// plain bandits, whose contexts are the constant 1: per-arm models).
fn baselines<E, ME>(
    exec: &Exec,
    shadow: &Shadow<f64>,
    env: &ME,
    s: &Setting,
    tick: Tick<'_>,
) -> Result<Vec<(&'static str, Summary)>, refit::Error>
where
    E: Environment<f64> + Saveable,
    ME: Fn(&mut rand_chacha::ChaCha8Rng) -> refit::Result<E> + Sync,
{
    let d = s.d;
    let progress = Observe {
        shadow: None,
        finish: None,
        progress: Some(tick),
    };
    let mut out = vec![
        (
            "eps-greedy",
            exec.run(
                &cell(s, "eps-greedy"),
                env,
                || EpsilonGreedy::new(K, d, RIDGE_LAMBDA, EPSILON),
                &watch(shadow, tick),
            )?,
        ),
        (
            "linucb",
            exec.run(
                &cell(s, "linucb"),
                env,
                || LinUcb::new(K, d, RIDGE_LAMBDA, UCB_ALPHA),
                &progress,
            )?,
        ),
        (
            "squarecb",
            exec.run(
                &cell(s, "squarecb"),
                env,
                || SquareCb::new(K, d, RIDGE_LAMBDA, SQUARECB_GAMMA0, SQUARECB_EXPONENT),
                &watch(shadow, tick),
            )?,
        ),
        (
            "lints",
            exec.run(
                &cell(s, "lints"),
                env,
                || LinTs::new(K, d, RIDGE_LAMBDA, s.noise),
                &watch(shadow, tick),
            )?,
        ),
    ];
    if s.bernoulli {
        out.push((
            "beta-ts",
            exec.run(
                &cell(s, "beta-ts"),
                env,
                || BetaThompson::new(K, 1.0, 1.0),
                &watch(shadow, tick),
            )?,
        ));
    }
    Ok(out)
}

/// The refit schedules of the `--schedules` study, after "before every
/// action": every 10 actions, at doubling epochs, and during a warm-up of
/// the first 100 points only.
const CADENCES: [(&str, Cadence); 4] = [
    ("every action", Cadence::Every(1)),
    ("every 10", Cadence::Every(10)),
    ("doubling", Cadence::Doubling),
    ("warm-up 100", Cadence::WarmUp(100)),
];

/// One cell of the schedules study: a refit objective with a cadence on a
/// bandit; `finish` holds the refits done per seed.
struct ScheduleCell {
    learner: &'static str,
    cadence: &'static str,
    summary: Summary,
}

/// Every refit objective with every cadence on `env`, without a shadow
/// (the time per step is the learner's), the number of refits per seed as
/// the finish value.
fn schedules<E, ME>(
    exec: &Exec,
    env: ME,
    s: &Setting,
    tick: Tick<'_>,
) -> Result<Vec<ScheduleCell>, refit::Error>
where
    E: Environment<f64> + Saveable,
    ME: Fn(&mut rand_chacha::ChaCha8Rng) -> refit::Result<E> + Sync,
{
    let mut cells = Vec::new();
    for (cadence_name, cadence) in CADENCES {
        let config = RefitConfig {
            cadence,
            ..refit_config(s.weighting)
        };
        let iw = RefitConfig {
            weighting: importance(s.weighting),
            ..config
        };
        let schedule = config.schedule();
        let push = |cells: &mut Vec<ScheduleCell>, learner, summary| {
            cells.push(ScheduleCell {
                learner,
                cadence: cadence_name,
                summary,
            });
        };
        if s.tabular {
            let count = |l: &mut Refit<f64, Tabular<f64>>, _: &E| Ok(l.refits() as f64);
            let count_er = |l: &mut Refit<f64, Tabular<f64>, ExpectedReturn<f64, Tabular<f64>>>,
                            _: &E| Ok(l.refits() as f64);
            let watch = |f| Observe {
                shadow: None,
                finish: Some(f),
                progress: Some(tick),
            };
            push(
                &mut cells,
                "refit",
                exec.run(
                    &schedule_cell(s, "refit", cadence_name),
                    &env,
                    || Refit::tabular(K, config),
                    &watch(&count),
                )?,
            );
            push(
                &mut cells,
                "refit-iw",
                exec.run(
                    &schedule_cell(s, "refit-iw", cadence_name),
                    &env,
                    || Refit::tabular(K, iw),
                    &watch(&count),
                )?,
            );
            let er = || expected_return_with(Tabular::new(K)?, config.lambda, schedule);
            let obs = Observe {
                shadow: None,
                finish: Some(&count_er),
                progress: Some(tick),
            };
            push(
                &mut cells,
                "refit-er",
                exec.run(&schedule_cell(s, "refit-er", cadence_name), &env, er, &obs)?,
            );
        } else {
            let count = |l: &mut Refit<f64>, _: &E| Ok(l.refits() as f64);
            let count_er = |l: &mut Refit<
                f64,
                LinearSoftmax<f64>,
                ExpectedReturn<f64, LinearSoftmax<f64>>,
            >,
                            _: &E| Ok(l.refits() as f64);
            let watch = |f| Observe {
                shadow: None,
                finish: Some(f),
                progress: Some(tick),
            };
            push(
                &mut cells,
                "refit",
                exec.run(
                    &schedule_cell(s, "refit", cadence_name),
                    &env,
                    || Refit::linear(K, s.d, config),
                    &watch(&count),
                )?,
            );
            push(
                &mut cells,
                "refit-iw",
                exec.run(
                    &schedule_cell(s, "refit-iw", cadence_name),
                    &env,
                    || Refit::linear(K, s.d, iw),
                    &watch(&count),
                )?,
            );
            let er = || expected_return_with(LinearSoftmax::new(K, s.d)?, config.lambda, schedule);
            let obs = Observe {
                shadow: None,
                finish: Some(&count_er),
                progress: Some(tick),
            };
            push(
                &mut cells,
                "refit-er",
                exec.run(&schedule_cell(s, "refit-er", cadence_name), &env, er, &obs)?,
            );
        }
    }
    Ok(cells)
}

/// The λ of the sweep; 0 selects the closed form (where there is one).
const LAMBDAS: [f64; 4] = [0.0, 1e-3, 1e-1, 1.0];

/// The refit learners of the sweep.
const SWEPT: [&str; 4] = ["refit", "refit-iw", "refit-signed", "refit-er"];

/// One cell of the sweep: the learner's summary on the Bernoulli bandit,
/// whose finish value is 1 when the final policy puts > 90% on a
/// suboptimal arm; `None` where λ = 0 has no optimum (signed weights, the
/// expected return).
struct SweepCell {
    learner: &'static str,
    lambda: f64,
    summary: Option<Summary>,
}

/// The Bernoulli bandit with rewards r − ½: failures are negative. A
/// constant shift, so the regret is that of the bandit.
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
struct Centered(Bernoulli<f64>);

impl Environment<f64> for Centered {
    fn num_actions(&self) -> usize {
        self.0.num_actions()
    }
    fn context_dim(&self) -> usize {
        1
    }
    fn next_context<R: rand::Rng + ?Sized>(
        &mut self,
        rng: &mut R,
        out: &mut [f64],
    ) -> refit::Result<()> {
        self.0.next_context(rng, out)
    }
    fn expected_rewards(&self, out: &mut [f64]) -> refit::Result<()> {
        self.0.expected_rewards(out)?;
        out.iter_mut().for_each(|v| *v -= 0.5);
        Ok(())
    }
    fn expected_rewards_at(&self, x: &[f64], out: &mut [f64]) -> refit::Result<()> {
        self.0.expected_rewards_at(x, out)?;
        out.iter_mut().for_each(|v| *v -= 0.5);
        Ok(())
    }
    fn reward<R: rand::Rng + ?Sized>(&mut self, action: usize, rng: &mut R) -> refit::Result<f64> {
        Ok(self.0.reward(action, rng)? - 0.5)
    }
}

/// 1 if `p` puts more than 90% on an arm whose mean is below the best.
fn stuck(p: &[f64], means: &[f64]) -> f64 {
    let best = means.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    f64::from(u8::from(
        p.iter().zip(means).any(|(pa, m)| *pa > 0.9 && *m < best),
    ))
}

/// For each refit learner and λ: how often it locks in on the Bernoulli bandit.
fn lambda_sweep(
    exec: &Exec,
    means: &[f64],
    tick: Tick<'_>,
) -> Result<Vec<SweepCell>, refit::Error> {
    fn locked<L: Learner<f64>>(l: &mut L, means: &[f64]) -> refit::Result<f64> {
        let mut p = vec![0.0; K];
        l.policy_into(&[1.0], &mut p)?;
        Ok(stuck(&p, means))
    }
    let on_bandit = |l: &mut Refit<f64, Tabular<f64>>, _: &Bernoulli<f64>| locked(l, means);
    let on_centered = |l: &mut Refit<f64, Tabular<f64>>, _: &Centered| locked(l, means);
    let on_er = |l: &mut Refit<f64, Tabular<f64>, ExpectedReturn<f64, Tabular<f64>>>,
                 _: &Bernoulli<f64>| { locked(l, means) };
    let bandit = |_: &mut rand_chacha::ChaCha8Rng| Bernoulli::new(means.to_vec());
    let mut cells = Vec::new();
    for learner in SWEPT {
        for lambda in LAMBDAS {
            let config = RefitConfig {
                lambda,
                weighting: match learner {
                    "refit-iw" => Weighting::Importance,
                    "refit-signed" => Weighting::Signed,
                    _ => Weighting::Identity,
                },
                ..refit_config(Weighting::Identity)
            };
            let summary = match (learner, lambda == 0.0) {
                ("refit-signed" | "refit-er", true) => None,
                ("refit-signed", false) => Some(exec.run(
                    &sweep_cell(learner, lambda),
                    |_| Ok(Centered(Bernoulli::new(means.to_vec())?)),
                    || Refit::tabular(K, config),
                    &Observe {
                        shadow: None,
                        finish: Some(&on_centered),
                        progress: Some(tick),
                    },
                )?),
                ("refit-er", false) => Some(exec.run(
                    &sweep_cell(learner, lambda),
                    bandit,
                    || expected_return(Tabular::new(K)?, lambda),
                    &Observe {
                        shadow: None,
                        finish: Some(&on_er),
                        progress: Some(tick),
                    },
                )?),
                _ => Some(exec.run(
                    &sweep_cell(learner, lambda),
                    bandit,
                    || Refit::tabular(K, config),
                    &Observe {
                        shadow: None,
                        finish: Some(&on_bandit),
                        progress: Some(tick),
                    },
                )?),
            };
            cells.push(SweepCell {
                learner,
                lambda,
                summary,
            });
        }
    }
    Ok(cells)
}

fn print_table(o: &Outcome, steps: usize) {
    let at = &o.runs[1]
        .1
        .shadow
        .as_ref()
        .map(|s| s.at.clone())
        .unwrap_or_default();
    // Three KL columns: early, middle and last shadow steps.
    let cols: Vec<usize> = match at.len() {
        0 => vec![],
        n => vec![n / 4, n / 2, n - 1],
    };
    println!("{}", o.setting.title);
    print!(
        "  {:<9} {:>22} {:>15} {:>12}",
        "learner", "cum. regret at T", "% optimal", "time/step"
    );
    for &c in &cols {
        print!(" {:>18}", format!("KL at t={}", at[c]));
    }
    println!();
    let tail = (steps / 10).max(1);
    for (name, _, s) in o.named() {
        let t = steps - 1;
        let opt: f64 = s.optimal.mean[steps - tail..].iter().sum::<f64>() / tail as f64;
        print!(
            "  {:<9} {:>22} {:>15} {:>12}",
            name,
            format!(
                "{:.2} ± {:.2}",
                s.cumulative_regret.mean[t], s.cumulative_regret.se[t]
            ),
            format!("{:.1}", 100.0 * opt),
            format_time(s.cpu_seconds_per_step),
        );
        match &s.shadow {
            Some(sh) => {
                for &c in &cols {
                    print!(
                        " {:>18}",
                        format!("{:.2e} ± {:.1e}", sh.kl.mean[c], sh.kl.se[c])
                    );
                }
            }
            None => cols.iter().for_each(|_| print!(" {:>18}", "—")),
        }
        println!();
    }
    println!();
}

fn format_time(seconds: f64) -> String {
    if seconds < 1e-6 {
        format!("{:.0} ns", seconds * 1e9)
    } else if seconds < 1e-3 {
        format!("{:.1} µs", seconds * 1e6)
    } else {
        format!("{:.2} ms", seconds * 1e3)
    }
}

fn print_sweep(sweep: &[SweepCell], steps: usize) {
    println!(
        "λ sweep of the refit learners on the Bernoulli bandit: seeds locked onto a suboptimal arm (> 90% on it); cum. regret at T"
    );
    print!("  {:<13}", "learner");
    for lambda in LAMBDAS {
        let label = if lambda == 0.0 {
            "λ = 0 (closed form)".to_string()
        } else {
            format!("λ = {lambda:e}")
        };
        print!(" {label:>26}");
    }
    println!();
    for learner in SWEPT {
        print!("  {learner:<13}");
        for cell in sweep.iter().filter(|c| c.learner == learner) {
            let text = match &cell.summary {
                None => "— (no optimum)".to_string(),
                Some(s) => {
                    let (m, se) = s.finish.unwrap_or((f64::NAN, f64::NAN));
                    format!(
                        "{:.1}% ± {:.1}%; {:.1}",
                        100.0 * m,
                        100.0 * se,
                        s.cumulative_regret.mean[steps - 1]
                    )
                }
            };
            print!(" {text:>26}");
        }
        println!();
    }
    println!(
        "  (refit-signed is refit on Σ (r − ½) log π: it plays the rewards r − ½, so failures are negative)"
    );
    println!();
}

fn write_traces(path: &Path, o: &Outcome) -> std::io::Result<()> {
    let mut w: Vec<u8> = Vec::new();
    writeln!(
        w,
        "learner,step,reward_mean,reward_se,regret_mean,regret_se,cumulative_regret_mean,cumulative_regret_se,optimal_mean,optimal_se,kl_mean,kl_se"
    )?;
    for (name, _, s) in o.named() {
        let shadow = s.shadow.as_ref();
        for t in 0..s.steps() {
            let kl = shadow.and_then(|sh| {
                sh.at
                    .iter()
                    .position(|&a| a == t + 1)
                    .map(|i| (sh.kl.mean[i], sh.kl.se[i]))
            });
            let (klm, kls) = kl.map_or((String::new(), String::new()), |(m, e)| {
                (m.to_string(), e.to_string())
            });
            writeln!(
                w,
                "{name},{},{},{},{},{},{},{},{},{},{klm},{kls}",
                t + 1,
                s.reward.mean[t],
                s.reward.se[t],
                s.regret.mean[t],
                s.regret.se[t],
                s.cumulative_regret.mean[t],
                s.cumulative_regret.se[t],
                s.optimal.mean[t],
                s.optimal.se[t],
            )?;
        }
    }
    exec::write_file(path, &w).map_err(std::io::Error::other)
}

fn write_sweep(path: &Path, sweep: &[SweepCell]) -> std::io::Result<()> {
    let mut w: Vec<u8> = Vec::new();
    writeln!(
        w,
        "learner,lambda,locked_fraction,locked_se,cumulative_regret_mean,cumulative_regret_se"
    )?;
    for cell in sweep {
        let Some(s) = &cell.summary else { continue };
        let (m, se) = s.finish.unwrap_or((f64::NAN, f64::NAN));
        let t = s.steps() - 1;
        writeln!(
            w,
            "{},{},{m},{se},{},{}",
            cell.learner, cell.lambda, s.cumulative_regret.mean[t], s.cumulative_regret.se[t]
        )?;
    }
    exec::write_file(path, &w).map_err(std::io::Error::other)
}

type PlotResult = Result<(), Box<dyn std::error::Error>>;

/// Three panels: cumulative regret, % optimal (per step), shadow KL (log t).
fn plot_outcome(path: &Path, o: &Outcome) -> PlotResult {
    let mut svg = String::new();
    draw_outcome(&mut svg, o)?;
    exec::write_file(path, svg.as_bytes())?;
    Ok(())
}

fn draw_outcome(svg: &mut String, o: &Outcome) -> PlotResult {
    let root = SVGBackend::with_string(svg, (1500, 460)).into_drawing_area();
    root.fill(&WHITE)?;
    let root = root.titled(o.setting.title, ("sans-serif", 20))?;
    let panels = root.split_evenly((1, 3));
    let steps = o.runs[0].1.steps();
    let curves: Vec<(&str, &Summary, RGBColor)> = o.named().map(|(n, c, s)| (n, s, c)).collect();
    let xs: Vec<f64> = (1..=steps).map(|t| t as f64).collect();

    let ymax = curves
        .iter()
        .map(|(_, s, _)| {
            s.cumulative_regret.mean[steps - 1] + 2.0 * s.cumulative_regret.se[steps - 1]
        })
        .fold(0.0, f64::max)
        .max(1e-9);
    let mut chart = ChartBuilder::on(&panels[0])
        .caption("cumulative expected regret", ("sans-serif", 16))
        .margin(10)
        .x_label_area_size(35)
        .y_label_area_size(55)
        .build_cartesian_2d(1.0..steps as f64, 0.0..ymax * 1.05)?;
    chart
        .configure_mesh()
        .x_desc("step t")
        .x_label_formatter(&|v| format!("{v:.0}"))
        .draw()?;
    for &(name, s, color) in &curves {
        band(
            &mut chart,
            &xs,
            &s.cumulative_regret.mean,
            &s.cumulative_regret.se,
            color,
        )?;
        chart
            .draw_series(LineSeries::new(
                xs.iter()
                    .copied()
                    .zip(s.cumulative_regret.mean.iter().copied()),
                color.stroke_width(2),
            ))?
            .label(name)
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
            });
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .border_style(BLACK)
        .draw()?;

    // % optimal, smoothed over windows of steps/100 for readability.
    let window = (steps / 100).max(1);
    let mut chart = ChartBuilder::on(&panels[1])
        .caption(
            format!("% optimal action (mean over {window}-step windows)"),
            ("sans-serif", 16),
        )
        .margin(10)
        .x_label_area_size(35)
        .y_label_area_size(45)
        .build_cartesian_2d(1.0..steps as f64, 0.0..100.0)?;
    chart
        .configure_mesh()
        .x_desc("step t")
        .x_label_formatter(&|v| format!("{v:.0}"))
        .draw()?;
    for &(name, s, color) in &curves {
        let (wx, wm, wse) = windows(&s.optimal.mean, &s.optimal.se, window);
        let wm: Vec<f64> = wm.iter().map(|v| 100.0 * v).collect();
        let wse: Vec<f64> = wse.iter().map(|v| 100.0 * v).collect();
        band(&mut chart, &wx, &wm, &wse, color)?;
        chart
            .draw_series(LineSeries::new(
                wx.iter().copied().zip(wm.iter().copied()),
                color.stroke_width(2),
            ))?
            .label(name)
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
            });
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerRight)
        .border_style(BLACK)
        .draw()?;

    // Shadow KL on log t, log KL (floored for the refit learner's ~0).
    const FLOOR: f64 = 1e-12;
    let sh: Vec<_> = curves
        .iter()
        .map(|&(n, s, c)| (n, s.shadow.as_ref(), c))
        .collect();
    let kmax = sh
        .iter()
        .filter_map(|(_, s, _)| {
            s.map(|s| {
                s.kl.mean
                    .iter()
                    .zip(&s.kl.se)
                    .map(|(m, e)| m + e)
                    .fold(FLOOR, f64::max)
            })
        })
        .fold(FLOOR * 10.0, f64::max);
    let mut chart = ChartBuilder::on(&panels[2])
        .caption("shadow KL(π*_t ‖ π_t) at the probes", ("sans-serif", 16))
        .margin(10)
        .x_label_area_size(35)
        .y_label_area_size(60)
        .build_cartesian_2d(
            (1.0..steps as f64).log_scale(),
            (FLOOR..kmax * 2.0).log_scale(),
        )?;
    chart
        .configure_mesh()
        .x_desc("step t (log)")
        .x_label_formatter(&|v| format!("{v:.0}"))
        .y_label_formatter(&|v| format!("{v:.0e}"))
        .draw()?;
    for (name, s, color) in sh {
        if let Some(s) = s {
            let x: Vec<f64> = s.at.iter().map(|&t| t as f64).collect();
            let m: Vec<f64> = s.kl.mean.iter().map(|v| v.max(FLOOR)).collect();
            let lo: Vec<f64> =
                s.kl.mean
                    .iter()
                    .zip(&s.kl.se)
                    .map(|(m, e)| (m - e).max(FLOOR))
                    .collect();
            let hi: Vec<f64> =
                s.kl.mean
                    .iter()
                    .zip(&s.kl.se)
                    .map(|(m, e)| (m + e).max(FLOOR))
                    .collect();
            let mut poly: Vec<(f64, f64)> = x.iter().copied().zip(hi).collect();
            poly.extend(x.iter().copied().zip(lo).rev());
            chart.draw_series(std::iter::once(Polygon::new(poly, color.mix(0.2).filled())))?;
            chart
                .draw_series(LineSeries::new(
                    x.iter().copied().zip(m.iter().copied()),
                    color.stroke_width(2),
                ))?
                .label(name)
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
                });
            chart.draw_series(
                x.iter()
                    .zip(&m)
                    .map(|(&a, &b)| Circle::new((a, b), 3, color.filled())),
            )?;
        }
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .border_style(BLACK)
        .draw()?;
    root.present()?;
    Ok(())
}

/// A ± standard-error band.
fn band<DB: DrawingBackend, CT>(
    chart: &mut ChartContext<'_, DB, CT>,
    x: &[f64],
    mean: &[f64],
    se: &[f64],
    color: RGBColor,
) -> PlotResult
where
    CT: plotters::coord::CoordTranslate<From = (f64, f64)>,
    DB::ErrorType: 'static,
{
    let mut poly: Vec<(f64, f64)> = x
        .iter()
        .zip(mean.iter().zip(se))
        .map(|(&t, (m, e))| (t, m + e))
        .collect();
    poly.extend(
        x.iter()
            .zip(mean.iter().zip(se))
            .rev()
            .map(|(&t, (m, e))| (t, m - e)),
    );
    chart.draw_series(std::iter::once(Polygon::new(poly, color.mix(0.2).filled())))?;
    Ok(())
}

/// Window means of a per-step series (and of its standard errors).
fn windows(mean: &[f64], se: &[f64], w: usize) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
    let mut x = Vec::new();
    let mut m = Vec::new();
    let mut e = Vec::new();
    for (i, (cm, ce)) in mean.chunks(w).zip(se.chunks(w)).enumerate() {
        x.push((i * w + cm.len().div_ceil(2)) as f64);
        m.push(cm.iter().sum::<f64>() / cm.len() as f64);
        e.push(ce.iter().sum::<f64>() / ce.len() as f64);
    }
    (x, m, e)
}

fn plot_sweep(path: &Path, sweep: &[SweepCell]) -> PlotResult {
    let mut svg = String::new();
    draw_sweep(&mut svg, sweep)?;
    exec::write_file(path, svg.as_bytes())?;
    Ok(())
}

fn draw_sweep(svg: &mut String, sweep: &[SweepCell]) -> PlotResult {
    let root = SVGBackend::with_string(svg, (760, 440)).into_drawing_area();
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            "refit learners on the Bernoulli bandit: seeds locked onto a suboptimal arm",
            ("sans-serif", 16),
        )
        .margin(15)
        .x_label_area_size(40)
        .y_label_area_size(50)
        .build_cartesian_2d(-0.5..(LAMBDAS.len() as f64 - 0.5), 0.0..100.0)?;
    let labels: Vec<String> = LAMBDAS
        .iter()
        .map(|l| {
            if *l == 0.0 {
                "0 (closed form)".into()
            } else {
                format!("{l}")
            }
        })
        .collect();
    chart
        .configure_mesh()
        .x_labels(LAMBDAS.len())
        .x_label_formatter(&|v| {
            let i = v.round();
            if (v - i).abs() < 1e-6 && i >= 0.0 {
                labels.get(i as usize).cloned().unwrap_or_default()
            } else {
                String::new()
            }
        })
        .x_desc("λ")
        .y_desc("% of seeds with > 90% on a suboptimal arm")
        .draw()?;
    let colors = [
        colour("refit"),
        colour("refit-iw"),
        RGBColor(255, 127, 14),
        colour("refit-er"),
    ];
    let width = 0.8 / SWEPT.len() as f64;
    for (j, (learner, color)) in SWEPT.iter().zip(colors).enumerate() {
        let mut first = true;
        for (i, lambda) in LAMBDAS.iter().enumerate() {
            let Some(s) = sweep
                .iter()
                .find(|c| c.learner == *learner && c.lambda == *lambda)
                .and_then(|c| c.summary.as_ref())
            else {
                continue;
            };
            let (m, se) = s.finish.unwrap_or((0.0, 0.0));
            let x = i as f64 - 0.4 + width * (j as f64 + 0.5);
            let bar = chart.draw_series(std::iter::once(Rectangle::new(
                [(x - 0.45 * width, 0.0), (x + 0.45 * width, 100.0 * m)],
                color.mix(0.8).filled(),
            )))?;
            if first {
                bar.label(*learner).legend(move |(x, y)| {
                    Rectangle::new([(x, y - 5), (x + 15, y + 5)], color.filled())
                });
                first = false;
            }
            chart.draw_series(std::iter::once(PathElement::new(
                vec![
                    (x, 100.0 * (m - se).max(0.0)),
                    (x, 100.0 * (m + se).min(1.0)),
                ],
                BLACK.stroke_width(2),
            )))?;
        }
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .border_style(BLACK)
        .draw()?;
    root.present()?;
    Ok(())
}

/// % optimal action over the last 10% of steps.
fn optimal_tail(s: &Summary, steps: usize) -> f64 {
    let tail = (steps / 10).max(1);
    100.0 * s.optimal.mean[steps - tail..].iter().sum::<f64>() / tail as f64
}

fn print_schedules(outcomes: &[Outcome], steps: usize) {
    println!(
        "How often to refit: each refit objective before every action, every 10 actions, at doubling epochs (n = 1, 2, 4, …) and during a warm-up of 100 points only (no shadow; same streams)"
    );
    for o in outcomes {
        println!("{}", o.setting.title);
        println!(
            "  {:<9} {:<13} {:>22} {:>10} {:>16} {:>12}",
            "learner", "schedule", "cum. regret at T", "% optimal", "refits per run", "time/step"
        );
        for c in &o.schedules {
            let s = &c.summary;
            let t = steps - 1;
            let (refits, refits_se) = s.finish.unwrap_or((f64::NAN, f64::NAN));
            println!(
                "  {:<9} {:<13} {:>22} {:>10} {:>16} {:>12}",
                c.learner,
                c.cadence,
                format!(
                    "{:.2} ± {:.2}",
                    s.cumulative_regret.mean[t], s.cumulative_regret.se[t]
                ),
                format!("{:.1}", optimal_tail(s, steps)),
                if refits_se > 0.0 {
                    format!("{refits:.1} ± {refits_se:.1}")
                } else {
                    format!("{refits:.0}")
                },
                format_time(s.cpu_seconds_per_step),
            );
        }
        println!();
    }
}

fn write_schedules(path: &Path, outcomes: &[Outcome]) -> std::io::Result<()> {
    let mut w: Vec<u8> = Vec::new();
    writeln!(
        w,
        "bandit,learner,schedule,cumulative_regret_mean,cumulative_regret_se,optimal_last_tenth,refits_mean,refits_se"
    )?;
    for o in outcomes {
        for c in &o.schedules {
            let s = &c.summary;
            let t = s.steps() - 1;
            let (refits, refits_se) = s.finish.unwrap_or((f64::NAN, f64::NAN));
            writeln!(
                w,
                "{},{},{},{},{},{},{refits},{refits_se}",
                o.setting.name,
                c.learner,
                c.cadence,
                s.cumulative_regret.mean[t],
                s.cumulative_regret.se[t],
                optimal_tail(s, s.steps()) / 100.0,
            )?;
        }
    }
    exec::write_file(path, &w).map_err(std::io::Error::other)
}

/// One panel per bandit: cumulative regret at T (± standard error) of
/// each refit objective under each schedule.
fn plot_schedules(path: &Path, outcomes: &[Outcome]) -> PlotResult {
    let mut svg = String::new();
    draw_schedules(&mut svg, outcomes)?;
    exec::write_file(path, svg.as_bytes())?;
    Ok(())
}

fn draw_schedules(svg: &mut String, outcomes: &[Outcome]) -> PlotResult {
    let root = SVGBackend::with_string(svg, (1400, 420)).into_drawing_area();
    root.fill(&WHITE)?;
    let root = root.titled(
        "how often to refit: cumulative regret at T (± SE) by schedule",
        ("sans-serif", 18),
    )?;
    let panels = root.split_evenly((1, outcomes.len().max(1)));
    let learners = ["refit", "refit-iw", "refit-er"];
    for (panel, o) in panels.iter().zip(outcomes) {
        let ymax = o
            .schedules
            .iter()
            .map(|c| {
                let s = &c.summary;
                let t = s.steps() - 1;
                s.cumulative_regret.mean[t] + s.cumulative_regret.se[t]
            })
            .fold(1.0f64, f64::max)
            * 1.1;
        let mut chart = ChartBuilder::on(panel)
            .caption(o.setting.name, ("sans-serif", 14))
            .margin(10)
            .x_label_area_size(35)
            .y_label_area_size(50)
            .build_cartesian_2d(-0.5..(CADENCES.len() as f64 - 0.5), 0.0..ymax)?;
        chart
            .configure_mesh()
            .x_labels(CADENCES.len())
            .x_label_formatter(&|v| {
                let i = v.round();
                if (v - i).abs() < 1e-6 && i >= 0.0 {
                    CADENCES
                        .get(i as usize)
                        .map_or(String::new(), |c| c.0.to_string())
                } else {
                    String::new()
                }
            })
            .y_desc("cum. regret at T")
            .draw()?;
        for (j, learner) in learners.iter().enumerate() {
            let color = colour(learner);
            let offset = (j as f64 - 1.0) * 0.15;
            let points: Vec<(f64, f64, f64)> = CADENCES
                .iter()
                .enumerate()
                .filter_map(|(i, (name, _))| {
                    o.schedules
                        .iter()
                        .find(|c| c.learner == *learner && c.cadence == *name)
                        .map(|c| {
                            let s = &c.summary;
                            let t = s.steps() - 1;
                            (
                                i as f64 + offset,
                                s.cumulative_regret.mean[t],
                                s.cumulative_regret.se[t],
                            )
                        })
                })
                .collect();
            chart
                .draw_series(
                    points
                        .iter()
                        .map(|&(x, m, _)| Circle::new((x, m), 4, color.filled())),
                )?
                .label(*learner)
                .legend(move |(x, y)| Circle::new((x + 10, y), 4, color.filled()));
            chart.draw_series(points.iter().map(|&(x, m, se)| {
                PathElement::new(
                    vec![(x, (m - se).max(0.0)), (x, m + se)],
                    color.stroke_width(2),
                )
            }))?;
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::LowerRight)
            .border_style(BLACK)
            .draw()?;
    }
    root.present()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_flags() {
        let a = Args::try_parse_from(["x"]).expect("defaults");
        assert_eq!(
            (a.seeds, a.steps, a.quiet, a.schedules),
            (32, 1000, false, false)
        );
        let a = Args::try_parse_from([
            "x",
            "--seeds",
            "3",
            "--steps=100",
            "--csv",
            "d",
            "--quiet",
            "--schedules",
        ])
        .expect("flags");
        assert_eq!(
            (a.seeds, a.steps, a.quiet, a.schedules),
            (3, 100, true, true)
        );
        assert_eq!(a.csv, Some(PathBuf::from("d")));
    }

    #[test]
    fn bad_flags_are_refused_with_a_message() {
        for (args, want) in [
            (&["x", "--seeds", "0"][..], "--seeds"),
            (&["x", "--seeds", "x"][..], "--seeds"),
            (&["x", "--steps"][..], "--steps"),
            (&["x", "--steps", "5"][..], "--steps"),
            (&["x", "--bogus"][..], "--bogus"),
        ] {
            let err = Args::try_parse_from(args).expect_err("refused").to_string();
            assert!(err.contains(want), "{args:?}: {err}");
        }
    }

    #[test]
    fn a_directory_that_cannot_be_made_is_named() {
        let args =
            Args::try_parse_from(["x", "--csv", "/dev/null/x", "--seeds", "1", "--steps", "10"])
                .expect("flags");
        let err = run(&args).expect_err("not a directory").to_string();
        assert!(err.contains("/dev/null/x"), "{err}");
    }
}

//! Off-policy evaluation and offline policy learning from logged bandit
//! feedback: reads logs (x, a, r, p) from a CSV file, fits three policies on
//! one part of them — the REINFORCE surrogate Σ r log π, the
//! importance-weighted log-likelihood Σ (r/μ) log π, and the
//! importance-weighted expected return Σ r π/μ (multi-start, counting its
//! local maxima) — and evaluates each on the held-out part with IPS, SNIPS,
//! DM and DR, with standard errors, normal and bootstrap 95% intervals.
//!
//! Run it with
//! ```text
//! cargo run --release --example offline_logs                      # the bundled sample
//! cargo run --release --example offline_logs -- --logs my.csv --actions 7
//! cargo run --release --example offline_logs -- --generate sample.csv
//! ```
//!
//! The CSV has a header naming `x0, …, x{d−1}, a, r, p`: the context, the
//! action taken (0-based), its reward and the probability μ(a | x) the
//! logging policy gave it. The bundled sample `examples/data/sample_logs.csv`
//! is written by `--generate` (see [`generate`]): 3000 rows of a 5-armed
//! logistic bandit with contexts (1, z1, z2), z ~ N(0, I), logged by a
//! fixed softmax policy, seed 2026. For that sample the true value of each
//! policy is known to the generator and printed beside the estimates (Monte
//! Carlo over 200 000 fresh contexts).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use ndarray::Array2;
use rand::{RngExt, SeedableRng};
use rand_distr::{Distribution, StandardNormal};
use refit::history::History;
use refit::objective::{Dataset, Estimator, ExpectedReturn, LogLikelihood, Weighting};
use refit::ope::{Estimate, OpeOptions, evaluate};
use refit::policy::{LinearSoftmax, Policy, sample_action};
use refit::solve::{MultiStartOptions, Options, maximize, multi_start};

/// The bundled sample, relative to the crate root.
const SAMPLE: &str = "examples/data/sample_logs.csv";
/// Actions of the sample.
const SAMPLE_K: usize = 5;
/// Rows of the sample.
const SAMPLE_N: usize = 3000;

#[derive(Parser, Debug)]
#[command(about = "Off-policy evaluation and offline learning from logged bandit feedback")]
struct Args {
    /// CSV logs with columns x0..x{d-1}, a, r, p (default: the bundled sample)
    #[arg(long)]
    logs: Option<PathBuf>,
    /// Number of actions K (default: 5 for the bundled sample, else 1 + the largest logged action)
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    actions: Option<u64>,
    /// L2 penalty λ of the fitted policies
    #[arg(long, default_value_t = 1.0, value_parser = positive_f64)]
    lambda: f64,
    /// Fraction of the rows (the first ones) used for fitting; the rest evaluates
    #[arg(long, default_value_t = 0.5, value_parser = fraction)]
    fit_fraction: f64,
    /// Bootstrap resamples of the intervals
    #[arg(long, default_value_t = 1000)]
    bootstrap: usize,
    /// Clip the importance weights at M (default: no clipping)
    #[arg(long, value_parser = positive_f64)]
    clip: Option<f64>,
    /// Starts of the expected return's multi-start
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u64).range(1..))]
    starts: u64,
    /// Seed of the bootstrap and the multi-start
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Write the bundled sample (the seeded generator) to this path and exit
    #[arg(long)]
    generate: Option<PathBuf>,
}

fn positive_f64(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() && v > 0.0 => Ok(v),
        _ => Err(format!("expected a finite number > 0, got `{s}`")),
    }
}

fn fraction(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v > 0.0 && v < 1.0 => Ok(v),
        _ => Err(format!("expected a number in (0, 1), got `{s}`")),
    }
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

/// The sample's world: 5 arms, contexts (1, z1, z2), reward 1 with
/// probability σ(W_a · x).
struct World {
    w: Array2<f64>,
    logging: LinearSoftmax<f64>,
}

impl World {
    fn new() -> Result<Self, refit::Error> {
        let w = ndarray::array![
            [0.0, 1.0, 0.0],
            [-0.5, -1.0, 1.0],
            [0.5, 0.0, -1.0],
            [-1.0, 0.5, 0.5],
            [0.2, -0.5, -0.5]
        ];
        // The logging policy prefers arm 0 and barely looks at z.
        let logging = LinearSoftmax::from_params(
            ndarray::array![
                [1.0, 0.2, 0.0],
                [0.0, 0.0, 0.2],
                [0.0, 0.0, 0.0],
                [-0.5, 0.0, 0.0],
                [0.0, -0.2, 0.0]
            ]
            .view(),
        )?;
        Ok(Self { w, logging })
    }

    fn context(rng: &mut rand_chacha::ChaCha8Rng) -> [f64; 3] {
        let z1: f64 = StandardNormal.sample(rng);
        let z2: f64 = StandardNormal.sample(rng);
        [1.0, z1, z2]
    }

    fn mean(&self, x: &[f64], a: usize) -> f64 {
        let s: f64 = self.w.row(a).iter().zip(x).map(|(w, x)| w * x).sum();
        1.0 / (1.0 + (-s).exp())
    }

    /// E_x Σ_a π(a|x) P(r = 1 | x, a), by Monte Carlo over 200 000 contexts.
    fn value(&self, pi: &LinearSoftmax<f64>) -> Result<f64, refit::Error> {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
        let n = 200_000;
        let mut total = 0.0;
        for _ in 0..n {
            let x = Self::context(&mut rng);
            let p = pi.probabilities(&x)?;
            total += (0..SAMPLE_K).map(|a| p[a] * self.mean(&x, a)).sum::<f64>();
        }
        Ok(total / n as f64)
    }
}

/// The seeded generator of the bundled sample: 3000 rows logged by the
/// world's logging policy, seed 2026.
fn generate() -> Result<History<f64>, refit::Error> {
    let world = World::new()?;
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(2026);
    let mut logs = History::new(3);
    for _ in 0..SAMPLE_N {
        let x = World::context(&mut rng);
        let p = world.logging.probabilities(&x)?;
        let a = sample_action(&p, &mut rng);
        let r = f64::from(u8::from(rng.random::<f64>() < world.mean(&x, a)));
        logs.push(&x, a, r, p[a])?;
    }
    Ok(logs)
}

fn run(args: &Args) -> Result<(), Box<dyn std::error::Error>> {
    if let Some(path) = &args.generate {
        generate()?.write_csv(path)?;
        println!("wrote {SAMPLE_N} rows to {}", path.display());
        return Ok(());
    }
    let bundled = args.logs.is_none();
    let path = args
        .logs
        .clone()
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(SAMPLE));
    let k = match args.actions {
        Some(k) => usize::try_from(k)?,
        None if bundled => SAMPLE_K,
        // Read once with the largest K the crate accepts to find the
        // largest action.
        None => {
            1 + History::<f64>::read_csv(&path, refit::limits::MAX_ACTIONS)?
                .actions()
                .iter()
                .copied()
                .max()
                .unwrap_or(0)
        }
    };
    let logs = History::<f64>::read_csv(&path, k)?;
    let n = logs.len();
    let n_fit = ((n as f64) * args.fit_fraction).round() as usize;
    if n_fit < 2 || n - n_fit < 2 {
        return Err(format!("{n} rows: too few to split into fitting and evaluation parts").into());
    }
    let d = logs.context_dim();
    let part = |lo: usize, hi: usize| -> Result<History<f64>, refit::Error> {
        let mut h = History::new(d);
        for it in logs.iter().skip(lo).take(hi - lo) {
            h.push(it.context, it.action, it.reward, it.propensity)?;
        }
        Ok(h)
    };
    let (train, test) = (part(0, n_fit)?, part(n_fit, n)?);
    let shown = if bundled {
        format!("{SAMPLE} (the bundled sample)")
    } else {
        path.display().to_string()
    };
    println!(
        "{shown}: {n} rows, K = {k}, d = {d}; fit on the first {n_fit}, evaluate on the other {}",
        n - n_fit
    );
    println!(
        "λ = {}, weights {}",
        args.lambda,
        match args.clip {
            Some(m) => format!("clipped at {m}"),
            None => "not clipped".into(),
        }
    );

    let options = Options::default();
    let signed = train.rewards().iter().any(|r| *r < 0.0);
    let loglik = |weight: &dyn Fn(f64, f64) -> f64| -> Result<LinearSoftmax<f64>, refit::Error> {
        let mut data = Dataset::new(k, d, true)?;
        if signed {
            data = data.signed();
        }
        for it in train.iter() {
            data.push(it.context, it.action, weight(it.reward, it.propensity))?;
        }
        let weighting = if signed {
            Weighting::Signed
        } else {
            Weighting::Identity
        };
        let mut obj = LogLikelihood::new(LinearSoftmax::new(k, d)?, data, args.lambda, weighting)?;
        let mut theta = vec![0.0; k * d];
        let report = maximize(&mut obj, &mut theta, &options)?;
        if !report.converged() {
            eprintln!("warning: a fit stopped early: {report:?}");
        }
        let mut p = LinearSoftmax::new(k, d)?;
        p.set_params(&theta)?;
        Ok(p)
    };
    let surrogate = loglik(&|r, _| r)?;
    let iw = loglik(&|r, mu| r / mu)?;
    let mut er = ExpectedReturn::new(
        LinearSoftmax::new(k, d)?,
        train.clone(),
        args.lambda,
        Estimator::Ips,
        args.clip,
    )?
    .summed();
    let ms = multi_start(
        &mut er,
        &vec![0.0; k * d],
        &MultiStartOptions {
            starts: usize::try_from(args.starts)?,
            seed: args.seed,
            ..MultiStartOptions::default()
        },
        &options,
    )?;
    let best = ms
        .best()
        .ok_or("the expected return's multi-start found no certified maximum")?;
    let mut er_policy = LinearSoftmax::new(k, d)?;
    er_policy.set_params(&best.theta)?;
    println!(
        "expected return: {} distinct local maxima from {} starts (values {}), {} starts failed",
        ms.maxima.len(),
        args.starts,
        ms.maxima
            .iter()
            .map(|m| format!("{:.3} ×{}", m.value, m.hits))
            .collect::<Vec<_>>()
            .join(", "),
        ms.failed()
    );
    println!();

    let world = if bundled { Some(World::new()?) } else { None };
    let ope = OpeOptions {
        clip: args.clip,
        bootstrap: args.bootstrap,
        seed: args.seed,
        ..OpeOptions::default()
    };
    print!(
        "  {:<28} {:<6} {:>8} {:>8} {:>20} {:>20}",
        "policy", "est.", "value", "SE", "normal 95%", "bootstrap 95%"
    );
    println!(
        "{}",
        if world.is_some() {
            format!(" {:>8}", "true")
        } else {
            String::new()
        }
    );
    // The logging policy, on-policy: the mean reward of the evaluation part.
    let r = test.rewards();
    let m = r.iter().sum::<f64>() / r.len() as f64;
    let sd = (r.iter().map(|v| (v - m).powi(2)).sum::<f64>() / (r.len() - 1) as f64).sqrt();
    let se = sd / (r.len() as f64).sqrt();
    print!(
        "  {:<28} {:<6} {:>8.4} {:>8.4} {:>20} {:>20}",
        "logging (on-policy mean)",
        "mean",
        m,
        se,
        format!("[{:.4}, {:.4}]", m - 1.96 * se, m + 1.96 * se),
        "",
    );
    match &world {
        Some(w) => println!(" {:>8.4}", w.value(&w.logging)?),
        None => println!(),
    }
    for (name, policy) in [
        ("surrogate Σ r log π", &surrogate),
        ("IW log-lik. Σ (r/μ) log π", &iw),
        ("expected return Σ r π/μ", &er_policy),
    ] {
        let e = evaluate(policy, &test, &ope)?;
        let truth = match &world {
            Some(w) => Some(w.value(policy)?),
            None => None,
        };
        for (est, x) in [
            ("IPS", e.ips),
            ("SNIPS", e.snips),
            ("DM", e.dm),
            ("DR", e.dr),
        ] {
            print_row(name, est, &x, truth);
        }
        println!("  {:<28} mean importance weight {:.3}", "", e.mean_weight);
    }
    Ok(())
}

fn print_row(name: &str, est: &str, e: &Estimate<f64>, truth: Option<f64>) {
    let boot = e
        .bootstrap
        .map_or(String::new(), |(lo, hi)| format!("[{lo:.4}, {hi:.4}]"));
    print!(
        "  {:<28} {:<6} {:>8.4} {:>8.4} {:>20} {:>20}",
        name,
        est,
        e.value,
        e.std_err,
        format!("[{:.4}, {:.4}]", e.normal.0, e.normal.1),
        boot
    );
    match truth {
        Some(t) => println!(" {t:>8.4}"),
        None => println!(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bundled_sample_is_what_the_generator_writes() {
        let dir = std::env::temp_dir().join(format!("refit-offline-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let path = dir.join("sample.csv");
        generate()
            .expect("generates")
            .write_csv(&path)
            .expect("writes");
        let fresh = std::fs::read(&path).expect("read");
        let bundled = std::fs::read(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(SAMPLE))
            .expect("bundled sample");
        assert!(
            fresh == bundled,
            "examples/data/sample_logs.csv differs from `--generate`"
        );
    }

    #[test]
    fn flags_are_checked() {
        for bad in [
            &["x", "--lambda", "0"][..],
            &["x", "--lambda", "nan"][..],
            &["x", "--fit-fraction", "1"][..],
            &["x", "--actions", "0"][..],
            &["x", "--clip", "-1"][..],
            &["x", "--bogus"][..],
        ] {
            assert!(Args::try_parse_from(bad).is_err(), "{bad:?}");
        }
        let a = Args::try_parse_from(["x", "--lambda", "0.5", "--clip", "10"]).expect("valid");
        assert_eq!((a.lambda, a.clip, a.fit_fraction), (0.5, Some(10.0), 0.5));
    }
}

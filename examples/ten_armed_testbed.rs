//! Sutton & Barto (2nd ed.), Figure 2.5: the gradient bandit algorithm on the
//! 10-armed testbed with q*(a) ~ N(4, 1) and rewards ~ N(q*(a), 1), with and
//! without the running-mean reward baseline, at α = 0.1 and α = 0.4.
//!
//! Run it with
//! ```text
//! cargo run --release --example ten_armed_testbed
//! cargo run --release --example ten_armed_testbed -- --runs 500 --steps 2000 --csv fig25.csv
//! ```
//!
//! What the book shows: with the baseline the algorithm learns to pick the
//! optimal arm far more often than without it; the means are shifted by +4,
//! which a baseline absorbs and which, without one, pushes every pulled arm's
//! preference up. What to look for here: the table of % optimal action at
//! steps 100, 500 and 1000 for the four settings; the two `baseline_*` rows
//! are well above the two `nobaseline_*` rows, as in the figure. The README
//! holds the numbers of a default run.
//!
//! Flags (`--help` lists them): `--runs N` (default 2000), `--steps T`
//! (default 1000), `--csv PATH` (columns `step,setting,pct_optimal,mean_reward`,
//! `pct_optimal` in percent), `--quiet` (no progress bar; the bar is hidden
//! anyway when stderr is not a terminal).

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use indicatif::{ProgressBar, ProgressStyle};
use refit::env::Gaussian;
use refit::learner::{Baseline, Incremental, StepSize};
use refit::run::{Observe, Runner, Summary};

#[derive(Parser, Debug)]
#[command(about = "Sutton & Barto Figure 2.5: the gradient bandit on the 10-armed testbed")]
struct Args {
    /// Independent runs (seeds) per setting
    #[arg(long, default_value_t = 2000, value_parser = clap::value_parser!(u64).range(1..))]
    runs: u64,
    /// Steps per run
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u64).range(1..))]
    steps: u64,
    /// Write step,setting,pct_optimal,mean_reward to this CSV file
    #[arg(long)]
    csv: Option<PathBuf>,
    /// No progress bar
    #[arg(long)]
    quiet: bool,
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
    let settings = [
        ("baseline_a0.1", 0.1, true),
        ("baseline_a0.4", 0.4, true),
        ("nobaseline_a0.1", 0.1, false),
        ("nobaseline_a0.4", 0.4, false),
    ];
    let (runs, steps) = (usize::try_from(args.runs)?, usize::try_from(args.steps)?);
    let runner = Runner::new(steps, runs)?;
    // A bar on stderr when it is a terminal (hidden otherwise), fed by the
    // runner's progress observer.
    let bar = if args.quiet {
        ProgressBar::hidden()
    } else {
        ProgressBar::new((settings.len() * runs * steps) as u64)
    };
    bar.set_style(ProgressStyle::with_template(
        "{elapsed_precise} [{bar:40}] {percent:>3}% eta {eta} {msg}",
    )?);
    let tick = |n: usize| bar.inc(n as u64);
    let started = std::time::Instant::now();
    let mut results: Vec<(&str, Summary)> = Vec::new();
    for (name, alpha, with_baseline) in settings {
        let baseline = if with_baseline {
            Baseline::RunningMean
        } else {
            Baseline::None
        };
        bar.set_message(name);
        let summary = runner.run_observed(
            |rng| Gaussian::<f64>::testbed(10, 4.0, rng),
            || Incremental::tabular(10, StepSize::Constant(alpha), baseline),
            &Observe {
                progress: Some(&tick),
                ..Observe::default()
            },
        )?;
        results.push((name, summary));
    }
    let elapsed = started.elapsed();
    bar.finish_and_clear();

    let probes: Vec<usize> = [100, 500, 1000]
        .into_iter()
        .filter(|&s| s <= steps)
        .chain((steps > 1000 || ![100, 500, 1000].contains(&steps)).then_some(steps))
        .collect();
    println!(
        "10-armed testbed, q*(a) ~ N(4, 1): % optimal action (± standard error), {} runs",
        args.runs
    );
    print!("{:<18}", "setting");
    for s in &probes {
        print!("{:>16}", format!("step {s}"));
    }
    println!();
    for (name, summary) in &results {
        print!("{name:<18}");
        for &s in &probes {
            let (m, se) = (summary.optimal.mean[s - 1], summary.optimal.se[s - 1]);
            print!("{:>16}", format!("{:.1} ± {:.1}", 100.0 * m, 100.0 * se));
        }
        println!();
    }
    let steps_total = 4 * runs * steps;
    println!(
        "{} steps in {:.2} s ({:.0} ns per step over both cores)",
        steps_total,
        elapsed.as_secs_f64(),
        elapsed.as_nanos() as f64 / steps_total as f64
    );

    if let Some(path) = &args.csv {
        let file =
            File::create(path).map_err(|e| format!("cannot create {}: {e}", path.display()))?;
        let mut w = BufWriter::new(file);
        writeln!(w, "step,setting,pct_optimal,mean_reward")?;
        for (name, summary) in &results {
            for t in 0..summary.steps() {
                writeln!(
                    w,
                    "{},{},{},{}",
                    t + 1,
                    name,
                    100.0 * summary.optimal.mean[t],
                    summary.reward.mean[t]
                )?;
            }
        }
        w.flush()?;
        println!("wrote {}", path.display());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_follow_the_conventions() {
        let a = Args::try_parse_from(["x"]).expect("defaults");
        assert_eq!((a.runs, a.steps, a.quiet), (2000, 1000, false));
        let a = Args::try_parse_from(["x", "--runs", "5", "--steps=20", "--csv", "o.csv"])
            .expect("flags");
        assert_eq!((a.runs, a.steps), (5, 20));
        for bad in [
            &["x", "--runs", "0"][..],
            &["x", "--runs", "x"],
            &["x", "--steps"],
            &["x", "--bogus"],
        ] {
            assert!(Args::try_parse_from(bad).is_err(), "{bad:?}");
        }
    }
}

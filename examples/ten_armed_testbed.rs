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
//! Flags: `--runs N` (default 2000), `--steps T` (default 1000), `--csv PATH`
//! (columns `step,setting,pct_optimal,mean_reward`, `pct_optimal` in percent).

use std::fs::File;
use std::io::{BufWriter, Write};
use std::process::ExitCode;

use refit::env::Gaussian;
use refit::learner::{Baseline, Incremental, StepSize};
use refit::run::{Runner, Summary};

struct Args {
    runs: usize,
    steps: usize,
    csv: Option<String>,
}

const USAGE: &str = "usage: ten_armed_testbed [--runs N] [--steps T] [--csv PATH]";

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        runs: 2000,
        steps: 1000,
        csv: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or(format!("{flag} needs a value"));
        match flag.as_str() {
            "--runs" => args.runs = positive(&flag, &value()?)?,
            "--steps" => args.steps = positive(&flag, &value()?)?,
            "--csv" => args.csv = Some(value()?),
            "-h" | "--help" => return Err(String::new()),
            other => return Err(format!("unknown flag `{other}`")),
        }
    }
    Ok(args)
}

fn positive(flag: &str, v: &str) -> Result<usize, String> {
    match v.parse::<usize>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(format!("{flag} takes a positive integer, got `{v}`")),
    }
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(msg) => {
            if msg.is_empty() {
                println!("{USAGE}");
                return ExitCode::SUCCESS;
            }
            eprintln!("error: {msg}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
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
    let runner = Runner::new(args.steps, args.runs)?;
    let started = std::time::Instant::now();
    let mut results: Vec<(&str, Summary)> = Vec::new();
    for (name, alpha, with_baseline) in settings {
        let baseline = if with_baseline {
            Baseline::RunningMean
        } else {
            Baseline::None
        };
        let summary = runner.run(
            |rng| Gaussian::<f64>::testbed(10, 4.0, rng),
            || Incremental::tabular(10, StepSize::Constant(alpha), baseline),
        )?;
        results.push((name, summary));
    }
    let elapsed = started.elapsed();

    let probes: Vec<usize> = [100, 500, 1000]
        .into_iter()
        .filter(|&s| s <= args.steps)
        .chain((args.steps > 1000 || ![100, 500, 1000].contains(&args.steps)).then_some(args.steps))
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
    let steps_total = 4 * args.runs * args.steps;
    println!(
        "{} steps in {:.2} s ({:.0} ns per step over both cores)",
        steps_total,
        elapsed.as_secs_f64(),
        elapsed.as_nanos() as f64 / steps_total as f64
    );

    if let Some(path) = &args.csv {
        let mut w = BufWriter::new(File::create(path)?);
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
        println!("wrote {path}");
    }
    Ok(())
}

//! How an example plays its runs: all at once in this process, or as a
#![allow(dead_code)] // each example uses part of it
//! sweep in a directory — one shard of the seeds (`--shard I/N`, or the
//! batch scheduler's array index), resumable after a kill, and merged with
//! `--merge DIR` into the same tables and files (`refit::sweep`, feature
//! `serde`).

use std::path::PathBuf;

use refit::env::Environment;
use refit::learner::Learner;
use refit::run::{Observe, Runner, Series, Summary};

/// The flags of a sharded, resumable run.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct SweepArgs {
    /// Keep every finished seed's result in this directory as the run goes
    /// (atomically), skip those already there, and resume a seed from its
    /// autosave: a killed run started again with the same flags ends with
    /// the same results (needs the crate's `serde` feature)
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Play only shard I of N (a contiguous range of the seeds) into
    /// `--out`; by default the shard a Slurm job array or a Kubernetes
    /// indexed Job gives (SLURM_ARRAY_TASK_ID/COUNT, JOB_COMPLETION_INDEX
    /// with REFIT_SHARD_COUNT) when `--out` is set
    #[arg(long, value_name = "I/N")]
    pub shard: Option<String>,
    /// Print the tables and write the files of a run whose shards played
    /// into DIR (with the flags the shards were given)
    #[arg(long, value_name = "DIR")]
    pub merge: Option<PathBuf>,
    /// Autosave a seed's state every N steps with `--out` (0: every
    /// thousandth of the steps, at least 100)
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub checkpoint_every: usize,
}

/// What the learners and environments of a sweep must be: saved and
/// resumed (with feature `serde`), sent between threads.
#[cfg(feature = "serde")]
pub trait Saveable: serde::Serialize + serde::de::DeserializeOwned + Send {}
#[cfg(feature = "serde")]
impl<T: serde::Serialize + serde::de::DeserializeOwned + Send> Saveable for T {}
/// Without feature `serde` runs are played at once: any type will do.
#[cfg(not(feature = "serde"))]
pub trait Saveable {}
#[cfg(not(feature = "serde"))]
impl<T> Saveable for T {}

enum Mode {
    /// All at once, in this process.
    Direct,
    /// Into a sweep directory: a shard's seeds (and the merge, when the
    /// shard is the whole run), or only the merge.
    #[cfg(feature = "serde")]
    Sweep {
        sweep: refit::sweep::Sweep,
        shard: refit::sweep::Shard,
        merge_only: bool,
    },
}

/// Plays an example's runs as its flags say.
pub struct Exec {
    runner: Runner,
    mode: Mode,
    started: std::time::Instant,
}

impl Exec {
    /// The execution of `program`'s runs on `runner`: `identity` are the
    /// flags that change results (what a sweep's directory records).
    pub fn new(
        runner: Runner,
        args: &SweepArgs,
        program: &str,
        identity: Vec<String>,
    ) -> Result<Self, Box<dyn std::error::Error>> {
        let wants = args.out.is_some() || args.shard.is_some() || args.merge.is_some();
        if !wants {
            return Ok(Self {
                runner,
                mode: Mode::Direct,
                started: std::time::Instant::now(),
            });
        }
        #[cfg(not(feature = "serde"))]
        {
            let _ = (program, identity);
            Err(format!(
                "--out, --shard and --merge need the crate's serde feature: cargo run --release --features serde --example {program} -- …"
            )
            .into())
        }
        #[cfg(feature = "serde")]
        {
            use refit::sweep::{RunInfo, Shard, Sweep};
            let info = RunInfo::new(program, identity, runner.seeds().len(), runner.steps());
            if let Some(dir) = &args.merge {
                if args.out.is_some() || args.shard.is_some() {
                    return Err(
                        "--merge DIR reads a finished run: give it without --out or --shard".into(),
                    );
                }
                let sweep = Sweep::open_existing(dir, info)?;
                return Ok(Self {
                    runner,
                    mode: Mode::Sweep {
                        sweep,
                        shard: Shard::default(),
                        merge_only: true,
                    },
                    started: std::time::Instant::now(),
                });
            }
            let Some(dir) = &args.out else {
                return Err(
                    "--shard I/N needs --out DIR, where the shards put their results".into(),
                );
            };
            let shard = match &args.shard {
                Some(text) => Shard::parse(text)?,
                None => Shard::from_env()?.unwrap_or_default(),
            };
            let mut sweep = Sweep::open(dir, info)?.checkpoint_every(args.checkpoint_every);
            if let Some(hook) = abort_hook()? {
                sweep = sweep.with_hook(hook);
            }
            Ok(Self {
                runner,
                mode: Mode::Sweep {
                    sweep,
                    shard,
                    merge_only: false,
                },
                started: std::time::Instant::now(),
            })
        }
    }

    /// What a shard of several says when its seeds are done (on stderr).
    pub fn shard_done(&self) -> String {
        format!(
            "done in {:.1} s; merge with --merge DIR once every shard has finished",
            self.started.elapsed().as_secs_f64()
        )
    }

    /// The runner.
    pub fn runner(&self) -> &Runner {
        &self.runner
    }

    /// Whether this process prints the tables and writes the files: not a
    /// shard of several, which only plays its seeds.
    pub fn reports(&self) -> bool {
        match &self.mode {
            Mode::Direct => true,
            #[cfg(feature = "serde")]
            Mode::Sweep {
                shard, merge_only, ..
            } => *merge_only || shard.count == 1,
        }
    }

    /// Whether this process only merges a finished sweep (it plays nothing:
    /// its own time is not the run's).
    pub fn merges(&self) -> bool {
        self.share() == 0.0
    }

    /// The share of the run's seeds this process plays (for its progress bar).
    pub fn share(&self) -> f64 {
        match &self.mode {
            Mode::Direct => 1.0,
            #[cfg(feature = "serde")]
            Mode::Sweep {
                shard, merge_only, ..
            } => {
                if *merge_only {
                    0.0
                } else {
                    let n = self.runner.seeds().len();
                    shard.range(n).len() as f64 / n.max(1) as f64
                }
            }
        }
    }

    /// What this process does, for a line on stderr (`None` at once).
    pub fn describe(&self) -> Option<String> {
        match &self.mode {
            Mode::Direct => None,
            #[cfg(feature = "serde")]
            Mode::Sweep {
                sweep,
                shard,
                merge_only,
            } => {
                let n = self.runner.seeds().len();
                let r = shard.range(n);
                Some(if *merge_only {
                    format!("merging the run in {}", sweep.dir().display())
                } else {
                    format!(
                        "shard {}/{}: seeds {}..{} of {} into {}",
                        shard.index,
                        shard.count,
                        r.start,
                        r.end,
                        n,
                        sweep.dir().display()
                    )
                })
            }
        }
    }

    /// The summary of the run `cell`: played here, or this shard's seeds
    /// played into the sweep (and merged when the shard is the whole run),
    /// or merged from the sweep. A shard of several returns an empty
    /// summary (it reports nothing).
    pub fn run<E, L, ME, ML>(
        &self,
        cell: &str,
        make_env: ME,
        make_learner: ML,
        observe: &Observe<'_, f64, L, E>,
    ) -> refit::Result<Summary>
    where
        E: Environment<f64> + Saveable,
        L: Learner<f64> + Saveable,
        ME: Fn(&mut rand_chacha::ChaCha8Rng) -> refit::Result<E> + Sync,
        ML: Fn() -> refit::Result<L> + Sync,
    {
        match &self.mode {
            Mode::Direct => {
                let _ = cell;
                self.runner.run_observed(make_env, make_learner, observe)
            }
            #[cfg(feature = "serde")]
            Mode::Sweep {
                sweep,
                shard,
                merge_only,
            } => {
                if !merge_only {
                    sweep.run_cell(
                        &self.runner,
                        *shard,
                        cell,
                        &make_env,
                        &make_learner,
                        observe,
                    )?;
                }
                if *merge_only || shard.count == 1 {
                    let at = observe.shadow.map(|s| s.at.clone());
                    sweep.merge_cell(&self.runner, cell, at, observe.finish.is_some())
                } else {
                    Ok(empty())
                }
            }
        }
    }
}

impl Exec {
    /// Whether this process plays the seed with index `seed` (of the run's
    /// `0..seeds`): every seed at once, its shard's in a sweep, none in a
    /// merge.
    pub fn owns(&self, seed: usize) -> bool {
        match &self.mode {
            Mode::Direct => {
                let _ = seed;
                true
            }
            #[cfg(feature = "serde")]
            Mode::Sweep {
                shard, merge_only, ..
            } => !merge_only && shard.range(self.runner.seeds().len()).contains(&seed),
        }
    }

    /// The value of the job `cell` of seed index `seed` (an example's own
    /// per-seed measurement): computed here, or in a sweep read if it is
    /// finished and else computed and kept, or (merge) read; `None` for a
    /// seed of another shard.
    pub fn job<T, G>(&self, cell: &str, seed: usize, compute: G) -> refit::Result<Option<T>>
    where
        T: Saveable,
        G: FnOnce() -> refit::Result<T>,
    {
        match &self.mode {
            Mode::Direct => {
                let _ = (cell, seed);
                compute().map(Some)
            }
            #[cfg(feature = "serde")]
            Mode::Sweep {
                sweep, merge_only, ..
            } => {
                if *merge_only {
                    sweep.finished_job(cell, seed as u64).map(Some)
                } else if self.owns(seed) {
                    sweep.job(cell, seed as u64, compute).map(Some)
                } else {
                    Ok(None)
                }
            }
        }
    }
}

/// The test hook of `REFIT_SWEEP_ABORT=EVENT:N`: the process aborts (as if
/// killed) at the N-th event of that kind — `started` (a seed starts or
/// resumes), `autosaved` (inside a seed, after its state was saved),
/// `writing` (half of a file is written), `finished` (between seeds).
/// The kill tests of `scripts/kill_test.sh` use it.
#[cfg(feature = "serde")]
fn abort_hook() -> Result<Option<refit::sweep::Hook>, Box<dyn std::error::Error>> {
    use refit::sweep::Event;
    let Ok(spec) = std::env::var("REFIT_SWEEP_ABORT") else {
        return Ok(None);
    };
    let (kind, n) = spec
        .split_once(':')
        .ok_or("REFIT_SWEEP_ABORT is EVENT:N, e.g. writing:3")?;
    let n: usize = n.parse().map_err(|_| "REFIT_SWEEP_ABORT: N is a count")?;
    let kind = kind.to_string();
    if !["started", "autosaved", "writing", "finished"].contains(&kind.as_str()) {
        return Err("REFIT_SWEEP_ABORT: EVENT is started, autosaved, writing or finished".into());
    }
    let count = std::sync::atomic::AtomicUsize::new(0);
    Ok(Some(std::sync::Arc::new(move |e: &Event<'_>| {
        let this = match e {
            Event::SeedStarted { .. } => "started",
            Event::Autosaved { .. } => "autosaved",
            Event::Writing { .. } => "writing",
            Event::SeedFinished { .. } => "finished",
        };
        if this == kind && count.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1 == n {
            eprintln!("REFIT_SWEEP_ABORT: aborting at {this} #{n}");
            std::process::abort();
        }
    })))
}

/// The summary a shard of several returns for a run it does not report.
fn empty() -> Summary {
    let none = || Series {
        mean: Vec::new(),
        se: Vec::new(),
    };
    Summary {
        seeds: 0,
        reward: none(),
        regret: none(),
        cumulative_regret: none(),
        optimal: none(),
        shadow: None,
        finish: None,
        cpu_seconds_per_step: 0.0,
    }
}

/// Writes `bytes` to `path` atomically (temporary file, fsync, rename),
/// naming the path in the error.
pub fn write_file(path: &std::path::Path, bytes: &[u8]) -> Result<(), String> {
    refit::files::write_atomic(path, bytes).map_err(|e| e.to_string())
}

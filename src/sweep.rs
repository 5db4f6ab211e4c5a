//! Experiments that outlive a process and a machine: sharded, resumable
//! sweeps (docs/ARCHITECTURE.md, "Sweeps"; feature `serde`).
//!
//! A sweep is a set of *cells* (a learner on an environment: one
//! [`Runner`] run each) over the same seeds. A [`Sweep`] keeps one
//! directory per run: a manifest (`run.json`, the [`RunInfo`]: what was
//! run, with which arguments, by which version of the crate), and per cell
//! one file per finished seed (`<cell>/seed-<s>.json`, a [`SeedResult`]).
//! Every file is written atomically (a temporary file in the same
//! directory, `fsync`, rename), so a file is either whole or absent.
//!
//! * A process plays the seeds of its [`Shard`] (a contiguous range of
//!   the seeds; from `--shard I/N`, or a batch scheduler's array index)
//!   cell by cell, skips the seeds already finished, and within a seed
//!   autosaves its state every [`Sweep::checkpoint_every`] steps
//!   (`<cell>/seed-<s>.ckpt`): a run killed at any point and started again
//!   with the same arguments goes on where it stopped and ends with the
//!   same bytes as one uninterrupted run.
//! * [`Sweep::merge_cell`] reads the results of every seed of a cell and
//!   reduces them with [`Runner::summarize`]: the same [`Summary`], bit
//!   for bit, as [`Runner::run_observed`] on one machine, whatever the
//!   split of the seeds and the order the files arrived in.
//! * A file that is torn, damaged, or was written by another run (other
//!   arguments, another version, another cell or seed) is an error that
//!   names the file, never merged; so is a manifest that does not match.
//!
//! Temporary files (`.<name>.tmp-<pid>`) left by a killed process are
//! ignored (and replaced by the next write of the same file).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::env::Environment;
use crate::error::{Error, Result};
use crate::learner::Learner;
use crate::real::Real;
use crate::run::{ChaCha8Rng, Observe, Runner, SeedResult, SeedState, Summary, play_recorded};

/// Format tags of the files a sweep writes.
const MANIFEST: &str = "refit-sweep-manifest";
const RESULT: &str = "refit-seed-result";
const STATE: &str = "refit-seed-state";
const JOB: &str = "refit-job-result";
/// Version of those formats.
const VERSION: u32 = 1;

/// What a run is: the program, its arguments (those that change results),
/// the crate version, the number of seeds and of steps. Two processes
/// write to one directory only if their `RunInfo`s are equal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunInfo {
    /// The program (e.g. the example's name).
    pub program: String,
    /// Its arguments that change results, in a canonical form.
    pub args: Vec<String>,
    /// The crate version that wrote the files.
    pub version: String,
    /// Seeds of the run.
    pub seeds: usize,
    /// Steps per seed.
    pub steps: usize,
}

impl RunInfo {
    /// The run of `program` with `args`, `seeds` and `steps`, by this
    /// version of the crate.
    pub fn new(program: &str, args: Vec<String>, seeds: usize, steps: usize) -> Self {
        Self {
            program: program.to_string(),
            args,
            version: env!("CARGO_PKG_VERSION").to_string(),
            seeds,
            steps,
        }
    }

    /// The first field in which `other` differs from `self`, with both
    /// values, for an error message.
    fn difference(&self, other: &Self) -> Option<String> {
        if self.program != other.program {
            return Some(format!(
                "program {:?}, this run's {:?}",
                other.program, self.program
            ));
        }
        if self.version != other.version {
            return Some(format!(
                "crate version {}, this run's {}",
                other.version, self.version
            ));
        }
        if self.args != other.args {
            return Some(format!(
                "arguments {:?}, this run's {:?}",
                other.args.join(" "),
                self.args.join(" ")
            ));
        }
        if (self.seeds, self.steps) != (other.seeds, other.steps) {
            return Some(format!(
                "{} seeds × {} steps, this run's {} × {}",
                other.seeds, other.steps, self.seeds, self.steps
            ));
        }
        None
    }
}

/// One of N shards of a run: the shard with index `index` (0-based) of
/// `count` plays a contiguous range of the seeds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    /// 0-based index.
    pub index: usize,
    /// Number of shards.
    pub count: usize,
}

impl Default for Shard {
    /// The whole run: shard 0 of 1.
    fn default() -> Self {
        Self { index: 0, count: 1 }
    }
}

impl Shard {
    /// Shard `index` of `count`.
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] unless 0 ≤ index < count.
    pub fn new(index: usize, count: usize) -> Result<Self> {
        if count == 0 || index >= count {
            return Err(Error::InvalidParameter {
                name: "shard",
                value: index as f64,
                expected: "an index I in 0..N of N ≥ 1 shards",
            });
        }
        Ok(Self { index, count })
    }

    /// Reads `I/N` (e.g. `3/8`).
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] for anything else, or I ≥ N.
    pub fn parse(text: &str) -> Result<Self> {
        let bad = || Error::InvalidParameter {
            name: "shard",
            value: f64::NAN,
            expected: "I/N with 0 ≤ I < N, e.g. 0/4",
        };
        let (i, n) = text.split_once('/').ok_or_else(bad)?;
        let i = i.trim().parse().map_err(|_| bad())?;
        let n = n.trim().parse().map_err(|_| bad())?;
        Self::new(i, n)
    }

    /// The shard a batch scheduler gives this process, if any: Slurm job
    /// arrays (`SLURM_ARRAY_TASK_ID` − `SLURM_ARRAY_TASK_MIN` of
    /// `SLURM_ARRAY_TASK_COUNT`), or Kubernetes indexed Jobs
    /// (`JOB_COMPLETION_INDEX` of `REFIT_SHARD_COUNT`, which the Job's
    /// spec sets to its `completions`). `None` when neither is set.
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] when the variables are set but do not
    /// make a shard.
    pub fn from_env() -> Result<Option<Self>> {
        let var = |name: &str| std::env::var(name).ok();
        let num = |name: &'static str, v: String| -> Result<usize> {
            v.trim().parse().map_err(|_| Error::InvalidParameter {
                name,
                value: f64::NAN,
                expected: "a non-negative integer",
            })
        };
        if let (Some(id), Some(count)) = (var("SLURM_ARRAY_TASK_ID"), var("SLURM_ARRAY_TASK_COUNT"))
        {
            let min = match var("SLURM_ARRAY_TASK_MIN") {
                Some(m) => num("SLURM_ARRAY_TASK_MIN", m)?,
                None => 0,
            };
            let id = num("SLURM_ARRAY_TASK_ID", id)?;
            let index = id.checked_sub(min).ok_or(Error::InvalidParameter {
                name: "SLURM_ARRAY_TASK_ID",
                value: id as f64,
                expected: "at least SLURM_ARRAY_TASK_MIN",
            })?;
            return Self::new(index, num("SLURM_ARRAY_TASK_COUNT", count)?).map(Some);
        }
        if let Some(index) = var("JOB_COMPLETION_INDEX") {
            let count = var("REFIT_SHARD_COUNT").ok_or(Error::InvalidParameter {
                name: "REFIT_SHARD_COUNT",
                value: f64::NAN,
                expected: "the number of shards, beside JOB_COMPLETION_INDEX",
            })?;
            return Self::new(
                num("JOB_COMPLETION_INDEX", index)?,
                num("REFIT_SHARD_COUNT", count)?,
            )
            .map(Some);
        }
        Ok(None)
    }

    /// The positions (in the run's seed list) of this shard's seeds: a
    /// contiguous range, the ranges of the shards covering `0..seeds`.
    pub fn range(&self, seeds: usize) -> std::ops::Range<usize> {
        let lo = seeds * self.index / self.count;
        let hi = seeds * (self.index + 1) / self.count;
        lo..hi
    }
}

/// What a sweep tells its hook as it goes (for progress, and for tests that
/// stop a process at a chosen point).
#[derive(Debug, Clone, PartialEq)]
pub enum Event<'a> {
    /// A seed of a cell starts, or goes on from its autosave at `step`.
    SeedStarted {
        /// The cell.
        cell: &'a str,
        /// The seed.
        seed: u64,
        /// Steps already played (from the autosave).
        step: usize,
    },
    /// A seed's state was saved after `step` steps.
    Autosaved {
        /// The cell.
        cell: &'a str,
        /// The seed.
        seed: u64,
        /// Steps played.
        step: usize,
    },
    /// Half of a file's bytes are in its temporary file (the write is not
    /// complete).
    Writing {
        /// The file being written.
        path: &'a Path,
    },
    /// A seed's result was written.
    SeedFinished {
        /// The cell.
        cell: &'a str,
        /// The seed.
        seed: u64,
    },
}

/// The hook a sweep calls at every [`Event`].
pub type Hook = Arc<dyn Fn(&Event<'_>) + Send + Sync>;

/// A run's directory of results (see the module docs).
#[derive(Clone)]
pub struct Sweep {
    dir: PathBuf,
    info: RunInfo,
    every: usize,
    hook: Option<Hook>,
}

impl std::fmt::Debug for Sweep {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sweep")
            .field("dir", &self.dir)
            .field("info", &self.info)
            .field("every", &self.every)
            .field("hook", &self.hook.is_some())
            .finish()
    }
}

/// Wraps a file's payload with its format, version and checksum.
#[derive(Serialize)]
struct Sealed<'a, T> {
    format: &'a str,
    version: u32,
    checksum: String,
    payload: &'a serde_json::value::RawValue,
    #[serde(skip)]
    _t: std::marker::PhantomData<T>,
}

#[derive(Deserialize)]
struct Opened<'a> {
    format: String,
    version: u32,
    checksum: String,
    #[serde(borrow)]
    payload: &'a serde_json::value::RawValue,
}

/// A seed's result with what it belongs to.
#[derive(Serialize, Deserialize)]
struct ResultFile {
    run: RunInfo,
    cell: String,
    seed: u64,
    result: SeedResult,
}

/// A job's value with what it belongs to.
#[derive(Serialize, Deserialize)]
#[serde(bound(serialize = "T: Serialize", deserialize = "T: DeserializeOwned"))]
struct JobFile<T> {
    run: RunInfo,
    cell: String,
    seed: u64,
    value: T,
}

/// A seed's state part way, with what it belongs to.
#[derive(Serialize, Deserialize)]
#[serde(bound(serialize = "S: Serialize", deserialize = "S: DeserializeOwned"))]
struct StateFile<S> {
    run: RunInfo,
    cell: String,
    seed: u64,
    state: S,
    result: SeedResult,
}

/// An error about the file at `path`.
fn file_error(path: &Path, message: impl Into<String>) -> Error {
    Error::File {
        path: path.display().to_string(),
        message: message.into(),
    }
}

impl Sweep {
    /// The sweep of the run `info` in `dir` (created if needed). The
    /// manifest `dir/run.json` is written if it is not there; if it is,
    /// it must be this run's.
    ///
    /// # Errors
    /// [`Error::File`] naming the directory or the manifest if it cannot be
    /// made or read, or if the manifest is another run's (saying what
    /// differs).
    pub fn open(dir: impl AsRef<Path>, info: RunInfo) -> Result<Self> {
        Self::opened(dir.as_ref(), info, true)
    }

    /// The sweep of the run `info` already in `dir`, to read and merge:
    /// nothing is created or written.
    ///
    /// # Errors
    /// [`Error::File`] naming the directory if it is not there, the
    /// manifest if it is missing, unreadable or another run's (saying
    /// what differs).
    pub fn open_existing(dir: impl AsRef<Path>, info: RunInfo) -> Result<Self> {
        let dir = dir.as_ref();
        if !dir.is_dir() {
            return Err(file_error(dir, "no such directory: no run to merge here"));
        }
        Self::opened(dir, info, false)
    }

    fn opened(dir: &Path, info: RunInfo, create: bool) -> Result<Self> {
        let dir = dir.to_path_buf();
        if create {
            std::fs::create_dir_all(&dir).map_err(|e| file_error(&dir, e.to_string()))?;
        }
        let manifest = dir.join("run.json");
        match std::fs::read(&manifest) {
            Ok(bytes) => {
                let found: RunInfo = open_sealed(&manifest, &bytes, MANIFEST)?;
                if let Some(diff) = info.difference(&found) {
                    return Err(file_error(
                        &manifest,
                        format!("the directory holds another run: its {diff}"),
                    ));
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && create => {
                write_sealed(&manifest, MANIFEST, &info, None)?;
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(file_error(
                    &manifest,
                    "missing: no shard of a run has written to this directory",
                ));
            }
            Err(e) => return Err(file_error(&manifest, e.to_string())),
        }
        Ok(Self {
            dir,
            info,
            every: 0,
            hook: None,
        })
    }

    /// Autosave a seed's state every `every` steps (0, the default: a
    /// thousandth of the steps, at least 100).
    #[must_use]
    pub fn checkpoint_every(mut self, every: usize) -> Self {
        self.every = every;
        self
    }

    /// Calls `hook` at every [`Event`].
    #[must_use]
    pub fn with_hook(mut self, hook: Hook) -> Self {
        self.hook = Some(hook);
        self
    }

    /// The run.
    pub fn info(&self) -> &RunInfo {
        &self.info
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn event(&self, e: Event<'_>) {
        if let Some(h) = &self.hook {
            h(&e);
        }
    }

    fn cell_dir(&self, cell: &str) -> Result<PathBuf> {
        let ok = !cell.is_empty()
            && cell
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '='))
            && !cell.starts_with('.');
        if !ok {
            return Err(Error::InvalidParameter {
                name: "cell",
                value: f64::NAN,
                expected: "a name of ASCII letters, digits and - _ . = (not starting with .)",
            });
        }
        Ok(self.dir.join(cell))
    }

    /// Where seed `seed`'s result of `cell` is kept.
    pub fn result_path(&self, cell: &str, seed: u64) -> Result<PathBuf> {
        Ok(self.cell_dir(cell)?.join(format!("seed-{seed}.json")))
    }

    fn state_path(&self, cell: &str, seed: u64) -> Result<PathBuf> {
        Ok(self.cell_dir(cell)?.join(format!("seed-{seed}.ckpt")))
    }

    /// The result of seed `seed` of `cell` if it is there and is this
    /// run's.
    ///
    /// # Errors
    /// [`Error::File`] naming the file if it is torn, damaged or another
    /// run's, cell's or seed's.
    pub fn read_result(&self, cell: &str, seed: u64) -> Result<Option<SeedResult>> {
        let path = self.result_path(cell, seed)?;
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(file_error(&path, e.to_string())),
        };
        let f: ResultFile = open_sealed(&path, &bytes, RESULT)?;
        self.belongs(&path, &f.run, &f.cell, f.seed, cell, seed)?;
        if f.result.seed != seed || f.result.steps() != self.info.steps {
            return Err(file_error(&path, "a result of another seed or length"));
        }
        f.result
            .check()
            .map_err(|e| file_error(&path, e.to_string()))?;
        Ok(Some(f.result))
    }

    /// Checks that a file's run, cell and seed are the expected ones.
    fn belongs(
        &self,
        path: &Path,
        run: &RunInfo,
        found_cell: &str,
        found_seed: u64,
        cell: &str,
        seed: u64,
    ) -> Result<()> {
        if let Some(diff) = self.info.difference(run) {
            return Err(file_error(
                path,
                format!("written by another run: its {diff}"),
            ));
        }
        if found_cell != cell || found_seed != seed {
            return Err(file_error(
                path,
                format!(
                    "holds cell {found_cell:?} seed {found_seed}, not cell {cell:?} seed {seed}"
                ),
            ));
        }
        Ok(())
    }

    /// Plays the seeds of `shard` of `runner`'s seeds in `cell` (a learner
    /// on an environment, as [`Runner::run_observed`] takes them), skipping
    /// those already finished and resuming those autosaved part way, and
    /// writes each seed's result as it finishes. Seeds run in parallel when
    /// the runner does ([`Runner::parallel`]).
    ///
    /// # Errors
    /// As [`Runner::run_observed`]; [`Error::File`] naming a file that
    /// cannot be written, or that is there but torn or another run's;
    /// [`Error::InvalidParameter`] if the runner's seeds and steps are not
    /// the run's.
    pub fn run_cell<F, E, L, ME, ML>(
        &self,
        runner: &Runner,
        shard: Shard,
        cell: &str,
        make_env: ME,
        make_learner: ML,
        observe: &Observe<'_, F, L, E>,
    ) -> Result<()>
    where
        F: Real + Serialize + DeserializeOwned,
        E: Environment<F> + Serialize + DeserializeOwned + Send,
        L: Learner<F> + Serialize + DeserializeOwned + Send,
        ME: Fn(&mut ChaCha8Rng) -> Result<E> + Sync,
        ML: Fn() -> Result<L> + Sync,
    {
        self.check_runner(runner)?;
        std::fs::create_dir_all(self.cell_dir(cell)?)
            .map_err(|e| file_error(&self.cell_dir(cell).unwrap_or_default(), e.to_string()))?;
        let seeds = &runner.seeds()[shard.range(runner.seeds().len())];
        let one = |&seed: &u64| -> Result<()> {
            self.run_seed(runner, cell, seed, &make_env, &make_learner, observe)
        };
        #[cfg(feature = "parallel")]
        let results: Vec<Result<()>> = if runner.is_parallel() {
            use rayon::prelude::*;
            seeds.par_iter().map(one).collect()
        } else {
            seeds.iter().map(one).collect()
        };
        #[cfg(not(feature = "parallel"))]
        let results: Vec<Result<()>> = seeds.iter().map(one).collect();
        results.into_iter().collect()
    }

    fn check_runner(&self, runner: &Runner) -> Result<()> {
        if runner.steps() != self.info.steps || runner.seeds().len() != self.info.seeds {
            return Err(Error::InvalidParameter {
                name: "runner",
                value: runner.seeds().len() as f64,
                expected: "the run's seeds and steps",
            });
        }
        Ok(())
    }

    /// One seed of a cell: skipped if finished, resumed if autosaved.
    fn run_seed<F, E, L, ME, ML>(
        &self,
        runner: &Runner,
        cell: &str,
        seed: u64,
        make_env: &ME,
        make_learner: &ML,
        observe: &Observe<'_, F, L, E>,
    ) -> Result<()>
    where
        F: Real + Serialize + DeserializeOwned,
        E: Environment<F> + Serialize + DeserializeOwned,
        L: Learner<F> + Serialize + DeserializeOwned,
        ME: Fn(&mut ChaCha8Rng) -> Result<E>,
        ML: Fn() -> Result<L>,
    {
        if self.read_result(cell, seed)?.is_some() {
            return Ok(());
        }
        let steps = runner.steps();
        let state_path = self.state_path(cell, seed)?;
        let (mut state, mut result) = match std::fs::read(&state_path) {
            Ok(bytes) => {
                let f: StateFile<SeedState<F, E, L>> = open_sealed(&state_path, &bytes, STATE)?;
                self.belongs(&state_path, &f.run, &f.cell, f.seed, cell, seed)?;
                f.state
                    .session
                    .validate()
                    .map_err(|e| file_error(&state_path, e.to_string()))?;
                if f.result.steps() != f.state.steps_done() || f.result.seed != seed {
                    return Err(file_error(&state_path, "a state and a result that differ"));
                }
                (f.state, f.result)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => (
                SeedState::new(seed, steps, make_env, make_learner, observe)?,
                SeedResult::with_capacity(seed, steps)?,
            ),
            Err(e) => return Err(file_error(&state_path, e.to_string())),
        };
        self.event(Event::SeedStarted {
            cell,
            seed,
            step: state.steps_done(),
        });
        let every = if self.every == 0 {
            (steps / 1000).max(100)
        } else {
            self.every
        };
        play_recorded(
            &mut state,
            &mut result,
            steps,
            observe,
            every,
            |state, result| {
                let file = StateFile {
                    run: self.info.clone(),
                    cell: cell.to_string(),
                    seed,
                    state,
                    result: result.clone(),
                };
                write_sealed(&state_path, STATE, &file, self.hook.as_ref())?;
                self.event(Event::Autosaved {
                    cell,
                    seed,
                    step: state.steps_done(),
                });
                Ok(())
            },
        )?;
        let file = ResultFile {
            run: self.info.clone(),
            cell: cell.to_string(),
            seed,
            result,
        };
        write_sealed(
            &self.result_path(cell, seed)?,
            RESULT,
            &file,
            self.hook.as_ref(),
        )?;
        // The result is durable: the autosave is no longer needed.
        let _ = std::fs::remove_file(&state_path);
        self.event(Event::SeedFinished { cell, seed });
        Ok(())
    }

    /// The result of a job of `cell` and `seed` (any serializable value: an
    /// example's own per-seed measurements), read from the sweep if it is
    /// there, else computed by `compute` and kept (atomically, in
    /// `<cell>/job-<seed>.json`).
    ///
    /// # Errors
    /// Errors of `compute`; [`Error::File`] naming a file that cannot be
    /// written, or that is there but torn or another run's.
    pub fn job<T, G>(&self, cell: &str, seed: u64, compute: G) -> Result<T>
    where
        T: Serialize + DeserializeOwned,
        G: FnOnce() -> Result<T>,
    {
        if let Some(v) = self.read_job(cell, seed)? {
            return Ok(v);
        }
        self.event(Event::SeedStarted {
            cell,
            seed,
            step: 0,
        });
        let value = compute()?;
        // What is written must read back (a float JSON cannot hold, say,
        // is an error now rather than at the merge).
        let path = self.job_path(cell, seed)?;
        let text = serde_json::to_string(&value).map_err(|e| file_error(&path, e.to_string()))?;
        if let Err(e) = serde_json::from_str::<T>(&text) {
            return Err(file_error(
                &path,
                format!(
                    "the value does not read back ({e}); mark non-finite floats with refit::sweep::float"
                ),
            ));
        }
        let dir = self.cell_dir(cell)?;
        std::fs::create_dir_all(&dir).map_err(|e| file_error(&dir, e.to_string()))?;
        let file = JobFile {
            run: self.info.clone(),
            cell: cell.to_string(),
            seed,
            value: &value,
        };
        write_sealed(&path, JOB, &file, self.hook.as_ref())?;
        self.event(Event::SeedFinished { cell, seed });
        Ok(value)
    }

    /// Where the job of `cell` and `seed` is kept.
    pub fn job_path(&self, cell: &str, seed: u64) -> Result<PathBuf> {
        Ok(self.cell_dir(cell)?.join(format!("job-{seed}.json")))
    }

    /// The result of the job of `cell` and `seed` if it is there and is
    /// this run's.
    ///
    /// # Errors
    /// [`Error::File`] naming the file if it is torn, damaged or another
    /// run's, cell's or seed's.
    pub fn read_job<T: DeserializeOwned>(&self, cell: &str, seed: u64) -> Result<Option<T>> {
        let path = self.job_path(cell, seed)?;
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(file_error(&path, e.to_string())),
        };
        let f: JobFile<T> = open_sealed(&path, &bytes, JOB)?;
        self.belongs(&path, &f.run, &f.cell, f.seed, cell, seed)?;
        Ok(Some(f.value))
    }

    /// The result of a finished job, for a merge: an error naming the file
    /// if it is not there.
    ///
    /// # Errors
    /// As [`Sweep::read_job`]; [`Error::File`] if the job has not finished.
    pub fn finished_job<T: DeserializeOwned>(&self, cell: &str, seed: u64) -> Result<T> {
        self.read_job(cell, seed)?.ok_or_else(|| {
            file_error(
                &self.job_path(cell, seed).unwrap_or_default(),
                "missing: the shard that plays this seed has not finished",
            )
        })
    }

    /// The seeds of `runner` whose result of `cell` is not there yet.
    ///
    /// # Errors
    /// As [`Sweep::read_result`].
    pub fn missing(&self, runner: &Runner, cell: &str) -> Result<Vec<u64>> {
        let mut out = Vec::new();
        for &seed in runner.seeds() {
            if self.read_result(cell, seed)?.is_none() {
                out.push(seed);
            }
        }
        Ok(out)
    }

    /// The summary of `cell` from the results of all of `runner`'s seeds
    /// ([`Runner::summarize`]: bit for bit the summary of one run).
    ///
    /// # Errors
    /// [`Error::File`] naming the first missing result (its shard has not
    /// finished), or a torn or foreign one; [`Error::InvalidParameter`] if
    /// the results do not fit the run.
    pub fn merge_cell(
        &self,
        runner: &Runner,
        cell: &str,
        shadow_at: Option<Vec<usize>>,
        has_finish: bool,
    ) -> Result<Summary> {
        self.check_runner(runner)?;
        let mut results = Vec::with_capacity(runner.seeds().len());
        for &seed in runner.seeds() {
            match self.read_result(cell, seed)? {
                Some(r) => results.push(r),
                None => {
                    return Err(file_error(
                        &self.result_path(cell, seed)?,
                        "missing: the shard that plays this seed has not finished",
                    ));
                }
            }
        }
        runner.summarize(&results, shadow_at, has_finish)
    }
}

/// Writes `value` sealed with `format` to `path`, atomically.
fn write_sealed<T: Serialize>(
    path: &Path,
    format: &str,
    value: &T,
    hook: Option<&Hook>,
) -> Result<()> {
    let payload = serde_json::to_string(value).map_err(|e| file_error(path, e.to_string()))?;
    let raw = serde_json::value::RawValue::from_string(payload)
        .map_err(|e| file_error(path, e.to_string()))?;
    let sealed = Sealed::<T> {
        format,
        version: VERSION,
        checksum: format!("{:016x}", crate::checkpoint::fnv1a(raw.get().as_bytes())),
        payload: &raw,
        _t: std::marker::PhantomData,
    };
    let bytes = serde_json::to_vec(&sealed).map_err(|e| file_error(path, e.to_string()))?;
    crate::files::write_atomic_with(path, &bytes, |p| {
        if let Some(h) = hook {
            h(&Event::Writing { path: p });
        }
    })
}

/// Reads a file sealed with `format`.
fn open_sealed<T: DeserializeOwned>(path: &Path, bytes: &[u8], format: &str) -> Result<T> {
    let torn = || file_error(path, "torn or damaged (it does not parse as a whole file)");
    let opened: Opened<'_> = serde_json::from_slice(bytes).map_err(|_| torn())?;
    if opened.format != format {
        return Err(file_error(
            path,
            format!("not a {format} file (it is {:?})", opened.format),
        ));
    }
    if opened.version != VERSION {
        return Err(file_error(
            path,
            format!(
                "format version {}, this crate reads {VERSION}",
                opened.version
            ),
        ));
    }
    let text = opened.payload.get();
    if format!("{:016x}", crate::checkpoint::fnv1a(text.as_bytes())) != opened.checksum {
        return Err(file_error(path, "damaged (checksum mismatch)"));
    }
    serde_json::from_str(text).map_err(|e| file_error(path, format!("damaged: {e}")))
}

pub use crate::files::write_atomic;

/// Serde helpers for `f64` fields that may be NaN or ±∞ (JSON has no such
/// numbers): finite values are written as numbers, the others as the
/// strings `"NaN"`, `"inf"`, `"-inf"`; use with
/// `#[serde(with = "refit::sweep::float")]`.
pub mod float {
    use serde::{Deserialize, Deserializer, Serializer};

    /// Writes `v`.
    ///
    /// # Errors
    /// The serializer's.
    pub fn serialize<S: Serializer>(v: &f64, s: S) -> Result<S::Ok, S::Error> {
        if v.is_finite() {
            s.serialize_f64(*v)
        } else if v.is_nan() {
            s.serialize_str("NaN")
        } else if *v > 0.0 {
            s.serialize_str("inf")
        } else {
            s.serialize_str("-inf")
        }
    }

    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Repr {
        Number(f64),
        Text(String),
    }

    /// Reads a value written by [`serialize`].
    ///
    /// # Errors
    /// The deserializer's, or a string other than the three.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
        match Repr::deserialize(d)? {
            Repr::Number(v) => Ok(v),
            Repr::Text(t) => match t.as_str() {
                "NaN" => Ok(f64::NAN),
                "inf" => Ok(f64::INFINITY),
                "-inf" => Ok(f64::NEG_INFINITY),
                _ => Err(serde::de::Error::custom(format!("not a float: {t:?}"))),
            },
        }
    }
}

/// [`float`] for `Option<f64>` fields:
/// `#[serde(with = "refit::sweep::float_option")]`.
pub mod float_option {
    use serde::{Deserialize, Deserializer, Serializer};

    #[derive(serde::Serialize, Deserialize)]
    struct Wrapped(#[serde(with = "super::float")] f64);

    /// Writes `v`.
    ///
    /// # Errors
    /// The serializer's.
    pub fn serialize<S: Serializer>(v: &Option<f64>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(x) => s.serialize_some(&Wrapped(*x)),
            None => s.serialize_none(),
        }
    }

    /// Reads a value written by [`serialize`].
    ///
    /// # Errors
    /// The deserializer's.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
        Ok(Option::<Wrapped>::deserialize(d)?.map(|w| w.0))
    }
}

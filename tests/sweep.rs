//! Sweeps that outlive a process: per-seed results merge into the summary
//! of one uninterrupted run bit for bit, whatever the split of the seeds
//! and the order; a seed stopped part way resumes from its autosave to the
//! same result; torn and foreign files are errors that name the file.
#![cfg(feature = "serde")]

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use ndarray::Array2;
use refit::env::LinearContextual;
use refit::learner::{Refit, RefitConfig};
use refit::objective::Weighting;
use refit::run::{Observe, Runner, SeedResult, Shadow};
use refit::sweep::{Event, RunInfo, Shard, Sweep};

fn env(rng: &mut rand_chacha::ChaCha8Rng) -> refit::Result<LinearContextual<f64>> {
    LinearContextual::random(4, 3, 0.5, rng)
}

fn config() -> RefitConfig<f64> {
    RefitConfig {
        lambda: 1.0,
        weighting: Weighting::Exp(1.0),
        ..RefitConfig::default()
    }
}

fn learner() -> refit::Result<Refit<f64>> {
    Refit::linear(4, 3, config())
}

fn shadow(steps: usize) -> Shadow<f64> {
    Shadow {
        at: Shadow::<f64>::log_spaced(steps, 5),
        probes: Array2::from_shape_fn((4, 3), |(i, j)| ((i * 3 + j) as f64).sin()),
        config: config(),
        tabular: false,
    }
}

/// A fresh directory under the target directory.
fn scratch(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("sweep-{name}"));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

fn finish(l: &mut Refit<f64>, _: &LinearContextual<f64>) -> refit::Result<f64> {
    Ok(l.refits() as f64)
}

#[test]
fn any_split_of_the_seeds_merges_to_the_uninterrupted_summary() {
    let (steps, seeds) = (60, 11);
    let runner = Runner::new(steps, seeds).expect("runner");
    let sh = shadow(steps);
    let observe = Observe {
        shadow: Some(&sh),
        finish: Some(&finish),
        progress: None,
    };
    let whole = runner.run_observed(env, learner, &observe).expect("runs");
    let results: Vec<SeedResult> = runner
        .seeds()
        .iter()
        .map(|&s| runner.run_seed(s, env, learner, &observe).expect("seed"))
        .collect();
    // In seed order, reversed, and interleaved: the same bits.
    let at = Some(sh.at.clone());
    for order in [
        results.clone(),
        results.iter().rev().cloned().collect::<Vec<_>>(),
        results
            .iter()
            .enumerate()
            .filter(|(i, _)| i % 2 == 1)
            .chain(results.iter().enumerate().filter(|(i, _)| i % 2 == 0))
            .map(|(_, r)| r.clone())
            .collect(),
    ] {
        let merged = runner.summarize(&order, at.clone(), true).expect("merges");
        assert_eq!(merged, whole);
    }
    // Through a sweep directory, played in 1, 3 and 5 shards.
    for count in [1, 3, 5] {
        let dir = scratch(&format!("split-{count}"));
        let info = RunInfo::new("test", vec!["split".into()], seeds, steps);
        let sweep = Sweep::open(&dir, info).expect("opens");
        for index in (0..count).rev() {
            let shard = Shard::new(index, count).expect("shard");
            sweep
                .run_cell(&runner, shard, "refit", env, learner, &observe)
                .expect("plays");
        }
        let merged = sweep
            .merge_cell(&runner, "refit", at.clone(), true)
            .expect("merges");
        assert_eq!(merged, whole, "{count} shards");
    }
    // Missing, duplicate and stray results are refused.
    assert!(runner.summarize(&results[1..], at.clone(), true).is_err());
    let mut twice = results.clone();
    twice.push(results[0].clone());
    assert!(runner.summarize(&twice, at.clone(), true).is_err());
    assert!(runner.summarize(&results, None, true).is_err());
}

#[test]
fn shards_partition_the_seeds() {
    for seeds in [1, 7, 32, 100] {
        for count in 1..=9 {
            let mut covered = Vec::new();
            for index in 0..count {
                covered.extend(Shard::new(index, count).expect("shard").range(seeds));
            }
            assert_eq!(covered, (0..seeds).collect::<Vec<_>>());
        }
    }
    assert_eq!(
        Shard::parse("2/4").expect("parses"),
        Shard::new(2, 4).expect("valid")
    );
    for bad in ["4/4", "x/2", "1", "1/0", "-1/3", ""] {
        assert!(Shard::parse(bad).is_err(), "{bad}");
    }
}

/// A process that stops part way through a seed (here: a panic from the
/// hook at the second autosave, the in-process stand-in for a kill) goes
/// on from the autosave when it is started again, and ends with the
/// results of an uninterrupted run.
#[test]
fn a_stopped_seed_resumes_from_its_autosave() {
    let (steps, seeds) = (90, 2);
    let runner = Runner::new(steps, seeds).expect("runner").parallel(false);
    let sh = shadow(steps);
    let observe = Observe {
        shadow: Some(&sh),
        finish: Some(&finish),
        progress: None,
    };
    let info = RunInfo::new("test", vec!["resume".into()], seeds, steps);
    let whole_dir = scratch("resume-whole");
    let whole = Sweep::open(&whole_dir, info.clone()).expect("opens");
    whole
        .run_cell(&runner, Shard::default(), "c", env, learner, &observe)
        .expect("plays");
    let dir = scratch("resume-cut");
    let autosaves = Arc::new(AtomicUsize::new(0));
    let resumed_at = Arc::new(AtomicUsize::new(usize::MAX));
    {
        let count = Arc::clone(&autosaves);
        let sweep = Sweep::open(&dir, info.clone())
            .expect("opens")
            .checkpoint_every(20)
            .with_hook(Arc::new(move |e: &Event<'_>| {
                if matches!(e, Event::Autosaved { .. }) && count.fetch_add(1, Ordering::SeqCst) == 1
                {
                    panic!("stopped at the second autosave");
                }
            }));
        let stopped = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            sweep.run_cell(&runner, Shard::default(), "c", env, learner, &observe)
        }));
        assert!(stopped.is_err());
    }
    let seen = Arc::clone(&resumed_at);
    let sweep = Sweep::open(&dir, info)
        .expect("opens")
        .checkpoint_every(20)
        .with_hook(Arc::new(move |e: &Event<'_>| {
            if let Event::SeedStarted { step, seed: 0, .. } = e {
                seen.fetch_min(*step, Ordering::SeqCst);
            }
        }));
    sweep
        .run_cell(&runner, Shard::default(), "c", env, learner, &observe)
        .expect("plays on");
    // Seed 0 stopped at its second autosave (step 40) and goes on from there.
    assert_eq!(resumed_at.load(Ordering::SeqCst), 40);
    for &seed in runner.seeds() {
        let a = whole.read_result("c", seed).expect("reads").expect("there");
        let b = sweep.read_result("c", seed).expect("reads").expect("there");
        assert_eq!(
            (a.reward, a.regret, a.optimal, a.shadow, a.finish),
            (b.reward, b.regret, b.optimal, b.shadow, b.finish)
        );
    }
    assert_eq!(
        whole
            .merge_cell(&runner, "c", Some(sh.at.clone()), true)
            .expect("merges"),
        sweep
            .merge_cell(&runner, "c", Some(sh.at.clone()), true)
            .expect("merges")
    );
}

/// A torn, damaged or foreign file, a missing seed and another run's
/// manifest are errors that name the file.
#[test]
fn torn_and_foreign_files_are_errors_naming_the_file() {
    let (steps, seeds) = (30, 3);
    let runner = Runner::new(steps, seeds).expect("runner");
    let observe = Observe::default();
    let info = RunInfo::new("test", vec!["a".into()], seeds, steps);
    let dir = scratch("torn");
    let sweep = Sweep::open(&dir, info.clone()).expect("opens");
    sweep
        .run_cell(&runner, Shard::default(), "c", env, learner, &observe)
        .expect("plays");
    let path = sweep.result_path("c", 1).expect("path");
    let good = std::fs::read(&path).expect("reads");
    let good0 = std::fs::read(sweep.result_path("c", 0).expect("path")).expect("reads");
    let named = |e: refit::Error| {
        let text = e.to_string();
        assert!(text.contains(&path.display().to_string()), "{text}");
        text
    };
    // Torn: cut in the middle.
    std::fs::write(&path, &good[..good.len() / 2]).expect("writes");
    let e = sweep
        .merge_cell(&runner, "c", None, false)
        .expect_err("torn");
    assert!(named(e).contains("torn"));
    // Damaged: a flipped digit (the checksum catches it).
    let mut bad = good.clone();
    let i = bad
        .iter()
        .rposition(|b| b.is_ascii_digit() && *b != b'0')
        .expect("a digit");
    bad[i] = if bad[i] == b'9' { b'8' } else { bad[i] + 1 };
    std::fs::write(&path, &bad).expect("writes");
    named(
        sweep
            .merge_cell(&runner, "c", None, false)
            .expect_err("damaged"),
    );
    // Another seed's file under this seed's name.
    let other = std::fs::read(sweep.result_path("c", 2).expect("path")).expect("reads");
    std::fs::write(&path, &other).expect("writes");
    let e = sweep
        .merge_cell(&runner, "c", None, false)
        .expect_err("foreign");
    assert!(named(e).contains("seed 2"));
    // Missing: the shard has not finished.
    std::fs::remove_file(&path).expect("removes");
    let e = sweep
        .merge_cell(&runner, "c", None, false)
        .expect_err("missing");
    assert!(named(e).contains("missing"));
    std::fs::write(&path, &good).expect("writes");
    assert!(sweep.merge_cell(&runner, "c", None, false).is_ok());
    // Another run (other arguments, or another version) in the directory.
    let other_run = RunInfo::new("test", vec!["b".into()], seeds, steps);
    let e = Sweep::open(&dir, other_run).expect_err("another run");
    assert!(
        e.to_string().contains("run.json") && e.to_string().contains("arguments"),
        "{e}"
    );
    // A merge only reads: a directory that is not there, or holds no run,
    // is an error, and nothing is created.
    let absent = scratch("absent").join("not-there");
    let e = Sweep::open_existing(&absent, info.clone()).expect_err("no directory");
    assert!(e.to_string().contains("not-there"), "{e}");
    assert!(!absent.exists());
    let empty = scratch("empty");
    std::fs::create_dir_all(&empty).expect("makes");
    let e = Sweep::open_existing(&empty, info.clone()).expect_err("no manifest");
    assert!(e.to_string().contains("run.json"), "{e}");
    assert!(!empty.join("run.json").exists());
    assert!(Sweep::open_existing(&dir, info.clone()).is_ok());
    let e = Sweep::open_existing(&dir, RunInfo::new("test", vec!["b".into()], seeds, steps))
        .expect_err("another run");
    assert!(e.to_string().contains("arguments"), "{e}");
    let mut newer = info.clone();
    newer.version = "9.9.9".into();
    let e = Sweep::open(&dir, newer.clone()).expect_err("another version");
    assert!(e.to_string().contains("crate version"), "{e}");
    // A result file copied in from another run's directory.
    let dir2 = scratch("torn-other");
    let mut info2 = info.clone();
    info2.args = vec!["other".into()];
    let sweep2 = Sweep::open(&dir2, info2).expect("opens");
    sweep2
        .run_cell(&runner, Shard::default(), "c", env, learner, &observe)
        .expect("plays");
    std::fs::copy(
        sweep2.result_path("c", 0).expect("path"),
        sweep.result_path("c", 0).expect("path"),
    )
    .expect("copies");
    let e = sweep
        .merge_cell(&runner, "c", None, false)
        .expect_err("foreign run");
    assert!(e.to_string().contains("another run"), "{e}");
    // A leftover temporary file from a stopped write is ignored.
    std::fs::write(sweep.result_path("c", 0).expect("path"), &good0).expect("writes");
    std::fs::write(dir.join("c").join(".seed-0.json.tmp-1"), &good[..10]).expect("writes");
    assert!(sweep.merge_cell(&runner, "c", None, false).is_ok());
}

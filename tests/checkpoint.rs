//! Checkpoints: a run stopped at step t and resumed from its checkpoint is
//! bit-identical to an uninterrupted run; bad checkpoints are typed errors.
#![cfg(feature = "serde")]

use proptest::prelude::*;
use refit::env::{Drifting, LinearContextual};
use refit::history::History;
use refit::learner::{Baseline, Incremental, Learner, Refit, RefitConfig, Schedule, StepSize};
use refit::objective::{Estimator, ExpectedReturn, Weighting};
use refit::policy::{LinearSoftmax, Tabular};
use refit::run::Step;
use refit::session::Session;
use refit::{CheckpointProblem, Error, checkpoint};

type CtxSession<L> = Session<f64, LinearContextual<f64>, L>;

fn incremental() -> refit::Result<Incremental<f64, LinearSoftmax<f64>>> {
    Incremental::linear(5, 4, StepSize::Constant(0.05), Baseline::Ema { rate: 0.1 })
}

fn refit_learner() -> refit::Result<Refit<f64>> {
    Refit::linear(
        5,
        4,
        RefitConfig {
            lambda: 0.5,
            weighting: Weighting::Exp(0.5),
            ..RefitConfig::default()
        },
    )
}

fn env(rng: &mut rand_chacha::ChaCha8Rng) -> refit::Result<LinearContextual<f64>> {
    LinearContextual::random(5, 4, 0.5, rng)
}

/// Plays `total` steps, or `cut` steps, a save/load round trip, and the rest.
fn traces<L>(make: fn() -> refit::Result<L>, cut: usize, total: usize) -> (Vec<Step>, Vec<Step>)
where
    L: Learner<f64> + serde::Serialize + serde::de::DeserializeOwned + Clone,
{
    let mut whole: CtxSession<L> = Session::new(11, env, make).expect("session");
    let a: Vec<Step> = (0..total).map(|_| whole.step().expect("step")).collect();
    let mut first: CtxSession<L> = Session::new(11, env, make).expect("session");
    let mut b: Vec<Step> = (0..cut).map(|_| first.step().expect("step")).collect();
    let bytes = checkpoint::save(&first).expect("save");
    drop(first);
    let mut resumed: CtxSession<L> = checkpoint::load(&bytes).expect("load");
    assert_eq!(resumed.steps_done(), cut);
    b.extend((cut..total).map(|_| resumed.step().expect("step")));
    (a, b)
}

#[test]
fn incremental_run_resumes_bit_identically() {
    let (a, b) = traces(incremental, 137, 400);
    assert_eq!(a, b);
}

#[test]
fn refit_run_resumes_bit_identically() {
    let (a, b) = traces(refit_learner, 61, 200);
    assert_eq!(a, b);
}

/// Every exploration baseline resumes bit for bit from a checkpoint taken
/// mid-run (LinTS and LinUCB rebuild their packed widths after loading).
#[test]
fn baselines_resume_bit_identically() {
    use refit::learner::{EpsilonGreedy, LinTs, LinUcb, SquareCb};
    let (a, b) = traces(|| EpsilonGreedy::new(5, 4, 1.0, 0.1), 77, 200);
    assert_eq!(a, b);
    let (a, b) = traces(|| LinUcb::new(5, 4, 1.0, 0.7), 77, 200);
    assert_eq!(a, b);
    let (a, b) = traces(|| SquareCb::new(5, 4, 1.0, 10.0, 0.5), 77, 200);
    assert_eq!(a, b);
    let (a, b) = traces(
        || LinTs::new(5, 4, 1.0, 0.5)?.with_propensity_draws(50, 3),
        77,
        200,
    );
    assert_eq!(a, b);
    // Bernoulli Thompson sampling on a context-free bandit.
    use refit::env::Bernoulli;
    use refit::learner::BetaThompson;
    let make = || BetaThompson::new(3, 1.0, 1.0);
    let bandit = |_: &mut rand_chacha::ChaCha8Rng| Bernoulli::new(vec![0.2f64, 0.5, 0.7]);
    let mut whole: Session<f64, Bernoulli<f64>, BetaThompson<f64>> =
        Session::new(4, bandit, make).expect("session");
    let a: Vec<Step> = (0..150).map(|_| whole.step().expect("step")).collect();
    let mut first: Session<f64, Bernoulli<f64>, BetaThompson<f64>> =
        Session::new(4, bandit, make).expect("session");
    let mut b: Vec<Step> = (0..60).map(|_| first.step().expect("step")).collect();
    let bytes = checkpoint::save(&first).expect("save");
    let mut resumed: Session<f64, Bernoulli<f64>, BetaThompson<f64>> =
        checkpoint::load(&bytes).expect("load");
    b.extend((60..150).map(|_| resumed.step().expect("step")));
    assert_eq!(a, b);
}

/// A refit learner with a cadence other than every action resumes bit for
/// bit, and a checkpoint that spells the cadence as the former
/// `refit_every: k` still loads as `Every(k)`.
#[test]
fn cadences_resume_and_old_files_load() {
    use refit::learner::Cadence;
    for cadence in [Cadence::Every(7), Cadence::Doubling, Cadence::WarmUp(30)] {
        let make = move || {
            Refit::linear(
                5,
                4,
                RefitConfig {
                    cadence,
                    lambda: 0.5,
                    weighting: Weighting::Exp(0.5),
                    ..RefitConfig::default()
                },
            )
        };
        let mut whole: CtxSession<Refit<f64>> = Session::new(11, env, make).expect("session");
        let a: Vec<Step> = (0..120).map(|_| whole.step().expect("step")).collect();
        let mut first: CtxSession<Refit<f64>> = Session::new(11, env, make).expect("session");
        let mut b: Vec<Step> = (0..45).map(|_| first.step().expect("step")).collect();
        let bytes = checkpoint::save(&first).expect("save");
        let mut resumed: CtxSession<Refit<f64>> = checkpoint::load(&bytes).expect("load");
        b.extend((45..120).map(|_| resumed.step().expect("step")));
        assert_eq!(a, b, "{cadence:?}");
    }
    let schedule: Schedule<f64> = serde_json::from_str(
        r#"{"options":{"tol":1e-9,"max_iter":100,"method":"Auto"},"refit_every":3,"strict":false}"#,
    )
    .expect("a schedule written before cadences loads");
    assert_eq!(schedule.cadence, Cadence::Every(3));
    let bad: Result<Schedule<f64>, _> = serde_json::from_str(
        r#"{"options":{"tol":1e-9,"max_iter":100,"method":"Auto"},"cadence":{"Every":0},"strict":false}"#,
    );
    assert!(bad.is_err());
}

type ErLearner = Refit<f64, LinearSoftmax<f64>, ExpectedReturn<f64, LinearSoftmax<f64>>>;

fn expected_return_learner() -> refit::Result<ErLearner> {
    let obj = ExpectedReturn::new(
        LinearSoftmax::new(5, 4)?,
        History::new(4),
        1.0,
        Estimator::SelfNormalized,
        Some(20.0),
    )?
    .summed();
    Refit::with_objective(obj, Schedule::default())
}

#[test]
fn expected_return_refit_run_resumes_bit_identically() {
    // The objective's cached pass state is not saved: it is rebuilt from
    // the logs, with the same bits.
    let (a, b) = traces(expected_return_learner, 23, 60);
    assert_eq!(a, b);
}

#[test]
fn drifting_tabular_refit_resumes_bit_identically() {
    type S = Session<f64, Drifting<f64>, Refit<f64, Tabular<f64>>>;
    let make_env = |_: &mut rand_chacha::ChaCha8Rng| Drifting::new(vec![0.0; 4], 1.0, 0.05);
    let make = || {
        Refit::tabular(
            4,
            RefitConfig {
                weighting: Weighting::Exp(1.0),
                ..RefitConfig::default()
            },
        )
    };
    let mut whole: S = Session::new(5, make_env, make).expect("session");
    let a: Vec<Step> = (0..150).map(|_| whole.step().expect("step")).collect();
    let mut first: S = Session::new(5, make_env, make).expect("session");
    let mut b: Vec<Step> = (0..70).map(|_| first.step().expect("step")).collect();
    let mut resumed: S = checkpoint::load(&checkpoint::save(&first).expect("save")).expect("load");
    b.extend((70..150).map(|_| resumed.step().expect("step")));
    assert_eq!(a, b);
    assert_eq!(whole.env().means(), resumed.env().means());
    assert_eq!(whole.learner().theta(), resumed.learner().theta());
}

fn saved() -> Vec<u8> {
    let mut s: CtxSession<Refit<f64>> = Session::new(2, env, refit_learner).expect("session");
    for _ in 0..20 {
        s.step().expect("step");
    }
    checkpoint::save(&s).expect("save")
}

fn load(bytes: &[u8]) -> refit::Result<CtxSession<Refit<f64>>> {
    checkpoint::load(bytes)
}

fn problem(r: refit::Result<CtxSession<Refit<f64>>>) -> CheckpointProblem {
    match r {
        Err(Error::Checkpoint { problem }) => problem,
        other => panic!(
            "expected a checkpoint error, got {:?}",
            other.map(|s| s.steps_done())
        ),
    }
}

#[test]
fn unknown_versions_truncation_and_corruption_are_typed_errors() {
    let good = saved();
    assert!(load(&good).is_ok());
    let text = String::from_utf8(good.clone()).expect("JSON is UTF-8");
    let v2 = text.replacen("\"version\":2", "\"version\":3", 1);
    assert_eq!(
        problem(load(v2.as_bytes())),
        CheckpointProblem::UnknownVersion {
            found: 3,
            supported: 2
        }
    );
    assert_eq!(
        problem(load(&good[..good.len() / 2])),
        CheckpointProblem::Truncated
    );
    assert_eq!(problem(load(b"")), CheckpointProblem::Truncated);
    // Cut anywhere (inside a number, a string, between fields): truncated.
    for cut in (1..good.len()).step_by(37) {
        assert_eq!(
            problem(load(&good[..cut])),
            CheckpointProblem::Truncated,
            "cut at byte {cut}: {:?}",
            String::from_utf8_lossy(&good[cut.saturating_sub(20)..cut])
        );
    }
    assert_eq!(problem(load(b"hello")), CheckpointProblem::NotACheckpoint);
    let other = text.replacen("refit-checkpoint", "other-format", 1);
    assert_eq!(
        problem(load(other.as_bytes())),
        CheckpointProblem::NotACheckpoint
    );
    // One digit of the payload changed: the checksum catches it.
    let at = text.find("\"steps_done\":20").expect("field") + "\"steps_done\":".len();
    let mut flipped = good.clone();
    flipped[at] = b'3';
    assert!(matches!(
        problem(load(&flipped)),
        CheckpointProblem::Corrupted { .. }
    ));
}

/// 64-bit FNV-1a, as the format documents.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// Re-seals a payload with a correct checksum.
fn seal(payload: &serde_json::Value) -> Vec<u8> {
    let text = serde_json::to_string(payload).expect("JSON");
    format!(
        "{{\"format\":\"refit-checkpoint\",\"version\":2,\"checksum\":\"{:016x}\",\"payload\":{text}}}",
        fnv1a(text.as_bytes())
    )
    .into_bytes()
}

#[test]
fn a_well_sealed_but_inconsistent_checkpoint_is_refused() {
    let good = saved();
    let v: serde_json::Value = serde_json::from_slice(&good).expect("JSON");
    let payload = v["payload"].clone();
    assert!(
        load(&seal(&payload)).is_ok(),
        "re-sealing an intact payload works"
    );
    let mut short = payload.clone();
    short["learner"]["probs"]
        .as_array_mut()
        .expect("array")
        .pop();
    assert!(matches!(
        problem(load(&seal(&short))),
        CheckpointProblem::Inconsistent { .. }
    ));
    let mut wrong_k = payload.clone();
    wrong_k["learner"]["policy"]["k"] = serde_json::json!(7);
    assert!(matches!(
        problem(load(&seal(&wrong_k))),
        CheckpointProblem::Inconsistent { .. }
    ));
    let mut negative = payload;
    negative["env"]["noise_sd"] = serde_json::json!(-1.0);
    assert!(matches!(
        problem(load(&seal(&negative))),
        CheckpointProblem::Inconsistent { .. }
    ));
}

#[test]
fn tabular_incremental_sessions_round_trip() {
    type S = Session<f64, refit::env::Bernoulli<f64>, Incremental<f64, Tabular<f64>>>;
    let mut s: S = Session::new(
        1,
        |_| refit::env::Bernoulli::new(vec![0.1, 0.9]),
        || {
            Incremental::tabular(
                2,
                StepSize::Decaying {
                    alpha0: 0.5,
                    kappa: 0.5,
                },
                Baseline::RunningMean,
            )
        },
    )
    .expect("session");
    for _ in 0..30 {
        s.step().expect("step");
    }
    let mut r: S = checkpoint::load(&checkpoint::save(&s).expect("save")).expect("load");
    for _ in 0..30 {
        assert_eq!(s.step().expect("step"), r.step().expect("step"));
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    #[test]
    fn random_damage_never_panics(cuts in prop::collection::vec((0usize..100_000, any::<u8>()), 1..4)) {
        let mut bytes = saved();
        for (at, b) in cuts {
            let i = at % bytes.len();
            bytes[i] = b;
        }
        // Either a typed error, or (if the damage hit nothing that matters) a valid session.
        if let Ok(s) = load(&bytes) {
            prop_assert!(s.validate().is_ok());
        }
    }
}

#[test]
fn crafted_sizes_in_a_well_sealed_checkpoint_are_refused_before_allocation() {
    let good = saved();
    let v: serde_json::Value = serde_json::from_slice(&good).expect("JSON");
    let payload = v["payload"].clone();
    // K = 2⁶⁴ − 1 in the learner's policy, in its objective's model and in
    // its dataset: used to panic inside validate (the padded size wrapped).
    for path in [
        &["learner", "policy", "k"][..],
        &["learner", "obj", "model", "k"][..],
        &["learner", "obj", "data", "k"][..],
        &["learner", "obj", "data", "kp"][..],
        &["learner", "obj", "data", "d"][..],
        &["learner", "history", "d"][..],
    ] {
        let mut crafted = payload.clone();
        let mut at = &mut crafted;
        for key in path {
            at = &mut at[*key];
        }
        assert!(!at.is_null(), "{path:?} is a field of the payload");
        *at = serde_json::json!(u64::MAX);
        assert!(
            matches!(load(&seal(&crafted)), Err(Error::Checkpoint { .. })),
            "{path:?} = 2^64 - 1 was not refused"
        );
    }
    // A policy that asks for 2⁴⁰ actions (an 8 TiB padding buffer before):
    // its θ has 20 entries, so the shape does not match and nothing is built.
    let mut crafted = payload.clone();
    crafted["learner"]["policy"]["k"] = serde_json::json!(1u64 << 40);
    let err = load(&seal(&crafted)).map(|s| s.steps_done()).unwrap_err();
    assert!(
        matches!(err, Error::Checkpoint { .. }) && err.to_string().contains("policy shape"),
        "{err}"
    );
    // The policy is saved as its plain data: K, d and θ.
    let policy = payload["learner"]["policy"].as_object().expect("object");
    let mut keys: Vec<&str> = policy.keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(keys, ["d", "k", "theta"]);
}

#[test]
fn save_writes_only_what_loads_and_the_path_helpers_are_atomic() {
    let mut s: CtxSession<Refit<f64>> = Session::new(4, env, refit_learner).expect("session");
    for _ in 0..15 {
        s.step().expect("step");
    }
    let dir = std::env::temp_dir().join(format!("refit-ckpt-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let path = dir.join("session.ckpt");
    checkpoint::save_to_path(&s, &path).expect("save");
    // Only the file itself is left: the temporary file was renamed over it.
    let names: Vec<_> = std::fs::read_dir(&dir)
        .expect("dir")
        .map(|e| e.expect("entry").file_name())
        .collect();
    assert_eq!(names, [std::ffi::OsString::from("session.ckpt")]);
    let mut r: CtxSession<Refit<f64>> = checkpoint::load_from_path(&path).expect("load");
    assert_eq!(
        std::fs::read(&path).expect("read"),
        checkpoint::save(&s).expect("save")
    );
    for _ in 0..5 {
        assert_eq!(s.step().expect("step"), r.step().expect("step"));
    }
    // A missing file and an unwritable path name the path.
    let missing = dir.join("nothing-here.ckpt");
    match checkpoint::load_from_path::<f64, LinearContextual<f64>, Refit<f64>>(&missing) {
        Err(Error::File { path, .. }) => assert!(path.contains("nothing-here.ckpt")),
        other => panic!("{:?}", other.map(|s| s.steps_done())),
    }
    let bad = dir.join("no-such-dir").join("x.ckpt");
    match checkpoint::save_to_path(&s, &bad) {
        Err(Error::File { path, .. }) => assert!(path.contains("no-such-dir")),
        other => panic!("{other:?}"),
    }
    std::fs::remove_dir_all(&dir).expect("clean up");
}

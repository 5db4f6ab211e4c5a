//! What a new user tripped on: the messages name the argument and the value,
//! the runner reports progress without printing, the closed form becomes a
//! policy, and the re-exported crates are the ones the traits use.

use std::sync::atomic::{AtomicUsize, Ordering};

use refit::prelude::*;

#[test]
fn lambda_zero_with_contexts_names_lambda_and_the_value() {
    let err = Refit::<f64>::linear(
        2,
        3,
        RefitConfig {
            lambda: 0.0,
            ..RefitConfig::default()
        },
    )
    .expect_err("no closed form with contexts");
    let msg = err.to_string();
    assert!(
        msg.contains("lambda = 0") && msg.contains("lambda > 0"),
        "{msg}"
    );
    assert!(!msg.contains("must be finite and >= 0"), "{msg}");
}

#[test]
fn a_negative_sample_weight_is_called_a_weight() {
    let x = refit::ndarray::array![[1.0, 0.0], [1.0, 1.0]];
    let err = Dataset::from_points(x.view(), &[0, 1], &[1.0, -2.5], 2, true).expect_err("negative");
    let msg = err.to_string();
    assert!(msg.contains("sample weight -2.5 at index 1"), "{msg}");
    assert!(
        !msg.contains("reward") && !msg.contains("exponential weighting"),
        "{msg}"
    );
    assert!(matches!(err, Error::NegativeSampleWeight { index: 1, .. }));
}

#[test]
fn a_shape_mismatch_names_both_sides() {
    let runner = Runner::new(5, 1).expect("valid");
    let err = runner
        .run(
            |rng: &mut ChaCha8Rng| LinearContextual::random(2, 4, 0.1, rng),
            || Incremental::linear(2, 3, StepSize::Constant(0.1), Baseline::None),
        )
        .expect_err("d = 3 against d = 4");
    let msg = err.to_string();
    assert!(
        msg.contains("the learner's context length d is 3 but the environment's is 4"),
        "{msg}"
    );
    let err = runner
        .run(
            |_: &mut ChaCha8Rng| Bernoulli::new(vec![0.5f64; 3]),
            || Incremental::tabular(2, StepSize::Constant(0.1), Baseline::None),
        )
        .expect_err("K = 2 against K = 3");
    assert!(
        err.to_string()
            .contains("number of actions K is 2 but the environment's is 3"),
        "{err}"
    );
}

#[test]
fn the_runner_reports_progress_to_an_observer() {
    for parallel in [false, true] {
        let done = AtomicUsize::new(0);
        let calls = AtomicUsize::new(0);
        let tick = |n: usize| {
            done.fetch_add(n, Ordering::Relaxed);
            calls.fetch_add(1, Ordering::Relaxed);
        };
        let (seeds, steps) = (5, 150);
        let runner = Runner::new(steps, seeds).expect("valid").parallel(parallel);
        let observed = runner
            .run_observed(
                |_: &mut ChaCha8Rng| Bernoulli::new(vec![0.2f64, 0.8]),
                || Incremental::tabular(2, StepSize::Constant(0.1), Baseline::RunningMean),
                &Observe {
                    progress: Some(&tick),
                    ..Observe::default()
                },
            )
            .expect("runs");
        assert_eq!(done.load(Ordering::Relaxed), seeds * steps);
        // Every 64 steps and at the end of each seed: 150 = 64 + 64 + 22.
        assert_eq!(calls.load(Ordering::Relaxed), 3 * seeds);
        // Watching changes nothing.
        let plain = runner
            .run(
                |_: &mut ChaCha8Rng| Bernoulli::new(vec![0.2f64, 0.8]),
                || Incremental::tabular(2, StepSize::Constant(0.1), Baseline::RunningMean),
            )
            .expect("runs");
        assert_eq!(observed, plain);
    }
}

#[test]
fn a_closed_form_fit_becomes_a_policy_and_is_evaluated() {
    // λ = 0 on a tabular dataset: π* = R / Σ R, zero for the arm never paid.
    let x = refit::ndarray::Array2::from_elem((4, 1), 1.0);
    let data = Dataset::from_points(x.view(), &[0, 0, 1, 2], &[1.0, 2.0, 1.0, 0.0], 3, true)
        .expect("valid");
    let f = fit(
        &Tabular::<f64>::new(3).expect("valid"),
        &data,
        0.0,
        &Options::default(),
    )
    .expect("closed form");
    let probs = f.probabilities.clone().expect("closed form");
    assert_eq!(probs, vec![0.75, 0.25, 0.0]);
    assert_eq!(f.theta[2], f64::NEG_INFINITY);
    let pi = Fixed::new(probs, 1).expect("a distribution");
    // Logged uniformly: arm 0 paid 1, arm 1 paid 0, arm 2 paid 1.
    let mut logs = History::new(1);
    for (a, r) in [(0, 1.0), (1, 0.0), (2, 1.0), (0, 1.0), (1, 0.0), (2, 1.0)] {
        logs.push(&[1.0], a, r, 1.0 / 3.0).expect("valid");
    }
    let e = evaluate(
        &pi,
        &logs,
        &OpeOptions {
            bootstrap: 0,
            ..OpeOptions::default()
        },
    )
    .expect("evaluates");
    // IPS = mean(w r), w = 3 π(a): (3·0.75 + 0 + 0)·2 / 6 = 0.75.
    assert!((e.ips.value - 0.75).abs() < 1e-12, "{e:?}");
    // A fit with λ > 0 has no closed form.
    let g = fit(
        &Tabular::<f64>::new(3).expect("valid"),
        &data,
        1.0,
        &Options::default(),
    )
    .expect("solves");
    assert!(g.probabilities.is_none());
    // Bad distributions are refused.
    assert!(Fixed::new(vec![0.5, 0.6], 1).is_err());
    assert!(Fixed::new(vec![1.5, -0.5], 1).is_err());
    assert!(Fixed::<f64>::new(vec![], 1).is_err());
}

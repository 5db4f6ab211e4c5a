//! Each bad input of the table in docs/ARCHITECTURE.md ("Errors") gets its error variant, and the failed call
//! leaves the learner exactly as it was.

use refit::Error;
use refit::env::{Bernoulli, Environment, Gaussian, LinearContextual};
use refit::learner::{Baseline, Incremental, Learner, StepSize};
use refit::policy::{LinearSoftmax, Policy, Tabular};

fn learner() -> Incremental<f64, LinearSoftmax<f64>> {
    let mut l =
        Incremental::linear(3, 2, StepSize::Constant(0.1), Baseline::RunningMean).expect("valid");
    // Some history, so that "unchanged" is not trivially "zero".
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
    for t in 0..20 {
        let x = [1.0, t as f64 * 0.1];
        let d = l.act(&x, &mut rng).expect("valid");
        l.learn(&x, d.action, (t % 3) as f64, d.propensity)
            .expect("valid");
    }
    l
}

use rand::SeedableRng;

/// Everything a user can observe of a learner.
fn snapshot(l: &Incremental<f64, LinearSoftmax<f64>>) -> String {
    format!(
        "{:?} {} {:?} {:?}",
        l.policy().params().as_slice(),
        l.steps(),
        l.baseline_value(),
        l.probabilities()
    )
}

#[test]
fn bad_interactions_are_refused_and_change_nothing() {
    const NAN: f64 = f64::NAN;
    const INF: f64 = f64::INFINITY;
    let (nan, inf) = (NAN, INF);
    // (context, action, reward, propensity, expected error)
    let table: Vec<(&[f64], usize, f64, f64, Error)> = vec![
        (
            &[1.0],
            0,
            1.0,
            0.5,
            Error::ContextLength {
                expected: 2,
                got: 1,
            },
        ),
        (
            &[1.0, 2.0, 3.0],
            0,
            1.0,
            0.5,
            Error::ContextLength {
                expected: 2,
                got: 3,
            },
        ),
        (
            &[1.0, NAN],
            0,
            1.0,
            0.5,
            Error::NonFiniteContext {
                index: 1,
                value: nan,
            },
        ),
        (
            &[INF, 0.0],
            0,
            1.0,
            0.5,
            Error::NonFiniteContext {
                index: 0,
                value: inf,
            },
        ),
        (
            &[1.0, 0.0],
            3,
            1.0,
            0.5,
            Error::ActionOutOfRange {
                action: 3,
                num_actions: 3,
            },
        ),
        (
            &[1.0, 0.0],
            0,
            nan,
            0.5,
            Error::NonFiniteReward { value: nan },
        ),
        (
            &[1.0, 0.0],
            0,
            -inf,
            0.5,
            Error::NonFiniteReward { value: -inf },
        ),
        (
            &[1.0, 0.0],
            0,
            1.0,
            0.0,
            Error::InvalidPropensity { value: 0.0 },
        ),
        (
            &[1.0, 0.0],
            0,
            1.0,
            1.5,
            Error::InvalidPropensity { value: 1.5 },
        ),
        (
            &[1.0, 0.0],
            0,
            1.0,
            nan,
            Error::InvalidPropensity { value: nan },
        ),
    ];
    for (x, a, r, p, want) in table {
        let mut l = learner();
        let before = snapshot(&l);
        let got = l.learn(x, a, r, p).expect_err("bad input must fail");
        // NaN != NaN: compare the variants' Debug text.
        assert_eq!(
            format!("{got:?}"),
            format!("{want:?}"),
            "learn({x:?}, {a}, {r}, {p})"
        );
        assert_eq!(snapshot(&l), before, "state changed by a failed learn");
    }
}

#[test]
fn bad_contexts_in_act_are_refused_and_change_nothing() {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(2);
    for x in [vec![1.0], vec![f64::NAN, 0.0], vec![0.0, f64::NEG_INFINITY]] {
        let mut l = learner();
        let before = snapshot(&l);
        assert!(l.act(&x, &mut rng).is_err());
        assert_eq!(snapshot(&l), before);
    }
    // Logits that overflow: θ_a·x = 2e308 for every action.
    let theta = ndarray::Array2::from_elem((3, 2), 1.0);
    let pi = LinearSoftmax::from_params(theta.view()).expect("finite");
    let mut l = Incremental::new(pi, StepSize::Constant(0.1), Baseline::None).expect("valid");
    let before = snapshot(&l);
    let got = l.act(&[1e308, 1e308], &mut rng).expect_err("overflow");
    assert_eq!(got, Error::NonFiniteLogits);
    assert_eq!(snapshot(&l), before);
}

#[test]
fn an_update_that_would_overflow_is_refused() {
    let mut l =
        Incremental::linear(2, 1, StepSize::Constant(1e300), Baseline::None).expect("valid");
    l.learn(&[1e10], 0, 1.0, 0.5)
        .expect_err("1e300 · 1 · 1e10 overflows");
    assert_eq!(l.steps(), 0);
    assert!(l.policy().params().iter().all(|v| *v == 0.0));
}

#[test]
fn bad_construction_is_refused() {
    assert_eq!(
        LinearSoftmax::<f64>::new(0, 3).expect_err("K = 0"),
        Error::ZeroActions
    );
    assert_eq!(
        LinearSoftmax::<f64>::new(3, 0).expect_err("d = 0"),
        Error::ZeroContextDim
    );
    assert_eq!(
        Tabular::<f32>::new(0).expect_err("K = 0"),
        Error::ZeroActions
    );
    for alpha in [0.0, -0.1, f64::NAN, f64::INFINITY] {
        let e = Incremental::tabular(2, StepSize::Constant(alpha), Baseline::None)
            .expect_err("bad step size");
        assert!(matches!(e, Error::InvalidStepSize { .. }), "{alpha}: {e:?}");
    }
    let e = Incremental::tabular(
        2,
        StepSize::Decaying {
            alpha0: 0.1,
            kappa: -1.0,
        },
        Baseline::None,
    )
    .expect_err("kappa < 0");
    assert!(matches!(e, Error::InvalidParameter { name: "kappa", .. }));
    let e = Incremental::tabular(2, StepSize::Constant(0.1), Baseline::Ema { rate: 1.5 })
        .expect_err("rate > 1");
    assert!(matches!(e, Error::InvalidParameter { name: "rate", .. }));
    assert_eq!(
        Bernoulli::<f64>::new(vec![]).expect_err("no arms"),
        Error::ZeroActions
    );
    assert!(Bernoulli::new(vec![0.5, 1.5]).is_err());
    assert!(Gaussian::new(vec![0.0, f64::NAN], 1.0).is_err());
    assert!(Gaussian::new(vec![0.0], -1.0).is_err());
}

#[test]
fn bad_policy_and_environment_calls_are_refused() {
    let mut pi = LinearSoftmax::<f64>::new(3, 2).expect("valid");
    let wrong = [0.0; 5];
    assert!(matches!(pi.set_params(&wrong), Err(Error::Length { .. })));
    let nan = [0.0, 0.0, f64::NAN, 0.0, 0.0, 0.0];
    assert!(matches!(
        pi.set_params(&nan),
        Err(Error::NonFiniteParameter { index: 2, .. })
    ));
    let mut out = [0.0; 2];
    assert!(matches!(
        pi.probabilities_into(&[0.0, 0.0], &mut out),
        Err(Error::Length { .. })
    ));
    assert!(matches!(
        pi.log_prob(&[0.0, 0.0], 3),
        Err(Error::ActionOutOfRange { .. })
    ));
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
    let mut env = LinearContextual::<f64>::random(3, 2, 0.1, &mut rng).expect("valid");
    let mut x = [0.0; 3];
    assert!(matches!(
        env.next_context(&mut rng, &mut x),
        Err(Error::ContextLength { .. })
    ));
    assert!(matches!(
        env.reward(3, &mut rng),
        Err(Error::ActionOutOfRange { .. })
    ));
}

/// A checked context skips the second check, but not the length: one
/// checked for another d is refused by every policy, which stays unchanged.
#[test]
fn checked_contexts_of_the_wrong_length_are_refused() {
    use refit::policy::Checked;
    assert!(matches!(
        Checked::new(&[0.0, f64::INFINITY], 2),
        Err(Error::NonFiniteContext { index: 1, .. })
    ));
    assert!(matches!(
        Checked::new(&[0.0; 3], 2),
        Err(Error::ContextLength { .. })
    ));
    let three = [0.5, -1.0, 2.0];
    let x3 = Checked::new(&three, 3).expect("finite");
    assert_eq!(x3.max_abs(), 2.0);
    let mut pi = LinearSoftmax::<f64>::new(3, 2).expect("valid");
    pi.set_params(&[0.1, 0.2, 0.3, 0.4, 0.5, 0.6])
        .expect("finite");
    let before = pi.clone();
    let mut p = vec![0.0; pi.probs_len()];
    assert!(matches!(
        pi.probabilities_checked(x3, &mut p),
        Err(Error::Length { .. })
    ));
    assert!(pi.add_scaled_score_checked(x3, 0, &p, 1.0).is_err());
    assert_eq!(pi, before);
    let mut tab = Tabular::<f64>::new(3).expect("valid");
    let tab_before = tab.clone();
    assert!(tab.add_scaled_score_checked(x3, 0, &[0.3; 3], 1.0).is_err());
    assert_eq!(tab.params(), tab_before.params());
    // The checked and unchecked calls give the same bits.
    let two = [0.5, -1.0];
    let x2 = Checked::new(&two, 2).expect("finite");
    let (mut a, mut b) = (pi.clone(), pi.clone());
    let (mut pa, mut pb) = (vec![0.0; 4], vec![0.0; 4]);
    a.probabilities_checked(x2, &mut pa).expect("ok");
    b.probabilities_into(&two, &mut pb).expect("ok");
    assert_eq!(pa, pb);
    a.add_scaled_score_checked(x2, 2, &pa, 0.7).expect("ok");
    b.add_scaled_score(&two, 2, &pb, 0.7).expect("ok");
    assert_eq!(a.params(), b.params());
}

/// The bad-input table of docs/ARCHITECTURE.md, one row per bad input: the call, and the error it gets.
#[test]
fn design_section_9_table() {
    use refit::learner::{Refit, RefitConfig};
    type Case = (
        &'static str,
        Box<dyn Fn() -> refit::Result<()>>,
        fn(&Error) -> bool,
    );
    let table: Vec<Case> = vec![
        (
            "NaN reward",
            Box::new(|| learner().learn(&[1.0, 0.0], 0, f64::NAN, 0.5)),
            |e| matches!(e, Error::NonFiniteReward { .. }),
        ),
        (
            "infinite context",
            Box::new(|| learner().learn(&[f64::INFINITY, 0.0], 0, 1.0, 0.5)),
            |e| matches!(e, Error::NonFiniteContext { index: 0, .. }),
        ),
        (
            "action out of range",
            Box::new(|| learner().learn(&[1.0, 0.0], 3, 1.0, 0.5)),
            |e| {
                matches!(
                    e,
                    Error::ActionOutOfRange {
                        action: 3,
                        num_actions: 3
                    }
                )
            },
        ),
        (
            "context of the wrong length",
            Box::new(|| learner().learn(&[1.0], 0, 1.0, 0.5)),
            |e| {
                matches!(
                    e,
                    Error::ContextLength {
                        expected: 2,
                        got: 1
                    }
                )
            },
        ),
        (
            "K = 0",
            Box::new(|| {
                Incremental::<f64, _>::tabular(0, StepSize::Constant(0.1), Baseline::None)
                    .map(|_| ())
            }),
            |e| matches!(e, Error::ZeroActions),
        ),
        (
            "non-positive step size",
            Box::new(|| {
                Incremental::<f64, _>::tabular(2, StepSize::Constant(-0.1), Baseline::None)
                    .map(|_| ())
            }),
            |e| matches!(e, Error::InvalidStepSize { .. }),
        ),
        (
            "non-finite step size",
            Box::new(|| {
                Incremental::<f64, _>::tabular(2, StepSize::Constant(f64::INFINITY), Baseline::None)
                    .map(|_| ())
            }),
            |e| matches!(e, Error::InvalidStepSize { .. }),
        ),
        (
            "λ < 0",
            Box::new(|| {
                Refit::<f64>::linear(
                    2,
                    2,
                    RefitConfig {
                        lambda: -1.0,
                        ..RefitConfig::default()
                    },
                )
                .map(|_| ())
            }),
            |e| matches!(e, Error::InvalidLambda { .. }),
        ),
        (
            "λ = 0 outside the tabular closed form",
            Box::new(|| {
                Refit::<f64>::linear(
                    2,
                    2,
                    RefitConfig {
                        lambda: 0.0,
                        ..RefitConfig::default()
                    },
                )
                .map(|_| ())
            }),
            |e| {
                matches!(e, Error::ZeroLambda)
                    && e.to_string().contains("lambda = 0")
                    && e.to_string().contains("tabular")
            },
        ),
        (
            "negative weight under Identity",
            Box::new(|| {
                Refit::<f64>::linear(2, 2, RefitConfig::default())?.learn(&[1.0, 0.0], 0, -1.0, 0.5)
            }),
            |e| matches!(e, Error::NegativeWeight { index: 0, .. }),
        ),
        (
            "propensity outside (0, 1]",
            Box::new(|| learner().learn(&[1.0, 0.0], 0, 1.0, 0.0)),
            |e| matches!(e, Error::InvalidPropensity { .. }),
        ),
    ];
    for (what, call, expected) in table {
        let err = call().expect_err(what);
        assert!(expected(&err), "{what}: got {err:?}");
    }
}

#[test]
fn bad_logs_objectives_and_solver_settings_are_refused() {
    use refit::history::History;
    use refit::objective::{Estimator, ExpectedReturn, HistoryObjective};
    use refit::ope::{OpeOptions, evaluate};
    use refit::solve::{MultiStartOptions, Options, multi_start, trust_region};
    let x = ndarray::array![[1.0, 0.5], [1.0, -0.5], [1.0, 0.0]];
    // Arrays: the first bad value is named by row and column.
    let cases: Vec<(usize, f64, f64, &str)> = vec![
        (2, 1.0, 0.5, "row 1, column `a`: 2"),
        (0, f64::NAN, 0.5, "row 1, column `r`: NaN"),
        (0, 1.0, 0.0, "row 1, column `p`: 0"),
        (0, 1.0, 1.5, "row 1, column `p`: 1.5"),
    ];
    for (a, r, p, want) in cases {
        let err = History::from_arrays(x.view(), &[0, a, 1], &[1.0, r, 0.0], &[0.5, p, 0.5], 2)
            .expect_err(want);
        assert!(
            matches!(err, Error::BadLog { .. }) && err.to_string().contains(want),
            "{err}"
        );
    }
    let mut xs = x.clone();
    xs[[2, 1]] = f64::INFINITY;
    let err =
        History::from_arrays(xs.view(), &[0, 1, 1], &[1.0; 3], &[0.5; 3], 2).expect_err("inf");
    assert!(err.to_string().contains("row 2, column `x1`: inf"), "{err}");
    assert!(matches!(
        History::from_arrays(x.view(), &[0, 1], &[1.0; 3], &[0.5; 3], 2),
        Err(Error::Length { .. })
    ));
    let logs =
        History::from_arrays(x.view(), &[0, 1, 1], &[1.0, 0.0, 0.5], &[0.5; 3], 2).expect("valid");
    let policy = || LinearSoftmax::<f64>::new(2, 2).expect("valid");
    // The expected return: settings, and a failed push changes nothing.
    for (lambda, est, clip) in [
        (0.0, Estimator::Ips, None),
        (f64::NAN, Estimator::Ips, None),
        (1.0, Estimator::Ips, Some(f64::INFINITY)),
        (1.0, Estimator::VariancePenalty(-1.0), None),
    ] {
        assert!(ExpectedReturn::new(policy(), logs.clone(), lambda, est, clip).is_err());
    }
    let mut obj =
        ExpectedReturn::new(policy(), logs.clone(), 1.0, Estimator::Ips, None).expect("valid");
    let at = policy();
    for (x, a, r, p) in [
        (&[1.0][..], 0, 1.0, 0.5),
        (&[1.0, 0.0][..], 2, 1.0, 0.5),
        (&[1.0, 0.0][..], 0, 1.0, 2.0),
    ] {
        assert!(obj.push(&at, x, a, r, p, Default::default()).is_err());
    }
    assert_eq!(obj.points(), 3);
    // Off-policy evaluation and the solvers.
    assert!(
        evaluate(
            &policy(),
            &logs,
            &OpeOptions {
                ridge_lambda: f64::NAN,
                ..OpeOptions::default()
            }
        )
        .is_err()
    );
    assert!(matches!(
        evaluate(
            &LinearSoftmax::<f64>::new(2, 3).expect("valid"),
            &logs,
            &OpeOptions::default()
        ),
        Err(Error::ContextLength { .. })
    ));
    let mut theta = vec![0.0; 3];
    assert!(matches!(
        trust_region(&mut obj, &mut theta, &Options::default()),
        Err(Error::Length { .. })
    ));
    let mut theta = vec![0.0; 4];
    assert!(
        trust_region(
            &mut obj,
            &mut theta,
            &Options {
                tol: 0.0,
                ..Options::default()
            }
        )
        .is_err()
    );
    for ms in [
        MultiStartOptions {
            starts: 0,
            ..MultiStartOptions::default()
        },
        MultiStartOptions {
            spread: f64::NAN,
            ..MultiStartOptions::default()
        },
        MultiStartOptions {
            distinct: -1.0,
            ..MultiStartOptions::default()
        },
    ] {
        assert!(multi_start(&mut obj, &[0.0; 4], &ms, &Options::default()).is_err());
    }
    assert!(matches!(
        multi_start(
            &mut obj,
            &[f64::NAN, 0.0, 0.0, 0.0],
            &MultiStartOptions::default(),
            &Options::default()
        ),
        Err(Error::NonFiniteParameter { index: 0, .. })
    ));
}

#[test]
fn the_grid_helpers_check_their_inputs() {
    use refit::grid::{bfs, step_cell};
    let walls = [false; 9];
    // Cell 4 is the centre of a 3×3 grid: up leads to 1, right to 5.
    assert_eq!(step_cell(3, &walls, 4, 0).expect("valid"), 1);
    assert_eq!(step_cell(3, &walls, 4, 3).expect("valid"), 5);
    assert_eq!(bfs(3, &walls, 0).expect("valid")[8], 4);
    for (n, w, cell, m) in [
        (0, &walls[..0], 0, 0),
        (3, &walls[..], 9, 0),
        (3, &walls[..], 0, 4),
        (3, &walls[..8], 0, 0),
        (usize::MAX, &walls[..], 0, 0),
        (1 << 33, &walls[..], 0, 0),
    ] {
        assert!(step_cell(n, w, cell, m).is_err(), "{n} {cell} {m}");
        if m < 4 {
            assert!(bfs(n, w, cell).is_err(), "{n} {cell}");
        }
    }
}

#[test]
fn action_counts_near_usize_max_are_errors_not_panics() {
    for k in [usize::MAX, usize::MAX - 1, usize::MAX - 3, usize::MAX / 2] {
        assert!(Tabular::<f64>::new(k).is_err(), "Tabular {k}");
        assert!(
            LinearSoftmax::<f64>::new(k, 1).is_err(),
            "LinearSoftmax {k}"
        );
        assert!(
            LinearSoftmax::<f64>::new(k, 3).is_err(),
            "LinearSoftmax {k}×3"
        );
    }
    assert!(LinearSoftmax::<f64>::new(5, 3).is_ok());
}

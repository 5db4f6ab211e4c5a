//! The size limits of `refit::limits` and the atomic calls: each case a
//! hostile probe found ends in a typed error (or a correct `Ok`) at once,
//! and a failed call leaves the learner as it was. `.ci/run` also runs this
//! file under a 4 GiB address-space limit (`prlimit --as`), where an
//! allocation of the sizes refused here would abort the process.

use rand::SeedableRng;
use refit::learner::{Baseline, Incremental, Learner, Refit, RefitConfig, StepSize};
use refit::limits;
use refit::objective::{Dataset, Weighting};
use refit::ope::OpeOptions;
use refit::policy::{ActionFeatures, LinearSoftmax, Tabular};
use refit::solve::{Method, Options, fit, fit_arrays};
use refit::{Error, history::History, run::Runner};

/// The quantity and limit of a `TooLarge` error.
fn too_large<T: std::fmt::Debug>(r: refit::Result<T>) -> (&'static str, u128, usize) {
    match r {
        Err(Error::TooLarge {
            quantity,
            value,
            limit,
        }) => (quantity, value, limit),
        other => panic!("expected TooLarge, got {other:?}"),
    }
}

#[test]
fn sizes_over_their_limits_are_too_large_errors_naming_the_quantity() {
    for k in [usize::MAX, usize::MAX - 3, 1 << 40, limits::MAX_ACTIONS + 1] {
        let (q, v, l) = too_large(Tabular::<f64>::new(k));
        assert_eq!(
            (q, v, l),
            ("number of actions K", k as u128, limits::MAX_ACTIONS)
        );
        too_large(LinearSoftmax::<f64>::new(k, 3));
        too_large(Dataset::<f64>::new(k, 1, true));
        too_large(Incremental::<f64, _>::tabular(
            k,
            StepSize::Constant(0.1),
            Baseline::None,
        ));
    }
    // 2·10⁸ actions: used to abort on a 1.6 GB allocation.
    too_large(Incremental::<f64, _>::tabular(
        200_000_000,
        StepSize::Constant(0.1),
        Baseline::None,
    ));
    // K and d each allowed, K·d not.
    let (q, v, l) = too_large(LinearSoftmax::<f64>::new(1 << 20, 1 << 10));
    assert_eq!(q, "number of parameters K·d");
    assert_eq!((v, l), (1u128 << 30, limits::MAX_PARAMETERS));
    too_large(LinearSoftmax::<f64>::new(3, usize::MAX));
    // An action-feature policy of 10¹² actions.
    too_large(ActionFeatures::<f64>::new(1_000_000_000_000, 2));
    let (q, ..) = too_large(ActionFeatures::<f64>::new(1 << 20, 1 << 10));
    assert_eq!(q, "context length K·p");
    // Arrays with K = usize::MAX.
    let x = ndarray::array![[1.0f64]];
    too_large(fit_arrays(
        x.view(),
        &[0],
        &[1.0],
        usize::MAX,
        1.0,
        &Options::default(),
        None,
    ));
    too_large(Dataset::<f64>::new(1_000_000_000_000, 1, true));
    // A context longer than the limit, from arrays (no rows: nothing allocated).
    let wide = ndarray::Array2::<f64>::zeros((0, limits::MAX_CONTEXT_DIM + 1));
    let (q, ..) = too_large(History::from_arrays(wide.view(), &[], &[], &[], 2));
    assert_eq!(q, "context length d");
    // Runs.
    let (q, ..) = too_large(Runner::new(100_000_000, 16));
    assert_eq!(q, "number of steps");
    let (q, ..) = too_large(Runner::new(10, usize::MAX));
    assert_eq!(q, "number of seeds");
    too_large(Runner::with_seeds(limits::MAX_STEPS + 1, vec![0]));
    assert!(Runner::new(limits::MAX_STEPS, 1).is_ok());
}

#[test]
fn a_bootstrap_over_its_limit_is_an_error() {
    let logs = History::from_arrays(
        ndarray::array![[1.0f64], [1.0], [1.0]].view(),
        &[0, 1, 0],
        &[1.0, 0.0, 0.5],
        &[0.5, 0.5, 0.5],
        2,
    )
    .expect("logs");
    let pi = Tabular::<f64>::new(2).expect("policy");
    let options = OpeOptions {
        bootstrap: 1_000_000_000,
        ..OpeOptions::default()
    };
    let (q, v, l) = too_large(refit::ope::evaluate(&pi, &logs, &options));
    assert_eq!(
        (q, v, l),
        ("bootstrap replicates", 1_000_000_000, limits::MAX_BOOTSTRAP)
    );
    let options = OpeOptions {
        bootstrap: 50,
        ..OpeOptions::default()
    };
    assert!(refit::ope::evaluate(&pi, &logs, &options).is_ok());
}

#[test]
fn dense_newton_refuses_a_dimension_over_its_limit() {
    // K·d = 10⁵: a dense Hessian of 80 GB; Newton-CG solves it.
    let (k, d) = (1000, 100);
    let mut data = Dataset::<f64>::new(k, d, true).expect("data");
    let x: Vec<f64> = (0..d).map(|j| (j as f64 * 0.01).sin()).collect();
    data.push(&x, 3, 1.0).expect("point");
    let pi = LinearSoftmax::<f64>::new(k, d).expect("policy");
    let newton = Options {
        method: Method::Newton,
        ..Options::default()
    };
    let (q, v, l) = too_large(fit(&pi, &data, 1.0, &newton));
    assert_eq!(
        (q, v, l),
        ("dense Newton dimension", 100_000, limits::MAX_NEWTON_DIM)
    );
    let cg = Options {
        method: Method::NewtonCg,
        ..Options::default()
    };
    assert!(fit(&pi, &data, 1.0, &cg).expect("CG").report.converged());
    // The refit learner with an explicit Newton: its act is the error, and
    // nothing changes.
    let config = RefitConfig {
        options: newton,
        ..RefitConfig::default()
    };
    let mut learner = Refit::linear(k, d, config).expect("learner");
    learner.learn(&x, 3, 1.0, 0.5).expect("learn");
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
    too_large(learner.act(&x, &mut rng));
    assert_eq!((learner.refits(), learner.pending()), (0, 1));
}

/// Everything observable of a refit learner, with its saved bytes under
/// feature `serde`.
fn state(l: &Refit<f64>) -> String {
    #[cfg(feature = "serde")]
    let bytes = serde_json::to_string(l).expect("serializes");
    #[cfg(not(feature = "serde"))]
    let bytes = String::new();
    format!(
        "{:?} {:?} {} {} {:?} {:?} {}",
        l.theta(),
        l.history(),
        l.pending(),
        l.refits(),
        l.last_report(),
        l.probabilities(),
        bytes
    )
}

#[test]
fn a_term_that_would_overflow_the_objective_is_refused_and_changes_nothing() {
    let config = RefitConfig {
        lambda: 0.5,
        weighting: Weighting::Importance,
        ..RefitConfig::default()
    };
    let mut l = Refit::linear(4, 4, config).expect("learner");
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
    let x = [1.0, 0.5, -0.25, 2.0];
    for t in 0..6 {
        let dec = l.act(&x, &mut rng).expect("act");
        l.learn(&x, dec.action, (t % 2) as f64, dec.propensity)
            .expect("learn");
    }
    let before = state(&l);
    // w = r/p = f64::MAX: w·log π and the Hessian's entries overflow.
    assert!(l.learn(&x, 1, f64::MAX, 1.0).is_err());
    assert_eq!(state(&l), before, "a refused learn changed the learner");
    assert!(l.validate().is_ok());
    // The learner goes on: its next act refits on the six good points.
    let dec = l.act(&x, &mut rng).expect("act after the refused learn");
    assert!(dec.propensity > 0.0);
    assert!(l.last_report().expect("refit").converged());
}

#[test]
fn an_act_whose_context_overflows_the_new_logits_keeps_the_old_refit() {
    let config = RefitConfig {
        lambda: 0.5,
        ..RefitConfig::default()
    };
    let mut l = Refit::linear(3, 2, config).expect("learner");
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
    for t in 0..5 {
        let x = [1.0, t as f64 * 0.3];
        let dec = l.act(&x, &mut rng).expect("act");
        l.learn(&x, dec.action, 1.0, dec.propensity).expect("learn");
    }
    // A refit is due; θ ≠ 0 after it, so θ·x overflows at one of these
    // contexts (found on a copy, which the refit leaves as it was).
    let m = f64::MAX;
    let huge = [[m, m], [m, -m], [-m, m], [-m, -m]]
        .into_iter()
        .find(|x| {
            let mut probe = l.clone();
            probe.act(x, &mut rng.clone()) == Err(Error::NonFiniteLogits)
        })
        .expect("a context whose logits overflow");
    let before = state(&l);
    assert_eq!(l.pending(), 1);
    assert_eq!(l.act(&huge, &mut rng).unwrap_err(), Error::NonFiniteLogits);
    assert_eq!(state(&l), before, "a failed act changed the learner");
    let mut out = [0.0; 3];
    assert_eq!(
        l.policy_into(&huge, &mut out).unwrap_err(),
        Error::NonFiniteLogits
    );
    assert_eq!(
        state(&l),
        before,
        "a failed policy_into changed the learner"
    );
    // The same refit then happens at a context that works.
    let refits = l.refits();
    l.act(&[1.0, 0.0], &mut rng).expect("act");
    assert_eq!(l.refits(), refits + 1);
    assert_eq!(l.pending(), 0);
}

//! Hostile inputs over the public API: no panic; either Ok with finite
//! outputs or a typed error; and a failed call leaves the learner exactly
//! as it was (parameters, history, counters, baseline, last probabilities).

use proptest::prelude::*;
use rand::SeedableRng;
use refit::env::{Bernoulli, Drifting, Environment, FiniteContext, Gaussian, LinearContextual};
use refit::learner::{
    Baseline, BetaThompson, Cadence, EpsilonGreedy, Incremental, Learner, LinTs, LinUcb, Refit,
    RefitConfig, Ridge, SquareCb, StepSize,
};
use refit::objective::Weighting;
use refit::policy::{LinearSoftmax, Policy};
use refit::solve::{Options, fit_arrays};

/// Floats a hostile caller might send.
fn hostile() -> impl Strategy<Value = f64> {
    prop_oneof![
        Just(f64::NAN),
        Just(f64::INFINITY),
        Just(f64::NEG_INFINITY),
        Just(5e-324),
        Just(-5e-324),
        Just(1e300),
        Just(-1e300),
        Just(f64::MAX),
        Just(1e154),
        Just(0.0),
        Just(-0.0),
        -10.0..10.0f64,
        -1e6..1e6f64,
    ]
}

#[derive(Debug, Clone)]
enum Op {
    Act(Vec<f64>),
    Learn(Vec<f64>, usize, f64, f64),
    PolicyAt(Vec<f64>),
}

fn ops(d: usize, k: usize) -> impl Strategy<Value = Vec<Op>> {
    let ctx = prop_oneof![
        prop::collection::vec(hostile(), d..=d),
        prop::collection::vec(hostile(), 0..d + 2),
        prop::collection::vec(-2.0..2.0f64, d..=d),
    ];
    let op = prop_oneof![
        ctx.clone().prop_map(Op::Act),
        (ctx.clone(), 0..k + 2, hostile(), hostile())
            .prop_map(|(x, a, r, p)| Op::Learn(x, a, r, p)),
        (ctx.clone(), 0..k, -1.0..2.0f64, 0.01..1.0f64)
            .prop_map(|(x, a, r, p)| Op::Learn(x, a, r, p)),
        ctx.prop_map(Op::PolicyAt),
    ];
    prop::collection::vec(op, 1..40)
}

/// The learner's saved bytes (its checkpoint), with feature `serde`.
#[cfg(feature = "serde")]
fn saved<L: serde::Serialize>(l: &L) -> String {
    serde_json::to_string(l).expect("a valid learner serializes")
}
#[cfg(not(feature = "serde"))]
fn saved<L>(_: &L) -> String {
    String::new()
}

/// Everything a user can observe of an incremental learner.
fn snap_incremental(l: &Incremental<f64, LinearSoftmax<f64>>) -> String {
    format!(
        "{:?} {} {:?} {:?} {}",
        l.policy().params(),
        l.steps(),
        l.baseline_value(),
        l.probabilities(),
        saved(l)
    )
}

/// Everything a user can observe of a refit learner.
fn snap_refit(l: &Refit<f64>) -> String {
    format!(
        "{:?} {:?} {} {} {:?} {:?} {} {}",
        l.theta(),
        l.history(),
        l.pending(),
        l.refits(),
        l.last_report(),
        l.probabilities(),
        l.dataset().points(),
        saved(l)
    )
}

fn all_finite(v: &[f64]) -> bool {
    v.iter().all(|x| x.is_finite())
}

/// Runs `ops` on a learner, checking the contract after every call.
fn exercise<L: Learner<f64>>(
    l: &mut L,
    ops: &[Op],
    snap: impl Fn(&L) -> String,
    finite_params: impl Fn(&L) -> bool,
) -> Result<(), TestCaseError> {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
    let k = l.num_actions();
    let mut out = vec![0.0; k];
    for op in ops {
        let before = snap(l);
        let result = match op {
            Op::Act(x) => l.act(x, &mut rng).map(|d| {
                assert!(d.action < k && d.propensity > 0.0 && d.propensity <= 1.0);
            }),
            Op::Learn(x, a, r, p) => l.learn(x, *a, *r, *p),
            Op::PolicyAt(x) => l.policy_into(x, &mut out).map(|()| {
                assert!(all_finite(&out));
                assert!((out.iter().sum::<f64>() - 1.0).abs() < 1e-9);
            }),
        };
        match result {
            Ok(()) => {
                prop_assert!(finite_params(l), "non-finite parameters after {op:?}");
                prop_assert!(
                    l.validate().is_ok(),
                    "{:?} left an invalid learner: {:?}",
                    op,
                    l.validate()
                );
            }
            Err(_) => prop_assert_eq!(snap(l), before, "a failed {:?} changed the learner", op),
        }
        if let Some(p) = l.probabilities() {
            prop_assert!(all_finite(p));
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn incremental_learners_survive_hostile_calls(
        alpha in prop_oneof![Just(1e-300), Just(1e300), 1e-3..10.0f64],
        d in 1usize..4,
        ops in ops(3, 4),
    ) {
        let mut l = Incremental::linear(4, d, StepSize::Constant(alpha), Baseline::RunningMean).expect("valid");
        exercise(&mut l, &ops, snap_incremental, |l| all_finite(l.policy().params().as_slice()))?;
    }

    #[test]
    fn refit_learners_survive_hostile_calls(
        lambda in prop_oneof![Just(1e-300), Just(1e300), 1e-3..10.0f64],
        weighting in prop_oneof![
            Just(Weighting::Identity),
            Just(Weighting::Shift(-3.0)),
            Just(Weighting::Exp(1.0)),
            Just(Weighting::Importance),
        ],
        ops in ops(2, 3),
    ) {
        let config = RefitConfig { lambda, weighting, ..RefitConfig::default() };
        let mut l = Refit::linear(3, 2, config).expect("valid");
        exercise(&mut l, &ops, snap_refit, |l| all_finite(l.theta().as_slice()))?;
    }

    #[test]
    fn refit_cadences_survive_hostile_calls(
        cadence in prop_oneof![
            (1usize..4).prop_map(Cadence::Every),
            Just(Cadence::Doubling),
            (1usize..6).prop_map(Cadence::WarmUp),
        ],
        ops in ops(2, 3),
    ) {
        let config = RefitConfig { cadence, ..RefitConfig::default() };
        let mut l = Refit::linear(3, 2, config).expect("valid");
        exercise(&mut l, &ops, snap_refit, |l| all_finite(l.theta().as_slice()))?;
    }

    #[test]
    fn ridge_baselines_survive_hostile_calls(
        which in 0usize..4,
        lambda in prop_oneof![Just(1e-300), Just(1e300), 1e-3..10.0f64],
        ops in ops(2, 3),
    ) {
        // Everything a user can observe: the model, the last π, the saved
        // bytes (scratch buffers are not part of the state).
        fn snap(m: &Ridge<f64>, p: Option<&[f64]>, bytes: String) -> String {
            let inverses: Vec<&[f64]> = (0..m.num_actions())
                .map(|a| m.inverse(a).expect("action"))
                .collect();
            format!("{:?} {:?} {:?} {:?} {}", m.theta(), inverses, m.counts(), p, bytes)
        }
        match which {
            0 => {
                let mut l = EpsilonGreedy::new(3, 2, lambda, 0.1).expect("valid");
                let s = |l: &EpsilonGreedy<f64>| snap(l.model(), l.probabilities(), saved(l));
                exercise(&mut l, &ops, s, |l| all_finite(l.model().theta()))?;
            }
            1 => {
                let mut l = LinUcb::new(3, 2, lambda, 1.0).expect("valid");
                let s = |l: &LinUcb<f64>| snap(l.model(), l.probabilities(), saved(l));
                exercise(&mut l, &ops, s, |l| all_finite(l.model().theta()))?;
            }
            2 => {
                let mut l = SquareCb::new(3, 2, lambda, 10.0, 0.5).expect("valid");
                let s = |l: &SquareCb<f64>| snap(l.model(), l.probabilities(), saved(l));
                exercise(&mut l, &ops, s, |l| all_finite(l.model().theta()))?;
            }
            _ => {
                let mut l = LinTs::new(3, 2, lambda, 0.5)
                    .and_then(|l| l.with_propensity_draws(16, 1))
                    .expect("valid");
                let s = |l: &LinTs<f64>| snap(l.model(), l.probabilities(), saved(l));
                exercise(&mut l, &ops, s, |l| all_finite(l.model().theta()))?;
            }
        }
    }

    #[test]
    fn beta_thompson_survives_hostile_calls(
        prior in prop_oneof![Just(1e-300), Just(1e300), 0.1..10.0f64],
        ops in ops(1, 3),
    ) {
        fn snap(l: &BetaThompson<f64>) -> String {
            let post: Vec<(f64, f64)> = (0..3).map(|a| l.posterior(a).expect("arm")).collect();
            format!("{:?} {:?} {}", post, l.probabilities(), saved(l))
        }
        let mut l = BetaThompson::new(3, prior, 1.0)
            .and_then(|l| l.with_propensity_draws(16, 2))
            .expect("valid");
        exercise(&mut l, &ops, snap, |_| true)?;
    }

    #[test]
    fn constructors_refuse_hostile_parameters(v in hostile(), k in 0usize..3) {
        let ok = v.is_finite() && v > 0.0;
        prop_assert_eq!(Incremental::tabular(2, StepSize::Constant(v), Baseline::None).is_ok(), ok);
        let lambda_ok = v.is_finite() && v > 0.0;
        prop_assert_eq!(Refit::<f64>::linear(2, 2, RefitConfig { lambda: v, ..RefitConfig::default() }).is_ok(), lambda_ok);
        prop_assert_eq!(LinearSoftmax::<f64>::new(k, 2).is_ok(), k > 0);
        prop_assert_eq!(EpsilonGreedy::<f64>::new(2, 2, 1.0, v).is_ok(), (0.0..=1.0).contains(&v));
        // The ridge baselines also need A⁻¹ = I/λ finite.
        prop_assert_eq!(EpsilonGreedy::<f64>::new(2, 2, v, 0.1).is_ok(), v.is_finite() && v > 0.0 && (1.0 / v).is_finite());
        prop_assert_eq!(LinUcb::<f64>::new(2, 2, 1.0, v).is_ok(), v.is_finite() && v >= 0.0);
        prop_assert_eq!(SquareCb::<f64>::new(2, 2, 1.0, v, 0.5).is_ok(), v.is_finite() && v > 0.0);
        prop_assert_eq!(SquareCb::<f64>::new(2, 2, 1.0, 10.0, v).is_ok(), v.is_finite() && v >= 0.0);
        prop_assert_eq!(LinTs::<f64>::new(2, 2, 1.0, v).is_ok(), v.is_finite() && v > 0.0);
        prop_assert_eq!(BetaThompson::<f64>::new(2, v, 1.0).is_ok(), v.is_finite() && v > 0.0);
        prop_assert_eq!(Bernoulli::new(vec![v, 0.5]).is_ok(), (0.0..=1.0).contains(&v));
        prop_assert_eq!(Gaussian::new(vec![v], 1.0).is_ok(), v.is_finite());
        prop_assert_eq!(Drifting::new(vec![0.0], 1.0, v).is_ok(), v.is_finite() && v >= 0.0);
        let w = ndarray::Array2::from_elem((2, 2), v);
        prop_assert_eq!(LinearContextual::new(&w, 0.1).is_ok(), v.is_finite());
        prop_assert_eq!(FiniteContext::new(&w).is_ok(), (0.0..=1.0).contains(&v));
    }

    #[test]
    fn fit_takes_hostile_data_without_panicking(
        xs in prop::collection::vec(hostile(), 6),
        ws in prop::collection::vec(hostile(), 3),
        actions in prop::collection::vec(0usize..4, 3),
        lambda in hostile(),
    ) {
        let x = ndarray::Array2::from_shape_vec((3, 2), xs).expect("3×2");
        if let Ok(f) = fit_arrays(x.view(), &actions, &ws, 3, lambda, &Options::default(), None) {
            prop_assert!(lambda >= 0.0);
            prop_assert!(lambda == 0.0 || all_finite(f.theta.as_slice()));
        }
    }

    #[test]
    fn policies_take_hostile_contexts(x in prop::collection::vec(hostile(), 0..4), a in 0usize..5) {
        let mut pi = LinearSoftmax::<f64>::new(3, 2).expect("valid");
        pi.set_params(ndarray::array![[1.0, -2.0], [0.5, 0.0], [-1.0, 3.0]].as_slice().expect("standard layout")).expect("finite");
        let mut out = vec![0.0; 6];
        if let Ok(p) = pi.probabilities(&x) {
            prop_assert!(all_finite(&p));
        }
        if pi.score_into(&x, a, &mut out).is_ok() {
            prop_assert!(all_finite(&out));
        }
        let _ = pi.hessian_vector_into(&x, 0, &[1.0; 6], &mut out);
        let _ = pi.log_prob(&x, a);
    }

    #[test]
    fn environments_take_hostile_calls(a in 0usize..5, x in prop::collection::vec(hostile(), 0..4)) {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
        let mut env = LinearContextual::<f64>::random(3, 2, 0.1, &mut rng).expect("valid");
        let mut mu = vec![0.0; 3];
        let _ = env.expected_rewards_at(&x, &mut mu);
        if let Ok(r) = env.reward(a, &mut rng) {
            prop_assert!(r.is_finite() && a < 3);
        }
        let fc = FiniteContext::<f64>::random(2, 3, &mut rng).expect("valid");
        if fc.expected_rewards_at(&x, &mut mu).is_ok() {
            prop_assert!(all_finite(&mu));
        }
    }
}

#[test]
fn ten_thousand_actions_and_empty_histories() {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(4);
    let mut inc = Incremental::tabular(10_000, StepSize::Constant(0.1), Baseline::RunningMean)
        .expect("valid");
    let d = inc.act(&[1.0], &mut rng).expect("act");
    inc.learn(&[1.0], d.action, 1.0, d.propensity)
        .expect("learn");
    // The refit learner with K·d = 10^4 solves Hessian-free, and refits on
    // an empty history to nothing at all.
    let mut r = Refit::tabular(10_000, RefitConfig::default()).expect("valid");
    let d = r.act(&[1.0], &mut rng).expect("act on an empty history");
    assert!(r.last_report().is_none());
    r.learn(&[1.0], d.action, 1.0, d.propensity).expect("learn");
    r.refit_now().expect("refit");
    let rep = r.last_report().expect("report");
    assert!(rep.converged(), "{rep:?}");
    // An empty dataset has a trivial optimum.
    let x = ndarray::Array2::<f64>::zeros((0, 2));
    let f = fit_arrays(x.view(), &[], &[], 3, 0.5, &Options::default(), None).expect("empty");
    assert!(f.theta.iter().all(|v| *v == 0.0) && f.report.converged());
}

/// Sizes from user input that cannot be allocated are errors, not aborts.
#[test]
fn absurd_sizes_are_errors() {
    assert!(LinearSoftmax::<f64>::new(1 << 40, 1 << 20).is_err());
    assert!(
        Incremental::<f64, _>::tabular(1 << 60, StepSize::Constant(0.1), Baseline::None).is_err()
    );
    assert!(Refit::<f64>::linear(1 << 40, 1 << 20, RefitConfig::default()).is_err());
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(5);
    assert!(LinearContextual::<f64>::random(1 << 40, 1 << 30, 0.1, &mut rng).is_err());
    assert!(FiniteContext::<f64>::random(1 << 40, 1 << 30, &mut rng).is_err());
    assert!(Gaussian::<f64>::testbed(1 << 60, 0.0, &mut rng).is_err());
    assert!(refit::run::Runner::new(10, usize::MAX).is_err());
    assert!(refit::run::Runner::new(0, 5).is_err());
    assert!(refit::run::Runner::new(5, 0).is_err());
    assert!(refit::run::Runner::with_seeds(5, vec![]).is_err());
    assert!(matches!(
        refit::run::Runner::new(usize::MAX / 2, 1),
        Err(refit::Error::TooLarge { .. })
    ));
}

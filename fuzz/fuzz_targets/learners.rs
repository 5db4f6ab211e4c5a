//! Arbitrary act/learn/policy sequences on every learner: after any `Err`
//! the learner's saved bytes (parameters, history, counters, solver state)
//! are unchanged, and after any `Ok` it validates.
#![no_main]
use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use rand::SeedableRng;
use refit::learner::{
    Baseline, BetaThompson, Cadence, EpsilonGreedy, Incremental, Learner, LinTs, LinUcb, Refit,
    RefitConfig, SquareCb, StepSize,
};
use refit::objective::{Estimator, ExpectedReturn, Weighting};
use refit::policy::LinearSoftmax;

#[derive(Debug, Arbitrary)]
enum Op {
    Act(Vec<f64>),
    Learn(Vec<f64>, u8, f64, f64),
    PolicyAt(Vec<f64>),
}

#[derive(Debug, Arbitrary)]
struct Input {
    learner: u8,
    hyper: f64,
    ops: Vec<Op>,
}

const K: usize = 3;
const D: usize = 2;

fn run<L: Learner<f64> + serde::Serialize>(l: &mut L, ops: &[Op]) {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
    let mut out = [0.0; K];
    for op in ops.iter().take(32) {
        let before = serde_json::to_string(l).expect("a valid learner serializes");
        let result = match op {
            Op::Act(x) => l.act(x, &mut rng).map(|d| assert!(d.action < K)),
            Op::Learn(x, a, r, p) => l.learn(x, usize::from(*a % 4), *r, *p),
            Op::PolicyAt(x) => l.policy_into(x, &mut out),
        };
        match result {
            Ok(()) => assert!(l.validate().is_ok(), "{op:?} left an invalid learner"),
            Err(_) => assert_eq!(
                serde_json::to_string(l).expect("serializes"),
                before,
                "a failed {op:?} changed the learner"
            ),
        }
    }
}

fuzz_target!(|input: Input| {
    let h = input.hyper;
    match input.learner % 10 {
        0 => {
            if let Ok(mut l) =
                Incremental::linear(K, D, StepSize::Constant(h), Baseline::RunningMean)
            {
                run(&mut l, &input.ops);
            }
        }
        1 => {
            let config = RefitConfig {
                lambda: h,
                ..RefitConfig::default()
            };
            if let Ok(mut l) = Refit::linear(K, D, config) {
                run(&mut l, &input.ops);
            }
        }
        2 => {
            let config = RefitConfig {
                lambda: h,
                weighting: Weighting::Importance,
                ..RefitConfig::default()
            };
            if let Ok(mut l) = Refit::linear(K, D, config) {
                run(&mut l, &input.ops);
            }
        }
        4 => {
            if let Ok(mut l) = EpsilonGreedy::new(K, D, 1.0, h) {
                run(&mut l, &input.ops);
            }
        }
        5 => {
            if let Ok(mut l) = LinUcb::new(K, D, h, 1.0) {
                run(&mut l, &input.ops);
            }
        }
        6 => {
            if let Ok(mut l) = SquareCb::new(K, D, 1.0, h, 0.5) {
                run(&mut l, &input.ops);
            }
        }
        7 => {
            if let Ok(mut l) = LinTs::new(K, D, 1.0, h).and_then(|l| l.with_propensity_draws(8, 1)) {
                run(&mut l, &input.ops);
            }
        }
        8 => {
            if let Ok(mut l) = BetaThompson::new(K, h, 1.0).and_then(|l| l.with_propensity_draws(8, 1)) {
                run(&mut l, &input.ops);
            }
        }
        9 => {
            // A refit learner with a cadence other than every action.
            let cadence = match (h.abs() as usize) % 3 {
                0 => Cadence::Every(3),
                1 => Cadence::Doubling,
                _ => Cadence::WarmUp(4),
            };
            let config = RefitConfig {
                cadence,
                ..RefitConfig::default()
            };
            if let Ok(mut l) = Refit::linear(K, D, config) {
                run(&mut l, &input.ops);
            }
        }
        _ => {
            let Ok(policy) = LinearSoftmax::new(K, D) else {
                return;
            };
            let Ok(obj) = ExpectedReturn::new(
                policy,
                refit::history::History::new(D),
                h,
                Estimator::Ips,
                None,
            ) else {
                return;
            };
            if let Ok(mut l) = Refit::with_objective(obj, Default::default()) {
                run(&mut l, &input.ops);
            }
        }
    }
});

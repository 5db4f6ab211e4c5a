//! The incremental learner learns what the literature says it learns.

use refit::env::Bernoulli;
use refit::learner::{Baseline, Incremental, StepSize};
use refit::run::Runner;

/// Gradient bandit on a 2-armed Bernoulli bandit (means 0.2, 0.8): by step
/// 2000 the better arm is pulled more than 95% of the time, over 200 seeds.
#[test]
fn picks_the_better_bernoulli_arm() {
    let summary = Runner::new(2000, 200)
        .expect("valid")
        .run(
            |_| Bernoulli::new(vec![0.2f64, 0.8]),
            || Incremental::tabular(2, StepSize::Constant(0.1), Baseline::RunningMean),
        )
        .expect("runs");
    // Average the fraction over the last 100 steps to cut the per-step noise;
    // its standard error is below 0.5% here, so 95% is a real margin.
    let tail = &summary.optimal.mean[1900..];
    let frac = tail.iter().sum::<f64>() / tail.len() as f64;
    assert!(
        frac > 0.95,
        "fraction optimal over steps 1901..2000: {frac}"
    );
    let last = summary.optimal.mean[1999];
    assert!(last > 0.95, "fraction optimal at step 2000: {last}");
    // And learning happened: early steps are near chance.
    assert!(summary.optimal.mean[0] < 0.6);
    // Regret shrinks: the last step's expected regret is a tenth of the first's.
    assert!(summary.regret.mean[1999] < 0.1 * summary.regret.mean[0]);
}

/// The step-size schedule and the baselines do what their docs say.
#[test]
fn schedules_and_baselines() {
    let s = StepSize::Decaying {
        alpha0: 0.5f64,
        kappa: 1.0,
    };
    assert_eq!(s.at(0), 0.5);
    assert_eq!(s.at(3), 0.125);
    use refit::learner::Learner;
    let mut l =
        Incremental::tabular(2, StepSize::Constant(0.1f64), Baseline::RunningMean).expect("valid");
    for r in [1.0, 2.0, 6.0] {
        l.learn(&[1.0], 0, r, 0.5).expect("valid");
    }
    assert_eq!(l.baseline_value(), 3.0);
    let mut e = Incremental::tabular(2, StepSize::Constant(0.1f64), Baseline::Ema { rate: 0.5 })
        .expect("valid");
    for r in [4.0, 2.0, 6.0] {
        e.learn(&[1.0], 0, r, 0.5).expect("valid");
    }
    // 4, then 4 + 0.5 (2 - 4) = 3, then 3 + 0.5 (6 - 3) = 4.5.
    assert_eq!(e.baseline_value(), 4.5);
}

/// One update equals the gradient-bandit formula of Sutton & Barto, eq. 2.12.
#[test]
fn update_matches_the_gradient_bandit_formula() {
    use refit::learner::Learner;
    use refit::policy::Policy;
    let mut l =
        Incremental::tabular(3, StepSize::Constant(0.4f64), Baseline::RunningMean).expect("valid");
    l.learn(&[1.0], 1, 2.0, 1.0 / 3.0).expect("valid");
    // Running mean including r_1 = 2 is 2: no change on the first step.
    assert_eq!(l.policy().params(), vec![0.0, 0.0, 0.0]);
    l.learn(&[1.0], 2, 5.0, 1.0 / 3.0).expect("valid");
    // b = 3.5, r - b = 1.5, π = 1/3 each: H_2 += 0.4·1.5·(2/3), others −= 0.4·1.5·(1/3).
    let h = l.policy().params();
    let expect = [-0.2, -0.2, 0.4];
    for (a, b) in h.iter().zip(expect) {
        assert!((a - b).abs() < 1e-15, "{h:?}");
    }
}

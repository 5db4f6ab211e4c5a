//! The shadow comparison: KL(π* ‖ π) between the refit optimum on a
//! learner's own history and the learner's policy.

mod common;

use proptest::prelude::*;
use refit::env::{Bernoulli, LinearContextual};
use refit::learner::{Baseline, Incremental, Refit, RefitConfig, StepSize};
use refit::objective::Weighting;
use refit::run::{Observe, Runner, Shadow, kl_divergence};

proptest! {
    #[test]
    fn kl_is_nonnegative_and_zero_on_equal_distributions(
        a in prop::collection::vec(-20.0f64..20.0, 2..12),
        b in prop::collection::vec(-20.0f64..20.0, 12),
    ) {
        let mut p = a.clone();
        refit::policy::softmax_in_place(&mut p).expect("finite");
        let mut q = b[..a.len()].to_vec();
        refit::policy::softmax_in_place(&mut q).expect("finite");
        prop_assert!(kl_divergence(&p, &q) >= 0.0);
        prop_assert!(kl_divergence(&p, &p) <= 1e-15);
    }
}

#[test]
fn kl_of_known_distributions() {
    // KL((1/2, 1/2) ‖ (1/4, 3/4)) = ½ ln 2 + ½ ln(2/3).
    let want = 0.5 * 2f64.ln() + 0.5 * (2.0f64 / 3.0).ln();
    assert!((kl_divergence(&[0.5, 0.5], &[0.25, 0.75]) - want).abs() < 1e-15);
    // Zero-probability terms of p contribute nothing.
    assert_eq!(kl_divergence(&[1.0, 0.0], &[1.0, 0.0]), 0.0);
}

fn shadow(config: RefitConfig<f64>, steps: usize) -> Shadow<f64> {
    let mut rng = common::rng(99);
    let probes =
        ndarray::Array2::from_shape_vec((8, 3), common::normals(&mut rng, 24, 1.0)).expect("8×3");
    Shadow {
        at: Shadow::<f64>::log_spaced(steps, 6),
        probes,
        config,
        tabular: false,
    }
}

#[test]
fn the_shadow_of_a_refit_learner_is_itself() {
    let config = RefitConfig {
        lambda: 0.5,
        weighting: Weighting::Shift(-5.0),
        ..RefitConfig::default()
    };
    let steps = 200;
    let sh = shadow(config, steps);
    let summary = Runner::new(steps, 6)
        .expect("valid")
        .run_observed(
            |rng| LinearContextual::<f64>::random(4, 3, 0.5, rng),
            || Refit::linear(4, 3, config),
            &Observe {
                shadow: Some(&sh),
                ..Observe::default()
            },
        )
        .expect("runs");
    let s = summary.shadow.expect("shadow asked for");
    assert_eq!(s.at, sh.at);
    for (i, kl) in s.kl.mean.iter().enumerate() {
        assert!(*kl >= 0.0 && *kl < 1e-10, "step {}: KL {kl}", s.at[i]);
        assert!((s.regret_online.mean[i] - s.regret_refit.mean[i]).abs() < 1e-6);
    }
}

#[test]
fn the_shadow_of_an_incremental_learner_differs_and_runs_are_reproducible() {
    let config = RefitConfig {
        lambda: 0.5,
        weighting: Weighting::Shift(-5.0),
        ..RefitConfig::default()
    };
    let steps = 300;
    let sh = shadow(config, steps);
    let run = |parallel| {
        Runner::new(steps, 8)
            .expect("valid")
            .parallel(parallel)
            .run_observed(
                |rng| LinearContextual::<f64>::random(4, 3, 0.5, rng),
                || Incremental::linear(4, 3, StepSize::Constant(0.1), Baseline::RunningMean),
                &Observe {
                    shadow: Some(&sh),
                    ..Observe::default()
                },
            )
            .expect("runs")
    };
    let a = run(true);
    let b = run(false);
    assert_eq!(a, b);
    let s = a.shadow.expect("shadow");
    let last = s.kl.mean.len() - 1;
    assert!(
        s.kl.mean[last] > 1e-3,
        "an incremental learner is not at the optimum: {:?}",
        s.kl.mean
    );
}

#[test]
fn finish_observes_every_seed() {
    let summary = Runner::new(50, 10)
        .expect("valid")
        .run_observed(
            |_| Bernoulli::new(vec![0.2f64, 0.8]),
            || Incremental::tabular(2, StepSize::Constant(0.1), Baseline::RunningMean),
            &Observe {
                finish: Some(&|_, _| Ok(2.5)),
                ..Observe::default()
            },
        )
        .expect("runs");
    assert_eq!(summary.finish, Some((2.5, 0.0)));
}

#[test]
fn bad_shadows_are_refused() {
    let config = RefitConfig::<f64>::default();
    let mut sh = shadow(config, 10);
    sh.at = vec![0, 5];
    let err = Runner::new(10, 1)
        .expect("valid")
        .run_observed(
            |rng| LinearContextual::<f64>::random(4, 3, 0.5, rng),
            || Incremental::linear(4, 3, StepSize::Constant(0.1), Baseline::None),
            &Observe {
                shadow: Some(&sh),
                ..Observe::default()
            },
        )
        .expect_err("step 0 does not exist");
    assert!(matches!(err, refit::Error::Run { .. }), "{err:?}");
}

//! Numerical soak: long runs with rewards of magnitude 1e6 and tiny or huge
//! step sizes. The learner stays finite or returns an error — never a
//! silent NaN in θ. The 10⁷-step run is ignored by default
//! (`cargo test --release --test soak -- --ignored`).

use refit::env::Gaussian;
use refit::learner::{Baseline, Incremental, Learner, Refit, RefitConfig, StepSize};
use refit::policy::{Policy, Tabular};
use refit::session::Session;

fn big_rewards(_: &mut rand_chacha::ChaCha8Rng) -> refit::Result<Gaussian<f64>> {
    Gaussian::new(vec![1.0e6, 2.0e6, 0.5e6, 1.5e6], 1.0e5)
}

/// Plays until `steps` or the first error; returns (steps played, error?).
fn soak_incremental(
    alpha: f64,
    steps: usize,
) -> (usize, Option<refit::Error>, Incremental<f64, Tabular<f64>>) {
    let mut s = Session::new(9, big_rewards, || {
        Incremental::tabular(4, StepSize::Constant(alpha), Baseline::None)
    })
    .expect("session");
    for t in 0..steps {
        if let Err(e) = s.step() {
            return (t, Some(e), s.learner().clone());
        }
    }
    (steps, None, s.learner().clone())
}

fn check_incremental(steps: usize) {
    for alpha in [1e-300, 1e-12, 0.1, 1e3, 1e300] {
        let (played, err, learner) = soak_incremental(alpha, steps);
        let theta = learner.policy().params();
        assert!(
            theta.iter().all(|v| v.is_finite()),
            "α = {alpha}: non-finite θ after {played} steps"
        );
        if let Some(e) = err {
            // A refused update is a typed error at a known step, not a NaN.
            assert!(
                matches!(
                    e,
                    refit::Error::NonFiniteUpdate | refit::Error::NonFiniteLogits
                ),
                "α = {alpha}: {e:?}"
            );
        }
    }
}

#[test]
fn incremental_soak_short() {
    check_incremental(100_000);
}

#[test]
#[ignore = "10^7 steps: run with --release -- --ignored"]
fn incremental_soak_ten_million() {
    check_incremental(10_000_000);
}

#[test]
fn refit_soak_with_huge_rewards() {
    let mut s = Session::new(10, big_rewards, || {
        Refit::tabular(4, RefitConfig::default())
    })
    .expect("session");
    for t in 0..10_000 {
        s.step().unwrap_or_else(|e| panic!("step {t}: {e}"));
        if let Some(rep) = s.learner().last_report() {
            assert!(rep.converged(), "step {t}: {rep:?}");
        }
    }
    assert!(s.learner().theta().iter().all(|v| v.is_finite()));
    // Exponential weights of rewards near 1e6 overflow: a typed error, and
    // the learner keeps what it had.
    let mut l = Refit::<f64, Tabular<f64>>::tabular(
        4,
        RefitConfig {
            weighting: refit::objective::Weighting::Exp(1.0),
            ..RefitConfig::default()
        },
    )
    .expect("valid");
    let e = l
        .learn(&[1.0], 0, 1.0e6, 0.25)
        .expect_err("exp(1e6) overflows");
    assert!(
        matches!(e, refit::Error::InvalidParameter { name: "weight", .. }),
        "{e:?}"
    );
    assert_eq!(l.history().len(), 0);
}

//! Off-policy evaluation: unbiasedness of IPS and DR against the exact
//! value the environment knows, the identities between the estimators,
//! the standard errors from their definitions, the reward model, and logs
//! read from CSV.

mod common;

use ndarray::Array2;
use refit::env::{Environment, FiniteContext};
use refit::history::History;
use refit::ope::{OpeOptions, RewardModel, Ridge, evaluate, evaluate_with};
use refit::policy::{LinearSoftmax, Policy, sample_action};

const M: usize = 3;
const K: usize = 4;

fn means() -> Array2<f64> {
    Array2::from_shape_fn((M, K), |(c, a)| 0.1 + 0.2 * ((c + 2 * a) % 5) as f64)
}

fn softmax_policy(theta: &[f64]) -> LinearSoftmax<f64> {
    let mut p = LinearSoftmax::new(K, M).expect("valid");
    p.set_params(theta).expect("finite");
    p
}

fn logging() -> LinearSoftmax<f64> {
    softmax_policy(
        &(0..K * M)
            .map(|i| 0.3 * ((i * 7) % 5) as f64 - 0.6)
            .collect::<Vec<_>>(),
    )
}

fn target() -> LinearSoftmax<f64> {
    softmax_policy(
        &(0..K * M)
            .map(|i| 0.5 * ((i * 3) % 4) as f64 - 0.5)
            .collect::<Vec<_>>(),
    )
}

/// n interactions of the finite-context bandit logged by `logging()`.
fn collect(seed: u64, n: usize) -> History<f64> {
    let mut rng = common::rng(seed);
    let mut env = FiniteContext::new(&means()).expect("valid");
    let mu = logging();
    let mut logs = History::new(M);
    let mut x = vec![0.0; M];
    for _ in 0..n {
        env.next_context(&mut rng, &mut x).expect("valid");
        let p = mu.probabilities(&x).expect("valid");
        let a = sample_action(&p, &mut rng);
        let r = env.reward(a, &mut rng).expect("valid");
        logs.push(&x, a, r, p[a]).expect("valid");
    }
    logs
}

/// V(π) = (1/M) Σ_c Σ_a π(a | e_c) means[c, a].
fn exact_value(pi: &LinearSoftmax<f64>) -> f64 {
    let m = means();
    (0..M)
        .map(|c| {
            let mut x = vec![0.0; M];
            x[c] = 1.0;
            let p = pi.probabilities(&x).expect("valid");
            (0..K).map(|a| p[a] * m[[c, a]]).sum::<f64>()
        })
        .sum::<f64>()
        / M as f64
}

/// A reward model that reads q̂ from a table by the one-hot context.
struct Table(Array2<f64>);

impl RewardModel<f64> for Table {
    fn num_actions(&self) -> usize {
        self.0.ncols()
    }
    fn context_dim(&self) -> usize {
        self.0.nrows()
    }
    fn predict_into(&self, x: &[f64], out: &mut [f64]) -> refit::Result<()> {
        let c = x.iter().position(|v| *v == 1.0).unwrap_or(0);
        for (a, o) in out.iter_mut().enumerate() {
            *o = self.0[[c, a]];
        }
        Ok(())
    }
}

fn no_bootstrap() -> OpeOptions<f64> {
    OpeOptions {
        bootstrap: 0,
        ..OpeOptions::default()
    }
}

#[test]
fn ips_and_dr_are_unbiased() {
    let pi = target();
    let v = exact_value(&pi);
    // DR with a reward model fitted on an independent log (any fixed q̂
    // leaves DR unbiased), and with a deliberately wrong one.
    let fitted = Ridge::fit(&collect(999, 2000), K, 1.0).expect("fits");
    let wrong = Table(Array2::from_elem((M, K), 0.9));
    let (mut ips, mut dr, mut dr_wrong) = (Vec::new(), Vec::new(), Vec::new());
    for seed in 0..400 {
        let logs = collect(seed, 100);
        ips.push(
            evaluate_with(&pi, &logs, &fitted, &no_bootstrap())
                .expect("evaluates")
                .ips
                .value,
        );
        dr.push(
            evaluate_with(&pi, &logs, &fitted, &no_bootstrap())
                .expect("evaluates")
                .dr
                .value,
        );
        dr_wrong.push(
            evaluate_with(&pi, &logs, &wrong, &no_bootstrap())
                .expect("evaluates")
                .dr
                .value,
        );
    }
    for (name, est) in [("IPS", &ips), ("DR", &dr), ("DR, wrong model", &dr_wrong)] {
        let n = est.len() as f64;
        let mean = est.iter().sum::<f64>() / n;
        let sd = (est.iter().map(|e| (e - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt();
        let se = sd / n.sqrt();
        assert!(
            (mean - v).abs() < 3.0 * se,
            "{name}: mean {mean} vs exact {v} (se {se})"
        );
    }
    // And the DM with the wrong model is biased far beyond that.
    let logs = collect(1, 2000);
    let dm = evaluate_with(&pi, &logs, &wrong, &no_bootstrap())
        .expect("evaluates")
        .dm
        .value;
    assert!((dm - 0.9).abs() < 1e-12 && (dm - v).abs() > 0.2);
}

#[test]
fn snips_follows_an_affine_change_of_the_rewards() {
    let logs = collect(5, 300);
    let pi = target();
    let e = evaluate(&pi, &logs, &no_bootstrap()).expect("evaluates");
    let mut moved = History::new(M);
    for it in logs.iter() {
        moved
            .push(it.context, it.action, 3.0 * it.reward + 2.0, it.propensity)
            .expect("valid");
    }
    let f = evaluate(&pi, &moved, &no_bootstrap()).expect("evaluates");
    assert!((f.snips.value - (3.0 * e.snips.value + 2.0)).abs() < 1e-12);
    assert!((f.snips.std_err - 3.0 * e.snips.std_err).abs() < 1e-12);
    // IPS is not shift-invariant (its weights do not average to exactly 1).
    assert!((f.ips.value - (3.0 * e.ips.value + 2.0)).abs() > 1e-6);
}

#[test]
fn dr_reduces_to_dm_with_an_exact_model_and_to_ips_with_zero() {
    let pi = target();
    let m = means();
    // Rewards equal to the exact model: the correction term vanishes.
    let mut logs = History::new(M);
    for it in collect(8, 200).iter() {
        let c = it.context.iter().position(|v| *v == 1.0).expect("one-hot");
        logs.push(it.context, it.action, m[[c, it.action]], it.propensity)
            .expect("valid");
    }
    let e = evaluate_with(&pi, &logs, &Table(m.clone()), &no_bootstrap()).expect("evaluates");
    assert!((e.dr.value - e.dm.value).abs() < 1e-12);
    assert!(e.dr.std_err > 0.0 && (e.dr.std_err - e.dm.std_err).abs() < 1e-12);
    let logs = collect(9, 200);
    let e = evaluate_with(&pi, &logs, &Table(Array2::zeros((M, K))), &no_bootstrap())
        .expect("evaluates");
    assert!((e.dr.value - e.ips.value).abs() < 1e-12);
    assert!((e.dr.std_err - e.ips.std_err).abs() < 1e-12);
}

#[test]
fn standard_errors_and_intervals_follow_their_definitions() {
    let logs = collect(11, 150);
    let pi = target();
    let e = evaluate(
        &pi,
        &logs,
        &OpeOptions {
            bootstrap: 500,
            seed: 3,
            ..OpeOptions::default()
        },
    )
    .expect("evaluates");
    let n = logs.len() as f64;
    let w: Vec<f64> = logs
        .iter()
        .map(|it| pi.probabilities(it.context).expect("valid")[it.action] / it.propensity)
        .collect();
    let u: Vec<f64> = w.iter().zip(logs.rewards()).map(|(w, r)| w * r).collect();
    let sd = |t: &[f64]| {
        let m = t.iter().sum::<f64>() / n;
        (t.iter().map(|v| (v - m).powi(2)).sum::<f64>() / (n - 1.0)).sqrt()
    };
    assert!((e.ips.value - u.iter().sum::<f64>() / n).abs() < 1e-12);
    assert!((e.ips.std_err - sd(&u) / n.sqrt()).abs() < 1e-12);
    let wbar = w.iter().sum::<f64>() / n;
    let sn = u.iter().sum::<f64>() / w.iter().sum::<f64>();
    let terms: Vec<f64> = w
        .iter()
        .zip(logs.rewards())
        .map(|(w, r)| w * (r - sn) / wbar)
        .collect();
    assert!((e.snips.value - sn).abs() < 1e-12);
    assert!((e.snips.std_err - sd(&terms) / n.sqrt()).abs() < 1e-12);
    for est in [e.ips, e.snips, e.dm, e.dr] {
        assert!((est.normal.0 - (est.value - 1.959963984540054 * est.std_err)).abs() < 1e-12);
        let (lo, hi) = est.bootstrap.expect("resampled");
        assert!(lo < est.value && est.value < hi, "{est:?}");
        // The bootstrap interval is about as wide as the normal one.
        let ratio = (hi - lo) / (est.normal.1 - est.normal.0);
        assert!((0.7..1.4).contains(&ratio), "{est:?}");
    }
    // Seeded: the same seed gives the same interval, another seed another.
    let again = evaluate(
        &pi,
        &logs,
        &OpeOptions {
            bootstrap: 500,
            seed: 3,
            ..OpeOptions::default()
        },
    )
    .expect("evaluates");
    assert_eq!(e, again);
    let other = evaluate(
        &pi,
        &logs,
        &OpeOptions {
            bootstrap: 500,
            seed: 4,
            ..OpeOptions::default()
        },
    )
    .expect("evaluates");
    assert_ne!(e.ips.bootstrap, other.ips.bootstrap);
    // Clipping at M caps every weight.
    let c = evaluate(
        &pi,
        &logs,
        &OpeOptions {
            clip: Some(1.0),
            ..no_bootstrap()
        },
    )
    .expect("evaluates");
    assert!(c.mean_weight <= 1.0 && c.ips.value <= e.ips.value + 1e-12);
}

#[test]
fn ridge_matches_its_normal_equations() {
    // d = 2, one action: W = (XᵀX + λI)⁻¹ Xᵀr by hand.
    let rows = [([1.0, 0.5], 2.0), ([1.0, -1.0], 0.5), ([0.3, 2.0], 1.0)];
    let mut logs = History::new(2);
    for (x, r) in rows {
        logs.push(&x, 0, r, 0.5).expect("valid");
    }
    let lambda = 0.7;
    let model = Ridge::fit(&logs, 2, lambda).expect("fits");
    let (mut a, mut b, mut c, mut r0, mut r1) = (lambda, 0.0, lambda, 0.0, 0.0);
    for (x, r) in rows {
        a += x[0] * x[0];
        b += x[0] * x[1];
        c += x[1] * x[1];
        r0 += x[0] * r;
        r1 += x[1] * r;
    }
    let det = a * c - b * b;
    let w = [(c * r0 - b * r1) / det, (a * r1 - b * r0) / det];
    assert!(common::max_diff(&model.weights()[..2], &w) < 1e-12);
    // The action never taken predicts 0.
    assert_eq!(&model.weights()[2..], &[0.0, 0.0]);
    let mut q = vec![0.0; 2];
    model.predict_into(&[1.0, 1.0], &mut q).expect("valid");
    assert!((q[0] - w[0] - w[1]).abs() < 1e-12 && q[1] == 0.0);
}

#[test]
fn bad_logs_and_settings_are_refused() {
    let logs = collect(2, 50);
    let pi = target();
    assert!(evaluate(&pi, &History::new(M), &no_bootstrap()).is_err());
    assert!(
        evaluate(
            &pi,
            &logs,
            &OpeOptions {
                clip: Some(0.0),
                ..no_bootstrap()
            }
        )
        .is_err()
    );
    assert!(
        evaluate(
            &pi,
            &logs,
            &OpeOptions {
                ridge_lambda: 0.0,
                ..no_bootstrap()
            }
        )
        .is_err()
    );
    let wrong_d = LinearSoftmax::<f64>::new(K, M + 1).expect("valid");
    assert!(evaluate(&wrong_d, &logs, &no_bootstrap()).is_err());
    let mut bad = logs.clone();
    bad.push(&[1.0, 0.0, 0.0], 0, 1.0, 0.0)
        .expect("only the context is checked");
    let err = evaluate(&pi, &bad, &no_bootstrap()).expect_err("propensity 0");
    assert!(err.to_string().contains("row 50, column `p`: 0"), "{err}");
}

#[cfg(feature = "csv")]
mod csv_files {
    use super::*;

    fn dir() -> std::path::PathBuf {
        let d = std::env::temp_dir().join(format!("refit-ope-{}", std::process::id()));
        std::fs::create_dir_all(&d).expect("temp dir");
        d
    }

    #[test]
    fn logs_round_trip_through_csv_bit_for_bit() {
        let logs = collect(21, 100);
        let path = dir().join("round.csv");
        logs.write_csv(&path).expect("writes");
        let back = History::<f64>::read_csv(&path, K).expect("reads");
        assert_eq!(back, logs);
        let text = std::fs::read_to_string(&path).expect("read");
        assert!(text.starts_with("x0,x1,x2,a,r,p\n"));
    }

    #[test]
    fn bad_files_name_the_line_and_the_column() {
        let d = dir();
        let cases = [
            (
                "x0,x1,a,r,p\n1,2,0,1,0.5\n1,abc,0,1,0.5\n",
                "line 3, column `x1`: \"abc\" is not a number",
            ),
            ("x0,a,r,p\n1,0,1,0.5\n1,7,1,0.5\n", "line 3, column `a`: 7"),
            ("x0,a,r,p\n1,0,1,1.5\n", "line 2, column `p`: 1.5"),
            ("x0,a,r,p\n1,0,NaN,0.5\n", "line 2, column `r`: NaN"),
            ("x0,a,r\n1,0,1\n", "column `p`: (missing)"),
            ("x0,x2,a,r,p\n1,0,0,1,0.5\n", "column `x2`"),
            ("x0,a,r,p\n1,0,1,0.5\n1,0,1\n", "line: 3"),
            (
                "x0,x0,a,r,p\n1,2,0,1,0.5\n",
                "column `x0`: x0 is named twice",
            ),
        ];
        for (i, (text, want)) in cases.iter().enumerate() {
            let path = d.join(format!("bad{i}.csv"));
            std::fs::write(&path, text).expect("write");
            let err = History::<f64>::read_csv(&path, 3).expect_err(want);
            let msg = err.to_string();
            assert!(msg.contains(want), "{msg} should contain {want}");
            assert!(msg.contains(&format!("bad{i}.csv")), "{msg} names the file");
        }
        let err = History::<f64>::read_csv(d.join("none.csv"), 3).expect_err("missing");
        assert!(err.to_string().contains("none.csv"), "{err}");
    }

    #[test]
    fn wide_headers_are_matched_in_any_order() {
        // 20 000 context columns, written in reverse order, then a, r, p
        // first: every name is found wherever it stands (one pass over the
        // header, not one per name).
        let d = dir();
        let n = 20_000;
        let mut names = vec!["p".to_string(), "r".into(), "a".into()];
        names.extend((0..n).rev().map(|j| format!("x{j}")));
        let mut row = vec!["0.5".to_string(), "1".into(), "2".into()];
        row.extend((0..n).rev().map(|j| format!("{j}")));
        let path = d.join("wide.csv");
        std::fs::write(&path, format!("{}\n{}\n", names.join(","), row.join(","))).expect("write");
        let logs = History::<f64>::read_csv(&path, 3).expect("reads");
        assert_eq!((logs.len(), logs.context_dim()), (1, n));
        let it = logs.get(0).expect("row");
        assert_eq!((it.action, it.reward, it.propensity), (2, 1.0, 0.5));
        assert!(it.context.iter().enumerate().all(|(j, &v)| v == j as f64));
    }
}

#[test]
fn huge_action_counts_are_errors_not_panics() {
    let logs = collect(3, 10);
    assert!(Ridge::fit(&logs, usize::MAX, 1.0).is_err());
    assert!(Ridge::fit(&logs, usize::MAX / 2, 1.0).is_err());
}

/// Found by the `arrays` fuzz target: finite rewards over tiny propensities
/// overflow the IPS sum; the evaluation is a typed error, not an infinite
/// estimate.
#[test]
fn overflowing_estimates_are_errors() {
    let x = Array2::from_elem((2, 2), 0.5);
    let logs = History::from_arrays(
        x.view(),
        &[0, 1],
        &[7.340125902040228e-118, 4.823513611573676e285],
        &[2.418433348622282e-137, 1.054353429044551e-305],
        2,
    )
    .unwrap();
    let pi = LinearSoftmax::<f64>::new(2, 2).unwrap();
    match evaluate(&pi, &logs, &OpeOptions::default()) {
        Err(refit::Error::NonFiniteEstimate { estimator, value }) => {
            assert_eq!(estimator, "IPS");
            assert!(value.is_infinite());
        }
        other => panic!("expected NonFiniteEstimate, got {other:?}"),
    }
}

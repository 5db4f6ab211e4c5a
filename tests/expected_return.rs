//! The importance-weighted objectives: the expected return's gradient and
//! Hessian-vector products against finite differences, its tabular optimum
//! against the λ → 0 limit, a non-concave case whose local maxima the
//! multi-start finds, the importance-weighted log-likelihood's closed form
//! (probability matching), the signed surrogate through the trust region,
//! and the refit learner on the expected return.

#![allow(clippy::needless_range_loop)]

mod common;

use rand::RngExt;

use refit::history::History;
use refit::learner::{Learner, Refit, RefitConfig, Schedule};
use refit::objective::{Dataset, Estimator, ExpectedReturn, LogLikelihood, Objective, Weighting};
use refit::policy::{ActionFeatures, LinearSoftmax, Policy, Tabular};
use refit::solve::{MultiStartOptions, Options, fit, multi_start, trust_region};

/// Random logs: contexts N(0, I), actions and propensities from a random
/// softmax logging policy, rewards N(action-dependent mean, 1).
fn random_logs(seed: u64, n: usize, k: usize, d: usize) -> History<f64> {
    let mut rng = common::rng(seed);
    let logging = {
        let mut p = LinearSoftmax::<f64>::new(k, d).expect("valid");
        p.set_params(&common::normals(&mut rng, k * d, 0.5))
            .expect("finite");
        p
    };
    let mut logs = History::new(d);
    for _ in 0..n {
        let x = common::normals(&mut rng, d, 1.0);
        let pi = logging.probabilities(&x).expect("valid");
        let a = refit::policy::sample_action(&pi, &mut rng);
        let r = a as f64 * 0.3 + common::normals(&mut rng, 1, 1.0)[0];
        logs.push(&x, a, r, pi[a]).expect("valid");
    }
    logs
}

fn estimators() -> Vec<(Estimator<f64>, Option<f64>)> {
    vec![
        (Estimator::Ips, None),
        (Estimator::Ips, Some(2.0)),
        (Estimator::SelfNormalized, None),
        (Estimator::SelfNormalized, Some(3.0)),
        (Estimator::VariancePenalty(0.7), None),
        (Estimator::VariancePenalty(1.5), Some(2.5)),
    ]
}

/// Central differences of J and of ∇J against the exact gradient and the
/// Hessian-vector product, at random θ and v.
fn check_derivatives<P: Policy<f64>>(obj: &mut ExpectedReturn<f64, P>, seed: u64) {
    let mut rng = common::rng(seed);
    let p = obj.dim();
    for _ in 0..5 {
        let theta = common::normals(&mut rng, p, 0.5);
        let v = common::normals(&mut rng, p, 1.0);
        let mut g = vec![0.0; p];
        obj.value_grad(&theta, &mut g).expect("finite");
        let h = 1e-6;
        let mut tp = theta.clone();
        let mut gp = vec![0.0; p];
        let mut gm = vec![0.0; p];
        let mut fd = vec![0.0; p];
        for j in 0..p {
            tp[j] = theta[j] + h;
            let a = obj.value_grad(&tp, &mut gp).expect("finite");
            tp[j] = theta[j] - h;
            let b = obj.value_grad(&tp, &mut gm).expect("finite");
            tp[j] = theta[j];
            fd[j] = (a - b) / (2.0 * h);
        }
        assert!(
            common::rel_err(&g, &fd) < 1e-6,
            "gradient: {:?} vs {:?}",
            g,
            fd
        );
        // −∇²J v against central differences of the exact gradient.
        let shift =
            |s: f64| -> Vec<f64> { theta.iter().zip(&v).map(|(t, vi)| t + s * h * vi).collect() };
        obj.value_grad(&shift(1.0), &mut gp).expect("finite");
        obj.value_grad(&shift(-1.0), &mut gm).expect("finite");
        let fd_hv: Vec<f64> = gp
            .iter()
            .zip(&gm)
            .map(|(a, b)| -(a - b) / (2.0 * h))
            .collect();
        obj.value_grad(&theta, &mut g).expect("finite");
        let mut hv = vec![0.0; p];
        obj.neg_hess_vec(&v, &mut hv).expect("finite");
        assert!(
            common::rel_err(&hv, &fd_hv) < 1e-5,
            "Hessian-vector product: {:?} vs {:?}",
            hv,
            fd_hv
        );
        check_dense_hessian(obj, &theta);
    }
}

/// Where the objective forms the dense −∇²J, each column of its lower
/// triangle equals the Hessian-vector product with a unit vector.
fn check_dense_hessian<O: Objective<f64>>(obj: &mut O, theta: &[f64]) {
    let p = obj.dim();
    let mut g = vec![0.0; p];
    obj.value_grad(theta, &mut g).expect("finite");
    let mut dense = vec![0.0; p * p];
    if !obj.neg_hessian(&mut dense).expect("finite") {
        return;
    }
    let (mut e, mut col) = (vec![0.0; p], vec![0.0; p]);
    for j in 0..p {
        e[j] = 1.0;
        obj.neg_hess_vec(&e, &mut col).expect("finite");
        e[j] = 0.0;
        for i in j..p {
            let scale = 1.0 + col[i].abs();
            assert!(
                (dense[i * p + j] - col[i]).abs() < 1e-9 * scale,
                "entry ({i}, {j}): {} vs {}",
                dense[i * p + j],
                col[i]
            );
        }
    }
}

#[test]
fn expected_return_derivatives_match_finite_differences() {
    let (k, d) = (4, 3);
    for (i, (est, clip)) in estimators().into_iter().enumerate() {
        let logs = random_logs(10 + i as u64, 60, k, d);
        let policy = LinearSoftmax::<f64>::new(k, d).expect("valid");
        let mut obj = ExpectedReturn::new(policy, logs, 0.1, est, clip).expect("valid");
        check_derivatives(&mut obj, 100 + i as u64);
        let mut obj = obj.summed();
        check_derivatives(&mut obj, 150 + i as u64);
        // The context-free policy (one π for every row).
        let logs = random_logs(400 + i as u64, 50, k, 1);
        let mut obj = ExpectedReturn::new(Tabular::new(k).expect("valid"), logs, 0.2, est, clip)
            .expect("valid");
        check_derivatives(&mut obj, 450 + i as u64);
        // The conditional logit (logits linear, another layout).
        let mut rng = common::rng(200 + i as u64);
        let mut logs = History::new(k * 2);
        for _ in 0..40 {
            let x = common::normals(&mut rng, k * 2, 1.0);
            let a = (x[0].abs() * 10.0) as usize % k;
            logs.push(&x, a, x[1], 1.0 / k as f64).expect("valid");
        }
        let adf = ActionFeatures::<f64>::new(k, 2).expect("valid");
        let mut obj = ExpectedReturn::new(adf, logs, 0.3, est, clip).expect("valid");
        check_derivatives(&mut obj, 300 + i as u64);
    }
}

/// A policy whose logits are not linear in θ (z_a = θ_a³/3 + θ_a x): the
/// objective then takes Hessian products by differences of its gradient.
#[derive(Debug, Clone)]
struct Cubic(Vec<f64>);

impl Policy<f64> for Cubic {
    fn num_actions(&self) -> usize {
        self.0.len()
    }
    fn context_dim(&self) -> usize {
        1
    }
    fn num_params(&self) -> usize {
        self.0.len()
    }
    fn params_into(&self, out: &mut [f64]) -> refit::Result<()> {
        out.copy_from_slice(&self.0);
        Ok(())
    }
    fn set_params(&mut self, theta: &[f64]) -> refit::Result<()> {
        self.0.copy_from_slice(theta);
        Ok(())
    }
    fn logits_into(&self, x: &[f64], out: &mut [f64]) -> refit::Result<()> {
        for (o, t) in out.iter_mut().zip(&self.0) {
            *o = t * t * t / 3.0 + t * x[0];
        }
        Ok(())
    }
    fn add_logits_vjp(&self, x: &[f64], c: &[f64], grad: &mut [f64]) -> refit::Result<()> {
        for ((g, t), ca) in grad.iter_mut().zip(&self.0).zip(c) {
            *g += ca * (t * t + x[0]);
        }
        Ok(())
    }
    fn logits_linear(&self) -> bool {
        false
    }
}

#[test]
fn nonlinear_policies_get_difference_hessian_products() {
    let mut rng = common::rng(7);
    let mut logs = History::new(1);
    for _ in 0..30 {
        let x = common::normals(&mut rng, 1, 1.0);
        let a = usize::from(x[0] > 0.0) + usize::from(x[0] > 1.0);
        logs.push(&x, a, 1.0 + x[0], 1.0 / 3.0).expect("valid");
    }
    for (est, clip) in estimators() {
        let mut obj =
            ExpectedReturn::new(Cubic(vec![0.0; 3]), logs.clone(), 0.2, est, clip).expect("valid");
        check_derivatives(&mut obj, 8);
    }
}

#[test]
fn tabular_expected_return_tends_to_the_best_arm_as_lambda_vanishes() {
    // Logged uniformly over 3 arms; the IPS estimate of each arm's mean
    // is c_a = (1/n) Σ_{a_t = a} r_t / μ_t.
    let mut rng = common::rng(3);
    let means = [0.2, 0.5, 0.35];
    let mut logs = History::new(1);
    let n = 300;
    for _ in 0..n {
        let a = (common::normals(&mut rng, 1, 1.0)[0].abs() * 1000.0) as usize % 3;
        let r = means[a] + 0.1 * common::normals(&mut rng, 1, 1.0)[0];
        logs.push(&[1.0], a, r, 1.0 / 3.0).expect("valid");
    }
    let mut c = [0.0; 3];
    for it in logs.iter() {
        c[it.action] += it.reward / it.propensity / n as f64;
    }
    let best = (0..3)
        .max_by(|&a, &b| c[a].total_cmp(&c[b]))
        .expect("3 arms");
    let vmax = c[best];
    let mut last_gap = f64::INFINITY;
    for lambda in [1e-1, 1e-2, 1e-3, 1e-4] {
        let mut obj = ExpectedReturn::new(
            Tabular::<f64>::new(3).expect("valid"),
            logs.clone(),
            lambda,
            Estimator::Ips,
            None,
        )
        .expect("valid");
        let mut theta = vec![0.0; 3];
        let opts = Options {
            tol: 1e-12,
            max_iter: 500,
            ..Options::default()
        };
        let report = trust_region(&mut obj, &mut theta, &opts).expect("solves");
        assert!(report.converged() && !report.saddle, "{report:?}");
        // The optimality condition, from the definition: π_a (c_a − π·c) = λ θ_a.
        let mut tab = Tabular::<f64>::new(3).expect("valid");
        tab.set_params(&theta).expect("finite");
        let pi = tab.probabilities(&[1.0]).expect("valid");
        let pc: f64 = pi.iter().zip(&c).map(|(p, c)| p * c).sum();
        for a in 0..3 {
            let lhs = pi[a] * (c[a] - pc);
            assert!(
                (lhs - lambda * theta[a]).abs() < 1e-9 * (1.0 + c[a].abs()),
                "stationarity at arm {a}"
            );
        }
        // The value climbs to max_a c_a, and π concentrates on that arm.
        let gap = vmax - pc;
        assert!(
            gap >= -1e-12 && gap < last_gap,
            "gap {gap} after {last_gap}"
        );
        last_gap = gap;
        if lambda <= 1e-4 {
            assert!(pi[best] > 0.99, "π = {pi:?}");
            assert!(gap < 1e-3 * vmax);
        }
    }
}

#[test]
fn multi_start_finds_the_local_maxima_of_a_non_concave_return() {
    // One weight difference δ = θ_1 − θ_0 serves contexts x = 1 and x = −3,
    // where action 1 paid 1: V(δ) = σ(δ) + σ(−3δ) (×2, μ = 1/2) has an
    // interior maximum at δ < 0 and, with a small penalty, another at a
    // large δ > 0, with a minimum between.
    let mut logs = History::new(1);
    logs.push(&[1.0], 1, 1.0, 0.5).expect("valid");
    logs.push(&[-3.0], 1, 1.0, 0.5).expect("valid");
    let policy = LinearSoftmax::<f64>::new(2, 1).expect("valid");
    let mut obj = ExpectedReturn::new(policy, logs, 1e-3, Estimator::Ips, None).expect("valid");
    let ms = multi_start(
        &mut obj,
        &[0.0, 0.0],
        &MultiStartOptions {
            starts: 16,
            seed: 5,
            spread: 3.0,
            ..MultiStartOptions::default()
        },
        &Options::default(),
    )
    .expect("solves");
    assert!(ms.maxima.len() >= 2, "{:?}", ms.maxima);
    let deltas: Vec<f64> = ms.maxima.iter().map(|m| m.theta[1] - m.theta[0]).collect();
    assert!(
        deltas.iter().any(|&d| d < 0.0) && deltas.iter().any(|&d| d > 0.0),
        "{deltas:?}"
    );
    // Each is a certified local maximum: stationary, −∇²J ⪰ 0.
    for m in &ms.maxima {
        let mut g = vec![0.0; 2];
        obj.value_grad(&m.theta, &mut g).expect("finite");
        assert!(common::max_diff(&g, &[0.0, 0.0]) < 1e-8);
    }
    for r in &ms.reports {
        if r.converged() && !r.saddle {
            assert!(r.min_curvature.expect("checked") >= -1e-7, "{r:?}");
        }
    }
    assert_eq!(
        ms.maxima.iter().map(|m| m.hits).sum::<usize>() + ms.failed(),
        16
    );
    // Deterministic: the same seed gives the same maxima, bit for bit.
    let again = multi_start(
        &mut obj,
        &[0.0, 0.0],
        &MultiStartOptions {
            starts: 16,
            seed: 5,
            spread: 3.0,
            ..MultiStartOptions::default()
        },
        &Options::default(),
    )
    .expect("solves");
    assert_eq!(ms, again);
}

#[test]
fn trust_region_escapes_a_saddle_and_reports_curvature() {
    // Started exactly at the minimum between the two maxima of the
    // previous test's objective (δ where V'(δ) = λ δ), the gradient is 0;
    // the curvature check sees J curving up and steps off.
    let mut logs = History::new(1);
    logs.push(&[1.0], 1, 1.0, 0.5).expect("valid");
    logs.push(&[-3.0], 1, 1.0, 0.5).expect("valid");
    let mut obj = ExpectedReturn::new(
        LinearSoftmax::<f64>::new(2, 1).expect("valid"),
        logs,
        1e-3,
        Estimator::Ips,
        None,
    )
    .expect("valid");
    // Find the stationary minimum by bisection on the gradient along θ = (−δ/2, δ/2).
    let grad_at = |obj: &mut ExpectedReturn<f64, LinearSoftmax<f64>>, d: f64| {
        let mut g = vec![0.0; 2];
        obj.value_grad(&[-d / 2.0, d / 2.0], &mut g)
            .expect("finite");
        g[1] - g[0]
    };
    let (mut lo, mut hi) = (0.0, 3.0);
    assert!(grad_at(&mut obj, lo) < 0.0 && grad_at(&mut obj, hi) > 0.0);
    for _ in 0..200 {
        let mid = 0.5 * (lo + hi);
        if grad_at(&mut obj, mid) < 0.0 {
            lo = mid
        } else {
            hi = mid
        }
    }
    let mut theta = vec![-lo / 2.0, lo / 2.0];
    let report = trust_region(&mut obj, &mut theta, &Options::default()).expect("solves");
    assert!(
        report.converged() && !report.saddle && report.negative_curvature,
        "{report:?}"
    );
    assert!(
        (theta[1] - theta[0] - lo).abs() > 0.1,
        "moved off the minimum"
    );
    // With the check off, the solver stops where the gradient vanishes.
    let mut theta = vec![-lo / 2.0, lo / 2.0];
    let off = Options {
        curvature_steps: 0,
        ..Options::default()
    };
    let report = trust_region(&mut obj, &mut theta, &off).expect("solves");
    assert!(report.min_curvature.is_none() && report.iterations == 0);
}

#[test]
fn importance_weighted_likelihood_matches_probabilities_to_estimated_means() {
    // Tabular, λ = 0: the maximizer of Σ (r/μ) log π is π ∝ Q̂ (IPS means),
    // that of Σ r log π is π ∝ R (summed reward).
    let mut l_iw = Refit::<f64, _>::tabular(
        3,
        RefitConfig {
            lambda: 0.0,
            weighting: Weighting::Importance,
            ..RefitConfig::default()
        },
    )
    .expect("valid");
    let mut l_id = Refit::<f64, _>::tabular(
        3,
        RefitConfig {
            lambda: 0.0,
            ..RefitConfig::default()
        },
    )
    .expect("valid");
    let logged = [
        (0, 1.0, 0.8),
        (0, 1.0, 0.8),
        (0, 0.0, 0.8),
        (1, 1.0, 0.1),
        (2, 0.5, 0.1),
    ];
    for &(a, r, mu) in &logged {
        l_iw.learn(&[1.0], a, r, mu).expect("valid");
        l_id.learn(&[1.0], a, r, mu).expect("valid");
    }
    let mut p = vec![0.0; 3];
    l_iw.policy_into(&[1.0], &mut p).expect("valid");
    let q = [2.0 / 0.8, 1.0 / 0.1, 0.5 / 0.1];
    let total: f64 = q.iter().sum();
    for a in 0..3 {
        assert!((p[a] - q[a] / total).abs() < 1e-12);
    }
    l_id.policy_into(&[1.0], &mut p).expect("valid");
    assert!((p[0] - 2.0 / 3.5).abs() < 1e-12);
}

#[test]
fn signed_surrogate_is_solved_by_the_trust_region() {
    // Negative rewards make rows of negative weight: not concave.
    let mut rng = common::rng(17);
    let (k, d) = (3, 2);
    let mut data = Dataset::<f64>::new(k, d, false).expect("valid").signed();
    for _ in 0..50 {
        let x = common::normals(&mut rng, d, 1.0);
        let a = usize::from(x[0] > 0.0) + usize::from(x[1] > 0.5);
        data.push(&x, a, x[0] - 0.2)
            .expect("signed weights are allowed");
    }
    assert!(data.has_negative_row());
    let policy = LinearSoftmax::<f64>::new(k, d).expect("valid");
    let f = fit(&policy, &data, 1.0, &Options::default()).expect("solves");
    assert!(f.report.converged() && !f.report.saddle, "{:?}", f.report);
    let mut obj =
        LogLikelihood::new(policy.clone(), data.clone(), 1.0, Weighting::Signed).expect("valid");
    assert!(!obj.concave());
    let mut g = vec![0.0; k * d];
    obj.value_grad(&f.theta, &mut g).expect("finite");
    assert!(g.iter().all(|v| v.abs() < 1e-7), "{g:?}");
    // λ = 0 is refused: a negative weight makes J unbounded.
    let err = LogLikelihood::new(
        Tabular::<f64>::new(k).expect("valid"),
        Dataset::new(k, 1, true).expect("valid"),
        0.0,
        Weighting::Signed,
    )
    .expect_err("unbounded");
    assert!(err.to_string().contains("lambda"), "{err}");
    // Through the learner: signed rewards are learned, every refit certified.
    let mut learner = Refit::<f64, _>::linear(
        k,
        d,
        RefitConfig {
            weighting: Weighting::Signed,
            ..RefitConfig::default()
        },
    )
    .expect("valid");
    for _ in 0..40 {
        let x = common::normals(&mut rng, d, 1.0);
        let dec = learner.act(&x, &mut rng).expect("acts");
        learner
            .learn(
                &x,
                dec.action,
                x[0] * (dec.action as f64 - 1.0),
                dec.propensity,
            )
            .expect("valid");
    }
    learner.act(&[0.3, 0.1], &mut rng).expect("acts");
    assert!(learner.last_report().expect("refit").converged());
}

#[test]
fn refit_on_the_expected_return_learns_a_bandit() {
    // Bernoulli-like rewards on a 3-armed tabular bandit, refit on the IPS
    // return before every action.
    let means = [0.2, 0.8, 0.5];
    let obj = ExpectedReturn::new(
        Tabular::<f64>::new(3).expect("valid"),
        History::new(1),
        0.01,
        Estimator::Ips,
        None,
    )
    .expect("valid");
    let mut learner = Refit::with_objective(obj, Schedule::default()).expect("valid");
    let mut rng = common::rng(23);
    let mut best = 0;
    for t in 0..400 {
        let dec = learner.act(&[1.0], &mut rng).expect("acts");
        let r = f64::from(u8::from(rng.random::<f64>() < means[dec.action]));
        learner
            .learn(&[1.0], dec.action, r, dec.propensity)
            .expect("valid");
        let rep = learner.last_report();
        if t > 0 {
            assert!(rep.expect("refit").converged(), "{rep:?}");
        }
        if t >= 300 && dec.action == 1 {
            best += 1;
        }
    }
    assert!(best > 70, "best arm {best}/100 in the last 100 steps");
}

#[test]
fn expected_return_refuses_bad_settings() {
    let logs = History::<f64>::new(1);
    let t = || Tabular::<f64>::new(2).expect("valid");
    assert!(ExpectedReturn::new(t(), logs.clone(), 0.0, Estimator::Ips, None).is_err());
    assert!(ExpectedReturn::new(t(), logs.clone(), -1.0, Estimator::Ips, None).is_err());
    assert!(ExpectedReturn::new(t(), logs.clone(), 1.0, Estimator::Ips, Some(0.0)).is_err());
    assert!(
        ExpectedReturn::new(
            t(),
            logs.clone(),
            1.0,
            Estimator::VariancePenalty(f64::NAN),
            None
        )
        .is_err()
    );
    let mut bad = History::new(1);
    bad.push(&[1.0], 5, 1.0, 0.5)
        .expect("only the context is checked");
    let err = ExpectedReturn::new(t(), bad, 1.0, Estimator::Ips, None).expect_err("action 5 of 2");
    assert!(err.to_string().contains("row 0, column `a`: 5"), "{err}");
    let mut obj = ExpectedReturn::new(t(), logs, 1.0, Estimator::Ips, None).expect("valid");
    use refit::objective::HistoryObjective;
    let at = t();
    assert!(
        obj.push(&at, &[1.0], 0, 1.0, 0.0, Default::default())
            .is_err()
    );
    assert!(
        obj.push(&at, &[f64::NAN], 0, 1.0, 0.5, Default::default())
            .is_err()
    );
    assert_eq!(obj.points(), 0);
}

#[test]
fn grouped_sums_agree_with_the_row_by_row_estimate() {
    // Without clipping the rows are grouped by context (one group for a
    // tabular policy, a few for repeated contexts); a clip that never
    // binds takes the row-by-row path. Both must agree.
    let mut rng = common::rng(77);
    let k = 4;
    let contexts = [[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]];
    let mut logs = History::new(2);
    for i in 0..90 {
        let z = common::normals(&mut rng, 2, 1.0);
        let a = (z[0].abs() * 7.0) as usize % k;
        let mu = 0.1 + 0.8 * (z[0].abs() % 1.0);
        logs.push(&contexts[i % 3], a, z[1] + 0.5 * a as f64, mu)
            .expect("valid");
    }
    let tab_logs = History::from_arrays(
        ndarray::Array2::from_elem((logs.len(), 1), 1.0).view(),
        logs.actions(),
        logs.rewards(),
        logs.propensities(),
        k,
    )
    .expect("valid");
    for (est, _) in estimators() {
        let check = |grouped: &mut dyn Objective<f64>,
                     rows: &mut dyn Objective<f64>,
                     p: usize,
                     rng: &mut rand_chacha::ChaCha8Rng| {
            let theta = common::normals(rng, p, 0.8);
            let v = common::normals(rng, p, 1.0);
            let (mut g1, mut g2, mut h1, mut h2) =
                (vec![0.0; p], vec![0.0; p], vec![0.0; p], vec![0.0; p]);
            let v1 = grouped.value_grad(&theta, &mut g1).expect("finite");
            let v2 = rows.value_grad(&theta, &mut g2).expect("finite");
            grouped.neg_hess_vec(&v, &mut h1).expect("finite");
            rows.neg_hess_vec(&v, &mut h2).expect("finite");
            assert!(
                (v1 - v2).abs() < 1e-12 * (1.0 + v2.abs()),
                "{est:?}: {v1} vs {v2}"
            );
            assert!(
                common::rel_err(&g1, &g2) < 1e-11,
                "{est:?}: {g1:?} vs {g2:?}"
            );
            assert!(
                common::rel_err(&h1, &h2) < 1e-10,
                "{est:?}: {h1:?} vs {h2:?}"
            );
        };
        let lin = || LinearSoftmax::<f64>::new(k, 2).expect("valid");
        let mut grouped = ExpectedReturn::new(lin(), logs.clone(), 0.3, est, None).expect("valid");
        let mut rows =
            ExpectedReturn::new(lin(), logs.clone(), 0.3, est, Some(1e300)).expect("valid");
        check(&mut grouped, &mut rows, 2 * k, &mut rng);
        let tab = || Tabular::<f64>::new(k).expect("valid");
        let mut grouped =
            ExpectedReturn::new(tab(), tab_logs.clone(), 0.3, est, None).expect("valid");
        let mut rows =
            ExpectedReturn::new(tab(), tab_logs.clone(), 0.3, est, Some(1e300)).expect("valid");
        check(&mut grouped, &mut rows, k, &mut rng);
    }
}

#[test]
fn single_precision_objectives_solve_too() {
    // f32: the expected return and the importance-weighted log-likelihood
    // on the same logs, certified at the f32 tolerance.
    let logs64 = random_logs(31, 200, 3, 2);
    let mut logs = History::<f32>::new(2);
    for it in logs64.iter() {
        let x: Vec<f32> = it.context.iter().map(|v| *v as f32).collect();
        logs.push(&x, it.action, it.reward as f32, it.propensity as f32)
            .expect("valid");
    }
    for est in [
        Estimator::Ips,
        Estimator::SelfNormalized,
        Estimator::VariancePenalty(0.5f32),
    ] {
        let mut obj = ExpectedReturn::new(
            LinearSoftmax::<f32>::new(3, 2).expect("valid"),
            logs.clone(),
            0.1,
            est,
            None,
        )
        .expect("valid");
        let mut theta = vec![0.0f32; 6];
        let report = trust_region(&mut obj, &mut theta, &Options::default()).expect("solves");
        assert!(report.converged() && !report.saddle, "{est:?}: {report:?}");
    }
    let mut data = Dataset::<f32>::new(3, 2, true).expect("valid");
    for it in logs.iter() {
        data.push(it.context, it.action, it.reward.max(0.0) / it.propensity)
            .expect("valid");
    }
    let f = fit(
        &LinearSoftmax::<f32>::new(3, 2).expect("valid"),
        &data,
        1.0,
        &Options::default(),
    )
    .expect("solves");
    assert!(f.report.converged());
}

/// The warm refit of a non-concave objective (lagged Newton on a dense
/// Hessian, curvature certified): every refit of a contextual run on the
/// summed IPS return converges with a positive curvature estimate, and at
/// the end the refit's θ is a local maximum by the exact dense Hessian
/// (a Cholesky factorization of −∇²J succeeds) with the value a cold trust
/// region reaches from the same start.
#[test]
fn warm_refits_of_the_expected_return_are_certified_local_maxima() {
    use refit::env::{Environment, LinearContextual};
    for estimator in [Estimator::Ips, Estimator::SelfNormalized] {
        let (k, d) = (4, 3);
        let mut env_rng = common::rng(31);
        let mut env = LinearContextual::<f64>::random(k, d, 0.5, &mut env_rng).expect("env");
        let policy = LinearSoftmax::new(k, d).expect("valid");
        let obj = ExpectedReturn::new(policy, History::new(d), 0.5, estimator, None)
            .expect("valid")
            .summed();
        let mut learner = Refit::with_objective(obj, Schedule::default()).expect("valid");
        let mut rng = common::rng(32);
        let mut x = vec![0.0; d];
        for t in 0..300 {
            env.next_context(&mut env_rng, &mut x).expect("context");
            let dec = learner.act(&x, &mut rng).expect("acts");
            if t > 0 {
                let rep = learner.last_report().expect("refit");
                assert!(rep.converged(), "step {t}: {rep:?}");
                assert!(
                    rep.min_curvature.is_some_and(|c| c > 0.0) && !rep.saddle,
                    "step {t}: {rep:?}"
                );
            }
            let r = env.reward(dec.action, &mut env_rng).expect("reward");
            learner
                .learn(&x, dec.action, r, dec.propensity)
                .expect("learns");
        }
        learner.refit_now().expect("refit");
        let theta = learner.theta();
        let mut obj = learner.objective().clone();
        let p = obj.dim();
        let mut g = vec![0.0; p];
        let value = obj.value_grad(&theta, &mut g).expect("finite");
        let mut h = vec![0.0; p * p];
        assert!(obj.neg_hessian(&mut h).expect("dense"));
        // Cholesky of the lower triangle: positive definite at a maximum.
        for j in 0..p {
            let s = h[j * p + j] - (0..j).map(|l| h[j * p + l] * h[j * p + l]).sum::<f64>();
            assert!(
                s > 0.0,
                "{estimator:?}: −∇²J not positive definite at pivot {j}"
            );
            h[j * p + j] = s.sqrt();
            for i in j + 1..p {
                let s = h[i * p + j] - (0..j).map(|l| h[i * p + l] * h[j * p + l]).sum::<f64>();
                h[i * p + j] = s / h[j * p + j];
            }
        }
        let mut cold = theta.clone();
        let rep = trust_region(&mut obj, &mut cold, &Options::default()).expect("solves");
        assert!(rep.converged());
        assert!(
            (rep.value - value).abs() <= 1e-9 * (1.0 + value.abs()),
            "{estimator:?}: warm {value} vs cold {}",
            rep.value
        );
    }
}

/// A policy whose logits are not linear in θ (the dense Hessian from
/// Hessian-vector products) is refit by the same solver, certified.
#[test]
fn warm_refits_of_a_nonlinear_policy_are_certified() {
    let obj = ExpectedReturn::new(
        Cubic(vec![0.1, -0.2, 0.3]),
        History::new(1),
        0.5,
        Estimator::Ips,
        None,
    )
    .expect("valid")
    .summed();
    let mut learner = Refit::with_objective(obj, Schedule::default()).expect("valid");
    let mut rng = common::rng(41);
    let means = [0.3, 0.6, 0.4];
    for t in 0..150 {
        let x = [rng.random_range(-0.5..0.5)];
        let dec = learner.act(&x, &mut rng).expect("acts");
        if t > 0 {
            let rep = learner.last_report().expect("refit");
            assert!(rep.converged() && !rep.saddle, "step {t}: {rep:?}");
        }
        let r = f64::from(u8::from(rng.random::<f64>() < means[dec.action]));
        learner
            .learn(&x, dec.action, r, dec.propensity)
            .expect("learns");
    }
}

//! The score and the Hessian-vector product against central finite differences.

mod common;

use ndarray::Array2;
use rand::RngExt;
use refit::policy::{LinearSoftmax, Policy, Tabular};

fn mat(k: usize, d: usize, v: &[f64]) -> Array2<f64> {
    Array2::from_shape_vec((k, d), v.to_vec()).expect("k·d values")
}

fn log_prob_at(pi: &LinearSoftmax<f64>, theta: &[f64], x: &[f64], a: usize) -> f64 {
    let mut p = pi.clone();
    let (k, d) = (p.num_actions(), p.context_dim());
    p.set_params(mat(k, d, theta).as_slice().expect("standard layout"))
        .expect("finite params");
    p.log_prob(x, a).expect("valid input")
}

fn score_at(pi: &LinearSoftmax<f64>, theta: &[f64], x: &[f64], a: usize) -> Vec<f64> {
    let mut p = pi.clone();
    let (k, d) = (p.num_actions(), p.context_dim());
    p.set_params(mat(k, d, theta).as_slice().expect("standard layout"))
        .expect("finite params");
    let mut g = vec![0.0; theta.len()];
    p.score_into(x, a, &mut g).expect("valid input");
    g
}

#[test]
fn score_matches_central_differences() {
    let mut rng = common::rng(11);
    for case in 0..60 {
        let k = rng.random_range(2..=20);
        let d = rng.random_range(1..=16);
        let theta = common::normals(&mut rng, k * d, 0.5);
        let x = common::normals(&mut rng, d, 1.0);
        let a = rng.random_range(0..k);
        let pi = LinearSoftmax::new(k, d).expect("valid shape");
        let g = score_at(&pi, &theta, &x, a);
        let h = 1e-5;
        let fd: Vec<f64> = (0..k * d)
            .map(|i| {
                let mut tp = theta.clone();
                let mut tm = theta.clone();
                tp[i] += h;
                tm[i] -= h;
                (log_prob_at(&pi, &tp, &x, a) - log_prob_at(&pi, &tm, &x, a)) / (2.0 * h)
            })
            .collect();
        let err = common::rel_err(&g, &fd);
        assert!(
            err <= 1e-6,
            "case {case} (K={k}, d={d}): relative error {err}"
        );
    }
}

#[test]
fn hessian_vector_matches_central_differences_of_the_score() {
    let mut rng = common::rng(12);
    for case in 0..60 {
        let k = rng.random_range(2..=20);
        let d = rng.random_range(1..=16);
        let theta = common::normals(&mut rng, k * d, 0.5);
        let x = common::normals(&mut rng, d, 1.0);
        let v = common::normals(&mut rng, k * d, 1.0);
        let a = rng.random_range(0..k);
        let mut pi = LinearSoftmax::new(k, d).expect("valid shape");
        pi.set_params(mat(k, d, &theta).as_slice().expect("standard layout"))
            .expect("finite");
        let mut hv = vec![0.0; k * d];
        pi.hessian_vector_into(&x, 0, &v, &mut hv)
            .expect("valid input");
        let h = 1e-5;
        let tp: Vec<f64> = theta.iter().zip(&v).map(|(t, vi)| t + h * vi).collect();
        let tm: Vec<f64> = theta.iter().zip(&v).map(|(t, vi)| t - h * vi).collect();
        let gp = score_at(&pi, &tp, &x, a);
        let gm = score_at(&pi, &tm, &x, a);
        let fd: Vec<f64> = gp
            .iter()
            .zip(&gm)
            .map(|(p, m)| (p - m) / (2.0 * h))
            .collect();
        let err = common::rel_err(&hv, &fd);
        assert!(
            err <= 1e-6,
            "case {case} (K={k}, d={d}): relative error {err}"
        );
    }
}

#[test]
fn tabular_agrees_with_linear_at_unit_context() {
    let mut rng = common::rng(13);
    for _ in 0..50 {
        let k = rng.random_range(1..=30);
        let theta = common::normals(&mut rng, k, 3.0);
        let mut tab = Tabular::new(k).expect("k >= 1");
        tab.set_params(mat(k, 1, &theta).as_slice().expect("standard layout"))
            .expect("finite");
        let lin = tab.to_linear();
        let x = [1.0];
        let pt = tab.probabilities(&x).expect("valid");
        let pl = lin.probabilities(&x).expect("valid");
        assert!(common::rel_err(&pt, &pl) <= 1e-15);
        let a = rng.random_range(0..k);
        let (mut st, mut sl) = (vec![0.0; k], vec![0.0; k]);
        tab.score_into(&x, a, &mut st).expect("valid");
        lin.score_into(&x, a, &mut sl).expect("valid");
        assert!(common::rel_err(&st, &sl) <= 1e-15);
        let v = common::normals(&mut rng, k, 1.0);
        tab.hessian_vector_into(&x, 0, &v, &mut st).expect("valid");
        lin.hessian_vector_into(&x, 0, &v, &mut sl).expect("valid");
        assert!(common::rel_err(&st, &sl) <= 1e-15);
        let lt = tab.log_prob(&x, a).expect("valid");
        let ll = lin.log_prob(&x, a).expect("valid");
        assert!((lt - ll).abs() <= 1e-13 * (1.0 + ll.abs()));
    }
}

/// The objective's Hessian-vector product holds at the remembered θ even
/// after points were pushed since the last evaluation, and agrees with the
/// dense Hessian.
#[test]
fn objective_hessian_vector_after_a_push_matches_the_dense_hessian() {
    use refit::objective::{Dataset, LogLikelihood, Objective, Weighting};
    let mut rng = common::rng(31);
    let (k, d, n) = (3, 2, 20);
    let x = Array2::from_shape_vec((n, d), common::normals(&mut rng, n * d, 1.0)).expect("n×d");
    let actions: Vec<usize> = (0..n).map(|i| i % k).collect();
    let w: Vec<f64> = (0..n).map(|i| 0.5 + (i % 4) as f64).collect();
    let data = Dataset::from_points(x.view(), &actions, &w, k, false).expect("data");
    let policy = LinearSoftmax::new(k, d).expect("policy");
    let mut obj = LogLikelihood::new(policy, data, 0.3, Weighting::Identity).expect("objective");
    let theta = common::normals(&mut rng, k * d, 0.5);
    let mut g = vec![0.0; k * d];
    obj.value_grad(&theta, &mut g).expect("finite");
    obj.push_weighted(&[0.7, -1.2], 1, 2.0)
        .expect("valid point");
    let v = common::normals(&mut rng, k * d, 1.0);
    let mut hv = vec![0.0; k * d];
    obj.neg_hess_vec(&v, &mut hv).expect("valid");
    let m = k * d;
    let mut h = vec![0.0; m * m];
    obj.neg_hessian(&mut h).expect("valid");
    let dense: Vec<f64> = (0..m)
        .map(|i| {
            (0..m)
                .map(|j| if j <= i { h[i * m + j] } else { h[j * m + i] } * v[j])
                .sum()
        })
        .collect();
    assert!(common::rel_err(&hv, &dense) <= 1e-12, "{hv:?} vs {dense:?}");
}

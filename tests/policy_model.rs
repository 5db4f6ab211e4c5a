//! The policy model over flat parameters: the conditional logit (action-
//! dependent features) against finite differences and an independent
//! solver, both learners on a linear ADF bandit, and a user's own policy,
//! written with the public API only, under both learners.

#![allow(clippy::needless_range_loop)] // index loops read as the math does

mod common;

use refit::env::{Environment, LinearAdf};
use refit::learner::{Baseline, Incremental, Learner, Refit, RefitConfig, StepSize};
use refit::objective::{Dataset, LogLikelihood, Objective, Weighting};
use refit::policy::{ActionFeatures, Policy, check_len};
use refit::run::Runner;
use refit::solve::{Options, fit};

/// Σ_a w_a log π_a(x) at θ, from the definition (max-shifted log-sum-exp).
fn loglik_row(k: usize, p: usize, theta: &[f64], x: &[f64], a: usize) -> f64 {
    let z: Vec<f64> = (0..k)
        .map(|b| (0..p).map(|j| theta[j] * x[b * p + j]).sum())
        .collect();
    let m = z.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    let lse = m + z.iter().map(|v| (v - m).exp()).sum::<f64>().ln();
    z[a] - lse
}

#[test]
fn adf_score_and_hessian_match_finite_differences() {
    let mut rng = common::rng(41);
    let (k, p) = (5, 3);
    for _ in 0..20 {
        let theta = common::normals(&mut rng, p, 0.7);
        let x = common::normals(&mut rng, k * p, 1.0);
        let mut pi = ActionFeatures::<f64>::new(k, p).expect("valid");
        pi.set_params(&theta).expect("finite");
        for a in 0..k {
            // The score against central differences of log π.
            let mut g = vec![0.0; p];
            pi.score_into(&x, a, &mut g).expect("valid");
            let h = 1e-6;
            for j in 0..p {
                let (mut tp, mut tm) = (theta.clone(), theta.clone());
                tp[j] += h;
                tm[j] -= h;
                let fd = (loglik_row(k, p, &tp, &x, a) - loglik_row(k, p, &tm, &x, a)) / (2.0 * h);
                assert!((g[j] - fd).abs() < 1e-8, "score {j}: {} vs {fd}", g[j]);
            }
            assert!(
                (pi.log_prob(&x, a).expect("finite") - loglik_row(k, p, &theta, &x, a)).abs()
                    < 1e-13
            );
            // The Hessian-vector product against differences of the score.
            let v = common::normals(&mut rng, p, 1.0);
            let mut hv = vec![0.0; p];
            pi.hessian_vector_into(&x, a, &v, &mut hv).expect("valid");
            let score_at = |t: &[f64]| {
                let mut q = pi.clone();
                q.set_params(t).expect("finite");
                let mut s = vec![0.0; p];
                q.score_into(&x, a, &mut s).expect("valid");
                s
            };
            let tp: Vec<f64> = theta.iter().zip(&v).map(|(t, vi)| t + h * vi).collect();
            let tm: Vec<f64> = theta.iter().zip(&v).map(|(t, vi)| t - h * vi).collect();
            let (sp, sm) = (score_at(&tp), score_at(&tm));
            for j in 0..p {
                let fd = (sp[j] - sm[j]) / (2.0 * h);
                assert!((hv[j] - fd).abs() < 1e-7, "hv {j}: {} vs {fd}", hv[j]);
            }
        }
    }
}

/// Dense Newton on the ADF log-likelihood, written out here from the
/// definition with its own Gaussian elimination: the independent oracle.
fn newton_oracle(
    k: usize,
    p: usize,
    xs: &[Vec<f64>],
    actions: &[usize],
    w: &[f64],
    lambda: f64,
) -> Vec<f64> {
    let mut theta = vec![0.0; p];
    for _ in 0..100 {
        let mut g: Vec<f64> = theta.iter().map(|t| -lambda * t).collect();
        let mut hm = vec![vec![0.0; p]; p];
        for i in 0..p {
            hm[i][i] = lambda;
        }
        for (s, x) in xs.iter().enumerate() {
            let z: Vec<f64> = (0..k)
                .map(|b| (0..p).map(|j| theta[j] * x[b * p + j]).sum())
                .collect();
            let m = z.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
            let e: Vec<f64> = z.iter().map(|v| (v - m).exp()).collect();
            let tot: f64 = e.iter().sum();
            let pi: Vec<f64> = e.iter().map(|v| v / tot).collect();
            let mean: Vec<f64> = (0..p)
                .map(|j| (0..k).map(|b| pi[b] * x[b * p + j]).sum())
                .collect();
            for j in 0..p {
                g[j] += w[s] * (x[actions[s] * p + j] - mean[j]);
                for l in 0..p {
                    let second: f64 = (0..k).map(|b| pi[b] * x[b * p + j] * x[b * p + l]).sum();
                    hm[j][l] += w[s] * (second - mean[j] * mean[l]);
                }
            }
        }
        if g.iter().fold(0.0f64, |a, v| a.max(v.abs())) < 1e-12 {
            break;
        }
        // Solve hm d = g by Gaussian elimination with partial pivoting.
        let mut a: Vec<Vec<f64>> = hm.clone();
        let mut b = g.clone();
        for c in 0..p {
            let piv = (c..p)
                .max_by(|&i, &j| a[i][c].abs().total_cmp(&a[j][c].abs()))
                .expect("rows");
            a.swap(c, piv);
            b.swap(c, piv);
            for r in c + 1..p {
                let f = a[r][c] / a[c][c];
                for q in c..p {
                    a[r][q] -= f * a[c][q];
                }
                b[r] -= f * b[c];
            }
        }
        let mut d = vec![0.0; p];
        for r in (0..p).rev() {
            let s: f64 = (r + 1..p).map(|q| a[r][q] * d[q]).sum();
            d[r] = (b[r] - s) / a[r][r];
        }
        for j in 0..p {
            theta[j] += d[j];
        }
    }
    theta
}

#[test]
fn adf_fit_matches_an_independent_newton_solver() {
    let mut rng = common::rng(42);
    let (k, p, n, lambda) = (4, 3, 60, 0.4);
    let xs: Vec<Vec<f64>> = (0..n)
        .map(|_| common::normals(&mut rng, k * p, 1.0))
        .collect();
    let actions: Vec<usize> = (0..n).map(|i| (i * 3 + i / 5) % k).collect();
    let w: Vec<f64> = (0..n).map(|i| 0.2 + (i % 5) as f64 * 0.3).collect();
    let mut data = Dataset::new(k, k * p, true).expect("shape");
    for (s, x) in xs.iter().enumerate() {
        data.push(x, actions[s], w[s]).expect("valid point");
    }
    let policy = ActionFeatures::new(k, p).expect("valid");
    let options = Options {
        tol: 1e-13,
        ..Options::default()
    };
    let f = fit(&policy, &data, lambda, &options).expect("fit");
    assert!(f.report.converged(), "{:?}", f.report);
    let oracle = newton_oracle(k, p, &xs, &actions, &w, lambda);
    let diff = common::max_diff(&f.theta, &oracle);
    assert!(
        diff < 1e-10,
        "fit vs oracle: {diff} ({:?} vs {oracle:?})",
        f.theta
    );
    // The objective's gradient at the optimum, through the public trait.
    let mut obj = LogLikelihood::new(policy, data, lambda, Weighting::Identity).expect("objective");
    let mut g = vec![0.0; p];
    obj.value_grad(&oracle, &mut g).expect("finite");
    assert!(g.iter().all(|v| v.abs() < 1e-10), "{g:?}");
}

#[test]
fn both_learners_find_the_best_action_of_a_linear_adf_bandit() {
    let (k, p) = (6, 4);
    let runner = Runner::new(600, 6).expect("runner");
    let env = |rng: &mut refit::run::ChaCha8Rng| LinearAdf::<f64>::random(k, p, 0.3, rng);
    let online = runner
        .run(env, || {
            Incremental::new(
                ActionFeatures::new(k, p)?,
                StepSize::Constant(0.1),
                Baseline::RunningMean,
            )
        })
        .expect("online run");
    // w = exp(2r) weights each logged action by its reward; a shift
    // (w = r + c, nearly constant for large c) would mostly imitate the
    // learner's own past actions, the lock-in online_vs_refit measures.
    let config = RefitConfig {
        lambda: 1.0,
        weighting: Weighting::Exp(2.0),
        ..RefitConfig::default()
    };
    let refit = runner
        .run(env, || Refit::new(ActionFeatures::new(k, p)?, config))
        .expect("refit run");
    let tail = |s: &refit::run::Summary| s.optimal.mean[500..].iter().sum::<f64>() / 100.0;
    // Uniform play finds the best of 6 actions 1/6 of the time.
    assert!(tail(&online) > 0.6, "online: {}", tail(&online));
    assert!(tail(&refit) > 0.6, "refit: {}", tail(&refit));
    let regret = |s: &refit::run::Summary| s.regret.mean[500..].iter().sum::<f64>() / 100.0;
    assert!(regret(&online) < 0.25 && regret(&refit) < 0.25);
}

/// A user's own policy, from the public API only: one bias per action and
/// a per-action slope on a one-dimensional context.
#[derive(Debug, Clone)]
struct BiasSlope {
    k: usize,
    /// θ = [b_0 … b_{K−1}, s_0 … s_{K−1}]: z_a = b_a + s_a · x.
    theta: Vec<f64>,
}

impl Policy<f64> for BiasSlope {
    fn num_actions(&self) -> usize {
        self.k
    }
    fn context_dim(&self) -> usize {
        1
    }
    fn num_params(&self) -> usize {
        2 * self.k
    }
    fn params_into(&self, out: &mut [f64]) -> refit::Result<()> {
        check_len("out", out.len(), 2 * self.k)?;
        out.copy_from_slice(&self.theta);
        Ok(())
    }
    fn set_params(&mut self, theta: &[f64]) -> refit::Result<()> {
        check_len("theta", theta.len(), 2 * self.k)?;
        if let Some((index, v)) = theta.iter().enumerate().find(|(_, v)| !v.is_finite()) {
            return Err(refit::Error::NonFiniteParameter { index, value: *v });
        }
        self.theta.copy_from_slice(theta);
        Ok(())
    }
    fn logits_into(&self, x: &[f64], out: &mut [f64]) -> refit::Result<()> {
        check_len("out", out.len(), self.k)?;
        for (a, z) in out.iter_mut().enumerate() {
            *z = self.theta[a] + self.theta[self.k + a] * x[0];
        }
        Ok(())
    }
    fn add_logits_vjp(&self, x: &[f64], c: &[f64], grad: &mut [f64]) -> refit::Result<()> {
        check_len("grad", grad.len(), 2 * self.k)?;
        for (a, &ca) in c.iter().take(self.k).enumerate() {
            grad[a] += ca;
            grad[self.k + a] += ca * x[0];
        }
        Ok(())
    }
}

/// Two actions; action 1 pays x, action 0 pays −x, with x ~ N(0, 1): the
/// best action flips with the sign of the context.
#[derive(Debug, Clone)]
struct SignBandit {
    x: f64,
}

impl Environment<f64> for SignBandit {
    fn num_actions(&self) -> usize {
        2
    }
    fn context_dim(&self) -> usize {
        1
    }
    fn next_context<R: rand::Rng + ?Sized>(
        &mut self,
        rng: &mut R,
        out: &mut [f64],
    ) -> refit::Result<()> {
        check_len("out", out.len(), 1)?;
        use rand_distr::Distribution;
        self.x = rand_distr::StandardNormal.sample(rng);
        out[0] = self.x;
        Ok(())
    }
    fn expected_rewards(&self, out: &mut [f64]) -> refit::Result<()> {
        self.expected_rewards_at(&[self.x], out)
    }
    fn expected_rewards_at(&self, x: &[f64], out: &mut [f64]) -> refit::Result<()> {
        check_len("out", out.len(), 2)?;
        refit::policy::check_context(x, 1)?;
        out[0] = -x[0];
        out[1] = x[0];
        Ok(())
    }
    fn reward<R: rand::Rng + ?Sized>(&mut self, action: usize, _rng: &mut R) -> refit::Result<f64> {
        refit::policy::check_action(action, 2)?;
        Ok(if action == 1 { self.x } else { -self.x })
    }
}

#[test]
fn a_users_own_policy_plays_under_both_learners() {
    let make = || BiasSlope {
        k: 2,
        theta: vec![0.0; 4],
    };
    let runner = Runner::new(400, 6).expect("runner");
    let env = |_: &mut refit::run::ChaCha8Rng| Ok(SignBandit { x: 0.0 });
    let online = runner
        .run(env, || {
            Incremental::new(make(), StepSize::Constant(0.2), Baseline::RunningMean)
        })
        .expect("online");
    let config = RefitConfig {
        lambda: 0.5,
        weighting: Weighting::Exp(2.0),
        ..RefitConfig::default()
    };
    let refit = runner
        .run(env, || Refit::new(make(), config))
        .expect("refit");
    let tail = |s: &refit::run::Summary| s.optimal.mean[300..].iter().sum::<f64>() / 100.0;
    assert!(tail(&online) > 0.75, "online: {}", tail(&online));
    assert!(tail(&refit) > 0.75, "refit: {}", tail(&refit));
    // Every refit of the user's policy is certified.
    let mut l = Refit::new(make(), config).expect("valid");
    let mut rng = common::rng(3);
    let mut e = SignBandit { x: 0.0 };
    let mut x = [0.0];
    for _ in 0..200 {
        e.next_context(&mut rng, &mut x).expect("context");
        let d = l.act(&x, &mut rng).expect("act");
        if let Some(rep) = l.last_report() {
            assert!(rep.converged(), "{rep:?}");
        }
        let r = e.reward(d.action, &mut rng).expect("reward");
        l.learn(&x, d.action, r, d.propensity).expect("learn");
    }
    // Its learned slope points the right way: action 1 for positive x.
    let theta = l.theta();
    assert!(theta[3] - theta[2] > 0.5, "{theta:?}");
}

#[test]
fn linear_hessian_rows_match_row_by_row_pullbacks() {
    // The blocked product of LinearSoftmax::add_logits_hessian_rows against
    // add_logits_hessian one row at a time, on shapes whose triangles pad
    // differently (d(d + 1)/2 = 1, 6, 15, 36; K(K + 1)/2 = 1, 10, 28, 55).
    use rand::RngExt;
    use refit::policy::LinearSoftmax;
    let mut rng = common::rng(77);
    for &(k, d, rows) in &[(1, 1, 3), (4, 3, 50), (7, 5, 300), (10, 8, 257)] {
        let pi = LinearSoftmax::<f64>::new(k, d).expect("policy");
        let p = k * d;
        let xs: Vec<f64> = (0..rows * d).map(|_| rng.random_range(-2.0..2.0)).collect();
        let mut packed = Vec::new();
        let mut full = Vec::new();
        for _ in 0..rows {
            let mut c = vec![0.0; k * k];
            for a in 0..k {
                for b in 0..=a {
                    let v = rng.random_range(-1.0..1.0);
                    c[a * k + b] = v;
                    c[b * k + a] = v;
                    packed.push(v);
                }
            }
            full.push(c);
        }
        let mut h_rows = vec![0.5; p * p];
        let mut scratch = Vec::new();
        pi.add_logits_hessian_rows(&xs, &packed, &mut h_rows, &mut scratch)
            .expect("rows");
        let mut h_one = vec![0.5; p * p];
        for (x, c) in xs.chunks_exact(d).zip(&full) {
            pi.add_logits_hessian(x, c, &mut h_one).expect("row");
        }
        for i in 0..p {
            for j in 0..=i {
                let (a, b) = (h_rows[i * p + j], h_one[i * p + j]);
                assert!(
                    (a - b).abs() <= 1e-12 * (1.0 + b.abs()) * rows as f64,
                    "K {k} d {d}: entry ({i}, {j}) {a} vs {b}"
                );
            }
            // The upper triangle is not touched.
            for j in i + 1..p {
                assert_eq!(h_rows[i * p + j], 0.5);
            }
        }
        // A second call with the same scratch adds the same again.
        pi.add_logits_hessian_rows(&xs, &packed, &mut h_rows, &mut scratch)
            .expect("rows");
        assert!(
            ((h_rows[0] - 0.5) - 2.0 * (h_one[0] - 0.5)).abs() <= 1e-10 * (1.0 + h_one[0].abs())
        );
        // Lengths that do not fit are errors.
        assert!(
            pi.add_logits_hessian_rows(&xs[1..], &packed, &mut h_rows, &mut scratch)
                .is_err()
        );
        assert!(
            pi.add_logits_hessian_rows(&xs, &packed[1..], &mut h_rows, &mut scratch)
                .is_err()
        );
    }
}

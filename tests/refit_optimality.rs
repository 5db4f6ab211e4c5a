//! The refit learner's optima, checked by their optimality conditions,
//! against a cold solve, against closed forms, and against an independent
//! optimizer.

#![allow(clippy::needless_range_loop)] // index loops read as the math does

mod common;

use ndarray::{Array2, ArrayView2};
use rand::RngExt;
use refit::Error;
use refit::env::{Environment, FiniteContext, LinearContextual};
use refit::learner::{Learner, Refit, RefitConfig};
use refit::objective::{Dataset, LogLikelihood, Objective, Weighting};
use refit::policy::{LinearSoftmax, Tabular};
use refit::solve::{Method, Options, fit_arrays};

/// Plays `env` against a refit learner for `steps` steps, calling `check`
/// after every refit.
fn play<E: Environment<f64>>(
    learner: &mut Refit<f64>,
    env: &mut E,
    steps: usize,
    seed: u64,
    mut check: impl FnMut(&Refit<f64>),
) {
    let mut env_rng = common::rng(seed);
    let mut rng = common::rng(seed + 1000);
    let mut x = vec![0.0; env.context_dim()];
    for _ in 0..steps {
        env.next_context(&mut env_rng, &mut x).expect("context");
        let before = learner.refits();
        let d = learner.act(&x, &mut rng).expect("act");
        if learner.refits() > before {
            check(learner);
        }
        let r = env.reward(d.action, &mut env_rng).expect("reward");
        learner.learn(&x, d.action, r, d.propensity).expect("learn");
    }
}

/// ∇J at θ recomputed from scratch through the public objective.
fn gradient_at(
    history_x: ArrayView2<f64>,
    actions: &[usize],
    w: &[f64],
    k: usize,
    lambda: f64,
    theta: &[f64],
) -> (f64, f64) {
    let d = history_x.ncols();
    let data = Dataset::from_points(history_x, actions, w, k, false).expect("data");
    let scale = 1.0 + w.iter().map(|v| v.abs()).sum::<f64>();
    let policy = LinearSoftmax::new(k, d).expect("policy");
    let mut obj = LogLikelihood::new(policy, data, lambda, Weighting::Identity).expect("objective");
    let flat: Vec<f64> = theta.to_vec();
    let mut g = vec![0.0; flat.len()];
    obj.value_grad(&flat, &mut g).expect("finite");
    (g.iter().fold(0.0f64, |m, v| m.max(v.abs())), scale)
}

fn history_matrix(l: &Refit<f64>) -> Array2<f64> {
    let h = l.history();
    Array2::from_shape_vec((h.len(), h.context_dim()), h.contexts().to_vec()).expect("n×d")
}

/// Shifted rewards so that the identity weighting sees w ≥ 0.
const SHIFT: f64 = -5.0;

#[test]
fn every_refit_of_a_contextual_run_is_certified() {
    let mut env_rng = common::rng(1);
    let mut env = LinearContextual::<f64>::random(5, 4, 0.5, &mut env_rng).expect("env");
    let config = RefitConfig {
        lambda: 0.5,
        weighting: Weighting::Shift(SHIFT),
        ..RefitConfig::default()
    };
    let mut learner = Refit::linear(5, 4, config).expect("valid");
    let mut checked = 0;
    play(&mut learner, &mut env, 500, 2, |l| {
        let rep = l.last_report().expect("report");
        assert!(rep.converged(), "refit {}: {rep:?}", l.refits());
        assert!(rep.grad_norm <= rep.threshold);
        // Independently: the gradient of J at the learner's θ, from scratch.
        let w: Vec<f64> = l.history().rewards().iter().map(|r| r - SHIFT).collect();
        let (g, scale) = gradient_at(
            history_matrix(l).view(),
            l.history().actions(),
            &w,
            5,
            0.5,
            &l.theta(),
        );
        assert!(
            g <= 1e-9 * scale,
            "refit {}: |grad| {g} > {}",
            l.refits(),
            1e-9 * scale
        );
        checked += 1;
    });
    assert_eq!(checked, 499);
}

#[test]
fn warm_and_cold_starts_reach_the_same_theta() {
    let mut env_rng = common::rng(3);
    let mut env = LinearContextual::<f64>::random(6, 3, 0.3, &mut env_rng).expect("env");
    // The default tol (1e-9 relative to 1 + Σw) bounds ‖∇J‖∞ by about 1e-6
    // here, which lets θ differ by more than 1e-8 between two certified
    // optima; a tighter tol makes the comparison meaningful.
    let options = Options {
        tol: 1e-13,
        ..Options::default()
    };
    let config = RefitConfig {
        lambda: 0.2,
        weighting: Weighting::Exp(1.0),
        options,
        ..RefitConfig::default()
    };
    let mut learner = Refit::linear(6, 3, config).expect("valid");
    play(&mut learner, &mut env, 300, 4, |_| {});
    learner.refit_now().expect("refit");
    let w: Vec<f64> = learner
        .history()
        .rewards()
        .iter()
        .map(|r| r.exp())
        .collect();
    for method in [Method::Newton, Method::NewtonCg] {
        let cold = fit_arrays(
            history_matrix(&learner).view(),
            learner.history().actions(),
            &w,
            6,
            0.2,
            &Options { method, ..options },
            None,
        )
        .expect("fit");
        assert!(cold.report.converged(), "{method:?}: {:?}", cold.report);
        let diff = common::max_diff(&cold.theta, &learner.theta());
        assert!(diff <= 1e-8, "{method:?}: max |θ_warm − θ_cold| = {diff}");
    }
}

#[test]
fn tabular_closed_form_and_its_small_lambda_limit() {
    let mut rng = common::rng(5);
    let k = 4;
    let n = 200;
    let x = Array2::from_elem((n, 1), 1.0);
    let actions: Vec<usize> = (0..n).map(|_| rng.random_range(0..k)).collect();
    let w: Vec<f64> = (0..n).map(|_| rng.random_range(0.0..2.0)).collect();
    let mut r = vec![0.0; k];
    for (a, wi) in actions.iter().zip(&w) {
        r[*a] += wi;
    }
    let total: f64 = r.iter().sum();
    let closed =
        fit_arrays(x.view(), &actions, &w, k, 0.0, &Options::default(), None).expect("closed form");
    assert_eq!(closed.report.stop, refit::solve::StopReason::ClosedForm);
    for a in 0..k {
        let p = closed.theta[a * x.ncols()].exp();
        assert!((p - r[a] / total).abs() < 1e-15, "π*({a}) = {p}");
    }
    for lambda in [1e-8, 1e-7, 1e-6] {
        let f =
            fit_arrays(x.view(), &actions, &w, k, lambda, &Options::default(), None).expect("fit");
        assert!(f.report.converged(), "λ = {lambda}: {:?}", f.report);
        let z: Vec<f64> = (0..k).map(|a| f.theta[a * x.ncols()]).collect();
        let mut p = z.clone();
        refit::policy::softmax_in_place(&mut p).expect("finite");
        for a in 0..k {
            // The λ-optimum differs from π* by O(λ).
            assert!(
                (p[a] - r[a] / total).abs() < 1e3 * lambda,
                "λ = {lambda}: π({a}) = {}",
                p[a]
            );
        }
    }
}

#[test]
fn closed_form_gives_zero_to_untried_actions() {
    let mut l = Refit::<f64, Tabular<f64>>::tabular(
        3,
        RefitConfig {
            lambda: 0.0,
            ..RefitConfig::default()
        },
    )
    .expect("λ = 0 tabular");
    let mut rng = common::rng(6);
    l.learn(&[1.0], 1, 2.0, 1.0 / 3.0).expect("learn");
    l.learn(&[1.0], 2, 0.0, 1.0 / 3.0).expect("learn");
    for _ in 0..20 {
        let d = l.act(&[1.0], &mut rng).expect("act");
        assert_eq!(d.action, 1, "only action 1 has weight");
        assert_eq!(d.propensity, 1.0);
    }
    assert_eq!(l.probabilities().expect("acted"), &[0.0, 1.0, 0.0]);
    assert_eq!(l.theta()[0], f64::NEG_INFINITY);
}

#[test]
fn matches_plain_gradient_ascent() {
    // An independent optimizer: many small fixed steps of gradient ascent
    // written out here, on a small problem.
    let mut rng = common::rng(7);
    let (k, d, n, lambda) = (3, 2, 40, 0.7);
    let x = Array2::from_shape_fn((n, d), |_| rng.random_range(-1.0..1.0));
    let actions: Vec<usize> = (0..n).map(|_| rng.random_range(0..k)).collect();
    let w: Vec<f64> = (0..n).map(|_| rng.random_range(0.0..1.0)).collect();
    let mut theta = Array2::<f64>::zeros((k, d));
    for _ in 0..20_000 {
        let mut g = theta.mapv(|t| -lambda * t);
        for i in 0..n {
            let z: Vec<f64> = (0..k)
                .map(|a| (0..d).map(|j| theta[[a, j]] * x[[i, j]]).sum())
                .collect();
            let m = z.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
            let e: Vec<f64> = z.iter().map(|v| (v - m).exp()).collect();
            let s: f64 = e.iter().sum();
            for a in 0..k {
                let coef = w[i] * (f64::from(u8::from(a == actions[i])) - e[a] / s);
                for j in 0..d {
                    g[[a, j]] += coef * x[[i, j]];
                }
            }
        }
        theta = theta + 0.05 * g;
    }
    let f = fit_arrays(x.view(), &actions, &w, k, lambda, &Options::default(), None).expect("fit");
    assert!(f.report.converged());
    let diff = common::max_diff(&f.theta, theta.as_slice().expect("standard layout"));
    assert!(diff < 1e-9, "Newton vs gradient ascent: {diff}");
}

#[test]
fn compressed_and_uncompressed_histories_give_the_same_optimum() {
    let mut env_rng = common::rng(8);
    let env = FiniteContext::<f64>::random(4, 5, &mut env_rng).expect("env");
    let mut thetas = Vec::new();
    for compress in [true, false] {
        // A tight tol, so that two certified optima must agree to 1e-9
        // (‖θ − θ*‖ ≤ ‖∇J‖ / λ).
        let config = RefitConfig {
            lambda: 0.3,
            compress,
            options: Options {
                tol: 1e-13,
                ..Options::default()
            },
            ..RefitConfig::default()
        };
        let mut learner = Refit::linear(5, 4, config).expect("valid");
        play(&mut learner, &mut env.clone(), 300, 9, |_| {});
        learner.refit_now().expect("refit");
        if compress {
            assert_eq!(learner.dataset().rows(), 4, "four distinct contexts");
        } else {
            assert_eq!(learner.dataset().rows(), 300);
        }
        thetas.push(learner.theta());
    }
    let diff = common::max_diff(&thetas[0], &thetas[1]);
    assert!(diff <= 1e-9, "compressed vs uncompressed: {diff}");
}

#[test]
fn f32_refits_converge_to_their_own_tolerance() {
    let mut env_rng = common::rng(10);
    let mut env = LinearContextual::<f32>::random(4, 3, 0.3, &mut env_rng).expect("env");
    let config = RefitConfig {
        lambda: 0.5f32,
        weighting: Weighting::Shift(-5.0),
        ..RefitConfig::default()
    };
    let mut learner = Refit::linear(4, 3, config).expect("valid");
    let mut rng = common::rng(11);
    let mut x = vec![0.0f32; 3];
    for _ in 0..300 {
        env.next_context(&mut env_rng, &mut x).expect("context");
        let d = learner.act(&x, &mut rng).expect("act");
        let rep = learner.last_report();
        if let Some(rep) = rep {
            assert!(rep.converged(), "{rep:?}");
            assert!(rep.threshold <= 1e-4 * (1.0 + 300.0 * 10.0));
        }
        let r = env.reward(d.action, &mut env_rng).expect("reward");
        learner.learn(&x, d.action, r, d.propensity).expect("learn");
    }
}

#[test]
fn negative_weights_and_zero_lambda_are_refused() {
    let mut l = Refit::<f64>::linear(3, 2, RefitConfig::default()).expect("valid");
    l.learn(&[1.0, 0.0], 0, 1.0, 0.5).expect("valid");
    let before = (
        l.history().clone(),
        l.dataset().points(),
        l.pending(),
        l.theta(),
    );
    let e = l
        .learn(&[1.0, 0.0], 1, -0.5, 0.5)
        .expect_err("negative reward");
    assert!(matches!(e, Error::NegativeWeight { index: 1, .. }), "{e:?}");
    assert_eq!(
        (
            l.history().clone(),
            l.dataset().points(),
            l.pending(),
            l.theta()
        ),
        before
    );
    let e = Refit::<f64>::linear(
        3,
        2,
        RefitConfig {
            lambda: 0.0,
            ..RefitConfig::default()
        },
    )
    .expect_err("λ = 0 without closed form");
    assert!(matches!(e, Error::ZeroLambda), "{e:?}");
    let e = Refit::<f64>::linear(
        3,
        2,
        RefitConfig {
            lambda: -1.0,
            ..RefitConfig::default()
        },
    )
    .expect_err("λ < 0");
    assert!(matches!(e, Error::InvalidLambda { .. }));
    // fit refuses λ = 0 on non-identical contexts.
    let x = ndarray::array![[1.0, 0.0], [0.0, 1.0]];
    let e = fit_arrays(
        x.view(),
        &[0, 1],
        &[1.0, 1.0],
        2,
        0.0,
        &Options::default(),
        None,
    )
    .expect_err("λ = 0");
    assert!(matches!(e, Error::ZeroLambda), "{e:?}");
}

#[test]
fn an_iteration_cap_is_reported_or_with_strict_an_error_that_loses_nothing() {
    let mut env_rng = common::rng(12);
    let mut env = LinearContextual::<f64>::random(4, 3, 0.3, &mut env_rng).expect("env");
    let capped = |strict| RefitConfig {
        lambda: 0.1,
        weighting: Weighting::Exp(1.0),
        options: Options {
            max_iter: 1,
            ..Options::default()
        },
        strict,
        ..RefitConfig::default()
    };
    // Not strict: the cap is reported, never hidden.
    let mut lenient = Refit::linear(4, 3, capped(false)).expect("valid");
    let mut strict = Refit::linear(4, 3, capped(true)).expect("valid");
    let mut rng = common::rng(13);
    let mut x = vec![0.0; 3];
    let mut saw_cap = false;
    let mut saw_error = false;
    for _ in 0..60 {
        env.next_context(&mut env_rng, &mut x).expect("context");
        let d = lenient.act(&x, &mut rng).expect("lenient act");
        if let Some(rep) = lenient.last_report() {
            saw_cap |= rep.stop == refit::solve::StopReason::MaxIterations;
            assert!(rep.converged() || rep.stop == refit::solve::StopReason::MaxIterations);
        }
        let r = env.reward(d.action, &mut env_rng).expect("reward");
        lenient.learn(&x, d.action, r, d.propensity).expect("learn");
        // Strict: the same cap is an error; θ, the history and the
        // pending count are as before, and learning goes on.
        let before = (strict.theta(), strict.history().len(), strict.pending());
        match strict.act(&x, &mut common::rng(14)) {
            Ok(_) => {}
            Err(Error::NotConverged { iterations, .. }) => {
                saw_error = true;
                assert_eq!(iterations, 1);
                assert_eq!(
                    (strict.theta(), strict.history().len(), strict.pending()),
                    before
                );
            }
            Err(e) => panic!("unexpected {e:?}"),
        }
        strict
            .learn(&x, d.action, r, d.propensity)
            .expect("learning goes on");
    }
    assert!(saw_cap, "one Newton iteration should not always converge");
    assert!(saw_error);
}

#[test]
fn tabular_refits_by_the_o_k_solver_are_certified_and_match_the_generic_solver() {
    // A tabular learner refits by Newton with the softmax's
    // diagonal-plus-rank-one Hessian (O(K) per step) while its history's
    // total weight is not negative; the same objective through a linear
    // softmax with d = 1 at x = [1] goes through the generic dense Newton.
    // Every refit is checked against ∇J = W − Sπ − λθ written out here from
    // the history, and at tol 1e-13 the two learners' optima agree to
    // ‖∇J‖ / λ. With signed weights (rewards shifted by −0.2) the first
    // refits have S < 0 and take the non-concave solver, then S > 0 and
    // the O(K) one: the switch keeps every refit certified.
    use refit::env::Bernoulli;
    let (k, lambda) = (6, 0.4);
    for (weighting, shift) in [(Weighting::Identity, 0.0), (Weighting::Signed, -0.2)] {
        let config = RefitConfig {
            lambda,
            weighting,
            options: Options {
                tol: 1e-13,
                ..Options::default()
            },
            ..RefitConfig::default()
        };
        let means: Vec<f64> = (0..k).map(|a| 0.1 + 0.15 * a as f64).collect();
        let mut env = Bernoulli::new(means).expect("env");
        let mut tab = Refit::tabular(k, config).expect("valid");
        let (mut env_rng, mut rng) = (common::rng(31), common::rng(32));
        let mut x = [1.0];
        for step in 0..400 {
            env.next_context(&mut env_rng, &mut x).expect("context");
            let d = tab.act(&x, &mut rng).expect("act");
            if step > 0 {
                let rep = tab.last_report().expect("refit ran");
                assert!(
                    rep.converged() && rep.grad_norm <= rep.threshold,
                    "step {step} shift {shift}: {rep:?} {:?} {:?}",
                    tab.theta(),
                    tab.history().len()
                );
                let h = tab.history();
                let mut wa = vec![0.0; k];
                for (&a, &r) in h.actions().iter().zip(h.rewards()) {
                    wa[a] += r;
                }
                let s: f64 = wa.iter().sum();
                let theta = tab.theta();
                let m = theta.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
                let z: f64 = theta.iter().map(|t| (t - m).exp()).sum();
                let scale = 1.0 + h.rewards().iter().map(|r| r.abs()).sum::<f64>();
                for a in 0..k {
                    let g = wa[a] - s * (theta[a] - m).exp() / z - lambda * theta[a];
                    assert!(g.abs() <= 1e-11 * scale, "step {step}, action {a}: {g}");
                }
            }
            let r = env.reward(d.action, &mut env_rng).expect("reward") + shift;
            tab.learn(&x, d.action, r, d.propensity).expect("learn");
        }
        // The generic solver on the same history.
        let mut lin = Refit::linear(k, 1, config).expect("valid");
        let h = tab.history();
        for ((&a, &r), &p) in h.actions().iter().zip(h.rewards()).zip(h.propensities()) {
            lin.learn(&[1.0], a, r, p).expect("learn");
        }
        tab.refit_now().expect("refit");
        lin.refit_now().expect("refit");
        let diff = common::max_diff(&tab.theta(), &lin.theta());
        assert!(diff <= 1e-10, "O(K) vs dense Newton: {diff}");
    }
}

#[test]
fn f32_tabular_refits_converge_to_their_own_tolerance() {
    use refit::env::Bernoulli;
    let means: Vec<f32> = (0..8).map(|a| 0.05 + 0.1 * a as f32).collect();
    let mut env = Bernoulli::new(means).expect("env");
    let mut learner =
        Refit::<f32, Tabular<f32>>::tabular(8, RefitConfig::default()).expect("valid");
    let (mut env_rng, mut rng) = (common::rng(41), common::rng(42));
    let mut x = [1.0f32];
    for _ in 0..3000 {
        env.next_context(&mut env_rng, &mut x).expect("context");
        let d = learner.act(&x, &mut rng).expect("act");
        if let Some(rep) = learner.last_report() {
            assert!(rep.converged() && rep.grad_norm <= rep.threshold, "{rep:?}");
        }
        let r = env.reward(d.action, &mut env_rng).expect("reward");
        learner.learn(&x, d.action, r, d.propensity).expect("learn");
    }
}

/// The act of a tabular learner takes π from the O(K) solver, which formed
/// it at the optimum; it must be bit for bit what the policy forms at that
/// θ, for every K (padded or not), in f64 and f32.
fn tabular_act_probabilities_are_the_policys<F>(ks: &[usize], steps: usize)
where
    F: refit::real::Real,
{
    use refit::env::Bernoulli;
    use refit::policy::Policy;
    // f32 → f64 is exact and one-to-one: equal f64 bits, equal F bits.
    let bits = |v: F| v.to_f64().expect("finite").to_bits();
    for &k in ks {
        let means: Vec<F> = (0..k)
            .map(|a| F::from(0.05 + 0.9 * a as f64 / k as f64).expect("small"))
            .collect();
        let mut env = Bernoulli::new(means).expect("env");
        let mut learner = Refit::<F, Tabular<F>>::tabular(k, RefitConfig::default()).expect("k");
        let mut check = Tabular::<F>::new(k).expect("k");
        let (mut env_rng, mut rng) = (common::rng(51 + k as u64), common::rng(52));
        let mut x = [F::one()];
        let mut p = vec![F::zero(); k];
        for step in 0..steps {
            env.next_context(&mut env_rng, &mut x).expect("context");
            let d = learner.act(&x, &mut rng).expect("act");
            check.set_params(&learner.theta()).expect("finite");
            check.probabilities_into(&x, &mut p).expect("finite");
            let acted = learner.probabilities().expect("acted");
            let same = acted.iter().zip(&p).all(|(&a, &b)| bits(a) == bits(b));
            assert!(same, "K {k} step {step}: {acted:?} vs {p:?}");
            assert_eq!(bits(d.propensity), bits(p[d.action]));
            let r = env.reward(d.action, &mut env_rng).expect("reward");
            learner.learn(&x, d.action, r, d.propensity).expect("learn");
        }
    }
}

#[test]
fn tabular_act_probabilities_are_the_policys_bit_for_bit() {
    let ks: Vec<usize> = (1..=13).chain([16, 17, 31, 64]).collect();
    tabular_act_probabilities_are_the_policys::<f64>(&ks, 300);
    tabular_act_probabilities_are_the_policys::<f32>(&ks, 300);
}

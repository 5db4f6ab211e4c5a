//! The exploration baselines against closed forms and published properties:
//! the ridge model against a direct solve, LinUCB's scores, ε-greedy's and
//! SquareCB's exact propensities, the Beta posterior counts, the Monte Carlo
//! propensities of Thompson sampling against exact probabilities, each
//! learner's regret well below uniform's, and the refit cadences.

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};
use refit::env::{Bernoulli, Environment, LinearContextual};
use refit::learner::{
    BetaThompson, Cadence, EpsilonGreedy, Learner, LinTs, LinUcb, Refit, RefitConfig, Ridge,
    SquareCb,
};
use refit::run::Runner;

fn gaussian(rng: &mut ChaCha8Rng, n: usize) -> Vec<f64> {
    (0..n)
        .map(|_| {
            let z: f64 = StandardNormal.sample(rng);
            z
        })
        .collect()
}

/// Solves A y = b by Gaussian elimination with partial pivoting (A: n×n row-major).
fn solve(mut a: Vec<f64>, mut b: Vec<f64>) -> Vec<f64> {
    let n = b.len();
    for c in 0..n {
        let p = (c..n)
            .max_by(|&i, &j| a[i * n + c].abs().total_cmp(&a[j * n + c].abs()))
            .expect("rows");
        for j in 0..n {
            a.swap(c * n + j, p * n + j);
        }
        b.swap(c, p);
        for i in c + 1..n {
            let f = a[i * n + c] / a[c * n + c];
            for j in c..n {
                a[i * n + j] -= f * a[c * n + j];
            }
            b[i] -= f * b[c];
        }
    }
    let mut y = vec![0.0; n];
    for i in (0..n).rev() {
        let s: f64 = (i + 1..n).map(|j| a[i * n + j] * y[j]).sum();
        y[i] = (b[i] - s) / a[i * n + i];
    }
    y
}

/// The ridge model's θ_a, A_a⁻¹ and widths equal a direct solve of
/// (λI + Σ x xᵀ) θ = Σ r x on the points of each action.
#[test]
fn ridge_model_equals_a_direct_solve() {
    let (k, d, lambda) = (3, 4, 0.7);
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let mut m = Ridge::<f64>::new(k, d, lambda).expect("valid");
    let mut points: Vec<Vec<(Vec<f64>, f64)>> = vec![Vec::new(); k];
    for i in 0..60 {
        let x = gaussian(&mut rng, d);
        let a = i % k;
        let r = x[0] - 0.5 * x[1] + 0.1 * (i as f64).sin();
        m.update(&x, a, r).expect("update");
        points[a].push((x, r));
    }
    let probe = gaussian(&mut rng, d);
    let mut means = vec![0.0; k];
    let mut widths = vec![0.0; k];
    m.means_into(&probe, &mut means).expect("means");
    m.widths_into(&probe, &mut widths).expect("widths");
    for a in 0..k {
        let mut gram = vec![0.0; d * d];
        let mut rhs = vec![0.0; d];
        for i in 0..d {
            gram[i * d + i] = lambda;
        }
        for (x, r) in &points[a] {
            for i in 0..d {
                rhs[i] += r * x[i];
                for j in 0..d {
                    gram[i * d + j] += x[i] * x[j];
                }
            }
        }
        let theta = solve(gram.clone(), rhs);
        for (got, want) in m.theta()[a * d..(a + 1) * d].iter().zip(&theta) {
            assert!((got - want).abs() < 1e-12, "θ: {got} vs {want}");
        }
        let mean: f64 = theta.iter().zip(&probe).map(|(t, x)| t * x).sum();
        assert!((means[a] - mean).abs() < 1e-12);
        let u = solve(gram.clone(), probe.clone());
        let width = probe.iter().zip(&u).map(|(x, u)| x * u).sum::<f64>().sqrt();
        assert!(
            (widths[a] - width).abs() < 1e-12,
            "{} vs {width}",
            widths[a]
        );
        // A_a⁻¹ column by column.
        let inv = m.inverse(a).expect("action");
        for j in 0..d {
            let e: Vec<f64> = (0..d).map(|i| f64::from(u8::from(i == j))).collect();
            let col = solve(gram.clone(), e);
            for i in 0..d {
                assert!((inv[i * d + j] - col[i]).abs() < 1e-12);
            }
        }
        assert_eq!(m.counts()[a], points[a].len() as u64);
    }
}

/// LinUCB's scores are θ_aᵀx + α‖x‖_{A⁻¹} of the direct solve; it plays
/// the largest with propensity 1, and shares exact ties.
#[test]
fn linucb_scores_and_propensities() {
    let (k, d, alpha) = (4, 3, 0.8);
    let mut rng = ChaCha8Rng::seed_from_u64(2);
    let mut l = LinUcb::<f64>::new(k, d, 1.0, alpha).expect("valid");
    let mut act_rng = ChaCha8Rng::seed_from_u64(3);
    // Before any data every score is α‖x‖/√λ: a four-way tie.
    let x = gaussian(&mut rng, d);
    let dec = l.act(&x, &mut act_rng).expect("act");
    assert!((dec.propensity - 0.25).abs() < 1e-15);
    assert_eq!(l.probabilities(), Some(&[0.25; 4][..]));
    let mut model = Ridge::<f64>::new(k, d, 1.0).expect("valid");
    for i in 0..40 {
        let x = gaussian(&mut rng, d);
        let a = (i * 7) % k;
        let r = x[1] + 0.3 * a as f64;
        l.learn(&x, a, r, 0.25).expect("learn");
        model.update(&x, a, r).expect("update");
    }
    let x = gaussian(&mut rng, d);
    let (mut mean, mut width, mut score) = (vec![0.0; k], vec![0.0; k], vec![0.0; k]);
    model.means_into(&x, &mut mean).expect("means");
    model.widths_into(&x, &mut width).expect("widths");
    l.scores_into(&x, &mut score).expect("scores");
    let mut best = 0;
    for a in 0..k {
        assert_eq!(score[a], mean[a] + alpha * width[a]);
        if score[a] > score[best] {
            best = a;
        }
    }
    let dec = l.act(&x, &mut act_rng).expect("act");
    assert_eq!((dec.action, dec.propensity), (best, 1.0));
    let p = l.probabilities().expect("acted");
    assert_eq!(p.iter().sum::<f64>(), 1.0);
}

/// ε-greedy's propensity is ε/K + (1 − ε)/m on the m tied greedy actions.
#[test]
fn epsilon_greedy_propensities_are_exact() {
    let (k, eps) = (5, 0.2);
    let mut l = EpsilonGreedy::<f64>::new(k, 1, 1.0, eps).expect("valid");
    let mut rng = ChaCha8Rng::seed_from_u64(4);
    let dec = l.act(&[1.0], &mut rng).expect("act");
    // All tied at 0: uniform.
    assert!((dec.propensity - 0.2).abs() < 1e-15);
    l.learn(&[1.0], 1, 1.0, dec.propensity).expect("learn");
    l.learn(&[1.0], 3, 1.0, dec.propensity).expect("learn");
    l.act(&[1.0], &mut rng).expect("act");
    let p = l.probabilities().expect("acted");
    for (a, &pa) in p.iter().enumerate() {
        let want = eps / k as f64
            + if a == 1 || a == 3 {
                (1.0 - eps) / 2.0
            } else {
                0.0
            };
        assert!((pa - want).abs() < 1e-15, "{a}: {pa} vs {want}");
    }
    // Sampling follows π: the greedy pair takes 1 − ε + 2ε/K = 0.88.
    let n = 20_000;
    let greedy = (0..n)
        .filter(|_| {
            let a = l.act(&[1.0], &mut rng).expect("act").action;
            a == 1 || a == 3
        })
        .count() as f64
        / n as f64;
    assert!((greedy - 0.88).abs() < 4.0 * (0.88f64 * 0.12 / n as f64).sqrt());
}

/// SquareCB's probabilities have the inverse-gap form of Foster & Rakhlin
/// (2020) with γ_t = γ₀ t^ρ, sum to 1, and give the leader at least 1/K.
#[test]
fn squarecb_probabilities_have_the_inverse_gap_form() {
    let (k, d, g0, rho) = (6, 2, 10.0, 0.5);
    let mut l = SquareCb::<f64>::new(k, d, 1.0, g0, rho).expect("valid");
    let mut model = Ridge::<f64>::new(k, d, 1.0).expect("valid");
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    let mut act_rng = ChaCha8Rng::seed_from_u64(6);
    for t in 1..=50usize {
        let x = gaussian(&mut rng, d);
        let dec = l.act(&x, &mut act_rng).expect("act");
        let p = l.probabilities().expect("acted").to_vec();
        let mut y = vec![0.0; k];
        model.means_into(&x, &mut y).expect("means");
        let b = (0..k).fold(0, |b, a| if y[a] > y[b] { a } else { b });
        let gamma = g0 * (t as f64).powf(rho);
        let mut rest = 0.0;
        for a in (0..k).filter(|&a| a != b) {
            let want = 1.0 / (k as f64 + gamma * (y[b] - y[a]));
            assert!((p[a] - want).abs() < 1e-12, "t = {t}, a = {a}");
            rest += want;
        }
        assert!((p[b] - (1.0 - rest)).abs() < 1e-12);
        assert!(p[b] >= 1.0 / k as f64 - 1e-15);
        assert!((p.iter().sum::<f64>() - 1.0).abs() < 1e-12);
        assert_eq!(dec.propensity, p[dec.action]);
        let r = x[0] * (dec.action as f64 - 2.0);
        l.learn(&x, dec.action, r, dec.propensity).expect("learn");
        model.update(&x, dec.action, r).expect("update");
    }
}

/// n! as a float (exact for the small n used here).
fn factorial(n: u32) -> f64 {
    (1..=n).map(f64::from).product()
}

/// The Beta function at positive integers.
fn beta_fn(a: u32, b: u32) -> f64 {
    factorial(a - 1) * factorial(b - 1) / factorial(a + b - 1)
}

/// P(X_B > X_A) for X_A ~ Beta(a_a, b_a), X_B ~ Beta(a_b, b_b) at integer
/// parameters: Σ_{i<a_b} B(a_a + i, b_a + b_b) / ((b_b + i) B(1 + i, b_b) B(a_a, b_a)).
fn p_beta_greater(a_a: u32, b_a: u32, a_b: u32, b_b: u32) -> f64 {
    (0..a_b)
        .map(|i| {
            beta_fn(a_a + i, b_a + b_b)
                / (f64::from(b_b + i) * beta_fn(1 + i, b_b) * beta_fn(a_a, b_a))
        })
        .sum()
}

/// Beta–Bernoulli Thompson sampling keeps the posterior counts, and its
/// Monte Carlo propensity matches the exact P(argmax) within its error.
#[test]
fn beta_thompson_posterior_and_propensity() {
    let draws = 100_000;
    let mut l = BetaThompson::<f64>::new(2, 1.0, 1.0)
        .expect("valid")
        .with_propensity_draws(draws, 9)
        .expect("draws");
    // Arm 0: 2 successes, 1 failure → Beta(3, 2); arm 1: 1 and 3 → Beta(2, 4).
    for (a, r) in [
        (0, 1.0),
        (0, 1.0),
        (0, 0.0),
        (1, 1.0),
        (1, 0.0),
        (1, 0.0),
        (1, 0.0),
    ] {
        l.learn(&[1.0], a, r, 0.5).expect("learn");
    }
    assert_eq!(l.posterior(0).expect("arm"), (3.0, 2.0));
    assert_eq!(l.posterior(1).expect("arm"), (2.0, 4.0));
    let exact = p_beta_greater(3, 2, 2, 4); // P(arm 1 > arm 0)
    let mut p = [0.0; 2];
    l.policy_into(&[1.0], &mut p).expect("policy");
    let se = (exact * (1.0 - exact) / draws as f64).sqrt();
    assert!(
        (p[1] - exact).abs() < 4.0 * se + 1.0 / draws as f64,
        "{} vs {exact}",
        p[1]
    );
    assert!((p[0] + p[1] - 1.0).abs() < 1e-12);
    // The same state gives the same estimate; the action is drawn from the
    // posterior itself, so its frequency matches the exact probability too.
    let mut q = [0.0; 2];
    l.policy_into(&[1.0], &mut q).expect("policy");
    assert_eq!(p, q);
    let mut rng = ChaCha8Rng::seed_from_u64(10);
    let mut fresh = BetaThompson::<f64>::new(2, 1.0, 1.0).expect("valid");
    for (a, r) in [
        (0, 1.0),
        (0, 1.0),
        (0, 0.0),
        (1, 1.0),
        (1, 0.0),
        (1, 0.0),
        (1, 0.0),
    ] {
        fresh.learn(&[1.0], a, r, 0.5).expect("learn");
    }
    let n = 20_000;
    let mut ones = 0;
    for _ in 0..n {
        let mut c = fresh.clone();
        ones += c.act(&[1.0], &mut rng).expect("act").action;
    }
    let freq = ones as f64 / n as f64;
    assert!((freq - exact).abs() < 4.0 * (exact * (1.0 - exact) / n as f64).sqrt());
    // Rewards outside [0, 1] are refused.
    assert!(l.learn(&[1.0], 0, 1.5, 0.5).is_err());
    assert!(l.learn(&[1.0], 0, -0.1, 0.5).is_err());
}

/// Φ(z), the standard normal CDF, from erfc (Numerical Recipes' erfcc,
/// fractional error below 1.2e-7).
fn normal_cdf(z: f64) -> f64 {
    let x = -z / std::f64::consts::SQRT_2;
    let t = 1.0 / (1.0 + 0.5 * x.abs());
    let poly = -x * x - 1.265_512_23
        + t * (1.000_023_68
            + t * (0.374_091_96
                + t * (0.096_784_18
                    + t * (-0.186_288_06
                        + t * (0.278_868_07
                            + t * (-1.135_203_98
                                + t * (1.488_515_87 + t * (-0.822_152_23 + t * 0.170_872_77))))))));
    let erfc = t * poly.exp();
    let erfc = if x >= 0.0 { erfc } else { 2.0 - erfc };
    0.5 * erfc
}

/// P(a = argmax) for independent N(m_b, s_b²) scores, by Simpson's rule on
/// ∫ φ(z) Π_{b≠a} Φ((m_a + s_a z − m_b)/s_b) dz over [−9, 9].
fn gaussian_argmax(m: &[f64], s: &[f64], a: usize) -> f64 {
    let n = 4000;
    let h = 18.0 / n as f64;
    (0..=n)
        .map(|i| {
            let z = -9.0 + h * i as f64;
            let w = if i == 0 || i == n {
                1.0
            } else if i % 2 == 1 {
                4.0
            } else {
                2.0
            };
            let phi = (-0.5 * z * z).exp() / (2.0 * std::f64::consts::PI).sqrt();
            let v = m[a] + s[a] * z;
            let prod: f64 = (0..m.len())
                .filter(|&b| b != a)
                .map(|b| normal_cdf((v - m[b]) / s[b]))
                .product();
            w * phi * prod
        })
        .sum::<f64>()
        * h
        / 3.0
}

/// LinTS's Monte Carlo propensity matches P(argmax) of its Gaussian
/// posterior scores computed by quadrature, within its Monte Carlo error.
#[test]
fn lints_propensity_matches_the_exact_argmax_probability() {
    let (k, d, v) = (3, 2, 0.7);
    let draws = 200_000;
    let mut l = LinTs::<f64>::new(k, d, 1.0, v)
        .expect("valid")
        .with_propensity_draws(draws, 11)
        .expect("draws");
    let mut model = Ridge::<f64>::new(k, d, 1.0).expect("valid");
    let mut rng = ChaCha8Rng::seed_from_u64(12);
    for i in 0..12 {
        let x = gaussian(&mut rng, d);
        let a = i % k;
        let r = 0.2 * a as f64 + 0.5 * x[0];
        l.learn(&x, a, r, 0.5).expect("learn");
        model.update(&x, a, r).expect("update");
    }
    let x = [0.3, -0.4];
    let (mut m, mut s) = (vec![0.0; k], vec![0.0; k]);
    model.means_into(&x, &mut m).expect("means");
    model.widths_into(&x, &mut s).expect("widths");
    s.iter_mut().for_each(|w| *w *= v);
    let mut p = vec![0.0; k];
    l.policy_into(&x, &mut p).expect("policy");
    let mut total = 0.0;
    for (a, &pa) in p.iter().enumerate() {
        let exact = gaussian_argmax(&m, &s, a);
        total += exact;
        let se = (exact * (1.0 - exact) / draws as f64).sqrt();
        assert!(
            (pa - exact).abs() < 4.0 * se + 1.0 / draws as f64,
            "a = {a}: {pa} vs {exact}"
        );
    }
    assert!((total - 1.0).abs() < 1e-6, "quadrature total {total}");
    assert!((p.iter().sum::<f64>() - 1.0).abs() < 1e-12);
}

/// Bad hyperparameters are typed errors.
#[test]
fn bad_hyperparameters_are_refused() {
    use refit::Error;
    assert!(matches!(
        EpsilonGreedy::<f64>::new(3, 2, 1.0, 1.5),
        Err(Error::InvalidParameter {
            name: "epsilon",
            ..
        })
    ));
    assert!(EpsilonGreedy::<f64>::new(3, 2, 1.0, f64::NAN).is_err());
    assert!(matches!(
        EpsilonGreedy::<f64>::new(3, 2, 0.0, 0.1),
        Err(Error::InvalidLambda { .. })
    ));
    // A subnormal λ is positive and finite, but A⁻¹ = I/λ would be ∞
    // (found by the `learners` fuzz target).
    assert!(matches!(
        LinUcb::<f64>::new(3, 2, 9.7137e-319, 1.0),
        Err(Error::InvalidLambda { .. })
    ));
    assert!(matches!(
        SquareCb::<f32>::new(3, 2, 1e-40, 10.0, 0.5),
        Err(Error::InvalidLambda { .. })
    ));
    assert!(EpsilonGreedy::<f64>::new(3, 2, f64::MIN_POSITIVE, 0.1).is_ok());
    assert!(matches!(
        EpsilonGreedy::<f64>::new(0, 2, 1.0, 0.1),
        Err(Error::ZeroActions)
    ));
    assert!(matches!(
        LinUcb::<f64>::new(3, 0, 1.0, 1.0),
        Err(Error::ZeroContextDim)
    ));
    assert!(LinUcb::<f64>::new(3, 2, 1.0, -1.0).is_err());
    assert!(LinUcb::<f64>::new(3, 2, 1.0, f64::INFINITY).is_err());
    assert!(SquareCb::<f64>::new(3, 2, 1.0, 0.0, 0.5).is_err());
    assert!(SquareCb::<f64>::new(3, 2, 1.0, 10.0, -0.5).is_err());
    assert!(LinTs::<f64>::new(3, 2, 1.0, 0.0).is_err());
    let ts = LinTs::<f64>::new(3, 2, 1.0, 1.0).expect("valid");
    assert!(ts.clone().with_propensity_draws(0, 1).is_err());
    assert!(matches!(
        ts.with_propensity_draws(usize::MAX, 1),
        Err(Error::TooLarge { .. })
    ));
    assert!(BetaThompson::<f64>::new(3, 0.0, 1.0).is_err());
    assert!(BetaThompson::<f64>::new(3, 1.0, f64::NAN).is_err());
    assert!(matches!(
        BetaThompson::<f64>::new(1 << 40, 1.0, 1.0),
        Err(Error::TooLarge { .. })
    ));
    assert!(matches!(
        Ridge::<f64>::new(1 << 20, 1 << 10, 1.0),
        Err(Error::TooLarge { .. })
    ));
    assert!(matches!(
        Cadence::Every(0).check(),
        Err(Error::InvalidParameter { .. })
    ));
    assert!(Cadence::WarmUp(0).check().is_err());
    let config = RefitConfig::<f64> {
        cadence: Cadence::Every(0),
        ..RefitConfig::default()
    };
    assert!(Refit::linear(2, 2, config).is_err());
}

/// Uniform's cumulative expected regret over T steps of a bandit whose
/// arm means are `means`.
fn uniform_regret(means: &[f64], steps: usize) -> f64 {
    let best = means.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    let avg = means.iter().sum::<f64>() / means.len() as f64;
    (best - avg) * steps as f64
}

/// Every baseline's regret on a seeded Bernoulli bandit is well below
/// uniform's (under a third).
#[test]
fn baselines_learn_the_bernoulli_bandit() {
    let means: Vec<f64> = (0..5).map(|a| 0.1 + 0.15 * a as f64).collect();
    let steps = 400;
    let runner = Runner::new(steps, 8).expect("runner");
    let env = |_: &mut ChaCha8Rng| Bernoulli::new(means.clone());
    let uniform = uniform_regret(&means, steps);
    let regret = |s: refit::run::Summary| s.cumulative_regret.mean[steps - 1];
    let results = [
        (
            "epsilon-greedy",
            regret(
                runner
                    .run(env, || EpsilonGreedy::new(5, 1, 1.0, 0.1))
                    .expect("run"),
            ),
        ),
        (
            "linucb",
            regret(
                runner
                    .run(env, || LinUcb::new(5, 1, 1.0, 1.0))
                    .expect("run"),
            ),
        ),
        (
            "squarecb",
            regret(
                runner
                    .run(env, || SquareCb::new(5, 1, 1.0, 10.0, 0.5))
                    .expect("run"),
            ),
        ),
        (
            "lints",
            regret(runner.run(env, || LinTs::new(5, 1, 1.0, 0.5)).expect("run")),
        ),
        (
            "beta-thompson",
            regret(
                runner
                    .run(env, || BetaThompson::new(5, 1.0, 1.0))
                    .expect("run"),
            ),
        ),
    ];
    for (name, r) in results {
        assert!(r < uniform / 3.0, "{name}: regret {r} vs uniform {uniform}");
    }
}

/// The ridge baselines learn a linear contextual bandit: regret under a
/// fifth of uniform's (estimated on the same contexts).
#[test]
fn baselines_learn_a_linear_contextual_bandit() {
    let (k, d, steps) = (4, 3, 400);
    let runner = Runner::new(steps, 6).expect("runner");
    let env = |rng: &mut ChaCha8Rng| LinearContextual::random(k, d, 0.3, rng);
    // Uniform's regret: the mean gap to the best arm on a long stream.
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    let mut e = LinearContextual::<f64>::random(k, d, 0.3, &mut rng).expect("env");
    let (mut x, mut mu) = (vec![0.0; d], vec![0.0; k]);
    let mut gap = 0.0;
    for _ in 0..4000 {
        e.next_context(&mut rng, &mut x).expect("context");
        e.expected_rewards(&mut mu).expect("means");
        let best = mu.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        gap += best - mu.iter().sum::<f64>() / k as f64;
    }
    let uniform = gap / 4000.0 * steps as f64;
    let regret = |s: refit::run::Summary| s.cumulative_regret.mean[steps - 1];
    let results = [
        (
            "epsilon-greedy",
            regret(
                runner
                    .run(env, || EpsilonGreedy::new(k, d, 1.0, 0.1))
                    .expect("run"),
            ),
        ),
        (
            "linucb",
            regret(
                runner
                    .run(env, || LinUcb::new(k, d, 1.0, 1.0))
                    .expect("run"),
            ),
        ),
        (
            "squarecb",
            regret(
                runner
                    .run(env, || SquareCb::new(k, d, 1.0, 10.0, 0.5))
                    .expect("run"),
            ),
        ),
        (
            "lints",
            regret(runner.run(env, || LinTs::new(k, d, 1.0, 0.3)).expect("run")),
        ),
    ];
    for (name, r) in results {
        assert!(r < uniform / 5.0, "{name}: regret {r} vs uniform {uniform}");
    }
}

/// Runs `steps` act/learn steps of a tabular refit learner with `cadence`
/// on a Bernoulli bandit; returns the learner and the steps at which its
/// refit count went up.
fn cadence_run(
    cadence: Cadence,
    steps: usize,
) -> (Refit<f64, refit::policy::Tabular<f64>>, Vec<usize>) {
    let config = RefitConfig {
        cadence,
        ..RefitConfig::default()
    };
    let mut l = Refit::tabular(3, config).expect("valid");
    let mut env = Bernoulli::new(vec![0.2, 0.5, 0.8]).expect("valid");
    let mut rng = ChaCha8Rng::seed_from_u64(13);
    let mut refit_at = Vec::new();
    for t in 0..steps {
        let before = l.refits();
        let dec = l.act(&[1.0], &mut rng).expect("act");
        if l.refits() > before {
            refit_at.push(t);
        }
        let r = env.reward(dec.action, &mut rng).expect("reward");
        l.learn(&[1.0], dec.action, r, dec.propensity)
            .expect("learn");
    }
    (l, refit_at)
}

/// Refits happen when the cadence says: before the action at which n
/// points are in the history, n = k, 2k, … for `Every(k)`; n = 1, 2, 4, 8, …
/// at doubling epochs; n = 1..=w during a warm-up of w. Between refits the
/// policy does not move, and each refit is the certified optimum of its prefix.
#[test]
fn refit_cadences_refit_when_due() {
    let steps = 100;
    let (every, at) = cadence_run(Cadence::Every(10), steps);
    assert_eq!(at, (1..10).map(|m| 10 * m).collect::<Vec<_>>());
    assert_eq!(every.refits(), 9);
    let (one, at) = cadence_run(Cadence::Every(1), steps);
    assert_eq!(at, (1..steps).collect::<Vec<_>>());
    assert_eq!(one.refits(), steps - 1);
    let (doubling, at) = cadence_run(Cadence::Doubling, steps);
    assert_eq!(at, vec![1, 2, 4, 8, 16, 32, 64]);
    assert_eq!(doubling.refits(), 7);
    let (warm, at) = cadence_run(Cadence::WarmUp(20), steps);
    assert_eq!(at, (1..=20).collect::<Vec<_>>());
    assert_eq!(warm.pending(), steps - 20);
    // The last refit of the warm-up is the optimum of the first 20 points:
    // refit the same history now and compare at the start of it.
    let mut again = Refit::tabular(3, RefitConfig::default()).expect("valid");
    for i in warm.history().iter().take(20) {
        again
            .learn(i.context, i.action, i.reward, i.propensity)
            .expect("learn");
    }
    again.refit_now().expect("refit");
    let (mut p, mut q) = ([0.0; 3], [0.0; 3]);
    let mut warm = warm;
    warm.policy_into(&[1.0], &mut p).expect("policy");
    again.policy_into(&[1.0], &mut q).expect("policy");
    for (a, b) in p.iter().zip(&q) {
        assert!((a - b).abs() < 1e-9, "{p:?} vs {q:?}");
    }
    // Cadence::due itself.
    assert!(Cadence::Doubling.due(1, 0) && !Cadence::Doubling.due(3, 2));
    assert!(Cadence::Doubling.due(8, 5) && !Cadence::Doubling.due(0, 0));
    assert!(Cadence::Every(3).due(6, 3) && !Cadence::Every(3).due(5, 3));
    assert!(Cadence::WarmUp(5).due(5, 4) && !Cadence::WarmUp(5).due(9, 5));
}

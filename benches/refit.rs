//! The refit learner: 100 warm refits (one per new point) beside one plain
//! gradient pass (the floor: a certified optimum needs at least one pass),
//! a whole contextual run with a refit before every action, and a long
//! tabular run.
//!
//! `cargo bench --bench refit`. Targets (2-core machine, release): a warm
//! refit (a hundredth of `100_refits_from_n`) ≤ 3× one gradient pass at
//! n = 10³, ≤ 1.5× at n = 10⁴; the T = 10⁴ contextual run ≤ 3 s; the
//! T = 10⁶ tabular run ≤ 0.3 s (issue 18); the warm expected-return refit
//! ≤ 6 passes' worth (issue 18).

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use refit::env::{Bernoulli, Environment, LinearContextual};
use refit::history::History;
use refit::learner::{Learner, Refit, RefitConfig, Schedule};
use refit::objective::{Dataset, Estimator, ExpectedReturn, LogLikelihood, Objective, Weighting};
use refit::policy::LinearSoftmax;

const K: usize = 10;
const D: usize = 8;

fn config() -> RefitConfig<f64> {
    RefitConfig {
        lambda: 1.0,
        weighting: Weighting::Shift(-10.0),
        ..RefitConfig::default()
    }
}

/// A refit learner that has played `n` steps of a linear contextual bandit.
fn played(n: usize, seed: u64) -> (Refit<f64>, LinearContextual<f64>, ChaCha8Rng, ChaCha8Rng) {
    let mut env_rng = ChaCha8Rng::seed_from_u64(seed);
    let mut env = LinearContextual::random(K, D, 0.5, &mut env_rng).expect("env");
    let mut rng = ChaCha8Rng::seed_from_u64(seed + 1);
    let mut learner = Refit::linear(K, D, config()).expect("learner");
    let mut x = vec![0.0; D];
    for _ in 0..n {
        env.next_context(&mut env_rng, &mut x).expect("context");
        let d = learner.act(&x, &mut rng).expect("act");
        let r = env.reward(d.action, &mut env_rng).expect("reward");
        learner.learn(&x, d.action, r, d.propensity).expect("learn");
    }
    learner.refit_now().expect("refit");
    (learner, env, env_rng, rng)
}

fn warm_refit(c: &mut Criterion) {
    let mut group = c.benchmark_group("warm_refit_K10_d8");
    group.sample_size(20);
    for n in [1_000usize, 10_000] {
        let (learner, env, env_rng, rng) = played(n, 7);
        // Each timed step appends one point to a converged history and
        // refits before the next action (act refits, learn absorbs the
        // point): the refit the learner makes at every step of a run. An
        // iteration plays the same 100 steps from the same converged state
        // of n points, so every sample averages over the same 100 refits
        // (the occasional refit that re-forms its Hessian included).
        group.bench_with_input(BenchmarkId::new("100_refits_from_n", n), &n, |b, _| {
            b.iter_custom(|iters| {
                let mut total = std::time::Duration::ZERO;
                for _ in 0..iters {
                    let (mut l, mut env, mut env_rng, mut rng) =
                        (learner.clone(), env.clone(), env_rng.clone(), rng.clone());
                    let mut x = vec![0.0; D];
                    let start = std::time::Instant::now();
                    for _ in 0..100 {
                        env.next_context(&mut env_rng, &mut x).expect("context");
                        let d = l.act(&x, &mut rng).expect("act");
                        let r = env.reward(d.action, &mut env_rng).expect("reward");
                        l.learn(&x, d.action, r, d.propensity).expect("learn");
                    }
                    total += start.elapsed();
                    black_box(l.refits());
                }
                total
            })
        });
        // The floor: one value-and-gradient pass over the same history.
        let h = learner.history();
        let xs = ndarray::ArrayView2::from_shape((h.len(), D), h.contexts()).expect("n×d");
        let w: Vec<f64> = h.rewards().iter().map(|r| r + 10.0).collect();
        let data = Dataset::from_points(xs, h.actions(), &w, K, true).expect("data");
        let policy = LinearSoftmax::new(K, D).expect("policy");
        let mut obj =
            LogLikelihood::new(policy, data, 1.0, Weighting::Identity).expect("objective");
        let theta: Vec<f64> = learner.theta();
        let mut grad = vec![0.0; K * D];
        group.bench_with_input(BenchmarkId::new("one_gradient_pass", n), &n, |b, _| {
            b.iter(|| {
                black_box(
                    obj.value_grad(black_box(&theta), &mut grad)
                        .expect("finite"),
                )
            })
        });
    }
    group.finish();
}

/// A refit learner on the summed IPS expected return that has played `n`
/// steps of the linear contextual bandit.
#[allow(clippy::type_complexity)]
fn played_er(
    n: usize,
    seed: u64,
) -> (
    Refit<f64, LinearSoftmax<f64>, ExpectedReturn<f64, LinearSoftmax<f64>>>,
    LinearContextual<f64>,
    ChaCha8Rng,
    ChaCha8Rng,
) {
    let mut env_rng = ChaCha8Rng::seed_from_u64(seed);
    let mut env = LinearContextual::random(K, D, 0.5, &mut env_rng).expect("env");
    let mut rng = ChaCha8Rng::seed_from_u64(seed + 1);
    let policy = LinearSoftmax::new(K, D).expect("policy");
    let obj = ExpectedReturn::new(policy, History::new(D), 1.0, Estimator::Ips, None)
        .expect("objective")
        .summed();
    let mut learner = Refit::with_objective(obj, Schedule::default()).expect("learner");
    let mut x = vec![0.0; D];
    for _ in 0..n {
        env.next_context(&mut env_rng, &mut x).expect("context");
        let d = learner.act(&x, &mut rng).expect("act");
        let r = env.reward(d.action, &mut env_rng).expect("reward");
        learner.learn(&x, d.action, r, d.propensity).expect("learn");
    }
    learner.refit_now().expect("refit");
    (learner, env, env_rng, rng)
}

/// The expected-return refit (not concave): 100 warm refits after one new
/// point each, curvature certified, beside one value-and-gradient pass of
/// the same objective at the same θ.
fn warm_refit_expected_return(c: &mut Criterion) {
    let mut group = c.benchmark_group("warm_refit_expected_return_K10_d8");
    group.sample_size(20);
    let n = 1_000usize;
    let (learner, env, env_rng, rng) = played_er(n, 7);
    group.bench_with_input(BenchmarkId::new("100_refits_from_n", n), &n, |b, _| {
        b.iter_custom(|iters| {
            let mut total = std::time::Duration::ZERO;
            for _ in 0..iters {
                let (mut l, mut env, mut env_rng, mut rng) =
                    (learner.clone(), env.clone(), env_rng.clone(), rng.clone());
                let mut x = vec![0.0; D];
                let start = std::time::Instant::now();
                for _ in 0..100 {
                    env.next_context(&mut env_rng, &mut x).expect("context");
                    let d = l.act(&x, &mut rng).expect("act");
                    let r = env.reward(d.action, &mut env_rng).expect("reward");
                    l.learn(&x, d.action, r, d.propensity).expect("learn");
                }
                total += start.elapsed();
                black_box(l.refits());
            }
            total
        })
    });
    let mut obj = learner.objective().clone();
    let theta = learner.theta();
    let mut grad = vec![0.0; K * D];
    group.bench_with_input(BenchmarkId::new("one_gradient_pass", n), &n, |b, _| {
        b.iter(|| {
            black_box(
                obj.value_grad(black_box(&theta), &mut grad)
                    .expect("finite"),
            )
        })
    });
    group.finish();
}

fn contextual_run(c: &mut Criterion) {
    let mut group = c.benchmark_group("refit_run_contextual_K10_d8");
    group.sample_size(10);
    let t = 10_000;
    group.throughput(Throughput::Elements(t as u64));
    group.bench_function(BenchmarkId::new("T", t), |b| {
        b.iter(|| {
            let (learner, ..) = played(t, 11);
            black_box(learner.refits())
        })
    });
    group.finish();
}

fn tabular_run(c: &mut Criterion) {
    let mut group = c.benchmark_group("refit_run_tabular_bernoulli_K10");
    group.sample_size(10);
    let t = 1_000_000;
    group.throughput(Throughput::Elements(t as u64));
    let means: Vec<f64> = (0..K).map(|a| 0.05 + 0.09 * a as f64).collect();
    group.bench_function(BenchmarkId::new("T", t), |b| {
        b.iter(|| {
            let mut env = Bernoulli::new(means.clone()).expect("env");
            let mut env_rng = ChaCha8Rng::seed_from_u64(12);
            let mut rng = ChaCha8Rng::seed_from_u64(13);
            let mut learner = Refit::tabular(K, RefitConfig::default()).expect("learner");
            let mut x = [0.0];
            for _ in 0..t {
                env.next_context(&mut env_rng, &mut x).expect("context");
                let d = learner.act(&x, &mut rng).expect("act");
                let r = env.reward(d.action, &mut env_rng).expect("reward");
                learner.learn(&x, d.action, r, d.propensity).expect("learn");
            }
            black_box(learner.refits())
        })
    });
    group.finish();
}

criterion_group!(
    refit_benches,
    warm_refit,
    warm_refit_expected_return,
    contextual_run,
    tabular_run
);
criterion_main!(refit_benches);

//! The learned planner on 7×7 grid worlds with k = 10 sweeps: one act +
//! learn of the REINFORCE learner, one pass of the refit objective and one
//! of the full-information expected return over 10³ stored grids, and the
//! designed multi-start that finds π* of a 40-grid history (the mesa
//! experiment's unit of work), and warm refits of the planner's IPS
//! expected return after one new grid each, curvature checked, beside one
//! pass of the same objective.
//!
//! `cargo bench --bench planner`. Targets (2-core machine, release, f64):
//! act + learn ≤ 25 µs; one refit pass over 10³ grids ≤ 2 ms; a warm
//! expected-return refit at n = 160 ≤ 12 passes' worth (a tenth of
//! `10_refits_from_n` ÷ `one_pass`).

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use refit::env::{Environment, GridConfig, GridNav};
use refit::history::History;
use refit::learner::{Baseline, Incremental, Learner, Refit, Schedule, StepSize};
use refit::objective::{Dataset, Estimator, ExpectedReturn, LogLikelihood, Objective, Weighting};
use refit::policy::{Planner, Policy};

fn planner() -> Planner<f64> {
    let mut p = Planner::new(7, 10, 0.3, 0.9).expect("planner");
    p.set_params(&[0.1, -0.5, 2.0, 0.7, 1.5, -0.5, 1.0, 0.2])
        .expect("finite");
    p
}

fn grids(n: usize, seed: u64) -> (Vec<Vec<f64>>, GridNav<f64>, ChaCha8Rng) {
    let mut env = GridNav::new(GridConfig {
        rho: 0.8,
        ..GridConfig::default()
    })
    .expect("env");
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let out = (0..n)
        .map(|_| {
            let mut x = vec![0.0; env.context_dim()];
            env.next_context(&mut rng, &mut x).expect("context");
            x
        })
        .collect();
    (out, env, rng)
}

fn act_learn(c: &mut Criterion) {
    let (xs, _, _) = grids(64, 1);
    let mut learner = Incremental::new(planner(), StepSize::Constant(0.01), Baseline::RunningMean)
        .expect("learner");
    let mut rng = ChaCha8Rng::seed_from_u64(2);
    let mut i = 0;
    c.bench_function("planner act+learn 7x7 k=10", |b| {
        b.iter(|| {
            let x = &xs[i % xs.len()];
            i += 1;
            let d = learner.act(black_box(x), &mut rng).expect("act");
            learner
                .learn(
                    x,
                    d.action,
                    f64::from(u8::from(d.action == 0)),
                    d.propensity,
                )
                .expect("learn")
        })
    });
}

fn refit_pass(c: &mut Criterion) {
    let (xs, _, _) = grids(1000, 3);
    let p = planner();
    let mut data = Dataset::new(4, p.context_dim(), true).expect("dataset");
    for (i, x) in xs.iter().enumerate() {
        data.push(x, i % 4, 1.0).expect("point");
    }
    let mut obj = LogLikelihood::new(p.clone(), data, 1.0, Weighting::Identity).expect("objective");
    let theta = p.params();
    let mut grad = vec![0.0; theta.len()];
    let mut group = c.benchmark_group("planner refit pass");
    group.sample_size(20);
    group.bench_function("value and gradient over 10^3 grids", |b| {
        b.iter(|| {
            obj.value_grad_only(black_box(&theta), &mut grad)
                .expect("pass")
        })
    });
    group.finish();
}

fn pi_star(c: &mut Criterion) {
    use refit::mesa::{HeldOut, landscape, planner_starts};
    use refit::objective::FullInformation;
    use refit::solve::Options;
    let (xs, env, _) = grids(1000, 3);
    let p = planner();
    let mut obj = FullInformation::new(p.clone(), env.clone(), 1.0).expect("objective");
    for x in &xs {
        obj.add(x).expect("grid");
    }
    let theta = p.params();
    let mut grad = vec![0.0; theta.len()];
    let mut group = c.benchmark_group("planner full information");
    group.sample_size(20);
    group.bench_function("value and gradient over 10^3 grids", |b| {
        b.iter(|| obj.value_grad(black_box(&theta), &mut grad).expect("pass"))
    });
    let mut history = FullInformation::new(p.clone(), env, 1.0).expect("objective");
    for x in &xs[..40] {
        history.add(x).expect("grid");
    }
    let held = HeldOut::<f64>::draw(GridConfig::default(), 2000, 4).expect("held out");
    let starts = planner_starts(2.0, 0, 0).expect("starts");
    group.sample_size(10);
    group.bench_function("landscape of J_T on 40 grids, 7 designed starts", |b| {
        b.iter(|| {
            landscape(&mut history, &p, &starts, 1e-3, &Options::default(), &held)
                .expect("landscape")
        })
    });
    group.finish();
}

/// 10 warm refits of the planner's summed IPS expected return, each after
/// one new grid, from a learner that has played `n` = 160 grids (the
/// default solver: lagged Newton, curvature certified), beside one
/// value-and-gradient pass of the same objective at the same θ.
fn warm_refit_expected_return(c: &mut Criterion) {
    let n = 160usize;
    let (_, mut env, mut env_rng) = grids(0, 5);
    let mut rng = ChaCha8Rng::seed_from_u64(6);
    let p = planner();
    let obj = ExpectedReturn::new(
        p.clone(),
        History::new(p.context_dim()),
        1.0,
        Estimator::Ips,
        None,
    )
    .expect("objective")
    .summed();
    let mut learner = Refit::with_objective(obj, Schedule::default()).expect("learner");
    let mut x = vec![0.0; p.context_dim()];
    let mut play = |l: &mut Refit<f64, Planner<f64>, _>,
                    env: &mut GridNav<f64>,
                    env_rng: &mut ChaCha8Rng,
                    rng: &mut ChaCha8Rng| {
        env.next_context(env_rng, &mut x).expect("context");
        let d = l.act(&x, rng).expect("act");
        let r = env.reward(d.action, env_rng).expect("reward");
        l.learn(&x, d.action, r, d.propensity).expect("learn");
    };
    for _ in 0..n {
        play(&mut learner, &mut env, &mut env_rng, &mut rng);
    }
    learner.refit_now().expect("refit");
    let mut group = c.benchmark_group("planner warm refit expected return");
    group.sample_size(10);
    group.bench_with_input(BenchmarkId::new("10_refits_from_n", n), &n, |b, _| {
        b.iter_custom(|iters| {
            let mut total = std::time::Duration::ZERO;
            for _ in 0..iters {
                let (mut l, mut env, mut env_rng, mut rng) =
                    (learner.clone(), env.clone(), env_rng.clone(), rng.clone());
                let start = std::time::Instant::now();
                for _ in 0..10 {
                    play(&mut l, &mut env, &mut env_rng, &mut rng);
                }
                total += start.elapsed();
                black_box(l.refits());
            }
            total
        })
    });
    let mut obj = learner.objective().clone();
    let theta = learner.theta();
    let mut grad = vec![0.0; theta.len()];
    group.sample_size(20);
    group.bench_with_input(BenchmarkId::new("one_pass", n), &n, |b, _| {
        b.iter(|| black_box(obj.value_grad(black_box(&theta), &mut grad).expect("pass")))
    });
    group.finish();
}

criterion_group!(
    planner_benches,
    act_learn,
    refit_pass,
    pi_star,
    warm_refit_expected_return
);
criterion_main!(planner_benches);

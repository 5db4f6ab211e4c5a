//! One `act` + `learn` of the incremental learner (the runner around it is
//! in `benches/runner.rs`).
//!
//! `cargo bench --bench gradient_step`. Targets (2-core machine, release):
//! f64 (K, d) = (10, 1) ≤ 30 ns, (10, 16) ≤ 60 ns, (100, 64) ≤ 1.0 µs;
//! f32 (100, 64) ≤ 0.6 µs.

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};
use refit::Real;
use refit::learner::{
    Baseline, BetaThompson, EpsilonGreedy, Incremental, Learner, LinTs, LinUcb, SquareCb, StepSize,
};

const SIZES: [(usize, usize); 3] = [(10, 1), (10, 16), (100, 64)];

/// A pool of seeded contexts, cycled through so that the cache of `act` is
/// exercised as in a real run (learn follows act on the same context).
fn contexts<F: Real>(d: usize, n: usize, seed: u64) -> Vec<Vec<F>> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    (0..n)
        .map(|_| {
            (0..d)
                .map(|_| {
                    let v: f64 = StandardNormal.sample(&mut rng);
                    F::c(v)
                })
                .collect()
        })
        .collect()
}

fn act_learn<F: Real>(c: &mut Criterion, name: &str) {
    let mut group = c.benchmark_group(format!("act_learn_{name}"));
    group.throughput(Throughput::Elements(1));
    for (k, d) in SIZES {
        let xs = contexts::<F>(d, 64, 1);
        let rewards: Vec<F> = (0..64).map(|i| F::c((i % 3) as f64 * 0.5)).collect();
        let mut learner =
            Incremental::linear(k, d, StepSize::Constant(F::c(0.01)), Baseline::RunningMean)
                .expect("valid learner");
        let mut rng = ChaCha8Rng::seed_from_u64(2);
        let mut i = 0usize;
        group.bench_with_input(
            BenchmarkId::new("K_d", format!("{k}x{d}")),
            &(k, d),
            |b, _| {
                b.iter(|| {
                    let x = &xs[i & 63];
                    let dec = learner.act(black_box(x), &mut rng).expect("act");
                    learner
                        .learn(x, dec.action, rewards[i & 63], dec.propensity)
                        .expect("learn");
                    i = i.wrapping_add(1);
                    black_box(dec.action)
                })
            },
        );
    }
    group.finish();
}

/// One act + learn of `learner` per iteration over the context pool `xs`.
fn bench_learner<L: Learner<f64>>(
    group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    name: &str,
    mut learner: L,
    xs: &[Vec<f64>],
) {
    let rewards: Vec<f64> = (0..64).map(|i| f64::from(i % 3 == 0)).collect();
    let mut rng = ChaCha8Rng::seed_from_u64(2);
    let mut i = 0usize;
    group.bench_function(name, |b| {
        b.iter(|| {
            let x = &xs[i & 63];
            let dec = learner.act(black_box(x), &mut rng).expect("act");
            learner
                .learn(x, dec.action, rewards[i & 63], dec.propensity)
                .expect("learn");
            i = i.wrapping_add(1);
            black_box(dec.action)
        })
    });
}

/// The exploration baselines beside REINFORCE at (K, d) = (10, 16), and
/// Bernoulli Thompson sampling (context-free) beside REINFORCE at (10, 1).
fn baselines(c: &mut Criterion) {
    let (k, d) = (10, 16);
    let xs = contexts::<f64>(d, 64, 1);
    let mut group = c.benchmark_group("baselines_10x16");
    group.throughput(Throughput::Elements(1));
    let step = StepSize::Constant(0.01);
    let reinforce = Incremental::linear(k, d, step, Baseline::RunningMean).expect("valid");
    bench_learner(&mut group, "reinforce", reinforce, &xs);
    let eps = EpsilonGreedy::new(k, d, 1.0, 0.1).expect("valid");
    bench_learner(&mut group, "epsilon_greedy", eps, &xs);
    bench_learner(
        &mut group,
        "linucb",
        LinUcb::new(k, d, 1.0, 1.0).expect("valid"),
        &xs,
    );
    let sq = SquareCb::new(k, d, 1.0, 10.0, 0.5).expect("valid");
    bench_learner(&mut group, "squarecb", sq, &xs);
    bench_learner(
        &mut group,
        "lints",
        LinTs::new(k, d, 1.0, 0.5).expect("valid"),
        &xs,
    );
    group.finish();
    let ones = vec![vec![1.0]; 64];
    let mut group = c.benchmark_group("baselines_10x1");
    group.throughput(Throughput::Elements(1));
    let reinforce = Incremental::tabular(k, step, Baseline::RunningMean).expect("valid");
    bench_learner(&mut group, "reinforce", reinforce, &ones);
    let ts = BetaThompson::new(k, 1.0, 1.0).expect("valid");
    bench_learner(&mut group, "beta_thompson", ts, &ones);
    group.finish();
}

fn benches(c: &mut Criterion) {
    act_learn::<f64>(c, "f64");
    act_learn::<f32>(c, "f32");
    baselines(c);
}

criterion_group!(gradient_step, benches);
criterion_main!(gradient_step);

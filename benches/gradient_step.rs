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

/// The floor of one act + learn: a hand-written loop of the same arithmetic
/// (logits in the padded feature-major layout, the crate's `exp`, a
/// max-shifted softmax, inverse-CDF sampling with one uniform of the same
/// stream, the running-mean baseline, the outer-product update) with no
/// checks, no `Result` and no run-time dispatch: compiled once for AVX2 +
/// FMA, the variant the crate picks on this CPU.
struct Floor {
    k: usize,
    kp: usize,
    theta_t: Vec<f64>,
    z: Vec<f64>,
    baseline: f64,
    seen: f64,
    alpha: f64,
}

impl Floor {
    fn new(k: usize, d: usize, alpha: f64) -> Self {
        let kp = k.div_ceil(4) * 4;
        Self {
            k,
            kp,
            theta_t: vec![0.0; kp * d],
            z: vec![0.0; kp],
            baseline: 0.0,
            seen: 0.0,
            alpha,
        }
    }

    #[inline(always)]
    fn step_body(&mut self, x: &[f64], u: f64, reward: f64) -> usize {
        let (k, kp) = (self.k, self.kp);
        let z = &mut self.z[..kp];
        z.iter_mut().for_each(|v| *v = 0.0);
        for (row, &xj) in self.theta_t.chunks_exact(kp).zip(x) {
            for (zv, &t) in z.iter_mut().zip(row) {
                *zv = t.mul_add(xj, *zv);
            }
        }
        let m = z[..k].iter().fold(f64::NEG_INFINITY, |m, &v| m.max(v));
        let mut sum = 0.0;
        for v in z[..k].iter_mut() {
            *v = (*v - m).exp_fast();
            sum += *v;
        }
        let inv = 1.0 / sum;
        let mut cum = 0.0;
        let mut action = k - 1;
        for (a, v) in z[..k].iter_mut().enumerate() {
            *v *= inv;
            cum += *v;
            if u < cum && action == k - 1 {
                action = a;
            }
        }
        self.seen += 1.0;
        let scale = self.alpha * (reward - self.baseline);
        self.baseline += (reward - self.baseline) / self.seen;
        for (a, v) in z[..k].iter_mut().enumerate() {
            let e = if a == action { 1.0 } else { 0.0 };
            *v = scale * (e - *v);
        }
        z[k..].iter_mut().for_each(|v| *v = 0.0);
        for (row, &xj) in self.theta_t.chunks_exact_mut(kp).zip(x) {
            for (t, &c) in row.iter_mut().zip(z.iter()) {
                *t = c.mul_add(xj, *t);
            }
        }
        action
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    fn step_avx2(&mut self, x: &[f64], u: f64, reward: f64) -> usize {
        self.step_body(x, u, reward)
    }

    fn step(&mut self, x: &[f64], u: f64, reward: f64) -> usize {
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx2")
                && std::arch::is_x86_feature_detected!("fma")
            {
                // SAFETY: the CPU has AVX2 and FMA, checked just above.
                return unsafe { self.step_avx2(x, u, reward) };
            }
        }
        self.step_body(x, u, reward)
    }
}

/// The crate's act + learn beside the floor, per size, in one group.
fn floor(c: &mut Criterion) {
    use rand::RngExt;
    let mut group = c.benchmark_group("act_learn_f64_vs_floor");
    group.throughput(Throughput::Elements(1));
    for (k, d) in SIZES {
        let xs = contexts::<f64>(d, 64, 1);
        let rewards: Vec<f64> = (0..64).map(|i| (i % 3) as f64 * 0.5).collect();
        let mut floor = Floor::new(k, d, 0.01);
        let mut rng = ChaCha8Rng::seed_from_u64(2);
        let mut i = 0usize;
        group.bench_with_input(
            BenchmarkId::new("floor", format!("{k}x{d}")),
            &(k, d),
            |b, _| {
                b.iter(|| {
                    let x = &xs[i & 63];
                    let u: f64 = rng.random();
                    let a = floor.step(black_box(x), u, rewards[i & 63]);
                    i = i.wrapping_add(1);
                    black_box(a)
                })
            },
        );
        let mut learner =
            Incremental::linear(k, d, StepSize::Constant(0.01), Baseline::RunningMean)
                .expect("valid learner");
        let mut rng = ChaCha8Rng::seed_from_u64(2);
        let mut i = 0usize;
        group.bench_with_input(
            BenchmarkId::new("crate", format!("{k}x{d}")),
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

fn benches(c: &mut Criterion) {
    floor(c);
    act_learn::<f64>(c, "f64");
    act_learn::<f32>(c, "f32");
    baselines(c);
}

criterion_group!(gradient_step, benches);
criterion_main!(gradient_step);

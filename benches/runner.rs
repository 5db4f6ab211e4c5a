//! The runner around the learner: one step of `Runner::run` beside the
//! environment's own work for a step, and seeds on one thread against
//! seeds on all of them.
//!
//! `cargo bench --bench runner`. Targets (2-core machine, release): a
//! runner step ≤ 1.5 × (act + learn, `benches/gradient_step.rs`) plus the
//! environment's draw (`env_draw` here); seeds in parallel on 2 threads
//! ≥ 1.8 × the steps per second of one thread.

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use refit::env::{Environment, LinearContextual};
use refit::learner::{Baseline, Incremental, StepSize};
use refit::run::Runner;

const SIZES: [(usize, usize); 3] = [(10, 1), (10, 16), (100, 64)];

fn learner(k: usize, d: usize) -> refit::Result<Incremental<f64>> {
    Incremental::linear(k, d, StepSize::Constant(0.01), Baseline::RunningMean)
}

/// One `Runner::run` of REINFORCE on a random linear contextual bandit;
/// returns the mean regret at the last step.
fn play(runner: &Runner, k: usize, d: usize) -> f64 {
    let s = runner
        .run(
            |rng| LinearContextual::<f64>::random(k, d, 0.1, rng),
            || learner(k, d),
        )
        .expect("run");
    s.regret.mean.last().copied().unwrap_or(0.0)
}

/// What the environment does in a step of the runner: a context, the
/// expected rewards (for the regret) and the reward of one action.
fn env_draw(c: &mut Criterion) {
    let mut group = c.benchmark_group("env_draw_f64");
    group.throughput(Throughput::Elements(1));
    for (k, d) in SIZES {
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let mut env = LinearContextual::<f64>::random(k, d, 0.1, &mut rng).expect("env");
        let mut x = vec![0.0; d];
        let mut mu = vec![0.0; k];
        let mut a = 0usize;
        group.bench_with_input(
            BenchmarkId::new("K_d", format!("{k}x{d}")),
            &(k, d),
            |b, _| {
                b.iter(|| {
                    env.next_context(&mut rng, &mut x).expect("context");
                    env.expected_rewards(&mut mu).expect("means");
                    a = (a + 7) % k;
                    black_box(env.reward(a, &mut rng).expect("reward"))
                })
            },
        );
    }
    group.finish();
}

/// One seed of `Runner::run`, per step: the session (environment, act,
/// expected rewards, reward, learn) and the per-step statistics.
fn runner_step(c: &mut Criterion) {
    let mut group = c.benchmark_group("runner_step_f64");
    let steps = 4096;
    group.throughput(Throughput::Elements(steps as u64));
    for (k, d) in SIZES {
        let runner = Runner::new(steps, 1).expect("runner").parallel(false);
        group.bench_with_input(
            BenchmarkId::new("K_d", format!("{k}x{d}")),
            &(k, d),
            |b, _| b.iter(|| black_box(play(&runner, k, d))),
        );
    }
    group.finish();
}

/// Steps per second over 8 seeds, one thread against all of them (2 on the
/// machine the targets are for; `parallel` feature).
fn seeds_parallel(c: &mut Criterion) {
    let mut group = c.benchmark_group("seeds_K10_d16");
    group.sample_size(20);
    let (k, d, steps, seeds) = (10, 16, 2000, 8);
    group.throughput(Throughput::Elements((steps * seeds) as u64));
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    for parallel in [false, true] {
        let runner = Runner::new(steps, seeds)
            .expect("runner")
            .parallel(parallel);
        let name = if parallel {
            format!("threads_{threads}")
        } else {
            "threads_1".to_string()
        };
        group.bench_function(BenchmarkId::new("seeds_8", name), |b| {
            b.iter(|| black_box(play(&runner, k, d)))
        });
    }
    group.finish();
}

criterion_group!(runner, env_draw, runner_step, seeds_parallel);
criterion_main!(runner);

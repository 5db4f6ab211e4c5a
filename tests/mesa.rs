//! The learned planner and its grid worlds: the reverse pass against finite
//! differences, soft value iteration against shortest paths as τ → 0, the
//! environment against brute force, the cue statistics against ρ, bad
//! settings, and a learner whose mesa-objective aligns with the goal.

#![allow(clippy::needless_range_loop)]

mod common;

use rand::SeedableRng;
use refit::env::{Environment, GridConfig, GridNav};
use refit::grid::{MOVES, Observation};
use refit::learner::{Baseline, Incremental, Learner, StepSize};
use refit::policy::{Planner, Policy, soft_value_iteration};

fn env(seed: u64, config: GridConfig) -> (GridNav<f64>, rand_chacha::ChaCha8Rng) {
    (
        GridNav::new(config).expect("valid"),
        rand_chacha::ChaCha8Rng::seed_from_u64(seed),
    )
}

#[test]
fn the_planner_gradient_matches_finite_differences() {
    let (mut g, mut rng) = env(
        1,
        GridConfig {
            rho: 0.5,
            ..GridConfig::default()
        },
    );
    let mut prng = common::rng(2);
    let mut x = vec![0.0; g.context_dim()];
    for trial in 0..20 {
        g.next_context(&mut rng, &mut x).expect("draws");
        let (k, tau, gamma) = [(10, 0.3, 0.9), (3, 1.0, 1.0), (6, 0.1, 0.8)][trial % 3];
        let mut pi = Planner::<f64>::new(7, k, tau, gamma).expect("valid");
        let theta = common::normals(&mut prng, 8, 1.0);
        pi.set_params(&theta).expect("finite");
        let c = common::normals(&mut prng, 4, 1.0);
        let mut grad = vec![0.0; 8];
        pi.add_logits_vjp(&x, &c, &mut grad).expect("valid");
        // d/dθ_j Σ_m c_m z_m by central differences.
        let f = |t: &[f64]| -> f64 {
            let mut q = pi.clone();
            q.set_params(t).expect("finite");
            let mut z = vec![0.0; 4];
            q.logits_into(&x, &mut z).expect("valid");
            z.iter().zip(&c).map(|(a, b)| a * b).sum()
        };
        let h = 1e-6;
        let mut fd = vec![0.0; 8];
        for j in 0..8 {
            let mut tp = theta.clone();
            tp[j] += h;
            let mut tm = theta.clone();
            tm[j] -= h;
            fd[j] = (f(&tp) - f(&tm)) / (2.0 * h);
        }
        let scale = fd.iter().fold(1e-3f64, |m, v| m.max(v.abs()));
        let err = grad
            .iter()
            .zip(&fd)
            .fold(0.0f64, |m, (a, b)| m.max((a - b).abs()))
            / scale;
        assert!(err < 1e-6, "trial {trial}: {grad:?} vs {fd:?}");
    }
}

/// The sweeps (one exponential per cell with a sweep-wide shift, and the
/// per-cell shift where that would flush a term) against a plain reference
/// with libm's exp and ln and a per-cell maximum, on random reward maps
/// from small to huge ranges.
#[test]
fn soft_value_iteration_matches_a_plain_reference() {
    let (mut g, mut rng) = env(5, GridConfig::default());
    let mut x = vec![0.0; g.context_dim()];
    let n = 7;
    for (trial, scale) in [1.0, 30.0, 1e3, 1e5]
        .into_iter()
        .cycle()
        .take(16)
        .enumerate()
    {
        g.next_context(&mut rng, &mut x).expect("draws");
        let obs = Observation::parse(n, &x).expect("valid");
        let reward: Vec<f64> = (0..n * n)
            .map(|c| scale * (((c * 7919 + trial * 104_729) % 1000) as f64 / 500.0 - 1.0))
            .collect();
        let (k, tau, gamma) = (10, 0.3, 0.9);
        let got = soft_value_iteration(n, &obs.walls, &reward, k, tau, gamma).expect("valid");
        let mut v = vec![0.0f64; n * n];
        for _ in 0..k {
            let mut next = vec![0.0; n * n];
            for c in (0..n * n).filter(|&c| !obs.walls[c]) {
                let q: Vec<f64> = (0..4)
                    .map(|m| {
                        let to = refit::grid::step_cell(n, &obs.walls, c, m).expect("cell");
                        reward[to] + gamma * v[to]
                    })
                    .collect();
                let top = q.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
                next[c] = top
                    + tau
                        * q.iter()
                            .map(|qm| ((qm - top) / tau).exp())
                            .sum::<f64>()
                            .ln();
            }
            v = next;
        }
        for c in 0..n * n {
            let tol = 1e-12 * (1.0 + v[c].abs());
            assert!(
                (got[c] - v[c]).abs() <= tol,
                "trial {trial}, cell {c}: {} vs {}",
                got[c],
                v[c]
            );
        }
    }
}

#[test]
fn soft_value_iteration_tends_to_shortest_paths() {
    // R = −1 on every cell but the goal (0), γ = 1, the goal on the border
    // (so staying there is a blocked move): the hard values are −(D − 1)
    // for a cell at distance D ≥ 1 and 0 at the goal, and the soft ones
    // exceed them by at most k τ ln 4.
    let (mut g, mut rng) = env(3, GridConfig::default());
    let mut x = vec![0.0; g.context_dim()];
    let n = 7;
    for _ in 0..10 {
        g.next_context(&mut rng, &mut x).expect("draws");
        let obs = Observation::parse(n, &x).expect("valid");
        let Some(goal) = (0..n * n).find(|&c| !obs.walls[c] && (c < n || c % n == 0)) else {
            continue;
        };
        let dist = refit::grid::bfs(n, &obs.walls, goal).expect("checked grid");
        let reward: Vec<f64> = (0..n * n)
            .map(|c| if c == goal { 0.0 } else { -1.0 })
            .collect();
        let k = 60;
        for tau in [1e-2, 1e-3, 1e-4] {
            let v = soft_value_iteration(n, &obs.walls, &reward, k, tau, 1.0).expect("valid");
            for c in 0..n * n {
                if obs.walls[c] {
                    continue;
                }
                let hard = if c == goal {
                    0.0
                } else {
                    -(dist[c] as f64 - 1.0)
                };
                let gap = v[c] - hard;
                assert!(
                    gap >= -1e-9 && gap <= k as f64 * tau * 4f64.ln() + 1e-9,
                    "cell {c}: {} vs {hard} at τ = {tau}",
                    v[c]
                );
            }
        }
    }
}

/// Shortest distances by repeated relaxation (Bellman–Ford), written
/// independently of the environment's breadth-first search.
fn relaxed_distances(n: usize, walls: &[bool], goal: usize) -> Vec<usize> {
    let inf = usize::MAX / 2;
    let mut d = vec![inf; n * n];
    d[goal] = 0;
    loop {
        let mut changed = false;
        for c in 0..n * n {
            if walls[c] {
                continue;
            }
            let (r, col) = ((c / n) as isize, (c % n) as isize);
            for (dr, dc) in MOVES {
                let (r2, c2) = (r + dr, col + dc);
                if r2 < 0 || c2 < 0 || r2 >= n as isize || c2 >= n as isize {
                    continue;
                }
                let nb = r2 as usize * n + c2 as usize;
                if !walls[nb] && d[nb] + 1 < d[c] {
                    d[c] = d[nb] + 1;
                    changed = true;
                }
            }
        }
        if !changed {
            return d;
        }
    }
}

#[test]
fn expected_rewards_match_brute_force_and_grids_are_connected() {
    for (seed, size, density) in [(4, 7, 0.2), (5, 5, 0.5), (6, 9, 0.0), (7, 2, 0.3)] {
        let (mut g, mut rng) = env(
            seed,
            GridConfig {
                size,
                wall_density: density,
                ..GridConfig::default()
            },
        );
        let mut x = vec![0.0; g.context_dim()];
        let mut mu = vec![0.0; 4];
        for _ in 0..50 {
            g.next_context(&mut rng, &mut x).expect("draws");
            let obs = Observation::parse(size, &x).expect("valid");
            let d = relaxed_distances(size, &obs.walls, obs.goal);
            // Every free cell reaches the goal; at least 3 free cells.
            assert!(
                (0..size * size)
                    .filter(|&c| !obs.walls[c])
                    .all(|c| d[c] < usize::MAX / 2)
            );
            assert!((0..size * size).filter(|&c| !obs.walls[c]).count() >= 3);
            assert_ne!(obs.agent, obs.goal);
            g.expected_rewards(&mut mu).expect("valid");
            let mut at = vec![0.0; 4];
            g.expected_rewards_at(&x, &mut at).expect("valid");
            assert_eq!(mu, at);
            let (r, c) = ((obs.agent / size) as isize, (obs.agent % size) as isize);
            for (m, (dr, dc)) in MOVES.iter().enumerate() {
                let (r2, c2) = (r + dr, c + dc);
                let to = if r2 < 0 || c2 < 0 || r2 >= size as isize || c2 >= size as isize {
                    obs.agent
                } else {
                    let nb = r2 as usize * size + c2 as usize;
                    if obs.walls[nb] { obs.agent } else { nb }
                };
                let want = if d[to] < d[obs.agent] { 1.0 } else { 0.0 };
                assert_eq!(mu[m], want);
            }
            // The reward drawn is the expected one (deterministic rewards).
            let a = (seed as usize) % 4;
            assert_eq!(g.reward(a, &mut rng).expect("valid"), mu[a]);
        }
    }
}

#[test]
fn the_cue_sits_on_the_goal_as_often_as_rho_says() {
    for rho in [1.0, 0.8, 0.3] {
        let shift = 3000;
        let (mut g, mut rng) = env(
            9,
            GridConfig {
                rho,
                shift,
                ..GridConfig::default()
            },
        );
        let mut x = vec![0.0; g.context_dim()];
        let (mut hits, mut expect, mut var) = ([0.0; 2], [0.0; 2], [0.0; 2]);
        for t in 0..2 * shift {
            g.next_context(&mut rng, &mut x).expect("draws");
            let obs = Observation::parse(7, &x).expect("valid");
            let free = (0..49).filter(|&c| !obs.walls[c]).count() as f64;
            let phase = usize::from(t >= shift);
            // On the goal by ρ (before the shift), or by chance among the
            // free cells other than the agent's.
            let chance = 1.0 / (free - 1.0);
            let p = if phase == 0 {
                rho + (1.0 - rho) * chance
            } else {
                chance
            };
            let (_, goal, cue) = g.cells();
            hits[phase] += f64::from(u8::from(cue == goal));
            expect[phase] += p;
            var[phase] += p * (1.0 - p);
            g.reward(0, &mut rng).expect("valid");
        }
        for phase in 0..2 {
            let tol = 4.0 * var[phase].sqrt() + 1e-9;
            assert!(
                (hits[phase] - expect[phase]).abs() <= tol,
                "ρ = {rho}, phase {phase}: {} vs {}",
                hits[phase],
                expect[phase]
            );
        }
    }
}

#[test]
fn bad_settings_are_refused_at_construction() {
    let bad_env = [
        GridConfig {
            size: 1,
            ..GridConfig::default()
        },
        GridConfig {
            size: 0,
            ..GridConfig::default()
        },
        GridConfig {
            wall_density: 0.7,
            ..GridConfig::default()
        },
        GridConfig {
            wall_density: -0.1,
            ..GridConfig::default()
        },
        GridConfig {
            wall_density: f64::NAN,
            ..GridConfig::default()
        },
        GridConfig {
            rho: 1.5,
            ..GridConfig::default()
        },
    ];
    for c in bad_env {
        let err = GridNav::<f64>::new(c).expect_err("refused");
        assert!(
            matches!(err, refit::Error::InvalidParameter { .. }),
            "{err}"
        );
    }
    assert!(
        GridNav::<f64>::new(GridConfig {
            size: 129,
            ..GridConfig::default()
        })
        .is_err()
    );
    for (n, k, tau, gamma) in [
        (129, 10, 0.1, 0.9),
        (7, usize::MAX, 0.1, 0.9),
        (128, 300, 0.1, 0.9),
        (1, 10, 0.1, 0.9),
        (7, 0, 0.1, 0.9),
        (7, 10, 0.0, 0.9),
        (7, 10, -1.0, 0.9),
        (7, 10, f64::NAN, 0.9),
        (7, 10, 0.1, 0.0),
        (7, 10, 0.1, 1.5),
    ] {
        let err = Planner::<f64>::new(n, k, tau, gamma).expect_err("refused");
        assert!(
            matches!(err, refit::Error::InvalidParameter { .. }),
            "{err}"
        );
    }
    // An observation that is not a grid is an error, not a panic.
    let pi = Planner::<f64>::new(7, 5, 0.1, 0.9).expect("valid");
    assert!(pi.probabilities(&vec![0.0; 4 * 49]).is_err());
    assert!(pi.probabilities(&[0.0; 10]).is_err());
}

#[test]
fn reinforce_on_rho_08_learns_a_goal_aligned_objective() {
    let (mut g, mut rng) = env(
        11,
        GridConfig {
            rho: 0.8,
            ..GridConfig::default()
        },
    );
    let mut lrng = rand_chacha::ChaCha8Rng::seed_from_u64(12);
    let mut learner = Incremental::new(
        Planner::<f64>::new(7, 10, 0.3, 0.9).expect("valid"),
        StepSize::Constant(0.1),
        Baseline::RunningMean,
    )
    .expect("valid");
    let mut x = vec![0.0; g.context_dim()];
    for _ in 0..1500 {
        g.next_context(&mut rng, &mut x).expect("draws");
        let d = learner.act(&x, &mut lrng).expect("acts");
        let r = g.reward(d.action, &mut rng).expect("valid");
        learner
            .learn(&x, d.action, r, d.propensity)
            .expect("learns");
    }
    let theta = learner.policy().params();
    let a = refit::mesa::signed_alignment(&theta).expect("weights moved");
    let w = learner.policy().objective_weights().to_vec();
    assert!(a > 0.6, "alignment {a}, w = {w:?}");
    // And frozen on held-out grids with the cue placed independently, it
    // seeks the goal more than an indifferent policy would.
    let held = refit::mesa::HeldOut::<f64>::draw(GridConfig::default(), 1000, 13).expect("draws");
    let b = held.evaluate(learner.policy(), 0).expect("scores");
    assert!(b.b > b.b_indifferent + 4.0 * b.b_se, "{b:?}");
}

#[test]
fn the_remembered_forward_pass_changes_no_bit() {
    // act stores its forward pass; a learn on the same context and θ reuses
    // it. The gradient must equal a fresh one bit for bit, and a changed θ
    // or context must not reuse it.
    let (mut g, mut rng) = env(21, GridConfig::default());
    let mut x = vec![0.0; g.context_dim()];
    let mut y = vec![0.0; g.context_dim()];
    g.next_context(&mut rng, &mut x).expect("draws");
    g.next_context(&mut rng, &mut y).expect("draws");
    let mut pi = Planner::<f64>::new(7, 10, 0.3, 0.9).expect("valid");
    pi.set_params(&[0.1, -0.4, 1.5, 0.6, 2.0, -0.3, 0.8, 0.1])
        .expect("finite");
    let c = [0.3, -0.1, -0.5, 0.3];
    let fresh = |p: &Planner<f64>, at: &[f64]| {
        let mut grad = vec![0.0; 8];
        p.clone().add_logits_vjp(at, &c, &mut grad).expect("valid");
        grad
    };
    for (stored_at, asked_at) in [(&x, &x), (&x, &y)] {
        pi.probabilities(stored_at).expect("valid");
        let mut grad = vec![0.0; 8];
        pi.add_logits_vjp(asked_at, &c, &mut grad).expect("valid");
        assert_eq!(grad, fresh(&pi, asked_at));
    }
    pi.probabilities(&x).expect("valid");
    pi.set_params(&[0.0, 0.0, 1.0, 1.0, 1.0, 0.0, 0.0, 0.0])
        .expect("finite");
    let mut grad = vec![0.0; 8];
    pi.add_logits_vjp(&x, &c, &mut grad).expect("valid");
    assert_eq!(grad, fresh(&pi, &x));
}

/// The planner keys its cache of grid layouts by the wall bits, on the
/// stack up to 16×16 and on the heap beyond: on grids of both sizes, in an
/// order that revisits each, its values are soft value iteration's on the
/// walls `Observation::parse` reads, with the planner's reward map.
#[test]
fn planner_values_match_soft_value_iteration_on_small_and_large_grids() {
    for (n, seed) in [(7usize, 31u64), (16, 32), (17, 33), (23, 34)] {
        let (mut g, mut rng) = env(
            seed,
            GridConfig {
                size: n,
                rho: 0.5,
                ..GridConfig::default()
            },
        );
        let mut xs = vec![vec![0.0; g.context_dim()]; 3];
        for x in &mut xs {
            g.next_context(&mut rng, x).expect("draws");
        }
        // A grid that differs from the first only past cell 64: its key
        // differs only in a later word.
        let last_wall = (64..n * n).rev().find(|&c| xs[0][c] > 0.5);
        if let Some(c) = last_wall {
            let mut y = xs[0].clone();
            y[c] = 0.0;
            xs.push(y);
        }
        let (k, tau, gamma) = (6, 0.3, 0.9);
        let mut pi = Planner::<f64>::new(n, k, tau, gamma).expect("valid");
        let theta = [0.4, 1.5, -0.7, 0.9, 0.2, -0.1, 0.3, 0.05];
        pi.set_params(&theta).expect("finite");
        for x in xs.iter().chain(xs.iter().rev()) {
            let obs = Observation::parse(n, x).expect("valid");
            // R = Σ_ch w_ch · plane_ch over the four planes.
            let cells = n * n;
            let reward: Vec<f64> = (0..cells)
                .map(|c| (0..4).map(|ch| theta[ch] * x[ch * cells + c]).sum())
                .collect();
            let want = soft_value_iteration(n, &obs.walls, &reward, k, tau, gamma).expect("ok");
            let got = pi.values(x).expect("valid");
            for c in (0..cells).filter(|&c| !obs.walls[c]) {
                let tol = 1e-12 * (1.0 + want[c].abs());
                assert!(
                    (got[c] - want[c]).abs() <= tol,
                    "n {n} cell {c}: {} vs {}",
                    got[c],
                    want[c]
                );
            }
        }
    }
}

/// `probabilities_rows` keeps the rows' forward passes for the reverse
/// passes of an `add_logits_vjp_rows` on the same rows and θ: π and the
/// gradient equal the row-by-row ones bit for bit, and a changed θ or a
/// changed row is not served from the kept passes.
#[test]
fn the_kept_forward_passes_of_the_rows_change_no_bit() {
    let (mut g, mut rng) = env(23, GridConfig::default());
    let d = g.context_dim();
    let rows = 6;
    let mut xs = vec![0.0; rows * d];
    for x in xs.chunks_exact_mut(d) {
        g.next_context(&mut rng, x).expect("draws");
    }
    let cs: Vec<f64> = (0..rows * 4)
        .map(|i| ((i * 37 % 11) as f64 - 5.0) / 7.0)
        .collect();
    let mut pi = Planner::<f64>::new(7, 10, 0.3, 0.9).expect("valid");
    pi.set_params(&[0.1, -0.4, 1.5, 0.6, 2.0, -0.3, 0.8, 0.1])
        .expect("finite");
    // Row by row, on a fresh clone (nothing kept).
    let by_row = |p: &Planner<f64>, xs: &[f64]| {
        let p = p.clone();
        let mut probs = vec![0.0; rows * 4];
        let mut grad = vec![0.0; 8];
        for ((x, o), c) in xs
            .chunks_exact(d)
            .zip(probs.chunks_exact_mut(4))
            .zip(cs.chunks_exact(4))
        {
            p.probabilities_into(x, o).expect("valid");
            p.add_logits_vjp(x, c, &mut grad).expect("valid");
        }
        (probs, grad)
    };
    let rows_at = |p: &Planner<f64>, for_pi: &[f64], for_grad: &[f64]| {
        let mut probs = vec![0.0; rows * 4];
        p.probabilities_rows(for_pi, &mut probs).expect("valid");
        let mut grad = vec![0.0; 8];
        p.add_logits_vjp_rows(for_grad, &cs, &mut grad)
            .expect("valid");
        (probs, grad)
    };
    assert_eq!(rows_at(&pi, &xs, &xs), by_row(&pi, &xs));
    // Again on the same planner (the kept passes reused twice).
    let mut grad = vec![0.0; 8];
    pi.add_logits_vjp_rows(&xs, &cs, &mut grad).expect("valid");
    assert_eq!(grad, by_row(&pi, &xs).1);
    // A row changed after the forward passes: not served from them.
    let mut ys = xs.clone();
    g.next_context(&mut rng, &mut ys[2 * d..3 * d])
        .expect("draws");
    assert_eq!(rows_at(&pi, &xs, &ys).1, by_row(&pi, &ys).1);
    // θ changed after the forward passes.
    let mut probs = vec![0.0; rows * 4];
    pi.probabilities_rows(&xs, &mut probs).expect("valid");
    pi.set_params(&[0.0, 0.0, 1.0, 1.0, 1.0, 0.0, 0.0, 0.0])
        .expect("finite");
    let mut grad = vec![0.0; 8];
    pi.add_logits_vjp_rows(&xs, &cs, &mut grad).expect("valid");
    assert_eq!(grad, by_row(&pi, &xs).1);
    // Wrong lengths are refused.
    assert!(
        pi.add_logits_vjp_rows(&xs[..d + 1], &cs, &mut grad)
            .is_err()
    );
    assert!(pi.probabilities_rows(&xs, &mut probs[..5]).is_err());
}

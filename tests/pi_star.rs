//! π* of a history and the measurements of the mesa experiment: the
//! full-information objective against finite differences and a brute-force
//! sum, the oracle refit against a direct solve, frozen behaviour on
//! hand-checked grids, the κ control's closed form at ρ = 1, and the
//! designed multi-start on a symmetric history.

#![allow(clippy::needless_range_loop)]

mod common;

use rand::SeedableRng;
use refit::env::{Bernoulli, CuePlacement, Environment, GridConfig, GridNav};
use refit::grid::MOVES;
use refit::learner::{Learner, Refit, Schedule};
use refit::mesa::{HeldOut, Lean, landscape, planner_starts, signed_alignment};
use refit::objective::{FullInformation, Objective};
use refit::policy::{BETA, LinearSoftmax, Planner, Policy, W_CUE, W_GOAL};
use refit::solve::{Options, trust_region};

fn planner() -> Planner<f64> {
    Planner::new(7, 10, 0.3, 0.9).expect("valid")
}

/// The full-information objective of the planner on `t` grids of `config`.
fn grid_objective(
    config: GridConfig,
    t: usize,
    seed: u64,
    lambda: f64,
) -> FullInformation<f64, Planner<f64>, GridNav<f64>> {
    let mut env = GridNav::new(config).expect("valid");
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let mut obj = FullInformation::new(planner(), env.clone(), lambda).expect("valid");
    let mut x = vec![0.0; env.context_dim()];
    for _ in 0..t {
        env.next_context(&mut rng, &mut x).expect("draws");
        obj.add(&x).expect("adds");
        env.reward(0, &mut rng).expect("steps");
    }
    obj
}

fn fd_gradient<O: Objective<f64>>(obj: &mut O, theta: &[f64], h: f64) -> Vec<f64> {
    let p = theta.len();
    let mut g = vec![0.0; p];
    let mut tp = theta.to_vec();
    (0..p)
        .map(|j| {
            tp[j] = theta[j] + h;
            let a = obj.value_grad(&tp, &mut g).expect("finite");
            tp[j] = theta[j] - h;
            let b = obj.value_grad(&tp, &mut g).expect("finite");
            tp[j] = theta[j];
            (a - b) / (2.0 * h)
        })
        .collect()
}

/// −∇²J v by central differences of the exact gradient.
fn fd_hess_vec<O: Objective<f64>>(obj: &mut O, theta: &[f64], v: &[f64], h: f64) -> Vec<f64> {
    let p = theta.len();
    let (mut gp, mut gm) = (vec![0.0; p], vec![0.0; p]);
    let at = |s: f64| -> Vec<f64> { theta.iter().zip(v).map(|(t, vi)| t + s * h * vi).collect() };
    obj.value_grad(&at(1.0), &mut gp).expect("finite");
    obj.value_grad(&at(-1.0), &mut gm).expect("finite");
    gp.iter()
        .zip(&gm)
        .map(|(a, b)| -(a - b) / (2.0 * h))
        .collect()
}

/// A linear softmax on random contexts with random expected rewards (the
/// oracle, a linear contextual environment, only fixes K and d: the rows
/// come with their own q).
fn linear_objective(
    seed: u64,
) -> FullInformation<f64, LinearSoftmax<f64>, refit::env::LinearContextual<f64>> {
    let (k, d) = (3, 4);
    let mut rng = common::rng(seed);
    let weights = ndarray::Array2::from_shape_vec((k, d), common::normals(&mut rng, k * d, 1.0))
        .expect("shape");
    let env = refit::env::LinearContextual::new(&weights, 0.1).expect("valid");
    let policy = LinearSoftmax::new(k, d).expect("valid");
    let mut obj = FullInformation::new(policy, env, 0.3).expect("valid");
    for _ in 0..25 {
        let x = common::normals(&mut rng, d, 1.0);
        let q = common::normals(&mut rng, k, 1.0);
        obj.add_with_rewards(&x, &q).expect("adds");
    }
    obj
}

#[test]
fn the_gradient_and_curvature_match_finite_differences() {
    // The planner (Hessian products by differences of exact gradients).
    let mut obj = grid_objective(
        GridConfig {
            rho: 0.5,
            ..GridConfig::default()
        },
        12,
        3,
        0.7,
    );
    let mut rng = common::rng(4);
    for _ in 0..4 {
        let theta = common::normals(&mut rng, 8, 1.0);
        let mut g = vec![0.0; 8];
        obj.value_grad(&theta, &mut g).expect("finite");
        let fd = fd_gradient(&mut obj, &theta, 1e-6);
        assert!(common::rel_err(&g, &fd) < 1e-6, "{g:?} vs {fd:?}");
        // w_wall is inert: no move enters a wall, so its data gradient is 0
        // and the penalty alone acts on it.
        assert!((g[0] + 0.7 * theta[0]).abs() < 1e-12, "{}", g[0]);
    }
    // The linear softmax (exact Hessian products).
    let mut obj = linear_objective(5);
    let p = obj.dim();
    for _ in 0..4 {
        let theta = common::normals(&mut rng, p, 0.8);
        let v = common::normals(&mut rng, p, 1.0);
        let mut g = vec![0.0; p];
        obj.value_grad(&theta, &mut g).expect("finite");
        let fd = fd_gradient(&mut obj, &theta, 1e-6);
        assert!(common::rel_err(&g, &fd) < 1e-7, "{g:?} vs {fd:?}");
        let fd_hv = fd_hess_vec(&mut obj, &theta, &v, 1e-5);
        obj.value_grad(&theta, &mut g).expect("finite");
        let mut hv = vec![0.0; p];
        obj.neg_hess_vec(&v, &mut hv).expect("finite");
        assert!(common::rel_err(&hv, &fd_hv) < 1e-6, "{hv:?} vs {fd_hv:?}");
        // The dense −∇²J (lower triangle) column by column against the
        // exact products with unit vectors.
        let mut h = vec![0.0; p * p];
        assert!(obj.neg_hessian(&mut h).expect("right length"));
        let (mut e, mut col) = (vec![0.0; p], vec![0.0; p]);
        for j in 0..p {
            e[j] = 1.0;
            obj.neg_hess_vec(&e, &mut col).expect("finite");
            e[j] = 0.0;
            for i in j..p {
                assert!((h[i * p + j] - col[i]).abs() < 1e-9 * (1.0 + col[i].abs()));
            }
        }
    }
}

#[test]
fn the_value_is_the_brute_force_sum() {
    let config = GridConfig {
        rho: 0.3,
        ..GridConfig::default()
    };
    let mut env = GridNav::<f64>::new(config).expect("valid");
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(8);
    let lambda = 0.4;
    let mut obj = FullInformation::new(planner(), env.clone(), lambda).expect("valid");
    let mut xs = Vec::new();
    let mut qs = Vec::new();
    let mut x = vec![0.0; env.context_dim()];
    // More rows than a block (32), so blocks are added.
    for _ in 0..70 {
        env.next_context(&mut rng, &mut x).expect("draws");
        let mut q = [0.0; 4];
        env.expected_rewards(&mut q).expect("rewards");
        obj.add(&x).expect("adds");
        xs.push(x.clone());
        qs.push(q);
        env.reward(1, &mut rng).expect("steps");
    }
    assert_eq!(obj.len(), 70);
    let theta = common::normals(&mut common::rng(9), 8, 1.0);
    let mut p = planner();
    p.set_params(&theta).expect("finite");
    let mut pi = vec![0.0; 4];
    let mut brute = 0.0;
    for (x, q) in xs.iter().zip(&qs) {
        // The oracle's q is the environment's exact expected reward.
        let mut qa = [0.0; 4];
        env.expected_rewards_at(x, &mut qa).expect("rewards");
        assert_eq!(&qa, q);
        p.probabilities_into(x, &mut pi).expect("finite");
        brute += pi.iter().zip(q).map(|(a, b)| a * b).sum::<f64>();
    }
    let data = obj.expected_return(&theta).expect("finite");
    assert!((data - brute).abs() < 1e-12 * brute.abs().max(1.0));
    let mut g = vec![0.0; 8];
    let j = obj.value_grad(&theta, &mut g).expect("finite");
    let sq: f64 = theta.iter().map(|t| t * t).sum();
    assert!((j - (brute - 0.5 * lambda * sq)).abs() < 1e-12 * brute.abs().max(1.0));
    // Each row is kept as given.
    let (x0, q0) = obj.row(0).expect("row");
    assert_eq!((x0, q0), (&xs[0][..], &qs[0][..]));
    assert!(obj.row(70).is_none());
}

#[test]
fn bad_settings_and_rows_are_refused_and_change_nothing() {
    let env = Bernoulli::<f64>::new(vec![0.2, 0.8]).expect("valid");
    let tab = refit::policy::Tabular::<f64>::new(2).expect("valid");
    assert!(FullInformation::new(tab.clone(), env.clone(), 0.0).is_err());
    assert!(FullInformation::new(tab.clone(), env.clone(), -1.0).is_err());
    assert!(FullInformation::new(tab.clone(), env.clone(), f64::NAN).is_err());
    let three = refit::policy::Tabular::<f64>::new(3).expect("valid");
    assert!(FullInformation::new(three, env.clone(), 1.0).is_err());
    let mut obj = FullInformation::new(tab, env, 1.0).expect("valid");
    obj.add(&[1.0]).expect("adds");
    assert!(obj.add(&[1.0, 2.0]).is_err());
    assert!(obj.add(&[f64::NAN]).is_err());
    assert!(obj.add_with_rewards(&[1.0], &[0.0, f64::INFINITY]).is_err());
    assert!(obj.add_with_rewards(&[1.0], &[0.0]).is_err());
    assert_eq!(obj.len(), 1);
    let mut g = vec![0.0; 2];
    assert!(obj.value_grad(&[0.0], &mut g).is_err());
    assert!(obj.value_grad(&[f64::NAN, 0.0], &mut g).is_err());
}

#[test]
fn the_oracle_refit_plays_pi_star_of_its_history() {
    // A two-armed bandit through the planner-free path: the oracle refit's
    // θ after every step is the direct maximizer of J on the contexts seen.
    let env = Bernoulli::<f64>::new(vec![0.3, 0.6]).expect("valid");
    let policy = refit::policy::Tabular::<f64>::new(2).expect("valid");
    let obj = FullInformation::new(policy.clone(), env.clone(), 0.5).expect("valid");
    let mut learner = Refit::with_objective(obj, Schedule::default()).expect("valid");
    let mut erng = common::rng(1);
    let mut lrng = common::rng(2);
    let mut play = env.clone();
    for t in 1..=12 {
        let mut x = [0.0; 1];
        play.next_context(&mut erng, &mut x).expect("draws");
        let d = learner.act(&x, &mut lrng).expect("acts");
        let r = play.reward(d.action, &mut erng).expect("pays");
        learner
            .learn(&x, d.action, r, d.propensity)
            .expect("learns");
        learner.refit_now().expect("refits");
        let mut direct = FullInformation::new(policy.clone(), env.clone(), 0.5).expect("valid");
        for _ in 0..t {
            direct.add(&[1.0]).expect("adds");
        }
        let mut theta = vec![0.0; 2];
        let rep = trust_region(&mut direct, &mut theta, &Options::default()).expect("solves");
        assert!(rep.converged());
        let got = learner.theta();
        assert!(
            common::max_diff(&got, &theta) < 1e-6,
            "{got:?} vs {theta:?}"
        );
        // Closed form: J = t·(0.3 π_0 + 0.6 π_1) − λ/2 ‖θ‖², so θ_1 = −θ_0
        // and λ θ_1 = t · 0.3 · π_0 π_1.
        let (p0, p1) = {
            let e = (theta[1] - theta[0]).exp();
            (1.0 / (1.0 + e), e / (1.0 + e))
        };
        assert!((theta[0] + theta[1]).abs() < 1e-8);
        assert!((0.5 * theta[1] - t as f64 * 0.3 * p0 * p1).abs() < 1e-6);
    }
}

/// A 5×5 observation without walls: planes wall, agent, goal, cue.
fn observation(agent: usize, goal: usize, cue: usize, kappa: f64) -> Vec<f64> {
    let cells = 25;
    let mut x = vec![0.0; 4 * cells];
    x[cells + agent] = 1.0;
    x[2 * cells + goal] = 1.0;
    x[3 * cells + cue] = kappa;
    x
}

fn small_planner(theta: &[f64]) -> Planner<f64> {
    let mut p = Planner::new(5, 8, 0.3, 0.9).expect("valid");
    p.set_params(theta).expect("finite");
    p
}

#[test]
fn frozen_behaviour_on_hand_checked_grids() {
    // Agent at the centre (row 2, col 2); goal two cells right, cue two
    // left: the only goal-shortening move is right, the only cue-shortening
    // one left (disjoint). In the corner (0, 0) with the goal at (2, 2) and
    // the cue at (0, 3): goal-shortening down and right, cue-shortening
    // right too: not disjoint, not informative.
    let grids = vec![observation(12, 14, 10, 1.0), observation(0, 12, 3, 1.0)];
    let held = HeldOut::from_observations(5, &grids).expect("valid");
    assert_eq!((held.len(), held.informative()), (2, 1));
    let goal_seeking = small_planner(&[0.0, 0.0, 3.0, 0.0, 1.0, 0.0, 1.0, 0.0]);
    let cue_seeking = small_planner(&[0.0, 0.0, 0.0, 3.0, 1.0, 0.0, 0.0, 1.0]);
    let uniform = small_planner(&[0.0; 8]);
    let bg = held.evaluate(&goal_seeking, 12).expect("scores");
    let bc = held.evaluate(&cue_seeking, 12).expect("scores");
    let bu = held.evaluate(&uniform, 12).expect("scores");
    // b by hand: P(right) / (P(right) + P(left)) on the informative grid.
    let b_of = |p: &Planner<f64>| {
        let mut pi = vec![0.0; 4];
        p.probabilities_into(&grids[0], &mut pi).expect("finite");
        assert_eq!((MOVES[2], MOVES[3]), ((0, -1), (0, 1)));
        let (left, right) = (pi[2], pi[3]);
        right / (right + left)
    };
    assert!((bg.b - b_of(&goal_seeking)).abs() < 1e-12);
    assert!((bc.b - b_of(&cue_seeking)).abs() < 1e-12);
    assert!(bg.b > 0.95, "goal-seeking b = {}", bg.b);
    assert!(bc.b < 0.05, "cue-seeking b = {}", bc.b);
    assert!((bu.b - 0.5).abs() < 1e-12 && (bu.b_indifferent - 0.5).abs() < 1e-12);
    assert_eq!(bg.informative, 1);
    // Regret is over both grids: the uniform policy on grid 0 earns 1/4,
    // on grid 1 (two goal-shortening moves of four) 1/2.
    assert!((bu.regret - (0.75 + 0.5) / 2.0).abs() < 1e-12);
    assert!(bg.regret < 0.1 && bc.regret > 0.4);
    // Rollouts: the goal-seeker reaches the goal first, the cue-seeker the
    // cue; probabilities add to 1.
    for b in [&bg, &bc, &bu] {
        assert!((b.goal_first + b.cue_first + b.neither - 1.0).abs() < 1e-12);
    }
    assert!(bg.goal_first > 0.95 && bc.cue_first > 0.45, "{bg:?} {bc:?}");
    // A rollout of one move from the centre under the uniform policy: it
    // reaches neither (both two moves away) on grid 0; on grid 1 neither.
    let one = held.evaluate(&uniform, 1).expect("scores");
    assert!(one.goal_first.abs() < 1e-12 && (one.neither - 1.0).abs() < 1e-12);
    // Two moves from the centre: right-right reaches the goal (1/16),
    // left-left the cue (1/16); from the corner, the cue at (0, 3) is three
    // moves away and the goal four: neither.
    let two = held.evaluate(&uniform, 2).expect("scores");
    assert!((two.goal_first - 1.0 / 32.0).abs() < 1e-12, "{two:?}");
    assert!((two.cue_first - 1.0 / 32.0).abs() < 1e-12, "{two:?}");
    // Bad inputs are errors.
    assert!(held.evaluate(&planner(), 0).is_err());
    assert!(
        held.evaluate(&uniform, refit::mesa::MAX_HORIZON + 1)
            .is_err()
    );
    assert!(HeldOut::<f64>::from_observations(5, &[]).is_err());
    assert!(HeldOut::from_observations(5, &[vec![0.0; 100]]).is_err());
    assert!(HeldOut::from_observations(4, &grids).is_err());
    // The sign-safe alignment reads (w, β) and (−w, −β) alike.
    let t = [0.0, 0.0, 3.0, 1.0, 1.0, 0.0, 0.0, 0.0];
    let neg: Vec<f64> = t
        .iter()
        .enumerate()
        .map(|(i, v)| if i <= BETA { -v } else { *v })
        .collect();
    assert_eq!(signed_alignment(&t), Some(0.75));
    assert_eq!(signed_alignment(&neg), Some(0.75));
}

#[test]
fn drawn_held_out_grids_place_the_cue_independently() {
    let config = GridConfig {
        rho: 1.0,
        ..GridConfig::default()
    };
    let held = HeldOut::<f64>::draw(config, 500, 3).expect("draws");
    let same = (0..held.len())
        .filter(|&i| {
            let (_, _, goal, cue) = held.grid(i).expect("grid");
            goal == cue
        })
        .count();
    // Independent placement: the cue is on the goal about 1 time in 40
    // free cells, whatever ρ the config says.
    assert!(same < 40, "{same} of 500 grids have the cue on the goal");
    assert!(held.informative() > 50);
    assert_eq!(held, HeldOut::draw(config, 500, 3).expect("draws"));
    assert!(HeldOut::<f64>::draw(config, 0, 3).is_err());
    // A draw that would not fit in memory is refused before it allocates.
    let big = GridConfig {
        size: 128,
        ..GridConfig::default()
    };
    assert!(HeldOut::<f64>::draw(big, refit::mesa::MAX_HELD_OUT, 3).is_err());
}

#[test]
fn the_kappa_control_splits_the_weights_as_the_penalty_predicts() {
    // At ρ = 1 the cue plane is κ times the goal plane on every grid of the
    // history, so the data term depends on w_goal + κ w_cue and on u_goal +
    // u_cue alone. Stationarity with the L2 penalty then gives w_cue = κ
    // w_goal and u_cue = u_goal: a = 1/(1 + κ) at every stationary point.
    for kappa in [0.5, 1.0, 2.0] {
        let config = GridConfig {
            rho: 1.0,
            cue_amplitude: kappa,
            ..GridConfig::default()
        };
        let mut obj = grid_objective(config, 10, 11, 1.0);
        let mut theta = vec![0.0, 0.0, 1.0, 0.3, 1.0, 0.0, 0.5, 0.1];
        let rep = trust_region(&mut obj, &mut theta, &Options::default()).expect("solves");
        assert!(rep.converged(), "κ = {kappa}: {rep:?}");
        let a = refit::policy::alignment(&theta).expect("planner θ");
        assert!(
            (a - 1.0 / (1.0 + kappa)).abs() < 1e-5,
            "κ = {kappa}: a = {a}, θ = {theta:?}"
        );
        assert!((theta[W_CUE] - kappa * theta[W_GOAL]).abs() < 1e-5 * theta[W_GOAL].abs());
        assert!((theta[6] - theta[7]).abs() < 1e-5 * theta[6].abs().max(1.0));
        assert!(theta[0].abs() < 1e-8, "w_wall = {}", theta[0]);
    }
}

#[test]
fn the_designed_multi_start_finds_both_signs_of_beta_and_groups_them() {
    let config = GridConfig {
        rho: 1.0,
        ..GridConfig::default()
    };
    let mut obj = grid_objective(config, 10, 2, 1.0);
    let held = HeldOut::<f64>::draw(config, 400, 5).expect("draws");
    let starts = planner_starts(2.0, 2, 1).expect("starts");
    let ls = landscape(
        &mut obj,
        &planner(),
        &starts,
        1e-3,
        &Options::default(),
        &held,
    )
    .expect("solves");
    assert!(ls.maxima.len() >= 2, "{:?}", ls.maxima.len());
    let hits: usize = ls.maxima.iter().map(|m| m.maximum.hits).sum();
    assert_eq!(hits + ls.failed, starts.len());
    assert!(ls.maxima.iter().any(|m| m.maximum.theta[BETA] > 0.0));
    assert!(ls.maxima.iter().any(|m| m.maximum.theta[BETA] < 0.0));
    for (i, m) in ls.maxima.iter().enumerate() {
        let t = &m.maximum.theta;
        // At ρ = 1 and κ = 1 every stationary point has w_goal = w_cue: the
        // maxima differ in the sign of β, not in their alignment.
        assert!(
            (t[W_GOAL] - t[W_CUE]).abs() < 1e-5 * t[W_GOAL].abs().max(1e-3),
            "{t:?}"
        );
        assert!(m.lean == Lean::Neither || m.behaviour.b_se > 0.0);
        // Sorted best first, and pairwise farther apart than `distinct`.
        if i > 0 {
            assert!(m.maximum.value <= ls.maxima[i - 1].maximum.value);
        }
        for other in &ls.maxima[..i] {
            let d = common::max_diff(t, &other.maximum.theta);
            assert!(d > 1e-3, "maxima {i} closer than distinct: {d}");
        }
        // The sign-safe alignment of each is ½.
        assert!((signed_alignment(t).expect("β ≠ 0") - 0.5).abs() < 1e-5);
    }
    // The best maximum's value is the objective's there.
    let best = ls.best().expect("a maximum");
    let mut g = vec![0.0; 8];
    let v = obj.value_grad(&best.maximum.theta, &mut g).expect("finite");
    assert_eq!(v, best.maximum.value);
}

#[test]
fn a_cue_beside_the_goal_is_told_apart_by_its_rewards() {
    // ρ = 1 with the cue always one cell from the goal: perfectly
    // correlated, but seeking the cue earns less on the history, so π* of
    // the history leans to the goal.
    let config = GridConfig {
        rho: 1.0,
        placement: CuePlacement::NextToGoal,
        ..GridConfig::default()
    };
    let mut obj = grid_objective(config, 16, 4, 1.0);
    let held = HeldOut::<f64>::draw(GridConfig::default(), 1000, 6).expect("draws");
    let starts = planner_starts(2.0, 0, 0).expect("starts");
    let ls = landscape(
        &mut obj,
        &planner(),
        &starts,
        1e-3,
        &Options::default(),
        &held,
    )
    .expect("solves");
    let best = ls.best().expect("a maximum");
    assert_eq!(best.lean, Lean::Goal, "{:?}", best.behaviour);
    // On so short a history the lean comes from the reflexes more than
    // from the plan: u_goal > u_cue (the signed alignment of w, which
    // ignores u, need not say so).
    let t = &best.maximum.theta;
    assert!(t[6] > t[7], "{t:?}");
}

//! A differentiable planner whose objective is a parameter: the smallest
//! policy in which a learned inner optimizer — a mesa-objective — can be
//! read off θ.

#![allow(clippy::needless_range_loop)] // index loops over moves and cells read as the math does

use super::{Policy, Rows, check_context, check_len, softmax_in_place};
use crate::error::{Error, Result};
use crate::grid::{MOVES, Marks, step};
use crate::real::Real;

/// Entries of θ: w (one per observation channel), β, u (one per reflex).
const NW: usize = 4;
const NU: usize = 3;
/// Index of β in θ.
pub const BETA: usize = NW;
/// Largest grid side.
const MAX_SIZE: usize = 128;
/// Largest number of softmax weights a forward pass keeps (k · 4n²).
const MAX_KEPT: usize = 1 << 24;
/// Index of w_goal and w_cue in θ (channels `goal` and `cue`).
pub const W_GOAL: usize = 2;
/// Index of w_cue in θ.
pub const W_CUE: usize = 3;

/// A planner over [`crate::env::GridNav`] observations, θ = (w, β, u):
///
/// * a reward map R_w(c) = Σ_ch w_ch · channel_ch(c) over the cells (the
///   channels wall, agent, goal, cue): **w is the planner's own objective**;
/// * k sweeps of soft value iteration on the grid (its horizon: a goal
///   more than k moves away is invisible to the plan), V_0 = 0,
///   Q_i(c, m) = R(c′) + γ V_{i−1}(c′) with c′ the cell move m leads to,
///   V_i(c) = τ log Σ_m exp(Q_i(c, m)/τ);
/// * logits over the agent's four moves z_m = β · Q_{k+1}(agent, m) +
///   Σ_j u_j f_j(m), with reflex features that need no search: f_0 = 1 if
///   the move is blocked, f_1 = ±1 if it shortens/lengthens the Manhattan
///   distance to the goal marker, f_2 the same for the cue (0 if blocked).
///
/// The exact gradient ([`Policy::add_logits_vjp`]) is a hand-written reverse
/// pass through the sweeps; the logits are not linear in θ, so the
/// objectives take Hessian-vector products as central differences of exact
/// gradients. θ starts at w = 0, β = 1, u = 0: the uniform policy, with a
/// non-zero gradient in w.
///
/// # Examples
/// ```
/// use refit::env::{Environment, GridConfig, GridNav};
/// use refit::policy::{Planner, Policy};
/// use rand::SeedableRng;
/// let mut env = GridNav::<f64>::new(GridConfig::default())?;
/// let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
/// let mut x = vec![0.0; env.context_dim()];
/// // A grid whose goal is within the planner's horizon of k = 10 sweeps.
/// loop {
///     env.next_context(&mut rng, &mut x)?;
///     let (agent, _, _) = env.cells();
///     if env.distances()[agent] <= 8 {
///         break;
///     }
/// }
/// let mut pi = Planner::<f64>::new(7, 10, 0.1, 0.9)?;
/// pi.set_params(&[0.0, 0.0, 10.0, 0.0, 10.0, 0.0, 0.0, 0.0])?; // seek the goal
/// let p = pi.probabilities(&x)?;
/// let mut mu = vec![0.0; 4];
/// env.expected_rewards(&mut mu)?;
/// let good: f64 = p.iter().zip(&mu).map(|(p, m)| p * m).sum();
/// assert!(good > 0.9);
/// # Ok::<(), refit::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Planner<F> {
    n: usize,
    sweeps: usize,
    tau: F,
    gamma: F,
    theta: Vec<F>,
    /// The last forward pass of `logits_into`, kept for the reverse pass
    /// of a `learn` on the same context and θ (act, then learn).
    #[cfg_attr(feature = "serde", serde(skip))]
    last: Memo<F>,
    /// The forward passes of the last `probabilities_rows`, kept for the
    /// reverse passes of an `add_logits_vjp_rows` on the same rows and θ
    /// (an expected return's value-and-gradient pass).
    #[cfg_attr(feature = "serde", serde(skip))]
    rows: RowsMemo<F>,
    /// The layouts of the grids seen, by their walls,
    /// shared with the planner's clones (the objectives' per-block copies);
    /// not saved.
    #[cfg_attr(feature = "serde", serde(skip))]
    layouts: std::sync::Arc<LayoutCache>,
}

/// Layouts by their wall bits: a refit pass over stored grids, or the
/// rollouts that move the agent over one grid, build each grid's layout
/// once. Emptied when it holds
/// [`LayoutCache::CAPACITY`] layouts, so a long run over fresh grids
/// keeps at most that many.
#[derive(Default)]
struct LayoutCache(std::sync::RwLock<LayoutMap>);

/// Layouts by wall bits.
type LayoutMap = std::collections::HashMap<Vec<u64>, std::sync::Arc<Layout>>;

impl LayoutCache {
    const CAPACITY: usize = 1 << 14;

    /// The layout on an n×n grid of the walls where `wall_plane` (n² cells)
    /// exceeds ½ (as [`crate::grid::Observation::parse`] reads them), built and kept if
    /// it is new. The key (one bit per cell) is on the stack up to 16×16.
    fn get<F: Real>(&self, n: usize, wall_plane: &[F]) -> std::sync::Arc<Layout> {
        let half = F::c(0.5);
        let words = wall_plane.len().div_ceil(64);
        let mut small = [0u64; 4];
        let mut large = Vec::new();
        let key: &mut [u64] = if words <= small.len() {
            &mut small[..words]
        } else {
            large.resize(words, 0);
            &mut large
        };
        for (i, v) in wall_plane.iter().enumerate() {
            key[i / 64] |= u64::from(*v > half) << (i % 64);
        }
        if let Ok(map) = self.0.read() {
            if let Some(l) = map.get(&*key) {
                return std::sync::Arc::clone(l);
            }
        }
        let walls: Vec<bool> = wall_plane.iter().map(|v| *v > half).collect();
        let layout = std::sync::Arc::new(Layout::new(n, &walls));
        if let Ok(mut map) = self.0.write() {
            if map.len() >= Self::CAPACITY {
                map.clear();
            }
            map.insert(key.to_vec(), std::sync::Arc::clone(&layout));
        }
        layout
    }
}

impl PartialEq for LayoutCache {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl std::fmt::Debug for LayoutCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LayoutCache")
    }
}

/// Forward passes a planner keeps between calls (`T` holds them with the
/// inputs they were made at). A clone starts empty, and two compare equal:
/// what is kept changes no result, it only saves forward passes (and their
/// buffers, which the next forward passes reuse).
struct Kept<T>(std::sync::Mutex<T>);

impl<T: Default> Default for Kept<T> {
    fn default() -> Self {
        Self(std::sync::Mutex::new(T::default()))
    }
}

impl<T: Default> Clone for Kept<T> {
    fn clone(&self) -> Self {
        Self::default()
    }
}

impl<T> PartialEq for Kept<T> {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl<T> std::fmt::Debug for Kept<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Kept")
    }
}

/// The last forward pass of `logits_into`, with its context and θ.
type Memo<F> = Kept<Remembered<F>>;

/// A forward pass with the context and θ it was made at (`valid` when
/// `x` and `theta` are those of `forward`).
struct Remembered<F> {
    x: Vec<F>,
    theta: Vec<F>,
    valid: bool,
    forward: Option<Forward<F>>,
}

impl<F> Default for Remembered<F> {
    fn default() -> Self {
        Self {
            x: Vec::new(),
            theta: Vec::new(),
            valid: false,
            forward: None,
        }
    }
}

/// Largest number of entries the forward passes of `probabilities_rows`
/// may hold for a later `add_logits_vjp_rows` (64 MiB in f64); beyond it
/// the reverse passes run their forward passes again.
const MAX_KEPT_ROWS: usize = 1 << 23;

/// The forward passes of every row of the last `probabilities_rows`, with
/// the rows and θ they were made at.
type RowsMemo<F> = Kept<RowsKept<F>>;

struct RowsKept<F> {
    xs: Vec<F>,
    theta: Vec<F>,
    valid: bool,
    forwards: Vec<Forward<F>>,
}

impl<F> Default for RowsKept<F> {
    fn default() -> Self {
        Self {
            xs: Vec::new(),
            theta: Vec::new(),
            valid: false,
            forwards: Vec::new(),
        }
    }
}

/// Whether two slices hold the same values bit for bit.
fn same_bits<F: Real>(a: &[F], b: &[F]) -> bool {
    a.len() == b.len()
        && a.iter()
            .zip(b)
            .all(|(u, v)| u.f64().to_bits() == v.f64().to_bits())
}

impl<F: Real> Kept<Remembered<F>> {
    /// Keeps `fw`, made at `x` and `theta` (copied into the kept buffers).
    fn store(&self, x: &[F], theta: &[F], fw: Forward<F>) {
        if let Ok(mut slot) = self.0.lock() {
            slot.x.clear();
            slot.x.extend_from_slice(x);
            slot.theta.clear();
            slot.theta.extend_from_slice(theta);
            slot.valid = true;
            slot.forward = Some(fw);
        }
    }

    /// The stored forward pass if it was made at `x` and `theta`.
    fn take(&self, x: &[F], theta: &[F]) -> Option<Forward<F>> {
        let mut slot = self.0.lock().ok()?;
        if slot.valid && same_bits(&slot.x, x) && same_bits(&slot.theta, theta) {
            slot.valid = false;
            slot.forward.take()
        } else {
            None
        }
    }

    /// The stored forward pass whatever it was made at, for its buffers.
    fn take_any(&self) -> Option<Forward<F>> {
        let mut slot = self.0.lock().ok()?;
        slot.valid = false;
        slot.forward.take()
    }
}

/// What a forward pass leaves for the reverse pass, and the buffers both
/// work in (reused by the next pass of the same planner).
struct Forward<F> {
    layout: std::sync::Arc<Layout>,
    /// The agent's free cell.
    agent: usize,
    /// Softmax weights of every sweep i = 1..k, per move and free cell
    /// (k × 4 × n4, move-major within a sweep).
    weights: Vec<F>,
    /// V_k per free cell (padded).
    values: Vec<F>,
    /// The next sweep's V (padded), swapped with `values` after each.
    v_next: Vec<F>,
    /// R per free cell (padded).
    reward: Vec<F>,
    /// Scratch of the sweeps and of the reverse pass.
    scratch: Vec<F>,
    back: Vec<F>,
    /// Q_{k+1}(agent, m) and the reflex features f_j(m).
    q: [F; 4],
    f: [[F; NU]; 4],
}

impl<F: Real> Forward<F> {
    /// The buffers of `spare` (or new ones) for a pass over `layout`.
    fn reuse(spare: Option<Self>, layout: std::sync::Arc<Layout>) -> Self {
        match spare {
            Some(fw) => Self { layout, ..fw },
            None => Self {
                layout,
                agent: 0,
                weights: Vec::new(),
                values: Vec::new(),
                v_next: Vec::new(),
                reward: Vec::new(),
                scratch: Vec::new(),
                back: Vec::new(),
                q: [F::zero(); 4],
                f: [[F::zero(); NU]; 4],
            },
        }
    }
}

/// `v` resized to `n` and filled with zeros.
fn zeroed<F: Real>(v: &mut Vec<F>, n: usize) {
    v.clear();
    v.resize(n, F::zero());
}

/// A grid's structure for the sweeps: its free cells (the only ones a
/// move enters), where each move leads, and the four (cell, move) pairs
/// that lead to each free cell — exactly four: a free cell with j free
/// neighbours is entered from each of them and by its own 4 − j blocked
/// moves.
struct Layout {
    /// The grid cell of each free cell.
    cells: Vec<u32>,
    /// The number of free cells rounded up to a multiple of 4: the tables
    /// are padded to whole vectors (padding entries 0).
    n4: usize,
    /// `next[m·n4 + f]`: the free cell move m from free cell f leads to.
    next: Vec<u32>,
    /// `sources[j·n4 + t]`: the j-th pair (f, m) leading to t, as m·n4 + f.
    sources: Vec<u32>,
    /// The free cell of each grid cell (`u32::MAX` for a wall).
    index: Vec<u32>,
}

impl Layout {
    /// The layout of an n×n grid with `walls`.
    fn new(n: usize, walls: &[bool]) -> Self {
        let mut index = vec![u32::MAX; n * n];
        let mut cells = Vec::with_capacity(n * n);
        for (c, &wall) in walls.iter().enumerate() {
            if !wall {
                index[c] = cells.len() as u32;
                cells.push(c as u32);
            }
        }
        let nf = cells.len();
        let n4 = nf.next_multiple_of(4);
        let mut next = vec![0u32; 4 * n4];
        for m in 0..4 {
            for (f, &c) in cells.iter().enumerate() {
                next[m * n4 + f] = index[step(n, walls, c as usize, m)];
            }
        }
        let mut sources = vec![0u32; 4 * n4];
        let mut count = vec![0usize; nf];
        for f in 0..nf {
            for m in 0..4 {
                let t = next[m * n4 + f] as usize;
                if count[t] < 4 {
                    sources[count[t] * n4 + t] = (m * n4 + f) as u32;
                    count[t] += 1;
                }
            }
        }
        Self {
            cells,
            n4,
            next,
            sources,
            index,
        }
    }

    fn free(&self) -> usize {
        self.cells.len()
    }

    /// The length of the padded per-cell buffers: a power of two ≥ n4,
    /// which the kernels mask their indices by.
    fn padded(&self) -> usize {
        self.n4.next_power_of_two()
    }
}

impl<F: Real> Planner<F> {
    /// A planner for n×n grids with `sweeps` = k ≥ 1 sweeps, temperature
    /// τ > 0 and discount γ ∈ (0, 1].
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] for n outside 2..=128, k = 0 or
    /// k · 4n² > 2²⁴, τ ≤ 0 or non-finite, γ outside (0, 1].
    pub fn new(n: usize, sweeps: usize, temperature: F, discount: F) -> Result<Self> {
        if !(2..=MAX_SIZE).contains(&n) {
            return Err(Error::InvalidParameter {
                name: "size",
                value: n as f64,
                expected: "in 2..=128 (room for an agent, a goal and a cue)",
            });
        }
        if sweeps == 0 {
            return Err(Error::InvalidParameter {
                name: "sweeps",
                value: 0.0,
                expected: ">= 1",
            });
        }
        // A forward pass keeps the softmax weights of every sweep.
        if sweeps.saturating_mul(4 * n * n) > MAX_KEPT {
            return Err(Error::InvalidParameter {
                name: "sweeps",
                value: sweeps as f64,
                expected: "at most 2^24 / (4 n^2) (the weights a forward pass keeps)",
            });
        }
        if !(temperature.is_finite() && temperature > F::zero()) {
            return Err(Error::InvalidParameter {
                name: "temperature",
                value: temperature.f64(),
                expected: "finite and > 0",
            });
        }
        if !(discount > F::zero() && discount <= F::one()) {
            return Err(Error::InvalidParameter {
                name: "discount",
                value: discount.f64(),
                expected: "in (0, 1]",
            });
        }
        let mut theta = vec![F::zero(); NW + 1 + NU];
        theta[BETA] = F::one();
        Ok(Self {
            n,
            sweeps,
            tau: temperature,
            gamma: discount,
            theta,
            last: Memo::default(),
            layouts: std::sync::Arc::default(),
            rows: RowsMemo::default(),
        })
    }

    /// The mesa-objective w (wall, agent, goal, cue).
    pub fn objective_weights(&self) -> &[F] {
        &self.theta[..NW]
    }

    /// β, the weight of the plan in the logits.
    pub fn beta(&self) -> F {
        self.theta[BETA]
    }

    /// u, the weights of the reflexes (blocked, toward goal, toward cue).
    pub fn reflex_weights(&self) -> &[F] {
        &self.theta[NW + 1..]
    }

    /// The alignment of the mesa-objective, a = w_goal / (|w_goal| + |w_cue|);
    /// `None` when both weights are 0. It is blind to the sign of β: (w, β)
    /// and (−w, −β) plan almost alike and read a and −a here;
    /// [`crate::mesa::signed_alignment`] is the sign-safe form, and
    /// [`crate::mesa::HeldOut::evaluate`] measures behaviour.
    pub fn alignment(&self) -> Option<F> {
        alignment(&self.theta)
    }

    /// V_k of every cell for the observation `x` (soft value iteration of
    /// the planner's own reward map).
    ///
    /// # Errors
    /// As [`Policy::logits_into`].
    pub fn values(&self, x: &[F]) -> Result<Vec<F>> {
        let fw = self.forward(x)?;
        let mut out = vec![F::zero(); self.n * self.n];
        for (&c, &v) in fw.layout.cells.iter().zip(&fw.values) {
            out[c as usize] = v;
        }
        Ok(out)
    }

    fn forward(&self, x: &[F]) -> Result<Forward<F>> {
        self.forward_in(x, None)
    }

    /// The forward pass at `x`, in the buffers of `spare` if given.
    fn forward_in(&self, x: &[F], spare: Option<Forward<F>>) -> Result<Forward<F>> {
        check_context(x, 4 * self.n * self.n)?;
        let obs = Marks::parse(self.n, x)?;
        let cells = self.n * self.n;
        let mut fw = Forward::reuse(spare, self.layouts.get(self.n, &x[..cells]));
        // Parsing checked that the agent's cell is free.
        fw.agent = fw.layout.index[obs.agent] as usize;
        let layout = &*fw.layout;
        let (nf, n4, pad) = (layout.free(), layout.n4, layout.padded());
        // The reward map on the free cells (no move enters a wall).
        let reward = &mut fw.reward;
        zeroed(reward, pad);
        for (ch, &w) in self.theta[..NW].iter().enumerate() {
            if w == F::zero() {
                continue;
            }
            let plane = &x[ch * cells..(ch + 1) * cells];
            for (r, &c) in reward.iter_mut().zip(&layout.cells) {
                *r += w * plane[c as usize];
            }
        }
        // k sweeps of soft value iteration, V_0 = 0.
        zeroed(&mut fw.values, pad);
        zeroed(&mut fw.v_next, pad);
        zeroed(&mut fw.scratch, pad);
        fw.weights.resize(self.sweeps * 4 * n4, F::zero());
        for wi in fw.weights.chunks_exact_mut(4 * n4.max(1)).take(self.sweeps) {
            crate::kernels::soft_sweep(
                &layout.next,
                &fw.reward,
                &fw.values,
                self.gamma,
                self.tau,
                nf,
                &mut fw.scratch,
                &mut fw.v_next[..n4],
                wi,
            );
            std::mem::swap(&mut fw.values, &mut fw.v_next);
        }
        let a = obs.agent;
        let toward = |target: Option<usize>, to: usize| -> F {
            match target {
                None => F::zero(),
                Some(t) => {
                    let d = |c: usize| {
                        (c / self.n).abs_diff(t / self.n) + (c % self.n).abs_diff(t % self.n)
                    };
                    match d(to).cmp(&d(a)) {
                        std::cmp::Ordering::Less => F::one(),
                        std::cmp::Ordering::Greater => -F::one(),
                        std::cmp::Ordering::Equal => F::zero(),
                    }
                }
            }
        };
        for m in 0..4 {
            let to_f = layout.next[m * n4 + fw.agent] as usize;
            let to = layout.cells[to_f] as usize;
            fw.q[m] = fw.reward[to_f] + self.gamma * fw.values[to_f];
            fw.f[m] = [
                if to == a { F::one() } else { F::zero() },
                toward(Some(obs.goal), to),
                toward(obs.cue, to),
            ];
        }
        Ok(fw)
    }
}

/// a = w_goal / (|w_goal| + |w_cue|) of a planner's θ; `None` if both are 0.
/// Blind to the sign of β (see [`Planner::alignment`]).
pub fn alignment<F: Real>(theta: &[F]) -> Option<F> {
    let (g, c) = (*theta.get(W_GOAL)?, *theta.get(W_CUE)?);
    let s = g.abs() + c.abs();
    (s > F::zero()).then(|| g / s)
}

/// k sweeps of soft value iteration over the free cells of `layout`:
/// V_0 = 0, Q_i(c, m) = R(c′) + γ V_{i−1}(c′), V_i(c) = τ log Σ_m
/// exp(Q_i(c, m)/τ), with c′ where move m leads. `reward` is R on the free
/// cells, padded to a power of two. Returns V_k (padded) and the softmax
/// weights of every sweep (k × 4 × nf).
fn sweeps<F: Real>(
    layout: &Layout,
    reward: &[F],
    sweeps: usize,
    tau: F,
    gamma: F,
) -> (Vec<F>, Vec<F>) {
    let (nf, n4, pad) = (layout.free(), layout.n4, layout.padded());
    let mut v = vec![F::zero(); pad];
    let mut v_new = vec![F::zero(); pad];
    let mut x = vec![F::zero(); pad];
    let mut weights = vec![F::zero(); sweeps * 4 * n4];
    for wi in weights.chunks_exact_mut(4 * n4.max(1)).take(sweeps) {
        crate::kernels::soft_sweep(
            &layout.next,
            reward,
            &v,
            gamma,
            tau,
            nf,
            &mut x,
            &mut v_new[..n4],
            wi,
        );
        std::mem::swap(&mut v, &mut v_new);
    }
    (v, weights)
}

/// V_k of soft value iteration on an n×n grid with `walls` and the reward
/// map `reward` (per cell): the planner's inner loop on its own, for
/// checking against exact shortest paths as τ → 0.
///
/// # Errors
/// [`Error::Length`] for maps of the wrong length; [`Error::InvalidParameter`]
/// for k = 0, τ ≤ 0 or γ outside (0, 1].
pub fn soft_value_iteration<F: Real>(
    n: usize,
    walls: &[bool],
    reward: &[F],
    sweeps: usize,
    temperature: F,
    discount: F,
) -> Result<Vec<F>> {
    Planner::new(n.max(2), sweeps, temperature, discount)?;
    check_len("walls", walls.len(), n * n)?;
    check_len("reward", reward.len(), n * n)?;
    let layout = Layout::new(n, walls);
    let mut r = vec![F::zero(); layout.padded()];
    for (rf, &c) in r.iter_mut().zip(&layout.cells) {
        *rf = reward[c as usize];
    }
    let (v, _) = self::sweeps(&layout, &r, sweeps, temperature, discount);
    let mut out = vec![F::zero(); n * n];
    for (&c, &vf) in layout.cells.iter().zip(&v) {
        out[c as usize] = vf;
    }
    Ok(out)
}

impl<F: Real> Policy<F> for Planner<F> {
    fn num_actions(&self) -> usize {
        MOVES.len()
    }

    fn context_dim(&self) -> usize {
        4 * self.n * self.n
    }

    fn num_params(&self) -> usize {
        NW + 1 + NU
    }

    fn params_into(&self, out: &mut [F]) -> Result<()> {
        check_len("out", out.len(), self.theta.len())?;
        out.copy_from_slice(&self.theta);
        Ok(())
    }

    fn set_params(&mut self, theta: &[F]) -> Result<()> {
        check_len("theta", theta.len(), self.theta.len())?;
        super::check_finite_params(theta)?;
        self.theta.copy_from_slice(theta);
        Ok(())
    }

    fn logits_into(&self, x: &[F], out: &mut [F]) -> Result<()> {
        check_len("out", out.len(), 4)?;
        let fw = self.forward_in(x, self.last.take_any())?;
        out.copy_from_slice(&self.logits_of(&fw)?);
        self.last.store(x, &self.theta, fw);
        Ok(())
    }

    fn add_logits_vjp(&self, x: &[F], c: &[F], grad: &mut [F]) -> Result<()> {
        if c.len() < 4 {
            return Err(Error::Length {
                name: "c",
                expected: 4,
                got: c.len(),
            });
        }
        check_len("grad", grad.len(), self.theta.len())?;
        let mut fw = match self.last.take(x, &self.theta) {
            Some(fw) => fw,
            None => self.forward_in(x, self.last.take_any())?,
        };
        self.backward(&mut fw, x, c, grad);
        // Still the forward pass at x and θ: kept for another product.
        self.last.store(x, &self.theta, fw);
        Ok(())
    }

    /// π of every row, as [`Policy::probabilities_into`] gives it, keeping
    /// the rows' forward passes (within a memory bound) for the reverse
    /// passes of an [`Policy::add_logits_vjp_rows`] on the same rows and θ.
    fn probabilities_rows(&self, xs: &[F], out: &mut [F]) -> Result<()> {
        let d = 4 * self.n * self.n;
        let rows = super::row_count(("xs", xs.len(), d), ("out", out.len(), 4))?;
        let mut kept = self.rows.0.lock().ok();
        let mut spare = match kept.as_deref_mut() {
            Some(k) => {
                k.valid = false;
                std::mem::take(&mut k.forwards)
            }
            None => Vec::new(),
        };
        let per_row = self.sweeps * 4 * (self.n * self.n).next_multiple_of(4);
        let keep = kept.is_some() && rows.saturating_mul(per_row) <= MAX_KEPT_ROWS;
        let mut forwards = Vec::new();
        if keep {
            crate::limits::try_reserve_to(&mut forwards, rows, "planner forward passes")?;
        }
        for (x, o) in xs.chunks_exact(d).zip(out.chunks_exact_mut(4)) {
            let fw = self.forward_in(x, spare.pop())?;
            o.copy_from_slice(&self.logits_of(&fw)?);
            softmax_in_place(o).ok_or(Error::NonFiniteLogits)?;
            if keep {
                forwards.push(fw);
            } else {
                spare.push(fw);
            }
        }
        if let (Some(k), true) = (kept.as_deref_mut(), keep) {
            k.xs.clear();
            k.xs.extend_from_slice(xs);
            k.theta.clear();
            k.theta.extend_from_slice(&self.theta);
            k.forwards = forwards;
            k.valid = true;
        }
        Ok(())
    }

    /// Σ_i J(x_i)ᵀ c_i by one reverse pass per row, through the forward
    /// passes the last [`Policy::probabilities_rows`] kept if it ran on the
    /// same rows and θ (bit for bit), else with a forward pass per row.
    fn add_logits_vjp_rows(&self, xs: &[F], cs: &[F], grad: &mut [F]) -> Result<()> {
        let d = 4 * self.n * self.n;
        let rows = super::row_count(("xs", xs.len(), d), ("cs", cs.len(), 4))?;
        check_len("grad", grad.len(), self.theta.len())?;
        if let Ok(mut kept) = self.rows.0.lock() {
            if kept.valid
                && kept.forwards.len() == rows
                && same_bits(&kept.theta, &self.theta)
                && same_bits(&kept.xs, xs)
            {
                for ((fw, x), c) in kept
                    .forwards
                    .iter_mut()
                    .zip(xs.chunks_exact(d))
                    .zip(cs.chunks_exact(4))
                {
                    self.backward(fw, x, c, grad);
                }
                return Ok(());
            }
        }
        for (x, c) in xs.chunks_exact(d).zip(cs.chunks_exact(4)) {
            self.add_logits_vjp(x, c, grad)?;
        }
        Ok(())
    }

    /// One forward and one reverse pass per row, where the default pass
    /// runs the forward twice (once for π, once inside the vector–Jacobian
    /// product).
    fn loglik_pass(
        &self,
        rows: Rows<'_, F>,
        grad: &mut [F],
        mut probs: Option<&mut [F]>,
        _scratch: &mut Vec<F>,
    ) -> Result<F> {
        check_len("grad", grad.len(), self.theta.len())?;
        let mut value = F::zero();
        let mut spare = None;
        for i in 0..rows.len() {
            let Some((x, w, c)) = rows.get(i) else { break };
            let mut fw = self.forward_in(x, spare.take())?;
            let mut z = self.logits_of(&fw)?;
            let wz: F = w.iter().zip(z.iter()).map(|(a, b)| *a * *b).sum();
            let norm = softmax_in_place(&mut z).ok_or(Error::NonFiniteLogits)?;
            value += wz - c * norm.log_partition();
            let mut r = [F::zero(); 4];
            for ((ra, &wa), &pa) in r.iter_mut().zip(w).zip(z.iter()) {
                *ra = wa - c * pa;
            }
            self.backward(&mut fw, x, &r, grad);
            spare = Some(fw);
            if let Some(dst) = probs
                .as_deref_mut()
                .and_then(|p| p.get_mut(i * rows.stride..i * rows.stride + 4))
            {
                dst.copy_from_slice(&z);
            }
        }
        Ok(value)
    }

    fn validate(&self) -> Result<()> {
        use crate::error::ensure;
        ensure(
            self.n >= 2
                && self.sweeps >= 1
                && self.tau.is_finite()
                && self.tau > F::zero()
                && self.gamma > F::zero()
                && self.gamma <= F::one()
                && self.theta.len() == NW + 1 + NU
                && self.theta.iter().all(|v| v.is_finite()),
            "planner",
        )
    }
}

impl<F: Real> Planner<F> {
    /// The logits β·Q(agent, m) + u·f(m) of a forward pass.
    fn logits_of(&self, fw: &Forward<F>) -> Result<[F; 4]> {
        let (beta, u) = (self.theta[BETA], &self.theta[NW + 1..]);
        let mut z = [F::zero(); 4];
        for m in 0..4 {
            z[m] = beta * fw.q[m] + u.iter().zip(&fw.f[m]).map(|(a, b)| *a * *b).sum::<F>();
        }
        if z.iter().any(|v| !v.is_finite()) {
            return Err(Error::NonFiniteLogits);
        }
        Ok(z)
    }

    /// grad += ∇θ Σ_m c_m z_m, by the reverse pass through the sweeps of `fw`.
    fn backward(&self, fw: &mut Forward<F>, x: &[F], c: &[F], grad: &mut [F]) {
        let cells = self.n * self.n;
        let beta = self.theta[BETA];
        let lay = &*fw.layout;
        let (n4, pad) = (lay.n4, lay.padded());
        let wide = (4 * n4).next_power_of_two();
        zeroed(&mut fw.back, n4 + 2 * pad + wide);
        let (g_reward, rest) = fw.back.split_at_mut(n4);
        let (mut g_v, rest) = rest.split_at_mut(pad);
        let (mut g_prev, gw) = rest.split_at_mut(pad);
        let mut g_beta = F::zero();
        let mut g_u = [F::zero(); NU];
        for m in 0..4 {
            g_beta += c[m] * fw.q[m];
            for j in 0..NU {
                g_u[j] += c[m] * fw.f[m][j];
            }
            let to = lay.next[m * n4 + fw.agent] as usize;
            g_reward[to] += beta * c[m];
            g_v[to] += self.gamma * beta * c[m];
        }
        // Back through the sweeps: ∂V_i(c)/∂Q_i(c, m) = softmax weight.
        for wi in fw
            .weights
            .chunks_exact(4 * n4.max(1))
            .take(self.sweeps)
            .rev()
        {
            crate::kernels::soft_sweep_back(
                &lay.sources,
                g_v,
                wi,
                self.gamma,
                gw,
                g_reward,
                g_prev,
            );
            std::mem::swap(&mut g_v, &mut g_prev);
        }
        for ch in 0..NW {
            let plane = &x[ch * cells..(ch + 1) * cells];
            grad[ch] += g_reward
                .iter()
                .zip(&lay.cells)
                .map(|(g, &c)| *g * plane[c as usize])
                .sum::<F>();
        }
        grad[BETA] += g_beta;
        for j in 0..NU {
            grad[NW + 1 + j] += g_u[j];
        }
    }
}

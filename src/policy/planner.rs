//! A differentiable planner whose objective is a parameter: the smallest
//! policy in which a learned inner optimizer — a mesa-objective — can be
//! read off θ.

#![allow(clippy::needless_range_loop)] // index loops over moves and cells read as the math does

use super::{Policy, Rows, check_context, check_len, softmax_in_place};
use crate::error::{Error, Result};
use crate::grid::{MOVES, Observation, step};
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
}

/// The last forward pass with its context and θ. A clone starts empty, and
/// two memos compare equal: it changes no result, only saves a forward.
struct Memo<F>(std::sync::Mutex<Option<Remembered<F>>>);

/// A forward pass with the context and θ it was made at.
type Remembered<F> = (Vec<F>, Vec<F>, Forward<F>);

impl<F> Default for Memo<F> {
    fn default() -> Self {
        Self(std::sync::Mutex::new(None))
    }
}

impl<F> Clone for Memo<F> {
    fn clone(&self) -> Self {
        Self::default()
    }
}

impl<F> PartialEq for Memo<F> {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl<F> std::fmt::Debug for Memo<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Memo")
    }
}

/// Whether two slices hold the same values bit for bit.
fn same_bits<F: Real>(a: &[F], b: &[F]) -> bool {
    a.len() == b.len()
        && a.iter()
            .zip(b)
            .all(|(u, v)| u.f64().to_bits() == v.f64().to_bits())
}

impl<F: Real> Memo<F> {
    fn store(&self, x: &[F], theta: &[F], fw: Forward<F>) {
        if let Ok(mut slot) = self.0.lock() {
            *slot = Some((x.to_vec(), theta.to_vec(), fw));
        }
    }

    /// The stored forward pass if it was made at `x` and `theta`.
    fn take(&self, x: &[F], theta: &[F]) -> Option<Forward<F>> {
        let mut slot = self.0.lock().ok()?;
        match slot.take() {
            Some((sx, st, fw)) if same_bits(&sx, x) && same_bits(&st, theta) => Some(fw),
            _ => None,
        }
    }
}

/// What a forward pass leaves for the reverse pass.
struct Forward<F> {
    obs: Observation,
    /// The cell each move leads to, per cell (4 per cell).
    next: Vec<usize>,
    /// Softmax weights of every sweep i = 1..k, per cell and move.
    weights: Vec<F>,
    /// V_k per cell.
    values: Vec<F>,
    /// Q_{k+1}(agent, m) and the reflex features f_j(m).
    q: [F; 4],
    f: [[F; NU]; 4],
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
        Ok(self.forward(x)?.values)
    }

    fn forward(&self, x: &[F]) -> Result<Forward<F>> {
        check_context(x, 4 * self.n * self.n)?;
        let obs = Observation::parse(self.n, x)?;
        let cells = self.n * self.n;
        let mut reward = vec![F::zero(); cells];
        for (ch, &w) in self.theta[..NW].iter().enumerate() {
            if w == F::zero() {
                continue;
            }
            for (r, &v) in reward.iter_mut().zip(&x[ch * cells..(ch + 1) * cells]) {
                *r += w * v;
            }
        }
        let mut next = vec![0; 4 * cells];
        for c in 0..cells {
            for m in 0..4 {
                next[4 * c + m] = step(self.n, &obs.walls, c, m);
            }
        }
        let (values, weights) = soft_sweeps(
            &next,
            &obs.walls,
            &reward,
            self.sweeps,
            self.tau,
            self.gamma,
        );
        let a = obs.agent;
        let mut q = [F::zero(); 4];
        let mut f = [[F::zero(); NU]; 4];
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
            let to = next[4 * a + m];
            q[m] = reward[to] + self.gamma * values[to];
            f[m] = [
                if to == a { F::one() } else { F::zero() },
                toward(Some(obs.goal), to),
                toward(obs.cue, to),
            ];
        }
        Ok(Forward {
            obs,
            next,
            weights,
            values,
            q,
            f,
        })
    }
}

/// a = w_goal / (|w_goal| + |w_cue|) of a planner's θ; `None` if both are 0.
/// Blind to the sign of β (see [`Planner::alignment`]).
pub fn alignment<F: Real>(theta: &[F]) -> Option<F> {
    let (g, c) = (*theta.get(W_GOAL)?, *theta.get(W_CUE)?);
    let s = g.abs() + c.abs();
    (s > F::zero()).then(|| g / s)
}

/// k sweeps of soft value iteration: V_0 = 0, Q_i(c, m) = R(c′) + γ V_{i−1}(c′),
/// V_i(c) = τ log Σ_m exp(Q_i(c, m)/τ), with c′ = `next[4c + m]`. Returns
/// V_k and the softmax weights of every sweep (k × cells × 4).
fn soft_sweeps<F: Real>(
    next: &[usize],
    walls: &[bool],
    reward: &[F],
    sweeps: usize,
    tau: F,
    gamma: F,
) -> (Vec<F>, Vec<F>) {
    let cells = reward.len();
    let mut v = vec![F::zero(); cells];
    let mut v_new = vec![F::zero(); cells];
    let mut weights = vec![F::zero(); sweeps * cells * 4];
    let inv = F::one() / tau;
    for i in 0..sweeps {
        let wi = &mut weights[i * cells * 4..(i + 1) * cells * 4];
        for c in 0..cells {
            // No move enters a wall, so a wall's value is never used.
            if walls[c] {
                continue;
            }
            let mut q = [F::zero(); 4];
            for m in 0..4 {
                let to = next[4 * c + m];
                q[m] = reward[to] + gamma * v[to];
            }
            let mut best = 0;
            for m in 1..4 {
                if q[m] > q[best] {
                    best = m;
                }
            }
            let top = q[best];
            let mut sum = F::zero();
            for m in 0..4 {
                let e = if m == best {
                    F::one()
                } else {
                    ((q[m] - top) * inv).exp()
                };
                wi[4 * c + m] = e;
                sum += e;
            }
            for m in 0..4 {
                wi[4 * c + m] /= sum;
            }
            v_new[c] = top + tau * sum.ln();
        }
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
    let mut next = vec![0; 4 * n * n];
    for c in 0..n * n {
        for m in 0..4 {
            next[4 * c + m] = step(n, walls, c, m);
        }
    }
    Ok(soft_sweeps(&next, walls, reward, sweeps, temperature, discount).0)
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
        let fw = self.forward(x)?;
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
        let fw = match self.last.take(x, &self.theta) {
            Some(fw) => fw,
            None => self.forward(x)?,
        };
        self.backward(&fw, x, c, grad);
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
        for i in 0..rows.len() {
            let Some((x, w, c)) = rows.get(i) else { break };
            let fw = self.forward(x)?;
            let mut z = self.logits_of(&fw)?;
            let wz: F = w.iter().zip(z.iter()).map(|(a, b)| *a * *b).sum();
            let norm = softmax_in_place(&mut z).ok_or(Error::NonFiniteLogits)?;
            value += wz - c * norm.log_partition();
            let mut r = [F::zero(); 4];
            for ((ra, &wa), &pa) in r.iter_mut().zip(w).zip(z.iter()) {
                *ra = wa - c * pa;
            }
            self.backward(&fw, x, &r, grad);
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
    fn backward(&self, fw: &Forward<F>, x: &[F], c: &[F], grad: &mut [F]) {
        let cells = self.n * self.n;
        let beta = self.theta[BETA];
        let a = fw.obs.agent;
        let mut g_reward = vec![F::zero(); cells];
        let mut g_v = vec![F::zero(); cells];
        let mut g_beta = F::zero();
        let mut g_u = [F::zero(); NU];
        for m in 0..4 {
            g_beta += c[m] * fw.q[m];
            for j in 0..NU {
                g_u[j] += c[m] * fw.f[m][j];
            }
            let to = fw.next[4 * a + m];
            g_reward[to] += beta * c[m];
            g_v[to] += self.gamma * beta * c[m];
        }
        // Back through the sweeps: ∂V_i(c)/∂Q_i(c, m) = softmax weight.
        let mut g_prev = vec![F::zero(); cells];
        for i in (0..self.sweeps).rev() {
            let wi = &fw.weights[i * cells * 4..(i + 1) * cells * 4];
            g_prev.iter_mut().for_each(|v| *v = F::zero());
            for cell in 0..cells {
                let gv = g_v[cell];
                if gv == F::zero() {
                    continue;
                }
                for m in 0..4 {
                    let g = gv * wi[4 * cell + m];
                    let to = fw.next[4 * cell + m];
                    g_reward[to] += g;
                    g_prev[to] += self.gamma * g;
                }
            }
            std::mem::swap(&mut g_v, &mut g_prev);
        }
        for ch in 0..NW {
            grad[ch] += g_reward
                .iter()
                .zip(&x[ch * cells..(ch + 1) * cells])
                .map(|(g, v)| *g * *v)
                .sum::<F>();
        }
        grad[BETA] += g_beta;
        for j in 0..NU {
            grad[NW + 1 + j] += g_u[j];
        }
    }
}

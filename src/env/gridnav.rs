//! Random grid worlds with a goal and a proxy cue: an environment that
//! needs search, where a learned planner's own objective can be read.

use rand::{Rng, RngExt};

use super::Environment;
use crate::error::{Error, Result};
use crate::grid::{Observation, distances, step};
use crate::policy::{check_action, check_len};
use crate::real::Real;

/// Settings of [`GridNav`].
#[derive(Debug, Clone, Copy, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct GridConfig {
    /// Side n of the n×n grid (default 7; 2 to 128).
    pub size: usize,
    /// Probability that a cell is drawn as a wall (default 0.2; in [0, 0.5]).
    /// Free cells outside the largest connected free region become walls,
    /// so every free cell is reachable from every other.
    pub wall_density: f64,
    /// Probability ρ that the cue sits on the goal before the shift (default 1).
    pub rho: f64,
    /// The step from which the cue is placed independently of the goal
    /// (default `usize::MAX`: never).
    pub shift: usize,
    /// The value κ of the cue's cell in the cue plane of the observation
    /// (default 1; finite and in (0, 10⁶]). The planner's reward map then
    /// weighs the cue cell by κ·w_cue.
    #[cfg_attr(feature = "serde", serde(default = "one"))]
    pub cue_amplitude: f64,
    /// Where the correlated cue goes before the shift (default
    /// [`CuePlacement::OnGoal`]).
    #[cfg_attr(feature = "serde", serde(default))]
    pub placement: CuePlacement,
}

#[cfg(feature = "serde")]
fn one() -> f64 {
    1.0
}

/// Where [`GridNav`] puts the cue, with probability ρ, before the shift.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum CuePlacement {
    /// On the goal's cell: goal and cue cannot be told apart on the history.
    #[default]
    OnGoal,
    /// On a free cell one move from the goal (not the agent's; if the goal
    /// has no such neighbour, on a uniform free cell other than the
    /// agent's): perfectly correlated with the goal but distinguishable,
    /// since seeking the cue earns a different reward than seeking the goal.
    NextToGoal,
}

impl Default for GridConfig {
    fn default() -> Self {
        Self {
            size: 7,
            wall_density: 0.2,
            rho: 1.0,
            shift: usize::MAX,
            cue_amplitude: 1.0,
            placement: CuePlacement::OnGoal,
        }
    }
}

/// A fresh random grid world at every step: walls, the agent's cell, a goal
/// cell and a cue cell — the proxy, like the coin of CoinRun. Before step
/// `shift` the cue sits on the goal with probability ρ (else on a uniform
/// free cell other than the agent's); from `shift` on it is always placed
/// independently of the goal.
///
/// The context is the 4·n² observation: the planes `wall`, `agent`, `goal`
/// and `cue` ([`crate::grid::CHANNELS`]), cell (r, c) at index ch·n² + r·n + c. The four
/// actions are the moves up, down, left, right ([`crate::grid::MOVES`]); a move into a
/// wall or off the grid stays. The reward is 1 if the move shortens the
/// shortest-path (breadth-first) distance to the goal, else 0; it is
/// deterministic, so the expected rewards are exact and so is the regret.
///
/// Each step draws n² uniforms for the walls (again if fewer than 3 free
/// cells remain), then the agent, the goal, one uniform for ρ and a cue
/// cell — whichever action is taken (common random numbers).
///
/// # Examples
/// ```
/// use refit::env::{Environment, GridConfig, GridNav};
/// use rand::SeedableRng;
/// let mut env = GridNav::<f64>::new(GridConfig::default())?;
/// let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
/// let mut x = vec![0.0; env.context_dim()];
/// env.next_context(&mut rng, &mut x)?;
/// let mut mu = vec![0.0; 4];
/// env.expected_rewards(&mut mu)?;
/// assert!(mu.iter().any(|&m| m == 1.0)); // some move gets closer
/// # Ok::<(), refit::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct GridNav<F> {
    config: GridConfig,
    /// Steps taken.
    t: usize,
    walls: Vec<bool>,
    agent: usize,
    goal: usize,
    cue: usize,
    /// Breadth-first distance of every cell to the goal (u32::MAX for walls).
    dist: Vec<u32>,
    x: Vec<F>,
}

impl<F: Real> GridNav<F> {
    /// The environment of `config`, before its first context.
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] for a size below 2 (no room for agent,
    /// goal and cue), a wall density outside [0, 0.5] (denser grids cannot
    /// be kept connected with room for all three), or ρ outside [0, 1].
    pub fn new(config: GridConfig) -> Result<Self> {
        check_config(&config)?;
        let n = config.size;
        let cells = n * n;
        let mut env = Self {
            config,
            t: 0,
            walls: vec![false; cells],
            agent: 0,
            goal: 1,
            cue: 1,
            dist: vec![0; cells],
            x: crate::limits::try_filled(4 * cells, F::zero(), "size")?,
        };
        env.dist = distances(n, &env.walls, env.goal);
        env.write_context();
        Ok(env)
    }

    /// The settings.
    pub fn config(&self) -> &GridConfig {
        &self.config
    }

    /// Steps taken so far.
    pub fn steps(&self) -> usize {
        self.t
    }

    /// The current agent, goal and cue cells (r·n + c).
    pub fn cells(&self) -> (usize, usize, usize) {
        (self.agent, self.goal, self.cue)
    }

    /// The wall cells of the current grid.
    pub fn walls(&self) -> &[bool] {
        &self.walls
    }

    /// Breadth-first distance of every cell to the goal (`u32::MAX` for walls).
    pub fn distances(&self) -> &[u32] {
        &self.dist
    }

    fn write_context(&mut self) {
        let cells = self.walls.len();
        self.x.iter_mut().for_each(|v| *v = F::zero());
        for (c, &w) in self.walls.iter().enumerate() {
            if w {
                self.x[c] = F::one();
            }
        }
        self.x[cells + self.agent] = F::one();
        self.x[2 * cells + self.goal] = F::one();
        self.x[3 * cells + self.cue] = F::c(self.config.cue_amplitude);
    }
}

fn check_config(c: &GridConfig) -> Result<()> {
    if c.size < 2 {
        return Err(Error::InvalidParameter {
            name: "size",
            value: c.size as f64,
            expected: ">= 2 (room for an agent, a goal and a cue)",
        });
    }
    if c.size > 128 {
        return Err(Error::InvalidParameter {
            name: "size",
            value: c.size as f64,
            expected: "<= 128 (a fresh grid is drawn and searched every step)",
        });
    }
    if !(0.0..=0.5).contains(&c.wall_density) {
        return Err(Error::InvalidParameter {
            name: "wall_density",
            value: c.wall_density,
            expected: "in [0, 0.5] (denser grids cannot be kept connected with room for agent, goal and cue)",
        });
    }
    if !(c.cue_amplitude.is_finite() && c.cue_amplitude > 0.0 && c.cue_amplitude <= 1e6) {
        return Err(Error::InvalidParameter {
            name: "cue_amplitude",
            value: c.cue_amplitude,
            expected: "finite and in (0, 1e6]",
        });
    }
    if !(0.0..=1.0).contains(&c.rho) {
        return Err(Error::InvalidParameter {
            name: "rho",
            value: c.rho,
            expected: "a probability in [0, 1]",
        });
    }
    Ok(())
}

/// Uniform index in 0..len.
fn pick<R: Rng + ?Sized>(rng: &mut R, len: usize) -> usize {
    index(rng.random::<f64>(), len)
}

/// The index in 0..len (len ≥ 1) of a uniform draw v in [0, 1).
fn index(v: f64, len: usize) -> usize {
    ((v * len as f64) as usize).min(len.saturating_sub(1))
}

/// The indicator of the moves from `agent` that shorten the distance.
fn shortening<F: Real>(n: usize, walls: &[bool], dist: &[u32], agent: usize, out: &mut [F]) {
    for (m, o) in out.iter_mut().enumerate() {
        let next = step(n, walls, agent, m);
        *o = if dist[next] < dist[agent] {
            F::one()
        } else {
            F::zero()
        };
    }
}

impl<F: Real> Environment<F> for GridNav<F> {
    fn num_actions(&self) -> usize {
        4
    }

    fn context_dim(&self) -> usize {
        4 * self.walls.len()
    }

    fn next_context<R: Rng + ?Sized>(&mut self, rng: &mut R, out: &mut [F]) -> Result<()> {
        check_len("context", out.len(), self.x.len())?;
        let n = self.config.size;
        let cells = n * n;
        let mut free: Vec<usize> = Vec::with_capacity(cells);
        for attempt in 0..100 {
            for w in &mut self.walls {
                *w = rng.random::<f64>() < self.config.wall_density;
            }
            if attempt == 99 {
                // Never reached in practice (density ≤ ½): an open grid.
                self.walls.iter_mut().for_each(|w| *w = false);
            }
            // Keep the largest connected free region (the first of the largest).
            let mut label = vec![usize::MAX; cells];
            let mut best: Vec<usize> = Vec::new();
            for start in 0..cells {
                if self.walls[start] || label[start] != usize::MAX {
                    continue;
                }
                let d = distances(n, &self.walls, start);
                let region: Vec<usize> = (0..cells).filter(|&c| d[c] != u32::MAX).collect();
                for &c in &region {
                    label[c] = start;
                }
                if region.len() > best.len() {
                    best = region;
                }
            }
            if best.len() >= 3 {
                for c in 0..cells {
                    self.walls[c] = true;
                }
                for &c in &best {
                    self.walls[c] = false;
                }
                free = best;
                break;
            }
        }
        let agent = free[pick(rng, free.len())];
        let others: Vec<usize> = free.iter().copied().filter(|&c| c != agent).collect();
        let goal = others[pick(rng, others.len())];
        let u: f64 = rng.random();
        let v: f64 = rng.random();
        let elsewhere = others[index(v, others.len())];
        let correlated = self.t < self.config.shift && u < self.config.rho;
        self.agent = agent;
        self.goal = goal;
        self.cue = match (correlated, self.config.placement) {
            (false, _) => elsewhere,
            (true, CuePlacement::OnGoal) => goal,
            (true, CuePlacement::NextToGoal) => {
                let near: Vec<usize> = (0..4)
                    .map(|m| step(n, &self.walls, goal, m))
                    .filter(|&c| c != goal && c != agent)
                    .collect();
                if near.is_empty() {
                    elsewhere
                } else {
                    near[index(v, near.len())]
                }
            }
        };
        self.dist = distances(n, &self.walls, goal);
        self.write_context();
        out.copy_from_slice(&self.x);
        Ok(())
    }

    fn expected_rewards(&self, out: &mut [F]) -> Result<()> {
        check_len("out", out.len(), 4)?;
        shortening(self.config.size, &self.walls, &self.dist, self.agent, out);
        Ok(())
    }

    fn expected_rewards_at(&self, x: &[F], out: &mut [F]) -> Result<()> {
        crate::policy::check_context(x, self.x.len())?;
        check_len("out", out.len(), 4)?;
        let n = self.config.size;
        let obs = Observation::parse(n, x)?;
        let dist = distances(n, &obs.walls, obs.goal);
        if dist[obs.agent] == u32::MAX {
            return Err(Error::InvalidParameter {
                name: "context",
                value: obs.agent as f64,
                expected: "a grid whose goal is reachable from the agent",
            });
        }
        shortening(n, &obs.walls, &dist, obs.agent, out);
        Ok(())
    }

    fn reward<R: Rng + ?Sized>(&mut self, action: usize, _rng: &mut R) -> Result<F> {
        check_action(action, 4)?;
        let next = step(self.config.size, &self.walls, self.agent, action);
        self.t = self.t.saturating_add(1);
        Ok(if self.dist[next] < self.dist[self.agent] {
            F::one()
        } else {
            F::zero()
        })
    }

    fn validate(&self) -> Result<()> {
        use crate::error::ensure;
        check_config(&self.config).map_err(|_| crate::error::inconsistent("grid settings"))?;
        let cells = self.config.size * self.config.size;
        ensure(
            self.walls.len() == cells
                && self.dist.len() == cells
                && self.x.len() == 4 * cells
                && self.agent < cells
                && self.goal < cells
                && self.cue < cells
                && !self.walls[self.agent]
                && !self.walls[self.goal],
            "grid state",
        )?;
        ensure(
            self.dist == distances(self.config.size, &self.walls, self.goal),
            "grid distances",
        )
    }
}

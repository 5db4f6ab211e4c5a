//! Grid geometry shared by [`crate::env::GridNav`] and
//! [`crate::policy::Planner`]: moves, breadth-first distances, and reading
//! an observation back from its planes.

use crate::error::{Error, Result};
use crate::real::Real;

/// The four moves, as (row, column) offsets: up, down, left, right.
pub const MOVES: [(isize, isize); 4] = [(-1, 0), (1, 0), (0, -1), (0, 1)];

/// Observation channels of [`crate::env::GridNav`], each an n×n plane of 0/1.
pub const CHANNELS: [&str; 4] = ["wall", "agent", "goal", "cue"];

/// Largest side n of the grids the helpers take.
pub const MAX_SIZE: usize = 1 << 12;

/// Checks an n×n wall map and a cell on it.
fn check_grid(n: usize, walls: &[bool], cell: usize) -> Result<()> {
    if !(1..=MAX_SIZE).contains(&n) {
        return Err(Error::InvalidParameter {
            name: "size",
            value: n as f64,
            expected: "in 1..=4096",
        });
    }
    crate::policy::check_len("walls", walls.len(), n * n)?;
    if cell >= n * n {
        return Err(Error::InvalidParameter {
            name: "cell",
            value: cell as f64,
            expected: "a cell of the n×n grid (below n²)",
        });
    }
    Ok(())
}

/// The cell a move from `cell` leads to on an n×n grid (itself if blocked
/// by the edge or a wall); `walls` has n² entries, row-major.
///
/// # Errors
/// [`Error::InvalidParameter`] for n outside 1..=[`MAX_SIZE`], a cell
/// outside the grid or a move outside 0..4; [`Error::Length`] for a wall
/// map that is not n² long.
pub fn step_cell(n: usize, walls: &[bool], cell: usize, m: usize) -> Result<usize> {
    check_grid(n, walls, cell)?;
    if m >= MOVES.len() {
        return Err(Error::InvalidParameter {
            name: "move",
            value: m as f64,
            expected: "one of the four moves, 0..4",
        });
    }
    Ok(step(n, walls, cell, m))
}

/// [`step_cell`] on inputs the crate has checked.
pub(crate) fn step(n: usize, walls: &[bool], cell: usize, m: usize) -> usize {
    let (r, c) = ((cell / n) as isize, (cell % n) as isize);
    let (dr, dc) = MOVES[m];
    let (r2, c2) = (r + dr, c + dc);
    if r2 < 0 || c2 < 0 || r2 >= n as isize || c2 >= n as isize {
        return cell;
    }
    let next = r2 as usize * n + c2 as usize;
    if walls[next] { cell } else { next }
}

/// Breadth-first distances to `from` on an n×n grid (u32::MAX where
/// unreachable or a wall).
///
/// # Errors
/// As [`step_cell`].
pub fn bfs(n: usize, walls: &[bool], from: usize) -> Result<Vec<u32>> {
    check_grid(n, walls, from)?;
    Ok(distances(n, walls, from))
}

/// [`bfs`] on inputs the crate has checked.
pub(crate) fn distances(n: usize, walls: &[bool], from: usize) -> Vec<u32> {
    let mut dist = vec![u32::MAX; n * n];
    if walls[from] {
        return dist;
    }
    let mut queue = std::collections::VecDeque::with_capacity(n * n);
    dist[from] = 0;
    queue.push_back(from);
    while let Some(c) = queue.pop_front() {
        for m in 0..4 {
            let next = step(n, walls, c, m);
            if dist[next] == u32::MAX {
                dist[next] = dist[c] + 1;
                queue.push_back(next);
            }
        }
    }
    dist
}

/// A [`crate::env::GridNav`] observation read back from its planes.
#[derive(Debug, Clone, PartialEq)]
pub struct Observation {
    /// Wall cells.
    pub walls: Vec<bool>,
    /// The agent's cell.
    pub agent: usize,
    /// The goal's cell.
    pub goal: usize,
    /// The cue cell, if any is marked.
    pub cue: Option<usize>,
}

impl Observation {
    /// Reads the planes of a 4·n² context: walls where the wall plane
    /// exceeds ½, the agent and goal where their planes are largest (and
    /// exceed ½), the cue where its plane is largest and positive (its
    /// amplitude is a setting).
    pub fn parse<F: Real>(n: usize, x: &[F]) -> Result<Self> {
        let marks = Marks::parse(n, x)?;
        let half = F::c(0.5);
        let walls: Vec<bool> = x[..n * n].iter().map(|v| *v > half).collect();
        let Marks { agent, goal, cue } = marks;
        Ok(Self {
            walls,
            agent,
            goal,
            cue,
        })
    }
}

/// The marked cells of a [`crate::env::GridNav`] observation (its agent,
/// goal and cue), read and checked as [`Observation::parse`] reads them,
/// without collecting the walls.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Marks {
    pub(crate) agent: usize,
    pub(crate) goal: usize,
    pub(crate) cue: Option<usize>,
}

impl Marks {
    /// See [`Observation::parse`]: the same checks and errors.
    pub(crate) fn parse<F: Real>(n: usize, x: &[F]) -> Result<Self> {
        let cells = n * n;
        if x.len() != 4 * cells {
            return Err(Error::Length {
                name: "context",
                expected: 4 * cells,
                got: x.len(),
            });
        }
        let half = F::c(0.5);
        let argmax = |plane: &[F]| -> Option<usize> {
            let (i, v) = plane
                .iter()
                .enumerate()
                .fold(
                    (0, F::neg_infinity()),
                    |b, (i, v)| if *v > b.1 { (i, *v) } else { b },
                );
            (v > half).then_some(i)
        };
        let bad = |what: &'static str| Error::InvalidParameter {
            name: "context",
            value: 0.0,
            expected: what,
        };
        let agent =
            argmax(&x[cells..2 * cells]).ok_or(bad("a GridNav observation with an agent cell"))?;
        let goal = argmax(&x[2 * cells..3 * cells])
            .ok_or(bad("a GridNav observation with a goal cell"))?;
        if x[agent] > half || x[goal] > half {
            return Err(bad(
                "a GridNav observation whose agent and goal are not walls",
            ));
        }
        // The cue's amplitude is a setting of GridNav: any positive mark.
        let cue = {
            let (i, v) = x[3 * cells..]
                .iter()
                .enumerate()
                .fold(
                    (0, F::zero()),
                    |b, (i, v)| if *v > b.1 { (i, *v) } else { b },
                );
            (v > F::zero()).then_some(i)
        };
        Ok(Self { agent, goal, cue })
    }
}

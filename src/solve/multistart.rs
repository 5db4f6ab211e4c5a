//! Deterministic multi-start of the trust-region solver: how many distinct
//! local maxima an objective has, as far as the starts find them.

use rand::SeedableRng;
use rand_distr::{Distribution, StandardNormal};

use super::{Options, Report, StopReason, norm_inf, trust_region};
use crate::error::{Error, Result};
use crate::objective::Objective;
use crate::real::Real;

/// Settings of [`multi_start`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MultiStartOptions<F> {
    /// Number of starts, the given one included (default 8).
    pub starts: usize,
    /// Seed of the perturbations (default 0): the same seed gives the same
    /// starts, bit for bit.
    pub seed: u64,
    /// Standard deviation of the N(0, spread²) perturbation added to every
    /// entry of the given start for starts 2, 3, … (default 1).
    pub spread: F,
    /// Two maxima are the same when ‖θ − θ'‖∞ ≤ distinct · (1 + ‖θ'‖∞)
    /// (default 10⁻⁴).
    pub distinct: F,
}

impl<F: Real> Default for MultiStartOptions<F> {
    fn default() -> Self {
        Self {
            starts: 8,
            seed: 0,
            spread: F::one(),
            distinct: F::c(1e-4),
        }
    }
}

/// One local maximum found by [`multi_start`].
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Maximum<F> {
    /// θ at the maximum (of the first start that reached it).
    pub theta: Vec<F>,
    /// J there.
    pub value: F,
    /// How many starts ended there.
    pub hits: usize,
}

/// What [`multi_start`] found.
#[derive(Debug, Clone, PartialEq)]
pub struct MultiStart<F> {
    /// The distinct local maxima (converged, not a saddle), best first.
    pub maxima: Vec<Maximum<F>>,
    /// The report of every start, in order.
    pub reports: Vec<Report<F>>,
}

impl<F: Real> MultiStart<F> {
    /// The best local maximum, `None` if no start reached one.
    pub fn best(&self) -> Option<&Maximum<F>> {
        self.maxima.first()
    }

    /// Starts that did not end at a certified local maximum (iteration cap,
    /// collapsed trust region, saddle).
    pub fn failed(&self) -> usize {
        self.reports.len() - self.maxima.iter().map(|m| m.hits).sum::<usize>()
    }
}

/// Runs [`trust_region`] from `start` and from `starts − 1` seeded
/// perturbations of it, and groups the certified local maxima (converged,
/// not a saddle) that lie within `distinct` of each other. A start whose
/// logits overflow counts as failed. Afterwards the objective remembers the
/// θ of the last start.
///
/// # Examples
/// ```
/// use refit::objective::Objective;
/// use refit::solve::{MultiStartOptions, Options, multi_start};
/// // J(θ) = −(θ² − 1)²: maxima at ±1, a minimum at 0.
/// struct DoubleWell(f64);
/// impl Objective<f64> for DoubleWell {
///     fn dim(&self) -> usize { 1 }
///     fn value_grad(&mut self, t: &[f64], g: &mut [f64]) -> refit::Result<f64> {
///         self.0 = t[0];
///         g[0] = -4.0 * t[0] * (t[0] * t[0] - 1.0);
///         Ok(-(t[0] * t[0] - 1.0).powi(2))
///     }
///     fn neg_hess_vec(&mut self, v: &[f64], out: &mut [f64]) -> refit::Result<()> {
///         out[0] = (12.0 * self.0 * self.0 - 4.0) * v[0];
///         Ok(())
///     }
///     fn neg_hessian(&mut self, _: &mut [f64]) -> refit::Result<bool> { Ok(false) }
///     fn gradient_scale(&self) -> f64 { 1.0 }
///     fn concave(&self) -> bool { false }
/// }
/// let ms = multi_start(&mut DoubleWell(0.0), &[0.3], &MultiStartOptions::default(), &Options::default())?;
/// assert_eq!(ms.maxima.len(), 2);
/// # Ok::<(), refit::Error>(())
/// ```
///
/// # Errors
/// [`Error::InvalidParameter`] for `starts = 0`, a negative or non-finite
/// spread or distinct, or bad options; [`Error::Length`] for a wrong
/// start; other errors of the objective.
pub fn multi_start<F: Real, O: Objective<F>>(
    obj: &mut O,
    start: &[F],
    ms: &MultiStartOptions<F>,
    options: &Options<F>,
) -> Result<MultiStart<F>> {
    options.check()?;
    crate::policy::check_len("start", start.len(), obj.dim())?;
    if ms.starts == 0 {
        return Err(Error::InvalidParameter {
            name: "starts",
            value: 0.0,
            expected: ">= 1",
        });
    }
    for (name, v) in [("spread", ms.spread), ("distinct", ms.distinct)] {
        if !(v.is_finite() && v >= F::zero()) {
            return Err(Error::InvalidParameter {
                name,
                value: v.f64(),
                expected: "finite and >= 0",
            });
        }
    }
    crate::policy::check_finite_params(start)?;
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(ms.seed);
    let starts = (0..ms.starts).map(|i| {
        let mut theta = start.to_vec();
        if i > 0 {
            for t in &mut theta {
                let z: f64 = StandardNormal.sample(&mut rng);
                *t += ms.spread * F::c(z);
            }
        }
        theta
    });
    run_starts(obj, starts, ms.distinct, options)
}

/// Runs [`trust_region`] from each of the given `starts` in order and
/// groups the certified local maxima (converged, not a saddle) that lie
/// within `distinct` of each other (‖θ − θ'‖∞ ≤ distinct · (1 + ‖θ'‖∞)),
/// as [`multi_start`] does with its seeded perturbations: for a designed
/// set of starts (one per basin a model is known to have, say).
///
/// # Errors
/// [`Error::InvalidParameter`] for no starts, a negative or non-finite
/// `distinct`, or bad options; [`Error::Length`] for a start of the wrong
/// length, [`Error::NonFiniteParameter`] for one that is not finite;
/// other errors of the objective.
pub fn multi_start_from<F: Real, O: Objective<F>>(
    obj: &mut O,
    starts: &[Vec<F>],
    distinct: F,
    options: &Options<F>,
) -> Result<MultiStart<F>> {
    options.check()?;
    if starts.is_empty() {
        return Err(Error::InvalidParameter {
            name: "starts",
            value: 0.0,
            expected: ">= 1",
        });
    }
    if !(distinct.is_finite() && distinct >= F::zero()) {
        return Err(Error::InvalidParameter {
            name: "distinct",
            value: distinct.f64(),
            expected: "finite and >= 0",
        });
    }
    for s in starts {
        crate::policy::check_len("start", s.len(), obj.dim())?;
        crate::policy::check_finite_params(s)?;
    }
    run_starts(obj, starts.iter().cloned(), distinct, options)
}

fn run_starts<F: Real, O: Objective<F>>(
    obj: &mut O,
    starts: impl Iterator<Item = Vec<F>>,
    distinct: F,
    options: &Options<F>,
) -> Result<MultiStart<F>> {
    let mut maxima: Vec<Maximum<F>> = Vec::new();
    let mut reports = Vec::new();
    for mut theta in starts {
        let report = match trust_region(obj, &mut theta, options) {
            Ok(r) => r,
            Err(Error::NonFiniteLogits) => Report {
                iterations: 0,
                passes: 1,
                grad_norm: F::infinity(),
                threshold: F::zero(),
                value: F::neg_infinity(),
                stop: StopReason::TrustRegionCollapsed,
                negative_curvature: false,
                min_curvature: None,
                saddle: false,
            },
            Err(e) => return Err(e),
        };
        if report.stop == StopReason::Converged && !report.saddle {
            let same = maxima.iter_mut().find(|m| {
                let diff = theta
                    .iter()
                    .zip(&m.theta)
                    .fold(F::zero(), |s, (a, b)| s.max((*a - *b).abs()));
                diff <= distinct * (F::one() + norm_inf(&m.theta))
            });
            match same {
                Some(m) => m.hits += 1,
                None => maxima.push(Maximum {
                    theta,
                    value: report.value,
                    hits: 1,
                }),
            }
        }
        reports.push(report);
    }
    // Best first; the sort is stable, so ties keep the order of discovery.
    maxima.sort_by(|a, b| {
        b.value
            .partial_cmp(&a.value)
            .unwrap_or(std::cmp::Ordering::Equal)
    });
    Ok(MultiStart { maxima, reports })
}

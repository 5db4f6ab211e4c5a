//! Off-policy evaluation: the value of any policy of the model, estimated
//! from logs (x, a, r, μ) another policy collected (docs/ARCHITECTURE.md,
//! "Off-policy evaluation").
//!
//! The estimators follow the definitions of Open Bandit Pipeline's IPW,
//! SNIPW, DM and DR, with w_i = π(a_i | x_i) / μ_i (no clipping by default;
//! min(w_i, M) with clipping):
//!
//! * IPS: V̂ = (1/n) Σ_i w_i r_i;
//! * SNIPS: V̂ = Σ_i w_i r_i / Σ_i w_i;
//! * DM: V̂ = (1/n) Σ_i Σ_a π(a | x_i) q̂(x_i, a);
//! * DR: V̂ = (1/n) Σ_i [Σ_a π(a | x_i) q̂(x_i, a) + w_i (r_i − q̂(x_i, a_i))],
//!
//! with a reward model q̂ behind [`RewardModel`], by default [`Ridge`]
//! (per-action ridge regression). Each estimate comes with its standard
//! error (the sample standard deviation, ddof 1, of the per-row terms over
//! √n; for SNIPS the delta method, terms w_i (r_i − V̂) / w̄), a normal 95%
//! interval V̂ ± 1.96 SE, and a seeded percentile bootstrap interval that
//! resamples rows with the reward model held fixed.

use rand::SeedableRng;
use rand::distr::{Distribution, Uniform};

use crate::error::{Error, Result};
use crate::history::History;
use crate::policy::{Policy, check_context, check_len};
use crate::real::Real;

/// The standard normal quantile of 0.975.
const Z_975: f64 = 1.959_963_984_540_054;

/// A model of the expected reward q̂(x, a) of every action.
pub trait RewardModel<F: Real> {
    /// Number of actions K.
    fn num_actions(&self) -> usize;

    /// Context length d.
    fn context_dim(&self) -> usize;

    /// Writes q̂(x, a) for every action into `out` (length K).
    ///
    /// # Errors
    /// [`Error::ContextLength`], [`Error::NonFiniteContext`], [`Error::Length`].
    fn predict_into(&self, x: &[F], out: &mut [F]) -> Result<()>;
}

/// Per-action ridge regression without a separate intercept:
/// q̂(x, a) = W_a · x with W_a = (X_aᵀX_a + λ_q I)⁻¹ X_aᵀ r_a over the rows
/// that took action a (W_a = 0 for an action never taken). Put a constant
/// feature in the contexts for an intercept.
#[derive(Debug, Clone, PartialEq)]
pub struct Ridge<F> {
    k: usize,
    d: usize,
    lambda: F,
    /// W, K×d row-major.
    weights: Vec<F>,
}

impl<F: Real> Ridge<F> {
    /// Fits the model on `logs` for `k` actions with penalty λ_q > 0.
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] for λ_q ≤ 0 or non-finite, a K too large
    /// to allocate, or weights that overflow; [`Error::BadLog`] for a bad
    /// logged value; [`Error::ZeroActions`].
    pub fn fit(logs: &History<F>, k: usize, lambda: F) -> Result<Self> {
        if !(lambda.is_finite() && lambda > F::zero()) {
            return Err(Error::InvalidParameter {
                name: "ridge lambda",
                value: lambda.f64(),
                expected: "finite and > 0",
            });
        }
        logs.check(k)?;
        let d = logs.context_dim();
        crate::limits::actions(k)?;
        crate::limits::context_dim(d)?;
        let dd = crate::limits::product(
            "ridge Gram entries per action d²",
            d,
            d,
            crate::limits::MAX_PARAMETERS,
        )?;
        let entries = crate::limits::product(
            "ridge Gram entries K·d²",
            k,
            dd,
            crate::limits::MAX_PARAMETERS,
        )?;
        let mut gram = crate::limits::try_filled(entries, F::zero(), "ridge Gram matrices")?;
        let mut rhs = crate::limits::try_filled(k * d, F::zero(), "ridge right-hand sides")?;
        for it in logs.iter() {
            let a = it.action;
            let g = &mut gram[a * d * d..(a + 1) * d * d];
            for i in 0..d {
                for j in 0..=i {
                    g[i * d + j] += it.context[i] * it.context[j];
                }
                rhs[a * d + i] += it.context[i] * it.reward;
            }
        }
        for a in 0..k {
            let g = &mut gram[a * d * d..(a + 1) * d * d];
            for i in 0..d {
                g[i * d + i] += lambda;
            }
            if !crate::kernels::factor(g, d) {
                return Err(Error::SingularHessian);
            }
            crate::kernels::solve(g, d, &mut rhs[a * d..(a + 1) * d]);
        }
        if let Some(v) = rhs.iter().find(|v| !v.is_finite()) {
            return Err(Error::InvalidParameter {
                name: "ridge weights",
                value: v.f64(),
                expected: "finite (the rewards or contexts overflow the regression)",
            });
        }
        Ok(Self {
            k,
            d,
            lambda,
            weights: rhs,
        })
    }

    /// W, K×d row-major (entry a·d + j).
    pub fn weights(&self) -> &[F] {
        &self.weights
    }

    /// λ_q.
    pub fn lambda(&self) -> F {
        self.lambda
    }
}

impl<F: Real> RewardModel<F> for Ridge<F> {
    fn num_actions(&self) -> usize {
        self.k
    }

    fn context_dim(&self) -> usize {
        self.d
    }

    fn predict_into(&self, x: &[F], out: &mut [F]) -> Result<()> {
        check_context(x, self.d)?;
        check_len("out", out.len(), self.k)?;
        for (o, w) in out.iter_mut().zip(self.weights.chunks_exact(self.d)) {
            *o = w.iter().zip(x).map(|(a, b)| *a * *b).sum();
        }
        Ok(())
    }
}

/// Settings of [`evaluate`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct OpeOptions<F> {
    /// Clip the importance weights at M (default `None`: no clipping).
    pub clip: Option<F>,
    /// λ_q of the default [`Ridge`] reward model (default 1).
    pub ridge_lambda: F,
    /// Bootstrap resamples (default 1000; 0 skips the bootstrap interval).
    pub bootstrap: usize,
    /// Seed of the bootstrap (default 0).
    pub seed: u64,
}

impl<F: Real> Default for OpeOptions<F> {
    fn default() -> Self {
        Self {
            clip: None,
            ridge_lambda: F::one(),
            bootstrap: 1000,
            seed: 0,
        }
    }
}

/// One estimate with its uncertainty.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Estimate<F> {
    /// V̂.
    pub value: F,
    /// Its standard error.
    pub std_err: F,
    /// The normal 95% interval V̂ ± 1.96 SE.
    pub normal: (F, F),
    /// The percentile bootstrap 95% interval (2.5% and 97.5% quantiles of
    /// the resampled estimates, linearly interpolated); `None` without
    /// resamples.
    pub bootstrap: Option<(F, F)>,
}

/// The four estimates of a policy's value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Evaluation<F> {
    /// Inverse propensity scoring (OBP's IPW).
    pub ips: Estimate<F>,
    /// Self-normalized IPS (OBP's SNIPW).
    pub snips: Estimate<F>,
    /// The direct method (OBP's DM).
    pub dm: Estimate<F>,
    /// Doubly robust (OBP's DR).
    pub dr: Estimate<F>,
    /// Number of logged rows.
    pub n: usize,
    /// The mean importance weight w̄ (1 in expectation without clipping;
    /// far from 1 signals a poor overlap of the two policies).
    pub mean_weight: F,
}

/// Evaluates `policy` on `logs` with every estimator, the reward model of
/// DM and DR a [`Ridge`] fitted on the same logs (λ_q = `options.ridge_lambda`).
///
/// # Examples
/// ```
/// use refit::history::History;
/// use refit::ope::{OpeOptions, evaluate};
/// use refit::policy::Tabular;
/// let mut logs = History::new(1);
/// for i in 0..100 {
///     let a = i % 2;
///     logs.push(&[1.0], a, a as f64, 0.5)?; // arm 1 pays 1, arm 0 pays 0
/// }
/// let uniform = Tabular::<f64>::new(2)?;
/// let e = evaluate(&uniform, &logs, &OpeOptions::default())?;
/// assert!((e.ips.value - 0.5).abs() < 1e-12);
/// # Ok::<(), refit::Error>(())
/// ```
///
/// # Errors
/// As [`evaluate_with`] and [`Ridge::fit`].
pub fn evaluate<F: Real, P: Policy<F>>(
    policy: &P,
    logs: &History<F>,
    options: &OpeOptions<F>,
) -> Result<Evaluation<F>> {
    check_shapes(policy, logs)?;
    let model = Ridge::fit(logs, policy.num_actions(), options.ridge_lambda)?;
    evaluate_with(policy, logs, &model, options)
}

fn check_shapes<F: Real, P: Policy<F>>(policy: &P, logs: &History<F>) -> Result<()> {
    if logs.context_dim() != policy.context_dim() {
        return Err(Error::ContextLength {
            expected: policy.context_dim(),
            got: logs.context_dim(),
        });
    }
    if logs.len() < 2 {
        return Err(Error::InvalidParameter {
            name: "logs",
            value: logs.len() as f64,
            expected: "at least 2 logged interactions (a standard error needs 2)",
        });
    }
    Ok(())
}

/// Evaluates `policy` on `logs` with every estimator and the reward model
/// `model` for DM and DR.
///
/// # Errors
/// [`Error::ContextLength`] or [`Error::Length`] if the logs, policy and
/// model disagree in shape; [`Error::InvalidParameter`] for fewer than 2
/// rows or a clip M ≤ 0; [`Error::TooLarge`] for more than
/// [`crate::limits::MAX_BOOTSTRAP`] bootstrap replicates or K over its
/// limit; [`Error::BadLog`] for a bad logged value;
/// [`Error::NonFiniteLogits`] if the policy overflows on a logged context;
/// [`Error::NonFiniteEstimate`] if an estimate, its standard error or the
/// mean importance weight overflows.
pub fn evaluate_with<F: Real, P: Policy<F>, M: RewardModel<F> + ?Sized>(
    policy: &P,
    logs: &History<F>,
    model: &M,
    options: &OpeOptions<F>,
) -> Result<Evaluation<F>> {
    check_shapes(policy, logs)?;
    let k = policy.num_actions();
    check_len("reward model actions", model.num_actions(), k)?;
    if model.context_dim() != logs.context_dim() {
        return Err(Error::ContextLength {
            expected: logs.context_dim(),
            got: model.context_dim(),
        });
    }
    if let Some(m) = options.clip {
        if !(m.is_finite() && m > F::zero()) {
            return Err(Error::InvalidParameter {
                name: "clip",
                value: m.f64(),
                expected: "finite and > 0",
            });
        }
    }
    crate::limits::actions(k)?;
    crate::limits::at_most(
        "bootstrap replicates",
        options.bootstrap,
        crate::limits::MAX_BOOTSTRAP,
    )?;
    logs.check(k)?;
    let n = logs.len();
    let mut rows = Rows {
        w: Vec::with_capacity(n),
        r: Vec::with_capacity(n),
        dm: Vec::with_capacity(n),
        dr: Vec::with_capacity(n),
    };
    let mut pi = vec![F::zero(); policy.probs_len().max(k)];
    let mut q = vec![F::zero(); k];
    for it in logs.iter() {
        policy.probabilities_into(it.context, &mut pi)?;
        model.predict_into(it.context, &mut q)?;
        let raw = pi[it.action] / it.propensity;
        let w = options.clip.map_or(raw, |m| raw.min(m));
        let dm: F = pi[..k].iter().zip(&q).map(|(p, v)| *p * *v).sum();
        rows.w.push(w);
        rows.r.push(it.reward);
        rows.dm.push(dm);
        rows.dr.push(dm + w * (it.reward - q[it.action]));
    }
    let all: Vec<usize> = (0..n).collect();
    let point = rows.estimates(&all);
    let nf = F::c(n as f64);
    let mean_weight = rows.w.iter().copied().sum::<F>() / nf;
    // Standard errors from the per-row terms.
    let ips_terms: Vec<F> = rows.w.iter().zip(&rows.r).map(|(w, r)| *w * *r).collect();
    let sn_terms: Vec<F> = rows
        .w
        .iter()
        .zip(&rows.r)
        .map(|(w, r)| *w * (*r - point[1]) / mean_weight)
        .collect();
    let se = [
        std_err(&ips_terms),
        if mean_weight > F::zero() {
            std_err(&sn_terms)
        } else {
            F::nan()
        },
        std_err(&rows.dm),
        std_err(&rows.dr),
    ];
    // Every figure returned must be finite; SNIPS alone is NaN by definition
    // when no logged action has weight.
    let snips = mean_weight > F::zero();
    let figures = [
        (point[0], "IPS", true),
        (se[0], "IPS standard error", true),
        (point[1], "SNIPS", snips),
        (se[1], "SNIPS standard error", snips),
        (point[2], "DM", true),
        (se[2], "DM standard error", true),
        (point[3], "DR", true),
        (se[3], "DR standard error", true),
        (mean_weight, "mean importance weight", true),
    ];
    if let Some(&(value, estimator, _)) = figures
        .iter()
        .find(|(v, _, required)| *required && !v.is_finite())
    {
        return Err(Error::NonFiniteEstimate {
            estimator,
            value: value.f64(),
        });
    }
    // The bootstrap: resample rows, recompute every estimator.
    let mut boot: [Vec<F>; 4] = Default::default();
    if options.bootstrap > 0 {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(options.seed);
        let pick = Uniform::new(0, n).map_err(|_| Error::ZeroActions)?;
        let mut idx = vec![0; n];
        for _ in 0..options.bootstrap {
            for i in &mut idx {
                *i = pick.sample(&mut rng);
            }
            let e = rows.estimates(&idx);
            for (b, v) in boot.iter_mut().zip(e) {
                b.push(v);
            }
        }
    }
    for b in &mut boot {
        b.sort_by(|x, y| x.f64().total_cmp(&y.f64()));
    }
    let estimate = |j: usize| {
        let z = F::c(Z_975);
        let bootstrap =
            (options.bootstrap > 0).then(|| (quantile(&boot[j], 0.025), quantile(&boot[j], 0.975)));
        Estimate {
            value: point[j],
            std_err: se[j],
            normal: (point[j] - z * se[j], point[j] + z * se[j]),
            bootstrap,
        }
    };
    Ok(Evaluation {
        ips: estimate(0),
        snips: estimate(1),
        dm: estimate(2),
        dr: estimate(3),
        n,
        mean_weight,
    })
}

/// Per-row quantities of the estimators.
struct Rows<F> {
    w: Vec<F>,
    r: Vec<F>,
    dm: Vec<F>,
    dr: Vec<F>,
}

impl<F: Real> Rows<F> {
    /// IPS, SNIPS, DM and DR over the rows `idx` (with repetition).
    fn estimates(&self, idx: &[usize]) -> [F; 4] {
        let (mut u, mut w, mut dm, mut dr) = (F::zero(), F::zero(), F::zero(), F::zero());
        for &i in idx {
            u += self.w[i] * self.r[i];
            w += self.w[i];
            dm += self.dm[i];
            dr += self.dr[i];
        }
        let n = F::c(idx.len() as f64);
        let snips = if w > F::zero() { u / w } else { F::nan() };
        [u / n, snips, dm / n, dr / n]
    }
}

/// Sample standard deviation (ddof 1) of `terms` over √n.
fn std_err<F: Real>(terms: &[F]) -> F {
    let n = F::c(terms.len() as f64);
    let mean = terms.iter().copied().sum::<F>() / n;
    let ss: F = terms.iter().map(|t| (*t - mean) * (*t - mean)).sum();
    (ss / (n - F::one())).sqrt() / n.sqrt()
}

/// The q-quantile of sorted `v`, linearly interpolated (numpy's default).
fn quantile<F: Real>(v: &[F], q: f64) -> F {
    let pos = q * (v.len() - 1) as f64;
    let lo = pos.floor() as usize;
    let hi = (lo + 1).min(v.len() - 1);
    let t = F::c(pos - lo as f64);
    v[lo] + t * (v[hi] - v[lo])
}

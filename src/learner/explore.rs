//! The standard exploration baselines: ε-greedy, LinUCB, SquareCB (over a
//! per-action ridge model) and Thompson sampling (Beta–Bernoulli and
//! linear Gaussian), each a [`Learner`] that logs the propensity of every
//! decision (docs/ARCHITECTURE.md, "Baselines").

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Beta, Distribution, StandardNormal};

use super::{Decision, Learner, Ridge, check_interaction};
use crate::error::{Error, Result, ensure, inconsistent};
use crate::policy::{check_context, check_len, sample};
use crate::real::Real;

/// Default number of Monte Carlo draws behind a Thompson sampler's
/// propensity ([`LinTs::with_propensity_draws`]).
pub const DEFAULT_PROPENSITY_DRAWS: usize = 100;

/// Largest number of Monte Carlo draws behind a Thompson sampler's propensity.
pub const MAX_PROPENSITY_DRAWS: usize = 1 << 20;

/// `v` at length `n` (scratch that is not saved is sized on first use).
fn sized<F: Real>(v: &mut Vec<F>, n: usize) -> Result<()> {
    if v.len() != n {
        crate::limits::try_reserve_to(v, n, "probabilities")?;
        v.resize(n, F::zero());
    }
    Ok(())
}

/// The largest score and how many scores equal it; `None` if a score is
/// not finite.
fn top<F: Real>(scores: &[F]) -> Option<(F, usize)> {
    let mut best = F::neg_infinity();
    let mut ties = 0;
    for &s in scores {
        if !s.is_finite() {
            return None;
        }
        if s > best {
            best = s;
            ties = 1;
        } else if s == best {
            ties += 1;
        }
    }
    Some((best, ties))
}

/// The first index of the largest score (scores are finite).
fn first_argmax<F: Real>(scores: &[F]) -> usize {
    let mut best = 0;
    for (i, &s) in scores.iter().enumerate() {
        if s > scores[best] {
            best = i;
        }
    }
    best
}

/// π that puts `rest` on every action and shares `greedy` equally among
/// the exact ties of the largest score; `NonFiniteLogits` if a score is
/// not finite.
fn greedy_share<F: Real>(scores: &[F], out: &mut [F], rest: F, greedy: F) -> Result<()> {
    let (best, ties) = top(scores).ok_or(Error::NonFiniteLogits)?;
    let share = greedy / F::c(ties as f64);
    for (o, &s) in out.iter_mut().zip(scores) {
        *o = if s == best { rest + share } else { rest };
    }
    Ok(())
}

/// The Monte Carlo propensity of a Thompson sampler: `draws` draws of the
/// posterior scores by `draw` from the stream (`seed`, `step`), counted by
/// their first argmax; π̂(a) = (c_a + 1/K) / (M + 1), which sums to 1 and
/// is positive.
fn count_argmax<F: Real>(
    k: usize,
    draws: usize,
    seed: u64,
    step: u64,
    scores: &mut [F],
    out: &mut [F],
    mut draw: impl FnMut(&mut ChaCha8Rng, &mut [F]),
) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(step);
    out.iter_mut().for_each(|o| *o = F::zero());
    for _ in 0..draws {
        draw(&mut rng, scores);
        let a = first_argmax(scores);
        out[a] += F::one();
    }
    let (prior, total) = (F::one() / F::c(k as f64), F::c(draws as f64 + 1.0));
    out.iter_mut().for_each(|o| *o = (*o + prior) / total);
}

/// Checks the propensity draws.
fn check_draws(draws: usize) -> Result<()> {
    if draws == 0 {
        return Err(Error::InvalidParameter {
            name: "propensity_draws",
            value: 0.0,
            expected: ">= 1",
        });
    }
    crate::limits::at_most("propensity draws", draws, MAX_PROPENSITY_DRAWS)?;
    Ok(())
}

/// A finite, non-negative (or positive) hyperparameter.
fn check_param<F: Real>(name: &'static str, value: F, positive: bool) -> Result<()> {
    let ok = value.is_finite()
        && if positive {
            value > F::zero()
        } else {
            value >= F::zero()
        };
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidParameter {
            name,
            value: value.f64(),
            expected: if positive {
                "finite and > 0"
            } else {
                "finite and >= 0"
            },
        })
    }
}

/// The buffers every baseline keeps: π of the last act and where the next
/// one is formed.
#[derive(Debug, Clone, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
struct Acted<F> {
    /// π(· | x) of the last successful act (length K once acted).
    probs: Vec<F>,
    acted: bool,
    /// Where the next π is formed (not saved).
    #[cfg_attr(feature = "serde", serde(skip))]
    next: Vec<F>,
    /// Scores of the actions (not saved).
    #[cfg_attr(feature = "serde", serde(skip))]
    scores: Vec<F>,
    /// The scratch of a ridge model's widths (not saved).
    #[cfg_attr(feature = "serde", serde(skip))]
    outer: Vec<F>,
}

impl<F: Real> Acted<F> {
    fn new(k: usize) -> Result<Self> {
        Ok(Self {
            probs: crate::limits::try_filled(k, F::zero(), "probabilities")?,
            acted: false,
            next: crate::limits::try_filled(k, F::zero(), "probabilities")?,
            scores: crate::limits::try_filled(k, F::zero(), "probabilities")?,
            outer: Vec::new(),
        })
    }

    fn size(&mut self, k: usize) -> Result<()> {
        sized(&mut self.next, k)?;
        sized(&mut self.scores, k)
    }

    /// Commits `next` as the last act's π and samples from it.
    fn commit_and_sample<R: Rng + ?Sized>(&mut self, rng: &mut R) -> Decision<F> {
        std::mem::swap(&mut self.probs, &mut self.next);
        self.acted = true;
        let action = sample(&self.probs, rng);
        Decision {
            action,
            propensity: self.probs[action],
        }
    }

    fn probabilities(&self) -> Option<&[F]> {
        self.acted.then_some(&self.probs[..])
    }

    fn validate(&self, k: usize) -> Result<()> {
        ensure(
            self.probs.len() == k
                && (!self.acted || self.probs.iter().all(|p| p.is_finite() && *p >= F::zero())),
            "baseline probabilities",
        )
    }
}

/// ε-greedy over a per-action ridge reward model ([`Ridge`]): with
/// probability 1 − ε the action of the largest predicted reward θ_aᵀx
/// (exact ties share it equally), otherwise a uniform one. Its propensity
/// is exact: π(a | x) = ε/K + (1 − ε)·[a among the m tied best]/m.
///
/// # Examples
/// ```
/// use refit::learner::{EpsilonGreedy, Learner};
/// use rand::SeedableRng;
/// let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
/// let mut l = EpsilonGreedy::<f64>::new(2, 1, 1.0, 0.1)?;
/// l.learn(&[1.0], 1, 1.0, 0.5)?;
/// let d = l.act(&[1.0], &mut rng)?;
/// let p = l.probabilities().expect("acted");
/// // ε/K on every action, 1 − ε more on the greedy one.
/// assert!((p[0] - 0.05).abs() < 1e-15 && (p[1] - 0.95).abs() < 1e-15);
/// assert_eq!(d.propensity, p[d.action]);
/// # Ok::<(), refit::Error>(())
/// ```
#[derive(Debug, Clone)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(
    feature = "serde",
    serde(bound(deserialize = "F: serde::Deserialize<'de> + Default"))
)]
pub struct EpsilonGreedy<F> {
    model: Ridge<F>,
    epsilon: F,
    state: Acted<F>,
}

impl<F: Real> EpsilonGreedy<F> {
    /// ε-greedy over `k` actions and contexts of length `d`, ridge prior
    /// precision `lambda`, exploration rate `epsilon` ∈ [0, 1].
    ///
    /// # Errors
    /// As [`Ridge::new`]; [`Error::InvalidParameter`] for ε outside [0, 1].
    pub fn new(k: usize, d: usize, lambda: F, epsilon: F) -> Result<Self> {
        if !(epsilon >= F::zero() && epsilon <= F::one()) {
            return Err(Error::InvalidParameter {
                name: "epsilon",
                value: epsilon.f64(),
                expected: "in [0, 1]",
            });
        }
        Ok(Self {
            model: Ridge::new(k, d, lambda)?,
            epsilon,
            state: Acted::new(k)?,
        })
    }

    /// The reward model.
    pub fn model(&self) -> &Ridge<F> {
        &self.model
    }

    /// The exploration rate ε.
    pub fn epsilon(&self) -> F {
        self.epsilon
    }

    fn distribution(&mut self, x: &[F]) -> Result<()> {
        check_context(x, self.model.context_dim())?;
        let k = self.model.num_actions();
        self.state.size(k)?;
        self.model.means_unchecked(x, &mut self.state.scores);
        let rest = self.epsilon / F::c(k as f64);
        greedy_share(
            &self.state.scores,
            &mut self.state.next,
            rest,
            F::one() - self.epsilon,
        )
    }
}

/// LinUCB with disjoint models (Li, Chu, Langford & Schapire 2010,
/// Algorithm 1): the action of the largest upper confidence bound
/// θ_aᵀx + α √(xᵀA_a⁻¹x) over a per-action ridge model ([`Ridge`]). It is
/// deterministic; exact ties are broken uniformly at random, so the
/// logged propensity is 1, or 1/m among m tied actions.
///
/// # Examples
/// ```
/// use refit::learner::{Learner, LinUcb};
/// use rand::SeedableRng;
/// let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
/// let mut l = LinUcb::<f64>::new(3, 1, 1.0, 1.0)?;
/// let d = l.act(&[1.0], &mut rng)?; // all tied before any data
/// assert!((d.propensity - 1.0 / 3.0).abs() < 1e-15);
/// # Ok::<(), refit::Error>(())
/// ```
#[derive(Debug, Clone)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(
    feature = "serde",
    serde(bound(deserialize = "F: serde::Deserialize<'de> + Default"))
)]
pub struct LinUcb<F> {
    model: Ridge<F>,
    alpha: F,
    state: Acted<F>,
    /// Widths of the last act (not saved).
    #[cfg_attr(feature = "serde", serde(skip))]
    widths: Vec<F>,
}

impl<F: Real> LinUcb<F> {
    /// LinUCB over `k` actions and contexts of length `d`, ridge prior
    /// precision `lambda`, exploration width `alpha` ≥ 0.
    ///
    /// # Errors
    /// As [`Ridge::new`]; [`Error::InvalidParameter`] for α < 0 or not finite.
    pub fn new(k: usize, d: usize, lambda: F, alpha: F) -> Result<Self> {
        check_param("alpha", alpha, false)?;
        Ok(Self {
            model: Ridge::new(k, d, lambda)?,
            alpha,
            state: Acted::new(k)?,
            widths: crate::limits::try_filled(k, F::zero(), "probabilities")?,
        })
    }

    /// The reward model.
    pub fn model(&self) -> &Ridge<F> {
        &self.model
    }

    /// The exploration width α.
    pub fn alpha(&self) -> F {
        self.alpha
    }

    /// The upper confidence bounds θ_aᵀx + α √(xᵀA_a⁻¹x) at `x` into `out`.
    ///
    /// # Errors
    /// As [`Ridge::means_into`].
    pub fn scores_into(&mut self, x: &[F], out: &mut [F]) -> Result<()> {
        check_len("out", out.len(), self.model.num_actions())?;
        check_context(x, self.model.context_dim())?;
        self.ucb(x, out)
    }

    fn ucb(&mut self, x: &[F], out: &mut [F]) -> Result<()> {
        sized(&mut self.widths, self.model.num_actions())?;
        self.model.widths_scratch(&mut self.state.outer)?;
        self.model.means_unchecked(x, out);
        self.model
            .widths_with(x, &mut self.state.outer, &mut self.widths);
        for (o, &w) in out.iter_mut().zip(&self.widths) {
            *o += self.alpha * w;
        }
        Ok(())
    }

    fn distribution(&mut self, x: &[F]) -> Result<()> {
        check_context(x, self.model.context_dim())?;
        self.state.size(self.model.num_actions())?;
        let mut scores = std::mem::take(&mut self.state.scores);
        let r = self.ucb(x, &mut scores);
        self.state.scores = scores;
        r?;
        greedy_share(
            &self.state.scores,
            &mut self.state.next,
            F::zero(),
            F::one(),
        )
    }
}

/// SquareCB (Foster & Rakhlin 2020, "Beyond UCB"): inverse-gap weighting
/// over a regression oracle, here the per-action ridge model ([`Ridge`]).
/// With ŷ_a = θ_aᵀx, b the first action of the largest ŷ and
/// γ_t = γ₀ · t^ρ at the t-th decision (t = 1 + points learned),
///
/// π(a | x) = 1 / (K + γ_t (ŷ_b − ŷ_a)) for a ≠ b,  π(b | x) = 1 − Σ_{a≠b} π(a | x),
///
/// exact, and π(b | x) ≥ 1/K. The defaults of Vowpal Wabbit's
/// `--squarecb` are γ₀ = 10, ρ = ½ (γ_t ∝ √t, the paper's rate).
///
/// # Examples
/// ```
/// use refit::learner::{Learner, SquareCb};
/// use rand::SeedableRng;
/// let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
/// let mut l = SquareCb::<f64>::new(3, 1, 1.0, 10.0, 0.5)?;
/// l.learn(&[1.0], 2, 1.0, 1.0 / 3.0)?;
/// l.act(&[1.0], &mut rng)?;
/// let p = l.probabilities().expect("acted");
/// assert!((p.iter().sum::<f64>() - 1.0).abs() < 1e-15 && p[2] > p[0]);
/// # Ok::<(), refit::Error>(())
/// ```
#[derive(Debug, Clone)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(
    feature = "serde",
    serde(bound(deserialize = "F: serde::Deserialize<'de> + Default"))
)]
pub struct SquareCb<F> {
    model: Ridge<F>,
    gamma0: F,
    exponent: F,
    steps: u64,
    state: Acted<F>,
}

impl<F: Real> SquareCb<F> {
    /// SquareCB over `k` actions and contexts of length `d`, ridge prior
    /// precision `lambda`, γ_t = `gamma0` · t^`exponent`.
    ///
    /// # Errors
    /// As [`Ridge::new`]; [`Error::InvalidParameter`] unless γ₀ is finite
    /// and > 0 and ρ is finite and ≥ 0.
    pub fn new(k: usize, d: usize, lambda: F, gamma0: F, exponent: F) -> Result<Self> {
        check_param("gamma0", gamma0, true)?;
        check_param("exponent", exponent, false)?;
        Ok(Self {
            model: Ridge::new(k, d, lambda)?,
            gamma0,
            exponent,
            steps: 0,
            state: Acted::new(k)?,
        })
    }

    /// The reward model.
    pub fn model(&self) -> &Ridge<F> {
        &self.model
    }

    /// γ_t of the next decision.
    pub fn gamma(&self) -> F {
        self.gamma0 * F::c(self.steps as f64 + 1.0).powf(self.exponent)
    }

    fn distribution(&mut self, x: &[F]) -> Result<()> {
        check_context(x, self.model.context_dim())?;
        let k = self.model.num_actions();
        self.state.size(k)?;
        let (gamma, kf) = (self.gamma(), F::c(k as f64));
        let (y, out) = (&mut self.state.scores, &mut self.state.next);
        self.model.means_unchecked(x, y);
        top(y).ok_or(Error::NonFiniteLogits)?;
        let b = first_argmax(y);
        if !gamma.is_finite() {
            return Err(Error::NonFiniteUpdate);
        }
        let mut rest = F::zero();
        for (a, (o, &ya)) in out.iter_mut().zip(y.iter()).enumerate() {
            if a != b {
                *o = F::one() / (kf + gamma * (y[b] - ya));
                rest += *o;
            }
        }
        out[b] = (F::one() - rest).max(F::zero());
        Ok(())
    }
}

/// Thompson sampling with a linear Gaussian model per action (LinTS;
/// Agrawal & Goyal 2013): θ̃_a ~ N(θ_a, v² A_a⁻¹) over the ridge model
/// ([`Ridge`]), then the action of the largest θ̃_aᵀx (the first, on an
/// exact tie). Only θ̃_aᵀx ~ N(θ_aᵀx, v² xᵀA_a⁻¹x) enters the decision,
/// and the actions' draws are independent, so it draws those K normals
/// directly: the same distribution of actions as drawing every θ̃_a, at
/// O(K d²) instead of O(K d³).
///
/// **Propensity.** P(a = argmax) has no closed form, so the logged
/// propensity is a Monte Carlo estimate: M more draws of the K scores from
/// a stream of their own (ChaCha8 seeded by `seed`, stream = number of
/// points learned), counted by their argmax c_a, and
/// π̂(a | x) = (c_a + 1/K) / (M + 1) — positive and summing to 1. The same
/// state and context give the same estimate ([`Learner::policy_into`]
/// writes it); its standard error is about √(π(1 − π)/M). The action
/// itself is drawn from the exact posterior with the caller's RNG.
///
/// # Examples
/// ```
/// use refit::learner::{Learner, LinTs};
/// use rand::SeedableRng;
/// let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
/// let mut l = LinTs::<f64>::new(2, 1, 1.0, 0.5)?.with_propensity_draws(1000, 7)?;
/// for _ in 0..20 {
///     l.learn(&[1.0], 1, 1.0, 0.5)?;
/// }
/// let d = l.act(&[1.0], &mut rng)?;
/// assert!(l.probabilities().expect("acted")[1] > 0.9);
/// # let _ = d;
/// # Ok::<(), refit::Error>(())
/// ```
#[derive(Debug, Clone)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(
    feature = "serde",
    serde(bound(deserialize = "F: serde::Deserialize<'de> + Default"))
)]
pub struct LinTs<F> {
    model: Ridge<F>,
    scale: F,
    draws: usize,
    seed: u64,
    steps: u64,
    state: Acted<F>,
    /// Posterior standard deviations of the scores (not saved).
    #[cfg_attr(feature = "serde", serde(skip))]
    sd: Vec<F>,
    /// Posterior means of the scores (not saved).
    #[cfg_attr(feature = "serde", serde(skip))]
    mean: Vec<F>,
}

impl<F: Real> LinTs<F> {
    /// LinTS over `k` actions and contexts of length `d`, ridge prior
    /// precision `lambda`, posterior scale `scale` = v > 0 (the noise
    /// standard deviation the model assumes); propensities from
    /// [`DEFAULT_PROPENSITY_DRAWS`] draws, seed 0.
    ///
    /// # Errors
    /// As [`Ridge::new`]; [`Error::InvalidParameter`] for v ≤ 0 or not finite.
    pub fn new(k: usize, d: usize, lambda: F, scale: F) -> Result<Self> {
        check_param("scale", scale, true)?;
        Ok(Self {
            model: Ridge::new(k, d, lambda)?,
            scale,
            draws: DEFAULT_PROPENSITY_DRAWS,
            seed: 0,
            steps: 0,
            state: Acted::new(k)?,
            sd: crate::limits::try_filled(k, F::zero(), "probabilities")?,
            mean: crate::limits::try_filled(k, F::zero(), "probabilities")?,
        })
    }

    /// The same learner with its propensity estimated from `draws` Monte
    /// Carlo draws of the stream seeded by `seed`.
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] for 0 draws, [`Error::TooLarge`] above
    /// [`MAX_PROPENSITY_DRAWS`].
    pub fn with_propensity_draws(mut self, draws: usize, seed: u64) -> Result<Self> {
        check_draws(draws)?;
        self.draws = draws;
        self.seed = seed;
        Ok(self)
    }

    /// The reward model.
    pub fn model(&self) -> &Ridge<F> {
        &self.model
    }

    /// The number of Monte Carlo draws behind a propensity, and their seed.
    pub fn propensity_draws(&self) -> (usize, u64) {
        (self.draws, self.seed)
    }

    /// Means and standard deviations of the scores at a checked `x`, and
    /// the estimated π into `next`.
    fn distribution(&mut self, x: &[F]) -> Result<()> {
        check_context(x, self.model.context_dim())?;
        let k = self.model.num_actions();
        self.state.size(k)?;
        sized(&mut self.sd, k)?;
        sized(&mut self.mean, k)?;
        self.model.widths_scratch(&mut self.state.outer)?;
        self.model.means_unchecked(x, &mut self.mean);
        self.model
            .widths_with(x, &mut self.state.outer, &mut self.sd);
        for s in self.sd.iter_mut() {
            *s *= self.scale;
        }
        let finite = top(&self.mean).is_some() && top(&self.sd).is_some();
        if !finite {
            return Err(Error::NonFiniteLogits);
        }
        let (mean, sd) = (&self.mean, &self.sd);
        count_argmax(
            k,
            self.draws,
            self.seed,
            self.steps,
            &mut self.state.scores,
            &mut self.state.next,
            |rng, s| gaussian_scores(mean, sd, rng, s),
        );
        Ok(())
    }
}

/// One draw of the Gaussian scores.
#[inline]
fn gaussian_scores<F: Real, R: Rng + ?Sized>(mean: &[F], sd: &[F], rng: &mut R, out: &mut [F]) {
    for ((o, &m), &s) in out.iter_mut().zip(mean).zip(sd) {
        let z: f64 = StandardNormal.sample(rng);
        *o = m + s * F::c(z);
    }
}

/// Bernoulli Thompson sampling (Thompson 1933; Agrawal & Goyal 2012):
/// a Beta(α₀ + S_a, β₀ + F_a) posterior per action over rewards in [0, 1]
/// (a reward r adds r to S_a and 1 − r to F_a: the counts of successes and
/// failures for 0/1 rewards), then the action of the largest posterior
/// draw (the first, on an exact tie). Context-free: contexts have length 1
/// and their value is ignored, as for [`crate::policy::Tabular`].
///
/// **Propensity.** As for [`LinTs`]: a seeded Monte Carlo count of M more
/// posterior draws, π̂(a) = (c_a + 1/K) / (M + 1).
///
/// # Examples
/// ```
/// use refit::learner::{BetaThompson, Learner};
/// let mut l = BetaThompson::<f64>::new(2, 1.0, 1.0)?;
/// l.learn(&[1.0], 0, 1.0, 0.5)?;
/// l.learn(&[1.0], 0, 0.0, 0.5)?;
/// assert_eq!(l.posterior(0)?, (2.0, 2.0)); // Beta(1 + 1, 1 + 1)
/// # Ok::<(), refit::Error>(())
/// ```
#[derive(Debug, Clone)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(
    feature = "serde",
    serde(bound(deserialize = "F: serde::Deserialize<'de> + Default"))
)]
pub struct BetaThompson<F> {
    alpha0: F,
    beta0: F,
    successes: Vec<F>,
    failures: Vec<F>,
    draws: usize,
    seed: u64,
    steps: u64,
    state: Acted<F>,
    /// The posteriors of the current act (not saved).
    #[cfg_attr(feature = "serde", serde(skip))]
    beta: Vec<Beta<f64>>,
}

impl<F: Real> BetaThompson<F> {
    /// Bernoulli Thompson sampling over `k` actions with the prior
    /// Beta(`alpha0`, `beta0`) for every action; propensities from
    /// [`DEFAULT_PROPENSITY_DRAWS`] draws, seed 0.
    ///
    /// # Errors
    /// [`Error::ZeroActions`], [`Error::TooLarge`], and
    /// [`Error::InvalidParameter`] unless α₀ and β₀ are finite and > 0.
    pub fn new(k: usize, alpha0: F, beta0: F) -> Result<Self> {
        if k == 0 {
            return Err(Error::ZeroActions);
        }
        crate::limits::actions(k)?;
        check_param("alpha0", alpha0, true)?;
        check_param("beta0", beta0, true)?;
        Ok(Self {
            alpha0,
            beta0,
            successes: crate::limits::try_filled(k, F::zero(), "posterior")?,
            failures: crate::limits::try_filled(k, F::zero(), "posterior")?,
            draws: DEFAULT_PROPENSITY_DRAWS,
            seed: 0,
            steps: 0,
            state: Acted::new(k)?,
            beta: Vec::new(),
        })
    }

    /// As [`LinTs::with_propensity_draws`].
    ///
    /// # Errors
    /// As [`LinTs::with_propensity_draws`].
    pub fn with_propensity_draws(mut self, draws: usize, seed: u64) -> Result<Self> {
        check_draws(draws)?;
        self.draws = draws;
        self.seed = seed;
        Ok(self)
    }

    /// The posterior Beta(α, β) of action `a`: (α₀ + S_a, β₀ + F_a).
    ///
    /// # Errors
    /// [`Error::ActionOutOfRange`].
    pub fn posterior(&self, a: usize) -> Result<(F, F)> {
        crate::policy::check_action(a, self.successes.len())?;
        Ok((
            self.alpha0 + self.successes[a],
            self.beta0 + self.failures[a],
        ))
    }

    fn distribution(&mut self, x: &[F]) -> Result<()> {
        check_context(x, 1)?;
        let k = self.successes.len();
        self.state.size(k)?;
        self.posteriors()?;
        let beta = &self.beta;
        count_argmax(
            k,
            self.draws,
            self.seed,
            self.steps,
            &mut self.state.scores,
            &mut self.state.next,
            |rng, s| beta_scores(beta, rng, s),
        );
        Ok(())
    }

    /// The K posteriors into `beta`.
    fn posteriors(&mut self) -> Result<()> {
        self.beta.clear();
        crate::limits::try_reserve_to(&mut self.beta, self.successes.len(), "posterior")?;
        for (&s, &f) in self.successes.iter().zip(&self.failures) {
            let (a, b) = ((self.alpha0 + s).f64(), (self.beta0 + f).f64());
            self.beta
                .push(Beta::new(a, b).map_err(|_| Error::NonFiniteUpdate)?);
        }
        Ok(())
    }
}

/// One draw of the Beta scores.
#[inline]
fn beta_scores<F: Real, R: Rng + ?Sized>(beta: &[Beta<f64>], rng: &mut R, out: &mut [F]) {
    for (o, b) in out.iter_mut().zip(beta) {
        *o = F::c(b.sample(rng));
    }
}

/// The `Learner` methods the ridge baselines share: π is formed by
/// `distribution` into `state.next`, then sampled (or, for Thompson
/// sampling, drawn from the posterior).
macro_rules! ridge_learner {
    ($t:ident, $validate:expr) => {
        impl<F: Real> Learner<F> for $t<F> {
            fn num_actions(&self) -> usize {
                self.model.num_actions()
            }
            fn context_dim(&self) -> usize {
                self.model.context_dim()
            }
            fn act<R: Rng + ?Sized>(&mut self, x: &[F], rng: &mut R) -> Result<Decision<F>> {
                self.distribution(x)?;
                Ok(self.state.commit_and_sample(rng))
            }
            fn probabilities(&self) -> Option<&[F]> {
                self.state.probabilities()
            }
            fn policy_into(&mut self, x: &[F], out: &mut [F]) -> Result<()> {
                check_len("out", out.len(), self.model.num_actions())?;
                self.distribution(x)?;
                out.copy_from_slice(&self.state.next);
                Ok(())
            }
            fn learn(&mut self, x: &[F], action: usize, reward: F, propensity: F) -> Result<()> {
                check_interaction(action, self.model.num_actions(), reward, propensity)?;
                check_context(x, self.model.context_dim())?;
                self.model.update_unchecked(x, action, reward)?;
                self.after_learn();
                Ok(())
            }
            fn validate(&self) -> Result<()> {
                self.model.validate()?;
                self.state.validate(self.model.num_actions())?;
                let check: fn(&Self) -> Result<()> = $validate;
                check(self).map_err(|_| inconsistent(concat!(stringify!($t), " settings")))
            }
        }
    };
}

impl<F: Real> EpsilonGreedy<F> {
    fn after_learn(&mut self) {}
}
impl<F: Real> LinUcb<F> {
    fn after_learn(&mut self) {}
}
impl<F: Real> SquareCb<F> {
    fn after_learn(&mut self) {
        self.steps += 1;
    }
}

ridge_learner!(EpsilonGreedy, |l| {
    ensure(l.epsilon >= F::zero() && l.epsilon <= F::one(), "epsilon")
});
ridge_learner!(LinUcb, |l| check_param("alpha", l.alpha, false));
ridge_learner!(SquareCb, |l| {
    check_param("gamma0", l.gamma0, true)?;
    check_param("exponent", l.exponent, false)
});

impl<F: Real> Learner<F> for LinTs<F> {
    fn num_actions(&self) -> usize {
        self.model.num_actions()
    }
    fn context_dim(&self) -> usize {
        self.model.context_dim()
    }
    fn act<R: Rng + ?Sized>(&mut self, x: &[F], rng: &mut R) -> Result<Decision<F>> {
        self.distribution(x)?;
        // The action from the exact posterior, with the caller's RNG.
        gaussian_scores(&self.mean, &self.sd, rng, &mut self.state.scores);
        let action = first_argmax(&self.state.scores);
        std::mem::swap(&mut self.state.probs, &mut self.state.next);
        self.state.acted = true;
        Ok(Decision {
            action,
            propensity: self.state.probs[action],
        })
    }
    fn probabilities(&self) -> Option<&[F]> {
        self.state.probabilities()
    }
    fn policy_into(&mut self, x: &[F], out: &mut [F]) -> Result<()> {
        check_len("out", out.len(), self.model.num_actions())?;
        self.distribution(x)?;
        out.copy_from_slice(&self.state.next);
        Ok(())
    }
    fn learn(&mut self, x: &[F], action: usize, reward: F, propensity: F) -> Result<()> {
        check_interaction(action, self.model.num_actions(), reward, propensity)?;
        check_context(x, self.model.context_dim())?;
        self.model.update_unchecked(x, action, reward)?;
        self.steps += 1;
        Ok(())
    }
    fn validate(&self) -> Result<()> {
        self.model.validate()?;
        self.state.validate(self.model.num_actions())?;
        check_param("scale", self.scale, true)
            .and_then(|_| check_draws(self.draws))
            .map_err(|_| inconsistent("LinTs settings"))
    }
}

impl<F: Real> Learner<F> for BetaThompson<F> {
    fn num_actions(&self) -> usize {
        self.successes.len()
    }
    fn context_dim(&self) -> usize {
        1
    }
    fn act<R: Rng + ?Sized>(&mut self, x: &[F], rng: &mut R) -> Result<Decision<F>> {
        self.distribution(x)?;
        beta_scores(&self.beta, rng, &mut self.state.scores);
        let action = first_argmax(&self.state.scores);
        std::mem::swap(&mut self.state.probs, &mut self.state.next);
        self.state.acted = true;
        Ok(Decision {
            action,
            propensity: self.state.probs[action],
        })
    }
    fn probabilities(&self) -> Option<&[F]> {
        self.state.probabilities()
    }
    fn policy_into(&mut self, x: &[F], out: &mut [F]) -> Result<()> {
        check_len("out", out.len(), self.successes.len())?;
        self.distribution(x)?;
        out.copy_from_slice(&self.state.next);
        Ok(())
    }
    fn learn(&mut self, x: &[F], action: usize, reward: F, propensity: F) -> Result<()> {
        check_interaction(action, self.successes.len(), reward, propensity)?;
        check_context(x, 1)?;
        if !(reward >= F::zero() && reward <= F::one()) {
            return Err(Error::InvalidParameter {
                name: "reward",
                value: reward.f64(),
                expected: "in [0, 1] (Bernoulli Thompson sampling)",
            });
        }
        let (s, f) = (
            self.successes[action] + reward,
            self.failures[action] + (F::one() - reward),
        );
        if !(s.is_finite() && f.is_finite()) {
            return Err(Error::NonFiniteUpdate);
        }
        self.successes[action] = s;
        self.failures[action] = f;
        self.steps += 1;
        Ok(())
    }
    fn validate(&self) -> Result<()> {
        let k = self.successes.len();
        ensure(
            k > 0 && crate::limits::actions(k).is_ok() && self.failures.len() == k,
            "posterior lengths",
        )?;
        self.state.validate(k)?;
        ensure(
            self.successes
                .iter()
                .chain(&self.failures)
                .all(|v| v.is_finite() && *v >= F::zero()),
            "posterior counts",
        )?;
        check_param("alpha0", self.alpha0, true)
            .and_then(|_| check_param("beta0", self.beta0, true))
            .and_then(|_| check_draws(self.draws))
            .map_err(|_| inconsistent("BetaThompson settings"))
    }
}

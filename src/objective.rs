//! The refit objective (DESIGN §4), kept apart from the solvers:
//!
//! J(θ) = Σ_s w(r_s) · log π_θ(a_s | x_s) − (λ/2)‖θ‖²_F
//!
//! for a linear softmax policy θ ∈ R^{K×d}. With w ≥ 0 and λ > 0 it is
//! strictly concave: multinomial logistic regression with sample weights
//! and an L2 penalty. [`Dataset`] holds the logged points, compressed;
//! [`LogLikelihood`] evaluates J, its gradient, and products with its
//! Hessian; [`Objective`] is what a solver asks of any objective.

use std::collections::HashMap;

use crate::error::{Error, Result};
use crate::policy::kernels::padded;
use crate::policy::{check_action, check_context};
use crate::real::Real;

/// How a reward becomes a sample weight w(r) in the refit objective.
#[derive(Debug, Clone, Copy, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum Weighting<F> {
    /// w = r. A negative reward is an error ([`Error::NegativeWeight`]).
    Identity,
    /// w = r − c, for a known lower bound c of the rewards; a reward below c
    /// is an error ([`Error::NegativeWeight`]).
    Shift(F),
    /// w = exp(β r), positive for every reward.
    Exp(F),
}

impl<F: Real> Weighting<F> {
    /// Checks the transform's own parameter.
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] for a non-finite shift or β.
    pub fn check(&self) -> Result<()> {
        let (name, v) = match *self {
            Weighting::Identity => return Ok(()),
            Weighting::Shift(c) => ("shift", c),
            Weighting::Exp(b) => ("beta", b),
        };
        if v.is_finite() {
            Ok(())
        } else {
            Err(Error::InvalidParameter {
                name,
                value: v.f64(),
                expected: "finite",
            })
        }
    }

    /// w(r) for the point at `index` of a history.
    ///
    /// # Errors
    /// [`Error::NonFiniteReward`], [`Error::NegativeWeight`], and
    /// [`Error::InvalidParameter`] if exp(βr) overflows.
    pub fn weight(&self, reward: F, index: usize) -> Result<F> {
        if !reward.is_finite() {
            return Err(Error::NonFiniteReward {
                value: reward.f64(),
            });
        }
        let w = match *self {
            Weighting::Identity => reward,
            Weighting::Shift(c) => reward - c,
            Weighting::Exp(b) => (b * reward).exp(),
        };
        if !w.is_finite() {
            return Err(Error::InvalidParameter {
                name: "weight",
                value: w.f64(),
                expected: "a finite weight: exp(beta * reward) overflows",
            });
        }
        if w < F::zero() {
            return Err(Error::NegativeWeight {
                index,
                reward: reward.f64(),
                weight: w.f64(),
            });
        }
        Ok(w)
    }
}

/// Logged (context, action, weight) points in the form the objective uses:
/// one row per distinct context (or per point, uncompressed), holding the
/// summed weight of each action.
///
/// Compression is exact: Σ_s w_s log π(a_s|x_s) only depends on the sums
/// of the weights of identical (x, a) pairs, and grouping the pairs of one
/// context costs one softmax per distinct context. A bandit with finitely
/// many contexts is then refit in O(#distinct contexts), not O(t).
#[derive(Debug, Clone)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Dataset<F> {
    k: usize,
    kp: usize,
    d: usize,
    /// Contexts, rows × d.
    xs: Vec<F>,
    /// Action weights, rows × kp (padding 0).
    ws: Vec<F>,
    /// Row totals Σ_a W_ia.
    cs: Vec<F>,
    /// Σ_s |w_s| over all points.
    total_weight: F,
    points: usize,
    /// Context bits → row, when compressing.
    #[cfg_attr(feature = "serde", serde(with = "index_serde"))]
    index: Option<HashMap<Box<[u64]>, usize>>,
    /// Scratch for the key of the context being pushed.
    key: Vec<u64>,
    /// The row the last push went to.
    last_row: Option<usize>,
}

/// The context index as a list of (key, row), sorted by row (JSON maps
/// need string keys).
#[cfg(feature = "serde")]
mod index_serde {
    use std::collections::HashMap;

    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    type Index = Option<HashMap<Box<[u64]>, usize>>;

    pub(super) fn serialize<S: Serializer>(index: &Index, s: S) -> Result<S::Ok, S::Error> {
        let list: Option<Vec<(&[u64], usize)>> = index.as_ref().map(|m| {
            let mut v: Vec<(&[u64], usize)> = m.iter().map(|(k, r)| (&k[..], *r)).collect();
            v.sort_by_key(|e| e.1);
            v
        });
        list.serialize(s)
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Index, D::Error> {
        let list: Option<Vec<(Vec<u64>, usize)>> = Option::deserialize(d)?;
        Ok(list.map(|v| {
            v.into_iter()
                .map(|(k, r)| (k.into_boxed_slice(), r))
                .collect()
        }))
    }
}

impl<F: Real> Dataset<F> {
    /// An empty dataset for K actions and d-dimensional contexts; with
    /// `compress`, identical contexts share a row.
    ///
    /// # Errors
    /// [`Error::ZeroActions`], [`Error::ZeroContextDim`].
    pub fn new(k: usize, d: usize, compress: bool) -> Result<Self> {
        if k == 0 {
            return Err(Error::ZeroActions);
        }
        if d == 0 {
            return Err(Error::ZeroContextDim);
        }
        Ok(Self {
            k,
            kp: padded(k),
            d,
            xs: Vec::new(),
            ws: Vec::new(),
            cs: Vec::new(),
            total_weight: F::zero(),
            points: 0,
            index: compress.then(HashMap::new),
            key: Vec::with_capacity(d),
            last_row: None,
        })
    }

    /// Builds a dataset from a matrix of contexts (one row per point),
    /// actions and weights.
    ///
    /// # Errors
    /// As [`Dataset::push`], and [`Error::Length`] if the lengths disagree.
    pub fn from_points(
        contexts: ndarray::ArrayView2<'_, F>,
        actions: &[usize],
        weights: &[F],
        k: usize,
        compress: bool,
    ) -> Result<Self> {
        let (n, d) = contexts.dim();
        crate::policy::check_len("actions", actions.len(), n)?;
        crate::policy::check_len("weights", weights.len(), n)?;
        let mut data = Self::new(k, d, compress)?;
        let mut x = vec![F::zero(); d];
        for (i, row) in contexts.rows().into_iter().enumerate() {
            for (xj, v) in x.iter_mut().zip(row.iter()) {
                *xj = *v;
            }
            data.push(&x, actions[i], weights[i]).map_err(|e| match e {
                Error::NegativeWeight { weight, reward, .. } => Error::NegativeWeight {
                    index: i,
                    weight,
                    reward,
                },
                other => other,
            })?;
        }
        Ok(data)
    }

    /// Adds one point. A failed call changes nothing.
    ///
    /// # Errors
    /// [`Error::ContextLength`], [`Error::NonFiniteContext`],
    /// [`Error::ActionOutOfRange`], [`Error::NegativeWeight`] for w < 0 and
    /// [`Error::InvalidParameter`] for a non-finite weight.
    pub fn push(&mut self, x: &[F], action: usize, weight: F) -> Result<()> {
        self.check_point(x, action, weight)?;
        self.push_unchecked(x, action, weight);
        Ok(())
    }

    /// The checks of [`Dataset::push`].
    fn check_point(&self, x: &[F], action: usize, weight: F) -> Result<()> {
        check_context(x, self.d)?;
        check_action(action, self.k)?;
        if !weight.is_finite() {
            return Err(Error::InvalidParameter {
                name: "weight",
                value: weight.f64(),
                expected: "finite",
            });
        }
        if weight < F::zero() {
            return Err(Error::NegativeWeight {
                index: self.points,
                reward: weight.f64(),
                weight: weight.f64(),
            });
        }
        Ok(())
    }

    /// [`Dataset::push`] for a point its caller has already checked as
    /// `check_point` does (a learner, which checks before it changes anything).
    pub(crate) fn push_unchecked(&mut self, x: &[F], action: usize, weight: F) {
        // The last row touched is checked first: repeated contexts (a
        // tabular learner's, say) skip the hash.
        let last = self.last_row.filter(|&r| {
            self.index.is_some()
                && x.iter()
                    .zip(&self.xs[r * self.d..(r + 1) * self.d])
                    .all(|(a, b)| key_bits(*a) == key_bits(*b))
        });
        let existing = match last {
            Some(r) => Some(r),
            None => {
                self.key.clear();
                self.key.extend(x.iter().map(|v| key_bits(*v)));
                self.index
                    .as_ref()
                    .and_then(|index| index.get(&self.key[..]).copied())
            }
        };
        let row = match existing {
            Some(row) => row,
            None => {
                let row = self.cs.len();
                self.xs.extend_from_slice(x);
                self.ws.extend(std::iter::repeat_n(F::zero(), self.kp));
                self.cs.push(F::zero());
                if let Some(index) = &mut self.index {
                    index.insert(self.key.as_slice().into(), row);
                }
                row
            }
        };
        self.last_row = Some(row);
        self.ws[row * self.kp + action] += weight;
        self.cs[row] += weight;
        self.total_weight += weight;
        self.points += 1;
    }

    /// Number of actions K.
    pub fn num_actions(&self) -> usize {
        self.k
    }

    /// Context dimension d.
    pub fn context_dim(&self) -> usize {
        self.d
    }

    /// Number of points pushed.
    pub fn points(&self) -> usize {
        self.points
    }

    /// Number of rows the objective iterates over (distinct contexts when compressed).
    pub fn rows(&self) -> usize {
        self.cs.len()
    }

    /// Σ_s |w_s|.
    pub fn total_weight(&self) -> F {
        self.total_weight
    }

    /// Whether every context is the same (the tabular case), or there are no points.
    pub fn is_tabular(&self) -> bool {
        let mut rows = self.xs.chunks_exact(self.d);
        match rows.next() {
            None => true,
            Some(first) => rows.all(|r| r == first),
        }
    }

    /// R_a = Σ_{s: a_s = a} w_s, the summed weight of each action.
    pub fn action_weights(&self) -> Vec<F> {
        let mut r = vec![F::zero(); self.k];
        for w in self.ws.chunks_exact(self.kp) {
            for (ra, &wa) in r.iter_mut().zip(w) {
                *ra += wa;
            }
        }
        r
    }

    pub(crate) fn row_context(&self, row: usize) -> &[F] {
        &self.xs[row * self.d..(row + 1) * self.d]
    }
}

/// Bits of a context entry, with −0 read as +0 (they give the same logits).
fn key_bits<F: Real>(v: F) -> u64 {
    let v = v.f64();
    if v == 0.0 { 0 } else { v.to_bits() }
}

/// Rows per block of a pass over the data (see [`LogLikelihood`]).
pub(crate) const CHUNK_ROWS: usize = 512;

/// Maps the blocks of a pass, in parallel with feature `parallel`; the
/// results come back in block order either way.
fn blocks_map<'a, F, T, G>(blocks: Vec<Option<&'a mut [F]>>, f: G) -> Vec<T>
where
    F: Real,
    T: Send,
    G: Fn((usize, Option<&'a mut [F]>)) -> T + Sync + Send,
{
    #[cfg(feature = "parallel")]
    {
        use rayon::prelude::*;
        blocks.into_par_iter().enumerate().map(f).collect()
    }
    #[cfg(not(feature = "parallel"))]
    {
        blocks.into_iter().enumerate().map(f).collect()
    }
}

/// What a solver asks of an objective to maximize: its value and gradient,
/// and products with its negated Hessian (positive definite for a strictly
/// concave objective). Parameters are a flat vector of [`Objective::dim`]
/// entries, in the objective's own documented layout.
pub trait Objective<F: Real> {
    /// Number of parameters.
    fn dim(&self) -> usize;

    /// J(θ), writing ∇J(θ) into `grad`, and remembering θ for the Hessian calls.
    ///
    /// # Errors
    /// [`Error::Length`] for wrong lengths, [`Error::NonFiniteLogits`] if θ
    /// overflows the logits.
    fn value_grad(&mut self, theta: &[F], grad: &mut [F]) -> Result<F>;

    /// `out = −∇²J · v` at the θ of the last [`Objective::value_grad`]
    /// (θ = 0 before the first).
    ///
    /// # Errors
    /// [`Error::Length`] for wrong lengths, [`Error::NonFiniteLogits`] if θ
    /// overflows the logits.
    fn neg_hess_vec(&mut self, v: &[F], out: &mut [F]) -> Result<()>;

    /// The dense negated Hessian −∇²J at the θ of the last
    /// [`Objective::value_grad`] (θ = 0 before the first), lower triangle of a row-major dim×dim
    /// matrix, written to `out`; `Ok(false)` if the objective cannot form it.
    ///
    /// # Errors
    /// [`Error::Length`] for wrong lengths.
    fn neg_hessian(&mut self, out: &mut [F]) -> Result<bool>;

    /// The scale s of the convergence test ‖∇J‖∞ ≤ tol · s.
    fn gradient_scale(&self) -> F;
}

/// The weighted log-likelihood objective of DESIGN §4 over a [`Dataset`]:
/// J(θ) = Σ_s w_s log π_θ(a_s | x_s) − (λ/2)‖θ‖²,
/// with parameters θ flattened row-major K×d (entry a·d + j), the layout of
/// [`crate::policy::Policy::score_into`]. The convergence scale is 1 + Σ_s |w_s|.
#[derive(Debug, Clone)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(
    feature = "serde",
    serde(bound = "F: crate::real::Real + serde::Serialize + serde::de::DeserializeOwned")
)]
pub struct LogLikelihood<F> {
    data: Dataset<F>,
    lambda: F,
    #[cfg_attr(feature = "serde", serde(with = "crate::serde_util::bias"))]
    bias: Vec<F>,
    /// θ of the last value_grad, padded feature-major.
    theta_t: Vec<F>,
    grad_t: Vec<F>,
    /// π per row at theta_t, rows × kp, when `probs_valid`.
    probs: Vec<F>,
    probs_valid: bool,
    z: Vec<F>,
    r: Vec<F>,
    v_t: Vec<F>,
}

impl<F: Real> LogLikelihood<F> {
    /// The objective over `data` with L2 penalty λ.
    ///
    /// # Errors
    /// [`Error::InvalidLambda`] for λ < 0 or non-finite. (λ = 0 is accepted
    /// here; the solvers need λ > 0 unless the closed form applies.)
    pub fn new(data: Dataset<F>, lambda: F) -> Result<Self> {
        if !(lambda.is_finite() && lambda >= F::zero()) {
            return Err(Error::InvalidLambda {
                value: lambda.f64(),
            });
        }
        let kp = data.kp;
        let n = kp * data.d;
        let k = data.k;
        let mut bias = crate::error::try_filled(kp, F::zero(), "k")?;
        for b in &mut bias[k..] {
            *b = F::neg_infinity();
        }
        Ok(Self {
            data,
            lambda,
            bias,
            theta_t: crate::error::try_filled(n, F::zero(), "k * d")?,
            grad_t: crate::error::try_filled(n, F::zero(), "k * d")?,
            probs: Vec::new(),
            probs_valid: false,
            z: crate::error::try_filled(kp, F::zero(), "k")?,
            r: crate::error::try_filled(kp, F::zero(), "k")?,
            v_t: crate::error::try_filled(n, F::zero(), "k * d")?,
        })
    }

    /// The data.
    pub fn data(&self) -> &Dataset<F> {
        &self.data
    }

    /// λ.
    pub fn lambda(&self) -> F {
        self.lambda
    }

    /// Adds a point (see [`Dataset::push`]); the Hessian cache is dropped.
    ///
    /// # Errors
    /// As [`Dataset::push`].
    pub fn push(&mut self, x: &[F], action: usize, weight: F) -> Result<()> {
        self.data.push(x, action, weight)?;
        self.probs_valid = false;
        Ok(())
    }

    /// [`LogLikelihood::push`] for a point already checked.
    pub(crate) fn push_unchecked(&mut self, x: &[F], action: usize, weight: F) {
        self.data.push_unchecked(x, action, weight);
        self.probs_valid = false;
    }

    fn check_dim(&self, name: &'static str, len: usize) -> Result<()> {
        crate::policy::check_len(name, len, self.data.k * self.data.d)
    }

    /// Row-major K×d → padded feature-major.
    pub(crate) fn to_padded(&self, flat: &[F], out_t: &mut [F]) {
        let (k, d, kp) = (self.data.k, self.data.d, self.data.kp);
        for a in 0..k {
            for j in 0..d {
                out_t[j * kp + a] = flat[a * d + j];
            }
        }
    }

    /// Padded feature-major → row-major K×d.
    pub(crate) fn to_flat(&self, t: &[F], flat: &mut [F]) {
        let (k, d, kp) = (self.data.k, self.data.d, self.data.kp);
        for a in 0..k {
            for j in 0..d {
                flat[a * d + j] = t[j * kp + a];
            }
        }
    }

    /// J and ∇J (padded layout) at `theta_t`, optionally storing π per row.
    ///
    /// Rows are summed in blocks of [`CHUNK_ROWS`], whose partial sums are
    /// added in block order: the result is the same bit for bit whether the
    /// blocks run on one thread or, with feature `parallel`, on several.
    pub(crate) fn value_grad_t(
        &mut self,
        theta_t: &[F],
        grad_t: &mut [F],
        keep_probs: bool,
    ) -> Result<F> {
        let kp = self.data.kp;
        let d = self.data.d;
        let rows = self.data.rows();
        for g in grad_t.iter_mut() {
            *g = F::zero();
        }
        if keep_probs {
            self.probs.resize(rows * kp, F::zero());
        }
        let data = &self.data;
        let bias = &self.bias[..];
        let mut probs_chunks: Vec<Option<&mut [F]>> = if keep_probs {
            self.probs.chunks_mut(CHUNK_ROWS * kp).map(Some).collect()
        } else {
            (0..rows.div_ceil(CHUNK_ROWS)).map(|_| None).collect()
        };
        let data_term = if rows <= CHUNK_ROWS {
            // One block: accumulate straight into grad_t (0 + x = x, so
            // this equals the blocked sum).
            let probs = probs_chunks.pop().flatten();
            crate::simd::loglik_pass(
                theta_t,
                bias,
                &data.xs,
                &data.ws,
                &data.cs,
                grad_t,
                probs,
                &mut self.z,
                &mut self.r,
            )
            .ok_or(Error::NonFiniteLogits)?
        } else {
            let block = |(c, probs): (usize, Option<&mut [F]>)| -> Option<(F, Vec<F>)> {
                let lo = c * CHUNK_ROWS;
                let hi = (lo + CHUNK_ROWS).min(rows);
                let mut g = vec![F::zero(); kp * d];
                let mut z = vec![F::zero(); kp];
                let mut r = vec![F::zero(); kp];
                let v = crate::simd::loglik_pass(
                    theta_t,
                    bias,
                    &data.xs[lo * d..hi * d],
                    &data.ws[lo * kp..hi * kp],
                    &data.cs[lo..hi],
                    &mut g,
                    probs,
                    &mut z,
                    &mut r,
                )?;
                Some((v, g))
            };
            let partials: Vec<Option<(F, Vec<F>)>> = blocks_map(probs_chunks, block);
            let mut total = F::zero();
            for p in partials {
                let (v, g) = p.ok_or(Error::NonFiniteLogits)?;
                total += v;
                for (a, b) in grad_t.iter_mut().zip(&g) {
                    *a += *b;
                }
            }
            total
        };
        let mut sq = F::zero();
        for (g, &t) in grad_t.iter_mut().zip(theta_t) {
            *g -= self.lambda * t;
            sq += t * t;
        }
        self.probs_valid = keep_probs;
        Ok(data_term - self.lambda * F::c(0.5) * sq)
    }

    /// Stores π per row at the remembered θ (`theta_t`).
    fn store_probs(&mut self) -> Result<()> {
        let kp = self.data.kp;
        let mut probs = std::mem::take(&mut self.probs);
        probs.resize(self.data.rows() * kp, F::zero());
        for (row, p) in probs.chunks_exact_mut(kp).enumerate() {
            if let Err(e) = self.probs_at(&self.theta_t, self.data.row_context(row), p) {
                self.probs = probs;
                return Err(e);
            }
        }
        self.probs = probs;
        self.probs_valid = true;
        Ok(())
    }

    /// −∇²J v (padded layout) at the θ whose π were stored.
    pub(crate) fn neg_hess_vec_t(&mut self, v_t: &[F], out_t: &mut [F]) {
        for (o, &v) in out_t.iter_mut().zip(v_t) {
            *o = self.lambda * v;
        }
        crate::simd::neg_hess_vec_pass(
            v_t,
            &self.data.xs,
            &self.data.cs,
            &self.probs,
            out_t,
            &mut self.z,
        );
    }

    /// Adds `c · S(π) ⊗ x xᵀ` (S = diag π − π πᵀ) to the lower triangle of
    /// the dense negated Hessian `h` (row-major K·d square, index a·d + j).
    pub(crate) fn add_point_hessian(&self, x: &[F], probs: &[F], c: F, h: &mut [F]) {
        let (k, d) = (self.data.k, self.data.d);
        let n = k * d;
        for a in 0..k {
            let pa = probs[a];
            for b in 0..=a {
                let s = if a == b {
                    pa - pa * pa
                } else {
                    -(pa * probs[b])
                } * c;
                if s == F::zero() {
                    continue;
                }
                for j in 0..d {
                    let sx = s * x[j];
                    let row = &mut h[(a * d + j) * n + b * d..(a * d + j) * n + b * d + d];
                    for (hv, &xl) in row.iter_mut().zip(x) {
                        *hv += sx * xl;
                    }
                }
            }
        }
    }

    /// The dense negated Hessian at padded parameters `theta_t` (lower
    /// triangle, row-major K·d square), probabilities computed afresh.
    pub(crate) fn neg_hessian_at(&mut self, theta_t: &[F], out: &mut [F]) -> Result<()> {
        let n = self.data.k * self.data.d;
        crate::policy::check_len("out", out.len(), n * n)?;
        for v in out.iter_mut() {
            *v = F::zero();
        }
        let mut p = std::mem::take(&mut self.z);
        for row in 0..self.data.rows() {
            let c = self.data.cs[row];
            if c == F::zero() {
                continue;
            }
            let x = self.data.row_context(row);
            if let Err(e) = self.probs_at(theta_t, x, &mut p) {
                self.z = p;
                return Err(e);
            }
            self.add_point_hessian(x, &p, c, out);
        }
        self.z = p;
        for i in 0..n {
            out[i * n + i] += self.lambda;
        }
        Ok(())
    }

    /// Writes π(·|x) (padded) at padded parameters `theta_t` into `out`.
    pub(crate) fn probs_at(&self, theta_t: &[F], x: &[F], out: &mut [F]) -> Result<()> {
        crate::simd::logits_softmax_t(theta_t, &self.bias, x, out)
            .ok_or(Error::NonFiniteLogits)
            .map(|_| ())
    }

    /// Writes π(·|x) (padded) into `out` and returns log π(a|x), computed
    /// from the logits (exact even where π(a|x) underflows).
    pub(crate) fn point_at(
        &self,
        theta_t: &[F],
        x: &[F],
        action: usize,
        out: &mut [F],
    ) -> Result<F> {
        crate::simd::logits_t(theta_t, x, out);
        let za = out[action];
        let norm = crate::simd::softmax_padded(out, &self.bias).ok_or(Error::NonFiniteLogits)?;
        Ok(za - norm.log_partition())
    }
}

impl<F: Real> Objective<F> for LogLikelihood<F> {
    fn dim(&self) -> usize {
        self.data.k * self.data.d
    }

    fn value_grad(&mut self, theta: &[F], grad: &mut [F]) -> Result<F> {
        self.check_dim("theta", theta.len())?;
        self.check_dim("grad", grad.len())?;
        let mut theta_t = std::mem::take(&mut self.theta_t);
        let mut grad_t = std::mem::take(&mut self.grad_t);
        self.to_padded(theta, &mut theta_t);
        let result = self.value_grad_t(&theta_t, &mut grad_t, true);
        if result.is_ok() {
            self.to_flat(&grad_t, grad);
        }
        self.theta_t = theta_t;
        self.grad_t = grad_t;
        result
    }

    fn neg_hess_vec(&mut self, v: &[F], out: &mut [F]) -> Result<()> {
        self.check_dim("v", v.len())?;
        self.check_dim("out", out.len())?;
        if !self.probs_valid {
            // Points were pushed, or the last pass did not keep π: form π
            // per row at the remembered θ, as neg_hessian does.
            self.store_probs()?;
        }
        let mut v_t = std::mem::take(&mut self.v_t);
        let mut out_t = std::mem::take(&mut self.grad_t);
        self.to_padded(v, &mut v_t);
        self.neg_hess_vec_t(&v_t, &mut out_t);
        self.to_flat(&out_t, out);
        self.v_t = v_t;
        self.grad_t = out_t;
        Ok(())
    }

    fn neg_hessian(&mut self, out: &mut [F]) -> Result<bool> {
        let theta_t = std::mem::take(&mut self.theta_t);
        let result = self.neg_hessian_at(&theta_t, out);
        self.theta_t = theta_t;
        result.map(|()| true)
    }

    fn gradient_scale(&self) -> F {
        F::one() + self.data.total_weight
    }
}

impl<F: Real> Dataset<F> {
    /// Checks the lengths and indices that the passes rely on.
    pub(crate) fn validate(&self) -> Result<()> {
        use crate::error::ensure;
        let rows = self.cs.len();
        ensure(
            self.k >= 1 && self.d >= 1 && self.kp == padded(self.k),
            "dataset shape",
        )?;
        ensure(
            self.xs.len() == rows * self.d && self.ws.len() == rows * self.kp,
            "dataset lengths",
        )?;
        ensure(
            self.xs
                .iter()
                .chain(&self.ws)
                .chain(&self.cs)
                .all(|v| v.is_finite())
                && self.ws.iter().all(|w| *w >= F::zero()),
            "dataset values",
        )?;
        ensure(
            self.ws
                .chunks_exact(self.kp)
                .all(|w| w[self.k..].iter().all(|v| *v == F::zero())),
            "dataset padding",
        )?;
        ensure(self.last_row.is_none_or(|r| r < rows), "dataset last row")?;
        if let Some(index) = &self.index {
            ensure(
                index.len() == rows
                    && index.iter().all(|(key, &r)| {
                        r < rows
                            && key.len() == self.d
                            && key
                                .iter()
                                .zip(&self.xs[r * self.d..(r + 1) * self.d])
                                .all(|(k, x)| *k == key_bits(*x))
                    }),
                "dataset index",
            )?;
        }
        Ok(())
    }
}

impl<F: Real> LogLikelihood<F> {
    /// Checks the data and the buffer lengths.
    pub(crate) fn validate(&self) -> Result<()> {
        use crate::error::ensure;
        self.data.validate()?;
        ensure(
            self.lambda.is_finite() && self.lambda >= F::zero(),
            "lambda",
        )?;
        let (kp, d) = (self.data.kp, self.data.d);
        ensure(
            self.bias.len() == kp
                && self.theta_t.len() == kp * d
                && self.grad_t.len() == kp * d
                && self.v_t.len() == kp * d
                && self.z.len() == kp
                && self.r.len() == kp
                && (!self.probs_valid || self.probs.len() == self.data.rows() * kp),
            "objective buffer lengths",
        )
    }
}

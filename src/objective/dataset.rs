//! Logged points in the form the objectives use: compressed rows.

use std::collections::HashMap;

use crate::error::{Error, Result};
use crate::kernels::padded;
use crate::policy::{Rows, check_action, check_context, check_len};
use crate::real::Real;

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
    /// Whether negative weights are allowed ([`Dataset::signed`]).
    #[cfg_attr(feature = "serde", serde(default))]
    signed: bool,
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
    /// [`Error::ZeroActions`], [`Error::ZeroContextDim`], and
    /// [`Error::TooLarge`] for K or d over its limit ([`crate::limits`]).
    pub fn new(k: usize, d: usize, compress: bool) -> Result<Self> {
        if k == 0 {
            return Err(Error::ZeroActions);
        }
        if d == 0 {
            return Err(Error::ZeroContextDim);
        }
        crate::limits::actions(k)?;
        crate::limits::context_dim(d)?;
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
            signed: false,
        })
    }

    /// This dataset with negative weights allowed from now on (the signed
    /// surrogate, [`crate::objective::Weighting::Signed`]). A row whose
    /// total weight is negative makes the log-likelihood non-concave.
    #[must_use]
    pub fn signed(mut self) -> Self {
        self.signed = true;
        self
    }

    /// Whether negative weights are allowed.
    pub fn allows_negative(&self) -> bool {
        self.signed
    }

    /// Whether some row's total weight Σ_a W_ia is negative (then the
    /// log-likelihood is not concave).
    pub fn has_negative_row(&self) -> bool {
        self.cs.iter().any(|c| *c < F::zero())
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
        check_len("actions", actions.len(), n)?;
        check_len("weights", weights.len(), n)?;
        let mut data = Self::new(k, d, compress)?;
        let mut x = vec![F::zero(); d];
        for (i, row) in contexts.rows().into_iter().enumerate() {
            for (xj, v) in x.iter_mut().zip(row.iter()) {
                *xj = *v;
            }
            data.push(&x, actions[i], weights[i]).map_err(|e| match e {
                Error::NegativeSampleWeight { weight, .. } => {
                    Error::NegativeSampleWeight { index: i, weight }
                }
                other => other,
            })?;
        }
        Ok(data)
    }

    /// Adds one point. A failed call changes nothing.
    ///
    /// # Errors
    /// [`Error::ContextLength`], [`Error::NonFiniteContext`],
    /// [`Error::ActionOutOfRange`], [`Error::NegativeSampleWeight`] for w < 0 (unless [`Dataset::signed`]) and
    /// [`Error::InvalidParameter`] for a non-finite weight.
    pub fn push(&mut self, x: &[F], action: usize, weight: F) -> Result<()> {
        self.check_point(x, action, weight)?;
        self.reserve_point()?;
        self.push_unchecked(x, action, weight);
        Ok(())
    }

    /// Makes room for one more row (a new context), or
    /// [`Error::Allocation`]; nothing observable changes either way.
    pub(crate) fn reserve_point(&mut self) -> Result<()> {
        let fail = |bytes: usize| {
            move |_| Error::Allocation {
                quantity: "a dataset row",
                bytes: bytes as u128,
            }
        };
        let size = std::mem::size_of::<F>();
        self.xs.try_reserve(self.d).map_err(fail(self.d * size))?;
        self.ws.try_reserve(self.kp).map_err(fail(self.kp * size))?;
        self.cs.try_reserve(1).map_err(fail(size))?;
        if let Some(index) = &mut self.index {
            index.try_reserve(1).map_err(fail(self.d * 8))?;
        }
        Ok(())
    }

    /// The checks of [`Dataset::push`].
    pub(crate) fn check_point(&self, x: &[F], action: usize, weight: F) -> Result<()> {
        check_context(x, self.d)?;
        check_action(action, self.k)?;
        if !weight.is_finite() {
            return Err(Error::InvalidParameter {
                name: "weight",
                value: weight.f64(),
                expected: "finite",
            });
        }
        if weight < F::zero() && !self.signed {
            return Err(Error::NegativeSampleWeight {
                index: self.points,
                weight: weight.f64(),
            });
        }
        // Every row's weights and totals are bounded by Σ|w|: if it stays
        // finite, so do they.
        if !(self.total_weight + weight.abs()).is_finite() {
            return Err(Error::InvalidParameter {
                name: "weight",
                value: weight.f64(),
                expected: "small enough that the total weight Σ|w| stays finite",
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
        self.total_weight += weight.abs();
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

    /// Row `i`'s weights per action (its padded stride) and their total.
    /// Panics if `i` is not a row (callers check [`Dataset::rows`]).
    pub(crate) fn row_weights(&self, i: usize) -> (&[F], F) {
        (&self.ws[i * self.kp..(i + 1) * self.kp], self.cs[i])
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

    /// All rows, for a pass.
    pub fn as_rows(&self) -> Rows<'_, F> {
        Rows {
            xs: &self.xs,
            ws: &self.ws,
            cs: &self.cs,
            stride: self.kp,
        }
    }

    /// Rows `lo..hi`.
    pub(crate) fn rows_range(&self, lo: usize, hi: usize) -> Rows<'_, F> {
        Rows {
            xs: &self.xs[lo * self.d..hi * self.d],
            ws: &self.ws[lo * self.kp..hi * self.kp],
            cs: &self.cs[lo..hi],
            stride: self.kp,
        }
    }

    /// Length of a row of action weights (K rounded up to a multiple of 4).
    pub(crate) fn stride(&self) -> usize {
        self.kp
    }

    /// Whether every stored context is all ones.
    pub(crate) fn unit_contexts(&self) -> bool {
        self.xs.iter().all(|v| *v == F::one())
    }

    /// The same points with every context replaced by all ones (for a
    /// policy that ignores the context): all rows merge into one.
    pub(crate) fn with_unit_contexts(&self) -> Result<Self> {
        let mut out = Self::new(self.k, self.d, self.index.is_some())?;
        if self.cs.is_empty() {
            return Ok(out);
        }
        let ones = vec![F::one(); self.d];
        out.push_unchecked(&ones, 0, F::zero());
        out.points = self.points;
        let row = out.last_row.unwrap_or(0);
        for w in self.ws.chunks_exact(self.kp) {
            for (o, &v) in out.ws[row * self.kp..(row + 1) * self.kp].iter_mut().zip(w) {
                *o += v;
            }
        }
        out.cs[row] = self.cs.iter().copied().sum();
        out.total_weight = self.total_weight;
        out.signed = self.signed;
        Ok(out)
    }
}

/// Bits of a context entry, with −0 read as +0 (they give the same logits).
pub(super) fn key_bits<F: Real>(v: F) -> u64 {
    let v = v.f64();
    if v == 0.0 { 0 } else { v.to_bits() }
}

impl<F: Real> Dataset<F> {
    /// Checks the lengths and indices that the passes rely on.
    pub(crate) fn validate(&self) -> Result<()> {
        use crate::error::ensure;
        let rows = self.cs.len();
        ensure(
            self.k >= 1
                && self.d >= 1
                && crate::limits::actions(self.k).is_ok()
                && crate::limits::context_dim(self.d).is_ok()
                && self.kp == padded(self.k),
            "dataset shape",
        )?;
        ensure(
            rows.checked_mul(self.d) == Some(self.xs.len())
                && rows.checked_mul(self.kp) == Some(self.ws.len()),
            "dataset lengths",
        )?;
        ensure(
            self.xs
                .iter()
                .chain(&self.ws)
                .chain(&self.cs)
                .all(|v| v.is_finite())
                && (self.signed || self.ws.iter().all(|w| *w >= F::zero())),
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

/// Rows per block of a pass over the data (see [`super::LogLikelihood`]).
pub(crate) const CHUNK_ROWS: usize = 512;

/// Maps the blocks of a pass, in parallel with feature `parallel`; the
/// results come back in block order either way.
pub(crate) fn blocks_map<'a, F, T, G>(blocks: Vec<Option<&'a mut [F]>>, f: G) -> Vec<T>
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

//! Statistics across seeds: Welford accumulators, standard errors, KL.

use crate::real::Real;

/// Mean and standard error across seeds of one quantity, per step.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    /// Mean across seeds at step t (index t − 1).
    pub mean: Vec<f64>,
    /// Standard error of that mean (0 with fewer than two seeds).
    pub se: Vec<f64>,
}

/// KL(p ‖ q) = Σ_a p_a (ln p_a − ln q_a), with 0 ln 0 = 0 and q floored at
/// the smallest normal float (so that a q that underflowed gives a large,
/// finite value).
pub fn kl_divergence<F: Real>(p: &[F], q: &[F]) -> f64 {
    p.iter()
        .zip(q)
        .filter(|(pa, _)| **pa > F::zero())
        .map(|(&pa, &qa)| {
            let (pa, qa) = (pa.f64(), qa.f64().max(f64::MIN_POSITIVE));
            pa * (pa.ln() - qa.ln())
        })
        .sum::<f64>()
        .max(0.0)
}

/// Welford accumulators (mean, M2) of one quantity.
pub(crate) type Welford = (f64, f64);

pub(crate) fn welford_push(acc: &mut Welford, v: f64, n: f64) {
    let delta = v - acc.0;
    acc.0 += delta / n;
    acc.1 += delta * (v - acc.0);
}

/// Chan et al.'s pairwise merge of two Welford accumulators of `na` and
/// `nb` values.
pub(crate) fn welford_merge(a: &mut Welford, b: &Welford, na: f64, nb: f64) {
    let (w_mean, w_m2) = merge_weights(na, nb);
    welford_merge_with(a, b, w_mean, w_m2);
}

/// The factors of a merge, nb/n and na·nb/n: the same for every entry of
/// two accumulators of per-step series, so computed once per merge.
pub(crate) fn merge_weights(na: f64, nb: f64) -> (f64, f64) {
    let n = na + nb;
    (nb / n, na * nb / n)
}

/// [`welford_merge`] with its factors from [`merge_weights`] (no division).
#[inline]
pub(crate) fn welford_merge_with(a: &mut Welford, b: &Welford, w_mean: f64, w_m2: f64) {
    let delta = b.0 - a.0;
    a.0 += delta * w_mean;
    a.1 += b.1 + delta * delta * w_m2;
}

/// The standard error of a mean of `n` values with Welford sum of squares `m2`
/// (0 with fewer than two values).
pub(crate) fn standard_error(m2: f64, n: usize) -> f64 {
    if n >= 2 {
        (m2.max(0.0) / ((n - 1) as f64) / n as f64).sqrt()
    } else {
        0.0
    }
}

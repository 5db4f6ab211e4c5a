//! Slice kernels of the softmax policies: logits, a max-shifted softmax,
//! sampling, the score update and the Hessian-vector product (docs/ARCHITECTURE.md, "Kernels").
//!
//! # Layout
//! θ ∈ R^{K×d} is stored feature-major and padded: `θᵀ` as d rows of `kp`
//! entries, entry (a, j) at `j·kp + a`, with `kp` = K rounded up to a multiple
//! of [`LANES`]. Logits, probabilities and update coefficients are vectors of
//! length `kp`. So every hot loop runs over whole blocks of [`LANES`] actions
//! with no scalar tail; the padded actions get a −inf logit bias, probability
//! 0, and an update coefficient of 0, so their parameters stay 0.
//!
//! The hot kernels are `#[inline(always)]` so that `kernels::dispatch` can compile
//! them again with wider vector instructions. Products are accumulated with
//! fused multiply-adds (`mul_add`): exactly rounded, so every variant gives
//! the same bits. Callers check lengths.

use rand::{Rng, RngExt};

use crate::real::Real;

/// Dot product with four independent accumulators (a fixed summation order,
/// so results are deterministic, and short dependency chains). The lanes
/// are combined as (0 + 2) + (1 + 3), the halves of a 4-wide register.
#[inline(always)]
pub(crate) fn dot<F: Real>(a: &[F], b: &[F]) -> F {
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    let mut acc = [F::zero(); 4];
    let mut ca = a.chunks_exact(4);
    let mut cb = b.chunks_exact(4);
    for (x, y) in (&mut ca).zip(&mut cb) {
        acc[0] = x[0].mul_add(y[0], acc[0]);
        acc[1] = x[1].mul_add(y[1], acc[1]);
        acc[2] = x[2].mul_add(y[2], acc[2]);
        acc[3] = x[3].mul_add(y[3], acc[3]);
    }
    for (x, y) in ca.remainder().iter().zip(cb.remainder()) {
        acc[0] = x.mul_add(*y, acc[0]);
    }
    (acc[0] + acc[2]) + (acc[1] + acc[3])
}

/// [`dot`] with separate multiplies and adds, for code that is not
/// dispatched to an FMA variant (a `mul_add` there is a library call).
#[inline]
pub(crate) fn dot_plain<F: Real>(a: &[F], b: &[F]) -> F {
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    let mut acc = [F::zero(); 4];
    let mut ca = a.chunks_exact(4);
    let mut cb = b.chunks_exact(4);
    for (x, y) in (&mut ca).zip(&mut cb) {
        acc[0] += x[0] * y[0];
        acc[1] += x[1] * y[1];
        acc[2] += x[2] * y[2];
        acc[3] += x[3] * y[3];
    }
    for (x, y) in ca.remainder().iter().zip(cb.remainder()) {
        acc[0] += *x * *y;
    }
    (acc[0] + acc[2]) + (acc[1] + acc[3])
}

/// Sum with four independent accumulators.
#[inline(always)]
pub(crate) fn sum<F: Real>(a: &[F]) -> F {
    let mut acc = [F::zero(); 4];
    let mut c = a.chunks_exact(4);
    for x in &mut c {
        acc[0] += x[0];
        acc[1] += x[1];
        acc[2] += x[2];
        acc[3] += x[3];
    }
    for x in c.remainder() {
        acc[0] += *x;
    }
    (acc[0] + acc[2]) + (acc[1] + acc[3])
}

/// Normalizer of a softmax: `π(a) = exp(z_a − max) / sum`, so
/// `log π(a) = z_a − max − ln(sum)`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Normalizer<F> {
    /// The largest logit.
    pub max: F,
    /// `Σ_b exp(z_b − max)`, at least 1 when finite.
    pub sum: F,
}

impl<F: Real> Normalizer<F> {
    /// `log Σ_b exp(z_b)` (with [`Real::ln_fast`], as the passes).
    pub fn log_partition(&self) -> F {
        self.max + self.sum.ln_fast()
    }
}

/// Largest element (−inf for an empty slice), with four lanes.
#[inline(always)]
pub(crate) fn max<F: Real>(a: &[F]) -> F {
    let mut acc = [F::neg_infinity(); 4];
    let mut c = a.chunks_exact(4);
    for x in &mut c {
        for (m, &v) in acc.iter_mut().zip(x) {
            *m = if v > *m { v } else { *m };
        }
    }
    for &v in c.remainder() {
        acc[0] = if v > acc[0] { v } else { acc[0] };
    }
    // Lanes 0 and 2, 1 and 3 first: the halves of a 4-wide register.
    let m02 = if acc[2] > acc[0] { acc[2] } else { acc[0] };
    let m13 = if acc[3] > acc[1] { acc[3] } else { acc[1] };
    if m13 > m02 { m13 } else { m02 }
}

/// Whether every element is finite, in one pass with no early exit.
#[inline(always)]
pub(crate) fn all_finite<F: Real>(a: &[F]) -> bool {
    a.iter().fold(true, |ok, v| ok & v.is_finite())
}

/// Turns logits into probabilities in place, never exponentiating an
/// unshifted logit: `z_a ← exp(z_a − m) / Σ_b exp(z_b − m)` with `m = max_b z_b`.
///
/// Returns `None` (and leaves `z` holding unspecified values) when the logits
/// hold a NaN or +inf, or are all −inf, so that no NaN probability escapes.
/// A −inf logit beside finite ones gets probability 0.
#[inline(always)]
pub(crate) fn softmax_in_place<F: Real>(z: &mut [F]) -> Option<Normalizer<F>> {
    // A NaN logit is caught below: it makes the sum NaN.
    let m = max(z);
    // exp(z - m) with m the largest logit: every argument is <= 0.
    for v in z.iter_mut() {
        *v = (*v - m).exp_fast();
    }
    let s = sum(z);
    // s >= 1 unless a logit was NaN or +inf, or all were -inf (then s is NaN).
    if !(s.is_finite() && m.is_finite()) {
        return None;
    }
    let inv = F::one() / s;
    for v in z.iter_mut() {
        *v *= inv;
    }
    Some(Normalizer { max: m, sum: s })
}

/// Draws an action from `probs` with one uniform draw (inverse CDF).
/// Never panics: with rounding leaving the total a hair below `u`, the last
/// action with positive probability is returned.
#[inline]
pub(crate) fn sample<F: Real, R: Rng + ?Sized>(probs: &[F], rng: &mut R) -> usize {
    let u = F::c(rng.random::<f64>());
    let mut cum = F::zero();
    let mut last = 0;
    for (a, &p) in probs.iter().enumerate() {
        cum += p;
        if p > F::zero() {
            last = a;
            if u < cum {
                return a;
            }
        }
    }
    last
}

/// Block width of the padded layout.
pub(crate) const LANES: usize = 4;

/// K rounded up to a multiple of [`LANES`].
pub(crate) fn padded(k: usize) -> usize {
    k.div_ceil(LANES) * LANES
}

/// Actions per register group of the logits and update kernels.
const GROUP: usize = 4 * LANES;

/// `z = θ x` in the padded layout: `z` has length kp, `theta_t` d·kp.
///
/// The actions are taken in groups of up to 16 whose logits stay in
/// registers over the whole pass through the features (one const-generic
/// variant per group width), so θ is only loaded, never z stored, in the
/// inner loop.
#[inline(always)]
pub(crate) fn logits_t<F: Real>(theta_t: &[F], x: &[F], z: &mut [F]) {
    let kp = z.len();
    for (g, zg) in z.chunks_mut(GROUP).enumerate() {
        let off = g * GROUP;
        match zg.len() / LANES {
            1 => logits_group::<F, 1>(theta_t, kp, off, x, zg),
            2 => logits_group::<F, 2>(theta_t, kp, off, x, zg),
            3 => logits_group::<F, 3>(theta_t, kp, off, x, zg),
            _ => logits_group::<F, 4>(theta_t, kp, off, x, zg),
        }
    }
}

/// Logits of the NB·4 actions from `off`, with two register accumulators per
/// block (even and odd features) to halve the dependency chain.
#[inline(always)]
fn logits_group<F: Real, const NB: usize>(
    theta_t: &[F],
    kp: usize,
    off: usize,
    x: &[F],
    z: &mut [F],
) {
    let w = NB * LANES;
    let mut acc0 = [[F::zero(); LANES]; NB];
    let mut acc1 = [[F::zero(); LANES]; NB];
    let mut rows = theta_t.chunks_exact(kp);
    let mut xs = x.chunks_exact(2);
    for xx in &mut xs {
        let (Some(r0), Some(r1)) = (rows.next(), rows.next()) else {
            break;
        };
        let (Some(r0), Some(r1)) = (r0.get(off..off + w), r1.get(off..off + w)) else {
            break;
        };
        for b in 0..NB {
            for l in 0..LANES {
                acc0[b][l] = xx[0].mul_add(r0[b * LANES + l], acc0[b][l]);
                acc1[b][l] = xx[1].mul_add(r1[b * LANES + l], acc1[b][l]);
            }
        }
    }
    if let ([xl], Some(r)) = (
        xs.remainder(),
        rows.next().and_then(|r| r.get(off..off + w)),
    ) {
        for b in 0..NB {
            for l in 0..LANES {
                acc0[b][l] = xl.mul_add(r[b * LANES + l], acc0[b][l]);
            }
        }
    }
    for (zb, (a0, a1)) in z.chunks_exact_mut(LANES).zip(acc0.iter().zip(&acc1)) {
        for l in 0..LANES {
            zb[l] = a0[l] + a1[l];
        }
    }
}

/// Softmax of padded logits in place: `bias` is 0 for real actions and −inf
/// for padding. Same contract as [`softmax_in_place`].
#[inline(always)]
pub(crate) fn softmax_padded<F: Real>(z: &mut [F], bias: &[F]) -> Option<Normalizer<F>> {
    // Plain element loops: the loop vectorizer turns each into full-width
    // vector code (an explicit [F; 4] formulation came out as 2-lane shuffles).
    for (v, &b) in z.iter_mut().zip(bias) {
        *v += b;
    }
    let m = max(z);
    // The length is a multiple of LANES; saying so lets the vectorizer drop
    // the scalar epilogue (four scalar exps cost more than the vector body).
    let n = z.len() & !(LANES - 1);
    let z = &mut z[..n];
    for v in z.iter_mut() {
        *v = (*v - m).exp_fast();
    }
    let s = sum(z);
    if !(s.is_finite() && m.is_finite()) {
        return None;
    }
    let inv = F::one() / s;
    for v in z.iter_mut() {
        *v *= inv;
    }
    Some(Normalizer { max: m, sum: s })
}

/// `out = softmax(θ x)` in the padded layout.
#[inline(always)]
pub(crate) fn logits_softmax_t<F: Real>(
    theta_t: &[F],
    bias: &[F],
    x: &[F],
    out: &mut [F],
) -> Option<Normalizer<F>> {
    logits_t(theta_t, x, out);
    softmax_padded(out, bias)
}

/// `θ ← θ + scale · (e_a − π) ⊗ x` in the padded layout; `c` is scratch of
/// length kp. Padded actions have π = 0, so their coefficient is 0.
#[inline(always)]
pub(crate) fn add_scaled_score_t<F: Real>(
    theta_t: &mut [F],
    x: &[F],
    probs: &[F],
    action: usize,
    scale: F,
    c: &mut [F],
) {
    for (a, (ca, &p)) in c.iter_mut().zip(probs).enumerate() {
        let e = if a == action { F::one() } else { F::zero() };
        *ca = scale * (e - p);
    }
    add_outer_t(theta_t, x, c);
}

/// `θᵀ_j += x_j c` for every feature j: the outer product `c ⊗ x` added to a
/// padded feature-major block (`c` has length kp).
#[inline(always)]
pub(crate) fn add_outer_t<F: Real>(theta_t: &mut [F], x: &[F], c: &[F]) {
    let kp = c.len();
    for (g, cg) in c.chunks(GROUP).enumerate() {
        let off = g * GROUP;
        match cg.len() / LANES {
            1 => update_group::<F, 1>(theta_t, kp, off, x, cg),
            2 => update_group::<F, 2>(theta_t, kp, off, x, cg),
            3 => update_group::<F, 3>(theta_t, kp, off, x, cg),
            _ => update_group::<F, 4>(theta_t, kp, off, x, cg),
        }
    }
}

/// θᵀ_j[off..off + 4·NB] += x_j c, with c held in registers.
#[inline(always)]
fn update_group<F: Real, const NB: usize>(
    theta_t: &mut [F],
    kp: usize,
    off: usize,
    x: &[F],
    c: &[F],
) {
    let w = NB * LANES;
    let mut cr = [[F::zero(); LANES]; NB];
    for (crb, cb) in cr.iter_mut().zip(c.chunks_exact(LANES)) {
        crb.copy_from_slice(cb);
    }
    for (row, &xj) in theta_t.chunks_exact_mut(kp).zip(x) {
        let Some(row) = row.get_mut(off..off + w) else {
            break;
        };
        for b in 0..NB {
            for l in 0..LANES {
                row[b * LANES + l] = cr[b][l].mul_add(xj, row[b * LANES + l]);
            }
        }
    }
}

/// `out = (e_a − π) ⊗ x` as a row-major K×d matrix (row a: action a).
pub(crate) fn score<F: Real>(x: &[F], probs: &[F], action: usize, out: &mut [F]) {
    let d = x.len();
    for (a, (row, &p)) in out.chunks_exact_mut(d).zip(probs).enumerate() {
        let c = if a == action { F::one() - p } else { -p };
        for (o, &xj) in row.iter_mut().zip(x) {
            *o = c * xj;
        }
    }
}

/// `out = H v` with `H = −(diag π − π πᵀ) ⊗ x xᵀ`, the Hessian of `log π(a|x)`
/// for a linear softmax, in O(K·d): `u = V x`, `g = π ⊙ u − π (πᵀ u)`,
/// `out = −g ⊗ x`. `v` and `out` are row-major K×d; `u` is scratch of length K.
pub(crate) fn hessian_vector<F: Real>(x: &[F], probs: &[F], v: &[F], u: &mut [F], out: &mut [F]) {
    let d = x.len();
    for (ua, row) in u.iter_mut().zip(v.chunks_exact(d)) {
        *ua = dot_plain(row, x);
    }
    let pu = dot_plain(probs, u);
    for ((row, &p), &ua) in out.chunks_exact_mut(d).zip(probs).zip(u.iter()) {
        let g = p * (ua - pu);
        for (o, &xj) in row.iter_mut().zip(x) {
            *o = -(g * xj);
        }
    }
}

/// Rows per batch of [`loglik_pass`].
pub(crate) const BATCH: usize = 8;

/// One pass of the weighted log-likelihood over compressed rows (the refit
/// objective's data term): for each row i with context `x_i`, action weights
/// `W_i` (padded, length kp) and total `c_i = Σ_a W_ia`,
/// adds `x_i ⊗ (W_i − c_i π_i)` to `grad_t` and returns
/// `Σ_i (W_i · z_i − c_i log Z_i)`. When `probs` is given (m·kp), π_i is
/// stored there for later Hessian-vector products. `z`, `r` are scratch of
/// [`BATCH`]·kp. Returns `None` if a logit overflows.
///
/// The rows are taken [`BATCH`] at a time, phase by phase (logits, the
/// exponentials, the logarithms, the gradient terms), so that the
/// independent work of several rows sits side by side for the CPU to
/// overlap, and the gradient block is loaded and stored once per batch
/// rather than once per row. Every sum keeps the row order of a row-by-row
/// pass, so the result does not depend on the batch size.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
pub(crate) fn loglik_pass<F: Real>(
    theta_t: &[F],
    bias: &[F],
    xs: &[F],
    ws: &[F],
    cs: &[F],
    grad_t: &mut [F],
    mut probs: Option<&mut [F]>,
    z: &mut [F],
    r: &mut [F],
) -> Option<F> {
    let kp = bias.len();
    if kp == 0 {
        return Some(F::zero());
    }
    let d = grad_t.len() / kp;
    let mut value = F::zero();
    let mut wz = [F::zero(); BATCH];
    let mut m = [F::zero(); BATCH];
    let mut ls = [F::one(); BATCH];
    for (b, ((xb, wb), cb)) in xs
        .chunks(BATCH * d)
        .zip(ws.chunks(BATCH * kp))
        .zip(cs.chunks(BATCH))
        .enumerate()
    {
        let nb = cb.len();
        let (Some(zb), Some(rb)) = (z.get_mut(..nb * kp), r.get_mut(..nb * kp)) else {
            return None;
        };
        for (i, ((zi, x), w)) in zb
            .chunks_exact_mut(kp)
            .zip(xb.chunks_exact(d))
            .zip(wb.chunks_exact(kp))
            .enumerate()
        {
            logits_t(theta_t, x, zi);
            wz[i] = dot(w, zi);
            for (v, &bb) in zi.iter_mut().zip(bias) {
                *v += bb;
            }
            m[i] = max(zi);
        }
        // The exponentials of the whole batch, then its sums: each row
        // shifted by its own largest logit, so every argument is <= 0.
        let mut sums = [F::one(); BATCH];
        for ((zi, &mi), si) in zb.chunks_exact_mut(kp).zip(&m).zip(&mut sums) {
            let n4 = zi.len() & !(LANES - 1);
            for v in zi[..n4].iter_mut() {
                *v = (*v - mi).exp_fast();
            }
            *si = sum(zi);
        }
        // A NaN or +inf logit, or all −inf, make the sum NaN (or m non-finite).
        if !(sums[..nb]
            .iter()
            .zip(&m)
            .all(|(s, mi)| s.is_finite() & mi.is_finite()))
        {
            return None;
        }
        for (l, s) in ls.iter_mut().zip(&sums) {
            *l = s.ln_fast();
        }
        for i in 0..nb {
            value += wz[i] - cb[i] * (m[i] + ls[i]);
        }
        for (((zi, ri), w), (&c, &s)) in zb
            .chunks_exact_mut(kp)
            .zip(rb.chunks_exact_mut(kp))
            .zip(wb.chunks_exact(kp))
            .zip(cb.iter().zip(&sums))
        {
            let inv = F::one() / s;
            for ((pa, ra), &wa) in zi.iter_mut().zip(ri.iter_mut()).zip(w) {
                *pa *= inv;
                *ra = wa - c * *pa;
            }
        }
        if let Some(p) = probs.as_deref_mut() {
            if let Some(dst) = p.get_mut(b * BATCH * kp..(b * BATCH + nb) * kp) {
                dst.copy_from_slice(zb);
            }
        }
        add_outer_batch_t(grad_t, xb, rb, kp);
    }
    Some(value)
}

/// `θᵀ_j += Σ_i x_ij c_i` for every feature j: the outer products of the
/// rows `c_i` (length kp each, back to back in `cs`) with the contexts `x_i`
/// (back to back in `xs`), added in row order to a padded feature-major
/// block; each block of θᵀ stays in registers over the rows.
#[inline(always)]
pub(crate) fn add_outer_batch_t<F: Real>(theta_t: &mut [F], xs: &[F], cs: &[F], kp: usize) {
    let rows = cs.len() / kp.max(1);
    if rows == 0 {
        return;
    }
    let d = xs.len() / rows;
    for g in (0..kp).step_by(GROUP) {
        match (kp - g).min(GROUP) / LANES {
            1 => update_batch_group::<F, 1>(theta_t, kp, g, d, xs, cs),
            2 => update_batch_group::<F, 2>(theta_t, kp, g, d, xs, cs),
            3 => update_batch_group::<F, 3>(theta_t, kp, g, d, xs, cs),
            _ => update_batch_group::<F, 4>(theta_t, kp, g, d, xs, cs),
        }
    }
}

/// θᵀ_j[off..off + 4·NB] += Σ_i x_ij c_i[off..off + 4·NB], in row order.
#[inline(always)]
fn update_batch_group<F: Real, const NB: usize>(
    theta_t: &mut [F],
    kp: usize,
    off: usize,
    d: usize,
    xs: &[F],
    cs: &[F],
) {
    let w = NB * LANES;
    for (j, row) in theta_t.chunks_exact_mut(kp).enumerate().take(d) {
        let Some(row) = row.get_mut(off..off + w) else {
            break;
        };
        let mut acc = [[F::zero(); LANES]; NB];
        for (b, ab) in acc.iter_mut().enumerate() {
            ab.copy_from_slice(&row[b * LANES..(b + 1) * LANES]);
        }
        for (x, c) in xs.chunks_exact(d).zip(cs.chunks_exact(kp)) {
            let xj = x[j];
            let Some(c) = c.get(off..off + w) else {
                break;
            };
            for b in 0..NB {
                for l in 0..LANES {
                    acc[b][l] = c[b * LANES + l].mul_add(xj, acc[b][l]);
                }
            }
        }
        for (b, ab) in acc.iter().enumerate() {
            row[b * LANES..(b + 1) * LANES].copy_from_slice(ab);
        }
    }
}

/// Rows per block of [`neg_hessian_rows`].
const HESSIAN_CHUNK: usize = 32;

/// The scratch length [`neg_hessian_rows`] works in: π, and S and x of up
/// to 32 rows (fewer where a row's S is large).
pub(crate) fn neg_hessian_scratch_len(k: usize, kp: usize, d: usize) -> usize {
    let row = k * (k + 1) / 2 + d;
    kp + (HESSIAN_SCRATCH / row).clamp(1, HESSIAN_CHUNK) * row
}

/// Entries of S and x a block of [`neg_hessian_rows`] holds at most (128
/// KiB in f64), unless one row needs more.
const HESSIAN_SCRATCH: usize = 16 * 1024;

/// Adds `Σ_i c_i S(π_i) ⊗ x_i x_iᵀ` (S = diag π − π πᵀ, π_i = softmax(θ x_i))
/// to the lower triangle of the dense negated Hessian `h` (row-major, side
/// K·d, index a·d + j; the diagonal blocks are written whole): the data
/// term of the log-likelihood's negated Hessian. Rows with c_i = 0, and a
/// row's (a, b) block where S_ab c_i = 0, are skipped. Each entry receives
/// its rows' terms in row order, `h += (S_ab c_i x_ij) x_il` as one fused
/// multiply-add each, whatever the blocking: the rows are taken in blocks
/// of up to 32 (their π, S and x in `scratch`, see
/// [`neg_hessian_scratch_len`]; a shorter scratch makes smaller blocks),
/// and each block of h entries stays in registers over a block of rows.
/// Returns `false` if a logit overflows, or the scratch cannot hold one
/// row (`h` then holds part of the sum).
#[inline(always)]
pub(crate) fn neg_hessian_rows<F: Real>(
    theta_t: &[F],
    bias: &[F],
    xs: &[F],
    cs: &[F],
    k: usize,
    h: &mut [F],
    scratch: &mut [F],
) -> bool {
    let Some(d) = xs.len().checked_div(cs.len()) else {
        return true;
    };
    let kp = bias.len();
    let n = k * d;
    let pairs = k * (k + 1) / 2;
    if d == 0 || h.len() < n * n || k > kp {
        return true;
    }
    let Some(room) = scratch.len().checked_sub(kp) else {
        return false;
    };
    let chunk = (room / (pairs + d)).min(HESSIAN_CHUNK);
    if chunk == 0 {
        return false;
    }
    let (z, rest) = scratch.split_at_mut(kp);
    let sb = &mut rest[..chunk * pairs];
    // The rows of the block (their contexts are read in place).
    let mut at = [0usize; HESSIAN_CHUNK];
    let mut rows = xs
        .chunks_exact(d)
        .zip(cs)
        .enumerate()
        .filter(|(_, (_, c))| **c != F::zero());
    loop {
        // The next block of rows: their S (packed lower, c folded in).
        let mut m = 0;
        for (i, (x, &c)) in rows.by_ref() {
            logits_t(theta_t, x, z);
            if softmax_padded(z, bias).is_none() {
                return false;
            }
            let s_row = &mut sb[m * pairs..(m + 1) * pairs];
            let mut q = 0;
            for (a, &pa) in z[..k].iter().enumerate() {
                for (b, &pb) in z[..=a].iter().enumerate() {
                    s_row[q] = if a == b { pa - pa * pa } else { -(pa * pb) } * c;
                    q += 1;
                }
            }
            at[m] = i;
            m += 1;
            if m == chunk {
                break;
            }
        }
        if m == 0 {
            return true;
        }
        let (sb, rows_at) = (&sb[..m * pairs], &at[..m]);
        let mut q = 0;
        for a in 0..k {
            for b in 0..=a {
                let mut j = 0;
                while j + 4 <= d {
                    hessian_block::<F, 4>(
                        h,
                        n,
                        (a * d + j, b * d),
                        j,
                        d,
                        q,
                        pairs,
                        sb,
                        xs,
                        rows_at,
                    );
                    j += 4;
                }
                while j < d {
                    hessian_block::<F, 1>(
                        h,
                        n,
                        (a * d + j, b * d),
                        j,
                        d,
                        q,
                        pairs,
                        sb,
                        xs,
                        rows_at,
                    );
                    j += 1;
                }
                q += 1;
            }
        }
    }
}

/// `h[(row0 + jj)·n + col0 + l] += (S_q x_i[j0 + jj]) x_i[l]` for jj < JB,
/// l < d and the block's rows i (`rows_at`; S_q = `sb[r·pairs + q]` for
/// the r-th, rows with S_q = 0 skipped), eight columns at a time held in
/// registers, the last d mod 8 one at a time.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn hessian_block<F: Real, const JB: usize>(
    h: &mut [F],
    n: usize,
    (row0, col0): (usize, usize),
    j0: usize,
    d: usize,
    q: usize,
    pairs: usize,
    sb: &[F],
    xs: &[F],
    rows_at: &[usize],
) {
    const LB: usize = 8;
    let mut l0 = 0;
    while l0 + LB <= d {
        let mut acc = [[F::zero(); LB]; JB];
        for (jj, accj) in acc.iter_mut().enumerate() {
            let at = (row0 + jj) * n + col0 + l0;
            if let Some(src) = h.get(at..at + LB) {
                accj.copy_from_slice(src);
            }
        }
        for (s_row, &i) in sb.chunks_exact(pairs).zip(rows_at) {
            let s = s_row[q];
            if s == F::zero() {
                continue;
            }
            let x = &xs[i * d..(i + 1) * d];
            let xl: &[F; LB] = match x[l0..l0 + LB].try_into() {
                Ok(v) => v,
                Err(_) => continue,
            };
            for (jj, accj) in acc.iter_mut().enumerate() {
                let sx = s * x[j0 + jj];
                for (a, &v) in accj.iter_mut().zip(xl) {
                    *a = sx.mul_add(v, *a);
                }
            }
        }
        for (jj, accj) in acc.iter().enumerate() {
            let at = (row0 + jj) * n + col0 + l0;
            if let Some(dst) = h.get_mut(at..at + LB) {
                dst.copy_from_slice(accj);
            }
        }
        l0 += LB;
    }
    // The last columns (d not a multiple of eight), one at a time.
    for l in l0..d {
        let mut acc = [F::zero(); JB];
        for (jj, a) in acc.iter_mut().enumerate() {
            *a = h[(row0 + jj) * n + col0 + l];
        }
        for (s_row, &i) in sb.chunks_exact(pairs).zip(rows_at) {
            let s = s_row[q];
            if s == F::zero() {
                continue;
            }
            let x = &xs[i * d..(i + 1) * d];
            for (jj, a) in acc.iter_mut().enumerate() {
                *a = (s * x[j0 + jj]).mul_add(x[l], *a);
            }
        }
        for (jj, &a) in acc.iter().enumerate() {
            h[(row0 + jj) * n + col0 + l] = a;
        }
    }
}

/// `out += Σ_i c_i x_i ⊗ (π_i ⊙ u_i − π_i (π_iᵀ u_i))` with `u_i = V x_i`:
/// the negated Hessian of the data term times V, from stored probabilities.
/// `v_t`, `out_t` are padded feature-major; `u` is kp scratch.
#[inline(always)]
pub(crate) fn neg_hess_vec_pass<F: Real>(
    v_t: &[F],
    xs: &[F],
    cs: &[F],
    probs: &[F],
    out_t: &mut [F],
    u: &mut [F],
) {
    let kp = u.len();
    let d = out_t.len() / kp.max(1);
    for ((x, &c), p) in xs.chunks_exact(d).zip(cs).zip(probs.chunks_exact(kp)) {
        logits_t(v_t, x, u);
        let pu = dot(p, u);
        for (ua, &pa) in u.iter_mut().zip(p) {
            *ua = c * pa * (*ua - pu);
        }
        add_outer_t(out_t, x, u);
    }
}

/// Σ a as [`sum`] forms it over `a` padded with zeros to a multiple of
/// four: the last partial chunk in its own lanes (adding a zero is exact,
/// so the padding need not be there).
#[inline(always)]
fn sum_as_padded<F: Real>(a: &[F]) -> F {
    let mut acc = [F::zero(); 4];
    let mut c = a.chunks_exact(4);
    for x in &mut c {
        acc[0] += x[0];
        acc[1] += x[1];
        acc[2] += x[2];
        acc[3] += x[3];
    }
    for (l, x) in c.remainder().iter().enumerate() {
        acc[l] += *x;
    }
    (acc[0] + acc[2]) + (acc[1] + acc[3])
}

/// π = softmax(θ) into `p`, and (m, ln Σ_a e^(θ_a − m)) with m the
/// largest θ_a: the softmax of a tabular policy whose logits are θ
/// (`crate::solve::tabular`). π is bit for bit the padded softmax of
/// [`logits_softmax_t`] at the context 1 (same shift, same exponential,
/// the sum in the same lanes), so a refit hands it to the act as it is.
/// `None` if m is not finite.
#[inline(always)]
pub(crate) fn tabular_softmax<F: Real>(theta: &[F], p: &mut [F]) -> Option<(F, F)> {
    let m = max(theta);
    if !m.is_finite() {
        return None;
    }
    for (pa, &t) in p.iter_mut().zip(theta) {
        *pa = (t - m).exp_fast();
    }
    let z = sum_as_padded(p);
    let inv = F::one() / z;
    for pa in p.iter_mut() {
        *pa *= inv;
    }
    Some((m, z.ln_fast()))
}

/// J and ∇J (into `g`) of the log-likelihood of a tabular policy with one
/// row of weights `w` (total `s`) and penalty λ, given π = softmax(θ) and
/// the shift `m` and `ln_z` of [`tabular_softmax`]:
/// J = Σ_a w_a ((θ_a − m) − ln_z) − (λ/2)‖θ‖², ∇J = w − s π − λθ.
/// log π_a is formed as (θ_a − m) − ln_z, exact for the largest logit up
/// to ln_z (small when one action dominates), not as θ_a − (m + ln_z),
/// whose rounding, times a large weight, would swamp the changes in J
/// near the optimum. `None` if J or ∇J is not finite.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
pub(crate) fn tabular_loglik<F: Real>(
    w: &[F],
    s: F,
    lambda: F,
    theta: &[F],
    p: &[F],
    m: F,
    ln_z: F,
    g: &mut [F],
) -> Option<F> {
    let (mut value, mut sq) = (F::zero(), F::zero());
    for (((ga, &pa), &wa), &t) in g.iter_mut().zip(p).zip(w).zip(theta) {
        value = wa.mul_add((t - m) - ln_z, value);
        sq = t.mul_add(t, sq);
        *ga = (-lambda).mul_add(t, (-s).mul_add(pa, wa));
    }
    let value = (-lambda * F::c(0.5)).mul_add(sq, value);
    (value.is_finite() && g.iter().all(|v| v.is_finite())).then_some(value)
}

/// The Newton step δ = (−∇²J)⁻¹∇J of the log-likelihood of a tabular
/// policy into `step`, −∇²J = D − s π πᵀ with D = diag(s π + λ), by
/// Sherman–Morrison (`crate::solve::tabular`), `inv` scratch for D⁻¹.
/// Returns ∇J·δ.
#[inline(always)]
pub(crate) fn tabular_newton_step<F: Real>(
    g: &[F],
    p: &[F],
    s: F,
    lambda: F,
    step: &mut [F],
    inv: &mut [F],
) -> F {
    let (mut pu, mut pv) = (F::zero(), F::zero());
    for (((st, iv), &ga), &pa) in step.iter_mut().zip(inv.iter_mut()).zip(g).zip(p) {
        *iv = F::one() / s.mul_add(pa, lambda);
        *st = ga * *iv;
        pu = pa.mul_add(*st, pu);
        pv = pa.mul_add(*iv, pv);
    }
    // 1 − s πᵀD⁻¹π = λ πᵀD⁻¹π: nothing cancels when s ≫ λ.
    let c = s * pu / (lambda * pv);
    let mut expected = F::zero();
    for (((st, &iv), &ga), &pa) in step.iter_mut().zip(inv.iter()).zip(g).zip(p) {
        *st = (c * pa).mul_add(iv, *st);
        expected = st.mul_add(ga, expected);
    }
    expected
}

/// The product G = Cᵀ Z over `n` rows, in register tiles of 4 × 12:
/// G[q·tp + t] = Σ_r c[r·nq + q0 + q] · z[r·tp + t] for q < g.len()/tp (a
/// multiple of 4; `g` holds rows q0.. of the whole product, whose C has
/// `nq` columns) and t < tp (a multiple of 12), the rows summed in order.
/// With c[r·nq + ·] the packed lower triangle of row r's K×K Hessian in
/// the logits and z[r·tp + ·] the products x_i x_j (i ≤ j) of its context,
/// the rows of G are the weighted Gram matrices Σ_r C_r[a, b] x_r x_rᵀ
/// whose blocks make the Hessian of linear logits
/// (`LinearSoftmax::add_logits_hessian_rows`). Twelve accumulators per
/// tile keep both FMA pipes busy through their latency.
#[inline(always)]
pub(crate) fn gram_product<F: Real>(
    c: &[F],
    z: &[F],
    n: usize,
    nq: usize,
    tp: usize,
    q_start: usize,
    g: &mut [F],
) {
    const W: usize = 12;
    if tp == 0 || nq == 0 {
        return;
    }
    let (c, z) = (&c[..n * nq], &z[..n * tp]);
    for (q4, gq) in g.chunks_exact_mut(4 * tp).enumerate() {
        let q0 = q_start + 4 * q4;
        for t0 in (0..tp).step_by(W) {
            let mut acc = [[F::zero(); W]; 4];
            for (zr, cr) in z.chunks_exact(tp).zip(c.chunks_exact(nq)) {
                let (Some(zr), Some(cv)) = (zr.get(t0..t0 + W), cr.get(q0..q0 + 4)) else {
                    return;
                };
                for (u, &v) in cv.iter().enumerate() {
                    for l in 0..W {
                        acc[u][l] = v.mul_add(zr[l], acc[u][l]);
                    }
                }
            }
            for (u, a) in acc.iter().enumerate() {
                if let Some(out) = gq.get_mut(u * tp + t0..u * tp + t0 + W) {
                    out.copy_from_slice(a);
                }
            }
        }
    }
}

/// The predicted rewards of a per-action ridge model: `out[a] = θ_a · x`
/// for θ row-major K×d (`out` has length K).
#[inline(always)]
pub(crate) fn ridge_means<F: Real>(theta: &[F], x: &[F], out: &mut [F]) {
    let d = x.len();
    for (o, th) in out.iter_mut().zip(theta.chunks_exact(d)) {
        *o = dot(th, x);
    }
}

/// The widths of a per-action ridge model, `out[a] = √(xᵀ M_a x)` for K
/// symmetric d×d matrices M_a stored as packed upper triangles side by
/// side: entry (i ≤ j) of M_a at `p(i, j)·kp + a`, p numbering the upper
/// triangle row by row. With the features `xx[p(i, j)] = x_i x_j` (doubled
/// off the diagonal), the K quadratic forms are the "logits" of the packed
/// matrix at `xx` ([`quadratic_group`]: all actions side by side in
/// registers over one pass). `xx` is scratch of d(d + 1)/2 and `z` of kp.
/// A form that rounds below 0 is 0.
#[inline(always)]
pub(crate) fn ridge_widths<F: Real>(
    packed: &[F],
    x: &[F],
    xx: &mut [F],
    z: &mut [F],
    out: &mut [F],
) {
    let total = xx.len();
    let mut rest = &mut xx[..];
    for (i, &xi) in x.iter().enumerate() {
        let Some((diag, tail)) = rest.split_first_mut() else {
            return;
        };
        *diag = xi * xi;
        let (row, next) = tail.split_at_mut(x.len() - i - 1);
        let two_xi = xi + xi;
        for (o, &xj) in row.iter_mut().zip(&x[i + 1..]) {
            *o = two_xi * xj;
        }
        rest = next;
    }
    let tri = total - rest.len();
    let xx = &xx[..tri];
    let kp = z.len();
    for (g, zg) in z.chunks_mut(GROUP).enumerate() {
        let off = g * GROUP;
        match zg.len() / LANES {
            1 => quadratic_group::<F, 1>(packed, kp, off, xx, zg),
            2 => quadratic_group::<F, 2>(packed, kp, off, xx, zg),
            3 => quadratic_group::<F, 3>(packed, kp, off, xx, zg),
            _ => quadratic_group::<F, 4>(packed, kp, off, xx, zg),
        }
    }
    for (o, &q) in out.iter_mut().zip(z.iter()) {
        *o = q.max(F::zero()).sqrt();
    }
}

/// [`logits_group`] with four register accumulators per block (features
/// taken by their index mod 4, combined as (0 + 2) + (1 + 3)): the long
/// feature vectors of the widths (d(d + 1)/2 entries) need more independent
/// chains than the logits' d.
#[inline(always)]
fn quadratic_group<F: Real, const NB: usize>(
    m: &[F],
    kp: usize,
    off: usize,
    xx: &[F],
    z: &mut [F],
) {
    let w = NB * LANES;
    let mut acc = [[[F::zero(); LANES]; NB]; 4];
    let mut rows = m.chunks_exact(kp);
    let mut xs = xx.chunks_exact(4);
    for xq in &mut xs {
        for (r, &xv) in acc.iter_mut().zip(xq) {
            let Some(row) = rows.next().and_then(|row| row.get(off..off + w)) else {
                return;
            };
            for b in 0..NB {
                for l in 0..LANES {
                    r[b][l] = xv.mul_add(row[b * LANES + l], r[b][l]);
                }
            }
        }
    }
    for (r, &xv) in acc.iter_mut().zip(xs.remainder()) {
        let Some(row) = rows.next().and_then(|row| row.get(off..off + w)) else {
            return;
        };
        for b in 0..NB {
            for l in 0..LANES {
                r[b][l] = xv.mul_add(row[b * LANES + l], r[b][l]);
            }
        }
    }
    for (b, zb) in z.chunks_exact_mut(LANES).enumerate() {
        for l in 0..LANES {
            zb[l] = (acc[0][b][l] + acc[2][b][l]) + (acc[1][b][l] + acc[3][b][l]);
        }
    }
}

/// One point (x, r) added to one action's ridge regression: with M = A⁻¹
/// (symmetric d×d, row-major), u = M x, v = u / √(1 + xᵀu), the
/// Sherman–Morrison update M ← M − v vᵀ (exactly symmetric: v_i v_j is
/// v_j v_i), and θ ← θ + u (r − θ·x) / (1 + xᵀu), which is
/// (M − v vᵀ)(b + r x) for θ = M b. When `packed` is not empty, the new
/// upper triangle is also written into its column `a` (the layout of
/// [`ridge_widths`], rows of kp). Everything is formed in `work` (2d) and
/// checked before anything is written: returns `false`, changing nothing,
/// if an entry would not be finite or a diagonal entry of M would not stay
/// positive.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
pub(crate) fn ridge_update<F: Real>(
    m: &mut [F],
    theta: &mut [F],
    x: &[F],
    r: F,
    work: &mut [F],
    packed: &mut [F],
    kp: usize,
    a: usize,
) -> bool {
    let d = x.len();
    let (u, th_new) = work.split_at_mut(d);
    for (ui, row) in u.iter_mut().zip(m.chunks_exact(d)) {
        *ui = dot(row, x);
    }
    let denom = F::one() + dot(u, x);
    if !(denom.is_finite() && denom >= F::one()) {
        return false;
    }
    let e = (r - dot(theta, x)) / denom;
    for ((t, &to), &ui) in th_new.iter_mut().zip(theta.iter()).zip(u.iter()) {
        *t = ui.mul_add(e, to);
    }
    let s = F::one() / denom.sqrt();
    for ui in u.iter_mut() {
        *ui *= s;
    }
    let v = &*u;
    let mut ok = e.is_finite() && all_finite(th_new) && all_finite(v);
    for (i, &vi) in v.iter().enumerate() {
        ok &= (vi * vi).is_finite() && (-vi).mul_add(vi, m[i * d + i]) > F::zero();
    }
    if !ok {
        return false;
    }
    for (row, &vi) in m.chunks_exact_mut(d).zip(v.iter()) {
        for (mij, &vj) in row.iter_mut().zip(v.iter()) {
            *mij = (-vi).mul_add(vj, *mij);
        }
    }
    if !packed.is_empty() {
        let mut p = 0;
        for (i, row) in m.chunks_exact(d).enumerate() {
            for &mij in &row[i..] {
                packed[p * kp + a] = mij;
                p += 1;
            }
        }
    }
    theta.copy_from_slice(th_new);
    true
}

/// One sweep of soft value iteration over the nf free cells of a grid
/// (docs/ARCHITECTURE.md, "The planner"). With L(c) = (R(c) + γ V(c))/τ
/// (`r`, `v` and the scratch `x` padded to a power of two, which the
/// indices are masked by) and the four moves of cell c leading to
/// `next[m·n4 + c]`, Q(c, m)/τ = L(next), so
///
/// V_new(c) = τ ln Σ_m exp(L(next(c, m))),
/// w[m·n4 + c] = exp(L(next(c, m))) / Σ_m exp(L(next(c, m))),
///
/// the softmax weights the reverse pass needs. The exponentials are taken
/// once per cell, shifted by the sweep's largest L: X(c) = exp(L(c) − M),
/// then V_new(c) = τ (M + ln Σ_m X(next)). A cell whose sum falls below
/// √(smallest normal) — where the shift could have flushed a term that
/// matters — is done again with its own largest neighbour as the shift.
/// The loops run over n4 = `v_new.len()` cells, nf rounded up to a
/// multiple of 4 (the padding cells lead to cell 0 and are ignored), so
/// that they are whole vectors of cells with the crate's branch-free `exp`
/// and `ln`.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
pub(crate) fn soft_sweep<F: Real>(
    next: &[u32],
    r: &[F],
    v: &[F],
    gamma: F,
    tau: F,
    nf: usize,
    x: &mut [F],
    v_new: &mut [F],
    w: &mut [F],
) {
    let n4 = v_new.len() & !(LANES - 1);
    if nf == 0
        || nf > n4
        || x.len() < n4
        || r.len() < n4
        || v.len() < n4
        || next.len() < 4 * n4
        || w.len() < 4 * n4
    {
        return;
    }
    let inv_tau = F::one() / tau;
    let l = &mut x[..n4];
    for ((o, &rc), &vc) in l.iter_mut().zip(&r[..n4]).zip(&v[..n4]) {
        *o = gamma.mul_add(vc, rc) * inv_tau;
    }
    let top = max(&l[..nf]);
    l[nf..].fill(top);
    for o in l.iter_mut() {
        *o = (*o - top).exp_fast();
    }
    let x = &*x;
    let mask = x.len() - 1;
    let (n0, rest) = next.split_at(n4);
    let (n1, rest) = rest.split_at(n4);
    let (n2, n3) = rest.split_at(n4);
    let n3 = &n3[..n4];
    let (w0, rest) = w.split_at_mut(n4);
    let (w1, rest) = rest.split_at_mut(n4);
    let (w2, w3) = rest.split_at_mut(n4);
    let (w3, v_new) = (&mut w3[..n4], &mut v_new[..n4]);
    let small = F::min_positive_value().sqrt();
    let mut redo = false;
    for c in 0..n4 {
        let e0 = x[n0[c] as usize & mask];
        let e1 = x[n1[c] as usize & mask];
        let e2 = x[n2[c] as usize & mask];
        let e3 = x[n3[c] as usize & mask];
        let s = (e0 + e1) + (e2 + e3);
        // A NaN sum is redone too (and stays NaN there).
        redo |= s < small || s.is_nan();
        let inv = F::one() / s;
        v_new[c] = tau * (top + s.ln_fast());
        w0[c] = e0 * inv;
        w1[c] = e1 * inv;
        w2[c] = e2 * inv;
        w3[c] = e3 * inv;
    }
    if redo {
        // Recomputed from R and V: `x` holds the shifted exponentials.
        let q = |c: u32| gamma.mul_add(v[c as usize & mask], r[c as usize & mask]) * inv_tau;
        for c in 0..nf {
            let (n0, n1, n2, n3) = (n0[c], n1[c], n2[c], n3[c]);
            let s = (x[n0 as usize & mask] + x[n1 as usize & mask])
                + (x[n2 as usize & mask] + x[n3 as usize & mask]);
            if s >= small {
                continue;
            }
            let (q0, q1, q2, q3) = (q(n0), q(n1), q(n2), q(n3));
            let m01 = if q1 > q0 { q1 } else { q0 };
            let m23 = if q3 > q2 { q3 } else { q2 };
            let mx = if m23 > m01 { m23 } else { m01 };
            let e = [
                (q0 - mx).exp_fast(),
                (q1 - mx).exp_fast(),
                (q2 - mx).exp_fast(),
                (q3 - mx).exp_fast(),
            ];
            let s = (e[0] + e[1]) + (e[2] + e[3]);
            let inv = F::one() / s;
            v_new[c] = tau * (mx + s.ln_fast());
            w0[c] = e[0] * inv;
            w1[c] = e[1] * inv;
            w2[c] = e[2] * inv;
            w3[c] = e[3] * inv;
        }
    }
}

/// The reverse of [`soft_sweep`]: with the gradient g_V of the sweep's
/// output values, `gw[m·n4 + c] = g_V(c) w[m·n4 + c]` (padded to a power
/// of two), and each free cell t the target of exactly four (cell, move)
/// pairs, listed in `sources[j·n4 + t]` as indices into gw:
/// acc(t) = Σ_j gw[sources], `g_r[t] += acc`, `g_prev[t] = γ acc` — the
/// gradients of the reward map and of the previous sweep's values, as
/// gathers (no two cells write the same entry). The loops run over the
/// n4 = `g_r.len()` cells of the padded layout; the padding cells'
/// entries are ignored by the caller and read by no real cell.
#[inline(always)]
pub(crate) fn soft_sweep_back<F: Real>(
    sources: &[u32],
    g_v: &[F],
    w: &[F],
    gamma: F,
    gw: &mut [F],
    g_r: &mut [F],
    g_prev: &mut [F],
) {
    let n4 = g_r.len() & !(LANES - 1);
    if gw.len() < 4 * n4
        || sources.len() < 4 * n4
        || w.len() < 4 * n4
        || g_v.len() < n4
        || g_prev.len() < n4
    {
        return;
    }
    for (gm, wm) in gw[..4 * n4]
        .chunks_exact_mut(n4)
        .zip(w[..4 * n4].chunks_exact(n4))
    {
        for ((o, &wc), &gv) in gm.iter_mut().zip(wm).zip(&g_v[..n4]) {
            *o = gv * wc;
        }
    }
    let gw = &*gw;
    let mask = gw.len() - 1;
    let (s0, rest) = sources.split_at(n4);
    let (s1, rest) = rest.split_at(n4);
    let (s2, s3) = rest.split_at(n4);
    let (s3, g_r, g_prev) = (&s3[..n4], &mut g_r[..n4], &mut g_prev[..n4]);
    for t in 0..n4 {
        let acc = (gw[s0[t] as usize & mask] + gw[s1[t] as usize & mask])
            + (gw[s2[t] as usize & mask] + gw[s3[t] as usize & mask]);
        g_r[t] += acc;
        g_prev[t] = gamma * acc;
    }
}

/// π = softmax(θ x_i) of every row of `xs` (back to back, d each) into
/// `out` (kp each, padded actions 0), in one call so that the rows run in
/// the vector kernels without a dispatch per row. `false` if a logit
/// overflows (`out` then holds part of the rows).
#[inline(always)]
pub(crate) fn logits_softmax_rows<F: Real>(
    theta_t: &[F],
    bias: &[F],
    xs: &[F],
    out: &mut [F],
) -> bool {
    let kp = bias.len();
    if kp == 0 {
        return true;
    }
    let rows = out.len() / kp;
    let d = xs.len().checked_div(rows).unwrap_or(0);
    let mut ok = true;
    for (x, o) in xs
        .chunks_exact(d.max(1))
        .zip(out.chunks_exact_mut(kp))
        .take(rows)
    {
        ok &= logits_softmax_t(theta_t, bias, x, o).is_some();
    }
    ok
}

/// z = θ x_i of every row of `xs` into `out` (kp each).
#[inline(always)]
pub(crate) fn logits_rows<F: Real>(theta_t: &[F], xs: &[F], out: &mut [F], kp: usize) {
    if kp == 0 {
        return;
    }
    let rows = out.len() / kp;
    let d = xs.len().checked_div(rows).unwrap_or(0);
    for (x, o) in xs
        .chunks_exact(d.max(1))
        .zip(out.chunks_exact_mut(kp))
        .take(rows)
    {
        logits_t(theta_t, x, o);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{RngExt, SeedableRng};

    /// The row-by-row form of [`neg_hessian_rows`]: h updated in place per
    /// row, (a, b) block and j.
    fn neg_hessian_rows_by_row(
        theta_t: &[f64],
        bias: &[f64],
        xs: &[f64],
        cs: &[f64],
        k: usize,
        h: &mut [f64],
    ) {
        let d = xs.len() / cs.len();
        let n = k * d;
        let mut z = vec![0.0; bias.len()];
        for (x, &c) in xs.chunks_exact(d).zip(cs) {
            if c == 0.0 {
                continue;
            }
            logits_t(theta_t, x, &mut z);
            softmax_padded(&mut z, bias).expect("finite");
            for (a, &pa) in z[..k].iter().enumerate() {
                for (b, &pb) in z[..=a].iter().enumerate() {
                    let s = if a == b { pa - pa * pa } else { -(pa * pb) } * c;
                    if s == 0.0 {
                        continue;
                    }
                    for (j, &xj) in x.iter().enumerate() {
                        let sx = s * xj;
                        let at = (a * d + j) * n + b * d;
                        for (hv, &xl) in h[at..at + d].iter_mut().zip(x) {
                            *hv = sx.mul_add(xl, *hv);
                        }
                    }
                }
            }
        }
    }

    /// The blocked kernel gives the row-by-row sums bit for bit: every
    /// shape of block (d below, at and past multiples of 4 and 8), rows
    /// with c = 0 and probabilities that underflow to 0, scratch for one
    /// row, a few, or a full block, over more rows than one block.
    #[test]
    fn blocked_negated_hessian_equals_the_row_by_row_sums_bit_for_bit() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(17);
        for trial in 0..120 {
            let k = rng.random_range(1..13);
            let d = [1, 3, 4, 5, 8, 9, 12, 16, 17][trial % 9];
            let rows = rng.random_range(1..80);
            let kp = padded(k);
            let spread = if trial % 4 == 0 { 400.0 } else { 2.0 };
            let mut theta_t = vec![0.0; kp * d];
            for j in 0..d {
                for a in 0..k {
                    theta_t[j * kp + a] = rng.random_range(-spread..spread);
                }
            }
            let bias: Vec<f64> = (0..kp)
                .map(|a| if a < k { 0.0 } else { f64::NEG_INFINITY })
                .collect();
            let xs: Vec<f64> = (0..rows * d).map(|_| rng.random_range(-1.5..1.5)).collect();
            let cs: Vec<f64> = (0..rows)
                .map(|i| {
                    if i % 7 == 3 {
                        0.0
                    } else {
                        rng.random_range(-2.0..3.0)
                    }
                })
                .collect();
            let n = k * d;
            let mut want = vec![0.0; n * n];
            neg_hessian_rows_by_row(&theta_t, &bias, &xs, &cs, k, &mut want);
            let row = k * (k + 1) / 2 + d;
            for len in [kp + row, kp + 3 * row, neg_hessian_scratch_len(k, kp, d)] {
                let mut got = vec![0.0; n * n];
                let mut scratch = vec![0.0; len];
                assert!(neg_hessian_rows(
                    &theta_t,
                    &bias,
                    &xs,
                    &cs,
                    k,
                    &mut got,
                    &mut scratch
                ));
                let same = got
                    .iter()
                    .zip(&want)
                    .all(|(a, b)| a.to_bits() == b.to_bits());
                assert!(same, "trial {trial} k {k} d {d} rows {rows} scratch {len}");
            }
        }
        let mut h = vec![0.0; 4];
        assert!(!neg_hessian_rows(
            &[0.0; 4],
            &[0.0, 0.0, f64::NEG_INFINITY, f64::NEG_INFINITY],
            &[1.0],
            &[1.0],
            2,
            &mut h,
            &mut [0.0; 4]
        ));
    }
}

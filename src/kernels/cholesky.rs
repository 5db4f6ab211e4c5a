//! Cholesky factorization and solve on contiguous row-major slices.
//!
//! The Newton systems here are K·d wide, a few hundred at most: a plain
//! factorization over contiguous rows is enough and adds no dependency.

use super::portable::dot;
use crate::real::Real;

/// Factors the symmetric positive definite matrix whose lower triangle is
/// in `a` (row-major n×n) as L Lᵀ, overwriting the lower triangle with L.
/// Returns `false`, leaving `a` partly overwritten, if a pivot is not positive.
///
/// Column by column (left-looking): once L_jj is known, the entries
/// `L_ij = (A_ij − L_i,<j · L_j,<j) / L_jj` of the rows below are
/// independent of one another, so their dot products overlap in the CPU
/// instead of waiting on one another along a row. Each entry is the same
/// expression as in a row-by-row factorization, with the same bits.
#[inline(always)]
pub(crate) fn factor<F: Real>(a: &mut [F], n: usize) -> bool {
    if a.len() < n * n {
        return false;
    }
    for j in 0..n {
        let (row_j, below) = a[j * n..].split_at_mut(n);
        let s = row_j[j] - dot(&row_j[..j], &row_j[..j]);
        if !(s > F::zero() && s.is_finite()) {
            return false;
        }
        let ljj = s.sqrt();
        row_j[j] = ljj;
        let lj = &row_j[..j];
        // Four rows at a time share the loads of L_j,<j; each entry's dot
        // product is still `dot`'s, lane for lane.
        let mut rows = below.chunks_exact_mut(4 * n);
        for block in &mut rows {
            let (r0, rest) = block.split_at_mut(n);
            let (r1, rest) = rest.split_at_mut(n);
            let (r2, r3) = rest.split_at_mut(n);
            let d = dot4([&r0[..j], &r1[..j], &r2[..j], &r3[..j]], lj);
            for (row_i, di) in [r0, r1, r2, r3].into_iter().zip(d) {
                row_i[j] = (row_i[j] - di) / ljj;
            }
        }
        for row_i in rows.into_remainder().chunks_exact_mut(n) {
            let s = row_i[j] - dot(&row_i[..j], lj);
            row_i[j] = s / ljj;
        }
    }
    true
}

/// [`dot`] of four vectors with one `b`, each with `dot`'s lanes and
/// order (the same bits as four calls).
#[inline(always)]
fn dot4<F: Real>(a: [&[F]; 4], b: &[F]) -> [F; 4] {
    let n = b.len();
    if a.iter().any(|r| r.len() < n) {
        return a.map(|r| dot(r, b));
    }
    let mut acc = [[F::zero(); 4]; 4];
    let full = n / 4 * 4;
    for c in (0..full).step_by(4) {
        let y = &b[c..c + 4];
        for (acc_r, r) in acc.iter_mut().zip(&a) {
            let x = &r[c..c + 4];
            for l in 0..4 {
                acc_r[l] = x[l].mul_add(y[l], acc_r[l]);
            }
        }
    }
    for c in full..n {
        for (acc_r, r) in acc.iter_mut().zip(&a) {
            acc_r[0] = r[c].mul_add(b[c], acc_r[0]);
        }
    }
    acc.map(|v| (v[0] + v[2]) + (v[1] + v[3]))
}

/// Solves L y = b in place (forward substitution), with L from [`factor`].
pub(crate) fn forward<F: Real>(l: &[F], n: usize, b: &mut [F]) {
    for i in 0..n {
        let row = &l[i * n..i * n + n];
        let s = b[i] - dot(&row[..i], &b[..i]);
        b[i] = s / row[i];
    }
}

/// Solves Lᵀ x = y in place (back substitution), with L from [`factor`].
pub(crate) fn backward<F: Real>(l: &[F], n: usize, b: &mut [F]) {
    for i in (0..n).rev() {
        let xi = b[i] / l[i * n + i];
        b[i] = xi;
        for j in 0..i {
            b[j] -= l[i * n + j] * xi;
        }
    }
}

/// Solves L Lᵀ x = b in place, with L from [`factor`].
#[inline(always)]
pub(crate) fn solve<F: Real>(l: &[F], n: usize, b: &mut [F]) {
    // L y = b.
    for i in 0..n {
        let row = &l[i * n..i * n + n];
        let s = b[i] - dot(&row[..i], &b[..i]);
        b[i] = s / row[i];
    }
    // Lᵀ x = y, by columns of L (rows of Lᵀ) from the bottom.
    for i in (0..n).rev() {
        let xi = b[i] / l[i * n + i];
        b[i] = xi;
        for j in 0..i {
            b[j] -= l[i * n + j] * xi;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn solves_a_small_spd_system() {
        // A = M Mᵀ + I for a fixed M.
        let n = 5;
        let m: Vec<f64> = (0..n * n)
            .map(|i| ((i * 7 % 11) as f64 - 5.0) / 3.0)
            .collect();
        let mut a = vec![0.0; n * n];
        for i in 0..n {
            for j in 0..n {
                a[i * n + j] = (0..n).map(|k| m[i * n + k] * m[j * n + k]).sum::<f64>()
                    + if i == j { 1.0 } else { 0.0 };
            }
        }
        let x_true: Vec<f64> = (0..n).map(|i| i as f64 - 2.0).collect();
        let b: Vec<f64> = (0..n)
            .map(|i| (0..n).map(|j| a[i * n + j] * x_true[j]).sum())
            .collect();
        let mut l = a.clone();
        assert!(factor(&mut l, n));
        let mut x = b.clone();
        solve(&l, n, &mut x);
        for (u, v) in x.iter().zip(&x_true) {
            assert!((u - v).abs() < 1e-12, "{x:?}");
        }
        let mut not_pd = vec![1.0, 0.0, 0.0, -1.0];
        assert!(!factor(&mut not_pd, 2));
    }

    /// The factor, four rows at a time, is bit for bit the row-by-row
    /// left-looking factorization (each entry one `dot`), for every n from
    /// 1 to 40 (all remainders of the blocks).
    #[test]
    fn factor_equals_the_entry_by_entry_form_bit_for_bit() {
        for n in 1..=40usize {
            let m: Vec<f64> = (0..n * n)
                .map(|i| (((i * 7919 + n * 31) % 1013) as f64 / 506.5 - 1.0) * 1.3)
                .collect();
            let mut a = vec![0.0; n * n];
            for i in 0..n {
                for j in 0..=i {
                    a[i * n + j] = (0..n).map(|k| m[i * n + k] * m[j * n + k]).sum::<f64>()
                        + if i == j { 0.5 } else { 0.0 };
                }
            }
            let mut want = a.clone();
            for j in 0..n {
                let s = want[j * n + j] - dot(&want[j * n..j * n + j], &want[j * n..j * n + j]);
                let ljj = s.sqrt();
                want[j * n + j] = ljj;
                for i in j + 1..n {
                    let (head, tail) = want.split_at_mut(i * n);
                    let s = tail[j] - dot(&tail[..j], &head[j * n..j * n + j]);
                    tail[j] = s / ljj;
                }
            }
            let mut got = a.clone();
            assert!(factor(&mut got, n));
            for i in 0..n {
                for j in 0..=i {
                    assert_eq!(
                        got[i * n + j].to_bits(),
                        want[i * n + j].to_bits(),
                        "n {n} ({i}, {j})"
                    );
                }
            }
        }
    }
}

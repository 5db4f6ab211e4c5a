//! Cholesky factorization and solve on contiguous row-major slices.
//!
//! The Newton systems here are K·d wide, a few hundred at most: a plain
//! factorization over contiguous rows is enough and adds no dependency.

use super::portable::dot;
use crate::real::Real;

/// Factors the symmetric positive definite matrix whose lower triangle is
/// in `a` (row-major n×n) as L Lᵀ, overwriting the lower triangle with L.
/// Returns `false`, leaving `a` partly overwritten, if a pivot is not positive.
#[inline(always)]
pub(crate) fn factor<F: Real>(a: &mut [F], n: usize) -> bool {
    if a.len() < n * n {
        return false;
    }
    for i in 0..n {
        let (done, rest) = a.split_at_mut(i * n);
        let row_i = &mut rest[..n];
        for j in 0..i {
            let row_j = &done[j * n..j * n + n];
            let s = row_i[j] - dot(&row_i[..j], &row_j[..j]);
            row_i[j] = s / row_j[j];
        }
        let s = row_i[i] - dot(&row_i[..i], &row_i[..i]);
        if !(s > F::zero() && s.is_finite()) {
            return false;
        }
        row_i[i] = s.sqrt();
    }
    true
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
}

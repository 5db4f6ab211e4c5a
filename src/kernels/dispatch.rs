//! Runtime CPU-feature dispatch for the hot kernels of act and learn.
//!
//! The kernels in `kernels::portable` are plain Rust that the compiler
//! vectorizes. Built for the x86-64 baseline they get 2-lane SSE2 and a
//! library call for each fused multiply-add; compiled a second time with
//! AVX2 and FMA enabled they get 4 lanes and one instruction per
//! multiply-add (see `benches/gradient_step.rs`). This module picks that
//! variant at run time when the CPU has both (the check is a cached atomic
//! load).
//!
//! Results are bit-identical whichever variant runs: the kernels multiply
//! and add with `mul_add`, which is exactly rounded in hardware and in the
//! library alike, Rust never contracts a plain `a * b + c`, and the kernels
//! fix their summation order, so every variant performs the same operations
//! in the same order.
//!
//! This is the one module that uses `unsafe`: calling a
//! `#[target_feature]` function requires it, and is sound because each call
//! is guarded by the matching `is_x86_feature_detected!`.
#![allow(unsafe_code)]

use super::cholesky;
use super::portable as kernels;
use super::portable::Normalizer;
use crate::real::Real;

macro_rules! dispatch {
    ($name:ident, $avx2:ident, ($($arg:ident: $ty:ty),*) -> $ret:ty) => {
        dispatch!(kernels, $name, $avx2, ($($arg: $ty),*) -> $ret);
    };
    ($module:ident, $name:ident, $avx2:ident, ($($arg:ident: $ty:ty),*) -> $ret:ty) => {
        #[cfg(target_arch = "x86_64")]
        #[target_feature(enable = "avx2,fma")]
        #[allow(clippy::too_many_arguments)]
        fn $avx2<F: Real>($($arg: $ty),*) -> $ret {
            $module::$name($($arg),*)
        }

        #[inline]
        #[allow(clippy::too_many_arguments)]
        pub(crate) fn $name<F: Real>($($arg: $ty),*) -> $ret {
            #[cfg(target_arch = "x86_64")]
            {
                if std::arch::is_x86_feature_detected!("avx2")
                    && std::arch::is_x86_feature_detected!("fma")
                {
                    // SAFETY: the CPU supports AVX2 and FMA, checked just above.
                    return unsafe { $avx2($($arg),*) };
                }
            }
            $module::$name($($arg),*)
        }
    };
}

dispatch!(logits_softmax_t, logits_softmax_t_avx2,
    (theta_t: &[F], bias: &[F], x: &[F], out: &mut [F]) -> Option<Normalizer<F>>);
dispatch!(logits_t, logits_t_avx2, (theta_t: &[F], x: &[F], out: &mut [F]) -> ());
dispatch!(softmax_padded, softmax_padded_avx2, (z: &mut [F], bias: &[F]) -> Option<Normalizer<F>>);
dispatch!(softmax_in_place, softmax_in_place_avx2, (z: &mut [F]) -> Option<Normalizer<F>>);
dispatch!(add_scaled_score_t, add_scaled_score_t_avx2,
    (theta_t: &mut [F], x: &[F], probs: &[F], action: usize, scale: F, coef: &mut [F]) -> ());
dispatch!(cholesky, factor, factor_avx2, (a: &mut [F], n: usize) -> bool);
dispatch!(cholesky, solve, solve_avx2, (l: &[F], n: usize, b: &mut [F]) -> ());
dispatch!(loglik_pass, loglik_pass_avx2,
    (theta_t: &[F], bias: &[F], xs: &[F], ws: &[F], cs: &[F], grad_t: &mut [F],
     probs: Option<&mut [F]>, z: &mut [F], r: &mut [F]) -> Option<F>);
dispatch!(neg_hessian_rows, neg_hessian_rows_avx2,
    (theta_t: &[F], bias: &[F], xs: &[F], cs: &[F], k: usize, h: &mut [F], scratch: &mut [F]) -> bool);
dispatch!(neg_hess_vec_pass, neg_hess_vec_pass_avx2,
    (v_t: &[F], xs: &[F], cs: &[F], probs: &[F], out_t: &mut [F], u: &mut [F]) -> ());
dispatch!(soft_sweep, soft_sweep_avx2,
    (next: &[u32], r: &[F], v: &[F], gamma: F, tau: F, nf: usize, x: &mut [F], v_new: &mut [F],
     w: &mut [F]) -> ());
dispatch!(soft_sweep_back, soft_sweep_back_avx2,
    (sources: &[u32], g_v: &[F], w: &[F], gamma: F, gw: &mut [F], g_r: &mut [F], g_prev: &mut [F]) -> ());
dispatch!(logits_softmax_rows, logits_softmax_rows_avx2,
    (theta_t: &[F], bias: &[F], xs: &[F], out: &mut [F]) -> bool);
dispatch!(logits_rows, logits_rows_avx2, (theta_t: &[F], xs: &[F], out: &mut [F], kp: usize) -> ());
dispatch!(add_outer_batch_t, add_outer_batch_t_avx2,
    (theta_t: &mut [F], xs: &[F], cs: &[F], kp: usize) -> ());
dispatch!(tabular_softmax, tabular_softmax_avx2, (theta: &[F], p: &mut [F]) -> Option<(F, F)>);
dispatch!(tabular_loglik, tabular_loglik_avx2,
    (w: &[F], s: F, lambda: F, theta: &[F], p: &[F], m: F, ln_z: F, g: &mut [F]) -> Option<F>);
dispatch!(tabular_newton_step, tabular_newton_step_avx2,
    (g: &[F], p: &[F], s: F, lambda: F, step: &mut [F], inv: &mut [F]) -> F);
dispatch!(gram_product, gram_product_avx2,
    (c: &[F], z: &[F], n: usize, nq: usize, tp: usize, q_start: usize, g: &mut [F]) -> ());
dispatch!(ridge_means, ridge_means_avx2, (theta: &[F], x: &[F], out: &mut [F]) -> ());
dispatch!(ridge_widths, ridge_widths_avx2,
    (packed: &[F], x: &[F], xx: &mut [F], z: &mut [F], out: &mut [F]) -> ());
dispatch!(ridge_update, ridge_update_avx2,
    (m: &mut [F], theta: &mut [F], x: &[F], r: F, work: &mut [F], packed: &mut [F], kp: usize,
     a: usize) -> bool);

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{RngExt, SeedableRng};

    /// Every variant gives the same bits as the portable kernel.
    #[test]
    fn dispatched_kernels_equal_the_portable_ones_bit_for_bit() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(5);
        for _ in 0..200 {
            let k = rng.random_range(1..40);
            let kp = kernels::padded(k);
            let d = rng.random_range(1..20);
            let bias: Vec<f64> = (0..kp)
                .map(|a| if a < k { 0.0 } else { f64::NEG_INFINITY })
                .collect();
            let theta: Vec<f64> = (0..kp * d)
                .map(|i| {
                    if i % kp < k {
                        rng.random_range(-30.0..30.0)
                    } else {
                        0.0
                    }
                })
                .collect();
            let x: Vec<f64> = (0..d).map(|_| rng.random_range(-3.0..3.0)).collect();
            let (mut a, mut b) = (vec![0.0; kp], vec![0.0; kp]);
            let na = logits_softmax_t(&theta, &bias, &x, &mut a);
            let nb = kernels::logits_softmax_t(&theta, &bias, &x, &mut b);
            assert_eq!(na, nb);
            assert_eq!(a, b);
            let (mut ta, mut tb) = (theta.clone(), theta.clone());
            let (mut ca, mut cb) = (vec![0.0; kp], vec![0.0; kp]);
            let action = rng.random_range(0..k);
            add_scaled_score_t(&mut ta, &x, &a, action, 0.37, &mut ca);
            kernels::add_scaled_score_t(&mut tb, &x, &b, action, 0.37, &mut cb);
            assert_eq!(ta, tb);
            let mut za: Vec<f64> = (0..k).map(|_| rng.random_range(-50.0..50.0)).collect();
            let mut zb = za.clone();
            assert_eq!(
                softmax_in_place(&mut za),
                kernels::softmax_in_place(&mut zb)
            );
            assert_eq!(za, zb);
            let t32: Vec<f32> = theta.iter().map(|v| *v as f32).collect();
            let b32: Vec<f32> = bias.iter().map(|v| *v as f32).collect();
            let x32: Vec<f32> = x.iter().map(|v| *v as f32).collect();
            let (mut p32, mut q32) = (vec![0.0f32; kp], vec![0.0f32; kp]);
            assert_eq!(
                logits_softmax_t(&t32, &b32, &x32, &mut p32),
                kernels::logits_softmax_t(&t32, &b32, &x32, &mut q32)
            );
            assert_eq!(p32, q32);
            // The batched pass, over a number of rows that leaves a partial batch.
            let rows = rng.random_range(1..3 * kernels::BATCH + 3);
            let xs: Vec<f64> = (0..rows * d).map(|_| rng.random_range(-2.0..2.0)).collect();
            let ws: Vec<f64> = (0..rows * kp)
                .map(|i| {
                    if i % kp < k {
                        rng.random_range(0.0..2.0)
                    } else {
                        0.0
                    }
                })
                .collect();
            let cs: Vec<f64> = ws.chunks(kp).map(|w| w.iter().sum()).collect();
            let theta_small: Vec<f64> = theta.iter().map(|t| t / 30.0).collect();
            let (mut ga, mut gb) = (vec![0.5; kp * d], vec![0.5; kp * d]);
            let (mut pa, mut pb) = (vec![0.0; rows * kp], vec![0.0; rows * kp]);
            let mut z = vec![0.0; kernels::BATCH * kp];
            let mut r = z.clone();
            let va = loglik_pass(
                &theta_small,
                &bias,
                &xs,
                &ws,
                &cs,
                &mut ga,
                Some(&mut pa),
                &mut z,
                &mut r,
            );
            let vb = kernels::loglik_pass(
                &theta_small,
                &bias,
                &xs,
                &ws,
                &cs,
                &mut gb,
                Some(&mut pb),
                &mut z,
                &mut r,
            );
            assert!(va.is_some());
            assert_eq!(va.map(f64::to_bits), vb.map(f64::to_bits));
            assert_eq!(ga, gb);
            assert_eq!(pa, pb);
            // The pass equals the same sums taken one row at a time.
            let mut gc = vec![0.5; kp * d];
            let mut vc = 0.0;
            for ((x, w), &c) in xs.chunks(d).zip(ws.chunks(kp)).zip(&cs) {
                let mut zz = vec![0.0; kp];
                kernels::logits_t(&theta_small, x, &mut zz);
                let wz = kernels::dot(w, &zz);
                let norm = kernels::softmax_padded(&mut zz, &bias).expect("finite");
                vc += wz - c * norm.log_partition();
                let rr: Vec<f64> = w.iter().zip(&zz).map(|(wa, pa)| wa - c * pa).collect();
                kernels::add_outer_t(&mut gc, x, &rr);
            }
            assert_eq!(va.map(f64::to_bits), Some(vc.to_bits()));
            assert_eq!(ga, gc);
            // The dense negated Hessian of the same rows.
            let nh = k * d;
            let (mut ha, mut hb) = (vec![0.0; nh * nh], vec![0.0; nh * nh]);
            let mut zz = vec![0.0; kernels::neg_hessian_scratch_len(k, kp, d)];
            assert!(neg_hessian_rows(
                &theta_small,
                &bias,
                &xs,
                &cs,
                k,
                &mut ha,
                &mut zz
            ));
            assert!(kernels::neg_hessian_rows(
                &theta_small,
                &bias,
                &xs,
                &cs,
                k,
                &mut hb,
                &mut zz
            ));
            assert_eq!(ha, hb);
            // Cholesky: dispatched and portable factor and solve agree.
            let n = d + 2;
            let m: Vec<f64> = (0..n * n).map(|_| rng.random_range(-1.0..1.0)).collect();
            let mut spd = vec![0.0; n * n];
            for i in 0..n {
                for j in 0..n {
                    spd[i * n + j] = (0..n).map(|l| m[i * n + l] * m[j * n + l]).sum::<f64>()
                        + if i == j { 0.5 } else { 0.0 };
                }
            }
            let (mut la, mut lb) = (spd.clone(), spd.clone());
            assert!(factor(&mut la, n) && cholesky::factor(&mut lb, n));
            assert_eq!(la, lb);
            let mut xa: Vec<f64> = (0..n).map(|i| i as f64 - 1.5).collect();
            let mut xb = xa.clone();
            solve(&la, n, &mut xa);
            cholesky::solve(&lb, n, &mut xb);
            assert_eq!(xa, xb);
            // The ridge kernels: means, widths and an update of one block.
            let (mut ma, mut mb) = (vec![0.0; k], vec![0.0; k]);
            let th: Vec<f64> = theta[..k * d].to_vec();
            ridge_means(&th, &x, &mut ma);
            kernels::ridge_means(&th, &x, &mut mb);
            assert_eq!(ma, mb);
            // K copies of the packed upper triangle of the leading d×d block
            // of the (d+2)×(d+2) SPD matrix, side by side.
            let tri = d * (d + 1) / 2;
            let mut packed = vec![0.0; tri * kp];
            let mut p = 0;
            for i in 0..d {
                for j in i..d {
                    for a in 0..k {
                        packed[p * kp + a] = spd[i * n + j];
                    }
                    p += 1;
                }
            }
            let (mut xx, mut z) = (vec![0.0; tri], vec![0.0; kp]);
            ridge_widths(&packed, &x, &mut xx, &mut z, &mut ma);
            kernels::ridge_widths(&packed, &x, &mut xx, &mut z, &mut mb);
            assert_eq!(ma, mb);
            let (mut p1, mut p2) = (packed.clone(), packed.clone());
            let block: Vec<f64> = (0..d)
                .flat_map(|i| spd[i * n..i * n + d].to_vec())
                .collect();
            let (mut m1, mut m2) = (block.clone(), block);
            let (mut t1, mut t2) = (x.clone(), x.clone());
            let mut w = vec![0.0; 2 * d];
            let a = rng.random_range(0..k);
            assert_eq!(
                ridge_update(&mut m1, &mut t1, &x, 0.7, &mut w, &mut p1, kp, a),
                kernels::ridge_update(&mut m2, &mut t2, &x, 0.7, &mut w, &mut p2, kp, a)
            );
            assert_eq!((m1, t1), (m2, t2));
            assert_eq!(p1, p2);
        }
    }
}

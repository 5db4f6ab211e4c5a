//! The numeric kernels and their CPU dispatch, in one place: policies,
//! objectives and solvers call them; they call nothing of the crate but
//! [`crate::real`] (docs/ARCHITECTURE.md, "Kernels").
//!
//! * `portable`: plain-Rust slice kernels (padded softmax layout, fused
//!   multiply-adds in a fixed order);
//! * `cholesky`: the dense factorization and solve of the Newton systems;
//! * `dispatch`: one AVX2+FMA variant of each hot kernel, chosen at run
//!   time, bit-identical to the portable one. The crate's only `unsafe`.

pub(crate) mod cholesky;
mod dispatch;
mod portable;

pub(crate) use dispatch::{
    add_outer_batch_t, add_scaled_score_t, factor, gram_product, logits_rows, logits_softmax_rows,
    logits_softmax_t, logits_t, loglik_pass, neg_hess_vec_pass, neg_hessian_rows, ridge_means,
    ridge_update, ridge_widths, soft_sweep, soft_sweep_back, softmax_in_place, softmax_padded,
    solve, tabular_loglik, tabular_newton_step, tabular_softmax,
};
pub use portable::Normalizer;
pub(crate) use portable::{
    BATCH, LANES, all_finite, dot_plain, hessian_vector, max, neg_hessian_scratch_len, padded,
    sample, score,
};

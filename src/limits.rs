//! The documented size limits, and the checked arithmetic that enforces them.
//!
//! Every size the crate computes from a caller's input (a number of
//! actions, a context length, their product, a number of steps, seeds or
//! bootstrap replicates, the columns of a log file, the dimension a dense
//! Newton solve factors) is checked against one of these limits where it
//! enters the public API, with arithmetic that cannot wrap. A size over its
//! limit is [`Error::TooLarge`], which names the quantity, the value and the
//! limit; the check happens once, at construction or at the call's boundary,
//! never per element. A buffer whose size comes from the caller is allocated
//! fallibly: when the allocator refuses it, the call returns
//! [`Error::Allocation`] instead of aborting the process.
//!
//! The limits are far above what any experiment the crate is built for
//! needs, and low enough that a buffer at the limit fits in memory and is
//! filled in well under a second: the largest parameter vector is 2²⁶
//! numbers (512 MiB of `f64`), the largest dense Hessian 2048² (32 MiB).
//!
//! ```
//! use refit::policy::LinearSoftmax;
//! use refit::{Error, limits};
//! match LinearSoftmax::<f64>::new(limits::MAX_ACTIONS + 1, 1) {
//!     Err(Error::TooLarge { quantity, value, limit }) => {
//!         assert_eq!(quantity, "number of actions K");
//!         assert_eq!(value, limits::MAX_ACTIONS as u128 + 1);
//!         assert_eq!(limit, limits::MAX_ACTIONS);
//!     }
//!     other => panic!("{other:?}"),
//! }
//! ```

use crate::error::{Error, Result};

/// Largest number of actions K of a policy, a learner, a dataset or an environment.
pub const MAX_ACTIONS: usize = 1 << 24;

/// Largest context length d (for [`crate::policy::ActionFeatures`], the
/// number of features per action p, and the whole context K·p).
pub const MAX_CONTEXT_DIM: usize = 1 << 24;

/// Largest number of parameters of a policy (K·d for the linear softmax,
/// with K rounded up to the kernels' lane width).
pub const MAX_PARAMETERS: usize = 1 << 26;

/// Largest dimension a dense Newton solve ([`crate::solve::Method::Newton`])
/// forms and factors a Hessian in: its n² matrix and n³/3 factorization.
/// Larger problems are solved Hessian-free ([`crate::solve::Method::NewtonCg`],
/// [`crate::solve::Method::Auto`]).
pub const MAX_NEWTON_DIM: usize = 2048;

/// Largest number of steps of a run ([`crate::run::Runner`]): its per-step
/// traces hold a few numbers per step and seed group.
pub const MAX_STEPS: usize = 1 << 24;

/// Largest number of seeds of a run.
pub const MAX_SEEDS: usize = 1 << 20;

/// Largest number of bootstrap replicates of an off-policy evaluation
/// ([`crate::ope::OpeOptions::bootstrap`]).
pub const MAX_BOOTSTRAP: usize = 1 << 20;

/// Largest number of columns of a log file ([`crate::history::History::read_csv`]):
/// the context's d plus a, r and p.
pub const MAX_CSV_COLUMNS: usize = MAX_CONTEXT_DIM + 3;

/// `value` if it is at most `limit`, else [`Error::TooLarge`].
pub(crate) fn at_most(quantity: &'static str, value: usize, limit: usize) -> Result<usize> {
    if value <= limit {
        Ok(value)
    } else {
        Err(Error::TooLarge {
            quantity,
            value: value as u128,
            limit,
        })
    }
}

/// `a · b` if it is at most `limit` (computed without wrapping), else
/// [`Error::TooLarge`] with the exact product.
pub(crate) fn product(quantity: &'static str, a: usize, b: usize, limit: usize) -> Result<usize> {
    let value = a as u128 * b as u128;
    if value <= limit as u128 {
        Ok(value as usize)
    } else {
        Err(Error::TooLarge {
            quantity,
            value,
            limit,
        })
    }
}

/// A vector of `n` copies of `value`, or [`Error::Allocation`] (for
/// `quantity`) if the allocator refuses it: a size from user input must
/// not abort the process.
pub(crate) fn try_filled<T: Clone>(n: usize, value: T, quantity: &'static str) -> Result<Vec<T>> {
    let mut v = Vec::new();
    try_reserve(&mut v, n, quantity)?;
    v.resize(n, value);
    Ok(v)
}

/// Reserves room for `additional` more elements in `v`, or
/// [`Error::Allocation`] (for `quantity`).
pub(crate) fn try_reserve<T>(
    v: &mut Vec<T>,
    additional: usize,
    quantity: &'static str,
) -> Result<()> {
    v.try_reserve_exact(additional)
        .map_err(|_| Error::Allocation {
            quantity,
            bytes: additional as u128 * std::mem::size_of::<T>() as u128,
        })
}

/// Checks a number of actions against [`MAX_ACTIONS`].
pub(crate) fn actions(k: usize) -> Result<usize> {
    at_most("number of actions K", k, MAX_ACTIONS)
}

/// Checks a context length against [`MAX_CONTEXT_DIM`].
pub(crate) fn context_dim(d: usize) -> Result<usize> {
    at_most("context length d", d, MAX_CONTEXT_DIM)
}

/// K·d (K already rounded up to the lane width if the layout pads it),
/// checked against [`MAX_PARAMETERS`].
pub(crate) fn parameters(k: usize, d: usize) -> Result<usize> {
    product("number of parameters K·d", k, d, MAX_PARAMETERS)
}

/// The n² entries of a dense Hessian, for n at most [`MAX_NEWTON_DIM`].
pub(crate) fn newton_dim(n: usize) -> Result<usize> {
    at_most("dense Newton dimension", n, MAX_NEWTON_DIM)?;
    Ok(n * n)
}

/// Makes room for `v` to hold `len` elements in all, or [`Error::Allocation`].
pub(crate) fn try_reserve_to<T>(v: &mut Vec<T>, len: usize, quantity: &'static str) -> Result<()> {
    let more = len.saturating_sub(v.len());
    try_reserve(v, more, quantity)
}

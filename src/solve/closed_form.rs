//! The λ = 0 optimum in closed form, for tabular data.

use super::{Report, StopReason};
use crate::error::{Error, Result};
use crate::objective::Dataset;
use crate::real::Real;

/// The maximizer of Σ_s w_s log π(a_s) over all distributions π, when every
/// context is the same: π*(a) = R_a / Σ_b R_b with R_a = Σ_{s: a_s = a} w_s.
/// Actions with R_a = 0 get probability 0. With no weight at all (Σ R = 0)
/// every π is optimal and the uniform one is returned.
///
/// The report has `stop = ClosedForm`, gradient norm 0 (the optimality
/// condition holds exactly) and value Σ_a R_a ln π*(a) (with 0 ln 0 = 0).
///
/// # Errors
/// [`Error::InvalidLambda`] (with value 0) if the contexts differ: λ = 0 has
/// no closed form, and no maximizer in general, outside the tabular case.
pub fn closed_form<F: Real>(data: &Dataset<F>) -> Result<(Vec<F>, Report<F>)> {
    if !data.is_tabular() {
        return Err(Error::InvalidLambda { value: 0.0 });
    }
    let r = data.action_weights();
    let k = r.len();
    let total: F = r.iter().copied().sum();
    let probs: Vec<F> = if total > F::zero() {
        r.iter().map(|&ra| ra / total).collect()
    } else {
        vec![F::one() / F::c(k as f64); k]
    };
    let value = r
        .iter()
        .zip(&probs)
        .filter(|(ra, _)| **ra > F::zero())
        .map(|(&ra, &p)| ra * p.ln())
        .sum();
    Ok((
        probs,
        Report {
            iterations: 0,
            passes: 1,
            grad_norm: F::zero(),
            threshold: F::zero(),
            value,
            stop: StopReason::ClosedForm,
        },
    ))
}

//! Arrays of arbitrary numbers and shapes through `fit_arrays` and
//! `ope::evaluate`: a typed error or finite, converged results.
#![no_main]
use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use refit::solve::{Options, fit_arrays};

#[derive(Debug, Arbitrary)]
struct Input {
    rows: u8,
    d: u8,
    k: u8,
    lambda: f64,
    values: Vec<f64>,
    actions: Vec<u8>,
    weights: Vec<f64>,
    propensities: Vec<f64>,
    bootstrap: u16,
}

fuzz_target!(|input: Input| {
    let (n, d) = (usize::from(input.rows % 16), usize::from(input.d % 5));
    let k = usize::from(input.k % 6);
    let mut values = input.values;
    values.resize(n * d, 0.5);
    let Ok(x) = ndarray::Array2::from_shape_vec((n, d), values) else {
        return;
    };
    let actions: Vec<usize> = input.actions.iter().map(|&a| usize::from(a % 8)).collect();
    let options = Options::default();
    if let Ok(f) = fit_arrays(
        x.view(),
        &actions,
        &input.weights,
        k,
        input.lambda,
        &options,
        None,
    ) {
        assert!(input.lambda == 0.0 || f.theta.iter().all(|v| v.is_finite()));
    }
    if let Ok(logs) = refit::history::History::from_arrays(
        x.view(),
        &actions,
        &input.weights,
        &input.propensities,
        k,
    ) {
        if let Ok(pi) = refit::policy::LinearSoftmax::<f64>::new(k, d) {
            let ope = refit::ope::OpeOptions {
                bootstrap: usize::from(input.bootstrap % 64),
                ..refit::ope::OpeOptions::default()
            };
            if let Ok(e) = refit::ope::evaluate(&pi, &logs, &ope) {
                assert!(e.ips.value.is_finite() && e.dr.value.is_finite());
            }
        }
    }
});

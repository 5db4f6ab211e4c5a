//! Probabilities stay finite and sum to 1 for extreme logits, in f32 and f64.

use proptest::prelude::*;
use refit::policy::softmax_in_place;

proptest! {
    #[test]
    fn f64_probabilities_sum_to_one(z in prop::collection::vec(-1e4f64..1e4, 1..64)) {
        let mut p = z.clone();
        let norm = softmax_in_place(&mut p);
        prop_assert!(norm.is_some());
        prop_assert!(p.iter().all(|v| v.is_finite() && *v >= 0.0 && *v <= 1.0));
        let s: f64 = p.iter().sum();
        prop_assert!((s - 1.0).abs() <= 4.0 * p.len() as f64 * f64::EPSILON, "sum {}", s);
        // The largest logit's action gets the largest probability.
        let (imax, _) = z.iter().enumerate().fold((0, f64::NEG_INFINITY), |b, (i, &v)| if v > b.1 { (i, v) } else { b });
        prop_assert!(p.iter().all(|&v| v <= p[imax]));
    }

    #[test]
    fn f32_probabilities_sum_to_one(z in prop::collection::vec(-1e4f32..1e4, 1..64)) {
        let mut p = z.clone();
        prop_assert!(softmax_in_place(&mut p).is_some());
        prop_assert!(p.iter().all(|v| v.is_finite() && *v >= 0.0 && *v <= 1.0));
        let s: f32 = p.iter().sum();
        prop_assert!((s - 1.0).abs() <= 4.0 * p.len() as f32 * f32::EPSILON, "sum {}", s);
    }

    #[test]
    fn log_partition_matches_a_direct_sum(z in prop::collection::vec(-30.0f64..30.0, 1..32)) {
        let mut p = z.clone();
        let norm = softmax_in_place(&mut p).expect("finite");
        let direct = z.iter().map(|v| v.exp()).sum::<f64>().ln();
        prop_assert!((norm.log_partition() - direct).abs() <= 1e-12 * (1.0 + direct.abs()));
    }
}

#[test]
fn non_finite_logits_are_refused() {
    for bad in [f64::NAN, f64::INFINITY] {
        let mut z = vec![0.0, bad, 1.0];
        assert!(softmax_in_place(&mut z).is_none(), "{bad}");
    }
    // -inf is the limit of an impossible action: probability 0, unless every logit is -inf.
    let mut z = vec![0.0, f64::NEG_INFINITY, 0.0];
    softmax_in_place(&mut z).expect("finite max");
    assert_eq!(z, vec![0.5, 0.0, 0.5]);
    let mut z = vec![f64::NEG_INFINITY; 3];
    assert!(softmax_in_place(&mut z).is_none());
    let mut extreme = vec![1e4f64, -1e4, 1e4];
    softmax_in_place(&mut extreme).expect("finite");
    assert_eq!(extreme, vec![0.5, 0.0, 0.5]);
}

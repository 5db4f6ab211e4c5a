//! `History::read_csv` on arbitrary bytes: a typed error or logs that pass
//! their own checks, never a panic.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let path = std::env::temp_dir().join(format!("refit-fuzz-{}.csv", std::process::id()));
    if std::fs::write(&path, data).is_err() {
        return;
    }
    let k = 1 + usize::from(data.first().copied().unwrap_or(0) % 8);
    if let Ok(logs) = refit::history::History::<f64>::read_csv(&path, k) {
        for it in logs.iter() {
            assert!(it.action < k);
            assert!(it.propensity > 0.0 && it.propensity <= 1.0);
            assert!(it.reward.is_finite() && it.context.iter().all(|v| v.is_finite()));
        }
    }
});

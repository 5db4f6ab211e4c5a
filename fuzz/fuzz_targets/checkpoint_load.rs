//! `checkpoint::load` on arbitrary payloads sealed with a correct checksum,
//! so the fuzzer reaches the decoder and the checks behind it: a typed
//! error or a session that validates, saves and loads again.
#![no_main]
use libfuzzer_sys::fuzz_target;
use refit::env::{Bernoulli, LinearContextual};
use refit::learner::{Incremental, Refit};
use refit::policy::Tabular;
use refit::session::Session;

fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

fn check<S: Fn(&[u8]) -> Option<Vec<u8>>>(sealed: &[u8], round_trip: S) {
    if let Some(again) = round_trip(sealed) {
        assert!(round_trip(&again).is_some(), "a saved session did not load");
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(payload) = std::str::from_utf8(data) else {
        return;
    };
    let sealed = format!(
        "{{\"format\":\"refit-checkpoint\",\"version\":2,\"checksum\":\"{:016x}\",\"payload\":{payload}}}",
        fnv1a(payload.as_bytes())
    );
    check(sealed.as_bytes(), |b| {
        let s: Session<f64, LinearContextual<f64>, Refit<f64>> = refit::checkpoint::load(b).ok()?;
        s.validate().expect("a loaded session validates");
        Some(refit::checkpoint::save(&s).expect("a loaded session saves"))
    });
    check(sealed.as_bytes(), |b| {
        let s: Session<f64, Bernoulli<f64>, Incremental<f64, Tabular<f64>>> =
            refit::checkpoint::load(b).ok()?;
        s.validate().expect("a loaded session validates");
        Some(refit::checkpoint::save(&s).expect("a loaded session saves"))
    });
});

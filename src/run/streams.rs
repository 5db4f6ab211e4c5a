//! The two random streams of a seed.

use rand::SeedableRng;
/// The generator of the runner's streams, re-exported so that callers can
/// name it in environment factories without depending on `rand_chacha`.
pub use rand_chacha::ChaCha8Rng;

/// The environment's random stream for `seed` (ChaCha8, stream 0).
pub fn env_rng(seed: u64) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(0);
    rng
}

/// The learner's random stream for `seed` (ChaCha8, stream 1).
pub fn learner_rng(seed: u64) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(1);
    rng
}

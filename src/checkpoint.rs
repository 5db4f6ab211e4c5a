//! Checkpoints (feature `serde`): save a [`Session`] — learner, environment,
//! both random streams, the step counter — and resume it later, bit for bit.
//!
//! The format is JSON with a header:
//! `{"format":"refit-checkpoint","version":2,"checksum":"…","payload":…}`.
//! The checksum (64-bit FNV-1a of the payload's text, in hex) catches
//! corruption; floats are written so that they read back exactly. Reading
//! checks the format, the version, the checksum, and then the invariants of
//! what was read ([`Session::validate`]): a truncated, corrupted or
//! inconsistent checkpoint, or one of an unknown version, is an
//! [`Error::Checkpoint`], never a panic.
//!
//! # Examples
//! ```
//! use refit::checkpoint;
//! use refit::env::Bernoulli;
//! use refit::learner::{Baseline, Incremental, StepSize};
//! use refit::policy::Tabular;
//! use refit::session::Session;
//! let make = || Session::new(
//!     3,
//!     |_| Bernoulli::new(vec![0.3f64, 0.6]),
//!     || Incremental::tabular(2, StepSize::Constant(0.1), Baseline::RunningMean),
//! );
//! let mut a = make()?;
//! for _ in 0..10 { a.step()?; }
//! let bytes = checkpoint::save(&a)?;
//! let mut b: Session<f64, Bernoulli<f64>, Incremental<f64, Tabular<f64>>> = checkpoint::load(&bytes)?;
//! assert_eq!(a.step()?, b.step()?);
//! # Ok::<(), refit::Error>(())
//! ```

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::value::RawValue;

use crate::env::Environment;
use crate::error::{CheckpointProblem, Error, Result};
use crate::learner::Learner;
use crate::real::Real;
use crate::session::Session;

/// The format name in the header.
pub const FORMAT: &str = "refit-checkpoint";

/// The format version this build writes and reads.
pub const VERSION: u64 = 2;

#[derive(serde::Deserialize)]
struct Header<'a> {
    format: String,
    version: u64,
    checksum: String,
    #[serde(borrow)]
    payload: &'a RawValue,
}

/// 64-bit FNV-1a.
pub(crate) fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

fn problem(problem: CheckpointProblem) -> Error {
    Error::Checkpoint { problem }
}

fn corrupted(e: &serde_json::Error) -> Error {
    if e.is_eof() {
        problem(CheckpointProblem::Truncated)
    } else {
        problem(CheckpointProblem::Corrupted {
            what: e.to_string(),
        })
    }
}

/// Writes a session as a checkpoint. What it writes always loads: the
/// session is validated first ([`Session::validate`]) and the bytes are
/// read back by [`load`] before they are returned.
///
/// # Errors
/// [`Error::Checkpoint`] if the session is inconsistent or does not read
/// back (a value JSON cannot hold, such as a non-finite float in a user's
/// own learner); nothing is returned then.
pub fn save<F, E, L>(session: &Session<F, E, L>) -> Result<Vec<u8>>
where
    F: Real + Serialize + DeserializeOwned,
    E: Environment<F> + Serialize + DeserializeOwned,
    L: Learner<F> + Serialize + DeserializeOwned,
{
    session.validate()?;
    let payload = serde_json::to_string(session).map_err(|e| corrupted(&e))?;
    let mut out = format!(
        "{{\"format\":\"{FORMAT}\",\"version\":{VERSION},\"checksum\":\"{:016x}\",\"payload\":",
        fnv1a(payload.as_bytes())
    );
    out.push_str(&payload);
    out.push('}');
    let bytes = out.into_bytes();
    load::<F, E, L>(&bytes)?;
    Ok(bytes)
}

/// [`save`] to a file, atomically: the checkpoint is written to a
/// temporary file in the same directory, flushed to disk (`fsync`) and
/// renamed over `path`, so `path` holds either the old file or the whole
/// new one, never a torn write.
///
/// # Errors
/// As [`save`]; [`Error::File`] naming the path if it cannot be written.
pub fn save_to_path<F, E, L>(
    session: &Session<F, E, L>,
    path: impl AsRef<std::path::Path>,
) -> Result<()>
where
    F: Real + Serialize + DeserializeOwned,
    E: Environment<F> + Serialize + DeserializeOwned,
    L: Learner<F> + Serialize + DeserializeOwned,
{
    let bytes = save(session)?;
    write_atomically(path.as_ref(), &bytes)
}

/// [`load`] from a file.
///
/// # Errors
/// [`Error::File`] naming the path if it cannot be read; as [`load`].
pub fn load_from_path<F, E, L>(path: impl AsRef<std::path::Path>) -> Result<Session<F, E, L>>
where
    F: Real + DeserializeOwned,
    E: Environment<F> + DeserializeOwned,
    L: Learner<F> + DeserializeOwned,
{
    let path = path.as_ref();
    let bytes = std::fs::read(path).map_err(|e| Error::File {
        path: path.display().to_string(),
        message: e.to_string(),
    })?;
    load(&bytes)
}

/// Writes `bytes` to `path` through a temporary file in the same directory,
/// `fsync` and a rename ([`crate::files::write_atomic`]).
pub(crate) fn write_atomically(path: &std::path::Path, bytes: &[u8]) -> Result<()> {
    crate::files::write_atomic(path, bytes)
}

/// Reads a session from a checkpoint written by [`save`].
///
/// # Errors
/// [`Error::Checkpoint`]: [`CheckpointProblem::NotACheckpoint`],
/// [`CheckpointProblem::UnknownVersion`], [`CheckpointProblem::Truncated`],
/// [`CheckpointProblem::Corrupted`] (bad checksum or malformed content) or
/// [`CheckpointProblem::Inconsistent`] (parts that do not fit together).
pub fn load<F, E, L>(bytes: &[u8]) -> Result<Session<F, E, L>>
where
    F: Real + DeserializeOwned,
    E: Environment<F> + DeserializeOwned,
    L: Learner<F> + DeserializeOwned,
{
    let header: Header<'_> = serde_json::from_slice(bytes).map_err(|e| {
        // A checkpoint ends with the '}' that closes it: one cut short
        // inside a number ("1.5e") is a syntax error to the parser, but it
        // is still a truncated file.
        let closed = bytes.trim_ascii_end().ends_with(b"}");
        if e.is_eof() || (e.is_syntax() && !closed && bytes.starts_with(b"{")) {
            problem(CheckpointProblem::Truncated)
        } else if e.is_syntax() || e.is_data() {
            // Not even the header parses: it may still be a checkpoint with a
            // damaged header; say corrupted unless it does not look like one.
            if bytes.starts_with(b"{\"format\":\"refit-checkpoint\"") {
                corrupted(&e)
            } else {
                problem(CheckpointProblem::NotACheckpoint)
            }
        } else {
            corrupted(&e)
        }
    })?;
    if header.format != FORMAT {
        return Err(problem(CheckpointProblem::NotACheckpoint));
    }
    if header.version != VERSION {
        return Err(problem(CheckpointProblem::UnknownVersion {
            found: header.version,
            supported: VERSION,
        }));
    }
    let text = header.payload.get();
    if format!("{:016x}", fnv1a(text.as_bytes())) != header.checksum {
        return Err(problem(CheckpointProblem::Corrupted {
            what: "checksum mismatch".into(),
        }));
    }
    let session: Session<F, E, L> = serde_json::from_str(text).map_err(|e| corrupted(&e))?;
    session.validate()?;
    Ok(session)
}

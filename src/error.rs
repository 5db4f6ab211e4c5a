//! The crate's one error type.

/// Everything that can go wrong in a call into `refit`.
///
/// Every public entry point validates its input and returns one of these
/// instead of panicking. A call that returns an error changes nothing: the
/// parameters, the history and the counters of the value it was called on are
/// as they were before the call.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A policy, learner or environment was asked for zero actions.
    #[error("the number of actions must be at least 1, got 0")]
    ZeroActions,
    /// A context dimension of zero was asked for.
    #[error("the context dimension must be at least 1, got 0")]
    ZeroContextDim,
    /// A context (or another per-context vector) has the wrong length.
    #[error("context has length {got}, expected {expected}")]
    ContextLength {
        /// The length the callee works with.
        expected: usize,
        /// The length that was passed.
        got: usize,
    },
    /// A context holds a NaN or an infinity.
    #[error("context entry {index} is not finite ({value})")]
    NonFiniteContext {
        /// Position of the first bad entry.
        index: usize,
        /// Its value.
        value: f64,
    },
    /// A reward is NaN or infinite.
    #[error("reward is not finite ({value})")]
    NonFiniteReward {
        /// The reward that was passed.
        value: f64,
    },
    /// An action index is not below the number of actions.
    #[error("action {action} is out of range for {num_actions} actions")]
    ActionOutOfRange {
        /// The action that was passed.
        action: usize,
        /// The number of actions.
        num_actions: usize,
    },
    /// A value of logged data is missing or out of range: where it is (a
    /// row of the arrays, or a file and line), its column, the value as
    /// written, and what it must be. Nothing was built.
    #[error("logs {location}, column `{column}`: {value} {expected}")]
    BadLog {
        /// "row i" (0-based) for arrays, "`path` line l" (1-based, the
        /// header is line 1) for a file.
        location: String,
        /// The column: x0, x1, …, a, r or p.
        column: String,
        /// The value as written.
        value: String,
        /// What was expected.
        expected: &'static str,
    },
    /// A file could not be opened, read or written.
    #[error("file `{path}`: {message}")]
    File {
        /// The path as given.
        path: String,
        /// What the operating system or the parser said.
        message: String,
    },
    /// A propensity (the probability an action was sampled with) is not in (0, 1].
    #[error("propensity {value} is not in (0, 1]")]
    InvalidPropensity {
        /// The propensity that was passed.
        value: f64,
    },
    /// A step size is not a positive finite number.
    #[error("step size {value} is not a positive finite number")]
    InvalidStepSize {
        /// The step size that was passed.
        value: f64,
    },
    /// A numeric hyperparameter is outside its documented range.
    #[error("parameter `{name}` = {value} is out of range: {expected}")]
    InvalidParameter {
        /// The parameter's name as in the docs.
        name: &'static str,
        /// The value that was passed.
        value: f64,
        /// The range it must lie in.
        expected: &'static str,
    },
    /// A vector or matrix argument has the wrong length.
    #[error("`{name}` has length {got}, expected {expected}")]
    Length {
        /// The argument's name as in the docs.
        name: &'static str,
        /// The length the callee works with.
        expected: usize,
        /// The length that was passed.
        got: usize,
    },
    /// A parameter vector holds a NaN or an infinity.
    #[error("parameter entry {index} is not finite ({value})")]
    NonFiniteParameter {
        /// Position of the first bad entry.
        index: usize,
        /// Its value.
        value: f64,
    },
    /// An update would have made the parameters non-finite; they are left as they were.
    #[error("the update would make the parameters non-finite; they are unchanged")]
    NonFiniteUpdate,
    /// The logits θ·x overflowed (or θ holds a non-finite value), so no
    /// probabilities exist; nothing was changed.
    #[error("the logits are not finite: θ·x overflows for this context")]
    NonFiniteLogits,
    /// The L2 penalty λ is negative or not finite.
    #[error("regularization lambda = {value} must be finite and >= 0")]
    InvalidLambda {
        /// The λ that was passed.
        value: f64,
    },
    /// λ = 0 was asked for with a policy that sees contexts: the refit
    /// optimum then has no closed form and in general does not exist.
    #[error(
        "lambda = 0 is allowed only for a tabular (context-free) policy, where the refit optimum has a closed form; use lambda > 0 with contexts"
    )]
    ZeroLambda,
    /// The negated Hessian of the refit objective is not positive definite,
    /// so Newton's method has no step: λ must be > 0 outside the tabular
    /// closed form.
    #[error(
        "the refit objective's Hessian is not positive definite (lambda = 0 outside the tabular closed form?)"
    )]
    SingularHessian,
    /// A sample weight is negative where the weighting requires w ≥ 0.
    #[error(
        "weight {weight} at index {index} is negative (reward {reward}); for negative rewards use Weighting::Shift, Exp or Signed (with lambda > 0)"
    )]
    NegativeWeight {
        /// Position in the history.
        index: usize,
        /// The reward that produced it.
        reward: f64,
        /// The weight.
        weight: f64,
    },
    /// A refit stopped at its iteration cap before the convergence test
    /// held, and the learner was configured to treat that as a failure; θ
    /// stays at the last certified optimum.
    #[error(
        "refit did not converge in {iterations} iterations: |grad|_inf = {grad_norm} > {threshold}"
    )]
    NotConverged {
        /// Iterations taken.
        iterations: usize,
        /// ‖∇J‖∞ where it stopped.
        grad_norm: f64,
        /// The threshold tol · (1 + Σ|w|).
        threshold: f64,
    },
    /// A seed of a run failed; `source` says why.
    #[error("seed {seed} failed at step {step}: {source}")]
    Run {
        /// The seed whose run failed.
        seed: u64,
        /// The step (1-based; 0 while setting up) at which it failed.
        step: usize,
        /// What went wrong.
        source: Box<Error>,
    },
    /// A session step failed earlier; the session may be mid-step and
    /// refuses to go on (resume from a checkpoint).
    #[error("session of seed {seed} failed before step {step} and cannot continue")]
    SessionFailed {
        /// The session's seed.
        seed: u64,
        /// The step that was asked for.
        step: usize,
    },
    /// A checkpoint could not be read; nothing was changed.
    #[error("checkpoint rejected: {problem}")]
    Checkpoint {
        /// What is wrong with it.
        problem: CheckpointProblem,
    },
    /// A sample weight given to a dataset or to `fit` is negative.
    #[error(
        "sample weight {weight} at index {index} is negative; weights must be >= 0 (or build the dataset with Dataset::signed() for the signed surrogate)"
    )]
    NegativeSampleWeight {
        /// Position of the point.
        index: usize,
        /// The weight.
        weight: f64,
    },
    /// A learner and an environment disagree in shape.
    #[error("the learner's {what} is {learner} but the environment's is {environment}")]
    Mismatch {
        /// What differs: "number of actions K" or "context length d".
        what: &'static str,
        /// The learner's.
        learner: usize,
        /// The environment's.
        environment: usize,
    },
    /// A size computed from the caller's input is over its documented limit
    /// ([`crate::limits`]); nothing was allocated or changed.
    #[error("{quantity} = {value} is over the limit {limit} (see refit::limits)")]
    TooLarge {
        /// The quantity, as the docs name it ("number of actions K", "K·d", …).
        quantity: &'static str,
        /// Its value (exact, also where a product would overflow `usize`).
        value: u128,
        /// Its limit.
        limit: usize,
    },
    /// The allocator refused a buffer whose size came from the caller;
    /// nothing was changed.
    #[error("could not allocate {bytes} bytes for {quantity}")]
    Allocation {
        /// What the buffer holds.
        quantity: &'static str,
        /// The bytes asked for.
        bytes: u128,
    },
    /// An off-policy estimate, its standard error or the mean importance
    /// weight overflowed (rewards over propensities too large to sum in the
    /// float type); no evaluation is returned.
    #[error(
        "{estimator} is not finite ({value}): the logged rewards over their propensities overflow"
    )]
    NonFiniteEstimate {
        /// What overflowed: "IPS", "SNIPS", "DM", "DR", an estimator's
        /// standard error ("IPS standard error", …) or "mean importance
        /// weight".
        estimator: &'static str,
        /// Its value.
        value: f64,
    },
    /// An I/O error while writing results.
    #[error("i/o error ({kind:?}): {message}")]
    Io {
        /// The kind reported by the operating system.
        kind: std::io::ErrorKind,
        /// Its message.
        message: String,
    },
}

/// Why a checkpoint was rejected (see `refit::checkpoint`, feature `serde`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CheckpointProblem {
    /// The bytes are not a refit checkpoint.
    #[error("not a refit checkpoint")]
    NotACheckpoint,
    /// The format version is not one this build reads.
    #[error("unknown format version {found} (this build reads version {supported})")]
    UnknownVersion {
        /// The version in the checkpoint.
        found: u64,
        /// The version this build reads.
        supported: u64,
    },
    /// The checkpoint ends early.
    #[error("truncated")]
    Truncated,
    /// The checksum does not match, or the content is malformed.
    #[error("corrupted: {what}")]
    Corrupted {
        /// What did not check out.
        what: String,
    },
    /// The content parses, but its parts do not fit together.
    #[error("inconsistent: {what}")]
    Inconsistent {
        /// Which invariant fails.
        what: &'static str,
    },
}

/// An [`Error::Checkpoint`] for a broken invariant.
pub(crate) fn inconsistent(what: &'static str) -> Error {
    Error::Checkpoint {
        problem: CheckpointProblem::Inconsistent { what },
    }
}

/// `Ok` if `ok`, else [`inconsistent`].
pub(crate) fn ensure(ok: bool, what: &'static str) -> Result<()> {
    if ok { Ok(()) } else { Err(inconsistent(what)) }
}

/// `Result` with the crate's [`Error`].
pub type Result<T> = std::result::Result<T, Error>;

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Self {
        Error::Io {
            kind: e.kind(),
            message: e.to_string(),
        }
    }
}

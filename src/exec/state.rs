//! Proc states and job outcomes.

use rhai::Dynamic;

pub(crate) use crate::event::State;

/// How one attempt of a job ended.
#[derive(Debug, Clone)]
pub(crate) enum Outcome {
    /// The body returned this value.
    Success(Dynamic),
    /// The body threw `skip(why)`, or `no_change(why)` (`no_change`: nothing changed).
    Skipped { why: String, no_change: bool },
    /// The body failed; `exit_code` is set for command bodies.
    Failed {
        error: String,
        exit_code: Option<i32>,
    },
    /// The body returned `result`, but its declared outputs are missing or stale.
    OutputsFailed { result: Dynamic, error: String },
    /// The dry runner (`--dry-run`) reported what would run and ran nothing.
    WouldRun,
}

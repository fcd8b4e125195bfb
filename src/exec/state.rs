//! Proc states and job outcomes.

use std::fmt;

use rhai::Dynamic;

/// Where a proc is in its life: IDLE → WANTED → RUNNING → one of the final states.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum State {
    Idle,
    Wanted,
    Running,
    Succeeded,
    Failed,
    FailedDep,
    Skipped,
    UpToDate,
}

impl State {
    /// True for the final states that count as success for dependents.
    pub fn is_success(self) -> bool {
        matches!(self, State::Succeeded | State::Skipped | State::UpToDate)
    }

    /// True for FAILED and FAILED_DEP.
    pub fn is_failure(self) -> bool {
        matches!(self, State::Failed | State::FailedDep)
    }

    /// True once the proc will not change again in this run.
    pub fn is_complete(self) -> bool {
        self.is_success() || self.is_failure()
    }

    /// The upper-case name used in output, reports and `state()`.
    pub fn as_str(self) -> &'static str {
        match self {
            State::Idle => "IDLE",
            State::Wanted => "WANTED",
            State::Running => "RUNNING",
            State::Succeeded => "SUCCEEDED",
            State::Failed => "FAILED",
            State::FailedDep => "FAILED_DEP",
            State::Skipped => "SKIPPED",
            State::UpToDate => "UP_TO_DATE",
        }
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How one attempt of a job ended.
#[derive(Debug, Clone)]
pub enum Outcome {
    /// The body returned this value.
    Success(Dynamic),
    /// The body threw `skip(why)` or `no_change(why)`.
    Skipped { why: String },
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

//! What a run tells its reporters and its report: the state of a proc and the summary of
//! one proc. Kept apart from the scheduler (`exec`) and the reporters (`ui`, `report`), so
//! that neither depends on the other for these types.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

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

/// A summary of one proc for `results()`, `state()` and the final report.
#[derive(Debug, Clone)]
pub struct ProcSummary {
    pub name: Arc<str>,
    pub state: State,
    pub result: Option<Dynamic>,
    pub error: Option<String>,
    /// When its first attempt started (wall clock).
    pub started: Option<std::time::SystemTime>,
    /// From its first start to its end.
    pub duration: Option<Duration>,
    pub exit_code: Option<i32>,
    pub log: Option<std::path::PathBuf>,
    /// Where its last command ran, when not here: the SSH host, or the Slurm job.
    pub place: Option<String>,
    /// The executor its commands run on (`None`: this machine).
    pub executor: Option<String>,
    /// What one run of it needs.
    pub resources: crate::graph::Resources,
}

/// The live display's view of the queue (see `Core::queue_view`).
#[derive(Debug, Clone, Default)]
pub struct QueueView {
    /// Procs that left IDLE (the run's total so far).
    pub scheduled: usize,
    /// Names of the WANTED procs: scheduled, not started yet.
    pub wanted: Vec<Arc<str>>,
    /// The parallel limit.
    pub parallel: usize,
}

//! What the user sees. The scheduler reports through the small [`Reporter`] interface, so
//! that the plain line output here can be swapped for a live terminal display.

mod plain;

pub use plain::PlainReporter;

use std::time::Duration;

use crate::exec::Finished;

/// Counts of final states and the wall time of a run.
#[derive(Debug, Default, Clone)]
pub struct Summary {
    pub succeeded: usize,
    pub failed: usize,
    pub failed_dep: usize,
    pub skipped: usize,
    pub up_to_date: usize,
    pub not_run: usize,
    pub wall: Duration,
}

/// Receives run events; implementations must be cheap (they run on the scheduler's path).
pub trait Reporter: Send + Sync {
    /// A proc started its first attempt.
    fn started(&self, name: &str);
    /// A failed attempt will be retried.
    fn retrying(&self, name: &str, attempt: u32, error: &str);
    /// A proc reached a final state.
    fn finished(&self, f: &Finished);
    /// A command started (`shell`, `exec`, `pipe`), in a proc or at the top level.
    fn command(&self, proc: Option<&str>, line: &str);
    /// A line printed by the script (`print`, `log_info`, ...).
    fn message(&self, text: &str);
    /// The run ended.
    fn summary(&self, s: &Summary);
}

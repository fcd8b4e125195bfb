//! The task DB: an embedded SQLite file that keeps the history of runs and the result
//! cache behind incremental runs.
//!
//! Theory of operation: the scheduler never waits for SQLite. At the start of a run the
//! whole cache is read into memory ([`Store::load_cache`]); from then on the scheduler
//! decides from memory, and every write (a proc's history row, a cache row saved or
//! invalidated, the end of the run) is sent to one writer thread that commits whatever has
//! queued up in one `BEGIN IMMEDIATE` transaction. WAL mode and a busy timeout let two runs
//! of the same script share the file. The DB is only an optimisation: any error here is
//! reported as a warning and the run goes on without it.
//!
//! `prun history` and `prun report` only read it ([`Store::open_read_only`], see
//! `readonly.rs`): also another user's DB, which they may read but not write.

mod db;
mod error;
mod history;
mod lenient;
mod owner;
mod readonly;
mod schema;
mod writer;

pub(crate) use db::{CacheRow, Impatience, ProcRecord, ScriptName, Store};
pub(crate) use error::StoreError;
pub(crate) use history::{ExpectedDurations, RunRow};
pub(crate) use owner::{Liveness, outcome_label};

/// True when there is no DB at `path`; a path that cannot be looked at (a directory above
/// it that the user may not enter) is no answer, and opening it says why.
pub(crate) fn missing(path: &std::path::Path) -> bool {
    std::fs::symlink_metadata(path).is_err_and(|e| e.kind() == std::io::ErrorKind::NotFound)
}

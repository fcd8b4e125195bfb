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
mod died;
mod error;
mod history;
mod lenient;
mod owner;
mod readonly;
mod schema;
mod writer;

pub(crate) use db::{CacheRow, Impatience, ProcRecord, ScriptName, Store};
pub(crate) use died::record_died_procs;
pub(crate) use error::StoreError;
pub(crate) use history::{ExpectedDurations, RunRow};
pub(crate) use owner::{Liveness, outcome_label};

/// True when there is no DB at `path`; a path that cannot be looked at (a directory above
/// it that the user may not enter) is no answer, and opening it says why.
pub(crate) fn missing(path: &std::path::Path) -> bool {
    std::fs::symlink_metadata(path).is_err_and(|e| e.kind() == std::io::ErrorKind::NotFound)
}

/// The scripts with runs in the task DB at `path` (their keys: canonical paths), at most
/// `limit`, read without writing, without waiting for a writer and without any warning:
/// none when it cannot be read at once or holds what prun did not make. For the hints that name scripts (`did you mean`).
pub(crate) fn recorded_scripts(path: &std::path::Path, limit: usize) -> Vec<String> {
    use rusqlite::OpenFlags;
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let Ok(conn) = rusqlite::Connection::open_with_flags(path, flags) else {
        return Vec::new();
    };
    let hardened = schema::harden(&conn)
        .and_then(|()| conn.busy_timeout(std::time::Duration::ZERO))
        .and_then(|()| schema::foreign_object(&conn));
    if !matches!(hardened, Ok(None)) {
        return Vec::new();
    }
    let read = || -> rusqlite::Result<Vec<String>> {
        conn.prepare("SELECT DISTINCT script_key FROM runs WHERE script_key <> '' LIMIT ?1")?
            .query_map([i64::try_from(limit).unwrap_or(i64::MAX)], |r| {
                lenient::text(r, 0)
            })?
            .collect()
    };
    read().unwrap_or_default()
}

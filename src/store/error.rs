//! Errors of the task DB.

use std::path::PathBuf;

use thiserror::Error;

/// The task DB could not be opened, read or written.
#[derive(Debug, Error)]
pub(crate) enum StoreError {
    #[error(
        "failed to open the task DB {}: {source}{}",
        crate::paths::shown(path),
        read_only_dir(path, source)
    )]
    Open {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },
    #[error(
        "failed to create the directory of the task DB {}: {source}",
        crate::paths::shown(path)
    )]
    Dir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("task DB {}: {source}", crate::paths::shown(path))]
    Sql {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },
    /// A write that was committed in a batch of others (see the writer thread), whose
    /// error is known by its text.
    #[error("failed to write the task DB {}: {why}", crate::paths::shown(path))]
    Write { path: PathBuf, why: String },
    #[error("failed to open the task DB {}: {source}", crate::paths::shown(path))]
    File {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "the task DB {} is corrupt ({error}) and could not be replaced: {why}",
        crate::paths::shown(path)
    )]
    Corrupt {
        path: PathBuf,
        error: String,
        why: super::db::StartOverError,
    },
    /// A DB of a newer schema; `by` is the version of the prun that wrote its latest
    /// run, when that run recorded it.
    #[error(
        "task DB {} was written by a newer prun ({}schema version {found}); this is prun {}, which knows schema versions up to {known}: use that prun, or give this one another DB (--db PATH)",
        crate::paths::shown(path),
        by.as_deref().map_or(String::new(), |v| format!("prun {v}, ")),
        env!("CARGO_PKG_VERSION")
    )]
    TooNew {
        path: PathBuf,
        found: i64,
        known: i64,
        by: Option<String>,
    },
    /// A DB whose schema holds an object prun did not make (`what`: `a trigger named NAME`).
    #[error(
        "task DB {} holds {what} that prun did not make, so prun does not use it (a trigger or view planted in a DB would run as whoever opens it): remove it, or give prun another DB (--db PATH)",
        crate::paths::shown(path)
    )]
    Foreign { path: PathBuf, what: String },
    /// Another user's DB, which this user may read but not bring up to date.
    #[error(
        "task DB {} was written by an older prun (schema version {found}, this prun reads {known}); the next run of its owner, {owner}, brings it up to date",
        crate::paths::shown(path)
    )]
    TooOld {
        path: PathBuf,
        found: i64,
        known: i64,
        owner: String,
    },
}

/// Why SQLite found the DB at `path` read-only when its file is writable: its directory
/// is not, and a DB in WAL mode needs its `-wal` and `-shm` files made beside it. Empty
/// otherwise.
fn read_only_dir(path: &std::path::Path, source: &rusqlite::Error) -> String {
    use nix::unistd::{AccessFlags, access};
    if source.sqlite_error_code() != Some(rusqlite::ErrorCode::ReadOnly) {
        return String::new();
    }
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => std::path::Path::new("."),
    };
    if access(dir, AccessFlags::W_OK).is_ok() {
        return String::new();
    }
    format!(
        ", as its directory {} is not writable (SQLite makes the DB's -wal and -shm files there)",
        crate::paths::shown(dir)
    )
}

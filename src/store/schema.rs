//! The schema and its migrations, versioned with SQLite's `user_version`.

use rusqlite::{Connection, TransactionBehavior};

/// Each entry upgrades the schema by one version; never edit one that has shipped.
const MIGRATIONS: &[&str] = &[
    // 1: runs, the procs of each run, and the result cache.
    "CREATE TABLE runs (
        id INTEGER PRIMARY KEY,
        script TEXT NOT NULL,
        args TEXT NOT NULL,
        started TEXT NOT NULL,
        ended TEXT,
        duration REAL,
        outcome TEXT,
        counts TEXT
    );
    CREATE TABLE proc_runs (
        run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
        name TEXT NOT NULL,
        state TEXT NOT NULL,
        started TEXT,
        duration REAL,
        exit_code INTEGER,
        log TEXT,
        error TEXT
    );
    CREATE INDEX proc_runs_by_name ON proc_runs(name, run_id);
    CREATE TABLE cache (
        name TEXT PRIMARY KEY,
        result TEXT NOT NULL,
        fingerprint TEXT NOT NULL,
        stamp TEXT NOT NULL,
        saved TEXT NOT NULL
    );",
    // 2: where each proc ran, when on an executor (the SSH host, or the Slurm job).
    "ALTER TABLE proc_runs ADD COLUMN place TEXT;",
];

/// The schema version this prun writes.
pub const VERSION: i64 = MIGRATIONS.len() as i64;

/// Brings the schema up to [`VERSION`]; returns the version found, which is larger than
/// [`VERSION`] when a newer prun made the file.
pub fn migrate(conn: &mut Connection) -> rusqlite::Result<i64> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let found: i64 = tx.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if found >= VERSION {
        return Ok(found);
    }
    for m in &MIGRATIONS[found as usize..] {
        tx.execute_batch(m)?;
    }
    tx.pragma_update(None, "user_version", VERSION)?;
    tx.commit()?;
    Ok(found)
}

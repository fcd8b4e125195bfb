//! The procs a crashed run was running, recorded in its history by the next run of its
//! script: a proc's row is otherwise written when it ends, and the history of a run whose
//! prun was killed (`kill -9`, the OOM killer) would not show what it was doing. The
//! crash journal knows (see `crate::exec::crashed`); this writes what it tells.

use std::path::Path;

use rusqlite::{Connection, TransactionBehavior, params};

use super::db::{ProcRecord, connect, prepare};
use super::owner::{DIED, Owner};
use super::{StoreError, schema};

/// How long [`record_died_procs`] waits for another process's lock on the DB.
const LOCK_PATIENCE: std::time::Duration = std::time::Duration::from_secs(2);

/// Records `procs` (rows of state `DIED`) as procs of the run of the task DB at `path`
/// whose prun was the process `pid` of this boot and PID namespace, started at `start`
/// (field 22 of its `/proc` stat, when known), and records that run `died` if it is not
/// yet: its journal, free, proves its prun gone. A proc that has a row of this run ended
/// since the recorded start is left out (its end was recorded before the journal's). No
/// DB at `path`, no such run, or several (an embedding process's runs at once, which
/// share one journal's procs), record nothing. Returns the number of rows written.
pub(crate) fn record_died_procs(
    path: &Path,
    pid: i32,
    start: Option<u64>,
    procs: &[ProcRecord],
) -> Result<usize, StoreError> {
    if procs.is_empty() || super::missing(path) {
        return Ok(0);
    }
    let sql = |source| StoreError::Sql {
        path: path.to_path_buf(),
        source,
    };
    prepare(path)?;
    let mut conn = connect(path).map_err(sql)?;
    // The run waits for this before it starts: not for as long as its writer would wait
    // for another process's lock.
    conn.busy_timeout(LOCK_PATIENCE).map_err(sql)?;
    if schema::migrate(&mut conn).map_err(sql)? > schema::VERSION {
        return Ok(0);
    }
    record(&mut conn, pid, start, procs).map_err(sql)
}

/// A run that may be the crashed one: its id, owner and range of proc rows.
struct Candidate {
    id: i64,
    owner: Option<String>,
    first: Option<i64>,
    last: Option<i64>,
}

/// [`record_died_procs`] in one write transaction.
fn record(
    conn: &mut Connection,
    pid: i32,
    start: Option<u64>,
    procs: &[ProcRecord],
) -> rusqlite::Result<usize> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let candidates: Vec<Candidate> = tx
        .prepare(
            "SELECT id, owner, first_proc, last_proc FROM runs
             WHERE (outcome IS NULL OR outcome = ?1) AND owner IS NOT NULL",
        )?
        .query_map([DIED], |r| {
            Ok(Candidate {
                id: r.get(0)?,
                owner: super::lenient::opt_text(r, 1)?,
                first: super::lenient::opt_int(r, 2)?,
                last: super::lenient::opt_int(r, 3)?,
            })
        })?
        .collect::<rusqlite::Result<_>>()?;
    let mut runs = candidates.into_iter().filter(|c| {
        c.owner
            .as_deref()
            .and_then(|o| serde_json::from_str::<Owner>(o).ok())
            .is_some_and(|o| o.is_process(pid, start))
    });
    let (Some(run), None) = (runs.next(), runs.next()) else {
        return Ok(0);
    };
    let ended = ended_procs(&tx, &run)?;
    let fresh: Vec<&ProcRecord> = procs
        .iter()
        .filter(|p| {
            let since = p.started.as_deref().unwrap_or_default();
            !ended
                .iter()
                .any(|(name, end)| *name == p.name && end.as_str() >= since)
        })
        .collect();
    if let Some((first, last)) = insert(&tx, run.id, &fresh)? {
        tx.execute(
            "UPDATE runs SET first_proc = COALESCE(first_proc, ?2), last_proc = ?3 WHERE id = ?1",
            params![run.id, first, last],
        )?;
    }
    tx.execute(
        "UPDATE runs SET outcome = ?2 WHERE id = ?1 AND outcome IS NULL",
        params![run.id, DIED],
    )?;
    tx.commit()?;
    Ok(fresh.len())
}

/// Writes `procs` as rows of run `run`; the first and last rows written, if any.
fn insert(
    tx: &rusqlite::Transaction,
    run: i64,
    procs: &[&ProcRecord],
) -> rusqlite::Result<Option<(i64, i64)>> {
    let mut insert = tx.prepare_cached(super::writer::RECORD_PROC)?;
    let mut range: Option<(i64, i64)> = None;
    for p in procs {
        super::writer::record_proc(&mut insert, run, p)?;
        let row = tx.last_insert_rowid();
        range = Some(range.map_or((row, row), |(first, _)| (first, row)));
    }
    Ok(range)
}

/// The name and end time of each proc of `run` that has a row (in its range of rows, see
/// the schema's version 6).
fn ended_procs(
    tx: &rusqlite::Transaction,
    run: &Candidate,
) -> rusqlite::Result<Vec<(String, String)>> {
    let (Some(first), Some(last)) = (run.first, run.last) else {
        return Ok(Vec::new());
    };
    tx.prepare(
        "SELECT name, ended FROM proc_runs WHERE rowid BETWEEN ?2 AND ?3 AND run_id = ?1
         AND ended IS NOT NULL",
    )?
    .query_map(params![run.id, first, last], |r| {
        Ok((super::lenient::text(r, 0)?, super::lenient::text(r, 1)?))
    })?
    .collect()
}

//! The task DB's writer thread: what a run sends it ([`Msg`]), and how it commits that in
//! batches, one transaction each, while the run goes on.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use rusqlite::{Connection, ErrorCode, TransactionBehavior, params};

use super::db::Warn;
use super::db::{CacheRow, ProcRecord, ScriptName, is_corrupt, now, start_over};
use super::lenient::opt_int;

/// How long the writer waits for more to commit in one transaction. Every commit writes
/// each page it changed to the WAL again: at 20 ms, 2,000 short procs made ~50 commits
/// and the writer spent 17–20 ms of CPU, at 250 ms 11–14 ms (a fresh DB: 24 → 8 ms;
/// measured with the index by name that the schema's version 7 dropped). Nothing waits
/// for a batch: a reader of the history during the run sees it up to this much later,
/// and [`Store::close`](super::Store::close) commits what is left at once.
const BATCH_WINDOW: Duration = Duration::from_millis(250);

pub(super) enum Msg {
    BeginRun {
        script: ScriptName,
        args: String,
        started: String,
    },
    Proc(ProcRecord),
    /// A cache row, saved unless another run saved its proc since this one last saw its
    /// row (see [`Store::save_seen`](super::Store::save_seen)): `Some` with the stamp
    /// then seen (`None`: no row), `None` to save it whatever is there.
    Save(String, CacheRow, Option<Option<String>>),
    Invalidate(String),
    /// Cached results removed at once, before their procs run again: answered once
    /// committed, with the error when the commit failed (see
    /// [`Store::forget_now`](super::Store::forget_now)).
    Forget(Vec<String>, mpsc::Sender<Option<String>>),
    EndRun {
        duration: f64,
        outcome: String,
        counts: String,
        keep_runs: u64,
        /// Why the run stopped, when an error stopped it (secrets masked).
        error: Option<String>,
    },
    Parallel(usize),
    /// A reader found the DB corrupt (the error): move it aside and start a new one.
    Corrupt(String, mpsc::Sender<()>),
}

impl Msg {
    /// A message committed at once, without waiting for the batch window: one whose
    /// sender waits for the writer's answer, and a run's row. A prun killed (`kill -9`,
    /// the OOM killer) within the first window of its run left no row, so the next run
    /// could not record the procs it was running as `DIED` (see
    /// [`crate::store::record_died_procs`]).
    pub(super) fn is_urgent(&self) -> bool {
        matches!(
            self,
            Msg::Corrupt(..) | Msg::Forget(..) | Msg::BeginRun { .. }
        )
    }
}

/// How long the writer waits for the DB's write lock while another process holds it.
const LOCK_PATIENCE: Duration = Duration::from_secs(10);

/// How long one try for the write lock waits (SQLite's busy timeout on the writer's
/// connection): between tries the writer sees whether it must stop waiting.
const LOCK_TRY: Duration = Duration::from_millis(50);

/// The run being recorded: its row, and what it was begun with (to begin it again in a
/// new DB after a corrupt one was moved aside).
#[derive(Default)]
pub(super) struct Recording {
    id: Option<i64>,
    begun: Option<(ScriptName, String, String)>,
    /// The runs found dead when the DB was opened (see [`warm`]), recorded `died` with
    /// this run's start.
    dead: Vec<i64>,
}

/// Commits whatever has queued up, one transaction per batch, until the channel closes.
/// When the DB turns out to be corrupt, it is moved aside, a new one is started and the
/// batch is written again into it.
pub(super) fn writer(
    conn: Connection,
    rx: mpsc::Receiver<Msg>,
    path: &Path,
    warn: &Warn,
    impatient: &AtomicBool,
) {
    let mut rec = Recording {
        dead: warm(&conn),
        ..Recording::default()
    };
    let mut conn = Some(conn);
    let mut failed = false;
    let replace = |conn: &mut Option<Connection>, rec: &mut Recording, error: &str| {
        // Close the old connection first: closing it later would checkpoint into, and
        // delete, the `-wal` file of the new DB.
        drop(conn.take());
        rec.id = None;
        rec.dead.clear();
        match start_over(path) {
            Ok((aside, fresh)) => {
                *conn = Some(fresh);
                warn(&format!(
                    "the task DB {} is corrupt ({error}); moved it to {} and started a new one",
                    path.display(),
                    aside.display()
                ));
            }
            Err(why) => warn(&format!(
                "the task DB {} is corrupt ({error}) and could not be replaced: {why}; \
                 this run's history and cache are not recorded",
                path.display()
            )),
        }
    };
    while let Ok(first) = rx.recv() {
        // Gather what arrives in the next few milliseconds too: one transaction per
        // finished proc would cost more than the procs themselves in a run of many short
        // ones. Meanwhile the writer sleeps (parked) and messages wait in the channel, so
        // that each one does not wake it: on a busy machine every wake-up takes a CPU
        // from the jobs. A message someone waits for (a corrupt DB) unparks it and is
        // committed at once, and so is the rest when the store closes (the channel is
        // closed and the writer unparked: see `Store::close`).
        let mut batch = vec![first];
        let until = std::time::Instant::now() + BATCH_WINDOW;
        let mut closed;
        loop {
            closed = drain(&rx, &mut batch);
            let left = until.saturating_duration_since(std::time::Instant::now());
            if closed || left.is_zero() || batch.iter().any(Msg::is_urgent) {
                break;
            }
            std::thread::park_timeout(left);
        }
        let mut result = apply(conn.as_mut(), &batch, &mut rec, impatient);
        if let Err(e) = &result
            && is_corrupt(e)
        {
            replace(&mut conn, &mut rec, &e.to_string());
            result = apply(conn.as_mut(), &batch, &mut rec, impatient);
        }
        if result.is_ok() && !closed {
            checkpoint(path, conn.as_ref());
        }
        let error = result.as_ref().err().map(ToString::to_string);
        if let Err(e) = result {
            rec.id = None;
            if !failed {
                failed = true;
                warn(&format!(
                    "failed to write the task DB {}: {e}; this run's history and cache may be incomplete",
                    path.display()
                ));
            }
        }
        for m in batch {
            match m {
                Msg::Corrupt(error, ack) => {
                    replace(&mut conn, &mut rec, &error);
                    let _ = ack.send(());
                }
                Msg::Forget(_, ack) => {
                    let _ = ack.send(error.clone());
                }
                _ => {}
            }
        }
    }
}

/// Copies what the last commits wrote to the `-wal` file into the DB while the run goes
/// on, so that closing the DB at the run's end, which the run waits for, copies only the
/// last batch (two system calls a page): after a chain of 500 short procs the close took
/// 0.32-0.40 ms, and 0.18-0.20 with this. A checkpoint that cannot be done at once
/// (another run reading or writing) is left to a later one, and so is one while someone
/// reads the DB file at `path` itself (see [`super::readonly::checkpointing`]).
pub(super) fn checkpoint(path: &Path, conn: Option<&Connection>) {
    if let Some(conn) = conn
        && let Some(_leave) = super::readonly::checkpointing(path)
    {
        let _ = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()));
    }
}

/// Moves what is queued into `batch`; true when the channel is closed.
fn drain(rx: &mpsc::Receiver<Msg>, batch: &mut Vec<Msg>) -> bool {
    loop {
        match rx.try_recv() {
            Ok(m) => batch.push(m),
            Err(mpsc::TryRecvError::Empty) => return false,
            Err(mpsc::TryRecvError::Disconnected) => return true,
        }
    }
}

/// The statements every run's history takes, prepared once per connection (see [`warm`]).
const BEGIN_RUN: &str =
    "INSERT INTO runs (script, args, started, script_key, owner) VALUES (?1, ?2, ?3, ?4, ?5)";

/// Records the run's parallel limit, when its end does not (see [`apply`]): prepared only
/// then.
const PARALLEL: &str = "UPDATE runs SET parallel = ?2 WHERE id = ?1";

pub(super) const RECORD_PROC: &str =
    "INSERT INTO proc_runs (run_id, name, state, started, duration, exit_code,
        log, error, ended, attempts, segments, waited, place, deps, proto, cycle, wave)
    VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17)";

/// Writes `p` as a row of run `run` with `insert`, a statement prepared from
/// [`RECORD_PROC`].
pub(super) fn record_proc(
    insert: &mut rusqlite::CachedStatement<'_>,
    run: i64,
    p: &ProcRecord,
) -> rusqlite::Result<()> {
    insert.execute(params![
        run,
        p.name,
        p.state,
        p.started,
        p.duration,
        p.exit_code,
        p.log,
        p.error,
        p.ended,
        p.attempts,
        p.segments,
        p.waited,
        p.place,
        p.deps,
        p.proto,
        p.cycle,
        p.wave
    ])?;
    Ok(())
}

/// Records the run's end, and its parallel limit when `?7` is not NULL (see [`apply`]).
const END_RUN: &str = "UPDATE runs SET ended = ?2, duration = ?3, outcome = ?4, counts = ?5,
        error = ?6, parallel = COALESCE(?7, parallel) WHERE id = ?1";

/// Records that the rows `?2` to `?3` of `proc_runs` hold procs of run `?1` (see the
/// schema's version 6): the range grows as the run's procs are written.
const MARK_PROCS: &str =
    "UPDATE runs SET first_proc = COALESCE(first_proc, ?2), last_proc = ?3 WHERE id = ?1";

/// Deletes rows `?2` to `?3` of `proc_runs` that belong to run `?1`: the procs of a run
/// pruned, and those written for a run that was deleted meanwhile (pruned by another run
/// at once).
pub(super) const DROP_PROCS: &str =
    "DELETE FROM proc_runs WHERE rowid BETWEEN ?2 AND ?3 AND run_id = ?1";

/// The runs [`prune`] deletes: of the runs of the script whose key is `?1` (runs of an
/// unknown script, recorded before scripts had keys, count as its runs too) but the
/// `going` still going (`?3` on: the pruning run's own and those
/// [`super::owner::going_runs`] finds), newest first by their start, those past the `?2`
/// kept. In the order of their start, as their log directories are pruned (named by it),
/// and with those still going kept and counted, as their directories are (held): so a
/// run that outlasted later ones keeps its row as it keeps its directory, and the rows
/// and the directories are of the same runs. The runs still going are parameters, not a
/// JSON array: the three statements that read one with `json_each` cost every run half
/// a million instructions to prepare, and mapped SQLite's JSON code. Only ids, read
/// from the index by start alone: every run of a full history (100 by default) is read
/// to be sorted, and reading each one's row too cost 1,500 more instructions a row (a
/// pruned run's range is read on its own, see [`RUN_RANGE`]).
pub(super) fn pruned_runs(going: usize) -> String {
    let mut sql = String::from("SELECT id FROM runs WHERE script_key IN (?1, '')");
    if going > 0 {
        let ids: Vec<String> = (3..going + 3).map(|i| format!("?{i}")).collect();
        sql.push_str(&format!(" AND id NOT IN ({})", ids.join(", ")));
    }
    sql.push_str(" ORDER BY started DESC, id DESC LIMIT -1 OFFSET ?2");
    sql
}

/// The range of proc rows of run `?1` (see the schema's version 6), by which a pruned
/// run's procs go.
const RUN_RANGE: &str = "SELECT first_proc, last_proc FROM runs WHERE id = ?1";

/// Deletes run `?1`'s row (its procs go by [`DROP_PROCS`]).
pub(super) const DROP_RUN: &str = "DELETE FROM runs WHERE id = ?1";

/// Prunes the history of the script whose key is `key` to its last `keep` runs, this run
/// (`run`) included, after its end: the oldest go first, by their start, but a run still
/// going stays, and counts among the `keep` (as its log directory does: see
/// `exec::log::prune`). Each run goes with its procs, by its range of rows.
fn prune(
    tx: &rusqlite::Transaction,
    key: &str,
    keep: u64,
    run: Option<i64>,
) -> rusqlite::Result<()> {
    use rusqlite::types::Value;
    let mut going = super::owner::going_runs(tx, key)?;
    going.extend(run);
    going.sort_unstable();
    going.dedup();
    let others = keep.saturating_sub(going.len() as u64);
    let others = i64::try_from(others).unwrap_or(i64::MAX);
    let values = [Value::Text(key.to_string()), Value::Integer(others)]
        .into_iter()
        .chain(going.iter().map(|&id| Value::Integer(id)));
    let pruned: Vec<i64> = tx
        .prepare_cached(&pruned_runs(going.len()))?
        .query_map(rusqlite::params_from_iter(values), |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    for id in pruned {
        let (first, last): (Option<i64>, Option<i64>) = tx
            .prepare_cached(RUN_RANGE)?
            .query_row([id], |r| Ok((opt_int(r, 0)?, opt_int(r, 1)?)))?;
        tx.prepare_cached(DROP_PROCS)?
            .execute(params![id, first, last])?;
        tx.prepare_cached(DROP_RUN)?.execute([id])?;
    }
    Ok(())
}

/// Prepares the statements of a run's history while the run goes on: the writer commits
/// them all at once when the store closes, after the last proc, where parsing them (a
/// fifth of a million instructions) made the run longer. Likewise reads the run's owner,
/// and finds the runs whose prun died ([`super::owner::dead_runs`]): returns their ids.
/// Done in the run's first batch, that read cost it about 40,000 instructions (parsing
/// the query) for nothing in the common case, where no run died.
pub(super) fn warm(conn: &Connection) -> Vec<i64> {
    // The run's owner, which its first batch records, read from /proc meanwhile too.
    let _ = super::owner::Owner::this_process();
    for sql in [
        BEGIN_RUN,
        RECORD_PROC,
        MARK_PROCS,
        END_RUN,
        &pruned_runs(1),
        RUN_RANGE,
        DROP_PROCS,
        DROP_RUN,
    ] {
        // A statement that does not prepare fails again, with its error, when it is used.
        let _ = conn.prepare_cached(sql);
    }
    // A read that fails here leaves the dead runs to the next writer.
    super::owner::dead_runs(conn).unwrap_or_default()
}

/// Writes one batch in one transaction (nothing when there is no DB left to write to).
pub(super) fn apply(
    conn: Option<&mut Connection>,
    batch: &[Msg],
    rec: &mut Recording,
    impatient: &AtomicBool,
) -> rusqlite::Result<()> {
    let Some(conn) = conn else { return Ok(()) };
    // The write lock, waited for up to LOCK_PATIENCE while another process holds it, in
    // tries of LOCK_TRY, unless told to give up.
    conn.busy_timeout(LOCK_TRY)?;
    let until = Instant::now() + LOCK_PATIENCE;
    let tx = loop {
        match conn.transaction_with_behavior(TransactionBehavior::Immediate) {
            Ok(tx) => break tx,
            Err(e)
                if e.sqlite_error_code() == Some(ErrorCode::DatabaseBusy)
                    && !impatient.load(Ordering::SeqCst)
                    && Instant::now() < until => {}
            Err(e) => return Err(e),
        }
    };
    let begin = |tx: &rusqlite::Transaction, rec: &mut Recording| -> rusqlite::Result<()> {
        if let Some((script, args, started)) = &rec.begun {
            let owner = super::owner::Owner::this_process().map(super::owner::Owner::json);
            tx.prepare_cached(BEGIN_RUN)?.execute(params![
                script.shown,
                args,
                started,
                script.key,
                owner
            ])?;
            rec.id = Some(tx.last_insert_rowid());
        }
        Ok(())
    };
    // The statements of the rows a batch holds many of, each prepared (found in the
    // connection's cache) once per batch rather than once per row.
    let mut insert_proc = None;
    let mut save_row = None;
    // When the batch's cache rows were saved: they are committed together.
    let mut saved = None;
    // The parallel limit, recorded with the run's end when that comes in the same batch
    // (a run sends it just before: one statement less), else at the batch's end.
    let mut parallel = None;
    // The rows of proc_runs this batch wrote for a run, marked in its row when done.
    let mut written: Option<Written> = None;
    for m in batch {
        match m {
            Msg::BeginRun {
                script,
                args,
                started,
            } => {
                rec.begun = Some((script.clone(), args.clone(), started.clone()));
                begin(&tx, rec)?;
                // Runs whose prun was killed, recorded as such once, for every reader.
                super::owner::record_dead(&tx, &std::mem::take(&mut rec.dead))?;
            }
            Msg::Proc(p) => {
                if rec.id.is_none() {
                    begin(&tx, rec)?;
                }
                let Some(run) = rec.id else { continue };
                let insert = match &mut insert_proc {
                    Some(stmt) => stmt,
                    None => insert_proc.insert(tx.prepare_cached(RECORD_PROC)?),
                };
                record_proc(insert, run, p)?;
                let row = tx.last_insert_rowid();
                match &mut written {
                    Some(w) if w.run == run => w.last = row,
                    _ => {
                        if let Some(w) = written.take() {
                            w.mark(&tx)?;
                        }
                        written = Some(Written {
                            run,
                            first: row,
                            last: row,
                        });
                    }
                }
            }
            Msg::Save(name, row, seen) => {
                // Another run's row, saved while this one ran the proc too: both runs
                // wrote its outputs, and neither row stands for them. Neither is kept.
                if let Some(seen) = seen
                    && tx
                        .prepare_cached("DELETE FROM cache WHERE name = ?1 AND stamp IS NOT ?2")?
                        .execute(params![name, seen])?
                        > 0
                {
                    continue;
                }
                // An upsert, not `INSERT OR REPLACE`: the row is rewritten where it is
                // (a replace deletes it, and its key in the index, and inserts both anew
                // at the end of the table).
                let save = match &mut save_row {
                    Some(stmt) => stmt,
                    None => save_row.insert(tx.prepare_cached(
                        "INSERT INTO cache (name, result, fingerprint, stamp, saved)
                         VALUES (?1, ?2, ?3, ?4, ?5)
                         ON CONFLICT (name) DO UPDATE SET result = excluded.result,
                             fingerprint = excluded.fingerprint, stamp = excluded.stamp,
                             saved = excluded.saved",
                    )?),
                };
                save.execute(params![
                    name,
                    row.result,
                    row.fingerprint,
                    row.stamp,
                    &*saved.get_or_insert_with(now)
                ])?;
            }
            Msg::Invalidate(name) => {
                tx.prepare_cached("DELETE FROM cache WHERE name = ?1")?
                    .execute([name])?;
            }
            Msg::Forget(names, _) => {
                for name in names {
                    tx.prepare_cached("DELETE FROM cache WHERE name = ?1")?
                        .execute([name])?;
                }
            }
            Msg::EndRun {
                duration,
                outcome,
                counts,
                keep_runs,
                error,
            } => {
                if rec.id.is_none() {
                    begin(&tx, rec)?;
                }
                tx.prepare_cached(END_RUN)?.execute(params![
                    rec.id,
                    now(),
                    duration,
                    outcome,
                    counts,
                    error,
                    parallel.take()
                ])?;
                // Runs of other scripts sharing the DB (`--db`) are theirs to prune.
                if *keep_runs > 0
                    && let Some((script, ..)) = &rec.begun
                {
                    prune(&tx, &script.key, *keep_runs, rec.id)?;
                }
            }
            Msg::Parallel(n) => {
                if rec.id.is_none() {
                    begin(&tx, rec)?;
                }
                parallel = Some(*n as i64);
            }
            Msg::Corrupt(..) => {}
        }
    }
    drop((insert_proc, save_row));
    if let Some(w) = written {
        w.mark(&tx)?;
    }
    if let Some(n) = parallel {
        tx.prepare_cached(PARALLEL)?.execute(params![rec.id, n])?;
    }
    tx.commit()
}

/// Rows `first` to `last` of `proc_runs`, written for run `run` (and maybe, in between,
/// for another run writing at once).
struct Written {
    run: i64,
    first: i64,
    last: i64,
}

impl Written {
    /// Records the range in the run's row; when the run is gone (another run pruned it
    /// meanwhile), deletes its rows instead, which nothing would find or delete later.
    fn mark(&self, tx: &rusqlite::Transaction) -> rusqlite::Result<()> {
        let marked = tx
            .prepare_cached(MARK_PROCS)?
            .execute(params![self.run, self.first, self.last])?;
        if marked == 0 {
            tx.prepare_cached(DROP_PROCS)?
                .execute(params![self.run, self.first, self.last])?;
        }
        Ok(())
    }
}

//! Reading the history back: the runs of a script (`prun history`), one run with its procs
//! and their earlier medians (`prun report`), and the expected durations the live display
//! shows.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use rusqlite::{Connection, OptionalExtension, Row, params};

use super::StoreError;
use super::db::{ProcRecord, Store};
use super::lenient::{opt_f64, opt_int, opt_text, text};
use super::owner::{self, Liveness};

/// A recorded run, as `prun report` shows it.
#[derive(Debug, Clone)]
pub(crate) struct RunRow {
    pub id: i64,
    pub script: String,
    /// The script's arguments, a JSON array of strings.
    pub args: String,
    pub started: String,
    pub duration: Option<f64>,
    pub outcome: Option<String>,
    /// The parallel limit the run ended with.
    pub parallel: Option<i64>,
    /// How many procs ended in each state, a JSON object (`{"up_to_date": 3, ...}`).
    pub counts: Option<String>,
    /// For a run that did not record its end: whether it is still going.
    pub alive: Option<Liveness>,
    /// Why it stopped, when an error stopped it (secrets masked).
    pub error: Option<String>,
}

/// A recorded run with what `prun report` shows of it (see [`Store::recorded_run`]).
#[derive(Debug)]
pub(crate) struct RecordedRun {
    pub row: RunRow,
    /// Its procs, in the order they finished.
    pub procs: Vec<ProcRecord>,
    /// For each of its procs that succeeded before: the median of its last 10 successful
    /// durations before this run.
    pub medians: HashMap<String, f64>,
}

/// One run, as `prun history` shows it.
#[derive(Debug, Clone)]
pub(crate) struct HistoryRun {
    pub id: i64,
    pub started: String,
    pub duration: Option<f64>,
    pub outcome: Option<String>,
    pub counts: Option<String>,
    /// For a run that did not record its end: whether it is still going.
    pub alive: Option<Liveness>,
    /// Why it stopped, when an error stopped it (secrets masked).
    pub error: Option<String>,
}

/// The procs of run `run`, in the order they finished.
fn run_procs(conn: &Connection, run: i64) -> rusqlite::Result<Vec<ProcRecord>> {
    let mut stmt = conn.prepare(&format!(
        "SELECT name, state, started, duration, exit_code, log, error,
                ended, attempts, segments, waited, place, deps, proto, cycle, wave
         FROM proc_runs
         WHERE {RUN_ROWS} ORDER BY rowid"
    ))?;
    let rows = stmt.query_map([run], |r| {
        Ok(ProcRecord {
            name: text(r, 0)?,
            state: text(r, 1)?,
            started: opt_text(r, 2)?,
            duration: opt_f64(r, 3)?,
            exit_code: opt_int(r, 4)?,
            log: opt_text(r, 5)?,
            error: opt_text(r, 6)?,
            ended: opt_text(r, 7)?,
            attempts: opt_int(r, 8)?,
            segments: opt_text(r, 9)?,
            waited: opt_f64(r, 10)?,
            place: opt_text(r, 11)?,
            deps: opt_text(r, 12)?,
            proto: opt_text(r, 13)?,
            cycle: opt_int(r, 14)?,
            wave: opt_int(r, 15)?,
        })
    })?;
    rows.collect()
}

/// The run `run` of the script whose key is `key`, or its latest when `None`.
fn run_row(conn: &Connection, key: &str, run: Option<i64>) -> rusqlite::Result<Option<RunRow>> {
    let mut stmt = conn.prepare(
        "SELECT id, script, args, started, duration, outcome, parallel, counts, owner, error
         FROM runs
         WHERE script_key IN (?2, '') AND (id = ?1 OR (?1 IS NULL AND id =
             (SELECT MAX(id) FROM runs WHERE script_key IN (?2, ''))))",
    )?;
    let mut rows = stmt.query_map(params![run, key], |r| {
        Ok(RunRow {
            id: r.get(0)?,
            script: text(r, 1)?,
            args: text(r, 2)?,
            started: text(r, 3)?,
            duration: opt_f64(r, 4)?,
            outcome: opt_text(r, 5)?,
            parallel: opt_int(r, 6)?,
            counts: opt_text(r, 7)?,
            alive: judged(r, 5, 8, 3)?,
            error: opt_text(r, 9)?,
        })
    })?;
    rows.next().transpose()
}

/// For each proc of `run` that succeeded before it: the median of its durations in its
/// last 10 successful runs of the same script before `run`.
fn earlier_medians(conn: &Connection, run: i64) -> rusqlite::Result<HashMap<String, f64>> {
    let key: Option<String> = conn
        .query_row("SELECT script_key FROM runs WHERE id = ?1", [run], |r| {
            text(r, 0)
        })
        .optional()?;
    let Some(key) = key else {
        return Ok(HashMap::new());
    };
    let names: HashSet<String> = conn
        .prepare(&format!("SELECT name FROM proc_runs WHERE {RUN_ROWS}"))?
        .query_map([run], |r| text(r, 0))?
        .collect::<rusqlite::Result<_>>()?;
    let earlier = Earlier {
        key: &key,
        before: run,
        runs: i64::MAX,
        names: Some(&names),
        stop_early: false,
    };
    Ok(earlier.medians(conn)?.0)
}

/// The expected durations of a script's procs, which the live display shows: the median
/// of each proc's last [`MEDIAN_OF`] successful runs among the script's newest
/// [`EXPECTED_FROM_RUNS`] runs, read from the DB as procs are asked about. The first
/// reading stops once every proc found has its [`MEDIAN_OF`] runs (about as many runs as
/// that, when a script runs the same procs each time); a proc not found then, such as one
/// only some runs name as a target, has the rest of those runs read, once.
pub(crate) struct ExpectedDurations {
    /// The script's key.
    key: String,
    /// What was read; `None` before the first reading.
    found: Option<HashMap<String, Duration>>,
    /// Whether every run to read was read.
    whole: bool,
}

impl ExpectedDurations {
    /// Nothing read yet, for the script whose key is `key`.
    pub(crate) fn new(key: &str) -> Self {
        Self {
            key: key.to_string(),
            found: None,
            whole: false,
        }
    }

    /// The expected duration of `name` if what was read answers it; `None`: ask
    /// [`ExpectedDurations::get`], which reads the DB.
    pub(crate) fn known(&self, name: &str) -> Option<Option<Duration>> {
        match self.found.as_ref()?.get(name) {
            Some(d) => Some(Some(*d)),
            None if self.whole => Some(None),
            None => None,
        }
    }

    /// The expected duration of `name`, reading `store` when what was read does not
    /// answer it. A DB that cannot be read gives none (and is not read again).
    pub(crate) fn get(&mut self, store: &Store, name: &str) -> Option<Duration> {
        loop {
            if let Some(known) = self.known(name) {
                return known;
            }
            let stop_early = self.found.is_none();
            let (found, whole) = store
                .expected_durations(&self.key, stop_early)
                .unwrap_or_else(|_| (HashMap::new(), true));
            self.found = Some(found);
            self.whole = whole;
        }
    }
}

/// How many successful runs of a proc its median duration is taken over.
const MEDIAN_OF: usize = 10;

/// How many of a script's newest runs the expected durations are read from at most.
const EXPECTED_FROM_RUNS: i64 = 100;

/// A look-up of procs' durations in a script's earlier runs. There is no index by proc
/// name (see the schema's version 7): the runs are read one by one, newest first, each
/// by its range of rows (newest first too: a watch records each cycle's row of a proc in
/// its one run), until every proc looked for has [`MEDIAN_OF`] durations.
struct Earlier<'a> {
    /// The script's key (runs recorded before scripts had keys count too).
    key: &'a str,
    /// Only runs before this one.
    before: i64,
    /// At most this many runs.
    runs: i64,
    /// The procs looked for; `None`: every proc found.
    names: Option<&'a HashSet<String>>,
    /// Whether to stop once every proc found has [`MEDIAN_OF`] durations when `names` is
    /// `None` (a proc not found yet may then be in the runs left unread).
    stop_early: bool,
}

impl Earlier<'_> {
    /// Each proc's median duration over its last [`MEDIAN_OF`] successful runs, and
    /// whether every run to read was read.
    fn medians(&self, conn: &Connection) -> rusqlite::Result<(HashMap<String, f64>, bool)> {
        let runs: Vec<(i64, Option<i64>, Option<i64>)> = conn
            .prepare_cached(
                "SELECT id, first_proc, last_proc FROM runs
                 WHERE script_key IN (?1, '') AND id < ?2 AND first_proc IS NOT NULL
                 ORDER BY id DESC LIMIT ?3",
            )?
            .query_map(params![self.key, self.before, self.runs], |r| {
                Ok((r.get(0)?, opt_int(r, 1)?, opt_int(r, 2)?))
            })?
            .collect::<rusqlite::Result<_>>()?;
        let mut procs = conn.prepare_cached(
            "SELECT name, duration FROM proc_runs
             WHERE rowid BETWEEN ?2 AND ?3 AND run_id = ?1
               AND state = 'SUCCEEDED' AND duration IS NOT NULL
             ORDER BY rowid DESC",
        )?;
        let mut found: HashMap<String, Vec<f64>> = HashMap::new();
        let mut whole = true;
        for (i, (id, first, last)) in runs.iter().enumerate() {
            let mut rows = procs.query(params![id, first, last])?;
            while let Some(row) = rows.next()? {
                let name = text(row, 0)?;
                let Some(duration) = opt_f64(row, 1)? else {
                    continue;
                };
                if self.names.is_some_and(|n| !n.contains(&name)) {
                    continue;
                }
                let durations = found.entry(name).or_default();
                if durations.len() < MEDIAN_OF {
                    durations.push(duration);
                }
            }
            if self.enough(&found) {
                whole = i + 1 == runs.len();
                break;
            }
        }
        let medians = found
            .into_iter()
            .filter_map(|(name, d)| Some((name, median(d)?)))
            .collect();
        Ok((medians, whole))
    }

    /// Whether the durations found are all that the runs left could add to.
    fn enough(&self, found: &HashMap<String, Vec<f64>>) -> bool {
        let all_found = match self.names {
            Some(n) => found.len() == n.len(),
            None => self.stop_early && !found.is_empty(),
        };
        all_found && found.values().all(|d| d.len() == MEDIAN_OF)
    }
}

/// The median of some durations; `None` when there are none.
fn median(mut d: Vec<f64>) -> Option<f64> {
    if d.is_empty() {
        return None;
    }
    d.sort_by(f64::total_cmp);
    let mid = d.len() / 2;
    Some(if d.len() % 2 == 1 {
        d[mid]
    } else {
        (d[mid - 1] + d[mid]) / 2.0
    })
}

/// Whether a run whose end is not recorded is still going (see [`owner::judge`]), from
/// its row `r`'s columns `outcome`, `owner` and `started`; for a run recorded as died
/// (see [`owner::record_dead`]), that it died; `None` for a run that ended.
fn judged(
    r: &Row,
    outcome: usize,
    owner: usize,
    started: usize,
) -> rusqlite::Result<Option<Liveness>> {
    if let Some(outcome) = opt_text(r, outcome)? {
        return Ok(owner::recorded(&outcome, opt_text(r, owner)?.as_deref()));
    }
    Ok(Some(owner::judge(
        opt_text(r, owner)?.as_deref(),
        &text(r, started)?,
    )))
}

/// The ids of the runs judged dead among `runs` (each run's id and liveness).
fn died<'a>(runs: impl Iterator<Item = (i64, &'a Option<Liveness>)>) -> Vec<i64> {
    runs.filter(|(_, alive)| matches!(alive, Some(Liveness::Died { .. })))
        .map(|(id, _)| id)
        .collect()
}

/// Whether any of the runs `ids` has recorded its end (read afresh, outside any earlier
/// reading's transaction); `died`, recorded by a later writer that found it dead too, is
/// no end that changes the reading.
fn ended_any(conn: &Connection, ids: &[i64]) -> rusqlite::Result<bool> {
    let mut stmt = conn.prepare_cached(
        "SELECT outcome IS NOT NULL AND outcome IS NOT ?2 FROM runs WHERE id = ?1",
    )?;
    for id in ids {
        let ended: Option<bool> = stmt
            .query_row(params![id, owner::DIED], |r| r.get(0))
            .optional()?;
        if ended == Some(true) {
            return Ok(true);
        }
    }
    Ok(false)
}

/// How many times a reading is made again when a run it judged dead recorded its end
/// meanwhile (see [`Store::read_judged`]).
const JUDGE_TRIES: usize = 3;

/// The rows of `proc_runs` that hold the procs of run `?1`: a search of its range of
/// rows, not a scan of the table.
pub(super) const RUN_ROWS: &str = "rowid BETWEEN (SELECT first_proc FROM runs WHERE id = ?1)
        AND (SELECT last_proc FROM runs WHERE id = ?1) AND run_id = ?1";

impl Store {
    /// What `read` reads, with the runs it judged dead (`died`) looked at again afterwards:
    /// a run that ended between the reading and the judging (its prun gone by then) has
    /// recorded its end, and the reading is made again, up to [`JUDGE_TRIES`] times.
    fn read_judged<T>(
        &self,
        died: impl Fn(&T) -> Vec<i64>,
        read: impl Fn(&Connection) -> rusqlite::Result<T>,
    ) -> Result<T, StoreError> {
        let mut tries = 1;
        loop {
            let found = self.read(&read)?;
            let dead = died(&found);
            if dead.is_empty() || tries == JUDGE_TRIES || !self.read(|c| ended_any(c, &dead))? {
                return Ok(found);
            }
            tries += 1;
        }
    }

    /// The most recent runs of the script whose key is `key` (see [`ScriptName`](super::ScriptName)), newest
    /// first. Runs recorded before scripts had keys are runs of every script.
    pub(crate) fn history(&self, key: &str, limit: usize) -> Result<Vec<HistoryRun>, StoreError> {
        let died = |runs: &Vec<HistoryRun>| died(runs.iter().map(|r| (r.id, &r.alive)));
        self.read_judged(died, |conn| {
            let mut stmt = conn.prepare(
                "SELECT id, started, duration, outcome, counts, owner, error FROM runs
                 WHERE script_key IN (?1, '') ORDER BY id DESC LIMIT ?2",
            )?;
            let rows = stmt.query_map(params![key, limit as i64], |r| {
                Ok(HistoryRun {
                    id: r.get(0)?,
                    started: text(r, 1)?,
                    duration: opt_f64(r, 2)?,
                    outcome: opt_text(r, 3)?,
                    counts: opt_text(r, 4)?,
                    alive: judged(r, 3, 5, 1)?,
                    error: opt_text(r, 6)?,
                })
            })?;
            rows.collect()
        })
    }

    /// The procs of one run, in the order they finished.
    pub(crate) fn run_procs(&self, run: i64) -> Result<Vec<ProcRecord>, StoreError> {
        self.read(|conn| run_procs(conn, run))
    }

    /// A recorded run of the script whose key is `key` (`run`, or its latest when `None`)
    /// with its procs and their earlier medians, all read at one moment of the DB: another
    /// run that prunes old runs meanwhile cannot leave the run without its procs. `None`
    /// when there is no such run of it.
    pub(crate) fn recorded_run(
        &self,
        key: &str,
        run: Option<i64>,
    ) -> Result<Option<RecordedRun>, StoreError> {
        let died = |run: &Option<RecordedRun>| died(run.iter().map(|r| (r.row.id, &r.row.alive)));
        self.read_judged(died, |conn| {
            // One read transaction: its first statement fixes what the others see.
            let tx = conn.unchecked_transaction()?;
            let Some(row) = run_row(&tx, key, run)? else {
                return Ok(None);
            };
            let procs = run_procs(&tx, row.id)?;
            let medians = earlier_medians(&tx, row.id)?;
            tx.finish()?;
            Ok(Some(RecordedRun {
                row,
                procs,
                medians,
            }))
        })
    }

    /// The expected duration of each proc of the script whose key is `key`: the median of
    /// its last [`MEDIAN_OF`] successful runs in that script, among its newest
    /// [`EXPECTED_FROM_RUNS`] runs. With `stop_early`, the reading stops once every proc
    /// found has its [`MEDIAN_OF`]; the flag returned says whether it read every one of
    /// those runs (a proc not found may be in the others when it did not).
    fn expected_durations(
        &self,
        key: &str,
        stop_early: bool,
    ) -> Result<(HashMap<String, Duration>, bool), StoreError> {
        let earlier = Earlier {
            key,
            before: i64::MAX,
            runs: EXPECTED_FROM_RUNS,
            names: None,
            stop_early,
        };
        let (medians, whole) = self.read(|conn| earlier.medians(conn))?;
        // A median no duration can be (negative, NaN or too long: a DB's values are not
        // prun's alone) is no expectation.
        let durations = medians
            .into_iter()
            .filter_map(|(name, m)| Some((name, Duration::try_from_secs_f64(m).ok()?)))
            .collect();
        Ok((durations, whole))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::ScriptName;
    use std::cell::Cell;
    use std::path::Path;
    use std::sync::Arc;

    /// This process as a run's owner, but with another start time: a prun that is gone.
    fn gone_owner() -> String {
        let me = owner::Owner::this_process().expect("this process").json();
        let mut owner: serde_json::Value = serde_json::from_str(&me).expect("json");
        owner["start"] = (owner["start"].as_u64().expect("start") + 1).into();
        owner.to_string()
    }

    #[test]
    fn a_run_judged_dead_that_ended_meanwhile_is_read_again_and_one_still_unended_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        let s = Store::open(&path, Arc::new(|_| {})).unwrap();
        s.begin_run(
            &ScriptName::of(Path::new("s.rhai")),
            &[],
            "2026-01-01T00:00:00Z",
        );
        s.close();
        let other = Connection::open(&path).unwrap();
        other
            .execute("UPDATE runs SET owner = ?1", [gone_owner()])
            .unwrap();
        let read = |end_after_first: bool| {
            let reads = Cell::new(0);
            let runs = s
                .read_judged(
                    |runs: &Vec<(i64, Option<Liveness>)>| died(runs.iter().map(|(id, a)| (*id, a))),
                    |c| {
                        reads.set(reads.get() + 1);
                        let runs = c
                            .prepare("SELECT id, outcome, owner, started FROM runs")?
                            .query_map([], |r| Ok((r.get(0)?, judged(r, 1, 2, 3)?)))?
                            .collect::<rusqlite::Result<Vec<_>>>()?;
                        // The run ends, and its prun exits, before the judging is checked.
                        if end_after_first && reads.get() == 1 {
                            other.execute("UPDATE runs SET outcome = 'ok'", [])?;
                        }
                        Ok(runs)
                    },
                )
                .unwrap();
            (reads.get(), runs[0].1.clone())
        };
        assert!(matches!(read(false), (1, Some(Liveness::Died { .. }))));
        assert_eq!(read(true), (2, None), "read again: it ended");
    }
}

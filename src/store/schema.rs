//! The schema and its migrations, versioned with SQLite's `user_version`, and the
//! hardening of every connection to a DB, which may be another user's (root's cron run
//! with `--db`, `prun history` of a DB shared with a team).

use rusqlite::config::DbConfig;
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
    // 2: what `prun report` draws. Per proc: when it ended, how many attempts it took and
    // each attempt as a JSON segment, the seconds it waited after it was ready, where its
    // last attempt ran (`place`: a local slot, a host, a batch job), and its dependencies
    // as resolved in that run (a JSON array of names). Per run: the parallel limit.
    "ALTER TABLE proc_runs ADD COLUMN ended TEXT;
    ALTER TABLE proc_runs ADD COLUMN attempts INTEGER;
    ALTER TABLE proc_runs ADD COLUMN segments TEXT;
    ALTER TABLE proc_runs ADD COLUMN waited REAL;
    ALTER TABLE proc_runs ADD COLUMN place TEXT;
    ALTER TABLE proc_runs ADD COLUMN deps TEXT;
    ALTER TABLE runs ADD COLUMN parallel INTEGER;",
    // 3: the proto a proc was made from (its template, `encode::[f]`), by which the
    // picture folds many procs into one row.
    "ALTER TABLE proc_runs ADD COLUMN proto TEXT;",
    // 4: the procs of a run found by its id, for the history pruning at the end of every
    // run (deleting a run deletes its procs: without this index, a scan of every proc
    // row of every kept run).
    "CREATE INDEX proc_runs_by_run ON proc_runs(run_id);",
    // 5: the script a run is of, by its canonical path (`script` is the path as typed:
    // `s.rhai` and `./s.rhai` are one script), so that scripts sharing a DB (`--db`) each
    // have their own history. Runs recorded before it have '' (unknown): they count as
    // runs of every script.
    "ALTER TABLE runs ADD COLUMN script_key TEXT NOT NULL DEFAULT '';
    CREATE INDEX runs_by_script ON runs(script_key, id);",
    // 6: the procs of a run found by the range of rowids they were written in
    // (`first_proc` to `last_proc`, with `run_id` telling apart the rows of two runs
    // written at once), not by an index on `run_id`: maintaining that index was a fifth
    // of the task DB's work per finished proc. Rows only ever go at the end of the
    // table, so a run's rows lie within its range. Deleting a run deletes its procs in
    // that range (`Store`'s pruning), not by a foreign key's cascade, which needs the
    // index (and whose check cost another twentieth).
    "ALTER TABLE runs ADD COLUMN first_proc INTEGER;
    ALTER TABLE runs ADD COLUMN last_proc INTEGER;
    UPDATE runs SET first_proc = (SELECT MIN(rowid) FROM proc_runs WHERE run_id = runs.id),
                    last_proc = (SELECT MAX(rowid) FROM proc_runs WHERE run_id = runs.id);
    DROP INDEX proc_runs_by_run;",
    // 7: no index of procs by name. Every finished proc added an entry to it, and a run's
    // entries fell one on each of the index's pages (a name's entries of all the kept
    // runs lie together), so each commit rewrote the whole index: with the 100 runs kept
    // by default, a run of 2,000 short procs took 7 % longer than without it. A proc's
    // earlier durations are read run by run instead, newest first, each run's procs by
    // their range of rows (`earlier_medians` and `Store::expected_durations`, history.rs).
    "DROP INDEX proc_runs_by_name;",
    // 8: the watch cycle a proc's row is of (0: the first run; a run that is no watch has
    // only that one), by which `prun history` groups a watch's rows and `prun report`
    // keeps a critical path within one cycle. Rows written before it have NULL.
    "ALTER TABLE proc_runs ADD COLUMN cycle INTEGER;",
    // 9: the prun process a run is of (`owner`, a JSON object: its pid and start time,
    // its PID namespace, the boot and the host it ran on), by which a reader tells a run
    // still going from one whose prun died without recording its end (`kill -9`, the
    // OOM killer, a power loss): see `owner.rs`. Runs recorded before it have NULL. Its
    // `prun` key is the version of the prun that recorded the run, by which an older
    // prun names the newer one that wrote the DB (see `written_by`): keep both.
    // The cached results go: their rows were keyed by the proc's name alone, where they
    // are now keyed by the script too (`cache::row_prefix`), under a fingerprint scheme that
    // no longer matches them, so none could be read again or replaced by a run.
    "ALTER TABLE runs ADD COLUMN owner TEXT;
    DELETE FROM cache;",
    // 10: why a run stopped, when an error stopped it (a script error, a usage error, an
    // internal error): the message prun printed, secrets masked, as the `--json` report's
    // `run.error` has it. Runs recorded before it have NULL.
    "ALTER TABLE runs ADD COLUMN error TEXT;",
    // 11: the runs without a recorded end, which every run looks through as it opens the
    // DB (for those whose prun died, see `owner::dead_runs`) and as it prunes (those
    // still going are kept): without it, both read every run of a history kept whole
    // (`keep_runs: 0`). An entry is added as a run begins and removed as it ends. And
    // the runs of a script by their start, the order pruning deletes them in.
    "CREATE INDEX runs_unended ON runs(script_key) WHERE outcome IS NULL;
    CREATE INDEX runs_by_start ON runs(script_key, started);",
    // 12: the wave a proc's row is of, by which `prun report`'s critical path steps from a
    // proc to the lower wave's proc it waited for, not only to its dependencies. Rows
    // written before it have NULL (unknown: the chain follows their dependencies only).
    "ALTER TABLE proc_runs ADD COLUMN wave INTEGER;",
];

/// The version of the prun that recorded the DB's latest run (the `prun` key of its
/// `owner`, from version 9 on; a later version keeps both, so that an older prun can
/// name the newer one), when it can be read.
pub(super) fn written_by(conn: &Connection) -> Option<String> {
    let owner: String = conn
        .query_row(
            "SELECT owner FROM runs WHERE owner IS NOT NULL ORDER BY id DESC LIMIT 1",
            [],
            |r| r.get(0),
        )
        .ok()?;
    let owner: serde_json::Value = serde_json::from_str(&owner).ok()?;
    Some(crate::shown::visible(owner.get("prun")?.as_str()?).into_owned())
}

/// The objects prun makes in a DB, by type and name, those of every schema version
/// (`sqlite_autoindex_cache_1` is SQLite's own index of `cache`'s primary key).
const OURS: &[(&str, &str)] = &[
    ("table", "runs"),
    ("table", "proc_runs"),
    ("table", "cache"),
    ("index", "sqlite_autoindex_cache_1"),
    ("index", "proc_runs_by_name"),
    ("index", "proc_runs_by_run"),
    ("index", "runs_by_script"),
    ("index", "runs_unended"),
    ("index", "runs_by_start"),
];

/// Makes a new connection treat the DB's schema as untrusted, as sqlite.org advises for
/// a DB file someone else may have written ("Untrusted SQLite Database Files",
/// security.html): no trigger fires and no view is read, the schema (a column's default,
/// a check) calls no function that has side effects, and no SQL can change the DB's
/// file outside of SQLite's own ways (`SQLITE_DBCONFIG_DEFENSIVE`). Called before the
/// connection reads the schema.
pub(super) fn harden(conn: &Connection) -> rusqlite::Result<()> {
    conn.set_db_config(DbConfig::SQLITE_DBCONFIG_DEFENSIVE, true)?;
    conn.set_db_config(DbConfig::SQLITE_DBCONFIG_TRUSTED_SCHEMA, false)?;
    conn.set_db_config(DbConfig::SQLITE_DBCONFIG_ENABLE_TRIGGER, false)?;
    conn.set_db_config(DbConfig::SQLITE_DBCONFIG_ENABLE_VIEW, false)?;
    Ok(())
}

/// The first object in the DB's schema that prun did not make (a trigger, a view, a
/// table of another name), as `a trigger named NAME`: such a DB is refused, not used.
pub(super) fn foreign_object(conn: &Connection) -> rusqlite::Result<Option<String>> {
    let mut objects = conn.prepare("SELECT type, name FROM sqlite_schema")?;
    let mut rows = objects.query([])?;
    while let Some(row) = rows.next()? {
        let (kind, name) = (super::lenient::text(row, 0)?, super::lenient::text(row, 1)?);
        if !OURS.contains(&(kind.as_str(), name.as_str())) {
            let article = if kind.starts_with(['a', 'e', 'i', 'o', 'u']) {
                "an"
            } else {
                "a"
            };
            return Ok(Some(format!(
                "{article} {} named {}",
                crate::shown::visible(&kind),
                crate::shown::visible(&name)
            )));
        }
    }
    Ok(None)
}

/// The schema version this prun writes.
pub(super) const VERSION: i64 = MIGRATIONS.len() as i64;

/// Brings the schema up to [`VERSION`]; returns the version found, which is larger than
/// [`VERSION`] when a newer prun made the file.
pub(super) fn migrate(conn: &mut Connection) -> rusqlite::Result<i64> {
    let found: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    upgrade(conn, found)
}

/// [`migrate`] of a DB whose version was read as `found` (a run's opening reads it once,
/// to refuse a newer DB before it checks the schema).
pub(super) fn upgrade(conn: &mut Connection, found: i64) -> rusqlite::Result<i64> {
    // Read without taking the write lock first: a DB at this version (every run but a
    // new DB's first) needs nothing more. An upgrade reads it again under the lock.
    if found >= VERSION {
        return Ok(found);
    }
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let found: i64 = tx.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if found >= VERSION {
        return Ok(found);
    }
    for m in &MIGRATIONS[unwritten(found)?..] {
        tx.execute_batch(m)?;
    }
    tx.pragma_update(None, "user_version", VERSION)?;
    tx.commit()?;
    Ok(found)
}

/// Where the migrations a DB of version `found` lacks start; a negative version, which
/// no prun writes, is a corrupt DB (a run moves it aside and starts a new one).
pub(super) fn unwritten(found: i64) -> rusqlite::Result<usize> {
    usize::try_from(found).map_err(|_| {
        rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_CORRUPT),
            Some(format!("schema version {found}, which no prun writes")),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_db_prun_made_holds_nothing_foreign_and_a_planted_view_or_trigger_is_named() {
        let mut conn = Connection::open_in_memory().expect("open");
        conn.execute_batch(MIGRATIONS[0]).expect("version 1");
        conn.pragma_update(None, "user_version", 1)
            .expect("version");
        assert_eq!(foreign_object(&conn).expect("schema"), None, "version 1");
        migrate(&mut conn).expect("migrate");
        assert_eq!(foreign_object(&conn).expect("schema"), None);
        conn.execute_batch("CREATE VIEW seen AS SELECT * FROM runs")
            .expect("plant");
        assert_eq!(
            foreign_object(&conn).expect("schema").as_deref(),
            Some("a view named seen")
        );
        conn.execute_batch(
            "DROP VIEW seen; CREATE TRIGGER t AFTER INSERT ON cache BEGIN DELETE FROM runs; END",
        )
        .expect("plant");
        assert_eq!(
            foreign_object(&conn).expect("schema").as_deref(),
            Some("a trigger named t")
        );
    }

    #[test]
    fn a_hardened_connection_fires_no_trigger_and_reads_no_view() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("t.db");
        let mut planter = Connection::open(&path).expect("open");
        migrate(&mut planter).expect("migrate");
        planter
            .execute_batch(
                "CREATE TRIGGER t AFTER INSERT ON cache BEGIN
                     INSERT INTO runs (script, args, started) VALUES ('planted', '', '');
                 END;
                 CREATE VIEW v AS SELECT * FROM runs;",
            )
            .expect("plant");
        let conn = Connection::open(&path).expect("open");
        harden(&conn).expect("harden");
        conn.execute("INSERT INTO cache VALUES ('a', '1', 'f', 's', 't')", [])
            .expect("write");
        let runs: i64 = conn
            .query_row("SELECT COUNT(*) FROM runs", [], |r| r.get(0))
            .expect("count");
        assert_eq!(runs, 0, "the trigger fired");
        assert!(conn.query_row("SELECT 1 FROM v", [], |_| Ok(())).is_err());
    }

    #[test]
    fn a_version_5_db_gets_each_runs_range_of_proc_rows_and_loses_its_indexes_of_procs() {
        let mut conn = Connection::open_in_memory().expect("open");
        for m in &MIGRATIONS[..5] {
            conn.execute_batch(m).expect("version 5");
        }
        conn.pragma_update(None, "user_version", 5)
            .expect("version");
        conn.execute_batch(
            "INSERT INTO runs (id, script, args, started) VALUES (1, 's', '[]', 't'), (2, 's', '[]', 't'), (3, 's', '[]', 't');
             INSERT INTO proc_runs (run_id, name, state) VALUES (1, 'a', 'S'), (2, 'b', 'S'), (1, 'c', 'S'), (2, 'd', 'S');",
        )
        .expect("rows");
        assert_eq!(migrate(&mut conn).expect("migrate"), 5);
        let ranges: Vec<(i64, Option<i64>, Option<i64>)> = conn
            .prepare("SELECT id, first_proc, last_proc FROM runs ORDER BY id")
            .expect("ranges")
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .expect("rows")
            .collect::<Result<_, _>>()
            .expect("ranges");
        assert_eq!(
            ranges,
            [
                (1, Some(1), Some(3)),
                (2, Some(2), Some(4)),
                (3, None, None)
            ]
        );
        let indexes: i64 = conn
            .query_row(
                "SELECT COUNT(*) FROM sqlite_master WHERE type = 'index' AND tbl_name = 'proc_runs'",
                [],
                |r| r.get(0),
            )
            .expect("index");
        assert_eq!(indexes, 0, "neither by run nor by name");
    }

    #[test]
    fn a_current_db_is_read_without_waiting_for_the_write_lock() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("t.db");
        let mut first = Connection::open(&path).expect("open");
        let _: String = first
            .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
            .expect("wal");
        migrate(&mut first).expect("migrate");
        // Another run holds the write lock, and this one would not wait for it.
        let writing = first
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .expect("lock");
        writing
            .execute("INSERT INTO cache VALUES ('a', '1', 'f', 's', 'then')", [])
            .expect("write");
        let mut second = Connection::open(&path).expect("open");
        second
            .busy_timeout(std::time::Duration::ZERO)
            .expect("timeout");
        assert_eq!(migrate(&mut second).expect("migrate"), VERSION);
    }

    #[test]
    fn a_version_8_db_gains_the_owner_of_each_run_unknown_for_its_runs_and_drops_its_cache() {
        let mut conn = Connection::open_in_memory().expect("open");
        for m in &MIGRATIONS[..8] {
            conn.execute_batch(m).expect("version 8");
        }
        conn.pragma_update(None, "user_version", 8)
            .expect("version");
        conn.execute_batch(
            "INSERT INTO runs (id, script, args, started) VALUES (1, 's', '[]', 't');
             INSERT INTO cache VALUES ('build', '()', 'f', 's', 't');",
        )
        .expect("rows");
        assert_eq!(migrate(&mut conn).expect("migrate"), 8);
        let owner: Option<String> = conn
            .query_row("SELECT owner FROM runs WHERE id = 1", [], |r| r.get(0))
            .expect("the old run");
        assert_eq!(owner, None);
        let cached: i64 = conn
            .query_row("SELECT COUNT(*) FROM cache", [], |r| r.get(0))
            .expect("count");
        assert_eq!(
            cached, 0,
            "a row keyed by the proc's name alone is never read again"
        );
    }

    #[test]
    fn a_version_9_db_gains_why_each_run_stopped_unknown_for_its_runs() {
        let mut conn = Connection::open_in_memory().expect("open");
        for m in &MIGRATIONS[..9] {
            conn.execute_batch(m).expect("version 9");
        }
        conn.pragma_update(None, "user_version", 9)
            .expect("version");
        conn.execute_batch(
            "INSERT INTO runs (id, script, args, started, outcome) VALUES (1, 's', '[]', 't', 'script error');",
        )
        .expect("rows");
        assert_eq!(migrate(&mut conn).expect("migrate"), 9);
        let (outcome, error): (String, Option<String>) = conn
            .query_row("SELECT outcome, error FROM runs WHERE id = 1", [], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .expect("the old run");
        assert_eq!((outcome.as_str(), error), ("script error", None));
        assert_eq!(migrate(&mut conn).expect("again"), VERSION);
    }

    #[test]
    fn a_version_11_db_gains_the_wave_of_each_proc_row_unknown_for_its_rows() {
        let mut conn = Connection::open_in_memory().expect("open");
        for m in &MIGRATIONS[..11] {
            conn.execute_batch(m).expect("version 11");
        }
        conn.pragma_update(None, "user_version", 11)
            .expect("version");
        conn.execute_batch(
            "INSERT INTO runs (id, script, args, started) VALUES (1, 's', '[]', 't');
             INSERT INTO proc_runs (run_id, name, state, cycle) VALUES (1, 'a', 'SUCCEEDED', 0);",
        )
        .expect("rows");
        assert_eq!(migrate(&mut conn).expect("migrate"), 11);
        let (cycle, wave): (i64, Option<i64>) = conn
            .query_row(
                "SELECT cycle, wave FROM proc_runs WHERE name = 'a'",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .expect("the old row");
        assert_eq!((cycle, wave), (0, None));
        conn.execute(
            "INSERT INTO proc_runs (run_id, name, state, wave) VALUES (1, 'b', 'SUCCEEDED', -1)",
            [],
        )
        .expect("a row with its wave");
        assert_eq!(migrate(&mut conn).expect("again"), VERSION);
    }

    #[test]
    fn a_version_1_db_gains_the_report_columns_and_keeps_its_rows() {
        let mut conn = Connection::open_in_memory().expect("open");
        conn.execute_batch(MIGRATIONS[0]).expect("version 1");
        conn.pragma_update(None, "user_version", 1)
            .expect("version");
        conn.execute_batch(
            "INSERT INTO runs (id, script, args, started) VALUES (1, 's.rhai', '[]', 'then');
             INSERT INTO proc_runs (run_id, name, state, duration) VALUES (1, 'a', 'SUCCEEDED', 2.5);",
        )
        .expect("rows");
        assert_eq!(migrate(&mut conn).expect("migrate"), 1);
        let (duration, place, deps, proto): (f64, Option<String>, Option<String>, Option<String>) =
            conn.query_row(
                "SELECT duration, place, deps, proto FROM proc_runs WHERE name = 'a'",
                [],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
            )
            .expect("the old row");
        assert_eq!((duration, place, deps, proto), (2.5, None, None, None));
        let parallel: Option<i64> = conn
            .query_row("SELECT parallel FROM runs", [], |r| r.get(0))
            .expect("the old run");
        assert_eq!(parallel, None);
        assert_eq!(migrate(&mut conn).expect("again"), VERSION);
    }
}

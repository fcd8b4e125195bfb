//! Procs that need no judging start while the task DB is still opening, and what the DB
//! keeps of them is written once it is open.

use std::process::{Command, Stdio};
use std::time::Duration;

use crate::support::run_within;

/// `a` needs no judging (no dependencies, no inputs); `b` depends on it, so it is judged.
const SCRIPT: &str = r#"
proc("a", #{ cmd: ["touch", "a-started"] });
proc("b", #{ deps: ["a"], cmd: ["true"] });
run("b");
"#;

/// How long the second run may take in all (a hang guard).
const RUN_LIMIT: Duration = Duration::from_secs(60);

fn rows_of(conn: &rusqlite::Connection, name: &str) -> i64 {
    conn.query_row(
        "SELECT COUNT(*) FROM proc_runs WHERE name = ?1",
        [name],
        |r| r.get(0),
    )
    .expect("count proc_runs")
}

#[test]
fn a_proc_without_dependencies_starts_while_the_db_is_locked_and_its_row_is_kept() {
    let dir = tempfile::tempdir().expect("tempdir");
    let dir = dir.path();
    std::fs::write(dir.join("main.rhai"), SCRIPT).expect("write script");
    let prun = || {
        let mut c = Command::new(env!("CARGO_BIN_EXE_prun"));
        c.args(["main.rhai", "--db", "tasks.db", "--no-live"])
            .current_dir(dir)
            .env("XDG_STATE_HOME", dir.join("state"))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        c
    };
    let first = run_within(prun(), "the first run", RUN_LIMIT, |_| {});
    assert!(first.status.success(), "first run failed: {}", first.stderr);
    std::fs::remove_file(dir.join("a-started")).expect("a ran in the first run");

    // An exclusive lock in rollback-journal mode keeps every other connection from even
    // reading the DB: the second run's open waits on it.
    let db = dir.join("tasks.db");
    let conn = rusqlite::Connection::open(&db).expect("open the task DB");
    let mode: String = conn
        .query_row("PRAGMA journal_mode = DELETE", [], |r| r.get(0))
        .expect("journal mode");
    assert_eq!(mode, "delete");
    conn.execute_batch("BEGIN EXCLUSIVE")
        .expect("lock the task DB");

    // The lock is released once `a` has started. A run that waited for the DB to open
    // before starting `a` gives up on it after its busy timeout, and says it runs
    // without the task DB (asserted against below).
    let mut lock = Some(conn);
    let mut started = false;
    let second = run_within(prun(), "the second run", RUN_LIMIT, |_| {
        if lock.is_none() {
            return;
        }
        started = dir.join("a-started").exists();
        if started {
            let conn = lock.take().expect("the lock");
            conn.execute_batch("COMMIT").expect("unlock the task DB");
        }
    });
    assert!(
        started,
        "`a` did not start while the task DB was locked (it waited for the DB to open)"
    );
    assert!(
        second.status.success(),
        "second run failed:\n{}\n{}",
        second.stdout,
        second.stderr
    );
    assert!(
        !second.stderr.contains("without the task DB"),
        "the DB was not used: {}",
        second.stderr
    );
    // Each run left a history row for both procs: `a`'s of the second run was kept while
    // the DB opened.
    let conn = rusqlite::Connection::open(&db).expect("reopen the task DB");
    assert_eq!(rows_of(&conn, "a"), 2);
    assert_eq!(rows_of(&conn, "b"), 2);
}

/// A signal while the run waits for its last commit, which another process's lock holds
/// up, ends the run at once, without the rows it could not commit (and says so), rather
/// than after the 10 s the writer would wait for the lock: the run is bounded below that.
#[test]
fn a_signal_ends_the_wait_for_a_locked_task_db_at_the_end_of_a_run() {
    let dir = tempfile::tempdir().expect("tempdir");
    let dir = dir.path();
    std::fs::write(
        dir.join("main.rhai"),
        r#"proc("a", #{ cmd: ["touch", "done"] }); run("a");"#,
    )
    .expect("write script");
    let prun = || {
        let mut c = Command::new(env!("CARGO_BIN_EXE_prun"));
        c.args(["main.rhai", "--db", "tasks.db", "--no-live"])
            .current_dir(dir)
            .env("XDG_STATE_HOME", dir.join("state"));
        c
    };
    let first = run_within(prun(), "the first run", RUN_LIMIT, |_| {});
    assert!(first.status.success(), "first run failed: {}", first.stderr);
    std::fs::remove_file(dir.join("done")).expect("a ran in the first run");

    // In WAL mode an exclusive transaction lets others read but not write: the second
    // run opens the DB and runs, and its commits wait for the lock, held to the end.
    let conn = rusqlite::Connection::open(dir.join("tasks.db")).expect("open the task DB");
    conn.execute_batch("BEGIN EXCLUSIVE")
        .expect("lock the task DB");
    let mut signalled = false;
    let second = run_within(prun(), "the second run", Duration::from_secs(8), |child| {
        if !signalled && dir.join("done").exists() {
            signalled = true;
            let _ = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status();
        }
    });
    assert!(signalled, "`a` never ran:\n{}", second.stderr);
    assert!(
        second
            .stderr
            .contains("failed to write the task DB tasks.db: database is locked"),
        "{}",
        second.stderr
    );
    conn.execute_batch("COMMIT").expect("unlock the task DB");
    assert_eq!(rows_of(&conn, "a"), 1, "the first run's row is kept");
}

/// A DB a newer prun wrote (its schema version past this prun's) is named with both
/// versions, the prun's and the schema's, by a reader (exit 2, as for a DB it may not
/// read) and by a run, which goes on without it; neither changes it.
#[test]
fn a_db_of_a_newer_prun_is_named_with_its_versions_and_left_as_it_is() {
    let dir = tempfile::tempdir().expect("tempdir");
    let dir = dir.path();
    std::fs::write(dir.join("main.rhai"), SCRIPT).expect("write script");
    let prun = |words: &[&str]| {
        let mut c = Command::new(env!("CARGO_BIN_EXE_prun"));
        c.args(words)
            .current_dir(dir)
            .env("XDG_STATE_HOME", dir.join("state"))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        run_within(c, &format!("prun {words:?}"), RUN_LIMIT, |_| {})
    };
    let run = ["main.rhai", "--db", "tasks.db", "--no-live"];
    assert!(prun(&run).status.success());
    let db = dir.join("tasks.db");
    let conn = rusqlite::Connection::open(&db).expect("open the task DB");
    let newer: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get::<_, i64>(0))
        .expect("version")
        + 3;
    conn.pragma_update(None, "user_version", newer)
        .expect("a newer schema");
    drop(conn);
    let said = format!(
        "was written by a newer prun (prun {v}, schema version {newer}); this is prun {v}, which knows schema versions up to {}",
        newer - 3,
        v = env!("CARGO_PKG_VERSION")
    );
    for words in [
        &["history", "main.rhai", "--db", "tasks.db"][..],
        &["report", "main.rhai", "--db", "tasks.db"],
    ] {
        let read = prun(words);
        assert_eq!(read.status.code(), Some(2), "{words:?}: {}", read.stderr);
        assert!(read.stderr.contains(&said), "{words:?}: {}", read.stderr);
    }
    let ran = prun(&run);
    assert!(ran.status.success(), "{}", ran.stderr);
    assert!(ran.stderr.contains(&said), "{}", ran.stderr);
    let conn = rusqlite::Connection::open(&db).expect("open the task DB");
    let version: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .expect("version");
    let runs: i64 = conn
        .query_row("SELECT COUNT(*) FROM runs", [], |r| r.get(0))
        .expect("runs");
    assert_eq!((version, runs), (newer, 1), "the DB is left as it was");
}

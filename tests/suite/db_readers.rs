//! Reading a task DB one may not write: `prun history` and `prun report` open it read-only,
//! so a team member can look at root's cron runs in a DB root made readable (`chmod a+r`),
//! between runs and during one, without writing anything next to it; a DB they may not
//! read is an error that says which permission is missing.
//!
//! These tests need a second user: they run only as root (as CI does), with `runuser`;
//! elsewhere `cargo test` counts them as ignored and says why.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::{Finished, run_bounded};

fn chmod(p: &Path, mode: u32) {
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).expect("chmod");
}

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).expect("metadata").permissions().mode() & 0o7777
}

/// A script whose runs root keeps in `shared/tasks.db`, in a directory everyone may read
/// and enter but only root may write.
struct Team {
    _root: tempfile::TempDir,
    dir: PathBuf,
    db: PathBuf,
}

impl Team {
    fn new(script: &str) -> Team {
        let root = tempfile::tempdir().expect("tempdir");
        let dir = root.path().to_path_buf();
        chmod(&dir, 0o755);
        std::fs::create_dir(dir.join("shared")).expect("mkdir");
        chmod(&dir.join("shared"), 0o755);
        std::fs::write(dir.join("s.rhai"), script).expect("write script");
        // `nobody`'s own state directory (a run needs one).
        std::fs::create_dir(dir.join("nobody")).expect("mkdir");
        nix::unistd::chown(
            &dir.join("nobody"),
            Some(nix::unistd::Uid::from_raw(65534)),
            None,
        )
        .expect("chown");
        chmod(&dir.join("s.rhai"), 0o644);
        let db = dir.join("shared/tasks.db");
        Team {
            _root: root,
            dir,
            db,
        }
    }

    /// `prun WORDS...` in the directory, as `user` (root when `None`), with an environment
    /// of its own (`env -i`) and a state directory of its own.
    fn prun_as(&self, user: Option<&str>, words: &[&str]) -> Command {
        let state = self
            .dir
            .join(if user.is_some() { "nobody" } else { "state" });
        let mut cmd = match user {
            Some(u) => {
                let mut c = Command::new("runuser");
                c.args(["-u", u, "--", "env"]);
                c
            }
            None => Command::new("env"),
        };
        cmd.arg("-i")
            .arg(format!(
                "PATH={}",
                std::env::var("PATH").unwrap_or_default()
            ))
            .arg(format!("XDG_STATE_HOME={}", state.display()))
            .arg(env!("CARGO_BIN_EXE_prun"))
            .args(words)
            .current_dir(&self.dir);
        cmd
    }

    fn run(&self, user: Option<&str>, words: &[&str]) -> Finished {
        run_bounded(
            self.prun_as(user, words),
            &format!("prun {words:?}"),
            |_| {},
        )
    }

    /// `prun history s.rhai --db shared/tasks.db` as `nobody`.
    fn history(&self) -> Finished {
        self.run(
            Some("nobody"),
            &["history", "s.rhai", "--db", "shared/tasks.db"],
        )
    }

    /// The files in `shared/`.
    fn shared(&self) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(self.dir.join("shared"))
            .expect("read shared")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }
}

fn describe(f: &Finished) -> String {
    format!(
        "exited with {:?}\n--- stdout\n{}\n--- stderr\n{}",
        f.status.code(),
        f.stdout,
        f.stderr
    )
}

#[test]
#[cfg_attr(prun_no_root, ignore = "needs root (to run a command as another user)")]
fn another_user_reads_the_history_of_a_db_its_owner_made_readable() {
    let team = Team::new(
        r#"proc("a", #{ shell: "echo a" }); proc("b", #{ deps: ["a"], cmd: ["true"] }); run("b");"#,
    );
    let ran = team.run(None, &["s.rhai", "--db", "shared/tasks.db"]);
    assert!(ran.status.success(), "{}", describe(&ran));
    assert_eq!(mode(&team.db), 0o600, "private when made");
    chmod(&team.db, 0o644);

    let h = team.history();
    assert!(h.status.success(), "{}", describe(&h));
    assert!(h.stdout.contains("2 succeeded"), "{}", describe(&h));
    for words in [
        &["report", "s.rhai", "--db", "shared/tasks.db"][..],
        &["report", "s.rhai", "--db", "shared/tasks.db", "--html", "-"][..],
    ] {
        let r = team.run(Some("nobody"), words);
        assert!(r.status.success(), "{words:?}: {}", describe(&r));
        assert!(r.stdout.contains("s.rhai"), "{}", describe(&r));
    }
    assert_eq!(team.shared(), ["tasks.db"], "a reader made no file there");

    // A run, which writes, still goes on without a DB it cannot write, and leaves it be.
    let before = std::fs::read(&team.db).expect("read the DB");
    let theirs = team.run(Some("nobody"), &["s.rhai", "--db", "shared/tasks.db"]);
    assert!(theirs.status.success(), "{}", describe(&theirs));
    assert!(
        theirs.stderr.contains(&format!(
            "warning: failed to open the task DB shared/tasks.db (in {}): Permission denied",
            team.dir.display()
        )) && theirs.stderr.contains("running without the task DB"),
        "{}",
        describe(&theirs)
    );
    assert_eq!(std::fs::read(&team.db).expect("read the DB"), before);
    assert_eq!(team.shared(), ["tasks.db"]);

    // The owner's next run keeps the read permission it gave (never a write one).
    let ran = team.run(None, &["s.rhai", "--db", "shared/tasks.db"]);
    assert!(ran.status.success(), "{}", describe(&ran));
    assert_eq!(mode(&team.db), 0o644);
    let h = team.history();
    assert!(h.status.success(), "{}", describe(&h));
    assert!(h.stdout.contains("     2  "), "{}", describe(&h));

    // What the reader lacks is named, with what the owner can do.
    chmod(&team.db, 0o600);
    let h = team.history();
    assert_eq!(h.status.code(), Some(2), "{}", describe(&h));
    assert!(
        h.stderr.contains("shared/tasks.db is owned by uid 0 (root), mode 0600, and you (uid 65534 (nobody)) may not read it; its owner can let you: chmod a+r shared/tasks.db"),
        "{}",
        describe(&h)
    );
    chmod(&team.db, 0o644);
    chmod(&team.dir.join("shared"), 0o700);
    let h = team.history();
    assert_eq!(h.status.code(), Some(2), "{}", describe(&h));
    assert!(
        h.stderr.contains("the directory shared is owned by uid 0 (root), mode 0700, and you (uid 65534 (nobody)) may not enter it; its owner can let you: chmod a+x shared"),
        "{}",
        describe(&h)
    );
    chmod(&team.dir.join("shared"), 0o755);
    assert_eq!(team.shared(), ["tasks.db"]);
}

#[test]
#[cfg_attr(prun_no_root, ignore = "needs root (to run a command as another user)")]
fn another_user_reads_the_history_while_a_run_writes_it() {
    let team = Team::new(
        r#"proc("a", #{ shell: "echo a" });
proc("b", #{ deps: ["a"], shell: "touch b-started; while [ ! -e go ]; do sleep 0.01; done" });
run("b");"#,
    );
    // Made readable before the run: SQLite gives the `-wal` and `-shm` files it makes the
    // DB's mode.
    std::fs::File::create(&team.db).expect("create the DB");
    chmod(&team.db, 0o644);
    let mut seen: Option<Finished> = None;
    let mut files = Vec::new();
    let ran = run_bounded(
        team.prun_as(None, &["s.rhai", "--db", "shared/tasks.db"]),
        "the run",
        |_| {
            if seen.is_some() || !team.dir.join("b-started").exists() {
                return;
            }
            // `a`'s row is committed within the writer's batch window after it ended.
            for _ in 0..500 {
                let h = team.history();
                let done = h.stdout.contains("SUCCEEDED  a");
                seen = Some(h);
                if done {
                    break;
                }
            }
            files = team.shared();
            std::fs::write(team.dir.join("go"), "").expect("write go");
        },
    );
    assert!(ran.status.success(), "{}", describe(&ran));
    let h = seen.expect("the history was read during the run");
    assert!(h.status.success(), "{}", describe(&h));
    assert!(h.stdout.contains("  running  "), "{}", describe(&h));
    assert!(h.stdout.contains("SUCCEEDED  a"), "{}", describe(&h));
    assert_eq!(
        files,
        ["tasks.db", "tasks.db-shm", "tasks.db-wal"],
        "read through the run's -wal"
    );
}

#[test]
#[cfg_attr(prun_no_root, ignore = "needs root (to run a command as another user)")]
fn another_user_reads_the_runs_in_a_wal_whose_shm_is_gone() {
    // A run killed before it closed the DB leaves its `-wal`; without the `-shm` beside
    // it, SQLite must make one to read the `-wal`, and a reader that may not write there
    // failed: "unable to open database file".
    let team = Team::new(r#"proc("a", #{ shell: "echo a" }); run("a");"#);
    let ran = team.run(None, &["s.rhai", "--db", "shared/tasks.db"]);
    assert!(ran.status.success(), "{}", describe(&ran));
    // A connection open through the second run, which closes without moving the `-wal`
    // into the DB file: the second run is only in the `-wal`.
    let conn = rusqlite::Connection::open(&team.db).expect("open the DB");
    conn.set_db_config(
        rusqlite::config::DbConfig::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE,
        true,
    )
    .expect("no checkpoint on close");
    let runs: i64 = conn
        .query_row("SELECT count(*) FROM runs", [], |r| r.get(0))
        .expect("read the DB");
    assert_eq!(runs, 1);
    let ran = team.run(None, &["s.rhai", "--db", "shared/tasks.db"]);
    assert!(ran.status.success(), "{}", describe(&ran));
    drop(conn);
    let wal = team.dir.join("shared/tasks.db-wal");
    std::fs::remove_file(team.dir.join("shared/tasks.db-shm")).expect("remove the -shm");
    assert!(std::fs::metadata(&wal).expect("the -wal").len() > 0);
    chmod(&team.db, 0o644);
    chmod(&wal, 0o644);

    let h = team.history();
    assert!(h.status.success(), "{}", describe(&h));
    assert!(h.stdout.contains("     2  "), "{}", describe(&h));
    assert_eq!(
        team.shared(),
        ["tasks.db", "tasks.db-wal"],
        "a reader made no file there"
    );
}

#[test]
#[cfg_attr(prun_no_root, ignore = "needs root (to run a command as another user)")]
fn a_db_of_an_older_schema_is_brought_up_to_date_by_its_owner_only() {
    let team = Team::new(r#"proc("a", #{ cmd: ["true"] }); run("a");"#);
    // Schema version 1, as the first prun made it, with one run.
    let conn = rusqlite::Connection::open(&team.db).expect("open");
    conn.execute_batch(
        "PRAGMA journal_mode = WAL;
        CREATE TABLE runs (id INTEGER PRIMARY KEY, script TEXT NOT NULL, args TEXT NOT NULL,
            started TEXT NOT NULL, ended TEXT, duration REAL, outcome TEXT, counts TEXT);
        CREATE TABLE proc_runs (run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
            name TEXT NOT NULL, state TEXT NOT NULL, started TEXT, duration REAL,
            exit_code INTEGER, log TEXT, error TEXT);
        CREATE INDEX proc_runs_by_name ON proc_runs(name, run_id);
        CREATE TABLE cache (name TEXT PRIMARY KEY, result TEXT NOT NULL,
            fingerprint TEXT NOT NULL, stamp TEXT NOT NULL, saved TEXT NOT NULL);
        INSERT INTO runs (id, script, args, started, duration, outcome)
            VALUES (1, 's.rhai', '[]', '2026-01-01T00:00:00.000Z', 1.5, 'ok');
        PRAGMA user_version = 1;",
    )
    .expect("an old DB");
    drop(conn);
    chmod(&team.db, 0o644);
    let h = team.history();
    assert_eq!(h.status.code(), Some(2), "{}", describe(&h));
    assert!(
        h.stderr
            .contains("was written by an older prun (schema version 1, this prun reads")
            && h.stderr
                .contains("the next run of its owner, uid 0 (root), brings it up to date"),
        "{}",
        describe(&h)
    );
    let mine = team.run(None, &["history", "s.rhai", "--db", "shared/tasks.db"]);
    assert!(mine.status.success(), "{}", describe(&mine));
    assert!(
        mine.stdout.contains("2026-01-01T00:00:00.000Z"),
        "{}",
        describe(&mine)
    );
    let h = team.history();
    assert!(h.status.success(), "{}", describe(&h));
}

#[test]
#[cfg_attr(prun_no_root, ignore = "needs root (to run a command as another user)")]
fn prun_log_says_when_the_logs_are_not_the_users_to_read() {
    let team = Team::new(
        r#"set_options(#{ log_dir: "shared/logs" }); proc("a", #{ shell: "echo said" }); run("a");"#,
    );
    let ran = team.run(None, &["s.rhai"]);
    assert!(ran.status.success(), "{}", describe(&ran));
    // Logs stay private to their owner (each run's directory is made 0700).
    let l = team.run(Some("nobody"), &["log", "s.rhai", "a"]);
    assert_eq!(l.status.code(), Some(2), "{}", describe(&l));
    assert!(
        l.stderr.contains(&format!(
            "failed to read shared/logs (in {}): Permission denied",
            team.dir.display()
        )),
        "not \"no log\": {}",
        describe(&l)
    );
    let opened = Command::new("chmod")
        .args(["-R", "a+rX"])
        .arg(team.dir.join("shared/logs"))
        .status()
        .expect("chmod");
    assert!(opened.success());
    let l = team.run(Some("nobody"), &["log", "s.rhai", "a"]);
    assert!(l.status.success(), "{}", describe(&l));
    assert!(l.stdout.contains("\nsaid\n"), "{}", describe(&l));
}

#[test]
#[cfg_attr(prun_no_root, ignore = "needs root (to run a command as another user)")]
fn later_runs_keep_the_read_permission_given_to_the_log_root_never_a_write_one() {
    let script = |said: &str| {
        format!(
            r#"set_options(#{{ log_dir: "shared/logs" }});
            proc("a", #{{ shell: "echo {said}" }});
            proc("b", |ctx| ctx.log("{said} by b"));
            run(["a", "b"]);"#
        )
    };
    let team = Team::new(&script("first"));
    let ran = team.run(None, &["s.rhai"]);
    assert!(ran.status.success(), "{}", describe(&ran));
    let logs = team.dir.join("shared/logs");
    let opened = Command::new("chmod")
        .args(["-R", "go+rX"])
        .arg(&logs)
        .status()
        .expect("chmod");
    assert!(opened.success());
    std::fs::write(team.dir.join("s.rhai"), script("second")).expect("write script");
    let ran = team.run(None, &["s.rhai"]);
    assert!(ran.status.success(), "{}", describe(&ran));
    for (name, said) in [("a", "\nsecond\n"), ("b", "second by b")] {
        let l = team.run(Some("nobody"), &["log", "s.rhai", name]);
        assert!(l.status.success(), "{}", describe(&l));
        assert!(
            l.stdout.contains(said),
            "the second run's: {}",
            describe(&l)
        );
    }
    let newest = |logs: &Path| {
        let mut runs: Vec<PathBuf> = std::fs::read_dir(logs)
            .expect("read logs")
            .map(|e| e.expect("entry").path())
            .collect();
        runs.sort();
        runs.pop().expect("a run directory")
    };
    let run = newest(&logs);
    assert_eq!(mode(&run), 0o755, "{}", run.display());
    assert_eq!(mode(&run.join("a.log")), 0o644);
    assert_eq!(mode(&run.join("b.log")), 0o644);
    // A log root others may write shares nothing: the next run's logs are private.
    chmod(&logs, 0o775);
    let ran = team.run(None, &["s.rhai"]);
    assert!(ran.status.success(), "{}", describe(&ran));
    let run = newest(&logs);
    assert_eq!(mode(&run), 0o700, "{}", run.display());
    assert_eq!(mode(&run.join("a.log")), 0o600);
}

#[test]
#[cfg_attr(prun_no_root, ignore = "needs root (to run a command as another user)")]
fn another_users_dry_run_judges_from_a_db_it_may_only_read() {
    let team = Team::new(r#"proc("a", #{ cmd: ["true"], inputs: ["s.rhai"] }); run("a");"#);
    let ran = team.run(None, &["s.rhai", "--db", "shared/tasks.db"]);
    assert!(ran.status.success(), "{}", describe(&ran));
    chmod(&team.db, 0o644);
    let dry = team.run(
        Some("nobody"),
        &["s.rhai", "--db", "shared/tasks.db", "--dry-run"],
    );
    assert!(dry.status.success(), "{}", describe(&dry));
    assert!(
        dry.stdout.contains("0 would run, 1 up to date") && !dry.stderr.contains("warning"),
        "{}",
        describe(&dry)
    );
    assert_eq!(team.shared(), ["tasks.db"], "a dry run made no file there");
}

/// A DB whose file its user may write but whose directory they may not (made read-only
/// after the DB was): the run goes on without it, with a warning that says why, which
/// SQLite's own words (`attempt to write a readonly database`) did not; `history` reads it.
#[test]
#[cfg_attr(prun_no_root, ignore = "needs root (to run a command as another user)")]
fn a_db_in_a_directory_made_read_only_is_a_warning_naming_the_directory() {
    let team = Team::new(r#"proc("a", #{ cmd: ["true"] }); run("a");"#);
    let own = team.dir.join("nobody/db");
    std::fs::create_dir(&own).expect("mkdir");
    nix::unistd::chown(&own, Some(nix::unistd::Uid::from_raw(65534)), None).expect("chown");
    let words = ["s.rhai", "--db", "nobody/db/t.db"];
    let first = team.run(Some("nobody"), &words);
    assert!(first.status.success(), "{}", describe(&first));
    chmod(&own, 0o555);
    let second = team.run(Some("nobody"), &words);
    assert!(second.status.success(), "{}", describe(&second));
    assert!(
        second.stderr.contains(
            "attempt to write a readonly database, as its directory nobody/db (in "
        ) && second.stderr.contains(
            ") is not writable (SQLite makes the DB's -wal and -shm files there); running without the task DB"
        ),
        "{}",
        describe(&second)
    );
    let h = team.run(
        Some("nobody"),
        &["history", "s.rhai", "--db", "nobody/db/t.db"],
    );
    assert!(h.status.success(), "{}", describe(&h));
    assert_eq!(h.stdout.matches("  ok  ").count(), 1, "{}", describe(&h));
}

/// How many runs of the DB at `db` have the outcome `planted` (set by a planted trigger).
fn planted(db: &Path) -> i64 {
    let conn = rusqlite::Connection::open(db).expect("open");
    conn.query_row(
        "SELECT COUNT(*) FROM runs WHERE outcome = 'planted'",
        [],
        |r| r.get(0),
    )
    .expect("count")
}

/// A DB is parsed by SQLite as whoever opens it, root's cron runs too: a trigger planted
/// in it (here one that rewrites the history as a run is recorded) never fires, and the
/// DB is refused by name, by its owner's run and history, and by root reading another
/// user's DB.
#[test]
#[cfg_attr(prun_no_root, ignore = "needs root (to run a command as another user)")]
fn a_db_holding_a_trigger_prun_did_not_make_is_refused_and_the_trigger_never_fires() {
    let team = Team::new(r#"proc("a", #{ cmd: ["true"] }); run("a");"#);
    let words = ["s.rhai", "--db", "shared/tasks.db"];
    let first = team.run(None, &words);
    assert!(first.status.success(), "{}", describe(&first));
    let conn = rusqlite::Connection::open(&team.db).expect("open");
    conn.execute_batch(
        "CREATE TRIGGER planted AFTER INSERT ON runs BEGIN UPDATE runs SET outcome = 'planted'; END;",
    )
    .expect("plant");
    drop(conn);
    let refused = "holds a trigger named planted that prun did not make";
    let again = team.run(None, &words);
    assert!(again.status.success(), "{}", describe(&again));
    assert!(again.stderr.contains(refused), "{}", describe(&again));
    assert_eq!(planted(&team.db), 0, "{}", describe(&again));
    let history = ["history", "s.rhai", "--db", "shared/tasks.db"];
    let mine = team.run(None, &history);
    assert_eq!(mine.status.code(), Some(2), "{}", describe(&mine));
    assert!(mine.stderr.contains(refused), "{}", describe(&mine));

    nix::unistd::chown(&team.db, Some(nix::unistd::Uid::from_raw(65534)), None).expect("chown");
    chmod(&team.db, 0o644);
    for words in [
        &history[..],
        &["report", "s.rhai", "--db", "shared/tasks.db"][..],
    ] {
        let theirs = team.run(None, words);
        assert_eq!(theirs.status.code(), Some(2), "{}", describe(&theirs));
        assert!(theirs.stderr.contains(refused), "{}", describe(&theirs));
    }
    let root = team.run(None, &words);
    assert!(root.status.success(), "{}", describe(&root));
    assert_eq!(planted(&team.db), 0, "{}", describe(&root));
}

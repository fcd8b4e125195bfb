//! Issue 9, state: the state directory is private to the user (a local user cannot plant
//! a lock or a task DB for root's run), state files and directories have private modes
//! whatever the umask, a corrupt task DB is replaced, and `--json` is checked before the
//! run and written atomically.
//!
//! The attacks need a second user: those tests run only as root (as CI does), with
//! `runuser`; elsewhere `cargo test` counts them as ignored and says why.

use std::io::Read;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

/// What a command printed, and how it ended.
struct Ran {
    code: Option<i32>,
    stdout: String,
    stderr: String,
    what: String,
}

impl Ran {
    fn describe(&self) -> String {
        format!(
            "{} exited with {:?}\n--- stdout\n{}\n--- stderr\n{}",
            self.what, self.code, self.stdout, self.stderr
        )
    }

    fn code(&self, code: i32) -> &Self {
        assert_eq!(self.code, Some(code), "exit status\n{}", self.describe());
        self
    }

    fn ok(&self) -> &Self {
        self.code(0)
    }

    fn says(&self, s: &str) -> &Self {
        assert!(
            self.stdout.contains(s) || self.stderr.contains(s),
            "expected {s:?}\n{}",
            self.describe()
        );
        self
    }

    /// How many procs were reported in `state` (plain output: `STATE name` lines).
    fn count(&self, state: &str) -> usize {
        crate::support::unstamp(&self.stdout)
            .lines()
            .filter(|l| l.starts_with(&format!("{state} ")))
            .count()
    }
}

/// Runs `cmd` to its end (a run that hangs fails the test).
fn run(cmd: Command) -> Ran {
    let what = format!("{cmd:?}");
    let done = crate::support::run_bounded(cmd, &what, |_| {});
    Ran {
        code: done.status.code(),
        stdout: done.stdout,
        stderr: done.stderr,
        what,
    }
}

/// `prun WORDS...` in `dir` with `XDG_STATE_HOME=<dir>/state`, under umask 000 (so that
/// every mode checked below is prun's choice, not the umask's).
fn prun(dir: &Path, words: &[&str]) -> Ran {
    prun_with_state(dir, &dir.join("state"), words)
}

/// [`prun`] with `XDG_STATE_HOME=state` (outside a `dir` another user can write: prun
/// refuses to keep its state there).
fn prun_with_state(dir: &Path, state: &Path, words: &[&str]) -> Ran {
    let mut cmd = Command::new("sh");
    cmd.arg("-c")
        .arg("umask 000; exec \"$@\"")
        .arg("sh")
        .arg(env!("CARGO_BIN_EXE_prun"))
        .args(words)
        .current_dir(dir)
        .env("XDG_STATE_HOME", state)
        .env_remove("NO_COLOR");
    run(cmd)
}

fn mode(p: &Path) -> u32 {
    std::fs::symlink_metadata(p)
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
        .mode()
        & 0o7777
}

fn chmod(p: &Path, mode: u32) {
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).expect("chmod");
}

/// The state directories of scripts under `<dir>/state/prun` (not `file-locks`, where
/// `--lock` keeps its per-file locks).
fn state_dirs(dir: &Path) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(dir.join("state/prun"))
        .map(|rd| rd.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    dirs.retain(|d| !d.ends_with("file-locks"));
    dirs.sort();
    dirs
}

/// Every file and directory under `root` (itself included).
fn walk(root: &Path) -> Vec<PathBuf> {
    let mut all = vec![root.to_path_buf()];
    let mut i = 0;
    while i < all.len() {
        if std::fs::symlink_metadata(&all[i]).is_ok_and(|m| m.is_dir()) {
            let mut inner: Vec<PathBuf> = std::fs::read_dir(&all[i])
                .expect("read_dir")
                .flatten()
                .map(|e| e.path())
                .collect();
            inner.sort();
            all.extend(inner);
        }
        i += 1;
    }
    all
}

// ---------------------------------------------------------------------------------------
// Another local user and the state directory
// ---------------------------------------------------------------------------------------

/// The name of the state directory of `script` under a state root (as src/paths.rs makes
/// it: the file stem and an FNV-1a hash of the canonical path).
fn state_key(script: &Path) -> String {
    let abs = std::fs::canonicalize(script).expect("canonicalize");
    let stem = abs.file_stem().unwrap().to_string_lossy().into_owned();
    let hash = abs
        .as_os_str()
        .as_encoded_bytes()
        .iter()
        .fold(0xcbf2_9ce4_8422_2325_u64, |h, &b| {
            (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
        });
    format!("{stem}-{:08x}", hash as u32)
}

/// Runs a shell command as `nobody`; it must succeed.
fn as_nobody(cmd: &str) {
    let ran = run({
        let mut c = Command::new("runuser");
        c.args(["-u", "nobody", "--", "sh", "-c", cmd]);
        c
    });
    ran.ok();
}

/// A cached result is interpolated into a shell command by a dependent: whoever can plant
/// a task DB decides what the command runs.
const CRON: &str = r#"
proc("value", #{ inputs: ["in.txt"] }, |ctx| "safe");
proc("use", #{ deps: ["value"], no_skip: true }, |ctx| {
    shell(`echo ${ctx.results.value} > used.txt`);
});
run("use");
"#;

/// A world-writable sticky temporary directory (like /tmp) and a working directory that
/// `nobody` can read and write, under a test directory root keeps for itself.
struct Shared {
    _root: tempfile::TempDir,
    tmp: PathBuf,
    work: PathBuf,
    script: PathBuf,
    /// A task DB made by a real run, whose cached result of `value` was then changed to
    /// "planted" (what an attacker would drop in).
    planted_db: PathBuf,
}

impl Shared {
    fn new(stem: &str) -> Shared {
        let root = tempfile::tempdir().expect("tempdir");
        chmod(root.path(), 0o755);
        let tmp = root.path().join("tmp");
        let work = root.path().join("work");
        for d in [&tmp, &work] {
            std::fs::create_dir(d).expect("mkdir");
        }
        chmod(&tmp, 0o1777);
        chmod(&work, 0o777);
        // A name of its own: the run as root puts its state in root's home, which the
        // test cleans up by this name. Not in `work`: root runs no script from a directory
        // others may write.
        let script = root
            .path()
            .join(format!("{stem}_{}.rhai", std::process::id()));
        std::fs::write(&script, CRON).expect("write script");
        std::fs::write(work.join("in.txt"), "in\n").expect("write input");
        let planted_db = root.path().join("planted.db");
        let words = [
            script.to_str().unwrap(),
            "--db",
            planted_db.to_str().unwrap(),
        ];
        let state = root.path().join("state");
        prun_with_state(&work, &state, &words).ok();
        let conn = rusqlite::Connection::open(&planted_db).expect("open DB");
        let n = conn
            .execute(
                "UPDATE cache SET result = '\"planted\"' WHERE name LIKE '%/value'",
                [],
            )
            .expect("plant");
        assert_eq!(n, 1, "the DB caches `value`");
        drop(conn);
        // The premise: a run that uses this DB runs the planted value.
        prun_with_state(&work, &state, &words).ok();
        assert_eq!(
            std::fs::read_to_string(work.join("used.txt")).unwrap(),
            "planted\n"
        );
        std::fs::remove_file(work.join("used.txt")).expect("rm");
        chmod(&planted_db, 0o644);
        Shared {
            _root: root,
            tmp,
            work,
            script,
            planted_db,
        }
    }

    /// `env -i PATH=... TMPDIR=<tmp> prun --lock <script>`, as `user` (root when `None`).
    fn prun_without_home(&self, user: Option<&str>) -> Ran {
        self.without_home(user, &["--lock", self.script.to_str().unwrap()])
    }

    /// `env -i PATH=... TMPDIR=<tmp> prun WORDS...`, as `user` (root when `None`).
    fn without_home(&self, user: Option<&str>, words: &[&str]) -> Ran {
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
            .arg(format!("TMPDIR={}", self.tmp.display()))
            .arg(env!("CARGO_BIN_EXE_prun"))
            .args(words)
            .current_dir(&self.work);
        run(cmd)
    }

    /// What `use` wrote, if it ran.
    fn used(&self) -> Option<String> {
        std::fs::read_to_string(self.work.join("used.txt")).ok()
    }
}

/// Removes root's state directory of a test script when the test ends.
struct RootState(PathBuf);

impl Drop for RootState {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
#[cfg_attr(prun_no_root, ignore = "needs root (to run a command as another user)")]
fn a_local_user_cannot_plant_a_lock_or_a_task_db_for_roots_run_without_home() {
    let s = Shared::new("cron_root");
    let key = state_key(&s.script);
    let _cleanup = RootState(PathBuf::from("/root/.local/state/prun").join(&key));
    let victim = s.tmp.join("victim");
    std::fs::write(&victim, "precious\n").expect("write victim");
    chmod(&victim, 0o644);
    // Every state directory prun without HOME has used or might use under TMPDIR: a
    // symlinked lock pointing at root's file, and the planted DB.
    for root in ["prun-state", "prun-0"] {
        as_nobody(&format!(
            "d={tmp}/{root}/{key} && mkdir -p $d/logs && cp {db} $d/tasks.db && \
             ln -s {victim} $d/run.lock && chmod -R a+rwX {tmp}/{root}",
            tmp = s.tmp.display(),
            db = s.planted_db.display(),
            victim = victim.display(),
        ));
    }
    let ran = s.prun_without_home(None);
    assert_eq!(
        std::fs::read_to_string(&victim).unwrap(),
        "precious\n",
        "the lock was written through the link\n{}",
        ran.describe()
    );
    match ran.code {
        Some(0) => assert_eq!(
            s.used().as_deref(),
            Some("safe\n"),
            "the planted result was used\n{}",
            ran.describe()
        ),
        _ => {
            assert_eq!(s.used(), None, "{}", ran.describe());
            ran.says("refusing");
        }
    }
}

#[test]
#[cfg_attr(prun_no_root, ignore = "needs root (to run a command as another user)")]
fn without_home_a_user_never_uses_a_state_directory_someone_else_made() {
    let s = Shared::new("cron_nobody");
    let key = state_key(&s.script);
    // nobody's home (/nonexistent) does not exist: its state goes under TMPDIR, where
    // root made the directories first, writable by all, with the planted DB.
    for root in ["prun-state", "prun-65534"] {
        let dir = s.tmp.join(root).join(&key);
        std::fs::create_dir_all(&dir).expect("mkdir");
        std::fs::copy(&s.planted_db, dir.join("tasks.db")).expect("copy DB");
        for p in walk(&s.tmp.join(root)) {
            chmod(&p, if p.is_dir() { 0o777 } else { 0o666 });
        }
    }
    let ran = s.prun_without_home(Some("nobody"));
    assert_ne!(
        s.used().as_deref(),
        Some("planted\n"),
        "the planted result was used\n{}",
        ran.describe()
    );
    ran.code(2)
        .says(&format!(
            "refusing to keep prun's state in {}",
            s.tmp.join("prun-65534").display()
        ))
        .says("owned by uid 0 (root), mode 0777");
    assert_eq!(s.used(), None, "nothing ran\n{}", ran.describe());
    let script = s.script.to_str().unwrap();
    for words in [&["history", script][..], &["log", script, "value"][..]] {
        s.without_home(Some("nobody"), words)
            .code(2)
            .says("refusing to keep prun's state in");
    }
}

#[test]
#[cfg_attr(prun_no_root, ignore = "needs root (to run a command as another user)")]
fn another_user_cannot_read_the_logs_or_the_task_db() {
    let dir = tempfile::tempdir().expect("tempdir");
    chmod(dir.path(), 0o755);
    std::fs::write(
        dir.path().join("main.rhai"),
        r#"proc("talk", #{ shell: "echo the secret output" }); run("talk");"#,
    )
    .expect("write script");
    prun(dir.path(), &["main.rhai"]).ok();
    let files: Vec<PathBuf> = walk(&dir.path().join("state"))
        .into_iter()
        .filter(|p| p.is_file())
        .collect();
    assert!(
        files
            .iter()
            .any(|f| f.extension().is_some_and(|e| e == "log")),
        "{files:?}"
    );
    assert!(files.iter().any(|f| f.ends_with("tasks.db")), "{files:?}");
    for f in files {
        let ran = run({
            let mut c = Command::new("runuser");
            c.args(["-u", "nobody", "--", "cat"]).arg(&f);
            c
        });
        assert_ne!(ran.code, Some(0), "nobody read {}", f.display());
    }
}

/// Makes `<dir>/build.rhai` and a task DB at `db` with a run of it, which a reader opens
/// read-only without making a file beside it (journal mode DELETE, not WAL). Returns the
/// script's path.
fn script_with_a_readable_db(dir: &Path, db: &Path) -> PathBuf {
    std::fs::create_dir_all(dir).expect("mkdir");
    let script = dir.join("build.rhai");
    std::fs::write(&script, r#"proc("p", #{}, |ctx| 1); run("p");"#).expect("write script");
    let words = [script.to_str().unwrap(), "--db", db.to_str().unwrap()];
    prun_with_state(dir, &dir.join("state"), &words).ok();
    let conn = rusqlite::Connection::open(db).expect("open DB");
    conn.pragma_update(None, "journal_mode", "DELETE")
        .expect("journal mode");
    script
}

/// The hint for a mistyped script name reads the scripts of the state root's task DBs:
/// never those of a state root another user made (nobody's `$TMPDIR/prun-65534`, made
/// by root first), whose DBs name that user's scripts, or which a FIFO there would block.
#[test]
#[cfg_attr(prun_no_root, ignore = "needs root (to run a command as another user)")]
fn a_script_hint_never_reads_a_state_root_another_user_made() {
    let s = Shared::new("hint_nobody");
    let theirs = s.tmp.parent().unwrap().join("theirs");
    let db = s.tmp.parent().unwrap().join("theirs.db");
    let script = script_with_a_readable_db(&theirs, &db);
    let planted = s.tmp.join("prun-65534");
    let read = planted.join("build-0000beef");
    std::fs::create_dir_all(&read).expect("mkdir");
    std::fs::copy(&db, read.join("tasks.db")).expect("copy DB");
    let blocking = planted.join("build-0000cafe");
    std::fs::create_dir_all(&blocking).expect("mkdir");
    nix::unistd::mkfifo(
        &blocking.join("tasks.db"),
        nix::sys::stat::Mode::from_bits_truncate(0o644),
    )
    .expect("mkfifo");
    for p in walk(&planted) {
        chmod(&p, if p.is_dir() { 0o755 } else { 0o644 });
    }
    let ran = s.without_home(Some("nobody"), &["list", "buld.rhai"]);
    ran.code(2).says("failed to read buld.rhai");
    assert!(
        !ran.stderr.contains(&script.display().to_string()),
        "a script of another user's state root was offered\n{}",
        ran.describe()
    );
}

/// In the user's own state root, a hint opens no FIFO (which would block it for ever)
/// and follows no symbolic link.
#[test]
fn a_script_hint_opens_no_fifo_and_follows_no_link_in_the_state_root() {
    let dir = tempfile::tempdir().expect("tempdir");
    let elsewhere = dir.path().join("elsewhere");
    let script = script_with_a_readable_db(&elsewhere, &dir.path().join("elsewhere.db"));
    let root = dir.path().join("state/prun");
    let fifo = root.join("build-0000beef");
    std::fs::create_dir_all(&fifo).expect("mkdir");
    nix::unistd::mkfifo(&fifo.join("tasks.db"), nix::sys::stat::Mode::S_IRWXU).expect("mkfifo");
    let linked = dir.path().join("linked");
    std::fs::create_dir(&linked).expect("mkdir");
    std::fs::copy(dir.path().join("elsewhere.db"), linked.join("tasks.db")).expect("copy DB");
    std::os::unix::fs::symlink(&linked, root.join("build-0000cafe")).expect("symlink");
    let ran = prun(dir.path(), &["list", "buld.rhai"]);
    ran.code(2).says("failed to read buld.rhai");
    assert!(
        !ran.stderr.contains(&script.display().to_string()),
        "a DB reached through a link was read\n{}",
        ran.describe()
    );
}

// ---------------------------------------------------------------------------------------
// Modes
// ---------------------------------------------------------------------------------------

#[test]
fn state_directories_are_0700_and_the_db_and_lock_0600_whatever_the_umask() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("main.rhai"),
        r#"proc("talk", #{ shell: "echo hello" }); run("talk");"#,
    )
    .expect("write script");
    prun(dir.path(), &["--lock", "main.rhai"]).ok();
    let state = state_dirs(dir.path());
    assert_eq!(state.len(), 1, "{state:?}");
    let state = &state[0];
    for d in [&dir.path().join("state/prun"), state, &state.join("logs")] {
        assert_eq!(mode(d), 0o700, "{}", d.display());
    }
    assert_eq!(mode(&state.join("tasks.db")), 0o600);
    assert_eq!(mode(&state.join("run.lock")), 0o600);
    let file_locks = dir.path().join("state/prun/file-locks");
    assert_eq!(mode(&file_locks), 0o700);
    for lock in std::fs::read_dir(&file_locks).unwrap().flatten() {
        assert_eq!(mode(&lock.path()), 0o600, "{}", lock.path().display());
    }
    // A state directory made by an older prun under a permissive umask is tightened. The
    // DB keeps the read permission given (its owner may share the history), not the write.
    chmod(state, 0o777);
    chmod(&state.join("tasks.db"), 0o666);
    chmod(&state.join("run.lock"), 0o666);
    prun(dir.path(), &["--lock", "main.rhai"]).ok();
    assert_eq!(mode(state), 0o700);
    assert_eq!(mode(&state.join("tasks.db")), 0o644);
    assert_eq!(mode(&state.join("run.lock")), 0o600);
}

#[test]
fn the_fallback_log_directory_is_a_fresh_private_one() {
    let dir = tempfile::tempdir().expect("tempdir");
    let tmp = dir.path().join("tmp");
    std::fs::create_dir(&tmp).expect("mkdir");
    // A file where the log directory should be: logs cannot go there.
    std::fs::write(dir.path().join("blocked"), "").expect("write");
    std::fs::write(
        dir.path().join("main.rhai"),
        r#"set_options(#{ log_dir: "blocked/logs" });
proc("talk", #{ shell: "echo hello" }); run("talk");"#,
    )
    .expect("write script");
    let mut cmd = Command::new("sh");
    cmd.args(["-c", "umask 000; exec \"$@\"", "sh"])
        .arg(env!("CARGO_BIN_EXE_prun"))
        .arg("main.rhai")
        .current_dir(dir.path())
        .env("XDG_STATE_HOME", dir.path().join("state"))
        .env("TMPDIR", &tmp);
    let ran = run(cmd);
    ran.ok().says("cannot create log directory");
    let made: Vec<PathBuf> = std::fs::read_dir(&tmp)
        .expect("read tmp")
        .flatten()
        .map(|e| e.path())
        .collect();
    assert_eq!(made.len(), 1, "{made:?}\n{}", ran.describe());
    let name = made[0].file_name().unwrap().to_string_lossy().into_owned();
    assert!(name.starts_with("prun-logs-"), "{name}");
    assert_eq!(mode(&made[0]), 0o700, "{}", made[0].display());
    ran.says(&made[0].display().to_string());
}

/// Logs that can go neither to their directory nor to the temporary directory (a full or
/// read-only disk under both) are no internal error: a warning names both, and each proc
/// fails naming its log and why it cannot be made.
#[test]
fn logs_that_cannot_go_anywhere_fail_the_procs_naming_why() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("blocked"), "").expect("write");
    std::fs::write(
        dir.path().join("main.rhai"),
        r#"set_options(#{ log_dir: "blocked/logs" });
proc("talk", #{ shell: "echo hello" });
proc("inner", |ctx| shell("echo inner"));
run(["talk", "inner"]);"#,
    )
    .expect("write script");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_prun"));
    cmd.arg("main.rhai")
        .current_dir(dir.path())
        .env("XDG_STATE_HOME", dir.path().join("state"))
        .env("TMPDIR", dir.path().join("blocked/tmp"));
    let ran = run(cmd);
    ran.code(1)
        .says(&format!(
            "cannot create log directory under blocked/logs (in {}): Not a directory",
            dir.path().display()
        ))
        .says(&format!(
            "nor in the temporary directory {}",
            dir.path().join("blocked/tmp").display()
        ));
    assert!(!ran.stderr.contains("internal error"), "{}", ran.describe());
    for name in ["talk", "inner"] {
        let failed = ran
            .stdout
            .lines()
            .find(|l| l.contains(&format!("FAILED     {name} ")))
            .unwrap_or_else(|| panic!("no failure of {name}\n{}", ran.describe()));
        assert!(
            failed.contains("failed to open log blocked/logs/")
                && failed.contains(&format!(
                    "/{name}.log (in {}): Not a directory",
                    dir.path().display()
                )),
            "{failed}\n{}",
            ran.describe()
        );
    }
}

// ---------------------------------------------------------------------------------------
// A corrupt task DB
// ---------------------------------------------------------------------------------------

/// Overwrites the root page of the `cache` table, in the middle of the file, with
/// garbage: what a bad sector or a torn write does.
fn corrupt_cache_page(db: &Path) {
    use std::io::{Seek, SeekFrom, Write};
    let conn = rusqlite::Connection::open(db).expect("open DB");
    conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
        .expect("checkpoint");
    let page: i64 = conn
        .query_row("PRAGMA page_size", [], |r| r.get(0))
        .expect("page size");
    let pages: i64 = conn
        .query_row("PRAGMA page_count", [], |r| r.get(0))
        .expect("page count");
    let root: i64 = conn
        .query_row(
            "SELECT rootpage FROM sqlite_master WHERE name = 'cache'",
            [],
            |r| r.get(0),
        )
        .expect("root page");
    drop(conn);
    assert!(root > 1 && root < pages, "page {root} of {pages}");
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .open(db)
        .expect("open");
    f.seek(SeekFrom::Start(((root - 1) * page) as u64))
        .expect("seek");
    f.write_all(&vec![0x5A; page as usize]).expect("write");
}

/// Files moved aside next to the DB (not their `-wal`/`-shm`).
fn moved_aside(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .expect("read_dir")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("tasks.corrupt-") && !n.ends_with("-wal") && !n.ends_with("-shm"))
        .collect();
    names.sort();
    names
}

#[test]
fn a_page_corrupted_inside_the_db_is_moved_aside_and_the_next_runs_use_a_new_db() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("in.txt"), "x\n").expect("write");
    std::fs::write(
        dir.path().join("main.rhai"),
        r#"
let names = [];
for i in 0..40 {
    let name = `p${i}`;
    proc(name, #{ inputs: ["in.txt"] }, |ctx| "a result long enough to fill a few pages of the task DB: 0123456789 0123456789 0123456789 0123456789 0123456789");
    names.push(name);
}
run(names);
"#,
    )
    .expect("write script");
    let first = prun(dir.path(), &["main.rhai"]);
    assert_eq!(first.ok().count("SUCCEEDED"), 40, "{}", first.describe());
    let state = state_dirs(dir.path()).pop().expect("a state directory");
    let db = state.join("tasks.db");
    prun(dir.path(), &["main.rhai"]).ok();
    for round in 1..=2 {
        corrupt_cache_page(&db);
        let r = prun(dir.path(), &["main.rhai"]);
        r.ok().says("corrupt");
        assert_eq!(r.count("SUCCEEDED"), 40, "{}", r.describe());
        // The new DB works: the next run is up to date and the history reads.
        let r = prun(dir.path(), &["main.rhai"]);
        assert_eq!(r.ok().count("UP_TO_DATE"), 40, "{}", r.describe());
        prun(dir.path(), &["history", "main.rhai"])
            .ok()
            .says("40 succeeded")
            .says("40 up to date");
        // Each corruption keeps its own file, even two in the same second.
        assert_eq!(moved_aside(&state).len(), round, "{:?}", walk(&state));
    }
}

// ---------------------------------------------------------------------------------------
// --json
// ---------------------------------------------------------------------------------------

#[test]
fn json_into_a_missing_directory_is_a_usage_error_before_anything_runs() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("main.rhai"),
        r#"proc("p", #{ shell: "touch ran" }); run("p");"#,
    )
    .expect("write script");
    prun(dir.path(), &["--json", "missing/report.json", "main.rhai"])
        .code(64)
        .says("missing");
    assert!(!dir.path().join("ran").exists(), "a proc ran");
    std::fs::create_dir(dir.path().join("adir")).expect("mkdir");
    prun(dir.path(), &["--json", "adir", "main.rhai"]).code(64);
    assert!(!dir.path().join("ran").exists(), "a proc ran");
}

#[test]
fn the_json_report_is_replaced_atomically() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("main.rhai"),
        r#"proc("p", #{ shell: "true" }); run("p");"#,
    )
    .expect("write script");
    let out = dir.path().join("out");
    std::fs::create_dir(&out).expect("mkdir");
    // A reader holding the old report keeps reading the old report: the new one is a new
    // file renamed over it, not the old file truncated and rewritten.
    std::fs::write(out.join("report.json"), "old report\n").expect("write");
    let old = std::fs::File::open(out.join("report.json")).expect("open");
    let old_inode = old.metadata().expect("stat").ino();
    prun(dir.path(), &["--json", "out/report.json", "main.rhai"]).ok();
    let mut held = String::new();
    let mut old = old;
    old.read_to_string(&mut held).expect("read");
    assert_eq!(held, "old report\n");
    let new = std::fs::read_to_string(out.join("report.json")).expect("read");
    let doc: serde_json::Value = serde_json::from_str(&new).expect("JSON");
    assert_eq!(doc["procs"][0]["name"], "p");
    assert_ne!(
        std::fs::metadata(out.join("report.json")).unwrap().ino(),
        old_inode
    );
    // No temporary file is left behind.
    let names: Vec<String> = std::fs::read_dir(&out)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["report.json"]);
}

#[test]
fn a_json_report_into_a_fifo_no_one_reads_is_an_error_not_a_hang() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("main.rhai"),
        r#"proc("p", #{ shell: "touch ran" }); run("p");"#,
    )
    .expect("write script");
    nix::unistd::mkfifo(&dir.path().join("r.json"), nix::sys::stat::Mode::S_IRWXU).expect("mkfifo");
    prun(dir.path(), &["--json", "r.json", "main.rhai"])
        .code(64)
        .says("r.json is a FIFO that no process reads");
    assert!(dir.path().join("ran").exists(), "the proc ran");
}

// ---------------------------------------------------------------------------------------
// Links another user plants where root writes
// ---------------------------------------------------------------------------------------

#[test]
#[cfg_attr(prun_no_root, ignore = "needs root (to run a command as another user)")]
fn a_link_another_user_plants_is_never_written_through() {
    let root = tempfile::tempdir().expect("tempdir");
    chmod(root.path(), 0o755);
    let work = root.path().join("work");
    std::fs::create_dir(&work).expect("mkdir");
    chmod(&work, 0o777);
    // The scripts are outside `work`: root runs no script from a directory others may write.
    std::fs::write(
        root.path().join("main.rhai"),
        r#"proc("p", #{ shell: "true" }); run("p");"#,
    )
    .expect("write script");
    std::fs::write(
        root.path().join("w.rhai"),
        r#"write_file("out.txt", "written");"#,
    )
    .expect("write script");
    let private = root.path().join("private");
    std::fs::create_dir(&private).expect("mkdir");
    chmod(&private, 0o700);
    let victim = private.join("shadow");
    std::fs::write(&victim, "precious\n").expect("write victim");
    let state = root.path().join("state");
    let prun = |dir: &Path, words: &[&str]| prun_with_state(dir, &state, words);
    chmod(&victim, 0o600);
    for name in ["report.json", "page.html", "out.txt"] {
        as_nobody(&format!(
            "ln -s {} {}",
            victim.display(),
            work.join(name).display()
        ));
    }
    prun(&work, &["--json", "report.json", "../main.rhai"])
        .code(64)
        .says("report.json is a symbolic link owned by uid 65534");
    prun(&work, &["report", "../main.rhai", "--html", "page.html"])
        .says("page.html is a symbolic link owned by uid 65534");
    prun(&work, &["../w.rhai"]).code(2).says(&format!(
        "write_file: cannot write \"out.txt\" (in {}): out.txt is a symbolic link owned by uid 65534",
        work.display()
    ));
    as_nobody(&format!(
        "mkdir {d} && ln -s {} {d}/prun.d.rhai",
        victim.display(),
        d = work.join("defs").display()
    ));
    prun(&work, &["definitions", "defs"])
        .code(64)
        .says("prun.d.rhai is a symbolic link owned by uid 65534");
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious\n");
    assert_eq!(mode(&victim), 0o600);
    // A link of root's own is followed, as before.
    std::fs::remove_file(work.join("report.json")).expect("rm");
    std::os::unix::fs::symlink("mine.json", work.join("report.json")).expect("symlink");
    prun(&work, &["--json", "report.json", "../main.rhai"]).ok();
    assert!(
        std::fs::read_to_string(work.join("mine.json"))
            .unwrap()
            .contains("\"procs\"")
    );
}

/// A link of another user among the directories of a path root writes is not followed
/// either: `nobody`'s `/tmp/work -> /etc`, planted before root's script made sure of
/// `/tmp/work` (`mkdir -p` takes a link to a directory for one), led `write_file`, a
/// command's `stdout:` file and the `--json` report into the directory it names.
#[test]
#[cfg_attr(prun_no_root, ignore = "needs root (to run a command as another user)")]
fn a_directory_link_another_user_plants_is_never_written_through() {
    let root = tempfile::tempdir().expect("tempdir");
    chmod(root.path(), 0o755);
    let tmp = root.path().join("tmp");
    let private = root.path().join("private");
    for (d, m) in [(&tmp, 0o1777), (&private, 0o700)] {
        std::fs::create_dir(d).expect("mkdir");
        chmod(d, m);
    }
    as_nobody(&format!(
        "ln -s {} {}",
        private.display(),
        tmp.join("work").display()
    ));
    let script = root.path().join("s.rhai");
    for (body, words) in [
        (
            r#"import "fs" as fs; fs::ensure_dir("tmp/work"); write_file("tmp/work/out.txt", "x");"#,
            vec!["s.rhai"],
        ),
        (
            r#"exec(["echo", "x"], #{ stdout: "tmp/work/cmd.txt", capture: false });"#,
            vec!["s.rhai"],
        ),
        (
            r#"proc("p", #{ shell: "true" }); run("p");"#,
            vec!["--json", "tmp/work/report.json", "s.rhai"],
        ),
    ] {
        std::fs::write(&script, body).expect("write script");
        prun(root.path(), &words).says("tmp/work is a symbolic link owned by uid 65534");
    }
    let written: Vec<_> = std::fs::read_dir(&private).unwrap().flatten().collect();
    assert!(written.is_empty(), "written through the link: {written:?}");
}

/// A FIFO another user made in a sticky directory anyone can write, at the path of root's
/// `--json` report or `report --html` page, is not written into: that user reads what
/// comes out of it (the kernel's `protected_fifos`, off by default, refuses the open).
#[test]
#[cfg_attr(prun_no_root, ignore = "needs root (to run a command as another user)")]
fn a_report_is_never_written_into_a_fifo_another_user_made_in_a_sticky_directory() {
    let root = tempfile::tempdir().expect("tempdir");
    chmod(root.path(), 0o755);
    let tmp = root.path().join("tmp");
    std::fs::create_dir(&tmp).expect("mkdir");
    chmod(&tmp, 0o1777);
    std::fs::write(
        root.path().join("s.rhai"),
        r#"proc("p", #{ shell: "true" }); run("p");"#,
    )
    .expect("write script");
    for (name, words) in [
        ("report.json", vec!["--json", "tmp/report.json", "s.rhai"]),
        (
            "page.html",
            vec!["report", "s.rhai", "--html", "tmp/page.html"],
        ),
    ] {
        let fifo = tmp.join(name);
        let got = tmp.join(format!("{name}.got"));
        let ready = tmp.join(format!("{name}.ready"));
        as_nobody(&format!("mkfifo -m 600 {}", fifo.display()));
        // Open for reading and writing, it takes no writer to open: the reader is there
        // before prun opens the FIFO.
        let mut reader = Command::new("setpriv")
            .args(["--reuid", "65534", "--regid", "65534", "--clear-groups"])
            .args([
                "sh",
                "-c",
                "exec 3<>\"$1\"; : > \"$2\"; exec head -c 1 <&3 > \"$3\"",
            ])
            .args([
                "sh",
                &fifo.display().to_string(),
                &ready.display().to_string(),
            ])
            .arg(got.display().to_string())
            .spawn()
            .expect("start the reader");
        while !ready.exists() {
            assert!(
                reader.try_wait().expect("wait").is_none(),
                "the reader failed"
            );
            std::thread::yield_now();
        }
        let ran = prun(root.path(), &words);
        let _ = reader.kill();
        let _ = reader.wait();
        ran.says("it belongs to uid 65534 (nobody) in a sticky directory anyone can write");
        assert_eq!(
            std::fs::read(&got).unwrap_or_default(),
            b"",
            "another user's FIFO got the {name}"
        );
    }
}

/// A command's `stdout:` and `stderr:` files are written by prun (it opens them for the
/// command), so they get what `write_file` gets: no link of another user is followed, and
/// no file (or FIFO) another user made in a sticky directory anyone can write is written.
#[test]
#[cfg_attr(prun_no_root, ignore = "needs root (to run a command as another user)")]
fn a_commands_output_file_is_never_written_through_another_users_link_or_file() {
    let root = tempfile::tempdir().expect("tempdir");
    chmod(root.path(), 0o755);
    let tmp = root.path().join("tmp");
    std::fs::create_dir(&tmp).expect("mkdir");
    chmod(&tmp, 0o1777);
    let private = root.path().join("private");
    std::fs::create_dir(&private).expect("mkdir");
    chmod(&private, 0o700);
    let victim = private.join("shadow");
    std::fs::write(&victim, "precious\n").expect("write victim");
    as_nobody(&format!(
        "cd {t} && ln -s {v} link.txt && touch planted.txt && chmod 666 planted.txt && mkfifo -m 666 fifo",
        t = tmp.display(),
        v = victim.display()
    ));
    let script = root.path().join("s.rhai");
    let sink = |key: &str, file: &str| {
        std::fs::write(
            &script,
            format!(
                r#"exec(["sh", "-c", "echo secret; echo secret >&2"], #{{ {key}: "{}", capture: false }});"#,
                tmp.join(file).display()
            ),
        )
        .expect("write script");
        prun(root.path(), &["s.rhai"])
    };
    for key in ["stdout", "stderr"] {
        sink(key, "link.txt")
            .code(2)
            .says("link.txt is a symbolic link owned by uid 65534");
        sink(key, "planted.txt")
            .code(2)
            .says("it belongs to uid 65534 (nobody) in a sticky directory anyone can write");
        sink(key, "fifo")
            .code(2)
            .says("it belongs to uid 65534 (nobody) in a sticky directory anyone can write");
    }
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious\n");
    assert_eq!(
        std::fs::read_to_string(tmp.join("planted.txt")).unwrap(),
        ""
    );
    // Root's own files there are written (and truncated) as ever.
    std::fs::write(tmp.join("mine.txt"), "old old old\n").expect("write");
    sink("stdout", "mine.txt").ok();
    assert_eq!(
        std::fs::read_to_string(tmp.join("mine.txt")).unwrap(),
        "secret\n"
    );
}

#[test]
#[cfg_attr(prun_no_root, ignore = "needs root (to run a command as another user)")]
fn state_under_another_users_home_or_a_directory_others_can_write_is_never_made() {
    let root = tempfile::tempdir().expect("tempdir");
    chmod(root.path(), 0o755);
    std::fs::write(
        root.path().join("main.rhai"),
        r#"proc("p", #{ shell: "touch ran" }); run("p");"#,
    )
    .expect("write script");
    // The home of the user who ran `sudo` (kept by `sudo -E`), and a shared directory.
    let shared = root.path().join("shared");
    std::fs::create_dir(&shared).expect("mkdir");
    chmod(&shared, 0o777);
    let prun_with = |var: &str, value: &Path| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_prun"));
        cmd.arg("main.rhai")
            .current_dir(root.path())
            .env_remove("XDG_STATE_HOME")
            .env(var, value);
        run(cmd)
    };
    std::fs::write(
        root.path().join("quiet.rhai"),
        r#"proc("p", #{ shell: "true" }); run("p");"#,
    )
    .expect("write script");
    // A HOME of another user is not used: root's state goes to root's own home. Seen from
    // `nobody` (this test is root), whose passwd home does not exist, it goes to
    // `$TMPDIR/prun-65534`; the HOME given, root's, is left alone.
    let tmp = root.path().join("tmp");
    std::fs::create_dir(&tmp).expect("mkdir");
    chmod(&tmp, 0o1777);
    let theirs = root.path().join("root-home");
    std::fs::create_dir(&theirs).expect("mkdir");
    let mut cmd = Command::new("runuser");
    cmd.args(["-u", "nobody", "--", "env", "-u", "XDG_STATE_HOME"])
        .arg(format!("HOME={}", theirs.display()))
        .arg(format!("TMPDIR={}", tmp.display()))
        .args([env!("CARGO_BIN_EXE_prun"), "quiet.rhai"])
        .current_dir(root.path());
    run(cmd).ok();
    assert_eq!(walk(&theirs).len(), 1, "made in another user's home");
    assert!(
        tmp.join("prun-65534").is_dir(),
        "no state in $TMPDIR/prun-65534"
    );
    prun_with("XDG_STATE_HOME", &shared.join("state"))
        .code(2)
        .says(&format!(
            "{} above it is owned by uid 0 (root), mode 0777",
            shared.display()
        ));
    assert_eq!(walk(&shared).len(), 1);
    assert!(!root.path().join("ran").exists(), "the proc ran");
    // A sticky directory (like /tmp) is fine.
    chmod(&shared, 0o1777);
    prun_with("XDG_STATE_HOME", &shared.join("state")).ok();
    assert!(root.path().join("ran").exists());
}

#[test]
fn a_log_dir_prun_makes_is_private_whatever_the_umask() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("main.rhai"),
        r#"set_options(#{ log_dir: "logs/of/main" }); proc("p", #{ shell: "echo token" }); run("p");"#,
    )
    .expect("write script");
    prun(dir.path(), &["main.rhai"]).ok();
    for d in ["logs", "logs/of", "logs/of/main"] {
        assert_eq!(mode(&dir.path().join(d)), 0o700, "{d}");
    }
}

#[test]
fn a_page_into_a_missing_directory_names_the_directory_not_a_temporary_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("main.rhai"),
        r#"proc("p", #{ shell: "true" }); run("p");"#,
    )
    .expect("write script");
    prun(dir.path(), &["main.rhai"]).ok();
    let ran = prun(
        dir.path(),
        &["report", "main.rhai", "--html", "nodir/r.html"],
    );
    ran.code(64)
        .says("cannot create a file in nodir: No such file");
    assert!(!ran.stderr.contains(".prun-report-"), "{}", ran.describe());
}

#[test]
#[cfg_attr(prun_no_root, ignore = "needs root (to run a command as another user)")]
fn write_file_does_not_write_a_file_another_user_made_in_a_sticky_directory() {
    let root = tempfile::tempdir().expect("tempdir");
    chmod(root.path(), 0o755);
    let tmp = root.path().join("tmp");
    std::fs::create_dir(&tmp).expect("mkdir");
    chmod(&tmp, 0o1777);
    let planted = tmp.join("out.txt");
    as_nobody(&format!(
        "touch {p} && chmod 666 {p}",
        p = planted.display()
    ));
    std::fs::write(
        root.path().join("w.rhai"),
        format!(
            r#"write_file("{}", "secret"); write_file("{}", "mine");"#,
            planted.display(),
            tmp.join("mine.txt").display()
        ),
    )
    .expect("write script");
    prun(root.path(), &["w.rhai"])
        .code(2)
        .says("it belongs to uid 65534 (nobody) in a sticky directory anyone can write");
    assert_eq!(std::fs::read_to_string(&planted).unwrap(), "");
    // Root's own file there is written as ever.
    std::fs::write(
        root.path().join("w.rhai"),
        format!(
            r#"write_file("{}", "mine");"#,
            tmp.join("mine.txt").display()
        ),
    )
    .expect("write script");
    prun(root.path(), &["w.rhai"]).ok();
    assert_eq!(
        std::fs::read_to_string(tmp.join("mine.txt")).unwrap(),
        "mine"
    );
}

/// The directory another user named, which prun's refusal names, has its control
/// characters written out: it reaches root's terminal as no escape sequence.
#[test]
#[cfg_attr(prun_no_root, ignore = "needs root (to run a command as another user)")]
fn a_refusal_names_a_directory_another_user_named_without_escape_sequences() {
    let root = tempfile::tempdir().expect("tempdir");
    chmod(root.path(), 0o755);
    let theirs = root.path().join("u\u{1b}]0;owned\u{7}");
    std::fs::create_dir(&theirs).expect("mkdir");
    std::fs::write(
        theirs.join("s.rhai"),
        r#"proc("p", #{ shell: "true" }); run("p");"#,
    )
    .expect("write script");
    nix::unistd::chown(&theirs, Some(nix::unistd::Uid::from_raw(65534)), None).expect("chown");
    let script = theirs.join("s.rhai");
    let ran = prun(root.path(), &[script.to_str().unwrap()]);
    ran.code(2)
        .says("refusing to run it as root")
        .says("u\\e]0;owned\\x07 above it");
    assert!(
        !ran.stderr.contains('\u{1b}') && !ran.stderr.contains('\u{7}'),
        "{}",
        ran.describe()
    );
}

#[test]
#[cfg_attr(prun_no_root, ignore = "needs root (to run a command as another user)")]
fn root_never_runs_a_script_or_module_another_user_can_change() {
    let root = tempfile::tempdir().expect("tempdir");
    chmod(root.path(), 0o755);
    let dir = |name: &str, mode: u32| {
        let d = root.path().join(name);
        std::fs::create_dir(&d).expect("mkdir");
        chmod(&d, mode);
        d
    };
    let (safe, open, sticky) = (
        dir("safe", 0o755),
        dir("open", 0o777),
        dir("sticky", 0o1777),
    );
    let state = root.path().join("state");
    let ran = safe.join("ran");
    let script = |d: &Path, name: &str, text: &str| {
        let p = d.join(name);
        std::fs::write(&p, text).expect("write script");
        chmod(&p, 0o644);
        p.to_str().unwrap().to_string()
    };
    let body = format!("write_file({:?}, \"yes\");", ran.display().to_string());
    let importer = |module: &Path| {
        script(
            &safe,
            "importer.rhai",
            &format!(
                "import {:?} as m;",
                module.with_extension("").display().to_string()
            ),
        )
    };
    let refused = |s: &str, culprit: &str| {
        prun_with_state(&safe, &state, &[s])
            .code(2)
            .says("refusing to run it as root")
            .says(culprit);
        assert!(!ran.exists(), "{s} ran");
    };
    // A script another user owns; one root owns in a directory others may write.
    let theirs = script(&safe, "theirs.rhai", &body);
    as_nobody_owns(&theirs);
    refused(&theirs, "it is owned by uid 65534");
    refused(
        &script(&open, "s.rhai", &body),
        &format!("{} above it", open.display()),
    );
    // Writable by others, or by a group other than root's.
    let writable = script(&safe, "w.rhai", &body);
    chmod(Path::new(&writable), 0o666);
    refused(&writable, "mode 0666");
    chmod(Path::new(&writable), 0o664);
    std::os::unix::fs::chown(&writable, None, Some(65534)).expect("chgrp");
    refused(&writable, "mode 0664");
    // A module from a directory others may write, or of another user, through a link.
    let module = script(&open, "lib.rhai", &body);
    refused(
        &importer(Path::new(&module)),
        &format!("{} above it", open.display()),
    );
    let module = script(&sticky, "lib.rhai", &body);
    as_nobody_owns(&module);
    let link = safe.join("link.rhai");
    std::os::unix::fs::symlink(&module, &link).expect("symlink");
    refused(&importer(&link), "it is owned by uid 65534");
    // Root's own files run, also in a sticky directory such as /tmp.
    std::os::unix::fs::chown(&module, Some(0), None).expect("chown");
    prun_with_state(&safe, &state, &[&importer(&link)]).ok();
    assert_eq!(std::fs::read_to_string(&ran).unwrap(), "yes");
}

/// Gives the file at `path` to `nobody`.
fn as_nobody_owns(path: &str) {
    std::os::unix::fs::chown(path, Some(65534), None).expect("chown");
}

#[test]
#[cfg_attr(prun_no_root, ignore = "needs root (prun checks PATH as root only)")]
fn root_refuses_a_path_that_looks_for_programs_in_the_working_directory() {
    let dir = tempfile::tempdir().expect("tempdir");
    let planted = dir.path().join("ls");
    std::fs::write(&planted, "#!/bin/sh\ntouch PWNED\n").expect("write");
    chmod(&planted, 0o755);
    std::fs::write(
        dir.path().join("s.rhai"),
        r#"proc("a", #{ cmd: ["ls"] }); run("a");"#,
    )
    .expect("write script");
    let path = std::env::var("PATH").unwrap_or_default();
    let with_path = |p: &str| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_prun"));
        cmd.arg("s.rhai")
            .current_dir(dir.path())
            .env("PATH", p)
            .env("XDG_STATE_HOME", dir.path().join("state"));
        run(cmd)
    };
    for (p, entry) in [
        (format!(".:{path}"), "\".\""),
        (format!("{path}:"), "an empty entry"),
        (format!("bin:{path}"), "\"bin\""),
    ] {
        with_path(&p)
            .code(2)
            .says(&format!("refusing to run as root with {entry} in PATH"));
        assert!(!dir.path().join("PWNED").exists(), "PATH={p} ran ./ls");
    }
    with_path(&path).ok();
    assert!(!dir.path().join("PWNED").exists());
}

/// An absolute entry of root's `PATH` is no better than `.` when another user can put a
/// program there: a sticky directory anyone can write (each user may add a file of their
/// own), a directory of theirs, a missing one they could make, a link of theirs.
#[test]
#[cfg_attr(prun_no_root, ignore = "needs root (to run a command as another user)")]
fn root_refuses_a_path_entry_another_user_could_put_a_program_in() {
    let dir = tempfile::tempdir().expect("tempdir");
    chmod(dir.path(), 0o755);
    std::fs::write(
        dir.path().join("s.rhai"),
        r#"proc("a", #{ cmd: ["true"] }); run("a");"#,
    )
    .expect("write script");
    let made = |name: &str, mode: u32| {
        let d = dir.path().join(name);
        std::fs::create_dir(&d).expect("mkdir");
        chmod(&d, mode);
        d
    };
    let sticky = made("sticky", 0o1777);
    let theirs = made("theirs", 0o755);
    let group = made("group", 0o775);
    let mine = made("mine", 0o755);
    as_nobody_owns(&theirs.display().to_string());
    std::os::unix::fs::chown(&group, None, Some(65534)).expect("chgrp");
    as_nobody(&format!(
        "printf '#!/bin/sh\\ntouch {pwned}\\n' > {s}/true && chmod 755 {s}/true && ln -s /usr/bin {s}/link",
        pwned = dir.path().join("PWNED").display(),
        s = sticky.display()
    ));
    let path = std::env::var("PATH").unwrap_or_default();
    let with_path = |entry: &Path| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_prun"));
        cmd.arg("s.rhai")
            .current_dir(dir.path())
            .env("PATH", format!("{}:{path}", entry.display()))
            .env("XDG_STATE_HOME", dir.path().join("state"));
        run(cmd)
    };
    for (entry, why) in [
        (sticky.clone(), "mode 1777".to_string()),
        (theirs.clone(), "owned by uid 65534".to_string()),
        (group.clone(), "mode 0775".to_string()),
        (sticky.join("bin"), "mode 1777".to_string()),
        (
            sticky.join("link"),
            format!(
                "{} is a symbolic link owned by uid 65534",
                sticky.join("link").display()
            ),
        ),
    ] {
        with_path(&entry)
            .code(2)
            .says(&format!(
                "refusing to run as root with {} in PATH",
                entry.display()
            ))
            .says(&why);
        assert!(
            !dir.path().join("PWNED").exists(),
            "PATH={} ran its true",
            entry.display()
        );
    }
    with_path(&mine).ok();
}

#[test]
#[cfg_attr(prun_no_root, ignore = "needs root (to run a command as another user)")]
fn root_refuses_a_tmpdir_another_user_could_swap() {
    let dir = tempfile::tempdir().expect("tempdir");
    chmod(dir.path(), 0o755);
    std::fs::write(
        dir.path().join("s.rhai"),
        r#"write_file(`${tempdir()}/x`, "secret"); print("made a tempdir");"#,
    )
    .expect("write script");
    let tmp = |name: &str, mode: u32| {
        let d = dir.path().join(name);
        std::fs::create_dir(&d).expect("mkdir");
        chmod(&d, mode);
        d
    };
    let theirs = tmp("theirs", 0o700);
    std::os::unix::fs::chown(&theirs, Some(65534), None).expect("chown");
    let open = tmp("open", 0o777);
    let sticky = tmp("sticky", 0o1777);
    let with_tmpdir = |t: &Path| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_prun"));
        cmd.arg("s.rhai")
            .current_dir(dir.path())
            .env("TMPDIR", t)
            .env("XDG_STATE_HOME", dir.path().join("state"));
        run(cmd)
    };
    with_tmpdir(&theirs).code(2).says(&format!(
        "refusing to run as root with TMPDIR={}: it is owned by uid 65534",
        theirs.display()
    ));
    with_tmpdir(&open.join(".")).code(2).says("mode 0777");
    assert_eq!(
        std::fs::read_dir(&open).unwrap().count(),
        0,
        "a tempdir was made"
    );
    with_tmpdir(&sticky).ok().says("made a tempdir");
}

#[test]
#[cfg_attr(prun_no_root, ignore = "needs root (to run a command as another user)")]
fn root_keeps_no_logs_in_a_log_dir_another_user_could_change() {
    let dir = tempfile::tempdir().expect("tempdir");
    chmod(dir.path(), 0o755);
    let state = dir.path().join("state");
    let with_log_dir = |log_dir: &Path| {
        std::fs::write(
            dir.path().join("s.rhai"),
            format!(
                "set_options(#{{ log_dir: {:?} }});\nproc(\"a\", #{{ shell: \"echo secret\" }});\nrun(\"a\");",
                log_dir.display().to_string()
            ),
        )
        .expect("write script");
        prun_with_state(dir.path(), &state, &["s.rhai"])
    };
    let theirs = dir.path().join("theirs");
    std::fs::create_dir(&theirs).expect("mkdir");
    std::os::unix::fs::chown(&theirs, Some(65534), None).expect("chown");
    let open = dir.path().join("open");
    std::fs::create_dir(&open).expect("mkdir");
    chmod(&open, 0o777);
    let link = dir.path().join("sticky");
    std::fs::create_dir(&link).expect("mkdir");
    chmod(&link, 0o1777);
    let mine = dir.path().join("mine");
    std::fs::create_dir(&mine).expect("mkdir");
    as_nobody(&format!("ln -s {} {}/logs", mine.display(), link.display()));
    for (log_dir, says) in [
        (
            theirs.clone(),
            format!("{} is owned by uid 65534", theirs.display()),
        ),
        (
            open.join("logs"),
            format!("{} is owned by uid 0 (root), mode 0777", open.display()),
        ),
        (
            link.join("logs"),
            format!(
                "{}/logs is a symbolic link owned by uid 65534",
                link.display()
            ),
        ),
    ] {
        with_log_dir(&log_dir)
            .code(2)
            .says("set_options: root keeps no logs in")
            .says(&says);
    }
    let entries = |d: &Path| std::fs::read_dir(d).expect("read_dir").count();
    assert_eq!(entries(&theirs) + entries(&mine), 0, "logs were kept");
    assert!(!open.join("logs").exists(), "logs were kept");
    with_log_dir(&mine.join("logs")).ok();
    assert!(walk(&mine.join("logs")).len() > 1, "the run kept its logs");
}

/// A rollback journal that SQLite plays back into a DB of `db`'s page size, making it a
/// copy of `db` (whose file holds all its pages: no `-wal` beside it): every page, in
/// SQLite's journal format (a header that gives the page count from the file size, a zero
/// checksum seed).
fn hot_journal_making(db: &Path) -> Vec<u8> {
    let data = std::fs::read(db).expect("read DB");
    let page = match u32::from(u16::from_be_bytes([data[16], data[17]])) {
        1 => 65536,
        n => n as usize,
    };
    let mut j = vec![0xd9, 0xd5, 0x05, 0xf9, 0x20, 0xa1, 0x63, 0xd7];
    j.extend(u32::MAX.to_be_bytes());
    j.extend(0u32.to_be_bytes());
    j.extend(((data.len() / page) as u32).to_be_bytes());
    j.extend(512u32.to_be_bytes());
    j.extend((page as u32).to_be_bytes());
    j.resize(512, 0);
    for (n, p) in data.chunks(page).enumerate() {
        j.extend((n as u32 + 1).to_be_bytes());
        j.extend(p);
        let sum = (1..)
            .map(|k| page as isize - 200 * k)
            .take_while(|&i| i > 0)
            .map(|i| u32::from(p[i as usize]))
            .fold(0u32, u32::wrapping_add);
        j.extend(sum.to_be_bytes());
    }
    j
}

#[test]
#[cfg_attr(prun_no_root, ignore = "needs root (to run a command as another user)")]
fn a_task_db_is_never_kept_where_another_user_can_put_a_journal_beside_it() {
    // SQLite plays a `-journal` it finds beside a DB back into it: `nobody`, who may
    // create files in the DB's directory (a sticky one, like /tmp), wrote root's cache.
    let s = Shared::new("db_journal");
    let dir = s.work.parent().expect("root").join("db");
    std::fs::create_dir(&dir).expect("mkdir");
    let db = dir.join("x.db");
    let words = [s.script.to_str().unwrap(), "--db", db.to_str().unwrap()];
    let state = dir.parent().unwrap().join("state");
    prun_with_state(&s.work, &state, &words).ok();
    assert_eq!(s.used().as_deref(), Some("safe\n"));
    std::fs::remove_file(s.work.join("used.txt")).expect("rm");
    chmod(&dir, 0o1777);
    let journal = s.tmp.join("journal");
    std::fs::write(&journal, hot_journal_making(&s.planted_db)).expect("write journal");
    chmod(&journal, 0o644);
    as_nobody(&format!(
        "cp {} {}-journal",
        journal.display(),
        db.display()
    ));
    let ran = prun_with_state(&s.work, &state, &words);
    ran.ok();
    assert_eq!(
        s.used().as_deref(),
        Some("safe\n"),
        "the journal another user planted was played back into root's DB\n{}",
        ran.describe()
    );
    ran.says(&format!(
        "{}: it is owned by uid 0 (root), mode 1777",
        dir.display()
    ));
}

#[test]
#[cfg_attr(prun_no_root, ignore = "needs root (to run a command as another user)")]
fn root_makes_no_tempdir_in_a_directory_another_user_could_change() {
    // In a directory others may write (not sticky), another user could rename root's
    // fresh private directory away and put theirs, or a link, in its place.
    let dir = tempfile::tempdir().expect("tempdir");
    chmod(dir.path(), 0o755);
    let open = dir.path().join("open");
    std::fs::create_dir(&open).expect("mkdir");
    chmod(&open, 0o777);
    let sticky = dir.path().join("sticky");
    std::fs::create_dir(&sticky).expect("mkdir");
    chmod(&sticky, 0o1777);
    let state = dir.path().join("state");
    let with_parent = |parent: &Path| {
        std::fs::write(
            dir.path().join("s.rhai"),
            format!(
                "proc(\"t\", #{{ now: true }}, || {{ write_file(tempdir({:?}) + \"/f\", \"x\"); }});",
                parent.display().to_string()
            ),
        )
        .expect("write script");
        prun_with_state(dir.path(), &state, &["s.rhai"])
    };
    with_parent(&open)
        .code(1)
        .says("root makes no temporary directory in")
        .says(&format!(
            "{} is owned by uid 0 (root), mode 0777",
            open.display()
        ));
    assert_eq!(std::fs::read_dir(&open).expect("read_dir").count(), 0);
    with_parent(&sticky).ok();
}

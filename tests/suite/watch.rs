//! Watch mode: a watching prun runs as a child process; the tests change files for real
//! and wait, with bounded polling, for what prun prints about each cycle.
//!
//! That nothing else happened (no second cycle after a burst, no loop after an output
//! write) is shown by an event, not by waiting: a later change of another input must
//! start the very next cycle.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long one awaited event may take before the test fails.
const PATIENCE: Duration = Duration::from_secs(30);

/// A prun watching a script in a temporary directory.
struct Watching {
    dir: tempfile::TempDir,
    child: Child,
    out: Arc<Mutex<String>>,
    err: Arc<Mutex<String>>,
    /// prun's stdout and stderr go to these files instead of pipes.
    out_files: Option<(PathBuf, PathBuf)>,
}

/// A new directory holding `main.rhai` (`script`) and `files`.
fn written(script: &str, files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("main.rhai"), script).expect("script");
    for (p, text) in files {
        let path = dir.path().join(p);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(path, text).expect("file");
    }
    dir
}

impl Watching {
    /// Writes `files` and `main.rhai`, then starts `prun main.rhai ARGS`.
    fn start(script: &str, files: &[(&str, &str)], args: &[&str]) -> Watching {
        Watching::start_writing_to(script, files, args, None)
    }

    /// [`Watching::start`], with prun's stdout and stderr going to the files `out_files`
    /// (relative to the directory) when given.
    fn start_writing_to(
        script: &str,
        files: &[(&str, &str)],
        args: &[&str],
        out_files: Option<(&str, &str)>,
    ) -> Watching {
        let dir = written(script, files);
        Watching::start_in(dir, args, out_files)
    }

    /// Starts `prun main.rhai ARGS` in `dir` (see [`Watching::start_writing_to`]).
    fn start_in(
        dir: tempfile::TempDir,
        args: &[&str],
        out_files: Option<(&str, &str)>,
    ) -> Watching {
        let prun = Command::new(env!("CARGO_BIN_EXE_prun"));
        Watching::start_command(prun, dir, args, out_files)
    }

    /// [`Watching::start`] with at most `watches` inotify watches: prun runs in a user
    /// namespace of its own (`unshare -Ur`, one process: signals reach prun), whose limit
    /// is lowered, so that other processes' watches are not at stake.
    fn start_with_watches(
        script: &str,
        files: &[(&str, &str)],
        args: &[&str],
        watches: u32,
    ) -> Watching {
        let dir = written(script, files);
        let mut limited = Command::new("unshare");
        limited.args([
            "-Ur",
            "sh",
            "-c",
            &format!("echo {watches} > /proc/sys/user/max_inotify_watches && exec \"$0\" \"$@\""),
            env!("CARGO_BIN_EXE_prun"),
        ]);
        Watching::start_command(limited, dir, args, None)
    }

    /// Starts `command main.rhai ARGS` in `dir`, `command` being prun or what execs it.
    fn start_command(
        mut command: Command,
        dir: tempfile::TempDir,
        args: &[&str],
        out_files: Option<(&str, &str)>,
    ) -> Watching {
        let out_files = out_files.map(|(o, e)| (dir.path().join(o), dir.path().join(e)));
        let (stdout, stderr) = match &out_files {
            Some((o, e)) => (
                Stdio::from(std::fs::File::create(o).expect("stdout file")),
                Stdio::from(std::fs::File::create(e).expect("stderr file")),
            ),
            None => (Stdio::piped(), Stdio::piped()),
        };
        let mut child = command
            .arg("main.rhai")
            .args(args)
            .current_dir(dir.path())
            .env("XDG_STATE_HOME", dir.path().join("state"))
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(stderr)
            .spawn()
            .expect("start prun");
        let (out, err) = match (child.stdout.take(), child.stderr.take()) {
            (Some(o), Some(e)) => (collect(o), collect(e)),
            _ => Default::default(),
        };
        Watching {
            dir,
            child,
            out,
            err,
            out_files,
        }
    }

    fn path(&self, p: &str) -> PathBuf {
        self.dir.path().join(p)
    }

    fn write(&self, p: &str, text: &str) {
        std::fs::write(self.path(p), text).expect("write");
    }

    fn read(&self, p: &str) -> String {
        std::fs::read_to_string(self.path(p)).unwrap_or_default()
    }

    fn stdout(&self) -> String {
        match &self.out_files {
            Some((o, _)) => std::fs::read_to_string(o).unwrap_or_default(),
            None => self.out.lock().expect("stdout").clone(),
        }
    }

    fn stderr(&self) -> String {
        match &self.out_files {
            Some((_, e)) => std::fs::read_to_string(e).unwrap_or_default(),
            None => self.err.lock().expect("stderr").clone(),
        }
    }

    /// Waits until `done` holds, failing the test (and showing prun's output) after
    /// [`PATIENCE`].
    fn until(&mut self, what: &str, mut done: impl FnMut(&Watching) -> bool) {
        let start = Instant::now();
        while !done(self) {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "prun ended ({status}) while waiting for {what}\n{}",
                    self.shown()
                );
            }
            if start.elapsed() > PATIENCE {
                let _ = self.child.kill();
                panic!("timed out waiting for {what}\n{}", self.shown());
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Waits until prun's output has `n` lines containing `text`.
    fn until_lines(&mut self, text: &str, n: usize) {
        self.until(&format!("{n} line(s) with {text:?}"), |w| {
            w.stdout().lines().filter(|l| l.contains(text)).count() >= n
        });
    }

    /// Waits until the watch announced itself for the `n`th time (after the first run and
    /// after each cycle).
    fn until_watching(&mut self, n: usize) {
        self.until_lines("prun: watch: watching", n);
    }

    /// Waits until the watch waits again: its last line of its own says it watches (a
    /// cycle that started has ended).
    fn until_idle(&mut self) {
        self.until("the watch to wait again", |w| {
            w.stdout()
                .lines()
                .rfind(|l| l.starts_with("prun: watch: "))
                .is_some_and(|l| l.starts_with("prun: watch: watching"))
        });
    }

    /// Ctrl-C, then the exit status once prun has ended.
    fn interrupt(self) -> (i32, String, String, tempfile::TempDir) {
        self.signal("INT")
    }

    /// Sends prun the signal `sig` (`INT`, `TERM`, ...), then the exit status once prun
    /// has ended.
    fn signal(mut self, sig: &str) -> (i32, String, String, tempfile::TempDir) {
        let pid = self.child.id().to_string();
        let _ = Command::new("kill")
            .args([&format!("-{sig}"), &pid])
            .status();
        let start = Instant::now();
        let status = loop {
            if let Some(s) = self.child.try_wait().expect("wait") {
                break s;
            }
            if start.elapsed() > PATIENCE {
                let _ = self.child.kill();
                panic!("prun did not end after SIG{sig}\n{}", self.shown());
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        // The readers see the end of the pipes once prun has exited.
        let deadline = Instant::now() + PATIENCE;
        while Arc::strong_count(&self.out) > 1 || Arc::strong_count(&self.err) > 1 {
            assert!(Instant::now() < deadline, "prun's output never ended");
            std::thread::sleep(Duration::from_millis(5));
        }
        let (out, err) = (self.stdout(), self.stderr());
        // The directory outlives this handle: the caller looks at what the jobs left.
        let dir = std::mem::replace(&mut self.dir, tempfile::tempdir().expect("tempdir"));
        (status.code().unwrap_or(-1), out, err, dir)
    }

    fn shown(&self) -> String {
        format!(
            "--- stdout\n{}\n--- stderr\n{}",
            self.stdout(),
            self.stderr()
        )
    }
}

impl Drop for Watching {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Reads a pipe to its end into a shared string; the reader drops its handle when done.
fn collect(mut pipe: impl Read + Send + 'static) -> Arc<Mutex<String>> {
    let text = Arc::new(Mutex::new(String::new()));
    let mine = text.clone();
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = pipe.read(&mut buf) {
            if n == 0 {
                break;
            }
            mine.lock()
                .expect("output")
                .push_str(&String::from_utf8_lossy(&buf[..n]));
        }
    });
    text
}

/// How many lines of `log` are exactly `line`.
fn count(log: &str, line: &str) -> usize {
    log.lines().filter(|l| *l == line).count()
}

/// Whether the process `pid` (written by a job into `file`) is gone.
fn gone(dir: &Path, file: &str) -> bool {
    let pid = std::fs::read_to_string(dir.join(file)).expect("pid file");
    let pid = pid.trim();
    assert!(!pid.is_empty(), "no pid in {file}");
    let deadline = Instant::now() + Duration::from_secs(10);
    while Path::new(&format!("/proc/{pid}")).exists() {
        // A zombie is gone for good; it only waits for its reaper.
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        if stat.split(") ").nth(1).is_some_and(|s| s.starts_with('Z')) {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    true
}

/// `a` reads `src/a.txt`, `b` depends on `a`, `c` reads `other/c.txt`, `d` reads nothing;
/// each appends its name to `runs` when it really runs.
const CHAIN: &str = r#"
proc("a", #{ inputs: ["src/a.txt"], shell: "echo a >> runs; cat src/a.txt" });
proc("b", #{ deps: ["a"], shell: "echo b >> runs" });
proc("c", #{ inputs: ["other/c.txt"], shell: "echo c >> runs" });
proc("d", #{ shell: "echo d >> runs" });
"#;

const CHAIN_FILES: &[(&str, &str)] = &[("src/a.txt", "1\n"), ("other/c.txt", "1\n")];

#[test]
fn one_change_reruns_the_proc_and_its_dependents_only() {
    let mut w = Watching::start(CHAIN, CHAIN_FILES, &["b", "c", "d", "--watch"]);
    w.until_watching(1);
    assert_eq!(w.read("runs").lines().count(), 4, "{}", w.read("runs"));
    w.write("src/a.txt", "2\n");
    w.until_watching(2);
    let out = w.stdout();
    assert!(
        out.contains("prun: watch: cycle 1: src/a.txt changed"),
        "{out}"
    );
    assert!(
        out.contains("prun: watch: cycle 1: 2 succeeded in"),
        "{out}"
    );
    let runs = w.read("runs");
    assert_eq!((count(&runs, "a"), count(&runs, "b")), (2, 2), "{runs}");
    assert_eq!((count(&runs, "c"), count(&runs, "d")), (1, 1), "{runs}");
    let (code, out, _, _) = w.interrupt();
    assert_eq!(code, 0, "{out}");
}

#[test]
fn ten_writes_within_the_debounce_are_one_rerun() {
    // A debounce well above the burst's length, even on a loaded machine.
    let script = format!(r#"set_options(#{{ watch_debounce: "1s" }}); {CHAIN}"#);
    let mut w = Watching::start(&script, CHAIN_FILES, &["b", "c", "--watch"]);
    w.until_watching(1);
    // A burst of saves over some 180 ms (the pauses make the burst; they synchronise
    // nothing).
    for i in 0..10 {
        w.write("src/a.txt", &format!("{i}\n"));
        std::thread::sleep(Duration::from_millis(20));
    }
    w.until_watching(2);
    // The next cycle is the one another change starts: the burst made no second one.
    w.write("other/c.txt", "2\n");
    w.until_watching(3);
    let out = w.stdout();
    assert!(
        out.contains("prun: watch: cycle 2: other/c.txt changed"),
        "{out}"
    );
    let runs = w.read("runs");
    assert_eq!((count(&runs, "a"), count(&runs, "b")), (2, 2), "{runs}");
    assert_eq!(count(&runs, "c"), 2, "{runs}");
    w.interrupt();
}

#[test]
fn a_change_during_a_run_gives_a_second_run_whose_result_the_dependents_use() {
    // `a` returns what it read; while `hold` exists it waits for `go` before returning.
    let script = r#"
proc("a", #{ inputs: ["src/in.txt"] }, |ctx| {
    let v = read_file("src/in.txt");
    if file_info("hold") != () {
        exec(["rm", "hold"]);
        write_file("a.running", "");
        let i = 0;
        while file_info("go") == () && i < 3000 { sleep(0.01); i += 1; }
    }
    v
});
proc("b", #{ deps: ["a"] }, |ctx| { append_file("b.seen", ctx.results["a"]); });
"#;
    let mut w = Watching::start(script, &[("src/in.txt", "v1\n")], &["b", "--watch"]);
    w.until_watching(1);
    w.write("hold", "");
    w.write("src/in.txt", "v2\n");
    w.until("a to run on v2", |w| w.path("a.running").exists());
    w.write("src/in.txt", "v3\n");
    w.until_lines("changed while it ran; running again when done: a", 1);
    w.write("go", "");
    w.until_watching(2);
    assert_eq!(w.read("b.seen"), "v1\nv3\n", "{}", w.stdout());
    let (code, out, _, _) = w.interrupt();
    assert_eq!(code, 0, "{out}");
}

#[test]
fn an_output_write_does_not_start_another_cycle() {
    // `a`'s output lies in the directory its input glob watches.
    let script = r#"
proc("a", #{ inputs: ["src/*"], outputs: ["src/out.gen"],
             shell: "echo a >> runs; cat src/in.txt > src/out.gen" });
proc("c", #{ inputs: ["other/c.txt"], shell: "echo c >> runs" });
"#;
    let files = [("src/in.txt", "1\n"), ("other/c.txt", "1\n")];
    let mut w = Watching::start(script, &files, &["a", "c", "--watch"]);
    w.until_watching(1);
    w.write("src/in.txt", "2\n");
    w.until_watching(2);
    w.write("other/c.txt", "2\n");
    w.until_watching(3);
    let out = w.stdout();
    assert!(
        out.contains("prun: watch: cycle 2: other/c.txt changed"),
        "{out}"
    );
    let runs = w.read("runs");
    assert_eq!((count(&runs, "a"), count(&runs, "c")), (2, 2), "{runs}");
    w.interrupt();
}

/// A script whose `a` watches a glob, and `c` another directory (for the follow-up change).
const GLOB: &str = r#"
proc("a", #{ inputs: ["src/*.txt"], shell: "echo a >> runs" });
proc("c", #{ inputs: ["other/c.txt"], shell: "echo c >> runs" });
"#;

/// Runs `change` on a watching prun of [`GLOB`] and checks that it made exactly one cycle
/// that re-ran `a`.
fn one_cycle_for(change: impl FnOnce(&Watching), what: &str) {
    let files = [("src/a.txt", "1\n"), ("other/c.txt", "1\n")];
    let mut w = Watching::start(GLOB, &files, &["a", "c", "--watch"]);
    w.until_watching(1);
    change(&w);
    w.until_watching(2);
    w.write("other/c.txt", "2\n");
    w.until_watching(3);
    let out = w.stdout();
    assert!(
        out.contains(&format!("prun: watch: cycle 1: {what} changed")),
        "{out}"
    );
    assert!(
        out.contains("prun: watch: cycle 2: other/c.txt changed"),
        "{out}"
    );
    let runs = w.read("runs");
    assert_eq!(count(&runs, "a"), 2, "{runs}");
    w.interrupt();
}

#[test]
fn a_new_file_matching_an_input_glob_starts_one_cycle() {
    one_cycle_for(|w| w.write("src/new.txt", "x\n"), "src/new.txt");
}

#[test]
fn a_file_saved_by_rename_starts_one_cycle() {
    // As editors save: write a temporary file beside it, then rename it over the input.
    one_cycle_for(
        |w| {
            w.write("src/.a.txt.swp", "2\n");
            std::fs::rename(w.path("src/.a.txt.swp"), w.path("src/a.txt")).expect("rename");
        },
        "src/a.txt",
    );
}

#[test]
fn a_file_saved_as_vim_does_starts_one_cycle_naming_the_input_only() {
    // vim's backup-and-replace: the input renamed to a backup, written anew, the backup
    // removed. The backup matches no input: it is not said to have changed.
    one_cycle_for(
        |w| {
            std::fs::rename(w.path("src/a.txt"), w.path("src/a.txt~")).expect("rename");
            w.write("src/a.txt", "2\n");
            std::fs::remove_file(w.path("src/a.txt~")).expect("remove backup");
        },
        "src/a.txt",
    );
}

#[test]
fn a_deleted_input_starts_a_cycle() {
    let files = [("src/a.txt", "1\n"), ("src/b.txt", "1\n")];
    let mut w = Watching::start(GLOB, &files, &["a", "--watch"]);
    w.until_watching(1);
    std::fs::remove_file(w.path("src/b.txt")).expect("rm");
    w.until_watching(2);
    assert!(
        w.stdout()
            .contains("prun: watch: cycle 1: src/b.txt changed"),
        "{}",
        w.stdout()
    );
    assert_eq!(count(&w.read("runs"), "a"), 2);
    w.interrupt();
}

const CHECK: &str = r#"
proc("check", #{ inputs: ["src/in.txt"], shell: "grep -q good src/in.txt" });
"#;

#[test]
fn a_failing_cycle_is_reported_and_the_watch_goes_on() {
    let mut w = Watching::start(CHECK, &[("src/in.txt", "good\n")], &["check", "--watch"]);
    w.until_watching(1);
    w.write("src/in.txt", "bad\n");
    w.until_watching(2);
    let out = w.stdout();
    assert!(out.contains("FAILED     check"), "{out}");
    assert!(out.contains("prun: watch: cycle 1: 1 failed in"), "{out}");
    w.write("src/in.txt", "good again\n");
    w.until_watching(3);
    assert!(
        w.stdout().contains("prun: watch: cycle 2: 1 succeeded in"),
        "{}",
        w.stdout()
    );
    let (code, out, _, _) = w.interrupt();
    assert_eq!(code, 0, "the last cycle succeeded\n{out}");
}

/// A proc that prints its input, and fails unless it says good.
const SAYING_CHECK: &str = r#"
proc("check", #{ inputs: ["src/in.txt"], shell: "cat src/in.txt; grep -q good src/in.txt" });
"#;

#[test]
fn a_cycle_s_log_holds_that_cycle_and_its_failure_quotes_it() {
    let mut w = Watching::start(
        SAYING_CHECK,
        &[("src/in.txt", "good\n")],
        &["check", "--watch", "--no-db"],
    );
    w.until_watching(1);
    w.write("src/in.txt", "error: the first problem\n");
    w.until_watching(2);
    let out = w.stdout();
    assert!(
        out.contains("| error: the first problem"),
        "the failure quotes its log\n{out}"
    );
    w.write("src/in.txt", "the second problem\n");
    w.until_watching(3);
    let out = w.stdout();
    let cycle_2 = out
        .split("cycle 2: src/in.txt changed")
        .nth(1)
        .unwrap_or_default();
    assert!(
        cycle_2.contains("| the second problem") && !cycle_2.contains("first problem"),
        "the second failure quotes its own cycle only\n{out}"
    );
    w.write("src/in.txt", "good again\n");
    w.until_watching(4);
    let (_, _, _, dir) = w.interrupt();
    let logs = glob::glob(&format!("{}/state/**/check.log", dir.path().display()))
        .expect("pattern")
        .flatten()
        .collect::<Vec<_>>();
    assert_eq!(logs.len(), 1, "{logs:?}");
    let log = std::fs::read_to_string(&logs[0]).expect("log");
    let said: Vec<&str> = log.lines().filter(|l| !l.starts_with(['$', '#'])).collect();
    assert_eq!(said, ["good again"], "the last cycle's output\n{log}");
}

/// The recorded wait (in seconds) of each row of `proc` in the newest run of the task DB
/// `db`, with its start (RFC 3339).
fn waits_of(db: &Path, proc: &str) -> Vec<(f64, String)> {
    let conn = rusqlite::Connection::open(db).expect("open the task DB");
    let mut q = conn
        .prepare(
            "SELECT waited, started FROM proc_runs WHERE name = ?1 \
             AND run_id = (SELECT max(id) FROM runs) ORDER BY started",
        )
        .expect("query");
    q.query_map([proc], |r| Ok((r.get(0)?, r.get(1)?)))
        .expect("rows")
        .map(|r| r.expect("row"))
        .collect()
}

#[test]
fn a_proc_up_to_date_in_the_first_run_waits_from_its_cycle_not_from_the_run_s_start() {
    // `slow` makes the first run last long after `a` was found up to date in it, so
    // that a wait counted from then is far longer than the cycle's (the DB's start times
    // are to the millisecond).
    let script = r#"
proc("a", #{ inputs: ["src/in.txt"], shell: "true" });
proc("slow", #{ shell: "sleep 0.5" });
"#;
    let args = ["a", "slow", "--watch", "--db", "tasks.db"];
    let mut w = Watching::start(script, &[("src/in.txt", "1\n")], &args);
    w.until_watching(1);
    let (_, _, _, dir) = w.interrupt();
    // Again: `a` is up to date in the first run, and runs in the cycle.
    let mut w = Watching::start_in(dir, &args, None);
    w.until_watching(1);
    let before_change = std::time::SystemTime::now();
    w.write("src/in.txt", "2\n");
    w.until_watching(2);
    let (_, out, _, dir) = w.interrupt();
    let rows = waits_of(&dir.path().join("tasks.db"), "a");
    assert_eq!(rows.len(), 1, "the cycle's row only\n{out}");
    let (waited, started) = &rows[0];
    let started: std::time::SystemTime = humantime::parse_rfc3339(started).expect("start");
    let most = started
        .duration_since(before_change)
        .expect("started after the change");
    assert!(
        *waited <= most.as_secs_f64(),
        "waited {waited}s, but the change that made it ready came {most:?} before it started"
    );
}

#[test]
fn the_report_and_history_of_a_watch_count_its_procs_and_their_runs_in_the_cycles() {
    let args = ["b", "c", "d", "--watch", "--db", "tasks.db"];
    let mut w = Watching::start(CHAIN, CHAIN_FILES, &args);
    w.until_watching(1);
    w.write("src/a.txt", "2\n");
    w.until_watching(2);
    let (_, out, _, dir) = w.interrupt();
    let prun = |sub: &str, more: &[&str]| {
        let done = Command::new(env!("CARGO_BIN_EXE_prun"))
            .args([sub, "main.rhai", "--db", "tasks.db"])
            .args(more)
            .current_dir(dir.path())
            .env("XDG_STATE_HOME", dir.path().join("state"))
            .output()
            .expect("prun report");
        String::from_utf8_lossy(&done.stdout).into_owned()
    };
    let report = |more: &[&str]| prun("report", more);
    // a, b, c, d in the first run, then a and b again in the cycle.
    let history = prun("history", &[]);
    let (first, cycle) = history
        .split_once("  first run:\n")
        .and_then(|(_, rest)| rest.split_once("  cycle 1:\n"))
        .unwrap_or_else(|| panic!("no cycles in the history:\n{history}"));
    let names = |rows: &str| -> Vec<String> {
        let mut names: Vec<String> = rows
            .lines()
            .map(|l| l.strip_prefix("    SUCCEEDED  ").unwrap_or(l).to_string())
            .map(|l| l.split(' ').next().unwrap_or_default().to_string())
            .collect();
        names.sort();
        names
    };
    assert_eq!(names(first), ["a", "b", "c", "d"], "{history}");
    assert_eq!(names(cycle), ["a", "b"], "{history}");
    let text = report(&[]);
    assert!(
        text.starts_with("run 1 of main.rhai: ok, ") && text.contains(", 4 procs run 6 times, "),
        "{text}\n{out}"
    );
    let page = report(&["--html", "-"]);
    assert!(
        page.contains("4, run 6 times (0 slower than usual)"),
        "{page}"
    );
}

#[test]
fn ctrl_c_after_a_failed_cycle_exits_1() {
    let mut w = Watching::start(CHECK, &[("src/in.txt", "good\n")], &["check", "--watch"]);
    w.until_watching(1);
    w.write("src/in.txt", "bad\n");
    w.until_watching(2);
    let (code, out, err, _) = w.interrupt();
    assert_eq!(code, 1, "{out}\n{err}");
    assert!(!err.contains("interrupted"), "{err}");
}

#[test]
fn ctrl_c_after_a_good_cycle_exits_0_and_leaves_no_process_behind() {
    // The job leaves a child running in the background, in its process group.
    let script = r#"
proc("a", #{ inputs: ["src/in.txt"], shell: "sleep 1000 & echo $! > bg.pid" });
"#;
    let mut w = Watching::start(script, &[("src/in.txt", "1\n")], &["a", "--watch"]);
    w.until_watching(1);
    w.write("src/in.txt", "2\n");
    w.until_watching(2);
    let (code, out, err, dir) = w.interrupt();
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(gone(dir.path(), "bg.pid"), "the background child survived");
}

/// Whether the process `pid` (written by a job into `file`) is gone and reaped: not even
/// a zombie is left of it.
fn reaped(dir: &Path, file: &str) -> bool {
    let pid = std::fs::read_to_string(dir.join(file)).expect("pid file");
    let proc_dir = format!("/proc/{}", pid.trim());
    let deadline = Instant::now() + Duration::from_secs(10);
    while Path::new(&proc_dir).exists() {
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    true
}

/// A process that left its command's group (`setsid`, as a daemon does) and exited is
/// reaped once the first run is done and after each cycle, while the watch goes on: a long
/// watch does not gather zombies. One still running is left to the watch's end, as to a
/// run's end (a script may start a server for its later cycles), and ended then.
#[test]
fn an_escaped_process_is_reaped_after_each_cycle_and_a_live_one_ended_with_the_watch() {
    // `z` leaves a process of its own session that exits at once, an orphan prun adopts,
    // and waits until it is a zombie; `d`, on the first run only, a daemon that stays.
    let script = r#"
proc("z", #{ inputs: ["src/in.txt"],
             shell: "rm -f z.pid; sh -c 'setsid sh -c \"echo \\$\\$ > z.tmp; mv z.tmp z.pid\" &'; while [ ! -s z.pid ]; do sleep 0.01; done; until grep -q ') Z' /proc/$(cat z.pid)/stat; do sleep 0.01; done" });
proc("d", #{ shell: "setsid sh -c 'echo $$ > d.pid; exec sleep 300' < /dev/null > /dev/null 2>&1 & while [ ! -s d.pid ]; do sleep 0.01; done" });
"#;
    let mut w = Watching::start(script, &[("src/in.txt", "1\n")], &["z", "d", "--watch"]);
    w.until_watching(1);
    let first = w.read("z.pid").trim().to_owned();
    assert!(
        reaped(w.dir.path(), "z.pid"),
        "the first run's zombie {first} is left\n{}",
        w.shown()
    );
    w.write("src/in.txt", "2\n");
    w.until_watching(2);
    let second = w.read("z.pid").trim().to_owned();
    assert_ne!(first, second, "the cycle left no process");
    assert!(
        reaped(w.dir.path(), "z.pid"),
        "the cycle's zombie {second} is left\n{}",
        w.shown()
    );
    let daemon = w.read("d.pid");
    let stat = std::fs::read_to_string(format!("/proc/{}/stat", daemon.trim())).unwrap_or_default();
    assert!(
        stat.split(") ").nth(1).is_some_and(|s| s.starts_with('S')),
        "the daemon {daemon} did not last the watch: {stat:?}\n{}",
        w.shown()
    );
    let (code, out, err, dir) = w.interrupt();
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(gone(dir.path(), "d.pid"), "the daemon outlived the watch");
}

#[test]
fn ctrl_c_during_a_cycle_ends_its_jobs_and_exits_1() {
    let script = r#"
proc("a", #{ inputs: ["src/in.txt"],
             shell: "if grep -q slow src/in.txt; then echo $$ > job.pid; exec sleep 1000; fi" });
"#;
    let mut w = Watching::start(script, &[("src/in.txt", "fast\n")], &["a", "--watch"]);
    w.until_watching(1);
    w.write("src/in.txt", "slow\n");
    w.until("the job to run", |w| !w.read("job.pid").is_empty());
    let (code, out, err, dir) = w.interrupt();
    assert_eq!(code, 1, "the last cycle did not complete\n{out}\n{err}");
    assert!(gone(dir.path(), "job.pid"), "the job survived");
}

#[test]
fn watch_in_the_script_runs_the_same_loop_and_its_cleanups_run_after_ctrl_c() {
    let script = r#"
set_options(#{ watch: true, watch_debounce: "100ms" });
defer(|| write_file("cleaned", "yes"));
proc("a", #{ inputs: ["src/in.txt"], shell: "echo a >> runs" });
run("a");
watch();
write_file("after-watch", "ran");
"#;
    let mut w = Watching::start(script, &[("src/in.txt", "1\n")], &[]);
    w.until_watching(1);
    w.write("src/in.txt", "2\n");
    w.until_watching(2);
    assert_eq!(count(&w.read("runs"), "a"), 2);
    let (code, out, err, dir) = w.interrupt();
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(
        dir.path().join("cleaned").exists(),
        "the cleanup did not run"
    );
    assert!(
        !dir.path().join("after-watch").exists(),
        "Ctrl-C ends the script at watch()"
    );
}

#[test]
fn watch_without_watch_mode_is_an_error() {
    let out = crate::support::Test::new()
        .script(r#"proc("a", #{ shell: "true" }); run("a"); watch();"#)
        .run();
    out.code(2).err_has("watch() needs watch mode");
}

#[test]
fn a_negative_watch_debounce_is_an_error() {
    let out = crate::support::Test::new()
        .script(r#"set_options(#{ watch_debounce: -1 });"#)
        .run();
    out.code(2).err_has("watch_debounce");
}

#[test]
fn a_watch_with_no_inputs_to_watch_ends_with_a_warning() {
    let out = crate::support::Test::new()
        .script(r#"proc("a", #{ shell: "true" });"#)
        .args(&["a", "--watch"])
        .run();
    out.ok()
        .err_has("no scheduled proc declares inputs: there is nothing to watch");
}

#[test]
fn watch_with_names_watches_only_their_inputs_and_their_dependencies() {
    let script =
        format!(r#"set_options(#{{ watch: true }}); {CHAIN} run(["b", "c"]); watch("b");"#);
    let mut w = Watching::start(&script, CHAIN_FILES, &[]);
    w.until_watching(1);
    assert!(
        w.stdout().contains("watching 1 input of 1 proc"),
        "{}",
        w.stdout()
    );
    // `c` is not watched: its change starts no cycle, so the next cycle is `a`'s.
    w.write("other/c.txt", "2\n");
    w.write("src/a.txt", "2\n");
    w.until_watching(2);
    let out = w.stdout();
    assert!(
        out.contains("prun: watch: cycle 1: src/a.txt changed"),
        "{out}"
    );
    let runs = w.read("runs");
    assert_eq!((count(&runs, "a"), count(&runs, "c")), (2, 1), "{runs}");
    let (code, out, _, _) = w.interrupt();
    assert_eq!(code, 0, "{out}");
}

#[test]
fn an_input_changed_during_the_first_run_is_caught_up_on_when_the_watch_begins() {
    // The first run of `a` waits for `go`; the input changes meanwhile, before any watch.
    let script = r#"
proc("a", #{ inputs: ["src/in.txt"], shell: "cat src/in.txt >> seen; if [ ! -e first.done ]; then touch first.done running; i=0; while [ ! -e go ] && [ $i -lt 3000 ]; do sleep 0.01; i=$((i+1)); done; fi" });
"#;
    let mut w = Watching::start(script, &[("src/in.txt", "v1\n")], &["a", "--watch"]);
    w.until("the first run", |w| w.path("running").exists());
    w.write("src/in.txt", "v2\n");
    w.write("go", "");
    w.until_watching(1);
    let out = w.stdout();
    assert!(
        out.contains("prun: watch: cycle 1: src/in.txt changed"),
        "{out}"
    );
    assert_eq!(w.read("seen"), "v1\nv2\n", "{out}");
    w.interrupt();
}

#[test]
fn a_cycle_ends_only_once_its_work_is_done() {
    // Without a debounce, many changes arrive just as a cycle's last job ends: each one
    // either joins the running cycle or starts the next, and no cycle reports its end
    // while a proc of it is still to run.
    let script = r#"
set_options(#{ watch_debounce: 0 });
proc("a", #{ inputs: ["src/*.txt"], shell: "echo a >> runs" });
proc("c", #{ inputs: ["other/c.txt"], shell: "echo c >> runs" });
"#;
    let files = [("src/x.txt", "0\n"), ("other/c.txt", "1\n")];
    let mut w = Watching::start(script, &files, &["a", "c", "--watch"]);
    w.until_watching(1);
    // The pauses spread the writes over the cycles; they synchronise nothing.
    for i in 0..200 {
        w.write("src/x.txt", &format!("{i}\n"));
        std::thread::sleep(Duration::from_millis(5));
    }
    // Put in place whole (written beside the watched directories, then renamed): a write
    // that truncates, then writes, could start a second cycle after the one the wait
    // below sees, which the Ctrl-C would then cut short. `c` ran once at the start.
    w.write("c.txt", "2\n");
    std::fs::rename(w.path("c.txt"), w.path("other/c.txt")).expect("rename");
    w.until("the cycle of other/c.txt", |w| {
        w.read("runs").lines().filter(|l| *l == "c").count() >= 2
    });
    w.until_idle();
    let (code, out, err, _) = w.interrupt();
    let ends: Vec<&str> = out
        .lines()
        .filter(|l| l.starts_with("prun: watch: cycle ") && l.contains(" in "))
        .filter(|l| !l.contains("changed"))
        .collect();
    assert!(!ends.is_empty(), "{out}");
    for end in ends {
        let counts = end.rsplit(": ").next().unwrap_or_default();
        let states: Vec<&str> = counts.split(", ").collect();
        // A proc that ran and was then changed to what it ran on is judged up to date.
        assert!(
            states
                .iter()
                .all(|s| s.contains(" succeeded") || s.contains(" up to date")),
            "a cycle ended with procs still to run: {end}\n{out}"
        );
    }
    assert_eq!(code, 0, "{out}\n{err}");
}

#[test]
fn the_live_display_drops_a_restarted_proc_when_it_ends() {
    // `slow` waits for `go.N` (N is its input); a change while it runs restarts it.
    let script = r#"
proc("slow", #{ inputs: ["src/in.txt"],
    shell: "n=$(cat src/in.txt); touch started.$n; i=0; while [ ! -e go.$n ] && [ $i -lt 3000 ]; do sleep 0.01; i=$((i+1)); done" });
proc("c", #{ inputs: ["other/c.txt"], shell: "echo c >> runs" });
"#;
    let files = [("src/in.txt", "1"), ("go.1", ""), ("other/c.txt", "1\n")];
    let mut w = Watching::start(script, &files, &["slow", "c", "--watch", "--live"]);
    w.until_watching(1);
    w.write("src/in.txt", "2");
    w.until("slow to run on 2", |w| w.path("started.2").exists());
    w.write("src/in.txt", "3");
    // The live display cuts lines to its width (80 columns without a terminal).
    w.until_lines("changed while it ran", 1);
    w.write("go.2", "");
    w.until("slow to run again on 3", |w| w.path("started.3").exists());
    w.write("go.3", "");
    w.until_lines("prun: watch: cycle 1: 1 succeeded in", 1);
    // The display's clock ticks on while the watch is idle, until the next cycle ends.
    w.write("other/c.txt", "2\n");
    w.until_lines("prun: watch: cycle 2: 1 succeeded in", 1);
    let (code, out, err, _) = w.interrupt();
    assert_eq!(code, 0, "{out}\n{err}");
    let start = out
        .find("prun: watch: cycle 1: 1 succeeded in")
        .expect("cycle 1");
    let end = out
        .find("prun: watch: cycle 2: 1 succeeded in")
        .expect("cycle 2");
    let between = &out[start..end];
    assert!(
        !between.contains("slow"),
        "the live area still shows slow after its cycle ended:\n{between:?}"
    );
    // The header of cycle 1 counted the cycle's one proc, not the run's.
    let cycle1 = &out[out
        .find("prun: watch: cycle 1: src/in.txt changed")
        .expect("c1")..start];
    assert!(cycle1.contains("done 0 of 1"), "{cycle1:?}");
}

#[test]
fn the_live_header_counts_the_procs_a_change_adds_to_a_running_cycle() {
    // `a` and `b` each wait for their `go.<input>` file; `all` depends on both.
    let script = r#"
proc("a", #{ inputs: ["src/a.txt"],
    shell: "n=$(cat src/a.txt); touch started.a$n; while [ ! -e go.a$n ]; do sleep 0.01; done" });
proc("b", #{ inputs: ["src/b.txt"],
    shell: "n=$(cat src/b.txt); touch started.b$n; while [ ! -e go.b$n ]; do sleep 0.01; done" });
proc("all", #{ deps: ["a", "b"], shell: "true" });
"#;
    let files = [
        ("src/a.txt", "1"),
        ("src/b.txt", "1"),
        ("go.a1", ""),
        ("go.b1", ""),
    ];
    let mut w = Watching::start(script, &files, &["all", "--watch", "--live"]);
    w.until_watching(1);
    w.write("src/a.txt", "2");
    w.until("a to run on 2", |w| w.path("started.a2").exists());
    w.write("src/b.txt", "2");
    w.until("b to run on 2", |w| w.path("started.b2").exists());
    let joined = |w: &Watching| {
        let out = w.stdout();
        let at = out.find("changed while it ran").unwrap_or(out.len());
        out[at..].contains("running 2 · done 0 of")
    };
    w.until("a header with both running", joined);
    w.write("go.a2", "");
    w.write("go.b2", "");
    w.until_lines("prun: watch: cycle 1: 3 succeeded in", 1);
    let (code, out, err, _) = w.interrupt();
    assert_eq!(code, 0, "{out}\n{err}");
    let at = out
        .find("changed while it ran")
        .expect("the change during the cycle");
    assert!(
        out[at..].contains("running 2 · done 0 of 3") && !out[at..].contains("done 0 of 2"),
        "the header counts a, b and all once b joined the cycle:\n{:?}",
        &out[at..]
    );
}

#[test]
fn prun_output_written_into_a_watched_directory_starts_no_cycle() {
    // The whole directory is the input; prun's stdout and stderr are files in it.
    let script = r#"
proc("a", #{ inputs: ["."], outputs: ["runs"], shell: "echo a >> runs" });
"#;
    let mut w = Watching::start_writing_to(
        script,
        &[("in.txt", "1\n")],
        &["a", "--watch"],
        Some(("watch.log", "watch.err")),
    );
    w.until_watching(1);
    w.write("in.txt", "2\n");
    w.until_watching(2);
    w.write("more.txt", "1\n");
    w.until_watching(3);
    let (code, out, err, _) = w.interrupt();
    assert!(
        out.contains("prun: watch: cycle 1: in.txt changed"),
        "{out}"
    );
    assert!(
        out.contains("prun: watch: cycle 2: more.txt changed"),
        "{out}"
    );
    assert_eq!(code, 0, "{out}\n{err}");
}

#[test]
fn an_output_created_in_an_input_directory_is_not_caught_up_on() {
    // The first run creates `a`'s output inside the directory `a` reads: the directory's
    // time changes, none of its inputs does.
    let script = r#"
proc("a", #{ inputs: ["src"], outputs: ["src/gen.txt"],
             shell: "echo a >> runs; cat src/in.txt > src/gen.txt" });
"#;
    let mut w = Watching::start(script, &[("src/in.txt", "1\n")], &["a", "--watch"]);
    w.until_watching(1);
    w.write("src/in.txt", "2\n");
    w.until_watching(2);
    let (code, out, err, _) = w.interrupt();
    assert!(
        out.contains("prun: watch: cycle 1: src/in.txt changed"),
        "{out}"
    );
    assert_eq!(code, 0, "{out}\n{err}");
}

#[test]
fn a_directory_input_behind_a_replaced_link_is_watched_where_the_link_now_leads() {
    // The deploy pattern `current -> releases/vN`: replacing the link is a change, and
    // from then on a change in the new release is one (the watch stayed on the old one,
    // and saw neither).
    let script = r#"
exec(["ln", "-s", "rel/v1", "current"]);
proc("b", #{ inputs: ["current"], outputs: ["out.txt"], shell: "cat current/f > out.txt" });
run("b");
"#;
    let files = [("rel/v1/f", "one\n"), ("rel/v2/f", "two\n")];
    let mut w = Watching::start(script, &files, &["--watch"]);
    w.until_watching(1);
    assert_eq!(w.read("out.txt"), "one\n", "{}", w.shown());
    std::os::unix::fs::symlink("rel/v2", w.path("current.new")).expect("link");
    std::fs::rename(w.path("current.new"), w.path("current")).expect("rename");
    w.until_watching(2);
    assert_eq!(w.read("out.txt"), "two\n", "{}", w.shown());
    w.write("rel/v2/f", "two, edited\n");
    w.until_watching(3);
    assert_eq!(w.read("out.txt"), "two, edited\n", "{}", w.shown());
    w.interrupt();
}

#[test]
fn a_proc_whose_inputs_closure_fails_in_a_cycle_is_still_watched() {
    // The closure failed when the watch was refreshed: the proc had no inputs left, the
    // watch watched nothing ("0 inputs of 0 procs") until Ctrl-C, and fixing the cause
    // re-ran nothing.
    let script = r#"
proc("b", #{
    inputs: |ctx| { if glob("broken").len() > 0 { throw "inputs broke"; } ["in.txt"] },
    shell: "echo ran >> runs",
});
run("b");
"#;
    let mut w = Watching::start(script, &[("in.txt", "1\n")], &["--watch"]);
    w.until_watching(1);
    w.write("broken", "");
    w.write("in.txt", "2\n");
    w.until_watching(2);
    assert!(w.stdout().contains("inputs broke"), "{}", w.shown());
    std::fs::remove_file(w.path("broken")).expect("rm");
    w.write("in.txt", "3\n");
    w.until_watching(3);
    assert_eq!(count(&w.read("runs"), "ran"), 2, "{}", w.shown());
    let (code, ..) = w.interrupt();
    assert_eq!(code, 0);
}

#[test]
fn a_file_input_that_links_elsewhere_is_watched_where_it_leads() {
    // A config file linked from another directory (as GNU stow does): editing the file
    // the link leads to is a change (only the link's own directory was watched).
    let script = r#"
exec(["ln", "-s", "configs/a.txt", "cfg.txt"]);
proc("b", #{ inputs: ["cfg.txt"], outputs: ["out.txt"], shell: "cat cfg.txt > out.txt" });
run("b");
"#;
    let mut w = Watching::start(script, &[("configs/a.txt", "one\n")], &["--watch"]);
    w.until_watching(1);
    w.write("configs/a.txt", "two\n");
    w.until_watching(2);
    assert_eq!(w.read("out.txt"), "two\n", "{}", w.shown());
    w.interrupt();
}

#[test]
fn a_file_an_input_glob_matches_through_a_link_is_watched_where_it_leads() {
    let script = r#"
exec(["ln", "-s", "../dot/a.conf", "cfg/a.conf"]);
proc("b", #{ inputs: ["cfg/*.conf"], outputs: ["out.txt"], shell: "cat cfg/*.conf > out.txt" });
run("b");
"#;
    let files = [("dot/a.conf", "one\n"), ("cfg/.keep", "")];
    let mut w = Watching::start(script, &files, &["--watch"]);
    w.until_watching(1);
    w.write("dot/a.conf", "two\n");
    w.until_watching(2);
    assert_eq!(w.read("out.txt"), "two\n", "{}", w.shown());
    w.interrupt();
}

/// A proc that writes a file its inputs cover (and does not declare it as an output)
/// re-runs itself for ever: the watch says so, naming the file, once.
#[test]
fn a_proc_that_changes_its_own_inputs_is_named_in_a_warning() {
    let script = r#"
proc("a", #{ inputs: ["data"], shell: "date >> data/log.txt" });
"#;
    let mut w = Watching::start(script, &[("data/log.txt", "x\n")], &["a", "--watch"]);
    w.until("the warning", |w| {
        w.stderr()
            .contains("watch: data/log.txt changed right after each of the last 5 cycles")
    });
    let (_, _, err, _) = w.interrupt();
    assert_eq!(err.matches("changed right after each").count(), 1, "{err}");
}

#[test]
fn a_change_of_the_script_itself_is_said_not_to_be_taken() {
    // The script is one of its proc's inputs: a cycle re-runs the proc as the script
    // declared it when prun read it, and the watch says so (once) rather than silently
    // running the old command.
    let script = r#"proc("p", #{ inputs: ["main.rhai"], shell: "echo v1 >> runs" });
run("p");
"#;
    let mut w = Watching::start(script, &[], &["--watch"]);
    w.until_watching(1);
    for (i, text) in ["v2", "v3"].into_iter().enumerate() {
        w.write("main.rhai", &script.replace("v1", text));
        w.until_watching(i + 2);
    }
    let runs = w.read("runs");
    assert_eq!(runs, "v1\nv1\nv1\n", "{runs}");
    let (code, out, err, _) = w.interrupt();
    assert_eq!(code, 0, "{out}{err}");
    let said = format!("{out}{err}");
    assert_eq!(
        said.matches("the script changed: a watch goes on with the script")
            .count(),
        1,
        "{said}"
    );
}

#[test]
fn a_change_of_a_module_the_script_imports_is_said_not_to_be_taken() {
    // The module is an input too: a cycle re-runs the proc with the module's function as
    // prun read it at the start, and the watch says so (once), as for the script itself.
    let module = "fn word() { \"v1\" }\n";
    let script = r#"import "lib" as lib;
proc("p", #{ inputs: ["lib.rhai"] }, || { shell("echo " + lib::word() + " >> runs"); });
run("p");
"#;
    let mut w = Watching::start(script, &[("lib.rhai", module)], &["--watch"]);
    w.until_watching(1);
    for (i, text) in ["v2", "v3"].into_iter().enumerate() {
        w.write("lib.rhai", &module.replace("v1", text));
        w.until_watching(i + 2);
    }
    let runs = w.read("runs");
    assert_eq!(runs, "v1\nv1\nv1\n", "{runs}");
    let (code, out, err, _) = w.interrupt();
    assert_eq!(code, 0, "{out}{err}");
    let said = format!("{out}{err}");
    assert_eq!(
        said.matches(
            "the module lib.rhai changed: a watch goes on with the script and its modules"
        )
        .count(),
        1,
        "{said}"
    );
}

#[test]
fn a_module_the_script_imports_deleted_is_said_not_to_be_taken() {
    // Deleted, the module has no canonical path any more: it is still recognised.
    let script = r#"import "lib" as lib;
proc("p", #{ inputs: ["lib.rhai"] }, || { shell("echo " + lib::word() + " >> runs"); });
run("p");
"#;
    let mut w = Watching::start(
        script,
        &[("lib.rhai", "fn word() { \"v1\" }")],
        &["--watch"],
    );
    w.until_watching(1);
    std::fs::remove_file(w.path("lib.rhai")).expect("rm lib.rhai");
    w.until_watching(2);
    let (code, out, err, _) = w.interrupt();
    assert_eq!(code, 0, "{out}{err}");
    let said = format!("{out}{err}");
    assert!(said.contains("the module lib.rhai changed"), "{said}");
}

#[test]
fn a_change_of_a_file_the_top_level_read_is_said_not_to_be_taken() {
    // The top level read the file into a value its proc uses: a cycle re-runs the proc
    // with the value read at the start, and the watch says so (once). A closure that
    // reads a file (a proc's body, an `inputs` closure) reads it again each time, and is
    // nothing to warn about.
    let script = r#"let word = read_file("word.txt");
proc("p", #{ inputs: ["word.txt"] }, || {
    shell("echo " + word + " " + read_file("word.txt") + " >> runs");
});
proc("q", #{ inputs: || { read_file("list.txt"); ["list.txt"] }, shell: "true" });
run(["p", "q"]);
"#;
    let files = [("word.txt", "v1"), ("list.txt", "a")];
    let mut w = Watching::start(script, &files, &["--watch"]);
    w.until_watching(1);
    w.write("list.txt", "b");
    w.until_watching(2);
    for (i, text) in ["v2", "v3"].into_iter().enumerate() {
        w.write("word.txt", text);
        w.until_watching(i + 3);
    }
    let runs = w.read("runs");
    assert_eq!(runs, "v1 v1\nv1 v2\nv1 v3\n", "{runs}");
    let (code, out, err, _) = w.interrupt();
    assert_eq!(code, 0, "{out}{err}");
    let said = format!("{out}{err}");
    assert_eq!(
        said.matches("word.txt changed: the script read it at its start (read_file)")
            .count(),
        1,
        "{said}"
    );
    assert!(
        !said.contains("list.txt changed: the script read it"),
        "{said}"
    );
}

#[test]
fn an_input_directory_renamed_away_and_made_anew_is_watched_anew() {
    // `mv src src.old; mkdir src`: the kernel's watch of `src` went with the directory to
    // `src.old`; a write to the new `src` afterwards was never seen.
    let script = r#"proc("g", #{ inputs: ["src/*.txt"], shell: "cat src/a.txt >> seen" });
run("g");
"#;
    let files = [("src/a.txt", "1\n"), ("src/sub/b.txt", "1\n")];
    let mut w = Watching::start(script, &files, &["--watch"]);
    w.until_watching(1);
    std::fs::rename(w.path("src"), w.path("src.old")).expect("rename src");
    std::fs::create_dir_all(w.path("src/sub")).expect("mkdir src/sub");
    w.write("src/a.txt", "2\n");
    w.until("the run on the new src", |w| {
        w.read("seen").ends_with("2\n")
    });
    w.write("src/a.txt", "3\n");
    w.until("the run after a write to the new src", |w| {
        w.read("seen").ends_with("3\n")
    });
    // Its cycle began before `g` wrote: once the watch waits again, that cycle ended.
    w.until_idle();
    let (code, out, _, _) = w.interrupt();
    assert_eq!(code, 0, "{out}");
}

#[test]
fn sigterm_while_the_watch_reads_its_inputs_ends_it_without_false_warnings() {
    // The watch calls `inputs` closures to learn what to watch; a SIGTERM then cut the
    // closure's command short, and prun warned that it "failed to resolve the files" of
    // the proc and that "there is nothing to watch" before it ended.
    let out = crate::support::Test::new()
        .file("in.txt", "x")
        .script(
            r#"set_options(#{ watch: true });
defer(|| print("cleanup ran"));
proc("p", #{ inputs: [|ctx| {
    if state("p") == "SUCCEEDED" { shell("touch resolving; exec sleep 30"); }
    "in.txt"
}] }, |ctx| 1);
run("p");
"#,
        )
        .signal_when("resolving", "TERM")
        .run();
    out.ok().out_has("cleanup ran");
    assert!(
        !out.stderr.contains("failed to resolve") && !out.stderr.contains("nothing to watch"),
        "{}",
        out.describe()
    );
}

#[test]
#[cfg_attr(
    prun_no_root,
    ignore = "needs root (to lower the inotify limit in a user namespace)"
)]
fn a_directory_over_the_inotify_limit_is_a_warning_and_the_running_cycle_goes_on() {
    // `gen/` appears, with more directories than the watches left, while `a` runs: prun
    // ended with an error at once, and `a`'s command lived on without it.
    let script = r#"
proc("a", #{ inputs: ["src/a.txt", "gen/**/*.txt"], shell: "echo a >> runs; if [ -e block ]; then touch started; while [ ! -e go ]; do sleep 0.05; done; fi" });
"#;
    let mut w =
        Watching::start_with_watches(script, &[("src/a.txt", "1\n")], &["a", "--watch"], 10);
    w.until_watching(1);
    w.write("block", "");
    w.write("src/a.txt", "2\n");
    w.until("the cycle's `a` to start", |w| w.path("started").exists());
    for i in 0..20 {
        std::fs::create_dir_all(w.path(&format!("staging/d{i}"))).expect("mkdir");
        w.write(&format!("staging/d{i}/x.txt"), "1\n");
    }
    std::fs::rename(w.path("staging"), w.path("gen")).expect("rename");
    // The warning may come first, from a batch of events about `staging` (watching the
    // roots again finds `gen`): `gen`'s own change is the one to wait for.
    w.until("`gen`'s change, seen while `a` runs", |w| {
        w.stdout().contains("changed while it ran")
    });
    w.write("go", "");
    w.until_watching(2);
    let said = w.stderr();
    assert!(
        said.contains("prun: warning: watch: failed to watch ") && said.contains("/gen"),
        "{said}"
    );
    // The watch goes on with what it can watch.
    std::fs::remove_file(w.path("block")).expect("rm block");
    w.write("src/a.txt", "3\n");
    w.until_watching(3);
    let runs = w.read("runs");
    let (code, out, err, _) = w.interrupt();
    assert_eq!(code, 0, "{out}\n{err}");
    // The first run, cycle 1 twice (the files in `gen/` are inputs too), cycle 2.
    assert!(
        out.contains("gen changed while it ran; running again when done: a"),
        "{out}"
    );
    assert!(
        out.contains("prun: watch: cycle 2: src/a.txt changed"),
        "{out}"
    );
    assert_eq!(count(&runs, "a"), 4, "{runs}");
    assert_eq!(
        err.matches("the limit of inotify watches is reached")
            .count(),
        1,
        "warned once for the directory\n{err}"
    );
}

#[test]
fn an_editor_s_swap_lock_and_autosave_files_start_no_cycle() {
    // Opening `src/a.txt` in vim writes `src/.a.txt.swp`, and vim rewrites it every few
    // seconds while one types; emacs makes `.#a.txt` and `#a.txt#`: each started a cycle
    // that re-ran the proc of a directory input, without any save.
    let script = r#"proc("a", #{ inputs: ["src"], shell: "echo a >> runs" });"#;
    let mut w = Watching::start(script, &[("src/a.txt", "1\n")], &["a", "--watch"]);
    w.until_watching(1);
    w.write("src/.a.txt.swp", "swap");
    w.write("src/.a.txt.swp", "swap, later");
    w.write("src/.a.txt.swx", "swap");
    w.write("src/.a.txt.kate-swp", "swap");
    w.write("src/#a.txt#", "autosave");
    std::os::unix::fs::symlink("user@host.1234", w.path("src/.#a.txt")).expect("lock link");
    std::fs::remove_file(w.path("src/.a.txt.swp")).expect("rm swap");
    w.write("src/a.txt", "2\n");
    w.until_watching(2);
    let out = w.stdout();
    assert!(
        out.contains("prun: watch: cycle 1: src/a.txt changed\n"),
        "{out}"
    );
    assert_eq!(count(&w.read("runs"), "a"), 2, "{}", w.read("runs"));
    w.interrupt();
}

/// `n` is a command without inputs or outputs that depends on `r` (no inputs: it runs in
/// every run, so `n` ran unjudged in the first run) and on `x`, whose closure reads its
/// input and ends with `no_change` when it says `same`; each appends its name to `runs`.
const AFTER_NO_CHANGE: &str = r#"
proc("r", #{ shell: "echo r >> runs" });
proc("x", #{ inputs: ["x.txt"] }, |ctx| {
    if read_file("x.txt").contains("same") { throw no_change("same"); }
    append_file("runs", "x\n");
});
proc("n", #{ deps: ["r", "x"], shell: "echo n >> runs" });
proc("m", #{ deps: ["n"], shell: "echo m >> runs" });
"#;

#[test]
fn a_command_that_ran_unjudged_stays_up_to_date_when_its_dependency_says_no_change() {
    let mut w = Watching::start(AFTER_NO_CHANGE, &[("x.txt", "1\n")], &["m", "--watch"]);
    w.until_watching(1);
    // `r` and `x` run side by side: either may write first.
    let first = w.read("runs");
    assert!(
        ["r\nx\nn\nm\n", "x\nr\nn\nm\n"].contains(&first.as_str()),
        "{first}"
    );
    w.write("x.txt", "same\n");
    w.until_watching(2);
    let out = w.stdout();
    assert!(out.contains("UP_TO_DATE n"), "{out}");
    assert!(out.contains("UP_TO_DATE m"), "{out}");
    assert_eq!(w.read("runs"), first, "{out}");
    // A change that makes `x` really run runs them again.
    w.write("x.txt", "2\n");
    w.until_watching(3);
    assert_eq!(
        w.read("runs"),
        format!("{first}x\nn\nm\n"),
        "{}",
        w.stdout()
    );
    let (code, out, _, _) = w.interrupt();
    assert_eq!(code, 0, "{out}");
}

#[test]
fn a_cycle_remakes_first_a_dependency_whose_output_was_deleted() {
    let script = r#"
proc("a", #{ inputs: ["a.txt"], outputs: ["a.out"], shell: "echo a >> runs; cp a.txt a.out" });
proc("z", #{ inputs: ["z.txt"], outputs: ["z.out"], shell: "echo z >> runs; cp z.txt z.out" });
proc("b", #{ deps: ["a", "z"], outputs: ["b.out"], shell: "echo b >> runs; cat a.out z.out > b.out" });
"#;
    let files = [("a.txt", "a1\n"), ("z.txt", "z1\n")];
    let mut w = Watching::start(script, &files, &["b", "--watch"]);
    w.until_watching(1);
    // The deletion alone starts no cycle (an output's change never does): the change of
    // `z.txt` starts the next one, which makes `a.out` again before `b` reads it.
    std::fs::remove_file(w.path("a.out")).expect("rm a.out");
    w.write("z.txt", "z2\n");
    w.until_watching(2);
    let out = w.stdout();
    assert!(out.contains("prun: watch: cycle 1: z.txt changed"), "{out}");
    assert!(out.contains("cycle 1: 3 succeeded"), "{out}");
    assert_eq!(w.read("b.out"), "a1\nz2\n", "{out}");
    let runs = w.read("runs");
    let counts = (count(&runs, "a"), count(&runs, "z"), count(&runs, "b"));
    assert_eq!(counts, (2, 2, 2), "{out}");
    assert!(runs.ends_with("b\n"), "{runs}");
    let (code, out, _, _) = w.interrupt();
    assert_eq!(code, 0, "{out}");
}

/// With `--fail-fast`, a failure ends its cycle: the cycle's other procs are terminated or
/// not started, and the watch goes on. The next cycle runs as any: before, a proc the
/// aborted cycle never started kept the run "busy", and every later cycle ran nothing
/// (`cycle 2: 2 wanted`).
#[test]
fn fail_fast_ends_a_cycle_and_the_next_cycle_runs() {
    // One job at a time: `bad` (declared first) fails before `other` starts.
    let script = r#"
proc("bad", #{ inputs: ["src/in.txt"], shell: "grep -q good src/in.txt" });
proc("other", #{ inputs: ["src/in.txt"], shell: "echo other >> runs" });
"#;
    let args = ["bad", "other", "--watch", "--fail-fast", "-j", "1"];
    let mut w = Watching::start(script, &[("src/in.txt", "good\n")], &args);
    w.until_watching(1);
    w.write("src/in.txt", "bad\n");
    w.until_watching(2);
    let out = w.stdout();
    assert!(
        out.contains("prun: watch: cycle 1: 1 failed, 1 not run in"),
        "{out}"
    );
    assert_eq!(
        w.read("runs"),
        "other\n",
        "other ran in the failed cycle\n{out}"
    );
    w.write("src/in.txt", "good again\n");
    w.until_watching(3);
    let out = w.stdout();
    assert!(
        out.contains("prun: watch: cycle 2: 2 succeeded in"),
        "{out}"
    );
    assert_eq!(w.read("runs"), "other\nother\n", "{out}");
    let (code, out, err, _) = w.interrupt();
    assert_eq!(code, 0, "the last cycle succeeded\n{out}\n{err}");
}

/// `-q` shows only what went wrong: a failed cycle's failures and its line of counts (its
/// summary), which says which cycle failed; a good cycle, and the watching lines, nothing.
/// Before, a failure came with no word of the cycle it belonged to.
#[test]
fn under_q_a_failed_cycle_shows_its_line_and_a_good_one_nothing() {
    let script = r#"
proc("check", #{ inputs: ["src/in.txt"], shell: "echo run >> runs; grep -q good src/in.txt" });
"#;
    let args = ["check", "--watch", "-q"];
    let mut w = Watching::start(script, &[("src/in.txt", "good\n")], &args);
    // The first run read the input; a change from here on is caught up on, if the watch
    // has not begun yet.
    w.until("the first run", |w| w.read("runs").lines().count() == 1);
    w.write("src/in.txt", "bad\n");
    w.until_lines("prun: watch: cycle 1: 1 failed in", 1);
    assert!(w.stdout().contains("FAILED"), "{}", w.shown());
    w.write("src/in.txt", "good again\n");
    w.until("the good cycle", |w| w.read("runs").lines().count() == 3);
    let (_, out, _, _) = w.interrupt();
    assert!(!out.contains("prun: watch: watching"), "{out}");
    assert!(
        !out.contains("cycle 2"),
        "a good cycle printed under -q\n{out}"
    );
}

/// The warning that a change is not taken comes once for each file: once the script's
/// change was warned of, a change of a module it imports is warned of too (before, the
/// first warning silenced every later one, and an edited module seemed taken).
#[test]
fn a_change_not_taken_is_said_once_for_each_file() {
    let module = "fn word() { \"v1\" }\n";
    let script = r#"import "lib" as lib;
proc("p", #{ inputs: ["main.rhai", "lib.rhai"] }, || { shell("echo " + lib::word() + " >> runs"); });
run("p");
"#;
    let mut w = Watching::start(script, &[("lib.rhai", module)], &["--watch"]);
    w.until_watching(1);
    w.write("main.rhai", &format!("{script}// v2\n"));
    w.until_watching(2);
    w.write("lib.rhai", &module.replace("v1", "v2"));
    w.until_watching(3);
    w.write("main.rhai", &format!("{script}// v3\n"));
    w.until_watching(4);
    let (code, out, err, _) = w.interrupt();
    assert_eq!(code, 0, "{out}{err}");
    let said = format!("{out}{err}");
    assert_eq!(said.matches("the script changed: ").count(), 1, "{said}");
    assert_eq!(
        said.matches("the module lib.rhai changed: ").count(),
        1,
        "{said}"
    );
}

/// A proc with no history (a first run) is expected, in a later cycle, to take as long as
/// its last success in this run: the live display shows its expected time (and so the
/// time left). Before, its look-up in the task DB at the first run (nothing) was kept for the
/// whole watch, and no cycle ever had a time left.
#[test]
fn a_cycle_s_live_display_expects_a_proc_to_take_as_long_as_it_did_in_the_run() {
    let script = r#"
proc("slow", #{ inputs: ["src/in.txt"],
    shell: "n=$(cat src/in.txt); touch started.$n; while [ ! -e go.$n ]; do sleep 0.01; done" });
"#;
    let files = [("src/in.txt", "1"), ("go.1", "")];
    let mut w = Watching::start(script, &files, &["slow", "--watch", "--live"]);
    w.until_watching(1);
    w.write("src/in.txt", "2");
    w.until("slow to run on 2", |w| w.path("started.2").exists());
    let expected = |w: &Watching| {
        let out = w.stdout();
        let at = out.find("prun: watch: cycle 1:").unwrap_or(out.len());
        out[at..].contains("slow  ") && out[at..].contains(" / ~")
    };
    w.until("the proc's line to say its expected time", expected);
    w.write("go.2", "");
    w.until_lines("prun: watch: cycle 1: 1 succeeded in", 1);
    let (code, out, err, _) = w.interrupt();
    assert_eq!(code, 0, "{out}\n{err}");
}

/// SIGTERM and SIGHUP end a watch as Ctrl-C does. During a cycle its job's whole process
/// group is ended, a child that ignores SIGTERM too (killed after `kill_grace`), and the
/// status is 1; after a good cycle, 0.
#[test]
fn sigterm_and_sighup_end_a_watch_as_ctrl_c_does_leaving_nothing_running() {
    let script = r#"
set_options(#{ kill_grace: "1s" });
proc("a", #{ inputs: ["src/in.txt"], shell: "if grep -q slow src/in.txt; then (trap '' TERM; exec sleep 1001) & echo $! > bg.pid; echo $$ > job.pid; exec sleep 1002; fi" });
"#;
    let files = [("src/in.txt", "fast\n")];
    for sig in ["TERM", "HUP"] {
        let mut w = Watching::start(script, &files, &["a", "--watch"]);
        w.until_watching(1);
        w.write("src/in.txt", "slow\n");
        w.until("the job and its child to run", |w| {
            !w.read("job.pid").is_empty() && !w.read("bg.pid").is_empty()
        });
        let (code, out, err, dir) = w.signal(sig);
        assert_eq!(code, 1, "SIG{sig} cut the cycle short\n{out}\n{err}");
        assert!(gone(dir.path(), "job.pid"), "SIG{sig}: the job survived");
        assert!(
            gone(dir.path(), "bg.pid"),
            "SIG{sig}: the job's child survived"
        );
    }
    let mut w = Watching::start(script, &files, &["a", "--watch"]);
    w.until_watching(1);
    w.write("src/in.txt", "fast again\n");
    w.until_watching(2);
    let (code, out, err, _) = w.signal("TERM");
    assert_eq!(code, 0, "the last cycle succeeded\n{out}\n{err}");
}

/// A change that comes while `--fail-fast` ends a cycle (its jobs are being terminated)
/// starts the next cycle once that cycle has ended: before, the procs it reset stayed
/// WANTED, counted as `not run`, and the fix the user saved ran only at a later change.
#[test]
fn a_change_while_fail_fast_ends_a_cycle_starts_the_next_cycle() {
    // `slow` runs on the input's word until `release.<word>` exists, even after SIGTERM
    // (`kill_grace` is long); `bad` fails unless the word is good, once `slow` runs.
    let script = r#"
set_options(#{ kill_grace: "60s" });
proc("slow", #{ inputs: ["src/in.txt"],
    shell: "n=$(cat src/in.txt); trap 'touch term.$n' TERM; touch started.$n; while [ ! -e release.$n ]; do sleep 0.01; done" });
proc("bad", #{ inputs: ["src/in.txt"],
    shell: "n=$(cat src/in.txt); while [ ! -e started.$n ]; do sleep 0.01; done; grep -q good src/in.txt" });
"#;
    let files = [
        ("src/in.txt", "good1"),
        ("release.good1", ""),
        ("release.good2", ""),
    ];
    let args = ["slow", "bad", "--watch", "--fail-fast", "-j", "2"];
    let mut w = Watching::start(script, &files, &args);
    w.until_watching(1);
    w.write("src/in.txt", "bad");
    w.until("slow to be told to end", |w| w.path("term.bad").exists());
    w.write("src/in.txt", "good2");
    w.until_lines("changed while it ran", 1);
    w.write("release.bad", "");
    w.until_lines("prun: watch: cycle 2: 2 succeeded in", 1);
    let (code, out, err, _) = w.interrupt();
    assert_eq!(code, 0, "the last cycle succeeded\n{out}\n{err}");
}

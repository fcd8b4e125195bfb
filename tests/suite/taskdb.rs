//! The task DB: run history (`prun history`), incremental runs (UP_TO_DATE, fingerprints,
//! declared outputs), and where the DB lives (`--db`, `--no-db`, `task_db`).
//!
//! These tests run prun several times in the same directory with the same state directory,
//! so they use their own small runner ([`Ws`]) instead of `support::Test`, which makes a
//! fresh directory per run. Modification times are set explicitly with `touch -d`/`touch -r`,
//! never waited for.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long one prun run may take before the test fails.
const RUN_TIMEOUT: Duration = Duration::from_secs(60);

/// A working directory that several prun runs share (and their `XDG_STATE_HOME`).
struct Ws {
    dir: tempfile::TempDir,
}

impl Ws {
    /// A directory with `main.rhai`.
    fn new(script: &str) -> Ws {
        let ws = Ws {
            dir: tempfile::tempdir().expect("tempdir"),
        };
        ws.write("main.rhai", script);
        ws
    }

    fn path(&self, p: &str) -> PathBuf {
        self.dir.path().join(p)
    }

    /// Writes a file (parent directories are created).
    fn write(&self, p: &str, text: &str) {
        let path = self.path(p);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("mkdir");
        }
        std::fs::write(path, text).expect("write file");
    }

    fn exists(&self, p: &str) -> bool {
        self.path(p).exists()
    }

    /// Runs a shell command in the directory (`touch -d ...`, `rm ...`); it must succeed.
    fn sh(&self, cmd: &str) {
        let st = Command::new("sh")
            .args(["-c", cmd])
            .current_dir(self.dir.path())
            .status()
            .expect("spawn sh");
        assert!(st.success(), "`{cmd}` failed: {st}");
    }

    /// `prun main.rhai ARGS...`.
    fn run(&self, args: &[&str]) -> Run {
        let mut words = vec!["main.rhai"];
        words.extend_from_slice(args);
        self.prun(&words)
    }

    /// `prun WORDS...`.
    fn prun(&self, words: &[&str]) -> Run {
        self.spawn(words).finish()
    }

    /// `prun main.rhai` with these environment variables set.
    fn run_env(&self, vars: &[(&str, &str)]) -> Run {
        self.spawn_env(&["main.rhai"], vars).finish()
    }

    /// Starts `prun WORDS...` without waiting for it.
    fn spawn(&self, words: &[&str]) -> Running {
        self.spawn_env(words, &[])
    }

    /// `prun WORDS...` run in the subdirectory `sub` (made if missing).
    fn prun_in(&self, sub: &str, words: &[&str]) -> Run {
        std::fs::create_dir_all(self.path(sub)).expect("mkdir");
        self.spawn_in(&self.path(sub), words, &[]).finish()
    }

    /// Starts `prun WORDS...` with these environment variables set.
    fn spawn_env(&self, words: &[&str], vars: &[(&str, &str)]) -> Running {
        self.spawn_in(self.dir.path(), words, vars)
    }

    /// Starts `prun WORDS...` in `dir` with these environment variables set.
    fn spawn_in(&self, dir: &Path, words: &[&str], vars: &[(&str, &str)]) -> Running {
        let mut child = Command::new(env!("CARGO_BIN_EXE_prun"))
            .args(words)
            .envs(vars.iter().copied())
            .current_dir(dir)
            .env("XDG_STATE_HOME", self.path("state"))
            .env_remove("NO_COLOR")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn prun");
        let out = reader(child.stdout.take().expect("stdout"));
        let err = reader(child.stderr.take().expect("stderr"));
        Running {
            child,
            out,
            err,
            words: words.iter().map(|w| w.to_string()).collect(),
        }
    }

    /// Every `tasks.db` under the state directory (the default DBs).
    fn default_dbs(&self) -> Vec<PathBuf> {
        let root = self.path("state/prun");
        let Ok(entries) = std::fs::read_dir(&root) else {
            return Vec::new();
        };
        let mut dbs: Vec<PathBuf> = entries
            .flatten()
            .map(|e| e.path().join("tasks.db"))
            .filter(|p| p.exists())
            .collect();
        dbs.sort();
        dbs
    }

    /// The default DB of `main.rhai` (which must exist).
    fn main_db(&self) -> PathBuf {
        let dbs: Vec<PathBuf> = self
            .default_dbs()
            .into_iter()
            .filter(|p| {
                let dir = p.parent().and_then(Path::file_name).unwrap_or_default();
                dir.to_string_lossy().starts_with("main-")
            })
            .collect();
        assert_eq!(
            dbs.len(),
            1,
            "expected one default DB of main.rhai: {dbs:?}"
        );
        dbs[0].clone()
    }
}

fn reader(mut r: impl Read + Send + 'static) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = r.read_to_end(&mut buf);
        String::from_utf8_lossy(&buf).into_owned()
    })
}

/// A prun process that was started.
struct Running {
    child: Child,
    out: std::thread::JoinHandle<String>,
    err: std::thread::JoinHandle<String>,
    words: Vec<String>,
}

impl Running {
    /// Waits for it (at most [`RUN_TIMEOUT`]).
    fn finish(mut self) -> Run {
        let started = Instant::now();
        let status = loop {
            if let Some(s) = self.child.try_wait().expect("wait") {
                break s;
            }
            if started.elapsed() > RUN_TIMEOUT {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!(
                    "prun {:?} did not finish within {RUN_TIMEOUT:?}",
                    self.words
                );
            }
            std::thread::sleep(Duration::from_millis(5));
        };
        Run {
            code: status.code(),
            stdout: crate::support::unstamp(&self.out.join().expect("stdout reader")),
            stderr: self.err.join().expect("stderr reader"),
            words: self.words,
        }
    }
}

impl Running {
    /// Kills it with SIGKILL once the job that writes its pid to `pid_file` runs and is
    /// recorded in the crash journal (the next run ends that job); returns the job's pid.
    fn kill_when_running(mut self, ws: &Ws, pid_file: &str) -> u32 {
        let path = ws.path(pid_file);
        let until = Instant::now() + RUN_TIMEOUT;
        let pid = loop {
            if let Some(pid) = std::fs::read_to_string(&path)
                .ok()
                .and_then(|t| t.trim().parse().ok())
            {
                break pid;
            }
            assert!(Instant::now() < until, "the job never wrote {pid_file}");
            std::thread::sleep(Duration::from_millis(5));
        };
        crate::support::wait_recorded(&ws.path("state"), self.child.id(), pid);
        self.child.kill().expect("kill prun");
        self.child.wait().expect("wait for prun");
        std::fs::remove_file(path).expect("rm pid file");
        pid
    }
}

/// What one prun run printed.
struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
    words: Vec<String>,
}

impl Run {
    fn describe(&self) -> String {
        format!(
            "prun {:?} exited with {:?}\n--- stdout\n{}\n--- stderr\n{}",
            self.words, self.code, self.stdout, self.stderr
        )
    }

    fn code(&self, code: i32) -> &Self {
        assert_eq!(self.code, Some(code), "exit status\n{}", self.describe());
        self
    }

    fn ok(&self) -> &Self {
        self.code(0)
    }

    /// stdout and stderr together (where a warning goes is not pinned down).
    fn all(&self) -> String {
        format!("{}\n{}", self.stdout, self.stderr)
    }

    /// stdout or stderr contains `s`.
    fn says(&self, s: &str) -> &Self {
        assert!(self.all().contains(s), "no {s:?} in\n{}", self.describe());
        self
    }

    /// Neither stdout nor stderr contains `s`.
    fn never_says(&self, s: &str) -> &Self {
        assert!(!self.all().contains(s), "{s:?} in\n{}", self.describe());
        self
    }

    /// Some stdout line is exactly `line`.
    fn line(&self, line: &str) -> &Self {
        assert!(
            self.stdout.lines().any(|l| l == line),
            "no stdout line {line:?}\n{}",
            self.describe()
        );
        self
    }

    /// The report lines (`STATE      name ...`) as (state, name, whole line).
    fn reports(&self) -> Vec<(&str, &str, &str)> {
        self.stdout
            .lines()
            .filter_map(|l| {
                let (state, rest) = (l.get(..10)?, l.get(10..)?);
                let rest = rest.strip_prefix(' ')?;
                let state = state.trim_end();
                // STARTED lines announce a proc; the report is the line of its end.
                let is_state = !state.is_empty()
                    && state != "STARTED"
                    && state.chars().all(|c| c.is_ascii_uppercase() || c == '_');
                let name = rest.split([' ', ':']).next()?;
                (is_state && !name.is_empty()).then_some((state, name, l))
            })
            .collect()
    }

    /// The one report line of `name`, asserting its state.
    fn report(&self, state: &str, name: &str) -> String {
        let hits: Vec<_> = self
            .reports()
            .into_iter()
            .filter(|(_, n, _)| *n == name)
            .collect();
        assert!(
            hits.len() == 1 && hits[0].0 == state,
            "expected one report line `{state} {name}`, found {hits:?}\n{}",
            self.describe()
        );
        hits[0].2.to_string()
    }

    fn state(&self, state: &str, name: &str) -> &Self {
        self.report(state, name);
        self
    }

    /// Each of `names` really ran (SUCCEEDED).
    fn ran(&self, names: &[&str]) -> &Self {
        for n in names {
            self.state("SUCCEEDED", n);
        }
        self
    }

    /// Each of `names` was UP_TO_DATE (a line of its own, without a duration).
    fn up_to_date(&self, names: &[&str]) -> &Self {
        for n in names {
            self.state("UP_TO_DATE", n);
            self.line(&format!("UP_TO_DATE {n}"));
        }
        self
    }

    /// Exactly `fresh` of `all` ran; the others were UP_TO_DATE.
    fn only_ran(&self, all: &[&str], fresh: &[&str]) -> &Self {
        for n in all {
            if fresh.contains(n) {
                self.ran(&[n]);
            } else {
                self.up_to_date(&[n]);
            }
        }
        self
    }

    /// The summary without the wall time.
    fn summary_is(&self, want: &str) -> &Self {
        let last = self.stdout.lines().last().unwrap_or("");
        let got = last.rsplit_once(" in ").map_or(last, |(s, _)| s);
        assert_eq!(got, want, "summary\n{}", self.describe());
        self
    }

    /// How many report lines are in `state`.
    fn count(&self, state: &str) -> usize {
        self.reports()
            .iter()
            .filter(|(s, _, _)| *s == state)
            .count()
    }
}

// ---------------------------------------------------------------------------------------
// Incremental runs
// ---------------------------------------------------------------------------------------

#[test]
fn second_run_is_up_to_date_and_dependents_see_the_cached_result() {
    let ws = Ws::new(
        r#"
proc("make", #{ inputs: ["in.txt"] }, |ctx| {
    shell("echo ran >> make.count");
    #{ n: 41, s: "text", list: [1, 2] }
});
proc("mid", #{ deps: ["make"] }, |ctx| { #{ plus: ctx.results.make.n + 1 } });
proc("show", #{ deps: ["make", "mid"], no_skip: true }, |ctx| {
    let m = ctx.results.make;
    print(`show: n=${m.n} s=${m.s} list=${m.list} type=${type_of(m.n)} plus=${ctx.results.mid.plus}`);
});
proc("always", |ctx| { shell("echo ran >> always.count"); 1 });
proc("only_outputs", #{ outputs: ["o.txt"], shell: "echo x > o.txt; echo ran >> only_outputs.count" });
run(["show", "always", "only_outputs"]);
print(`top: ${wait("make").n}`);
"#,
    );
    ws.write("in.txt", "input\n");
    let want = "show: n=41 s=text list=[1, 2] type=i64 plus=42";
    ws.run(&[])
        .ok()
        .ran(&["make", "mid", "show", "always", "only_outputs"])
        .line(want)
        .line("top: 41")
        .summary_is("prun: 5 succeeded");
    let second = ws.run(&[]);
    second
        .ok()
        .up_to_date(&["make", "mid"])
        // The cached results (a map, an integer in it) reach dependents and `wait`.
        .line(want)
        .line("top: 41")
        // Neither dependencies nor inputs: always runs, even with outputs declared.
        .ran(&["show", "always", "only_outputs"])
        .summary_is("prun: 3 succeeded, 2 up to date");
    assert_eq!(
        std::fs::read_to_string(ws.path("make.count")).unwrap(),
        "ran\n"
    );
    assert_eq!(
        std::fs::read_to_string(ws.path("always.count")).unwrap(),
        "ran\nran\n"
    );
    assert_eq!(
        std::fs::read_to_string(ws.path("only_outputs.count")).unwrap(),
        "ran\nran\n"
    );
}

/// The script of [`each_change_reruns_exactly_the_procs_it_affects`]: `COMMENT` is a line
/// above each proc, `BODY` the value `edited` returns, `CMD` the shell of `made`, `LEVEL`
/// the params.
const CHANGES: &str = r#"
set_params(#{ level: LEVEL });
COMMENT
proc("mtime", #{ inputs: ["m.txt"] }, |ctx| { "m" });
COMMENT
proc("size", #{ inputs: ["s.txt"] }, |ctx| { "s" });
COMMENT
proc("globbed", #{ inputs: ["g/*.txt"] }, |ctx| { "g" });
COMMENT
proc("made", #{ inputs: ["o.in"], outputs: ["o.out"], shell: "CMD" });
COMMENT
proc("aged", #{ inputs: ["a.in"], outputs: [#{ file: "a.out", max_age: "1h" }], shell: "touch a.out" });
COMMENT
proc("up", #{ inputs: ["u.txt"] }, |ctx| { "u" });
COMMENT
proc("down", #{ deps: ["up"] }, |ctx| { `down of ${ctx.results.up}` });
COMMENT
proc("forced", #{ inputs: ["f.txt"], no_skip: true }, |ctx| { "f" });
COMMENT
proc("edited", #{ inputs: ["e.txt"] }, |ctx| {
    let v = "BODY";
    v
});
run(["mtime", "size", "globbed", "made", "aged", "up", "down", "forced", "edited"]);
"#;

fn changes_script(comment: &str, body: &str, cmd: &str, level: i64) -> String {
    CHANGES
        .replace("COMMENT", comment)
        .replace("BODY", body)
        .replace("CMD", cmd)
        .replace("LEVEL", &level.to_string())
}

fn mtime(path: &Path) -> std::time::SystemTime {
    std::fs::metadata(path)
        .and_then(|m| m.modified())
        .unwrap_or_else(|e| panic!("stat {}: {e}", path.display()))
}

#[test]
fn each_change_reruns_exactly_the_procs_it_affects() {
    const ALL: &[&str] = &[
        "mtime", "size", "globbed", "made", "aged", "up", "down", "forced", "edited",
    ];
    let ws = Ws::new(&changes_script("", "v1", "cp o.in o.out", 1));
    for f in [
        "m.txt", "s.txt", "g/a.txt", "g/b.txt", "o.in", "a.in", "u.txt", "f.txt", "e.txt",
    ] {
        ws.write(f, "data\n");
    }
    ws.run(&[]).ok().ran(ALL).summary_is("prun: 9 succeeded");
    ws.run(&[])
        .ok()
        .only_ran(ALL, &["forced"])
        .summary_is("prun: 1 succeeded, 8 up to date");

    // An input's modification time.
    ws.sh("touch -d @981173106 m.txt");
    ws.run(&[]).ok().only_ran(ALL, &["mtime", "forced"]);
    ws.run(&[]).ok().only_ran(ALL, &["forced"]);

    // An input's size, with its modification time put back.
    let before = mtime(&ws.path("s.txt"));
    ws.sh("touch -r s.txt s.ref && printf more >> s.txt && touch -r s.ref s.txt");
    assert_eq!(
        mtime(&ws.path("s.txt")),
        before,
        "touch -r did not restore the mtime"
    );
    ws.run(&[]).ok().only_ran(ALL, &["size", "forced"]);

    // A file added to, then one removed from, what a glob matches.
    ws.write("g/c.txt", "new\n");
    ws.run(&[]).ok().only_ran(ALL, &["globbed", "forced"]);
    ws.sh("rm g/a.txt");
    ws.run(&[]).ok().only_ran(ALL, &["globbed", "forced"]);
    // A file next to the glob's matches that it does not match changes nothing.
    ws.write("g/other.dat", "x\n");
    ws.run(&[]).ok().only_ran(ALL, &["forced"]);

    // A deleted output: the proc runs and makes it again.
    ws.sh("rm o.out");
    ws.run(&[]).ok().only_ran(ALL, &["made", "forced"]);
    assert!(ws.exists("o.out"));

    // An output older than its max_age.
    ws.sh("touch -d '2 hours ago' a.out");
    ws.run(&[]).ok().only_ran(ALL, &["aged", "forced"]);
    let age = std::time::SystemTime::now()
        .duration_since(mtime(&ws.path("a.out")))
        .unwrap_or_default();
    assert!(
        age < Duration::from_secs(3600),
        "a.out not refreshed: {age:?}"
    );
    ws.run(&[]).ok().only_ran(ALL, &["forced"]);

    // A dependency that ran makes its dependent run.
    ws.sh("touch -d @981173106 u.txt");
    ws.run(&[]).ok().only_ran(ALL, &["up", "down", "forced"]);

    // --full runs everything; the results it saves are then up to date.
    ws.run(&["--full"])
        .ok()
        .ran(ALL)
        .summary_is("prun: 9 succeeded");
    ws.run(&[]).ok().only_ran(ALL, &["forced"]);

    // Comment lines above every proc and an unrelated statement: nothing changes.
    ws.write(
        "main.rhai",
        &format!(
            "let unrelated = 42;\n{}",
            changes_script("// a comment\n// and another", "v1", "cp o.in o.out", 1)
        ),
    );
    ws.run(&[])
        .ok()
        .only_ran(ALL, &["forced"])
        .summary_is("prun: 1 succeeded, 8 up to date");

    // Editing a closure's body and a command re-runs those two only.
    ws.write(
        "main.rhai",
        &changes_script("// a comment", "v2", "cp o.in o.out && true", 1),
    );
    ws.run(&[])
        .ok()
        .only_ran(ALL, &["edited", "made", "forced"]);
    ws.run(&[]).ok().only_ran(ALL, &["forced"]);

    // Other params: every proc sees them, so every proc runs.
    ws.write(
        "main.rhai",
        &changes_script("// a comment", "v2", "cp o.in o.out && true", 2),
    );
    ws.run(&[]).ok().ran(ALL);
    ws.run(&[]).ok().only_ran(ALL, &["forced"]);
}

/// Procs declared in loops alike but for their commands (`W1` is the word of `c1` and `s1`).
const OWN_COMMANDS: &str = r#"
for i in 0..3 {
    let word = if i == 1 { "W1" } else { `${i}` };
    proc(`c${i}`, #{ inputs: ["in.txt"], cmd: ["sh", "-c", `echo ${word} >> c${i}.out`, "x"] });
}
for i in 0..3 {
    let word = if i == 1 { "W1" } else { `${i}` };
    proc(`s${i}`, #{ inputs: ["in.txt"], shell: `echo ${word} >> s${i}.out` });
}
run(["c*", "s*"]);
"#;

#[test]
fn procs_declared_alike_but_for_their_commands_each_run_and_cache_their_own() {
    const ALL: &[&str] = &["c0", "c1", "c2", "s0", "s1", "s2"];
    let ws = Ws::new(&OWN_COMMANDS.replace("W1", "1"));
    ws.write("in.txt", "x\n");
    ws.run(&["--dry-run"])
        .ok()
        .line("WOULD RUN  c1: sh -c 'echo 1 >> c1.out' x")
        .line("WOULD RUN  s2: echo 2 >> s2.out");
    ws.run(&[]).ok().ran(ALL);
    let outs = |word: &str| {
        for p in ["c", "s"] {
            for (i, want) in [(0, "0\n"), (1, word), (2, "2\n")] {
                let got = std::fs::read_to_string(ws.path(&format!("{p}{i}.out"))).unwrap();
                assert_eq!(got, want, "{p}{i}.out");
            }
        }
    };
    outs("1\n");
    ws.run(&[]).ok().only_ran(ALL, &[]);
    // Another command for c1 and s1 only: each is told apart from its neighbours'.
    ws.write("main.rhai", &OWN_COMMANDS.replace("W1", "one"));
    ws.run(&[]).ok().only_ran(ALL, &["c1", "s1"]);
    outs("1\none\n");
    ws.run(&[]).ok().only_ran(ALL, &[]);
}

#[test]
fn missing_and_stale_outputs_fail_the_proc() {
    let ws = Ws::new(
        r#"
proc("missing", #{ outputs: ["never1.txt", "sub/never2.txt", "made.txt"], shell: "touch made.txt" });
proc("after", #{ deps: ["missing"] }, |ctx| 1);
proc("stale", #{ outputs: [#{ file: "old.txt", max_age: "1h" }], shell: "touch -d '2 hours ago' old.txt" });
proc("lenient", #{ outputs: [#{ file: "old2.txt", max_age: "1h", enforce_freshness: false }],
                   shell: "touch -d '2 hours ago' old2.txt" });
proc("fresh", #{ outputs: [#{ file: "new.txt", max_age: "1h" }], shell: "touch new.txt" });
run(["after", "stale", "lenient", "fresh"]);
"#,
    );
    let out = ws.run(&[]);
    out.code(1)
        .state("FAILED_DEP", "after")
        .ran(&["lenient", "fresh"])
        .summary_is("prun: 2 succeeded, 2 failed, 1 not run (failed dependency)");
    out.report("FAILED", "missing");
    // Each missing output is named on a line of its own; the one made is not named.
    let lines: Vec<&str> = out.stdout.lines().collect();
    let line_of = |what: &str| {
        let hits: Vec<usize> = (0..lines.len())
            .filter(|&i| lines[i].contains(what))
            .collect();
        assert_eq!(hits.len(), 1, "{what} on one line\n{}", out.describe());
        hits[0]
    };
    let (a, b) = (line_of("never1.txt"), line_of("sub/never2.txt"));
    assert_ne!(a, b, "both outputs on one line\n{}", out.describe());
    assert!(!out.stdout.contains("made.txt"), "{}", out.describe());
    let stale = out.report("FAILED", "stale");
    let stale_error = &out.stdout[out.stdout.find(&stale).unwrap()..];
    assert!(
        stale_error.contains("old.txt") && stale_error.contains("max_age"),
        "{}",
        out.describe()
    );
}

#[test]
fn an_output_stale_by_less_than_a_second_says_how_old_it_is() {
    // The age was cut to whole seconds: "older than max_age 100ms: 0s old".
    let ws = Ws::new(
        r#"
proc("stale", #{ outputs: [#{ file: "old.txt", max_age: "100ms" }],
    shell: "touch -d @$(date +%s.%N | awk '{ printf \"%.3f\", $1 - 0.5 }') old.txt" });
run("stale");
"#,
    );
    let out = ws.run(&[]);
    out.code(1);
    assert!(
        out.stdout.contains("old.txt (older than max_age 100ms: ")
            && !out.stdout.contains(": 0s old"),
        "{}",
        out.describe()
    );
}

#[test]
fn a_failed_run_is_not_up_to_date_next_time_even_without_changes() {
    // `check` fails while fail.flag exists; the flag is not one of its inputs.
    let ws = Ws::new(
        r#"
proc("check", #{ inputs: ["in.txt"], shell: "test ! -e fail.flag" });
run("check");
"#,
    );
    ws.write("in.txt", "x\n");
    ws.run(&[]).ok().ran(&["check"]);
    ws.run(&[]).ok().up_to_date(&["check"]);

    // The input changes and the run fails; then the input is put back exactly as it was
    // when the cached result was made.
    ws.sh("touch -r in.txt in.ref && touch -d @981173106 in.txt && touch fail.flag");
    ws.run(&[]).code(1).state("FAILED", "check");
    ws.sh("rm fail.flag && touch -r in.ref in.txt");
    ws.run(&[]).ok().ran(&["check"]);
    ws.run(&[]).ok().up_to_date(&["check"]);

    // The same with --full: the failure forgets the result, nothing else changed.
    ws.sh("touch fail.flag");
    ws.run(&["--full"]).code(1).state("FAILED", "check");
    ws.sh("rm fail.flag");
    ws.run(&[]).ok().ran(&["check"]);
    ws.run(&[]).ok().up_to_date(&["check"]);
}

#[test]
fn a_dependent_that_failed_after_its_dependency_changed_runs_again() {
    // parproc's stale-result bug: b changed and ran, d failed; next time (nothing changed)
    // b is up to date, and d must run rather than reuse its result from before.
    let ws = Ws::new(
        r#"
proc("b", #{ inputs: ["b.txt"] }, |ctx| "b");
proc("d", #{ deps: ["b"], shell: "test ! -e d.flag" });
run("d");
"#,
    );
    ws.write("b.txt", "x\n");
    ws.run(&[]).ok().ran(&["b", "d"]);
    ws.run(&[]).ok().up_to_date(&["b", "d"]);
    ws.sh("touch -d @981173106 b.txt && touch d.flag");
    ws.run(&[]).code(1).ran(&["b"]).state("FAILED", "d");
    ws.sh("rm d.flag");
    ws.run(&[]).ok().up_to_date(&["b"]).ran(&["d"]);
    ws.run(&[]).ok().up_to_date(&["b", "d"]);
}

#[test]
fn a_result_the_db_cannot_store_fails_the_proc() {
    let ws = Ws::new(
        r#"
proc("src", #{ inputs: ["x.txt"] }, |ctx| 1);
proc("closure", #{ deps: ["src"] }, |ctx| { |x| x + 1 });
proc("plain", #{ deps: ["src"] }, |ctx| #{ ok: true, list: [1, "a", ()] });
run(["closure", "plain"]);
"#,
    );
    ws.write("x.txt", "x\n");
    let first = ws.run(&[]);
    first.code(1).ran(&["src", "plain"]);
    let line = first.report("FAILED", "closure");
    assert!(line.contains("cannot be stored"), "{}", first.describe());
    // Nothing was cached for it: it runs (and fails) again.
    let second = ws.run(&[]);
    second.code(1).up_to_date(&["src", "plain"]);
    second.report("FAILED", "closure");
}

#[test]
fn ctx_tells_which_dependencies_changed_and_the_input_fingerprint() {
    let ws = Ws::new(
        r#"
proc("one", #{ inputs: ["a.txt"] }, |ctx| 1);
proc("two", #{ inputs: ["b.txt"] }, |ctx| 2);
proc("user", #{ deps: ["one", "two"], inputs: ["c.txt", "absent.txt"], no_skip: true }, |ctx| {
    print(`changed=${ctx.deps_changed} list=${ctx.changed_deps}`);
    let fp = ctx.input_fingerprint;
    print(`entries=${fp.len()}`);
    for k in fp.keys() { print(`fp ${k} = ${fp[k]} ${type_of(fp[k])}`); }
});
proc("plain", #{ deps: ["one"], no_skip: true }, |ctx| { print(`plain fp=${type_of(ctx.input_fingerprint)}`); });
run(["user", "plain"]);
"#,
    );
    ws.write("a.txt", "a\n");
    ws.write("b.txt", "b\n");
    ws.write("c.txt", "c\n");
    ws.sh("touch -d @981173106.123456789 c.txt");
    let fp_line = |run: &Run| {
        let hits: Vec<String> = run
            .stdout
            .lines()
            .filter(|l| l.starts_with("fp "))
            .map(String::from)
            .collect();
        assert_eq!(hits.len(), 1, "{}", run.describe());
        let (key, value) = hits[0]["fp ".len()..].split_once(" = ").unwrap();
        assert!(
            key == "c.txt" || key.ends_with("/c.txt"),
            "{}",
            run.describe()
        );
        assert_eq!(value, "981173106123456789 i64", "{}", run.describe());
    };

    let first = ws.run(&[]);
    first
        .ok()
        .line(r#"changed=true list=["one", "two"]"#)
        .line("entries=1")
        .line("plain fp=()");
    fp_line(&first);

    let second = ws.run(&[]);
    second
        .ok()
        .up_to_date(&["one", "two"])
        .line("changed=false list=[]");
    fp_line(&second);

    ws.sh("touch -d @981173107 b.txt");
    let third = ws.run(&[]);
    third
        .ok()
        .up_to_date(&["one"])
        .ran(&["two"])
        .line(r#"changed=true list=["two"]"#);
    fp_line(&third);
}

#[test]
fn two_runs_at_once_share_the_db() {
    let ws = Ws::new(
        r#"
let names = [];
for i in 0..50 {
    proc(`p${i}`, #{ inputs: [`in/${i}.txt`], shell: `echo p${i}` });
    names.push(`p${i}`);
}
run(names);
"#,
    );
    for i in 0..50 {
        ws.write(&format!("in/{i}.txt"), &format!("{i}\n"));
    }
    let a = ws.spawn(&["main.rhai"]);
    let b = ws.spawn(&["main.rhai"]);
    let (a, b) = (a.finish(), b.finish());
    let mut ran = 0;
    for r in [&a, &b] {
        r.ok().never_says("warning");
        assert_eq!(
            r.count("SUCCEEDED") + r.count("UP_TO_DATE"),
            50,
            "{}",
            r.describe()
        );
        ran += r.count("SUCCEEDED");
    }

    let history = ws.prun(&["history", "main.rhai"]);
    history.ok();
    let rows = history_rows(&history);
    assert_eq!(rows.len(), 2, "{}", history.describe());
    assert!(
        rows.iter().all(|r| r.contains(" ok ")),
        "{}",
        history.describe()
    );

    // Every proc that ran in either run is in the history.
    let conn = rusqlite::Connection::open(ws.main_db()).unwrap();
    let recorded: i64 = conn
        .query_row("SELECT COUNT(*) FROM proc_runs", [], |r| r.get(0))
        .unwrap();
    assert_eq!(recorded, ran as i64);
    drop(conn);

    ws.run(&[])
        .ok()
        .summary_is("prun: 0 succeeded, 50 up to date");
}

/// Two runs of one script at once (no `--lock`) that both ran a proc with declared outputs
/// keep no cached result of it: both wrote its outputs (here, each appended its line), and
/// the row saved last was taken as UP_TO_DATE beside a file that no run alone makes. A
/// proc without outputs keeps its result, which either run made right.
#[test]
fn a_proc_with_outputs_two_overlapping_runs_both_ran_keeps_no_cached_result() {
    let ws = Ws::new(
        r#"
proc("w", #{ inputs: ["in.txt"], outputs: ["out.txt"], shell: "if [ -f hold ]; then mkfifo go.$$; echo $$ >> started; read x < go.$$; fi; cat in.txt >> out.txt" });
proc("v", #{ inputs: ["in.txt"] }, |ctx| 1);
run(["w", "v"]);
"#,
    );
    ws.write("in.txt", "x\n");
    ws.sh("touch -d @981173106 in.txt hold");
    // The pid of the `w` job of the `n`th run (1 or 2), once it waits on its fifo.
    let started = |n: usize| -> String {
        let until = Instant::now() + RUN_TIMEOUT;
        loop {
            let text = std::fs::read_to_string(ws.path("started")).unwrap_or_default();
            if let Some(pid) = text.lines().nth(n - 1) {
                return pid.to_string();
            }
            assert!(Instant::now() < until, "no run {n} of `w` started");
            std::thread::sleep(Duration::from_millis(5));
        }
    };
    let go = |pid: &str| std::fs::write(ws.path(&format!("go.{pid}")), "\n").expect("go");
    let first = ws.spawn(&["main.rhai"]);
    let a = started(1);
    let second = ws.spawn(&["main.rhai"]);
    let b = started(2);
    go(&a);
    first.finish().ok();
    go(&b);
    second.finish().ok();
    assert_eq!(
        std::fs::read_to_string(ws.path("out.txt")).unwrap(),
        "x\nx\n"
    );
    ws.sh("rm hold go.* started");
    ws.run(&[]).ok().ran(&["w"]).up_to_date(&["v"]);
}

// ---------------------------------------------------------------------------------------
// Where the DB is
// ---------------------------------------------------------------------------------------

const SIMPLE: &str = r#"
proc("p", #{ inputs: ["in.txt"] }, |ctx| "p");
run("p");
"#;

#[test]
fn the_default_db_is_one_per_script() {
    let ws = Ws::new(SIMPLE);
    ws.write("other.rhai", SIMPLE);
    ws.write("in.txt", "x\n");
    ws.run(&[]).ok().ran(&["p"]);
    assert_eq!(ws.default_dbs().len(), 1);
    ws.main_db();
    // Same procs, same inputs, another script: its own DB, so nothing is cached.
    ws.prun(&["other.rhai"]).ok().ran(&["p"]);
    assert_eq!(ws.default_dbs().len(), 2);
    ws.prun(&["other.rhai"]).ok().up_to_date(&["p"]);
    ws.run(&[]).ok().up_to_date(&["p"]);
}

#[test]
fn a_corrupt_db_is_moved_aside_and_replaced() {
    let ws = Ws::new(SIMPLE);
    ws.write("in.txt", "x\n");
    ws.write("dbs/x.db", &"this is not an SQLite file\n".repeat(400));
    ws.run(&["--db", "dbs/x.db"])
        .ok()
        .says("corrupt")
        .ran(&["p"]);
    let aside: Vec<String> = std::fs::read_dir(ws.path("dbs"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("x.corrupt-"))
        .collect();
    assert_eq!(aside.len(), 1, "{aside:?}");
    assert!(
        std::fs::read_to_string(ws.path("dbs").join(&aside[0]))
            .unwrap()
            .starts_with("this is not an SQLite file")
    );
    // The new DB works.
    ws.run(&["--db", "dbs/x.db"])
        .ok()
        .never_says("corrupt")
        .never_says("warning")
        .up_to_date(&["p"]);
    assert!(ws.default_dbs().is_empty());
}

/// An input and an output dated after 2262, past what a count of nanoseconds since 1970
/// holds (or before 1677), are fingerprinted: the run panicked on the multiplication.
/// Rewriting the input with the same size and date still runs the proc again.
#[test]
fn inputs_and_outputs_dated_beyond_the_nanosecond_range_are_fingerprinted() {
    let ws = Ws::new(
        r#"
proc("p", #{ inputs: ["in.txt", "old.txt"], outputs: ["out.txt"],
             shell: "cat in.txt >> out.txt && touch -d 2300-01-01 out.txt" });
run("p");
"#,
    );
    ws.write("in.txt", "a\n");
    ws.write("old.txt", "o\n");
    ws.sh("touch -d 2300-01-01 in.txt && touch -d 1600-01-01 old.txt");
    ws.run(&[]).ok().never_says("panicked").ran(&["p"]);
    ws.run(&[]).ok().up_to_date(&["p"]);
    ws.sh("printf 'b\\n' > in.txt && touch -d 2300-01-01 in.txt");
    ws.run(&[]).ok().ran(&["p"]);
    assert_eq!(
        std::fs::read_to_string(ws.path("out.txt")).expect("read out.txt"),
        "a\nb\n"
    );
}

/// Durations in the task DB that no run takes (negative, NaN, past what a `Duration`
/// holds, or two that overflow it added up) are no expected durations: the live display,
/// which reads them, panicked on each.
#[test]
fn durations_in_the_db_that_no_run_takes_are_no_expected_durations() {
    let ws = Ws::new(
        r#"
for n in ["neg", "nan", "huge", "long1", "long2"] { proc(n, #{ no_skip: true, cmd: ["true"] }); }
run(["neg", "nan", "huge", "long1", "long2"]);
"#,
    );
    ws.run(&["--db", "x.db", "--no-live"]).ok();
    let conn = rusqlite::Connection::open(ws.path("x.db")).expect("open the task DB");
    for (name, duration) in [
        ("neg", "-1"),
        ("nan", "'NaN'"),
        ("huge", "1e300"),
        ("long1", "1e19"),
        ("long2", "1e19"),
    ] {
        conn.execute(
            &format!("UPDATE proc_runs SET duration = {duration} WHERE name = ?1"),
            [name],
        )
        .expect("set a duration");
    }
    drop(conn);
    ws.run(&["--db", "x.db", "--live"])
        .ok()
        .never_says("internal error")
        .never_says("panicked");
}

/// A schema version below zero, which no prun writes, is a corrupt DB: `prun history`
/// names it and leaves it, a run names it and moves it aside. Both panicked on the
/// migrations to apply.
#[test]
fn a_db_of_a_negative_schema_version_is_corrupt() {
    let ws = Ws::new(SIMPLE);
    ws.write("in.txt", "x\n");
    ws.run(&["--db", "x.db"]).ok().ran(&["p"]);
    let conn = rusqlite::Connection::open(ws.path("x.db")).expect("open the task DB");
    conn.pragma_update(None, "user_version", -1)
        .expect("set the version");
    drop(conn);
    let bad = std::fs::read(ws.path("x.db")).expect("read the task DB");
    ws.prun(&["history", "main.rhai", "--db", "x.db"])
        .code(2)
        .says("schema version -1, which no prun writes")
        .never_says("moved it to");
    assert_eq!(
        std::fs::read(ws.path("x.db")).expect("read the task DB"),
        bad
    );
    ws.run(&["--db", "x.db"])
        .ok()
        .says("schema version -1, which no prun writes")
        .says("moved it to")
        .never_says("panicked")
        .ran(&["p"]);
    let aside: Vec<PathBuf> = std::fs::read_dir(ws.dir.path())
        .expect("list the directory")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.to_string_lossy().contains("x.corrupt-"))
        .collect();
    assert_eq!(aside.len(), 1, "{aside:?}");
    assert_eq!(
        std::fs::read(&aside[0]).expect("read the DB moved aside"),
        bad
    );
    ws.run(&["--db", "x.db"])
        .ok()
        .never_says("warning")
        .up_to_date(&["p"]);
    ws.prun(&["history", "main.rhai", "--db", "x.db"]).ok();
}

#[test]
fn an_unusable_db_location_is_a_warning_and_the_run_goes_on() {
    let ws = Ws::new(SIMPLE);
    ws.write("in.txt", "x\n");
    for _ in 0..2 {
        ws.run(&["--db", "/proc/nonexistent/x.db"])
            .ok()
            .says("warning")
            .ran(&["p"])
            .summary_is("prun: 1 succeeded");
    }
    assert!(ws.default_dbs().is_empty());
}

#[test]
fn no_db_caches_nothing_and_records_nothing() {
    let ws = Ws::new(SIMPLE);
    ws.write("in.txt", "x\n");
    ws.run(&["--no-db"]).ok().ran(&["p"]);
    ws.run(&["--no-db"]).ok().ran(&["p"]);
    assert!(ws.default_dbs().is_empty());
    ws.prun(&["history", "main.rhai"]).code(64);
    // Flags before the script path work too.
    ws.prun(&["--no-db", "main.rhai"]).ok().ran(&["p"]);
    assert!(ws.default_dbs().is_empty());
}

const CUSTOM: &str = r#"
set_options(#{ task_db: "custom.db" });
proc("p", #{ inputs: ["in.txt"] }, |ctx| "p");
run("p");
"#;

#[test]
fn task_db_option_and_the_command_line_that_overrides_it() {
    let ws = Ws::new(CUSTOM);
    ws.write("in.txt", "x\n");
    ws.run(&[]).ok().ran(&["p"]);
    assert!(ws.exists("custom.db"));
    assert!(ws.default_dbs().is_empty());
    ws.run(&[]).ok().up_to_date(&["p"]);

    // --db wins over the script's task_db.
    let ws = Ws::new(CUSTOM);
    ws.write("in.txt", "x\n");
    ws.run(&["--db", "cli.db"]).ok().ran(&["p"]);
    assert!(ws.exists("cli.db"));
    assert!(!ws.exists("custom.db"));
    ws.run(&["--db", "cli.db"]).ok().up_to_date(&["p"]);
    // So does --no-db.
    ws.run(&["--no-db"]).ok().ran(&["p"]);
    ws.run(&["--no-db"]).ok().ran(&["p"]);
    assert!(!ws.exists("custom.db"));
    assert!(ws.default_dbs().is_empty());
}

// ---------------------------------------------------------------------------------------
// History
// ---------------------------------------------------------------------------------------

/// The run rows of `prun history` (between the header and the blank line).
fn history_rows(run: &Run) -> Vec<String> {
    let mut lines = run.stdout.lines();
    let header = lines.next().unwrap_or_default();
    let cols: Vec<&str> = header.split_whitespace().collect();
    assert_eq!(
        cols,
        ["run", "started", "duration", "outcome", "procs"],
        "history header\n{}",
        run.describe()
    );
    lines
        .take_while(|l| !l.trim().is_empty())
        .map(String::from)
        .collect()
}

#[test]
fn history_lists_runs_and_the_procs_of_the_latest() {
    let ws = Ws::new(
        r#"
proc("a", #{ inputs: ["a.txt"] }, |ctx| "a");
proc("b", #{ inputs: ["b.txt"], shell: "echo b-output; test ! -e fail.flag" });
proc("c", |ctx| "c");
run(["a", "b", "c"]);
"#,
    );
    ws.write("a.txt", "a\n");
    ws.write("b.txt", "b\n");
    ws.prun(&["history", "main.rhai"])
        .code(64)
        .says("main.rhai");

    ws.run(&[]).ok();
    ws.run(&[]).ok().up_to_date(&["a", "b"]);
    ws.sh("touch fail.flag && touch -d @981173106 b.txt");
    ws.run(&["--", "third-run-arg"])
        .code(1)
        .up_to_date(&["a"])
        .state("FAILED", "b");

    let h = ws.prun(&["history", "main.rhai"]);
    h.ok();
    let rows = history_rows(&h);
    assert_eq!(rows.len(), 3, "{}", h.describe());
    let fields = |row: &str| row.split_whitespace().map(String::from).collect::<Vec<_>>();
    let want = [
        ("3", "failed", "1 succeeded, 1 failed, 1 up to date"),
        ("2", "ok", "1 succeeded, 2 up to date"),
        ("1", "ok", "3 succeeded"),
    ];
    for (row, (id, outcome, procs)) in rows.iter().zip(want) {
        let f = fields(row);
        assert_eq!(f[0], id, "{}", h.describe());
        assert_eq!(f[3], outcome, "{}", h.describe());
        assert!(f[2].ends_with('s'), "duration in {row:?}");
        assert!(row.ends_with(procs), "{row:?} lacks {procs:?}");
    }
    // The latest run's procs: those that ran, not the up-to-date one.
    let procs: Vec<Vec<String>> = h
        .stdout
        .lines()
        .skip_while(|l| !l.trim().is_empty())
        .skip(2)
        .map(fields)
        .collect();
    assert_eq!(procs.len(), 2, "{}", h.describe());
    let state_of = |name: &str| {
        procs
            .iter()
            .find(|f| f[1] == name)
            .map(|f| f[0].clone())
            .unwrap_or_else(|| panic!("no {name} in\n{}", h.describe()))
    };
    assert_eq!(state_of("b"), "FAILED");
    assert_eq!(state_of("c"), "SUCCEEDED");
    assert!(h.stdout.contains("exited with code 1"), "{}", h.describe());

    let h1 = ws.prun(&["history", "main.rhai", "-n", "1"]);
    h1.ok();
    let rows = history_rows(&h1);
    assert_eq!(rows.len(), 1, "{}", h1.describe());
    assert!(rows[0].trim_start().starts_with("3 "), "{}", h1.describe());

    // What the DB keeps of each run and of each proc that ran.
    let conn = rusqlite::Connection::open(ws.main_db()).unwrap();
    let (args, started, ended, outcome): (String, String, String, String) = conn
        .query_row(
            "SELECT args, started, ended, outcome FROM runs ORDER BY id DESC LIMIT 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        )
        .unwrap();
    assert!(args.contains("third-run-arg"), "{args}");
    assert_eq!(outcome, "failed");
    assert!(started <= ended, "{started} > {ended}");
    let mut stmt = conn
        .prepare(
            "SELECT name, state, started, duration, exit_code, log, error FROM proc_runs
             WHERE run_id = (SELECT MAX(id) FROM runs) ORDER BY name",
        )
        .unwrap();
    type Row = (
        String,
        String,
        Option<String>,
        Option<f64>,
        Option<i64>,
        Option<String>,
        Option<String>,
    );
    let rows: Vec<Row> = stmt
        .query_map([], |r| {
            Ok((
                r.get(0)?,
                r.get(1)?,
                r.get(2)?,
                r.get(3)?,
                r.get(4)?,
                r.get(5)?,
                r.get(6)?,
            ))
        })
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let names: Vec<&str> = rows.iter().map(|r| r.0.as_str()).collect();
    assert_eq!(names, ["b", "c"]);
    let b = &rows[0];
    assert_eq!(b.1, "FAILED");
    assert_eq!(b.4, Some(1));
    assert!(b.6.as_deref().unwrap_or("").contains("exited with code 1"));
    let log = b.5.as_deref().expect("b's log path");
    assert!(
        std::fs::read_to_string(log).unwrap().contains("b-output"),
        "{log}"
    );
    for r in &rows {
        let proc_started = r.2.as_deref().expect("proc start");
        assert!(r.3.is_some(), "no duration: {r:?}");
        // The run began before any of its procs did.
        assert!(
            started.as_str() <= proc_started,
            "run started {started}, after proc {} started {proc_started}",
            r.0
        );
    }
}

#[test]
fn history_reads_a_db_given_with_db() {
    let ws = Ws::new(SIMPLE);
    ws.write("in.txt", "x\n");
    ws.run(&["--db", "my.db"]).ok();
    ws.run(&["--db", "my.db"]).ok().up_to_date(&["p"]);
    let h = ws.prun(&["history", "main.rhai", "--db", "my.db"]);
    h.ok();
    assert_eq!(history_rows(&h).len(), 2, "{}", h.describe());
    // The script's default DB was never made.
    ws.prun(&["history", "main.rhai"]).code(64);
    ws.prun(&["history", "never.rhai"])
        .code(64)
        .says("never.rhai");
}

/// Waits until the query `sql` on the DB at `db` gives a count of at least 1 (the DB and
/// its tables may not be there yet).
fn wait_for_row(db: &Path, sql: &str) {
    let until = Instant::now() + RUN_TIMEOUT;
    loop {
        let found = rusqlite::Connection::open(db)
            .and_then(|c| c.query_row(sql, [], |r| r.get::<_, i64>(0)))
            .unwrap_or(0);
        if found > 0 {
            return;
        }
        assert!(Instant::now() < until, "never found by {sql}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Waits until a file called `name` is somewhere under `dir`.
fn wait_for_file_named(dir: &Path, name: &str) {
    let until = Instant::now() + RUN_TIMEOUT;
    while !crate::support::holds_file_named(dir, name) {
        assert!(Instant::now() < until, "no {name} under {}", dir.display());
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// A run's id, and its recorded outcome, end and duration.
type RunEnd = (i64, Option<String>, Option<String>, Option<f64>);

/// The recorded end of each run in the DB at `db`, by id.
fn run_ends(db: &Path) -> Vec<RunEnd> {
    let conn = rusqlite::Connection::open(db).expect("open the DB");
    let mut stmt = conn
        .prepare("SELECT id, outcome, ended, duration FROM runs ORDER BY id")
        .expect("prepare");
    stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .expect("query")
        .collect::<Result<_, _>>()
        .expect("rows")
}

/// A run whose prun was killed (`kill -9`, by its own proc, once its first proc is in the
/// DB) is recorded as `died` by the next writer of the DB, here another script sharing it,
/// with no end time or duration; a run still going at that moment is left unended, and
/// records its own end later. A reader that could not judge the dead run's owner (another
/// machine sharing the DB: its owner here made another host's) reads `died` from the DB,
/// where it said `unknown` for ever.
#[test]
fn a_run_whose_prun_was_killed_is_recorded_died_by_the_next_writer_and_one_going_is_not() {
    let ws = Ws::new(
        r#"proc("a", #{ shell: "true" });
proc("hold", #{ deps: ["a"], shell: "i=0; while [ ! -e go ] && [ $i -lt 3000 ]; do sleep 0.01; i=$((i+1)); done" });
proc("die", #{ deps: ["hold"], shell: "kill -9 $PPID" });
run("die");"#,
    );
    ws.write(
        "held.rhai",
        r#"proc("b", #{ shell: "true" });
proc("wait", #{ deps: ["b"], shell: "i=0; while [ ! -e release ] && [ $i -lt 3000 ]; do sleep 0.01; i=$((i+1)); done" });
run("wait");"#,
    );
    ws.write("other.rhai", r#"proc("c", #{ shell: "true" }); run("c");"#);
    let db = ws.path("tasks.db");
    let held = ws.spawn(&["held.rhai", "--db", "tasks.db", "--no-live"]);
    wait_for_row(&db, "SELECT COUNT(*) FROM proc_runs WHERE name = 'b'");
    let killed = ws.spawn(&["main.rhai", "--db", "tasks.db", "--no-live"]);
    wait_for_row(&db, "SELECT COUNT(*) FROM proc_runs WHERE name = 'a'");
    ws.write("go", "");
    let killed = killed.finish();
    assert_eq!(killed.code, None, "killed\n{}", killed.describe());
    assert_eq!(run_ends(&db)[1].1, None, "nothing recorded its end yet");

    ws.prun(&["other.rhai", "--db", "tasks.db"]).ok();
    let ends = run_ends(&db);
    assert_eq!(ends[0], (1, None, None, None), "still going: {ends:?}");
    assert_eq!(
        ends[1],
        (2, Some("died".to_string()), None, None),
        "its end time is not known: {ends:?}"
    );

    ws.write("release", "");
    held.finish().ok();
    assert_eq!(run_ends(&db)[0].1.as_deref(), Some("ok"));

    let conn = rusqlite::Connection::open(&db).expect("open the DB");
    conn.execute(
        "UPDATE runs SET owner = json_set(owner, '$.host', 'far', '$.boot', 'another') WHERE id = 2",
        [],
    )
    .expect("another host's run");
    drop(conn);
    let h = ws.prun(&["history", "main.rhai", "--db", "tasks.db"]);
    h.ok()
        .says("run 2 died: its prun (pid ")
        .never_says("unknown");
    assert!(
        history_rows(&h).iter().any(|r| r.contains("  died ")),
        "{}",
        h.describe()
    );
}

/// The procs a run was running when its prun was killed (`kill -9`) get rows in its
/// history, `DIED`, with their start time and log, written by the next run of the script
/// from the crash journal (a proc's row is otherwise written when it ends): `prun report`
/// of the dead run shows what it was doing. A proc that had ended keeps its own row.
#[test]
fn the_procs_a_killed_run_was_running_are_recorded_died_by_the_next_run() {
    let ws = Ws::new(
        r#"proc("early", #{ shell: "echo early" });
proc("slow", #{ deps: ["early"], shell: "echo working; if [ ! -e quick ]; then echo $$ > job.tmp; mv job.tmp job.pid; exec sleep 1000; fi" });
run("slow");"#,
    );
    let db = ws.path("tasks.db");
    let running = ws.spawn(&["main.rhai", "--db", "tasks.db", "--no-live"]);
    wait_for_row(&db, "SELECT COUNT(*) FROM proc_runs WHERE name = 'early'");
    // A command's log is named within a tenth of a second of its first output: killed
    // before, the job has none (the wait above used to outlast that by chance).
    wait_for_file_named(&ws.path("state"), "slow.log");
    let job = running.kill_when_running(&ws, "job.pid");
    ws.write("quick", "");
    ws.prun(&["main.rhai", "--db", "tasks.db"]).ok();
    crate::support::assert_gone(job, "the crashed run's job", "the next run");

    let conn = rusqlite::Connection::open(&db).expect("open the DB");
    let of_run_1: Vec<(String, String)> = conn
        .prepare("SELECT name, state FROM proc_runs WHERE run_id = 1 ORDER BY rowid")
        .expect("prepare")
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .expect("query")
        .collect::<Result<_, _>>()
        .expect("rows");
    assert_eq!(
        of_run_1,
        [
            ("early".to_string(), "SUCCEEDED".to_string()),
            ("slow".to_string(), "DIED".to_string())
        ]
    );
    let slow: (Option<String>, Option<String>, Option<String>) = conn
        .query_row(
            "SELECT started, ended, log FROM proc_runs WHERE run_id = 1 AND name = 'slow'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .expect("slow's row");
    assert!(slow.0.is_some(), "its start: {slow:?}");
    assert_eq!(slow.1, None, "its end is not known: {slow:?}");
    let log = slow.2.as_deref().expect("its log");
    assert!(
        std::fs::read_to_string(log).is_ok_and(|t| t.contains("working")),
        "{log}"
    );
    assert_eq!(run_ends(&db)[0].1.as_deref(), Some("died"));
    ws.prun(&["report", "main.rhai", "--db", "tasks.db", "--run", "1"])
        .ok()
        .says("slow")
        .says("DIED");
    ws.prun(&["report", "main.rhai", "--db", "tasks.db", "--run", "1"])
        .ok()
        .says("running when its prun died")
        .says("\n  slow  DIED  started at ")
        .says(log);
    ws.prun(&[
        "report",
        "main.rhai",
        "--db",
        "tasks.db",
        "--run",
        "1",
        "--html",
        "r.html",
    ])
    .ok();
    let page = std::fs::read_to_string(ws.path("r.html")).expect("the page");
    assert!(
        page.contains("class=\"bar died\" data-i=\"1\" data-proc=\"slow\""),
        "{page}"
    );
}

/// A run killed while its first and only proc runs (a cron job's one long command, killed
/// by the OOM killer) had no row at all: a run's row was begun by its first proc's end. It
/// is begun as its first proc starts, so the history shows the run `died` and, once the
/// script runs again, that proc `DIED`.
#[test]
fn a_run_killed_in_its_first_proc_is_in_the_history_with_that_proc_died() {
    let ws = Ws::new(
        r#"proc("backup", #{ shell: "if [ ! -e quick ]; then echo $$ > job.tmp; mv job.tmp job.pid; exec sleep 1000; fi" });
run("backup");"#,
    );
    let db = ws.path("tasks.db");
    let running = ws.spawn(&["main.rhai", "--db", "tasks.db", "--no-live"]);
    wait_for_row(&db, "SELECT COUNT(*) FROM runs");
    running.kill_when_running(&ws, "job.pid");
    ws.prun(&["history", "main.rhai", "--db", "tasks.db"])
        .ok()
        .says("run 1 died: its prun (pid ");
    ws.write("quick", "");
    ws.prun(&["main.rhai", "--db", "tasks.db"]).ok();
    ws.prun(&["report", "main.rhai", "--db", "tasks.db", "--run", "1"])
        .ok()
        .says("\n  backup  DIED  started at ");
}

/// Two runs of a script that overlap, with `keep_runs: 1`: the first is still going when
/// the second ends, and ends after it. Its row was pruned by the second's end (rows went
/// by the order they were written, log directories by the order runs started, a run
/// still going kept), so that the history named the second run, whose directory the
/// first then pruned. Rows now go as directories do: the history and the log root both
/// keep the first run, and every log a row names is there.
#[test]
fn overlapping_runs_keep_the_same_runs_rows_and_log_directories() {
    let ws = Ws::new(
        r#"set_options(#{ keep_runs: 1 });
proc("first", #{ shell: "echo first" });
proc("hold", #{ deps: ["first"], shell: "echo holding; if [ -e release ]; then exit 0; fi; touch holding; i=0; while [ ! -e go ] && [ $i -lt 3000 ]; do sleep 0.01; i=$((i+1)); done" });
run("hold");"#,
    );
    let db = ws.path("tasks.db");
    let first = ws.spawn(&["main.rhai", "--db", "tasks.db", "--no-live"]);
    wait_for_row(&db, "SELECT COUNT(*) FROM proc_runs WHERE name = 'first'");
    let until = Instant::now() + RUN_TIMEOUT;
    while !ws.path("holding").exists() {
        assert!(Instant::now() < until, "the first run never held");
        std::thread::sleep(Duration::from_millis(5));
    }
    ws.write("release", "");
    ws.prun(&["main.rhai", "--db", "tasks.db"]).ok();
    ws.write("go", "");
    first.finish().ok();

    let conn = rusqlite::Connection::open(&db).expect("open the DB");
    let runs: Vec<i64> = conn
        .prepare("SELECT id FROM runs")
        .expect("prepare")
        .query_map([], |r| r.get(0))
        .expect("query")
        .collect::<Result<_, _>>()
        .expect("runs");
    assert_eq!(runs, [1], "the first run, which ended last");
    let logs: Vec<String> = conn
        .prepare("SELECT log FROM proc_runs WHERE log IS NOT NULL")
        .expect("prepare")
        .query_map([], |r| r.get(0))
        .expect("query")
        .collect::<Result<_, _>>()
        .expect("logs");
    assert_eq!(logs.len(), 2, "{logs:?}");
    for log in &logs {
        assert!(Path::new(log).exists(), "{log} is gone");
    }
    let dir = Path::new(&logs[0]).parent().expect("its run's directory");
    let root = dir.parent().expect("the log root");
    let dirs: Vec<_> = std::fs::read_dir(root)
        .expect("the log root")
        .flatten()
        .map(|e| e.path())
        .collect();
    assert_eq!(dirs, [dir.to_path_buf()], "no directory outlives its row");
    ws.prun(&["log", "main.rhai", "hold"]).ok().says("holding");
}

/// Two scripts sharing a DB (`--db`), each with a proc named `build`, keep a cached
/// result each: their rows were keyed by the proc's name alone, so each run replaced the
/// other script's row and every run ran `build` again. Typed another way, a script is
/// the same one and finds its rows.
#[test]
fn scripts_sharing_a_db_keep_their_own_cached_results_of_procs_named_alike() {
    let script = |text: &str| {
        format!(
            "proc(\"build\", #{{ inputs: [\"in.txt\"] }}, |ctx| {{ print(\"ran {text}\"); \"{text}\" }});\nproc(\"show\", #{{ deps: [\"build\"] }}, |ctx| print(`got ${{ctx.results.build}}`));\nrun(\"show\");\n"
        )
    };
    let ws = Ws::new(&script("main"));
    ws.write("other.rhai", &script("other"));
    ws.write("in.txt", "x\n");
    ws.sh("touch -d @981173106 in.txt");
    let run = |s: &str| ws.prun(&[s, "--db", "shared.db"]);
    run("main.rhai").ok().line("ran main").line("got main");
    run("other.rhai").ok().line("ran other").line("got other");
    run("./main.rhai")
        .ok()
        .up_to_date(&["build", "show"])
        .never_says("ran main");
    run("other.rhai")
        .ok()
        .up_to_date(&["build", "show"])
        .never_says("ran other");
}

#[test]
fn scripts_sharing_a_db_each_have_their_own_history_and_report() {
    let ws = Ws::new(SIMPLE);
    ws.write("in.txt", "x\n");
    ws.write("other.rhai", "proc(\"q\", |ctx| 1);\nrun(\"q\");\n");
    ws.run(&["--db", "shared.db"]).ok();
    ws.prun(&["other.rhai", "--db", "shared.db"]).ok();
    // Typed another way, main.rhai is the same script.
    ws.prun(&["./main.rhai", "--db", "shared.db"]).ok();
    ws.prun(&["other.rhai", "--db", "shared.db"]).ok();
    ws.prun(&["other.rhai", "--db", "shared.db"]).ok();
    let ids = |script: &str| -> Vec<String> {
        let h = ws.prun(&["history", script, "--db", "shared.db"]);
        h.ok();
        history_rows(&h)
            .iter()
            .map(|r| r.split_whitespace().next().unwrap_or_default().to_string())
            .collect()
    };
    assert_eq!(ids("main.rhai"), ["3", "1"]);
    assert_eq!(ids("other.rhai"), ["5", "4", "2"]);
    let h = ws.prun(&["history", "main.rhai", "--db", "shared.db"]);
    assert!(
        !h.stdout.contains(" q"),
        "other.rhai's proc\n{}",
        h.describe()
    );
    // The report's latest run is the script's own, and another script's run is not it.
    let r = ws.prun(&["report", "main.rhai", "--db", "shared.db"]);
    r.ok();
    assert!(
        r.stdout.starts_with("run 3 of ./main.rhai"),
        "{}",
        r.describe()
    );
    ws.prun(&["report", "main.rhai", "--db", "shared.db", "--run", "4"])
        .code(64)
        .says("no run 4 of main.rhai in the task DB shared.db");
}

#[test]
fn a_directory_input_holding_the_task_db_and_the_logs_is_up_to_date_on_the_next_run() {
    // The DB and the logs change with every run: were they part of the input, the proc
    // would never be up to date.
    let ws = Ws::new(
        r#"
set_options(#{ log_dir: "logs" });
proc("tree", #{ inputs: ["."], shell: "echo out" });
run("tree");
"#,
    );
    ws.write("data/a.txt", "a\n");
    let run = |ws: &Ws| {
        let out = ws.run(&["--db", "tasks.db"]);
        out.code(0);
        out
    };
    run(&ws).ran(&["tree"]);
    run(&ws).up_to_date(&["tree"]);
    ws.write("data/a.txt", "changed\n");
    run(&ws).ran(&["tree"]);
}

#[test]
fn a_directory_input_with_links_to_its_ancestors_is_walked_once_and_through_its_links() {
    // `up -> ..` and `self -> .` would make a walk that follows links endless (the run
    // hung); `ext` is a linked directory outside the input, whose files the proc reads.
    let ws = Ws::new(
        r#"
proc("tree", #{ inputs: ["d"], shell: "cat d/ext/o.txt" });
run("tree");
"#,
    );
    ws.write("d/sub/f.txt", "f\n");
    ws.write("outside/o.txt", "o\n");
    ws.sh("ln -s .. d/sub/up && ln -s . d/self && ln -s ../outside d/ext");
    ws.run(&[]).code(0).ran(&["tree"]);
    ws.run(&[]).code(0).up_to_date(&["tree"]);
    ws.write("outside/o.txt", "changed, and longer\n");
    ws.run(&[]).code(0).ran(&["tree"]);
    ws.run(&[]).code(0).up_to_date(&["tree"]);
}

#[test]
fn an_input_rewritten_with_its_size_and_mtime_put_back_or_relinked_runs_again() {
    let ws = Ws::new(
        r#"
proc("copy", #{ inputs: ["in.txt"] }, |ctx| read_file("in.txt"));
proc("linked", #{ inputs: ["link"] }, |ctx| read_file("link"));
proc("show", #{ deps: ["copy", "linked"] }, |ctx| { print(`got ${ctx.results.copy}+${ctx.results.linked}`); });
run("show");
"#,
    );
    ws.write("in.txt", "hello");
    ws.write("a.txt", "aaa");
    ws.write("b.txt", "bbb");
    ws.sh("touch -d @981173106 in.txt a.txt b.txt && ln -s a.txt link");
    ws.run(&[]).ok().line("got hello+aaa");
    ws.run(&[]).ok().up_to_date(&["copy", "linked", "show"]);

    // The same size and mtime, other content (as `cp -p` or `tar x` leave it).
    ws.sh("printf jello > in.txt && touch -d @981173106 in.txt");
    ws.run(&[]).ok().ran(&["copy"]).line("got jello+aaa");
    // The link turned to another file of the same size and mtime.
    ws.sh("ln -sfn b.txt link");
    ws.run(&[]).ok().ran(&["linked"]).line("got jello+bbb");
    ws.run(&[]).ok().up_to_date(&["copy", "linked", "show"]);
}

#[test]
fn editing_a_module_a_closure_calls_into_runs_it_again() {
    let ws = Ws::new(
        r#"
import "lib" as lib;
fn helper() { lib::tag() }
proc("direct", #{ inputs: ["in.txt"] }, |ctx| lib::tag());
proc("through", #{ inputs: ["in.txt"] }, |ctx| helper());
proc("plain", #{ inputs: ["in.txt"] }, |ctx| "plain");
proc("show", #{ deps: ["direct", "through", "plain"] }, |ctx| {
    print(`got ${ctx.results.direct}+${ctx.results.through}`);
});
run("show");
"#,
    );
    ws.write("lib.rhai", r#"fn tag() { "one" }"#);
    ws.write("in.txt", "x");
    ws.sh("touch -d @981173106 in.txt");
    ws.run(&[]).ok().line("got one+one");
    ws.run(&[]).ok().up_to_date(&["direct", "through", "plain"]);

    ws.write("lib.rhai", r#"fn tag() { "two" }"#);
    ws.run(&[])
        .ok()
        .ran(&["direct", "through"])
        .up_to_date(&["plain"])
        .line("got two+two");
    ws.run(&[]).ok().up_to_date(&["direct", "through", "plain"]);
}

#[test]
fn the_json_report_written_into_a_directory_input_does_not_make_it_stale() {
    let ws = Ws::new(
        r#"
proc("all", #{ inputs: ["."] }, |ctx| 1);
run("all");
"#,
    );
    ws.run(&["--json", "report.json"]).ok().ran(&["all"]);
    assert!(ws.exists("report.json"));
    ws.run(&["--json", "report.json"]).ok().up_to_date(&["all"]);
    ws.run(&["--json", "report.json"]).ok().up_to_date(&["all"]);
    // Another file in the directory is still a change.
    ws.write("other.txt", "x");
    ws.run(&["--json", "report.json"]).ok().ran(&["all"]);
}

#[test]
fn a_db_path_that_is_a_fifo_is_refused_saying_so_and_the_run_goes_on() {
    let ws = Ws::new(r#"proc("a", #{ inputs: ["main.rhai"], now: true, cmd: ["true"] });"#);
    ws.sh("mkfifo pipe.db");
    ws.run(&["--db", "pipe.db"])
        .ok()
        .ran(&["a"])
        .says("refusing to use pipe.db: a FIFO, owned by")
        .says("running without the task DB");
}

#[test]
fn an_inputs_closure_returning_unit_in_its_array_fails_the_proc_instead_of_naming_no_file() {
    let ws = Ws::new(
        r#"
proc("unset", #{ inputs: |ctx| [env("PRUN_TEST_UNSET_VARIABLE")] }, |ctx| 1);
proc("nested", #{ inputs: |ctx| [["in.txt"]] }, |ctx| 1);
proc("fine", #{ inputs: |ctx| ["in.txt"] }, |ctx| 1);
run(["unset", "nested", "fine"]);
"#,
    );
    ws.write("in.txt", "x");
    for (i, run) in [ws.run(&[]), ws.run(&[])].iter().enumerate() {
        run.code(1);
        if i == 0 {
            run.ran(&["fine"]);
        } else {
            run.up_to_date(&["fine"]);
        }
        for name in ["unset", "nested"] {
            let line = run.report("FAILED", name);
            assert!(
                line.contains("must return a path or an array of paths"),
                "{}",
                run.describe()
            );
        }
    }
}

#[test]
fn a_script_constant_a_function_reads_through_global_counts_in_the_fingerprint() {
    let ws = Ws::new(
        r#"
const MODE = read_file("mode.txt");
fn mode() { global::MODE }
proc("a", #{ inputs: ["in.txt"] }, |ctx| mode());
proc("show", #{ deps: ["a"] }, |ctx| print(`mode ${ctx.results.a}`));
run("show");
"#,
    );
    ws.write("in.txt", "x");
    ws.write("mode.txt", "one");
    ws.sh("touch -d @981173106 in.txt");
    ws.run(&[]).ok().line("mode one");
    ws.run(&[]).ok().up_to_date(&["a", "show"]);
    ws.write("mode.txt", "two");
    ws.run(&[]).ok().ran(&["a"]).line("mode two");
    ws.run(&[]).ok().up_to_date(&["a", "show"]);
}

#[test]
fn a_closure_that_caught_its_interrupted_command_keeps_no_result() {
    let ws = Ws::new(
        r#"
proc("a", #{ inputs: ["in.txt"] }, |ctx| {
    let r = "full";
    try { shell("touch started; test -e quick || sleep 30"); } catch (e) { r = "partial"; }
    r
});
proc("b", #{ deps: ["a"], no_skip: true }, |ctx| print("b got " + ctx.results.a));
run("b");
"#,
    );
    ws.write("in.txt", "x");
    ws.sh("touch -d @981173106 in.txt");
    let running = ws.spawn(&["main.rhai"]);
    let deadline = Instant::now() + RUN_TIMEOUT;
    while !ws.exists("started") {
        assert!(Instant::now() < deadline, "a never started its command");
        std::thread::sleep(Duration::from_millis(10));
    }
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(running.child.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .expect("SIGINT prun");
    running.finish().code(130);

    // The next run must not be handed "partial" as a's up-to-date result.
    ws.sh("touch quick");
    ws.run(&[]).ok().ran(&["a"]).line("b got full");
}

/// A run whose script fails at its top level before any proc needed the task DB is in the
/// history too, with its outcome: the history of a cron job shows how each run ended. A
/// run with a wrong target likewise.
#[test]
fn a_run_that_failed_before_anything_needed_the_db_is_in_the_history() {
    let ws = Ws::new("proc(\"p\", #{ cmd: [\"true\"] });\nthrow \"boom\";\n");
    ws.run(&[]).code(2);
    ws.run(&["tpyo"]).code(2);
    let history = ws.prun(&["history", "main.rhai"]);
    history.ok();
    let rows = history_rows(&history);
    assert_eq!(rows.len(), 2, "{}", history.describe());
    assert!(
        rows.iter().all(|r| r.contains(" script error ")),
        "{}",
        history.describe()
    );

    let ws = Ws::new("proc(\"p\", #{ cmd: [\"true\"] });\n");
    ws.run(&["tpyo"]).code(64);
    let history = ws.prun(&["history", "main.rhai"]);
    let rows = history_rows(&history);
    assert_eq!(rows.len(), 1, "{}", history.describe());
    assert!(rows[0].contains(" usage error "), "{}", history.describe());
}

#[test]
fn a_function_named_at_run_time_counts_in_the_fingerprint() {
    let script = r#"
import "lib" as lib;
fn inner() { "one" }
fn pick(n) { Fn(n) }
proc("called", #{ inputs: ["in.txt"] }, |ctx| call(Fn("in" + "ner")));
proc("returned", #{ inputs: ["in.txt"] }, |ctx| pick("inn" + "er").call());
proc("evaluated", #{ inputs: ["in.txt"] }, |ctx| eval("in" + "ner()"));
proc("dispatched", #{ inputs: ["in.txt"] }, |ctx| lib::dispatch("inner"));
proc("through", #{ inputs: ["in.txt"] }, |ctx| lib::direct());
proc("plain", #{ inputs: ["in.txt"] }, |ctx| "plain");
proc("show", #{ deps: ["called", "returned", "evaluated", "dispatched", "through"] }, |ctx| {
    let r = ctx.results;
    print(`got ${r.called} ${r.returned} ${r.evaluated} ${r.dispatched} ${r.through}`);
});
run(["show", "plain"]);
"#;
    let ws = Ws::new(script);
    ws.write(
        "lib.rhai",
        "fn dispatch(n) { call(Fn(n)) }\nfn direct() { inner() }\n",
    );
    ws.write("in.txt", "x");
    ws.sh("touch -d @981173106 in.txt");
    let all = [
        "called",
        "returned",
        "evaluated",
        "dispatched",
        "through",
        "plain",
    ];
    ws.run(&[]).ok().line("got one one one one one");
    ws.run(&[]).ok().up_to_date(&all);

    let script = script.replace(r#""one""#, r#""two""#);
    ws.write("main.rhai", &script);
    ws.run(&[])
        .ok()
        .only_ran(&all, &all[..5])
        .line("got two two two two two");
    // A comment, another proc's body and the order of declarations re-run none of them.
    let script = script.replace(r#"|ctx| "plain");"#, r#"|ctx| "plain"); // same"#);
    ws.write(
        "main.rhai",
        &format!("// a comment\nproc(\"other\", |ctx| 2);\n{script}"),
    );
    ws.run(&[]).ok().up_to_date(&all);
    let script = script
        .replace("fn pick(n) { Fn(n) }", "")
        .replace("run([", "fn pick(n) { Fn(n) }\nrun([");
    ws.write("main.rhai", &script);
    ws.run(&[]).ok().up_to_date(&all);
}

#[test]
fn environment_variables_a_proc_reads_count_in_the_fingerprint() {
    let ws = Ws::new(
        r#"
proc("read", #{ inputs: ["in.txt"] }, |ctx| env("PRUN_T_MODE"));
proc("named", #{ inputs: ["in.txt"] }, |ctx| env("PRUN_T_" + "MODE", "none"));
proc("shelled", #{ inputs: ["in.txt"] }, |ctx| shell("echo $PRUN_T_MODE").stdout);
proc("script", #{ inputs: ["in.txt"], shell: "echo ${PRUN_T_MODE:-none} > shell.txt" });
proc("argv", #{ inputs: ["in.txt"], cmd: ["sh", "-c", "echo $PRUN_T_MODE > argv.txt"] });
proc("set", #{ inputs: ["in.txt"], env: #{ PRUN_T_MODE: "fixed" }, shell: "echo $PRUN_T_MODE" });
proc("other", #{ inputs: ["in.txt"] }, |ctx| env("PRUN_T_OTHER"));
run(["read", "named", "shelled", "script", "argv", "set", "other"]);
"#,
    );
    ws.write("in.txt", "x");
    ws.sh("touch -d @981173106 in.txt");
    let all = ["read", "named", "shelled", "script", "argv", "set", "other"];
    ws.run_env(&[("PRUN_T_MODE", "one")]).ok().ran(&all);
    ws.run_env(&[("PRUN_T_MODE", "one")]).ok().up_to_date(&all);
    ws.run_env(&[("PRUN_T_MODE", "two")])
        .ok()
        .only_ran(&all, &all[..5]);
    assert_eq!(
        std::fs::read_to_string(ws.path("shell.txt")).unwrap(),
        "two\n"
    );
    assert_eq!(
        std::fs::read_to_string(ws.path("argv.txt")).unwrap(),
        "two\n"
    );
    ws.run_env(&[("PRUN_T_MODE", "two")]).ok().up_to_date(&all);
}

#[test]
fn a_proc_reading_other_procs_or_importing_a_module_is_never_up_to_date() {
    let ws = Ws::new(
        r#"
import "fs" as fs;
import "lib" as lib;
proc("x", |ctx| read_file("x.txt"));
proc("results", #{ inputs: ["in.txt"] }, |ctx| { wait("x"); results().x });
proc("waits", #{ inputs: ["in.txt"] }, |ctx| ctx.wait("x"));
proc("state", #{ inputs: ["in.txt"] }, |ctx| state("x"));
proc("in_module", #{ inputs: ["in.txt"] }, lib::body());
proc("imports", #{ inputs: ["in.txt"] }, |ctx| { import "tag" as t; t::tag() });
proc("dep", #{ inputs: ["in.txt"], deps: ["x"] }, |ctx| ctx.results.x);
proc("module", #{ inputs: ["in.txt"] }, |ctx| fs::size("in.txt"));
proc("show", #{ deps: ["results", "waits", "in_module", "imports"] }, |ctx| {
    let r = ctx.results;
    print(`got ${r.results} ${r.waits} ${r.in_module} ${r.imports}`);
});
run(["show", "state", "dep", "module"]);
"#,
    );
    ws.write("in.txt", "x");
    ws.write("x.txt", "one");
    ws.write("tag.rhai", r#"fn tag() { "one" }"#);
    ws.write(
        "lib.rhai",
        r#"fn body() { |ctx| { wait("x"); results().x } }"#,
    );
    ws.sh("touch -d @981173106 in.txt");
    ws.run(&[]).ok().line("got one one one one");
    ws.write("x.txt", "two");
    ws.write("tag.rhai", r#"fn tag() { "two" }"#);
    ws.run(&[])
        .ok()
        .ran(&["results", "waits", "state", "in_module", "imports", "dep"])
        .up_to_date(&["module"])
        .line("got two two two two");
}

/// A body that makes what lasts only until the script ends (`tempdir()`, `defer`), sets the
/// params or reads other procs keeps no cached result, however it reached the call: a
/// module's function (as `pg::start` makes a tempdir and defers its stop), a closure it
/// calls, a name put together for `eval`. Its text names none of them: the second
/// run judged each UP_TO_DATE, handing `show` a directory removed when the first run ended.
/// `params` waits for `plain`: every fingerprint holds the params, so `plain` judged after
/// `params` changed them in one run and before in the other would rightly run again.
#[test]
fn a_body_reaching_tempdir_defer_set_params_or_results_by_any_way_is_never_up_to_date() {
    let ws = Ws::new(
        r#"
import "lib" as lib;
proc("x", || 1);
proc("tmp", #{ inputs: ["in.txt"] }, |ctx| lib::scratch());
proc("defers", #{ inputs: ["in.txt"] }, |ctx| { lib::later(); "d" });
proc("evals", #{ inputs: ["in.txt"] }, |ctx| eval("temp" + "dir()"));
proc("made", #{ inputs: ["in.txt"] }, |ctx| lib::made());
proc("params", #{ inputs: ["in.txt"], deps: ["plain"] }, |ctx| lib::mode());
proc("peeks", #{ inputs: ["in.txt"] }, |ctx| lib::peek());
proc("plain", #{ inputs: ["in.txt"] }, |ctx| lib::plain());
proc("show", #{ deps: ["tmp"] }, |ctx| print(`exists: ${file_info(ctx.results.tmp).is_dir}`));
run(["show", "defers", "evals", "made", "params", "peeks", "plain"]);
"#,
    );
    ws.write("in.txt", "x");
    ws.write(
        "lib.rhai",
        r#"
fn scratch() { let d = tempdir(); write_file(d + "/f", "x"); d }
fn later() { defer(|| print("later")); }
fn made() { let f = || tempdir(); f.call() }
fn mode() { set_params(#{ mode: "m" }); "m" }
fn peek() { wait("x"); results().len() }
fn plain() { "p" }
"#,
    );
    ws.sh("touch -d @981173106 in.txt lib.rhai");
    ws.run(&[]).ok().line("exists: true");
    ws.run(&[])
        .ok()
        .ran(&["tmp", "show", "defers", "evals", "made", "params", "peeks"])
        .up_to_date(&["plain"])
        .line("exists: true");
}

/// A proc that runs again while its cached result still matches (here `--full`) does not
/// run when that result cannot be forgotten first (the DB's disk filled up during the run):
/// it fails naming the DB and why. It ran before, and a run of it killed half-way or
/// failing left the old result to be taken as UP_TO_DATE beside what it half wrote.
#[test]
#[cfg_attr(prun_no_root, ignore = "needs root (to mount a small tmpfs)")]
fn a_proc_whose_matching_result_cannot_be_forgotten_does_not_run() {
    let ws = Ws::new(
        r#"
let big = "x";
for i in 0..12 { big += big; }
let names = [];
for i in 0..40 {
    let name = `p${i}`;
    proc(name, #{ inputs: ["in.txt"] }, |ctx| { write_file(`ran-${ctx.name}`, ""); big });
    names.push(name);
}
proc("first", || 1);
proc("fill", #{ deps: ["first"], no_skip: true, shell: "test -z \"$FILL\" || dd if=/dev/zero of=small/fill bs=4k 2>/dev/null; true" });
run("fill");
wait("fill");
run(names);
"#,
    );
    let _small = crate::failures::Mounted::tmpfs(&ws.path("small"), "1m");
    ws.write("in.txt", "x");
    ws.sh("touch -d @981173106 in.txt");
    ws.run(&["--db", "small/t.db"]).ok();
    ws.sh("rm ran-*");
    let full = ws.spawn_env(
        &["main.rhai", "--db", "small/t.db", "--full"],
        &[("FILL", "1")],
    );
    let out = full.finish();
    out.code(1);
    for i in 0..40 {
        let line = out.report("FAILED", &format!("p{i}"));
        assert!(
            line.contains("its cached result could not be forgotten before it runs again: failed to write the task DB small/t.db")
                && line.contains("database or disk is full"),
            "{line}\n{}",
            out.describe()
        );
        assert!(
            !ws.exists(&format!("ran-p{i}")),
            "p{i} ran\n{}",
            out.describe()
        );
    }
}

/// A declared output written since its proc's result was saved runs the proc again: by a
/// run that could not open the DB (its file system read-only) or ran without it
/// (`--no-db`) and failed half-way, or by hand. The rows those runs could not forget were
/// taken as UP_TO_DATE beside the half-written output, handed on to `b`.
#[test]
#[cfg_attr(prun_no_root, ignore = "needs root (to mount a small tmpfs)")]
fn an_output_written_since_its_result_was_saved_runs_the_proc_again() {
    let ws = Ws::new(
        r#"
proc("a", #{ inputs: ["in.txt"], outputs: ["out.txt"], shell: "if [ -f boom ]; then echo half > out.txt; exit 1; fi; cat in.txt > out.txt" });
proc("b", #{ deps: ["a"] }, |ctx| { let t = read_file("out.txt"); t.trim(); print(`b read ${t}`) });
run("b");
"#,
    );
    let _db = crate::failures::Mounted::tmpfs(&ws.path("db"), "1m");
    ws.write("in.txt", "good\n");
    ws.sh("touch -d @981173106 in.txt");
    let run = |args: &[&str]| ws.run(&[&["--db", "db/t.db"], args].concat());
    run(&[]).ok().line("b read good");
    run(&[]).ok().up_to_date(&["a", "b"]);
    ws.sh("mount -o remount,ro db && touch boom");
    run(&["--full"]).code(1).state("FAILED", "a");
    ws.sh("mount -o remount,rw db && rm boom");
    run(&[]).ok().ran(&["a", "b"]).line("b read good");
    ws.sh("touch boom");
    ws.run(&["--no-db"]).code(1).state("FAILED", "a");
    ws.sh("rm boom");
    run(&[]).ok().ran(&["a", "b"]).line("b read good");
    ws.sh("echo edited > out.txt");
    run(&[]).ok().ran(&["a", "b"]).line("b read good");
    run(&[]).ok().up_to_date(&["a", "b"]);
}

#[test]
fn set_params_refuses_a_function_whose_code_no_fingerprint_would_see() {
    let ws = Ws::new(
        r#"
fn inner() { "one" }
set_params(#{ region: "eu", steps: [1, #{ run: Fn("inner") }] });
proc("a", #{ inputs: ["in.txt"] }, |ctx| ctx.params.steps[1].run.call());
run("a");
"#,
    );
    ws.write("in.txt", "x");
    ws.run(&[])
        .code(2)
        .says("main.rhai:3:1: set_params: `steps[1].run` is a function; params are data");
}

/// A dry run records nothing: the DB `set_options(#{ task_db })` names is read when it is
/// there, never made (it was, empty, with its directory).
#[test]
fn a_dry_run_makes_no_task_db() {
    let out = crate::support::Test::new()
        .script(
            r#"set_options(#{ task_db: "sub/t.db" });
proc("a", #{ cmd: ["true"], inputs: ["main.rhai"] }); run("a");"#,
        )
        .args(&["--dry-run"])
        .run();
    out.ok().out_has("1 would run");
    assert!(!out.exists("sub"), "{}", out.describe());
}

/// The schema as prun wrote it at version 5 (its migrations 1 to 5).
const SCHEMA_VERSION_5: &str = "
    CREATE TABLE runs (id INTEGER PRIMARY KEY, script TEXT NOT NULL, args TEXT NOT NULL,
        started TEXT NOT NULL, ended TEXT, duration REAL, outcome TEXT, counts TEXT,
        parallel INTEGER, script_key TEXT NOT NULL DEFAULT '');
    CREATE TABLE proc_runs (run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
        name TEXT NOT NULL, state TEXT NOT NULL, started TEXT, duration REAL,
        exit_code INTEGER, log TEXT, error TEXT, ended TEXT, attempts INTEGER,
        segments TEXT, waited REAL, place TEXT, deps TEXT, proto TEXT);
    CREATE INDEX proc_runs_by_name ON proc_runs(name, run_id);
    CREATE TABLE cache (name TEXT PRIMARY KEY, result TEXT NOT NULL,
        fingerprint TEXT NOT NULL, stamp TEXT NOT NULL, saved TEXT NOT NULL);
    CREATE INDEX proc_runs_by_run ON proc_runs(run_id);
    CREATE INDEX runs_by_script ON runs(script_key, id);
    PRAGMA user_version = 5;";

#[test]
fn a_version_5_db_is_brought_up_to_date_and_read_with_its_whole_history() {
    let ws = Ws::new(SIMPLE);
    ws.write("in.txt", "x\n");
    let key = std::fs::canonicalize(ws.path("main.rhai")).expect("canonical path");
    let key = key.to_string_lossy();
    let conn = rusqlite::Connection::open(ws.path("old.db")).expect("open");
    conn.execute_batch(SCHEMA_VERSION_5).expect("version 5");
    // Runs 1 and 2 were recorded before scripts had keys (runs of every script), 4 and 6
    // are another script's, 8 had no procs, 9 was killed after `p` ended.
    let runs: [(&str, Option<f64>); 9] = [
        ("", Some(1.0)),
        ("", Some(1.0)),
        (&key, Some(1.2)),
        ("/elsewhere/other.rhai", Some(50.0)),
        (&key, Some(1.3)),
        ("/elsewhere/other.rhai", Some(50.0)),
        (&key, Some(1.6)),
        (&key, None),
        (&key, Some(3.0)),
    ];
    for (id, (script_key, p)) in (1..).zip(runs) {
        let killed = id == 9;
        conn.execute(
            "INSERT INTO runs (id, script, args, started, duration, outcome, script_key)
             VALUES (?1, 'main.rhai', '[]', ?2, ?3, ?4, ?5)",
            rusqlite::params![
                id,
                format!("2026-01-01T00:0{id}:00.000Z"),
                (!killed).then_some(5.0),
                (!killed).then_some("ok"),
                script_key
            ],
        )
        .expect("a run");
        if let Some(d) = p {
            conn.execute(
                "INSERT INTO proc_runs (run_id, name, state, started, ended, duration)
                 VALUES (?1, 'p', 'SUCCEEDED', ?2, ?3, ?4)",
                rusqlite::params![
                    id,
                    format!("2026-01-01T00:0{id}:00.000Z"),
                    format!("2026-01-01T00:0{id}:0{d:.0}.000Z"),
                    d
                ],
            )
            .expect("a proc");
        }
    }
    drop(conn);
    let h = ws.prun(&["history", "main.rhai", "--db", "old.db"]);
    h.ok();
    let ids: Vec<String> = history_rows(&h)
        .iter()
        .map(|r| r.split_whitespace().next().unwrap_or_default().to_string())
        .collect();
    assert_eq!(ids, ["9", "8", "7", "5", "3", "2", "1"], "{}", h.describe());
    // The median of runs 1, 2, 3, 5 and 7: neither another script's 50 s nor without
    // the runs before keys (1.3 s either way).
    ws.prun(&["report", "main.rhai", "--db", "old.db"])
        .ok()
        .says("run 9 of main.rhai: unknown")
        .says("p     3.00s  median 1.20s  (2.5x)");
    ws.run(&["--db", "old.db"]).ok();
    ws.prun(&["report", "main.rhai", "--db", "old.db", "--run", "9"])
        .ok()
        .says("median 1.20s");
}

#[test]
fn a_result_saved_by_another_version_of_prun_is_not_taken_as_this_one_s() {
    let ws = Ws::new(
        r#"proc("make", #{ inputs: ["in.txt"] }, |ctx| { shell("echo ran >> make.count"); 1 });
run("make");"#,
    );
    ws.write("in.txt", "input\n");
    ws.run(&[]).ok().ran(&["make"]);
    ws.run(&[]).ok().up_to_date(&["make"]);
    // What an older prun saved: the same fingerprint, of another version.
    let conn = rusqlite::Connection::open(ws.main_db()).unwrap();
    let saved: String = conn
        .query_row(
            "SELECT fingerprint FROM cache WHERE name LIKE '%/make'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    let ours = format!("{}/", env!("CARGO_PKG_VERSION"));
    let rest = saved.strip_prefix(&ours).expect("the version first");
    conn.execute(
        "UPDATE cache SET fingerprint = ?1 WHERE name LIKE '%/make'",
        [format!("0.0.1/{rest}")],
    )
    .unwrap();
    drop(conn);
    ws.run(&[]).ok().ran(&["make"]);
    ws.run(&[]).ok().up_to_date(&["make"]);
    assert_eq!(
        std::fs::read_to_string(ws.path("make.count")).unwrap(),
        "ran\nran\n"
    );
}

#[test]
fn the_same_script_run_from_another_directory_does_not_take_the_first_one_s_results() {
    let ws = Ws::new(
        r#"
proc("base", #{ inputs: ["../in.txt"] }, |ctx| 1);
proc("where", #{ deps: ["base"] }, |ctx| { let d = shell("pwd").stdout; d.trim(); d });
proc("count", #{ deps: ["base"], outputs: ["n.txt"], shell: "wc -c < data.txt > n.txt" });
proc("show", #{ deps: ["where"], no_skip: true }, |ctx| print(`in ${ctx.results.where}`));
run(["show", "count"]);
"#,
    );
    ws.write("in.txt", "x");
    ws.write("one/data.txt", "1");
    ws.write("two/data.txt", "22");
    ws.write("two/n.txt", "stale");
    ws.sh("touch -d @981173106 in.txt");
    let (one, two) = (ws.path("one"), ws.path("two"));
    ws.prun_in("one", &["../main.rhai"])
        .ok()
        .ran(&["base", "where", "count"])
        .line(&format!("in {}", one.display()));
    ws.prun_in("one", &["../main.rhai"])
        .ok()
        .up_to_date(&["base", "where", "count"]);
    ws.prun_in("two", &["../main.rhai"])
        .ok()
        .ran(&["base", "where", "count"])
        .line(&format!("in {}", two.display()));
    let counted = std::fs::read_to_string(two.join("n.txt")).unwrap();
    assert_eq!(counted.trim(), "2");
}

#[test]
fn a_cached_result_that_cannot_be_read_back_runs_the_proc_again() {
    let ws = Ws::new(
        r#"proc("make", #{ inputs: ["in.txt"] }, |ctx| #{ n: 7 });
proc("show", #{ deps: ["make"], no_skip: true }, |ctx| print(`n=${ctx.results.make.n}`));
run("show");"#,
    );
    ws.write("in.txt", "input\n");
    ws.sh("touch -d @981173106 in.txt");
    ws.run(&[]).ok().ran(&["make"]).line("n=7");
    ws.run(&[]).ok().up_to_date(&["make"]).line("n=7");
    let conn = rusqlite::Connection::open(ws.main_db()).unwrap();
    conn.execute(
        "UPDATE cache SET result = '{\"n\": 7' WHERE name LIKE '%/make'",
        [],
    )
    .unwrap();
    drop(conn);
    ws.run(&[]).ok().ran(&["make"]).line("n=7");
    ws.run(&[]).ok().up_to_date(&["make"]).line("n=7");
}

#[test]
fn a_module_variable_a_closure_reads_counts_by_its_value() {
    let ws = Ws::new(
        r#"
import "lib" as lib;
proc("konst", #{ inputs: ["in.txt"] }, |ctx| lib::MODE);
proc("var", #{ inputs: ["in.txt"] }, |ctx| lib::mode);
proc("show", #{ deps: ["konst", "var"], no_skip: true }, |ctx| {
    print(`got ${ctx.results.konst}+${ctx.results["var"]}`);
});
run("show");
"#,
    );
    ws.write(
        "lib.rhai",
        "export const MODE = read_file(\"mode.txt\");\nlet mode = read_file(\"mode.txt\").len();\nexport mode;\n",
    );
    ws.write("in.txt", "x");
    ws.write("mode.txt", "fast");
    ws.sh("touch -d @981173106 in.txt");
    ws.run(&[]).ok().line("got fast+4");
    ws.run(&[]).ok().up_to_date(&["konst", "var"]);
    ws.write("mode.txt", "thorough");
    ws.run(&[])
        .ok()
        .ran(&["konst", "var"])
        .line("got thorough+8");
    ws.run(&[]).ok().up_to_date(&["konst", "var"]);
}

/// A proc that runs again while its cached result still matches (`--full`, a deleted
/// output) and whose run is killed with prun (`kill -9`) half-way through writing its
/// output: the next run runs it again, not UP_TO_DATE beside the half-written output.
#[test]
fn a_rerun_killed_half_way_is_not_up_to_date_next_time() {
    let ws = Ws::new(
        r#"
proc("w", #{ inputs: ["in.txt"], outputs: ["out.txt"],
    shell: "echo part > out.txt; if [ ! -e quick ]; then echo $$ > job.tmp; mv job.tmp job.pid; exec sleep 1000; fi; echo done >> out.txt" });
run("w");
"#,
    );
    ws.write("in.txt", "x");
    ws.write("quick", "");
    ws.sh("touch -d @981173106 in.txt");
    ws.run(&[]).ok().ran(&["w"]);
    for (words, before) in [
        (&["main.rhai", "--full"][..], ":"),
        (&["main.rhai"][..], "rm out.txt"),
    ] {
        ws.run(&[]).ok().up_to_date(&["w"]);
        ws.sh(&format!("{before}; rm quick"));
        let job = ws.spawn(words).kill_when_running(&ws, "job.pid");
        ws.write("quick", "");
        assert_eq!(
            std::fs::read_to_string(ws.path("out.txt")).unwrap(),
            "part\n"
        );
        ws.run(&[]).ok().ran(&["w"]);
        crate::support::assert_gone(job, "the crashed run's job", &format!("{words:?}"));
        assert_eq!(
            std::fs::read_to_string(ws.path("out.txt")).unwrap(),
            "part\ndone\n"
        );
    }
}

/// `skip` ends a proc with the result `()`: its dependents, which saw its earlier result,
/// run again. `no_change` after that says nothing changed: they stay UP_TO_DATE (after a
/// value, see `trust_results::no_change_after_a_value_runs_the_dependents_that_saw_the_value`).
#[test]
fn a_skipped_dependency_runs_its_dependents_again_and_no_change_does_not() {
    let ws = Ws::new(
        r#"
proc("maybe", #{ inputs: ["cfg.txt"] }, |ctx| {
    let c = read_file("cfg.txt");
    if c == "skip" { throw skip("nothing today"); }
    if c == "same" { throw no_change(); }
    c
});
proc("after", #{ deps: ["maybe"] }, |ctx| `after saw ${ctx.results.maybe}`);
proc("show", #{ deps: ["after"], no_skip: true }, |ctx| print(ctx.results.after));
proc("watcher", #{ deps: ["maybe"], no_skip: true }, |ctx| print(`maybe changed: ${ctx.deps_changed}`));
run(["show", "watcher"]);
"#,
    );
    let set = |text: &str, stamp: u32| {
        ws.write("cfg.txt", text);
        ws.sh(&format!("touch -d @{stamp} cfg.txt"));
    };
    set("v1", 981173106);
    ws.run(&[])
        .ok()
        .ran(&["maybe", "after"])
        .line("after saw v1")
        .line("maybe changed: true");
    set("skip", 981173107);
    ws.run(&[])
        .ok()
        .state("SKIPPED", "maybe")
        .ran(&["after"])
        .line("after saw ")
        .line("maybe changed: true");
    set("same", 981173108);
    ws.run(&[])
        .ok()
        .state("SKIPPED", "maybe")
        .up_to_date(&["after"])
        .line("after saw ")
        .line("maybe changed: false");
    ws.run(&[])
        .ok()
        .up_to_date(&["maybe", "after"])
        .line("after saw ")
        .line("maybe changed: false");
}

/// An `inputs` pattern that matches nothing stands for the file of its literal name, as in
/// the shell: `report [final].csv` is that file (as a pattern it matches `report f.csv`).
#[test]
fn an_input_pattern_that_matches_nothing_is_the_file_of_its_literal_name() {
    let ws = Ws::new(
        r#"
proc("base", #{ inputs: ["base.txt"] }, |ctx| 1);
proc("report", #{ deps: ["base"], inputs: ["report [final].csv"] }, |ctx| read_file("report [final].csv"));
proc("show", #{ deps: ["report"], no_skip: true }, |ctx| print(`got ${ctx.results.report}`));
run("show");
"#,
    );
    ws.write("base.txt", "x");
    ws.write("report [final].csv", "one");
    ws.sh("touch -d @981173106 base.txt 'report [final].csv'");
    ws.run(&[]).ok().ran(&["base", "report"]).line("got one");
    ws.run(&[]).ok().up_to_date(&["base", "report"]);
    ws.write("report [final].csv", "two");
    ws.run(&[]).ok().ran(&["report"]).line("got two");
    ws.write("report f.csv", "a file the pattern matches");
    ws.run(&[]).ok().ran(&["report"]).line("got two");
}

/// A proc whose body sets the params does more than return its result: skipped as
/// UP_TO_DATE, it would leave the procs after it with other params.
#[test]
fn a_proc_that_sets_the_params_is_never_up_to_date() {
    let ws = Ws::new(
        r#"
proc("setter", #{ inputs: ["in.txt"] }, |ctx| { set_params(#{ mode: "set" }); 1 });
proc("reader", #{ deps: ["setter"], no_skip: true }, |ctx| print(`mode=${ctx.params.mode}`));
run("reader");
"#,
    );
    ws.write("in.txt", "x");
    ws.sh("touch -d @981173106 in.txt");
    ws.run(&[]).ok().ran(&["setter"]).line("mode=set");
    ws.run(&[]).ok().ran(&["setter"]).line("mode=set");
}

/// What lasts only until the script ends (a `tempdir()`, a `defer` cleanup) is gone in the
/// next run: a proc that makes it is never UP_TO_DATE, or its result would name a
/// directory removed at the end of the run that made it.
#[test]
fn a_proc_that_makes_a_tempdir_or_defers_a_cleanup_is_never_up_to_date() {
    let ws = Ws::new(
        r#"
fn scratch() { let d = tempdir(); write_file(`${d}/f`, "data"); d }
proc("work", #{ inputs: ["in.txt"] }, |ctx| scratch());
proc("serve", #{ inputs: ["in.txt"] }, |ctx| { defer(|| print("stopped")); "up" });
proc("use", #{ deps: ["work", "serve"], no_skip: true }, |ctx| print(`read ${read_file(`${ctx.results.work}/f`)}`));
run("use");
"#,
    );
    ws.write("in.txt", "x");
    ws.sh("touch -d @981173106 in.txt");
    for _ in 0..2 {
        ws.run(&[])
            .ok()
            .ran(&["work", "serve"])
            .line("read data")
            .line("stopped");
    }
}

/// An input rewritten while its proc runs (same size, its mtime put back): the result was
/// made of the old content, so the next run runs the proc again.
#[test]
fn an_input_rewritten_while_its_proc_runs_runs_it_again_next_time() {
    let ws = Ws::new(
        r#"
proc("read", #{ inputs: ["in.txt"] }, |ctx| {
    let text = read_file("in.txt");
    if file_info("rewrite") != () {
        exec(["rm", "rewrite"]);
        shell("cp -p in.txt old.txt && echo new > in.txt && touch -r old.txt in.txt");
    }
    text
});
proc("show", #{ deps: ["read"], no_skip: true }, |ctx| print(`got ${ctx.results.read}`));
run("show");
"#,
    );
    ws.write("in.txt", "old\n");
    ws.write("rewrite", "");
    ws.sh("touch -d @981173106 in.txt");
    ws.run(&[]).ok().ran(&["read"]).line("got old");
    ws.run(&[]).ok().ran(&["read"]).line("got new");
    ws.run(&[]).ok().up_to_date(&["read"]).line("got new");
}

/// An input starting with `~` that names no file is an error: the shell reads `~` as the
/// home directory, prun does not, and the input would count as a missing file for good.
/// A file of that name is an input as any other.
#[test]
fn an_input_starting_with_a_tilde_that_names_no_file_fails_its_proc_saying_why() {
    let ws = Ws::new(
        r#"
proc("base", #{ inputs: ["base.txt"] }, |ctx| 1);
proc("home", #{ deps: ["base"], inputs: ["~/app.toml"], shell: "true" });
proc("pattern", #{ deps: ["base"], inputs: ["~/*.json"], shell: "true" });
run(["home", "pattern"]);
"#,
    );
    ws.write("base.txt", "x");
    let run = ws.run(&[]);
    run.code(1);
    for name in ["home", "pattern"] {
        let line = run.report("FAILED", name);
        assert!(
            line.contains(
                "names no file: prun does not read a leading \"~\" as the home directory"
            ),
            "{line}"
        );
    }
    ws.write("~/app.toml", "a file in a directory named ~");
    ws.run(&[])
        .code(1)
        .ran(&["home"])
        .state("FAILED", "pattern");
    ws.write("~/x.json", "");
    ws.run(&[]).ok().up_to_date(&["home"]).ran(&["pattern"]);
}

/// The names of the procs with a cached result in the task DB.
fn cached(ws: &Ws) -> Vec<String> {
    let conn = rusqlite::Connection::open(ws.main_db()).unwrap();
    let mut stmt = conn
        .prepare("SELECT name FROM cache ORDER BY name")
        .unwrap();
    let keys = stmt.query_map([], |r| r.get::<_, String>(0)).unwrap();
    // A key is the script's prefix (ending with "/"), then the name.
    keys.map(|k| k.unwrap().split_once('/').unwrap().1.to_string())
        .collect()
}

/// A command proc downstream of a proc that always runs is never UP_TO_DATE: it is not
/// judged and keeps no cached result, and still runs each time. A closure ending with
/// `no_change` there keeps its stamp, so that what follows it stays UP_TO_DATE.
#[test]
fn a_command_after_a_proc_that_always_runs_keeps_no_result_and_no_change_still_stops_a_rerun() {
    let ws = Ws::new(
        r#"
proc("root", #{ cmd: ["true"] });
proc("cmd1", #{ deps: ["root"], shell: "echo ran >> cmd1.count" });
proc("cmd2", #{ deps: ["cmd1"], cmd: ["true"] });
proc("quiet", #{ deps: ["root"] }, |ctx| { throw no_change(); });
proc("after_quiet", #{ deps: ["quiet"], shell: "echo ran >> after.count" });
run(["cmd2", "after_quiet"]);
"#,
    );
    ws.run(&[])
        .ok()
        .ran(&["root", "cmd1", "cmd2", "after_quiet"])
        .state("SKIPPED", "quiet");
    assert_eq!(cached(&ws), ["after_quiet", "quiet"]);
    ws.run(&[])
        .ok()
        .ran(&["root", "cmd1", "cmd2"])
        .state("SKIPPED", "quiet")
        .up_to_date(&["after_quiet"]);
    assert_eq!(cached(&ws), ["after_quiet", "quiet"]);
    assert_eq!(
        std::fs::read_to_string(ws.path("cmd1.count")).unwrap(),
        "ran\nran\n"
    );
    assert_eq!(
        std::fs::read_to_string(ws.path("after.count")).unwrap(),
        "ran\n"
    );
}

/// A proc that can no longer be UP_TO_DATE (its input was taken out of its definition)
/// forgets the result its earlier definition cached, and runs.
#[test]
fn a_proc_redefined_never_to_be_up_to_date_forgets_its_cached_result() {
    let with_input = r#"
proc("root", #{ cmd: ["true"] });
proc("p", #{ deps: ["root"], inputs: ["in.txt"], shell: "echo ran >> p.count" });
run("p");
"#;
    let ws = Ws::new(with_input);
    ws.write("in.txt", "x");
    ws.run(&[]).ok().ran(&["root", "p"]);
    assert_eq!(cached(&ws), ["p"]);
    ws.write(
        "main.rhai",
        &with_input.replace(r#"inputs: ["in.txt"], "#, ""),
    );
    ws.run(&[]).ok().ran(&["root", "p"]);
    assert_eq!(cached(&ws), Vec::<String>::new());
}

//! The test harness: write a script (and helper files) into a fresh temporary directory,
//! run the `prun` binary there with a hard timeout, and inspect what it printed, its exit
//! status and the files its jobs wrote.
//!
//! Jobs record their own start and end times (`start NAME NANOS` / `end NAME NANOS` lines
//! appended to `events`) with the helper scripts below, so ordering and exclusion are
//! asserted from what really happened, never from sleeps or wall-clock thresholds.

#![allow(dead_code)]

pub(crate) mod postgres;
pub(crate) mod slurm;
pub(crate) mod sshd;

use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long one prun run may take before it is killed and the test fails.
const RUN_TIMEOUT: Duration = Duration::from_secs(60);

/// `sh job.sh NAME [SECONDS]`: records `start NAME t`, sleeps, records `end NAME t`.
const JOB_SH: &str = r#"name=$1
echo "start $name $(date +%s%N)" >> events
if [ -n "$2" ]; then sleep "$2"; fi
echo "end $name $(date +%s%N)" >> events
"#;

/// `sh sync.sh all|any NAME OTHER...`: records its start, creates `bar.NAME`, then waits
/// (bounded, about 10 s) until all (or any) of `bar.OTHER` exist, and records its end.
/// A rendezvous proves that procs really ran at the same time; if the scheduler never lets
/// them overlap, the job fails with exit code 9 instead of hanging.
const SYNC_SH: &str = r#"mode=$1; name=$2; shift 2
echo "start $name $(date +%s%N)" >> events
touch "bar.$name"
i=0
while :; do
  hit=0; miss=0
  for o in "$@"; do
    if [ -e "bar.$o" ]; then hit=1; else miss=1; fi
  done
  if [ "$mode" = all ] && [ $miss = 0 ]; then break; fi
  if [ "$mode" = any ] && [ $hit = 1 ]; then break; fi
  i=$((i+1))
  if [ $i -gt 1000 ]; then echo "sync: $name gave up waiting for $*" >&2; exit 9; fi
  sleep 0.01
done
echo "end $name $(date +%s%N)" >> events
"#;

/// Proc options (Rhai map entries) for a command body that records its interval.
pub(crate) fn job(name: &str, secs: &str) -> String {
    format!(r#"cmd: ["sh", "job.sh", "{name}", "{secs}"]"#)
}

/// Proc options for a rendezvous body (see `sync.sh`).
pub(crate) fn sync(mode: &str, name: &str, others: &[&str]) -> String {
    let mut argv = vec![
        "\"sh\"".to_string(),
        "\"sync.sh\"".to_string(),
        format!("\"{mode}\""),
        format!("\"{name}\""),
    ];
    argv.extend(others.iter().map(|o| format!("\"{o}\"")));
    format!("cmd: [{}]", argv.join(", "))
}

/// Expands the script macros `JOB(name)`, `JOB(name, secs)` and
/// `SYNC(all|any, name, other, ...)` into proc options (see [`job`] and [`sync`]).
pub(crate) fn expand(script: &str) -> String {
    let mut out = String::with_capacity(script.len());
    let mut rest = script;
    loop {
        let next = ["JOB(", "SYNC("]
            .iter()
            .filter_map(|m| rest.find(m).map(|i| (i, *m)))
            .min();
        let Some((i, m)) = next else {
            out.push_str(rest);
            return out;
        };
        out.push_str(&rest[..i]);
        let after = &rest[i + m.len()..];
        let close = after.find(')').expect("macro without ')'");
        let words: Vec<&str> = after[..close].split(',').map(str::trim).collect();
        match m {
            "JOB(" => out.push_str(&job(words[0], words.get(1).copied().unwrap_or(""))),
            _ => out.push_str(&sync(words[0], words[1], &words[2..])),
        }
        rest = &after[close + 1..];
    }
}

/// A prun invocation to run.
pub(crate) struct Test {
    dir: tempfile::TempDir,
    script: Option<String>,
    files: Vec<(String, String)>,
    before: Vec<String>,
    args: Vec<String>,
    script_path: bool,
    signal_when: Option<(String, String)>,
    env: Vec<(String, String)>,
    unset: Vec<String>,
    timeout: Duration,
    other_user: bool,
}

impl Test {
    pub(crate) fn new() -> Test {
        Test {
            dir: tempfile::tempdir().expect("tempdir"),
            script: None,
            files: vec![
                ("job.sh".into(), JOB_SH.into()),
                ("sync.sh".into(), SYNC_SH.into()),
            ],
            before: Vec::new(),
            args: Vec::new(),
            script_path: true,
            signal_when: None,
            env: Vec::new(),
            unset: Vec::new(),
            timeout: RUN_TIMEOUT,
            other_user: false,
        }
    }

    /// Runs prun as a user of its own, not root (with util-linux's `setpriv`; the test
    /// needs root): permissions then hold for it. The files the test wrote stay root's;
    /// the directory is writable by all and sticky, as `/tmp` is, so that prun keeps its
    /// state below it.
    pub(crate) fn by_another_user(mut self) -> Test {
        self.other_user = true;
        self
    }

    /// Sets an environment variable for prun.
    pub(crate) fn env(mut self, key: &str, value: &str) -> Test {
        self.env.push((key.into(), value.into()));
        self
    }

    /// Removes an environment variable from prun's environment.
    pub(crate) fn unset_env(mut self, key: &str) -> Test {
        self.unset.push(key.into());
        self
    }

    /// Sends `signal` (`INT`, `TERM`) to prun once `file` exists in the directory
    /// (a job writes it when it is running).
    pub(crate) fn signal_when(mut self, file: &str, signal: &str) -> Test {
        self.signal_when = Some((file.into(), signal.into()));
        self
    }

    /// The script, written to `main.rhai` (after [`expand`]ing its macros).
    pub(crate) fn script(mut self, text: &str) -> Test {
        self.script = Some(expand(text));
        self
    }

    /// Another file (parent directories are created).
    pub(crate) fn file(mut self, path: &str, text: &str) -> Test {
        self.files.push((path.into(), text.into()));
        self
    }

    /// Words after `main.rhai`.
    pub(crate) fn args(mut self, args: &[&str]) -> Test {
        self.args.extend(args.iter().map(|s| s.to_string()));
        self
    }

    /// Words before `main.rhai`.
    pub(crate) fn before(mut self, args: &[&str]) -> Test {
        self.before.extend(args.iter().map(|s| s.to_string()));
        self
    }

    /// Do not put `main.rhai` on the command line (the words are given in full).
    pub(crate) fn raw(mut self, args: &[&str]) -> Test {
        self.script_path = false;
        self.args = args.iter().map(|s| s.to_string()).collect();
        self
    }

    pub(crate) fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// How long the run may take before it is killed and the test fails (60 s unless
    /// set): tests of former hangs use a short bound so that they fail, not hang.
    pub(crate) fn timeout(mut self, limit: Duration) -> Test {
        self.timeout = limit;
        self
    }

    /// Runs prun and returns what happened; a run longer than the timeout fails the test.
    pub(crate) fn run(self) -> Output {
        let dir = self.dir.path().to_path_buf();
        if let Some(s) = &self.script {
            std::fs::write(dir.join("main.rhai"), s).expect("write script");
        }
        for (p, text) in &self.files {
            let path = dir.join(p);
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent).expect("mkdir");
            }
            std::fs::write(path, text).expect("write file");
        }
        let mut words = self.before.clone();
        if self.script_path {
            words.push("main.rhai".into());
        }
        words.extend(self.args.iter().cloned());

        let mut cmd = if self.other_user {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::Permissions::from_mode(0o1777);
            std::fs::set_permissions(&dir, mode).expect("chmod");
            // Far above the uids of real users and of `nobody`.
            let id = (5_000_000 + std::process::id() % 100_000).to_string();
            let mut c = Command::new("setpriv");
            c.args(["--reuid", &id, "--regid", &id, "--clear-groups"])
                .arg(env!("CARGO_BIN_EXE_prun"));
            c
        } else {
            Command::new(env!("CARGO_BIN_EXE_prun"))
        };
        cmd.args(&words)
            .current_dir(&dir)
            .env("XDG_STATE_HOME", dir.join("state"))
            .env_remove("NO_COLOR")
            .envs(self.env.iter().map(|(k, v)| (k, v)));
        for key in &self.unset {
            cmd.env_remove(key);
        }
        let mut signal_when = self.signal_when.clone();
        let done = run_within(cmd, &format!("prun {words:?}"), self.timeout, |child| {
            if let Some((file, sig)) = &signal_when
                && dir.join(file).exists()
            {
                let _ = Command::new("kill")
                    .args([format!("-{sig}"), child.id().to_string()])
                    .status();
                signal_when = None;
            }
        });
        let (status, stdout, stderr) = (done.status, unstamp(&done.stdout), done.stderr);
        Output {
            code: status.code(),
            stdout,
            stderr,
            dir: self.dir,
            words,
        }
    }
}

/// A command that ran to its end.
pub(crate) struct Finished {
    pub status: std::process::ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

/// Runs `cmd` (stdin from `/dev/null`, stdout and stderr read as it goes) to its end;
/// `tick` is called every few milliseconds while it runs. A run longer than
/// [`RUN_TIMEOUT`] fails the test: the command gets SIGTERM (prun then ends its process
/// groups), three seconds, SIGKILL, and the panic shows what it printed.
pub(crate) fn run_bounded(cmd: Command, what: &str, tick: impl FnMut(&Child)) -> Finished {
    run_within(cmd, what, RUN_TIMEOUT, tick)
}

/// [`run_bounded`] with another bound than [`RUN_TIMEOUT`].
pub(crate) fn run_within(
    mut cmd: Command,
    what: &str,
    limit: Duration,
    mut tick: impl FnMut(&Child),
) -> Finished {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("failed to start {what}: {e}"));
    let out = reader(child.stdout.take().expect("stdout"));
    let err = reader(child.stderr.take().expect("stderr"));
    let started = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait") {
            break s;
        }
        tick(&child);
        if started.elapsed() > limit {
            let _ = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status();
            let grace = Instant::now();
            while grace.elapsed() < Duration::from_secs(3) {
                if child.try_wait().ok().flatten().is_some() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
            let stdout = out.join().unwrap_or_default();
            let stderr = err.join().unwrap_or_default();
            panic!(
                "{what} did not finish within {limit:?}\n--- stdout\n{stdout}\n--- stderr\n{stderr}"
            );
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    Finished {
        status,
        stdout: out.join().expect("stdout reader"),
        stderr: err.join().expect("stderr reader"),
    }
}

/// Plain output puts the time first on each proc line (`2026-11-22T01:45:11Z STARTED  a`);
/// the assertions look at what follows. Checks that the stamp is well formed as it goes.
pub(crate) fn unstamp(stdout: &str) -> String {
    let mut out = String::with_capacity(stdout.len());
    for line in stdout.split_inclusive('\n') {
        let b = line.as_bytes();
        let stamped = b.len() > 21
            && b[4] == b'-'
            && b[10] == b'T'
            && b[19] == b'Z'
            && b[20] == b' '
            && b[..19]
                .iter()
                .all(|c| c.is_ascii_digit() || b"-T:".contains(c));
        out.push_str(if stamped { &line[21..] } else { line });
    }
    out
}

fn reader(mut r: impl Read + Send + 'static) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = r.read_to_end(&mut buf);
        String::from_utf8_lossy(&buf).into_owned()
    })
}

/// Long output keeps its first and last 30 lines in failure messages.
fn abridge(text: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    if lines.len() <= 80 {
        return text.to_string();
    }
    format!(
        "{}\n[... {} lines ...]\n{}",
        lines[..30].join("\n"),
        lines.len() - 60,
        lines[lines.len() - 30..].join("\n")
    )
}

/// What a prun run did.
pub(crate) struct Output {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
    pub dir: tempfile::TempDir,
    words: Vec<String>,
}

impl Output {
    /// Everything about the run, for failure messages.
    pub(crate) fn describe(&self) -> String {
        format!(
            "prun {:?} exited with {:?}\n--- stdout\n{}\n--- stderr\n{}",
            self.words,
            self.code,
            abridge(&self.stdout),
            abridge(&self.stderr)
        )
    }

    pub(crate) fn path(&self, p: &str) -> PathBuf {
        self.dir.path().join(p)
    }

    pub(crate) fn read(&self, p: &str) -> String {
        std::fs::read_to_string(self.path(p))
            .unwrap_or_else(|e| panic!("read {p}: {e}\n{}", self.describe()))
    }

    pub(crate) fn exists(&self, p: &str) -> bool {
        self.path(p).exists()
    }

    pub(crate) fn code(&self, code: i32) -> &Self {
        assert_eq!(
            self.code,
            Some(code),
            "unexpected exit status\n{}",
            self.describe()
        );
        self
    }

    pub(crate) fn ok(&self) -> &Self {
        self.code(0)
    }

    /// stdout contains `s`.
    pub(crate) fn out_has(&self, s: &str) -> &Self {
        assert!(
            self.stdout.contains(s),
            "stdout lacks {s:?}\n{}",
            self.describe()
        );
        self
    }

    /// stdout does not contain `s`.
    pub(crate) fn out_lacks(&self, s: &str) -> &Self {
        assert!(
            !self.stdout.contains(s),
            "stdout has {s:?}\n{}",
            self.describe()
        );
        self
    }

    /// stderr contains `s`.
    pub(crate) fn err_has(&self, s: &str) -> &Self {
        assert!(
            self.stderr.contains(s),
            "stderr lacks {s:?}\n{}",
            self.describe()
        );
        self
    }

    /// Some stdout line is exactly `line`.
    pub(crate) fn line(&self, line: &str) -> &Self {
        assert!(
            self.stdout.lines().any(|l| l == line),
            "no stdout line {line:?}\n{}",
            self.describe()
        );
        self
    }

    /// No stdout line is exactly `line`.
    pub(crate) fn no_line(&self, line: &str) -> &Self {
        assert!(
            !self.stdout.lines().any(|l| l == line),
            "unexpected stdout line {line:?}\n{}",
            self.describe()
        );
        self
    }

    /// The report line of proc `name` (`STATE      name (..s)...`): returns the text
    /// after the duration, and asserts the state.
    pub(crate) fn proc_line(&self, state: &str, name: &str) -> String {
        let prefix = format!("{state:<10} {name}");
        let hits: Vec<&str> = self
            .stdout
            .lines()
            .filter(|l| {
                l.strip_prefix(&prefix)
                    .is_some_and(|rest| rest.is_empty() || rest.starts_with([' ', ':']))
            })
            .collect();
        assert_eq!(
            hits.len(),
            1,
            "expected one report line `{prefix}`\n{}",
            self.describe()
        );
        hits[0].to_string()
    }

    /// Asserts the proc finished in `state` (one report line).
    pub(crate) fn proc_state(&self, state: &str, name: &str) -> &Self {
        self.proc_line(state, name);
        self
    }

    /// Asserts no report line (any state) exists for `name`.
    pub(crate) fn not_reported(&self, name: &str) -> &Self {
        for l in self.stdout.lines() {
            let (Some(state), Some(rest)) = (l.get(..11), l.get(11..)) else {
                continue;
            };
            let is_state = state.ends_with(' ')
                && !state.trim().is_empty()
                && state
                    .trim()
                    .chars()
                    .all(|c| c.is_ascii_uppercase() || c == '_');
            let names_it = rest
                .strip_prefix(name)
                .is_some_and(|r| r.is_empty() || r.starts_with([' ', ':']));
            assert!(
                !(is_state && names_it),
                "proc {name} was reported: {l:?}\n{}",
                self.describe()
            );
        }
        self
    }

    /// Number of report lines in `state`.
    pub(crate) fn count(&self, state: &str) -> usize {
        let prefix = format!("{state:<10} ");
        self.stdout
            .lines()
            .filter(|l| l.starts_with(&prefix))
            .count()
    }

    /// The summary line (`prun: N succeeded...`), which must be the last stdout line.
    pub(crate) fn summary(&self) -> String {
        let last = self.stdout.lines().last().unwrap_or("");
        assert!(
            last.starts_with("prun: ") && last.contains(" succeeded"),
            "last stdout line is not the summary\n{}",
            self.describe()
        );
        // Drop the wall time (" in 0.12s").
        last.rsplit_once(" in ")
            .map_or(last, |(s, _)| s)
            .to_string()
    }

    /// The summary without the wall time equals `want` (`prun: 2 succeeded, 1 failed`).
    pub(crate) fn summary_is(&self, want: &str) -> &Self {
        assert_eq!(self.summary(), want, "summary\n{}", self.describe());
        self
    }

    /// The intervals the jobs recorded in `events`.
    pub(crate) fn events(&self) -> Events {
        let text = std::fs::read_to_string(self.path("events")).unwrap_or_default();
        Events::parse(&text, self.describe())
    }
}

/// One recorded run of a job.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Span {
    pub start: u128,
    pub end: u128,
}

/// Start/end times jobs recorded in the `events` file.
pub(crate) struct Events {
    spans: HashMap<String, Vec<Span>>,
    context: String,
}

impl Events {
    fn parse(text: &str, context: String) -> Events {
        let mut open: HashMap<String, Vec<u128>> = HashMap::new();
        let mut spans: HashMap<String, Vec<Span>> = HashMap::new();
        for l in text.lines() {
            let mut w = l.split_whitespace();
            let (Some(kind), Some(name), Some(t)) = (w.next(), w.next(), w.next()) else {
                panic!("bad events line {l:?}\n{context}");
            };
            let t: u128 = t.parse().unwrap_or_else(|_| panic!("bad time in {l:?}"));
            match kind {
                "start" => open.entry(name.into()).or_default().push(t),
                "end" => {
                    let start = open
                        .get_mut(name)
                        .and_then(|v| v.pop())
                        .unwrap_or_else(|| panic!("end without start: {l:?}\n{context}"));
                    spans
                        .entry(name.into())
                        .or_default()
                        .push(Span { start, end: t });
                }
                _ => panic!("bad events line {l:?}"),
            }
        }
        for (name, v) in &open {
            assert!(
                v.is_empty(),
                "job {name} started but never ended\n{context}"
            );
        }
        Events { spans, context }
    }

    /// Whether `name` ran at all.
    pub(crate) fn ran(&self, name: &str) -> bool {
        self.spans.contains_key(name)
    }

    /// How many times `name` ran.
    pub(crate) fn runs(&self, name: &str) -> usize {
        self.spans.get(name).map_or(0, Vec::len)
    }

    /// The one run of `name`.
    pub(crate) fn span(&self, name: &str) -> Span {
        match self.spans.get(name).map(Vec::as_slice) {
            Some([s]) => *s,
            other => panic!(
                "expected exactly one run of {name}, found {other:?}\n{}",
                self.context
            ),
        }
    }

    /// `a` ended before `b` started.
    pub(crate) fn before(&self, a: &str, b: &str) {
        let (sa, sb) = (self.span(a), self.span(b));
        assert!(
            sa.end <= sb.start,
            "{a} (ended {}) did not end before {b} started ({})\n{}",
            sa.end,
            sb.start,
            self.context
        );
    }

    /// The recorded intervals of `a` and `b` do not overlap.
    pub(crate) fn disjoint(&self, a: &str, b: &str) {
        let (sa, sb) = (self.span(a), self.span(b));
        assert!(
            sa.end <= sb.start || sb.end <= sa.start,
            "{a} {sa:?} and {b} {sb:?} overlap\n{}",
            self.context
        );
    }

    /// The recorded intervals of `a` and `b` overlap.
    pub(crate) fn overlap(&self, a: &str, b: &str) -> bool {
        let (sa, sb) = (self.span(a), self.span(b));
        sa.start < sb.end && sb.start < sa.end
    }

    /// The most jobs (of all recorded) that were running at one instant.
    pub(crate) fn max_overlap(&self) -> usize {
        let mut points: Vec<(u128, i32)> = Vec::new();
        for s in self.spans.values().flatten() {
            points.push((s.start, 1));
            points.push((s.end, -1));
        }
        // At equal times, ends come first.
        points.sort();
        let (mut cur, mut max) = (0i32, 0i32);
        for (_, d) in points {
            cur += d;
            max = max.max(cur);
        }
        max as usize
    }

    pub(crate) fn context(&self) -> &str {
        &self.context
    }
}

/// Whether a process is alive (a zombie counts as gone).
pub(crate) fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => false,
        Ok(stat) => {
            // The state follows the command name in parentheses.
            let state = stat
                .rsplit_once(')')
                .and_then(|(_, rest)| rest.trim_start().chars().next());
            !matches!(state, Some('Z') | Some('X') | None)
        }
    }
}

/// Asserts the process is gone, waiting for a signal already sent to be delivered (prun
/// must not leave it running; a stray `sleep 300` would still be there). The bound is a
/// hang guard, generous for a loaded machine, not a promise of prun.
pub(crate) fn assert_gone(pid: u32, what: &str, context: &str) {
    let t = Instant::now();
    while alive(pid) {
        if t.elapsed() > Duration::from_secs(30) {
            // Do not leak it past the test.
            let _ = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status();
            panic!("{what} (pid {pid}) is still running after prun exited\n{context}");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Reads a pid written by a job.
pub(crate) fn pid_in(out: &Output, file: &str) -> u32 {
    out.read(file)
        .trim()
        .parse()
        .unwrap_or_else(|e| panic!("pid in {file}: {e}\n{}", out.describe()))
}

/// Waits until the prun of pid `prun` recorded the process group `pgid` in its journal of
/// groups under the state directory `state` (see `exec::crashed`): from then on a
/// `kill -9` of prun leaves a group that the next run ends. Panics after a hang guard.
pub(crate) fn wait_recorded(state: &Path, prun: u32, pgid: u32) {
    let line = format!("+ {pgid} ");
    let recorded = || {
        let mut dirs = vec![state.to_path_buf()];
        while let Some(d) = dirs.pop() {
            for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
                let p = e.path();
                let name = e.file_name().to_string_lossy().into_owned();
                if p.is_dir() {
                    dirs.push(p);
                } else if name.split('.').next() == Some(&prun.to_string())
                    && d.ends_with("groups")
                    && std::fs::read_to_string(&p).is_ok_and(|t| t.contains(&line))
                {
                    return true;
                }
            }
        }
        false
    };
    let t = Instant::now();
    while !recorded() {
        assert!(
            t.elapsed() < Duration::from_secs(30),
            "prun {prun} never recorded process group {pgid} under {}",
            state.display()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Whether a file called `name` is somewhere under `dir`.
pub(crate) fn holds_file_named(dir: &Path, name: &str) -> bool {
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .any(|e| e.file_name() == name || (e.path().is_dir() && holds_file_named(&e.path(), name)))
}

/// Runs prun on `main.rhai` in `dir` (its state there, its output dropped) and kills it
/// with SIGKILL once `file` exists there (a job writes it when it is running).
pub(crate) fn kill_prun_when(dir: &Path, file: &str) {
    let mut prun = Command::new(env!("CARGO_BIN_EXE_prun"))
        .arg("main.rhai")
        .current_dir(dir)
        .env("XDG_STATE_HOME", dir.join("state"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start prun");
    let t = Instant::now();
    while !dir.join(file).exists() {
        let ended = prun.try_wait().expect("wait");
        assert!(
            ended.is_none() && t.elapsed() < RUN_TIMEOUT,
            "{file} was not made (prun: {ended:?})"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    prun.kill().expect("kill prun");
    prun.wait().expect("wait");
}

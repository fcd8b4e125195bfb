//! `--json PATH`: the run report for scripts and monitoring (API.md section 1).
//!
//! `{"run": {script, args, start, end, duration, outcome}, "procs": [{name, state, start,
//! end, duration, exit_code, log, executor, resources, place, error, result}]}`: states
//! upper-case, times RFC 3339, durations in seconds, `mem` in bytes, results as JSON (a
//! value JSON cannot hold is shown as a string).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime};

use serde::{Serialize, Serializer};
use serde_json::Value;

use crate::event::{ProcSummary, State};
use crate::exit::Exit;

/// What a run did: how it ended, and every proc it scheduled. Serialized (serde), it is
/// the `--json` report: `{"run": {...}, "procs": [...]}` (times RFC 3339, durations in
/// seconds).
///
/// ```
/// # let state = tempfile::tempdir().unwrap();
/// let rt = prun::Runtime::builder()
///     .task_db(prun::TaskDb::Off)
/// #     .state_dir(state.path())
///     .build()?;
/// let report = rt.run_str(r#"proc("a", || 6 * 7); run("a");"#, [""; 0])?;
/// assert_eq!(report.run.outcome, prun::Outcome::Ok);
/// assert_eq!(report.procs[0].result, serde_json::json!(42));
/// let json = serde_json::to_value(&report).unwrap();
/// assert_eq!(json["procs"][0]["state"], "SUCCEEDED");
/// # Ok::<(), prun::Error>(())
/// ```
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct Report {
    /// The run as a whole.
    pub run: RunReport,
    /// Every proc the run scheduled, in the order they were scheduled.
    pub procs: Vec<ProcReport>,
    #[serde(skip)]
    exit: Exit,
}

impl Report {
    /// The exit status `prun` would end with after this run (0, 1, 2, 130; API.md
    /// section 1).
    pub fn exit_code(&self) -> i32 {
        self.exit as i32
    }

    /// The exit status, for the command line.
    pub(crate) fn exit(&self) -> Exit {
        self.exit
    }

    /// The proc named `name`, if the run scheduled it.
    pub fn proc(&self, name: &str) -> Option<&ProcReport> {
        self.procs.iter().find(|p| p.name == name)
    }
}

/// How a run ended, serialized as in the `--json` report (`"ok"`, `"script error"`...).
///
/// ```
/// # let state = tempfile::tempdir().unwrap();
/// let rt = prun::Runtime::builder()
///     .task_db(prun::TaskDb::Off)
/// #     .state_dir(state.path())
///     .build()?;
/// let report = rt.run_str(r#"proc("a", #{ cmd: ["false"] }); run("a");"#, [""; 0])?;
/// assert_eq!(report.run.outcome, prun::Outcome::Failed);
/// assert_eq!(report.run.outcome.as_str(), "failed");
/// assert_eq!(report.exit_code(), 1);
/// let report = rt.run_str(r#"throw "no";"#, [""; 0])?;
/// assert_eq!(report.run.outcome, prun::Outcome::ScriptError);
/// # Ok::<(), prun::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Outcome {
    /// Every scheduled proc succeeded, was skipped or was up to date.
    Ok,
    /// A proc failed, or the script stopped on a failed proc.
    Failed,
    /// Cancelled: Ctrl-C, a signal, [`crate::Cancel`], or a limit of the policy.
    Interrupted,
    /// The script is wrong (a runtime error at its top level).
    ScriptError,
    /// The arguments or targets are wrong.
    UsageError,
    /// `--lock`: another run of the script holds the lock.
    Locked,
    /// A bug in prun, or a native function that panicked: the run was ended cleanly.
    InternalError,
    /// Something else stopped the run before it started.
    Error,
}

impl Outcome {
    /// The outcome as the report writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Failed => "failed",
            Outcome::Interrupted => "interrupted",
            Outcome::ScriptError => "script error",
            Outcome::UsageError => "usage error",
            Outcome::Locked => "locked",
            Outcome::InternalError => "internal error",
            Outcome::Error => "error",
        }
    }
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Outcome {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// The run as a whole, in a [`Report`].
///
/// ```
/// # let state = tempfile::tempdir().unwrap();
/// let rt = prun::Runtime::builder()
///     .task_db(prun::TaskDb::Off)
/// #     .state_dir(state.path())
///     .build()?;
/// let report = rt.run_str(r#"proc("a", || 1); throw "stop";"#, ["a", "--", "x"])?;
/// let run = &report.run;
/// assert_eq!(run.script, "<string>");
/// assert_eq!(run.args, ["x"]); // the words after `--`, not the targets
/// assert!(run.end >= run.start);
/// assert_eq!(run.outcome, prun::Outcome::ScriptError);
/// assert!(run.error.as_deref().unwrap().contains("stop"));
///
/// // A script that declares its options: they are its words too, as given.
/// let declares = r#"let o = args(#{ level: #{ int: true }, pw: #{ secret: true } }); proc("a", || 1);"#;
/// let report = rt.run_str(declares, ["a", "--level", "3", "--pw", "hunter2"])?;
/// assert_eq!(report.run.args, ["--level", "3", "--pw", "***"]);
/// # Ok::<(), prun::Error>(())
/// ```
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct RunReport {
    /// The script's path (`<string>` for [`crate::Runtime::run_str`]).
    pub script: String,
    /// The script's own words as given: the options it declares with `args(#{...})`, with
    /// their values, and the words after `--`, in order (secret values shown as `***`);
    /// neither the targets nor prun's own flags. The task DB keeps the same words with
    /// the run. Without a declaration, they are the words after `--`, which `args()`
    /// returns.
    pub args: Vec<String>,
    /// When the run started.
    #[serde(serialize_with = "rfc3339")]
    pub start: SystemTime,
    /// When it ended.
    #[serde(serialize_with = "rfc3339")]
    pub end: SystemTime,
    /// From start to end.
    #[serde(serialize_with = "seconds")]
    pub duration: Duration,
    /// How it ended.
    pub outcome: Outcome,
    /// Why it stopped, when an error stopped it: the message prun printed.
    pub error: Option<String>,
}

/// One proc in a [`Report`].
///
/// ```
/// # let state = tempfile::tempdir().unwrap();
/// let rt = prun::Runtime::builder()
///     .task_db(prun::TaskDb::Off)
/// #     .state_dir(state.path())
///     .build()?;
/// let report = rt.run_str(
///     r#"proc("a", #{ cmd: ["sh", "-c", "echo hi; exit 3"] }); proc("b", || #{ n: 42 });"#,
///     ["a", "b"],
/// )?;
/// let a = report.proc("a").unwrap();
/// assert_eq!(a.state, prun::State::Failed);
/// assert_eq!(a.exit_code, Some(3));
/// assert!(a.error.as_deref().unwrap().contains("exited with code 3"));
/// assert!(std::fs::read_to_string(a.log.as_ref().unwrap()).unwrap().contains("hi"));
/// let b = report.proc("b").unwrap();
/// assert_eq!(b.result, serde_json::json!({ "n": 42 }));
/// assert!(b.duration.is_some() && b.executor.is_none());
/// # Ok::<(), prun::Error>(())
/// ```
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct ProcReport {
    /// The proc's name.
    pub name: String,
    /// Its state when the run ended.
    pub state: State,
    /// When its first attempt started.
    #[serde(serialize_with = "rfc3339_opt")]
    pub start: Option<SystemTime>,
    /// When it ended.
    #[serde(serialize_with = "rfc3339_opt")]
    pub end: Option<SystemTime>,
    /// From its first start to its end.
    #[serde(serialize_with = "seconds_opt")]
    pub duration: Option<Duration>,
    /// The exit code of its command, when it had one.
    pub exit_code: Option<i32>,
    /// Its log file, when it wrote one.
    pub log: Option<PathBuf>,
    /// The executor its commands ran on (`None`: this machine).
    pub executor: Option<String>,
    /// What one run of it needs (`resources:`), memory in bytes.
    pub resources: std::collections::BTreeMap<String, u64>,
    /// Where it ran, when on an executor: the SSH host, or the Slurm job.
    pub place: Option<String>,
    /// Why it failed.
    pub error: Option<String>,
    /// Its result as JSON (`null` when none; a value JSON cannot hold is shown as a
    /// string).
    pub result: Value,
}

fn rfc3339<S: Serializer>(t: &SystemTime, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&time(*t))
}

fn rfc3339_opt<S: Serializer>(t: &Option<SystemTime>, s: S) -> Result<S::Ok, S::Error> {
    match t {
        Some(t) => rfc3339(t, s),
        None => s.serialize_none(),
    }
}

fn seconds<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64())
}

fn seconds_opt<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
    match d {
        Some(d) => seconds(d, s),
        None => s.serialize_none(),
    }
}

/// What the report says about the run as a whole.
pub(crate) struct RunInfo<'a> {
    pub script: &'a Path,
    pub args: &'a [String],
    pub start: SystemTime,
    pub end: SystemTime,
    pub outcome: Outcome,
    /// Why the run stopped, when an error stopped it (a script error, a usage error, the
    /// lock held): the message prun printed.
    pub error: Option<&'a str>,
    /// The exit status of the run.
    pub exit: Exit,
}

/// `--json -`: the report goes to stdout, so prun's own lines go to stderr. Only the
/// command line sets it (`crate::cli::main`), for the whole process: a library run never
/// writes to stdout on its own.
static STDOUT_TAKEN: AtomicBool = AtomicBool::new(false);

/// True when the report is written to stdout (`--json -`).
pub(crate) fn stdout_taken() -> bool {
    STDOUT_TAKEN.load(Ordering::Relaxed)
}

/// Set once a line prun printed could not be written to stdout (see [`stdout_failed`]).
static STDOUT_FAILED: AtomicBool = AtomicBool::new(false);

/// A line prun printed could not be written to stdout. A reader that went away (`prun
/// ... | head`: EPIPE) is normal and says nothing; any other failure (a full disk under
/// `prun ... > out.txt`, `/dev/full`) is said once on stderr, since what prun prints
/// from then on is lost. The run goes on, and its exit status is its own.
pub(crate) fn stdout_failed(error: &std::io::Error) {
    if error.kind() != std::io::ErrorKind::BrokenPipe
        && !STDOUT_FAILED.swap(true, Ordering::Relaxed)
    {
        use std::io::Write as _;
        let _ = writeln!(
            std::io::stderr().lock(),
            "prun: warning: failed to write to stdout ({error}): what prun prints there is lost"
        );
    }
}

/// True when `path` is `-`, stdout.
pub(crate) fn is_stdout(path: &Path) -> bool {
    path.as_os_str() == "-"
}

/// `--json -`: from now on, prun's lines that would go to stdout go to stderr.
pub(crate) fn to_stdout() {
    STDOUT_TAKEN.store(true, Ordering::Relaxed);
}

/// Writes `bytes` to stdout, for text prun prints as its answer (`prun report`,
/// `history`, `log`, `list`, `graph`). A reader that stopped reading (`| head`) is no failure; any other error (a
/// full disk behind `> report.txt`) is: a report asked for and lost must not exit 0.
pub(crate) fn print_text(bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    match out.write_all(bytes).and_then(|()| out.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        done => done,
    }
}

fn time(t: SystemTime) -> String {
    humantime::format_rfc3339_millis(t).to_string()
}

/// The reports of a dry run's procs as what happened to them: the dry runner counts a
/// proc that would run as SUCCEEDED (so that its dependents follow in order), but none
/// ran. They are WANTED (asked for, not started), without times; those up to date, or
/// not run because a dependency is missing, keep their state.
pub(crate) fn as_dry_run(procs: &mut [ProcReport]) {
    for p in procs.iter_mut().filter(|p| p.state == State::Succeeded) {
        p.state = State::Wanted;
        (p.start, p.end, p.duration, p.result) = (None, None, None, Value::Null);
    }
}

pub(crate) fn proc_report(p: &ProcSummary) -> ProcReport {
    let end = p.started.zip(p.duration).map(|(s, d)| s + d);
    let result = p.result.as_ref().map_or(Value::Null, |r| {
        redacted(serde_json::to_value(r).unwrap_or_else(|_| Value::String(r.to_string())))
    });
    ProcReport {
        name: p.name.to_string(),
        state: p.state,
        start: p.started,
        end,
        duration: p.duration,
        exit_code: p.exit_code,
        log: p.log.clone(),
        executor: p.executor.clone(),
        resources: p
            .resources
            .iter()
            .map(|(k, n)| (k.to_string(), n))
            .collect(),
        place: p.place.clone(),
        error: p.error.clone(),
        result,
    }
}

/// A result with the run's secrets masked in its strings (a proc may return what holds
/// one: pg::start's server keeps its password for the other pg functions).
fn redacted(v: Value) -> Value {
    match v {
        Value::String(s) => Value::String(crate::redact::redact(&s).into_owned()),
        Value::Array(items) => Value::Array(items.into_iter().map(redacted).collect()),
        Value::Object(map) => {
            Value::Object(map.into_iter().map(|(k, v)| (k, redacted(v))).collect())
        }
        other => other,
    }
}

/// The report of a run.
pub(crate) fn build(run: &RunInfo, procs: &[ProcSummary]) -> Report {
    build_of(run, procs.iter().map(proc_report).collect())
}

/// The report of a run whose procs are reported already (see [`proc_report`]).
pub(crate) fn build_of(run: &RunInfo, procs: Vec<ProcReport>) -> Report {
    Report {
        run: RunReport {
            script: run.script.display().to_string(),
            args: crate::redact::redact_all(run.args),
            start: run.start,
            end: run.end,
            duration: run.end.duration_since(run.start).unwrap_or(Duration::ZERO),
            outcome: run.outcome,
            error: run.error.map(|e| crate::redact::redact(e).into_owned()),
        },
        procs,
        exit: run.exit,
    }
}

/// The report as JSON text, its keys in the order of docs/cli.md (`run` before `procs`,
/// a proc's `name` and `state` first); a result's own maps have their keys sorted.
pub(crate) fn render(report: &Report) -> String {
    serde_json::to_string_pretty(report).unwrap_or_else(|_| "{}".into())
}

/// The directory a report at `path` goes to (`.` for a bare file name).
fn dir_of(path: &Path) -> &Path {
    path.parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
}

/// Why a report cannot be written where `--json` says.
#[derive(Debug, thiserror::Error)]
pub(crate) enum DestinationError {
    #[error("--json: an empty path (`--json -` is stdout)")]
    Empty,
    #[error("--json {}: the directory {} does not exist", path.display(), crate::paths::shown(dir))]
    MissingDir { path: PathBuf, dir: PathBuf },
    #[error("--json {}: {} is not a directory", path.display(), crate::paths::shown(dir))]
    BelowFile { path: PathBuf, dir: PathBuf },
    #[error("--json {}: is a directory", crate::paths::shown(.0))]
    Dir(PathBuf),
    #[error("--json {}: is {what}, which the report would replace", path.display())]
    OwnFile { path: PathBuf, what: &'static str },
}

/// Checks, before the run, that a report can be written at `path`: it is not empty, its
/// directory exists, and `path` is neither a directory nor one of the run's `own` files
/// (the script, `--db`), each with what it is; `-` (stdout) always can.
pub(crate) fn check_destination(
    path: &Path,
    own: &[(PathBuf, &'static str)],
) -> Result<(), DestinationError> {
    if is_stdout(path) {
        return Ok(());
    }
    if path.as_os_str().is_empty() {
        return Err(DestinationError::Empty);
    }
    let dir = dir_of(path);
    if dir.exists() && !dir.is_dir() {
        return Err(DestinationError::BelowFile {
            path: path.to_path_buf(),
            dir: dir.to_path_buf(),
        });
    }
    if !dir.is_dir() {
        return Err(DestinationError::MissingDir {
            path: path.to_path_buf(),
            dir: dir.to_path_buf(),
        });
    }
    if path.is_dir() {
        return Err(DestinationError::Dir(path.to_path_buf()));
    }
    if let Some(&(_, what)) = own.iter().find(|(file, _)| same_place(path, file)) {
        return Err(DestinationError::OwnFile {
            path: path.to_path_buf(),
            what,
        });
    }
    Ok(())
}

/// Whether `a` and `b` are one file, or would be once made: the same name in the same
/// directory.
pub(crate) fn same_place(a: &Path, b: &Path) -> bool {
    let place = |p: &Path| Some(std::fs::canonicalize(dir_of(p)).ok()?.join(p.file_name()?));
    same_file(a, b) || place(a).is_some_and(|pa| place(b) == Some(pa))
}

/// Whether `a` and `b` name one existing file (through links, or two links of it).
fn same_file(a: &Path, b: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (std::fs::metadata(a), std::fs::metadata(b)) {
        (Ok(a), Ok(b)) => (a.dev(), a.ino()) == (b.dev(), b.ino()),
        _ => false,
    }
}

/// Writes the report atomically: into a new file in the same directory, then renamed
/// over `path`, so that a reader sees the old report or the new one, never a part. The
/// file gets mode 0644. A failure to write is the caller's to report. A `path` of
/// `-` is stdout; one that is not a regular file (a device, a FIFO) is written into.
pub(crate) fn write(path: &Path, report: &Report) -> std::io::Result<()> {
    use std::io::Write;
    if is_stdout(path) {
        let mut out = std::io::stdout().lock();
        out.write_all((render(report) + "\n").as_bytes())?;
        return out.flush();
    }
    replace_file(path, (render(report) + "\n").as_bytes())
}

/// Replaces the file at `path` with `bytes` atomically: a new file (mode 0644) in its
/// directory, renamed over it. A link to a regular file has its target replaced, the
/// link kept, but only a link of the user's or root's (see
/// [`crate::paths::trusted_write_target`]); what is not a regular file (`/dev/stdout`, a
/// FIFO, a terminal) is written into: renaming over it would replace the device or the
/// link with a file. A FIFO no process reads is an error, not a wait for a reader.
pub(crate) fn replace_file(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::{FileTypeExt, PermissionsExt};
    let target = crate::paths::trusted_write_target(path)?;
    if let Some(meta) = std::fs::metadata(&target).ok().filter(|m| !m.is_file()) {
        // Another user's FIFO in `/tmp` is theirs to read what comes out of it.
        crate::paths::not_planted_in_a_shared_directory(&target, &meta)?;
        let mut out =
            crate::paths::open_write_target(&target, std::fs::OpenOptions::new().write(true))
                .map_err(|e| match e.raw_os_error() {
                    Some(nix::libc::ENXIO) if meta.file_type().is_fifo() => std::io::Error::other(
                        format!("{} is a FIFO that no process reads", target.display()),
                    ),
                    _ => e,
                })?;
        crate::paths::not_planted_in_a_shared_directory(&target, &out.metadata()?)?;
        out.write_all(bytes)?;
        return out.flush();
    }
    let dir = dir_of(&target);
    let mut tmp = tempfile::Builder::new()
        .prefix(".prun-report-")
        .permissions(std::fs::Permissions::from_mode(0o644))
        .tempfile_in(dir)
        .map_err(|e| {
            // Named after the directory, not after the random name of the file.
            let text = e.to_string();
            let why = text.split(" at path ").next().unwrap_or_default();
            std::io::Error::new(
                e.kind(),
                format!("cannot create a file in {}: {why}", dir.display()),
            )
        })?;
    tmp.write_all(bytes)?;
    tmp.persist(&target).map_err(|e| e.error)?;
    Ok(())
}

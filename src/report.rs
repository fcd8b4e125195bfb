//! `--json PATH`: the run report for scripts and monitoring (API.md section 1).
//!
//! `{"run": {script, args, start, end, duration, outcome}, "procs": [{name, state, start,
//! end, duration, exit_code, log, executor, resources, place, error, result}]}`: states
//! upper-case, times RFC 3339, durations in seconds, `mem` in bytes, results as JSON (a
//! value JSON cannot hold is shown as a string).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime};

use serde_json::{Value, json};

use crate::event::ProcSummary;

/// What the report says about the run as a whole.
pub struct RunInfo<'a> {
    pub script: &'a Path,
    pub args: &'a [String],
    pub start: SystemTime,
    pub end: SystemTime,
    pub outcome: &'a str,
    /// Why the run stopped, when an error stopped it (a script error, a usage error, the
    /// lock held): the message prun printed.
    pub error: Option<&'a str>,
}

/// `--json -`: the report goes to stdout, so prun's own lines go to stderr.
static STDOUT_TAKEN: AtomicBool = AtomicBool::new(false);

/// True when the report is written to stdout (`--json -`).
pub fn stdout_taken() -> bool {
    STDOUT_TAKEN.load(Ordering::Relaxed)
}

/// True when `path` is `-`, stdout.
pub fn is_stdout(path: &Path) -> bool {
    path.as_os_str() == "-"
}

/// `--json -`: from now on, prun's lines that would go to stdout go to stderr.
pub fn to_stdout() {
    STDOUT_TAKEN.store(true, Ordering::Relaxed);
}

fn time(t: SystemTime) -> String {
    humantime::format_rfc3339_millis(t).to_string()
}

fn proc_json(p: &ProcSummary) -> Value {
    let end = p.started.zip(p.duration).map(|(s, d)| s + d);
    let result = p.result.as_ref().map_or(Value::Null, |r| {
        serde_json::to_value(r).unwrap_or_else(|_| Value::String(r.to_string()))
    });
    json!({
        "name": &*p.name,
        "state": p.state.as_str(),
        "start": p.started.map(time),
        "end": end.map(time),
        "duration": p.duration.map(|d| d.as_secs_f64()),
        "exit_code": p.exit_code,
        "log": p.log.as_ref().map(|l| l.display().to_string()),
        "executor": p.executor,
        "resources": p.resources.iter().map(|(k, n)| (k.to_string(), json!(n))).collect::<serde_json::Map<_, _>>(),
        "place": p.place,
        "error": p.error,
        "result": result,
    })
}

/// The report as JSON text.
pub fn render(run: &RunInfo, procs: &[ProcSummary]) -> String {
    let duration = run.end.duration_since(run.start).unwrap_or(Duration::ZERO);
    let doc = json!({
        "run": {
            "script": run.script.display().to_string(),
            "args": crate::redact::redact_all(run.args),
            "start": time(run.start),
            "end": time(run.end),
            "duration": duration.as_secs_f64(),
            "outcome": run.outcome,
            "error": run.error,
        },
        "procs": procs.iter().map(proc_json).collect::<Vec<_>>(),
    });
    serde_json::to_string_pretty(&doc).unwrap_or_else(|_| "{}".into())
}

/// The directory a report at `path` goes to (`.` for a bare file name).
fn dir_of(path: &Path) -> &Path {
    path.parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
}

/// Why a report cannot be written where `--json` says.
#[derive(Debug, thiserror::Error)]
pub enum DestinationError {
    #[error("--json {}: the directory {} does not exist", path.display(), dir.display())]
    NoDirectory { path: PathBuf, dir: PathBuf },
    #[error("--json {}: is a directory", .0.display())]
    IsDirectory(PathBuf),
}

/// Checks, before the run, that a report can be written at `path`: its directory exists
/// and `path` is not a directory; `-` (stdout) always can.
pub fn check_destination(path: &Path) -> Result<(), DestinationError> {
    if is_stdout(path) {
        return Ok(());
    }
    let dir = dir_of(path);
    if !dir.is_dir() {
        return Err(DestinationError::NoDirectory {
            path: path.to_path_buf(),
            dir: dir.to_path_buf(),
        });
    }
    if path.is_dir() {
        return Err(DestinationError::IsDirectory(path.to_path_buf()));
    }
    Ok(())
}

/// Writes the report atomically: into a new file in the same directory, then renamed
/// over `path`, so that a reader sees the old report or the new one, never a part. The
/// file gets mode 0644. A failure to write is reported, not fatal. A `path` of
/// `-` is stdout.
pub fn write(path: &Path, run: &RunInfo, procs: &[ProcSummary]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::PermissionsExt;
    if is_stdout(path) {
        let mut out = std::io::stdout().lock();
        out.write_all((render(run, procs) + "\n").as_bytes())?;
        return out.flush();
    }
    let mut tmp = tempfile::Builder::new()
        .prefix(".prun-report-")
        .permissions(std::fs::Permissions::from_mode(0o644))
        .tempfile_in(dir_of(path))?;
    tmp.write_all((render(run, procs) + "\n").as_bytes())?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

//! `--json PATH`: the run report for scripts and monitoring (API.md section 1).
//!
//! `{"run": {script, args, start, end, duration, outcome}, "procs": [{name, state, start,
//! end, duration, exit_code, log, error, result}]}`: states upper-case, times RFC 3339,
//! durations in seconds, results as JSON (a value JSON cannot hold is shown as a string).

use std::path::Path;
use std::time::{Duration, SystemTime};

use serde_json::{Value, json};

use crate::exec::ProcSummary;

/// What the report says about the run as a whole.
pub struct RunInfo<'a> {
    pub script: &'a Path,
    pub args: &'a [String],
    pub start: SystemTime,
    pub end: SystemTime,
    pub outcome: &'a str,
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
        },
        "procs": procs.iter().map(proc_json).collect::<Vec<_>>(),
    });
    serde_json::to_string_pretty(&doc).unwrap_or_else(|_| "{}".into())
}

/// Writes the report; a failure to write is reported, not fatal.
pub fn write(path: &Path, run: &RunInfo, procs: &[ProcSummary]) -> std::io::Result<()> {
    std::fs::write(path, render(run, procs) + "\n")
}

//! `prun report`: a recorded run read back from the task DB ([`timeline`]), its critical
//! path ([`critical`]), and its picture — a self-contained HTML page ([`html`]) or a few
//! lines of text ([`text`]).
//!
//! Not to be confused with `crate::report`, the `--json` report a run writes of itself.
//! This one is made afterwards, from the history, and needs no run in progress.

mod critical;
mod html;
mod text;
mod timeline;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use crate::error::Failure;
use crate::exit::Exit;
use crate::store::Store;
use critical::CriticalPath;
use timeline::Timeline;

/// What `prun report` is asked for.
#[derive(Debug, Clone)]
pub(crate) struct ReportRequest {
    pub script: PathBuf,
    /// The task DB (default: the script's).
    pub db: Option<PathBuf>,
    /// The run's id (default: the latest).
    pub run: Option<i64>,
    /// Where to write the HTML page; without it, text goes to stdout.
    pub html: Option<PathBuf>,
}

/// `prun report`: the critical path and the procs slower than usual of a recorded run,
/// as text or as an HTML page.
pub(crate) fn run_report(req: &ReportRequest) -> Result<Exit, Failure> {
    let path = match &req.db {
        Some(path) => path.clone(),
        None => crate::script::recorded_place(&req.script, "task_db", "tasks.db")?,
    };
    if crate::store::missing(&path) {
        return Err(Failure::no_db(path, &req.script, req.db.is_some()));
    }
    let store = Store::open_read_only(&path, Arc::new(|m: &str| errln!("prun: warning: {m}")))?;
    let key = crate::store::ScriptName::of(&req.script).key;
    let Some(recorded) = store.recorded_run(&key, req.run)? else {
        return Err(Failure::no_run(req.run, &req.script, path));
    };
    let unended = unended_procs(
        &req.script,
        recorded.row.alive.as_ref(),
        &recorded.row.started,
    );
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64());
    let timeline =
        Timeline::new(recorded.row, recorded.procs, &recorded.medians).with_unended(unended, now);
    let critical = CriticalPath::of(&timeline.procs);
    let own = [(&req.script, "the script itself"), (&path, "the task DB")];
    match &req.html {
        Some(out) => {
            if let Some((_, what)) = own.iter().find(|(f, _)| crate::report::same_place(out, f)) {
                return Err(Failure::Usage(format!(
                    "prun: report --html {}: is {what}, which the page would replace",
                    out.display()
                )));
            }
            write_html(out, &html::render(&timeline, &critical))?;
        }
        None => {
            let text = text::render(&timeline, &critical);
            crate::report::print_text(format!("{}\n", text.trim_end()).as_bytes()).map_err(
                |source| Failure::WriteHtml {
                    path: "-".into(),
                    source,
                },
            )?;
        }
    }
    Ok(Exit::Ok)
}

/// The procs a run that did not record its end has no row of yet, as its journal in the
/// script's state directory names them (the task DB gets a proc's row when it ends, and a
/// killed run's when the script next runs): those it is running now (`RUNNING`), while
/// its prun `pid` runs, or was running when it died (`DIED`). None when that journal is
/// not of that very run: its `O` line is its prun's start time, which a live process
/// with the pid must have and a dead run's must not, and a dead run's procs started
/// after the run did (`run_started`, as recorded); another user's run has none here.
fn unended_procs(
    script: &Path,
    alive: Option<&crate::store::Liveness>,
    run_started: &str,
) -> Vec<crate::store::ProcRecord> {
    use crate::store::Liveness;
    let (pid, died) = match alive {
        Some(Liveness::Running { pid }) => (*pid, false),
        Some(Liveness::Died {
            pid,
            restarted: false,
        }) => (*pid, true),
        _ => return Vec::new(),
    };
    let journal = crate::paths::script_state_dir(script)
        .join("groups")
        .join(pid.to_string());
    if !std::fs::symlink_metadata(&journal).is_ok_and(|m| m.is_file()) {
        return Vec::new();
    }
    // A line a full disk cut inside a character leaves the lines before it readable.
    let Ok(bytes) = std::fs::read(journal) else {
        return Vec::new();
    };
    let text = String::from_utf8_lossy(&bytes);
    let started = text
        .lines()
        .find_map(|l| l.strip_prefix("O "))
        .and_then(|w| w.parse::<u64>().ok());
    let Some(started) = started else {
        return Vec::new();
    };
    match (crate::procfs::start_time(pid) == Some(started), died) {
        (true, false) => crate::exec::crashed::running_procs(&text, "RUNNING"),
        (false, true) => crate::exec::crashed::died_procs(&text)
            .into_iter()
            .filter(|p| p.started.as_deref().is_some_and(|s| s >= run_started))
            .collect(),
        _ => Vec::new(),
    }
}

/// Writes the page to `path` as the `--json` report is written: `-` is stdout, a file is
/// replaced atomically (a page served from a directory is never seen half written).
fn write_html(path: &Path, page: &str) -> Result<(), Failure> {
    let fail = |source| Failure::WriteHtml {
        path: path.to_path_buf(),
        source,
    };
    if crate::report::is_stdout(path) {
        return crate::report::print_text(page.as_bytes()).map_err(fail);
    }
    crate::report::replace_file(path, page.as_bytes()).map_err(fail)
}

/// Why a run has no critical path: none of its procs ran, or those that did have no
/// recorded end yet (running now), or none at all (running when its prun died).
fn no_critical_path(bars: &[timeline::Bar]) -> &'static str {
    if bars.iter().any(|b| b.state == "RUNNING") {
        "no proc has ended yet"
    } else if bars.iter().any(|b| b.start.is_some()) {
        "no proc's end is recorded"
    } else {
        "no proc ran"
    }
}

/// The procs of a run's rows: `3 procs`, or in a watch, where a proc has a row for each
/// cycle it ran in, `3 procs run 5 times`.
fn procs_ran(bars: &[timeline::Bar]) -> String {
    match distinct_procs(bars) {
        n if n == bars.len() => procs_count(n),
        n => format!("{} run {} times", procs_count(n), bars.len()),
    }
}

/// How many procs the rows `bars` are of.
fn distinct_procs(bars: &[timeline::Bar]) -> usize {
    let names: std::collections::HashSet<&str> = bars.iter().map(|b| b.name.as_str()).collect();
    names.len()
}

/// `1 proc`, `3 procs`.
fn procs_count(n: usize) -> String {
    if n == 1 {
        "1 proc".into()
    } else {
        format!("{n} procs")
    }
}

/// Seconds as the report shows them: `0.42s`, `12.3s`, `2m05s`, `1h02m`.
fn secs(s: f64) -> String {
    if s < 10.0 {
        format!("{s:.2}s")
    } else if s < 60.0 {
        format!("{s:.1}s")
    } else {
        let whole = s.round() as u64;
        if whole < 3600 {
            format!("{}m{:02}s", whole / 60, whole % 60)
        } else {
            format!("{}h{:02}m", whole / 3600, (whole % 3600) / 60)
        }
    }
}

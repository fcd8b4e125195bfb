//! What the user sees. The scheduler reports through the small [`Reporter`] interface, so
//! that the plain line output here can be swapped for a live terminal display.

mod live;
mod output;
mod plain;
mod render;
pub(crate) use render::colours_only;
mod silent;
mod snippet;
mod tee;

pub(crate) use live::LiveReporter;
pub(crate) use plain::PlainReporter;
pub(crate) use silent::Silent;
pub(crate) use tee::Tee;

use std::time::Duration;

use crate::event::ProcSummary;

/// Counts of final states and the wall time of a run.
#[derive(Debug, Default, Clone)]
pub(crate) struct Summary {
    pub succeeded: usize,
    pub failed: usize,
    pub failed_dep: usize,
    pub skipped: usize,
    pub up_to_date: usize,
    pub not_run: usize,
    /// `--dry-run`: procs that would run (counted here, not as succeeded).
    pub would_run: Option<usize>,
    pub wall: Duration,
    /// The procs that took longest, longest first (at most three).
    pub slowest: Vec<(String, Duration)>,
    /// Nothing was scheduled and the run lists the targets instead: no summary line
    /// ("0 succeeded" would say nothing), only the end of the live display.
    pub lists_targets: bool,
}

impl Summary {
    /// How many procs the run scheduled (would-run procs of a dry run included).
    pub(crate) fn total(&self) -> usize {
        self.succeeded
            + self.failed
            + self.failed_dep
            + self.skipped
            + self.up_to_date
            + self.not_run
            + self.would_run.unwrap_or(0)
    }

    /// The counts as JSON, for the task DB's history.
    pub(crate) fn to_json(&self) -> String {
        serde_json::json!({
            "succeeded": self.succeeded,
            "failed": self.failed,
            "failed_dep": self.failed_dep,
            "skipped": self.skipped,
            "up_to_date": self.up_to_date,
            "not_run": self.not_run,
        })
        .to_string()
    }
}

/// After a command that had the terminal (an interactive proc's): when it left the cursor
/// after text it printed without a final newline (`printf 'Continue? '`), moves it to the
/// start of the next row, so that what prun prints next neither erases that text nor
/// follows it on its row; at the start of a row it stays there. As shells do before
/// their prompt: a row's width of spaces wraps to the next row only from a column past
/// the first, then a carriage return and an erase leave the cursor on an empty row.
/// Nothing is written when stdout is no terminal or its width is unknown.
pub(crate) fn end_partial_line() {
    use std::io::{IsTerminal, Write};
    let stdout = std::io::stdout();
    let cols = match crossterm::terminal::size() {
        Ok((cols, _)) if cols > 0 && stdout.is_terminal() => usize::from(cols),
        _ => return,
    };
    let mut out = stdout.lock();
    let _ = write!(out, "{:cols$}\r\x1b[K", "");
    let _ = out.flush();
}

/// The line saying that the top level stopped on a `wait` for procs that failed, whose
/// failure reports were printed as they failed: each proc (`proc "a" FAILED: ...`) with
/// the first line of its error, not the error's further lines (the quoted stderr, the log,
/// where it was thrown), which the report above holds.
pub(crate) fn stopped_line(failures: &str) -> String {
    let firsts: Vec<&str> = failures
        .lines()
        .filter(|l| !l.starts_with(char::is_whitespace))
        .map(|l| l.strip_suffix("; stderr ends with:").unwrap_or(l))
        .collect();
    format!("prun: the script stopped: {}", firsts.join("; "))
}

/// The counts of [`Summary::to_json`] as "3 succeeded, 1 failed".
pub(crate) fn counts_text(json: &str) -> String {
    let Ok(v) = serde_json::from_str::<serde_json::Value>(json) else {
        return String::new();
    };
    let mut parts = Vec::new();
    for (key, what) in [
        ("succeeded", "succeeded"),
        ("failed", "failed"),
        ("failed_dep", "failed dep"),
        ("skipped", "skipped"),
        ("up_to_date", "up to date"),
        ("not_run", "not run"),
    ] {
        let n = v.get(key).and_then(serde_json::Value::as_u64).unwrap_or(0);
        if n > 0 || key == "succeeded" {
            parts.push(format!("{n} {what}"));
        }
    }
    parts.join(", ")
}

/// Receives run events; implementations must be cheap (they run on the scheduler's path).
pub(crate) trait Reporter: Send + Sync {
    /// A proc started its first attempt. In watch mode a proc whose inputs changed while
    /// it ran starts again without having finished (its stale result is dropped).
    fn started(&self, name: &str);
    /// `--dry-run`: a proc would run this command (or closure).
    fn would_run(&self, name: &str, what: &str);
    /// A failed attempt will be retried.
    fn retrying(&self, name: &str, attempt: u32, error: &str);
    /// A proc reached a final state.
    fn finished(&self, f: &ProcSummary);
    /// A proc reported its progress (`ctx.progress(0.5)` or `ctx.progress("copying")`).
    fn progress(&self, proc: &str, text: &str);
    /// A command started (`shell`, `exec`, `pipe`), in a proc or at the top level. The
    /// line is formatted only by a reporter that shows it (`--verbose`): most runs start
    /// many commands and show none of them.
    fn command(&self, proc: Option<&str>, line: &dyn std::fmt::Display);
    /// A line printed by the script (`print`, `log_info`, ...).
    fn message(&self, text: &str);
    /// A problem that does not stop the run (the task DB is unusable, a cleanup failed).
    fn warning(&self, text: &str);
    /// A line for stderr while the run goes on (a script error, `debug`): a live display
    /// must move its area out of the way. Its escape sequences but colours are written out
    /// (`\e]0;t\x07`), since it may quote a name prun did not choose (a target, a path).
    fn eprint(&self, text: &str);
    /// The run ended.
    fn summary(&self, s: &Summary);
    /// Show a failed proc's whole log instead of its last lines.
    fn set_full_log(&self, on: bool);
    /// `set_options(#{ dynamic: false })`: stop drawing a live area (plain lines only).
    /// Displays that have none ignore it.
    fn set_dynamic(&self, _on: bool) {}
    /// `--output stream`: whole lines (each ending with a newline) that a proc's commands
    /// printed, to be shown at once, each prefixed with the proc's name.
    fn output(&self, _proc: &str, _lines: &str) {}
    /// `--output grouped`: a proc ended; show its log (`log`) as one group under a header
    /// naming it.
    fn group(&self, _proc: &str, _log: &std::path::Path) {}
    /// An interactive proc takes the terminal: draw nothing until [`Reporter::resume`].
    fn pause(&self) {}
    /// The interactive proc gave the terminal back.
    fn resume(&self) {}
    /// Watch mode starts a cycle that re-runs `procs` procs: a live display counts them
    /// and the time from here.
    fn cycle_started(&self, _procs: usize) {}
    /// A change during a cycle added `more` procs to it: a live display counts them too.
    fn cycle_grew(&self, _more: usize) {}
    /// A watch cycle ended: `line` gives its counts, `failed` when one of its procs
    /// failed or did not run. `-q` shows only the line of such a cycle (its summary).
    fn cycle_ended(&self, line: &str, _failed: bool) {
        self.message(line);
    }
    /// The events of one step of the scheduler were all reported (a proc's end and the
    /// starts it allowed, say): a reporter that holds their lines back writes them now, at
    /// once, before anything that step allowed runs.
    fn end_batch(&self) {}
}

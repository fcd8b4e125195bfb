//! Plain output: one line per finished proc, the error and last log lines of a failure,
//! and a summary. No escape codes, so it suits cron mail, pipes and CI logs.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use super::{Reporter, Summary};
use crate::exec::{Finished, State, log};

/// How many log lines to show under a failed proc.
const TAIL_LINES: usize = 10;

/// Writes plain lines to stdout.
#[derive(Debug, Default)]
pub struct PlainReporter {
    /// `-v`: also print a line when a proc starts.
    pub verbose: bool,
    /// `-q`: print only failures and the summary.
    pub quiet: bool,
    /// `--full-log-on-failure`: the whole log of a failed proc, not its last lines.
    pub full_log: AtomicBool,
}

fn secs(d: Option<Duration>) -> String {
    d.map_or_else(String::new, |d| format!(" ({:.2}s)", d.as_secs_f64()))
}

/// Formats one finished proc the way the plain reporter prints it: for a failure, the
/// last lines of its log, or the whole log with `full_log`.
pub fn format_finished(f: &Finished, full_log: bool) -> String {
    let mut out = format!("{:<10} {}{}", f.state.as_str(), f.name, secs(f.duration));
    if let Some(e) = &f.error {
        let mut lines = e.lines();
        if let Some(first) = lines.next() {
            out.push_str(": ");
            out.push_str(first);
        }
        for l in lines {
            out.push_str("\n           ");
            out.push_str(l);
        }
    }
    if f.state == State::Failed
        && let Some(path) = &f.log
    {
        let (tail, what) = if full_log {
            let text = std::fs::read_to_string(path).unwrap_or_default();
            (text.lines().map(str::to_string).collect(), "the log")
        } else {
            (log::tail(path, TAIL_LINES), "last lines of")
        };
        if !tail.is_empty() {
            out.push_str(&format!("\n           {what} {}:", path.display()));
            for l in tail {
                out.push_str("\n           | ");
                out.push_str(&l);
            }
        } else {
            out.push_str(&format!("\n           log: {}", path.display()));
        }
    }
    out
}

impl Reporter for PlainReporter {
    fn started(&self, name: &str) {
        if self.verbose {
            outln!("{:<10} {name}", "STARTED");
        }
    }

    fn would_run(&self, name: &str, what: &str) {
        outln!("{:<10} {name}: {what}", "WOULD RUN");
    }

    fn retrying(&self, name: &str, attempt: u32, error: &str) {
        if !self.quiet {
            let first = error.lines().next().unwrap_or("");
            outln!(
                "{:<10} {name} (attempt {attempt} failed: {first})",
                "RETRYING"
            );
        }
    }

    fn finished(&self, f: &Finished) {
        if self.quiet && !f.state.is_failure() {
            return;
        }
        outln!(
            "{}",
            format_finished(f, self.full_log.load(Ordering::Relaxed))
        );
    }

    fn progress(&self, proc: &str, text: &str) {
        if self.verbose {
            outln!("{:<10} {proc}: {text}", "PROGRESS");
        }
    }

    fn command(&self, proc: Option<&str>, line: &str) {
        if self.verbose {
            match proc {
                Some(p) => outln!("{:<10} {p}: $ {line}", ""),
                None => outln!("{:<10} $ {line}", ""),
            }
        }
    }

    fn set_full_log(&self, on: bool) {
        self.full_log.store(on, Ordering::Relaxed);
    }

    fn warning(&self, text: &str) {
        errln!("prun: warning: {text}");
    }

    fn message(&self, text: &str) {
        outln!("{text}");
    }

    fn summary(&self, s: &Summary) {
        outln!("{}", summary_line(s));
    }
}

/// The last line of a run: counts per state and the wall time.
pub fn summary_line(s: &Summary) -> String {
    if let Some(n) = s.would_run {
        let mut parts = vec![format!("{n} would run")];
        if s.up_to_date > 0 {
            parts.push(format!("{} up to date", s.up_to_date));
        }
        if s.failed + s.failed_dep > 0 {
            parts.push(format!(
                "{} could not be scheduled",
                s.failed + s.failed_dep
            ));
        }
        return format!("prun: dry run: {}", parts.join(", "));
    }
    let mut parts = vec![format!("{} succeeded", s.succeeded)];
    for (n, what) in [
        (s.failed, "failed"),
        (s.failed_dep, "not run (failed dependency)"),
        (s.skipped, "skipped"),
        (s.up_to_date, "up to date"),
        (s.not_run, "not run"),
    ] {
        if n > 0 {
            parts.push(format!("{n} {what}"));
        }
    }
    format!("prun: {} in {:.2}s", parts.join(", "), s.wall.as_secs_f64())
}

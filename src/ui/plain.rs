//! Plain output: one line per finished proc, the error and last log lines of a failure,
//! and a summary. No escape codes, so it suits cron mail, pipes and CI logs.

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
}

fn secs(d: Option<Duration>) -> String {
    d.map_or_else(String::new, |d| format!(" ({:.2}s)", d.as_secs_f64()))
}

/// Formats one finished proc the way the plain reporter prints it.
pub fn format_finished(f: &Finished) -> String {
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
        let tail = log::tail(path, TAIL_LINES);
        if !tail.is_empty() {
            out.push_str(&format!("\n           last lines of {}:", path.display()));
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
        outln!("{}", format_finished(f));
    }

    fn command(&self, proc: Option<&str>, line: &str) {
        if self.verbose {
            match proc {
                Some(p) => outln!("{:<10} {p}: $ {line}", ""),
                None => outln!("{:<10} $ {line}", ""),
            }
        }
    }

    fn warning(&self, text: &str) {
        errln!("prun: warning: {text}");
    }

    fn message(&self, text: &str) {
        outln!("{text}");
    }

    fn summary(&self, s: &Summary) {
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
        outln!("prun: {} in {:.2}s", parts.join(", "), s.wall.as_secs_f64());
    }
}

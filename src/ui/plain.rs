//! Plain output: one line per finished proc, the error and last log lines of a failure,
//! and a summary. No escape codes, so it suits cron mail, pipes and CI logs.

use std::fmt::Write as _;
use std::io::Write;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use super::{Reporter, Summary};
use crate::event::{ProcSummary, State};

/// How many log lines to show under a failed proc.
const TAIL_LINES: usize = 10;

/// Writes plain lines to stdout.
#[derive(Debug, Default)]
pub(crate) struct PlainReporter {
    /// `-v`: also print a line when a proc starts.
    pub verbose: bool,
    /// `-q`: print only failures, and the summary of a run where something failed;
    /// nothing at all when everything succeeded (the script's `print` and `log_*` lines
    /// included).
    pub quiet: bool,
    /// `--full-log-on-failure`: the whole log of a failed proc, not its last lines.
    pub full_log: AtomicBool,
    /// The STARTED and finished lines of the scheduler's current step, written at once
    /// when it ends ([`Reporter::end_batch`]): a proc's end and the start of the next one
    /// cost one write, not two. Any other line writes them first, so the order holds.
    pending: Mutex<String>,
}

impl PlainReporter {
    /// Plain lines with `-v` (`verbose`), `-q` (`quiet`) and `--full-log-on-failure`.
    /// `-q` wins over `-v`: it promises nothing at all when everything succeeds, and a
    /// failure's report names its command already.
    pub(crate) fn new(verbose: bool, quiet: bool, full_log: bool) -> PlainReporter {
        PlainReporter {
            verbose: verbose && !quiet,
            quiet,
            full_log: full_log.into(),
            pending: Mutex::default(),
        }
    }

    /// Adds a line to the current step's lines.
    fn hold(&self, line: std::fmt::Arguments<'_>) {
        let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        let _ = pending.write_fmt(line);
        pending.push('\n');
    }

    /// Writes the held lines.
    fn write_held(&self) {
        let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        if !pending.is_empty() {
            write_out(|out| out.write_all(pending.as_bytes()));
            pending.clear();
        }
    }
}

fn secs(d: Option<Duration>) -> String {
    d.map_or_else(String::new, |d| format!(" ({:.2}s)", d.as_secs_f64()))
}

/// Formats one finished proc the way the plain reporter prints it: for a failure, the
/// last lines of its log, or the whole log with `full_log`. The proc's error keeps its
/// colours only and the log's path has its control characters written out (a text
/// thrown with a file's name, a script named so); the log's lines are the command's
/// output, kept as it wrote them. (A proc's name has none: names are checked when procs
/// are defined.)
pub(super) fn format_finished(f: &ProcSummary, full_log: bool) -> String {
    let mut out = format!("{:<10} {}{}", f.state.as_str(), f.name, secs(f.duration));
    if let Some(place) = &f.place {
        out.push_str(&format!(" on {place}"));
    }
    let report = match &f.log {
        Some(path) if f.state == State::Failed => Some((path, log_report(path, full_log))),
        _ => None,
    };
    if let Some(e) = &f.error {
        let e = match &report {
            Some((path, report)) => without_what_the_report_quotes(e, path, report),
            None => e.into(),
        };
        let e = super::render::colours_only(&e);
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
    if let Some((_, report)) = report {
        out.push_str(&report);
    }
    out
}

/// A command's error quotes the last lines of its stderr and names its log (`...;
/// stderr ends with:`, `  | line`, `  log: PATH`), for a script that catches it. Above
/// the failure report that quotes that log, they would be printed twice: the log line
/// is dropped when it names the quoted log, and the stderr lines when the report quotes
/// every one of them.
fn without_what_the_report_quotes<'a>(
    error: &'a str,
    log: &std::path::Path,
    report: &str,
) -> std::borrow::Cow<'a, str> {
    const STDERR: &str = "; stderr ends with:";
    let log_line = format!("  log: {}", log.display());
    let mut lines: Vec<&str> = error.lines().collect();
    let Some(at) = lines.iter().position(|l| *l == log_line) else {
        return error.into();
    };
    lines.remove(at);
    let quoted = |l: &str| {
        report
            .split('\n')
            .any(|r| r.trim_start().strip_prefix("| ") == Some(l))
    };
    let stderr_from = (0..at)
        .rev()
        .take_while(|&i| lines[i].starts_with("  | "))
        .last();
    if let Some(i) = stderr_from
        && i > 0
        && lines[i - 1].ends_with(STDERR)
        && lines[i..at].iter().all(|l| quoted(&l[4..]))
    {
        lines.drain(i..at);
        lines[i - 1] = lines[i - 1].strip_suffix(STDERR).unwrap_or(lines[i - 1]);
    }
    lines.join("\n").into()
}

/// What a failure report shows of the log: the whole log with `full_log`; else the
/// excerpts around error, warning and failure lines; else the last lines.
/// Output that is not UTF-8 (a tool's Latin-1, binary data) is shown with replacement
/// characters, and an excerpt's line is cut after [`crate::shown::command`]'s limit.
fn log_report(path: &std::path::Path, full_log: bool) -> String {
    fn quoted(lines: &[String], cut: bool) -> String {
        lines
            .iter()
            .map(|l| {
                let l = crate::redact::redact(l);
                if cut {
                    format!("\n           | {}", crate::shown::command(&l))
                } else {
                    format!("\n           | {l}")
                }
            })
            .collect()
    }
    if full_log {
        let text = std::fs::read(path).unwrap_or_default();
        let text = String::from_utf8_lossy(&text);
        let all: Vec<String> = text.lines().map(str::to_string).collect();
        return format!(
            "\n           the log {}:{}",
            crate::shown::path(path),
            quoted(&all, false)
        );
    }
    let (text, skipped) = log_end(path);
    let mut excerpts = super::snippet::excerpts(&text);
    with_footer(&mut excerpts, &text);
    for e in &mut excerpts {
        e.first += skipped;
        e.last += skipped;
    }
    if excerpts.is_empty() {
        let lines: Vec<&str> = text.lines().collect();
        let tail: Vec<String> = lines[lines.len().saturating_sub(TAIL_LINES)..]
            .iter()
            .map(|l| l.to_string())
            .collect();
        if tail.is_empty() {
            return format!("\n           log: {}", crate::shown::path(path));
        }
        return format!(
            "\n           last lines of {}:{}",
            crate::shown::path(path),
            quoted(&tail, true)
        );
    }
    let mut out = format!("\n           excerpts of {}:", crate::shown::path(path));
    for e in &excerpts {
        out.push_str(&format!(
            "\n           --- lines {}-{} ---",
            e.first, e.last
        ));
        out.push_str(&quoted(&e.lines, true));
    }
    out
}

/// The most of a log that a failure report reads: its end. A command that printed
/// gigabytes would otherwise cost the report as much memory, and minutes.
const REPORT_READS: u64 = 8 << 20;

/// The end of a log, from its first whole line within the last [`REPORT_READS`] bytes,
/// and the number of lines before it (counted, not kept), so that excerpts keep their
/// line numbers. Output that is not UTF-8 gets replacement characters.
fn log_end(path: &std::path::Path) -> (String, usize) {
    use std::io::Read;
    let Ok(mut file) = std::fs::File::open(path) else {
        return (String::new(), 0);
    };
    let len = file.metadata().map_or(0, |m| m.len());
    let before = len.saturating_sub(REPORT_READS);
    let mut skipped = 0;
    let mut buf = vec![0; 1 << 16];
    let mut head = (&mut file).take(before);
    while let Ok(n @ 1..) = head.read(&mut buf) {
        skipped += buf[..n].iter().filter(|&&b| b == b'\n').count();
    }
    let mut end = Vec::new();
    let _ = file.read_to_end(&mut end);
    if before > 0 {
        // The line cut by the start of the end is left out, and counted; when what is
        // read of it is long (one line of megabytes, the command's last words at its
        // end), its end is kept after an ellipsis.
        let line = end.iter().position(|&b| b == b'\n').unwrap_or(end.len());
        if line > CUT_LINE_KEPT {
            end.drain(..line - CUT_LINE_KEPT);
            end.splice(..0, "…".bytes());
        } else {
            end.drain(..(line + 1).min(end.len()));
            skipped += 1;
        }
    }
    (String::from_utf8_lossy(&end).into_owned(), skipped)
}

/// How much of a long line cut by the start of a log's end a failure report keeps: its
/// last bytes (see [`log_end`]), fewer than the characters of a line a report shows,
/// which are its first.
const CUT_LINE_KEPT: usize = 512;

/// Adds the log's last line to the excerpts when it is prun's footer (`# exited with code
/// 3 (0.01s)`) and they do not show it: how the command ended belongs to every report.
fn with_footer(excerpts: &mut Vec<super::snippet::Excerpt>, text: &str) {
    let n = text.lines().count();
    let Some(footer) = text.lines().last().filter(|l| l.starts_with("# ")) else {
        return;
    };
    match excerpts.last_mut() {
        None => {}
        Some(e) if e.last >= n => {}
        Some(e) if e.last + 1 == n => {
            e.last = n;
            e.lines.push(footer.to_string());
        }
        Some(_) => excerpts.push(super::snippet::Excerpt {
            first: n,
            last: n,
            lines: vec![footer.to_string()],
        }),
    }
}

/// The time a plain line is printed, first on the line (UTC, to the second): cron mail
/// and CI logs show when each proc started and finished.
fn stamp() -> String {
    humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string()
}

impl Reporter for PlainReporter {
    fn started(&self, name: &str) {
        if !self.quiet {
            self.hold(format_args!("{} {:<10} {name}", stamp(), "STARTED"));
        }
    }

    fn would_run(&self, name: &str, what: &str) {
        self.write_held();
        outln!("{:<10} {name}: {what}", "WOULD RUN");
    }

    fn retrying(&self, name: &str, attempt: u32, error: &str) {
        self.write_held();
        if !self.quiet {
            let error = super::render::colours_only(error);
            let first = error.lines().next().unwrap_or("");
            outln!(
                "{} {:<10} {name} (attempt {attempt} failed: {first})",
                stamp(),
                "RETRYING"
            );
        }
    }

    fn finished(&self, f: &ProcSummary) {
        if self.quiet && !f.state.is_failure() {
            return;
        }
        self.hold(format_args!(
            "{} {}",
            stamp(),
            format_finished(f, self.full_log.load(Ordering::Relaxed))
        ));
    }

    fn progress(&self, proc: &str, text: &str) {
        self.write_held();
        if self.verbose {
            let text = crate::shown::visible(text);
            outln!("{} {:<10} {proc}: {text}", stamp(), "PROGRESS");
        }
    }

    fn command(&self, proc: Option<&str>, line: &dyn std::fmt::Display) {
        if self.verbose {
            self.write_held();
            match proc {
                Some(p) => outln!("{:<10} {p}: $ {line}", ""),
                None => outln!("{:<10} $ {line}", ""),
            }
        }
    }

    fn set_full_log(&self, on: bool) {
        self.full_log.store(on, Ordering::Relaxed);
    }

    fn end_batch(&self) {
        self.write_held();
    }

    fn resume(&self) {
        self.write_held();
        super::end_partial_line();
    }

    fn eprint(&self, text: &str) {
        self.write_held();
        errln!("{}", super::colours_only(text));
    }

    fn warning(&self, text: &str) {
        self.write_held();
        errln!("prun: warning: {}", super::colours_only(text));
    }

    fn message(&self, text: &str) {
        self.write_held();
        if !self.quiet {
            outln!("{text}");
        }
    }

    fn cycle_ended(&self, line: &str, failed: bool) {
        self.write_held();
        if failed || !self.quiet {
            outln!("{line}");
        }
    }

    fn output(&self, proc: &str, lines: &str) {
        self.write_held();
        if !self.quiet {
            write_out(|out| out.write_all(super::output::prefixed(proc, lines, None).as_bytes()));
        }
    }

    fn group(&self, proc: &str, log: &std::path::Path) {
        self.write_held();
        if !self.quiet {
            write_out(|out| super::output::write_group(out, proc, log, None));
        }
    }

    fn summary(&self, s: &Summary) {
        self.write_held();
        // `-q` is for cron, which mails what a job prints: nothing when all went well.
        if s.lists_targets || (self.quiet && s.failed + s.failed_dep + s.not_run == 0) {
            return;
        }
        // Under `-q` a failure's report is what went wrong and the counts, not timings.
        if let Some(line) = slowest_line(s).filter(|_| !self.quiet) {
            outln!("{line}");
        }
        outln!("{}", summary_line(s));
    }
}

/// Writes to prun's output (stderr when `--json -` took stdout) under its lock, so that
/// what `write` prints is never interleaved with another thread's lines.
fn write_out(write: impl FnOnce(&mut dyn Write) -> std::io::Result<()>) {
    let _ = if crate::report::stdout_taken() {
        write(&mut std::io::stderr().lock())
    } else {
        let mut out = std::io::stdout().lock();
        write(&mut out).and_then(|()| out.flush())
    };
}

/// `prun: slowest: build 12.30s, test 4.10s, lint 0.90s`, when more than one proc ran.
pub(super) fn slowest_line(s: &Summary) -> Option<String> {
    if s.slowest.len() < 2 {
        return None;
    }
    let parts: Vec<String> = s
        .slowest
        .iter()
        .map(|(n, d)| format!("{n} {:.2}s", d.as_secs_f64()))
        .collect();
    Some(format!("prun: slowest: {}", parts.join(", ")))
}

/// The last line of a run: counts per state and the wall time.
pub(super) fn summary_line(s: &Summary) -> String {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failure_report_reads_only_the_end_of_a_big_log_and_keeps_line_numbers() {
        let dir = tempfile::tempdir().expect("a temp dir");
        let path = dir.path().join("a.log");
        let line = "some log line here\n";
        let lines = (REPORT_READS as usize / line.len()) * 3;
        let mut text = String::from("error: early\n");
        text.push_str(&line.repeat(lines));
        text.push_str("error: late\n# exited with code 1 (0.1s)\n");
        std::fs::write(&path, &text).expect("write the log");
        let (end, skipped) = log_end(&path);
        assert!(end.len() as u64 <= REPORT_READS, "read {} bytes", end.len());
        assert!(end.starts_with(line), "the cut line is left out");
        assert_eq!(skipped + end.lines().count(), lines + 3);
        let report = log_report(&path, false);
        let last = lines + 2;
        assert!(
            report.contains(&format!("--- lines {}-{} ---", last - 2, last + 1)),
            "{report}"
        );
        assert!(report.contains("| error: late"), "{report}");
        // One line longer than what is read keeps its end.
        let mut text = "x".repeat(REPORT_READS as usize + 100);
        text.push_str("the last words\n# exited with code 1 (0.1s)\n");
        std::fs::write(&path, &text).expect("write the log");
        let (end, skipped) = log_end(&path);
        assert_eq!(skipped, 0);
        assert!(end.starts_with("…xxx"), "{:?}", &end[..20]);
        assert!(end.ends_with("xxxthe last words\n# exited with code 1 (0.1s)\n"));
        assert_eq!(
            end.len(),
            "…".len() + CUT_LINE_KEPT + "\n# exited with code 1 (0.1s)\n".len()
        );
        let report = log_report(&path, false);
        assert!(report.contains("the last words"), "{report}");
        // A small log is read whole.
        std::fs::write(&path, "a\nb\n").expect("write the log");
        assert_eq!(log_end(&path), ("a\nb\n".to_string(), 0));
    }
}

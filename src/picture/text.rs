//! `prun report` without `--html`: the critical path and the procs most slower than usual,
//! as text.

use std::fmt::Write as _;

use super::critical::CriticalPath;
use super::timeline::Timeline;
use super::{procs_ran, secs};

/// How many of the procs slower than usual are listed.
const SLOWEST: usize = 5;

/// The text report of a run.
pub(super) fn render(t: &Timeline, path: &CriticalPath) -> String {
    let mut out = String::new();
    let parallel = t
        .parallel
        .map_or("not recorded".to_string(), |p| p.to_string());
    let mut did_not_run = match t.up_to_date {
        0 => String::new(),
        n => format!(", {n} up to date"),
    };
    if t.not_run > 0 {
        let _ = write!(did_not_run, ", {} not run", t.not_run);
    }
    let _ = writeln!(
        out,
        "run {} of {}: {}, {}, {}{did_not_run}, at most {} running at once (limit {parallel})",
        t.id,
        t.script,
        t.outcome.as_deref().unwrap_or("unfinished"),
        secs(t.total),
        procs_ran(&t.procs),
        t.peak_parallel(),
    );
    if t.procs.is_empty() {
        let _ = writeln!(out, "\nno proc ran: no critical path");
        return out;
    }
    if path.procs.is_empty() {
        let _ = writeln!(out, "\nno proc ran: no critical path");
    } else {
        let _ = writeln!(out, "\ncritical path ({}):", secs(path.total));
        let width = path
            .procs
            .iter()
            .map(|&i| t.procs[i].name.chars().count())
            .max()
            .unwrap_or(0);
        for &i in &path.procs {
            let b = &t.procs[i];
            let waited = if b.waited >= 0.005 {
                format!(", waited {}", secs(b.waited))
            } else {
                String::new()
            };
            // A local slot is a number; an executor's place is the host or the Slurm job.
            let place = match b.place.as_deref() {
                Some(p) if p.parse::<u64>().is_err() => format!(" on {p}"),
                _ => String::new(),
            };
            let _ = writeln!(
                out,
                "  {:<width$}  {:>8}  {}{place}{waited}",
                b.name,
                secs(b.duration().unwrap_or(0.0)),
                b.state,
            );
        }
    }
    let slow = t.slowest();
    if slow.is_empty() {
        let compared = t.procs.iter().any(|b| b.median.is_some());
        let why = if compared {
            "no proc was slower than usual"
        } else {
            "no earlier runs of these procs to compare with"
        };
        let _ = writeln!(out, "\n{why}");
    } else {
        let _ = writeln!(
            out,
            "\nslower than usual (median of earlier successful runs):"
        );
        let width = slow
            .iter()
            .take(SLOWEST)
            .map(|b| b.name.chars().count())
            .max()
            .unwrap_or(0);
        for b in slow.iter().take(SLOWEST) {
            let _ = writeln!(
                out,
                "  {:<width$}  {:>8}  median {}  ({:.1}x)",
                b.name,
                secs(b.duration().unwrap_or(0.0)),
                secs(b.median.unwrap_or(0.0)),
                b.slower().unwrap_or(0.0),
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unfinished_run_says_so_and_that_its_limit_is_not_recorded() {
        // The limit is recorded at the run's end: a run in progress showed "limit ?".
        let t = Timeline {
            id: 2,
            script: "s.rhai".into(),
            ..Default::default()
        };
        let text = render(&t, &CriticalPath::of(&t.procs));
        assert!(
            text.starts_with("run 2 of s.rhai: unfinished, ")
                && text.contains("(limit not recorded)"),
            "{text}"
        );
    }
}

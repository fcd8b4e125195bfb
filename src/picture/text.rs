//! `prun report` without `--html`: the critical path and the procs most slower than usual,
//! as text.

use std::fmt::Write as _;

use unicode_width::UnicodeWidthStr;

use super::critical::CriticalPath;
use super::timeline::Timeline;
use super::{no_critical_path, procs_ran, secs};

/// How many of the procs slower than usual are listed.
const SLOWEST: usize = 5;

/// The widest the names' column gets, in terminal columns: a longer name pushes its own
/// line's figures to the right, not every line's.
const NAME_COLUMNS: usize = 40;

/// The text report of a run, for a terminal: a control character from the DB (in the
/// script's file name, a host's) is written out (`\e`), not sent to it.
pub(super) fn render(t: &Timeline, path: &CriticalPath) -> String {
    crate::shown::visible(&lines(t, path)).into_owned()
}

/// Why a run stopped, `error: ` and the message prun printed, its later lines indented.
pub(crate) fn stopped_by(error: &str) -> String {
    format!("error: {}", error.trim_end().replace('\n', "\n  "))
}

/// The procs whose end is not known: those its prun was running when it died (rows
/// `DIED`, recorded by the next run of the script), and those a run still going is
/// running now (`RUNNING`, from its journal): when each started, and its log.
fn unended_procs(out: &mut String, t: &Timeline) {
    for (state, heading) in [
        (
            "DIED",
            "running when its prun died (their end is not known)",
        ),
        ("RUNNING", "running now (their end is not known yet)"),
    ] {
        let procs: Vec<_> = t.procs.iter().filter(|b| b.state == state).collect();
        if procs.is_empty() {
            continue;
        }
        let _ = writeln!(out, "\n{heading}:");
        let width = name_width(procs.iter().map(|b| b.name.as_str()));
        for b in procs {
            let started = b
                .start
                .map_or("-".to_string(), |s| format!("started at {}", secs(s)));
            let log = b
                .log
                .as_deref()
                .map_or(String::new(), |l| format!(", log {l}"));
            let _ = writeln!(out, "  {}  {state}  {started}{log}", padded(&b.name, width));
        }
    }
}

/// The text report's lines, as recorded.
fn lines(t: &Timeline, path: &CriticalPath) -> String {
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
        t.outcome_label(),
        secs(t.total),
        procs_ran(&t.procs),
        t.peak_parallel(),
    );
    if let Some(alive) = &t.alive {
        let _ = writeln!(out, "{}", alive.line(t.id));
    }
    if let Some(error) = &t.error {
        let _ = writeln!(out, "{}", stopped_by(error));
    }
    unended_procs(&mut out, t);
    if t.procs.is_empty() {
        let _ = writeln!(out, "\nno proc ran: no critical path");
        return out;
    }
    if path.procs.is_empty() {
        let _ = writeln!(out, "\n{}: no critical path", no_critical_path(&t.procs));
    } else {
        let _ = writeln!(out, "\ncritical path ({}):", secs(path.total));
        let width = name_width(path.procs.iter().map(|&i| t.procs[i].name.as_str()));
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
            let attempts = match b.segments.len() {
                0 | 1 => String::new(),
                n => format!(", {n} attempts"),
            };
            // It waited for the lower wave of the link before it, not on a dependency.
            let wave = if path.after_wave.contains(&i) {
                " (wave)"
            } else {
                ""
            };
            let _ = writeln!(
                out,
                "  {}  {:>8}  {}{place}{attempts}{waited}{wave}",
                padded(&b.name, width),
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
        let width = name_width(slow.iter().take(SLOWEST).map(|b| b.name.as_str()));
        for b in slow.iter().take(SLOWEST) {
            let _ = writeln!(
                out,
                "  {}  {:>8}  median {}  ({:.1}x)",
                padded(&b.name, width),
                secs(b.duration().unwrap_or(0.0)),
                secs(b.median.unwrap_or(0.0)),
                b.slower().unwrap_or(0.0),
            );
        }
    }
    out
}

/// The width of the names' column: the widest name's, at most [`NAME_COLUMNS`].
fn name_width<'a>(names: impl Iterator<Item = &'a str>) -> usize {
    names
        .map(|n| n.width())
        .max()
        .unwrap_or(0)
        .min(NAME_COLUMNS)
}

/// `name` padded with spaces to `width` terminal columns (a wide character, CJK or emoji,
/// takes two).
fn padded(name: &str, width: usize) -> String {
    format!("{name}{}", " ".repeat(width.saturating_sub(name.width())))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::picture::timeline::Bar;

    #[test]
    fn a_long_name_widens_only_its_own_line_and_wide_characters_count_twice() {
        let bar = |name: &str, start: f64, deps: &[&str]| Bar {
            name: name.into(),
            state: "SUCCEEDED".into(),
            start: Some(start),
            end: Some(start + 1.0),
            deps: deps.iter().map(|d| d.to_string()).collect(),
            ..Default::default()
        };
        let long = format!("step::{}", "x".repeat(200));
        let procs = vec![
            bar(&long, 0.0, &[]),
            bar("構築", 1.0, &[&long]),
            bar("b", 2.0, &["構築"]),
        ];
        let t = Timeline {
            total: 3.0,
            procs,
            ..Default::default()
        };
        let text = render(&t, &CriticalPath::of(&t.procs));
        let rows: Vec<&str> = text.lines().filter(|l| l.ends_with("SUCCEEDED")).collect();
        assert_eq!(rows.len(), 3, "{text}");
        assert_eq!(rows[0], format!("  {long}     1.00s  SUCCEEDED"));
        let pad = " ".repeat(NAME_COLUMNS);
        assert_eq!(rows[1], format!("  構築{}     1.00s  SUCCEEDED", &pad[4..]));
        assert_eq!(rows[2], format!("  b{}     1.00s  SUCCEEDED", &pad[1..]));
    }

    #[test]
    fn control_characters_in_the_script_s_name_are_written_out() {
        let t = Timeline {
            id: 1,
            script: "ev\x1b]0;owned\x07il.rhai".into(),
            ..Default::default()
        };
        let text = render(&t, &CriticalPath::of(&t.procs));
        assert!(
            text.starts_with("run 1 of ev\\e]0;owned\\x07il.rhai: unfinished, "),
            "{text:?}"
        );
    }

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

    #[test]
    fn a_run_whose_procs_have_not_ended_does_not_say_none_ran() {
        // Its one proc running now (or running when its prun died) has no end, so there
        // is no critical path; "no proc ran" was shown above the proc running.
        let at = |state: &str| Timeline {
            id: 1,
            script: "s.rhai".into(),
            procs: vec![Bar {
                name: "only".into(),
                state: state.into(),
                start: Some(0.1),
                ..Default::default()
            }],
            ..Default::default()
        };
        for (state, want) in [
            ("RUNNING", "\nno proc has ended yet: no critical path\n"),
            ("DIED", "\nno proc's end is recorded: no critical path\n"),
        ] {
            let t = at(state);
            let text = render(&t, &CriticalPath::of(&t.procs));
            assert!(text.contains(want), "{text}");
            let page = crate::picture::html::render(&t, &CriticalPath::of(&t.procs));
            let none = want.trim().replace(": no critical path", "");
            assert!(page.contains(&format!("none: {none}")), "{page}");
        }
    }

    #[test]
    fn a_retried_proc_on_the_critical_path_says_how_many_attempts_it_took() {
        use crate::picture::timeline::Segment;
        let segment = |start: f64, end: f64| Segment {
            start,
            end,
            place: "1".into(),
            error: None,
        };
        let procs = vec![Bar {
            name: "flaky".into(),
            state: "SUCCEEDED".into(),
            start: Some(0.0),
            end: Some(3.0),
            segments: vec![segment(0.0, 1.0), segment(1.5, 2.0), segment(2.5, 3.0)],
            place: Some("1".into()),
            ..Default::default()
        }];
        let t = Timeline {
            total: 3.0,
            procs,
            ..Default::default()
        };
        let text = render(&t, &CriticalPath::of(&t.procs));
        assert!(
            text.contains("  flaky     3.00s  SUCCEEDED, 3 attempts\n"),
            "{text}"
        );
    }
}

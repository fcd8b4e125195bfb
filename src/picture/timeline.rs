//! A recorded run as `prun report` draws it: the run's header and one [`Bar`] per proc,
//! with times in seconds since the run started. Read from the task DB; nothing here
//! draws or prints.

use std::collections::HashMap;
use std::time::SystemTime;

use crate::store::{Liveness, ProcRecord, RunRow};

/// A proc is slower than usual when it took more than this many times its median...
pub(super) const SLOWER_RATIO: f64 = 1.5;
/// ...and at least this many seconds more (a 10 ms proc taking 20 ms is noise).
pub(super) const SLOWER_MARGIN: f64 = 0.05;

/// One attempt of a proc, in seconds since the run started.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Segment {
    pub start: f64,
    pub end: f64,
    /// Where it ran (a local slot number, a host).
    pub place: String,
    /// How it failed, for an attempt that was retried.
    pub error: Option<String>,
}

/// One proc of the run.
#[derive(Debug, Clone, Default, PartialEq)]
pub(super) struct Bar {
    pub name: String,
    pub state: String,
    /// When its first attempt started; `None` for a proc that never ran (FAILED_DEP).
    pub start: Option<f64>,
    /// When it reached its final state.
    pub end: Option<f64>,
    pub segments: Vec<Segment>,
    /// Seconds it was ready but not started (a held lock, a lower wave, no free slot).
    pub waited: f64,
    /// Where its last attempt ran.
    pub place: Option<String>,
    pub deps: Vec<String>,
    pub exit_code: Option<i32>,
    pub error: Option<String>,
    pub log: Option<String>,
    /// The median of its durations in earlier successful runs.
    pub median: Option<f64>,
    /// The template of the proto it was made from (`encode::[f]`).
    pub proto: Option<String>,
    /// The watch cycle it ran in (0: the first run, and every row of a run that is no
    /// watch or was recorded before the history kept cycles).
    pub cycle: u32,
    /// Its wave; `None` for a row recorded before the history kept waves.
    pub wave: Option<i64>,
}

impl Bar {
    /// From its first start to its final state (retries included); `None` when it never
    /// ran.
    pub(super) fn duration(&self) -> Option<f64> {
        Some(self.end? - self.start?)
    }

    /// How many times its median it took, when that makes it slower than usual.
    pub(super) fn slower(&self) -> Option<f64> {
        let (d, m) = (self.duration()?, self.median?);
        (d > m * SLOWER_RATIO && d - m >= SLOWER_MARGIN).then(|| d / m.max(1e-3))
    }

    /// The family it is collapsed into among many procs: its proto, placeholders shown
    /// as `*` (`encode::a.wav` of `encode::[f]` is in `encode::*`); for a proc made by
    /// `proc` (or recorded before protos were), its name up to the last `::`. `None` for
    /// such a name without `::`.
    pub(super) fn family(&self) -> Option<String> {
        if let Some(template) = &self.proto {
            return Some(starred(template));
        }
        self.name
            .rfind("::")
            .map(|i| format!("{}::*", &self.name[..i]))
    }
}

/// The run: its header and its procs, in the order they finished.
#[derive(Debug, Clone, Default)]
pub(super) struct Timeline {
    pub id: i64,
    pub script: String,
    pub args: Vec<String>,
    /// When the run started (RFC 3339).
    pub started: String,
    pub outcome: Option<String>,
    /// For a run that did not record its end: whether it is still going.
    pub alive: Option<Liveness>,
    /// Why it stopped, when an error stopped it (secrets masked).
    pub error: Option<String>,
    /// Seconds from its start to its end, as measured on a steady clock (or to the last
    /// proc's end, for a run that did not record its end).
    pub total: f64,
    /// The parallel limit it ended with.
    pub parallel: Option<i64>,
    /// How many procs were up to date: they did not run, and the DB keeps no row of them.
    pub up_to_date: u64,
    /// How many scheduled procs never started because the run stopped first (`--fail-fast`,
    /// Ctrl-C, a script error): the DB keeps no row of them either.
    pub not_run: u64,
    pub procs: Vec<Bar>,
}

impl Timeline {
    /// The run `row` with its recorded procs and their medians over earlier runs.
    pub(super) fn new(
        row: RunRow,
        procs: Vec<ProcRecord>,
        medians: &HashMap<String, f64>,
    ) -> Timeline {
        let origin = time(&row.started).unwrap_or(0.0);
        let procs: Vec<Bar> = procs
            .into_iter()
            .map(|p| {
                let median = medians.get(&p.name).copied().and_then(seconds);
                bar(p, origin, median)
            })
            .collect();
        let last = procs.iter().filter_map(|b| b.end).fold(0.0, f64::max);
        let procs = procs.into_iter().map(|b| died_until(b, last)).collect();
        Timeline {
            id: row.id,
            script: row.script,
            args: serde_json::from_str(&row.args).unwrap_or_default(),
            started: row.started,
            outcome: row.outcome,
            alive: row.alive,
            error: row.error,
            total: row.duration.and_then(seconds).unwrap_or(last),
            parallel: row.parallel,
            up_to_date: count(row.counts.as_deref(), "up_to_date"),
            not_run: count(row.counts.as_deref(), "not_run"),
            procs,
        }
    }

    /// Adds the procs whose end is not known, as the run's journal names them (a proc's
    /// row is written when it ends): the `RUNNING` ones of a run still going, drawn from
    /// their start to `now` (seconds since the Unix epoch, which the run's total then
    /// reaches), and the `DIED` ones of a run whose prun was killed, drawn to the run's
    /// last recorded end as their rows are once its next run records them. A proc that
    /// has a row for that start (it ended between the two reads, or the next run recorded
    /// it) is not added again.
    pub(super) fn with_unended(mut self, procs: Vec<ProcRecord>, now: f64) -> Timeline {
        let origin = time(&self.started).unwrap_or(0.0);
        let now = now - origin;
        let last = self.procs.iter().filter_map(|b| b.end).fold(0.0, f64::max);
        let mut running = false;
        for p in procs {
            let mut b = bar(p, origin, None);
            let Some(cut) = b.start else { continue };
            let recorded = self.procs.iter().any(|r| {
                r.name == b.name
                    && r.cycle == b.cycle
                    && (r.end.is_some_and(|e| e >= cut) || r.start.is_some_and(|s| s >= cut))
            });
            if recorded {
                continue;
            }
            // The journal has its start to the millisecond, cut down: it started by the
            // end of that millisecond, and after the recorded end of what it followed.
            let start = cut + 0.001;
            b.start = Some(start);
            let end = if b.state == "RUNNING" {
                running = true;
                now
            } else {
                last
            };
            b.segments = vec![Segment {
                start,
                end: end.max(start),
                place: String::new(),
                error: b.error.clone(),
            }];
            self.procs.push(b);
        }
        if running {
            self.total = self.total.max(now);
        }
        self
    }

    /// Its outcome as shown: the one recorded, else `running`, `died` or `unknown`.
    pub(super) fn outcome_label(&self) -> &str {
        crate::store::outcome_label(self.outcome.as_deref(), self.alive.as_ref())
    }

    /// Seconds from the run's start to the last thing drawn: its total, or the last end
    /// of a proc when the system clock was set forward during the run.
    pub(super) fn span(&self) -> f64 {
        self.procs
            .iter()
            .flat_map(|b| b.end.into_iter().chain(b.segments.iter().map(|s| s.end)))
            .fold(self.total, f64::max)
    }

    /// The most attempts that ran at the same time on this machine, as `-j` bounds them:
    /// those on an executor (whose place is a host or a Slurm job, not a local slot) are
    /// bounded by the executor instead.
    pub(super) fn peak_parallel(&self) -> usize {
        let mut edges: Vec<(f64, i32)> = self
            .procs
            .iter()
            .flat_map(|b| &b.segments)
            .filter(|s| s.place.is_empty() || s.place.parse::<u64>().is_ok())
            .flat_map(|s| [(s.start, 1), (s.end, -1)])
            .collect();
        // At equal times an end comes before a start: one follows the other on a slot.
        edges.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        let (mut now, mut peak) = (0i32, 0i32);
        for (_, d) in edges {
            now += d;
            peak = peak.max(now);
        }
        peak as usize
    }

    /// The procs slower than usual, most seconds over their median first.
    pub(super) fn slowest(&self) -> Vec<&Bar> {
        let mut slow: Vec<&Bar> = self.procs.iter().filter(|b| b.slower().is_some()).collect();
        let excess = |b: &Bar| b.duration().unwrap_or(0.0) - b.median.unwrap_or(0.0);
        slow.sort_by(|a, b| excess(b).total_cmp(&excess(a)));
        slow
    }
}

/// One of a run's recorded counts per state (`{"up_to_date": 3, ...}`); 0 when not recorded.
fn count(counts: Option<&str>, key: &str) -> u64 {
    counts
        .and_then(|c| serde_json::from_str::<serde_json::Value>(c).ok())
        .and_then(|c| c[key].as_u64())
        .unwrap_or(0)
}

/// A proto's template with each `[placeholder]` written `*`.
fn starred(template: &str) -> String {
    let mut out = String::with_capacity(template.len());
    let mut inside = false;
    for c in template.chars() {
        match c {
            '[' if !inside => inside = true,
            ']' if inside => {
                inside = false;
                out.push('*');
            }
            _ if inside => {}
            c => out.push(c),
        }
    }
    out
}

/// A recorded number of seconds, unless it is none a run could have measured (infinite,
/// or negative: a DB edited by hand), which would stretch the picture without end.
fn seconds(s: f64) -> Option<f64> {
    (s.is_finite() && s >= 0.0).then_some(s)
}

/// An RFC 3339 time in seconds since the Unix epoch.
fn time(text: &str) -> Option<f64> {
    let t = humantime::parse_rfc3339(text).ok()?;
    Some(t.duration_since(SystemTime::UNIX_EPOCH).ok()?.as_secs_f64())
}

/// A recorded attempt, as `exec` writes it (times in seconds since the Unix epoch).
#[derive(serde::Deserialize)]
struct RecordedSegment {
    start: f64,
    end: Option<f64>,
    place: Option<String>,
    error: Option<String>,
}

/// How far a proc's recorded end may be from its start plus its measured duration before
/// the system clock is taken to have jumped while it ran: both times are recorded to the
/// millisecond, a moment apart.
const CLOCK_SLACK: f64 = 0.05;

/// A proc its prun was running when it died (`DIED`, its end not known): drawn from its
/// start to `last`, the last end recorded in the run, the least it ran.
fn died_until(mut b: Bar, last: f64) -> Bar {
    if b.state == "DIED"
        && b.segments.is_empty()
        && let Some(start) = b.start
    {
        b.segments.push(Segment {
            start,
            end: last.max(start),
            place: b.place.clone().unwrap_or_default(),
            error: b.error.clone(),
        });
    }
    b
}

/// A proc's row as a bar. Its start and end are times of day (the system clock), its
/// duration was measured on a steady clock. When they disagree (its end is before its
/// start, or more than [`CLOCK_SLACK`] from its start plus its duration), the system clock
/// was set back or forward while it ran (NTP, a resumed laptop): its end is then its
/// start plus its duration, and its attempts are kept within that span, the last one
/// ending with it.
fn bar(p: ProcRecord, origin: f64, median: Option<f64>) -> Bar {
    let start = p.started.as_deref().and_then(time).map(|t| t - origin);
    let recorded_end = p.ended.as_deref().and_then(time).map(|t| t - origin);
    let measured_end = start.zip(p.duration.and_then(seconds)).map(|(s, d)| s + d);
    let jumped = match (start, recorded_end) {
        (Some(s), Some(e)) => e < s || measured_end.is_some_and(|m| (e - m).abs() > CLOCK_SLACK),
        _ => false,
    };
    let end = match (jumped, recorded_end, start) {
        (false, Some(e), _) => Some(e),
        (false, None, _) => measured_end,
        (true, _, s) => measured_end.or(s),
    };
    let recorded: Vec<RecordedSegment> = p
        .segments
        .as_deref()
        .and_then(|s| serde_json::from_str(s).ok())
        .unwrap_or_default();
    let mut segments: Vec<Segment> = recorded
        .into_iter()
        .map(|s| {
            let from = s.start - origin;
            Segment {
                start: from,
                end: s.end.map_or_else(|| end.unwrap_or(from), |e| e - origin),
                place: s.place.unwrap_or_default(),
                error: s.error,
            }
        })
        .collect();
    if jumped && let (Some(start), Some(end)) = (start, end) {
        for seg in &mut segments {
            seg.start = seg.start.clamp(start, end);
            seg.end = seg.end.clamp(seg.start, end);
        }
        if let Some(last) = segments.last_mut() {
            last.end = end;
        }
    }
    // A row written before attempts were recorded: its whole span as one attempt.
    if segments.is_empty()
        && let (Some(start), Some(end)) = (start, end)
    {
        segments.push(Segment {
            start,
            end,
            place: p.place.clone().unwrap_or_default(),
            error: None,
        });
    }
    Bar {
        cycle: p.cycle.unwrap_or(0),
        wave: p.wave,
        name: p.name,
        state: p.state,
        start,
        end,
        segments,
        waited: p.waited.and_then(seconds).unwrap_or(0.0),
        place: p.place,
        deps: p
            .deps
            .as_deref()
            .and_then(|d| serde_json::from_str(d).ok())
            .unwrap_or_default(),
        exit_code: p.exit_code,
        error: p.error,
        log: p.log,
        median,
        proto: p.proto,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A run of `s.rhai` started at 10 s past 2026, with nothing else recorded.
    fn run_row() -> RunRow {
        RunRow {
            id: 1,
            script: "s.rhai".into(),
            args: "[]".into(),
            started: "2026-01-01T00:00:10.000Z".into(),
            duration: None,
            outcome: None,
            parallel: None,
            counts: None,
            alive: None,
            error: None,
        }
    }

    fn record(name: &str, started: &str, ended: &str, segments: &str) -> ProcRecord {
        ProcRecord {
            name: name.into(),
            state: "SUCCEEDED".into(),
            started: Some(started.into()),
            ended: Some(ended.into()),
            segments: Some(segments.into()),
            deps: Some(r#"["x"]"#.into()),
            place: Some("2".into()),
            ..Default::default()
        }
    }

    #[test]
    fn times_are_seconds_since_the_run_started() {
        let row = RunRow {
            id: 3,
            script: "s.rhai".into(),
            args: r#"["-v", "<a>"]"#.into(),
            started: "2026-01-01T00:00:10.000Z".into(),
            duration: Some(4.0),
            outcome: Some("ok".into()),
            parallel: Some(2),
            counts: Some(r#"{"succeeded": 1, "up_to_date": 4, "not_run": 2}"#.into()),
            alive: None,
            error: None,
        };
        // 2026-01-01T00:00:11Z is 1767225611 s after the epoch.
        let segs = r#"[{"start": 1767225611.0, "end": 1767225612.0, "place": "1", "error": "boom"},
                       {"start": 1767225612.5, "end": 1767225613.0, "place": "2", "error": null}]"#;
        let p = record(
            "a",
            "2026-01-01T00:00:11.000Z",
            "2026-01-01T00:00:13.000Z",
            segs,
        );
        let medians = HashMap::from([("a".to_string(), 1.0)]);
        let t = Timeline::new(row, vec![p], &medians);
        assert_eq!(t.args, ["-v", "<a>"]);
        assert_eq!((t.up_to_date, t.not_run), (4, 2));
        assert_eq!(t.total, 4.0);
        let a = &t.procs[0];
        assert_eq!(
            (a.start, a.end, a.duration()),
            (Some(1.0), Some(3.0), Some(2.0))
        );
        assert_eq!(a.segments.len(), 2);
        assert_eq!(a.segments[0].error.as_deref(), Some("boom"));
        assert_eq!(
            (a.segments[1].start, a.segments[1].place.as_str()),
            (2.5, "2")
        );
        assert_eq!(a.deps, ["x"]);
        assert_eq!(a.slower(), Some(2.0));
        assert_eq!(t.peak_parallel(), 1);
    }

    #[test]
    fn procs_on_an_executor_do_not_count_against_the_local_limit() {
        let row = RunRow {
            duration: Some(4.0),
            outcome: Some("ok".into()),
            parallel: Some(1),
            ..run_row()
        };
        let at = |place: &str| {
            format!(
                r#"[{{"start": 1767225611.0, "end": 1767225613.0, "place": "{place}", "error": null}}]"#
            )
        };
        let procs = vec![
            record(
                "here",
                "2026-01-01T00:00:11.000Z",
                "2026-01-01T00:00:13.000Z",
                &at("1"),
            ),
            record(
                "a",
                "2026-01-01T00:00:11.000Z",
                "2026-01-01T00:00:13.000Z",
                &at("web1"),
            ),
            record(
                "b",
                "2026-01-01T00:00:11.000Z",
                "2026-01-01T00:00:13.000Z",
                &at("slurm job 7"),
            ),
        ];
        let t = Timeline::new(row, procs, &HashMap::new());
        assert_eq!(t.peak_parallel(), 1);
    }

    #[test]
    fn the_procs_running_now_reach_now_once_each_after_what_they_followed() {
        let row = RunRow {
            alive: Some(Liveness::Running { pid: 7 }),
            ..run_row()
        };
        // `a` ended 0.4 ms into the millisecond its dependent `b` started in, as the
        // journal has it (cut down to the millisecond); `c` ended between the two reads.
        let a = record(
            "a",
            "2026-01-01T00:00:11.000Z",
            "2026-01-01T00:00:12.000Z",
            r#"[{"start": 1767225611.0, "end": 1767225612.0004, "place": "1", "error": null}]"#,
        );
        let c = record(
            "c",
            "2026-01-01T00:00:11.000Z",
            "2026-01-01T00:00:11.500Z",
            r#"[{"start": 1767225611.0, "end": 1767225611.5, "place": "2", "error": null}]"#,
        );
        let running = |name: &str, started: &str| ProcRecord {
            name: name.into(),
            state: "RUNNING".into(),
            started: Some(started.into()),
            cycle: Some(0),
            ..Default::default()
        };
        let t = Timeline::new(row, vec![a, c], &HashMap::new()).with_unended(
            vec![
                running("b", "2026-01-01T00:00:12.000Z"),
                running("c", "2026-01-01T00:00:11.000Z"),
            ],
            1767225620.0,
        );
        let names: Vec<&str> = t.procs.iter().map(|b| b.name.as_str()).collect();
        assert_eq!(names, ["a", "c", "b"]);
        let b = &t.procs[2];
        assert_eq!((b.state.as_str(), b.end), ("RUNNING", None));
        assert_eq!(b.segments.len(), 1);
        assert_eq!(b.segments[0].end, 10.0);
        assert_eq!(t.total, 10.0);
        assert_eq!(t.peak_parallel(), 2, "b follows a on its slot");
    }

    #[test]
    fn a_row_recorded_before_attempts_were_is_one_segment() {
        let row = run_row();
        let old = ProcRecord {
            name: "a".into(),
            state: "SUCCEEDED".into(),
            started: Some("2026-01-01T00:00:11.000Z".into()),
            duration: Some(0.5),
            ..Default::default()
        };
        let t = Timeline::new(row, vec![old], &HashMap::new());
        assert_eq!(t.total, 1.5, "the last end, without a recorded duration");
        assert_eq!(t.up_to_date, 0);
        let a = &t.procs[0];
        assert_eq!(a.end, Some(1.5));
        assert_eq!(
            (a.segments.len(), a.segments[0].start, a.segments[0].end),
            (1, 1.0, 1.5)
        );
        assert!(a.deps.is_empty() && a.place.is_none());
    }

    #[test]
    fn a_clock_set_back_or_forward_while_a_proc_ran_keeps_its_measured_duration() {
        let row = RunRow {
            duration: Some(3.0),
            outcome: Some("ok".into()),
            parallel: Some(2),
            ..run_row()
        };
        // Each ran 0.5 s by the steady clock; meanwhile the system clock was set back an
        // hour for `back`, forward an hour for `ahead` (1767225611 is 00:00:11).
        let jumped = |name: &str, started: &str, ended: &str, from: f64, to: f64| ProcRecord {
            duration: Some(0.5),
            ..record(
                name,
                started,
                ended,
                &format!(r#"[{{"start": {from}, "end": {to}, "place": "1", "error": null}}]"#),
            )
        };
        let procs = vec![
            jumped(
                "back",
                "2026-01-01T00:00:11.000Z",
                "2025-12-31T23:00:11.500Z",
                1767225611.0,
                1767222011.5,
            ),
            jumped(
                "ahead",
                "2026-01-01T00:00:12.000Z",
                "2026-01-01T01:00:12.500Z",
                1767225612.0,
                1767229212.5,
            ),
        ];
        let medians = HashMap::from([("back".to_string(), 0.5), ("ahead".to_string(), 0.5)]);
        let t = Timeline::new(row, procs, &medians);
        let spans: Vec<_> = t
            .procs
            .iter()
            .map(|b| (b.start, b.end, b.segments[0].start, b.segments[0].end))
            .collect();
        assert_eq!(
            spans,
            [
                (Some(1.0), Some(1.5), 1.0, 1.5),
                (Some(2.0), Some(2.5), 2.0, 2.5)
            ]
        );
        assert!(t.procs.iter().all(|b| b.slower().is_none()));
        assert_eq!((t.total, t.span()), (3.0, 3.0));
        assert_eq!(t.peak_parallel(), 1);
    }

    #[test]
    fn seconds_no_run_could_have_measured_are_not_recorded_ones() {
        // An infinite duration drew an axis with no end: `prun report --html` never ended.
        let row = RunRow {
            duration: Some(f64::INFINITY),
            outcome: Some("ok".into()),
            parallel: Some(2),
            ..run_row()
        };
        let p = ProcRecord {
            duration: Some(f64::INFINITY),
            waited: Some(-1.0),
            ..record(
                "a",
                "2026-01-01T00:00:11.000Z",
                "2026-01-01T00:00:13.000Z",
                "[]",
            )
        };
        let medians = HashMap::from([("a".to_string(), f64::INFINITY)]);
        let t = Timeline::new(row, vec![p], &medians);
        assert_eq!((t.total, t.span()), (3.0, 3.0));
        let a = &t.procs[0];
        assert_eq!((a.duration(), a.waited, a.median), (Some(2.0), 0.0, None));
    }

    #[test]
    fn slower_than_usual_needs_both_the_ratio_and_the_margin() {
        let b = |d: f64, m: f64| Bar {
            start: Some(0.0),
            end: Some(d),
            median: Some(m),
            ..Default::default()
        };
        assert!(b(2.0, 1.0).slower().is_some());
        assert!(b(1.4, 1.0).slower().is_none());
        assert!(b(0.02, 0.01).slower().is_none(), "within the margin");
        assert!(Bar::default().slower().is_none());
    }

    #[test]
    fn a_family_is_the_name_up_to_its_last_separator() {
        let b = |n: &str| {
            Bar {
                name: n.into(),
                ..Default::default()
            }
            .family()
        };
        assert_eq!(b("encode::a::b.wav").as_deref(), Some("encode::a::*"));
        assert_eq!(b("fetch"), None);
        let of = |name: &str, proto: &str| {
            Bar {
                name: name.into(),
                proto: Some(proto.into()),
                ..Default::default()
            }
            .family()
        };
        assert_eq!(
            of("enc/a.wav/hi", "enc/[f]/[q]").as_deref(),
            Some("enc/*/*")
        );
        assert_eq!(of("gz::x", "gz::[f]").as_deref(), Some("gz::*"));
    }
}

//! `prun report --html`: one self-contained HTML page of a run — a timeline with one bar
//! per proc, grouped by the slot (or host) it ran on, the critical path marked.
//!
//! Everything is inline (CSS, one small script, an SVG track per row) and a
//! Content-Security-Policy forbids fetching anything, so the file can be mailed or
//! archived and opened anywhere. Every string from the task DB (names, errors, log paths,
//! arguments) is escaped: as HTML text or attributes with [`escape`], inside the page's
//! JSON data with [`json_for_script`].
//!
//! Readability with many procs: within a slot, procs of one family (`encode::*`, see
//! [`Bar::family`]), and a proc's rows of the cycles of a watch, are one collapsible row
//! showing all their bars; above
//! [`COLLAPSE_ABOVE`] procs the families start collapsed.

use std::collections::{BTreeMap, HashSet};
use std::fmt::Write as _;

use super::critical::CriticalPath;
use super::timeline::{Bar, Timeline};
use super::{distinct_procs, no_critical_path, procs_count, secs};

/// Runs with more procs than this start with their families collapsed.
pub(super) const COLLAPSE_ABOVE: usize = 40;

/// How a Slurm executor records where a proc ran: `slurm job 1234`.
const SLURM_JOB: &str = "slurm job ";

/// The width of a track in SVG units: a time `t` is drawn at `t / total * WIDTH`.
const WIDTH: f64 = 1000.0;

/// Escapes text for HTML text and quoted attribute values. Control characters (tabs and
/// newlines aside) are written out (`\e`, `\x01`), as messages on a terminal show them:
/// raw, they are errors in an HTML document and show as nothing, or as boxes.
pub(super) fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            c if crate::shown::hidden(c) => out.push_str(&crate::shown::escaped(c)),
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// JSON to put inside a `<script>` element: `<`, `>` and `&` are written as `\u` escapes,
/// so no string in it can end the element (`</script>`) or open a comment; so are the
/// control characters JSON lets through (DEL and C1), errors in an HTML document.
pub(super) fn json_for_script(v: &serde_json::Value) -> String {
    let text = v.to_string();
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '<' | '>' | '&') || c.is_control() {
            let _ = write!(out, "\\u{:04x}", c as u32);
        } else {
            out.push(c);
        }
    }
    out
}

/// The page of a run.
pub(super) fn render(t: &Timeline, path: &CriticalPath) -> String {
    let page = Page {
        t,
        critical: path.procs.iter().copied().collect(),
        total: t.span().max(1e-3),
        open: t.procs.len() <= COLLAPSE_ABOVE,
    };
    let mut out = String::with_capacity(4096 + t.procs.len() * 700);
    out.push_str(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; \
         style-src 'unsafe-inline'; script-src 'unsafe-inline'\">\n",
    );
    let _ = writeln!(
        out,
        "<title>prun report: {} run {}</title>",
        escape(&t.script),
        t.id
    );
    let _ = writeln!(out, "<style>{CSS}</style>\n</head>\n<body>");
    page.header(&mut out, path);
    out.push_str(LEGEND);
    out.push_str("<main id=\"chart\">\n");
    page.axis(&mut out);
    for (label, bars) in page.groups() {
        page.group(&mut out, &label, &bars);
    }
    out.push_str("</main>\n<aside id=\"detail\" hidden></aside>\n");
    let _ = writeln!(
        out,
        "<script type=\"application/json\" id=\"procs\">{}</script>",
        json_for_script(&page.data())
    );
    let _ = writeln!(out, "<script>{SCRIPT}</script>\n</body>\n</html>");
    out
}

struct Page<'a> {
    t: &'a Timeline,
    critical: HashSet<usize>,
    /// The seconds the axis spans (the run's, or more when the clock was set forward).
    total: f64,
    /// Whether families start expanded.
    open: bool,
}

/// What a slot's group shows, in order of start: a proc's row, or a family's.
enum Item {
    Proc(usize),
    Family(String, Vec<usize>),
}

impl Page<'_> {
    fn x(&self, t: f64) -> f64 {
        (t / self.total * WIDTH).clamp(0.0, WIDTH)
    }

    fn header(&self, out: &mut String, path: &CriticalPath) {
        let t = self.t;
        let outcome = t.outcome_label();
        let explained = t
            .alive
            .as_ref()
            .map_or(String::new(), |a| format!(": {}", escape(&a.explain())));
        let parallel = t
            .parallel
            .map_or("not recorded".to_string(), |p| p.to_string());
        let _ = writeln!(
            out,
            "<header>\n<h1>prun report: {}</h1>\n<dl>",
            escape(&t.script)
        );
        let mut item = |k: &str, v: String| {
            let _ = writeln!(out, "<dt>{k}</dt><dd>{v}</dd>");
        };
        item("run", format!("{}, started {}", t.id, escape(&t.started)));
        item("arguments", escape(&shell_words(&t.args)));
        item(
            "outcome",
            format!(
                "<span class=\"outcome {}\">{}</span>{explained}",
                class_of(outcome),
                escape(outcome)
            ),
        );
        if let Some(error) = &t.error {
            item(
                "error",
                format!("<pre class=\"error\">{}</pre>", escape(error)),
            );
        }
        item("total", secs(t.total));
        let mut did_not_run = match t.up_to_date {
            0 => String::new(),
            n => format!(", and {n} up to date (they did not run: no bar)"),
        };
        if t.not_run > 0 {
            let _ = write!(
                did_not_run,
                ", and {} not run (the run stopped before they started: no bar)",
                t.not_run
            );
        }
        item(
            "procs",
            format!(
                "{} ({} slower than usual){did_not_run}",
                match distinct_procs(&t.procs) {
                    n if n == t.procs.len() => n.to_string(),
                    n => format!("{n}, run {} times", t.procs.len()),
                },
                t.slowest().len()
            ),
        );
        let n = t.peak_parallel();
        item(
            "parallelism",
            format!(
                "at most <span id=\"parallel-used\">{n}</span> {} running at once, limit {parallel} (-j)",
                if n == 1 { "proc" } else { "procs" }
            ),
        );
        let chain: Vec<String> = path
            .procs
            .iter()
            .map(|&i| {
                let wave = if path.after_wave.contains(&i) {
                    " (wave)"
                } else {
                    ""
                };
                format!("<li>{}{wave}</li>", escape(&t.procs[i].name))
            })
            .collect();
        let total = if path.procs.is_empty() {
            format!("none: {}", no_critical_path(&t.procs))
        } else {
            secs(path.total)
        };
        item(
            "critical path",
            format!(
                "<span id=\"critical-total\">{total}</span><ol id=\"critical-path\">{}</ol>",
                chain.join("")
            ),
        );
        out.push_str("</dl>\n</header>\n");
    }

    fn axis(&self, out: &mut String) {
        let step = tick_step(self.total);
        out.push_str("<div class=\"row axis\"><div class=\"label\"></div><div class=\"dur\">duration</div><div class=\"ticks\">");
        let mut t = 0.0;
        while t <= self.total + 1e-9 {
            let left = self.x(t) / WIDTH * 100.0;
            // A label centred on a tick at the right edge would stick out of the page.
            let end = if left > 95.0 {
                ";transform:translateX(-100%)"
            } else {
                ""
            };
            // Steps under 10 ms would all read `0.00s`, `0.01s`: in milliseconds.
            let label = if step < 0.01 {
                format!("{:.0}ms", t * 1000.0)
            } else {
                secs(t)
            };
            let _ = write!(out, "<span style=\"left:{left:.3}%{end}\">{label}</span>");
            t += step;
        }
        out.push_str("</div></div>\n");
    }

    /// The procs by where their last attempt ran: slots in order, then hosts (and the
    /// Slurm jobs, all in one group: one job per proc), then the procs that never ran.
    fn groups(&self) -> Vec<(String, Vec<usize>)> {
        let mut groups: BTreeMap<(u8, u64, String), Vec<usize>> = BTreeMap::new();
        for (i, b) in self.t.procs.iter().enumerate() {
            let place = b
                .place
                .clone()
                .or_else(|| b.segments.last().map(|s| s.place.clone()))
                .filter(|p| !p.is_empty());
            let key = match place {
                Some(p) if p.starts_with(SLURM_JOB) => (1, 0, "slurm jobs".into()),
                Some(p) => match p.parse::<u64>() {
                    Ok(n) => (0, n, format!("slot {n}")),
                    Err(_) => (1, 0, p),
                },
                None if b.start.is_some() => (1, 0, "unknown place".into()),
                None => (2, 0, "did not run".into()),
            };
            groups.entry(key).or_default().push(i);
        }
        groups.into_iter().map(|((_, _, l), v)| (l, v)).collect()
    }

    fn group(&self, out: &mut String, label: &str, bars: &[usize]) {
        let procs = &self.t.procs;
        // A proc's family; a proc of none is one of its own, whose rows (one per watch
        // cycle it ran in) fold like a family's.
        let family = |i: usize| procs[i].family().unwrap_or_else(|| procs[i].name.clone());
        let mut families: BTreeMap<String, Vec<usize>> = BTreeMap::new();
        for &i in bars {
            families.entry(family(i)).or_default().push(i);
        }
        families.retain(|_, v| v.len() > 1);
        let mut items: Vec<(f64, Item)> = Vec::new();
        for &i in bars {
            if !families.contains_key(&family(i)) {
                items.push((sort_time(&procs[i]), Item::Proc(i)));
            }
        }
        for (f, mut members) in families {
            members.sort_by(|&a, &b| sort_time(&procs[a]).total_cmp(&sort_time(&procs[b])));
            let first = members
                .iter()
                .map(|&i| sort_time(&procs[i]))
                .fold(f64::MAX, f64::min);
            items.push((first, Item::Family(f, members)));
        }
        items.sort_by(|a, b| a.0.total_cmp(&b.0));
        let _ = writeln!(
            out,
            "<section class=\"slot\" data-place=\"{}\">\n<h2>{} <small>{}</small></h2>",
            escape(label),
            escape(label),
            procs_count(bars.len())
        );
        for (_, item) in items {
            match item {
                Item::Proc(i) => self.row(out, i),
                Item::Family(name, members) => self.family(out, &name, &members),
            }
        }
        out.push_str("</section>\n");
    }

    fn row(&self, out: &mut String, i: usize) {
        let b = &self.t.procs[i];
        let critical = self.critical.contains(&i);
        let name = escape(&b.name);
        let _ = write!(
            out,
            "<div class=\"row{}\" data-proc=\"{name}\"><div class=\"label\" title=\"{name}\">{}{name}</div><div class=\"dur\">{}</div>",
            if critical { " critical" } else { "" },
            if critical {
                "<b class=\"mark\">&#9670;</b> "
            } else {
                ""
            },
            self.duration_cell(b),
        );
        let _ = write!(
            out,
            "<svg class=\"track\" viewBox=\"0 0 {WIDTH} 20\" preserveAspectRatio=\"none\">"
        );
        self.bar(out, i, false);
        out.push_str("</svg></div>\n");
    }

    fn duration_cell(&self, b: &Bar) -> String {
        let Some(d) = b.duration() else {
            return "&ndash;".into();
        };
        match (b.slower(), b.median) {
            (Some(ratio), Some(m)) => format!(
                "{} <span class=\"slow\" title=\"slower than usual: median {}\">{ratio:.1}&times;</span>",
                secs(d),
                secs(m)
            ),
            _ => secs(d),
        }
    }

    fn family(&self, out: &mut String, name: &str, members: &[usize]) {
        let procs = &self.t.procs;
        let critical = members.iter().any(|i| self.critical.contains(i));
        let failed = members
            .iter()
            .filter(|&&i| procs[i].state.starts_with("FAILED"))
            .count();
        let slow = members
            .iter()
            .filter(|&&i| procs[i].slower().is_some())
            .count();
        let mut notes = Vec::new();
        if failed > 0 {
            notes.push(format!("{failed} failed"));
        }
        if slow > 0 {
            notes.push(format!("{slow} slow"));
        }
        let notes = if notes.is_empty() {
            String::new()
        } else {
            format!(", {}", notes.join(", "))
        };
        let _ = write!(
            out,
            "<details class=\"family\"{}><summary class=\"row{}\" data-family=\"{}\"><div class=\"label\">{}{} <small>({}{notes})</small></div><div class=\"dur\"></div>",
            if self.open { " open" } else { "" },
            if critical { " critical" } else { "" },
            escape(name),
            if critical {
                "<b class=\"mark\">&#9670;</b> "
            } else {
                ""
            },
            escape(name),
            rows_count(procs, members),
        );
        let _ = write!(
            out,
            "<svg class=\"track\" viewBox=\"0 0 {WIDTH} 20\" preserveAspectRatio=\"none\">"
        );
        for &i in members {
            self.bar(out, i, true);
        }
        out.push_str("</svg></summary>\n");
        for &i in members {
            self.row(out, i);
        }
        out.push_str("</details>\n");
    }

    /// A proc's bar: its wait, then each attempt (those that failed and were retried
    /// apart); a proc that never ran is a tick where it was given up. `mini`: in a
    /// family's row, without the proc's identity (its own row has it) or its wait (the
    /// waits of a family's procs would overlap into one line).
    fn bar(&self, out: &mut String, i: usize, mini: bool) {
        let b = &self.t.procs[i];
        let critical = self.critical.contains(&i) && !mini;
        let class = format!(
            "{} {}{}",
            if mini { "mini" } else { "bar" },
            class_of(&b.state),
            if critical { " critical" } else { "" }
        );
        if mini {
            let _ = write!(out, "<g class=\"{class}\" data-i=\"{i}\">");
        } else {
            let _ = write!(
                out,
                "<g class=\"{class}\" data-i=\"{i}\" data-proc=\"{}\">",
                escape(&b.name)
            );
        }
        let _ = write!(out, "<title>{}</title>", escape(&tooltip(b)));
        if let Some(start) = b.start
            && b.waited > 0.0
            && !mini
        {
            let x = self.x(start - b.waited);
            let _ = write!(
                out,
                "<rect class=\"wait\" x=\"{x:.2}\" y=\"15\" width=\"{:.2}\" height=\"4\"/>",
                (self.x(start) - x).max(0.5)
            );
        }
        let last = b.segments.len().saturating_sub(1);
        for (n, s) in b.segments.iter().enumerate() {
            // Widened to be seen, and kept inside the track: one ending at the axis' end
            // would go past its edge, cut off.
            let width = (self.x(s.end) - self.x(s.start)).max(1.5);
            let x = self.x(s.start).min(WIDTH - width);
            let retried = if n < last { " retried" } else { "" };
            let _ = write!(
                out,
                "<rect class=\"seg{retried}\" x=\"{x:.2}\" y=\"2\" width=\"{width:.2}\" height=\"12\"/>",
            );
        }
        if b.segments.is_empty() {
            let x = self.x(b.end.unwrap_or(0.0));
            let _ = write!(
                out,
                "<rect class=\"seg tick\" x=\"{:.2}\" y=\"2\" width=\"3\" height=\"12\"/>",
                (x - 1.5).clamp(0.0, WIDTH - 3.0)
            );
        }
        out.push_str("</g>");
    }

    /// The procs as JSON, for the detail panel.
    fn data(&self) -> serde_json::Value {
        let procs: Vec<serde_json::Value> = self
            .t
            .procs
            .iter()
            .enumerate()
            .map(|(i, b)| {
                let attempts: Vec<serde_json::Value> = b
                    .segments
                    .iter()
                    .map(|s| {
                        serde_json::json!({
                            "start": s.start, "end": s.end, "place": s.place, "error": s.error,
                        })
                    })
                    .collect();
                serde_json::json!({
                    "name": b.name,
                    "state": b.state,
                    "start": b.start,
                    "end": b.end,
                    "duration": b.duration(),
                    "median": b.median,
                    "slower": b.slower(),
                    "waited": b.waited,
                    "place": b.place,
                    "deps": b.deps,
                    "exit_code": b.exit_code,
                    "error": b.error,
                    "log": b.log,
                    "attempts": attempts,
                    "critical": self.critical.contains(&i),
                })
            })
            .collect();
        serde_json::Value::from(procs)
    }
}

/// A command line as a shell would take it (`'two words'` is one argument), a word with
/// a control character quoted as `$'...'`, as failure messages show commands.
fn shell_words(args: &[String]) -> String {
    let word = |a: &String| match (crate::shown::c_quoted(a), shlex::try_quote(a)) {
        (Some(q), _) => q,
        (None, Ok(q)) => q.into_owned(),
        (None, Err(_)) => format!("{a:?}"),
    };
    args.iter().map(word).collect::<Vec<_>>().join(" ")
}

/// What a family's row counts: `3 procs`; in a watch, where a proc has a row for each
/// cycle it ran in, `2 procs run 6 times`, or for one proc's rows `60 runs`.
fn rows_count(procs: &[Bar], members: &[usize]) -> String {
    let names: HashSet<&str> = members.iter().map(|&i| procs[i].name.as_str()).collect();
    match names.len() {
        1 => format!("{} runs", members.len()),
        n if n == members.len() => procs_count(n),
        n => format!("{} run {} times", procs_count(n), members.len()),
    }
}

/// Where a proc sorts among its slot's rows: when it started (or was given up).
fn sort_time(b: &Bar) -> f64 {
    b.start.or(b.end).unwrap_or(f64::MAX)
}

/// A state or outcome as a CSS class: `FAILED_DEP` is `failed-dep`.
fn class_of(state: &str) -> String {
    state
        .chars()
        .map(|c| match c {
            'A'..='Z' => c.to_ascii_lowercase(),
            'a'..='z' | '0'..='9' => c,
            _ => '-',
        })
        .collect()
}

/// What pointing at a bar shows (as plain text; the caller escapes it).
fn tooltip(b: &Bar) -> String {
    let mut t = format!("{}\n{}", b.name, b.state);
    if let Some(d) = b.duration() {
        let _ = write!(t, ", {}", secs(d));
    }
    if let Some(m) = b.median {
        let _ = write!(t, " (median {})", secs(m));
    }
    if let (Some(s), Some(e)) = (b.start, b.end) {
        let _ = write!(t, "\nfrom +{} to +{}", secs(s), secs(e));
    }
    if b.waited > 0.0 {
        let _ = write!(t, "\nwaited {}", secs(b.waited));
    }
    if b.segments.len() > 1 {
        let _ = write!(t, "\n{} attempts", b.segments.len());
    }
    if let Some(c) = b.exit_code {
        let _ = write!(t, "\nexit code {c}");
    }
    if let Some(e) = &b.error {
        let _ = write!(t, "\nerror: {e}");
    }
    if let Some(l) = &b.log {
        let _ = write!(t, "\nlog: {l}");
    }
    t
}

/// A round step that puts about eight ticks on the axis.
fn tick_step(total: f64) -> f64 {
    let rough = total / 8.0;
    let magnitude = 10f64.powf(rough.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * magnitude)
        .find(|s| *s >= rough)
        .unwrap_or(10.0 * magnitude);
    step.max(1e-3)
}

const LEGEND: &str = "<div class=\"legend\">\
<span><i class=\"succeeded\"></i>succeeded</span>\
<span><i class=\"failed\"></i>failed</span>\
<span><i class=\"retried\"></i>attempt retried</span>\
<span><i class=\"skipped\"></i>skipped</span>\
<span><i class=\"running\"></i>running now</span>\
<span><i class=\"failed-dep\"></i>failed dependency</span>\
<span><i class=\"wait\"></i>ready, waiting (lock, wave, slot)</span>\
<span><i class=\"critical\"></i>critical path &#9670;</span>\
<span><b class=\"slow\">2.0&times;</b> slower than usual</span>\
<span id=\"hint\">Point at a bar for its details, click to keep them (Esc closes).</span>\
<button id=\"expand\" type=\"button\">expand all</button>\
<button id=\"collapse\" type=\"button\">collapse all</button>\
</div>\n";

const CSS: &str = "
body { font: 13px/1.4 system-ui, sans-serif; margin: 0 1em 2em; color: #222; }
h1 { font-size: 1.3em; margin: .6em 0 .3em; word-break: break-all; }
h2 { font-size: 1em; margin: .8em 0 .2em; border-bottom: 1px solid #ccc; }
h2 small, summary small { color: #666; font-weight: normal; }
header dl { display: grid; grid-template-columns: max-content 1fr; gap: 0 1em; margin: 0; }
header dt { color: #666; }
header dd { margin: 0; word-break: break-all; }
#critical-path { display: inline; padding: 0; margin: 0 0 0 .5em; }
#critical-path li { display: inline; }
#critical-path li + li::before { content: ' \\2192  '; color: #666; }
.outcome.ok { color: #2e7d32; font-weight: bold; }
.outcome.failed, .outcome.interrupted, .outcome.died { color: #c62828; font-weight: bold; }
.legend { margin: .6em 0; display: flex; flex-wrap: wrap; gap: .3em 1.2em; align-items: center; }
.legend i { display: inline-block; width: 1.6em; height: .8em; margin-right: .3em; vertical-align: middle; }
.legend i.succeeded { background: #43a047; } .legend i.failed { background: #e53935; }
.legend i.retried { background: #fb8c00; } .legend i.skipped { background: #b0bec5; }
.legend i.running { background: #1e88e5; }
.legend i.failed-dep { background: #eceff1; outline: 1px solid #e53935; }
.legend i.wait { background: #fbc02d; height: .35em; }
.legend i.critical { background: #43a047; outline: 2px solid #111; }
.row { display: grid; grid-template-columns: 18em 7em minmax(36em, 1fr); align-items: center; min-height: 20px; }
.row:hover { background: #f3f6fa; }
.label { overflow: hidden; text-overflow: ellipsis; white-space: nowrap; padding-right: .5em; }
.row.critical > .label { font-weight: bold; }
.mark { color: #111; }
.dur { text-align: right; padding-right: .6em; white-space: nowrap; color: #444; }
.slow { color: #fff; background: #c62828; border-radius: 3px; padding: 0 .25em; font-weight: bold; }
.track { width: 100%; height: 20px; display: block; background: #fafafa; }
.axis { position: sticky; top: 0; background: #fff; z-index: 1; border-bottom: 1px solid #ccc; }
.ticks { position: relative; height: 20px; }
.ticks span { position: absolute; top: 2px; transform: translateX(-50%); color: #666; font-size: 11px; }
.ticks span:first-child { transform: none; }
summary.row { list-style: none; cursor: pointer; }
summary.row::-webkit-details-marker { display: none; }
details.family > summary .label::before { content: '\\25B8  '; }
details.family[open] > summary .label::before { content: '\\25BE  '; }
details.family > .row .label { padding-left: 1.5em; }
g.bar, g.mini { cursor: pointer; }
rect { vector-effect: non-scaling-stroke; }
.seg { fill: #43a047; }
.failed .seg, .interrupted .seg, .died .seg { fill: #e53935; }
.skipped .seg { fill: #b0bec5; }
.running .seg { fill: #1e88e5; }
.failed-dep .seg { fill: #eceff1; stroke: #e53935; stroke-width: 1; }
.seg.retried { fill: #fb8c00; }
.wait { fill: #fbc02d; }
g.critical .seg { stroke: #111; stroke-width: 2; }
g.selected .seg { stroke: #1565c0; stroke-width: 3; }
#hint { color: #666; }
#detail[hidden] { display: none; }
#detail { position: fixed; right: 1em; bottom: 1em; width: 26em; max-height: 45vh; overflow: auto;
  background: #fff; border: 1px solid #bbb; box-shadow: 0 2px 8px rgba(0,0,0,.2); padding: .2em .8em; }
#detail h2 { word-break: break-all; }
#detail dl { display: grid; grid-template-columns: max-content 1fr; gap: 0 .8em; }
#detail dt { color: #666; } #detail dd { margin: 0; white-space: pre-wrap; word-break: break-all; }
";

const SCRIPT: &str = r#"
"use strict";
const procs = JSON.parse(document.getElementById("procs").textContent);
const detail = document.getElementById("detail");
document.getElementById("hint").textContent = procs.length + (procs.length === 1 ? " proc" : " procs") + ": point at a bar for its details, click to keep them (Esc closes).";
function secs(s) {
  if (s === null || s === undefined) return "";
  if (s < 10) return s.toFixed(2) + "s";
  if (s < 60) return s.toFixed(1) + "s";
  const m = Math.floor(s / 60);
  return m + "m" + String(Math.round(s % 60)).padStart(2, "0") + "s";
}
let pinned = null;
function show(i) {
  const p = procs[i];
  const h = document.createElement("h2");
  h.textContent = p.name;
  const dl = document.createElement("dl");
  const add = (k, v) => {
    if (v === null || v === undefined || v === "") return;
    const dt = document.createElement("dt"), dd = document.createElement("dd");
    dt.textContent = k;
    dd.textContent = String(v);
    dl.append(dt, dd);
  };
  add("state", p.state + (p.critical ? " (critical path)" : ""));
  if (p.start !== null) add("started", "+" + secs(p.start));
  add("ended", p.end === null ? null : "+" + secs(p.end));
  add("duration", secs(p.duration));
  if (p.median !== null) add("median before", secs(p.median) + (p.slower ? " (" + p.slower.toFixed(1) + "x: slower than usual)" : ""));
  if (p.waited > 0) add("waited", secs(p.waited));
  add("place", p.place);
  add("exit code", p.exit_code);
  add("attempts", p.attempts.length > 1 ? p.attempts.length : null);
  p.attempts.forEach((a, n) => {
    if (a.error) add("attempt " + (n + 1), "+" + secs(a.start) + " to +" + secs(a.end) + ": " + a.error);
  });
  add("depends on", p.deps.join(", "));
  add("error", p.error);
  add("log", p.log);
  detail.replaceChildren(h, dl);
  detail.hidden = false;
  document.querySelectorAll("g.selected").forEach(g => g.classList.remove("selected"));
  document.querySelectorAll('g.bar[data-i="' + i + '"]').forEach(g => g.classList.add("selected"));
}
function hide() {
  pinned = null;
  detail.hidden = true;
  document.querySelectorAll("g.selected").forEach(g => g.classList.remove("selected"));
}
const chart = document.getElementById("chart");
const barOf = t => t instanceof Element ? t.closest("g.bar, g.mini") : null;
chart.addEventListener("mouseover", e => {
  const g = barOf(e.target);
  if (g && pinned === null) show(Number(g.dataset.i));
});
chart.addEventListener("mouseout", e => {
  if (pinned === null && barOf(e.target) && !barOf(e.relatedTarget)) hide();
});
chart.addEventListener("click", e => {
  const g = barOf(e.target);
  if (!g) {
    if (!(e.target instanceof Element && e.target.closest("summary"))) hide();
    return;
  }
  e.preventDefault();
  pinned = Number(g.dataset.i);
  show(pinned);
});
document.addEventListener("keydown", e => { if (e.key === "Escape") hide(); });
document.getElementById("expand").addEventListener("click", () =>
  document.querySelectorAll("details.family").forEach(d => { d.open = true; }));
document.getElementById("collapse").addEventListener("click", () =>
  document.querySelectorAll("details.family").forEach(d => { d.open = false; }));
"#;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::picture::timeline::Segment;

    fn hostile() -> Timeline {
        let evil = "</script><script>alert(1)</script>&<b>\"'";
        let bar = Bar {
            name: format!("p{evil}"),
            state: "FAILED".into(),
            start: Some(0.0),
            end: Some(1.0),
            segments: vec![Segment {
                start: 0.0,
                end: 1.0,
                place: evil.into(),
                error: None,
            }],
            place: Some(evil.into()),
            deps: vec![evil.into()],
            error: Some(evil.into()),
            log: Some(format!("/tmp/{evil}.log")),
            ..Default::default()
        };
        Timeline {
            id: 1,
            script: format!("s{evil}.rhai"),
            args: vec![evil.into()],
            started: "2026-01-01T00:00:00Z".into(),
            outcome: Some(evil.into()),
            alive: None,
            error: None,
            total: 1.0,
            parallel: Some(2),
            up_to_date: 0,
            not_run: 0,
            procs: vec![bar],
        }
    }

    /// The procs' data the page embeds for its detail panel.
    fn procs_data(page: &str) -> serde_json::Value {
        let json = page
            .split("<script type=\"application/json\" id=\"procs\">")
            .nth(1)
            .and_then(|s| s.split("</script>").next())
            .expect("the data");
        serde_json::from_str(json).expect("JSON")
    }

    #[test]
    fn every_string_from_the_db_is_escaped() {
        let t = hostile();
        let page = render(&t, &CriticalPath::of(&t.procs));
        // Exactly the page's own two scripts, and no markup from the data.
        assert_eq!(page.matches("<script").count(), 2, "{page}");
        assert_eq!(page.matches("</script>").count(), 2, "{page}");
        assert!(!page.contains("<b>\""), "{page}");
        assert!(page.contains(
            "p&lt;/script&gt;&lt;script&gt;alert(1)&lt;/script&gt;&amp;&lt;b&gt;&quot;&#39;"
        ));
        // The JSON data still holds the exact strings.
        let data = procs_data(&page);
        assert_eq!(data[0]["name"], t.procs[0].name);
        assert_eq!(data[0]["error"].as_str(), t.procs[0].error.as_deref());
    }

    #[test]
    fn one_proc_running_at_once_is_one_proc() {
        let mut t = hostile();
        t.procs[0].place = Some("1".into());
        t.procs[0].segments[0].place = "1".into();
        let page = render(&t, &CriticalPath::of(&t.procs));
        assert!(
            page.contains("at most <span id=\"parallel-used\">1</span> proc running at once"),
            "{page}"
        );
        assert!(page.contains("(procs.length === 1 ? \" proc\" : \" procs\")"));
    }

    #[test]
    fn control_characters_are_written_out_not_put_in_the_page() {
        let mut t = hostile();
        t.args = vec![
            "s.rhai".into(),
            "--".into(),
            "a\x1b[31mb".into(),
            "\x01".into(),
        ];
        t.procs[0].error = Some("exited\x07 with\r code 1\x7f\u{9b}".into());
        t.procs[0].log = Some("/tmp/l\x1b.log".into());
        let page = render(&t, &CriticalPath::of(&t.procs));
        let raw: Vec<char> = page.chars().filter(|&c| crate::shown::hidden(c)).collect();
        assert!(raw.is_empty(), "{raw:?} in {page}");
        assert!(
            page.contains(
                "<dt>arguments</dt><dd>s.rhai -- $&#39;a\\e[31mb&#39; $&#39;\\x01&#39;</dd>"
            ),
            "{page}"
        );
        assert!(
            page.contains("error: exited\\x07 with\\r code 1\\x7f\\u009b"),
            "{page}"
        );
        // The detail panel's data keeps the exact text.
        let data = procs_data(&page);
        assert_eq!(data[0]["error"].as_str(), t.procs[0].error.as_deref());
    }

    #[test]
    fn nothing_is_fetched_and_no_address_is_in_the_page() {
        let t = hostile();
        let page = render(&t, &CriticalPath::default());
        assert!(page.contains("Content-Security-Policy\" content=\"default-src 'none'"));
        assert!(
            !page.contains("http:") && !page.contains("https:"),
            "{page}"
        );
        assert!(!page.contains(" src="), "{page}");
    }

    #[test]
    fn slurm_jobs_share_one_group_and_hosts_have_their_own() {
        let bar = |name: &str, place: &str| Bar {
            name: name.into(),
            state: "SUCCEEDED".into(),
            start: Some(0.0),
            end: Some(1.0),
            segments: vec![Segment {
                start: 0.0,
                end: 1.0,
                place: place.into(),
                error: None,
            }],
            place: Some(place.into()),
            ..Default::default()
        };
        let t = Timeline {
            total: 1.0,
            procs: vec![
                bar("a", "slurm job 7"),
                bar("b", "slurm job 8"),
                bar("c", "web1"),
                bar("d", "1"),
            ],
            ..Default::default()
        };
        let page = render(&t, &CriticalPath::of(&t.procs));
        assert_eq!(page.matches("<section class=\"slot\"").count(), 3, "{page}");
        assert!(page.contains("data-place=\"slurm jobs\""), "{page}");
        assert!(page.contains("data-place=\"web1\""), "{page}");
        assert!(
            page.contains("slurm job 8"),
            "the job stays in the data: {page}"
        );
    }

    #[test]
    fn a_bar_at_the_end_of_the_axis_is_drawn_inside_it() {
        // A proc that started as the last one ended (a DIED row drawn to the run's last
        // end, a proc that took no time): its bar, widened to be seen, went past the
        // track's right edge and was cut off, nothing of it shown.
        let mut t = hostile();
        t.procs[0].segments[0].start = 1.0;
        t.procs[0].start = Some(1.0);
        let page = render(&t, &CriticalPath::default());
        let seg = page
            .split("<rect class=\"seg\" ")
            .nth(1)
            .and_then(|r| r.split("/>").next())
            .expect("the bar");
        let attr = |name: &str| -> f64 {
            seg.split(&format!("{name}=\""))
                .nth(1)
                .and_then(|v| v.split('"').next())
                .and_then(|v| v.parse().ok())
                .expect("a number")
        };
        assert!(attr("x") + attr("width") <= WIDTH, "{seg}");
        assert!(attr("width") >= 1.5, "{seg}");
    }

    #[test]
    fn a_thousand_procs_collapse_by_family_and_each_keeps_its_bar() {
        let procs = (0..1000)
            .map(|i| Bar {
                name: format!("encode::{i}"),
                state: "SUCCEEDED".into(),
                start: Some(i as f64 / 100.0),
                end: Some(i as f64 / 100.0 + 0.04),
                segments: vec![Segment {
                    start: i as f64 / 100.0,
                    end: i as f64 / 100.0 + 0.04,
                    place: (i % 4 + 1).to_string(),
                    error: None,
                }],
                place: Some((i % 4 + 1).to_string()),
                ..Default::default()
            })
            .collect();
        let t = Timeline {
            total: 10.0,
            procs,
            ..Default::default()
        };
        let page = render(&t, &CriticalPath::of(&t.procs));
        assert_eq!(page.matches("<section class=\"slot\"").count(), 4);
        assert_eq!(
            page.matches("<details class=\"family\">").count(),
            4,
            "collapsed"
        );
        assert_eq!(page.matches("data-family=\"encode::*\"").count(), 4);
        assert_eq!(page.matches("<g class=\"bar succeeded").count(), 1000);
        let small = Timeline {
            procs: t.procs[..COLLAPSE_ABOVE].to_vec(),
            ..t
        };
        let page = render(&small, &CriticalPath::default());
        assert_eq!(page.matches("<details class=\"family\" open>").count(), 4);
    }

    #[test]
    fn a_proc_s_rows_of_many_watch_cycles_fold_into_one_row() {
        let row = |name: &str, cycle: u32| Bar {
            name: name.into(),
            state: "SUCCEEDED".into(),
            start: Some(cycle as f64),
            end: Some(cycle as f64 + 0.5),
            segments: vec![Segment {
                start: cycle as f64,
                end: cycle as f64 + 0.5,
                place: "1".into(),
                error: None,
            }],
            place: Some("1".into()),
            cycle,
            ..Default::default()
        };
        let mut procs: Vec<Bar> = (0..60).map(|c| row("build", c)).collect();
        procs.push(row("lint", 0));
        let t = Timeline {
            total: 61.0,
            procs,
            ..Default::default()
        };
        let page = render(&t, &CriticalPath::of(&t.procs));
        assert_eq!(
            page.matches("<details class=\"family\">").count(),
            1,
            "closed: {page}"
        );
        assert!(
            page.contains("data-family=\"build\"><div class=\"label\"><b class=\"mark\">&#9670;</b> build <small>(60 runs)</small>"),
            "{page}"
        );
        assert_eq!(page.matches("<g class=\"bar succeeded").count(), 61);
        assert_eq!(page.matches("<g class=\"mini succeeded").count(), 60);
        assert!(!page.contains("data-family=\"lint\""), "{page}");
        // A family's procs, each run in two cycles.
        let procs: Vec<Bar> = ["enc::a", "enc::b", "enc::a", "enc::b"]
            .iter()
            .zip([0, 0, 1, 1])
            .map(|(name, cycle)| row(name, cycle))
            .collect();
        let t = Timeline {
            total: 2.0,
            procs,
            ..Default::default()
        };
        let page = render(&t, &CriticalPath::default());
        assert!(
            page.contains("enc::* <small>(2 procs run 4 times)</small>"),
            "{page}"
        );
    }

    #[test]
    fn procs_on_slurm_jobs_are_one_group_not_one_per_job() {
        let procs: Vec<Bar> = (0..100)
            .map(|i| Bar {
                name: format!("encode::{i}"),
                state: "SUCCEEDED".into(),
                start: Some(0.0),
                end: Some(1.0),
                segments: vec![Segment {
                    start: 0.0,
                    end: 1.0,
                    place: format!("slurm job {}", 500 + i),
                    error: None,
                }],
                place: Some(format!("slurm job {}", 500 + i)),
                ..Default::default()
            })
            .collect();
        let t = Timeline {
            total: 1.0,
            procs,
            ..Default::default()
        };
        let page = render(&t, &CriticalPath::default());
        assert_eq!(page.matches("<section class=\"slot\"").count(), 1, "{page}");
        assert!(page.contains("data-place=\"slurm jobs\""));
        assert_eq!(page.matches("data-family=\"encode::*\"").count(), 1);
        assert!(
            page.contains("\"place\":\"slurm job 599\""),
            "the detail keeps the job"
        );
    }

    #[test]
    fn a_tick_at_the_right_edge_ends_there() {
        let t = Timeline {
            total: 2.5,
            ..Default::default()
        };
        let page = render(&t, &CriticalPath::default());
        assert!(
            page.contains("<span style=\"left:100.000%;transform:translateX(-100%)\">2.50s</span>"),
            "{page}"
        );
        assert!(
            page.contains("<span style=\"left:80.000%\">2.00s</span>"),
            "{page}"
        );
    }

    #[test]
    fn a_run_of_milliseconds_has_distinct_ticks_and_no_critical_path_without_procs() {
        let t = Timeline {
            total: 0.012,
            ..Default::default()
        };
        let page = render(&t, &CriticalPath::of(&t.procs));
        let ticks: Vec<&str> = page
            .split("<div class=\"ticks\">")
            .nth(1)
            .and_then(|s| s.split("</div>").next())
            .expect("the axis")
            .split("</span>")
            .filter_map(|s| s.rsplit('>').next())
            .filter(|s| !s.is_empty())
            .collect();
        assert_eq!(ticks, ["0ms", "2ms", "4ms", "6ms", "8ms", "10ms", "12ms"]);
        assert!(
            page.contains("<span id=\"critical-total\">none: no proc ran</span>"),
            "{page}"
        );
    }

    #[test]
    fn arguments_are_shown_as_a_shell_takes_them() {
        let t = Timeline {
            args: vec!["s.rhai".into(), "--".into(), "two words".into(), "x".into()],
            total: 1.0,
            ..Default::default()
        };
        let page = render(&t, &CriticalPath::default());
        assert!(
            page.contains("<dt>arguments</dt><dd>s.rhai -- &#39;two words&#39; x</dd>"),
            "{page}"
        );
    }

    #[test]
    fn ticks_are_round() {
        for (total, step) in [(8.0, 1.0), (30.0, 5.0), (0.4, 0.05), (900.0, 200.0)] {
            assert!(
                (tick_step(total) - step).abs() < 1e-9,
                "{total}: {}",
                tick_step(total)
            );
        }
    }
}

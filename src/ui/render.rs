//! The live area as text: a pure function of a snapshot and the terminal size, so that it
//! is tested without a terminal.

use std::time::Duration;

use unicode_width::UnicodeWidthChar;

/// A running proc as the live area shows it.
#[derive(Debug, Clone)]
pub(super) struct Running {
    pub name: String,
    pub elapsed: Duration,
    /// The median of its recent successful runs (from the task DB).
    pub expected: Option<Duration>,
    /// The latest `ctx.progress(...)`.
    pub progress: Option<String>,
    /// An attempt failed and the next waits (its `retry_delay`, or a free slot): the
    /// proc is queued again, not running.
    pub retrying: bool,
}

/// Everything the live area shows.
#[derive(Debug, Clone, Default)]
pub(super) struct Snapshot {
    pub elapsed: Duration,
    pub running: Vec<Running>,
    pub done: usize,
    pub failed: usize,
    /// Procs scheduled so far (the `M` of `done N of M`); 0 when not known.
    pub total: usize,
    /// The expected durations of the procs waiting to start (`None`: no history).
    pub queued: Vec<Option<Duration>>,
    /// How many procs run at once.
    pub parallel: usize,
    /// Frame counter, for the spinner.
    pub frame: usize,
}

/// What the header says about the time left.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Eta {
    /// Nothing: no proc has a history (a first run), or all are past their usual time.
    Nothing,
    /// Some running or queued procs have a history and some not.
    Unknown,
    /// Every running and queued proc has a history: the time left.
    Left(Duration),
}

/// The time left: the longest of the running procs' remaining times, and the remaining
/// and queued work spread over the parallel slots (dependencies aside, the slots are
/// assumed busy). Known only when every running and queued proc has an expected duration.
/// A proc waiting to retry is among the queued ones, and counted there only.
pub(super) fn eta(running: &[Running], queued: &[Option<Duration>], parallel: usize) -> Eta {
    let running: Vec<&Running> = running.iter().filter(|r| !r.retrying).collect();
    let expected: Vec<Option<Duration>> = running
        .iter()
        .map(|r| r.expected.map(|e| e.saturating_sub(r.elapsed)))
        .chain(queued.iter().copied())
        .collect();
    let known: Vec<Duration> = expected.iter().flatten().copied().collect();
    if known.is_empty() {
        return Eta::Nothing;
    }
    if known.len() < expected.len() {
        return Eta::Unknown;
    }
    let longest = running
        .iter()
        .filter_map(|r| r.expected.map(|e| e.saturating_sub(r.elapsed)))
        .max()
        .unwrap_or_default();
    let slots = u32::try_from(parallel.max(1)).unwrap_or(u32::MAX);
    let spread = known
        .iter()
        .fold(Duration::ZERO, |a, &d| a.saturating_add(d))
        / slots;
    let left = longest.max(spread);
    if left.is_zero() {
        Eta::Nothing
    } else {
        Eta::Left(left)
    }
}

const SPINNER: [char; 10] = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];

/// `1.2s`, `2m05s`, `1h02m`.
pub(super) fn short(d: Duration) -> String {
    let s = d.as_secs();
    if s < 60 {
        format!("{:.1}s", d.as_secs_f64())
    } else if s < 3600 {
        format!("{}m{:02}s", s / 60, s % 60)
    } else {
        format!("{}h{:02}m", s / 3600, (s % 3600) / 60)
    }
}

/// Cuts a line to `width` terminal columns (a wide character takes two). Control
/// characters (a newline or a tab in a progress text) become spaces: every line of the
/// live area must take exactly one row.
pub(super) fn fit(line: &str, width: usize) -> String {
    let clean: String = line
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    cut(&clean, width)
}

/// Cuts each line of `text` (which may hold colour codes, `ESC [ ... m`, kept and not
/// counted) to `width` columns, so that each takes one row: the lines printed above the
/// live area. A cut line ends with `…` (and a colour reset when it had colour). Other
/// escape sequences are dropped and control characters become spaces (see [`escape_at`]).
pub(super) fn fit_lines(text: &str, width: usize) -> String {
    text.split('\n')
        .map(|l| cut(l, width))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The escape sequence at the start of `s`, which starts with ESC: its length in bytes,
/// and whether it sets colours or attributes (SGR, `ESC [ ... m`), the only kind the
/// lines around the live area keep. Any other (a cursor move, clearing the screen, a
/// window title, a hyperlink) would move the cursor whose rows the area counts, or
/// clear what is on the screen, and is dropped whole.
pub(super) fn escape_at(s: &str) -> (usize, bool) {
    let b = s.as_bytes();
    match b.get(1) {
        // CSI: parameter and intermediate bytes, then a final byte.
        Some(b'[') => match b[2..].iter().position(|c| !(0x20..=0x3f).contains(c)) {
            Some(i) if (0x40..=0x7e).contains(&b[2 + i]) => (3 + i, b[2 + i] == b'm'),
            Some(i) => (2 + i, false),
            None => (b.len(), false),
        },
        // OSC, DCS, SOS, PM, APC: a string ended by BEL or ST (`ESC \`).
        Some(b']' | b'P' | b'X' | b'^' | b'_') => {
            let mut i = 2;
            while i < b.len() {
                match b[i] {
                    0x07 => return (i + 1, false),
                    0x1b if b.get(i + 1) == Some(&b'\\') => return (i + 2, false),
                    _ => i += 1,
                }
            }
            (b.len(), false)
        }
        // ESC, intermediate bytes, a final byte (`ESC 7`, `ESC M`, `ESC ( B`).
        _ => {
            let i = 1 + b[1..]
                .iter()
                .take_while(|c| (0x20..=0x2f).contains(*c))
                .count();
            match b.get(i) {
                Some(c) if c.is_ascii() => (i + 1, false),
                _ => (i, false),
            }
        }
    }
}

/// `text` as prun prints a message it did not write (a thrown error's text, which may
/// name a file a glob found): its colour codes (SGR) kept, as a command's own output
/// keeps them, and every other escape sequence and control character written out (`\e]0;t\x07`,
/// see [`crate::shown::visible`]), which would otherwise set the window's title or
/// clear the screen. Newlines and tabs stay.
pub(crate) fn colours_only(text: &str) -> std::borrow::Cow<'_, str> {
    if !text.chars().any(crate::shown::hidden) {
        return text.into();
    }
    let mut out = String::with_capacity(text.len() + 8);
    let mut rest = text;
    while let Some(c) = rest.chars().next() {
        if c == '\x1b' {
            let (len, colour) = escape_at(rest);
            let len = len.max(1);
            if colour {
                out.push_str(&rest[..len]);
            } else {
                out.push_str(&crate::shown::visible(&rest[..len]));
            }
            rest = &rest[len..];
            continue;
        }
        rest = &rest[c.len_utf8()..];
        if crate::shown::hidden(c) {
            out.push_str(&crate::shown::escaped(c));
        } else {
            out.push(c);
        }
    }
    out.into()
}

/// `line` cut to `width` columns, colour codes kept and not counted, other escape
/// sequences dropped, control characters made spaces.
fn cut(line: &str, width: usize) -> String {
    let fits = columns(line) <= width;
    let mut out = String::with_capacity(line.len() + 4);
    let mut used = 0;
    let mut coloured = false;
    let mut rest = line;
    while let Some(c) = rest.chars().next() {
        if c == '\x1b' {
            let (len, colour) = escape_at(rest);
            if colour {
                coloured = true;
                out.push_str(&rest[..len]);
            }
            rest = &rest[len..];
            continue;
        }
        rest = &rest[c.len_utf8()..];
        let c = if c.is_control() { ' ' } else { c };
        let w = c.width().unwrap_or(0);
        if !fits && used + w + 1 > width {
            break;
        }
        out.push(c);
        used += w;
    }
    if !fits {
        out.push('…');
        if coloured {
            out.push_str("\x1b[0m");
        }
    }
    out
}

/// How many terminal columns a line takes once [`cut`]: escape sequences take none, a
/// control character one (it is shown as a space).
pub(super) fn columns(line: &str) -> usize {
    let mut n = 0;
    let mut rest = line;
    while let Some(c) = rest.chars().next() {
        if c == '\x1b' {
            rest = &rest[escape_at(rest).0..];
            continue;
        }
        rest = &rest[c.len_utf8()..];
        n += if c.is_control() {
            1
        } else {
            c.width().unwrap_or(0)
        };
    }
    n
}

/// The live area's lines: a header (see [`header`]), then one line per running proc (as
/// many as fit in `height - 1` lines, the rest summarised), each cut to `width`. The row
/// below the area holds the cursor: a window of two rows shows the header alone, one of
/// one row nothing (an area taller than the window would scroll a copy of itself away at
/// every redraw). Nothing is wider than `width`, however narrow: a wrapped line would
/// take two rows.
pub(super) fn render(s: &Snapshot, width: u16, height: u16) -> Vec<String> {
    let width = usize::from(width);
    let room = usize::from(height).saturating_sub(1);
    if room == 0 || width == 0 {
        return Vec::new();
    }
    let mut lines = vec![header(s, width)];
    let spin = SPINNER[s.frame % SPINNER.len()];
    // The lines below the header.
    let below = room - 1;
    let shown = if s.running.len() > below {
        below.saturating_sub(1)
    } else {
        s.running.len()
    };
    for r in s.running.iter().take(shown) {
        let sign = if r.retrying { '↻' } else { spin };
        let mut line = format!("{sign} {}  {}", r.name, short(r.elapsed));
        if let Some(e) = r.expected {
            line.push_str(&format!(" / ~{}", short(e)));
        }
        if r.retrying {
            line.push_str("  waiting to retry");
        } else if let Some(p) = &r.progress {
            line.push_str("  ");
            line.push_str(p);
        }
        lines.push(fit(&line, width));
    }
    if shown < s.running.len() && below > 0 {
        let more = format!("… and {} more running", s.running.len() - shown);
        lines.push(fit(&more, width));
    }
    lines
}

/// One part of the header: how long it is kept when the width is short (parts of a lower
/// rank are dropped first), and its text at full width and compacted.
struct Part {
    rank: u8,
    long: String,
    short: String,
}

/// The ranks of the header's parts (see [`header`]): the lowest is dropped first.
const RETRYING: u8 = 0;
const RUNNING: u8 = 1;
const ELAPSED: u8 = 2;
const LABEL: u8 = 3;
const ETA: u8 = 4;
const FAILED: u8 = 5;
const DONE: u8 = 6;

/// How the header's parts are written.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Form {
    Long,
    Short,
    /// Short, and `done 6/17` as `6/17`.
    Tiny,
}

/// The header's line, fitted to `width` without being cut when it can be: at full length
/// (`prun  3.0s  running 2 · done 6 of 13 · failed 1 · ~4.5s left`) when it fits, else
/// with compact words (`prun 3.0s · run 2 · done 6/13 · failed 1 · ETA 4.5s`), else
/// without its least useful parts, one after the other: the counts of procs waiting to
/// retry and of running ones (their lines show them), the run's time, the `prun` label,
/// the time left; then `6/13 · failed 1` before `done 6/13` and `6/13` alone. Cut only
/// when even that does not fit.
fn header(s: &Snapshot, width: usize) -> String {
    let parts = header_parts(s);
    let mut ranks: Vec<u8> = parts.iter().map(|p| p.rank).collect();
    ranks.sort_unstable();
    ranks.dedup();
    let mut tries = vec![(Form::Long, 0)];
    for rank in ranks {
        tries.push((Form::Short, rank));
        if rank == FAILED {
            tries.push((Form::Tiny, rank));
        }
    }
    tries.push((Form::Tiny, DONE));
    let mut line = String::new();
    for (form, min_rank) in tries {
        line = join_parts(&parts, form, min_rank);
        if columns(&line) <= width {
            return line;
        }
    }
    fit(&line, width)
}

/// The parts of rank `min_rank` or more, written in `form`: the label and the run's time
/// lead, followed by the others, separated by ` · `.
fn join_parts(parts: &[Part], form: Form, min_rank: u8) -> String {
    let long = form == Form::Long;
    let text = |p: &Part| match form {
        Form::Long => p.long.clone(),
        Form::Tiny if p.rank == DONE => p.short.trim_start_matches("done ").to_string(),
        Form::Short | Form::Tiny => p.short.clone(),
    };
    let kept = || parts.iter().filter(|p| p.rank >= min_rank);
    let is_lead = |p: &&Part| p.rank == LABEL || p.rank == ELAPSED;
    let lead: Vec<String> = kept().filter(is_lead).map(text).collect();
    let rest: Vec<String> = kept().filter(|p| !is_lead(p)).map(text).collect();
    let gap = if long { "  " } else { " " };
    match (lead.is_empty(), rest.is_empty()) {
        (false, false) => {
            let after = if long { "  " } else { " · " };
            format!("{}{after}{}", lead.join(gap), rest.join(" · "))
        }
        (false, true) => lead.join(gap),
        _ => rest.join(" · "),
    }
}

/// The header's parts, in the order they are shown.
fn header_parts(s: &Snapshot) -> Vec<Part> {
    let part = |rank, long: String, short: String| Part { rank, long, short };
    let finished = s.done + s.failed;
    let retrying = s.running.iter().filter(|r| r.retrying).count();
    let running = s.running.len() - retrying;
    let elapsed = short(s.elapsed);
    let mut parts = vec![
        part(LABEL, "prun".into(), "prun".into()),
        part(ELAPSED, elapsed.clone(), elapsed),
        part(
            RUNNING,
            format!("running {running}"),
            format!("run {running}"),
        ),
    ];
    if retrying > 0 {
        parts.push(part(
            RETRYING,
            format!("retrying {retrying}"),
            format!("retry {retrying}"),
        ));
    }
    // The total grows while the script schedules more: never below what is counted. The
    // queue comes with the total, from an earlier read than the counts, and may still
    // hold procs counted since as running or done: it counts only when no total is known.
    let counted = finished + s.running.len();
    let total = if s.total == 0 {
        counted + s.queued.len()
    } else {
        s.total.max(counted)
    };
    parts.push(if total > 0 {
        part(
            DONE,
            format!("done {finished} of {total}"),
            format!("done {finished}/{total}"),
        )
    } else {
        part(DONE, format!("done {finished}"), format!("done {finished}"))
    });
    if s.failed > 0 {
        let failed = format!("failed {}", s.failed);
        parts.push(part(FAILED, failed.clone(), failed));
    }
    match eta(&s.running, &s.queued, s.parallel) {
        Eta::Nothing => {}
        Eta::Unknown => parts.push(part(ETA, "ETA unknown".into(), "ETA ?".into())),
        Eta::Left(left) => parts.push(part(
            ETA,
            format!("~{} left", short(left)),
            format!("ETA {}", short(left)),
        )),
    }
    parts
}

#[cfg(test)]
mod tests {
    use super::*;

    fn running(n: usize) -> Vec<Running> {
        (0..n)
            .map(|i| Running {
                name: format!("job{i}"),
                elapsed: Duration::from_millis(1500),
                expected: None,
                progress: None,
                retrying: false,
            })
            .collect()
    }

    #[test]
    fn a_proc_waiting_to_retry_is_not_running_and_counts_once_in_the_time_left() {
        let secs = Duration::from_secs;
        let mut run = running(3);
        for r in &mut run {
            r.expected = Some(secs(3)); // 1.5 s left each
        }
        run[2].retrying = true;
        run[2].progress = Some("50%".into());
        // The retry is queued again (whole expected duration), with one other proc:
        // (1.5 + 1.5 + 3 + 3) / 2 = 4.5 s; counted as running too, it made 5.25 s.
        let s = Snapshot {
            elapsed: Duration::from_secs(2),
            running: run,
            queued: vec![Some(secs(3)); 2],
            done: 1,
            total: 5,
            parallel: 2,
            ..Snapshot::default()
        };
        let lines = render(&s, 80, 24);
        assert_eq!(
            lines[0],
            "prun  2.0s  running 2 · retrying 1 · done 1 of 5 · ~4.5s left"
        );
        assert_eq!(lines[3], "↻ job2  1.5s / ~3.0s  waiting to retry");
    }

    #[test]
    fn header_and_one_line_per_running_proc() {
        let mut s = Snapshot {
            elapsed: Duration::from_secs(3),
            running: running(2),
            done: 5,
            failed: 1,
            total: 13,
            parallel: 2,
            ..Snapshot::default()
        };
        s.running[1].progress = Some("50%".into());
        s.running[1].expected = Some(Duration::from_secs(4));
        let lines = render(&s, 80, 24);
        assert_eq!(
            lines[0],
            "prun  3.0s  running 2 · done 6 of 13 · failed 1 · ETA unknown"
        );
        assert_eq!(lines[1], "⠋ job0  1.5s");
        assert_eq!(lines[2], "⠋ job1  1.5s / ~4.0s  50%");
        assert_eq!(lines.len(), 3);
    }

    #[test]
    fn expected_durations_too_long_to_add_up_make_the_longest_eta() {
        // Durations from a task DB may be anything a `Duration` holds: their sum overflowed.
        let long = Some(Duration::MAX);
        assert_eq!(eta(&[], &[long, long], 1), Eta::Left(Duration::MAX));
        assert_eq!(short(Duration::MAX), "5124095576030431h00m");
    }

    #[test]
    fn the_eta_counts_queued_procs_spread_over_the_slots() {
        let secs = Duration::from_secs;
        let mut run = running(2);
        run[0].expected = Some(secs(2)); // 0.5 s left
        run[1].expected = Some(secs(3)); // 1.5 s left
        // Nothing queued: the longest running proc.
        assert_eq!(eta(&run, &[], 2), Eta::Left(Duration::from_millis(1500)));
        // Queued work spread over 2 slots: (0.5 + 1.5 + 4 + 4 + 4) / 2 = 7 s.
        assert_eq!(eta(&run, &[Some(secs(4)); 3], 2), Eta::Left(secs(7)));
        // A queued proc without history makes the time left unknown.
        assert_eq!(eta(&run, &[Some(secs(4)), None], 2), Eta::Unknown);
        // No history at all (a first run): nothing to say.
        assert_eq!(eta(&running(2), &[None], 2), Eta::Nothing);
        let s = Snapshot {
            elapsed: Duration::from_millis(1900),
            running: run,
            queued: vec![Some(secs(4)); 11],
            done: 0,
            parallel: 2,
            ..Snapshot::default()
        };
        assert_eq!(
            render(&s, 80, 24)[0],
            "prun  1.9s  running 2 · done 0 of 13 · ~23.0s left"
        );
    }

    #[test]
    fn procs_still_queued_in_an_older_read_do_not_raise_the_total() {
        // 20 procs: the queue was read when 15 waited; 3 of them have started since
        // (the header said `of 23`).
        let s = Snapshot {
            running: running(2),
            done: 6,
            total: 20,
            queued: vec![None; 15],
            parallel: 2,
            ..Snapshot::default()
        };
        assert!(
            render(&s, 80, 24)[0].contains("done 6 of 20"),
            "{:?}",
            render(&s, 80, 24)
        );
        // More counted than the last read scheduled: the script scheduled more since.
        let s = Snapshot {
            running: running(2),
            done: 21,
            total: 20,
            ..Snapshot::default()
        };
        assert!(render(&s, 80, 24)[0].contains("done 21 of 23"));
    }

    #[test]
    fn more_procs_than_fit_are_summarised() {
        let s = Snapshot {
            running: running(30),
            ..Snapshot::default()
        };
        let lines = render(&s, 80, 10);
        assert_eq!(lines.len(), 9);
        assert_eq!(lines.last().unwrap(), "… and 23 more running");
    }

    #[test]
    fn the_area_leaves_the_cursor_a_row_of_a_small_window() {
        let s = Snapshot {
            running: running(3),
            ..Snapshot::default()
        };
        assert!(render(&s, 80, 1).is_empty());
        let header = render(&s, 80, 2);
        assert_eq!(header.len(), 1);
        assert!(header[0].contains("running 3"), "{header:?}");
        assert_eq!(render(&s, 80, 3)[1], "… and 3 more running");
        assert_eq!(render(&s, 80, 4).len(), 3);
    }

    #[test]
    fn a_narrow_header_drops_its_least_useful_parts_instead_of_being_cut() {
        let secs = Duration::from_secs;
        let mut run = running(3);
        for r in &mut run {
            r.expected = Some(secs(3));
        }
        run[2].retrying = true;
        let s = Snapshot {
            elapsed: Duration::from_secs(75),
            running: run,
            queued: vec![Some(secs(3)); 8],
            done: 4,
            failed: 2,
            total: 17,
            parallel: 2,
            ..Snapshot::default()
        };
        let header = |width| render(&s, width, 24).remove(0);
        assert_eq!(
            header(80),
            "prun  1m15s  running 2 · retrying 1 · done 6 of 17 · failed 2 · ~13.5s left"
        );
        // The render width is a terminal's less one column (see `live`).
        let at = [
            (
                70,
                "prun 1m15s · run 2 · retry 1 · done 6/17 · failed 2 · ETA 13.5s",
            ),
            (60, "prun 1m15s · run 2 · done 6/17 · failed 2 · ETA 13.5s"),
            (39, "prun · done 6/17 · failed 2 · ETA 13.5s"),
            (32, "done 6/17 · failed 2 · ETA 13.5s"),
            (31, "done 6/17 · failed 2"),
            (19, "6/17 · failed 2"),
            (14, "done 6/17"),
            (8, "6/17"),
            (3, "6/…"),
        ];
        for (width, line) in at {
            assert_eq!(header(width), line, "at {width} columns");
        }
        for width in 1..=80 {
            for line in render(&s, width, 24) {
                assert!(columns(&line) <= usize::from(width), "{width}: {line:?}");
            }
        }
    }

    #[test]
    fn lines_are_cut_to_the_width() {
        let mut s = Snapshot {
            running: running(1),
            ..Snapshot::default()
        };
        s.running[0].name = "x".repeat(100);
        for line in render(&s, 40, 10) {
            assert!(line.chars().count() <= 40, "{line}");
        }
    }

    #[test]
    fn control_and_wide_characters_keep_one_row() {
        assert_eq!(fit("a\nb\tc", 10), "a b c");
        let wide = "编码".repeat(30);
        let cut = fit(&wide, 21);
        assert!(columns(&cut) <= 21, "{cut}");
        assert!(cut.ends_with('…'));
    }

    #[test]
    fn lines_above_the_area_are_cut_and_keep_their_colour_codes() {
        let text = format!("\x1b[31mFAILED\x1b[0m {}\nshort", "x".repeat(50));
        let cut = fit_lines(&text, 20);
        let lines: Vec<&str> = cut.lines().collect();
        assert_eq!(columns(lines[0]), 20, "{:?}", lines[0]);
        assert!(lines[0].starts_with("\x1b[31mFAILED\x1b[0m xxx"));
        assert!(lines[0].ends_with("…\x1b[0m"));
        assert_eq!(lines[1], "short");
    }

    #[test]
    fn escape_sequences_other_than_colours_are_dropped_and_controls_made_spaces() {
        let line = "a\x1b[31mb\x1b[0m\x1b[3Ac\x1b[1G\x1b[2J\x1b]0;t\x07\x1b]8;;u\x1b\\d\x1b7\x1b(Be\x07\x0bf\x1b";
        let fitted = fit_lines(line, 80);
        assert_eq!(fitted, "a\x1b[31mb\x1b[0mcde  f");
        assert_eq!(columns(&fitted), 8);
        assert_eq!(columns(line), 8);
        // Cut, the colour is reset; a CSI cut short by the line's end goes with it.
        assert_eq!(
            fit_lines("\x1b[1mbold text\x1b[", 6),
            "\x1b[1mbold …\x1b[0m"
        );
        // A sequence that ends in a character that is not ASCII keeps it.
        assert_eq!(fit_lines("\x1bé\x1b[é", 10), "éé");
    }

    #[test]
    fn a_message_keeps_its_colours_and_writes_out_every_other_control() {
        let text = "a\x1b[31mred\x1b[0m \x1b]0;t\x07 \x1b[2J\x07\n\tb\x1b";
        assert_eq!(
            colours_only(text),
            "a\x1b[31mred\x1b[0m \\e]0;t\\x07 \\e[2J\\x07\n\tb\\e"
        );
        assert!(matches!(
            colours_only("plain\n"),
            std::borrow::Cow::Borrowed(_)
        ));
    }

    #[test]
    fn short_durations() {
        assert_eq!(short(Duration::from_millis(1234)), "1.2s");
        assert_eq!(short(Duration::from_secs(125)), "2m05s");
        assert_eq!(short(Duration::from_secs(3720)), "1h02m");
    }
}

//! The live area as text: a pure function of a snapshot and the terminal size, so that it
//! is tested without a terminal.

use std::time::Duration;

use unicode_width::UnicodeWidthChar;

/// A running proc as the live area shows it.
#[derive(Debug, Clone)]
pub struct Running {
    pub name: String,
    pub elapsed: Duration,
    /// The median of its recent successful runs (from the task DB).
    pub expected: Option<Duration>,
    /// The latest `ctx.progress(...)`.
    pub progress: Option<String>,
}

/// Everything the live area shows.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    pub elapsed: Duration,
    pub running: Vec<Running>,
    pub done: usize,
    pub failed: usize,
    /// Frame counter, for the spinner.
    pub frame: usize,
}

const SPINNER: [char; 10] = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];

/// `1.2s`, `2m05s`, `1h02m`.
pub fn short(d: Duration) -> String {
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
pub fn fit(line: &str, width: usize) -> String {
    let clean: String = line
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if columns(&clean) <= width {
        return clean;
    }
    let mut out = String::new();
    let mut used = 0;
    for c in clean.chars() {
        let w = c.width().unwrap_or(0);
        if used + w + 1 > width {
            break;
        }
        out.push(c);
        used += w;
    }
    out.push('…');
    out
}

/// How many terminal columns a line takes.
pub fn columns(line: &str) -> usize {
    line.chars().map(|c| c.width().unwrap_or(0)).sum()
}

/// The live area's lines: a header, then one line per running proc (as many as fit in
/// `height - 1` lines, the rest summarised), each cut to `width`.
pub fn render(s: &Snapshot, width: u16, height: u16) -> Vec<String> {
    let width = usize::from(width.max(10));
    let room = usize::from(height.max(3)) - 1;
    let mut header = format!(
        "prun  {}  running {} · done {}",
        short(s.elapsed),
        s.running.len(),
        s.done
    );
    if s.failed > 0 {
        header.push_str(&format!(" · failed {}", s.failed));
    }
    let left = s
        .running
        .iter()
        .filter_map(|r| r.expected.map(|e| e.saturating_sub(r.elapsed)))
        .max();
    // Procs past their usual time make the estimate meaningless rather than zero.
    if let Some(left) = left.filter(|l| !l.is_zero()) {
        header.push_str(&format!(" · ~{} left", short(left)));
    }
    let mut lines = vec![fit(&header, width)];
    let spin = SPINNER[s.frame % SPINNER.len()];
    let shown = if s.running.len() + 1 > room {
        room.saturating_sub(2)
    } else {
        s.running.len()
    };
    for r in s.running.iter().take(shown) {
        let mut line = format!("{spin} {}  {}", r.name, short(r.elapsed));
        if let Some(e) = r.expected {
            line.push_str(&format!(" / ~{}", short(e)));
        }
        if let Some(p) = &r.progress {
            line.push_str("  ");
            line.push_str(p);
        }
        lines.push(fit(&line, width));
    }
    if shown < s.running.len() {
        let more = format!("… and {} more running", s.running.len() - shown);
        lines.push(fit(&more, width));
    }
    lines
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
            })
            .collect()
    }

    #[test]
    fn header_and_one_line_per_running_proc() {
        let mut s = Snapshot {
            elapsed: Duration::from_secs(3),
            running: running(2),
            done: 5,
            failed: 1,
            frame: 0,
        };
        s.running[1].progress = Some("50%".into());
        s.running[1].expected = Some(Duration::from_secs(4));
        let lines = render(&s, 80, 24);
        assert_eq!(
            lines[0],
            "prun  3.0s  running 2 · done 5 · failed 1 · ~2.5s left"
        );
        assert_eq!(lines[1], "⠋ job0  1.5s");
        assert_eq!(lines[2], "⠋ job1  1.5s / ~4.0s  50%");
        assert_eq!(lines.len(), 3);
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
    fn short_durations() {
        assert_eq!(short(Duration::from_millis(1234)), "1.2s");
        assert_eq!(short(Duration::from_secs(125)), "2m05s");
        assert_eq!(short(Duration::from_secs(3720)), "1h02m");
    }
}

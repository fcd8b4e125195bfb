//! What procs' own output looks like on prun's output: `--output stream` lines, each
//! prefixed with the proc's name (`name │ line`, as `parallel --tag`), and `--output
//! grouped` groups (a header naming the proc, then its log).
//!
//! Above the live display every row must fit the terminal (the area's cursor arithmetic
//! counts rows), so there a long line is wrapped, never cut: its continuation rows are
//! prefixed `name ┆ `. Plain output leaves lines as they are.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::path::Path;

use unicode_width::UnicodeWidthChar;

/// Between a proc's name and one of its lines.
const BAR: &str = " │ ";
/// Between a proc's name and the continuation of a wrapped line.
const CONTINUED: &str = " ┆ ";

/// Prefixes each line of `lines` (each ending with a newline) with the proc's name; with a
/// `width`, wraps each to rows of at most that many columns.
pub(super) fn prefixed(proc: &str, lines: &str, width: Option<usize>) -> String {
    let mut out = String::with_capacity(lines.len() + 16);
    for line in lines.lines() {
        push_line(&mut out, proc, line, width);
    }
    out
}

fn push_line(out: &mut String, proc: &str, line: &str, width: Option<usize>) {
    let line = &*as_a_terminal_shows(line);
    let Some(width) = width else {
        out.push_str(&format!("{proc}{BAR}{line}\n"));
        return;
    };
    let proc = name_within(proc, width);
    let prefix = super::render::columns(&proc) + BAR.chars().count();
    let room = width.saturating_sub(prefix).max(MIN_TEXT);
    for (i, row) in wrap(line, room).iter().enumerate() {
        let bar = if i == 0 { BAR } else { CONTINUED };
        out.push_str(&format!("{proc}{bar}{row}\n"));
    }
}

/// The fewest columns a line's text gets beside its proc's name above the live area.
const MIN_TEXT: usize = 8;

/// A proc's name as it prefixes its lines in a terminal `width` columns wide: cut (`…`)
/// when it would leave the text fewer than [`MIN_TEXT`] columns, so that every row fits
/// (a terminal of 20 columns and a name of 20). The log and plain output keep it whole.
fn name_within(proc: &str, width: usize) -> std::borrow::Cow<'_, str> {
    let room = width.saturating_sub(BAR.chars().count() + MIN_TEXT).max(2);
    if super::render::columns(proc) <= room {
        proc.into()
    } else {
        super::render::fit(proc, room).into()
    }
}

/// A line with carriage returns (a progress bar redrawn in place: `10%\r20%\r30%`) as a
/// terminal shows it: each piece after a `\r` written over the start of the text before
/// it. Printed raw after the `name │ ` prefix, the `\r` would send the cursor back over
/// the prefix and the progress would overwrite the proc's name. Counted in characters,
/// as a terminal of single-width characters would.
fn as_a_terminal_shows(line: &str) -> std::borrow::Cow<'_, str> {
    if !line.contains('\r') {
        return line.into();
    }
    let mut cells: Vec<char> = Vec::with_capacity(line.len());
    let mut at = 0;
    for c in line.chars() {
        if c == '\r' {
            at = 0;
            continue;
        }
        match cells.get_mut(at) {
            Some(cell) => *cell = c,
            None => cells.push(c),
        }
        at += 1;
    }
    cells.into_iter().collect::<String>().into()
}

/// The line above a group: the proc's name.
pub(super) fn group_header(proc: &str) -> String {
    format!("── {proc} ──")
}

/// The longest piece of a line a group reads at once: a longer line (a binary dump, a
/// progress bar redrawn with `\r`) is written piece by piece, as `--output stream` bounds
/// the partial lines it keeps.
const PIECE: u64 = 64 * 1024;

/// Writes a group: its header, then the log read back line by line, a line longer than
/// [`PIECE`] bytes in pieces (never whole in memory), wrapped to `width` when given.
/// The lines go out in writes of up to [`PIECE`] bytes: prun's stdout is line-buffered,
/// and a write per line would be a system call per line.
pub(super) fn write_group(
    out: &mut dyn Write,
    proc: &str,
    log: &Path,
    width: Option<usize>,
) -> io::Result<()> {
    let mut out = io::BufWriter::with_capacity(PIECE as usize, out);
    write_group_lines(&mut out, proc, log, width)?;
    out.flush()
}

fn write_group_lines(
    out: &mut impl Write,
    proc: &str,
    log: &Path,
    width: Option<usize>,
) -> io::Result<()> {
    match width {
        Some(w) => writeln!(out, "{}", super::render::fit(&group_header(proc), w))?,
        None => writeln!(out, "{}", group_header(proc))?,
    }
    let mut reader = BufReader::new(File::open(log)?);
    let mut carried = Vec::new();
    let mut mid_line = false;
    loop {
        let mut buf = std::mem::take(&mut carried);
        let read = (&mut reader).take(PIECE).read_until(b'\n', &mut buf)?;
        if buf.is_empty() {
            if mid_line {
                writeln!(out)?;
            }
            return Ok(());
        }
        // A piece that ends its line (a newline, or the log's end before the piece's
        // bound), else one of a line that goes on.
        let ends = buf.last() == Some(&b'\n') || (read as u64) < PIECE;
        if buf.last() == Some(&b'\n') {
            buf.pop();
        } else if !ends {
            carried = split_partial_char(&mut buf);
        }
        let line = String::from_utf8_lossy(&buf);
        mid_line = !ends;
        match width {
            None if ends => writeln!(out, "{line}")?,
            None => write!(out, "{line}")?,
            Some(w) => {
                for row in wrap(&line, w.max(8)) {
                    writeln!(out, "{row}")?;
                }
            }
        }
    }
}

/// Takes off the end of `buf` the first bytes of a UTF-8 character cut by the end of a
/// piece, to be read with the rest of it.
fn split_partial_char(buf: &mut Vec<u8>) -> Vec<u8> {
    let from = buf.len().saturating_sub(3);
    let Some(lead) = (from..buf.len()).rev().find(|&i| buf[i] & 0xC0 != 0x80) else {
        return Vec::new();
    };
    let len = match buf[lead] {
        0xC0..=0xDF => 2,
        0xE0..=0xEF => 3,
        0xF0..=0xF7 => 4,
        _ => 1,
    };
    if buf.len() - lead < len {
        buf.split_off(lead)
    } else {
        Vec::new()
    }
}

/// Cuts `line` into rows of at most `width` columns (a wide character takes two). Colour
/// codes (`ESC [ ... m`) are kept and take no column; a row that had colour ends with a
/// reset. Other escape sequences (a cursor move, clearing the screen) are dropped and
/// control characters (a tab, a carriage return, a bell) become spaces, so that each row
/// takes one row and the live area below stays where it was drawn.
pub(super) fn wrap(line: &str, width: usize) -> Vec<String> {
    let width = width.max(1);
    let mut rows = Vec::new();
    let mut row = String::new();
    let (mut used, mut coloured) = (0, false);
    let mut rest = line;
    while let Some(c) = rest.chars().next() {
        if c == '\x1b' {
            let (len, colour) = super::render::escape_at(rest);
            if colour {
                coloured = true;
                row.push_str(&rest[..len]);
            }
            rest = &rest[len..];
            continue;
        }
        rest = &rest[c.len_utf8()..];
        let c = if c.is_control() { ' ' } else { c };
        let w = c.width().unwrap_or(0);
        if used + w > width {
            if coloured {
                row.push_str("\x1b[0m");
            }
            rows.push(std::mem::take(&mut row));
            used = 0;
        }
        row.push(c);
        used += w;
    }
    if coloured {
        row.push_str("\x1b[0m");
    }
    rows.push(row);
    rows
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ui::render::columns;

    #[test]
    fn plain_lines_are_prefixed_and_left_whole() {
        let long = "x".repeat(300);
        let text = prefixed("build", &format!("a\n{long}\n"), None);
        assert_eq!(text, format!("build │ a\nbuild │ {long}\n"));
    }

    #[test]
    fn a_line_redrawn_with_carriage_returns_shows_what_a_terminal_would() {
        let text = prefixed("copy", "10%\r20%\r30% done\nabcdef\rXY\nend\r\n", None);
        assert_eq!(text, "copy │ 30% done\ncopy │ XYcdef\ncopy │ end\n");
        let wrapped = prefixed("copy", "10%\r20%\n", Some(40));
        assert_eq!(wrapped, "copy │ 20%\n");
    }

    #[test]
    fn lines_above_the_live_area_are_wrapped_to_the_width() {
        let text = prefixed("p", &format!("{}\n", "é".repeat(25)), Some(14));
        let rows: Vec<&str> = text.lines().collect();
        assert_eq!(rows, ["p │ éééééééééé", "p ┆ éééééééééé", "p ┆ ééééé"]);
        assert!(rows.iter().all(|r| columns(r) <= 14));
    }

    #[test]
    fn wrapping_drops_escape_sequences_that_move_the_cursor_or_clear_the_screen() {
        // Clear the screen, home, a window title (OSC, ended by BEL and by ST), a cursor
        // save, a terminal reset: each would break the live area's row arithmetic.
        let line = "a\x1b[2Jb\x1b[Hc\x1b]0;title\x07d\x1b]2;t\x1b\\e\x1b7f\x1bcg\x1b[31mh";
        assert_eq!(wrap(line, 80), ["abcdefg\x1b[31mh\x1b[0m"]);
        assert_eq!(wrap("\x1b[1;31mx\x1b[?25l", 80), ["\x1b[1;31mx\x1b[0m"]);
    }

    #[test]
    fn a_name_too_wide_for_a_narrow_terminal_is_cut_so_that_every_row_fits() {
        let name = "構築::日本語のなまえ"; // 20 columns
        let text = prefixed(name, "こんにちは世界 🎉🎉\n", Some(19));
        let rows: Vec<&str> = text.lines().collect();
        assert_eq!(
            rows,
            ["構築::… │ こんにち", "構築::… ┆ は世界 🎉", "構築::… ┆ 🎉"]
        );
        assert!(rows.iter().all(|r| columns(r) <= 19), "{rows:?}");
        // Wide enough: whole.
        assert_eq!(prefixed(name, "x\n", Some(40)), format!("{name} │ x\n"));
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("p.log");
        std::fs::write(&log, "one\n").unwrap();
        let mut out = Vec::new();
        write_group(&mut out, name, &log, Some(19)).unwrap();
        let group = String::from_utf8(out).unwrap();
        assert!(group.lines().all(|r| columns(r) <= 19), "{group:?}");
    }

    #[test]
    fn wrapping_counts_wide_characters_and_skips_colour_codes() {
        assert_eq!(wrap("日本語", 4), ["日本", "語"]);
        assert_eq!(
            wrap("\x1b[31mabc\x1b[0m", 2),
            ["\x1b[31mab\x1b[0m", "c\x1b[0m\x1b[0m"]
        );
        assert_eq!(wrap("a\tb", 10), ["a b"]);
        assert_eq!(wrap("a\x1b[2Jb\x1b[3Ac\x07", 10), ["abc "]);
        assert_eq!(wrap("", 10), [""]);
    }

    #[test]
    fn a_group_is_its_header_and_the_log() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("p.log");
        std::fs::write(&log, "one\ntwo").unwrap();
        let mut out = Vec::new();
        write_group(&mut out, "p", &log, None).unwrap();
        assert_eq!(String::from_utf8(out).unwrap(), "── p ──\none\ntwo\n");
    }

    /// Records the longest single write it was given, and how many writes.
    #[derive(Default)]
    struct Longest {
        data: Vec<u8>,
        longest: usize,
        writes: usize,
    }

    impl Write for Longest {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.longest = self.longest.max(buf.len());
            self.writes += 1;
            self.data.extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_group_writes_a_huge_line_in_pieces_and_cuts_no_character() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("p.log");
        // 2-byte characters after one byte: every piece boundary cuts one in two.
        let huge = format!("x{}", "é".repeat(300_000));
        std::fs::write(&log, format!("a\n{huge}\nb")).unwrap();
        let mut out = Longest::default();
        write_group(&mut out, "p", &log, None).unwrap();
        assert!(
            out.longest <= PIECE as usize + 4,
            "written whole: {}",
            out.longest
        );
        let text = String::from_utf8(out.data).unwrap();
        assert_eq!(text, format!("── p ──\na\n{huge}\nb\n"));

        let mut out = Longest::default();
        write_group(&mut out, "p", &log, Some(40)).unwrap();
        let text = String::from_utf8(out.data).unwrap();
        assert!(!text.contains('\u{fffd}'));
        assert!(text.lines().all(|r| columns(r) <= 40));
        assert_eq!(text.matches('é').count(), 300_000);
    }

    #[test]
    fn a_group_of_many_short_lines_is_written_in_few_writes() {
        // Each write to prun's stdout is a system call (it is line-buffered): a group
        // written line by line made a proc of 3 million lines take seconds to show.
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("p.log");
        let lines: String = (0..10_000).map(|i| format!("{i}\n")).collect();
        std::fs::write(&log, &lines).unwrap();
        for width in [None, Some(40)] {
            let mut out = Longest::default();
            write_group(&mut out, "p", &log, width).unwrap();
            assert_eq!(
                String::from_utf8(out.data).unwrap(),
                format!("── p ──\n{lines}")
            );
            assert!(out.writes <= 10, "{} writes for 10,000 lines", out.writes);
        }
    }
}

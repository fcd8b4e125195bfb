//! A command's text as messages show it (see [`command`]): the one place that decides how
//! much of a long command line a failure message, the terminal and the cron mail get.

use std::fmt;

/// The most characters of a command's text that a message shows.
const SHOWN_CHARS: usize = 1000;

/// A command's text as messages show it: cut after [`SHOWN_CHARS`] characters, saying how
/// much was left out, so that a command given thousands of file names does not fill the
/// terminal and the cron mail with its failure. The log's header keeps it whole.
pub(crate) fn command(command: &dyn fmt::Display) -> String {
    let text = command.to_string();
    match text.char_indices().nth(SHOWN_CHARS) {
        None => text,
        Some((cut, _)) => format!("{}… ({} more bytes)", &text[..cut], text.len() - cut),
    }
}

/// `text` with its control characters written out (`\e`, `\r`, `\x07`, `\u009b`), for a
/// message that shows a name prun did not choose (a file name a glob found, a value of
/// the script's data): an escape sequence in it would otherwise reach the terminal and
/// could move the cursor, rewrite what is shown or set the window's title. Newlines and
/// tabs stay as they are.
pub(crate) fn visible(text: &str) -> std::borrow::Cow<'_, str> {
    if !text.chars().any(hidden) {
        return text.into();
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if hidden(c) {
            out.push_str(&escaped(c));
        } else {
            out.push(c);
        }
    }
    out.into()
}

/// Bytes as [`visible`] writes a text, with each byte that is not UTF-8 written out
/// (`a\xe9b`).
pub(crate) fn bytes(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() + 8);
    for chunk in bytes.utf8_chunks() {
        out.push_str(&visible(chunk.valid()));
        for b in chunk.invalid() {
            out.push_str(&format!("\\x{b:02x}"));
        }
    }
    out
}

/// A path as [`visible`] writes a text: its control characters written out.
pub(crate) fn path(path: &std::path::Path) -> String {
    visible(&path.to_string_lossy()).into_owned()
}

/// `text` with every control character written out as [`visible`] writes them, a newline
/// and a tab too: for a path in a position (`path:line:col`), which must stay one line
/// and one word, so that a script whose name holds a newline does not split its error's
/// position over two lines.
pub(crate) fn one_line(text: &str) -> std::borrow::Cow<'_, str> {
    if !text.chars().any(char::is_control) {
        return text.into();
    }
    text.chars()
        .map(|c| {
            if c.is_control() {
                escaped(c)
            } else {
                c.to_string()
            }
        })
        .collect::<String>()
        .into()
}

/// A control character a terminal may act on (tabs and newlines aside).
pub(crate) fn hidden(c: char) -> bool {
    c.is_control() && c != '\n' && c != '\t'
}

/// A word with a control character, quoted as bash, zsh and ksh read `$'...'`
/// (`$'a\eb'`): the line can still be pasted, and shows the character rather than sending
/// it to the terminal. A newline counts too: a command's words stay on one line
/// (`$'a\nb'`), so that one command is one line of a message, a log's header or `-v`. A
/// tab does not: quoted as `'a<tab>b'` it is on one line, and POSIX `sh` (dash) reads it.
/// `None` for a word without one.
pub(crate) fn c_quoted(word: &str) -> Option<String> {
    if !word.chars().any(|c| hidden(c) || c == '\n') {
        return None;
    }
    let mut out = String::from("$'");
    for c in word.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\'' => out.push_str("\\'"),
            c if c.is_control() => out.push_str(&escaped(c)),
            c => out.push(c),
        }
    }
    out.push('\'');
    Some(out)
}

/// A control character as `$'...'` (bash, zsh, ksh) and [`visible`] write it.
pub(crate) fn escaped(c: char) -> String {
    match c {
        '\x1b' => "\\e".into(),
        '\r' => "\\r".into(),
        '\n' => "\\n".into(),
        '\t' => "\\t".into(),
        c if (c as u32) < 0x80 => format!("\\x{:02x}", c as u32),
        c => format!("\\u{:04x}", c as u32),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_written_out_and_the_rest_left_as_it_is() {
        assert_eq!(visible("plain é\tand\nlines"), "plain é\tand\nlines");
        assert_eq!(
            visible("a\x1b]0;owned\x07b\u{9b}2Jc\r"),
            "a\\e]0;owned\\x07b\\u009b2Jc\\r"
        );
        assert_eq!(c_quoted("it's"), None);
        assert_eq!(
            c_quoted("it's\x1b[2J a\\b\n").as_deref(),
            Some("$'it\\'s\\e[2J a\\\\b\\n'")
        );
        // A word's newline keeps the command on one line; a tab is on one line.
        assert_eq!(c_quoted("a\nb").as_deref(), Some("$'a\\nb'"));
        assert_eq!(c_quoted("t\tx"), None);
        assert_eq!(one_line("a\nb\tc\x1bd é"), "a\\nb\\tc\\ed é");
    }

    #[test]
    fn a_long_command_is_cut_at_a_character_and_says_how_much_is_left_out() {
        assert_eq!(command(&"echo hi"), "echo hi");
        let long = "é".repeat(SHOWN_CHARS + 10);
        let shown = command(&long);
        assert_eq!(shown.chars().filter(|&c| c == 'é').count(), SHOWN_CHARS);
        assert!(shown.ends_with("… (20 more bytes)"), "{shown}");
    }
}

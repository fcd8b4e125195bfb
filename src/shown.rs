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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_long_command_is_cut_at_a_character_and_says_how_much_is_left_out() {
        assert_eq!(command(&"echo hi"), "echo hi");
        let long = "é".repeat(SHOWN_CHARS + 10);
        let shown = command(&long);
        assert_eq!(shown.chars().filter(|&c| c == 'é').count(), SHOWN_CHARS);
        assert!(shown.ends_with("… (20 more bytes)"), "{shown}");
    }
}

//! `--output stream`: the lines a proc's commands print, handed to the reporter as they
//! come, whole.
//!
//! A [`Tap`] names the proc and the reporter; each stream read from a child gets its own
//! [`Lines`], which keeps a partial line until its newline arrives, so that a line is
//! never printed in two pieces with another proc's line between them. A partial line is
//! printed when its stream ends (the command exited without a final newline), or once it
//! grows past [`LINE_BOUND`] bytes (a progress bar redrawn with `\r`, a binary dump):
//! prun never holds more than that per stream.

use std::sync::Arc;

use crate::ui::Reporter;

/// The longest partial line kept back waiting for its newline.
pub(crate) const LINE_BOUND: usize = 64 * 1024;

/// Where one proc's streamed lines go.
#[derive(Clone)]
pub(crate) struct Tap {
    proc: Arc<str>,
    reporter: Arc<dyn Reporter>,
}

impl std::fmt::Debug for Tap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tap").field("proc", &self.proc).finish()
    }
}

impl Tap {
    /// The tap of proc `proc`, printing through `reporter`.
    pub(crate) fn new(proc: Arc<str>, reporter: Arc<dyn Reporter>) -> Tap {
        Tap { proc, reporter }
    }

    /// A line buffer for one stream of a command.
    pub(crate) fn lines(&self) -> Lines {
        Lines {
            tap: self.clone(),
            pending: Vec::new(),
            cut: false,
        }
    }
}

/// Where a piece of a partial line that fills [`LINE_BOUND`] (`piece`) ends: before a
/// character split at its end (the rest of it goes with the next piece), or at its end.
fn piece_end(piece: &[u8]) -> usize {
    match std::str::from_utf8(piece) {
        Err(e) if e.error_len().is_none() && e.valid_up_to() > 0 => e.valid_up_to(),
        _ => piece.len(),
    }
}

/// Cuts one stream into whole lines for a [`Tap`].
pub(crate) struct Lines {
    tap: Tap,
    pending: Vec<u8>,
    /// The last bytes pushed ended with a piece of [`LINE_BOUND`] printed without its
    /// newline: a newline coming next ends that piece rather than an empty line.
    cut: bool,
}

impl Lines {
    /// Takes bytes read from the stream; prints the lines they complete.
    pub(crate) fn push(&mut self, mut data: &[u8]) {
        if data.is_empty() {
            return;
        }
        if std::mem::take(&mut self.cut) {
            data = data.strip_prefix(b"\n").unwrap_or(data);
        }
        match data.iter().rposition(|&b| b == b'\n') {
            Some(end) => {
                self.pending.extend_from_slice(&data[..=end]);
                self.emit(self.pending.len());
                self.pending.extend_from_slice(&data[end + 1..]);
            }
            None => self.pending.extend_from_slice(data),
        }
        while self.pending.len() >= LINE_BOUND {
            let cut = piece_end(&self.pending[..LINE_BOUND]);
            self.pending.insert(cut, b'\n');
            self.emit(cut + 1);
            self.cut = self.pending.is_empty();
        }
    }

    /// The stream ended: prints its last line, even without a newline.
    pub(crate) fn finish(&mut self) {
        if !self.pending.is_empty() {
            self.pending.push(b'\n');
            self.emit(self.pending.len());
        }
    }

    /// Prints the first `n` bytes of the pending data (whole lines) and drops them.
    fn emit(&mut self, n: usize) {
        let text = String::from_utf8_lossy(&self.pending[..n]).into_owned();
        self.pending.drain(..n);
        self.tap.reporter.output(&self.tap.proc, &text);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;
    use crate::event::ProcSummary;
    use crate::ui::Summary;

    /// Records what it is given to print.
    #[derive(Default)]
    struct Printed(Mutex<Vec<String>>);

    impl Reporter for Printed {
        fn started(&self, _: &str) {}
        fn would_run(&self, _: &str, _: &str) {}
        fn retrying(&self, _: &str, _: u32, _: &str) {}
        fn finished(&self, _: &ProcSummary) {}
        fn progress(&self, _: &str, _: &str) {}
        fn command(&self, _: Option<&str>, _: &dyn std::fmt::Display) {}
        fn message(&self, _: &str) {}
        fn warning(&self, _: &str) {}
        fn eprint(&self, _: &str) {}
        fn summary(&self, _: &Summary) {}
        fn set_full_log(&self, _: bool) {}
        fn output(&self, proc: &str, lines: &str) {
            self.0.lock().unwrap().push(format!("{proc}: {lines}"));
        }
    }

    fn lines() -> (Arc<Printed>, Lines) {
        let printed = Arc::new(Printed::default());
        let tap = Tap::new("p".into(), printed.clone());
        (printed, tap.lines())
    }

    #[test]
    fn a_line_is_printed_only_once_it_is_whole() {
        let (printed, mut l) = lines();
        l.push(b"one\ntw");
        l.push(b"o\nthree");
        assert_eq!(*printed.0.lock().unwrap(), ["p: one\n", "p: two\n"]);
        l.finish();
        assert_eq!(printed.0.lock().unwrap()[2], "p: three\n");
    }

    #[test]
    fn a_long_read_without_a_newline_is_printed_in_pieces_of_the_bound() {
        let (printed, mut l) = lines();
        l.push(&vec![b'x'; 2 * LINE_BOUND + 10]);
        let sizes: Vec<usize> = printed.0.lock().unwrap().iter().map(String::len).collect();
        let piece = "p: ".len() + LINE_BOUND + 1;
        assert_eq!(sizes, [piece, piece]);
        l.finish();
        assert_eq!(printed.0.lock().unwrap()[2].len(), "p: ".len() + 11);
    }

    #[test]
    fn a_partial_line_past_the_bound_is_printed_without_splitting_a_character() {
        let (printed, mut l) = lines();
        let mut data = vec![b'x'; LINE_BOUND - 1];
        data.extend_from_slice(&"é".as_bytes()[..1]);
        l.push(&data);
        let first = printed.0.lock().unwrap()[0].clone();
        assert_eq!(first.len(), "p: ".len() + LINE_BOUND);
        assert!(first.ends_with("x\n"));
        l.push(&"é".as_bytes()[1..]);
        l.finish();
        assert_eq!(printed.0.lock().unwrap()[1], "p: é\n");
    }

    #[test]
    fn a_newline_right_after_a_full_piece_ends_it_and_prints_no_empty_line() {
        let (printed, mut l) = lines();
        l.push(&vec![b'x'; LINE_BOUND]);
        l.push(b"\nafter\n");
        let printed = printed.0.lock().unwrap();
        assert_eq!(
            printed.len(),
            2,
            "{:?}",
            printed.iter().map(String::len).collect::<Vec<_>>()
        );
        assert_eq!(printed[1], "p: after\n");
    }
}

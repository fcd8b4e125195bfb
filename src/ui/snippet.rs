//! The part of a failed proc's log worth showing: lines with a whole-word error,
//! warning or failure keyword, with two lines of context, as parproc does; when no line
//! has one, the last lines.

/// Words that mark a line worth showing (matched whole-word, ignoring case).
const KEYWORDS: &[&str] = &[
    "error",
    "errors",
    "warning",
    "fail",
    "failed",
    "failure",
    "fatal",
    "exception",
    "panic",
    "panicked",
];

/// Lines of context around a keyword line.
const CONTEXT: usize = 2;

/// At most this many lines are shown (the last excerpts win).
const MAX_LINES: usize = 40;

/// A run of consecutive log lines (1-based, inclusive).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Excerpt {
    pub first: usize,
    pub last: usize,
    pub lines: Vec<String>,
}

fn has_keyword(line: &str) -> bool {
    line.split(|c: char| !(c.is_alphanumeric() || c == '_'))
        .any(|w| KEYWORDS.iter().any(|k| w.eq_ignore_ascii_case(k)))
}

/// Whether line `i` is prun's header of a command (`$ command`, then `# started ...`): a
/// keyword there is the command's text (`make check-errors`), not something it printed.
fn is_command_header(lines: &[&str], i: usize) -> bool {
    lines[i].starts_with("$ ")
        && lines
            .get(i + 1)
            .is_some_and(|next| next.starts_with("# started "))
}

/// The excerpts of `text` around keyword lines; empty when no line has a keyword (a
/// command's header aside).
pub(super) fn excerpts(text: &str) -> Vec<Excerpt> {
    let lines: Vec<&str> = text.lines().collect();
    let mut ranges: Vec<(usize, usize)> = Vec::new();
    for (i, l) in lines.iter().enumerate() {
        if !has_keyword(l) || is_command_header(&lines, i) {
            continue;
        }
        let (a, b) = (
            i.saturating_sub(CONTEXT),
            (i + CONTEXT).min(lines.len() - 1),
        );
        match ranges.last_mut() {
            // Overlapping or adjacent ranges merge.
            Some(last) if a <= last.1 + 1 => last.1 = last.1.max(b),
            _ => ranges.push((a, b)),
        }
    }
    let mut out: Vec<Excerpt> = ranges
        .into_iter()
        .map(|(a, b)| Excerpt {
            first: a + 1,
            last: b + 1,
            lines: lines[a..=b].iter().map(|l| l.to_string()).collect(),
        })
        .collect();
    let mut total: usize = out.iter().map(|e| e.lines.len()).sum();
    while total > MAX_LINES && out.len() > 1 {
        total -= out.remove(0).lines.len();
    }
    if let Some(e) = out.first_mut()
        && e.lines.len() > MAX_LINES
    {
        let cut = e.lines.len() - MAX_LINES;
        e.lines.drain(..cut);
        e.first += cut;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whole_words_only() {
        assert!(has_keyword("ERROR: disk full"));
        assert!(has_keyword("build failed."));
        assert!(has_keyword("a warning: x"));
        assert!(!has_keyword("ValueError raised"));
        assert!(!has_keyword("no_errors_here"));
        assert!(!has_keyword("warnings_count=0"));
    }

    #[test]
    fn context_and_merging() {
        let text = (1..=20)
            .map(|i| match i {
                5 | 7 => format!("line {i} error"),
                15 => format!("line {i} warning"),
                _ => format!("line {i}"),
            })
            .collect::<Vec<_>>()
            .join("\n");
        let e = excerpts(&text);
        assert_eq!(e.len(), 2);
        assert_eq!((e[0].first, e[0].last), (3, 9));
        assert_eq!((e[1].first, e[1].last), (13, 17));
        assert_eq!(e[1].lines[2], "line 15 warning");
    }

    #[test]
    fn nothing_without_keywords() {
        assert!(excerpts("all\nfine\n").is_empty());
    }

    #[test]
    fn a_keyword_in_a_command_s_header_is_not_one_it_printed() {
        let log = "$ ./run-tests --fail-fast\n# started 2026-12-01T13:52:03.850Z\n3 tests did not pass\n# exited with code 1 (0.004s)";
        assert!(excerpts(log).is_empty(), "{:?}", excerpts(log));
        // What it printed still counts, and the header is context like any line.
        let log = log.replace("did not pass", "failed");
        let e = excerpts(&log);
        assert_eq!((e.len(), e[0].first, e[0].last), (1, 1, 4));
        // A line the command printed that looks like a header is no header.
        assert_eq!(excerpts("$ error\nmore").len(), 1);
    }
}

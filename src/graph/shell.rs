//! Placeholder values in `shell` strings: each value reaches `sh -c` as exactly one literal
//! string, whatever it contains.
//!
//! `proto("gz::[file]", #{ shell: "gzip -kf [file]" })` given a file named `b;touch PWNED`
//! must compress that file, not run `touch`. [`fill_shell`] reads the shell string the way
//! `sh` reads its quotes and quotes each value for the place it lands in:
//! - outside quotes (also inside `$(...)`, which starts afresh even within double quotes):
//!   one single-quoted word, `'` written as `'\''` (GNU parallel's default);
//! - inside double quotes: `\`, `$`, `` ` `` and `"` escaped with a backslash;
//! - inside single quotes: close, escaped quote, reopen (`'\''`);
//! - inside `` `...` ``: as above, then `\`, `$` and `` ` `` escaped once more, because
//!   the shell removes one level of backslashes before it reads a backquoted command;
//! - in a here-document body: as the body reads it (`\`, `$`, `` ` `` escaped unless its
//!   delimiter is quoted). A line break cannot be written there without possibly ending
//!   the document, so such a value is refused ([`check_shell`]) before anything runs;
//! - in a `#` comment: line breaks become spaces (a comment ends at a line break, or,
//!   inside `` `...` ``, where they end);
//! - right after a `$` or `$name` the value is kept out of the expansion ([`Open`]):
//!   `"$P[v]"` must not read the variable `$Pvalue`, nor `"$[v]"` run `$(...)`.
//!
//! Line continuations are removed where the shell removes them before it reads a word
//! (`$\` + line break + `(` is `$(`). Backslash escapes are followed, so `\"` does not
//! end a double-quoted string, `a\;#` starts no comment, and the
//! `<<` of `$((1 << 2))` is a shift, not a here-document (inside bash's `$[...]` too), and the `)` of a `case` pattern
//! does not end a `$(...)` (`case` is one only where a command starts: `$(echo case)`
//! opens none). A script
//! author writes `gzip [file]`; quotes of their own around a placeholder are handled too.
//! This module does not know `cmd` argv, `env` or `cwd`: those values are never read by a
//! shell and are filled in as they are ([`super::fill_known`]).

use super::GraphError;

/// Replaces each `[name]` whose name is one of `args` with its value quoted for where it
/// stands in the shell string `text`; other brackets (`[ -e x ]`) stay as they are.
///
/// A value that [`check_shell`] refuses cannot be written exactly; procs holding one are
/// never created, so this function does not see it in a run.
pub(crate) fn fill_shell(text: &str, args: &[(String, String)]) -> String {
    scan(text, args).0
}

/// Whether every value can be written exactly into `text` (see the module docs: a line
/// break inside a here-document body cannot).
pub(crate) fn check_shell(text: &str, args: &[(String, String)]) -> Result<(), GraphError> {
    match scan(text, args).1 {
        None => Ok(()),
        Some((arg, why)) => {
            let value = args.iter().find(|(k, _)| *k == arg);
            Err(GraphError::Unquotable {
                value: value.map(|(_, v)| v.clone()).unwrap_or_default(),
                arg,
                why,
            })
        }
    }
}

/// A here-document waiting for its body, or being read.
#[derive(Debug, Clone)]
struct HereDoc {
    delim: String,
    /// An unquoted delimiter: the body is expanded (`$x`, `$(...)`, backslashes).
    expands: bool,
    /// `<<-`: leading tabs are removed from body lines and the delimiter line.
    strip_tabs: bool,
}

/// What is open inside a `$(...)`: a `)` closes it only when neither is.
#[derive(Debug, Clone, Copy, Default)]
struct Sub {
    /// Unclosed `(`.
    parens: usize,
    /// Unfinished `case` commands, whose patterns end with `)`.
    cases: usize,
    /// Where in the filled text the last `)` of this command is (one that ended a `case`
    /// pattern or a subshell): a `case` or an `esac` right after it is a reserved word.
    pattern_end: Option<usize>,
}

/// Where the shell reader stands.
#[derive(Debug, Clone)]
enum Quote {
    /// Outside quotes; `Some` inside `$(...)`.
    Plain(Option<Sub>),
    /// Inside `$((...))`, with `depth` unclosed `(` (its `<<` is a shift, not a
    /// here-document).
    Arith(usize),
    /// Inside bash's `$[...]`, arithmetic as `$((...))` is, with `depth` unclosed `[`.
    Bracket(usize),
    Single,
    Double,
    Backtick,
    Comment,
    Body(HereDoc),
    /// Inside `${...}`. Shells disagree on how quotes nest in it (in `"${x:-"[v]"}"` the
    /// inner quotes open a string of their own), so only a plain word is written there.
    Param,
    /// Inside `` \`...\` `` within `` `...` ``: a command the shell reads a third time,
    /// each time with a level of backslashes less. Only a plain word is written there.
    Nested,
    /// Inside `$'...'`: bash's C-style string, where `\'` is a quote and `\\` a
    /// backslash; dash reads a `$` and a single-quoted string. Only a plain word reads the
    /// same in both.
    Ansi,
}

/// The filled text, and the first placeholder whose value cannot be written exactly.
///
/// The shell removes a `\` + line break before it reads anything else, except in single
/// quotes, comments and quoted here-documents, so `$\` + line break + `(` is `$(` and
/// `a\` + line break + `#` is no comment: each such line continuation met where the shell
/// removes it is removed (which changes nothing the shell reads) and the text read again.
fn scan(text: &str, args: &[(String, String)]) -> (String, Option<(String, String)>) {
    thread_local! {
        /// The last text that had line continuations, and the text without them: a
        /// proto's procs fill the same text one after another (read again for each
        /// continuation), and where they are does not depend on the values.
        static JOINED: std::cell::RefCell<(String, String)> = const {
            std::cell::RefCell::new((String::new(), String::new()))
        };
    }
    let cached = JOINED.with_borrow(|(t, j)| (t == text).then(|| j.clone()));
    let from_cache = cached.is_some();
    let mut joined = cached.map_or(std::borrow::Cow::Borrowed(text), std::borrow::Cow::Owned);
    loop {
        match scan_joined(&joined, args) {
            Ok(scanned) => {
                if !from_cache && let std::borrow::Cow::Owned(j) = joined {
                    JOINED.set((text.to_string(), j));
                }
                return scanned;
            }
            Err(at) => joined.to_mut().replace_range(at..at + 2, ""),
        }
    }
}

/// [`scan`] of a text, or `Err` with the position of the first line continuation the shell
/// would remove.
fn scan_joined(
    text: &str,
    args: &[(String, String)],
) -> Result<(String, Option<(String, String)>), usize> {
    let b = text.as_bytes();
    let mut out: Vec<u8> = Vec::with_capacity(text.len());
    let mut stack = vec![Quote::Plain(None)];
    let mut pending: Vec<HereDoc> = Vec::new();
    let mut problem: Option<(String, String)> = None;
    // Where the current line of a here-document body starts in `out`.
    let mut line_out = 0;
    // The length of `out` when it last ended inside a word (after an escaped character
    // or a value): a `#` there starts no comment, as in `a\;#`.
    let mut mid_word = usize::MAX;
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c == b'['
            && let Some((key, value, end)) = placeholder(text, i, args)
        {
            let open = open_expansion(&out, value);
            if problem.is_none()
                && let Some(why) = refused_here(&stack, value, open)
            {
                problem = Some((key.to_string(), why.into()));
            }
            out.extend_from_slice(quote_for(value, &stack, open).as_bytes());
            mid_word = out.len();
            i = end;
            continue;
        }
        let next = b.get(i + 1).copied();
        // In a `...` within double quotes the shell reads `\"` as `"` when it reads the
        // command again: it opens and closes strings there.
        let (backtick_in_dq, dq_in_that) = quoted_backtick(&stack);
        // A comment in `...` ends with them: the shell finds their end before it reads
        // what is inside.
        let comment_in_backtick = matches!(stack.iter().rev().nth(1), Some(Quote::Backtick));
        let Some(top) = stack.last_mut() else {
            break;
        };
        if c == b'\\' && next == Some(b'\n') && continues_lines(top) {
            return Err(i);
        }
        let word_start = starts_word(&out) && out.len() != mid_word;
        // bash's `$[...]`, unless it is a `$` before a placeholder.
        let bracket = c == b'$' && next == Some(b'[') && placeholder(text, i + 1, args).is_none();
        // Bytes consumed by this step (copied to `out` as they are).
        let mut step = 1;
        match top {
            Quote::Plain(sub) => match c {
                b'\\' => {
                    step = 2;
                    mid_word = out.len() + 2;
                }
                b'\'' => stack.push(Quote::Single),
                b'"' => stack.push(Quote::Double),
                b'`' => stack.push(Quote::Backtick),
                b'$' if next == Some(b'\'') && bare_dollar(&out) => {
                    stack.push(Quote::Ansi);
                    step = 2;
                }
                b'$' if bracket => {
                    stack.push(Quote::Bracket(0));
                    step = 2;
                }
                b'$' if next == Some(b'(') => {
                    step = open_substitution(&b[i..], &mut stack);
                }
                // bash's process substitution.
                b'<' | b'>' if next == Some(b'(') => {
                    stack.push(Quote::Plain(Some(Sub::default())));
                    step = 2;
                }
                b'$' if next == Some(b'{') => {
                    stack.push(Quote::Param);
                    step = 2;
                }
                // bash's arithmetic command, which evaluates `a[$(...)]` even in quotes.
                b'(' if next == Some(b'(') && word_start => {
                    stack.push(Quote::Arith(0));
                    step = 2;
                }
                b'(' => {
                    if let Some(sub) = sub {
                        sub.parens += 1;
                    }
                }
                b')' => match sub {
                    Some(Sub {
                        parens: 0,
                        cases: 0,
                        ..
                    }) => {
                        stack.pop();
                    }
                    // A `case` or `esac` may follow a pattern's `)`; after a subshell's
                    // it would be a syntax error.
                    Some(sub) => {
                        sub.parens = sub.parens.saturating_sub(1);
                        sub.pattern_end = Some(out.len());
                    }
                    None => {}
                },
                b'c' | b'e' if word_start => {
                    if let Some(sub) = sub {
                        let after_pattern = sub
                            .pattern_end
                            .is_some_and(|e| e + 1 == trim_blanks(&out).len());
                        if is_word(&b[i..], b"case") && (command_starts(&out) || after_pattern) {
                            sub.cases += 1;
                        } else if is_word(&b[i..], b"esac")
                            && (esac_may_follow(&out) || after_pattern)
                        {
                            sub.cases = sub.cases.saturating_sub(1);
                        }
                    }
                }
                b'#' if word_start => stack.push(Quote::Comment),
                b'<' if next == Some(b'<') => {
                    let (len, doc) = here_doc_operator(&b[i..]).map_err(|at| i + at)?;
                    step = len;
                    pending.extend(doc);
                }
                b'\n' if !pending.is_empty() => {
                    // Bodies follow the line in the order of their operators.
                    stack.extend(pending.drain(..).rev().map(Quote::Body));
                    line_out = out.len() + 1;
                }
                _ => {}
            },
            Quote::Bracket(depth) => match c {
                b'[' => *depth += 1,
                b']' if *depth > 0 => *depth -= 1,
                b']' => {
                    stack.pop();
                }
                b'$' if bracket => {
                    stack.push(Quote::Bracket(0));
                    step = 2;
                }
                b'$' if next == Some(b'(') => step = open_substitution(&b[i..], &mut stack),
                _ => {}
            },
            Quote::Arith(depth) => match c {
                b'(' => *depth += 1,
                b')' if *depth > 0 => *depth -= 1,
                b')' if next == Some(b')') => {
                    step = 2;
                    stack.pop();
                }
                b'$' if bracket => {
                    stack.push(Quote::Bracket(0));
                    step = 2;
                }
                b'$' if next == Some(b'(') => step = open_substitution(&b[i..], &mut stack),
                _ => {}
            },
            Quote::Single => {
                if c == b'\'' {
                    stack.pop();
                }
            }
            Quote::Nested => match c {
                b'\\' if next == Some(b'`') => {
                    stack.pop();
                    step = 2;
                }
                b'\\' => step = 2,
                // A bare one ends the `...` around it.
                b'`' => {
                    stack.pop();
                    stack.pop();
                }
                _ => {}
            },
            Quote::Ansi => match c {
                b'\\' => step = 2,
                b'\'' => {
                    stack.pop();
                }
                _ => {}
            },
            Quote::Double => match c {
                b'\\' if next == Some(b'"') && dq_in_that => {
                    stack.pop();
                    step = 2;
                }
                b'\\' => step = 2,
                b'"' => {
                    stack.pop();
                }
                b'`' => stack.push(Quote::Backtick),
                b'$' if bracket => {
                    stack.push(Quote::Bracket(0));
                    step = 2;
                }
                b'$' if next == Some(b'(') => {
                    step = open_substitution(&b[i..], &mut stack);
                }
                b'$' if next == Some(b'{') => {
                    stack.push(Quote::Param);
                    step = 2;
                }
                _ => {}
            },
            Quote::Param => {
                // Quotes directly in it quote, unless the `${` stands in double quotes or
                // a here-document body (there a `'` is a character).
                let quoted = matches!(
                    stack.iter().rev().nth(1),
                    Some(Quote::Double | Quote::Body(_))
                );
                match c {
                    b'\\' => step = 2,
                    b'}' => {
                        stack.pop();
                    }
                    b'"' => stack.push(Quote::Double),
                    b'\'' if !quoted => stack.push(Quote::Single),
                    b'`' => stack.push(Quote::Backtick),
                    b'$' if !quoted && next == Some(b'\'') && bare_dollar(&out) => {
                        stack.push(Quote::Ansi);
                        step = 2;
                    }
                    b'$' if bracket => {
                        stack.push(Quote::Bracket(0));
                        step = 2;
                    }
                    b'$' if next == Some(b'(') => {
                        step = open_substitution(&b[i..], &mut stack);
                    }
                    b'$' if next == Some(b'{') => {
                        stack.push(Quote::Param);
                        step = 2;
                    }
                    _ => {}
                }
            }
            Quote::Backtick => match c {
                b'\\' if next == Some(b'`') => {
                    stack.push(Quote::Nested);
                    step = 2;
                }
                b'\\' if next == Some(b'"') && backtick_in_dq => {
                    stack.push(Quote::Double);
                    step = 2;
                }
                b'\\' => step = 2,
                b'<' if next == Some(b'<') => {
                    let (len, doc) = here_doc_operator(&b[i..]).map_err(|at| i + at)?;
                    step = len;
                    pending.extend(doc);
                }
                b'\n' if !pending.is_empty() => {
                    stack.extend(pending.drain(..).rev().map(Quote::Body));
                    line_out = out.len() + 1;
                }
                b'`' => {
                    stack.pop();
                }
                b'#' if word_start || out.last() == Some(&b'`') => stack.push(Quote::Comment),
                b'\'' => stack.push(Quote::Single),
                b'"' => stack.push(Quote::Double),
                b'$' if next == Some(b'\'') && bare_dollar(&out) => {
                    stack.push(Quote::Ansi);
                    step = 2;
                }
                b'$' if bracket => {
                    stack.push(Quote::Bracket(0));
                    step = 2;
                }
                b'$' if next == Some(b'(') => {
                    step = open_substitution(&b[i..], &mut stack);
                }
                b'$' if next == Some(b'{') => {
                    stack.push(Quote::Param);
                    step = 2;
                }
                _ => {}
            },
            Quote::Comment => match c {
                b'\n' => {
                    // The line break itself belongs to the context around the comment.
                    stack.pop();
                    continue;
                }
                b'\\' if comment_in_backtick => step = 2,
                b'`' if comment_in_backtick => {
                    stack.pop();
                    stack.pop();
                }
                _ => {}
            },
            Quote::Body(doc) => {
                let at_line_start = i == 0 || b[i - 1] == b'\n';
                if at_line_start {
                    let end = text[i..].find('\n').map_or(b.len(), |n| i + n);
                    if is_delimiter_line(&text[i..end], doc) {
                        out.extend_from_slice(&b[i..end]);
                        i = end;
                        stack.pop();
                        continue;
                    }
                }
                match c {
                    b'\\' if doc.expands => step = 2,
                    b'`' if doc.expands => stack.push(Quote::Backtick),
                    b'$' if doc.expands && bracket => {
                        stack.push(Quote::Bracket(0));
                        step = 2;
                    }
                    b'$' if doc.expands && next == Some(b'(') => {
                        step = open_substitution(&b[i..], &mut stack);
                    }
                    b'$' if doc.expands && next == Some(b'{') => {
                        stack.push(Quote::Param);
                        step = 2;
                    }
                    b'\n' => {
                        let line = String::from_utf8_lossy(&out[line_out.min(out.len())..]);
                        if is_delimiter_line(&line, doc) && problem.is_none() {
                            problem = Some((
                                last_key(text, i, args),
                                "it would end the here-document early".into(),
                            ));
                        }
                        line_out = out.len() + 1;
                    }
                    _ => {}
                }
            }
        }
        let end = (i + step).min(b.len());
        out.extend_from_slice(&b[i..end]);
        i = end;
    }
    let filled = String::from_utf8(out)
        .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned());
    Ok((filled, problem))
}

/// Whether the reader stands in a `` `...` `` that is in double quotes, and whether in a
/// double-quoted string directly inside such a one.
fn quoted_backtick(stack: &[Quote]) -> (bool, bool) {
    let at = |k: usize| stack.len().checked_sub(k + 1).map(|j| &stack[j]);
    let backtick_in_dq = |k: usize| {
        matches!(at(k), Some(Quote::Backtick)) && matches!(at(k + 1), Some(Quote::Double))
    };
    (
        backtick_in_dq(0),
        matches!(at(0), Some(Quote::Double)) && backtick_in_dq(1),
    )
}

/// Whether a `$` written after `out` is a bare one, which starts bash's `$'...'` before a
/// quote: not escaped (`\$`), and not the second of `$$` (the process id).
fn bare_dollar(out: &[u8]) -> bool {
    let mut with = out.to_vec();
    with.push(b'$');
    open_expansion(&with, "'") == Open::Dollar
}

/// Whether the shell removes a `\` + line break where `top` says the reader stands: not
/// in single quotes, a comment or the body of a here-document with a quoted delimiter.
fn continues_lines(top: &Quote) -> bool {
    match top {
        Quote::Single | Quote::Ansi | Quote::Comment => false,
        Quote::Body(doc) => doc.expands,
        Quote::Plain(_)
        | Quote::Arith(_)
        | Quote::Bracket(_)
        | Quote::Double
        | Quote::Backtick
        | Quote::Nested
        | Quote::Param => true,
    }
}

/// Enters `$(...)` or `$((...))` at the start of `b`; returns the bytes of the opening.
fn open_substitution(b: &[u8], stack: &mut Vec<Quote>) -> usize {
    if b.get(2) == Some(&b'(') {
        stack.push(Quote::Arith(0));
        3
    } else {
        stack.push(Quote::Plain(Some(Sub::default())));
        2
    }
}

/// `[key]` at byte `at` when `key` is one of `args`: the key, its value and the byte after `]`.
fn placeholder<'a>(
    text: &'a str,
    at: usize,
    args: &'a [(String, String)],
) -> Option<(&'a str, &'a str, usize)> {
    let close = at + text[at..].find(']')?;
    let key = &text[at + 1..close];
    let (k, v) = args.iter().find(|(k, _)| k == key)?;
    Some((k, v, close + 1))
}

/// The name of the last placeholder on the line that ends at byte `end` (for a message).
fn last_key(text: &str, end: usize, args: &[(String, String)]) -> String {
    let start = text[..end].rfind('\n').map_or(0, |n| n + 1);
    let line = &text[start..end];
    args.iter()
        .filter_map(|(k, _)| line.rfind(&format!("[{k}]")).map(|at| (at, k)))
        .max()
        .map(|(_, k)| k.clone())
        .unwrap_or_default()
}

fn is_delimiter_line(line: &str, doc: &HereDoc) -> bool {
    let line = if doc.strip_tabs {
        line.trim_start_matches('\t')
    } else {
        line
    };
    line == doc.delim
}

/// Whether `b` starts with the shell word `word`.
fn is_word(b: &[u8], word: &[u8]) -> bool {
    b.starts_with(word)
        && b.get(word.len())
            .is_none_or(|c| matches!(c, b' ' | b'\t' | b'\n' | b';' | b'&' | b'|' | b')'))
}

/// Whether a word written after `out` is the first word of a command, the only place
/// where `case` is a reserved word (`$(echo case)` opens no `case`): after an operator
/// (`;`, `&`, `|`, `(`, a line break) or after a reserved word that a command follows
/// (`then`, `do`, ...) standing where a command starts. A `)` that ends a `case` pattern
/// is told apart by the caller.
fn command_starts(out: &[u8]) -> bool {
    const BEFORE_A_COMMAND: &[&[u8]] = &[
        b"if", b"then", b"else", b"elif", b"do", b"while", b"until", b"!", b"{",
    ];
    let (before, word) = last_word(out);
    if word.is_empty() {
        return before.last().is_none_or(|c| *c != b')');
    }
    BEFORE_A_COMMAND.contains(&word) && command_starts(before)
}

/// Whether a word written after `out` can be the `esac` of a `case`: where a command
/// starts, or right after the `in` of `case WORD in`.
fn esac_may_follow(out: &[u8]) -> bool {
    let (before_in, word_in) = last_word(out);
    let (before_subject, _) = last_word(before_in);
    let (before_case, word_case) = last_word(before_subject);
    command_starts(out) || (word_in == b"in" && word_case == b"case" && command_starts(before_case))
}

/// `out` without its trailing blanks, split before its last word (empty after an
/// operator).
fn last_word(out: &[u8]) -> (&[u8], &[u8]) {
    let text = trim_blanks(out);
    let start = text
        .iter()
        .rposition(|c| matches!(c, b' ' | b'\t' | b'\n' | b';' | b'&' | b'|' | b'(' | b')'))
        .map_or(0, |p| p + 1);
    text.split_at(start)
}

/// `out` without its trailing spaces and tabs.
fn trim_blanks(out: &[u8]) -> &[u8] {
    let end = out.len()
        - out
            .iter()
            .rev()
            .take_while(|c| matches!(c, b' ' | b'\t'))
            .count();
    &out[..end]
}

/// A `#` starts a comment only at the start of a word.
fn starts_word(out: &[u8]) -> bool {
    out.last()
        .is_none_or(|c| matches!(c, b' ' | b'\t' | b'\n' | b';' | b'&' | b'|' | b'(' | b')'))
}

/// Reads `<<`, `<<-` or `<<<` and the word after it: the bytes it spans and, unless it is
/// a here-string (`<<<`), the here-document it opens; or `Err` with the offset of a line
/// continuation outside quotes in them (`<< \` + line break + `EOF` is `<< EOF`).
fn here_doc_operator(b: &[u8]) -> Result<(usize, Option<HereDoc>), usize> {
    let continues = |i: usize| b.get(i) == Some(&b'\\') && b.get(i + 1) == Some(&b'\n');
    if continues(2) {
        return Err(2);
    }
    if b.get(2) == Some(&b'<') {
        return Ok((3, None));
    }
    let mut i = 2;
    let strip_tabs = b.get(i) == Some(&b'-');
    if strip_tabs {
        i += 1;
    }
    while matches!(b.get(i), Some(b' ' | b'\t')) || continues(i) {
        if continues(i) {
            return Err(i);
        }
        i += 1;
    }
    let mut delim = Vec::new();
    let mut expands = true;
    let mut quote: Option<u8> = None;
    while let Some(&c) = b.get(i) {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), c) => delim.push(c),
            (None, b'\'' | b'"') => {
                quote = Some(c);
                expands = false;
            }
            (None, b'\\') if continues(i) => return Err(i),
            (None, b'\\') => {
                expands = false;
                i += 1;
                if let Some(&e) = b.get(i) {
                    delim.push(e);
                }
            }
            (None, b' ' | b'\t' | b'\n' | b';' | b'&' | b'|' | b'<' | b'>' | b'(' | b')') => break,
            (None, c) => delim.push(c),
        }
        i += 1;
    }
    let doc = HereDoc {
        delim: String::from_utf8_lossy(&delim).into_owned(),
        expands,
        strip_tabs,
    };
    Ok((i.min(b.len()), Some(doc)))
}

/// Whether a value written at the end of `out` would be read as part of a `$` expansion
/// that `out` leaves open, such as `$` + `(rm x)` or `"$PREFIX` + `_name"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Open {
    No,
    /// A bare `$`: whatever follows it is read with it (`$(`, `${`, `$name`, `$'...'`).
    Dollar,
    /// `$name`: a value starting with a letter, digit or `_` would lengthen the name.
    Name,
}

/// What `out` leaves open for a `value` written next (see [`Open`]). Backslashes and
/// `$$` (the process id) are counted, and when in doubt it says open: the ways of closing
/// an expansion ([`quote_for`]) add nothing to what the shell reads.
fn open_expansion(out: &[u8], value: &str) -> Open {
    let is_name_byte = |c: &u8| c.is_ascii_alphanumeric() || *c == b'_';
    let name_len = out.iter().rev().take_while(|c| is_name_byte(c)).count();
    let (before, name) = out.split_at(out.len() - name_len);
    let dollars = before.iter().rev().take_while(|c| **c == b'$').count();
    let rest = &before[..before.len() - dollars];
    let escaped = rest.iter().rev().take_while(|c| **c == b'\\').count() % 2;
    if (dollars - escaped.min(dollars)) % 2 == 0 {
        return Open::No;
    }
    match name.first() {
        None if !value.is_empty() => Open::Dollar,
        Some(c)
            if !c.is_ascii_digit() && value.bytes().next().is_some_and(|c| is_name_byte(&c)) =>
        {
            Open::Name
        }
        _ => Open::No,
    }
}

/// Why `value` cannot be written where a placeholder stands (`stack`, after `open`), when
/// no quoting could keep it a single, literal word there.
fn refused_here(stack: &[Quote], value: &str, open: Open) -> Option<&'static str> {
    if stack.iter().any(|q| matches!(q, Quote::Param)) && !is_plain_word(value) {
        return Some(
            "inside ${...} only a plain word (letters, digits and . _ - / : @ + , = %) can be written",
        );
    }
    if matches!(stack.last(), Some(Quote::Nested)) && !is_plain_word(value) {
        return Some(
            "inside `...` nested in `...` only a plain word (letters, digits and . _ - / : @ + , = %) can be written (write $(...) instead)",
        );
    }
    if matches!(stack.last(), Some(Quote::Ansi)) && !is_plain_word(value) {
        return Some(
            "inside $'...' only a plain word (letters, digits and . _ - / : @ + , = %) can be written (bash and dash read it differently)",
        );
    }
    match stack.last() {
        Some(Quote::Arith(_) | Quote::Bracket(_)) if !is_whole_number(value) => Some(
            "inside $((...)) and $[...] only a whole number can be written (the shell would evaluate anything else)",
        ),
        Some(Quote::Body(_)) if value.contains(['\n', '\r']) => {
            Some("a line break inside a here-document body could end it")
        }
        Some(Quote::Body(doc)) if doc.expands && open == Open::Dollar => {
            Some("right after a `$` in a here-document body it would be read as an expansion")
        }
        _ => None,
    }
}

/// `value` written so that the shell reads it back exactly where `stack` says it stands,
/// after text that leaves `open` (closed first: `""` inside double quotes, `${-+}` (which
/// expands to nothing) in a here-document body, a backslash before the value's first
/// character after a bare `$` outside quotes, where `$'...'` would be bash's C-style
/// quoting).
fn quote_for(value: &str, stack: &[Quote], open: Open) -> String {
    let single_word = |v: &str| format!("'{}'", v.replace('\'', r"'\''"));
    let mut q = match stack.last() {
        Some(Quote::Single) => value.replace('\'', r"'\''"),
        Some(Quote::Double) => {
            let escaped = escape(value, &['\\', '$', '`', '"']);
            if open == Open::No {
                escaped
            } else {
                format!("\"\"{escaped}")
            }
        }
        Some(Quote::Comment) => value.replace(['\n', '\r'], " "),
        Some(Quote::Body(doc)) if doc.expands => {
            let escaped = escape(value, &['\\', '$', '`']);
            if open == Open::Name {
                format!("${{-+}}{escaped}")
            } else {
                escaped
            }
        }
        Some(Quote::Body(_)) => value.to_string(),
        // A plain word ([`check_shell`] refuses any other value there).
        Some(Quote::Param | Quote::Ansi | Quote::Nested) => value.to_string(),
        Some(Quote::Plain(_) | Quote::Backtick) | None if open == Open::Dollar => {
            let mut chars = value.chars();
            match chars.next() {
                Some(first) if first != '\n' => {
                    let rest = chars.as_str();
                    let rest = if rest.is_empty() {
                        String::new()
                    } else {
                        single_word(rest)
                    };
                    format!("\\{first}{rest}")
                }
                _ => single_word(value),
            }
        }
        // Quotes do not quote there: a whole number goes in as it is, and anything else
        // is refused ([`check_shell`]): `$(cmd)` in it runs, and bash evaluates `a[...]`.
        Some(Quote::Arith(_) | Quote::Bracket(_)) if is_whole_number(value) => value.to_string(),
        Some(Quote::Plain(_) | Quote::Arith(_) | Quote::Bracket(_) | Quote::Backtick) | None => {
            single_word(value)
        }
    };
    for _ in stack.iter().filter(|q| matches!(q, Quote::Backtick)) {
        q = escape(&q, &['\\', '$', '`']);
    }
    q
}

/// A word no shell reads differently anywhere: letters, digits and `. _ - / : @ + , = %`.
fn is_plain_word(s: &str) -> bool {
    !s.is_empty()
        && s.bytes().all(|b| {
            b.is_ascii_alphanumeric()
                || matches!(
                    b,
                    b'.' | b'_' | b'-' | b'/' | b':' | b'@' | b'+' | b',' | b'=' | b'%'
                )
        })
}

/// `-12`, `0`, `42`: digits, after an optional minus sign.
fn is_whole_number(s: &str) -> bool {
    let digits = s.strip_prefix('-').unwrap_or(s);
    !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())
}

/// `s` with a backslash before each of `special`.
fn escape(s: &str, special: &[char]) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    for c in s.chars() {
        if special.contains(&c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(v: &str) -> Vec<(String, String)> {
        vec![("f".to_string(), v.to_string())]
    }

    /// Runs `sh -c` on `text` filled with `[f]` = `value` and returns its stdout.
    fn sh(text: &str, value: &str) -> String {
        run_in("/bin/sh", text, value)
    }

    /// Runs `shell -c` on `text` filled with `[f]` = `value` and returns its stdout.
    fn run_in(shell: &str, text: &str, value: &str) -> String {
        let filled = fill_shell(text, &args(value));
        let out = std::process::Command::new(shell)
            .arg("-c")
            .arg(&filled)
            .output()
            .expect("run sh");
        assert!(out.status.success(), "sh -c {filled:?}: {out:?}");
        String::from_utf8(out.stdout).expect("utf-8")
    }

    /// The shells of this machine the quoting is checked against: dash (`/bin/sh`) and bash.
    fn shells() -> Vec<&'static str> {
        ["/bin/sh", "/bin/bash"]
            .into_iter()
            .filter(|s| std::path::Path::new(s).exists())
            .collect()
    }

    /// Checks that each template, filled with each nasty value and each of `extra`, prints
    /// what it prints before the value, then the value and `|`, in every shell.
    fn each_shell_prints_the_value_after(templates: &[(&str, &str)], extra: &[&str]) {
        for (t, before) in templates {
            for v in NASTY.iter().chain(extra) {
                for shell in shells() {
                    let want = format!("{before}{v}|");
                    assert_eq!(run_in(shell, t, v), want, "{shell}: {t:?} with {v:?}");
                }
            }
        }
    }

    const NASTY: &[&str] = &[
        "plain",
        "two words",
        "a;echo PWNED",
        "$(echo PWNED)",
        "`echo PWNED`",
        "it's",
        "say \"hi\"",
        "back\\slash\\",
        "*",
        "",
        " ",
        "line\nbreak",
        "'\"'\"",
        "$HOME ${x} \\$ \\` \\\"",
        "-n",
        "EOF",
    ];

    #[test]
    fn every_context_gives_the_command_the_exact_value() {
        let templates = [
            "printf '%s' [f]",
            "printf '%s' \"[f]\"",
            "printf '%s' '[f]'",
            "printf '%s' x[f]y",
            "printf '%s' \"a [f] b\"",
            "printf '%s' 'a [f] b'",
            "printf '%s' \"$(printf '%s' [f])\"",
            "printf '%s' \"$(printf '%s' \"[f]\")\"",
            "printf '%s' \"`printf '%s' [f]`\"",
            "x=`printf '%s' \"[f]\"`; printf '%s' \"$x\"",
            "x=`printf '%s' '[f]'`; printf '%s' \"$x\"",
            "x=\"\\\"\"; printf '%s' \"[f]\"",
            "printf '%s' \\' [f] # a comment: [f]\n",
            "printf '%s' \"$(case x in x) printf '%s' [f];; esac)\"",
            "printf '%s' \"$((1 << 2))\"\nprintf '%s' [f]\n",
        ];
        for t in templates {
            for v in NASTY {
                let want = if t.contains("x[f]y") {
                    format!("x{v}y")
                } else if t.contains("a [f] b") {
                    format!("a {v} b")
                } else if t.starts_with("printf '%s' \\'") {
                    format!("'{v}")
                } else if t.contains("<<") {
                    format!("4{v}")
                } else {
                    v.to_string()
                };
                // Command substitution drops trailing line breaks; none of the values has one.
                assert_eq!(sh(t, v), want, "template {t:?}, value {v:?}");
            }
        }
    }

    #[test]
    fn a_value_never_continues_a_dollar_expansion_before_it() {
        // `"$[f]"` with `(touch PWNED)` ran `touch`, and `"$P[f]"` read `$Pvalue`.
        let shells = shells();
        let values = NASTY.iter().filter(|v| !v.is_empty() && !v.contains('\n'));
        for v in values.chain(&["(echo PWNED)", "{P}", "_x", "1", "\\x41"]) {
            let templates = [
                ("P=p; printf '%s' \"$P[f]\"", format!("p{v}")),
                ("P=p; printf '%s' \"$[f]\"", format!("${v}")),
                ("P=p; printf '%s' $[f]", format!("${v}")),
                (
                    "P=p; printf '%s' \"$$P[f]\" | sed 's/^[0-9]*//'",
                    format!("P{v}"),
                ),
                ("P=p; printf '%s' \"\\$P[f]\"", format!("$P{v}")),
                (
                    "P=p; printf '%s' \"`printf '%s' \"$P[f]\"`\"",
                    format!("p{v}"),
                ),
                ("P=p; cat <<EOF\n$P[f]\nEOF", format!("p{v}\n")),
            ];
            for (t, want) in templates {
                for shell in &shells {
                    assert_eq!(run_in(shell, t, v), want, "{shell}: {t:?}, value {v:?}");
                }
            }
        }
    }

    #[test]
    fn a_value_right_after_a_dollar_in_a_here_document_is_refused() {
        let t = "cat <<EOF\n$[f]\nEOF";
        let e = check_shell(t, &args("(touch PWNED)")).unwrap_err();
        assert!(e.to_string().contains("[f]"), "{e}");
        assert!(check_shell("cat <<'EOF'\n$[f]\nEOF", &args("(x)")).is_ok());
        assert!(check_shell("cat <<EOF\n\\$[f]\nEOF", &args("(x)")).is_ok());
    }

    #[test]
    fn here_document_bodies_get_the_exact_value() {
        for v in NASTY.iter().filter(|v| !v.contains('\n') && **v != "EOF") {
            for t in [
                "cat <<EOF\n[f]\nEOF",
                "cat <<'EOF'\n<[f]>\nEOF",
                "cat <<-EOF\n\t[f] $(printf '%s' [f])\n\tEOF",
            ] {
                assert!(check_shell(t, &args(v)).is_ok(), "{t:?} {v:?}");
                let got = sh(t, v);
                let want = if t.contains("<[f]>") {
                    format!("<{v}>\n")
                } else if t.contains("$(") {
                    format!("{v} {v}\n")
                } else {
                    format!("{v}\n")
                };
                assert_eq!(got, want, "template {t:?}, value {v:?}");
            }
        }
    }

    #[test]
    fn a_value_that_could_end_a_here_document_is_refused() {
        let t = "cat <<EOF\n[f]\nEOF\necho after";
        let e = check_shell(t, &args("x\nEOF\ntouch PWNED")).unwrap_err();
        assert!(e.to_string().contains("[f]"), "{e}");
        assert!(check_shell(t, &args("EOF")).is_err());
        assert!(check_shell(t, &args("EOFx")).is_ok());
        // Outside a body a line break is one more character of a quoted word.
        assert!(check_shell("echo [f]\ncat <<EOF\nEOF", &args("a\nb")).is_ok());
    }

    #[test]
    fn a_comment_ends_at_the_line_not_inside_the_value() {
        assert_eq!(sh("printf ok # [f]\n", "x\necho PWNED"), "ok");
    }

    #[test]
    fn a_whole_number_is_arithmetic_and_anything_else_is_refused_there() {
        // `$(( [n] + 1 ))` with 5 was `$(( '5' + 1 ))`, an arithmetic syntax error, and
        // with `a[$(cmd)]` it ran `cmd`: quotes do not quote inside `$((...))`.
        let t = "printf '%s' $(( [f] + 1 ))";
        assert_eq!(sh(t, "5"), "6");
        assert_eq!(sh("printf '%s' $(( [f] * 2 ))", "-21"), "-42");
        for v in ["x", "1+1", "a[$(echo PWNED)]", "$(echo PWNED)", "", "-"] {
            let e = check_shell(t, &args(v)).unwrap_err();
            assert!(e.to_string().contains("only a whole number"), "{v:?}: {e}");
        }
        assert!(check_shell("echo $(( 1 + 2 )) [f]", &args("x y")).is_ok());
    }

    #[test]
    fn inside_a_parameter_expansion_only_a_plain_word_is_written() {
        // In `"${x:-"[f]"}"` the inner quotes open a string of their own: the value was
        // written for the outside, and `$(echo PWNED)` ran.
        for t in [
            "printf '%s' \"${x:-\"[f]\"}\"",
            "printf '%s' \"${x:-[f]}\"",
            "printf '%s' ${x:-[f]}",
            "cat <<EOF\n${x:-[f]}\nEOF",
        ] {
            for v in ["a.b_c-d/e:f", "v1", "x@y+z,w=%"] {
                assert_eq!(sh(t, v).trim_end(), v, "{t:?} {v:?}");
            }
            for v in ["$(echo PWNED)", "a b", "x}y", "it's", "\"", "*"] {
                let e = check_shell(t, &args(v)).unwrap_err();
                assert!(
                    e.to_string().contains("only a plain word"),
                    "{t:?} {v:?}: {e}"
                );
            }
        }
        // After the `}`, the rest of the string is read as before.
        assert_eq!(sh("x=1; printf '%s' \"${x}\" [f]", "a b"), "1a b");
    }

    #[test]
    fn line_continuations_and_escaped_word_ends_are_read_as_the_shell_reads_them() {
        let shells = shells();
        // (`EOF` would end the here-documents: [`check_shell`] refuses it there.)
        let values: Vec<&str> = NASTY
            .iter()
            .filter(|v| !v.is_empty() && !v.contains('\n') && **v != "EOF")
            .chain(&["(echo PWNED)", "_x"])
            .copied()
            .collect();
        // Each template with what it prints before and after the value. The values of
        // one template are filled one after another, as a proto's procs are (the
        // template is joined once, then taken from the cache).
        let templates = [
            ("printf '%s' \"$\\\n[f]\"", "$", ""),
            ("P=p; printf '%s' \"$P\\\n[f]\"", "p", ""),
            ("cat << \\\nEOF\n[f]\nEOF\n", "", "\n"),
            ("cat <<\\\n-EOF\n\t[f]\n\tEOF\n", "", "\n"),
            ("cat <\\\n<EOF\n[f]\nEOF\n", "", "\n"),
            (
                "printf '%s' \"$(ca\\\nse y in y) printf '%s' [f];; esac)\"",
                "",
                "",
            ),
            ("printf '%s' a\\\n#[f]", "a#", ""),
            ("printf '%s' a\\;#[f]", "a;#", ""),
            ("# a comment \\\n# [f]\nprintf '%s' [f]", "", ""),
        ];
        for (t, before, after) in templates {
            for v in &values {
                for shell in &shells {
                    let want = format!("{before}{v}{after}");
                    assert_eq!(run_in(shell, t, v), want, "{shell}: {t:?} with {v:?}");
                }
            }
        }
    }

    #[test]
    fn bash_c_strings_are_read_to_their_end_and_take_only_plain_words() {
        // Where /bin/sh is bash, `$'it\'s'` ends at its second quote, not its first.
        if std::path::Path::new("/bin/bash").exists() {
            for v in NASTY.iter().filter(|v| !v.is_empty()) {
                let t = "printf '%s|' $$'[f]' | sed 's/^[0-9]*//'; printf '%s|' $'it\\'s' [f] \"$'[f]'\"";
                let want = format!("{v}|it's|{v}|$'{v}'|");
                assert_eq!(run_in("/bin/bash", t, v), want, "{v:?}");
            }
        }
        assert_eq!(
            fill_shell("x $'[f]'", &args("report-1.txt")),
            "x $'report-1.txt'"
        );
        for (t, v) in [
            ("x $'[f]'", "a b"),
            ("x `y $'[f]'`", "a'"),
            ("${x:-$'[f]'}", "\\"),
        ] {
            let e = check_shell(t, &args(v)).unwrap_err().to_string();
            assert!(e.contains("only a plain word"), "{t:?}: {e}");
        }
    }

    #[test]
    fn bash_s_arithmetic_command_takes_only_a_whole_number() {
        // bash evaluates `a[$(...)]` in `(( ))` even from a quoted value.
        if std::path::Path::new("/bin/bash").exists() {
            assert_eq!(
                run_in("/bin/bash", "((x = [f] + 1)); echo $x", "41"),
                "42\n"
            );
        }
        for v in ["a[$(echo PWNED)]", "'1'", "x"] {
            for t in ["(( [f] ))", "x; ((y = [f]))", "$( ((y = [f])) )"] {
                let e = check_shell(t, &args(v)).unwrap_err().to_string();
                assert!(e.contains("only a whole number"), "{t:?}: {e}");
            }
        }
        assert!(check_shell("( (echo [f]) )", &args("a b")).is_ok());
    }

    #[test]
    fn backquotes_read_their_here_documents_and_their_quotes_within_double_quotes() {
        let shells = shells();
        let templates = [
            // The body of a here-document in backquotes, and `\"` opening and closing a
            // string inside backquotes within double quotes.
            "x=`cat <<EOF\n[f]\nEOF\n`; printf '%s' \"$x\"",
            "printf '%s' \"`printf '%s' \\\"[f]\\\"`\"",
            "printf '%s' \"`printf '%s' \\\"[f]\"`\"",
        ];
        for t in templates {
            for v in NASTY.iter().filter(|v| !v.contains('\n') && **v != "EOF") {
                for shell in &shells {
                    assert_eq!(run_in(shell, t, v), *v, "{shell}: {t:?} with {v:?}");
                }
            }
        }
    }

    #[test]
    fn inside_nested_backquotes_only_a_plain_word_is_written() {
        // `'` does not stop the search for the end of a backquoted command: a value's
        // backquote ended the inner one early, and `;touch x;` ran.
        let t = "x=`printf '%s' \\`printf '%s' [f]\\``; printf '%s' \"$x\"";
        assert_eq!(sh(t, "report-1.txt"), "report-1.txt");
        for v in ["`;echo PWNED;`", "a b", "$(echo PWNED)"] {
            let e = check_shell(t, &args(v)).unwrap_err().to_string();
            assert!(
                e.contains("nested in `...` only a plain word"),
                "{v:?}: {e}"
            );
        }
    }

    #[test]
    fn case_and_esac_open_and_close_a_case_only_where_a_command_starts() {
        // `"$(echo case)" [f]` was read as a `case` left open, so the `)` did not end
        // the `$(...)` and the `"` after it opened a string: the value was written for
        // double quotes while it stood outside them, and `";echo PWNED;"` ran.
        let templates = [
            ("printf '%s|' \"$(echo case)\" [f]", "case|"),
            ("printf '%s|' \"$(echo do case)\" [f]", "do case|"),
            ("printf '%s|' \"$(echo $(echo a) case)\" [f]", "a case|"),
            (
                "printf '%s|' \"$(case y in y) echo esac;; z) echo \"x\";; esac)\" [f]",
                "esac|",
            ),
            (
                "printf '%s|' \"$(if true; then case y in (y) case z in z) echo n;; esac;; esac; fi)\" [f]",
                "n|",
            ),
            (
                "printf '%s|' \"$(case y in (y) case z in z) echo n;; esac;; w) echo \"[f]\";; esac)\" [f]",
                "n|",
            ),
        ];
        each_shell_prints_the_value_after(&templates, &["\";echo PWNED;\"", "');echo PWNED;('"]);
        // bash's process substitution is a command of its own, like `$(...)`.
        if std::path::Path::new("/bin/bash").exists() {
            let t = "printf '%s|' \"$(echo <(echo) case)\" [f] | sed 's/[^|]*|//'";
            for v in NASTY.iter().filter(|v| !v.contains('\n')) {
                assert_eq!(
                    run_in("/bin/bash", t, v),
                    format!("{v}|"),
                    "{t:?} with {v:?}"
                );
            }
        }
    }

    #[test]
    fn a_comment_inside_backquotes_is_read_as_one_up_to_their_end() {
        // The `'` of `# don't` in backquotes was read as opening a string, so the value
        // after them was written for inside single quotes: `;echo PWNED;` ran.
        let templates = [
            ("x=`printf a # don't`; printf '%s|' \"$x\" [f]", "a|"),
            ("x=`# it's`; printf '%s|' \"$x\" [f]", "|"),
            ("printf '%s|' \"`printf a # \"it's`\" [f]", "a|"),
            ("x=`printf a # \\` it's`; printf '%s|' \"$x\" [f]", "a|"),
        ];
        each_shell_prints_the_value_after(&templates, &[";echo PWNED;", "'\"`"]);
    }

    #[test]
    fn bash_s_old_arithmetic_takes_only_a_whole_number() {
        // Where /bin/sh is bash, `$[ [f] ]` evaluated `'a[$(cmd)]'` and ran `cmd`: quotes
        // do not quote inside `$[...]`, as inside `$((...))`.
        if std::path::Path::new("/bin/bash").exists() {
            assert_eq!(run_in("/bin/bash", "echo $[ [f] + 1 ]", "41"), "42\n");
            assert_eq!(run_in("/bin/bash", "echo \"$[ [f] * 2 ]\"", "-2"), "-4\n");
        }
        for v in ["a[$(echo PWNED)]", "'1'", "x", "1]"] {
            for t in [
                "echo $[ [f] ]",
                "echo \"$[ x[0] + [f] ]\"",
                "cat <<E\n$[ [f] ]\nE",
            ] {
                let e = check_shell(t, &args(v)).unwrap_err().to_string();
                assert!(e.contains("only a whole number"), "{t:?}: {e}");
            }
        }
        // After the `]`, and for a placeholder right after a `$`, the rules are as before.
        assert!(check_shell("echo $[1] [f]", &args("a b")).is_ok());
        assert_eq!(fill_shell("echo $[f]", &args("ab")), "echo $\\a'b'");
    }

    #[test]
    fn other_brackets_stay() {
        assert_eq!(
            fill_shell("[ -e [f] ] && [x]", &args("a b")),
            "[ -e 'a b' ] && [x]"
        );
    }
}

//! Secret values of a run, and [`redact`], which hides them wherever prun writes script
//! arguments or command lines as text: the run history in the task DB, the JSON report,
//! `--dry-run` and `-v` echoes, failure messages and log headers (the last four show
//! commands through their `Display`, which redacts).
//!
//! Secrets are the values of script options declared `secret: true` or read from a
//! `*PASSWORD*`, `*TOKEN*` or `*SECRET*` environment variable (see
//! [`crate::script::Declaration`]). Commands themselves always get the real values, and
//! a command's log holds what it printed as printed; prun's own quotes of that output
//! (a failure message's stderr tail, log excerpts on the terminal) are redacted.
//!
//! The set is process-wide rather than passed along: command lines are shown from the
//! scheduler, from closures' `shell`/`exec` and from the store, far apart. A value once
//! secret stays secret, so a later run in the same process can only hide more, never less.

use std::borrow::Cow;
use std::sync::RwLock;

/// What a secret is shown as.
pub const MASK: &str = "***";

/// The secrets, longest first (so that a secret containing another is hidden whole).
static SECRETS: RwLock<Vec<String>> = RwLock::new(Vec::new());

/// Adds values to hide from now on; empty values are ignored.
pub fn add_secrets<I, S>(values: I)
where
    I: IntoIterator<Item = S>,
    S: Into<String>,
{
    let mut set = SECRETS.write().unwrap_or_else(|e| e.into_inner());
    for v in values {
        let v = v.into();
        if !v.is_empty() && !set.contains(&v) {
            set.push(v);
        }
    }
    set.sort_by_key(|s| std::cmp::Reverse(s.len()));
}

/// `text` with every secret replaced by [`MASK`].
pub fn redact(text: &str) -> Cow<'_, str> {
    let set = SECRETS.read().unwrap_or_else(|e| e.into_inner());
    let mut out = Cow::Borrowed(text);
    for s in set.iter() {
        if out.contains(s.as_str()) {
            out = Cow::Owned(out.replace(s.as_str(), MASK));
        }
    }
    out
}

/// Each word redacted (script arguments for the history and the report).
pub fn redact_all(words: &[String]) -> Vec<String> {
    words.iter().map(|w| redact(w).into_owned()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_hidden_longest_first_and_other_text_is_kept() {
        add_secrets(["pw-unit-1", "pw-unit-1-longer", ""]);
        assert_eq!(
            redact("x --password=pw-unit-1-longer y pw-unit-1"),
            "x --password=*** y ***"
        );
        assert!(matches!(redact("nothing secret"), Cow::Borrowed(_)));
        assert_eq!(redact_all(&["pw-unit-1".into(), "a".into()]), ["***", "a"]);
    }
}

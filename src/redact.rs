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
//! scheduler, from closures' `shell`/`exec` and from the store, far apart. Each run adds
//! its secrets for as long as it lasts ([`Secrets`] takes them out again), so that a
//! program embedding prun does not gather the secrets of every run it ever made. While
//! runs overlap, a value secret in one of them is hidden in all: they can only hide more,
//! never less.

use std::borrow::Cow;
use std::sync::{PoisonError, RwLock};

/// What a secret is shown as.
pub(crate) const MASK: &str = "***";

/// The secrets of the live runs, longest first (so that a secret containing another is
/// hidden whole), each with the number of runs that hold it.
static SECRETS: RwLock<Vec<(String, usize)>> = RwLock::new(Vec::new());

/// The secrets a run added; dropping it takes them out of the set again (unless another
/// live run holds them too).
#[derive(Debug, Default)]
pub(crate) struct Secrets(Vec<String>);

impl Secrets {
    /// Adds more values to hide while this lives; empty values are ignored.
    pub(crate) fn add<I, S>(&mut self, values: I)
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let mut set = SECRETS.write().unwrap_or_else(PoisonError::into_inner);
        for v in values {
            let v = v.into();
            if v.is_empty() || self.0.contains(&v) {
                continue;
            }
            match set.iter_mut().find(|(s, _)| *s == v) {
                Some((_, holders)) => *holders += 1,
                None => set.push((v.clone(), 1)),
            }
            self.0.push(v);
        }
        set.sort_by_key(|(s, _)| std::cmp::Reverse(s.len()));
    }
}

impl Drop for Secrets {
    fn drop(&mut self) {
        let mut set = SECRETS.write().unwrap_or_else(PoisonError::into_inner);
        for v in &self.0 {
            if let Some((_, holders)) = set.iter_mut().find(|(s, _)| s == v) {
                *holders -= 1;
            }
        }
        set.retain(|(_, holders)| *holders > 0);
    }
}

/// `text` with every secret replaced by [`MASK`].
pub(crate) fn redact(text: &str) -> Cow<'_, str> {
    let set = SECRETS.read().unwrap_or_else(PoisonError::into_inner);
    let mut out = Cow::Borrowed(text);
    for (s, _) in set.iter() {
        if out.contains(s.as_str()) {
            out = Cow::Owned(out.replace(s.as_str(), MASK));
        }
    }
    out
}

/// Each word redacted (script arguments for the history and the report).
pub(crate) fn redact_all(words: &[String]) -> Vec<String> {
    words.iter().map(|w| redact(w).into_owned()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_hidden_longest_first_while_their_run_lasts() {
        let mut secrets = Secrets::default();
        secrets.add(["pw-unit-1", "pw-unit-1-longer", ""]);
        assert_eq!(
            redact("x --password=pw-unit-1-longer y pw-unit-1"),
            "x --password=*** y ***"
        );
        assert!(matches!(redact("nothing secret"), Cow::Borrowed(_)));
        assert_eq!(redact_all(&["pw-unit-1".into(), "a".into()]), ["***", "a"]);
        let mut other = Secrets::default();
        other.add(["pw-unit-1"]);
        drop(secrets);
        assert_eq!(redact("pw-unit-1 pw-unit-1-longer"), "*** ***-longer");
        drop(other);
        assert_eq!(redact("pw-unit-1"), "pw-unit-1");
    }
}

//! Values scripts create and throw: `NO_FAILURES`, `when_scheduled(...)`, `skip(...)`,
//! `no_change(...)`, and the error value of a failed `wait`.

/// The `NO_FAILURES` special dependency.
#[derive(Debug, Clone, Copy)]
pub(super) struct NoFailures;

/// `when_scheduled(pattern)`: a conditional rdep.
#[derive(Debug, Clone)]
pub(super) struct WhenScheduled(pub String);

/// Thrown by `skip(why)` and `no_change(why)`.
#[derive(Debug, Clone)]
pub(super) struct SkipSignal {
    pub why: String,
    pub no_change: bool,
}

/// What a message says of a thrown value that does not show itself: `skip(...)` and
/// `no_change(...)` thrown outside a proc's body (only a body ends as SKIPPED), and
/// prun's other values by name (`NO_FAILURES`, `ctx`), not by their Rust type's path.
/// `None` for a value that shows itself (a string, a number, an array).
pub(crate) fn thrown_text(v: &rhai::Dynamic) -> Option<String> {
    if let Some(s) = v.read_lock::<SkipSignal>() {
        let call = if s.no_change { "no_change" } else { "skip" };
        let why = if s.why.is_empty() {
            String::new()
        } else {
            format!("{:?}", s.why)
        };
        return Some(format!(
            "{call}({why}) ends a proc's body as SKIPPED: thrown here, it is an error"
        ));
    }
    // A failing `wait` where nothing reads what it threw as prun does at the top level
    // and in a body (a deferred cleanup): its text names the procs.
    if let Some(f) = v.read_lock::<ProcFailure>() {
        return Some(f.0.clone());
    }
    if let Some(a) = v.read_lock::<Aborted>() {
        return Some(a.0.clone());
    }
    // A type without a text of its own shows as its type's name.
    let text = v.to_string();
    (text == v.type_name()).then(|| format!("the script threw {}", crate::diag::type_words(&text)))
}

/// Thrown by `wait` when a proc it waited for failed; at the top level this makes prun
/// exit 1 (a proc failed) rather than 2 (the script is wrong).
#[derive(Debug, Clone)]
pub(super) struct ProcFailure(pub String);

/// Thrown by `wait` when the run was aborted (Ctrl-C, `--fail-fast`).
#[derive(Debug, Clone)]
pub(super) struct Aborted(pub String);

/// Whether `v` is a value of a type whose contents prun cannot read: Rhai writes it by
/// its type's name alone (an embedder's own type; prun's own values too), so no text of
/// it tells two of them apart.
pub(super) fn opaque(v: &rhai::Dynamic) -> bool {
    v.is_variant() && format!("{v:?}") == v.type_name()
}

/// How deeply nested a captured value may be (it is copied and rendered for the fingerprint
/// recursively): as deep as a result saved in the task DB may be.
pub(super) const MAX_NESTING: usize = 100;

/// A value that cannot be a command's text (an argument, an environment value); displayed
/// as its type in words (`an array`, `a closure`).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub(super) struct NotText(String);

impl NotText {
    fn of(v: &rhai::Dynamic) -> NotText {
        NotText(crate::diag::type_words(v.type_name()))
    }
}

/// The text of one argument of an argv (`cmd`, `exec`, `pipe`) or of an environment
/// variable's value in an `env` map: text, a number or a bool. Anything else is
/// [`NotText`]: `()` (an unset `env(...)`, a missing map key) would be an empty value, and
/// an array, map or closure Rhai's rendering of it (`[1, 2]`, `Fn(anon$...)`).
pub(super) fn argument_text(v: &rhai::Dynamic) -> Result<String, NotText> {
    if v.is_string() || v.is_int() || v.is_float() || v.is_bool() || v.is_char() {
        Ok(v.to_string())
    } else {
        Err(NotText::of(v))
    }
}

//! Errors in building or resolving the graph: bad names, unknown procs, cycles, waves.

use thiserror::Error;

/// A mistake in how the script declares or requests procs. Messages read as
/// "failed to …" fragments and always name the proc, proto or pattern involved.
#[derive(Debug, Error, Clone, PartialEq)]
pub(crate) enum GraphError {
    #[error("invalid name pattern \"{pattern}\": {why}")]
    BadPattern { pattern: String, why: String },
    #[error("pattern \"{pattern}\" requires argument \"{arg}\" but it was not provided")]
    MissingArg { pattern: String, arg: String },
    /// `first` says where the existing proc came from ("defined at main.rhai:2:1", "made
    /// from proto \"b::\[x\]\"").
    #[error("proc \"{name}\" already exists ({first})")]
    DuplicateProc { name: String, first: String },
    #[error("proto \"{0}\" already exists")]
    DuplicateProto(String),
    #[error(
        "name \"{}\" contains a newline or another control character (or one that changes the text's direction): names are one line of printable text",
        .0.escape_debug()
    )]
    ControlCharInName(String),
    #[error("a proc or proto name cannot be empty")]
    EmptyName,
    #[error("proc name \"{0}\" contains a [placeholder]: use proto() for templates")]
    PlaceholderInProcName(String),
    /// A name made from a proto that leaves a placeholder as the pattern writes it
    /// (`t::[v]` for the proto `t::[v]`): it would make a proc whose value is `[v]`.
    #[error(
        "\"{name}\" leaves placeholder [{arg}] of proto \"{proto}\" unfilled: it needs a value (run(\"{proto}\", #{{ {arg}: \"...\" }}) fills it in)"
    )]
    UnfilledPlaceholder {
        name: String,
        proto: String,
        arg: String,
    },
    #[error(
        "value {value:?} for placeholder [{arg}] cannot be written into the shell command: {why} (pass it with cmd: [...] or env instead)"
    )]
    Unquotable {
        arg: String,
        value: String,
        why: String,
    },
    #[error("no proc or proto matches \"{0}\"")]
    NoMatch(String),
    #[error(
        "the run has ended: a deferred cleanup cannot schedule procs (run its commands with exec, shell or pipe)"
    )]
    RunEnded,
    #[error("name \"{name}\" matches several protos: {}", protos.join(", "))]
    Ambiguous { name: String, protos: Vec<String> },
    #[error(
        "glob \"{value}\" for placeholder [{arg}] of proto \"{proto}\" needs arg_choices for [{arg}]"
    )]
    GlobWithoutChoices {
        proto: String,
        arg: String,
        value: String,
    },
    #[error(
        "glob \"{value}\" for placeholder [{arg}] of proto \"{proto}\" matched none of {}",
        allowed_values(allowed)
    )]
    GlobNoMatch {
        proto: String,
        arg: String,
        value: String,
        allowed: Vec<String>,
    },
    #[error(
        "value \"{value}\" for placeholder [{arg}] of proto \"{proto}\" is not one of {}{}",
        allowed_values(allowed),
        crate::suggest::hint(value, allowed.iter().map(String::as_str), "\"")
    )]
    NotAChoice {
        proto: String,
        arg: String,
        value: String,
        allowed: Vec<String>,
    },
    #[error("{what} of \"{name}\" failed: {message}")]
    Callback {
        what: &'static str,
        name: String,
        message: String,
    },
    #[error(
        "proc \"{dependent}\" depends on \"{dep}\", which does not exist (allow_missing_deps is off)"
    )]
    MissingDep { dependent: String, dep: String },
    #[error(
        "proc \"{dependent}\" (wave {dependent_wave}) cannot depend on proc \"{dep}\" (wave {dep_wave}): dependencies must be in the same or a lower wave"
    )]
    WaveViolation {
        dependent: String,
        dependent_wave: i64,
        dep: String,
        dep_wave: i64,
    },
    #[error("dependency cycle: {}", .0.join(" -> "))]
    Cycle(Vec<String>),
    /// A fault scheduling a `now` proc would meet, found as it is defined.
    #[error("proc \"{name}\" (now: true) cannot be scheduled: {fault}")]
    NowFault {
        name: String,
        fault: Box<GraphError>,
    },
    /// A fault settling a new proc (or a proto's procs) would meet with the procs waiting
    /// for it: the definition is refused and leaves nothing defined.
    #[error("{what} \"{name}\" cannot be defined: {fault}")]
    Refused {
        what: &'static str,
        name: String,
        fault: Box<GraphError>,
    },
    /// A body's wait for a proc of a higher wave: that proc starts only once the waiter's
    /// wave has finished, the waiter included.
    #[error(
        "proc \"{waiter}\" (wave {waiter_wave}) waits for proc \"{target}\" (wave {target_wave}), which starts only once every proc of wave {waiter_wave} has finished, \"{waiter}\" included: the wait would never end"
    )]
    WaitForHigherWave {
        waiter: String,
        waiter_wave: i64,
        target: String,
        target_wave: i64,
    },
    #[error(
        "proc \"{declarer}\" has when_scheduled(\"{target}\"), but \"{target}\" is already {state}: it was scheduled too late to run before it"
    )]
    TooLate {
        declarer: String,
        target: String,
        state: String,
    },
    #[error("no proc named \"{0}\" exists")]
    UnknownProc(String),
    #[error(
        "proc \"{0}\" was never scheduled, so waiting for it would never end (use run() first)"
    )]
    NotScheduled(String),
    #[error("no scheduled proc matches \"{0}\"")]
    NoScheduledMatch(String),
    /// A glob of `start`, which takes existing procs only.
    #[error("no proc matches \"{0}\"")]
    NoProcMatch(String),
    /// The operation needs values of script closures that were not called yet; the caller
    /// calls them outside the lock and retries (see `graph::need`).
    #[error("internal error: {0} had not been called before it was needed")]
    Unresolved(super::need::Needs),
    /// A bad option value, with its message.
    #[error("{0}")]
    Option(String),
}

/// The allowed values of a placeholder, for a message: all of a short list, the first
/// few of a long one (a list of 10,000 file names is no error line).
fn allowed_values(allowed: &[String]) -> String {
    const SHOWN: usize = 10;
    match allowed.len() {
        0 => "the allowed values: its arg_choices allow none".into(),
        n if n <= SHOWN => format!("the allowed values: {}", allowed.join(", ")),
        n => format!(
            "the {n} allowed values: {}, ...",
            allowed[..SHOWN].join(", ")
        ),
    }
}

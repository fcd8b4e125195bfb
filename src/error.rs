//! The errors that end prun outside a run's own reporting.
//!
//! As just's `Failure::code()`: a run, `prun history`, `prun log`, `prun check` and the
//! `--lock` return a [`Failure`] that knows its [`Exit`] status; the command line prints it
//! once. What goes wrong *during* a run (a proc fails, the script throws) is reported by
//! the run's reporter in order with its other lines, and in the run's report.
//!
//! The library's [`Error`](struct@Error) wraps a [`Failure`]: what the embedder sees is its message,
//! its [`ErrorKind`] and, for a script that does not compile or declares its arguments
//! wrongly, its [`Location`].

use std::path::PathBuf;

use thiserror::Error;

use crate::exit::Exit;
use crate::report::Outcome;
use crate::script::{DeclError, ScriptError};
use crate::store::StoreError;

/// Why prun stopped before (or instead of) running a script. Displayed as the whole line
/// to print.
#[derive(Debug, Error)]
pub(crate) enum Failure {
    #[error("prun: failed to start the async runtime: {0}")]
    Runtime(std::io::Error),
    /// The thread of a run could not be started, or it panicked outside the run's own
    /// catching (a bug).
    #[error("prun: internal error: {0}")]
    Internal(String),
    /// The script cannot be read or compiled.
    #[error("prun: error: {0}")]
    Script(ScriptError),
    /// `prun man`, `prun definitions`: what prun writes about itself cannot be written.
    #[error("prun: failed to write {}: {source}", crate::paths::shown(path))]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The script's `args(#{...})` declaration is wrong.
    #[error("prun: error: {}:{source}", crate::shown::one_line(script))]
    Declaration {
        script: String,
        source: crate::script::DeclError,
    },
    /// The runtime's settings are wrong.
    #[error("prun: {0}")]
    Config(String),
    /// The command line was wrong; the message is complete (clap's style).
    #[error("{0}")]
    Usage(String),
    /// The command-line parser printed its own message (help, or what is wrong).
    #[error("")]
    Printed(Exit),
    #[error("prun: failed to open the lock {}: {source}", crate::shown::path(path))]
    LockOpen {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("prun: failed to take the lock {}: {source}", crate::shown::path(path))]
    LockTake {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "prun: another run of {} holds the lock {} ({holder}); --lock=wait waits for it",
        crate::shown::path(script),
        crate::shown::path(path)
    )]
    Locked {
        script: PathBuf,
        path: PathBuf,
        holder: String,
    },
    #[error(
        "prun: no task DB at {} (no run of {} recorded yet){hint}",
        crate::paths::shown(path),
        crate::shown::path(script)
    )]
    NoDb {
        path: PathBuf,
        script: PathBuf,
        /// The nearest scripts that have runs recorded (`; did you mean `build.rhai`?`).
        hint: String,
    },
    /// `prun report --run N`: no such run of the script (or, without `--run`, no run of it
    /// at all).
    #[error("prun: {} of {} in the task DB {}{hint}", match run { Some(n) => format!("no run {n}"), None => "no run recorded".into() }, crate::shown::path(script), crate::paths::shown(path))]
    NoRun {
        run: Option<i64>,
        script: PathBuf,
        path: PathBuf,
        /// Without `--run`, the nearest scripts of that DB (`; did you mean `build.rhai`?`).
        hint: String,
    },
    #[error(
        "prun: failed to write the report {}: {source}",
        crate::paths::shown(path)
    )]
    WriteHtml {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("prun: {0}")]
    Store(#[from] StoreError),
    /// `--json` names a place where no report can be written.
    #[error("prun: {0}")]
    Report(#[from] crate::report::DestinationError),
    /// The script's state directory cannot be used safely.
    #[error("prun: {0}")]
    StateDir(#[from] crate::paths::StateDirError),
    #[error("prun: failed to read {}: {source}", crate::paths::shown(path))]
    ReadLog {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "prun: no log of {of} under {} (it never ran, or ran without printing anything){hint}",
        crate::shown::path(root)
    )]
    NoLog {
        /// Whose log: `proc "build"`, or the script's top level.
        of: String,
        root: PathBuf,
        /// The nearest names of procs that have a log (`; did you mean "build"?`).
        hint: String,
    },
}

impl Failure {
    /// No task DB at `path` for `script`: with the nearest scripts that have runs
    /// recorded, unless the DB was `given` (`--db`), when the script is not what is wrong.
    pub(crate) fn no_db(path: PathBuf, script: &std::path::Path, given: bool) -> Failure {
        let hint = if given {
            String::new()
        } else {
            crate::suggest::recorded_script_hint(script)
        };
        Failure::NoDb {
            path,
            script: script.to_path_buf(),
            hint,
        }
    }

    /// No run `run` (`None`: none at all) of `script` in the task DB at `path`; with
    /// none at all, the DB's scripts nearest to it (a mistyped name, a DB shared by
    /// several scripts with `--db`).
    pub(crate) fn no_run(run: Option<i64>, script: &std::path::Path, path: PathBuf) -> Failure {
        let hint = match run {
            Some(_) => String::new(),
            None => crate::suggest::db_script_hint(script, &path),
        };
        Failure::NoRun {
            run,
            script: script.to_path_buf(),
            path,
            hint,
        }
    }

    /// Prints the error on stderr, once (nothing when it was printed already), with its
    /// escape sequences but colours written out (see [`crate::ui::colours_only`]): it may
    /// quote a name prun did not choose (a target, a script's path, a thrown text).
    pub(crate) fn print(&self) {
        if !matches!(self, Failure::Printed(_)) {
            errln!("{}", crate::ui::colours_only(&self.to_string()));
        }
    }

    /// What a `--json` report says of a run this error stopped: its outcome and the
    /// error's text. `None` when no run was attempted (help was printed).
    pub(crate) fn report(&self) -> Option<(Outcome, String)> {
        let text = self.to_string();
        let text = text.strip_prefix("prun: ").unwrap_or(&text);
        // The report's field says it is an error: "syntax error: ...", not "error: ...".
        let text = text
            .strip_prefix("error: ")
            .unwrap_or(text)
            .trim_end()
            .to_string();
        let outcome = match self {
            Failure::Printed(Exit::Ok) => return None,
            Failure::Printed(_) => {
                return Some((Outcome::UsageError, "the command line was wrong".into()));
            }
            Failure::Usage(_) => Outcome::UsageError,
            Failure::Locked { .. } => Outcome::Locked,
            Failure::Script(_) | Failure::Declaration { .. } => Outcome::ScriptError,
            Failure::Internal(_) => Outcome::InternalError,
            _ => Outcome::Error,
        };
        Some((outcome, text))
    }

    /// The exit status this error ends prun with.
    pub(crate) fn code(&self) -> Exit {
        match self {
            Failure::Printed(exit) => *exit,
            Failure::Usage(_)
            | Failure::Config(_)
            | Failure::Report(_)
            | Failure::NoDb { .. }
            | Failure::NoRun { .. }
            | Failure::WriteHtml { .. }
            | Failure::NoLog { .. }
            | Failure::Write { .. } => Exit::Usage,
            Failure::Locked { .. } => Exit::Locked,
            Failure::Runtime(_)
            | Failure::Internal(_)
            | Failure::Script(_)
            | Failure::Declaration { .. }
            | Failure::LockOpen { .. }
            | Failure::LockTake { .. }
            | Failure::Store(_)
            | Failure::StateDir(_)
            | Failure::ReadLog { .. } => Exit::Script,
        }
    }
}

/// Why a [`crate::Runtime`] could not run a script, or could not be built: the script
/// cannot be read or does not compile, its arguments or targets are wrong, its state
/// directory or task DB cannot be used. What goes wrong *during* a run (a proc fails, the
/// script throws at its top level) is in the run's [`crate::Report`] instead.
///
/// ```
/// # let state = tempfile::tempdir().unwrap();
/// let rt = prun::Runtime::builder()
///     .task_db(prun::TaskDb::Off)
/// #     .state_dir(state.path())
///     .build()?;
/// let err = rt.run_str("let x = ;", [""; 0]).unwrap_err();
/// assert_eq!(err.kind(), prun::ErrorKind::Script);
/// let at = err.location().expect("a syntax error has a place");
/// assert_eq!((at.line, at.column), (1, 9));
/// # Ok::<(), prun::Error>(())
/// ```
#[derive(Debug)]
pub struct Error(Failure);

/// What kind of [`crate::Error`] stopped a run.
///
/// ```
/// let err = prun::Runtime::builder().max_operations(0).build().unwrap_err();
/// assert_eq!(err.kind(), prun::ErrorKind::Config);
/// # let state = tempfile::tempdir().unwrap();
/// let rt = prun::Runtime::builder()
///     .task_db(prun::TaskDb::Off)
/// #     .state_dir(state.path())
///     .build()?;
/// let err = rt.run_file("no-such-script.rhai", [""; 0]).unwrap_err();
/// assert_eq!(err.kind(), prun::ErrorKind::Script);
/// assert_eq!(err.exit_code(), 2);
/// # Ok::<(), prun::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The script cannot be read, does not compile, or declares its arguments wrongly.
    Script,
    /// The arguments or targets are wrong.
    Usage,
    /// Another run of the script holds its lock (`--lock`).
    Locked,
    /// The runtime is configured wrongly (see [`crate::RuntimeBuilder::build`]).
    Config,
    /// The state directory, the task DB or the system failed.
    System,
    /// A bug in prun.
    Internal,
}

/// Where in a script an [`crate::Error`] is.
///
/// ```
/// # let state = tempfile::tempdir().unwrap();
/// let rt = prun::Runtime::builder()
///     .task_db(prun::TaskDb::Off)
/// #     .state_dir(state.path())
///     .build()?;
/// let err = rt.run_str("let x = 1;\nlet y = ;", [""; 0]).unwrap_err();
/// let at = err.location().unwrap();
/// assert_eq!((at.file.as_str(), at.line, at.column), ("<string>", 2, 9));
/// # Ok::<(), prun::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Location {
    /// The script's path (`<string>` for [`crate::Runtime::run_str`]).
    pub file: String,
    /// The line, 1-based.
    pub line: u32,
    /// The column, 1-based (0 when unknown).
    pub column: u32,
}

impl Error {
    /// What kind of error this is.
    pub fn kind(&self) -> ErrorKind {
        match &self.0 {
            Failure::Script(_) | Failure::Declaration { .. } => ErrorKind::Script,
            Failure::Usage(_) | Failure::Printed(_) | Failure::Report(_) => ErrorKind::Usage,
            Failure::Locked { .. } => ErrorKind::Locked,
            Failure::Config(_) => ErrorKind::Config,
            Failure::Internal(_) => ErrorKind::Internal,
            _ => ErrorKind::System,
        }
    }

    /// Where in the script the error is, when it is a syntax error or a wrong
    /// `args(#{...})` declaration.
    pub fn location(&self) -> Option<Location> {
        match &self.0 {
            Failure::Script(ScriptError::Syntax { origin, .. }) => Some(Location {
                file: origin.file().to_string(),
                line: origin.line()?,
                column: origin.column().unwrap_or(0),
            }),
            Failure::Declaration {
                script,
                source: DeclError::At { line, column, .. },
            } => Some(Location {
                file: script.clone(),
                line: u32::try_from(*line).ok()?,
                column: u32::try_from(*column).unwrap_or(0),
            }),
            _ => None,
        }
    }

    /// The exit status `prun` ends with for this error (2, 64, 75; API.md section 1).
    pub fn exit_code(&self) -> i32 {
        self.0.code() as i32
    }

    /// The failure inside, for the command line.
    pub(crate) fn into_failure(self) -> Failure {
        self.0
    }
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let text = self.0.to_string();
        f.write_str(text.strip_prefix("prun: ").unwrap_or(&text).trim_end())
    }
}

impl std::error::Error for Error {}

impl From<Failure> for Error {
    fn from(f: Failure) -> Error {
        Error(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_error_knows_its_exit_status_and_prints_one_line() {
        let locked = Failure::Locked {
            script: "a:b.rhai".into(),
            path: "/s/run.lock".into(),
            holder: "pid 7".into(),
        };
        assert_eq!(locked.code(), Exit::Locked);
        assert_eq!(
            locked.to_string(),
            "prun: another run of a:b.rhai holds the lock /s/run.lock (pid 7); --lock=wait waits for it"
        );
        let no_db = Failure::NoDb {
            path: "t.db".into(),
            script: "s.rhai".into(),
            hint: String::new(),
        };
        assert_eq!(no_db.code(), Exit::Usage);
        let compile = Failure::Script(ScriptError::Syntax {
            origin: crate::diag::Origin::new(Some("s.rhai"), rhai::Position::new(1, 2)),
            message: "oops".into(),
        });
        assert_eq!(compile.code(), Exit::Script);
        assert_eq!(
            compile.to_string(),
            "prun: error: s.rhai:1:2: syntax error: oops"
        );
        assert_eq!(Failure::Printed(Exit::Ok).code(), Exit::Ok);
    }
}

//! The errors that end prun outside a run's own reporting, and its exit statuses.
//!
//! As just's `Error::code()`: [`crate::run`], [`crate::history`], [`crate::log`],
//! [`crate::check`] and the `--lock` return an [`Error`] that knows its [`Exit`] status;
//! `main` prints it once. What goes wrong *during* a run (a proc fails, the script throws)
//! is reported by the run's reporter in order with its other lines, and only the exit
//! status comes back.

use std::path::PathBuf;

use thiserror::Error;

use crate::script::ScriptError;
use crate::store::StoreError;

/// prun's exit statuses (API.md section 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// Every scheduled proc succeeded, was skipped or was up to date.
    Ok = 0,
    /// A proc failed.
    ProcFailed = 1,
    /// The script itself failed.
    Script = 2,
    /// The command line was wrong.
    Usage = 64,
    /// `--lock`: another run of the script holds the lock.
    Locked = 75,
    /// Interrupted by Ctrl-C, SIGTERM, SIGHUP or SIGQUIT.
    Interrupted = 130,
}

/// Why prun stopped before (or instead of) running a script. Displayed as the whole line
/// to print.
#[derive(Debug, Error)]
pub enum Error {
    #[error("prun: failed to start the async runtime: {0}")]
    Runtime(std::io::Error),
    /// The script cannot be read or compiled.
    #[error("prun: error: {0}")]
    Script(ScriptError),
    /// `prun man`, `prun definitions`: what prun writes about itself cannot be written.
    #[error("prun: failed to write {}: {source}", path.display())]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The script's `args(#{...})` declaration is wrong.
    #[error("prun: error: {script}: {source}")]
    Declaration {
        script: String,
        source: crate::script::DeclError,
    },
    /// The command line was wrong; the message is complete (clap's style).
    #[error("{0}")]
    Usage(String),
    /// The command-line parser printed its own message (help, or what is wrong).
    #[error("")]
    Printed(Exit),
    #[error("prun: failed to open the lock {}: {source}", path.display())]
    LockOpen {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("prun: failed to take the lock {}: {source}", path.display())]
    LockTake {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "prun: another run of {} holds the lock {} ({holder}); --lock=wait waits for it",
        script.display(),
        path.display()
    )]
    Locked {
        script: PathBuf,
        path: PathBuf,
        holder: String,
    },
    #[error("prun: no task DB at {} (no run of {} recorded yet)", path.display(), script.display())]
    NoDb { path: PathBuf, script: PathBuf },
    /// `prun report --run N`: no such run (or, without `--run`, no run at all).
    #[error("prun: {} in the task DB {}", match run { Some(n) => format!("no run {n}"), None => "no run recorded".into() }, path.display())]
    NoRun { run: Option<i64>, path: PathBuf },
    #[error("prun: failed to write the report {}: {source}", path.display())]
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
    #[error("prun: failed to read {}: {source}", path.display())]
    ReadLog {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "prun: no log of proc \"{proc_name}\" under {} (it never ran, or ran without printing anything)",
        root.display()
    )]
    NoLog { proc_name: String, root: PathBuf },
}

impl Error {
    /// Prints the error on stderr, once (nothing when it was printed already).
    pub fn print(&self) {
        if !matches!(self, Error::Printed(_)) {
            errln!("{self}");
        }
    }

    /// What a `--json` report says of a run this error stopped: its outcome and the
    /// error's text. `None` when no run was attempted (help was printed).
    pub fn report(&self) -> Option<(&'static str, String)> {
        let text = self.to_string();
        let text = text
            .strip_prefix("prun: ")
            .unwrap_or(&text)
            .trim_end()
            .to_string();
        let outcome = match self {
            Error::Printed(Exit::Ok) => return None,
            Error::Printed(_) => {
                return Some(("usage error", "the command line was wrong".into()));
            }
            Error::Usage(_) => "usage error",
            Error::Locked { .. } => "locked",
            Error::Script(_) | Error::Declaration { .. } => "script error",
            _ => "error",
        };
        Some((outcome, text))
    }

    /// The exit status this error ends prun with.
    pub fn code(&self) -> Exit {
        match self {
            Error::Printed(exit) => *exit,
            Error::Usage(_)
            | Error::Report(_)
            | Error::NoDb { .. }
            | Error::NoRun { .. }
            | Error::WriteHtml { .. }
            | Error::NoLog { .. }
            | Error::Write { .. } => Exit::Usage,
            Error::Locked { .. } => Exit::Locked,
            Error::Runtime(_)
            | Error::Script(_)
            | Error::Declaration { .. }
            | Error::LockOpen { .. }
            | Error::LockTake { .. }
            | Error::Store(_)
            | Error::StateDir(_)
            | Error::ReadLog { .. } => Exit::Script,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_error_knows_its_exit_status_and_prints_one_line() {
        let locked = Error::Locked {
            script: "a:b.rhai".into(),
            path: "/s/run.lock".into(),
            holder: "pid 7".into(),
        };
        assert_eq!(locked.code(), Exit::Locked);
        assert_eq!(
            locked.to_string(),
            "prun: another run of a:b.rhai holds the lock /s/run.lock (pid 7); --lock=wait waits for it"
        );
        let no_db = Error::NoDb {
            path: "t.db".into(),
            script: "s.rhai".into(),
        };
        assert_eq!(no_db.code(), Exit::Usage);
        let compile = Error::Script(ScriptError::Compile("s.rhai:1:2: syntax error".into()));
        assert_eq!(compile.code(), Exit::Script);
        assert_eq!(compile.to_string(), "prun: error: s.rhai:1:2: syntax error");
        assert_eq!(Error::Printed(Exit::Ok).code(), Exit::Ok);
    }
}

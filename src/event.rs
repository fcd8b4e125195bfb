//! What a run tells its reporters and its report: the state of a proc and the summary of
//! one proc, and the [`Event`]s an embedder receives (`ui::Tee` turns a reporter's calls
//! into them). The types are kept apart from the scheduler (`exec`) and the reporters
//! (`ui`, `report`), so that neither depends on the other for them; this module depends
//! on neither.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use rhai::Dynamic;

/// Where a proc is in its life: IDLE → WANTED → RUNNING → one of the final states.
/// Serialized (and displayed) upper-case, as in the `--json` report: `"SUCCEEDED"`.
///
/// ```
/// # let state = tempfile::tempdir().unwrap();
/// let rt = prun::Runtime::builder()
///     .task_db(prun::TaskDb::Off)
/// #     .state_dir(state.path())
///     .build()?;
/// let report = rt.run_str(
///     r#"
///     proc("a", || 1);
///     proc("b", #{ cmd: ["false"] });
///     proc("c", #{ deps: ["b"] }, || 2);
///     "#,
///     ["a", "c"],
/// )?;
/// let state = |name| report.proc(name).unwrap().state;
/// assert_eq!(state("a"), prun::State::Succeeded);
/// assert!(state("a").is_success());
/// assert_eq!(state("c"), prun::State::FailedDep);
/// assert!(state("c").is_failure() && state("c").is_complete());
/// assert_eq!(state("c").to_string(), "FAILED_DEP");
/// # Ok::<(), prun::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum State {
    /// Defined, not asked for.
    Idle,
    /// Asked for, not started yet.
    Wanted,
    /// Running now.
    Running,
    /// Ran and succeeded.
    Succeeded,
    /// Ran and failed.
    Failed,
    /// Not run: a dependency failed.
    FailedDep,
    /// Skipped by its own decision (`ctx.skip`, a `skip_if`).
    Skipped,
    /// Not run: its cached result is up to date.
    UpToDate,
}

impl serde::Serialize for State {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl State {
    /// True for the final states that count as success for dependents.
    pub fn is_success(self) -> bool {
        matches!(self, State::Succeeded | State::Skipped | State::UpToDate)
    }

    /// True for FAILED and FAILED_DEP.
    pub fn is_failure(self) -> bool {
        matches!(self, State::Failed | State::FailedDep)
    }

    /// True once the proc will not change again in this run.
    pub fn is_complete(self) -> bool {
        self.is_success() || self.is_failure()
    }

    /// The upper-case name used in output, reports and `state()`.
    pub fn as_str(self) -> &'static str {
        match self {
            State::Idle => "IDLE",
            State::Wanted => "WANTED",
            State::Running => "RUNNING",
            State::Succeeded => "SUCCEEDED",
            State::Failed => "FAILED",
            State::FailedDep => "FAILED_DEP",
            State::Skipped => "SKIPPED",
            State::UpToDate => "UP_TO_DATE",
        }
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

/// A summary of one proc for `results()`, `state()` and the final report.
#[derive(Debug, Clone)]
pub(crate) struct ProcSummary {
    pub name: Arc<str>,
    pub state: State,
    pub result: Option<Dynamic>,
    pub error: Option<String>,
    /// When its first attempt started (wall clock).
    pub started: Option<std::time::SystemTime>,
    /// From its first start to its end.
    pub duration: Option<Duration>,
    pub exit_code: Option<i32>,
    pub log: Option<std::path::PathBuf>,
    /// Where its last command ran, when not here: the SSH host, or the Slurm job.
    pub place: Option<String>,
    /// The executor its commands run on (`None`: this machine).
    pub executor: Option<String>,
    /// What one run of it needs.
    pub resources: crate::graph::Resources,
}

/// The live display's view of the queue (see `Core::queue_view`).
#[derive(Debug, Clone, Default)]
pub(crate) struct QueueView {
    /// Procs that left IDLE (the run's total so far).
    pub scheduled: usize,
    /// Names of the WANTED procs: scheduled, not started yet.
    pub wanted: Vec<Arc<str>>,
    /// The parallel limit.
    pub parallel: usize,
}

/// Something that happened in a run, as it happens: what [`crate::RuntimeBuilder::on_event`]
/// receives, to draw a display of one's own or to forward to one's logs. Events come
/// from the threads of the run, in the order of each proc's life.
///
/// ```
/// # let state = tempfile::tempdir().unwrap();
/// let rt = prun::Runtime::builder()
///     .task_db(prun::TaskDb::Off)
///     .on_event(|e: &prun::Event| match e {
///         prun::Event::Started { name, .. } => eprintln!("started {name}"),
///         prun::Event::Finished { name, state, .. } => eprintln!("{name}: {state}"),
///         _ => {}
///     })
/// #   .state_dir(state.path())
///     .build()?;
/// rt.run_str(r#"proc("a", #{ cmd: ["true"], now: true });"#, [""; 0])?;
/// # Ok::<(), prun::Error>(())
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Event {
    /// A proc started its first attempt (in watch mode, again when its inputs changed
    /// while it ran: that attempt's result is dropped, and no `Finished` comes for it).
    #[non_exhaustive]
    Started {
        /// The proc's name.
        name: String,
    },
    /// A proc reached a final state.
    #[non_exhaustive]
    Finished {
        /// The proc's name.
        name: String,
        /// Its final state.
        state: State,
        /// From its first start to its end, when it ran.
        duration: Option<Duration>,
        /// The exit code of its command, when it had one.
        exit_code: Option<i32>,
        /// Why it failed.
        error: Option<String>,
    },
    /// A failed attempt of a proc will be retried.
    #[non_exhaustive]
    Retrying {
        /// The proc's name.
        name: String,
        /// The attempt that failed (1 for the first).
        attempt: u32,
        /// Why it failed.
        error: String,
    },
    /// A proc reported its progress (`ctx.progress(0.5)`, `ctx.progress("copying")`).
    #[non_exhaustive]
    Progress {
        /// The proc's name.
        name: String,
        /// The progress, as text (`"50%"`, `"copying"`).
        text: String,
    },
    /// A command started (`shell`, `exec`, `pipe`, a command body).
    #[non_exhaustive]
    Command {
        /// The proc it runs for; `None` at the script's top level.
        proc: Option<String>,
        /// The command line (secrets hidden).
        line: String,
    },
    /// A line the script logged (`print`, `log_info`, `log_warn`, `log_error`).
    #[non_exhaustive]
    Log {
        /// The line.
        text: String,
    },
    /// Whole lines a proc's commands printed, with the run's or the proc's output mode
    /// `stream` (`--output stream`, the proc option `output`); they are in its log too.
    #[non_exhaustive]
    Output {
        /// The proc's name.
        name: String,
        /// The lines, each ending with a newline.
        lines: String,
    },
    /// A line prun would print on stderr while the run goes on: a script error, `debug`.
    #[non_exhaustive]
    Diagnostic {
        /// The line.
        text: String,
    },
    /// A problem that does not stop the run (the task DB is unusable, a cleanup failed).
    #[non_exhaustive]
    Warning {
        /// What is wrong.
        text: String,
    },
}

/// The callback of [`crate::RuntimeBuilder::on_event`].
pub(crate) type EventFn = Arc<dyn Fn(&Event) + Send + Sync>;

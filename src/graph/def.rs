//! Definitions shared by procs and protos, as the script declared them.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use rhai::{Dynamic, EvalAltResult};

pub use crate::diag::Origin;

/// A script closure that the graph or a job calls later, possibly on another thread.
pub trait Callable: Send + Sync {
    /// Calls the closure with a context value and the placeholder values. The closure may
    /// declare fewer parameters (`|ctx|` or `||`); extra values are then not passed.
    fn call(&self, ctx: Dynamic, args: &[String]) -> Result<Dynamic, Box<EvalAltResult>>;
    /// Where the closure was written, for messages (`script.rhai:12:5`).
    fn origin(&self) -> Origin;
    /// A text that changes when what the closure sees changes — its code, the script
    /// functions it calls, its captured values — and only then: part of the fingerprint
    /// of a proc, so that editing a proc re-runs it and a cached result stays valid.
    fn identity(&self) -> String;
}

/// A shared handle to a script closure.
pub type Callback = Arc<dyn Callable>;

/// One entry of `deps`.
#[derive(Clone)]
pub enum DepSpec {
    /// A proc name, or a pattern whose `[placeholders]` are filled from the parent's args.
    Name(String),
    /// A closure returning a name or an array of names.
    Closure(Callback),
}

/// What a proc runs.
#[derive(Clone)]
pub enum Body {
    /// A Rhai closure, run on a worker thread.
    Closure(Callback),
    /// An argv, spawned directly without a shell.
    Cmd(Vec<String>),
    /// A string run with `sh -c`.
    Shell(String),
}

/// Files named by `inputs` or `outputs`.
#[derive(Clone)]
pub enum FileSpec {
    /// A path or a glob (`*`, `?`, `[...]`, `**`); `[placeholders]` are filled first.
    Path(String),
    /// A closure returning a path or an array of paths and globs.
    Closure(Callback),
}

/// One entry of `outputs`.
#[derive(Clone)]
pub struct OutputSpec {
    pub files: FileSpec,
    /// An output older than this is stale.
    pub max_age: Option<Duration>,
    /// Whether a stale output fails the proc after it ran (default true).
    pub enforce_freshness: bool,
}

/// The allowed values of one placeholder.
#[derive(Clone)]
pub enum Choices {
    /// A fixed list.
    List(Vec<String>),
    /// A closure returning an array, called whenever a glob is expanded.
    Closure(Callback),
}

/// Options shared by a proc and by every proc a proto creates.
#[derive(Clone)]
pub struct ProcDef {
    pub deps: Vec<DepSpec>,
    pub no_failures: bool,
    pub rdeps: Vec<String>,
    pub when_scheduled: Vec<String>,
    pub now: bool,
    pub wave: i64,
    pub locks: Vec<String>,
    pub timeout: Option<Duration>,
    pub retries: u32,
    pub retry_delay: Duration,
    pub body: Body,
    pub env: Vec<(String, String)>,
    pub cwd: Option<String>,
    pub help: Option<String>,
    pub arg_choices: Vec<(String, Choices)>,
    /// `arg_choices: |ctx| #{ ... }`: a closure returning the whole map, for the
    /// placeholders that `arg_choices` does not list.
    pub choices_map: Option<Callback>,
    pub inputs: Vec<FileSpec>,
    pub outputs: Vec<OutputSpec>,
    /// Never UP_TO_DATE: side effects (deploys, notifications).
    pub no_skip: bool,
    /// `output`: how this proc's output is shown, instead of the run's mode.
    pub output: Option<OutputMode>,
    /// `interactive`: the proc gets the terminal and runs alone.
    pub interactive: bool,
    /// What one run needs, counted against the local budget (or asked of Slurm).
    pub resources: super::Resources,
    /// The executor its commands run on (`None`: on this machine).
    pub executor: Option<String>,
    /// Where the `proc(...)`/`proto(...)` call is.
    pub origin: Origin,
}

impl ProcDef {
    /// A definition with this body and every option at its default.
    pub fn new(body: Body, origin: Origin) -> ProcDef {
        ProcDef {
            deps: Vec::new(),
            no_failures: false,
            rdeps: Vec::new(),
            when_scheduled: Vec::new(),
            now: false,
            wave: 0,
            locks: Vec::new(),
            timeout: None,
            retries: 0,
            retry_delay: Duration::ZERO,
            body,
            env: Vec::new(),
            cwd: None,
            help: None,
            arg_choices: Vec::new(),
            choices_map: None,
            inputs: Vec::new(),
            outputs: Vec::new(),
            no_skip: false,
            output: None,
            interactive: false,
            resources: super::Resources::default(),
            executor: None,
            origin,
        }
    }
}

/// Where a proc's output goes besides its log (`--output`, the `output` option).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OutputMode {
    /// Only to the log; a failure shows excerpts of it.
    #[default]
    Log,
    /// Every line as it comes, prefixed with the proc's name.
    Stream,
    /// The whole log at once when the proc ends.
    Grouped,
}

impl OutputMode {
    /// The modes' names, as the command line and scripts spell them.
    pub const NAMES: &[&str] = &["log", "stream", "grouped"];

    /// The mode named `name`, if it is one.
    pub fn parse(name: &str) -> Option<OutputMode> {
        match name {
            "log" => Some(OutputMode::Log),
            "stream" => Some(OutputMode::Stream),
            "grouped" => Some(OutputMode::Grouped),
            _ => None,
        }
    }
}

impl fmt::Debug for ProcDef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProcDef")
            .field("origin", &self.origin)
            .finish_non_exhaustive()
    }
}

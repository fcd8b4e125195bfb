//! The [`Host`]: builds the engine, compiles the script, runs its top level, and runs
//! closure bodies for the scheduler.

use std::path::Path;
use std::sync::{Arc, Weak};

use rhai::{AST, Dynamic, Engine, EvalAltResult, Scope};
use tokio_util::sync::CancellationToken;

use super::ScriptError;
use super::api::{self, ApiConfig};
use super::cleanup::Cleanups;
use super::ctx::Ctx;
use super::job::{self, JobCtx};
use super::values::{Aborted, NoFailures, ProcFailure, SkipSignal};
use crate::diag;
use crate::exec::{ClosureRunner, JobSpec, Outcome, Scheduler};
use crate::graph::Body;

/// Settings of the host taken from the command line.
#[derive(Debug, Clone, Default)]
pub struct HostOptions {
    /// `-j`, which wins over `set_options(#{ parallel })`.
    pub cli_parallel: Option<usize>,
    /// The words after `--` on the command line, returned by `args()`.
    pub script_args: Vec<String>,
    /// The values of the script's declared options, read from the command line before
    /// the run (see [`declaration`]); returned by `args(#{...})`.
    pub script_values: Option<rhai::Map>,
    /// How `set_options(#{ task_db })` opens a DB.
    pub db: super::api::DbSettings,
    /// `--full-log-on-failure` was given.
    pub cli_full_log: bool,
    /// `--live` or `--no-live` was given.
    pub cli_live: bool,
    /// Watch mode's settings, shared with the run.
    pub watch: Arc<crate::watch::Session>,
}

/// How the top level of a script ended, when it did not end normally.
#[derive(Debug)]
pub enum TopLevelError {
    /// A `wait` found a failed proc and the script did not catch it.
    ProcFailed(String),
    /// The run was aborted (Ctrl-C, `--fail-fast`) while the script waited.
    Aborted(String),
    /// The script was terminated by an interrupt.
    Interrupted,
    /// Any other error: the script is wrong.
    Script(ScriptError),
}

/// The Rhai engine of a run, with prun's API registered.
pub struct Host {
    engine: Arc<Engine>,
    sched: Arc<Scheduler>,
    cleanups: Cleanups,
}

impl Host {
    /// Builds the engine and installs the host as the scheduler's closure runner.
    pub fn new(sched: Arc<Scheduler>, opts: &HostOptions) -> Host {
        let cleanups = Cleanups::default();
        let engine = Arc::new_cyclic(|weak: &Weak<Engine>| {
            let mut engine = Engine::new();
            // Rhai's string interner rescans its whole cache for every new string once it
            // is full: a script that names 10,000 procs spent a sixth of its time there.
            engine.set_max_strings_interned(0);
            // Rhai's defaults (64 levels, 32 inside functions) reject ordinary pipeline
            // code such as a long argv built inside a function.
            engine.set_max_expr_depths(256, 256);
            // Each level of a script function calling itself takes tens of kilobytes of a
            // worker's stack: a runaway recursion is an error for its proc, not a crash.
            engine.set_max_call_levels(64);
            let cfg = ApiConfig {
                cli_parallel: opts.cli_parallel,
                db: opts.db.clone(),
                cli_full_log: opts.cli_full_log,
                cli_live: opts.cli_live,
                watch: opts.watch.clone(),
            };
            api::register(&mut engine, &sched, weak, &cfg);
            super::commands::register(&mut engine, &sched);
            super::ctx::register(&mut engine, sched.reporter().clone());
            super::helpers::register(&mut engine, &sched);
            cleanups.register(&mut engine, weak);
            super::stdlib::install(&mut engine);
            let words: rhai::Array = opts.script_args.iter().map(|a| a.clone().into()).collect();
            engine.register_fn("args", move || words.clone());
            let values = opts.script_values.clone();
            engine.register_fn("args", move |_decl: rhai::Map| -> Result<rhai::Map, Box<EvalAltResult>> {
                values.clone().ok_or_else(|| {
                    "prun could not read this script's args(#{...}) before running it: call args() first, before other prun functions".into()
                })
            });
            let reporter = sched.reporter().clone();
            engine.on_print(move |s| reporter.message(s));
            let r = sched.reporter().clone();
            engine.on_debug(move |s, src, pos| {
                r.eprint(&format!("{}: {s}", diag::location(src, pos)));
            });
            let s = sched.clone();
            engine.on_progress(move |ops| {
                // Checking every operation would cost a thread-local lookup each. Every
                // 32nd is enough for the stack: each level of nesting is an operation, and
                // 32 levels fit well in the reserve (see `exec::stack_nearly_full`).
                if ops % 32 != 0 {
                    return None;
                }
                if crate::exec::stack_nearly_full() {
                    return Some(Dynamic::from(crate::exec::STACK_FULL));
                }
                // Every 256th still stops a runaway loop within microseconds.
                if ops % 256 != 0 {
                    return None;
                }
                let cancelled =
                    job::cancelled().unwrap_or_else(|| s.script_cancel().is_cancelled());
                cancelled.then(|| Dynamic::from("cancelled"))
            });
            engine
        });
        sched.set_runner(Arc::new(Runner {
            engine: Arc::downgrade(&engine),
        }));
        Host {
            engine,
            sched,
            cleanups,
        }
    }

    /// Runs the script's `defer` cleanups and removes its `tempdir`s, newest first; after
    /// an interrupt they get a fresh cancellation token, so their own commands can run.
    pub fn run_cleanups(&self) {
        self.sched.renew_script_cancel();
        for e in self.cleanups.run() {
            self.sched.reporter().warning(&e);
        }
    }

    /// Reads and compiles a script file; a `#!` first line is ignored.
    pub fn compile_file(&self, path: &Path) -> Result<AST, ScriptError> {
        let display = path.display().to_string();
        let mut src = std::fs::read_to_string(path).map_err(|source| ScriptError::Read {
            path: display.clone(),
            source,
        })?;
        if src.starts_with("#!") {
            let end = src.find('\n').unwrap_or(src.len());
            src.replace_range(..end, "");
        }
        self.compile(&src, &display)
    }

    /// Compiles script text, naming it `source` in messages.
    pub fn compile(&self, src: &str, source: &str) -> Result<AST, ScriptError> {
        let mut ast = self
            .engine
            .compile(src)
            .map_err(|e| ScriptError::Compile(diag::parse_error(source, &e)))?;
        ast.set_source(source);
        Ok(ast)
    }

    /// Runs the top level of a compiled script on this thread.
    pub fn run(&self, ast: &AST) -> Result<(), TopLevelError> {
        super::identity::remember(ast);
        let mut scope = Scope::new();
        scope.push_constant("NO_FAILURES", NoFailures);
        let source = ast.source().unwrap_or("<script>").to_string();
        self.engine
            .run_ast_with_scope(&mut scope, ast)
            .map_err(|e| self.classify(&source, &e))
    }

    fn classify(&self, source: &str, e: &EvalAltResult) -> TopLevelError {
        if self.sched.interrupted() {
            return TopLevelError::Interrupted;
        }
        match e.unwrap_inner() {
            EvalAltResult::ErrorRuntime(v, _) if v.is::<ProcFailure>() => {
                TopLevelError::ProcFailed(v.clone().cast::<ProcFailure>().0)
            }
            EvalAltResult::ErrorRuntime(v, _) if v.is::<Aborted>() => {
                TopLevelError::Aborted(v.clone().cast::<Aborted>().0)
            }
            _ => TopLevelError::Script(ScriptError::Runtime(diag::runtime_error(source, e))),
        }
    }
}

/// Marks the end of the declaration pass of [`declaration`].
const DECLARED: &str = "prun: args declared";

/// The script's `args(#{...})` declaration, read before the real run by evaluating the
/// script up to its `args` call with an engine that has no prun functions: nothing is
/// scheduled and no command runs. `None` when the script declares nothing (or calls other
/// prun functions first).
pub fn declaration(path: &Path) -> Option<Result<super::Declaration, super::DeclError>> {
    let mut src = std::fs::read_to_string(path).ok()?;
    if !src.contains("args(") {
        return None;
    }
    if src.starts_with("#!") {
        let end = src.find('\n').unwrap_or(src.len());
        src.replace_range(..end, "");
    }
    let captured: Arc<std::sync::Mutex<Option<rhai::Map>>> = Arc::default();
    let mut engine = Engine::new();
    engine.set_max_strings_interned(0);
    engine.set_max_expr_depths(256, 256);
    engine.on_print(|_| {});
    engine.on_debug(|_, _, _| {});
    super::stdlib::install(&mut engine);
    engine.register_fn("env", |name: &str| -> Dynamic {
        std::env::var(name).map_or(Dynamic::UNIT, Dynamic::from)
    });
    engine.register_fn("env", |name: &str, default: &str| -> String {
        std::env::var(name).unwrap_or_else(|_| default.to_string())
    });
    let c = captured.clone();
    engine.register_fn(
        "args",
        move |decl: rhai::Map| -> Result<(), Box<EvalAltResult>> {
            *c.lock().expect("declaration") = Some(decl);
            Err(DECLARED.into())
        },
    );
    let mut ast = engine.compile(&src).ok()?;
    ast.set_source(path.display().to_string());
    let _ = engine.run_ast(&ast);
    let decl = captured.lock().expect("declaration").take()?;
    Some(super::Declaration::parse(&decl))
}

/// Runs closure bodies on worker threads.
struct Runner {
    engine: Weak<Engine>,
}

impl ClosureRunner for Runner {
    fn run(&self, job: &JobSpec, cancel: &CancellationToken, log: &Path) -> Outcome {
        let Body::Closure(cb) = &job.def.body else {
            return Outcome::Failed {
                error: "not a closure body".into(),
                exit_code: None,
            };
        };
        if self.engine.upgrade().is_none() {
            return Outcome::Failed {
                error: "the script engine is gone".into(),
                exit_code: None,
            };
        }
        let ctx = Ctx::new(job, log.to_path_buf());
        let values: Vec<String> = job.args.iter().map(|(_, v)| v.clone()).collect();
        let jctx = JobCtx {
            id: job.id,
            name: job.name.clone(),
            def: job.def.clone(),
            cancel: cancel.clone(),
            log: log.to_path_buf(),
        };
        let result = job::with_job(jctx, || cb.call(Dynamic::from(ctx), &values));
        match result {
            Ok(v) => Outcome::Success(v),
            Err(e) => outcome_of_error(&job.def.origin, &e, cancel),
        }
    }
}

fn outcome_of_error(
    origin: &crate::diag::Origin,
    e: &EvalAltResult,
    cancel: &CancellationToken,
) -> Outcome {
    let failed = |error: String| Outcome::Failed {
        error,
        exit_code: None,
    };
    match e.unwrap_inner() {
        EvalAltResult::ErrorRuntime(v, _) if v.is::<SkipSignal>() => {
            let s = v.clone().cast::<SkipSignal>();
            let why = match (s.no_change, s.why.is_empty()) {
                (true, true) => "no change".to_string(),
                (true, false) => format!("no change: {}", s.why),
                (false, _) => s.why,
            };
            Outcome::Skipped { why }
        }
        EvalAltResult::ErrorTerminated(..) if cancel.is_cancelled() => {
            failed("terminated because the run was aborted".into())
        }
        EvalAltResult::ErrorRuntime(v, _) if v.is::<ProcFailure>() => {
            failed(v.clone().cast::<ProcFailure>().0)
        }
        EvalAltResult::ErrorRuntime(v, _) if v.is::<Aborted>() => {
            failed(v.clone().cast::<Aborted>().0)
        }
        _ => failed(diag::runtime_error(origin.file(), e)),
    }
}

impl std::fmt::Debug for Host {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Host").finish_non_exhaustive()
    }
}

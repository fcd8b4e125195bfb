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
use crate::exec::{ClosureRunner, Core, CoreOptions, JobSpec, Outcome, Scheduler};
use crate::graph::Body;

/// Settings of the host taken from the command line.
#[derive(Debug, Clone, Default)]
pub(crate) struct HostOptions {
    /// `-j`, which wins over `set_options(#{ parallel })`.
    pub cli_parallel: Option<usize>,
    /// The words after `--` on the command line, returned by `args()`.
    pub script_args: Vec<String>,
    /// The values of the script's declared options, read from the command line before
    /// the run (see [`declaration_in`]); returned by `args(#{...})`.
    pub script_values: Option<rhai::Map>,
    /// How `set_options(#{ task_db })` opens a DB.
    pub db: super::api::DbSettings,
    /// `--full-log-on-failure` was given.
    pub cli_full_log: bool,
    /// `--live` or `--no-live` was given.
    pub cli_live: bool,
    /// `--output` was given.
    pub cli_output: bool,
    /// The runtime has a log directory, which the script's `log_dir` does not change.
    pub fixed_log_dir: bool,
    /// With a runtime's log directory, shared by the runs of every script: where
    /// `set_options(#{ keep_runs })` goes, which then prunes the script's history only.
    pub history_keep: Option<Arc<std::sync::atomic::AtomicU64>>,
    /// `prun check`: commands (`shell`, `exec`, `pipe`), file writes and sleeps do
    /// nothing (see [`stand_ins`]), and unknown option keys are recorded as findings
    /// instead of stopping the script.
    pub check: bool,
    /// What the embedder adds to the engine, applied last (see [`EngineSetup`]).
    pub setup: Option<EngineSetup>,
    /// Watch mode's settings, shared with the run.
    pub watch: Arc<crate::watch::Session>,
}

/// A function the engine has: its name (`get$name` for a property), its parameters
/// (`name: type`, `_` when unnamed) and its return type, as Rhai's metadata gives them.
#[derive(Debug, Clone)]
pub(crate) struct Function {
    pub name: String,
    pub params: Vec<String>,
    pub returns: String,
    /// How many parameters it takes (`params` may describe fewer).
    pub arity: usize,
}

/// The names of prun's script API functions, known without building an engine (the unit
/// test `the_list_of_api_functions_is_the_engines` checks it against a built one). The
/// engine looks its own functions up before the embedder's, so a native function of one of
/// these names would never be called for the parameter types prun's takes: the runtime
/// builder refuses such names. Rhai's `to_string` and `to_debug`, which prun defines for
/// its own types as an embedder does for its own, are not API functions.
pub(crate) const API_FUNCTIONS: &[&str] = &[
    "append_file",
    "args",
    "create",
    "defer",
    "duration_secs",
    "env",
    "exec",
    "exit",
    "file_info",
    "glob",
    "log",
    "log_error",
    "log_info",
    "log_warn",
    "no_change",
    "now",
    "now_ms",
    "parse_json",
    "pipe",
    "proc",
    "progress",
    "proto",
    "quote",
    "read_file",
    "require",
    "results",
    "retry_loop",
    "run",
    "set_options",
    "set_params",
    "shell",
    "skip",
    "sleep",
    "sort",
    "sort_by",
    "start",
    "state",
    "tempdir",
    "to_json",
    "wait",
    "watch",
    "when_scheduled",
    "which",
    "write_file",
];

/// Changes the embedder makes to a run's engine once prun's API is registered: its
/// native functions and modules, its limits, and the policy's `env()`.
#[derive(Clone)]
pub(crate) struct EngineSetup(pub Arc<dyn Fn(&mut Engine) + Send + Sync>);

impl std::fmt::Debug for EngineSetup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("EngineSetup")
    }
}

/// How the top level of a script ended, when it did not end normally.
#[derive(Debug)]
pub(crate) enum TopLevelError {
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
pub(crate) struct Host {
    engine: Arc<Engine>,
    sched: Arc<Scheduler>,
    cleanups: Cleanups,
    /// What `prun check` found while the script ran (see [`HostOptions::check`]).
    findings: super::api::Findings,
    /// In `prun check`, the last command the script called (see [`stand_ins`]).
    last_command: LastCommand,
    /// `prun check` (see [`HostOptions::check`]).
    check: bool,
    /// The script's `args(#{...})` declares positional arguments: the words after its
    /// path are its own, not targets.
    positional: Arc<std::sync::atomic::AtomicBool>,
}

/// Where the script last called a command that `prun check` did not run, and which one.
type LastCommand = Arc<std::sync::Mutex<Option<(diag::Origin, &'static str)>>>;

impl Host {
    /// Builds the engine and installs the host as the scheduler's closure runner.
    pub(crate) fn new(sched: Arc<Scheduler>, opts: &HostOptions) -> Host {
        Host::with_engine(Engine::new(), sched, opts)
    }

    /// [`Host::new`] on an engine made by `Engine::new()` beforehand (building Rhai's
    /// standard packages is most of the work; it can be done on another thread).
    pub(crate) fn with_engine(base: Engine, sched: Arc<Scheduler>, opts: &HostOptions) -> Host {
        let cleanups = Cleanups::default();
        let findings = super::api::Findings::default();
        let last_command = LastCommand::default();
        let positional = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let engine = Arc::new_cyclic(|weak: &Weak<Engine>| {
            let mut engine = base;
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
                cli_output: opts.cli_output,
                fixed_log_dir: opts.fixed_log_dir,
                history_keep: opts.history_keep.clone(),
                findings: opts.check.then(|| findings.clone()),
                watch: opts.watch.clone(),
            };
            api::register(&mut engine, &sched, weak, &cfg);
            super::commands::register(&mut engine, &sched);
            super::ctx::register(&mut engine, sched.reporter().clone());
            super::helpers::register(&mut engine, &sched);
            cleanups.register(&mut engine, weak);
            super::stdlib::install(&mut engine);
            if opts.check {
                stand_ins(&mut engine, &findings, &last_command);
            }
            let words: rhai::Array = opts.script_args.iter().map(|a| a.clone().into()).collect();
            engine.register_fn("args", move || words.clone());
            let values = opts.script_values.clone();
            // The command line was read against the first declaration only: a second one
            // would get its values, whatever it declares.
            let declared = std::sync::atomic::AtomicBool::new(false);
            let takes_words = positional.clone();
            engine.register_fn("args", move |decl: rhai::Map| -> Result<rhai::Map, Box<EvalAltResult>> {
                if declared.swap(true, std::sync::atomic::Ordering::Relaxed) {
                    return Err("args(#{...}) declares the script's options once; this is a second declaration".into());
                }
                let is_positional = |spec: &Dynamic| {
                    spec.read_lock::<rhai::Map>()
                        .and_then(|m| m.get("positional")?.as_bool().ok())
                        .unwrap_or(false)
                };
                takes_words.store(decl.values().any(is_positional), std::sync::atomic::Ordering::Relaxed);
                values.clone().ok_or_else(|| {
                    "prun could not read this script's args(#{...}) before running it: call args() first, before other prun functions".into()
                })
            });
            // Rhai's `exit(v)` ends a script "successfully" whatever `v` is: `exit(1)`
            // after a failed check made prun exit 0. At the top level `exit()` and
            // `exit(0)` still end the script; another value is an error; inside a proc,
            // where it would end nothing but the closure, it is an error too.
            engine.register_fn("exit", || exit_with(Dynamic::UNIT));
            engine.register_fn("exit", exit_with);
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
                let cancelled = job::cancel_token(&s).is_cancelled();
                cancelled.then(|| Dynamic::from("cancelled"))
            });
            if let Some(setup) = &opts.setup {
                (setup.0)(&mut engine);
            }
            engine
        });
        diag::know_engine(&Arc::downgrade(&engine));
        opts.watch
            .read_at_start(super::identity::read_at_start(&engine));
        sched.set_runner(Arc::new(Runner {
            engine: Arc::downgrade(&engine),
            sched: Arc::downgrade(&sched),
        }));
        Host {
            engine,
            sched,
            cleanups,
            findings,
            last_command,
            check: opts.check,
            positional,
        }
    }

    /// Whether the script's `args(#{...})` declared positional arguments (the words after
    /// its path are then its own, and no target can be named).
    pub(crate) fn takes_positional_words(&self) -> bool {
        self.positional.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Ends the host and returns its engine, for the caller to free where it costs the
    /// run nothing (an engine holds thousands of functions).
    pub(crate) fn into_engine(self) -> Arc<Engine> {
        self.engine.clone()
    }

    /// Runs the script's `defer` cleanups and removes its `tempdir`s, newest first; after
    /// an interrupt they get a fresh cancellation token, so their own commands can run.
    ///
    /// A panic in one (in a native function of an embedder, say) ends the run as an
    /// internal error, as a panic anywhere else does; the cleanups after it still run.
    pub(crate) fn run_cleanups(&self) {
        self.sched.renew_script_cancel();
        loop {
            match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.cleanups.run())) {
                Ok(errors) => {
                    for e in errors {
                        self.sched.reporter().warning(&e);
                    }
                    return;
                }
                Err(payload) => self
                    .sched
                    .internal_error(crate::exec::panic_message(&*payload)),
            }
        }
    }

    /// The problems `prun check` found while the script ran: option keys that `proc`,
    /// `proto` and `set_options` do not take, where each call is.
    pub(crate) fn findings(&self) -> Vec<(crate::diag::Origin, String)> {
        self.findings.take()
    }

    /// In `prun check`, the last command (`shell`, `exec`, `pipe`) the script called, which
    /// returned an empty output instead of running: where, and which.
    pub(crate) fn last_command(&self) -> Option<(crate::diag::Origin, &'static str)> {
        self.last_command
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// prun's own functions as a new engine has them (see [`Host::functions`]), from a
    /// host made for that alone, on a scheduler that runs nothing.
    pub(crate) fn api_functions() -> std::io::Result<Vec<Function>> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let sched = Scheduler::new(
            Core::new(CoreOptions {
                parallel: 1,
                allow_missing_deps: true,
                fail_fast: false,
            }),
            rt.handle().clone(),
            Arc::new(crate::ui::Silent),
            crate::paths::temp_dir(),
            std::time::Duration::ZERO,
        );
        let functions = Host::new(sched.clone(), &HostOptions::default()).functions();
        sched.shutdown();
        Ok(functions)
    }

    /// prun's own functions (not Rhai's standard ones), as the engine describes them.
    pub(crate) fn functions(&self) -> Vec<Function> {
        self.engine.collect_fn_metadata(
            None,
            |f| {
                Some(Function {
                    name: f.metadata.name.to_string(),
                    params: f
                        .metadata
                        .params_info
                        .iter()
                        .map(|p| p.to_string())
                        .collect(),
                    returns: f.metadata.return_type.to_string(),
                    arity: f.metadata.num_params,
                })
            },
            false,
        )
    }

    /// Reads and compiles a script file; a `#!` first line is ignored.
    pub(crate) fn compile_file(&self, path: &Path) -> Result<AST, ScriptError> {
        let src = script_text(path)?;
        self.compile_text(&src, &path.display().to_string())
    }

    /// Compiles script text, naming it `source` in messages. What a closure is (for the
    /// cache) is read from this text, not from a file of that name.
    pub(crate) fn compile_text(&self, src: &str, source: &str) -> Result<AST, ScriptError> {
        super::identity::set_source(&self.engine, source, src);
        self.compile(src, source)
    }

    /// Compiles script text, naming it `source` in messages.
    pub(crate) fn compile(&self, src: &str, source: &str) -> Result<AST, ScriptError> {
        compile_with(&self.engine, src, source)
    }

    /// Runs the top level of a compiled script on this thread.
    pub(crate) fn run(&self, ast: &AST) -> Result<(), TopLevelError> {
        super::identity::remember(&self.engine, ast);
        diag::know_script_functions(ast.iter_functions().map(|f| f.name));
        diag::know_imports(ast);
        diag::know_definitions(ast);
        if self.check {
            self.findings.know_caught(ast);
        }
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

/// The text of the script or module file at `path`, which must be a regular file: prun
/// reads a script more than once (its options before the run, its text for the run and
/// for the cache), so a pipe (`prun <(gen)`) would be empty the second time and the run
/// would silently do nothing; a FIFO without a writer would block (where no signal can
/// end the wait), and a device such as `/dev/zero` never ends. Under root it must be a
/// file only root can change ([`crate::paths::code_to_run`]).
pub(crate) fn read_script(path: &Path) -> std::io::Result<String> {
    use std::os::unix::fs::FileTypeExt;
    let kind = std::fs::metadata(path)?.file_type();
    let not = if kind.is_fifo() {
        "a pipe or FIFO"
    } else if kind.is_char_device() || kind.is_block_device() {
        "a device"
    } else if kind.is_socket() {
        "a socket"
    } else {
        return utf8_text(std::fs::read(crate::paths::code_to_run(path)?)?);
    };
    Err(std::io::Error::other(format!(
        "it is {not}, not a regular file: prun reads scripts and modules from files \
         (a script more than once); save it to one first"
    )))
}

/// A script's bytes as text: UTF-8, else an error saying where the first other byte is
/// ([`NotUtf8`]), or that the file is UTF-16 (as Windows' editors save "Unicode").
fn utf8_text(bytes: Vec<u8>) -> std::io::Result<String> {
    let invalid = |e: Box<dyn std::error::Error + Send + Sync>| {
        std::io::Error::new(std::io::ErrorKind::InvalidData, e)
    };
    if bytes.starts_with(&[0xff, 0xfe]) || bytes.starts_with(&[0xfe, 0xff]) {
        return Err(invalid(Box::from(
            "it is UTF-16 text; prun reads scripts as UTF-8: save it as UTF-8 \
             (iconv -f UTF-16 -t UTF-8)",
        )));
    }
    String::from_utf8(bytes).map_err(|e| {
        let bytes = e.as_bytes();
        let at = e.utf8_error().valid_up_to();
        let good = std::str::from_utf8(&bytes[..at]).unwrap_or_default();
        let line_start = good.rfind('\n').map_or(0, |i| i + 1);
        invalid(Box::new(NotUtf8 {
            line: good.matches('\n').count() + 1,
            column: good[line_start..].chars().count() + 1,
            byte: bytes[at],
        }))
    })
}

/// Where a script's first byte that is not UTF-8 is (1-based line and column).
#[derive(Debug)]
struct NotUtf8 {
    line: usize,
    column: usize,
    byte: u8,
}

impl NotUtf8 {
    /// What is wrong and what to do, without the place.
    fn message(&self) -> String {
        format!(
            "byte {:#04x} is not UTF-8: prun reads scripts as UTF-8 text; convert the file \
             (from Latin-1: iconv -f LATIN1 -t UTF-8)",
            self.byte
        )
    }
}

impl std::fmt::Display for NotUtf8 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "line {}, column {}: {}",
            self.line,
            self.column,
            self.message()
        )
    }
}

impl std::error::Error for NotUtf8 {}

/// `prun check` evaluates a script without running anything: these replace the functions
/// that act on the world. A command returns the result of a command that succeeded and
/// printed nothing (`#{ code: 0, ok: true, stdout: "", stderr: "", duration: 0.0 }`)
/// after its options' keys were checked (a wrong one is a finding),
/// `write_file` and `append_file` write nothing, `sleep` returns at once. Reading
/// (`read_file`, `glob`, `which`, `env`) works as in a run. Each command's call is kept in
/// `last`: an error after it may come from its empty output.
fn stand_ins(engine: &mut Engine, findings: &super::api::Findings, last: &LastCommand) {
    fn succeeded() -> rhai::Map {
        let mut m = rhai::Map::new();
        m.insert("code".into(), Dynamic::from(0_i64));
        m.insert("ok".into(), true.into());
        m.insert("stdout".into(), "".into());
        m.insert("stderr".into(), "".into());
        m.insert("duration".into(), Dynamic::from(0.0_f64));
        m
    }
    // The options' keys are checked as a command would check them, and recorded.
    let checked = |name: &'static str| {
        let findings = findings.clone();
        let last = last.clone();
        move |ctx: rhai::NativeCallContext,
              opts: &rhai::Map|
              -> Result<rhai::Map, Box<EvalAltResult>> {
            for key in opts.keys() {
                if let Some(m) = super::commands::unknown_option(key) {
                    findings.record(&ctx, format!("{name}: {m}"))?;
                }
            }
            let origin = diag::Origin::new(ctx.call_source(), ctx.call_position());
            *last.lock().unwrap_or_else(|e| e.into_inner()) = Some((origin, name));
            Ok(succeeded())
        }
    };
    let (shell, exec, pipe) = (checked("shell"), checked("exec"), checked("pipe"));
    let (shell1, exec1, pipe1) = (shell.clone(), exec.clone(), pipe.clone());
    let none = rhai::Map::new;
    engine
        .register_fn("shell", move |ctx: rhai::NativeCallContext, _: &str| {
            shell1(ctx, &none())
        })
        .register_fn(
            "shell",
            move |ctx: rhai::NativeCallContext, _: &str, o: rhai::Map| shell(ctx, &o),
        )
        .register_fn(
            "exec",
            move |ctx: rhai::NativeCallContext, _: rhai::Array| exec1(ctx, &none()),
        )
        .register_fn(
            "exec",
            move |ctx: rhai::NativeCallContext, _: rhai::Array, o: rhai::Map| exec(ctx, &o),
        )
        .register_fn(
            "pipe",
            move |ctx: rhai::NativeCallContext, _: rhai::Array| pipe1(ctx, &none()),
        )
        .register_fn(
            "pipe",
            move |ctx: rhai::NativeCallContext, _: rhai::Array, o: rhai::Map| pipe(ctx, &o),
        )
        .register_fn("write_file", |_: &str, _: &str| {})
        .register_fn("append_file", |_: &str, _: &str| {})
        .register_fn("sleep", |_: i64| {})
        .register_fn("sleep", |_: f64| {})
        .register_fn("sleep", |_: Dynamic| {});
}

/// A script file's text as it is compiled: without a byte order mark, and with a `#!`
/// first line left empty (so that lines keep their numbers).
fn script_text(path: &Path) -> Result<String, ScriptError> {
    let mut src = read_script(path).map_err(|source| {
        if let Some(at) = source.get_ref().and_then(|e| e.downcast_ref::<NotUtf8>()) {
            return ScriptError::Runtime(format!(
                "{}:{}:{}: {}",
                crate::shown::one_line(&path.to_string_lossy()),
                at.line,
                at.column,
                at.message()
            ));
        }
        ScriptError::Read {
            path: crate::paths::shown(path).to_string(),
            hint: match source.kind() {
                std::io::ErrorKind::NotFound if path == Path::new("-") => {
                    "; prun reads a script from a file, not from stdin (a script more than \
                     once): save it to one first"
                        .to_string()
                }
                std::io::ErrorKind::NotFound => crate::paths::dangling_link(path)
                    .unwrap_or_else(|| crate::suggest::script_hint(path)),
                std::io::ErrorKind::PermissionDenied => std::fs::metadata(path)
                    .map(|m| format!(" (it is {})", crate::paths::describe(&m)))
                    .ok()
                    .or_else(|| crate::paths::unsearchable(path).map(|why| format!(" ({why})")))
                    .unwrap_or_default(),
                _ => String::new(),
            },
            source,
        }
    })?;
    // A byte order mark (as some Windows editors write) is not Rhai: an invisible
    // "Unexpected" character at 1:1 otherwise.
    if src.starts_with('\u{feff}') {
        src.drain(..'\u{feff}'.len_utf8());
    }
    if src.starts_with("#!") {
        let end = src.find('\n').unwrap_or(src.len());
        src.replace_range(..end, "");
    }
    Ok(src)
}

/// Compiles script text with `engine`, naming it `source` in messages.
fn compile_with(engine: &Engine, src: &str, source: &str) -> Result<AST, ScriptError> {
    let mut ast = engine.compile(src).map_err(|e| ScriptError::Syntax {
        origin: diag::Origin::new(Some(source), diag::syntax_error_at(engine, src, &e.0, e.1)),
        message: diag::syntax_message(src, &e.0, e.1),
    })?;
    ast.set_source(source);
    Ok(ast)
}

/// The syntax error of the script file at `path`, found without a host: the parser of
/// an engine without prun's functions is the run's (prun adds no syntax), with the run's
/// nesting limits. `None` when the script compiles or cannot be read.
pub(crate) fn syntax_error(path: &Path) -> Option<ScriptError> {
    let src = script_text(path).ok()?;
    let mut engine = Engine::new_raw();
    engine.set_max_expr_depths(256, 256);
    compile_with(&engine, &src, &path.display().to_string()).err()
}

/// Marks the end of the declaration pass of [`declaration_in`].
const DECLARED: &str = "prun: args declared";

/// The script's `args(#{...})` declaration, read before the real run by evaluating the
/// script up to its `args` call with an engine that has no prun functions: nothing is
/// scheduled and no command runs. `None` when the script declares nothing (or calls other
/// prun functions first). `source` names the script in messages; `env()`, and an option's
/// `env` setting, see only the variables `visible` accepts (the policy's). `bound` sets
/// the engine's limits and what stops it, as the run's are (the pass runs the script's
/// own code, which may loop for ever); a pass it stops, or that breaks one of its limits,
/// is [`super::DeclError::Stopped`].
pub(crate) fn declaration_in(
    mut src: String,
    source: &str,
    visible: Arc<dyn Fn(&str) -> bool + Send + Sync>,
    bound: &dyn Fn(&mut Engine),
) -> Option<Result<super::Declaration, super::DeclError>> {
    if !src.contains("args(") {
        return None;
    }
    if src.starts_with("#!") {
        let end = src.find('\n').unwrap_or(src.len());
        src.replace_range(..end, "");
    }
    let captured: Arc<std::sync::Mutex<Option<(rhai::Map, rhai::Position)>>> = Arc::default();
    let mut engine = Engine::new();
    engine.set_max_strings_interned(0);
    engine.set_max_expr_depths(256, 256);
    engine.on_print(|_| {});
    engine.on_debug(|_, _, _| {});
    super::stdlib::install(&mut engine);
    bound(&mut engine);
    let v = visible.clone();
    let var = move |name: &str| std::env::var(name).ok().filter(|_| v(name));
    let v = var.clone();
    engine.register_fn("env", move |name: &str| -> Dynamic {
        v(name).map_or(Dynamic::UNIT, Dynamic::from)
    });
    engine.register_fn("env", move |name: &str, default: &str| -> String {
        var(name).unwrap_or_else(|| default.to_string())
    });
    let c = captured.clone();
    engine.register_fn(
        "args",
        move |ctx: rhai::NativeCallContext, decl: rhai::Map| -> Result<(), Box<EvalAltResult>> {
            *c.lock().expect("declaration") = Some((decl, ctx.call_position()));
            Err(DECLARED.into())
        },
    );
    let mut ast = engine.compile(&src).ok()?;
    ast.set_source(source);
    if let Err(e) = engine.run_ast(&ast)
        && matches!(
            *e,
            EvalAltResult::ErrorTerminated(..)
                | EvalAltResult::ErrorTooManyOperations(..)
                | EvalAltResult::ErrorDataTooLarge(..)
        )
    {
        return Some(Err(super::DeclError::Stopped(e.to_string())));
    }
    let (decl, at) = captured.lock().expect("declaration").take()?;
    Some(
        super::Declaration::parse(&decl)
            .map(|d| d.hiding_env(&*visible))
            .map_err(|e| super::DeclError::At {
                line: at.line().unwrap_or(0),
                column: at.position().unwrap_or(0),
                error: Box::new(e),
            }),
    )
}

/// An embedder's native function that is not pure was called (see
/// `RuntimeBuilder::register_fn`): what it gave is in no fingerprint, so the body that
/// called it, if one did, saves no result.
pub(crate) fn impure_native_called() {
    super::job::unrepeatable();
}

/// Runs closure bodies on worker threads.
struct Runner {
    engine: Weak<Engine>,
    /// Told when a body's result must not be cached (see [`job::unrepeatable`]).
    sched: Weak<Scheduler>,
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
        let (result, unrepeatable) = job::with_job(jctx, || cb.call(Dynamic::from(ctx), &values));
        if unrepeatable && let Some(sched) = self.sched.upgrade() {
            sched.with(|c| c.unrepeatable(job.id));
        }
        match result {
            Ok(v) => Outcome::Success(v),
            Err(e) => outcome_of_error(&cb.origin(), &e, cancel),
        }
    }
}

/// `exit(value)` (see where it is registered).
fn exit_with(value: Dynamic) -> Result<(), Box<EvalAltResult>> {
    if let Some(kind) = crate::exec::evaluating() {
        // Not Rhai's `Exit` either: read as a closure's failure it said "NOT AN ERROR".
        return Err(format!(
            "{kind} cannot call exit({value}): it must only compute its value; use throw to stop with an error"
        )
        .into());
    }
    if super::job::current().is_some() {
        return Err(format!(
            "exit({value}) inside a proc: a proc ends by returning its result, or fails with throw"
        )
        .into());
    }
    let success = value.is_unit() || value.as_int().is_ok_and(|n| n == 0);
    if success {
        return Err(EvalAltResult::Exit(value, rhai::Position::NONE).into());
    }
    Err(format!(
        "the script called exit({value}): prun's exit status says how the run went; use throw to stop with an error"
    )
    .into())
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
            Outcome::Skipped {
                why,
                no_change: s.no_change,
            }
        }
        EvalAltResult::ErrorTerminated(..) if cancel.is_cancelled() => {
            failed("terminated because the run was aborted".into())
        }
        EvalAltResult::ErrorRuntime(v, _) if v.is::<Aborted>() => {
            failed(v.clone().cast::<Aborted>().0)
        }
        // A failing `ctx.wait` among them: the message starts at the line of the wait
        // and goes on with the failure of the proc it waited for.
        _ => failed(diag::closure_error(origin, e)),
    }
}

impl Drop for Host {
    fn drop(&mut self) {
        super::identity::forget(&self.engine);
        super::callback::forget(&self.engine);
    }
}

impl std::fmt::Debug for Host {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Host").finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::{API_FUNCTIONS, Host};

    /// The functions Rhai calls to show a value, which prun defines for its own types; an
    /// embedder defines them for its types too, so they are not in [`API_FUNCTIONS`].
    const VALUE_CONVERSIONS: &[&str] = &["to_string", "to_debug"];

    /// The names of the functions a built engine has beyond Rhai's standard packages,
    /// but for property accessors (`get$name`) and [`VALUE_CONVERSIONS`].
    fn built_engine_names() -> BTreeSet<String> {
        Host::api_functions()
            .expect("a runtime")
            .into_iter()
            .map(|f| f.name)
            .filter(|n| !n.contains('$') && !VALUE_CONVERSIONS.contains(&n.as_str()))
            .collect()
    }

    #[test]
    fn the_list_of_api_functions_is_the_engines() {
        let listed: BTreeSet<String> = API_FUNCTIONS.iter().map(|n| n.to_string()).collect();
        assert_eq!(listed, built_engine_names());
    }
}

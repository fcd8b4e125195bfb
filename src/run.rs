//! One run of a script: compile, run the top level, run the targets, wait, report, and
//! choose the exit status.
//!
//! [`execute`] is the whole run, for the library ([`crate::Runtime`]) and the command line
//! ([`crate::cli::main`]) alike: [`Settings`] are the runtime's (or the flags'), a [`Call`]
//! is what one run is asked to do. It runs on a thread of its own (see [`on_own_thread`]),
//! so that the caller's thread (perhaps a tokio runtime's) is never the script's.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant, SystemTime};

use crate::error::Failure;
use crate::event::EventFn;
use crate::exec::launch::Local;
use crate::exec::policy::Policy;
use crate::exec::{
    AbortReason, Cache, CacheOpener, CacheTaker, Core, CoreOptions, KILL_GRACE, Scheduler, State,
};
use crate::exit::Exit;
use crate::inspect::Inspect;
use crate::redact::Secrets;
use crate::report::{Outcome, Report, RunInfo};
use crate::script::{DbSettings, EngineSetup, Host, HostOptions};
use crate::store::Store;
use crate::ui::{LiveReporter, PlainReporter, Reporter, Silent, Summary, Tee};

/// The stack of a run's own thread, where the script's top level runs. Untouched pages
/// cost no memory, only address space.
const RUN_STACK: usize = 64 * 1024 * 1024;

/// The most procs a run of the binary may schedule for it to leave its engine to the
/// process's exit instead of freeing it (see [`execute`]). A larger run frees it as
/// before: the task DB's last commit, which writes many rows then, reuses that memory
/// instead of adding to the run's peak.
const SMALL_RUN: usize = 100;

/// Where a run's task DB is.
///
/// ```
/// let dir = tempfile::tempdir().unwrap();
/// let db = dir.path().join("tasks.db");
/// # let state = tempfile::tempdir().unwrap();
/// let rt = prun::Runtime::builder()
///     .task_db(db.as_path()) // a path is TaskDb::Path
///     .log_dir(dir.path().join("logs"))
/// #   .state_dir(state.path())
///     .build()?;
/// rt.run_str(r#"proc("a", #{ cmd: ["true"], now: true });"#, [""; 0])?;
/// assert!(db.exists());
/// assert_eq!(prun::TaskDb::default(), prun::TaskDb::Default);
/// # Ok::<(), prun::Error>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum TaskDb {
    /// No task DB: no cache, no history.
    Off,
    /// This file.
    Path(PathBuf),
    /// The script's own, under the user's state directory
    /// (`~/.local/state/prun/<script>-<hash>/tasks.db`).
    #[default]
    Default,
}

impl From<PathBuf> for TaskDb {
    fn from(p: PathBuf) -> TaskDb {
        TaskDb::Path(p)
    }
}

impl From<&Path> for TaskDb {
    fn from(p: &Path) -> TaskDb {
        TaskDb::Path(p.to_path_buf())
    }
}

impl From<&str> for TaskDb {
    fn from(p: &str) -> TaskDb {
        TaskDb::Path(p.into())
    }
}

/// What a run prints while it goes on.
///
/// ```
/// # let state = tempfile::tempdir().unwrap();
/// let rt = prun::Runtime::builder()
///     .task_db(prun::TaskDb::Off)
///     .output(prun::Output::Plain) // a line per finished proc, then a summary
/// #   .state_dir(state.path())
///     .build()?;
/// rt.run_str(r#"proc("a", #{ cmd: ["true"], now: true });"#, [""; 0])?;
/// assert_eq!(prun::Output::default(), prun::Output::Silent);
/// # Ok::<(), prun::Error>(())
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Output {
    /// Nothing: the embedder learns what happens through events and the report.
    #[default]
    Silent,
    /// `prun`'s plain lines (a line per finished proc, a summary) on stdout and stderr.
    Plain,
    /// `prun`'s live display on the terminal.
    Live,
}

/// How runs are made: the runtime's settings (see [`crate::RuntimeBuilder`]).
#[derive(Clone, Default)]
pub(crate) struct Settings {
    pub parallel: Option<usize>,
    pub task_db: TaskDb,
    pub log_dir: Option<PathBuf>,
    /// Where the scripts' state directories are made, when not prun's per-user one.
    pub state_root: Option<PathBuf>,
    pub output: Output,
    pub verbose: bool,
    pub quiet: bool,
    pub full_log_on_failure: bool,
    pub fail_fast: bool,
    pub full: bool,
    pub dry_run: bool,
    /// `--live` or `--no-live` was given.
    pub cli_live: bool,
    pub policy: Arc<Policy>,
    pub setup: Option<EngineSetup>,
    pub on_event: Option<EventFn>,
    /// Ctrl-C, SIGTERM, SIGHUP and SIGQUIT interrupt the run (the binary's choice).
    pub signals: bool,
    /// Interactive procs get the program's terminal (the binary's choice).
    pub terminal: bool,
    /// `--watch`: after the run, watch the inputs and re-run what changes.
    pub watch: bool,
    /// Where procs' output goes (`--output`), when not as the script says.
    pub proc_output: Option<crate::graph::OutputMode>,
}

/// The script of a run: a file, or text.
#[derive(Debug, Clone)]
pub(crate) enum Script {
    File(PathBuf),
    Text { name: PathBuf, text: String },
}

impl Script {
    /// The path the run is known by (state directory, messages, report).
    pub(crate) fn path(&self) -> &Path {
        match self {
            Script::File(p) => p,
            Script::Text { name, .. } => name,
        }
    }

    /// The script's text, for reading its `args(#{...})` declaration.
    fn text(&self) -> Option<String> {
        match self {
            Script::File(p) => crate::script::read_script(p).ok(),
            Script::Text { text, .. } => Some(text.clone()),
        }
    }
}

/// What the command line adds to a run.
#[derive(Debug, Clone, Default)]
pub(crate) struct CliExtras {
    /// `--lock` (`Some(true)`: `--lock=wait`).
    pub lock: Option<bool>,
    /// `prun list` / `prun graph`.
    pub inspect: Option<Inspect>,
    /// Only the exit status is read (no `--json`): the report lists no procs, and a run
    /// of many procs does not hold a report entry for each besides their run state.
    pub exit_only: bool,
    /// The process exits right after the run (the `prun` binary): the run's graph and
    /// run states are left to the exit instead of being freed one by one (see
    /// `Core::leave_to_exit`). An embedder runs many times in one
    /// process, so the library frees everything.
    pub exit_after: bool,
    /// `--json PATH`: rewritten by every run, so never part of a directory input.
    pub report: Option<std::path::PathBuf>,
}

/// What one run is asked to do.
pub(crate) struct Call {
    pub script: Script,
    pub targets: Vec<String>,
    /// The words after `--`, for `args()`.
    pub script_args: Vec<String>,
    /// The values of the script's declared options, for `args(#{...})`.
    pub script_values: Option<rhai::Map>,
    /// The script's own words as given (its options with their values, and the words after
    /// `--`): the run's arguments in the task DB's history and in its report.
    pub history_args: Vec<String>,
    pub cancel: Option<crate::Cancel>,
    /// When the run was asked for: `max_run_time` counts from here (the declaration pass
    /// of [`split_words`] included).
    pub started: Instant,
    pub cli: CliExtras,
    /// The run's secret values, hidden while it lasts.
    pub secrets: Secrets,
}

/// The Rhai engine of a run, with Rhai's standard packages and nothing of prun's yet:
/// built by the thread that waits for the run (see [`on_own_thread`]) while the run's
/// thread prepares the state directory, the runtime and the scheduler. That thread frees
/// it too, while the run ends.
pub(crate) struct BaseEngine {
    built: std::sync::mpsc::Receiver<rhai::Engine>,
    spent: std::sync::mpsc::SyncSender<Arc<rhai::Engine>>,
}

impl BaseEngine {
    /// The engine, once built (built here if the thread that was building it is gone).
    fn take(&self) -> rhai::Engine {
        self.built.recv().unwrap_or_else(|_| rhai::Engine::new())
    }

    /// Hands the run's engine back to the waiting thread, which frees it.
    fn retire(&self, engine: Arc<rhai::Engine>) {
        // Freed here if that thread is gone.
        let _ = self.spent.send(engine);
    }
}

/// Runs `f` on a thread of its own with a large stack, and waits for it: the caller may
/// be a thread of the embedder's tokio runtime, where the run could not block on its own.
/// Meanwhile the caller's thread builds the run's engine (see [`BaseEngine`]).
pub(crate) fn on_own_thread<T: Send + 'static>(
    f: impl FnOnce(BaseEngine) -> Result<T, Failure> + Send + 'static,
) -> Result<T, Failure> {
    on_run_thread(true, f)
}

/// [`on_own_thread`], where `build_engine` says whether the caller's thread builds the
/// engine meanwhile. The `prun` binary reads its command line on the run's thread too,
/// while the main thread builds the engine from the start: building Rhai's standard
/// packages is the longest step before a script can run, and it no longer waits for the
/// command line to be read and the thread started. Without it (a subcommand that runs no
/// script), a run that turns out to need an engine builds its own.
pub(crate) fn on_run_thread<T: Send + 'static>(
    build_engine: bool,
    f: impl FnOnce(BaseEngine) -> Result<T, Failure> + Send + 'static,
) -> Result<T, Failure> {
    let (tx, built) = std::sync::mpsc::sync_channel(1);
    let (spent, retired) = std::sync::mpsc::sync_channel(1);
    let thread = std::thread::Builder::new()
        .name("prun-run".into())
        .stack_size(RUN_STACK)
        .spawn(move || {
            // Before it starts any other thread, which inherit the mask.
            crate::sigchld::block();
            // The script's top level runs here: deep nesting must fail cleanly too.
            crate::exec::guard_stack(RUN_STACK - 256 * 1024);
            f(BaseEngine { built, spent })
        })
        .map_err(|e| Failure::Internal(format!("failed to start the run's thread: {e}")))?;
    // This thread only waits from now on: the run's children must not wake it.
    let _quiet = crate::sigchld::Blocked::here();
    // A run that stops before it needs the engine (the lock held, a bad state directory)
    // just drops it.
    if build_engine {
        let _ = tx.send(rhai::Engine::new());
    } else {
        drop(tx);
    }
    // The run's engine, once the run no longer needs it (none when the run ends without
    // one): freed here while the run's thread closes the task DB and prunes old logs.
    drop(retired.recv());
    thread
        .join()
        .map_err(|_| Failure::Internal("the run's thread panicked".into()))?
}

/// The live display is on when stdout is a terminal that can show it (not `TERM=dumb`),
/// unless `--no-live`; `--live` forces it on. Never with `--json -`: stdout holds the
/// report.
pub(crate) fn wants_live(live: Option<bool>, quiet: bool) -> bool {
    use std::io::IsTerminal;
    match live {
        Some(on) => on && !crate::report::stdout_taken(),
        None => {
            !crate::report::stdout_taken()
                && std::io::stdout().is_terminal()
                && std::env::var("TERM").map_or(true, |t| t != "dumb")
                && !quiet
        }
    }
}

/// Warns of each `when_scheduled` rule of a scheduled proc that can never schedule
/// anything (see [`crate::check::unmatched_when_scheduled`]): the top level has ended,
/// so no proc it could match is still to be defined.
fn warn_inert_when_scheduled(sched: &Scheduler, reporter: &dyn Reporter) {
    let inert = {
        let c = sched.lock();
        let declarers = c.when_scheduled_declarers();
        crate::check::unmatched_when_scheduled(c.graph(), declarers.into_iter(), false)
    };
    for rule in inert {
        reporter.warning(&rule.to_string());
    }
}

/// Ends what a crashed earlier run of the script left running and removes the temporary
/// directories it left (see [`crate::exec::crashed`]); returns the directory of the
/// journals, where [`start_journal`] starts this run's, or `None` (with a warning) when it
/// cannot be made private.
/// `state_dir` is the script's private state directory: the journals there name process
/// groups that the next run kills, so nobody else may write them. The procs a crashed run
/// was running are recorded in the task DB at `db`, as `DIED` rows of that run.
fn end_orphans(state_dir: &Path, db: Option<&Path>, reporter: &dyn Reporter) -> Option<PathBuf> {
    let dir = state_dir.join("groups");
    if let Err(e) = crate::paths::private_dir(&dir) {
        reporter.warning(&format!(
            "{e} (a crash of prun would leave its jobs running)"
        ));
        return None;
    }
    let crashed =
        crate::exec::crashed::end_orphans(&dir, KILL_GRACE, &mut |w| reporter.warning(&w));
    if let Some(db) = db {
        for run in &crashed {
            if let Err(e) = crate::store::record_died_procs(db, run.pid, run.start, &run.procs) {
                reporter.warning(&format!(
                    "{e} (the procs a crashed run (prun pid {}) was running are not recorded)",
                    run.pid
                ));
            }
        }
    }
    Some(dir)
}

/// Starts this run's journal of process groups in `dir` (see [`end_orphans`]). A journal
/// that cannot be made only costs that protection: the run goes on with a warning.
fn start_journal(dir: &Path, reporter: &dyn Reporter) -> Option<crate::exec::crashed::Journal> {
    match crate::exec::crashed::Journal::start(dir) {
        Ok(j) => Some(j),
        Err(e) => {
            reporter.warning(&format!(
                "cannot record this run's process groups in {}: {e} (a crash of prun would leave its jobs running)",
                dir.display()
            ));
            None
        }
    }
}

/// The reporter of a run: prun's own display (or none), with the embedder's events.
fn reporter_of(settings: &Settings, cli: &CliExtras) -> (Arc<Tee>, Option<Arc<LiveReporter>>) {
    let mut live = None;
    let inner: Option<Arc<dyn Reporter>> = if cli.inspect.is_some() {
        Some(Arc::new(Silent))
    } else {
        match settings.output {
            Output::Silent => None,
            Output::Live => {
                let color = std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
                let l = Arc::new(LiveReporter::new(
                    color,
                    settings.verbose,
                    settings.full_log_on_failure,
                ));
                live = Some(l.clone());
                Some(l)
            }
            Output::Plain => Some(Arc::new(PlainReporter::new(
                settings.verbose,
                settings.quiet,
                settings.full_log_on_failure,
            ))),
        }
    };
    let tee = Tee::new(inner, settings.on_event.clone());
    (Arc::new(tee), live)
}

/// Why the policy stopped a run, once it did.
type LimitHit = Arc<Mutex<Option<String>>>;

/// Stops the run when it breaks a limit of the policy: more procs started than
/// `max_procs`, or `max_run_time` passed since the run was asked for (`started`).
fn enforce_limits(
    policy: &Policy,
    rt: &tokio::runtime::Runtime,
    sched: &Arc<Scheduler>,
    started: Instant,
) -> LimitHit {
    let hit: LimitHit = Arc::default();
    let record = {
        let hit = hit.clone();
        move |why: String| {
            hit.lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .get_or_insert(why);
        }
    };
    if let Some(max) = policy.proc_limit() {
        // The scheduler stops the run itself, before the proc past the limit fails.
        let record = record.clone();
        sched.on_over_proc_limit(Box::new(move || {
            record(format!(
                "stopped by the policy: the run would start more than {max} procs (max_procs)"
            ));
        }));
    }
    if let Some(limit) = policy.time_limit() {
        let sched = Arc::downgrade(sched);
        rt.spawn(async move {
            tokio::time::sleep(limit.saturating_sub(started.elapsed())).await;
            record(format!(
                "stopped by the policy: the run took longer than {} (max_run_time)",
                humantime::format_duration(limit)
            ));
            let Some(s) = sched.upgrade() else {
                return;
            };
            s.interrupt();
            drop(s);
            // The script chose its kill grace, and its cleanups run to their end after a
            // first interrupt: the default grace later, everything is ended at once.
            tokio::time::sleep(KILL_GRACE).await;
            if let Some(s) = sched.upgrade() {
                s.interrupt();
            }
        });
    }
    hit
}

/// Runs a script to completion and returns its report. What goes wrong during the run is
/// reported as it happens and in the report; a [`Failure`] is what stopped the run before
/// it started (a script that does not compile, the lock held, an unusable state
/// directory).
pub(crate) fn execute(
    settings: &Settings,
    mut call: Call,
    base: BaseEngine,
) -> Result<Report, Failure> {
    let run_started = SystemTime::now();
    // Hidden until the run has ended and its report is made.
    let _secrets = std::mem::take(&mut call.secrets);
    let script_path = call.script.path().to_path_buf();
    let inspect = call.cli.inspect;
    let dry_run = settings.dry_run || inspect.is_some();
    crate::paths::root_environment_is_safe()?;
    // Found once: the state directory, the lock, the history and the watch all name the
    // script by it.
    let identity = crate::paths::script_identity(&script_path);
    let state_dir = match &settings.state_root {
        Some(root) => crate::paths::state_dir_in(root, &identity),
        None => crate::paths::state_dir_of(&identity),
    };
    let state_dir = if inspect.is_some() {
        state_dir
    } else {
        crate::paths::make_private_state_dir(state_dir)?
    };
    // Taken before the signal handlers exist: Ctrl-C while waiting for it just ends prun.
    let _lock = match call.cli.lock {
        Some(wait) => Some(take_lock(
            &script_path,
            &identity,
            &state_dir,
            wait,
            settings.quiet,
        )?),
        None => None,
    };
    let (tee, live) = reporter_of(settings, &call.cli);
    let reporter: Arc<dyn Reporter> = tee.clone();
    let db = DbSettings {
        fixed: settings.task_db != TaskDb::Default,
        script: crate::store::ScriptName {
            shown: script_path.display().to_string(),
            key: identity.display().to_string(),
        },
        args: call.history_args.clone(),
        full: settings.full,
        read_only: dry_run,
    };
    // A dry run reads an existing DB (to tell what is up to date) and writes nothing.
    // An existing DB is opened from here on, while the run gets ready.
    let db_path = db_path_of(settings, &state_dir);
    let cache_opener = db_path
        .clone()
        .filter(|p| inspect.is_none() && (!dry_run || p.exists()))
        .map(|path| open_cache(&reporter, &db, path));
    let groups = if dry_run {
        None
    } else {
        end_orphans(&state_dir, db_path.as_deref(), &*reporter)
    };
    // From here on the run makes what a signal's default action would leave behind (its
    // journal): an abort signal now waits for the run to act on it (see `watch_signals`).
    let early = settings
        .signals
        .then(|| crate::signals::listen_early(&abort_signal_numbers()).ok())
        .flatten();
    let journal = groups.and_then(|dir| start_journal(&dir, &*reporter));
    crate::exec::unix::raise_fd_limit();
    let started = Instant::now();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(Failure::Runtime)?;
    let parallel = settings
        .parallel
        .unwrap_or_else(crate::graph::resources::host_cpus);
    let core = Core::new(CoreOptions {
        parallel,
        allow_missing_deps: true,
        fail_fast: settings.fail_fast,
    });
    let log_root = settings
        .log_dir
        .clone()
        .unwrap_or_else(|| state_dir.join("logs"));
    let local = Arc::new(Local::hiding(settings.policy.hidden_env()));
    let sched = Scheduler::with_launcher(
        core,
        rt.handle().clone(),
        reporter.clone(),
        log_root,
        KILL_GRACE,
        local.clone(),
        Arc::new(settings.policy.lending_terminal(settings.terminal)),
    );
    if let Some(j) = &journal {
        sched.set_journal(j.procs());
    }
    sched.with(|c| {
        c.set_state_dir(state_dir.clone());
        c.set_report(call.cli.report.clone());
        if matches!(inspect, Some(Inspect::List | Inspect::Graph)) {
            c.judge_nothing();
        }
    });
    if dry_run {
        sched.run_dry();
    }
    if let Some(mode) = settings.proc_output {
        sched.set_output(mode);
    }
    let mut listening = Vec::new();
    if settings.signals {
        listening.extend(watch_signals(&rt, &sched, early));
        if let Some(l) = &live
            && !crate::exec::unix::ignored_at_start(nix::sys::signal::Signal::SIGTSTP as i32)
        {
            l.stop_cleanly_on_ctrl_z(&rt);
        }
    }
    if settings.signals && call.cli.exit_after {
        // Processes that leave their command's group come back to prun when orphaned,
        // to be ended with the run (see `Local::end_escaped`). Only in the binary, whose
        // children are all its run's: an embedder's process has children of its own and
        // other runs' commands, which would be ended too. What it adopts is recorded in
        // the crash journal from half a second on.
        if crate::exec::unix::adopt_orphans() {
            rt.spawn(crate::exec::crashed::watch_adopted_later());
        }
        // Hidden variables are still in the environment the kernel keeps for prun.
        if settings.policy.hides_env() {
            crate::exec::unix::keep_memory_private();
        }
    }
    let limit_hit = enforce_limits(&settings.policy, &rt, &sched, call.started);
    let _cancel = call.cancel.take().map(|c| c.attach(&sched));
    if let Some(l) = &live {
        let weak = Arc::downgrade(&sched);
        let key = db.script.key.clone();
        // Read at the first reading after the DB is open (see `ExpectedDurations`).
        let expected = std::sync::Mutex::new(crate::store::ExpectedDurations::new(&key));
        l.set_estimator(Box::new(move |name| {
            if let Some(e) = expected.lock().expect("expected").known(name) {
                return Some(e);
            }
            let s = weak.upgrade()?;
            // Cloned out first: the query reads the DB, never under the core's lock.
            let store = {
                let c = s.lock();
                match c.cache() {
                    Some(cache) => cache.store().clone(),
                    // Asked again once the DB is open: the display's first readings
                    // come before it is, more so on a busy machine.
                    None if c.cache_pending() => return None,
                    None => return Some(None),
                }
            };
            Some(expected.lock().expect("expected").get(&store, name))
        }));
        let weak = Arc::downgrade(&sched);
        l.set_queue_reader(Box::new(move || Some(weak.upgrade()?.lock().queue_view())));
    }
    if let Some(opener) = cache_opener {
        sched.with(|c| c.set_cache_opener(Some(opener)));
    }
    let checking = inspect == Some(Inspect::Check);
    let watch = watch_session(
        settings,
        inspect.is_some(),
        &state_dir,
        db_path_of(settings, &state_dir),
        run_started,
    );
    watch.script_file(&identity);
    if settings.signals {
        let local = local.clone();
        watch.on_settled(move || local.reap_escaped());
    }
    // A runtime's log directory holds the runs of all its scripts: a script's `keep_runs`
    // prunes its history, and the directory keeps the default number of runs.
    let history_keep = settings
        .log_dir
        .is_some()
        .then(|| Arc::new(std::sync::atomic::AtomicU64::new(sched.keep_runs())));
    let host = Host::with_engine(
        base.take(),
        sched.clone(),
        &HostOptions {
            cli_parallel: settings.parallel,
            script_args: call.script_args.clone(),
            script_values: call.script_values.clone(),
            db,
            cli_full_log: settings.full_log_on_failure,
            cli_live: settings.cli_live,
            cli_output: settings.proc_output.is_some(),
            fixed_log_dir: settings.log_dir.is_some(),
            history_keep: history_keep.clone(),
            check: checking,
            setup: settings.setup.clone(),
            watch: watch.clone(),
        },
    );

    let compiled = match &call.script {
        Script::File(p) => host.compile_file(p),
        Script::Text { name, text } => host.compile_text(text, &name.display().to_string()),
    };
    let ast = match compiled {
        Ok(ast) => ast,
        Err(e) => {
            sched.shutdown();
            return Err(Failure::Script(e));
        }
    };

    let mut exit = Exit::Ok;
    // A panic (a bug) on this thread ends the run like one on any other (see
    // `exec::internal`): the cleanups still run and prun exits with status 2.
    let ran = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        // The command line's targets schedule the `now` procs with them (see run_targets).
        let with_targets = !checking && !call.targets.is_empty();
        let r = host.run(&ast).and_then(|()| {
            if with_targets {
                Ok(())
            } else {
                schedule_now(&sched)
            }
        });
        // `prun check` looks the targets up without scheduling them.
        let looked_up = (r.is_ok() && checking).then(|| check_targets(&sched, &call.targets));
        let targets =
            (r.is_ok() && !checking).then(|| run_targets(&sched, &call.targets, &*reporter));
        (r, targets, looked_up)
    }));
    let ran = ran.unwrap_or_else(|payload| {
        sched.internal_error(crate::exec::panic_message(&*payload));
        (Err(crate::script::TopLevelError::Interrupted), None, None)
    });
    // What stopped the run, for the report (it was printed as it happened).
    let mut error: Option<String> = None;
    // `prun check` reports why the evaluation stopped with the problems it finds.
    let mut stopped = crate::check::Stopped {
        targets: ran.2,
        ..crate::check::Stopped::default()
    };
    match ran.0 {
        Err(crate::script::TopLevelError::Script(e)) if checking => {
            stopped.error = Some(e.to_string());
        }
        Err(
            crate::script::TopLevelError::ProcFailed(msg)
            | crate::script::TopLevelError::Aborted(msg),
        ) if checking => stopped.wait = Some(format!("the script stopped: {msg}")),
        Ok(()) => {
            let (code, e) = ran.1.unwrap_or((Exit::Ok, None));
            exit = code;
            error = e;
        }
        Err(crate::script::TopLevelError::Script(e)) => {
            reporter.eprint(&format!("prun: error: {e}"));
            sched.with(|c| c.abort(AbortReason::ScriptError));
            exit = Exit::Script;
            error = Some(e.to_string());
        }
        Err(crate::script::TopLevelError::ProcFailed(msg)) => {
            reporter.eprint(&crate::ui::stopped_line(&msg));
            exit = Exit::ProcFailed;
            error = Some(format!("the script stopped: {msg}"));
        }
        Err(crate::script::TopLevelError::Aborted(msg)) => {
            reporter.eprint(&format!("prun: the script stopped: {msg}"));
            error = Some(format!("the script stopped: {msg}"));
        }
        Err(crate::script::TopLevelError::Interrupted) => {}
    }

    // Scheduling what the top level left (`now: true` procs, dependencies to resolve)
    // may call the script's closures, and so an embedder's native functions: a panic
    // there ends the run as above.
    let defined = exit == Exit::Ok && error.is_none() && inspect.is_none();
    let settled = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        sched.with(|c| c.script_done());
        if defined {
            warn_inert_when_scheduled(&sched, &*reporter);
        }
        if let Ok(Some(rx)) = sched.graph_op(|c| c.wait_all()) {
            sched.block(rx);
            // The wait woke the script as if it ran on; its top level has ended.
            sched.with(|c| c.script_done());
        }
    }));
    if let Err(payload) = settled {
        sched.internal_error(crate::exec::panic_message(&*payload));
    }
    if exit == Exit::Ok && error.is_none() && watch.pending() {
        // The watch calls `inputs` closures on this thread to learn what to watch: a
        // panic there ends the run as above.
        let watched = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            crate::watch::watch(&sched, &watch, &[])
        }));
        match watched {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => {
                reporter.eprint(&format!("prun: error: {e}"));
                exit = Exit::Script;
                error = Some(e.to_string());
            }
            Err(payload) => sched.internal_error(crate::exec::panic_message(&*payload)),
        }
    }
    sched.with(|c| c.end_scheduling());
    host.run_cleanups();
    sched.flush_reports();
    // `list`, `graph` or `check` interrupted (Ctrl-C, SIGTERM) while the script ran: what
    // it had declared by then would pass for the whole.
    let cut_short = inspect.is_some() && sched.interrupted();
    if checking && !cut_short {
        let findings = host.findings();
        if stopped.error.is_some() {
            stopped.after_command = host.last_command();
        }
        exit = crate::check::report(&sched.lock(), &ast, findings, &call.targets, stopped);
    }
    if cut_short {
        errln!("prun: interrupted");
        exit = Exit::Interrupted;
    }
    // A script that failed declared only part of its procs, and a target that matches
    // nothing leaves a graph without it: the error is the answer, not a partial picture.
    if let Some(what) = inspect.filter(|_| exit == Exit::Ok) {
        let text = {
            let c = sched.lock();
            match what {
                Inspect::List => Some(crate::inspect::list(&c, |def| sched.placement(def)))
                    .filter(|text| !text.is_empty())
                    .or_else(|| Some("no procs or protos".to_string())),
                Inspect::Graph => Some(crate::inspect::dot(&c, !call.targets.is_empty())),
                // `prun check` printed its findings above.
                Inspect::Check => None,
            }
        };
        // What was asked for and lost is no success (as for `prun report`).
        if let Some(text) = text
            && let Err(e) = crate::report::print_text(format!("{text}\n").as_bytes())
        {
            errln!("prun: failed to write stdout: {e}");
            exit = Exit::Usage;
        }
    }
    if inspect.is_some() {
        sched.shutdown();
        let info = RunInfo {
            script: &script_path,
            args: &call.history_args,
            start: run_started,
            end: SystemTime::now(),
            outcome: match exit {
                Exit::Ok => Outcome::Ok,
                Exit::Interrupted => Outcome::Interrupted,
                _ => Outcome::ScriptError,
            },
            error: error.as_deref(),
            exit,
        };
        return Ok(crate::report::build(&info, &[]));
    }

    let mut summary = summarize(&sched, started.elapsed());
    if dry_run {
        let n = sched.lock().would_run_count();
        summary.succeeded -= n;
        summary.would_run = Some(n);
        // What would run did not run: its zero durations are no timing.
        summary.slowest.clear();
    }
    // A run that names no target and schedules nothing lists what could run instead
    // (as `just` does with no recipe); the live display still needs its summary to end.
    let listing = (call.targets.is_empty()
        && summary.total() == 0
        && exit == Exit::Ok
        && !settings.quiet
        && settings.output != Output::Silent
        && !sched.interrupted())
    .then(|| {
        let own_words = host.takes_positional_words();
        crate::inspect::available(&sched.lock(), &script_path, own_words, |d| {
            sched.placement(d)
        })
    })
    .flatten();
    // A run that an error stopped before it scheduled anything has nothing to sum up:
    // the error is all there is to say.
    summary.lists_targets = listing.is_some();
    if !(matches!(exit, Exit::Script | Exit::Usage) && summary.total() == 0) {
        reporter.summary(&summary);
    }
    if let Some(text) = listing {
        outln!("{text}");
    }
    let interrupted = sched.lock().interrupted_procs().to_vec();
    let internal = sched.internal_failure();
    let limit = limit_hit
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .take();
    // Ctrl-C is how a watch ends: its last cycle decides the outcome. A limit of the
    // policy is not: the watch was stopped, as a run is.
    let watched = watch.ended().filter(|_| limit.is_none());
    let outcome = if internal.is_some() {
        Outcome::InternalError
    } else if let Some(ok) = watched {
        if ok && exit == Exit::Ok {
            Outcome::Ok
        } else {
            Outcome::Failed
        }
    } else if sched.interrupted() {
        Outcome::Interrupted
    } else if exit == Exit::Script {
        Outcome::ScriptError
    } else if exit == Exit::Usage {
        Outcome::UsageError
    } else if summary.failed + summary.failed_dep > 0 || exit != Exit::Ok {
        Outcome::Failed
    } else {
        Outcome::Ok
    };
    // Nothing runs a script function any more: the engine is freed on the waiting thread
    // while this one closes the task DB and prunes old logs. When the process exits right
    // after a small run, it is not freed at all: freeing Rhai's function tables (half a
    // million instructions) would only take a CPU from the run's end. The live display is
    // the exception: the engine holds its reporter, whose drop shows the cursor again.
    let small = call.cli.exit_after && summary.total() <= SMALL_RUN;
    let engine = host.into_engine();
    if small && live.is_none() {
        std::mem::forget(engine);
    } else {
        base.retire(engine);
    }
    sched.close_executors();
    // The DB's writer commits the end of the run while the run ends; the run waits for it
    // last, once its async runtime is shut down (never under the core's lock).
    // A run that ended before any proc needed the task DB (its script failed at the top
    // level, a target was wrong) is recorded too: the history of a cron job shows how it
    // ended. A run that did nothing and failed nothing leaves no row.
    if outcome != Outcome::Ok
        && !dry_run
        && let Some((open, generation)) = sched.with(|c| c.take_unused_cache_opener())
    {
        let cache = open.open();
        sched.with(|c| c.cache_opened(generation, cache));
    }
    // Why the run stopped, as its report and its history keep it.
    if let Some(panic) = &internal {
        error = Some(format!("internal error: {panic}"));
    } else if watched.is_none()
        && sched.interrupted()
        && let Some(why) = &limit
    {
        error.get_or_insert(why.clone());
    }
    let closing = sched.with(|c| c.take_cache()).map(|mut cache| {
        cache.finish(
            summary.wall,
            outcome.as_str(),
            &summary.to_json(),
            history_keep.as_ref().map_or_else(
                || sched.keep_runs(),
                |keep| keep.load(std::sync::atomic::Ordering::Relaxed),
            ),
            error.as_deref(),
        );
        cache
    });
    if !dry_run {
        sched.prune_logs();
    }
    // Each proc's report made as its summary is read, into a vector of the right size: a
    // list of summaries besides them would cost a run of many procs its peak memory.
    let mut procs: Vec<_> = if call.cli.exit_only {
        Vec::new()
    } else {
        let c = sched.lock();
        let mut procs = Vec::with_capacity(c.scheduled_len());
        procs.extend(c.scheduled().map(|p| crate::report::proc_report(&p)));
        if dry_run {
            crate::report::as_dry_run(&mut procs);
        }
        procs
    };
    sched.shutdown();

    let printing = settings.output != Output::Silent;
    if let Some(panic) = &internal {
        sched.launcher().kill_all();
        // Their jobs' tasks, still on the runtime, reap them: the run returns once they
        // are gone (or after a bound, for a process stuck in the kernel).
        sched.launcher().wait_all_gone(KILLED_WAIT);
        // The run did not wait for its running procs: their groups were just killed, worded
        // as a proc whose command ended on the run's cancel first is. Those it had not
        // started yet never will (their check may be what panicked).
        for p in procs.iter_mut() {
            let why = match p.state {
                State::Running => "terminated because the run was aborted",
                State::Wanted => "not started: the run ended on an internal error",
                _ => continue,
            };
            p.state = State::Failed;
            p.error = Some(why.into());
        }
        if printing {
            errln!("prun: internal error: {panic}");
        }
        exit = Exit::Script;
    } else if let Some(ok) = watched {
        if exit == Exit::Ok && !ok {
            exit = Exit::ProcFailed;
        }
    } else if sched.interrupted() {
        if printing && interrupted.is_empty() {
            errln!("prun: interrupted");
        } else if printing {
            errln!("prun: interrupted; terminated: {}", interrupted.join(", "));
        }
        if let Some(why) = limit
            && printing
        {
            errln!("prun: {why}");
        }
        exit = Exit::Interrupted;
    }
    // A watch's last cycle decided above; the interrupt that ended it aborted the run.
    if watched.is_none()
        && exit == Exit::Ok
        && (summary.failed > 0 || summary.failed_dep > 0 || sched.lock().aborted().is_some())
    {
        exit = Exit::ProcFailed;
    }
    local.end_escaped(sched.kill_grace());
    if call.cli.exit_after {
        sched.lock().leave_to_exit();
    }
    if settings.signals
        && let Some(cache) = &closing
    {
        let impatience = cache.store().impatience();
        listening.extend(impatient_on_signals(impatience.clone()));
        // One that came before, during the run, reached the scheduler only.
        if sched.interrupted() {
            impatience.give_up_waiting();
        }
    }
    if let Some(warning) = journal
        .as_ref()
        .and_then(crate::exec::crashed::Journal::write_failure)
    {
        reporter.warning(&warning);
    }
    // The crash journal goes while the DB's writer commits the end of the run: a finished
    // run leaves no journal either way, and its removal no longer waits for the commit.
    drop(journal);
    drop(closing);
    // Kept to here for the signals that end the wait above. A process that exits right
    // after the run does not wait for its workers to stop.
    if call.cli.exit_after {
        rt.shutdown_background();
        // The `prun` binary still writes its reports: a signal now is the run's to
        // take (it takes none any more), not a reason to die half-way through them.
        std::mem::forget(listening);
    } else {
        drop(rt);
        // An embedder's process gets the default action of these signals again.
        drop(listening);
    }
    let info = RunInfo {
        script: &script_path,
        args: &call.history_args,
        start: run_started,
        end: SystemTime::now(),
        outcome,
        error: error.as_deref(),
        exit,
    };
    Ok(crate::report::build_of(&info, procs))
}

/// How long a run that ended on a bug waits for the process groups it killed to be gone.
const KILLED_WAIT: Duration = Duration::from_secs(5);

/// The task DB a run uses, if any.
fn db_path_of(settings: &Settings, state_dir: &Path) -> Option<PathBuf> {
    match &settings.task_db {
        TaskDb::Off => None,
        TaskDb::Path(p) => Some(p.clone()),
        TaskDb::Default => Some(state_dir.join("tasks.db")),
    }
}

/// Opens the task DB of the run: an existing one at once, on its writer's thread, while
/// the run gets ready and its script compiles (see [`Store::start`]); a new one only when
/// a proc needs it (so that `set_options(#{ task_db })` can still choose another place
/// without leaving a stray file behind). A dry run's, read-only, when a proc needs it.
fn open_cache(reporter: &Arc<dyn Reporter>, db: &DbSettings, path: PathBuf) -> CacheOpener {
    let r = reporter.clone();
    let warn: Arc<dyn Fn(&str) + Send + Sync> = Arc::new(move |m: &str| r.warning(m));
    let (script, args, full) = (db.script.clone(), db.args.clone(), db.full);
    let run_start = SystemTime::now();
    if db.read_only {
        CacheOpener::Here(Box::new(move || {
            Cache::open_read_only(&path, script, args, full, run_start, warn)
        }))
    } else if path.exists() {
        let opening = Store::start(&path, warn.clone());
        CacheOpener::Then(Box::new(move |take: CacheTaker| {
            let opened = move |store| {
                take(Cache::opened(store, script, args, full, run_start, &*warn));
            };
            match opening {
                Ok(opening) => opening.then(opened),
                Err(e) => opened(Err(e)),
            }
        }))
    } else {
        CacheOpener::Here(Box::new(move || {
            Cache::open(&path, script, args, full, run_start, warn)
        }))
    }
}

/// `--lock`: an exclusive `flock` on each of the script's lock files (see
/// [`crate::paths::lock_files`]: one per path, one per file), held until the run ends.
/// `identity` is the script's (see [`crate::paths::script_identity`]), which a lock's
/// holder writes in it.
fn take_lock(
    script: &Path,
    identity: &Path,
    dir: &Path,
    wait: bool,
    quiet: bool,
) -> Result<Vec<crate::paths::HeldLock>, Failure> {
    crate::paths::lock_files(script, dir)?
        .iter()
        .map(|lock| take_lock_file(script, identity, lock, wait, quiet))
        .collect()
}

/// An exclusive `flock` on `lock`'s file. The kernel releases it when its holder dies, so
/// a lock left by a crashed run never blocks. The file is opened without following links
/// and must be the user's (see [`crate::paths::open_private_file`]). Waiting for it says
/// so, unless `quiet` (`-q`: a cron run that ends well prints nothing). A lock got on a
/// file its holder removed as it released it is taken again on the file the path names
/// now (see [`crate::paths::HeldLock`]).
fn take_lock_file(
    script: &Path,
    identity: &Path,
    lock: &crate::paths::LockFile,
    wait: bool,
    quiet: bool,
) -> Result<crate::paths::HeldLock, Failure> {
    use std::io::{Seek, Write};
    let path = lock.path.clone();
    let mut said = quiet;
    loop {
        let mut file = crate::paths::open_private_file(&path, crate::paths::Readers::Owner)
            .map_err(|source| Failure::LockOpen {
                path: path.clone(),
                source,
            })?;
        // `pid N, running PATH`, as the holder wrote it, control characters written out
        // (the path may be a link another user named); nothing when it could not (a full
        // disk).
        let holder = || {
            let text = std::fs::read_to_string(&path).unwrap_or_default();
            match text.trim() {
                "" => "pid unknown".to_string(),
                pid => crate::shown::visible(pid).into_owned(),
            }
        };
        let take_failed = |source| Failure::LockTake {
            path: path.clone(),
            source,
        };
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) if wait => {
                if !said {
                    said = true;
                    errln!(
                        "prun: waiting for another run of {} to finish ({})",
                        script.display(),
                        holder()
                    );
                }
                file.lock().map_err(take_failed)?;
            }
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(Failure::Locked {
                    script: script.to_path_buf(),
                    path: path.clone(),
                    holder: holder(),
                });
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(take_failed(e)),
        }
        if !crate::paths::still_names(&path, &file) {
            continue;
        }
        let _ = file.set_len(0);
        let _ = file.rewind();
        let _ = write!(
            file,
            "pid {}, running {}",
            std::process::id(),
            identity.display()
        );
        return Ok(crate::paths::HeldLock::new(file, lock));
    }
}

/// What a library run's words are: the script's declared options (read with its
/// `args(#{...})` declaration), targets, and after `--` the script's own arguments.
pub(crate) struct Words {
    pub targets: Vec<String>,
    pub script_args: Vec<String>,
    /// The script's own words as given (see [`Call::history_args`]); none when the words
    /// were not read (the pass that reads the declaration was stopped before it: which of
    /// them are secret is not known).
    pub script_words: Vec<String>,
    pub values: Option<rhai::Map>,
    pub secrets: Vec<String>,
}

/// Splits a library run's words (see [`Words`]). A word that looks like an option and is
/// not the script's is a usage error: prun's own flags are the runtime's settings. `bound`
/// bounds the pass that reads the declaration (see [`crate::script::declaration_in`]).
pub(crate) fn split_words(
    script: &Script,
    words: Vec<String>,
    policy: &Arc<Policy>,
    bound: &dyn Fn(&mut rhai::Engine),
) -> Result<Words, Failure> {
    let name = script.path().display().to_string();
    let p = policy.clone();
    let visible: Arc<dyn Fn(&str) -> bool + Send + Sync> = Arc::new(move |n| p.env_visible(n));
    let declared = script
        .text()
        .and_then(|text| crate::script::declaration_in(text, &name, visible, bound));
    let (rest, values, secrets, script_words) = match declared {
        None => (words, None, Vec::new(), None),
        // The run's top level stops where the pass did, before it could use the words:
        // judged without the declaration, the script's own options would read as wrong.
        Some(Err(crate::script::DeclError::Stopped(_))) => {
            (Vec::new(), None, Vec::new(), Some(Vec::new()))
        }
        Some(Err(source)) => {
            return Err(Failure::Declaration {
                script: name,
                source,
            });
        }
        Some(Ok(decl)) => {
            let split = decl
                .split(&words)
                .map_err(|msg| Failure::Usage(format!("{name}: {msg}")))?;
            if split.help {
                return Err(Failure::Usage(decl.script_usage(&name)));
            }
            (
                split.rest,
                Some(split.values),
                split.secrets,
                Some(split.words),
            )
        }
    };
    let mut rest = rest.into_iter();
    let targets: Vec<String> = rest.by_ref().take_while(|w| w != "--").collect();
    if let Some(bad) = targets.iter().find(|t| t.starts_with('-')) {
        return Err(Failure::Usage(format!(
            "{name}: unknown option \"{bad}\" (not one the script declares; prun's own settings are the runtime's)"
        )));
    }
    let script_args: Vec<String> = rest.collect();
    Ok(Words {
        targets,
        script_words: script_words.unwrap_or_else(|| script_args.clone()),
        script_args,
        values,
        secrets,
    })
}

/// Watch mode's settings for this run: `--watch` turns it on (a dry run or `prun
/// list`/`graph`/`check` never watches), and prun's own files never count as changes.
fn watch_session(
    settings: &Settings,
    inspecting: bool,
    state_dir: &Path,
    db: Option<PathBuf>,
    started: SystemTime,
) -> Arc<crate::watch::Session> {
    let inert = settings.dry_run || inspecting;
    let session = crate::watch::Session::new(settings.watch, inert, started);
    session.stops_on_ctrl_c(settings.signals);
    session.ignore(state_dir.to_path_buf());
    if let Some(db) = &db {
        session.ignore_db(db);
    }
    Arc::new(session)
}

/// Schedules the `now: true` procs the top level left when the command line names no
/// target: a closure that fails for them (a dependency or `arg_choices` closure) is an
/// error of the script. With targets, [`run_targets`] schedules them with the targets.
fn schedule_now(sched: &Arc<Scheduler>) -> Result<(), crate::script::TopLevelError> {
    sched.graph_op(|c| c.flush_now()).map_err(|e| {
        let message = crate::graph::graph_error_at_definition(sched.lock().graph(), &e);
        crate::script::TopLevelError::Script(crate::script::ScriptError::Runtime(message))
    })
}

/// The problem of each command-line target that a run could not start, for `prun check`:
/// each is expanded as a run expands it (its proto's `arg_choices` closures called), and
/// the procs it would reach are made (so that the graph's problems among them are found),
/// but nothing is started.
fn check_targets(sched: &Arc<Scheduler>, targets: &[String]) -> Vec<String> {
    targets
        .iter()
        .filter_map(|t| {
            let e = sched
                .graph_op(|c| {
                    c.flush_now()?;
                    let ids = c.expand(t)?;
                    let roots: Vec<crate::exec::Root<'_>> =
                        ids.iter().map(|&id| crate::exec::Root::Proc(id)).collect();
                    c.prepare(&roots)
                })
                .err()?;
            let why = crate::graph::graph_error(sched.lock().graph(), &e);
            Some(format!("target \"{t}\": {why}"))
        })
        .collect()
}

/// Starts the command line's targets; a target that cannot be started is a usage error
/// (a script error when a closure of the script failed or its graph is at fault),
/// returned with its message.
fn run_targets(
    sched: &Arc<Scheduler>,
    targets: &[String],
    reporter: &dyn Reporter,
) -> (Exit, Option<String>) {
    // Each target is expanded once, even when the operation is retried (see Core::expand).
    // All are expanded before any starts: a typo in the last one starts none of them.
    // They start together, as `run([...])` does, so a `when_scheduled` between two
    // targets holds whatever their order; and with the `now` procs the top level left, as
    // a `run` schedules them with its names.
    let mut expanded: Vec<Vec<crate::graph::ProcId>> = Vec::new();
    let result = sched.graph_op(|c| {
        while let Some(t) = targets.get(expanded.len()) {
            expanded.push(c.expand(t)?);
        }
        c.start_with_now(&expanded.concat())
    });
    match result {
        Ok(()) => (Exit::Ok, None),
        Err(e) => {
            let message = format!(
                "target: {}",
                crate::graph::graph_error_at_definition(sched.lock().graph(), &e)
            );
            reporter.eprint(&format!("prun: {message}"));
            // A closure of the script that failed, or a fault of its graph (a cycle, a
            // wave violation, a `when_scheduled` too late, a missing dependency under
            // `allow_missing_deps: false`), is the script's, whatever target reached it.
            use crate::graph::GraphError as G;
            let exit = match e {
                G::Callback { .. }
                | G::Cycle(_)
                | G::WaveViolation { .. }
                | G::TooLate { .. }
                | G::MissingDep { .. } => Exit::Script,
                _ => Exit::Usage,
            };
            (exit, Some(message))
        }
    }
}

fn summarize(sched: &Arc<Scheduler>, wall: Duration) -> Summary {
    let c = sched.lock();
    let mut s = Summary {
        wall,
        ..Summary::default()
    };
    // The three slowest, kept as they come (ties in registration order): a list of
    // every proc that ran would cost a run of many procs its peak memory.
    let mut slowest: Vec<(String, Duration)> = Vec::with_capacity(SLOWEST + 1);
    for p in c.scheduled() {
        if let Some(d) = p
            .duration
            .filter(|_| matches!(p.state, State::Succeeded | State::Failed))
        {
            let at = slowest.partition_point(|&(_, e)| e >= d);
            if at < SLOWEST {
                slowest.insert(at, (p.name.to_string(), d));
                slowest.truncate(SLOWEST);
            }
        }
        match p.state {
            State::Succeeded => s.succeeded += 1,
            State::Failed => s.failed += 1,
            State::FailedDep => s.failed_dep += 1,
            State::Skipped => s.skipped += 1,
            State::UpToDate => s.up_to_date += 1,
            State::Idle | State::Wanted | State::Running => s.not_run += 1,
        }
    }
    s.slowest = slowest;
    s
}

/// How many of the slowest procs the summary names.
const SLOWEST: usize = 3;

/// The signals that abort a run (Ctrl-C's SIGINT, SIGTERM, SIGHUP, SIGQUIT), but those
/// ignored when prun started: as a shell does, prun neither catches them nor resets them
/// for its commands. `nohup prun s.rhai &` outlives its terminal, its commands too, and a
/// script's `prun s.rhai &` is not aborted by the Ctrl-C meant for the script.
fn abort_signals() -> Vec<tokio::signal::unix::SignalKind> {
    use tokio::signal::unix::SignalKind;
    [
        SignalKind::interrupt(),
        SignalKind::terminate(),
        SignalKind::hangup(),
        SignalKind::quit(),
    ]
    .into_iter()
    .filter(|kind| !crate::exec::unix::ignored_at_start(kind.as_raw_value()))
    .collect()
}

/// Ctrl-C, SIGTERM, SIGHUP (terminal closed, ssh dropped) and SIGQUIT abort the run (see
/// [`Scheduler::interrupt`]): jobs are terminated, `defer` cleanups run, the report is
/// written, and prun exits with 130. Left to their default action, SIGHUP and SIGQUIT
/// would end prun on the spot and leave every job running. Only when the runtime asks
/// for it (the binary does): the handlers are the process's. Not those ignored when prun
/// started (see [`abort_signals`]).
///
/// SIGTTIN is caught too, and nothing is done with it (prun never reads its terminal):
/// a caught signal is reset to its default action in every program prun starts, so
/// commands get SIGTTIN as a job-control shell gives it to them, even when prun was
/// started with it ignored (a script in a tmux pane is). An interactive command may read
/// the terminal before prun has made its group the foreground; at the default action the
/// kernel stops it until prun continues it (see [`crate::exec::unix::Foreground`]), but
/// ignored, its read failed at once (EIO) and the command went on without its input.
/// While a run waits for its task DB's last commit: a signal (Ctrl-C, SIGTERM, SIGHUP,
/// SIGQUIT) makes the DB's writer stop waiting for a lock another process holds (up to 10
/// s), and the run ends without the rows it could not commit, with a warning, and with
/// the status it had (its procs are done).
///
/// The abort signals reach the run while the returned listener lives (see
/// [`crate::signals`]).
fn impatient_on_signals(impatience: crate::store::Impatience) -> Option<crate::signals::Listening> {
    let kinds = abort_signal_numbers();
    crate::signals::listen(&kinds, move || impatience.give_up_waiting()).ok()
}

/// [`abort_signals`], as raw numbers.
fn abort_signal_numbers() -> Vec<i32> {
    abort_signals().iter().map(|k| k.as_raw_value()).collect()
}

/// Makes the abort signals interrupt the run of `sched` while the returned listener lives
/// (see [`impatient_on_signals`] and [`crate::signals`]); `None` when their handlers
/// cannot be installed (a warning says so). Those `early` held back since the run began
/// making its state interrupt it now, as if they came now.
fn watch_signals(
    rt: &tokio::runtime::Runtime,
    sched: &Arc<Scheduler>,
    early: Option<crate::signals::Early>,
) -> Option<crate::signals::Listening> {
    use tokio::signal::unix::{SignalKind, signal};
    let sched: Weak<Scheduler> = Arc::downgrade(sched);
    let _guard = rt.enter();
    // The handler stays installed once its stream is dropped.
    if let Err(e) = signal(SignalKind::from_raw(crate::exec::unix::SIGTTIN)) {
        errln!("prun: warning: cannot install a SIGTTIN handler: {e}");
    }
    // SIGCHLD ignored from the start (a parent's `SIG_IGN`, which exec keeps) makes the
    // kernel reap every child as it exits: no command's exit status could be had ("No
    // child processes"). Caught instead, it is reset to its default action in every
    // command; prun never acts on it (its threads block it, see `sigchld::block`).
    let child = SignalKind::child();
    if crate::exec::unix::ignored_at_start(child.as_raw_value())
        && let Err(e) = signal(child)
    {
        errln!("prun: warning: cannot install a SIGCHLD handler: {e}");
    }
    let interrupt = move || {
        if let Some(s) = sched.upgrade() {
            s.interrupt();
        }
    };
    if let Some(early) = early {
        return Some(early.hand_to(interrupt));
    }
    match crate::signals::listen(&abort_signal_numbers(), interrupt) {
        Ok(l) => Some(l),
        Err(e) => {
            errln!("prun: warning: {e}");
            None
        }
    }
}

//! The [`Scheduler`]: the [`Core`] behind a lock, and the executor of the actions it
//! records — starting jobs, judging procs, waking waiters, arming retry timers, reporting.
//!
//! The lock is held only while the core updates its counters (the core runs no user code
//! and does no I/O, see its module doc); jobs are started, verdicts computed, waiters woken
//! and lines printed after it is released, so a slow terminal, a slow `fork` or a slow
//! closure never blocks another thread's bookkeeping, and any API function a closure calls
//! can take the lock itself. Closures run only on the script's thread or on worker
//! threads, never on the async runtime, where `exec()` could not block.

use std::cell::Cell;
use std::collections::HashSet;
use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, mpsc};
use std::time::Duration;

use tokio::runtime::Handle;
use tokio_util::sync::CancellationToken;

use super::core::{AbortReason, Action, CacheOpener, Core, JobSpec, Root, Wake};
use super::freshness::{self, Judgement};
use super::internal::{self, Guarded, lock};
use super::job;
use super::launch::{Input, Launcher, Local, Policed, Sink};
use super::log::LogDir;
use super::pool::{NoThread, Pool};
use super::state::Outcome;
use super::tap::Tap;
use crate::graph::{Answer, Body, GraphError, NeedKey, Needs, OutputMode, ProcDef, ProcId};
use crate::ui::Reporter;

/// Runs closure bodies; implemented by the script host, which owns the Rhai engine.
pub(crate) trait ClosureRunner: Send + Sync {
    /// Runs one attempt of a closure job on the current (worker) thread. `cancel` fires on
    /// timeout or abort; `log` is the proc's log file (created on first write).
    fn run(&self, job: &JobSpec, cancel: &CancellationToken, log: &Path) -> Outcome;
}

thread_local! {
    /// The kind of script closure this thread is evaluating for the core (a dependency
    /// closure, an `inputs` closure...), while it does.
    static EVALUATING: Cell<Option<&'static str>> = const { Cell::new(None) };
}

/// Runs `f`, a call of script closures of `kind`, marking the thread as evaluating them.
pub(crate) fn evaluating_as<R>(kind: &'static str, f: impl FnOnce() -> R) -> R {
    struct Reset(Option<&'static str>);
    impl Drop for Reset {
        fn drop(&mut self) {
            EVALUATING.with(|e| e.set(self.0));
        }
    }
    let _reset = Reset(EVALUATING.with(|e| e.replace(Some(kind))));
    f()
}

/// The kind of closure this thread is evaluating for the core ("a dependency closure"),
/// if any: such a closure computes a value and must not schedule, wait or define.
pub(crate) fn evaluating() -> Option<&'static str> {
    EVALUATING.with(Cell::get)
}

thread_local! {
    /// What ends the commands and sleeps of the `inputs` or `outputs` closures this thread
    /// calls for a proc (see [`cancelled_by`]).
    static CLOSURE_CANCEL: std::cell::RefCell<Option<CancellationToken>> =
        const { std::cell::RefCell::new(None) };
}

/// Runs `f`, a call of a proc's `inputs` or `outputs` closures outside its body, with
/// `cancel` as what ends the commands and sleeps they ask for: an abort that ends the
/// proc's jobs (`--fail-fast`, Ctrl-C) ends those too, as it ends the body's.
pub(crate) fn cancelled_by<R>(cancel: &CancellationToken, f: impl FnOnce() -> R) -> R {
    struct Reset(Option<CancellationToken>);
    impl Drop for Reset {
        fn drop(&mut self) {
            CLOSURE_CANCEL.with(|c| *c.borrow_mut() = self.0.take());
        }
    }
    let _reset = Reset(CLOSURE_CANCEL.with(|c| c.replace(Some(cancel.clone()))));
    f()
}

/// What ends the commands of the `inputs` or `outputs` closures this thread calls for a
/// proc, if it calls one (see [`cancelled_by`]).
pub(crate) fn closure_cancel() -> Option<CancellationToken> {
    CLOSURE_CANCEL.with(|c| c.borrow().clone())
}

thread_local! {
    /// The proc whose dependency closures this thread is calling: it is being defined or
    /// made from its proto, and is not in the graph yet.
    static MAKING: std::cell::RefCell<Option<String>> = const { std::cell::RefCell::new(None) };
}

/// Forgets the dependency closures' answers an operation asked for.
fn forget_answers(c: &mut Core, answered: &[NeedKey]) {
    if !answered.is_empty() {
        c.graph_mut().forget_answers(answered);
    }
}

/// Runs `f`, the call of the closures of `key`; when they are a proc's dependency
/// closures, the proc counts as being made meanwhile (see [`being_made`]).
fn making<R>(key: &NeedKey, f: impl FnOnce() -> R) -> R {
    struct Reset(Option<String>);
    impl Drop for Reset {
        fn drop(&mut self) {
            MAKING.with(|m| *m.borrow_mut() = self.0.take());
        }
    }
    let NeedKey::Deps(name) = key else {
        return f();
    };
    let _reset = Reset(MAKING.with(|m| m.replace(Some(name.clone()))));
    f()
}

/// True while this thread calls the dependency closures of the proc `name`, which is
/// being made: to them it is IDLE, not unknown.
pub(crate) fn being_made(name: &str) -> bool {
    MAKING.with(|m| m.borrow().as_deref() == Some(name))
}

thread_local! {
    /// The scheduler (its address) whose reports this thread is printing, or 0.
    static FLUSHING: Cell<usize> = const { Cell::new(0) };
}

/// Marks this thread as printing a scheduler's reports until dropped (a panic included).
struct Flushing(usize);

impl Flushing {
    fn enter(scheduler: usize) -> Flushing {
        Flushing(FLUSHING.with(|f| f.replace(scheduler)))
    }
}

impl Drop for Flushing {
    fn drop(&mut self) {
        FLUSHING.with(|f| f.set(self.0));
    }
}

thread_local! {
    /// Set when this thread starts a command body (see `Scheduler::start`): the end of
    /// the job that let it start leaves the journal's `- PGID` line to it.
    static STARTED_COMMAND: Cell<bool> = const { Cell::new(false) };
}

/// Owns the run: the core, the worker pool, the runtime handle and the reporter.
pub(crate) struct Scheduler {
    core: Mutex<Core>,
    rt: Handle,
    pool: Pool,
    runner: Mutex<Option<Arc<dyn ClosureRunner>>>,
    reporter: Arc<dyn Reporter>,
    log_root: Mutex<PathBuf>,
    logs: OnceLock<LogDir>,
    kill_grace_ms: AtomicU64,
    interrupts: AtomicUsize,
    /// Set once the script runs its `defer` cleanups (see [`Scheduler::renew_script_cancel`]).
    cleaning: AtomicBool,
    /// Set once a panic (a bug) ended the run.
    internal: AtomicBool,
    /// The message of that panic, when it had one.
    panic: Mutex<Option<String>>,
    /// A dry run: jobs are reported, not started (see [`Scheduler::run_dry`]).
    dry: AtomicBool,
    script_cancel: Mutex<CancellationToken>,
    /// Where commands start: `local`, each checked against `policy` first.
    launcher: Arc<dyn Launcher>,
    /// The run's own launcher; an executor starts its client (`ssh`, `srun`) through it.
    local: Arc<Local>,
    /// What the run may start; checked on every command, here or on an executor.
    policy: Arc<super::policy::Policy>,
    /// The executors of `set_options(#{ executors })`.
    executors: super::executor::Executors,
    /// Report events in the order the core recorded them (see [`Scheduler::flush_reports`]).
    reports: Mutex<Vec<Action>>,
    /// Held while reports are printed, so that two threads never interleave them.
    printing: Mutex<()>,
    /// The run's `--output` mode, for procs without their own `output`.
    output: Mutex<OutputMode>,
    /// Procs started in `grouped` mode: their log is printed when they end.
    grouped: Mutex<HashSet<Arc<str>>>,
    /// `set_options(#{ keep_runs })`: how many runs of history and logs to keep (0: all).
    keep_runs: AtomicU64,
    /// Procs started, against the policy's `max_procs`: each once, however many attempts
    /// or watch cycles run it.
    started: Mutex<HashSet<ProcId>>,
    /// Set when `max_procs` first refused a proc (the run was then interrupted).
    refused_a_proc: AtomicBool,
    /// Told when the run would start more procs than `max_procs` (it is then stopped).
    over_proc_limit: OnceLock<Box<dyn Fn() + Send + Sync>>,
    /// Closure procs whose `timeout` elapsed while their closure still runs: the commands
    /// it ran were ended by their proc, not by an abort of the run.
    timed_out: Mutex<HashSet<ProcId>>,
    /// Where the run's procs are recorded as they start and end, for the history of a
    /// crash (see [`super::crashed::ProcJournal`]); none in a dry run.
    journal: OnceLock<super::crashed::ProcJournal>,
}

impl Scheduler {
    /// A scheduler over `core`, spawning on `rt`, running commands on this machine.
    pub(crate) fn new(
        core: Core,
        rt: Handle,
        reporter: Arc<dyn Reporter>,
        log_root: PathBuf,
        kill_grace: Duration,
    ) -> Arc<Scheduler> {
        Scheduler::with_launcher(
            core,
            rt,
            reporter,
            log_root,
            kill_grace,
            Arc::new(Local::default()),
            Arc::new(super::policy::Policy::default()),
        )
    }

    /// A scheduler whose commands start through `local` (here, or the client of an
    /// executor), each checked against `policy` first.
    pub(crate) fn with_launcher(
        core: Core,
        rt: Handle,
        reporter: Arc<dyn Reporter>,
        log_root: PathBuf,
        kill_grace: Duration,
        local: Arc<Local>,
        policy: Arc<super::policy::Policy>,
    ) -> Arc<Scheduler> {
        let launcher: Arc<dyn Launcher> = Arc::new(Policed::new(policy.clone(), local.clone()));
        let sched = Arc::new(Scheduler {
            core: Mutex::new(core),
            rt,
            pool: Pool::default(),
            runner: Mutex::new(None),
            reporter,
            log_root: Mutex::new(log_root),
            logs: OnceLock::new(),
            kill_grace_ms: AtomicU64::new(millis(kill_grace)),
            interrupts: AtomicUsize::new(0),
            cleaning: AtomicBool::new(false),
            internal: AtomicBool::new(false),
            panic: Mutex::new(None),
            dry: AtomicBool::new(false),
            script_cancel: Mutex::new(CancellationToken::new()),
            launcher,
            local,
            policy,
            executors: Default::default(),
            reports: Mutex::new(Vec::new()),
            printing: Mutex::new(()),
            output: Mutex::new(OutputMode::Log),
            grouped: Mutex::new(HashSet::new()),
            keep_runs: AtomicU64::new(KEEP_RUNS),
            started: Mutex::new(HashSet::new()),
            refused_a_proc: AtomicBool::new(false),
            over_proc_limit: OnceLock::new(),
            timed_out: Mutex::new(HashSet::new()),
            journal: OnceLock::new(),
        });
        // Ctrl-C at an interactive command reached its group only: the run is interrupted
        // before the command's end is reported, so nothing else starts meanwhile.
        let root = lock(&sched.log_root).clone();
        sched.with(|c| c.set_log_root(root));
        let weak = Arc::downgrade(&sched);
        sched.local.on_interrupt(move || {
            if let Some(s) = weak.upgrade() {
                s.interrupt();
            }
        });
        sched
    }

    /// Records the run's procs in its crash journal from now on (once, before anything
    /// is scheduled).
    pub(crate) fn set_journal(&self, journal: super::crashed::ProcJournal) {
        let _ = self.journal.set(journal);
    }

    /// Records in the crash journal that an attempt of proc `name` ended.
    fn journal_ended(&self, name: &str) {
        if let Some(j) = self.journal.get() {
            j.ended(name);
        }
    }

    /// Installs the closure runner (once, before anything is scheduled).
    pub(crate) fn set_runner(&self, runner: Arc<dyn ClosureRunner>) {
        *lock(&self.runner) = Some(runner);
    }

    /// The runtime that runs commands.
    pub(crate) fn runtime(&self) -> &Handle {
        &self.rt
    }

    /// The reporter.
    pub(crate) fn reporter(&self) -> &Arc<dyn Reporter> {
        &self.reporter
    }

    /// The log directory of this run, created when first needed. When the log root cannot
    /// be written, logs go to a fresh directory (`mkdtemp`, mode 0700) under the system's
    /// temporary directory instead: never to a predictable name another user could make.
    pub(crate) fn logs(&self) -> &LogDir {
        self.logs.get_or_init(|| {
            let root = lock(&self.log_root).clone();
            let keep = usize::try_from(self.keep_runs()).unwrap_or(usize::MAX);
            LogDir::create_reusing(&root, keep).unwrap_or_else(|e| self.fallback_logs(&root, &e))
        })
    }

    /// The log directory of a run whose log root cannot be written (`error`): a fresh one
    /// in the temporary directory, with a warning naming both. When that cannot be made
    /// either (a full or read-only disk), the warning says so and the logs stay where they
    /// would have been: each proc that needs one fails, naming its log and the reason.
    fn fallback_logs(&self, root: &Path, error: &std::io::Error) -> LogDir {
        let made = tempfile::Builder::new()
            .prefix("prun-logs-")
            .permissions(std::os::unix::fs::PermissionsExt::from_mode(0o700))
            .tempdir_in(crate::paths::temp_dir())
            .map(tempfile::TempDir::keep)
            .and_then(|dir| LogDir::create(&dir).map(|logs| (dir, logs)));
        let cannot = format!(
            "cannot create log directory under {}: {error}",
            crate::paths::shown(root)
        );
        match made {
            Ok((dir, logs)) => {
                self.reporter
                    .warning(&format!("{cannot}; using {}", dir.display()));
                logs
            }
            Err(e) => {
                self.reporter.warning(&format!(
                    "{cannot}, nor in the temporary directory {}: {e}; every command fails, its log cannot be made",
                    crate::paths::temp_dir().display()
                ));
                LogDir::unmade(root)
            }
        }
    }

    /// Sets where logs go (`set_options(#{ log_dir })`); only before the first log is made.
    pub(crate) fn set_log_root(&self, root: PathBuf) -> Result<(), GraphError> {
        if self.logs.get().is_some() {
            return Err(GraphError::Option(
                "set_options: `log_dir` must be set before the first proc starts".into(),
            ));
        }
        if let Some(why) = crate::paths::why_root_may_not_use(&root) {
            return Err(GraphError::Option(format!(
                "set_options: root keeps no logs in {}: {why}, so another user could swap \
                 its run directories and read what commands print; choose a log_dir only \
                 root can change",
                root.display()
            )));
        }
        lock(&self.core).set_log_root(root.clone());
        *lock(&self.log_root) = root;
        Ok(())
    }

    /// How long a terminated process group gets between SIGTERM and SIGKILL.
    pub(crate) fn kill_grace(&self) -> Duration {
        Duration::from_millis(self.kill_grace_ms.load(Ordering::Relaxed))
    }

    /// Changes the grace period (`set_options(#{ kill_grace })`).
    pub(crate) fn set_kill_grace(&self, grace: Duration) {
        self.kill_grace_ms.store(millis(grace), Ordering::Relaxed);
    }

    /// Sets the run's output mode (`--output`, `set_options(#{ output })`).
    pub(crate) fn set_output(&self, mode: OutputMode) {
        *lock(&self.output) = mode;
    }

    /// How a proc's output is shown: its own `output`, else the run's mode.
    pub(crate) fn output_of(&self, def: &ProcDef) -> OutputMode {
        def.output.unwrap_or_else(|| *lock(&self.output))
    }

    /// The tap that streams a proc's lines, when it runs in `stream` mode.
    pub(crate) fn tap_for(&self, name: &Arc<str>, def: &ProcDef) -> Option<Tap> {
        (self.output_of(def) == OutputMode::Stream)
            .then(|| Tap::new(name.clone(), self.reporter.clone()))
    }

    /// How many runs of history and logs to keep (0: all of them).
    pub(crate) fn keep_runs(&self) -> u64 {
        self.keep_runs.load(Ordering::Relaxed)
    }

    /// Changes how many runs to keep (`set_options(#{ keep_runs })`).
    pub(crate) fn set_keep_runs(&self, n: u64) {
        self.keep_runs.store(n, Ordering::Relaxed);
    }

    /// Removes the log directories of all but the last [`Scheduler::keep_runs`] runs,
    /// this run's included (see [`super::log::prune`]).
    pub(crate) fn prune_logs(&self) {
        let keep = self.keep_runs();
        if keep == 0 {
            return;
        }
        let root = match self.logs.get() {
            // Pruned when it was made (see `LogDir::create_reusing`).
            Some(logs) if logs.kept() == Some(usize::try_from(keep).unwrap_or(usize::MAX)) => {
                return;
            }
            Some(logs) => logs.dir().parent().map(Path::to_path_buf),
            None => Some(lock(&self.log_root).clone()),
        };
        if let Some(root) = root {
            super::log::prune(&root, usize::try_from(keep).unwrap_or(usize::MAX));
        }
    }

    /// Whether the closure proc `id` is being ended because its `timeout` elapsed.
    pub(crate) fn proc_timed_out(&self, id: ProcId) -> bool {
        lock(&self.timed_out).contains(&id)
    }

    /// Fires when the run is interrupted; top-level commands and the script watch it.
    pub(crate) fn script_cancel(&self) -> CancellationToken {
        lock(&self.script_cancel).clone()
    }

    /// Gives the script a fresh cancellation token, for the cleanups that run after an
    /// interrupt; a further Ctrl-C cancels them too. From now on the script runs its
    /// cleanups: a first Ctrl-C lets them finish (they are what it would run).
    pub(crate) fn renew_script_cancel(&self) {
        let fresh = CancellationToken::new();
        *lock(&self.script_cancel) = fresh.clone();
        self.cleaning.store(true, Ordering::SeqCst);
        // A second interrupt that came before the cleanups asked to end them too. Read
        // after the new token is in place: an interrupt that comes later cancels it.
        if self.interrupts.load(Ordering::SeqCst) > 1 {
            fresh.cancel();
        }
    }

    /// What the run may start.
    pub(crate) fn policy(&self) -> &super::policy::Policy {
        &self.policy
    }

    /// Where commands run.
    pub(crate) fn launcher(&self) -> &Arc<dyn Launcher> {
        &self.launcher
    }

    /// Where the commands of the proc `id` (`name`) run: on its executor, which records
    /// where each ran with the proc ([`Core::placed`]), or here.
    pub(crate) fn launcher_for(
        self: &Arc<Self>,
        id: ProcId,
        name: &str,
        def: &crate::graph::ProcDef,
    ) -> Arc<dyn Launcher> {
        let Some(e) = def
            .extras()
            .executor
            .as_deref()
            .and_then(|e| self.executors.get(e))
        else {
            return self.launcher.clone();
        };
        let sched = Arc::downgrade(self);
        let proc = name.to_string();
        let placed = Arc::new(move |place: &str| {
            if let Some(sched) = sched.upgrade() {
                sched.with(|c| c.placed(id, place.to_string()));
                sched.reporter.progress(&proc, &format!("on {place}"));
            }
        });
        let remote = e.launcher(
            name,
            &def.extras().resources,
            placed,
            self.local.clone(),
            self.policy.clone(),
        );
        Arc::new(Policed::new(self.policy.clone(), remote))
    }

    /// Declares an executor (`set_options(#{ executors })`).
    pub(crate) fn declare_executor(
        self: &Arc<Self>,
        name: &str,
        executor: super::executor::Executor,
    ) -> Result<(), GraphError> {
        let (client, args) = executor.client_args();
        self.policy
            .check_client_args(name, client, args)
            .map_err(|r| GraphError::Option(r.to_string()))?;
        let e = self
            .executors
            .declare(name, executor)
            .map_err(|e| GraphError::Option(e.to_string()))?;
        self.with(|c| c.declare_executor(name, e.limit()));
        Ok(())
    }

    /// Where a proc runs and what it needs (see [`super::executor::placement`]).
    pub(crate) fn placement(&self, def: &crate::graph::ProcDef) -> Option<String> {
        let e = def
            .extras()
            .executor
            .as_deref()
            .and_then(|e| self.executors.get(e));
        super::executor::placement(def, e.as_deref())
    }

    /// Ends what executors keep open between commands (at the end of the run).
    pub(crate) fn close_executors(&self) {
        self.executors.close();
    }

    /// Read-only access to the core.
    pub(crate) fn lock(&self) -> MutexGuard<'_, Core> {
        lock(&self.core)
    }

    /// Runs `f` on the core, then carries out the actions it recorded.
    pub(crate) fn with<R>(self: &Arc<Self>, f: impl FnOnce(&mut Core) -> R) -> R {
        let (r, actions) = self.locked(f);
        self.execute(actions);
        r
    }

    /// Runs `f` on the core and queues the reports it recorded; returns the other actions.
    fn locked<R>(&self, f: impl FnOnce(&mut Core) -> R) -> (R, Vec<Action>) {
        let (r, actions) = {
            let mut core = self.lock();
            let r = f(&mut core);
            core.settle();
            let (reports, actions): (Vec<Action>, Vec<Action>) =
                core.take_actions().into_iter().partition(Action::is_report);
            // Queued while the core is locked, so the queue has the core's order.
            lock(&self.reports).extend(reports);
            (r, actions)
        };
        self.flush_reports();
        (r, actions)
    }

    /// Makes this a dry run (`--dry-run`, `prun list`): jobs are reported as what would
    /// run and counted as done; no process starts and no closure body runs.
    pub(crate) fn run_dry(&self) {
        self.dry.store(true, Ordering::SeqCst);
    }

    /// Runs a graph operation (`run`, `create`, a definition, a wait) on the core. When it
    /// needs the values of script closures (dependency or `arg_choices` closures), they
    /// are called on this thread with the lock released, and the operation is retried
    /// with their answers (see [`crate::graph::Need`]). Operations are written to be
    /// retried: they change run state only once nothing is unresolved.
    ///
    /// Called by the API on the script's thread or a closure's worker thread, never on
    /// the async runtime (closures may call `exec()`, which blocks on it).
    pub(crate) fn graph_op<T>(
        self: &Arc<Self>,
        mut f: impl FnMut(&mut Core) -> Result<T, GraphError>,
    ) -> Result<T, GraphError> {
        enum Step<T> {
            Done(Result<T, GraphError>),
            Pending(Needs),
            Flush(Result<T, GraphError>, Needs),
        }
        // The answers this operation asked for, forgotten when it is done (another
        // operation's answers stay: it may be between its answer and its retry).
        let mut answered: Vec<NeedKey> = Vec::new();
        let result = loop {
            let step = self.with(|c| {
                let r = match f(c) {
                    Err(GraphError::Unresolved(needs)) => return Step::Pending(needs),
                    r => r,
                };
                let r = match c.flush_if_script_blocked() {
                    Err(GraphError::Unresolved(needs)) => return Step::Flush(r, needs),
                    flushed => r.and_then(|v| flushed.map(|()| v)),
                };
                forget_answers(c, &answered);
                Step::Done(r)
            });
            match step {
                Step::Done(r) => return r,
                Step::Pending(needs) => self.answer_ahead(needs, &mut answered),
                Step::Flush(r, needs) => {
                    self.answer_ahead(needs, &mut answered);
                    break r;
                }
            }
        };
        // The operation is done; only the flush of `now` procs wants more answers. Its
        // error (the run has ended, a closure failed) is the operation's: the procs it
        // defined cannot be scheduled.
        loop {
            let step = self.with(|c| match c.flush_if_script_blocked() {
                Err(GraphError::Unresolved(needs)) => Err(needs),
                flushed => {
                    forget_answers(c, &answered);
                    Ok(flushed)
                }
            });
            match step {
                Err(needs) => self.answer_ahead(needs, &mut answered),
                Ok(flushed) => return result.and_then(|v| flushed.map(|()| v)),
            }
        }
    }

    /// Answers `needs`, then what making the procs they were for needs in turn, until
    /// that needs nothing more. A chain of procs whose dependency closures each name the
    /// next is so answered level by level from where the last answer left it: retrying
    /// the operation, which walks from its roots, after each level took quadratic time.
    fn answer_ahead(self: &Arc<Self>, mut needs: Needs, answered: &mut Vec<NeedKey>) {
        loop {
            self.answer(&needs, answered);
            let made: Vec<String> = needs
                .0
                .iter()
                .filter_map(|n| match n.key() {
                    NeedKey::Deps(name) => Some(name.clone()),
                    _ => None,
                })
                .collect();
            if made.is_empty() {
                return;
            }
            let next = self.with(|c| {
                let roots: Vec<Root<'_>> = made.iter().map(|n| Root::Name(n)).collect();
                match c.prepare(&roots) {
                    Err(GraphError::Unresolved(next)) => Some(next),
                    _ => None,
                }
            });
            match next {
                Some(next) => needs = next,
                None => return,
            }
        }
    }

    /// Calls the closures of `needs` (user code, so outside the lock) and hands their
    /// answers to the graph.
    fn answer(self: &Arc<Self>, needs: &Needs, answered: &mut Vec<NeedKey>) {
        let answers: Vec<(NeedKey, Answer)> = needs
            .0
            .iter()
            .map(|n| {
                let answer = evaluating_as(n.what(), || making(n.key(), || n.answer()));
                (n.key().clone(), answer)
            })
            .collect();
        answered.extend(answers.iter().map(|(k, _)| k.clone()));
        self.with(|c| {
            for (key, answer) in answers {
                c.graph_mut().answer(key, answer);
            }
        });
    }

    /// Prints the queued report events, in order. Called after every core update, and by
    /// the main thread before the summary: a proc's line is never printed after the
    /// summary, even when the thread that finished it is slow to print.
    ///
    /// A reporter may call back into the scheduler on this thread (an embedder's
    /// `on_event` cancelling the run), which flushes again: that inner flush returns at
    /// once, and this one prints what the callback queued.
    pub(crate) fn flush_reports(&self) {
        let me = self as *const Scheduler as usize;
        if FLUSHING.with(|f| f.get() == me) {
            return;
        }
        let _printing = lock(&self.printing);
        let _flushing = Flushing::enter(me);
        loop {
            let batch = std::mem::take(&mut *lock(&self.reports));
            if batch.is_empty() {
                return;
            }
            self.print(batch);
        }
    }

    /// Prints one batch of report events (see [`Scheduler::flush_reports`]).
    fn print(&self, batch: Vec<Action>) {
        for a in batch {
            match a {
                // A dry run starts nothing.
                Action::Started(_) if self.dry.load(Ordering::SeqCst) => {}
                Action::Started(name) => self.reporter.started(&name),
                Action::WouldRun { name, what } => self.reporter.would_run(&name, &what),
                Action::Retrying {
                    name,
                    attempt,
                    error,
                } => self.reporter.retrying(&name, attempt, &error),
                Action::Finished(f) => {
                    if lock(&self.grouped).remove(&f.name)
                        && let Some(log) = &f.log
                    {
                        self.reporter.group(&f.name, log);
                    }
                    self.reporter.finished(&f);
                }
                _ => {}
            }
        }
        self.reporter.end_batch();
    }

    /// Blocks the calling (non-runtime) thread until a wait is over.
    pub(crate) fn block(&self, rx: mpsc::Receiver<Wake>) -> Wake {
        self.pool
            .blocked(|| rx.recv())
            .unwrap_or(Wake::Aborted(AbortReason::Interrupted))
    }

    /// Ctrl-C or SIGTERM: the first aborts the run (process groups get SIGTERM, then SIGKILL
    /// after the grace period), but lets the `defer` cleanups that already run finish;
    /// another one kills every group at once.
    pub(crate) fn interrupt(self: &Arc<Self>) {
        if self.interrupts.fetch_add(1, Ordering::SeqCst) == 0 {
            if !self.cleaning.load(Ordering::SeqCst) {
                self.script_cancel().cancel();
            }
            self.with(|c| c.abort(AbortReason::Interrupted));
        } else {
            self.script_cancel().cancel();
            self.launcher.kill_all();
        }
    }

    /// A panic (a bug) was caught: the run ends now. Running process groups are
    /// terminated and every waiter wakes, even those waiting for a job that will never
    /// report its end (its thread panicked).
    pub(crate) fn internal_error(self: &Arc<Self>, message: Option<String>) {
        self.end_internally(message, |_| {});
    }

    /// A panic in the body of the running proc `id` (in a native function of the
    /// embedder, say): the run ends as for [`Scheduler::internal_error`], and the proc
    /// fails with the panic in the same step, so that the end of the run, which this
    /// wakes, finds it FAILED rather than RUNNING.
    fn body_panicked(self: &Arc<Self>, id: ProcId, message: Option<String>, log: Option<PathBuf>) {
        let error = format!(
            "internal error: {}",
            message.as_deref().unwrap_or("a panic without a message")
        );
        let outcome = Outcome::Failed {
            error,
            exit_code: None,
        };
        self.end_internally(message, move |c| c.complete(id, outcome, log));
    }

    /// Ends the run for a panic (once), then calls `then` on the core in the same step.
    fn end_internally(self: &Arc<Self>, message: Option<String>, then: impl FnOnce(&mut Core)) {
        if self.internal.swap(true, Ordering::SeqCst) {
            self.with(then);
            return;
        }
        *lock(&self.panic) = message;
        self.script_cancel().cancel();
        self.with(|c| {
            c.abort(AbortReason::Internal);
            then(c);
        });
    }

    /// The message of the panic that ended the run, once one did.
    pub(crate) fn internal_failure(&self) -> Option<String> {
        if !self.internal.load(Ordering::SeqCst) {
            return None;
        }
        let message = internal::first_panic().or_else(|| lock(&self.panic).clone());
        Some(message.unwrap_or_else(|| "a panic".into()))
    }

    /// Runs a task on the async runtime; its panic is an internal error.
    fn spawn(self: &Arc<Self>, task: impl Future<Output = ()> + Send + 'static) {
        self.rt.spawn(Guarded::new(task, Arc::downgrade(self)));
    }

    /// Runs `f` on a worker thread; its panic is an internal error. `f` gets `Err` (on
    /// the submitting thread) when no thread could be started for it: it must then only
    /// report the failure, never run a script closure.
    fn work(self: &Arc<Self>, f: impl FnOnce(Result<(), NoThread>) + Send + 'static) {
        let me = Arc::downgrade(self);
        self.pool
            .submit(move |thread| internal::catching(&me, || f(thread)));
    }

    /// True once the run was interrupted by a signal.
    pub(crate) fn interrupted(&self) -> bool {
        self.interrupts.load(Ordering::SeqCst) > 0
    }

    /// Lets idle worker threads exit.
    pub(crate) fn shutdown(&self) {
        self.pool.close();
        lock(&self.runner).take();
    }

    fn execute(self: &Arc<Self>, mut actions: Vec<Action>) {
        // The dry runner completes its jobs at once; they may make more jobs ready, whose
        // actions are carried out by this loop rather than by recursion (a long chain).
        loop {
            let dry = self.execute_batch(actions);
            if dry.is_empty() {
                return;
            }
            actions = self
                .locked(|c| {
                    for id in dry {
                        c.complete(id, Outcome::WouldRun, None);
                    }
                })
                .1;
        }
    }

    /// Carries out `actions`; returns the jobs a dry run completes without starting them.
    fn execute_batch(self: &Arc<Self>, actions: Vec<Action>) -> Vec<ProcId> {
        let dry = self.dry.load(Ordering::SeqCst);
        let mut would_run = Vec::new();
        for a in actions {
            match a {
                Action::Start(job) if dry => {
                    let mut what = would_run_text(&job);
                    if let Some(p) = self.placement(&job.def) {
                        what.push_str(&format!("  [{p}]"));
                    }
                    lock(&self.reports).push(Action::WouldRun {
                        name: job.name.clone(),
                        what,
                    });
                    would_run.push(job.id);
                }
                Action::Start(job) => self.start(*job),
                Action::Wake(tx, why) => {
                    let _ = tx.send(why);
                }
                Action::Retry { id, delay } => {
                    let me = self.clone();
                    self.spawn(async move {
                        tokio::time::sleep(delay).await;
                        me.with(|c| c.retry_due(id));
                    });
                }
                Action::Cancel(token) => token.cancel(),
                Action::Judge(batch) => {
                    let me = self.clone();
                    self.work(move |thread| {
                        let verdicts: Vec<(ProcId, Judgement)> = match thread {
                            Ok(()) => evaluating_as("an inputs or outputs closure", || {
                                freshness::judge_all(&batch)
                            }),
                            Err(e) => batch
                                .iter()
                                .map(|s| (s.id, Judgement::Failed(e.to_string())))
                                .collect(),
                        };
                        Pool::finishing(|| me.with(|c| c.judged_all(verdicts)));
                    });
                }
                Action::OpenCache {
                    open: CacheOpener::Then(then),
                    generation,
                } => {
                    // Taken on the DB's thread, or here when it is open already.
                    let me = self.clone();
                    then(Box::new(move |cache| {
                        internal::catching(&Arc::downgrade(&me), || {
                            let cache = cache.map(|c| c.under(me.policy.fingerprint_text()));
                            me.with(|c| c.cache_opened(generation, cache));
                        });
                    }));
                }
                Action::OpenCache {
                    open: CacheOpener::Here(open),
                    generation,
                } => {
                    // Opening may create the file or wait for SQLite: a worker thread,
                    // never the lock or the async runtime.
                    let me = self.clone();
                    // Without a thread (at the thread limit) it is opened here: no user
                    // code runs in it.
                    self.work(move |_| {
                        let cache = open().map(|c| c.under(me.policy.fingerprint_text()));
                        me.with(|c| c.cache_opened(generation, cache));
                    });
                }
                Action::Started(_)
                | Action::WouldRun { .. }
                | Action::Retrying { .. }
                | Action::Finished(_) => {}
            }
        }
        if !would_run.is_empty() {
            self.flush_reports();
        }
        would_run
    }

    /// Calls `f` (once) when the run would start more procs than the policy's
    /// `max_procs`: the proc past the limit does not start, and the run is interrupted
    /// before it ends, as a cancel interrupts it.
    pub(crate) fn on_over_proc_limit(&self, f: Box<dyn Fn() + Send + Sync>) {
        let _ = self.over_proc_limit.set(f);
    }

    /// Counts the proc of `job` against the policy's `max_procs`, the first time it
    /// starts (not a retry, nor its re-run in a later watch cycle); past the limit, why it
    /// must not start, at any attempt (the first time, the run is interrupted first, so
    /// that the failure of this proc is not what ends it).
    fn over_proc_limit(self: &Arc<Self>, job: &JobSpec) -> Option<String> {
        let max = self.policy.proc_limit()?;
        {
            let mut started = lock(&self.started);
            if started.contains(&job.id) {
                return None;
            }
            if started.len() < max {
                started.insert(job.id);
                return None;
            }
        }
        if !self.refused_a_proc.swap(true, Ordering::SeqCst) {
            if let Some(told) = self.over_proc_limit.get() {
                told();
            }
            self.interrupt();
        }
        Some(format!(
            "not started: the policy allows at most {max} procs (max_procs)"
        ))
    }

    fn start(self: &Arc<Self>, job: JobSpec) {
        let log = self.logs().path_for(&job.name);
        if let Some(error) = self.over_proc_limit(&job) {
            let outcome = Outcome::Failed {
                error,
                exit_code: None,
            };
            self.finish(job.id, outcome, log.exists().then_some(log), None);
            return;
        }
        if job.cycle > 0 && job.attempt == 1 {
            // A watch is one run, with one log directory: a cycle's log is of that cycle
            // only, as a run's is, not the earlier cycles' with this one's after them.
            let _ = std::fs::remove_file(&log);
        }
        let cancel = job.cancel.child_token();
        let me = self.clone();
        // An interactive proc has the terminal to itself until it ends (the core starts
        // nothing else meanwhile): the live display steps aside.
        let paused = job
            .def
            .interactive
            .then(|| Paused::new(self.reporter.clone()));
        if !job.def.interactive && self.output_of(&job.def) == OutputMode::Grouped {
            lock(&self.grouped).insert(job.name.clone());
        }
        let launch = job::command_launch(&job, self.kill_grace());
        if let Some(j) = self.journal.get() {
            // A command body's line goes out with its group's, in one write.
            j.started(&job.name, job.cycle, &log, launch.is_some());
        }
        if let Some(mut launch) = launch {
            if job.def.interactive {
                launch.stdin = Input::Inherit;
                launch.stdout = Sink::Inherit;
                launch.stderr = Sink::Inherit;
            } else if let Some(tap) = self.tap_for(&job.name, &job.def) {
                launch.stdout = Sink::Log;
                launch.stderr = Sink::Log;
                launch.tap = Some(tap);
            }
            self.reporter.command(Some(&job.name), &launch);
            STARTED_COMMAND.with(|s| s.set(true));
            let (id, attempt) = (job.id, job.attempt);
            self.spawn(async move {
                let launcher = me.launcher_for(job.id, &job.name, &job.def);
                let logs = me.logs();
                let (outcome, kept) =
                    job::run_command_body(&*launcher, launch, cancel, logs, &log, attempt).await;
                drop(paused);
                let log = kept.then_some(log);
                if job.def.outputs.is_empty() || !matches!(outcome, Outcome::Success(_)) {
                    STARTED_COMMAND.with(|s| s.set(false));
                    me.journal_ended(&job.name);
                    me.with(|c| c.complete(id, outcome, log));
                    // The journal's record that this job's group is gone goes out with
                    // the start of a command body this end let start (or with that
                    // one's own end, when it could not start), or now.
                    if !STARTED_COMMAND.with(|s| s.replace(false)) {
                        super::crashed::write_gone();
                    }
                    return;
                }
                // Checking outputs calls closures and stats files: not on the runtime.
                me.clone().work(move |thread| {
                    let (outcome, outputs) = match thread {
                        Ok(()) => cancelled_by(&job.cancel, || checked(&job, outcome)),
                        Err(error) => (
                            Outcome::Failed {
                                error: error.to_string(),
                                exit_code: None,
                            },
                            None,
                        ),
                    };
                    me.journal_ended(&job.name);
                    Pool::finishing(|| me.finish(id, outcome, log, outputs));
                    super::crashed::write_gone();
                });
            });
            return;
        }
        let timed_out = Arc::new(AtomicBool::new(false));
        if let Some(limit) = job.def.extras().timeout {
            let (cancel, timed_out, me, id) =
                (cancel.clone(), timed_out.clone(), self.clone(), job.id);
            self.spawn(async move {
                tokio::select! {
                    () = tokio::time::sleep(limit) => {
                        timed_out.store(true, Ordering::SeqCst);
                        lock(&me.timed_out).insert(id);
                        cancel.cancel();
                        me.with(|c| c.cancel_wait(id, "timed out"));
                    }
                    () = cancel.cancelled() => {}
                }
            });
        }
        let Some(runner) = lock(&self.runner).clone() else {
            let outcome = Outcome::Failed {
                error: "no closure runner is installed".into(),
                exit_code: None,
            };
            self.journal_ended(&job.name);
            self.finish(job.id, outcome, log.exists().then_some(log), None);
            return;
        };
        self.work(move |thread| {
            let mut outcome = match thread {
                Ok(()) => {
                    match catch_unwind(AssertUnwindSafe(|| runner.run(&job, &cancel, &log))) {
                        Ok(outcome) => outcome,
                        Err(payload) => {
                            cancel.cancel();
                            let log = log.exists().then_some(log);
                            me.journal_ended(&job.name);
                            me.body_panicked(job.id, internal::message_of(&*payload), log);
                            return;
                        }
                    }
                }
                Err(error) => Outcome::Failed {
                    error: error.to_string(),
                    exit_code: None,
                },
            };
            drop(paused);
            cancel.cancel();
            lock(&me.timed_out).remove(&job.id);
            if timed_out.load(Ordering::SeqCst) {
                let limit = job.def.extras().timeout.unwrap_or_default();
                outcome = Outcome::Failed {
                    error: format!("timed out after {}", humantime::format_duration(limit)),
                    exit_code: None,
                };
            }
            let (outcome, outputs) = cancelled_by(&job.cancel, || checked(&job, outcome));
            let log = log.exists().then_some(log);
            me.journal_ended(&job.name);
            Pool::finishing(|| me.finish(job.id, outcome, log, outputs));
            super::crashed::write_gone();
        });
    }

    /// A job's end: its outcome, its log if any, and the stamp of its declared outputs as
    /// it left them (see [`Core::outputs_read`]).
    fn finish(
        self: &Arc<Self>,
        id: ProcId,
        outcome: Outcome,
        log: Option<PathBuf>,
        outputs: Option<String>,
    ) {
        self.with(|c| {
            c.outputs_read(id, outputs);
            c.complete(id, outcome, log);
        });
    }
}

/// How many runs of history and logs are kept unless `set_options(#{ keep_runs })` says.
pub(super) const KEEP_RUNS: u64 = 100;

/// Keeps the display paused while an interactive proc runs; resumes it when dropped.
struct Paused(Arc<dyn Reporter>);

impl Paused {
    fn new(reporter: Arc<dyn Reporter>) -> Paused {
        reporter.pause();
        Paused(reporter)
    }
}

impl Drop for Paused {
    fn drop(&mut self) {
        self.0.resume();
    }
}

/// A grace period in whole milliseconds, as the scheduler keeps it; one longer than that
/// holds (`kill_grace: "18446744073709552s"`) is the longest it holds, never cut to the
/// bits that fit (that one was 384 ms).
fn millis(grace: Duration) -> u64 {
    u64::try_from(grace.as_millis()).unwrap_or(u64::MAX)
}

/// What a dry run says a job would run: its command line, or where its closure is.
fn would_run_text(job: &JobSpec) -> String {
    match (&job.def.body, job::command_of(&job.def, &job.args)) {
        (Body::Closure(cb), _) => format!("(closure at {})", cb.origin()),
        (_, Some(cmd)) => cmd.to_string(),
        (_, None) => String::new(),
    }
}

/// A successful outcome after checking the job's declared outputs: a missing or stale
/// output fails the proc, which keeps the result its body returned. Also the stamp of the
/// outputs as the job left them, saved with its result (after `skip` or `no_change` too).
fn checked(job: &JobSpec, outcome: Outcome) -> (Outcome, Option<String>) {
    if job.def.outputs.is_empty() {
        return (outcome, None);
    }
    let node = job.node();
    match outcome {
        Outcome::Success(result) => {
            let check = evaluating_as("an inputs or outputs closure", || {
                freshness::check_outputs(&node, &job.params)
            });
            match check {
                Ok(stamp) => (Outcome::Success(result), stamp),
                Err(e) => (
                    Outcome::OutputsFailed {
                        result,
                        error: e.to_string(),
                    },
                    None,
                ),
            }
        }
        skipped @ Outcome::Skipped { .. } => {
            let stamp = evaluating_as("an inputs or outputs closure", || {
                freshness::outputs_stamp(&node, &job.params)
            });
            (skipped, stamp)
        }
        other => (other, None),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Weak;

    use rhai::{Dynamic, EvalAltResult};

    use super::*;
    use crate::diag::Origin;
    use crate::exec::{CoreOptions, State};
    use crate::graph::{Body, Callable, ProcDef};

    struct Noop;

    impl Callable for Noop {
        fn call(&self, _: Dynamic, _: &[String]) -> Result<Dynamic, Box<EvalAltResult>> {
            Ok(Dynamic::UNIT)
        }
        fn origin(&self) -> Origin {
            Origin::from("test")
        }
        fn identity(&self) -> String {
            String::new()
        }
    }

    /// A closure runner with a bug: it panics, optionally while holding the core's lock.
    struct Panics {
        under_lock: Option<Weak<Scheduler>>,
    }

    impl ClosureRunner for Panics {
        fn run(&self, _: &JobSpec, _: &CancellationToken, _: &Path) -> Outcome {
            if let Some(s) = self.under_lock.as_ref().and_then(Weak::upgrade) {
                s.with(|_| panic!("a bug under the lock"));
            }
            panic!("a bug in a job");
        }
    }

    fn scheduler(rt: &tokio::runtime::Runtime, dir: &Path) -> Arc<Scheduler> {
        let core = Core::new(CoreOptions {
            parallel: 2,
            allow_missing_deps: false,
            fail_fast: false,
        });
        let reporter: Arc<dyn Reporter> = Arc::new(crate::ui::Silent);
        Scheduler::new(
            core,
            rt.handle().clone(),
            reporter,
            dir.to_path_buf(),
            Duration::from_secs(1),
        )
    }

    /// A one-worker runtime for a test scheduler.
    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("runtime")
    }

    /// Runs one closure proc whose runner panics, and returns how the wait for it ended.
    fn run_a_panicking_job(under_lock: bool) -> (Arc<Scheduler>, ProcId, Wake) {
        let rt = runtime();
        let dir = tempfile::tempdir().expect("tempdir");
        let sched = scheduler(&rt, dir.path());
        let under_lock = under_lock.then(|| Arc::downgrade(&sched));
        sched.set_runner(Arc::new(Panics { under_lock }));
        let mut def = Arc::new(ProcDef::new(
            Body::Closure(Arc::new(Noop)),
            Origin::from("test"),
        ));
        let id = sched.graph_op(|c| c.define_proc("boom", &mut def));
        let id = id.expect("defined");
        // One operation: the job starts only once the wait is registered.
        let rx = sched.graph_op(|c| {
            c.start(&[id])?;
            c.wait_all()
        });
        let rx = rx.expect("started");
        let rx = rx.expect("the job is running");
        let wake = rx
            .recv_timeout(Duration::from_secs(10))
            .expect("the run ended instead of hanging");
        (sched, id, wake)
    }

    #[test]
    fn the_dry_runner_counts_a_long_chain_done_without_starting_anything() {
        let rt = runtime();
        let dir = tempfile::tempdir().expect("tempdir");
        let sched = scheduler(&rt, dir.path());
        sched.run_dry();
        let n = 20_000;
        let rx = sched.graph_op(|c| {
            for i in 0..n {
                let mut def = ProcDef::new(
                    Body::Cmd(["false"].into_iter().collect()),
                    Origin::from("t"),
                );
                if i > 0 {
                    def.deps = vec![crate::graph::DepSpec::Name(format!("p{}", i - 1))].into();
                }
                c.define_proc(format!("p{i}"), &mut Arc::new(def))?;
            }
            let last = c.graph().lookup(&format!("p{}", n - 1)).expect("defined");
            c.start(&[last])?;
            c.wait_all()
        });
        let rx = rx.expect("scheduled").expect("a wait");
        let wake = rx.recv_timeout(Duration::from_secs(10));
        assert_eq!(wake, Ok(Wake::Done));
        assert_eq!(sched.lock().would_run_count(), n);
        assert!(
            sched
                .lock()
                .scheduled()
                .all(|s| s.state == State::Succeeded)
        );
    }

    #[test]
    fn a_panicking_job_ends_the_run_with_an_internal_error() {
        let (sched, id, wake) = run_a_panicking_job(false);
        assert_eq!(wake, Wake::Aborted(AbortReason::Internal));
        assert!(sched.internal_failure().is_some());
        // The job whose body panicked failed with it (it is not left RUNNING).
        assert_eq!(sched.lock().state(id), State::Failed);
        assert!(sched.graph_op(|c| c.wait_all()).expect("waits").is_none());
    }

    #[test]
    fn a_panic_under_the_lock_leaves_the_core_usable_to_end_the_run() {
        let (sched, id, wake) = run_a_panicking_job(true);
        assert_eq!(wake, Wake::Aborted(AbortReason::Internal));
        assert_eq!(sched.lock().aborted(), Some(AbortReason::Internal));
        assert_eq!(sched.lock().state(id), State::Failed);
    }
}

//! The [`Scheduler`]: the [`Core`] behind a lock, and the executor of the actions it
//! records — starting jobs, waking waiters, arming retry timers, reporting.
//!
//! The lock is held only while the core updates its counters; jobs are started, waiters
//! woken and lines printed after it is released, so a slow terminal or a slow `fork` never
//! blocks another thread's bookkeeping.

use std::cell::Cell;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, mpsc};
use std::time::Duration;

use tokio::runtime::Handle;
use tokio_util::sync::CancellationToken;

use super::core::{AbortReason, Action, Core, JobSpec, Wake};
use super::job;
use super::launch::{Launcher, Local};
use super::log::LogDir;
use super::pool::Pool;
use super::state::Outcome;
use super::unix;
use crate::graph::ProcId;
use crate::ui::Reporter;

/// Runs closure bodies; implemented by the script host, which owns the Rhai engine.
pub trait ClosureRunner: Send + Sync {
    /// Runs one attempt of a closure job on the current (worker) thread. `cancel` fires on
    /// timeout or abort; `log` is the proc's log file (created on first write).
    fn run(&self, job: &JobSpec, cancel: &CancellationToken, log: &Path) -> Outcome;
}

thread_local! {
    /// Set while this thread holds the core's lock, to refuse re-entrant calls from
    /// script closures evaluated under it (dependency and arg_choices closures).
    static IN_CORE: Cell<bool> = const { Cell::new(false) };
}

/// Owns the run: the core, the worker pool, the runtime handle and the reporter.
pub struct Scheduler {
    core: Mutex<Core>,
    rt: Handle,
    pool: Pool,
    runner: Mutex<Option<Arc<dyn ClosureRunner>>>,
    reporter: Arc<dyn Reporter>,
    log_root: Mutex<PathBuf>,
    logs: OnceLock<LogDir>,
    kill_grace_ms: AtomicU64,
    interrupts: AtomicUsize,
    script_cancel: Mutex<CancellationToken>,
    launcher: Arc<dyn Launcher>,
    /// Report events in the order the core recorded them (see [`Scheduler::flush_reports`]).
    reports: Mutex<Vec<Action>>,
    /// Held while reports are printed, so that two threads never interleave them.
    printing: Mutex<()>,
}

impl Scheduler {
    /// A scheduler over `core`, spawning on `rt`.
    pub fn new(
        core: Core,
        rt: Handle,
        reporter: Arc<dyn Reporter>,
        log_root: PathBuf,
        kill_grace: Duration,
    ) -> Arc<Scheduler> {
        Arc::new(Scheduler {
            core: Mutex::new(core),
            rt,
            pool: Pool::default(),
            runner: Mutex::new(None),
            reporter,
            log_root: Mutex::new(log_root),
            logs: OnceLock::new(),
            kill_grace_ms: AtomicU64::new(kill_grace.as_millis() as u64),
            interrupts: AtomicUsize::new(0),
            script_cancel: Mutex::new(CancellationToken::new()),
            launcher: Arc::new(Local),
            reports: Mutex::new(Vec::new()),
            printing: Mutex::new(()),
        })
    }

    /// Installs the closure runner (once, before anything is scheduled).
    pub fn set_runner(&self, runner: Arc<dyn ClosureRunner>) {
        *self.runner.lock().expect("runner") = Some(runner);
    }

    /// The runtime that runs commands.
    pub fn runtime(&self) -> &Handle {
        &self.rt
    }

    /// The reporter.
    pub fn reporter(&self) -> &Arc<dyn Reporter> {
        &self.reporter
    }

    /// The log directory of this run, created when first needed. When the log root cannot
    /// be written, logs go to a fresh directory (`mkdtemp`, mode 0700) under the system's
    /// temporary directory instead: never to a predictable name another user could make.
    pub fn logs(&self) -> &LogDir {
        self.logs.get_or_init(|| {
            let root = self.log_root.lock().expect("log root").clone();
            LogDir::create(&root).unwrap_or_else(|e| {
                let fallback = tempfile::Builder::new()
                    .prefix("prun-logs-")
                    .permissions(std::os::unix::fs::PermissionsExt::from_mode(0o700))
                    .tempdir()
                    .expect("failed to create a log directory in the temporary directory")
                    .keep();
                self.reporter.warning(&format!(
                    "cannot create log directory under {}: {e}; using {}",
                    root.display(),
                    fallback.display()
                ));
                LogDir::create(&fallback)
                    .expect("failed to create a log directory in the temporary directory")
            })
        })
    }

    /// Sets where logs go (`set_options(#{ log_dir })`); only before the first log is made.
    pub fn set_log_root(&self, root: PathBuf) -> Result<(), String> {
        if self.logs.get().is_some() {
            return Err("set_options: `log_dir` must be set before the first proc starts".into());
        }
        *self.log_root.lock().expect("log root") = root;
        Ok(())
    }

    /// True while this thread is inside [`Scheduler::with`].
    pub fn in_core() -> bool {
        IN_CORE.with(Cell::get)
    }

    /// How long a terminated process group gets between SIGTERM and SIGKILL.
    pub fn kill_grace(&self) -> Duration {
        Duration::from_millis(self.kill_grace_ms.load(Ordering::Relaxed))
    }

    /// Changes the grace period (`set_options(#{ kill_grace })`).
    pub fn set_kill_grace(&self, grace: Duration) {
        self.kill_grace_ms
            .store(grace.as_millis() as u64, Ordering::Relaxed);
    }

    /// Fires when the run is interrupted; top-level commands and the script watch it.
    pub fn script_cancel(&self) -> CancellationToken {
        self.script_cancel.lock().expect("script cancel").clone()
    }

    /// Gives the script a fresh cancellation token, for the cleanups that run after an
    /// interrupt; a further Ctrl-C cancels them too.
    pub fn renew_script_cancel(&self) {
        *self.script_cancel.lock().expect("script cancel") = CancellationToken::new();
    }

    /// Where commands run.
    pub fn launcher(&self) -> &Arc<dyn Launcher> {
        &self.launcher
    }

    /// Read-only access to the core.
    pub fn lock(&self) -> MutexGuard<'_, Core> {
        self.core.lock().expect("scheduler core")
    }

    /// Runs `f` on the core, then carries out the actions it recorded.
    pub fn with<R>(self: &Arc<Self>, f: impl FnOnce(&mut Core) -> R) -> R {
        let (r, actions) = {
            let mut core = self.lock();
            IN_CORE.with(|c| c.set(true));
            let r = f(&mut core);
            core.settle();
            IN_CORE.with(|c| c.set(false));
            let (reports, actions): (Vec<Action>, Vec<Action>) =
                core.take_actions().into_iter().partition(Action::is_report);
            // Queued while the core is locked, so the queue has the core's order.
            self.reports.lock().expect("reports").extend(reports);
            (r, actions)
        };
        self.flush_reports();
        self.execute(actions);
        r
    }

    /// Prints the queued report events, in order. Called after every core update, and by
    /// the main thread before the summary: a proc's line is never printed after the
    /// summary, even when the thread that finished it is slow to print.
    pub fn flush_reports(&self) {
        let _printing = self.printing.lock().expect("printing");
        let batch = std::mem::take(&mut *self.reports.lock().expect("reports"));
        for a in batch {
            match a {
                Action::Started(name) => self.reporter.started(&name),
                Action::WouldRun { name, what } => self.reporter.would_run(&name, &what),
                Action::Retrying {
                    name,
                    attempt,
                    error,
                } => self.reporter.retrying(&name, attempt, &error),
                Action::Finished(f) => self.reporter.finished(&f),
                _ => {}
            }
        }
    }

    /// Blocks the calling (non-runtime) thread until a wait is over.
    pub fn block(&self, rx: mpsc::Receiver<Wake>) -> Wake {
        self.pool
            .blocked(|| rx.recv())
            .unwrap_or(Wake::Aborted(AbortReason::Interrupted))
    }

    /// Ctrl-C or SIGTERM: the first aborts the run (process groups get SIGTERM, then SIGKILL
    /// after the grace period); another one kills every group at once.
    pub fn interrupt(self: &Arc<Self>) {
        if self.interrupts.fetch_add(1, Ordering::SeqCst) == 0 {
            self.script_cancel().cancel();
            self.with(|c| c.abort(AbortReason::Interrupted));
        } else {
            self.script_cancel().cancel();
            unix::kill_all_groups();
        }
    }

    /// True once the run was interrupted by a signal.
    pub fn interrupted(&self) -> bool {
        self.interrupts.load(Ordering::SeqCst) > 0
    }

    /// Lets idle worker threads exit.
    pub fn shutdown(&self) {
        self.pool.close();
        self.runner.lock().expect("runner").take();
    }

    fn execute(self: &Arc<Self>, actions: Vec<Action>) {
        for a in actions {
            match a {
                Action::Start(job) => self.start(*job),
                Action::Wake(tx, why) => {
                    let _ = tx.send(why);
                }
                Action::Retry { id, delay } => {
                    let me = self.clone();
                    self.rt.spawn(async move {
                        tokio::time::sleep(delay).await;
                        me.with(|c| c.retry_due(id));
                    });
                }
                Action::Cancel(token) => token.cancel(),
                Action::Started(_)
                | Action::WouldRun { .. }
                | Action::Retrying { .. }
                | Action::Finished(_) => {}
            }
        }
    }

    fn start(self: &Arc<Self>, job: JobSpec) {
        let log = self.logs().path_for(&job.name);
        let cancel = job.cancel.child_token();
        let me = self.clone();
        if let Some(launch) = job::command_launch(&job, self.kill_grace()) {
            self.reporter.command(Some(&job.name), &launch.to_string());
            let (id, attempt) = (job.id, job.attempt);
            self.rt.spawn(async move {
                let launcher = me.launcher.clone();
                let logs = me.logs();
                let (outcome, kept) =
                    job::run_command_body(&*launcher, launch, cancel, logs, &log, attempt).await;
                me.with(|c| c.complete(id, outcome, kept.then_some(log)));
            });
            return;
        }
        let timed_out = Arc::new(AtomicBool::new(false));
        if let Some(limit) = job.def.timeout {
            let (cancel, timed_out, me, id) =
                (cancel.clone(), timed_out.clone(), self.clone(), job.id);
            self.rt.spawn(async move {
                tokio::select! {
                    () = tokio::time::sleep(limit) => {
                        timed_out.store(true, Ordering::SeqCst);
                        cancel.cancel();
                        me.with(|c| c.cancel_wait(id, "timed out"));
                    }
                    () = cancel.cancelled() => {}
                }
            });
        }
        let Some(runner) = self.runner.lock().expect("runner").clone() else {
            let outcome = Outcome::Failed {
                error: "no closure runner is installed".into(),
                exit_code: None,
            };
            self.finish(job.id, outcome, log);
            return;
        };
        self.pool.submit(move |thread| {
            let mut outcome = match thread {
                Ok(()) => runner.run(&job, &cancel, &log),
                Err(error) => Outcome::Failed {
                    error,
                    exit_code: None,
                },
            };
            cancel.cancel();
            if timed_out.load(Ordering::SeqCst) {
                let limit = job.def.timeout.unwrap_or_default();
                outcome = Outcome::Failed {
                    error: format!("timed out after {}", humantime::format_duration(limit)),
                    exit_code: None,
                };
            }
            Pool::finishing(|| me.finish(job.id, outcome, log));
        });
    }

    fn finish(self: &Arc<Self>, id: ProcId, outcome: Outcome, log: PathBuf) {
        let log = log.exists().then_some(log);
        self.with(|c| c.complete(id, outcome, log));
    }
}

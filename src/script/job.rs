//! The proc a worker thread is running, for the API functions called from its closure.

use std::cell::{Cell, RefCell};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio_util::sync::CancellationToken;

use crate::exec::Scheduler;
use crate::graph::{ProcDef, ProcId};

/// What the API needs to know about the proc whose closure runs on this thread.
#[derive(Clone)]
pub(super) struct JobCtx {
    pub id: ProcId,
    pub name: Arc<str>,
    pub def: Arc<ProcDef>,
    pub cancel: CancellationToken,
    pub log: PathBuf,
}

thread_local! {
    static CURRENT: RefCell<Option<JobCtx>> = const { RefCell::new(None) };
    /// Whether the body running on this thread did something no cached result can stand
    /// for (see [`unrepeatable`]).
    static UNREPEATABLE: Cell<bool> = const { Cell::new(false) };
    /// Which run of a body this is (see [`body_run`]).
    static BODY_RUN: Cell<u64> = const { Cell::new(0) };
}

/// The number of the next run of a body.
static NEXT_BODY_RUN: AtomicU64 = AtomicU64::new(1);

/// Runs `f` with `job` as the current job of this thread; also says whether the body
/// called something that makes its result [`unrepeatable`] (however it got there: its
/// own code, a script or module function, a closure it called, `eval`).
pub(super) fn with_job<R>(job: JobCtx, f: impl FnOnce() -> R) -> (R, bool) {
    struct Reset;
    impl Drop for Reset {
        fn drop(&mut self) {
            CURRENT.with(|c| c.borrow_mut().take());
            UNREPEATABLE.set(false);
        }
    }
    CURRENT.with(|c| *c.borrow_mut() = Some(job));
    UNREPEATABLE.set(false);
    BODY_RUN.set(NEXT_BODY_RUN.fetch_add(1, Ordering::Relaxed));
    let _reset = Reset;
    let r = f();
    (r, UNREPEATABLE.get())
}

/// Marks the result of the body running on this thread, if any, as one the task DB must
/// not keep: the body read or scheduled other procs (whose results are in no
/// fingerprint), set the params, or made something that lasts only until the script ends
/// (`tempdir()`, `defer`). Called by those functions themselves, so that no way of
/// reaching them is missed; outside a body (the top level, an `inputs` closure) it does
/// nothing.
pub(super) fn unrepeatable() {
    if CURRENT.with(|c| c.borrow().is_some()) {
        UNREPEATABLE.set(true);
    }
}

/// The proc whose body runs on this thread and which run of a body this is (each
/// attempt of a retried proc, each watch cycle, is another), if a body runs on it.
pub(super) fn body_run() -> Option<(ProcId, u64)> {
    CURRENT.with(|c| c.borrow().as_ref().map(|j| (j.id, BODY_RUN.get())))
}

/// The current job of this thread, if a closure body is running on it.
pub(super) fn current() -> Option<JobCtx> {
    CURRENT.with(|c| c.borrow().clone())
}

/// What ends the commands and sleeps asked for on this thread: its proc's timeout or an
/// abort in a body, an abort that ends the jobs in the `inputs` or `outputs` closures of
/// a proc (`exec::cancelled_by`), else what ends the script's own (Ctrl-C).
pub(super) fn cancel_token(sched: &Scheduler) -> CancellationToken {
    current()
        .map(|j| j.cancel)
        .or_else(crate::exec::closure_cancel)
        .unwrap_or_else(|| sched.script_cancel())
}

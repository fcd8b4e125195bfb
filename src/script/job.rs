//! The proc a worker thread is running, for the API functions called from its closure.

use std::cell::RefCell;
use std::path::PathBuf;
use std::sync::Arc;

use tokio_util::sync::CancellationToken;

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
}

/// Runs `f` with `job` as the current job of this thread.
pub(super) fn with_job<R>(job: JobCtx, f: impl FnOnce() -> R) -> R {
    struct Reset;
    impl Drop for Reset {
        fn drop(&mut self) {
            CURRENT.with(|c| c.borrow_mut().take());
        }
    }
    CURRENT.with(|c| *c.borrow_mut() = Some(job));
    let _reset = Reset;
    f()
}

/// The current job of this thread, if a closure body is running on it.
pub(super) fn current() -> Option<JobCtx> {
    CURRENT.with(|c| c.borrow().clone())
}

/// True when the current job was cancelled (timeout or abort).
pub(super) fn cancelled() -> Option<bool> {
    CURRENT.with(|c| c.borrow().as_ref().map(|j| j.cancel.is_cancelled()))
}

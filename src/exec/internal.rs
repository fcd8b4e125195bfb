//! Bugs: a panic anywhere ends the run cleanly instead of hanging it.
//!
//! A panic on a worker thread would leave its job unfinished forever, and one on the async
//! runtime would lose a command's end: either way the run would wait for ever. So every
//! piece of work the scheduler hands to another thread runs under [`catching`] (closures
//! and judging on the pool) or inside [`Guarded`] (tasks on the runtime), and the main
//! thread catches its own. A caught panic calls `Scheduler::internal_error`: the run is
//! aborted (process groups terminated), every waiter wakes, the script's cleanups run, and
//! prun exits with status 2 and `prun: internal error: <message> at <file:line>`.
//!
//! Locks are taken without caring about poisoning (see [`lock`]): after a panic the state
//! behind them is only read to end the run, and refusing it would turn one bug into a hang.

use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::sync::{Mutex, MutexGuard, PoisonError, Weak};
use std::task::{Context, Poll};

use super::scheduler::Scheduler;

/// The first panic of the process, as "message at file:line".
static FIRST_PANIC: Mutex<Option<String>> = Mutex::new(None);

/// Locks `m` even when a panic poisoned it.
pub(super) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Replaces Rust's panic message (a backtrace on stderr) with a record of the first panic,
/// which the run reports once it has ended cleanly. The hook is the process's: only the
/// binary installs it. A library run reports a panic's message without its place.
pub(crate) fn install_hook() {
    std::panic::set_hook(Box::new(|info| {
        let message =
            message_of(info.payload()).unwrap_or_else(|| "a panic without a message".into());
        let text = match info.location() {
            Some(l) => format!("{message} at {}:{}", l.file(), l.line()),
            None => message,
        };
        lock(&FIRST_PANIC).get_or_insert(text);
    }));
}

/// The first panic recorded by the hook, if any.
pub(super) fn first_panic() -> Option<String> {
    lock(&FIRST_PANIC).clone()
}

/// The message a panic was raised with (its payload, when it is text).
pub(crate) fn message_of(payload: &(dyn std::any::Any + Send)) -> Option<String> {
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
}

/// Runs `f`; a panic in it is reported to `sched` as an internal error.
pub(super) fn catching(sched: &Weak<Scheduler>, f: impl FnOnce()) {
    if let Err(payload) = catch_unwind(AssertUnwindSafe(f))
        && let Some(s) = sched.upgrade()
    {
        s.internal_error(message_of(&*payload));
    }
}

/// A runtime task whose panic is reported to the scheduler as an internal error.
pub(super) struct Guarded<F> {
    inner: Pin<Box<F>>,
    sched: Weak<Scheduler>,
}

impl<F: Future<Output = ()>> Guarded<F> {
    /// Guards `inner`.
    pub(super) fn new(inner: F, sched: Weak<Scheduler>) -> Guarded<F> {
        Guarded {
            inner: Box::pin(inner),
            sched,
        }
    }
}

impl<F: Future<Output = ()>> Future for Guarded<F> {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = &mut *self;
        match catch_unwind(AssertUnwindSafe(|| this.inner.as_mut().poll(cx))) {
            Ok(p) => p,
            Err(payload) => {
                if let Some(s) = this.sched.upgrade() {
                    s.internal_error(message_of(&*payload));
                }
                Poll::Ready(())
            }
        }
    }
}

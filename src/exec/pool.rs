//! The worker threads that run closure bodies.
//!
//! A closure blocks the thread it runs on (Rhai is synchronous, and so are its calls to
//! `shell()`), so closures cannot share the async runtime's threads. The pool starts a
//! thread only when a job arrives and no idle thread is there to take it, and keeps
//! threads for reuse. The scheduler bounds how many closures run at once (the parallel
//! limit, plus closures that gave their slot back while blocked in a wait), and that bounds
//! the pool.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex};

/// No thread could be started for a task: the process or the user is at its limit.
#[derive(Debug, Clone, thiserror::Error)]
#[error("failed to start a thread to run the closure: {0}")]
pub(super) struct NoThread(Arc<std::io::Error>);

/// A task runs with `Ok(())` on a worker thread, or with `Err(NoThread)` on the submitting
/// thread when no thread could be started for it.
type Task = Box<dyn FnOnce(Result<(), NoThread>) + Send>;

thread_local! {
    /// True while a worker runs the tail of its task ([`Pool::finishing`]): the first task
    /// submitted then is left for this worker to pop next, instead of waking another thread
    /// for it. For a stream of short closures this halves the context switches.
    static TAKES_NEXT: Cell<bool> = const { Cell::new(false) };
}

#[derive(Default)]
struct Queue {
    tasks: VecDeque<Task>,
    idle: usize,
    /// Tasks that a finishing worker will pop itself.
    reserved: usize,
    closed: bool,
    /// Worker threads started (and not exited).
    threads: usize,
    /// Workers whose task is blocked in a wait ([`Pool::blocked`]).
    blocked: usize,
}

impl Queue {
    /// True when some queued task has no idle or finishing worker to take it.
    fn unserved(&self) -> bool {
        self.tasks.len() > self.idle + self.reserved
    }

    /// Workers running a task that is not blocked in a wait: each takes a queued task
    /// when its own ends.
    fn busy(&self) -> usize {
        self.threads.saturating_sub(self.idle + self.blocked)
    }
}

thread_local! {
    static IN_WORKER: Cell<bool> = const { Cell::new(false) };
    /// Set when this worker reserved a task in [`Pool::finishing`].
    static RESERVED: Cell<bool> = const { Cell::new(false) };
    /// Tasks that got no thread, while this thread is already failing one: failing a task
    /// can submit more (the jobs its end lets start), and those are failed in a loop rather
    /// than by recursion, which could overflow the stack.
    static UNSTARTED: RefCell<Option<Vec<(Task, NoThread)>>> = const { RefCell::new(None) };
}

/// A growable pool of worker threads.
#[derive(Clone, Default)]
pub(super) struct Pool {
    shared: Arc<(Mutex<Queue>, Condvar)>,
}

/// The stack of a worker thread. Small, because a closure blocked in `ctx.wait` keeps its
/// thread and thousands can be blocked at once; [`stack_nearly_full`] makes a closure
/// that nests deeper than it allows fail with an error instead of overflowing it. Each
/// level of nesting in a Rhai expression or call costs about 2 KiB of stack in a release
/// build (measured: 64 calls of a function nesting 240 levels deep needed 16 MiB), about
/// 4 KiB in a debug build; Rhai's own limits (64 call levels, 256 levels of expression
/// depth, set by the host) allow far deeper nesting than any stack of a sensible size.
/// What the check cannot see is Rust recursing over a deeply nested value (dropping an
/// array nested 10,000 deep, built in a loop): about 250 bytes a level in a release
/// build. 2 MiB holds values nested about 10,000 deep (1 MiB aborted at 5,000; the 8 MiB
/// of earlier versions held 20,000); untouched stack pages cost no memory, only address
/// space.
const STACK_SIZE: usize = if cfg!(debug_assertions) {
    8 * 1024 * 1024
} else {
    2 * 1024 * 1024
};

/// The stack kept free below the point where [`stack_nearly_full`] says stop: enough for
/// the evaluation between two checks (32 operations: at most 32 levels of nesting, about
/// 140 KiB in a debug build), native functions included (and, on the
/// main thread, for what lies above the point where [`guard_stack`] is called).
const STACK_RESERVE: usize = if cfg!(debug_assertions) {
    1024 * 1024
} else {
    256 * 1024
};

thread_local! {
    /// The lowest stack address this thread may reach while evaluating Rhai (stacks grow
    /// down), or 0 where it is not known.
    static STACK_FLOOR: Cell<usize> = const { Cell::new(0) };
}

/// The address of a local of the caller's frame: where its stack is now.
#[inline(always)]
fn stack_pointer() -> usize {
    let here = 0u8;
    std::ptr::addr_of!(here) as usize
}

/// Records that the calling thread has `size` bytes of stack below the current point.
pub(crate) fn guard_stack(size: usize) {
    let floor = stack_pointer()
        .saturating_sub(size)
        .saturating_add(STACK_RESERVE);
    STACK_FLOOR.with(|f| f.set(floor));
}

/// Why a closure stopped when [`stack_nearly_full`].
pub(crate) const STACK_FULL: &str =
    "the script nests too deep (recursion or nested expressions) for its thread's stack";

/// True when the calling thread has used its stack down to its reserve: Rhai evaluation
/// must stop (the script host checks on every operation) before the stack overflows,
/// which would abort prun and leave its jobs running.
pub(crate) fn stack_nearly_full() -> bool {
    let floor = STACK_FLOOR.with(Cell::get);
    floor != 0 && stack_pointer() < floor
}

impl Pool {
    /// Runs `task` on a worker thread, starting one if none is idle. When no thread can be
    /// started (the process or user is at its thread limit), the task waits for a busy
    /// worker to take it; when no worker is busy (all are blocked in waits), it would wait
    /// forever, so it is run at once on this thread with the error instead, to fail its
    /// job with a clear message.
    pub(super) fn submit(&self, task: impl FnOnce(Result<(), NoThread>) + Send + 'static) {
        let (lock, cv) = &*self.shared;
        let mut q = lock.lock().expect("pool queue");
        q.tasks.push_back(Box::new(task));
        if TAKES_NEXT.with(|t| t.replace(false)) {
            q.reserved += 1;
            RESERVED.with(|r| r.set(true));
            return;
        }
        if q.unserved() {
            drop(q);
            self.grow();
        } else {
            cv.notify_one();
        }
    }

    /// Starts a worker for queued tasks that no worker will take. When none can be
    /// started and no worker is busy, those tasks fail (see [`Pool::submit`]).
    fn grow(&self) {
        let (lock, _) = &*self.shared;
        lock.lock().expect("pool queue").threads += 1;
        let shared = self.shared.clone();
        let spawned = std::thread::Builder::new()
            .name("prun-worker".into())
            .stack_size(STACK_SIZE)
            .spawn(move || worker(&shared));
        let Err(e) = spawned else {
            return;
        };
        let mut q = lock.lock().expect("pool queue");
        q.threads -= 1;
        let mut stranded = Vec::new();
        while q.unserved()
            && q.busy() == 0
            && let Some(task) = q.tasks.pop_back()
        {
            stranded.push(task);
        }
        drop(q);
        let error = NoThread(Arc::new(e));
        for task in stranded {
            fail(task, error.clone());
        }
    }

    /// Runs `f`, which blocks the calling thread until a wait is over. A worker blocked so
    /// takes no queued task: when then no worker is busy, queued tasks get a thread of
    /// their own (or fail, when none can be started) rather than wait forever.
    pub(super) fn blocked<R>(&self, f: impl FnOnce() -> R) -> R {
        let (lock, _) = &*self.shared;
        let in_worker = IN_WORKER.with(Cell::get);
        let stranded = {
            let mut q = lock.lock().expect("pool queue");
            if in_worker {
                q.blocked += 1;
            }
            q.unserved() && q.busy() == 0
        };
        if stranded {
            self.grow();
        }
        let r = f();
        if in_worker {
            lock.lock().expect("pool queue").blocked -= 1;
        }
        r
    }

    /// Runs `f`, the last thing a worker's task does; the first task `f` submits is run by
    /// this worker right after.
    pub(super) fn finishing<R>(f: impl FnOnce() -> R) -> R {
        let in_worker = IN_WORKER.with(Cell::get);
        TAKES_NEXT.with(|t| t.set(in_worker));
        let r = f();
        TAKES_NEXT.with(|t| t.set(false));
        r
    }

    /// Lets idle workers exit.
    pub(super) fn close(&self) {
        let (lock, cv) = &*self.shared;
        lock.lock().expect("pool queue").closed = true;
        cv.notify_all();
    }
}

/// Runs a task that got no thread with its error, here; see [`UNSTARTED`].
fn fail(task: Task, error: NoThread) {
    let first = UNSTARTED.with(|u| {
        let mut u = u.borrow_mut();
        match u.as_mut() {
            Some(pending) => {
                pending.push((task, error));
                None
            }
            None => {
                *u = Some(Vec::new());
                Some((task, error))
            }
        }
    });
    let Some(first) = first else {
        return;
    };
    // Not as a worker: this thread is not finishing a task, and must not reserve the next.
    let in_worker = IN_WORKER.with(|w| w.replace(false));
    let mut next = Some(first);
    while let Some((task, error)) = next {
        task(Err(error));
        next = UNSTARTED.with(|u| u.borrow_mut().as_mut().and_then(Vec::pop));
    }
    IN_WORKER.with(|w| w.set(in_worker));
    UNSTARTED.with(|u| *u.borrow_mut() = None);
}

fn worker(shared: &(Mutex<Queue>, Condvar)) {
    IN_WORKER.with(|w| w.set(true));
    // What this frame and the thread's start used is well within the reserve.
    guard_stack(STACK_SIZE);
    let (lock, cv) = shared;
    let mut reserved = false;
    loop {
        let task = {
            let mut q = lock.lock().expect("pool queue");
            if std::mem::take(&mut reserved) {
                q.reserved = q.reserved.saturating_sub(1);
            }
            loop {
                if let Some(t) = q.tasks.pop_front() {
                    break t;
                }
                if q.closed {
                    q.threads -= 1;
                    return;
                }
                q.idle += 1;
                q = cv.wait(q).expect("pool queue");
                q.idle -= 1;
            }
        };
        task(Ok(()));
        reserved = RESERVED.with(|r| r.replace(false));
    }
}

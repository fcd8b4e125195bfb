//! The worker threads that run closure bodies.
//!
//! A closure blocks the thread it runs on (Rhai is synchronous, and so are its calls to
//! `shell()`), so closures cannot share the async runtime's threads. The pool starts a
//! thread only when a job arrives and no idle thread is there to take it, and keeps
//! threads for reuse. The scheduler bounds how many closures run at once (the parallel
//! limit, plus closures that gave their slot back while blocked in a wait), and that bounds
//! the pool.

use std::cell::Cell;
use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex};

type Task = Box<dyn FnOnce() + Send>;

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
}

thread_local! {
    static IN_WORKER: Cell<bool> = const { Cell::new(false) };
    /// Set when this worker reserved a task in [`Pool::finishing`].
    static RESERVED: Cell<bool> = const { Cell::new(false) };
}

/// A growable pool of worker threads.
#[derive(Clone, Default)]
pub struct Pool {
    shared: Arc<(Mutex<Queue>, Condvar)>,
}

/// Rhai evaluates recursively; give workers the main thread's stack size.
const STACK_SIZE: usize = 8 * 1024 * 1024;

impl Pool {
    /// Runs `task` on a worker thread, starting one if none is idle.
    pub fn submit(&self, task: impl FnOnce() + Send + 'static) {
        let (lock, cv) = &*self.shared;
        let mut q = lock.lock().expect("pool queue");
        q.tasks.push_back(Box::new(task));
        if TAKES_NEXT.with(|t| t.replace(false)) {
            q.reserved += 1;
            RESERVED.with(|r| r.set(true));
            return;
        }
        if q.tasks.len() > q.idle + q.reserved {
            drop(q);
            let shared = self.shared.clone();
            std::thread::Builder::new()
                .name("prun-worker".into())
                .stack_size(STACK_SIZE)
                .spawn(move || worker(&shared))
                .expect("failed to start a worker thread");
        } else {
            cv.notify_one();
        }
    }

    /// Runs `f`, the last thing a worker's task does; the first task `f` submits is run by
    /// this worker right after.
    pub fn finishing<R>(f: impl FnOnce() -> R) -> R {
        let in_worker = IN_WORKER.with(Cell::get);
        TAKES_NEXT.with(|t| t.set(in_worker));
        let r = f();
        TAKES_NEXT.with(|t| t.set(false));
        r
    }

    /// Lets idle workers exit.
    pub fn close(&self) {
        let (lock, cv) = &*self.shared;
        lock.lock().expect("pool queue").closed = true;
        cv.notify_all();
    }
}

fn worker(shared: &(Mutex<Queue>, Condvar)) {
    IN_WORKER.with(|w| w.set(true));
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
                    return;
                }
                q.idle += 1;
                q = cv.wait(q).expect("pool queue");
                q.idle -= 1;
            }
        };
        task();
        reserved = RESERVED.with(|r| r.replace(false));
    }
}

//! The worker threads that run closure bodies.
//!
//! A closure blocks the thread it runs on (Rhai is synchronous, and so are its calls to
//! `shell()`), so closures cannot share the async runtime's threads. The pool starts a
//! thread only when a job arrives and no idle thread is there to take it, and keeps
//! threads for reuse. The scheduler bounds how many closures run at once (the parallel
//! limit, plus closures that gave their slot back while blocked in a wait), and that bounds
//! the pool.

use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex};

type Task = Box<dyn FnOnce() + Send>;

#[derive(Default)]
struct Queue {
    tasks: VecDeque<Task>,
    idle: usize,
    closed: bool,
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
        if q.tasks.len() > q.idle {
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

    /// Lets idle workers exit.
    pub fn close(&self) {
        let (lock, cv) = &*self.shared;
        lock.lock().expect("pool queue").closed = true;
        cv.notify_all();
    }
}

fn worker(shared: &(Mutex<Queue>, Condvar)) {
    let (lock, cv) = shared;
    loop {
        let task = {
            let mut q = lock.lock().expect("pool queue");
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
    }
}

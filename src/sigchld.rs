//! SIGCHLD, which prun blocks in every thread of its own (see [`block`]).

use nix::sys::signal::Signal;

/// Blocks SIGCHLD in the calling thread and in the threads it starts from now on.
///
/// A run's thread calls it first thing, so that every thread of prun blocks it: the
/// runtime's workers, the task DB's writer, the closure workers. prun never needs the
/// signal (a child is awaited through a pidfd, or a thread that waits for it), and a
/// child's exit is then a wake-up only for the thread that awaits it. Otherwise, while a
/// thread spawns a process (when every signal is blocked in it), a child that exits has
/// its SIGCHLD delivered to another thread that does not block it, woken for nothing: in
/// a run of short commands, about every other job. Children do not inherit the mask: the
/// spawn resets it.
pub(crate) fn block() {
    use nix::sys::signal::{SigSet, SigmaskHow, pthread_sigmask};
    let mut set = SigSet::empty();
    set.add(Signal::SIGCHLD);
    let _ = pthread_sigmask(SigmaskHow::SIG_BLOCK, Some(&set), None);
}

/// SIGCHLD blocked in the calling thread until this is dropped (its mask is then
/// restored): for a thread that only waits for a run, which the kernel would otherwise
/// wake for nothing (see [`block`]). The kernel offers a
/// process's signals to its main thread first: waiting for the run there, it was woken
/// for about every fourth job of a run of short commands at `-j 2`.
#[derive(Debug)]
pub(crate) struct Blocked(Option<nix::sys::signal::SigSet>);

impl Blocked {
    /// Blocks SIGCHLD in the calling thread.
    pub(crate) fn here() -> Blocked {
        use nix::sys::signal::{SigSet, SigmaskHow, pthread_sigmask};
        let mut set = SigSet::empty();
        set.add(Signal::SIGCHLD);
        let mut old = SigSet::empty();
        let blocked = pthread_sigmask(SigmaskHow::SIG_BLOCK, Some(&set), Some(&mut old)).is_ok();
        Blocked(blocked.then_some(old))
    }
}

impl Drop for Blocked {
    fn drop(&mut self) {
        use nix::sys::signal::{SigmaskHow, pthread_sigmask};
        if let Some(old) = &self.0 {
            let _ = pthread_sigmask(SigmaskHow::SIG_SETMASK, Some(old), None);
        }
    }
}

#[cfg(test)]
mod tests {
    use nix::sys::signal::{SigSet, SigmaskHow, pthread_sigmask};

    use super::*;

    fn mask() -> SigSet {
        let mut now = SigSet::empty();
        pthread_sigmask(SigmaskHow::SIG_BLOCK, None, Some(&mut now)).expect("read the mask");
        now
    }

    #[test]
    fn sigchld_is_blocked_while_held_and_the_mask_restored_after() {
        // A thread of its own: the mask is per thread, and the test harness's may differ.
        std::thread::spawn(|| {
            let mut usr1 = SigSet::empty();
            usr1.add(Signal::SIGUSR1);
            pthread_sigmask(SigmaskHow::SIG_BLOCK, Some(&usr1), None).expect("block SIGUSR1");
            let before = mask();
            assert!(!before.contains(Signal::SIGCHLD));
            let held = Blocked::here();
            let during = mask();
            assert!(during.contains(Signal::SIGCHLD));
            assert!(during.contains(Signal::SIGUSR1));
            drop(held);
            let after = mask();
            assert!(!after.contains(Signal::SIGCHLD));
            assert!(
                after.contains(Signal::SIGUSR1),
                "the rest of the mask is kept"
            );
        })
        .join()
        .expect("the test thread");
    }
}

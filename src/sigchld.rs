//! SIGCHLD, which prun blocks in every thread of its own (see [`block`]), and what every
//! program prun starts gets instead: the signal mask prun was started with, and prun's
//! environment less the variables the policy hides (see [`spawn`]).

use std::sync::OnceLock;

use nix::sys::signal::{SigSet, SigmaskHow, Signal, pthread_sigmask};

/// The signal mask prun was started with, less SIGCHLD: that of the first thread to block
/// SIGCHLD ([`block`] or [`Blocked::here`]) before it did, or of the first to start a
/// program before any did. Every program prun starts gets it (see [`spawn`]). SIGCHLD
/// blocked by prun's parent (one that waits for its children through a `signalfd`) is
/// not passed on, as prun's own is not.
static START_MASK: OnceLock<SigSet> = OnceLock::new();

/// `mask` without SIGCHLD.
fn without_sigchld(mut mask: SigSet) -> SigSet {
    mask.remove(Signal::SIGCHLD);
    mask
}

/// SIGCHLD blocked in the calling thread; its mask before is remembered as prun's own
/// start-up mask when it is the first to be. The mask before, if it could be changed.
fn block_here() -> Option<SigSet> {
    let mut set = SigSet::empty();
    set.add(Signal::SIGCHLD);
    let mut old = SigSet::empty();
    pthread_sigmask(SigmaskHow::SIG_BLOCK, Some(&set), Some(&mut old)).ok()?;
    let _ = START_MASK.set(without_sigchld(old));
    Some(old)
}

/// Blocks SIGCHLD in the calling thread and in the threads it starts from now on.
///
/// A run's thread calls it first thing, so that every thread of prun blocks it: the
/// runtime's workers, the task DB's writer, the closure workers. prun never needs the
/// signal (a child is awaited through a pidfd, or a thread that waits for it), and a
/// child's exit is then a wake-up only for the thread that awaits it. Otherwise, while a
/// thread spawns a process (when every signal is blocked in it), a child that exits has
/// its SIGCHLD delivered to another thread that does not block it, woken for nothing: in
/// a run of short commands, about every other job.
///
/// A child inherits the mask of the thread that starts it (the standard library's
/// `posix_spawn` leaves it as it is): every program prun starts must be started through
/// [`spawn`] or [`crate::exec::spawn`], which give it the mask prun was started with.
pub(crate) fn block() {
    let _ = block_here();
}

/// Starts `cmd` with the signal mask prun was started with (see [`START_MASK`]), not the
/// calling thread's, which blocks SIGCHLD: a program that waits for its own children with
/// a SIGCHLD handler, `sigsuspend` or `sigwaitinfo` (a supervisor, a script's `trap ...
/// CHLD`) would never hear of them. A signal that prun's own parent blocked stays blocked
/// (as `nohup` or a supervisor set it), SIGCHLD excepted. Two `pthread_sigmask` calls around the spawn,
/// which keeps `posix_spawn` (a `pre_exec` closure would make the standard library fork
/// and exec, far slower).
///
/// Every program prun starts comes through here or through [`crate::exec::spawn`] (a
/// command's stage, started by `posix_spawn` itself with the same mask and environment),
/// prun's own helpers too (`ssh -M`, `squeue`, `scancel`): `hidden` are the variables of
/// prun's environment it does not inherit (the policy's `deny_env` and `allow_env`, see
/// `Policy::hidden_env`), whatever `cmd` says.
pub(crate) fn spawn(
    cmd: &mut std::process::Command,
    hidden: &[std::ffi::OsString],
) -> std::io::Result<std::process::Child> {
    for name in hidden {
        cmd.env_remove(name);
    }
    let start = start_mask();
    let mut mine = SigSet::empty();
    let set = pthread_sigmask(SigmaskHow::SIG_SETMASK, Some(&start), Some(&mut mine)).is_ok();
    let spawned = starting(|| cmd.spawn());
    if set {
        let _ = pthread_sigmask(SigmaskHow::SIG_SETMASK, Some(&mine), None);
    }
    spawned
}

/// The signal mask every program prun starts gets: the one prun was started with, less
/// SIGCHLD (see [`START_MASK`]).
pub(crate) fn start_mask() -> SigSet {
    *START_MASK.get_or_init(|| {
        // Nothing was blocked yet: the calling thread's mask is the one prun started with.
        let mut now = SigSet::empty();
        let _ = pthread_sigmask(SigmaskHow::SIG_BLOCK, None, Some(&mut now));
        without_sigchld(now)
    })
}

/// Held (shared) while a process is started ([`spawn`], [`crate::exec::spawn`]), and (exclusive) while processes
/// are picked out to be ended by what they hold or whose child they are
/// ([`none_starting`]): between its fork and its exec, a child holds a copy of every
/// descriptor of prun, the pipes between the stages of other commands included, and is
/// not yet among the groups prun awaits; it must not be taken for a process that keeps
/// a pipe open, or that escaped its command.
static STARTING: std::sync::RwLock<()> = std::sync::RwLock::new(());

/// Whether the main thread started a process (see [`main_thread_started`]).
static MAIN_STARTED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// The threads of this process that started a process (see [`parents`]).
static SPAWNERS: std::sync::Mutex<Vec<i32>> = std::sync::Mutex::new(Vec::new());

/// Runs `spawn`, which starts a process, as one of the processes being started (see
/// [`STARTING`]), recording the calling thread among the [`parents`].
pub(crate) fn starting<T>(spawn: impl FnOnce() -> T) -> T {
    let _starting = STARTING
        .read()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if std::thread::current().name() == Some("main") {
        MAIN_STARTED.store(true, std::sync::atomic::Ordering::Relaxed);
    }
    thread_local! {
        static RECORDED: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
    }
    if !RECORDED.replace(true) {
        let tid = nix::unistd::gettid().as_raw();
        SPAWNERS
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(tid);
    }
    spawn()
}

/// The threads of this process that may have children (their ids): those that started a
/// process, and the main thread, which the kernel gives the orphans this process adopts
/// and the children of a thread that exited (the first live thread of the process). The
/// others have none: reading their `/proc/self/task/<tid>/children` would find nothing.
/// Exact while [`none_starting`] is held. One found gone is forgotten ([`parent_gone`]).
pub(crate) fn parents() -> Vec<i32> {
    let main = i32::try_from(std::process::id()).unwrap_or(i32::MAX);
    let mut threads = vec![main];
    threads.extend(
        SPAWNERS
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .iter()
            .filter(|&&t| t != main),
    );
    threads
}

/// Forgets `tid`, one of [`parents`] whose `/proc/self/task/<tid>` is gone: the thread
/// exited, and its children went to the main thread. The threads of tokio's blocking
/// pool come and go in a long run.
pub(crate) fn parent_gone(tid: i32) {
    SPAWNERS
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .retain(|&t| t != tid);
}

/// Whether this process's main thread ever started a process: the kernel gives it the
/// orphans this process adopts too, which are told apart from its own children only
/// while it has none. Exact while [`none_starting`] is held.
pub(crate) fn main_thread_started() -> bool {
    MAIN_STARTED.load(std::sync::atomic::Ordering::Relaxed)
}

/// No process is being started until this is dropped (see [`STARTING`]).
pub(crate) fn none_starting() -> std::sync::RwLockWriteGuard<'static, ()> {
    STARTING
        .write()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// SIGCHLD blocked in the calling thread until this is dropped (its mask is then
/// restored): for a thread that only waits for a run, which the kernel would otherwise
/// wake for nothing (see [`block`]). The kernel offers a
/// process's signals to its main thread first: waiting for the run there, it was woken
/// for about every fourth job of a run of short commands at `-j 2`.
#[derive(Debug)]
pub(crate) struct Blocked(Option<SigSet>);

impl Blocked {
    /// Blocks SIGCHLD in the calling thread.
    pub(crate) fn here() -> Blocked {
        Blocked(block_here())
    }
}

impl Drop for Blocked {
    fn drop(&mut self) {
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
    fn a_child_starts_without_the_sigchld_its_spawning_thread_blocks() {
        std::thread::spawn(|| {
            block();
            assert!(mask().contains(Signal::SIGCHLD));
            let mut cmd = std::process::Command::new("grep");
            cmd.args(["SigBlk", "/proc/self/status"])
                .stdout(std::process::Stdio::piped());
            let out = spawn(&mut cmd, &[])
                .and_then(|c| c.wait_with_output())
                .expect("run grep");
            let text = String::from_utf8_lossy(&out.stdout);
            let hex = text.trim().strip_prefix("SigBlk:").expect("a SigBlk line");
            let blocked = u64::from_str_radix(hex.trim(), 16).expect("a hex mask");
            assert_eq!(blocked & (1 << (Signal::SIGCHLD as u64 - 1)), 0, "{text}");
            assert!(
                mask().contains(Signal::SIGCHLD),
                "the thread's mask is restored"
            );
        })
        .join()
        .expect("the test thread");
    }

    #[test]
    fn a_thread_that_started_a_process_is_among_the_parents_and_the_main_thread_always() {
        std::thread::spawn(|| {
            let me = nix::unistd::gettid().as_raw();
            assert!(!parents().contains(&me), "started nothing yet");
            spawn(&mut std::process::Command::new("true"), &[])
                .and_then(|mut c| c.wait())
                .expect("run true");
            assert!(parents().contains(&me));
        })
        .join()
        .expect("the test thread");
        assert!(parents().contains(&(std::process::id() as i32)));
    }

    #[test]
    fn a_child_gets_no_hidden_variable_whatever_its_command_says() {
        let mut cmd = std::process::Command::new("env");
        cmd.env("PRUN_SIGCHLD_HIDDEN", "secret")
            .env("PRUN_SIGCHLD_SEEN", "yes")
            .stdout(std::process::Stdio::piped());
        let out = spawn(&mut cmd, &["PRUN_SIGCHLD_HIDDEN".into()])
            .and_then(|c| c.wait_with_output())
            .expect("run env");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains("PRUN_SIGCHLD_SEEN=yes"), "{text}");
        assert!(!text.contains("PRUN_SIGCHLD_HIDDEN"), "{text}");
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

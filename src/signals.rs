//! The abort signals (Ctrl-C's SIGINT, SIGTERM, SIGHUP, SIGQUIT) of the runs that handle
//! them ([`crate::RuntimeBuilder::handle_signals`]).
//!
//! A signal handler, once installed, is the whole process's and stays: the handlers of
//! tokio (and of `signal-hook`) cannot be removed. So one thread of the process receives
//! these signals for every run, and hands each to the runs that listen at that moment
//! ([`listen`]); when none does, the signal gets its default action, as if prun had never
//! caught it: a program that ran a script with signals handled still ends on SIGTERM
//! afterwards (before, it ignored SIGTERM and Ctrl-C for the rest of its life).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

/// Why the abort signals cannot be received (the first [`listen`] failed; later ones
/// fail the same way).
#[derive(Debug, Clone, thiserror::Error)]
pub(crate) enum SignalError {
    #[error("cannot install signal handlers: {0}")]
    Install(String),
    #[error("cannot start the thread that receives signals: {0}")]
    Thread(String),
}

/// What a run does with an abort signal.
type Listener = Arc<dyn Fn() + Send + Sync>;

/// The listening runs, by the id of their [`Listening`].
#[derive(Default)]
struct Listeners {
    next: u64,
    by_id: BTreeMap<u64, Listener>,
}

fn listeners() -> &'static Mutex<Listeners> {
    static LISTENERS: OnceLock<Mutex<Listeners>> = OnceLock::new();
    LISTENERS.get_or_init(Mutex::default)
}

/// A listener of [`listen`]; it stops listening when dropped.
#[must_use = "the listener stops listening when this is dropped"]
pub(crate) struct Listening {
    id: u64,
}

impl Drop for Listening {
    fn drop(&mut self) {
        let mut l = listeners().lock().unwrap_or_else(PoisonError::into_inner);
        l.by_id.remove(&self.id);
    }
}

/// Calls `f` on each of `signals` (raw numbers) until the returned [`Listening`] is
/// dropped. The first call starts the thread that receives them, for the rest of the
/// process; `signals` must be the same in every call (the abort signals not ignored when
/// the process started).
pub(crate) fn listen(
    signals: &[i32],
    f: impl Fn() + Send + Sync + 'static,
) -> Result<Listening, SignalError> {
    static STARTED: OnceLock<Result<(), SignalError>> = OnceLock::new();
    STARTED.get_or_init(|| start(signals)).clone()?;
    let mut l = listeners().lock().unwrap_or_else(PoisonError::into_inner);
    let id = l.next;
    l.next += 1;
    l.by_id.insert(id, Arc::new(f));
    Ok(Listening { id })
}

/// The signals the program caught itself before prun installed its handlers (`SigCgt:`
/// of `/proc/self/status` then): its handlers, which `signal-hook` calls before prun's,
/// are their action when no run listens.
static CAUGHT_BY_HOST: OnceLock<u64> = OnceLock::new();

/// Installs the handlers of `signals` and starts the thread that dispatches them.
fn start(signals: &[i32]) -> Result<(), SignalError> {
    CAUGHT_BY_HOST.get_or_init(|| crate::procfs::signals_at_start().caught);
    let mut incoming = signal_hook::iterator::Signals::new(signals)
        .map_err(|e| SignalError::Install(e.to_string()))?;
    std::thread::Builder::new()
        .name("prun-signals".into())
        .spawn(move || {
            for sig in incoming.forever() {
                dispatch(sig);
            }
        })
        .map(|_| ())
        .map_err(|e| SignalError::Thread(e.to_string()))
}

/// Whether the program had a handler of its own for `sig` before prun's (see
/// [`CAUGHT_BY_HOST`]).
fn caught_by_host(sig: i32) -> bool {
    let caught = CAUGHT_BY_HOST.get().copied().unwrap_or(0);
    (1..=64).contains(&sig) && caught & (1 << (sig - 1)) != 0
}

/// Hands `sig` to the listening runs. When none listens, it gets its default action, as
/// if prun had never caught it, unless the program handles it itself: then its handler,
/// which has already run, was the action.
/// The listeners are called with the list unlocked: one may start another run.
fn dispatch(sig: i32) {
    let now: Vec<Listener> = {
        let l = listeners().lock().unwrap_or_else(PoisonError::into_inner);
        l.by_id.values().cloned().collect()
    };
    if now.is_empty() {
        if !caught_by_host(sig) {
            let _ = signal_hook::low_level::emulate_default_handler(sig);
        }
        return;
    }
    for f in now {
        // A panic there is the run's (its scheduler ends it as an internal error); this
        // thread must go on receiving signals.
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f()));
    }
}

/// A listener that holds the abort signals back until the run can act on them: from the
/// moment the run starts making what a signal's default action would leave behind (its
/// crash journal) to the one it listens for real ([`Early::hand_to`]).
///
/// A signal reaches a listener through the thread that receives them, which may not have
/// run yet when the run listens for real (on a busy machine it waits for a core): the
/// signal would then act only once the run had gone on, its first command started. So
/// the signal's handler itself also sets a flag ([`Early::arrived`]), which
/// [`Early::hand_to`] reads: a signal that came and was not passed on yet is given to the
/// run there, and not a second time when the thread passes it on.
#[must_use = "the signals are held back only while this lives"]
pub(crate) struct Early {
    held: Arc<Mutex<Held>>,
    /// Set by the handler of each of the signals, after the action that wakes the
    /// receiving thread (`signal-hook` runs a signal's actions in the order they were
    /// registered, and that one was first, see [`start`]).
    arrived: Arc<AtomicBool>,
    flags: Flags,
    listening: Listening,
}

/// What [`Early`] holds: the signals that came, until a listener takes them.
#[derive(Default)]
struct Held {
    /// Signals passed on by the receiving thread before there was a listener.
    pending: usize,
    /// Signals given to the listener before the receiving thread passed them on: that
    /// many of its next ones are not passed on again.
    given_ahead: usize,
    to: Option<Listener>,
}

impl Held {
    /// The receiving thread passes a signal on: the listener to call, if there is one and
    /// the signal was not given to it already.
    fn passed_on(&mut self) -> Option<Listener> {
        if self.given_ahead > 0 {
            self.given_ahead -= 1;
            return None;
        }
        if self.to.is_none() {
            self.pending += 1;
        }
        self.to.clone()
    }

    /// `to` listens from now on: how many signals it is given at once. `arrived` says
    /// whether a handler ran since the holding began; when none was passed on yet, that
    /// signal is still on its way through the receiving thread, and is given now instead.
    /// (One passed on already may have come in the same handler's call, before its flag
    /// was set: it is counted once, as `pending`.)
    fn hand_to(&mut self, to: Listener, arrived: bool) -> usize {
        self.to = Some(to);
        let pending = std::mem::take(&mut self.pending);
        if pending == 0 && arrived {
            self.given_ahead = 1;
            return 1;
        }
        pending
    }
}

/// The flags of an [`Early`], registered with the signals' handlers until dropped.
struct Flags(Vec<signal_hook::SigId>);

impl Drop for Flags {
    fn drop(&mut self) {
        for id in self.0.drain(..) {
            signal_hook::low_level::unregister(id);
        }
    }
}

/// Starts holding back `signals` (as in [`listen`]): each that comes is kept for the
/// listener [`Early::hand_to`] gives them to, instead of its default action.
pub(crate) fn listen_early(signals: &[i32]) -> Result<Early, SignalError> {
    let held = Arc::new(Mutex::new(Held::default()));
    let shared = held.clone();
    let listening = listen(signals, move || {
        let to = shared
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .passed_on();
        if let Some(f) = to {
            f();
        }
    })?;
    let arrived = Arc::new(AtomicBool::new(false));
    let mut flags = Flags(Vec::with_capacity(signals.len()));
    for &sig in signals {
        let id = signal_hook::flag::register(sig, arrived.clone())
            .map_err(|e| SignalError::Install(e.to_string()))?;
        flags.0.push(id);
    }
    Ok(Early {
        held,
        arrived,
        flags,
        listening,
    })
}

impl Early {
    /// Gives `f` the signals held back, one call each, and every one that comes from now
    /// on, until the returned [`Listening`] is dropped.
    pub(crate) fn hand_to(self, f: impl Fn() + Send + Sync + 'static) -> Listening {
        let Early {
            held,
            arrived,
            flags,
            listening,
        } = self;
        let f: Listener = Arc::new(f);
        let given = held
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .hand_to(f.clone(), arrived.load(Ordering::SeqCst));
        drop(flags);
        for _ in 0..given {
            f();
        }
        listening
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;
    use std::sync::mpsc;
    use std::time::{Duration, Instant};

    /// A listener that counts its calls.
    fn counting() -> (Arc<AtomicUsize>, Listener) {
        let calls = Arc::new(AtomicUsize::new(0));
        let seen = calls.clone();
        let f: Listener = Arc::new(move || {
            seen.fetch_add(1, Ordering::SeqCst);
        });
        (calls, f)
    }

    #[test]
    fn signals_passed_on_before_the_run_listens_are_each_given_once() {
        let (calls, f) = counting();
        let mut held = Held::default();
        assert!(held.passed_on().is_none());
        assert!(held.passed_on().is_none());
        // Both handlers ran: the flag is set, and both signals were passed on already.
        assert_eq!(held.hand_to(f, true), 2);
        // The next signal is a new one, passed on to the listener.
        held.passed_on().expect("a listener")();
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn a_signal_not_passed_on_yet_is_given_at_once_and_not_again() {
        let (calls, f) = counting();
        let mut held = Held::default();
        assert_eq!(held.hand_to(f, true), 1);
        // The receiving thread passes that signal on at last: not given again.
        assert!(held.passed_on().is_none());
        held.passed_on().expect("a listener for the next signal")();
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn without_a_signal_nothing_is_given_until_one_comes() {
        let (calls, f) = counting();
        let mut held = Held::default();
        assert_eq!(held.hand_to(f, false), 0);
        held.passed_on().expect("a listener")();
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }

    /// Set in the copy of this test binary that runs the signal test alone.
    const ALONE: &str = "PRUN_SIGNALS_TEST_ALONE";

    /// Waits (up to a minute) until `done`.
    fn wait_for(what: &str, done: impl Fn() -> bool) {
        let until = Instant::now() + Duration::from_secs(60);
        while !done() {
            assert!(Instant::now() < until, "gave up waiting for {what}");
            std::thread::yield_now();
        }
    }

    /// A SIGTERM whose handler ran while the thread that receives signals lags behind (here
    /// held inside another listener) is given to the run when it listens, not after it has
    /// gone on, and once. Real signals, sent to a copy of this test binary that runs this
    /// test alone (the signals would otherwise reach every test of this process).
    #[test]
    fn a_signal_the_receiving_thread_has_not_passed_on_is_given_when_the_run_listens() {
        let name = "signals::tests::a_signal_the_receiving_thread_has_not_passed_on_is_given_when_the_run_listens";
        if std::env::var_os(ALONE).is_none() {
            let exe = std::env::current_exe().expect("this test binary");
            let out = std::process::Command::new(exe)
                .args(["--exact", name, "--test-threads=1"])
                .env(ALONE, "1")
                .output()
                .expect("run the test alone");
            let text = format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            assert!(out.status.success(), "{:?}: {text}", out.status);
            assert!(text.contains("1 passed"), "the test did not run: {text}");
            return;
        }
        let term = nix::sys::signal::Signal::SIGTERM;
        let signals = [term as i32];
        let (entered_tx, entered) = mpsc::channel::<()>();
        let (release, released) = mpsc::channel::<()>();
        let released = Mutex::new(released);
        // Called before the early listener: holds the receiving thread until released.
        let _holder = listen(&signals, move || {
            let _ = entered_tx.send(());
            let _ = released.lock().unwrap().recv();
        })
        .expect("listen");
        let early = listen_early(&signals).expect("listen early");
        // Registered after the early flag, so set after it by the same handler's call.
        let handled = Arc::new(AtomicBool::new(false));
        let id = signal_hook::flag::register(signals[0], handled.clone()).expect("flag");
        nix::sys::signal::kill(nix::unistd::getpid(), term).expect("kill");
        entered
            .recv()
            .expect("the receiving thread passes the signal on");
        wait_for("the handler", || handled.load(Ordering::SeqCst));
        let (calls, f) = counting();
        let listening = early.hand_to(move || f());
        assert_eq!(
            calls.load(Ordering::SeqCst),
            1,
            "not given when listened for"
        );
        release.send(()).unwrap();
        // A second signal: once the receiving thread passes it on, it is done with the
        // first.
        nix::sys::signal::kill(nix::unistd::getpid(), term).expect("kill");
        entered
            .recv()
            .expect("the receiving thread passes the second signal on");
        assert_eq!(calls.load(Ordering::SeqCst), 1, "the first was given twice");
        release.send(()).unwrap();
        wait_for("the second signal", || calls.load(Ordering::SeqCst) == 2);
        signal_hook::low_level::unregister(id);
        drop(listening);
    }
}

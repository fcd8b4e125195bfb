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
#[must_use = "the signals are held back only while this lives"]
pub(crate) struct Early {
    held: Arc<Mutex<Held>>,
    listening: Listening,
}

/// What [`Early`] holds: the signals that came, until a listener takes them.
#[derive(Default)]
struct Held {
    pending: usize,
    to: Option<Listener>,
}

/// Starts holding back `signals` (as in [`listen`]): each that comes is kept for the
/// listener [`Early::hand_to`] gives them to, instead of its default action.
pub(crate) fn listen_early(signals: &[i32]) -> Result<Early, SignalError> {
    let held = Arc::new(Mutex::new(Held::default()));
    let shared = held.clone();
    let listening = listen(signals, move || {
        let to = {
            let mut h = shared.lock().unwrap_or_else(PoisonError::into_inner);
            if h.to.is_none() {
                h.pending += 1;
            }
            h.to.clone()
        };
        if let Some(f) = to {
            f();
        }
    })?;
    Ok(Early { held, listening })
}

impl Early {
    /// Gives `f` the signals held back, one call each, and every one that comes from now
    /// on, until the returned [`Listening`] is dropped.
    pub(crate) fn hand_to(self, f: impl Fn() + Send + Sync + 'static) -> Listening {
        let f: Listener = Arc::new(f);
        let pending = {
            let mut h = self.held.lock().unwrap_or_else(PoisonError::into_inner);
            h.to = Some(f.clone());
            std::mem::take(&mut h.pending)
        };
        for _ in 0..pending {
            f();
        }
        self.listening
    }
}

//! prun runs Rhai scripts that describe pipelines of subprocess jobs, in parallel.
//!
//! A script declares *procs* (named jobs whose body is a closure or a command) and
//! *protos* (templates for procs), then asks for some of them to run; prun turns that into
//! a dependency graph and runs it in parallel, caching results in a task DB, keeping a log
//! per proc, and reporting what happened. The `prun` binary is a thin client of this
//! library ([`cli::main`]).
//!
//! # Embedding
//!
//! A program gives its users prun pipelines by building a [`Runtime`]: its own native
//! functions ([`RuntimeBuilder::register_fn`]) and Rhai modules
//! ([`RuntimeBuilder::module`]), a [`Policy`] for scripts it does not trust, and a
//! callback for [`Event`]s. It then runs a file or a string with arguments and targets and
//! gets a typed [`Report`] back:
//!
//! ```
//! use std::sync::atomic::{AtomicUsize, Ordering};
//! use std::sync::Arc;
//!
//! let calls = Arc::new(AtomicUsize::new(0));
//! let counter = calls.clone();
//! # let state = tempfile::tempdir().unwrap();
//! let rt = prun::Runtime::builder()
//!     .parallel(4)
//!     .task_db(prun::TaskDb::Off)
//!     .policy(prun::Policy::new().allow_programs(["echo"]).no_shell())
//!     .register_fn("lookup", move |key: &str| -> String {
//!         counter.fetch_add(1, Ordering::SeqCst);
//!         key.to_uppercase()
//!     })
//! #   .state_dir(state.path())
//!     .build()?;
//! let report = rt.run_str(
//!     r#"
//!     proto("fetch:[key]", |ctx, key| lookup(key));
//!     proc("all", #{ deps: ["fetch:a", "fetch:b"] }, || "done");
//!     proc("say", #{ cmd: ["echo", "hello"] });
//!     "#,
//!     ["all", "say"],
//! )?;
//! assert_eq!(report.run.outcome, prun::Outcome::Ok);
//! assert_eq!(report.proc("fetch:b").unwrap().result, "B");
//! assert_eq!(calls.load(Ordering::SeqCst), 2);
//! // The report serializes to the same JSON as `prun --json`.
//! let json = serde_json::to_string(&report).unwrap();
//! assert!(json.contains(r#""outcome":"ok""#));
//! # Ok::<(), prun::Error>(())
//! ```
//!
//! - A run happens on threads of its own: `run_*` blocks the caller until it ends, and
//!   may be called from several threads at once, or from inside a tokio runtime.
//! - [`Cancel`] stops a run from another thread as Ctrl-C stops the binary: process groups
//!   are terminated (then killed after a grace period) and the script's cleanups run.
//! - A run installs no signal handler unless asked ([`RuntimeBuilder::handle_signals`]),
//!   and gives no `interactive` proc the program's stdin, stdout and stderr unless asked
//!   ([`RuntimeBuilder::terminal`]).
//! - What a native function gives is in no fingerprint: a proc's body that calls one saves
//!   no result in the task DB, and runs every time, unless the function is registered
//!   with [`RuntimeBuilder::register_pure_fn`] (its result depends on its arguments
//!   alone). The same holds for modules ([`RuntimeBuilder::pure_module`]).
//! - [`RuntimeBuilder::build`] refuses what would be silently ignored: a native function
//!   named like one of prun's script functions (`shell`, `proc`, `run`...), which scripts
//!   would call instead, or by a name no script can call; a limit of 0, which Rhai would
//!   read as none.
//! - What stops a run before it starts (the script does not compile, wrong arguments) is
//!   an [`Error`]; what happens once it runs (a proc fails, the script throws) is in the
//!   [`Report`], whose [`Outcome`] says how it ended.
//!
//! # Inside
//!
//! The pipeline is visible in the (private) modules: `script`, the Rhai host that
//! compiles the script and registers the API; `graph`, the pure model of procs, protos and
//! dependencies; `exec`, the scheduler that owns run state, and the jobs and commands it
//! runs; `ui`, how progress and results are shown; `run`, one run from start to report.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

/// `println!` that ignores a closed stdout (`prun ... | head`) instead of panicking, and
/// says once when stdout fails otherwise (see [`report::stdout_failed`]). With
/// `--json -` stdout holds the report, and these lines go to stderr (see
/// [`report::to_stdout`]).
macro_rules! outln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        if $crate::report::stdout_taken() {
            let _ = writeln!(std::io::stderr().lock(), $($arg)*);
        } else {
            if let Err(e) = writeln!(std::io::stdout().lock(), $($arg)*) {
                $crate::report::stdout_failed(&e);
            }
        }
    }};
}

/// `eprintln!` that ignores a closed stderr instead of panicking.
macro_rules! errln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr().lock(), $($arg)*);
    }};
}

mod check;
pub mod cli;
mod diag;
mod duration;
mod error;
mod event;
mod exec;
mod exit;
mod fnv;
mod graph;
mod inspect;
mod paths;
mod picture;
mod procfs;
mod redact;
mod report;
mod run;
mod runtime;
mod script;
mod shown;
mod sigchld;
mod signals;
mod store;
mod suggest;
mod ui;
mod watch;

pub use error::{Error, ErrorKind, Location};
pub use event::{Event, State};
pub use exec::policy::Policy;
pub use report::{Outcome, ProcReport, Report, RunReport};
pub use run::{Output, TaskDb};
pub use runtime::{Cancel, Runtime, RuntimeBuilder};

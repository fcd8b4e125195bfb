//! prun runs Rhai scripts that describe pipelines of subprocess jobs.
//!
//! A script declares procs (named jobs with a closure or a command as body) and protos
//! (templates for procs), then asks for some of them to run; prun turns that into a
//! dependency graph and runs it in parallel. The pipeline is visible in the modules:
//!
//! - `script`: the Rhai host — compiles the script and registers the API;
//! - `graph`: the pure model — procs, protos, name templates, dependency names;
//! - `exec`: the scheduler that owns run state, and the jobs and commands it runs;
//! - `ui`: how progress and results are reported.
//!
//! [`run`] is the whole program behind the `prun` binary.

#![forbid(unsafe_code)]

/// `println!` that ignores a closed stdout (`prun ... | head`) instead of panicking. With
/// `--json -` stdout holds the report, and these lines go to stderr (see
/// [`report::to_stdout`]).
macro_rules! outln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        if $crate::report::stdout_taken() {
            let _ = writeln!(std::io::stderr().lock(), $($arg)*);
        } else {
            let _ = writeln!(std::io::stdout().lock(), $($arg)*);
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

pub mod cli;
mod diag;
mod duration;
mod error;
mod event;
mod exec;
mod fnv;
mod graph;
mod inspect;
mod paths;
mod redact;
mod report;
mod run;
mod script;
mod store;
mod ui;
mod watch;

pub use cli::{Inspect, RunConfig};
pub use error::{Error, Exit};
pub use run::{check, history, log, run};

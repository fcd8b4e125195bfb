//! Execution: the scheduler that owns run state, the jobs it starts, and the commands they
//! run. Only this module is async; closures run on worker threads, commands on the tokio
//! runtime, and every call into process-group and signal interfaces lives in `unix.rs`.

mod cache;
pub(crate) mod command;
mod core;
pub(crate) mod crashed;
pub(crate) mod executor;
pub(crate) mod fileglob;
mod freshness;
mod internal;
mod job;
pub(crate) mod launch;
pub(crate) mod log;
pub(crate) mod policy;
mod pool;
mod scheduler;
pub(crate) mod spawn;
mod startable;
mod state;
pub(crate) mod tap;
pub(crate) mod tree;
pub(crate) mod unix;

/// Time given to a terminated process group between SIGTERM and SIGKILL, unless a
/// script says otherwise (`kill_grace`).
pub(crate) const KILL_GRACE: std::time::Duration = std::time::Duration::from_secs(5);

pub(crate) use cache::Cache;
pub(crate) use cache::{
    InputPattern, input_patterns, output_paths, shell_names_indirectly, shell_variables,
};
pub(crate) use core::{
    AbortReason, CacheOpener, CacheTaker, Core, CoreOptions, JobSpec, Root, Wake,
};
pub(crate) use internal::install_hook as install_panic_hook;
pub(crate) use internal::message_of as panic_message;
pub(crate) use pool::{STACK_FULL, guard_stack, stack_nearly_full};
pub(crate) use scheduler::{
    ClosureRunner, Scheduler, being_made, closure_cancel, evaluating, evaluating_as,
};
pub(crate) use state::{Outcome, State};

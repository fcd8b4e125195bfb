//! Execution: the scheduler that owns run state, the jobs it starts, and the commands they
//! run. Only this module is async; closures run on worker threads, commands on the tokio
//! runtime, and every call into process-group and signal interfaces lives in `unix.rs`.

mod cache;
pub mod command;
mod core;
pub mod crashed;
pub mod executor;
pub(crate) mod fileglob;
mod freshness;
mod internal;
mod job;
pub mod launch;
pub mod log;
pub mod policy;
mod pool;
mod scheduler;
mod state;
pub mod tap;
pub(crate) mod tree;
pub mod unix;

pub use cache::Cache;
pub(crate) use cache::{InputPattern, input_patterns, output_paths};
pub use core::{AbortReason, CacheOpener, Core, CoreOptions, JobSpec, Wake};
pub use internal::install_hook as install_panic_hook;
pub use internal::message_of as panic_message;
pub use pool::{STACK_FULL, guard_stack, stack_nearly_full};
pub use scheduler::{ClosureRunner, Scheduler, evaluating, evaluating_as};
pub use state::{Outcome, State};

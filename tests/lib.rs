//! Integration tests: each test writes a Rhai script into a temporary directory, runs the
//! `prun` binary on it, and checks its output, exit status and the files its jobs wrote.
//!
//! The test modules live in `tests/suite/` rather than directly in `tests/`: Cargo turns
//! every `tests/*.rs` file into a test binary of its own, and they only compile as modules
//! of this one.

mod support;

#[path = "suite/backup_verify.rs"]
mod backup_verify;
#[path = "suite/basics.rs"]
mod basics;
#[path = "suite/check.rs"]
mod check;
#[path = "suite/cli.rs"]
mod cli;
#[path = "suite/closures.rs"]
mod closures;
#[path = "suite/commands.rs"]
mod commands;
#[path = "suite/commands_groups.rs"]
mod commands_groups;
#[path = "suite/commands_io.rs"]
mod commands_io;
#[path = "suite/db_opening.rs"]
mod db_opening;
#[path = "suite/db_readers.rs"]
mod db_readers;
#[path = "suite/docs.rs"]
mod docs;
#[path = "suite/embed.rs"]
mod embed;
#[path = "suite/errors.rs"]
mod errors;
#[path = "suite/failures.rs"]
mod failures;
#[path = "suite/helpers.rs"]
mod helpers;
#[path = "suite/inherit.rs"]
mod inherit;
#[path = "suite/inspect.rs"]
mod inspect;
#[path = "suite/layering.rs"]
mod layering;
#[path = "suite/live.rs"]
mod live;
#[path = "suite/lock.rs"]
mod lock;
#[path = "suite/options.rs"]
mod options;
#[path = "suite/output.rs"]
mod output;
#[path = "suite/pg_copy.rs"]
mod pg_copy;
#[path = "suite/picture.rs"]
mod picture;
#[path = "suite/plain.rs"]
mod plain;
#[path = "suite/policy.rs"]
mod policy;
#[path = "suite/protos.rs"]
mod protos;
#[path = "suite/rdeps.rs"]
mod rdeps;
#[path = "suite/report.rs"]
mod report;
#[path = "suite/resources.rs"]
mod resources;
#[path = "suite/sched_model.rs"]
mod sched_model;
#[path = "suite/scheduling.rs"]
mod scheduling;
#[path = "suite/script_args.rs"]
mod script_args;
#[path = "suite/scripts.rs"]
mod scripts;
#[path = "suite/slurm.rs"]
mod slurm;
#[path = "suite/ssh.rs"]
mod ssh;
#[path = "suite/stdlib.rs"]
mod stdlib;
#[path = "suite/stress.rs"]
mod stress;
#[path = "suite/taskdb.rs"]
mod taskdb;
#[path = "suite/trust_end.rs"]
mod trust_end;
#[path = "suite/trust_quote.rs"]
mod trust_quote;
#[path = "suite/trust_results.rs"]
mod trust_results;
#[path = "suite/trust_state.rs"]
mod trust_state;
#[path = "suite/ux.rs"]
mod ux;
#[path = "suite/waits.rs"]
mod waits;
#[path = "suite/watch.rs"]
mod watch;

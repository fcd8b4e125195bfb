//! The Rhai host: the engine, the functions scripts call, and how errors are shown.
//!
//! Theory of operation: the script's top level runs on the calling thread and declares
//! procs through the registered API, which talks to the [`crate::exec::Scheduler`].
//! Closure bodies are kept as [`callback::ScriptCallback`]s — the closure plus a snapshot
//! of the calling context, so that modules the script imported still resolve when the
//! closure later runs on a worker thread. Rhai is built with `sync`, so the engine and the
//! AST are shared by all threads; procs pass data through results, and must not write the
//! same captured variable at the same time (Rhai reports that as a data race).
//!
//! Inside a closure, the API functions know which proc they run for through a thread-local
//! [`job::JobCtx`], so `run`/`wait` behave as `ctx.run`/`ctx.wait` there.

mod api;
mod callback;
mod cleanup;
mod cliargs;
mod commands;
mod ctx;
mod error;
mod helpers;
mod host;
mod identity;
mod job;
mod lint;
mod opts;
mod stdlib;
mod values;

pub(crate) use api::DbSettings;
pub(crate) use cliargs::{DeclError, Declaration};
pub(crate) use error::ScriptError;
pub(crate) use helpers::env as env_of_run;
pub(crate) use host::{API_FUNCTIONS, EngineSetup, Function, Host, HostOptions, TopLevelError};
pub(crate) use host::{declaration_in, impure_native_called, read_script, syntax_error};
pub(crate) use identity::{closure_module, record_opaque_module};
pub(crate) use lint::{Caught, option_keys, recorded_place, unknown_functions};
pub(crate) use stdlib::install_with as install_modules;
pub(crate) use stdlib::module_file;
pub(crate) use stdlib::names as stdlib_names;
pub(crate) use values::thrown_text;

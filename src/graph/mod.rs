//! The pure model of a pipeline: procs, protos, name templates and dependency names.
//!
//! This module owns *what* exists (definitions, names, which proc a proto created) and how
//! names resolve; it does not know about states, threads or processes. The scheduler in
//! `exec` keeps the run state of each proc beside the [`Graph`], indexed by the same
//! [`ProcId`]. Everything here is synchronous and unit-tested without a runtime.

mod argv;
pub(crate) mod arity;
mod def;
mod error;
mod hints;
mod model;
mod need;
pub(crate) mod pattern;
pub(crate) mod resources;
pub(crate) mod rules;
pub(crate) mod shell;

pub(crate) use argv::Argv;
pub(crate) use def::{
    Body, Callable, Callback, Choices, DepSpec, FileSpec, List, OutputMode, OutputSpec, ProcDef,
};
pub(crate) use error::GraphError;
pub(crate) use hints::{graph_error, graph_error_at_definition, proc_hint};
pub(crate) use model::{Graph, ProcId, ProcNode, Proto, ProtoId, args_map, fill_known, fill_text};
pub(crate) use need::{Answer, BodyOnly, Need, NeedKey, Needs, closure_ctx};
pub(crate) use need::{CallFailure, Items, call_strings};
pub(crate) use resources::Resources;

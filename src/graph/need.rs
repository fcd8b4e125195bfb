//! Closure answers: the graph never calls a script closure itself.
//!
//! Creating a proc from a proto needs the names its dependency closures return, and
//! checking or expanding a placeholder needs what its `arg_choices` closure returns. Those
//! closures are user code: they may call `state()`, `results()`, `exec()` or `sleep()`, so
//! they must never run while the run state is locked. When the graph needs such a value
//! and has no [`Answer`] for it, it fails with [`GraphError::Unresolved`] carrying the
//! [`Need`]s; the caller releases the lock, calls [`Need::answer`], hands the answers back
//! with [`super::Graph::answer`] and retries the whole operation (see
//! `exec::Scheduler::graph_op`). Answers to `arg_choices` closures are forgotten when an
//! operation completes, so that each `run()` or `create()` asks the closure afresh.

use std::fmt;
use std::sync::Arc;

use rhai::{Dynamic, Map};

use super::GraphError;
use super::def::Callback;
use super::model::ProtoId;

/// Which closure value a [`Need`] stands for.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum NeedKey {
    /// The dependency closures of the proc of this name (plain, or made from a proto).
    Deps(String),
    /// The `arg_choices` closure of one placeholder of a proto.
    Choices(ProtoId, String),
    /// The closure a proto gives as its whole `arg_choices` map.
    ChoicesMap(ProtoId),
}

/// What the closures of one [`Need`] returned: one list of names per closure, or the error
/// of the first that failed. For [`NeedKey::ChoicesMap`], one list per placeholder of the
/// returned map, led by the placeholder's name.
pub type Answer = Result<Vec<Vec<String>>, GraphError>;

/// Closures the graph must have called before it can go on.
#[derive(Clone)]
pub struct Need {
    key: NeedKey,
    /// "a dependency closure" or "the arg_choices closure", for messages.
    what: &'static str,
    /// The proc (or proto pattern) the closures belong to.
    name: String,
    ctx: Dynamic,
    values: Vec<String>,
    callbacks: Vec<Callback>,
}

impl Need {
    /// The need for `callbacks`, called with `ctx` and the placeholder `values`.
    pub(crate) fn new(
        key: NeedKey,
        what: &'static str,
        name: &str,
        ctx: Dynamic,
        values: Vec<String>,
        callbacks: Vec<Callback>,
    ) -> Need {
        Need {
            key,
            what,
            name: name.to_string(),
            ctx,
            values,
            callbacks,
        }
    }

    /// Which value this is.
    pub fn key(&self) -> &NeedKey {
        &self.key
    }

    /// What kind of closure this runs ("a dependency closure", "the arg_choices closure").
    pub fn what(&self) -> &'static str {
        self.what
    }

    /// Calls the closures. This runs user code: never while run state is locked.
    pub fn answer(&self) -> Answer {
        if let NeedKey::ChoicesMap(_) = self.key {
            return self.answer_map();
        }
        self.callbacks
            .iter()
            .map(|cb| {
                call_strings(cb, self.ctx.clone(), &self.values).map_err(|f| {
                    let message = match f {
                        CallFailure::Threw(m) => m,
                        CallFailure::NotStrings => format!(
                            "it must return a string or an array of strings ({})",
                            cb.origin()
                        ),
                    };
                    GraphError::Callback {
                        what: self.what,
                        name: self.name.clone(),
                        message,
                    }
                })
            })
            .collect()
    }
}

impl Need {
    fn fail(&self, message: String) -> GraphError {
        GraphError::Callback {
            what: self.what,
            name: self.name.clone(),
            message,
        }
    }

    /// Calls a closure that returns the whole `arg_choices` map.
    fn answer_map(&self) -> Answer {
        let mut out = Vec::new();
        for cb in &self.callbacks {
            let v = cb
                .call(self.ctx.clone(), &self.values)
                .map_err(|e| self.fail(crate::diag::runtime_error(cb.origin().file(), &e)))?;
            let Some(map) = v.try_cast::<Map>() else {
                return Err(self.fail(format!(
                    "it must return a map of placeholder to values ({})",
                    cb.origin()
                )));
            };
            for (arg, values) in map {
                let Some(values) = values.try_cast::<rhai::Array>() else {
                    return Err(self.fail(format!(
                        "its value for [{arg}] must be an array ({})",
                        cb.origin()
                    )));
                };
                let mut list = vec![arg.to_string()];
                list.extend(values.into_iter().map(|v| v.to_string()));
                out.push(list);
            }
        }
        Ok(out)
    }
}

/// The needs of an unfinished operation, inside [`GraphError::Unresolved`].
#[derive(Clone)]
pub struct Needs(pub Arc<Vec<Need>>);

impl Needs {
    /// One need.
    pub(crate) fn one(need: Need) -> Needs {
        Needs(Arc::new(vec![need]))
    }
}

impl fmt::Debug for Needs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.0.iter().map(|n| &n.key))
            .finish()
    }
}

impl fmt::Display for Needs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<String> = self
            .0
            .iter()
            .map(|n| format!("{} of \"{}\"", n.what, n.name))
            .collect();
        f.write_str(&names.join(", "))
    }
}

impl PartialEq for Needs {
    fn eq(&self, other: &Needs) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

/// Why a closure gave no list of strings.
#[derive(Debug)]
pub(crate) enum CallFailure {
    /// It threw; the message names where.
    Threw(String),
    /// It returned something else than a string or an array.
    NotStrings,
}

/// Calls a closure that returns a string or an array of strings (names, paths).
pub(crate) fn call_strings(
    cb: &Callback,
    ctx: Dynamic,
    values: &[String],
) -> Result<Vec<String>, CallFailure> {
    let out = cb.call(ctx, values).map_err(|e| {
        let origin = cb.origin();
        CallFailure::Threw(crate::diag::runtime_error(origin.file(), &e))
    })?;
    if out.is_string() {
        return Ok(vec![out.to_string()]);
    }
    match out.try_cast::<rhai::Array>() {
        Some(items) => Ok(items.into_iter().map(|v| v.to_string()).collect()),
        None => Err(CallFailure::NotStrings),
    }
}

/// The context map handed to dependency, `arg_choices`, `inputs` and `outputs` closures.
pub fn closure_ctx(name: &str, args: &[(String, String)], params: &Map) -> Dynamic {
    let mut m = Map::new();
    m.insert("name".into(), name.into());
    m.insert("args".into(), super::args_map(args).into());
    m.insert("params".into(), params.clone().into());
    m.into()
}

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
pub(crate) enum NeedKey {
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
pub(crate) type Answer = Result<Vec<Vec<String>>, GraphError>;

/// Closures the graph must have called before it can go on.
#[derive(Clone)]
pub(crate) struct Need {
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
    pub(crate) fn key(&self) -> &NeedKey {
        &self.key
    }

    /// What kind of closure this runs ("a dependency closure", "the arg_choices closure").
    pub(crate) fn what(&self) -> &'static str {
        self.what
    }

    /// Calls the closures. This runs user code: never while run state is locked.
    pub(crate) fn answer(&self) -> Answer {
        if let NeedKey::ChoicesMap(_) = self.key {
            return self.answer_map();
        }
        self.callbacks
            .iter()
            .map(|cb| {
                let items = match self.key {
                    NeedKey::Deps(_) => Items::Strings,
                    _ => Items::Values,
                };
                call_strings(cb, self.ctx.clone(), &self.values, items).map_err(|f| {
                    let message = match f {
                        CallFailure::Threw(m) => m,
                        CallFailure::NotStrings(got) => format!(
                            "it must return a string or an array of strings, not {got} ({})",
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
                .map_err(|e| self.fail(crate::diag::closure_error(&cb.origin(), &e)))?;
            let Some(map) = v.try_cast::<Map>() else {
                return Err(self.fail(format!(
                    "it must return a map of placeholder to values ({})",
                    cb.origin()
                )));
            };
            for (arg, values) in map {
                // As a closure of one placeholder returns them: a string is one choice.
                let values = strings(values, Items::Values).map_err(|NotStrings(got)| {
                    self.fail(format!(
                        "its value for [{arg}] must be a string or an array of strings, \
                         not {got} ({})",
                        cb.origin()
                    ))
                })?;
                let mut list = vec![arg.to_string()];
                list.extend(values);
                out.push(list);
            }
        }
        Ok(out)
    }
}

/// The needs of an unfinished operation, inside [`GraphError::Unresolved`].
#[derive(Clone)]
pub(crate) struct Needs(pub Arc<Vec<Need>>);

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
    /// It returned something else than a string or an array of strings: what it was, in
    /// words ("an integer", "an array holding a map").
    NotStrings(String),
}

/// What a closure's array may hold besides strings.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Items {
    /// Strings only: names and paths, as a static `deps` or `inputs` list takes them
    /// (`[1]` is no proc's name by mistake).
    Strings,
    /// Integers and booleans too, as their text: placeholder values, as a static
    /// `arg_choices` list takes them (`[1, 2]`).
    Values,
}

/// Calls a closure that returns a string or an array of strings (names, paths).
pub(crate) fn call_strings(
    cb: &Callback,
    ctx: Dynamic,
    values: &[String],
    items: Items,
) -> Result<Vec<String>, CallFailure> {
    let out = cb
        .call(ctx, values)
        .map_err(|e| CallFailure::Threw(crate::diag::closure_error(&cb.origin(), &e)))?;
    strings(out, items).map_err(|NotStrings(what)| CallFailure::NotStrings(what))
}

/// What a closure returned instead of a string or an array of strings, in words ("an
/// integer", "an array holding a map").
struct NotStrings(String);

/// The strings a closure returned: a string is one, an array its items. Anything else,
/// or an array holding what `items` does not take (always `()`, an array or a map: no
/// name or path is one, and `[env("UNSET")]` would stand for the path `""` without a
/// word), is an error saying what it was.
fn strings(out: Dynamic, items: Items) -> Result<Vec<String>, NotStrings> {
    if out.is_string() {
        return Ok(vec![out.to_string()]);
    }
    let what = crate::diag::type_words(out.type_name());
    let Some(array) = out.try_cast::<rhai::Array>() else {
        return Err(NotStrings(what));
    };
    array
        .into_iter()
        .map(|v| {
            let taken = v.is_string() || (items == Items::Values && (v.is_int() || v.is_bool()));
            if taken {
                Ok(v.to_string())
            } else {
                Err(NotStrings(format!(
                    "an array holding {}",
                    crate::diag::type_words(v.type_name())
                )))
            }
        })
        .collect()
}

/// The context map handed to dependency, `arg_choices`, `inputs` and `outputs` closures:
/// `name`, `args` and `params`, and for each member only a proc's body has
/// ([`BODY_ONLY`]) a [`BodyOnly`] in its place, so that `ctx.results.a` there is an error
/// naming the rule rather than a property of nothing.
pub(crate) fn closure_ctx(name: &str, args: &[(String, String)], params: &Map) -> Dynamic {
    let mut m = Map::new();
    m.insert("name".into(), name.into());
    m.insert("args".into(), super::args_map(args).into());
    m.insert("params".into(), params.clone().into());
    for &member in BODY_ONLY {
        m.insert(member.into(), Dynamic::from(BodyOnly(member)));
    }
    m.into()
}

/// The members of a body's `ctx` that a closure evaluated for the scheduler has no value
/// for: its dependencies have not run (or are being chosen), and it has no inputs read.
pub(crate) const BODY_ONLY: &[&str] = &[
    "results",
    "deps_changed",
    "changed_deps",
    "input_fingerprint",
];

/// Stands, in a scheduler closure's `ctx` map, for the body-only member it names: the
/// script host makes reading into it an error naming the rule.
#[derive(Debug, Clone, Copy)]
pub(crate) struct BodyOnly(pub &'static str);

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use rhai::EvalAltResult;

    use super::*;
    use crate::diag::Origin;
    use crate::graph::{Body, Callable, Choices, DepSpec, Graph, ProcDef};

    /// A closure stand-in returning a fixed value, counting its calls.
    struct Returns(Dynamic, AtomicUsize);

    impl Callable for Returns {
        fn call(&self, _: Dynamic, _: &[String]) -> Result<Dynamic, Box<EvalAltResult>> {
            self.1.fetch_add(1, Ordering::SeqCst);
            Ok(self.0.clone())
        }
        fn origin(&self) -> Origin {
            Origin::from("test")
        }
        fn identity(&self) -> String {
            String::new()
        }
    }

    fn returns(v: impl Into<Dynamic>) -> Arc<Returns> {
        Arc::new(Returns(v.into(), AtomicUsize::new(0)))
    }

    fn needs(e: GraphError) -> Vec<Need> {
        match e {
            GraphError::Unresolved(n) => n.0.iter().cloned().collect(),
            e => panic!("expected needs, got {e}"),
        }
    }

    #[test]
    fn a_proc_with_a_dependency_closure_waits_for_its_answer() {
        let mut g = Graph::default();
        let cb = returns("base");
        let mut def = ProcDef::new(Body::Cmd(["true"].into_iter().collect()), Origin::from("t"));
        def.deps = vec![DepSpec::Name("first".into()), DepSpec::Closure(cb.clone())].into();
        let mut def = Arc::new(def);
        let need = needs(g.add_proc("p", &mut def.clone()).unwrap_err()).remove(0);
        assert_eq!(need.key(), &NeedKey::Deps("p".into()));
        assert!(g.lookup("p").is_none(), "nothing was created");
        assert_eq!(cb.1.load(Ordering::SeqCst), 0, "the graph called nothing");
        g.answer(need.key().clone(), need.answer());
        let id = g.add_proc("p", &mut def).unwrap();
        assert_eq!(g.proc(id).deps[..], ["first", "base"]);
    }

    #[test]
    fn choices_closures_are_asked_once_per_operation() {
        let mut g = Graph::default();
        let cb = returns(rhai::Array::from(["a".into(), "b".into()]));
        let mut def = ProcDef::new(Body::Cmd(["true"].into_iter().collect()), Origin::from("t"));
        def.extras_mut().arg_choices = vec![("x".into(), Choices::Closure(cb.clone()))].into();
        g.add_proto("t::[x]", Arc::new(def)).unwrap();
        let need = needs(g.expand("t::*").unwrap_err()).remove(0);
        let key = need.key().clone();
        g.answer(key.clone(), need.answer());
        assert_eq!(g.expand("t::*").unwrap().len(), 2);
        assert!(g.expand("t::c").is_err(), "c is not a choice");
        g.forget_answers(&[key]);
        assert!(matches!(g.expand("t::*"), Err(GraphError::Unresolved(_))));
        assert_eq!(cb.1.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn a_whole_map_closure_answers_every_placeholder_and_rejects_others() {
        let mut g = Graph::default();
        let mut m = Map::new();
        m.insert("env".into(), rhai::Array::from(["dev".into()]).into());
        let mut def = ProcDef::new(Body::Cmd(["true"].into_iter().collect()), Origin::from("t"));
        def.extras_mut().choices_map = Some(returns(m));
        g.add_proto("d::[env]", Arc::new(def.clone())).unwrap();
        let need = needs(g.expand("d::*").unwrap_err()).remove(0);
        assert_eq!(need.key(), &NeedKey::ChoicesMap(0));
        g.answer(need.key().clone(), need.answer());
        let ids = g.expand("d::*").unwrap();
        assert_eq!(&*g.proc(ids[0]).name, "d::dev");
        let mut bad = Map::new();
        bad.insert("zone".into(), rhai::Array::new().into());
        def.extras_mut().choices_map = Some(returns(bad));
        g.add_proto("z::[env]", Arc::new(def)).unwrap();
        let need = needs(g.expand("z::*").unwrap_err()).remove(0);
        g.answer(need.key().clone(), need.answer());
        let e = g.expand("z::*").unwrap_err();
        assert!(
            e.to_string().contains("[zone], which is not a placeholder"),
            "{e}"
        );
    }

    #[test]
    fn a_glob_over_choices_creates_every_proc_or_none() {
        let mut g = Graph::default();
        let cb = returns("dep");
        let mut def = ProcDef::new(Body::Cmd(["true"].into_iter().collect()), Origin::from("t"));
        def.deps = vec![DepSpec::Closure(cb.clone())].into();
        def.extras_mut().arg_choices = vec![(
            "x".into(),
            Choices::List(vec!["a".into(), "*".into(), "c".into()]),
        )]
        .into();
        g.add_proto("p::[x]", Arc::new(def)).unwrap();
        let needs = needs(g.expand("p::*").unwrap_err());
        assert_eq!(needs.len(), 3, "one need per proc to create");
        assert!(g.lookup("p::a").is_none() && g.lookup("p::*").is_none());
        for n in &needs {
            g.answer(n.key().clone(), n.answer());
        }
        let ids = g.expand("p::*").unwrap();
        assert_eq!(ids.len(), 3);
        assert_eq!(cb.1.load(Ordering::SeqCst), 3);
    }
}

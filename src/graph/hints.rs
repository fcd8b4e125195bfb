//! "Did you mean …" for names of the graph (see [`crate::suggest`]): the procs, protos and
//! names protos make that are nearest to a wrong one.

use super::pattern::is_glob;
use super::{Choices, Graph, GraphError, Proto};
use crate::suggest::hint;

/// How many names of each proto (filled with its listed `arg_choices`) a hint compares.
const PROTO_NAMES: usize = 100;

/// The hint for a proc name the graph does not know: the nearest procs, and the names
/// protos make that a target may be: those made from their listed `arg_choices`
/// (`build::dev`) and the glob over their choices (`build::*`). Not a proto's template
/// (`build::[env]`), which names no proc; when nothing else is near, the proto whose
/// template is, with the placeholders to fill in.
pub(crate) fn proc_hint(g: &Graph, wrong: &str) -> String {
    let made: Vec<String> = g
        .protos()
        .flat_map(|p| proto_names(p).into_iter().chain(glob_over_choices(p)))
        .collect();
    let names = g
        .procs()
        .map(|(_, n)| &*n.name)
        .chain(made.iter().map(String::as_str));
    let near = hint(wrong, names, "\"");
    if !near.is_empty() {
        return near;
    }
    let templates = g.protos().map(|p| p.template.text());
    let Some(&template) = crate::suggest::nearest(wrong, templates).first() else {
        return near;
    };
    let Some(p) = g.protos().find(|p| p.template.text() == template) else {
        return near;
    };
    let params: Vec<String> = p.template.params().map(|a| format!("[{a}]")).collect();
    format!(
        "; did you mean a proc of proto \"{template}\" (with a value for {})?",
        params.join(" and ")
    )
}

/// The glob that stands for every proc a proto makes from its choices (`build::*`),
/// when each placeholder has choices (listed or computed): a glob over a placeholder
/// without any matches nothing.
fn glob_over_choices(p: &Proto) -> Option<String> {
    let extras = p.def.extras();
    let chosen = |param: &str| {
        extras.choices_map.is_some() || extras.arg_choices.iter().any(|(a, _)| a == param)
    };
    if !p.template.params().all(chosen) {
        return None;
    }
    let args: Vec<(String, String)> = p
        .template
        .params()
        .map(|param| (param.to_string(), "*".to_string()))
        .collect();
    p.template.fill(&args).ok()
}

/// The names a proto makes from its listed `arg_choices` (none when a placeholder's
/// choices are computed by a closure or not given), at most [`PROTO_NAMES`].
fn proto_names(p: &Proto) -> Vec<String> {
    let mut combos: Vec<Vec<(String, String)>> = vec![Vec::new()];
    for param in p.template.params() {
        let Some(Choices::List(values)) = p
            .def
            .extras()
            .arg_choices
            .iter()
            .find(|(a, _)| a == param)
            .map(|(_, c)| c)
        else {
            return Vec::new();
        };
        combos = combos
            .iter()
            .flat_map(|c| {
                values.iter().map(move |v| {
                    let mut c = c.clone();
                    c.push((param.to_string(), v.clone()));
                    c
                })
            })
            .take(PROTO_NAMES)
            .collect();
    }
    combos
        .iter()
        .filter_map(|args| p.template.fill(args).ok())
        .collect()
}

/// A graph error's message, with the nearest names when it is about a name that does not
/// exist.
pub(crate) fn graph_error(g: &Graph, e: &GraphError) -> String {
    let wrong = match e {
        GraphError::NoMatch(n)
        | GraphError::UnknownProc(n)
        | GraphError::NoProcMatch(n)
        | GraphError::NoScheduledMatch(n)
        | GraphError::MissingDep { dep: n, .. } => n,
        _ => return e.to_string(),
    };
    // `start`, `wait` and `state` take existing procs only: say which proto the name
    // would come from rather than a near name.
    if let GraphError::UnknownProc(n) | GraphError::NoProcMatch(n) = e
        && let Some(p) = g.protos().find(|p| p.template.matches(n).is_some())
    {
        let refused = p.template.matches(n).and_then(|args| {
            args.into_iter()
                .find(|(arg, value)| !is_glob(value) && p.lists(arg, value) == Some(false))
        });
        return match refused {
            Some((arg, value)) => format!(
                "{e}, and proto \"{}\" makes none: \"{value}\" is not one of the arg_choices of [{arg}]",
                p.template.text()
            ),
            None => format!(
                "{e}; it would be made from proto \"{}\": create it first (run, create or ctx.run)",
                p.template.text()
            ),
        };
    }
    if let GraphError::NoMatch(n) = e
        && let Some(why) = separator_in_value(g, n)
    {
        return format!("{e}: {why}");
    }
    format!("{e}{}", proc_hint(g, wrong))
}

/// Why `name` is no name of a proto whose template it fits but for the separator in the
/// last placeholder's value (`x::1::2` for `x::[a]`).
fn separator_in_value(g: &Graph, name: &str) -> Option<String> {
    g.protos().find_map(|p| {
        let (param, value) = p.template.fits_but_for_separator(name)?;
        Some(format!(
            "proto \"{}\" would take {value:?} for [{param}], but a placeholder's value cannot hold the separator \"{}\"",
            p.template.text(),
            p.template.separator()
        ))
    })
}

/// [`graph_error`] for an error no call of the script led to (a `now` proc scheduled when
/// the top level ended, a target of the command line): led by where the proc it is
/// about is defined (`main.rhai:2:1: dependency cycle: a -> b -> a`).
pub(crate) fn graph_error_at_definition(g: &Graph, e: &GraphError) -> String {
    let about = match e {
        GraphError::Cycle(cycle) => cycle.first(),
        GraphError::WaveViolation { dependent, .. } | GraphError::MissingDep { dependent, .. } => {
            Some(dependent)
        }
        GraphError::TooLate { declarer, .. } => Some(declarer),
        _ => None,
    };
    let message = graph_error(g, e);
    match about.and_then(|name| g.lookup(name)) {
        Some(id) => format!("{}: {message}", g.proc(id).def.origin),
        None => message,
    }
}

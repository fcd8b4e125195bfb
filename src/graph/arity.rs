//! How many parameters a definition's closures may take, checked where they are given.
//!
//! A closure is called with a ctx and the placeholder values of its proc (a body, a
//! dependency, `inputs` or `outputs` closure) or with a ctx alone (an `arg_choices`
//! closure, which runs before any proc exists); it may declare fewer parameters: `|ctx|`
//! or `||`. A closure that takes none of these counts would fail only when called, deep
//! into a run: [`check`] refuses it when the proc or proto is declared.

use super::def::{Body, Callback, Choices, DepSpec, FileSpec, Origin, ProcDef};

/// How many values a closure taking `arities` parameters is passed when called with a ctx
/// and `values` placeholder values: all of them with the ctx, the ctx alone, or nothing
/// (the first it takes); `None` when it takes none of these. Unknown arities (a native
/// function) are passed everything.
pub(crate) fn passed(arities: Option<&[usize]>, values: usize) -> Option<usize> {
    let Some(arities) = arities else {
        return Some(values + 1);
    };
    [values + 1, 1, 0].into_iter().find(|n| arities.contains(n))
}

/// Why the closure at `origin` (given in `option`, when known), taking `arities`
/// parameters, cannot be called with a ctx and the values of `params` (placeholder names):
/// where it is, what it takes, how it is called.
pub(crate) fn mismatch(
    option: Option<&str>,
    origin: &Origin,
    arities: &[usize],
    params: &[&str],
) -> String {
    let takes = match arities {
        [] => "no parameter count it can be called with (more values are curried into it than it has parameters)".to_string(),
        [1] => "1 parameter".to_string(),
        _ => {
            let counts: Vec<String> = arities.iter().map(usize::to_string).collect();
            format!("{} parameters", counts.join(" or "))
        }
    };
    let closure = match option {
        Some(option) => format!("the {option} closure"),
        None => "the closure".to_string(),
    };
    format!(
        "{closure} at {origin} takes {takes}; it is called as {}",
        forms(params)
    )
}

/// The parameter lists a closure may declare, given placeholder names: `|ctx, env|,
/// |ctx| or ||`.
fn forms(params: &[&str]) -> String {
    if params.is_empty() {
        return "|ctx| or ||".to_string();
    }
    format!("|ctx, {}|, |ctx| or ||", params.join(", "))
}

/// Checks that every closure of `def` takes a parameter count it is called with; `params`
/// are the placeholder names of its proto (none for a proc). The error names the option
/// and the closure.
pub(crate) fn check(def: &ProcDef, params: &[&str]) -> Result<(), String> {
    let with_values = closures(def)
        .map(|(option, cb, placeholders)| (option, cb, if placeholders { params } else { &[] }));
    for (option, cb, params) in with_values {
        let Some(arities) = cb.arities() else {
            continue;
        };
        if passed(Some(arities), params.len()).is_none() {
            return Err(mismatch(Some(&option), &cb.origin(), arities, params));
        }
    }
    Ok(())
}

/// The closures of `def`: the option each is given in, and whether it is passed the
/// placeholder values (the `arg_choices` ones are not).
fn closures(def: &ProcDef) -> impl Iterator<Item = (String, &Callback, bool)> {
    let body = match &def.body {
        Body::Closure(cb) => Some(("body".to_string(), cb, true)),
        Body::Cmd(_) | Body::Shell(_) => None,
    };
    let deps = def.deps.iter().filter_map(|d| match d {
        DepSpec::Closure(cb) => Some(("`deps`".to_string(), cb, true)),
        DepSpec::Name(_) => None,
    });
    let inputs = def.inputs.iter().filter_map(|f| file_closure("`inputs`", f));
    let outputs = def
        .outputs
        .iter()
        .filter_map(|o| file_closure("`outputs`", &o.files));
    let extras = def.extras();
    let choices = extras.arg_choices.iter().filter_map(|(arg, c)| match c {
        Choices::Closure(cb) => Some((format!("`arg_choices.{arg}`"), cb, false)),
        Choices::List(_) => None,
    });
    let map = extras
        .choices_map
        .as_ref()
        .map(|cb| ("`arg_choices`".to_string(), cb, false));
    body.into_iter()
        .chain(deps)
        .chain(inputs)
        .chain(outputs)
        .chain(choices)
        .chain(map)
}

fn file_closure<'a>(option: &str, spec: &'a FileSpec) -> Option<(String, &'a Callback, bool)> {
    match spec {
        FileSpec::Closure(cb) => Some((option.to_string(), cb, true)),
        FileSpec::Path(_) => None,
    }
}

//! How many parameters a definition's closures may take, checked where they are given.
//!
//! A closure is called with a ctx and the placeholder values of its proc (a body, a
//! dependency, `inputs` or `outputs` closure) or with a ctx alone (an `arg_choices`
//! closure, which runs before any proc exists); it may declare fewer parameters: `|ctx|`
//! or `||`. A closure that takes none of these counts would fail only when called, deep
//! into a run: [`check`] refuses it when the proc or proto is declared, and so a
//! function pointer to no function (`Fn("nosuch")`).

use super::GraphError;
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
    let takes = takes(arities);
    let closure = match option {
        Some(option) => format!("the {option} closure"),
        None => "the closure".to_string(),
    };
    format!(
        "{closure} at {origin} takes {takes}; it is called as {}",
        forms(params)
    )
}

/// What a closure taking `arities` parameters takes, in words: `2 parameters`.
pub(crate) fn takes(arities: &[usize]) -> String {
    match arities {
        [] => "no parameter count it can be called with (more values are curried into it than it has parameters)".to_string(),
        [1] => "1 parameter".to_string(),
        _ => {
            let counts: Vec<String> = arities.iter().map(usize::to_string).collect();
            format!("{} parameters", counts.join(" or "))
        }
    }
}

/// The parameter lists a closure may declare, given placeholder names: `|ctx, env|,
/// |ctx| or ||`.
fn forms(params: &[&str]) -> String {
    if params.is_empty() {
        return "|ctx| or ||".to_string();
    }
    format!("|ctx, {}|, |ctx| or ||", params.join(", "))
}

/// The option a closure is given in.
#[derive(Clone, Copy)]
enum OptionOf<'a> {
    Body,
    Deps,
    Inputs,
    Outputs,
    /// `arg_choices: |ctx| #{ ... }`.
    ChoicesMap,
    /// `arg_choices: #{ placeholder: |ctx| [...] }`.
    Choices(&'a str),
}

impl OptionOf<'_> {
    /// Whether the closure is passed the placeholder values (an `arg_choices` closure
    /// runs before any proc exists, and is not).
    fn gets_values(self) -> bool {
        !matches!(self, OptionOf::ChoicesMap | OptionOf::Choices(_))
    }

    /// As a message names it (written out only for a message).
    fn words(self) -> String {
        match self {
            OptionOf::Body => "body".into(),
            OptionOf::Deps => "`deps`".into(),
            OptionOf::Inputs => "`inputs`".into(),
            OptionOf::Outputs => "`outputs`".into(),
            OptionOf::ChoicesMap => "`arg_choices`".into(),
            OptionOf::Choices(arg) => format!("`arg_choices.{arg}`"),
        }
    }
}

/// Checks that every closure of `def`, the definition of the proc or proto `name` (`what`
/// says which), takes a parameter count it is called with; `params` are the placeholder
/// names of its proto (none for a proc). The error names the option and the closure.
pub(crate) fn check(
    what: &str,
    name: &str,
    def: &ProcDef,
    params: &[&str],
) -> Result<(), GraphError> {
    for (option, cb) in closures(def) {
        if let Some(why) = cb.missing() {
            return Err(GraphError::Option(format!(
                "{what} \"{name}\": the {} closure at {} is {why}",
                option.words(),
                cb.origin()
            )));
        }
        let Some(arities) = cb.arities() else {
            continue;
        };
        let params = if option.gets_values() { params } else { &[] };
        if passed(Some(arities), params.len()).is_none() {
            let message = mismatch(Some(&option.words()), &cb.origin(), arities, params);
            return Err(GraphError::Option(format!("{what} \"{name}\": {message}")));
        }
    }
    Ok(())
}

/// The closures of `def`, each with the option it is given in.
fn closures(def: &ProcDef) -> impl Iterator<Item = (OptionOf<'_>, &Callback)> {
    let body = match &def.body {
        Body::Closure(cb) => Some((OptionOf::Body, cb)),
        Body::Cmd(_) | Body::Shell(_) => None,
    };
    let deps = def.deps.iter().filter_map(|d| match d {
        DepSpec::Closure(cb) => Some((OptionOf::Deps, cb)),
        DepSpec::Name(_) => None,
    });
    let inputs = def
        .inputs
        .iter()
        .filter_map(|f| file_closure(OptionOf::Inputs, f));
    let outputs = def
        .outputs
        .iter()
        .filter_map(|o| file_closure(OptionOf::Outputs, &o.files));
    let extras = def.extras();
    let choices = extras.arg_choices.iter().filter_map(|(arg, c)| match c {
        Choices::Closure(cb) => Some((OptionOf::Choices(arg), cb)),
        Choices::List(_) => None,
    });
    let map = extras
        .choices_map
        .as_ref()
        .map(|cb| (OptionOf::ChoicesMap, cb));
    body.into_iter()
        .chain(deps)
        .chain(inputs)
        .chain(outputs)
        .chain(choices)
        .chain(map)
}

fn file_closure<'a>(
    option: OptionOf<'a>,
    spec: &'a FileSpec,
) -> Option<(OptionOf<'a>, &'a Callback)> {
    match spec {
        FileSpec::Closure(cb) => Some((option, cb)),
        FileSpec::Path(_) => None,
    }
}

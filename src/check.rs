//! `prun check`: the problems of a script found without running anything.
//!
//! The script is evaluated as a dry run whose commands, file writes and sleeps do
//! nothing (see `script::host`), so its procs and protos are declared as in a run; an
//! unknown option key found while it runs, or a wrong value of a `proc`/`proto` option,
//! is recorded and left out (a missing or doubled body recorded and replaced by one, a
//! definition the graph refuses recorded and left out), so that the evaluation goes on. Then every declaration is checked, scheduled or not: dependencies
//! that name nothing, a dependency on a higher wave, dependency cycles, targets that
//! name nothing, and (in the script's text, see `script::lint`) option keys that `proc`,
//! `proto`, `set_options` and the commands do not take, and calls of functions that do
//! not exist; a fault a definition was refused for already (a `now` proc's cycle) is
//! told once, at that definition. The first error that stopped the
//! evaluation is a problem too, unless one of these already says the same thing. So is a
//! `when_scheduled` rule that matches nothing (a run warns of those of its scheduled
//! procs, with [`unmatched_when_scheduled`]).
//!
//! Only what would make a real run fail is a problem: a call whose error the script
//! catches itself (in the body of a `try`, see `script::lint::Caught`) is not recorded
//! and left out but gets its error as in a run, and the script's `catch` decides; the
//! texts' checks leave such calls out too.

use std::collections::BTreeSet;

use crate::diag::Origin;
use crate::exec::Core;
use crate::exit::Exit;
use crate::graph::pattern::{Template, has_placeholders, is_glob, wildcard_match};
use crate::graph::{Choices, DepSpec, Graph, GraphError, ProcDef, ProcId, fill_text};

/// One thing wrong with a script: where it was written, when known, and what it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Problem {
    pub at: Option<Origin>,
    pub message: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.at {
            Some(at) => write!(f, "{at}: {}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

impl Problem {
    fn at(origin: &Origin, message: String) -> Problem {
        Problem {
            at: Some(origin.clone()),
            message,
        }
    }
}

/// Why the evaluation of the script ended early, if it did.
#[derive(Debug, Default)]
pub(crate) struct Stopped {
    /// A script error, formatted with its `path:line:col`.
    pub error: Option<String>,
    /// A `wait` found a proc that failed (in a dry run: a missing dependency, a cycle).
    pub wait: Option<String>,
    /// The problems of the command line's targets, when the evaluation went far enough to
    /// look them up as a run does (else they are looked up in the graph as it stands).
    pub targets: Option<Vec<String>>,
    /// The last command the script called before it stopped (where, and which): it did
    /// not run, and returned an empty output, which the error may come from.
    pub after_command: Option<(Origin, &'static str)>,
}

/// Prints every problem (to stderr, then a count), or `ok: N procs, M protos` (to
/// stdout) when there is none; the exit status is 2 when there are problems.
pub(crate) fn report(
    c: &Core,
    ast: &rhai::AST,
    findings: Vec<(Origin, String)>,
    targets: &[String],
    stopped: Stopped,
) -> Exit {
    let g = c.graph();
    let caught = crate::script::Caught::of(ast);
    let mut problems: Vec<Problem> = crate::script::option_keys(ast, &caught)
        .into_iter()
        .map(|k| Problem::at(&k.at, k.message))
        .collect();
    // A call that stopped the evaluation is told by its error, with its arguments' types.
    let stopped_at = |at: &Origin| {
        let said = format!("{at}: function not found");
        stopped.error.as_ref().is_some_and(|e| e.contains(&said))
    };
    problems.extend(
        crate::script::unknown_functions(ast, &caught)
            .into_iter()
            .filter(|k| !stopped_at(&k.at))
            .map(|k| Problem::at(&k.at, k.message)),
    );
    for (at, message) in findings {
        if !problems.iter().any(|p| p.message == message) {
            problems.push(Problem::at(&at, message));
        }
    }
    let unlooked: &[String] = if stopped.targets.is_some() {
        &[]
    } else {
        targets
    };
    let found = problems.len();
    for p in graph_problems(g, unlooked) {
        if !told(&problems[..found], &p, g.separator()) {
            problems.push(p);
        }
    }
    for message in stopped.targets.iter().flatten() {
        problems.push(Problem {
            at: None,
            message: message.clone(),
        });
    }
    problems.sort_by_key(|p| match &p.at {
        Some(o) => (false, o.line().unwrap_or(0), o.column().unwrap_or(0)),
        None => (true, 0, 0),
    });
    let mut shown: Vec<String> = Vec::new();
    if let Some(e) = stopped.error.filter(|e| !repeats(e, &problems)) {
        shown.push(match stopped.after_command.filter(|_| output_may_cause(&e)) {
            Some((at, name)) => format!(
                "{e}\n  (prun check runs no command: the `{name}` at {at} printed nothing here, \
                 and the script may have stopped on its empty output)"
            ),
            None => e,
        });
    }
    if let Some(e) = stopped.wait.filter(|_| problems.is_empty()) {
        shown.push(e);
    }
    for p in &problems {
        let line = p.to_string();
        if !shown.contains(&line) {
            shown.push(line);
        }
    }
    if shown.is_empty() {
        let procs = g.procs().filter(|(_, n)| n.proto().is_none()).count();
        let protos = g.protos().count();
        outln!("ok: {}, {}", count(procs, "proc"), count(protos, "proto"));
        return Exit::Ok;
    }
    for line in &shown {
        errln!("{}", crate::ui::colours_only(line));
    }
    errln!("prun: check: {} found", count(shown.len(), "problem"));
    Exit::Script
}

/// Whether the error `e` may come from a command's empty output: not a call of a
/// function with arguments it does not take when none of them is `()` (an output is a
/// string; what the script makes of it, a number, a map, may be `()`).
fn output_may_cause(e: &str) -> bool {
    match e.split_once(" does not exist") {
        Some((call, _)) => call.contains("()"),
        None => true,
    }
}

fn count(n: usize, what: &str) -> String {
    if n == 1 {
        format!("1 {what}")
    } else {
        format!("{n} {what}s")
    }
}

/// The problems of the graph and of the command line's targets, in declaration order.
pub(crate) fn graph_problems(g: &Graph, targets: &[String]) -> Vec<Problem> {
    let mut out = Vec::new();
    let mut protos_with_problems = BTreeSet::new();
    for (i, p) in g.protos().enumerate() {
        let before = out.len();
        let text = p.template.text();
        for dep in &p.def.deps {
            let DepSpec::Name(dep) = dep else { continue };
            let name = if has_placeholders(dep) {
                match fill_text(dep, &sample_args(&p.template, &p.def)) {
                    Ok(n) => n,
                    Err(_) => continue,
                }
            } else {
                dep.clone()
            };
            if let Some(why) = unresolved(g, &name) {
                out.push(Problem::at(
                    &p.def.origin,
                    format!("proto \"{text}\" depends on \"{dep}\"{why}"),
                ));
            }
        }
        if out.len() > before {
            protos_with_problems.insert(i);
        }
    }
    for (_, n) in g.procs() {
        let checked_by_proto = n.proto().is_some_and(|p| protos_with_problems.contains(&p));
        for dep in &n.deps {
            // The wave of the proc the dependency names, or of the proto that makes it.
            let dep_wave = match g.lookup(dep) {
                Some(d) => Some(g.proc(d).def.extras().wave),
                None => match g.find_proto(dep) {
                    Ok(Some((p, _))) => Some(g.proto(p).def.extras().wave),
                    _ => None,
                },
            };
            match dep_wave {
                Some(dw) => {
                    let pw = n.def.extras().wave;
                    if dw > pw {
                        let e = GraphError::WaveViolation {
                            dependent: n.name.to_string(),
                            dependent_wave: pw,
                            dep: dep.clone(),
                            dep_wave: dw,
                        };
                        out.push(Problem::at(&n.def.origin, e.to_string()));
                    }
                }
                None if checked_by_proto => {}
                None => {
                    if let Some(why) = unresolved(g, dep) {
                        out.push(Problem::at(
                            &n.def.origin,
                            format!("proc \"{}\" depends on \"{dep}\"{why}", n.name),
                        ));
                    }
                }
            }
        }
    }
    let plain = g
        .procs()
        .filter(|(_, n)| n.proto().is_none())
        .map(|(id, _)| id);
    out.extend(unmatched_when_scheduled(g, plain, true));
    for (id, cycle) in cycles(g) {
        let e = GraphError::Cycle(cycle);
        out.push(Problem::at(&g.proc(id).def.origin, e.to_string()));
    }
    for t in targets {
        if unresolved(g, t).is_some() {
            out.push(Problem {
                at: None,
                message: format!(
                    "target \"{t}\": {}",
                    crate::graph::graph_error(g, &GraphError::NoMatch(t.clone()))
                ),
            });
        }
    }
    out
}

/// The `when_scheduled` rules that can never schedule anything: their pattern matches no
/// proc, and no proto makes a name it matches. The rules of `procs` (with their own
/// placeholder values filled in) and, with `protos`, of every proto are looked at; a
/// placeholder left unfilled matches any value.
pub(crate) fn unmatched_when_scheduled(
    g: &Graph,
    procs: impl Iterator<Item = ProcId>,
    protos: bool,
) -> Vec<Problem> {
    let mut out = Vec::new();
    // The procs of one proto share its rules: each is told of once.
    let mut seen: BTreeSet<(String, String)> = BTreeSet::new();
    let mut look = |what: &str, name: &str, def: &ProcDef, args: &[(String, String)]| {
        for pattern in def.extras().when_scheduled.iter() {
            if !seen.insert((def.origin.to_string(), pattern.clone())) {
                continue;
            }
            // The name as filled in, else the pattern as written: its nearest valid names.
            let (target, near) = match fill_text(pattern, args) {
                Ok(name) => (name.clone(), name),
                Err(_) => (any_value(pattern), pattern.clone()),
            };
            if unresolved(g, &target).is_none() {
                continue;
            }
            let why = match g.find_proto(&target) {
                Err(e) if !is_glob(&target) => format!(": {e}"),
                _ => crate::graph::proc_hint(g, &near),
            };
            out.push(Problem::at(
                &def.origin,
                format!(
                    "{what} \"{name}\": when_scheduled(\"{pattern}\") matches no proc or proto, so it never schedules anything{why}"
                ),
            ));
        }
    };
    for p in procs {
        let n = g.proc(p);
        look("proc", &n.name, &n.def, n.args());
    }
    if protos {
        for p in g.protos() {
            look("proto", p.template.text(), &p.def, &[]);
        }
    }
    out
}

/// `pattern` with each `[placeholder]` as `*`: the glob of the names it may stand for.
fn any_value(pattern: &str) -> String {
    let mut out = String::with_capacity(pattern.len());
    let mut rest = pattern;
    while let Some(open) = rest.find('[') {
        let Some(close) = rest[open..].find(']').map(|c| open + c) else {
            break;
        };
        out.push_str(&rest[..open]);
        out.push('*');
        rest = &rest[close + 1..];
    }
    out.push_str(rest);
    out
}

/// Placeholder values to try a proto's dependency template with: the first allowed
/// value of each placeholder, or else its name.
fn sample_args(template: &Template, def: &ProcDef) -> Vec<(String, String)> {
    template
        .params()
        .map(|param| {
            let value = def
                .extras()
                .arg_choices
                .iter()
                .find(|(a, _)| a == param)
                .and_then(|(_, c)| match c {
                    Choices::List(v) => v.first().cloned(),
                    Choices::Closure(_) => None,
                })
                .unwrap_or_else(|| param.to_string());
            (param.to_string(), value)
        })
        .collect()
}

/// Why `name` resolves to no proc (", which does not exist; did you mean …"), or `None`
/// when a proc has that name, a proto makes it, or (for a glob) something may match.
fn unresolved(g: &Graph, name: &str) -> Option<String> {
    if is_glob(name) {
        return (!may_match(g, name)).then(|| {
            let hint = crate::graph::proc_hint(g, name);
            let hint = if hint.is_empty() {
                glob_hint(g, name)
            } else {
                hint
            };
            format!(", which matches no proc or proto{hint}")
        });
    }
    if g.lookup(name).is_some() {
        return None;
    }
    match g.find_proto(name) {
        Ok(Some(_)) => None,
        Ok(None) => Some(format!(
            ", which does not exist{}",
            crate::graph::proc_hint(g, name)
        )),
        Err(e) => Some(format!(": {e}")),
    }
}

/// Whether the glob `pattern` matches a proc, or may match a name a proto makes.
fn may_match(g: &Graph, pattern: &str) -> bool {
    g.matching(pattern).next().is_some()
        || g.protos()
            .any(|p| wildcard_match(pattern, p.template.text()))
}

/// The nearest glob that matches something, for a glob that matches nothing: its
/// wildcards after the start of a name that exists (`tset::*` → `test::*`, from
/// `test::[n]`), since a mistyped glob is rarely near any one name.
fn glob_hint(g: &Graph, pattern: &str) -> String {
    let fixed = pattern.find(['*', '?', '[']).unwrap_or(pattern.len());
    let (head, wild) = pattern.split_at(fixed);
    let chars = head.chars().count();
    let globs: BTreeSet<String> = g
        .procs()
        .map(|(_, n)| n.name.to_string())
        .chain(g.protos().map(|p| p.template.text().to_string()))
        .filter_map(|name| {
            let start: String = name.chars().take(chars).collect();
            (start.chars().count() == chars).then(|| format!("{start}{wild}"))
        })
        .filter(|glob| may_match(g, glob))
        .collect();
    crate::suggest::hint(pattern, globs.iter().map(String::as_str), "\"")
}

/// The dependency cycles among procs that exist, each as names from a proc back to it
/// with that proc: one depth-first walk, a cycle for each edge back into the walk.
fn cycles(g: &Graph) -> Vec<(ProcId, Vec<String>)> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        Open,
        Done,
    }
    let deps =
        |p: ProcId| -> Vec<ProcId> { g.proc(p).deps.iter().filter_map(|d| g.lookup(d)).collect() };
    let mut mark = vec![Mark::New; g.len()];
    let mut out = Vec::new();
    for root in 0..g.len() {
        if mark[root] != Mark::New {
            continue;
        }
        mark[root] = Mark::Open;
        let mut stack: Vec<(ProcId, Vec<ProcId>, usize)> = vec![(root, deps(root), 0)];
        while let Some((p, ds, next)) = stack.last_mut() {
            let Some(&d) = ds.get(*next) else {
                mark[*p] = Mark::Done;
                stack.pop();
                continue;
            };
            *next += 1;
            match mark[d] {
                Mark::New => {
                    mark[d] = Mark::Open;
                    let dd = deps(d);
                    stack.push((d, dd, 0));
                }
                Mark::Open => {
                    let from = stack.iter().position(|(q, _, _)| *q == d).unwrap_or(0);
                    let mut names: Vec<String> = stack[from..]
                        .iter()
                        .map(|(q, _, _)| g.proc(*q).name.to_string())
                        .collect();
                    names.push(g.proc(d).name.to_string());
                    out.push((d, names));
                }
                Mark::Done => {}
            }
        }
    }
    out
}

/// The proc names of a "dependency cycle: a -> b -> a" message, if it is one.
fn cycle_names(message: &str) -> Option<BTreeSet<&str>> {
    let (_, chain) = message.split_once("dependency cycle: ")?;
    let chain = chain.lines().next().unwrap_or(chain);
    Some(chain.split(" -> ").map(str::trim).collect())
}

/// Whether two messages name the same dependency cycle, whichever proc each starts at.
fn same_cycle(a: &str, b: &str) -> bool {
    matches!((cycle_names(a), cycle_names(b)), (Some(x), Some(y)) if x == y)
}

/// Whether a problem of the whole graph is told already by one met as the script ran: a
/// fault a definition met (a `now` proc's cycle) is told once, at that call; a proc or a
/// proto whose definition was refused (`proc "b" cannot be defined: dependency cycle:
/// ...`) was left out, and the dependencies on it (or on a name it makes) are not told
/// again as naming nothing. `sep` is the graph's placeholder separator.
fn told(found: &[Problem], p: &Problem, sep: &str) -> bool {
    found.iter().any(|f| {
        says(&f.message, &p.message)
            || missing_dep(&p.message).is_some_and(|dep| refused_makes(&f.message, dep, sep))
    })
}

/// The dependency a problem says names nothing (`... depends on "x", which does not
/// exist`), if it says so.
fn missing_dep(message: &str) -> Option<&str> {
    let (_, rest) = message.split_once(" depends on \"")?;
    rest.split_once("\", which does not exist")
        .map(|(dep, _)| dep)
}

/// Whether `refusal`, the message of a refused definition, is of the proc `dep` or of a
/// proto that makes it.
fn refused_makes(refusal: &str, dep: &str, sep: &str) -> bool {
    let refused = |what: &str| {
        refusal
            .strip_prefix(what)
            .and_then(|m| m.split_once("\" cannot be defined: "))
            .map(|(name, _)| name)
    };
    if let Some(name) = refused("proc \"") {
        return name == dep;
    }
    refused("proto \"")
        .and_then(|pattern| Template::parse(pattern, sep).ok())
        .is_some_and(|t| t.matches(dep).is_some())
}

/// Whether the error that stopped the evaluation says what a problem already says.
pub(crate) fn repeats(error: &str, problems: &[Problem]) -> bool {
    problems.iter().any(|p| says(error, &p.message))
}

/// Whether the message `said` tells the fault of `message`: holds it, or names its cycle.
fn says(said: &str, message: &str) -> bool {
    said.contains(message) || same_cycle(said, message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cycle_is_the_same_from_any_proc() {
        assert!(same_cycle(
            "main.rhai:9:1: dependency cycle: b -> a -> b",
            "dependency cycle: a -> b -> a"
        ));
        assert!(!same_cycle(
            "dependency cycle: a -> c -> a",
            "dependency cycle: a -> b -> a"
        ));
        assert!(!same_cycle("proc \"a\" failed", "dependency cycle: a -> a"));
    }
}

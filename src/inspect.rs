//! `prun list` and `prun graph`: a script's procs and protos, and its dependency graph
//! in DOT, after evaluating it as a dry run; and the same list for a run that names no
//! target and schedules nothing.

use std::collections::BTreeMap;

use crate::exec::{Core, State};
use crate::graph::pattern::{is_glob, wildcard_match};
use crate::graph::{Choices, Graph, ProcDef};

/// What `prun list`, `prun graph` and `prun check` show: a run that evaluates the script
/// as a dry run and reports on it instead of running it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Inspect {
    /// Procs and protos with their help lines and arg choices.
    List,
    /// The dependency graph in DOT.
    Graph,
    /// `prun check`: every problem found without running anything.
    Check,
}

/// Procs (with their help lines) and protos (with their help lines and arg choices), each
/// with where it runs and what it needs (`placement`) when that is not "here, nothing"; a
/// heading without entries is left out. A control character (in a choice a glob found, a
/// file name holding an escape sequence) is written out (`\e`), not sent to the terminal.
pub(crate) fn list(c: &Core, placement: impl Fn(&ProcDef) -> Option<String>) -> String {
    let g = c.graph();
    let mut out = String::new();
    let procs: Vec<_> = g.procs().filter(|(_, n)| n.proto().is_none()).collect();
    let width = g
        .procs()
        .map(|(_, n)| columns(&n.name))
        .chain(g.protos().map(|p| columns(p.template.text())))
        .max()
        .unwrap_or(0);
    if !procs.is_empty() {
        out.push_str("procs:\n");
    }
    for (_, n) in &procs {
        let help = n.def.extras().help.as_deref().unwrap_or("");
        let mut line = format!("  {}  {help}", padded(&n.name, width));
        if let Some(p) = placement(&n.def) {
            line.push_str(&format!("  [{p}]"));
        }
        out.push_str(&crate::shown::visible(line.trim_end()));
        out.push('\n');
    }
    if g.protos().next().is_some() {
        out.push_str("protos:\n");
    }
    for p in g.protos() {
        let help = p.def.extras().help.as_deref().unwrap_or("");
        let mut line = format!("  {}  {help}", padded(p.template.text(), width));
        let choices: Vec<String> = p
            .def
            .extras()
            .arg_choices
            .iter()
            .map(|(arg, ch)| match ch {
                Choices::List(v) if v.is_empty() => format!("{arg}: (none)"),
                Choices::List(v) => format!("{arg}: {}", v.join(", ")),
                Choices::Closure(cb) => {
                    format!("{arg}: (computed by the closure at {})", cb.origin())
                }
            })
            .collect();
        let mut choices = choices;
        if let Some(cb) = &p.def.extras().choices_map {
            choices.push(format!("(computed by the closure at {})", cb.origin()));
        }
        if !choices.is_empty() {
            line.push_str(&format!("  [{}]", choices.join("; ")));
        }
        if let Some(p) = placement(&p.def) {
            line.push_str(&format!("  [{p}]"));
        }
        out.push_str(&crate::shown::visible(line.trim_end()));
        out.push('\n');
    }
    out.trim_end().to_string()
}

/// The terminal columns `s` takes (a wide character, CJK or emoji, takes two).
fn columns(s: &str) -> usize {
    use unicode_width::UnicodeWidthStr;
    s.width()
}

/// `s` padded with spaces to `width` columns.
fn padded(s: &str, width: usize) -> String {
    format!("{s}{}", " ".repeat(width.saturating_sub(columns(s))))
}

/// What a run that names no target and schedules nothing prints: how to name one, and
/// the procs and protos with their help lines. `None` when the script declares none.
/// `own_words`: the script declares positional arguments, which take the words a target
/// would be, so none can be named.
pub(crate) fn available(
    c: &Core,
    script: &std::path::Path,
    own_words: bool,
    placement: impl Fn(&ProcDef) -> Option<String>,
) -> Option<String> {
    let g = c.graph();
    if g.procs().next().is_none() && g.protos().next().is_none() {
        return None;
    }
    let script = crate::shown::path(script);
    let how = if own_words {
        format!(
            "the script scheduled no proc (the words after its path are its own arguments: prun {script} --help)"
        )
    } else {
        format!(
            "name targets (prun {script} TARGET ...), or schedule them with run() in the script"
        )
    };
    Some(format!("nothing to run: {how}\n{}", list(c, placement)))
}

fn quote(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

/// The graph in DOT: an edge from each dependency to its dependent. With targets, only
/// what they scheduled; otherwise every proc.
pub(crate) fn dot(c: &Core, scheduled_only: bool) -> String {
    let g = c.graph();
    let mut out = String::from("digraph prun {\n  rankdir=LR;\n  node [shape=box];\n");
    let mut others = BTreeMap::new();
    for (id, n) in g.procs() {
        if scheduled_only && c.state(id) == State::Idle {
            continue;
        }
        let mut attrs = Vec::new();
        if n.def.extras().wave != 0 {
            attrs.push(format!(
                "xlabel={}",
                quote(&format!("wave {}", n.def.extras().wave))
            ));
        }
        if let Some(h) = &n.def.extras().help {
            attrs.push(format!("tooltip={}", quote(h)));
        }
        if attrs.is_empty() {
            out.push_str(&format!("  {};\n", quote(&n.name)));
        } else {
            out.push_str(&format!("  {} [{}];\n", quote(&n.name), attrs.join(", ")));
        }
        // A scheduled proc's dependencies are resolved (globs expanded); an unscheduled
        // one's are resolved as a run would, without making procs from protos.
        if c.state(id) == State::Idle {
            for d in n.deps.iter().flat_map(|d| sources(g, d, &mut others)) {
                out.push_str(&format!("  {} -> {};\n", quote(&d), quote(&n.name)));
            }
        } else {
            for &d in c.deps_of(id) {
                let dn = &g.proc(d).name;
                out.push_str(&format!("  {} -> {};\n", quote(dn), quote(&n.name)));
            }
            // A name the run found nothing for: drawn as missing, not left out.
            let missing = n
                .deps
                .iter()
                .filter(|d| !is_glob(d) && g.lookup(d).is_none());
            for d in missing.flat_map(|d| sources(g, d, &mut others)) {
                out.push_str(&format!("  {} -> {};\n", quote(&d), quote(&n.name)));
            }
        }
    }
    for (name, attrs) in &others {
        out.push_str(&format!("  {} [{attrs}];\n", quote(name)));
    }
    out.push('}');
    out
}

/// The nodes an unscheduled proc's dependency `dep` stands for, as a run would resolve
/// it: the proc it names, or the procs a glob matches and the protos that would make
/// names it matches; else the name a proto would make, or a name nothing has. A node
/// that is no proc goes into `others` with its attributes: dashed (a proto, a name a
/// proto makes), red as well when missing.
fn sources(g: &Graph, dep: &str, others: &mut BTreeMap<String, String>) -> Vec<String> {
    let mut other = |name: &str, attrs: &str, tip: &str| {
        others.insert(name.to_string(), format!("{attrs}, tooltip={}", quote(tip)));
        name.to_string()
    };
    if g.lookup(dep).is_some() {
        return vec![dep.to_string()];
    }
    if is_glob(dep) {
        let mut found: Vec<String> = g
            .matching(dep)
            .map(|d| g.proc(d).name.to_string())
            .collect();
        for p in g
            .protos()
            .filter(|p| wildcard_match(dep, p.template.text()))
        {
            found.push(other(p.template.text(), "style=dashed", "a proto"));
        }
        if !found.is_empty() {
            return found;
        }
    } else if let Ok(Some((p, _))) = g.find_proto(dep) {
        let tip = format!("made by the proto {}", g.proto(p).template.text());
        return vec![other(dep, "style=dashed", &tip)];
    }
    vec![other(
        dep,
        "style=dashed, color=red",
        "missing: no proc or proto has this name",
    )]
}

//! Checks of a script's text for `prun check`: the option keys of every `proc`, `proto`,
//! `set_options`, `shell`, `exec` and `pipe` call whose options are written as a map
//! literal, whether or not the call is ever reached. Evaluating the script stops at its first error; these find every
//! wrong key, each at its own line and column. They also find calls of functions that
//! do not exist, in closures and functions that `check` never calls.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use rhai::{AST, ASTNode, Expr, Map, Position, Stmt};

use super::opts::{self, Kind};
use crate::diag::Origin;

/// A wrong option key: where it is written and what is wrong, worded as the error the
/// call itself raises.
pub(crate) struct KeyProblem {
    pub at: Origin,
    pub message: String,
}

/// The calls of a script whose errors the script itself catches: those written in the
/// body of a `try` (not in its `catch`), and those in the body of a function of the
/// script called from one (and so on). A run that meets an error there goes on as the
/// script's `catch` says, so `prun check` reports none of them (see [`crate::check`]).
/// A closure written in a `try` is not in it: a proc's body, a `defer` or a dependency
/// closure runs later, where no `try` of the script is around it.
#[derive(Debug, Default)]
pub(crate) struct Caught {
    /// The script's source name (its path).
    source: Option<String>,
    /// Where each such call is: line and column.
    calls: BTreeSet<(usize, usize)>,
}

impl Caught {
    /// The calls of `ast` inside a `try`, directly or through the script's functions.
    pub(crate) fn of(ast: &AST) -> Caught {
        let functions: BTreeSet<String> = ast
            .iter_functions()
            .map(|f| f.name.to_string())
            .filter(|n| !n.starts_with("anon$"))
            .collect();
        let mut calls = BTreeSet::new();
        let mut called = BTreeSet::new();
        ast.walk(&mut |path: &[ASTNode]| {
            if let Some(ASTNode::Stmt(Stmt::TryCatch(flow, _))) = path.last() {
                for stmt in flow.body.iter() {
                    calls_in(stmt, &functions, &mut calls, &mut called);
                }
            }
            true
        });
        let mut todo: Vec<String> = called.iter().cloned().collect();
        while let Some(name) = todo.pop() {
            let body = ast.clone_functions_only_filtered(|_, _, _, n, _| n == name);
            let mut more = BTreeSet::new();
            body.walk(&mut |path: &[ASTNode]| {
                if let Some(
                    ASTNode::Expr(Expr::FnCall(call, pos)) | ASTNode::Stmt(Stmt::FnCall(call, pos)),
                ) = path.last()
                {
                    note_call(call, *pos, &functions, &mut calls, &mut more);
                }
                true
            });
            for f in more {
                if called.insert(f.clone()) {
                    todo.push(f);
                }
            }
        }
        Caught {
            source: ast.source().map(str::to_string),
            calls,
        }
    }

    /// Whether the call at `pos` of the file `source` is one whose error the script
    /// catches.
    pub(crate) fn holds(&self, source: Option<&str>, pos: Position) -> bool {
        let (Some(line), Some(column)) = (pos.line(), pos.position()) else {
            return false;
        };
        source == self.source.as_deref() && self.calls.contains(&(line, column))
    }
}

/// Notes the calls in `stmt` (closures aside) and the script's functions it calls.
fn calls_in(
    stmt: &Stmt,
    functions: &BTreeSet<String>,
    calls: &mut BTreeSet<(usize, usize)>,
    called: &mut BTreeSet<String>,
) {
    stmt.walk(&mut Vec::new(), &mut |path: &[ASTNode]| {
        if let Some(
            ASTNode::Expr(Expr::FnCall(call, pos)) | ASTNode::Stmt(Stmt::FnCall(call, pos)),
        ) = path.last()
        {
            note_call(call, *pos, functions, calls, called);
        }
        true
    });
}

/// Notes the call `call` at `pos`, and its name when it is one of the script's functions.
fn note_call(
    call: &rhai::FnCallExpr,
    pos: Position,
    functions: &BTreeSet<String>,
    calls: &mut BTreeSet<(usize, usize)>,
    called: &mut BTreeSet<String>,
) {
    if let (Some(line), Some(column)) = (pos.line(), pos.position()) {
        calls.insert((line, column));
    }
    if call.namespace.is_empty() && functions.contains(call.name.as_str()) {
        called.insert(call.name.to_string());
    }
}

/// Every unknown option key in the literal maps given to `proc`, `proto`, `set_options`
/// and the commands, in the order they are written, but for calls whose errors the
/// script catches (see [`Caught`]).
pub(crate) fn option_keys(ast: &AST, caught: &Caught) -> Vec<KeyProblem> {
    let source = ast.source();
    let mut out = Vec::new();
    ast.walk(&mut |path: &[ASTNode]| {
        let call = match path.last() {
            Some(
                ASTNode::Expr(Expr::FnCall(call, pos)) | ASTNode::Stmt(Stmt::FnCall(call, pos)),
            ) => Some((call, pos)),
            _ => None,
        };
        if let Some((call, pos)) = call
            && call.namespace.is_empty()
            && !caught.holds(source, *pos)
        {
            let (kind, at) = match call.name.as_str() {
                "proc" => (Some(Kind::Proc), 1),
                "proto" => (Some(Kind::Proto), 1),
                "set_options" => (None, 0),
                "shell" | "exec" | "pipe" => (None, 1),
                _ => return true,
            };
            let name = match call.args.first() {
                Some(Expr::StringConstant(s, _)) if kind.is_some() => Some(s.to_string()),
                _ => None,
            };
            for (key, key_pos) in literal_keys(call.args.get(at), *pos) {
                let message = match kind {
                    Some(kind) => opts::unknown_key(kind, &key).map(|m| {
                        let what = if kind == Kind::Proc { "proc" } else { "proto" };
                        match &name {
                            Some(n) => format!("{what} \"{n}\": {m}"),
                            None => format!("{what}: {m}"),
                        }
                    }),
                    None if at == 1 => {
                        super::commands::unknown_option(&key).map(|m| format!("{}: {m}", call.name))
                    }
                    None => {
                        (!super::api::is_option(&key)).then(|| super::api::unknown_option(&key))
                    }
                };
                if let Some(message) = message {
                    out.push(KeyProblem {
                        at: Origin::new(source, key_pos),
                        message,
                    });
                }
            }
        }
        true
    });
    out
}

/// Every call, in the script's text, of a function that does not exist under that name
/// (`shel("ls")` in a proc's closure, which only fails once the proc runs), with the
/// nearest names. Calls with a module's prefix (`fs::copy`) and method calls
/// (`s.trim()`) are left to the run, and so are calls whose errors the script catches
/// (see [`Caught`]); nothing is found while no engine is known.
pub(crate) fn unknown_functions(ast: &AST, caught: &Caught) -> Vec<KeyProblem> {
    let Some(mut known) = crate::diag::callable_names() else {
        return Vec::new();
    };
    known.extend(ast.iter_functions().map(|f| f.name.to_string()));
    let source = ast.source();
    let mut out = Vec::new();
    ast.walk(&mut |path: &[ASTNode]| {
        if let Some(
            ASTNode::Expr(Expr::FnCall(call, pos)) | ASTNode::Stmt(Stmt::FnCall(call, pos)),
        ) = path.last()
            && call.namespace.is_empty()
            && rhai::is_valid_function_name(&call.name)
            && !known.contains(call.name.as_str())
            && !caught.holds(source, *pos)
        {
            let hint = crate::suggest::hint(&call.name, known.iter().map(String::as_str), "`");
            out.push(KeyProblem {
                at: Origin::new(source, *pos),
                message: format!("function not found: {}(...){hint}", call.name),
            });
        }
        true
    });
    out
}

/// Where runs of `script` keep `what` (`"task_db"` or `"log_dir"`): the path its
/// `set_options` gives as a string literal (as the run sees it: relative to the current
/// directory), else `default` in its state directory. For `prun history`, `report` and
/// `log`, which do not run the script.
pub(crate) fn recorded_place(
    script: &Path,
    what: &str,
    default: &str,
) -> Result<PathBuf, crate::paths::StateDirError> {
    let set = super::read_script(script)
        .ok()
        .map(|mut text| {
            if text.starts_with("#!") {
                let end = text.find('\n').unwrap_or(text.len());
                text.replace_range(..end, "");
            }
            text
        })
        .and_then(|text| rhai::Engine::new_raw().compile(text).ok())
        .and_then(|ast| literal_option(&ast, what));
    match set {
        Some(path) => Ok(PathBuf::from(path)),
        None => Ok(crate::paths::private_state_dir(script)?.join(default)),
    }
}

/// The string given for `key` in a `set_options` call written as a map literal
/// (`set_options(#{ task_db: "t.db" })`), the last one's when several: where the script
/// keeps its task DB or logs, found without running it.
pub(super) fn literal_option(ast: &AST, key: &str) -> Option<String> {
    let mut found = None;
    ast.walk(&mut |path: &[ASTNode]| {
        let call = match path.last() {
            Some(ASTNode::Expr(Expr::FnCall(call, _)) | ASTNode::Stmt(Stmt::FnCall(call, _))) => {
                call
            }
            _ => return true,
        };
        if call.namespace.is_empty() && call.name == "set_options" {
            let value = match call.args.first() {
                Some(Expr::Map(m, _)) => {
                    m.0.iter()
                        .find(|(k, _)| k.name == key)
                        .and_then(|(_, v)| match v {
                            Expr::StringConstant(s, _) => Some(s.to_string()),
                            _ => None,
                        })
                }
                Some(Expr::DynamicConstant(v, _)) => v
                    .read_lock::<Map>()
                    .and_then(|m| m.get(key).and_then(|v| v.clone().into_string().ok())),
                _ => None,
            };
            found = value.or(found.take());
        }
        true
    });
    found
}

/// The keys of a map literal with their positions. A map of constants may have been
/// folded into one value when the script was compiled: its keys get the call's position.
fn literal_keys(arg: Option<&Expr>, call: Position) -> Vec<(String, Position)> {
    match arg {
        Some(Expr::Map(m, _)) => {
            m.0.iter()
                .map(|(k, _)| (k.name.to_string(), k.pos))
                .collect()
        }
        Some(Expr::DynamicConstant(v, _)) => v
            .read_lock::<Map>()
            .map(|m| m.keys().map(|k| (k.to_string(), call)).collect())
            .unwrap_or_default(),
        Some(_) | None => Vec::new(),
    }
}

//! Reading the options map of `proc(...)` / `proto(...)` into a [`ProcDef`].

use std::sync::Weak;

use rhai::{Array, Dynamic, Engine, FnPtr, ImmutableString, Map, NativeCallContext};

use super::callback::ScriptCallback;
use super::values::{NoFailures, WhenScheduled};
use crate::duration;
use crate::graph::{
    Argv, Body, Callback, Choices, DepSpec, FileSpec, OutputMode, OutputSpec, ProcDef,
};

/// Option keys every proc and proto accepts.
const KEYS: &[&str] = &[
    "deps",
    "rdeps",
    "now",
    "wave",
    "locks",
    "timeout",
    "retries",
    "retry_delay",
    "cmd",
    "shell",
    "env",
    "cwd",
    "help",
    "no_skip",
    "executor",
    "resources",
    "inputs",
    "outputs",
    "output",
    "interactive",
];

/// Whether the options are for a proc or a proto (only protos take `arg_choices`).
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    Proc,
    Proto,
}

/// The message for an option key that `proc` (or `proto`) does not take, with the
/// nearest valid keys; `None` for a valid key.
pub(super) fn unknown_key(kind: Kind, key: &str) -> Option<String> {
    let proto_only = kind == Kind::Proto && key == "arg_choices";
    if KEYS.contains(&key) || proto_only {
        return None;
    }
    if key == "arg_choices" {
        return Some(
            "unknown option `arg_choices`: it is an option of `proto()`, whose name holds \
             placeholders (`proto(\"build::[env]\", #{ arg_choices: ... }, ...)`); a proc's \
             name is taken as written"
                .into(),
        );
    }
    let mut valid: Vec<&str> = KEYS.to_vec();
    if kind == Kind::Proto {
        valid.push("arg_choices");
    }
    Some(format!(
        "unknown option `{key}`{} (valid options: {})",
        crate::suggest::hint(key, valid.iter().copied(), "`"),
        valid.join(", ")
    ))
}

/// A wrong option of a `proc(...)` or `proto(...)` call, naming the proc and the option.
#[derive(Debug, thiserror::Error)]
#[error("{what} \"{name}\": {message}")]
pub(super) struct DefError {
    what: &'static str,
    name: String,
    message: String,
}

impl DefError {
    /// The option the error is about, when it is about one (its message starts with
    /// that option's name); `None` for a missing or doubled body or a closure that cannot
    /// be kept.
    pub(super) fn option(&self) -> Option<&'static str> {
        KEYS.iter().chain(&["arg_choices"]).copied().find(|k| {
            self.message
                .strip_prefix('`')
                .and_then(|m| m.strip_prefix(k))
                .is_some_and(|m| m.starts_with('`'))
        })
    }
}

/// The options of one `proc(...)` or `proto(...)` call, moved out of its map in one pass
/// (never copied, and no key looked up in the map one by one).
#[derive(Default)]
struct Given {
    deps: Option<Dynamic>,
    rdeps: Option<Dynamic>,
    now: Option<Dynamic>,
    wave: Option<Dynamic>,
    locks: Option<Dynamic>,
    timeout: Option<Dynamic>,
    retries: Option<Dynamic>,
    retry_delay: Option<Dynamic>,
    cmd: Option<Dynamic>,
    shell: Option<Dynamic>,
    env: Option<Dynamic>,
    cwd: Option<Dynamic>,
    help: Option<Dynamic>,
    no_skip: Option<Dynamic>,
    executor: Option<Dynamic>,
    resources: Option<Dynamic>,
    inputs: Option<Dynamic>,
    outputs: Option<Dynamic>,
    output: Option<Dynamic>,
    interactive: Option<Dynamic>,
    arg_choices: Option<Dynamic>,
}

impl Given {
    /// The message for an option given without the one it only makes sense with:
    /// `retry_delay` is the pause before a retry, and waits for nothing without `retries`.
    /// (`retries: 0` with it is accepted: a count computed from an argument may be 0.)
    fn lone_option(&self) -> Option<String> {
        (self.retry_delay.is_some() && self.retries.is_none()).then(|| {
            "`retry_delay` is the pause before each retry, and it has no `retries`: give `retries: N` too, or leave `retry_delay` out".to_string()
        })
    }

    /// Where the option `key` goes; `None` when `kind` takes no such option.
    fn slot(&mut self, kind: Kind, key: &str) -> Option<&mut Option<Dynamic>> {
        Some(match key {
            "deps" => &mut self.deps,
            "rdeps" => &mut self.rdeps,
            "now" => &mut self.now,
            "wave" => &mut self.wave,
            "locks" => &mut self.locks,
            "timeout" => &mut self.timeout,
            "retries" => &mut self.retries,
            "retry_delay" => &mut self.retry_delay,
            "cmd" => &mut self.cmd,
            "shell" => &mut self.shell,
            "env" => &mut self.env,
            "cwd" => &mut self.cwd,
            "help" => &mut self.help,
            "no_skip" => &mut self.no_skip,
            "executor" => &mut self.executor,
            "resources" => &mut self.resources,
            "inputs" => &mut self.inputs,
            "outputs" => &mut self.outputs,
            "output" => &mut self.output,
            "interactive" => &mut self.interactive,
            "arg_choices" if kind == Kind::Proto => &mut self.arg_choices,
            _ => return None,
        })
    }
}

/// Builds a definition from the options map and the optional closure body.
pub(super) fn parse(
    ctx: &NativeCallContext,
    engine: &Weak<Engine>,
    kind: Kind,
    name: &str,
    opts: Map,
    body: Option<FnPtr>,
) -> Result<ProcDef, DefError> {
    let what = match kind {
        Kind::Proc => "proc",
        Kind::Proto => "proto",
    };
    let err = |message: String| DefError {
        what,
        name: name.to_string(),
        message,
    };
    let mut given = Given::default();
    for (key, value) in opts {
        match given.slot(kind, &key) {
            Some(slot) => *slot = Some(value),
            None => {
                return Err(err(
                    unknown_key(kind, &key).unwrap_or_else(|| format!("unknown option `{key}`"))
                ));
            }
        }
    }
    if let Some(message) = given.lone_option() {
        return Err(err(message));
    }
    let callback = |fp: FnPtr| -> Result<Callback, DefError> {
        Ok(ScriptCallback::detached(ctx, fp, engine.clone()).map_err(|e| err(e.to_string()))?)
    };

    let origin = crate::diag::Origin::new(ctx.call_source(), ctx.call_position());
    let mut def = ProcDef::new(Body::Cmd(Argv::default()), origin);

    // No proc's name is empty: an empty entry could only ever be missing.
    let empty = |option: &str, entry: &str| {
        err(format!(
            "`{option}` entry {entry} is empty, and no proc's name is"
        ))
    };
    for item in list(given.deps) {
        if item.is_string() {
            let name = item.to_string();
            if name.is_empty() {
                return Err(empty("deps", "\"\""));
            }
            def.deps.push(DepSpec::Name(name));
        } else if item.is::<NoFailures>() {
            def.no_failures = true;
        } else if let Some(fp) = item.clone().try_cast::<FnPtr>() {
            def.deps.push(DepSpec::Closure(callback(fp)?));
        } else {
            return Err(err(format!(
                "`deps` entries must be names, closures or NO_FAILURES, not {}",
                crate::diag::type_words(item.type_name())
            )));
        }
    }
    for item in list(given.rdeps) {
        if item.is_string() {
            // A glob would match only a proc of that very name: the declarer would
            // silently never run before the procs it was meant for.
            let pattern = item.to_string();
            if pattern.is_empty() {
                return Err(empty("rdeps", "\"\""));
            }
            if pattern.contains(['*', '?']) {
                return Err(err(format!(
                    "`rdeps` entry \"{pattern}\" is a glob; rdeps takes names and [placeholder] patterns (\"build::[env]\")"
                )));
            }
            def.extras_mut().rdeps.push(pattern);
        } else if let Some(ws) = item.clone().try_cast::<WhenScheduled>() {
            if ws.0.is_empty() {
                return Err(empty("rdeps", "when_scheduled(\"\")"));
            }
            // As in rdeps: a glob is taken as a name, a proto would make `deploy::*`.
            if ws.0.contains(['*', '?']) {
                return Err(err(format!(
                    "`rdeps` entry when_scheduled(\"{}\") is a glob; when_scheduled takes names and [placeholder] patterns (\"deploy::[env]\")",
                    ws.0
                )));
            }
            def.extras_mut().when_scheduled.push(ws.0);
        } else {
            return Err(err(format!(
                "`rdeps` entries must be patterns or when_scheduled(...), not {}",
                crate::diag::type_words(item.type_name())
            )));
        }
    }
    if let Some(v) = given.now {
        def.now = v.as_bool().map_err(|t| {
            err(format!(
                "`now` must be a bool, not {}",
                crate::diag::type_words(t)
            ))
        })?;
    }
    if let Some(v) = given.no_skip {
        def.no_skip = v.as_bool().map_err(|t| {
            err(format!(
                "`no_skip` must be a bool, not {}",
                crate::diag::type_words(t)
            ))
        })?;
    }
    for item in list(given.inputs) {
        def.inputs
            .push(file_spec(item, &callback).map_err(|m| err(format!("`inputs`: {m}")))?);
    }
    for item in list(given.outputs) {
        let out = if item.is_map() {
            let m = item.cast::<Map>();
            for k in m.keys() {
                if !["file", "max_age", "enforce_freshness"].contains(&k.as_str()) {
                    return Err(err(format!(
                        "`outputs`: unknown key `{k}` (valid: file, max_age, enforce_freshness)"
                    )));
                }
            }
            let file = m
                .get("file")
                .ok_or_else(|| err("`outputs`: a map entry needs `file`".into()))?;
            if m.contains_key("enforce_freshness") && !m.contains_key("max_age") {
                return Err(err(
                    "`outputs`: `enforce_freshness` says whether an output older than its `max_age` fails the proc, and this one has no `max_age`: give one, or leave `enforce_freshness` out".into(),
                ));
            }
            let max_age = match m.get("max_age") {
                Some(a) => {
                    Some(duration::parse(a).map_err(|e| err(format!("`outputs` max_age: {e}")))?)
                }
                None => None,
            };
            let enforce_freshness = match m.get("enforce_freshness") {
                Some(b) => b.as_bool().map_err(|t| {
                    err(format!(
                        "`outputs` enforce_freshness must be a bool, not {}",
                        crate::diag::type_words(t)
                    ))
                })?,
                None => true,
            };
            OutputSpec {
                files: file_spec(file.clone(), &callback)
                    .map_err(|m| err(format!("`outputs`: {m}")))?,
                max_age,
                enforce_freshness,
            }
        } else {
            OutputSpec {
                files: file_spec(item, &callback).map_err(|m| err(format!("`outputs`: {m}")))?,
                max_age: None,
                enforce_freshness: true,
            }
        };
        def.outputs.push(out);
    }
    if let Some(v) = given.output {
        let mode = v.clone().into_string().ok();
        def.output = Some(mode.as_deref().and_then(OutputMode::parse).ok_or_else(|| {
            err(format!(
                "`output` must be one of {}, not {}",
                quoted_names(OutputMode::NAMES),
                crate::diag::value_words(&v)
            ))
        })?);
    }
    if let Some(v) = given.interactive {
        def.interactive = v.as_bool().map_err(|_| {
            err(format!(
                "`interactive` must be a bool, not {}",
                crate::diag::value_words(&v)
            ))
        })?;
    }
    if let Some(v) = given.wave {
        def.extras_mut().wave = v.as_int().map_err(|t| {
            err(format!(
                "`wave` must be an integer, not {}",
                crate::diag::type_words(t)
            ))
        })?;
    }
    for item in list(given.locks) {
        let l = item
            .into_string()
            .ok()
            .filter(|l| !l.is_empty())
            .ok_or_else(|| err("`locks` entries must be lock names (non-empty strings)".into()))?;
        if !def.extras().locks.contains(&l) {
            def.extras_mut().locks.push(l);
        }
    }
    if let Some(v) = given.timeout {
        def.extras_mut().timeout =
            Some(duration::parse_limit(&v).map_err(|e| err(format!("`timeout`: {e}")))?);
    }
    if let Some(v) = given.retries {
        let n = v.as_int().map_err(|t| {
            err(format!(
                "`retries` must be an integer, not {}",
                crate::diag::type_words(t)
            ))
        })?;
        def.extras_mut().retries = u32::try_from(n).map_err(|_| {
            err(format!(
                "`retries` must be 0 or more, at most {}, not {n}",
                u32::MAX
            ))
        })?;
    }
    if let Some(v) = given.retry_delay {
        def.extras_mut().retry_delay =
            duration::parse(&v).map_err(|e| err(format!("`retry_delay`: {e}")))?;
    }
    if let Some(v) = given.env {
        let m = v
            .try_cast::<Map>()
            .ok_or_else(|| err("`env` must be a map of names to values".into()))?;
        def.env = m
            .into_iter()
            .map(|(k, v)| {
                // Known bad now, not when the proc starts (a run may be hours in).
                if k.is_empty() || k.contains(['=', '\0']) {
                    return Err(err(format!(
                        "`env` name {:?} is not valid: a name is not empty and holds no `=` or NUL byte",
                        k.as_str()
                    )));
                }
                let text = super::values::argument_text(&v).map_err(|t| {
                    err(format!(
                        "`env` value of {k} must be a string, a number or a bool, not {t}"
                    ))
                })?;
                Ok((k.to_string(), text))
            })
            .collect::<Result<_, _>>()?;
    }
    if let Some(v) = given.cwd {
        let cwd = v.into_string().map_err(|t| {
            err(format!(
                "`cwd` must be a path, not {}",
                crate::diag::type_words(t)
            ))
        })?;
        if cwd.is_empty() {
            return Err(err("`cwd` must be a path, not an empty string".into()));
        }
        def.extras_mut().cwd = Some(cwd);
    }
    if let Some(v) = given.help {
        // One line of `prun list`: a line break would break the listing, an escape
        // sequence reach the terminal.
        let help = v.into_string().map_err(|t| {
            err(format!(
                "`help` must be a string, not {}",
                crate::diag::type_words(t)
            ))
        })?;
        if help.chars().any(char::is_control) {
            return Err(err(format!(
                "`help` is one line of printable text; {:?} holds a line break or another control character",
                help
            )));
        }
        def.extras_mut().help = Some(help);
    }
    if let Some(v) = given.executor {
        let e = v.into_string().map_err(|t| {
            err(format!(
                "`executor` must be a name, not {}",
                crate::diag::type_words(t)
            ))
        })?;
        if e.is_empty() {
            return Err(err(
                "`executor` must be a name, not an empty string (\"local\", or a name from set_options(#{ executors }))".into(),
            ));
        }
        def.extras_mut().executor = (e != "local").then_some(e);
    }
    if let Some(v) = given.resources {
        let m = v.try_cast::<Map>().ok_or_else(|| {
            err("`resources` must be a map like #{ cpus: 2, mem: \"4G\" }".into())
        })?;
        def.extras_mut().resources =
            crate::graph::resources::parse(&m).map_err(|m| err(format!("`resources`: {m}")))?;
    }
    let choices = given.arg_choices;
    if let Some(v) = choices.as_ref().filter(|v| v.is_fnptr()) {
        def.extras_mut().choices_map = Some(callback(v.clone().cast::<FnPtr>())?);
    } else if let Some(v) = choices {
        let m = v.try_cast::<Map>().ok_or_else(|| {
            err(
                "`arg_choices` must be a map of placeholder to values, or a closure returning one"
                    .into(),
            )
        })?;
        for (k, v) in m {
            let choices = if let Some(fp) = v.clone().try_cast::<FnPtr>() {
                Choices::Closure(callback(fp)?)
            } else if v.is_string() {
                Choices::List(vec![v.to_string()])
            } else if let Some(a) = v.clone().try_cast::<Array>() {
                let choice = |(i, x): (usize, Dynamic)| {
                    super::values::argument_text(&x).map_err(|t| {
                        err(format!(
                            "`arg_choices.{k}` entry {} must be a string, a number or a bool, not {t}",
                            i + 1
                        ))
                    })
                };
                Choices::List(
                    a.into_iter()
                        .enumerate()
                        .map(choice)
                        .collect::<Result<_, _>>()?,
                )
            } else {
                return Err(err(format!(
                    "`arg_choices.{k}` must be a string, an array of strings or a closure, not {}",
                    crate::diag::type_words(v.type_name())
                )));
            };
            def.extras_mut().arg_choices.push((k.to_string(), choices));
        }
    }

    let cmd = given.cmd;
    let shell = given.shell;
    def.body = match (body, cmd, shell) {
        (Some(fp), None, None) => Body::Closure(callback(fp)?),
        (None, Some(c), None) => {
            let argv: Argv = c
                .try_cast::<Array>()
                .ok_or_else(|| err("`cmd` must be an array of strings (an argv)".into()))?
                .into_iter()
                .enumerate()
                .map(|(i, v)| {
                    shared_text(v).map_err(|t| {
                        err(format!(
                            "`cmd` argument {} must be a string, a number or a bool, not {t}",
                            i + 1
                        ))
                    })
                })
                .collect::<Result<_, _>>()?;
            if argv.is_empty() {
                return Err(err("`cmd` must not be empty".into()));
            }
            Body::Cmd(argv)
        }
        (None, None, Some(s)) => Body::Shell(
            s.clone()
                .into_string()
                .map_err(|_| {
                    err(format!(
                        "`shell` must be a string (a shell command line), not {}",
                        crate::diag::value_words(&s)
                    ))
                })?
                .into(),
        ),
        (None, None, None) => {
            return Err(err(
                "it has no body: give a closure, `cmd: [...]` or `shell: \"...\"`".into(),
            ));
        }
        _ => {
            return Err(err("give only one body: a closure, `cmd` or `shell`".into()));
        }
    };
    if def.interactive
        && let Some(e) = &def.extras().executor
        && !matches!(def.body, Body::Closure(_))
    {
        return Err(err(format!(
            "`interactive` gives its command prun's terminal, which executor \"{e}\" cannot give a command: leave out `executor` (an interactive proc runs here) or `interactive`"
        )));
    }
    Ok(def)
}

/// Why an `inputs` or `outputs` entry is not a file spec.
#[derive(Debug, thiserror::Error)]
enum SpecError {
    #[error("a path must not be empty")]
    Empty,
    #[error("entries must be paths, globs or closures, not {0}")]
    NotAPath(String),
    /// The closure cannot be kept (its captured values cannot be copied).
    #[error("{0}")]
    Closure(String),
}

/// A path, a glob, or a closure returning paths.
fn file_spec(
    v: Dynamic,
    callback: &dyn Fn(FnPtr) -> Result<Callback, DefError>,
) -> Result<FileSpec, SpecError> {
    if v.is_string() {
        let s = text(v);
        if s.is_empty() {
            return Err(SpecError::Empty);
        }
        Ok(FileSpec::Path(s))
    } else if v.is_fnptr() {
        let cb = callback(v.cast::<FnPtr>()).map_err(|e| SpecError::Closure(e.message))?;
        Ok(FileSpec::Closure(cb))
    } else {
        Err(SpecError::NotAPath(crate::diag::type_words(v.type_name())))
    }
}

/// `"log", "stream" or "grouped"`.
pub(super) fn quoted_names(names: &[&str]) -> String {
    let quoted: Vec<String> = names.iter().map(|n| format!("\"{n}\"")).collect();
    match quoted.split_last() {
        Some((last, [])) => last.clone(),
        Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
        None => String::new(),
    }
}

/// A value as text: a string as it is (moved, not formatted), any other value as Rhai
/// prints it.
fn text(v: Dynamic) -> String {
    if v.is_string() {
        v.into_string().unwrap_or_default()
    } else {
        v.to_string()
    }
}

/// [`text`] without a copy of a string: an argument is copied once, into its [`Argv`].
/// An argument of `cmd` ([`super::values::argument_text`]).
fn shared_text(v: Dynamic) -> Result<ImmutableString, super::values::NotText> {
    if v.is_string() {
        Ok(v.into_immutable_string().unwrap_or_default())
    } else {
        super::values::argument_text(&v).map(Into::into)
    }
}

fn list(v: Option<Dynamic>) -> Vec<Dynamic> {
    match v {
        None => Vec::new(),
        Some(v) if v.is_array() => v.cast::<Array>(),
        Some(v) => vec![v],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_option_key_has_a_place_and_no_other_does() {
        for kind in [Kind::Proc, Kind::Proto] {
            for key in KEYS {
                assert!(Given::default().slot(kind, key).is_some(), "{key}");
                assert_eq!(unknown_key(kind, key), None);
            }
            for key in ["dep", "input", "Cmd", ""] {
                assert!(Given::default().slot(kind, key).is_none(), "{key}");
                assert!(unknown_key(kind, key).is_some(), "{key}");
            }
        }
        assert!(Given::default().slot(Kind::Proto, "arg_choices").is_some());
        assert!(Given::default().slot(Kind::Proc, "arg_choices").is_none());
        assert!(unknown_key(Kind::Proc, "arg_choices").is_some());
    }
}

//! Script helpers of API.md section 3: `which`, `require`, `quote`, `glob`, `env`,
//! `read_file`, `write_file`, `append_file`, `parse_json`, `to_json`, `sleep`, `now`,
//! `now_ms`, `log_info`, `log_warn`, `log_error`; and `sort` with a comparator.
//!
//! Every helper works the same at the top level and inside a proc, except where the proc
//! matters: `env(name)` sees the proc's `env` option first, `sleep` ends early when the
//! proc is cancelled (timeout, abort), and the `log_*` lines also go to the proc's log.
//! Relative paths (files, glob patterns) are relative to prun's current directory; a
//! proc's `cwd` applies to its commands only.

mod files;
mod json;
mod retry;
mod sort;

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use rhai::{Array, Dynamic, Engine, EvalAltResult};

use super::job;
use crate::duration;
use crate::exec::Scheduler;
use crate::exec::command;
use crate::exec::log;
use crate::exec::policy::Policy;

type R<T> = Result<T, Box<EvalAltResult>>;

/// The most tool names `require(a, b, ...)` takes as separate arguments (an array takes
/// any number).
const REQUIRE_MAX_ARGS: usize = 8;

/// Registers the helpers.
pub(super) fn register(engine: &mut Engine, sched: &Arc<Scheduler>) {
    // A program the policy refuses is as good as missing: a script that picks its tools
    // with `which` then picks one it may run.
    let s = sched.clone();
    engine.register_fn("which", move |tool: &str| {
        let search = search_path(s.policy()).path;
        command::which(tool, search.as_deref(), proc_cwd().as_deref())
            .filter(|_| s.policy().check_tool(tool).is_ok())
            .map_or(Dynamic::UNIT, |p| p.to_string_lossy().into_owned().into())
    });
    for n in 1..=REQUIRE_MAX_ARGS {
        let s = sched.clone();
        engine.register_raw_fn(
            "require",
            vec![std::any::TypeId::of::<Dynamic>(); n],
            move |_, args| require(s.policy(), args.iter().map(|a| &**a)),
        );
    }
    engine.register_fn("quote", |s: &str| quote(s));
    engine.register_fn("quote", |words: Array| -> R<String> {
        // As in an argv: `()` would be an empty word, an array or a map Rhai's rendering.
        let quoted = words
            .iter()
            .enumerate()
            .map(|(i, w)| {
                let text = super::values::argument_text(w).map_err(|t| {
                    format!(
                        "quote: word {} must be a string, a number or a bool, not {t}",
                        i + 1
                    )
                })?;
                quote(&text)
            })
            .collect::<R<Vec<_>>>()?;
        Ok(quoted.join(" "))
    });
    // One number or bool is a word as in the array form; `()` (an unset `env`) and a map
    // are refused rather than quoted as an empty word or Rhai's rendering.
    engine.register_fn("quote", |word: Dynamic| -> R<String> {
        let text = super::values::argument_text(&word).map_err(|t| {
            format!("quote: takes a string, a number, a bool or an array of words, not {t}")
        })?;
        quote(&text)
    });
    engine.register_fn("env", |name: &str| -> R<Dynamic> {
        Ok(env(name)?.map_or(Dynamic::UNIT, Into::into))
    });
    engine.register_fn("env", |name: &str, default: &str| -> R<String> {
        Ok(env(name)?.unwrap_or_else(|| default.to_string()))
    });
    engine.register_fn("duration_secs", |d: Dynamic| -> R<f64> {
        duration::parse(&d)
            .map(|d| d.as_secs_f64())
            .map_err(|e| format!("duration_secs: {e}").into())
    });
    engine.register_fn("now", || {
        humantime::format_rfc3339_millis(SystemTime::now()).to_string()
    });
    engine.register_fn("now_ms", || -> i64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
    });
    // Typed overloads replace Rhai's built-in `sleep(INT)` and `sleep(FLOAT)`, which block
    // the thread and cannot be cancelled.
    let s = sched.clone();
    engine.register_fn("sleep", move |secs: i64| sleep(&s, &secs.into()));
    let s = sched.clone();
    engine.register_fn("sleep", move |secs: f64| sleep(&s, &secs.into()));
    let s = sched.clone();
    engine.register_fn("sleep", move |d: Dynamic| sleep(&s, &d));
    for (name, level) in [
        ("log_info", "info"),
        ("log_warn", "warning"),
        ("log_error", "error"),
    ] {
        let s = sched.clone();
        engine.register_fn(name, move |msg: Dynamic| log_line(&s, name, level, &msg));
    }
    files::register(engine);
    json::register(engine);
    retry::register(engine);
    sort::register(engine);
}

/// Throws one error naming every tool of `args` (names or arrays of names) that is not
/// on `PATH` and every path (`./tool`) that is no file it may execute, or else the first
/// one `policy` refuses.
fn require<'a>(policy: &Policy, args: impl Iterator<Item = &'a Dynamic>) -> R<()> {
    let mut names = Vec::new();
    for a in args {
        match a.clone().try_cast::<Array>() {
            Some(items) => names.extend(items),
            None => names.push(a.clone()),
        }
    }
    let search = search_path(policy);
    let cwd = proc_cwd();
    let mut missing = Vec::new();
    let mut not_programs = Vec::new();
    let mut refused = None;
    for n in names {
        let name = n.into_string().map_err(|t| {
            format!(
                "require: expected tool names, found {}",
                crate::diag::type_words(t)
            )
        })?;
        if name.is_empty() {
            // Looked up, "" would be "not found on PATH=...", as if a tool were missing.
            return Err("require: a tool's name is empty".into());
        }
        if command::which(&name, search.path.as_deref(), cwd.as_deref()).is_none() {
            if name.contains('/') {
                not_programs.push(name);
            } else {
                missing.push(name);
            }
        } else if let Err(why) = policy.check_tool(&name) {
            refused.get_or_insert(format!("required tool {name:?} is {why}"));
        }
    }
    let mut problems = Vec::new();
    if !missing.is_empty() {
        problems.push(format!(
            "{} not found{}",
            tools(&missing),
            search.described()
        ));
    }
    if let [one] = not_programs.as_slice() {
        problems.push(format!(
            "{}{} is not a file you may execute",
            tools(&[one]),
            under(cwd.as_deref())
        ));
    } else if !not_programs.is_empty() {
        problems.push(format!(
            "{}{} are not files you may execute",
            tools(&not_programs),
            under(cwd.as_deref())
        ));
    }
    if problems.is_empty() {
        refused.map_or(Ok(()), |why| Err(why.into()))
    } else {
        Err(problems.join("; ").into())
    }
}

/// `required tool "a"` or `required tools "a", "b"`.
fn tools(names: &[impl AsRef<str>]) -> String {
    let list: Vec<String> = names.iter().map(|n| format!("{:?}", n.as_ref())).collect();
    let s = if list.len() == 1 { "" } else { "s" };
    format!("required tool{s} {}", list.join(", "))
}

/// ` (in DIR)` for the working directory a relative path was looked up in, if not prun's.
fn under(cwd: Option<&std::path::Path>) -> String {
    cwd.map_or_else(String::new, |d| format!(" (in {})", d.display()))
}

/// One word quoted for `sh`.
fn quote(s: &str) -> R<String> {
    shlex::try_quote(s).map(|q| q.into_owned()).map_err(|_| {
        format!("quote: {s:?} contains a NUL byte, which no shell word can hold").into()
    })
}

/// An environment variable; inside a proc, its `env` option wins over prun's environment.
/// A value that is not UTF-8 is an error naming the variable: a script string cannot hold
/// it, and its lossy text would name another file.
pub(crate) fn env(name: &str) -> R<Option<String>> {
    use std::os::unix::ffi::OsStrExt;
    if let Some(own) = proc_env(name) {
        return Ok(Some(own));
    }
    let Some(value) = std::env::var_os(name) else {
        return Ok(None);
    };
    value.into_string().map(Some).map_err(|v| {
        let bytes = v.as_bytes();
        let at = std::str::from_utf8(bytes).err().map_or(0, |e| e.valid_up_to());
        format!(
            "env: the value of {name} is not UTF-8 (byte {} is {:#04x}): a script string cannot hold it",
            at + 1,
            bytes[at]
        )
        .into()
    })
}

/// The value the `env` option of the running proc gives `name`, if any.
fn proc_env(name: &str) -> Option<String> {
    job::current().and_then(|j| {
        j.def
            .env
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    })
}

/// The working directory of the running proc's commands (its `cwd` option), if it sets one.
fn proc_cwd() -> Option<std::path::PathBuf> {
    job::current().and_then(|j| j.def.extras().cwd.as_ref().map(Into::into))
}

/// Where commands look for a program by name here.
struct Search {
    /// The `PATH` they are given; `None` when it is not set (they then look in the C
    /// library's default).
    path: Option<std::ffi::OsString>,
    /// Whether the policy hides prun's `PATH` from them.
    hidden: bool,
}

impl Search {
    /// Where it is, after `not found` (named: cron's `PATH` is short, and often the reason).
    fn described(&self) -> String {
        match self {
            Search { hidden: true, .. } => format!(
                " in {} (the policy hides PATH from commands, which then look there)",
                command::DEFAULT_SEARCH_PATH
            ),
            Search { path: Some(p), .. } => format!(" on PATH={}", p.to_string_lossy()),
            Search { path: None, .. } => format!(": {}", command::not_on_default_path()),
        }
    }
}

/// Where commands look here: the running proc's `env` option's `PATH`, else prun's, unless
/// the policy hides it from commands.
fn search_path(policy: &Policy) -> Search {
    if let Some(own) = proc_env("PATH") {
        return Search {
            path: Some(own.into()),
            hidden: false,
        };
    }
    if !policy.env_visible("PATH") {
        return Search {
            path: None,
            hidden: true,
        };
    }
    Search {
        path: std::env::var_os("PATH"),
        hidden: false,
    }
}

/// Sleeps, ending early with an error saying why when the proc (its timeout) or the run
/// (Ctrl-C, `--fail-fast`) is cancelled.
fn sleep(sched: &Scheduler, d: &Dynamic) -> R<()> {
    let d = duration::parse(d).map_err(|e| format!("sleep: {e}"))?;
    let cancel = job::cancel_token(sched);
    let slept = sched.runtime().block_on(async {
        tokio::select! {
            biased;
            () = cancel.cancelled() => false,
            () = tokio::time::sleep(d) => true,
        }
    });
    if slept {
        return Ok(());
    }
    let why = match job::current() {
        Some(j) if sched.proc_timed_out(j.id) => "its proc timed out",
        _ => "the run was aborted",
    };
    Err(format!("sleep interrupted: {why}").into())
}

/// Prints `level: msg` through the reporter and, inside a proc, appends it to its log.
fn log_line(sched: &Scheduler, func: &str, level: &str, msg: &Dynamic) -> R<()> {
    let line = format!("{level}: {msg}");
    sched.reporter().message(&line);
    if let Some(j) = job::current() {
        log::append_line(&j.log, &line)
            .map_err(|e| format!("{func}: cannot write log {}: {e}", j.log.display()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quote_round_trips_through_shlex() {
        for w in [
            "plain",
            "",
            "a b",
            "it's",
            "$HOME `x` \"q\"",
            "tab\there",
            "ünï",
        ] {
            let q = quote(w).unwrap();
            assert_eq!(shlex::split(&q).unwrap(), vec![w.to_string()], "{q}");
        }
        assert_eq!(quote("plain").unwrap(), "plain");
        assert!(quote("a\0b").unwrap_err().to_string().contains("NUL"));
    }

    #[test]
    fn require_names_every_missing_tool() {
        let ok = [Dynamic::from("sh")];
        assert!(require(&Policy::new(), ok.iter()).is_ok());
        let one = [Dynamic::from("sh"), Dynamic::from("no-such-tool-xyz")];
        let e = require(&Policy::new(), one.iter()).unwrap_err().to_string();
        assert!(
            e.contains(r#"required tool "no-such-tool-xyz" not found on PATH"#),
            "{e}"
        );
        let arr: Array = vec!["no-such-a".into(), "sh".into(), "no-such-b".into()];
        let many = [Dynamic::from(arr)];
        let e = require(&Policy::new(), many.iter())
            .unwrap_err()
            .to_string();
        assert!(
            e.contains(r#"required tools "no-such-a", "no-such-b" not found"#),
            "{e}"
        );
        let bad = [Dynamic::from(3_i64)];
        let e = require(&Policy::new(), bad.iter()).unwrap_err().to_string();
        assert!(e.contains("expected tool names, found an integer"), "{e}");
        let empty = [Dynamic::from("sh"), Dynamic::from("")];
        let e = require(&Policy::new(), empty.iter())
            .unwrap_err()
            .to_string();
        assert!(e.ends_with("require: a tool's name is empty"), "{e}");
    }

    #[test]
    fn env_outside_a_proc_reads_the_process_environment() {
        assert_eq!(env("PATH").unwrap(), std::env::var("PATH").ok());
        assert_eq!(env("PRUN_SURELY_UNSET_VARIABLE").unwrap(), None);
    }
}

//! What prun writes about itself for shells, `man` and editors: completion scripts and
//! the man page (from the clap definition of the command line, like `--help`), and Rhai
//! definition files (`.d.rhai`) of the script API, from the engine a run uses, for Rhai
//! language servers.
//!
//! Rhai's generator names every parameter of a native function `_`; the names scripts
//! are documented with are put back from [`PARAMS`], matched by type, so that an editor
//! shows `shell(cmd: String, opts: Map)`.

use std::io::Write;
use std::path::Path;
use std::sync::Arc;

use crate::error::{Error, Exit};
use crate::exec::{Core, CoreOptions, Scheduler};
use crate::script::{Host, HostOptions};
use crate::ui::Silent;

/// `prun completions SHELL`: the completion script on stdout.
pub fn completions(shell: clap_complete::Shell) -> Result<Exit, Error> {
    let mut out = Vec::new();
    crate::cli::completions(shell, &mut out);
    write_stdout(&out)
}

/// `prun man`: the man page (roff) on stdout.
pub fn man() -> Result<Exit, Error> {
    let mut out = Vec::new();
    crate::cli::man(&mut out).map_err(|source| Error::Write {
        path: "the man page".into(),
        source,
    })?;
    write_stdout(&out)
}

fn write_stdout(bytes: &[u8]) -> Result<Exit, Error> {
    let mut stdout = std::io::stdout().lock();
    match stdout.write_all(bytes).and_then(|()| stdout.flush()) {
        Ok(()) => Ok(Exit::Ok),
        // `prun man | head`: a reader that stops early is not an error.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(Exit::Ok),
        Err(source) => Err(Error::Write {
            path: "stdout".into(),
            source,
        }),
    }
}

/// The parameter names of prun's functions, with their types as the definition files
/// write them: each `_` parameter of a function gets the first unused name of its type.
const PARAMS: &[(&str, &[&str])] = &[
    ("proc", &["name: String", "opts: Map", "body: FnPtr"]),
    ("proto", &["pattern: String", "opts: Map", "body: FnPtr"]),
    ("run", &["ctx: Ctx", "pattern: String", "patterns: Array"]),
    ("start", &["ctx: Ctx", "name: String", "names: Array"]),
    ("create", &["ctx: Ctx", "pattern: String"]),
    ("wait", &["ctx: Ctx", "name: String", "names: Array"]),
    ("state", &["name: String"]),
    ("set_options", &["options: Map"]),
    ("set_params", &["params: Map"]),
    ("when_scheduled", &["pattern: String"]),
    ("skip", &["why: String"]),
    ("no_change", &["why: String"]),
    ("shell", &["cmd: String", "opts: Map"]),
    ("exec", &["argv: Array", "opts: Map"]),
    ("pipe", &["stages: Array", "opts: Map"]),
    ("which", &["tool: String"]),
    ("quote", &["s: String", "words: Array"]),
    ("glob", &["pattern: String"]),
    ("env", &["name: String", "default: String"]),
    ("read_file", &["path: String"]),
    ("write_file", &["path: String", "text: String"]),
    ("append_file", &["path: String", "text: String"]),
    ("file_info", &["path: String"]),
    ("parse_json", &["text: String"]),
    ("to_json", &["value: ?", "value: Map"]),
    ("sleep", &["duration: int", "duration: float", "duration: ?"]),
    ("log_info", &["msg: String"]),
    ("log_warn", &["msg: String"]),
    ("log_error", &["msg: String"]),
    ("defer", &["cleanup: FnPtr"]),
    ("args", &["declaration: Map"]),
    ("log", &["ctx: Ctx", "msg: String"]),
    ("progress", &["ctx: Ctx", "done: ?"]),
];

/// `prun definitions DIR`: writes `DIR/__static__.d.rhai` (prun's functions and Rhai's
/// own) and Rhai's files of built-in functions and operators.
pub fn definitions(dir: &Path) -> Result<Exit, Error> {
    let failed = |source| Error::Write {
        path: dir.to_path_buf(),
        source,
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(Error::Runtime)?;
    let sched = Scheduler::new(
        Core::new(CoreOptions {
            parallel: 1,
            allow_missing_deps: true,
            fail_fast: false,
        }),
        rt.handle().clone(),
        Arc::new(Silent),
        std::env::temp_dir(),
        std::time::Duration::ZERO,
    );
    let host = Host::new(sched.clone(), &HostOptions::default());
    std::fs::create_dir_all(dir).map_err(failed)?;
    for (file, text) in host.definitions() {
        let text = if file == "__static__.d.rhai" {
            name_params(&text)
        } else {
            text
        };
        std::fs::write(dir.join(&file), text).map_err(failed)?;
    }
    sched.shutdown();
    outln!("wrote Rhai definitions of prun's API to {}", dir.display());
    Ok(Exit::Ok)
}

/// Puts parameter names into the `fn name(_: T, ...)` lines of the functions in
/// [`PARAMS`].
fn name_params(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for line in text.split_inclusive('\n') {
        out.push_str(&named(line).unwrap_or_else(|| line.to_string()));
    }
    out
}

fn named(line: &str) -> Option<String> {
    let rest = line.strip_prefix("fn ")?;
    let (name, rest) = rest.split_once('(')?;
    let (params, tail) = rest.split_once(')')?;
    let (_, names) = PARAMS.iter().find(|(n, _)| *n == name)?;
    let mut used = vec![false; names.len()];
    let mut fixed = Vec::new();
    for param in params.split(", ").filter(|p| !p.is_empty()) {
        let ty = param.strip_prefix("_: ").unwrap_or(param);
        let slot = names
            .iter()
            .enumerate()
            .find(|(i, n)| !used[*i] && n.split_once(": ").is_some_and(|(_, t)| t == ty));
        match slot {
            Some((i, n)) => {
                used[i] = true;
                fixed.push(n.to_string());
            }
            None => fixed.push(param.to_string()),
        }
    }
    Some(format!("fn {name}({}){tail}", fixed.join(", ")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameters_get_their_names_by_type() {
        assert_eq!(
            named("fn proc(_: String, _: Map, _: FnPtr) -> String;\n").as_deref(),
            Some("fn proc(name: String, opts: Map, body: FnPtr) -> String;\n")
        );
        assert_eq!(
            named("fn proc(_: String, _: FnPtr) -> String;").as_deref(),
            Some("fn proc(name: String, body: FnPtr) -> String;")
        );
        assert_eq!(named("fn unknown(_: int) -> int;"), None);
    }
}

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

use crate::error::Failure;
use crate::exit::Exit;
use crate::script::Host;

/// `prun completions SHELL`: the completion script on stdout.
pub(super) fn completions(shell: clap_complete::Shell) -> Result<Exit, Failure> {
    let mut out = Vec::new();
    crate::cli::completions(shell, &mut out);
    write_stdout(&out)
}

/// The fish completion script clap writes, made to read prun's command line: clap's takes
/// the first word that is not an option for a subcommand, so past a script's path
/// (`prun s.rhai --out<Tab>`) nothing was completed, and an option waiting for its value
/// (`prun --output <Tab>`) failed the parse that decides what to complete. Here only a
/// subcommand's name is a subcommand, prun's flags complete after the script's path (not
/// after `--`, where the script's arguments are), an option's values complete after a
/// space, and the subcommands' names are offered only before a script's path.
pub(super) fn fish_script_path(script: &str, subcommands: &[String]) -> String {
    const START: &str = "function __fish_prun_needs_command\n";
    let Some(start) = script.find(START) else {
        return script.to_string();
    };
    let Some(len) = script[start..].find("\nend\n") else {
        return script.to_string();
    };
    let end = start + len + "\nend\n".len();
    let names = subcommands.join(" ");
    let functions = format!(
        r#"function __fish_prun_words
    # The words before the cursor, past prun's options: the script's path or a subcommand
    # first. An option still waiting for its value (`--output`) is left out.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_prun_global_optspecs) -- $cmd 2>/dev/null
    or begin
        set -e cmd[-1]
        argparse -s (__fish_prun_global_optspecs) -- $cmd 2>/dev/null
    end
    or return
    for word in $argv
        echo $word
    end
    return 0
end

function __fish_prun_needs_command
    # True where prun's own flags complete: before a subcommand, and after a script's
    # path up to `--`. Prints the subcommand, if there is one.
    set -l words (__fish_prun_words)
    or return
    if set -q words[1]; and contains -- $words[1] {names}
        echo $words[1]
        return 1
    end
    not contains -- -- (commandline -opc)
end

function __fish_prun_before_script
    set -l words (__fish_prun_words)
    and not set -q words[1]
end
"#
    );
    let mut fixed = format!("{}{functions}{}", &script[..start], &script[end..]);
    for name in subcommands {
        fixed = fixed.replace(
            &format!("-n \"__fish_prun_needs_command\" -a \"{name}\""),
            &format!("-n \"__fish_prun_before_script\" -a \"{name}\""),
        );
    }
    fixed
}

/// The bash completion script clap writes, made to read prun's command line as
/// [`fish_script_path`] does: clap's offers prun's flags and subcommands for every word,
/// after `--` (the script's words) and after a script's path too, and never a file where
/// a path goes unless nothing else matched (`prun <Tab>` showed no script). Here a word
/// that starts with `-`, an option's value and what follows `completions` are clap's; a
/// subcommand's name is offered before a script's path only, beside the files; anything
/// else is left to bash's default, the files. `valued`: the flags whose value is the
/// next word.
pub(super) fn bash_script_path(script: &str, subcommands: &[String], valued: &[String]) -> String {
    let names = subcommands.join(" ");
    let valued = valued.join(" ");
    let wrapper = format!(
        r#"
_prun_line() {{
    # The first word past prun's options (and their values): a subcommand or the script.
    local cur="${{COMP_WORDS[COMP_CWORD]}}" prev="${{COMP_WORDS[COMP_CWORD-1]}}" i w first=""
    for (( i = 1; i < COMP_CWORD; i++ )); do
        w="${{COMP_WORDS[i]}}"
        if [[ $w == -- ]]; then
            COMPREPLY=()
            return 0
        fi
        if [[ -z $first && $w != -* && " {valued} " != *" ${{COMP_WORDS[i-1]}} "* ]]; then
            first=$w
        fi
    done
    if [[ $cur == -* || " {valued} " == *" $prev "* || $first == completions ]]; then
        _prun "$@"
        return
    fi
    COMPREPLY=()
    if [[ -z $first ]]; then
        COMPREPLY=($(compgen -W "{names}" -- "$cur"))
        if (( ${{#COMPREPLY[@]}} > 0 )); then
            COMPREPLY+=($(compgen -f -- "$cur"))
        fi
    fi
    return 0
}}
"#
    );
    // bash looks the function up when it completes: defined after `complete` is fine.
    let registered = script.replace("complete -F _prun ", "complete -F _prun_line ");
    format!("{registered}{wrapper}")
}

/// The zsh completion script clap writes, made to read prun's command line as
/// [`fish_script_path`] does: clap's took the first word for the script's path and the
/// next for a subcommand, so `prun list <Tab>` offered subcommands and `prun s.rhai
/// ch<Tab>` gave `check`. Here the first word is a subcommand or a script (a file); after
/// a script's path prun's flags complete, and files (the targets cannot be listed without
/// running the script), up to `--`, after which only files do. The script is returned as
/// clap wrote it when its shape is not the one expected.
pub(super) fn zsh_script_path(script: &str) -> String {
    const OPEN: &str = "    _arguments \"${_arguments_options[@]}\" : \\\n";
    const REST: &str = "'::rest -- ";
    const FIRST: &str = "\":: :_prun_commands\" \\\n";
    const END: &str = "        esac\n    ;;\nesac\n}\n";
    let (Some(open), Some(rest), Some(end)) =
        (script.find(OPEN), script.find(REST), script.rfind(END))
    else {
        return script.to_string();
    };
    let Some(rest_len) = script[rest..].find('\n') else {
        return script.to_string();
    };
    let flags = &script[open + OPEN.len()..rest];
    let branch = format!(
        "(*)\n\
         # The words before the cursor, as typed (the root's `--` is gone from $words).\n\
         local -a typed; typed=(${{(z)LBUFFER}})\n\
         [[ $LBUFFER == *' ' ]] || typed[-1]=()\n\
         if (( ${{typed[(I)--]}} )); then\n\
         _files && ret=0\n\
         else\n\
         _arguments \"${{_arguments_options[@]}}\" : \\\n{flags}'*: :_files' \\\n&& ret=0\n\
         fi\n\
         ;;\n"
    );
    let mut fixed = format!(
        "{}{}{branch}{}",
        &script[..rest],
        &script[rest + rest_len + 1..end],
        &script[end..]
    );
    fixed = fixed
        .replacen(FIRST, "\":: :_prun_first\" \\\n", 1)
        .replacen("words=($line[2] ", "words=($line[1] ", 1)
        .replacen("prun-command-$line[2]:", "prun-command-$line[1]:", 1)
        .replacen("case $line[2] in", "case $line[1] in", 1);
    fixed.push_str(
        "\n(( $+functions[_prun_first] )) ||\n\
         _prun_first() {\n\
         \x20   _alternative 'commands:prun command:_prun_commands' 'files:script:_files'\n\
         }\n",
    );
    fixed
}

/// The COMMANDS section of prun's man page: each subcommand's usage, what it does and its
/// arguments and options, in the one page (clap's page named a page per subcommand,
/// `prun-check(1)`, that nothing makes).
pub(super) fn man_commands(cmd: &clap::Command) -> String {
    let mut out = String::from(".SH COMMANDS\n");
    for sub in cmd.get_subcommands().filter(|c| c.get_name() != "help") {
        let mut sub = sub.clone().bin_name(format!("prun {}", sub.get_name()));
        let usage = sub.render_usage().to_string();
        let usage = usage.strip_prefix("Usage: ").unwrap_or(&usage);
        out.push_str(&format!(".SS \"{}\"\n", roff_text(usage)));
        if let Some(about) = sub.get_about() {
            out.push_str(&format!("{}\n", roff_line(&about.to_string())));
        }
        for arg in sub
            .get_arguments()
            .filter(|a| !a.is_hide_set() && a.get_id() != "help")
        {
            out.push_str(&format!(".TP\n{}\n", roff_line(&arg_words(arg))));
            if let Some(help) = arg.get_help() {
                out.push_str(&format!("{}\n", roff_line(&help.to_string())));
            }
        }
    }
    out
}

/// How an argument is written: `-n, --limit <N>`, `--html <PATH>`, `<SCRIPT>`.
fn arg_words(arg: &clap::Arg) -> String {
    let value = arg
        .get_value_names()
        .map(|v| {
            v.iter()
                .map(|n| format!("<{n}>"))
                .collect::<Vec<_>>()
                .join(" ")
        })
        .filter(|_| arg.get_action().takes_values())
        .unwrap_or_default();
    let names: Vec<String> = arg
        .get_short()
        .map(|c| format!("-{c}"))
        .into_iter()
        .chain(arg.get_long().map(|l| format!("--{l}")))
        .collect();
    match (names.is_empty(), value.is_empty()) {
        (true, _) => value,
        (false, true) => names.join(", "),
        (false, false) => format!("{} {value}", names.join(", ")),
    }
}

/// Text for roff: backslashes and dashes escaped (a `-` is a hyphen to roff, `\-` the
/// minus sign that options are written with).
fn roff_text(text: &str) -> String {
    text.replace('\\', "\\e").replace('-', "\\-")
}

/// A line of roff text: [`roff_text`], and a line that starts with `.` or `'` (a request
/// to roff) starts with `\&` instead.
fn roff_line(text: &str) -> String {
    let text = roff_text(text);
    if text.starts_with(['.', '\'']) {
        format!("\\&{text}")
    } else {
        text
    }
}

/// The EXIT STATUS section of prun's man page (see docs/cli.md, "Exit status").
pub(super) const MAN_EXIT_STATUS: &str = r#".SH "EXIT STATUS"
.TP
0
every scheduled proc succeeded, was skipped or was up to date
.TP
1
a proc failed, or did not run because a dependency failed
.TP
2
the script failed (a syntax error, an error outside a proc, a dependency cycle), \fBprun check\fR found a problem, or prun had an internal error
.TP
64
usage error: an unknown flag, a bad script argument, a target that matches nothing, a report that cannot be written
.TP
75
\fB\-\-lock\fR: another run holds the lock
.TP
130
interrupted (Ctrl\-C, SIGTERM, SIGHUP or SIGQUIT)
"#;

/// `prun man`: the man page (roff) on stdout.
pub(super) fn man() -> Result<Exit, Failure> {
    let mut out = Vec::new();
    crate::cli::man(&mut out).map_err(|source| Failure::Write {
        path: "the man page".into(),
        source,
    })?;
    write_stdout(&out)
}

fn write_stdout(bytes: &[u8]) -> Result<Exit, Failure> {
    let mut stdout = std::io::stdout().lock();
    match stdout.write_all(bytes).and_then(|()| stdout.flush()) {
        Ok(()) => Ok(Exit::Ok),
        // `prun man | head`: a reader that stops early is not an error.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(Exit::Ok),
        Err(source) => Err(Failure::Write {
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
    ("run", &["pattern: String", "patterns: Array"]),
    ("start", &["name: String", "names: Array"]),
    ("create", &["pattern: String"]),
    ("wait", &["name: String", "names: Array"]),
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
    ("quote", &["s: String", "words: Array", "word: ?"]),
    ("glob", &["pattern: String"]),
    ("env", &["name: String", "fallback: String"]),
    ("read_file", &["path: String"]),
    ("write_file", &["path: String", "text: String"]),
    ("append_file", &["path: String", "text: String"]),
    ("file_info", &["path: String"]),
    ("parse_json", &["text: String"]),
    ("to_json", &["value: ?", "value: Map", "pretty: bool"]),
    (
        "sleep",
        &["duration: int", "duration: float", "duration: ?"],
    ),
    (
        "sort",
        &["array: Array", "comparator: FnPtr", "function: String"],
    ),
    ("sort_by", &["array: Array", "comparator: FnPtr"]),
    ("log_info", &["msg: ?"]),
    ("log_warn", &["msg: ?"]),
    ("log_error", &["msg: ?"]),
    (
        "require",
        &["tool: ?", "tool2: ?", "tool3: ?", "tool4: ?", "tool5: ?"],
    ),
    ("defer", &["cleanup: FnPtr"]),
    ("args", &["declaration: Map"]),
    ("log", &["msg: String"]),
    ("progress", &["fraction: float", "text: String"]),
];

/// `prun definitions DIR`: writes `DIR/prun.d.rhai` (prun's functions, with their
/// parameter names) and Rhai's own definition files: `__static__.d.rhai` (Rhai's
/// standard functions), `__builtin__.d.rhai` and `__builtin-operators__.d.rhai`.
pub(super) fn definitions(dir: &Path) -> Result<Exit, Failure> {
    let failed = |source| Failure::Write {
        path: dir.to_path_buf(),
        source,
    };
    let prun = prun_definitions(&Host::api_functions().map_err(Failure::Runtime)?);
    if dir.exists() && !dir.is_dir() {
        return Err(Failure::Usage(format!(
            "prun: definitions: {} is not a directory (prun writes its .d.rhai files into DIR)",
            dir.display()
        )));
    }
    std::fs::create_dir_all(dir).map_err(failed)?;
    // Rhai's own functions, from an engine without prun's. Its generator writes an
    // unknown return type as `-> ;`, which its own definition syntax does not allow.
    // Written as reports are: through no link another user planted in DIR.
    let write =
        |file: &str, text: &str| crate::report::replace_file(&dir.join(file), text.as_bytes());
    for (file, text) in rhai::Engine::new().definitions().iter_files() {
        write(&file, &text.replace(") -> ;", ");")).map_err(failed)?;
    }
    write("prun.d.rhai", &prun).map_err(failed)?;
    outln!("wrote Rhai definitions of prun's API to {}", dir.display());
    Ok(Exit::Ok)
}

/// The definition file of prun's functions: `fn name(param: Type, ...) -> Type;`,
/// `fn get name(ctx: Ctx) -> Type;` for the properties of `ctx` and results, and
/// `const NO_FAILURES`.
fn prun_definitions(functions: &[crate::script::Function]) -> String {
    let mut lines: Vec<String> = functions
        .iter()
        .filter_map(|f| {
            let (kw, name) = match f.name.split_once('$') {
                None => ("fn", f.name.as_str()),
                Some(("get", n)) => ("fn get", n),
                Some(("set", n)) => ("fn set", n),
                Some(_) => return None,
            };
            let params: Vec<String> = (0..f.arity)
                .map(|i| {
                    let p = f.params.get(i).map_or("_: ?", String::as_str);
                    let (n, t) = p.split_once(':').unwrap_or(("_", p));
                    let t = def_type(t);
                    let n = match n.trim() {
                        "_" if t == "Ctx" => "ctx".to_string(),
                        "_" => format!("arg{}", i + 1),
                        n => n.to_string(),
                    };
                    format!("{n}: {t}")
                })
                .collect();
            let line = format!(
                "{kw} {name}({}) -> {};",
                params.join(", "),
                def_type(&f.returns)
            );
            Some(named(&line).unwrap_or(line))
        })
        .collect();
    lines.sort();
    lines.dedup();
    // The constant every script sees (pushed into its scope, not registered).
    lines.push("/// A dependency: the proc runs only if no proc of the run has failed (`deps: [NO_FAILURES]`).\nconst NO_FAILURES: NoFailures;".into());
    format!("module static;\n\n{}\n", lines.join("\n\n"))
}

/// A Rhai type name as definition files write it (`String`, `int`, `Map`, `FnPtr`,
/// `?` for any value); `Result<T, Box<EvalAltResult>>` is `T`.
fn def_type(t: &str) -> String {
    let t = t
        .trim()
        .trim_start_matches("&mut ")
        .trim_start_matches('&')
        .trim();
    let (base, args) = match t.find('<') {
        Some(i) => (&t[..i], t[i + 1..].strip_suffix('>').unwrap_or(&t[i + 1..])),
        None => (t, ""),
    };
    match base.rsplit("::").next().unwrap_or(base) {
        "Result" | "RhaiResultOf" => def_type(first_type(args)),
        "" | "()" => "()".into(),
        "str" | "String" | "string" | "ImmutableString" => "String".into(),
        "i64" | "INT" | "int" => "int".into(),
        "f64" | "FLOAT" | "float" => "float".into(),
        "Vec" | "Array" | "array" => "Array".into(),
        "BTreeMap" | "Map" | "map" => "Map".into(),
        "FnPtr" | "Fn" => "FnPtr".into(),
        "Dynamic" | "?" => "?".into(),
        other => other.into(),
    }
}

/// The first type of a list of generic arguments (`T` of `T, Box<E>`).
fn first_type(args: &str) -> &str {
    let mut depth = 0usize;
    for (i, c) in args.char_indices() {
        match c {
            '<' => depth += 1,
            '>' => depth = depth.saturating_sub(1),
            ',' if depth == 0 => return &args[..i],
            _ => {}
        }
    }
    args
}

/// A `fn name(_: T, ...)` line with the parameter names of [`PARAMS`] put in.
fn named(line: &str) -> Option<String> {
    let rest = line.strip_prefix("fn ")?;
    let (name, rest) = rest.split_once('(')?;
    let (params, tail) = rest.split_once(')')?;
    let (_, names) = PARAMS.iter().find(|(n, _)| *n == name)?;
    let mut used = vec![false; names.len()];
    let mut fixed = Vec::new();
    for param in params.split(", ").filter(|p| !p.is_empty()) {
        let (given, ty) = param.split_once(": ").unwrap_or(("", param));
        let unnamed = given.is_empty()
            || given == "_"
            || given
                .strip_prefix("arg")
                .is_some_and(|n| n.bytes().all(|b| b.is_ascii_digit()));
        if !unnamed {
            fixed.push(param.to_string());
            continue;
        }
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

//! The `prun` command line on top of the library: parse the words, build a
//! [`crate::Runtime`] from the flags, run the script, write the `--json` report, and
//! choose the exit status. The subcommands that run nothing (`check`, `history`, `log`)
//! live here too.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::SystemTime;

use crate::cli::{self, Invocation, RunConfig};
use crate::error::Failure;
use crate::exit::Exit;
use crate::inspect::Inspect;
use crate::redact::Secrets;
use crate::report::RunInfo;
use crate::run::{BaseEngine, Call, CliExtras, Output, Script, TaskDb};
use crate::store::Store;

/// The whole program behind the `prun` binary: reads `args` (with the program name
/// first), runs what they ask, prints what went wrong, and returns the exit status. All
/// of it happens on the run's own thread, while this one builds the engine.
pub(crate) fn main(args: impl IntoIterator<Item = OsString>) -> ExitCode {
    let args: Vec<OsString> = args.into_iter().collect();
    let engine = runs_a_script(&args);
    let exit = crate::run::on_run_thread(engine, move |base| Ok(dispatch(args, base)))
        .unwrap_or_else(|e| {
            e.print();
            e.code()
        });
    ExitCode::from(exit as u8)
}

/// Whether the words ask for a run of a script (not `prun history`, `log`, `report`,
/// `completions`, `man`, `definitions`, `--help` or `--version`): the main thread then
/// builds the run's engine while the words are read (see [`crate::run::on_run_thread`]).
/// A wrong guess only costs time.
fn runs_a_script(args: &[OsString]) -> bool {
    const NO_SCRIPT: &[&str] = &[
        "history",
        "log",
        "report",
        "completions",
        "man",
        "definitions",
        "help",
        "--help",
        "-h",
        "--version",
        "-V",
    ];
    args.get(1)
        .and_then(|w| w.to_str())
        .is_none_or(|w| !NO_SCRIPT.contains(&w))
}

/// [`main`] on the run's own thread: reads the words, runs what they ask, prints what
/// went wrong, and returns the exit status.
fn dispatch(args: Vec<OsString>, base: BaseEngine) -> Exit {
    let result = match cli::parse(args) {
        Invocation::Run(cfg) => run(*cfg, base),
        Invocation::Completions(shell) => super::docgen::completions(shell),
        Invocation::Man => super::docgen::man(),
        Invocation::Definitions(dir) => super::docgen::definitions(&dir),
        Invocation::Report(req) => crate::picture::run_report(&req),
        Invocation::History { script, db, limit } => history(&script, db, limit),
        Invocation::Log { script, of, follow } => super::log::log(&script, &of, follow),
        Invocation::Exit(code) => Ok(code),
    };
    result.unwrap_or_else(|e| {
        e.print();
        e.code()
    })
}

/// Runs a script to completion and returns the exit status. What goes wrong during the
/// run is reported as it happens; a [`Failure`] is what stopped prun before it. With
/// `--json PATH`, every attempted run writes a report, one stopped by an error too (a
/// usage error, a script that does not compile, the lock held): a report left by an
/// earlier run never passes for this one's.
fn run(cfg: RunConfig, base: BaseEngine) -> Result<Exit, Failure> {
    let start = SystemTime::now();
    let json = cfg
        .json
        .clone()
        .or_else(|| cli::json_in(&cfg.head, &cfg.tail_bytes));
    if json.as_deref().is_some_and(crate::report::is_stdout) {
        crate::report::to_stdout();
    }
    let (script, args) = (cfg.script.clone(), cfg.script_args.clone());
    let own = own_files(&cfg);
    // The script's secrets stay hidden until the report of a run an error stopped is
    // written too.
    let mut secrets = Secrets::default();
    let checking = cfg.inspect == Some(Inspect::Check);
    let result = attempt(cfg, &mut secrets, base);
    // `check` reports a syntax error as the one problem it found, as it does every other.
    if checking && let Err(Failure::Script(e @ crate::script::ScriptError::Syntax { .. })) = &result
    {
        errln!("{}", crate::ui::colours_only(&e.to_string()));
        errln!("prun: check: 1 problem found");
        return Ok(Exit::Script);
    }
    if let (Err(e), Some(path)) = (&result, &json)
        && crate::report::check_destination(path, &own).is_ok()
        && let Some((outcome, text)) = e.report()
    {
        let info = RunInfo {
            script: &script,
            args: &args,
            start,
            end: SystemTime::now(),
            outcome,
            error: Some(&text),
            exit: e.code(),
        };
        if let Err(w) = crate::report::write(path, &crate::report::build(&info, &[])) {
            report_lost(path, &w);
        }
    }
    result
}

/// Says that the `--json` report at `path` could not be written. The run's status then
/// says so too (see [`with_report_lost`]): a cron job that asked for a report must not
/// take its loss for success.
fn report_lost(path: &Path, why: &std::io::Error) {
    errln!(
        "prun: failed to write the JSON report {}: {why}",
        crate::paths::shown(path)
    );
}

/// The exit status of a run whose report could not be written: the run's own when it
/// failed, else a usage error, as when `--json` names a directory that does not exist.
fn with_report_lost(exit: Exit) -> Exit {
    match exit {
        Exit::Ok => Exit::Usage,
        failed => failed,
    }
}

/// The files of the run that a `--json` report must not replace, with what they are.
fn own_files(cfg: &RunConfig) -> Vec<(PathBuf, &'static str)> {
    let mut own = vec![(cfg.script.clone(), "the script itself")];
    own.extend(cfg.db.clone().map(|db| (db, "the task DB")));
    own
}

/// [`run`] without the report of a run an error stopped.
fn attempt(cfg: RunConfig, secrets: &mut Secrets, base: BaseEngine) -> Result<Exit, Failure> {
    let Some(cfg) = with_declared_options(cfg, secrets)? else {
        return Ok(Exit::Ok);
    };
    if let Some(path) = &cfg.json {
        crate::report::check_destination(path, &own_files(&cfg))?;
    }
    crate::exec::install_panic_hook();
    let runtime = runtime_of(&cfg).map_err(crate::Error::into_failure)?;
    let call = Call {
        script: Script::File(cfg.script.clone()),
        targets: cfg.targets.clone(),
        script_args: cfg.script_args.clone(),
        script_values: cfg.script_values.clone(),
        history_args: cfg
            .script_words
            .clone()
            .unwrap_or_else(|| cfg.script_args.clone()),
        cancel: None,
        started: std::time::Instant::now(),
        cli: CliExtras {
            lock: cfg.lock,
            inspect: cfg.inspect,
            exit_only: cfg.json.is_none(),
            exit_after: true,
            report: cfg.json.clone().filter(|p| !crate::report::is_stdout(p)),
        },
        secrets: Secrets::default(),
    };
    let report = runtime.execute_here(call, base)?;
    if let Some(path) = cfg.json.as_ref().filter(|_| cfg.inspect.is_none())
        && let Err(e) = crate::report::write(path, &report)
    {
        report_lost(path, &e);
        return Ok(with_report_lost(report.exit()));
    }
    Ok(report.exit())
}

/// The runtime the flags describe; it handles the signals (the binary owns the process).
fn runtime_of(cfg: &RunConfig) -> Result<crate::Runtime, crate::Error> {
    let task_db = if cfg.no_db {
        TaskDb::Off
    } else {
        cfg.db.clone().map_or(TaskDb::Default, TaskDb::Path)
    };
    let output = if crate::run::wants_live(cfg.live, cfg.quiet) {
        Output::Live
    } else {
        Output::Plain
    };
    let mut policy = crate::Policy::new().deny_env(cfg.deny_env.iter().cloned());
    if !cfg.allow.is_empty() {
        policy = policy.allow_programs(cfg.allow.iter().cloned());
    }
    if cfg.no_shell {
        policy = policy.no_shell();
    }
    let mut builder = crate::Runtime::builder()
        .task_db(task_db)
        .output(output)
        .verbose(cfg.verbose)
        .quiet(cfg.quiet)
        .full_log_on_failure(cfg.full_log_on_failure)
        .fail_fast(cfg.fail_fast)
        .full(cfg.full)
        .dry_run(cfg.dry_run)
        .policy(policy)
        .handle_signals(true)
        .terminal(true)
        .live_flag(cfg.live.is_some())
        .proc_output(cfg.output)
        .watch(cfg.watch);
    if let Some(n) = cfg.parallel {
        builder = builder.parallel(n);
    }
    builder.build()
}

/// Reads the command line again with the script's `args(#{...})` declaration: the
/// script's options go to it, the rest is prun's (flags and targets). `--help` after the
/// script path prints the script's own usage.
fn with_declared_options(
    cfg: RunConfig,
    secrets: &mut Secrets,
) -> Result<Option<RunConfig>, Failure> {
    if cfg.script_values.is_some() {
        return Ok(Some(cfg));
    }
    if let Some(what) = cfg.inspect {
        return inspect_options(cfg, what, secrets);
    }
    let script = cfg.script.display().to_string();
    let declared = declaration(&cfg);
    if let Some(e) = not_text(&cfg, declared.as_ref().and_then(|d| d.as_ref().ok())) {
        return Err(Failure::Usage(format!("prun: {script}: {e}")));
    }
    let decl = match declared {
        None => {
            // A script that cannot be read: the run says why (a wrong word after its
            // path matters less).
            if let Some(e) = cfg
                .tail_error
                .as_ref()
                .filter(|_| crate::script::read_script(&cfg.script).is_ok())
            {
                // The script may declare options, in an `args` call its declaration pass
                // did not reach: a syntax error keeps it from being read, and is what to
                // report then.
                let calls_args =
                    crate::script::read_script(&cfg.script).is_ok_and(|t| t.contains("args("));
                if let Some(syntax) = calls_args
                    .then(|| crate::script::syntax_error(&cfg.script))
                    .flatten()
                {
                    return Err(Failure::Script(syntax));
                }
                let hint = if calls_args {
                    "\n(prun reads a script's options from its args(#{...}) call before the run, \
                     only when that call comes before the script's other prun functions)"
                } else {
                    ""
                };
                // `--help` is prun's then (`args()` without a declaration, or one that
                // comes too late to be read): its help, as for any script.
                if cfg.tail_help {
                    outln!("{}{hint}", e.trim_end());
                    return Ok(None);
                }
                return Err(Failure::Usage(format!("{}{hint}", e.trim_end())));
            }
            return Ok(Some(cfg));
        }
        Some(Err(source)) => return Err(Failure::Declaration { script, source }),
        Some(Ok(d)) => d,
    };
    let split = decl
        .split(&cfg.tail)
        .map_err(|msg| script_usage(&script, msg))?;
    if split.help {
        outln!("{}", decl.usage(&crate::shown::path(&cfg.script)));
        return Ok(None);
    }
    secrets.add(split.secrets);
    let mut argv: Vec<std::ffi::OsString> = vec!["prun".into()];
    argv.extend(cfg.head.iter().cloned());
    argv.push(cfg.script.clone().into_os_string());
    argv.extend(as_given(&cfg, &split.rest));
    match cli::parse(argv) {
        cli::Invocation::Run(mut c) => {
            // What is left must be prun's: an unknown option is a usage error now.
            if let Some(e) = c.tail_error.take() {
                return Err(Failure::Usage(format!(
                    "{}\n(the script's own options: prun {script} --help){}",
                    without_dash_dash_tip(&e).trim_end(),
                    script_option_hint(&decl, &split.rest, &e)
                )));
            }
            c.script_values = Some(split.values);
            c.script_words = Some(split.words);
            Ok(Some(*c))
        }
        cli::Invocation::Exit(Exit::Ok) => Ok(None),
        cli::Invocation::Exit(exit) => Err(Failure::Printed(exit)),
        _ => Err(Failure::Printed(Exit::Usage)),
    }
}

/// The script's `args(#{...})` declaration, read with an `env()` that hides what
/// `--deny-env` hides. The flag may be among words not parsed yet (mixed with the script's
/// own options), so it is looked for in the words as given, as `--json` is.
fn declaration(
    cfg: &RunConfig,
) -> Option<Result<crate::script::Declaration, crate::script::DeclError>> {
    let text = crate::script::read_script(&cfg.script).ok()?;
    let policy = crate::Policy::new().deny_env(deny_env_in(cfg));
    let visible: Arc<dyn Fn(&str) -> bool + Send + Sync> =
        Arc::new(move |name| policy.env_visible(name));
    // No limits: the binary's user ends a script that loops with Ctrl-C.
    crate::script::declaration_in(text, &cfg.script.display().to_string(), visible, &|_| {})
}

/// The names of every `--deny-env NAME` (or `--deny-env=NAME`) among prun's words.
fn deny_env_in(cfg: &RunConfig) -> Vec<String> {
    let words: Vec<String> = cfg
        .head
        .iter()
        .map(|w| w.to_string_lossy().into_owned())
        .chain(cfg.tail.iter().cloned())
        .take_while(|w| w != "--")
        .collect();
    let mut names = cfg.deny_env.clone();
    for (i, w) in words.iter().enumerate() {
        if let Some(name) = w.strip_prefix("--deny-env=") {
            names.push(name.to_string());
        } else if w == "--deny-env"
            && let Some(name) = words.get(i + 1)
        {
            names.push(name.clone());
        }
    }
    names
}

/// A script's own command line was wrong: the message points to its `--help`.
fn script_usage(script: &str, msg: impl std::fmt::Display) -> Failure {
    Failure::Usage(format!(
        "prun: {script}: {msg}\nFor the script's options, try 'prun {script} --help'."
    ))
}

/// prun's parser's error without its tip to give the word after `--` (``to pass '--x' as
/// a value, use '-- --x'``): after `--` a word goes to the script, whose declaration does
/// not take it either.
fn without_dash_dash_tip(error: &str) -> String {
    error
        .lines()
        .filter(|l| {
            !(l.trim_start().starts_with("tip: to pass '") && l.contains("as a value, use '-- "))
        })
        .map(|l| format!("{l}\n"))
        .collect()
}

/// For a word prun's parser refused (`error` quotes it, `'--max-ag'`): a line naming the
/// nearest of the script's own options, or an empty string.
fn script_option_hint(decl: &crate::script::Declaration, words: &[String], error: &str) -> String {
    words
        .iter()
        .filter(|w| w.starts_with("--"))
        .find(|w| error.contains(&format!("'{}'", w.split('=').next().unwrap_or(w))))
        .map(|w| (w, decl.option_hint(w)))
        .filter(|(_, hint)| !hint.is_empty())
        .map_or_else(String::new, |(w, hint)| {
            format!("\nprun: {w} is not an option of the script either{hint}")
        })
}

/// `words`, which are among the words after the script path in order (prun's, left by
/// the script's declaration), as given: a path of `--db` or `--json` that is not UTF-8
/// stays the path it names.
fn as_given(cfg: &RunConfig, words: &[String]) -> Vec<OsString> {
    let mut given = cfg.tail.iter().zip(&cfg.tail_bytes);
    words
        .iter()
        .map(|w| {
            given
                .by_ref()
                .find(|(text, _)| *text == w)
                .map_or_else(|| w.into(), |(_, bytes)| bytes.clone())
        })
        .collect()
}

/// prun's flags whose value is a path, which may be any bytes (the script's own options
/// of those names aside).
const PATH_FLAGS: &[&str] = &["db", "json"];

/// The first word after the script path that is not UTF-8 and is not the path of one of
/// [`PATH_FLAGS`] (before `--`): a target, a script's argument or another word of prun's,
/// which are text. Its
/// lossy text (`a\u{fffd}b`) would name another file to the commands it is handed to, or
/// another proc, so it is an error naming it (as `env()` of such a value is).
fn not_text(cfg: &RunConfig, decl: Option<&crate::script::Declaration>) -> Option<String> {
    use std::os::unix::ffi::OsStrExt;
    let prun_path = |flag: &[u8]| {
        let name = flag.strip_prefix(b"--")?;
        let name = std::str::from_utf8(name).ok()?;
        (PATH_FLAGS.contains(&name) && !decl.is_some_and(|d| d.declares_long(name))).then_some(())
    };
    let mut script_only = false;
    let mut previous: &[u8] = b"";
    for (i, word) in cfg.tail_bytes.iter().enumerate() {
        let bytes = word.as_bytes();
        let Err(e) = std::str::from_utf8(bytes) else {
            script_only |= bytes == b"--";
            previous = bytes;
            continue;
        };
        let inline = bytes
            .iter()
            .position(|&b| b == b'=')
            .is_some_and(|at| prun_path(&bytes[..at]).is_some());
        if script_only || !(inline || prun_path(previous).is_some()) {
            let at = e.valid_up_to();
            return Some(format!(
                "word {} after the script path, \"{}\", is not UTF-8 (byte {} is {:#04x}): a \
                 target or a script's argument is text (a script string cannot hold it), as \
                 are prun's words but the paths of --db and --json",
                i + 1,
                crate::shown::bytes(bytes),
                at + 1,
                bytes[at]
            ));
        }
        previous = bytes;
    }
    None
}

/// `prun list|graph SCRIPT WORDS...`: the words are read with the script's declaration as
/// a run reads them, except that a required option may be left out (it reads as `()`):
/// listing a script must not need its secrets. Words that are not the script's are
/// targets for `graph`, and an error for `list`.
fn inspect_options(
    mut cfg: RunConfig,
    what: Inspect,
    secrets: &mut Secrets,
) -> Result<Option<RunConfig>, Failure> {
    let script = cfg.script.display().to_string();
    let words = std::mem::take(&mut cfg.tail);
    let decl = declaration(&cfg)
        .transpose()
        .map_err(|source| Failure::Declaration {
            script: script.clone(),
            source,
        })?;
    if let Some(e) = not_text(&cfg, decl.as_ref()) {
        return Err(Failure::Usage(format!("prun: {script}: {e}")));
    }
    let rest = match &decl {
        None => {
            let mut words = words.into_iter();
            let rest: Vec<String> = words.by_ref().take_while(|w| w != "--").collect();
            cfg.script_args = words.collect();
            rest
        }
        Some(decl) => {
            let split = decl
                .split_lenient(&words)
                .map_err(|msg| script_usage(&script, msg))?;
            if split.help {
                outln!("{}", decl.usage(&crate::shown::path(&cfg.script)));
                return Ok(None);
            }
            secrets.add(split.secrets);
            cfg.script_values = Some(split.values);
            cfg.script_words = Some(split.words);
            split.rest
        }
    };
    // An option neither the script nor prun's subcommand has is a mistake, not a target.
    let wrong = match what {
        Inspect::List => rest.first(),
        Inspect::Graph | Inspect::Check => rest.iter().find(|w| w.len() > 1 && w.starts_with('-')),
    };
    if let Some(word) = wrong {
        let hint = decl
            .as_ref()
            .map_or_else(String::new, |d| d.option_hint(word));
        let sub = match what {
            Inspect::List => "list",
            Inspect::Graph => "graph",
            Inspect::Check => "check",
        };
        return Err(Failure::Usage(format!(
            "prun: {sub} {script}: unexpected argument \"{word}\"{hint} (prun {sub} takes the script's own arguments{}: prun {script} --help)",
            if what == Inspect::List {
                " only"
            } else {
                " and targets"
            }
        )));
    }
    cfg.targets = rest;
    Ok(Some(cfg))
}

/// `prun history SCRIPT`: the recent runs recorded in the script's task DB.
fn history(script: &Path, db: Option<PathBuf>, limit: usize) -> Result<Exit, Failure> {
    let given = db.is_some();
    let path = match db {
        Some(path) => path,
        None => crate::script::recorded_place(script, "task_db", "tasks.db")?,
    };
    if crate::store::missing(&path) {
        return Err(Failure::no_db(path, script, given));
    }
    let store = Store::open_read_only(&path, Arc::new(|m: &str| errln!("prun: warning: {m}")))?;
    let key = crate::store::ScriptName::of(script).key;
    let runs = store.history(&key, limit)?;
    if runs.is_empty() {
        return Err(Failure::no_run(None, script, path));
    }
    let mut text = format!(
        "{:>6}  {:<24}  {:>9}  {:<12}  procs\n",
        "run", "started", "duration", "outcome"
    );
    for r in &runs {
        let dur = r.duration.map_or("-".to_string(), |d| format!("{d:.2}s"));
        let counts = r
            .counts
            .as_deref()
            .map(crate::ui::counts_text)
            .unwrap_or_default();
        text.push_str(&format!(
            "{:>6}  {:<24}  {:>9}  {:<12}  {}\n",
            r.id,
            r.started,
            dur,
            crate::store::outcome_label(r.outcome.as_deref(), r.alive.as_ref()),
            counts
        ));
    }
    // The runs without a recorded end, each said of in a line after the table.
    let unended: Vec<String> = runs
        .iter()
        .filter_map(|r| Some(r.alive.as_ref()?.line(r.id)))
        .collect();
    if !unended.is_empty() {
        text.push_str(&format!("\n{}\n", unended.join("\n")));
    }
    // Why each run an error stopped did stop: its message's first line (`prun report`
    // shows it whole).
    let stopped: Vec<String> = runs
        .iter()
        .filter_map(|r| {
            let first = r.error.as_deref()?.lines().next().unwrap_or_default();
            Some(format!("run {}: {first}", r.id))
        })
        .collect();
    if !stopped.is_empty() {
        text.push_str(&format!("\n{}\n", stopped.join("\n")));
    }
    let latest = &runs[0];
    let procs = store.run_procs(latest.id)?;
    if !procs.is_empty() {
        text.push_str(&format!(
            "\nprocs of run {} (that ran; up-to-date procs are counted above):\n",
            latest.id
        ));
        // A watch's rows, under the cycle each ran in.
        let watch = procs.iter().any(|p| p.cycle.unwrap_or(0) > 0);
        let mut shown_cycle = None;
        for p in procs {
            let cycle = p.cycle.unwrap_or(0);
            if watch && shown_cycle != Some(cycle) {
                shown_cycle = Some(cycle);
                text.push_str(&match cycle {
                    0 => "  first run:\n".to_string(),
                    n => format!("  cycle {n}:\n"),
                });
            }
            let dur = p.duration.map_or(String::new(), |d| format!(" ({d:.2}s)"));
            let err = p
                .error
                .map(|e| format!(": {}", e.lines().next().unwrap_or("")))
                .unwrap_or_default();
            let indent = if watch { "    " } else { "  " };
            text.push_str(&format!("{indent}{:<10} {}{dur}{err}\n", p.state, p.name));
        }
    }
    // An error can quote anything (a file name a glob found): its control characters are
    // written out (`\e`), not sent to the terminal.
    let text = crate::shown::visible(&text);
    crate::report::print_text(text.as_bytes()).map_err(|source| Failure::Write {
        path: "stdout".into(),
        source,
    })?;
    Ok(Exit::Ok)
}

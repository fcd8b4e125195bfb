//! The command line, in two stages (as ripgrep does): clap parses the words before the
//! script path and recognises subcommands; the words after the script path are parsed
//! again into prun's own flags, targets, and (after `--`) the script's arguments;
//! `frontend` runs what they ask on top of the [`crate::Runtime`], and `docgen` writes
//! the shell completions, the man page and the Rhai definition files.
//!
//! [`main`] is the `prun` binary; the rest of this module is private to the crate.

use std::ffi::OsString;
use std::path::PathBuf;

use clap::{Args, CommandFactory, Parser, Subcommand};

use crate::exit::Exit;
use crate::inspect::Inspect;

mod docgen;
mod frontend;
mod log;

pub(crate) use log::LogOf;

/// The whole `prun` program: reads the process's arguments, runs what they ask (a
/// script, `check`, `list`, `graph`, `history`, `log`), and returns its exit status. The
/// binary is `fn main() -> ExitCode { prun::cli::main() }`; a run goes through the same
/// [`crate::Runtime`] an embedder builds, configured from the flags, which also handles
/// Ctrl-C and the other terminating signals.
///
/// ```no_run
/// fn main() -> std::process::ExitCode {
///     prun::cli::main()
/// }
/// ```
pub fn main() -> std::process::ExitCode {
    frontend::main(std::env::args_os())
}

/// Everything the command line decides about a run.
#[derive(Debug, Clone, Default)]
pub(crate) struct RunConfig {
    pub script: PathBuf,
    pub targets: Vec<String>,
    pub script_args: Vec<String>,
    pub parallel: Option<usize>,
    pub fail_fast: bool,
    pub verbose: bool,
    pub quiet: bool,
    /// `--db PATH`.
    pub db: Option<PathBuf>,
    /// `--no-db`.
    pub no_db: bool,
    /// `--full`: ignore the cache for this run.
    pub full: bool,
    /// `--full-log-on-failure`.
    pub full_log_on_failure: bool,
    /// `--json PATH`: where to write the run report.
    pub json: Option<PathBuf>,
    /// `--dry-run`: resolve the graph and show what would run; run no proc.
    pub dry_run: bool,
    /// `--watch`: after the run, re-run what changes of declared inputs affect.
    pub watch: bool,
    /// `prun list` / `prun graph`: evaluate the script as a dry run, silently, then show
    /// its graph instead of a summary.
    pub inspect: Option<Inspect>,
    /// `--live` (`Some(true)`) / `--no-live` (`Some(false)`); else live on a terminal.
    pub live: Option<bool>,
    /// `--output MODE`: where procs' output goes besides their logs.
    pub output: Option<crate::graph::OutputMode>,
    /// `--lock`: refuse to run (`Some(false)`) or wait (`Some(true)`, `--lock=wait`) while
    /// another run of the script holds the lock.
    pub lock: Option<bool>,
    /// The words before the script path, as given.
    pub head: Vec<std::ffi::OsString>,
    /// The words after the script path, as given (as text: a byte that is not UTF-8
    /// reads as U+FFFD here; see `tail_bytes`).
    pub tail: Vec<String>,
    /// The words after the script path, as given, bytes and all: a word that is not
    /// UTF-8 is an error unless it is the path of one of prun's flags.
    pub tail_bytes: Vec<OsString>,
    /// Why the words after the script path are not prun's, when they are not: they may
    /// still be the script's own options (see `script::declaration`).
    pub tail_error: Option<String>,
    /// `tail_error` is prun's help (`--help` after the path of a script that may declare
    /// options): what to print when the script declares none.
    pub tail_help: bool,
    /// The values of the script's declared options, once the command line was read with
    /// the script's declaration.
    pub script_values: Option<rhai::Map>,
    /// The script's own words as given (its options with their values, and the words
    /// after `--`), once the command line was read with the script's declaration.
    pub script_words: Option<Vec<String>>,
    /// `--allow PROGRAM`: the programs the script may run (the policy's allow list).
    pub allow: Vec<String>,
    /// `--no-shell`: shell strings are refused.
    pub no_shell: bool,
    /// `--deny-env NAME`: variables hidden from the script and its commands.
    pub deny_env: Vec<String>,
}

/// Flags accepted before and after the script path.
#[derive(Args, Debug, Clone, Default)]
struct RunFlags {
    /// Max procs running at once (default: number of CPUs)
    #[arg(short = 'j', long = "parallel", value_name = "N", value_parser = at_least_one, allow_negative_numbers = true)]
    parallel: Option<u32>,
    /// On the first failure, schedule nothing more and terminate running jobs
    #[arg(long)]
    fail_fast: bool,
    /// More output: a line for each command a proc runs (`name: $ command`) and for its progress
    #[arg(short, long)]
    verbose: bool,
    /// Quiet, for cron: nothing when all succeeds; else only the failures and the summary
    #[arg(short, long)]
    quiet: bool,
    /// Ignore the cache: every scheduled proc runs (results are still saved)
    #[arg(long)]
    full: bool,
    /// The task DB to use (default: one per script under the state directory)
    #[arg(long, value_name = "PATH", conflicts_with = "no_db")]
    db: Option<PathBuf>,
    /// No task DB: no cache, no history
    #[arg(long)]
    no_db: bool,
    /// Print the whole log of a failed proc instead of the excerpts
    #[arg(long)]
    full_log_on_failure: bool,
    /// One run of the script at a time: exit 75 if another holds the lock (--lock=wait waits)
    #[arg(long, value_name = "wait", num_args = 0..=1, require_equals = true, default_missing_value = "fail", value_parser = ["fail", "wait"])]
    lock: Option<String>,
    /// Resolve the graph and print, in order, what would run; run no proc
    #[arg(long)]
    dry_run: bool,
    /// Write the run report as JSON to PATH
    #[arg(long, value_name = "PATH")]
    json: Option<PathBuf>,
    /// Force the live display on (default: on when stdout is a terminal)
    #[arg(long, conflicts_with = "no_live")]
    live: bool,
    /// Force the live display off
    #[arg(long)]
    no_live: bool,
    /// Where procs' output goes: only to their logs (log), every line as it comes prefixed
    /// with the proc's name (stream), or each proc's whole log when it ends (grouped)
    #[arg(long, value_name = "MODE", value_parser = ["log", "stream", "grouped"])]
    output: Option<String>,
    /// Only let the script run PROGRAM (a name found on PATH, or a path; globs allowed); repeatable
    #[arg(long = "allow", value_name = "PROGRAM", value_parser = not_empty)]
    allow: Vec<String>,
    /// Refuse shell strings (`shell`, `shell:` bodies, string stages of `pipe`)
    #[arg(long)]
    no_shell: bool,
    /// Hide the environment variable NAME from the script and its commands; repeatable
    #[arg(long = "deny-env", value_name = "NAME", value_parser = not_empty)]
    deny_env: Vec<String>,
    /// After the run, watch the declared inputs and re-run what their changes affect (until Ctrl-C)
    #[arg(long)]
    watch: bool,
}

impl RunFlags {
    fn merge(self, later: RunFlags) -> RunFlags {
        RunFlags {
            parallel: later.parallel.or(self.parallel),
            fail_fast: self.fail_fast || later.fail_fast,
            verbose: self.verbose || later.verbose,
            quiet: self.quiet || later.quiet,
            full: self.full || later.full,
            db: later.db.or(self.db),
            no_db: self.no_db || later.no_db,
            full_log_on_failure: self.full_log_on_failure || later.full_log_on_failure,
            json: later.json.or(self.json),
            dry_run: self.dry_run || later.dry_run,
            lock: later.lock.or(self.lock),
            live: self.live || later.live,
            no_live: self.no_live || later.no_live,
            output: later.output.or(self.output),
            allow: [self.allow, later.allow].concat(),
            no_shell: self.no_shell || later.no_shell,
            deny_env: [self.deny_env, later.deny_env].concat(),
            watch: self.watch || later.watch,
        }
    }
}

#[derive(Parser, Debug)]
#[command(
    name = "prun",
    version,
    about = "Run Rhai scripts that describe pipelines of subprocess jobs, in parallel",
    args_conflicts_with_subcommands = true,
    override_usage = "prun [FLAGS] SCRIPT.rhai [TARGET ...] [FLAGS] [-- SCRIPT-ARGS ...]\n       \
        prun check SCRIPT.rhai [TARGET ...] [SCRIPT-ARGS ...]\n       \
        prun list [POLICY] SCRIPT.rhai [SCRIPT-ARGS ...]\n       \
        prun graph [POLICY] SCRIPT.rhai [TARGET ...] [SCRIPT-ARGS ...]\n       \
        prun history SCRIPT.rhai [--db PATH] [-n N]\n       \
        prun report SCRIPT.rhai [--db PATH] [--run N] [--html PATH]\n       \
        prun log SCRIPT.rhai PROC|--script [-f]\n       \
        prun completions bash|zsh|fish\n       \
        prun man\n       \
        prun definitions DIR"
)]
struct Cli {
    #[command(flatten)]
    flags: RunFlags,
    #[command(subcommand)]
    command: Option<Command>,
    /// The script, then targets (procs or globs to run), then `--` and the script's arguments
    #[arg(value_name = "SCRIPT [TARGET ...]", trailing_var_arg = true, num_args = 0..)]
    rest: Vec<OsString>,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Find a script's mistakes without running anything: syntax, unknown procs, deps,
    /// options and targets, cycles, waves (each with line:column)
    Check {
        /// The script (a Rhai file)
        script: PathBuf,
        /// Targets to check, and the script's own arguments
        #[arg(
            value_name = "TARGET|SCRIPT-ARGS",
            trailing_var_arg = true,
            allow_hyphen_values = true
        )]
        words: Vec<OsString>,
    },
    /// List a script's procs and protos with their help lines and arg choices
    List {
        #[command(flatten)]
        policy: PolicyFlags,
        /// The script (a Rhai file)
        script: PathBuf,
        /// The script's own arguments (see its --help)
        #[arg(
            value_name = "SCRIPT-ARGS",
            trailing_var_arg = true,
            allow_hyphen_values = true
        )]
        words: Vec<OsString>,
    },
    /// Print the dependency graph in DOT (of the targets, or of every proc)
    Graph {
        #[command(flatten)]
        policy: PolicyFlags,
        /// The script (a Rhai file)
        script: PathBuf,
        /// Procs or globs whose graph to show, and the script's own arguments
        #[arg(
            value_name = "TARGET|SCRIPT-ARGS",
            trailing_var_arg = true,
            allow_hyphen_values = true
        )]
        words: Vec<OsString>,
    },
    /// Print the latest log of a proc, or of the script's top level
    #[command(override_usage = "prun log SCRIPT.rhai PROC|--script [-f]")]
    Log {
        /// The script (a Rhai file)
        script: PathBuf,
        /// The proc whose log to print
        #[arg(value_name = "PROC", required_unless_present = "top_level")]
        proc_name: Option<String>,
        /// Print the log of the script's top level (.script.log) instead of a proc's
        #[arg(long = "script", id = "top_level", conflicts_with = "proc_name")]
        top_level: bool,
        /// Go on printing what is appended while the proc's job (with --script, the
        /// run) is running, until it ends
        #[arg(short, long)]
        follow: bool,
    },
    /// Print a shell completion script (bash, zsh or fish)
    Completions {
        /// The shell to complete prun's command line in
        #[arg(value_name = "SHELL")]
        shell: clap_complete::Shell,
    },
    /// Print prun's man page (roff): prun man > prun.1
    Man,
    /// Write Rhai definition files (.d.rhai) of prun's API into DIR, for editors
    Definitions {
        /// The directory to write the files into (made when missing)
        #[arg(value_name = "DIR")]
        dir: PathBuf,
    },
    /// Show the recent runs of a script, from its task DB
    History {
        /// The script (a Rhai file)
        script: PathBuf,
        /// The task DB to read (default: the script's)
        #[arg(long, value_name = "PATH")]
        db: Option<PathBuf>,
        /// How many runs to show (at least 1)
        #[arg(
            short = 'n',
            long,
            value_name = "N",
            default_value_t = 20,
            value_parser = at_least_one,
            allow_negative_numbers = true
        )]
        limit: u32,
    },
    /// Show a recorded run's critical path and its procs slower than usual, or write its
    /// timeline as an HTML page
    Report {
        /// The script (a Rhai file)
        script: PathBuf,
        /// The task DB to read (default: the script's)
        #[arg(long, value_name = "PATH")]
        db: Option<PathBuf>,
        /// The run to show, as `prun history` numbers them (default: the latest)
        #[arg(long, value_name = "N", value_parser = whole_number)]
        run: Option<i64>,
        /// Write a self-contained HTML page (timeline, critical path) to PATH (`-`: stdout)
        #[arg(long, value_name = "PATH")]
        html: Option<PathBuf>,
    },
}

/// The words after the script path. Its `--help` is what `prun SCRIPT --help` prints for a
/// script that declares no options of its own.
#[derive(Parser, Debug, Default)]
#[command(
    name = "prun SCRIPT",
    no_binary_name = true,
    about = "prun's options, which work after the script path too (this script declares no options of its own with args(#{...}))"
)]
struct Tail {
    #[command(flatten)]
    flags: RunFlags,
    /// Procs or globs to run
    targets: Vec<String>,
    /// Arguments for the script
    #[arg(last = true)]
    script_args: Vec<String>,
}

/// What the command line asks for.
#[derive(Debug)]
pub(crate) enum Invocation {
    /// Run a script.
    Run(Box<RunConfig>),
    /// `prun completions SHELL`.
    Completions(clap_complete::Shell),
    /// `prun man`.
    Man,
    /// `prun definitions DIR`.
    Definitions(PathBuf),
    /// `prun log SCRIPT PROC` or `prun log SCRIPT --script`, with `--follow`.
    Log {
        script: PathBuf,
        of: LogOf,
        follow: bool,
    },
    /// `prun history SCRIPT`.
    History {
        script: PathBuf,
        db: Option<PathBuf>,
        limit: usize,
    },
    /// `prun report SCRIPT`.
    Report(crate::picture::ReportRequest),
    /// Help or version was printed, or the command line was wrong: exit with this.
    Exit(Exit),
}

fn fail(e: clap::Error) -> Invocation {
    let code = match e.kind() {
        clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion => Exit::Ok,
        _ => Exit::Usage,
    };
    let _ = with_short_name(e).print();
    Invocation::Exit(code)
}

/// A word of `--allow` or `--deny-env`: not empty. An empty one (a shell variable that
/// was not set, `--deny-env "$VAR"`) hid no variable, silently, and allowed no program
/// with a message naming an empty list (`()`).
fn not_empty(word: &str) -> Result<String, &'static str> {
    if word.is_empty() {
        return Err("must not be empty");
    }
    Ok(word.to_string())
}

/// A count of 1 or more (`-j N`, `-n N`), with a message clap puts after the flag:
/// `invalid value '0' for '-j/--parallel <N>': must be at least 1`. Its flags take
/// negative numbers as values, to refuse `-j -1` so (clap read `-1` as a flag).
fn at_least_one(word: &str) -> Result<u32, &'static str> {
    match word.parse::<u32>() {
        Ok(0) => Err("must be at least 1"),
        Err(_) if word.starts_with('-') && word[1..].bytes().all(|b| b.is_ascii_digit()) => {
            Err("must be at least 1")
        }
        Ok(n) => Ok(n),
        Err(_) if !word.is_empty() && word.bytes().all(|b| b.is_ascii_digit()) => {
            Err("must be at most 4294967295")
        }
        Err(_) => Err("not a whole number"),
    }
}

/// A whole number (`--run N`), with a message in the words of [`at_least_one`]'s.
fn whole_number(word: &str) -> Result<i64, &'static str> {
    use std::num::IntErrorKind;
    word.parse()
        .map_err(|e: std::num::ParseIntError| match e.kind() {
            IntErrorKind::PosOverflow => "must be at most 9223372036854775807",
            IntErrorKind::NegOverflow => "must be at least -9223372036854775808",
            _ => "not a whole number",
        })
}

/// `e` naming a flag that has a short form by both (`'-n/--limit <N>'`): clap names it
/// by its long form only, which is not what a user who typed `-n 0` sees on the line.
/// The flag given before, when it is the same one (`-j 2 -j 3`), is renamed alike: clap
/// says so as `cannot be used multiple times`, and `cannot be used with '--parallel <N>'`
/// when the two names differ.
fn with_short_name(mut e: clap::Error) -> clap::Error {
    use clap::error::{ContextKind, ContextValue};
    let Some(ContextValue::String(named)) = e.get(ContextKind::InvalidArg) else {
        return e;
    };
    let (cli, tail) = (Cli::command(), Tail::command());
    let commands = [&cli, &tail].into_iter().chain(cli.get_subcommands());
    let long = named.split(' ').next().and_then(|w| w.strip_prefix("--"));
    let short = commands
        .flat_map(|c| c.get_arguments())
        .find(|a| long.is_some() && a.get_long() == long)
        .and_then(|a| a.get_short());
    if let Some(c) = short {
        let both = format!("-{c}/{named}");
        if let Some(ContextValue::String(prior)) = e.get(ContextKind::PriorArg)
            && prior == named
        {
            e.insert(ContextKind::PriorArg, ContextValue::String(both.clone()));
        }
        e.insert(ContextKind::InvalidArg, ContextValue::String(both));
    }
    e
}

/// `e` with a first tip for a flag of make, just, task or GNU parallel that prun spells
/// another way (`--list`: `prun list SCRIPT`; `-n`: `--dry-run`), when `e` refuses it.
fn with_tool_tip(mut e: clap::Error, script: Option<&std::path::Path>) -> clap::Error {
    use clap::error::{ContextKind, ContextValue};
    let Some(ContextValue::String(word)) = e.get(ContextKind::InvalidArg) else {
        return e;
    };
    if e.kind() != clap::error::ErrorKind::UnknownArgument {
        return e;
    }
    let script = script.map_or_else(|| "SCRIPT".into(), crate::shown::path);
    let Some(tip) = tool_tip(word, &script) else {
        return e;
    };
    let mut tips = vec![tip.into()];
    if let Some(ContextValue::StyledStrs(old)) = e.get(ContextKind::Suggested) {
        tips.extend(old.iter().cloned());
    }
    e.insert(ContextKind::Suggested, ContextValue::StyledStrs(tips));
    e
}

/// The tip for `word`, a flag of make, just, task or GNU parallel, naming what does the
/// same in prun; `None` for any other word.
fn tool_tip(word: &str, script: &str) -> Option<String> {
    Some(match word {
        "--list" | "-l" => format!("to list the script's procs and protos: prun list {script}"),
        "-n" | "--just-print" | "--dry" => {
            "to print what would run, in order, and run nothing: --dry-run".into()
        }
        "-k" | "--keep-going" => {
            "prun keeps going after a failure by default (--fail-fast stops at the first)".into()
        }
        "--jobs" => "at most N procs at once: -j N (--parallel N)".into(),
        "-B" | "--always-make" | "--force" => {
            "to run every scheduled proc, ignoring the cache: --full".into()
        }
        "--tag" | "--line-buffer" => {
            "every line of a proc's output as it comes, prefixed with its name: --output stream"
                .into()
        }
        "-O" | "--output-sync" | "--group" => {
            "each proc's output at once when it ends: --output grouped".into()
        }
        "-s" | "--silent" => "nothing when everything succeeds: -q (--quiet)".into(),
        _ => return None,
    })
}

/// The first word of `args` (after prun's own name) that is not UTF-8, said as an error
/// that names it: clap's names no word.
fn not_utf8(args: &[OsString]) -> Option<String> {
    use std::os::unix::ffi::OsStrExt;
    args.iter().enumerate().skip(1).find_map(|(i, word)| {
        let bytes = word.as_bytes();
        let at = std::str::from_utf8(bytes).err()?.valid_up_to();
        Some(format!(
            "word {i} of the command line, \"{}\", is not UTF-8 (byte {} is {:#04x}): a proc's \
             name, a pattern or an option's value is text",
            crate::shown::bytes(bytes),
            at + 1,
            bytes[at]
        ))
    })
}

/// Parses prun's command line.
pub(crate) fn parse(args: impl IntoIterator<Item = OsString>) -> Invocation {
    let args: Vec<OsString> = args.into_iter().collect();
    let cli = match Cli::try_parse_from(&args) {
        Ok(c) => c,
        Err(e) if e.kind() == clap::error::ErrorKind::InvalidUtf8 => {
            let Some(word) = not_utf8(&args) else {
                return fail(e);
            };
            errln!("prun: {word}");
            return Invocation::Exit(Exit::Usage);
        }
        Err(e) => {
            let script = args.iter().skip(1).find(|w| {
                std::path::Path::new(w)
                    .extension()
                    .is_some_and(|x| x == "rhai")
            });
            return fail(with_tool_tip(e, script.map(std::path::Path::new)));
        }
    };
    match cli.command {
        Some(Command::Check { script, words }) => {
            let words = with_separator(&args, words);
            return inspect(script, words, Inspect::Check, PolicyFlags::default());
        }
        Some(Command::Completions { shell }) => return Invocation::Completions(shell),
        Some(Command::Man) => return Invocation::Man,
        Some(Command::Definitions { dir }) => return Invocation::Definitions(dir),
        Some(Command::History { script, db, limit }) => {
            let limit = limit as usize;
            return Invocation::History { script, db, limit };
        }
        Some(Command::Report {
            script,
            db,
            run,
            html,
        }) => {
            let req = crate::picture::ReportRequest {
                script,
                db,
                run,
                html,
            };
            return Invocation::Report(req);
        }
        Some(Command::Log {
            script,
            proc_name,
            top_level: _,
            follow,
        }) => {
            let of = proc_name.map_or(LogOf::TopLevel, LogOf::Proc);
            return Invocation::Log { script, of, follow };
        }
        Some(Command::List {
            policy,
            script,
            words,
        }) => return inspect(script, with_separator(&args, words), Inspect::List, policy),
        Some(Command::Graph {
            policy,
            script,
            words,
        }) => return inspect(script, with_separator(&args, words), Inspect::Graph, policy),
        None => {}
    }
    let head: Vec<OsString> = args
        .get(1..args.len().saturating_sub(cli.rest.len()))
        .unwrap_or_default()
        .to_vec();
    let raw_tail: Vec<String> = cli
        .rest
        .iter()
        .skip(1)
        .map(|w| w.to_string_lossy().into_owned())
        .collect();
    let tail_bytes: Vec<OsString> = cli.rest.iter().skip(1).cloned().collect();
    if let Some(code) = cli
        .rest
        .first()
        .and_then(|word| other_tools_word(word, cli.rest.get(1)))
    {
        return Invocation::Exit(code);
    }
    if let Some(code) = cli.rest.first().and_then(late_subcommand) {
        return Invocation::Exit(code);
    }
    let empty = cli.rest.first().is_some_and(|s| s.is_empty());
    let mut rest = cli.rest.into_iter();
    // An empty path (`prun "$SCRIPT"` with SCRIPT unset) is no script either: "failed to
    // read  (in /srv)" named nothing.
    let Some(script) = rest.next().filter(|s| !s.is_empty()) else {
        let empty = if empty {
            " (the script's path is empty)"
        } else {
            ""
        };
        errln!(
            "prun: no script given{empty}{}\n\nUsage: prun [FLAGS] SCRIPT.rhai [TARGET ...] [-- SCRIPT-ARGS ...]\n\nFor more information, try '--help'.",
            scripts_here()
        );
        return Invocation::Exit(Exit::Usage);
    };
    if let Some(code) = mistyped_subcommand(&script) {
        return Invocation::Exit(code);
    }
    // Words prun does not know may be the script's own options: decided once the
    // script's declaration is read (run::with_declared_options). Any other usage error
    // goes on to the run too, which reports it (in the `--json` report as well); help
    // and version are printed here.
    let mut tail_help = false;
    let (tail, tail_error) = match parse_tail(rest, &script) {
        Ok(t) => (t, None),
        Err(e)
            if declares_options(std::path::Path::new(&script))
                || unreadable_help(&e, std::path::Path::new(&script))
                || !matches!(
                    e.kind(),
                    clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion
                ) =>
        {
            tail_help = e.kind() == clap::error::ErrorKind::DisplayHelp;
            let e = with_tool_tip(e, Some(std::path::Path::new(&script)));
            (
                Tail::default(),
                Some(with_short_name(e).render().to_string()),
            )
        }
        Err(e) => return fail(e),
    };
    let flags = cli.flags.merge(tail.flags);
    Invocation::Run(Box::new(RunConfig {
        script: PathBuf::from(script),
        targets: tail.targets,
        script_args: tail.script_args,
        parallel: flags.parallel.map(|n| n as usize),
        fail_fast: flags.fail_fast,
        verbose: flags.verbose,
        quiet: flags.quiet,
        db: flags.db,
        no_db: flags.no_db,
        full: flags.full,
        full_log_on_failure: flags.full_log_on_failure,
        json: flags.json,
        dry_run: flags.dry_run,
        watch: flags.watch,
        inspect: None,
        head,
        tail: raw_tail,
        tail_bytes,
        tail_error,
        tail_help,
        script_values: None,
        script_words: None,
        allow: flags.allow,
        no_shell: flags.no_shell,
        deny_env: flags.deny_env,
        lock: flags.lock.map(|l| l == "wait"),
        output: flags
            .output
            .as_deref()
            .and_then(crate::graph::OutputMode::parse),
        live: match (flags.live, flags.no_live) {
            (true, _) => Some(true),
            (_, true) => Some(false),
            _ => None,
        },
    }))
}

/// The words after the script path as prun's flags, targets and script arguments; the
/// `--help` of a script that declares no options of its own ends by pointing to `prun
/// list`, where its targets are.
fn parse_tail(
    words: impl Iterator<Item = OsString>,
    script: &OsString,
) -> Result<Tail, clap::Error> {
    use clap::FromArgMatches;
    let listing = format!(
        "The script's procs and protos: prun list {}",
        crate::shown::path(std::path::Path::new(script))
    );
    let mut matches = Tail::command()
        .after_help(listing)
        .try_get_matches_from(words)?;
    Tail::from_arg_matches_mut(&mut matches)
}

/// `--json PATH` (or `--json=PATH`) among prun's words, when they were not parsed (a
/// usage error among them): the report of that error still goes where it was asked, to
/// the path as given, bytes and all.
pub(crate) fn json_in(head: &[OsString], tail: &[OsString]) -> Option<PathBuf> {
    use std::os::unix::ffi::OsStrExt;
    let words: Vec<&[u8]> = head
        .iter()
        .chain(tail)
        .map(|w| w.as_bytes())
        .take_while(|w| *w != b"--")
        .collect();
    let path = |p: &[u8]| PathBuf::from(std::ffi::OsStr::from_bytes(p));
    let mut found = None;
    for (i, w) in words.iter().enumerate() {
        if let Some(p) = w.strip_prefix(b"--json=") {
            found = Some(path(p));
        } else if *w == b"--json"
            && let Some(p) = words.get(i + 1)
        {
            found = Some(path(p));
        }
    }
    found
}

/// Writes the completion script of `shell` for prun's command line.
pub(crate) fn completions(shell: clap_complete::Shell, out: &mut dyn std::io::Write) {
    use clap_complete::Shell;
    if !matches!(shell, Shell::Fish | Shell::Bash | Shell::Zsh) {
        clap_complete::generate(shell, &mut Cli::command(), "prun", out);
        return;
    }
    let mut text = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "prun", &mut text);
    let text = String::from_utf8_lossy(&text);
    let cmd = Cli::command();
    let subcommands: Vec<String> = cmd
        .get_subcommands()
        .map(|c| c.get_name().to_string())
        .chain(["help".to_string()])
        .collect();
    let fixed = match shell {
        Shell::Fish => docgen::fish_script_path(&text, &subcommands),
        Shell::Zsh => docgen::zsh_script_path(&text),
        _ => docgen::bash_script_path(&text, &subcommands, &valued_flags(&cmd)),
    };
    let _ = out.write_all(fixed.as_bytes());
}

/// The flags of prun and its subcommands that take their value as the next word
/// (`-j`, `--parallel`, `--output`...): that word is no script path.
fn valued_flags(cmd: &clap::Command) -> Vec<String> {
    let mut flags: Vec<String> = std::iter::once(cmd)
        .chain(cmd.get_subcommands())
        .flat_map(|c| c.get_arguments())
        .filter(|a| {
            !a.is_positional() && a.get_action().takes_values() && !a.is_require_equals_set()
        })
        .flat_map(|a| {
            let short = a.get_short().map(|c| format!("-{c}"));
            let long = a.get_long().map(|l| format!("--{l}"));
            short.into_iter().chain(long)
        })
        .collect();
    flags.sort();
    flags.dedup();
    flags
}

/// Writes prun's man page (roff), made from the same definition as `--help`.
pub(crate) fn man(out: &mut dyn std::io::Write) -> std::io::Result<()> {
    let cmd = Cli::command();
    let man = clap_mangen::Man::new(cmd.clone());
    man.render_title(out)?;
    man.render_name_section(out)?;
    man.render_synopsis_section(out)?;
    man.render_description_section(out)?;
    man.render_options_section(out)?;
    out.write_all(docgen::man_commands(&cmd).as_bytes())?;
    out.write_all(docgen::MAN_EXIT_STATUS.as_bytes())?;
    man.render_version_section(out)
}

/// ` (scripts here: a.rhai, b.rhai)`: the scripts of the working directory, sorted (at
/// most 5, then `...`), for `prun` typed alone as `just` or `make` is; or nothing.
fn scripts_here() -> String {
    const SHOWN: usize = 5;
    let Ok(entries) = std::fs::read_dir(".") else {
        return String::new();
    };
    let mut names: Vec<String> = entries
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.ends_with(".rhai") && !n.starts_with('.'))
        .collect();
    if names.is_empty() {
        return String::new();
    }
    names.sort();
    let more = if names.len() > SHOWN { ", ..." } else { "" };
    names.truncate(SHOWN);
    // A name another user chose (in `/tmp`) may hold an escape sequence.
    let names: Vec<_> = names.iter().map(|n| crate::shown::visible(n)).collect();
    format!(" (scripts here: {}{more})", names.join(", "))
}

/// A first word that is no file and is near a subcommand's name (`prun chek s.rhai`) is
/// a mistyped subcommand: a usage error that names the subcommand meant.
fn mistyped_subcommand(word: &OsString) -> Option<Exit> {
    let path = std::path::Path::new(word);
    if path.exists() || path.extension().is_some() {
        return None;
    }
    let word = crate::shown::path(path);
    let cmd = Cli::command();
    let hint = crate::suggest::hint(&word, cmd.get_subcommands().map(|c| c.get_name()), "`");
    if hint.is_empty() {
        return None;
    }
    errln!(
        "prun: `{word}` is neither a script nor a subcommand{hint}\n\nFor more information, try '--help'."
    );
    Some(Exit::Usage)
}

/// `--help` after the path of a script that cannot be read: the run reports why, since
/// prun cannot tell which options the script declares.
fn unreadable_help(e: &clap::Error, script: &std::path::Path) -> bool {
    e.kind() == clap::error::ErrorKind::DisplayHelp && crate::script::read_script(script).is_err()
}

/// A first word that is no file, as other tools spell what prun does another way: `run`
/// (or `exec`) before a script's path (`task run`, `npm run`, `cargo run`), `version`. A
/// usage error that says how prun spells it.
fn other_tools_word(word: &OsString, next: Option<&OsString>) -> Option<Exit> {
    if std::path::Path::new(word).exists() {
        return None;
    }
    let word = word.to_str()?;
    let how = match (word, next) {
        ("run" | "exec", Some(script)) if std::path::Path::new(script).is_file() => format!(
            "a script runs as `prun {}` (no `{word}` before it)",
            crate::shown::path(std::path::Path::new(script))
        ),
        ("version", _) => "prun's version: prun --version".to_string(),
        _ => return None,
    };
    errln!(
        "prun: `{word}` is neither a script nor a subcommand: {how}\n\nFor more information, try '--help'."
    );
    Some(Exit::Usage)
}

/// A subcommand's name after prun's flags (`prun -v check s.rhai`), where it is read as
/// a script's path, and no such file exists: "failed to read check" named no mistake. A
/// usage error that says a subcommand comes first.
fn late_subcommand(word: &OsString) -> Option<Exit> {
    if std::path::Path::new(word).exists() {
        return None;
    }
    let word = word.to_str()?;
    Cli::command().find_subcommand(word)?;
    errln!(
        "prun: `{word}` after prun's flags is read as a script's path, and there is no such file: a subcommand comes first, before any flag (prun {word} ...)\n\nFor more information, try '--help'."
    );
    Some(Exit::Usage)
}

/// A cheap look at the script's text: does it call `args(...)`?
fn declares_options(script: &std::path::Path) -> bool {
    crate::script::read_script(script).is_ok_and(|s| s.contains("args("))
}

/// `prun list` / `prun graph`: a silent dry run of the script. The words after the script
/// are read with its `args(#{...})` declaration (see `run::with_declared_options`):
/// the script's options go to it, the rest are targets (`graph`) or an error (`list`).
/// The words after the script's path of `check`, `list` or `graph`, with the `--` that
/// clap drops when it comes right after the path (it ends the subcommand's own options
/// there): the words after it are the script's `args()`, as in a run, not targets.
/// The words are the end of the command line, so the word before them is the path or
/// that `--`.
fn with_separator(args: &[OsString], mut words: Vec<OsString>) -> Vec<OsString> {
    let before = args.len().checked_sub(words.len() + 1);
    if before.is_some_and(|i| args[i] == "--") {
        words.insert(0, "--".into());
    }
    words
}

fn inspect(
    script: PathBuf,
    words: Vec<OsString>,
    what: Inspect,
    policy: PolicyFlags,
) -> Invocation {
    Invocation::Run(Box::new(RunConfig {
        script,
        tail: words
            .iter()
            .map(|w| w.to_string_lossy().into_owned())
            .collect(),
        tail_bytes: words,
        no_db: true,
        inspect: Some(what),
        allow: policy.allow,
        no_shell: policy.no_shell,
        deny_env: policy.deny_env,
        ..RunConfig::default()
    }))
}

/// The policy of `prun list` and `prun graph`, which run the script's top level (and so
/// its commands there): the flags of a run's policy, before the script path.
#[derive(Args, Debug, Clone, Default)]
struct PolicyFlags {
    /// Only let the script run PROGRAM (a name found on PATH, or a path; globs allowed); repeatable
    #[arg(long = "allow", value_name = "PROGRAM", value_parser = not_empty)]
    allow: Vec<String>,
    /// Refuse shell strings (`shell`, `shell:` bodies, string stages of `pipe`)
    #[arg(long)]
    no_shell: bool,
    /// Hide the environment variable NAME from the script and its commands; repeatable
    #[arg(long = "deny-env", value_name = "NAME", value_parser = not_empty)]
    deny_env: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run_cfg(words: &[&str]) -> RunConfig {
        match parse(words.iter().map(OsString::from)) {
            Invocation::Run(c) => *c,
            other => panic!("not a run: {other:?}"),
        }
    }

    #[test]
    fn flags_after_script_targets_and_script_args() {
        let c = run_cfg(&[
            "prun",
            "s.rhai",
            "build::*",
            "-j",
            "4",
            "--fail-fast",
            "--",
            "-x",
            "y",
        ]);
        assert_eq!(c.script, PathBuf::from("s.rhai"));
        assert_eq!(c.targets, vec!["build::*"]);
        assert_eq!(c.parallel, Some(4));
        assert!(c.fail_fast);
        assert_eq!(c.script_args, vec!["-x", "y"]);
    }

    #[test]
    fn flags_before_script() {
        let c = run_cfg(&["prun", "-j2", "-v", "s.rhai", "a", "-q", "b"]);
        assert_eq!(c.parallel, Some(2));
        assert!(c.verbose && c.quiet);
        assert_eq!(c.targets, vec!["a", "b"]);
    }

    #[test]
    fn bad_flag_is_usage_error() {
        // After the script path: reported by the run (which writes `--json`'s report).
        let c = run_cfg(&["prun", "s.rhai", "--bogus", "--json", "r.json"]);
        assert!(c.tail_error.is_some_and(|e| e.contains("--bogus")));
        assert_eq!(
            json_in(&c.head, &c.tail_bytes),
            Some(PathBuf::from("r.json"))
        );
        assert!(matches!(
            parse(["prun", "-j", "0", "s.rhai"].map(OsString::from)),
            Invocation::Exit(Exit::Usage)
        ));
    }

    #[test]
    fn check_subcommand() {
        let c = run_cfg(&["prun", "check", "s.rhai", "build", "--", "-x"]);
        assert_eq!(c.inspect, Some(Inspect::Check));
        assert_eq!(c.tail, vec!["build", "--", "-x"]);
    }

    #[test]
    fn a_double_dash_right_after_the_script_of_list_graph_or_check_is_kept() {
        for sub in ["check", "list", "graph"] {
            let c = run_cfg(&["prun", sub, "s.rhai", "--", "x", "--", "y"]);
            assert_eq!(c.tail, vec!["--", "x", "--", "y"], "{sub}");
            let c = run_cfg(&["prun", sub, "s.rhai", "a", "--", "x"]);
            assert_eq!(c.tail, vec!["a", "--", "x"], "{sub}");
            let c = run_cfg(&["prun", sub, "s.rhai"]);
            assert!(c.tail.is_empty(), "{sub}");
        }
    }

    #[test]
    fn report_subcommand() {
        let words = ["prun", "report", "s.rhai", "--run", "3", "--html", "r.html"];
        let Invocation::Report(req) = parse(words.map(OsString::from)) else {
            panic!("not a report");
        };
        assert_eq!(req.script, PathBuf::from("s.rhai"));
        assert_eq!((req.run, req.db), (Some(3), None));
        assert_eq!(req.html, Some(PathBuf::from("r.html")));
    }
}

//! One run of a script: compile, run the top level, run the targets, wait, report, and
//! choose the exit status.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::cli::{Inspect, RunConfig};
use crate::error::{Error, Exit};
use crate::exec::{AbortReason, Cache, CacheOpener, Core, CoreOptions, Scheduler, State};
use crate::script::{DbSettings, Host, HostOptions};
use crate::store::Store;
use crate::ui::{LiveReporter, PlainReporter, Reporter, Silent, Summary};

/// Time given to a terminated process group between SIGTERM and SIGKILL.
const KILL_GRACE: Duration = Duration::from_secs(5);

/// Compiles a script and reports syntax errors (`prun check`).
pub fn check(script: &std::path::Path) -> Result<Exit, Error> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(Error::Runtime)?;
    let core = Core::new(CoreOptions {
        parallel: 1,
        allow_missing_deps: true,
        fail_fast: false,
    });
    let reporter: Arc<dyn Reporter> = Arc::new(PlainReporter::default());
    let sched = Scheduler::new(
        core,
        rt.handle().clone(),
        reporter,
        std::env::temp_dir(),
        KILL_GRACE,
    );
    let host = Host::new(sched.clone(), &HostOptions::default());
    let compiled = host.compile_file(script);
    sched.shutdown();
    compiled.map_err(Error::Check)?;
    outln!("{}: ok", script.display());
    Ok(Exit::Ok)
}

/// `prun log SCRIPT PROC`: prints the latest log of a proc.
pub fn log(script: &std::path::Path, proc_name: &str) -> Result<Exit, Error> {
    let root = crate::paths::private_state_dir(script)?.join("logs");
    let Some(path) = crate::exec::log::latest(&root, proc_name) else {
        let proc_name = proc_name.to_string();
        return Err(Error::NoLog { proc_name, root });
    };
    let text = std::fs::read_to_string(&path).map_err(|source| Error::ReadLog {
        path: path.clone(),
        source,
    })?;
    outln!("# {}", path.display());
    outln!("{}", text.trim_end());
    Ok(Exit::Ok)
}

/// The live display is on when stdout is a terminal that can show it (not `TERM=dumb`),
/// unless `--no-live`; `--live` forces it on. Never with `--json -`: stdout holds the
/// report.
fn wants_live(cfg: &RunConfig) -> bool {
    use std::io::IsTerminal;
    match cfg.live {
        Some(on) => on && !crate::report::stdout_taken(),
        None => {
            !crate::report::stdout_taken()
                && std::io::stdout().is_terminal()
                && std::env::var("TERM").map_or(true, |t| t != "dumb")
                && !cfg.quiet
        }
    }
}

/// `--lock`: an exclusive `flock` on `<state>/run.lock`, held until prun exits. The
/// kernel releases it when its holder dies, so a lock left by a crashed run never blocks.
/// The file is opened without following links and must be the user's (see
/// [`crate::paths::open_private_file`]).
fn take_lock(
    script: &std::path::Path,
    dir: &std::path::Path,
    wait: bool,
) -> Result<std::fs::File, Error> {
    use std::io::{Seek, Write};
    let path = dir.join("run.lock");
    let mut file = crate::paths::open_private_file(&path).map_err(|source| Error::LockOpen {
        path: path.clone(),
        source,
    })?;
    let holder = || {
        std::fs::read_to_string(&path)
            .unwrap_or_default()
            .trim()
            .to_string()
    };
    let take_failed = |source| Error::LockTake {
        path: path.clone(),
        source,
    };
    match file.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) if wait => {
            errln!(
                "prun: waiting for another run of {} to finish ({})",
                script.display(),
                holder()
            );
            file.lock().map_err(take_failed)?;
        }
        Err(std::fs::TryLockError::WouldBlock) => {
            return Err(Error::Locked {
                script: script.to_path_buf(),
                path: path.clone(),
                holder: holder(),
            });
        }
        Err(std::fs::TryLockError::Error(e)) => return Err(take_failed(e)),
    }
    let _ = file.set_len(0);
    let _ = file.rewind();
    let _ = write!(file, "pid {}", std::process::id());
    Ok(file)
}

/// Ends what a crashed earlier run of the script left running (see [`crate::exec::crashed`]),
/// then starts this run's journal of process groups. A journal that cannot be made only
/// costs that protection: the run goes on with a warning.
/// `state_dir` is the script's private state directory: the journals there name process
/// groups that the next run kills, so nobody else may write them.
fn end_orphans_and_journal(state_dir: &std::path::Path) -> Option<crate::exec::crashed::Journal> {
    let dir = state_dir.join("groups");
    if let Err(e) = crate::paths::private_dir(&dir) {
        errln!("prun: warning: {e} (a crash of prun would leave its jobs running)");
        return None;
    }
    for warning in crate::exec::crashed::end_orphans(&dir, KILL_GRACE) {
        errln!("prun: warning: {warning}");
    }
    match crate::exec::crashed::Journal::start(&dir) {
        Ok(j) => Some(j),
        Err(e) => {
            errln!(
                "prun: warning: cannot record this run's process groups in {}: {e} (a crash of prun would leave its jobs running)",
                dir.display()
            );
            None
        }
    }
}

/// Reads the command line again with the script's `args(#{...})` declaration: the
/// script's options go to it, the rest is prun's (flags and targets). `--help` after the
/// script path prints the script's own usage.
fn with_declared_options(cfg: RunConfig) -> Result<Option<RunConfig>, Error> {
    if cfg.script_values.is_some() {
        return Ok(Some(cfg));
    }
    if let Some(what) = cfg.inspect {
        return inspect_options(cfg, what);
    }
    let script = cfg.script.display().to_string();
    let decl = match crate::script::declaration(&cfg.script) {
        None => {
            if let Some(e) = &cfg.tail_error {
                return Err(Error::Usage(e.trim_end().to_string()));
            }
            return Ok(Some(cfg));
        }
        Some(Err(source)) => return Err(Error::Declaration { script, source }),
        Some(Ok(d)) => d,
    };
    let split = decl
        .split(&cfg.tail)
        .map_err(|msg| script_usage(&script, msg))?;
    if split.help {
        outln!("{}", decl.usage(&script));
        return Ok(None);
    }
    crate::redact::add_secrets(&split.secrets);
    let mut argv: Vec<std::ffi::OsString> = vec!["prun".into()];
    argv.extend(cfg.head.iter().cloned());
    argv.push(cfg.script.clone().into_os_string());
    argv.extend(split.rest.iter().map(Into::into));
    match crate::cli::parse(argv) {
        crate::cli::Invocation::Run(mut c) => {
            // What is left must be prun's: an unknown option is a usage error now.
            if let Some(e) = c.tail_error.take() {
                return Err(Error::Usage(format!(
                    "{}\n(the script's own options: prun {script} --help)",
                    e.trim_end()
                )));
            }
            c.script_values = Some(split.values);
            Ok(Some(c))
        }
        crate::cli::Invocation::Exit(Exit::Ok) => Ok(None),
        crate::cli::Invocation::Exit(exit) => Err(Error::Printed(exit)),
        _ => Err(Error::Printed(Exit::Usage)),
    }
}

/// A script's own command line was wrong: the message points to its `--help`.
fn script_usage(script: &str, msg: impl std::fmt::Display) -> Error {
    Error::Usage(format!(
        "prun: {script}: {msg}\nFor the script's options, try 'prun {script} --help'."
    ))
}

/// `prun list|graph SCRIPT WORDS...`: the words are read with the script's declaration as
/// a run reads them, except that a required option may be left out (it reads as `()`):
/// listing a script must not need its secrets. Words that are not the script's are
/// targets for `graph`, and an error for `list`.
fn inspect_options(mut cfg: RunConfig, what: Inspect) -> Result<Option<RunConfig>, Error> {
    let script = cfg.script.display().to_string();
    let words = std::mem::take(&mut cfg.tail);
    let rest = match crate::script::declaration(&cfg.script) {
        None => {
            let mut words = words.into_iter();
            let rest: Vec<String> = words.by_ref().take_while(|w| w != "--").collect();
            cfg.script_args = words.collect();
            rest
        }
        Some(Err(source)) => return Err(Error::Declaration { script, source }),
        Some(Ok(decl)) => {
            let split = decl
                .split_lenient(&words)
                .map_err(|msg| script_usage(&script, msg))?;
            if split.help {
                outln!("{}", decl.usage(&script));
                return Ok(None);
            }
            crate::redact::add_secrets(&split.secrets);
            cfg.script_values = Some(split.values);
            split.rest
        }
    };
    match what {
        Inspect::Graph => cfg.targets = rest,
        Inspect::List if rest.is_empty() => {}
        Inspect::List => {
            return Err(Error::Usage(format!(
                "prun: list {script}: unexpected argument \"{}\" (prun list takes the script's own arguments only: prun {script} --help)",
                rest[0]
            )));
        }
    }
    Ok(Some(cfg))
}

/// The task DB a run uses: `--db`, else the script's own.
fn db_path(cfg: &RunConfig, state_dir: &std::path::Path) -> PathBuf {
    cfg.db.clone().unwrap_or_else(|| state_dir.join("tasks.db"))
}

/// `prun history SCRIPT`: the recent runs recorded in the script's task DB.
pub fn history(script: &std::path::Path, db: Option<PathBuf>, limit: usize) -> Result<Exit, Error> {
    let path = match db {
        Some(path) => path,
        None => crate::paths::private_state_dir(script)?.join("tasks.db"),
    };
    if !path.exists() {
        let script = script.to_path_buf();
        return Err(Error::NoDb { path, script });
    }
    let store = Store::open(&path, Arc::new(|m: &str| errln!("prun: warning: {m}")))?;
    let runs = store.history(limit)?;
    if runs.is_empty() {
        outln!("no runs recorded in {}", path.display());
        return Ok(Exit::Ok);
    }
    outln!(
        "{:>6}  {:<24}  {:>9}  {:<12}  procs",
        "run",
        "started",
        "duration",
        "outcome"
    );
    for r in &runs {
        let dur = r.duration.map_or("-".to_string(), |d| format!("{d:.2}s"));
        let counts = r
            .counts
            .as_deref()
            .map(crate::ui::counts_text)
            .unwrap_or_default();
        outln!(
            "{:>6}  {:<24}  {:>9}  {:<12}  {}",
            r.id,
            r.started,
            dur,
            r.outcome.as_deref().unwrap_or("unfinished"),
            counts
        );
    }
    let latest = &runs[0];
    if let Ok(procs) = store.run_procs(latest.id)
        && !procs.is_empty()
    {
        outln!(
            "\nprocs of run {} (that ran; up-to-date procs are counted above):",
            latest.id
        );
        for p in procs {
            let dur = p.duration.map_or(String::new(), |d| format!(" ({d:.2}s)"));
            let err = p
                .error
                .map(|e| format!(": {}", e.lines().next().unwrap_or("")))
                .unwrap_or_default();
            outln!("  {:<10} {}{dur}{err}", p.state, p.name);
        }
    }
    Ok(Exit::Ok)
}

/// Runs a script to completion and returns the exit status. What goes wrong during the
/// run is reported as it happens; an [`Error`] is what stopped prun before it. With
/// `--json PATH`, every attempted run writes a report, one stopped by an error too (a
/// usage error, a script that does not compile, the lock held): a report left by an
/// earlier run never passes for this one's.
pub fn run(cfg: RunConfig) -> Result<Exit, Error> {
    let start = std::time::SystemTime::now();
    let json = cfg
        .json
        .clone()
        .or_else(|| crate::cli::json_in(&cfg.head, &cfg.tail));
    if json.as_deref().is_some_and(crate::report::is_stdout) {
        crate::report::to_stdout();
    }
    let (script, args) = (cfg.script.clone(), cfg.script_args.clone());
    let result = attempt(cfg, start);
    if let (Err(e), Some(path)) = (&result, &json)
        && crate::report::check_destination(path).is_ok()
        && let Some((outcome, text)) = e.report()
    {
        let info = crate::report::RunInfo {
            script: &script,
            args: &args,
            start,
            end: std::time::SystemTime::now(),
            outcome,
            error: Some(&text),
        };
        if let Err(w) = crate::report::write(path, &info, &[]) {
            errln!(
                "prun: warning: failed to write the JSON report {}: {w}",
                path.display()
            );
        }
    }
    result
}

/// [`run`] without the report of a run an error stopped.
fn attempt(cfg: RunConfig, run_started: std::time::SystemTime) -> Result<Exit, Error> {
    let Some(cfg) = with_declared_options(cfg)? else {
        return Ok(Exit::Ok);
    };
    if let Some(path) = &cfg.json {
        crate::report::check_destination(path)?;
    }
    let state_dir = if cfg.inspect.is_some() {
        crate::paths::script_state_dir(&cfg.script)
    } else {
        crate::paths::private_state_dir(&cfg.script)?
    };
    // Taken before the signal handlers exist: Ctrl-C while waiting for it just ends prun.
    let _lock = match cfg.lock {
        Some(wait) => Some(take_lock(&cfg.script, &state_dir, wait)?),
        None => None,
    };
    let _journal = if cfg.dry_run || cfg.inspect.is_some() {
        None
    } else {
        end_orphans_and_journal(&state_dir)
    };
    crate::exec::unix::raise_fd_limit();
    // The top level of the script runs on this thread: deep nesting there must fail
    // cleanly too.
    if let Some(size) = crate::exec::unix::main_stack_size() {
        crate::exec::guard_stack(size);
    }
    crate::exec::install_panic_hook();
    let started = Instant::now();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(Error::Runtime)?;
    let parallel = cfg.parallel.unwrap_or_else(|| {
        std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
    });
    let core = Core::new(CoreOptions {
        parallel,
        allow_missing_deps: true,
        fail_fast: cfg.fail_fast,
    });
    let mut live = None;
    let reporter: Arc<dyn Reporter> = if cfg.inspect.is_some() {
        Arc::new(Silent)
    } else if wants_live(&cfg) {
        let color = std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
        let l = Arc::new(LiveReporter::new(
            color,
            cfg.verbose,
            cfg.full_log_on_failure,
        ));
        live = Some(l.clone());
        l
    } else {
        Arc::new(PlainReporter {
            verbose: cfg.verbose,
            quiet: cfg.quiet,
            full_log: cfg.full_log_on_failure.into(),
        })
    };
    let log_root = state_dir.join("logs");
    let sched = Scheduler::new(
        core,
        rt.handle().clone(),
        reporter.clone(),
        log_root,
        KILL_GRACE,
    );
    if cfg.dry_run || cfg.inspect.is_some() {
        sched.run_dry();
    }
    watch_signals(&rt, &sched);
    if let Some(l) = &live {
        let weak = Arc::downgrade(&sched);
        l.set_estimator(Box::new(move |name| {
            let s = weak.upgrade()?;
            // Cloned out first: the query reads the DB, never under the core's lock.
            let store = s.lock().cache()?.store().clone();
            store.expected_duration(name).ok().flatten()
        }));
        let weak = Arc::downgrade(&sched);
        l.set_queue_reader(Box::new(move || Some(weak.upgrade()?.lock().queue_view())));
    }
    let db = DbSettings {
        fixed: cfg.db.is_some() || cfg.no_db,
        script: cfg.script.display().to_string(),
        args: std::env::args().skip(1).collect(),
        full: cfg.full,
    };
    // A dry run reads an existing DB (to tell what is up to date) and writes nothing.
    let db_exists = db_path(&cfg, &state_dir).exists();
    let use_db = !cfg.no_db && cfg.inspect.is_none() && (db_exists || !cfg.dry_run);
    if use_db {
        let path = db_path(&cfg, &state_dir);
        let read_only = cfg.dry_run;
        let r = reporter.clone();
        let warn: Arc<dyn Fn(&str) + Send + Sync> = Arc::new(move |m: &str| r.warning(m));
        let (script, args, full) = (db.script.clone(), db.args.clone(), cfg.full);
        let run_start = std::time::SystemTime::now();
        // An existing DB is opened on another thread while the script compiles and
        // starts; a new one only when a proc needs it (so that `set_options(#{ task_db })`
        // can still choose another place without leaving a stray file behind).
        let open = move || {
            Cache::open(&path, script, args, full, run_start, warn).map(|c| c.read_only(read_only))
        };
        let opener: CacheOpener = if db_exists {
            let early = std::thread::Builder::new()
                .name("prun-db-open".into())
                .spawn(open);
            match early {
                Ok(h) => Box::new(move || h.join().ok().flatten()),
                Err(_) => Box::new(|| None),
            }
        } else {
            Box::new(open)
        };
        sched.with(|c| c.set_cache_opener(Some(opener)));
    }
    let host = Host::new(
        sched.clone(),
        &HostOptions {
            cli_parallel: cfg.parallel,
            script_args: cfg.script_args.clone(),
            script_values: cfg.script_values.clone(),
            db,
            cli_full_log: cfg.full_log_on_failure,
            cli_live: cfg.live.is_some(),
        },
    );

    let ast = match host.compile_file(&cfg.script) {
        Ok(ast) => ast,
        Err(e) => {
            sched.shutdown();
            return Err(Error::Script(e));
        }
    };

    let mut exit = Exit::Ok;
    // A panic (a bug) on this thread ends the run like one on any other (see
    // `exec::internal`): the cleanups still run and prun exits with status 2.
    let ran = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let r = host.run(&ast);
        let targets = r
            .is_ok()
            .then(|| run_targets(&sched, &cfg.targets, &*reporter));
        (r, targets)
    }));
    let ran = ran.unwrap_or_else(|_| {
        sched.internal_error();
        (Err(crate::script::TopLevelError::Interrupted), None)
    });
    // What stopped the run, for the report (it was printed as it happened).
    let mut error: Option<String> = None;
    match ran.0 {
        Ok(()) => {
            let (code, e) = ran.1.unwrap_or((Exit::Ok, None));
            exit = code;
            error = e;
        }
        Err(crate::script::TopLevelError::Script(e)) => {
            reporter.eprint(&format!("prun: error: {e}"));
            sched.with(|c| c.abort(AbortReason::ScriptError));
            exit = Exit::Script;
            error = Some(e.to_string());
        }
        Err(crate::script::TopLevelError::ProcFailed(msg)) => {
            reporter.eprint(&format!("prun: the script stopped: {msg}"));
            exit = Exit::ProcFailed;
            error = Some(format!("the script stopped: {msg}"));
        }
        Err(crate::script::TopLevelError::Aborted(msg)) => {
            reporter.eprint(&format!("prun: the script stopped: {msg}"));
            error = Some(format!("the script stopped: {msg}"));
        }
        Err(crate::script::TopLevelError::Interrupted) => {}
    }

    sched.with(|c| c.script_done());
    if let Ok(Some(rx)) = sched.graph_op(|c| c.wait_all()) {
        sched.block(rx);
        // The wait woke the script as if it ran on; its top level has ended.
        sched.with(|c| c.script_done());
    }
    host.run_cleanups();
    sched.flush_reports();
    // A script that failed declared only part of its procs: its error is the answer.
    if let Some(what) = cfg.inspect.filter(|_| exit != Exit::Script) {
        let text = {
            let c = sched.lock();
            match what {
                Inspect::List => crate::inspect::list(&c, |def| sched.placement(def)),
                Inspect::Graph => crate::inspect::dot(&c, !cfg.targets.is_empty()),
            }
        };
        outln!("{text}");
    }
    if cfg.inspect.is_some() {
        sched.shutdown();
        return Ok(exit);
    }

    let mut summary = summarize(&sched, started.elapsed());
    if cfg.dry_run {
        let n = sched.lock().would_run_count();
        summary.succeeded -= n;
        summary.would_run = Some(n);
    }
    // A run that an error stopped before it scheduled anything has nothing to sum up:
    // the error is all there is to say.
    if !(matches!(exit, Exit::Script | Exit::Usage) && summary.total() == 0) {
        reporter.summary(&summary);
    }
    let interrupted = sched.lock().interrupted_procs().to_vec();
    let outcome = if sched.interrupted() {
        "interrupted"
    } else if exit == Exit::Script {
        "script error"
    } else if exit == Exit::Usage {
        "usage error"
    } else if summary.failed + summary.failed_dep > 0 || exit != Exit::Ok {
        "failed"
    } else {
        "ok"
    };
    sched.close_executors();
    // Closing waits for the DB writer: not under the core's lock.
    if let Some(mut cache) = sched.with(|c| c.take_cache()) {
        cache.close(summary.wall, outcome, &summary.to_json());
    }
    if let Some(path) = &cfg.json {
        let procs: Vec<_> = sched.lock().scheduled().collect();
        let info = crate::report::RunInfo {
            script: &cfg.script,
            args: &cfg.script_args,
            start: run_started,
            end: std::time::SystemTime::now(),
            outcome,
            error: error.as_deref(),
        };
        if let Err(e) = crate::report::write(path, &info, &procs) {
            reporter.warning(&format!(
                "failed to write the JSON report {}: {e}",
                path.display()
            ));
        }
    }
    sched.shutdown();
    drop(host);

    if let Some(panic) = sched.internal_failure() {
        crate::exec::unix::kill_all_groups();
        errln!("prun: internal error: {panic}");
        return Ok(Exit::Script);
    }
    if sched.interrupted() {
        if interrupted.is_empty() {
            errln!("prun: interrupted");
        } else {
            errln!("prun: interrupted; terminated: {}", interrupted.join(", "));
        }
        return Ok(Exit::Interrupted);
    }
    if exit == Exit::Ok && (summary.failed > 0 || summary.failed_dep > 0) {
        exit = Exit::ProcFailed;
    }
    if exit == Exit::Ok && sched.lock().aborted().is_some() {
        exit = Exit::ProcFailed;
    }
    Ok(exit)
}

/// Starts the command line's targets; a target that cannot be started is a usage error,
/// returned with its message.
fn run_targets(
    sched: &Arc<Scheduler>,
    targets: &[String],
    reporter: &dyn Reporter,
) -> (Exit, Option<String>) {
    // Each target is expanded once, even when the operation is retried (see Core::expand).
    let mut expanded: Vec<Vec<crate::graph::ProcId>> = Vec::new();
    let result = sched.graph_op(|c| {
        c.flush_now()?;
        for (i, t) in targets.iter().enumerate() {
            if expanded.len() == i {
                expanded.push(c.expand(t)?);
            }
            c.start(&expanded[i])?;
        }
        Ok::<_, crate::graph::GraphError>(())
    });
    match result {
        Ok(()) => (Exit::Ok, None),
        Err(e) => {
            let message = format!("target: {e}");
            reporter.eprint(&format!("prun: {message}"));
            (Exit::Usage, Some(message))
        }
    }
}

fn summarize(sched: &Arc<Scheduler>, wall: Duration) -> Summary {
    let c = sched.lock();
    let mut s = Summary {
        wall,
        ..Summary::default()
    };
    let mut ran: Vec<(String, Duration)> = Vec::new();
    for p in c.scheduled() {
        if let Some(d) = p
            .duration
            .filter(|_| matches!(p.state, State::Succeeded | State::Failed))
        {
            ran.push((p.name.to_string(), d));
        }
        match p.state {
            State::Succeeded => s.succeeded += 1,
            State::Failed => s.failed += 1,
            State::FailedDep => s.failed_dep += 1,
            State::Skipped => s.skipped += 1,
            State::UpToDate => s.up_to_date += 1,
            State::Idle | State::Wanted | State::Running => s.not_run += 1,
        }
    }
    ran.sort_by_key(|r| std::cmp::Reverse(r.1));
    ran.truncate(3);
    s.slowest = ran;
    s
}

/// Ctrl-C, SIGTERM, SIGHUP (terminal closed, ssh dropped) and SIGQUIT abort the run (see
/// [`Scheduler::interrupt`]): jobs are terminated, `defer` cleanups run, the report is
/// written, and prun exits with 130. Left to their default action, SIGHUP and SIGQUIT
/// would end prun on the spot and leave every job running.
fn watch_signals(rt: &tokio::runtime::Runtime, sched: &Arc<Scheduler>) {
    use tokio::signal::unix::{SignalKind, signal};
    let sched = Arc::downgrade(sched);
    let _guard = rt.enter();
    let kinds = [
        SignalKind::interrupt(),
        SignalKind::terminate(),
        SignalKind::hangup(),
        SignalKind::quit(),
    ];
    let mut streams = Vec::with_capacity(kinds.len());
    for kind in kinds {
        match signal(kind) {
            Ok(s) => streams.push(s),
            Err(e) => {
                errln!("prun: warning: cannot install signal handlers: {e}");
                return;
            }
        }
    }
    for mut stream in streams {
        let sched = sched.clone();
        rt.spawn(async move {
            while stream.recv().await.is_some() {
                match sched.upgrade() {
                    Some(s) => s.interrupt(),
                    None => return,
                }
            }
        });
    }
}

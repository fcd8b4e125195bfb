//! One run of a script: compile, run the top level, run the targets, wait, report, and
//! choose the exit status.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::exec::{AbortReason, Cache, CacheOpener, Core, CoreOptions, Scheduler, State};
use crate::script::{DbSettings, Host, HostOptions};
use crate::store::Store;
use crate::ui::{LiveReporter, PlainReporter, Reporter, Silent, Summary};

/// Everything the command line decides about a run.
#[derive(Debug, Clone, Default)]
pub struct RunConfig {
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
    /// `prun list` / `prun graph`: evaluate the script as a dry run, silently, then show
    /// its graph instead of a summary.
    pub inspect: Option<Inspect>,
    /// `--live` (`Some(true)`) / `--no-live` (`Some(false)`); else live on a terminal.
    pub live: Option<bool>,
    /// `--lock`: refuse to run (`Some(false)`) or wait (`Some(true)`, `--lock=wait`) while
    /// another run of the script holds the lock.
    pub lock: Option<bool>,
    /// The words before the script path, as given.
    pub head: Vec<std::ffi::OsString>,
    /// The words after the script path, as given.
    pub tail: Vec<String>,
    /// Why the words after the script path are not prun's, when they are not: they may
    /// still be the script's own options (see [`crate::script::declaration`]).
    pub tail_error: Option<String>,
    /// The values of the script's declared options, once the command line was read with
    /// the script's declaration.
    pub script_values: Option<rhai::Map>,
}

/// What `prun list` and `prun graph` show.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Inspect {
    /// Procs and protos with their help lines and arg choices.
    List,
    /// The dependency graph in DOT.
    Graph,
}

/// prun's exit statuses (API.md section 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// Every scheduled proc succeeded, was skipped or was up to date.
    Ok = 0,
    /// A proc failed.
    ProcFailed = 1,
    /// The script itself failed.
    Script = 2,
    /// The command line was wrong.
    Usage = 64,
    /// `--lock`: another run of the script holds the lock.
    Locked = 75,
    /// Interrupted by Ctrl-C, SIGTERM, SIGHUP or SIGQUIT.
    Interrupted = 130,
}

/// Time given to a terminated process group between SIGTERM and SIGKILL.
const KILL_GRACE: Duration = Duration::from_secs(5);

/// Compiles a script and reports syntax errors (`prun check`).
pub fn check(script: &std::path::Path) -> Exit {
    let Ok(rt) = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    else {
        errln!("prun: failed to start the async runtime");
        return Exit::Script;
    };
    let core = Core::new(CoreOptions {
        parallel: 1,
        allow_missing_deps: true,
        fail_fast: false,
        dry_run: true,
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
    let exit = match host.compile_file(script) {
        Ok(_) => {
            outln!("{}: ok", script.display());
            Exit::Ok
        }
        Err(e) => {
            errln!("prun: {e}");
            Exit::Script
        }
    };
    sched.shutdown();
    exit
}

/// `prun log SCRIPT PROC`: prints the latest log of a proc.
pub fn log(script: &std::path::Path, proc_name: &str) -> Exit {
    let root = match crate::paths::private_state_dir(script) {
        Ok(dir) => dir.join("logs"),
        Err(e) => {
            errln!("prun: {e}");
            return Exit::Script;
        }
    };
    match crate::exec::log::latest(&root, proc_name) {
        Some(path) => match std::fs::read_to_string(&path) {
            Ok(text) => {
                outln!("# {}", path.display());
                outln!("{}", text.trim_end());
                Exit::Ok
            }
            Err(e) => {
                errln!("prun: failed to read {}: {e}", path.display());
                Exit::Script
            }
        },
        None => {
            errln!(
                "prun: no log of proc \"{proc_name}\" under {} (it never ran, or ran without printing anything)",
                root.display()
            );
            Exit::Usage
        }
    }
}

/// The live display is on when stdout is a terminal that can show it (not `TERM=dumb`),
/// unless `--no-live`; `--live` forces it on.
fn wants_live(cfg: &RunConfig) -> bool {
    use std::io::IsTerminal;
    match cfg.live {
        Some(on) => on,
        None => {
            std::io::stdout().is_terminal()
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
) -> Result<std::fs::File, Exit> {
    use std::io::{Seek, Write};
    let path = dir.join("run.lock");
    let mut file = match crate::paths::open_private_file(&path) {
        Ok(f) => f,
        Err(e) => {
            errln!("prun: failed to open the lock {}: {e}", path.display());
            return Err(Exit::Script);
        }
    };
    let holder = || {
        std::fs::read_to_string(&path)
            .unwrap_or_default()
            .trim()
            .to_string()
    };
    match file.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) if wait => {
            errln!(
                "prun: waiting for another run of {} to finish ({})",
                script.display(),
                holder()
            );
            if let Err(e) = file.lock() {
                errln!("prun: failed to take the lock {}: {e}", path.display());
                return Err(Exit::Script);
            }
        }
        Err(std::fs::TryLockError::WouldBlock) => {
            errln!(
                "prun: another run of {} holds the lock {} ({}); --lock=wait waits for it",
                script.display(),
                path.display(),
                holder()
            );
            return Err(Exit::Locked);
        }
        Err(std::fs::TryLockError::Error(e)) => {
            errln!("prun: failed to take the lock {}: {e}", path.display());
            return Err(Exit::Script);
        }
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
fn with_declared_options(cfg: RunConfig) -> Result<RunConfig, Exit> {
    if cfg.script_values.is_some() || cfg.inspect.is_some() {
        return Ok(cfg);
    }
    let script = cfg.script.display().to_string();
    let decl = match crate::script::declaration(&cfg.script) {
        None => {
            if let Some(e) = &cfg.tail_error {
                errln!("{}", e.trim_end());
                return Err(Exit::Usage);
            }
            return Ok(cfg);
        }
        Some(Err(msg)) => {
            errln!("prun: error: {script}: {msg}");
            return Err(Exit::Script);
        }
        Some(Ok(d)) => d,
    };
    let split = decl.split(&cfg.tail).map_err(|msg| {
        errln!("prun: {script}: {msg}\nFor the script's options, try 'prun {script} --help'.");
        Exit::Usage
    })?;
    if split.help {
        outln!("{}", decl.usage(&script));
        return Err(Exit::Ok);
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
                errln!("{}", e.trim_end());
                errln!("(the script's own options: prun {script} --help)");
                return Err(Exit::Usage);
            }
            c.script_values = Some(split.values);
            Ok(c)
        }
        crate::cli::Invocation::Exit(e) => Err(e),
        _ => Err(Exit::Usage),
    }
}

/// The task DB a run uses: `--db`, else the script's own.
fn db_path(cfg: &RunConfig, state_dir: &std::path::Path) -> PathBuf {
    cfg.db.clone().unwrap_or_else(|| state_dir.join("tasks.db"))
}

/// `prun history SCRIPT`: the recent runs recorded in the script's task DB.
pub fn history(script: &std::path::Path, db: Option<PathBuf>, limit: usize) -> Exit {
    let path = match db {
        Some(path) => path,
        None => match crate::paths::private_state_dir(script) {
            Ok(dir) => dir.join("tasks.db"),
            Err(e) => {
                errln!("prun: {e}");
                return Exit::Script;
            }
        },
    };
    if !path.exists() {
        errln!(
            "prun: no task DB at {} (no run of {} recorded yet)",
            path.display(),
            script.display()
        );
        return Exit::Usage;
    }
    let store = match Store::open(&path, Arc::new(|m: &str| errln!("prun: warning: {m}"))) {
        Ok(s) => s,
        Err(e) => {
            errln!("prun: {e}");
            return Exit::Script;
        }
    };
    let runs = match store.history(limit) {
        Ok(r) => r,
        Err(e) => {
            errln!("prun: {e}");
            return Exit::Script;
        }
    };
    if runs.is_empty() {
        outln!("no runs recorded in {}", path.display());
        return Exit::Ok;
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
    Exit::Ok
}

/// Runs a script to completion and returns the exit status.
pub fn run(cfg: RunConfig) -> Exit {
    let cfg = match with_declared_options(cfg) {
        Ok(cfg) => cfg,
        Err(exit) => return exit,
    };
    if let Some(path) = &cfg.json
        && let Err(msg) = crate::report::check_destination(path)
    {
        errln!("prun: {msg}");
        return Exit::Usage;
    }
    let state_dir = if cfg.inspect.is_some() {
        crate::paths::script_state_dir(&cfg.script)
    } else {
        match crate::paths::private_state_dir(&cfg.script) {
            Ok(dir) => dir,
            Err(e) => {
                errln!("prun: {e}");
                return Exit::Script;
            }
        }
    };
    // Taken before the signal handlers exist: Ctrl-C while waiting for it just ends prun.
    let _lock = match cfg.lock {
        Some(wait) => match take_lock(&cfg.script, &state_dir, wait) {
            Ok(l) => Some(l),
            Err(exit) => return exit,
        },
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
    let started = Instant::now();
    let run_started = std::time::SystemTime::now();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            errln!("prun: failed to start the async runtime: {e}");
            return Exit::Script;
        }
    };
    let parallel = cfg.parallel.unwrap_or_else(|| {
        std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
    });
    let core = Core::new(CoreOptions {
        parallel,
        allow_missing_deps: true,
        fail_fast: cfg.fail_fast,
        dry_run: cfg.dry_run || cfg.inspect.is_some(),
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
    watch_signals(&rt, &sched);
    if let Some(l) = &live {
        let weak = Arc::downgrade(&sched);
        l.set_estimator(Box::new(move |name| {
            let s = weak.upgrade()?;
            let c = s.lock();
            c.cache()?.store().expected_duration(name).ok().flatten()
        }));
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
            errln!("prun: error: {e}");
            sched.shutdown();
            return Exit::Script;
        }
    };

    let mut exit = Exit::Ok;
    match host.run(&ast) {
        Ok(()) => exit = run_targets(&sched, &cfg.targets, &*reporter),
        Err(crate::script::TopLevelError::Script(e)) => {
            reporter.eprint(&format!("prun: error: {e}"));
            sched.with(|c| c.abort(AbortReason::ScriptError));
            exit = Exit::Script;
        }
        Err(crate::script::TopLevelError::ProcFailed(msg)) => {
            reporter.eprint(&format!("prun: the script stopped: {msg}"));
            exit = Exit::ProcFailed;
        }
        Err(crate::script::TopLevelError::Aborted(msg)) => {
            reporter.eprint(&format!("prun: the script stopped: {msg}"));
        }
        Err(crate::script::TopLevelError::Interrupted) => {}
    }

    sched.with(|c| c.script_done());
    if let Ok(Some(rx)) = sched.with(|c| c.wait_all()) {
        sched.block(rx);
    }
    host.run_cleanups();
    sched.flush_reports();
    if let Some(what) = cfg.inspect {
        let text = {
            let c = sched.lock();
            match what {
                Inspect::List => crate::inspect::list(&c),
                Inspect::Graph => crate::inspect::dot(&c, !cfg.targets.is_empty()),
            }
        };
        outln!("{text}");
        sched.shutdown();
        return exit;
    }

    let mut summary = summarize(&sched, started.elapsed());
    if cfg.dry_run {
        let n = sched.lock().would_run_count();
        summary.succeeded -= n;
        summary.would_run = Some(n);
    }
    reporter.summary(&summary);
    let interrupted = sched.lock().interrupted_procs().to_vec();
    let outcome = if sched.interrupted() {
        "interrupted"
    } else if exit == Exit::Script {
        "script error"
    } else if summary.failed + summary.failed_dep > 0 || exit != Exit::Ok {
        "failed"
    } else {
        "ok"
    };
    sched.with(|c| {
        if let Some(mut cache) = c.take_cache() {
            cache.close(summary.wall, outcome, &summary.to_json());
        }
    });
    if let Some(path) = &cfg.json {
        let procs: Vec<_> = sched.lock().scheduled().collect();
        let info = crate::report::RunInfo {
            script: &cfg.script,
            args: &cfg.script_args,
            start: run_started,
            end: std::time::SystemTime::now(),
            outcome,
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

    if sched.interrupted() {
        if interrupted.is_empty() {
            errln!("prun: interrupted");
        } else {
            errln!("prun: interrupted; terminated: {}", interrupted.join(", "));
        }
        return Exit::Interrupted;
    }
    if exit == Exit::Ok && (summary.failed > 0 || summary.failed_dep > 0) {
        exit = Exit::ProcFailed;
    }
    if exit == Exit::Ok && sched.lock().aborted().is_some() {
        exit = Exit::ProcFailed;
    }
    exit
}

fn run_targets(sched: &Arc<Scheduler>, targets: &[String], reporter: &dyn Reporter) -> Exit {
    let result = sched.with(|c| {
        c.flush_now()?;
        for t in targets {
            let ids = c.create(t)?;
            c.start(&ids)?;
        }
        Ok::<_, crate::graph::GraphError>(())
    });
    match result {
        Ok(()) => Exit::Ok,
        Err(e) => {
            reporter.eprint(&format!("prun: target: {e}"));
            Exit::Usage
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

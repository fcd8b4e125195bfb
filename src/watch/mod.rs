//! Watch mode: after the run, watch the declared inputs of the scheduled procs and re-run
//! what a change affects, cycle after cycle, until Ctrl-C.
//!
//! Theory of operation: the watch loop runs on the thread that entered it (the script's,
//! in `watch()`, or the main thread after the script and its targets) and reacts to
//! [`Msg`]s on one channel: file changes from the watcher ([`source`]), the end of a cycle,
//! and Ctrl-C. It owns no run state: a change becomes [`crate::exec::Core::rerun`], which
//! puts the affected procs and their dependents back to WANTED in the same scheduler, so a
//! cycle is judged against the same task DB and runs through the same queue, locks and
//! waves as the first run. Everything that calls script closures or reads the file system
//! (resolving `inputs` and `outputs`, expanding globs) happens here, with the core's lock
//! released.
//!
//! Debounce: the watcher delays and merges events; a change that finds the run idle then
//! waits until no further change arrived for the debounce time, so a burst of saves is one
//! cycle. A change while a cycle runs is handed to the core at once: a proc that is running
//! with stale inputs must not release its dependents (see `exec::core::rerun`).
//!
//! Ctrl-C aborts the run as usual (jobs are terminated); the watch then ends, and its
//! status is that of the last cycle: 0 when it completed and no scheduled proc is failed.

mod source;
mod watched;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use crate::exec::{AbortReason, InputPattern, Scheduler, State};
use crate::graph::{FileSpec, ProcId, ProcNode};
use source::{Msg, Source};
use watched::{ProcFiles, Watched};

/// The debounce when the script sets none.
pub(crate) const DEFAULT_DEBOUNCE: Duration = Duration::from_millis(300);

/// Why a watch cannot go on.
#[derive(Debug, thiserror::Error)]
pub(crate) enum WatchError {
    #[error("failed to start watching files: {0}")]
    Start(String),
    #[error("failed to watch {}: {why}", path.display())]
    Watch { path: PathBuf, why: String },
    #[error("watch: {0}")]
    Invalid(String),
}

/// The watch settings of a run (`--watch`, `set_options(#{ watch, watch_debounce })`),
/// shared by the command line, the script API and the run, and how the watch ended.
#[derive(Debug)]
pub(crate) struct Session {
    enabled: AtomicBool,
    /// A dry run or `prun list`/`graph`: `watch()` waits for the run and returns.
    inert: bool,
    debounce_ms: AtomicU64,
    /// Paths whose changes never count (prun's state directory, the task DB, logs).
    ignored: Mutex<Vec<PathBuf>>,
    entered: AtomicBool,
    ended: Mutex<Option<bool>>,
    /// When the run started: inputs modified since are changes the watch catches up on.
    started: SystemTime,
    /// Called each time the watch's work has settled (see [`Session::on_settled`]).
    settled: Mutex<Option<SettledHook>>,
    /// The script run (see [`Session::script_file`]).
    script: Mutex<Option<PathBuf>>,
    /// The files the run read at its start (see [`Session::read_at_start`]).
    read_at_start: Mutex<Option<ReadAtStartHook>>,
    /// Ctrl-C ends the watch: the run handles signals (see [`Session::stops_on_ctrl_c`]).
    ctrl_c: AtomicBool,
}

/// What [`Session::on_settled`] registers.
struct SettledHook(Box<dyn Fn() + Send + Sync>);

impl std::fmt::Debug for SettledHook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SettledHook")
    }
}

/// A file the run read once and keeps what it read (see [`Session::read_at_start`]).
pub(crate) struct ReadAtStart {
    /// The file, as the script named it.
    pub path: PathBuf,
    /// A module the script imported, else a file its top level read with `read_file`.
    pub module: bool,
}

/// What [`Session::read_at_start`] registers.
struct ReadAtStartHook(Box<dyn Fn() -> Vec<ReadAtStart> + Send + Sync>);

impl std::fmt::Debug for ReadAtStartHook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ReadAtStartHook")
    }
}

impl Default for Session {
    fn default() -> Session {
        Session::new(false, true, SystemTime::now())
    }
}

impl Session {
    /// The settings of a run; `enabled` by `--watch`, `inert` for runs that run nothing.
    pub(crate) fn new(enabled: bool, inert: bool, started: SystemTime) -> Session {
        Session {
            enabled: AtomicBool::new(enabled),
            inert,
            debounce_ms: AtomicU64::new(DEFAULT_DEBOUNCE.as_millis() as u64),
            ignored: Mutex::new(Vec::new()),
            entered: AtomicBool::new(false),
            ended: Mutex::new(None),
            started,
            settled: Mutex::new(None),
            script: Mutex::new(None),
            read_at_start: Mutex::new(None),
            ctrl_c: AtomicBool::new(false),
        }
    }

    /// Whether Ctrl-C ends the watch (the run handles signals, as the `prun` binary's
    /// does): the watch then says so. An embedder's run without signal handlers is
    /// ended by its `Cancel`.
    pub(crate) fn stops_on_ctrl_c(&self, on: bool) {
        self.ctrl_c.store(on, Ordering::Relaxed);
    }

    /// The file of the script run, by its identity (its canonical path, see
    /// `paths::script_identity`). A watch does not read the script again: when it is an
    /// input and changes, the watch says that the change is not taken.
    pub(crate) fn script_file(&self, identity: &std::path::Path) {
        *self.script.lock().expect("script file") = Some(identity.to_path_buf());
    }

    /// How to know the files the run read at its start (so far: a closure may import a
    /// module later): the modules the script imported and the files its top level read
    /// with `read_file`. A watch does not read them again either: when one is an input
    /// and changes, the watch says that the change is not taken, as for the script.
    pub(crate) fn read_at_start(
        &self,
        files: impl Fn() -> Vec<ReadAtStart> + Send + Sync + 'static,
    ) {
        *self.read_at_start.lock().expect("files read") = Some(ReadAtStartHook(Box::new(files)));
    }

    /// What the watch says about each file of `paths` that is the script's file, or a
    /// file the run read at its start (see [`Session::read_at_start`]): which changed,
    /// and what the run keeps. Each comes with the file, to say it once.
    fn changes_not_taken(&self, paths: &[PathBuf]) -> Vec<(PathBuf, String)> {
        // A file deleted (no canonical path) is still known by its absolute one.
        let canonical = |p: &PathBuf| {
            (std::fs::canonicalize(p).or_else(|_| std::path::absolute(p)))
                .unwrap_or_else(|_| p.clone())
        };
        let changed: Vec<PathBuf> = paths.iter().map(canonical).collect();
        let kept = "a watch goes on with the script and its modules as prun read them at the \
                    start; restart prun to use the change";
        let mut said = Vec::new();
        let script = self.script.lock().expect("script file").clone();
        if let Some(s) = script.filter(|s| changed.contains(s)) {
            said.push((s, format!("the script changed: {kept}")));
        }
        let read = self.read_at_start.lock().expect("files read");
        let files = read.as_ref().map_or_else(Vec::new, |r| (r.0)());
        for file in files {
            let path = canonical(&file.path);
            if !changed.contains(&path) {
                continue;
            }
            let shown = file.path.display();
            said.push((
                path,
                if file.module {
                    format!("the module {shown} changed: {kept}")
                } else {
                    format!(
                        "{shown} changed: the script read it at its start (read_file), and a \
                         watch goes on with what it read then; restart prun to use the change"
                    )
                },
            ));
        }
        said
    }

    /// Registers what to do each time the watch's work has settled, once the first run is
    /// done and after each cycle, with none of their commands left running: the `prun`
    /// binary reaps there the processes that left their command's group and exited
    /// (see `Local::reap_escaped`), so that a long watch does not gather zombies.
    pub(crate) fn on_settled(&self, hook: impl Fn() + Send + Sync + 'static) {
        *self.settled.lock().expect("settled hook") = Some(SettledHook(Box::new(hook)));
    }

    fn settled(&self) {
        if let Some(hook) = &*self.settled.lock().expect("settled hook") {
            (hook.0)();
        }
    }

    /// `set_options(#{ watch: true })`.
    pub(crate) fn enable(&self, on: bool) {
        self.enabled.store(on, Ordering::SeqCst);
    }

    /// Whether watch mode is on.
    pub(crate) fn enabled(&self) -> bool {
        self.enabled.load(Ordering::SeqCst)
    }

    /// `set_options(#{ watch_debounce })`.
    pub(crate) fn set_debounce(&self, d: Duration) {
        let ms = u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
        self.debounce_ms.store(ms, Ordering::SeqCst);
    }

    fn debounce(&self) -> Duration {
        Duration::from_millis(self.debounce_ms.load(Ordering::SeqCst))
    }

    /// Changes at or under `path` never count (prun's own files).
    pub(crate) fn ignore(&self, path: PathBuf) {
        self.ignored.lock().expect("ignored paths").push(path);
    }

    /// Changes of the task DB at `path` (and of its `-wal`, `-shm` and `-journal` files)
    /// never count.
    pub(crate) fn ignore_db(&self, path: &std::path::Path) {
        for suffix in ["", "-wal", "-shm", "-journal"] {
            let mut p = path.as_os_str().to_owned();
            p.push(suffix);
            self.ignore(p.into());
        }
    }

    /// Watch mode is on and the script did not enter the watch itself: the run enters it
    /// once the script and its targets are done.
    pub(crate) fn pending(&self) -> bool {
        self.enabled() && !self.inert && !self.entered.load(Ordering::SeqCst)
    }

    /// `Some(ok)` once a watch ended: `ok` when its last cycle completed and no scheduled
    /// proc is failed.
    pub(crate) fn ended(&self) -> Option<bool> {
        *self.ended.lock().expect("watch outcome")
    }
}

/// Waits for what the run scheduled, then watches the inputs of `names` (procs or globs)
/// and of their dependencies, or of every scheduled proc when `names` is empty, and re-runs
/// what changes affect until Ctrl-C. Returns whether the last cycle succeeded.
pub(crate) fn watch(
    sched: &Arc<Scheduler>,
    session: &Session,
    names: &[String],
) -> Result<bool, WatchError> {
    session.entered.store(true, Ordering::SeqCst);
    let settled = settle(sched);
    if session.inert || sched.interrupted() {
        return Ok(settled);
    }
    session.settled();
    let ids = watched_procs(sched, names)?;
    // prun's own output redirected to a file under a watched directory: every line it
    // prints about a cycle would start the next one.
    for fd in [1, 2] {
        if let Some(file) = output_file(fd) {
            session.ignore(file);
        }
    }
    let (tx, rx) = mpsc::channel();
    let mut source = Source::new(session.debounce(), tx.clone())?;
    let stop = forward_stop(sched, tx.clone());
    let mut w = Loop {
        sched,
        session,
        ids,
        watched: Watched::default(),
        known: BTreeMap::new(),
        source: &mut source,
        tx,
        cycle: 0,
        running: None,
        echoes: Echoes::default(),
        ok: settled,
        warned: BTreeSet::new(),
        began: false,
        unwatched: BTreeSet::new(),
        after_abort: None,
    };
    let ended = w.run(&rx);
    // An error ends the watch; a cycle it cuts short runs to its end first, as the jobs of
    // a run that a script error stops do, rather than outlive prun.
    if ended.is_err() && w.running.is_some() {
        settle(sched);
    }
    stop.cancel();
    let ok = ended?;
    *session.ended.lock().expect("watch outcome") = Some(ok);
    Ok(ok)
}

/// The regular file that the process's file descriptor `fd` writes to, if any (Linux:
/// through `/proc/self/fd`).
fn output_file(fd: i32) -> Option<PathBuf> {
    let path = std::fs::read_link(format!("/proc/self/fd/{fd}")).ok()?;
    std::fs::metadata(&path)
        .is_ok_and(|m| m.is_file())
        .then_some(path)
}

/// Waits until everything scheduled is done; true when nothing failed or was interrupted.
fn settle(sched: &Arc<Scheduler>) -> bool {
    if let Ok(Some(rx)) = sched.graph_op(|c| c.wait_all()) {
        sched.block(rx);
    }
    sched.with(|c| c.script_done());
    !sched.interrupted() && !any_failed(sched)
}

/// Whether a scheduled proc is in a failed state.
fn any_failed(sched: &Scheduler) -> bool {
    sched.lock().scheduled().any(|p| p.state.is_failure())
}

/// Ends the watch on Ctrl-C: the scheduler's interrupt cancels the script's token.
fn forward_stop(sched: &Scheduler, tx: Sender<Msg>) -> tokio_util::sync::CancellationToken {
    let interrupted = sched.script_cancel();
    let done = tokio_util::sync::CancellationToken::new();
    let finished = done.clone();
    sched.runtime().spawn(async move {
        tokio::select! {
            () = interrupted.cancelled() => {
                let _ = tx.send(Msg::Stop);
            }
            () = finished.cancelled() => {}
        }
    });
    done
}

/// The procs to watch: those named and their dependencies, or every scheduled one.
fn watched_procs(sched: &Scheduler, names: &[String]) -> Result<Vec<ProcId>, WatchError> {
    let c = sched.lock();
    let scheduled: Vec<ProcId> = (0..c.graph().len())
        .filter(|&p| c.state(p) != State::Idle)
        .collect();
    if names.is_empty() {
        return Ok(scheduled);
    }
    let mut work = Vec::new();
    for n in names {
        let hits = c.scheduled_matching(n);
        if hits.is_empty() {
            return Err(WatchError::Invalid(format!(
                "no scheduled proc matches \"{n}\" (watch() takes procs the run scheduled)"
            )));
        }
        work.extend(hits);
    }
    let mut seen = BTreeSet::new();
    while let Some(p) = work.pop() {
        if seen.insert(p) {
            work.extend(c.deps_of(p).iter().copied());
        }
    }
    Ok(seen.into_iter().collect())
}

/// A cycle in progress.
struct Cycle {
    started: Instant,
    /// Every proc it re-runs (changes during the cycle add to it).
    procs: BTreeSet<ProcId>,
}

/// Changed paths and the procs they affect.
type Changes = (Vec<PathBuf>, Vec<ProcId>);

/// The state of the watch loop.
struct Loop<'a> {
    sched: &'a Arc<Scheduler>,
    session: &'a Session,
    ids: Vec<ProcId>,
    watched: Watched,
    /// Each watched proc's inputs as last resolved: kept while its inputs closure fails,
    /// so that a change to them re-runs the proc (and calls the closure again).
    known: BTreeMap<ProcId, Vec<InputPattern>>,
    source: &'a mut Source,
    tx: Sender<Msg>,
    cycle: u32,
    running: Option<Cycle>,
    ok: bool,
    echoes: Echoes,
    /// The files whose change the watch said is not taken (the script, its modules).
    warned: BTreeSet<PathBuf>,
    /// Whether the watch began: its first directories are watched.
    began: bool,
    /// The directories that could not be watched, and were warned about.
    unwatched: BTreeSet<PathBuf>,
    /// Changes that came while `--fail-fast` was ending the running cycle: they start
    /// the next cycle once it ended (the aborted run starts nothing).
    after_abort: Option<Changes>,
}

/// How many cycles in a row a change of the same files right after the previous cycle
/// must start before the watch warns (see [`Echoes`]).
const ECHOES: u32 = 5;

/// How soon after a cycle's end (past the debounce) a change counts as its echo.
const ECHO_WINDOW: Duration = Duration::from_secs(2);

/// Cycles started by a change of the same files right after the cycle before: what a
/// proc that writes a file its inputs cover (without declaring it in `outputs`) does,
/// re-running itself for ever. The watch goes on (the files may really change that
/// often), but after [`ECHOES`] such cycles in a row it warns once, naming the files.
#[derive(Debug, Default)]
struct Echoes {
    last_end: Option<Instant>,
    last_paths: Vec<PathBuf>,
    count: u32,
    warned: bool,
}

impl Echoes {
    /// A cycle starts for `paths`: true when the warning is due now.
    fn cycle_started(&mut self, paths: &[PathBuf], debounce: Duration) -> bool {
        let soon = self
            .last_end
            .is_some_and(|end| end.elapsed() <= debounce + ECHO_WINDOW);
        self.count = if soon && paths == self.last_paths.as_slice() {
            self.count + 1
        } else {
            1
        };
        self.last_paths = paths.to_vec();
        let due = self.count > ECHOES && !self.warned;
        self.warned |= due;
        due
    }

    fn cycle_ended(&mut self) {
        self.last_end = Some(Instant::now());
    }
}

impl Loop<'_> {
    fn run(&mut self, rx: &Receiver<Msg>) -> Result<bool, WatchError> {
        self.refresh()?;
        self.began = true;
        // A signal that came while the inputs were read cut their closures short: it
        // ends the watch, which has nothing to say about them.
        if self.sched.interrupted() {
            return Ok(self.stop(rx));
        }
        if self.watched.counts().0 == 0 {
            self.warn("no scheduled proc declares inputs: there is nothing to watch");
            return Ok(self.ok);
        }
        // Inputs saved while the first run ran were not watched yet: catch up on them.
        let early = self.watched.modified_since(self.session.started);
        if early.is_empty() {
            self.announce();
        } else {
            let (paths, procs): Changes = early.into_iter().unzip();
            self.start_cycle(&paths, procs)?;
        }
        loop {
            match rx.recv().unwrap_or(Msg::Stop) {
                Msg::Stop => return Ok(self.stop(rx)),
                Msg::Failed(e) => self.warn(&e),
                Msg::CycleDone => self.end_cycle()?,
                Msg::Changes { paths, rescan } => {
                    let (paths, procs) = self.affected(paths, rescan)?;
                    if procs.is_empty() {
                        continue;
                    }
                    if self.running.is_some() {
                        self.change_during_cycle(&paths, &procs);
                        continue;
                    }
                    match self.quiet_period(rx, (paths, procs))? {
                        Some((paths, procs)) => self.start_cycle(&paths, procs)?,
                        None => return Ok(self.stop(rx)),
                    }
                }
            }
        }
    }

    /// The procs a batch of changes affects. The watched directories are refreshed first:
    /// a directory may have appeared where an input is expected, or a link to one may
    /// lead elsewhere now. Only the paths that affect a proc are kept, to be shown: an
    /// editor's backup file renamed beside an input (`a.txt~`) is no change of its own.
    fn affected(&mut self, paths: Vec<PathBuf>, rescan: bool) -> Result<Changes, WatchError> {
        self.watch_roots()?;
        if rescan {
            return Ok((paths, self.watched.all()));
        }
        let mut procs = BTreeSet::new();
        let mut hit = Vec::new();
        for p in paths {
            let of = self.watched.affected(&p);
            if !of.is_empty() {
                procs.extend(of);
                hit.push(p);
            }
        }
        Ok((hit, procs.into_iter().collect()))
    }

    /// Collects further changes until none arrived for the debounce time. `None`: Ctrl-C.
    fn quiet_period(
        &mut self,
        rx: &Receiver<Msg>,
        (mut paths, procs): Changes,
    ) -> Result<Option<Changes>, WatchError> {
        let mut all: BTreeSet<ProcId> = procs.into_iter().collect();
        let quiet = self.session.debounce();
        loop {
            match rx.recv_timeout(quiet) {
                Err(RecvTimeoutError::Timeout) => break,
                Ok(Msg::Stop) | Err(RecvTimeoutError::Disconnected) => return Ok(None),
                Ok(Msg::Failed(e)) => self.warn(&e),
                Ok(Msg::CycleDone) => {}
                Ok(Msg::Changes {
                    paths: more,
                    rescan,
                }) => {
                    let (more, hit) = self.affected(more, rescan)?;
                    if !hit.is_empty() {
                        all.extend(hit);
                        paths.extend(more);
                    }
                }
            }
        }
        paths.retain(|p| !self.watched.ignores(p));
        paths.sort();
        paths.dedup();
        Ok(Some((paths, all.into_iter().collect())))
    }

    /// Starts a cycle: the core re-runs `procs` and their dependents.
    fn start_cycle(&mut self, paths: &[PathBuf], procs: Vec<ProcId>) -> Result<(), WatchError> {
        self.cycle += 1;
        self.say(&format!(
            "prun: watch: cycle {}: {} changed",
            self.cycle,
            paths_text(paths)
        ));
        self.warn_if_script(paths);
        if self.echoes.cycle_started(paths, self.session.debounce()) {
            self.warn(&format!(
                "{} changed right after each of the last {ECHOES} cycles: if a proc writes it, \
                 declare it in that proc's `outputs` (a change of an output starts no cycle)",
                paths_text(paths)
            ));
        }
        // Told under the core's lock, so before the cycle's first report.
        let reporter = self.sched.reporter();
        let watched = &self.watched;
        let rerun = self.sched.with(|c| {
            let rerun = c.rerun(&procs, &|p| watched.output_missing(p));
            reporter.cycle_started(rerun.procs.len());
            rerun
        });
        self.running = Some(Cycle {
            started: Instant::now(),
            procs: rerun.procs.into_iter().collect(),
        });
        if !self.await_cycle()? {
            let _ = self.tx.send(Msg::CycleDone);
        }
        Ok(())
    }

    /// Sends [`Msg::CycleDone`] once the run has nothing left to do; false (and nothing
    /// is sent) when it has nothing left to do now.
    fn await_cycle(&self) -> Result<bool, WatchError> {
        let wait = self.sched.graph_op(|c| c.wait_all());
        let tx = self.tx.clone();
        let Ok(Some(rx)) = wait else {
            return Ok(false);
        };
        std::thread::Builder::new()
            .name("prun-watch-cycle".into())
            .spawn(move || {
                let _ = rx.recv();
                let _ = tx.send(Msg::CycleDone);
            })
            .map(|_| true)
            .map_err(|e| WatchError::Start(format!("failed to start a thread: {e}")))
    }

    /// A change while a cycle runs: handed to the core at once, so that a proc running on
    /// stale inputs runs again before its dependents use its result.
    fn change_during_cycle(&mut self, paths: &[PathBuf], procs: &[ProcId]) {
        // Told under the core's lock, so before the reports of the procs it adds.
        let reporter = self.sched.reporter();
        let running = self.running.as_ref();
        let watched = &self.watched;
        let (rerun, aborted) = self.sched.with(|c| {
            let rerun = c.rerun(procs, &|p| watched.output_missing(p));
            let more = running.map_or(0, |cycle| {
                rerun
                    .procs
                    .iter()
                    .filter(|p| !cycle.procs.contains(p))
                    .count()
            });
            reporter.cycle_grew(more);
            (rerun, c.aborted() == Some(AbortReason::FailFast))
        });
        if aborted {
            let (paths_then, procs_then) = self.after_abort.get_or_insert_default();
            paths_then.extend_from_slice(paths);
            procs_then.extend_from_slice(procs);
        }
        let mut line = format!(
            "prun: watch: cycle {}: {} changed while it ran",
            self.cycle,
            paths_text(paths),
        );
        if !rerun.restarted.is_empty() {
            line.push_str(&format!(
                "; running again when done: {}",
                self.names(&rerun.restarted)
            ));
        }
        self.say(&line);
        self.warn_if_script(paths);
        if let Some(c) = &mut self.running {
            c.procs.extend(rerun.procs);
        }
    }

    /// Says, once for each file, that a change of the script, of a module it imported or of a file its
    /// top level read is not taken: a cycle runs the procs as the script declared them,
    /// with the values it computed, when prun read it.
    fn warn_if_script(&mut self, paths: &[PathBuf]) {
        for (file, said) in self.session.changes_not_taken(paths) {
            if self.warned.insert(file) {
                self.warn(&said);
            }
        }
    }

    /// A cycle ended: its counts, then the watch goes on.
    fn end_cycle(&mut self) -> Result<(), WatchError> {
        if self.running.is_none() {
            return Ok(());
        }
        // A change handed to the core after the cycle's wait ended, but before this
        // message was read, started more work: the cycle goes on until it is done too.
        if self.await_cycle()? {
            return Ok(());
        }
        let Some(cycle) = self.running.take() else {
            return Ok(());
        };
        self.sched.with(|c| c.script_done());
        self.session.settled();
        self.echoes.cycle_ended();
        self.sched.flush_reports();
        let states: Vec<State> = {
            let c = self.sched.lock();
            cycle.procs.iter().map(|&p| c.state(p)).collect()
        };
        let failed = states.iter().any(|s| s.is_failure() || *s == State::Wanted);
        self.ok = !any_failed(self.sched);
        let line = format!(
            "prun: watch: cycle {}: {} in {:.2}s",
            self.cycle,
            counts(states.into_iter()),
            cycle.started.elapsed().as_secs_f64()
        );
        self.sched.reporter().cycle_ended(&line, failed);
        self.refresh()?;
        match self.after_abort.take() {
            Some((mut paths, mut procs)) => {
                paths.sort();
                paths.dedup();
                procs.sort_unstable();
                procs.dedup();
                self.start_cycle(&paths, procs)
            }
            None => {
                self.announce();
                Ok(())
            }
        }
    }

    /// Ctrl-C: a running cycle was aborted by the interrupt; wait for its jobs to end.
    fn stop(&mut self, rx: &Receiver<Msg>) -> bool {
        let Some(cycle) = self.running.take() else {
            return self.ok;
        };
        while !matches!(rx.recv(), Ok(Msg::CycleDone) | Err(_)) {}
        self.sched.with(|c| c.script_done());
        // It may have completed just before Ctrl-C; else it was cut short.
        let c = self.sched.lock();
        c.interrupted_procs().is_empty()
            && cycle.procs.iter().all(|&p| c.state(p).is_complete())
            && !c.scheduled().any(|p| p.state.is_failure())
    }

    /// Resolves the watched procs' inputs and outputs again (globs may match other files
    /// now) and watches the directories they need.
    fn refresh(&mut self) -> Result<(), WatchError> {
        self.watched = resolve(self.sched, self.session, &self.ids, &mut self.known);
        self.watch_roots()
    }

    /// Watches the directories the watched inputs need. One that cannot be watched
    /// (inotify's limit reached) ends the watch before it began. Once it began, a cycle
    /// may be running: the watch warns, once for each such directory, and goes on with
    /// the others; the directory is tried again at each refresh.
    fn watch_roots(&mut self) -> Result<(), WatchError> {
        let failed = self.source.set_roots(self.watched.roots());
        let paths: BTreeSet<PathBuf> = failed
            .iter()
            .filter_map(|e| match e {
                WatchError::Watch { path, .. } => Some(path.clone()),
                _ => None,
            })
            .collect();
        self.unwatched.retain(|p| paths.contains(p));
        for e in failed {
            if !self.began {
                return Err(e);
            }
            if let WatchError::Watch { path, .. } = &e
                && self.unwatched.insert(path.clone())
            {
                self.warn(&format!(
                    "{e}; changes there start no cycle until it can be watched"
                ));
            }
        }
        Ok(())
    }

    fn announce(&self) {
        let (procs, files) = self.watched.counts();
        let dirs = self.source.roots().len();
        let hint = if self.session.ctrl_c.load(Ordering::Relaxed) {
            " (Ctrl-C to stop)"
        } else {
            ""
        };
        self.say(&format!(
            "prun: watch: watching {files} {} of {procs} {} in {dirs} {}{hint}",
            plural(files, "input", "inputs"),
            plural(procs, "proc", "procs"),
            plural(dirs, "directory", "directories"),
        ));
    }

    /// Proc names for a line: the first few, then how many more.
    fn names(&self, ids: &[ProcId]) -> String {
        const SHOWN: usize = 5;
        let c = self.sched.lock();
        let mut names: Vec<String> = ids
            .iter()
            .take(SHOWN)
            .map(|&p| c.graph().proc(p).name.to_string())
            .collect();
        if ids.len() > SHOWN {
            names.push(format!("and {} more", ids.len() - SHOWN));
        }
        names.join(", ")
    }

    fn say(&self, line: &str) {
        self.sched.reporter().message(line);
    }

    fn warn(&self, what: &str) {
        self.sched.reporter().warning(&format!("watch: {what}"));
    }
}

/// Changed paths for a line: the first few (relative to the working directory), then how
/// many more. A directory that holds another changed path is left out: the path in it
/// says more (`mkdir -p src/new && touch src/new/x.txt` changed `src/new/x.txt`).
fn paths_text(paths: &[PathBuf]) -> String {
    const SHOWN: usize = 3;
    let cwd = std::env::current_dir().unwrap_or_default();
    let paths = innermost(paths);
    let mut shown: Vec<String> = paths
        .iter()
        .take(SHOWN)
        .map(|p| match p.strip_prefix(&cwd) {
            // The working directory itself (an input of ".").
            Ok(rel) if rel.as_os_str().is_empty() => ".".to_string(),
            Ok(rel) => crate::exec::fileglob::display(rel),
            Err(_) => crate::exec::fileglob::display(p),
        })
        .collect();
    if paths.is_empty() {
        shown.push("an input".into());
    }
    if paths.len() > SHOWN {
        shown.push(format!("and {} more", paths.len() - SHOWN));
    }
    shown.join(", ")
}

/// `paths` sorted, without duplicates and without the directories that hold another of
/// them. Paths sort by their components, so what is under a path comes right after it.
fn innermost(paths: &[PathBuf]) -> Vec<PathBuf> {
    let mut sorted = paths.to_vec();
    sorted.sort();
    sorted.dedup();
    let holds_next = |i: usize| {
        sorted
            .get(i + 1)
            .is_some_and(|next| next.starts_with(&sorted[i]))
    };
    (0..sorted.len())
        .filter(|&i| !holds_next(i))
        .map(|i| sorted[i].clone())
        .collect()
}

fn plural(n: usize, one: &'static str, many: &'static str) -> &'static str {
    if n == 1 { one } else { many }
}

/// "2 succeeded, 1 up to date" for the states of a cycle's procs, once it ended: a proc
/// still WANTED is one the cycle never started (`--fail-fast` ended it).
fn counts(states: impl Iterator<Item = State>) -> String {
    let mut n = std::collections::BTreeMap::new();
    for s in states {
        let word = match s {
            State::Wanted => "not run".to_string(),
            s => s.to_string().to_lowercase().replace('_', " "),
        };
        *n.entry(word).or_insert(0usize) += 1;
    }
    let parts: Vec<String> = n.iter().map(|(s, k)| format!("{k} {s}")).collect();
    parts.join(", ")
}

/// The inputs of `ids` and the outputs of every scheduled proc, resolved with the core's
/// lock released (closures may run). A proc whose files cannot be resolved is reported;
/// its inputs are then those it last resolved to (`known`), its outputs none.
fn resolve(
    sched: &Scheduler,
    session: &Session,
    ids: &[ProcId],
    known: &mut BTreeMap<ProcId, Vec<InputPattern>>,
) -> Watched {
    let (nodes, params, others) = {
        let c = sched.lock();
        let nodes: Vec<(ProcId, ProcNode)> = ids
            .iter()
            .map(|&p| (p, c.graph().proc(p).clone()))
            .collect();
        let others: Vec<(ProcId, ProcNode)> = (0..c.graph().len())
            .filter(|&p| c.state(p) != State::Idle && ids.binary_search(&p).is_err())
            .map(|p| (p, c.graph().proc(p).clone()))
            .collect();
        (nodes, c.graph().params().clone(), others)
    };
    let warn = |name: &str, e: &dyn std::fmt::Display| {
        // A closure cut short by Ctrl-C or SIGTERM failed for that reason alone.
        if sched.interrupted() {
            return;
        }
        sched.reporter().warning(&format!(
            "watch: failed to resolve the files of \"{name}\": {e}"
        ));
    };
    let outputs = |node: &ProcNode| {
        crate::exec::output_paths(&params, node).unwrap_or_else(|e| {
            warn(&node.name, &e);
            Vec::new()
        })
    };
    let mut inputs = |id: ProcId, node: &ProcNode| {
        let specs: Vec<&FileSpec> = node.def.inputs.iter().collect();
        match crate::exec::input_patterns(&params, node, &specs) {
            Ok(patterns) => {
                known.insert(id, patterns.clone());
                patterns
            }
            Err(e) => {
                warn(&node.name, &e);
                known.get(&id).cloned().unwrap_or_default()
            }
        }
    };
    let procs = crate::exec::evaluating_as("an inputs or outputs closure", || {
        let mut procs: Vec<(ProcId, ProcFiles)> = nodes
            .iter()
            .map(|(id, node)| {
                let files = ProcFiles {
                    inputs: inputs(*id, node),
                    outputs: outputs(node),
                };
                (*id, files)
            })
            .collect();
        // The outputs of scheduled procs that are not watched never count either.
        procs.extend(others.iter().map(|(id, node)| {
            let files = ProcFiles {
                inputs: Vec::new(),
                outputs: outputs(node),
            };
            (*id, files)
        }));
        procs
    });
    let ignored: Vec<PathBuf> = session
        .ignored
        .lock()
        .expect("ignored paths")
        .iter()
        .cloned()
        .collect();
    let cwd = std::env::current_dir().unwrap_or_default();
    let bad = |e: &crate::exec::fileglob::GlobError| {
        sched
            .reporter()
            .warning(&format!("watch: an input glob is not watched: {e}"));
    };
    Watched::new(&cwd, procs, &ignored, bad)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_files_changing_right_after_each_cycle_warn_once() {
        let mut e = Echoes::default();
        let a = [PathBuf::from("a")];
        let b = [PathBuf::from("b")];
        let d = Duration::from_millis(300);
        let warnings: Vec<bool> = (0..8)
            .map(|_| {
                let w = e.cycle_started(&a, d);
                e.cycle_ended();
                w
            })
            .collect();
        assert_eq!(warnings.iter().filter(|&&w| w).count(), 1);
        assert!(warnings[ECHOES as usize], "{warnings:?}");
        // Another file resets the count.
        let mut e = Echoes::default();
        for i in 0..8 {
            assert!(!e.cycle_started(if i % 2 == 0 { &a } else { &b }, d));
            e.cycle_ended();
        }
    }

    #[test]
    fn changed_paths_name_the_files_not_the_directories_made_to_hold_them() {
        // `mkdir -p src/new/deep && touch src/new/deep/x.txt` under `src/**/*.txt`: the
        // line said `src/new, src/new/deep, and 1 more changed`.
        let cwd = std::env::current_dir().unwrap();
        let made: Vec<PathBuf> = ["src/new/deep/x.txt", "src/new", "src/new-x", "src/new/deep"]
            .iter()
            .map(|p| cwd.join(p))
            .collect();
        assert_eq!(paths_text(&made), "src/new/deep/x.txt, src/new-x");
        assert_eq!(paths_text(&[cwd.join("gen")]), "gen");
    }

    #[test]
    fn changed_paths_are_shown_relative_to_the_working_directory() {
        let cwd = std::env::current_dir().unwrap();
        assert_eq!(paths_text(std::slice::from_ref(&cwd)), ".");
        assert_eq!(paths_text(&[cwd.join("src/a.txt")]), "src/a.txt");
        let many: Vec<PathBuf> = (0..5).map(|i| cwd.join(format!("{i}.txt"))).collect();
        assert_eq!(paths_text(&many), "0.txt, 1.txt, 2.txt, and 2 more");
    }
}

//! The run state of every proc and the rules that decide what starts next.
//!
//! Theory of operation: [`Core`] is the one owner of run state, in the manner of ninja's
//! `Plan` and cargo's `DrainState`. Every change arrives as a call (a script asks to run or
//! wait, a job finishes, a verdict on a proc's freshness comes back, a retry timer fires);
//! each call updates counters and queues incrementally and records [`Action`]s (start a
//! job, judge a proc, open the task DB, wake a waiter, report a line) that the caller
//! carries out after releasing the lock. Nothing here scans every proc per event:
//!
//! - each WANTED proc counts its unfinished dependencies (`unmet`); a finishing proc
//!   decrements its dependents' counters and queues those that reach zero;
//! - ready procs wait in a [`ReadyQueue`] ordered by registration (the local one, bounded
//!   by `-j`, or their executor's in [`Pools`], bounded by its limit); a proc blocked by a
//!   held lock, a lower wave or resources in use is parked on its [`Locks`], [`Waves`] or
//!   [`Budget`] entry and queued again only when that frees.
//!
//! The core runs no user code, touches no file and waits for nothing, so the mutex the
//! [`super::Scheduler`] keeps around it is held only for counter and queue updates:
//!
//! - script closures that name procs (dependency and `arg_choices` closures) are called by
//!   the thread that asked for the operation, before it runs: [`prepare`] collects what is
//!   missing as [`crate::graph::Need`]s, the scheduler calls them with the lock released
//!   and retries (`Scheduler::graph_op`);
//! - fingerprints and output checks (`inputs`/`outputs` closures, globs, stats) run on a
//!   worker thread ([`Action::Judge`], `exec::freshness`) and come back as verdicts;
//! - the task DB is opened off the lock ([`Action::OpenCache`]); its writes are messages
//!   to the DB's writer thread. Procs that are never judged (no dependencies, no inputs)
//!   start while it opens; their writes wait in `unsaved` until it is open.
//!
//! The pieces, each in its own file: graph resolution ahead of an operation
//! ([`prepare`]) and at schedule time (`resolve`), cycle detection (`cycle`), the ready
//! queue, locks, waves and lanes (`queue`), judging (`judging`), outcomes and retries
//! (`outcomes`), what the task DB keeps of each proc's attempts (`record`), waiters and
//! deadlock breaking (`waiting`).

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use rhai::{Dynamic, ImmutableString, Map};
use tokio_util::sync::CancellationToken;

use super::cache::{Cache, Fingerprint};
use super::freshness::{JudgeSpec, Judgement};
use super::state::State;
pub(super) use crate::event::{ProcSummary, QueueView};
use crate::graph::rules::Rules;
use crate::graph::{Graph, GraphError, List, ProcDef, ProcId};

/// Opens the task DB: the cache is `None` when there is none (or it cannot be used).
pub(crate) enum CacheOpener {
    /// Opens it on the calling thread (it creates the file or waits for SQLite: a worker
    /// thread, never the core's lock or the async runtime).
    Here(Box<dyn FnOnce() -> Option<Cache> + Send>),
    /// Gives the cache to a callback once the DB's own thread opened it: on that thread,
    /// or on the caller's when it is open already. No thread waits for it (a run of one
    /// short proc would start one for that alone).
    Then(Box<dyn FnOnce(CacheTaker) + Send>),
}

/// What takes the cache a [`CacheOpener::Then`] opened.
pub(crate) type CacheTaker = Box<dyn FnOnce(Option<Cache>) + Send>;

impl CacheOpener {
    /// Opens the DB on this thread, waiting for it as long as it takes.
    pub(crate) fn open(self) -> Option<Cache> {
        match self {
            CacheOpener::Here(open) => open(),
            CacheOpener::Then(then) => {
                let (tx, rx) = mpsc::channel();
                then(Box::new(move |cache| {
                    let _ = tx.send(cache);
                }));
                rx.recv().ok().flatten()
            }
        }
    }
}

/// Run-wide options the scheduler obeys.
#[derive(Debug, Clone)]
pub(crate) struct CoreOptions {
    pub parallel: usize,
    pub allow_missing_deps: bool,
    pub fail_fast: bool,
}

/// Why the run stopped scheduling.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AbortReason {
    FailFast,
    Interrupted,
    ScriptError,
    /// A panic (a bug): nothing may wait any more, not even for running jobs.
    Internal,
}

/// Why a blocked `wait` returned.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Wake {
    /// Everything waited for is complete.
    Done,
    /// It can never complete; the message says why.
    Deadlock(String),
    /// The run was aborted.
    Aborted(AbortReason),
}

/// A job to start, handed to the executor.
#[derive(Debug, Clone)]
pub(crate) struct JobSpec {
    pub id: ProcId,
    pub name: Arc<str>,
    /// Its definition with the body it runs (see [`crate::graph::ProcNode::full_def`]).
    pub def: Arc<ProcDef>,
    /// The proto it was made from, with its placeholder values.
    pub proto: Option<crate::graph::ProtoId>,
    pub args: Vec<(String, String)>,
    pub dep_results: Map,
    pub changed_deps: Vec<String>,
    pub params: Map,
    pub attempt: u32,
    /// The watch cycle it runs in (0 for the first run).
    pub cycle: u32,
    pub cancel: CancellationToken,
    /// `ctx.input_fingerprint`.
    pub input_fingerprint: Dynamic,
}

impl JobSpec {
    /// The proc as a graph node, for resolving its `inputs` and `outputs`.
    pub(crate) fn node(&self) -> crate::graph::ProcNode {
        crate::graph::ProcNode::new(
            (*self.name).into(),
            self.def.clone(),
            self.proto,
            self.args.clone(),
        )
    }
}

/// Something to do once the core's lock is released.
pub(crate) enum Action {
    Start(Box<JobSpec>),
    /// Judge procs on a worker thread; the verdicts go to [`Core::judged_all`].
    Judge(Vec<JudgeSpec>),
    /// Open the task DB off the lock; the cache goes to [`Core::cache_opened`].
    OpenCache {
        open: CacheOpener,
        generation: u64,
    },
    Wake(mpsc::Sender<Wake>, Wake),
    Retry {
        id: ProcId,
        delay: Duration,
    },
    Cancel(CancellationToken),
    Started(Arc<str>),
    /// `--dry-run`: this proc would run this (a command line, or where its closure is).
    WouldRun {
        name: Arc<str>,
        what: String,
    },
    Retrying {
        name: Arc<str>,
        attempt: u32,
        error: String,
    },
    Finished(Box<ProcSummary>),
}

impl Action {
    /// True for the events that only inform the reporter.
    pub(crate) fn is_report(&self) -> bool {
        matches!(
            self,
            Action::Started(_)
                | Action::WouldRun { .. }
                | Action::Retrying { .. }
                | Action::Finished(_)
        )
    }
}

/// The run state of one proc, beside its [`crate::graph::ProcNode`].
#[derive(Debug)]
struct Run {
    state: State,
    resolved: bool,
    /// Unfinished dependencies (a `u32`: the run state of every proc is kept to the end).
    unmet: u32,
    /// Thin lists (one word each when empty, as most are).
    dep_ids: List<ProcId>,
    dependents: List<ProcId>,
    /// Ready, running, or blocked only by a missing dependency while the script runs:
    /// counts towards its wave.
    active: bool,
    holds_slot: bool,
    /// Holds its `resources` in the local budget (from its start to its end, waits
    /// included).
    holds_resources: bool,
    waiting: bool,
    /// Listed in `Core::missing_blocked` (see [`Core::deps_met`]).
    missing_blocked: bool,
    retry_pending: bool,
    /// Being judged on a worker thread ([`Action::Judge`]).
    judging: bool,
    locks_held: bool,
    attempts: u32,
    /// Since when it is ready to start (its dependencies done, or its retry due).
    ready_at: Moment,
    /// From its first start to its final state (see [`Live`]); none before and after.
    live: Option<Box<Live>>,
    started_at: WallTime,
    /// Boxed: most procs have none, and a run may hold many procs.
    fingerprint: Option<Box<Fingerprint>>,
    /// Counted as done by the dry runner (`--dry-run`) without running.
    dry: bool,
    /// SKIPPED by `no_change`: for its dependents it did not run (see
    /// [`Core::ran_this_cycle`]).
    unchanged: bool,
    duration: Span,
    result: Option<Dynamic>,
    exit_code: Option<i32>,
    /// Boxed: one word when absent (most procs print nothing and keep no log).
    log: Option<Box<std::path::PathBuf>>,
    /// What few procs have, boxed (one word when absent): a run may hold many procs.
    rare: Option<Box<Rare>>,
    /// Watch mode: its inputs (or a dependency) changed while it was running or being
    /// judged, so that attempt's outcome is stale (see [`Core::rerun`]).
    stale: bool,
    /// The watch cycle in which it last reached a final state (see [`Core::rerun`]).
    cycle: u32,
    /// [`Core::params_edits`] when it became ready, and again when it is judged: before
    /// it was judged, or would have been (see [`Core::never_fresh`]; a retry, or a wait
    /// for a lock, keeps it), and what its fingerprint's params are of. A
    /// `u32` fits in the padding of this struct, which a run keeps one of per proc; it
    /// would take 2^32 edits between a proc's readiness and its reset to match wrongly.
    edits: u32,
}

impl Run {
    fn new() -> Run {
        Run {
            state: State::Idle,
            resolved: false,
            unmet: 0,
            dep_ids: List::new(),
            dependents: List::new(),
            active: false,
            holds_slot: false,
            holds_resources: false,
            waiting: false,
            missing_blocked: false,
            retry_pending: false,
            judging: false,
            locks_held: false,
            attempts: 0,
            ready_at: Moment::NONE,
            live: None,
            started_at: WallTime::NONE,
            fingerprint: None,
            dry: false,
            unchanged: false,
            duration: Span::NONE,
            result: None,
            exit_code: None,
            log: None,
            rare: None,
            stale: false,
            cycle: 0,
            edits: 0,
        }
    }

    /// Its part while it runs, made when first written.
    fn live(&mut self) -> &mut Live {
        self.live.get_or_insert_default()
    }

    /// Each attempt so far, while it runs.
    fn attempt_log(&self) -> &[Attempt] {
        self.live.as_ref().map_or(&[], |l| &l.attempt_log)
    }

    /// Adds `d` to its dependencies; false when it is one already. Past a few, a set
    /// answers that: a proc with 100,000 dependencies is not checked in quadratic time.
    fn add_dep(&mut self, d: ProcId) -> bool {
        const SCANNED: usize = 16;
        if self.dep_ids.len() < SCANNED {
            if self.dep_ids.contains(&d) {
                return false;
            }
        } else {
            let set = &mut self.rare.get_or_insert_default().dep_set;
            if set.is_empty() {
                set.extend(self.dep_ids.iter().copied());
            }
            if !set.insert(d) {
                return false;
            }
        }
        self.dep_ids.push(d);
        true
    }

    /// Its rare part, made when first written.
    fn rare(&mut self) -> &mut Rare {
        self.rare.get_or_insert_default()
    }

    /// Dependencies not defined yet (`allow_missing_deps`), by name.
    fn missing(&self) -> &[String] {
        self.rare.as_ref().map_or(&[], |r| &r.missing)
    }

    /// Why it failed.
    fn error(&self) -> Option<&String> {
        self.rare.as_ref().and_then(|r| r.error.as_ref())
    }

    /// Sets why it failed (nothing is made for no error).
    fn set_error(&mut self, error: Option<String>) {
        if error.is_some() || self.rare.is_some() {
            self.rare().error = error;
        }
    }

    /// Where its last command ran, when on an executor.
    fn place(&self) -> Option<&String> {
        self.rare.as_ref().and_then(|r| r.place.as_ref())
    }
}

/// The part of a [`Run`] needed from its first start to its final state: dropped then
/// (and when it is reset), as a run of many procs keeps the run state of each to its end.
/// Made at the start, not when ready: a run makes many procs ready at once.
#[derive(Debug, Default)]
struct Live {
    /// How long it was ready but not started, before its first attempt.
    waited: Duration,
    first_start: Option<Instant>,
    /// Each attempt, for the task DB's picture of the run. An attempt still open when
    /// the proc reaches its final state keeps this part: it gives its lane back when it
    /// ends.
    attempt_log: Vec<Attempt>,
    cancel: Option<CancellationToken>,
}

/// The part of a [`Run`] that few procs have.
#[derive(Debug, Default)]
struct Rare {
    /// Dependencies not defined yet (`allow_missing_deps`), by name.
    missing: Vec<String>,
    /// Waiters (indices into `Core::waiters`) that wait for this proc.
    waiters: Vec<usize>,
    /// Why it failed.
    error: Option<String>,
    /// Where its last command ran, when on an executor.
    place: Option<String>,
    /// Its dependencies as a set, once they are too many to scan (see [`Run::add_dep`]).
    dep_set: std::collections::HashSet<ProcId>,
}

#[derive(Debug)]
struct Waiter {
    remaining: usize,
    job: Option<ProcId>,
    tx: mpsc::Sender<Wake>,
}

/// What a `when_scheduled` rule of a scheduled proc targets.
#[derive(Debug)]
enum WsTarget {
    Name(String),
    Pattern(crate::graph::pattern::Template),
}

/// The scheduler's state: the graph plus the run state of every proc.
pub(crate) struct Core {
    graph: Graph,
    runs: Vec<Run>,
    opts: CoreOptions,
    ready: ReadyQueue,
    locks: Locks,
    waves: Waves,
    /// Interactive procs: one at a time, alone.
    console: Console,
    lanes: Lanes,
    budget: Budget,
    /// The executors' slots and ready queues, by executor name.
    pools: Pools,
    resume: std::collections::VecDeque<usize>,
    /// The `when_scheduled` rules of scheduled, unfinished procs: the declarer and the
    /// target, found by the names they match.
    active_ws: Rules<(ProcId, WsTarget)>,
    /// The indices in `active_ws` of each declarer's rules, to drop them when it ends.
    ws_of: HashMap<ProcId, Vec<usize>>,
    awaiting_missing: HashMap<String, Vec<ProcId>>,
    resolved_missing: Vec<(ProcId, String)>,
    /// `when_scheduled` targets no proc or proto made when their declarers were scheduled:
    /// the name and its declarers. Defined later, the target is scheduled after them.
    awaiting_ws: HashMap<String, Vec<ProcId>>,
    /// Targets of `awaiting_ws` defined since, with a declarer each: (target, declarer).
    resolved_ws: Vec<(ProcId, ProcId)>,
    missing_blocked: Vec<ProcId>,
    pending_now: Vec<ProcId>,
    /// The procs the checks of queued `now` procs walked and found no fault in (see
    /// [`Core::admit_now`]): a later check stops at them. Emptied when they are flushed.
    now_reached: hashbrown::HashSet<ProcId>,
    /// The procs and protos a proc's body defined, by name, with the run of the body
    /// that did (see [`Core::defined_by_earlier_run`]).
    body_defs: [HashMap<String, (ProcId, u64)>; 2],
    waiters: Vec<Option<Waiter>>,
    all_waiters: Vec<mpsc::Sender<Wake>>,
    /// Local slots in use (running jobs not blocked in a wait, judging batches).
    running: usize,
    /// Procs in the RUNNING state, including those blocked in a wait.
    running_total: usize,
    /// Batches of judgings sent to a worker thread and not judged yet: an aborted run
    /// waits for them as for its running jobs (their closures may be running commands).
    judgings_out: usize,
    /// WANTED or RUNNING procs.
    pending: usize,
    failed: usize,
    timers: usize,
    script_running: bool,
    /// The run is over (its `defer` cleanups are running): nothing more is scheduled.
    ended: bool,
    aborted: Option<AbortReason>,
    /// Procs that were running when the run was interrupted.
    interrupted: Vec<String>,
    /// Top-level commands the interrupt terminated.
    interrupted_commands: Vec<String>,
    /// The task DB's cache, when there is a DB.
    cache: Option<Cache>,
    /// prun's own directories (the logs, the script's state): never part of a directory
    /// input (see `tree::OwnFiles`).
    own_dirs: [Option<std::path::PathBuf>; 2],
    /// The run's `--json` report, likewise left out of directory inputs.
    own_report: Option<std::path::PathBuf>,
    /// `prun list` and `prun graph`: no proc is judged (see [`Core::judge_nothing`]).
    judge_nothing: bool,
    /// How many times the params changed (see [`Core::set_params`]): the one part of a
    /// fingerprint that may change between a proc's readiness and its start.
    params_edits: u32,
    /// Opens the task DB when a proc first needs it (so that `set_options(#{ task_db })`
    /// can still choose another one before that).
    cache_opener: Option<CacheOpener>,
    /// The opener was handed out ([`Action::OpenCache`]) and has not answered yet.
    opening_cache: bool,
    /// Task DB writes of procs that ended while it was opening, made once it is open.
    unsaved: Vec<Unsaved>,
    /// Counts openers, so that the answer of one replaced meanwhile is ignored.
    cache_generation: u64,
    /// Procs to judge off the lock, sent as one [`Action::Judge`] that holds one slot.
    judging: Vec<JudgeSpec>,
    /// Handed to the procs being judged ([`JudgeSpec::cancel`]); cancelled by an abort
    /// that ends the running jobs, renewed when a watch cycle starts after one.
    judge_cancel: CancellationToken,
    actions: Vec<Action>,
    /// Watch mode: the current cycle (0 for the first run; see [`Core::rerun`]).
    cycle: u32,
    /// When the core was made: the run states' [`Moment`]s count from it.
    epoch: Epoch,
}

impl Core {
    /// An empty run.
    pub(crate) fn new(opts: CoreOptions) -> Core {
        Core {
            graph: Graph::default(),
            runs: Vec::new(),
            opts,
            ready: ReadyQueue::default(),
            locks: Locks::default(),
            waves: Waves::default(),
            console: Console::default(),
            lanes: Lanes::default(),
            budget: Budget::default(),
            pools: Pools::default(),
            resume: Default::default(),
            active_ws: Rules::default(),
            ws_of: HashMap::new(),
            awaiting_missing: HashMap::new(),
            resolved_missing: Vec::new(),
            awaiting_ws: HashMap::new(),
            resolved_ws: Vec::new(),
            missing_blocked: Vec::new(),
            pending_now: Vec::new(),
            now_reached: Default::default(),
            body_defs: Default::default(),
            waiters: Vec::new(),
            all_waiters: Vec::new(),
            running: 0,
            running_total: 0,
            judgings_out: 0,
            pending: 0,
            failed: 0,
            timers: 0,
            script_running: true,
            ended: false,
            aborted: None,
            interrupted: Vec::new(),
            interrupted_commands: Vec::new(),
            cache: None,
            own_dirs: [None, None],
            own_report: None,
            judge_nothing: false,
            params_edits: 0,
            cache_opener: None,
            opening_cache: false,
            unsaved: Vec::new(),
            cache_generation: 0,
            judging: Vec::new(),
            judge_cancel: CancellationToken::new(),
            actions: Vec::new(),
            cycle: 0,
            epoch: Epoch::now(),
        }
    }

    /// The graph of procs and protos.
    pub(crate) fn graph(&self) -> &Graph {
        &self.graph
    }

    /// Mutable access for what cannot create procs nor change a made proc's fingerprint
    /// (the separator, the answers of dependency and `arg_choices` closures).
    pub(crate) fn graph_mut(&mut self) -> &mut Graph {
        &mut self.graph
    }

    /// Merges `params` into the values every proc sees as `ctx.params` (`set_params`).
    /// A change of their text, which every fingerprint holds, is counted in
    /// [`Core::params_edits`]: a proc judged before it starts is judged again, and a retry
    /// runs without a fingerprint (saving no result). The same values set again change no
    /// fingerprint and are not counted.
    pub(crate) fn set_params(&mut self, params: Map) {
        let before = format!("{:?}", self.graph.params());
        self.graph.set_params(params);
        if format!("{:?}", self.graph.params()) != before {
            self.params_edits = self.params_edits.wrapping_add(1);
        }
    }

    /// Changes the parallel limit; raising it may start queued procs at once.
    pub(crate) fn set_parallel(&mut self, n: usize) {
        self.opts.parallel = n.max(1);
        self.pump();
    }

    /// Overrides or adds amounts of the local resource budget. Refused, changing nothing,
    /// when a declared proc or proto would then need more than the budget holds.
    pub(crate) fn set_budget(
        &mut self,
        amounts: &crate::graph::Resources,
    ) -> Result<(), GraphError> {
        let mut total = self.budget.total().clone();
        total.merge(amounts);
        for (_, node) in self.graph.procs() {
            over_budget(&total, "proc", &node.name, &node.def)?;
        }
        for proto in self.graph.protos() {
            over_budget(&total, "proto", proto.template.text(), &proto.def)?;
        }
        self.budget.merge(amounts);
        for q in self.budget.give(&crate::graph::Resources::default()) {
            self.enqueue(q);
        }
        self.pump();
        Ok(())
    }

    /// Declares an executor whose procs may run `limit` at once.
    pub(crate) fn declare_executor(&mut self, name: &str, limit: usize) {
        self.pools.declare(name, limit);
    }

    /// Checks a new definition: its executor is declared, and it fits the budget.
    fn check_def(&self, what: &str, name: &str, def: &ProcDef) -> Result<(), GraphError> {
        if let Some(e) = &def.extras().executor
            && !self.pools.has(e)
        {
            return Err(GraphError::Option(format!(
                "{what} \"{name}\": unknown executor \"{e}\" (declare it first: set_options(#{{ executors: #{{ {e}: #{{ kind: ... }} }} }}))"
            )));
        }
        // The budget (the host's, read on first use) only matters to a proc that needs some.
        if def.extras().resources.is_empty() {
            return Ok(());
        }
        over_budget(self.budget.total(), what, name, def)
    }

    /// Changes whether unknown dependencies are an error.
    pub(crate) fn set_allow_missing_deps(&mut self, allow: bool) {
        self.opts.allow_missing_deps = allow;
    }

    /// Where the logs go (left out of directory inputs, as the task DB is).
    pub(crate) fn set_log_root(&mut self, root: std::path::PathBuf) {
        self.own_dirs[0] = Some(root);
    }

    /// The script's state directory (left out of directory inputs, as the task DB is).
    pub(crate) fn set_state_dir(&mut self, dir: std::path::PathBuf) {
        self.own_dirs[1] = Some(dir);
    }

    /// The run's `--json` report file (left out of directory inputs, as the task DB is).
    pub(crate) fn set_report(&mut self, path: Option<std::path::PathBuf>) {
        self.own_report = path;
    }

    /// For `prun list` and `prun graph`: no proc is judged, so no `inputs` or `outputs`
    /// closure runs (nor the commands it runs): they have no task DB to tell what is up to
    /// date, and show nothing of it.
    pub(crate) fn judge_nothing(&mut self) {
        self.judge_nothing = true;
    }

    /// The run's `--json` report file, if it writes one to a file.
    pub(crate) fn report_path(&self) -> Option<&std::path::Path> {
        self.own_report.as_deref()
    }

    /// Sets how the task DB is opened when a proc first needs it (`None`: no DB).
    pub(crate) fn set_cache_opener(&mut self, opener: Option<CacheOpener>) {
        self.cache = None;
        self.cache_opener = opener;
        self.cache_generation += 1;
        self.opening_cache = false;
        self.unsaved.clear();
    }

    /// The task DB's opener when nothing asked for the DB yet, with its generation for
    /// [`Core::cache_opened`]: a run that ends before any proc needed it opens it then, to
    /// record how it ended.
    pub(crate) fn take_unused_cache_opener(&mut self) -> Option<(CacheOpener, u64)> {
        if self.cache.is_some() || self.opening_cache {
            return None;
        }
        let open = self.cache_opener.take()?;
        self.opening_cache = true;
        Some((open, self.cache_generation))
    }

    /// Detaches the task DB's cache (at the end of the run, to close it), after recording
    /// the parallel limit the run ended with.
    pub(crate) fn take_cache(&mut self) -> Option<Cache> {
        let mut cache = self.cache.take();
        if let Some(c) = &mut cache {
            c.record_parallel(self.opts.parallel);
        }
        cache
    }

    /// Empties the run's graph (names, definitions), run states and ready queue without
    /// freeing them, for a process that exits right after the run (the `prun` binary, see
    /// `CliExtras::exit_after` in `run.rs`): freeing some 10^5 small blocks one by one is a measurable
    /// part of a short run of many procs, and the exit returns the memory at once. Only
    /// memory is left: no value in them has a `Drop` with an effect (names, argument and
    /// option lists, Rhai values and function pointers, cancellation tokens, which a drop
    /// does not cancel, log paths). The rest of the core (the task DB and its opener, the
    /// waiters' channels, queued actions) is freed as usual when the core is dropped.
    ///
    /// Only a settled run is emptied: nothing wanted or running, no judging batch, retry
    /// timer or waiter, so no later call (a late Ctrl-C aborting the run) looks a proc up.
    /// Otherwise (a run an internal error ended, a fail-fast run with procs never
    /// started) everything stays and is freed as usual.
    pub(crate) fn leave_to_exit(&mut self) {
        let settled = self.pending == 0
            && self.running == 0
            && self.running_total == 0
            && self.pools.running() == 0
            && self.timers == 0
            && self.waiters.iter().all(Option::is_none)
            && self.all_waiters.is_empty();
        if !settled {
            return;
        }
        std::mem::forget(std::mem::take(&mut self.graph));
        std::mem::forget(std::mem::take(&mut self.runs));
        std::mem::forget(std::mem::take(&mut self.ready));
    }

    /// The task DB's cache, if any.
    pub(crate) fn cache(&self) -> Option<&Cache> {
        self.cache.as_ref()
    }

    /// True while the run has a task DB that is not open yet (it opens when the first
    /// proc needs it): what is read from it is not known yet, rather than absent.
    pub(crate) fn cache_pending(&self) -> bool {
        self.cache.is_none() && (self.cache_opener.is_some() || self.opening_cache)
    }

    /// True once a proc has started (the task DB can no longer be switched).
    pub(crate) fn any_started(&self) -> bool {
        self.runs
            .iter()
            .any(|r| r.state != State::Idle && r.state != State::Wanted)
    }

    /// Takes the actions recorded since the last call.
    pub(crate) fn take_actions(&mut self) -> Vec<Action> {
        std::mem::take(&mut self.actions)
    }

    /// Whether the run was aborted, and why.
    pub(crate) fn aborted(&self) -> Option<AbortReason> {
        self.aborted
    }

    // ---- definitions -------------------------------------------------------------------

    /// Declares a proc. If a scheduled proc was waiting for a dependency of this name, the
    /// new proc is scheduled for it.
    ///
    /// Like every operation that can create procs, it may fail with
    /// [`GraphError::Unresolved`] (see `prepare`) and is then retried: declaring the same
    /// definition again is not a duplicate. Once the proc is declared, `def` becomes the
    /// definition the graph keeps (one that says the same may be shared, see
    /// [`Graph::add_proc`]): the one to retry with.
    pub(crate) fn define_proc(
        &mut self,
        name: impl Into<ImmutableString>,
        def: &mut Arc<ProcDef>,
    ) -> Result<ProcId, GraphError> {
        let name = name.into();
        let (id, given) = match self.graph.lookup(&name) {
            Some(id) if Arc::ptr_eq(&self.graph.proc(id).def, def) => (id, None),
            _ => {
                self.check_def("proc", &name, def)?;
                let given = def.clone();
                (self.graph.add_proc(name, def)?, Some(given))
            }
        };
        self.sync_runs();
        // A new proc that cannot be settled is not kept: the call throws, and a retry
        // with closures' values defines it afresh.
        if let Err(e) = self.prepare(&[]).and_then(|()| self.admit_resolved()) {
            let Some(given) = given else {
                return Err(e);
            };
            let name = self.graph.proc(id).name.to_string();
            self.forget_since(id, self.graph.proto_len());
            *def = given;
            return Err(refused("proc", name, e));
        }
        if self.graph.proc(id).def.now
            && self.runs[id].state == State::Idle
            && !self.now_reached.contains(&id)
        {
            self.admit_now(id)?;
        }
        self.settle_missing()?;
        self.pump();
        Ok(id)
    }

    /// True when the proc (or, with `proto`, the proto) `name` was defined by an earlier
    /// run of the body of the proc `by` names (another attempt of a retried proc, or
    /// another watch cycle): that body defining it again gets the one it defined then,
    /// not an error that would fail every retry.
    pub(crate) fn defined_by_earlier_run(
        &self,
        proto: bool,
        name: &str,
        by: (ProcId, u64),
    ) -> bool {
        self.body_defs[usize::from(proto)]
            .get(name)
            .is_some_and(|&(p, run)| p == by.0 && run != by.1)
    }

    /// Records that the body run `by` defined the proc (or proto) `name`.
    pub(crate) fn defined_in_body(&mut self, proto: bool, name: &str, by: (ProcId, u64)) {
        self.body_defs[usize::from(proto)]
            .entry(name.to_string())
            .or_insert(by);
    }

    /// Declares a proto. Dependencies recorded as missing and `when_scheduled` targets
    /// recorded as awaited that it can create are created.
    pub(crate) fn define_proto(
        &mut self,
        pattern: &str,
        def: Arc<ProcDef>,
    ) -> Result<(), GraphError> {
        let known = self
            .graph
            .proto_named(pattern)
            .is_some_and(|p| Arc::ptr_eq(&self.graph.proto(p).def, &def));
        let first = (self.graph.len(), self.graph.proto_len());
        if !known {
            self.check_def("proto", pattern, &def)?;
            self.graph.add_proto(pattern, def)?;
        }
        // A new proto whose procs cannot be settled is not kept (see `define_proc`).
        if let Err(e) = self.make_awaited().and_then(|()| self.admit_resolved()) {
            if known {
                return Err(e);
            }
            self.forget_since(first.0, first.1);
            return Err(refused("proto", pattern.to_string(), e));
        }
        self.settle_missing()?;
        self.pump();
        Ok(())
    }

    /// Makes the procs the protos make of the names that dependents and `when_scheduled`
    /// declarers wait for.
    fn make_awaited(&mut self) -> Result<(), GraphError> {
        let names: Vec<String> = self
            .awaiting_missing
            .keys()
            .chain(self.awaiting_ws.keys())
            .cloned()
            .collect();
        let roots: Vec<Root<'_>> = names.iter().map(|n| Root::Name(n)).collect();
        self.prepare(&roots)?;
        for name in names {
            self.graph.resolve(&name)?;
        }
        self.sync_runs();
        Ok(())
    }

    /// The procs a name or glob stands for, created as needed, all or none (see
    /// [`Graph::expand`]). An operation retried with answers must not expand the same
    /// pattern again: a created name may equal the glob itself (a choice `*`), and would
    /// then be found instead of the expansion. It keeps what this returned.
    pub(crate) fn expand(&mut self, pattern: &str) -> Result<Vec<ProcId>, GraphError> {
        let out = self.graph.expand(pattern);
        self.sync_runs();
        out
    }

    /// After procs were created: those a waiting dependent had missing are scheduled for
    /// it.
    pub(crate) fn created(&mut self) -> Result<(), GraphError> {
        self.prepare(&[])?;
        self.settle_missing()?;
        self.pump();
        Ok(())
    }

    fn sync_runs(&mut self) {
        let (len, cap) = (self.runs.len(), self.runs.capacity());
        if self.graph.len() > cap {
            // Grown by a quarter, not doubled: a run state is large, and a run of many
            // procs would keep up to as much room again unused for its whole length.
            self.runs
                .reserve_exact((self.graph.len() - len).max(cap / 4));
        }
        while self.runs.len() < self.graph.len() {
            let id = self.runs.len();
            self.runs.push(Run::new());
            let node = self.graph.proc(id);
            if node.def.now {
                self.pending_now.push(id);
            }
            if let Some(waiting) = self.awaiting_missing.remove(&*node.name) {
                let name = node.name.to_string();
                self.resolved_missing
                    .extend(waiting.into_iter().map(|p| (p, name.clone())));
            }
            if let Some(declarers) = self.awaiting_ws.remove(&*node.name) {
                self.resolved_ws
                    .extend(declarers.into_iter().map(|x| (id, x)));
            }
        }
    }

    // ---- scheduling --------------------------------------------------------------------

    /// Schedules procs declared with `now` since the last call. When that needs answers
    /// of closures (`GraphError::Unresolved`) they stay queued, for the retry with the
    /// answers (see `Scheduler::graph_op`).
    pub(crate) fn flush_now(&mut self) -> Result<(), GraphError> {
        if self.pending_now.is_empty() {
            return Ok(());
        }
        let r = self.schedule_now();
        self.pump();
        r
    }

    /// `run` and `start`: schedules the queued `now` procs, then `ids`, and only then
    /// starts what is ready, so that they start together as the names of one
    /// `run([...])` do: a `now` proc of wave 0 started before the `run`'s proc of wave
    /// -1 was scheduled, and ran beside it.
    pub(crate) fn start_with_now(&mut self, ids: &[ProcId]) -> Result<(), GraphError> {
        if self.pending_now.is_empty() {
            return self.start(ids);
        }
        if self.ended {
            return Err(GraphError::RunEnded);
        }
        // The closures both need are answered before either is scheduled (`prepare`
        // walks the queued `now` procs too): a retry with the answers must not find the
        // `now` procs scheduled and free to start alone.
        if self.graph.has_protos() {
            let roots: Vec<Root<'_>> = ids.iter().map(|&id| Root::Proc(id)).collect();
            self.prepare(&roots)?;
        }
        // A fault met through what the call names leaves the `now` procs queued, as if the
        // call had not been made (scheduling is all or nothing); one met through them
        // alone is theirs, as their scheduling meets it.
        let now = self.pending_now.clone();
        if self.admit(&now).is_ok() {
            let all: Vec<ProcId> = now.iter().chain(ids).copied().collect();
            self.admit(&all)?;
        }
        let r = self.schedule_now().and_then(|()| self.schedule(ids));
        self.pump();
        r
    }

    /// Schedules the queued `now` procs without starting any. On
    /// `GraphError::Unresolved` they stay queued, for the retry with the answers; on a
    /// fault while the top level runs (a dependency missing with `allow_missing_deps`
    /// off), for its next `run`, `start` or `wait`, by which it may have defined what they
    /// missed: dropped, they never ran, and the run ended without a word of them.
    fn schedule_now(&mut self) -> Result<(), GraphError> {
        let ids = std::mem::take(&mut self.pending_now);
        self.now_reached.clear();
        let r = self.schedule(&ids);
        let keep = matches!(r, Err(GraphError::Unresolved(_))) || self.script_running;
        if r.is_err() && keep {
            self.pending_now = ids
                .into_iter()
                .filter(|&p| self.runs[p].state == State::Idle)
                .collect();
        }
        r
    }

    /// Schedules `now` procs created while the top-level script is blocked (by closures):
    /// they must not wait for a `run` that will never come.
    pub(crate) fn flush_if_script_blocked(&mut self) -> Result<(), GraphError> {
        if self.script_running {
            return Ok(());
        }
        self.flush_now()
    }

    /// `start`: moves IDLE procs to WANTED, schedules their dependencies, and starts what
    /// is ready. A graph fault (a cycle, a wave violation, a missing dependency in strict
    /// mode) is returned having scheduled nothing (see `admit`); one met later all the
    /// same (by procs scheduled earlier, which a proc defined now completes) fails the
    /// procs involved and is returned.
    pub(crate) fn start(&mut self, ids: &[ProcId]) -> Result<(), GraphError> {
        let r = self.schedule(ids);
        self.pump();
        r
    }

    /// [`Core::start`] without starting anything: the caller pumps.
    fn schedule(&mut self, ids: &[ProcId]) -> Result<(), GraphError> {
        if self.ended {
            return Err(GraphError::RunEnded);
        }
        // Without protos there is nothing to prepare (see `prepare`), nor a list of roots
        // to make for it.
        if self.graph.has_protos() {
            let roots: Vec<Root<'_>> = ids.iter().map(|&id| Root::Proc(id)).collect();
            self.prepare(&roots)?;
        }
        self.admit(ids)?;
        let mut work = Vec::with_capacity(ids.len());
        let mut first_err = None;
        for &id in ids {
            if let Err(e) = self.want(id, &mut work) {
                first_err.get_or_insert(e);
            }
        }
        if let Err(e) = self.process(work) {
            first_err.get_or_insert(e);
        }
        if let Err(e) = self.settle_missing() {
            first_err.get_or_insert(e);
        }
        first_err.map_or(Ok(()), Err)
    }

    /// The run is over: its scheduled procs have ended and its `defer` cleanups run. A
    /// proc a cleanup would schedule now would run after the report, or be left running
    /// when prun exits, so scheduling is an error ([`GraphError::RunEnded`]).
    pub(crate) fn end_scheduling(&mut self) {
        self.ended = true;
    }

    /// Whether the run is over ([`Core::end_scheduling`]): its `defer` cleanups run.
    pub(crate) fn scheduling_ended(&self) -> bool {
        self.ended
    }

    fn deps_met(&mut self, p: ProcId) {
        if !self.runs[p].missing().is_empty() {
            if self.script_running {
                // A flag, not a search of the list: 100,000 procs may wait for
                // dependencies the script defines later.
                if !std::mem::replace(&mut self.runs[p].missing_blocked, true) {
                    self.missing_blocked.push(p);
                }
                // It holds back the higher waves as a ready proc does: nothing else of
                // its wave may be left to do so (see `settle_missing`).
                self.activate(p);
            } else {
                self.fail_missing(p);
            }
            return;
        }
        if self.runs[p].ready_at.is_none() {
            self.runs[p].ready_at = self.epoch.moment();
            self.runs[p].edits = self.params_edits;
        }
        self.activate(p);
        self.enqueue(p);
    }

    /// Fails `p`, which still misses a dependency the script can no longer define.
    fn fail_missing(&mut self, p: ProcId) {
        let Some(dep) = self.runs[p].missing().first().cloned() else {
            return;
        };
        let hint = crate::graph::proc_hint(&self.graph, &dep);
        // Quoted as Rust does: a name a closure returned may hold a line break.
        self.fail_dep(p, format!("dependency {dep:?} missing{hint}"));
    }

    /// `p` is ready, running or blocked only by a dependency the script may still define:
    /// it counts towards its wave.
    fn activate(&mut self, p: ProcId) {
        if !self.runs[p].active {
            self.runs[p].active = true;
            self.waves.activate(self.graph.proc(p).def.extras().wave);
        }
    }

    fn enqueue(&mut self, p: ProcId) {
        match &self.graph.proc(p).def.extras().executor {
            Some(e) => self.pools.push(e, p),
            None => self.ready.push(p),
        }
    }

    /// Takes a slot for `p`: in its executor's pool, or a local one.
    fn take_slot(&mut self, p: ProcId) {
        self.runs[p].holds_slot = true;
        match &self.graph.proc(p).def.extras().executor {
            Some(e) => self.pools.take(e),
            None => self.running += 1,
        }
    }

    /// Gives `p`'s slot back, if it holds one.
    fn give_slot(&mut self, p: ProcId) {
        if !std::mem::take(&mut self.runs[p].holds_slot) {
            return;
        }
        match &self.graph.proc(p).def.extras().executor {
            Some(e) => self.pools.give(e),
            None => self.running -= 1,
        }
    }

    /// Whether a slot is free for `p`.
    fn slot_free(&self, p: ProcId) -> bool {
        match &self.graph.proc(p).def.extras().executor {
            Some(e) => self.pools.free(e),
            None => self.running < self.opts.parallel,
        }
    }

    fn deactivate(&mut self, p: ProcId) {
        if self.runs[p].active {
            self.runs[p].active = false;
            self.waves.deactivate(self.graph.proc(p).def.extras().wave);
        }
    }

    fn is_ready(&self, p: ProcId) -> bool {
        let r = &self.runs[p];
        r.state == State::Wanted
            && r.unmet == 0
            && r.missing().is_empty()
            && !r.retry_pending
            && !r.judging
    }

    /// Starts ready procs while slots are free.
    fn pump(&mut self) {
        self.pump_ready();
        self.send_judging();
    }

    fn pump_ready(&mut self) {
        if self.aborted.is_some() {
            // Nothing starts, but a body whose wait is over goes on.
            self.resume_waiters();
            return;
        }
        loop {
            // An interactive proc runs alone (unless it waits for another proc), and one
            // whose turn has come waits for the running procs to end.
            if self
                .console
                .holder()
                .is_some_and(|h| self.runs[h].holds_slot)
            {
                return;
            }
            if self.console.has_waiting() {
                if self.running > 0 || self.pools.running() > 0 {
                    return;
                }
                if let Some(p) = self.console.next().filter(|&p| self.is_ready(p)) {
                    self.launch(p);
                }
                continue;
            }
            self.resume_waiters();
            for p in self.waves.unblocked() {
                self.enqueue(p);
            }
            // A proc joining the batch of judgings being built needs no slot of its own.
            let local = !self.ready.is_empty()
                && (self.running < self.opts.parallel || self.next_joins_batch());
            if !local && !self.pools.any_startable() {
                return;
            }
            // Judging needs the task DB: until it is open, only a local proc that is never
            // judged starts (its DB writes wait in `unsaved`).
            if let Some(open) = self.cache_opener.take() {
                self.opening_cache = true;
                self.actions.push(Action::OpenCache {
                    open,
                    generation: self.cache_generation,
                });
            }
            let next = if self.opening_cache {
                match self.ready.peek() {
                    Some(p) if local && self.never_judged(p) => self.ready.pop(),
                    _ => return,
                }
            } else {
                match self.pools.pop_startable() {
                    Some(p) => Some(p),
                    None if local => self.ready.pop(),
                    None => None,
                }
            };
            let Some(p) = next else {
                return;
            };
            if !self.try_launch(p) {
                for q in self.locks.passed_over(p) {
                    self.enqueue(q);
                }
            }
        }
    }

    /// Lets the bodies whose waits are over go on, as far as slots are free.
    fn resume_waiters(&mut self) {
        let mut i = 0;
        while i < self.resume.len() {
            let w = self.resume[i];
            match self.waiters[w].as_ref().and_then(|w| w.job) {
                Some(j) if !self.slot_free(j) => i += 1,
                _ => {
                    self.resume.remove(i);
                    self.resume_waiter(w);
                }
            }
        }
    }

    /// Starts `p`, taken from the ready queue, unless something holds it back (it is
    /// parked on what does, or has failed); says whether it started.
    fn try_launch(&mut self, p: ProcId) -> bool {
        if !self.is_ready(p) {
            return false;
        }
        let def = self.graph.proc(p).def.clone();
        if self.waves.blocks(def.extras().wave) {
            self.waves.park(def.extras().wave, p);
            return false;
        }
        // Before judging: a proc that would be FAILED_DEP when run is not UP_TO_DATE
        // either, or its dependents would run on its cached result after a failure.
        if self.stopped_by_a_failure(p) {
            return false;
        }
        // The params changed since it was judged, waiting for a
        // lock or a slot: its fingerprint is not of what it would run with. It is judged
        // again; a retry runs without one, and saves no result.
        if self.runs[p].edits != self.params_edits {
            self.runs[p].fingerprint = None;
        }
        // Before judging: what the holder of a lock it names changes before letting go
        // (the params, its input files) must reach its verdict, as it reaches its run.
        if let Some(l) = self.locks.held(&def.extras().locks) {
            self.locks.park(l, p);
            return false;
        }
        if self.needs_judging(p) {
            match self.judge(p) {
                None => return false,
                Some(Judgement::Fresh(result)) => {
                    self.finish(p, State::UpToDate, Some(result), None, None);
                    return false;
                }
                Some(Judgement::Failed(e)) => {
                    self.fail(p, e, None);
                    return false;
                }
                Some(Judgement::Stale(fp)) => self.runs[p].fingerprint = Some(Box::new(fp)),
            }
        }
        if def.interactive && (self.running > 0 || self.pools.running() > 0) {
            self.console.wait(p);
            return false;
        }
        if uses_budget(&def) {
            let (runs, locks, graph, waves) = (&self.runs, &self.locks, &self.graph, &self.waves);
            // A reservation holds only while resources are all its proc waits for:
            // parked on a lock, it could wait for a proc that waits for one of those
            // held back; held back by a lower wave scheduled since it reserved, for a
            // proc of that wave that needs them.
            let wanted = |q: ProcId| {
                let extras = graph.proc(q).def.extras();
                runs[q].state == State::Wanted
                    && locks.held(&extras.locks).is_none()
                    && !waves.blocks(extras.wave)
            };
            if !self.budget.admit(p, &def.extras().resources, wanted) {
                return false;
            }
        }
        self.launch(p);
        true
    }

    /// Makes `p` FAILED_DEP when it says `NO_FAILURES` and a proc of the run has failed;
    /// says whether it did. Checked before `p` is judged and again on a verdict that it is
    /// UP_TO_DATE (a failure may come while it is judged): it is not UP_TO_DATE where
    /// running it is refused.
    fn stopped_by_a_failure(&mut self, p: ProcId) -> bool {
        let stopped = self.graph.proc(p).def.no_failures && self.failed > 0;
        if stopped {
            self.fail_dep(p, "run aborted: a proc has failed".into());
        }
        stopped
    }

    fn launch(&mut self, p: ProcId) {
        let def = self.graph.proc(p).full_def();
        self.take_slot(p);
        let node = self.graph.proc(p);
        let input_fingerprint = self.runs[p]
            .fingerprint
            .as_ref()
            .map_or(Dynamic::UNIT, |f| f.input_map());
        self.locks.take(&def.extras().locks, p);
        if def.interactive {
            self.console.take(p);
        }
        let mut dep_results = Map::new();
        let mut changed_deps = Vec::new();
        for &d in &self.runs[p].dep_ids {
            let dn = &self.graph.proc(d).name;
            let dr = &self.runs[d];
            dep_results.insert((**dn).into(), dr.result.clone().unwrap_or(Dynamic::UNIT));
            if self.ran_this_cycle(d) {
                changed_deps.push(dn.to_string());
            }
        }
        let cancel = CancellationToken::new();
        let r = &mut self.runs[p];
        r.locks_held = !def.extras().locks.is_empty();
        r.state = State::Running;
        if uses_budget(&def) {
            r.holds_resources = true;
            self.budget.take(&def.extras().resources);
        }
        r.attempts += 1;
        let first = r.attempts == 1;
        let ready = r.ready_at.take();
        if r.started_at.is_none() {
            r.started_at = WallTime::of(std::time::SystemTime::now());
        }
        if let Some(cache) = self.cache.as_mut() {
            cache.begin();
        }
        let live = r.live();
        // A retry's wait is between its attempts, inside its duration: not counted again.
        if let Some(ready) = ready
            && first
        {
            live.waited += self.epoch.since(ready);
        }
        // Room for one attempt, not the four a first push makes: most procs run once.
        live.attempt_log.reserve_exact(1);
        live.attempt_log.push(Attempt::new(self.lanes.take()));
        live.first_start.get_or_insert_with(Instant::now);
        live.cancel = Some(cancel.clone());
        self.running_total += 1;
        let name: Arc<str> = Arc::from(&*node.name);
        if r.attempts == 1 {
            self.actions.push(Action::Started(name.clone()));
        }
        let spec = JobSpec {
            id: p,
            name,
            def,
            proto: node.proto(),
            args: node.args().to_vec(),
            dep_results,
            changed_deps,
            params: self.graph.params().clone(),
            attempt: r.attempts,
            cycle: self.cycle,
            cancel,
            input_fingerprint,
        };
        self.actions.push(Action::Start(Box::new(spec)));
    }

    fn release(&mut self, p: ProcId) {
        self.console.release(p);
        self.give_slot(p);
        let r = &mut self.runs[p];
        if r.holds_resources {
            r.holds_resources = false;
            let def = self.graph.proc(p).def.clone();
            if r.waiting {
                self.budget.resume(&def.extras().resources);
            }
            for q in self.budget.give(&def.extras().resources) {
                self.enqueue(q);
            }
        }
        let r = &mut self.runs[p];
        if r.locks_held {
            r.locks_held = false;
            let def = self.graph.proc(p).def.clone();
            for q in self.locks.release(&def.extras().locks, p) {
                self.enqueue(q);
            }
        }
    }

    /// A command of the running proc `p` ran on an executor, at `place` (the SSH host, or
    /// the Slurm job).
    pub(crate) fn placed(&mut self, p: ProcId, place: String) {
        if self.runs[p].state == State::Running {
            self.runs[p].rare().place = Some(place);
        }
    }

    // ---- queries -----------------------------------------------------------------------

    /// A command of the script's top level (`` `cmd` (main.rhai:3:1) ``) that the interrupt
    /// terminated: it is named after the procs that were running.
    pub(crate) fn interrupted_command(&mut self, command: String) {
        self.interrupted_commands.push(command);
    }

    /// Procs that were running when the run was interrupted, then the top-level commands
    /// it terminated.
    pub(crate) fn interrupted_procs(&self) -> Vec<String> {
        [&self.interrupted[..], &self.interrupted_commands[..]].concat()
    }

    /// The procs a scheduled proc depends on (resolved: globs expanded, protos
    /// instantiated); empty for a proc never scheduled.
    pub(crate) fn deps_of(&self, p: ProcId) -> &[ProcId] {
        &self.runs[p].dep_ids
    }

    /// How many procs the dry runner (`--dry-run`) counted as would-run.
    pub(crate) fn would_run_count(&self) -> usize {
        self.runs.iter().filter(|r| r.dry).count()
    }

    /// The state of a proc.
    pub(crate) fn state(&self, p: ProcId) -> State {
        self.runs[p].state
    }

    /// Summary of one proc.
    pub(crate) fn summary(&self, p: ProcId) -> ProcSummary {
        let r = &self.runs[p];
        ProcSummary {
            name: Arc::from(&*self.graph.proc(p).name),
            state: r.state,
            result: r.result.clone(),
            error: r.error().cloned(),
            started: r.started_at.get(),
            duration: r.duration.get(),
            exit_code: r.exit_code,
            log: r.log.as_deref().cloned(),
            place: r.place().cloned(),
            executor: self.graph.proc(p).def.extras().executor.clone(),
            resources: self.graph.proc(p).def.extras().resources.clone(),
        }
    }

    /// Ids of the scheduled (not IDLE) procs whose names match a glob.
    pub(crate) fn scheduled_matching(&self, pattern: &str) -> Vec<ProcId> {
        self.graph
            .matching(pattern)
            .filter(|&id| self.runs[id].state != State::Idle)
            .collect()
    }

    /// For the live display's header: how many procs left IDLE, the names of those
    /// still WANTED (queued, or waiting for dependencies), and the parallel limit.
    pub(crate) fn queue_view(&self) -> QueueView {
        let mut view = QueueView {
            scheduled: 0,
            wanted: Vec::new(),
            parallel: self.opts.parallel,
        };
        for (p, r) in self.runs.iter().enumerate() {
            match r.state {
                State::Idle => continue,
                State::Wanted => view.wanted.push(Arc::from(&*self.graph.proc(p).name)),
                _ => {}
            }
            view.scheduled += 1;
        }
        view
    }

    /// How many procs left IDLE (what [`Core::scheduled`] yields).
    pub(crate) fn scheduled_len(&self) -> usize {
        self.runs.iter().filter(|r| r.state != State::Idle).count()
    }

    /// The scheduled (not IDLE) procs with `when_scheduled` rules, in registration order.
    pub(crate) fn when_scheduled_declarers(&self) -> Vec<ProcId> {
        (0..self.runs.len())
            .filter(|&p| {
                self.runs[p].state != State::Idle
                    && !self.graph.proc(p).def.extras().when_scheduled.is_empty()
            })
            .collect()
    }

    /// Every proc that left IDLE, in registration order.
    pub(crate) fn scheduled(&self) -> impl Iterator<Item = ProcSummary> + '_ {
        (0..self.runs.len())
            .filter(|&p| self.runs[p].state != State::Idle)
            .map(|p| self.summary(p))
    }
}

/// Whether a proc's resources count against the local budget: it declares some, and its
/// commands run on this machine.
fn uses_budget(def: &ProcDef) -> bool {
    def.extras().executor.is_none() && !def.extras().resources.is_empty()
}

/// The error for a definition that needs more of a resource than the local budget holds
/// in all: it could never start.
fn over_budget(
    budget: &crate::graph::Resources,
    what: &str,
    name: &str,
    def: &ProcDef,
) -> Result<(), GraphError> {
    if def.extras().executor.is_some() {
        return Ok(());
    }
    let Some((res, need, have)) = budget.exceeded_by(&def.extras().resources) else {
        return Ok(());
    };
    use crate::graph::resources::amount;
    let have = if budget.has(res) {
        format!("the budget has {}", amount(res, have))
    } else {
        let hint = crate::suggest::hint(res, budget.iter().map(|(name, _)| name), "`");
        format!(
            "the budget has no `{res}`{hint} (declare it: set_options(#{{ resources: #{{ {res}: N }} }}))"
        )
    };
    Err(GraphError::Option(format!(
        "{what} \"{name}\" needs {res} {} but {have}: it could never start",
        amount(res, need)
    )))
}

mod admit;
mod clock;
mod cycle;
mod judging;
mod outcomes;
mod prepare;
mod queue;
mod record;
mod rerun;
mod resolve;
mod waiting;

use clock::{Epoch, Moment, Span, WallTime};
use queue::{Budget, Console, Lanes, Locks, Pools, ReadyQueue, Waves};
use record::{Attempt, Unsaved};

pub(crate) use prepare::Root;

/// The error of a definition refused for `fault` (see [`Core::admit_resolved`]); a lack
/// of closures' values is no fault, but a call for them before a retry.
fn refused(what: &'static str, name: String, fault: GraphError) -> GraphError {
    match fault {
        GraphError::Unresolved(_) => fault,
        fault => GraphError::Refused {
            what,
            name,
            fault: Box::new(fault),
        },
    }
}

#[cfg(test)]
#[path = "core_tests.rs"]
mod tests;

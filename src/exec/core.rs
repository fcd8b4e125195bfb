//! The run state of every proc and the rules that decide what starts next.
//!
//! Theory of operation: [`Core`] is the one owner of run state. Every change arrives as a
//! call (a script asks to run or wait, a job finishes, a retry timer fires); each call
//! updates counters and queues incrementally and records [`Action`]s (start a job, wake a
//! waiter, report a line) that the caller carries out after releasing the lock. Nothing
//! here scans every proc per event:
//!
//! - each WANTED proc counts its unfinished dependencies (`unmet`); a finishing proc
//!   decrements its dependents' counters and queues those that reach zero;
//! - ready procs wait in a heap ordered by registration (ties go to the earliest proc, as in
//!   parproc); a proc blocked by a held lock or a lower wave is parked on that lock or wave
//!   and re-queued only when it frees;
//! - waves are a count of ready-or-running procs per wave, so "is a lower wave busy" is the
//!   first key of a map.
//!
//! Nothing may hang: when no job is running, no timer is pending and the script itself is
//! blocked, whatever still waits can never proceed, and it is failed with a reason (a
//! dependency cycle, a proc waiting for itself, a missing dependency) instead.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashMap};
use std::sync::Arc;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use rhai::{Dynamic, Map};
use tokio_util::sync::CancellationToken;

use super::cache::{self, Cache, Fingerprint};
use super::state::{Outcome, State};
use crate::graph::{Body, Graph, GraphError, ProcDef, ProcId, RuleSource, fill_text};

/// Opens the task DB: `None` when there is none (or it cannot be used).
pub type CacheOpener = Box<dyn FnOnce() -> Option<Cache> + Send>;

/// Run-wide options the scheduler obeys.
#[derive(Debug, Clone)]
pub struct CoreOptions {
    pub parallel: usize,
    pub allow_missing_deps: bool,
    pub fail_fast: bool,
    /// `--dry-run`: a proc that would run is reported and counted as done, not started.
    pub dry_run: bool,
}

/// Why the run stopped scheduling.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AbortReason {
    FailFast,
    Interrupted,
    ScriptError,
}

/// Why a blocked `wait` returned.
#[derive(Debug, Clone, PartialEq)]
pub enum Wake {
    /// Everything waited for is complete.
    Done,
    /// It can never complete; the message says why.
    Deadlock(String),
    /// The run was aborted.
    Aborted(AbortReason),
}

/// A job to start, handed to the executor.
#[derive(Debug, Clone)]
pub struct JobSpec {
    pub id: ProcId,
    pub name: Arc<str>,
    pub def: Arc<ProcDef>,
    pub args: Vec<(String, String)>,
    pub dep_results: Map,
    pub changed_deps: Vec<String>,
    pub params: Map,
    pub attempt: u32,
    pub cancel: CancellationToken,
    /// `ctx.input_fingerprint`.
    pub input_fingerprint: Dynamic,
}

/// One finished proc, for the reporter.
#[derive(Debug, Clone)]
pub struct Finished {
    pub name: Arc<str>,
    pub state: State,
    pub duration: Option<Duration>,
    pub error: Option<String>,
    pub log: Option<std::path::PathBuf>,
    pub exit_code: Option<i32>,
}

/// Something to do once the core's lock is released.
#[derive(Debug)]
pub enum Action {
    Start(Box<JobSpec>),
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
    Finished(Box<Finished>),
}

impl Action {
    /// True for the events that only inform the reporter.
    pub fn is_report(&self) -> bool {
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
    unmet: usize,
    dep_ids: Vec<ProcId>,
    missing: Vec<String>,
    dependents: Vec<ProcId>,
    /// Ready or running: counts towards its wave.
    active: bool,
    queued: bool,
    holds_slot: bool,
    waiting: bool,
    retry_pending: bool,
    locks_held: bool,
    attempts: u32,
    first_start: Option<Instant>,
    started_at: Option<std::time::SystemTime>,
    fingerprint: Option<Fingerprint>,
    /// Counted as done by `--dry-run` without running.
    dry: bool,
    duration: Option<Duration>,
    result: Option<Dynamic>,
    error: Option<String>,
    exit_code: Option<i32>,
    log: Option<std::path::PathBuf>,
    cancel: Option<CancellationToken>,
    waiters: Vec<usize>,
}

impl Run {
    fn new() -> Run {
        Run {
            state: State::Idle,
            resolved: false,
            unmet: 0,
            dep_ids: Vec::new(),
            missing: Vec::new(),
            dependents: Vec::new(),
            active: false,
            queued: false,
            holds_slot: false,
            waiting: false,
            retry_pending: false,
            locks_held: false,
            attempts: 0,
            first_start: None,
            started_at: None,
            fingerprint: None,
            dry: false,
            duration: None,
            result: None,
            error: None,
            exit_code: None,
            log: None,
            cancel: None,
            waiters: Vec::new(),
        }
    }
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

/// A summary of one proc for `results()`, `state()` and the final report.
#[derive(Debug, Clone)]
pub struct ProcSummary {
    pub name: Arc<str>,
    pub state: State,
    pub result: Option<Dynamic>,
    pub error: Option<String>,
    /// When its first attempt started (wall clock).
    pub started: Option<std::time::SystemTime>,
    /// From its first start to its end.
    pub duration: Option<Duration>,
    pub exit_code: Option<i32>,
    pub log: Option<std::path::PathBuf>,
}

/// The scheduler's state: the graph plus the run state of every proc.
pub struct Core {
    graph: Graph,
    runs: Vec<Run>,
    opts: CoreOptions,
    ready: BinaryHeap<Reverse<ProcId>>,
    lock_holders: HashMap<String, ProcId>,
    lock_parked: HashMap<String, Vec<ProcId>>,
    wave_active: BTreeMap<i64, usize>,
    wave_parked: BTreeMap<i64, Vec<ProcId>>,
    resume: std::collections::VecDeque<usize>,
    active_ws: Vec<(ProcId, WsTarget)>,
    awaiting_missing: HashMap<String, Vec<ProcId>>,
    resolved_missing: Vec<(ProcId, String)>,
    missing_blocked: Vec<ProcId>,
    pending_now: Vec<ProcId>,
    waiters: Vec<Option<Waiter>>,
    all_waiters: Vec<mpsc::Sender<Wake>>,
    /// Slots in use (running jobs not blocked in a wait).
    running: usize,
    /// Procs in the RUNNING state, including those blocked in a wait.
    running_total: usize,
    /// WANTED or RUNNING procs.
    pending: usize,
    failed: usize,
    timers: usize,
    script_running: bool,
    aborted: Option<AbortReason>,
    /// Procs that were running when the run was interrupted.
    interrupted: Vec<String>,
    /// The task DB's cache, when there is a DB.
    cache: Option<Cache>,
    /// Opens the task DB when a proc first needs it (so that `set_options(#{ task_db })`
    /// can still choose another one before that).
    cache_opener: Option<CacheOpener>,
    actions: Vec<Action>,
}

impl Core {
    /// An empty run.
    pub fn new(opts: CoreOptions) -> Core {
        Core {
            graph: Graph::default(),
            runs: Vec::new(),
            opts,
            ready: BinaryHeap::new(),
            lock_holders: HashMap::new(),
            lock_parked: HashMap::new(),
            wave_active: BTreeMap::new(),
            wave_parked: BTreeMap::new(),
            resume: Default::default(),
            active_ws: Vec::new(),
            awaiting_missing: HashMap::new(),
            resolved_missing: Vec::new(),
            missing_blocked: Vec::new(),
            pending_now: Vec::new(),
            waiters: Vec::new(),
            all_waiters: Vec::new(),
            running: 0,
            running_total: 0,
            pending: 0,
            failed: 0,
            timers: 0,
            script_running: true,
            aborted: None,
            interrupted: Vec::new(),
            cache: None,
            cache_opener: None,
            actions: Vec::new(),
        }
    }

    /// The graph of procs and protos.
    pub fn graph(&self) -> &Graph {
        &self.graph
    }

    /// Mutable access for definitions that cannot create procs (separator, params).
    pub fn graph_mut(&mut self) -> &mut Graph {
        &mut self.graph
    }

    /// Current options.
    pub fn options(&self) -> &CoreOptions {
        &self.opts
    }

    /// Changes the parallel limit; raising it may start queued procs at once.
    pub fn set_parallel(&mut self, n: usize) {
        self.opts.parallel = n.max(1);
        self.pump();
    }

    /// Changes whether unknown dependencies are an error.
    pub fn set_allow_missing_deps(&mut self, allow: bool) {
        self.opts.allow_missing_deps = allow;
    }

    /// Sets how the task DB is opened when a proc first needs it (`None`: no DB).
    pub fn set_cache_opener(&mut self, opener: Option<CacheOpener>) {
        self.cache = None;
        self.cache_opener = opener;
    }

    fn ensure_cache(&mut self) {
        if let Some(open) = self.cache_opener.take() {
            self.cache = open();
        }
    }

    /// Detaches the task DB's cache (at the end of the run, to close it).
    pub fn take_cache(&mut self) -> Option<Cache> {
        self.cache.take()
    }

    /// The task DB's cache, if any.
    pub fn cache(&self) -> Option<&Cache> {
        self.cache.as_ref()
    }

    /// True once a proc has started (the task DB can no longer be switched).
    pub fn any_started(&self) -> bool {
        self.runs
            .iter()
            .any(|r| r.state != State::Idle && r.state != State::Wanted)
    }

    /// Takes the actions recorded since the last call.
    pub fn take_actions(&mut self) -> Vec<Action> {
        std::mem::take(&mut self.actions)
    }

    /// Whether the run was aborted, and why.
    pub fn aborted(&self) -> Option<AbortReason> {
        self.aborted
    }

    // ---- definitions -------------------------------------------------------------------

    /// Declares a proc. If a scheduled proc was waiting for a dependency of this name, the
    /// new proc is scheduled for it.
    pub fn define_proc(&mut self, name: &str, def: Arc<ProcDef>) -> Result<ProcId, GraphError> {
        let id = self.graph.add_proc(name, def)?;
        self.sync_runs();
        self.settle_missing()?;
        self.pump();
        Ok(id)
    }

    /// Declares a proto. Dependencies recorded as missing that it can create are created.
    pub fn define_proto(&mut self, pattern: &str, def: Arc<ProcDef>) -> Result<(), GraphError> {
        self.graph.add_proto(pattern, def)?;
        let names: Vec<String> = self.awaiting_missing.keys().cloned().collect();
        for name in names {
            self.graph.resolve(&name)?;
        }
        self.sync_runs();
        self.settle_missing()?;
        self.pump();
        Ok(())
    }

    /// `create(pattern)`: the procs a name or glob stands for, created as needed.
    pub fn create(&mut self, pattern: &str) -> Result<Vec<ProcId>, GraphError> {
        let out = self.graph.expand(pattern);
        self.sync_runs();
        self.settle_missing()?;
        self.pump();
        out
    }

    fn sync_runs(&mut self) {
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
        }
    }

    // ---- scheduling --------------------------------------------------------------------

    /// Schedules procs declared with `now` since the last call.
    pub fn flush_now(&mut self) -> Result<(), GraphError> {
        if self.pending_now.is_empty() {
            return Ok(());
        }
        let ids = std::mem::take(&mut self.pending_now);
        self.start(&ids)
    }

    /// `start`: moves IDLE procs to WANTED, schedules their dependencies, and starts what
    /// is ready. Errors (a cycle, a wave violation, a missing dependency in strict mode)
    /// fail the procs involved and are returned to the caller.
    pub fn start(&mut self, ids: &[ProcId]) -> Result<(), GraphError> {
        let mut work = Vec::new();
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
        self.pump();
        first_err.map_or(Ok(()), Err)
    }

    fn want(&mut self, id: ProcId, work: &mut Vec<ProcId>) -> Result<(), GraphError> {
        if self.runs[id].state != State::Idle {
            return Ok(());
        }
        self.runs[id].state = State::Wanted;
        self.pending += 1;
        work.push(id);
        let injected = self
            .inject_rdeps(id)
            .and_then(|()| self.when_scheduled(id, work));
        if let Err(e) = &injected {
            self.fail(id, e.to_string(), None);
        }
        injected
    }

    /// Appends to `x`'s dependency names every proc whose rdep rule matches `x`.
    fn inject_rdeps(&mut self, x: ProcId) -> Result<(), GraphError> {
        let name = self.graph.proc(x).name.clone();
        let mut inject: Vec<String> = Vec::new();
        let mut create: Vec<(usize, Vec<(String, String)>)> = Vec::new();
        for rule in self.graph.rdep_rules() {
            let Some(extracted) = rule.pattern.matches(&name) else {
                continue;
            };
            match rule.source {
                RuleSource::Proc(d) if d != x => inject.push(self.graph.proc(d).name.to_string()),
                RuleSource::Proc(_) => {}
                RuleSource::Proto(p) => {
                    let proto = self.graph.proto(p);
                    if proto.template.matches(&name).is_some() {
                        continue;
                    }
                    let params: Vec<&str> = proto.template.params().collect();
                    let covered = params.iter().all(|p| extracted.iter().any(|(k, _)| k == p));
                    if covered {
                        let args = params
                            .iter()
                            .map(|p| {
                                let v = &extracted.iter().find(|(k, _)| k == p).expect("covered").1;
                                (p.to_string(), v.clone())
                            })
                            .collect();
                        create.push((p, args));
                    } else {
                        for &inst in &proto.instances {
                            inject.push(self.graph.proc(inst).name.to_string());
                        }
                    }
                }
            }
        }
        for (proto, args) in create {
            let id = self.graph.instantiate(proto, args)?;
            inject.push(self.graph.proc(id).name.to_string());
        }
        self.sync_runs();
        for (d, target) in &self.active_ws {
            let hit = match target {
                WsTarget::Name(t) => **t == *name,
                WsTarget::Pattern(t) => t.matches(&name).is_some(),
            };
            if hit && *d != x {
                inject.push(self.graph.proc(*d).name.to_string());
            }
        }
        for dep in inject {
            self.graph.add_dep_name(x, &dep);
        }
        Ok(())
    }

    /// Processes `x`'s `when_scheduled` rules: each target is created if a proto makes it,
    /// gets `x` as a dependency, and is scheduled.
    fn when_scheduled(&mut self, x: ProcId, work: &mut Vec<ProcId>) -> Result<(), GraphError> {
        let node = self.graph.proc(x);
        if node.def.when_scheduled.is_empty() {
            return Ok(());
        }
        let name = node.name.clone();
        let rules: Vec<(String, Result<String, GraphError>)> = node
            .def
            .when_scheduled
            .iter()
            .map(|p| (p.clone(), fill_text(p, &node.args)))
            .collect();
        for (pattern, filled) in rules {
            let Ok(target) = filled else {
                let sep = self.graph.separator().to_string();
                if let Ok(t) = crate::graph::pattern::Template::parse(&pattern, &sep) {
                    self.active_ws.push((x, WsTarget::Pattern(t)));
                }
                continue;
            };
            self.active_ws.push((x, WsTarget::Name(target.clone())));
            let Some(t) = self.graph.resolve(&target)? else {
                continue;
            };
            self.sync_runs();
            let state = self.runs[t].state;
            if state == State::Running || state.is_complete() {
                return Err(GraphError::TooLate {
                    declarer: name.to_string(),
                    target,
                    state: state.to_string(),
                });
            }
            let added = self.graph.add_dep_name(t, &name);
            match state {
                State::Idle => self.want(t, work)?,
                State::Wanted if added && self.runs[t].resolved => {
                    self.add_late_edge(t, x, work)?;
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// Resolves the dependencies of newly WANTED procs, schedules them, checks waves and
    /// cycles, and queues whatever is ready.
    fn process(&mut self, mut work: Vec<ProcId>) -> Result<(), GraphError> {
        let mut first_err: Option<GraphError> = None;
        let mut new = Vec::new();
        let mut i = 0;
        while i < work.len() {
            let p = work[i];
            i += 1;
            if self.runs[p].state != State::Wanted {
                continue;
            }
            new.push(p);
            self.runs[p].resolved = true;
            let deps = self.graph.proc(p).deps.clone();
            for dep in deps {
                if let Err(e) = self.resolve_edge(p, &dep, &mut work) {
                    if self.runs[p].state == State::Wanted {
                        self.fail(p, e.to_string(), None);
                    }
                    first_err.get_or_insert(e);
                }
            }
        }
        if let Some(cycle) = self.find_cycle(&new) {
            let err = GraphError::Cycle(
                cycle
                    .iter()
                    .map(|&c| self.graph.proc(c).name.to_string())
                    .collect(),
            );
            for &c in &cycle {
                if self.runs[c].state == State::Wanted {
                    self.fail(c, err.to_string(), None);
                }
            }
            first_err.get_or_insert(err);
        }
        for p in new {
            if self.runs[p].state == State::Wanted && self.runs[p].unmet == 0 {
                self.deps_met(p);
            }
        }
        first_err.map_or(Ok(()), Err)
    }

    fn resolve_edge(
        &mut self,
        p: ProcId,
        dep: &str,
        work: &mut Vec<ProcId>,
    ) -> Result<(), GraphError> {
        if crate::graph::pattern::is_glob(dep) {
            let ids = self.graph.expand(dep);
            self.sync_runs();
            for d in ids? {
                self.edge(p, d, work)?;
            }
            return Ok(());
        }
        let resolved = self.graph.resolve(dep);
        self.sync_runs();
        match resolved? {
            Some(d) => self.edge(p, d, work),
            None if !self.opts.allow_missing_deps => Err(GraphError::MissingDep {
                dependent: self.graph.proc(p).name.to_string(),
                dep: dep.to_string(),
            }),
            None => {
                self.runs[p].missing.push(dep.to_string());
                self.awaiting_missing
                    .entry(dep.to_string())
                    .or_default()
                    .push(p);
                Ok(())
            }
        }
    }

    /// Makes `p` depend on `d`, scheduling `d` if it is IDLE.
    fn edge(&mut self, p: ProcId, d: ProcId, work: &mut Vec<ProcId>) -> Result<(), GraphError> {
        let (pw, dw) = (self.graph.proc(p).def.wave, self.graph.proc(d).def.wave);
        if dw > pw {
            return Err(GraphError::WaveViolation {
                dependent: self.graph.proc(p).name.to_string(),
                dependent_wave: pw,
                dep: self.graph.proc(d).name.to_string(),
                dep_wave: dw,
            });
        }
        if self.runs[p].dep_ids.contains(&d) {
            return Ok(());
        }
        self.runs[p].dep_ids.push(d);
        if self.runs[d].state == State::Idle {
            self.want(d, work)?;
        }
        let state = self.runs[d].state;
        if state.is_success() {
            return Ok(());
        }
        if state.is_failure() {
            let why = format!("dependency \"{}\" failed", self.graph.proc(d).name);
            self.fail_dep(p, why);
            return Ok(());
        }
        self.runs[p].unmet += 1;
        self.runs[d].dependents.push(p);
        Ok(())
    }

    /// Adds a dependency to a proc whose dependencies were already resolved.
    fn add_late_edge(
        &mut self,
        p: ProcId,
        d: ProcId,
        work: &mut Vec<ProcId>,
    ) -> Result<(), GraphError> {
        let was_ready = self.runs[p].unmet == 0 && self.runs[p].missing.is_empty();
        self.edge(p, d, work)?;
        if was_ready && self.runs[p].unmet > 0 {
            self.deactivate(p);
        }
        if let Some(cycle) = self.path(d, p) {
            let mut names: Vec<String> = vec![self.graph.proc(p).name.to_string()];
            names.extend(cycle.iter().map(|&c| self.graph.proc(c).name.to_string()));
            let err = GraphError::Cycle(names);
            self.fail(p, err.to_string(), None);
            return Err(err);
        }
        Ok(())
    }

    /// Handles dependencies that were missing and have since been defined.
    fn settle_missing(&mut self) -> Result<(), GraphError> {
        let mut first_err = None;
        while !self.resolved_missing.is_empty() {
            let batch = std::mem::take(&mut self.resolved_missing);
            let mut work = Vec::new();
            for (p, name) in batch {
                if self.runs[p].state != State::Wanted {
                    continue;
                }
                self.runs[p].missing.retain(|m| *m != name);
                let d = self.graph.lookup(&name).expect("defined");
                if let Err(e) = self.add_late_edge(p, d, &mut work) {
                    first_err.get_or_insert(e);
                }
                if self.runs[p].state == State::Wanted && self.runs[p].unmet == 0 {
                    self.missing_blocked.retain(|&b| b != p);
                    work.push(p);
                }
            }
            let fresh: Vec<ProcId> = work
                .iter()
                .copied()
                .filter(|&w| !self.runs[w].resolved)
                .collect();
            if let Err(e) = self.process(fresh) {
                first_err.get_or_insert(e);
            }
            for p in work {
                if self.runs[p].state == State::Wanted
                    && self.runs[p].unmet == 0
                    && !self.runs[p].active
                {
                    self.deps_met(p);
                }
            }
        }
        first_err.map_or(Ok(()), Err)
    }

    /// A cycle among the WANTED procs reachable from `new`, if any (DFS, three colours).
    fn find_cycle(&self, new: &[ProcId]) -> Option<Vec<ProcId>> {
        #[derive(Clone, Copy, PartialEq)]
        enum Mark {
            Grey,
            Black,
        }
        let mut marks: HashMap<ProcId, Mark> = HashMap::new();
        for &root in new {
            if marks.contains_key(&root) {
                continue;
            }
            let mut stack: Vec<(ProcId, usize)> = vec![(root, 0)];
            marks.insert(root, Mark::Grey);
            while let Some((node, idx)) = stack.last_mut() {
                let node = *node;
                if let Some(&next) = self.runs[node].dep_ids.get(*idx) {
                    *idx += 1;
                    if self.runs[next].state.is_complete() || !self.runs[next].resolved {
                        continue;
                    }
                    match marks.get(&next) {
                        Some(Mark::Grey) => {
                            let start = stack.iter().position(|(n, _)| *n == next).expect("grey");
                            let mut cycle: Vec<ProcId> =
                                stack[start..].iter().map(|(n, _)| *n).collect();
                            cycle.push(next);
                            return Some(cycle);
                        }
                        Some(Mark::Black) => {}
                        None => {
                            marks.insert(next, Mark::Grey);
                            stack.push((next, 0));
                        }
                    }
                } else {
                    marks.insert(node, Mark::Black);
                    stack.pop();
                }
            }
        }
        None
    }

    /// A dependency path from `from` to `to` over unfinished procs, if one exists.
    fn path(&self, from: ProcId, to: ProcId) -> Option<Vec<ProcId>> {
        let mut prev: HashMap<ProcId, ProcId> = HashMap::new();
        let mut stack = vec![from];
        prev.insert(from, from);
        while let Some(n) = stack.pop() {
            if n == to {
                let mut path = vec![to];
                let mut cur = to;
                while cur != from {
                    cur = prev[&cur];
                    path.push(cur);
                }
                path.reverse();
                return Some(path);
            }
            for &d in &self.runs[n].dep_ids {
                if !self.runs[d].state.is_complete() && !prev.contains_key(&d) {
                    prev.insert(d, n);
                    stack.push(d);
                }
            }
        }
        None
    }

    fn deps_met(&mut self, p: ProcId) {
        if let Some(dep) = self.runs[p].missing.first().cloned() {
            if self.script_running {
                if !self.missing_blocked.contains(&p) {
                    self.missing_blocked.push(p);
                }
            } else {
                self.fail_dep(p, format!("dependency \"{dep}\" missing"));
            }
            return;
        }
        if !self.runs[p].active {
            self.runs[p].active = true;
            *self
                .wave_active
                .entry(self.graph.proc(p).def.wave)
                .or_default() += 1;
        }
        self.enqueue(p);
    }

    fn enqueue(&mut self, p: ProcId) {
        if !self.runs[p].queued {
            self.runs[p].queued = true;
            self.ready.push(Reverse(p));
        }
    }

    fn deactivate(&mut self, p: ProcId) {
        if self.runs[p].active {
            self.runs[p].active = false;
            let wave = self.graph.proc(p).def.wave;
            if let Some(n) = self.wave_active.get_mut(&wave) {
                *n -= 1;
                if *n == 0 {
                    self.wave_active.remove(&wave);
                }
            }
        }
    }

    fn is_ready(&self, p: ProcId) -> bool {
        let r = &self.runs[p];
        r.state == State::Wanted && r.unmet == 0 && r.missing.is_empty() && !r.retry_pending
    }

    /// Starts ready procs while slots are free.
    fn pump(&mut self) {
        if self.aborted.is_some() {
            return;
        }

        loop {
            while self.running < self.opts.parallel {
                let Some(w) = self.resume.pop_front() else {
                    break;
                };
                self.resume_waiter(w);
            }
            if self.running >= self.opts.parallel {
                return;
            }
            let min_wave = self.wave_active.keys().next().copied();
            while let Some((&wave, _)) = self.wave_parked.first_key_value() {
                if min_wave.is_some_and(|m| wave > m) {
                    break;
                }
                for p in self.wave_parked.remove(&wave).unwrap_or_default() {
                    self.enqueue(p);
                }
            }
            if self.cache_opener.is_some() && !self.ready.is_empty() {
                self.ensure_cache();
            }
            let Some(Reverse(p)) = self.ready.pop() else {
                return;
            };
            self.runs[p].queued = false;
            if !self.is_ready(p) {
                continue;
            }
            let def = self.graph.proc(p).def.clone();
            if min_wave.is_some_and(|m| m < def.wave) {
                self.wave_parked.entry(def.wave).or_default().push(p);
                continue;
            }
            if self.up_to_date(p) {
                continue;
            }
            if let Some(l) = def
                .locks
                .iter()
                .find(|l| self.lock_holders.contains_key(*l))
            {
                self.lock_parked.entry(l.clone()).or_default().push(p);
                continue;
            }
            if def.no_failures && self.failed > 0 {
                self.fail_dep(p, "run aborted: a proc has failed".into());
                continue;
            }
            if self.opts.dry_run {
                self.would_run(p);
            } else {
                self.launch(p);
            }
        }
    }

    /// The stamps of a proc's dependencies, for its fingerprint.
    fn dep_stamps(&self, p: ProcId) -> Vec<(&str, &str)> {
        let cache = self.cache.as_ref();
        self.runs[p]
            .dep_ids
            .iter()
            .map(|&d| {
                let name = &*self.graph.proc(d).name;
                (name, cache.map_or("", |c| c.stamp(name)))
            })
            .collect()
    }

    /// Finishes `p` as UP_TO_DATE when the task DB has its result and nothing it depends
    /// on changed: no dependency ran in this run, the fingerprint matches, and the outputs
    /// exist and are fresh. Eligible are procs with a dependency or a resolved input file
    /// (as in parproc: a proc with neither always runs), unless `--full` or `no_skip`.
    fn up_to_date(&mut self, p: ProcId) -> bool {
        let Some(cache) = &self.cache else {
            return false;
        };
        let node = self.graph.proc(p);
        if cache.full || node.def.no_skip {
            return false;
        }
        let Some(row) = cache.row(&node.name) else {
            return false;
        };
        if self.runs[p]
            .dep_ids
            .iter()
            .any(|&d| self.runs[d].state == State::Succeeded)
        {
            return false;
        }
        let Ok(fp) = cache::fingerprint(&self.graph, node, &self.dep_stamps(p)) else {
            return false;
        };
        let eligible = !self.runs[p].dep_ids.is_empty() || !fp.files.is_empty();
        let fresh =
            eligible && fp.matches(&row.fingerprint) && cache::outputs_fresh(&self.graph, node);
        if !fresh {
            self.runs[p].fingerprint = Some(fp);
            return false;
        }
        let result = serde_json::from_str::<Dynamic>(&row.result).unwrap_or(Dynamic::UNIT);
        self.finish(p, State::UpToDate, Some(result), None, None);
        true
    }

    /// `--dry-run`: reports what `p` would run and counts it as done, so that its
    /// dependents follow in an order that respects dependencies and waves.
    fn would_run(&mut self, p: ProcId) {
        let node = self.graph.proc(p);
        let what = match (
            &node.def.body,
            super::job::command_of(&node.def, &node.args),
        ) {
            (Body::Closure(cb), _) => format!("(closure at {})", cb.origin()),
            (_, Some(cmd)) => cmd.to_string(),
            (_, None) => String::new(),
        };
        self.actions.push(Action::WouldRun {
            name: node.name.clone(),
            what,
        });
        self.runs[p].dry = true;
        self.finish(p, State::Succeeded, Some(Dynamic::UNIT), None, None);
    }

    fn launch(&mut self, p: ProcId) {
        let node = self.graph.proc(p);
        let def = node.def.clone();
        // A proc with neither dependencies nor inputs is never UP_TO_DATE: it needs no
        // fingerprint, and its result is not worth saving.
        let skippable = !def.inputs.is_empty() || !self.runs[p].dep_ids.is_empty();
        let fingerprint = match self.runs[p].fingerprint.take() {
            Some(f) => Ok(f),
            None if (self.cache.is_some() && skippable) || !def.inputs.is_empty() => {
                cache::fingerprint(&self.graph, node, &self.dep_stamps(p))
            }
            None => Ok(Fingerprint::default()),
        };
        let fingerprint = match fingerprint {
            Ok(f) => f,
            Err(e) => {
                self.fail(p, e, None);
                return;
            }
        };
        let node = self.graph.proc(p);
        let input_fingerprint = fingerprint.map.clone();
        self.runs[p].fingerprint = Some(fingerprint);
        for l in &def.locks {
            self.lock_holders.insert(l.clone(), p);
        }
        let mut dep_results = Map::new();
        let mut changed_deps = Vec::new();
        for &d in &self.runs[p].dep_ids {
            let dn = &self.graph.proc(d).name;
            let dr = &self.runs[d];
            dep_results.insert((**dn).into(), dr.result.clone().unwrap_or(Dynamic::UNIT));
            if dr.state == State::Succeeded {
                changed_deps.push(dn.to_string());
            }
        }
        let cancel = CancellationToken::new();
        let r = &mut self.runs[p];
        r.locks_held = !def.locks.is_empty();
        r.state = State::Running;
        r.holds_slot = true;
        r.attempts += 1;
        r.first_start.get_or_insert_with(Instant::now);
        r.started_at.get_or_insert_with(std::time::SystemTime::now);
        r.cancel = Some(cancel.clone());
        self.running += 1;
        self.running_total += 1;
        let spec = JobSpec {
            id: p,
            name: node.name.clone(),
            def,
            args: node.args.clone(),
            dep_results,
            changed_deps,
            params: self.graph.params().clone(),
            attempt: r.attempts,
            cancel,
            input_fingerprint,
        };
        if r.attempts == 1 {
            self.actions.push(Action::Started(node.name.clone()));
        }
        self.actions.push(Action::Start(Box::new(spec)));
    }

    fn release(&mut self, p: ProcId) {
        let r = &mut self.runs[p];
        if r.holds_slot {
            r.holds_slot = false;
            self.running -= 1;
        }
        if r.locks_held {
            r.locks_held = false;
            let locks = self.graph.proc(p).def.locks.clone();
            for l in locks {
                if self.lock_holders.get(&l) == Some(&p) {
                    self.lock_holders.remove(&l);
                }
                for q in self.lock_parked.remove(&l).unwrap_or_default() {
                    self.enqueue(q);
                }
            }
        }
    }

    /// A job finished one attempt.
    pub fn complete(&mut self, p: ProcId, outcome: Outcome, log: Option<std::path::PathBuf>) {
        if self.runs[p].state != State::Running {
            return;
        }
        self.release(p);
        self.running_total -= 1;
        self.runs[p].cancel = None;
        self.runs[p].log = log;
        let def = self.graph.proc(p).def.clone();
        let outcome = match outcome {
            Outcome::Success(v) if !def.outputs.is_empty() => {
                match cache::check_outputs(&self.graph, self.graph.proc(p), true) {
                    Ok(()) => Outcome::Success(v),
                    Err(error) => Outcome::Failed {
                        error,
                        exit_code: None,
                    },
                }
            }
            o => o,
        };
        let outcome = self.save_result(p, outcome);
        if matches!(outcome, Outcome::Success(_)) && !matches!(def.body, Body::Closure(_)) {
            self.runs[p].exit_code = Some(0);
        }
        if let Outcome::Failed { error, exit_code } = &outcome
            && self.runs[p].attempts <= def.retries
            && self.aborted.is_none()
        {
            let r = &mut self.runs[p];
            r.state = State::Wanted;
            r.retry_pending = true;
            r.exit_code = *exit_code;
            self.timers += 1;
            self.actions.push(Action::Retrying {
                name: self.graph.proc(p).name.clone(),
                attempt: r.attempts,
                error: error.clone(),
            });
            self.actions.push(Action::Retry {
                id: p,
                delay: def.retry_delay,
            });
            self.pump();
            return;
        }
        match outcome {
            Outcome::Success(v) => self.finish(p, State::Succeeded, Some(v), None, None),
            Outcome::Skipped { why } => {
                let why = (!why.is_empty()).then_some(why);
                self.finish(p, State::Skipped, Some(Dynamic::UNIT), why, None)
            }
            Outcome::Failed { error, exit_code } => self.finish(
                p,
                State::Failed,
                Some(Dynamic::UNIT),
                Some(error),
                exit_code,
            ),
        }
        self.pump();
    }

    /// Keeps the task DB's cache in step with an outcome: a result is saved (a result that
    /// JSON cannot hold fails the proc), a failure forgets the old result.
    fn save_result(&mut self, p: ProcId, outcome: Outcome) -> Outcome {
        let Some(cache) = self.cache.as_mut() else {
            return outcome;
        };
        let name = &self.graph.proc(p).name;
        let Some(hash) = self.runs[p]
            .fingerprint
            .as_ref()
            .map(|f| f.hash.clone())
            .filter(|h| !h.is_empty())
        else {
            // Never UP_TO_DATE (no dependency, no input): nothing to save, but its
            // dependents must see that it ran.
            cache.touch(name);
            return outcome;
        };
        match outcome {
            Outcome::Success(v) => match cache::to_json(&v) {
                Ok(json) => {
                    cache.save(name, json, hash, true);
                    Outcome::Success(v)
                }
                Err(e) => {
                    cache.invalidate(name);
                    Outcome::Failed {
                        error: format!(
                            "its result cannot be stored in the task DB ({e}); return maps, arrays, strings, numbers, booleans or ()"
                        ),
                        exit_code: None,
                    }
                }
            },
            Outcome::Skipped { why } => {
                cache.save(name, "null".into(), hash, false);
                Outcome::Skipped { why }
            }
            failed @ Outcome::Failed { .. } => {
                cache.invalidate(name);
                failed
            }
        }
    }

    /// A retry delay elapsed: the proc may run again.
    pub fn retry_due(&mut self, p: ProcId) {
        self.timers -= 1;
        let r = &mut self.runs[p];
        if !r.retry_pending {
            return;
        }
        r.retry_pending = false;
        if self.aborted.is_some() {
            let why = "run aborted before the retry".to_string();
            self.finish(p, State::Failed, Some(Dynamic::UNIT), Some(why), None);
            return;
        }
        self.enqueue(p);
        self.pump();
    }

    /// Moves a proc to a final state, then its dependents: those whose last dependency this
    /// was become ready; after a failure they become FAILED_DEP, and theirs in turn (a
    /// work list, not recursion: a failure at the head of a 100,000-proc chain must not
    /// exhaust the stack).
    fn finish(
        &mut self,
        p: ProcId,
        state: State,
        result: Option<Dynamic>,
        error: Option<String>,
        exit_code: Option<i32>,
    ) {
        let mut work = vec![(p, state, result, error, exit_code)];
        while let Some((p, state, result, error, exit_code)) = work.pop() {
            let dependents = self.finish_one(p, state, result, error, exit_code);
            if state.is_success() {
                for d in dependents {
                    let dr = &mut self.runs[d];
                    if dr.state != State::Wanted {
                        continue;
                    }
                    dr.unmet -= 1;
                    if dr.unmet == 0 {
                        self.deps_met(d);
                    }
                }
            } else {
                let why = format!("dependency \"{}\" failed", self.graph.proc(p).name);
                for d in dependents.into_iter().rev() {
                    if self.runs[d].state == State::Wanted {
                        // Marked now so that a proc reached twice is failed once.
                        self.runs[d].state = State::Idle;
                        work.push((d, State::FailedDep, None, Some(why.clone()), None));
                    }
                }
            }
        }
    }

    /// Records the final state of one proc and returns its dependents.
    fn finish_one(
        &mut self,
        p: ProcId,
        state: State,
        result: Option<Dynamic>,
        error: Option<String>,
        exit_code: Option<i32>,
    ) -> Vec<ProcId> {
        self.deactivate(p);
        self.pending -= 1;
        let r = &mut self.runs[p];
        r.state = state;
        r.result = result;
        r.error = error.clone();
        r.exit_code = exit_code.or(r.exit_code);
        r.duration = r.first_start.map(|s| s.elapsed());
        let name = self.graph.proc(p).name.clone();
        if let Some(cache) = self.cache.as_mut()
            && state != State::UpToDate
            && !self.opts.dry_run
        {
            cache.record(crate::store::ProcRecord {
                name: name.to_string(),
                state: state.to_string(),
                started: r
                    .started_at
                    .map(|t| humantime::format_rfc3339_millis(t).to_string()),
                duration: r.duration.map(|d| d.as_secs_f64()),
                exit_code: r.exit_code,
                log: r.log.as_ref().map(|l| l.display().to_string()),
                error: error.clone(),
            });
        }
        if !r.dry {
            self.actions.push(Action::Finished(Box::new(Finished {
                name,
                state,
                duration: r.duration,
                error,
                log: r.log.clone(),
                exit_code: r.exit_code,
            })));
        }
        let waiters = std::mem::take(&mut r.waiters);
        let dependents = std::mem::take(&mut r.dependents);
        self.active_ws.retain(|(d, _)| *d != p);
        for w in waiters {
            self.waiter_progress(w);
        }
        if state.is_failure() {
            self.failed += 1;
            if self.opts.fail_fast && state == State::Failed {
                self.abort(AbortReason::FailFast);
            }
        }
        dependents
    }

    /// Fails a WANTED proc that will never run, and cascades to its dependents.
    fn fail_dep(&mut self, p: ProcId, why: String) {
        if self.runs[p].state == State::Wanted {
            self.finish(p, State::FailedDep, None, Some(why), None);
        }
    }

    /// Fails a WANTED proc because of an error in its definition (a cycle, a wave).
    fn fail(&mut self, p: ProcId, why: String, exit_code: Option<i32>) {
        if self.runs[p].state == State::Wanted {
            self.finish(p, State::Failed, None, Some(why), exit_code);
        }
    }

    /// Stops scheduling; running jobs are cancelled (their process groups terminated),
    /// except after a script error.
    pub fn abort(&mut self, reason: AbortReason) {
        if self.aborted.is_some() {
            return;
        }
        self.aborted = Some(reason);
        // A script error stops scheduling but lets running jobs finish, as make does;
        // --fail-fast and interrupts terminate them.
        if reason != AbortReason::ScriptError {
            for (p, r) in self.runs.iter().enumerate() {
                if let Some(c) = &r.cancel {
                    self.actions.push(Action::Cancel(c.clone()));
                    if reason == AbortReason::Interrupted {
                        self.interrupted.push(self.graph.proc(p).name.to_string());
                    }
                }
            }
        }
        for w in 0..self.waiters.len() {
            if self.waiters[w].as_ref().is_some_and(|w| w.job.is_some()) {
                self.wake(w, Wake::Aborted(reason));
            }
        }
    }

    // ---- waiting -----------------------------------------------------------------------

    /// Registers a wait for `ids`. Returns `None` when they are all complete already.
    ///
    /// `job` is the proc whose closure is waiting: IDLE procs are started for it, and its
    /// parallel slot is given back until the wait is over. Without a job (the top-level
    /// script), waiting for a proc nobody scheduled is an error.
    pub fn wait_for(
        &mut self,
        ids: &[ProcId],
        job: Option<ProcId>,
    ) -> Result<Option<mpsc::Receiver<Wake>>, GraphError> {
        self.flush_now()?;
        let idle: Vec<ProcId> = ids
            .iter()
            .copied()
            .filter(|&i| self.runs[i].state == State::Idle)
            .collect();
        if !idle.is_empty() {
            match job {
                Some(_) => self.start(&idle)?,
                None => {
                    return Err(GraphError::NotScheduled(
                        self.graph.proc(idle[0]).name.to_string(),
                    ));
                }
            }
        }
        if let Some(j) = job
            && ids.contains(&j)
        {
            return Err(GraphError::Cycle(vec![
                self.graph.proc(j).name.to_string(),
                self.graph.proc(j).name.to_string(),
            ]));
        }
        let open: Vec<ProcId> = ids
            .iter()
            .copied()
            .filter(|&i| !self.runs[i].state.is_complete())
            .collect();
        if open.is_empty() {
            return Ok(None);
        }
        if self.aborted.is_some() && self.running_total == 0 {
            return Ok(None);
        }
        let (tx, rx) = mpsc::channel();
        let w = self.waiters.len();
        self.waiters.push(Some(Waiter {
            remaining: open.len(),
            job,
            tx,
        }));
        for i in open {
            self.runs[i].waiters.push(w);
        }
        match job {
            Some(j) => {
                let r = &mut self.runs[j];
                r.waiting = true;
                if r.holds_slot {
                    r.holds_slot = false;
                    self.running -= 1;
                }
                self.pump();
            }
            None => self.script_blocked(),
        }
        Ok(Some(rx))
    }

    /// Registers a wait for every scheduled proc (the top-level `wait()` and the end of
    /// the script).
    pub fn wait_all(&mut self) -> Result<Option<mpsc::Receiver<Wake>>, GraphError> {
        self.flush_now()?;
        if self.all_done() {
            return Ok(None);
        }
        let (tx, rx) = mpsc::channel();
        self.all_waiters.push(tx);
        self.script_blocked();
        Ok(Some(rx))
    }

    fn all_done(&self) -> bool {
        (self.pending == 0 && self.pending_now.is_empty())
            || (self.aborted.is_some() && self.running_total == 0)
    }

    /// The top-level script finished or blocked: definitions are closed, so dependencies
    /// still missing now are failures.
    fn script_blocked(&mut self) {
        self.script_running = false;
        for p in std::mem::take(&mut self.missing_blocked) {
            if self.runs[p].state == State::Wanted && !self.runs[p].missing.is_empty() {
                self.deps_met(p);
            }
        }
    }

    /// The top-level script runs again (its wait returned) and may define more procs.
    pub fn script_resumed(&mut self) {
        self.script_running = true;
    }

    /// The top-level script ended.
    pub fn script_done(&mut self) {
        self.script_blocked();
    }

    fn waiter_progress(&mut self, w: usize) {
        let Some(waiter) = self.waiters[w].as_mut() else {
            return;
        };
        waiter.remaining -= 1;
        if waiter.remaining == 0 {
            self.wake(w, Wake::Done);
        }
    }

    fn wake(&mut self, w: usize, why: Wake) {
        let Some(waiter) = self.waiters[w].as_ref() else {
            return;
        };
        match waiter.job {
            Some(_) if why == Wake::Done => self.resume.push_back(w),
            Some(j) => {
                let waiter = self.waiters[w].take().expect("present");
                self.runs[j].waiting = false;
                self.runs[j].holds_slot = true;
                self.running += 1;
                self.actions.push(Action::Wake(waiter.tx, why));
            }
            None => {
                let waiter = self.waiters[w].take().expect("present");
                self.script_running = true;
                self.actions.push(Action::Wake(waiter.tx, why));
            }
        }
    }

    fn resume_waiter(&mut self, w: usize) {
        if let Some(waiter) = self.waiters[w].take() {
            let j = waiter.job.expect("job waiter");
            self.runs[j].waiting = false;
            self.runs[j].holds_slot = true;
            self.running += 1;
            self.actions.push(Action::Wake(waiter.tx, Wake::Done));
        }
    }

    /// A closure job was cancelled (its timeout elapsed): if it is blocked in a wait, the
    /// wait returns with `why` so the closure can end.
    pub fn cancel_wait(&mut self, job: ProcId, why: &str) {
        for w in 0..self.waiters.len() {
            if self.waiters[w].as_ref().is_some_and(|w| w.job == Some(job)) {
                self.resume.retain(|&r| r != w);
                self.wake(w, Wake::Deadlock(why.to_string()));
            }
        }
    }

    /// Ends a locked operation: wakes `wait()`ers whose condition holds and resolves
    /// situations where nothing can make progress any more.
    pub fn settle(&mut self) {
        // `now` procs created while the script is blocked (by closures) must not wait for
        // a `run` that will never come; a failure to schedule them fails them.
        if !self.script_running {
            let _ = self.flush_now();
        }
        loop {
            if self.all_done() {
                for tx in self.all_waiters.drain(..) {
                    let why = match self.aborted {
                        Some(r) => Wake::Aborted(r),
                        None => Wake::Done,
                    };
                    self.actions.push(Action::Wake(tx, why));
                }
                if self.aborted.is_some() {
                    for w in 0..self.waiters.len() {
                        if let Some(r) = self.aborted {
                            self.wake(w, Wake::Aborted(r));
                        }
                    }
                }
            }
            if !self.stuck() {
                return;
            }
            self.break_deadlock();
        }
    }

    /// True when nothing runs, nothing is about to run, and something still waits.
    fn stuck(&self) -> bool {
        let busy = self.script_running
            || self.running > 0
            || self.timers > 0
            || !self.resume.is_empty()
            || self.aborted.is_some();
        if busy {
            return false;
        }
        let mut waiters = self.waiters.iter().flatten();
        let job_blocked = waiters.clone().any(|w| w.job.is_some());
        let script_blocked = !self.all_waiters.is_empty() || waiters.next().is_some();
        job_blocked || (self.pending > 0 && script_blocked)
    }

    /// Nothing runs and nothing can start: fail whatever waits, with the reason.
    fn break_deadlock(&mut self) {
        let blocked: Vec<usize> = (0..self.waiters.len())
            .filter(|&w| self.waiters[w].as_ref().is_some_and(|w| w.job.is_some()))
            .collect();
        if !blocked.is_empty() {
            for w in blocked {
                let j = self.waiters[w].as_ref().and_then(|w| w.job).expect("job");
                let msg = format!(
                    "proc \"{}\" waits for procs that can never finish while it waits ({})",
                    self.graph.proc(j).name,
                    self.blocked_reason()
                );
                self.wake(w, Wake::Deadlock(msg));
            }
            return;
        }
        let wanted: Vec<ProcId> = (0..self.runs.len())
            .filter(|&p| self.runs[p].state == State::Wanted)
            .collect();
        let cycle = self.find_cycle(&wanted);
        let why = match &cycle {
            Some(c) => GraphError::Cycle(
                c.iter()
                    .map(|&p| self.graph.proc(p).name.to_string())
                    .collect(),
            )
            .to_string(),
            None => format!("can never start ({})", self.blocked_reason()),
        };
        for p in wanted {
            self.fail(p, why.clone(), None);
        }
    }

    fn blocked_reason(&self) -> String {
        if let Some((l, p)) = self.lock_holders.iter().next() {
            return format!("lock \"{l}\" is held by \"{}\"", self.graph.proc(*p).name);
        }
        if let Some(w) = self.wave_active.keys().next() {
            return format!("wave {w} has not finished");
        }
        "a dependency can never finish".into()
    }

    // ---- queries -----------------------------------------------------------------------

    /// Procs that were running when the run was interrupted.
    pub fn interrupted_procs(&self) -> &[String] {
        &self.interrupted
    }

    /// The procs a scheduled proc depends on (resolved: globs expanded, protos
    /// instantiated); empty for a proc never scheduled.
    pub fn deps_of(&self, p: ProcId) -> &[ProcId] {
        &self.runs[p].dep_ids
    }

    /// How many procs `--dry-run` counted as would-run.
    pub fn would_run_count(&self) -> usize {
        self.runs.iter().filter(|r| r.dry).count()
    }

    /// The state of a proc.
    pub fn state(&self, p: ProcId) -> State {
        self.runs[p].state
    }

    /// Summary of one proc.
    pub fn summary(&self, p: ProcId) -> ProcSummary {
        let r = &self.runs[p];
        ProcSummary {
            name: self.graph.proc(p).name.clone(),
            state: r.state,
            result: r.result.clone(),
            error: r.error.clone(),
            started: r.started_at,
            duration: r.duration,
            exit_code: r.exit_code,
            log: r.log.clone(),
        }
    }

    /// Ids of the scheduled (not IDLE) procs whose names match a glob.
    pub fn scheduled_matching(&self, pattern: &str) -> Vec<ProcId> {
        self.graph
            .procs()
            .filter(|(id, n)| {
                self.runs[*id].state != State::Idle
                    && crate::graph::pattern::wildcard_match(pattern, &n.name)
            })
            .map(|(id, _)| id)
            .collect()
    }

    /// Every proc that left IDLE, in registration order.
    pub fn scheduled(&self) -> impl Iterator<Item = ProcSummary> + '_ {
        (0..self.runs.len())
            .filter(|&p| self.runs[p].state != State::Idle)
            .map(|p| self.summary(p))
    }
}

#[cfg(test)]
#[path = "core_tests.rs"]
mod tests;

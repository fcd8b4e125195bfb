//! Judging before a run: which procs need a fingerprint, and the verdicts coming back from
//! the worker thread that judged them (see [`crate::exec::freshness`]).

use std::path::Path;
use std::sync::Arc;

use super::{Action, Cache, Core, State};
use crate::exec::freshness::{self, JudgeSpec, Judgement};
use crate::exec::tree::OwnFiles;
use crate::graph::{Body, ProcDef, ProcId};

/// How many procs one worker judges in a row: a no-op run of 10,000 procs then costs
/// ~160 round trips to the worker pool, not 10,000.
const JUDGE_BATCH: usize = 64;

/// Whether a proc is judged at once by the core rather than on a worker thread: without
/// `inputs` and `outputs`, its fingerprint calls no closure and reads no file.
fn judged_at_once(def: &ProcDef) -> bool {
    def.inputs.is_empty() && def.outputs.is_empty()
}

impl Core {
    /// The stamps of a proc's dependencies, for its fingerprint.
    pub(super) fn dep_stamps(&self, p: ProcId) -> Vec<(String, String)> {
        let cache = self.cache.as_ref();
        self.runs[p]
            .dep_ids
            .iter()
            .map(|&d| {
                let name = &*self.graph.proc(d).name;
                let stamp = cache.map_or_else(String::new, |c| c.stamp(d, name));
                (name.to_string(), stamp)
            })
            .collect()
    }

    /// prun's own files, which a directory input leaves out: those of the batch being
    /// built when they are the same (one copy per batch, not per proc).
    pub(super) fn own_files(&self) -> Arc<OwnFiles> {
        let db = self.cache.as_ref().map(|c| c.store().path());
        let dirs = self.own_dirs.iter().flatten();
        if let Some(last) = self.judging.last()
            && last.own.db.as_deref() == db
            && last.own.report == self.own_report
            && last.own.dirs.iter().eq(dirs.clone())
        {
            return last.own.clone();
        }
        Arc::new(OwnFiles {
            db: db.map(Path::to_path_buf),
            report: self.own_report.clone(),
            dirs: dirs.cloned().collect(),
        })
    }

    /// Whether `p` needs a fingerprint before it runs: it declares inputs, or it may be
    /// UP_TO_DATE another time (a task DB, and a dependency that is not
    /// [`Core::never_fresh`]). A proc with neither dependencies nor inputs is never
    /// UP_TO_DATE: its result is not worth saving.
    pub(super) fn needs_fingerprint(&self, p: ProcId) -> bool {
        if self.judge_nothing {
            return false;
        }
        let def = &self.graph.proc(p).def;
        if !def.inputs.is_empty() {
            return true;
        }
        self.cache.is_some() && !self.runs[p].dep_ids.is_empty() && !self.never_fresh(p)
    }

    /// Whether `p`, whose dependencies are all done, can never be UP_TO_DATE in this cycle
    /// nor in a later run: it is not judged, and its end saves no result but gives it a
    /// new stamp and forgets its old row (`freshness::save_result` without a
    /// fingerprint). True for a command or shell proc without `inputs` and `outputs` with
    /// a dependency `d` that ended SUCCEEDED or SKIPPED in this cycle without a
    /// fingerprint (a proc without dependencies and inputs, or one this rule let go).
    ///
    /// Why that is sound. Such a `d` was never judged, so its end went through
    /// `Cache::touch` (right then, or once the DB opened): whatever its outcome, `no_change`
    /// included, it got a stamp of this run's own, unlike any a row saved before this run
    /// holds. When `p` is judged, `d` ran in this cycle: SUCCEEDED or SKIPPED by `skip`,
    /// it "ran" ([`Core::ran_this_cycle`]) and `p` runs with no row looked up; SKIPPED by
    /// `no_change` (a closure without dependencies), its stamp differs from the one in
    /// any row of `p`, whose fingerprint covers it. `p` has no input that could be the
    /// only thing a row was eligible by. So `p` runs now, and any row it saved now would
    /// hold `d`'s stamp of this run, which no later run sees: `d`, never judged, runs in
    /// every run that wants `p` and gets yet another stamp. `p`'s body is a command, which
    /// ends SUCCEEDED or FAILED, never SKIPPED: its new stamp is what a saved row would
    /// have given its dependents anyway (a closure ending with `no_change` keeps its old
    /// stamp through its row when that held `()`, which its dependents' rows may match:
    /// it is judged). A
    /// failure forgets its row in either case; a retry is not judged again. Procs that
    /// are defined later, or depend on `p` by `rdeps`, see the same stamps. In a dry run,
    /// `d` counts as ran. Declared outputs would be stamped in the row: left out.
    ///
    /// A later watch cycle is the one place a row of `p` could be used: `d` (without
    /// inputs) never runs again there, so `p` is UP_TO_DATE when no dependency really
    /// ran. [`Core::rerun`] saves that row before it resets `p` (see
    /// [`Core::save_unjudged_row`]).
    pub(super) fn never_fresh(&self, p: ProcId) -> bool {
        let node = self.graph.proc(p);
        let command = matches!(node.body(), Body::Cmd(_) | Body::Shell(_));
        if !command || !node.def.inputs.is_empty() || !node.def.outputs.is_empty() {
            return false;
        }
        self.runs[p].dep_ids.iter().any(|&d| {
            let r = &self.runs[d];
            r.fingerprint.is_none()
                && r.cycle == self.cycle
                && matches!(r.state, State::Succeeded | State::Skipped)
        })
    }

    /// Whether `p` is judged before it starts: it needs a fingerprint, and it was not
    /// judged yet (a proc is judged once, before its first attempt: a retry runs again).
    pub(super) fn needs_judging(&self, p: ProcId) -> bool {
        let judged = self.runs[p].fingerprint.is_some() || self.runs[p].attempts > 0;
        !judged && self.needs_fingerprint(p)
    }

    /// Whether the next ready proc would join the batch of judgings being built, which
    /// holds a slot already: a batch fills up even when that slot was the last one free
    /// (at `-j 2`, batches of one proc each would cost a round trip to a worker per proc).
    pub(super) fn next_joins_batch(&self) -> bool {
        if self.judging.is_empty() || self.judging.len() >= JUDGE_BATCH {
            return false;
        }
        let Some(p) = self.ready.peek() else {
            return false;
        };
        let def = &self.graph.proc(p).def;
        self.is_ready(p)
            && !self.waves.blocks(def.extras().wave)
            && self.needs_judging(p)
            && !judged_at_once(def)
    }

    /// Whether `p` needs no judging whatever the task DB holds (no inputs, no
    /// dependencies): it may start while the DB is still opening.
    pub(super) fn never_judged(&self, p: ProcId) -> bool {
        self.graph.proc(p).def.inputs.is_empty() && self.runs[p].dep_ids.is_empty()
    }

    /// Judges `p`: fingerprints it, and compares that with its cached row when it may be
    /// UP_TO_DATE (unless `--full` or `no_skip`, and only when no dependency ran in this
    /// run). A proc without `inputs` and `outputs` is judged here and now: its fingerprint
    /// hashes its definition and its dependencies' stamps, which calls no closure and reads
    /// no file (unless it runs anyway with a cached row, which is forgotten first). Any
    /// other is queued for a worker thread (`None`): a batch of judgings holds one parallel
    /// slot, and [`Core::judged_all`] carries the verdicts back.
    pub(super) fn judge(&mut self, p: ProcId) -> Option<Judgement> {
        let node = self.graph.proc(p);
        let dep_ran = self.runs[p].dep_ids.iter().any(|&d| self.ran_this_cycle(d));
        let cache = self.cache.as_ref();
        let row = cache
            .filter(|_| !dep_ran)
            .and_then(|c| c.row(&node.name).cloned());
        let may_skip = cache.is_some_and(|c| !c.full) && !node.def.no_skip && !dep_ran;
        // A row that may still match a proc that runs anyway (or when an output is
        // missing) is forgotten before it runs (see `freshness::judge_one`): on a worker
        // thread, since that waits for a commit.
        let forgets = row.is_some() && !may_skip;
        self.runs[p].edits = self.params_edits;
        let may_forget = forgets || (row.is_some() && !node.def.outputs.is_empty());
        let spec = JudgeSpec {
            id: p,
            node: node.clone(),
            params: self.graph.params().clone(),
            dep_stamps: self.dep_stamps(p),
            store: cache
                .filter(|c| may_forget && !c.is_read_only())
                .map(|c| c.store().clone()),
            row,
            prefix: cache.map_or_else(|| Arc::from(""), |c| c.prefix().clone()),
            may_skip,
            own: self.own_files(),
            cwd: cache.map(|c| c.cwd().clone()),
            policy: cache.map_or_else(|| Arc::from(""), |c| c.policy().clone()),
            cancel: self.judge_cancel.clone(),
        };
        if judged_at_once(&node.def) && !forgets {
            return Some(freshness::judge(&spec));
        }
        // A batch holds one parallel slot, taken by its first proc.
        let r = &mut self.runs[p];
        r.judging = true;
        if self.judging.is_empty() {
            r.holds_slot = true;
            self.running += 1;
        }
        self.judging.push(spec);
        if self.judging.len() >= JUDGE_BATCH {
            self.send_judging();
        }
        None
    }

    /// Sends the procs waiting to be judged to a worker thread.
    pub(super) fn send_judging(&mut self) {
        if !self.judging.is_empty() {
            let batch = std::mem::take(&mut self.judging);
            self.judgings_out += 1;
            self.actions.push(Action::Judge(batch));
        }
    }

    /// The verdicts on a batch, taken in its order: each proc is UP_TO_DATE, or back to
    /// the ready queue with its fingerprint. Procs are started once all are in (one pass
    /// over the ready queue per batch, not one per verdict).
    pub(crate) fn judged_all(&mut self, verdicts: impl IntoIterator<Item = (ProcId, Judgement)>) {
        self.judgings_out = self.judgings_out.saturating_sub(1);
        for (p, verdict) in verdicts {
            self.take_verdict(p, verdict);
        }
        self.pump();
    }

    /// The verdict on `p`.
    fn take_verdict(&mut self, p: ProcId, verdict: Judgement) {
        let r = &mut self.runs[p];
        if !r.judging {
            return;
        }
        r.judging = false;
        if r.holds_slot {
            r.holds_slot = false;
            self.running -= 1;
        }
        if std::mem::take(&mut r.stale) || r.edits != self.params_edits {
            // An input changed while it was judged, or the params did: judge it again.
            r.fingerprint = None;
            self.enqueue(p);
            return;
        }
        match verdict {
            Judgement::Fresh(result) => {
                if !self.stopped_by_a_failure(p) {
                    self.finish(p, State::UpToDate, Some(result), None, None);
                }
            }
            Judgement::Stale(fp) => {
                self.runs[p].fingerprint = Some(Box::new(fp));
                self.enqueue(p);
            }
            Judgement::Failed(e) => self.fail(p, e, None),
        }
    }

    /// The running attempt of `p` did something no cached result can stand for (see
    /// [`Cache::unrepeatable`]): its result is not saved. Without a task DB (still opening
    /// or none) nothing is saved anyway: a proc that may be judged waits for the DB.
    pub(crate) fn unrepeatable(&mut self, p: ProcId) {
        if let Some(cache) = self.cache.as_mut() {
            cache.unrepeatable(p);
        }
    }

    /// The stamp of `p`'s declared outputs as its attempt that just ended left them
    /// (`None`: it has none, or they were not read), saved with its result.
    pub(crate) fn outputs_read(&mut self, p: ProcId, stamp: Option<String>) {
        if let (Some(cache), Some(stamp)) = (self.cache.as_mut(), stamp) {
            cache.outputs_read(p, stamp);
        }
    }

    /// The task DB asked for by `Action::OpenCache` is open (or cannot be used).
    pub(crate) fn cache_opened(&mut self, generation: u64, cache: Option<Cache>) {
        if generation != self.cache_generation {
            return;
        }
        self.opening_cache = false;
        self.cache = cache;
        // Procs that started while it opened: the run's row begins now (see
        // `Cache::begin`).
        if self.running_total > 0
            && let Some(cache) = self.cache.as_mut()
        {
            cache.begin();
        }
        self.save_unsaved();
        self.pump();
    }
}

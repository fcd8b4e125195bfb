//! Watch mode's re-runs: procs whose inputs changed, and everything scheduled downstream
//! of them, go back to WANTED and are judged again, in the same run state.
//!
//! Theory of operation: a *cycle* is one round of work; the first run is cycle 0 and each
//! [`Core::rerun`] that finds the run idle starts the next one. A proc that really ran in
//! the current cycle makes its dependents stale (as a dependency that ran does in one run);
//! one that ran in an earlier cycle does not: its stamp in the task DB decides.
//!
//! A change may arrive while a cycle is running. Procs in a final state are reset at once.
//! A proc that is running (or being judged) cannot be: its attempt is marked *stale*, and
//! when it ends its outcome is dropped — neither saved nor handed to dependents — and the
//! proc is WANTED again. Its dependents were reset too and count it as unfinished, so they
//! wait for the new attempt and never see the stale result (parproc's "generations").

use tokio_util::sync::CancellationToken;

use super::{AbortReason, Core, Moment, Span, State, WallTime};
use crate::exec::cache;
use crate::graph::{Body, ProcId};

/// What [`Core::rerun`] did.
#[derive(Debug, Default)]
pub(crate) struct Rerun {
    /// The procs to run again: the changed ones and everything downstream of them.
    pub procs: Vec<ProcId>,
    /// Those among them that were running or being judged: their current attempt is stale.
    pub restarted: Vec<ProcId>,
}

impl Core {
    /// Whether `d` really ran in the current cycle: SUCCEEDED, or SKIPPED by `skip` (a
    /// run, which gives it a new stamp), not by `no_change`.
    pub(super) fn ran_this_cycle(&self, d: ProcId) -> bool {
        let r = &self.runs[d];
        let ran = match r.state {
            State::Succeeded => true,
            State::Skipped => !r.unchanged,
            _ => false,
        };
        ran && r.cycle == self.cycle
    }

    /// Schedules `changed` (procs whose inputs changed) and every scheduled proc that
    /// depends on them, directly or not, to be judged and run again. IDLE procs are left
    /// alone: watch mode re-runs only what the run scheduled. A dependency of those,
    /// done, for which `output_missing` holds (a declared output was deleted since it
    /// ran) runs again too, before them, as `make` would remake it.
    pub(crate) fn rerun(
        &mut self,
        changed: &[ProcId],
        output_missing: &dyn Fn(ProcId) -> bool,
    ) -> Rerun {
        // A cycle that `--fail-fast` ended is over once its jobs are: the procs it never
        // started are still WANTED, and run in the next cycle.
        let failed_fast = self.aborted == Some(AbortReason::FailFast) && self.running_total == 0;
        if self.pending == 0 || failed_fast {
            self.cycle += 1;
            // `--full` is for the first run; a re-run is incremental.
            if let Some(cache) = self.cache.as_mut() {
                cache.full = false;
            }
            if self.aborted == Some(AbortReason::FailFast) {
                self.aborted = None;
                self.judge_cancel = CancellationToken::new();
            }
        }
        let procs = self.remade(changed, output_missing);
        let mut out = Rerun::default();
        let mut reset = vec![false; self.runs.len()];
        for &p in &procs {
            let r = &mut self.runs[p];
            match r.state {
                State::Running => {
                    r.stale = true;
                    out.restarted.push(p);
                }
                State::Wanted if r.judging => {
                    r.stale = true;
                    out.restarted.push(p);
                }
                State::Wanted => {
                    r.fingerprint = None;
                    r.attempts = 0;
                }
                State::Idle => {}
                _ => {
                    self.save_unjudged_row(p);
                    self.reset(p);
                    reset[p] = true;
                }
            }
        }
        // Edges into the reset procs, and out of them to deps still unfinished.
        for &p in &procs {
            if self.runs[p].state != State::Wanted {
                continue;
            }
            let was_ready = self.runs[p].unmet == 0;
            let deps = self.runs[p].dep_ids.clone();
            for &d in &deps {
                let counts = if reset[p] {
                    !self.runs[d].state.is_complete()
                } else {
                    reset[d]
                };
                if counts {
                    self.wait_on(p, d);
                }
            }
            if was_ready && self.runs[p].unmet > 0 {
                self.deactivate(p);
            }
        }
        for &p in &procs {
            if reset[p] && self.runs[p].state == State::Wanted {
                self.requeue(p);
            }
        }
        self.pump();
        out.procs = procs;
        out
    }

    /// What [`Core::rerun`] re-runs: `changed` and everything downstream of them, with
    /// each dependency of those whose output is missing (and everything downstream of it).
    fn remade(&self, changed: &[ProcId], output_missing: &dyn Fn(ProcId) -> bool) -> Vec<ProcId> {
        let mut changed = changed.to_vec();
        loop {
            let procs = self.downstream(&changed);
            let missing = self.upstream_missing(&procs, output_missing);
            if missing.is_empty() {
                return procs;
            }
            changed.extend(missing);
        }
    }

    /// The dependencies of `procs` (sorted), directly or not, not among them, that ended
    /// SUCCEEDED or UP_TO_DATE and whose declared output is missing. One that failed or
    /// skipped is left alone: it left no output, and its inputs' next change re-runs it.
    fn upstream_missing(
        &self,
        procs: &[ProcId],
        output_missing: &dyn Fn(ProcId) -> bool,
    ) -> Vec<ProcId> {
        let mut seen = vec![false; self.runs.len()];
        let mut work: Vec<ProcId> = procs.to_vec();
        for &p in procs {
            seen[p] = true;
        }
        let mut out = Vec::new();
        while let Some(p) = work.pop() {
            for &d in &self.runs[p].dep_ids {
                if std::mem::replace(&mut seen[d], true) {
                    continue;
                }
                let done = matches!(self.runs[d].state, State::Succeeded | State::UpToDate);
                if done && output_missing(d) {
                    out.push(d);
                }
                work.push(d);
            }
        }
        out
    }

    /// `changed` and every scheduled proc downstream of them, in a stable order.
    fn downstream(&self, changed: &[ProcId]) -> Vec<ProcId> {
        let mut dependents: Vec<Vec<ProcId>> = vec![Vec::new(); self.runs.len()];
        for (p, r) in self.runs.iter().enumerate() {
            if r.state != State::Idle {
                for &d in &r.dep_ids {
                    dependents[d].push(p);
                }
            }
        }
        let mut seen = vec![false; self.runs.len()];
        let mut work: Vec<ProcId> = changed
            .iter()
            .copied()
            .filter(|&p| self.runs[p].state != State::Idle)
            .collect();
        let mut out = Vec::new();
        while let Some(p) = work.pop() {
            if std::mem::replace(&mut seen[p], true) {
                continue;
            }
            out.push(p);
            work.extend(dependents[p].iter().copied());
        }
        out.sort_unstable();
        out
    }

    /// Moves a proc in a final state back to WANTED, as if it had never run this cycle.
    fn reset(&mut self, p: ProcId) {
        let r = &mut self.runs[p];
        if r.state.is_failure() {
            self.failed -= 1;
        }
        r.state = State::Wanted;
        r.result = None;
        r.set_error(None);
        r.exit_code = None;
        r.log = None;
        r.duration = Span::NONE;
        r.live = None;
        r.started_at = WallTime::NONE;
        // Its wait in this cycle starts when it is ready again, not when it was in an
        // earlier cycle (where it was up to date, and never took that time).
        r.ready_at = Moment::NONE;
        r.attempts = 0;
        r.fingerprint = None;
        r.retry_pending = false;
        r.stale = false;
        r.unmet = 0;
        r.dependents.clear();
        self.pending += 1;
    }

    /// Saves the row of `p` that judging it would have saved, when it ran unjudged because
    /// it was [`Core::never_fresh`] (SUCCEEDED without a fingerprint, with dependencies
    /// and no inputs, a task DB open): the cycle that resets it may find it UP_TO_DATE
    /// (see there). Its fingerprint, taken now, is the one judging would have taken: its
    /// dependencies ended before that and none ran since (one that runs again resets `p`
    /// with it); the rest of the fingerprint is its definition, the run's directory and
    /// environment, and the params, and no row is saved when the params changed since
    /// `p` became ready (it then runs again). Its stamp
    /// stays the one it got when it ended, which its dependents saw.
    fn save_unjudged_row(&mut self, p: ProcId) {
        let r = &self.runs[p];
        let node = self.graph.proc(p);
        let unjudged = r.state == State::Succeeded
            && r.fingerprint.is_none()
            && !r.dry
            && !r.dep_ids.is_empty()
            && node.def.inputs.is_empty()
            // What `never_fresh` asks of the proc itself: a proc with outputs (whose row
            // holds their stamp), or a closure, was unjudged only for want of a DB then.
            && node.def.outputs.is_empty()
            && matches!(node.body(), Body::Cmd(_) | Body::Shell(_))
            && r.edits == self.params_edits;
        let Some(result) = r.result.as_ref().filter(|_| unjudged) else {
            return;
        };
        let Some(cache) = self.cache.as_ref().filter(|c| !c.is_read_only()) else {
            return;
        };
        let stamps = self.dep_stamps(p);
        let own = self.own_files();
        let (cwd, policy) = (cache.cwd(), cache.policy());
        let fp = cache::fingerprint(self.graph.params(), node, &stamps, &own, cwd, policy);
        if let (Ok(fp), Ok(json)) = (fp, cache::to_json(result)) {
            let name = node.name.clone();
            if let Some(cache) = self.cache.as_mut() {
                cache.save(p, &name, json, fp.hash, false, false);
            }
        }
    }

    /// Makes `p` wait for its unfinished dependency `d`. `d` may still list `p` from an
    /// earlier cycle (a proc that failed for another dependency stays listed): it is listed
    /// once, as each entry is counted once when `d` finishes.
    fn wait_on(&mut self, p: ProcId, d: ProcId) {
        self.runs[p].unmet += 1;
        if !self.runs[d].dependents.contains(&p) {
            self.runs[d].dependents.push(p);
        }
    }

    /// A WANTED proc whose dependencies were just counted: FAILED_DEP when one of them
    /// failed, queued when none is unfinished.
    fn requeue(&mut self, p: ProcId) {
        let failed = self.runs[p]
            .dep_ids
            .iter()
            .copied()
            .find(|&d| self.runs[d].state.is_failure());
        if let Some(d) = failed {
            let why = format!("dependency \"{}\" failed", self.graph.proc(d).name);
            self.fail_dep(p, why);
        } else if self.runs[p].unmet == 0 {
            self.deps_met(p);
        }
    }

    /// A stale attempt ended (see the module doc): its outcome is dropped and the proc is
    /// WANTED again, waiting for those of its dependencies that are to run again.
    pub(super) fn run_again(&mut self, p: ProcId) {
        // The stale attempt gives its lane back; the picture shows the new ones only.
        self.end_attempt(p, None);
        let r = &mut self.runs[p];
        r.stale = false;
        r.state = State::Wanted;
        r.fingerprint = None;
        r.attempts = 0;
        r.live = None;
        r.retry_pending = false;
        r.started_at = WallTime::NONE;
        r.unmet = 0;
        let deps = self.runs[p].dep_ids.clone();
        for &d in &deps {
            if !self.runs[d].state.is_complete() {
                self.wait_on(p, d);
            }
        }
        if self.runs[p].unmet > 0 {
            self.deactivate(p);
        }
        self.requeue(p);
    }
}

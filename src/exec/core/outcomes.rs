//! Outcomes: a job's end, retries, final states and their cascade to dependents, abort.

use std::sync::Arc;

use rhai::Dynamic;

use super::{AbortReason, Action, Core, Span, State, Unsaved, Wake};
use crate::exec::freshness;
use crate::exec::state::Outcome;
use crate::graph::{Body, List, ProcId};

/// The failure of an attempt that ended after the run was aborted, with retries left:
/// it says that it was not retried, as a proc waiting out its retry delay then does
/// ([`Core::fail_retries`]). An attempt the abort terminated says so already.
fn not_retried(outcome: Outcome) -> Outcome {
    let say = |error: String| {
        if error.contains("the run was aborted") {
            error
        } else {
            format!("{error} (not retried: the run was aborted)")
        }
    };
    match outcome {
        Outcome::Failed { error, exit_code } => Outcome::Failed {
            error: say(error),
            exit_code,
        },
        Outcome::OutputsFailed { result, error } => Outcome::OutputsFailed {
            result,
            error: say(error),
        },
        o => o,
    }
}

impl Core {
    /// A job finished one attempt.
    pub(crate) fn complete(
        &mut self,
        p: ProcId,
        outcome: Outcome,
        log: Option<std::path::PathBuf>,
    ) {
        if self.runs[p].state != State::Running {
            return;
        }
        self.release(p);
        self.running_total -= 1;
        if let Some(live) = self.runs[p].live.as_mut() {
            live.cancel = None;
        }
        self.runs[p].log = log.map(Box::new);
        if self.runs[p].stale && self.aborted.is_none() {
            self.run_again(p);
            self.pump();
            return;
        }
        let def = self.graph.proc(p).def.clone();
        let closure = matches!(self.graph.proc(p).body(), Body::Closure(_));
        let outcome = match outcome {
            // The dry runner ran nothing: nothing to save.
            Outcome::WouldRun => Outcome::WouldRun,
            o => self.save_result(p, freshness::storable(o)),
        };
        if matches!(outcome, Outcome::Success(_)) && !closure {
            self.runs[p].exit_code = Some(0);
        }
        let failure = match &outcome {
            Outcome::Failed { error, exit_code } => Some((error, *exit_code)),
            Outcome::OutputsFailed { error, .. } => Some((error, None)),
            _ => None,
        };
        self.end_attempt(p, failure.map(|(error, _)| error.clone()));
        let retry_left = failure.is_some() && self.runs[p].attempts <= def.extras().retries;
        if let Some((error, exit_code)) = failure
            && retry_left
            && self.aborted.is_none()
        {
            let r = &mut self.runs[p];
            r.state = State::Wanted;
            r.retry_pending = true;
            r.exit_code = exit_code;
            self.timers += 1;
            self.actions.push(Action::Retrying {
                name: Arc::from(&*self.graph.proc(p).name),
                attempt: r.attempts,
                error: error.clone(),
            });
            self.actions.push(Action::Retry {
                id: p,
                delay: def.extras().retry_delay,
            });
            self.pump();
            return;
        }
        let outcome = if retry_left {
            not_retried(outcome)
        } else {
            outcome
        };
        match outcome {
            Outcome::Success(v) => self.finish(p, State::Succeeded, Some(v), None, None),
            Outcome::Skipped { why, no_change } => {
                self.runs[p].unchanged = no_change;
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
            // The body's result stays in the report (parproc does the same).
            Outcome::OutputsFailed { result, error } => {
                self.finish(p, State::Failed, Some(result), Some(error), None)
            }
            // Counted as done, quietly, so that its dependents follow in an order that
            // respects dependencies and waves.
            Outcome::WouldRun => {
                self.runs[p].dry = true;
                self.finish(p, State::Succeeded, Some(Dynamic::UNIT), None, None)
            }
        }
        self.pump();
    }

    /// Keeps the task DB's cache in step with an outcome: a result is saved (a result that
    /// JSON cannot hold fails the proc), a failure forgets the old result. A proc that
    /// ends after an interrupt or `--fail-fast` terminated its commands keeps no result:
    /// a closure that caught its command's error may return what a cut-short run gave.
    pub(super) fn save_result(&mut self, p: ProcId, outcome: Outcome) -> Outcome {
        let name = &self.graph.proc(p).name;
        if self.aborted.is_some_and(|r| r != AbortReason::ScriptError) {
            if let Some(cache) = self.cache.as_mut() {
                cache.invalidate(p, name);
            }
            return outcome;
        }
        let hash = self.runs[p].fingerprint.as_ref().map(|f| f.hash.as_str());
        let Some(cache) = self.cache.as_mut() else {
            // Only a proc that is never judged (no hash) runs while the DB opens.
            if self.opening_cache && hash.is_none() {
                self.unsaved.push(Unsaved::Touch(p));
            }
            return outcome;
        };
        freshness::save_result(cache, p, name, hash, outcome)
    }

    /// Procs waiting to be retried will not run again (the run was aborted): each fails
    /// now with its last attempt's error. Those waiting out a retry delay have timers that
    /// may outlast the run, and those whose retry was due but had no slot, lock or wave yet
    /// stay queued for ever: either would end the run WANTED, its failure lost.
    fn fail_retries(&mut self) {
        let waiting: Vec<ProcId> = (0..self.runs.len())
            .filter(|&p| {
                let r = &self.runs[p];
                r.retry_pending || (r.state == State::Wanted && r.attempts > 0)
            })
            .collect();
        for p in waiting {
            let r = &mut self.runs[p];
            r.retry_pending = false;
            let last = r.attempt_log().last().and_then(|a| a.error());
            let error = last.map_or_else(
                || "run aborted before the retry".to_string(),
                |e| format!("{e} (not retried: the run was aborted)"),
            );
            let code = r.exit_code;
            self.finish(p, State::Failed, Some(Dynamic::UNIT), Some(error), code);
        }
    }

    /// A retry delay elapsed: the proc may run again.
    pub(crate) fn retry_due(&mut self, p: ProcId) {
        self.timers -= 1;
        let r = &mut self.runs[p];
        if !r.retry_pending {
            return;
        }
        r.retry_pending = false;
        r.ready_at = self.epoch.moment();
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
    pub(super) fn finish(
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
                for &d in dependents.iter() {
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
                for &d in dependents.iter().rev() {
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
    pub(super) fn finish_one(
        &mut self,
        p: ProcId,
        state: State,
        result: Option<Dynamic>,
        error: Option<String>,
        exit_code: Option<i32>,
    ) -> List<ProcId> {
        self.deactivate(p);
        self.pending -= 1;
        let r = &mut self.runs[p];
        r.state = state;
        r.stale = false;
        r.cycle = self.cycle;
        r.result = result;
        r.set_error(error);
        r.exit_code = exit_code.or(r.exit_code);
        r.duration = r
            .live
            .as_ref()
            .and_then(|l| l.first_start)
            .map_or(Span::NONE, |s| Span::of(s.elapsed()));
        if (self.cache.is_some() || self.opening_cache) && state != State::UpToDate {
            let rec = self.history_record(p);
            match self.cache.as_mut() {
                Some(cache) => cache.record(rec),
                None => self.unsaved.push(Unsaved::Record(Box::new(rec))),
            }
        }
        let r = &mut self.runs[p];
        // The attempts and times are only for the record just made: a run of many procs
        // keeps no heap block for each finished one. An attempt still open keeps them, to
        // give its lane back when it ends.
        if r.attempt_log().last().is_none_or(|a| a.ended()) {
            r.live = None;
        }
        let waiters = r
            .rare
            .as_mut()
            .map(|x| std::mem::take(&mut x.waiters))
            .unwrap_or_default();
        let dependents = std::mem::take(&mut r.dependents);
        if !r.dry {
            self.actions
                .push(Action::Finished(Box::new(self.summary(p))));
        }
        for i in self.ws_of.remove(&p).unwrap_or_default() {
            self.active_ws.remove(i);
        }
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
    pub(super) fn fail_dep(&mut self, p: ProcId, why: String) {
        if self.runs[p].state == State::Wanted {
            self.finish(p, State::FailedDep, None, Some(why), None);
        }
    }

    /// Fails a WANTED proc because of an error in its definition (a cycle, a wave).
    pub(super) fn fail(&mut self, p: ProcId, why: String, exit_code: Option<i32>) {
        if self.runs[p].state == State::Wanted {
            self.finish(p, State::Failed, None, Some(why), exit_code);
        }
    }

    /// Stops scheduling; running jobs are cancelled (their process groups terminated),
    /// except after a script error.
    pub(crate) fn abort(&mut self, reason: AbortReason) {
        match self.aborted {
            // The jobs a script error let run on are still ended by an interrupt, a
            // failure under --fail-fast or an internal error.
            Some(AbortReason::ScriptError) if reason != AbortReason::ScriptError => {}
            Some(_) => return,
            None => {}
        }
        self.aborted = Some(reason);
        self.fail_retries();
        // A script error stops scheduling but lets running jobs finish, as make does;
        // --fail-fast and interrupts terminate them.
        if reason != AbortReason::ScriptError {
            self.actions.push(Action::Cancel(self.judge_cancel.clone()));
            for (p, r) in self.runs.iter().enumerate() {
                if let Some(c) = r.live.as_ref().and_then(|l| l.cancel.as_ref()) {
                    self.actions.push(Action::Cancel(c.clone()));
                    if reason == AbortReason::Interrupted {
                        self.interrupted.push(self.graph.proc(p).name.to_string());
                    }
                }
            }
        }
        for w in 0..self.waiters.len() {
            let job_waits = self.waiters[w].as_ref().is_some_and(|w| w.job.is_some());
            if job_waits || reason == AbortReason::Internal {
                self.wake(w, Wake::Aborted(reason));
            }
        }
    }
}

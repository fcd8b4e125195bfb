//! Waiters and deadlock breaking: `wait` from the script or a closure, waking waiters,
//! and failing whatever can never proceed.
//!
//! Nothing may hang: when no job is running, no timer is pending and the script itself is
//! blocked, whatever still waits can never proceed, and it is failed with a reason (a
//! dependency cycle, a proc waiting for itself, a missing dependency) instead.

use std::sync::mpsc;

use super::{AbortReason, Action, Core, State, Waiter, Wake};
use crate::graph::{GraphError, ProcId};

impl Core {
    /// Registers a wait for `ids`. Returns `None` when they are all complete already.
    ///
    /// `job` is the proc whose closure is waiting: IDLE procs are started for it, and its
    /// parallel slot is given back until the wait is over. Without a job (the top-level
    /// script), waiting for a proc nobody scheduled is an error.
    pub(crate) fn wait_for(
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
            if job.is_none() {
                // The top level waited, if for no time: a dependency still missing is a
                // failure now as when it blocks, whether or not what it waits for has
                // ended by then.
                self.script_blocked();
                self.script_running = true;
            }
            return Ok(None);
        }
        if let Some(j) = job {
            self.check_wave_of_wait(j, &open)?;
        }
        let (tx, rx) = mpsc::channel();
        if let (Some(_), Some(why)) = (job, self.aborted)
            && open.iter().any(|&i| self.runs[i].state != State::Running)
        {
            // Nothing starts after an abort: a body waiting for a proc that is not
            // running would wait for ever, its own job keeping the run from ending.
            tx.send(Wake::Aborted(why)).expect("the receiver is here");
            return Ok(Some(rx));
        }
        if self.all_done() {
            // Only an aborted run is done with procs still open: they will never run.
            let why = self.aborted.map_or(Wake::Done, Wake::Aborted);
            tx.send(why).expect("the receiver is here");
            return Ok(Some(rx));
        }
        let w = self.waiters.len();
        self.waiters.push(Some(Waiter {
            remaining: open.len(),
            job,
            tx,
        }));
        for i in open {
            self.runs[i].rare().waiters.push(w);
        }
        match job {
            Some(j) => {
                self.set_waiting(j, true);
                self.give_slot(j);
                self.pump();
            }
            None => self.script_blocked(),
        }
        Ok(Some(rx))
    }

    /// Refuses a wait of `j`'s body for a proc of a higher wave that has not started: it
    /// starts only once `j`'s wave has finished, `j` included, so the wait would never end,
    /// whatever the other procs do.
    fn check_wave_of_wait(&self, j: ProcId, open: &[ProcId]) -> Result<(), GraphError> {
        let wave = |p: ProcId| self.graph.proc(p).def.extras().wave;
        let later = open
            .iter()
            .find(|&&q| self.runs[q].state != State::Running && wave(q) > wave(j));
        match later {
            Some(&q) => Err(GraphError::WaitForHigherWave {
                waiter: self.graph.proc(j).name.to_string(),
                waiter_wave: wave(j),
                target: self.graph.proc(q).name.to_string(),
                target_wave: wave(q),
            }),
            None => Ok(()),
        }
    }

    /// Registers a wait for every scheduled proc (the top-level `wait()` and the end of
    /// the script).
    pub(crate) fn wait_all(&mut self) -> Result<Option<mpsc::Receiver<Wake>>, GraphError> {
        self.flush_now()?;
        if self.all_done() {
            return Ok(None);
        }
        let (tx, rx) = mpsc::channel();
        self.all_waiters.push(tx);
        self.script_blocked();
        Ok(Some(rx))
    }

    /// Nothing is left to do, and the task DB (when it was opening) has taken the writes
    /// of the procs that ended meanwhile.
    pub(super) fn all_done(&self) -> bool {
        let saved = !self.opening_cache || self.unsaved.is_empty();
        (self.pending == 0 && self.pending_now.is_empty() && saved)
            || (self.aborted.is_some()
                && self.running_total == 0
                && self.judgings_out == 0
                && saved)
            || self.aborted == Some(AbortReason::Internal)
    }

    /// The top-level script finished or blocked: definitions are closed, so dependencies
    /// still missing now are failures.
    pub(super) fn script_blocked(&mut self) {
        self.script_running = false;
        for p in std::mem::take(&mut self.missing_blocked) {
            // Once each: a proc may be listed again after its flag was cleared.
            if !std::mem::take(&mut self.runs[p].missing_blocked) {
                continue;
            }
            if self.runs[p].state == State::Wanted && !self.runs[p].missing().is_empty() {
                self.deps_met(p);
            }
        }
        // So do those with other dependencies still to end: left to fail once those had
        // ended, they ran when the script went on first (when what it waited for was one
        // of them), and failed when it did not.
        let mut waiting: Vec<ProcId> = std::mem::take(&mut self.awaiting_missing)
            .into_values()
            .flatten()
            .filter(|&p| self.runs[p].state == State::Wanted && !self.runs[p].missing().is_empty())
            .collect();
        waiting.sort_unstable();
        waiting.dedup();
        for p in waiting {
            self.fail_missing(p);
        }
        // A proc that failed here may have held back a higher wave.
        self.pump();
    }

    /// The top-level script ended.
    pub(crate) fn script_done(&mut self) {
        self.script_blocked();
    }

    pub(super) fn waiter_progress(&mut self, w: usize) {
        let Some(waiter) = self.waiters[w].as_mut() else {
            return;
        };
        waiter.remaining -= 1;
        if waiter.remaining == 0 {
            self.wake(w, Wake::Done);
        }
    }

    pub(super) fn wake(&mut self, w: usize, why: Wake) {
        let Some(waiter) = self.waiters[w].as_ref() else {
            return;
        };
        match waiter.job {
            Some(_) if why == Wake::Done => self.resume.push_back(w),
            Some(j) => {
                let waiter = self.waiters[w].take().expect("present");
                self.set_waiting(j, false);
                self.take_slot(j);
                self.actions.push(Action::Wake(waiter.tx, why));
            }
            None => {
                let waiter = self.waiters[w].take().expect("present");
                self.script_running = true;
                self.actions.push(Action::Wake(waiter.tx, why));
            }
        }
    }

    /// Marks the closure of `j` as blocked in a wait, or no longer. Meanwhile the
    /// resources it holds count as held by a waiting proc (see [`super::Budget`]), and the
    /// procs parked on the budget are queued again.
    fn set_waiting(&mut self, j: ProcId, waiting: bool) {
        let was = std::mem::replace(&mut self.runs[j].waiting, waiting);
        if was == waiting || !self.runs[j].holds_resources {
            return;
        }
        let need = self.graph.proc(j).def.extras().resources.clone();
        if waiting {
            for q in self.budget.wait(&need) {
                self.enqueue(q);
            }
        } else {
            self.budget.resume(&need);
        }
    }

    pub(super) fn resume_waiter(&mut self, w: usize) {
        if let Some(waiter) = self.waiters[w].take() {
            let j = waiter.job.expect("job waiter");
            self.set_waiting(j, false);
            self.take_slot(j);
            self.actions.push(Action::Wake(waiter.tx, Wake::Done));
        }
    }

    /// A closure job was cancelled (its timeout elapsed): if it is blocked in a wait, the
    /// wait returns with `why` so the closure can end.
    pub(crate) fn cancel_wait(&mut self, job: ProcId, why: &str) {
        for w in 0..self.waiters.len() {
            if self.waiters[w].as_ref().is_some_and(|w| w.job == Some(job)) {
                self.resume.retain(|&r| r != w);
                self.wake(w, Wake::Deadlock(why.to_string()));
            }
        }
    }

    /// Ends a locked operation: wakes `wait()`ers whose condition holds and resolves
    /// situations where nothing can make progress any more.
    pub(crate) fn settle(&mut self) {
        loop {
            if self.all_done() {
                // The script's `wait()` returns: it runs again and may define more procs.
                if !self.all_waiters.is_empty() {
                    self.script_running = true;
                }
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
    pub(super) fn stuck(&self) -> bool {
        let busy = self.script_running
            || self.opening_cache
            || self.running > 0
            || self.pools.running() > 0
            || self.timers > 0
            || !self.resume.is_empty();
        if busy {
            return false;
        }
        let mut waiters = self.waiters.iter().flatten();
        let job_blocked = waiters.clone().any(|w| w.job.is_some());
        if self.aborted.is_some() {
            // What never started stays not run; only bodies waiting for one another
            // (a cycle of waits) are left to break.
            return job_blocked;
        }
        let script_blocked = !self.all_waiters.is_empty() || waiters.next().is_some();
        job_blocked || (self.pending > 0 && script_blocked)
    }

    /// Nothing runs and nothing can start: fail what waits, with the reason.
    ///
    /// When procs blocked in a `wait` are on a cycle of waits, dependencies, locks,
    /// resources and waves, one of them is failed, the one defined last: failing it ends
    /// the cycle (its wait returns an error, and the locks and resources it holds are
    /// released when its body ends), and the others go on (the next settle fails another
    /// if the run is still stuck). Blocked waits on no cycle found are all failed, with
    /// the reason: no one proc's failure is known to free the others. Without waits,
    /// every WANTED proc is failed.
    pub(super) fn break_deadlock(&mut self) {
        let mut blocked: Vec<(ProcId, usize)> = (0..self.waiters.len())
            .filter_map(|w| Some((self.waiters[w].as_ref()?.job?, w)))
            .collect();
        if !blocked.is_empty() {
            blocked.sort_unstable_by(|a, b| b.cmp(a));
            let edges = self.wait_edges();
            let cyclic = super::cycle::on_cycle(edges.len(), |p| &edges[p], |p| self.live(p));
            let victim = blocked
                .iter()
                .filter(|&&(j, _)| cyclic[j])
                .find_map(|&(j, w)| Some((j, w, self.wait_cycle(j, &edges)?)));
            if let Some((j, w, cycle)) = victim {
                let why = format!(
                    "a cycle of waits and dependencies: {cycle}; it is the one proc failed to break it, so that the others go on"
                );
                self.wake_deadlocked(j, w, &why);
                return;
            }
            let why = self.blocked_reason();
            for (j, w) in blocked {
                self.wake_deadlocked(j, w, &why);
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

    /// Ends the wait `w` of the closure of `j` with an error saying why it never ends.
    fn wake_deadlocked(&mut self, j: ProcId, w: usize, why: &str) {
        let msg = format!(
            "proc \"{}\" waits for procs that can never finish while it waits ({why})",
            self.graph.proc(j).name,
        );
        self.wake(w, Wake::Deadlock(msg));
    }

    /// For each unfinished proc, what it waits for: its dependencies, the procs its
    /// closure is blocked waiting for (`ctx.wait`), the holder of a lock it is parked on,
    /// the holders of resources it is parked on, and the procs of a lower wave that hold it
    /// back; each list sorted, so that the cycle named is the same in every run. Made only
    /// to explain a deadlock.
    ///
    /// The lower waves are reached through one node per wave held back, numbered after
    /// the procs (see [`Core::is_wave_node`]): a node for each pair of procs could be
    /// 10,000 × 10,000 edges.
    fn wait_edges(&self) -> Vec<Vec<ProcId>> {
        let mut edges: Vec<Vec<ProcId>> = self
            .runs
            .iter()
            .map(|r| {
                if r.state.is_complete() {
                    Vec::new()
                } else {
                    r.dep_ids.to_vec()
                }
            })
            .collect();
        for (p, r) in self.runs.iter().enumerate() {
            if r.state.is_complete() {
                continue;
            }
            for &w in r.rare.as_ref().map_or(&[][..], |rare| &rare.waiters) {
                if let Some(j) = self
                    .waiters
                    .get(w)
                    .and_then(Option::as_ref)
                    .and_then(|w| w.job)
                {
                    edges[j].push(p);
                }
            }
        }
        for (p, _, holder) in self.locks.parked_on_held() {
            if self.runs[p].state == State::Wanted {
                edges[p].push(holder);
            }
        }
        let holders: Vec<ProcId> = (0..self.runs.len())
            .filter(|&q| self.runs[q].holds_resources)
            .collect();
        for p in self.budget.parked() {
            if self.runs[p].state == State::Wanted {
                let needed = holders
                    .iter()
                    .filter(|&&q| q != p && !self.resources_held_for(p, q).is_empty());
                edges[p].extend(needed);
            }
        }
        self.add_wave_barriers(&mut edges);
        for e in &mut edges {
            e.sort_unstable();
            e.dedup();
        }
        edges
    }

    /// Whether `p`, a proc or a wave's node of [`Core::wait_edges`], may still be waited for.
    fn live(&self, p: ProcId) -> bool {
        self.runs.get(p).is_none_or(|r| !r.state.is_complete())
    }

    /// Whether `node` of [`Core::wait_edges`] is a wave's node, past the procs: the
    /// procs of that wave held back wait for it, and it waits for the unfinished ready or
    /// running procs of the lower waves.
    fn is_wave_node(&self, node: ProcId) -> bool {
        node >= self.runs.len()
    }

    /// The waves with a ready proc held back by a lower wave, in order.
    fn held_back_waves(&self) -> Vec<i64> {
        let mut waves: Vec<i64> = self
            .waves_held_back()
            .map(|p| self.graph.proc(p).def.extras().wave)
            .collect();
        waves.sort_unstable();
        waves.dedup();
        waves
    }

    /// The ready procs held back by a lower wave.
    fn waves_held_back(&self) -> impl Iterator<Item = ProcId> + '_ {
        (0..self.runs.len()).filter(|&p| {
            let r = &self.runs[p];
            r.active
                && r.state == State::Wanted
                && self.waves.blocks(self.graph.proc(p).def.extras().wave)
        })
    }

    /// Adds a node for each wave in [`Core::held_back_waves`] to `edges`, after the procs.
    fn add_wave_barriers(&self, edges: &mut Vec<Vec<ProcId>>) {
        let wave = |p: ProcId| self.graph.proc(p).def.extras().wave;
        let waves = self.held_back_waves();
        let first = edges.len();
        let active: Vec<ProcId> = (0..self.runs.len())
            .filter(|&p| self.runs[p].active && !self.runs[p].state.is_complete())
            .collect();
        for &w in &waves {
            edges.push(active.iter().copied().filter(|&q| wave(q) < w).collect());
        }
        for p in self.waves_held_back().collect::<Vec<_>>() {
            let i = waves.binary_search(&wave(p)).expect("a held-back wave");
            edges[p].push(first + i);
        }
    }

    /// The resources `p` needs that `q` holds, sorted by name.
    fn resources_held_for(&self, p: ProcId, q: ProcId) -> Vec<&str> {
        if !self.runs[q].holds_resources {
            return Vec::new();
        }
        let held = &self.graph.proc(q).def.extras().resources;
        let need = &self.graph.proc(p).def.extras().resources;
        need.iter()
            .filter(|&(k, n)| n > 0 && held.get(k) > 0)
            .map(|(k, _)| k)
            .collect()
    }

    /// Why `p` waits for `q`, when it is not a dependency or a wait: the locks and
    /// resources of `p` that `q` holds.
    fn edge_reasons(&self, p: ProcId, q: ProcId) -> Vec<String> {
        let (pn, qn) = (&self.graph.proc(p).name, &self.graph.proc(q).name);
        let mut locks: Vec<&str> = self
            .locks
            .parked_on_held()
            .filter(|&(w, _, h)| w == p && h == q)
            .map(|(_, l, _)| l)
            .collect();
        locks.sort_unstable();
        let mut out: Vec<String> = locks
            .into_iter()
            .map(|l| format!("\"{pn}\" needs lock \"{l}\" held by \"{qn}\""))
            .collect();
        if self.runs[p].state == State::Wanted && self.budget.parked().any(|b| b == p) {
            out.extend(
                self.resources_held_for(p, q)
                    .into_iter()
                    .map(|r| format!("\"{pn}\" needs resource \"{r}\" held by \"{qn}\"")),
            );
        }
        out
    }

    /// A cycle through `j` over `edges` ([`Core::wait_edges`]) (none when `j` only waits
    /// for a cycle of others), as `a -> b -> a`, with the locks, resources and waves in
    /// it: `a -> b -> a, where "b" needs lock "x" held by "a"`.
    fn wait_cycle(&self, j: ProcId, edges: &[Vec<ProcId>]) -> Option<String> {
        let back = edges[j].iter().filter(|&&d| self.live(d)).find_map(|&d| {
            super::cycle::path(
                d,
                j,
                |p| edges.get(p).map_or(&[][..], Vec::as_slice),
                |p| self.live(p),
            )
        })?;
        let cycle: Vec<ProcId> = std::iter::once(j).chain(back).collect();
        let mut names: Vec<&str> = Vec::new();
        let mut reasons: Vec<String> = Vec::new();
        for (i, &p) in cycle.iter().enumerate() {
            if self.is_wave_node(p) {
                continue;
            }
            names.push(&self.graph.proc(p).name);
            match cycle.get(i + 1) {
                Some(&b) if self.is_wave_node(b) => {
                    // The cycle ends at `j`, a proc: a wave's node is never last.
                    let q = cycle[i + 2];
                    let (pw, qw) = (
                        self.graph.proc(p).def.extras().wave,
                        self.graph.proc(q).def.extras().wave,
                    );
                    reasons.push(format!(
                        "\"{}\" (wave {pw}) starts only once wave {qw} has finished, \"{}\" included",
                        self.graph.proc(p).name,
                        self.graph.proc(q).name
                    ));
                }
                Some(&q) => reasons.extend(self.edge_reasons(p, q)),
                None => {}
            }
        }
        let mut text = names.join(" -> ");
        if !reasons.is_empty() {
            text.push_str(&format!(", where {}", reasons.join(", ")));
        }
        Some(text)
    }

    pub(super) fn blocked_reason(&self) -> String {
        if let Some((l, p)) = self.locks.any_holder() {
            return format!("lock \"{l}\" is held by \"{}\"", self.graph.proc(p).name);
        }
        if let Some(p) = self.budget.any_parked() {
            return format!(
                "\"{}\" waits for resources held by procs that are waiting themselves",
                self.graph.proc(p).name
            );
        }
        if self.waves.any_parked()
            && let Some(w) = self.waves.lowest()
        {
            return format!("wave {w} has not finished");
        }
        "a dependency can never finish".into()
    }
}

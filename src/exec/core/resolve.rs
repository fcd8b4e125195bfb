//! Graph resolution at schedule time: a proc moving to WANTED gets its rdeps injected,
//! its `when_scheduled` targets scheduled, and its dependency names resolved to edges;
//! cycles and wave violations fail the procs involved.
//!
//! By the time these run, [`super::prepare`] has created every proc they reach, so no
//! closure is needed here.

use super::{Core, State, WsTarget, cycle};
use crate::graph::rules::Slot;
use crate::graph::{GraphError, ProcId, fill_text};

impl Core {
    pub(super) fn want(&mut self, id: ProcId, work: &mut Vec<ProcId>) -> Result<(), GraphError> {
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
    pub(super) fn inject_rdeps(&mut self, x: ProcId) -> Result<(), GraphError> {
        let name = self.graph.proc(x).name.clone();
        let (existing, create) = self.graph.rdep_sources(x);
        let mut inject: Vec<String> = existing
            .into_iter()
            .map(|d| self.graph.proc(d).name.to_string())
            .collect();
        for (proto, args) in create {
            if let Some(id) = self.graph.rdep_instance(proto, args)? {
                inject.push(self.graph.proc(id).name.to_string());
            }
        }
        self.sync_runs();
        for (_, (d, target)) in self.active_ws.candidates(&name) {
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
    pub(super) fn when_scheduled(
        &mut self,
        x: ProcId,
        work: &mut Vec<ProcId>,
    ) -> Result<(), GraphError> {
        let node = self.graph.proc(x);
        if node.def.extras().when_scheduled.is_empty() {
            return Ok(());
        }
        let name = node.name.clone();
        let rules: Vec<(String, Result<String, GraphError>)> = node
            .def
            .extras()
            .when_scheduled
            .iter()
            .map(|p| (p.clone(), fill_text(p, node.args())))
            .collect();
        for (pattern, filled) in rules {
            let Ok(target) = filled else {
                let sep = self.graph.separator().to_string();
                if let Ok(t) = crate::graph::pattern::Template::parse(&pattern, &sep) {
                    self.activate_ws(x, Slot::of(&t), WsTarget::Pattern(t));
                }
                continue;
            };
            self.activate_ws(x, Slot::name(&target), WsTarget::Name(target.clone()));
            let Some(t) = self.graph.resolve(&target)? else {
                self.awaiting_ws.entry(target).or_default().push(x);
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

    /// Makes a `when_scheduled` rule of `x` active until `x` ends.
    fn activate_ws(&mut self, x: ProcId, slot: Slot, target: WsTarget) {
        let i = self.active_ws.add(slot, (x, target));
        self.ws_of.entry(x).or_default().push(i);
    }

    /// Resolves the dependencies of newly WANTED procs, schedules them, checks waves and
    /// cycles, and queues whatever is ready.
    pub(super) fn process(&mut self, mut work: Vec<ProcId>) -> Result<(), GraphError> {
        let mut first_err: Option<GraphError> = None;
        // `work[..kept]` are the procs resolved here, in order: kept in place, as an
        // operation may schedule every proc of a large run.
        let mut kept = 0;
        let mut i = 0;
        while i < work.len() {
            let p = work[i];
            i += 1;
            if self.runs[p].state != State::Wanted {
                continue;
            }
            work[kept] = p;
            kept += 1;
            self.runs[p].resolved = true;
            let deps = self.graph.proc(p).deps.to_vec();
            for dep in deps {
                if let Err(e) = self.resolve_edge(p, &dep, &mut work) {
                    if self.runs[p].state == State::Wanted {
                        self.fail(p, e.to_string(), None);
                    }
                    first_err.get_or_insert(e);
                }
            }
        }
        work.truncate(kept);
        let new = work;
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

    pub(super) fn resolve_edge(
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
                self.runs[p].rare().missing.push(dep.to_string());
                self.awaiting_missing
                    .entry(dep.to_string())
                    .or_default()
                    .push(p);
                Ok(())
            }
        }
    }

    /// Makes `p` depend on `d`, scheduling `d` if it is IDLE.
    pub(super) fn edge(
        &mut self,
        p: ProcId,
        d: ProcId,
        work: &mut Vec<ProcId>,
    ) -> Result<(), GraphError> {
        self.wave_fault(p, d)?;
        if !self.runs[p].add_dep(d) {
            return Ok(());
        }
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

    /// A dependency of `p` on `d` is a fault when `d` is in a higher wave.
    pub(super) fn wave_fault(&self, p: ProcId, d: ProcId) -> Result<(), GraphError> {
        let (pw, dw) = (
            self.graph.proc(p).def.extras().wave,
            self.graph.proc(d).def.extras().wave,
        );
        if dw > pw {
            return Err(GraphError::WaveViolation {
                dependent: self.graph.proc(p).name.to_string(),
                dependent_wave: pw,
                dep: self.graph.proc(d).name.to_string(),
                dep_wave: dw,
            });
        }
        Ok(())
    }

    /// Adds a dependency to a proc whose dependencies were already resolved.
    pub(super) fn add_late_edge(
        &mut self,
        p: ProcId,
        d: ProcId,
        work: &mut Vec<ProcId>,
    ) -> Result<(), GraphError> {
        let was_ready = self.runs[p].unmet == 0 && self.runs[p].missing().is_empty();
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

    /// Handles dependencies that were missing and `when_scheduled` targets that were
    /// awaited, and have since been defined.
    pub(super) fn settle_missing(&mut self) -> Result<(), GraphError> {
        let mut first_err = self.settle_awaited_targets().err();
        while !self.resolved_missing.is_empty() {
            let batch = std::mem::take(&mut self.resolved_missing);
            let mut work = Vec::new();
            for (p, name) in batch {
                if self.runs[p].state != State::Wanted {
                    // Ended meanwhile (FAILED_DEP through another dependency, with the
                    // run kept going): the dependency is scheduled all the same, as
                    // its defined dependencies were when it was, so that what runs does
                    // not depend on whether the failure came before the definition.
                    let d = self.graph.lookup(&name).expect("defined");
                    if let Err(e) = self.want(d, &mut work) {
                        first_err.get_or_insert(e);
                    }
                    continue;
                }
                if let Some(r) = self.runs[p].rare.as_mut() {
                    r.missing.retain(|m| *m != name);
                }
                // Active only for its wave while a dependency was missing (see
                // `deps_met`): from here on, as any proc, once it is ready.
                if self.runs[p].missing().is_empty() {
                    self.deactivate(p);
                }
                let d = self.graph.lookup(&name).expect("defined");
                if let Err(e) = self.add_late_edge(p, d, &mut work) {
                    first_err.get_or_insert(e);
                }
                if self.runs[p].state == State::Wanted && self.runs[p].unmet == 0 {
                    // Left in the list, which skips it (see `script_blocked`).
                    self.runs[p].missing_blocked = false;
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

    /// Schedules each `when_scheduled` target defined since its declarer was scheduled,
    /// after the declarer, whatever its state now: scheduling the declarer schedules the
    /// target, whichever of the two the script defines first.
    fn settle_awaited_targets(&mut self) -> Result<(), GraphError> {
        let mut work = Vec::new();
        let mut first_err = None;
        for (t, x) in std::mem::take(&mut self.resolved_ws) {
            let declarer = self.graph.proc(x).name.clone();
            let added = self.graph.add_dep_name(t, &declarer);
            let r = match self.runs[t].state {
                State::Idle => self.want(t, &mut work),
                State::Wanted if added && self.runs[t].resolved => {
                    self.add_late_edge(t, x, &mut work)
                }
                _ => Ok(()),
            };
            if let Err(e) = r {
                first_err.get_or_insert(e);
            }
        }
        if let Err(e) = self.process(work) {
            first_err.get_or_insert(e);
        }
        first_err.map_or(Ok(()), Err)
    }

    /// A cycle among the WANTED procs reachable from `new`, if any.
    pub(super) fn find_cycle(&self, new: &[ProcId]) -> Option<Vec<ProcId>> {
        cycle::find(
            new,
            |p| &self.runs[p].dep_ids,
            |p| !self.runs[p].state.is_complete() && self.runs[p].resolved,
        )
    }

    /// A dependency path from `from` to `to` over unfinished procs, if one exists.
    pub(super) fn path(&self, from: ProcId, to: ProcId) -> Option<Vec<ProcId>> {
        cycle::path(
            from,
            to,
            |p| &self.runs[p].dep_ids,
            |p| !self.runs[p].state.is_complete(),
        )
    }
}

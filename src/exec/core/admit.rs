//! All or nothing: the graph faults scheduling some procs would meet, found before any
//! of them is scheduled.
//!
//! `run`, `start`, a command-line target and a `now` proc schedule what they name and
//! everything it reaches. A fault on the way (a cycle, a missing dependency with
//! `allow_missing_deps` off, a wave violation, a value no `arg_choices` allows, a
//! `when_scheduled` target that already ran) used to be met halfway: the procs scheduled
//! before it were started, the ones at fault FAILED, and the operation threw. [`Core::admit`]
//! walks what the operation will schedule as `want` and `process` would, changing no run
//! state, and returns the first fault; the operation then throws having scheduled nothing.

use hashbrown::{HashMap, HashSet};

use super::{Core, State, WsTarget, cycle};
use crate::graph::{GraphError, ProcId, ProtoId, pattern::is_glob};

/// The dependency edges the operation would add, by proc: for a proc it schedules, all
/// of them; for a scheduled proc a `when_scheduled` rule makes depend on one it
/// schedules, its current ones and that one.
#[derive(Default)]
struct Plan {
    deps: HashMap<ProcId, Vec<ProcId>>,
    /// The procs with edges, in the order met (the roots of the cycle search).
    order: Vec<ProcId>,
    /// Whether a scheduled proc gets an edge (to a proc the operation schedules): only
    /// then can a cycle pass through procs scheduled before, which the search then
    /// walks. Otherwise it walks the new procs only: a run at a time, each depending on
    /// the one before, would walk every earlier one still pending.
    late: bool,
    /// Whether a dependency that names nothing is let be (`allow_missing_deps`, or a
    /// `now` proc checked as it is defined, whose dependencies may be defined after it).
    missing_ok: bool,
}

impl Core {
    /// The first graph fault scheduling the IDLE procs of `ids` would meet, changing no
    /// run state. Called once [`Core::prepare`] made every proc it reaches, so that no
    /// closure is needed (if one is, the fault is [`GraphError::Unresolved`] as there).
    pub(super) fn admit(&mut self, ids: &[ProcId]) -> Result<(), GraphError> {
        self.admit_with(ids, self.opts.allow_missing_deps, None)
    }

    /// Checks the `now` proc `id` as its `proc(...)` defines it: a fault its scheduling
    /// would meet is that call's error, naming the proc, and the proc is left unscheduled.
    /// A missing dependency is none yet: it may be defined after the proc, before the
    /// next `run`, `start` or `wait` schedules it. The walk stops at the procs earlier
    /// checks walked (a chain of `now` procs is checked in linear time), so a fault through
    /// a name one of those missing then is met when the procs are scheduled, as before.
    pub(super) fn admit_now(&mut self, id: ProcId) -> Result<(), GraphError> {
        let mut known = std::mem::take(&mut self.now_reached);
        let r = self.admit_with(&[id], true, Some(&mut known));
        self.now_reached = known;
        match r {
            Err(GraphError::Unresolved(n)) => Err(GraphError::Unresolved(n)),
            Err(fault) => {
                self.pending_now.retain(|&p| p != id);
                Err(GraphError::NowFault {
                    name: self.graph.proc(id).name.to_string(),
                    fault: Box::new(fault),
                })
            }
            Ok(()) => Ok(()),
        }
    }

    /// [`Core::admit`], letting missing dependencies be with `missing_ok` and walking none
    /// of `known`, to which the procs walked are then added when no fault is found.
    fn admit_with(
        &mut self,
        ids: &[ProcId],
        missing_ok: bool,
        known: Option<&mut HashSet<ProcId>>,
    ) -> Result<(), GraphError> {
        let plan = Plan {
            missing_ok,
            ..Plan::default()
        };
        let stack: Vec<ProcId> = ids.iter().rev().copied().collect();
        self.admit_plan(plan, stack, known)
    }

    /// Walks what `stack` schedules into `plan` (which may hold edges already), then looks
    /// for a cycle in it; adds the procs walked to `known` when no fault is found.
    fn admit_plan(
        &mut self,
        mut plan: Plan,
        mut stack: Vec<ProcId>,
        known: Option<&mut HashSet<ProcId>>,
    ) -> Result<(), GraphError> {
        let mut seen: HashSet<ProcId> = HashSet::new();
        while let Some(x) = stack.pop() {
            let walked = known.as_ref().is_some_and(|k| k.contains(&x));
            if self.runs[x].state != State::Idle || walked || !seen.insert(x) {
                continue;
            }
            self.admit_one(x, &mut plan, &mut stack)?;
        }
        let cycle = cycle::find(
            &plan.order,
            |p| {
                plan.deps
                    .get(&p)
                    .map_or(&self.runs[p].dep_ids[..], Vec::as_slice)
            },
            |p| {
                plan.deps.contains_key(&p)
                    || (plan.late && !self.runs[p].state.is_complete() && self.runs[p].resolved)
            },
        );
        match cycle {
            Some(c) => Err(GraphError::Cycle(
                c.iter()
                    .map(|&p| self.graph.proc(p).name.to_string())
                    .collect(),
            )),
            None => {
                if let Some(k) = known {
                    k.extend(seen);
                }
                Ok(())
            }
        }
    }

    /// The first fault settling the procs just defined would meet (see `settle_missing`),
    /// changing no run state: each dependent waiting for one of them gets an edge to it,
    /// each `when_scheduled` target among them one to its declarer, and what they reach is
    /// scheduled. A definition that closes a cycle through a waiting dependent, or breaks
    /// a wave rule, is then refused at its call (see [`Core::forget_since`]), not failed
    /// in the procs waiting for it.
    pub(super) fn admit_resolved(&mut self) -> Result<(), GraphError> {
        if self.resolved_missing.is_empty() && self.resolved_ws.is_empty() {
            return Ok(());
        }
        let mut plan = Plan {
            missing_ok: self.opts.allow_missing_deps,
            late: true,
            ..Plan::default()
        };
        let mut stack = Vec::new();
        let waiting: Vec<(ProcId, ProcId)> = self
            .resolved_missing
            .iter()
            .filter(|(p, _)| self.runs[*p].state == State::Wanted)
            .filter_map(|(p, name)| Some((*p, self.graph.lookup(name)?)))
            .collect();
        let awaited: Vec<(ProcId, ProcId)> = self
            .resolved_ws
            .iter()
            .copied()
            .filter(|&(t, _)| match self.runs[t].state {
                State::Idle => true,
                State::Wanted => self.runs[t].resolved,
                _ => false,
            })
            .collect();
        // A waiting dependent's new dependency is scheduled; a target that is not
        // scheduled yet is, after its declarer.
        for (p, d) in waiting {
            self.wave_fault(p, d)?;
            stack.push(d);
            plan.edges(p, &self.runs[p].dep_ids).push(d);
        }
        for (t, x) in awaited {
            self.wave_fault(t, x)?;
            if self.runs[t].state == State::Idle {
                stack.push(t);
            }
            plan.edges(t, &self.runs[t].dep_ids).push(x);
        }
        self.admit_plan(plan, stack, None)
    }

    /// Forgets the procs from `first` on and the protos from `first_proto` on, made by a
    /// definition that was refused: their run states, and what their names resolved (the
    /// dependents and `when_scheduled` declarers waiting for them wait again), so that the
    /// graph is as it was before it.
    pub(super) fn forget_since(&mut self, first: ProcId, first_proto: ProtoId) {
        let gone = |graph: &crate::graph::Graph, name: &str| {
            graph.lookup(name).is_some_and(|id| id >= first)
        };
        let (again, kept): (Vec<_>, Vec<_>) = std::mem::take(&mut self.resolved_missing)
            .into_iter()
            .partition(|(_, name)| gone(&self.graph, name));
        self.resolved_missing = kept;
        for (p, name) in again {
            self.awaiting_missing.entry(name).or_default().push(p);
        }
        let (again, kept): (Vec<_>, Vec<_>) = std::mem::take(&mut self.resolved_ws)
            .into_iter()
            .partition(|&(t, _)| t >= first);
        self.resolved_ws = kept;
        for (t, x) in again {
            let name = self.graph.proc(t).name.to_string();
            self.awaiting_ws.entry(name).or_default().push(x);
        }
        self.pending_now.retain(|&p| p < first);
        self.now_reached.retain(|&p| p < first);
        self.runs.truncate(first);
        self.graph.forget_since(first, first_proto);
    }

    /// Checks scheduling the IDLE proc `x` as `want` and `process` do it: its rdeps, its
    /// `when_scheduled` targets, its dependencies. Pushes the IDLE procs it reaches.
    fn admit_one(
        &mut self,
        x: ProcId,
        plan: &mut Plan,
        stack: &mut Vec<ProcId>,
    ) -> Result<(), GraphError> {
        let mut deps = self.rdeps_into(x)?;
        self.admit_when_scheduled(x, plan, stack)?;
        let names = self.graph.proc(x).deps.to_vec();
        for dep in names {
            if is_glob(&dep) {
                deps.extend(self.graph.expand(&dep)?);
                continue;
            }
            match self.graph.resolve(&dep)? {
                Some(d) => deps.push(d),
                None if !plan.missing_ok => {
                    return Err(GraphError::MissingDep {
                        dependent: self.graph.proc(x).name.to_string(),
                        dep,
                    });
                }
                None => {}
            }
        }
        self.sync_runs();
        for &d in &deps {
            self.wave_fault(x, d)?;
            stack.push(d);
        }
        // A proc with no edges is in no cycle: the plan keeps none for it (a run of
        // 100,000 procs without dependencies would hold a map of them all).
        if !deps.is_empty() || !self.runs[x].dep_ids.is_empty() {
            plan.edges(x, &self.runs[x].dep_ids).extend(deps);
        }
        Ok(())
    }

    /// The procs scheduling `x` makes it depend on: those its rdep rules and the active
    /// `when_scheduled` rules of scheduled procs inject (see `inject_rdeps`).
    fn rdeps_into(&mut self, x: ProcId) -> Result<Vec<ProcId>, GraphError> {
        let (mut deps, create) = self.graph.rdep_sources(x);
        for (proto, args) in create {
            deps.extend(self.graph.rdep_instance(proto, args)?);
        }
        self.sync_runs();
        let name = self.graph.proc(x).name.clone();
        for (_, (d, target)) in self.active_ws.candidates(&name) {
            let hit = match target {
                WsTarget::Name(t) => **t == *name,
                WsTarget::Pattern(t) => t.matches(&name).is_some(),
            };
            if hit && *d != x {
                deps.push(*d);
            }
        }
        Ok(deps)
    }

    /// Checks `x`'s `when_scheduled` targets as `when_scheduled` schedules them: each
    /// that exists comes to depend on `x`; one already running or finished is a fault.
    fn admit_when_scheduled(
        &mut self,
        x: ProcId,
        plan: &mut Plan,
        stack: &mut Vec<ProcId>,
    ) -> Result<(), GraphError> {
        for target in self.when_scheduled_targets(x) {
            let Some(t) = self.graph.resolve(&target)? else {
                continue;
            };
            self.sync_runs();
            let state = self.runs[t].state;
            if state == State::Running || state.is_complete() {
                return Err(GraphError::TooLate {
                    declarer: self.graph.proc(x).name.to_string(),
                    target,
                    state: state.to_string(),
                });
            }
            if state == State::Wanted && !self.runs[t].resolved {
                continue;
            }
            self.wave_fault(t, x)?;
            stack.push(t);
            plan.late |= state != State::Idle;
            plan.edges(t, &self.runs[t].dep_ids).push(x);
        }
        Ok(())
    }
}

impl Plan {
    /// The edges of `p`, starting from `current` (its edges now) when it has none yet.
    fn edges(&mut self, p: ProcId, current: &[ProcId]) -> &mut Vec<ProcId> {
        self.deps.entry(p).or_insert_with(|| {
            self.order.push(p);
            current.to_vec()
        })
    }
}

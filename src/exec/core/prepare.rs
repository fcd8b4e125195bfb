//! Graph resolution ahead of scheduling: the procs an operation will reach are created
//! before it changes any run state, so that it never lacks a closure's value halfway.
//!
//! An operation (`run`, `start`, a definition, a wait that starts procs) first walks what
//! it will schedule — the IDLE procs reachable from its roots through dependency names,
//! rdep rules and `when_scheduled` targets — and creates every proc a proto makes on the
//! way. Creating a proc can need the values of script closures (its dependency closures,
//! an `arg_choices` closure); those are collected, not called: the walk fails with
//! [`GraphError::Unresolved`] naming them all, the caller calls them with the lock released
//! and retries. Once the walk needs nothing, the operation itself runs in the same locked
//! section and only meets procs that exist. Other errors met on the way are left for the
//! operation, which reports them as it always did.

use std::collections::HashSet;
use std::sync::Arc;

use super::{Core, State};
use crate::graph::{GraphError, Need, Needs, ProcId, fill_text, pattern::is_glob};

/// Where an operation starts resolving.
pub(crate) enum Root<'a> {
    /// A proc the operation schedules.
    Proc(ProcId),
    /// A dependency name it resolves (one that was missing).
    Name(&'a str),
}

impl Core {
    /// Creates every proc an operation from `roots` will reach; fails with
    /// [`GraphError::Unresolved`] when closures must be called first.
    pub(crate) fn prepare(&mut self, roots: &[Root<'_>]) -> Result<(), GraphError> {
        // Without protos nothing can be created on the way: every proc exists already.
        if !self.graph.has_protos() {
            return Ok(());
        }
        let mut needs: Vec<Need> = Vec::new();
        let mut stack: Vec<ProcId> = Vec::new();
        for root in roots {
            let found = match root {
                Root::Proc(id) => Ok(vec![*id]),
                Root::Name(n) => self.graph.resolve(n).map(|id| id.into_iter().collect()),
            };
            stack.extend(noted(found, &mut needs));
        }
        // A set, not a table of every proc: a chain made level by level prepares once
        // per level, each time from its newest proc.
        let mut seen: HashSet<ProcId> = HashSet::new();
        let (mut now_seen, mut missing_seen, mut ws_seen) = (0, 0, 0);
        loop {
            self.sync_runs();
            // `now` procs are scheduled by the next flush, and procs a waiting dependent
            // had missing or a declarer awaited by the next settle: all are part of what
            // this operation reaches.
            stack.extend(self.pending_now[now_seen.min(self.pending_now.len())..].iter());
            now_seen = self.pending_now.len();
            let missing = &self.resolved_missing[missing_seen.min(self.resolved_missing.len())..];
            let found: Vec<ProcId> = missing
                .iter()
                .filter_map(|(_, n)| self.graph.lookup(n))
                .collect();
            stack.extend(found);
            missing_seen = self.resolved_missing.len();
            let awaited = &self.resolved_ws[ws_seen.min(self.resolved_ws.len())..];
            stack.extend(awaited.iter().map(|&(t, _)| t));
            ws_seen = self.resolved_ws.len();
            let Some(x) = stack.pop() else {
                break;
            };
            if self.runs[x].state != State::Idle || !seen.insert(x) {
                continue;
            }
            self.reach(x, &mut stack, &mut needs);
        }
        if needs.is_empty() {
            return Ok(());
        }
        let mut keys = HashSet::new();
        needs.retain(|n| keys.insert(n.key().clone()));
        Err(GraphError::Unresolved(Needs(Arc::new(needs))))
    }

    /// The names `x`'s `when_scheduled` patterns give with its placeholder values (a
    /// pattern its values cannot fill is left out: scheduling `x` reports it).
    pub(super) fn when_scheduled_targets(&self, x: ProcId) -> Vec<String> {
        let node = self.graph.proc(x);
        node.def
            .extras()
            .when_scheduled
            .iter()
            .filter_map(|p| fill_text(p, node.args()).ok())
            .collect()
    }

    /// Pushes the procs scheduling `x` reaches: what its rdep rules inject, its
    /// `when_scheduled` targets and its dependencies, creating them from protos.
    fn reach(&mut self, x: ProcId, stack: &mut Vec<ProcId>, needs: &mut Vec<Need>) {
        let (inject, create) = self.graph.rdep_sources(x);
        stack.extend(inject);
        for (proto, args) in create {
            let made = self.graph.rdep_instance(proto, args).map(Vec::from_iter);
            stack.extend(noted(made, needs));
        }
        let targets = self.when_scheduled_targets(x);
        let deps = self.graph.proc(x).deps.to_vec();
        for target in targets {
            let found = self.graph.resolve(&target);
            stack.extend(noted(found.map(|id| id.into_iter().collect()), needs));
        }
        for dep in deps {
            let found = if is_glob(&dep) {
                self.graph.expand(&dep)
            } else {
                self.graph.resolve(&dep).map(|id| id.into_iter().collect())
            };
            stack.extend(noted(found, needs));
        }
    }
}

/// The procs found, keeping the needs of a lookup that lacked closure values; other errors
/// are the operation's to report.
fn noted(found: Result<Vec<ProcId>, GraphError>, needs: &mut Vec<Need>) -> Vec<ProcId> {
    match found {
        Ok(ids) => ids,
        Err(GraphError::Unresolved(n)) => {
            needs.extend(n.0.iter().cloned());
            Vec::new()
        }
        Err(_) => Vec::new(),
    }
}

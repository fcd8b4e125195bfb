//! Cycle detection over the dependency edges of scheduled procs.
//!
//! Pure functions over a view of the graph: `deps(p)` gives a proc's dependencies and
//! `live(p)` says whether an edge into `p` still matters (a finished proc ends every path
//! through it). Both walks are iterative, so a 100,000-proc chain cannot exhaust the stack.

use hashbrown::HashMap;

use crate::graph::ProcId;

/// A cycle among the live procs reachable from `roots`, as the path that closes it
/// (`[a, b, a]`), if any (depth-first, three colours). A proc without dependencies closes
/// no cycle: it is not walked, nor marked (most procs of a large run have none, and a
/// mark each would be a table of them all for every operation).
pub(crate) fn find<'a>(
    roots: &[ProcId],
    deps: impl Fn(ProcId) -> &'a [ProcId],
    live: impl Fn(ProcId) -> bool,
) -> Option<Vec<ProcId>> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        Grey,
        Black,
    }
    // By proc, for the procs reached only: a table indexed by every id up to the
    // highest one reached, made anew for each operation, made running n procs one `run`
    // at a time quadratic when each has a dependency. One stack for every root (a run
    // of 10,000 procs walks 10,000 roots).
    let mut marks: HashMap<ProcId, Mark> = HashMap::new();
    let mut stack: Vec<(ProcId, usize)> = Vec::new();
    for &root in roots {
        if deps(root).is_empty() || marks.contains_key(&root) {
            continue;
        }
        stack.push((root, 0));
        marks.insert(root, Mark::Grey);
        while let Some((node, idx)) = stack.last_mut() {
            let node = *node;
            let Some(&next) = deps(node).get(*idx) else {
                marks.insert(node, Mark::Black);
                stack.pop();
                continue;
            };
            *idx += 1;
            if !live(next) || deps(next).is_empty() {
                continue;
            }
            match marks.get(&next).copied() {
                Some(Mark::Grey) => {
                    let start = stack.iter().position(|(n, _)| *n == next)?;
                    let mut cycle: Vec<ProcId> = stack[start..].iter().map(|(n, _)| *n).collect();
                    cycle.push(next);
                    return Some(cycle);
                }
                Some(Mark::Black) => {}
                None => {
                    marks.insert(next, Mark::Grey);
                    stack.push((next, 0));
                }
            }
        }
    }
    None
}

/// A dependency path from `from` to `to` over live procs, if one exists: adding the edge
/// `to -> from` would close it into a cycle.
pub(crate) fn path<'a>(
    from: ProcId,
    to: ProcId,
    deps: impl Fn(ProcId) -> &'a [ProcId],
    live: impl Fn(ProcId) -> bool,
) -> Option<Vec<ProcId>> {
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
        for &d in deps(n) {
            if live(d) && !prev.contains_key(&d) {
                prev.insert(d, n);
                stack.push(d);
            }
        }
    }
    None
}

/// Which of the procs `0..n` lie on a cycle over live procs: the strongly connected
/// components of two or more (Tarjan's algorithm, iterative), in one walk of the edges.
pub(crate) fn on_cycle<'a>(
    n: usize,
    deps: impl Fn(ProcId) -> &'a [ProcId],
    live: impl Fn(ProcId) -> bool,
) -> Vec<bool> {
    let mut t = Tarjan {
        index: vec![UNSEEN; n],
        low: vec![0; n],
        on_stack: vec![false; n],
        stack: Vec::new(),
        calls: Vec::new(),
        next: 0,
    };
    let mut out = vec![false; n];
    for root in 0..n {
        if t.index[root] != UNSEEN || !live(root) {
            continue;
        }
        t.visit(root);
        while let Some(top) = t.calls.len().checked_sub(1) {
            let (v, i) = t.calls[top];
            if let Some(&w) = deps(v).get(i) {
                t.calls[top].1 += 1;
                if w >= n || !live(w) {
                    continue;
                }
                if t.index[w] == UNSEEN {
                    t.visit(w);
                } else if t.on_stack[w] {
                    t.low[v] = t.low[v].min(t.index[w]);
                }
                continue;
            }
            t.calls.pop();
            if let Some(&(u, _)) = t.calls.last() {
                t.low[u] = t.low[u].min(t.low[v]);
            }
            if t.low[v] == t.index[v] {
                let at = t.stack.iter().rposition(|&w| w == v).expect("on the stack");
                let component = t.stack.split_off(at);
                for &w in &component {
                    t.on_stack[w] = false;
                    out[w] = component.len() > 1;
                }
            }
        }
    }
    out
}

/// Not reached yet by [`on_cycle`].
const UNSEEN: usize = usize::MAX;

/// The state of [`on_cycle`]'s walk.
struct Tarjan {
    index: Vec<usize>,
    low: Vec<usize>,
    on_stack: Vec<bool>,
    stack: Vec<ProcId>,
    /// The procs being walked, each with the position of its next edge.
    calls: Vec<(ProcId, usize)>,
    next: usize,
}

impl Tarjan {
    fn visit(&mut self, p: ProcId) {
        self.index[p] = self.next;
        self.low[p] = self.next;
        self.next += 1;
        self.stack.push(p);
        self.on_stack[p] = true;
        self.calls.push((p, 0));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Edges as adjacency lists: `edges[p]` are the dependencies of `p`.
    fn graph(edges: &[&[ProcId]]) -> Vec<Vec<ProcId>> {
        edges.iter().map(|e| e.to_vec()).collect()
    }

    #[test]
    fn a_cycle_is_reported_as_the_path_that_closes_it() {
        let g = graph(&[&[1], &[2], &[0], &[]]);
        let c = find(&[0], |p| &g[p], |_| true);
        assert_eq!(c, Some(vec![0, 1, 2, 0]));
        assert_eq!(find(&[3], |p| &g[p], |_| true), None);
    }

    #[test]
    fn a_walk_costs_the_procs_it_reaches_not_every_id_below_them() {
        // A table of marks for every id up to the highest reached, made for each
        // operation, made running the n-th proc cost n: here it would be 2^40 marks.
        let high: ProcId = 1 << 40;
        let deps = [high - 1];
        let g = |p: ProcId| -> &[ProcId] { if p == high { &deps } else { &[] } };
        assert_eq!(find(&[high], g, |_| true), None);
    }

    #[test]
    fn a_finished_proc_breaks_a_cycle_through_it() {
        let g = graph(&[&[1], &[0]]);
        assert_eq!(find(&[0], |p| &g[p], |p| p != 1), None);
    }

    #[test]
    fn a_diamond_is_not_a_cycle_and_a_long_chain_does_not_overflow() {
        let g = graph(&[&[1, 2], &[3], &[3], &[]]);
        assert_eq!(find(&[0], |p| &g[p], |_| true), None);
        let chain: Vec<Vec<ProcId>> = (0..100_000).map(|p| vec![p + 1]).chain([vec![]]).collect();
        assert_eq!(find(&[0], |p| &chain[p], |_| true), None);
        let p = path(0, 100_000, |p| &chain[p], |_| true).expect("a path");
        assert_eq!(p.len(), 100_001);
    }

    #[test]
    fn path_finds_the_edges_a_new_dependency_would_close() {
        let g = graph(&[&[1], &[2], &[]]);
        assert_eq!(path(0, 2, |p| &g[p], |_| true), Some(vec![0, 1, 2]));
        assert_eq!(path(2, 0, |p| &g[p], |_| true), None);
        assert_eq!(path(0, 2, |p| &g[p], |p| p != 1), None);
    }

    #[test]
    fn on_cycle_marks_the_procs_of_every_cycle_and_no_other() {
        // 0 -> 1 -> 2 -> 0, 3 -> 0 (waits for the cycle), 4 -> 5 -> 4, 6 alone.
        let g = graph(&[&[1], &[2], &[0], &[0], &[5], &[4], &[]]);
        let marks = on_cycle(g.len(), |p| &g[p], |_| true);
        assert_eq!(marks, [true, true, true, false, true, true, false]);
        // A finished proc breaks the cycles through it.
        let marks = on_cycle(g.len(), |p| &g[p], |p| p != 5);
        assert_eq!(marks, [true, true, true, false, false, false, false]);
        let chain: Vec<Vec<ProcId>> = (0..100_000).map(|p| vec![p + 1]).chain([vec![0]]).collect();
        assert!(
            on_cycle(chain.len(), |p| &chain[p], |_| true)
                .iter()
                .all(|&m| m)
        );
    }
}

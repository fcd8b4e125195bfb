//! Cycle detection over the dependency edges of scheduled procs.
//!
//! Pure functions over a view of the graph: `deps(p)` gives a proc's dependencies and
//! `live(p)` says whether an edge into `p` still matters (a finished proc ends every path
//! through it). Both walks are iterative, so a 100,000-proc chain cannot exhaust the stack.

use std::collections::HashMap;

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
    // Indexed by proc (ids are dense), grown as procs are reached: no hashing, and one
    // stack for every root (a run of 10,000 procs walks 10,000 roots).
    let mut marks: Vec<Option<Mark>> = Vec::new();
    let mark = |marks: &mut Vec<Option<Mark>>, p: ProcId, m: Mark| {
        if marks.len() <= p {
            marks.resize(p + 1, None);
        }
        marks[p] = Some(m);
    };
    let mut stack: Vec<(ProcId, usize)> = Vec::new();
    for &root in roots {
        if deps(root).is_empty() || marks.get(root).copied().flatten().is_some() {
            continue;
        }
        stack.push((root, 0));
        mark(&mut marks, root, Mark::Grey);
        while let Some((node, idx)) = stack.last_mut() {
            let node = *node;
            let Some(&next) = deps(node).get(*idx) else {
                mark(&mut marks, node, Mark::Black);
                stack.pop();
                continue;
            };
            *idx += 1;
            if !live(next) || deps(next).is_empty() {
                continue;
            }
            match marks.get(next).copied().flatten() {
                Some(Mark::Grey) => {
                    let start = stack.iter().position(|(n, _)| *n == next)?;
                    let mut cycle: Vec<ProcId> = stack[start..].iter().map(|(n, _)| *n).collect();
                    cycle.push(next);
                    return Some(cycle);
                }
                Some(Mark::Black) => {}
                None => {
                    mark(&mut marks, next, Mark::Grey);
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
}

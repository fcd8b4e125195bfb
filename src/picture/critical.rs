//! The critical path of a recorded run: the chain of dependencies that determined its
//! length.
//!
//! It ends at the proc that finished last; each link before it is, among the procs it
//! depended on in that run, the one that finished last (the one it had to wait for). Its
//! total is the sum of each link's time ready but waiting (a lock, a lower wave, no free
//! slot) and its duration (first start to final state, retries included): what a faster
//! run would have to shorten.

use std::collections::HashMap;

use super::timeline::Bar;

/// A chain of procs (indexes into the run's bars, first to last) and its total seconds.
#[derive(Debug, Clone, Default, PartialEq)]
pub(super) struct CriticalPath {
    pub procs: Vec<usize>,
    pub total: f64,
}

impl CriticalPath {
    /// The critical path of `bars`; empty when no proc ran.
    pub(super) fn of(bars: &[Bar]) -> CriticalPath {
        let ran = |b: &Bar| b.start.is_some() && b.end.is_some();
        // In a watch a proc has a row for each cycle it ran in: a row waited only for its
        // dependencies' rows of its own cycle (a dependency that did not run again in it
        // ends the chain, as one up to date does in a run).
        let by_name: HashMap<(&str, u32), usize> = bars
            .iter()
            .enumerate()
            .filter(|(_, b)| ran(b))
            .map(|(i, b)| ((b.name.as_str(), b.cycle), i))
            .collect();
        let end = |i: usize| bars[i].end.unwrap_or(0.0);
        // A change during a cycle can run a proc twice in it: a dependency's row that
        // ended before the proc's earlier row did is one this row did not wait for. So
        // can a watch recorded before the history kept cycles (all its rows are of cycle
        // 0), where that tells its cycles apart.
        let mut last_end: HashMap<&str, f64> = HashMap::new();
        let earlier_end: Vec<Option<f64>> = bars
            .iter()
            .enumerate()
            .map(|(i, b)| {
                let before = last_end.get(b.name.as_str()).copied();
                if ran(b) {
                    last_end.insert(b.name.as_str(), end(i));
                }
                before
            })
            .collect();
        let latest = |ids: &mut dyn Iterator<Item = usize>| {
            // Of two ending together, the later one (recorded later, or depended on later).
            ids.fold(None, |best: Option<usize>, i| match best {
                Some(b) if end(b) > end(i) => Some(b),
                _ => Some(i),
            })
        };
        let mut chain = Vec::new();
        let mut next = latest(&mut (0..bars.len()).filter(|&i| ran(&bars[i])));
        while let Some(i) = next {
            if chain.contains(&i) {
                break;
            }
            chain.push(i);
            let mut deps = bars[i]
                .deps
                .iter()
                .filter_map(|d| by_name.get(&(d.as_str(), bars[i].cycle)).copied())
                .filter(|&d| earlier_end[i].is_none_or(|e| end(d) > e));
            next = latest(&mut deps);
        }
        chain.reverse();
        let total = chain
            .iter()
            .map(|&i| bars[i].waited + bars[i].duration().unwrap_or(0.0))
            .fold(0.0, |a, b| a + b);
        CriticalPath {
            procs: chain,
            total,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bar(name: &str, start: f64, end: f64, deps: &[&str]) -> Bar {
        Bar {
            name: name.into(),
            state: "SUCCEEDED".into(),
            start: Some(start),
            end: Some(end),
            deps: deps.iter().map(|d| d.to_string()).collect(),
            ..Default::default()
        }
    }

    fn names(bars: &[Bar], path: &CriticalPath) -> Vec<String> {
        path.procs.iter().map(|&i| bars[i].name.clone()).collect()
    }

    #[test]
    fn the_path_follows_the_dependency_that_finished_last() {
        // a → b → c beside a fan-out f1..f3 joined by "join"; "join" waits for c (the
        // slowest) and for the fan-out; "lone" ends before "join".
        let mut bars = vec![
            bar("a", 0.0, 1.0, &[]),
            bar("f1", 0.0, 0.5, &[]),
            bar("f2", 0.0, 2.5, &[]),
            bar("b", 1.0, 3.0, &["a"]),
            bar("f3", 0.5, 1.0, &["f1"]),
            bar("c", 3.0, 4.0, &["b"]),
            bar("lone", 0.0, 4.5, &[]),
            bar("join", 4.2, 5.0, &["f1", "f2", "f3", "c"]),
        ];
        bars[7].waited = 0.2;
        let path = CriticalPath::of(&bars);
        assert_eq!(names(&bars, &path), ["a", "b", "c", "join"]);
        assert!((path.total - (1.0 + 2.0 + 1.0 + 0.8 + 0.2)).abs() < 1e-9);
    }

    #[test]
    fn in_a_watch_the_path_does_not_step_into_an_earlier_cycle() {
        // The first run, then a cycle started by a change of `build`'s own input: `gen`
        // did not run again, and `build` did not wait for it.
        let bars = vec![
            bar("gen", 0.0, 0.6, &[]),
            bar("build", 0.6, 0.8, &["gen"]),
            bar("test", 0.8, 0.9, &["build"]),
            bar("build", 3.0, 3.2, &["gen"]),
            bar("test", 3.2, 3.3, &["build"]),
        ];
        let path = CriticalPath::of(&bars);
        assert_eq!(path.procs, [3, 4]);
        assert!((path.total - 0.3).abs() < 1e-9, "{}", path.total);
        // A cycle started by `gen`'s input goes back to `gen`'s row of that cycle.
        let bars = vec![
            bar("gen", 0.0, 0.6, &[]),
            bar("build", 0.6, 0.8, &["gen"]),
            bar("test", 0.8, 0.9, &["build"]),
            bar("gen", 3.0, 3.4, &[]),
            bar("build", 3.4, 3.6, &["gen"]),
            bar("test", 3.6, 3.7, &["build"]),
        ];
        assert_eq!(CriticalPath::of(&bars).procs, [3, 4, 5]);
    }

    #[test]
    fn in_a_watch_a_row_waits_only_for_rows_of_its_own_cycle() {
        let at = |cycle: u32, b: Bar| Bar { cycle, ..b };
        // `gen` failed in cycle 1; cycle 2, started by `build`'s own input, ran `build`
        // and `test` alone: `gen`'s failed row ended after `build`'s earlier row, but
        // `build` of cycle 2 did not wait for it.
        let mut failed = at(1, bar("gen", 2.0, 2.5, &[]));
        failed.state = "FAILED".into();
        let bars = vec![
            bar("gen", 0.0, 0.6, &[]),
            bar("build", 0.6, 0.8, &["gen"]),
            bar("test", 0.8, 0.9, &["build"]),
            failed,
            at(2, bar("build", 4.0, 4.2, &["gen"])),
            at(2, bar("test", 4.2, 4.3, &["build"])),
        ];
        assert_eq!(CriticalPath::of(&bars).procs, [4, 5]);
    }

    #[test]
    fn procs_that_never_ran_and_unknown_deps_end_the_chain() {
        let mut never = bar("never", 0.0, 0.0, &[]);
        never.start = None;
        let bars = vec![
            never,
            bar("x", 0.0, 2.0, &["never", "gone"]),
            bar("y", 0.0, 1.0, &[]),
        ];
        let path = CriticalPath::of(&bars);
        assert_eq!(names(&bars, &path), ["x"]);
        assert_eq!(path.total, 2.0);
        assert_eq!(CriticalPath::of(&[]), CriticalPath::default());
        assert!(CriticalPath::of(&[]).total.is_sign_positive(), "not -0");
    }

    #[test]
    fn a_dependency_loop_in_a_corrupt_record_ends_the_chain() {
        let bars = vec![bar("p", 0.0, 1.0, &["q"]), bar("q", 0.0, 2.0, &["p"])];
        assert_eq!(names(&bars, &CriticalPath::of(&bars)), ["p", "q"]);
    }
}

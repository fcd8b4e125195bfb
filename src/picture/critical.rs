//! The critical path of a recorded run: the chain of procs that determined its length.
//!
//! It ends at the proc that finished last; each link before it is the one the next link
//! waited for last: among the procs it depended on in that run and the procs of lower
//! waves of its cycle that ended while it was ready (a proc starts only once every lower
//! wave is done), the one that finished last. Its total is the sum of each link's time
//! ready but waiting (a lock, a lower wave, no free slot) and its duration (first start
//! to final state, retries included): what a faster run would have to shorten. A link
//! after a lower wave's proc was ready while that proc ran: only its wait after that
//! proc's end counts, the rest is in the link before it.

use std::collections::{BTreeMap, HashMap, HashSet};

use super::timeline::Bar;

/// A chain of procs (indexes into the run's bars, first to last) and its total seconds.
#[derive(Debug, Clone, Default, PartialEq)]
pub(super) struct CriticalPath {
    pub procs: Vec<usize>,
    /// The procs of the chain whose link before them is a proc of a lower wave they did
    /// not depend on: they waited for its wave to finish.
    pub after_wave: HashSet<usize>,
    pub total: f64,
}

impl CriticalPath {
    /// The critical path of `bars`; empty when no proc ran.
    pub(super) fn of(bars: &[Bar]) -> CriticalPath {
        // In a watch a proc has a row for each cycle it ran in: a row waited only for its
        // dependencies' rows of its own cycle (a dependency that did not run again in it
        // ends the chain, as one up to date does in a run).
        let by_name: HashMap<(&str, u32), usize> = bars
            .iter()
            .enumerate()
            .filter(|(_, b)| ran(b))
            .map(|(i, b)| ((b.name.as_str(), b.cycle), i))
            .collect();
        let end = |i: usize| end(&bars[i]);
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
        let lower = LowerWaves::of(bars);
        let mut chain = Vec::new();
        let mut after_wave = HashSet::new();
        let mut next = latest(&mut (0..bars.len()).filter(|&i| ran(&bars[i])));
        while let Some(i) = next {
            if chain.contains(&i) {
                break;
            }
            chain.push(i);
            let waited_for = |d: &usize| earlier_end[i].is_none_or(|e| end(*d) > e);
            let mut deps = bars[i]
                .deps
                .iter()
                .filter_map(|d| by_name.get(&(d.as_str(), bars[i].cycle)).copied())
                .filter(waited_for);
            let dep = latest(&mut deps);
            let wave = lower
                .last_while_ready(i)
                .filter(waited_for)
                .filter(|&w| !bars[i].deps.contains(&bars[w].name));
            // Of the two ending together, the one recorded later (rows are recorded as
            // procs finish).
            let later = |w: usize, d: usize| end(w).total_cmp(&end(d)).then(w.cmp(&d)).is_gt();
            next = match (dep, wave) {
                (d, Some(w)) if d.is_none_or(|d| later(w, d)) => {
                    after_wave.insert(i);
                    Some(w)
                }
                (d, _) => d,
            };
        }
        chain.reverse();
        let total = chain
            .iter()
            .enumerate()
            .map(|(k, &i)| {
                let before = k.checked_sub(1).map(|k| chain[k]);
                let wave = before.filter(|_| after_wave.contains(&i));
                counted_wait(bars, i, wave) + bars[i].duration().unwrap_or(0.0)
            })
            .fold(0.0, |a, b| a + b);
        CriticalPath {
            procs: chain,
            after_wave,
            total,
        }
    }
}

/// Whether `b` ran and its end is known.
fn ran(b: &Bar) -> bool {
    b.start.is_some() && b.end.is_some()
}

/// When `b` reached its final state (0 when not known).
fn end(b: &Bar) -> f64 {
    b.end.unwrap_or(0.0)
}

/// The wait of proc `i` that its link counts: all of it, but after `wave`, the lower
/// wave's proc it waited for, only the part after that proc's end (it was ready, and
/// waiting, while that proc ran, whose time is counted in its own link).
fn counted_wait(bars: &[Bar], i: usize, wave: Option<usize>) -> f64 {
    let b = &bars[i];
    match (wave, b.start) {
        (Some(w), Some(start)) => b.waited.min((start - end(&bars[w])).max(0.0)),
        _ => b.waited,
    }
}

/// How precisely a time of day is recorded (to the millisecond, cut down): a lower wave's
/// proc that ended in the millisecond its next link became ready may be recorded as
/// ending before that.
const RECORDED_TO: f64 = 0.001;

/// The procs that ran and have a recorded wave, by cycle and wave, those of each wave in
/// order of their end: where a proc's lower waves are looked up, without reading every
/// proc for each link of a long chain.
struct LowerWaves<'a> {
    bars: &'a [Bar],
    by_cycle: HashMap<u32, BTreeMap<i64, Vec<usize>>>,
}

impl<'a> LowerWaves<'a> {
    fn of(bars: &'a [Bar]) -> Self {
        let mut by_cycle: HashMap<u32, BTreeMap<i64, Vec<usize>>> = HashMap::new();
        for (i, b) in bars.iter().enumerate().filter(|(_, b)| ran(b)) {
            if let Some(wave) = b.wave {
                let ids = by_cycle
                    .entry(b.cycle)
                    .or_default()
                    .entry(wave)
                    .or_default();
                ids.push(i);
            }
        }
        // A stable sort: of two ending together, the one recorded first stays first.
        for ids in by_cycle.values_mut().flat_map(|w| w.values_mut()) {
            ids.sort_by(|&a, &b| end(&bars[a]).total_cmp(&end(&bars[b])));
        }
        LowerWaves { bars, by_cycle }
    }

    /// Of the procs of lower waves than proc `i`'s, in its cycle, that ended while it was
    /// ready and not yet started (from its start less its wait, to its start, give or
    /// take [`RECORDED_TO`]), the one that ended last (of two ending together, the later
    /// recorded). `None` when `i`'s wave is not recorded: the chain then follows its
    /// dependencies only.
    fn last_while_ready(&self, i: usize) -> Option<usize> {
        let b = &self.bars[i];
        let (wave, start) = (b.wave?, b.start?);
        let end = |j: usize| end(&self.bars[j]);
        self.by_cycle
            .get(&b.cycle)?
            .range(..wave)
            .filter_map(|(_, ids)| ids[..ids.partition_point(|&j| end(j) <= start)].last())
            .copied()
            .max_by(|&x, &y| end(x).total_cmp(&end(y)).then(x.cmp(&y)))
            .filter(|&w| end(w) + RECORDED_TO > start - b.waited)
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

    /// `bar` of wave `wave`, which waited `waited` seconds ready.
    fn in_wave(wave: i64, waited: f64, b: Bar) -> Bar {
        Bar {
            wave: Some(wave),
            waited,
            ..b
        }
    }

    /// `fetch` and a slow `migrate` in wave 0, and `serve` in wave 1, which depends on
    /// `fetch` alone but starts only once `migrate` has finished (ready at 0.5, it
    /// waited 1.5 for the wave, then 0.3 for a slot).
    fn two_waves() -> Vec<Bar> {
        vec![
            in_wave(0, 0.0, bar("fetch", 0.0, 0.5, &[])),
            in_wave(0, 0.0, bar("migrate", 0.0, 2.0, &[])),
            in_wave(1, 1.8, bar("serve", 2.3, 2.5, &["fetch"])),
        ]
    }

    #[test]
    fn a_higher_wave_proc_follows_the_slow_lower_wave_proc_it_did_not_depend_on() {
        let bars = two_waves();
        let path = CriticalPath::of(&bars);
        assert_eq!(names(&bars, &path), ["migrate", "serve"]);
        assert_eq!(path.after_wave, HashSet::from([2]));
        // `serve`'s wait counts from `migrate`'s end: its 1.5 s before are `migrate`'s.
        assert!(
            (path.total - (2.0 + 0.3 + 0.2)).abs() < 1e-9,
            "{}",
            path.total
        );
        // Through three waves, `-1` the lowest.
        let bars = vec![
            in_wave(-1, 0.0, bar("setup", 0.0, 1.0, &[])),
            in_wave(0, 1.0, bar("build", 1.0, 3.0, &[])),
            in_wave(1, 3.0, bar("serve", 3.0, 3.5, &[])),
        ];
        let path = CriticalPath::of(&bars);
        assert_eq!(names(&bars, &path), ["setup", "build", "serve"]);
        assert_eq!(path.after_wave, HashSet::from([1, 2]));
        assert!((path.total - 3.5).abs() < 1e-9, "{}", path.total);
    }

    #[test]
    fn a_dependency_that_ends_after_the_lower_wave_is_the_link_before() {
        // `serve` depends on `build`, which ends after `lint`, of the same lower wave:
        // `serve` waited for `build`. `build` itself waited for `setup`'s wave.
        let bars = vec![
            in_wave(-1, 0.0, bar("setup", 0.0, 1.0, &[])),
            in_wave(0, 1.0, bar("lint", 1.0, 2.0, &[])),
            in_wave(0, 1.0, bar("build", 1.0, 3.0, &[])),
            in_wave(1, 0.2, bar("serve", 3.2, 3.5, &["build"])),
        ];
        let path = CriticalPath::of(&bars);
        assert_eq!(names(&bars, &path), ["setup", "build", "serve"]);
        assert_eq!(
            path.after_wave,
            HashSet::from([2]),
            "serve is after a dependency"
        );
        assert!((path.total - 3.5).abs() < 1e-9, "{}", path.total);
    }

    #[test]
    fn of_a_dependency_and_a_lower_wave_proc_ending_together_the_later_recorded_is_the_link() {
        // Recorded to the same millisecond; `serve` was ready as `fetch` ended.
        let fetch = in_wave(0, 0.0, bar("fetch", 0.0, 0.5, &[]));
        let migrate = in_wave(0, 0.0, bar("migrate", 0.0, 0.5, &[]));
        let serve = in_wave(1, 0.0, bar("serve", 0.5, 1.0, &["fetch"]));
        let bars = vec![fetch.clone(), migrate.clone(), serve.clone()];
        let path = CriticalPath::of(&bars);
        assert_eq!(names(&bars, &path), ["migrate", "serve"]);
        assert_eq!(path.after_wave, HashSet::from([2]));
        let bars = vec![migrate, fetch, serve];
        let path = CriticalPath::of(&bars);
        assert_eq!(names(&bars, &path), ["fetch", "serve"]);
        assert!(path.after_wave.is_empty());
    }

    #[test]
    fn a_lower_wave_proc_that_ended_before_it_was_ready_or_after_it_started_is_not_followed() {
        // `late` was scheduled after `serve` started (a body's `run`); `early` ended
        // before `prep` was scheduled (at 1.2) and before `serve` was ready (at 1.5).
        let bars = vec![
            in_wave(0, 0.0, bar("early", 0.0, 1.0, &[])),
            in_wave(1, 0.0, bar("prep", 1.2, 1.5, &[])),
            in_wave(1, 0.0, bar("serve", 1.5, 3.0, &["prep"])),
            in_wave(0, 0.0, bar("late", 2.0, 2.5, &[])),
        ];
        let path = CriticalPath::of(&bars);
        assert_eq!(names(&bars, &path), ["prep", "serve"]);
        assert!(path.after_wave.is_empty());
    }

    #[test]
    fn in_a_watch_a_row_follows_the_lower_wave_of_its_own_cycle() {
        let at = |cycle: u32, b: Bar| Bar { cycle, ..b };
        // Cycle 1, started by `migrate`'s input, ran `migrate` again and `serve` after it.
        let mut bars = two_waves();
        bars.push(at(1, in_wave(0, 0.0, bar("migrate", 5.0, 6.0, &[]))));
        bars.push(at(1, in_wave(1, 1.0, bar("serve", 6.0, 6.2, &["fetch"]))));
        let path = CriticalPath::of(&bars);
        assert_eq!(path.procs, [3, 4]);
        assert_eq!(path.after_wave, HashSet::from([4]));
        assert!((path.total - 1.2).abs() < 1e-9, "{}", path.total);
    }

    #[test]
    fn rows_recorded_without_their_wave_follow_dependencies_only() {
        // The run of `two_waves`, recorded before the history kept waves: as before,
        // `serve`'s whole wait counts.
        let unknown = |b: Bar| Bar { wave: None, ..b };
        let bars: Vec<Bar> = two_waves().into_iter().map(unknown).collect();
        let path = CriticalPath::of(&bars);
        assert_eq!(names(&bars, &path), ["fetch", "serve"]);
        assert!(path.after_wave.is_empty());
        assert!(
            (path.total - (0.5 + 1.8 + 0.2)).abs() < 1e-9,
            "{}",
            path.total
        );
        // Nor does a row with a wave step to a row without one, or the other way round.
        for i in [1, 2] {
            let mut bars = two_waves();
            bars[i].wave = None;
            assert_eq!(
                CriticalPath::of(&bars).procs,
                [0, 2],
                "row {i} without a wave"
            );
        }
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

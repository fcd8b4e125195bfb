//! The small types behind "what may start next": the ready queue, the locks and the waves.
//!
//! Each is a counter or a queue and nothing more; the core decides when to push, park and
//! release. None scans every proc: a blocked proc is parked on what blocks it (a held lock,
//! a lower wave still busy) and handed back only when that frees.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashMap, VecDeque};

use crate::graph::ProcId;

/// Procs ready to start, earliest registered first (ties go to the earliest proc, as in
/// parproc). A proc is in the queue at most once.
#[derive(Debug, Default)]
pub(crate) struct ReadyQueue {
    heap: BinaryHeap<Reverse<ProcId>>,
    queued: Vec<bool>,
}

impl ReadyQueue {
    /// Queues `p` unless it is queued already.
    pub(crate) fn push(&mut self, p: ProcId) {
        if self.queued.len() <= p {
            self.queued.resize(p + 1, false);
        }
        if !self.queued[p] {
            self.queued[p] = true;
            self.heap.push(Reverse(p));
        }
    }

    /// The earliest queued proc.
    pub(crate) fn pop(&mut self) -> Option<ProcId> {
        let Reverse(p) = self.heap.pop()?;
        self.queued[p] = false;
        Some(p)
    }

    /// True when nothing is queued.
    pub(crate) fn is_empty(&self) -> bool {
        self.heap.is_empty()
    }
}

/// Named locks: which proc holds each, and the procs parked until it frees.
#[derive(Debug, Default)]
pub(crate) struct Locks {
    holders: HashMap<String, ProcId>,
    parked: HashMap<String, Vec<ProcId>>,
}

impl Locks {
    /// The first of `locks` that another proc holds.
    pub(crate) fn held<'a>(&self, locks: &'a [String]) -> Option<&'a String> {
        locks.iter().find(|l| self.holders.contains_key(*l))
    }

    /// Parks `p` until `lock` frees.
    pub(crate) fn park(&mut self, lock: &str, p: ProcId) {
        self.parked.entry(lock.to_string()).or_default().push(p);
    }

    /// `p` takes `locks`.
    pub(crate) fn take(&mut self, locks: &[String], p: ProcId) {
        for l in locks {
            self.holders.insert(l.clone(), p);
        }
    }

    /// `p` releases `locks`; returns the procs parked on them, to be queued again.
    pub(crate) fn release(&mut self, locks: &[String], p: ProcId) -> Vec<ProcId> {
        let mut freed = Vec::new();
        for l in locks {
            if self.holders.get(l) == Some(&p) {
                self.holders.remove(l);
            }
            freed.extend(self.parked.remove(l).unwrap_or_default());
        }
        freed
    }

    /// One held lock and its holder, to explain why something cannot start.
    pub(crate) fn any_holder(&self) -> Option<(&str, ProcId)> {
        self.holders.iter().next().map(|(l, &p)| (l.as_str(), p))
    }
}

/// Lanes: the number each running attempt is drawn on in `prun report` (its `place`):
/// the lowest one free when it starts, held until it ends. A proc blocked in a wait keeps
/// its lane while it gives its parallel slot back, so there may be more lanes than slots.
#[derive(Debug, Default)]
pub(crate) struct Lanes {
    free: BinaryHeap<Reverse<usize>>,
    next: usize,
}

impl Lanes {
    /// Takes the lowest free lane (numbered from 1).
    pub(crate) fn take(&mut self) -> usize {
        match self.free.pop() {
            Some(Reverse(n)) => n,
            None => {
                self.next += 1;
                self.next
            }
        }
    }

    /// Gives a lane back.
    pub(crate) fn give(&mut self, lane: usize) {
        self.free.push(Reverse(lane));
    }
}

/// Waves: how many procs of each wave are ready or running, and the procs parked until
/// every lower wave is done.
#[derive(Debug, Default)]
pub(crate) struct Waves {
    active: BTreeMap<i64, usize>,
    parked: BTreeMap<i64, Vec<ProcId>>,
}

impl Waves {
    /// A proc of `wave` became ready.
    pub(crate) fn activate(&mut self, wave: i64) {
        *self.active.entry(wave).or_default() += 1;
    }

    /// A proc of `wave` is no longer ready or running.
    pub(crate) fn deactivate(&mut self, wave: i64) {
        if let Some(n) = self.active.get_mut(&wave) {
            *n -= 1;
            if *n == 0 {
                self.active.remove(&wave);
            }
        }
    }

    /// The lowest wave with a ready or running proc.
    pub(crate) fn lowest(&self) -> Option<i64> {
        self.active.keys().next().copied()
    }

    /// True when a proc of `wave` must wait for a lower wave.
    pub(crate) fn blocks(&self, wave: i64) -> bool {
        self.lowest().is_some_and(|m| m < wave)
    }

    /// Parks `p` (of `wave`) until the lower waves are done.
    pub(crate) fn park(&mut self, wave: i64, p: ProcId) {
        self.parked.entry(wave).or_default().push(p);
    }

    /// The parked procs no lower wave blocks any more.
    pub(crate) fn unblocked(&mut self) -> Vec<ProcId> {
        let lowest = self.lowest();
        let mut out = Vec::new();
        while let Some((&wave, _)) = self.parked.first_key_value() {
            if lowest.is_some_and(|m| wave > m) {
                break;
            }
            out.extend(self.parked.remove(&wave).unwrap_or_default());
        }
        out
    }
}

/// The console (ninja's console pool): an interactive proc has the terminal and runs
/// alone. A ready interactive proc waits until the running procs are done, and nothing else
/// starts from then until it ends, so that it is not starved by a stream of others.
#[derive(Debug, Default)]
pub(crate) struct Console {
    holder: Option<ProcId>,
    waiting: VecDeque<ProcId>,
}

impl Console {
    /// The interactive proc running now.
    pub(crate) fn holder(&self) -> Option<ProcId> {
        self.holder
    }

    /// `p` (interactive) waits for the running procs to finish.
    pub(crate) fn wait(&mut self, p: ProcId) {
        self.waiting.push_back(p);
    }

    /// The next interactive proc waiting for its turn.
    pub(crate) fn next(&mut self) -> Option<ProcId> {
        self.waiting.pop_front()
    }

    /// True while an interactive proc waits for its turn.
    pub(crate) fn has_waiting(&self) -> bool {
        !self.waiting.is_empty()
    }

    /// `p` (interactive) starts.
    pub(crate) fn take(&mut self, p: ProcId) {
        self.holder = Some(p);
    }

    /// `p` ended; frees the console if it held it.
    pub(crate) fn release(&mut self, p: ProcId) {
        if self.holder == Some(p) {
            self.holder = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ready_queue_pops_the_earliest_proc_once() {
        let mut q = ReadyQueue::default();
        for p in [5, 2, 9, 2] {
            q.push(p);
        }
        assert_eq!(
            [q.pop(), q.pop(), q.pop(), q.pop()],
            [Some(2), Some(5), Some(9), None]
        );
        q.push(2);
        assert_eq!(q.pop(), Some(2));
        assert!(q.is_empty());
    }

    #[test]
    fn a_released_lock_hands_back_the_procs_parked_on_it() {
        let mut l = Locks::default();
        let db = vec!["db".to_string()];
        let both = vec!["net".to_string(), "db".to_string()];
        assert_eq!(l.held(&both), None);
        l.take(&db, 1);
        assert_eq!(l.held(&both).map(String::as_str), Some("db"));
        l.park("db", 2);
        l.park("db", 3);
        assert_eq!(l.any_holder(), Some(("db", 1)));
        assert_eq!(l.release(&db, 1), [2, 3]);
        assert_eq!(l.held(&both), None);
        assert_eq!(l.release(&db, 1), Vec::<ProcId>::new());
    }

    #[test]
    fn a_started_attempt_takes_the_lowest_free_lane() {
        let mut l = Lanes::default();
        assert_eq!([l.take(), l.take(), l.take()], [1, 2, 3]);
        l.give(2);
        l.give(1);
        assert_eq!([l.take(), l.take(), l.take()], [1, 2, 4]);
    }

    #[test]
    fn a_wave_waits_until_every_lower_wave_is_done() {
        let mut w = Waves::default();
        w.activate(0);
        w.activate(0);
        assert!(w.blocks(1));
        assert!(!w.blocks(0));
        w.park(1, 7);
        w.park(2, 8);
        assert!(w.unblocked().is_empty());
        w.deactivate(0);
        assert!(w.unblocked().is_empty());
        w.deactivate(0);
        assert_eq!(w.lowest(), None);
        assert_eq!(w.unblocked(), [7, 8]);
    }

    #[test]
    fn the_console_hands_turns_to_interactive_procs_in_order() {
        let mut c = Console::default();
        c.wait(4);
        c.wait(2);
        assert!(c.has_waiting());
        assert_eq!(c.next(), Some(4));
        c.take(4);
        assert_eq!(c.holder(), Some(4));
        c.release(7);
        assert_eq!(c.holder(), Some(4));
        c.release(4);
        assert_eq!(c.holder(), None);
        assert_eq!(c.next(), Some(2));
        assert!(!c.has_waiting());
    }
}

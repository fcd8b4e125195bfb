//! The small types behind "what may start next": the ready queue, the locks, the waves and
//! the resource budget.
//!
//! Each is a counter or a queue and nothing more; the core decides when to push, park and
//! release. None scans every proc: a blocked proc is parked on what blocks it (a held lock,
//! a lower wave still busy, resources in use) and handed back only when that frees.

use std::cell::OnceCell;
use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap, HashMap, VecDeque};

use crate::graph::{ProcId, Resources};

/// Procs ready to start, earliest registered first (ties go to the earliest proc, as in
/// parproc). A proc is in the queue at most once.
#[derive(Debug, Default)]
pub(crate) struct ReadyQueue {
    /// Ids as `u32`: a run may make many procs ready at once (the graph's name index
    /// holds them as `u32` too).
    heap: BinaryHeap<Reverse<u32>>,
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
            self.heap
                .push(Reverse(u32::try_from(p).expect("fewer than 2^32 procs")));
        }
    }

    /// The earliest queued proc.
    pub(crate) fn pop(&mut self) -> Option<ProcId> {
        let p = self.heap.pop()?.0 as ProcId;
        self.queued[p] = false;
        Some(p)
    }

    /// The earliest queued proc, left in the queue.
    pub(crate) fn peek(&self) -> Option<ProcId> {
        self.heap.peek().map(|&Reverse(p)| p as ProcId)
    }

    /// True when nothing is queued.
    pub(crate) fn is_empty(&self) -> bool {
        self.heap.is_empty()
    }
}

/// Named locks: which proc holds each, and the procs parked until it frees.
///
/// A lock that frees is handed to one parked proc, the earliest defined: waking every
/// parked proc, all but one of which parked again, made a lock shared by n procs cost
/// n² steps. The woken proc is remembered until it starts; when it does not (it needs
/// another lock that is held, its wave is not due, it failed meanwhile...), the next
/// parked proc is woken in its place (see [`Locks::passed_over`]).
#[derive(Debug, Default)]
pub(crate) struct Locks {
    holders: HashMap<String, ProcId>,
    parked: HashMap<String, BTreeSet<ProcId>>,
    /// The locks each woken proc was woken for, until it starts or is passed over.
    woken: HashMap<ProcId, Vec<String>>,
    /// How many times a proc was parked.
    #[cfg(test)]
    pub(crate) parks: usize,
}

impl Locks {
    /// The first of `locks` that another proc holds.
    pub(crate) fn held<'a>(&self, locks: &'a [String]) -> Option<&'a String> {
        locks.iter().find(|l| self.holders.contains_key(*l))
    }

    /// Parks `p` until `lock` frees.
    pub(crate) fn park(&mut self, lock: &str, p: ProcId) {
        #[cfg(test)]
        {
            self.parks += 1;
        }
        self.parked.entry(lock.to_string()).or_default().insert(p);
    }

    /// `p` takes `locks`.
    pub(crate) fn take(&mut self, locks: &[String], p: ProcId) {
        self.woken.remove(&p);
        for l in locks {
            self.holders.insert(l.clone(), p);
        }
    }

    /// `p` releases `locks`; returns the procs woken for them, to be queued again.
    pub(crate) fn release(&mut self, locks: &[String], p: ProcId) -> Vec<ProcId> {
        for l in locks {
            if self.holders.get(l) == Some(&p) {
                self.holders.remove(l);
            }
        }
        locks.iter().filter_map(|l| self.wake_one(l)).collect()
    }

    /// `p` was taken from the ready queue and did not start: the locks it was woken for
    /// and that are still free go to the next parked procs, returned to be queued.
    pub(crate) fn passed_over(&mut self, p: ProcId) -> Vec<ProcId> {
        if self.woken.is_empty() {
            return Vec::new();
        }
        let Some(locks) = self.woken.remove(&p) else {
            return Vec::new();
        };
        let mut next = Vec::new();
        for l in &locks {
            if !self.holders.contains_key(l) {
                next.extend(self.wake_one(l));
            }
        }
        next
    }

    /// Wakes the earliest-defined proc parked on `lock`, if any.
    fn wake_one(&mut self, lock: &str) -> Option<ProcId> {
        let parked = self.parked.get_mut(lock)?;
        let q = parked.pop_first()?;
        if parked.is_empty() {
            self.parked.remove(lock);
        }
        self.woken.entry(q).or_default().push(lock.to_string());
        Some(q)
    }

    /// Each proc parked on a held lock, with the lock and its holder.
    pub(crate) fn parked_on_held(&self) -> impl Iterator<Item = (ProcId, &str, ProcId)> {
        self.parked.iter().flat_map(move |(l, parked)| {
            let holder = self.holders.get(l).copied();
            parked
                .iter()
                .filter_map(move |&p| holder.map(|h| (p, l.as_str(), h)))
        })
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

    /// Whether a proc is parked until a lower wave is done.
    pub(crate) fn any_parked(&self) -> bool {
        self.parked.values().any(|p| !p.is_empty())
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

/// The executors' pools: how many of each executor's procs run, its limit, and its own
/// ready queue (its procs wait for its slots, not for the local ones).
#[derive(Debug, Default)]
pub(crate) struct Pools {
    by_name: HashMap<String, Pool>,
}

#[derive(Debug)]
struct Pool {
    limit: usize,
    running: usize,
    ready: ReadyQueue,
}

impl Pools {
    /// Declares an executor's pool.
    pub(crate) fn declare(&mut self, name: &str, limit: usize) {
        self.by_name.insert(
            name.to_string(),
            Pool {
                limit: limit.max(1),
                running: 0,
                ready: ReadyQueue::default(),
            },
        );
    }

    /// Whether `name` is declared.
    pub(crate) fn has(&self, name: &str) -> bool {
        self.by_name.contains_key(name)
    }

    fn pool(&mut self, name: &str) -> &mut Pool {
        self.by_name
            .get_mut(name)
            .expect("procs name declared executors only")
    }

    /// Queues `p` for the executor `name`.
    pub(crate) fn push(&mut self, name: &str, p: ProcId) {
        self.pool(name).ready.push(p);
    }

    /// A proc of `name` takes a slot.
    pub(crate) fn take(&mut self, name: &str) {
        self.pool(name).running += 1;
    }

    /// A proc of `name` gives its slot back.
    pub(crate) fn give(&mut self, name: &str) {
        self.pool(name).running -= 1;
    }

    /// Whether the executor `name` has a free slot.
    pub(crate) fn free(&self, name: &str) -> bool {
        self.by_name.get(name).is_some_and(|p| p.running < p.limit)
    }

    /// Whether some executor has a free slot and a queued proc.
    pub(crate) fn any_startable(&self) -> bool {
        self.by_name
            .values()
            .any(|p| p.running < p.limit && !p.ready.is_empty())
    }

    /// The earliest queued proc of an executor with a free slot.
    pub(crate) fn pop_startable(&mut self) -> Option<ProcId> {
        self.by_name
            .values_mut()
            .filter(|p| p.running < p.limit)
            .find_map(|p| p.ready.pop())
    }

    /// How many procs hold an executor's slot.
    pub(crate) fn running(&self) -> usize {
        self.by_name.values().map(|p| p.running).sum()
    }
}

/// The local resource budget: what running procs use of it, and the procs parked until
/// enough is free.
///
/// No starvation: the first proc that does not fit becomes the *reservation*. Until it
/// starts, a later proc starts only if it leaves the reservation's share alone: for every
/// resource it uses, what is in use plus the reservation's need plus its own stays within
/// the budget. So a stream of small procs cannot keep a big one waiting: they may only use
/// what the big one does not need, and the big one starts as soon as the procs already
/// running free enough.
///
/// No deadlock: a proc blocked in a `wait` keeps its resources until what it waits for has
/// run. While those procs hold so much that the reservation could not start beside them,
/// the reservation holds nothing back (the procs they wait for may need the room); nor
/// does it while its proc waits for a lock (the lock's holder may wait for such a proc).
#[derive(Debug)]
pub(crate) struct Budget {
    /// The whole budget: unless given, the host's, read when a proc first needs some of
    /// it (most runs declare no resources, and the host's memory is a read of `/proc`).
    total: OnceCell<Resources>,
    used: Resources,
    /// The part of `used` held by procs blocked in a wait.
    held_waiting: Resources,
    parked: Vec<ProcId>,
    reserved: Option<(ProcId, Resources)>,
}

impl Default for Budget {
    fn default() -> Budget {
        Budget {
            total: OnceCell::new(),
            used: Resources::default(),
            held_waiting: Resources::default(),
            parked: Vec::new(),
            reserved: None,
        }
    }
}

impl Budget {
    /// A budget of `total`, none of it in use.
    #[cfg(test)]
    pub(crate) fn new(total: Resources) -> Budget {
        Budget {
            total: OnceCell::from(total),
            ..Budget::default()
        }
    }

    /// The whole budget.
    pub(crate) fn total(&self) -> &Resources {
        self.total.get_or_init(Resources::host)
    }

    /// Overrides or adds amounts of the budget (`set_options(#{ resources })`).
    pub(crate) fn merge(&mut self, amounts: &Resources) {
        let mut total = self.total.take().unwrap_or_else(Resources::host);
        total.merge(amounts);
        self.total = OnceCell::from(total);
    }

    /// Whether `p`, needing `need`, may start now. If not, it is parked until resources
    /// are given back, and becomes the reservation unless a proc still `waiting` holds it.
    pub(crate) fn admit(
        &mut self,
        p: ProcId,
        need: &Resources,
        waiting: impl Fn(ProcId) -> bool,
    ) -> bool {
        if self
            .reserved
            .as_ref()
            .is_some_and(|(r, _)| *r == p || !waiting(*r))
        {
            self.reserved = None;
        }
        let fits = need
            .iter()
            .all(|(k, n)| within(self.total().get(k), [self.used.get(k), n]));
        let clear = match &self.reserved {
            Some((_, big)) if self.fits_beside_waiting(big) => need.iter().all(|(k, n)| {
                n == 0 || within(self.total().get(k), [self.used.get(k), big.get(k), n])
            }),
            _ => true,
        };
        if fits && clear {
            return true;
        }
        if self.reserved.is_none() {
            self.reserved = Some((p, need.clone()));
        }
        self.parked.push(p);
        false
    }

    /// A proc started with `need`.
    pub(crate) fn take(&mut self, need: &Resources) {
        self.used.add(need);
    }

    /// A proc gave `need` back; returns the parked procs, to be queued again.
    pub(crate) fn give(&mut self, need: &Resources) -> Vec<ProcId> {
        self.used.sub(need);
        std::mem::take(&mut self.parked)
    }

    /// Whether `need` fits beside what procs blocked in a wait hold.
    fn fits_beside_waiting(&self, need: &Resources) -> bool {
        need.iter()
            .all(|(k, n)| within(self.total().get(k), [self.held_waiting.get(k), n]))
    }

    /// A proc holding `need` is blocked in a wait; returns the parked procs, to be queued
    /// again (the reservation may no longer hold them back).
    pub(crate) fn wait(&mut self, need: &Resources) -> Vec<ProcId> {
        self.held_waiting.add(need);
        std::mem::take(&mut self.parked)
    }

    /// A proc holding `need` is no longer blocked in a wait.
    pub(crate) fn resume(&mut self, need: &Resources) {
        self.held_waiting.sub(need);
    }

    /// One parked proc, to explain why something cannot start.
    pub(crate) fn any_parked(&self) -> Option<ProcId> {
        self.parked.first().copied()
    }

    /// The procs parked until resources are given back.
    pub(crate) fn parked(&self) -> impl Iterator<Item = ProcId> + '_ {
        self.parked.iter().copied()
    }
}

/// Whether `amounts` add up to at most `total` (amounts near `u64::MAX` do not wrap).
fn within<const N: usize>(total: u64, amounts: [u64; N]) -> bool {
    amounts
        .into_iter()
        .try_fold(0u64, u64::checked_add)
        .is_some_and(|sum| sum <= total)
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
    fn a_released_lock_hands_back_the_earliest_proc_parked_on_it() {
        let mut l = Locks::default();
        let db = vec!["db".to_string()];
        let both = vec!["net".to_string(), "db".to_string()];
        assert_eq!(l.held(&both), None);
        l.take(&db, 1);
        assert_eq!(l.held(&both).map(String::as_str), Some("db"));
        l.park("db", 3);
        l.park("db", 2);
        assert_eq!(l.any_holder(), Some(("db", 1)));
        assert_eq!(l.release(&db, 1), [2]);
        assert_eq!(l.held(&both), None);
        // 2 did not take it: 3 is next.
        assert_eq!(l.passed_over(2), [3]);
        assert_eq!(l.passed_over(2), Vec::<ProcId>::new(), "once");
        l.take(&db, 3);
        assert_eq!(l.passed_over(3), Vec::<ProcId>::new(), "3 took it");
        assert_eq!(l.release(&db, 3), Vec::<ProcId>::new());
    }

    fn need(cpus: u64, mem: u64) -> Resources {
        let mut r = Resources::default();
        r.set("cpus", cpus);
        r.set("mem", mem);
        r
    }

    #[test]
    fn a_blocked_big_proc_reserves_what_it_needs_from_later_small_ones() {
        let mut b = Budget::new(need(4, 8));
        let wanted = |_| true;
        assert!(b.admit(1, &need(1, 4), wanted));
        b.take(&need(1, 4));
        // The big one does not fit: it is parked and reserved.
        assert!(!b.admit(2, &need(1, 8), wanted));
        // A small one would fit, but takes memory the big one waits for.
        assert!(!b.admit(3, &need(1, 2), wanted));
        // One that needs no memory leaves the reservation alone.
        assert!(b.admit(4, &need(1, 0), wanted));
        b.take(&need(1, 0));
        assert_eq!(b.give(&need(1, 4)), [2, 3]);
        assert!(b.admit(2, &need(1, 8), wanted));
        b.take(&need(1, 8));
        assert!(!b.admit(3, &need(1, 2), wanted));
    }

    #[test]
    fn amounts_near_the_largest_integer_do_not_wrap() {
        let max = i64::MAX as u64;
        let mut b = Budget::new(need(max, 0));
        assert!(b.admit(1, &need(max, 0), |_| true));
        b.take(&need(max, 0));
        // used + need (+ the reservation) is past u64::MAX: it does not fit.
        assert!(!b.admit(2, &need(max, 0), |_| true));
        assert!(!b.admit(3, &need(max, 0), |_| true));
        b.take(&need(max, 0));
        assert_eq!(b.used.get("cpus"), u64::MAX - 1);
        b.take(&need(max, 0));
        assert_eq!(b.used.get("cpus"), u64::MAX);
    }

    #[test]
    fn a_reservation_lapses_when_its_proc_no_longer_waits() {
        let mut b = Budget::new(need(2, 8));
        b.take(&need(1, 6));
        assert!(!b.admit(1, &need(1, 8), |_| true));
        assert!(!b.admit(2, &need(1, 2), |_| true));
        // Proc 1 failed meanwhile: proc 2 fits beside what runs.
        assert!(b.admit(2, &need(1, 2), |p| p != 1));
    }

    #[test]
    fn a_reservation_out_of_reach_while_procs_wait_holds_nothing_back() {
        let mut b = Budget::new(need(4, 8));
        let wanted = |_| true;
        assert!(b.admit(1, &need(1, 4), wanted));
        b.take(&need(1, 4));
        assert!(!b.admit(2, &need(1, 8), wanted));
        assert!(!b.admit(3, &need(1, 2), wanted));
        // Proc 1 waits (for 3, say): 2 cannot start before it ends, so 3 may.
        assert_eq!(b.wait(&need(1, 4)), [2, 3]);
        assert!(!b.admit(2, &need(1, 8), wanted));
        assert!(b.admit(3, &need(1, 2), wanted));
        b.take(&need(1, 2));
        // Proc 1 waits no more: the reservation holds again.
        b.resume(&need(1, 4));
        assert!(!b.admit(4, &need(1, 1), wanted));
    }

    #[test]
    fn an_executor_pool_starts_its_own_procs_up_to_its_limit() {
        let mut p = Pools::default();
        p.declare("hpc", 2);
        assert!(p.has("hpc") && !p.has("farm"));
        for id in [7, 3, 9] {
            p.push("hpc", id);
        }
        assert!(p.any_startable());
        assert_eq!(p.pop_startable(), Some(3));
        p.take("hpc");
        assert_eq!(p.pop_startable(), Some(7));
        p.take("hpc");
        // Full: 9 waits although it is queued.
        assert!(!p.free("hpc") && !p.any_startable());
        assert_eq!(p.pop_startable(), None);
        assert_eq!(p.running(), 2);
        p.give("hpc");
        assert_eq!(p.pop_startable(), Some(9));
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

//! State-machine tests of [`Core`] without processes: jobs are "run" by completing them.

use std::sync::Arc;

use rhai::Dynamic;

use super::*;
use crate::exec::freshness::Judgement;
use crate::exec::state::Outcome;
use crate::graph::{Body, DepSpec, ProcDef};

fn def() -> ProcDef {
    ProcDef::new(Body::Cmd(["true"].into_iter().collect()), "test".into())
}

/// A definition in wave `w`.
fn in_wave(w: i64) -> ProcDef {
    let mut d = def();
    d.extras_mut().wave = w;
    d
}

fn with_deps(deps: &[&str]) -> ProcDef {
    ProcDef {
        deps: deps.iter().map(|d| DepSpec::Name(d.to_string())).collect(),
        ..def()
    }
}

/// A proc with one input file: it is judged before it starts.
fn with_input() -> ProcDef {
    ProcDef {
        inputs: vec![crate::graph::FileSpec::Path("in.txt".into())].into(),
        ..def()
    }
}

fn core(parallel: usize) -> Core {
    Core::new(CoreOptions {
        parallel,
        allow_missing_deps: true,
        fail_fast: false,
    })
}

fn add(c: &mut Core, name: &str, d: ProcDef) -> ProcId {
    c.define_proc(name, &mut Arc::new(d)).unwrap()
}

/// Names of the jobs started by the actions recorded so far.
fn started(c: &mut Core) -> Vec<String> {
    c.take_actions()
        .into_iter()
        .filter_map(|a| match a {
            Action::Start(j) => Some(j.name.to_string()),
            _ => None,
        })
        .collect()
}

fn ok(c: &mut Core, id: ProcId) {
    c.complete(id, Outcome::Success(Dynamic::UNIT), None);
}

#[test]
fn a_chain_starts_one_proc_at_a_time_in_dependency_order() {
    let mut c = core(4);
    let a = add(&mut c, "a", def());
    let b = add(&mut c, "b", with_deps(&["a"]));
    let z = add(&mut c, "c", with_deps(&["b"]));
    c.start(&[z]).unwrap();
    assert_eq!(started(&mut c), ["a"]);
    ok(&mut c, a);
    assert_eq!(started(&mut c), ["b"]);
    ok(&mut c, b);
    assert_eq!(started(&mut c), ["c"]);
    ok(&mut c, z);
    assert_eq!(c.state(z), State::Succeeded);
}

#[test]
fn the_parallel_limit_bounds_starts_and_ties_go_to_the_earliest_proc() {
    let mut c = core(2);
    let ids: Vec<ProcId> = (0..5)
        .map(|i| add(&mut c, &format!("p{i}"), def()))
        .collect();
    c.start(&ids.iter().rev().copied().collect::<Vec<_>>())
        .unwrap();
    assert_eq!(started(&mut c), ["p0", "p1"]);
    ok(&mut c, ids[1]);
    assert_eq!(started(&mut c), ["p2"]);
}

#[test]
fn a_held_lock_parks_procs_until_it_is_released() {
    let mut c = core(4);
    let locked = || {
        let mut d = def();
        d.extras_mut().locks = vec!["L".into()].into();
        d
    };
    let a = add(&mut c, "a", locked());
    let b = add(&mut c, "b", locked());
    let free = add(&mut c, "free", def());
    c.start(&[a, b, free]).unwrap();
    assert_eq!(started(&mut c), ["a", "free"]);
    ok(&mut c, a);
    assert_eq!(started(&mut c), ["b"]);
}

/// A definition holding `locks`.
fn locking(locks: &[&str]) -> ProcDef {
    let mut d = def();
    d.extras_mut().locks = locks
        .iter()
        .map(|l| l.to_string())
        .collect::<Vec<_>>()
        .into();
    d
}

#[test]
fn a_freed_lock_wakes_one_parked_proc_not_every_one() {
    // Waking all of them, each of which but one parked again, made n procs sharing a
    // lock cost n² steps: 20,000 of them did not finish in two minutes.
    let n = 100;
    let mut c = core(n);
    let ids: Vec<ProcId> = (0..n)
        .map(|i| add(&mut c, &format!("p{i}"), locking(&["L"])))
        .collect();
    c.start(&ids).unwrap();
    for (i, &p) in ids.iter().enumerate() {
        assert_eq!(
            started(&mut c),
            [format!("p{i}")],
            "the earliest defined first"
        );
        ok(&mut c, p);
    }
    assert!(
        c.locks.parks < 2 * n,
        "{} parks for {n} procs",
        c.locks.parks
    );
}

#[test]
fn a_woken_proc_that_cannot_take_its_locks_hands_the_freed_one_on() {
    let mut c = core(4);
    let a = add(&mut c, "a", locking(&["L"]));
    let b = add(&mut c, "b", locking(&["L", "M"]));
    let l = add(&mut c, "c", locking(&["L"]));
    let m = add(&mut c, "m", locking(&["M"]));
    c.start(&[m, a, b, l]).unwrap();
    assert_eq!(started(&mut c), ["a", "m"]);
    // L goes to b, which needs M too, held by m: c gets L instead.
    ok(&mut c, a);
    assert_eq!(started(&mut c), ["c"]);
    ok(&mut c, m);
    assert!(started(&mut c).is_empty(), "L is c's");
    ok(&mut c, l);
    assert_eq!(started(&mut c), ["b"]);
}

#[test]
fn a_higher_wave_waits_for_every_lower_wave_proc() {
    let mut c = core(4);
    let hi = add(&mut c, "hi", in_wave(1));
    let lo1 = add(&mut c, "lo1", def());
    let lo2 = add(&mut c, "lo2", def());
    c.start(&[hi, lo1, lo2]).unwrap();
    assert_eq!(started(&mut c), ["lo1", "lo2"]);
    ok(&mut c, lo1);
    assert!(started(&mut c).is_empty());
    ok(&mut c, lo2);
    assert_eq!(started(&mut c), ["hi"]);
}

#[test]
fn depending_on_a_higher_wave_is_an_error() {
    let mut c = core(4);
    add(&mut c, "hi", in_wave(2));
    let lo = add(&mut c, "lo", with_deps(&["hi"]));
    let err = c.start(&[lo]).unwrap_err();
    assert!(matches!(err, GraphError::WaveViolation { .. }), "{err}");
}

#[test]
fn a_cycle_is_rejected_and_printed() {
    let mut c = core(4);
    let a = add(&mut c, "a", with_deps(&["b"]));
    add(&mut c, "b", with_deps(&["c"]));
    add(&mut c, "c", with_deps(&["a"]));
    let err = c.start(&[a]).unwrap_err();
    assert_eq!(err.to_string(), "dependency cycle: a -> b -> c -> a");
    assert!(started(&mut c).is_empty());
    assert_eq!(c.state(a), State::Idle);
}

/// A start that meets a graph fault schedules nothing it named, not only the procs at
/// fault: all or nothing.
#[test]
fn a_start_that_meets_a_fault_schedules_nothing() {
    let mut c = core(4);
    let ok = add(&mut c, "ok", def());
    let a = add(&mut c, "a", with_deps(&["b"]));
    let b = add(&mut c, "b", with_deps(&["a"]));
    add(&mut c, "hi", in_wave(2));
    let lo = add(&mut c, "lo", with_deps(&["hi", "ok"]));
    for target in [a, lo] {
        assert!(c.start(&[ok, target]).is_err());
        assert!(started(&mut c).is_empty());
        for p in [ok, a, b, lo] {
            assert_eq!(c.state(p), State::Idle);
        }
    }
    c.start(&[ok]).unwrap();
    assert_eq!(started(&mut c), vec!["ok"]);
}

/// A definition that would close a cycle through a proc waiting for it is refused and
/// leaves no trace: not its name, not its rdep rule, not its run state; the waiting proc
/// waits on, and runs after the definition that fits.
#[test]
fn a_refused_definition_leaves_the_graph_as_it_was() {
    let mut c = core(4);
    let a = add(&mut c, "a", with_deps(&["b"]));
    c.start(&[a]).unwrap();
    assert!(started(&mut c).is_empty());
    let procs = c.graph().len();
    let mut bad = with_deps(&["a"]);
    bad.extras_mut().rdeps = ["z".to_string()].into_iter().collect();
    let err = c.define_proc("b", &mut Arc::new(bad)).unwrap_err();
    assert_eq!(
        err.to_string(),
        "proc \"b\" cannot be defined: dependency cycle: a -> b -> a"
    );
    assert_eq!(c.graph().len(), procs);
    assert!(c.graph().lookup("b").is_none());
    assert_eq!(c.state(a), State::Wanted);
    let z = add(&mut c, "z", def());
    c.start(&[z]).unwrap();
    assert_eq!(started(&mut c), ["z"]);
    let b = add(&mut c, "b", def());
    assert_eq!(started(&mut c), ["b"]);
    ok(&mut c, b);
    assert_eq!(started(&mut c), ["a"]);
}

#[test]
fn a_failure_cascades_to_dependents_but_not_to_other_branches() {
    let mut c = core(4);
    let bad = add(&mut c, "bad", def());
    let dep = add(&mut c, "dep", with_deps(&["bad"]));
    let dep2 = add(&mut c, "dep2", with_deps(&["dep"]));
    let other = add(&mut c, "other", def());
    c.start(&[dep2, other]).unwrap();
    started(&mut c);
    c.complete(
        bad,
        Outcome::Failed {
            error: "boom".into(),
            exit_code: Some(1),
        },
        None,
    );
    assert_eq!(c.state(dep), State::FailedDep);
    assert_eq!(c.state(dep2), State::FailedDep);
    assert_eq!(c.summary(dep2).error.unwrap(), "dependency \"dep\" failed");
    ok(&mut c, other);
    assert_eq!(c.state(other), State::Succeeded);
}

#[test]
fn a_missing_dependency_fails_its_dependent_once_the_script_stops_defining() {
    let mut c = core(4);
    let a = add(&mut c, "a", with_deps(&["later", "never"]));
    c.start(&[a]).unwrap();
    add(&mut c, "later", def());
    c.settle();
    assert_eq!(started(&mut c), ["later"]);
    let later = c.graph().lookup("later").unwrap();
    ok(&mut c, later);
    c.script_done();
    assert_eq!(c.state(a), State::FailedDep);
    assert_eq!(c.summary(a).error.unwrap(), "dependency \"never\" missing");
}

/// A dependency defined after its dependent failed through another one is scheduled all
/// the same, as it would have been had it been defined first: what runs does not depend
/// on when the failure came.
#[test]
fn a_dependency_defined_after_its_dependent_failed_still_runs() {
    let mut c = core(4);
    let bad = add(&mut c, "bad", def());
    let a = add(&mut c, "a", with_deps(&["bad", "later"]));
    c.start(&[a]).unwrap();
    assert_eq!(started(&mut c), ["bad"]);
    let boom = Outcome::Failed {
        error: "boom".into(),
        exit_code: Some(1),
    };
    c.complete(bad, boom, None);
    assert_eq!(c.state(a), State::FailedDep);
    let later = add(&mut c, "later", def());
    c.settle();
    assert_eq!(started(&mut c), ["later"]);
    ok(&mut c, later);
    assert_eq!(c.state(later), State::Succeeded);
}

#[test]
fn a_closure_waiting_gives_its_slot_back_and_gets_it_again() {
    let mut c = core(1);
    let parent = add(&mut c, "parent", def());
    let child = add(&mut c, "child", def());
    c.start(&[parent]).unwrap();
    assert_eq!(started(&mut c), ["parent"]);
    let rx = c.wait_for(&[child], Some(parent)).unwrap().unwrap();
    assert_eq!(started(&mut c), ["child"]);
    ok(&mut c, child);
    c.settle();
    for a in c.take_actions() {
        if let Action::Wake(tx, why) = a {
            tx.send(why).unwrap();
        }
    }
    assert_eq!(rx.recv().unwrap(), Wake::Done);
}

#[test]
fn after_an_abort_a_wait_for_a_running_proc_ends_when_it_does() {
    // Nothing starts after a script error, and neither did a body whose wait for a
    // running proc was over: it waited for a slot for ever.
    let mut c = core(2);
    let parent = add(&mut c, "parent", def());
    let child = add(&mut c, "child", def());
    let never = add(&mut c, "never", def());
    c.start(&[parent, child]).unwrap();
    assert_eq!(started(&mut c), ["parent", "child"]);
    c.abort(AbortReason::ScriptError);
    let rx = c.wait_for(&[child], Some(parent)).unwrap().unwrap();
    ok(&mut c, child);
    c.settle();
    send_wakes(&mut c);
    assert_eq!(rx.try_recv(), Ok(Wake::Done));
    // A wait for a proc that is not running throws at once.
    let rx = c.wait_for(&[never], Some(parent)).unwrap().unwrap();
    assert_eq!(rx.try_recv(), Ok(Wake::Aborted(AbortReason::ScriptError)));
}

#[test]
fn waiting_for_a_dependent_of_yourself_is_a_deadlock_not_a_hang() {
    let mut c = core(2);
    let parent = add(&mut c, "parent", def());
    let child = add(&mut c, "child", with_deps(&["parent"]));
    c.start(&[parent]).unwrap();
    started(&mut c);
    c.script_done();
    let rx = c.wait_for(&[child], Some(parent)).unwrap().unwrap();
    c.settle();
    for a in c.take_actions() {
        if let Action::Wake(tx, why) = a {
            tx.send(why).unwrap();
        }
    }
    assert!(matches!(rx.recv().unwrap(), Wake::Deadlock(_)));
}

/// Sends the wakes recorded so far; returns how many.
fn send_wakes(c: &mut Core) -> usize {
    let mut n = 0;
    for a in c.take_actions() {
        if let Action::Wake(tx, why) = a {
            tx.send(why).unwrap();
            n += 1;
        }
    }
    n
}

#[test]
fn a_deadlock_of_locks_and_waits_fails_only_the_waiter_defined_last() {
    let mut c = core(4);
    let locked = |lock: &str| {
        let mut d = def();
        d.extras_mut().locks.push(lock.to_string());
        d
    };
    let needs_y = add(&mut c, "c", locked("y"));
    let needs_x = add(&mut c, "d", locked("x"));
    let a = add(&mut c, "a", locked("x"));
    let b = add(&mut c, "b", locked("y"));
    c.start(&[a, b]).unwrap();
    assert_eq!(started(&mut c), ["a", "b"]);
    c.script_done();
    let rx_a = c.wait_for(&[needs_y], Some(a)).unwrap().unwrap();
    let rx_b = c.wait_for(&[needs_x], Some(b)).unwrap().unwrap();
    c.settle();
    assert_eq!(send_wakes(&mut c), 1, "one waiter woken");
    match rx_b.try_recv() {
        Ok(Wake::Deadlock(why)) => assert!(why.contains("b -> d -> a -> c -> b"), "{why}"),
        other => panic!("b was not failed: {other:?}"),
    }
    assert!(rx_a.try_recv().is_err(), "a still waits");
    // b's body ends with its wait's error, giving back its lock: c runs, and a goes on.
    fail(&mut c, b);
    assert_eq!(started(&mut c), ["c"]);
    ok(&mut c, needs_y);
    c.settle();
    send_wakes(&mut c);
    assert_eq!(rx_a.recv().unwrap(), Wake::Done);
}

#[test]
fn a_wait_for_a_proc_of_a_higher_wave_is_refused_at_once() {
    let mut c = core(4);
    let lo = add(&mut c, "lo", in_wave(0));
    let hi = add(&mut c, "hi", in_wave(1));
    c.start(&[lo]).unwrap();
    assert_eq!(started(&mut c), ["lo"]);
    let err = c.wait_for(&[hi], Some(lo)).unwrap_err();
    assert!(matches!(err, GraphError::WaitForHigherWave { .. }), "{err}");
    // The wait scheduled hi: it starts once lo has ended.
    assert!(started(&mut c).is_empty());
    ok(&mut c, lo);
    assert_eq!(started(&mut c), ["hi"]);
}

#[test]
fn a_proc_held_back_by_a_lower_wave_closes_a_cycle_of_waits() {
    // hi (wave 1) runs before lo (wave 0) is scheduled; lo waits for hi, which waits for
    // r (wave 1), held back by lo's wave: lo is failed, naming the wave.
    let mut c = core(4);
    let hi = add(&mut c, "hi", in_wave(1));
    let lo = add(&mut c, "lo", in_wave(0));
    let r = add(&mut c, "r", in_wave(1));
    c.start(&[hi]).unwrap();
    c.start(&[lo]).unwrap();
    assert_eq!(started(&mut c), ["hi", "lo"]);
    c.script_done();
    let rx_lo = c.wait_for(&[hi], Some(lo)).unwrap().unwrap();
    let rx_hi = c.wait_for(&[r], Some(hi)).unwrap().unwrap();
    c.settle();
    assert_eq!(send_wakes(&mut c), 1, "one waiter woken");
    match rx_lo.try_recv() {
        Ok(Wake::Deadlock(why)) => assert!(
            why.contains(r#"lo -> hi -> r -> lo, where "r" (wave 1) starts only once wave 0 has finished, "lo" included"#),
            "{why}"
        ),
        other => panic!("lo was not failed: {other:?}"),
    }
    fail(&mut c, lo);
    assert_eq!(started(&mut c), ["r"]);
    ok(&mut c, r);
    c.settle();
    send_wakes(&mut c);
    assert_eq!(rx_hi.recv().unwrap(), Wake::Done);
}

#[test]
fn a_deadlock_over_resources_fails_only_the_waiter_defined_last() {
    let mut c = core(4);
    let mut budget = crate::graph::Resources::new();
    budget.set("mem", 1024);
    c.set_budget(&budget).unwrap();
    let half = || {
        let mut d = def();
        d.extras_mut().resources.set("mem", 512);
        d
    };
    let needed = add(&mut c, "c", half());
    let a1 = add(&mut c, "a1", half());
    let a2 = add(&mut c, "a2", half());
    c.start(&[a1, a2]).unwrap();
    assert_eq!(started(&mut c), ["a1", "a2"]);
    c.script_done();
    let rx_a1 = c.wait_for(&[needed], Some(a1)).unwrap().unwrap();
    let rx_a2 = c.wait_for(&[needed], Some(a2)).unwrap().unwrap();
    c.settle();
    assert_eq!(send_wakes(&mut c), 1, "one waiter woken");
    match rx_a2.try_recv() {
        Ok(Wake::Deadlock(why)) => assert!(
            why.contains(r#"a2 -> c -> a2, where "c" needs resource "mem" held by "a2""#),
            "{why}"
        ),
        other => panic!("a2 was not failed: {other:?}"),
    }
    assert!(rx_a1.try_recv().is_err(), "a1 still waits");
    fail(&mut c, a2);
    assert_eq!(started(&mut c), ["c"]);
    ok(&mut c, needed);
    c.settle();
    send_wakes(&mut c);
    assert_eq!(rx_a1.recv().unwrap(), Wake::Done);
}

#[test]
fn no_failures_guards_against_any_earlier_failure() {
    let mut c = core(4);
    let bad = add(&mut c, "bad", def());
    let guard = add(
        &mut c,
        "guard",
        ProcDef {
            no_failures: true,
            ..with_deps(&["slow"])
        },
    );
    let slow = add(&mut c, "slow", def());
    c.start(&[bad, guard]).unwrap();
    c.complete(
        bad,
        Outcome::Failed {
            error: "x".into(),
            exit_code: None,
        },
        None,
    );
    ok(&mut c, slow);
    assert_eq!(c.state(guard), State::FailedDep);
}

#[test]
fn retries_rerun_a_failed_proc() {
    let mut c = core(4);
    let mut retried = def();
    retried.extras_mut().retries = 1;
    let p = add(&mut c, "p", retried);
    c.start(&[p]).unwrap();
    started(&mut c);
    let fail = Outcome::Failed {
        error: "x".into(),
        exit_code: None,
    };
    c.complete(p, fail.clone(), None);
    assert_eq!(c.state(p), State::Wanted);
    c.retry_due(p);
    assert_eq!(started(&mut c), ["p"]);
    c.complete(p, fail, None);
    assert_eq!(c.state(p), State::Failed);
}

#[test]
fn a_settled_run_is_left_to_the_exit_and_stays_usable() {
    let mut c = core(2);
    let a = add(&mut c, "a", def());
    c.start(&[a]).unwrap();
    started(&mut c);
    ok(&mut c, a);
    c.script_done();
    c.leave_to_exit();
    assert_eq!(c.graph().procs().count(), 0);
    assert_eq!(c.scheduled_len(), 0);
    // A late Ctrl-C still finds a consistent, empty run.
    c.abort(AbortReason::Interrupted);
    c.settle();
    assert!(c.interrupted_procs().is_empty());
}

#[test]
fn a_run_with_a_proc_running_or_wanted_is_not_left_to_the_exit() {
    let mut c = core(1);
    let a = add(&mut c, "a", def());
    let b = add(&mut c, "b", def());
    c.start(&[a, b]).unwrap();
    assert_eq!(started(&mut c), ["a"]);
    c.leave_to_exit();
    assert_eq!(c.graph().procs().count(), 2);
    c.abort(AbortReason::Interrupted);
    assert_eq!(c.interrupted_procs(), ["a"]);
    c.complete(a, Outcome::Success(Dynamic::UNIT), None);
    assert_eq!(c.state(a), State::Succeeded);
    assert_eq!(c.state(b), State::Wanted);
}

/// A script closure stand-in that returns fixed names and counts its calls.
struct Names(Vec<&'static str>, std::sync::atomic::AtomicUsize);

impl crate::graph::Callable for Names {
    fn call(&self, _: Dynamic, _: &[String]) -> Result<Dynamic, Box<rhai::EvalAltResult>> {
        self.1.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let names: rhai::Array = self
            .0
            .iter()
            .map(|n| Dynamic::from(n.to_string()))
            .collect();
        Ok(names.into())
    }
    fn origin(&self) -> crate::diag::Origin {
        crate::diag::Origin::from("test")
    }
    fn identity(&self) -> String {
        String::new()
    }
}

/// Answers every need of an unresolved operation, as the scheduler does off the lock.
fn answer(c: &mut Core, err: GraphError) {
    let GraphError::Unresolved(needs) = err else {
        panic!("expected needs, got {err}");
    };
    for n in needs.0.iter() {
        c.graph_mut().answer(n.key().clone(), n.answer());
    }
}

#[test]
fn an_operation_that_needs_a_closure_changes_nothing_until_it_is_answered() {
    let mut c = core(4);
    let closure = Arc::new(Names(vec!["base"], Default::default()));
    add(&mut c, "base", def());
    let proto = ProcDef {
        deps: vec![DepSpec::Closure(closure.clone())].into(),
        ..def()
    };
    c.define_proto("made::[x]", Arc::new(proto)).unwrap();
    let top = add(&mut c, "top", with_deps(&["made::1"]));
    let err = c.start(&[top]).unwrap_err();
    assert_eq!(c.state(top), State::Idle, "no run state changed");
    assert_eq!(closure.1.load(std::sync::atomic::Ordering::SeqCst), 0);
    answer(&mut c, err);
    assert_eq!(closure.1.load(std::sync::atomic::Ordering::SeqCst), 1);
    c.start(&[top]).unwrap();
    assert_eq!(started(&mut c), ["base"]);
    let made = c.graph().lookup("made::1").unwrap();
    assert_eq!(c.graph().proc(made).deps[..], ["base"]);
    assert_eq!(c.state(made), State::Wanted);
}

/// The procs the recorded actions send to be judged.
fn judged(c: &mut Core) -> Vec<ProcId> {
    c.take_actions()
        .into_iter()
        .filter_map(|a| match a {
            Action::Judge(batch) => Some(batch.into_iter().map(|s| s.id).collect::<Vec<_>>()),
            _ => None,
        })
        .flatten()
        .collect()
}

#[test]
fn a_proc_with_inputs_is_judged_off_the_lock_before_it_starts() {
    let mut c = core(1);
    let p = add(&mut c, "p", with_input());
    let q = add(&mut c, "q", def());
    c.start(&[p, q]).unwrap();
    assert_eq!(judged(&mut c), [p], "judging holds the one slot");
    c.judged_all([(p, Judgement::Stale(Fingerprint::default()))]);
    assert_eq!(started(&mut c), ["p"]);
    ok(&mut c, p);
    assert_eq!(started(&mut c), ["q"]);
}

/// An interrupted run is over only once the judgings sent out are back: their closures
/// may run commands, and the run ended while one did (its FAILED line came after the
/// summary).
#[test]
fn an_aborted_run_waits_for_the_judgings_sent_out() {
    let mut c = core(1);
    let p = add(&mut c, "p", with_input());
    c.start(&[p]).unwrap();
    assert_eq!(judged(&mut c), [p]);
    c.abort(AbortReason::Interrupted);
    assert!(!c.all_done());
    c.judged_all([(p, Judgement::Failed("terminated".into()))]);
    assert!(c.all_done());
}

#[test]
fn a_fresh_verdict_finishes_the_proc_up_to_date_with_the_cached_result() {
    let mut c = core(2);
    let p = add(&mut c, "p", with_input());
    let d = add(&mut c, "d", with_deps(&["p"]));
    c.start(&[d]).unwrap();
    assert_eq!(judged(&mut c), [p]);
    c.judged_all([(p, Judgement::Fresh(Dynamic::from(5_i64)))]);
    assert_eq!(c.state(p), State::UpToDate);
    assert_eq!(c.summary(p).result.unwrap().as_int(), Ok(5));
    assert_eq!(started(&mut c), ["d"]);
}

#[test]
fn the_task_db_is_opened_off_the_lock_before_anything_is_judged_or_started() {
    let mut c = core(2);
    c.set_cache_opener(Some(CacheOpener::Here(Box::new(|| None))));
    let p = add(&mut c, "p", with_input());
    c.start(&[p]).unwrap();
    let opened: Vec<u64> = c
        .take_actions()
        .into_iter()
        .filter_map(|a| match a {
            Action::OpenCache { generation, .. } => Some(generation),
            Action::Start(_) => panic!("started before the DB was open"),
            Action::Judge(_) => panic!("judged before the DB was open"),
            _ => None,
        })
        .collect();
    assert_eq!(opened.len(), 1);
    c.settle();
    assert!(c.take_actions().is_empty(), "not stuck while the DB opens");
    c.cache_opened(opened[0], None);
    assert_eq!(judged(&mut c), [p]);
}

#[test]
fn a_proc_never_judged_starts_while_the_db_opens_and_the_run_waits_for_its_row() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut c = core(2);
    c.set_cache_opener(Some(CacheOpener::Here(Box::new(|| None))));
    let q = add(&mut c, "q", def());
    let d = add(&mut c, "d", with_deps(&["q"]));
    c.start(&[q]).unwrap();
    let (starts, generation) = starts_and_opening(&mut c);
    assert_eq!(starts, ["q"], "q needs no judging: it starts at once");
    ok(&mut c, q);
    assert_eq!(c.state(q), State::Succeeded);
    let rx = c.wait_all().unwrap();
    assert!(rx.is_some(), "the run waits until the DB has q's row");
    c.settle();
    assert!(
        !c.take_actions()
            .iter()
            .any(|a| matches!(a, Action::Wake(_, Wake::Done))),
        "woken before the DB was open"
    );
    open_db(&mut c, generation, dir.path());
    c.settle();
    assert!(
        c.take_actions()
            .iter()
            .any(|a| matches!(a, Action::Wake(_, Wake::Done))),
        "the wait ends once the DB is open"
    );
    assert!(
        !c.cache().expect("cache").stamp(q, "q").is_empty(),
        "q's stamp"
    );
    // A dependent, judged now that the DB is open (here and now: it has no inputs).
    c.start(&[d]).unwrap();
    assert_eq!(started(&mut c), ["d"]);
}

#[test]
fn a_proc_failed_by_its_outputs_keeps_its_result() {
    let mut c = core(1);
    let p = add(&mut c, "p", def());
    c.start(&[p]).unwrap();
    started(&mut c);
    let outcome = Outcome::OutputsFailed {
        result: Dynamic::from(3_i64),
        error: "out.txt (missing)".into(),
    };
    c.complete(p, outcome, None);
    assert_eq!(c.state(p), State::Failed);
    assert_eq!(c.summary(p).result.unwrap().as_int(), Ok(3));
}

#[test]
fn procs_to_judge_go_to_a_worker_in_one_batch_holding_one_slot() {
    let mut c = core(2);
    let with_inputs = || with_input();
    let ids: Vec<ProcId> = (0..3)
        .map(|i| add(&mut c, &format!("p{i}"), with_inputs()))
        .collect();
    let plain = add(&mut c, "plain", def());
    c.start(&[ids[0], ids[1], ids[2], plain]).unwrap();
    let actions = c.take_actions();
    let batches: Vec<usize> = actions
        .iter()
        .filter_map(|a| match a {
            Action::Judge(batch) => Some(batch.len()),
            _ => None,
        })
        .collect();
    assert_eq!(batches, [3]);
    let starts = actions
        .iter()
        .filter(|a| matches!(a, Action::Start(_)))
        .count();
    assert_eq!(starts, 1, "the second slot runs the plain proc");
    for &p in &ids {
        c.judged_all([(p, Judgement::Stale(Fingerprint::default()))]);
    }
    assert_eq!(started(&mut c), ["p0"]);
}

#[test]
fn a_batch_of_judgings_fills_up_even_in_the_last_free_slot() {
    let mut c = core(1);
    let ids: Vec<ProcId> = (0..3)
        .map(|i| add(&mut c, &format!("p{i}"), with_input()))
        .collect();
    let plain = add(&mut c, "plain", def());
    c.start(&[ids[0], plain, ids[1], ids[2]]).unwrap();
    let actions = c.take_actions();
    let batches: Vec<Vec<ProcId>> = actions
        .iter()
        .filter_map(|a| match a {
            Action::Judge(batch) => Some(batch.iter().map(|s| s.id).collect()),
            _ => None,
        })
        .collect();
    assert_eq!(batches, [&ids[..]], "one round trip to a worker, not three");
    assert!(
        !actions.iter().any(|a| matches!(a, Action::Start(_))),
        "the plain proc needs a slot of its own: it waits"
    );
    for &p in &ids {
        c.judged_all([(p, Judgement::Fresh(Dynamic::UNIT))]);
    }
    assert_eq!(started(&mut c), ["plain"]);
}

fn fail(c: &mut Core, id: ProcId) {
    let error = "boom".to_string();
    c.complete(
        id,
        Outcome::Failed {
            error,
            exit_code: Some(1),
        },
        None,
    );
}

#[test]
fn a_rerun_resets_the_changed_proc_and_its_dependents_only() {
    let mut c = core(4);
    let a = add(&mut c, "a", def());
    let b = add(&mut c, "b", with_deps(&["a"]));
    let other = add(&mut c, "other", def());
    c.start(&[b, other]).unwrap();
    assert_eq!(started(&mut c), ["a", "other"]);
    ok(&mut c, a);
    ok(&mut c, other);
    assert_eq!(started(&mut c), ["b"]);
    ok(&mut c, b);
    let rerun = c.rerun(&[a], &|_| false);
    assert_eq!(rerun.procs, [a, b]);
    assert!(rerun.restarted.is_empty());
    assert_eq!(started(&mut c), ["a"]);
    assert_eq!(
        (c.state(b), c.state(other)),
        (State::Wanted, State::Succeeded)
    );
    ok(&mut c, a);
    assert_eq!(started(&mut c), ["b"]);
}

#[test]
fn a_stale_attempt_is_dropped_and_its_dependents_wait_for_the_next_one() {
    let mut c = core(4);
    let a = add(&mut c, "a", def());
    let b = add(&mut c, "b", with_deps(&["a"]));
    c.start(&[b]).unwrap();
    assert_eq!(started(&mut c), ["a"]);
    let rerun = c.rerun(&[a], &|_| false);
    assert_eq!(rerun.restarted, [a]);
    ok(&mut c, a);
    // The stale attempt released nothing: `a` runs again, and `b` only after that.
    assert_eq!(started(&mut c), ["a"]);
    assert_eq!(c.state(b), State::Wanted);
    c.complete(a, Outcome::Success(Dynamic::from(2_i64)), None);
    let jobs: Vec<Box<JobSpec>> = c
        .take_actions()
        .into_iter()
        .filter_map(|x| match x {
            Action::Start(j) => Some(j),
            _ => None,
        })
        .collect();
    assert_eq!(jobs.len(), 1);
    assert_eq!(jobs[0].dep_results["a"].as_int(), Ok(2));
}

#[test]
fn a_rerun_of_a_proc_failed_by_one_dependency_counts_another_still_running_once() {
    let mut c = core(4);
    let d1 = add(&mut c, "d1", def());
    let d2 = add(&mut c, "d2", def());
    let p = add(&mut c, "p", with_deps(&["d1", "d2"]));
    c.start(&[p]).unwrap();
    assert_eq!(started(&mut c), ["d1", "d2"]);
    fail(&mut c, d1);
    assert_eq!(c.state(p), State::FailedDep);
    // `d2` still lists `p` as its dependent from before `p` failed.
    c.rerun(&[d1], &|_| false);
    assert_eq!(started(&mut c), ["d1"]);
    ok(&mut c, d1);
    ok(&mut c, d2);
    assert_eq!(started(&mut c), ["p"]);
    ok(&mut c, p);
    assert_eq!(c.state(p), State::Succeeded);
}

#[test]
fn run_states_keep_little_unused_room() {
    let mut c = core(1);
    let n = 1100;
    let ids: Vec<ProcId> = (0..n)
        .map(|i| add(&mut c, &format!("p{i}"), def()))
        .collect();
    c.start(&ids[..1]).unwrap();
    started(&mut c);
    let live = c.runs[ids[0]]
        .live
        .as_ref()
        .expect("a running proc's live part");
    assert_eq!(live.attempt_log.capacity(), 1, "room for one attempt");
    ok(&mut c, ids[0]);
    // Doubling would leave room for 2048 run states.
    assert!(c.runs.capacity() <= n + n / 4, "{}", c.runs.capacity());
    assert!(
        c.runs[ids[0]].live.is_none(),
        "a finished proc keeps no attempt records or times"
    );
}

#[test]
fn a_run_keeps_few_bytes_per_proc() {
    // A run keeps each proc's definition, graph node and run state to its end: 10,000
    // procs cost ten thousand times these (benches/engine.sh, case 6).
    use std::mem::size_of;
    assert!(size_of::<ProcDef>() <= 136, "{}", size_of::<ProcDef>());
    assert!(
        size_of::<crate::graph::ProcNode>() <= 48,
        "{}",
        size_of::<crate::graph::ProcNode>()
    );
    assert!(
        size_of::<super::Run>() <= 184,
        "{}",
        size_of::<super::Run>()
    );
}

#[test]
fn procs_declared_alike_share_one_definition_and_a_retry_is_no_duplicate() {
    let mut c = core(2);
    let a = add(&mut c, "a", def());
    let mut same = Arc::new(def());
    let name = rhai::ImmutableString::from("b");
    let b = c.define_proc(name.clone(), &mut same).unwrap();
    assert!(
        c.graph().proc(b).name.ptr_eq(&name),
        "the script's own name, not a copy"
    );
    assert!(
        Arc::ptr_eq(&c.graph().proc(a).def, &c.graph().proc(b).def),
        "one definition for both"
    );
    assert!(Arc::ptr_eq(&same, &c.graph().proc(b).def), "the kept one");
    // An operation retried after its proc was added (see `prepare`) is not a duplicate.
    assert_eq!(c.define_proc("b", &mut same), Ok(b));
    // A second declaration of the same name, with the same options, still is.
    assert!(matches!(
        c.define_proc("b", &mut Arc::new(def())),
        Err(GraphError::DuplicateProc { name, .. }) if name == "b"
    ));
    let other = add(&mut c, "c", with_deps(&["a"]));
    assert!(!Arc::ptr_eq(
        &c.graph().proc(b).def,
        &c.graph().proc(other).def
    ));
}

/// A definition running `argv`.
fn running(argv: &[&str]) -> ProcDef {
    ProcDef::new(Body::Cmd(argv.iter().collect()), "test".into())
}

/// The argv a started job runs, by its name.
fn argvs_started(c: &mut Core) -> Vec<(String, Vec<String>)> {
    c.take_actions()
        .into_iter()
        .filter_map(|a| match a {
            Action::Start(j) => match &j.def.body {
                Body::Cmd(argv) => {
                    Some((j.name.to_string(), argv.iter().map(String::from).collect()))
                }
                _ => None,
            },
            _ => None,
        })
        .collect()
}

#[test]
fn procs_declared_alike_but_for_their_commands_share_a_definition_and_run_their_own() {
    let mut c = core(4);
    let a = add(&mut c, "a", running(&["echo", "a"]));
    let mut kept = Arc::new(running(&["echo", "b"]));
    let b = c.define_proc("b", &mut kept).unwrap();
    let same_as_a = add(&mut c, "c", running(&["echo", "a"]));
    let shell = add(
        &mut c,
        "d",
        ProcDef::new(Body::Shell("echo d".into()), "test".into()),
    );
    let g = c.graph();
    for p in [b, same_as_a, shell] {
        assert!(
            Arc::ptr_eq(&g.proc(a).def, &g.proc(p).def),
            "one definition"
        );
    }
    assert!(matches!(g.proc(b).body(), Body::Cmd(argv) if argv.iter().eq(["echo", "b"])));
    assert!(matches!(g.proc(same_as_a).body(), Body::Cmd(argv) if argv.iter().eq(["echo", "a"])));
    assert!(matches!(g.proc(shell).body(), Body::Shell(s) if &**s == "echo d"));
    // The definition to retry with is the kept one, and the retry is no duplicate.
    assert!(Arc::ptr_eq(&kept, &g.proc(b).def));
    assert_eq!(c.define_proc("b", &mut kept), Ok(b));
    assert!(matches!(
        c.define_proc("b", &mut Arc::new(running(&["echo", "b"]))),
        Err(GraphError::DuplicateProc { name, .. }) if name == "b"
    ));
    c.start(&[a, b, same_as_a]).unwrap();
    let mut jobs = argvs_started(&mut c);
    jobs.sort();
    assert_eq!(
        jobs,
        [
            ("a".to_string(), vec!["echo".to_string(), "a".to_string()]),
            ("b".to_string(), vec!["echo".to_string(), "b".to_string()]),
            ("c".to_string(), vec!["echo".to_string(), "a".to_string()]),
        ]
    );
}

#[test]
fn when_scheduled_and_rdep_rules_are_found_by_name_not_by_looking_at_all() {
    let mut c = core(4);
    let n = 1000;
    let mut declarers = Vec::new();
    for i in 0..n {
        add(&mut c, &format!("p{i}"), def());
        let mut w = def();
        w.extras_mut().when_scheduled.push(format!("p{i}"));
        declarers.push(add(&mut c, &format!("w{i}"), w));
        let mut q = def();
        q.extras_mut().rdeps.push(format!("p{i}"));
        add(&mut c, &format!("q{i}"), q);
    }
    c.start(&declarers).unwrap();
    let p7 = c.graph().lookup("p7").expect("p7");
    assert_eq!(c.graph().proc(p7).deps.to_vec(), ["w7", "q7"]);
    assert_eq!(c.state(p7), State::Wanted);
    // One rule of each kind per name; looking at all of them would be n for each.
    assert!(
        c.active_ws.looked_at() <= 2 * n,
        "{}",
        c.active_ws.looked_at()
    );
    let rdeps = c.graph().rdep_rules_looked_at();
    assert!(rdeps <= 4 * n, "{rdeps}");
    let w7 = declarers[7];
    assert_eq!(c.ws_of[&w7].len(), 1);
    loop {
        let names = started(&mut c);
        if names.is_empty() {
            break;
        }
        for name in names {
            let id = c.graph().lookup(&name).expect("started");
            ok(&mut c, id);
        }
    }
    assert_eq!(c.state(p7), State::Succeeded);
    assert!(c.ws_of.is_empty(), "an ended declarer's rules are dropped");
    assert!(c.active_ws.candidates("p7").is_empty());
}

#[test]
fn a_when_scheduled_pattern_of_a_running_proc_reaches_the_names_it_matches_only() {
    let mut c = core(4);
    c.define_proto("deploy::[env]", Arc::new(def())).unwrap();
    c.define_proto("other::[env]", Arc::new(def())).unwrap();
    let mut n = def();
    n.extras_mut().when_scheduled.push("deploy::[env]".into());
    let notify = add(&mut c, "notify", n);
    c.start(&[notify]).unwrap();
    assert_eq!(started(&mut c), ["notify"]);
    let deploy = c.expand("deploy::a").unwrap();
    let other = c.expand("other::a").unwrap();
    c.start(&[deploy[0], other[0]]).unwrap();
    assert_eq!(c.graph().proc(deploy[0]).deps.to_vec(), ["notify"]);
    assert!(c.graph().proc(other[0]).deps.is_empty());
    assert_eq!(started(&mut c), ["other::a"]);
    ok(&mut c, notify);
    assert_eq!(started(&mut c), ["deploy::a"]);
}

/// Feeds the batches of judgings asked for so far the verdicts a worker would give.
fn judge_on_a_worker(c: &mut Core) {
    for a in c.take_actions() {
        if let Action::Judge(batch) = a {
            let verdicts = crate::exec::freshness::judge_all(&batch);
            c.judged_all(verdicts);
        }
    }
}

/// Starts `targets` with a new task DB in `dir`, opened once the run asks for it; returns
/// the jobs started meanwhile.
fn start_with_db(c: &mut Core, targets: &[ProcId], dir: &std::path::Path) -> Vec<String> {
    c.set_cache_opener(Some(CacheOpener::Here(Box::new(|| None))));
    c.start(targets).unwrap();
    let (starts, generation) = starts_and_opening(c);
    open_db(c, generation, dir);
    starts
}

/// The names of the jobs the core started, and the generation of the task DB it asked to
/// open, among its actions.
fn starts_and_opening(c: &mut Core) -> (Vec<String>, Option<u64>) {
    let mut generation = None;
    let mut starts = Vec::new();
    for a in c.take_actions() {
        match a {
            Action::OpenCache { generation: g, .. } => generation = Some(g),
            Action::Start(j) => starts.push(j.name.to_string()),
            _ => {}
        }
    }
    (starts, generation)
}

/// Hands the core the new task DB `t.db` in `dir` it asked for as `generation`.
fn open_db(c: &mut Core, generation: Option<u64>, dir: &std::path::Path) {
    let warn: Arc<dyn Fn(&str) + Send + Sync> = Arc::new(|m: &str| panic!("{m}"));
    let cache = Cache::open(
        &dir.join("t.db"),
        crate::store::ScriptName::of(std::path::Path::new("t")),
        vec![],
        false,
        std::time::SystemTime::now(),
        warn,
    );
    c.cache_opened(generation.expect("opened"), cache);
}

/// `p` depends on `r`, which always runs, and on `e`, which has an input and ends with
/// `no_change`: `p` is never UP_TO_DATE in a run, and runs unjudged.
fn never_fresh_after_no_change(c: &mut Core, dir: &std::path::Path) -> (ProcId, ProcId) {
    let r = add(c, "r", def());
    let e = add(c, "e", with_input());
    let p = add(c, "p", with_deps(&["r", "e"]));
    assert_eq!(start_with_db(c, &[p], dir), ["r"]);
    ok(c, r);
    judge_on_a_worker(c);
    assert_eq!(started(c), ["e"]);
    let no_change = Outcome::Skipped {
        why: String::new(),
        no_change: true,
    };
    c.complete(e, no_change, None);
    assert_eq!(started(c), ["p"]);
    ok(c, p);
    assert!(c.runs[p].fingerprint.is_none(), "p was judged");
    assert!(c.cache().unwrap().row("p").is_none(), "p saved a row");
    assert!(
        !c.cache().unwrap().stamp(p, "p").is_empty(),
        "p has no new stamp"
    );
    (e, p)
}

#[test]
fn a_watch_cycle_finds_a_proc_that_ran_unjudged_up_to_date_when_no_dependency_really_ran() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut c = core(4);
    let (e, p) = never_fresh_after_no_change(&mut c, dir.path());
    c.rerun(&[e], &|_| false);
    judge_on_a_worker(&mut c);
    assert_eq!(c.state(e), State::UpToDate);
    assert_eq!(c.state(p), State::UpToDate);
    assert!(started(&mut c).is_empty());
}

#[test]
fn a_proc_that_ran_unjudged_runs_in_a_watch_cycle_after_the_params_changed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut c = core(4);
    let (e, p) = never_fresh_after_no_change(&mut c, dir.path());
    let mut params = rhai::Map::new();
    params.insert("level".into(), Dynamic::from(2_i64));
    c.set_params(params);
    c.rerun(&[e], &|_| false);
    judge_on_a_worker(&mut c);
    // The params are in every fingerprint: `e` runs again, and says `no_change` again.
    assert_eq!(started(&mut c), ["e"]);
    let no_change = Outcome::Skipped {
        why: String::new(),
        no_change: true,
    };
    c.complete(e, no_change, None);
    assert_eq!(started(&mut c), ["p"]);
    assert_eq!(c.state(p), State::Running);
}

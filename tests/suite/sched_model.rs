//! A model of the scheduler checked against random scripts, where the earlier random probe
//! did not reach: deadlocks of waits broken by failing one proc, a closure's `ctx.wait` for
//! a proc still missing a dependency, `allow_missing_deps` with dependencies defined late,
//! never or by a proto, `when_scheduled` against `now`, `run` and command-line targets,
//! `--fail-fast`, and `retries`/`timeout` with dependents and waiters.
//!
//! Each script is a few independent *blocks* (each one feature, its proc names prefixed
//! `b0`, `b1`...) sharing one top level, one `-j`, one `allow_missing_deps` and maybe
//! `--fail-fast` and a top-level `wait()`. A block knows what the documented rules make
//! of it: each proc's final state (`--json` report), results, printed lines, attempts, and
//! which proc must end before another starts. Every command appends `S name pid` at its
//! start and `E name` at its end to the file `log` (`P name pid` for a background
//! `sleep`), so order, attempts and leftover processes are read from what really ran.
//!
//! The fixed seeds run by default (a deterministic generator, no clock, no OS randomness).
//! To run more: `PRUN_SCHED_MODEL_SCRIPTS=500 cargo test --test integration sched_model`
//! runs seeds 0..500 (`PRUN_SCHED_MODEL_SEED=S` starts at S instead of 0); a failure names
//! each failing seed with its script and what prun printed.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::{Output, Test, alive};

/// The fixed seeds are the first `FIRST_SEEDS` and [`MORE_SEEDS`]: together they draw
/// every kind of block but the rare `when-target-now` (no other block may schedule
/// anything), with and without `--fail-fast`, `-j 1` and `allow_missing_deps`.
const FIRST_SEEDS: u64 = 48;
/// Seeds that draw the kinds of block the first ones do not: `deadlock-lock` (48),
/// `closure-wait-late-ctx.wait` (52), `when-now-now-reversed` (55), `deadlock-beside`
/// (77), `top-run-late-chain-waited` (89).
const MORE_SEEDS: [u64; 5] = [48, 52, 55, 77, 89];

/// How many scripts run at once (each runs a prun and its commands).
const WORKERS: usize = 3;

const SUCC: Option<&str> = Some("SUCCEEDED");
const FAIL: Option<&str> = Some("FAILED");
const FDEP: Option<&str> = Some("FAILED_DEP");
const WANT: Option<&str> = Some("WANTED");
/// Not in the report: never scheduled.
const NONE: Option<&str> = None;

/// splitmix64: a tiny deterministic generator, so that a seed is a script for ever.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `0..n`.
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    /// True `pct` times in 100.
    fn chance(&mut self, pct: u64) -> bool {
        self.next() % 100 < pct
    }

    fn pick<T: Copy>(&mut self, xs: &[T]) -> T {
        xs[self.below(xs.len())]
    }

    fn shuffle<T>(&mut self, xs: &mut [T]) {
        for i in (1..xs.len()).rev() {
            xs.swap(i, self.below(i + 1));
        }
    }
}

/// A Rhai string literal.
fn q(s: &str) -> String {
    format!("{s:?}")
}

/// A `shell` body that logs its start (with its pid) and its end; it fails (`fail`), fails
/// its first `flaky` attempts, sleeps `secs`, or runs a `sleep 30` only a timeout ends.
#[derive(Default)]
struct Cmd {
    secs: &'static str,
    fail: bool,
    flaky: usize,
    endless: bool,
}

impl Cmd {
    fn text(&self, name: &str) -> String {
        let mut parts = vec![format!(r#"echo "S {name} $$" >> log"#)];
        if self.flaky > 0 {
            parts.push(format!(
                "n=$(cat cnt.{name} 2>/dev/null || echo 0); n=$((n+1)); echo $n > cnt.{name}"
            ));
            parts.push(format!("if [ $n -le {} ]; then exit 1; fi", self.flaky));
        }
        if self.endless {
            parts.push(format!(r#"sleep 30 & echo "P {name} $!" >> log; wait $!"#));
        } else if !self.secs.is_empty() {
            parts.push(format!("sleep {}", self.secs));
        }
        if self.fail {
            parts.push("exit 1".into());
        }
        parts.push(format!(r#"echo "E {name}" >> log"#));
        parts.join("; ")
    }
}

/// `proc(name, #{ opts shell: ... })` with a [`Cmd`] body.
fn cmd_proc(name: &str, opts: &str, cmd: Cmd) -> String {
    format!(
        "proc({}, #{{ {opts} shell: {} }});",
        q(name),
        q(&cmd.text(name))
    )
}

/// A closure proc that waits for each of `waits` in turn with `ctx.wait`, catching each
/// error; its result is `w:ok` or `w:err` for each, joined by commas. With `rethrow`, it
/// throws the first error it caught once it has logged its end.
fn wait_proc(name: &str, opts: &str, waits: &[String], rethrow: bool) -> String {
    wait_proc_calling("ctx.wait", name, opts, waits, rethrow)
}

/// [`wait_proc`] waiting with `call` (`ctx.wait` or the plain `wait`); an empty name in
/// `waits` is a call without names (`all:ok` or `all:err` in the result).
fn wait_proc_calling(
    call: &str,
    name: &str,
    opts: &str,
    waits: &[String],
    rethrow: bool,
) -> String {
    let mut s = format!("proc({}, #{{ {opts} }}, |ctx| {{\n", q(name));
    s += &format!("    shell({});\n", q(&format!("echo S {name} >> log")));
    s += "    let r = [];\n    let bad = ();\n";
    for w in waits {
        let (arg, label) = if w.is_empty() {
            (String::new(), "all")
        } else {
            (q(w), w.as_str())
        };
        s += &format!(
            "    try {{ {call}({arg}); r.push({}); }} catch (e) {{ r.push({}); if bad == () {{ bad = e; }} }}\n",
            q(&format!("{label}:ok")),
            q(&format!("{label}:err"))
        );
    }
    s += &format!("    shell({});\n", q(&format!("echo E {name} >> log")));
    if rethrow {
        s += "    if bad != () { throw bad; }\n";
    }
    s += "    r.reduce(|s, x| if s == \"\" { x } else { s + \",\" + x }, \"\")\n});";
    s
}

/// A proto `NAMEpt::[a]` whose procs log like a [`Cmd`] (without a pid).
fn log_proto(prefix: &str) -> String {
    format!(
        r#"proto("{prefix}pt::[a]", #{{ shell: "echo S {prefix}pt::[a] >> log; echo E {prefix}pt::[a] >> log" }});"#
    )
}

/// A block whose outcome depends on whether the top level waits between its `run` and the
/// definition it makes late, settled once the script is laid out ([`settle`]).
enum Pending {
    /// A closure `c` waits for `x`, which depends on `dep` (defined late, never or early).
    ClosureWait {
        c: String,
        x: String,
        dep: String,
        late: bool,
        early: bool,
        rethrow: bool,
    },
    /// The top level runs `x`, which depends on `deps` (the first is `x`'s; each defined
    /// late, or none of them ever).
    TopRun {
        x: String,
        deps: Vec<String>,
        late: bool,
    },
    /// A `now` proc `n` depends on `dep`.
    Now { n: String, dep: String, late: bool },
}

/// One feature's procs, statements and expectations.
#[derive(Default)]
struct Block {
    kind: String,
    /// Definitions, before every block's runs.
    early: Vec<String>,
    /// Top-level statements that schedule (each kept whole when shuffled).
    runs: Vec<String>,
    /// Definitions after the runs (and after the top-level `wait()`, if any).
    late: Vec<String>,
    /// Command-line targets.
    targets: Vec<String>,
    /// Its run must be the script's first (a `now` proc it relies on is scheduled by it).
    first: bool,
    /// The states each proc may end in (`NONE`: not in the report).
    expect: Vec<(String, Vec<Option<&'static str>>)>,
    /// `(a, b)`: `a` ends before `b` starts.
    before: Vec<(String, String)>,
    results: Vec<(String, String)>,
    markers: Vec<String>,
    attempts: Vec<(String, usize)>,
    pending: Option<Pending>,
}

impl Block {
    fn new(kind: &str) -> Block {
        Block {
            kind: kind.into(),
            ..Block::default()
        }
    }

    fn expect(&mut self, name: &str, states: &[Option<&'static str>]) {
        self.expect.push((name.into(), states.to_vec()));
    }

    fn before(&mut self, a: &str, b: &str) {
        self.before.push((a.into(), b.into()));
    }

    fn result(&mut self, name: &str, value: &str) {
        self.results.push((name.into(), value.into()));
    }
}

/// Deadlock breaking (script-api.md "Scheduling", decisions.md "A deadlock of waits fails
/// one proc"): of the procs blocked in a wait on a cycle of waits, dependencies, locks,
/// resources and waves, the one defined last has its `wait` throw; the others go on.
fn deadlock(rng: &mut Rng, p: &str) -> Block {
    match rng.below(6) {
        0 | 1 => deadlock_ring(rng, p),
        2 => deadlock_held(rng, p),
        3 => deadlock_dep(rng, p),
        4 => deadlock_wave(rng, p),
        _ => deadlock_beside(rng, p),
    }
}

/// A ring of 2 to 4 closures, each waiting for the next (`ctx.wait`) or depending on it
/// (`deps`), defined in a random order: the last defined of those blocked in a wait is the
/// victim; the outcome then flows back around the ring (a waiter's wait fails when what it
/// waits for failed; a dependent is FAILED_DEP then).
fn deadlock_ring(rng: &mut Rng, p: &str) -> Block {
    let k = rng.pick(&[2, 3, 4]);
    let names: Vec<String> = (0..k).map(|i| format!("{p}c{i}")).collect();
    let next = |i: usize| names[(i + 1) % k].clone();
    let mut waits: Vec<bool> = (0..k).map(|_| rng.chance(50)).collect();
    if !waits.contains(&true) {
        waits[rng.below(k)] = true;
    }
    let rethrow: Vec<bool> = (0..k).map(|i| waits[i] && rng.chance(40)).collect();
    let mut order: Vec<usize> = (0..k).collect();
    rng.shuffle(&mut order);
    let shape: String = waits.iter().map(|&w| if w { 'w' } else { 'd' }).collect();
    let mut b = Block::new(&format!("deadlock-ring-{shape}"));
    for &i in &order {
        b.early.push(if waits[i] {
            wait_proc(&names[i], "", &[next(i)], rethrow[i])
        } else {
            wait_proc(&names[i], &format!("deps: [{}],", q(&next(i))), &[], false)
        });
    }
    let victim = *order.iter().rev().find(|&&i| waits[i]).expect("a waiter");
    let mut ok = vec![true; k];
    let mut said = vec!["err"; k];
    ok[victim] = !rethrow[victim];
    let mut cur = victim;
    for _ in 1..k {
        let m = (cur + k - 1) % k;
        if waits[m] {
            said[m] = if ok[cur] { "ok" } else { "err" };
            ok[m] = ok[cur] || !rethrow[m];
        } else {
            ok[m] = ok[cur];
            if ok[cur] {
                b.before(&names[cur], &names[m]);
            }
        }
        cur = m;
    }
    for i in 0..k {
        let state = match (ok[i], waits[i]) {
            (true, _) => SUCC,
            (false, true) => FAIL,
            (false, false) => FDEP,
        };
        b.expect(&names[i], &[state]);
        if ok[i] {
            let value = if waits[i] {
                format!("{}:{}", next(i), said[i])
            } else {
                String::new()
            };
            b.result(&names[i], &value);
        }
    }
    let mut start = names.clone();
    rng.shuffle(&mut start);
    start.truncate(1 + rng.below(k));
    b.runs.push(format!("run({start:?});"));
    b
}

/// `c` holds what `x` needs (lock `L`, or the whole budget of a resource) and waits for
/// `x`, or for `y`, which depends on `x`: a lock or resources held by a waiting proc are a
/// step of the cycle, so `c`'s wait throws, and `x` (then `y`) runs once `c` has ended.
fn deadlock_held(rng: &mut Rng, p: &str) -> Block {
    let (c, x, y) = (format!("{p}c"), format!("{p}x"), format!("{p}y"));
    let lock = rng.chance(50);
    let via = rng.chance(40);
    let rethrow = rng.chance(40);
    let what = if lock { "lock" } else { "resource" };
    let mut b = Block::new(&format!("deadlock-{what}{}", if via { "-via" } else { "" }));
    let needs = if lock {
        format!("locks: [{}],", q(&format!("{p}L")))
    } else {
        b.early
            .push(format!("set_options(#{{ resources: #{{ {p}tok: 1 }} }});"));
        format!("resources: #{{ {p}tok: 1 }},")
    };
    b.early.push(cmd_proc(&x, &needs, Cmd::default()));
    let waited = if via {
        let dep = format!("deps: [{}],", q(&x));
        b.early.push(cmd_proc(&y, &dep, Cmd::default()));
        b.expect(&y, &[SUCC]);
        b.before(&x, &y);
        y
    } else {
        x.clone()
    };
    b.early.push(wait_proc(
        &c,
        &needs,
        std::slice::from_ref(&waited),
        rethrow,
    ));
    b.expect(&c, &[if rethrow { FAIL } else { SUCC }]);
    if !rethrow {
        b.result(&c, &format!("{waited}:err"));
    }
    b.expect(&x, &[SUCC]);
    b.before(&c, &x);
    b.runs.push(format!("run({});", q(&c)));
    b
}

/// `c` waits for `x`, which depends on `c`: `c`'s wait throws; `x` runs after it, or is
/// FAILED_DEP when `c` rethrows.
fn deadlock_dep(rng: &mut Rng, p: &str) -> Block {
    let (c, x) = (format!("{p}c"), format!("{p}x"));
    let rethrow = rng.chance(40);
    let mut b = Block::new("deadlock-dep");
    b.early
        .push(wait_proc(&c, "", std::slice::from_ref(&x), rethrow));
    b.early
        .push(cmd_proc(&x, &format!("deps: [{}],", q(&c)), Cmd::default()));
    b.expect(&c, &[if rethrow { FAIL } else { SUCC }]);
    if rethrow {
        b.expect(&x, &[FDEP]);
    } else {
        b.result(&c, &format!("{x}:err"));
        b.expect(&x, &[SUCC]);
        b.before(&c, &x);
    }
    b.runs.push(format!("run({});", q(&c)));
    b
}

/// A wait for a proc of a higher wave that has not started throws at once (decisions.md).
fn deadlock_wave(rng: &mut Rng, p: &str) -> Block {
    let (c, x) = (format!("{p}c"), format!("{p}x"));
    let rethrow = rng.chance(40);
    let mut b = Block::new("deadlock-wave");
    b.early.push(cmd_proc(&x, "wave: 5,", Cmd::default()));
    b.early
        .push(wait_proc(&c, "", std::slice::from_ref(&x), rethrow));
    b.expect(&c, &[if rethrow { FAIL } else { SUCC }]);
    if !rethrow {
        b.result(&c, &format!("{x}:err"));
    }
    b.expect(&x, &[SUCC, WANT, NONE]);
    b.runs.push(format!("run({});", q(&c)));
    b
}

/// `c` waits for `u` (no cycle) and then for `a`, which waits for `c`: the later defined of
/// `a` and `c` is the victim; `c`'s wait for `u` succeeds all the same.
fn deadlock_beside(rng: &mut Rng, p: &str) -> Block {
    let (a, c, u) = (format!("{p}a"), format!("{p}c"), format!("{p}u"));
    let mut b = Block::new("deadlock-beside");
    b.early.push(cmd_proc(
        &u,
        "",
        Cmd {
            secs: "0.05",
            ..Cmd::default()
        },
    ));
    let mut order = vec![a.clone(), c.clone()];
    rng.shuffle(&mut order);
    let waits = |n: &str| -> Vec<String> {
        if n == a {
            vec![c.clone()]
        } else {
            vec![u.clone(), a.clone()]
        }
    };
    let rethrow: HashMap<String, bool> =
        order.iter().map(|n| (n.clone(), rng.chance(40))).collect();
    for n in &order {
        b.early.push(wait_proc(n, "", &waits(n), rethrow[n]));
    }
    let (other, victim) = (&order[0], &order[1]);
    let victim_fails = rethrow[victim];
    let other_fails = victim_fails && rethrow[other];
    let said = |n: &str, cycle: &str| -> String {
        waits(n)
            .iter()
            .map(|w| format!("{w}:{}", if *w == u { "ok" } else { cycle }))
            .collect::<Vec<_>>()
            .join(",")
    };
    b.expect(victim, &[if victim_fails { FAIL } else { SUCC }]);
    b.expect(other, &[if other_fails { FAIL } else { SUCC }]);
    b.expect(&u, &[SUCC]);
    if !victim_fails {
        b.result(victim, &said(victim, "err"));
    }
    if !other_fails {
        b.result(other, &said(other, if victim_fails { "err" } else { "ok" }));
    }
    b.runs.push(format!("run({});", q(rng.pick(&[&a, &c]))));
    b
}

/// A closure's `ctx.wait("x")` for a proc still missing a dependency (script-api.md
/// "Dependencies", decisions.md "Missing dependencies"): the dependency is defined early,
/// late by the top level (a proc or a proto), or never.
fn closure_wait(rng: &mut Rng, p: &str) -> Block {
    let (c, x, y) = (format!("{p}c"), format!("{p}x"), format!("{p}y"));
    let how = rng.pick(&[
        "early",
        "late",
        "never",
        "proto-late",
        "proto-never",
        "no-names",
    ]);
    let call = rng.pick(&["ctx.wait", "wait"]);
    let rethrow = rng.chance(30);
    let dep = if how.starts_with("proto") {
        format!("{p}pt::v")
    } else {
        y.clone()
    };
    let mut b = Block::new(&format!("closure-wait-{how}-{call}"));
    if how == "no-names" {
        // `wait()` without names inside a proc is an error: it would wait for itself.
        let all = wait_proc_calling(call, &c, "", &[String::new()], rethrow);
        b.early.push(all);
        b.runs.push(format!("run({});", q(&c)));
        b.expect(&c, &[if rethrow { FAIL } else { SUCC }]);
        if !rethrow {
            b.result(&c, "all:err");
        }
        return b;
    }
    if how == "early" {
        b.early.push(cmd_proc(&y, "", Cmd::default()));
    }
    b.early.push(cmd_proc(
        &x,
        &format!("deps: [{}],", q(&dep)),
        Cmd::default(),
    ));
    let waiter = wait_proc_calling(call, &c, "", std::slice::from_ref(&x), rethrow);
    b.early.push(waiter);
    b.runs.push(format!("run({});", q(&c)));
    match how {
        "late" => b.late.push(cmd_proc(&y, "", Cmd::default())),
        "proto-late" => b.late.push(log_proto(p)),
        _ => {}
    }
    b.pending = Some(Pending::ClosureWait {
        c,
        x,
        dep,
        late: how.ends_with("late"),
        early: how == "early",
        rethrow,
    });
    b
}

/// A top-level `run` of a proc missing a dependency: with `allow_missing_deps: false` the
/// `run` throws and schedules nothing; else the dependency may come later (a proc, a chain
/// of two, a proto), and a proc still missing one when the top level waits or ends is
/// FAILED_DEP.
fn top_run(rng: &mut Rng, p: &str) -> Block {
    let (x, y, z) = (format!("{p}x"), format!("{p}y"), format!("{p}z"));
    let how = rng.pick(&["late", "never", "proto-late", "proto-never", "late-chain"]);
    let dep = if how.starts_with("proto") {
        format!("{p}pt::v")
    } else {
        y.clone()
    };
    // Waited for at once: the top level waits before the late definition.
    let waited = rng.chance(25);
    let mut b = Block::new(&format!(
        "top-run-{how}{}",
        if waited { "-waited" } else { "" }
    ));
    b.early.push(cmd_proc(
        &x,
        &format!("deps: [{}],", q(&dep)),
        Cmd::default(),
    ));
    let mut run = format!(r#"try {{ run({x:?}); }} catch (e) {{ print("RUNERR {x}"); }}"#);
    if waited {
        run += &format!(r#" try {{ wait({x:?}); }} catch (e) {{ print("WAITERR {x}"); }}"#);
        b.markers.push(format!("WAITERR {x}"));
    }
    b.runs.push(run);
    let mut deps = vec![dep];
    match how {
        "late" => b.late.push(cmd_proc(&y, "", Cmd::default())),
        "late-chain" => {
            b.late
                .push(cmd_proc(&y, &format!("deps: [{}],", q(&z)), Cmd::default()));
            b.late.push(cmd_proc(&z, "", Cmd::default()));
            deps.push(z);
        }
        "proto-late" => b.late.push(log_proto(p)),
        _ => {}
    }
    b.pending = Some(Pending::TopRun {
        x,
        deps,
        late: how.contains("late"),
    });
    b
}

/// A `now: true` proc whose dependency is defined later or never (only generated with
/// `allow_missing_deps` on: off, every later `run` would throw).
fn now_missing(rng: &mut Rng, p: &str) -> Block {
    let (n, y) = (format!("{p}n"), format!("{p}y"));
    let how = rng.pick(&["late", "never", "proto-late"]);
    let dep = if how == "proto-late" {
        format!("{p}pt::v")
    } else {
        y.clone()
    };
    let mut b = Block::new(&format!("now-missing-{how}"));
    b.early.push(cmd_proc(
        &n,
        &format!("now: true, deps: [{}],", q(&dep)),
        Cmd::default(),
    ));
    match how {
        "late" => b.late.push(cmd_proc(&y, "", Cmd::default())),
        "proto-late" => b.late.push(log_proto(p)),
        _ => {}
    }
    b.pending = Some(Pending::Now {
        n,
        dep,
        late: how != "never",
    });
    b
}

/// `when_scheduled` (script-api.md "Reverse dependencies"): scheduling the declarer `a`
/// schedules the target `t` and makes `a` run before it, whether `a` and `t` are `now`,
/// `run`, command-line targets or defined late; a target already done makes the
/// declarer's `proc(...)` (a `now` proc) throw.
fn when_scheduled(rng: &mut Rng, p: &str) -> Block {
    let (a, t) = (format!("{p}a"), format!("{p}t"));
    let how = rng.pick(&[
        "now-target",
        "target-target",
        "target-now",
        "now-now",
        "now-now-reversed",
        "now-late",
        "run-now",
        "now-run",
        "run-late",
        "done-now",
    ]);
    // A failing declarer leaves its target FAILED_DEP: the target depends on it.
    let fails = rng.chance(20);
    let mut b = Block::new(&format!(
        "when-{how}{}",
        if fails { "-failing" } else { "" }
    ));
    let decl = |extra: &str| {
        cmd_proc(
            &a,
            &format!("rdeps: [when_scheduled({})], {extra}", q(&t)),
            Cmd {
                secs: "0.05",
                fail: fails,
                ..Cmd::default()
            },
        )
    };
    let target = |extra: &str| cmd_proc(&t, extra, Cmd::default());
    match how {
        "now-target" => {
            b.early.extend([decl("now: true,"), target("")]);
            b.targets.push(t.clone());
        }
        "target-target" => {
            b.early.extend([decl(""), target("")]);
            let mut both = vec![a.clone(), t.clone()];
            rng.shuffle(&mut both);
            b.targets.extend(both);
        }
        "target-now" => {
            b.early.extend([decl(""), target("now: true,")]);
            b.targets.push(a.clone());
        }
        "now-now" => b.early.extend([decl("now: true,"), target("now: true,")]),
        "now-now-reversed" => b.early.extend([target("now: true,"), decl("now: true,")]),
        "now-late" => {
            b.early.push(decl("now: true,"));
            b.late.push(target(""));
        }
        "run-now" => {
            b.early.extend([decl(""), target("now: true,")]);
            b.runs.push(format!("run({});", q(&a)));
            b.first = true;
        }
        "now-run" => {
            b.early.extend([decl("now: true,"), target("")]);
            b.runs.push(format!("run({});", q(&t)));
        }
        "run-late" => {
            b.early.push(decl(""));
            b.runs.push(format!("run({});", q(&a)));
            b.late.push(target(""));
        }
        _ => {
            b.early.push(target(""));
            b.runs.push(format!(
                r#"run({t:?}); wait({t:?}); try {{ {} }} catch (e) {{ print("DEFERR {a}"); }}"#,
                decl("now: true,")
            ));
            b.markers.push(format!("DEFERR {a}"));
            b.expect(&a, &[NONE]);
            b.expect(&t, &[SUCC]);
            return b;
        }
    }
    if fails {
        b.expect(&a, &[FAIL]);
        b.expect(&t, &[FDEP]);
    } else {
        b.expect(&a, &[SUCC]);
        b.expect(&t, &[SUCC]);
        b.before(&a, &t);
    }
    b
}

/// `retries` and `timeout` (script-api.md "Waves, locks, timeouts and retries"): a proc
/// that fails its first k attempts succeeds when `retries` ≥ k, after k + 1 attempts; a
/// timeout or a failure is retried `retries` times and then fails. A dependent runs after
/// it or is FAILED_DEP; a closure waiting for it gets its result or the error.
fn retried(rng: &mut Rng, p: &str) -> Block {
    let (x, d) = (format!("{p}x"), format!("{p}d"));
    let how = rng.pick(&["flaky", "flaky", "timeout", "fail"]);
    let retries = rng.below(3);
    let mut opts = if retries > 0 {
        format!("retries: {retries},")
    } else {
        String::new()
    };
    let mut b = Block::new(&format!("retried-{how}-{retries}"));
    let (cmd, ok, attempts) = match how {
        "flaky" => {
            let k = 1 + rng.below(3);
            let cmd = Cmd {
                flaky: k,
                ..Cmd::default()
            };
            (cmd, k <= retries, k.min(retries) + 1)
        }
        "timeout" => {
            opts += r#" timeout: "300ms","#;
            let cmd = Cmd {
                endless: true,
                ..Cmd::default()
            };
            (cmd, false, retries + 1)
        }
        _ => {
            let cmd = Cmd {
                fail: true,
                ..Cmd::default()
            };
            (cmd, false, retries + 1)
        }
    };
    b.early.push(cmd_proc(&x, &opts, cmd));
    b.attempts.push((x.clone(), attempts));
    let waiter = rng.chance(40);
    if waiter {
        b.early
            .push(wait_proc(&d, "", std::slice::from_ref(&x), false));
        b.result(&d, &format!("{x}:{}", if ok { "ok" } else { "err" }));
        b.expect(&d, &[SUCC]);
    } else {
        b.early
            .push(cmd_proc(&d, &format!("deps: [{}],", q(&x)), Cmd::default()));
        b.expect(&d, &[if ok { SUCC } else { FDEP }]);
        if ok {
            b.before(&x, &d);
        }
    }
    b.expect(&x, &[if ok { SUCC } else { FAIL }]);
    b.runs.push(format!("run({});", q(&d)));
    b
}

/// A job of a second that `--fail-fast` must end when another proc fails: a command, or a
/// closure in a `sleep` (cli.md: `--fail-fast` terminates the running jobs).
fn long(rng: &mut Rng, p: &str) -> Block {
    let x = format!("{p}x");
    let mut b = Block::new("long");
    if rng.chance(50) {
        let secs = Cmd {
            secs: "1",
            ..Cmd::default()
        };
        b.early.push(cmd_proc(&x, "", secs));
    } else {
        b.kind += "-sleep";
        b.early.push(format!(
            r#"proc({x:?}, |ctx| {{ shell("echo S {x} >> log"); sleep(1); shell("echo E {x} >> log"); }});"#
        ));
    }
    b.runs.push(format!("run({});", q(&x)));
    b.expect(&x, &[SUCC]);
    b
}

/// The top-level waits between a block's scheduling and its late definitions.
#[derive(Clone, Copy)]
struct Waits {
    /// Some `wait`: every proc still missing a dependency then is FAILED_DEP.
    any: bool,
    /// A `wait()` for everything: it also waits for a closure's `ctx.wait`, so the proc
    /// that closure starts is missing its dependency while the top level waits.
    all: bool,
}

/// The outcome of a [`Pending`] block, now that the top-level waits around it are known.
fn settle(b: &mut Block, strict: bool, waits: Waits) {
    match b.pending.take() {
        Some(Pending::ClosureWait {
            c,
            x,
            dep,
            late,
            early,
            rethrow,
        }) => {
            let how = ClosureWaitHow {
                late,
                early,
                rethrow,
            };
            settle_closure_wait(b, [c, x, dep], how, strict, waits)
        }
        Some(Pending::TopRun { x, deps, late }) => settle_top_run(b, x, deps, late, strict, waits),
        Some(Pending::Now { n, dep, late }) => settle_now(b, n, dep, late, waits),
        None => {}
    }
}

/// How a [`Pending::ClosureWait`] block was drawn.
struct ClosureWaitHow {
    late: bool,
    early: bool,
    rethrow: bool,
}

/// A closure's wait for `x` missing `dep`: the dependency comes in time when it was defined
/// early, or late with no top-level wait first (missing dependencies are allowed while the
/// top level runs on); a `wait()` first makes `x` FAILED_DEP. A wait for some other proc
/// first races the closure's wait (before it, `x` is FAILED_DEP; after it, `x` waits for
/// the definition), and so does the late definition under `allow_missing_deps: false`
/// (the wait throws, unless the definition came first): either outcome is right then.
fn settle_closure_wait(
    b: &mut Block,
    [c, x, dep]: [String; 3],
    how: ClosureWaitHow,
    strict: bool,
    waits: Waits,
) {
    if how.early || (how.late && !strict && !waits.any) {
        b.expect(&c, &[SUCC]);
        b.result(&c, &format!("{x}:ok"));
        b.expect(&x, &[SUCC]);
        b.expect(&dep, &[SUCC]);
        b.before(&dep, &x);
        return;
    }
    if how.late && (strict || !waits.all) {
        b.expect(&c, &[SUCC, FAIL]);
        b.expect(&x, &[NONE, SUCC, FDEP]);
        b.expect(&dep, &[NONE, SUCC]);
        return;
    }
    b.expect(&c, &[if how.rethrow { FAIL } else { SUCC }]);
    if !how.rethrow {
        b.result(&c, &format!("{x}:err"));
    }
    if strict {
        b.expect(&x, &[NONE]);
    } else {
        b.expect(&x, &[FDEP]);
        if how.late {
            b.expect(&dep, &[NONE, SUCC]);
        }
    }
}

/// A top-level `run` of `x` missing its dependencies `deps` (see [`top_run`]): any
/// top-level wait before the late definitions makes it FAILED_DEP.
fn settle_top_run(
    b: &mut Block,
    x: String,
    deps: Vec<String>,
    late: bool,
    strict: bool,
    waits: Waits,
) {
    if strict {
        b.markers.push(format!("RUNERR {x}"));
        b.expect(&x, &[NONE]);
        for d in &deps {
            b.expect(d, &[NONE]);
        }
    } else if late && !waits.any {
        b.expect(&x, &[SUCC]);
        let mut after = x.clone();
        for d in &deps {
            b.expect(d, &[SUCC]);
            b.before(d, &after);
            after = d.clone();
        }
    } else {
        b.expect(&x, &[FDEP]);
        if late {
            for d in &deps {
                b.expect(d, &[NONE, SUCC]);
            }
        }
    }
}

/// A `now` proc `n` missing `dep`: scheduled by the first `run` or `wait` (or when the top
/// level ends), it runs when `dep` is defined before any top-level wait.
fn settle_now(b: &mut Block, n: String, dep: String, late: bool, waits: Waits) {
    if late && !waits.any {
        b.expect(&n, &[SUCC]);
        b.expect(&dep, &[SUCC]);
        b.before(&dep, &n);
    } else {
        b.expect(&n, &[FDEP]);
        if late {
            b.expect(&dep, &[NONE, SUCC]);
        }
    }
}

/// A generated script, its command line and what the model expects of it.
struct Script {
    text: String,
    args: Vec<String>,
    fail_fast: bool,
    blocks: Vec<Block>,
}

type Maker = fn(&mut Rng, &str) -> Block;

/// Draws a script: 2 to 4 blocks, `-j`, `--fail-fast`, `allow_missing_deps` and maybe a
/// top-level `wait()` between the runs and the late definitions.
fn generate(seed: u64) -> Script {
    let mut rng = Rng(seed);
    let allow_missing = rng.pick(&[None, None, Some(true), Some(false)]);
    let fail_fast = rng.chance(35);
    let jobs = rng.pick(&[1, 2, 4, 8]);
    let mut makers: Vec<Maker> = vec![
        deadlock,
        closure_wait,
        top_run,
        when_scheduled,
        retried,
        long,
    ];
    if allow_missing != Some(false) {
        makers.push(now_missing);
    }
    let mut blocks = Vec::new();
    for i in 0..2 + rng.below(3) {
        let make = rng.pick(&makers);
        blocks.push(make(&mut rng, &format!("b{i}")));
    }
    let mid_wait = rng.chance(30);
    // A top-level `run` or `wait` schedules the queued `now` procs: the `now` target of a
    // command-line declarer would be started before it.
    if mid_wait || blocks.iter().any(|b| !b.runs.is_empty()) {
        blocks.retain(|b| !b.kind.starts_with("when-target-now"));
    }
    // Only one block's run can be the first.
    if let Some(first) = blocks.iter().position(|b| b.first) {
        let mut i = 0;
        blocks.retain(|b| {
            i += 1;
            i - 1 == first || !b.first
        });
    }
    let mut lines = Vec::new();
    if let Some(allow) = allow_missing {
        lines.push(format!("set_options(#{{ allow_missing_deps: {allow} }});"));
    }
    lines.extend(blocks.iter().flat_map(|b| b.early.iter().cloned()));
    let mut runs: Vec<(usize, String)> = blocks
        .iter()
        .enumerate()
        .flat_map(|(i, b)| b.runs.iter().map(move |r| (i, r.clone())))
        .collect();
    rng.shuffle(&mut runs);
    if let Some(at) = runs.iter().position(|(i, _)| blocks[*i].first) {
        let first = runs.remove(at);
        runs.insert(0, first);
    }
    let strict = allow_missing == Some(false);
    for (i, b) in blocks.iter_mut().enumerate() {
        // A `now` proc is scheduled by the first run or wait, or when the top level ends.
        let from = runs.iter().rposition(|(j, _)| *j == i).unwrap_or(0);
        let any = mid_wait || runs[from..].iter().any(|(_, r)| r.contains("wait("));
        let waits = Waits { any, all: mid_wait };
        settle(b, strict, waits);
    }
    lines.extend(runs.into_iter().map(|(_, r)| r));
    if mid_wait {
        lines.push(r#"try { wait(); } catch (e) { print("WAITERR"); }"#.into());
    }
    lines.extend(blocks.iter().flat_map(|b| b.late.iter().cloned()));
    let mut args = vec![
        "--no-db".to_string(),
        "--json".into(),
        "r.json".into(),
        "-j".into(),
        jobs.to_string(),
    ];
    if fail_fast {
        args.push("--fail-fast".into());
    }
    args.extend(blocks.iter().flat_map(|b| b.targets.iter().cloned()));
    Script {
        text: lines.join("\n") + "\n",
        args,
        fail_fast,
        blocks,
    }
}

/// What one run gave: the report's procs, the log's events, the output.
struct Seen<'a> {
    out: &'a Output,
    procs: HashMap<String, Value>,
    /// `(kind, name)` of each `S`/`E` line of `log`, in order.
    events: Vec<(String, String)>,
    /// Pids the commands recorded (`S name pid`, `P name pid`).
    pids: Vec<(String, u32)>,
    /// The report's `run.outcome`.
    outcome: Option<String>,
}

impl Seen<'_> {
    fn state(&self, name: &str) -> Option<&str> {
        self.procs.get(name).and_then(|p| p["state"].as_str())
    }

    fn error(&self, name: &str) -> &str {
        self.procs
            .get(name)
            .and_then(|p| p["error"].as_str())
            .unwrap_or("")
    }

    fn started(&self, name: &str) -> usize {
        self.events
            .iter()
            .filter(|(k, n)| k == "S" && n == name)
            .count()
    }

    fn first(&self, kind: &str, name: &str) -> Option<usize> {
        self.events.iter().position(|(k, n)| k == kind && n == name)
    }

    fn last(&self, kind: &str, name: &str) -> Option<usize> {
        self.events
            .iter()
            .rposition(|(k, n)| k == kind && n == name)
    }
}

fn seen(out: &Output) -> Seen<'_> {
    let report: Value = std::fs::read_to_string(out.path("r.json"))
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or(Value::Null);
    let procs = report["procs"]
        .as_array()
        .map(|ps| {
            ps.iter()
                .map(|p| (p["name"].as_str().unwrap_or("").to_string(), p.clone()))
                .collect()
        })
        .unwrap_or_default();
    let log = std::fs::read_to_string(out.path("log")).unwrap_or_default();
    let mut events = Vec::new();
    let mut pids = Vec::new();
    for line in log.lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        if let [kind, name, rest @ ..] = words.as_slice() {
            if *kind == "S" || *kind == "E" {
                events.push((kind.to_string(), name.to_string()));
            }
            if let Some(pid) = rest.first().and_then(|p| p.parse().ok()) {
                pids.push((name.to_string(), pid));
            }
        }
    }
    Seen {
        out,
        procs,
        events,
        pids,
        outcome: report["run"]["outcome"].as_str().map(str::to_string),
    }
}

/// What the model allows, with the run aborted by `--fail-fast` folded in.
struct Model<'a> {
    script: &'a Script,
    /// `--fail-fast` and some proc may fail: what had not started stays not run (WANTED),
    /// what ran may be terminated (FAILED), and their dependents are FAILED_DEP.
    aborted: bool,
}

impl<'a> Model<'a> {
    fn new(script: &'a Script) -> Model<'a> {
        let mut model = Model {
            script,
            aborted: false,
        };
        model.aborted = script.fail_fast && model.may_fail();
        model
    }

    fn expect(&self) -> impl Iterator<Item = &(String, Vec<Option<&'static str>>)> {
        self.script.blocks.iter().flat_map(|b| b.expect.iter())
    }

    fn must_fail(&self) -> bool {
        self.expect()
            .any(|(_, s)| s.iter().all(|&s| s == FAIL || s == FDEP))
    }

    fn may_fail(&self) -> bool {
        self.expect()
            .any(|(_, s)| s.contains(&FAIL) || s.contains(&FDEP))
    }
}

/// No panic, no internal error (cli.md "Exit status": an internal error is a bug).
fn rule_no_internal_error(_: &Model, seen: &Seen, problems: &mut Vec<String>) {
    let out = seen.out;
    for text in [&out.stdout, &out.stderr] {
        if text.contains("internal error") || text.contains("panicked") {
            problems.push("prun reported an internal error".into());
        }
    }
}

/// Each proc ends in a state the model allows (script-api.md "States"); under an abort,
/// also not run (WANTED), terminated (FAILED) or FAILED_DEP.
fn rule_final_states(model: &Model, seen: &Seen, problems: &mut Vec<String>) {
    for (name, want) in model.expect() {
        let got = seen.state(name);
        let aborted_too = model.aborted && [WANT, FAIL, FDEP, NONE].contains(&got);
        if !want.contains(&got) && !aborted_too {
            problems.push(format!(
                "{name}: state {got:?}, the model allows {want:?} (error: {})",
                seen.error(name)
            ));
        }
    }
}

/// A proc the model has succeed that FAILED under `--fail-fast` says the run was aborted
/// (cli.md: `--fail-fast` terminates the running jobs; decisions.md "After an abort").
fn rule_aborted_failures_say_so(model: &Model, seen: &Seen, problems: &mut Vec<String>) {
    if !model.aborted {
        return;
    }
    for (name, want) in model.expect() {
        if seen.state(name) == FAIL && !want.contains(&FAIL) && !seen.error(name).contains("abort")
        {
            problems.push(format!(
                "{name} FAILED under --fail-fast without saying the run was aborted: {}",
                seen.error(name)
            ));
        }
    }
}

/// A proc's result (a closure body's last value, in the `--json` report) is the model's:
/// which of its waits returned and which threw.
fn rule_results(model: &Model, seen: &Seen, problems: &mut Vec<String>) {
    if model.aborted {
        return;
    }
    for b in &model.script.blocks {
        for (name, want) in &b.results {
            let got = seen.procs.get(name).map(|p| &p["result"]);
            if got.and_then(Value::as_str) != Some(want.as_str()) {
                problems.push(format!("{name}: result {got:?}, the model says {want:?}"));
            }
        }
    }
}

/// The lines the top level prints when a call throws (a `run` with `allow_missing_deps`
/// off and a dependency missing; a `now` proc whose `when_scheduled` target is done).
fn rule_markers(model: &Model, seen: &Seen, problems: &mut Vec<String>) {
    if model.aborted {
        return;
    }
    for b in &model.script.blocks {
        for m in &b.markers {
            if !seen.out.stdout.lines().any(|l| l == m) {
                problems.push(format!("no line {m:?} on stdout"));
            }
        }
    }
}

/// A dependency finishes before its dependent starts, a `when_scheduled` declarer before
/// its target, a deadlock's victim before the proc that needs its lock.
fn rule_order(model: &Model, seen: &Seen, problems: &mut Vec<String>) {
    for b in &model.script.blocks {
        for (a, later) in &b.before {
            let Some(start) = seen.first("S", later) else {
                continue;
            };
            if seen.last("E", a).is_none_or(|end| end > start) {
                problems.push(format!("{later} started before {a} ended"));
            }
        }
    }
}

/// `retries: N` runs a failed proc up to N more times, and a success ends the attempts.
fn rule_attempts(model: &Model, seen: &Seen, problems: &mut Vec<String>) {
    if model.aborted {
        return;
    }
    for b in &model.script.blocks {
        for (name, want) in &b.attempts {
            let got = seen.started(name);
            if got != *want {
                problems.push(format!("{name}: {got} attempts, the model says {want}"));
            }
        }
    }
}

/// A proc that did not run (WANTED, FAILED_DEP) never started a command.
fn rule_not_run_never_started(_: &Model, seen: &Seen, problems: &mut Vec<String>) {
    for (name, p) in &seen.procs {
        let state = p["state"].as_str();
        if (state == WANT || state == FDEP) && seen.started(name) > 0 {
            problems.push(format!("{name} is {state:?} but it started"));
        }
    }
}

/// Exit status 1 when a proc failed or did not run for a failed dependency, else 0
/// (cli.md "Exit status"); where the model allows both, either.
fn rule_exit_status(model: &Model, seen: &Seen, problems: &mut Vec<String>) {
    let code = seen.out.code;
    let fine = if model.must_fail() {
        code == Some(1)
    } else if model.may_fail() {
        code == Some(0) || code == Some(1)
    } else {
        code == Some(0)
    };
    if !fine {
        problems.push(format!("exit status {code:?}"));
    }
}

/// The report's `run.outcome` goes with the exit status (cli.md "The --json report"):
/// `ok` for 0, `failed` for 1.
fn rule_outcome(_: &Model, seen: &Seen, problems: &mut Vec<String>) {
    let want = match seen.out.code {
        Some(0) => "ok",
        Some(1) => "failed",
        _ => return,
    };
    if seen.outcome.as_deref() != Some(want) {
        let (outcome, code) = (&seen.outcome, seen.out.code);
        problems.push(format!("run.outcome {outcome:?} with exit status {code:?}"));
    }
}

/// Nothing a script starts outlives prun (decisions.md "Processes"): every pid a command
/// recorded is gone once prun has exited (a signal already sent may take a moment).
fn rule_nothing_left_running(_: &Model, seen: &Seen, problems: &mut Vec<String>) {
    let deadline = Instant::now() + Duration::from_secs(10);
    for (name, pid) in &seen.pids {
        while alive(*pid) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        if alive(*pid) {
            let _ = std::process::Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status();
            problems.push(format!("pid {pid} of {name} outlived prun"));
        }
    }
}

type Rule = fn(&Model, &Seen, &mut Vec<String>);

const RULES: [Rule; 11] = [
    rule_no_internal_error,
    rule_final_states,
    rule_aborted_failures_say_so,
    rule_results,
    rule_markers,
    rule_order,
    rule_attempts,
    rule_not_run_never_started,
    rule_exit_status,
    rule_outcome,
    rule_nothing_left_running,
];

/// Runs one seed's script; `None` when prun did what the model says, else a report.
fn check(seed: u64) -> Option<String> {
    let script = generate(seed);
    let kinds: Vec<&str> = script.blocks.iter().map(|b| b.kind.as_str()).collect();
    // Shown with the panic of a run that hangs.
    eprintln!("sched_model: seed {seed}: {kinds:?} {:?}", script.args);
    let args: Vec<&str> = script.args.iter().map(String::as_str).collect();
    let out = Test::new()
        .args(&args)
        .timeout(Duration::from_secs(60))
        .script(&script.text)
        .run();
    let model = Model::new(&script);
    let seen = seen(&out);
    let mut problems = Vec::new();
    for rule in RULES {
        rule(&model, &seen, &mut problems);
    }
    if problems.is_empty() {
        return None;
    }
    Some(format!(
        "seed {seed} ({kinds:?}):\n  {}\n--- script\n{}--- log\n{}\n{}",
        problems.join("\n  "),
        script.text,
        std::fs::read_to_string(out.path("log")).unwrap_or_default(),
        out.describe()
    ))
}

/// The seeds to run: the fixed set, or `PRUN_SCHED_MODEL_SCRIPTS` of them from
/// `PRUN_SCHED_MODEL_SEED` (0 by default).
fn seeds() -> Vec<u64> {
    let var = |name| std::env::var(name).ok().and_then(|v| v.parse::<u64>().ok());
    match var("PRUN_SCHED_MODEL_SCRIPTS") {
        Some(n) => {
            let from = var("PRUN_SCHED_MODEL_SEED").unwrap_or(0);
            (from..from + n).collect()
        }
        None => (0..FIRST_SEEDS).chain(MORE_SEEDS).collect(),
    }
}

#[test]
fn random_scripts_do_what_the_model_of_the_documented_rules_says() {
    let seeds = seeds();
    let next = std::sync::atomic::AtomicUsize::new(0);
    let failures: Vec<String> = std::thread::scope(|s| {
        let workers: Vec<_> = (0..WORKERS)
            .map(|_| {
                s.spawn(|| {
                    let mut failed = Vec::new();
                    loop {
                        let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        let Some(&seed) = seeds.get(i) else {
                            return failed;
                        };
                        failed.extend(check(seed));
                    }
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|w| w.join().expect("a worker panicked"))
            .collect()
    });
    let names: Vec<&str> = failures
        .iter()
        .filter_map(|f| f.split(' ').nth(1))
        .collect();
    assert!(
        failures.is_empty(),
        "{} of {} scripts disagree with the model (seeds {names:?}):\n\n{}",
        failures.len(),
        seeds.len(),
        failures.join("\n\n")
    );
}

//! Waves, locks and the parallel limit, checked from the intervals the jobs recorded.

use crate::support::Test;

#[test]
fn lower_wave_finishes_before_a_higher_wave_starts() {
    // The wave-1 procs are registered first, so only the wave rule keeps them waiting.
    let out = Test::new()
        .args(&["-j", "4"])
        .script(
            r#"
proc("w1a", #{ wave: 1, JOB(w1a) });
proc("w1b", #{ wave: 1, deps: ["w0c"], JOB(w1b) });
proc("w0a", #{ JOB(w0a, 0.1) });
proc("w0b", #{ wave: 0, JOB(w0b, 0.2) });
proc("w0c", #{ JOB(w0c, 0.05) });
run(["w1a", "w1b", "w0a", "w0b"]);
"#,
        )
        .run();
    out.ok().summary_is("prun: 5 succeeded");
    let ev = out.events();
    for low in ["w0a", "w0b", "w0c"] {
        for high in ["w1a", "w1b"] {
            ev.before(low, high);
        }
    }
}

#[test]
fn a_negative_wave_runs_before_the_default_wave() {
    // As Argo CD's sync waves: `wave: -1` goes before every proc left at the default 0,
    // without giving all of them a wave. Depending on it is fine, the other way not.
    let out = Test::new()
        .args(&["-j", "4"])
        .script(
            r#"
proc("a", #{ JOB(a) });
proc("b", #{ deps: ["setup"], JOB(b) });
proc("setup", #{ wave: -1, JOB(setup, 0.1) });
run(["a", "b", "setup"]);
"#,
        )
        .run();
    out.ok().summary_is("prun: 3 succeeded");
    let ev = out.events();
    ev.before("setup", "a");
    ev.before("setup", "b");
    Test::new()
        .script(
            r#"
proc("a", #{ JOB(a) });
proc("setup", #{ wave: -1, deps: ["a"], JOB(setup) });
run("setup");
"#,
        )
        .run()
        .code(2)
        .err_has(r#"proc "setup" (wave -1) cannot depend on proc "a" (wave 0)"#);
}

#[test]
fn a_lower_wave_proc_waiting_for_a_dependency_not_defined_yet_holds_back_a_higher_wave() {
    // `migrate` waits for `backup`, which the script defines later: no wave-0 proc is
    // ready or running meanwhile, yet `serve` (wave 1) must not start before `migrate`.
    // The top level gives `serve` a second to start wrongly, then defines `backup`.
    let out = Test::new()
        .script(
            r#"
proc("migrate", #{ deps: ["backup"], JOB(migrate) });
proc("serve", #{ wave: 1, JOB(serve) });
run(["migrate", "serve"]);
let polls = 0;
while state("serve") == "WANTED" && polls < 100 { sleep(0.01); polls += 1; }
print("serve while backup was missing: " + state("serve"));
proc("backup", #{ JOB(backup) });
"#,
        )
        .run();
    out.ok()
        .line("serve while backup was missing: WANTED")
        .summary_is("prun: 3 succeeded");
    let ev = out.events();
    ev.before("backup", "migrate");
    ev.before("migrate", "serve");
    // Never defined: once the top level waits, `migrate` is FAILED_DEP and `serve` starts.
    Test::new()
        .script(
            r#"
proc("migrate", #{ deps: ["backup"], JOB(migrate) });
proc("serve", #{ wave: 1, JOB(serve) });
run(["migrate", "serve"]);
wait("serve");
"#,
        )
        .run()
        .code(1)
        .proc_state("FAILED_DEP", "migrate")
        .proc_state("SUCCEEDED", "serve");
}

#[test]
fn a_now_proc_starts_with_the_procs_of_the_run_that_schedules_it() {
    // `app` (now: true) is scheduled by the `run` (or `start`, or the command line's
    // target) that schedules `setup` (wave -1): the two start together, as one
    // `run([...])`'s names do. It was scheduled and started first, alone in wave 0, and
    // ran beside `setup`.
    for call in ["run(\"setup\");", "start(\"setup\");", ""] {
        let target: &[&str] = if call.is_empty() { &["setup"] } else { &[] };
        let out = Test::new()
            .args(&["-j", "4"])
            .args(target)
            .script(&format!(
                r#"
proc("app", #{{ now: true, JOB(app) }});
proc("setup", #{{ wave: -1, JOB(setup, 0.2) }});
{call}
"#
            ))
            .run();
        out.ok().summary_is("prun: 2 succeeded");
        out.events().before("setup", "app");
    }
}

#[test]
fn a_run_that_throws_leaves_the_now_procs_queued() {
    // The `run` of a cycle throws having scheduled nothing, `n` (now: true) included: it
    // is scheduled by the next `run`, with `w`, whose `when_scheduled("a")` then holds.
    // `n` was scheduled by the failing `run`, `a` started, and `w` came too late (exit 2).
    let out = Test::new()
        .script(
            r#"
proc("a", #{ JOB(a) });
proc("n", #{ now: true, deps: ["a"], JOB(n) });
proc("cyA", #{ deps: ["cyB"], JOB(cyA) });
proc("cyB", #{ deps: ["cyA"], JOB(cyB) });
try { run("cyA"); } catch (e) { print(`caught: ${e}`); }
print(`n after the failed run: ${state("n")}`);
proc("w", #{ rdeps: [when_scheduled("a")], JOB(w) });
run("w");
"#,
        )
        .run();
    out.ok()
        .line("caught: dependency cycle: cyA -> cyB -> cyA")
        .line("n after the failed run: IDLE")
        .summary_is("prun: 3 succeeded");
    let ev = out.events();
    ev.before("w", "a");
    ev.before("a", "n");
}

/// A `now` proc `n` whose dependency `y` is not defined yet, with missing dependencies an
/// error: the `run("o")` after it throws, and the script catches that.
const NOW_MISSING_Y: &str = r#"
set_options(#{ allow_missing_deps: false });
proc("n", #{ now: true, deps: ["y"], JOB(n) });
proc("o", #{ JOB(o) });
try { run("o"); } catch (e) { print(`caught: ${e}`); }
"#;

/// A `run` that throws because a queued `now` proc misses a dependency
/// (`allow_missing_deps: false`) leaves that proc queued too: the next `run`, once the
/// script has defined the dependency, schedules it. It was dropped: it never ran, and a
/// script that caught the error ended with exit status 0 and no word of it (found by
/// random scripts of `now` procs and missing dependencies).
#[test]
fn a_now_proc_whose_missing_dependency_failed_a_run_is_scheduled_by_the_next_run() {
    let out = Test::new()
        .script(&format!(
            "{NOW_MISSING_Y}proc(\"y\", #{{ JOB(y) }});\nrun(\"o\");\n"
        ))
        .run();
    out.ok()
        .line(
            r#"caught: proc "n" depends on "y", which does not exist (allow_missing_deps is off)"#,
        )
        .summary_is("prun: 3 succeeded");
    out.events().before("y", "n");
    // Never defined, it is the script's error when the top level ends.
    let out = Test::new().script(NOW_MISSING_Y).run();
    out.code(2)
        .err_has(r#"proc "n" depends on "y", which does not exist (allow_missing_deps is off)"#);
}

#[test]
fn a_lower_wave_scheduled_later_is_not_held_back_by_a_higher_waves_reservation() {
    // `a` does not fit beside `c` and reserves the budget; then `b` (wave -1) is
    // scheduled, and `a` must wait for it. `a`'s reservation kept `b` from starting,
    // and both failed as a deadlock ("can never start") once `c` ended.
    let out = Test::new()
        .args(&["-j", "4"])
        .script(
            r#"
set_options(#{ resources: #{ tok: 2 } });
proc("c", #{ resources: #{ tok: 2 },
    shell: "sh job.sh c; while [ ! -e go ]; do sleep 0.01; done" });
proc("a", #{ resources: #{ tok: 2 }, JOB(a) });
run(["c", "a"]);
proc("b", #{ wave: -1, resources: #{ tok: 2 }, JOB(b) });
run("b");
write_file("go", "");
"#,
        )
        .run();
    out.ok().summary_is("prun: 3 succeeded");
    out.events().before("b", "a");
}

#[test]
fn a_dependency_defined_after_its_dependent_failed_still_runs() {
    // `b` fails through `x` before the script defines `late`: `late` runs all the same,
    // as it did when the script defined it before `x` failed (it was left unscheduled,
    // so what ran depended on timing).
    let out = Test::new()
        .script(
            r#"
proc("x", #{ shell: "exit 1" });
proc("b", #{ deps: ["x", "late"], JOB(b) });
run("b");
while state("b") != "FAILED_DEP" { sleep(0.01); }
proc("late", #{ JOB(late) });
"#,
        )
        .run();
    out.code(1)
        .summary_is("prun: 1 succeeded, 1 failed, 1 not run (failed dependency)");
    out.proc_line("SUCCEEDED", "late");
    assert!(
        out.proc_line("FAILED_DEP", "b")
            .contains("dependency \"x\" failed"),
        "{}",
        out.describe()
    );
}

#[test]
fn depending_on_a_higher_wave_is_an_error() {
    let out = Test::new()
        .script(
            r#"
proc("hi", #{ wave: 1, JOB(hi) });
proc("lo", #{ deps: ["hi"], JOB(lo) });
run("lo");
"#,
        )
        .run();
    out.code(2)
        .err_has("\"lo\"")
        .err_has("\"hi\"")
        .err_has("wave")
        .err_has("main.rhai:4:1");
    assert!(!out.events().ran("lo"));
    // As a target of the command line it is the script's error too (2), not a usage
    // error (64): the target is right, the graph it reaches is not.
    let out = Test::new()
        .args(&["lo"])
        .script(
            r#"
proc("hi", #{ wave: 1, JOB(hi) });
proc("lo", #{ deps: ["hi"], JOB(lo) });
"#,
        )
        .run();
    out.code(2).err_has(
        r#"prun: target: main.rhai:3:1: proc "lo" (wave 0) cannot depend on proc "hi" (wave 1)"#,
    );
    assert!(!out.events().ran("lo"));
}

#[test]
fn procs_sharing_a_lock_never_overlap() {
    // a and b share the lock; c has none and must run alongside whichever of them holds it:
    // each of a/b waits for c to have started, and c waits for a or b to have started.
    let out = Test::new()
        .args(&["-j", "4"])
        .script(
            r#"
proc("a", #{ locks: ["db"], cmd: ["sh", "-c", "sh sync.sh all a c && sh job.sh a2 0.1"] });
proc("b", #{ locks: ["db", "other"], cmd: ["sh", "-c", "sh sync.sh all b c && sh job.sh b2 0.1"] });
proc("c", #{ SYNC(any, c, a, b) });
run(["a", "b", "c"]);
"#,
        )
        .run();
    out.ok().summary_is("prun: 3 succeeded");
    let ev = out.events();
    // a's whole run is a..a2, b's is b..b2.
    let (a, a2, b, b2) = (ev.span("a"), ev.span("a2"), ev.span("b"), ev.span("b2"));
    let a_run = (a.start, a2.end);
    let b_run = (b.start, b2.end);
    assert!(
        a_run.1 <= b_run.0 || b_run.1 <= a_run.0,
        "a {a_run:?} and b {b_run:?} overlap although they share a lock\n{}",
        ev.context()
    );
    assert!(
        ev.overlap("c", "a") || ev.overlap("c", "b"),
        "c never ran alongside a lock holder\n{}",
        ev.context()
    );
}

#[test]
fn lock_is_released_after_a_failure() {
    let out = Test::new()
        .args(&["-j", "4"])
        .script(
            r#"
proc("bad", #{ locks: ["db"], cmd: ["sh", "-c", "sh job.sh bad 0.05; exit 1"] });
proc("good", #{ locks: ["db"], JOB(good, 0.05) });
run(["bad", "good"]);
"#,
        )
        .run();
    out.code(1)
        .proc_state("FAILED", "bad")
        .proc_state("SUCCEEDED", "good");
    out.events().disjoint("bad", "good");
}

/// `n` procs of which the first `limit` meet at a barrier (proving `limit` can run at once)
/// and the rest sleep briefly.
fn limit_script(prefix: &str, n: usize, limit: usize) -> String {
    let barrier: Vec<String> = (0..limit).map(|i| format!("s{i}")).collect();
    let mut s = String::from(prefix);
    let mut names = Vec::new();
    for i in 0..n {
        let name = format!("p{i}");
        let body = if i < limit {
            let me = &barrier[i];
            let others: Vec<&str> = barrier
                .iter()
                .filter(|b| *b != me)
                .map(String::as_str)
                .collect();
            crate::support::sync("all", me, &others)
        } else {
            crate::support::job(&name, "0.1")
        };
        s.push_str(&format!("proc(\"{name}\", #{{ {body} }});\n"));
        names.push(format!("\"{name}\""));
    }
    s.push_str(&format!("run([{}]);\n", names.join(", ")));
    s
}

fn assert_max_running(out: &crate::support::Output, n_procs: usize, limit: usize) {
    out.ok().summary_is(&format!("prun: {n_procs} succeeded"));
    let ev = out.events();
    assert_eq!(
        ev.max_overlap(),
        limit,
        "expected at most (and, at the barrier, exactly) {limit} jobs at once\n{}",
        ev.context()
    );
}

#[test]
fn parallel_limit_from_the_command_line() {
    let out = Test::new()
        .args(&["-j", "3"])
        .script(&limit_script("", 12, 3))
        .run();
    assert_max_running(&out, 12, 3);
}

#[test]
fn parallel_limit_from_set_options() {
    for limit in [2, 3] {
        let prefix = format!("set_options(#{{ parallel: {limit} }});\n");
        let out = Test::new().script(&limit_script(&prefix, 8, limit)).run();
        assert_max_running(&out, 8, limit);
    }
}

#[test]
fn command_line_parallel_overrides_set_options() {
    // set_options says 1, -j says 3: three must meet at the barrier.
    let out = Test::new()
        .args(&["-j", "3"])
        .script(&limit_script("set_options(#{ parallel: 1 });\n", 6, 3))
        .run();
    assert_max_running(&out, 6, 3);
    // set_options says 6, -j says 2: never more than two.
    let out = Test::new()
        .args(&["-j", "2"])
        .script(&limit_script("set_options(#{ parallel: 6 });\n", 6, 2))
        .run();
    assert_max_running(&out, 6, 2);
}

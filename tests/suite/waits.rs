//! `wait` at the top level and `ctx.wait` inside procs.

use crate::support::Test;

#[test]
fn nested_waits_finish_with_one_slot() {
    let out = Test::new()
        .args(&["-j", "1"])
        .script(
            r#"
proto("child::[i]", |ctx, i| { shell("sh job.sh " + ctx.name + " 0.02"); "c" + i });
proc("parent", |ctx| {
    let total = "";
    for i in 0..3 {
        ctx.create("child::" + i);
        total += ctx.wait("child::" + i);
    }
    let names = ctx.run("child::3");
    names += ctx.create("child::4");
    let m = ctx.wait(names);
    total += m["child::3"] + m["child::4"];
    total
});
run("parent");
print("parent=" + wait("parent"));
"#,
        )
        .run();
    out.ok()
        .line("parent=c0c1c2c3c4")
        .summary_is("prun: 6 succeeded");
    let ev = out.events();
    for i in 0..5 {
        assert_eq!(ev.runs(&format!("child::{i}")), 1, "{}", ev.context());
    }
    assert_eq!(
        ev.max_overlap(),
        1,
        "-j 1 ran children at once\n{}",
        ev.context()
    );
}

#[test]
fn waiting_for_a_proc_that_depends_on_the_waiter_is_an_error() {
    let out = Test::new()
        .script(
            r#"
proc("p", |ctx| { ctx.wait("q"); "p" });
proc("q", #{ deps: ["p"] }, |ctx| "q");
proc("me", |ctx| { ctx.wait("me"); "me" });
run(["p", "me"]);
"#,
        )
        .run();
    out.code(1).line(r#"FAILED_DEP q: dependency "p" failed"#);
    let p = out.proc_line("FAILED", "p");
    assert!(p.contains("\"q\"") || p.contains("\"p\""), "{p}");
    let me = out.proc_line("FAILED", "me");
    assert!(me.contains("me -> me"), "{me}");
}

#[test]
fn top_level_wait_for_an_unknown_proc_names_it() {
    let out = Test::new().script("wait(\"ghost\");\n").run();
    out.code(2).err_has("\"ghost\"").err_has("main.rhai:1:1");
}

#[test]
fn top_level_wait_for_an_unscheduled_proc_names_it() {
    let out = Test::new()
        .script(
            r#"
proc("idle", |ctx| 1);
wait("idle");
"#,
        )
        .run();
    out.code(2).err_has("\"idle\"").err_has("main.rhai:3:1");
    out.not_reported("idle");
}

#[test]
fn uncaught_failing_wait_exits_1_and_caught_one_continues() {
    let out = Test::new()
        .script(
            r#"
proc("bad", #{ cmd: ["sh", "-c", "exit 4"] });
run("bad");
try {
    wait("bad");
    print("not reached");
} catch (e) {
    print("caught: " + e);
}
proc("bad2", #{ cmd: ["false"] });
run("bad2");
wait("bad2");
print("not reached either");
"#,
        )
        .run();
    out.code(1)
        .out_lacks("not reached")
        .proc_state("FAILED", "bad")
        .proc_state("FAILED", "bad2");
    let caught = out
        .stdout
        .lines()
        .find(|l| l.starts_with("caught: "))
        .unwrap_or_else(|| panic!("no caught line\n{}", out.describe()));
    assert!(caught.contains("\"bad\""), "{caught}");
}

#[test]
fn a_waiting_proc_resumes_only_within_the_parallel_limit() {
    // The parent records work before and after its wait; with -j 2, at no instant may more
    // than two recorded commands run, whether they belong to the parent or not.
    let out = Test::new()
        .args(&["-j", "2"])
        .script(
            r#"
proto("child::[i]", |ctx, i| shell("sh job.sh " + ctx.name + " 0.05"));
proc("parent", |ctx| {
    shell("sh job.sh pre 0.05");
    let names = [];
    for i in 0..4 { names += ctx.run("child::" + i); }
    ctx.wait(names);
    shell("sh job.sh post 0.05");
});
for i in 0..6 { proc(`other${i}`, #{ cmd: ["sh", "job.sh", `other${i}`, "0.05"] }); }
run("parent");
run("other*");
"#,
        )
        .run();
    out.ok().summary_is("prun: 11 succeeded");
    let ev = out.events();
    assert!(
        ev.max_overlap() <= 2,
        "more than 2 at once\n{}",
        ev.context()
    );
    for i in 0..4 {
        ev.before(&format!("child::{i}"), "post");
    }
}

#[test]
fn wait_without_names_inside_a_proc_is_an_error() {
    for call in ["wait()", "ctx.wait()"] {
        let out = Test::new()
            .script(&format!(
                "proc(\"p\", |ctx| {{ {call}; 1 }});\nrun(\"p\");\n"
            ))
            .run();
        out.code(1);
        let p = out.proc_line("FAILED", "p");
        assert!(p.contains("main.rhai:1:"), "{p}");
        assert!(p.contains("would wait for the proc itself"), "{call}: {p}");
    }
}

#[test]
fn ctx_wait_throws_when_the_proc_failed_and_can_be_caught() {
    let out = Test::new()
        .script(
            r#"
proc("bad", #{ cmd: ["sh", "-c", "exit 3"] });
proc("catcher", |ctx| {
    let r = "not reached";
    try { ctx.wait("bad"); } catch (e) { print("caught: " + e); r = "recovered"; }
    r
});
proc("thrower", |ctx| { ctx.wait("bad"); "not reached" });
run(["catcher", "thrower"]);
print("catcher=" + wait("catcher"));
"#,
        )
        .run();
    out.code(1)
        .line("catcher=recovered")
        .proc_state("SUCCEEDED", "catcher")
        .proc_state("FAILED", "bad");
    let caught = out
        .stdout
        .lines()
        .find(|l| l.starts_with("caught: "))
        .unwrap_or_else(|| panic!("{}", out.describe()));
    assert!(
        caught.contains("\"bad\"") && caught.contains("code 3"),
        "{caught}"
    );
    let thrower = out.proc_line("FAILED", "thrower");
    assert!(thrower.contains("\"bad\""), "{thrower}");
}

#[test]
fn procs_waiting_for_each_other_are_failed_naming_the_cycle() {
    // The reason given was "wave 0 has not finished": no wave was waited for.
    let out = Test::new()
        .script(
            r#"
proc("a", |ctx| ctx.wait("b"));
proc("b", |ctx| ctx.wait("a"));
proc("p", |ctx| ctx.wait("q"));
proc("q", #{ deps: ["p"] }, |ctx| 1);
run(["a", "p"]);
"#,
        )
        .run();
    out.code(1);
    // One proc of each cycle is failed, the one defined last; the other fails only as
    // its wait for it throws.
    for (name, cycle) in [("b", "b -> a -> b"), ("p", "p -> q -> p")] {
        let line = out.proc_line("FAILED", name);
        assert!(
            line.contains(&format!(
                "a cycle of waits and dependencies: {cycle}; it is the one proc failed to break it"
            )),
            "{line}\n{}",
            out.describe()
        );
        assert!(!line.contains("wave"), "{line}");
    }
    let a = out.proc_line("FAILED", "a");
    assert!(
        a.contains(r#"FAILED     a "#) && a.contains(r#": proc "b" FAILED: "#),
        "{a}"
    );
    out.proc_state("FAILED_DEP", "q");
}

#[test]
fn a_deadlock_of_locks_and_waits_fails_one_proc_and_the_others_go_on() {
    // Each of a and b holds the lock the proc its body waits for needs: both failed.
    let out = Test::new()
        .script(
            r#"
proc("c", #{ locks: ["y"] }, || "c");
proc("d", #{ locks: ["x"] }, || "d");
proc("a", #{ locks: ["x"] }, |ctx| ctx.wait(ctx.run("c")));
proc("b", #{ locks: ["y"] }, |ctx| ctx.wait(ctx.run("d")));
proc("w", |ctx| { try { ctx.wait(ctx.run("b")) } catch { "b failed" } });
run(["a", "b", "w"]);
"#,
        )
        .run();
    out.code(1).summary_is("prun: 4 succeeded, 1 failed");
    let b = out.proc_line("FAILED", "b");
    assert!(
        b.contains(r#"(a cycle of waits and dependencies: b -> d -> a -> c -> b, where "d" needs lock "x" held by "a", "c" needs lock "y" held by "b"; it is the one proc failed to break it, so that the others go on)"#),
        "{b}\n{}",
        out.describe()
    );
    for name in ["a", "c", "d", "w"] {
        out.proc_state("SUCCEEDED", name);
    }
    // A body waiting for a proc that needs the lock its own proc holds.
    let out = Test::new()
        .script(
            r#"
proc("c", #{ locks: ["x"] }, || "c");
proc("a", #{ locks: ["x"] }, |ctx| ctx.wait(ctx.run("c")));
run("a");
"#,
        )
        .run();
    let a = out.proc_line("FAILED", "a");
    assert!(
        a.contains(r#"a -> c -> a, where "c" needs lock "x" held by "a"; it is the one proc"#),
        "{a}"
    );
    out.proc_state("SUCCEEDED", "c");
}

/// A body's wait for a proc of a higher wave can never end, whatever the other procs do:
/// that proc starts only once its proc's wave has finished, its proc included. The wait
/// throws at once, naming both procs and waves, for each such proc on its own; the others
/// go on. All of them failed when nothing else ran, with "wave 0 has not finished", and a
/// proc that still ran (the watcher below, waiting for lo to give up) kept them all blocked.
#[test]
fn a_wait_for_a_higher_wave_throws_at_once_naming_both_waves() {
    let out = Test::new()
        .args(&["-j", "4"])
        .script(
            r#"
proc("lo", #{ wave: 0 }, |ctx| {
    let r = "lo gave up";
    try { r = ctx.wait("hi") } catch (e) { write_file("bar.lo", ""); print(`lo: ${e}`) }
    r
});
proc("lo2", #{ wave: 0 }, |ctx| ctx.wait("hi"));
proc("watcher", #{ wave: 0, SYNC(all, watcher, lo) });
proc("mid", #{ wave: 0 }, |ctx| ctx.wait("lo") + ", seen by mid");
proc("hi", #{ wave: 1 }, || "hi");
run(["watcher", "lo", "lo2", "mid"]);
print("mid=" + wait("mid"));
"#,
        )
        .timeout(std::time::Duration::from_secs(30))
        .run();
    out.code(1)
        .line("mid=lo gave up, seen by mid")
        .summary_is("prun: 4 succeeded, 1 failed");
    let why = |p: &str| {
        format!(
            r#"proc "{p}" (wave 0) waits for proc "hi" (wave 1), which starts only once every proc of wave 0 has finished, "{p}" included: the wait would never end"#
        )
    };
    let lo = out
        .stdout
        .lines()
        .find(|l| l.starts_with("lo: "))
        .unwrap_or_default();
    assert!(lo.contains(&why("lo")), "{lo}\n{}", out.describe());
    let lo2 = out.proc_line("FAILED", "lo2");
    assert!(lo2.contains(&why("lo2")), "{lo2}\n{}", out.describe());
    for name in ["lo", "watcher", "mid", "hi"] {
        out.proc_state("SUCCEEDED", name);
    }
}

#[test]
fn waiting_for_a_proto_name_not_made_yet_says_to_create_it() {
    // It said only `no proc named "x::a" exists`, although a proto makes that name.
    let out = Test::new()
        .script(
            r#"proto("x::[v]", |ctx, v| v);
proc("p", |ctx| ctx.wait("x::a"));
run("p");"#,
        )
        .run();
    out.code(1);
    let line = out.proc_line("FAILED", "p");
    assert!(
        line.contains(
            r#"no proc named "x::a" exists; it would be made from proto "x::[v]": create it first"#
        ),
        "{line}"
    );
}

/// Procs blocked in a wait while they hold resources that the proc they wait for needs
/// are a cycle too: the one defined last is failed, naming the resource, and its
/// resources go to the proc it waited for; the other goes on. Both were failed.
#[test]
fn a_deadlock_over_resources_fails_one_waiter_and_the_others_go_on() {
    let out = Test::new()
        .args(&["-j", "4"])
        .script(
            r#"
set_options(#{ resources: #{ mem: "1G" } });
proc("c", #{ resources: #{ mem: "512M" } }, || "c");
proc("a1", #{ resources: #{ mem: "512M" } }, |ctx| ctx.wait("c") + " for a1");
proc("a2", #{ resources: #{ mem: "512M" } }, |ctx| ctx.wait("c") + " for a2");
run(["a1", "a2"]);
print("a1=" + wait("a1"));
"#,
        )
        .timeout(std::time::Duration::from_secs(30))
        .run();
    out.code(1)
        .line("a1=c for a1")
        .summary_is("prun: 2 succeeded, 1 failed");
    let a2 = out.proc_line("FAILED", "a2");
    assert!(
        a2.contains(r#"(a cycle of waits and dependencies: a2 -> c -> a2, where "c" needs resource "mem" held by "a2"; it is the one proc failed to break it, so that the others go on)"#),
        "{a2}\n{}",
        out.describe()
    );
}

/// After a top-level `wait()` that threw (a proc failed) or returned, and after a
/// second one, the script is running again: a dependency defined after `run` is found, a
/// glob over a proto defined later is filled, and a body makes procs from protos. The
/// first `wait()` once left the script marked as blocked: `b` failed with "dependency
/// "c" missing".
#[test]
fn the_script_runs_again_after_every_kind_of_wait_for_everything() {
    let out = Test::new()
        .script(
            r#"
proc("f", #{ shell: "exit 3" });
run("f");
try { wait(); } catch (e) { print("first wait threw"); }
proc("b", #{ deps: ["c"] }, |ctx| "b" + ctx.results["c"]);
run("b");
proc("c", || "c");
wait(["b"]);
for i in 0..2 { try { wait(); } catch (e) { print("wait threw again"); } }
proto("n::[k]", #{ arg_choices: |ctx| #{ k: ["1", "2"] } }, |ctx, k| k);
proc("g", #{ deps: ["late"] }, |ctx| ctx.results.late);
print("globbed " + run("n::*"));
run("g");
proto("m::[x]", |ctx, x| `m${x}`);
proc("late", |ctx| { let names = ctx.run("m::1"); ctx.wait(names[0]) + "/" + ctx.wait(ctx.create("m::2")[0]) });
print("g=" + wait("g"));
"#,
        )
        .run();
    out.code(1)
        .line("first wait threw")
        .line("wait threw again")
        .line(r#"globbed ["n::1", "n::2"]"#)
        .line("g=m1/m2")
        .summary_is("prun: 8 succeeded, 1 failed");
    out.proc_state("SUCCEEDED", "b");
}

#[test]
fn ctx_run_and_ctx_start_take_an_array_as_run_and_start_do() {
    // `ctx.run`, `ctx.start`, `ctx.create` and `ctx.wait` take what their plain forms take,
    // so the names `ctx.create` returns can be handed to `ctx.start` as they are.
    let out = Test::new()
        .script(
            r#"
proto("part::[n]", |ctx, n| n);
proc("x", || "x");
proc("grow", |ctx| {
    let made = ctx.create("part::1") + ctx.create("part::[n]", #{ n: "2" });
    ctx.start(made);
    let more = ctx.run(["part::3", "x"]);
    let all = ctx.wait(made + more);
    `${all.keys()}`
});
run("grow");
print("grow=" + wait("grow"));
"#,
        )
        .run();
    out.ok()
        .line(r#"grow=["part::1", "part::2", "part::3", "x"]"#)
        .summary_is("prun: 5 succeeded");
}

#[test]
fn a_wait_in_a_body_after_a_script_error_throws_instead_of_hanging() {
    // The script error wakes `a` from its wait for `c` (it aborts the run); `a` catches
    // that and schedules and waits for `b`, which can never start now. The wait hung.
    let out = Test::new()
        .timeout(std::time::Duration::from_secs(30))
        .script(
            r#"
proc("c", #{ cmd: ["sh", "-c", "touch c.started; i=0; while [ ! -e a.caught ]; do i=$((i+1)); [ $i -gt 2000 ] && exit 9; sleep 0.01; done"] });
proc("b", #{ cmd: ["touch", "b.ran"] });
proc("a", |ctx| {
    try { ctx.wait("c"); } catch (e) { write_file("a.caught", `${e}`); }
    ctx.run("b");
    ctx.wait("b")
});
run("a");
shell("i=0; while [ ! -e c.started ]; do i=$((i+1)); [ $i -gt 2000 ] && exit 9; sleep 0.01; done");
throw "oops";
"#,
        )
        .run();
    out.code(2)
        .err_has("main.rhai:11:1: oops")
        .proc_state("SUCCEEDED", "c");
    let a = out.proc_line("FAILED", "a");
    assert!(a.contains("the run was aborted by a script error"), "{a}");
    assert!(
        out.exists("a.caught") && !out.exists("b.ran"),
        "{}",
        out.describe()
    );
}

#[test]
fn a_cycle_of_waits_after_a_script_error_is_broken_as_before_it() {
    // The script error wakes `a` and `b` from their waits for `slow`; each then waits for
    // the other. Nothing broke that cycle once the run was aborted: prun hung.
    let out = Test::new()
        .timeout(std::time::Duration::from_secs(30))
        .args(&["-j", "4"])
        .script(
            r#"
proc("slow", #{ cmd: ["sh", "-c", "touch slow.started; i=0; while [ ! -e a.caught ] || [ ! -e b.caught ]; do i=$((i+1)); [ $i -gt 2000 ] && exit 9; sleep 0.01; done"] });
proc("a", |ctx| { try { ctx.wait("slow"); } catch (e) { write_file("a.caught", ""); } ctx.wait("b") });
proc("b", |ctx| { try { ctx.wait("slow"); } catch (e) { write_file("b.caught", ""); } ctx.wait("a") });
run(["a", "b"]);
shell("i=0; while [ ! -e slow.started ]; do i=$((i+1)); [ $i -gt 2000 ] && exit 9; sleep 0.01; done");
throw "oops";
"#,
        )
        .run();
    out.code(2).proc_state("SUCCEEDED", "slow");
    let b = out.proc_line("FAILED", "b");
    assert!(
        b.contains("a cycle of waits and dependencies: b -> a -> b"),
        "{b}"
    );
    let a = out.proc_line("FAILED", "a");
    assert!(a.contains(r#"proc "b" FAILED"#), "{a}");
}

/// A body whose `ctx.wait` threw because the proc it waited for failed named only where
/// that proc failed (its own body's line), not the line of the `ctx.wait` that threw.
#[test]
fn a_body_failed_by_its_wait_names_the_line_of_the_wait_and_the_proc() {
    let out = Test::new()
        .script(
            r#"proc("x", || {
    throw "boom";
});
proc("c", #{ shell: "exit 3" });
proc("b", |ctx| {
    let r = 1;
    ctx.wait("x");
    r
});
proc("d", |ctx| {
    ctx.wait(["c"]);
});
run(["x", "c", "b", "d"]);
"#,
        )
        .run();
    out.code(1);
    let b = out.proc_line("FAILED", "b");
    assert!(
        b.contains(r#": main.rhai:7:9: proc "x" FAILED: main.rhai:2:5: boom"#),
        "{b}\n{}",
        out.describe()
    );
    let d = out.proc_line("FAILED", "d");
    assert!(
        d.contains(r#": main.rhai:11:9: proc "c" FAILED: "#),
        "{d}\n{}",
        out.describe()
    );
}

#[test]
fn a_top_level_wait_fails_every_proc_still_missing_a_dependency() {
    // `b` still waits for `first` when the top level waits: it missed `x` all the same,
    // and is FAILED_DEP. It ran once `x` was defined after the wait (the top level
    // went on before `b` learnt that `first` had ended).
    let out = Test::new()
        .script(
            r#"
proc("first", #{ JOB(first) });
proc("b", #{ deps: ["first", "x"], JOB(b) });
run("b");
wait("first");
proc("x", #{ JOB(x) });
"#,
        )
        .run();
    out.code(1)
        .line(r#"FAILED_DEP b: dependency "x" missing"#)
        .summary_is("prun: 1 succeeded, 1 not run (failed dependency)");
    // A wait for a proc that has ended already is a wait too: `b` ran when `x` was
    // defined after it.
    let out = Test::new()
        .script(
            r#"
proc("first", #{ JOB(first) });
proc("b", #{ deps: ["x"], JOB(b) });
run("first");
wait("first");
run("b");
wait("first");
proc("x", #{ JOB(x) });
"#,
        )
        .run();
    out.code(1)
        .line(r#"FAILED_DEP b: dependency "x" missing"#)
        .summary_is("prun: 1 succeeded, 1 not run (failed dependency)");
    assert!(!out.events().ran("b"), "{}", out.events().context());
}

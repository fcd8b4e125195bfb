//! Script closures of every kind (dependency closures, `arg_choices`, `inputs`/`outputs`,
//! bodies) calling the API: each call works, or fails with an error naming the rule —
//! never a deadlock, never a panic. Runs are bounded by a short timeout, so that a former
//! hang fails its test instead of stalling the suite.

use std::time::Duration;

use crate::support::Test;

/// Long enough for any of these scripts; far shorter than a hang.
const BOUND: Duration = Duration::from_secs(20);

fn test() -> Test {
    Test::new().timeout(BOUND)
}

#[test]
fn a_dependency_closure_can_call_state_and_results() {
    let out = test()
        .script(
            r#"
proc("a", |ctx| 1);
run("a");
wait("a");
proc("b", #{ deps: [|ctx| { print("dep sees a " + state("a") + " " + results()["a"]); "a" }] },
     |ctx| ctx.results["a"] + 1);
print("b=" + wait(run("b")[0]));
"#,
        )
        .run();
    out.ok()
        .line("dep sees a SUCCEEDED 1")
        .line("b=2")
        .summary_is("prun: 2 succeeded");
}

#[test]
fn an_arg_choices_closure_can_call_state_and_results() {
    let out = test()
        .script(
            r#"
proc("a", |ctx| ["x", "y"]);
run("a");
wait("a");
proto("t::[v]", #{ arg_choices: #{ v: |ctx| { print("choices see a " + state("a")); results()["a"] } } },
      |ctx, v| v);
print("names=" + run("t::*"));
"#,
        )
        .run();
    out.ok()
        .line("choices see a SUCCEEDED")
        .line(r#"names=["t::x", "t::y"]"#)
        .summary_is("prun: 3 succeeded");
}

#[test]
fn an_inputs_closure_judged_when_a_command_dependency_ends_can_call_exec() {
    let out = test()
        .file("in.txt", "data")
        .script(
            r#"
proc("a", #{ cmd: ["true"] });
proc("b", #{ deps: ["a"], inputs: [|ctx| { exec(["true"]); "in.txt" }] },
     |ctx| ctx.input_fingerprint.len());
run("b");
print("b=" + wait("b"));
"#,
        )
        .run();
    out.ok().line("b=1").summary_is("prun: 2 succeeded");
}

#[test]
fn the_script_runs_again_after_a_wait_for_everything() {
    let out = test()
        .script(
            r#"
proc("a", |ctx| "a");
run("a");
wait();
proc("b", #{ deps: ["c"] }, |ctx| "b" + ctx.results["c"]);
run("b");
proc("c", |ctx| "c");
print("b=" + wait("b"));
"#,
        )
        .run();
    out.ok().line("b=bc").summary_is("prun: 3 succeeded");
}

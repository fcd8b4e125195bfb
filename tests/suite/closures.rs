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

/// A script function every closure kind calls: each API function a closure may use.
const PROBE: &str = r#"
fn probe(kind, ctx) {
    let out = exec(["echo", "e"]).stdout;
    out.trim();
    let sh = pipe([["echo", "s"], ["cat"]]).stdout;
    sh.trim();
    shell("true");
    sleep(0.01);
    print(kind + ": " + state("a") + " " + results()["a"] + " " + out + sh + " " + ctx.name);
}
proc("a", |ctx| 7);
run("a");
wait("a");
"#;

#[test]
fn every_closure_kind_can_call_state_results_exec_shell_sleep_and_read_ctx() {
    let script = format!(
        "{PROBE}{}",
        r#"
proc("plain", #{ deps: [|ctx| { probe("dep", ctx); "a" }] }, |ctx| { probe("body", ctx); 1 });
proto("made::[x]", #{ deps: [|ctx, x| { probe("proto dep", ctx); "a" }] }, |ctx, x| x);
proto("pick::[y]", #{ arg_choices: #{ y: |ctx| { probe("choices", ctx); ["p"] } } }, |ctx, y| y);
proto("map::[z]", #{ arg_choices: |ctx| { probe("choices map", ctx); #{ z: ["q"] } } }, |ctx, z| z);
proc("files", #{
    deps: ["a"],
    inputs: [|ctx| { probe("inputs", ctx); "in.txt" }],
    outputs: [|ctx| { probe("outputs", ctx); "out.txt" }],
}, |ctx| { shell("touch out.txt"); 2 });
proc("again", #{ retries: 1 }, |ctx| {
    probe("retried body", ctx);
    if file_info("failed-once") == () { write_file("failed-once", ""); throw "once"; }
    3
});
proc("target", |ctx| { probe("when_scheduled target", ctx); 4 });
proc("declarer", #{ rdeps: [when_scheduled("target")] }, |ctx| 5);
run(["plain", "made::1", "pick::*", "map::*", "files", "again", "declarer"]);
wait();
"#
    );
    let out = test().file("in.txt", "in").script(&script).run();
    out.ok()
        .line("dep: SUCCEEDED 7 es plain")
        .line("body: SUCCEEDED 7 es plain")
        .line("retried body: SUCCEEDED 7 es again")
        .line("when_scheduled target: SUCCEEDED 7 es target")
        .line("proto dep: SUCCEEDED 7 es made::1")
        .line("choices: SUCCEEDED 7 es pick::[y]")
        .line("choices map: SUCCEEDED 7 es map::[z]")
        .line("inputs: SUCCEEDED 7 es files")
        .line("outputs: SUCCEEDED 7 es files")
        .summary_is("prun: 9 succeeded");
    out.out_has("RETRYING   again (attempt 1 failed");
}

#[test]
fn a_closure_evaluated_for_the_core_cannot_schedule_wait_or_define() {
    let cases = [
        (
            r#"proc("p", #{ deps: [|ctx| { run("a"); "a" }] }, |ctx| 1);"#,
            "a dependency closure cannot call run()",
        ),
        (
            r#"proto("t::[v]", #{ arg_choices: #{ v: |ctx| { wait("a"); ["x"] } } }, |ctx, v| v);
run("t::*");"#,
            "the arg_choices closure cannot call wait()",
        ),
        (
            r#"proto("t::[v]", #{ deps: [|ctx, v| { proc("q", |ctx| 1); "a" }] }, |ctx, v| v);
run("t::x");"#,
            "a dependency closure cannot call proc()",
        ),
    ];
    for (body, rule) in cases {
        let script = format!("proc(\"a\", |ctx| 1);\n{body}\n");
        let out = test().script(&script).run();
        out.code(2).err_has(rule);
    }
    let out = test()
        .script(
            r#"
proc("a", |ctx| 1);
proc("b", #{ deps: ["a"], inputs: [|ctx| { create("a"); "in.txt" }] }, |ctx| 2);
run("b");
"#,
        )
        .run();
    out.code(1)
        .out_has("an inputs or outputs closure cannot call create()");
}

/// Scripts that run the statement `stmt` in each kind of closure evaluated for the core
/// (a dependency closure, an `arg_choices` closure, an `inputs` closure), each with that
/// kind as its errors name it and the exit status its failure gives (2: a script error at
/// the `proc`/`run` that asked; 1: the proc fails).
fn in_each_scheduler_closure(stmt: &str) -> [(String, &'static str, i32); 3] {
    let script = |body: String| format!("proc(\"a\", |ctx| 1);\n{body}\n");
    [
        (
            script(format!(
                r#"proc("p", #{{ deps: [|ctx| {{ {stmt}; "a" }}] }}, |ctx| 1);"#
            )),
            "a dependency closure",
            2,
        ),
        (
            script(format!(
                r#"proto("t::[v]", #{{ arg_choices: |ctx| {{ {stmt}; #{{ v: ["x"] }} }} }}, |ctx, v| v);
run("t::*");"#
            )),
            "the arg_choices closure",
            2,
        ),
        (
            script(format!(
                r#"proc("p", #{{ deps: ["a"], inputs: [|ctx| {{ {stmt}; "in.txt" }}] }}, |ctx| 1);
run("p");"#
            )),
            "an inputs or outputs closure",
            1,
        ),
    ]
}

#[test]
fn ctx_methods_of_a_body_called_from_a_closure_evaluated_for_the_core_name_the_rule() {
    // Such a closure's ctx is a map (name, args, params): `ctx.run("a")` there read
    // "function run(a map, a string) does not exist", which names no rule.
    let methods = [
        ("run", r#""a""#),
        ("start", r#""a""#),
        ("create", r#""a""#),
        ("wait", r#""a""#),
        ("log", r#""x""#),
        ("progress", "0.5"),
    ];
    for (method, arg) in methods {
        let call = format!("ctx.{method}({arg})");
        let rule = format!("cannot call ctx.{method}(): its ctx is a map of name, args and params");
        for (script, kind, code) in in_each_scheduler_closure(&call) {
            let out = test().script(&script).run();
            out.code(code);
            let text = format!("{}{}", out.stdout, out.stderr);
            assert!(
                text.contains(&format!("{kind} {rule}")),
                "{kind} calling {call}: {}",
                out.describe()
            );
        }
    }
}

#[test]
fn ctx_members_of_a_body_read_from_a_closure_evaluated_for_the_core_name_the_rule() {
    // Such a closure's ctx map has no `results`: `ctx.results.a` there read "Unknown
    // property 'a' - a getter is not registered for type nothing", which names no rule.
    for read in [
        "ctx.results.a",
        r#"ctx.results["a"]"#,
        "ctx.changed_deps[0]",
        "ctx.input_fingerprint.x",
    ] {
        let member = read
            .trim_start_matches("ctx.")
            .split(['.', '['])
            .next()
            .unwrap();
        let rule = format!("has no ctx.{member}: only a proc's body has it");
        for (script, kind, code) in in_each_scheduler_closure(&format!("let v = {read}")) {
            let out = test().script(&script).run();
            out.code(code);
            let text = format!("{}{}", out.stdout, out.stderr);
            assert!(
                text.contains(&format!("{kind} {rule}")),
                "{kind} reading {read}: {}",
                out.describe()
            );
        }
    }
}

#[test]
fn a_proc_failed_only_by_its_outputs_keeps_its_result_in_the_report() {
    let out = test()
        .args(&["--json", "report.json"])
        .script(r#"proc("p", #{ outputs: ["never.txt"] }, |ctx| 42); run("p");"#)
        .run();
    out.code(1).out_has("never.txt (missing)");
    let report: serde_json::Value =
        serde_json::from_str(&out.read("report.json")).expect("report is JSON");
    let procs = report["procs"].as_array().expect("procs");
    let p = procs
        .iter()
        .find(|p| p["name"] == "p")
        .expect("p in report");
    assert_eq!(p["state"], "FAILED", "{report}");
    assert_eq!(p["result"], 42, "{report}");
}

#[test]
fn arg_choices_can_be_one_closure_for_the_whole_map() {
    let out = test()
        .script(
            r#"
proto("deploy::[env]::[region]", #{
    arg_choices: |ctx| #{ env: ["dev", "prod"], region: ["eu", "us"] },
}, |ctx, env, region| env + "-" + region);
print("names=" + run("deploy::*::eu"));
wait();
try { create("deploy::qa::eu"); } catch (e) { print("error: " + e); }
"#,
        )
        .run();
    out.ok()
        .line(r#"names=["deploy::dev::eu", "deploy::prod::eu"]"#)
        .out_has(r#"value "qa" for placeholder [env] of proto "deploy::[env]::[region]" is not one of the allowed values: dev, prod"#)
        .summary_is("prun: 2 succeeded");
    let out = test()
        .script(
            r#"
proto("t::[v]", #{ arg_choices: |ctx| #{ w: ["1"] } }, |ctx, v| v);
run("t::*");
"#,
        )
        .run();
    out.code(2)
        .err_has("its arg_choices closure returned [w], which is not a placeholder");
}

#[test]
fn every_form_of_arg_choices_takes_a_string_as_one_choice_and_refuses_the_same_values() {
    // The whole-map closure refused `#{ v: "one" }` ("must be an array") that a closure
    // of one placeholder took as one choice, and took `["a", ()]` as the choice "()".
    for choices in [
        r#"|ctx| #{ v: "one" }"#,
        r#"#{ v: |ctx| "one" }"#,
        r#"#{ v: "one" }"#,
    ] {
        test()
            .script(&format!(
                "proto(\"t::[v]\", #{{ arg_choices: {choices} }}, |ctx, v| v);\nprint(run(\"t::*\"));"
            ))
            .run()
            .ok()
            .line(r#"["t::one"]"#);
    }
    for (choices, message) in [
        (
            r#"|ctx| #{ v: ["a", ()] }"#,
            "the arg_choices closure of \"t::[v]\" failed: its value for [v] must be a string or an array of strings, not an array holding nothing (`()`) (main.rhai:1:33)",
        ),
        (
            r#"#{ v: |ctx| ["a", ()] }"#,
            "the arg_choices closure of \"t::[v]\" failed: it must return a string or an array of strings, not an array holding nothing (`()`) (main.rhai:1:39)",
        ),
        (
            r#"#{ v: ["a", ()] }"#,
            "proto \"t::[v]\": `arg_choices.v` entry 2 must be a string, a number or a bool, not nothing (`()`)",
        ),
        (
            r#"|ctx| #{ v: 5 }"#,
            "its value for [v] must be a string or an array of strings, not an integer (main.rhai:1:33)",
        ),
    ] {
        test()
            .script(&format!(
                "proto(\"t::[v]\", #{{ arg_choices: {choices} }}, |ctx, v| v);\nprint(run(\"t::*\"));"
            ))
            .run()
            .code(2)
            .err_has(message)
            .out_lacks("t::");
    }
}

#[test]
fn a_closure_giving_names_or_paths_takes_strings_only_as_their_static_lists_do() {
    // `deps: || [1]` ran the proc named "1", and `inputs: || [true]` stood for the file
    // `true`, where `deps: [1]` and `inputs: [1]` are definition errors. A closure's
    // `arg_choices` take integers and booleans, as a static list does.
    for (option, returned, message) in [
        (
            "deps",
            "[1]",
            "a dependency closure of \"b\" failed: it must return a string or an array of strings, not an array holding an integer (main.rhai:2:20)",
        ),
        (
            "deps",
            r#"["a", true]"#,
            "a dependency closure of \"b\" failed: it must return a string or an array of strings, not an array holding a bool (main.rhai:2:20)",
        ),
        (
            "inputs",
            "[1]",
            "the inputs closure of \"b\" failed: it must return a path or an array of paths, not an array holding an integer (main.rhai:2:22)",
        ),
        (
            "outputs",
            "[true]",
            "the outputs closure of \"b\" failed: it must return a path or an array of paths, not an array holding a bool (main.rhai:2:23)",
        ),
    ] {
        let out = test()
            .script(&format!(
                "proc(\"1\", || 1); proc(\"a\", || 1); proc(\"true\", || 1);\n\
                 proc(\"b\", #{{ {option}: || {returned} }}, || 2);\nrun(\"b\");"
            ))
            .run();
        let all = format!("{}{}", out.stdout, out.stderr);
        assert!(
            all.contains(message),
            "{option}: {returned}\n{}",
            out.describe()
        );
        out.out_lacks("SUCCEEDED  b");
    }
    test()
        .script(
            "proto(\"t::[v]\", #{ arg_choices: #{ v: |ctx| [1, true] } }, |ctx, v| v);\n\
             print(run(\"t::*\"));",
        )
        .run()
        .ok()
        .line(r#"["t::1", "t::true"]"#);
}

#[test]
fn the_glob_helper_and_inputs_globs_agree_on_hidden_files() {
    let out = test()
        .file("a.txt", "a")
        .file(".hidden.txt", "h")
        .script(
            r#"
print("glob=" + glob("*.txt") + " " + glob(".*.txt"));
proc("p", #{ inputs: ["*.txt"] }, |ctx| ctx.input_fingerprint.keys());
proc("q", #{ inputs: [".*.txt"] }, |ctx| ctx.input_fingerprint.keys());
run(["p", "q"]);
print("inputs=" + wait("p") + " " + wait("q"));
"#,
        )
        .run();
    out.ok()
        .line(r#"glob=["a.txt"] [".hidden.txt"]"#)
        .line(r#"inputs=["a.txt"] [".hidden.txt"]"#);
}

#[test]
fn closures_calling_run_at_once_on_protos_with_closures_all_finish() {
    let out = test()
        .args(&["-j", "4"])
        .script(
            r#"
proto("leaf::[i]", #{ deps: [|ctx, i| { state("base"); [] }] }, |ctx, i| 1);
proto("pick::[j]", #{ arg_choices: #{ j: |ctx| ["a", "b", "c"] } }, |ctx, j| 1);
proc("base", |ctx| 0);
for k in 0..6 {
    proc("maker" + k, #{ deps: ["base"] }, |ctx| {
        let names = [];
        for i in 0..15 { names += ctx.run("leaf::" + ctx.name + "-" + i); }
        names += ctx.run("pick::*");
        let total = 0;
        for v in ctx.wait(names).values() { total += v; }
        total
    });
}
run("maker*");
let sum = 0;
for v in wait(["maker0", "maker1", "maker2", "maker3", "maker4", "maker5"]).values() { sum += v; }
print("sum=" + sum);
"#,
        )
        .run();
    out.ok().line("sum=108").summary_is("prun: 100 succeeded");
}

#[test]
fn a_body_with_a_parameter_count_it_is_never_called_with_is_refused_where_it_is_given() {
    // It failed only when the proc ran, after the procs before it.
    let out = Test::new()
        .script("proc(\"first\", #{ now: true, cmd: [\"touch\", \"ran\"] });\nproc(\"a\", #{ now: true }, |ctx, b| 1);\n")
        .run();
    out.code(2).err_has(
        r#"main.rhai:2:1: proc "a": the body closure at main.rhai:2:27 takes 2 parameters; it is called as |ctx| or ||"#,
    );
    assert!(!out.exists("ran"), "a proc ran\n{}", out.describe());
    let out = Test::new()
        .script("proto(\"a::[x]::[y]\", |ctx, b| 1);\nrun(\"a::1::2\");\n")
        .run();
    out.code(2).err_has(
        r#"main.rhai:1:1: proto "a::[x]::[y]": the body closure at main.rhai:1:22 takes 2 parameters; it is called as |ctx, x, y|, |ctx| or ||"#,
    );
}

#[test]
fn every_kind_of_closure_is_checked_for_the_parameter_counts_it_is_called_with() {
    let cases = [
        (
            r#"proto("t::[v]", #{ deps: [|ctx, v, w| "x"] }, || 1);"#,
            r#"proto "t::[v]": the `deps` closure at main.rhai:1:27 takes 3 parameters; it is called as |ctx, v|, |ctx| or ||"#,
        ),
        (
            r#"proc("t", #{ inputs: ["in", |ctx, v| "x"] }, || 1);"#,
            r#"proc "t": the `inputs` closure at main.rhai:1:29 takes 2 parameters; it is called as |ctx| or ||"#,
        ),
        (
            r#"proto("t::[v]", #{ outputs: [#{ file: |a, b, c| "x" }] }, || 1);"#,
            r#"proto "t::[v]": the `outputs` closure at main.rhai:1:39 takes 3 parameters; it is called as |ctx, v|, |ctx| or ||"#,
        ),
        // arg_choices closures run before any proc exists: no placeholder value is passed.
        (
            r#"proto("t::[v]", #{ arg_choices: #{ v: |ctx, v| ["a"] } }, |ctx, v| 1);"#,
            r#"proto "t::[v]": the `arg_choices.v` closure at main.rhai:1:39 takes 2 parameters; it is called as |ctx| or ||"#,
        ),
        (
            r#"proto("t::[v]", #{ arg_choices: |ctx, v| #{ v: ["a"] } }, |ctx, v| 1);"#,
            r#"proto "t::[v]": the `arg_choices` closure at main.rhai:1:33 takes 2 parameters; it is called as |ctx| or ||"#,
        ),
        // A script function has its parameters; values curried into it take some.
        (
            "fn three(a, b, c) { a }\nproto(\"t::[v]\", Fn(\"three\"));",
            r#"proto "t::[v]": the body closure at main.rhai:2:1 takes 3 parameters; it is called as |ctx, v|, |ctx| or ||"#,
        ),
        (
            "fn two(a, b) { a }\nproc(\"t\", Fn(\"two\").curry(1).curry(2).curry(3));",
            r#"proc "t": the body closure at main.rhai:2:1 takes no parameter count it can be called with"#,
        ),
    ];
    for (script, message) in cases {
        let out = test().script(script).run();
        out.code(2).err_has(message);
        let out = test().script(script).raw(&["check", "main.rhai"]).run();
        out.code(2)
            .err_has(message)
            .err_has("prun: check: 1 problem found");
    }
}

#[test]
fn closures_taking_a_count_they_are_called_with_are_accepted() {
    let out = test()
        .script(
            r#"
fn two(ctx, v) { `two ${v}` }
fn one(x) { x }
let seen = "captured";
proto("a::[v]", |ctx, v| `a ${v} ${seen}`);
proto("b::[v]", #{ deps: [|| [], |ctx| [], |ctx, v| []], arg_choices: #{ v: || ["1"] } }, |ctx| "b");
proto("c::[v]", Fn("two"));
proto("d::[v]::[w]", #{ arg_choices: |ctx| #{ v: "1", w: "2" } }, Fn("one").curry("d"));
proc("e", #{ inputs: [|ctx| []], outputs: [||[]] }, || "e");
for name in ["a::1", "b::1", "c::1", "d::1::2", "e"] { print(wait(run(name)[0])); }
"#,
        )
        .run();
    out.ok()
        .line("a 1 captured")
        .line("b")
        .line("two 1")
        .line("d")
        .line("e")
        .summary_is("prun: 5 succeeded");
}

#[test]
fn a_function_pointer_to_no_function_is_refused_where_it_is_given() {
    // It failed only when called, deep into a run.
    let cases = [
        (
            "proc(\"t\", Fn(\"nosuch\"));",
            r#"main.rhai:2:1: proc "t": the body closure at main.rhai:2:1 is Fn("nosuch"), and no function is named `nosuch`"#,
        ),
        (
            "proto(\"t::[v]\", #{ deps: [Fn(\"nosuch\")] }, || 1);",
            r#"proto "t::[v]": the `deps` closure at main.rhai:2:1 is Fn("nosuch")"#,
        ),
        (
            "proc(\"t\", #{ inputs: [Fn(\"nosuch\")], outputs: [Fn(\"nosuch\")] }, || 1);",
            r#"proc "t": the `inputs` closure at main.rhai:2:1 is Fn("nosuch")"#,
        ),
        (
            "proc(\"t\", #{ outputs: [#{ file: Fn(\"nosuch\") }] }, || 1);",
            r#"proc "t": the `outputs` closure at main.rhai:2:1 is Fn("nosuch")"#,
        ),
        (
            "proto(\"t::[v]\", #{ arg_choices: #{ v: Fn(\"nosuch\") } }, || 1);",
            r#"proto "t::[v]": the `arg_choices.v` closure at main.rhai:2:1 is Fn("nosuch")"#,
        ),
        (
            "proto(\"t::[v]\", #{ arg_choices: Fn(\"nosuch\") }, || 1);",
            r#"proto "t::[v]": the `arg_choices` closure at main.rhai:2:1 is Fn("nosuch")"#,
        ),
        (
            "proc(\"t\", Fn(\"biuld\"));\nfn build(ctx) { 1 }",
            "no function is named `biuld`; did you mean `build`?",
        ),
    ];
    for (script, message) in cases {
        let script =
            format!("proc(\"first\", #{{ now: true, cmd: [\"touch\", \"ran\"] }});\n{script}");
        let out = test().script(&script).run();
        out.code(2).err_has(message);
        assert!(!out.exists("ran"), "a proc ran\n{}", out.describe());
        let out = test().script(&script).raw(&["check", "main.rhai"]).run();
        out.code(2)
            .err_has(message)
            .err_has("prun: check: 1 problem found");
    }
}

#[test]
fn a_function_pointer_to_a_native_a_later_or_a_module_function_is_accepted() {
    let out = test()
        .file(
            "lib.rhai",
            "fn helper(ctx) { \"helper\" }\nfn define() { proc(\"m\", Fn(\"helper\")); }\n",
        )
        .script(
            r#"
import "lib" as lib;
lib::define();
proc("native", Fn("to_string"));
proc("later", Fn("later"));
proc("d", #{ deps: [Fn("none")] }, || "d");
fn later(ctx) { "later" }
fn none() { [] }
for name in ["m", "native", "later", "d"] { print(type_of(wait(run(name)[0]))); }
"#,
        )
        .run();
    out.ok().summary_is("prun: 4 succeeded");
}

#[test]
fn a_deferred_cleanup_that_could_not_be_called_is_refused_at_defer() {
    // A cleanup taking two parameters failed only when the script ended, as a warning.
    let cases = [
        (
            "defer(|a, b| print(\"x\"));",
            "main.rhai:2:1: defer: the closure at main.rhai:2:7 takes 2 parameters; a deferred cleanup is called as ||",
        ),
        (
            "defer(Fn(\"nosuch\"));",
            r#"main.rhai:2:1: defer: the closure at main.rhai:2:1 is Fn("nosuch"), and no function is named `nosuch`"#,
        ),
    ];
    for (script, message) in cases {
        let script = format!(
            "proc(\"first\", #{{ now: true, cmd: [\"touch\", \"ran\"] }});\n{script}\nrun(\"first\");"
        );
        let out = test().script(&script).run();
        out.code(2).err_has(message);
    }
    let out = test()
        .script("defer(|x| print(`one ${x}`));\ndefer(Fn(\"later\"));\nfn later() { print(\"later\") }\n")
        .run();
    out.ok().line("later").line("one ");
}

#[test]
fn closures_defined_in_a_module_run_as_bodies_with_the_module_around_them() {
    // They failed with "the closure cannot be called with ctx": their functions live in
    // the module, not in the script.
    let out = test()
        .file(
            "lib/tools.rhai",
            r#"import "fs" as fs;
fn triple(x) { x * 3 }
fn body(n) { |ctx| triple(n) + fs::size("lib/tools.rhai") * 0 }
fn after() { |ctx| ctx.results.a + 1 }
fn cleanup() { || print("module cleanup ran") }
fn broken() { |ctx| {
    let z = 1;
    z.nope()
} }
"#,
        )
        .script(
            r#"import "lib/tools" as t;
proc("a", t::body(2));
proc("b", #{ deps: ["a"] }, t::after());
proc("bad", t::broken());
defer(t::cleanup());
run(["b", "bad"]);
wait("b");
print(`b=${results().b}`);
"#,
        )
        .run();
    out.code(1)
        .line("b=7")
        .line("module cleanup ran")
        .proc_state("SUCCEEDED", "a")
        .proc_state("FAILED", "bad")
        .out_has("lib/tools.rhai:8:7: function not found: nope(an integer)");
}

#[test]
fn an_error_inside_a_module_names_the_module_file() {
    let out = test()
        .file(
            "lib.rhai",
            "fn helper(x) {\n    let y = x;\n    y.bogus()\n}\n",
        )
        .script("import \"lib\" as l;\nproc(\"h\", || l::helper(1));\nrun(\"h\");\n")
        .run();
    out.code(1)
        .out_has("lib.rhai:3:7: function not found: bogus");
}

#[test]
fn a_closure_failing_for_a_command_line_target_is_a_script_error() {
    // It exited 64, as if the command line were wrong.
    let out = test()
        .script(r#"proto("b::[v]", #{ deps: [|ctx, v| { let q = (); q.foo() }] }, |ctx, v| 1);"#)
        .args(&["b::x"])
        .run();
    out.code(2)
        .err_has("a dependency closure of \"b::x\" failed: main.rhai:1:");
    let out = test()
        .script(r#"proc("a", #{ deps: ["b"] }, || 1); proc("b", #{ deps: ["a"] }, || 1);"#)
        .args(&["a"])
        .run();
    out.code(2).err_has("dependency cycle: a -> b -> a");
}

#[test]
fn a_deferred_cleanup_cannot_define_procs_or_set_options_after_the_run() {
    // Each did nothing, without a word: a proc defined there never ran, options and
    // params set there never acted.
    let out = test()
        .script(
            r#"defer(|| proc("late", || 1));
defer(|| proto("p::[v]", |ctx, v| v));
defer(|| create("early"));
defer(|| set_options(#{ parallel: 1 }));
defer(|| set_params(#{ v: 1 }));
defer(|| print("the last cleanup ran"));
proc("early", || 1);
"#,
        )
        .run();
    out.ok().line("the last cleanup ran");
    for (line, call) in [
        (1, "proc"),
        (2, "proto"),
        (3, "create"),
        (4, "set_options"),
        (5, "set_params"),
    ] {
        out.err_has(&format!(
            "deferred cleanup (main.rhai:{line}:7) failed: main.rhai:{line}:10: the run has ended: a deferred cleanup cannot call {call}()"
        ));
    }
}

#[test]
fn defer_and_tempdir_in_a_dependency_or_inputs_closure_belong_to_the_script() {
    // Documented in script-api.md: the cleanup and the directory go when the script
    // ends, not when the closure returns.
    let out = test()
        .script(
            r#"proc("a", #{
    deps: || {
        defer(|| print("cleanup of the dependency closure"));
        write_file("dir.txt", tempdir());
        []
    },
    shell: "test -d \"$(cat dir.txt)\"",
});
proc("b", #{
    inputs: || { defer(|| print("cleanup of the inputs closure")); [] },
    deps: ["a"],
    cmd: ["true"],
});
run("b");
"#,
        )
        .run();
    out.ok();
    let at = |text: &str| {
        out.stdout
            .find(text)
            .unwrap_or_else(|| panic!("no {text:?}\n{}", out.describe()))
    };
    let order = [
        at("SUCCEEDED  a"),
        at("SUCCEEDED  b"),
        at("cleanup of the inputs closure"),
        at("cleanup of the dependency closure"),
    ];
    assert!(order.is_sorted(), "out of order\n{}", out.describe());
    let dir = out.read("dir.txt");
    assert!(
        !std::path::Path::new(&dir).exists(),
        "{dir} is left\n{}",
        out.describe()
    );
}

#[test]
fn a_deferred_cleanup_cannot_schedule_procs_after_the_run() {
    // A proc started by a cleanup ran after the summary: a closure failed with "internal
    // error: A Tokio 1.x context was found, but it is being shutdown", and a command was
    // left running after prun exited, with exit status 0.
    let out = test()
        .script(
            r#"proc("late", #{ shell: "echo $$ > late.pid; sleep 5" });
proc("c", |ctx| 2);
defer(|| run("late"));
defer(|| start("c"));
"#,
        )
        .run();
    out.ok()
        .err_has("deferred cleanup (main.rhai:4:7) failed: main.rhai:4:10: the run has ended: a deferred cleanup cannot schedule procs")
        .err_has("deferred cleanup (main.rhai:3:7) failed: main.rhai:3:10: the run has ended");
    assert!(
        !out.exists("late.pid"),
        "a cleanup started a command\n{}",
        out.describe()
    );
    assert!(!out.stdout.contains("STARTED"), "{}", out.describe());
}

#[test]
fn calling_a_module_closure_directly_says_where_it_was_made() {
    // It said "the closure cannot be called with no arguments: it takes other arguments".
    let out = test()
        .file("lib.rhai", "fn make() { || 7 }\n")
        .script("import \"lib\" as l;\nlet f = l::make();\nprint(f.call());\n")
        .run();
    out.code(2).err_has(
        "main.rhai:3:9: the closure was made in the module lib.rhai, and the script cannot call it directly",
    );
}

/// The procs a loop defines, capturing one big unchanged list, share one copy of it, yet
/// each call of a body gets its own: what a body changes in a captured value is seen by
/// no other proc, nor by the script, and a value changed between two definitions is
/// seen changed by the later proc only.
#[test]
fn procs_capturing_one_unchanged_value_share_it_and_each_body_changes_its_own() {
    // Not a test of a hang: 200 bodies copying a list of 20,000 strings take 8-17 s in a
    // debug build on a loaded machine, past `BOUND`.
    let out = Test::new()
        .timeout(Duration::from_secs(120))
        .script(
            r#"
let big = [];
for i in 0..20000 { big.push(`file-${i}.dat`); }
let m = #{ list: [1] };
for i in 0..200 {
    proc(`p${i}`, #{ now: true }, || { big.push(i); m.list.push(i); `${big.len()}/${m.list}` });
}
let r = wait();
m.list.push(9);
proc("late", #{ now: true }, || `${big.len()}/${m.list}`);
let late = wait("late");
write_file("out.txt", `${r.p0} ${r.p199} ${big.len()} ${m.list} ${late}`);
let status = read_file("/proc/self/status");
let peak = status.split("\n").filter(|l| l.starts_with("VmHWM:"))[0];
let kb = peak.sub_string(6);
kb.trim();
write_file("peak.txt", kb.split(" ")[0]);
"#,
        )
        .run();
    out.ok();
    assert_eq!(
        out.read("out.txt"),
        "20001/[1, 0] 20001/[1, 199] 20000 [1, 9] 20000/[1, 9]",
        "{}",
        out.describe()
    );
    // Each copy of the list takes 320 KB (20,000 values of 16 bytes): 200 copies would
    // take 64 MB.
    let peak_kib: u64 = out.read("peak.txt").trim().parse().expect("VmHWM in kB");
    assert!(
        peak_kib < 48 * 1024,
        "peak RSS {peak_kib} kB: the procs hold a copy of the list each"
    );
}

#[test]
fn an_error_in_a_closure_names_where_the_closure_is_not_the_call_that_handed_it_over() {
    // Every frame read `in call to closure at main.rhai:1:1`: the position of the
    // `proc(...)` call, not of the closure, whatever kind of closure failed.
    let cases = [
        (
            "proc(\"a\", #{}, |ctx| {\n let x = 1;\n x.foo();\n});",
            "main.rhai:3:4",
            "main.rhai:1:16",
        ),
        (
            "proc(\"a\", #{ deps: [\"b\", |ctx| 1.foo()] }, || 1);\nproc(\"b\", || 1);",
            "main.rhai:1:34",
            "main.rhai:1:26",
        ),
        (
            "proto(\"t::[v]\", #{ arg_choices: #{ v: |ctx|\n  1.foo() } }, |ctx, v| v);\nrun(\"t::*\");",
            "main.rhai:2:5",
            "main.rhai:1:39",
        ),
        (
            "proto(\"t::[v]\", #{ arg_choices: |ctx| 1.foo() }, |ctx, v| v);\nrun(\"t::*\");",
            "main.rhai:1:41",
            "main.rhai:1:33",
        ),
        (
            "proc(\"a\", #{ inputs: [|ctx| 1.foo()] }, || 1);\nrun(\"a\");",
            "main.rhai:1:31",
            "main.rhai:1:23",
        ),
        (
            "let f = |ctx| 1.foo();\nproc(\"a\", #{ outputs: f }, || 1);\nrun(\"a\");",
            "main.rhai:1:17",
            "main.rhai:1:9",
        ),
        ("defer(|| 1.foo());", "main.rhai:1:12", "main.rhai:1:7"),
    ];
    for (script, error, closure) in cases {
        let out = test().script(script).args(&["a"]).run();
        let text = format!("{}{}", out.stdout, out.stderr);
        assert!(
            text.contains(&format!("{error}: function not found: foo(an integer)"))
                && text.contains(&format!("in the closure at {closure}")),
            "{}",
            out.describe()
        );
        assert!(!text.contains("in call to closure"), "{}", out.describe());
    }
}

/// A sort comparator is a closure too. Rhai's own `sort` ignored what it threw and any
/// value that is not an integer or a bool (the float `x - y` of two floats), ordering
/// those pairs by type instead: the array came back unsorted, with no error.
#[test]
fn a_sort_comparator_that_throws_or_gives_no_order_is_an_error() {
    let out = test()
        .script("let a = [3, 1, 2];\na.sort(|x, y| throw \"bad comparator\");\nprint(a);\n")
        .run();
    out.code(2)
        .err_has("main.rhai:2:15: bad comparator")
        .out_lacks("[3, 1, 2]");
    let out = test()
        .script("fn cmp(x, y) { throw \"bad function\" }\nlet a = [3, 1, 2];\na.sort(\"cmp\");\n")
        .run();
    out.code(2).err_has("main.rhai:1:16: bad function");
    let out = test()
        .script("let a = [3.5, 1.5];\na.sort_by(|x, y| x - y);\nprint(a);\n")
        .run();
    out.code(2).err_has(
        "the comparator of sort() must return an integer (negative: before, 0: the same, positive: after) or a bool (true: before), not the float 2.0",
    );
    let out = test()
        .script(
            r#"proc("a", || 1);
proc("p", |ctx| { let a = [2, 1]; a.sort(|x, y| if state("a") == "SUCCEEDED" { x - y } else { throw "a has not run" }); a });
run("p");
try { wait("p"); } catch (e) { print("p threw"); }
proc("q", #{ deps: [|ctx| { let a = ["a", "b"]; a.sort(|x, y| { run("a"); 0 }); a }] }, || 1);
"#,
        )
        .run();
    out.code(2)
        .out_has("FAILED     p")
        .out_has("a has not run")
        .line("p threw")
        .err_has("a dependency closure cannot call run()");
}

#[test]
fn a_sort_comparator_may_call_the_api_and_any_order_it_gives_ends() {
    let out = test()
        .script(
            r#"proc("a", || 7);
proc("b1", || 0);
run("a");
wait("a");
proc("b", #{ deps: [|ctx| {
    let names = ["b1", "a"];
    names.sort(|x, y| { exec(["true"]); if state(x) == "SUCCEEDED" { -1 } else { 1 } });
    names[0]
}] }, |ctx| {
    let v = [3, 1, 2];
    v.sort(|x, y| { sleep(0); results()["a"] * (x - y) });
    v
});
print("b=" + wait(run("b")[0]));
let seed = [1];
let v = [];
for i in 0..300 { v.push(i); }
v.sort(|x, y| { seed[0] = (seed[0] * 1103515245 + 12345) % 2147483648; seed[0] % 3 - 1 });
v.sort(|x, y| x < y);
let w = [];
for i in 0..300 { w.push(i); }
print("same items: " + (v == w));
"#,
        )
        .run();
    out.ok().line("b=[1, 2, 3]").line("same items: true");
}

/// An option that takes no closure names a closure given to it as one: a duration read
/// `invalid duration Fn(anon$8b3903f2083a7c53)`, the closure's internal name, and an
/// executor `not Fn`.
#[test]
fn an_option_that_takes_no_closure_names_a_closure_given_to_it() {
    for (script, message) in [
        (
            r#"proc("b", #{ timeout: |ctx| 5 }, || 1);"#,
            "proc \"b\": `timeout`: invalid duration (a closure): expected seconds",
        ),
        (
            r#"proc("b", #{ outputs: [#{ file: "x", max_age: || "1d" }] }, || 1);"#,
            "`outputs` max_age: invalid duration (a closure): expected seconds",
        ),
        (
            r#"exec(["true"], #{ timeout: || 1 });"#,
            "option `timeout`: invalid duration (a closure): expected seconds",
        ),
        (
            r#"proc("b", #{ executor: |ctx| "local" }, || 1);"#,
            "proc \"b\": `executor` must be a name, not a closure",
        ),
    ] {
        test().script(script).run().code(2).err_has(message);
    }
}

/// A cleanup's `wait` that throws because a proc failed said "the script threw
/// prun::script::values::ProcFailure" (the Rust type of what it threw), not which proc.
#[test]
fn a_failing_wait_in_a_deferred_cleanup_names_the_proc() {
    let out = test()
        .script(
            r#"proc("f", #{ shell: "exit 2" });
run("f");
defer(|| wait());
defer(|| wait("f"));
"#,
        )
        .run();
    out.code(1)
        .err_has("deferred cleanup (main.rhai:4:7) failed: main.rhai:4:10: proc \"f\" FAILED: command `exit 2` exited with code 2")
        .err_has("deferred cleanup (main.rhai:3:7) failed: main.rhai:3:10: 1 proc(s) failed: \"f\" (FAILED)");
}

/// A `now: true` proc whose dependencies need a closure's answer (a glob over a proto
/// with an `arg_choices` closure) was never scheduled: the procs to schedule were taken
/// from the queue before the answer was asked for, and the retry found the queue empty.
/// The run said "nothing to run" and exited 0, or `wait` said it was never scheduled.
#[test]
fn a_now_proc_whose_dependencies_need_a_closure_is_scheduled() {
    let out = test()
        .script(
            r#"proto("t::[v]", #{ arg_choices: #{ v: |ctx| ["x", "y"] } }, |ctx, v| v);
proc("o", #{ now: true, deps: ["t::*"] }, |ctx| ctx.results.len());
"#,
        )
        .run();
    out.ok().summary_is("prun: 3 succeeded");
    let out = test()
        .script(
            r#"proto("t::[v]", #{ arg_choices: |ctx| #{ v: ["x"] } }, |ctx, v| v);
proc("o", #{ now: true, deps: ["t::*"] }, |ctx| ctx.results);
proc("a", || 1);
run("a");
print("o=" + wait("o"));
proc("b", |ctx| { proc("n", #{ now: true, deps: ["t::*"] }, || "n"); ctx.wait("n") });
print("b=" + wait(run("b")[0]));
"#,
        )
        .run();
    out.ok()
        .line(r#"o=#{"t::x": "x"}"#)
        .line("b=n")
        .summary_is("prun: 5 succeeded");
}

/// When such a closure failed, the `now: true` procs were dropped without a word: the
/// run exited 0.
#[test]
fn a_now_proc_whose_dependency_closure_fails_is_an_error() {
    let out = test()
        .script(
            r#"proto("t::[v]", #{ arg_choices: |ctx| { let q = (); q.nope() } }, |ctx, v| v);
proc("o", #{ now: true, deps: ["t::*"] }, |ctx| 1);
"#,
        )
        .run();
    out.code(2).err_has(
        "the arg_choices closure of \"t::[v]\" failed: main.rhai:1:55: function not found: nope",
    );
    assert!(!out.stdout.contains("nothing to run"), "{}", out.describe());
    // `prun check` finds it too (it said "ok").
    let out = test()
        .script(
            r#"proto("t::[v]", #{ arg_choices: |ctx| { let q = (); q.nope() } }, |ctx, v| v);
proc("o", #{ now: true, deps: ["t::*"] }, |ctx| 1);
"#,
        )
        .before(&["check"])
        .run();
    out.code(2)
        .err_has("the arg_choices closure of \"t::[v]\" failed: main.rhai:1:55")
        .err_has("prun: check: 1 problem found");
    // Defined by a proc's body, the body fails naming the closure, at its
    // `proc` call or at its wait for it (whichever scheduled it: the top level may have
    // been running then, and `now` procs wait for it to run or block).
    let out = test()
        .script(
            r#"proto("t::[v]", #{ arg_choices: |ctx| { let q = (); q.nope() } }, |ctx, v| v);
proc("b", |ctx| { proc("n", #{ now: true, deps: ["t::*"] }, || "n"); ctx.wait("n") });
run("b");
try { wait("b"); } catch (e) { print("b failed"); }
"#,
        )
        .run();
    // Scheduling `n` met the failure, so nothing was scheduled (see
    // `failures::a_run_that_meets_a_graph_fault_schedules_nothing`): `n` has no report.
    out.code(1)
        .line("b failed")
        .not_reported("n")
        .out_has("FAILED     b (")
        .out_has("the arg_choices closure of \"t::[v]\" failed: main.rhai:1:55");
}

/// A `now: true` proc defined by a cleanup, after the run, was dropped without a word,
/// where `run` there is an error.
#[test]
fn a_now_proc_defined_by_a_deferred_cleanup_is_an_error() {
    let out = test()
        .script(
            r#"defer(|| { proc("late", #{ now: true, shell: "touch late-ran" }); print("not reached"); });"#,
        )
        .run();
    out.ok()
        .err_has("deferred cleanup (main.rhai:1:7) failed: main.rhai:1:12: the run has ended: a deferred cleanup cannot call proc()")
        .out_lacks("not reached");
    assert!(!out.exists("late-ran"), "{}", out.describe());
}

/// `exit()` (a success) in a closure evaluated for the core read "NOT AN ERROR - exit
/// value", Rhai's text, at `main.rhai:1:1`; `exit(3)` there was named.
#[test]
fn exit_in_a_closure_evaluated_for_the_core_names_the_rule() {
    for (script, kind, code) in in_each_scheduler_closure("exit()") {
        let out = test().script(&script).run();
        out.code(code);
        let text = format!("{}{}", out.stdout, out.stderr);
        assert!(
            text.contains(&format!(
                "{kind} cannot call exit(): it must only compute its value"
            )) && !text.contains("NOT AN ERROR"),
            "{kind}: {}",
            out.describe()
        );
    }
}

/// Each function that schedules, waits or defines, in each kind of closure evaluated for
/// the core: the error names the kind and the function.
#[test]
fn every_closure_evaluated_for_the_core_refuses_every_function_that_schedules_waits_or_defines() {
    for (call, name) in [
        (r#"run("a")"#, "run"),
        (r#"start("a")"#, "start"),
        (r#"create("a")"#, "create"),
        (r#"wait("a")"#, "wait"),
        ("wait()", "wait"),
        (r#"proc("q", || 1)"#, "proc"),
        (r#"proto("q::[x]", |ctx, x| x)"#, "proto"),
        ("set_params(#{ k: 1 })", "set_params"),
    ] {
        for (script, kind, code) in in_each_scheduler_closure(call) {
            let out = test().script(&script).run();
            out.code(code);
            let text = format!("{}{}", out.stdout, out.stderr);
            assert!(
                text.contains(&format!(
                    "{kind} cannot call {name}(): it must only compute its value"
                )),
                "{kind} calling {call}: {}",
                out.describe()
            );
        }
    }
}

/// `set_options` of a setting the core does not keep (`kill_grace`, `output`, or
/// `parallel` under `-j`) was taken in such a closure without a word, where the other
/// settings were refused: the rule held only for some keys.
#[test]
fn set_options_in_a_closure_evaluated_for_the_core_names_the_rule() {
    for stmt in [
        r#"set_options(#{ kill_grace: "1s" })"#,
        r#"set_options(#{ output: "log" })"#,
        "set_options(#{ parallel: 3 })",
        "set_options(#{ keep_runs: 5 })",
    ] {
        for (script, kind, code) in in_each_scheduler_closure(stmt) {
            let out = test().args(&["-j", "2"]).script(&script).run();
            out.code(code);
            let text = format!("{}{}", out.stdout, out.stderr);
            assert!(
                text.contains(&format!(
                    "{kind} cannot call set_options(): it must only compute its value"
                )),
                "{kind} calling {stmt}: {}",
                out.describe()
            );
        }
    }
}

/// A cleanup runs after the run's procs have ended: it reads their states and results,
/// runs commands (a sort comparator's calls included), sleeps and waits for a proc that
/// has ended, after a failed proc as after a run that succeeded.
#[test]
fn a_deferred_cleanup_can_call_state_results_exec_shell_sleep_and_wait() {
    let out = test()
        .script(
            r#"proc("a", || 7);
proc("f", #{ shell: "exit 2" });
run(["a", "f"]);
defer(|| {
    let v = [2, 1];
    v.sort(|x, y| { exec(["true"]); if state("a") == "SUCCEEDED" { x - y } else { y - x } });
    let out = exec(["echo", "e"]).stdout + shell("echo s").stdout + pipe([["echo", "p"], ["cat"]]).stdout;
    out.replace("\n", "");
    sleep(0.01);
    print(`cleanup: ${state("a")} ${state("f")} ${results()["a"]} ${wait("a")} ${v} ${out}`);
});
"#,
        )
        .run();
    out.code(1)
        .line("cleanup: SUCCEEDED FAILED 7 7 [1, 2] esp")
        .summary_is("prun: 1 succeeded, 1 failed");
}

/// A dependency closure is called while its proc is being made: `state` of that proc
/// said `no proc named "p" exists` (of a proto's: "create it first"), though the script
/// was defining or creating it.
#[test]
fn a_dependency_closure_may_ask_the_state_of_its_own_proc() {
    let out = test()
        .script(
            r#"proc("p", #{ deps: [|ctx| { print("p is " + state(ctx.name)); [] }] }, || 1);
proto("t::[v]", #{ deps: [|ctx, v| { print(ctx.name + " is " + state(ctx.name)); [] }] }, |ctx, v| v);
run(["p", "t::x"]);
"#,
        )
        .run();
    out.ok()
        .line("p is IDLE")
        .line("t::x is IDLE")
        .summary_is("prun: 2 succeeded");
}

#[test]
fn a_retried_body_gets_the_procs_and_protos_its_first_attempt_defined() {
    // The second attempt's `proc("inner", ...)` was a duplicate, so a body that defines
    // procs could never be retried. Defining the same name twice in one attempt still is
    // an error.
    let out = test()
        .script(
            r#"
proc("outer", #{ retries: 1 }, |ctx| {
    proc("inner", #{ cmd: ["sh", "-c", "echo x >> inner.runs"] });
    proto("part::[n]", |ctx, n| `part ${n}`);
    ctx.run(["inner", "part::1"]);
    let r = ctx.wait(["inner", "part::1"]);
    if file_info("tried") == () { write_file("tried", ""); throw "first attempt fails"; }
    r["part::1"]
});
proc("twice", |ctx| {
    proc("t", || 1);
    proc("t", || 2);
});
run(["outer", "twice"]);
"#,
        )
        .run();
    out.code(1)
        .line("RETRYING   outer (attempt 1 failed: main.rhai:7:60: first attempt fails)")
        .proc_state("SUCCEEDED", "outer")
        .proc_state("SUCCEEDED", "inner");
    assert_eq!(out.read("inner.runs"), "x\n", "inner ran once");
    let twice = out.proc_line("FAILED", "twice");
    assert!(twice.contains(r#"proc "t" already exists"#), "{twice}");
}

#[test]
fn an_inputs_or_outputs_closure_error_names_which_closure_of_which_proc() {
    // The error read `the inputs/outputs closure failed: ...`: neither which of the two
    // closures nor whose, which a report or a `--json` error shown alone leaves unsaid.
    let out = test()
        .script(
            r#"
proc("a", #{ inputs: [|ctx| 1.foo()] }, || 1);
proc("b", #{ outputs: |ctx| throw "boom" }, || 1);
proc("c", #{ inputs: |ctx| 5 }, || 1);
proc("d", #{ outputs: [|ctx| #{}] }, || 1);
"#,
        )
        .args(&["a", "b", "c", "d"])
        .run();
    out.code(1)
        .out_has("the inputs closure of \"a\" failed: main.rhai:2:31: function not found")
        .out_has("in the closure at main.rhai:2:23")
        .out_has("the outputs closure of \"b\" failed: main.rhai:3:29: boom")
        .out_has("in the closure at main.rhai:3:23")
        .out_has("the inputs closure of \"c\" failed: it must return a path or an array of paths, not an integer (main.rhai:4:22)")
        .out_has("the outputs closure of \"d\" failed: it must return a path or an array of paths, not a map (main.rhai:5:24)")
        .out_lacks("inputs/outputs");
}

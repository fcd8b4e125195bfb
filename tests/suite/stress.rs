//! Many procs: correctness, not timing.

use crate::support::Test;

#[test]
fn thousands_of_closure_procs_and_hundreds_of_commands() {
    let out = Test::new()
        .script(
            r#"
for i in 0..2000 { proc(`c${i}`, |ctx| ctx.name.len()); }
for i in 0..300 { proc(`t${i}`, #{ cmd: ["true"] }); }
proc("sum", #{ deps: |ctx| { let d = []; for i in 0..2000 { d.push(`c${i}`); } d } }, |ctx| {
    let n = 0;
    for v in ctx.results.values() { n += v; }
    n
});
run("c*");
run("t*");
run("sum");
print("sum=" + wait("sum"));
// `results()` holds the procs ended so far: the commands may still run until `wait()`.
wait();
print("results=" + results().len());
"#,
        )
        .run();
    // c0..c9 have 2 chars, c10..c99 3, c100..c999 4, c1000..c1999 5.
    let want = 10 * 2 + 90 * 3 + 900 * 4 + 1000 * 5;
    out.ok()
        .line(&format!("sum={want}"))
        .line("results=2301")
        .summary_is("prun: 2301 succeeded");
    assert_eq!(out.count("SUCCEEDED"), 2301);
    assert_eq!(out.count("FAILED"), 0);
}

#[test]
fn failure_at_the_head_of_a_long_chain() {
    let out = Test::new()
        .script(
            r#"
proc("p0", #{ cmd: ["false"] });
for i in 1..5000 { proc(`p${i}`, #{ deps: [`p${i - 1}`] }, |ctx| 1); }
run("p4999");
"#,
        )
        .run();
    out.code(1)
        .line(r#"FAILED_DEP p4999: dependency "p4998" failed"#)
        .summary_is("prun: 0 succeeded, 1 failed, 4999 not run (failed dependency)");
}

#[test]
fn long_successful_chain() {
    let out = Test::new()
        .script(
            r#"
for i in 0..3000 {
    let deps = if i == 0 { [] } else { [`p${i - 1}`] };
    proc(`p${i}`, #{ deps: deps }, |ctx| { let n = 0; for v in ctx.results.values() { n = v + 1; } n });
}
run("p2999");
print("last=" + wait("p2999"));
"#,
        )
        .run();
    out.ok()
        .line("last=2999")
        .summary_is("prun: 3000 succeeded");
}

#[test]
fn summary_comes_after_every_proc_line() {
    // A cascade reports thousands of lines at once; the summary must still be the last
    // line. (Run a few times: the order depends on which thread prints first.)
    for _ in 0..3 {
        let out = Test::new()
            .script(
                r#"
proc("p0", #{ cmd: ["false"] });
for i in 1..3000 { proc(`p${i}`, #{ deps: [`p${i - 1}`] }, |ctx| 1); }
run("p2999");
"#,
            )
            .run();
        out.code(1)
            .summary_is("prun: 0 succeeded, 1 failed, 2999 not run (failed dependency)");
        assert_eq!(
            out.stdout
                .lines()
                .filter(|l| l.starts_with("prun: "))
                .count(),
            1
        );
    }
}

#[test]
fn a_proc_with_thousands_of_dependencies_counts_each_once() {
    // Past a few dependencies they are told apart by a set: a name listed twice, a glob
    // covering names listed too and a closure repeating them still make one edge each.
    let out = Test::new()
        .script(
            r#"
let choices = [];
for i in 0..3000 { choices.push(`${i}`); }
proto("x::[i]", #{ arg_choices: #{ i: choices } }, |ctx, i| parse_int(i));
let names = [];
for i in 0..3000 { proc(`p${i}`, || 1); names.push(`p${i}`); names.push(`p${i}`); }
proc("all", #{ deps: ["x::*", "x::7", "x::7", |ctx| ["x::9", "p3"]] + names }, |ctx| {
    let sum = 0;
    for v in ctx.results.values() { sum += v; }
    `${ctx.results.len()} results, sum ${sum}`
});
run("all");
print(wait("all"));
"#,
        )
        .run();
    // x::0..x::2999 give 0 + 1 + ... + 2999; p0..p2999 give 1 each.
    let sum = 2999 * 3000 / 2 + 3000;
    out.ok()
        .line(&format!("6000 results, sum {sum}"))
        .summary_is("prun: 6001 succeeded")
        .proc_state("SUCCEEDED", "x::7");
}

#[test]
fn a_chain_of_procs_made_by_dependency_closures() {
    // Each proc of the chain exists only once the closure of the one above it has named
    // it: made level by level, 2,000 levels deep.
    let out = Test::new()
        .script(
            r#"
proto("n::[i]", #{ deps: [|ctx, i| if i == "0" { [] } else { `n::${parse_int(i) - 1}` }] },
    |ctx, i| { let n = 0; for v in ctx.results.values() { n = v + 1; } n });
run("n::1999");
print("last=" + wait("n::1999"));
"#,
        )
        .run();
    out.ok()
        .line("last=1999")
        .summary_is("prun: 2000 succeeded");
}

#[test]
fn thousands_of_names_of_a_proto_with_listed_choices_made_one_by_one() {
    // Each name is checked against a list of 3,000 choices (a set once made).
    let out = Test::new()
        .script(
            r#"
let choices = [];
for i in 0..3000 { choices.push(`v${i}`); }
proto("x::[i]", #{ arg_choices: #{ i: choices } }, |ctx, i| 1);
for i in 0..3000 { run(`x::v${i}`); }
print("made=" + wait().len());
run("x::v3000");
"#,
        )
        .run();
    out.code(2).line("made=3000").err_has(
        "value \"v3000\" for placeholder [i] of proto \"x::[i]\" is not one of the 3000 allowed values: v0, v1, v2, v3, v4, v5, v6, v7, v8, v9, ...",
    );
}

#[test]
fn thousands_of_procs_scheduled_before_their_dependencies_are_defined() {
    // Each waits, listed once, until the top level defines its dependency or ends.
    let out = Test::new()
        .script(
            r#"
for i in 0..3000 { proc(`a${i}`, #{ deps: [`b${i}`] }, |ctx| ctx.results.len()); }
run("a*");
for i in 1..3000 { proc(`b${i}`, || 1); }
"#,
        )
        .run();
    out.code(1)
        .out_has(r#"FAILED_DEP a0: dependency "b0" missing; did you mean"#)
        .summary_is("prun: 5998 succeeded, 1 not run (failed dependency)");
}

/// Each of 30,000 procs has its own `when_scheduled` target and its own rdep: the rules
/// that apply to a name are found without looking at every rule (it compared each of the
/// 90,000 names with every rule, a few hundred seconds here, past the bound).
#[test]
fn thousands_of_when_scheduled_and_rdep_rules_each_find_their_own_proc() {
    let out = Test::new()
        .timeout(std::time::Duration::from_secs(120))
        .before(&["--no-db"])
        .script(
            r#"
let n = 30000;
for i in 0..n { proc(`p${i}`, |ctx| ctx.results.keys()); }
for i in 0..n { proc(`w${i}`, #{ rdeps: [when_scheduled(`p${i}`)] }, || 1); }
for i in 0..n { proc(`q${i}`, #{ rdeps: [`p${i}`] }, || 1); }
run("w*");
let r = wait();
print(`p7 after ${r["p7"]}`);
print(`p29999 after ${r["p29999"]}`);
"#,
        )
        .run();
    out.ok()
        .line(r#"p7 after ["q7", "w7"]"#)
        .line(r#"p29999 after ["q29999", "w29999"]"#)
        .summary_is("prun: 90000 succeeded");
}

//! Dependencies, results passed between procs, `now`, skipping, `results()`/`state()`.

use crate::support::Test;

#[test]
fn dependency_ends_before_dependent_starts() {
    // Declared in reverse so registration order cannot explain the order.
    let out = Test::new()
        .script(
            r#"
proc("c", #{ deps: ["b"], JOB(c) });
proc("b", #{ deps: ["a"], JOB(b, 0.05) });
proc("a", #{ JOB(a, 0.1) });
run("c");
"#,
        )
        .run();
    out.ok()
        .proc_state("SUCCEEDED", "a")
        .proc_state("SUCCEEDED", "b")
        .proc_state("SUCCEEDED", "c")
        .summary_is("prun: 3 succeeded");
    let ev = out.events();
    ev.before("a", "b");
    ev.before("b", "c");
}

#[test]
fn chain_of_fifty() {
    let out = Test::new()
        .script(
            r#"
for i in 0..50 {
    let deps = if i == 0 { [] } else { [`p${i - 1}`] };
    proc(`p${i}`, #{ deps: deps }, |ctx| {
        shell("sh job.sh " + ctx.name);
        let n = 0;
        for v in ctx.results.values() { n = v + 1; }
        n
    });
}
run("p49");
print("last=" + wait("p49"));
"#,
        )
        .run();
    out.ok().line("last=49").summary_is("prun: 50 succeeded");
    let ev = out.events();
    for i in 1..50 {
        ev.before(&format!("p{}", i - 1), &format!("p{i}"));
    }
}

#[test]
fn diamond_runs_shared_dep_once_and_passes_results() {
    let out = Test::new()
        .script(
            r#"
proc("d", #{ deps: ["b", "c"] }, |ctx| {
    shell("sh job.sh d");
    print("d sees " + ctx.results.keys().len() + " results");
    ctx.results.b + ctx.results.c
});
proc("b", #{ deps: ["a"] }, |ctx| { shell("sh job.sh b 0.05"); ctx.results.a * 10 });
proc("c", #{ deps: ["a"] }, |ctx| { shell("sh job.sh c"); ctx.results.a * 100 });
proc("a", |ctx| { shell("sh job.sh a 0.05"); 1 });
run("d");
print("d=" + wait("d"));
"#,
        )
        .run();
    out.ok()
        .line("d=110")
        .line("d sees 2 results")
        .summary_is("prun: 4 succeeded");
    let ev = out.events();
    assert_eq!(ev.runs("a"), 1, "{}", ev.context());
    ev.before("a", "b");
    ev.before("a", "c");
    ev.before("b", "d");
    ev.before("c", "d");
}

#[test]
fn proc_returning_a_map() {
    let out = Test::new()
        .script(
            r#"
proc("m", |ctx| #{ x: 1, y: "two", list: [1, 2, 3] });
proc("u", #{ deps: ["m"] }, |ctx| ctx.results.m.y + ctx.results.m.x + ctx.results.m.list.len());
run("u");
let r = wait("m");
print("y=" + r.y);
print("u=" + wait("u"));
print("results.m.x=" + results().m.x);
"#,
        )
        .run();
    out.ok().line("y=two").line("u=two13").line("results.m.x=1");
}

#[test]
fn now_schedules_at_definition_and_others_stay_idle() {
    let out = Test::new()
        .script(
            r#"
proc("n", #{ now: true, JOB(n) });
proc("idle", #{ JOB(idle) });
"#,
        )
        .run();
    out.ok()
        .proc_state("SUCCEEDED", "n")
        .not_reported("idle")
        .summary_is("prun: 1 succeeded");
    let ev = out.events();
    assert!(ev.ran("n") && !ev.ran("idle"), "{}", ev.context());
}

#[test]
fn skip_and_no_change_are_skipped_and_dependents_run() {
    let out = Test::new()
        .script(
            r#"
proc("s", |ctx| { throw skip("nothing to do"); });
proc("nc", |ctx| { throw no_change("same as before"); });
proc("after", #{ deps: ["s", "nc"] }, |ctx| { shell("sh job.sh after"); "ran" });
run("after");
wait();
print("state s=" + state("s") + " nc=" + state("nc") + " after=" + state("after"));
"#,
        )
        .run();
    out.ok()
        .proc_state("SKIPPED", "s")
        .proc_state("SKIPPED", "nc")
        .proc_state("SUCCEEDED", "after")
        .line("state s=SKIPPED nc=SKIPPED after=SUCCEEDED")
        .summary_is("prun: 1 succeeded, 2 skipped");
    assert!(out.proc_line("SKIPPED", "s").contains("nothing to do"));
    assert!(out.events().ran("after"));
}

#[test]
fn wait_forms_and_results() {
    let out = Test::new()
        .script(
            r#"
proc("a", |ctx| "A");
proc("b", |ctx| "B");
proc("x::1", |ctx| 1);
proc("x::2", |ctx| 2);
proc("idle", |ctx| "never");
print("state idle=" + state("idle"));
run(["a", "b"]);
let m = wait(["a", "b"]);
print("array: " + m.a + m.b + " len=" + m.len());
run("x::*");
let g = wait("x::*");
print("glob: " + g["x::1"] + g["x::2"] + " len=" + g.len());
let all = wait();
print("all len=" + all.len());
print("results len=" + results().len() + " b=" + results().b);
print("state a=" + state("a"));
"#,
        )
        .run();
    out.ok()
        .line("state idle=IDLE")
        .line("array: AB len=2")
        .line("glob: 12 len=2")
        .line("all len=4")
        .line("results len=4 b=B")
        .line("state a=SUCCEEDED")
        .not_reported("idle")
        .summary_is("prun: 4 succeeded");
}

#[test]
fn script_print_goes_to_stdout_and_ctx_fields() {
    let out = Test::new()
        .script(
            r#"
set_params(#{ region: "eu" });
proc("p", |ctx| {
    print("name=" + ctx.name + " region=" + ctx.params.region + " args=" + ctx.args.len());
});
run("p");
"#,
        )
        .run();
    out.ok().line("name=p region=eu args=0");
}

#[test]
fn create_makes_idle_procs_and_start_schedules_them() {
    let out = Test::new()
        .script(
            r#"
proto("build::[env]", #{ arg_choices: #{ env: ["dev", "prod"] } }, |ctx, env| shell("sh job.sh " + ctx.name));
proc("plain", #{ JOB(plain) });
let names = create("build::*");
print("created=" + names);
print("state=" + state("build::dev"));
print("again=" + create("build::dev"));
start("build::prod");
start(["plain"]);
wait(["build::prod", "plain"]);
print("dev still " + state("build::dev"));
try { start("nope"); } catch (e) { print("start unknown: " + e); }
"#,
        )
        .run();
    out.ok()
        .line(r#"created=["build::dev", "build::prod"]"#)
        .line("state=IDLE")
        .line(r#"again=["build::dev"]"#)
        .line("dev still IDLE")
        .proc_state("SUCCEEDED", "build::prod")
        .proc_state("SUCCEEDED", "plain")
        .not_reported("build::dev")
        .out_has("start unknown: ")
        .summary_is("prun: 2 succeeded");
    let unknown = out
        .stdout
        .lines()
        .find(|l| l.starts_with("start unknown: "))
        .unwrap();
    assert!(unknown.contains("\"nope\""), "{unknown}");
    assert!(!out.events().ran("build::dev"));
}

#[test]
fn run_is_idempotent_for_a_scheduled_proc() {
    let out = Test::new()
        .script(
            r#"
proc("a", #{ JOB(a, 0.05) });
run("a");
run("a");
wait("a");
run("a");
"#,
        )
        .run();
    out.ok().summary_is("prun: 1 succeeded");
    assert_eq!(out.events().runs("a"), 1);
}

#[test]
fn log_dir_option_puts_logs_there() {
    let out = Test::new()
        .script(
            r#"
set_options(#{ log_dir: "mylogs" });
proc("bad", #{ cmd: ["sh", "-c", "echo in the log; exit 1"] });
run("bad");
"#,
        )
        .run();
    out.code(1).line("           | in the log");
    let header = out
        .stdout
        .lines()
        .find(|l| l.contains("last lines of "))
        .unwrap_or_else(|| panic!("no log header\n{}", out.describe()));
    let path = header
        .trim()
        .strip_prefix("last lines of ")
        .and_then(|p| p.strip_suffix(':'))
        .unwrap();
    // A relative log_dir is relative to the directory prun runs in.
    let path = out.path(path);
    assert!(
        path.starts_with(out.path("mylogs")),
        "log {} is not under mylogs\n{}",
        path.display(),
        out.describe()
    );
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.contains("in the log"), "{text}");
}

#[test]
fn unknown_set_options_key_and_duplicate_proc_are_script_errors() {
    let out = Test::new().script("set_options(#{ paralel: 2 });\n").run();
    out.code(2).err_has("paralel").err_has("main.rhai:1:1");
    let out = Test::new()
        .script("proc(\"a\", |ctx| 1);\nproc(\"a\", |ctx| 2);\n")
        .run();
    out.code(2)
        .err_has("main.rhai:2:1: proc \"a\" already exists (defined at main.rhai:1:1)");
    // A name a proto made is taken too.
    let out = Test::new()
        .script("proto(\"b::[x]\", |ctx, x| x);\nrun(\"b::one\");\nproc(\"b::one\", || 1);\n")
        .run();
    out.code(2)
        .err_has("main.rhai:3:1: proc \"b::one\" already exists (made from proto \"b::[x]\")");
    // Procs declared alike share one definition; the same name twice is still an error.
    let out = Test::new()
        .script("for i in 0..2 {\n  proc(\"a\", #{ cmd: [\"true\"] });\n}\n")
        .run();
    out.code(2).err_has("\"a\"").err_has("main.rhai:2:3");
}

#[test]
fn a_start_glob_matching_only_names_a_proto_would_make_says_to_create_them() {
    let out = Test::new()
        .script(
            r#"
proto("p::[n]", #{ arg_choices: #{ n: ["1", "2"] } }, |ctx, n| n);
start("p::*");
"#,
        )
        .run();
    out.code(2).err_has(
        r#"main.rhai:3:1: no proc matches "p::*"; it would be made from proto "p::[n]": create it first (run, create or ctx.run)"#,
    );
}

//! Reverse dependencies: plain rdeps and `when_scheduled`.

use crate::support::Test;

#[test]
fn plain_rdep_is_injected_only_when_the_target_is_scheduled() {
    let out = Test::new()
        .script(
            r#"
proc("build", #{ JOB(build) });
proc("other", #{ JOB(other) });
proc("setup", #{ rdeps: ["build"], JOB(setup, 0.1) });
run("other");
wait();
print("after other: setup=" + state("setup"));
run("build");
"#,
        )
        .run();
    out.ok()
        .line("after other: setup=IDLE")
        .proc_state("SUCCEEDED", "setup")
        .proc_state("SUCCEEDED", "build")
        .summary_is("prun: 3 succeeded");
    let ev = out.events();
    ev.before("setup", "build");
    assert_eq!(ev.runs("setup"), 1);
}

#[test]
fn rdep_pattern_matches_proto_instances() {
    let out = Test::new()
        .script(
            r#"
proto("build::[env]", |ctx, env| shell("sh job.sh " + ctx.name));
proc("setup", #{ rdeps: ["build::[env]"], JOB(setup, 0.05) });
run("build::dev");
run("build::prod");
"#,
        )
        .run();
    out.ok().proc_state("SUCCEEDED", "setup");
    let ev = out.events();
    ev.before("setup", "build::dev");
    ev.before("setup", "build::prod");
}

#[test]
fn when_scheduled_schedules_the_target_after_the_declarer() {
    let out = Test::new()
        .script(
            r#"
proc("main", #{ JOB(main) });
proc("pre", #{ rdeps: [when_scheduled("main")], JOB(pre, 0.1) });
run("pre");
"#,
        )
        .run();
    out.ok()
        .proc_state("SUCCEEDED", "pre")
        .proc_state("SUCCEEDED", "main")
        .summary_is("prun: 2 succeeded");
    out.events().before("pre", "main");
}

#[test]
fn when_scheduled_fills_placeholders_and_creates_the_target() {
    let out = Test::new()
        .script(
            r#"
proto("deploy::[env]", |ctx, env| shell("sh job.sh " + ctx.name));
proto("migrate::[env]", #{ rdeps: [when_scheduled("deploy::[env]")] },
      |ctx, env| shell("sh job.sh " + ctx.name + " 0.1"));
run("migrate::prod");
"#,
        )
        .run();
    out.ok()
        .proc_state("SUCCEEDED", "migrate::prod")
        .proc_state("SUCCEEDED", "deploy::prod")
        .summary_is("prun: 2 succeeded");
    out.events().before("migrate::prod", "deploy::prod");
}

#[test]
fn when_scheduled_after_the_target_finished_is_too_late() {
    let out = Test::new()
        .script(
            r#"
proc("main", #{ JOB(main) });
proc("pre", #{ rdeps: [when_scheduled("main")], JOB(pre) });
run("main");
wait("main");
run("pre");
"#,
        )
        .run();
    out.code(2)
        .err_has("too late")
        .err_has("\"pre\"")
        .err_has("\"main\"")
        .err_has("main.rhai:6:1");
}

#[test]
fn when_scheduled_on_a_target_that_is_waiting_adds_the_dependency() {
    // -j 1: `blocker` holds the only slot, so `main` is WANTED (queued) when `pre` is run.
    let out = Test::new()
        .args(&["-j", "1"])
        .script(
            r#"
proc("blocker", #{ cmd: ["sh", "-c", "sh job.sh blocker 0.1"] });
proc("main", #{ JOB(main) });
proc("pre", #{ rdeps: [when_scheduled("main")], JOB(pre) });
run("blocker");
run("main");
print("main is " + state("main"));
run("pre");
"#,
        )
        .run();
    out.ok()
        .line("main is WANTED")
        .summary_is("prun: 3 succeeded");
    out.events().before("pre", "main");
}

/// A glob in `rdeps` (as `run` and `deps` take) would match only a proc of that very
/// name, so the declarer would silently never run first: it is a definition error that
/// shows the pattern form.
#[test]
fn a_glob_in_rdeps_is_an_error_naming_the_pattern_form() {
    let out = Test::new()
        .script(
            r#"
proc("setup", #{ rdeps: ["build::*"], shell: "echo setup" });
proto("build::[e]", #{ arg_choices: #{ e: ["a", "b"] } }, |ctx, e| e);
run("build::a");
"#,
        )
        .run();
    out.code(2).err_has(
        r#"main.rhai:2:1: proc "setup": `rdeps` entry "build::*" is a glob; rdeps takes names and [placeholder] patterns"#,
    );
    assert!(!out.events().ran("build::a"), "{}", out.describe());
}

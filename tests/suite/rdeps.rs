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

/// No proc's name is empty, so an empty entry in `deps` or `rdeps` (or an empty
/// `when_scheduled`) could only ever be missing or match nothing: a definition error,
/// not a dependency that fails at run time or a rule that silently never applies.
#[test]
fn an_empty_name_in_deps_or_rdeps_is_a_definition_error() {
    for (opts, entry) in [
        (r#"deps: [""]"#, r#"`deps` entry """#),
        (r#"rdeps: [""]"#, r#"`rdeps` entry """#),
        (
            r#"rdeps: [when_scheduled("")]"#,
            r#"`rdeps` entry when_scheduled("")"#,
        ),
    ] {
        let out = Test::new()
            .script(&format!(
                "proc(\"other\", #{{ shell: \"echo other\" }});\n\
                 proc(\"a\", #{{ {opts}, shell: \"echo a\" }});\nrun([\"a\", \"other\"]);\n"
            ))
            .run();
        out.code(2).err_has(&format!(
            r#"main.rhai:2:1: proc "a": {entry} is empty, and no proc's name is"#
        ));
        assert!(!out.events().ran("other"), "{}", out.describe());
    }
}

/// A `when_scheduled` pattern that nothing matches stays active for a proc defined later,
/// so it is only known to be inert once the top level has ended: then a run warns of it
/// (for a scheduled declarer) with the nearest names, and `prun check` reports it.
#[test]
fn a_when_scheduled_pattern_matching_nothing_is_told_of_once_the_script_defines_no_more() {
    let script = r#"
proc("deploy", #{ shell: "echo deploying" });
proc("backup", #{ rdeps: [when_scheduled("deplyo")], shell: "echo backing up" });
proto("b::[x]", #{ rdeps: [when_scheduled("tyop::[x]")], shell: "echo [x]" });
proc("idle", #{ rdeps: [when_scheduled("nothing")], shell: "echo idle" });
proc("late", #{ rdeps: [when_scheduled("later")], shell: "echo late" });
run(["backup", "late", "b::1", "b::2"]);
proc("later", #{ shell: "echo later" });
"#;
    let backup = r#"main.rhai:3:1: proc "backup": when_scheduled("deplyo") matches no proc or proto, so it never schedules anything; did you mean "deploy"?"#;
    let out = Test::new().script(script).run();
    out.ok()
        .err_has(&format!("prun: warning: {backup}"))
        .err_has(
            r#"main.rhai:4:1: proc "b::1": when_scheduled("tyop::[x]") matches no proc or proto"#,
        );
    // Once per proto, not per proc it made; none for a declarer not scheduled, nor for
    // a pattern that a proc defined after the declarer was scheduled matches.
    assert!(!out.stderr.contains("b::2"), "{}", out.describe());
    assert!(!out.stderr.contains("\"idle\""), "{}", out.describe());
    assert!(!out.stderr.contains("\"late\""), "{}", out.describe());

    let out = Test::new().script(script).before(&["check"]).run();
    out.code(2)
        .err_has(backup)
        .err_has(r#"main.rhai:4:1: proto "b::[x]": when_scheduled("tyop::[x]") matches no proc or proto"#)
        .err_has(r#"main.rhai:5:1: proc "idle": when_scheduled("nothing") matches no proc or proto"#)
        .err_has("prun: check: 3 problems found");
}

#[test]
fn a_glob_in_when_scheduled_is_an_error_naming_the_pattern_form() {
    // It was taken as a name: the proto below made and ran a proc named `deploy::*`.
    let out = Test::new()
        .script(
            r#"
proto("deploy::[env]", #{ shell: "echo deploying" });
proc("backup", #{ rdeps: [when_scheduled("deploy::*")], shell: "echo backing up" });
run("backup");
"#,
        )
        .run();
    out.code(2).err_has(
        r#"main.rhai:3:1: proc "backup": `rdeps` entry when_scheduled("deploy::*") is a glob; when_scheduled takes names and [placeholder] patterns"#,
    );
    assert!(!out.events().ran("deploy::*"), "{}", out.describe());
}

#[test]
fn targets_scheduled_together_honour_a_when_scheduled_between_them_in_any_order() {
    // As `run(["main", "pre"])`: the targets of one command line are scheduled at once, so
    // `pre`, listed after `main`, still runs before it.
    let script = r#"
proc("main", #{ JOB(main) });
proc("pre", #{ rdeps: [when_scheduled("main")], JOB(pre, 0.1) });
"#;
    for targets in [["main", "pre"], ["pre", "main"]] {
        let out = Test::new().args(&targets).script(script).run();
        out.ok().summary_is("prun: 2 succeeded");
        out.events().before("pre", "main");
    }
    let out = Test::new()
        .script(&format!("{script}run([\"main\", \"pre\"]);\n"))
        .run();
    out.ok().summary_is("prun: 2 succeeded");
    out.events().before("pre", "main");
}

#[test]
fn a_proto_rdep_applies_only_to_the_values_its_arg_choices_allow() {
    // `setup::[env]` allows only dev: scheduling `deploy::prod` makes no `setup::prod`
    // (a proc its arg_choices refuse), and deploy::prod runs without one. A closure's
    // choices are asked as a list's are.
    for choices in [r#"["dev"]"#, r#"|ctx| ["dev"]"#] {
        let out = Test::new()
            .script(&format!(
                r#"
proto("setup::[env]", #{{ arg_choices: #{{ env: {choices} }}, rdeps: ["deploy::[env]"] }}, |ctx, env| "set up");
proto("deploy::[env]", |ctx, env| ctx.results.keys());
run(["deploy::dev", "deploy::prod"]);
print("dev=" + wait("deploy::dev"));
print("prod=" + wait("deploy::prod"));
"#
            ))
            .run();
        out.ok()
            .line(r#"dev=["setup::dev"]"#)
            .line("prod=[]")
            .not_reported("setup::prod")
            .summary_is("prun: 3 succeeded");
    }
}

#[test]
fn a_when_scheduled_target_defined_after_the_declarer_was_scheduled_is_scheduled_after_it() {
    // Whatever the declarer's state when the target (or the proto making it) is defined:
    // waiting, or finished (the `wait`), the target runs, after it.
    for (wait, target) in [
        ("", r#"proc("deploy", #{ JOB(deploy) });"#),
        (r#"wait("backup");"#, r#"proc("deploy", #{ JOB(deploy) });"#),
        (
            "",
            r#"proto("dep::[env]", |ctx, env| shell("sh job.sh deploy"));"#,
        ),
        (
            r#"wait("backup");"#,
            r#"proto("dep::[env]", |ctx, env| shell("sh job.sh deploy"));"#,
        ),
    ] {
        let name = if target.contains("proto") {
            "dep::prod"
        } else {
            "deploy"
        };
        let out = Test::new()
            .script(&format!(
                r#"
proc("backup", #{{ rdeps: [when_scheduled("{name}")], JOB(backup, 0.1) }});
run("backup");
{wait}
{target}
"#
            ))
            .run();
        out.ok()
            .proc_state("SUCCEEDED", name)
            .summary_is("prun: 2 succeeded");
        out.events().before("backup", "deploy");
    }
}

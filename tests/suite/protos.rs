//! Protos: placeholders, dependency patterns, closure deps, arg_choices and globs,
//! the separator.

use crate::support::Test;

#[test]
fn placeholder_values_reach_the_body() {
    let out = Test::new()
        .script(
            r#"
proto("build::[env]", |ctx, env| {
    print(`name=${ctx.name} env=${env} arg=${ctx.args.env}`);
    `built_${env}`
});
let names = run("build::dev");
print("names=" + names);
print("result=" + wait("build::dev"));
"#,
        )
        .run();
    out.ok()
        .line("name=build::dev env=dev arg=dev")
        .line(r#"names=["build::dev"]"#)
        .line("result=built_dev")
        .proc_state("SUCCEEDED", "build::dev");
}

#[test]
fn two_placeholders_in_order() {
    let out = Test::new()
        .script(
            r#"
proto("deploy::[env]::[region]", |ctx, env, region| print(`${env}@${region} ${ctx.args.region}`));
run("deploy::prod::eu");
"#,
        )
        .run();
    out.ok().line("prod@eu eu");
}

#[test]
fn dep_pattern_is_filled_from_the_parents_args() {
    let out = Test::new()
        .script(
            r#"
proto("gen::[env]", |ctx, env| { shell("sh job.sh " + ctx.name + " 0.05"); `gen-${env}` });
proto("build::[env]", #{ deps: ["gen::[env]"] }, |ctx, env| {
    shell("sh job.sh " + ctx.name);
    print("build sees " + ctx.results);
});
run("build::prod");
"#,
        )
        .run();
    out.ok()
        .line(r#"build sees #{"gen::prod": "gen-prod"}"#)
        .proc_state("SUCCEEDED", "gen::prod")
        .not_reported("gen::dev")
        .summary_is("prun: 2 succeeded");
    out.events().before("gen::prod", "build::prod");
}

#[test]
fn closure_deps_get_the_placeholder_values() {
    let out = Test::new()
        .script(
            r#"
proto("gen::[env]", |ctx, env| shell("sh job.sh " + ctx.name + " 0.05"));
proto("lint::[env]", |ctx, env| shell("sh job.sh " + ctx.name + " 0.05"));
proto("build::[env]", #{
    deps: [|ctx, env| "gen::" + env, |ctx, env| ["lint::" + ctx.args.env]],
}, |ctx, env| {
    shell("sh job.sh " + ctx.name);
    print("deps: " + ctx.results.keys());
});
run("build::qa");
"#,
        )
        .run();
    out.ok()
        .proc_state("SUCCEEDED", "gen::qa")
        .proc_state("SUCCEEDED", "lint::qa")
        .proc_state("SUCCEEDED", "build::qa");
    let ev = out.events();
    ev.before("gen::qa", "build::qa");
    ev.before("lint::qa", "build::qa");
}

#[test]
fn star_glob_expands_to_every_choice() {
    let out = Test::new()
        .script(
            r#"
proto("build::[env]", #{ arg_choices: #{ env: ["dev", "staging", "prod"] } },
      |ctx, env| shell("sh job.sh " + ctx.name));
let names = run("build::*");
print("names=" + names);
"#,
        )
        .run();
    out.ok()
        .line(r#"names=["build::dev", "build::staging", "build::prod"]"#)
        .proc_state("SUCCEEDED", "build::dev")
        .proc_state("SUCCEEDED", "build::staging")
        .proc_state("SUCCEEDED", "build::prod")
        .summary_is("prun: 3 succeeded");
}

#[test]
fn a_glob_runs_the_existing_procs_it_matches_besides_the_choices_of_a_proto() {
    // API.md: `run("build::*")` is a "glob over arg_choices / existing procs: every match".
    let out = Test::new()
        .script(
            r#"
proto("test::[n]", #{ arg_choices: #{ n: ["1", "2"] } }, |ctx, n| n);
proc("test::integration", || "i");
proc("lint", || "l");
proc("report", #{ deps: ["test::*"] }, |ctx| ctx.results.keys());
print("names=" + run("test::*"));
print("report=" + wait(run("report")[0]));
"#,
        )
        .run();
    out.ok()
        .line(r#"names=["test::1", "test::2", "test::integration"]"#)
        .line(r#"report=["test::1", "test::2", "test::integration"]"#)
        .proc_state("SUCCEEDED", "test::integration")
        .not_reported("lint")
        .summary_is("prun: 4 succeeded");
}

#[test]
fn run_of_several_patterns_returns_every_name_in_order() {
    let out = Test::new()
        .script(
            r#"
proto("build::[env]", #{ arg_choices: #{ env: ["dev", "prod"] } }, |ctx, env| 1);
for i in 0..3 { proc("t" + i, #{ cmd: ["true"] }); }
print("names=" + run(["t2", "build::*", "t0"]));
"#,
        )
        .run();
    out.ok()
        .line(r#"names=["t2", "build::dev", "build::prod", "t0"]"#)
        .summary_is("prun: 4 succeeded");
}

#[test]
fn glob_over_two_placeholders_and_closure_choices() {
    let out = Test::new()
        .script(
            r#"
proto("deploy::[env]::[region]", #{
    arg_choices: #{ env: |ctx| ["dev", "prod"], region: ["eu", "us"] },
}, |ctx, env, region| 1);
print("names=" + run("deploy::*::eu"));
"#,
        )
        .run();
    out.ok()
        .line(r#"names=["deploy::dev::eu", "deploy::prod::eu"]"#)
        .not_reported("deploy::dev::us")
        .summary_is("prun: 2 succeeded");
}

#[test]
fn question_mark_glob_matches_one_character() {
    let out = Test::new()
        .script(
            r#"
proto("t::[v]", #{ arg_choices: #{ v: ["a1", "a2", "b1", "a10"] } }, |ctx, v| v);
print("names=" + run("t::a?"));
"#,
        )
        .run();
    out.ok()
        .line(r#"names=["t::a1", "t::a2"]"#)
        .not_reported("t::a10")
        .not_reported("t::b1");
}

#[test]
fn glob_matching_no_choice_is_an_error() {
    let out = Test::new()
        .script(
            r#"
proto("build::[env]", #{ arg_choices: #{ env: ["dev", "prod"] } }, |ctx, env| 1);
run("build::x*");
"#,
        )
        .run();
    out.code(2).err_has(
        r#"main.rhai:3:1: glob "x*" for placeholder [env] of proto "build::[env]" matched none of the allowed values: dev, prod"#,
    );
}

#[test]
fn a_glob_over_empty_or_long_choices_says_so_in_one_short_line() {
    let empty = Test::new()
        .script(
            r#"
proto("build::[env]", #{ arg_choices: #{ env: [] } }, |ctx, env| 1);
run("build::*");
"#,
        )
        .run();
    empty.code(2).err_has(
        r#"glob "*" for placeholder [env] of proto "build::[env]" matched none of the allowed values: its arg_choices allow none"#,
    );
    let long = Test::new()
        .script(
            r#"
let files = [];
for i in 0..500 { files.push(`f${i}`); }
proto("gz::[f]", #{ arg_choices: #{ f: files } }, |ctx, f| 1);
run("gz::g*");
"#,
        )
        .run();
    long.code(2).err_has(
        r#"glob "g*" for placeholder [f] of proto "gz::[f]" matched none of the 500 allowed values: f0, f1, f2, f3, f4, f5, f6, f7, f8, f9, ..."#,
    );
    assert!(!long.stderr.contains("f10"), "{}", long.describe());
}

#[test]
fn glob_on_placeholder_without_choices_names_the_placeholder() {
    let out = Test::new()
        .script(
            r#"
proto("deploy::[env]", |ctx, env| 1);
run("deploy::*");
"#,
        )
        .run();
    out.code(2).err_has("[env]").err_has("arg_choices");
}

#[test]
fn value_not_in_choices_is_an_error() {
    let out = Test::new()
        .script(
            r#"
proto("build::[env]", #{ arg_choices: #{ env: ["dev", "prod"] } }, |ctx, env| 1);
run("build::qa");
"#,
        )
        .run();
    out.code(2)
        .err_has("\"qa\"")
        .err_has("[env]")
        .err_has("dev, prod");
    assert_eq!(out.count("SUCCEEDED"), 0, "{}", out.describe());
}

#[test]
fn a_misspelt_value_suggests_the_nearest_allowed_one_in_a_script_and_as_a_target() {
    let script = r#"proto("build::[env]", #{ arg_choices: #{ env: ["dev", "prod", "stage"] } }, |ctx, env| 1);"#;
    let hint = r#"is not one of the allowed values: dev, prod, stage; did you mean "prod"?"#;
    Test::new()
        .script(&format!("{script}\nrun(\"build::prdo\");\n"))
        .run()
        .code(2)
        .err_has(&format!(
            "main.rhai:2:1: value \"prdo\" for placeholder [env] of proto \"build::[env]\" {hint}"
        ));
    Test::new()
        .args(&["build::prdo"])
        .script(script)
        .run()
        .code(64)
        .err_has(hint);
}

#[test]
fn placeholder_matches_a_non_empty_value_without_the_separator() {
    for name in ["x::1::2", "x::"] {
        let out = Test::new()
            .script(&format!(
                r#"
proto("x::[a]", |ctx, a| print("ran " + a));
run("{name}");
"#
            ))
            .run();
        out.code(2)
            .err_has(&format!("\"{name}\""))
            .out_lacks("ran ");
    }
    // The name the proto would make with the separator in a value says so, in a script
    // and as a target.
    let why = r#"no proc or proto matches "x::1::2": proto "x::[a]" would take "1::2" for [a], but a placeholder's value cannot hold the separator "::""#;
    Test::new()
        .script("proto(\"x::[a]\", |ctx, a| a);\nrun(\"x::1::2\");\n")
        .run()
        .code(2)
        .err_has(&format!("main.rhai:2:1: {why}"));
    Test::new()
        .args(&["x::1::2"])
        .script("proto(\"x::[a]\", |ctx, a| a);\n")
        .run()
        .code(64)
        .err_has(why);
}

#[test]
fn custom_separator() {
    let out = Test::new()
        .script(
            r#"
set_options(#{ separator: "/" });
proto("deploy/[env]/[region]", |ctx, env, region| print(`${env}@${region}`));
proto("gen/[env]", |ctx, env| print("gen " + env));
proto("build/[env]", #{ deps: ["gen/[env]"] }, |ctx, env| print("build " + env));
run("deploy/prod/eu");
run("deploy/a::b/c");
run("build/x");
"#,
        )
        .run();
    out.ok()
        .line("prod@eu")
        .line("a::b@c")
        .line("gen x")
        .line("build x");
}

#[test]
fn placeholders_are_filled_in_command_bodies_env_and_cwd_and_other_brackets_are_kept() {
    let out = Test::new()
        .file("dev/marker", "")
        .file("prod/marker", "")
        .script(
            r#"
proto("make::[env]", #{
    arg_choices: #{ env: ["dev", "prod"] },
    cwd: "[env]",
    env: #{ TARGET: "t-[env]" },
    shell: "[ -e marker ] && echo \"$TARGET in $(basename $PWD)\" > out-[env].txt",
});
proto("copy::[env]", #{ arg_choices: #{ env: ["dev", "prod"] }, cmd: ["cp", "[env]/out-[env].txt", "copy-[env].txt"], deps: ["make::[env]"] });
run("copy::*");
"#,
        )
        .run();
    out.ok();
    assert_eq!(out.read("dev/out-dev.txt").trim(), "t-dev in dev");
    assert_eq!(out.read("copy-prod.txt").trim(), "t-prod in prod");
}

#[test]
fn an_arg_choices_value_no_name_could_hold_is_an_error() {
    // `f::*` made procs `f::` and `f::a::b`, which no name on the command line reaches
    // (a placeholder's value is not empty and holds no separator).
    for bad in ["", "a::b"] {
        let out = Test::new()
            .script(&format!(
                "proto(\"f::[env]\", #{{ arg_choices: #{{ env: [\"ok\", {bad:?}] }}, shell: \"echo [env]\" }});\nrun(\"f::*\");\n"
            ))
            .run();
        out.code(2).err_has("main.rhai:2:1").err_has(&format!(
            "the value {bad:?} of [env] is empty or holds the separator"
        ));
        assert!(!out.stdout.contains("STARTED"), "{}", out.describe());
    }
}

#[test]
fn a_misspelt_arg_choices_key_suggests_the_placeholder() {
    let out = Test::new()
        .script(r#"proto("b::[env]", #{ arg_choices: #{ evn: ["a"] }, shell: "echo [env]" });"#)
        .run();
    out.code(2)
        .err_has("arg_choices names [evn], which is not a placeholder; did you mean `env`?");
}

#[test]
fn a_value_that_looks_like_a_placeholder_reaches_cmd_and_env_as_written() {
    // The value `[b]` of [a] was filled again with the value of [b]: `Z-Z`, not `[b]-Z`.
    let out = Test::new()
        .script(
            r#"proto("y::[a]::[b]", #{ env: #{ V: "[a]-[b]" }, cmd: ["sh", "-c", "printf '%s|%s' \"$1\" \"$V\" > got", "sh", "[a]-[b]"] });"#,
        )
        .args(&["y::[b]::Z"])
        .run();
    out.ok();
    assert_eq!(out.read("got"), "[b]-Z|[b]-Z", "{}", out.describe());
}

#[test]
fn a_dependency_value_outside_arg_choices_names_the_proto_that_refuses_it() {
    // The message named a placeholder and values, not which proto (here the dependency's).
    let out = Test::new()
        .script(
            r#"proto("gen::[env]", #{ arg_choices: #{ env: ["dev"] } }, |ctx, env| env);
proto("b::[env]", #{ deps: ["gen::[env]"] }, |ctx, env| 1);
run("b::prod");"#,
        )
        .run();
    out.code(2).err_has(
        r#"value "prod" for placeholder [env] of proto "gen::[env]" is not one of the allowed values: dev"#,
    );
}

#[test]
fn a_value_given_in_a_map_that_no_name_can_hold_is_an_error_naming_it() {
    // A value holds `:` and spaces, never the separator and never nothing: the error says
    // so, where the name made of it would only match no proto.
    let out = Test::new()
        .script(
            r#"
proto("x::[a]::[b]", |ctx, a, b| `${a}|${b}`);
print(wait(run("x::[a]::[b]", #{ a: "p:q r", b: 1 })[0]));
try { run("x::[a]::[b]", #{ a: "p::q", b: 1 }); } catch (e) { print(e); }
try { create("x::[a]::[b]", #{ a: "p", b: "" }); } catch (e) { print(e); }
set_options(#{ separator: "/" });
proto("y/[a]", |ctx, a| a);
print(wait(run("y/[a]", #{ a: "p::q" })[0]));
try { run("y/[a]", #{ a: "p/q" }); } catch (e) { print(e); }
"#,
        )
        .run();
    out.ok()
        .line("p:q r|1")
        .line(r#"run("x::[a]::[b]", ...): the value of `a` ("p::q") holds the separator "::", which a placeholder's value cannot"#)
        .line(r#"create("x::[a]::[b]", ...): the value of `b` is empty, which a placeholder's value cannot be"#)
        .line("p::q")
        .line(r#"run("y/[a]", ...): the value of `a` ("p/q") holds the separator "/", which a placeholder's value cannot"#);
}

#[test]
fn run_and_create_fill_the_placeholders_of_a_pattern_from_a_map() {
    // parproc's run("build::[env]", env="prod").
    let out = Test::new()
        .script(
            r#"
proto("build::[env]::[n]", #{ arg_choices: #{ env: ["dev", "prod"] } }, |ctx, env, n| `${env}-${n}`);
print(run("build::[env]::[n]", #{ env: "prod", n: 2 }));
print(create("build::[env]::[n]", #{ env: "dev", n: "x" }));
print(run("build::[env]::[n]", #{ env: "*", n: 3 }));
proc("inside", |ctx| { ctx.run("build::[env]::[n]", #{ env: "dev", n: 4 }); ctx.wait("build::dev::4") });
run("inside");
print(wait("inside"));
try { run("build::[env]::[n]", #{ env: "dev", m: 1 }); } catch (e) { print(e); }
try { run("build::[env]::[n]", #{ env: "dev" }); } catch (e) { print(e); }
try { run("build::[env]::[n]", #{ env: "dev", n: [1] }); } catch (e) { print(e); }
"#,
        )
        .run();
    out.ok()
        .line(r#"["build::prod::2"]"#)
        .line(r#"["build::dev::x"]"#)
        .line(r#"["build::dev::3", "build::prod::3"]"#)
        .line("dev-4")
        .line(r#"run("build::[env]::[n]", ...): `m` is not a [placeholder] of the pattern"#)
        .line(r#"run: pattern "build::[env]::[n]" requires argument "n" but it was not provided"#)
        .line(r#"run("build::[env]::[n]", ...): the value of `n` must be text, a number or a bool, not an array"#)
        .proc_state("SUCCEEDED", "build::prod::2")
        .not_reported("build::dev::x");
}

#[test]
fn a_wait_for_a_name_the_arg_choices_refuse_says_so_rather_than_to_create_it() {
    // It said to create the proc first, which `create` refuses too.
    let out = Test::new()
        .script(
            r#"
proto("b::[x]", #{ arg_choices: #{ x: ["1", "2"] } }, |ctx, x| x);
try { wait("b::9"); } catch (e) { print(`E: ${e}`); }
try { wait("b::1"); } catch (e) { print(`E: ${e}`); }
"#,
        )
        .run();
    out.ok()
        .out_has(r#"E: no proc named "b::9" exists, and proto "b::[x]" makes none: "9" is not one of the arg_choices of [x]"#)
        .out_has(r#"E: no proc named "b::1" exists; it would be made from proto "b::[x]": create it first (run, create or ctx.run)"#);
}

/// A wrong target's "did you mean" named proto templates (`build::[env]`), which name no
/// proc (see `a_name_that_leaves_a_placeholder_unfilled_is_an_error`). It names the glob over a proto's
/// choices instead (`test::*`) and the names its listed choices make; a proto without
/// choices, as a proto with a value to fill in.
#[test]
fn a_wrong_targets_hint_names_usable_targets_not_templates() {
    let script = r#"proto("build::[env]", |ctx, env| env);
proto("test::[env]", #{ arg_choices: #{ env: ["dev", "prod"] } }, |ctx, env| env);
proto("pkg::[env]", #{ arg_choices: |ctx| #{ env: ["a"] } }, |ctx, env| env);
"#;
    for (target, hint) in [
        (
            "build",
            r#"no proc or proto matches "build"; did you mean a proc of proto "build::[env]" (with a value for [env])?"#,
        ),
        (
            "test",
            r#"; did you mean "test::*", "test::dev" or "test::prod"?"#,
        ),
        ("pkg", r#"; did you mean "pkg::*"?"#),
    ] {
        let out = Test::new().script(script).args(&[target]).run();
        out.code(64).err_has(hint);
        assert!(
            !out.stderr.contains("mean \"build::[env]\""),
            "{}",
            out.describe()
        );
    }
}

/// A proto's own pattern as a name (`run("t::[v]")`, the target `t::[v]`) made a proc
/// whose value is `[v]` and ran it: a placeholder cannot be its own value.
#[test]
fn a_name_that_leaves_a_placeholder_unfilled_is_an_error() {
    let script = r#"proto("t::[v]", |ctx, v| { write_file("ran-" + v.len(), ""); v });
"#;
    let out = Test::new()
        .script(&format!("{script}run(\"t::[v]\");\n"))
        .run();
    out.code(2).err_has(
        r#"main.rhai:2:1: "t::[v]" leaves placeholder [v] of proto "t::[v]" unfilled: it needs a value (run("t::[v]", #{ v: "..." }) fills it in)"#,
    );
    assert!(!out.exists("ran-3"), "{}", out.describe());
    let out = Test::new().script(script).args(&["t::[v]"]).run();
    out.code(64)
        .err_has(r#""t::[v]" leaves placeholder [v] of proto"#);
    assert!(!out.exists("ran-3"), "{}", out.describe());
}

/// `arg_choices` given to `proc` (a name with placeholders written as a proc) says that it
/// belongs to `proto()`, instead of listing the options of `proc` without it.
#[test]
fn arg_choices_given_to_proc_points_to_proto() {
    Test::new()
        .script("proc(\"b::[x]\", #{ arg_choices: #{ x: [\"1\"] }, cmd: [\"true\"] });\nrun(\"b::1\");\n")
        .run()
        .code(2)
        .err_has(
            "main.rhai:1:1: proc \"b::[x]\": unknown option `arg_choices`: it is an option of `proto()`",
        );
}

//! Issue 12, "broken today": `list`/`graph` of scripts that declare `args(#{...})`,
//! globs and outputs with non-normalised paths, the failure excerpt, the `--json` report
//! on every attempted run, no summary after a script error, and `-q` for cron.

use crate::support::Test;

/// A script with a declared (required) option and a positional.
const DECLARES: &str = r#"
let opt = args(#{
    about: "build things",
    target_dir: #{ short: "t", required: true, help: "where to build" },
    envs: #{ positional: true, list: true, "default": ["dev"], help: "the envs" },
});
proto("build::[env]", #{ arg_choices: #{ env: opt.envs }, help: `build into ${opt.target_dir}` },
    |ctx| 1);
proc("gen", #{ help: "make the data", cmd: ["touch", "ran.gen"] });
run("build::*");
"#;

#[test]
fn list_works_on_a_script_that_declares_args_without_its_arguments() {
    let out = Test::new().script(DECLARES).before(&["list"]).run();
    out.ok()
        .out_has("protos:")
        .out_has("build::[env]")
        .out_has("env: dev")
        .out_has("gen");
    assert!(!out.exists("ran.gen"));
}

#[test]
fn list_and_graph_take_the_script_s_arguments() {
    let out = Test::new()
        .script(DECLARES)
        .before(&["list"])
        .args(&["-t", "out", "qa", "prod"])
        .run();
    out.ok().out_has("env: qa, prod").out_has("build into out");
    let out = Test::new()
        .script(DECLARES)
        .before(&["graph"])
        .args(&["--target-dir", "out", "qa", "prod"])
        .run();
    out.ok()
        .out_has("\"build::qa\"")
        .out_has("\"build::prod\"")
        .out_lacks("\"build::dev\"");
}

#[test]
fn graph_of_a_declaring_script_takes_targets_after_its_options() {
    let script = r#"
let opt = args(#{ name: #{ "default": "x", help: "a name" } });
proc("a", |ctx| 1);
proc("b", #{ deps: ["a"] }, |ctx| opt.name);
"#;
    Test::new()
        .script(script)
        .before(&["graph"])
        .args(&["--name", "y", "b"])
        .run()
        .ok()
        .out_has("\"a\" -> \"b\";");
}

#[test]
fn list_of_the_bundled_fanout_script_works() {
    let script = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/scripts/fanout.rhai"
    ))
    .expect("fanout.rhai");
    let out = Test::new()
        .script(&script)
        .file("logs/a.log", "a\n")
        .before(&["list"])
        .args(&["logs/*.log"])
        .run();
    out.ok().out_has("gzip::[file]").out_has("logs/a.log");
    assert!(!out.exists("logs/a.log.gz"));
}

//! Catching mistakes before (and while) running: `prun check`, "did you mean …" for
//! every kind of name, Rhai's type names in words, the listing of a run that schedules
//! nothing, shell completions, the man page and the Rhai definition files.

use crate::support::Test;

/// A script with one mistake of every kind `prun check` looks for, each on its own line,
/// and a top-level command and a file write that must not happen.
const MISTAKES: &str = r#"proc("a", #{ wave: 1, cmd: ["touch", "a-ran"] });
proc("b", #{ deps: ["aa"], cmd: ["true"] });
proc("c", #{ dpes: ["a"], cmd: ["true"] });
proc("d", #{ deps: ["e"] }, |ctx| 1);
proc("e", #{ deps: ["d"] }, |ctx| 1);
proc("f", #{ deps: ["a", "late::x"], wave: 0 }, |ctx| 1);
proto("build::[env]", #{ deps: ["gen::[env]"], arg_choices: #{ env: ["dev"] } }, |ctx, env| 1);
proto("late::[v]", #{ wave: 2 }, |ctx, v| 1);
set_options(#{ paralel: 2 });
shell("touch top-ran");
write_file("written", "x");
run("a");
"#;

#[test]
fn check_reports_every_problem_with_its_line_and_runs_nothing() {
    let out = Test::new()
        .script(MISTAKES)
        .raw(&["check", "main.rhai", "bulid::dev"])
        .run();
    out.code(2)
        .err_has(r#"main.rhai:2:1: proc "b" depends on "aa", which does not exist; did you mean "a"?"#)
        .err_has("main.rhai:3:1: proc \"c\": unknown option `dpes`; did you mean `deps`?")
        .err_has("main.rhai:4:1: dependency cycle: d -> e -> d")
        .err_has(r#"main.rhai:6:1: proc "f" (wave 0) cannot depend on proc "a" (wave 1)"#)
        .err_has(r#"main.rhai:6:1: proc "f" (wave 0) cannot depend on proc "late::x" (wave 2)"#)
        .err_has(r#"main.rhai:7:1: proto "build::[env]" depends on "gen::[env]", which does not exist"#)
        .err_has("main.rhai:9:1: set_options: unknown option `paralel`; did you mean `parallel`?")
        .err_has(r#"target "bulid::dev": no proc or proto matches "bulid::dev"; did you mean "build::dev"?"#)
        .err_has("prun: check: 8 problems found");
    for file in ["top-ran", "written", "a-ran"] {
        assert!(!out.exists(file), "check made {file}\n{}", out.describe());
    }
}

#[test]
fn check_of_a_clean_script_says_ok_and_runs_nothing() {
    let out = Test::new()
        .script(
            r#"
let files = shell("ls; touch top-ran").stdout;
proc("fetch", #{ cmd: ["touch", "fetched"], now: true });
proc("gen", #{ deps: ["fetch"] }, |ctx| shell("touch gen-ran"));
proto("build::[env]", #{ deps: ["gen"], arg_choices: #{ env: ["dev", "prod"] } }, |ctx, env| 1);
run("build::*");
wait();
"#,
        )
        .raw(&["check", "main.rhai", "build::prod"])
        .run();
    out.ok().out_has("ok: 2 procs, 1 proto");
    for file in ["top-ran", "fetched", "gen-ran"] {
        assert!(!out.exists(file), "check made {file}\n{}", out.describe());
    }
}

/// A target a proto's name fits but whose value is not among its `arg_choices` (a list,
/// or a closure, which `check` calls) is a problem for `check`, as it is a usage error
/// for a run; a value among them is none.
#[test]
fn check_finds_a_cycle_among_the_procs_a_target_would_make() {
    // Only the target makes `x::1`, and making it makes `y::1`: the run would fail on the
    // cycle, so check must find it too.
    let out = Test::new()
        .script(
            r#"
proto("x::[n]", #{ deps: ["y::[n]"] }, |ctx, n| 1);
proto("y::[n]", #{ deps: [|ctx, n| `x::${n}`] }, |ctx, n| 1);
"#,
        )
        .raw(&["check", "main.rhai", "x::1"])
        .run();
    out.code(2)
        .err_has("main.rhai:2:1: dependency cycle: x::1 -> y::1 -> x::1")
        .err_has("prun: check: 1 problem found");
}

#[test]
fn check_finds_a_target_whose_value_is_not_among_the_protos_choices() {
    let script = r#"
proto("build::[env]", #{ arg_choices: #{ env: ["dev", "prod"] } }, |ctx, env| env);
proto("push::[to]", #{ arg_choices: |ctx| #{ to: ["eu", "us"] } }, |ctx, to| to);
"#;
    Test::new()
        .script(script)
        .raw(&["check", "main.rhai", "build::qa", "push::asia", "build::dev"])
        .run()
        .code(2)
        .err_has(
            r#"target "build::qa": value "qa" for placeholder [env] of proto "build::[env]" is not one of the allowed values: dev, prod"#,
        )
        .err_has(
            r#"target "push::asia": value "asia" for placeholder [to] of proto "push::[to]" is not one of the allowed values: eu, us"#,
        )
        .err_has("prun: check: 2 problems found");
    Test::new()
        .script(script)
        .raw(&["check", "main.rhai", "build::prod", "push::*"])
        .run()
        .ok()
        .out_has("ok: 0 procs, 2 protos");
}

#[test]
fn check_reads_the_scripts_arguments_and_the_first_error_that_stops_it() {
    let script = r#"
let opt = args(#{ env: #{ required: true }, token: #{ env: "NO_SUCH_TOKEN_VAR" } });
proc(`deploy::${opt.env}`, || 1);
run("deploy::prdo");
"#;
    let out = Test::new()
        .script(script)
        .raw(&["check", "main.rhai", "--env", "prod"])
        .run();
    out.code(2).err_has(
        r#"main.rhai:4:1: no proc or proto matches "deploy::prdo"; did you mean "deploy::prod"?"#,
    );
    let out = Test::new()
        .script(script)
        .raw(&["check", "main.rhai", "--env", "prdo"])
        .run();
    out.ok().out_has("ok: 1 proc, 0 protos");
}

#[test]
fn an_error_after_a_command_check_did_not_run_says_its_output_was_empty() {
    let script = "let s = shell(\"nproc\").stdout;\ns.trim();\nlet n = parse_int(s);\n\
                  proc(\"a\", #{ cmd: [\"echo\", `${n}`] });\nrun(\"a\");\n";
    let out = Test::new().script(script).run();
    out.ok();
    let out = Test::new()
        .script(script)
        .raw(&["check", "main.rhai"])
        .run();
    out.code(2)
        .err_has("main.rhai:3:9: Error parsing integer number ''")
        .err_has(
            "(prun check runs no command: the `shell` at main.rhai:1:9 printed nothing here, \
             and the script may have stopped on its empty output)",
        );
}

/// A call no command's output could have led to (a function called with arguments it
/// does not take, none of them `()`) is not blamed on the empty output of a command
/// before it: that hint sent the reader to the wrong line.
#[test]
fn a_wrong_call_after_a_command_is_not_blamed_on_its_empty_output() {
    let script = "let v = shell(\"git describe\").stdout;\n\
                  proc(\"a\", #{ shell: \"true\" });\n\
                  when_scheduled(\"a\", |n| 1);\n";
    let out = Test::new()
        .script(script)
        .raw(&["check", "main.rhai"])
        .run();
    out.code(2)
        .err_has("main.rhai:3:1: function when_scheduled(a string, a closure) does not exist");
    assert!(
        !out.stderr.contains("printed nothing here"),
        "{}",
        out.describe()
    );
}

#[test]
fn check_finds_a_proto_dependency_with_a_placeholder_the_proto_lacks() {
    let script = "proc(\"c::1\", #{ cmd: [\"true\"] });\n\
                  proto(\"b::[x]\", #{ deps: [\"c::[z]\"], cmd: [\"true\"] });\n";
    let want = "main.rhai:2:1: invalid name pattern \"b::[x]\": dependency \"c::[z]\" uses [z], which is not a placeholder of the proto";
    // Found by `check` although no proc is made from the proto, and by a run at once.
    Test::new()
        .script(script)
        .raw(&["check", "main.rhai"])
        .run()
        .code(2)
        .err_has(want);
    Test::new().script(script).run().code(2).err_has(want);
}

#[test]
fn check_finds_an_unknown_option_in_a_map_built_at_run_time() {
    let out = Test::new()
        .script("let o = #{ nwo: true };\nproc(\"b\", o, || 1);\nproc(\"c\", #{ deps: [\"b\"] }, || 1);\n")
        .raw(&["check", "main.rhai"])
        .run();
    out.code(2)
        .err_has("main.rhai:2:1: proc \"b\": unknown option `nwo`; did you mean `now`?")
        .err_has("prun: check: 1 problem found");
}

#[test]
fn check_finds_unknown_command_options_without_running_the_command() {
    let out = Test::new()
        .script(
            "let o = #{ timout: 1 };\nshell(\"touch ran\", o);\nexec([\"touch\", \"ran\"], #{ chek: false });\n",
        )
        .raw(&["check", "main.rhai"])
        .run();
    out.code(2)
        .err_has("main.rhai:2:1: shell: unknown option `timout`; did you mean `timeout`?")
        .err_has("main.rhai:3:1: exec: unknown option `chek`; did you mean `check`?");
    assert!(!out.exists("ran"), "{}", out.describe());
}

/// A mistyped glob among a proc's dependencies gets the nearest glob that matches
/// something: the same glob with the start of a name that exists (`tset::*` is near
/// `test::*`, while no single name is near enough to `tset::*`).
#[test]
fn check_offers_the_nearest_glob_for_a_dependency_glob_that_matches_nothing() {
    let out = Test::new()
        .script(
            "proto(\"test::[n]\", #{ arg_choices: #{ n: [\"unit\", \"integration\"] } }, |ctx, n| 1);\n\
             proc(\"ci\", #{ deps: [\"tset::*\"], shell: \"true\" });\n",
        )
        .raw(&["check", "main.rhai"])
        .run();
    out.code(2).err_has(
        r#"main.rhai:2:1: proc "ci" depends on "tset::*", which matches no proc or proto; did you mean "test::*"?"#,
    );
}

#[test]
fn a_wrong_target_gets_the_nearest_names() {
    let out = Test::new()
        .script("proc(\"build\", || 1);\nproc(\"test\", || 1);\n")
        .args(&["biuld"])
        .run();
    out.code(64)
        .err_has(r#"no proc or proto matches "biuld"; did you mean "build"?"#);
}

#[test]
fn wrong_proc_names_in_run_and_wait_get_the_nearest_names() {
    let out = Test::new()
        .script("proc(\"compress\", || 1);\nrun(\"compres\");\n")
        .run();
    out.code(2)
        .err_has(r#"main.rhai:2:1: no proc or proto matches "compres"; did you mean "compress"?"#);
    let out = Test::new()
        .script("proc(\"compress\", || 1);\nrun(\"compress\");\nwait(\"compresss\");\n")
        .run();
    out.code(2)
        .err_has(r#"no proc named "compresss" exists; did you mean "compress"?"#);
}

#[test]
fn a_missing_dependency_gets_the_nearest_names() {
    let out = Test::new()
        .script(
            "proc(\"fetch\", || 1);\nproc(\"use\", #{ deps: [\"fecth\"] }, || 1);\nrun(\"use\");\n",
        )
        .run();
    out.code(1)
        .out_has(r#"FAILED_DEP use: dependency "fecth" missing; did you mean "fetch"?"#);
}

#[test]
fn wrong_option_keys_get_the_nearest_keys() {
    for (script, want) in [
        (
            "proc(\"a\", #{ retires: 2 }, || 1);",
            "proc \"a\": unknown option `retires`; did you mean `retries`?",
        ),
        (
            "set_options(#{ paralel: 2 });",
            "set_options: unknown option `paralel`; did you mean `parallel`?",
        ),
        (
            "shell(\"true\", #{ timout: 5 });",
            "unknown option `timout`; did you mean `timeout`?",
        ),
    ] {
        Test::new().script(script).run().code(2).err_has(want);
    }
}

#[test]
fn wrong_flags_subcommands_and_modules_get_the_nearest_names() {
    let out = Test::new()
        .script("proc(\"a\", || 1);\n")
        .args(&["--parralel", "2"])
        .run();
    out.code(64).err_has("--parallel");
    let out = Test::new()
        .script("proc(\"a\", || 1);\n")
        .raw(&["chek", "main.rhai"])
        .run();
    out.code(64)
        .err_has("`chek` is neither a script nor a subcommand; did you mean `check`?");
    let out = Test::new().script("import \"fss\" as fs;\n").run();
    out.code(2).err_has(&format!(
        r#"main.rhai:1:8: module "fss" not found: no file fss.rhai (in {}); did you mean "fs"?"#,
        out.dir.path().display()
    ));
}

#[test]
fn a_mistyped_function_gets_the_nearest_names_in_plain_words() {
    let out = Test::new().script("shel(\"ls\");\n").run();
    out.code(2)
        .err_has("main.rhai:1:1: function not found: shel(a string); did you mean `shell`?");
    assert!(
        !out.stderr.contains("ImmutableString"),
        "{}",
        out.describe()
    );
    let out = Test::new()
        .script("fn gzip_all(dir) { dir }\ngzip_al(\"logs\");\n")
        .run();
    out.code(2).err_has("did you mean `gzip_all`");
}

/// `check` never calls a proc's closure nor a function the top level does not call, yet
/// finds a mistyped function in them; real functions (prun's, Rhai's, the script's own,
/// a keyword like `type_of`, a module's) and method calls are not taken for mistakes.
#[test]
fn check_finds_a_mistyped_function_in_a_closure_it_never_calls() {
    let out = Test::new()
        .script(
            r#"import "fs" as fs;
proc("a", |ctx| { shel("ls"); });
fn tidy(dir) { gzip_al(dir); fs::copy("a", "b"); print(type_of(dir.trim())); }
fn gzip_all(dir) { shell(`gzip -r ${dir}`); tidy(dir) }
run("a");
"#,
        )
        .raw(&["check", "main.rhai"])
        .run();
    out.code(2)
        .err_has("main.rhai:2:19: function not found: shel(...); did you mean `shell`?")
        .err_has("main.rhai:3:16: function not found: gzip_al(...); did you mean `gzip_all`")
        .err_has("prun: check: 2 problems found");
    // A call that stops the top level is told once, by its error.
    let out = Test::new()
        .script("shel(\"ls\");\n")
        .raw(&["check", "main.rhai"])
        .run();
    out.code(2)
        .err_has("main.rhai:1:1: function not found: shel(a string); did you mean `shell`?")
        .err_has("prun: check: 1 problem found");
}

#[test]
fn a_mistyped_module_function_gets_the_nearest_functions_of_that_module() {
    let out = Test::new()
        .script("import \"rclone\" as r;\nr::newst(\"a\", \"b\");\n")
        .run();
    out.code(2).err_has(
        "main.rhai:2:4: function not found: r::newst(a string, a string); did you mean `r::newest`?",
    );
    let out = Test::new()
        .script("import \"rclone\" as r;\nr::newest();\n")
        .run();
    out.code(2).err_has(
        "function r::newest() does not exist: `r::newest` is called as r::newest(src, dest_dir)",
    );
    // A module of the script's own, in a proc: its top level ran once (at the import).
    let out = Test::new()
        .file(
            "mine.rhai",
            "append_file(\"loaded\", \"x\");\nfn hello(x) { x }\n",
        )
        .script("import \"mine\" as mine;\nproc(\"a\", #{ now: true }, |ctx| mine::helo(1));\n")
        .run();
    out.code(1)
        .out_has("function not found: mine::helo(an integer); did you mean `mine::hello`?");
    assert_eq!(out.read("loaded"), "x", "{}", out.describe());
}

#[test]
fn rhai_type_names_are_put_into_words() {
    let out = Test::new().script("shell(42);\n").run();
    out.code(2).err_has(
        "function shell(an integer) does not exist: `shell` is called as shell(a string) or shell(a string, a map)",
    );
    let out = Test::new()
        .script("proc(\"a\", #{ now: 1 }, || 1);\n")
        .run();
    out.code(2).err_has("`now` must be a bool, not an integer");
    let out = Test::new()
        .script("exec([\"true\"], #{ env: [1] });\n")
        .run();
    out.code(2)
        .err_has("option `env` must be a map, not an array");
    let out = Test::new().script("let f = |x| x;\nf.call();\n").run();
    out.code(2)
        .err_has("main.rhai:2:3: the closure cannot be called with no arguments");
    assert!(!out.stderr.contains("anon$"), "{}", out.describe());
    for jargon in ["i64", "ImmutableString", "rhai::", "FnPtr"] {
        assert!(!out.stderr.contains(jargon), "{jargon}\n{}", out.describe());
    }
}

#[test]
fn an_option_of_the_wrong_type_or_range_names_what_was_given() {
    for (script, want) in [
        // A shell body is a command line: a number or an array is not run as its text.
        (
            "proc(\"a\", #{ shell: 42, now: true });\n",
            "proc \"a\": `shell` must be a string (a shell command line), not 42",
        ),
        (
            "proc(\"a\", #{ shell: [\"true\"], now: true });\n",
            "proc \"a\": `shell` must be a string (a shell command line), not an array",
        ),
        // An integer out of range is shown as written, not as "an integer".
        (
            "set_options(#{ keep_runs: -1 });\n",
            "set_options: `keep_runs` must be an integer, 0 or more (0 keeps every run), not -1",
        ),
        (
            "set_options(#{ parallel: 0 });\n",
            "set_options: `parallel` must be a positive integer, not 0",
        ),
        (
            "proc(\"a\", #{ help: \"one\\ntwo\", shell: \"true\" });\n",
            "proc \"a\": `help` is one line of printable text; \"one\\ntwo\" holds a line break or another control character",
        ),
        (
            "proc(\"a\", #{ locks: [\"db\", #{}], shell: \"true\" });\n",
            "proc \"a\": `locks` entries must be lock names (non-empty strings)",
        ),
        (
            "proc(\"a\", #{ env: #{ A: \"x\", B: [1] }, shell: \"true\" });\n",
            "proc \"a\": `env` value of B must be a string, a number or a bool, not an array",
        ),
        // A zero limit ended the command as it started, or not, whichever came first.
        (
            "proc(\"a\", #{ timeout: 0, shell: \"true\" });\n",
            "proc \"a\": `timeout`: must be more than 0 (leave it out for no time limit)",
        ),
        (
            "proc(\"a\", #{ retries: 10000000000, shell: \"true\" });\n",
            "proc \"a\": `retries` must be 0 or more, at most 4294967295, not 10000000000",
        ),
        (
            "proc(\"a\", #{ output: 3, shell: \"true\" });\n",
            "proc \"a\": `output` must be one of \"log\", \"stream\" or \"grouped\", not 3",
        ),
        (
            "proc(\"a\", #{ resources: #{ cpus: [2] }, shell: \"true\" });\n",
            "proc \"a\": `resources`: `cpus` is a count: it must be a whole number like 2, not an array",
        ),
        // A resource the budget does not have, near one it has.
        (
            "proc(\"a\", #{ resources: #{ cpu: 2 }, shell: \"true\" });\n",
            "proc \"a\" needs cpu 2 but the budget has no `cpu`; did you mean `cpus`?",
        ),
        (
            "proc(\"a\", #{ interactive: \"yes\", shell: \"true\" });\n",
            "proc \"a\": `interactive` must be a bool, not \"yes\"",
        ),
    ] {
        let out = Test::new()
            .script(script)
            .raw(&["check", "main.rhai"])
            .run();
        out.code(2).err_has(&format!("main.rhai:1:1: {want}"));
        assert!(!out.stderr.contains("i64"), "{}", out.describe());
    }
}

#[test]
fn a_run_that_schedules_nothing_lists_the_targets() {
    let script = r#"
proc("fetch", #{ help: "download the data", cmd: ["touch", "fetched"] });
proto("build::[env]", #{ help: "build one env", arg_choices: #{ env: ["dev", "prod"] } }, |ctx, env| 1);
shell("touch top-ran");
"#;
    let out = Test::new().script(script).run();
    out.ok()
        .out_has("nothing to run: name targets (prun main.rhai TARGET ...)")
        .out_has("fetch         download the data")
        .out_has("build::[env]  build one env  [env: dev, prod]")
        .out_lacks("succeeded");
    assert!(out.exists("top-ran") && !out.exists("fetched"));
    // A target, or a proc the script runs, is something to do: no listing.
    Test::new()
        .script(script)
        .args(&["fetch"])
        .run()
        .ok()
        .out_lacks("nothing to run");
    Test::new()
        .script(&format!("{script}run(\"fetch\");\n"))
        .run()
        .ok()
        .out_lacks("nothing to run");
    // -q prints nothing when nothing failed.
    let out = Test::new().script(script).args(&["-q"]).run();
    out.ok();
    assert_eq!(out.stdout, "", "{}", out.describe());
}

#[test]
fn completions_are_printed_for_bash_zsh_and_fish() {
    for (shell, marker) in [
        ("bash", "complete -F"),
        ("zsh", "#compdef prun"),
        ("fish", "complete -c prun"),
    ] {
        let out = Test::new().raw(&["completions", shell]).run();
        out.ok()
            .out_has(marker)
            .out_has("parallel")
            .out_has("dry-run");
    }
    Test::new().raw(&["completions", "tcsh"]).run().code(64);
}

/// Runs `script` in `shell` (`bash` or `fish`, without the user's configuration) in
/// `dir`, where the completion script `prun.<shell>` was written; its stdout.
fn in_shell(dir: &std::path::Path, shell: &str, script: &str) -> String {
    let norc = if shell == "bash" {
        "--norc"
    } else {
        "--no-config"
    };
    let out = std::process::Command::new(shell)
        .args([norc, "-c", script])
        .current_dir(dir)
        .output()
        .expect("run the shell");
    assert!(out.status.success(), "{shell}: {out:?}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// What the completion script of `shell`, loaded in that shell, offers for `line` (in
/// bash, with the function the script registered for prun).
fn completed(dir: &std::path::Path, shell: &str, line: &str) -> Vec<String> {
    let script = match shell {
        "bash" => format!(
            "source prun.bash; COMP_LINE='{line}'; COMP_POINT=${{#COMP_LINE}}; \
             read -ra COMP_WORDS <<< \"$COMP_LINE\"; [[ $COMP_LINE == *' ' ]] && COMP_WORDS+=(''); \
             COMP_CWORD=$(( ${{#COMP_WORDS[@]}} - 1 )); \
             f=$(complete -p prun); f=${{f#*-F }}; f=${{f%% *}}; \
             $f prun \"${{COMP_WORDS[-1]}}\" \"${{COMP_WORDS[-2]}}\"; printf '%s\\n' \"${{COMPREPLY[@]}}\""
        ),
        _ => format!("source prun.fish; complete -C '{line}'"),
    };
    in_shell(dir, shell, &script)
        .lines()
        .map(|l| l.split('\t').next().unwrap_or(l).to_string())
        .filter(|l| !l.is_empty())
        .collect()
}

/// The completion scripts load in their shells and complete prun's flags and their
/// values before and after the script's path. clap's fish script took the script's path
/// for a subcommand, so nothing completed after it, and failed on an option still
/// waiting for its value (`--output <Tab>` offered files).
#[test]
#[cfg_attr(prun_no_doc_tools, ignore = "needs zsh, fish and man (man-db)")]
fn completions_load_in_their_shells_and_complete_flags_after_the_script_path() {
    let t = Test::new().script("proc(\"a\", #{ now: true, cmd: [\"true\"] });\n");
    let dir = t.dir().to_path_buf();
    for shell in ["bash", "zsh", "fish"] {
        let out = Test::new().raw(&["completions", shell]).run();
        std::fs::write(dir.join(format!("prun.{shell}")), &out.stdout).expect("write");
        let syntax = std::process::Command::new(shell)
            .args(["-n", &format!("prun.{shell}")])
            .current_dir(&dir)
            .output()
            .expect("run the shell");
        assert!(syntax.status.success(), "{shell} -n: {syntax:?}");
    }
    let zsh = std::process::Command::new("zsh")
        .args(["-f", "-c", "autoload -U compinit; compinit -u; source ./prun.zsh; print -r -- ${+functions[_prun]}"])
        .current_dir(&dir)
        .output()
        .expect("run zsh");
    assert_eq!(String::from_utf8_lossy(&zsh.stdout).trim(), "1", "{zsh:?}");
    for shell in ["bash", "fish"] {
        for line in [
            "prun --out",
            "prun main.rhai --out",
            "prun main.rhai -j 2 --out",
        ] {
            assert_eq!(
                completed(&dir, shell, line),
                ["--output"],
                "{shell}: {line}"
            );
        }
        for line in ["prun --output ", "prun main.rhai --output "] {
            let mut modes = completed(&dir, shell, line);
            modes.sort();
            assert_eq!(modes, ["grouped", "log", "stream"], "{shell}: {line}");
        }
    }
    // After `--` the words are the script's: prun's flags are not offered there.
    assert!(completed(&dir, "fish", "prun main.rhai -- --out").is_empty());
    // A subcommand's name is offered before a script's path only.
    assert!(completed(&dir, "fish", "prun ch").contains(&"check".to_string()));
    assert!(!completed(&dir, "fish", "prun main.rhai ch").contains(&"check".to_string()));
}

/// bash's completion reads prun's command line as fish's does: after `--` the words are
/// the script's (files, not prun's flags), a subcommand's name is offered before a
/// script's path only, and where a path goes (the script, `list`'s, `check`'s) the
/// files are offered, the subcommands that match beside them. clap's script offered
/// prun's flags and subcommands everywhere, so bash showed no file for `prun <Tab>`.
#[test]
fn bash_completes_scripts_and_leaves_the_words_after_dash_dash_to_the_script() {
    let out = Test::new().raw(&["completions", "bash"]).run();
    let dir = out.path("");
    std::fs::write(dir.join("prun.bash"), &out.stdout).expect("write");
    std::fs::write(dir.join("main.rhai"), "").expect("write");
    std::fs::write(dir.join("check-all.rhai"), "").expect("write");
    let bash = |line: &str| completed(&dir, "bash", line);
    assert!(bash("prun main.rhai -- --out").is_empty());
    assert!(bash("prun main.rhai -- ").is_empty());
    assert!(bash("prun main.rhai ch").is_empty());
    assert!(bash("prun list ").is_empty(), "files, by bash's default");
    assert!(bash("prun -j 2 main.rhai ").is_empty());
    let mut first = bash("prun ch");
    first.sort();
    assert_eq!(first, ["check", "check-all.rhai"]);
    assert_eq!(bash("prun main.rhai -j 2 --out"), ["--output"]);
    assert_eq!(bash("prun list --al"), ["--allow"]);
    let mut shells = bash("prun completions ");
    shells.retain(|s| !s.starts_with('-'));
    assert!(shells.contains(&"fish".to_string()), "{shells:?}");
}

/// What an interactive zsh, with the completion script installed, makes of `line` after
/// a Tab: the line as it then stands. `marker` (`#1`, each line its own), typed after the
/// Tab, marks where completion ended (zsh reads it only once the Tab is done), so no
/// sleep is needed.
fn zsh_after_tab(dir: &std::path::Path, socket: &str, line: &str, marker: &str) -> String {
    let tmux = |args: &[&str]| {
        std::process::Command::new("tmux")
            .args(["-L", socket, "-f", "/dev/null"])
            .args(args)
            .env_remove("TMUX")
            .output()
            .expect("run tmux")
    };
    tmux(&["send-keys", "-t", "z", "C-u", line, "Tab", marker]);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let pane =
            String::from_utf8_lossy(&tmux(&["capture-pane", "-p", "-t", "z"]).stdout).into_owned();
        let prompt = |l: &&str| l.starts_with("$ ") && l.trim_end().ends_with(marker);
        if let Some(done) = pane.lines().rev().find(prompt) {
            let done = done.trim_end().trim_start_matches("$ ");
            return done.strip_suffix(marker).unwrap_or(done).to_string();
        }
        assert!(
            std::time::Instant::now() < deadline,
            "zsh did not complete {line:?} in {}: {pane}",
            dir.display()
        );
        std::thread::yield_now();
    }
}

/// zsh's completion reads prun's command line as bash's and fish's do. clap's zsh script
/// took the first word for the script's path and the next for a subcommand, so `prun
/// list ma<Tab>` gave `man`, `prun s.rhai ch<Tab>` gave `check`, and after `--` prun's
/// flags were offered.
#[test]
#[cfg_attr(prun_no_doc_tools, ignore = "needs zsh, fish and man (man-db)")]
#[cfg_attr(prun_no_tmux, ignore = "tmux is not installed")]
fn zsh_completes_a_subcommands_script_and_leaves_the_words_after_dash_dash_to_the_script() {
    let out = Test::new().raw(&["completions", "zsh"]).run();
    let dir = out.path("");
    std::fs::write(dir.join("_prun"), &out.stdout).expect("write");
    for f in ["main.rhai", "check-all.rhai"] {
        std::fs::write(dir.join(f), "").expect("write");
    }
    std::fs::write(
        dir.join(".zshrc"),
        "PS1='$ '\nfpath=(${ZDOTDIR} $fpath)\nautoload -U compinit; compinit -u -D\n",
    )
    .expect("write");
    let socket = format!("prun-zsh-{}", std::process::id());
    let start = std::process::Command::new("tmux")
        .args([
            "-L",
            &socket,
            "-f",
            "/dev/null",
            "new-session",
            "-d",
            "-s",
            "z",
        ])
        .args(["-x", "200", "-y", "20", "-c"])
        .arg(&dir)
        .arg(format!("ZDOTDIR='{}' zsh -i", dir.display()))
        .env_remove("TMUX")
        .status()
        .expect("run tmux");
    assert!(start.success());
    let lines = [
        ("prun list ma", "prun list main.rhai "),
        ("prun main.rhai ch", "prun main.rhai check-all.rhai "),
        ("prun main.rhai -- --ou", "prun main.rhai -- --ou"),
        ("prun main.rhai --ou", "prun main.rhai --output="),
        (
            "prun main.rhai build --output st",
            "prun main.rhai build --output stream ",
        ),
        ("prun --ou", "prun --output="),
        ("prun history --li", "prun history --limit="),
    ];
    let got: Vec<(String, String)> = lines
        .iter()
        .enumerate()
        .map(|(i, (line, _))| {
            let marker = format!("#{i}");
            (
                line.to_string(),
                zsh_after_tab(&dir, &socket, line, &marker),
            )
        })
        .collect();
    let _ = std::process::Command::new("tmux")
        .args(["-L", &socket, "kill-server"])
        .status();
    for ((line, want), (_, got)) in lines.iter().zip(&got) {
        assert_eq!(got, want, "zsh: {line}");
    }
}

#[test]
#[cfg_attr(prun_no_doc_tools, ignore = "needs zsh, fish and man (man-db)")]
fn the_man_page_renders_with_man() {
    let out = Test::new().raw(&["man"]).run();
    let dir = out.path("");
    std::fs::write(dir.join("prun.1"), &out.stdout).expect("write the page");
    let man = std::process::Command::new("man")
        .args(["-l", "prun.1"])
        .current_dir(&dir)
        .env("MANPAGER", "cat")
        .env("MANWIDTH", "100")
        .output()
        .expect("run man");
    let page = String::from_utf8_lossy(&man.stdout);
    assert!(man.status.success(), "{man:?}");
    for part in [
        "NAME",
        "SYNOPSIS",
        "prun check SCRIPT.rhai",
        "--output",
        "--dry-run",
    ] {
        assert!(page.contains(part), "{part} not in\n{page}");
    }
}

/// prun's one man page describes its subcommands itself, with their options: clap's
/// page listed them as `prun-check(1)`, `prun-history(1)`..., pages `prun man` never
/// makes (`man prun-history` finds nothing), and so `-n/--limit` or `--html` were in no
/// page. It also has the exit statuses a cron job is judged by.
#[test]
fn the_man_page_describes_the_subcommands_and_the_exit_statuses() {
    let out = Test::new().raw(&["man"]).run();
    out.ok()
        .out_lacks("prun\\-check(1)")
        .out_lacks("prun\\-history")
        .out_has("prun history")
        .out_has(r"\-\-limit")
        .out_has(r"\-\-html")
        .out_has("Show the recent runs of a script")
        .out_has(".SH \"EXIT STATUS\"")
        .out_has("another run holds the lock");
}

#[test]
fn the_man_page_is_made_from_the_command_line_definition() {
    let out = Test::new().raw(&["man"]).run();
    out.ok()
        .out_has(".TH prun 1")
        .out_has(r"\-\-parallel")
        .out_has(r"\-\-dry\-run")
        .out_has("prun\\fR check SCRIPT.rhai");
}

/// A function of a definition file: its name and its parameters' names and types.
type Signature = (String, Vec<(String, String)>);

/// One statement of a `.d.rhai` file, checked against the grammar of Rhai's definition
/// files: `module NAME;`, `fn|op [get |set ]NAME(PARAMS) [-> TYPE];`, `const|let NAME:
/// TYPE;`. Returns the function's name and parameters for `fn` statements.
fn parse_definition(stmt: &str) -> Result<Option<Signature>, String> {
    let ident = |s: &str| {
        !s.is_empty()
            && s.chars()
                .next()
                .is_some_and(|c| c.is_alphabetic() || c == '_')
            && s.chars().all(|c| c.is_alphanumeric() || c == '_')
    };
    let body = stmt
        .strip_suffix(';')
        .ok_or_else(|| format!("no `;`: {stmt}"))?;
    if let Some(name) = body.strip_prefix("module ") {
        return ident(name)
            .then_some(None)
            .ok_or_else(|| format!("bad module: {stmt}"));
    }
    if let Some(rest) = body.strip_prefix("const ").or(body.strip_prefix("let ")) {
        let (name, ty) = rest.split_once(": ").ok_or(format!("bad const: {stmt}"))?;
        return (ident(name) && !ty.is_empty())
            .then_some(None)
            .ok_or_else(|| format!("bad const: {stmt}"));
    }
    let (is_fn, rest) = match (body.strip_prefix("fn "), body.strip_prefix("op ")) {
        (Some(r), _) => (true, r),
        (_, Some(r)) => (false, r),
        _ => return Err(format!("unknown statement: {stmt}")),
    };
    let rest = rest
        .strip_prefix("get ")
        .or(rest.strip_prefix("set "))
        .unwrap_or(rest);
    let open = rest.find('(').ok_or(format!("no `(`: {stmt}"))?;
    let mut depth = 0;
    let close = rest[open..]
        .char_indices()
        .find_map(|(i, c)| {
            match c {
                '(' => depth += 1,
                ')' => depth -= 1,
                _ => {}
            }
            (depth == 0).then_some(open + i)
        })
        .ok_or(format!("no `)`: {stmt}"))?;
    let name = &rest[..open];
    let tail = rest[close + 1..].trim();
    if !(tail.is_empty()
        || tail
            .strip_prefix("-> ")
            .is_some_and(|t| !t.trim().is_empty()))
    {
        return Err(format!("bad return type: {stmt}"));
    }
    if is_fn && !ident(name) {
        return Err(format!("bad function name: {stmt}"));
    }
    let mut params = Vec::new();
    let inner = &rest[open + 1..close];
    for p in inner.split(", ").filter(|p| !p.is_empty()) {
        if !is_fn {
            continue;
        }
        let (n, ty) = p
            .split_once(": ")
            .ok_or(format!("bad parameter `{p}`: {stmt}"))?;
        let n = n.strip_prefix("...").unwrap_or(n);
        if !ident(n) || ty.is_empty() || ty.matches('<').count() != ty.matches('>').count() {
            return Err(format!("bad parameter `{p}`: {stmt}"));
        }
        params.push((n.to_string(), ty.to_string()));
    }
    Ok(is_fn.then(|| (name.to_string(), params)))
}

#[test]
fn definitions_into_a_file_say_it_is_not_a_directory() {
    let out = Test::new()
        .file("defs", "mine")
        .raw(&["definitions", "defs"])
        .run();
    out.code(64)
        .err_has("prun: definitions: defs is not a directory");
    assert_eq!(out.read("defs"), "mine");
}

#[test]
fn definitions_load_back_and_describe_the_api() {
    let out = Test::new().raw(&["definitions", "defs"]).run();
    out.ok();
    let mut functions: Vec<Signature> = Vec::new();
    let mut files = 0;
    for entry in std::fs::read_dir(out.path("defs")).expect("defs") {
        let path = entry.expect("entry").path();
        assert!(path.to_string_lossy().ends_with(".d.rhai"), "{path:?}");
        files += 1;
        let text = std::fs::read_to_string(&path).expect("read");
        let code: Vec<&str> = text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with("//"))
            .collect();
        assert_eq!(code.first(), Some(&"module static;"), "{path:?}");
        for stmt in code {
            match parse_definition(stmt) {
                Ok(Some(f)) if path.ends_with("prun.d.rhai") => functions.push(f),
                Ok(_) => {}
                Err(e) => panic!("{}: {e}", path.display()),
            }
        }
    }
    assert_eq!(files, 4);
    // The names and parameters make a script Rhai's own parser accepts.
    let mut script = String::new();
    for (i, (name, params)) in functions.iter().enumerate() {
        let names: Vec<&str> = params.iter().map(|(n, _)| n.as_str()).collect();
        script.push_str(&format!("fn {name}_{i}({}) {{ }}\n", names.join(", ")));
    }
    rhai::Engine::new()
        .compile(&script)
        .unwrap_or_else(|e| panic!("{e}\n{script}"));
    let has = |name: &str, params: &[(&str, &str)]| {
        functions.iter().any(|(n, p)| {
            n == name
                && p.len() == params.len()
                && p.iter()
                    .zip(params)
                    .all(|((a, b), (c, d))| a == c && b == d)
        })
    };
    for (name, params) in [
        (
            "proc",
            &[("name", "String"), ("opts", "Map"), ("body", "FnPtr")][..],
        ),
        ("proc", &[("name", "String"), ("body", "FnPtr")]),
        (
            "proto",
            &[("pattern", "String"), ("opts", "Map"), ("body", "FnPtr")],
        ),
        ("shell", &[("cmd", "String")]),
        ("shell", &[("cmd", "String"), ("opts", "Map")]),
        ("exec", &[("argv", "Array"), ("opts", "Map")]),
        ("run", &[("pattern", "String")]),
        ("run", &[("patterns", "Array")]),
        ("wait", &[]),
        ("wait", &[("name", "String")]),
    ] {
        assert!(
            has(name, params),
            "no {name}{params:?} in prun.d.rhai: {functions:?}"
        );
    }
    // The constant every script sees, so that an editor does not flag it as undefined.
    let prun = out.read("defs/prun.d.rhai");
    assert!(
        prun.lines().any(|l| l == "const NO_FAILURES: NoFailures;"),
        "{prun}"
    );
}

/// A wrong option value does not stop `check`: the proc is defined without it and the
/// evaluation goes on, so every wrong value is listed with the other problems. A run
/// still stops at the first one.
#[test]
fn check_lists_every_wrong_option_value_and_a_run_stops_at_the_first() {
    let script = r#"proc("a", #{ interactive: "yes", shell: "true" });
proc("b", #{ output: "streem", deps: ["a"], shell: "true" });
proc("c", #{ deps: ["nope"], retry_delay: "1s", shell: "true" });
proto("p::[x]", #{ retries: -1, wave: "late", shell: "true" });
proc("g", #{ cmd: [], deps: ["b"] });
run("b");
"#;
    let out = Test::new()
        .script(script)
        .raw(&["check", "main.rhai"])
        .run();
    out.code(2)
        .err_has("main.rhai:1:1: proc \"a\": `interactive` must be a bool, not \"yes\"")
        .err_has("main.rhai:2:1: proc \"b\": `output` must be one of \"log\", \"stream\" or \"grouped\", not \"streem\"")
        .err_has("main.rhai:3:1: proc \"c\": `retry_delay` is the pause before each retry")
        .err_has(r#"main.rhai:3:1: proc "c" depends on "nope", which does not exist"#)
        .err_has("main.rhai:4:1: proto \"p::[x]\": `wave` must be an integer, not a string")
        .err_has("main.rhai:4:1: proto \"p::[x]\": `retries` must be 0 or more")
        .err_has("main.rhai:5:1: proc \"g\": `cmd` must not be empty")
        .err_has("prun: check: 7 problems found");
    let run = Test::new().script(script).run();
    run.code(2)
        .err_has("main.rhai:1:1: proc \"a\": `interactive` must be a bool, not \"yes\"");
    assert!(!run.stderr.contains("streem"), "{}", run.describe());
}

/// A missing or doubled body (an error about no single option), a name defined twice and
/// a name no proc can have do not stop `check` either: each is listed with the problems
/// of the calls after it, with its place.
#[test]
fn check_lists_missing_and_doubled_bodies_with_the_other_problems() {
    let out = Test::new()
        .script(
            r#"proc("a", #{ deps: ["nope"] });
proc("b", #{ cmd: ["true"], shell: "true" });
proto("p::[x]", #{ help: "h" });
proc("c", #{ cmd: ["true"] }, || 1);
proc("d", #{ deps: ["zzz"], timout: 2 }, || 1);
proc("a", || 2);
proc("", || 1);
proto("q::[x", || 1);
proc("e", #{ deps: ["yyy"] }, || 1);
run("d");
"#,
        )
        .raw(&["check", "main.rhai"])
        .run();
    out.code(2)
        .err_has("main.rhai:6:1: proc \"a\" already exists (defined at main.rhai:1:1)")
        .err_has("main.rhai:7:1: a proc or proto name cannot be empty")
        .err_has("main.rhai:8:1: invalid name pattern \"q::[x\": a '[' has no closing ']'")
        .err_has(r#"main.rhai:9:1: proc "e" depends on "yyy", which does not exist"#)
        .err_has("main.rhai:1:1: proc \"a\": it has no body: give a closure, `cmd: [...]` or `shell: \"...\"`")
        .err_has(r#"main.rhai:1:1: proc "a" depends on "nope", which does not exist"#)
        .err_has("main.rhai:2:1: proc \"b\": give only one body: a closure, `cmd` or `shell`")
        .err_has("main.rhai:3:1: proto \"p::[x]\": it has no body")
        .err_has("main.rhai:4:1: proc \"c\": give only one body")
        .err_has("main.rhai:5:1: proc \"d\": unknown option `timout`")
        .err_has(r#"main.rhai:5:1: proc "d" depends on "zzz", which does not exist"#)
        .err_has("prun: check: 11 problems found");
}

/// A `now` proc whose `proc(...)` meets a cycle or a wave violation through the procs
/// defined before it: the run throws at that call, and `check` tells the fault once, there.
#[test]
fn check_tells_a_now_procs_fault_once_at_its_call() {
    let out = Test::new()
        .script(
            r#"proc("a", #{ deps: ["b"], shell: "true" });
proc("b", #{ deps: ["a"], now: true, shell: "true" });
proc("hi", #{ wave: 1, shell: "true" });
proc("low", #{ deps: ["hi"], now: true, shell: "true" });
"#,
        )
        .raw(&["check", "main.rhai"])
        .run();
    out.code(2)
        .err_has("main.rhai:2:1: proc \"b\" (now: true) cannot be scheduled: dependency cycle: b -> a -> b")
        .err_has("main.rhai:4:1: proc \"low\" (now: true) cannot be scheduled: proc \"low\" (wave 0) cannot depend on proc \"hi\" (wave 1)")
        .err_has("prun: check: 2 problems found");
    assert!(!out.stderr.contains("main.rhai:1:1"), "{}", out.describe());
}

/// A definition refused because it would close a cycle through a proc waiting for it is
/// told once, at its call; the proc left out is not told again as a dependency that
/// names nothing.
#[test]
fn check_tells_a_refused_definition_once() {
    let out = Test::new()
        .script(
            r#"proc("a", #{ deps: ["b"], shell: "true" });
run("a");
proc("b", #{ deps: ["a"], shell: "true" });
"#,
        )
        .raw(&["check", "main.rhai"])
        .run();
    out.code(2)
        .err_has("main.rhai:3:1: proc \"b\" cannot be defined: dependency cycle: a -> b -> a")
        .err_has("prun: check: 1 problem found");
}

/// A proto refused because a proc it would make closes a cycle through a proc waiting for
/// it is told once too: the dependency on that name is not told again as naming nothing.
#[test]
fn check_tells_a_refused_proto_once() {
    let out = Test::new()
        .script(
            r#"proc("a", #{ deps: ["build::z"], shell: "true" });
run("a");
proto("build::[n]", #{ deps: ["a"], shell: "true" });
"#,
        )
        .raw(&["check", "main.rhai"])
        .run();
    out.code(2)
        .err_has("main.rhai:3:1: proto \"build::[n]\" cannot be defined: dependency cycle: a -> build::z -> a")
        .err_has("prun: check: 1 problem found");
}

/// A refusal the script catches itself (`try { ... } catch`) is the script's business: a
/// run goes on as its `catch` says, so `check` reports it no more, and follows the
/// `catch` as the run does. It counted one as a problem and exited 2. A refusal the
/// `catch` throws again, or one outside any `try` (a proc's body written inside one runs
/// later, outside it), is still a problem.
#[test]
fn a_refusal_the_script_catches_is_no_problem_of_check() {
    for script in [
        r#"try { proc("a", #{ timeout: -1, shell: "true" }); } catch { proc("a", #{ shell: "true" }); }
run("a");"#,
        r#"try { proc("a", #{ bogus: 1, shell: "true" }); } catch { proc("b", #{ shell: "true" }); }
run("b");"#,
        r#"proc("a", #{ shell: "true" }); try { proc("a", #{ shell: "true" }); } catch {} run("a");"#,
        r#"try { exec(["true"], #{ bogus: 1 }); } catch {}"#,
        r#"try { set_options(#{ bogus: 1 }); } catch {}"#,
        r#"fn define() { proc("a", #{ timeout: -1, shell: "true" }); }
try { define(); } catch { proc("a", #{ shell: "true" }); }
run("a");"#,
        r#"try { shel("x"); } catch {}"#,
    ] {
        Test::new()
            .script(script)
            .raw(&["check", "main.rhai"])
            .run()
            .ok()
            .out_has("ok: ");
    }
    for (script, said) in [
        (
            r#"try { proc("a", #{ timeout: -1, shell: "true" }); } catch (e) { throw e; }"#,
            "invalid duration -1: a duration cannot be negative",
        ),
        (
            r#"try { proc("b", |ctx| exec(["x"], #{ bogus: 1 })); } catch {}"#,
            "main.rhai:1:23: exec: unknown option `bogus`",
        ),
        (
            r#"proc("a", #{ timeout: -1, shell: "true" });"#,
            "main.rhai:1:1: proc \"a\": `timeout`: invalid duration -1",
        ),
    ] {
        Test::new()
            .script(script)
            .raw(&["check", "main.rhai"])
            .run()
            .code(2)
            .err_has(said);
    }
}

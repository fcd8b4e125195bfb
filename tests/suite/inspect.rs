//! `--dry-run`, `prun list`, `prun graph` and `prun log`.

use std::process::Command;

use crate::support::{Output, Test};

const PIPELINE: &str = r#"
proc("gen", #{ help: "make the data", shell: "echo generated > data.txt" });
proc("use", #{ deps: ["gen"], wave: 1 }, |ctx| { shell("touch used.txt"); 1 });
proto("build::[env]", #{ deps: ["gen"], arg_choices: #{ env: ["dev", "prod"] }, help: "build one env" },
      |ctx, env| { shell(`touch built-${env}`); env });
proc("w0", #{ cmd: ["touch", "w0.txt"] });
"#;

#[test]
fn dry_run_prints_what_would_run_in_order_and_runs_nothing() {
    let out = Test::new()
        .script(&format!(
            "{PIPELINE}\nrun([\"use\", \"build::*\", \"w0\"]);"
        ))
        .args(&["--dry-run"])
        .run();
    out.ok()
        .line("WOULD RUN  gen: echo generated > data.txt")
        .line("WOULD RUN  w0: touch w0.txt")
        .out_has("prun: dry run: 5 would run")
        .out_lacks("slowest");
    for f in ["data.txt", "used.txt", "built-dev", "built-prod", "w0.txt"] {
        assert!(
            !out.exists(f),
            "{f} was created by a dry run\n{}",
            out.describe()
        );
    }
    let pos = |name: &str| {
        out.stdout
            .find(&format!("WOULD RUN  {name}:"))
            .unwrap_or_else(|| panic!("{name} missing\n{}", out.describe()))
    };
    assert!(pos("gen") < pos("build::dev") && pos("gen") < pos("use"));
    assert!(pos("w0") < pos("use"), "wave 1 comes after wave 0");
    assert!(
        out.stdout
            .contains("WOULD RUN  use: (closure at main.rhai:3:42)")
    );
    assert!(!out.stdout.contains("SUCCEEDED"), "{}", out.describe());
}

#[test]
fn dry_run_tells_what_is_up_to_date_and_writes_no_history() {
    let first = Test::new()
        .file("in.txt", "x")
        .script(
            r#"
proc("a", #{ inputs: ["in.txt"], outputs: ["a.out"], shell: "cp in.txt a.out" });
proc("b", #{ deps: ["a"] }, |ctx| 2);
proc("c", |ctx| 3);
run(["b", "c"]);
"#,
        )
        .run();
    first.ok();
    let dir = first.dir.path();
    let prun = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_prun"))
            .args(args)
            .current_dir(dir)
            .env("XDG_STATE_HOME", dir.join("state"))
            .output()
            .expect("run prun")
    };
    let dry = prun(&["main.rhai", "--dry-run"]);
    let text = String::from_utf8_lossy(&dry.stdout);
    assert!(dry.status.success(), "{text}");
    assert!(text.contains("UP_TO_DATE a"), "{text}");
    assert!(text.contains("UP_TO_DATE b"), "{text}");
    assert!(text.contains("WOULD RUN  c:"), "{text}");
    assert!(
        text.contains("prun: dry run: 1 would run, 2 up to date"),
        "{text}"
    );
    let history = prun(&["history", "main.rhai"]);
    let h = String::from_utf8_lossy(&history.stdout);
    assert_eq!(
        h.lines()
            .filter(|l| l.trim_start().starts_with(char::is_numeric))
            .count(),
        1,
        "{h}"
    );
}

#[test]
fn list_shows_procs_protos_help_and_choices_without_running_anything() {
    let out = Test::new()
        .script(&format!("{PIPELINE}\nrun(\"use\");"))
        .before(&["list"])
        .run();
    out.ok()
        .out_has("procs:")
        .out_has("make the data")
        .out_has("protos:")
        .out_has("build::[env]")
        .out_has("build one env")
        .out_has("env: dev, prod");
    assert!(!out.exists("data.txt") && !out.exists("used.txt"));
}

#[test]
fn list_aligns_wide_names_by_columns_and_says_when_a_placeholder_has_no_choice() {
    let script = r#"
proc("構築", #{ help: "build", cmd: ["true"] });
proc("ab", #{ help: "two", cmd: ["true"] });
proto("gz::[file]", #{ help: "compress", arg_choices: #{ file: [] }, cmd: ["gzip", "[file]"] });
"#;
    let out = Test::new().script(script).raw(&["list", "main.rhai"]).run();
    out.ok();
    assert_eq!(
        out.stdout,
        "procs:\n  構築        build\n  ab          two\nprotos:\n  gz::[file]  compress  [file: (none)]\n",
        "{}",
        out.describe()
    );
}

#[test]
fn list_writes_out_the_control_characters_of_a_choice_a_glob_found() {
    // A file name holding an escape sequence (this one sets the terminal's title) is a
    // choice like any other; printed as it is, it would act on the terminal.
    let script = r#"proto("enc::[f]", #{ help: "encode", arg_choices: #{ f: glob("*.wav") } }, |ctx, f| f);"#;
    let out = Test::new()
        .file("evil\x1b]0;owned\x07.wav", "")
        .file("ok.wav", "")
        .script(script)
        .raw(&["list", "main.rhai"])
        .run();
    out.ok();
    assert_eq!(
        out.stdout,
        "protos:\n  enc::[f]  encode  [f: evil\\e]0;owned\\x07.wav, ok.wav]\n",
        "{}",
        out.describe()
    );
}

#[test]
fn list_and_graph_call_no_inputs_or_outputs_closure() {
    // They judged every scheduled proc as a dry run does, without a DB to judge by, so
    // an `inputs` closure's command ran.
    let script = r#"
proc("a", #{ inputs: |ctx| { shell("echo in >> inputs.ran"); [] },
            outputs: |ctx| { shell("echo out >> outputs.ran"); [] } }, || 1);
run("a");
"#;
    for sub in ["list", "graph"] {
        let out = Test::new().script(script).before(&[sub]).run();
        out.ok();
        assert!(
            !out.exists("inputs.ran") && !out.exists("outputs.ran"),
            "prun {sub}: {}",
            out.describe()
        );
    }
}

#[test]
fn list_of_a_script_without_procs_says_so() {
    let out = Test::new()
        .script("let x = 1;\n")
        .raw(&["list", "main.rhai"])
        .run();
    out.ok();
    assert_eq!(out.stdout, "no procs or protos\n", "{}", out.describe());
}

#[test]
fn list_and_graph_interrupted_while_the_script_runs_a_command_print_no_partial_picture() {
    // SIGTERM while the top level (or a closure) ran a command printed what the script had
    // declared so far ("no procs or protos", an empty graph) and exited 0.
    for (sub, script) in [
        (
            "list",
            r#"shell("touch started; exec sleep 30"); proc("p", |ctx| 1);"#,
        ),
        (
            "graph",
            r#"shell("touch started; exec sleep 30"); proc("p", |ctx| 1);"#,
        ),
        (
            "list",
            r#"proc("a", |ctx| 1);
proc("p", #{ deps: [|ctx| { shell("touch started; exec sleep 30"); "a" }] }, |ctx| 1);
run("p");"#,
        ),
    ] {
        let out = Test::new()
            .script(script)
            .before(&[sub])
            .signal_when("started", "TERM")
            .run();
        out.code(130).err_has("prun: interrupted");
        assert_eq!(out.stdout, "", "{sub}: {}", out.describe());
    }
}

fn graph_of_the_pipeline() -> Output {
    Test::new()
        .script(PIPELINE)
        .before(&["graph"])
        .args(&["use", "build::*"])
        .run()
}

#[test]
fn graph_has_the_resolved_edges() {
    let out = graph_of_the_pipeline();
    out.ok()
        .out_has("digraph prun {")
        .out_has("\"gen\" -> \"use\";")
        .out_has("\"gen\" -> \"build::dev\";")
        .out_has("\"gen\" -> \"build::prod\";")
        .out_lacks("\"w0\"");
    assert!(!out.exists("data.txt"));
}

#[test]
fn graph_without_targets_shows_every_proc_and_with_targets_what_the_run_schedules() {
    // As docs/cli.md now says; it said "else of what the script schedules", but a script
    // that schedules `a` gets `b` in its graph too.
    let script = "proc(\"a\", #{ shell: \"true\" });\nproc(\"b\", #{ shell: \"true\" });\nproc(\"c\", #{ shell: \"true\" });\nrun(\"a\");\n";
    let graph = |targets: &[&str]| {
        let out = Test::new()
            .script(script)
            .before(&["graph"])
            .args(targets)
            .run();
        out.ok();
        out.stdout.clone()
    };
    let all = graph(&[]);
    assert!(
        ["\"a\";", "\"b\";", "\"c\";"]
            .iter()
            .all(|n| all.contains(n)),
        "{all}"
    );
    let some = graph(&["b"]);
    assert!(some.contains("\"a\";") && some.contains("\"b\";"), "{some}");
    assert!(!some.contains("\"c\""), "{some}");
}

/// Without targets, a proc's dependencies are drawn as a run would resolve them: a glob
/// as the procs it matches and the protos that would make its names (dashed), a name a
/// proto makes from that name (dashed), a name nothing has as missing (red). The graph
/// drew each dependency as written: `"build::*" -> "all"`, a box named `build::*` that
/// no proc has, and a missing dependency as a box like any other.
#[test]
fn graph_without_targets_resolves_globs_and_marks_proto_made_and_missing_dependencies() {
    let out = Test::new()
        .script(
            "proc(\"setup\", #{ shell: \"true\" });\n\
             proto(\"build::[env]\", #{ arg_choices: #{ env: [\"dev\", \"prod\"] } }, |ctx, env| 1);\n\
             proc(\"lint::a\", #{ shell: \"true\" });\n\
             proc(\"all\", #{ deps: [\"build::*\", \"setup\"], shell: \"true\" });\n\
             proc(\"one\", #{ deps: [\"build::dev\", \"lint::*\"], shell: \"true\" });\n\
             proc(\"c\", #{ deps: [\"zz\"], shell: \"true\" });\n",
        )
        .before(&["graph"])
        .run();
    out.ok()
        .out_lacks("\"build::*\"")
        .out_has("\"build::[env]\" [style=dashed")
        .out_has("\"build::[env]\" -> \"all\";")
        .out_has("\"setup\" -> \"all\";")
        .out_has("\"build::dev\" [style=dashed")
        .out_has("\"build::dev\" -> \"one\";")
        .out_has("\"lint::a\" -> \"one\";")
        .out_has("\"zz\" [style=dashed, color=red")
        .out_has("\"zz\" -> \"c\";");
}

/// With targets, a dependency the run could not resolve (a run says `dependency "zz"
/// missing` and does not run its dependent) is drawn as missing too, not left out: the
/// graph of `c` was `c` alone, as if it depended on nothing.
#[test]
fn graph_with_targets_draws_a_missing_dependency() {
    let out = Test::new()
        .script("proc(\"c\", #{ deps: [\"zz\"], shell: \"true\" });\n")
        .before(&["graph"])
        .args(&["c"])
        .run();
    out.ok()
        .out_has("\"zz\" [style=dashed, color=red")
        .out_has("\"zz\" -> \"c\";");
}

#[test]
fn graph_of_a_target_that_matches_nothing_prints_only_the_error() {
    let out = Test::new()
        .script(PIPELINE)
        .before(&["graph"])
        .args(&["uze"])
        .run();
    out.code(64).err_has("did you mean \"use\"?");
    assert_eq!(out.stdout, "", "{}", out.describe());
}

#[test]
#[cfg_attr(prun_no_dot, ignore = "graphviz `dot` is not installed")]
fn graph_is_valid_dot() {
    let out = graph_of_the_pipeline();
    out.ok();
    if Command::new("dot").arg("-V").output().is_err() {
        assert_ne!(
            std::env::var("PRUN_E2E").as_deref(),
            Ok("require"),
            "graphviz `dot` is required (PRUN_E2E=require)"
        );
        eprintln!("SKIPPED: graphviz `dot` is not installed, so the DOT is not validated");
        return;
    }
    let mut child = Command::new("dot")
        .arg("-Tsvg")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("run dot");
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), out.stdout.as_bytes()).unwrap();
    let svg = child.wait_with_output().unwrap();
    assert!(
        svg.status.success(),
        "dot rejected the graph:\n{}",
        out.stdout
    );
    assert!(String::from_utf8_lossy(&svg.stdout).contains("<svg"));
}

#[test]
fn log_prints_the_latest_log_of_a_proc() {
    let first = Test::new()
        .script(r#"proc("talk", #{ shell: "echo first" }); run("talk");"#)
        .run();
    first.ok();
    let dir = first.dir.path();
    let prun = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_prun"))
            .args(args)
            .current_dir(dir)
            .env("XDG_STATE_HOME", dir.join("state"))
            .output()
            .expect("run prun")
    };
    std::fs::write(
        dir.join("main.rhai"),
        r#"proc("talk", #{ shell: "echo second" }); run("talk");"#,
    )
    .unwrap();
    assert!(prun(&["main.rhai"]).status.success());
    let log = prun(&["log", "main.rhai", "talk"]);
    let text = String::from_utf8_lossy(&log.stdout);
    assert!(log.status.success());
    assert!(text.contains("second") && !text.contains("first"), "{text}");
    let missing = prun(&["log", "main.rhai", "nope"]);
    assert_eq!(missing.status.code(), Some(64));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("\"nope\""));
    // A mistyped name gets the nearest procs that have a log, as a wrong name does
    // everywhere else; it got none.
    let typo = prun(&["log", "main.rhai", "tlak"]);
    assert_eq!(typo.status.code(), Some(64));
    let err = String::from_utf8_lossy(&typo.stderr);
    assert!(
        err.contains("\"tlak\"") && err.contains("did you mean \"talk\"?"),
        "{err}"
    );
}

/// A script whose runs left no proc log (its top level printed, to `.script.log`; its
/// procs did not) has runs: `prun log` of a proc says there is no log of it, and does not
/// claim that no run is recorded, offering the script itself as the nearest one that has.
#[test]
fn log_of_a_script_whose_procs_printed_nothing_does_not_say_it_never_ran() {
    let first = Test::new()
        .script(r#"shell("echo top level"); proc("quiet", #{ cmd: ["true"] }); run("quiet");"#)
        .run();
    first.ok();
    let dir = first.dir.path();
    let log = Command::new(env!("CARGO_BIN_EXE_prun"))
        .args(["log", "main.rhai", "quiet"])
        .current_dir(dir)
        .env("XDG_STATE_HOME", dir.join("state"))
        .output()
        .expect("run prun");
    assert_eq!(log.status.code(), Some(64));
    let err = String::from_utf8_lossy(&log.stderr);
    assert!(
        err.contains("no log of proc \"quiet\"")
            && !err.contains("no run of")
            && !err.contains("did you mean"),
        "{err}"
    );
}

#[test]
fn the_log_of_a_command_body_retried_into_a_silent_success_ends_with_its_footer() {
    // The first attempt prints and fails; the second prints nothing and succeeds.
    let first = Test::new()
        .script(
            r#"proc("flaky", #{ retries: 1, shell: "[ -e tried ] || { touch tried; echo 'first try' >&2; exit 1; }" }); run("flaky");"#,
        )
        .run();
    first.ok();
    let dir = first.dir.path();
    let log = Command::new(env!("CARGO_BIN_EXE_prun"))
        .args(["log", "main.rhai", "flaky"])
        .current_dir(dir)
        .env("XDG_STATE_HOME", dir.join("state"))
        .output()
        .expect("run prun");
    assert!(log.status.success());
    let text = String::from_utf8_lossy(&log.stdout);
    let lines: Vec<&str> = text.lines().collect();
    let commands = lines.iter().filter(|l| l.starts_with("$ ")).count();
    let footers: Vec<&&str> = lines
        .iter()
        .filter(|l| l.starts_with("# exited with code "))
        .collect();
    assert_eq!(commands, 2, "{text}");
    assert_eq!(
        footers.len(),
        2,
        "each attempt's command ends with a footer\n{text}"
    );
    assert!(
        lines
            .last()
            .is_some_and(|l| l.starts_with("# exited with code 0 (")),
        "{text}"
    );
}

#[test]
fn a_mistyped_script_name_gets_the_nearest_scripts_with_runs_recorded() {
    // mann.rhai is as near to man.rhai as main.rhai, but has never run: it has no
    // history, no report and no log to offer.
    let first = Test::new()
        .file("mann.rhai", r#"proc("other", #{ cmd: ["true"] });"#)
        .script(r#"proc("talk", #{ shell: "echo hi" }); run("talk");"#)
        .run();
    first.ok();
    let dir = first.dir.path();
    let prun = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_prun"))
            .args(args)
            .current_dir(dir)
            .env("XDG_STATE_HOME", dir.join("state"))
            .output()
            .expect("run prun");
        assert_eq!(out.status.code(), Some(64), "{args:?}");
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    for args in [
        &["history", "man.rhai"][..],
        &["report", "man.rhai"],
        &["log", "man.rhai", "talk"],
    ] {
        let err = prun(args);
        assert!(
            err.contains("man.rhai") && err.trim_end().ends_with("; did you mean `main.rhai`?"),
            "{args:?}: {err}"
        );
    }
    // A task DB given with --db is what is missing, not the script.
    let err = prun(&["history", "man.rhai", "--db", "none.db"]);
    assert!(!err.contains("did you mean"), "{err}");
}

/// A mistyped script name gets the scripts with runs recorded anywhere, not only in its
/// own directory: `history`, `report`, `log` and a run from a subdirectory name the
/// script above it (by its canonical path); a script with no run in a DB shared with
/// `--db` gets the scripts of that DB (they said nothing).
#[test]
fn a_mistyped_script_name_gets_scripts_with_runs_elsewhere_and_in_a_shared_db() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = std::fs::canonicalize(tmp.path()).expect("canonical");
    let script = r#"proc("talk", #{ shell: "echo hi" }); run("talk");"#;
    std::fs::create_dir_all(dir.join("sub")).unwrap();
    std::fs::create_dir_all(dir.join("shared")).unwrap();
    std::fs::write(dir.join("build.rhai"), script).unwrap();
    std::fs::write(dir.join("shared/deploy.rhai"), script).unwrap();
    let prun = |cwd: &std::path::Path, args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_prun"))
            .args(args)
            .current_dir(cwd)
            .env("XDG_STATE_HOME", dir.join("state"))
            .output()
            .expect("run prun")
    };
    assert!(prun(&dir, &["build.rhai", "-q"]).status.success());
    let shared = ["--db", "shared.db"];
    assert!(
        prun(&dir, &["shared/deploy.rhai", "-q", shared[0], shared[1]])
            .status
            .success()
    );
    let err = |cwd: &std::path::Path, args: &[&str], code: i32| {
        let out = prun(cwd, args);
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        assert_eq!(out.status.code(), Some(code), "{args:?}: {err}");
        err
    };
    let above = format!("; did you mean `{}`?", dir.join("build.rhai").display());
    let sub = dir.join("sub");
    for args in [
        &["history", "buld.rhai"][..],
        &["report", "buld.rhai"],
        &["log", "buld.rhai", "talk"],
    ] {
        let err = err(&sub, args, 64);
        assert!(err.trim_end().ends_with(&above), "{args:?}: {err}");
    }
    let err_run = err(&sub, &["buld.rhai"], 2);
    assert!(err_run.trim_end().ends_with(&above), "{err_run}");
    for args in [
        &["history", "deploi.rhai", "--db", "shared.db"][..],
        &["report", "deploi.rhai", "--db", "shared.db"],
    ] {
        let err = err(&dir, args, 64);
        assert!(
            err.contains("no run recorded of deploi.rhai")
                && err
                    .trim_end()
                    .ends_with("; did you mean `shared/deploy.rhai`?"),
            "{args:?}: {err}"
        );
    }
    // A run that is not there is what is wrong, not the script's name.
    let err_n = err(
        &dir,
        &[
            "report",
            "shared/deploy.rhai",
            "--db",
            "shared.db",
            "--run",
            "9",
        ],
        64,
    );
    assert!(!err_n.contains("did you mean"), "{err_n}");
}

/// `prun log -f` prints a running job's log, then what it appends, and ends when the job
/// does; `prun log -f --script` does the same with the top level's log until the run
/// ends. The job and the top level each wait on a FIFO the test opens once the follower
/// has printed their first line (and is seen still running). Not running, `-f` prints
/// the log and ends at once.
#[test]
fn log_follow_prints_a_running_jobs_log_until_it_ends() {
    let dir = tempfile::tempdir().expect("tempdir");
    let dir = dir.path();
    std::fs::write(
        dir.join("main.rhai"),
        r#"
proc("talk", #{ shell: "echo one; touch talk-waits; read x < gate; echo two" });
run("talk");
shell("echo top-one; touch top-waits; read x < top-gate; echo top-two");
"#,
    )
    .unwrap();
    for fifo in ["gate", "top-gate"] {
        mkfifo(&dir.join(fifo));
    }
    let prun = |args: &[&str]| piped_prun(dir, dir, args);
    let mut run = Follower::start(prun(&["main.rhai"]));
    let cases = [
        (
            &["log", "-f", "main.rhai", "talk"][..],
            "talk-waits",
            "gate",
            "one",
            "two",
        ),
        (
            &["log", "--follow", "main.rhai", "--script"][..],
            "top-waits",
            "top-gate",
            "top-one",
            "top-two",
        ),
    ];
    for (args, waits, gate, first, then) in cases {
        until(&format!("{waits} to exist"), || dir.join(waits).exists());
        let mut follow = Follower::start(prun(args));
        until(&format!("{args:?} to print {first}"), || {
            follow.printed().contains(&format!("\n{first}\n"))
        });
        assert!(
            follow.running(),
            "{args:?} ended while the job ran:\n{}",
            follow.printed()
        );
        std::fs::write(dir.join(gate), "go\n").unwrap();
        let (ok, text) = follow.finish();
        assert!(ok, "{args:?}:\n{text}");
        let after = text.split_once(&format!("\n{first}\n")).unwrap().1;
        assert!(
            after.starts_with(&format!("{then}\n# exited with code 0 (")),
            "{args:?}:\n{text}"
        );
    }
    let (ok, text) = run.finish();
    assert!(ok, "{text}");
    let mut after = Follower::start(prun(&["log", "-f", "main.rhai", "talk"]));
    let (ok, text) = after.finish();
    assert!(
        ok && text.contains("\ntwo\n# exited with code 0 ("),
        "{text}"
    );
    let mut top = Follower::start(prun(&["log", "main.rhai", "--script"]));
    let (ok, text) = top.finish();
    assert!(ok && text.contains("\ntop-one\ntop-two\n"), "{text}");
}

/// `prun log -f` whose reader stops reading (`| head -1`) ends quietly at its next write,
/// while the job it followed still runs, instead of reading the log until the job ends.
#[test]
fn log_follow_ends_quietly_when_its_stdout_is_closed() {
    use std::io::BufRead;
    let dir = tempfile::tempdir().expect("tempdir");
    let dir = dir.path();
    std::fs::write(
        dir.join("main.rhai"),
        r#"proc("talk", #{ shell: "echo one; touch waits; read x < gate; echo two; touch waits-again; read x < gate-again" }); run("talk");"#,
    )
    .unwrap();
    for fifo in ["gate", "gate-again"] {
        mkfifo(&dir.join(fifo));
    }
    let prun = |args: &[&str]| piped_prun(dir, dir, args);
    let mut run = Follower::start(prun(&["main.rhai"]));
    until("the job to wait", || dir.join("waits").exists());
    let mut follow = prun(&["log", "-f", "main.rhai", "talk"])
        .spawn()
        .expect("start prun log");
    let mut first = String::new();
    std::io::BufReader::new(follow.stdout.take().expect("stdout"))
        .read_line(&mut first)
        .expect("read the first line");
    assert!(
        first.starts_with("# ") && first.ends_with("talk.log\n"),
        "{first}"
    );
    std::fs::write(dir.join("gate"), "go\n").unwrap();
    until("the follower to end", || {
        follow.try_wait().expect("wait").is_some()
    });
    let out = follow.wait_with_output().expect("wait");
    assert!(run.running(), "the job ended before the follower did");
    assert!(out.status.success(), "{out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stderr), "");
    std::fs::write(dir.join("gate-again"), "go\n").unwrap();
    let (ok, text) = run.finish();
    assert!(ok, "{text}");
}

/// `prun log -f --script` of a run whose top level runs no command prints no header
/// naming a log that is never written: once the run ends it does what `prun log` does,
/// here saying that there is no log.
#[test]
fn log_follow_of_a_log_never_written_does_as_without_follow() {
    let dir = tempfile::tempdir().expect("tempdir");
    let dir = dir.path();
    std::fs::write(
        dir.join("main.rhai"),
        r#"proc("wait", #{ shell: "touch waits; read x < gate" }); run("wait");"#,
    )
    .unwrap();
    mkfifo(&dir.join("gate"));
    let prun = |args: &[&str]| piped_prun(dir, dir, args);
    let mut run = Follower::start(prun(&["main.rhai"]));
    until("the job to wait", || dir.join("waits").exists());
    let follow = prun(&["log", "-f", "main.rhai", "--script"])
        .spawn()
        .expect("start prun log");
    // A follower sleeps only between two looks at the log it follows (the kernel names
    // that sleep `hrtimer_nanosleep` or `do_nanosleep`, by version).
    let tasks = format!("/proc/{}/task", follow.id());
    until("the follower to follow", || {
        std::fs::read_dir(&tasks).is_ok_and(|tasks| {
            tasks.flatten().any(|t| {
                std::fs::read_to_string(t.path().join("wchan"))
                    .is_ok_and(|w| w.contains("nanosleep"))
            })
        })
    });
    std::fs::write(dir.join("gate"), "go\n").unwrap();
    let out = follow.wait_with_output().expect("wait");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(64), "{err}");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "");
    assert!(err.contains("no log of the script's top level"), "{err}");
    let (ok, text) = run.finish();
    assert!(ok, "{text}");
}

/// `prun log -f` follows a running job whose run was started in another directory, its
/// relative `log_dir` relative to that one: the job's log is found where the run writes it.
#[test]
fn log_follow_finds_a_relative_log_dir_of_a_run_started_elsewhere() {
    let dir = tempfile::tempdir().expect("tempdir");
    let dir = dir.path();
    std::fs::write(
        dir.join("main.rhai"),
        r#"set_options(#{ log_dir: "logs" });
proc("talk", #{ shell: "echo one; touch ../waits; read x < ../gate; echo two" });
run("talk");"#,
    )
    .unwrap();
    std::fs::create_dir(dir.join("sub")).unwrap();
    mkfifo(&dir.join("gate"));
    let prun = |cwd: &str, args: &[&str]| piped_prun(&dir.join(cwd), dir, args);
    let mut run = Follower::start(prun("sub", &["../main.rhai"]));
    until("the job to wait", || dir.join("waits").exists());
    let mut follow = Follower::start(prun(".", &["log", "-f", "main.rhai", "talk"]));
    until("the follower to print the job's first line", || {
        follow.printed().contains("\none\n")
    });
    std::fs::write(dir.join("gate"), "go\n").unwrap();
    let (ok, text) = follow.finish();
    assert!(
        ok && text.starts_with(&format!("# {}", dir.join("sub/logs").display()))
            && text.contains("\none\ntwo\n# exited with code 0 ("),
        "{text}"
    );
    let (ok, text) = run.finish();
    assert!(ok, "{text}");
}

/// prun with `args`, run in `cwd` with its state under `home`'s `state`, stdin empty and
/// its output piped (to start as a [`Follower`] or read line by line).
fn piped_prun(cwd: &std::path::Path, home: &std::path::Path, args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_prun"));
    c.args(args)
        .current_dir(cwd)
        .env("XDG_STATE_HOME", home.join("state"))
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    c
}

/// A FIFO at `path`, which a test's script reads to wait until the test lets it go on.
fn mkfifo(path: &std::path::Path) {
    let made = Command::new("mkfifo").arg(path).status().expect("mkfifo");
    assert!(made.success(), "mkfifo {}", path.display());
}

/// A prun started in the background, its stdout read as it comes.
struct Follower {
    child: std::process::Child,
    out: std::sync::Arc<std::sync::Mutex<Vec<u8>>>,
    reader: Option<std::thread::JoinHandle<()>>,
}

impl Follower {
    fn start(mut cmd: Command) -> Follower {
        use std::io::Read;
        let mut child = cmd.spawn().expect("start prun");
        let mut stdout = child.stdout.take().expect("stdout");
        let out = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let into = out.clone();
        let reader = std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n @ 1..) = stdout.read(&mut buf) {
                into.lock().unwrap().extend_from_slice(&buf[..n]);
            }
        });
        Follower {
            child,
            out,
            reader: Some(reader),
        }
    }

    fn printed(&self) -> String {
        String::from_utf8_lossy(&self.out.lock().unwrap()).into_owned()
    }

    fn running(&mut self) -> bool {
        self.child.try_wait().expect("wait").is_none()
    }

    /// Waits for its end (failing the test past a minute): whether it exited 0, and its
    /// stdout.
    fn finish(&mut self) -> (bool, String) {
        until("prun to end", || !self.running());
        let status = self.child.wait().expect("wait");
        if let Some(r) = self.reader.take() {
            r.join().expect("reader");
        }
        (status.success(), self.printed())
    }
}

/// A test that failed midway ends its prun as Ctrl-C would, jobs included.
impl Drop for Follower {
    fn drop(&mut self) {
        if self.running() {
            let _ = Command::new("kill")
                .args(["-INT", &self.child.id().to_string()])
                .status();
            let _ = self.child.wait();
        }
    }
}

/// Polls `done` until it holds, failing the test after a minute.
fn until(what: &str, mut done: impl FnMut() -> bool) {
    let limit = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !done() {
        assert!(
            std::time::Instant::now() < limit,
            "waited a minute for {what}"
        );
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
}

/// `prun log` without a proc says, in its usage line, that `--script` can stand for one.
#[test]
fn log_without_a_proc_shows_the_script_option_in_its_usage() {
    let out = Test::new()
        .raw(&["log", "main.rhai", "-f"])
        .script(r#"proc("a", #{ cmd: ["true"] });"#)
        .run();
    out.code(64);
    assert!(
        out.stderr
            .contains("Usage: prun log SCRIPT.rhai PROC|--script [-f]"),
        "{}",
        out.stderr
    );
}

/// `prun log` of a script that never ran, with no script near it that did, says that no
/// run of it is recorded, as `prun history` does, not only that the proc has no log.
#[test]
fn log_of_a_script_that_never_ran_says_so() {
    for args in [
        &["log", "main.rhai", "build"][..],
        &["log", "main.rhai", "--script"],
    ] {
        let out = Test::new()
            .raw(args)
            .script(r#"proc("build", #{ shell: "echo hi" });"#)
            .run();
        out.code(64);
        assert!(
            out.stderr.contains("; no run of main.rhai is recorded"),
            "{}",
            out.describe()
        );
    }
}

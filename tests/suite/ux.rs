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
    let script =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/fanout.rhai"))
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

#[test]
fn list_and_graph_of_the_bundled_backup_verify_script_work_without_its_arguments() {
    // Where no check query exists (a fresh clone): listing needs neither queries nor
    // the required backup source.
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/backup-verify.rhai");
    let script = std::fs::read_to_string(path).expect("backup-verify.rhai");
    let out = Test::new().script(&script).before(&["list"]).run();
    out.ok()
        .out_has("fetch")
        .out_has("restore")
        .out_has("check::[db]::[query]");
    let out = Test::new().script(&script).before(&["graph"]).run();
    out.ok().out_has("\"fetch\" -> \"restore\";");
    // A run still needs both (once its tools are there: it looks for them first).
    if !cfg!(any(prun_no_rclone, prun_no_postgres)) {
        Test::new()
            .script(&script)
            .args(&["-r", "backups/"])
            .run()
            .code(2)
            .err_has("no check queries in queries/<database>/*.sql");
    }
}

#[test]
fn glob_takes_non_normalised_prefixes() {
    let out = Test::new()
        .script(
            r#"
print(glob("./*.log"));
print(glob(".//logs/*.log"));
print(glob("logs/./*.log"));
print(glob("logs/../*.log"));
"#,
        )
        .file("b.log", "b\n")
        .file("logs/a.log", "a\n")
        .run();
    out.ok()
        .line(r#"["./b.log"]"#)
        .line(r#"["./logs/a.log"]"#)
        .line(r#"["logs/./a.log"]"#)
        .line(r#"["logs/../b.log"]"#);
}

fn fanout() -> String {
    std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/fanout.rhai"))
        .expect("fanout.rhai")
}

#[test]
fn fanout_compresses_files_given_with_a_leading_dot_slash() {
    let out = Test::new()
        .script(&fanout())
        .file("logs/a.log", "a\n")
        .args(&["./logs/*.log", "--no-live"])
        .run();
    out.ok().proc_state("SUCCEEDED", "gzip::./logs/a.log");
    assert!(out.exists("logs/a.log.gz"), "{}", out.describe());
}

#[test]
fn fanout_without_a_matching_file_warns_and_succeeds() {
    let out = Test::new()
        .script(&fanout())
        .args(&["./logs/*.log", "--no-live"])
        .run();
    out.ok().out_has("no file matches ./logs/*.log");
}

#[test]
fn outputs_are_paths_not_globs_and_errors_show_the_filled_path() {
    let script = r#"
proto("gz::[file]", #{
    arg_choices: #{ file: ["br[env].log"] },
    inputs: ["[file]"],
    outputs: ["[file].gz"],
    cmd: ["gzip", "-kf", "[file]"],
});
proto("miss::[file]", #{
    arg_choices: #{ file: ["br[env].log"] },
    outputs: ["[file].out"],
    cmd: ["true"],
});
proc("lit", #{ outputs: ["out[1].txt"], cmd: ["touch", "out[1].txt"] });
run("gz::*");
run("lit");
run("miss::*");
"#;
    let out = Test::new()
        .script(script)
        .file("br[env].log", "x\n")
        .file("bre.log.gz", "a file a glob would match\n")
        .file("out1.txt", "a file a glob would match\n")
        .args(&["--no-live"])
        .run();
    out.code(1)
        .proc_state("SUCCEEDED", "gz::br[env].log")
        .proc_state("SUCCEEDED", "lit")
        .proc_state("FAILED", "miss::br[env].log")
        .out_has("br[env].log.out (missing)")
        .out_lacks("[file]");
    assert!(out.exists("br[env].log.gz") && out.exists("out[1].txt"));
}

#[test]
fn an_input_placeholder_value_is_a_name_not_a_pattern() {
    // `in/[f]` filled with `a[b]` must read the file `a[b]`, not `ab`: a change to `ab`
    // does not make the proc stale, a change to `a[b]` does.
    let script = r#"
proto("p::[f]", #{
    arg_choices: #{ f: ["a[b]"] },
    inputs: ["in/[f]"],
    outputs: ["stamp"],
    cmd: ["sh", "-c", "echo ran >> runs; touch stamp"],
});
run("p::*");
"#;
    let first = Test::new()
        .script(script)
        .file("in/a[b]", "1\n")
        .file("in/ab", "1\n")
        .args(&["--no-live"])
        .run();
    first.ok();
    let dir = first.path("");
    let again = |name: &str, text: &str| {
        std::fs::write(dir.join("in").join(name), text).expect("write");
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_prun"));
        cmd.args(["main.rhai", "--no-live"])
            .current_dir(&dir)
            .env("XDG_STATE_HOME", dir.join("state"));
        let out = cmd.output().expect("prun");
        assert!(out.status.success(), "{out:?}");
        std::fs::read_to_string(dir.join("runs"))
            .expect("runs")
            .lines()
            .count()
    };
    assert_eq!(again("ab", "2\n"), 1, "a change to in/ab re-ran the proc");
    assert_eq!(
        again("a[b]", "2\n"),
        2,
        "a change to in/a[b] did not re-run the proc"
    );
}

#[test]
fn a_failure_report_reads_the_complete_log_and_shows_its_footer() {
    // Six failing procs, each printing to stdout and stderr alternately (one log file,
    // written through the child's own descriptors), with its error line far from the
    // end, and a background grandchild that prun ends when the command exits: every
    // report shows the lines in the order written and ends with the footer.
    let mut script = String::new();
    for i in 0..6 {
        script.push_str(&format!(
            r#"proc("bad{i}", #{{ shell: "echo a1; echo a2 >&2; echo error: a3; echo a4 >&2; echo a5; echo a6 >&2; echo a7; (sleep 5; echo late >&2) & exit 3" }});
"#
        ));
    }
    script.push_str("run(\"bad*\");\n");
    let out = Test::new().script(&script).args(&["--no-live"]).run();
    out.code(1);
    for i in 0..6 {
        let report = out
            .stdout
            .split(&format!("FAILED     bad{i} "))
            .nth(1)
            .unwrap_or_else(|| panic!("no report of bad{i}: {}", out.describe()));
        let report: Vec<&str> = report
            .lines()
            .take_while(|l| !l.contains("FAILED     bad") && !l.starts_with("prun:"))
            .filter_map(|l| l.trim_start().strip_prefix("| "))
            .collect();
        let want = ["a1", "a2", "error: a3", "a4", "a5"];
        let shown: Vec<&str> = report
            .iter()
            .copied()
            .filter(|l| want.contains(l))
            .collect();
        assert_eq!(shown, want, "bad{i}: {}", out.describe());
        assert!(
            report
                .last()
                .is_some_and(|l| l.starts_with("# exited with code 3")),
            "bad{i}: no footer in {report:?}"
        );
    }
}

fn report_of(out: &crate::support::Output, file: &str) -> serde_json::Value {
    let text = out.read(file);
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{file}: {e}: {text}"))
}

const STALE: &str = r#"{"run": {"outcome": "stale"}}"#;

#[test]
fn json_report_is_written_on_a_usage_error() {
    let out = Test::new()
        .script(r#"proc("a", |ctx| 1); run("a");"#)
        .file("r.json", STALE)
        .args(&["--json", "r.json", "--bogus"])
        .run();
    out.code(64).err_has("--bogus");
    let r = report_of(&out, "r.json");
    assert_eq!(r["run"]["outcome"], "usage error", "{r}");
    assert!(
        r["run"]["error"]
            .as_str()
            .is_some_and(|e| e.contains("--bogus")),
        "{r}"
    );
    assert_eq!(r["procs"], serde_json::json!([]));

    let out = Test::new()
        .script(r#"proc("a", |ctx| 1);"#)
        .file("r.json", STALE)
        .args(&["nosuch", "--json", "r.json"])
        .run();
    out.code(64);
    let r = report_of(&out, "r.json");
    assert_eq!(r["run"]["outcome"], "usage error", "{r}");
    assert!(
        r["run"]["error"]
            .as_str()
            .is_some_and(|e| e.contains("nosuch")),
        "{r}"
    );
}

#[test]
fn json_report_is_written_on_a_usage_error_in_the_script_s_own_arguments() {
    let out = Test::new()
        .script(DECLARES)
        .file("r.json", STALE)
        .args(&["--json", "r.json"])
        .run();
    out.code(64).err_has("missing required option --target-dir");
    let r = report_of(&out, "r.json");
    assert_eq!(r["run"]["outcome"], "usage error", "{r}");
    assert!(
        r["run"]["error"]
            .as_str()
            .is_some_and(|e| e.contains("missing required option --target-dir"))
    );
}

#[test]
fn json_report_is_written_on_a_script_error_with_its_text() {
    for (script, want) in [
        (
            "proc(\"a\", |ctx| 1);\nthrow \"broken here\";",
            "broken here",
        ),
        ("let x = ;", "main.rhai:1"),
    ] {
        let out = Test::new()
            .script(script)
            .file("r.json", STALE)
            .args(&["--json", "r.json", "--no-live"])
            .run();
        out.code(2).out_lacks("succeeded in");
        let r = report_of(&out, "r.json");
        assert_eq!(r["run"]["outcome"], "script error", "{r}");
        assert!(
            r["run"]["error"].as_str().is_some_and(|e| e.contains(want)),
            "{script}: {r}"
        );
        // The text is the message itself, as for every other error: no "error: " first.
        assert!(
            r["run"]["error"]
                .as_str()
                .is_some_and(|e| e.starts_with("main.rhai:")),
            "{script}: {r}"
        );
    }
}

#[test]
fn json_report_is_written_when_the_lock_is_held() {
    let first = Test::new()
        .script(r#"proc("hold", #{ shell: "touch holding; while [ ! -e release ]; do sleep 0.01; done" }); run("hold");"#)
        .file("r.json", STALE);
    let dir = first.dir().to_path_buf();
    let holder = std::thread::spawn(move || first.args(&["--lock", "--no-live"]).run());
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !dir.join("holding").exists() {
        assert!(
            std::time::Instant::now() < deadline,
            "the first run never started"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_prun"))
        .args(["main.rhai", "--lock", "--json", "r.json"])
        .current_dir(&dir)
        .env("XDG_STATE_HOME", dir.join("state"))
        .output()
        .expect("prun");
    std::fs::write(dir.join("release"), "").expect("release");
    let first = holder.join().expect("first run");
    first.ok();
    assert_eq!(out.status.code(), Some(75), "{out:?}");
    let r: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("r.json")).expect("r.json"))
            .expect("json");
    assert_eq!(r["run"]["outcome"], "locked", "{r}");
    assert!(
        r["run"]["error"]
            .as_str()
            .is_some_and(|e| e.contains("holds the lock"))
    );
}

#[test]
fn json_dash_writes_the_report_to_stdout_and_the_rest_to_stderr() {
    let out = Test::new()
        .script(r#"proc("a", #{ cmd: ["echo", "hi"] }); print("from the script"); run("a");"#)
        .args(&["--json", "-", "--no-live"])
        .run();
    out.ok().err_has("from the script").err_has("1 succeeded");
    assert!(!out.exists("-"), "a file named - was made");
    let r: serde_json::Value = serde_json::from_str(&out.stdout)
        .unwrap_or_else(|e| panic!("stdout is not the report: {e}: {}", out.describe()));
    assert_eq!(r["run"]["outcome"], "ok");
    assert_eq!(r["procs"][0]["name"], "a");
}

#[test]
fn no_summary_after_a_script_error_that_scheduled_nothing() {
    let out = Test::new()
        .script("let x = 1;\nthrow \"no go\";")
        .args(&["--no-live"])
        .run();
    out.code(2).err_has("no go").out_lacks("succeeded");
    assert!(!out.stderr.contains("succeeded"), "{}", out.describe());
}

/// A cron-like run: an empty environment (but for the state directory, kept inside the
/// test's directory), no terminal, stdin from /dev/null.
fn cron(dir: &std::path::Path, words: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_prun"))
        .args(words)
        .current_dir(dir)
        .env_clear()
        .env("XDG_STATE_HOME", dir.join("state"))
        .stdin(std::process::Stdio::null())
        .output()
        .expect("prun")
}

const CRON_JOB: &str = r#"
proc("fetch", #{ cmd: ["sh", "-c", "echo fetched; echo noise >&2"] });
proc("use", #{ deps: ["fetch"] }, |ctx| {
    shell("echo used");
    print("a line from the script");
    log_info("an info line");
    if file_info("fail") != () { throw "told to fail"; }
    1
});
run("use");
"#;

#[test]
fn quiet_prints_nothing_at_all_when_everything_succeeds() {
    let t = Test::new().script(CRON_JOB);
    let out = t.run();
    let dir = out.path("");
    let quiet = cron(&dir, &["-q", "main.rhai"]);
    assert!(quiet.status.success(), "{quiet:?}");
    assert_eq!(String::from_utf8_lossy(&quiet.stdout), "");
    assert_eq!(String::from_utf8_lossy(&quiet.stderr), "");
    // The same after the script path, and with the proc up to date.
    let quiet = cron(&dir, &["main.rhai", "-q"]);
    assert!(quiet.status.success(), "{quiet:?}");
    assert_eq!(String::from_utf8_lossy(&quiet.stdout), "");
    assert_eq!(String::from_utf8_lossy(&quiet.stderr), "");
}

/// `-q` on success still prints prun's own warnings, on stderr: they say something is
/// wrong with the job itself (here a task DB it cannot make, so no cache and no history)
/// that cron should mail. The exit status stays 0.
#[test]
fn quiet_still_prints_pruns_own_warnings_on_success() {
    let out = Test::new().script(CRON_JOB).file("not-a-dir", "").run();
    let quiet = cron(
        &out.path(""),
        &["-q", "main.rhai", "--db", "not-a-dir/t.db"],
    );
    assert!(quiet.status.success(), "{quiet:?}");
    assert_eq!(String::from_utf8_lossy(&quiet.stdout), "");
    let stderr = String::from_utf8_lossy(&quiet.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.starts_with("prun: warning: ") && stderr.contains("not-a-dir"),
        "{stderr}"
    );
}

/// `-q` with `-v` (a cron line that kept a `-v`): `-q` wins, and the command lines `-v`
/// adds are not printed either. Before, each command's `$ ...` line was.
#[test]
fn quiet_wins_over_verbose_when_everything_succeeds() {
    let out = Test::new().script(CRON_JOB).run();
    let quiet = cron(&out.path(""), &["-q", "-v", "main.rhai"]);
    assert!(quiet.status.success(), "{quiet:?}");
    assert_eq!(String::from_utf8_lossy(&quiet.stdout), "");
    assert_eq!(String::from_utf8_lossy(&quiet.stderr), "");
}

#[test]
fn quiet_prints_only_the_failure_report_when_something_fails() {
    let out = Test::new().script(CRON_JOB).file("fail", "").run();
    let quiet = cron(&out.path(""), &["-q", "main.rhai"]);
    assert_eq!(quiet.status.code(), Some(1), "{quiet:?}");
    let stdout = String::from_utf8_lossy(&quiet.stdout);
    assert!(stdout.contains("FAILED     use"), "{stdout}");
    assert!(stdout.contains("told to fail"), "{stdout}");
    assert!(stdout.contains("prun: 1 succeeded, 1 failed"), "{stdout}");
    // (The failure report quotes the proc's log, indented; nothing else is printed.)
    for line in stdout.lines().filter(|l| !l.starts_with(' ')) {
        for noise in [
            "SUCCEEDED",
            "STARTED",
            "a line from the script",
            "an info line",
            "prun: slowest:",
        ] {
            assert!(!line.contains(noise), "{noise} in {stdout}");
        }
    }
}

#[test]
fn the_bundled_scripts_leave_prun_s_quiet_and_verbose_alone() {
    for name in [
        "backup-verify.rhai",
        "fanout.rhai",
        "pg-copy.rhai",
        "showcase.rhai",
    ] {
        let path = format!("{}/scripts/{name}", env!("CARGO_MANIFEST_DIR"));
        if !std::fs::read_to_string(&path)
            .expect("script")
            .contains("args(#{")
        {
            continue;
        }
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_prun"))
            .args([&path, "--help"])
            .output()
            .expect("prun");
        let help = String::from_utf8_lossy(&out.stdout);
        for taken in ["-q,", "-v,", "--quiet", "--verbose"] {
            assert!(
                !help.lines().any(|l| l.trim_start().starts_with(taken)),
                "{name} declares {taken}:\n{help}"
            );
        }
    }
}

#[test]
fn list_of_a_script_that_fails_prints_the_error_only() {
    let out = Test::new()
        .script("proc(\"a\", |ctx| 1);\nthrow \"no queries here\";\nproc(\"b\", |ctx| 1);")
        .before(&["list"])
        .run();
    out.code(2).err_has("no queries here").out_lacks("procs:");
}

// Re-checked as a user coming from just, make and GNU parallel would try it.

#[test]
fn a_script_s_help_lists_its_positional_arguments_under_arguments_with_defaults() {
    // fanout's `--help` listed `<PATTERN>` under "Options:", without its default `*.log`.
    let out = Test::new().script(&fanout()).args(&["--help"]).run();
    out.ok()
        .out_has("Usage: prun main.rhai [OPTIONS] [PATTERN]");
    let (args, opts) = out
        .stdout
        .split_once("\nOptions:\n")
        .expect("an Options section");
    let args = args.split_once("\nArguments:\n").map(|(_, a)| a);
    assert!(
        args.is_some_and(|a| a.contains("[PATTERN]") && a.contains("[default: *.log]")),
        "{}",
        out.stdout
    );
    assert!(!opts.contains("PATTERN"), "{}", out.stdout);
    // A list option did not say it may be given many times (pg-copy's `-t`).
    let list = Test::new()
        .script("let o = args(#{ files: #{ positional: true, list: true, required: true, help: \"the files\" }, tag: #{ list: true, help: \"a tag\" } });")
        .args(&["--help"])
        .run();
    list.ok()
        .out_has("Usage: prun main.rhai [OPTIONS] <FILES>...")
        .out_has("<FILES>...       the files (required)")
        .out_has("--tag <TAG>  a tag (repeatable)");
}

#[test]
fn list_flags_as_just_and_task_spell_them_point_to_prun_list() {
    // `just --list` / `task --list`: prun said only "unexpected argument '--list' found".
    let script = "proc(\"a\", #{ help: \"the a\", shell: \"true\" });";
    for words in [
        &["main.rhai", "--list"][..],
        &["--list", "main.rhai"],
        &["main.rhai", "-l"],
        &["-l", "main.rhai"],
    ] {
        Test::new()
            .script(script)
            .raw(words)
            .run()
            .code(64)
            .err_has("to list the script's procs and protos: prun list main.rhai");
    }
}

#[test]
fn a_script_path_that_names_no_file_offers_the_nearest_scripts() {
    // `prun buld.rhai` and `prun build` (as `just build` is typed) said only "No such
    // file or directory".
    let script = "proc(\"a\", #{ shell: \"true\" }); run(\"a\");";
    for word in ["buld.rhai", "build"] {
        Test::new()
            .file("build.rhai", script)
            .file("deploy.rhai", script)
            .raw(&[word])
            .run()
            .code(2)
            .err_has("No such file or directory")
            .err_has("did you mean `build.rhai`?");
    }
}

#[test]
fn a_missing_semicolon_is_reported_where_the_statement_ends() {
    // Rhai reports it at the next statement (2:1), which is right; the mistake is at
    // the end of line 1.
    let script =
        "proc(\"a\", #{ shell: \"true\" }) // the a\n\nproc(\"b\", #{ shell: \"true\" });\n";
    Test::new()
        .script(script)
        .run()
        .code(2)
        .err_has("main.rhai:1:30: syntax error: Expecting ';' to terminate this statement");
    Test::new()
        .script(script)
        .before(&["check"])
        .run()
        .code(2)
        .err_has("main.rhai:1:30: syntax error");
}

#[test]
fn check_reports_a_syntax_error_as_a_problem_with_the_count() {
    // It printed `prun: error: main.rhai:...` without `prun: check: 1 problem found`,
    // unlike every other problem `check` finds.
    let out = Test::new()
        .script("proc(\"a\", #{ shell: \"true\" );\n")
        .before(&["check"])
        .run();
    out.code(2)
        .err_has("\nprun: check: 1 problem found")
        .out_lacks("ok:");
    assert!(
        out.stderr.starts_with("main.rhai:1:28: syntax error: "),
        "{}",
        out.describe()
    );
}

#[test]
fn prun_without_a_script_names_the_scripts_of_the_directory() {
    // `just` and `make` find their file; `prun` alone said only "no script given".
    let out = Test::new()
        .file("build.rhai", "")
        .file("deploy.rhai", "")
        .file("notes.txt", "")
        .raw(&[])
        .run();
    out.code(64)
        .err_has("prun: no script given (scripts here: build.rhai, deploy.rhai)");
    Test::new()
        .raw(&[])
        .run()
        .code(64)
        .err_has("prun: no script given\n");
}

#[test]
fn flags_of_make_and_parallel_get_the_prun_flag_that_does_the_same() {
    // `make -n`, `make -k`, `parallel --tag`...: prun said only "unexpected argument".
    let script = "proc(\"a\", #{ shell: \"true\" });";
    for (flag, tip) in [
        ("-n", "--dry-run"),
        ("-k", "--fail-fast"),
        ("--jobs=4", "-j N"),
        ("-B", "--full"),
        ("--tag", "--output stream"),
        ("-Otarget", "--output grouped"),
        ("-s", "-q (--quiet)"),
    ] {
        for words in [["main.rhai", flag], [flag, "main.rhai"]] {
            let out = Test::new().script(script).raw(&words).run();
            out.code(64);
            let tip_line = out.stderr.lines().find(|l| l.contains("tip: "));
            assert!(
                tip_line.is_some_and(|l| l.contains(tip)),
                "{flag}: {}",
                out.describe()
            );
        }
    }
}

#[test]
fn nothing_to_run_does_not_ask_for_targets_a_script_s_positional_arguments_take() {
    // fanout's words are its pattern, yet with no file matching it said "name targets
    // (prun main.rhai TARGET ...)": the word would have been taken as the pattern.
    let out = Test::new()
        .script(&fanout())
        .args(&["logs/*.log", "--no-live"])
        .run();
    out.ok()
        .out_has("nothing to run: the script scheduled no proc")
        .out_has("prun main.rhai --help")
        .out_lacks("TARGET");
    // A script without positional arguments still says how to name targets.
    Test::new()
        .script("args(#{ x: #{ flag: true } });\nproc(\"a\", #{ shell: \"true\" });")
        .run()
        .ok()
        .out_has("nothing to run: name targets (prun main.rhai TARGET ...)");
}

#[test]
fn a_syntax_error_is_reported_before_the_options_it_kept_from_being_read() {
    // With its `args` unreadable, `--help` printed prun's help ("this script declares no
    // options of its own") and `--x 1` was "unexpected argument '--x'", exit 64.
    let script = "let o = args(#{ x: #{ help: \"an x\" } })\nproc(\"a\", |ctx| 1);\n";
    for words in [&["--help"][..], &["--x", "1"]] {
        let out = Test::new().script(script).args(words).run();
        out.code(2)
            .err_has("main.rhai:1:40: syntax error: Expecting ';' to terminate this statement")
            .out_lacks("declares no options");
        assert!(
            !out.stderr.contains("unexpected argument"),
            "{}",
            out.describe()
        );
    }
}

#[test]
fn shell_and_json_habits_in_a_script_get_the_rhai_spelling() {
    // `'echo hi'` (a shell's quotes) read "Invalid character: 'echo hi'", and `{ shell:
    // ... }` (a JSON object) "Expecting ';' to terminate this statement".
    for (script, want) in [
        (
            "proc(\"a\", #{ shell: 'echo hi' });\n",
            "main.rhai:1:21: syntax error: Invalid character: 'echo hi' (a string is written in double quotes, \"echo hi\", or backquotes; single quotes hold one character)",
        ),
        (
            "proc(\"a\", { shell: \"true\" });\n",
            "main.rhai:1:18: syntax error: Expecting ';' to terminate this statement (a map is written #{ key: value }, with a #)",
        ),
        (
            "function gz(f) { shell(`gzip ${f}`) }\n",
            "main.rhai:1:10: syntax error: Expecting ';' to terminate this statement (a function is declared with fn: fn gz(...) { ... })",
        ),
    ] {
        Test::new().script(script).run().code(2).err_has(want);
    }
}

#[test]
fn a_script_s_help_points_to_the_list_of_its_procs() {
    // `just --help` users look there for the recipes; the help named none and did not
    // say where they are.
    for script in [
        "proc(\"a\", #{ shell: \"true\" });",
        "let o = args(#{ x: #{ help: \"an x\" } });\nproc(\"a\", #{ shell: \"true\" });",
    ] {
        Test::new()
            .script(script)
            .args(&["--help"])
            .run()
            .ok()
            .out_has("The script's procs and protos: prun list main.rhai");
    }
}

/// A script runs from top to bottom, unlike a Makefile: a `run` that names a proc the
/// script defines below it says so, with where, rather than only that nothing matches.
/// `check` says the same (its first error).
#[test]
fn running_a_proc_defined_below_says_where_it_is_defined() {
    let script = "run(\"build\");\nproc(\"build\", #{ shell: \"true\" });\n";
    let out = Test::new().script(script).run();
    out.code(2)
        .err_has("main.rhai:1:1: no proc or proto matches \"build\"")
        .err_has("proc \"build\" is defined below, at main.rhai:2:1");
    let out = Test::new()
        .script(script)
        .raw(&["check", "main.rhai"])
        .run();
    out.code(2)
        .err_has("proc \"build\" is defined below, at main.rhai:2:1");
    // Defined above but not reached (a branch not taken): nothing is said of it.
    let out = Test::new()
        .script("if false { proc(\"b\", #{ shell: \"true\" }); }\nrun(\"b\");\n")
        .run();
    out.code(2).err_has("no proc or proto matches \"b\"");
    assert!(!out.stderr.contains("defined below"), "{}", out.describe());
}

/// A proc whose body is a command line given as a string, where a closure goes, is told
/// where a command line goes (`shell: "..."`), not only the forms of `proc`.
#[test]
fn a_procs_body_given_as_a_string_says_where_a_command_line_goes() {
    for script in [
        "proc(\"a\", #{ now: true }, \"echo hi\");\n",
        "proc(\"a\", \"echo hi\");\n",
        "proto(\"a::[x]\", \"echo [x]\");\n",
    ] {
        let out = Test::new().script(script).run();
        out.code(2)
            .err_has("does not exist")
            .err_has("a command line goes in the options: #{ shell: \"...\" }");
    }
}

/// Reading a property of `()` (a map's missing key, a function that returned nothing)
/// says so in words, not "a getter is not registered for type nothing".
#[test]
fn a_property_of_nothing_says_the_value_before_it_is_nothing() {
    let out = Test::new()
        .script("let cfg = #{ db: #{ host: \"h\" } };\nprint(cfg.dbb.host);\n")
        .run();
    out.code(2)
        .err_has("main.rhai:2:")
        .err_has("cannot read `.host` of ()")
        .out_lacks("getter");
    assert!(!out.stderr.contains("getter"), "{}", out.describe());
}

//! `--json PATH`: the run report.

use serde_json::Value;

use crate::support::Test;

fn report(out: &crate::support::Output) -> Value {
    serde_json::from_str(&out.read("report.json")).expect("the report is JSON")
}

fn proc_of<'a>(doc: &'a Value, name: &str) -> &'a Value {
    doc["procs"]
        .as_array()
        .expect("procs")
        .iter()
        .find(|p| p["name"] == name)
        .unwrap_or_else(|| panic!("no proc {name} in {doc}"))
}

#[test]
fn the_report_has_the_run_and_every_scheduled_proc() {
    let out = Test::new()
        .script(
            r#"
proc("ok", |ctx| #{ n: 3, tags: ["a", "b"] });
proc("bad", #{ shell: "echo boom >&2; exit 4" });
proc("after", #{ deps: ["bad"] }, |ctx| 1);
proc("idle", |ctx| 1);
run(["ok", "after"]);
"#,
        )
        .args(&["--json", "report.json", "--", "x", "y"])
        .run();
    out.code(1);
    let doc = report(&out);
    let run = &doc["run"];
    assert_eq!(run["outcome"], "failed");
    assert_eq!(run["args"], serde_json::json!(["x", "y"]));
    assert!(run["script"].as_str().unwrap().ends_with("main.rhai"));
    for key in ["start", "end"] {
        let t = run[key].as_str().unwrap();
        assert!(t.contains('T') && t.ends_with('Z'), "{key}: {t}");
    }
    assert!(run["duration"].as_f64().unwrap() >= 0.0);

    let ok = proc_of(&doc, "ok");
    assert_eq!(ok["state"], "SUCCEEDED");
    assert_eq!(
        ok["result"],
        serde_json::json!({ "n": 3, "tags": ["a", "b"] })
    );
    assert!(ok["start"].is_string() && ok["end"].is_string());

    let bad = proc_of(&doc, "bad");
    assert_eq!(bad["state"], "FAILED");
    assert_eq!(bad["exit_code"], 4);
    assert!(
        bad["error"]
            .as_str()
            .unwrap()
            .contains("exited with code 4")
    );
    let log = bad["log"].as_str().unwrap();
    assert!(std::fs::read_to_string(log).unwrap().contains("boom"));

    let after = proc_of(&doc, "after");
    assert_eq!(after["state"], "FAILED_DEP");
    assert_eq!(after["error"], "dependency \"bad\" failed");
    assert!(after["start"].is_null());

    let names: Vec<&str> = doc["procs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert!(
        !names.contains(&"idle"),
        "an unscheduled proc is not in the report"
    );
}

#[test]
fn an_up_to_date_proc_is_reported_with_its_cached_result() {
    let first = Test::new()
        .file("in.txt", "data")
        .script(r#"proc("p", #{ inputs: ["in.txt"] }, |ctx| "made"); run("p");"#)
        .args(&["--json", "report.json"])
        .run();
    first.ok();
    let dir = first.dir.path();
    let second = std::process::Command::new(env!("CARGO_BIN_EXE_prun"))
        .args(["main.rhai", "--json", "report2.json"])
        .current_dir(dir)
        .env("XDG_STATE_HOME", dir.join("state"))
        .output()
        .expect("run prun");
    assert!(second.status.success());
    let doc: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("report2.json")).unwrap()).unwrap();
    let p = proc_of(&doc, "p");
    assert_eq!(p["state"], "UP_TO_DATE");
    assert_eq!(p["result"], "made");
    assert_eq!(doc["run"]["outcome"], "ok");
}

/// `--json` at a link is written where the link points, the link kept: into a device
/// (`/dev/stdout`, `/dev/null`: renaming over it would replace it with a file), or in
/// place of the regular file it names.
#[test]
fn a_report_at_a_link_is_written_where_it_points_and_the_link_kept() {
    let t = Test::new().script(r#"proc("a", #{ now: true, shell: "true" });"#);
    let dir = t.dir().to_path_buf();
    std::os::unix::fs::symlink("/dev/null", dir.join("to-device.json")).unwrap();
    std::fs::write(dir.join("real.json"), "old").unwrap();
    std::os::unix::fs::symlink("real.json", dir.join("to-file.json")).unwrap();
    // The output keeps the test's directory.
    let first = t.args(&["--json", "to-device.json"]).run();
    first.ok();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_prun"))
        .args(["main.rhai", "--json", "to-file.json"])
        .current_dir(&dir)
        .env("XDG_STATE_HOME", dir.join("state"))
        .output()
        .expect("run prun");
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    for link in ["to-device.json", "to-file.json"] {
        let meta = std::fs::symlink_metadata(dir.join(link)).unwrap();
        assert!(
            meta.file_type().is_symlink(),
            "{link} was replaced by a file"
        );
    }
    let real = std::fs::read_to_string(dir.join("real.json")).unwrap();
    assert!(real.contains("\"procs\""), "real.json: {real}");
}

/// The report of `prun main.rhai --json report2.json` in `dir`, run again after a test.
fn rerun_report(dir: &std::path::Path) -> Value {
    let again = std::process::Command::new(env!("CARGO_BIN_EXE_prun"))
        .args(["main.rhai", "--json", "report2.json"])
        .current_dir(dir)
        .env("XDG_STATE_HOME", dir.join("state"))
        .output()
        .expect("run prun");
    assert!(again.status.success(), "{again:?}");
    serde_json::from_str(&std::fs::read_to_string(dir.join("report2.json")).unwrap()).unwrap()
}

/// A report that cannot be written (its directory removed while the run lasted) is a lost
/// report, not a success: a run that succeeded exits 64, naming the report, and what it
/// did (its log, its cached result) is kept.
#[test]
fn a_report_that_cannot_be_written_fails_a_run_that_succeeded() {
    let out = Test::new()
        .file("out/keep", "")
        .file("in.txt", "data")
        .script(
            r#"proc("p", #{ inputs: ["in.txt"], shell: "echo made; rm out/keep; rmdir out" }); run("p");"#,
        )
        .args(&["--json", "out/report.json"])
        .run();
    out.code(64)
        .err_has("failed to write the JSON report out/report.json");
    assert!(
        !out.exists("out"),
        "the proc removed the report's directory"
    );
    let dir = out.dir.path();
    let doc = rerun_report(dir);
    assert_eq!(proc_of(&doc, "p")["state"], "UP_TO_DATE", "{doc}");
    let log = std::process::Command::new(env!("CARGO_BIN_EXE_prun"))
        .args(["log", "main.rhai", "p"])
        .current_dir(dir)
        .env("XDG_STATE_HOME", dir.join("state"))
        .output()
        .expect("run prun log");
    let text = String::from_utf8_lossy(&log.stdout);
    assert!(text.contains("\nmade\n"), "{log:?}");
}

/// A run that failed keeps its own status when its report is lost too.
#[test]
fn a_failed_run_keeps_its_status_when_its_report_cannot_be_written() {
    let out = Test::new()
        .file("out/keep", "")
        .script(r#"proc("p", #{ shell: "rm out/keep; rmdir out; exit 3" }); run("p");"#)
        .args(&["--json", "out/report.json"])
        .run();
    out.code(1)
        .err_has("failed to write the JSON report out/report.json");
}

/// `--json` below a regular file names that file as not a directory, before the run.
#[test]
fn a_report_below_a_regular_file_is_refused_before_the_run() {
    let out = Test::new()
        .file("afile", "")
        .script(r#"proc("p", #{ shell: "touch ran" }); run("p");"#)
        .args(&["--json", "afile/report.json"])
        .run();
    out.code(64).err_has(&format!(
        "--json afile/report.json: afile (in {}) is not a directory",
        out.dir.path().display()
    ));
    assert!(!out.exists("ran"), "a proc ran");
}

/// `--json=` is a usage error, with no attempt to write a report at an empty path.
#[test]
fn an_empty_json_path_is_a_usage_error_and_nothing_else() {
    let out = Test::new()
        .script(r#"proc("p", #{ shell: "touch ran" }); run("p");"#)
        .args(&["--json="])
        .run();
    out.code(64);
    assert!(!out.stderr.contains("failed to write"), "{}", out.stderr);
    assert!(!out.exists("ran"), "a proc ran");
}

/// `--json` naming the script (a slip of the fingers) is refused: the report would replace
/// the script, also when the script does not compile (its error report).
#[test]
fn a_report_over_the_script_itself_is_refused() {
    let script = r#"proc("p", #{ shell: "touch ran" }); run("p");"#;
    let out = Test::new()
        .script(script)
        .args(&["--json", "./main.rhai"])
        .run();
    out.code(64)
        .err_has("--json ./main.rhai: is the script itself");
    assert_eq!(out.read("main.rhai"), script);
    assert!(!out.exists("ran"), "a proc ran");
    let broken = "let x = ;";
    let out = Test::new()
        .script(broken)
        .args(&["--json", "main.rhai"])
        .run();
    out.code(64);
    assert_eq!(out.read("main.rhai"), broken);
}

/// `--json` naming the `--db` file is refused, whether the DB exists yet or not: the
/// report would replace the history and the cache.
#[test]
fn a_report_over_the_task_db_is_refused() {
    let out = Test::new()
        .script(r#"proc("p", #{ shell: "touch ran" }); run("p");"#)
        .args(&["--db", "tasks.db", "--json", "./tasks.db"])
        .run();
    out.code(64).err_has("--json ./tasks.db: is the task DB");
    assert!(!out.exists("tasks.db"), "a report took the DB's place");
    assert!(!out.exists("ran"), "a proc ran");
}

/// The same slip made by the script: `set_options(#{ task_db })` naming the `--json`
/// file is refused where it is written, and neither file takes the other's place.
#[test]
fn a_task_db_set_onto_the_json_report_is_refused() {
    let out = Test::new()
        .script(
            r#"set_options(#{ task_db: "./out.json" });
proc("p", #{ shell: "touch ran", inputs: ["main.rhai"] }); run("p");"#,
        )
        .args(&["--json", "out.json"])
        .run();
    out.code(2).err_has(
        "main.rhai:1:1: set_options: `task_db` \"./out.json\" is the file of the --json report, which would replace the task DB",
    );
    assert!(!out.exists("ran"), "a proc ran");
    let report = out.read("out.json");
    assert!(report.contains("\"outcome\": \"script error\""), "{report}");
    assert!(!out.exists("tasks.corrupt-"), "no DB was taken for corrupt");
}

/// `prun history`, `log`, `list` and `graph` whose text cannot be written (stdout a full
/// disk) say so and fail; when the reader stopped reading, they do not.
#[test]
fn history_log_list_and_graph_that_cannot_be_written_are_errors() {
    let out = Test::new()
        .script(r#"proc("p", #{ shell: "echo said" }); run("p");"#)
        .run();
    out.ok();
    let dir = out.dir.path();
    let prun = |words: &[&str], stdout: std::process::Stdio| {
        std::process::Command::new(env!("CARGO_BIN_EXE_prun"))
            .args(words)
            .current_dir(dir)
            .env("XDG_STATE_HOME", dir.join("state"))
            .stdout(stdout)
            .output()
            .expect("run prun")
    };
    for (words, shown) in [
        (&["history", "main.rhai"][..], "1 succeeded"),
        (&["log", "main.rhai", "p"][..], "\nsaid\n"),
        (&["list", "main.rhai"][..], "p"),
        (&["graph", "main.rhai"][..], "digraph"),
    ] {
        let full = std::fs::OpenOptions::new()
            .write(true)
            .open("/dev/full")
            .expect("open /dev/full");
        let lost = prun(words, full.into());
        assert_eq!(lost.status.code(), Some(64), "{words:?}: {lost:?}");
        let stderr = String::from_utf8_lossy(&lost.stderr);
        assert!(stderr.contains("failed to write stdout"), "{stderr}");
        let read = prun(words, std::process::Stdio::piped());
        assert!(read.status.success(), "{words:?}: {read:?}");
        assert!(
            String::from_utf8_lossy(&read.stdout).contains(shown),
            "{read:?}"
        );
    }
}

#[test]
fn a_dry_run_reports_the_procs_that_would_run_as_not_started() {
    let out = Test::new()
        .script(
            r#"
proc("fetch", #{ shell: "touch fetched" });
proc("build", #{ deps: ["fetch"] }, |ctx| { write_file("built", "x"); 42 });
run("build");
"#,
        )
        .args(&["--dry-run", "--json", "report.json"])
        .run();
    out.ok();
    assert!(!out.exists("fetched") && !out.exists("built"), "a proc ran");
    let doc = report(&out);
    assert_eq!(doc["run"]["outcome"], "ok");
    for name in ["fetch", "build"] {
        let p = proc_of(&doc, name);
        // Nothing ran: not SUCCEEDED, and no times.
        assert_eq!(p["state"], "WANTED", "{p}");
        for key in ["start", "end", "duration", "exit_code", "log", "result"] {
            assert!(p[key].is_null(), "{name}: {key} is {}", p[key]);
        }
    }
}

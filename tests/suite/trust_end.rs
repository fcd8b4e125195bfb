//! Every way a run can end: SIGHUP and SIGQUIT, a SIGKILL of prun (logs readable under
//! their names, orphans of the crashed run ended by the next run), short file descriptors
//! and threads, and proc names too long for a file name.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::{Test, alive, assert_gone, pid_in};

/// Polls `cond` until it holds, for at most 20 s.
fn wait_until(what: &str, cond: impl Fn() -> bool) {
    let until = Instant::now() + Duration::from_secs(20);
    while !cond() {
        assert!(Instant::now() < until, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// SIGHUP or SIGQUIT to prun while a job runs: the job's group is ended, the `defer`
/// cleanup runs, the JSON report is written, and prun exits 130 as for SIGTERM.
fn hang_up(sig: &str) {
    let out = Test::new()
        .signal_when("job.pid", sig)
        .args(&["--json", "report.json"])
        .script(
            r#"
defer(|| shell("echo cleaned > cleanup.done"));
proc("long", #{ shell: "echo $$ > job.tmp; mv job.tmp job.pid; exec sleep 1000" });
run("long");
"#,
        )
        .run();
    out.code(130).err_has("prun: interrupted; terminated: long");
    assert_gone(pid_in(&out, "job.pid"), "the job's sleep", &out.describe());
    assert_eq!(out.read("cleanup.done"), "cleaned\n", "{}", out.describe());
    let report: serde_json::Value =
        serde_json::from_str(&out.read("report.json")).expect("the report is JSON");
    assert_eq!(report["run"]["outcome"], "interrupted", "{report}");
}

#[test]
fn sighup_ends_the_jobs_runs_cleanups_and_writes_the_report() {
    hang_up("HUP");
}

#[test]
fn sigquit_ends_the_jobs_runs_cleanups_and_writes_the_report() {
    hang_up("QUIT");
}

/// Runs `prun ARGS` in `dir` with the test's state directory.
fn prun_in(dir: &Path, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_prun"))
        .args(args)
        .current_dir(dir)
        .env("XDG_STATE_HOME", dir.join("state"))
        .stdin(Stdio::null())
        .output()
        .expect("run prun")
}

#[test]
fn names_too_long_for_a_file_name_keep_distinct_logs() {
    let stem = "n".repeat(300);
    let out = Test::new()
        .script(&format!(
            r#"
proc("{stem}::a", #{{ shell: "echo output-of-a" }});
proc("{stem}::b", #{{ shell: "echo output-of-b" }});
run(["{stem}::a", "{stem}::b"]);
"#
        ))
        .run();
    out.ok();
    for (p, text) in [("a", "output-of-a"), ("b", "output-of-b")] {
        let name = format!("{stem}::{p}");
        let log = prun_in(out.dir.path(), &["log", "main.rhai", &name]);
        let shown = String::from_utf8_lossy(&log.stdout);
        assert!(
            log.status.success() && shown.contains(text),
            "prun log {p}: {shown}{}\n{}",
            String::from_utf8_lossy(&log.stderr),
            out.describe()
        );
    }
}

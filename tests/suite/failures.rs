//! Failures: FAILED_DEP cascades, --fail-fast, NO_FAILURES, missing deps, cycles,
//! timeouts and retries.

use crate::support::{Test, assert_gone, pid_in};

#[test]
fn failure_cascades_and_unrelated_work_keeps_going() {
    // -j 1: `bad` takes the only slot, so `ok` runs only after the failure.
    let out = Test::new()
        .args(&["-j", "1"])
        .script(
            r#"
proc("bad", #{ cmd: ["sh", "-c", "echo about to fail; exit 3"] });
proc("dep", #{ deps: ["bad"], JOB(dep) });
proc("dep2", #{ deps: ["dep"], JOB(dep2) });
proc("ok", #{ JOB(ok) });
run("dep2");
run("ok");
"#,
        )
        .run();
    out.code(1)
        .line(r#"FAILED_DEP dep: dependency "bad" failed"#)
        .line(r#"FAILED_DEP dep2: dependency "dep" failed"#)
        .line("           | about to fail")
        .proc_state("SUCCEEDED", "ok")
        .summary_is("prun: 1 succeeded, 1 failed, 2 not run (failed dependency)");
    let bad = out.proc_line("FAILED", "bad");
    assert!(bad.contains("exited with code 3"), "{bad}");
    let ev = out.events();
    assert!(
        ev.ran("ok") && !ev.ran("dep") && !ev.ran("dep2"),
        "{}",
        ev.context()
    );
}

#[test]
fn fail_fast_terminates_running_jobs_and_starts_nothing_more() {
    let out = Test::new()
        .args(&["--fail-fast", "-j", "2"])
        .script(
            r#"
proc("long", #{ cmd: ["sh", "-c", "echo $$ > long.pid; exec sleep 300"] });
proc("bad", #{ cmd: ["sh", "-c",
    "i=0; while [ ! -s long.pid ]; do i=$((i+1)); [ $i -gt 1000 ] && exit 9; sleep 0.01; done; exit 1"] });
proc("after", #{ cmd: ["sh", "-c", "touch after.ran"] });
run(["long", "bad", "after"]);
"#,
        )
        .run();
    out.code(1)
        .proc_state("FAILED", "bad")
        .proc_state("FAILED", "long");
    let bad = out.proc_line("FAILED", "bad");
    assert!(bad.contains("exited with code 1"), "{bad}");
    assert!(
        !out.exists("after.ran"),
        "after started\n{}",
        out.describe()
    );
    out.out_lacks("SUCCEEDED  after");
    assert_gone(pid_in(&out, "long.pid"), "the long job", &out.describe());
}

#[test]
fn after_fail_fast_a_wait_for_a_proc_the_run_never_starts_throws() {
    // The abort has happened (nothing runs any more) when the script schedules `new`:
    // waiting for it must not return `()` as if it had run.
    let out = Test::new()
        .args(&["--fail-fast"])
        .script(
            r#"
proc("bad", #{ cmd: ["false"] });
run("bad");
try { wait("bad"); } catch {}
proc("new", || "ran");
run("new");
try { print(`new gave ${wait("new")}`); } catch (e) { print(`new: ${e}`); }
try { print(`waited for ${wait(["new"])}`); } catch (e) { print(`list: ${e}`); }
"#,
        )
        .run();
    out.code(1)
        .line("new: the run was aborted: a proc failed and --fail-fast is on")
        .line("list: the run was aborted: a proc failed and --fail-fast is on")
        .out_lacks("new gave")
        .out_lacks("waited for");
    assert!(!out.events().ran("new"));
}

#[test]
fn no_failures_guard_is_cancelled_after_a_failure() {
    let out = Test::new()
        .args(&["-j", "1"])
        .script(
            r#"
proc("bad", #{ cmd: ["false"] });
proc("guard", #{ deps: [NO_FAILURES], JOB(guard) });
run("bad");
run("guard");
"#,
        )
        .run();
    out.code(1)
        .line("FAILED_DEP guard: run aborted: a proc has failed")
        .summary_is("prun: 0 succeeded, 1 failed, 1 not run (failed dependency)");
    assert!(!out.events().ran("guard"));
}

#[test]
fn no_failures_guard_runs_when_nothing_failed() {
    let out = Test::new()
        .script(
            r#"
proc("a", #{ JOB(a) });
proc("guard", #{ deps: ["a", NO_FAILURES], JOB(guard) });
run("guard");
"#,
        )
        .run();
    out.ok().proc_state("SUCCEEDED", "guard");
    out.events().before("a", "guard");
}

#[test]
fn unknown_dependency_is_missing() {
    let out = Test::new()
        .script(
            r#"
proc("miss", #{ deps: ["nope"], JOB(miss) });
proc("fine", #{ JOB(fine) });
run(["miss", "fine"]);
"#,
        )
        .run();
    out.code(1)
        .line(r#"FAILED_DEP miss: dependency "nope" missing"#)
        .proc_state("SUCCEEDED", "fine")
        .summary_is("prun: 1 succeeded, 1 not run (failed dependency)");
}

#[test]
fn missing_dependency_is_an_error_when_not_allowed() {
    let out = Test::new()
        .script(
            r#"
set_options(#{ allow_missing_deps: false });
proc("b", #{ deps: ["nope"], JOB(b) });
run("b");
"#,
        )
        .run();
    out.code(2).err_has("\"b\"").err_has("\"nope\"");
    assert!(!out.events().ran("b"));
}

#[test]
fn dependency_defined_later_in_the_script_is_used() {
    let out = Test::new()
        .script(
            r#"
proc("b", #{ deps: ["a"], JOB(b) });
proc("d", #{ deps: ["gen::x"], JOB(d) });
run(["b", "d"]);
proc("a", #{ JOB(a, 0.05) });
proto("gen::[v]", |ctx, v| shell("sh job.sh " + ctx.name + " 0.05"));
"#,
        )
        .run();
    out.ok()
        .proc_state("SUCCEEDED", "a")
        .proc_state("SUCCEEDED", "b")
        .proc_state("SUCCEEDED", "gen::x")
        .proc_state("SUCCEEDED", "d")
        .summary_is("prun: 4 succeeded");
    let ev = out.events();
    ev.before("a", "b");
    ev.before("gen::x", "d");
}

#[test]
fn cycle_is_reported_with_its_path() {
    let out = Test::new()
        .script(
            r#"
proc("a", #{ deps: ["b"], JOB(a) });
proc("b", #{ deps: ["c"], JOB(b) });
proc("c", #{ deps: ["a"], JOB(c) });
run("a");
"#,
        )
        .run();
    out.code(2)
        .err_has("a -> b -> c -> a")
        .err_has("main.rhai:5:1");
    assert!(!out.events().ran("a") && !out.events().ran("c"));
}

#[test]
fn a_graph_error_met_with_no_call_in_the_script_names_where_the_proc_is_defined() {
    // A `now` proc is scheduled when the top level ends and a target by the command line:
    // no call of the script leads to the error, so the definition is named. (A `now`
    // proc whose dependencies are defined before it meets the fault at its `proc(...)`.)
    let cycle = r#"
proc("a", #{ deps: ["b"], JOB(a) });
proc("b", #{ deps: ["a"], JOB(b) });
"#;
    let now = Test::new()
        .script(&format!(
            "\nproc(\"n\", #{{ now: true, deps: [\"a\"], JOB(n) }});{cycle}"
        ))
        .run();
    now.code(2)
        .err_has("prun: error: main.rhai:3:1: dependency cycle: a -> b -> a");
    let target = Test::new().args(&["a"]).script(cycle).run();
    target
        .code(2)
        .err_has("prun: target: main.rhai:2:1: dependency cycle: a -> b -> a");
    let wave = Test::new()
        .script(
            r#"
proc("lo", #{ now: true, deps: ["hi"], JOB(lo) });
proc("hi", #{ wave: 1, JOB(hi) });
"#,
        )
        .run();
    wave.code(2).err_has(
        "prun: error: main.rhai:2:1: proc \"lo\" (wave 0) cannot depend on proc \"hi\" (wave 1)",
    );
}

#[test]
fn self_dependency_is_a_cycle() {
    let out = Test::new()
        .script(
            r#"
proc("s", #{ deps: ["s"], JOB(s) });
run("s");
"#,
        )
        .run();
    out.code(2).err_has("s -> s");
    assert!(!out.events().ran("s"));
}

#[test]
fn command_timeout_kills_the_whole_process_group() {
    let out = Test::new()
        .script(
            r#"
proc("slow", #{
    timeout: "500ms",
    cmd: ["sh", "-c", "echo $$ > pid; sleep 300 & echo $! > child; wait"],
});
proc("after", #{ deps: ["slow"], JOB(after) });
run("after");
"#,
        )
        .run();
    out.code(1)
        .line(r#"FAILED_DEP after: dependency "slow" failed"#);
    let slow = out.proc_line("FAILED", "slow");
    assert!(slow.contains("timed out"), "{slow}");
    let ctx = out.describe();
    assert_gone(pid_in(&out, "pid"), "the timed-out shell", &ctx);
    assert_gone(
        pid_in(&out, "child"),
        "the timed-out shell's background child",
        &ctx,
    );
}

#[test]
fn closure_timeout_terminates_its_command() {
    let out = Test::new()
        .script(
            r#"
proc("slow", #{ timeout: 0.5 }, |ctx| {
    shell("echo $$ > cpid; exec sleep 300");
    "never"
});
proc("after", #{ deps: ["slow"] }, |ctx| "never");
run("after");
"#,
        )
        .run();
    out.code(1)
        .line(r#"FAILED_DEP after: dependency "slow" failed"#);
    let slow = out.proc_line("FAILED", "slow");
    assert!(slow.contains("timed out"), "{slow}");
    assert_gone(
        pid_in(&out, "cpid"),
        "the closure's command",
        &out.describe(),
    );
    // The command's log says why it ended: its proc timed out, the run went on (it read
    // "was terminated because the run was aborted").
    assert!(
        out.stdout
            .contains("| # was terminated because its proc timed out after 500ms"),
        "{}",
        out.describe()
    );
    out.out_lacks("because the run was aborted");
}

const FLAKY: &str = "n=$(cat count 2>/dev/null || echo 0); n=$((n+1)); echo $n > count; echo attempt $n; [ $n -gt 2 ]";

#[test]
fn retries_rerun_a_failing_proc() {
    let out = Test::new()
        .script(&format!(
            r#"proc("flaky", #{{ retries: 2, retry_delay: "10ms", shell: "{FLAKY}" }});
run("flaky");"#
        ))
        .run();
    out.ok()
        .proc_state("SUCCEEDED", "flaky")
        .summary_is("prun: 1 succeeded");
    assert_eq!(out.read("count").trim(), "3");
}

#[test]
fn retries_exhausted_fails() {
    let out = Test::new()
        .script(&format!(
            r#"proc("flaky", #{{ retries: 1, shell: "{FLAKY}" }});
run("flaky");"#
        ))
        .run();
    out.code(1)
        .proc_state("FAILED", "flaky")
        .summary_is("prun: 0 succeeded, 1 failed");
    assert_eq!(out.read("count").trim(), "2");
}

#[test]
fn closure_retries() {
    let out = Test::new()
        .script(&format!(
            r#"proc("flaky", #{{ retries: 2 }}, |ctx| {{ shell("{FLAKY}"); "done" }});
run("flaky");
print("r=" + wait("flaky"));"#
        ))
        .run();
    out.ok().line("r=done");
    assert_eq!(out.read("count").trim(), "3");
}

#[test]
fn interrupt_terminates_every_job_and_exits_130() {
    for sig in ["INT", "TERM"] {
        let out = Test::new()
            .signal_when("both.started", sig)
            .args(&["-j", "4"])
            .script(
                r#"
proc("closure", |ctx| { shell("echo $$ > closure.pid; exec sleep 300"); 1 });
proc("command", #{ cmd: ["sh", "-c", "echo $$ > command.pid; exec sleep 300"] });
proc("flag", #{ cmd: ["sh", "-c",
    "i=0; while [ ! -s closure.pid ] || [ ! -s command.pid ] || [ ! -s top.pid ]; do i=$((i+1)); [ $i -gt 1000 ] && exit 9; sleep 0.01; done; touch both.started"] });
proc("later", #{ deps: ["command"], JOB(later) });
run(["closure", "command", "flag", "later"]);
shell("echo $$ > top.pid; exec sleep 300");
"#,
            )
            .run();
        out.code(130);
        assert!(!out.events().ran("later"), "{}", out.describe());
        let ctx = out.describe();
        for f in ["closure.pid", "command.pid", "top.pid"] {
            assert_gone(pid_in(&out, f), f, &ctx);
        }
    }
}

#[test]
fn timeout_kills_a_job_that_ignores_sigterm() {
    // SIGTERM is ignored (and the ignoring is inherited by `sleep`), so only the SIGKILL
    // after the grace period ends it.
    let out = Test::new()
        .script(
            r#"
proc("stubborn", #{ timeout: "300ms",
    cmd: ["sh", "-c", "trap '' TERM; echo $$ > pid; sleep 300 & echo $! > child; wait; wait"] });
run("stubborn");
"#,
        )
        .run();
    out.code(1);
    let line = out.proc_line("FAILED", "stubborn");
    assert!(line.contains("timed out"), "{line}");
    let ctx = out.describe();
    assert_gone(pid_in(&out, "pid"), "the shell", &ctx);
    assert_gone(pid_in(&out, "child"), "its child", &ctx);
}

#[test]
fn cycle_closed_by_a_later_definition() {
    let out = Test::new()
        .script(
            r#"
proc("a", #{ deps: ["b"], JOB(a) });
run("a");
proc("b", #{ deps: ["a"], JOB(b) });
"#,
        )
        .run();
    out.code(2).err_has("main.rhai:4:1");
    assert!(
        out.stderr.contains("b -> a -> b") || out.stderr.contains("a -> b -> a"),
        "{}",
        out.describe()
    );
    assert!(!out.events().ran("a") && !out.events().ran("b"));
}

#[test]
fn missing_dependency_is_decided_when_the_script_blocks() {
    let out = Test::new()
        .script(
            r#"
proc("b", #{ deps: ["a"], JOB(b) });
run("b");
try { wait(); } catch (e) { print("caught: " + e); }
print("b is " + state("b"));
"#,
        )
        .run();
    out.code(1)
        .line(r#"FAILED_DEP b: dependency "a" missing"#)
        .line("b is FAILED_DEP");
}

/// A proc waiting out its retry delay when the run is aborted (`--fail-fast`, a script
/// error) fails at once with its last attempt's error: the run no longer ends with it
/// WANTED ("not run"), its failure lost. Its waiting is seen through `state()`: WANTED
/// again after its first attempt wrote `r.tried`.
#[test]
fn a_proc_waiting_to_retry_when_the_run_is_aborted_fails_with_its_error() {
    const RETRYING: &str = r#"
proc("r", #{ retries: 1, retry_delay: "10m", shell: "touch r.tried; echo r-said-why >&2; exit 5" });
fn until_retrying() {
    let i = 0;
    while !(exists("r.tried") && state("r") == "WANTED") {
        i += 1;
        if i > 3000 { throw "r never waited to retry"; }
        sleep(0.01);
    }
}
fn exists(f) { shell("test -e " + f, #{ check: false }).code == 0 }
"#;
    let fail_fast = Test::new()
        .args(&["--fail-fast"])
        .timeout(std::time::Duration::from_secs(30))
        .script(&format!(
            "{RETRYING}\nproc(\"bad\", |ctx| {{ until_retrying(); throw \"bad failed\"; }});\nrun([\"r\", \"bad\"]);"
        ))
        .run();
    let script_error = Test::new()
        .timeout(std::time::Duration::from_secs(30))
        .script(&format!(
            "{RETRYING}\nrun(\"r\");\nuntil_retrying();\nthrow \"boom\";"
        ))
        .run();
    for (out, code) in [(&fail_fast, 1), (&script_error, 2)] {
        out.code(code);
        said_not_retried(out);
    }
}

/// Asserts that proc `r`, whose attempt exited with code 5, failed saying it was not
/// retried because the run was aborted.
fn said_not_retried(out: &crate::support::Output) {
    let line = out.proc_line("FAILED", "r");
    assert!(
        line.contains("exited with code 5 (not retried: the run was aborted)"),
        "{line}\n{}",
        out.describe()
    );
}

/// A proc whose retry is due but has no slot yet when `--fail-fast` aborts the run fails
/// with its last attempt's error, as one waiting out a retry delay does: it was left
/// WANTED ("not run"), its failure lost (found by random scripts of retries under
/// `--fail-fast`). `hold` keeps one of the two slots; `bad`, scheduled while `r`'s first
/// attempt runs, is queued ahead of `r`'s retry and takes the slot `r` frees.
#[test]
fn a_retry_queued_for_a_slot_when_fail_fast_aborts_fails_with_its_error() {
    let out = Test::new()
        .args(&["--fail-fast", "-j", "2"])
        .timeout(std::time::Duration::from_secs(30))
        .script(
            r#"
fn appears(f) {
    let i = 0;
    while shell(`test -s ${f}`, #{ check: false }).code != 0 {
        i += 1;
        if i > 3000 { throw `${f} never came`; }
        sleep(0.01);
    }
}
proc("bad", #{ shell: "exit 1" });
proc("r", #{ retries: 1, shell: "test -e r.tried && exit 0; echo tried > r.tried; i=0; until [ -e bad.scheduled ]; do i=$((i+1)); [ $i -gt 1000 ] && exit 9; sleep 0.01; done; exit 5" });
proc("hold", #{ shell: "echo $$ > hold.pid; i=0; until [ -e never ]; do i=$((i+1)); [ $i -gt 1000 ] && exit 9; sleep 0.01; done" });
run(["r", "hold"]);
appears("r.tried");
appears("hold.pid");
run("bad");
write_file("bad.scheduled", "");
"#,
        )
        .run();
    out.code(1).proc_state("FAILED", "bad");
    said_not_retried(&out);
    assert_gone(pid_in(&out, "hold.pid"), "the hold job", &out.describe());
}

/// An attempt that fails after the run was aborted, with retries left, says that it was
/// not retried, as a proc waiting to retry then does: it said only `exited with code 5`,
/// as if it had used up its retries (found by random scripts of retries under
/// `--fail-fast`). A script error lets the running jobs finish: `r` fails after it. The
/// pause only makes the attempt end after the abort (before it, `r` would wait to retry,
/// and say the same).
#[test]
fn an_attempt_failing_after_the_abort_says_it_was_not_retried() {
    let out = Test::new()
        .timeout(std::time::Duration::from_secs(30))
        .script(
            r#"
proc("r", #{ retries: 1, shell: "test -e r.tried && exit 0; touch r.tried; i=0; until [ -e thrown ]; do i=$((i+1)); [ $i -gt 1000 ] && exit 9; sleep 0.01; done; sleep 0.3; exit 5" });
run("r");
while file_info("r.tried") == () { sleep(0.01); }
write_file("thrown", "");
throw "boom";
"#,
        )
        .run();
    out.code(2);
    said_not_retried(&out);
}

/// A closure in a `sleep` when `--fail-fast` aborts the run fails saying why, as a
/// command it runs does (`was terminated because the run was aborted`): it said only
/// `sleep interrupted` (found by random scripts of `--fail-fast`). The closure says it
/// got there with `write_file`, not a command, which the abort could catch still running.
#[test]
fn a_sleep_ended_by_fail_fast_says_the_run_was_aborted() {
    let out = Test::new()
        .args(&["--fail-fast"])
        .timeout(std::time::Duration::from_secs(30))
        .script(
            r#"
proc("nap", |ctx| { write_file("nap.started", ""); sleep(300); "rested" });
proc("bad", #{ shell: "i=0; until [ -e nap.started ]; do i=$((i+1)); [ $i -gt 1000 ] && exit 9; sleep 0.01; done; exit 1" });
run(["nap", "bad"]);
"#,
        )
        .run();
    out.code(1).proc_state("FAILED", "bad");
    let line = out.proc_line("FAILED", "nap");
    assert!(
        line.contains("sleep interrupted: the run was aborted"),
        "{line}\n{}",
        out.describe()
    );
}

/// A small file system mounted for one test (a tmpfs of `size`), unmounted when dropped.
/// Whatever holds the directory it is mounted in (`Output`, `Ws`) is declared before it,
/// so that it is dropped after it, a failing test's unwinding included: a mount point in
/// the directory kept the directory from being removed.
pub(crate) struct Mounted(std::path::PathBuf);

impl Mounted {
    pub(crate) fn tmpfs(at: &std::path::Path, size: &str) -> Mounted {
        std::fs::create_dir_all(at).expect("mount point");
        let status = std::process::Command::new("mount")
            // Mode 0755, not tmpfs's 1777: a task DB is only kept in a directory no
            // other user can write.
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0755"),
                "tmpfs",
            ])
            .arg(at)
            .status()
            .expect("run mount");
        assert!(status.success(), "cannot mount a tmpfs at {}", at.display());
        Mounted(at.to_path_buf())
    }
}

impl Drop for Mounted {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.0)
            .status();
    }
}

/// A command that fails because its log's file system is full (`tr` cannot write what it
/// prints, and its own error message goes to the same full log) fails with an error that
/// says the log could not be written and why, not only its exit code.
#[test]
#[cfg_attr(prun_no_root, ignore = "needs root (to mount a small tmpfs)")]
fn a_failure_whose_log_could_not_be_written_says_why() {
    let test = Test::new();
    let out;
    let _full = Mounted::tmpfs(&test.dir().join("small"), "64k");
    out = test
        .script(
            r#"
set_options(#{ log_dir: "small/logs" });
proc("big", #{ shell: "head -c 200000 /dev/zero | tr '\\0' x; echo done" });
run("big");
"#,
        )
        .run();
    out.code(1);
    let line = out.proc_line("FAILED", "big");
    assert!(
        line.contains("(its log could not be written: No space left on device"),
        "{line}"
    );
}

/// A crash journal that cannot be written (its file system is full) costs the protection
/// it gives, not the run: the run goes on, and says at its end that a crash would have
/// left jobs running.
#[test]
#[cfg_attr(prun_no_root, ignore = "needs root (to mount a small tmpfs)")]
fn a_crash_journal_that_could_not_be_written_is_warned_about() {
    let test = Test::new();
    let out;
    let _full = Mounted::tmpfs(&test.dir().join("state"), "256k");
    out = test
        .args(&["--no-db"])
        .script(
            r#"
set_options(#{ log_dir: "logs" });
proc("fill", #{ shell: "head -c 1000000 /dev/zero > \"$XDG_STATE_HOME/fill\"; true" });
for i in 0..100 { proc(`t${i}`, #{ deps: ["fill"], cmd: ["true"] }); }
run("t*");
"#,
        )
        .run();
    out.code(0);
    assert!(
        out.stderr.contains("failed to write the crash journal")
            && out.stderr.contains("No space left on device")
            && out
                .stderr
                .contains("a crash of prun would have left some of its jobs running"),
        "{}",
        out.describe()
    );
}

/// A run's log directory removed while the run lasts (a cleaner of old files) is made
/// again when a log next needs it: later procs are logged and reported as usual, instead
/// of failing with `failed to open log ...: No such file or directory`.
#[test]
fn a_log_directory_removed_during_the_run_is_made_again() {
    let out = Test::new()
        .script(
            r#"
set_options(#{ log_dir: "logs" });
proc("cleaner", #{ shell: "rm -rf logs; echo after-the-rm" });
proc("body", #{ deps: ["cleaner"], shell: "echo body-out; exit 4" });
proc("closure", #{ deps: ["cleaner"] }, |ctx| { shell("echo closure-out"); ctx.log("noted"); });
run(["body", "closure"]);
"#,
        )
        .run();
    out.code(1).proc_state("SUCCEEDED", "closure");
    let line = out.proc_line("FAILED", "body");
    assert!(
        line.contains("exited with code 4"),
        "{line}\n{}",
        out.describe()
    );
    assert!(out.stdout.contains("| body-out"), "{}", out.describe());
    let runs: Vec<_> = std::fs::read_dir(out.path("logs"))
        .expect("the log root, made again")
        .flatten()
        .collect();
    assert_eq!(runs.len(), 1, "{}", out.describe());
    let run = runs[0].path();
    for (log, text) in [
        ("cleaner.log", "after-the-rm"),
        ("closure.log", "closure-out"),
        ("closure.log", "noted"),
    ] {
        let got = std::fs::read_to_string(run.join(log)).unwrap_or_default();
        assert!(got.contains(text), "{log}: {got:?}\n{}", out.describe());
    }
}

#[test]
fn exit_with_a_failure_value_is_not_a_success() {
    // `exit(5)` at the top level ended the script with status 0, and `exit(3)` in a
    // proc failed it with Rhai's "NOT AN ERROR - exit value".
    let out = Test::new()
        .script("proc(\"b\", #{ shell: \"true\" });\nrun(\"b\");\nexit(5);\nprint(\"not here\");\n")
        .run();
    out.code(2)
        .err_has("main.rhai:3:1: the script called exit(5)")
        .out_lacks("not here")
        .proc_state("SUCCEEDED", "b");
    let out = Test::new()
        .script("proc(\"a\", |ctx| { exit(3); 1 });\nrun(\"a\");\n")
        .run();
    out.code(1);
    let line = out.proc_line("FAILED", "a");
    assert!(line.contains("exit(3) inside a proc"), "{line}");
    // `exit()` and `exit(0)` end the top level, or a cleanup, quietly.
    let out = Test::new()
        .script("defer(|| { exit(0); print(\"cleanup went on\"); });\nprint(\"top\");\nexit();\nprint(\"not here\");\n")
        .run();
    out.ok()
        .line("top")
        .out_lacks("not here")
        .out_lacks("cleanup went on");
    assert!(!out.stderr.contains("warning"), "{}", out.describe());
}

#[test]
fn a_missing_dependency_with_a_line_break_is_shown_on_one_line() {
    // A dependency closure returned "a\nb": the FAILED_DEP line broke in two.
    let out = Test::new()
        .script("proc(\"a\", #{ deps: [|ctx| \"x\\ny\"] }, || 1);\nrun(\"a\");\n")
        .run();
    out.code(1)
        .out_has("FAILED_DEP a: dependency \"x\\ny\" missing");
}

#[test]
fn an_interrupt_after_a_script_error_terminates_the_jobs_the_error_let_run() {
    // A script error lets running jobs finish; a SIGTERM then must still end them, as it
    // does any other time (prun waited for `sleep 300`).
    let out = Test::new()
        .timeout(std::time::Duration::from_secs(30))
        .signal_when("long.ready", "TERM")
        .script(
            r#"
proc("long", #{ cmd: ["sh", "-c",
    "echo $$ > long.pid; i=0; while [ ! -e top.done ]; do i=$((i+1)); [ $i -gt 2000 ] && exit 9; sleep 0.01; done; touch long.ready; exec sleep 300"] });
run("long");
shell("i=0; while [ ! -s long.pid ]; do i=$((i+1)); [ $i -gt 2000 ] && exit 9; sleep 0.01; done");
write_file("top.done", "");
throw "oops";
"#,
        )
        .run();
    out.code(130).err_has("main.rhai:7:1: oops");
    let long = out.proc_line("FAILED", "long");
    assert!(long.contains("terminated"), "{long}");
    assert_gone(pid_in(&out, "long.pid"), "long", &out.describe());
}

#[test]
fn a_body_waiting_for_a_new_proc_after_fail_fast_fails_instead_of_hanging() {
    // `a` catches the termination of its command and then waits for `b`, which nothing
    // will start any more: the wait hung, `a` keeping the run from ending.
    let out = Test::new()
        .timeout(std::time::Duration::from_secs(30))
        .args(&["--fail-fast"])
        .script(
            r#"
proc("bad", #{ cmd: ["sh", "-c", "i=0; while [ ! -e a.started ]; do i=$((i+1)); [ $i -gt 2000 ] && exit 9; sleep 0.01; done; exit 1"] });
proc("b", #{ cmd: ["touch", "b.ran"] });
proc("a", |ctx| {
    try { shell("touch a.started; exec sleep 300"); } catch (e) { }
    ctx.run("b");
    ctx.wait("b")
});
run(["a", "bad"]);
"#,
        )
        .run();
    out.code(1).proc_state("FAILED", "bad");
    let a = out.proc_line("FAILED", "a");
    assert!(
        a.contains("the run was aborted: a proc failed and --fail-fast is on"),
        "{a}"
    );
    assert!(!out.exists("b.ran"), "{}", out.describe());
}

/// A `run` that meets a graph fault (a cycle, a missing dependency with
/// allow_missing_deps off, a wave violation, a value no `arg_choices` allows, a
/// `when_scheduled` target already run) throws and schedules nothing it named: the procs
/// named before the fault had started, and the ones at fault were FAILED.
#[test]
fn a_run_that_meets_a_graph_fault_schedules_nothing() {
    let out = Test::new()
        .script(
            r#"
set_options(#{ allow_missing_deps: false });
proc("done", || 1);
run("done");
wait("done");
proc("c", #{ deps: ["d"] }, || 1);
proc("d", #{ deps: ["c"] }, || 1);
proc("m", #{ deps: ["nope"] }, || 1);
proc("hi", #{ wave: 1 }, || 1);
proc("lo", #{ deps: ["hi"] }, || 1);
proto("t::[x]", #{ arg_choices: #{ x: ["1", "2"] } }, || 1);
proc("bad", #{ deps: ["t::3"] }, || 1);
proc("late", #{ rdeps: [when_scheduled("done")] }, || 1);
proc("top", #{ deps: ["c"] }, || 1);
for target in ["c", "m", "lo", "bad", "late", "top"] {
    let first = "first::" + target;
    proc(first, #{ shell: "touch " + first });
    try {
        run([first, target]);
        print(target + ": no error");
    } catch (e) {
        print(target + ": " + state(first) + " " + state(target));
    }
}
"#,
        )
        .run();
    out.ok();
    for target in ["c", "m", "lo", "bad", "late", "top"] {
        out.line(&format!("{target}: IDLE IDLE"));
        assert!(
            !out.exists(&format!("first::{target}")),
            "{}",
            out.describe()
        );
    }
    out.summary_is("prun: 1 succeeded");
}

/// A proc scheduled while its dependency did not exist waits for it; a later `proc(...)`
/// or `proto(...)` that defines it into a cycle or a higher wave throws, naming the
/// fault, and defines nothing: the waiting proc waits on, and runs once the script,
/// having caught the error, defines the dependency as it should be.
#[test]
fn a_definition_that_would_fault_a_waiting_dependent_throws_and_defines_nothing() {
    let out = Test::new()
        .script(
            r#"
proc("a", #{ deps: ["b"], shell: "touch a-ran" });
proc("w", #{ deps: ["hi"], shell: "touch w-ran" });
proc("p", #{ deps: ["made::1"], shell: "touch p-ran" });
run(["a", "w", "p"]);
for def in [
    || proc("b", #{ deps: ["a"], shell: "touch b-bad" }),
    || proc("hi", #{ wave: 1, shell: "touch hi-bad" }),
    || proto("made::[n]", #{ deps: ["p"], shell: "touch made-bad" }),
] {
    try {
        def.call();
        print("no error");
    } catch (e) {
        print("E: " + e);
    }
}
for name in ["b", "hi", "made::1"] {
    try { print(name + ": " + state(name)); } catch { print(name + ": not defined"); }
}
proc("b", #{ shell: "touch b-ran" });
proc("hi", #{ shell: "touch hi-ran" });
proto("made::[n]", #{ shell: "touch made-ran" });
"#,
        )
        .run();
    out.ok()
        .line(r#"E: proc "b" cannot be defined: dependency cycle: a -> b -> a"#)
        .line(r#"E: proc "hi" cannot be defined: proc "w" (wave 0) cannot depend on proc "hi" (wave 1): dependencies must be in the same or a lower wave"#)
        .line(r#"E: proto "made::[n]" cannot be defined: dependency cycle: p -> made::1 -> p"#)
        .line("b: not defined")
        .line("hi: not defined")
        .line("made::1: not defined")
        .summary_is("prun: 6 succeeded");
    for f in ["a-ran", "w-ran", "p-ran", "b-ran", "hi-ran", "made-ran"] {
        assert!(out.exists(f), "{f}\n{}", out.describe());
    }
    for f in ["b-bad", "hi-bad", "made-bad"] {
        assert!(!out.exists(f), "{f}\n{}", out.describe());
    }
}

/// An interrupt while an `inputs` closure runs a command (on a worker thread, judging
/// the proc) ended the run without waiting for that judging: the proc's FAILED line came
/// after the summary, and its error could be Tokio's "A Tokio 1.x context was found, but
/// it is being shutdown".
#[test]
fn an_interrupt_while_an_inputs_closure_runs_a_command_waits_for_it() {
    let out = Test::new()
        .timeout(std::time::Duration::from_secs(30))
        .signal_when("judging.started", "TERM")
        .script(
            r#"
proc("x", #{ shell: "true" });
proc("p", #{ deps: ["x"], inputs: |ctx| { exec(["sh", "-c", "touch judging.started; exec sleep 300"]); [] } }, || 1);
run("p");
"#,
        )
        .run();
    out.code(130);
    let p = out.proc_line("FAILED", "p");
    assert!(
        p.contains("terminated because the run was aborted"),
        "{p}\n{}",
        out.describe()
    );
    let summary = out
        .stdout
        .lines()
        .position(|l| l.starts_with("prun: 1 succeeded"));
    let failed = out
        .stdout
        .lines()
        .position(|l| l.starts_with("FAILED     p"));
    assert!(failed < summary, "{}", out.describe());
}

#[test]
fn a_now_proc_that_meets_a_graph_fault_throws_at_its_own_proc_call() {
    // The fault surfaced at the next operation: `run("ok")` threw the `now` proc's error
    // and scheduled nothing of its own.
    let out = Test::new()
        .script(
            r#"
set_options(#{ allow_missing_deps: false });
proc("ok", #{ shell: "touch ok.ran" });
proc("a", #{ deps: ["b"] }, || 1);
proc("b", #{ deps: ["a"] }, || 1);
proc("hi", #{ wave: 1 }, || 1);
// Not a fault: its dependency may be defined after it.
proc("early", #{ now: true, deps: ["later"] }, || 1);
proc("later", #{ shell: "touch later.ran" });
for pair in [["cyc", "a"], ["low", "hi"]] {
    try {
        proc(pair[0], #{ now: true, deps: [pair[1]] }, || 1);
        print(pair[0] + ": no error");
    } catch (e) {
        print(pair[0] + ": " + e);
    }
}
run("ok");
print("states: " + state("cyc") + " " + state("low") + " " + state("a") + " " + state("hi"));
"#,
        )
        .run();
    out.ok()
        .out_has("cyc: proc \"cyc\" (now: true) cannot be scheduled: dependency cycle: a -> b -> a")
        .out_has("low: proc \"low\" (now: true) cannot be scheduled: proc \"low\" (wave 0) cannot depend on proc \"hi\" (wave 1)")
        .line("states: IDLE IDLE IDLE IDLE");
    assert!(
        out.exists("ok.ran") && out.exists("later.ran"),
        "{}",
        out.describe()
    );
}

/// `--fail-fast` ends the commands of the `inputs` and `outputs` closures of the procs
/// being judged or checked, as it ends their bodies' commands: those ran on with the
/// script's own token, which only Ctrl-C fires, and the run waited for a `sleep 300`
/// before it could end (found by probing each closure kind under `--fail-fast`).
#[test]
fn fail_fast_ends_the_commands_of_inputs_and_outputs_closures() {
    let out = Test::new()
        .args(&["--fail-fast", "-j", "3"])
        .timeout(std::time::Duration::from_secs(30))
        .script(
            r#"
proc("judged", #{ inputs: |ctx| { exec(["sh", "-c", "echo $$ > inputs.pid; exec sleep 300"]); "in.txt" } }, || 1);
proc("checked", #{ outputs: |ctx| { exec(["sh", "-c", "echo $$ > outputs.pid; exec sleep 300"]); "out.txt" } }, || 1);
proc("bad", #{ shell: "i=0; until [ -s inputs.pid ] && [ -s outputs.pid ]; do i=$((i+1)); [ $i -gt 1000 ] && exit 9; sleep 0.01; done; exit 1" });
run(["judged", "checked", "bad"]);
"#,
        )
        .run();
    out.code(1).proc_state("FAILED", "bad");
    for name in ["judged", "checked"] {
        let line = out.proc_line("FAILED", name);
        assert!(
            line.contains("was terminated because the run was aborted"),
            "{line}\n{}",
            out.describe()
        );
    }
    for file in ["inputs.pid", "outputs.pid"] {
        assert_gone(pid_in(&out, file), file, &out.describe());
    }
}

//! Every way a run can end: SIGHUP and SIGQUIT, a SIGKILL of prun (logs readable under
//! their names, orphans of the crashed run ended by the next run), short file descriptors
//! and threads, and proc names too long for a file name.

use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
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

/// `prun ARGS` in `dir` with the test's state directory, reading nothing.
fn prun_command(dir: &Path, args: &[&str]) -> Command {
    wrapped_prun(&[], dir, args)
}

/// [`prun_command`] run by the command `wrap` (`unshare --time ...`), which execs it.
fn wrapped_prun(wrap: &[&str], dir: &Path, args: &[&str]) -> Command {
    let prun = env!("CARGO_BIN_EXE_prun");
    let mut cmd = match wrap.split_first() {
        Some((first, rest)) => {
            let mut c = Command::new(first);
            c.args(rest).arg(prun);
            c
        }
        None => Command::new(prun),
    };
    cmd.args(args)
        .current_dir(dir)
        .env("XDG_STATE_HOME", dir.join("state"))
        .stdin(Stdio::null());
    cmd
}

/// Runs `prun ARGS` in `dir` with the test's state directory.
fn prun_in(dir: &Path, args: &[&str]) -> std::process::Output {
    prun_command(dir, args).output().expect("run prun")
}

/// Starts `prun ARGS` in `dir` with the test's state directory, its output dropped.
fn spawn_prun_in(dir: &Path, args: &[&str]) -> std::process::Child {
    prun_command(dir, args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("run prun")
}

/// The pid a job wrote to `path`.
fn pid_at(path: &Path) -> u32 {
    std::fs::read_to_string(path)
        .unwrap()
        .trim()
        .parse()
        .unwrap()
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

/// Every file and directory under `root`, at any depth.
fn paths_under(root: &Path) -> Vec<std::path::PathBuf> {
    let mut found = Vec::new();
    let mut dirs = vec![root.to_path_buf()];
    while let Some(d) = dirs.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                dirs.push(p.clone());
            }
            found.push(p);
        }
    }
    found
}

/// The files named `name` anywhere under `root`.
fn find_files(root: &Path, name: &str) -> Vec<std::path::PathBuf> {
    let mut found = paths_under(root);
    found.retain(|p| !p.is_dir() && p.file_name().is_some_and(|n| n == name));
    found
}

/// prun is killed with SIGKILL while a job runs: the job's log is there under its name
/// with what the job printed, and the next `--lock` run ends the job left running (with a
/// warning naming it) before it starts its own.
#[test]
fn after_a_kill_9_the_log_is_readable_and_the_next_run_ends_the_orphan() {
    let t = Test::new().script(
        r#"
proc("talk", #{ shell: "if [ -e second ]; then s=; [ -e job.pid ] && s=$(cut -d' ' -f3 /proc/$(cat job.pid)/stat 2>/dev/null); if [ -n \"$s\" ] && [ \"$s\" != Z ]; then echo \"$s\" > overlap; fi; echo second-run; else echo hello-from-talk; echo $$ > job.tmp; mv job.tmp job.pid; exec sleep 1000; fi" });
run("talk");
"#,
    );
    let dir = t.dir().to_path_buf();
    // An empty script run writes main.rhai; the real runs follow.
    std::fs::write(dir.join("second"), "").unwrap();
    let setup = t.run();
    setup.ok();
    std::fs::remove_file(dir.join("second")).unwrap();
    let mut first = spawn_prun_in(&dir, &["main.rhai", "--lock"]);
    wait_until("the job to start", || dir.join("job.pid").exists());
    let pid = pid_at(&dir.join("job.pid"));
    // The running job's log is there under its name (two logs: the setup run's and this),
    // with what it printed on a line of its own (the command line in the header names it).
    let has_line = || {
        find_files(&dir.join("state"), "talk.log")
            .iter()
            .any(|p| std::fs::read_to_string(p).is_ok_and(|t| t.contains("\nhello-from-talk\n")))
    };
    wait_until("the running job's log under its name", has_line);
    // It got its header (written only when a log is kept or named) before its name.
    let headed = find_files(&dir.join("state"), "talk.log").iter().any(|p| {
        std::fs::read_to_string(p).is_ok_and(|t| {
            t.starts_with("$ if [ -e second ]")
                && t.contains("\n# started ")
                && t.contains("\nhello-from-talk\n")
        })
    });
    assert!(
        headed,
        "the running job's log has no header before its output"
    );
    // The job may print and write its pid before prun has recorded its group.
    crate::support::wait_recorded(&dir.join("state"), first.id(), pid);
    first.kill().unwrap();
    first.wait().unwrap();
    assert!(has_line(), "the log is gone after prun was killed");
    assert!(
        alive(pid),
        "the job did not outlive the killed prun: the test proves nothing"
    );
    std::fs::write(dir.join("second"), "").unwrap();
    let (stderr, context) =
        next_run_ends(&dir, &["main.rhai", "--lock"], pid, "the crashed run's job");
    assert!(
        stderr.contains("crashed run") && stderr.contains(&format!("process group {pid}")),
        "no warning naming the orphan\n{context}"
    );
    assert!(
        !dir.join("overlap").exists(),
        "the second run started while the crashed run's job still ran (state {})\n{context}",
        std::fs::read_to_string(dir.join("overlap")).unwrap_or_default()
    );
}

/// The run after a crash (with `args`): it succeeds and `pid` (`what`) is gone when it
/// returns. Its stderr, and its stderr and stdout for a failed assertion's message.
fn next_run_ends(dir: &Path, args: &[&str], pid: u32, what: &str) -> (String, String) {
    let next = prun_in(dir, args);
    let stderr = String::from_utf8_lossy(&next.stderr).into_owned();
    let context = format!("{stderr}{}", String::from_utf8_lossy(&next.stdout));
    assert_gone(pid, what, &context);
    assert!(next.status.success(), "{context}");
    (stderr, context)
}

/// A run of `script` killed by SIGKILL once the job that writes its pid to `pid_file` runs
/// and is recorded in the crash journal. A set-up run with `second` present comes first
/// (the runs after the crash have it again, so that their jobs end at once). Returns the
/// set-up's output (which keeps the test's directory), that directory, the job's pid and
/// the crashed prun's pid.
fn crashed_run(script: &str, pid_file: &str) -> (crate::support::Output, PathBuf, u32, u32) {
    crashed_run_of(Test::new().script(script), pid_file)
}

/// [`crashed_run`] of the test `t`, its script given.
fn crashed_run_of(t: Test, pid_file: &str) -> (crate::support::Output, PathBuf, u32, u32) {
    crashed_run_in(&[], t, pid_file)
}

/// [`crashed_run_of`] with the crashed prun run by `wrap` (see [`wrapped_prun`]).
fn crashed_run_in(
    wrap: &[&str],
    t: Test,
    pid_file: &str,
) -> (crate::support::Output, PathBuf, u32, u32) {
    let dir = t.dir().to_path_buf();
    std::fs::write(dir.join("second"), "").unwrap();
    let setup = t.run();
    setup.ok();
    std::fs::remove_file(dir.join("second")).unwrap();
    let mut first = wrapped_prun(wrap, &dir, &["main.rhai"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("run prun");
    wait_until("the job to start", || dir.join(pid_file).exists());
    let pid = pid_at(&dir.join(pid_file));
    crate::support::wait_recorded(&dir.join("state"), first.id(), pid);
    first.kill().unwrap();
    first.wait().unwrap();
    std::fs::write(dir.join("second"), "").unwrap();
    (setup, dir, pid, first.id())
}

/// A prun in a time namespace whose boot-time clock is ahead (`unshare --time
/// --boottime`) sees every start time in `/proc` shifted: the crash journal records them
/// as the initial time namespace sees them, so that a run crashed inside one has its job
/// ended by the next run outside it, and the other way round.
#[test]
fn a_crashed_runs_job_is_ended_by_the_next_run_in_another_time_namespace() {
    const AHEAD: &[&str] = &["unshare", "--time", "--boottime", "100000"];
    let made = Command::new(AHEAD[0])
        .args(&AHEAD[1..])
        .arg("true")
        .status();
    if !made.is_ok_and(|s| s.success()) {
        eprintln!("skipped: this user cannot make a time namespace");
        return;
    }
    let script = r#"proc("job", #{ shell: "if [ -e second ]; then echo second-run; else echo $$ > job.tmp; mv job.tmp job.pid; exec sleep 1000; fi" });
run("job");
"#;
    for (crashed_in, next_in) in [(AHEAD, &[][..]), (&[][..], AHEAD)] {
        let (_setup, dir, pid, crashed) =
            crashed_run_in(crashed_in, Test::new().script(script), "job.pid");
        assert!(alive(pid), "the job did not outlive the killed prun");
        let next = wrapped_prun(next_in, &dir, &["main.rhai"])
            .output()
            .expect("run prun");
        let stderr = String::from_utf8_lossy(&next.stderr).into_owned();
        let context = format!("crashed in {crashed_in:?}, next run in {next_in:?}\n{stderr}");
        assert_gone(pid, "the crashed run's job", &context);
        assert!(next.status.success(), "{context}");
        assert!(
            stderr.contains(&format!("crashed run (prun pid {crashed})"))
                && stderr.contains(&format!("process group {pid}")),
            "no warning naming the orphan\n{context}"
        );
    }
}

/// A crashed run's journal whose last line was cut inside a character (a write a full
/// disk cut short) still names its groups: the next run ends them. The journal was read
/// as text or not at all, and a byte that is not UTF-8 made it empty: the orphan ran on
/// and the journal was removed.
#[test]
fn a_crash_journal_cut_inside_a_character_still_ends_the_crashed_runs_jobs() {
    let (_setup, dir, pid, crashed) = crashed_run(
        r#"proc("job", #{ shell: "if [ -e second ]; then echo second-run; else echo $$ > job.tmp; mv job.tmp job.pid; exec sleep 1000; fi" });
run("job");
"#,
        "job.pid",
    );
    let journal = find_files(&dir.join("state"), &crashed.to_string())
        .into_iter()
        .find(|p| p.parent().is_some_and(|d| d.ends_with("groups")))
        .expect("the crashed run's journal");
    let mut text = std::fs::read(&journal).expect("read the journal");
    text.extend_from_slice(b"P 1 0 caf\xc3");
    std::fs::write(&journal, text).expect("cut the journal's last line");
    let (stderr, context) = next_run_ends(&dir, &["main.rhai"], pid, "the crashed run's job");
    assert!(
        stderr.contains(&format!("crashed run (prun pid {crashed})"))
            && stderr.contains(&format!("process group {pid}")),
        "no warning naming the orphan\n{context}"
    );
}

/// The run that ends a crashed run's orphans is itself killed while it waits for them to
/// go (a cron job's `timeout`, systemd's stop): the crashed run's journal is still there,
/// and the next run ends them.
#[test]
fn a_run_killed_while_it_ends_a_crashed_runs_jobs_leaves_them_to_the_next() {
    let (_setup, dir, pid, crashed) = crashed_run(
        r#"
proc("stubborn", #{ shell: "if [ -e second ]; then echo second-run; else trap 'echo > termed' TERM; echo $$ > job.tmp; mv job.tmp job.pid; while :; do sleep 1; done; fi" });
run("stubborn");
"#,
        "job.pid",
    );
    // The job shrugs off SIGTERM: the next run waits the kill grace before SIGKILL.
    let mut recovering = spawn_prun_in(&dir, &["main.rhai"]);
    wait_until("the orphan to get SIGTERM", || dir.join("termed").exists());
    recovering.kill().unwrap();
    recovering.wait().unwrap();
    assert!(
        alive(pid),
        "the orphan was gone before the recovering run was killed: the test proves nothing"
    );
    let (stderr, context) = next_run_ends(&dir, &["main.rhai"], pid, "the crashed run's job");
    assert!(
        stderr.contains(&format!("crashed run (prun pid {crashed})"))
            && stderr.contains(&format!("process group {pid}")),
        "no warning naming the orphan\n{context}"
    );
}

/// A process that left its command's group (`setsid`, as the server `pg_ctl` starts
/// does) and outlived its command is adopted by prun and recorded in the crash journal:
/// after a `kill -9` of prun, the next run ends it too.
#[test]
fn after_a_kill_9_the_next_run_ends_a_daemon_that_left_its_group() {
    let (_setup, dir, pid, _) = crashed_run(
        r#"
proc("daemon", #{ shell: "[ -e second ] || { setsid sh -c 'echo $$ > d.tmp; mv d.tmp d.pid; exec sleep 1000' & while [ ! -e d.pid ]; do sleep 0.01; done; }" });
proc("long", #{ deps: ["daemon"], shell: "[ -e second ] || exec sleep 1000" });
run("long");
"#,
        "d.pid",
    );
    assert!(
        alive(pid),
        "the daemon did not outlive the killed prun: the test proves nothing"
    );
    let (stderr, context) = next_run_ends(&dir, &["main.rhai"], pid, "the crashed run's daemon");
    assert!(
        stderr.contains(&format!("process group {pid} (`sleep 1000`)")),
        "no warning naming the daemon\n{context}"
    );
}

/// A process that left its command's group (`setsid`) while its parent, the command,
/// still runs is no child of prun's, so it is in no group the crash journal records; when
/// the next run ends the crashed run's groups, its parent dies and it goes to init, out of
/// reach. So the next run first looks among the descendants of the recorded groups'
/// processes for those that lead a group of their own, and ends them too.
#[test]
fn after_a_kill_9_the_next_run_ends_a_daemon_whose_parent_still_ran() {
    let (_setup, dir, pid, _) = crashed_run(
        r#"
proc("job", #{ shell: "[ -e second ] || { setsid sh -c 'echo $$ > d.tmp; mv d.tmp d.pid; exec sleep 1000' & while [ ! -e d.pid ]; do sleep 0.01; done; echo $$ > j.tmp; mv j.tmp j.pid; exec sleep 1000; }" });
run("job");
"#,
        "j.pid",
    );
    let daemon = pid_at(&dir.join("d.pid"));
    assert!(
        alive(pid) && alive(daemon),
        "the job and its daemon did not outlive the killed prun: the test proves nothing"
    );
    let (stderr, context) = next_run_ends(&dir, &["main.rhai"], pid, "the crashed run's job");
    assert_gone(daemon, "the daemon the crashed run's job started", &context);
    assert!(
        stderr.contains(&format!("process group {daemon} (`sleep 1000`)")),
        "no warning naming the daemon\n{context}"
    );
}

/// A process that joined prun's own process group (`setpgid`) and outlived its command is
/// adopted, but its group, prun's, is not recorded in the crash journal: after a crash,
/// the next run, started from the same shell script (in the same group), would send
/// SIGTERM to its own group, ending itself and the script. `check` reads the journal once
/// it records a daemon adopted together with the joiner.
#[test]
fn a_process_that_joined_pruns_group_does_not_put_that_group_in_the_crash_journal() {
    let out = Test::new()
        .timeout(Duration::from_secs(60))
        .script(
            r#"
proc("join", #{ now: true, shell: "g=$(ps -o pgid= -p $PPID | tr -d ' '); perl -MPOSIX -e 'POSIX::setpgid(0, $ARGV[0]) or die qq(setpgid: $!); open(my $f, q(>), q(j.tmp)) or die; print $f getpgrp(), qq(\\n); close $f; rename(q(j.tmp), q(j.pgid)); open($f, q(>), q(j.pid)) or die; print $f qq($$\\n); close $f; sleep 100' $g & setsid sh -c 'echo $$ > d.tmp; mv d.tmp d.pid; exec sleep 100' & while [ ! -s j.pid ] || [ ! -e d.pid ]; do sleep 0.01; done" });
proc("check", #{ now: true, deps: ["join"], shell: "until grep -qs \"^+ $(cat d.pid) \" state/prun/*/groups/*; do sleep 0.01; done; cat state/prun/*/groups/* > journal.txt" });
"#,
        )
        .run();
    out.ok();
    let group = out.read("j.pgid").trim().to_string();
    let journal = out.read("journal.txt");
    assert!(
        !journal.contains(&format!("+ {group} ")),
        "prun's own group {group} recorded:\n{journal}\n{}",
        out.describe()
    );
    assert_gone(pid_in(&out, "d.pid"), "the daemon", &out.describe());
    assert_gone(pid_in(&out, "j.pid"), "the joiner", &out.describe());
}

/// A crashed run's command whose leader left its own group (`setpgid` into prun's) is
/// still ended by the next run: its group is empty, but the leader recorded with it, with
/// its start time, runs on. Before, the next run took the group for gone.
#[test]
fn after_a_kill_9_the_next_run_ends_a_leader_that_left_its_group() {
    let (_setup, dir, pid, _) = crashed_run(
        r#"
proc("leaves", #{ shell: "if [ -e second ]; then echo second-run; else exec perl -MPOSIX -e 'POSIX::setpgid(0, getpgrp(getppid())) or die qq(setpgid: $!); open(my $f, q(>), q(l.tmp)) or die; print $f qq($$\\n); close $f; rename(q(l.tmp), q(l.pid)); sleep 1000'; fi" });
run("leaves");
"#,
        "l.pid",
    );
    assert!(
        alive(pid),
        "the leader did not outlive the killed prun: the test proves nothing"
    );
    let (stderr, context) = next_run_ends(&dir, &["main.rhai"], pid, "the crashed run's leader");
    assert!(
        stderr.contains(&format!("process group {pid} ")),
        "no warning naming the leader's group\n{context}"
    );
}

/// The next run warns of a crashed run's job before it ends it (which can take the kill
/// grace), even with `-q`: the job, sent SIGTERM, finds the warning already on the run's
/// stderr. It shrugs SIGTERM off, and the run then says it had to kill it.
#[test]
fn the_crash_warning_is_printed_before_the_orphans_are_ended() {
    let (_setup, dir, pid, crashed) = crashed_run(
        r#"
proc("stubborn", #{ shell: "if [ -e second ]; then echo second-run; else trap 'cp stderr.txt seen.txt' TERM; echo $$ > job.tmp; mv job.tmp job.pid; while :; do sleep 1; done; fi" });
run("stubborn");
"#,
        "job.pid",
    );
    let stderr_file = std::fs::File::create(dir.join("stderr.txt")).unwrap();
    let status = prun_command(&dir, &["-q", "main.rhai"])
        .stdout(Stdio::null())
        .stderr(stderr_file)
        .status()
        .expect("run prun");
    let stderr = std::fs::read_to_string(dir.join("stderr.txt")).unwrap();
    assert_gone(pid, "the crashed run's job", &stderr);
    assert!(status.success(), "{stderr}");
    let seen = std::fs::read_to_string(dir.join("seen.txt")).unwrap_or_default();
    let found = format!(
        "prun: warning: a crashed run (prun pid {crashed}) left a job running; ending it: process group {pid} (`"
    );
    assert!(
        seen.contains(&found),
        "the job got SIGTERM before the warning {found:?} was printed; it saw:\n{seen}\nthe run printed:\n{stderr}"
    );
    assert!(
        stderr.contains(&format!(
            "prun: warning: of the crashed run's jobs, process group {pid} ("
        )) && stderr.contains("outlived SIGTERM by 5s and was killed (SIGKILL)"),
        "no warning that the job had to be killed\n{stderr}"
    );
}

/// A crashed run's job gets the kill grace its run gave it (here 60 s), not a fixed 5 s: a
/// job that takes 7 s to shut down cleanly after SIGTERM (a database server) was killed
/// half-way. Its `TERM` trap writes `cleaned` once done.
#[test]
fn after_a_kill_9_the_next_run_gives_a_job_the_kill_grace_its_run_gave_it() {
    let (_setup, dir, pid, _) = crashed_run(
        r#"
set_options(#{ kill_grace: "60s" });
proc("slow", #{ shell: "if [ -e second ]; then echo second-run; else trap 'sleep 7; echo done > cleaned; exit 0' TERM; echo $$ > job.tmp; mv job.tmp job.pid; while :; do sleep 1; done; fi" });
run("slow");
"#,
        "job.pid",
    );
    let (stderr, context) = next_run_ends(&dir, &["main.rhai"], pid, "the crashed run's job");
    assert!(
        dir.join("cleaned").exists(),
        "the job was killed before its grace ended\n{context}"
    );
    assert!(!stderr.contains("SIGKILL"), "{context}");
}

/// A script that makes a `tempdir()` with a file in it, writes its path to `dir.txt` (on
/// the first run), then runs a job until prun is killed (the next runs, with `second`,
/// end at once).
const TEMPDIR_SCRIPT: &str = r#"
let d = tempdir();
write_file(`${d}/data`, "kept until the cleanup");
if file_info("second") == () { write_file("dir.txt", d); }
proc("long", #{ shell: "[ -e second ] || { echo $$ > job.tmp; mv job.tmp job.pid; exec sleep 1000; }" });
run("long");
"#;

/// A run of [`TEMPDIR_SCRIPT`] killed by SIGKILL once its job runs and is recorded: the
/// test (its directory kept), the crashed run's temporary directory (still there) and pid.
fn crash_with_a_tempdir() -> (crate::support::Output, std::path::PathBuf, u32) {
    let (setup, dir, _, crashed) = crashed_run(TEMPDIR_SCRIPT, "job.pid");
    let temp = std::path::PathBuf::from(std::fs::read_to_string(dir.join("dir.txt")).unwrap());
    assert!(
        temp.join("data").exists(),
        "the crashed run's temporary directory {} is gone: the test proves nothing",
        temp.display()
    );
    (setup, temp, crashed)
}

/// The next run of [`crash_with_a_tempdir`]'s script: its stderr, and its stdout too.
fn next_run(out: &crate::support::Output) -> (String, String) {
    let next = prun_in(out.dir.path(), &["main.rhai"]);
    let stderr = String::from_utf8_lossy(&next.stderr).into_owned();
    let context = format!("{stderr}{}", String::from_utf8_lossy(&next.stdout));
    assert!(next.status.success(), "{context}");
    (stderr, context)
}

/// A `tempdir()` of a run killed by SIGKILL is removed by the next run, which says so.
#[test]
fn after_a_kill_9_the_next_run_removes_the_crashed_runs_temporary_directory() {
    let (out, temp, prun) = crash_with_a_tempdir();
    let (stderr, context) = next_run(&out);
    assert!(
        !temp.exists(),
        "the crashed run's {} is still there\n{context}",
        temp.display()
    );
    let said = format!(
        "prun: warning: removed the temporary directory {} that a crashed run (prun pid {prun}) left",
        temp.display()
    );
    assert!(stderr.contains(&said), "no warning {said:?}\n{context}");
    assert!(
        journals_left(&out.path("state")).is_empty(),
        "a journal is left"
    );
}

/// The next run names a crashed run's temporary directory with its control characters
/// written out: its parent may be a directory another user named.
#[test]
fn a_crashed_runs_temporary_directory_is_named_without_escape_sequences() {
    let script = TEMPDIR_SCRIPT.replace(
        "let d = tempdir();",
        "let d = tempdir(\"t\\x1b]0;owned\\x07\");",
    );
    let t = Test::new().script(&script);
    std::fs::create_dir(t.dir().join("t\u{1b}]0;owned\u{7}")).unwrap();
    let (setup, ..) = crashed_run_of(t, "job.pid");
    let (stderr, context) = next_run(&setup);
    assert!(
        stderr.contains("removed the temporary directory ")
            && stderr.contains("t\\e]0;owned\\x07/"),
        "{context:?}"
    );
    assert!(
        !context.contains('\u{1b}') && !context.contains('\u{7}'),
        "{context:?}"
    );
}

/// After the crash, something else is put at the temporary directory's path (it was
/// removed meanwhile, as a reboot or `systemd-tmpfiles` would, or changed hands): the next
/// run removes nothing there and says why. `plant` returns what must survive.
fn refused(plant: impl FnOnce(&Path, &Path) -> std::path::PathBuf, why: &str) {
    let (out, temp, prun) = crash_with_a_tempdir();
    let moved = temp.with_extension("moved");
    let survivor = plant(&temp, &moved);
    let (stderr, context) = next_run(&out);
    let kept = survivor.exists();
    let said = format!(
        "prun: warning: a crashed run (prun pid {prun}) left the temporary directory {}; not removing it: {why}",
        temp.display()
    );
    let _ = std::fs::remove_file(&temp);
    for d in [&temp, &moved] {
        let _ = std::fs::remove_dir_all(d);
    }
    assert!(kept, "{} was removed\n{context}", survivor.display());
    assert!(stderr.contains(&said), "no warning {said:?}\n{context}");
}

#[test]
fn a_symlink_put_at_a_crashed_runs_temporary_directory_is_not_followed() {
    refused(
        |temp, moved| {
            std::fs::rename(temp, moved).unwrap();
            std::os::unix::fs::symlink(moved, temp).unwrap();
            moved.join("data")
        },
        "it is now a symbolic link",
    );
}

#[test]
fn another_directory_at_a_crashed_runs_temporary_path_is_not_removed() {
    refused(
        |temp, moved| {
            // The old one stays (elsewhere) until the new one exists: its inode is not reused.
            std::fs::rename(temp, moved).unwrap();
            std::fs::create_dir(temp).unwrap();
            std::fs::write(temp.join("theirs"), "").unwrap();
            temp.join("theirs")
        },
        "it is not the directory the crashed run made (another one is there)",
    );
}

#[test]
#[cfg_attr(
    prun_no_root,
    ignore = "needs root (to give a directory to another user)"
)]
fn a_crashed_runs_temporary_directory_given_to_another_user_is_not_removed() {
    refused(
        |temp, _| {
            std::os::unix::fs::chown(temp, Some(65534), None).unwrap();
            temp.join("data")
        },
        "it is owned by uid 65534, not this user (uid 0)",
    );
}

/// The crash journals (`groups/`) under a state directory that hold a file.
fn journals_left(state: &Path) -> Vec<std::path::PathBuf> {
    let mut left = paths_under(state);
    left.retain(|p| !p.is_dir() && p.parent().is_some_and(|d| d.ends_with("groups")));
    left
}

/// A run that ends, whether its procs succeed or fail, removes its crash journal: the
/// next run finds no groups to end (the end of a run removes it while the task DB is
/// still being written, and no longer after).
#[test]
fn a_finished_run_leaves_no_crash_journal() {
    let t = Test::new().script(
        r#"
proc("ok", #{ cmd: ["true"] });
proc("bad", #{ shell: "exit 3" });
run(if args().is_empty() { "ok" } else { "bad" });
"#,
    );
    let dir = t.dir().to_path_buf();
    // The output keeps the test's directory.
    let first = t.run();
    first.ok();
    let state = dir.join("state");
    let groups: Vec<_> = find_dirs(&state, "groups");
    assert!(
        !groups.is_empty(),
        "the run made no journal directory under {}",
        state.display()
    );
    assert_eq!(
        journals_left(&state),
        Vec::<std::path::PathBuf>::new(),
        "after a run that succeeded"
    );
    let failed = prun_in(&dir, &["main.rhai", "--", "fail"]);
    assert_eq!(
        failed.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&failed.stderr)
    );
    assert_eq!(
        journals_left(&state),
        Vec::<std::path::PathBuf>::new(),
        "after a run that failed"
    );
}

/// A journal left under its hidden name (`.PID.new`) by a prun killed before it named
/// it (`kill -9`, or a signal before prun handled signals) is removed by the next run:
/// no other run ever would, and each such death added one to the state directory.
/// A hidden journal whose prun still runs is left alone.
#[test]
fn the_next_run_removes_a_journal_its_prun_died_before_naming() {
    let t = Test::new().script(r#"proc("ok", #{ cmd: ["true"] }); run("ok");"#);
    let dir = t.dir().to_path_buf();
    let first = t.run();
    first.ok();
    let groups = find_dirs(&dir.join("state"), "groups");
    let groups = groups.first().expect("the run made a journal directory");
    // Above the largest pid Linux gives (2^22): never a live process.
    let dead = [groups.join(".4999999.new"), groups.join(".4999998.1.new")];
    let live = groups.join(format!(".{}.new", std::process::id()));
    for f in dead.iter().chain([&live]) {
        std::fs::write(f, "O 1\n").unwrap();
    }
    let next = prun_in(&dir, &["main.rhai"]);
    assert!(
        next.status.success(),
        "{}",
        String::from_utf8_lossy(&next.stderr)
    );
    for f in &dead {
        assert!(!f.exists(), "{} is still there", f.display());
    }
    assert!(
        live.exists(),
        "the hidden journal of a live process was removed"
    );
}

/// Whether a thread of process `pid` waits in `open` for the other end of a FIFO.
fn opening_a_fifo(pid: u32) -> bool {
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task"))
        .into_iter()
        .flatten();
    tasks.flatten().any(|t| {
        std::fs::read_to_string(t.path().join("wchan")).is_ok_and(|w| w == "wait_for_partner")
    })
}

/// SIGTERM while prun makes its crash journal (held there: a FIFO at the journal's hidden
/// name, which prun's `open` waits on) interrupts the run once it can act on it: exit
/// 130, no command started, the cleanup run. Before, the signal's default action killed
/// prun there and left the journal behind.
#[test]
fn sigterm_while_the_crash_journal_is_made_interrupts_the_run() {
    let t = Test::new().script(
        r#"
defer(|| shell("echo cleaned > cleanup.done"));
proc("long", #{ shell: "echo started > job.started; exec sleep 1000" });
if args().is_empty() { run("long"); }
"#,
    );
    let dir = t.dir().to_path_buf();
    // The output keeps the test's directory.
    let setup = t.args(&["--", "setup"]).run();
    setup.ok();
    std::fs::remove_file(dir.join("cleanup.done")).unwrap();
    let groups = find_dirs(&dir.join("state"), "groups");
    let groups = groups.first().expect("the run made a journal directory");
    // `sh` execs prun, which keeps its pid: the FIFO is at prun's hidden journal name.
    let mut prun = Command::new("sh");
    prun.args(["-c", r#"mkfifo "$0/.$$.new" && exec "$1" main.rhai"#])
        .arg(groups)
        .arg(env!("CARGO_BIN_EXE_prun"))
        .current_dir(&dir)
        .env("XDG_STATE_HOME", dir.join("state"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let child = prun.spawn().expect("run prun");
    let pid = child.id();
    let fifo = groups.join(format!(".{pid}.new"));
    wait_until("prun to open its journal", || opening_a_fifo(pid));
    let _ = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status();
    // Opening the FIFO lets prun's `open` return; the FIFO is no journal prun can use.
    // (Without waiting for a writer: a prun the signal killed is none.)
    let reader = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(nix::libc::O_NONBLOCK)
        .open(&fifo)
        .expect("open the FIFO");
    let out = child.wait_with_output().expect("wait for prun");
    drop(reader);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{:?}: {stderr}", out.status);
    assert!(
        !dir.join("job.started").exists(),
        "the job started: {stderr}"
    );
    assert!(dir.join("cleanup.done").exists(), "no cleanup: {stderr}");
}

/// The directories named `name` under `root`.
fn find_dirs(root: &Path, name: &str) -> Vec<std::path::PathBuf> {
    let mut found = paths_under(root);
    found.retain(|p| p.is_dir() && p.file_name().is_some_and(|n| n == name));
    found
}

/// Runs prun in `dir` under `sh -c` with `limits` (ulimit commands) set first.
fn prun_limited(dir: &Path, limits: &str, args: &[&str]) -> std::process::Output {
    let mut words = vec![
        "-c".to_string(),
        format!("{limits} && exec \"$0\" \"$@\""),
        env!("CARGO_BIN_EXE_prun").to_string(),
    ];
    words.extend(args.iter().map(|a| a.to_string()));
    Command::new("sh")
        .args(&words)
        .current_dir(dir)
        .env("XDG_STATE_HOME", dir.join("state"))
        .stdin(Stdio::null())
        .output()
        .expect("run prun")
}

/// 300 command bodies, every second one printing (so that it keeps a log).
const MANY: &str = r#"
for i in 0..300 {
    let body = if i % 2 == 0 { `echo line-${i}; : > done.${i}` } else { `: > done.${i}` };
    proc(`p::${i}`, #{ shell: body });
}
run("p::*");
"#;

fn assert_all_ran(dir: &Path, out: &std::process::Output) {
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{text}");
    assert!(text.contains("300 succeeded"), "{text}");
    for i in 0..300 {
        assert!(
            dir.join(format!("done.{i}")).exists(),
            "p::{i} did not run\n{text}"
        );
    }
}

#[test]
fn jobs_wait_for_file_descriptors_instead_of_failing() {
    let t = Test::new().script("");
    let dir = t.dir().to_path_buf();
    std::fs::write(dir.join("main.rhai"), MANY).unwrap();
    let out = prun_limited(
        &dir,
        "ulimit -n 64",
        &["main.rhai", "-j", "100", "--no-live"],
    );
    assert_all_ran(&dir, &out);
}

#[test]
fn the_soft_limit_of_open_files_is_raised_to_the_hard_limit() {
    let t = Test::new().script("");
    let dir = t.dir().to_path_buf();
    std::fs::write(
        dir.join("main.rhai"),
        r#"proc("limit", #{ shell: "ulimit -Sn > soft; ulimit -Hn > hard" }); run("limit");"#,
    )
    .unwrap();
    let out = prun_limited(&dir, "ulimit -Sn 64 && ulimit -Hn 4096", &["main.rhai"]);
    assert!(out.status.success(), "{out:?}");
    let read = |f: &str| std::fs::read_to_string(dir.join(f)).unwrap();
    assert_eq!(read("soft"), "4096\n");
    assert_eq!(read("hard"), "4096\n");
}

/// A chain of `n` procs, each waiting for the next from inside its closure: each blocked
/// closure keeps a thread.
fn chain(n: usize) -> String {
    format!(
        r#"
proto("c::[n]", |ctx| {{
    let n = parse_int(ctx.args.n);
    if n < {n} {{
        ctx.run(`c::${{n + 1}}`);
        ctx.wait(`c::${{n + 1}}`) + 1
    }} else {{
        0
    }}
}});
run("c::0");
print("top=" + wait("c::0"));
"#
    )
}

/// Waits for a child for at most 60 s (killing its process group then, and failing).
fn output_within(mut cmd: Command) -> std::process::Output {
    use std::os::unix::process::CommandExt;
    let child = cmd
        .process_group(0)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(Duration::from_secs(60)) {
        Ok(out) => out.expect("wait"),
        Err(_) => {
            let _ = Command::new("kill")
                .args(["-KILL", "--", &format!("-{pid}")])
                .status();
            panic!("prun did not finish within 60 s (a hang)");
        }
    }
}

#[test]
fn a_chain_of_4000_nested_waits_completes() {
    let out = Test::new().args(&["--no-db"]).script(&chain(4000)).run();
    out.ok().line("top=4000");
}

/// Runs `script` with prun as a user of its own (test `n` of this test process: no other
/// process of that user, from another test or another test process running at the same
/// time, eats into the limit) limited to 300 processes and threads, after a plain run as
/// the current user, which must succeed (as root, with util-linux's `setpriv` and
/// `prlimit`). Returns its exit status and output.
fn run_with_few_threads(n: u32, script: &str, args: &[&str]) -> (Option<i32>, String) {
    // Far above the uids of real users and of `nobody`.
    let uid = 3_000_000 + (std::process::id() % 100_000) * 10 + n;
    let t = Test::new().args(args).script(script);
    let dir = t.dir().to_path_buf();
    // Its output owns the directory. The other user may write there, as in /tmp: sticky,
    // so that prun keeps its state below it.
    let first = t.run();
    first.ok();
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o1777)).unwrap();
    }
    let id = uid.to_string();
    let mut cmd = Command::new("setpriv");
    cmd.args(["--reuid", &id, "--regid", &id, "--clear-groups"])
        .args(["prlimit", "--nproc=300:300"])
        .arg(env!("CARGO_BIN_EXE_prun"))
        .args(["main.rhai", "--no-db", "--no-live"])
        .args(args)
        .current_dir(&dir)
        .env("XDG_STATE_HOME", dir.join("limited-state"));
    let out = output_within(cmd);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code(), text)
}

/// The last characters of a long output, for failure messages.
fn last_chars(text: &str) -> String {
    let start = text.len().saturating_sub(3000);
    let start = (start..text.len())
        .find(|&i| text.is_char_boundary(i))
        .unwrap_or(0);
    text[start..].to_string()
}

#[test]
#[cfg_attr(prun_no_root, ignore = "needs root (to run prun as another user)")]
fn short_of_threads_closures_wait_for_a_worker_instead_of_failing() {
    let script = r#"
for i in 0..600 {
    proc(`busy::${i}`, |ctx| { let x = 0; for k in 0..5000 { x += k; } x });
}
run("busy::*");
"#;
    let (code, text) = run_with_few_threads(1, script, &["-j", "600"]);
    assert_eq!(code, Some(0), "{}", last_chars(&text));
    assert!(text.contains("600 succeeded"), "{}", last_chars(&text));
}

#[test]
#[cfg_attr(prun_no_root, ignore = "needs root (to run prun as another user)")]
fn out_of_threads_a_proc_fails_with_a_clear_error_not_a_panic() {
    // Far more threads than the limit of 300, and a first run quick enough on a busy machine.
    let (code, text) = run_with_few_threads(2, &chain(1000), &[]);
    let short = last_chars(&text);
    assert_eq!(code, Some(1), "{short}");
    assert!(
        text.contains("failed to start a thread to run the closure"),
        "{short}"
    );
    assert!(!text.contains("panicked"), "{short}");
}

#[test]
fn a_closure_nesting_too_deep_fails_cleanly_instead_of_overflowing() {
    let nested = format!("{}f(n - 1){}", "1 + (".repeat(120), ")".repeat(120));
    let out = Test::new()
        .args(&["--no-db"])
        .script(&format!(
            "fn f(n) {{ if n == 0 {{ 0 }} else {{ {nested} }} }}\n\
             proc(\"deep\", |ctx| f(100000));\nrun(\"deep\");\n"
        ))
        .run();
    out.code(1);
    let line = out.proc_line("FAILED", "deep");
    assert!(
        line.contains("nests too deep") || line.contains("Stack overflow"),
        "{line}"
    );
}

/// The crash journal's record that a job's group is gone waits for the next job's start
/// (one write for both), never past the end of the job's own step: while another job runs
/// on and nothing new starts, the journal already says that the ended job's group is gone.
#[test]
fn an_ended_jobs_group_is_recorded_gone_while_nothing_else_starts() {
    let wait = |file: &str| {
        format!("i=0; while [ ! -e {file} ] && [ $i -lt 600 ]; do sleep 0.05; i=$((i+1)); done")
    };
    let t = Test::new().script(&format!(
        r#"
proc("job_long", #{{ shell: "echo $$ > long.tmp; mv long.tmp long.pid; {}" }});
proc("job_short", #{{ shell: "{}; echo $$ > short.tmp; mv short.tmp short.pid" }});
run("job_*");
"#,
        wait("go"),
        wait("long.pid")
    ));
    let dir = t.dir().to_path_buf();
    std::fs::write(dir.join("go"), "").unwrap();
    // The setup run writes main.rhai; its output owns the directory.
    let setup = t.run();
    setup.ok();
    for f in ["go", "long.pid", "short.pid"] {
        std::fs::remove_file(dir.join(f)).unwrap();
    }
    let mut run = spawn_prun_in(&dir, &["main.rhai", "-j", "2"]);
    wait_until("the short job to end", || dir.join("short.pid").exists());
    let short = pid_at(&dir.join("short.pid"));
    let journal = find_files(&dir.join("state"), &run.id().to_string())
        .into_iter()
        .find(|p| p.parent().is_some_and(|d| d.ends_with("groups")))
        .expect("the run's journal");
    let gone = format!("- {short}\n");
    let recorded = || std::fs::read_to_string(&journal).is_ok_and(|t| t.contains(&gone));
    let until = Instant::now() + Duration::from_secs(20);
    while !recorded() && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(10));
    }
    let recorded = recorded();
    std::fs::write(dir.join("go"), "").unwrap();
    assert!(run.wait().expect("prun ends").success());
    assert!(recorded, "the short job's group was never recorded as gone");
}

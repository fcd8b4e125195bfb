//! Ending commands: timeouts and `kill_grace`, Ctrl-C and SIGTERM, `--fail-fast`, processes
//! a command leaves behind, and the `defer` cleanups and `tempdir`s that run at the end.
//!
//! "Nothing is left" is checked by scanning `/proc` for any live process of the command's
//! process group (its leader wrote its pid, which is the group id), so grandchildren that
//! never told anyone their pid are covered too.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::commands_io::read_log;
use crate::support::{Output, Test, assert_gone, pid_in};

/// The live (non-zombie) processes whose process group is `pgid`.
pub(crate) fn group_members(pgid: u32) -> Vec<u32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.flatten()
        .filter_map(|e| {
            let pid: u32 = e.file_name().to_str()?.parse().ok()?;
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
            // After the parenthesised command name: state (field 3), ppid, pgrp (field 5).
            let (_, rest) = stat.rsplit_once(')')?;
            let fields: Vec<&str> = rest.split_whitespace().collect();
            let (state, pgrp) = (*fields.first()?, fields.get(2)?.parse::<u32>().ok()?);
            (pgrp == pgid && state != "Z" && state != "X").then_some(pid)
        })
        .collect()
}

/// Asserts no process of group `pgid` is alive, waiting for a signal already sent to be
/// delivered (the bound is a hang guard, generous for a loaded machine). Leftovers are
/// killed so they do not outlive the test.
pub(crate) fn assert_group_gone(pgid: u32, what: &str, context: &str) {
    let t = Instant::now();
    loop {
        let left = group_members(pgid);
        if left.is_empty() {
            return;
        }
        if t.elapsed() > Duration::from_secs(30) {
            let _ = Command::new("kill")
                .args(["-KILL", "--", &format!("-{pgid}")])
                .status();
            panic!(
                "{what}: processes {left:?} of process group {pgid} are still running after prun exited\n{context}"
            );
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// The group whose leader wrote its pid (`echo $$ > file`) is gone.
fn group_in_gone(out: &Output, file: &str) {
    assert_group_gone(pid_in(out, file), file, &out.describe());
}

#[test]
fn group_scan_sees_a_live_group() {
    use std::os::unix::process::CommandExt;
    let mut child = Command::new("sh")
        .args(["-c", "sleep 30 & exec sleep 30"])
        .process_group(0)
        .stdout(Stdio::null())
        .spawn()
        .expect("spawn");
    let pgid = child.id();
    let t = Instant::now();
    while group_members(pgid).len() < 2 && t.elapsed() < Duration::from_secs(30) {
        std::thread::sleep(Duration::from_millis(5));
    }
    let members = group_members(pgid);
    let _ = Command::new("kill")
        .args(["-KILL", "--", &format!("-{pgid}")])
        .status();
    let _ = child.wait();
    assert!(members.len() == 2 && members.contains(&pgid), "{members:?}");
    assert_group_gone(pgid, "the test's own group", "");
}

/// `pid pgid` lines, as printed by [`IDS`].
fn ids(text: &str) -> Vec<(u32, u32)> {
    text.lines()
        .filter_map(|l| {
            let (a, b) = l.split_once(' ')?;
            Some((a.trim().parse().ok()?, b.trim().parse().ok()?))
        })
        .collect()
}

/// A shell snippet printing its own pid and process group.
const IDS: &str = r#"echo $$ $(cut -d' ' -f5 /proc/$$/stat)"#;

#[test]
fn every_command_and_every_stage_leads_its_own_process_group() {
    let script = r#"
write_file("exec.ids", exec(["sh", "-c", "IDS"]).stdout);
write_file("shell.ids", shell("IDS").stdout);
let r = pipe([["sh", "-c", "IDS >&2; cat"], ["sh", "-c", "cat; IDS"]], #{ stdin: "" });
write_file("pipe.ids", r.stderr + r.stdout);
proc("body", #{ shell: "IDS > body.ids" });
proc("clos", |ctx| { write_file("clos.ids", shell("IDS").stdout); });
run(["body", "clos"]);
"#
    .replace("IDS", &IDS.replace('"', "\\\""));
    let out = Test::new().script(&script).run();
    out.ok();
    let own = std::fs::read_to_string("/proc/self/stat").unwrap();
    let own_pgrp: u32 = own
        .rsplit_once(')')
        .unwrap()
        .1
        .split_whitespace()
        .nth(2)
        .unwrap()
        .parse()
        .unwrap();
    let mut groups = Vec::new();
    for (f, n) in [
        ("exec.ids", 1),
        ("shell.ids", 1),
        ("pipe.ids", 2),
        ("body.ids", 1),
        ("clos.ids", 1),
    ] {
        let got = ids(&out.read(f));
        assert_eq!(got.len(), n, "{f}: {got:?}\n{}", out.describe());
        for (pid, pgid) in got {
            assert_eq!(
                pid,
                pgid,
                "{f}: pid {pid} is in group {pgid}, not its own\n{}",
                out.describe()
            );
            assert_ne!(pgid, own_pgrp, "{f}: in prun's group");
            groups.push(pgid);
        }
    }
    groups.sort_unstable();
    groups.dedup();
    assert_eq!(groups.len(), 6, "groups shared: {groups:?}");
}

#[test]
fn timeout_terminates_the_whole_group() {
    let out = Test::new()
        .script(
            r#"
try {
    shell("echo $$ > top.pgid; sleep 300 & sleep 300", #{ timeout: "500ms" });
    print("no throw");
} catch (e) { print("caught: " + e); }
let r = shell("echo $$ > unchecked.pgid; sleep 300 & sleep 300", #{ timeout: "500ms", check: false });
print("check false: ok=" + r.ok + " code=" + r.code + " signal=" + r.signal);
proc("p", |ctx| {
    pipe([["sh", "-c", "echo $$ > s1.pgid; sleep 300 & sleep 300"],
          ["sh", "-c", "echo $$ > s2.pgid; sleep 300 & cat"]], #{ timeout: "1s" });
});
run("p");
"#,
        )
        .run();
    out.code(1)
        .out_lacks("no throw")
        .line("caught: command `echo $$ > top.pgid; sleep 300 & sleep 300` timed out after 500ms")
        .line("check false: ok=false code= signal=15");
    let p = out.proc_line("FAILED", "p");
    assert!(p.contains("timed out after 1s"), "{p}");
    for f in ["top.pgid", "unchecked.pgid", "s1.pgid", "s2.pgid"] {
        group_in_gone(&out, f);
    }
}

#[test]
fn kill_grace_ends_a_command_that_ignores_sigterm() {
    let out = Test::new()
        .script(
            r#"
let r = shell("trap '' TERM; echo $$ > ignore.pgid; sleep 300 & sleep 300",
    #{ timeout: "1s", kill_grace: "200ms", check: false });
print("ignored: ok=" + r.ok + " signal=" + r.signal);
// The handler records the SIGTERM and carries on: only SIGKILL, after the grace, ends it.
let r = shell("trap 'echo term >> got' TERM; echo $$ > trap.pgid; while :; do sleep 0.05; done",
    #{ timeout: "1s", kill_grace: "200ms", check: false });
print("trapped: ok=" + r.ok + " signal=" + r.signal);
set_options(#{ kill_grace: "200ms" });
proc("body", #{ timeout: "1s",
    cmd: ["sh", "-c", "trap '' TERM; echo $$ > body.pgid; sleep 300 & sleep 300"] });
proc("clos", |ctx| {
    shell("trap '' TERM; echo $$ > clos.pgid; sleep 300 & sleep 300", #{ timeout: "1s" });
});
run(["body", "clos"]);
"#,
        )
        .run();
    out.code(1)
        .line("ignored: ok=false signal=9")
        .line("trapped: ok=false signal=9");
    assert!(
        out.read("got").starts_with("term\n"),
        "SIGTERM did not come first\n{}",
        out.describe()
    );
    for p in ["body", "clos"] {
        let l = out.proc_line("FAILED", p);
        assert!(l.contains("timed out"), "{l}");
    }
    for f in ["ignore.pgid", "trap.pgid", "body.pgid", "clos.pgid"] {
        group_in_gone(&out, f);
    }
}

/// Ctrl-C or SIGTERM while procs and a top-level command run: all are ended, process
/// groups and all, and named.
fn interrupt(sig: &str) {
    let out = Test::new()
        .signal_when("all.started", sig)
        .args(&["-j", "4"])
        .script(
            r#"
let t = tempdir();
write_file("tmp.path", t);
write_file(t + "/scratch", "x");
defer(|| shell("echo registered-first >> order"));
defer(|| shell("echo registered-second >> order"));
proc("body", #{ shell: "sleep 300 & echo $! > body.gc; echo $$ > body.pgid; wait" });
proc("clos", |ctx| { shell("sleep 300 & echo $! > clos.gc; echo $$ > clos.pgid; wait"); 1 });
run(["body", "clos"]);
// The top level's own command signals that everything runs, then waits for its child.
shell("sleep 300 & echo $! > top.gc; echo $$ > top.pgid; i=0; while [ ! -s body.pgid ] || [ ! -s clos.pgid ]; do i=$((i+1)); [ $i -gt 1000 ] && exit 9; sleep 0.01; done; touch all.started; wait");
print("the top level went on");
"#,
        )
        .run();
    out.code(130).out_lacks("the top level went on");
    let line = out
        .stderr
        .lines()
        .find(|l| l.starts_with("prun: interrupted; terminated: "))
        .unwrap_or_else(|| panic!("no interrupted line\n{}", out.describe()));
    // The procs, then the top-level command, named with where the script runs it.
    let (procs, top) = line
        .trim_start_matches("prun: interrupted; terminated: ")
        .split_once(", `")
        .unwrap_or_else(|| panic!("no top-level command in {line}"));
    let mut names: Vec<&str> = procs.split(", ").collect();
    names.sort();
    assert_eq!(names, ["body", "clos"], "{line}");
    assert!(
        top.starts_with("sleep 300 & echo $! > top.gc;") && top.ends_with("` (main.rhai:11:1)"),
        "{line}"
    );
    let ctx = out.describe();
    for f in ["body.pgid", "clos.pgid", "top.pgid"] {
        group_in_gone(&out, f);
    }
    for f in ["body.gc", "clos.gc", "top.gc"] {
        assert_gone(pid_in(&out, f), f, &ctx);
    }
    assert_eq!(
        std::fs::read_to_string(out.path("order")).unwrap_or_default(),
        "registered-second\nregistered-first\n",
        "the cleanups did not run newest first\n{ctx}"
    );
    let tmp = out.read("tmp.path");
    assert!(!Path::new(&tmp).exists(), "tempdir {tmp} left\n{ctx}");
}

#[test]
fn ctrl_c_terminates_everything_runs_cleanups_and_exits_130() {
    interrupt("INT");
}

#[test]
fn sigterm_to_prun_does_the_same_and_exits_130() {
    interrupt("TERM");
}

#[test]
fn cleanups_run_after_a_failing_proc_and_a_failing_cleanup_is_reported() {
    let out = Test::new()
        .script(
            r#"
let t = tempdir();
write_file("tmp.path", t);
defer(|| shell("echo cleanup-a >> order"));
defer(|| { throw "cleanup boom"; });
defer(|| shell("test -e proc.done && echo cleanup-c-saw-the-proc-finish >> order"));
proc("bad", #{ shell: "touch proc.done; exit 1" });
run("bad");
"#,
        )
        .run();
    out.code(1).proc_state("FAILED", "bad");
    assert_eq!(
        out.read("order"),
        "cleanup-c-saw-the-proc-finish\ncleanup-a\n",
        "{}",
        out.describe()
    );
    let all = format!("{}{}", out.stdout, out.stderr);
    assert!(
        all.contains("cleanup boom") && all.contains("main.rhai:5"),
        "the failing cleanup is not reported\n{}",
        out.describe()
    );
    let tmp = out.read("tmp.path");
    assert!(!Path::new(&tmp).exists(), "tempdir {tmp} left");
}

#[test]
fn cleanups_run_after_a_script_error() {
    let out = Test::new()
        .script(
            r#"
let t = tempdir();
write_file("tmp.path", t);
defer(|| shell("echo cleaned >> order"));
proc("p", |ctx| { defer(|| shell("echo from-p >> order")); 1 });
run("p");
wait("p");
throw "top-level boom";
"#,
        )
        .run();
    out.code(2).err_has("top-level boom");
    assert_eq!(out.read("order"), "from-p\ncleaned\n", "{}", out.describe());
    let tmp = out.read("tmp.path");
    assert!(!Path::new(&tmp).exists(), "tempdir {tmp} left");
}

/// `tempdir(parent)` makes the directory in `parent`; one the script removed itself is
/// no failure of its cleanup; a parent that is not there is named, as an absolute path.
#[test]
fn tempdir_in_a_parent_and_one_the_script_removed() {
    let out = Test::new()
        .script(
            r#"
let t = tempdir("made");
write_file("tmp.path", t);
exec(["rm", "-r", t]);
tempdir("missing");
"#,
        )
        .file("made/.keep", "")
        .run();
    let tmp = out.read("tmp.path");
    assert_eq!(
        Path::new(&tmp).parent(),
        Some(out.path("made").as_path()),
        "{}",
        out.describe()
    );
    out.code(2).err_has(&format!(
        "failed to create a temporary directory: No such file or directory (os error 2) at path \"{}/prun-",
        out.path("missing").display()
    ));
    assert!(
        !out.stderr.contains("failed to remove temporary directory"),
        "{}",
        out.describe()
    );
}

#[test]
fn fail_fast_terminates_a_running_command_bodys_whole_group() {
    let out = Test::new()
        .args(&["--fail-fast", "-j", "3"])
        .script(
            r#"
proc("body", #{ shell: "sleep 300 & echo $! > body.gc; echo $$ > body.pgid; wait" });
proc("clos", |ctx| { shell("sleep 300 & echo $! > clos.gc; echo $$ > clos.pgid; wait"); 1 });
proc("bad", #{ cmd: ["sh", "-c",
    "i=0; while [ ! -s body.pgid ] || [ ! -s clos.pgid ]; do i=$((i+1)); [ $i -gt 1000 ] && exit 9; sleep 0.01; done; exit 1"] });
run(["body", "clos", "bad"]);
"#,
        )
        .run();
    out.code(1);
    let bad = out.proc_line("FAILED", "bad");
    assert!(bad.contains("exited with code 1"), "{bad}");
    let ctx = out.describe();
    for f in ["body.pgid", "clos.pgid"] {
        group_in_gone(&out, f);
    }
    for f in ["body.gc", "clos.gc"] {
        assert_gone(pid_in(&out, f), f, &ctx);
    }
}

#[test]
fn background_children_do_not_outlive_their_command() {
    let out = Test::new()
        .script(
            r#"
proc("body", #{ shell: "sleep 300 & echo $! > body.bg" });
proc("argv", #{ cmd: ["sh", "-c", "sleep 300 & echo $! > argv.bg"] });
proc("clos", |ctx| { shell("sleep 300 & echo $! > clos.bg"); 1 });
run(["body", "argv", "clos"]);
shell("sleep 300 & echo $! > top.bg");
// Ended when the command that started it returned, not only when prun exits.
let s = shell("cut -d' ' -f3 /proc/$(cat top.bg)/stat 2>/dev/null || true").stdout;
print("state after return=[" + s + "]");
"#,
        )
        .run();
    out.ok()
        .proc_state("SUCCEEDED", "body")
        .proc_state("SUCCEEDED", "argv")
        .proc_state("SUCCEEDED", "clos");
    let state = out
        .stdout
        .lines()
        .find(|l| l.starts_with("state after return=["))
        .unwrap();
    assert!(
        [
            "state after return=[]",
            "state after return=[Z",
            "state after return=[X"
        ]
        .iter()
        .any(|s| state.starts_with(s)),
        "the background child was still running after its command returned: {state}\n{}",
        out.describe()
    );
    let ctx = out.describe();
    for f in ["body.bg", "argv.bg", "clos.bg", "top.bg"] {
        assert_gone(pid_in(&out, f), f, &ctx);
    }
}

/// Every thread of prun blocks SIGCHLD while a run's commands run, the async runtime's
/// workers that spawn and await them included (children are awaited through pidfds): a
/// child's exit wakes no thread for nothing.
#[test]
fn every_thread_of_prun_blocks_sigchld() {
    // The command's parent is prun: the name and mask of each of its threads (one that
    // ends meanwhile is left out).
    let threads =
        r#"for t in /proc/$PPID/task/*/status; do grep -E '^(Name|SigBlk)' "$t" 2>/dev/null; done"#;
    let script = format!(
        r#"
proc("clos", |ctx| {{ shell("true"); }});
proc("body", #{{ deps: ["clos"], shell: `{threads} > threads.txt; true` }});
run("body");
"#
    );
    let out = Test::new().script(&script).run();
    out.ok();
    let listed = out.read("threads.txt");
    let names: Vec<&str> = listed
        .lines()
        .filter_map(|l| l.strip_prefix("Name:"))
        .map(str::trim)
        .collect();
    let masks: Vec<u64> = listed
        .lines()
        .filter_map(|l| l.strip_prefix("SigBlk:"))
        .map(|m| u64::from_str_radix(m.trim(), 16).expect("a hex mask"))
        .collect();
    assert_eq!(names.len(), masks.len(), "{listed}");
    assert!(
        names.iter().any(|n| n.starts_with("tokio-rt-worker")),
        "no runtime worker listed: {listed}"
    );
    const SIGCHLD_BIT: u64 = 1 << (17 - 1);
    for (name, mask) in names.iter().zip(&masks) {
        assert!(
            mask & SIGCHLD_BIT != 0,
            "thread {name} does not block SIGCHLD\n{listed}\n{}",
            out.describe()
        );
    }
}

/// prun blocks SIGCHLD in all its own threads (see `sigchld::block`); a
/// command must start with no signal blocked, whichever thread spawned it: a shell's job
/// control and programs that handle SIGCHLD depend on it.
#[test]
fn commands_start_with_no_signal_blocked() {
    let blocked = "grep '^SigBlk' /proc/self/status";
    let script = format!(
        r#"
write_file("top.mask", shell("{blocked}").stdout);
proc("body", #{{ shell: "{blocked} > body.mask" }});
proc("clos", |ctx| {{ write_file("clos.mask", shell("{blocked}").stdout); }});
run(["body", "clos"]);
"#
    );
    let out = Test::new().script(&script).run();
    out.ok();
    for f in ["top.mask", "body.mask", "clos.mask"] {
        let mask = out.read(f);
        assert_eq!(
            mask.trim(),
            "SigBlk:\t0000000000000000",
            "{f}: a command started with signals blocked\n{}",
            out.describe()
        );
    }
}

/// Commands get SIGTTIN at its default action even when prun was started with it ignored,
/// as a script in a tmux pane is: an interactive command that reads the terminal before
/// prun has made its group the foreground is then stopped until it is, where ignoring the
/// signal failed its read at once (the interactive tests' flake: `read` returned, the
/// proc succeeded without its answer). SIGPIPE too, which a Python parent leaves ignored:
/// ignored, `yes | head -1` would write for ever.
#[test]
fn commands_get_sigttin_and_sigpipe_at_their_default_action_when_prun_was_started_ignoring_them() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("main.rhai"),
        r#"proc("p", #{ shell: "grep SigIgn /proc/$$/status > command.txt" }); run("p");"#,
    )
    .expect("script");
    // `trap ''` ignores the signals in the shell and in what it runs, prun included.
    let out = Command::new("sh")
        .args([
            "-c",
            r#"trap '' TTIN PIPE; grep SigIgn /proc/$$/status > shell.txt; exec "$0" main.rhai -q"#,
            env!("CARGO_BIN_EXE_prun"),
        ])
        .current_dir(dir.path())
        .env("XDG_STATE_HOME", dir.path().join("state"))
        .output()
        .expect("run prun");
    assert!(out.status.success(), "{out:?}");
    let ignored = |file: &str| {
        let text = std::fs::read_to_string(dir.path().join(file)).expect(file);
        let mask = text.trim().strip_prefix("SigIgn:").expect("a SigIgn line");
        u64::from_str_radix(mask.trim(), 16).expect("a hex mask")
    };
    for (name, signal) in [("SIGTTIN", 21), ("SIGPIPE", 13)] {
        let bit: u64 = 1 << (signal - 1);
        assert_ne!(
            ignored("shell.txt") & bit,
            0,
            "the test's shell did not ignore {name}"
        );
        assert_eq!(
            ignored("command.txt") & bit,
            0,
            "the command ignores {name}"
        );
    }
}

/// A process that leaves its command's process group (`setsid`, as a daemon does) is no
/// longer reached through the group, yet it does not outlive prun: a command body's and a
/// closure's.
#[test]
fn a_process_that_left_its_group_with_setsid_does_not_outlive_prun() {
    let daemon = |file: &str| {
        format!(
            "setsid sh -c 'echo $$ > {file}; exec sleep 300' < /dev/null > /dev/null 2>&1 & while [ ! -s {file} ]; do sleep 0.01; done"
        )
    };
    let out = Test::new()
        .script(&format!(
            r#"
proc("body", #{{ now: true, shell: "{}" }});
proc("clos", #{{ now: true }}, |ctx| {{ shell("{}"); 1 }});
proc("bare", #{{ now: true, shell: "env -i /bin/sh -c \"{}\"" }});
"#,
            daemon("body.pid"),
            daemon("clos.pid"),
            daemon("bare.pid")
                .replace("setsid sh", "/usr/bin/setsid /bin/sh")
                .replace("exec sleep", "exec /bin/sleep")
                .replace("sleep 0.01", "/bin/sleep 0.01")
        ))
        .run();
    out.ok();
    let ctx = out.describe();
    // `bare` clears its environment first: nothing it inherited tells it from others.
    for f in ["body.pid", "clos.pid", "bare.pid"] {
        let pid = pid_in(&out, f);
        assert_gone(pid, f, &ctx);
    }
}

/// A daemon that left its command's group but kept its output pipe (`pg_ctl start` without
/// `-l`) does not hold up the command: a captured `shell` returns what the command wrote
/// once its own processes are gone, and so does a command body whose output prun reads
/// (`--output stream`). What the daemon writes later still reaches the proc's log. Before,
/// the run waited for the daemon's end, and SIGTERM could not end that wait.
#[test]
fn a_daemon_holding_the_output_pipe_does_not_hold_up_its_command() {
    // The daemon gives up waiting after a minute, not to spin on if the test fails.
    let daemon = |name: &str| {
        format!(
            "setsid sh -c 'echo $$ > {name}.pid; i=0; while [ ! -e {name}.go ] && [ $i -lt 6000 ]; do sleep 0.01; i=$((i+1)); done; echo {name}-late; exec sleep 300' & while [ ! -s {name}.pid ]; do sleep 0.01; done"
        )
    };
    // `b` goes on only once the daemons' late lines are in their procs' logs.
    let late_in_log = |name: &str| {
        format!(
            "touch {name}.go; until grep -rqs {name}-late state --include={name}.log; do sleep 0.01; done"
        )
    };
    let out = Test::new()
        .args(&["--output", "stream"])
        .timeout(Duration::from_secs(30))
        .script(&format!(
            r#"
proc("clos", #{{ now: true }}, |ctx| {{
    let r = shell("echo before; {}; echo after");
    write_file("captured", r.stdout);
}});
proc("body", #{{ now: true, shell: "echo body-before; {}; echo body-after" }});
proc("b", #{{ now: true, deps: ["clos", "body"], shell: "{}; {}" }});
"#,
            daemon("clos"),
            daemon("body"),
            late_in_log("clos"),
            late_in_log("body"),
        ))
        .run();
    out.ok();
    assert_eq!(
        out.read("captured"),
        "before\nafter\n",
        "{}",
        out.describe()
    );
    out.out_has("body │ body-after");
    let ctx = out.describe();
    for f in ["clos.pid", "body.pid"] {
        assert_gone(pid_in(&out, f), f, &ctx);
    }
}

/// A command body writes into an unnamed log that a silent success hands on to the next
/// command body; a daemon it started (`setsid daemon &`, output not redirected) still
/// holds that file. The log is then kept instead, and what the daemon writes later goes
/// there. Before, the next command body got the file, and the daemon's late line landed in
/// the middle of that other proc's output (and `a` had no log).
#[test]
fn a_daemon_holding_a_silent_command_bodys_log_writes_to_its_own_procs_log() {
    let out = Test::new()
        .args(&["-j", "1"])
        .timeout(Duration::from_secs(30))
        .script(
            r#"
proc("a", #{ now: true, shell: "setsid sh -c 'echo $$ > a.pid; i=0; while [ ! -e a.go ] && [ $i -lt 6000 ]; do sleep 0.01; i=$((i+1)); done; echo a-late; touch a.done; exec sleep 300' & while [ ! -s a.pid ]; do sleep 0.01; done" });
proc("b", #{ now: true, deps: ["a"], shell: "echo b-first; touch a.go; while [ ! -e a.done ]; do sleep 0.01; done; echo b-last" });
"#,
        )
        .run();
    out.ok();
    let b = read_log(&out, "b.log");
    assert!(b.contains("b-first\nb-last\n"), "{b}\n{}", out.describe());
    assert!(!b.contains("a-late"), "{b}\n{}", out.describe());
    let a = read_log(&out, "a.log");
    assert!(a.ends_with("a-late\n"), "{a}\n{}", out.describe());
    assert_gone(pid_in(&out, "a.pid"), "the daemon", &out.describe());
}

/// A command's leader that leaves its own process group (`setpgid` into prun's, as a
/// program that wants prun's terminal may) is out of reach of its group's signals: prun
/// sends them to it as well. Before, SIGTERM and SIGKILL went to the empty group, and the
/// run waited for the command to end on its own (here 100 s, past the test's bound).
#[test]
fn a_leader_that_left_its_group_is_ended_with_it() {
    let out = Test::new()
        .timeout(Duration::from_secs(30))
        .signal_when("l.pid", "TERM")
        .script(
            r#"
set_options(#{ kill_grace: "1s" });
proc("leaves", #{ now: true, cmd: ["perl", "-MPOSIX", "-e", "POSIX::setpgid(0, getpgrp(getppid())) or die qq(setpgid: $!); open(my $f, '>', 'l.tmp') or die; print $f qq($$\\n); close $f; rename('l.tmp', 'l.pid'); sleep 100"] });
"#,
        )
        .run();
    out.code(130);
    out.proc_state("FAILED", "leaves")
        .out_has("was terminated because the run was aborted");
    assert_gone(pid_in(&out, "l.pid"), "the leader", &out.describe());
}

/// Processes a command left behind that prun adopted (`(tool &)` in a shell: the subshell
/// exits at once) and that exited are reaped while the run lasts, not at its end: a long
/// run whose commands leave such processes would otherwise fill the process table with
/// zombies (32,768 pids on many systems). `b` waits (up to 20 s) for prun to have none.
#[test]
fn adopted_processes_that_exit_are_reaped_while_the_run_lasts() {
    let zombies = r#"ps -o stat= --ppid $PPID | grep -c Z"#;
    let out = Test::new()
        .timeout(Duration::from_secs(60))
        .script(&format!(
            r#"
proc("a", #{{ now: true, shell: "for i in $(seq 50); do (true &); done" }});
proc("b", #{{ now: true, deps: ["a"], shell: "i=0; while [ $({zombies}) -gt 0 ] && [ $i -lt 400 ]; do sleep 0.05; i=$((i+1)); done; {zombies} > zombies.txt; true" }});
"#
        ))
        .run();
    out.ok();
    assert_eq!(out.read("zombies.txt").trim(), "0", "{}", out.describe());
}

/// A first SIGTERM (or Ctrl-C) while the `defer` cleanups run lets them finish, as one that
/// came before them does (they are what it runs); the run still ends interrupted. The
/// cleanup's command gives the signal a second to reach it.
#[test]
fn an_interrupt_during_the_cleanups_lets_them_finish() {
    let out = Test::new()
        .signal_when("cleanup.started", "TERM")
        .script(
            r#"
defer(|| shell("echo older-cleanup >> order"));
defer(|| shell("trap 'echo terminated >> order; exit 1' TERM; touch cleanup.started; sleep 1; echo finished >> order"));
proc("a", #{ now: true, shell: "true" });
"#,
        )
        .run();
    out.code(130);
    assert_eq!(
        out.read("order"),
        "finished\nolder-cleanup\n",
        "{}",
        out.describe()
    );
}

/// A stopped process (SIGSTOP, Ctrl-Z) acts on SIGTERM only once continued: prun sends
/// SIGCONT after each SIGTERM, so that a stopped daemon and a stopped command that timed
/// out clean up on SIGTERM. Before, they stayed stopped, the run waited the whole kill
/// grace (here far longer than the test's bound), and SIGKILL gave them no chance.
#[test]
fn a_stopped_process_is_continued_to_act_on_sigterm() {
    let out = Test::new()
        .timeout(Duration::from_secs(30))
        .script(
            r#"
set_options(#{ kill_grace: "300s" });
proc("daemon", #{ now: true, shell: "setsid sh -c 'trap \"echo daemon >> terminated; exit 0\" TERM; echo $$ > d.pid; kill -STOP $$; exec sleep 300' & while ! grep -qs '^State:.*T' /proc/$(cat d.pid 2>/dev/null)/status; do sleep 0.01; done" });
proc("command", #{ now: true, timeout: "1s", shell: "trap 'echo command >> terminated; exit 0' TERM; kill -STOP $$; exec sleep 300" });
"#,
        )
        .run();
    out.code(1).proc_state("SUCCEEDED", "daemon");
    let mut lines: Vec<String> = out.read("terminated").lines().map(String::from).collect();
    lines.sort();
    assert_eq!(lines, ["command", "daemon"], "{}", out.describe());
    assert_gone(pid_in(&out, "d.pid"), "the stopped daemon", &out.describe());
}

/// A script that catches the error of the command Ctrl-C ended (a retry loop does) and
/// asks for another one: it is not started, and the error says so. Before, it was
/// started, did its work (here, made a file), and was reported terminated.
#[test]
fn after_ctrl_c_a_command_the_script_asks_for_is_not_started() {
    let out = Test::new()
        .signal_when("started", "INT")
        .script(
            r#"
try { exec(["sh", "-c", "touch started; exec sleep 300"]); } catch (e) { print(`first: ${e}`); }
try { exec(["touch", "second"]); } catch (e) { print(`second: ${e}`); }
"#,
        )
        .run();
    out.code(130)
        .out_has("first: command `sh -c 'touch started; exec sleep 300'` was terminated")
        .out_has("second: command `touch second` was not started: the run was aborted");
    assert!(!out.path("second").exists(), "{}", out.describe());
}

/// A second Ctrl-C kills at once what is left, even what prun is ending at the run's end
/// because it left its command's group: here a daemon that answers SIGTERM with the second
/// Ctrl-C. Before, the end of the run waited the whole kill grace (far longer than the
/// test's bound) for it.
#[test]
fn a_second_ctrl_c_kills_the_escaped_processes_being_ended() {
    let out = Test::new()
        .timeout(Duration::from_secs(30))
        .signal_when("started", "INT")
        .script(
            r#"
set_options(#{ kill_grace: "300s" });
proc("d", #{ now: true, shell: "P=$PPID setsid sh -c 'trap \"kill -INT $P\" TERM; echo $$ > d.pid; while :; do sleep 0.1; done' & while [ ! -s d.pid ]; do sleep 0.01; done; touch started; exec sleep 300" });
"#,
        )
        .run();
    out.code(130);
    assert_gone(pid_in(&out, "d.pid"), "the daemon", &out.describe());
}

/// A pipe's stage that leaves a process behind in its group (`sh -c 'tool & ...'`) has it
/// ended as soon as the stage exits: it holds the pipe to the next stage, which would
/// otherwise wait for the end of its input as long as that process lives. Before, the
/// leftovers were ended only once every stage had exited, and the pipe hung.
#[test]
fn a_pipe_stages_leftover_is_ended_when_the_stage_exits() {
    let out = Test::new()
        .timeout(Duration::from_secs(30))
        .script(
            r#"
proc("p", #{ now: true }, |ctx| {
    let r = pipe([["sh", "-c", "sleep 300 & echo $! > bg.pid; echo a"], ["cat"]]);
    write_file("got", r.stdout);
});
"#,
        )
        .run();
    out.ok();
    assert_eq!(out.read("got"), "a\n", "{}", out.describe());
    assert_gone(
        pid_in(&out, "bg.pid"),
        "the stage's leftover",
        &out.describe(),
    );
}

/// A process that left a pipe's stage's group (`setsid daemon &`) but kept the pipe to the
/// next stage is ended once that stage is gone, as the stage's leftovers are: the next
/// stage would otherwise wait for the end of its input as long as the daemon lives.
/// Before, the pipe hung until the daemon ended. The next stage, which reads the same
/// pipe, is not taken for a holder: both ignore SIGTERM, so the daemon is killed at the
/// end of the grace, and so would the next stage be.
#[test]
fn a_daemon_holding_the_pipe_to_the_next_stage_is_ended() {
    let out = Test::new()
        .timeout(Duration::from_secs(30))
        .script(
            r#"
set_options(#{ kill_grace: "1s" });
proc("p", #{ now: true }, |ctx| {
    let r = pipe([["sh", "-c", "setsid sh -c 'trap \"\" TERM; echo $$ > d.pid; exec sleep 300' & while [ ! -s d.pid ]; do sleep 0.01; done; echo a"], ["sh", "-c", "trap '' TERM; cat"]]);
    write_file("got", r.stdout);
});
"#,
        )
        .run();
    out.ok();
    assert_eq!(out.read("got"), "a\n", "{}", out.describe());
    assert_gone(pid_in(&out, "d.pid"), "the daemon", &out.describe());
}

/// Pipes run at once by several procs: while one is being started, the child between its
/// fork and its exec holds a copy of every descriptor of prun, the pipes of the other
/// pipes' stages included. It must not be taken for a daemon holding one of those pipes:
/// before, about one proc in four failed with its `cat` "killed by SIGTERM".
#[test]
fn pipes_started_at_once_never_end_each_others_stages() {
    let out = Test::new()
        .timeout(Duration::from_secs(120))
        .script(
            r#"
for i in 0..12 {
    proc(`p${i}`, |ctx| {
        for j in 0..25 {
            let s = pipe([["echo", "s"], ["cat"]]).stdout;
            if s != "s\n" { throw `got [${s}]`; }
        }
        1
    });
}
run("p*");
"#,
        )
        .args(&["-j", "8"])
        .run();
    out.ok().summary_is("prun: 12 succeeded");
}

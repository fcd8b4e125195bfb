//! What a command inherits from prun: its signal mask and dispositions, resource limits,
//! file descriptors and environment, compared with what `sh -c` would give it.

use std::process::Command;
use std::time::Duration;

use crate::support::{Test, run_within};

/// The bit of a signal in a `/proc/PID/status` mask (`SigBlk:`, `SigIgn:`).
fn bit(signal: u32) -> u64 {
    1 << (signal - 1)
}

const SIGHUP: u32 = 1;
const SIGCHLD: u32 = 17;

/// Every mask `field` (`SigBlk`) in `text`, a command's `/proc/self/status` lines, parsed.
fn masks(text: &str, field: &str) -> Vec<u64> {
    text.lines()
        .filter_map(|l| l.split_once(&format!("{field}:")))
        .map(|(_, hex)| u64::from_str_radix(hex.trim(), 16).expect("a hex mask"))
        .collect()
}

/// A shell that traps SIGCHLD waits for its background job: with SIGCHLD blocked, `wait`
/// never returns (dash waits for the signal), and the proc's timeout fails it.
const TRAPS_CHLD: &str = "trap 'echo chld >> chld.txt' CHLD; sleep 0 & wait; echo waited";

#[test]
fn every_kind_of_command_starts_with_sigchld_unblocked() {
    let out = Test::new()
        .timeout(Duration::from_secs(40))
        .script(&format!(
            r#"
            proto("p::[x]", #{{ cmd: ["grep", "SigBlk", "/proc/self/status"] }});
            proc("argv", #{{ cmd: ["grep", "SigBlk", "/proc/self/status"] }});
            proc("sh", #{{ shell: "{TRAPS_CHLD}", timeout: "10s" }});
            proc("inside", #{{ timeout: "10s" }}, || {{
                exec(["grep", "SigBlk", "/proc/self/status"], #{{ stdout: "exec.txt" }});
                pipe([["grep", "SigBlk", "/proc/self/status"], ["cat"]], #{{ stdout: "pipe.txt" }});
                shell("{TRAPS_CHLD}", #{{ stdout: "shell.txt" }});
            }});
            run(["argv", "sh", "inside", "p::1"]);
            exec(["grep", "SigBlk", "/proc/self/status"], #{{ stdout: "top.txt" }});
            "#
        ))
        .args(&["--output", "stream"])
        .run();
    out.ok();
    let streamed = masks(&out.stdout, "SigBlk");
    assert_eq!(
        streamed.len(),
        2,
        "the proc's and the proto's\n{}",
        out.describe()
    );
    for file in ["exec.txt", "pipe.txt", "top.txt"] {
        let mask = masks(&out.read(file), "SigBlk");
        assert_eq!(mask.len(), 1, "{file}\n{}", out.describe());
        assert_eq!(mask[0] & bit(SIGCHLD), 0, "{file}\n{}", out.describe());
    }
    for mask in streamed {
        assert_eq!(mask & bit(SIGCHLD), 0, "{}", out.describe());
    }
    out.out_has("sh │ waited");
    assert_eq!(out.read("shell.txt"), "waited\n");
}

#[test]
fn a_signal_blocked_by_prun_s_own_parent_stays_blocked_in_its_commands() {
    // As `nohup` or a supervisor leaves it: SIGHUP blocked before prun starts. SIGCHLD
    // blocked too (a parent that waits for its children through a `signalfd`) is not
    // passed on: a command's `trap ... CHLD` and SIGCHLD handlers would never run.
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("main.rhai"),
        r#"proc("m", #{ cmd: ["grep", "SigBlk", "/proc/self/status"] }); run("m");"#,
    )
    .expect("write the script");
    let mut cmd = Command::new("perl");
    cmd.args([
        "-e",
        "use POSIX; sigprocmask(SIG_BLOCK, POSIX::SigSet->new(SIGHUP, SIGCHLD)) or die; exec @ARGV or die",
        env!("CARGO_BIN_EXE_prun"),
        "main.rhai",
        "--output",
        "stream",
    ])
    .current_dir(dir.path())
    .env("XDG_STATE_HOME", dir.path().join("state"));
    let done = run_within(cmd, "prun under perl", Duration::from_secs(30), |_| {});
    let context = format!("--- stdout\n{}\n--- stderr\n{}", done.stdout, done.stderr);
    assert!(done.status.success(), "{context}");
    let mask = masks(&done.stdout, "SigBlk");
    assert_eq!(mask.len(), 1, "{context}");
    assert_ne!(mask[0] & bit(SIGHUP), 0, "SIGHUP unblocked\n{context}");
    assert_eq!(mask[0] & bit(SIGCHLD), 0, "SIGCHLD blocked\n{context}");
}

#[test]
fn under_nohup_sighup_neither_aborts_the_run_nor_reaches_its_commands() {
    // `nohup prun s.rhai &`: SIGHUP ignored from the start stays ignored, as a shell
    // leaves it, in prun and in every command it starts.
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("main.rhai"),
        r#"
        proc("hup", #{ shell: "kill -HUP $PPID; grep SigIgn /proc/self/status > ign.txt" });
        proc("after", #{ deps: ["hup"], cmd: ["touch", "after.txt"] });
        run("after");
        "#,
    )
    .expect("write the script");
    let mut cmd = Command::new("nohup");
    cmd.args([env!("CARGO_BIN_EXE_prun"), "main.rhai"])
        .current_dir(dir.path())
        .env("XDG_STATE_HOME", dir.path().join("state"));
    let done = run_within(cmd, "prun under nohup", Duration::from_secs(30), |_| {});
    let context = format!("--- stdout\n{}\n--- stderr\n{}", done.stdout, done.stderr);
    let ignored = std::fs::read_to_string(dir.path().join("ign.txt")).expect("ign.txt");
    let mask = masks(&ignored, "SigIgn");
    assert_eq!(mask.len(), 1, "{context}");
    assert_ne!(mask[0] & bit(SIGHUP), 0, "SIGHUP not ignored\n{context}");
    assert!(done.status.success(), "{context}");
    assert!(dir.path().join("after.txt").exists(), "{context}");
}

#[test]
fn a_denied_variable_whose_name_is_not_utf8_is_hidden_from_commands_too() {
    use std::os::unix::ffi::OsStrExt;
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("main.rhai"),
        r#"proc("m", #{ cmd: ["env"] }); run("m");"#,
    )
    .expect("write the script");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_prun"));
    cmd.args(["--deny-env", "SECRET*", "main.rhai", "--output", "stream"])
        .current_dir(dir.path())
        .env("XDG_STATE_HOME", dir.path().join("state"))
        .env(std::ffi::OsStr::from_bytes(b"SECRET_\xff"), "leaked")
        .env("SECRET_PLAIN", "leaked")
        .env("VISIBLE_ONE", "seen");
    let done = run_within(cmd, "prun --deny-env", Duration::from_secs(30), |_| {});
    let context = format!("--- stdout\n{}\n--- stderr\n{}", done.stdout, done.stderr);
    assert!(done.status.success(), "{context}");
    assert!(done.stdout.contains("VISIBLE_ONE=seen"), "{context}");
    assert!(!done.stdout.contains("leaked"), "{context}");
}

/// Runs `main.rhai` in `dir` with prun on a terminal of its own (`script` gives it one),
/// within 30 s.
fn on_a_terminal(dir: &std::path::Path) -> crate::support::Finished {
    let mut cmd = Command::new("script");
    cmd.args([
        "-qec",
        &format!(
            "'{}' main.rhai --output stream --no-live",
            env!("CARGO_BIN_EXE_prun")
        ),
        "/dev/null",
    ])
    .current_dir(dir)
    .env("XDG_STATE_HOME", dir.join("state"));
    run_within(cmd, "prun on a terminal", Duration::from_secs(30), |_| {})
}

/// A command that is not interactive and reads the terminal (a password prompt, `read x
/// < /dev/tty`) or sets its modes (`stty -echo`) is stopped by the kernel: it is not in
/// the terminal's foreground group. No one would continue it, and the run waited for ever;
/// it fails instead, naming the signal and `interactive: true`.
#[test]
fn a_command_stopped_for_using_the_terminal_fails_instead_of_hanging() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("main.rhai"),
        r#"
        proc("reads", #{ shell: "read x < /dev/tty; touch read.txt" });
        proc("sets", #{ cmd: ["sh", "-c", "stty -echo < /dev/tty; touch set.txt"] });
        proc("inside", || {
            let r = shell("read x < /dev/tty", #{ check: false });
            write_file("inside.txt", `${r.ok}`);
        });
        run(["reads", "sets", "inside"]);
        "#,
    )
    .expect("write the script");
    let done = on_a_terminal(dir.path());
    let out = done.stdout;
    assert!(
        out.contains("FAILED     reads") && out.contains("was stopped by SIGTTIN and terminated"),
        "{out}"
    );
    assert!(
        out.contains("FAILED     sets") && out.contains("was stopped by SIGTTOU and terminated"),
        "{out}"
    );
    assert!(out.contains("interactive: true"), "{out}");
    let read = |f: &str| std::fs::read_to_string(dir.path().join(f)).ok();
    assert_eq!(read("inside.txt").as_deref(), Some("false"), "{out}");
    assert_eq!(read("read.txt"), None, "{out}");
    assert_eq!(read("set.txt"), None, "{out}");
}

/// Started with SIGCHLD ignored (a parent's `SIG_IGN`, which exec keeps), prun had the
/// kernel reap its children at once: every command failed with "failed to wait for ...:
/// No child processes". Its commands get SIGCHLD at its default action, and their exit
/// codes are had.
#[test]
fn started_with_sigchld_ignored_commands_still_report_their_exit_codes() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("main.rhai"),
        r#"
        proc("argv", #{ cmd: ["grep", "SigIgn", "/proc/self/status"] });
        proc("three", #{ shell: "exit 3" });
        proc("inside", || { write_file("inside.txt", `${exec(["sh", "-c", "exit 4"], #{ check: false }).code}`) });
        run(["argv", "three", "inside"]);
        "#,
    )
    .expect("write the script");
    let mut cmd = Command::new("perl");
    cmd.args([
        "-e",
        "$SIG{CHLD} = 'IGNORE'; exec @ARGV or die",
        env!("CARGO_BIN_EXE_prun"),
        "main.rhai",
        "--output",
        "stream",
    ])
    .current_dir(dir.path())
    .env("XDG_STATE_HOME", dir.path().join("state"));
    let done = run_within(cmd, "prun under perl", Duration::from_secs(30), |_| {});
    let context = format!("--- stdout\n{}\n--- stderr\n{}", done.stdout, done.stderr);
    assert!(
        done.stdout.contains("command `exit 3` exited with code 3"),
        "{context}"
    );
    assert!(!done.stdout.contains("No child processes"), "{context}");
    let inside = std::fs::read_to_string(dir.path().join("inside.txt")).expect("inside.txt");
    assert_eq!(inside, "4", "{context}");
    let mask = masks(&done.stdout, "SigIgn");
    assert_eq!(mask.len(), 1, "{context}");
    assert_eq!(mask[0] & bit(SIGCHLD), 0, "SIGCHLD ignored\n{context}");
}

/// `cwd` sets `PWD` too, as `cd` does in a shell: `printenv PWD` named prun's directory,
/// and a program that trusts `$PWD` worked in the wrong one. A `PWD` the script sets is
/// kept.
#[test]
fn a_command_with_a_working_directory_finds_it_in_pwd() {
    let out = Test::new()
        .file("sub/keep", "")
        .script(
            r#"
            proc("body", #{ cwd: "sub", cmd: ["printenv", "PWD"] });
            proc("inside", || {
                exec(["printenv", "PWD"], #{ cwd: "sub", stdout: "inside.txt" });
                exec(["printenv", "PWD"], #{ cwd: "sub", env: #{ PWD: "/set" }, stdout: "set.txt" });
            });
            run(["body", "inside"]);
            "#,
        )
        .args(&["--output", "stream"])
        .run();
    out.ok();
    let sub = out.dir.path().join("sub");
    let sub = sub.to_str().expect("a UTF-8 path");
    out.out_has(&format!("body │ {sub}"));
    assert_eq!(out.read("inside.txt").trim(), sub, "{}", out.describe());
    assert_eq!(out.read("set.txt").trim(), "/set", "{}", out.describe());
}

/// An interactive proc of a prun in the background of its shell (`set -m; prun ... &`)
/// cannot be lent the terminal: its read stopped it for ever. It fails, saying why.
#[test]
fn an_interactive_command_of_a_prun_in_the_background_fails_instead_of_hanging() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("main.rhai"),
        r#"proc("ask", #{ interactive: true, shell: "read x; touch read.txt" }); run("ask");"#,
    )
    .expect("write the script");
    let mut cmd = Command::new("script");
    cmd.args([
        "-qec",
        &format!(
            "sh -c 'set -m; \"$0\" main.rhai --no-live & wait' '{}'",
            env!("CARGO_BIN_EXE_prun")
        ),
        "/dev/null",
    ])
    .current_dir(dir.path())
    .env("XDG_STATE_HOME", dir.path().join("state"));
    let done = run_within(
        cmd,
        "prun in the background",
        Duration::from_secs(30),
        |_| {},
    );
    let out = done.stdout;
    assert!(
        out.contains("FAILED     ask")
            && out.contains("was stopped by SIGTTIN and terminated")
            && out.contains("in the background of its shell"),
        "{out}"
    );
    assert!(!dir.path().join("read.txt").exists(), "{out}");
}

/// The descriptor numbers a shell holds (`ls /proc/$$/fd` in `sh`), past 0-2.
fn extra_fds(listing: &str) -> Vec<String> {
    let mut fds: Vec<String> = listing
        .split_whitespace()
        .filter(|fd| !["0", "1", "2"].contains(fd))
        .map(String::from)
        .collect();
    fds.sort();
    fds
}

/// Commands see descriptors 0-2 and what prun itself inherited, nothing of prun's own
/// (task DB, journal, logs, pidfds, the pipes of the other commands running beside them).
#[test]
fn commands_running_together_see_none_of_prun_s_descriptors() {
    let names = ["a", "b", "c", "d"];
    let mut script = String::new();
    for name in names {
        // Listed once all four run; captured, as a shell's redirection would hold a
        // descriptor of its own (dash keeps stdout at 10 or past while `>` lasts).
        script.push_str(&format!(
            r#"proc("{name}", || {{
                shell("sh sync.sh all {name} {}");
                write_file("{name}.fds", exec(["sh", "-c", "ls /proc/$$/fd"]).stdout);
            }});
"#,
            names.join(" ")
        ));
    }
    script.push_str(
        r#"proc("p", || { write_file("p.fds", pipe([["sh", "-c", "ls /proc/$$/fd"], ["cat"]]).stdout); });"#,
    );
    script.push_str("\nrun([\"a\", \"b\", \"c\", \"d\", \"p\"]);\n");
    // What prun itself inherits from this test, seen the same way.
    let baseline = Command::new("sh")
        .args(["-c", "ls /proc/$$/fd"])
        .stdin(std::process::Stdio::null())
        .output()
        .expect("sh");
    let inherited = extra_fds(&String::from_utf8_lossy(&baseline.stdout));
    let out = Test::new().script(&script).args(&["-j", "5"]).run();
    out.ok();
    for name in ["a", "b", "c", "d", "p"] {
        let fds = extra_fds(&out.read(&format!("{name}.fds")));
        assert_eq!(fds, inherited, "{name}\n{}", out.describe());
    }
}

#[test]
fn started_in_the_background_of_a_script_prun_keeps_sigint_ignored() {
    // A non-interactive shell starts `prun ... &` with SIGINT and SIGQUIT ignored, so that
    // the Ctrl-C meant for the script does not reach it: prun is not aborted by one, and
    // its commands inherit both ignored, as the shell's own background commands do.
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("main.rhai"),
        r#"
        proc("int", #{ shell: "kill -INT $PPID; grep SigIgn /proc/self/status > ign.txt" });
        proc("after", #{ deps: ["int"], cmd: ["touch", "after.txt"] });
        run("after");
        "#,
    )
    .expect("write the script");
    let mut cmd = Command::new("sh");
    cmd.args([
        "-c",
        r#""$0" main.rhai & wait $!"#,
        env!("CARGO_BIN_EXE_prun"),
    ])
    .current_dir(dir.path())
    .env("XDG_STATE_HOME", dir.path().join("state"));
    let done = run_within(
        cmd,
        "prun in the background",
        Duration::from_secs(30),
        |_| {},
    );
    let context = format!("--- stdout\n{}\n--- stderr\n{}", done.stdout, done.stderr);
    let ignored = std::fs::read_to_string(dir.path().join("ign.txt")).expect("ign.txt");
    let mask = masks(&ignored, "SigIgn");
    assert_eq!(mask.len(), 1, "{context}");
    assert_ne!(mask[0] & bit(2), 0, "SIGINT not ignored\n{context}");
    assert_ne!(mask[0] & bit(3), 0, "SIGQUIT not ignored\n{context}");
    assert!(done.status.success(), "{context}");
    assert!(dir.path().join("after.txt").exists(), "{context}");
}

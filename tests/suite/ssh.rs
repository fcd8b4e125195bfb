//! The `ssh` executor against a real sshd on a loopback port (started per test): output,
//! exit codes, quoting, `cwd` and `env`, host slots, a lost connection, and remote
//! processes ended by a timeout or Ctrl-C.

use crate::support::Test;
use crate::support::sshd::{Sshd, assert_none_at_return, assert_none_left};

/// A script that declares the executor `farm` on `hosts` of `sshd`, then `body`.
fn script(sshd: &Sshd, hosts: &[&str], body: &str) -> String {
    script_with(sshd, hosts, "", body)
}

/// [`script`] with more of the run's `options` (`key: value, ` each) before `executors`.
fn script_with(sshd: &Sshd, hosts: &[&str], options: &str, body: &str) -> String {
    format!(
        "set_options(#{{ {options}executors: #{{ farm: {} }} }});\n{body}",
        sshd.executor(hosts)
    )
}

/// `prun main.rhai` in `dir`, with the state and the temporary directories (the ssh
/// sockets') below it: what a killed run leaves goes with the test's directory.
fn prun_in(dir: &std::path::Path) -> std::process::Command {
    let tmp = dir.join("tmp");
    std::fs::create_dir_all(&tmp).unwrap();
    let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_prun"));
    c.arg("main.rhai")
        .current_dir(dir)
        .env("XDG_STATE_HOME", dir.join("state"))
        .env("TMPDIR", tmp)
        .stdin(std::process::Stdio::null());
    c
}

/// Runs `script` with [`prun_in`] and kills it (SIGKILL) once every file of `up` exists
/// in `dir`.
fn kill_prun_when_up(dir: &std::path::Path, script: &str, up: &[&str]) {
    std::fs::write(dir.join("main.rhai"), script).unwrap();
    let mut prun = prun_in(dir)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start prun");
    let t = std::time::Instant::now();
    while !up.iter().all(|f| dir.join(f).exists()) {
        assert!(prun.try_wait().unwrap().is_none(), "prun ended early");
        assert!(t.elapsed() < std::time::Duration::from_secs(60), "no start");
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    prun.kill().unwrap();
    prun.wait().unwrap();
}

#[test]
#[cfg_attr(prun_no_sshd, ignore = "needs root and sshd (openssh-server)")]
fn output_and_exit_codes_come_back() {
    let sshd = Sshd::start();
    let out = Test::new()
        .script(&script(
            &sshd,
            &["127.0.0.1"],
            r#"
proc("five", #{ executor: "farm", shell: "echo to-stdout; echo to-stderr >&2; exit 5" });
proc("talk", #{ executor: "farm" }, |ctx| {
    let r = exec(["sh", "-c", "echo hi; exit 3"], #{ check: false });
    write_file("talk.txt", `${r.code} ${r.stdout}`);
});
run(["five", "talk"]);
"#,
        ))
        .run();
    out.code(1).out_has("to-stdout").out_has("to-stderr");
    let line = out.proc_line("FAILED", "five");
    assert!(
        line.contains("exited with code 5"),
        "{line}\n{}",
        out.describe()
    );
    out.proc_state("SUCCEEDED", "talk");
    assert_eq!(out.read("talk.txt"), "3 hi\n", "{}", out.describe());
}

#[test]
#[cfg_attr(prun_no_sshd, ignore = "needs root and sshd (openssh-server)")]
fn arguments_arrive_intact() {
    let sshd = Sshd::start();
    let words = [
        "two words",
        "it's",
        "\"double\"",
        "$HOME",
        "`id`",
        "$(id)",
        "back\\slash",
        "",
        "*",
        "semi;colon",
        "new\nline",
        "  spaces  ",
    ];
    let rhai_words: Vec<String> = words.iter().map(|w| format!("{w:?}")).collect();
    let out = Test::new()
        .script(&script(
            &sshd,
            &["127.0.0.1"],
            &format!(
                r#"
proc("words", #{{ executor: "farm" }}, |ctx| {{
    let r = exec(["printf", "[%s]\n", {}]);
    write_file("got.txt", r.stdout);
}});
run("words");
"#,
                rhai_words.join(", ")
            ),
        ))
        .run();
    out.ok();
    let want: String = words.iter().map(|w| format!("[{w}]\n")).collect();
    assert_eq!(out.read("got.txt"), want, "{}", out.describe());
}

#[test]
#[cfg_attr(prun_no_sshd, ignore = "needs root and sshd (openssh-server)")]
fn cwd_and_env_are_carried() {
    let sshd = Sshd::start();
    let test = Test::new().file("sub/dir/.keep", "");
    let dir = test.dir().join("sub/dir");
    let out = test
        .script(&script(
            &sshd,
            &["127.0.0.1"],
            &format!(
                r#"
proc("here", #{{ executor: "farm", cwd: "{}", env: #{{ GREETING: "hello 'world' $x" }},
                shell: "pwd > where.txt; printf '%s' \"$GREETING\" > greeting.txt" }});
run("here");
"#,
                dir.display()
            ),
        ))
        .run();
    out.ok();
    assert_eq!(
        out.read("sub/dir/where.txt").trim(),
        dir.display().to_string()
    );
    assert_eq!(out.read("sub/dir/greeting.txt"), "hello 'world' $x");
}

#[test]
#[cfg_attr(prun_no_sshd, ignore = "needs root and sshd (openssh-server)")]
fn a_relative_cwd_starting_with_a_dash_is_a_directory_not_an_option_of_cd() {
    let sshd = Sshd::start();
    // Relative to the login directory of the remote user (root, as the test runs).
    let home = nix::unistd::User::from_uid(nix::unistd::Uid::effective())
        .ok()
        .flatten()
        .expect("passwd entry")
        .dir;
    let name = format!("-P-prun-cwd-{}", std::process::id());
    let remote_dir = home.join(&name);
    std::fs::create_dir_all(&remote_dir).expect("mkdir");
    let test = Test::new();
    let here = test.dir().to_path_buf();
    let out = test
        .script(&script(
            &sshd,
            &["127.0.0.1"],
            &format!(
                r#"proc("here", #{{ executor: "farm", cwd: "{name}", shell: "pwd > '{}/where.txt'" }});
run("here");
"#,
                here.display()
            ),
        ))
        .run();
    let _ = std::fs::remove_dir_all(&remote_dir);
    out.ok();
    assert_eq!(
        out.read("where.txt").trim(),
        remote_dir.display().to_string()
    );
}

#[test]
#[cfg_attr(prun_no_sshd, ignore = "needs root and sshd (openssh-server)")]
fn hosts_slots_bound_the_procs_not_the_local_parallel_limit() {
    // Three slots in all (two on one host name, one on another): with -j 1, three procs
    // still meet, and never more than three run at once.
    let sshd = Sshd::start();
    let test = Test::new().args(&["-j", "1"]);
    // The jobs write their stamps into the test's directory.
    let on = format!(r#"executor: "farm", cwd: "{}""#, test.dir().display());
    let out = test
        .script(&script(
            &sshd,
            &["127.0.0.1:2", "localhost"],
            &format!(
                r#"
proc("a", #{{ {on}, SYNC(all, a, b, c) }});
proc("b", #{{ {on}, SYNC(all, b, a, c) }});
proc("c", #{{ {on}, SYNC(all, c, a, b) }});
for p in ["d", "e", "f", "g"] {{
    proc(p, #{{ {on}, cmd: ["sh", "job.sh", p, "0.2"] }});
}}
run(["a", "b", "c", "d", "e", "f", "g"]);
"#
            ),
        ))
        .run();
    out.ok().summary_is("prun: 7 succeeded");
    let ev = out.events();
    assert!(ev.max_overlap() <= 3, "{}", ev.context());
}

#[test]
#[cfg_attr(prun_no_sshd, ignore = "needs root and sshd (openssh-server)")]
fn many_short_commands_share_one_connection_per_host() {
    let sshd = Sshd::start();
    let out = Test::new()
        .script(&script(
            &sshd,
            &["127.0.0.1"],
            r#"
proc("many", #{ executor: "farm" }, |ctx| {
    for i in 0..10 { exec(["true"]); }
});
run("many");
"#,
        ))
        .run();
    out.ok();
    assert_eq!(sshd.logins(), 1, "{}\n{}", sshd.log(), out.describe());
}

#[test]
#[cfg_attr(prun_no_sshd, ignore = "needs root and sshd (openssh-server)")]
fn a_refused_connection_fails_the_command_naming_the_host() {
    let port = crate::support::sshd::free_port();
    let out = Test::new()
        .script(&format!(
            r#"
set_options(#{{ executors: #{{ farm: #{{ kind: "ssh", hosts: ["127.0.0.1"], port: {port},
    args: ["-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null"] }} }} }});
proc("p", #{{ executor: "farm", retries: 1, cmd: ["true"] }});
run("p");
"#
        ))
        .run();
    // A retried command's log has room for its header (NUL bytes) before ssh's line.
    out.code(1).out_lacks("\0");
    let line = out.proc_line("FAILED", "p");
    // ssh's reason is in the message, not only in the log.
    assert!(
        line.contains("ssh to host \"127.0.0.1\" failed")
            && line.contains(&format!("port {port}: Connection refused")),
        "{line}\n{}",
        out.describe()
    );
}

#[test]
fn a_missing_ssh_client_is_named_with_the_command() {
    // Nothing is on PATH: the executor's client cannot start (no server is needed).
    let test = Test::new().file("empty/.keep", "");
    let path = test.dir().join("empty");
    let out = test
        .env("PATH", &path.display().to_string())
        .script(
            r#"
set_options(#{ executors: #{ farm: #{ kind: "ssh", hosts: ["127.0.0.1"] } } });
proc("p", #{ executor: "farm", cmd: ["echo", "hi"] });
run("p");
"#,
        )
        .run();
    out.code(1);
    let line = out.proc_line("FAILED", "p");
    assert!(
        line.contains(
            "the ssh executor runs commands through \"ssh\", which is not on PATH (command: `echo hi`)"
        ),
        "{line}\n{}",
        out.describe()
    );
}

#[test]
#[cfg_attr(prun_no_sshd, ignore = "needs root and sshd (openssh-server)")]
fn a_timeout_ends_the_remote_process_group() {
    let sshd = Sshd::start();
    // A number no other test sleeps for, so that the check finds only this one.
    let secs = format!("3{}", sshd.port);
    let test = Test::new();
    let dir = test.dir().to_path_buf();
    let out = test
        .script(&script(
            &sshd,
            &["127.0.0.1"],
            &format!(
                r#"
proc("slow", #{{ executor: "farm", timeout: "4s", cwd: "{}",
                 shell: "touch running; sleep {secs} & sleep {secs}" }});
run("slow");
"#,
                dir.display()
            ),
        ))
        .run();
    out.code(1);
    let line = out.proc_line("FAILED", "slow");
    assert!(line.contains("timed out"), "{line}\n{}", out.describe());
    // The remote command was running when the timeout ended it.
    assert!(out.exists("running"), "{}", out.describe());
    assert_none_left(&format!("sleep {secs}"), &out);
}

/// A command's `kill_grace` as long as a `Duration` holds, on an executor, times out as
/// any: waiting for the remote side took the grace plus a margin, and that sum overflowed
/// (a panic).
#[test]
#[cfg_attr(prun_no_sshd, ignore = "needs root and sshd (openssh-server)")]
fn a_remote_command_with_the_longest_kill_grace_times_out() {
    let sshd = Sshd::start();
    let secs = format!("2{}", sshd.port);
    let out = Test::new()
        .script(&script(
            &sshd,
            &["127.0.0.1"],
            &format!(
                r#"
proc("slow", #{{ executor: "farm" }}, |ctx| exec(["sleep", "{secs}"],
    #{{ timeout: "500ms", kill_grace: "18446744073709551615s" }}));
run("slow");
"#
            ),
        ))
        .run();
    out.code(1);
    let line = out.proc_line("FAILED", "slow");
    assert!(line.contains("timed out"), "{line}\n{}", out.describe());
    assert_none_left(&format!("sleep {secs}"), &out);
}

#[test]
#[cfg_attr(prun_no_sshd, ignore = "needs root and sshd (openssh-server)")]
fn a_timed_out_remote_command_is_gone_when_prun_returns() {
    // The command ignores SIGTERM: the remote side kills it once the run's kill grace
    // (3 s) has passed, and prun waits for that before it returns. The timeout leaves the
    // ssh connection time to start the command on a busy machine.
    let sshd = Sshd::start();
    let secs = format!("7{}", sshd.port);
    let test = Test::new();
    let dir = test.dir().to_path_buf();
    let out = test
        .script(&script_with(
            &sshd,
            &["127.0.0.1"],
            r#"kill_grace: "3s", "#,
            &format!(
                r#"
proc("stubborn", #{{ executor: "farm", timeout: "5s", cwd: "{}",
                     shell: "trap '' TERM; touch running; sleep {secs}" }});
run("stubborn");
"#,
                dir.display()
            ),
        ))
        .run();
    out.code(1);
    let line = out.proc_line("FAILED", "stubborn");
    assert!(line.contains("timed out"), "{line}\n{}", out.describe());
    assert!(out.exists("running"), "{}", out.describe());
    assert_none_at_return(&format!("sleep {secs}"), &out);
}

#[test]
#[cfg_attr(prun_no_sshd, ignore = "needs root and sshd (openssh-server)")]
fn ctrl_c_ends_the_remote_process_group() {
    a_signal_ends_the_remote_process_group("INT");
}

#[test]
#[cfg_attr(prun_no_sshd, ignore = "needs root and sshd (openssh-server)")]
fn sigterm_ends_the_remote_process_group_and_prun_exits_130() {
    a_signal_ends_the_remote_process_group("TERM");
}

/// Sends `signal` to prun while its remote command runs. The command ignores SIGTERM, so
/// the remote side must kill it after the kill grace; prun waits for that, then exits as
/// interrupted (130, docs/cli.md).
fn a_signal_ends_the_remote_process_group(signal: &str) {
    let sshd = Sshd::start();
    let secs = format!("9{}", sshd.port);
    let test = Test::new().signal_when("running", signal);
    let dir = test.dir().to_path_buf();
    let out = test
        .script(&script_with(
            &sshd,
            &["127.0.0.1"],
            r#"kill_grace: "1s", "#,
            &format!(
                r#"
proc("slow", #{{ executor: "farm", cwd: "{}", shell: "trap '' TERM; touch running; sleep {secs}" }});
run("slow");
"#,
                dir.display()
            )
        ))
        .run();
    assert_eq!(out.code, Some(130), "SIG{signal}\n{}", out.describe());
    assert_none_at_return(&format!("sleep {secs}"), &out);
}

#[test]
#[cfg_attr(prun_no_sshd, ignore = "needs root and sshd (openssh-server)")]
fn the_host_is_shown_reported_and_recorded() {
    let sshd = Sshd::start();
    let out = Test::new()
        .args(&["--db", "tasks.db", "--json", "report.json"])
        .script(&script(
            &sshd,
            &["localhost"],
            r#"
proc("remote", #{ executor: "farm", cmd: ["true"] });
proc("here", #{ cmd: ["true"] });
run(["remote", "here"]);
"#,
        ))
        .run();
    out.ok();
    let line = out.proc_line("SUCCEEDED", "remote");
    assert!(line.ends_with("s) on localhost"), "{}", out.describe());
    let report: serde_json::Value = serde_json::from_str(&out.read("report.json")).unwrap();
    let place = |name: &str| {
        report["procs"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == name)
            .map(|p| p["place"].clone())
    };
    assert_eq!(place("remote"), Some("localhost".into()));
    assert_eq!(place("here"), Some(serde_json::Value::Null));
    let db = rusqlite::Connection::open(out.path("tasks.db")).unwrap();
    let recorded: Option<String> = db
        .query_row(
            "SELECT place FROM proc_runs WHERE name = 'remote'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(recorded.as_deref(), Some("localhost"));
}

#[test]
#[cfg_attr(prun_no_sshd, ignore = "needs root and sshd (openssh-server)")]
fn prun_report_shows_the_host() {
    let sshd = Sshd::start();
    let out = Test::new()
        .args(&["--db", "tasks.db"])
        .script(&script(
            &sshd,
            &["localhost"],
            r#"
proc("remote", #{ executor: "farm", cmd: ["true"] });
proc("after", #{ deps: ["remote"], cmd: ["true"] });
run("after");
"#,
        ))
        .run();
    out.ok();
    let dir = out.dir.path();
    let report = std::process::Command::new(env!("CARGO_BIN_EXE_prun"))
        .args(["report", "main.rhai", "--db", "tasks.db"])
        .current_dir(dir)
        .env("XDG_STATE_HOME", dir.join("state"))
        .output()
        .expect("run prun report");
    let text = String::from_utf8_lossy(&report.stdout);
    assert!(report.status.success(), "{text}");
    // Both are on the critical path; only the remote one ran elsewhere.
    let line = |name: &str| {
        text.lines()
            .find(|l| l.trim_start().starts_with(&format!("{name} ")))
            .unwrap_or_default()
            .to_string()
    };
    assert!(line("remote").contains("SUCCEEDED on localhost"), "{text}");
    assert!(
        line("after").contains("SUCCEEDED") && !line("after").contains(" on "),
        "{text}"
    );
}

#[test]
#[cfg_attr(prun_no_sshd, ignore = "needs root and sshd (openssh-server)")]
fn a_lost_connection_fails_the_command_naming_the_host() {
    let sshd = Sshd::start();
    let secs = format!("5{}", sshd.port);
    // The command kills the sshd process that serves its connection (its wrapper's
    // parent): the connection drops while it runs.
    let out = Test::new()
        .script(&script(
            &sshd,
            &["127.0.0.1"],
            &format!(
                r#"
proc("cut", #{{ executor: "farm", shell: "kill -9 $(ps -o ppid= -p $PPID); sleep {secs}" }});
run("cut");
"#
            ),
        ))
        .run();
    out.code(1);
    let line = out.proc_line("FAILED", "cut");
    assert!(
        line.contains("ssh to host \"127.0.0.1\" failed"),
        "{line}\n{}",
        out.describe()
    );
    // The remote side ended the command when its connection went.
    assert_none_left(&format!("sleep {secs}"), &out);
}

#[test]
#[cfg_attr(prun_no_sshd, ignore = "needs root and sshd (openssh-server)")]
fn the_policy_holds_for_commands_on_an_executor() {
    let sshd = Sshd::start();
    let out = Test::new()
        .script(&script(
            &sshd,
            &["127.0.0.1"],
            r#"
proc("allowed", #{ executor: "farm", cmd: ["echo", "remote hello"] });
proc("refused", #{ executor: "farm", cmd: ["touch", "pwned"] });
proc("string", #{ executor: "farm", shell: "echo a shell string" });
run(["allowed", "refused", "string"]);
"#,
        ))
        .args(&["--allow", "echo", "--no-shell"])
        .run();
    out.code(1);
    out.proc_state("SUCCEEDED", "allowed");
    let refused = out.proc_line("FAILED", "refused");
    assert!(
        refused.contains("refused by the policy") && refused.contains("\"touch\""),
        "{refused}\n{}",
        out.describe()
    );
    let string = out.proc_line("FAILED", "string");
    assert!(
        string.contains("shell strings are off"),
        "{string}\n{}",
        out.describe()
    );
    assert!(!out.path("pwned").exists(), "{}", out.describe());
}

#[test]
#[cfg_attr(prun_no_sshd, ignore = "needs root and sshd (openssh-server)")]
fn commands_starting_together_on_a_new_host_get_only_their_own_stderr() {
    // Six commands at once on a host with no master connection yet: they raced to be
    // the master, logged in several times, and the losers' stderr began with ssh's
    // "ControlSocket ... already exists, disabling multiplexing". A user of the test's
    // own: root's startup files may print on stderr too.
    let sshd = Sshd::start();
    let user = sshd.user("/bin/sh");
    let out = Test::new()
        .script(&script(
            &sshd,
            &[&format!("{}@127.0.0.1:6", user.name)],
            r#"
proto("p::[i]", #{ executor: "farm" }, |ctx, i| {
    let r = exec(["sh", "-c", "echo out; echo err >&2"]);
    if r.stderr != "err\n" { throw `stderr was: ${r.stderr}`; }
});
for i in 0..6 { run(`p::${i}`); }
"#,
        ))
        .run();
    out.ok().summary_is("prun: 6 succeeded");
    assert_eq!(sshd.logins(), 1, "{}\n{}", sshd.log(), out.describe());
}

#[test]
fn an_interactive_proc_on_an_executor_is_refused_as_interactive() {
    // It was refused as "a command with `stdin`", which it was not given.
    let out = Test::new()
        .script(
            r#"
set_options(#{ executors: #{ farm: #{ kind: "ssh", hosts: ["127.0.0.1"] } } });
proc("p", #{ executor: "farm", interactive: true, cmd: ["echo", "hi"] });
run("p");
"#,
        )
        .run();
    // Now where it is declared: it could only fail once started.
    out.code(2).err_has(
        r#"main.rhai:3:1: proc "p": `interactive` gives its command prun's terminal, which executor "farm" cannot give a command"#,
    );
}

#[test]
fn a_variable_name_a_shell_cannot_export_is_named_not_run() {
    // `export 'B;C=x'` failed on the host, and the proc was reported as its command
    // exiting with code 1, a command that never ran. No server is needed: the name is
    // refused before connecting.
    let out = Test::new()
        .script(
            r#"
set_options(#{ executors: #{ farm: #{ kind: "ssh", hosts: ["127.0.0.1"] } } });
proc("p", #{ executor: "farm", env: #{ "B;C": "x" }, cmd: ["echo", "hi"] });
run("p");
"#,
        )
        .run();
    out.code(1);
    let line = out.proc_line("FAILED", "p");
    assert!(
        line.contains("the environment variable \"B;C\" cannot be set on ssh host \"127.0.0.1\"")
            && line.contains("(command: `echo hi`)"),
        "{line}\n{}",
        out.describe()
    );
}

/// A file for a pid, in a directory of its own (the test's directory is gone when its run
/// fails); the process whose pid is in it is killed on drop: the frozen sshd of a test,
/// which must not outlive it.
struct KillOnDrop(tempfile::TempDir);

impl KillOnDrop {
    fn pid_file(&self) -> std::path::PathBuf {
        self.0.path().join("pid")
    }
}

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if let Ok(pid) = std::fs::read_to_string(self.pid_file()) {
            let _ = std::process::Command::new("kill")
                .args(["-KILL", pid.trim()])
                .status();
        }
    }
}

#[test]
#[cfg_attr(prun_no_sshd, ignore = "needs root and sshd (openssh-server)")]
fn a_host_that_stops_answering_fails_the_command_instead_of_hanging() {
    let sshd = Sshd::start();
    let secs = format!("6{}", sshd.port);
    let thaw = KillOnDrop(tempfile::tempdir().unwrap());
    // The command stops the sshd process that serves its connection (its wrapper's
    // parent), as a host that loses power or network stops answering without closing
    // anything: ssh waited for the dead TCP connection for hours.
    let out = Test::new()
        .timeout(std::time::Duration::from_secs(45))
        .script(&script(
            &sshd,
            &["127.0.0.1"],
            &format!(
                r#"
proc("frozen", #{{ executor: "farm", shell: "p=$(ps -o ppid= -p $PPID); echo $p > '{}'; kill -STOP $p; sleep {secs}" }});
run("frozen");
"#,
                thaw.pid_file().display()
            ),
        ))
        .run();
    out.code(1);
    let line = out.proc_line("FAILED", "frozen");
    assert!(
        line.contains("ssh to host \"127.0.0.1\" failed"),
        "{line}\n{}",
        out.describe()
    );
    drop(thaw);
    assert_none_left(&format!("sleep {secs}"), &out);
}

#[test]
#[cfg_attr(prun_no_sshd, ignore = "needs root and sshd (openssh-server)")]
fn a_long_tmpdir_does_not_make_the_connection_sockets_too_long() {
    let sshd = Sshd::start();
    let test = Test::new();
    // A socket's path holds at most 107 bytes: under this TMPDIR every command failed
    // with "ControlPath too long".
    let long = test.dir().join("t".repeat(90));
    std::fs::create_dir(&long).unwrap();
    let out = test
        .env("TMPDIR", long.to_str().unwrap())
        .script(&script(
            &sshd,
            &["127.0.0.1"],
            r#"
proc("a", #{ executor: "farm", shell: "echo reached" });
run("a");
"#,
        ))
        .run();
    out.ok().proc_state("SUCCEEDED", "a");
}

#[test]
#[cfg_attr(prun_no_sshd, ignore = "needs root and sshd (openssh-server)")]
fn more_slots_than_sshd_takes_sessions_per_connection_leave_stderr_alone() {
    // sshd's default MaxSessions: an 11th command at once over one master connection was
    // refused, and ssh's fallback wrote "mux_client_request_session: session request
    // failed" and "disabling multiplexing" into the command's stderr. The commands wait
    // for each other (in the home of a user of the test's own, whose login runs no
    // startup file: root's `~/.bashrc` printed on stderr when 14 logins ran it at once).
    let sshd = Sshd::start_with_max_sessions(10);
    let user = sshd.user("/bin/sh");
    let out = Test::new()
        .script(&script(
            &sshd,
            &[&format!("{}@127.0.0.1:14", user.name)],
            r#"
let names = [];
for i in 0..14 {
    let n = `p${i}`;
    proc(n, #{ executor: "farm" }, |ctx| {
        let all = "touch started.$0; i=0; while [ $(ls | grep -c ^started) -lt 14 ]; do i=$((i+1)); [ $i -lt 400 ] || exit 9; sleep 0.05; done";
        let r = exec(["sh", "-c", all, ctx.name]);
        write_file(`${ctx.name}.err`, r.stderr);
    });
    names.push(n);
}
run(names);
"#,
        ))
        .run();
    out.ok();
    for i in 0..14 {
        assert_eq!(
            out.read(&format!("p{i}.err")),
            "",
            "p{i}\n{}",
            out.describe()
        );
    }
    // Two connections of 7 sessions each, not 1 + one per refused session.
    assert_eq!(sshd.logins(), 2, "{}", sshd.log());
}

#[test]
#[cfg_attr(prun_no_sshd, ignore = "needs root and sshd (openssh-server)")]
fn a_command_too_long_for_one_ssh_argument_is_named_briefly() {
    // 20,000 file names run here but not over ssh, where the whole remote command is one
    // argument (Linux: at most 128 KiB). The failure printed all 430 KB of it, and said
    // only "Argument list too long".
    let sshd = Sshd::start();
    let out = Test::new()
        .script(&script(
            &sshd,
            &["127.0.0.1"],
            r#"
let args = ["sh", "-c", "echo $# args"];
for i in 0..20000 { args.push(`file-number-${i}.txt`); }
proc("many", #{ executor: "farm", cmd: args });
run("many");
"#,
        ))
        .run();
    out.code(1);
    let line = out.proc_line("FAILED", "many");
    assert!(
        line.contains("for ssh host \"127.0.0.1\" once quoted for its shell")
            && line.contains("more bytes)")
            && line.len() < 2000,
        "{} bytes: {}",
        line.len(),
        &line[..line.len().min(2000)]
    );
}

#[test]
#[cfg_attr(prun_no_sshd, ignore = "needs root and sshd (openssh-server)")]
fn retries_go_to_the_hosts_that_answer() {
    let sshd = Sshd::start();
    // Nothing listens on 127.0.0.2: its commands fail at once, so its slot was always
    // the free one and took every retry (3 of 4 procs failed with 2 retries each). A
    // host whose connection failed now gets no commands while another host answers.
    let out = Test::new()
        .script(&script(
            &sshd,
            &["127.0.0.2", "127.0.0.1"],
            r#"
let names = [];
for i in 0..4 {
    proc(`p${i}`, #{ executor: "farm", retries: 2, shell: "sleep 0.3" });
    names.push(`p${i}`);
}
run(names);
"#,
        ))
        .run();
    out.ok().summary_is("prun: 4 succeeded");
    for i in 0..4 {
        assert!(
            out.proc_line("SUCCEEDED", &format!("p{i}"))
                .ends_with("on 127.0.0.1"),
            "{}",
            out.describe()
        );
    }
}

#[test]
#[cfg_attr(prun_no_sshd, ignore = "needs root and sshd (openssh-server)")]
fn a_host_name_that_would_be_an_option_of_ssh_never_runs_anything() {
    let sshd = Sshd::start();
    let out = Test::new()
        .script(&script(
            &sshd,
            &["-oProxyCommand=touch MARK"],
            "proc(\"a\", #{ executor: \"farm\", shell: \"echo hi\" });\nrun(\"a\");\n",
        ))
        .run();
    out.code(2)
        .err_has("executor \"farm\": \"-oProxyCommand=touch MARK\" is not a host name");
    // After a user name it is no option, and ssh refuses it as a host name.
    let out = Test::new()
        .script(&script(
            &sshd,
            &["me@-oProxyCommand=touch MARK"],
            "proc(\"a\", #{ executor: \"farm\", shell: \"echo hi\" });\nrun(\"a\");\n",
        ))
        .run();
    out.code(1);
    assert!(!out.exists("MARK"), "{}", out.describe());
    assert!(
        out.proc_line("FAILED", "a")
            .contains("ssh to host \"me@-oProxyCommand=touch MARK\" failed"),
        "{}",
        out.describe()
    );
}

#[test]
#[cfg_attr(prun_no_sshd, ignore = "needs root and sshd (openssh-server)")]
fn a_master_connection_that_does_not_answer_does_not_keep_prun_from_exiting() {
    // The master connection (`ssh -M`, a child of prun) is stopped: it never exits when
    // the run closes its input at the end, and prun waited for it for ever.
    let sshd = Sshd::start();
    let out = Test::new()
        .timeout(std::time::Duration::from_secs(30))
        .script(&script(
            &sshd,
            &["127.0.0.1"],
            r#"
proc("remote", #{ executor: "farm", cmd: ["true"] });
proc("stop", #{ deps: ["remote"], shell: "pgrep -P $PPID -x ssh > master.pid && kill -STOP $(cat master.pid)" });
run("stop");
"#,
        ))
        .run();
    out.ok();
    // Killed at the end of the run.
    let stopped = out.read("master.pid");
    assert!(!stopped.trim().is_empty(), "{}", out.describe());
    for pid in stopped.split_whitespace() {
        let pid = pid.parse().expect("a pid");
        crate::support::assert_gone(pid, "a stopped ssh", &out.describe());
    }
}

/// Runs commands as a user whose login shell (which reads the remote command line) is
/// `shell`: words each shell quotes its own way, an exit status, `cwd` and `env`, a
/// `cwd` missing on the host, and a timeout that ends the remote process group.
fn the_login_shell_does_not_change_the_command(shell: &str) {
    let sshd = Sshd::start();
    let user = sshd.user(shell);
    let home = user.home().display().to_string();
    std::fs::create_dir(user.home().join("sub dir")).unwrap();
    let secs = format!("8{}", sshd.port);
    let words = [
        "it's",
        "back\\slash",
        "two\\\\",
        "end\\",
        "a!b",
        "!!",
        "new\nline",
        "$HOME",
        "`id`",
        "%s %b \\c",
        "",
        "*",
        "semi;colon",
        "  spaces  ",
        "{a,b}",
        "~",
        "#hash",
        "\ttab",
        "é ü",
        // Longer than a word of csh can be.
        &"long".repeat(3000),
    ];
    let rhai_words: Vec<String> = words.iter().map(|w| format!("{w:?}")).collect();
    let value = "x 'y' \\ !z $HOME";
    let out = Test::new()
        .script(&script(
            &sshd,
            &[&format!("{}@127.0.0.1:5", user.name)],
            &format!(
                r#"
proc("words", #{{ executor: "farm" }}, |ctx| {{
    let r = exec(["printf", "[%s]\n", {words}]);
    write_file("words.txt", r.stdout);
}});
proc("five", #{{ executor: "farm", shell: "exit 5" }});
proc("here", #{{ executor: "farm", cwd: "{home}/sub dir", env: #{{ V: {value:?} }} }}, |ctx| {{
    let r = exec(["sh", "-c", "pwd; printf '%s' \"$V\""]);
    write_file("here.txt", r.stdout);
}});
proc("nowhere", #{{ executor: "farm", cwd: "{home}/missing", cmd: ["true"] }});
proc("slow", #{{ executor: "farm", timeout: "5s",
                 shell: "touch ~/running; sleep {secs} & sleep {secs}" }});
run(["words", "five", "here", "nowhere", "slow"]);
"#,
                words = rhai_words.join(", ")
            ),
        ))
        .run();
    out.code(1);
    let want: String = words.iter().map(|w| format!("[{w}]\n")).collect();
    assert_eq!(out.read("words.txt"), want, "{}", out.describe());
    assert_eq!(
        out.read("here.txt"),
        format!("{home}/sub dir\n{value}"),
        "{}",
        out.describe()
    );
    let five = out.proc_line("FAILED", "five");
    assert!(
        five.contains("exited with code 5"),
        "{five}\n{}",
        out.describe()
    );
    let nowhere = out.proc_line("FAILED", "nowhere");
    assert!(
        nowhere.contains(&format!(
            "working directory {home}/missing does not exist on ssh host \"{}@127.0.0.1\" (command: `true`)",
            user.name
        )),
        "{nowhere}\n{}",
        out.describe()
    );
    let slow = out.proc_line("FAILED", "slow");
    assert!(slow.contains("timed out"), "{slow}\n{}", out.describe());
    assert!(user.home().join("running").exists(), "{}", out.describe());
    assert_none_left(&format!("sleep {secs}"), &out);
}

#[test]
#[cfg_attr(prun_no_sshd, ignore = "needs root and sshd (openssh-server)")]
fn a_dash_login_shell_does_not_change_the_command() {
    the_login_shell_does_not_change_the_command("/usr/bin/dash");
}

#[test]
#[cfg_attr(
    any(prun_no_sshd, prun_no_shells),
    ignore = "needs root, sshd (openssh-server) and fish"
)]
fn a_fish_login_shell_does_not_change_the_command() {
    // fish reads `\\` and `\'` inside single quotes as escapes: an argument ending in a
    // backslash left the line unbalanced.
    the_login_shell_does_not_change_the_command("/usr/bin/fish");
}

#[test]
#[cfg_attr(
    any(prun_no_sshd, prun_no_shells),
    ignore = "needs root, sshd (openssh-server) and tcsh"
)]
fn a_tcsh_login_shell_does_not_change_the_command() {
    // csh shells refuse a newline inside single quotes ("Unmatched '"), expand `!` there,
    // and have no `export`: every command failed.
    the_login_shell_does_not_change_the_command("/usr/bin/tcsh");
}

#[test]
#[cfg_attr(
    any(prun_no_sshd, prun_no_shells),
    ignore = "needs root, sshd (openssh-server) and BSD csh (csh)"
)]
fn a_csh_login_shell_does_not_change_the_command() {
    // Also: BSD csh refuses words longer than about 8 KiB.
    the_login_shell_does_not_change_the_command("/usr/bin/bsd-csh");
}

#[test]
#[cfg_attr(prun_no_sshd, ignore = "needs root and sshd (openssh-server)")]
fn a_cwd_the_host_cannot_enter_is_named_not_read_as_the_commands_exit_code() {
    // The remote `cd` failed, and the proc was reported as its command exiting with
    // code 1, a command that never ran. Wherever its stderr goes (the proc's log, a
    // closure's capture, a file, /dev/null, the streamed output), the error names the directory
    // and the host, as a missing local `cwd` is named; a command that exits 1 itself
    // still does.
    let sshd = Sshd::start();
    let body = |dir: &str| {
        format!(
            r#"
proc("gone", #{{ executor: "farm", cwd: "{dir}/missing", cmd: ["true"] }});
proc("file", #{{ executor: "farm", cwd: "{dir}/plain.txt", cmd: ["true"] }});
proc("own", #{{ executor: "farm", cwd: "{dir}", shell: "echo on my own >&2; exit 1" }});
proc("closure", #{{ executor: "farm" }}, |ctx| {{
    exec(["true"], #{{ cwd: "{dir}/missing" }});
}});
proc("to_file", #{{ executor: "farm" }}, |ctx| {{
    exec(["true"], #{{ cwd: "{dir}/missing", stderr: "err.txt" }});
}});
proc("to_null", #{{ executor: "farm" }}, |ctx| {{
    exec(["true"], #{{ cwd: "{dir}/missing", stderr: "/dev/null" }});
}});
proc("own_to_null", #{{ executor: "farm" }}, |ctx| {{
    exec(["sh", "-c", "echo hid''den >&2; exit 1"], #{{ cwd: "{dir}", stderr: "/dev/null" }});
}});
run(["gone", "file", "own", "closure", "to_file", "to_null", "own_to_null"]);
"#
        )
    };
    for args in [&[][..], &["--output", "stream"][..]] {
        let test = Test::new().file("plain.txt", "").args(args);
        let dir = test.dir().display().to_string();
        let out = test
            .script(&script(&sshd, &["127.0.0.1"], &body(&dir)))
            .run();
        out.code(1);
        let missing = format!(
            "working directory {dir}/missing does not exist on ssh host \"127.0.0.1\" (command: `true`)"
        );
        for name in ["gone", "closure", "to_file", "to_null"] {
            let line = out.proc_line("FAILED", name);
            assert!(
                line.contains(&missing),
                "{args:?} {name}: {line}\n{}",
                out.describe()
            );
        }
        let file = out.proc_line("FAILED", "file");
        assert!(
            file.contains(&format!(
                "working directory {dir}/plain.txt is not a directory on ssh host \"127.0.0.1\""
            )),
            "{args:?}: {file}\n{}",
            out.describe()
        );
        for name in ["own", "own_to_null"] {
            let own = out.proc_line("FAILED", name);
            assert!(
                own.contains("exited with code 1"),
                "{args:?} {name}: {own}\n{}",
                out.describe()
            );
        }
        // What the command wrote to /dev/null is nowhere: not shown, not in the log.
        assert!(
            !out.stdout.contains("hidden") && !out.stderr.contains("hidden"),
            "{}",
            out.describe()
        );
    }
}

#[test]
#[cfg_attr(prun_no_sshd, ignore = "needs root and sshd (openssh-server)")]
fn a_tilde_in_identity_is_the_home_ssh_reads_not_the_one_home_names() {
    // Under `sudo -E`, HOME is the home of the user who ran sudo: prun read root's key
    // from there, where ssh itself (its config, its known hosts) and prun's state use
    // the home of root's passwd entry.
    let sshd = Sshd::start();
    let test = Test::new();
    let name = format!("prun-test-key-{}", std::process::id());
    let home = nix::unistd::User::from_uid(nix::unistd::Uid::current())
        .ok()
        .flatten()
        .expect("a passwd entry")
        .dir;
    assert!(!home.join(".ssh").join(&name).exists());
    let other_home = test.dir().join("other-home");
    std::fs::create_dir_all(other_home.join(".ssh")).expect("mkdir");
    let key = other_home.join(".ssh").join(&name);
    std::fs::copy(sshd.identity(), &key).expect("copy the key");
    std::fs::set_permissions(&key, std::os::unix::fs::PermissionsExt::from_mode(0o600))
        .expect("chmod");
    let out = test
        .env("HOME", &other_home.display().to_string())
        .script(&format!(
            r#"
set_options(#{{ executors: #{{ farm: #{{ kind: "ssh", hosts: ["127.0.0.1"], port: {}, identity: "~/.ssh/{name}",
    args: ["-o", "IdentitiesOnly=yes", "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR"] }} }} }});
proc("p", #{{ executor: "farm", cmd: ["true"] }});
run("p");
"#,
            sshd.port
        ))
        .run();
    out.code(1);
    let line = out.proc_line("FAILED", "p");
    assert!(
        line.contains("ssh to host \"127.0.0.1\" failed"),
        "{line}\n{}",
        out.describe()
    );
}

#[test]
#[cfg_attr(prun_no_sshd, ignore = "needs root and sshd (openssh-server)")]
fn a_missing_cwd_with_stderr_to_a_fifo_is_named_instead_of_hanging() {
    // Exit status 1 has prun read back the end of the command's stderr for the line
    // that says the directory could not be entered. Sent to a FIFO, that read opened
    // the FIFO, which waits for a writer: prun hung for good, and a SIGTERM did not end
    // it. A FIFO cannot be read back: prun looks at the directory after the command,
    // and a command that exits 1 itself in a directory that is there still does.
    let sshd = Sshd::start();
    let test = Test::new();
    let dir = test.dir().to_path_buf();
    let readers: Vec<_> = ["err.fifo", "own.fifo"]
        .into_iter()
        .map(|name| {
            let fifo = dir.join(name);
            let made = std::process::Command::new("mkfifo").arg(&fifo).status();
            assert!(made.unwrap().success());
            // The FIFO's reader, to its end of file (every writer gone).
            std::thread::spawn(move || std::fs::read_to_string(fifo).unwrap())
        })
        .collect();
    let out = test
        .script(&script(
            &sshd,
            &["127.0.0.1"],
            &format!(
                r#"
proc("fifo", #{{ executor: "farm" }}, |ctx| {{
    exec(["true"], #{{ cwd: "{dir}/missing", stderr: "err.fifo" }});
}});
proc("own", #{{ executor: "farm" }}, |ctx| {{
    exec(["sh", "-c", "echo mine >&2; exit 1"], #{{ cwd: "{dir}", stderr: "own.fifo" }});
}});
run(["fifo", "own"]);
"#,
                dir = dir.display()
            ),
        ))
        .run();
    out.code(1);
    let line = out.proc_line("FAILED", "fifo");
    assert!(
        line.contains(&format!(
            "working directory {}/missing does not exist on ssh host \"127.0.0.1\" (looked at after the command exited with code 1",
            dir.display()
        )),
        "{line}\n{}",
        out.describe()
    );
    let own = out.proc_line("FAILED", "own");
    assert!(
        own.contains("exited with code 1"),
        "{own}\n{}",
        out.describe()
    );
    let read: Vec<String> = readers.into_iter().map(|r| r.join().unwrap()).collect();
    assert!(
        read[0].contains("the working directory does not exist") && read[1] == "mine\n",
        "{read:?}\n{}",
        out.describe()
    );
}

#[test]
#[cfg_attr(prun_no_sshd, ignore = "needs root and sshd (openssh-server)")]
fn a_remote_command_ends_when_prun_is_killed() {
    // prun killed with SIGKILL: nothing of prun ends the local `ssh`, but the input prun
    // held for it closes, and the remote wrapper ends the command's group.
    let sshd = Sshd::start();
    let secs = format!("9{}", std::process::id() % 10000);
    let test = Test::new();
    let dir = test.dir().to_path_buf();
    let body = format!(
        "proc(\"far\", #{{ executor: \"farm\", cwd: \"{}\", shell: \"touch running; sleep {secs}\" }});\nrun(\"far\");\n",
        dir.display()
    );
    kill_prun_when_up(&dir, &script(&sshd, &["127.0.0.1"], &body), &["running"]);
    let left = crate::support::sshd::gone(&format!("sleep {secs}"));
    for p in &left {
        let pid = p.split(':').next().unwrap();
        let _ = std::process::Command::new("kill")
            .args(["-KILL", pid])
            .status();
    }
    assert!(left.is_empty(), "left on the host: {left:?}");
}

#[test]
#[cfg_attr(prun_no_sshd, ignore = "needs root and sshd (openssh-server)")]
fn a_killed_run_leaves_no_master_connection_and_the_next_run_removes_its_sockets_directory() {
    // prun killed with SIGKILL: its master connection (`ssh -M`) must end with the
    // commands, not `ControlPersist` later or never, and the private directory of its
    // socket (`$TMPDIR/prun-ssh-XXXXXX`), which only the run's end removed, is removed by
    // the next run of the script.
    let sshd = Sshd::start();
    let test = Test::new();
    let dir = test.dir().to_path_buf();
    let tmp = dir.join("tmp");
    let body = format!(
        "proc(\"a\", #{{ executor: \"farm\", cwd: \"{d}\", shell: \"touch a.up; sleep 300\" }});\n\
         proc(\"b\", #{{ executor: \"farm\", cwd: \"{d}\", shell: \"touch b.up; sleep 300\" }});\n\
         run([\"a\", \"b\"]);\n",
        d = dir.display()
    );
    let sockets = |tmp: &std::path::Path| -> Vec<String> {
        std::fs::read_dir(tmp)
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect()
    };
    kill_prun_when_up(
        &dir,
        &script(&sshd, &["127.0.0.1:2"], &body),
        &["a.up", "b.up"],
    );
    assert_eq!(sockets(&tmp).len(), 1, "{:?}", sockets(&tmp));
    let left = crate::support::sshd::gone(&tmp.join("prun-ssh-").display().to_string());
    assert!(left.is_empty(), "left running: {left:?}");
    std::fs::write(
        dir.join("main.rhai"),
        "proc(\"x\", #{ shell: \"true\" });\nrun(\"x\");\n",
    )
    .unwrap();
    let next = prun_in(&dir).output().unwrap();
    let stderr = String::from_utf8_lossy(&next.stderr);
    assert!(next.status.success(), "{stderr}");
    assert_eq!(sockets(&tmp), Vec::<String>::new(), "{stderr}");
    assert!(stderr.contains("prun-ssh-"), "{stderr}");
}

#[test]
#[cfg_attr(prun_no_sshd, ignore = "needs root and sshd (openssh-server)")]
fn an_allowed_program_runs_on_the_host_as_the_file_the_policy_checked() {
    // The allow list names `basename`, which this machine finds as /usr/bin/basename; the
    // host's own PATH (here set by the login shell) finds a `basename` of the user's
    // first. The
    // host must run the file the policy checked, not whatever its PATH finds.
    let sshd = Sshd::start();
    let tools = tempfile::Builder::new()
        .prefix("prun-impostor.")
        .tempdir()
        .unwrap();
    let bin = tools.path().join("bin");
    std::fs::create_dir(&bin).unwrap();
    let shell = tools.path().join("shell");
    std::fs::write(bin.join("basename"), "#!/bin/sh\necho impostor\n").unwrap();
    std::fs::write(
        &shell,
        format!(
            "#!/bin/sh\nPATH={}:$PATH\nexport PATH\nexec /bin/sh \"$@\"\n",
            bin.display()
        ),
    )
    .unwrap();
    for p in [tools.path(), &bin, &bin.join("basename"), &shell] {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let user = sshd.user(&shell.display().to_string());
    let out = Test::new()
        .script(&script(
            &sshd,
            &[&format!("{}@127.0.0.1", user.name)],
            r#"
proc("greet", #{ executor: "farm" }, |ctx| {
    write_file("got.txt", exec(["basename", "/x/hello"]).stdout);
});
run("greet");
"#,
        ))
        .args(&["--allow", "basename"])
        .run();
    out.ok();
    assert_eq!(out.read("got.txt"), "hello\n", "{}", out.describe());
}

#[test]
#[cfg_attr(prun_no_sshd, ignore = "needs root and sshd (openssh-server)")]
fn what_a_remote_command_leaves_in_its_group_ends_with_it_as_a_local_ones_does() {
    // The command's shell exits at once and leaves a `sleep` in the session's group that
    // holds its output: sshd kept the session open, and the wrapper had already ended
    // the reader of its input, so the proc ran until its timeout, which closed that
    // input to no effect, and the `sleep` ran on after prun returned. A local command's
    // leftovers in its group are ended when it exits; so are a remote one's.
    let sshd = Sshd::start();
    let secs = format!("5{}", sshd.port);
    let out = Test::new()
        .script(&script(
            &sshd,
            &["127.0.0.1"],
            &format!(
                r#"
proc("left", #{{ executor: "farm", timeout: "30s", shell: "sleep {secs} & echo held" }});
run("left");
"#
            ),
        ))
        .args(&["--output", "stream"])
        .run();
    out.ok().out_has("held");
    assert_none_left(&format!("sleep {secs}"), &out);
}

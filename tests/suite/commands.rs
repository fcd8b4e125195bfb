//! `shell` and `exec`, and command bodies (`cmd`, `shell`).

use crate::support::Test;

/// A command's `kill_grace` longer than an `Instant` can reach is a grace that never
/// ends: a process the command left behind that ignores SIGTERM ends on its own. Ending
/// the leftovers added it to the time now, which overflowed (a panic). The command ends
/// once the leftover ignores SIGTERM (it says so through a FIFO): ended before, the
/// leftover was killed before its `trap` ran, and nothing survived.
#[test]
fn a_kill_grace_past_what_an_instant_holds_never_ends() {
    let out = Test::new()
        .script(
            r#"proc("p", |ctx| exec(["sh", "-c", "mkfifo ready; (trap '' TERM; echo > ready; sleep 0.3; touch survived) & read r < ready; exit 0"],
                                   #{ kill_grace: "18446744073709551615s" }));
               run("p");"#,
        )
        .args(&["--no-live"])
        .run();
    out.ok().proc_state("SUCCEEDED", "p");
    assert!(out.exists("survived"), "{}", out.describe());
}

#[test]
fn shell_returns_code_stdout_stderr() {
    let out = Test::new()
        .script(
            r#"
let r = shell("echo out; echo err >&2");
print("code=" + r.code + " ok=" + r.ok);
print("stdout=[" + r.stdout + "]");
print("stderr=[" + r.stderr + "]");
print("duration is float: " + (type_of(r.duration) == "f64"));
let e = exec(["printf", "%s-%s", "a b", "c"]);
print("exec=[" + e.stdout + "]");
"#,
        )
        .run();
    out.ok()
        .line("code=0 ok=true")
        .out_has("stdout=[out\n]")
        .out_has("stderr=[err\n]")
        .line("duration is float: true")
        .line("exec=[a b-c]");
}

#[test]
fn non_zero_exit_throws_naming_the_command_and_code() {
    let out = Test::new()
        .script(
            r#"
try {
    shell("echo bad thing >&2; exit 3");
} catch (e) {
    print("caught: " + e);
}
try {
    exec(["sh", "-c", "exit 7", "my-arg"]);
} catch (e) {
    print("caught exec: " + e);
}
"#,
        )
        .run();
    out.ok()
        .out_has("exited with code 3")
        .out_has("bad thing")
        .out_has("exited with code 7");
    let caught = out
        .stdout
        .lines()
        .find(|l| l.starts_with("caught: "))
        .unwrap();
    assert!(caught.contains("exit 3"), "{caught}");
    let caught = out
        .stdout
        .lines()
        .find(|l| l.starts_with("caught exec: "))
        .unwrap();
    assert!(caught.contains("my-arg"), "{caught}");
}

#[test]
fn uncaught_command_failure_at_top_level_is_a_script_error() {
    let out = Test::new().script("\nshell(\"exit 5\");\n").run();
    out.code(2)
        .err_has("main.rhai:2:1")
        .err_has("exited with code 5");
}

#[test]
fn command_failure_inside_a_proc_fails_it() {
    let out = Test::new()
        .script(
            r#"
proc("p", |ctx| { shell("echo from p; exit 6"); "never" });
run("p");
"#,
        )
        .run();
    out.code(1);
    let p = out.proc_line("FAILED", "p");
    assert!(p.contains("exited with code 6"), "{p}");
    assert!(p.contains("exit 6"), "{p}");
}

#[test]
fn ok_codes_and_check_false() {
    let out = Test::new()
        .script(
            r#"
let r = exec(["sh", "-c", "exit 8"], #{ ok_codes: [0, 8] });
print("ok_codes: code=" + r.code + " ok=" + r.ok);
let r = shell("exit 5", #{ check: false });
print("check false: code=" + r.code + " ok=" + r.ok);
try {
    shell("exit 8", #{ ok_codes: [0, 1] });
    print("no throw");
} catch (e) {
    print("threw: " + e);
}
"#,
        )
        .run();
    out.ok()
        .line("ok_codes: code=8 ok=true")
        .line("check false: code=5 ok=false")
        .out_lacks("no throw")
        .out_has("threw: ")
        .out_has("exited with code 8");
}

#[test]
fn missing_program_is_named() {
    let out = Test::new()
        .script(
            r#"
try {
    exec(["prun-no-such-program-xyz", "arg"]);
} catch (e) {
    print("caught: " + e);
}
proc("body", #{ cmd: ["prun-no-such-program-abc"] });
run("body");
"#,
        )
        .run();
    out.code(1).out_has("prun-no-such-program-xyz");
    let caught = out
        .stdout
        .lines()
        .find(|l| l.starts_with("caught: "))
        .unwrap();
    assert!(caught.contains("prun-no-such-program-xyz"), "{caught}");
    let body = out.proc_line("FAILED", "body");
    assert!(body.contains("prun-no-such-program-abc"), "{body}");
}

#[test]
fn env_and_cwd_options() {
    let out = Test::new()
        .file("sub/in_sub", "")
        .file("other/in_other", "")
        .script(
            r#"
let top = shell("pwd").stdout;
top.trim();
let r = exec(["sh", "-c", "echo $FOO; ls"], #{ env: #{ FOO: "bar" }, cwd: "sub" });
print("exec: " + r.stdout.split("\n"));
proc("closure", #{ env: #{ FOO: "p", BAR: "b" }, cwd: "sub" }, |ctx| {
    let a = shell("echo $FOO$BAR; ls").stdout;
    let b = shell("echo $FOO$BAR; ls", #{ env: #{ FOO: "o" }, cwd: top + "/other" }).stdout;
    print("closure: " + (a + b).split("\n"));
});
proc("cmdbody", #{ env: #{ FOO: "c" }, cwd: "sub",
    cmd: ["sh", "-c", "echo $FOO > ../cmdbody.out; ls >> ../cmdbody.out"] });
proc("shellbody", #{ env: #{ FOO: "s" }, cwd: "other", shell: "echo $FOO > ../shellbody.out; ls >> ../shellbody.out" });
run(["closure", "cmdbody", "shellbody"]);
"#,
        )
        .run();
    out.ok()
        .line(r#"exec: ["bar", "in_sub", ""]"#)
        .line(r#"closure: ["pb", "in_sub", "ob", "in_other", ""]"#);
    assert_eq!(out.read("cmdbody.out"), "c\nin_sub\n");
    assert_eq!(out.read("shellbody.out"), "s\nin_other\n");
}

/// A variable name with `=` would set another variable (`"A=B": "x"` is `A=B=x`, `A`
/// being `B=x`) and an empty one would be dropped: both fail the command, naming the
/// name, as a NUL byte in a value does (or in an argument, naming which); in a proc's
/// own `env` option they are definition errors (`options.rs`). A `cwd` that is
/// a file says so. An empty program name is said to be one, not a program missing from
/// `PATH`.
#[test]
fn bad_env_names_and_a_cwd_that_is_a_file_fail_naming_them() {
    let out = Test::new()
        .file("afile", "")
        .script(
            r#"
proc("nul", #{ env: #{ Z: "a\x00b" }, cmd: ["true"] });
proc("clos", |ctx| { shell("echo ran > clos.out", #{ env: #{ "PATH=/tmp": "x" } }) });
proc("file", #{ cwd: "afile", cmd: ["true"] });
proc("argnul", #{ cmd: ["echo", "x", "a\x00"] });
proc("noprog", #{ cmd: ["", "x"] });
run(["nul", "clos", "file", "argnul", "noprog"]);
"#,
        )
        .run();
    out.code(1);
    for (name, says) in [
        (
            "nul",
            "the value of environment variable Z holds a NUL byte",
        ),
        (
            "clos",
            r#"environment variable name "PATH=/tmp" is not valid"#,
        ),
        ("file", "afile is not a directory"),
        ("argnul", "argument 2 holds a NUL byte"),
        (
            "noprog",
            "the program name is an empty string (command: `'' x`)",
        ),
    ] {
        let line = out.proc_line("FAILED", name);
        assert!(line.contains(says), "{name}: {line}\n{}", out.describe());
    }
    assert!(
        !out.exists("clos.out"),
        "the command ran\n{}",
        out.describe()
    );
}

#[test]
fn exec_timeout_option() {
    let out = Test::new()
        .script(
            r#"
try {
    exec(["sh", "-c", "echo $$ > pid; exec sleep 300"], #{ timeout: "300ms" });
} catch (e) {
    print("caught: " + e);
}
"#,
        )
        .run();
    out.ok().out_has("caught: ").out_has("timed out");
    crate::support::assert_gone(
        crate::support::pid_in(&out, "pid"),
        "the timed-out command",
        &out.describe(),
    );
}

#[test]
fn failed_command_body_shows_the_last_lines_of_its_log() {
    let out = Test::new()
        .script(
            r#"
proc("noisy", #{ cmd: ["sh", "-c", "i=1; while [ $i -le 40 ]; do echo line$i; i=$((i+1)); done; exit 4"] });
proc("quiet", #{ shell: "echo only line; exit 2" });
run(["noisy", "quiet"]);
"#,
        )
        .run();
    out.code(1)
        .line("           | line40")
        .no_line("           | line1")
        .line("           | only line");
    let noisy = out.proc_line("FAILED", "noisy");
    assert!(noisy.contains("exited with code 4"), "{noisy}");
    let quiet = out.proc_line("FAILED", "quiet");
    assert!(quiet.contains("exited with code 2"), "{quiet}");
    // The log lives under XDG_STATE_HOME, here inside the test's directory.
    let state = out.path("state");
    let header = format!("           last lines of {}", state.display());
    assert!(
        out.stdout.lines().any(|l| l.starts_with(&header)),
        "log is not under {}\n{}",
        state.display(),
        out.describe()
    );
}

#[test]
fn an_env_value_that_is_not_text_is_an_error_not_its_rendering() {
    // `[1, 2]` reached the command as the text "[1, 2]"; a closure as "Fn(anon$...)".
    Test::new()
        .script(r#"exec(["sh", "-c", "echo $A"], #{ env: #{ A: [1, 2] } });"#)
        .run()
        .code(2)
        .err_has("main.rhai:1:1: option `env`: the value of A must be a string, a number or a bool, not an array");
    Test::new()
        .script(r#"proc("p", #{ env: #{ A: || 1 }, shell: "echo $A" });"#)
        .run()
        .code(2)
        .err_has(
            "proc \"p\": `env` value of A must be a string, a number or a bool, not a closure",
        );
    Test::new()
        .script(
            r#"print(exec(["sh", "-c", "echo \"$A-$B\""], #{ env: #{ A: 1, B: true } }).stdout);"#,
        )
        .run()
        .ok()
        .line("1-true");
}

#[test]
fn an_env_value_of_nothing_is_an_error_naming_the_key_not_an_empty_value() {
    // `()` (an unset env(...), a missing map key) set the variable to "" silently.
    let nothing = "must be a string, a number or a bool, not nothing (`()`)";
    for (script, message) in [
        (
            r#"proc("a", #{ env: #{ X: () }, shell: "echo [$X]" });"#,
            "proc \"a\": `env` value of X",
        ),
        (
            r#"proto("b::[v]", #{ env: #{ X: env("PRUN_TEST_SURELY_UNSET") }, shell: "echo [$X]" });"#,
            "proto \"b::[v]\": `env` value of X",
        ),
        (
            r#"exec(["sh", "-c", "echo [$X]"], #{ env: #{ X: #{}.missing } });"#,
            "option `env`: the value of X",
        ),
        (
            r#"shell("echo [$X]", #{ env: #{ X: () } });"#,
            "option `env`: the value of X",
        ),
        (
            r#"pipe([["sh", "-c", "echo [$X]"]], #{ env: #{ X: () } });"#,
            "option `env`: the value of X",
        ),
    ] {
        Test::new()
            .script(script)
            .run()
            .code(2)
            .err_has(&format!("main.rhai:1:1: {message} {nothing}"))
            .out_lacks("[]");
    }
    Test::new()
        .script(r#"proc("a", || shell("echo [$X]", #{ env: #{ X: () } }));"#)
        .args(&["a"])
        .run()
        .code(1)
        .out_has(&format!(
            "main.rhai:1:14: option `env`: the value of X {nothing}"
        ));
}

#[test]
fn an_argument_that_is_not_text_is_an_error_not_an_empty_or_rendered_word() {
    // `()` (an unset env(...)) became an empty argument, an array its rendering "[1, 2]".
    Test::new()
        .script(r#"exec(["echo", "a", env("PRUN_TEST_SURELY_UNSET")]);"#)
        .run()
        .code(2)
        .err_has("exec: argument 3 must be a string, a number or a bool, not nothing (`()`)");
    Test::new()
        .script(r#"proc("p", #{ cmd: ["echo", [1, 2]] });"#)
        .run()
        .code(2)
        .err_has("proc \"p\": `cmd` argument 2 must be a string, a number or a bool, not an array");
    Test::new()
        .script(r#"pipe([["echo", #{}], ["cat"]]);"#)
        .run()
        .code(2)
        .err_has("pipe: stage 1: argument 2 must be a string, a number or a bool, not a map");
    Test::new()
        .script(r#"print(exec(["echo", 1, 2.5, true]).stdout);"#)
        .run()
        .ok()
        .line("1 2.5 true");
}

#[test]
fn a_zero_timeout_is_an_error_not_a_race() {
    // `timeout: 0` killed the command at once, unless it ended first.
    Test::new()
        .script(r#"exec(["true"], #{ timeout: "0s" });"#)
        .run()
        .code(2)
        .err_has("option `timeout`: must be more than 0 (leave it out for no time limit)");
}

/// `execve` says only `Permission denied` for a directory and for a file without execute
/// permission, found by path or on `PATH`: the error says which, naming the file (a
/// script's cron mail should say what to fix).
#[test]
fn a_program_that_is_a_directory_or_not_executable_says_so() {
    let out = Test::new()
        .file("adir/keep", "")
        .file("script.sh", "echo ran > ran.out\n")
        .file("bin/tool", "#!/bin/sh\necho ran > ran.out\n")
        .file("bin2/tool2/keep", "")
        .script(
            r#"
let here = shell("pwd").stdout;
here.trim();
exec(["chmod", "644", "script.sh", "bin/tool"]);
fn t(argv, opts) {
    try { exec(argv, opts); print("NO ERROR"); } catch (e) { print(`caught: ${e}`); }
}
t(["./adir"], #{});
t(["./script.sh", "x"], #{});
t(["tool"], #{ env: #{ PATH: `${here}/bin` } });
t(["tool2"], #{ env: #{ PATH: `${here}/bin2` } });
proc("body", #{ cmd: ["./script.sh"] });
run("body");
"#,
        )
        .run();
    out.code(1);
    let dir = out.dir.path().display().to_string();
    for says in [
        r#"caught: program "./adir" is not executable: it is a directory (command: `./adir`)"#,
        r#"caught: program "./script.sh" is not executable: it has mode 0644 (command: `./script.sh x`)"#,
        &format!(
            r#"caught: program "tool" is not executable: {dir}/bin/tool on PATH has mode 0644 (command: `tool`)"#
        ),
        &format!(
            r#"caught: program "tool2" is not executable: {dir}/bin2/tool2 on PATH is a directory (command: `tool2`)"#
        ),
    ] {
        out.out_has(says);
    }
    let body = out.proc_line("FAILED", "body");
    assert!(
        body.contains(r#"program "./script.sh" is not executable: it has mode 0644"#),
        "{body}"
    );
    assert!(!out.exists("ran.out"), "{}", out.describe());
}

/// An exit code is 0 to 255: `ok_codes: [256]` could never match (the command would
/// fail whatever it did), and an entry that is not an integer is named.
#[test]
fn ok_codes_that_are_no_exit_code_are_errors_naming_them() {
    let out = Test::new()
        .script(
            r#"
for codes in [[0, 256], [-1], [0, "8"]] {
    try { exec(["true"], #{ ok_codes: codes }); print("NO ERROR"); } catch (e) { print(`caught: ${e}`); }
}
"#,
        )
        .run();
    out.ok()
        .no_line("NO ERROR")
        .line("caught: option `ok_codes`: 256 is not an exit code (0 to 255)")
        .line("caught: option `ok_codes`: -1 is not an exit code (0 to 255)")
        .line(r#"caught: option `ok_codes` must be an array of integers, not one holding "8""#);
}

/// A working directory the user may not enter is named, as a missing one is: not a
/// bare `Permission denied` that reads as if the program were at fault.
#[test]
#[cfg_attr(prun_no_root, ignore = "needs root (to run prun as another user)")]
fn a_working_directory_it_may_not_enter_is_named() {
    use std::os::unix::fs::PermissionsExt;
    let t = Test::new()
        .script(
            r#"
try { exec(["true"], #{ cwd: "closed" }); print("NO ERROR"); } catch (e) { print(`caught: ${e}`); }
proc("body", #{ cwd: "closed", shell: "true" });
run("body");
"#,
        )
        .by_another_user();
    let closed = t.dir().join("closed");
    std::fs::create_dir(&closed).unwrap();
    std::fs::set_permissions(&closed, std::fs::Permissions::from_mode(0o700)).unwrap();
    let out = t.run();
    out.code(1).out_has(
        "caught: working directory closed cannot be entered: Permission denied (command: `true`)",
    );
    let body = out.proc_line("FAILED", "body");
    assert!(
        body.contains("working directory closed cannot be entered: Permission denied"),
        "{body}"
    );
}

/// The stderr lines a command's error quotes are cut to a readable length: one line of
/// megabytes (a minified JSON dump) made a megabytes-long error, printed whole in the
/// failure report and kept in the run's history. The capture's note is not one of them.
#[test]
fn the_stderr_lines_of_an_error_are_cut_to_a_readable_length() {
    let out = Test::new()
        .script(
            r#"
proc("p", || shell("head -c 5000000 /dev/zero | tr '\\0' x >&2; echo >&2; echo 'last words' >&2; exit 1"));
run("p");
"#,
        )
        .run();
    out.code(1);
    let line = out.proc_line("FAILED", "p");
    assert!(
        out.stdout.len() < 20_000,
        "{} bytes of output",
        out.stdout.len()
    );
    assert!(line.contains("stderr ends with:"), "{line}");
    assert!(
        out.stdout.contains("  | last words\n"),
        "{}",
        out.describe()
    );
    let cut = out
        .stdout
        .lines()
        .find(|l| l.contains("  | xxx"))
        .unwrap_or_default();
    assert!(
        cut.ends_with(" more bytes)") && cut.contains("xxx… ("),
        "{cut}"
    );
    assert!(
        !out.stdout.contains("| [prun: the first"),
        "{}",
        &out.stdout[..3000.min(out.stdout.len())]
    );
}

/// The kernel's `Argument list too long` says neither which limit nor by how much: one
/// argument (or shell string) over 128 KiB, or all of them over `ARG_MAX`, is named with
/// its size.
#[test]
fn an_argument_list_too_long_says_which_limit_and_by_how_much() {
    let out = Test::new()
        .script(
            r#"
let kib = "y";
for i in 0..10 { kib += kib; }
let big = kib;
for i in 0..8 { big += big; }
let many = ["true"];
for i in 0..4096 { many.push(kib); }
for f in [|| exec(["echo", "a", big]), || shell(big), || exec(many)] {
    try { f.call(); print("NO ERROR"); } catch (e) { print(`caught: ${e.sub_string(0, 160)}`); }
}
"#,
        )
        .run();
    out.ok().out_lacks("NO ERROR");
    for says in [
        "caught: argument 2 is 262144 bytes long, more than the 131072 the kernel takes in one argument (pass it in a file or on stdin) (command: `echo a yyy",
        "caught: the shell string is 262144 bytes long, more than the 131072 the kernel takes in one argument (pass it in a file or on stdin) (command: `yyy",
        "caught: its arguments and environment take ",
    ] {
        out.out_has(says);
    }
    out.out_has("bytes, more than the kernel's limit of ");
}

/// A variable `--deny-env` hides is still in prun's own environment, as the kernel keeps
/// it (`/proc/<prun>/environ`), and a command of the same user could read it there, or
/// attach to prun and read its memory. So a run that hides variables makes prun
/// non-dumpable: only root may read them. (Root's commands still can: root reads any
/// process's memory.)
#[test]
#[cfg_attr(prun_no_root, ignore = "needs root (to run prun as another user)")]
fn a_hidden_variable_cannot_be_read_from_pruns_environment_by_its_commands() {
    let out = Test::new()
        .script(
            r#"
proc("p", #{ shell: "tr '\\0' '\\n' < /proc/$PPID/environ > seen.txt; echo $PPID > ppid.txt; true" });
run("p");
"#,
        )
        .by_another_user()
        .env("PRUN_TEST_TOKEN", "s3cr3t")
        .before(&["--deny-env", "PRUN_TEST_TOKEN"])
        .run();
    out.ok();
    assert!(out.exists("ppid.txt"), "{}", out.describe());
    let seen = std::fs::read_to_string(out.path("seen.txt")).unwrap_or_default();
    assert!(
        !seen.contains("s3cr3t"),
        "a command read the hidden variable from prun's environment:\n{seen}\n{}",
        out.describe()
    );
}

//! The command layer's input and output: results and exit codes, error messages, missing
//! programs, streaming to files, the capture bound, stdin, `env` and `cwd`, pipes, the
//! per-proc and script logs, `-v` and `quiet`.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::{Output, Test, assert_gone};

/// The log directory of the run (`state/prun/main-<hash>/logs/<run>/`); there must be
/// exactly one.
pub(crate) fn run_dir(out: &Output) -> PathBuf {
    let only = |dir: &Path| -> PathBuf {
        let entries: Vec<PathBuf> = std::fs::read_dir(dir)
            .unwrap_or_else(|e| panic!("read {}: {e}\n{}", dir.display(), out.describe()))
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.is_dir())
            .collect();
        assert_eq!(
            entries.len(),
            1,
            "expected one directory in {}: {entries:?}\n{}",
            dir.display(),
            out.describe()
        );
        entries.into_iter().next().unwrap()
    };
    let script = only(&out.path("state/prun"));
    let name = script.file_name().unwrap().to_string_lossy().into_owned();
    assert!(name.starts_with("main-"), "state directory {name}");
    only(&script.join("logs"))
}

/// A log file of the run, read whole.
pub(crate) fn read_log(out: &Output, file: &str) -> String {
    let p = run_dir(out).join(file);
    std::fs::read_to_string(&p)
        .unwrap_or_else(|e| panic!("read {}: {e}\n{}", p.display(), out.describe()))
}

/// A log with its times replaced: `# started T` and `(Ns)` at the end of prun's own `#`
/// lines. The replaced parts are checked to look like a timestamp and a duration.
fn normalize(log: &str) -> String {
    let mut out = String::new();
    for line in log.lines() {
        if let Some(t) = line.strip_prefix("# started ") {
            assert!(
                t.starts_with("20") && t.ends_with('Z') && t.contains('T'),
                "not a timestamp: {line:?}\n{log}"
            );
            out.push_str("# started T\n");
            continue;
        }
        if line.starts_with("# ")
            && line.ends_with("s)")
            && let Some((head, secs)) = line.rsplit_once(" (")
        {
            let secs = secs.trim_end_matches("s)");
            assert!(
                secs.parse::<f64>().is_ok(),
                "not a duration: {line:?}\n{log}"
            );
            out.push_str(head);
            out.push_str(" (Ns)\n");
            continue;
        }
        out.push_str(line);
        out.push('\n');
    }
    out
}

/// The stdout line starting with `prefix`, and the lines after it up to the next line that
/// starts with `end` (used for multi-line error messages printed by a script).
fn block(out: &Output, prefix: &str) -> String {
    let start = out
        .stdout
        .find(prefix)
        .unwrap_or_else(|| panic!("stdout lacks {prefix:?}\n{}", out.describe()));
    let rest = &out.stdout[start..];
    let end = rest.find("\n<end>").unwrap_or(rest.len());
    rest[..end].to_string()
}

/// What `cmd` prints when pasted into `sh -c` in the test's directory.
fn pasted(out: &crate::support::Output, cmd: &str) -> String {
    let run = Command::new("sh")
        .arg("-c")
        .arg(cmd)
        .current_dir(out.dir.path())
        .output()
        .expect("run sh");
    String::from_utf8_lossy(&run.stdout).into_owned()
}

#[test]
fn ok_codes_check_false_and_the_result_map() {
    let out = Test::new()
        .script(
            r#"
let r = exec(["sh", "-c", "echo o; echo e >&2; exit 8"], #{ ok_codes: [0, 8] });
print("ok_codes: code=" + r.code + " ok=" + r.ok + " out=" + r.stdout.len() + " err=" + r.stderr.len()
    + " signal? " + ("signal" in r) + " codes? " + ("codes" in r) + " " + type_of(r.duration));
let r = exec(["sh", "-c", "exit 8"], #{ check: false });
print("check false: code=" + r.code + " ok=" + r.ok);
let r = shell("exit 0", #{ ok_codes: [3], check: false });
print("0 not in ok_codes: code=" + r.code + " ok=" + r.ok);
let r = shell("kill -9 $$", #{ check: false });
print("killed: code=" + r.code + " signal=" + r.signal + " ok=" + r.ok);
try { shell("kill -9 $$"); } catch (e) { print("killed error: " + e); print("<end>"); }
"#,
        )
        .run();
    out.ok()
        .line("ok_codes: code=8 ok=true out=2 err=2 signal? false codes? false f64")
        .line("check false: code=8 ok=false")
        .line("0 not in ok_codes: code=0 ok=false")
        .line("killed: code= signal=9 ok=false");
    let e = block(&out, "killed error: ");
    assert!(
        e.contains("command `kill -9 $$` was killed by SIGKILL"),
        "{e}"
    );
}

#[test]
fn a_failing_command_names_itself_its_code_its_stderr_and_the_log() {
    let out = Test::new()
        .script(
            r#"
try {
    exec(["sh", "-c", "for i in 1 2 3 4 5 6 7 8 9; do echo errline$i >&2; done; exit 8"]);
} catch (e) { print("E: " + e); print("<end>"); }
"#,
        )
        .run();
    out.ok();
    let e = block(&out, "E: ");
    assert!(
        e.starts_with(
            "E: command `sh -c 'for i in 1 2 3 4 5 6 7 8 9; do echo errline$i >&2; done; exit 8'` exited with code 8"
        ),
        "{e}"
    );
    // The last lines of stderr are quoted, the first ones are not.
    assert!(e.contains("| errline9") && e.contains("| errline8"), "{e}");
    assert!(!e.contains("errline1\n"), "{e}");
    // It points at the log, which has every line.
    let log_line = e
        .lines()
        .find_map(|l| l.trim().strip_prefix("log: "))
        .unwrap_or_else(|| panic!("no log line in {e}"));
    let log = Path::new(log_line);
    assert_eq!(log, run_dir(&out).join(".script.log"), "{e}");
    let text = std::fs::read_to_string(log).unwrap();
    for i in 1..=9 {
        assert!(text.contains(&format!("errline{i}\n")), "{text}");
    }
    assert!(text.contains("# exited with code 8 ("), "{text}");
}

#[test]
fn the_command_in_an_error_can_be_pasted_into_a_shell() {
    // printf exits 0, which is not an ok code here: the error quotes the argv.
    let out = Test::new()
        .script(
            r#"
try {
    exec(["printf", "%s|", "a b", "it's", "$HOME", "x\"y", "*", "tab	in", "semi;colon"], #{ ok_codes: [1] });
} catch (e) { print("E: " + e); print("<end>"); }
"#,
        )
        .run();
    out.ok();
    let e = block(&out, "E: command `");
    let cmd = e
        .strip_prefix("E: command `")
        .and_then(|r| r.split_once("` exited with code 0"))
        .map(|(c, _)| c)
        .unwrap_or_else(|| panic!("unexpected message {e}"));
    let printed = pasted(&out, cmd);
    assert_eq!(
        printed, "a b|it's|$HOME|x\"y|*|tab\tin|semi;colon|",
        "pasting {cmd:?} does not run the same argv"
    );
}

#[test]
fn a_pipe_in_an_error_can_be_pasted_into_a_shell() {
    // A shell-string stage with a `;` in it: pasted as shown, the command must still pipe
    // both of its lines into `wc -l`.
    let out = Test::new()
        .script(
            r#"
let r = pipe(["echo a; echo b", ["wc", "-l"]]);
print("pipe says [" + r.stdout + "]");
try {
    pipe(["echo a; echo b", ["wc", "-l"]], #{ ok_codes: [1] });
} catch (e) { print("E: " + e); print("<end>"); }
"#,
        )
        .run();
    out.ok().out_has("pipe says [2\n]");
    let e = block(&out, "E: command `");
    let cmd = e
        .strip_prefix("E: command `")
        .and_then(|r| r.split_once("` "))
        .map(|(c, _)| c)
        .unwrap_or_else(|| panic!("unexpected message {e}"));
    let printed = pasted(&out, cmd);
    assert_eq!(
        printed.trim(),
        "2",
        "pasting the command named in the error ({cmd:?}) does not run the same pipe\n{e}"
    );
}

#[test]
fn a_missing_program_at_the_top_level_is_a_script_error_naming_it() {
    let out = Test::new()
        .script("\nexec([\"prun-no-such-program-top\", \"arg\"]);\nprint(\"went on\");\n")
        .run();
    out.code(2)
        .err_has("main.rhai:2:1")
        .err_has("prun-no-such-program-top")
        .err_has("not found")
        .out_lacks("went on");
}

#[test]
fn a_missing_program_inside_a_proc_fails_it_naming_the_program() {
    let out = Test::new()
        .script(
            r#"
proc("clos", |ctx| { exec(["prun-no-such-program-clos"]); 1 });
proc("body", #{ cmd: ["prun-no-such-program-body", "x"] });
proc("stage", |ctx| { pipe([["sh", "-c", "echo $$ > stage1.pid; exec sleep 300"], ["prun-no-such-program-stage"]]); 1 });
run(["clos", "body", "stage"]);
"#,
        )
        .run();
    out.code(1);
    for (p, prog) in [
        ("clos", "prun-no-such-program-clos"),
        ("body", "prun-no-such-program-body"),
        ("stage", "prun-no-such-program-stage"),
    ] {
        let l = out.proc_line("FAILED", p);
        assert!(l.contains(prog) && l.contains("not found"), "{l}");
    }
    // The first stage, already started when the second failed to start, did not survive.
    // (It may have been terminated before it wrote its pid, or while writing it.)
    let pid = std::fs::read_to_string(out.path("stage1.pid")).unwrap_or_default();
    if let Ok(pid) = pid.trim().parse() {
        assert_gone(
            pid,
            "the first stage of a pipe whose second stage is missing",
            &out.describe(),
        );
    }
}

#[test]
fn stdout_to_a_file_holds_every_byte_of_100_mb() {
    let out = Test::new()
        .script(
            r#"
let t = tempdir();
write_file("tmp.path", t);
let r = exec(["head", "-c", "100000000", "/dev/zero"], #{ stdout: t + "/big.bin" });
print("exec: ok=" + r.ok + " stdout=[" + r.stdout + "]");
print("exec size=[" + exec(["stat", "-c", "%s", t + "/big.bin"]).stdout + "]");
exec(["cmp", "-n", "100000000", t + "/big.bin", "/dev/zero"]);
let r = pipe([["head", "-c", "100000000", "/dev/zero"], ["tr", "\\0", "x"], ["cat"]], #{ stdout: t + "/pipe.bin" });
print("pipe: ok=" + r.ok + " codes=" + r.codes + " stdout=[" + r.stdout + "]");
print("pipe size=[" + exec(["stat", "-c", "%s", t + "/pipe.bin"]).stdout + "]");
print("pipe xs=[" + shell("tr -d x < " + t + "/pipe.bin | wc -c").stdout + "]");
"#,
        )
        .run();
    out.ok()
        .line("exec: ok=true stdout=[]")
        .out_has("exec size=[100000000\n]")
        .line("pipe: ok=true codes=[0, 0, 0] stdout=[]")
        .out_has("pipe size=[100000000\n]")
        .out_has("pipe xs=[0\n]");
    // The data went to the files, not through prun into its log.
    let log = read_log(&out, ".script.log");
    assert!(log.len() < 10_000, "the script log has {} bytes", log.len());
    assert!(log.contains("# stdout goes to "), "{log}");
    let tmp = out.read("tmp.path");
    assert!(
        !Path::new(&tmp).exists(),
        "tempdir {tmp} was not removed\n{}",
        out.describe()
    );
}

#[test]
fn a_wrong_command_option_value_is_shown_as_given() {
    // A negative capture bound read "must be a bool or a byte count, not an integer".
    for (opts, says) in [
        (
            "#{ capture: -1 }",
            "option `capture` must be a bool or a byte count (0 or more), not -1",
        ),
        (
            r#"#{ capture: "big" }"#,
            r#"option `capture` must be a bool or a byte count, not "big""#,
        ),
        // A key of `stdin`'s map other than `file` was ignored (`#{ file: "a", fiel: "b" }`
        // read `a`).
        (
            r#"#{ stdin: #{ file: "a", fiel: "b" } }"#,
            "option `stdin`: unknown key `fiel` (its map takes only `file`)",
        ),
    ] {
        Test::new()
            .script(&format!(r#"exec(["true"], {opts});"#))
            .run()
            .code(2)
            .err_has(says);
    }
}

#[test]
fn capture_bound_keeps_the_tail_and_the_log_keeps_everything() {
    let out = Test::new()
        .script(
            r#"
proc("p", |ctx| {
    let r = shell("seq 1 20000", #{ capture: 1000 });
    write_file("bounded", r.stdout);
    let r = shell("seq 1 20000 >&2", #{ capture: 1000 });
    write_file("bounded_err", r.stderr);
    let r = shell("seq 1 3", #{ capture: false });
    write_file("uncaptured", "[" + r.stdout + "]");
    let r = shell("seq 1 20000");
    write_file("default", r.stdout);
});
run("p");
"#,
        )
        .run();
    out.ok();
    let seq: String = (1..=20000).map(|i| format!("{i}\n")).collect();
    assert_eq!(seq.len(), 108_894);
    let tail = &seq[seq.len() - 1000..];
    for f in ["bounded", "bounded_err"] {
        let got = out.read(f);
        let (first, rest) = got.split_once('\n').unwrap();
        assert!(
            first.contains("107894") && first.contains("dropped"),
            "{f}: the capture does not say what it dropped: {first:?}"
        );
        assert_eq!(rest, tail, "{f}: not the tail");
    }
    assert_eq!(out.read("uncaptured"), "[]");
    assert_eq!(out.read("default"), seq);
    // The proc's log has every byte of each stream.
    let log = read_log(&out, "p.log");
    assert_eq!(
        log.matches(seq.as_str()).count(),
        3,
        "the log does not hold the whole output three times"
    );
}

/// A capture bound that falls inside a character keeps the tail from the next whole
/// character (not a U+FFFD for the half that was cut), and one dropped byte is "byte".
#[test]
fn a_capture_bound_inside_a_character_keeps_whole_characters() {
    let out = Test::new()
        .script(
            r#"
print(to_json(shell("printf 'ééééé'", #{ capture: 5 }).stdout));
print(to_json(shell("printf 'abc'", #{ capture: 2 }).stdout));
"#,
        )
        .run();
    out.ok()
        .line(r#""[prun: the first 6 bytes were dropped from this capture; the log has everything]\néé""#)
        .line(r#""[prun: the first byte was dropped from this capture; the log has everything]\nbc""#);
}

/// `stdout: f` truncates `f` before the command starts: with `stdin: #{ file: f }` the
/// command would read nothing and the file would be lost (`sort < f > f`). That, and a
/// directory as `stdin`, are errors naming the file, and the file is left as it was.
#[test]
fn stdin_from_the_stdout_file_or_a_directory_is_an_error_naming_it() {
    let out = Test::new()
        .file("data.txt", "precious\n")
        .file("dir/keep", "")
        .script(
            r#"
for o in [#{ stdout: "data.txt" }, #{ stderr: "./data.txt" }, #{}] {
    o.stdin = #{ file: "data.txt" };
    try { exec(["sort"], o); print("NO ERROR"); } catch (e) { print(`caught: ${e}`); }
}
try { exec(["cat"], #{ stdin: #{ file: "dir" } }); print("NO ERROR"); } catch (e) { print(`caught: ${e}`); }
exec(["cat"], #{ stdin: #{ file: "/dev/null" }, stdout: "/dev/null" });
"#,
        )
        .run();
    out.ok()
        .line("caught: option `stdout`: data.txt is also the `stdin` file, which it would empty before the command reads it")
        .line("caught: option `stderr`: ./data.txt is also the `stdin` file, which it would empty before the command reads it")
        .line(r#"caught: option `stdin`: dir is a directory, not a file"#);
    assert_eq!(
        out.stdout.matches("NO ERROR").count(),
        1,
        "{}",
        out.describe()
    );
    assert_eq!(out.read("data.txt"), "precious\n");
}

/// A `stdin`, `stdout` or `stderr` file that cannot be opened is named with the command,
/// in the C library's words: it read `failed to open stdin file nofile: No such file or
/// directory (os error 2)`, naming no command.
#[test]
fn a_stream_file_that_cannot_be_opened_is_named_with_the_command() {
    let out = Test::new()
        .script(
            r#"
for o in [#{ stdin: #{ file: "nofile" } }, #{ stdout: "nodir/out.txt" }, #{ stderr: "nodir/err.txt" }] {
    try { exec(["echo", "hi"], o); print("NO ERROR"); } catch (e) { print(`caught: ${e}`); }
}
"#,
        )
        .run();
    out.ok()
        .out_lacks("NO ERROR")
        .line("caught: stdin file nofile cannot be opened: No such file or directory (command: `echo hi`)")
        .line("caught: stdout file nodir/out.txt cannot be opened: No such file or directory (command: `echo hi`)")
        .line("caught: stderr file nodir/err.txt cannot be opened: No such file or directory (command: `echo hi`)");
}

/// A failed command whose stderr went to a file has no stderr lines to quote: its error
/// says where they went (it named only the log, which does not have them).
#[test]
fn a_failed_command_whose_stderr_went_to_a_file_names_that_file() {
    let out = Test::new()
        .script(
            r#"
try { exec(["sh", "-c", "echo oops >&2; exit 3"], #{ stderr: "err.txt" }); } catch (e) { print(`caught: ${e}`); }
"#,
        )
        .run();
    out.ok()
        .out_has("caught: command `sh -c 'echo oops >&2; exit 3'` exited with code 3; its stderr went to err.txt\n  log: ");
    assert_eq!(out.read("err.txt"), "oops\n");
}

#[test]
fn stdin_from_a_string_or_a_file() {
    let out = Test::new()
        .file("in.txt", "from a file\n")
        .script(
            r#"
print("string=[" + exec(["tr", "a-z", "A-Z"], #{ stdin: "hello\n" }).stdout + "]");
print("file=[" + exec(["tr", "a-z", "A-Z"], #{ stdin: #{ file: "in.txt" } }).stdout + "]");
print("default=[" + exec(["cat"]).stdout + "]");
print("pipe=[" + pipe([["tr", "a-z", "A-Z"], ["sed", "s/B/-/"]], #{ stdin: "abc\n" }).stdout + "]");
let chunk = "0123456789";
for i in 0..14 { chunk += chunk; }
print("big=[" + exec(["wc", "-c"], #{ stdin: chunk }).stdout + "]");
print("unread ok=" + exec(["true"], #{ stdin: chunk }).ok);
try { exec(["cat"], #{ stdin: #{ file: "no-such-input.txt" } }); } catch (e) { print("E: " + e); print("<end>"); }
proc("p", |ctx| { write_file("p.out", shell("tr a-z A-Z", #{ stdin: #{ file: "in.txt" } }).stdout); });
run("p");
"#,
        )
        .run();
    out.ok()
        .out_has("string=[HELLO\n]")
        .out_has("file=[FROM A FILE\n]")
        .line("default=[]")
        .out_has("pipe=[A-C\n]")
        .out_has("big=[163840\n]")
        .line("unread ok=true");
    let e = block(&out, "E: ");
    assert!(e.contains("no-such-input.txt"), "{e}");
    assert_eq!(out.read("p.out"), "FROM A FILE\n");
}

#[test]
fn env_and_cwd_reach_every_stage() {
    let out = Test::new()
        .file("sub/marker", "")
        .script(
            r#"
let r = pipe([["sh", "-c", "echo $FOO; ls; echo ${XDG_STATE_HOME:+inherited}"],
              ["sh", "-c", "while read l; do echo \"$FOO:$l\"; done; ls"]],
             #{ env: #{ FOO: "bar" }, cwd: "sub" });
print("pipe=" + r.stdout.split("\n"));
let r = shell("echo $FOO; pwd", #{ env: #{ FOO: 42 }, cwd: "sub" });
print("shell=" + r.stdout.split("\n"));
"#,
        )
        .run();
    out.ok()
        .line(r#"pipe=["bar:bar", "bar:marker", "bar:inherited", "marker", ""]"#);
    let shell = out
        .stdout
        .lines()
        .find(|l| l.starts_with("shell="))
        .unwrap();
    assert!(
        shell.starts_with(r#"shell=["42", ""#) && shell.ends_with(r#"/sub", ""]"#),
        "{shell}"
    );
}

/// A pipe stage that cannot start names the pipe and which stage, as one that fails does:
/// the error named the stage's program alone (`(command: `tool`)`), which a pipe of
/// several stages running the same program left ambiguous.
#[test]
fn a_pipe_stage_that_cannot_start_is_named_with_its_pipe() {
    let out = Test::new()
        .script(
            r#"
try {
    pipe([["printf", "x"], ["prun-no-such-tool", "-a"], ["cat"]]);
    print("no throw");
} catch (e) { print("E: " + e); print("<end>"); }
"#,
        )
        .run();
    out.ok().out_lacks("no throw");
    let e = block(&out, "E: ");
    assert!(
        e.contains(r#"program "prun-no-such-tool" not found on PATH"#)
            && e.contains(
                "(command: `printf x | prun-no-such-tool -a | cat`, stage 2 of 3: `prun-no-such-tool -a`)"
            ),
        "{e}"
    );
}

/// A FIFO as a command's `stdin` file, or as its `stdout` or `stderr` file with no reader,
/// is an error naming it: prun opened it itself, and the open waited for the FIFO's other
/// end for good, past the command's timeout, Ctrl-C and SIGTERM (a shell's `cmd < fifo`
/// waits in the command, where those reach it). A FIFO that a process reads still takes
/// a command's output (`ssh::a_missing_cwd_with_stderr_to_a_fifo_is_named_instead_of_hanging`).
#[test]
fn a_fifo_as_a_commands_stdin_or_stdout_file_is_an_error_not_a_hang() {
    let out = Test::new()
        .script(
            r#"
exec(["mkfifo", "fifo"]);
for opts in [#{ stdin: #{ file: "fifo" } }, #{ stdout: "fifo" }, #{ stderr: "fifo" }] {
    opts.timeout = "2s";
    try { exec(["cat"], opts); print("no throw"); } catch (e) { print(`caught: ${e}`); }
}
"#,
        )
        .timeout(std::time::Duration::from_secs(20))
        .run();
    out.ok()
        .out_lacks("no throw")
        .out_has("caught: option `stdin`: fifo is a FIFO, whose writer prun would wait for");
    for what in ["stdout", "stderr"] {
        out.out_has(&format!(
            "caught: {what} file fifo cannot be opened: it is a FIFO that no process reads"
        ));
    }
}

#[test]
fn pipe_passes_data_through_os_pipes_and_fails_like_pipefail() {
    let out = Test::new()
        .script(
            r#"
let r = pipe([["printf", "a\nb\nab\nc\n"], ["grep", "a"], ["wc", "-l"]]);
print("three=[" + r.stdout + "] codes=" + r.codes + " code=" + r.code);
let r = pipe([["sh", "-c", "readlink /proc/self/fd/1"], ["sh", "-c", "cat; readlink /proc/self/fd/0"]]);
print("fds=" + r.stdout.split("\n"));
let r = pipe(["printf 'q\nw\n'", ["sort", "-r"]]);
print("shell stage=[" + r.stdout + "]");
try {
    pipe([["printf", "x\n"], ["sh", "-c", "cat >/dev/null; echo mid-err >&2; exit 3"], ["cat"]]);
    print("no throw");
} catch (e) { print("E: " + e); print("<end>"); }
let r = pipe([["printf", "x\n"], ["sh", "-c", "cat >/dev/null; exit 3"], ["cat"]], #{ check: false });
print("check false: codes=" + r.codes + " code=" + r.code + " ok=" + r.ok);
try {
    pipe([["sh", "-c", "exit 4"], ["cat"]]);
    print("no throw");
} catch (e) { print("E1: " + e); print("<end>"); }
"#,
        )
        .run();
    out.ok()
        .out_lacks("no throw")
        .out_has("three=[2\n] codes=[0, 0, 0] code=0")
        .out_has("shell stage=[w\nq\n]")
        .line("check false: codes=[0, 3, 0] code=3 ok=false");
    let fds = out.stdout.lines().find(|l| l.starts_with("fds=")).unwrap();
    let fds: Vec<&str> = fds
        .trim_start_matches("fds=[")
        .trim_end_matches(", \"\"]")
        .split(", ")
        .collect();
    assert!(
        fds.len() == 2 && fds[0] == fds[1] && fds[0].starts_with("\"pipe:["),
        "stage 1's stdout and stage 2's stdin are not one OS pipe: {fds:?}"
    );
    let e = block(&out, "E: ");
    assert!(
        e.contains(
            "stage 2 of 3 (`sh -c 'cat >/dev/null; echo mid-err >&2; exit 3'`) exited with code 3"
        ),
        "{e}"
    );
    assert!(e.contains("| mid-err") && e.contains("log: "), "{e}");
    let e = block(&out, "E1: ");
    assert!(
        e.contains("stage 1 of 2 (`sh -c 'exit 4'`) exited with code 4"),
        "{e}"
    );
}

#[test]
fn commands_are_logged_with_a_header_and_their_exit_status() {
    let out = Test::new()
        .script(
            r#"
shell("echo top-out");
shell("exit 3", #{ check: false });
proc("p", |ctx| {
    shell("echo in-p");
    ctx.log("note from p");
    exec(["sh", "-c", "printf no-newline >&2"]);
});
proc("body", #{ cmd: ["sh", "-c", "echo body-out; echo body-err >&2"] });
proc("silent", #{ cmd: ["true"] });
proc("silent_fail", #{ cmd: ["false"] });
proc("clos_fail", |ctx| { shell("echo before failing; exit 5"); });
run(["p", "body", "silent", "silent_fail", "clos_fail"]);
"#,
        )
        .run();
    out.code(1);
    assert_eq!(
        normalize(&read_log(&out, ".script.log")),
        "$ echo top-out\n# started T\ntop-out\n# exited with code 0 (Ns)\n\
         $ exit 3\n# started T\n# exited with code 3 (Ns)\n"
    );
    assert_eq!(
        normalize(&read_log(&out, "p.log")),
        "$ echo in-p\n# started T\nin-p\n# exited with code 0 (Ns)\n\
         note from p\n\
         $ sh -c 'printf no-newline >&2'\n# started T\nno-newline\n# exited with code 0 (Ns)\n"
    );
    assert_eq!(
        normalize(&read_log(&out, "body.log")),
        "$ sh -c 'echo body-out; echo body-err >&2'\n# started T\nbody-out\nbody-err\n# exited with code 0 (Ns)\n"
    );
    let dir = run_dir(&out);
    assert!(
        !dir.join("silent.log").exists(),
        "a silent successful command body left a log\n{}",
        out.describe()
    );
    // A failed proc's report points at its log.
    for p in ["silent_fail", "clos_fail"] {
        let log = dir.join(format!("{p}.log"));
        assert!(log.exists(), "no log for {p}\n{}", out.describe());
        let pointer = format!("last lines of {}:", log.display());
        assert!(
            out.stdout.contains(&pointer),
            "the report of {p} does not point at {}\n{}",
            log.display(),
            out.describe()
        );
    }
    assert_eq!(
        normalize(&read_log(&out, "silent_fail.log")),
        "$ false\n# started T\n# exited with code 1 (Ns)\n"
    );
    assert!(read_log(&out, "clos_fail.log").contains("before failing\n# exited with code 5 ("));
}

#[test]
fn verbose_prints_commands_and_quiet_hides_them_and_the_stderr_tail() {
    let out = Test::new()
        .args(&["-v"])
        .script(
            r#"
shell("echo shown");
shell("echo hidden-cmd", #{ quiet: true });
proc("p", |ctx| { exec(["echo", "in p"]); });
run("p");
wait();
try { shell("echo secret-tail >&2; exit 4", #{ quiet: true }); } catch (e) { print("Q: " + e); print("<end>"); }
try { shell("echo loud-tail >&2; exit 4"); } catch (e) { print("L: " + e); print("<end>"); }
"#,
        )
        .run();
    out.ok()
        .line("           $ echo shown")
        .line("           p: $ echo 'in p'")
        .line("           $ echo loud-tail >&2; exit 4")
        .out_lacks("$ echo hidden-cmd")
        .out_lacks("$ echo secret-tail");
    let q = block(&out, "Q: ");
    assert!(
        q.contains("command `echo secret-tail >&2; exit 4` exited with code 4")
            && q.contains("log: "),
        "{q}"
    );
    assert!(
        !q.contains("secret-tail\n") && !q.contains("| secret-tail"),
        "{q}"
    );
    let l = block(&out, "L: ");
    assert!(l.contains("| loud-tail"), "{l}");
    // quiet hides the output from messages, not from the log.
    let log = read_log(&out, ".script.log");
    assert!(
        log.contains("$ echo hidden-cmd\n") && log.contains("secret-tail\n"),
        "{log}"
    );
}

#[test]
fn without_verbose_no_command_lines() {
    let out = Test::new().script("shell(\"echo shown\");\n").run();
    out.ok().out_lacks("$ echo shown");
}

/// A stage killed by SIGPIPE because a later stage stopped reading (`head`) does not fail
/// the pipe when every later stage succeeded; when a later stage fails, the pipe fails.
#[test]
fn a_stage_killed_by_sigpipe_under_a_reader_that_is_done_does_not_fail_the_pipe() {
    let out = Test::new()
        .script(
            r#"
let r = pipe([["yes"], ["cat"], ["head", "-1"]]);
print("head: ok=" + r.ok + " code=" + r.code + " out=[" + r.stdout + "]");
let r = pipe([["yes"], ["sh", "-c", "head -1 >/dev/null; exit 4"]], #{ check: false });
print("failing reader: ok=" + r.ok + " code=" + r.code);
"#,
        )
        .run();
    out.ok()
        .line("head: ok=true code=0 out=[y")
        .line("failing reader: ok=false code=4");
}

#[test]
fn ctx_log_writes_any_value_as_print_shows_it() {
    // `ctx.log(5)` failed the proc: "function log(ctx, an integer) does not exist".
    let out = Test::new()
        .script(
            r#"set_options(#{ log_dir: "logs" });
proc("p", |ctx| { ctx.log(5); ctx.log(#{ a: 1 }); ctx.log("text"); 1 });
run("p");"#,
        )
        .run();
    out.ok();
    let logs: Vec<_> = std::fs::read_dir(out.path("logs"))
        .expect("log dir")
        .flatten()
        .collect();
    let run_dir = logs.first().expect("a run directory").path();
    let log = std::fs::read_to_string(run_dir.join("p.log")).expect("p.log");
    assert!(log.contains("5\n#{\"a\": 1}\ntext\n"), "{log}");
}

#[test]
fn a_script_without_a_shebang_line_is_named_with_what_to_do() {
    // `Exec format error (os error 8)` said nothing of why: a shell runs such a script
    // with `sh`, `execve` does not. With a `cwd` (started by std, whose `execvp` runs it
    // with `/bin/sh`) it ran and succeeded.
    let out = Test::new()
        .file("plain.sh", "echo ran >> ran.txt\n")
        .script(
            r#"exec(["chmod", "+x", "plain.sh"]);
proc("p", #{ cmd: ["./plain.sh"] });
proc("in_cwd", #{ cmd: ["./plain.sh"], cwd: "." });
run(["p", "in_cwd"]);"#,
        )
        .run();
    out.code(1);
    for name in ["p", "in_cwd"] {
        let l = out.proc_line("FAILED", name);
        assert!(
            l.contains(r#"program "./plain.sh" cannot be executed"#) && l.contains("`#!` line"),
            "{l}"
        );
    }
    assert!(!out.path("ran.txt").exists(), "{}", out.describe());
}

#[test]
fn a_program_name_holding_its_arguments_says_how_to_give_them() {
    // `cmd: ["echo hi"]` said only that no program "echo hi" is on PATH.
    let out = Test::new()
        .script(
            r#"proc("a", #{ cmd: ["echo hi"] });
run("a");"#,
        )
        .run();
    out.code(1);
    let l = out.proc_line("FAILED", "a");
    assert!(
        l.contains(r#"program "echo hi" not found on PATH="#)
            && l.contains(
                r#"separate words (cmd: ["echo", "hi"]), and a command line goes in shell: "...""#
            ),
        "{l}\n{}",
        out.describe()
    );
}

#[test]
fn a_program_not_found_is_named_with_the_path_searched_or_what_is_missing() {
    // Each read `not found on PATH`: cron's short PATH went unnamed, and so did a
    // missing path or a missing `#!` interpreter, which were not looked up on PATH.
    let out = Test::new()
        .file("old.py", "#!/prun/no/python4\nprint(1)\n")
        .script(
            r#"exec(["chmod", "+x", "old.py"]);
proc("on_path", #{ env: #{ PATH: "/prun/none:/prun/other" }, cmd: ["prun-no-such-tool"] });
proc("a_path", #{ cmd: ["/prun/no/such/tool", "x"] });
proc("interpreter", #{ cmd: ["./old.py"] });
proc("required", |ctx| require("prun-no-such-tool"));
run(["on_path", "a_path", "interpreter", "required"]);"#,
        )
        .env("PATH", "/usr/bin:/bin")
        .run();
    out.code(1);
    for (p, want) in [
        (
            "on_path",
            r#"program "prun-no-such-tool" not found on PATH=/prun/none:/prun/other (command: `prun-no-such-tool`)"#,
        ),
        (
            "a_path",
            r#"program "/prun/no/such/tool" does not exist (command:"#,
        ),
        (
            "interpreter",
            r#"program "./old.py" cannot be started: ./old.py names the interpreter "/prun/no/python4" on its `#!` line, which does not exist"#,
        ),
        (
            "required",
            r#"required tool "prun-no-such-tool" not found on PATH=/usr/bin:/bin"#,
        ),
    ] {
        let l = out.proc_line("FAILED", p);
        assert!(l.contains(want), "{l}\n{}", out.describe());
    }
    // A PATH the policy hides is not shown.
    let out = Test::new()
        .script(
            r#"proc("hidden", #{ cmd: ["prun-no-such-tool"] });
proc("required", |ctx| require("prun-no-such-tool"));
run(["hidden", "required"]);"#,
        )
        .env("PATH", "/usr/bin:/prun/secret")
        .before(&["--deny-env", "PATH"])
        .run();
    out.code(1).out_lacks("/prun/secret");
    let l = out.proc_line("FAILED", "hidden");
    assert!(
        l.contains("not found: the policy hides PATH from commands (--deny-env)"),
        "{l}"
    );
}

#[test]
fn a_program_on_path_that_cannot_start_ends_the_search_with_or_without_a_cwd() {
    // `execvp` goes on to the next directory of PATH when the file it found names a
    // missing `#!` interpreter: a command with a `cwd` (started by the standard library)
    // ran bin2/tool, another program than the one `which` and `--allow` find, while one
    // without a `cwd` failed on bin/tool.
    let out = Test::new()
        .file("bin/tool", "#!/prun/no/interpreter\n")
        .file("bin2/tool", "#!/bin/sh\ntouch ran-bin2\n")
        .script(
            r#"exec(["chmod", "+x", "bin/tool", "bin2/tool"]);
proc("here", #{ env: #{ PATH: "bin:bin2" }, cmd: ["tool"] });
proc("cwd", #{ cwd: ".", env: #{ PATH: "bin:bin2" }, cmd: ["tool"] });
run(["here", "cwd"]);"#,
        )
        .run();
    out.code(1);
    for p in ["here", "cwd"] {
        let l = out.proc_line("FAILED", p);
        assert!(
            l.contains(r#"program "tool" cannot be started: bin/tool names the interpreter "/prun/no/interpreter" on its `#!` line"#),
            "{l}\n{}",
            out.describe()
        );
    }
    assert!(!out.path("ran-bin2").exists(), "{}", out.describe());
}

#[test]
fn a_directory_of_path_the_user_may_not_search_is_named() {
    // `execvp` says `EACCES` when a directory of PATH cannot be searched (it may hold
    // the program): the error read `not found on PATH=...`, as if it were in none.
    let locked = tempfile::tempdir().expect("a temp dir");
    let tool = locked.path().join("prun-locked-tool");
    std::fs::write(&tool, "#!/bin/sh\n").expect("write the tool");
    std::fs::set_permissions(&tool, std::os::unix::fs::PermissionsExt::from_mode(0o755))
        .expect("chmod");
    std::fs::set_permissions(
        locked.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o700),
    )
    .expect("chmod");
    let dir = locked.path().display();
    let out = Test::new()
        .by_another_user()
        .script(&format!(
            r#"proc("a", #{{ env: #{{ PATH: "{dir}:/usr/bin:/bin" }}, cmd: ["prun-locked-tool"] }});
run("a");"#
        ))
        .run();
    out.code(1);
    let l = out.proc_line("FAILED", "a");
    assert!(
        l.contains(&format!(
            r#"program "prun-locked-tool" cannot be looked for: {dir} on PATH may not be searched by this user"#
        )),
        "{l}\n{}",
        out.describe()
    );
}

#[test]
fn a_script_with_windows_line_endings_is_named_as_such() {
    // Its `#!` line ends in a carriage return, which the kernel takes as part of the
    // interpreter's name: the error named "/bin/sh", which does exist.
    let out = Test::new()
        .file("crlf.sh", "#!/bin/sh\r\necho hi\r\n")
        .script(
            r#"exec(["chmod", "+x", "crlf.sh"]);
proc("crlf", #{ cmd: ["./crlf.sh"] });
run("crlf");"#,
        )
        .run();
    out.code(1);
    let l = out.proc_line("FAILED", "crlf");
    assert!(
        l.contains(r#"./crlf.sh names the interpreter "/bin/sh\r" on its `#!` line, which does not exist: the script has Windows line endings (CRLF)"#),
        "{l}\n{}",
        out.describe()
    );
}

#[test]
fn an_empty_path_or_an_empty_ok_codes_is_an_error_naming_the_option() {
    // An empty path read `failed to open stdout file : No such file or directory`, and
    // `ok_codes: []` made every command fail with `command `true` exited with code 0`.
    for (opts, message) in [
        (
            "cwd: \"\"",
            "option `cwd` must be a directory path, not an empty string",
        ),
        (
            "stdout: \"\"",
            "option `stdout` must be a file path, not an empty string",
        ),
        (
            "stderr: \"\"",
            "option `stderr` must be a file path, not an empty string",
        ),
        (
            "stdin: #{ file: \"\" }",
            "option `stdin` must be a file path, not an empty string",
        ),
        (
            "ok_codes: []",
            "option `ok_codes` must list at least one exit code",
        ),
    ] {
        Test::new()
            .script(&format!("let x = 1;\nexec([\"true\"], #{{ {opts} }});\n"))
            .run()
            .code(2)
            .err_has(&format!("main.rhai:2:1: {message}"));
    }
}

/// A command run with `capture: false` keeps nothing apart: its two streams share one
/// pipe into the log, which has its lines in the order written, as a `cmd` body's has
/// (with the streams captured, each is read through a pipe of its own). A failure quotes
/// the last lines of that output.
#[test]
fn an_uncaptured_commands_log_keeps_the_order_its_streams_were_written_in() {
    let alternate = "for i in $(seq 1 300); do echo out$i; echo err$i >&2; done";
    let out = Test::new()
        .script(&format!(
            r#"
proc("p", |ctx| {{
    let r = shell("{alternate}", #{{ capture: false }});
    write_file("uncaptured", "[" + r.stdout + r.stderr + "]");
}});
run("p");
wait();
try {{
    exec(["sh", "-c", "echo last-out; echo last-err >&2; exit 3"], #{{ capture: false }});
}} catch (e) {{ print("E: " + e); print("<end>"); }}
"#
        ))
        .run();
    out.ok();
    assert_eq!(out.read("uncaptured"), "[]");
    let written: String = (1..=300).map(|i| format!("out{i}\nerr{i}\n")).collect();
    let log = read_log(&out, "p.log");
    assert!(
        log.contains(&written),
        "the log is not in the order written:\n{log}"
    );
    let e = block(&out, "E: ");
    assert!(
        e.contains("exited with code 3; its output ends with:\n  | last-out\n  | last-err"),
        "{e}"
    );
}

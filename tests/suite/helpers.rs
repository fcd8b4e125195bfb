//! The script helpers: `which`, `require`, `quote`, `glob`, `env`, files, JSON, `sleep`,
//! `now`, and the `log_*` functions.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::support::Test;

/// The one file named `name` under `dir` (searched recursively).
fn find_file(dir: &Path, name: &str) -> Option<PathBuf> {
    for entry in std::fs::read_dir(dir).ok()?.flatten() {
        let p = entry.path();
        if p.is_dir() {
            if let Some(found) = find_file(&p, name) {
                return Some(found);
            }
        } else if p.file_name().is_some_and(|n| n == name) {
            return Some(p);
        }
    }
    None
}

#[test]
fn which_finds_tools_and_gives_unit_for_missing_ones() {
    let out = Test::new()
        .script(
            r#"
let sh = which("sh");
print("sh is " + sh);
print("missing is " + type_of(which("prun-no-such-tool")));
print("direct is " + which(sh));
print("not executable is " + type_of(which("./main.rhai")));
require("sh");
require("sh", "cat");
require(["sh", "cat"]);
print("required");
"#,
        )
        .run();
    out.ok()
        .line("missing is ()")
        .line("not executable is ()")
        .line("required");
    let sh = out
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("sh is "))
        .unwrap();
    assert!(
        sh.starts_with('/') && sh.ends_with("/sh"),
        "{}",
        out.describe()
    );
    out.line(&format!("direct is {sh}"));
}

/// One `require` names every tool that stops the script at once: the missing ones and the
/// paths that are no program (it named only the missing ones, and the user learnt of the
/// path on the next run).
#[test]
fn require_names_missing_tools_and_paths_that_are_no_program_together() {
    let out = Test::new()
        .script(r#"require("sh", "prun-missing-a", "./data.txt", ["./dir", "prun-missing-b"]);"#)
        .file("data.txt", "not a program\n")
        .file("dir/x", "")
        .run();
    out.code(2)
        .err_has(r#"required tools "prun-missing-a", "prun-missing-b" not found on PATH"#)
        .err_has(r#"required tools "./data.txt", "./dir" are not files you may execute"#);
}

/// `read_file` of a file that is not UTF-8 text says so and where, rather than the
/// reader's `stream did not contain valid UTF-8`.
#[test]
fn read_file_of_text_that_is_not_utf8_says_where() {
    let t = Test::new().script(
        r#"try { read_file("bin.dat"); print("NO ERROR"); } catch (e) { print(`caught: ${e}`); }"#,
    );
    std::fs::write(t.dir().join("bin.dat"), b"ok \xff\xfe bad\n").unwrap();
    let out = t.run();
    out.ok()
        .out_lacks("NO ERROR")
        .out_has(r#"caught: read_file: "bin.dat" ("#)
        .out_has(") is not UTF-8 text: byte 4 is 0xff");
}

/// `env(name)` of a value that is not UTF-8 is an error naming the variable, as `glob` is
/// for such a file name: a script string cannot hold it, and the lossy text (`a\u{fffd}b`)
/// named another file to the commands it was handed to.
#[test]
fn env_of_a_value_that_is_not_utf8_is_an_error_naming_it() {
    use std::os::unix::ffi::OsStrExt;
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("main.rhai"),
        r#"print(`ok: ${env("PRUN_TEXT")}`);
for v in ["PRUN_BYTES", "PRUN_UNSET"] {
    try { print(`${v}: ${env(v, "fallback")}`); } catch (e) { print(`caught: ${e}`); }
}"#,
    )
    .expect("script");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_prun"))
        .arg("main.rhai")
        .current_dir(dir.path())
        .env("XDG_STATE_HOME", dir.path().join("state"))
        .env("PRUN_TEXT", "plain")
        .env("PRUN_BYTES", std::ffi::OsStr::from_bytes(b"a\xffb"))
        .env_remove("PRUN_UNSET")
        .output()
        .expect("run prun");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{out:?}");
    for line in [
        "ok: plain",
        "caught: env: the value of PRUN_BYTES is not UTF-8 (byte 2 is 0xff): a script string cannot hold it",
        "PRUN_UNSET: fallback",
    ] {
        assert!(
            stdout.lines().any(|l| l == line),
            "no line {line:?} in\n{stdout}"
        );
    }
}

/// An empty entry of a proc's `PATH` (`/usr/bin::/bin`) is the working directory, for its
/// commands as for `execvp`: `which` gave the bare name (`tool`), which is no path (a
/// command given it searches `PATH` again, and a file function looks for it elsewhere).
/// It gives `./tool`, or the absolute path under the proc's `cwd`.
#[test]
fn which_names_a_tool_found_through_an_empty_path_entry_by_a_path() {
    let out = Test::new()
        .script(
            r#"
exec(["chmod", "755", "tool", "sub/tool"]);
proc("here", #{ env: #{ PATH: "/usr/bin::/bin" } }, |ctx| {
    print(`here: ${which("tool")} ${exec([which("tool")], #{ quiet: true }).stdout}`);
});
proc("sub", #{ env: #{ PATH: "/usr/bin::/bin" }, cwd: "sub" }, |ctx| {
    print(`sub: ${which("tool")} ${exec(["tool"], #{ quiet: true }).stdout}`);
});
run("here");
run("sub");
"#,
        )
        .file("tool", "#!/bin/sh\necho top-tool\n")
        .file("sub/tool", "#!/bin/sh\necho sub-tool\n")
        .run();
    let dir = out.dir.path().display().to_string();
    out.ok()
        .line("here: ./tool top-tool")
        .line(&format!("sub: {dir}/sub/tool sub-tool"));
}

#[test]
fn require_of_a_missing_tool_is_a_script_error_naming_it() {
    let out = Test::new()
        .script("\nrequire(\"sh\", \"prun-no-such-tool\");\nprint(\"after\");\n")
        .run();
    out.code(2)
        .err_has("main.rhai:2:1")
        .err_has(r#"required tool "prun-no-such-tool" not found on PATH"#)
        .out_lacks("after");

    let out = Test::new()
        .script(r#"require(["prun-missing-a", "sh", "prun-missing-b"]);"#)
        .run();
    out.code(2)
        .err_has(r#"required tools "prun-missing-a", "prun-missing-b" not found on PATH"#);
}

#[test]
fn quoted_words_survive_sh() {
    let out = Test::new()
        .script(
            r#"
let words = ["plain", "a b", "it's", "$HOME", "", "`id`", "\"q\"", "*", "semi;colon", "new\nline"];
shell("printf '[%s]\\n' " + quote(words) + " > words.txt");
shell("echo " + quote("single  spaced") + " > one.txt");
try { quote("nul\x00byte"); } catch (e) { print("caught: " + e); }
"#,
        )
        .run();
    out.ok().out_has("caught: ").out_has("NUL");
    assert_eq!(
        out.read("words.txt"),
        "[plain]\n[a b]\n[it's]\n[$HOME]\n[]\n[`id`]\n[\"q\"]\n[*]\n[semi;colon]\n[new\nline]\n"
    );
    assert_eq!(out.read("one.txt"), "single  spaced\n");
}

#[test]
fn glob_finds_files_sorted_and_recursively() {
    let out = Test::new()
        .file("src/b.rs", "")
        .file("src/a.rs", "")
        .file("src/sub/deep/c.rs", "")
        .file("src/.hidden.rs", "")
        .file(".git/x.rs", "")
        .file("notes.txt", "")
        .script(
            r#"
for p in glob("src/*.rs") { print("top: " + p); }
for p in glob("**/*.rs") { print("all: " + p); }
for p in glob("src/.*.rs") { print("hidden: " + p); }
print("none: " + glob("*.nothing").len());
"#,
        )
        .run();
    out.ok();
    let lines = |prefix: &str| -> Vec<String> {
        out.stdout
            .lines()
            .filter_map(|l| l.strip_prefix(prefix))
            .map(String::from)
            .collect()
    };
    assert_eq!(
        lines("top: "),
        ["src/a.rs", "src/b.rs"],
        "{}",
        out.describe()
    );
    assert_eq!(
        lines("all: "),
        ["src/a.rs", "src/b.rs", "src/sub/deep/c.rs"],
        "{}",
        out.describe()
    );
    assert_eq!(lines("hidden: "), ["src/.hidden.rs"], "{}", out.describe());
    out.line("none: 0");
}

/// A pattern ending in `/` matches directories only and keeps the `/`, as the shell's
/// `echo */` does; `inputs` read it the same way (the directories' files, not `f.txt`).
#[test]
fn a_trailing_slash_matches_directories_only_and_is_kept_in_glob_and_inputs() {
    let out = Test::new()
        .file("in/d/a.txt", "a")
        .file("in/e/b.txt", "b")
        .file("in/f.txt", "f")
        .script(
            r#"
print(`glob: ${glob("in/d/")} ${glob("in/*/")} ${glob("in/f.txt/")} ${glob("in/d")}`);
proc("a", #{ inputs: ["in/*/", "in/f.txt/"] }, |ctx| print(`inputs: ${ctx.input_fingerprint.keys()}`));
run("a");
"#,
        )
        .args(&["--output", "stream"])
        .run();
    out.ok()
        .line(r#"glob: ["in/d/"] ["in/d/", "in/e/"] [] ["in/d"]"#)
        .line(r#"inputs: ["in/d/a.txt", "in/e/b.txt"]"#);
}

#[test]
fn invalid_glob_pattern_is_an_error_naming_it() {
    let out = Test::new().script("\n\nglob(\"src/a**\");\n").run();
    out.code(2)
        .err_has("main.rhai:3:1")
        .err_has(r#"invalid pattern "src/a**""#);
}

#[test]
fn json_round_trips_nested_values_and_null() {
    let out = Test::new()
        .script(
            r#"
let v = parse_json(`{"name": "x", "n": null, "list": [1, 2.5, true, {"deep": [[]]}], "obj": {"k": "v"}}`);
print("name=" + v.name);
print("null is " + type_of(v.n));
print("int is " + type_of(v.list[0]));
print("float is " + type_of(v.list[1]));
print("deep is " + type_of(v.list[3].deep));
print(to_json(v));
print(to_json(#{ a: [1, ()], s: "q\"uote" }));
print(to_json([1, "two"], true));
print(to_json(parse_json(to_json(v))) == to_json(v));
"#,
        )
        .run();
    out.ok()
        .line("name=x")
        .line("null is ()")
        .line("int is i64")
        .line("float is f64")
        .line("deep is array")
        .line(r#"{"list":[1,2.5,true,{"deep":[[]]}],"n":null,"name":"x","obj":{"k":"v"}}"#)
        .line(r#"{"a":[1,null],"s":"q\"uote"}"#)
        .out_has("[\n  1,\n  \"two\"\n]")
        .line("true");
}

#[test]
fn json_errors_say_where_and_what() {
    let out = Test::new()
        .script(
            r#"
try { parse_json("{\n  \"a\": 1,\n  oops\n}"); } catch (e) { print("parse: " + e); }
try { to_json(#{ f: |x| x }); } catch (e) { print("closure: " + e); }
try { to_json([|| 1]); } catch (e) { print("array closure: " + e); }
proc("p", |ctx| { try { to_json(ctx); } catch (e) { print("custom: " + e); } });
run("p");
"#,
        )
        .run();
    out.ok()
        .line("parse: parse_json: invalid JSON at 3:3: key must be a string")
        .line("closure: to_json: a function pointer or closure cannot be converted to JSON")
        .line("array closure: to_json: a function pointer or closure cannot be converted to JSON")
        .line("custom: to_json: a value of type Ctx cannot be converted to JSON");
}

#[test]
fn read_write_and_append_files() {
    let out = Test::new()
        .file("in.txt", "from the test\n")
        .script(
            r#"
print("read: " + read_file("in.txt"));
write_file("out.txt", "one\n");
append_file("out.txt", "two\n");
append_file("new.txt", "created\n");
write_file("trunc.txt", "long long text");
write_file("trunc.txt", "short");
try { read_file("missing.txt"); } catch (e) { print("missing: " + e); }
try { write_file("no/such/dir/f.txt", "x"); } catch (e) { print("no dir: " + e); }
"#,
        )
        .run();
    out.ok().out_has("read: from the test");
    assert_eq!(out.read("out.txt"), "one\ntwo\n");
    assert_eq!(out.read("new.txt"), "created\n");
    assert_eq!(out.read("trunc.txt"), "short");
    let missing = out
        .stdout
        .lines()
        .find(|l| l.starts_with("missing: "))
        .unwrap();
    assert!(
        missing.contains(r#"read_file: cannot read "missing.txt""#)
            && missing.contains("No such file"),
        "{missing}"
    );
    let no_dir = out
        .stdout
        .lines()
        .find(|l| l.starts_with("no dir: "))
        .unwrap();
    assert!(
        no_dir.contains(r#"write_file: cannot write "no/such/dir/f.txt""#),
        "{no_dir}"
    );
    assert!(!out.exists("no"));
}

#[test]
fn env_reads_variables_with_defaults_and_the_procs_env() {
    let out = Test::new()
        .script(
            r#"
print("path set: " + (env("PATH") != ()));
print("unset is " + type_of(env("PRUN_TEST_SURELY_UNSET")));
print("default: " + env("PRUN_TEST_SURELY_UNSET", "fallback"));
print("set wins: " + (env("PATH", "fallback") != "fallback"));
proc("p", #{ env: #{ PRUN_GREETING: "hi" } }, |ctx| {
    write_file("greeting.txt", env("PRUN_GREETING", "none"));
});
run("p");
"#,
        )
        .run();
    out.ok()
        .line("path set: true")
        .line("unset is ()")
        .line("default: fallback")
        .line("set wins: true");
    assert_eq!(out.read("greeting.txt"), "hi");
}

#[test]
fn sleep_inside_a_proc_ends_at_its_timeout() {
    let started = Instant::now();
    let out = Test::new()
        .script(
            r#"
sleep(0.01);
sleep("10ms");
proc("slow", #{ timeout: "200ms" }, |ctx| { sleep("300s"); "never" });
proc("slow_int", #{ timeout: "200ms" }, |ctx| { sleep(300); "never" });
proc("slow_float", #{ timeout: "200ms" }, |ctx| { sleep(300.0); "never" });
proc("quick", |ctx| { sleep("20ms"); "done" });
run(["slow", "slow_int", "slow_float", "quick"]);
"#,
        )
        .run();
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "sleep was not interrupted\n{}",
        out.describe()
    );
    out.code(1).proc_state("SUCCEEDED", "quick");
    for p in ["slow", "slow_int", "slow_float"] {
        let line = out.proc_line("FAILED", p);
        assert!(line.contains("timed out after 200ms"), "{line}");
    }
}

#[test]
fn sleep_rejects_a_bad_duration() {
    let out = Test::new().script("\nsleep(\"soon\");\n").run();
    out.code(2)
        .err_has("main.rhai:2:1")
        .err_has("sleep: invalid duration soon");
}

#[test]
fn now_is_rfc3339_utc_with_milliseconds() {
    let out = Test::new()
        .script(
            r#"
print("now=" + now());
let a = now_ms();
sleep("20ms");
print("ms is " + type_of(a) + ", recent: " + (a > 1600000000000) + ", grows: " + (now_ms() >= a + 20));
"#,
        )
        .run();
    out.ok().line("ms is i64, recent: true, grows: true");
    let now = out
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("now="))
        .unwrap();
    // 2025-01-02T03:04:05.678Z
    let b = now.as_bytes();
    assert_eq!(now.len(), 24, "{now}");
    for (i, &c) in b.iter().enumerate() {
        let want_digit = !matches!(i, 4 | 7 | 10 | 13 | 16 | 19 | 23);
        assert_eq!(c.is_ascii_digit(), want_digit, "{now}");
    }
    assert_eq!((b[10], b[19], b[23]), (b'T', b'.', b'Z'), "{now}");
}

#[test]
fn log_lines_go_to_the_output_and_the_procs_log() {
    let out = Test::new()
        .script(
            r#"
set_options(#{ log_dir: "logs" });
log_info("from the top level");
proc("p", |ctx| {
    log_info("hello from p");
    log_warn("careful");
    log_error(42);
});
run("p");
"#,
        )
        .run();
    out.ok()
        .line("info: from the top level")
        .line("info: hello from p")
        .line("warning: careful")
        .line("error: 42");
    let log = find_file(&out.path("logs"), "p.log")
        .unwrap_or_else(|| panic!("no log of p\n{}", out.describe()));
    let text = std::fs::read_to_string(&log).unwrap();
    assert_eq!(text, "info: hello from p\nwarning: careful\nerror: 42\n");
}

#[test]
fn sleep_at_the_top_level_ends_on_ctrl_c() {
    let started = Instant::now();
    let out = Test::new()
        .signal_when("ready", "INT")
        .script(
            r#"
write_file("ready", "");
sleep("300s");
print("slept through");
"#,
        )
        .run();
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "sleep was not interrupted\n{}",
        out.describe()
    );
    out.code(130).out_lacks("slept through");
}

#[test]
fn read_and_write_file_refuse_a_fifo_or_device_instead_of_blocking_or_reading_forever() {
    let out = Test::new()
        .script(
            r#"
shell("mkfifo pipe && mkdir dir");
try { read_file("pipe"); } catch (e) { print("fifo read: " + e); }
try { write_file("pipe", "x"); } catch (e) { print("fifo write: " + e); }
try { append_file("pipe", "x"); } catch (e) { print("fifo append: " + e); }
try { read_file("/dev/zero"); } catch (e) { print("zero: " + e); }
try { read_file("dir"); } catch (e) { print("dir: " + e); }
write_file("/dev/null", "x");
print("null written");
"#,
        )
        .timeout(Duration::from_secs(30))
        .run();
    out.ok()
        .out_has(r#"fifo read: read_file: "pipe" is a FIFO, not a regular file"#)
        .out_has(r#"fifo write: write_file: "pipe" is a FIFO, not a regular file"#)
        .out_has(r#"fifo append: append_file: "pipe" is a FIFO, not a regular file"#)
        .out_has(r#"zero: read_file: "/dev/zero" is a device, not a regular file"#)
        .out_has(r#"dir: read_file: "dir" is a directory, not a regular file"#)
        .out_has("null written");
}

#[test]
fn quote_refuses_a_word_that_is_no_text_as_exec_does() {
    // `quote(["rm", env("UNSET")])` gave `rm ''` and `quote([[1]])` gave `'[1]'`, where
    // exec refuses both.
    for (word, what) in [
        ("()", "nothing (`()`)"),
        ("[1]", "an array"),
        ("#{}", "a map"),
    ] {
        Test::new()
            .script(&format!("let x = 1;\nprint(quote([\"rm\", {word}]));\n"))
            .run()
            .code(2)
            .err_has(&format!(
                "main.rhai:2:7: quote: word 2 must be a string, a number or a bool, not {what}"
            ));
    }
    Test::new()
        .script("print(quote([\"ls\", \"a b\", 5, true]));\n")
        .run()
        .ok()
        .line("ls 'a b' 5 true");
}

/// `quote` of one number or bool quotes its text, as the array form does; `()` (an unset
/// `env`, say) or a map is an error that says what it takes, not "function not found".
#[test]
fn quote_takes_one_number_or_bool_as_a_word() {
    Test::new()
        .script("print(quote(42) + \" \" + quote(-1.5) + \" \" + quote(true));\n")
        .run()
        .ok()
        .line("42 -1.5 true");
    for (word, what) in [("()", "nothing (`()`)"), ("#{}", "a map")] {
        Test::new()
            .script(&format!("let x = 1;\nprint(quote({word}));\n"))
            .run()
            .code(2)
            .err_has(&format!(
                "main.rhai:2:7: quote: takes a string, a number, a bool or an array of words, not {what}"
            ));
    }
}

/// `fs::newest` of a directory that is not there (a typo, a disk not mounted) or is a
/// file is an error naming it: `()` would read as "no backup yet". An empty `dir` is
/// refused too, since it would search `/`.
#[test]
fn fs_newest_of_a_missing_directory_or_a_file_is_an_error_naming_it() {
    let out = Test::new()
        .file("backups/a.sql.gz", "a")
        .script(
            r#"
import "fs" as fs;
for dir in ["backupz", "backups/a.sql.gz", ""] {
    try { print(`NO ERROR: ${fs::newest(dir, "*.gz")}`); } catch (e) { print(`caught: ${e}`); }
    try { print(`NO ERROR: ${fs::newest(dir)}`); } catch (e) { print(`caught: ${e}`); }
}
print(`found: ${fs::newest("backups")}`);
print(`none: ${fs::newest("backups", "*.zip") == ()}`);
"#,
        )
        .run();
    out.ok()
        .no_line("NO ERROR")
        .line(r#"caught: fs::newest: directory "backupz" does not exist"#)
        .line(r#"caught: fs::newest: "backups/a.sql.gz" is not a directory"#)
        .line(
            r#"caught: fs::newest: the directory is an empty string (use "." for the current one)"#,
        )
        .line("found: backups/a.sql.gz")
        .line("none: true");
    assert_eq!(
        out.stdout.matches("caught: ").count(),
        6,
        "{}",
        out.describe()
    );
}

#[test]
fn fs_ensure_dir_that_cannot_make_its_directory_names_itself_and_the_path() {
    // The error named `mkdir -p -- ''` and its log, not the function.
    let out = Test::new()
        .file("file.txt", "a")
        .script(
            r#"
import "fs" as fs;
for path in ["", "file.txt/sub", 3] {
    try { fs::ensure_dir(path); print("NO ERROR"); } catch (e) { print(`caught: ${e}`); }
}
fs::ensure_dir("made/a/b");
fs::ensure_dir("made/a/b");
print(`made: ${file_info("made/a/b").is_dir}`);
"#,
        )
        .run();
    out.ok()
        .no_line("NO ERROR")
        .line("caught: fs::ensure_dir: the path is an empty string")
        .line("caught: fs::ensure_dir: the path must be a string, not 3")
        .line("made: true");
    assert!(
        out.stdout
            .contains(r#"caught: fs::ensure_dir: cannot make "file.txt/sub": mkdir: "#),
        "{}",
        out.describe()
    );
}

/// A path under a directory the user may not search could be anything: `file_info` (and
/// `fs::size`, built on it) says so, naming it, instead of `()` ("nothing there").
#[test]
#[cfg_attr(prun_no_root, ignore = "needs root (to run prun as another user)")]
fn file_info_of_a_path_it_may_not_look_at_is_an_error_not_nothing() {
    use std::os::unix::fs::PermissionsExt;
    let t = Test::new()
        .script(
            r#"
import "fs" as fs;
try { print(`NO ERROR: ${file_info("closed/x.txt")}`); } catch (e) { print(`caught: ${e}`); }
try { print(`NO ERROR: ${fs::size("closed/x.txt")}`); } catch (e) { print(`caught: ${e}`); }
print(`nothing: ${file_info("nothing/here") == ()} ${file_info("main.rhai/x") == ()}`);
"#,
        )
        .by_another_user();
    let closed = t.dir().join("closed");
    std::fs::create_dir(&closed).unwrap();
    std::fs::write(closed.join("x.txt"), "hi").unwrap();
    std::fs::set_permissions(&closed, std::fs::Permissions::from_mode(0o700)).unwrap();
    let out = t.run();
    out.ok().out_lacks("NO ERROR").line("nothing: true true");
    let caught: Vec<&str> = out
        .stdout
        .lines()
        .filter(|l| l.starts_with("caught: "))
        .collect();
    assert_eq!(caught.len(), 2, "{}", out.describe());
    for line in caught {
        assert!(
            line.contains(r#"file_info: cannot look at "closed/x.txt""#)
                && line.contains("Permission denied"),
            "{line}"
        );
    }
}

/// A directory `glob` cannot read (permission denied) is an error naming it, not passed
/// over without a word as the shell does: its files would be missing from the list. So
/// for `fs::newest` (whose `()` would read as "no file yet") and for a proc's `inputs`,
/// glob or directory, whose fingerprint would not cover what the proc reads, and so could
/// find it up to date while those files change.
#[test]
#[cfg_attr(prun_no_root, ignore = "needs root (to run prun as another user)")]
fn a_directory_that_cannot_be_read_is_an_error_for_glob_and_inputs() {
    use std::os::unix::fs::PermissionsExt;
    let t = Test::new()
        .script(
            r#"
import "fs" as fs;
try { print(`NO ERROR: ${glob("in/**/*.txt")}`); } catch (e) { print(`caught: ${e}`); }
try { print(`NO ERROR: ${glob("in/*/b.txt")}`); } catch (e) { print(`caught: ${e}`); }
try { print(`NO ERROR: ${fs::newest("in/closed")}`); } catch (e) { print(`caught: ${e}`); }
print(`open: ${glob("in/open/*.txt")}`);
proc("globbed", #{ inputs: ["in/**/*.txt"], cmd: ["true"] });
proc("walked", #{ inputs: ["in"], cmd: ["true"] });
proc("named", #{ inputs: ["in/closed/b.txt"], cmd: ["true"] });
run(["globbed", "walked", "named"]);
"#,
        )
        .file("in/open/a.txt", "a")
        .by_another_user();
    let closed = t.dir().join("in/closed");
    std::fs::create_dir_all(&closed).unwrap();
    std::fs::write(closed.join("b.txt"), "b").unwrap();
    std::fs::set_permissions(&closed, std::fs::Permissions::from_mode(0o700)).unwrap();
    let out = t.run();
    out.code(1)
        .out_lacks("NO ERROR")
        .line("open: [\"in/open/a.txt\"]");
    let unreadable = "the directory in/closed cannot be read: Permission denied";
    let unseen = "the path in/closed/b.txt cannot be looked at: Permission denied";
    for (starts, says) in [
        ("caught: glob: \"in/**/*.txt\"", unreadable),
        ("caught: glob: \"in/*/b.txt\"", unseen),
        ("caught: fs::newest: glob: \"in/closed/*\"", unreadable),
    ] {
        let line = out.stdout.lines().find(|l| l.starts_with(starts));
        assert!(
            line.is_some_and(|l| l.contains(says)),
            "{starts}... {says}\n{}",
            out.describe()
        );
    }
    for (name, says) in [
        ("globbed", unreadable),
        ("walked", unreadable),
        ("named", unseen),
    ] {
        let line = out.proc_line("FAILED", name);
        assert!(
            line.contains("the inputs cannot be listed") && line.contains(says),
            "{line}"
        );
    }
}

/// A `tempdir()` whose commands left directories without write or search permission
/// (Go's module cache is read-only, a test may `chmod 000` a directory) is still removed
/// when the script ends, as its owner may: not left behind with a warning.
#[test]
#[cfg_attr(prun_no_root, ignore = "needs root (to run prun as another user)")]
fn a_tempdir_holding_read_only_directories_is_removed() {
    let out = Test::new()
        .script(
            r#"
let t = tempdir();
write_file("tempdir.txt", t);
exec(["mkdir", "-p", `${t}/ro/sub`, `${t}/closed/deep`]);
write_file(`${t}/ro/sub/f`, "x");
write_file(`${t}/closed/deep/g`, "y");
exec(["chmod", "0555", `${t}/ro`, `${t}/ro/sub`]);
exec(["chmod", "0000", `${t}/closed`]);
"#,
        )
        .by_another_user()
        .run();
    out.ok();
    assert!(!out.stderr.contains("warning"), "{}", out.describe());
    let made = out.read("tempdir.txt");
    assert!(
        !Path::new(&made).exists(),
        "{made} is left\n{}",
        out.describe()
    );
}

/// With `PATH` unset (`env -i`, some service managers), a command finds a program by name
/// in the C library's default search path, as `execvp` does: so do `which` and `require`
/// (before, `which` gave `()` and `require` threw for a program `exec` ran), and a program
/// in none of it is said to be looked for there.
#[test]
fn without_path_which_and_require_search_the_default_path_as_commands_do() {
    let out = Test::new()
        .script(
            r#"
print(`which: ${which("sh")}`);
require("sh");
print(`exec: ${exec(["sh", "-c", "echo ran"], #{ quiet: true }).stdout}`);
try { require("sh", "prun-no-such-tool"); } catch (e) { print(`caught: ${e}`); }
try { exec(["prun-no-such-tool"]); } catch (e) { print(`caught: ${e}`); }
"#,
        )
        .unset_env("PATH")
        .run();
    let unset = "PATH is not set, and the default search path (/bin:/usr/bin) does not have it";
    out.ok()
        .line("which: /bin/sh")
        .line("exec: ran")
        .line(&format!(
            "caught: required tool \"prun-no-such-tool\" not found: {unset}"
        ));
    out.out_has(&format!(
        "caught: program \"prun-no-such-tool\" not found: {unset}"
    ));
}

/// A file on `PATH` with an execute bit the user does not have (root's `0700` tool) is
/// passed over, as `execvp` passes over it: `which` and `require` name the file `exec`
/// runs, found further on, not the one it cannot.
#[test]
#[cfg_attr(prun_no_root, ignore = "needs root (to run prun as another user)")]
fn which_passes_over_a_file_the_user_may_not_execute_as_exec_does() {
    use std::os::unix::fs::PermissionsExt;
    let t = Test::new()
        .script(
            r#"
print(`which: ${which("prun-tool")}`);
require("prun-tool");
print(`exec: ${exec(["prun-tool"], #{ quiet: true }).stdout}`);
"#,
        )
        .by_another_user();
    let dir = t.dir().to_path_buf();
    let path = format!("{0}/a:{0}/b:/usr/bin:/bin", dir.display());
    for (file, mode) in [("a", 0o700), ("b", 0o755)] {
        let tool = dir.join(file).join("prun-tool");
        std::fs::create_dir_all(tool.parent().unwrap()).unwrap();
        std::fs::write(&tool, format!("#!/bin/sh\necho from-{file}\n")).unwrap();
        std::fs::set_permissions(&tool, std::fs::Permissions::from_mode(mode)).unwrap();
    }
    let out = t.env("PATH", &path).run();
    out.ok()
        .line(&format!("which: {}/b/prun-tool", dir.display()))
        .line("exec: from-b");
}

/// Inside a proc whose `cwd` is another directory, its commands find `./tool`, and a tool
/// in a relative entry of `PATH`, there: so do `which` and `require`, which looked in
/// prun's directory instead (and gave `()`, or threw, for a tool the commands ran). The
/// path `which` gives is absolute, so that it names the same file for the proc's commands
/// as for the script's file functions. A path `require` does not find is not said to be
/// missing from `PATH`, which it was never looked up on.
#[test]
fn which_and_require_in_a_proc_look_where_its_cwd_leads() {
    let out = Test::new()
        .script(
            r#"
exec(["chmod", "755", "sub/tool", "sub/bin/rel-tool"]);
proc("p", #{ cwd: "sub", env: #{ PATH: "bin:/usr/bin:/bin" } }, |ctx| {
    require("./tool", "rel-tool");
    try { require("./none"); } catch (e) { print(`caught: ${e}`); }
    for t in ["./tool", "rel-tool"] {
        let found = which(t);
        print(`which ${t}: ${found} ${exec([found], #{ quiet: true }).stdout}`);
    }
});
run("p");
"#,
        )
        .file("sub/tool", "#!/bin/sh\necho ran-tool\n")
        .file("sub/bin/rel-tool", "#!/bin/sh\necho ran-rel-tool\n")
        .run();
    let dir = out.dir.path().display().to_string();
    out.ok()
        .line(&format!("which ./tool: {dir}/sub/tool ran-tool"))
        .line(&format!(
            "which rel-tool: {dir}/sub/bin/rel-tool ran-rel-tool"
        ))
        .line(r#"caught: required tool "./none" (in sub) is not a file you may execute"#);
}

/// A policy that hides `PATH` from commands (`--deny-env PATH`) has them look in the C
/// library's default search path: so do `which` and `require`, which searched prun's
/// `PATH` and named a tool the commands then did not find.
#[test]
fn with_path_hidden_which_and_require_search_where_commands_look() {
    let t = Test::new()
        .script(
            r#"
exec(["chmod", "755", "bin/prun-only-here"]);
print(`which: ${which("prun-only-here")} ${which("sh")}`);
try { require("prun-only-here"); print("NO ERROR"); } catch (e) { print(`caught: ${e}`); }
"#,
        )
        .file("bin/prun-only-here", "#!/bin/sh\necho only\n")
        .before(&["--deny-env", "PATH"]);
    let path = format!(
        "{}/bin:{}",
        t.dir().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = t.env("PATH", &path).run();
    out.ok()
        .out_lacks("NO ERROR")
        .line("which:  /bin/sh")
        .line(r#"caught: required tool "prun-only-here" not found in /bin:/usr/bin (the policy hides PATH from commands, which then look there)"#);
}

/// Inside a proc whose `env` sets `PATH`, its commands search that `PATH`: so do `which`
/// and `require` (and `require` names it), or a script would pick a tool its commands do
/// not find, or refuse one they do.
#[test]
fn which_and_require_in_a_proc_search_its_own_path() {
    let out = Test::new()
        .file("bin/tool", "#!/bin/sh\necho tool ran\n")
        .script(
            r#"
let here = shell("pwd").stdout;
here.trim();
exec(["chmod", "+x", "bin/tool"]);
let bin = `${here}/bin`;
proc("p", #{ env: #{ PATH: bin } }, || {
    print(`in proc: ${which("tool") == bin + "/tool"} ${which("sh") == ()}`);
    require("tool");
    try { require("sh"); print("NO ERROR"); } catch (e) { print(`caught: ${e}`); }
    exec(["tool"]).stdout
});
print(`top: ${which("tool") == ()} ${which("sh") != ()}`);
run("p");
print(wait("p"));
"#,
        )
        .run();
    let bin = out.dir.path().join("bin").display().to_string();
    out.ok()
        .line("in proc: true true")
        .line("top: true true")
        .line(&format!(
            r#"caught: required tool "sh" not found on PATH={bin}"#
        ))
        .line("tool ran")
        .out_lacks("NO ERROR");
}

//! Plain output (not a terminal): timestamped start and finish lines, failure excerpts,
//! the slowest procs and the summary.

use std::process::Command;

use crate::support::Test;

fn is_stamp(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 20
        && b[4] == b'-'
        && b[10] == b'T'
        && b[19] == b'Z'
        && s.chars().filter(char::is_ascii_digit).count() == 14
}

#[test]
fn every_proc_has_a_timestamped_start_and_finish_line_and_no_escape_codes() {
    let t = Test::new().script(
        r#"
proc("a", #{ cmd: ["true"] });
proc("b", #{ deps: ["a"] }, |ctx| 1);
run("b");
"#,
    );
    let dir = t.dir().to_path_buf();
    let first = t.run();
    first.ok();
    let out = Command::new(env!("CARGO_BIN_EXE_prun"))
        .arg("main.rhai")
        .current_dir(&dir)
        .env("XDG_STATE_HOME", dir.join("state2"))
        .output()
        .expect("run prun");
    let text = String::from_utf8(out.stdout).expect("utf-8");
    assert!(
        !text.contains('\x1b'),
        "escape codes in plain output:\n{text}"
    );
    let lines: Vec<&str> = text.lines().collect();
    let shape: Vec<String> = lines
        .iter()
        .map(|l| match l.split_once(' ') {
            Some((stamp, rest)) if is_stamp(stamp) => {
                // Durations vary; keep their shape.
                let rest = rest.split(" (").next().unwrap_or(rest);
                format!("<time> {rest}")
            }
            // Which of two instant procs was slower is chance.
            _ if l.starts_with("prun: slowest: ") => "prun: slowest: ".to_string(),
            _ => l.split(" in ").next().unwrap_or(l).to_string(),
        })
        .collect();
    let want = [
        "<time> STARTED    a",
        "<time> SUCCEEDED  a",
        "<time> STARTED    b",
        "<time> SUCCEEDED  b",
        "prun: slowest: ",
        "prun: 2 succeeded",
    ];
    for (got, want) in shape.iter().zip(want) {
        assert!(got.starts_with(want), "{got:?} is not {want:?}\n{text}");
    }
    assert_eq!(shape.len(), 6, "{text}");
}

#[test]
fn quiet_prints_failures_and_the_summary_only() {
    Test::new()
        .script(
            r#"proc("a", #{ cmd: ["true"] }); proc("b", #{ shell: "exit 3" }); run(["a", "b"]);"#,
        )
        .args(&["-q"])
        .run()
        .code(1)
        .out_lacks("STARTED")
        .out_lacks("SUCCEEDED")
        .out_has("FAILED     b");
}

#[test]
fn a_failure_shows_the_excerpts_around_error_lines() {
    let out = Test::new()
        .script(
            r#"
proc("build", #{ shell: "for i in $(seq 1 30); do echo step $i; if [ $i = 12 ]; then echo 'error: disk full'; fi; done; exit 2" });
run("build");
"#,
        )
        .run();
    out.code(1)
        .out_has("excerpts of ")
        .out_has("| error: disk full")
        .out_has("| step 11")
        .out_has("| step 13")
        .out_lacks("| step 3\n")
        .out_lacks("| step 30");
    let header = out
        .stdout
        .lines()
        .find(|l| l.trim_start().starts_with("--- lines "))
        .expect("an excerpt header");
    assert!(header.contains("-"), "{header}");
}

/// A command that fails inside a closure throws an error quoting its stderr's last lines
/// and naming its log, for a script that catches it; the failure report under it quotes
/// the same log, so each of those lines was printed twice.
#[test]
fn a_failed_command_s_stderr_and_log_are_shown_once() {
    let out = Test::new()
        .script(
            r#"
proc("p", |ctx| { shell("echo 'error: no space' >&2; exit 7"); });
proc("q", |ctx| { shell("echo 'error: early' >&2; seq 1 20 >&2; exit 7"); });
run(["p", "q"]);
"#,
        )
        .run();
    out.code(1);
    // A proc's report: from its FAILED line to the next line that is not indented.
    let report = |name: &str| -> String {
        let from = out
            .stdout
            .find(&format!("FAILED     {name} ("))
            .unwrap_or_else(|| panic!("no FAILED line of {name}\n{}", out.describe()));
        let rest = &out.stdout[from..];
        let end = rest[1..].find("\nFAILED").map_or(rest.len(), |i| i + 1);
        let end = end.min(rest.find("\nprun:").unwrap_or(rest.len()));
        rest[..end].to_string()
    };
    let quoted = |text: &str, line: &str| text.lines().filter(|l| l.trim() == line).count();
    let p = report("p");
    assert_eq!(quoted(&p, "| error: no space"), 1, "{}", out.describe());
    assert_eq!(p.matches("p.log").count(), 1, "{}", out.describe());
    assert!(p.contains("exited with code 7\n"), "{}", out.describe());
    assert!(!p.contains("stderr ends with"), "{}", out.describe());
    // The excerpt of q's log (around its error line) leaves out the stderr's last lines:
    // the error keeps them.
    let q = report("q");
    assert!(q.contains("stderr ends with:"), "{}", out.describe());
    assert_eq!(quoted(&q, "| 20"), 1, "{}", out.describe());
    assert_eq!(q.matches("q.log").count(), 1, "{}", out.describe());
}

/// The top level's `wait` for a proc that failed stops the script, which prun says on
/// stderr, after the proc's failure report: the line names the proc and the first line
/// of its error, and does not print the rest of the report again.
#[test]
fn the_script_stopped_line_does_not_repeat_the_failure_report() {
    let out = Test::new()
        .script(
            r#"
proc("a", |ctx| { shell("echo 'error: disk' >&2; exit 3"); });
run("a");
wait("a");
"#,
        )
        .run();
    out.code(1);
    let stopped: Vec<&str> = out.stderr.lines().collect();
    assert_eq!(stopped.len(), 1, "{}", out.describe());
    assert!(
        stopped[0].starts_with(
            "prun: the script stopped: proc \"a\" FAILED: main.rhai:2:19: command `echo"
        ) && stopped[0].ends_with("exited with code 3"),
        "{}",
        out.describe()
    );
    assert!(out.stdout.contains("| error: disk"), "{}", out.describe());
}

#[test]
fn without_error_lines_the_last_lines_are_shown() {
    Test::new()
        .script(r#"proc("quiet", #{ shell: "seq 1 30; exit 1" }); run("quiet");"#)
        .run()
        .code(1)
        .out_has("last lines of ")
        .out_has("| 30")
        .out_lacks("| 5\n");
}

#[test]
fn the_slowest_procs_come_before_the_summary() {
    let out = Test::new()
        .script(
            r#"
// Each proc starts no later than the next one and ends only after it has ended, so the
// durations are ordered whatever the machine's load: slow > mid > fast, other.
proc("slow", |ctx| { ctx.wait("mid"); 1 });
proc("mid", |ctx| { ctx.wait(["fast", "other"]); 2 });
proc("fast", #{ cmd: ["true"] });
proc("other", #{ cmd: ["true"] });
run(["slow", "mid", "fast", "other"]);
"#,
        )
        .args(&["-j", "4"])
        .run();
    out.ok();
    let line = out
        .stdout
        .lines()
        .find(|l| l.starts_with("prun: slowest: "))
        .expect("a slowest line");
    assert!(line.starts_with("prun: slowest: slow "), "{line}");
    assert!(line.contains(", mid "), "{line}");
    assert_eq!(line.matches("s, ").count() + 1, 3, "three procs: {line}");
    out.summary_is("prun: 4 succeeded");
}

#[test]
fn a_stdout_that_cannot_be_written_is_said_once_and_the_run_goes_on() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("main.rhai"),
        "for i in 0..5 { proc(`p${i}`, #{ cmd: [\"true\"] }); }\nrun(\"p*\");\n",
    )
    .expect("write script");
    let full = std::fs::File::create("/dev/full").expect("/dev/full");
    let out = Command::new(env!("CARGO_BIN_EXE_prun"))
        .arg("main.rhai")
        .current_dir(dir.path())
        .env("XDG_STATE_HOME", dir.path().join("state"))
        .stdout(full)
        .output()
        .expect("run prun");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert_eq!(
        stderr.matches("failed to write to stdout").count(),
        1,
        "said once:\n{stderr}"
    );
}

#[test]
fn progress_lines_have_the_time_first_as_the_other_proc_lines() {
    // `-v` printed `PROGRESS   p: 50%` without the time every other proc line starts with.
    let t = Test::new();
    let dir = t.dir().to_path_buf();
    let script = "proc(\"p\", |ctx| { ctx.progress(0.5); });\nrun(\"p\");\n";
    std::fs::write(dir.join("main.rhai"), script).expect("write");
    let out = Command::new(env!("CARGO_BIN_EXE_prun"))
        .args(["main.rhai", "-v"])
        .current_dir(&dir)
        .env("XDG_STATE_HOME", dir.join("state"))
        .output()
        .expect("run prun");
    let text = String::from_utf8(out.stdout).expect("utf-8");
    let line = text
        .lines()
        .find(|l| l.contains("PROGRESS"))
        .unwrap_or_else(|| panic!("no PROGRESS line:\n{text}"));
    let (stamp, rest) = line.split_once(' ').expect("a stamp");
    assert!(is_stamp(stamp), "{line:?}\n{text}");
    assert_eq!(rest, "PROGRESS   p: 50%", "{text}");
}

//! Seeing procs' output: `--output stream` (every line as it comes, prefixed with the
//! proc's name, never mixed with another proc's line), `--output grouped` (a proc's log at
//! once when it ends), the per-proc `output` option, `interactive` procs (the terminal,
//! alone) and `keep_runs`.
//!
//! The terminal tests run prun in a tmux window of their own (a unique `-L` socket) and
//! read the screen with `capture-pane`; they wait for what they expect by polling the
//! screen or marker files with a bounded timeout, never for a fixed time.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::support::Test;

/// A proc printing `lines` lines `p<i> <j> <payload>`, each in two writes (so that a
/// line-buffer that printed what it read at once would cut them), to stdout, and every
/// fifth to stderr.
fn printer(i: usize, lines: usize, payload: &str) -> String {
    format!(
        r#"proc("p{i}", #{{ now: true, shell: "j=0; while [ $j -lt {lines} ]; do j=$((j+1)); if [ $((j % 5)) = 0 ]; then printf 'p{i} %s ' $j >&2; printf '{payload}\\n' >&2; else printf 'p{i} %s ' $j; printf '{payload}\\n'; fi; done" }});"#
    )
}

/// Checks that every line of `text` that holds `payload` is a whole line of one proc,
/// prefixed with its name (`p3 │ p3 17 <payload>`), and that each of the `procs` procs'
/// `lines` lines is there.
fn assert_whole_prefixed_lines(text: &str, procs: usize, lines: usize, payload: &str) {
    let mut seen = BTreeSet::new();
    for line in text.lines().filter(|l| l.contains(payload)) {
        let (prefix, rest) = line
            .split_once(" │ ")
            .unwrap_or_else(|| panic!("a line without a prefix: {line:?}"));
        let mut words = rest.splitn(3, ' ');
        let (name, n, tail) = (words.next(), words.next(), words.next());
        assert_eq!(Some(prefix), name, "a line of another proc: {line:?}");
        assert_eq!(tail, Some(payload), "a mixed or cut line: {line:?}");
        let n: usize = n.and_then(|n| n.parse().ok()).expect("line number");
        seen.insert((prefix.to_string(), n));
    }
    for i in 0..procs {
        for j in 1..=lines {
            assert!(
                seen.contains(&(format!("p{i}"), j)),
                "line {j} of p{i} is missing"
            );
        }
    }
}

#[test]
fn streamed_lines_of_concurrent_procs_are_whole_and_prefixed() {
    let payload = "x".repeat(3000);
    let script: String = (0..16).map(|i| printer(i, 100, &payload)).collect();
    let out = Test::new()
        .script(&script)
        .args(&["--output", "stream", "-j", "16"])
        .run();
    out.ok();
    assert_whole_prefixed_lines(&out.stdout, 16, 100, &payload);
    // The log still gets everything.
    let log = std::fs::read_to_string(log_of(&out.path("state"), "p3")).expect("log of p3");
    assert_eq!(log.lines().filter(|l| l.starts_with("p3 ")).count(), 100);
}

/// A proc's timeout still ends its command while prun's stdout is blocked (a reader that
/// reads nothing, as `prun ... | less` before a key is pressed): the streamed lines are
/// written without holding the threads that time commands out and handle signals. Before,
/// both runtime threads waited in that write, and the command ran past its timeout for as
/// long as the reader did not read. The reader goes away once the command is gone.
#[test]
fn a_timeout_ends_its_command_while_pruns_stdout_is_not_read() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("main.rhai"),
        r#"
proc("a", #{ now: true, timeout: "1s", shell: "echo $$ > a.tmp; mv a.tmp a.pid; exec yes aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa" });
proc("b", #{ now: true, timeout: "1s", shell: "echo $$ > b.tmp; mv b.tmp b.pid; exec yes bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb" });
"#,
    )
    .expect("write the script");
    let mut prun = Command::new(env!("CARGO_BIN_EXE_prun"))
        .args(["main.rhai", "--output", "stream", "-j", "2"])
        .current_dir(dir.path())
        .env("XDG_STATE_HOME", dir.path().join("state"))
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("run prun");
    let unread = prun.stdout.take().expect("prun's stdout");
    for f in ["a.pid", "b.pid"] {
        let t = Instant::now();
        while !dir.path().join(f).exists() {
            assert!(t.elapsed() < Duration::from_secs(20), "{f} never written");
            std::thread::sleep(Duration::from_millis(10));
        }
        let pid: u32 = std::fs::read_to_string(dir.path().join(f))
            .expect("pid file")
            .trim()
            .parse()
            .expect("a pid");
        crate::support::assert_gone(pid, f, "prun's stdout was not read");
    }
    drop(unread);
    let t = Instant::now();
    while prun.try_wait().expect("prun's status").is_none() {
        assert!(
            t.elapsed() < Duration::from_secs(20),
            "prun did not end once its reader went away"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn a_last_line_without_a_newline_is_streamed_when_the_proc_ends() {
    let out = Test::new()
        .script(r#"proc("a", #{ now: true, shell: "printf 'no newline'" });"#)
        .args(&["--output", "stream"])
        .run();
    out.ok().line("a │ no newline");
}

/// A line of 1 MiB, a whole number of the 64 KiB pieces prun prints it in: its newline
/// ends the last piece, and prints no empty line of its own after it.
#[test]
fn a_line_of_a_mebibyte_is_streamed_in_pieces_with_no_empty_line_after_it() {
    let out = Test::new()
        .script(
            r#"proc("big", #{ now: true, shell: "head -c 1048576 /dev/zero | tr '\\0' x; echo; echo after" });"#,
        )
        .args(&["--output", "stream"])
        .run();
    out.ok().line("big │ after");
    let pieces: Vec<&str> = out
        .stdout
        .lines()
        .filter_map(|l| l.strip_prefix("big │ "))
        .collect();
    assert_eq!(
        pieces.len(),
        17,
        "{:?}",
        pieces.iter().map(|p| p.len()).collect::<Vec<_>>()
    );
    assert!(
        pieces[..16]
            .iter()
            .all(|p| p.len() == 64 * 1024 && p.bytes().all(|b| b == b'x'))
    );
    assert_eq!(pieces[16], "after");
}

#[test]
fn a_progress_line_redrawn_with_carriage_returns_keeps_the_procs_name() {
    let out = Test::new()
        .script(r#"proc("copy", #{ now: true, shell: "printf '10%%\\r20%%\\r100%% done\\n'" });"#)
        .args(&["--output", "stream"])
        .run();
    out.ok().line("copy │ 100% done");
    assert!(!out.stdout.contains('\r'), "{:?}", out.stdout);
}

#[test]
fn commands_inside_closures_stream_too_and_the_top_level_does_not() {
    let out = Test::new()
        .script(
            r#"shell("echo top level");
               proc("c", #{ now: true }, |ctx| { shell("echo out; echo err >&2"); });"#,
        )
        .args(&["--output", "stream"])
        .run();
    out.ok()
        .line("c │ out")
        .line("c │ err")
        .out_lacks("top level");
}

/// Output that is not UTF-8 is printed with U+FFFD by both modes, the proc's name still
/// before it; the log keeps the bytes.
#[test]
fn bytes_that_are_not_utf8_are_printed_as_replacement_characters_and_logged_as_they_are() {
    for (mode, shown) in [
        ("stream", "bin │ \u{FFFD}\u{FFFD} end"),
        ("grouped", "\u{FFFD}\u{FFFD} end"),
    ] {
        let out = Test::new()
            .script(r#"proc("bin", #{ now: true, shell: "printf '\\377\\376 end\\n'" });"#)
            .args(&["--output", mode])
            .run();
        out.ok().line(shown);
        let log = std::fs::read(log_of(&out.path("state"), "bin")).expect("log of bin");
        assert!(
            log.windows(6).any(|w| w == b"\xff\xfe end"),
            "{mode}: {log:?}"
        );
    }
}

#[test]
fn grouped_output_keeps_each_procs_lines_together() {
    let script: String = (0..6).map(|i| printer(i, 40, "payload")).collect();
    let out = Test::new()
        .script(&script)
        .args(&["--output", "grouped", "-j", "6"])
        .run();
    out.ok();
    let lines: Vec<&str> = out.stdout.lines().collect();
    for i in 0..6 {
        let name = format!("p{i}");
        let header = lines
            .iter()
            .position(|l| *l == format!("── {name} ──"))
            .unwrap_or_else(|| panic!("no header for {name}\n{}", out.describe()));
        let mine: Vec<usize> = (0..lines.len())
            .filter(|&k| lines[k].starts_with(&format!("{name} ")))
            .collect();
        assert_eq!(mine.len(), 40, "{name}'s lines\n{}", out.describe());
        // Its lines follow its header (after the command and start lines), in one block.
        assert!(
            mine[0] > header && mine[0] <= header + 3,
            "{}",
            out.describe()
        );
        assert_eq!(
            mine[39] - mine[0],
            39,
            "{name} interleaved\n{}",
            out.describe()
        );
    }
}

#[test]
fn a_procs_output_option_overrides_the_runs_mode_and_the_command_line_wins_over_the_script() {
    let script = r#"
        set_options(#{ output: "grouped" });
        proc("loud", #{ now: true, output: "stream", shell: "echo hello" });
        proc("plain", #{ now: true, shell: "echo quiet" });
    "#;
    let out = Test::new().script(script).run();
    out.ok()
        .line("loud │ hello")
        .line("── plain ──")
        .line("quiet");
    let out = Test::new().script(script).args(&["--output", "log"]).run();
    out.ok()
        .line("loud │ hello")
        .out_lacks("── plain ──")
        .out_lacks("quiet");
}

#[test]
fn a_bad_output_mode_names_the_proc_and_the_valid_modes() {
    let out = Test::new()
        .script(r#"proc("a", #{ output: "loud", shell: "true" });"#)
        .run();
    out.code(2)
        .err_has(r#"proc "a""#)
        .err_has(r#"`output` must be one of "log", "stream" or "grouped", not "loud""#);
    let out = Test::new()
        .script(r#"set_options(#{ output: "all" });"#)
        .run();
    out.code(2).err_has("`output` must be one of");
    let out = Test::new()
        .script(r#"proc("a", #{ now: true, shell: "true" });"#)
        .args(&["--output", "all"])
        .run();
    out.code(64).err_has("--output");
}

#[test]
fn quiet_prints_no_streamed_or_grouped_output() {
    for mode in ["stream", "grouped"] {
        let out = Test::new()
            .script(r#"proc("a", #{ now: true, shell: "echo hello" });"#)
            .args(&["--output", mode, "-q"])
            .run();
        out.ok();
        assert_eq!(out.stdout, "", "{mode}: {}", out.describe());
    }
}

#[test]
fn without_a_terminal_an_interactive_proc_reads_prun_s_stdin() {
    let t = Test::new().script(
        r#"proc("ask", #{ now: true, interactive: true, shell: "read a; echo \"got $a\" > got.txt; echo shown" });"#,
    );
    let dir = t.dir().to_path_buf();
    // A first run writes the script (its stdin is `/dev/null`); the directory lives on.
    let _first = t.run();
    let mut child = Command::new(env!("CARGO_BIN_EXE_prun"))
        .arg("main.rhai")
        .current_dir(&dir)
        .env("XDG_STATE_HOME", dir.join("state"))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("run prun");
    use std::io::Write as _;
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(b"yes\n")
        .expect("write stdin");
    let out = child.wait_with_output().expect("wait for prun");
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        std::fs::read_to_string(dir.join("got.txt")).unwrap(),
        "got yes\n"
    );
    // Its output went to prun's stdout as it was, not through a log.
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.lines().any(|l| l == "shown"), "{stdout}");
}

#[test]
fn keep_runs_prunes_history_and_log_directories_but_not_the_cache() {
    let t = Test::new().script(
        r#"set_options(#{ keep_runs: 2 });
           proc("cached", #{ now: true, inputs: ["in.txt"], shell: "echo built >> built.txt" });
           proc("noisy", #{ now: true, no_skip: true, shell: "echo run" });"#,
    );
    let dir = t.dir().to_path_buf();
    std::fs::write(dir.join("in.txt"), "x").unwrap();
    let run = || {
        let out = Command::new(env!("CARGO_BIN_EXE_prun"))
            .args(["main.rhai", "--no-live"])
            .current_dir(&dir)
            .env("XDG_STATE_HOME", dir.join("state"))
            .output()
            .expect("run prun");
        assert!(out.status.success(), "{out:?}");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    // The first run writes the script; the directory lives as long as its output.
    let _first = t.run();
    for _ in 0..4 {
        run();
    }
    let out = Command::new(env!("CARGO_BIN_EXE_prun"))
        .args(["history", "main.rhai"])
        .current_dir(&dir)
        .env("XDG_STATE_HOME", dir.join("state"))
        .output()
        .expect("prun history");
    let history = String::from_utf8_lossy(&out.stdout);
    let rows: Vec<&str> = history
        .lines()
        .skip(1)
        .take_while(|l| !l.is_empty())
        .collect();
    assert_eq!(rows.len(), 2, "{history}");
    assert!(rows[0].trim_start().starts_with('5'), "{history}");
    let logs = log_root(&dir.join("state"));
    let runs: Vec<_> = std::fs::read_dir(&logs).unwrap().flatten().collect();
    assert_eq!(runs.len(), 2, "{runs:?}");
    // The kept runs' logs still answer `prun log`, and the cache outlived the pruning.
    let log = Command::new(env!("CARGO_BIN_EXE_prun"))
        .args(["log", "main.rhai", "noisy"])
        .current_dir(&dir)
        .env("XDG_STATE_HOME", dir.join("state"))
        .output()
        .expect("prun log");
    assert!(String::from_utf8_lossy(&log.stdout).contains("run"));
    assert_eq!(
        std::fs::read_to_string(dir.join("built.txt")).unwrap(),
        "built\n"
    );
}

/// A directory in a `log_dir` whose name has a character of several bytes where a run
/// directory's name ends (its 24th byte) is the user's, left alone; it made every run
/// panic when prun looked for the runs to prune.
#[test]
fn a_directory_with_a_non_ascii_name_in_the_log_dir_is_left_alone() {
    let theirs = format!("{}é", "a".repeat(23));
    let t = Test::new()
        .script(
            r#"set_options(#{ keep_runs: 1, log_dir: "mylogs" });
               proc("p", #{ now: true, shell: "echo run" });"#,
        )
        .file(&format!("mylogs/{theirs}/keep.txt"), "theirs");
    let out = t.run();
    out.ok().proc_state("SUCCEEDED", "p");
    assert_eq!(out.read(&format!("mylogs/{theirs}/keep.txt")), "theirs");
}

/// A run that lasts while later runs start and end (a cron job every minute, one run
/// slower than a minute) keeps its log directory while it goes; once it ended, the
/// history rows and the log directories are the same `keep_runs` runs, its own included
/// (it ended last). Before, one directory too many stayed until the next run.
#[test]
fn keep_runs_prunes_to_the_same_runs_after_a_run_that_outlasted_later_ones() {
    let t = tempfile::tempdir().expect("tempdir");
    let dir = t.path().to_path_buf();
    std::fs::write(
        dir.join("main.rhai"),
        r#"set_options(#{ keep_runs: 3 });
           proc("long", #{ no_skip: true, shell: "touch long.started; while [ ! -e go ]; do sleep 0.05; done; echo long-done" });
           proc("short", #{ no_skip: true, shell: "echo short-done" });"#,
    )
    .expect("write the script");
    let prun = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_prun"))
            .args(args)
            .current_dir(&dir)
            .env("XDG_STATE_HOME", dir.join("state"))
            .stdin(std::process::Stdio::null())
            .output()
            .expect("run prun")
    };
    let mut long = Command::new(env!("CARGO_BIN_EXE_prun"))
        .args(["main.rhai", "long", "-q"])
        .current_dir(&dir)
        .env("XDG_STATE_HOME", dir.join("state"))
        .stdin(std::process::Stdio::null())
        .spawn()
        .expect("start the long run");
    let deadline = Instant::now() + Duration::from_secs(30);
    while !dir.join("long.started").exists() {
        assert!(Instant::now() < deadline, "the long run did not start");
        std::thread::sleep(Duration::from_millis(10));
    }
    let logs = log_root(&dir.join("state"));
    let long_dir = std::fs::read_dir(&logs)
        .unwrap()
        .flatten()
        .next()
        .unwrap()
        .path();
    for _ in 0..6 {
        assert!(prun(&["main.rhai", "short", "-q"]).status.success());
        assert!(
            long_dir.exists(),
            "the directory of a run still going was pruned"
        );
    }
    std::fs::write(dir.join("go"), "").unwrap();
    assert!(long.wait().unwrap().success());
    let history =
        String::from_utf8_lossy(&prun(&["history", "main.rhai", "-n", "100"]).stdout).into_owned();
    let rows = history
        .lines()
        .skip(1)
        .take_while(|l| !l.is_empty())
        .count();
    assert_eq!(rows, 3, "{history}");
    let runs: Vec<_> = std::fs::read_dir(&logs).unwrap().flatten().collect();
    assert_eq!(runs.len(), 3, "{runs:?}");
    assert!(long_dir.exists());
    let log = prun(&["log", "main.rhai", "long"]);
    assert!(
        String::from_utf8_lossy(&log.stdout).contains("long-done"),
        "{log:?}"
    );
    // The next run keeps the same number.
    assert!(prun(&["main.rhai", "short", "-q"]).status.success());
    assert_eq!(std::fs::read_dir(&logs).unwrap().count(), 3);
}

#[test]
fn history_log_and_report_look_where_the_script_keeps_its_db_and_logs() {
    let t = Test::new().script(
        "#!/usr/bin/env prun\n\
         set_options(#{ keep_runs: 1, task_db: \"t.db\", log_dir: \"mylogs\" });\n\
         proc(\"noisy\", #{ now: true, no_skip: true, shell: \"echo said-so\" });\n",
    );
    let dir = t.dir().to_path_buf();
    let prun = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_prun"))
            .args(args)
            .current_dir(&dir)
            .env("XDG_STATE_HOME", dir.join("state"))
            .output()
            .expect("run prun");
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(out.status.success(), "{args:?}: {out:?}");
        text
    };
    let _first = t.run();
    prun(&["main.rhai", "--no-live"]);
    let runs: Vec<_> = std::fs::read_dir(dir.join("mylogs"))
        .unwrap()
        .flatten()
        .collect();
    assert_eq!(runs.len(), 1, "{runs:?}");
    let history = prun(&["history", "main.rhai"]);
    assert!(history.contains("1 succeeded"), "{history}");
    assert!(prun(&["log", "main.rhai", "noisy"]).contains("said-so"));
    assert!(prun(&["report", "main.rhai"]).contains("noisy"));
}

#[test]
fn keep_runs_must_be_a_count() {
    Test::new()
        .script(r#"set_options(#{ keep_runs: -1 });"#)
        .run()
        .code(2)
        .err_has("`keep_runs` must be an integer, 0 or more");
}

/// The log directory root of the only script under a state directory.
fn log_root(state: &Path) -> PathBuf {
    let scripts: Vec<_> = std::fs::read_dir(state.join("prun"))
        .expect("state dir")
        .flatten()
        .filter(|e| e.path().is_dir())
        .collect();
    assert_eq!(scripts.len(), 1);
    scripts[0].path().join("logs")
}

/// The newest log of a proc.
fn log_of(state: &Path, proc: &str) -> PathBuf {
    let mut runs: Vec<PathBuf> = std::fs::read_dir(log_root(state))
        .expect("logs")
        .flatten()
        .map(|e| e.path())
        .collect();
    runs.sort();
    runs.last().expect("a run").join(format!("{proc}.log"))
}

/// How long a terminal test waits for something to appear.
const TIMEOUT: Duration = Duration::from_secs(20);

/// prun in a tmux window: `main.rhai` and `run.sh` in a fresh directory; the shell prints
/// `EXIT=<status>` when prun ends. Dropping it kills the tmux server.
struct Tty {
    dir: tempfile::TempDir,
    socket: String,
}

impl Tty {
    fn start(test: &str, script: &str, args: &str) -> Tty {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("main.rhai"), script).expect("script");
        let run = format!(
            "cd '{d}' || exit 1\nexport XDG_STATE_HOME='{d}/state'\nunset NO_COLOR\n\
             trap 'true' INT\n'{prun}' main.rhai {args}\necho \"EXIT=$?\"\nexec sleep 600\n",
            d = dir.path().display(),
            prun = env!("CARGO_BIN_EXE_prun"),
        );
        std::fs::write(dir.path().join("run.sh"), run).expect("run.sh");
        let tty = Tty {
            socket: format!("prun-output-{}-{test}", std::process::id()),
            dir,
        };
        let d = tty.dir.path().display().to_string();
        tty.tmux(&[
            "new-session",
            "-d",
            "-s",
            "s",
            "-x",
            "100",
            "-y",
            "30",
            "-c",
            &d,
            "sh run.sh",
        ]);
        let _ = tty.tmux(&["set-option", "-g", "scroll-on-clear", "off"]);
        tty
    }

    fn tmux(&self, args: &[&str]) -> String {
        let out = Command::new("tmux")
            .args(["-L", &self.socket, "-f", "/dev/null"])
            .args(args)
            .env_remove("TMUX")
            .env_remove("TMUX_PANE")
            .output()
            .expect("run tmux");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn path(&self, p: &str) -> PathBuf {
        self.dir.path().join(p)
    }

    /// The lines of the visible screen.
    fn screen(&self) -> Vec<String> {
        let text = self.tmux(&["capture-pane", "-p", "-J", "-t", "s"]);
        text.lines().map(str::to_string).collect()
    }

    /// The scrollback and the screen.
    fn text(&self) -> String {
        self.tmux(&["capture-pane", "-p", "-J", "-S", "-", "-t", "s"])
    }

    /// Polls until `check` holds; fails the test after [`TIMEOUT`].
    fn wait_for(&self, what: &str, check: impl Fn(&Tty) -> bool) {
        let t = Instant::now();
        while !check(self) {
            assert!(
                t.elapsed() < TIMEOUT,
                "timed out waiting for {what}\n{}",
                self.text()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits for prun's exit status.
    fn exit_code(&self) -> i32 {
        self.wait_for("prun to exit", |t| t.text().contains("EXIT="));
        let text = self.text();
        let line = text
            .lines()
            .find(|l| l.starts_with("EXIT="))
            .expect("EXIT=");
        line["EXIT=".len()..].trim().parse().expect("a status")
    }
}

/// A line with the live display's header (`prun  1.2s  running 1 ...`) in it.
fn is_header(line: &str) -> bool {
    line.contains("prun ") && line.contains("running ")
}

impl Drop for Tty {
    fn drop(&mut self) {
        let _ = std::fs::write(self.path("go"), "");
        self.tmux(&["kill-server"]);
    }
}

#[test]
#[cfg_attr(prun_no_tmux, ignore = "tmux is not installed")]
fn streamed_lines_on_a_terminal_are_whole_and_prefixed_above_the_live_display() {
    let script: String = (0..8).map(|i| printer(i, 30, "end of line")).collect();
    let tty = Tty::start("stream", &script, "--output stream -j 8");
    assert_eq!(tty.exit_code(), 0, "{}", tty.text());
    assert_whole_prefixed_lines(&tty.text(), 8, 30, "end of line");
}

/// `before` holds the run until `go` exists; `ask` is interactive and reads an answer
/// from the terminal; `after` is ready at the same time but must wait for `ask`.
const ASK: &str = r#"
proc("before", #{ now: true, shell: "touch before.started; while [ ! -e go ]; do sleep 0.05; done" });
proc("ask", #{ now: true, interactive: true,
    shell: "touch ask.started; printf 'your name? '; read answer; echo \"$answer\" > answer.txt" });
proc("after", #{ now: true, shell: "test -e answer.txt && touch after.saw-answer; touch after.started" });
"#;

#[test]
#[cfg_attr(prun_no_tmux, ignore = "tmux is not installed")]
fn an_interactive_proc_reads_the_terminal_and_runs_alone() {
    let tty = Tty::start("interactive", ASK, "-j 4");
    tty.wait_for("before to start", |t| t.path("before.started").exists());
    tty.wait_for("the live display", |t| {
        t.screen().iter().any(|l| is_header(l))
    });
    // While `before` runs, the interactive proc waits, and so does everything after it.
    assert!(!tty.path("ask.started").exists() && !tty.path("after.started").exists());
    std::fs::write(tty.path("go"), "").unwrap();
    tty.wait_for("the question", |t| t.text().contains("your name? "));
    assert!(!tty.path("after.started").exists(), "after ran beside ask");
    // The live display stepped aside: the question stays the last thing on the screen.
    // (No event says that the display did not draw: it is watched over several of its
    // frames, which come every 100 ms.)
    for _ in 0..10 {
        let screen = tty.screen();
        assert!(!screen.iter().any(|l| is_header(l)), "{screen:?}");
        let last = screen.iter().rev().find(|l| !l.trim().is_empty());
        assert_eq!(last.map(|l| l.trim_end()), Some("your name?"), "{screen:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
    tty.tmux(&["send-keys", "-t", "s", "Ada Lovelace", "Enter"]);
    assert_eq!(tty.exit_code(), 0, "{}", tty.text());
    let answer = std::fs::read_to_string(tty.path("answer.txt")).unwrap();
    assert_eq!(answer, "Ada Lovelace\n");
    assert!(tty.path("after.saw-answer").exists());
}

/// An interactive command's last line without a newline stays on the screen, on its own
/// row: the live display's next frame erased it (it redraws from the row's start), and a
/// plain line was written after it on the same row.
#[test]
#[cfg_attr(prun_no_tmux, ignore = "tmux is not installed")]
fn an_interactive_procs_last_line_without_a_newline_stays_on_its_own_row() {
    let script = r#"proc("ask", #{ interactive: true, shell: "echo first; printf 'no newline here'" });
proc("next", #{ deps: ["ask"], cmd: ["true"] });
run("next");
"#;
    for (test, args) in [("tail-live", "--live"), ("tail-plain", "--no-live")] {
        let tty = Tty::start(test, script, args);
        assert_eq!(tty.exit_code(), 0, "{}", tty.text());
        let screen = tty.screen();
        let at = |text: &str| screen.iter().position(|l| l.trim_end().ends_with(text));
        let (first, tail) = (at("first"), at("no newline here"));
        assert_eq!(
            tail.zip(first).map(|(t, f)| t - f),
            Some(1),
            "{args}: {screen:?}"
        );
        let tail = tail.unwrap_or(0);
        assert_eq!(
            screen[tail].trim_end(),
            "no newline here",
            "{args}: {screen:?}"
        );
        assert!(
            screen[tail + 1].contains("SUCCEEDED") && screen[tail + 1].contains("ask"),
            "{args}: {screen:?}"
        );
    }
}

#[test]
#[cfg_attr(prun_no_tmux, ignore = "tmux is not installed")]
fn a_live_run_that_schedules_nothing_lists_the_targets_without_a_summary() {
    let script = r#"proc("build", #{ help: "build it", cmd: ["true"] });"#;
    let tty = Tty::start("nothing-to-run", script, "--live");
    assert_eq!(tty.exit_code(), 0, "{}", tty.text());
    let text = tty.text();
    assert!(text.contains("nothing to run: name targets"), "{text}");
    assert!(text.contains("build  build it"), "{text}");
    // As without the live display: "0 succeeded" would say nothing.
    assert!(!text.contains("succeeded"), "{text}");
}

#[test]
#[cfg_attr(prun_no_tmux, ignore = "tmux is not installed")]
fn ctrl_c_in_an_interactive_proc_starts_nothing_after_it() {
    // Six procs are ready behind the interactive one: the moment its command ends by
    // Ctrl-C, the run is already interrupted, so none of them starts and the exit is 130.
    // The question comes once the command has the terminal (its group is the terminal's
    // foreground, fields 5 and 8 of /proc/PID/stat), so that Ctrl-C goes to it alone.
    let script = r#"
proc("ask", #{ now: true, interactive: true, shell: "while read -r p c s pp pg se tt tp rest < /proc/$$/stat; [ \"$pg\" != \"$tp\" ]; do sleep 0.01; done; printf 'your name? '; read answer" });
for i in 0..6 { proc(`after${i}`, #{ now: true, shell: `touch after${i}.started` }); }
"#;
    let tty = Tty::start("interactive-int-queue", script, "-j 4");
    tty.wait_for("the question", |t| t.text().contains("your name? "));
    tty.tmux(&["send-keys", "-t", "s", "C-c"]);
    assert_eq!(tty.exit_code(), 130, "{}", tty.text());
    for i in 0..6 {
        let file = format!("after{i}.started");
        assert!(!tty.path(&file).exists(), "{file}\n{}", tty.text());
    }
}

#[test]
#[cfg_attr(prun_no_tmux, ignore = "tmux is not installed")]
fn ctrl_c_in_an_interactive_proc_ends_it_and_the_run() {
    let tty = Tty::start("interactive-int", ASK, "-j 4");
    std::fs::write(tty.path("go"), "").unwrap();
    tty.wait_for("the question", |t| t.text().contains("your name? "));
    tty.tmux(&["send-keys", "-t", "s", "C-c"]);
    assert_eq!(tty.exit_code(), 130, "{}", tty.text());
    assert!(!tty.path("answer.txt").exists());
    assert!(!tty.path("after.started").exists());
}

/// Output that is not UTF-8 (a tool's Latin-1) keeps its failure's excerpt, shown with a
/// replacement character, and `prun log` prints it as written; an excerpt's very long line
/// and a very long command are cut in the report, saying how much was left out.
#[test]
fn failure_reports_show_output_that_is_not_utf8_and_cut_huge_lines() {
    let out = Test::new()
        .script(
            r#"
proc("latin", #{ shell: "printf 'caf\\351\\n'; echo 'error: the real reason'; exit 3" });
proc("oneline", #{ shell: "head -c 300000 /dev/zero | tr '\\0' a; echo; exit 4" });
proc("longcmd", |ctx| { let a = ["false"]; for i in 0..20000 { a.push("word"); } exec(a) });
run(["latin", "oneline", "longcmd"]);
"#,
        )
        .run();
    out.code(1)
        .out_has("| caf\u{fffd}")
        .out_has("| error: the real reason");
    assert!(
        out.stdout.len() < 20_000,
        "the report was not cut: {} bytes",
        out.stdout.len()
    );
    out.out_has("… (299000 more bytes)")
        .out_has("more bytes)` exited with code 1");
    let log = std::process::Command::new(env!("CARGO_BIN_EXE_prun"))
        .args(["log", "main.rhai", "latin"])
        .current_dir(out.dir.path())
        .env("XDG_STATE_HOME", out.path("state"))
        .output()
        .expect("prun log");
    assert_eq!(log.status.code(), Some(0), "{log:?}");
    assert!(
        log.stdout.windows(5).any(|w| w == b"caf\xe9\n"),
        "{}",
        String::from_utf8_lossy(&log.stdout)
    );
}

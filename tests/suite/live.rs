//! The live display, seen through a real terminal: each test runs prun in its own tmux
//! server (a unique `-L` socket) with a window of a fixed size, reads the screen with
//! `capture-pane`, the cursor with `display '#{cursor_flag}'`, and every byte prun wrote
//! to the terminal through `pipe-pane`.
//!
//! Nothing here waits a fixed time before asserting: jobs block until the test creates a
//! `go` file, and the test polls the screen, with a bounded timeout, until what it expects
//! is there. Screen lines are read with
//! `capture-pane -J`, which joins a line the terminal wrapped, so a line too wide for the
//! window shows up as a long line.
//!
//! Without tmux the tests are ignored (`build.rs` sets `prun_no_tmux`), unless
//! `PRUN_E2E=require`, where they run and fail.

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::support::{alive, assert_gone};

/// How long a test waits for something to appear on the screen.
const TIMEOUT: Duration = Duration::from_secs(20);

/// `sh block.sh NAME`: writes its pid to `NAME.pid`, then waits until `go` exists (bounded,
/// about 30 s, so that a failed test leaves nothing running for long).
const BLOCK_SH: &str = r#"echo $$ > "$1.pid"
i=0
while [ ! -e go ]; do
  i=$((i+1))
  if [ $i -gt 600 ]; then echo "block: $1 gave up waiting for go" >&2; exit 9; fi
  sleep 0.05
done
"#;

/// A proc body that blocks until `go` exists.
fn blocked(name: &str) -> String {
    format!(r#"proc("{name}", #{{ cmd: ["sh", "block.sh", "{name}"] }});"#)
}

/// A script of `first` (a proc's name and its definition, if any), then a [`blocked`]
/// proc for each of `names`, and a `run` of them all.
fn with_blocked(first: Option<(&str, &str)>, names: &[&str]) -> String {
    let mut script = String::new();
    let mut all: Vec<String> = Vec::new();
    if let Some((name, definition)) = first {
        script.push_str(definition);
        script.push('\n');
        all.push(format!("{name:?}"));
    }
    for name in names {
        script.push_str(&blocked(name));
        script.push('\n');
        all.push(format!("{name:?}"));
    }
    script.push_str(&format!("run([{}]);\n", all.join(", ")));
    script
}

/// prun running in a tmux window. Dropping it releases the jobs (creates `go`), kills the
/// tmux server and any job still running.
struct Term {
    dir: tempfile::TempDir,
    socket: String,
    /// The server's socket file, removed at the end (`kill-server` leaves it).
    socket_path: Option<PathBuf>,
    /// Every byte written to the terminal (`pipe-pane`).
    raw: PathBuf,
    /// Whether the scrollback holds only lines that scrolled off the top (see
    /// [`Term::start`]); when not, only the visible screen is checked.
    scrollback_is_honest: bool,
}

impl Term {
    /// Writes `script` to `main.rhai` in a fresh directory and runs the shell command line
    /// `command` there (`$PRUN` is the prun binary) in a `width` x `height` tmux window,
    /// followed by `echo EXIT=$?`. `None` when tmux is not installed.
    fn start(test: &str, size: (u16, u16), script: &str, command: &str) -> Option<Term> {
        Term::launch(test, size, script, command, false)
    }

    /// [`Term::start`] with tmux's `scroll-on-clear` on, as tmux has it by default: a
    /// screen cleared from its top-left corner moves into the scrollback. The scrollback
    /// is read whole all the same: prun must never clear the screen that way.
    fn start_scrolling_on_clear(
        test: &str,
        size: (u16, u16),
        script: &str,
        command: &str,
    ) -> Option<Term> {
        Term::launch(test, size, script, command, true)
    }

    fn launch(
        test: &str,
        (width, height): (u16, u16),
        script: &str,
        command: &str,
        scroll_on_clear: bool,
    ) -> Option<Term> {
        if !tmux_installed() {
            assert_ne!(
                std::env::var("PRUN_E2E").as_deref(),
                Ok("require"),
                "tmux is required (PRUN_E2E=require)"
            );
            eprintln!("SKIPPED: tmux not installed");
            return None;
        }
        let dir = tempfile::tempdir().expect("tempdir");
        let d = dir.path();
        std::fs::write(d.join("main.rhai"), script).expect("write script");
        std::fs::write(d.join("block.sh"), BLOCK_SH).expect("write block.sh");
        // The shell waits for `start` so that `pipe-pane` is in place before prun writes
        // anything. It catches SIGINT (a caught signal is default again in prun) so that
        // Ctrl-C reaches prun and the shell lives on to print its exit status.
        let run = format!(
            "cd '{dir}' || exit 1\n\
             export XDG_STATE_HOME='{dir}/state'\n\
             export PRUN='{prun}'\n\
             unset NO_COLOR\n\
             trap 'true' INT\n\
             i=0\n\
             while [ ! -e start ] && [ $i -lt 400 ]; do i=$((i+1)); sleep 0.05; done\n\
             {command}\n\
             echo \"EXIT=$?\"\n\
             exec sleep 600\n",
            dir = d.display(),
            prun = env!("CARGO_BIN_EXE_prun"),
        );
        std::fs::write(d.join("run.sh"), run).expect("write run.sh");
        let mut term = Term {
            socket: format!("prun-live-{}-{test}", std::process::id()),
            raw: d.join("pane.raw"),
            dir,
            socket_path: None,
            scrollback_is_honest: false,
        };
        let dir_arg = term.dir.path().display().to_string();
        term.tmux(&[
            "new-session",
            "-d",
            "-s",
            "s",
            "-x",
            &width.to_string(),
            "-y",
            &height.to_string(),
            "-c",
            &dir_arg,
            "sh run.sh",
        ]);
        term.socket_path = term
            .try_tmux(&["display", "-p", "#{socket_path}"])
            .ok()
            .map(|p| PathBuf::from(p.trim()))
            .filter(|p| p.is_absolute());
        // tmux moves the screen into the scrollback when it is cleared from the top-left
        // corner (as erasing a live area drawn on the first line does), where xterm just
        // clears it; tmux 3.3 and later can be told not to.
        term.scrollback_is_honest = scroll_on_clear
            || term
                .try_tmux(&["set-option", "-g", "scroll-on-clear", "off"])
                .is_ok();
        term.tmux(&[
            "pipe-pane",
            "-t",
            "s",
            &format!("cat >> '{}'", term.raw.display()),
        ]);
        term.touch("start");
        Some(term)
    }

    /// Runs a tmux command on this test's server and returns its stdout.
    fn tmux(&self, args: &[&str]) -> String {
        self.try_tmux(args)
            .unwrap_or_else(|e| panic!("tmux {args:?} failed: {e}"))
    }

    /// Runs a tmux command; its stdout, or its stderr when it fails.
    fn try_tmux(&self, args: &[&str]) -> Result<String, String> {
        let out = Command::new("tmux")
            .args(["-L", &self.socket, "-f", "/dev/null"])
            .args(args)
            .env_remove("TMUX")
            .env_remove("TMUX_PANE")
            .output()
            .expect("run tmux");
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).into_owned())
        }
    }

    fn path(&self, p: &str) -> PathBuf {
        self.dir.path().join(p)
    }

    fn touch(&self, p: &str) {
        std::fs::write(self.path(p), "").expect("touch");
    }

    /// The visible screen.
    fn screen(&self) -> Pane {
        Pane::new(&self.tmux(&["capture-pane", "-p", "-J", "-t", "s"]))
    }

    /// The scrollback and the visible screen (only the screen on a tmux that moves a
    /// cleared screen into the scrollback).
    fn history(&self) -> Pane {
        if !self.scrollback_is_honest {
            return self.screen();
        }
        Pane::new(&self.tmux(&["capture-pane", "-p", "-J", "-S", "-", "-t", "s"]))
    }

    /// The visible screen with its colours and attributes as escape sequences.
    fn screen_with_escapes(&self) -> Pane {
        Pane::new(&self.tmux(&["capture-pane", "-p", "-J", "-e", "-t", "s"]))
    }

    fn cursor_visible(&self) -> bool {
        self.tmux(&["display", "-p", "-t", "s", "#{cursor_flag}"])
            .trim()
            .eq("1")
    }

    fn resize(&self, width: u16, height: u16) {
        self.tmux(&[
            "resize-window",
            "-t",
            "s",
            "-x",
            &width.to_string(),
            "-y",
            &height.to_string(),
        ]);
    }

    /// What prun wrote to the terminal, escape codes included.
    fn raw(&self) -> String {
        String::from_utf8_lossy(&std::fs::read(&self.raw).unwrap_or_default()).into_owned()
    }

    /// The screen and the end of the raw output, for failure messages.
    fn describe(&self) -> String {
        let raw = self.raw();
        let tail: String = {
            let chars: Vec<char> = raw.chars().collect();
            chars[chars.len().saturating_sub(3000)..].iter().collect()
        };
        format!(
            "--- screen\n{}\n--- end of what prun wrote\n{tail:?}",
            self.screen().lines.join("\n")
        )
    }

    /// Polls the screen until `check` accepts it (returns `Ok`); fails the test after
    /// [`TIMEOUT`] with the last reason `check` gave.
    fn wait_for<T>(&self, what: &str, check: impl Fn(&Pane) -> Result<T, String>) -> T {
        let t = Instant::now();
        loop {
            let pane = self.screen();
            match check(&pane) {
                Ok(v) => return v,
                Err(why) if t.elapsed() > TIMEOUT => {
                    panic!("timed out waiting for {what}: {why}\n{}", self.describe())
                }
                Err(_) => std::thread::sleep(Duration::from_millis(50)),
            }
        }
    }

    /// Waits until prun has exited and returns its exit status and the final screen.
    fn wait_exit(&self) -> (i32, Pane) {
        self.wait_for("prun to exit (EXIT=)", |p| {
            p.exit_code()
                .map(|c| (c, p.clone()))
                .ok_or("no EXIT= line".into())
        })
    }

    /// Waits for prun to exit and asserts a clean successful end: status 0, a summary
    /// line starting with `summary`, the cursor shown again and nothing of the live area
    /// left.
    fn ends_cleanly(&self, summary: &str, names: &[&str]) {
        let (code, end) = self.wait_exit();
        assert_eq!(code, 0, "exit status\n{}", self.describe());
        assert!(
            end.starting(summary).is_some(),
            "no summary line\n{}",
            self.describe()
        );
        assert!(
            self.cursor_visible(),
            "the cursor is hidden after the run\n{}",
            self.describe()
        );
        self.assert_no_live_area(names);
    }

    /// Asserts nothing of the live area is on the screen nor in the scrollback.
    fn assert_no_live_area(&self, names: &[&str]) {
        let hist = self.history();
        let left = hist.live_lines(names);
        assert!(
            left.is_empty(),
            "lines of the live area remain: {left:?}\n--- scrollback and screen\n{}\n{}",
            hist.lines.join("\n"),
            self.describe()
        );
    }

    fn pid(&self, name: &str) -> Option<u32> {
        std::fs::read_to_string(self.path(&format!("{name}.pid")))
            .ok()?
            .trim()
            .parse()
            .ok()
    }
}

impl Drop for Term {
    fn drop(&mut self) {
        let _ = std::fs::write(self.path("go"), "");
        let _ = Command::new("tmux")
            .args(["-L", &self.socket, "kill-server"])
            .env_remove("TMUX")
            .output();
        if let Some(p) = &self.socket_path {
            let _ = std::fs::remove_file(p);
        }
        // Jobs see `go` and end; do not leave one behind if it does not.
        let pids: Vec<u32> = std::fs::read_dir(self.dir.path())
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| {
                let name = e.file_name().to_string_lossy().into_owned();
                let job = name.strip_suffix(".pid")?.to_string();
                self.pid(&job)
            })
            .collect();
        let t = Instant::now();
        while pids.iter().any(|&p| alive(p)) && t.elapsed() < Duration::from_secs(2) {
            std::thread::sleep(Duration::from_millis(20));
        }
        for p in pids.into_iter().filter(|&p| alive(p)) {
            let _ = Command::new("kill")
                .args(["-KILL", &p.to_string()])
                .status();
        }
    }
}

fn tmux_installed() -> bool {
    Command::new("tmux")
        .arg("-V")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Lines of a captured screen.
#[derive(Clone, Debug)]
struct Pane {
    lines: Vec<String>,
}

impl Pane {
    fn new(text: &str) -> Pane {
        Pane {
            lines: text.lines().map(str::to_string).collect(),
        }
    }

    /// The index of the first line for which `f` holds.
    fn position(&self, f: impl Fn(&str) -> bool) -> Option<usize> {
        self.lines.iter().position(|l| f(l))
    }

    /// Indexes of header lines (`prun ... running N ...`).
    fn headers(&self) -> Vec<usize> {
        (0..self.lines.len())
            .filter(|&i| is_header(&self.lines[i]))
            .collect()
    }

    /// The one header line, or why not.
    fn header(&self) -> Result<(usize, &str), String> {
        match self.headers()[..] {
            [i] => Ok((i, &self.lines[i])),
            [] => Err("no header line".into()),
            ref many => Err(format!("{} header lines", many.len())),
        }
    }

    /// The live-area line of a running proc named `name`.
    fn proc_line(&self, name: &str) -> Result<(usize, &str), String> {
        self.position(|l| is_proc_line(l, |w| w == name))
            .map(|i| (i, self.lines[i].as_str()))
            .ok_or_else(|| format!("no spinner line for {name:?}"))
    }

    /// Header, spinner lines of `names` and `more running` lines.
    fn live_lines(&self, names: &[&str]) -> Vec<&str> {
        self.lines
            .iter()
            .filter(|l| {
                is_header(l)
                    || l.contains("more running")
                    || names.iter().any(|n| is_proc_line(l, |w| w == *n))
            })
            .map(String::as_str)
            .collect()
    }

    fn exit_code(&self) -> Option<i32> {
        self.lines.iter().find_map(|l| {
            let rest = &l[l.find("EXIT=")? + 5..];
            rest.trim().parse().ok()
        })
    }

    /// The first line starting with `prefix` (after a time stamp, if any).
    fn starting(&self, prefix: &str) -> Option<(usize, &str)> {
        self.position(|l| unstamp(l).starts_with(prefix))
            .map(|i| (i, self.lines[i].as_str()))
    }

    fn text(&self) -> String {
        self.lines.join("\n")
    }
}

/// `line` without a leading time stamp (`2026-11-22T01:45:11Z `), which plain output
/// may put first on a proc's line.
fn unstamp(line: &str) -> &str {
    let b = line.as_bytes();
    let stamped = b.len() > 21
        && b[4] == b'-'
        && b[10] == b'T'
        && b[19] == b'Z'
        && b[20] == b' '
        && b[..19]
            .iter()
            .all(|c| c.is_ascii_digit() || b"-T:".contains(c));
    if stamped { &line[21..] } else { line }
}

/// A header line: `prun  1.2s  running 2 · ...`, or compacted for a narrow window
/// (`prun 1.2s · run 2 · ...`, `done 1/4 · failed 1`).
fn is_header(line: &str) -> bool {
    let t = line.trim_start();
    (t.starts_with("prun")
        && (number_after(t, "running ").is_some() || number_after(t, "run ").is_some()))
        || (t.starts_with("done ") && number_after(t, "done ").is_some())
}

/// A line that starts with a spinner (not a letter, digit or the `|` of a log line) and
/// has a word for which `is_name` holds.
fn is_proc_line(line: &str, is_name: impl Fn(&str) -> bool) -> bool {
    let t = line.trim_start();
    t.chars()
        .next()
        .is_some_and(|c| !c.is_alphanumeric() && c != '|' && c != '…')
        && t.split_whitespace().any(is_name)
}

/// The number after `word` in `line` (`running 3` gives 3).
fn number_after(line: &str, word: &str) -> Option<usize> {
    let rest = &line[line.find(word)? + word.len()..];
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

/// Whether `line` has an elapsed time such as `1.2s`, `12s` or `2m05s`.
fn has_elapsed(line: &str) -> bool {
    line.split(|c: char| c.is_whitespace() || "()[]/,·".contains(c))
        .any(|w| {
            w.strip_suffix('s').is_some_and(|n| {
                n.starts_with(|c: char| c.is_ascii_digit())
                    && n.chars().all(|c| c.is_ascii_digit() || ".mh".contains(c))
            })
        })
}

/// Whether `s` has an SGR sequence that sets a foreground or background colour.
fn has_colour(s: &str) -> bool {
    csi_sequences(s).any(|(params, end)| {
        end == 'm'
            && params.split(';').any(|p| {
                let code: u32 = p.split(':').next().unwrap_or("").parse().unwrap_or(0);
                matches!(code, 30..=38 | 40..=48 | 90..=97 | 100..=107)
            })
    })
}

/// The CSI sequences (`ESC [ params final`) in `s`, as (params, final character).
fn csi_sequences(s: &str) -> impl Iterator<Item = (&str, char)> {
    let mut rest = s;
    std::iter::from_fn(move || {
        let i = rest.find("\x1b[")?;
        let after = &rest[i + 2..];
        let end = after.find(|c: char| ('\x40'..='\x7e').contains(&c))?;
        let fin = after[end..].chars().next()?;
        rest = &after[end + fin.len_utf8()..];
        Some((&after[..end], fin))
    })
}

/// `s` without its CSI sequences.
fn strip_escapes(s: &str) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some(i) = rest.find("\x1b[") {
        out.push_str(&rest[..i]);
        let after = &rest[i + 2..];
        match after.find(|c: char| ('\x40'..='\x7e').contains(&c)) {
            Some(end) => rest = &after[end + 1..],
            None => {
                rest = "";
                break;
            }
        }
    }
    out.push_str(rest);
    out
}

fn width(line: &str) -> usize {
    line.chars().count()
}

#[test]
#[cfg_attr(prun_no_tmux, ignore = "tmux is not installed")]
fn live_area_shows_running_procs_and_is_erased_at_the_end() {
    let names = ["alpha", "bravo", "charlie"];
    let script = with_blocked(
        Some(("quick", r#"proc("quick", #{ cmd: ["true"] });"#)),
        &names,
    );
    let Some(t) = Term::start("midrun", (100, 30), &script, r#""$PRUN" main.rhai -j 8"#) else {
        return;
    };
    t.wait_for("the live area with three running procs", |p| {
        let (h, header) = p.header()?;
        if number_after(header, "running ") != Some(3) || number_after(header, "done ") != Some(1) {
            return Err(format!(
                "header is not `running 3` and `done 1`: {header:?}"
            ));
        }
        if !has_elapsed(header) {
            return Err(format!("no elapsed time in the header {header:?}"));
        }
        for n in names {
            let (i, line) = p.proc_line(n)?;
            if i <= h {
                return Err(format!("the line of {n} is above the header"));
            }
            if !has_elapsed(line) {
                return Err(format!("no elapsed time in {line:?}"));
            }
        }
        let (q, _) = p
            .starting("SUCCEEDED  quick (")
            .ok_or("no `SUCCEEDED  quick (` line")?;
        if q > h {
            return Err("the finished line of quick is below the header".into());
        }
        Ok(())
    });
    assert!(
        !t.cursor_visible(),
        "the cursor is visible while the live area is shown\n{}",
        t.describe()
    );
    t.touch("go");
    t.ends_cleanly("prun: 4 succeeded in ", &names);
    let hist = t.history();
    for n in ["quick", "alpha", "bravo", "charlie"] {
        let prefix = format!("SUCCEEDED  {n} (");
        let count = hist
            .lines
            .iter()
            .filter(|l| unstamp(l).starts_with(&prefix))
            .count();
        assert_eq!(
            count,
            1,
            "expected one `{prefix}` line\n{}\n{}",
            hist.text(),
            t.describe()
        );
    }
}

#[test]
#[cfg_attr(prun_no_tmux, ignore = "tmux is not installed")]
fn live_area_shows_progress() {
    let script = r#"
proc("meter", |ctx| { ctx.progress(0.5); shell("sh block.sh meter"); });
proc("label", |ctx| { ctx.progress("copying files"); shell("sh block.sh label"); });
run(["meter", "label"]);
"#;
    let Some(t) = Term::start("progress", (100, 30), script, r#""$PRUN" main.rhai -j 4"#) else {
        return;
    };
    t.wait_for("the progress of both procs", |p| {
        let (_, meter) = p.proc_line("meter")?;
        if !meter.contains("50%") {
            return Err(format!("no 50% in {meter:?}"));
        }
        let (_, label) = p.proc_line("label")?;
        if !label.contains("copying files") {
            return Err(format!("no progress text in {label:?}"));
        }
        Ok(())
    });
    t.touch("go");
    let (code, _) = t.wait_exit();
    assert_eq!(code, 0, "exit status\n{}", t.describe());
    t.assert_no_live_area(&["meter", "label"]);
}

#[test]
#[cfg_attr(prun_no_tmux, ignore = "tmux is not installed")]
fn more_running_procs_than_fit_are_summarised() {
    let names: Vec<String> = (1..=20).map(|i| format!("job{i:02}")).collect();
    let mut script = String::new();
    for n in &names {
        script.push_str(&blocked(n));
        script.push('\n');
    }
    script.push_str("run(\"job*\");\n");
    let Some(t) = Term::start("many", (100, 12), &script, r#""$PRUN" main.rhai -j 20"#) else {
        return;
    };
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    t.wait_for("20 running procs, summarised", |p| {
        let h = header_running(p, 20)?;
        let (m, more) = p
            .position(|l| l.contains("more running"))
            .map(|i| (i, &p.lines[i]))
            .ok_or("no `more running` line")?;
        let hidden = number_after(more, "and ").ok_or(format!("no count in {more:?}"))?;
        let shown = refs.iter().filter(|n| p.proc_line(n).is_ok()).count();
        if shown == 0 || shown + hidden != 20 {
            return Err(format!("{shown} spinner lines and {more:?}"));
        }
        if m < h {
            return Err(format!("{more:?} is above the header"));
        }
        Ok(())
    });
    // The live area fits the window: had it been taller, redrawing it would have pushed
    // copies of its header into the scrollback.
    let hist = t.history();
    assert_eq!(
        hist.headers().len(),
        1,
        "header lines in the scrollback and on screen\n{}\n{}",
        hist.text(),
        t.describe()
    );
    let screen = t.screen();
    assert!(
        screen.live_lines(&refs).len() <= 12,
        "the live area does not fit a 12-line window\n{}",
        t.describe()
    );
    t.touch("go");
    let (code, end) = t.wait_exit();
    assert_eq!(code, 0, "exit status\n{}", t.describe());
    assert!(
        end.starting("prun: 20 succeeded in ").is_some(),
        "no summary line\n{}",
        t.describe()
    );
    t.assert_no_live_area(&refs);
    let hist = t.history();
    for n in &names {
        let prefix = format!("SUCCEEDED  {n} (");
        assert!(
            hist.lines
                .iter()
                .filter(|l| unstamp(l).starts_with(&prefix))
                .count()
                == 1,
            "expected one `{prefix}` line\n{}",
            hist.text()
        );
    }
}

#[test]
#[cfg_attr(prun_no_tmux, ignore = "tmux is not installed")]
fn redrawing_a_live_area_on_the_first_row_leaves_no_copy_in_tmux_scrollback() {
    // A fresh window: the live area begins on the first row, and with 20 procs in 12
    // rows it fills the window. Erasing it "from the cursor down" cleared tmux's screen
    // from the top-left corner, and tmux moved each frame into the scrollback.
    let names: Vec<String> = (1..=20).map(|i| format!("job{i:02}")).collect();
    let mut script: String = names.iter().map(|n| blocked(n) + "\n").collect();
    script.push_str("run(\"job*\");\n");
    let Some(t) = Term::start_scrolling_on_clear(
        "first-row",
        (80, 12),
        &script,
        r#""$PRUN" main.rhai -j 20"#,
    ) else {
        return;
    };
    two_frames(&t, |p| header_running(p, 20).map(|_| ()));
    assert_drawn_in_place(&t);
    t.touch("go");
    let (code, _) = t.wait_exit();
    assert_eq!(code, 0, "exit status\n{}", t.describe());
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    t.assert_no_live_area(&refs);
}

#[test]
#[cfg_attr(prun_no_tmux, ignore = "tmux is not installed")]
fn a_window_of_two_rows_shows_the_header_alone_in_place() {
    let names = ["job1", "job2", "job3"];
    let mut script: String = names.iter().map(|n| blocked(n) + "\n").collect();
    script.push_str("run(\"job*\");\n");
    let Some(t) = Term::start("two-rows", (80, 2), &script, r#""$PRUN" main.rhai -j 3"#) else {
        return;
    };
    two_frames(&t, |p| header_running(p, 3).map(|_| ()));
    assert_drawn_in_place(&t);
    t.touch("go");
    let (code, _) = t.wait_exit();
    assert_eq!(code, 0, "exit status\n{}", t.describe());
    assert!(
        t.history().starting("prun: 3 succeeded in ").is_some(),
        "no summary line\n{}",
        t.describe()
    );
    t.assert_no_live_area(&names);
}

#[test]
#[cfg_attr(prun_no_tmux, ignore = "tmux is not installed")]
fn a_window_of_one_row_gets_no_live_area_and_the_summary() {
    let names = ["job1", "job2", "job3"];
    let mut script: String = names.iter().map(|n| blocked(n) + "\n").collect();
    script.push_str("run(\"job*\");\n");
    let Some(t) = Term::start("one-row", (80, 1), &script, r#""$PRUN" main.rhai -j 3"#) else {
        return;
    };
    t.wait_for("the jobs to start", |_| {
        match names.iter().all(|n| t.pid(n).is_some()) {
            true => Ok(()),
            false => Err("not every job wrote its pid".into()),
        }
    });
    t.touch("go");
    // The shell's `EXIT=` line scrolls off the one row: it is read from what was written.
    t.wait_for("prun to exit (EXIT=)", |_| {
        match t.raw().contains("EXIT=") {
            true => Ok(()),
            false => Err("no EXIT= written".into()),
        }
    });
    assert!(
        t.raw().contains("EXIT=0\r\n"),
        "exit status\n{}",
        t.describe()
    );
    let hist = t.history();
    assert!(
        hist.starting("prun: 3 succeeded in ").is_some(),
        "no summary line\n{}\n{}",
        hist.text(),
        t.describe()
    );
    t.assert_no_live_area(&names);
    assert!(
        !t.raw().contains("running 3"),
        "a live area was drawn in one row\n{}",
        t.describe()
    );
}

#[test]
#[cfg_attr(prun_no_tmux, ignore = "tmux is not installed")]
fn failure_is_printed_above_the_live_area() {
    let script = format!(
        "proc(\"bad\", #{{ cmd: [\"sh\", \"-c\", \"echo first log line; echo last log line; exit 3\"] }});\n{}\n{}\nrun([\"bad\", \"one\", \"two\"]);\n",
        blocked("one"),
        blocked("two"),
    );
    let Some(t) = Term::start("failure", (120, 30), &script, r#""$PRUN" main.rhai -j 4"#) else {
        return;
    };
    t.wait_for("the failure above the live area", |p| {
        let h = header_running(p, 2)?;
        let (f, failed) = p
            .starting("FAILED     bad (")
            .ok_or("no `FAILED     bad (` line")?;
        if !failed.contains("exited with code 3") {
            return Err(format!("no error in {failed:?}"));
        }
        for log in ["           | first log line", "           | last log line"] {
            let i = p
                .position(|l| l == log)
                .ok_or(format!("no log line {log:?}"))?;
            if i < f || i > h {
                return Err(format!(
                    "{log:?} is not between the FAILED line and the header"
                ));
            }
        }
        p.proc_line("one")?;
        p.proc_line("two")?;
        Ok(())
    });
    t.touch("go");
    let (code, end) = t.wait_exit();
    assert_eq!(code, 1, "exit status\n{}", t.describe());
    assert!(
        end.starting("prun: 2 succeeded, 1 failed in ").is_some(),
        "no summary line\n{}",
        t.describe()
    );
    t.assert_no_live_area(&["one", "two"]);
}

/// The header's `failed N` counts the procs that failed, as the summary does: a proc not
/// run because its dependency failed (FAILED_DEP) is `not run` there, and was counted as
/// failed in the header (`failed 3` above a summary of `1 failed, 2 not run`).
#[test]
#[cfg_attr(prun_no_tmux, ignore = "tmux is not installed")]
fn a_proc_whose_dependency_failed_is_not_counted_as_failed_in_the_header() {
    let script = format!(
        "proc(\"bad\", #{{ shell: \"exit 3\" }});\nproc(\"after\", #{{ deps: [\"bad\"], shell: \"true\" }});\nproc(\"last\", #{{ deps: [\"after\"], shell: \"true\" }});\n{}\nrun([\"last\", \"one\"]);\n",
        blocked("one"),
    );
    let Some(t) = Term::start(
        "failed-dep",
        (120, 30),
        &script,
        r#""$PRUN" main.rhai -j 4"#,
    ) else {
        return;
    };
    t.wait_for("the failed dependencies above the live area", |p| {
        p.starting("FAILED_DEP last:")
            .ok_or("no `FAILED_DEP last:` line")?;
        let h = header_running(p, 1)?;
        let header = p.lines[h].as_str();
        if !header.contains("done 3 of 4 · failed 1") {
            return Err(format!("header {header:?}"));
        }
        Ok(())
    });
    t.touch("go");
    let (code, end) = t.wait_exit();
    assert_eq!(code, 1, "exit status\n{}", t.describe());
    assert!(
        end.starting("prun: 1 succeeded, 1 failed, 2 not run (failed dependency) in ")
            .is_some(),
        "no summary line\n{}",
        t.describe()
    );
}

#[test]
#[cfg_attr(prun_no_tmux, ignore = "tmux is not installed")]
fn ctrl_c_terminates_the_procs_and_restores_the_terminal() {
    let names = ["alpha", "bravo", "charlie"];
    let script = with_blocked(None, &names);
    let Some(t) = Term::start("ctrlc", (100, 30), &script, r#""$PRUN" main.rhai -j 8"#) else {
        return;
    };
    t.wait_for("three running procs", |p| {
        header_running(p, 3)?;
        for n in names {
            p.proc_line(n)?;
            t.pid(n).ok_or(format!("{n} has not written its pid"))?;
        }
        Ok(())
    });
    let pids: Vec<u32> = names.iter().map(|n| t.pid(n).expect("pid")).collect();
    t.tmux(&["send-keys", "-t", "s", "C-c"]);
    let (code, end) = t.wait_exit();
    assert_eq!(code, 130, "exit status\n{}", t.describe());
    assert!(
        t.cursor_visible(),
        "the cursor is hidden after Ctrl-C\n{}",
        t.describe()
    );
    t.assert_no_live_area(&names);
    let (_, line) = end
        .position(|l| l.contains("prun: interrupted; terminated: "))
        .map(|i| (i, end.lines[i].clone()))
        .unwrap_or_else(|| panic!("no `prun: interrupted; terminated:` line\n{}", t.describe()));
    for n in names {
        assert!(line.contains(n), "{n} is not in {line:?}\n{}", t.describe());
    }
    for (n, pid) in names.iter().zip(pids) {
        assert_gone(pid, n, &t.describe());
    }
}

#[test]
#[cfg_attr(prun_no_tmux, ignore = "tmux is not installed")]
fn ctrl_z_leaves_a_clean_prompt_bg_prints_no_area_and_fg_draws_it_again() {
    let names = ["alpha", "bravo"];
    let script = format!(
        "proc(\"late\", #{{ cmd: [\"sh\", \"-c\", \"while [ ! -e bg-go ]; do sleep 0.05; done\"] }});\n{}\n{}\nrun([\"late\", \"alpha\", \"bravo\"]);\n",
        blocked("alpha"),
        blocked("bravo"),
    );
    // A shell with job control: Ctrl-Z stops prun, the shell goes on, sends it to the
    // background (where it runs: a failed test leaves nothing stopped), then brings it
    // back to the foreground (after about 30 s at most).
    let command = r#"bash -c 'set -m; "$PRUN" main.rhai -j 8; echo "STOPPED=$?"; bg; echo BACKGROUND; i=0; while [ ! -e cont ] && [ $i -lt 600 ]; do i=$((i+1)); sleep 0.05; done; fg'"#;
    let Some(t) = Term::start("ctrlz", (100, 30), &script, command) else {
        return;
    };
    t.wait_for("three running procs", |p| {
        header_running(p, 3)?;
        names.iter().try_for_each(|n| p.proc_line(n).map(drop))
    });
    t.tmux(&["send-keys", "-t", "s", "C-z"]);
    t.wait_for("the shell to see prun stopped", |p| {
        p.starting("STOPPED=")
            .map(drop)
            .ok_or("no `STOPPED=` line".into())
    });
    assert!(
        t.cursor_visible(),
        "the cursor is hidden at the shell's prompt after Ctrl-Z\n{}",
        t.describe()
    );
    t.assert_no_live_area(&names);
    // In the background prun goes on, printing lines but no area. (No event says that
    // the display did not draw: it is watched over several of its frames.)
    t.wait_for("prun in the background", |p| {
        p.starting("BACKGROUND")
            .map(drop)
            .ok_or("no `BACKGROUND` line".into())
    });
    t.touch("bg-go");
    t.wait_for("the line of a proc that ended in the background", |p| {
        p.starting("SUCCEEDED  late (")
            .map(drop)
            .ok_or("no `SUCCEEDED  late (` line".into())
    });
    for _ in 0..10 {
        t.assert_no_live_area(&names);
        std::thread::sleep(Duration::from_millis(50));
    }
    t.touch("cont");
    t.wait_for("the live area again after fg", |p| {
        header_running(p, 2)?;
        names.iter().try_for_each(|n| p.proc_line(n).map(drop))
    });
    t.touch("go");
    t.ends_cleanly("prun: 3 succeeded in ", &names);
}

/// An interactive proc that writes its pid to `ask.pid` once its group is the terminal's
/// foreground (fields 5 and 8 of /proc/PID/stat), so that Ctrl-Z goes to it alone, then
/// reads a line.
const ASK_AFTER_CTRL_Z: &str = r#"proc("ask", #{ now: true, interactive: true, shell: "while read -r p c s pp pg se tt tp rest < /proc/$$/stat; [ \"$pg\" != \"$tp\" ]; do sleep 0.01; done; echo $$ > ask.pid; printf 'your name? '; read x; echo \"got $x\"" });"#;

/// Ctrl-Z while an interactive command has the terminal: prun takes it back and stops,
/// so that its shell sees it stopped with `stopped` (`$?`), and `jobs` lists it; `fg`
/// gives the terminal back to the command, which reads the line typed next, and the
/// run ends well, nothing left.
/// Types the answer `ASK_AFTER_CTRL_Z`'s command waits for, once it has the terminal
/// again: it prints it, the run ends well, and the command (pid `ask`) is gone.
fn answers_and_ends(t: &Term, ask: u32) {
    t.tmux(&["send-keys", "-t", "s", "Ada", "Enter"]);
    t.wait_for("the command's answer", |p| {
        p.position(|l| l == "got Ada")
            .ok_or("no `got Ada` line".into())
    });
    t.ends_cleanly("prun: 1 succeeded in ", &["ask"]);
    assert_gone(ask, "ask", &t.describe());
}

fn ctrl_z_in_an_interactive_proc(test: &str, args: &str, stopped: i32) {
    let command = format!(
        r#"bash -c 'set -m; "$PRUN" main.rhai {args}; echo "STOPPED=$?"; jobs; i=0; while [ ! -e cont ] && [ $i -lt 600 ]; do i=$((i+1)); sleep 0.05; done; fg'"#
    );
    let Some(t) = Term::start(test, (100, 30), ASK_AFTER_CTRL_Z, &command) else {
        return;
    };
    let ask = t.wait_for("the question", |p| {
        p.position(|l| l.contains("your name? "))
            .ok_or("no question".to_string())?;
        t.pid("ask").ok_or("no ask.pid".to_string())
    });
    t.tmux(&["send-keys", "-t", "s", "C-z"]);
    let code = t.wait_for("the shell to see prun stopped", |p| {
        let (_, line) = p.starting("STOPPED=").ok_or("no `STOPPED=` line")?;
        p.position(|l| l.contains("Stopped") && l.contains("main.rhai"))
            .ok_or("`jobs` lists no stopped prun")?;
        line["STOPPED=".len()..]
            .trim()
            .parse::<i32>()
            .map_err(|e| e.to_string())
    });
    assert_eq!(code, stopped, "the stop's status\n{}", t.describe());
    assert!(alive(ask), "the command ended at Ctrl-Z\n{}", t.describe());
    t.touch("cont");
    // `fg` prints the job's command line, below `jobs`'s.
    t.wait_for("prun in the foreground again", |p| {
        let (after, _) = p.starting("STOPPED=").ok_or("no `STOPPED=` line")?;
        p.lines[after..]
            .iter()
            .find(|l| l.contains("main.rhai") && !l.contains("Stopped"))
            .map(drop)
            .ok_or("`fg` did not print the job".into())
    });
    answers_and_ends(&t, ask);
}

#[test]
#[cfg_attr(prun_no_tmux, ignore = "tmux is not installed")]
fn ctrl_z_in_an_interactive_proc_stops_prun_and_fg_gives_the_command_the_terminal_again() {
    // The live display catches SIGTSTP: prun stops with SIGSTOP, as on its own Ctrl-Z.
    ctrl_z_in_an_interactive_proc("ctrlz-ask", "", 128 + 19);
}

#[test]
#[cfg_attr(prun_no_tmux, ignore = "tmux is not installed")]
fn ctrl_z_in_an_interactive_proc_of_plain_output_stops_prun_with_sigtstp() {
    ctrl_z_in_an_interactive_proc("ctrlz-ask-plain", "--no-live", 128 + 20);
}

/// `bg` after Ctrl-Z in an interactive proc: the command runs on without the terminal,
/// and its read stops it again, and prun with it (no spinning: the shell lists prun
/// stopped); `fg` then gives it the terminal, and the run ends well.
#[test]
#[cfg_attr(prun_no_tmux, ignore = "tmux is not installed")]
fn bg_after_ctrl_z_in_an_interactive_proc_stops_prun_again_at_the_command_s_read() {
    let command = r#"bash -c 'set -m; "$PRUN" main.rhai; echo "STOPPED=$?"; bg; i=0; until jobs > jobs.txt; grep -q Stopped jobs.txt || [ $i -gt 600 ]; do i=$((i+1)); sleep 0.05; done; echo "AGAIN: $(cat jobs.txt)"; fg'"#;
    let Some(t) = Term::start("ctrlz-ask-bg", (100, 30), ASK_AFTER_CTRL_Z, command) else {
        return;
    };
    let ask = t.wait_for("the question", |p| {
        p.position(|l| l.contains("your name? "))
            .ok_or("no question".to_string())?;
        t.pid("ask").ok_or("no ask.pid".to_string())
    });
    t.tmux(&["send-keys", "-t", "s", "C-z"]);
    t.wait_for("prun stopped again in the background", |p| {
        p.position(|l| l.starts_with("AGAIN: ") && l.contains("Stopped"))
            .map(drop)
            .ok_or("no `AGAIN: ... Stopped` line".into())
    });
    answers_and_ends(&t, ask);
}

/// The terminal closed while an interactive command reads it: the command reads the end
/// of its input (or gets the SIGHUP), and the run is interrupted before anything queued
/// behind it starts, as for Ctrl-C (a SIGHUP reaches prun only from a shell that passes
/// it on to its jobs, and may come after its next proc started). Nothing is left.
#[test]
#[cfg_attr(prun_no_tmux, ignore = "tmux is not installed")]
fn a_terminal_closed_at_an_interactive_proc_interrupts_the_run_before_the_next_proc() {
    let script = format!(
        "{ASK_AFTER_CTRL_Z}\nproc(\"after\", #{{ now: true, shell: \"touch after.started\" }});\n"
    );
    let command = r#""$PRUN" main.rhai --json report.json"#;
    let Some(t) = Term::start("hangup-ask", (100, 30), &script, command) else {
        return;
    };
    let ask = t.wait_for("the question", |p| {
        p.position(|l| l.contains("your name? "))
            .ok_or("no question".to_string())?;
        t.pid("ask").ok_or("no ask.pid".to_string())
    });
    t.tmux(&["kill-server"]);
    let started = Instant::now();
    let report = loop {
        let text = std::fs::read_to_string(t.path("report.json")).unwrap_or_default();
        if let Ok(report) = serde_json::from_str::<serde_json::Value>(&text) {
            break report;
        }
        assert!(
            started.elapsed() < TIMEOUT,
            "no report after the terminal closed"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(report["run"]["outcome"], "interrupted", "{report:#}");
    let after = report["procs"]
        .as_array()
        .and_then(|procs| procs.iter().find(|p| p["name"] == "after"))
        .unwrap_or_else(|| panic!("no `after` in the report: {report:#}"));
    assert_eq!(after["state"], "WANTED", "{report:#}");
    assert!(!t.path("after.started").exists(), "after ran");
    assert_gone(ask, "ask", &format!("{report:#}"));
}

#[test]
#[cfg_attr(prun_no_tmux, ignore = "tmux is not installed")]
fn a_proc_waiting_to_retry_is_shown_so_and_not_counted_as_running() {
    let script = format!(
        "proc(\"flaky\", #{{ cmd: [\"false\"], retries: 1, retry_delay: \"1h\" }});\n{}\nrun([\"flaky\", \"alpha\"]);\n",
        blocked("alpha"),
    );
    let Some(t) = Term::start("retrying", (100, 30), &script, r#""$PRUN" main.rhai -j 8"#) else {
        return;
    };
    t.wait_for("flaky waiting to retry beside alpha running", |p| {
        p.starting("RETRYING   flaky (attempt 1 failed")
            .ok_or("no RETRYING line")?;
        let (_, header) = p.header()?;
        if number_after(header, "running ") != Some(1)
            || number_after(header, "retrying ") != Some(1)
        {
            return Err(format!(
                "header is not `running 1 · retrying 1`: {header:?}"
            ));
        }
        p.proc_line("alpha")?;
        let (_, line) = p.proc_line("flaky")?;
        if !line.contains("waiting to retry") {
            return Err(format!("the line of flaky does not say it waits: {line:?}"));
        }
        Ok(())
    });
    t.tmux(&["send-keys", "-t", "s", "C-c"]);
    let (code, _) = t.wait_exit();
    assert_eq!(code, 130, "exit status\n{}", t.describe());
    t.assert_no_live_area(&["flaky", "alpha"]);
}

#[test]
#[cfg_attr(prun_no_tmux, ignore = "tmux is not installed")]
fn escape_codes_in_output_above_the_area_keep_their_colours_and_move_nothing() {
    // A command that moves the cursor up, to column 1, clears the screen, sets the
    // window's title and rings the bell, in its streamed output and in its failure's log.
    let codes =
        r"red \\033[31mRED\\033[0m \\033[3Aup\\033[1G\\033[2J\\033]0;title\\007\\007\\013end";
    let script = format!(
        "{}\nproc(\"mover\", #{{ output: \"stream\", shell: \"printf '{codes}\\\\n'; exit 3\" }});\nrun([\"alpha\", \"mover\"]);\n",
        blocked("alpha"),
    );
    let Some(t) = Term::start(
        "escapes",
        (100, 30),
        &script,
        r#"echo first-line; "$PRUN" main.rhai -j 8"#,
    ) else {
        return;
    };
    let clean = "red RED up  end";
    t.wait_for("mover's streamed line and its failure", |p| {
        p.position(|l| l == format!("mover │ {clean}"))
            .ok_or("no streamed line of mover")?;
        p.position(|l| l.ends_with(&format!("| {clean}")))
            .ok_or("no excerpt line of mover")?;
        header_running(p, 1).map(drop)
    });
    let coloured = t.screen_with_escapes();
    assert!(
        coloured.lines.iter().any(|l| l.contains("\x1b[31mRED")),
        "the colour of RED was lost\n{}",
        t.describe()
    );
    t.touch("go");
    let (code, end) = t.wait_exit();
    assert_eq!(code, 1, "exit status\n{}", t.describe());
    assert_eq!(
        end.lines.first().map(String::as_str),
        Some("first-line"),
        "what was on the screen before prun was moved over\n{}",
        t.describe()
    );
    t.assert_no_live_area(&["alpha", "mover"]);
}

/// A quick proc and one that runs for a second: long enough for a live display to have
/// drawn its area several times, had it been on.
const PLAIN: &str = r#"
proc("quick", #{ cmd: ["true"] });
proc("slow", #{ cmd: ["sleep", "1"] });
run(["quick", "slow"]);
"#;

/// Runs [`PLAIN`] with `command` in a terminal and asserts the display stayed plain.
fn assert_plain_in_terminal(test: &str, command: &str) {
    let Some(t) = Term::start(test, (100, 30), PLAIN, command) else {
        return;
    };
    let (code, end) = t.wait_exit();
    assert_eq!(code, 0, "exit status\n{}", t.describe());
    for prefix in [
        "SUCCEEDED  quick (",
        "SUCCEEDED  slow (",
        "prun: 2 succeeded in ",
    ] {
        assert!(
            end.starting(prefix).is_some(),
            "no line `{prefix}`\n{}",
            t.describe()
        );
    }
    let raw = t.raw();
    assert!(
        !raw.contains("running ") && !raw.contains("\x1b[?25l"),
        "prun drew a live area\n{}",
        t.describe()
    );
}

#[test]
#[cfg_attr(prun_no_tmux, ignore = "tmux is not installed")]
fn no_live_flag_prints_plain_lines_in_a_terminal() {
    assert_plain_in_terminal("nolive", r#""$PRUN" main.rhai --no-live"#);
}

#[test]
#[cfg_attr(prun_no_tmux, ignore = "tmux is not installed")]
fn dumb_terminal_gets_plain_lines() {
    assert_plain_in_terminal("dumb", r#"TERM=dumb "$PRUN" main.rhai"#);
}

#[test]
#[cfg_attr(prun_no_tmux, ignore = "tmux is not installed")]
fn live_flag_forces_the_display_on() {
    let script = format!("{}\nrun(\"forced\");\n", blocked("forced"));
    let Some(t) = Term::start(
        "forced",
        (100, 30),
        &script,
        r#"TERM=dumb "$PRUN" main.rhai --live"#,
    ) else {
        return;
    };
    t.wait_for("the live area", |p| {
        p.header()?;
        p.proc_line("forced")?;
        Ok(())
    });
    t.touch("go");
    let (code, _) = t.wait_exit();
    assert_eq!(code, 0, "exit status\n{}", t.describe());
    t.assert_no_live_area(&["forced"]);
}

#[test]
#[cfg_attr(prun_no_tmux, ignore = "tmux is not installed")]
fn piped_stdout_gets_plain_lines() {
    let Some(t) = Term::start(
        "pipe",
        (100, 30),
        PLAIN,
        r#""$PRUN" main.rhai | tee out.txt"#,
    ) else {
        return;
    };
    let (code, _) = t.wait_exit();
    assert_eq!(code, 0, "exit status\n{}", t.describe());
    let out = std::fs::read_to_string(t.path("out.txt")).expect("out.txt");
    let lines: Vec<&str> = out.lines().collect();
    assert!(
        lines
            .iter()
            .any(|l| unstamp(l).starts_with("SUCCEEDED  slow ("))
            && lines
                .last()
                .is_some_and(|l| l.starts_with("prun: 2 succeeded in ")),
        "not the plain lines: {out:?}"
    );
    assert!(
        !out.contains('\x1b') && !lines.iter().any(|l| is_header(l)),
        "escape codes or a live area in piped output: {out:?}"
    );
}

/// A failing proc, a succeeding one and one that blocks, so that the finished lines are
/// printed while the live area is shown.
fn colour_script() -> String {
    format!(
        "proc(\"bad\", #{{ cmd: [\"sh\", \"-c\", \"echo oops; exit 1\"] }});\nproc(\"good\", #{{ cmd: [\"true\"] }});\n{}\nrun([\"bad\", \"good\", \"waiter\"]);\n",
        blocked("waiter")
    )
}

/// Runs [`colour_script`] and returns the final screen with its escape sequences, after
/// checking the screen during the run with `during`.
fn colour_run(test: &str, command: &str, during: impl Fn(&Term, &Pane)) -> Option<(Term, Pane)> {
    let t = Term::start(test, (100, 30), &colour_script(), command)?;
    t.wait_for("the finished lines above the live area", |p| {
        let (h, _) = p.header()?;
        p.proc_line("waiter")?;
        for prefix in ["FAILED     bad (", "SUCCEEDED  good ("] {
            let (i, _) = p.starting(prefix).ok_or(format!("no `{prefix}` line"))?;
            if i > h {
                return Err(format!("`{prefix}` is below the header"));
            }
        }
        Ok(())
    });
    during(&t, &t.screen_with_escapes());
    t.touch("go");
    let (code, _) = t.wait_exit();
    assert_eq!(code, 1, "exit status\n{}", t.describe());
    let end = t.screen_with_escapes();
    Some((t, end))
}

/// The line (escape codes kept) whose text starts with `prefix`.
fn line_starting<'a>(p: &'a Pane, prefix: &str) -> Option<&'a str> {
    p.lines
        .iter()
        .find(|l| unstamp(&strip_escapes(l)).starts_with(prefix))
        .map(String::as_str)
}

#[test]
#[cfg_attr(prun_no_tmux, ignore = "tmux is not installed")]
fn no_color_keeps_the_live_display_without_colours() {
    let no_colour = |t: &Term, p: &Pane| {
        let coloured: Vec<&String> = p.lines.iter().filter(|l| has_colour(l)).collect();
        assert!(
            coloured.is_empty(),
            "colours with NO_COLOR=1: {coloured:?}\n{}",
            t.describe()
        );
    };
    let Some((t, end)) = colour_run("nocolor", r#"NO_COLOR=1 "$PRUN" main.rhai -j 4"#, no_colour)
    else {
        return;
    };
    for prefix in ["FAILED     bad (", "SUCCEEDED  good (", "prun: 2 succeeded"] {
        let line = line_starting(&end, prefix)
            .unwrap_or_else(|| panic!("no line `{prefix}`\n{}", t.describe()));
        assert!(
            !has_colour(line),
            "colour in {line:?} with NO_COLOR=1\n{}",
            t.describe()
        );
    }
    no_colour(&t, &end);
}

/// Asserts the FAILED line is coloured when prun runs with `command`.
fn assert_failed_line_coloured(test: &str, command: &str) {
    let Some((t, end)) = colour_run(test, command, |_, _| {}) else {
        return;
    };
    let line = line_starting(&end, "FAILED     bad (")
        .unwrap_or_else(|| panic!("no FAILED line\n{}", t.describe()));
    assert!(
        has_colour(line),
        "the FAILED line is not coloured: {line:?}\n{}",
        t.describe()
    );
}

#[test]
#[cfg_attr(prun_no_tmux, ignore = "tmux is not installed")]
fn failed_line_is_coloured() {
    assert_failed_line_coloured("color", r#""$PRUN" main.rhai -j 4"#);
}

#[test]
#[cfg_attr(prun_no_tmux, ignore = "tmux is not installed")]
fn empty_no_color_keeps_the_colours() {
    assert_failed_line_coloured("emptynocolor", r#"NO_COLOR= "$PRUN" main.rhai -j 4"#);
}

/// A 100-character proc name.
fn long_name() -> String {
    (0..100)
        .map(|i| char::from(b'a' + (i % 26) as u8))
        .collect()
}

const LONG_PROGRESS: &str =
    "copying 0123456789012345678901234567890123456789012345678901234567890123456789";

fn wide_script() -> String {
    format!(
        "{}\nproc(\"p\", |ctx| {{ ctx.progress(\"{LONG_PROGRESS}\"); shell(\"sh block.sh p\"); }});\nrun([\"{}\", \"p\"]);\n",
        blocked(&long_name()),
        long_name()
    )
}

/// The live-area line of the long-named proc: it starts with the name's first 20
/// characters and does not hold the whole name.
fn long_line(p: &Pane) -> Result<(usize, &str), String> {
    let name = long_name();
    let i = p
        .position(|l| is_proc_line(l, |w| w.starts_with(&name[..20])))
        .ok_or("no spinner line for the long name")?;
    let line = p.lines[i].as_str();
    if line.contains(&name) {
        return Err(format!("the name is not cut: {line:?}"));
    }
    Ok((i, line))
}

#[test]
#[cfg_attr(prun_no_tmux, ignore = "tmux is not installed")]
fn long_names_and_progress_are_cut_to_the_width() {
    let Some(t) = Term::start(
        "width",
        (40, 15),
        &wide_script(),
        r#""$PRUN" main.rhai -j 4"#,
    ) else {
        return;
    };
    t.wait_for("the live area cut to 40 columns", |p| {
        p.header()?;
        long_line(p)?;
        let (_, line) = p.proc_line("p")?;
        if !line.contains(&LONG_PROGRESS[..18]) {
            return Err(format!("no progress text in {line:?}"));
        }
        if let Some(l) = p.lines.iter().find(|l| width(l) > 40) {
            return Err(format!("a line of {} columns: {l:?}", width(l)));
        }
        Ok(())
    });
    t.touch("go");
    let (code, end) = t.wait_exit();
    assert_eq!(code, 0, "exit status\n{}", t.describe());
    assert!(
        end.starting("prun: 2 succeeded in ").is_some(),
        "no summary line\n{}",
        t.describe()
    );
    t.assert_no_live_area(&["p"]);
    let hist = t.history();
    assert!(
        !hist
            .lines
            .iter()
            .any(|l| is_proc_line(l, |w| w.starts_with(&long_name()[..20]))),
        "the long name's live line remains\n{}",
        hist.text()
    );
}

#[test]
#[cfg_attr(prun_no_tmux, ignore = "tmux is not installed")]
fn resize_redraws_at_the_new_width() {
    let Some(t) = Term::start(
        "resize",
        (60, 15),
        &wide_script(),
        r#""$PRUN" main.rhai -j 4"#,
    ) else {
        return;
    };
    t.wait_for("the live area at 60 columns", |p| {
        p.header()?;
        long_line(p)?;
        p.proc_line("p")?;
        Ok(())
    });
    t.resize(30, 15);
    // What was drawn at 60 columns is rewrapped by the terminal; the new live area is the
    // one at the bottom: from the last header line down, every line fits in 30 columns.
    t.wait_for("the live area redrawn at 30 columns", |p| {
        let h = *p.headers().last().ok_or("no header line")?;
        let below = Pane {
            lines: p.lines[h..].to_vec(),
        };
        if let Some(l) = below.lines.iter().find(|l| width(l) > 30) {
            return Err(format!("a line of {} columns: {l:?}", width(l)));
        }
        long_line(&below)?;
        below.proc_line("p")?;
        Ok(())
    });
    let headers = t.screen().headers().len();
    assert_eq!(
        headers,
        1,
        "header lines on screen: the area drawn before the resize was not erased\n{}",
        t.describe()
    );
    t.touch("go");
    let (code, end) = t.wait_exit();
    assert_eq!(code, 0, "exit status\n{}", t.describe());
    assert!(
        end.starting("prun: 2 succeeded in ").is_some(),
        "no summary line\n{}",
        t.describe()
    );
    // A terminal that rewraps on a narrower window may push the old rows into its
    // scrollback, where no program can erase them; the screen itself must be clean.
    let screen = t.screen();
    let left: Vec<&str> = screen
        .lines
        .iter()
        .filter(|l| {
            is_header(l)
                || is_proc_line(l, |w| w == "p")
                || is_proc_line(l, |w| w.starts_with(&long_name()[..20]))
        })
        .map(String::as_str)
        .collect();
    assert!(
        left.is_empty(),
        "lines of the live area remain on screen after a resize: {left:?}\n{}",
        t.describe()
    );
}

/// In a narrow window the header drops its least useful parts instead of being cut (at 40
/// columns `prun 1.2s · run 3 · done 1/4 · failed 1`, give or take the run's time; at 20
/// `done 1/4 · failed 1`), and a resize from one to the other during the run leaves one
/// header on the screen, nothing of the area at the end.
#[test]
#[cfg_attr(prun_no_tmux, ignore = "tmux is not installed")]
fn a_narrow_window_gets_a_compact_header_and_a_resize_leaves_no_stray_rows() {
    let names = ["alpha", "bravo", "charlie"];
    let script = with_blocked(
        Some(("bad", r#"proc("bad", #{ cmd: ["false"] });"#)),
        &names,
    );
    let Some(t) = Term::start("narrow", (40, 12), &script, r#""$PRUN" main.rhai -j 4"#) else {
        return;
    };
    // The whole header, not cut: it keeps the failures and the total, and the words.
    let whole = |p: &Pane, columns: usize| -> Result<(), String> {
        let (i, header) = p.header()?;
        if header.contains('…') || width(header) > columns {
            return Err(format!("the header is cut: {header:?}"));
        }
        if !header.contains("done 1/4") || !header.trim_end().ends_with("failed 1") {
            return Err(format!("no `done 1/4 ... failed 1`: {header:?}"));
        }
        match p.lines[i..].iter().find(|l| width(l) > columns) {
            Some(l) => Err(format!("a line wider than {columns} columns: {l:?}")),
            None => Ok(()),
        }
    };
    t.wait_for("the compact header at 40 columns", |p| {
        whole(p, 39)?;
        let (_, header) = p.header()?;
        if !header.starts_with("prun ") {
            return Err(format!("no `prun` label at 40 columns: {header:?}"));
        }
        names.iter().try_for_each(|n| p.proc_line(n).map(drop))
    });
    t.resize(20, 12);
    t.wait_for("the header of 20 columns", |p| {
        whole(p, 19)?;
        let (_, header) = p.header()?;
        match header.trim_end() {
            "done 1/4 · failed 1" => Ok(()),
            other => Err(format!("not the header of 20 columns: {other:?}")),
        }
    });
    t.touch("go");
    let (code, _) = t.wait_exit();
    assert_eq!(code, 1, "exit status\n{}", t.describe());
    let screen = t.screen();
    let left = screen.live_lines(&names);
    assert!(
        left.is_empty(),
        "lines of the live area remain on screen after a resize: {left:?}\n{}",
        t.describe()
    );
}

/// The row of the live area's header, when it says `running n`.
fn header_running(p: &Pane, n: usize) -> Result<usize, String> {
    let (h, header) = p.header()?;
    if number_after(header, "running ") != Some(n) {
        return Err(format!("header is not `running {n}`: {header:?}"));
    }
    Ok(h)
}

/// Waits until `check` accepts the screen and the live area has been drawn again since
/// (its last header line changed: the elapsed time moves on).
fn two_frames(t: &Term, check: impl Fn(&Pane) -> Result<(), String>) {
    let first = t.wait_for("the live area", |p| {
        check(p)?;
        let h = *p.headers().last().ok_or("no header line")?;
        Ok(p.lines[h].clone())
    });
    t.wait_for("the live area redrawn", |p| {
        let h = *p.headers().last().ok_or("no header line")?;
        if p.lines[h] == first {
            return Err(format!("the header is still {first:?}"));
        }
        Ok(())
    });
}

/// Asserts the live area was redrawn in place: one header line in the scrollback and on
/// screen, and no screen row wrapped.
fn assert_drawn_in_place(t: &Term) {
    let hist = t.history();
    assert_eq!(
        hist.headers().len(),
        1,
        "the live area was not redrawn in place: header lines in the scrollback and on screen\n{}\n{}",
        hist.text(),
        t.describe()
    );
    let rows = t.tmux(&["capture-pane", "-p", "-t", "s"]).lines().count();
    let lines = t.screen().lines.len();
    assert_eq!(
        rows,
        lines,
        "a screen line wrapped ({rows} rows hold {lines} lines)\n{}",
        t.describe()
    );
}

#[test]
#[cfg_attr(prun_no_tmux, ignore = "tmux is not installed")]
fn progress_text_with_control_characters_stays_on_one_line() {
    let script = r#"
proc("nl", |ctx| { ctx.progress("first line\nsecond line\n"); shell("sh block.sh nl"); });
proc("tab", |ctx| { ctx.progress("a\tb\tc\td\te\tf\tg\th\ti\tj\tk\tl\tm\tn\to\tp"); shell("sh block.sh tab"); });
run(["nl", "tab"]);
"#;
    let Some(t) = Term::start("control", (60, 20), script, r#""$PRUN" main.rhai -j 4"#) else {
        return;
    };
    two_frames(&t, |p| {
        let (_, nl) = p.proc_line("nl")?;
        if !nl.contains("first line") {
            return Err(format!("no progress text in {nl:?}"));
        }
        p.proc_line("tab")?;
        Ok(())
    });
    assert_drawn_in_place(&t);
    let screen = t.screen();
    assert!(
        screen.starting("second line").is_none(),
        "the progress text's newline started a screen line\n{}",
        t.describe()
    );
    t.touch("go");
    let (code, _) = t.wait_exit();
    assert_eq!(code, 0, "exit status\n{}", t.describe());
    t.assert_no_live_area(&["nl", "tab"]);
}

#[test]
#[cfg_attr(prun_no_tmux, ignore = "tmux is not installed")]
fn wide_characters_are_cut_by_the_columns_they_take() {
    // Each of these characters takes two columns: 40 of them are 80 columns.
    let script = r#"
proc("wide", |ctx| { ctx.progress("下载中下载中下载中下载中下载中下载中下载中下载中下载中下载中下载中下载中下载中"); shell("sh block.sh wide"); });
run("wide");
"#;
    let Some(t) = Term::start("wide", (60, 20), script, r#""$PRUN" main.rhai"#) else {
        return;
    };
    two_frames(&t, |p| {
        let (_, line) = p.proc_line("wide")?;
        if !line.contains("下载中") {
            return Err(format!("no progress text in {line:?}"));
        }
        Ok(())
    });
    assert_drawn_in_place(&t);
    t.touch("go");
    let (code, _) = t.wait_exit();
    assert_eq!(code, 0, "exit status\n{}", t.describe());
    t.assert_no_live_area(&["wide"]);
}

#[test]
#[cfg_attr(prun_no_tmux, ignore = "tmux is not installed")]
fn message_on_stderr_while_the_live_area_is_shown_stays_above_it() {
    // The top level waits for `bad`, which fails while `b` runs: prun reports on stderr
    // that the script stopped, and goes on with `b`.
    let script = format!(
        "proc(\"bad\", #{{ cmd: [\"sh\", \"-c\", \"i=0; while [ ! -e fail ] && [ $i -lt 600 ]; do i=$((i+1)); sleep 0.05; done; exit 1\"] }});\n{}\nrun([\"b\", \"bad\"]);\nwait(\"bad\");\n",
        blocked("b")
    );
    let Some(t) = Term::start("stderr", (120, 30), &script, r#""$PRUN" main.rhai -j 4"#) else {
        return;
    };
    t.wait_for("two running procs", |p| {
        header_running(p, 2)?;
        Ok(())
    });
    t.touch("fail");
    t.wait_for("the failure of bad", |p| {
        p.starting("FAILED     bad (")
            .ok_or("no `FAILED     bad (` line")?;
        header_running(p, 1)?;
        Ok(())
    });
    t.touch("go");
    let (code, end) = t.wait_exit();
    assert_ne!(code, 0, "exit status\n{}", t.describe());
    assert!(
        end.position(|l| l.contains("prun: the script stopped: "))
            .is_some(),
        "the `prun: the script stopped:` line is not on the screen\n{}",
        t.describe()
    );
    t.assert_no_live_area(&["b", "bad"]);
}

#[test]
fn pane_helpers_read_lines_as_the_display_writes_them() {
    // The helpers the tests above rely on, checked on lines of the specified format.
    assert!(is_header("prun  3.0s  running 2 · done 5"));
    assert!(is_header(
        "prun  3.0s  running 2 · done 5 of 9 · ~4.0s left"
    ));
    assert_eq!(
        seconds_left("prun  3.0s  running 2 · done 5 of 9 · ~4.0s left"),
        Some(4.0)
    );
    assert!(!is_header("prun: 4 succeeded in 0.31s"));
    assert!(!is_header("prun: interrupted; terminated: alpha, bravo"));
    assert!(is_proc_line("⠋ job1  1.5s  50%", |w| w == "job1"));
    assert!(!is_proc_line("SUCCEEDED  job1 (0.01s)", |w| w == "job1"));
    assert!(!is_proc_line("… and 3 more running", |w| w == "more"));
    assert!(has_elapsed("⠋ job1  1.5s") && has_elapsed("prun 2m05s") && !has_elapsed("x s"));
    assert_eq!(number_after("… and 12 more running", "and "), Some(12));
    assert!(has_colour("\x1b[1;31mFAILED\x1b[0m") && has_colour("\x1b[38;5;1mx"));
    assert!(!has_colour("\x1b[1mFAILED\x1b[0m \x1b[39mx"));
    assert_eq!(strip_escapes("\x1b[31mFAILED\x1b[39m  bad"), "FAILED  bad");
    assert_eq!(Pane::new("a\n^CEXIT=130\n").exit_code(), Some(130));
    assert_eq!(unstamp("2026-11-22T01:45:11Z SUCCEEDED  a"), "SUCCEEDED  a");
    assert_eq!(unstamp("SUCCEEDED  a"), "SUCCEEDED  a");
}

/// The seconds of a `~12.3s left` in a header.
fn seconds_left(header: &str) -> Option<f64> {
    let before = &header[..header.find("s left")?];
    let start = before.rfind('~')? + 1;
    before[start..].parse().ok()
}

#[test]
#[cfg_attr(prun_no_tmux, ignore = "tmux is not installed")]
fn the_header_shows_the_total_and_an_eta_that_counts_queued_procs() {
    // A first run (plain, each proc 1 s) gives every proc a history; the second, with
    // one slot, runs them blocked: the ETA must count the three queued procs (at least
    // 3 s), not just the running one, and the header must say `done N of 5`. A finished
    // proc's line, far wider than the window, is cut to its width.
    let long = "x".repeat(150);
    // Defined first: with one slot, it runs first.
    let mut script = format!("proc(\"{long}\", #{{ cmd: [\"true\"] }});\n");
    for n in ["a", "b", "c", "d"] {
        script.push_str(&format!(
            "proc(\"{n}\", #{{ shell: \"if [ -n \\\"$FIRST\\\" ]; then sleep 1; else sh block.sh {n}; fi\" }});\n"
        ));
    }
    script.push_str(&format!("run([\"{long}\", \"a\", \"b\", \"c\", \"d\"]);\n"));
    let Some(t) = Term::start(
        "eta",
        (100, 30),
        &script,
        r#"FIRST=1 "$PRUN" main.rhai -j 4 --no-live > first.txt && "$PRUN" main.rhai -j 1"#,
    ) else {
        return;
    };
    t.wait_for("a header with the total and the time left", |p| {
        let (_, header) = p.header()?;
        if number_after(header, "running ") != Some(1) || !header.contains("done 1 of 5") {
            return Err(format!(
                "header is not `running 1 · done 1 of 5`: {header:?}"
            ));
        }
        let left = seconds_left(header).ok_or(format!("no time left in {header:?}"))?;
        if left < 3.0 {
            return Err(format!(
                "{left}s left does not count the queued procs: {header:?}"
            ));
        }
        Ok(())
    });
    let screen = t.screen();
    let (_, done) = screen
        .position(|l| unstamp(l).starts_with("SUCCEEDED  xxx"))
        .map(|i| (i, screen.lines[i].clone()))
        .unwrap_or_else(|| panic!("no line of the long proc\n{}", t.describe()));
    assert!(
        width(&done) <= 100,
        "a line wider than the window: {done:?}"
    );
    assert!(done.ends_with('…'), "the long line is not cut: {done:?}");
    t.touch("go");
    let (code, _) = t.wait_exit();
    assert_eq!(code, 0, "exit status\n{}", t.describe());
}

#[test]
#[cfg_attr(prun_no_tmux, ignore = "tmux is not installed")]
fn a_terminal_reporting_no_size_keeps_what_was_on_the_screen() {
    // A terminal that reports 0 x 0 (a serial console): each drawn line counted as a
    // column of rows, and erasing the live area moved up over the lines printed before.
    let script = format!("{}\nrun(\"held\");\n", blocked("held"));
    let command = r#"for i in 1 2 3 4 5 6 7 8; do echo "before-$i"; done
stty cols 0 rows 0
"$PRUN" main.rhai"#;
    let Some(t) = Term::start("nosize", (80, 30), &script, command) else {
        return;
    };
    t.wait_for("the live area", |p| p.proc_line("held").map(|_| ()));
    t.touch("go");
    let (code, end) = t.wait_exit();
    assert_eq!(code, 0, "exit status\n{}", t.describe());
    for i in 1..=8 {
        assert!(
            end.starting(&format!("before-{i}")).is_some(),
            "the line before-{i} printed before prun was erased\n{}",
            t.describe()
        );
    }
    assert!(
        end.starting("SUCCEEDED  held (").is_some(),
        "no whole SUCCEEDED line\n{}",
        t.describe()
    );
}

#[test]
#[cfg_attr(prun_no_tmux, ignore = "tmux is not installed")]
fn expected_durations_are_learned_from_earlier_runs_even_ten_runs_back() {
    let script = format!(
        "{}\n{}\n{}\n",
        blocked("deploy"),
        blocked("test"),
        blocked("last")
    );
    // One run of all three, then ten of `test` alone, all done at once (`go` exists);
    // then all three again, blocked, `last` waiting for a slot.
    let command = r#"touch go
"$PRUN" main.rhai deploy test last >/dev/null 2>&1
for i in 1 2 3 4 5 6 7 8 9 10; do "$PRUN" main.rhai test >/dev/null 2>&1; done
rm go
"$PRUN" main.rhai deploy test last -j 2"#;
    let Some(t) = Term::start("expected", (100, 30), &script, command) else {
        return;
    };
    t.wait_for("the procs' expected durations and the time left", |p| {
        let h = header_running(p, 2)?;
        if !p.lines[h].contains(" left") {
            return Err(format!("no time left in {:?}", p.lines[h]));
        }
        for name in ["deploy", "test"] {
            let (_, line) = p.proc_line(name)?;
            if !line.contains(" / ~") {
                return Err(format!("no expected duration in {line:?}"));
            }
        }
        Ok(())
    });
    t.touch("go");
    let (code, _) = t.wait_exit();
    assert_eq!(code, 0, "exit status\n{}", t.describe());
}

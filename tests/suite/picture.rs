//! `prun report`: a recorded run read back from the task DB — its critical path, the procs
//! slower than usual, and the HTML page opened in a real headless Chromium.
//!
//! The runs have a known shape without sleeps as synchronisation: the chain's last proc
//! waits (`ctx.wait`) for everything else, so it is the last to finish by construction.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::support::{Finished, run_bounded, run_within};

/// A 3-proc chain (a → b → c) beside a fan-out of 4, one failure (with a dependent that
/// never runs) and one retry. `c` finishes last: it waits for all the others.
const KNOWN_SHAPE: &str = r#"
proc("a", #{ shell: "true" });
proc("b", #{ deps: ["a"], shell: "true" });
proc("c", #{ deps: ["b"] }, |ctx| {
    try { ctx.wait(["bad", "flaky", "fan::1", "fan::2", "fan::3", "fan::4"]); } catch (e) {}
    "done"
});
proto("fan::[i]", #{ arg_choices: #{ i: ["1", "2", "3", "4"] }, shell: "touch fan.[i]" });
proc("bad", #{ shell: "echo '</script><b id=pwn>x</b><img src=pwned.png>' >&2; exit 7" });
proc("after_bad", #{ deps: ["bad"], shell: "true" });
proc("flaky", #{ retries: 1, shell: "if [ -e flaked ]; then echo again; else touch flaked; exit 3; fi" });
run(["c", "fan::*", "after_bad", "flaky"]);
"#;

/// Every proc of [`KNOWN_SHAPE`].
const KNOWN_PROCS: [&str; 10] = [
    "a",
    "b",
    "c",
    "fan::1",
    "fan::2",
    "fan::3",
    "fan::4",
    "bad",
    "after_bad",
    "flaky",
];

/// A directory with `main.rhai` and its task DB `tasks.db`, shared by several runs.
struct Ws {
    dir: tempfile::TempDir,
}

impl Ws {
    fn new(script: &str) -> Ws {
        let ws = Ws {
            dir: tempfile::tempdir().expect("tempdir"),
        };
        std::fs::write(ws.path("main.rhai"), script).expect("write script");
        ws
    }

    fn path(&self, p: &str) -> PathBuf {
        self.dir.path().join(p)
    }

    /// `prun WORDS...` in the directory.
    fn prun(&self, words: &[&str]) -> Finished {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_prun"));
        cmd.args(words)
            .current_dir(self.dir.path())
            .env("XDG_STATE_HOME", self.path("state"));
        run_bounded(cmd, &format!("prun {words:?}"), |_| {})
    }

    /// Runs the script with `--db tasks.db` and the extra words; returns the exit code.
    fn run(&self, extra: &[&str]) -> i32 {
        let mut words = vec!["main.rhai", "--db", "tasks.db", "--no-live"];
        words.extend_from_slice(extra);
        let out = self.prun(&words);
        // Shown only when the test fails (libtest keeps a passing test's output).
        eprintln!("prun {words:?}: {}\n{}", out.status, out.stderr);
        out.status.code().expect("exit code")
    }

    /// Records by hand how long procs took in run `run` of tasks.db (the medians that
    /// later runs are compared with).
    fn set_durations(&self, run: i64, durations: &[(&str, f64)]) {
        let db = rusqlite::Connection::open(self.path("tasks.db")).expect("open tasks.db");
        for (name, secs) in durations {
            let n = db
                .execute(
                    "UPDATE proc_runs SET duration = ?1 WHERE run_id = ?2 AND name = ?3",
                    rusqlite::params![secs, run, name],
                )
                .expect("update proc_runs");
            assert_eq!(n, 1, "no proc {name} in run {run}");
        }
    }

    /// `prun report main.rhai --db tasks.db WORDS...`, which must succeed; its stdout.
    fn report(&self, words: &[&str]) -> String {
        let mut all = vec!["report", "main.rhai", "--db", "tasks.db"];
        all.extend_from_slice(words);
        let out = self.prun(&all);
        assert!(
            out.status.success(),
            "prun {all:?}: {}\n{}\n{}",
            out.status,
            out.stdout,
            out.stderr
        );
        out.stdout
    }
}

/// The names listed under `critical path (...)` in the text report.
fn critical_names(report: &str) -> Vec<String> {
    report
        .lines()
        .skip_while(|l| !l.starts_with("critical path ("))
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        .map(|l| l.split_whitespace().next().unwrap_or("").to_string())
        .collect()
}

#[test]
fn the_critical_path_of_a_known_run_is_its_chain() {
    let ws = Ws::new(KNOWN_SHAPE);
    assert_eq!(ws.run(&["-j", "4"]), 1, "bad fails the run");
    let text = ws.report(&[]);
    assert_eq!(critical_names(&text), ["a", "b", "c"], "{text}");
    assert!(
        text.starts_with("run 1 of ") && text.contains(": failed, "),
        "{text}"
    );
    assert!(text.contains(", 10 procs, "), "{text}");
    // `c` counts as running while it waits, with its slot given back: up to 5 at once.
    let used: usize = text
        .split(", 10 procs, at most ")
        .nth(1)
        .and_then(|s| s.split(' ').next())
        .and_then(|n| n.parse().ok())
        .expect("procs running at once");
    assert!((1..=5).contains(&used), "{text}");
    assert!(text.contains(" running at once (limit 4)"), "{text}");
    assert!(
        text.contains("no earlier runs of these procs to compare with"),
        "{text}"
    );

    // What the picture is drawn from, as the DB keeps it.
    let db = rusqlite::Connection::open(ws.path("tasks.db")).expect("open the DB");
    let row = |name: &str| -> (
        String,
        Option<u32>,
        Option<String>,
        Option<String>,
        Option<String>,
    ) {
        db.query_row(
            "SELECT state, attempts, segments, place, deps FROM proc_runs WHERE name = ?1",
            [name],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
        )
        .unwrap_or_else(|e| panic!("no row for {name}: {e}"))
    };
    let (state, attempts, segments, place, _) = row("flaky");
    assert_eq!((state.as_str(), attempts), ("SUCCEEDED", Some(2)));
    let segments: serde_json::Value = serde_json::from_str(&segments.expect("segments")).unwrap();
    assert_eq!(segments.as_array().map(Vec::len), Some(2), "{segments}");
    assert!(
        segments[0]["error"]
            .as_str()
            .unwrap()
            .contains("exited with code 3"),
        "{segments}"
    );
    assert!(segments[1]["error"].is_null(), "{segments}");
    let slot: u32 = place.expect("place").parse().expect("a slot number");
    assert!(
        (1..=5).contains(&slot),
        "a lane of -j 4, or the one beside waiting c"
    );
    let (state, attempts, segments, place, deps) = row("after_bad");
    assert_eq!((state.as_str(), attempts), ("FAILED_DEP", Some(0)));
    assert_eq!((segments, place), (None, None));
    assert_eq!(deps.as_deref(), Some(r#"["bad"]"#));
    assert_eq!(row("c").4.as_deref(), Some(r#"["b"]"#));
    let parallel: i64 = db
        .query_row("SELECT parallel FROM runs", [], |r| r.get(0))
        .expect("the run's parallel limit");
    assert_eq!(parallel, 4);
}

#[test]
fn a_proc_waiting_for_a_lock_records_the_wait() {
    // `second` is ready at once but cannot start until `first` lets go of the lock.
    let ws = Ws::new(
        r#"
proc("first", #{ locks: ["db"], shell: "touch first.ran; echo 1" });
proc("second", #{ locks: ["db"], shell: "test -e first.ran" });
run(["first", "second"]);
"#,
    );
    assert_eq!(ws.run(&["-j", "2"]), 0);
    let db = rusqlite::Connection::open(ws.path("tasks.db")).expect("open the DB");
    let waited = |name: &str| -> f64 {
        db.query_row(
            "SELECT waited FROM proc_runs WHERE name = ?1",
            [name],
            |r| r.get(0),
        )
        .expect("waited")
    };
    let first_duration: f64 = db
        .query_row(
            "SELECT duration FROM proc_runs WHERE name = 'first'",
            [],
            |r| r.get(0),
        )
        .expect("duration");
    assert!(
        waited("second") >= first_duration,
        "second waited {} while first ran {first_duration}",
        waited("second")
    );
    let page = ws.path("r.html");
    ws.report(&["--html", page.to_str().unwrap()]);
    let html = std::fs::read_to_string(&page).expect("the page");
    let second = html
        .split("data-proc=\"second\"><title>")
        .nth(1)
        .and_then(|g| g.split("</g>").next())
        .expect("second's bar");
    assert!(second.contains("<rect class=\"wait\""), "{second}");
}

#[test]
fn a_retry_waiting_for_a_slot_is_in_the_duration_not_counted_again_as_a_wait() {
    // -j 1: `flaky` fails at once, `hog` takes the only slot, and the retry, due 50 ms
    // later, waits for `hog` to end. That wait is between the attempts, inside `flaky`'s
    // duration (first start to end), so it is no wait before its first start.
    let ws = Ws::new(
        r#"
proc("flaky", #{ retries: 1, retry_delay: "50ms",
                 shell: "if [ -e flaked ]; then true; else touch flaked; exit 3; fi" });
proc("hog", #{ shell: "sleep 1" });
run(["flaky", "hog"]);
"#,
    );
    assert_eq!(ws.run(&["-j", "1"]), 0);
    let db = rusqlite::Connection::open(ws.path("tasks.db")).expect("open the DB");
    let (run_started, run_duration): (String, f64) = db
        .query_row("SELECT started, duration FROM runs", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .expect("the run");
    let (waited, segments): (f64, String) = db
        .query_row(
            "SELECT waited, segments FROM proc_runs WHERE name = 'flaky'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .expect("flaky's row");
    let segments: serde_json::Value = serde_json::from_str(&segments).unwrap();
    assert_eq!(segments.as_array().map(Vec::len), Some(2), "{segments}");
    let run_start = humantime::parse_rfc3339(&run_started)
        .unwrap()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    let first_start = segments[0]["start"].as_f64().unwrap() - run_start;
    assert!(
        waited <= first_start + 0.01,
        "flaky waited {waited}s before a first start {first_start}s after the run began"
    );
    let text = ws.report(&[]);
    assert_eq!(critical_names(&text), ["flaky"], "{text}");
    let total: f64 = text
        .split("critical path (")
        .nth(1)
        .and_then(|s| s.split("s)").next())
        .and_then(|n| n.parse().ok())
        .expect("the critical path's total");
    assert!(
        total <= run_duration + 0.01,
        "a critical path of {total}s in a run of {run_duration}s: {text}"
    );
}

#[test]
fn the_critical_path_steps_to_the_lower_wave_proc_a_higher_wave_waited_for() {
    // `serve` (wave 1) depends on `fetch` alone, but starts only once `migrate`, of wave
    // 0, has finished: `migrate` ends after `fetch`, which it waits for.
    let ws = Ws::new(
        r#"
proc("fetch", #{ shell: "true" });
proc("migrate", |ctx| { ctx.wait(["fetch"]); "migrated" });
proc("serve", #{ wave: 1, deps: ["fetch"], shell: "true" });
run(["migrate", "serve"]);
"#,
    );
    assert_eq!(ws.run(&["-j", "4"]), 0);
    let text = ws.report(&[]);
    assert_eq!(critical_names(&text), ["migrate", "serve"], "{text}");
    let serve = text
        .lines()
        .find(|l| l.starts_with("  serve "))
        .expect("serve's link");
    assert!(serve.ends_with(" (wave)"), "{text}");
    let page = ws.path("r.html");
    ws.report(&["--html", page.to_str().unwrap()]);
    let html = std::fs::read_to_string(&page).expect("the page");
    assert!(
        html.contains("<ol id=\"critical-path\"><li>migrate</li><li>serve (wave)</li></ol>"),
        "{html}"
    );
    let db = rusqlite::Connection::open(ws.path("tasks.db")).expect("open the DB");
    let waves: Vec<(String, i64)> = db
        .prepare("SELECT name, wave FROM proc_runs ORDER BY name")
        .and_then(|mut s| {
            s.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect::<Result<_, _>>()
        })
        .expect("the waves");
    assert_eq!(
        waves,
        [
            ("fetch".into(), 0),
            ("migrate".into(), 0),
            ("serve".into(), 1)
        ]
    );
}

/// Waits, at most a minute, until `done` holds; `what` names it in the failure.
fn until(what: &str, child: &mut std::process::Child, out: &Path, done: impl Fn(&str) -> bool) {
    let start = std::time::Instant::now();
    loop {
        let text = std::fs::read_to_string(out).unwrap_or_default();
        if done(&text) {
            return;
        }
        if start.elapsed() > Duration::from_secs(60) || child.try_wait().ok().flatten().is_some() {
            let _ = child.kill();
            panic!("no {what}:\n{text}");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn a_watch_cycle_records_its_own_attempts_and_a_restart_gives_its_lane_back() {
    // All cycles of a watch are one run in the DB, each proc's cycle its own row. In
    // cycle 1, `a` is running (held until `go` exists) when its input changes again: that
    // attempt is stale, ends, and `a` runs once more.
    let ws = Ws::new(
        r#"
proc("a", #{ inputs: ["in.txt"] }, |ctx| {
    let v = read_file("in.txt");
    if file_info("hold") != () {
        exec(["rm", "hold"]);
        write_file("a.running", "");
        let i = 0;
        while file_info("go") == () && i < 3000 { sleep(0.01); i += 1; }
    }
    v
});
run("a");
"#,
    );
    std::fs::write(ws.path("in.txt"), "v1").unwrap();
    let out = ws.path("out.txt");
    let mut child = Command::new(env!("CARGO_BIN_EXE_prun"))
        .args(["main.rhai", "--db", "tasks.db", "--no-live", "--watch"])
        .current_dir(ws.dir.path())
        .env("XDG_STATE_HOME", ws.path("state"))
        .stdin(std::process::Stdio::null())
        .stdout(std::fs::File::create(&out).unwrap())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start prun --watch");
    let watching = |n: usize| move |t: &str| t.matches("prun: watch: watching").count() >= n;
    until("watch", &mut child, &out, watching(1));
    std::fs::write(ws.path("hold"), "").unwrap();
    std::fs::write(ws.path("in.txt"), "v2").unwrap();
    until("a held", &mut child, &out, |_| {
        ws.path("a.running").exists()
    });
    std::fs::write(ws.path("in.txt"), "v3").unwrap();
    until("the restart", &mut child, &out, |t| {
        t.contains("changed while it ran; running again when done: a")
    });
    std::fs::write(ws.path("go"), "").unwrap();
    until("cycle 1's end", &mut child, &out, watching(2));
    let _ = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status();
    let status = child.wait().expect("prun ends");
    assert_eq!(
        status.code(),
        Some(0),
        "{}",
        std::fs::read_to_string(&out).unwrap()
    );

    let db = rusqlite::Connection::open(ws.path("tasks.db")).expect("open the DB");
    let rows: Vec<(u32, String)> = db
        .prepare("SELECT attempts, segments FROM proc_runs WHERE name = 'a' ORDER BY rowid")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(rows.len(), 2, "a row per cycle: {rows:?}");
    for (attempts, segments) in &rows {
        let segments: serde_json::Value = serde_json::from_str(segments).unwrap();
        assert_eq!(
            (*attempts, segments.as_array().map(Vec::len)),
            (1, Some(1)),
            "one attempt, one segment, this cycle's: {rows:?}"
        );
        assert_eq!(
            segments[0]["place"], "1",
            "the lane is free again: {rows:?}"
        );
    }
}

#[test]
fn report_lists_procs_slower_than_usual_against_earlier_runs() {
    // `slow` takes at least 0.2 s in the third run. The earlier runs' recorded durations
    // are set by hand, so that a loaded machine cannot make `steady` look slower than
    // usual, nor `slow` look usual: the medians are what the report compares with.
    let ws = Ws::new(
        r#"
proc("slow", #{ shell: "if [ -e third ]; then sleep 0.2; fi" });
proc("steady", #{ shell: "true" });
run(["slow", "steady"]);
"#,
    );
    assert_eq!(ws.run(&[]), 0);
    assert_eq!(ws.run(&[]), 0);
    // Run 1 was slow for both: run 2 has nothing slower.
    ws.set_durations(1, &[("slow", 1000.0), ("steady", 1000.0)]);
    let second = ws.report(&["--run", "2"]);
    assert!(second.starts_with("run 2 of "), "{second}");
    assert!(second.contains("no proc was slower than usual"), "{second}");
    std::fs::write(ws.path("third"), "").unwrap();
    assert_eq!(ws.run(&[]), 0);
    for run in [1, 2] {
        ws.set_durations(run, &[("slow", 0.001), ("steady", 1000.0)]);
    }
    let text = ws.report(&[]);
    let slow: Vec<&str> = text
        .lines()
        .skip_while(|l| !l.starts_with("slower than usual"))
        .skip(1)
        .collect();
    assert_eq!(slow.len(), 1, "{text}");
    assert!(slow[0].trim_start().starts_with("slow "), "{text}");
    assert!(text.starts_with("run 3 of "), "{text}");
    assert!(
        ws.report(&["--run", "1"])
            .contains("no earlier runs of these procs to compare with")
    );
}

#[test]
fn report_names_a_missing_run_or_db() {
    let ws = Ws::new(r#"proc("a", #{ shell: "true" }); run("a");"#);
    let out = ws.prun(&["report", "main.rhai", "--db", "tasks.db"]);
    assert_eq!(out.status.code(), Some(64));
    assert!(
        out.stderr.contains("no task DB at tasks.db"),
        "{}",
        out.stderr
    );
    assert_eq!(ws.run(&[]), 0);
    let out = ws.prun(&["report", "main.rhai", "--db", "tasks.db", "--run", "7"]);
    assert_eq!(out.status.code(), Some(64));
    assert!(
        out.stderr
            .contains("no run 7 of main.rhai in the task DB tasks.db"),
        "{}",
        out.stderr
    );
    let out = ws.prun(&[
        "report",
        "main.rhai",
        "--db",
        "tasks.db",
        "--html",
        "no/such/dir/r.html",
    ]);
    assert_eq!(out.status.code(), Some(64));
    assert!(
        out.stderr
            .contains("failed to write the report no/such/dir/r.html"),
        "{}",
        out.stderr
    );
}

#[test]
fn html_dash_writes_the_page_to_stdout() {
    // As `--json -` does: a file named `-` is not what anyone asks for.
    let ws = Ws::new(r#"proc("a", #{ shell: "true" }); run("a");"#);
    assert_eq!(ws.run(&[]), 0);
    let page = ws.report(&["--html", "-"]);
    assert!(page.starts_with("<!DOCTYPE html>"), "{page}");
    assert!(page.contains("data-proc=\"a\""), "{page}");
    assert!(!ws.path("-").exists(), "a file named -");
}

#[test]
fn up_to_date_procs_are_counted_though_they_have_no_bar() {
    let ws = Ws::new(
        r#"
proc("gen", #{ inputs: ["src.txt"], outputs: ["g.txt"], shell: "cp src.txt g.txt" });
proc("use", #{ deps: ["gen"], inputs: ["g.txt"], outputs: ["u.txt"], shell: "cp g.txt u.txt" });
proc("other", #{ inputs: ["o.txt"], outputs: ["p.txt"], shell: "cp o.txt p.txt" });
run(["use", "other"]);
"#,
    );
    std::fs::write(ws.path("src.txt"), "1").unwrap();
    std::fs::write(ws.path("o.txt"), "1").unwrap();
    assert_eq!(ws.run(&[]), 0);
    assert_eq!(ws.run(&[]), 0, "everything up to date");
    let text = ws.report(&[]);
    assert!(
        text.starts_with("run 2 of main.rhai: ok, ") && text.contains(", 0 procs, 3 up to date, "),
        "{text}"
    );
    assert!(text.contains("no proc ran: no critical path"), "{text}");
    assert!(
        !text.contains("no earlier runs"),
        "three procs have earlier runs; none ran now: {text}"
    );
    let page = ws.path("r.html");
    ws.report(&["--html", page.to_str().unwrap()]);
    let html = std::fs::read_to_string(&page).expect("the page");
    assert!(html.contains("and 3 up to date"), "{html}");
    std::fs::write(ws.path("o.txt"), "2").unwrap();
    assert_eq!(ws.run(&[]), 0, "other runs again");
    let text = ws.report(&[]);
    assert!(text.contains(", 1 proc, 2 up to date, "), "{text}");
}

#[test]
fn procs_a_fail_fast_run_never_started_are_counted_though_they_have_no_bar() {
    // `bad` fails in wave 0; --fail-fast then starts nothing of wave 1.
    let ws = Ws::new(
        r#"
proc("bad", #{ shell: "exit 1" });
proc("later1", #{ wave: 1, shell: "touch later1" });
proc("later2", #{ wave: 1, shell: "touch later2" });
run(["bad", "later1", "later2"]);
"#,
    );
    assert_eq!(ws.run(&["--fail-fast"]), 1);
    assert!(!ws.path("later1").exists() && !ws.path("later2").exists());
    let text = ws.report(&[]);
    assert!(
        text.starts_with("run 1 of main.rhai: failed, ") && text.contains(", 1 proc, 2 not run, "),
        "{text}"
    );
    let page = ws.path("r.html");
    ws.report(&["--html", page.to_str().unwrap()]);
    let html = std::fs::read_to_string(&page).expect("the page");
    assert!(
        html.contains("and 2 not run (the run stopped before they started: no bar)"),
        "{html}"
    );
}

#[test]
fn history_writes_out_the_control_characters_of_an_error() {
    // A thrown error can quote anything (a file name a glob found); printed as it is,
    // this one would set the terminal's title.
    let ws = Ws::new(r#"proc("a", |ctx| { throw "bad \u001b]0;owned\u0007 file"; }); run("a");"#);
    assert_eq!(ws.run(&[]), 1);
    let out = ws.prun(&["history", "main.rhai", "--db", "tasks.db"]);
    assert!(out.status.success(), "{}", out.stderr);
    assert!(
        out.stdout.contains("  FAILED     a (")
            && out
                .stdout
                .contains(": main.rhai:1:19: bad \\e]0;owned\\x07 file\n"),
        "{:?}",
        out.stdout
    );
}

/// Why a script error stopped a run is kept with the run: `history` shows its first line,
/// the report all of it and its page too, escaped; a secret in it is masked, as in the
/// `--json` report. Before, they showed `script error` and nothing more.
#[test]
fn a_script_errors_reason_is_kept_and_shown_by_history_report_and_page() {
    let ws = Ws::new(
        r#"let o = args(#{ token: #{ secret: true } });
proc("a", #{ shell: "true" });
run("a");
throw `no <access> & no "luck" for ${o.token}
second line`;"#,
    );
    let code = ws.run(&["--json", "r.json", "--", "--token", "tok-3141"]);
    assert_eq!(code, 2);
    let json = std::fs::read_to_string(ws.path("r.json")).expect("the --json report");
    let json: serde_json::Value = serde_json::from_str(&json).unwrap();
    let error = json["run"]["error"]
        .as_str()
        .expect("run.error")
        .to_string();
    assert!(
        error.contains(r#"no <access> & no "luck" for ***"#) && !error.contains("tok-3141"),
        "{error}"
    );
    let out = ws.prun(&["history", "main.rhai", "--db", "tasks.db"]);
    assert!(out.status.success(), "{}", out.stderr);
    let first = error.lines().next().unwrap();
    assert!(
        out.stdout.contains(&format!("\nrun 1: {first}\n")) && !out.stdout.contains("second line"),
        "{}",
        out.stdout
    );
    let text = ws.report(&[]);
    assert!(
        text.starts_with("run 1 of main.rhai: script error, ")
            && text.contains(&format!("\nerror: {first}\n  second line\n")),
        "{text}"
    );
    let page = ws.path("r.html");
    ws.report(&["--html", page.to_str().unwrap()]);
    let html = std::fs::read_to_string(&page).expect("the page");
    assert!(
        html.contains("no &lt;access&gt; &amp; no &quot;luck&quot; for ***\nsecond line</pre>"),
        "{html}"
    );
    let db = rusqlite::Connection::open(ws.path("tasks.db")).unwrap();
    let kept: String = db
        .query_row("SELECT error FROM runs", [], |r| r.get(0))
        .unwrap();
    assert_eq!(kept, error, "the DB keeps what the --json report says");
}

/// A run's arguments are the script's own words as given, its options with their values
/// (a secret one's as `***`) and the words after `--`, in the `--json` report, the task
/// DB and the page alike; neither its targets nor prun's flags. Before, `run.args` was `[]`
/// once `args(#{...})` took the script's options, and the DB kept the whole command line.
#[test]
fn a_runs_arguments_are_the_scripts_own_words_in_the_json_report_the_db_and_the_page() {
    let ws = Ws::new(
        r#"let o = args(#{ level: #{ int: true }, pw: #{ secret: true } });
proc("a", #{ shell: "true" });
proc("b", #{ shell: "true" });
"#,
    );
    let code = ws.run(&[
        "a",
        "--level",
        "3",
        "-j",
        "2",
        "--json",
        "r.json",
        "--",
        "--pw",
        "hunter-77",
    ]);
    assert_eq!(code, 0);
    let json = std::fs::read_to_string(ws.path("r.json")).expect("the --json report");
    let json: serde_json::Value = serde_json::from_str(&json).unwrap();
    let words = serde_json::json!(["--level", "3", "--pw", "***"]);
    assert_eq!(json["run"]["args"], words, "{json}");
    let db = rusqlite::Connection::open(ws.path("tasks.db")).unwrap();
    let kept: String = db
        .query_row("SELECT args FROM runs", [], |r| r.get(0))
        .unwrap();
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&kept).unwrap(),
        words
    );
    let page = ws.path("r.html");
    ws.report(&["--html", page.to_str().unwrap()]);
    let html = std::fs::read_to_string(&page).expect("the page");
    assert!(
        html.contains("<dt>arguments</dt><dd>--level 3 --pw &#39;***&#39;</dd>"),
        "{html}"
    );
}

/// A run read while its prun runs it is `running`; once its prun is killed (`kill -9`,
/// by its own last proc, after the history has the run), it is `died`, in `history`, in
/// the report's text and on its page, which all exit 0: before, it stayed `unfinished`
/// for ever, as if it still ran.
#[test]
fn a_run_whose_prun_was_killed_is_died_and_one_still_going_is_running() {
    let ws = Ws::new(
        r#"proc("a", #{ shell: "true" });
proc("hold", #{ deps: ["a"], shell: "i=0; while [ ! -e go ] && [ $i -lt 3000 ]; do sleep 0.01; i=$((i+1)); done" });
proc("die", #{ deps: ["hold"], shell: "kill -9 $PPID" });
run("die");"#,
    );
    let history = || ws.prun(&["history", "main.rhai", "--db", "tasks.db"]);
    let mut seen = None;
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_prun"));
    cmd.args(["main.rhai", "--db", "tasks.db", "--no-live"])
        .current_dir(ws.dir.path())
        .env("XDG_STATE_HOME", ws.path("state"));
    let killed = run_bounded(cmd, "the run", |_| {
        if seen.is_some() {
            return;
        }
        // `a`'s row, and the run's, are committed within the writer's batch window.
        let h = history();
        if h.stdout.contains("SUCCEEDED  a") {
            std::fs::write(ws.path("go"), "").expect("write go");
            seen = Some(h);
        }
    });
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(killed.status.signal(), Some(9), "{}", killed.stderr);
    let during = seen.expect("the history was read during the run");
    assert!(during.status.success(), "{}", during.stderr);
    assert!(
        during.stdout.contains("  running  ")
            && during.stdout.contains("run 1 running: its prun (pid "),
        "{}",
        during.stdout
    );
    let after = history();
    assert!(after.status.success(), "{}", after.stderr);
    assert!(
        after.stdout.contains("  died  ")
            && after.stdout.contains("run 1 died: its prun (pid ")
            && after.stdout.contains("was killed"),
        "{}",
        after.stdout
    );
    let report = ws.report(&[]);
    assert!(
        report.starts_with("run 1 of main.rhai: died, ") && report.contains("\nrun 1 died: "),
        "{report}"
    );
    ws.report(&["--html", "page.html"]);
    let page = std::fs::read_to_string(ws.path("page.html")).expect("the page");
    assert!(
        page.contains("<span class=\"outcome died\">died</span>: its prun"),
        "{page}"
    );
}

/// A run still going: the procs its prun is running now have no row yet (a row is written
/// when a proc ends), and the report shows them from the run's journal, each from its
/// start to now, with its log; the page draws them as bars in state RUNNING.
#[test]
fn a_run_still_going_shows_the_procs_running_now() {
    let ws = Ws::new(
        r#"proc("a", #{ shell: "true" });
proc("hold", #{ deps: ["a"], shell: "echo holding; i=0; while [ ! -e go ] && [ $i -lt 3000 ]; do sleep 0.01; i=$((i+1)); done" });
run("hold");"#,
    );
    let mut seen = None;
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_prun"));
    cmd.args(["main.rhai", "--db", "tasks.db", "--no-live"])
        .current_dir(ws.dir.path())
        .env("XDG_STATE_HOME", ws.path("state"));
    let done = run_bounded(cmd, "the run", |_| {
        if seen.is_some() || !ws.path("tasks.db").exists() {
            return;
        }
        let report = ws.prun(&["report", "main.rhai", "--db", "tasks.db"]);
        // `hold` starts once `a`'s row is there; its log once it printed.
        if report.stdout.contains("\n  a ") && report.stdout.contains("hold.log") {
            let page = ws.prun(&["report", "main.rhai", "--db", "tasks.db", "--html", "-"]);
            std::fs::write(ws.path("go"), "").expect("write go");
            seen = Some((report, page));
        }
    });
    assert!(done.status.success(), "{}", done.stderr);
    let (report, page) = seen.expect("the report was read during the run");
    assert!(
        report.stdout.starts_with("run 1 of main.rhai: running, ")
            && report.stdout.contains(
                "\nrunning now (their end is not known yet):\n  hold  RUNNING  started at "
            ),
        "{}",
        report.stdout
    );
    assert!(page.status.success(), "{}", page.stderr);
    assert!(
        page.stdout.contains(r#""name":"hold""#) && page.stdout.contains(r#""state":"RUNNING""#),
        "{}",
        page.stdout
    );
}

/// A run whose prun was killed: the procs it was running have no row until the script's
/// next run records them, but its journal names them already, and the report shows them
/// at once (before, `1 proc` and nothing of the one it was running).
#[test]
fn a_died_runs_procs_are_shown_before_the_next_run_records_them() {
    let ws = Ws::new(
        r#"proc("a", #{ shell: "true" });
proc("hold", #{ deps: ["a"], shell: "echo holding; touch holding; sleep 30" });
proc("die", #{ deps: ["a"], shell: "i=0; while [ ! -e go ] && [ $i -lt 3000 ]; do sleep 0.01; i=$((i+1)); done; kill -9 $PPID" });
run(["hold", "die"]);"#,
    );
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_prun"));
    cmd.args(["main.rhai", "--db", "tasks.db", "--no-live", "-j", "3"])
        .current_dir(ws.dir.path())
        .env("XDG_STATE_HOME", ws.path("state"));
    let mut went = false;
    let killed = run_bounded(cmd, "the run", |_| {
        // `a`'s row, and the run's, are committed within the writer's batch window;
        // `hold`'s log is named within a tenth of a second of its first output.
        if went
            || !ws.path("holding").exists()
            || !crate::support::holds_file_named(&ws.path("state"), "hold.log")
        {
            return;
        }
        let h = ws.prun(&["history", "main.rhai", "--db", "tasks.db"]);
        if h.stdout.contains("SUCCEEDED  a") {
            std::fs::write(ws.path("go"), "").expect("write go");
            went = true;
        }
    });
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(killed.status.signal(), Some(9), "{}", killed.stderr);
    let report = ws.report(&[]);
    assert!(
        report.starts_with("run 1 of main.rhai: died, ")
            && report.contains("\nrunning when its prun died (their end is not known):\n")
            && report.contains("  hold  DIED  started at ")
            && report.contains("hold.log"),
        "{report}"
    );
    // Its next run ends what it left and records them: shown once.
    std::fs::write(ws.path("main.rhai"), r#"proc("a", #{ shell: "true" });"#).unwrap();
    assert_eq!(ws.run(&["a"]), 0);
    let report = ws.report(&["--run", "1"]);
    assert_eq!(report.matches("  hold  DIED  ").count(), 1, "{report}");
}

/// Every text column `prun history` and `prun report` read, each set in turn to a byte
/// that is not UTF-8 (as another tool or a hand edit can leave it), with a number column
/// set to text: each reader shows the rest, the bad text as U+FFFD, and exits 0.
#[test]
fn text_in_the_db_that_is_not_utf8_is_shown_lossily_by_every_reader() {
    let ws = Ws::new(
        r#"proc("a", #{ shell: "true" });
proc("b", #{ deps: ["a"], shell: "exit 3" });
run("b");"#,
    );
    assert_eq!(ws.run(&[]), 1);
    assert_eq!(ws.run(&[]), 1);
    let columns = [
        "proc_runs SET name",
        "proc_runs SET state",
        "proc_runs SET error",
        "proc_runs SET log",
        "proc_runs SET started",
        "proc_runs SET ended",
        "proc_runs SET segments",
        "proc_runs SET place",
        "proc_runs SET deps",
        "proc_runs SET proto",
        "proc_runs SET duration",
        "proc_runs SET exit_code",
        "runs SET script",
        "runs SET args",
        "runs SET started",
        "runs SET outcome",
        "runs SET counts",
        "runs SET duration",
        "runs SET parallel",
    ];
    let clean = std::fs::read(ws.path("tasks.db")).expect("read tasks.db");
    for column in columns {
        std::fs::write(ws.path("tasks.db"), &clean).expect("restore tasks.db");
        let db = rusqlite::Connection::open(ws.path("tasks.db")).expect("open tasks.db");
        db.execute(&format!("UPDATE {column} = CAST(x'ff' AS TEXT)"), [])
            .expect("update");
        drop(db);
        for words in [
            &["history", "main.rhai", "--db", "tasks.db"][..],
            &["report", "main.rhai", "--db", "tasks.db"],
            &[
                "report",
                "main.rhai",
                "--db",
                "tasks.db",
                "--html",
                "page.html",
            ],
        ] {
            let out = ws.prun(words);
            assert!(
                out.status.success(),
                "{column}: prun {words:?}: {}\n{}\n{}",
                out.status,
                out.stdout,
                out.stderr
            );
        }
        let shown = [
            ws.prun(&["history", "main.rhai", "--db", "tasks.db"])
                .stdout,
            ws.prun(&["report", "main.rhai", "--db", "tasks.db"]).stdout,
            std::fs::read_to_string(ws.path("page.html")).expect("the page"),
        ]
        .concat();
        let visible = ["name", "state", "error", "outcome", "script"];
        if visible
            .iter()
            .any(|c| column.ends_with(&format!("SET {c}")))
        {
            assert!(shown.contains('\u{fffd}'), "{column}: {shown}");
        }
    }
}

#[test]
fn procs_fold_by_their_proto_whatever_the_separator() {
    // 50 procs of one proto (more than fold at once) named with `/`, not `::`.
    let ws = Ws::new(
        r#"
set_options(#{ separator: "/" });
let ids = [];
for i in 0..50 { ids.push(`f${i}`); }
proto("enc/[f]", #{ arg_choices: #{ f: ids }, shell: "true" });
proc("db::migrate", #{ shell: "true" });
proc("db::seed", #{ deps: ["db::migrate"], shell: "true" });
run(["enc/*", "db::seed"]);
"#,
    );
    assert_eq!(ws.run(&["-j", "1"]), 0);
    let db = rusqlite::Connection::open(ws.path("tasks.db")).expect("open the DB");
    let proto: Option<String> = db
        .query_row(
            "SELECT proto FROM proc_runs WHERE name = 'enc/f7'",
            [],
            |r| r.get(0),
        )
        .expect("enc/f7's row");
    assert_eq!(proto.as_deref(), Some("enc/[f]"));
    let page = ws.path("r.html");
    ws.report(&["--html", page.to_str().unwrap()]);
    let html = std::fs::read_to_string(&page).expect("the page");
    assert_eq!(
        html.matches("<section class=\"slot\"").count(),
        1,
        "-j 1: one slot"
    );
    assert_eq!(
        html.matches("data-family=\"enc/*\"").count(),
        1,
        "one row for the proto: {html}"
    );
    assert!(
        !html.contains("<details class=\"family\" open>"),
        "folded: {html}"
    );
    assert!(
        html.contains("data-family=\"db::*\""),
        "plain procs fold by `::`"
    );
    assert_eq!(
        html.matches("<g class=\"bar ").count(),
        52,
        "each proc keeps its bar"
    );
}

/// The DOM of `page` after headless Chromium loaded it and ran its script, offline: every
/// host name is unresolvable and the proxy is a port nothing listens on.
fn chromium_dom(page: &Path) -> String {
    chromium_dom_at(page, None)
}

/// [`chromium_dom`] in a window of `size` (`"420,800"`), when given.
fn chromium_dom_at(page: &Path, size: Option<&str>) -> String {
    // A port that was free a moment ago: connections to it are refused.
    let dead = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let profile = tempfile::tempdir().expect("profile dir");
    let mut cmd = Command::new("chromium");
    cmd.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        "--disable-background-networking",
        "--host-resolver-rules=MAP * ~NOTFOUND",
    ])
    .arg(format!("--proxy-server=127.0.0.1:{dead}"))
    .arg(format!("--user-data-dir={}", profile.path().display()))
    .args(size.map(|s| format!("--window-size={s}")))
    .arg("--dump-dom")
    .arg(page);
    let out = run_within(cmd, "chromium --dump-dom", Duration::from_secs(120), |_| {});
    assert!(
        out.status.success(),
        "chromium failed: {}\n{}",
        out.status,
        out.stderr
    );
    out.stdout
}

/// The `data-proc` names of the `<g class="bar ...">` elements of a DOM.
fn bars(dom: &str, class: &str) -> Vec<String> {
    dom.split("<g class=\"bar ")
        .skip(1)
        .filter(|g| {
            g.split('"')
                .next()
                .unwrap_or("")
                .split(' ')
                .any(|c| c == class)
                || class.is_empty()
        })
        .filter_map(|g| g.split("data-proc=\"").nth(1)?.split('"').next())
        .map(|n| n.replace("&amp;", "&"))
        .collect()
}

#[test]
#[cfg_attr(prun_no_chromium, ignore = "chromium is not installed")]
fn chromium_shows_a_bar_per_proc_and_the_critical_path_and_fetches_nothing() {
    assert!(
        Command::new("chromium").arg("--version").output().is_ok(),
        "chromium is not installed (PRUN_E2E=require)"
    );
    let ws = Ws::new(KNOWN_SHAPE);
    assert_eq!(ws.run(&["-j", "4"]), 1);
    let page = ws.path("report.html");
    ws.report(&["--html", page.to_str().unwrap()]);
    let html = std::fs::read_to_string(&page).expect("the page");
    assert!(
        html.contains("<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'")
    );
    assert!(
        !html.contains("http:") && !html.contains("https:") && !html.contains("<img"),
        "nothing in the page names a resource: {html}"
    );
    let dom = chromium_dom(&page);
    // The page's script ran: it counted the procs.
    assert!(
        dom.contains("10 procs: point at a bar for its details"),
        "{dom}"
    );
    assert!(
        dom.contains("<aside id=\"detail\" hidden"),
        "no details before a click"
    );
    let mut all = bars(&dom, "");
    all.sort();
    let mut want: Vec<String> = KNOWN_PROCS.iter().map(|s| s.to_string()).collect();
    want.sort();
    assert_eq!(all, want, "one bar per proc");
    assert_eq!(bars(&dom, "critical"), ["a", "b", "c"]);
    assert_eq!(bars(&dom, "failed"), ["bad"]);
    assert_eq!(bars(&dom, "failed-dep"), ["after_bad"]);
    assert!(
        dom.contains("<rect class=\"seg retried\""),
        "the retry is a segment"
    );
    // The failure's text is shown as text: no element came of it.
    assert!(
        !dom.contains("<b id=\"pwn\">") && !dom.contains("<img"),
        "{dom}"
    );

    // Clicking a bar shows the proc's details (a click dispatched by a script added to
    // a copy of the page).
    let click = r#"<script>document.querySelector('g.bar[data-proc="bad"] rect').dispatchEvent(new MouseEvent("click", { bubbles: true }));</script></body>"#;
    let clicked = ws.path("clicked.html");
    std::fs::write(&clicked, html.replace("</body>", click)).expect("write the copy");
    let dom = chromium_dom(&clicked);
    let detail = dom
        .split("<aside id=\"detail\"")
        .nth(1)
        .and_then(|d| d.split("</aside>").next())
        .expect("the detail panel");
    assert!(!detail.contains(" hidden"), "{detail}");
    for what in [
        "<h2>bad</h2>",
        "<dt>exit code</dt><dd>7</dd>",
        "<dt>error</dt><dd>command",
        "&lt;/script&gt;&lt;b id=pwn&gt;",
        "<dt>log</dt>",
        "bad.log</dd>",
        "<dt>started</dt><dd>+",
        "<dt>ended</dt><dd>+",
    ] {
        assert!(detail.contains(what), "{what} in {detail}");
    }

    // The panel covers the end of the timeline: Escape, or a click beside the bars,
    // closes it, and pointing away from a bar that was not clicked does too.
    for close in [
        r#"document.dispatchEvent(new KeyboardEvent("keydown", { key: "Escape" }));"#,
        r#"document.querySelector("h2").dispatchEvent(new MouseEvent("click", { bubbles: true }));"#,
    ] {
        let script = format!(
            r#"<script>document.querySelector('g.bar[data-proc="bad"] rect').dispatchEvent(new MouseEvent("click", {{ bubbles: true }})); {close}</script></body>"#
        );
        std::fs::write(&clicked, html.replace("</body>", &script)).expect("write the copy");
        let dom = chromium_dom(&clicked);
        assert!(
            dom.contains("<aside id=\"detail\" hidden"),
            "{close}: {dom}"
        );
        assert!(
            !dom.contains("g class=\"bar failed selected"),
            "{close}: {dom}"
        );
    }
    let point = r#"<script>const r = document.querySelector('g.bar[data-proc="bad"] rect'); r.dispatchEvent(new MouseEvent("mouseover", { bubbles: true })); document.body.dataset.shown = String(!document.getElementById("detail").hidden); r.dispatchEvent(new MouseEvent("mouseout", { bubbles: true, relatedTarget: document.body }));</script></body>"#;
    std::fs::write(&clicked, html.replace("</body>", point)).expect("write the copy");
    let dom = chromium_dom(&clicked);
    assert!(
        dom.contains("data-shown=\"true\""),
        "shown while pointed at: {dom}"
    );
    assert!(dom.contains("<aside id=\"detail\" hidden"), "{dom}");
}

/// In a narrow window (a phone, a split screen) the axis keeps its labels apart: the
/// timeline has a width of its own and the page scrolls sideways. Its labels overlapped
/// into one smudge (`0.0000.0000.00s`) once the names took the window's width.
#[test]
#[cfg_attr(prun_no_chromium, ignore = "chromium is not installed")]
fn in_a_narrow_window_the_axis_labels_do_not_overlap() {
    let ws = Ws::new(
        r#"proc("a-proc-with-a-long-name", #{ shell: "true" });
proc("b", #{ deps: ["a-proc-with-a-long-name"], shell: "true" });
run("b");"#,
    );
    assert_eq!(ws.run(&[]), 0);
    let page = ws.path("report.html");
    ws.report(&["--html", page.to_str().unwrap()]);
    let html = std::fs::read_to_string(&page).expect("the page");
    // Counts the labels that overlap the one before them, into the page (a script added
    // to a copy of it).
    let measure = r#"<script>
const r = [...document.querySelectorAll(".axis .ticks span")].map(s => s.getBoundingClientRect());
let n = 0;
for (let i = 1; i < r.length; i++) if (r[i].left < r[i - 1].right) n++;
document.body.insertAdjacentText("beforeend", "labels " + r.length + " overlapping " + n + ".");
</script></body>"#;
    let measured = ws.path("measured.html");
    std::fs::write(&measured, html.replace("</body>", measure)).expect("write the copy");
    let dom = chromium_dom_at(&measured, Some("420,800"));
    let found = dom
        .split("labels ")
        .last()
        .and_then(|t| t.split('.').next())
        .expect("the measure");
    assert!(
        found.ends_with(" overlapping 0") && !found.starts_with("0 "),
        "{found}"
    );
}

#[test]
fn report_html_over_the_script_or_the_task_db_is_refused() {
    let script = r#"proc("a", #{ shell: "true" }); run("a");"#;
    let ws = Ws::new(script);
    assert_eq!(ws.run(&[]), 0);
    let out = ws.prun(&[
        "report",
        "main.rhai",
        "--db",
        "tasks.db",
        "--html",
        "./main.rhai",
    ]);
    assert_eq!(out.status.code(), Some(64));
    assert!(
        out.stderr.contains("is the script itself"),
        "{}",
        out.stderr
    );
    assert_eq!(
        std::fs::read_to_string(ws.path("main.rhai")).unwrap(),
        script
    );
    let out = ws.prun(&[
        "report",
        "main.rhai",
        "--db",
        "tasks.db",
        "--html",
        "./tasks.db",
    ]);
    assert_eq!(out.status.code(), Some(64));
    assert!(out.stderr.contains("is the task DB"), "{}", out.stderr);
    assert_eq!(ws.run(&[]), 0, "the task DB is intact");
    assert!(
        ws.report(&[]).starts_with("run 2 of "),
        "the history is intact"
    );
}

/// A text report that cannot be written (stdout a full disk) is lost, and the exit says so.
#[test]
fn report_text_that_cannot_be_written_is_an_error() {
    let ws = Ws::new(r#"proc("a", #{ shell: "true" }); run("a");"#);
    assert_eq!(ws.run(&[]), 0);
    let full = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .expect("open /dev/full");
    let out = Command::new(env!("CARGO_BIN_EXE_prun"))
        .args(["report", "main.rhai", "--db", "tasks.db"])
        .current_dir(ws.dir.path())
        .env("XDG_STATE_HOME", ws.path("state"))
        .stdout(full)
        .output()
        .expect("run prun");
    assert_eq!(out.status.code(), Some(64), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("failed to write the report -"), "{stderr}");
}

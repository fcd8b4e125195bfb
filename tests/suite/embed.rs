//! prun as a library: a program builds a `prun::Runtime`, adds native functions and
//! modules, and runs scripts, getting reports back (issue 11). These tests are such a
//! program: they use the public API only, and real processes.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use prun::{Cancel, Event, Outcome, Runtime, RuntimeBuilder, State, TaskDb};

/// How long a test waits for something that should happen at once.
const PATIENCE: Duration = Duration::from_secs(20);

/// A runtime that keeps its logs and its scripts' state in `dir` and has no task DB.
fn builder(dir: &Path) -> prun::RuntimeBuilder {
    Runtime::builder()
        .task_db(TaskDb::Off)
        .log_dir(dir.join("logs"))
        .state_dir(dir.join("state"))
}

/// `n` parties meet: each `arrive` waits (bounded) until all `n` arrived; `false` when
/// they never did, which means they did not run at the same time.
#[derive(Default)]
struct Rendezvous {
    arrived: Mutex<usize>,
    all: Condvar,
}

impl Rendezvous {
    fn arrive(&self, n: usize) -> bool {
        let mut arrived = self.arrived.lock().unwrap();
        *arrived += 1;
        self.all.notify_all();
        let deadline = Instant::now() + PATIENCE;
        while *arrived < n {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            arrived = self.all.wait_timeout(arrived, left).unwrap().0;
        }
        true
    }
}

/// Waits (bounded) until `path` exists and holds a line; returns it.
fn wait_for_line(path: &Path) -> String {
    let deadline = Instant::now() + PATIENCE;
    loop {
        if let Ok(text) = std::fs::read_to_string(path)
            && text.ends_with('\n')
        {
            return text.trim().to_string();
        }
        assert!(
            Instant::now() < deadline,
            "{} never appeared",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// True while process `pid` exists and is not a zombie.
fn alive(pid: &str) -> bool {
    // An empty pid file (a command ended between creating it and writing its pid) names
    // no process: `/proc//stat` is `/proc/stat`, which exists.
    pid.parse::<u32>().is_ok()
        && std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
            let state = stat
                .rsplit(')')
                .next()
                .and_then(|r| r.split_whitespace().next());
            !matches!(state, Some("Z" | "X"))
        })
}

/// A proc whose command records its pid in `pidfile`, then sleeps for a long time.
fn sleeper(name: &str, pidfile: &Path) -> String {
    format!(
        r#"proc("{name}", #{{ cmd: ["sh", "-c", "echo $$ > {}; exec sleep 300"] }});"#,
        pidfile.display()
    )
}

#[test]
fn a_native_function_is_called_from_eight_procs_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let meet = Arc::new(Rendezvous::default());
    let spans: Arc<Mutex<Vec<(Instant, Instant)>>> = Arc::default();
    let (m, s) = (meet.clone(), spans.clone());
    let rt = builder(dir.path())
        .parallel(8)
        .register_fn("meet", move |who: i64| -> bool {
            let start = Instant::now();
            let met = m.arrive(8);
            s.lock().unwrap().push((start, Instant::now()));
            met && who >= 0
        })
        .build()
        .unwrap();
    let report = rt
        .run_str(
            r#"for i in 0..8 { proc(`p${i}`, |ctx| meet(i)); } run("p*");"#,
            [""; 0],
        )
        .unwrap();
    assert_eq!(report.run.outcome, Outcome::Ok, "{report:?}");
    assert_eq!(report.procs.len(), 8);
    for p in &report.procs {
        assert_eq!(p.state, State::Succeeded, "{p:?}");
        assert_eq!(
            p.result,
            serde_json::json!(true),
            "{} never met the others",
            p.name
        );
    }
    // Every call started before any ended: they overlapped.
    let spans = spans.lock().unwrap();
    let last_start = spans.iter().map(|s| s.0).max().unwrap();
    let first_end = spans.iter().map(|s| s.1).min().unwrap();
    assert!(last_start <= first_end);
}

#[test]
fn a_custom_module_is_importable_and_results_come_back_as_json() {
    let dir = tempfile::tempdir().unwrap();
    let mut acme = rhai::Module::new();
    acme.set_native_fn("answer", || Ok(42_i64));
    acme.set_var("NAME", "acme");
    let rt = builder(dir.path()).module("acme", acme).build().unwrap();
    let report = rt
        .run_str(
            r#"
            import "acme" as acme;
            proc("a", || #{ n: acme::answer(), who: acme::NAME, list: [1, "x"] });
            proc("b", #{ cmd: ["sh", "-c", "exit 3"] });
            "#,
            ["a", "b"],
        )
        .unwrap();
    assert_eq!(report.run.outcome, Outcome::Failed);
    assert_eq!(report.exit_code(), 1);
    let a = report.proc("a").unwrap();
    assert_eq!(
        a.result,
        serde_json::json!({"n": 42, "who": "acme", "list": [1, "x"]})
    );
    assert!(a.start.is_some() && a.duration.is_some());
    let b = report.proc("b").unwrap();
    assert_eq!((b.state, b.exit_code), (State::Failed, Some(3)));
    // The report serializes to the shape of `--json`.
    let json = serde_json::to_value(&report).unwrap();
    assert_eq!(json["run"]["outcome"], "failed");
    assert_eq!(json["run"]["script"], "<string>");
    let names: Vec<&str> = json["procs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["a", "b"]);
    assert_eq!(json["procs"][1]["state"], "FAILED");
    assert_eq!(json["procs"][1]["exit_code"], 3);
}

#[test]
fn run_file_reads_declared_options_targets_and_script_args() {
    let dir = tempfile::tempdir().unwrap();
    let declared = dir.path().join("declared.rhai");
    std::fs::write(
        &declared,
        r#"
        let opts = args(#{ name: #{ "default": "x" } });
        proc("greet", || `hello ${opts.name}`);
        proc("other", || "never");
        "#,
    )
    .unwrap();
    let rt = builder(dir.path()).build().unwrap();
    let report = rt.run_file(&declared, ["--name", "ada", "greet"]).unwrap();
    assert_eq!(report.procs.len(), 1, "only the target ran: {report:?}");
    assert_eq!(report.procs[0].result, serde_json::json!("hello ada"));
    let err = rt.run_file(&declared, ["--bogus"]).unwrap_err();
    assert_eq!(err.kind(), prun::ErrorKind::Usage);
    assert!(err.to_string().contains("--bogus"), "{err}");
    let plain = dir.path().join("plain.rhai");
    std::fs::write(&plain, r#"proc("words", || args());"#).unwrap();
    let report = rt
        .run_file(&plain, vec!["words".to_string(), "--".into(), "w".into()])
        .unwrap();
    assert_eq!(report.procs[0].result, serde_json::json!(["w"]));
}

#[test]
fn a_syntax_error_is_a_typed_error_with_its_position() {
    let dir = tempfile::tempdir().unwrap();
    let rt = builder(dir.path()).build().unwrap();
    let err = rt.run_str("let a = 1;\nlet b = ;", [""; 0]).unwrap_err();
    assert_eq!(err.kind(), prun::ErrorKind::Script);
    let at = err.location().unwrap();
    assert_eq!((at.file.as_str(), at.line, at.column), ("<string>", 2, 9));
    assert_eq!(err.exit_code(), 2);
}

/// A wrong `args(#{...})` declaration stops the run before it starts, like a syntax
/// error: the embedder gets its position as a `Location`, not only inside the message.
#[test]
fn a_wrong_args_declaration_is_a_typed_error_with_its_position() {
    let dir = tempfile::tempdir().unwrap();
    let rt = builder(dir.path()).build().unwrap();
    let err = rt
        .run_str(
            "let x = 1;

let a = args(#{ out: #{ bogus: 1 } });",
            [""; 0],
        )
        .unwrap_err();
    assert_eq!(err.kind(), prun::ErrorKind::Script);
    assert!(err.to_string().contains("unknown setting `bogus`"), "{err}");
    let at = err.location().expect("the position of the args call");
    assert_eq!((at.file.as_str(), at.line, at.column), ("<string>", 3, 9));
}

#[test]
fn cancel_from_another_thread_ends_the_run_like_ctrl_c() {
    let dir = tempfile::tempdir().unwrap();
    let pidfile = dir.path().join("pid");
    let cleaned = dir.path().join("cleaned");
    let rt = builder(dir.path()).build().unwrap();
    let cancel = Cancel::new();
    let canceller = {
        let (cancel, pidfile) = (cancel.clone(), pidfile.clone());
        std::thread::spawn(move || {
            let pid = wait_for_line(&pidfile);
            cancel.cancel();
            pid
        })
    };
    let script = format!(
        r#"defer(|| write_file("{}", "yes"));
        {}
        run("sleeper");"#,
        cleaned.display(),
        sleeper("sleeper", &pidfile)
    );
    let report = rt.run_str_with_cancel(&script, [""; 0], &cancel).unwrap();
    let pid = canceller.join().unwrap();
    assert_eq!(report.run.outcome, Outcome::Interrupted, "{report:?}");
    assert_eq!(report.exit_code(), 130);
    assert!(!alive(&pid), "the command's process {pid} outlived the run");
    assert_eq!(std::fs::read_to_string(&cleaned).unwrap(), "yes");
    assert!(cancel.is_cancelled());
}

/// A second `cancel()` is a second Ctrl-C: a cleanup that hangs on a command after the
/// first one is killed, and the run returns.
#[test]
fn a_second_cancel_ends_a_cleanup_that_hangs() {
    let dir = tempfile::tempdir().unwrap();
    let pidfile = dir.path().join("pid");
    let hanging = dir.path().join("hanging");
    let rt = builder(dir.path()).build().unwrap();
    let cancel = Cancel::new();
    let canceller = {
        let (cancel, pidfile, hanging) = (cancel.clone(), pidfile.clone(), hanging.clone());
        std::thread::spawn(move || {
            wait_for_line(&pidfile);
            cancel.cancel();
            let pid = wait_for_line(&hanging);
            cancel.cancel();
            pid
        })
    };
    let script = format!(
        r#"defer(|| shell("trap '' TERM; echo $$ > {}; exec sleep 300"));
        {}
        run("sleeper");"#,
        hanging.display(),
        sleeper("sleeper", &pidfile)
    );
    // On a thread of its own: a run that waits for the cleanup's `sleep 300` fails the
    // test after PATIENCE instead of keeping it.
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(rt.run_str_with_cancel(&script, [""; 0], &cancel));
    });
    let report = rx
        .recv_timeout(PATIENCE)
        .expect("the run waited for its hanging cleanup after a second cancel")
        .unwrap();
    let pid = canceller.join().unwrap();
    assert_eq!(report.run.outcome, Outcome::Interrupted, "{report:?}");
    assert!(!alive(&pid), "the cleanup's command {pid} outlived the run");
}

/// Two cancels that both come before the cleanups start (while a native function holds
/// the top level) end the cleanups as a second cancel during them does: a cleanup that
/// hangs does not keep the run from returning.
#[test]
fn a_second_cancel_before_the_cleanups_start_ends_them_too() {
    let dir = tempfile::tempdir().unwrap();
    let (entered_tx, entered) = std::sync::mpsc::channel::<()>();
    let (release, released) = std::sync::mpsc::channel::<()>();
    let (entered_tx, released) = (Mutex::new(entered_tx), Mutex::new(released));
    let rt = builder(dir.path())
        .register_fn("hold", move || {
            let _ = entered_tx.lock().unwrap().send(());
            let _ = released.lock().unwrap().recv_timeout(PATIENCE);
        })
        .build()
        .unwrap();
    let cancel = Cancel::new();
    let canceller = {
        let cancel = cancel.clone();
        std::thread::spawn(move || {
            entered.recv_timeout(PATIENCE).unwrap();
            cancel.cancel();
            cancel.cancel();
            release.send(()).unwrap();
        })
    };
    let pidfile = dir.path().join("pid");
    let script = format!(
        r#"defer(|| exec(["sh", "-c", "echo $$ > {}; exec sleep 300"]));
        hold();"#,
        pidfile.display()
    );
    let report = report_within_patience(rt, &script, cancel);
    canceller.join().unwrap();
    assert_eq!(report.run.outcome, Outcome::Interrupted, "{report:?}");
    if let Ok(pid) = std::fs::read_to_string(&pidfile) {
        let pid = pid.trim();
        assert!(!alive(pid), "the cleanup's command {pid} outlived the run");
    }
}

#[test]
fn two_runs_of_one_runtime_run_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let meet = Arc::new(Rendezvous::default());
    let m = meet.clone();
    let rt = builder(dir.path())
        .register_fn("meet", move || m.arrive(2))
        .build()
        .unwrap();
    let runs: Vec<_> = ["one", "two"]
        .into_iter()
        .map(|name| {
            let rt = rt.clone();
            std::thread::spawn(move || {
                let script = format!(r#"proc("{name}", || meet()); run("{name}");"#);
                rt.run_str(&script, [""; 0]).unwrap()
            })
        })
        .collect();
    for (run, name) in runs.into_iter().zip(["one", "two"]) {
        let report = run.join().unwrap();
        assert_eq!(report.procs.len(), 1);
        assert_eq!(report.procs[0].name, name);
        assert_eq!(
            report.procs[0].result,
            serde_json::json!(true),
            "{name} never met the other run"
        );
    }
}

/// Two runs of one script at once share its log root (a cron job that overlaps its
/// last run does too). With `keep_runs: 1`, the second pruned the first's directory while
/// the first still ran, its logs with it: the first's failed proc had no log left.
#[test]
fn keep_runs_does_not_prune_the_logs_of_a_run_still_going() {
    let dir = tempfile::tempdir().unwrap();
    let (started, go) = (dir.path().join("started"), dir.path().join("go"));
    let rt = builder(dir.path()).build().unwrap();
    let first = {
        let rt = rt.clone();
        let script = format!(
            r#"set_options(#{{ keep_runs: 1 }});
            proc("first", #{{ shell: "echo first-output; echo up > {}; while [ ! -e {} ]; do sleep 0.05; done; exit 3" }});
            run("first");"#,
            started.display(),
            go.display()
        );
        std::thread::spawn(move || rt.run_str(&script, [""; 0]).unwrap())
    };
    wait_for_line(&started);
    let second = rt
        .run_str(
            r#"set_options(#{ keep_runs: 1 }); proc("second", #{ cmd: ["false"] }); run("second");"#,
            [""; 0],
        )
        .unwrap();
    assert_eq!(second.run.outcome, Outcome::Failed, "{second:?}");
    std::fs::write(&go, "").unwrap();
    let first = first.join().unwrap();
    let proc = first.proc("first").unwrap();
    assert_eq!(proc.state, State::Failed, "{proc:?}");
    let log = proc.log.clone().expect("the first run's log");
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.contains("first-output"), "{text}");
}

#[test]
fn a_run_leaves_the_callers_signal_mask_as_it_was() {
    use nix::sys::signal::{SigSet, SigmaskHow, Signal, pthread_sigmask};
    let mask = || {
        let mut now = SigSet::empty();
        pthread_sigmask(SigmaskHow::SIG_BLOCK, None, Some(&mut now)).unwrap();
        now
    };
    let dir = tempfile::tempdir().unwrap();
    let rt = builder(dir.path()).build().unwrap();
    // A thread of its own, whose mask is known: SIGUSR2 blocked, SIGCHLD not.
    std::thread::spawn(move || {
        let mut usr2 = SigSet::empty();
        usr2.add(Signal::SIGUSR2);
        pthread_sigmask(SigmaskHow::SIG_BLOCK, Some(&usr2), None).unwrap();
        let before: Vec<Signal> = mask().iter().collect();
        // prun blocks SIGCHLD on the waiting thread during the run, to sleep through the
        // children's signals.
        let report = rt
            .run_str(r#"proc("a", #{ cmd: ["true"], now: true });"#, [""; 0])
            .unwrap();
        assert_eq!(report.run.outcome, Outcome::Ok, "{report:?}");
        let after: Vec<Signal> = mask().iter().collect();
        assert_eq!(after, before);
        assert!(!after.contains(&Signal::SIGCHLD));
    })
    .join()
    .unwrap();
}

#[test]
fn a_run_works_from_inside_a_tokio_runtime() {
    let dir = tempfile::tempdir().unwrap();
    let rt = builder(dir.path()).build().unwrap();
    let tokio_rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let report = tokio_rt.block_on(async {
        // The top level runs a command too: it blocks on prun's own runtime.
        rt.run_str(
            r#"let r = exec(["echo", "top"]); proc("a", #{ cmd: ["true"], now: true }); r.stdout"#,
            [""; 0],
        )
    });
    let report = report.unwrap();
    assert_eq!(report.run.outcome, Outcome::Ok, "{report:?}");
    assert_eq!(report.procs[0].state, State::Succeeded);
}

#[test]
fn a_native_function_that_panics_ends_the_run_as_an_internal_error() {
    let dir = tempfile::tempdir().unwrap();
    let pidfile = dir.path().join("pid");
    let p = pidfile.clone();
    let rt = builder(dir.path())
        .parallel(2)
        .register_fn("explode", move || -> bool {
            wait_for_line(&p);
            panic!("the native function broke");
        })
        .build()
        .unwrap();
    let script = format!(
        r#"{}
        proc("boom", || explode());
        run(["sleeper", "boom"]);"#,
        sleeper("sleeper", &pidfile)
    );
    let report = rt.run_str(&script, [""; 0]).unwrap();
    assert_eq!(report.run.outcome, Outcome::InternalError, "{report:?}");
    assert_eq!(report.exit_code(), 2);
    let error = report.run.error.clone().unwrap_or_default();
    assert!(
        error.contains("internal error: the native function broke"),
        "{error}"
    );
    // The proc whose body panicked failed with it: no proc is left RUNNING in the report.
    let boom = report.proc("boom").unwrap();
    assert_eq!(boom.state, State::Failed, "{boom:?}");
    let why = boom.error.clone().unwrap_or_default();
    assert!(
        why.contains("internal error: the native function broke"),
        "{why}"
    );
    assert!(report.procs.iter().all(|p| p.state != State::Running));
    let pid = wait_for_line(&pidfile);
    assert!(!alive(&pid), "the sleeper {pid} outlived the run");
}

/// The procs running when a native function panics are worded one way, whether their
/// command ended on the run's cancel before the report was made (`sleeper`) or was still
/// running and was killed (`stubborn` ignores SIGTERM): "killed: the run ended on an
/// internal error" was the second.
#[test]
fn procs_running_at_an_internal_error_end_in_one_wording_whatever_the_timing() {
    let dir = tempfile::tempdir().unwrap();
    let (pidfile, stubborn_pidfile) = (dir.path().join("pid"), dir.path().join("stubborn"));
    let (p, q) = (pidfile.clone(), stubborn_pidfile.clone());
    let rt = builder(dir.path())
        .parallel(3)
        .register_fn("explode", move || -> bool {
            wait_for_line(&p);
            wait_for_line(&q);
            panic!("the native function broke");
        })
        .build()
        .unwrap();
    let script = format!(
        r#"{}
        proc("stubborn", #{{ cmd: ["sh", "-c", "trap '' TERM; echo $$ > {}; while :; do sleep 1; done"] }});
        proc("boom", || explode());
        run(["sleeper", "stubborn", "boom"]);"#,
        sleeper("sleeper", &pidfile),
        stubborn_pidfile.display()
    );
    let report = rt.run_str(&script, [""; 0]).unwrap();
    assert_eq!(report.run.outcome, Outcome::InternalError, "{report:?}");
    for name in ["sleeper", "stubborn"] {
        let p = report.proc(name).unwrap();
        let why = p.error.clone().unwrap_or_default();
        assert!(
            p.state == State::Failed && why.ends_with("terminated because the run was aborted"),
            "{name}: {p:?}"
        );
    }
    for pid in [wait_for_line(&pidfile), wait_for_line(&stubborn_pidfile)] {
        assert!(!alive(&pid), "{pid} outlived the run");
    }
}

/// A native function that panics while prun decides whether a proc is up to date (in a
/// closure of its `inputs`) ends the run as an internal error; the proc, which never
/// started, is not left WANTED in the report of a run that has ended.
#[test]
fn a_native_function_that_panics_in_an_inputs_closure_leaves_no_proc_pending() {
    let dir = tempfile::tempdir().unwrap();
    let rt = builder(dir.path())
        .register_fn("explode", || -> String {
            panic!("the native function broke")
        })
        .build()
        .unwrap();
    let report = rt
        .run_str(
            r#"proc("a", #{ inputs: [|| explode()], cmd: ["true"] }); run("a");"#,
            [""; 0],
        )
        .unwrap();
    assert_eq!(report.run.outcome, Outcome::InternalError, "{report:?}");
    let a = report.proc("a").unwrap();
    assert_eq!(a.state, State::Failed, "{a:?}");
    let why = a.error.clone().unwrap_or_default();
    assert!(why.contains("the run ended on an internal error"), "{why}");
}

/// Rhai's own `sort` caught every panic of its comparator and threw "error in comparer
/// for sorting": a bug became a failed proc (exit status 1), or a script error at the
/// top level, and the run went on.
#[test]
fn a_native_function_that_panics_in_a_sort_comparator_ends_the_run_as_an_internal_error() {
    let dir = tempfile::tempdir().unwrap();
    let rt = builder(dir.path())
        .register_fn("explode", || -> i64 { panic!("the comparator broke") })
        .build()
        .unwrap();
    for script in [
        r#"proc("p", || { let a = [2, 1]; a.sort(|x, y| explode()); a }); run("p");"#,
        r#"let a = [2, 1]; a.sort(|x, y| explode());"#,
    ] {
        let report = rt.run_str(script, [""; 0]).unwrap();
        assert_eq!(report.run.outcome, Outcome::InternalError, "{report:?}");
        assert_eq!(report.exit_code(), 2);
        let error = report.run.error.clone().unwrap_or_default();
        assert!(
            error.contains("internal error: the comparator broke"),
            "{error}"
        );
    }
}
#[test]
fn a_native_function_that_panics_in_a_cleanup_is_in_the_report_and_later_cleanups_run() {
    // The cleanups ran outside the run's guard against panics: `run_str` returned an
    // `Error` ("the run's thread panicked", the panic's message lost) for a run that had
    // run, and the cleanups after the panicking one never ran.
    let dir = tempfile::tempdir().unwrap();
    let rt = builder(dir.path())
        .register_fn("explode", || -> bool { panic!("the cleanup broke") })
        .build()
        .unwrap();
    let first = dir.path().join("first.txt");
    let script = format!(
        r#"defer(|| write_file({first:?}, "ran"));
        defer(|| explode());
        proc("a", #{{ cmd: ["true"] }});
        run("a");"#
    );
    let report = rt.run_str(&script, [""; 0]).unwrap();
    assert_eq!(report.run.outcome, Outcome::InternalError, "{report:?}");
    assert_eq!(report.exit_code(), 2);
    let error = report.run.error.clone().unwrap_or_default();
    assert!(
        error.contains("internal error: the cleanup broke"),
        "{error}"
    );
    assert_eq!(report.proc("a").unwrap().state, State::Succeeded);
    assert_eq!(std::fs::read_to_string(&first).unwrap_or_default(), "ran");
}

#[test]
fn a_native_function_that_panics_while_the_top_level_ends_is_in_the_report() {
    // A `now: true` proc's dependency on a proto glob is resolved when the top level
    // ends, calling `arg_choices`, outside the run's guard against panics: `run_str`
    // returned an `Error` ("the run's thread panicked") instead of a report.
    let dir = tempfile::tempdir().unwrap();
    let rt = builder(dir.path())
        .register_fn("explode", || -> rhai::Array { panic!("the choices broke") })
        .build()
        .unwrap();
    let report = rt
        .run_str(
            r#"proto("a::[x]", #{ arg_choices: #{ x: |ctx| explode() }, cmd: ["true"] });
            proc("b", #{ now: true, deps: ["a::*"], cmd: ["true"] });"#,
            [""; 0],
        )
        .unwrap();
    assert_eq!(report.run.outcome, Outcome::InternalError, "{report:?}");
    let error = report.run.error.clone().unwrap_or_default();
    assert!(
        error.contains("internal error: the choices broke"),
        "{error}"
    );
}

#[test]
fn a_native_function_that_panics_while_the_watch_reads_its_inputs_is_in_the_report() {
    // The watch calls `inputs` closures on the run's thread to learn what to watch,
    // outside the run's guard against panics: `run_str` returned an `Error` ("the run's
    // thread panicked") instead of a report, and the script's cleanups never ran.
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.txt");
    std::fs::write(&input, "x").unwrap();
    let cleaned = dir.path().join("cleaned.txt");
    let rt = builder(dir.path())
        .register_fn("explode", || -> bool { panic!("the inputs broke") })
        .build()
        .unwrap();
    let script = format!(
        r#"set_options(#{{ watch: true }});
        defer(|| write_file({cleaned:?}, "ran"));
        // Judged first (p not yet run), then read by the watch once p has succeeded.
        proc("p", #{{ inputs: [|ctx| {{ if state("p") == "SUCCEEDED" {{ explode(); }} {input:?} }}] }}, |ctx| 1);
        run("p");"#
    );
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(rt.run_str(&script, [""; 0]));
    });
    let report = rx
        .recv_timeout(PATIENCE)
        .expect("the run never returned")
        .unwrap();
    assert_eq!(report.run.outcome, Outcome::InternalError, "{report:?}");
    assert_eq!(report.exit_code(), 2);
    let error = report.run.error.clone().unwrap_or_default();
    assert!(
        error.contains("internal error: the inputs broke"),
        "{error}"
    );
    assert_eq!(report.proc("p").unwrap().state, State::Succeeded);
    assert_eq!(std::fs::read_to_string(&cleaned).unwrap_or_default(), "ran");
}

#[test]
fn a_cancel_ends_a_watch_with_its_last_cycle_s_outcome_and_no_ctrl_c_is_promised() {
    // As Ctrl-C ends `prun --watch`: not Interrupted, and the lines after `watch()` do
    // not run.
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.txt");
    std::fs::write(&input, "x").unwrap();
    let cancel = Cancel::new();
    let stop = cancel.clone();
    let said = Arc::new(Mutex::new(Vec::new()));
    let says = said.clone();
    let rt = builder(dir.path())
        .on_event(move |e| {
            if let Event::Log { text, .. } = e
                && text.starts_with("prun: watch: watching")
            {
                says.lock().unwrap().push(text.clone());
                stop.cancel();
            }
        })
        .build()
        .unwrap();
    let script = format!(
        r#"set_options(#{{ watch: true }});
        proc("p", #{{ inputs: [{input:?}] }}, |ctx| 1);
        run("p");
        watch();
        throw "after the watch";"#
    );
    let report = report_within_patience(rt, &script, cancel);
    assert_eq!(report.run.outcome, Outcome::Ok, "{report:?}");
    assert_eq!(report.exit_code(), 0);
    assert_eq!(report.proc("p").unwrap().state, State::Succeeded);
    let said = said.lock().unwrap().clone();
    assert_eq!(
        said,
        ["prun: watch: watching 1 input of 1 proc in 1 directory"],
        "no Ctrl-C hint: this run handles no signal"
    );
}

#[test]
fn an_event_callback_may_cancel_its_own_run() {
    // An embedder stopping the run at the first failure from its `on_event`: the cancel
    // printed the run's reports again on the thread already printing them, and waited
    // for itself for ever.
    let dir = tempfile::tempdir().unwrap();
    let cancel = Cancel::new();
    let c = cancel.clone();
    let rt = builder(dir.path())
        .on_event(move |e| {
            if matches!(
                e,
                Event::Finished {
                    state: State::Failed,
                    ..
                }
            ) {
                c.cancel();
            }
        })
        .build()
        .unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let r = rt.run_str_with_cancel(
            r#"proc("bad", #{ cmd: ["false"] });
            proc("long", #{ cmd: ["sleep", "30"] });
            run(["long", "bad"]);"#,
            [""; 0],
            &cancel,
        );
        let _ = tx.send(r);
    });
    let report = rx
        .recv_timeout(PATIENCE)
        .expect("the run never returned")
        .unwrap();
    assert_eq!(report.run.outcome, Outcome::Interrupted, "{report:?}");
    assert_eq!(report.proc("long").unwrap().state, State::Failed);
}

/// An `on_event` callback that panics ends the run as a panic in a native function does,
/// and the report says the panic was the callback's: the embedder's own code, not prun.
#[test]
fn an_event_callback_that_panics_ends_the_run_and_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let rt = builder(dir.path())
        .on_event(|e: &Event| {
            if matches!(e, Event::Started { .. }) {
                panic!("the forwarder broke");
            }
        })
        .build()
        .unwrap();
    let report = rt
        .run_str(r#"proc("a", #{ cmd: ["true"] }); run("a");"#, [""; 0])
        .unwrap();
    assert_eq!(report.run.outcome, Outcome::InternalError, "{report:?}");
    assert_eq!(report.exit_code(), 2);
    let error = report.run.error.clone().unwrap_or_default();
    assert!(
        error.contains("internal error: the on_event callback panicked: the forwarder broke"),
        "{error}"
    );
    assert!(report.procs.iter().all(|p| p.state != State::Running));
}

#[test]
fn events_tell_an_embedder_what_happens() {
    let dir = tempfile::tempdir().unwrap();
    let seen: Arc<Mutex<Vec<Event>>> = Arc::default();
    let s = seen.clone();
    let rt = builder(dir.path())
        .on_event(move |e| s.lock().unwrap().push(e.clone()))
        .build()
        .unwrap();
    rt.run_str(
        r#"proc("a", |ctx| { ctx.progress(0.5); print("hello"); exec(["true"]); 1 }); run("a");"#,
        [""; 0],
    )
    .unwrap();
    let seen = seen.lock().unwrap();
    let started = seen
        .iter()
        .position(|e| matches!(e, Event::Started { name, .. } if name == "a"));
    let finished = seen.iter().position(|e| {
        matches!(e, Event::Finished { name, state: State::Succeeded, duration: Some(_), .. } if name == "a")
    });
    assert!(started.is_some() && finished.is_some(), "{seen:?}");
    assert!(started < finished);
    assert!(
        seen.iter()
            .any(|e| matches!(e, Event::Progress { name, .. } if name == "a"))
    );
    assert!(
        seen.iter()
            .any(|e| matches!(e, Event::Log { text, .. } if text == "hello"))
    );
    assert!(seen.iter().any(
        |e| matches!(e, Event::Command { proc: Some(p), line, .. } if p == "a" && line == "true")
    ));
}

#[test]
fn the_runtimes_log_dir_wins_over_the_scripts() {
    // A script's `set_options(#{ log_dir })` moved the logs out of the directory the
    // embedder gave, as `parallel` and `task_db` cannot be changed.
    let dir = tempfile::tempdir().unwrap();
    let other = dir.path().join("other");
    let script = format!(
        r#"set_options(#{{ log_dir: "{}" }}); proc("a", #{{ shell: "echo hi" }});"#,
        other.display()
    );
    let report = builder(dir.path())
        .build()
        .unwrap()
        .run_str(&script, ["a"])
        .unwrap();
    assert_eq!(report.run.outcome, Outcome::Ok, "{report:?}");
    let log = report.proc("a").unwrap().log.clone().unwrap();
    assert!(log.starts_with(dir.path().join("logs")), "{log:?}");
    assert!(!other.exists());
    // Without a log_dir of the runtime's, the script's is taken.
    let report = Runtime::builder()
        .task_db(TaskDb::Off)
        .state_dir(dir.path().join("state"))
        .build()
        .unwrap()
        .run_str(&script, ["a"])
        .unwrap();
    let log = report.proc("a").unwrap().log.clone().unwrap();
    assert!(log.starts_with(&other), "{log:?}");
}

#[test]
fn a_scripts_keep_runs_does_not_prune_the_runtimes_shared_log_dir() {
    // Every run of a runtime with a log_dir keeps its logs there, whatever its script: a
    // script's `keep_runs: 1` removed the logs of the other scripts' runs.
    let dir = tempfile::tempdir().unwrap();
    let rt = builder(dir.path())
        .task_db(dir.path().join("tasks.db"))
        .build()
        .unwrap();
    let runs = || std::fs::read_dir(dir.path().join("logs")).unwrap().count();
    for _ in 0..3 {
        let report = rt
            .run_str(r#"proc("a", #{ cmd: ["true"] });"#, ["a"])
            .unwrap();
        assert_eq!(report.run.outcome, Outcome::Ok, "{report:?}");
    }
    assert_eq!(runs(), 3);
    let script = r#"set_options(#{ keep_runs: 1 }); proc("b", #{ cmd: ["true"] });"#;
    for _ in 0..2 {
        let report = rt.run_str(script, ["b"]).unwrap();
        assert_eq!(report.run.outcome, Outcome::Ok, "{report:?}");
    }
    assert_eq!(runs(), 5);
}

#[test]
fn an_interactive_proc_gets_the_programs_terminal_only_when_it_lends_it() {
    // An interactive proc of a library run was handed the program's own stdin, stdout and
    // stderr (and its terminal, and its process group stopped at a Ctrl-Z): a script
    // read the program's input and wrote into its output.
    let dir = tempfile::tempdir().unwrap();
    let marker = |name: &str| dir.path().join(name);
    let script = format!(
        r#"proc("cmd", #{{ interactive: true, cmd: ["touch", "{}"] }});
        proc("closure", #{{ interactive: true }}, || exec(["touch", "{}"]));"#,
        marker("cmd").display(),
        marker("closure").display()
    );
    let report = builder(dir.path())
        .build()
        .unwrap()
        .run_str(&script, ["cmd", "closure"])
        .unwrap();
    assert_eq!(report.run.outcome, Outcome::Failed, "{report:?}");
    for name in ["cmd", "closure"] {
        let p = report.proc(name).unwrap();
        let error = p.error.as_deref().unwrap_or_default();
        assert_eq!(p.state, State::Failed, "{name}: {p:?}");
        assert!(
            error.contains("interactive") && error.contains("RuntimeBuilder::terminal"),
            "{name}: {error}"
        );
        assert!(!marker(name).exists(), "{name} ran");
    }
    let report = builder(dir.path())
        .terminal(true)
        .build()
        .unwrap()
        .run_str(&script, ["cmd", "closure"])
        .unwrap();
    assert_eq!(report.run.outcome, Outcome::Ok, "{report:?}");
    assert!(marker("cmd").exists() && marker("closure").exists());
}

#[test]
fn an_exceeded_engine_limit_is_a_script_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let rt = builder(dir.path()).max_operations(10_000).build().unwrap();
    let report = rt
        .run_str(r#"proc("spin", || { loop {} }); run("spin");"#, [""; 0])
        .unwrap();
    let error = report
        .proc("spin")
        .unwrap()
        .error
        .clone()
        .unwrap_or_default();
    assert!(error.contains("max_operations"), "{error}");
    let rt = builder(dir.path()).max_string_size(10).build().unwrap();
    let report = rt
        .run_str(r#"let s = "a"; for i in 0..20 { s += "b"; }"#, [""; 0])
        .unwrap();
    assert_eq!(report.run.outcome, Outcome::ScriptError);
    let error = report.run.error.unwrap_or_default();
    assert!(error.contains("max_string_size"), "{error}");
}

/// Runs `script` with `rt` (and `cancel`) on a thread of its own; the report, or a failed
/// test after PATIENCE instead of a test that never ends.
fn report_within_patience(rt: Runtime, script: &str, cancel: Cancel) -> prun::Report {
    let (tx, rx) = std::sync::mpsc::channel();
    let script = script.to_string();
    std::thread::spawn(move || {
        let _ = tx.send(rt.run_str_with_cancel(&script, [""; 0], &cancel));
    });
    rx.recv_timeout(PATIENCE)
        .expect("the run did not end")
        .unwrap()
}

/// Before a run, prun reads the script's `args(#{...})` declaration by running its top
/// level up to it (here the whole script: `args(` is only in a comment). That pass is
/// bounded as the run is: by the engine's limits, the cancel and `max_run_time`.
#[test]
fn the_pass_that_reads_the_declaration_keeps_the_limits_and_the_cancel() {
    let dir = tempfile::tempdir().unwrap();
    let spin = "// no args(#{...}) here\nloop {}";
    let rt = builder(dir.path()).max_operations(10_000).build().unwrap();
    let report = report_within_patience(rt, spin, Cancel::new());
    assert_eq!(report.run.outcome, Outcome::ScriptError, "{report:?}");
    let error = report.run.error.unwrap_or_default();
    assert!(error.contains("max_operations"), "{error}");

    let rt = builder(dir.path()).build().unwrap();
    let cancel = Cancel::new();
    cancel.cancel();
    let report = report_within_patience(rt, spin, cancel);
    assert_eq!(report.run.outcome, Outcome::Interrupted, "{report:?}");

    let policy = prun::Policy::new().max_run_time(Duration::from_millis(300));
    let rt = builder(dir.path()).policy(policy).build().unwrap();
    let report = report_within_patience(rt, spin, Cancel::new());
    assert_eq!(report.run.outcome, Outcome::Interrupted, "{report:?}");
    let error = report.run.error.unwrap_or_default();
    assert!(error.contains("max_run_time"), "{error}");

    // A pass stopped before the declaration cannot tell the script's options from wrong
    // words: the run ends as its stop says, not as a usage error about them.
    let declared = "let n = 0; for i in 0..10000 { n += i; }\n\
        let o = args(#{ level: #{ \"default\": \"1\" } });";
    let words = ["--level", "2"];
    let cancel = Cancel::new();
    cancel.cancel();
    let rt = builder(dir.path()).build().unwrap();
    let report = rt.run_str_with_cancel(declared, words, &cancel).unwrap();
    assert_eq!(report.run.outcome, Outcome::Interrupted, "{report:?}");
    let rt = builder(dir.path()).max_operations(1_000).build().unwrap();
    let report = rt.run_str(declared, words).unwrap();
    assert_eq!(report.run.outcome, Outcome::ScriptError, "{report:?}");
    let error = report.run.error.unwrap_or_default();
    assert!(error.contains("max_operations"), "{error}");

    // Nor does it know which words are secret: it records none of them in the history.
    let db = dir.path().join("task.db");
    let secret = "let n = 0; for i in 0..10000 { n += i; }\n\
        let o = args(#{ pw: #{ secret: true } });";
    let cancel = Cancel::new();
    cancel.cancel();
    let rt = builder(dir.path()).task_db(db.as_path()).build().unwrap();
    let report = rt
        .run_str_with_cancel(secret, ["--pw", "hunter2-secret"], &cancel)
        .unwrap();
    assert_eq!(report.run.outcome, Outcome::Interrupted, "{report:?}");
    let conn = rusqlite::Connection::open(&db).unwrap();
    let recorded: Vec<String> = conn
        .prepare("SELECT args FROM runs")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert!(!recorded.is_empty());
    assert!(
        recorded.iter().all(|a| !a.contains("hunter2-secret")),
        "{recorded:?}"
    );

    // The pass runs on the caller's thread: a generous limit of calls does not let it
    // overflow that thread's stack (the run's own threads are checked as they go).
    let rt = builder(dir.path())
        .max_call_levels(1_000_000)
        .build()
        .unwrap();
    let deep = "// no args(#{...}) here\nfn f(n) { f(n + 1) }\nf(0);";
    let report = report_within_patience(rt, deep, Cancel::new());
    assert_eq!(report.run.outcome, Outcome::ScriptError, "{report:?}");
}

/// `max_run_time` bounds the whole run for a script that does not want to end: a command
/// that ignores SIGTERM under a kill grace of an hour, and cleanups that loop or hang. The
/// first stop lets the run end as a first cancel does; a few seconds later it is ended as
/// a second cancel ends it, cleanups included.
#[test]
fn max_run_time_bounds_the_scripts_kill_grace_and_its_cleanups() {
    let dir = tempfile::tempdir().unwrap();
    let (top, cleanup) = (dir.path().join("top"), dir.path().join("cleanup"));
    let stubborn = |pidfile: &Path| {
        format!(
            r#"exec(["sh", "-c", "trap '' TERM; echo $$ > {}; exec sleep 300"])"#,
            pidfile.display()
        )
    };
    let script = format!(
        r#"set_options(#{{ kill_grace: "1h" }});
        defer(|| {});
        defer(|| {{ loop {{}} }});
        {};"#,
        stubborn(&cleanup),
        stubborn(&top)
    );
    let policy = prun::Policy::new().max_run_time(Duration::from_millis(300));
    let rt = builder(dir.path()).policy(policy).build().unwrap();
    let report = report_within_patience(rt, &script, Cancel::new());
    assert_eq!(report.run.outcome, Outcome::Interrupted, "{report:?}");
    let error = report.run.error.unwrap_or_default();
    assert!(error.contains("max_run_time"), "{error}");
    let pid = wait_for_line(&top);
    assert!(
        !alive(&pid),
        "the top level's command {pid} outlived the run"
    );
    if let Ok(pid) = std::fs::read_to_string(&cleanup) {
        let pid = pid.trim();
        assert!(!alive(pid), "the cleanup's command {pid} outlived the run");
    }
}

#[test]
fn the_stdlib_can_be_turned_off() {
    let dir = tempfile::tempdir().unwrap();
    let script = r#"import "retry" as retry; proc("a", || 1); run("a");"#;
    let on = builder(dir.path()).build().unwrap();
    assert_eq!(
        on.run_str(script, [""; 0]).unwrap().run.outcome,
        Outcome::Ok
    );
    let off = builder(dir.path()).stdlib(false).build().unwrap();
    let report = off.run_str(script, [""; 0]).unwrap();
    assert_eq!(report.run.outcome, Outcome::ScriptError, "{report:?}");
}

#[test]
fn a_task_db_path_records_the_run() {
    let dir = tempfile::tempdir().unwrap();
    let db: PathBuf = dir.path().join("tasks.db");
    let rt = builder(dir.path()).task_db(db.as_path()).build().unwrap();
    let report = rt
        .run_str(r#"proc("a", #{ cmd: ["true"], now: true });"#, [""; 0])
        .unwrap();
    assert_eq!(report.run.outcome, Outcome::Ok);
    assert!(db.exists(), "no task DB at {}", db.display());
}

#[test]
fn a_script_edited_between_two_runs_of_one_process_is_not_served_from_the_cache() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("input");
    std::fs::write(&input, "data").unwrap();
    let script = dir.path().join("s.rhai");
    let text = |value: &str| {
        format!(
            r#"fn value() {{ {value} }}
            proc("a", #{{ inputs: ["{}"] }}, || value()); run("a");"#,
            input.display()
        )
    };
    let rt = builder(dir.path())
        .task_db(dir.path().join("tasks.db"))
        .build()
        .unwrap();
    std::fs::write(&script, text("1")).unwrap();
    let first = rt.run_file(&script, [""; 0]).unwrap();
    assert_eq!(first.procs[0].result, serde_json::json!(1));
    let again = rt.run_file(&script, [""; 0]).unwrap();
    assert_eq!(again.procs[0].state, State::UpToDate, "{again:?}");
    std::fs::write(&script, text("2")).unwrap();
    let edited = rt.run_file(&script, [""; 0]).unwrap();
    assert_eq!(edited.procs[0].state, State::Succeeded, "{edited:?}");
    assert_eq!(edited.procs[0].result, serde_json::json!(2));
}

#[test]
fn the_public_types_can_be_shared_between_threads() {
    fn shared<T: Send + Sync + 'static>() {}
    shared::<Runtime>();
    shared::<Cancel>();
    shared::<prun::Report>();
    shared::<prun::Error>();
    shared::<prun::Policy>();
    shared::<Event>();
}

/// The binary's second Ctrl-C kills the process groups of its run (which its runtime's
/// launcher keeps) without waiting out the grace period. The job sends the second SIGINT
/// itself when it gets the first SIGTERM; it ignores SIGTERM, and the grace period is
/// longer than the harness waits.
#[test]
fn a_second_interrupt_kills_the_runs_groups_at_once() {
    let out = crate::support::Test::new()
        .script(
            r#"set_options(#{ kill_grace: "600s" });
            proc("stubborn", #{
                cmd: ["sh", "-c", "trap 'kill -INT $PPID' TERM; echo $$ > pid; while :; do sleep 0.1; done"],
                now: true,
            });"#,
        )
        .signal_when("pid", "INT")
        .run();
    out.code(130).err_has("interrupted");
    let pid = out.read("pid");
    assert!(!alive(pid.trim()), "the job {pid} outlived prun");
}

#[test]
fn a_scripts_help_lists_its_options_without_prun_s_own() {
    let dir = tempfile::tempdir().unwrap();
    let script =
        r#"let o = args(#{ count: #{ int: true, help: "how many" } }); proc("a", || o.count);"#;
    let err = builder(dir.path())
        .build()
        .unwrap()
        .run_str(script, ["--help"])
        .unwrap_err();
    assert_eq!(err.kind(), prun::ErrorKind::Usage);
    let text = err.to_string();
    assert!(text.contains("--count <COUNT>  how many"), "{text}");
    // prun's flags are the embedder's settings here: the help does not offer them.
    assert!(!text.contains("prun --help"), "{text}");
    // The command line still points to them.
    crate::support::Test::new()
        .script(script)
        .args(&["--help"])
        .run()
        .ok()
        .out_has("--count <COUNT>  how many")
        .out_has("prun's own options (-j, --dry-run, --json, ...) work here too");
}

/// The message of the error `build()` gives for a native function called `name`.
fn refusal_of(name: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let built = builder(dir.path())
        .register_fn(name, |s: &str| format!("native: {s}"))
        .build();
    let err = built.expect_err(&format!("a native function called {name:?} is refused"));
    assert_eq!(err.kind(), prun::ErrorKind::Config, "{err}");
    err.to_string()
}

#[test]
fn a_native_function_named_like_one_of_prun_s_is_refused() {
    for name in ["shell", "proc", "run", "log"] {
        let message = refusal_of(name);
        assert!(message.contains(&format!("`{name}`")), "{message}");
        assert!(message.contains("prun's script API"), "{message}");
    }
}

#[test]
fn a_native_function_no_script_can_call_is_refused() {
    for name in ["", "two words", "type_of", "Fn", "fn"] {
        let message = refusal_of(name);
        assert!(
            message.contains(&format!("register_fn({name:?})")),
            "{message}"
        );
    }
}

#[test]
fn a_native_function_with_a_number_type_scripts_do_not_have_is_refused() {
    // A script's integers are i64 and its floats f64: an i32 parameter matched no value
    // ("function half(an integer) does not exist"), and a usize result could not be
    // added to (`count(s) + 1`: "operator `+` does not apply to an integer and an
    // integer") nor be a proc's result.
    let dir = tempfile::tempdir().unwrap();
    let err = builder(dir.path())
        .register_fn("half", |x: i32| -> i64 { i64::from(x / 2) })
        .register_fn("count", |s: &str| -> usize { s.len() })
        .register_fn("scale", |x: f32| -> Result<f64, Box<rhai::EvalAltResult>> {
            Ok(f64::from(x))
        })
        .build()
        .expect_err("number types scripts do not have are refused");
    assert_eq!(err.kind(), prun::ErrorKind::Config, "{err}");
    let message = err.to_string();
    for part in [
        "register_fn(\"half\"): its parameter 1 is i32",
        "register_fn(\"count\"): it returns usize",
        "register_fn(\"scale\"): its parameter 1 is f32",
        "i64",
    ] {
        assert!(message.contains(part), "{part} not in: {message}");
    }
    // The numbers scripts have, with a context and a fallible result, are fine.
    let rt = builder(dir.path())
        .register_fn(
            "half",
            |_: rhai::NativeCallContext, x: i64, f: f64| -> Result<i64, Box<rhai::EvalAltResult>> {
                Ok(x / 2 + f as i64)
            },
        )
        .build()
        .unwrap();
    let report = rt
        .run_str(r#"proc("a", || half(4, 1.0) + 1); run("a");"#, [""; 0])
        .unwrap();
    assert_eq!(report.proc("a").unwrap().result, 4, "{report:?}");
}

#[test]
fn a_native_function_may_overload_rhai_s_own_and_operators() {
    let dir = tempfile::tempdir().unwrap();
    let events = Arc::new(Mutex::new(Vec::new()));
    let seen = events.clone();
    let rt = builder(dir.path())
        .register_fn("len", |s: &str| format!("len of {s}"))
        .register_fn("to_string", |n: i64| format!("<{n}>"))
        .register_fn("+", |a: bool, b: bool| a || b)
        .register_fn("print", |n: i64| format!("number {n}"))
        .on_event(move |e: &Event| seen.lock().unwrap().push(format!("{e:?}")))
        .build()
        .unwrap();
    let report = rt
        .run_str(
            r#"print(7); proc("a", || [len("x"), to_string(1), true + false]); run("a");"#,
            [""; 0],
        )
        .unwrap();
    assert_eq!(report.run.outcome, Outcome::Ok, "{report:?}");
    let result = &report.proc("a").unwrap().result;
    assert_eq!(result, &serde_json::json!(["len of x", "<1>", true]));
    let events = events.lock().unwrap();
    assert!(events.iter().any(|e| e.contains("number 7")), "{events:?}");
}

#[test]
fn an_engine_limit_of_zero_is_refused_not_read_as_no_limit() {
    let dir = tempfile::tempdir().unwrap();
    let refused = [
        (
            "max_operations",
            builder(dir.path()).max_operations(0).build(),
        ),
        (
            "max_string_size",
            builder(dir.path()).max_string_size(0).build(),
        ),
        (
            "max_array_size",
            builder(dir.path()).max_array_size(0).build(),
        ),
        ("max_map_size", builder(dir.path()).max_map_size(0).build()),
    ];
    for (limit, built) in refused {
        let err = built.expect_err(&format!("{limit}(0) is refused"));
        assert_eq!(err.kind(), prun::ErrorKind::Config, "{err}");
        assert!(err.to_string().contains(limit), "{err}");
    }
}

#[test]
fn an_empty_task_db_log_dir_or_state_dir_path_is_refused() {
    let empty_db = Runtime::builder()
        .task_db(TaskDb::Path(PathBuf::new()))
        .build();
    let empty_logs = Runtime::builder().task_db(TaskDb::Off).log_dir("").build();
    let empty_state = Runtime::builder().state_dir("").build();
    for (setting, built) in [
        ("task_db", empty_db),
        ("log_dir", empty_logs),
        ("state_dir", empty_state),
    ] {
        let err = built.expect_err(&format!("an empty {setting} is refused"));
        assert_eq!(err.kind(), prun::ErrorKind::Config, "{err}");
        assert!(err.to_string().contains(setting), "{err}");
    }
}

#[test]
fn every_wrong_setting_is_named_at_once() {
    let err = Runtime::builder()
        .parallel(0)
        .register_fn("run", || 1_i64)
        .register_fn("no good", || 2_i64)
        .build()
        .expect_err("three wrong settings");
    let message = err.to_string();
    for part in [
        "parallel",
        "register_fn(\"run\")",
        "register_fn(\"no good\")",
    ] {
        assert!(message.contains(part), "{part}: {message}");
    }
}

/// A native function that panics in each kind of closure prun calls, and at the top
/// level, while a command runs: the run ends as an internal error, the command's group
/// is ended and the script's cleanups run.
#[test]
fn a_native_function_that_panics_anywhere_ends_the_run_cleanly() {
    let places = [
        "explode();",
        r#"proc("d", #{ deps: [|ctx| { explode(); [] }] }, || 1);"#,
        r#"proto("t::[v]", #{ arg_choices: |ctx| { explode(); #{ v: "x" } } }, |ctx, v| v); run("t::*");"#,
        r#"proto("t::[v]", #{ arg_choices: #{ v: |ctx| { explode(); "x" } } }, |ctx, v| v); run("t::*");"#,
        r#"proc("o", #{ outputs: [|ctx| { explode(); "x" }] }, || 1); run("o");"#,
        r#"proc("q", #{ cmd: ["true"] }); proc("i", #{ deps: ["q"], inputs: [|ctx| { explode(); "x" }] }, || 1); run("i");"#,
        r#"proc("c", || { let a = [2, 1]; a.sort(|x, y| { explode(); 0 }); a }); run("c");"#,
    ];
    for (n, place) in places.iter().enumerate() {
        let dir = tempfile::tempdir().unwrap();
        let pidfile = dir.path().join("pid");
        let cleaned = dir.path().join("cleaned");
        let p = pidfile.clone();
        let rt = builder(dir.path())
            .parallel(2)
            .register_fn("explode", move || {
                wait_for_line(&p);
                panic!("it broke");
            })
            .build()
            .unwrap();
        let script = format!(
            "defer(|| write_file({cleaned:?}, \"ran\"));\n{}\nrun(\"sleeper\");\n{place}\nwait();",
            sleeper("sleeper", &pidfile)
        );
        let report = rt.run_str(&script, [""; 0]).unwrap();
        assert_eq!(
            report.run.outcome,
            Outcome::InternalError,
            "{n}: {place}: {report:?}"
        );
        assert_eq!(report.exit_code(), 2);
        let error = report.run.error.clone().unwrap_or_default();
        assert!(
            error.contains("internal error: it broke"),
            "{place}: {error}"
        );
        assert!(
            report
                .procs
                .iter()
                .all(|p| p.state != State::Running && p.state != State::Wanted),
            "{place}: {report:?}"
        );
        let pid = wait_for_line(&pidfile);
        assert!(!alive(&pid), "{place}: the sleeper {pid} outlived the run");
        assert_eq!(std::fs::read_to_string(&cleaned).unwrap_or_default(), "ran");
    }
}

/// Set in the environment of [`a_host_dies_of_sigterm_once_its_runs_that_handled_signals_ended`]'s
/// second self: the test then plays the host program.
const SIGNAL_HOST: &str = "PRUN_TEST_SIGNAL_HOST";

#[test]
fn a_host_dies_of_sigterm_once_its_runs_that_handled_signals_ended() {
    // A run with `handle_signals(true)` installed handlers that stayed: the program then
    // ignored SIGTERM and Ctrl-C for the rest of its life.
    if let Some(dir) = std::env::var_os(SIGNAL_HOST) {
        signal_host(Path::new(&dir));
        return;
    }
    use std::io::BufRead;
    let dir = tempfile::tempdir().unwrap();
    let mut host = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "embed::a_host_dies_of_sigterm_once_its_runs_that_handled_signals_ended",
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(SIGNAL_HOST, dir.path())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufReader::new(host.stdout.take().unwrap()).lines();
    // libtest's `test NAME ... ` comes first, on the host's first line.
    let mut until = |said: &str| loop {
        let line = lines.next().expect("the host ended early").unwrap();
        if let Some(at) = line.find(said) {
            return line[at..].to_string();
        }
    };
    let term = || {
        let pid = nix::unistd::Pid::from_raw(host.id() as i32);
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
    };
    // A second run, while it lasts, takes the signal.
    wait_for_line(&dir.path().join("pid"));
    term();
    assert_eq!(until("second run:"), "second run: Interrupted");
    until("idle");
    term();
    let status = host.wait().unwrap();
    use std::os::unix::process::ExitStatusExt;
    let sigterm = nix::sys::signal::Signal::SIGTERM as i32;
    assert_eq!(status.signal(), Some(sigterm), "{status:?}");
}

/// The host of [`a_host_dies_of_sigterm_once_its_runs_that_handled_signals_ended`]: a
/// run that handles signals and ends, then one the test interrupts, then it idles.
fn signal_host(dir: &Path) {
    let rt = builder(dir).handle_signals(true).build().unwrap();
    let first = rt
        .run_str(r#"proc("a", #{ cmd: ["true"], now: true });"#, [""; 0])
        .unwrap();
    assert_eq!(first.run.outcome, Outcome::Ok, "{first:?}");
    let second = rt
        .run_str(
            &format!("{}run(\"s\");", sleeper("s", &dir.join("pid"))),
            [""; 0],
        )
        .unwrap();
    println!("second run: {:?}", second.run.outcome);
    println!("idle");
    std::thread::sleep(PATIENCE);
    println!("survived a SIGTERM");
}

/// Set in the environment of [`a_run_that_handled_signals_leaves_the_hosts_other_children_alone`]'s
/// second self: the test then plays the host program.
const CHILDREN_HOST: &str = "PRUN_TEST_CHILDREN_HOST";

#[test]
fn a_run_that_handled_signals_leaves_the_hosts_other_children_alone() {
    // The host is a process of its own: what a run with signal handlers sets is the
    // whole process's.
    if let Some(dir) = std::env::var_os(CHILDREN_HOST) {
        children_host(Path::new(&dir));
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "embed::a_run_that_handled_signals_leaves_the_hosts_other_children_alone",
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILDREN_HOST, dir.path())
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && said.contains("host: done"),
        "{said}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The host of [`a_run_that_handled_signals_leaves_the_hosts_other_children_alone`]: a
/// child of its own, a run that handles signals, then a long run beside a short one.
/// Each run's end ended every child of the process but its own commands: the host's
/// child (reaped too, so its status was lost) and the long run's command.
fn children_host(dir: &Path) {
    let mut own = std::process::Command::new("sleep")
        .arg("300")
        .spawn()
        .unwrap();
    let with_handlers = builder(dir).handle_signals(true).build().unwrap();
    let first = with_handlers
        .run_str(r#"proc("a", #{ cmd: ["true"], now: true });"#, [""; 0])
        .unwrap();
    assert_eq!(first.run.outcome, Outcome::Ok, "{first:?}");
    assert!(
        matches!(own.try_wait(), Ok(None)),
        "the host's child: {:?}",
        own.try_wait()
    );
    let rt = builder(dir).build().unwrap();
    let go = dir.join("go");
    let long = {
        let rt = rt.clone();
        let script = format!(
            r#"proc("long", #{{ cmd: ["sh", "-c", "echo $$ > {}; while [ ! -e {} ]; do sleep 0.05; done"], now: true }});"#,
            dir.join("pid").display(),
            go.display()
        );
        std::thread::spawn(move || rt.run_str(&script, [""; 0]).unwrap())
    };
    wait_for_line(&dir.join("pid"));
    let short = rt
        .run_str(r#"proc("a", #{ cmd: ["true"], now: true });"#, [""; 0])
        .unwrap();
    assert_eq!(short.run.outcome, Outcome::Ok, "{short:?}");
    std::fs::write(&go, "").unwrap();
    let long = long.join().unwrap();
    assert_eq!(long.run.outcome, Outcome::Ok, "{long:?}");
    assert!(
        matches!(own.try_wait(), Ok(None)),
        "the host's child: {:?}",
        own.try_wait()
    );
    own.kill().unwrap();
    own.wait().unwrap();
    println!("host: done");
}

/// Set in the environment of [`a_host_that_handles_sigterm_itself_keeps_handling_it`]'s
/// second self: the test then plays the host program.
const HANDLING_HOST: &str = "PRUN_TEST_HANDLING_HOST";

#[test]
fn a_host_that_handles_sigterm_itself_keeps_handling_it() {
    // A host with a SIGTERM handler of its own (a graceful shutdown) was killed by the
    // first SIGTERM after a run with `handle_signals(true)`: with no run listening, prun
    // gave the signal its default action, though the host's handler had taken it.
    if let Some(dir) = std::env::var_os(HANDLING_HOST) {
        handling_host(Path::new(&dir));
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "embed::a_host_that_handles_sigterm_itself_keeps_handling_it",
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(HANDLING_HOST, dir.path())
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && said.contains("host: second run Interrupted, done"),
        "{:?}\n{said}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The host of [`a_host_that_handles_sigterm_itself_keeps_handling_it`]: it handles
/// SIGTERM (a flag), runs a script with signals handled, gets a SIGTERM between runs,
/// then one during a second run, which takes it.
fn handling_host(dir: &Path) {
    use signal_hook::consts::SIGTERM;
    use std::sync::atomic::{AtomicBool, Ordering};
    let flag = Arc::new(AtomicBool::new(false));
    signal_hook::flag::register(SIGTERM, flag.clone()).unwrap();
    let rt = builder(dir).handle_signals(true).build().unwrap();
    let first = rt
        .run_str(r#"proc("a", #{ cmd: ["true"], now: true });"#, [""; 0])
        .unwrap();
    assert_eq!(first.run.outcome, Outcome::Ok, "{first:?}");
    signal_hook::low_level::raise(SIGTERM).unwrap();
    let deadline = Instant::now() + PATIENCE;
    while !flag.load(Ordering::SeqCst) {
        assert!(Instant::now() < deadline, "the host's handler never ran");
        std::thread::sleep(Duration::from_millis(10));
    }
    // prun's thread takes the signals in order, as they come: the first SIGTERM may
    // still reach the second run, if that thread is slow; else the second one does.
    let pidfile = dir.join("pid");
    let second = {
        let rt = rt.clone();
        let script = format!("{}run(\"s\");", sleeper("s", &pidfile));
        std::thread::spawn(move || rt.run_str(&script, [""; 0]).unwrap())
    };
    let deadline = Instant::now() + PATIENCE;
    while !second.is_finished() && std::fs::read_to_string(&pidfile).is_err() {
        assert!(Instant::now() < deadline, "the second run never started");
        std::thread::sleep(Duration::from_millis(10));
    }
    if !second.is_finished() {
        wait_for_line(&pidfile);
        signal_hook::low_level::raise(SIGTERM).unwrap();
    }
    let second = second.join().unwrap();
    println!("host: second run {:?}, done", second.run.outcome);
}

/// A runtime whose native `version()` returns what `value` holds at each call, and whose
/// pure `shout(s)` upper-cases; with a task DB in `dir`.
fn with_changing_native(dir: &Path, value: &Arc<Mutex<i64>>) -> Runtime {
    let v = value.clone();
    builder(dir)
        .task_db(dir.join("tasks.db"))
        .register_fn("version", move || -> i64 { *v.lock().unwrap() })
        .register_pure_fn("shout", |s: &str| s.to_uppercase())
        .build()
        .unwrap()
}

/// What a native function gives is in no fingerprint: a body that calls it (directly or
/// through a script function) saves no result, so a later run gives what the function
/// gives now, as a run without the task DB does. A function registered as pure keeps its
/// caller cached.
#[test]
fn a_body_calling_a_native_function_gives_what_it_gives_now() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.txt");
    std::fs::write(&input, "x").unwrap();
    let script = format!(
        r#"fn via() {{ version() * 10 }}
        proc("direct", #{{ inputs: ["{0}"] }}, || version());
        proc("indirect", #{{ inputs: ["{0}"] }}, || via());
        proc("pure", #{{ inputs: ["{0}"] }}, || shout("v"));
        proc("after", #{{ deps: ["direct"] }}, |ctx| ctx.results.direct + 100);
        run(["indirect", "pure", "after"]);"#,
        input.display()
    );
    let value = Arc::new(Mutex::new(1));
    let rt = with_changing_native(dir.path(), &value);
    let first = rt.run_str(&script, [""; 0]).unwrap();
    assert_eq!(first.proc("after").unwrap().result, serde_json::json!(101));
    *value.lock().unwrap() = 2;
    let second = rt.run_str(&script, [""; 0]).unwrap();
    let uncached = builder(dir.path())
        .register_fn("version", || -> i64 { 2 })
        .register_pure_fn("shout", |s: &str| s.to_uppercase())
        .build()
        .unwrap()
        .run_str(&script, [""; 0])
        .unwrap();
    for name in ["direct", "indirect", "after", "pure"] {
        let (cached, fresh) = (second.proc(name).unwrap(), uncached.proc(name).unwrap());
        assert_eq!(cached.result, fresh.result, "{name}: {second:?}");
    }
    assert_eq!(second.proc("direct").unwrap().result, serde_json::json!(2));
    assert_eq!(second.proc("direct").unwrap().state, State::Succeeded);
    assert_eq!(second.proc("pure").unwrap().state, State::UpToDate);
    assert_eq!(second.proc("pure").unwrap().result, "V");
}

/// An embedder's module has no text prun can read: once a script imported one, a closure
/// that calls into a module is never UP_TO_DATE (which module an alias names is not in
/// its text), unless the module was given as pure. A closure that calls into no module
/// stays cached.
#[test]
fn a_body_calling_into_an_embedders_module_gives_what_it_gives_now() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.txt");
    std::fs::write(&input, "x").unwrap();
    let script = format!(
        r#"import "acme" as acme;
        fn via() {{ acme::version() }}
        proc("direct", #{{ inputs: ["{0}"] }}, || acme::version());
        proc("indirect", #{{ inputs: ["{0}"] }}, || via());
        proc("plain", #{{ inputs: ["{0}"] }}, || "plain");
        run(["direct", "indirect", "plain"]);"#,
        input.display()
    );
    let value = Arc::new(Mutex::new(1_i64));
    let runtime = |pure: bool| {
        let v = value.clone();
        let mut acme = rhai::Module::new();
        acme.set_native_fn("version", move || Ok(*v.lock().unwrap()));
        let b = builder(dir.path()).task_db(dir.path().join(format!("tasks-{pure}.db")));
        if pure {
            b.pure_module("acme", acme)
        } else {
            b.module("acme", acme)
        }
        .build()
        .unwrap()
    };
    let (rt, pure) = (runtime(false), runtime(true));
    rt.run_str(&script, [""; 0]).unwrap();
    pure.run_str(&script, [""; 0]).unwrap();
    *value.lock().unwrap() = 2;
    let second = rt.run_str(&script, [""; 0]).unwrap();
    for name in ["direct", "indirect"] {
        let p = second.proc(name).unwrap();
        assert_eq!(
            (p.state, &p.result),
            (State::Succeeded, &serde_json::json!(2)),
            "{name}: {second:?}"
        );
    }
    assert_eq!(second.proc("plain").unwrap().state, State::UpToDate);
    let kept = pure.run_str(&script, [""; 0]).unwrap();
    assert_eq!(
        kept.proc("direct").unwrap().state,
        State::UpToDate,
        "{kept:?}"
    );
}

/// A runtime with a task DB in `dir` whose `host_v()` returns `v`.
fn with_host_value(dir: &Path, v: i64) -> RuntimeBuilder {
    builder(dir)
        .task_db(dir.join("tasks.db"))
        .register_fn("host_v", move || -> i64 { v })
}

/// The results of procs `names` in two reports, which must be equal.
fn same_results(a: &prun::Report, b: &prun::Report, names: &[&str]) {
    for n in names {
        let (x, y) = (a.proc(n), b.proc(n));
        assert_eq!(
            x.map(|p| &p.result),
            y.map(|p| &p.result),
            "{n}\n{a:?}\n{b:?}"
        );
    }
}

/// Params the host gives (through a native function at the top level, or the script's
/// options) count in fingerprints by value: a later run gives what a run without the
/// task DB gives.
#[test]
fn params_set_from_the_host_count_in_fingerprints() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.txt");
    std::fs::write(&input, "x").unwrap();
    let script = dir.path().join("s.rhai");
    let text = format!(
        r#"let o = args(#{{ mode: #{{ "default": "a" }} }});
        set_params(#{{ v: host_v(), m: o.mode }});
        proc("p", #{{ inputs: ["{0}"] }}, |ctx| `${{ctx.params.v}}/${{ctx.params.m}}`);
        proc("q", #{{ deps: ["p"] }}, |ctx| ctx.results.p + "!");
        run("q");"#,
        input.display()
    );
    std::fs::write(&script, text).unwrap();
    let run = |b: RuntimeBuilder, words: &[&str]| {
        b.build()
            .unwrap()
            .run_file(&script, words.to_vec())
            .unwrap()
    };
    run(with_host_value(dir.path(), 1), &[]);
    for words in [&[][..], &["--mode", "b"]] {
        let cached = run(with_host_value(dir.path(), 2), words);
        let fresh = run(with_host_value(dir.path(), 2).task_db(TaskDb::Off), words);
        same_results(&cached, &fresh, &["p", "q"]);
    }
}

/// What a report says of an UP_TO_DATE proc is what its run gave, to the JSON: floats,
/// extreme integers, characters (strings), maps, `()`.
#[test]
fn the_report_of_an_up_to_date_proc_holds_what_its_run_gave() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.txt");
    std::fs::write(&input, "x").unwrap();
    let script = format!(
        r#"proc("f", #{{ inputs: ["{0}"] }}, || [1.0, -0.0, 0.1 + 0.2, 9223372036854775807,
            -9223372036854775807, "é\u0000", 'c', #{{ b: 1, a: [()], "": "\n" }}, 1e300, 5e-324]);
        proc("g", #{{ deps: ["f"] }}, |ctx| `${{ctx.results.f}}`);
        proc("h", #{{ inputs: ["{0}"] }}, || ());
        run(["g", "h"]);"#,
        input.display()
    );
    let rt = with_host_value(dir.path(), 1).build().unwrap();
    let ran = rt.run_str(&script, [""; 0]).unwrap();
    let cached = rt.run_str(&script, [""; 0]).unwrap();
    assert!(
        cached.procs.iter().all(|p| p.state == State::UpToDate),
        "{cached:?}"
    );
    let json = |r: &prun::Report| {
        serde_json::to_string(&r.procs.iter().map(|p| &p.result).collect::<Vec<_>>()).unwrap()
    };
    assert_eq!(json(&ran), json(&cached));
}

/// Two runs of one runtime at once, sharing its task DB, each keep their own results,
/// and later runs take the right ones.
#[test]
fn two_runs_of_one_runtime_sharing_a_task_db_keep_their_own_results() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.txt");
    std::fs::write(&input, "x").unwrap();
    let rt = with_host_value(dir.path(), 1).build().unwrap();
    let script = |tag: &str| {
        format!(
            r#"proc("p", #{{ inputs: ["{0}"] }}, || "{tag}");
            proc("q", #{{ deps: ["p"] }}, |ctx| ctx.results.p + "!");
            run("q");"#,
            input.display()
        )
    };
    let other = rt.clone();
    let a = script("A");
    let t = std::thread::spawn(move || other.run_str(&a, [""; 0]).unwrap());
    let b = rt.run_str(&script("B"), [""; 0]).unwrap();
    assert_eq!(t.join().unwrap().proc("q").unwrap().result, "A!");
    assert_eq!(b.proc("q").unwrap().result, "B!");
    for tag in ["A", "B", "A"] {
        let again = rt.run_str(&script(tag), [""; 0]).unwrap();
        assert_eq!(
            again.proc("q").unwrap().result,
            format!("{tag}!"),
            "{again:?}"
        );
    }
}

/// A watch run through the library: the cycle that ran a dependency again hands its
/// dependents `deps_changed` true, and the rows it saved are what a later run takes.
#[test]
fn a_watch_through_the_library_saves_what_a_later_run_takes() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a.txt"), dir.path().join("b.txt"));
    std::fs::write(&a, "1").unwrap();
    std::fs::write(&b, "x").unwrap();
    let cancel = Cancel::new();
    let stop = cancel.clone();
    let edit = a.clone();
    let cycles = Arc::new(Mutex::new(0));
    let rt = with_host_value(dir.path(), 5)
        .on_event(move |e| {
            if let Event::Log { text, .. } = e
                && text.starts_with("prun: watch: watching")
            {
                let mut n = cycles.lock().unwrap();
                *n += 1;
                if *n == 1 {
                    std::fs::write(&edit, "22").unwrap();
                } else {
                    stop.cancel();
                }
            }
        })
        .build()
        .unwrap();
    let body = format!(
        r#"proc("a", #{{ inputs: [{a:?}] }}, |ctx| read_file({a:?}));
        proc("b", #{{ deps: ["a"], inputs: [{b:?}] }}, |ctx| `${{ctx.results.a}}+${{read_file({b:?})}}/${{ctx.deps_changed}}`);
        proc("c", #{{ deps: ["b"] }}, |ctx| ctx.results.b + "/" + host_v());
        run("c");"#
    );
    let watch = format!("set_options(#{{ watch: true }});\n{body}\nwatch();");
    let watched = report_within_patience(rt, &watch, cancel);
    assert_eq!(
        watched.proc("c").unwrap().result,
        "22+x/true/5",
        "{watched:?}"
    );
    let later = with_host_value(dir.path(), 5)
        .build()
        .unwrap()
        .run_str(&body, [""; 0])
        .unwrap();
    assert_eq!(later.proc("a").unwrap().state, State::UpToDate, "{later:?}");
    assert_eq!(later.proc("c").unwrap().result, "22+x/false/5", "{later:?}");
}

/// The engine's limits bound what a closure may do: a result made under a higher
/// `max_operations` is not what running the proc under a lower one gives (it fails), and
/// two runtimes may share a task DB.
#[test]
fn the_engine_s_limits_count_in_a_closure_s_fingerprint() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.txt");
    std::fs::write(&input, "x").unwrap();
    let script = format!(
        r#"proc("p", #{{ inputs: ["{0}"] }}, || {{ let n = 0; for i in 0..2000 {{ n += i; }} n }});
        run("p");"#,
        input.display()
    );
    let run = |ops: u64, db: bool| {
        let b = with_host_value(dir.path(), 1).max_operations(ops);
        let b = if db { b } else { b.task_db(TaskDb::Off) };
        b.build().unwrap().run_str(&script, [""; 0]).unwrap()
    };
    assert_eq!(run(1_000_000, true).procs[0].state, State::Succeeded);
    let (cached, fresh) = (run(1000, true), run(1000, false));
    assert_eq!(fresh.procs[0].state, State::Failed, "{fresh:?}");
    assert_eq!(cached.procs[0].state, State::Failed, "{cached:?}");
}

/// A runtime's `state_dir` is where each script's state directory is made: its journal
/// of process groups, and its task DB and logs when the runtime names no other place.
#[test]
fn a_runtimes_state_dir_holds_its_scripts_state() {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("job.rhai");
    std::fs::write(&script, r#"proc("a", #{ cmd: ["echo", "hi"] }); run("a");"#).unwrap();
    let report = Runtime::builder()
        .state_dir(dir.path().join("state"))
        .build()
        .unwrap()
        .run_file(&script, [""; 0])
        .unwrap();
    assert_eq!(report.run.outcome, Outcome::Ok, "{report:?}");
    let states: Vec<_> = std::fs::read_dir(dir.path().join("state"))
        .expect("the state root, made")
        .flatten()
        .map(|e| e.path())
        .collect();
    assert_eq!(states.len(), 1, "{states:?}");
    let state = &states[0];
    let name = state.file_name().unwrap().to_string_lossy().into_owned();
    assert!(name.starts_with("job-"), "{name}");
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(state).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o700, "{state:?}");
    for inside in ["groups", "tasks.db"] {
        assert!(state.join(inside).exists(), "{inside} in {state:?}");
    }
    let log = report.proc("a").unwrap().log.clone().unwrap();
    assert!(log.starts_with(state.join("logs")), "{log:?}");
}

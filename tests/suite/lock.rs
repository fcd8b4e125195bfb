//! `--lock` and `--lock=wait`: one run of a script at a time.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::Test;

const SCRIPT: &str = r#"
proc("hold", #{ shell: "echo $$ > holding; while [ ! -e release ]; do sleep 0.02; done" });
run("hold");
"#;

fn wait_for_file(path: &std::path::Path) {
    let until = Instant::now() + Duration::from_secs(20);
    while !path.exists() {
        assert!(Instant::now() < until, "{} never appeared", path.display());
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// A directory with [`SCRIPT`] as `main.rhai`, written by a first run (which needs no lock
/// and finishes at once), and the files of that run removed. The run's output owns the
/// temporary directory: keep it to the end.
fn written() -> (crate::support::Output, std::path::PathBuf) {
    let t = Test::new().script(SCRIPT);
    let dir = t.dir().to_path_buf();
    std::fs::write(dir.join("release"), "").unwrap();
    let setup = t.run();
    setup.ok();
    std::fs::remove_file(dir.join("release")).unwrap();
    let _ = std::fs::remove_file(dir.join("holding"));
    (setup, dir)
}

/// `prun ARGS` in `dir`, with its state there, its stdin null and its output piped.
fn prun_in(dir: &std::path::Path, args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_prun"));
    c.args(args)
        .current_dir(dir)
        .env("XDG_STATE_HOME", dir.join("state"))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    c
}

#[test]
fn a_second_run_is_refused_with_75_then_waits_with_lock_wait() {
    let (_setup, dir) = written();
    let prun = |args: &[&str]| prun_in(&dir, args);
    let first = prun(&["main.rhai", "--lock"]).spawn().expect("first run");
    wait_for_file(&dir.join("holding"));

    let refused = prun(&["main.rhai", "--lock"]).output().expect("second run");
    assert_eq!(refused.status.code(), Some(75));
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(
        err.contains("holds the lock") && err.contains("pid "),
        "{err}"
    );

    let mut waiting = prun(&["main.rhai", "--lock=wait"])
        .spawn()
        .expect("waiting run");
    // Release the first run only once the second says it waits: before that, it may not
    // have tried the lock yet.
    let stderr = std::io::BufReader::new(waiting.stderr.take().expect("stderr"));
    let (tx, rx) = std::sync::mpsc::channel();
    let reader = std::thread::spawn(move || {
        let mut all = String::new();
        for line in std::io::BufRead::lines(stderr).map_while(Result::ok) {
            if line.contains("waiting for another run") {
                let _ = tx.send(());
            }
            all.push_str(&line);
            all.push('\n');
        }
        all
    });
    let said_it_waits = rx.recv_timeout(Duration::from_secs(20)).is_ok();
    std::fs::write(dir.join("release"), "").unwrap();
    assert!(first.wait_with_output().unwrap().status.success());
    let status = waiting.wait().unwrap();
    let err = reader.join().unwrap();
    assert!(said_it_waits, "the second run never said it waits:\n{err}");
    assert!(status.success(), "{err}");
}

/// Every path to the script's file is one script to `--lock`: `./main.rhai`, its absolute
/// path and a symbolic link share its state directory, and a hard link (which has its own
/// state directory) shares the file's lock. A run of another file is not held back.
#[test]
fn the_lock_holds_across_every_path_to_the_same_file() {
    let (_setup, dir) = written();
    std::fs::hard_link(dir.join("main.rhai"), dir.join("linked.rhai")).unwrap();
    std::os::unix::fs::symlink("main.rhai", dir.join("symlink.rhai")).unwrap();
    std::fs::write(
        dir.join("other.rhai"),
        "proc(\"a\", #{ cmd: [\"true\"] });\nrun(\"a\");\n",
    )
    .unwrap();
    let first = prun_in(&dir, &["main.rhai", "--lock"])
        .spawn()
        .expect("first run");
    wait_for_file(&dir.join("holding"));
    let absolute = std::fs::canonicalize(dir.join("main.rhai"))
        .unwrap()
        .display()
        .to_string();
    // Dry runs: one the lock let through ends at once instead of waiting for `release`.
    let mut refused = Vec::new();
    for path in ["./main.rhai", &absolute, "symlink.rhai", "linked.rhai"] {
        let out = prun_in(&dir, &[path, "--lock", "--dry-run"])
            .output()
            .expect("second run");
        refused.push((path, out));
    }
    let other = prun_in(&dir, &["other.rhai", "--lock"])
        .output()
        .expect("other run");
    std::fs::write(dir.join("release"), "").unwrap();
    assert!(first.wait_with_output().unwrap().status.success());
    for (path, out) in refused {
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(75), "{path}: {err}");
        assert!(
            err.contains("holds the lock") && err.contains(&format!("running {absolute})")),
            "{path}: {err}"
        );
    }
    let err = String::from_utf8_lossy(&other.stderr);
    assert!(other.status.success(), "{err}");
}

/// The holder's script path, which the refusal and the wait quote from the lock file, has
/// its control characters written out: a hard link another user named (or a directory
/// on its path) reaches no terminal as an escape sequence.
#[test]
fn the_holder_s_path_in_a_lock_message_reaches_no_terminal_as_an_escape_sequence() {
    let (_setup, dir) = written();
    let linked = "m\u{1b}]0;owned\u{7}.rhai";
    std::fs::hard_link(dir.join("main.rhai"), dir.join(linked)).unwrap();
    let first = prun_in(&dir, &[linked, "--lock"])
        .spawn()
        .expect("first run");
    wait_for_file(&dir.join("holding"));
    let err = refused_while_held(&dir, first, &["main.rhai", "--lock", "--dry-run"]);
    assert!(!err.contains('\u{1b}') && !err.contains('\u{7}'), "{err:?}");
    assert!(err.contains("m\\e]0;owned\\x07.rhai)"), "{err}");
}

/// The holder could not write its pid into the lock file (its disk is full): the message
/// says the pid is unknown (it read `holds the lock PATH ()`).
#[test]
fn a_lock_whose_holder_wrote_no_pid_says_so() {
    let (_setup, dir) = written();
    let first = prun_in(&dir, &["main.rhai", "--lock"])
        .spawn()
        .expect("first run");
    wait_for_file(&dir.join("holding"));
    let mut locks: Vec<std::path::PathBuf> = Vec::new();
    let mut dirs = vec![dir.join("state")];
    while let Some(d) = dirs.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                dirs.push(p);
            } else if p.file_name().is_some_and(|n| n == "run.lock") {
                locks.push(p);
            }
        }
    }
    assert_eq!(locks.len(), 1, "{locks:?}");
    std::fs::write(&locks[0], "").unwrap();
    let err = refused_while_held(&dir, first, &["main.rhai", "--lock"]);
    assert!(
        err.contains(&format!(
            "holds the lock {} (pid unknown)",
            locks[0].display()
        )),
        "{err}"
    );
}

#[test]
fn the_lock_of_a_killed_run_is_taken_over() {
    let (_setup, dir) = written();
    let run = |args: &[&str]| {
        prun_in(&dir, args)
            .stdout(Stdio::null())
            .spawn()
            .expect("run prun")
    };
    let mut first = run(&["main.rhai", "--lock"]);
    let holding = dir.join("holding");
    wait_for_file(&holding);
    let orphan: u32 = read_pid(&holding);
    // The job may write its pid before prun has recorded its group.
    crate::support::wait_recorded(&dir.join("state"), first.id(), orphan);
    first.kill().unwrap();
    first.wait().unwrap();
    std::fs::remove_file(&holding).unwrap();
    // The killed run's job is still running in its own group; the next run ends it before
    // its own job starts.
    let next = run(&["main.rhai", "--lock"]);
    wait_for_file(&holding);
    let ended = !crate::support::alive(orphan);
    std::fs::write(dir.join("release"), "").unwrap();
    let next = next.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&next.stderr);
    crate::support::assert_gone(orphan, "the killed run's job", &err);
    assert!(
        ended,
        "the next run started while the killed run's job ran\n{err}"
    );
    assert!(next.status.success(), "{err}");
}

/// The pid a job wrote into `path` (it may still be writing it).
fn read_pid(path: &std::path::Path) -> u32 {
    let until = Instant::now() + Duration::from_secs(20);
    loop {
        if let Ok(pid) = std::fs::read_to_string(path)
            .unwrap_or_default()
            .trim()
            .parse()
        {
            return pid;
        }
        assert!(Instant::now() < until, "no pid in {}", path.display());
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Whether process `pid` waits for a `flock` (a `->` line of `/proc/locks`).
fn waits_for_a_lock(pid: u32) -> bool {
    std::fs::read_to_string("/proc/locks")
        .unwrap_or_default()
        .lines()
        .any(|l| {
            let mut words = l.split_whitespace().skip(1);
            words.next() == Some("->") && words.nth(3) == Some(pid.to_string().as_str())
        })
}

#[test]
fn a_quiet_run_that_waits_for_the_lock_prints_nothing_when_it_succeeds() {
    // `--lock=wait -q` said "prun: waiting for another run ..." on stderr: cron mailed it
    // although the run went well.
    let (_setup, dir) = written();
    let prun = |args: &[&str]| prun_in(&dir, args);
    let first = prun(&["main.rhai", "--lock", "-q"])
        .spawn()
        .expect("first run");
    wait_for_file(&dir.join("holding"));
    let waiting = prun(&["main.rhai", "--lock=wait", "-q"])
        .spawn()
        .expect("waiting run");
    let until = Instant::now() + Duration::from_secs(20);
    while !waits_for_a_lock(waiting.id()) {
        assert!(
            Instant::now() < until,
            "the second run never waited for the lock"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    std::fs::write(dir.join("release"), "").unwrap();
    assert!(first.wait_with_output().unwrap().status.success());
    let out = waiting.wait_with_output().unwrap();
    assert!(out.status.success());
    assert_eq!(
        (
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
        ("".into(), "".into())
    );
}

/// A script whose job, for the run given `R=x`, writes `holding<x>` and holds until
/// `release<x>` exists; one that finds another run's job inside (`inside` made) writes
/// `overlapped`.
const TAGGED: &str = r#"
proc("hold", #{ shell: "mkdir inside || touch overlapped; echo $$ > holding$R; while [ ! -e release$R ]; do sleep 0.02; done; rmdir inside" });
run("hold");
"#;

/// `prun ARGS` in `dir` as the run tagged `tag` (see [`TAGGED`]).
fn tagged(dir: &std::path::Path, tag: &str, args: &[&str]) -> Command {
    let mut c = prun_in(dir, args);
    c.env("R", tag);
    c
}

/// Waits until process `pid` waits for a `flock`.
fn wait_until_waiting(pid: u32) {
    let until = Instant::now() + Duration::from_secs(20);
    while !waits_for_a_lock(pid) {
        assert!(Instant::now() < until, "{pid} never waited for the lock");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Four runs of one file through three paths (`main.rhai` and its hard links, each with
/// its own state directory: only the per-file lock holds them apart). While `a` holds the
/// lock, `b` and `d` wait on its file; `a` removes it as it releases it, so the one of
/// them that gets the lock next holds it on a removed file, and must take it again on the
/// file the path names (else `c`, starting then, would make a new file, lock it and run
/// beside it). No two jobs overlap, `c` is refused, and no lock file is left.
#[test]
fn runs_waiting_on_a_removed_lock_file_never_overlap_and_no_lock_file_is_left() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    std::fs::write(dir.join("main.rhai"), TAGGED).unwrap();
    std::fs::hard_link(dir.join("main.rhai"), dir.join("linked.rhai")).unwrap();
    std::fs::hard_link(dir.join("main.rhai"), dir.join("again.rhai")).unwrap();
    let a = tagged(dir, "a", &["main.rhai", "--lock"])
        .spawn()
        .expect("a");
    wait_for_file(&dir.join("holdinga"));
    let b = tagged(dir, "b", &["linked.rhai", "--lock=wait", "-q"])
        .spawn()
        .expect("b");
    let d = tagged(dir, "d", &["main.rhai", "--lock=wait", "-q"])
        .spawn()
        .expect("d");
    wait_until_waiting(b.id());
    wait_until_waiting(d.id());
    std::fs::write(dir.join("releasea"), "").unwrap();
    assert!(a.wait_with_output().unwrap().status.success());
    let until = Instant::now() + Duration::from_secs(20);
    let first = loop {
        if let Some(tag) = ["b", "d"]
            .into_iter()
            .find(|t| dir.join(format!("holding{t}")).exists())
        {
            break tag;
        }
        assert!(Instant::now() < until, "neither b nor d got the lock");
        std::thread::sleep(Duration::from_millis(10));
    };
    // `c`'s job, if the lock let it through, ends at once rather than hang the test.
    std::fs::write(dir.join("releasec"), "").unwrap();
    let c = tagged(dir, "c", &["again.rhai", "--lock"])
        .output()
        .expect("c");
    let err = String::from_utf8_lossy(&c.stderr);
    assert_eq!(c.status.code(), Some(75), "c ran beside {first}: {err}");
    assert!(
        err.contains("holds the lock") && err.contains("file-locks"),
        "{err}"
    );
    let second = if first == "b" { "d" } else { "b" };
    for tag in [first, second] {
        wait_for_file(&dir.join(format!("holding{tag}")));
        std::fs::write(dir.join(format!("release{tag}")), "").unwrap();
    }
    for (tag, run) in [("b", b), ("d", d)] {
        let out = run.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{tag}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    assert!(!dir.join("overlapped").exists(), "two jobs ran at once");
    let left: Vec<_> = std::fs::read_dir(dir.join("state/prun/file-locks"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    assert!(left.is_empty(), "lock files left: {left:?}");
}

/// Runs prun with `args` while `first` holds the lock, then lets `first` end (it must
/// succeed); the second run must be refused (exit 75): its stderr.
fn refused_while_held(dir: &std::path::Path, first: std::process::Child, args: &[&str]) -> String {
    let refused = prun_in(dir, args).output().expect("second run");
    std::fs::write(dir.join("release"), "").unwrap();
    assert!(first.wait_with_output().unwrap().status.success());
    let err = String::from_utf8_lossy(&refused.stderr).into_owned();
    assert_eq!(refused.status.code(), Some(75), "{err}");
    err
}

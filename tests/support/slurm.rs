//! A single-node Slurm for the `slurm` executor's tests: the one `.ci/run` starts, or
//! one started here with the same script (`.ci/slurm-up`) when none answers. It is left
//! running afterwards, as a system service would be (`.ci/slurm-down` stops it).

use std::process::Command;
use std::sync::{Mutex, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::{Duration, Instant};

/// Slurm starts no job on a node while a job of it is COMPLETING, and a job of `srun
/// --uid=USER` that has to wait for its node fails when it gets it (srun, no longer
/// root, cannot read the controller's answer: "Job credential revoked"). Every test
/// holds this for reading while its jobs run, and one that runs a job as another user
/// for writing (see [`alone`]).
static NODE: RwLock<()> = RwLock::new(());

/// Makes sure Slurm answers, starting it once if needed. Keep the guard while the
/// test's jobs run (see [`alone`]).
pub(crate) fn up() -> RwLockReadGuard<'static, ()> {
    start();
    NODE.read().unwrap_or_else(|e| e.into_inner())
}

/// [`up`] for a test whose job runs as another user: no other test of this process
/// runs a job meanwhile, and the node has no COMPLETING job when it returns (waited for,
/// 30 s at most, since the tests of another process may end theirs).
pub(crate) fn alone() -> RwLockWriteGuard<'static, ()> {
    start();
    let guard = NODE.write().unwrap_or_else(|e| e.into_inner());
    let t = Instant::now();
    while t.elapsed() < Duration::from_secs(30) {
        let out = Command::new("squeue")
            .args(["--noheader", "--states=CG", "--format=%i"])
            .output()
            .expect("squeue");
        if out.status.success() && out.stdout.is_empty() {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    guard
}

/// Starts Slurm once, unless it answers.
fn start() {
    static STARTED: Mutex<bool> = Mutex::new(false);
    let mut started = STARTED.lock().unwrap_or_else(|e| e.into_inner());
    if *started {
        return;
    }
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/.ci/slurm-up");
    let out = Command::new("sh")
        .arg(script)
        .output()
        .unwrap_or_else(|e| panic!("{script}: {e}"));
    assert!(
        out.status.success(),
        "could not start Slurm with {script} (install slurm-wlm and munge; .ci/run does):\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    *started = true;
}

/// A proc name of this test process's own: `name` and the pid. Test processes that run
/// at once share the queue, and a test that looks there for its proc's jobs must not see
/// those of another process's proc of the same name.
pub(crate) fn own(name: &str) -> String {
    format!("{name}{}", std::process::id())
}

/// The jobs of the proc `proc` in the queue (pending or running): prun names them
/// `prun.PROC.…`.
pub(crate) fn queued_jobs_of(proc: &str) -> Vec<String> {
    let out = Command::new("squeue")
        .args(["--noheader", "--format=%j"])
        .output()
        .expect("squeue");
    let prefix = format!("prun.{proc}.");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| l.trim().to_string())
        .filter(|j| j.starts_with(&prefix))
        .collect()
}

/// Waits (bounded, 20 s) until the proc `proc` has no job in the queue; returns those
/// still there, after cancelling them (a failed test must not leave them running).
pub(crate) fn unqueued(proc: &str) -> Vec<String> {
    let t = Instant::now();
    loop {
        let left = queued_jobs_of(proc);
        if left.is_empty() {
            return left;
        }
        if t.elapsed() > Duration::from_secs(20) {
            for job in &left {
                let _ = Command::new("scancel")
                    .arg(format!("--name={job}"))
                    .status();
            }
            return left;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

//! A single-node Slurm for the `slurm` executor's tests: the one `.ci/run` starts, or
//! one started here with the same script (`.ci/slurm-up`) when none answers. It is left
//! running afterwards, as a system service would be (`.ci/slurm-down` stops it).

use std::process::Command;
use std::sync::Mutex;

/// Makes sure Slurm answers, starting it once if needed.
pub(crate) fn up() {
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

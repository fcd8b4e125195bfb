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

/// The names of the jobs in the queue (pending or running).
pub(crate) fn queued_jobs() -> Vec<String> {
    let out = Command::new("squeue")
        .args(["--noheader", "--format=%j"])
        .output()
        .expect("squeue");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| l.trim().to_string())
        .collect()
}

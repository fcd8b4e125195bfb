//! What the tests that start a real PostgreSQL server share.

use std::process::Command;
use std::sync::{Mutex, MutexGuard};

/// The tests that start a server run one at a time, so that each can check that its own
/// run left no server and no server directory behind.
pub(crate) fn one_server_at_a_time() -> MutexGuard<'static, ()> {
    static SERVERS: Mutex<()> = Mutex::new(());
    SERVERS.lock().unwrap_or_else(|e| e.into_inner())
}

/// Whether PostgreSQL's initdb is on PATH or in Debian's /usr/lib/postgresql/*/bin.
pub(crate) fn installed() -> bool {
    Command::new("sh")
        .args([
            "-c",
            "command -v initdb || ls /usr/lib/postgresql/*/bin/initdb",
        ])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Says loudly that a test is skipped because `missing`, unless `PRUN_E2E=require` (CI),
/// where a missing tool is a failure. (Such tests are normally marked ignored already,
/// from what `build.rs` found; this covers a tool removed since the build.)
pub(crate) fn skip(missing: &str, install: &str) {
    assert_ne!(
        std::env::var("PRUN_E2E").as_deref(),
        Ok("require"),
        "{missing} (PRUN_E2E=require)"
    );
    eprintln!("SKIPPED: {missing}: {install}");
}

/// What is still there of the server whose directory was `dir` (in a `/tmp/prun-*` that
/// `pg::start` made with `tempdir("/tmp")`): its server processes (a word of their command
/// line in that temporary directory) and the temporary directory. Other servers (another
/// test run's) do not count.
pub(crate) fn leftovers_of(dir: &str) -> Vec<String> {
    assert!(
        dir.starts_with("/tmp/prun-"),
        "not a server directory: {dir:?}"
    );
    let top = dir.split('/').take(3).collect::<Vec<_>>().join("/");
    let ps = Command::new("ps")
        .args(["-eo", "stat,args"])
        .output()
        .expect("ps");
    let inside = format!("{top}/");
    let mut left: Vec<String> = String::from_utf8_lossy(&ps.stdout)
        .lines()
        .filter(|l| !l.starts_with('Z') && l.split_whitespace().any(|w| w.starts_with(&inside)))
        .map(str::to_string)
        .collect();
    if std::path::Path::new(&top).exists() {
        left.push(top);
    }
    left
}

/// The podman settings these machines need (no CAP_SYS_RESOURCE, so ulimits under the
/// hard limits; cgroup v1 hybrid mode, which crun refuses, so runc), for CONTAINERS_CONF.
pub(crate) const CONTAINERS_CONF: &str = "[containers]\n\
default_ulimits = [\"nofile=1024:1024\", \"nproc=4096:4096\"]\n\
[engine]\n\
runtime = \"runc\"\n";

/// Whether podman and runc are installed; says why not.
pub(crate) fn podman_installed() -> bool {
    let have = |tool: &str| {
        Command::new("sh")
            .args(["-c", &format!("command -v {tool}")])
            .output()
            .is_ok_and(|o| o.status.success())
    };
    match (have("podman"), have("runc")) {
        (true, true) => true,
        (false, _) => {
            skip("podman is not installed", "apt-get install podman runc");
            false
        }
        (_, false) => {
            skip("runc is not installed", "apt-get install runc");
            false
        }
    }
}

/// The containers (of any state) whose name is `name`.
pub(crate) fn containers_named(name: &str) -> String {
    let out = Command::new("podman")
        .args(["ps", "--all", "--format", "{{.Names}}", "--filter"])
        .arg(format!("name=^{name}$"))
        .output()
        .expect("podman ps");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

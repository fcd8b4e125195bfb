//! Every call into the operating system's process-group and signal interfaces.
//!
//! Children run in their own process group (leader = the child, `pgid == pid`), so a
//! signal to the group reaches grandchildren too: `sh -c 'sleep 300 & sleep 300'` dies
//! whole. Live groups are kept in a registry so that a second Ctrl-C can kill them all at
//! once, wherever their job is.

use std::sync::Mutex;

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;

static GROUPS: Mutex<Vec<i32>> = Mutex::new(Vec::new());

/// Records a live process group.
pub fn register(pgid: i32) {
    GROUPS.lock().expect("group registry").push(pgid);
}

/// Forgets a process group whose members are all gone.
pub fn unregister(pgid: i32) {
    GROUPS
        .lock()
        .expect("group registry")
        .retain(|&g| g != pgid);
}

/// Sends SIGTERM to a group. A group that no longer exists is not an error.
pub fn term_group(pgid: i32) {
    let _ = killpg(Pid::from_raw(pgid), Signal::SIGTERM);
}

/// Sends SIGKILL to a group. A group that no longer exists is not an error.
pub fn kill_group(pgid: i32) {
    let _ = killpg(Pid::from_raw(pgid), Signal::SIGKILL);
}

/// True while a process of the group is alive. Zombies do not count: an orphaned
/// grandchild that died stays a zombie until init reaps it, which in a container can take
/// seconds, and waiting for that would only delay the run.
pub fn group_alive(pgid: i32) -> bool {
    if killpg(Pid::from_raw(pgid), None).is_err() {
        return false;
    }
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return true;
    };
    entries.flatten().any(|e| {
        let name = e.file_name();
        let Some(pid) = name
            .to_str()
            .filter(|n| n.bytes().all(|b| b.is_ascii_digit()))
        else {
            return false;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            return false;
        };
        // Fields after the parenthesised command name: state, ppid, pgrp, ...
        let Some(rest) = stat.rfind(')').map(|i| &stat[i + 1..]) else {
            return false;
        };
        let mut fields = rest.split_whitespace();
        let state = fields.next();
        let pgrp = fields.nth(1).and_then(|p| p.parse::<i32>().ok());
        pgrp == Some(pgid) && state != Some("Z") && state != Some("X")
    })
}

/// SIGKILL to every registered group: the last resort of a second Ctrl-C.
pub fn kill_all_groups() {
    let groups: Vec<i32> = GROUPS.lock().expect("group registry").clone();
    for g in groups {
        kill_group(g);
    }
}

/// A pipe whose read end is non-blocking (for the async runtime) and whose write end is
/// an ordinary blocking descriptor for a child; both are closed on exec.
pub fn output_pipe() -> std::io::Result<(std::os::fd::OwnedFd, std::os::fd::OwnedFd)> {
    use nix::fcntl::{FcntlArg, OFlag, fcntl};
    let (r, w) = nix::unistd::pipe2(OFlag::O_CLOEXEC)?;
    fcntl(&r, FcntlArg::F_SETFL(OFlag::O_NONBLOCK))?;
    // A larger pipe lets one splice move up to 1 MiB instead of 64 KiB; where the system
    // refuses (a lower pipe-max-size), the default size still works.
    let _ = fcntl(&r, FcntlArg::F_SETPIPE_SZ(1 << 20));
    Ok((r, w))
}

/// Moves up to `len` bytes from a pipe into a file without copying them through prun
/// (`splice(2)`); 0 means end of file. The pipe's read end must be non-blocking.
pub fn splice_to_file(
    pipe: std::os::fd::BorrowedFd<'_>,
    file: &std::fs::File,
    len: usize,
) -> std::io::Result<usize> {
    use nix::fcntl::{SpliceFFlags, splice};
    let flags = SpliceFFlags::SPLICE_F_NONBLOCK | SpliceFFlags::SPLICE_F_MOVE;
    splice(pipe, None, file, None, len, flags).map_err(std::io::Error::from)
}

/// The signal number that ended a process, if a signal did.
pub fn exit_signal(status: &std::process::ExitStatus) -> Option<i32> {
    use std::os::unix::process::ExitStatusExt;
    status.signal()
}

/// The name of a signal number (`SIGTERM`), for messages.
pub fn signal_name(sig: i32) -> String {
    Signal::try_from(sig).map_or_else(|_| format!("signal {sig}"), |s| s.as_str().to_string())
}

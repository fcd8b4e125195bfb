//! Every call into the operating system's process-group and signal interfaces.
//!
//! Children run in their own process group (leader = the child, `pgid == pid`), so a
//! signal to the group reaches grandchildren too: `sh -c 'sleep 300 & sleep 300'` dies
//! whole. Each run's launcher keeps its live groups, so that a second Ctrl-C can kill them
//! all at once, wherever their job is (see `Launcher::kill_all`).

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;

/// Records a live process group, running `command`, in the runs' journals (see
/// [`super::crashed`]). `since` is [`boot_ticks`] read before the group's leader was
/// started; `grace` is its time between SIGTERM and SIGKILL.
pub(crate) fn register(
    pgid: i32,
    since: Option<u64>,
    command: &dyn std::fmt::Display,
    grace: std::time::Duration,
) {
    super::crashed::started(pgid, since, command, grace);
}

/// The time since boot (`CLOCK_BOOTTIME`, read without a system call) in clock ticks: the
/// clock and the unit of a process's start time in `/proc/<pid>/stat` (field 22). A
/// process started between two readings has a start time between them.
pub(crate) fn boot_ticks() -> Option<u64> {
    use nix::time::{ClockId, clock_gettime};
    static NS_PER_TICK: std::sync::OnceLock<Option<u128>> = std::sync::OnceLock::new();
    let per_tick = (*NS_PER_TICK.get_or_init(|| {
        use nix::unistd::{SysconfVar, sysconf};
        let hz = sysconf(SysconfVar::CLK_TCK).ok().flatten()?;
        let hz = u128::try_from(hz).ok().filter(|&hz| hz > 0)?;
        Some(1_000_000_000 / hz)
    }))?;
    let now = std::time::Duration::from(clock_gettime(ClockId::CLOCK_BOOTTIME).ok()?);
    u64::try_from(now.as_nanos() / per_tick).ok()
}

/// Records that a process group's members are all gone.
pub(crate) fn unregister(pgid: i32) {
    super::crashed::ended(pgid);
}

/// Sends SIGTERM to a group, then SIGCONT: a stopped process (SIGSTOP, or Ctrl-Z's
/// SIGTSTP) acts on SIGTERM only once continued, and would otherwise be killed at the end
/// of the grace without the chance to clean up that SIGTERM gives (systemd does the same).
/// A group that no longer exists is not an error.
pub(crate) fn term_group(pgid: i32) {
    let _ = killpg(Pid::from_raw(pgid), Signal::SIGTERM);
    let _ = killpg(Pid::from_raw(pgid), Signal::SIGCONT);
}

/// Sends SIGKILL to a group. A group that no longer exists is not an error.
pub(crate) fn kill_group(pgid: i32) {
    let _ = killpg(Pid::from_raw(pgid), Signal::SIGKILL);
}

/// Sends SIGTERM, then SIGCONT (as [`term_group`] does), to one process. One that no
/// longer exists is not an error.
pub(crate) fn term_process(pid: i32) {
    let _ = nix::sys::signal::kill(Pid::from_raw(pid), Signal::SIGTERM);
    let _ = nix::sys::signal::kill(Pid::from_raw(pid), Signal::SIGCONT);
}

/// Sends SIGKILL to one process. One that no longer exists is not an error.
pub(crate) fn kill_process(pid: i32) {
    let _ = nix::sys::signal::kill(Pid::from_raw(pid), Signal::SIGKILL);
}

/// Whether [`adopt_orphans`] made this process the reaper of its orphans.
static ADOPTING: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Makes this process the reaper of its orphaned descendants (`PR_SET_CHILD_SUBREAPER`):
/// a process that left its command's group (`setsid`, as a daemon does) becomes prun's
/// child when its parent exits, instead of init's, so that [`end_adopted`] finds it. A
/// process-wide attribute: only the `prun` binary (a run that handles the process's
/// signals, in a process that exits after it) sets it: an embedder's process has
/// children of its own, and the commands of its other runs, which a run's end would end
/// as adopted. False where the kernel refuses it; when true, the run has what it adopts
/// recorded in its crash journal (see `crashed::watch_adopted_later`).
pub(crate) fn adopt_orphans() -> bool {
    let on = nix::sys::prctl::set_child_subreaper(true).is_ok();
    ADOPTING.store(on, std::sync::atomic::Ordering::Relaxed);
    on
}

/// Keeps this process's memory, and so the environment it was started with
/// (`/proc/<pid>/environ`), from the processes of its user (`PR_SET_DUMPABLE` 0): only a
/// process with `CAP_SYS_PTRACE` (root's) may then read them or attach to it, and no core
/// dump is written. Its commands are dumpable again from their `execve`. For a run that
/// hides variables (`--deny-env`): they stay in the environment the kernel keeps for
/// prun, where a command of the same user would otherwise read them.
pub(crate) fn keep_memory_private() {
    let _ = nix::sys::prctl::set_dumpable(false);
}

/// The process group of a process, or `None` when it is gone.
pub(crate) fn group_of(pid: i32) -> Option<i32> {
    nix::unistd::getpgid(Some(Pid::from_raw(pid)))
        .ok()
        .map(Pid::as_raw)
}

/// The children of this process, of all its threads (`/proc/self/task/*/children`) that
/// may have any (see [`crate::sigchld::parents`]).
pub(crate) fn children() -> Vec<i32> {
    let mut pids: Vec<i32> = Vec::new();
    for tid in crate::sigchld::parents() {
        match crate::procfs::read_small(&format!("/proc/self/task/{tid}/children")) {
            Ok(text) => pids.extend(
                text.split_whitespace()
                    .filter_map(|p| p.parse::<i32>().ok()),
            ),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                crate::sigchld::parent_gone(tid);
            }
            Err(_) => {}
        }
    }
    pids.sort_unstable();
    pids.dedup();
    pids
}

/// Ends the processes this process adopted (see [`adopt_orphans`]), other than those of
/// the groups in `keep` (commands still being awaited): SIGTERM to each (to its group,
/// when it leads one, as a daemon that called `setsid` does), up to `grace` for them to
/// go, then SIGKILL, and reaps them. Their own children, orphaned in turn, are adopted and
/// ended the same way. Once `hurry` says so (a second Ctrl-C), what is left gets SIGKILL
/// at once. A process that SIGKILL does not end within 2 s more (stuck in the kernel) is
/// left. Returns how many there were; none unless adopting.
pub(crate) fn end_adopted(
    grace: std::time::Duration,
    keep: &[i32],
    hurry: impl Fn() -> bool,
) -> usize {
    use std::time::{Duration, Instant};
    if !ADOPTING.load(std::sync::atomic::Ordering::Relaxed) {
        return 0;
    }
    let signal = |pid: i32, sig: Signal| {
        let leads = nix::unistd::getpgid(Some(Pid::from_raw(pid))).is_ok_and(|g| g.as_raw() == pid);
        let _ = if leads {
            killpg(Pid::from_raw(pid), sig)
        } else {
            nix::sys::signal::kill(Pid::from_raw(pid), sig)
        };
    };
    let mut ended: Vec<i32> = Vec::new();
    let mut deadline = crate::duration::from_now(grace);
    loop {
        if hurry() {
            deadline = deadline.min(Instant::now());
        }
        let late = Instant::now() >= deadline;
        {
            // A child being started is not yet in `keep`: none is, meanwhile.
            let _alone = crate::sigchld::none_starting();
            let (left, gone) = adopted_alive(keep);
            // One gone in this pass may have died after the children were read, its own
            // children given to prun since: only a pass where none was gone tells.
            let over = left.is_empty() && gone == 0;
            if over || Instant::now() >= deadline + Duration::from_secs(2) {
                return ended.len();
            }
            for &pid in &left {
                if late {
                    signal(pid, Signal::SIGKILL);
                } else if !ended.contains(&pid) {
                    // Continued too, as by `term_group`: a stopped daemon acts on it then.
                    signal(pid, Signal::SIGTERM);
                    signal(pid, Signal::SIGCONT);
                }
                if !ended.contains(&pid) {
                    ended.push(pid);
                }
            }
        }
        std::thread::sleep(Duration::from_millis(if late { 1 } else { 10 }));
    }
}

/// Whether a process prun adopted (see [`adopt_orphans`]), or one of their descendants,
/// has `file` open: a daemon that left the group of the command `file` was given to
/// (`setsid daemon &`, its output not redirected) and outlived it. `None` when prun does
/// not adopt (an embedder's run): such a daemon went to init, and only a scan of every
/// process could tell. Once a command's groups are gone, every process of it still alive
/// descends from a child of prun's main thread, which the kernel gives orphans to; most
/// often it has none, and this costs one read of its `children`.
pub(crate) fn adopted_hold(file: &std::fs::File) -> Option<bool> {
    use std::os::unix::fs::MetadataExt;
    if !ADOPTING.load(std::sync::atomic::Ordering::Relaxed) {
        return None;
    }
    let mut todo = orphans();
    if todo.is_empty() {
        return Some(false);
    }
    let Ok(meta) = file.metadata() else {
        return Some(true);
    };
    let key = (meta.dev(), meta.ino());
    let mut seen: Vec<u32> = Vec::new();
    loop {
        while let Some(pid) = todo.pop() {
            if seen.contains(&pid) {
                continue;
            }
            seen.push(pid);
            if has_open(pid, key) {
                return Some(true);
            }
            todo.extend(children_of(pid));
        }
        // One adopted while the others were read (a daemon's second fork).
        todo = orphans();
        todo.retain(|pid| !seen.contains(pid));
        if todo.is_empty() {
            return Some(false);
        }
    }
}

/// The children of this process's main thread: the orphans it adopted (its commands are
/// started by other threads).
///
/// Its `children` file stays open and is read from its start each time: one system call
/// where opening it again took five, after every silent command of a run (see
/// [`adopted_hold`]).
fn orphans() -> Vec<u32> {
    use std::os::unix::fs::FileExt;
    static CHILDREN: std::sync::OnceLock<Option<std::fs::File>> = std::sync::OnceLock::new();
    let Some(file) = CHILDREN.get_or_init(|| {
        std::fs::File::open(format!("/proc/self/task/{}/children", std::process::id())).ok()
    }) else {
        return Vec::new();
    };
    // Most often it lists no one, or a few pids: a small buffer, which costs nothing to
    // clear (one of 4 KiB was half of this function's instructions).
    let mut text = Vec::new();
    let mut buf = [0u8; 256];
    loop {
        match file.read_at(&mut buf, text.len() as u64) {
            Ok(0) => break,
            Ok(n) => text.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => return Vec::new(),
        }
    }
    pids(&String::from_utf8_lossy(&text))
}

/// The children of process `pid`, of all its threads.
fn children_of(pid: u32) -> Vec<u32> {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return Vec::new();
    };
    tasks
        .flatten()
        .filter_map(|t| std::fs::read_to_string(t.path().join("children")).ok())
        .flat_map(|text| pids(&text))
        .collect()
}

/// The process ids of a `children` file.
fn pids(text: &str) -> Vec<u32> {
    text.split_whitespace()
        .filter_map(|p| p.parse().ok())
        .collect()
}

/// Whether process `pid` has a descriptor open on the file of device and inode `key`.
fn has_open(pid: u32, key: (u64, u64)) -> bool {
    use std::os::unix::fs::MetadataExt;
    let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return false;
    };
    fds.flatten()
        .any(|fd| std::fs::metadata(fd.path()).is_ok_and(|m| (m.dev(), m.ino()) == key))
}

/// The inode of a pipe, which `/proc/PID/fd` shows as `pipe:[INODE]`.
pub(crate) fn pipe_inode(fd: impl std::os::fd::AsFd) -> Option<u64> {
    nix::sys::stat::fstat(fd).ok().map(|s| s.st_ino)
}

/// Ends the processes prun adopted that hold the pipe of inode `pipe` (see
/// [`adopt_orphans`]): SIGTERM (and SIGCONT), up to `grace` for them to let it go, then
/// SIGKILL. Called once every process of the groups in `keep` (a launch's) that could hold
/// it is gone: a holder then left its group (`setsid`), and the reader of the pipe would
/// wait for it. Nothing unless adopting, or when this process has no child but the
/// leaders of `keep`; the descriptors of every process are read only then. Nothing is
/// reaped here: a command's child that exits before it is registered is its launch's to
/// reap.
pub(crate) async fn end_pipe_holders(pipe: u64, keep: &[i32], grace: std::time::Duration) {
    use std::time::{Duration, Instant};
    if !ADOPTING.load(std::sync::atomic::Ordering::Relaxed)
        || children().iter().all(|pid| keep.contains(pid))
    {
        return;
    }
    let name = format!("pipe:[{pipe}]");
    let deadline = crate::duration::from_now(grace);
    let mut termed: Vec<i32> = Vec::new();
    loop {
        let late = Instant::now() >= deadline;
        {
            // No process is being started meanwhile: each holder found is one that keeps
            // the pipe, not a child of prun between its fork and its exec.
            let _alone = crate::sigchld::none_starting();
            let holders = holders_of(&name);
            if holders.is_empty() {
                return;
            }
            for &pid in &holders {
                let raw = pid;
                let pid = Pid::from_raw(pid);
                if late {
                    let _ = nix::sys::signal::kill(pid, Signal::SIGKILL);
                } else if !termed.contains(&raw) {
                    let _ = nix::sys::signal::kill(pid, Signal::SIGTERM);
                    let _ = nix::sys::signal::kill(pid, Signal::SIGCONT);
                    termed.push(raw);
                }
            }
        }
        if late {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The processes other than this one with a descriptor that `/proc` names `name`, open
/// for writing (both ends of a pipe have its name: its reader is not a holder).
fn holders_of(name: &str) -> Vec<i32> {
    let me = std::process::id().to_string();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| {
            let pid = e.file_name().to_str()?.parse::<i32>().ok()?;
            let fds = std::fs::read_dir(e.path().join("fd")).ok()?;
            let holds = pid.to_string() != me
                && fds.flatten().any(|fd| {
                    std::fs::read_link(fd.path()).is_ok_and(|l| l.as_os_str() == name)
                        && writes(&e.path().join("fdinfo").join(fd.file_name()))
                });
            holds.then_some(pid)
        })
        .collect()
}

/// Whether the descriptor that `/proc/PID/fdinfo/N` (`info`) describes is open for
/// writing: its `flags:` line is octal, the access mode in its two lowest bits.
fn writes(info: &std::path::Path) -> bool {
    let Ok(text) = std::fs::read_to_string(info) else {
        return false;
    };
    text.lines()
        .find_map(|l| l.strip_prefix("flags:"))
        .and_then(|f| i32::from_str_radix(f.trim(), 8).ok())
        .is_some_and(|f| f & nix::libc::O_ACCMODE != nix::libc::O_RDONLY)
}

/// Reaps the adopted processes (see [`adopt_orphans`]) that exited, other than those of
/// the groups in `keep`, and leaves the others running: a watch does this after each
/// cycle, so that zombies do not gather while it lasts. None unless adopting.
pub(crate) fn reap_adopted(keep: &[i32]) {
    if ADOPTING.load(std::sync::atomic::Ordering::Relaxed) {
        let _ = adopted_alive(keep);
    }
}

/// Reaps the processes prun adopted (see [`adopt_orphans`]) that exited, and leaves the
/// others running: called every half second while prun adopts, so that zombies do not
/// gather in a long run whose commands leave processes behind (`(tool &)` in a loop would
/// fill the process table). Only the children of prun's main thread are looked at, to
/// which the kernel gives orphans; prun's commands are started by other threads (once the
/// main thread has started one, which its launch reaps, nothing is reaped here).
pub(crate) fn reap_exited_orphans() {
    use nix::sys::wait::{WaitPidFlag, waitpid};
    if !ADOPTING.load(std::sync::atomic::Ordering::Relaxed) {
        return;
    }
    let _alone = crate::sigchld::none_starting();
    if crate::sigchld::main_thread_started() {
        return;
    }
    for pid in orphans() {
        if let Ok(pid) = i32::try_from(pid) {
            let _ = waitpid(Pid::from_raw(pid), Some(WaitPidFlag::WNOHANG));
        }
    }
}

/// The children of this process but those in `keep` that are still alive, and how many
/// of them were gone when looked at (this call reaped them, or another thread did).
fn adopted_alive(keep: &[i32]) -> (Vec<i32>, usize) {
    use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
    let mut gone = 0;
    let alive = children()
        .into_iter()
        .filter(|pid| !keep.contains(pid))
        .filter(|&pid| {
            let alive = !matches!(
                waitpid(Pid::from_raw(pid), Some(WaitPidFlag::WNOHANG)),
                Ok(WaitStatus::Exited(..) | WaitStatus::Signaled(..)) | Err(_)
            );
            gone += usize::from(!alive);
            alive
        })
        .collect();
    (alive, gone)
}

/// The processes descended from the members of `groups` (and from their leaders that
/// left them, `setpgid`) that lead a process group of their own outside `groups` and
/// prun's: a `setsid` daemon whose parent, a command, still runs. Ending `groups` would
/// end that parent, and the daemon would go to init, out of reach. One `/proc` walk.
pub(crate) fn escaped_leaders(groups: &[i32]) -> Vec<i32> {
    // Every run asks (for the groups a crashed run left, nearly always none): no walk then.
    if groups.is_empty() {
        return Vec::new();
    }
    let own = nix::unistd::getpgrp().as_raw();
    let procs = processes();
    let mut children: std::collections::HashMap<i32, Vec<i32>> = Default::default();
    for p in &procs {
        children.entry(p.ppid).or_default().push(p.pid);
    }
    let mut todo: Vec<i32> = procs
        .iter()
        .filter(|p| groups.contains(&p.pgrp) || groups.contains(&p.pid))
        .map(|p| p.pid)
        .collect();
    let mut reached: std::collections::HashSet<i32> = todo.iter().copied().collect();
    while let Some(pid) = todo.pop() {
        for &child in children.get(&pid).into_iter().flatten() {
            if reached.insert(child) {
                todo.push(child);
            }
        }
    }
    let mut leaders: Vec<i32> = procs
        .iter()
        .filter(|p| {
            reached.contains(&p.pid)
                && p.pgrp == p.pid
                && p.pgrp != own
                && !groups.contains(&p.pgrp)
        })
        .map(|p| p.pid)
        .collect();
    leaders.sort_unstable();
    leaders
}

/// A live process as `/proc/<pid>/stat` gives it.
struct Process {
    pid: i32,
    ppid: i32,
    pgrp: i32,
}

/// Every process that is not a zombie.
fn processes() -> Vec<Process> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| {
            let pid: i32 = e.file_name().to_str()?.parse().ok()?;
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
            // Fields after the parenthesised command name: state, ppid, pgrp, ...
            let mut fields = stat[stat.rfind(')')? + 1..].split_whitespace();
            let state = fields.next()?;
            let ppid = fields.next()?.parse().ok()?;
            let pgrp = fields.next()?.parse().ok()?;
            (state != "Z" && state != "X").then_some(Process { pid, ppid, pgrp })
        })
        .collect()
}

/// True while a process of the group is alive. Zombies do not count: an orphaned
/// grandchild that died stays a zombie until init reaps it, which in a container can take
/// seconds, and waiting for that would only delay the run.
pub(crate) fn group_alive(pgid: i32) -> bool {
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

/// Reads what a non-blocking stream holds now, without waiting: `Some(0)` at its end,
/// `None` when nothing is there yet.
pub(crate) fn read_now(
    fd: impl std::os::fd::AsFd,
    buf: &mut [u8],
) -> std::io::Result<Option<usize>> {
    loop {
        match nix::unistd::read(&fd, buf) {
            Ok(n) => return Ok(Some(n)),
            Err(nix::errno::Errno::EINTR) => continue,
            Err(nix::errno::Errno::EAGAIN) => return Ok(None),
            Err(e) => return Err(e.into()),
        }
    }
}

/// Opens an unnamed file in `dir` (`O_TMPFILE`): it costs no directory update until
/// [`link_unnamed`] gives it a name.
pub(crate) fn open_unnamed(dir: &std::path::Path) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(nix::libc::O_TMPFILE)
        .mode(0o600)
        .open(dir)
}

/// Gives a file opened with [`open_unnamed`] its name.
pub(crate) fn link_unnamed(file: &std::fs::File, path: &std::path::Path) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    let src = format!("/proc/self/fd/{}", file.as_raw_fd());
    nix::unistd::linkat(
        nix::fcntl::AT_FDCWD,
        src.as_str(),
        nix::fcntl::AT_FDCWD,
        path,
        nix::fcntl::AtFlags::AT_SYMLINK_FOLLOW,
    )
    .map_err(std::io::Error::from)
}

/// True when an error says that this process (`EMFILE`) or the system (`ENFILE`) has no
/// file descriptor left.
pub(crate) fn fds_short(e: &std::io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(nix::libc::EMFILE | nix::libc::ENFILE)
    )
}

/// Raises this process's soft limit of open files to its hard limit: the common soft limit
/// of 1024 is far too low for a few hundred jobs, each with a log and pipes. Children
/// inherit the raised limit: `posix_spawn` cannot give them the original one, as Go's
/// fork and exec does (see docs/decisions.md).
pub(crate) fn raise_fd_limit() {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    if let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE)
        && soft < hard
    {
        let _ = setrlimit(Resource::RLIMIT_NOFILE, hard, hard);
    }
}

/// A child process, awaited without SIGCHLD (which prun blocks: see [`crate::sigchld::block`]).
///
/// Its exit is seen through a pidfd that prun opens itself and the async runtime watches.
/// When there is none to be had (`pidfd_open` is missing before Linux 5.3, a seccomp
/// filter refuses it, no descriptor is left, or the runtime cannot watch one more), a
/// thread of its own waits for the child's exit with `waitid(WNOWAIT)`, which does not
/// reap it: only the `Child` reaps, so the pid cannot be reused by another process while
/// that thread looks at it. When no thread can be started either, the child is polled,
/// with a pause that grows from 1 ms to [`POLL_MAX`]. A `Child` dropped before it was
/// awaited reaps its process if it has exited; one still running then is reaped when prun
/// exits (a launch awaits its children to the end: only a run that ended on a bug, whose
/// groups were killed, drops one early).
#[derive(Debug)]
pub(crate) struct Child {
    pid: u32,
    /// How it exited, once reaped.
    status: Option<std::process::ExitStatus>,
    exit: ExitWatch,
}

/// How a [`Child`]'s exit is seen.
#[derive(Debug)]
enum ExitWatch {
    /// Its pidfd, readable once it has exited.
    Pidfd(tokio::io::unix::AsyncFd<std::os::fd::OwnedFd>),
    /// Told by a thread that waited for its exit.
    Thread(tokio::sync::oneshot::Receiver<()>),
    /// Polled, after this pause.
    Poll(std::time::Duration),
}

/// The ways to watch a child, in the order they are tried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Watch {
    Pidfd,
    Thread,
    Poll,
}

const WATCHES: [Watch; 3] = [Watch::Pidfd, Watch::Thread, Watch::Poll];

/// The first pause of a polled [`Child`].
const POLL_MIN: std::time::Duration = std::time::Duration::from_millis(1);
/// The longest pause of a polled [`Child`].
pub(crate) const POLL_MAX: std::time::Duration = std::time::Duration::from_millis(50);

impl Child {
    /// Watches the child `pid` just started (a child of this process that nothing else
    /// reaps). Called on the async runtime.
    pub(crate) fn new(pid: u32) -> Child {
        Child::watched(pid, Watch::Pidfd)
    }

    /// Watches a child the first way from `first` on that can be had.
    fn watched(pid: u32, first: Watch) -> Child {
        let exit = WATCHES
            .into_iter()
            .skip_while(|&w| w != first)
            .find_map(|w| match w {
                Watch::Pidfd => pidfd_watch(pid),
                Watch::Thread => thread_watch(pid),
                Watch::Poll => None,
            });
        Child {
            pid,
            status: None,
            exit: exit.unwrap_or(ExitWatch::Poll(POLL_MIN)),
        }
    }

    /// Its exit status if it has exited, reaping it (once: the status is kept).
    fn try_wait(&mut self) -> std::io::Result<Option<std::process::ExitStatus>> {
        reap(self.pid, &mut self.status)
    }

    /// Waits for the child to exit and reaps it. Its status is kept: a later call returns
    /// it at once. Cancel safe: a wait given up (a `select!`) can be made again.
    pub(crate) async fn wait(&mut self) -> std::io::Result<std::process::ExitStatus> {
        loop {
            match &mut self.exit {
                ExitWatch::Pidfd(fd) => {
                    drop(fd.readable().await?);
                    if let Some(status) = self.try_wait()? {
                        return Ok(status);
                    }
                    // Readable before the child could be reaped (never seen): the runtime
                    // watches for a change, which a pidfd that stays readable never makes
                    // again, so the child is polled from now on.
                    self.exit = ExitWatch::Poll(POLL_MIN);
                }
                ExitWatch::Thread(told) => {
                    // Told, or the thread is gone: the child is reaped by polling.
                    let _ = told.await;
                    self.exit = ExitWatch::Poll(POLL_MIN);
                }
                ExitWatch::Poll(pause) => {
                    if let Some(status) = reap(self.pid, &mut self.status)? {
                        return Ok(status);
                    }
                    tokio::time::sleep(*pause).await;
                    *pause = (*pause * 2).min(POLL_MAX);
                }
            }
        }
    }

    /// SIGTERM, then SIGCONT (as [`term_group`] sends them), to the child itself if it
    /// left its process group (see [`Child::signal_if_left`]).
    pub(crate) fn term_if_left(&mut self) {
        self.signal_if_left(&[Signal::SIGTERM, Signal::SIGCONT]);
    }

    /// SIGKILL to the child itself if it left its process group.
    pub(crate) fn kill_if_left(&mut self) {
        self.signal_if_left(&[Signal::SIGKILL]);
    }

    /// Sends `signals` to the child, a group's leader, if it moved into another group of
    /// the session (`setpgid`), where its group's signals no longer reach it. Not once it
    /// has exited (it is reaped then): the pid of a reaped child may be another process's.
    fn signal_if_left(&mut self, signals: &[Signal]) {
        if !matches!(self.try_wait(), Ok(None)) {
            return;
        }
        let Ok(pid) = i32::try_from(self.pid) else {
            return;
        };
        if group_of(pid).is_some_and(|g| g != pid) {
            for &sig in signals {
                let _ = nix::sys::signal::kill(Pid::from_raw(pid), sig);
            }
        }
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        // Reaps an exited child that was not awaited (nothing when it was).
        let _ = self.try_wait();
    }
}

/// The exit status of the child `pid` if it has exited, reaping it; kept in `status`,
/// which a later call returns.
fn reap(
    pid: u32,
    status: &mut Option<std::process::ExitStatus>,
) -> std::io::Result<Option<std::process::ExitStatus>> {
    use rustix::process::{WaitOptions, waitpid};
    use std::os::unix::process::ExitStatusExt;
    if status.is_some() {
        return Ok(*status);
    }
    let pid = i32::try_from(pid)
        .ok()
        .and_then(rustix::process::Pid::from_raw)
        .ok_or_else(|| std::io::Error::from(std::io::ErrorKind::InvalidInput))?;
    let reaped = loop {
        match waitpid(Some(pid), WaitOptions::NOHANG) {
            Err(rustix::io::Errno::INTR) => {}
            other => break other?,
        }
    };
    *status = reaped.map(|(_, s)| std::process::ExitStatus::from_raw(s.as_raw()));
    Ok(*status)
}

/// The child's pidfd, watched by the runtime.
fn pidfd_watch(pid: u32) -> Option<ExitWatch> {
    use rustix::process::{Pid, PidfdFlags, pidfd_open};
    use tokio::io::{Interest, unix::AsyncFd};
    let pid = Pid::from_raw(i32::try_from(pid).ok()?)?;
    let fd = pidfd_open(pid, PidfdFlags::NONBLOCK).ok()?;
    // Deprecated for a type whose descriptor could change or close while registered
    // (the safe replacement, `register_with_interest`, is `unsafe`, which the crate
    // forbids); an `OwnedFd` keeps its one descriptor open until the `AsyncFd` drops it.
    #[allow(deprecated)]
    AsyncFd::with_interest(fd, Interest::READABLE)
        .ok()
        .map(ExitWatch::Pidfd)
}

/// A thread that waits, without reaping it, for the child to exit, and tells.
fn thread_watch(pid: u32) -> Option<ExitWatch> {
    use rustix::io::Errno;
    use rustix::process::{Pid, WaitId, WaitIdOptions, waitid};
    let pid = Pid::from_raw(i32::try_from(pid).ok()?)?;
    let (tell, told) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("prun-wait".into())
        .stack_size(64 * 1024)
        .spawn(move || {
            while let Err(Errno::INTR) = waitid(
                WaitId::Pid(pid),
                WaitIdOptions::EXITED | WaitIdOptions::NOWAIT,
            ) {}
            let _ = tell.send(());
        })
        .ok()?;
    Some(ExitWatch::Thread(told))
}

/// The signal number that ended a process, if a signal did.
pub(crate) fn exit_signal(status: &std::process::ExitStatus) -> Option<i32> {
    use std::os::unix::process::ExitStatusExt;
    status.signal()
}

/// The name of a signal number (`SIGTERM`), for messages.
pub(crate) fn signal_name(sig: i32) -> String {
    Signal::try_from(sig).map_or_else(|_| format!("signal {sig}"), |s| s.as_str().to_string())
}

/// The number of SIGPIPE, to tell a pipe's stage whose reader stopped reading.
pub(crate) const SIGPIPE: i32 = Signal::SIGPIPE as i32;

/// The number of SIGINT, to tell an interactive command ended by Ctrl-C.
pub(crate) const SIGINT: i32 = Signal::SIGINT as i32;

/// Whether `sig` was ignored (`SIG_IGN`) when this process started, as `nohup` leaves
/// SIGHUP, and a non-interactive shell SIGINT and SIGQUIT for a command it starts with `&`.
/// The first call reads the process's ignored signals (`SigIgn:` in `/proc/self/status`,
/// see [`crate::procfs::signals_at_start`]); it must come before prun installs a handler for `sig`, which the `prun` binary's run
/// does only after asking (see `crate::run`). False when `/proc` cannot be read.
pub(crate) fn ignored_at_start(sig: i32) -> bool {
    let ignored = crate::procfs::signals_at_start().ignored;
    (1..=64).contains(&sig) && ignored & (1 << (sig - 1)) != 0
}

/// True when this process has a controlling terminal (field 7, `tty_nr`, of
/// `/proc/self/stat` is not 0): only then can a command be stopped for using it (see
/// [`stop_signal`]). Read once.
pub(crate) fn has_terminal() -> bool {
    static HAS: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *HAS.get_or_init(|| {
        let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
            return false;
        };
        // Fields after the parenthesised command name: state, ppid, pgrp, session, tty_nr.
        stat.rfind(')')
            .and_then(|i| stat[i + 1..].split_whitespace().nth(4)?.parse::<i64>().ok())
            .is_some_and(|tty| tty != 0)
    })
}

/// The signal that stopped `pid`, a child of this process, if it is stopped now (SIGTSTP,
/// SIGSTOP, SIGTTIN, SIGTTOU). The child is not reaped, nor its stop consumed (`WNOWAIT`).
pub(crate) fn stop_signal(pid: i32) -> Option<i32> {
    use rustix::process::{Pid, WaitId, WaitIdOptions, waitid};
    let pid = Pid::from_raw(pid)?;
    let options = WaitIdOptions::STOPPED | WaitIdOptions::NOHANG | WaitIdOptions::NOWAIT;
    waitid(WaitId::Pid(pid), options).ok()??.stopping_signal()
}

/// Whether `sig` is a job-control signal the kernel stops a process with for using the
/// terminal from outside its foreground process group (SIGTTIN: it read the terminal;
/// SIGTTOU: it changed its modes, or wrote to it under `stty tostop`). The kernel stops
/// the whole group of the process that did it, the group's leader included.
pub(crate) fn is_terminal_signal(sig: i32) -> bool {
    sig == SIGTTIN || sig == Signal::SIGTTOU as i32
}

/// The number of SIGTTIN, whose default action the binary gives to the commands it starts.
pub(crate) const SIGTTIN: i32 = Signal::SIGTTIN as i32;

/// The terminal lent to an interactive command's process group, until this is dropped.
///
/// A command in its own process group can read the terminal only while its group is the
/// terminal's foreground group; otherwise the kernel stops it (SIGTTIN). prun makes it the
/// foreground with `tcsetpgrp` after starting it; a command that read before that was
/// stopped, and is continued (SIGCONT) once the terminal is its own. Taking the terminal
/// back is `tcsetpgrp` from a background group, which the kernel answers with SIGTTOU
/// (stopping prun) unless the caller blocks it: these calls run with SIGTTOU blocked on
/// the calling thread. When the command is stopped (Ctrl-Z), prun does what a job-control
/// shell does (see [`Foreground::stopped`]).
#[derive(Debug)]
pub(crate) struct Foreground {
    /// The command's process group.
    pgid: i32,
    /// prun's terminal modes when it lent the terminal, set again while the command is
    /// stopped.
    own: Option<nix::sys::termios::Termios>,
    /// The command's terminal modes when it was last stopped with the terminal, set again
    /// when it gets the terminal back (a command stopped by SIGSTOP in raw mode).
    modes: Option<nix::sys::termios::Termios>,
}

impl Foreground {
    /// Makes `pgid` the foreground process group of prun's terminal (its stdin). `None`
    /// when stdin is not a terminal, or when prun itself is not in the foreground (run in
    /// the background of a shell): the terminal is not prun's to lend.
    pub(crate) fn give(pgid: i32) -> Option<Foreground> {
        use std::io::IsTerminal;
        use std::os::fd::AsFd;

        let stdin = std::io::stdin();
        if !stdin.is_terminal() || !own_terminal(stdin.as_fd()) {
            return None;
        }
        let own = nix::sys::termios::tcgetattr(stdin.as_fd()).ok();
        let lent = Foreground {
            pgid,
            own,
            modes: None,
        };
        lent.lend().ok()?;
        let _ = killpg(Pid::from_raw(pgid), Signal::SIGCONT);
        Some(lent)
    }

    /// Acts on a stop of the command's group leader by `sig`, as a job-control shell acts
    /// on a stop of its job: the command was stopped by Ctrl-Z (SIGTSTP), by SIGSTOP, or
    /// for using the terminal (SIGTTIN, SIGTTOU) after prun was sent to the background.
    ///
    /// prun takes the terminal back, sets its own modes again, and stops its own job (see
    /// [`stop_own_job`]) so that its shell gets the terminal; once continued, it gives the
    /// terminal and the command's modes back if it is in the foreground (`fg`), and
    /// continues the command. Continued in the background (`bg`), the command runs without
    /// the terminal and is stopped again by the kernel when it next uses it: prun stops
    /// again then (each stop waits for the user). A command stopped for using the terminal
    /// while prun is in the foreground (`fg` after `bg`) gets it at once.
    ///
    /// `Err(sig)` when the command was stopped for using the terminal and cannot have it:
    /// prun is in the background and cannot be stopped (no job-control shell above it,
    /// see [`stop_own_job`]); it is left stopped, to be ended. A Ctrl-Z that cannot stop
    /// prun is ignored: the command is continued at once.
    pub(crate) async fn stopped(&mut self, sig: i32) -> Result<(), i32> {
        use std::os::fd::AsFd;

        let stdin = std::io::stdin();
        let terminal = stdin.as_fd();
        if nix::unistd::tcgetpgrp(terminal).is_ok_and(|g| g.as_raw() == self.pgid) {
            self.modes = nix::sys::termios::tcgetattr(terminal).ok();
            let _ = self.take_back();
        }
        let stopped =
            !(is_terminal_signal(sig) && own_terminal(terminal)) && stop_own_job(sig).await;
        if own_terminal(terminal) {
            let _ = self.lend();
        } else if is_terminal_signal(sig) && !stopped {
            return Err(sig);
        }
        let _ = killpg(Pid::from_raw(self.pgid), Signal::SIGCONT);
        Ok(())
    }

    /// Whether the terminal was hung up (closed: its window, or the ssh connection): its
    /// `ioctl`s then fail with EIO.
    pub(crate) fn hung_up(&self) -> bool {
        use std::os::fd::AsFd;

        nix::unistd::tcgetpgrp(std::io::stdin().as_fd()) == Err(nix::errno::Errno::EIO)
    }

    /// Makes the command's group the terminal's foreground, with its modes when it had
    /// the terminal before.
    fn lend(&self) -> nix::Result<()> {
        use std::os::fd::AsFd;

        use nix::sys::termios::{SetArg, tcsetattr};
        let stdin = std::io::stdin();
        let terminal = stdin.as_fd();
        sigttou_blocked(|| {
            if let Some(modes) = &self.modes {
                let _ = tcsetattr(terminal, SetArg::TCSADRAIN, modes);
            }
            nix::unistd::tcsetpgrp(terminal, Pid::from_raw(self.pgid))
        })
    }

    /// Makes prun's own group the terminal's foreground again, with its own modes.
    fn take_back(&self) -> nix::Result<()> {
        use std::os::fd::AsFd;

        use nix::sys::termios::{SetArg, tcsetattr};
        let stdin = std::io::stdin();
        let terminal = stdin.as_fd();
        sigttou_blocked(|| {
            if let Some(own) = &self.own {
                let _ = tcsetattr(terminal, SetArg::TCSADRAIN, own);
            }
            nix::unistd::tcsetpgrp(terminal, nix::unistd::getpgrp())
        })
    }
}

impl Drop for Foreground {
    /// Makes prun's own process group the terminal's foreground again, if the command's
    /// group still has it: not when prun was sent to the background meanwhile (`bg`),
    /// where the shell has it.
    fn drop(&mut self) {
        use std::os::fd::AsFd;

        let held =
            nix::unistd::tcgetpgrp(std::io::stdin().as_fd()).is_ok_and(|g| g.as_raw() == self.pgid);
        if held {
            let _ = sigttou_blocked(|| {
                nix::unistd::tcsetpgrp(std::io::stdin().as_fd(), nix::unistd::getpgrp())
            });
        }
    }
}

/// Whether prun's process group is the foreground group of `terminal`.
fn own_terminal(terminal: std::os::fd::BorrowedFd<'_>) -> bool {
    nix::unistd::tcgetpgrp(terminal).is_ok_and(|g| g == nix::unistd::getpgrp())
}

/// Stops prun's own job, its process group (prun, and what its shell started with it:
/// `prun ... | tee log`), as `sig` from the terminal would have stopped it: the command
/// prun lent the terminal to was stopped by `sig`, and prun's shell takes the terminal
/// back only once its job is stopped. Returns once prun is continued (`fg`, `bg`), with
/// `true`; at once with `false` when nothing would continue it, so it is not stopped: its
/// group is orphaned (no job-control shell above it, as for `tmux new 'prun ...'`; the
/// kernel discards the terminal's stop signals there too), or it ignores `sig`.
///
/// A signal that prun catches (SIGTSTP, caught by the live display; SIGTTIN, by the
/// binary) is replaced by SIGSTOP, which cannot be caught (the shell then says `$?` 147,
/// as after prun's own Ctrl-Z). The kernel stops prun's threads a moment after `killpg`
/// returns: prun waits for the SIGCONT that continues it before it goes on.
async fn stop_own_job(sig: i32) -> bool {
    use tokio::signal::unix::SignalKind;
    let Ok(mut signal) = Signal::try_from(sig) else {
        return false;
    };
    if signal != Signal::SIGSTOP {
        if signal_set("SigIgn").is_some_and(|set| set & bit(sig) != 0) {
            return false;
        }
        if signal_set("SigCgt").is_none_or(|set| set & bit(sig) != 0) {
            signal = Signal::SIGSTOP;
        }
    }
    if own_group_orphaned() {
        return false;
    }
    let Ok(mut continued) =
        tokio::signal::unix::signal(SignalKind::from_raw(Signal::SIGCONT as i32))
    else {
        return false;
    };
    if killpg(nix::unistd::getpgrp(), signal).is_err() {
        return false;
    }
    continued.recv().await.is_some()
}

/// The bit of signal `sig` in a set of `/proc/self/status`.
fn bit(sig: i32) -> u64 {
    1u64.checked_shl(sig.wrapping_sub(1) as u32).unwrap_or(0)
}

/// A set of signals of this process now, as `/proc/self/status` shows it (`SigIgn`,
/// `SigCgt`).
fn signal_set(field: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let hex = status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))?;
    u64::from_str_radix(hex.trim(), 16).ok()
}

/// Whether prun's process group is orphaned: none of its processes has a parent in
/// another group of the same session (a job-control shell), which alone could continue
/// it once stopped. False when `/proc` cannot be read.
fn own_group_orphaned() -> bool {
    use std::collections::HashMap;
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return false;
    };
    // Each process's parent, group and session.
    let procs: HashMap<i32, (i32, i32, i32)> = entries
        .flatten()
        .filter_map(|e| {
            let pid = e.file_name().to_str()?.parse::<i32>().ok()?;
            let stat = std::fs::read_to_string(e.path().join("stat")).ok()?;
            // Fields after the parenthesised command name: state, ppid, pgrp, session.
            let mut fields = stat[stat.rfind(')')? + 1..].split_whitespace().skip(1);
            let mut next = || fields.next()?.parse::<i32>().ok();
            Some((pid, (next()?, next()?, next()?)))
        })
        .collect();
    let me = std::process::id() as i32;
    let Some(&(_, group, session)) = procs.get(&me) else {
        return false;
    };
    !procs.values().any(|&(parent, g, _)| {
        g == group
            && procs
                .get(&parent)
                .is_some_and(|&(_, pg, ps)| ps == session && pg != group)
    })
}

/// Runs `f` with SIGTTOU blocked on this thread, and only for `f`: no command is started
/// meanwhile (a child would inherit the mask, see [`crate::sigchld::spawn`]).
fn sigttou_blocked<R>(f: impl FnOnce() -> R) -> R {
    use nix::sys::signal::{SigSet, SigmaskHow, pthread_sigmask};
    let mut block = SigSet::empty();
    block.add(Signal::SIGTTOU);
    let mut old = SigSet::empty();
    let blocked = pthread_sigmask(SigmaskHow::SIG_BLOCK, Some(&block), Some(&mut old)).is_ok();
    let r = f();
    if blocked {
        let _ = pthread_sigmask(SigmaskHow::SIG_SETMASK, Some(&old), None);
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs `test` on a runtime whose only thread blocks SIGCHLD, as prun's threads do.
    fn without_sigchld(test: impl std::future::Future<Output = ()> + Send + 'static) {
        std::thread::spawn(move || {
            crate::sigchld::block();
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime")
                .block_on(test);
        })
        .join()
        .expect("the test thread");
    }

    /// Starts `sh -c script` with its stdin piped: its pid and stdin.
    #[expect(
        clippy::zombie_processes,
        reason = "reaped by the `Child` the test makes of its pid"
    )]
    fn start_sh(script: &str) -> (u32, Option<std::process::ChildStdin>) {
        let mut process = std::process::Command::new("/bin/sh")
            .args(["-c", script])
            .stdin(std::process::Stdio::piped())
            .spawn()
            .expect("spawn sh");
        (process.id(), process.stdin.take())
    }

    /// Awaits a child watched from `first` on: `sh` waits for a line of input, then exits 3.
    fn awaits_a_child(first: Watch) {
        without_sigchld(async move {
            let (pid, stdin) = start_sh("read line; exit 3");
            let mut child = Child::watched(pid, first);
            let way = match &child.exit {
                ExitWatch::Pidfd(_) => Watch::Pidfd,
                ExitWatch::Thread(_) => Watch::Thread,
                ExitWatch::Poll(_) => Watch::Poll,
            };
            assert_eq!(way, first, "watched another way than asked");
            // It cannot exit before its input ends: the wait is given up (a `select!`
            // does the same), and made again.
            let early =
                tokio::time::timeout(std::time::Duration::from_millis(20), child.wait()).await;
            assert!(early.is_err(), "the wait returned before the child exited");
            drop(stdin);
            let status = child.wait().await.expect("wait");
            assert_eq!(status.code(), Some(3));
            let again = child.wait().await.expect("a second wait");
            assert_eq!(again.code(), Some(3), "the status is kept");
        });
    }

    #[test]
    fn a_child_is_awaited_through_its_pidfd() {
        awaits_a_child(Watch::Pidfd);
    }

    #[test]
    fn without_a_pidfd_a_thread_waits_for_the_child_and_leaves_it_to_be_reaped() {
        awaits_a_child(Watch::Thread);
    }

    #[test]
    fn without_a_thread_the_child_is_polled() {
        awaits_a_child(Watch::Poll);
    }

    #[test]
    fn a_child_killed_by_a_signal_says_so() {
        without_sigchld(async {
            for first in WATCHES {
                let (pid, _) = start_sh("kill -KILL $$");
                let mut child = Child::watched(pid, first);
                let status = child.wait().await.expect("wait");
                assert_eq!(exit_signal(&status), Some(9), "{first:?}");
            }
        });
    }
}

//! Starting the process of one command (a launch's stage): `posix_spawn`, given the
//! child's three descriptors, its process group, its signal mask and its environment as
//! file actions and attributes, and nothing else.
//!
//! The standard library's `Command` gets there too, but what prun needs cost more on the
//! way, about a tenth of a short command's run at `-j 2` (benches/compare.sh, case 1): a
//! duplicate of each descriptor given to the child, made before and closed after; the
//! calling thread's signal mask changed and put back around the spawn, which is how the
//! child got prun's start-up mask (see [`crate::sigchld`]), with the SIGCHLD pending
//! meanwhile handled each time. Here the child's descriptors are `dup2`'d from prun's own
//! in the child, and its mask and group are attributes.
//!
//! A command with a working directory of its own is started by the standard library:
//! `posix_spawn` has no portable action to change directory (glibc's
//! `posix_spawn_file_actions_addchdir_np` is not in the `nix` crate, and prun has no
//! unsafe code to call it). Both ways give the child the same descriptors, process
//! group, signal mask and dispositions, and environment (see [`Environment`]).

use std::ffi::{CStr, CString, OsStr, OsString};
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use nix::spawn::{PosixSpawnAttr, PosixSpawnFileActions, PosixSpawnFlags};
use nix::sys::signal::{SigSet, Signal};
use nix::unistd::{AccessFlags, Pid};

use super::command::{CommandError, CommandSpec, Program, on_path};

/// prun's environment less the variables hidden from commands (the policy's, see
/// `Policy::hidden_env`), read once for the commands of a run: a command's environment
/// is this with its own `env` on top.
///
/// Read once, it is the environment prun had when the run's first command started: prun
/// never changes its own, and a program that embeds prun and changes its environment
/// during a run gives the change to the commands of its next run.
#[derive(Debug)]
pub(crate) struct Environment {
    /// `NAME=value`, in prun's order.
    vars: Vec<CString>,
    /// The value of `PATH` among them.
    path: Option<OsString>,
}

impl Environment {
    /// prun's environment now, less the variables named in `hidden`.
    pub(crate) fn read(hidden: &[OsString]) -> Environment {
        let mut vars = Vec::new();
        let mut path = None;
        for (name, value) in std::env::vars_os() {
            if hidden.contains(&name) {
                continue;
            }
            if name == "PATH" {
                path = Some(value.clone());
            }
            let mut pair = name.into_encoded_bytes();
            pair.push(b'=');
            pair.extend_from_slice(value.as_encoded_bytes());
            // The kernel's environment holds no NUL byte: none can be met here.
            if let Ok(pair) = CString::new(pair) {
                vars.push(pair);
            }
        }
        Environment { vars, path }
    }
}

/// Where one of a child's standard streams comes from or goes to.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Stream<'a> {
    /// prun's own.
    Inherit,
    /// This descriptor of prun's (a file, a pipe's end, `/dev/null`), which the child
    /// gets a copy of: prun keeps it.
    Fd(BorrowedFd<'a>),
    /// A new pipe, whose other end prun gets ([`Started`]).
    Piped,
}

/// A process just started, and prun's ends of its piped streams.
#[derive(Debug)]
pub(crate) struct Started {
    pub pid: u32,
    pub stdin: Option<std::process::ChildStdin>,
    pub stdout: Option<std::process::ChildStdout>,
    pub stderr: Option<std::process::ChildStderr>,
}

/// Starts `spec` in a process group of its own, with `streams` as its stdin, stdout and
/// stderr, prun's start-up signal mask (see [`crate::sigchld::start_mask`]), SIGPIPE's
/// default disposition (prun ignores it), and `env` with the command's own variables on
/// top, less those in `hidden` whatever the command says.
pub(crate) fn spawn(
    spec: &CommandSpec,
    streams: [Stream<'_>; 3],
    env: &Environment,
    hidden: &[OsString],
) -> Result<Started, CommandError> {
    let words: Vec<&str> = match &spec.program {
        Program::Argv(argv) => argv.iter().map(String::as_str).collect(),
        Program::Shell(text) => vec!["/bin/sh", "-c", text],
    };
    let Some(&program) = words.first() else {
        return Err(CommandError::Empty);
    };
    let invalid = |_| spec.spawn_error(io::ErrorKind::InvalidInput.into(), hidden);
    let own = own_variables(spec, hidden).map_err(invalid)?;
    let path = match own.iter().find_map(|v| v.as_bytes().strip_prefix(b"PATH=")) {
        Some(value) => Some(OsStr::from_bytes(value).to_os_string()),
        None => env.path.clone(),
    };
    let file = find(program, path.as_deref(), spec.cwd.as_deref())
        .map_err(|e| spec.spawn_error(e, hidden))?;
    if let Some(cwd) = &spec.cwd {
        if !super::startable::kernel_starts(&cwd.join(&file)) {
            let refused = io::Error::from_raw_os_error(nix::libc::ENOEXEC);
            return Err(spec.spawn_error(refused, hidden));
        }
        return spawn_by_std(spec, &file, streams, hidden);
    }
    let argv = words
        .iter()
        .map(|w| CString::new(*w))
        .collect::<Result<Vec<_>, _>>()
        .map_err(invalid)?;
    let start = |actions: &PosixSpawnFileActions, attributes: &PosixSpawnAttr| {
        if own.is_empty() {
            return posix_spawn(&file, actions, attributes, &argv, &env.vars);
        }
        let mut envp: Vec<&CStr> = env
            .vars
            .iter()
            .filter(|v| !own.iter().any(|o| name_of(o) == name_of(v)))
            .map(CString::as_c_str)
            .collect();
        envp.extend(own.iter().map(CString::as_c_str));
        posix_spawn(&file, actions, attributes, &argv, &envp)
    };
    let (spawned, kept) = match plain(&streams) {
        Some(numbers) => (Kept::with(numbers, start), [None, None, None]),
        None => {
            let mut actions = FileActions::new().map_err(|e| spec.spawn_error(e, hidden))?;
            for (target, stream) in streams.into_iter().enumerate() {
                actions.give(stream, target)?;
            }
            let spawned = Kept::attributes(|attributes| start(&actions.actions, attributes));
            (spawned, actions.kept)
        }
    };
    let pid = spawned.map_err(|e| spec.spawn_error(e, hidden))?;
    let [stdin, stdout, stderr] = kept;
    Ok(Started {
        pid,
        stdin: stdin.map(std::process::ChildStdin::from),
        stdout: stdout.map(std::process::ChildStdout::from),
        stderr: stderr.map(std::process::ChildStderr::from),
    })
}

/// The command's own variables as `NAME=value`, the last of a name winning, less those
/// in `hidden`.
fn own_variables(
    spec: &CommandSpec,
    hidden: &[OsString],
) -> Result<Vec<CString>, std::ffi::NulError> {
    let mut own: Vec<CString> = Vec::new();
    for (name, value) in spec.env.iter().rev() {
        if hidden.iter().any(|h| h.as_os_str() == OsStr::new(name)) {
            continue;
        }
        let pair = CString::new(format!("{name}={value}"))?;
        if !own.iter().any(|o| name_of(o) == name.as_bytes()) {
            own.push(pair);
        }
    }
    own.reverse();
    Ok(own)
}

/// The name of a `NAME=value` variable.
fn name_of(pair: &CStr) -> &[u8] {
    let bytes = pair.to_bytes();
    bytes.split(|&b| b == b'=').next().unwrap_or(bytes)
}

/// The file to run for `program` in a command working in `cwd` (relative to prun's;
/// `None`: prun's own): the program itself when it holds a `/`, else the first regular
/// file with execute permission of those [`on_path`] gives for `path` (a relative one
/// is looked at in the command's working directory). Not found: `EACCES` when one
/// was met without that permission (or was a directory), `ENOENT` otherwise, as `execvp`
/// says.
///
/// The search ends there, unlike `execvp`'s, which goes on to the next directory when
/// the file found cannot be started (its `#!` interpreter is missing): that would run
/// another program than the one `which` and the policy's allow list find, and the
/// command fails instead, naming the file and its interpreter.
fn find(program: &str, path: Option<&OsStr>, cwd: Option<&Path>) -> io::Result<PathBuf> {
    if program.contains('/') {
        return Ok(PathBuf::from(program));
    }
    let mut denied = false;
    for file in on_path(program, path) {
        let seen = cwd.map_or_else(|| file.clone(), |d| d.join(&file));
        match std::fs::metadata(&seen) {
            Ok(meta) if meta.is_file() && nix::unistd::access(&seen, AccessFlags::X_OK).is_ok() => {
                return Ok(file);
            }
            Ok(_) => denied = true,
            // A directory this user may not search, which may hold it.
            Err(e) if e.kind() == io::ErrorKind::PermissionDenied => denied = true,
            Err(_) => {}
        }
    }
    Err(io::Error::from_raw_os_error(if denied {
        nix::libc::EACCES
    } else {
        nix::libc::ENOENT
    }))
}

/// The child's process group (its own), signal mask (prun's start-up one) and SIGPIPE's
/// disposition (the default: prun ignores it, and an ignored signal stays ignored across
/// `execve`).
fn attributes() -> io::Result<PosixSpawnAttr> {
    let mut attributes = PosixSpawnAttr::init()?;
    attributes.set_flags(
        PosixSpawnFlags::POSIX_SPAWN_SETPGROUP
            | PosixSpawnFlags::POSIX_SPAWN_SETSIGMASK
            | PosixSpawnFlags::POSIX_SPAWN_SETSIGDEF,
    )?;
    attributes.set_pgroup(Pid::from_raw(0))?;
    attributes.set_sigmask(&crate::sigchld::start_mask())?;
    let mut default = SigSet::empty();
    default.add(Signal::SIGPIPE);
    attributes.set_sigdefault(&default)?;
    Ok(attributes)
}

/// The numbers of the descriptors `streams` give the child, `None` for prun's own, when
/// the child gets no pipe and none of prun's 0, 1 and 2 under another number: then the
/// file actions are plain `dup2`s of these numbers (see [`Kept`]).
fn plain(streams: &[Stream<'_>; 3]) -> Option<[Option<RawFd>; 3]> {
    let mut numbers = [None; 3];
    for (number, stream) in numbers.iter_mut().zip(streams) {
        *number = match stream {
            Stream::Inherit => None,
            Stream::Fd(fd) if fd.as_raw_fd() > 2 => Some(fd.as_raw_fd()),
            Stream::Fd(_) | Stream::Piped => return None,
        };
    }
    Some(numbers)
}

/// How many sets of plain file actions a thread keeps: a run's commands get their
/// streams from a few descriptors whose numbers come back (`/dev/null`, the logs).
const KEPT_ACTIONS: usize = 4;

/// The spawn attributes and the last plain file actions (`dup2`s of prun's descriptors
/// by number, see [`plain`]) a thread used, kept for its next commands. Actions name
/// descriptors by number only, so the same numbers make the same actions; made anew,
/// each `dup2` action costs glibc two system calls (it checks both numbers against
/// `RLIMIT_NOFILE`), six a command. The attributes are the same for every command
/// (prun's start-up mask does not change).
#[derive(Default)]
struct Kept {
    attributes: Option<PosixSpawnAttr>,
    actions: Vec<([Option<RawFd>; 3], PosixSpawnFileActions)>,
}

thread_local! {
    static KEPT: std::cell::RefCell<Kept> = std::cell::RefCell::new(Kept::default());
}

impl Kept {
    /// Calls `f` with the attributes.
    fn attributes<R>(f: impl FnOnce(&PosixSpawnAttr) -> io::Result<R>) -> io::Result<R> {
        KEPT.with_borrow_mut(|kept| f(made(&mut kept.attributes)?))
    }

    /// Calls `f` with the plain file actions of `numbers`, and the attributes.
    fn with<R>(
        numbers: [Option<RawFd>; 3],
        f: impl FnOnce(&PosixSpawnFileActions, &PosixSpawnAttr) -> io::Result<R>,
    ) -> io::Result<R> {
        KEPT.with_borrow_mut(|kept| {
            let at = match kept.actions.iter().position(|(n, _)| *n == numbers) {
                Some(at) => at,
                None => {
                    let mut actions = PosixSpawnFileActions::init()?;
                    for (target, fd) in (0..).zip(numbers) {
                        if let Some(fd) = fd {
                            actions.add_dup2(fd, target)?;
                        }
                    }
                    if kept.actions.len() == KEPT_ACTIONS {
                        kept.actions.remove(0);
                    }
                    kept.actions.push((numbers, actions));
                    kept.actions.len() - 1
                }
            };
            f(&kept.actions[at].1, made(&mut kept.attributes)?)
        })
    }
}

/// The attributes in `slot`, made first if there are none.
fn made(slot: &mut Option<PosixSpawnAttr>) -> io::Result<&PosixSpawnAttr> {
    let attributes = match slot.take() {
        Some(kept) => kept,
        None => attributes()?,
    };
    Ok(slot.insert(attributes))
}

/// `posix_spawn`, as one of the processes being started (see
/// [`crate::sigchld::starting`]).
fn posix_spawn<E: AsRef<CStr>>(
    file: &std::path::Path,
    actions: &PosixSpawnFileActions,
    attributes: &PosixSpawnAttr,
    argv: &[CString],
    envp: &[E],
) -> io::Result<u32> {
    let pid = busy_retried(|| {
        crate::sigchld::starting(|| nix::spawn::posix_spawn(file, actions, attributes, argv, envp))
            .map_err(io::Error::from)
    })?;
    u32::try_from(pid.as_raw()).map_err(|_| io::ErrorKind::InvalidData.into())
}

/// The pauses before starting a program again that the kernel refused as busy
/// (`ETXTBSY`: a process has it open for writing), in ms: 127 ms in all.
const BUSY_PAUSES_MS: [u64; 7] = [1, 2, 4, 8, 16, 32, 64];

/// Calls `start` again, after a pause, while it fails with `ETXTBSY`, a few times.
///
/// A script that writes a program (`write_file`, a download) and then runs it gets
/// `ETXTBSY` when, at that moment, another thread of prun is starting a command: its
/// child holds a copy of every descriptor of prun, the one the program was written
/// through among them, until it executes its own program and the copies marked
/// close-on-exec close. That lasts microseconds, and prun starts commands on many
/// threads; Go's `os/exec` has the same race (golang/go#22315). A program that really is
/// still being written stays busy through the pauses, and fails saying so.
fn busy_retried<T>(mut start: impl FnMut() -> io::Result<T>) -> io::Result<T> {
    let mut pauses = BUSY_PAUSES_MS.iter();
    loop {
        match start() {
            Err(e) if e.raw_os_error() == Some(nix::libc::ETXTBSY) => match pauses.next() {
                Some(&ms) => std::thread::sleep(std::time::Duration::from_millis(ms)),
                None => return Err(e),
            },
            started => return started,
        }
    }
}

/// The file actions that give a child its streams, and the descriptors they need.
struct FileActions {
    actions: PosixSpawnFileActions,
    /// prun's ends of the child's piped streams, by stream.
    kept: [Option<OwnedFd>; 3],
    /// The child's ends of its pipes, and copies of descriptors that were one of the
    /// three (see [`FileActions::give`]): closed in prun once the child is started.
    held: Vec<OwnedFd>,
}

impl FileActions {
    fn new() -> io::Result<FileActions> {
        Ok(FileActions {
            actions: PosixSpawnFileActions::init()?,
            kept: [None, None, None],
            held: Vec::new(),
        })
    }

    /// Gives the child `stream` as its descriptor `target` (0, 1 or 2).
    fn give(&mut self, stream: Stream<'_>, target: usize) -> Result<(), CommandError> {
        let fd: RawFd = match stream {
            Stream::Inherit => return Ok(()),
            // Copied in the child one after the other: a descriptor that is one of the
            // three could be replaced before it is copied. The standard library keeps
            // 0, 1 and 2 open in prun, so that only prun's own streams are, which are
            // given as `Inherit`.
            Stream::Fd(fd) if fd.as_raw_fd() <= 2 => {
                let copy = fd.try_clone_to_owned().map_err(CommandError::Pipe)?;
                let raw = copy.as_raw_fd();
                self.held.push(copy);
                raw
            }
            Stream::Fd(fd) => fd.as_raw_fd(),
            Stream::Piped => {
                let (read, write) = std::io::pipe().map_err(CommandError::Pipe)?;
                let (child, prun) = if target == 0 {
                    (OwnedFd::from(read), OwnedFd::from(write))
                } else {
                    (OwnedFd::from(write), OwnedFd::from(read))
                };
                let raw = child.as_fd().as_raw_fd();
                self.held.push(child);
                self.kept[target] = Some(prun);
                raw
            }
        };
        let target = RawFd::try_from(target).unwrap_or(RawFd::MAX);
        self.actions
            .add_dup2(fd, target)
            .map_err(|e| CommandError::Pipe(e.into()))
    }
}

/// Starts a command with a working directory of its own through the standard library
/// (see the module's doc), running `file` (see [`find`]): given a name, the standard
/// library would search `PATH` again with `execvp`, and go on past a file that cannot
/// be started.
fn spawn_by_std(
    spec: &CommandSpec,
    file: &Path,
    streams: [Stream<'_>; 3],
    hidden: &[OsString],
) -> Result<Started, CommandError> {
    let mut cmd = spec.command(file)?;
    let [stdin, stdout, stderr] = streams.map(|s| -> io::Result<Stdio> {
        Ok(match s {
            Stream::Inherit => Stdio::inherit(),
            Stream::Fd(fd) => Stdio::from(fd.try_clone_to_owned()?),
            Stream::Piped => Stdio::piped(),
        })
    });
    cmd.stdin(stdin.map_err(CommandError::Pipe)?)
        .stdout(stdout.map_err(CommandError::Pipe)?)
        .stderr(stderr.map_err(CommandError::Pipe)?);
    let mut child = busy_retried(|| crate::sigchld::spawn(&mut cmd, hidden))
        .map_err(|e| spec.spawn_error(e, hidden))?;
    Ok(Started {
        pid: child.id(),
        stdin: child.stdin.take(),
        stdout: child.stdout.take(),
        stderr: child.stderr.take(),
    })
}

#[cfg(test)]
mod tests {
    use std::io::Read;
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    /// A command with `env`, started from a thread that blocks SIGCHLD (as prun's do)
    /// with its stdout piped, through `posix_spawn` or, with a working directory, the
    /// standard library; its pid, output and exit code.
    fn run(
        program: Program,
        env: &[(&str, &str)],
        cwd: Option<&std::path::Path>,
        hidden: &[&str],
    ) -> Result<(u32, String, i32), CommandError> {
        let spec = CommandSpec {
            program,
            env: env
                .iter()
                .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
                .collect(),
            cwd: cwd.map(std::path::Path::to_path_buf),
        };
        let hidden: Vec<OsString> = hidden.iter().map(OsString::from).collect();
        std::thread::scope(|s| {
            s.spawn(|| {
                crate::sigchld::block();
                let null = std::fs::File::open("/dev/null").expect("open /dev/null");
                let streams = [Stream::Fd(null.as_fd()), Stream::Piped, Stream::Inherit];
                let started = spawn(&spec, streams, &Environment::read(&hidden), &hidden)?;
                let mut out = String::new();
                started
                    .stdout
                    .expect("a piped stdout")
                    .read_to_string(&mut out)
                    .expect("read the output");
                let pid = rustix::process::Pid::from_raw(started.pid as i32).expect("a pid");
                let (_, status) =
                    rustix::process::waitpid(Some(pid), rustix::process::WaitOptions::empty())
                        .expect("wait")
                        .expect("a status");
                Ok((started.pid, out, status.exit_status().unwrap_or(-1)))
            })
            .join()
            .expect("the test thread")
        })
    }

    fn shell(text: &str) -> Program {
        Program::Shell(text.to_string())
    }

    /// The bit of `sig` in a `/proc/<pid>/status` signal mask line of `text`.
    fn has_bit(text: &str, field: &str, sig: Signal) -> bool {
        let line = text
            .lines()
            .find_map(|l| l.strip_prefix(field))
            .unwrap_or_else(|| panic!("no {field} line in {text}"));
        let mask = u64::from_str_radix(line.trim(), 16).expect("a hex mask");
        mask & (1 << (sig as u64 - 1)) != 0
    }

    #[test]
    fn both_ways_start_a_group_leader_with_sigchld_unblocked_and_sigpipe_by_default() {
        let dir = tempfile::tempdir().expect("a temp dir");
        for cwd in [None, Some(dir.path())] {
            let argv =
                |words: &[&str]| Program::Argv(words.iter().map(|w| w.to_string()).collect());
            let signals = argv(&["grep", "-E", "^Sig(Blk|Ign):", "/proc/self/status"]);
            let (_, out, code) = run(signals, &[], cwd, &[]).expect("run grep");
            assert_eq!(code, 0, "{out}");
            assert!(!has_bit(&out, "SigBlk:", Signal::SIGCHLD), "{cwd:?}: {out}");
            assert!(!has_bit(&out, "SigIgn:", Signal::SIGPIPE), "{cwd:?}: {out}");
            let group = argv(&["cut", "-d", " ", "-f", "5", "/proc/self/stat"]);
            let (pid, out, _) = run(group, &[], cwd, &[]).expect("run cut");
            assert_eq!(
                out.trim(),
                pid.to_string(),
                "{cwd:?}: in a group of its own"
            );
        }
    }

    #[test]
    fn both_ways_give_the_commands_variables_on_top_less_the_hidden_ones() {
        let dir = tempfile::tempdir().expect("a temp dir");
        for cwd in [None, Some(dir.path())] {
            let env = [
                ("PRUN_SPAWN_SEEN", "first"),
                ("PRUN_SPAWN_SEEN", "last"),
                ("HOME", "/nowhere"),
                ("PRUN_SPAWN_HIDDEN", "secret"),
            ];
            let (_, out, _) = run(
                shell("echo \"$PRUN_SPAWN_SEEN ${HOME-unset} ${PRUN_SPAWN_HIDDEN-unset} ${PATH:+path}\""),
                &env,
                cwd,
                &["HOME", "PRUN_SPAWN_HIDDEN"],
            )
            .expect("run sh");
            assert_eq!(out.trim(), "last unset unset path", "{cwd:?}");
        }
    }

    #[test]
    fn both_ways_look_for_a_program_on_the_commands_own_path() {
        let dir = tempfile::tempdir().expect("a temp dir");
        let tool = dir.path().join("prun-spawn-probe");
        std::fs::write(&tool, "#!/bin/sh\necho found \"$0\"\n").expect("write the tool");
        std::fs::set_permissions(&tool, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        let path = format!("/nonexistent:{}", dir.path().display());
        for cwd in [None, Some(dir.path())] {
            let program = Program::Argv(vec!["prun-spawn-probe".into()]);
            let (_, out, _) = run(program, &[("PATH", &path)], cwd, &[]).expect("run the tool");
            assert_eq!(out.trim(), format!("found {}", tool.display()), "{cwd:?}");
        }
    }

    #[test]
    fn a_relative_or_empty_path_entry_is_looked_up_in_the_commands_directory() {
        let dir = tempfile::tempdir().expect("a temp dir");
        std::fs::create_dir(dir.path().join("bin")).expect("mkdir");
        for name in ["bin/in-bin", "in-dir"] {
            let tool = dir.path().join(name);
            std::fs::write(&tool, "#!/bin/sh\necho ran \"$0\"\n").expect("write the tool");
            std::fs::set_permissions(&tool, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        }
        for (program, path, want) in [
            ("in-bin", "/nonexistent:bin", "ran bin/in-bin"),
            ("in-dir", "/nonexistent:", "ran ./in-dir"),
        ] {
            let program = Program::Argv(vec![program.into()]);
            let (_, out, _) =
                run(program, &[("PATH", path)], Some(dir.path()), &[]).expect("run the tool");
            assert_eq!(out.trim(), want, "PATH={path}");
        }
    }

    #[test]
    fn a_program_on_no_directory_of_the_path_is_not_found_naming_the_path() {
        let dir = tempfile::tempdir().expect("a temp dir");
        let path = dir.path().display().to_string();
        let program = Program::Argv(vec!["prun-no-such-program".into()]);
        match run(program, &[("PATH", &path)], None, &[]) {
            Err(CommandError::NotFound { why, .. }) => {
                assert!(why.contains(&format!("not found on PATH={path}")), "{why}");
            }
            other => panic!("not a NotFound error: {other:?}"),
        }
    }

    /// A start refused as busy is tried again after a pause, a bounded number of times;
    /// any other error is returned at once.
    #[test]
    fn a_start_refused_as_busy_is_tried_again_a_few_times() {
        let busy = || io::Error::from_raw_os_error(nix::libc::ETXTBSY);
        let mut tries = 0;
        let started = busy_retried(|| {
            tries += 1;
            if tries < 3 { Err(busy()) } else { Ok(tries) }
        });
        assert_eq!(started.expect("started on the third try"), 3);
        let mut tries = 0;
        let refused = busy_retried(|| -> io::Result<()> {
            tries += 1;
            Err(busy())
        });
        assert_eq!(
            refused.expect_err("busy").raw_os_error(),
            Some(nix::libc::ETXTBSY)
        );
        assert_eq!(tries, BUSY_PAUSES_MS.len() + 1);
        let mut tries = 0;
        let other = busy_retried(|| -> io::Result<()> {
            tries += 1;
            Err(io::ErrorKind::PermissionDenied.into())
        });
        assert!(other.is_err());
        assert_eq!(tries, 1);
    }

    /// A program still open for writing (here by this test, as a download in progress
    /// would be) fails to start, both ways, saying that it is busy.
    #[test]
    fn a_program_open_for_writing_fails_saying_it_is_busy() {
        let dir = tempfile::tempdir().expect("a temp dir");
        let tool = dir.path().join("prun-busy-probe");
        let mut writing = std::fs::File::create(&tool).expect("create the tool");
        std::io::Write::write_all(&mut writing, b"#!/bin/sh\necho ran\n").expect("write");
        std::fs::set_permissions(&tool, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        let path = dir.path().display().to_string();
        for cwd in [None, Some(dir.path())] {
            let program = Program::Argv(vec!["prun-busy-probe".into()]);
            let err = run(program, &[("PATH", &path)], cwd, &[]).expect_err("busy");
            assert!(
                err.to_string()
                    .contains("is busy: a process still has it open for writing"),
                "{cwd:?}: {err}"
            );
        }
        drop(writing);
    }

    #[test]
    fn a_file_without_execute_permission_is_passed_over_and_denied_when_alone() {
        let first = tempfile::tempdir().expect("a temp dir");
        let second = tempfile::tempdir().expect("a temp dir");
        let plain = first.path().join("tool");
        std::fs::write(&plain, "").expect("write");
        std::fs::set_permissions(&plain, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        std::fs::create_dir(second.path().join("dir")).expect("mkdir");
        let alone = std::env::join_paths([first.path(), second.path()]).expect("a path");
        let err = find("tool", Some(&alone), None).expect_err("not executable");
        assert_eq!(err.raw_os_error(), Some(nix::libc::EACCES));
        let err = find("dir", Some(&alone), None).expect_err("a directory");
        assert_eq!(err.raw_os_error(), Some(nix::libc::EACCES));
        let exe = second.path().join("tool");
        std::fs::write(&exe, "").expect("write");
        std::fs::set_permissions(&exe, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        assert_eq!(find("tool", Some(&alone), None).expect("found"), exe);
        let err = find("missing", Some(&alone), None).expect_err("missing");
        assert_eq!(err.raw_os_error(), Some(nix::libc::ENOENT));
    }

    /// Runs `sh -c text` with its stdout and stderr on `out`, on this thread, to its end.
    fn run_into(text: &str, out: BorrowedFd<'_>) {
        let spec = CommandSpec {
            program: shell(text),
            env: Vec::new(),
            cwd: None,
        };
        let streams = [Stream::Inherit, Stream::Fd(out), Stream::Fd(out)];
        let started = spawn(&spec, streams, &Environment::read(&[]), &[]).expect("spawn");
        let pid = rustix::process::Pid::from_raw(started.pid as i32).expect("a pid");
        rustix::process::waitpid(Some(pid), rustix::process::WaitOptions::empty()).expect("wait");
    }

    #[test]
    fn kept_file_actions_give_whatever_file_has_the_number_now() {
        let dir = tempfile::tempdir().expect("a temp dir");
        let open = |name: &str| std::fs::File::create(dir.path().join(name)).expect("create");
        let read = |name: &str| std::fs::read_to_string(dir.path().join(name)).expect("read");
        std::thread::scope(|s| {
            s.spawn(|| {
                crate::sigchld::block();
                let first = open("first");
                let number = first.as_raw_fd();
                run_into("echo one", first.as_fd());
                // The same number for another file, put there in one step: a test on
                // another thread may take the lowest free number between a close and
                // an open.
                let mut second = std::os::fd::OwnedFd::from(first);
                rustix::io::dup2(open("second"), &mut second).expect("dup2");
                assert_eq!(second.as_raw_fd(), number, "the same descriptor number");
                run_into("echo two; echo err >&2", second.as_fd());
                // More sets of numbers than a thread keeps, then the first again.
                let others: Vec<_> = (0..KEPT_ACTIONS).map(|i| open(&format!("o{i}"))).collect();
                for (i, other) in others.iter().enumerate() {
                    run_into(&format!("echo other {i}"), other.as_fd());
                }
                run_into("echo three", second.as_fd());
            })
            .join()
            .expect("the test thread")
        });
        assert_eq!(read("first"), "one\n");
        assert_eq!(read("second"), "two\nerr\nthree\n");
        for i in 0..KEPT_ACTIONS {
            assert_eq!(read(&format!("o{i}")), format!("other {i}\n"));
        }
    }
}

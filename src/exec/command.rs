//! One command as prun runs it: its program (an argv, or a string for `sh -c`), its
//! environment and working directory, and how it is shown in messages and logs.

use std::fmt;
use std::io;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use thiserror::Error;

/// What to run.
#[derive(Debug, Clone)]
pub(crate) enum Program {
    /// An argv, executed directly.
    Argv(Vec<String>),
    /// A string for `sh -c`.
    Shell(String),
}

/// A command: a program with its environment and working directory.
#[derive(Debug, Clone)]
pub(crate) struct CommandSpec {
    pub program: Program,
    pub env: Vec<(String, String)>,
    pub cwd: Option<PathBuf>,
}

impl CommandSpec {
    /// The name of the program, for messages (`sh` for shell strings).
    pub(crate) fn program_name(&self) -> &str {
        match &self.program {
            Program::Argv(a) => a.first().map_or("", String::as_str),
            Program::Shell(_) => "sh",
        }
    }

    /// A command running `file`, its program as the caller found it on `PATH` (a path,
    /// which no search follows), with the program's own name as `argv[0]`: in its own
    /// process group, with stdin closed unless the caller sets it, and `PWD` naming its
    /// working directory when it has one.
    /// Its child is awaited as a [`super::unix::Child`].
    pub(crate) fn command(&self, file: &Path) -> Result<Command, CommandError> {
        let mut cmd = Command::new(file);
        match &self.program {
            Program::Argv(argv) => {
                let Some(program) = argv.first() else {
                    return Err(CommandError::Empty);
                };
                cmd.arg0(program).args(&argv[1..]);
            }
            Program::Shell(s) => {
                cmd.arg("-c").arg(s);
            }
        }
        cmd.process_group(0).stdin(Stdio::null());
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        if let Some(dir) = &self.cwd {
            cmd.current_dir(dir);
            // As `cd dir` leaves it: a program that reads `$PWD` instead of asking the
            // kernel finds the directory it runs in, not prun's.
            if !self.env.iter().any(|(k, _)| k == "PWD")
                && let Ok(dir) = std::path::absolute(dir)
            {
                cmd.env("PWD", dir);
            }
        }
        Ok(cmd)
    }

    /// Checks what the command passes to the kernel: a variable name of `env` that is
    /// empty or holds `=` would set another variable than the one named (`"A=B": "x"`
    /// sets `A` to `B=x`, past a policy's rule on `A`), a NUL byte (in a name, a value, an
    /// argument or a shell string) cannot be passed at all, and an empty program name
    /// names no program (it is not one missing from `PATH`).
    pub(crate) fn check_env(&self) -> Result<(), CommandError> {
        let bad = |why: String| CommandError::Env {
            why,
            command: crate::shown::command(self),
        };
        match &self.program {
            Program::Argv(argv) => {
                if argv.first().is_some_and(String::is_empty) {
                    return Err(bad("the program name is an empty string".into()));
                }
                if let Some(i) = argv.iter().position(|a| a.contains('\0')) {
                    return Err(bad(format!("argument {i} holds a NUL byte")));
                }
            }
            Program::Shell(s) if s.contains('\0') => {
                return Err(bad("the shell string holds a NUL byte".into()));
            }
            Program::Shell(_) => {}
        }
        for (name, value) in &self.env {
            if name.is_empty() || name.contains(['=', '\0']) {
                return Err(bad(format!(
                    "environment variable name {name:?} is not valid: a name is not empty and holds no `=` or NUL byte"
                )));
            }
            if value.contains('\0') {
                return Err(bad(format!(
                    "the value of environment variable {name} holds a NUL byte"
                )));
            }
        }
        Ok(())
    }

    /// Why the kernel found no program to run (`execve` said `ENOENT`): it is in no
    /// directory of the `PATH` the command was given (named, since cron's is short), it
    /// is a path that does not exist, or it exists but the interpreter of its `#!` line
    /// (or the loader of a binary) does not.
    /// `hidden` are the variables of prun's environment the command did not inherit (a
    /// policy's): a hidden `PATH` is not shown.
    fn why_not_found(&self, hidden: &[std::ffi::OsString]) -> String {
        let program = self.program_name();
        let own = self.env.iter().rev().find(|(k, _)| k == "PATH");
        if own.is_none() && hidden.iter().any(|h| h == "PATH") {
            return "not found: the policy hides PATH from commands (--deny-env)".into();
        }
        let path = self.search_path();
        let found = self.candidates(path.as_ref()).find(|p| p.is_file());
        match (found, path) {
            (Some(file), _) => match interpreter(&file) {
                Some(i) => format!(
                    "cannot be started: {} names the interpreter \"{}\" on its `#!` line, which does not exist{}",
                    file.display(),
                    crate::shown::visible(&i),
                    if i.ends_with('\r') {
                        ": the script has Windows line endings (CRLF); convert it with `dos2unix` or `sed -i 's/\\r$//'`"
                    } else {
                        ""
                    }
                ),
                None => format!(
                    "cannot be started: {} exists, but the loader it needs does not (a binary built for another system?)",
                    file.display()
                ),
            },
            (None, _) if program.contains('/') => "does not exist".into(),
            (None, Some(path)) => format!(
                "not found on PATH={}{}",
                path.to_string_lossy(),
                words_in_one(program)
            ),
            (None, None) => format!(
                "not found: {}{}",
                not_on_default_path(),
                words_in_one(program)
            ),
        }
    }

    /// The `PATH` the command is given: its own `env`'s, else prun's.
    fn search_path(&self) -> Option<std::ffi::OsString> {
        let own = self.env.iter().rev().find(|(k, _)| k == "PATH");
        own.map(|(_, v)| std::ffi::OsString::from(v))
            .or_else(|| std::env::var_os("PATH"))
    }

    /// The files `execvp` tries for the program, in order: a path with a `/` (relative
    /// to the child's working directory), else the program in each directory of `path`
    /// ([`DEFAULT_SEARCH_PATH`] when it is not set).
    fn candidates(
        &self,
        path: Option<&std::ffi::OsString>,
    ) -> Box<dyn Iterator<Item = PathBuf> + '_> {
        let program = self.program_name();
        if program.contains('/') {
            let file = self
                .cwd
                .as_deref()
                .map_or(PathBuf::from(program), |d| d.join(program));
            return Box::new(std::iter::once(file));
        }
        let files: Vec<PathBuf> = on_path(program, path.map(|p| p.as_os_str())).collect();
        Box::new(files.into_iter())
    }

    /// Why `execve` refused the program (`EACCES`): it is a directory, or a file without
    /// execute permission (naming the file found on `PATH`), or a directory of `PATH` may
    /// not be searched. `None` when it is none of these (a directory on the way to a path
    /// that cannot be searched, a `noexec` mount).
    fn why_denied(&self, hidden: &[std::ffi::OsString]) -> Option<String> {
        let on_path = !self.program_name().contains('/');
        let own_path = self.env.iter().any(|(k, _)| k == "PATH");
        if on_path && !own_path && hidden.iter().any(|h| h == "PATH") {
            return None;
        }
        let path = self.search_path();
        let Some(file) = self.candidates(path.as_ref()).find(|p| p.exists()) else {
            return self.unsearchable(path.as_ref());
        };
        let what = if file.is_dir() {
            "is a directory".to_string()
        } else {
            use std::os::unix::fs::PermissionsExt;
            nix::unistd::access(&file, nix::unistd::AccessFlags::X_OK).err()?;
            let mode = file.metadata().ok()?.permissions().mode() & 0o7777;
            format!("has mode {mode:04o}")
        };
        Some(if on_path {
            format!("is not executable: {} on PATH {what}", file.display())
        } else {
            format!("is not executable: it {what}")
        })
    }

    /// Why a program named without a `/` was refused (`EACCES`) where no file of that
    /// name was seen: a directory of `path` this user may not search, which may hold it.
    fn unsearchable(&self, path: Option<&std::ffi::OsString>) -> Option<String> {
        if self.program_name().contains('/') {
            return None;
        }
        let dir = self
            .candidates(path)
            .filter_map(|p| p.parent().map(Path::to_path_buf))
            .find(|d| {
                nix::unistd::access(d, nix::unistd::AccessFlags::X_OK)
                    == Err(nix::errno::Errno::EACCES)
            })?;
        Some(format!(
            "cannot be looked for: {} on PATH may not be searched by this user",
            dir.display()
        ))
    }

    /// Why `execve` said `E2BIG` (`Argument list too long`), which names neither limit:
    /// one argument longer than the kernel takes (`MAX_ARG_STRLEN`, 32 pages), or all of
    /// them with the environment over `ARG_MAX`.
    fn why_too_long(&self) -> String {
        use nix::unistd::{SysconfVar, sysconf};
        let page = sysconf(SysconfVar::PAGE_SIZE)
            .ok()
            .flatten()
            .unwrap_or(4096);
        let one = usize::try_from(page).unwrap_or(4096) * 32;
        let words: Vec<&str> = match &self.program {
            Program::Argv(argv) => argv.iter().map(String::as_str).collect(),
            Program::Shell(s) => vec!["/bin/sh", "-c", s],
        };
        if let Some((i, w)) = words.iter().enumerate().find(|(_, w)| w.len() >= one) {
            let what = match self.program {
                Program::Argv(_) => format!("argument {i}"),
                Program::Shell(_) => "the shell string".to_string(),
            };
            return format!(
                "{what} is {} bytes long, more than the {one} the kernel takes in one argument (pass it in a file or on stdin)",
                w.len()
            );
        }
        let strings = |n: usize| n + 1 + std::mem::size_of::<usize>();
        let args: usize = words.iter().map(|w| strings(w.len())).sum();
        let env: usize = std::env::vars_os()
            .map(|(k, v)| strings(k.len() + 1 + v.len()))
            .chain(self.env.iter().map(|(k, v)| strings(k.len() + 1 + v.len())))
            .sum();
        let limit = sysconf(SysconfVar::ARG_MAX)
            .ok()
            .flatten()
            .map_or_else(|| "ARG_MAX".to_string(), |n| format!("{n} bytes (ARG_MAX)"));
        format!(
            "its arguments and environment take {} bytes, more than the kernel's limit of {limit} (pass them in a file or on stdin, or split the work)",
            args + env
        )
    }

    /// The error for a failed spawn, naming a missing program or directory. `hidden` are
    /// the variables of prun's environment the command did not inherit.
    pub(crate) fn spawn_error(
        &self,
        source: io::Error,
        hidden: &[std::ffi::OsString],
    ) -> CommandError {
        if let Some(dir) = self.cwd.as_ref().filter(|d| !d.is_dir()) {
            return CommandError::NoDir {
                dir: dir.clone(),
                command: crate::shown::command(self),
            };
        }
        if let Some(dir) = &self.cwd
            && let Err(errno) = nix::unistd::access(dir, nix::unistd::AccessFlags::X_OK)
        {
            return CommandError::DirDenied {
                dir: dir.clone(),
                why: errno.desc(),
                command: crate::shown::command(self),
            };
        }
        if source.kind() == io::ErrorKind::NotFound && matches!(self.program, Program::Argv(_)) {
            return CommandError::NotFound {
                program: self.program_name().to_string(),
                why: self.why_not_found(hidden),
                command: crate::shown::command(self),
            };
        }
        if source.kind() == io::ErrorKind::PermissionDenied
            && matches!(self.program, Program::Argv(_))
            && let Some(why) = self.why_denied(hidden)
        {
            return CommandError::CannotExecute {
                program: self.program_name().to_string(),
                why,
                command: crate::shown::command(self),
            };
        }
        if source.raw_os_error() == Some(nix::libc::ETXTBSY) {
            // Started again a few times first (see `spawn::busy_retried`).
            return CommandError::CannotExecute {
                program: self.program_name().to_string(),
                why: "is busy: a process still has it open for writing (text file busy)".into(),
                command: crate::shown::command(self),
            };
        }
        if source.raw_os_error() == Some(nix::libc::E2BIG) {
            return CommandError::TooLong {
                why: self.why_too_long(),
                command: crate::shown::command(self),
            };
        }
        if source.raw_os_error() == Some(nix::libc::ENOEXEC) {
            // A shell would run it with `sh`; `execve` does not.
            return CommandError::NotExecutable {
                program: self.program_name().to_string(),
                command: crate::shown::command(self),
            };
        }
        CommandError::Spawn {
            command: crate::shown::command(self),
            source,
        }
    }
}

impl fmt::Display for CommandSpec {
    /// The command as a line that can be pasted into a shell, with secrets hidden
    /// (`crate::redact`): every message and log shows commands through here.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use crate::redact::redact;
        match &self.program {
            Program::Argv(argv) => {
                // Each word is redacted before it is quoted: quoted, a secret holding a
                // `'` would no longer match its plain text.
                for (i, a) in argv.iter().enumerate() {
                    if i > 0 {
                        f.write_str(" ")?;
                    }
                    let a = redact(a);
                    // A word with a terminal's control characters is shown as `$'...'`,
                    // so that a file name holding an escape sequence does not reach the
                    // terminal through a message.
                    match (crate::shown::c_quoted(&a), shlex::try_quote(&a)) {
                        (Some(q), _) => f.write_str(&q)?,
                        (None, Ok(q)) => f.write_str(&q)?,
                        (None, Err(_)) => write!(f, "{a:?}")?,
                    }
                }
                Ok(())
            }
            // A shell string's control characters are written out (`\e`): the line can
            // no longer be pasted as it is, but nothing in it acts on the terminal.
            Program::Shell(s) => f.write_str(&crate::shown::visible(&redact(s))),
        }
    }
}

/// A command could not be run, or its input or output could not be set up.
#[derive(Debug, Error)]
pub(crate) enum CommandError {
    #[error("program \"{program}\" {why} (command: `{command}`)")]
    NotFound {
        program: String,
        why: String,
        command: String,
    },
    /// The program is a directory, a file without execute permission, or one still open
    /// for writing: `why` says which.
    #[error("program \"{program}\" {why} (command: `{command}`)")]
    CannotExecute {
        program: String,
        why: String,
        command: String,
    },
    #[error(
        "program \"{program}\" cannot be executed: it is neither a binary for this machine nor a script with a `#!` line (run a script without one as [\"sh\", \"{program}\"]; command: `{command}`)"
    )]
    NotExecutable { program: String, command: String },
    /// The kernel refused the arguments as too long: `why` names the limit.
    #[error("{why} (command: `{command}`)")]
    TooLong { why: String, command: String },
    #[error("working directory {} {} (command: `{command}`)", dir.display(), if dir.exists() { "is not a directory" } else { "does not exist" })]
    NoDir { dir: PathBuf, command: String },
    #[error("working directory {} cannot be entered: {why} (command: `{command}`)", dir.display())]
    DirDenied {
        dir: PathBuf,
        why: &'static str,
        command: String,
    },
    #[error("{why} (command: `{command}`)")]
    Env { why: String, command: String },
    #[error("failed to start `{command}`: {source}")]
    Spawn {
        command: String,
        #[source]
        source: io::Error,
    },
    #[error("{what} {} cannot be opened: {} (command: `{command}`)", path.display(), reason(source))]
    File {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
        command: String,
    },
    #[error("failed to wait for `{command}`: {source}")]
    Wait {
        command: String,
        #[source]
        source: io::Error,
    },
    #[error("failed to create a pipe: {0}")]
    Pipe(#[source] io::Error),
    #[error("the command is empty")]
    Empty,
    /// The run ended on an internal error before the command started: it never will.
    #[error("not started: the run ended on an internal error (command: `{command}`)")]
    RunEnded { command: String },
    /// An executor could not run the command (a lost connection, a refused job, a
    /// command it cannot carry); the message names the executor and the host or job.
    #[error("{message} (command: `{command}`)")]
    Remote { message: String, command: String },
}

impl CommandError {
    /// True when the command could not start for lack of file descriptors (`EMFILE`,
    /// `ENFILE`) or, for a spawn, of processes (`EAGAIN`): a shortage that passes once
    /// other jobs end (see [`super::launch::wait_for_fds`]).
    pub(crate) fn resources_short(&self) -> bool {
        use super::unix::fds_short;
        match self {
            CommandError::Spawn { source, .. } => {
                fds_short(source) || source.raw_os_error() == Some(nix::libc::EAGAIN)
            }
            CommandError::Pipe(source) | CommandError::File { source, .. } => fds_short(source),
            _ => false,
        }
    }

    /// The same error for stage `i` (from 0) of the pipe `whole` of `n` stages: it names
    /// the pipe and the stage, as a stage that fails is named.
    pub(crate) fn in_stage(mut self, i: usize, n: usize, whole: &str) -> CommandError {
        if n < 2 {
            return self;
        }
        let command = match &mut self {
            CommandError::NotFound { command, .. }
            | CommandError::CannotExecute { command, .. }
            | CommandError::NotExecutable { command, .. }
            | CommandError::TooLong { command, .. }
            | CommandError::NoDir { command, .. }
            | CommandError::DirDenied { command, .. }
            | CommandError::Env { command, .. }
            | CommandError::Spawn { command, .. }
            | CommandError::File { command, .. }
            | CommandError::Wait { command, .. }
            | CommandError::Remote { command, .. } => command,
            CommandError::Pipe(_) | CommandError::Empty | CommandError::RunEnded { .. } => {
                return self;
            }
        };
        *command = format!("{whole}`, stage {} of {n}: `{command}", i + 1);
        self
    }

    /// The same error, but one that [`CommandError::resources_short`] no longer waits out.
    pub(crate) fn final_error(self) -> CommandError {
        let last = |source: io::Error| io::Error::new(source.kind(), source.to_string());
        match self {
            CommandError::Spawn { command, source } => CommandError::Spawn {
                command,
                source: last(source),
            },
            CommandError::Pipe(source) => CommandError::Pipe(last(source)),
            CommandError::File {
                what,
                path,
                source,
                command,
            } => CommandError::File {
                what,
                path,
                source: last(source),
                command,
            },
            e => e,
        }
    }
}

/// An I/O error as the C library words it (`Permission denied`), without Rust's
/// `(os error 13)`.
pub(crate) fn reason(e: &io::Error) -> String {
    e.raw_os_error().map_or_else(
        || e.to_string(),
        |n| nix::errno::Errno::from_raw(n).desc().to_string(),
    )
}

/// The interpreter a script's `#!` line names, if it has one.
fn interpreter(file: &Path) -> Option<String> {
    use std::io::Read;
    let mut head = [0u8; 256];
    let n = std::fs::File::open(file).ok()?.read(&mut head).ok()?;
    let line = head[..n].strip_prefix(b"#!")?;
    let line = line.split(|&b| b == b'\n').next()?;
    let text = String::from_utf8_lossy(line);
    // As the kernel reads it: blanks around, and between it and its argument, are spaces
    // and tabs only; a carriage return (a file saved with Windows line endings) is part
    // of the interpreter's name.
    text.split([' ', '\t'])
        .find(|w| !w.is_empty())
        .map(str::to_string)
}

/// Where a command that has no `PATH` finds a program by name: the C library's default
/// search path (`execvp` without `PATH`).
#[cfg(not(target_env = "musl"))]
pub(crate) const DEFAULT_SEARCH_PATH: &str = "/bin:/usr/bin";
#[cfg(target_env = "musl")]
pub(crate) const DEFAULT_SEARCH_PATH: &str = "/usr/local/bin:/bin:/usr/bin";

/// For a program name holding blanks (`cmd: ["echo hi"]`), what was likely meant: a
/// command's words are separate items, and a command line is a `shell` string.
fn words_in_one(program: &str) -> &'static str {
    if program.trim().contains(char::is_whitespace) {
        "; a program's name and its arguments are separate words (cmd: [\"echo\", \"hi\"]), and a command line goes in shell: \"...\""
    } else {
        ""
    }
}

/// Why a program named without a `/` is not found when `PATH` is not set.
pub(crate) fn not_on_default_path() -> String {
    format!("PATH is not set, and the default search path ({DEFAULT_SEARCH_PATH}) does not have it")
}

/// Resolves a program name on `path` (a `PATH` value; `None` when it is not set: the C
/// library's default, [`DEFAULT_SEARCH_PATH`]) the way `execvp` would in a command working
/// in `cwd` (relative to prun's; `None`: prun's own), where a path with a `/` and a
/// relative entry of `path` lead. A relative file found in `cwd` is given as an absolute
/// path, which names it from prun's directory as well as from the command's.
pub(crate) fn which(
    program: &str,
    path: Option<&std::ffi::OsStr>,
    cwd: Option<&Path>,
) -> Option<PathBuf> {
    let from_cwd = |p: PathBuf| match cwd {
        Some(dir) if p.is_relative() => {
            let full = std::env::current_dir()
                .unwrap_or_default()
                .join(dir)
                .join(p);
            full.components()
                .filter(|c| *c != std::path::Component::CurDir)
                .collect()
        }
        _ => p,
    };
    if program.contains('/') {
        let p = from_cwd(PathBuf::from(program));
        return may_execute(&p).then_some(p);
    }
    on_path(program, path)
        .map(from_cwd)
        .find(|p| may_execute(p))
}

/// The files a program named without a `/` is looked for as, in order, as `execvp` does:
/// `program` in each directory of `path` (a `PATH` value; the C library's default,
/// [`DEFAULT_SEARCH_PATH`], when `None`). A relative directory is relative to the
/// command's working directory, and an empty entry is that directory: `./program`, so
/// that every file given holds a `/`. The one walk of `PATH` that starting a command,
/// the policy, the `which` helper and the messages of a program not found all take.
pub(crate) fn on_path<'a>(
    program: &'a str,
    path: Option<&'a std::ffi::OsStr>,
) -> impl Iterator<Item = PathBuf> + 'a {
    let path = path.unwrap_or(std::ffi::OsStr::new(DEFAULT_SEARCH_PATH));
    std::env::split_paths(path).map(move |d| {
        if d.as_os_str().is_empty() {
            Path::new(".").join(program)
        } else {
            d.join(program)
        }
    })
}

/// Whether `p` is a regular file this process may execute, as `execvp` finds out by
/// trying it (and goes on to the next directory of `PATH` when it may not): an execute
/// bit for its owner only does not make another user's file executable by this one.
pub(crate) fn may_execute(p: &Path) -> bool {
    p.is_file() && nix::unistd::access(p, nix::unistd::AccessFlags::X_OK).is_ok()
}

//! Running one command: spawning it in its own process group, capturing or streaming its
//! output, and ending it (and everything it started) on timeout or cancellation.
//!
//! Ending a command is always the same sequence: SIGTERM to the group, up to `kill_grace`
//! for the leader to exit, then SIGKILL to the group (which also takes down grandchildren
//! that ignored SIGTERM). When a command exits on its own but left processes behind in its
//! group (`sh -c 'daemon &'`), those are ended the same way: nothing a script starts
//! survives the command that started it.

use std::fmt;
use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use thiserror::Error;
use tokio::io::AsyncReadExt;
use tokio::process::{Child, Command};
use tokio_util::sync::CancellationToken;

use super::unix;

/// What to run.
#[derive(Debug, Clone)]
pub enum Program {
    /// An argv, executed directly.
    Argv(Vec<String>),
    /// A string for `sh -c`.
    Shell(String),
}

/// A command with its options.
#[derive(Debug, Clone)]
pub struct CommandSpec {
    pub program: Program,
    pub env: Vec<(String, String)>,
    pub cwd: Option<PathBuf>,
    pub timeout: Option<Duration>,
    pub kill_grace: Duration,
}

impl CommandSpec {
    /// A command with default options.
    pub fn new(program: Program) -> CommandSpec {
        CommandSpec {
            program,
            env: Vec::new(),
            cwd: None,
            timeout: None,
            kill_grace: Duration::from_secs(5),
        }
    }

    fn command(&self) -> Command {
        let mut cmd = match &self.program {
            Program::Argv(argv) => {
                let mut c = Command::new(&argv[0]);
                c.args(&argv[1..]);
                c
            }
            Program::Shell(s) => {
                let mut c = Command::new("/bin/sh");
                c.arg("-c").arg(s);
                c
            }
        };
        cmd.process_group(0).stdin(Stdio::null());
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        if let Some(dir) = &self.cwd {
            cmd.current_dir(dir);
        }
        cmd
    }
}

impl fmt::Display for CommandSpec {
    /// The command as a line that can be pasted into a shell.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.program {
            Program::Argv(argv) => {
                let quoted: Vec<String> = argv
                    .iter()
                    .map(|a| {
                        shlex::try_quote(a).map_or_else(|_| format!("{a:?}"), |q| q.into_owned())
                    })
                    .collect();
                f.write_str(&quoted.join(" "))
            }
            Program::Shell(s) => f.write_str(s),
        }
    }
}

/// A command could not be run or did not finish on its own.
#[derive(Debug, Error)]
pub enum CommandError {
    #[error("program \"{program}\" not found (command: {command})")]
    NotFound { program: String, command: String },
    #[error("failed to start {command}: {source}")]
    Spawn {
        command: String,
        #[source]
        source: io::Error,
    },
    #[error("failed to wait for {command}: {source}")]
    Wait {
        command: String,
        #[source]
        source: io::Error,
    },
    #[error("the command is empty")]
    Empty,
}

/// How a command ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    /// It exited on its own.
    Exited,
    /// Its timeout elapsed and it was terminated.
    TimedOut,
    /// The run was aborted (Ctrl-C, `--fail-fast`) and it was terminated.
    Cancelled,
}

/// The result of a finished command.
#[derive(Debug, Clone)]
pub struct CommandOutput {
    pub code: Option<i32>,
    pub signal: Option<i32>,
    pub stdout: String,
    pub stderr: String,
    pub duration: Duration,
    pub ending: Ending,
}

impl CommandOutput {
    /// "exited with code 3", "was killed by SIGKILL", "timed out after 2s".
    pub fn describe(&self, timeout: Option<Duration>) -> String {
        match (self.ending, self.code, self.signal) {
            (Ending::TimedOut, ..) => format!(
                "timed out after {}",
                humantime::format_duration(timeout.unwrap_or_default())
            ),
            (Ending::Cancelled, ..) => "was terminated because the run was aborted".into(),
            (_, Some(c), _) => format!("exited with code {c}"),
            (_, None, Some(s)) => format!("was killed by {}", unix::signal_name(s)),
            _ => "ended without an exit status".into(),
        }
    }
}

/// A log file shared by the output readers of one command.
pub type SharedLog = Arc<Mutex<File>>;

/// Writes the header that precedes a command's output in a log.
pub fn write_header(log: &mut File, spec: &CommandSpec) -> io::Result<()> {
    let now = humantime::format_rfc3339_millis(std::time::SystemTime::now());
    writeln!(log, "$ {spec}")?;
    writeln!(log, "# started {now}")
}

/// Writes the line that follows a command's output in a log.
pub fn write_footer(log: &mut File, out: &CommandOutput, spec: &CommandSpec) -> io::Result<()> {
    writeln!(
        log,
        "# {} ({:.3}s)",
        out.describe(spec.timeout),
        out.duration.as_secs_f64()
    )
}

fn spawn(spec: &CommandSpec, mut cmd: Command) -> Result<Child, CommandError> {
    if matches!(&spec.program, Program::Argv(a) if a.is_empty()) {
        return Err(CommandError::Empty);
    }
    cmd.spawn().map_err(|source| {
        if source.kind() == io::ErrorKind::NotFound
            && let Program::Argv(argv) = &spec.program
        {
            let cwd_missing = spec.cwd.as_ref().is_some_and(|d| !d.is_dir());
            if !cwd_missing {
                return CommandError::NotFound {
                    program: argv[0].clone(),
                    command: spec.to_string(),
                };
            }
        }
        CommandError::Spawn {
            command: spec.to_string(),
            source,
        }
    })
}

/// Runs a command with its output going straight into `log` (no copy through prun).
pub async fn run_to_file(
    spec: &CommandSpec,
    cancel: &CancellationToken,
    log: File,
) -> Result<CommandOutput, CommandError> {
    let mut cmd = spec.command();
    let err = log.try_clone().map_err(|source| CommandError::Spawn {
        command: spec.to_string(),
        source,
    })?;
    cmd.stdout(Stdio::from(log)).stderr(Stdio::from(err));
    let started = Instant::now();
    let mut child = spawn(spec, cmd)?;
    let (status, ending) = supervise(spec, &mut child, cancel).await?;
    Ok(output(
        status,
        ending,
        started,
        String::new(),
        String::new(),
    ))
}

/// Keeps at most the last `cap` bytes written to it, and counts what it dropped.
#[derive(Debug, Default)]
struct Capture {
    buf: Vec<u8>,
    dropped: u64,
    cap: usize,
}

impl Capture {
    fn push(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
        if self.buf.len() > self.cap {
            let cut = self.buf.len() - self.cap;
            self.buf.drain(..cut);
            self.dropped += cut as u64;
        }
    }

    fn into_string(self) -> String {
        let text = String::from_utf8_lossy(&self.buf).into_owned();
        if self.dropped == 0 {
            return text;
        }
        format!(
            "[prun: {} earlier bytes dropped from the capture; the log has everything]\n{text}",
            self.dropped
        )
    }
}

/// The default capture bound per stream.
pub const CAPTURE_LIMIT: usize = 4 * 1024 * 1024;

/// Runs a command, capturing stdout and stderr (bounded, keeping the tail) and copying
/// both into `log` when one is given.
pub async fn run_captured(
    spec: &CommandSpec,
    cancel: &CancellationToken,
    log: Option<SharedLog>,
) -> Result<CommandOutput, CommandError> {
    let mut cmd = spec.command();
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let started = Instant::now();
    let mut child = spawn(spec, cmd)?;
    let out = child.stdout.take().expect("piped stdout");
    let err = child.stderr.take().expect("piped stderr");
    let out_task = tokio::spawn(read_stream(out, log.clone()));
    let err_task = tokio::spawn(read_stream(err, log));
    let (status, ending) = supervise(spec, &mut child, cancel).await?;
    let stdout = out_task.await.map(Capture::into_string).unwrap_or_default();
    let stderr = err_task.await.map(Capture::into_string).unwrap_or_default();
    Ok(output(status, ending, started, stdout, stderr))
}

async fn read_stream(mut r: impl AsyncReadExt + Unpin, log: Option<SharedLog>) -> Capture {
    let mut cap = Capture {
        cap: CAPTURE_LIMIT,
        ..Capture::default()
    };
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match r.read(&mut buf).await {
            Ok(0) | Err(_) => return cap,
            Ok(n) => {
                if let Some(log) = &log {
                    let _ = log.lock().expect("log").write_all(&buf[..n]);
                }
                cap.push(&buf[..n]);
            }
        }
    }
}

fn output(
    status: ExitStatus,
    ending: Ending,
    started: Instant,
    stdout: String,
    stderr: String,
) -> CommandOutput {
    CommandOutput {
        code: status.code(),
        signal: unix::exit_signal(&status),
        stdout,
        stderr,
        duration: started.elapsed(),
        ending,
    }
}

/// Waits for the child while watching its timeout and the cancellation token; ends the
/// whole process group in every case.
async fn supervise(
    spec: &CommandSpec,
    child: &mut Child,
    cancel: &CancellationToken,
) -> Result<(ExitStatus, Ending), CommandError> {
    let pgid = child.id().expect("a spawned child has a pid") as i32;
    unix::register(pgid);
    let timeout = async {
        match spec.timeout {
            Some(t) => tokio::time::sleep(t).await,
            None => std::future::pending().await,
        }
    };
    let result = tokio::select! {
        status = child.wait() => status.map(|s| (s, Ending::Exited)),
        () = timeout => terminate(child, pgid, spec.kill_grace).await.map(|s| (s, Ending::TimedOut)),
        () = cancel.cancelled() => terminate(child, pgid, spec.kill_grace).await.map(|s| (s, Ending::Cancelled)),
    };
    // After `terminate` the group has had SIGKILL; only a command that exited on its own
    // can have left live processes behind.
    if matches!(result, Ok((_, Ending::Exited))) && unix::group_alive(pgid) {
        end_leftovers(pgid, spec.kill_grace).await;
    }
    unix::unregister(pgid);
    result.map_err(|source| CommandError::Wait {
        command: spec.to_string(),
        source,
    })
}

async fn terminate(child: &mut Child, pgid: i32, grace: Duration) -> io::Result<ExitStatus> {
    unix::term_group(pgid);
    if let Ok(status) = tokio::time::timeout(grace, child.wait()).await {
        unix::kill_group(pgid);
        return status;
    }
    unix::kill_group(pgid);
    child.wait().await
}

/// Ends processes left in a group whose leader has exited: SIGTERM, then SIGKILL once
/// `grace` has passed. The leader is gone, so nothing can be awaited; the group is polled.
async fn end_leftovers(pgid: i32, grace: Duration) {
    unix::term_group(pgid);
    let deadline = Instant::now() + grace;
    while unix::group_alive(pgid) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    unix::kill_group(pgid);
}

/// The path of the program a command would run, for messages.
pub fn program_name(spec: &CommandSpec) -> &str {
    match &spec.program {
        Program::Argv(a) => a.first().map_or("", |s| s.as_str()),
        Program::Shell(_) => "/bin/sh",
    }
}

/// Resolves a program name on `PATH` the way `execvp` would.
pub fn which(program: &str) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let is_exec = |p: &Path| {
        p.is_file()
            && p.metadata()
                .map(|m| m.permissions().mode() & 0o111 != 0)
                .unwrap_or(false)
    };
    if program.contains('/') {
        let p = PathBuf::from(program);
        return is_exec(&p).then_some(p);
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(program))
        .find(|p| is_exec(p))
}

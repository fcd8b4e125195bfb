//! Launching commands: one command or a pipeline of them, with its input and outputs
//! wired as asked, supervised until it ends.
//!
//! Every command goes through a [`Launcher`]: [`Local`] runs it on this machine, the
//! executors of `super::executor` on SSH hosts or as Slurm jobs (through a local `ssh` or
//! `srun` launched here).
//!
//! Ending a launch early (timeout, `--fail-fast`, Ctrl-C) is always the same sequence:
//! SIGTERM to every stage's process group, up to `kill_grace` for them to exit, then
//! SIGKILL to the groups (which also takes down grandchildren that ignored SIGTERM). When
//! a command exits on its own but left processes behind in its group (`sh -c 'daemon &'`),
//! those are ended the same way (a pipe's stage's as soon as that stage exits): nothing a
//! script starts outlives the command that started it. Data between the stages of a pipeline flows through OS pipes, never
//! through prun.

use std::fmt;
use std::fs::File;
use std::future::Future;
use std::io::{self, Write};
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::process::ExitStatus;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::command::{CommandError, CommandSpec, Program};
use super::policy::Policy;
use super::spawn::{self, Environment, Stream};
use super::tap::{Lines, Tap};
use super::unix::{self, Child};

/// Where the first stage's stdin comes from.
#[derive(Debug, Clone, Default)]
pub(crate) enum Input {
    /// `/dev/null`.
    #[default]
    Null,
    /// These bytes, then end of file.
    Bytes(Vec<u8>),
    /// A file.
    File(PathBuf),
    /// prun's own stdin (an interactive proc's terminal). When it is a terminal, the first
    /// stage is made its foreground process group while the launch runs, so that it can
    /// read it (see [`unix::Foreground`]).
    Inherit,
    /// A pipe that stays open, with nothing written, until the command ends: a remote
    /// command's wrapper ends the command when it closes. A launch ended early closes it
    /// first and waits up to the kill grace (and [`HELD_MARGIN`]) for the client to exit
    /// before terminating it, so that the remote command has ended when the launch returns.
    Held,
}

/// Where an output stream goes.
#[derive(Debug, Default)]
pub(crate) enum Sink {
    /// Read by prun: kept in memory (bounded, the tail wins) and copied to the log.
    #[default]
    Capture,
    /// Streamed by the child straight into this file (created or truncated).
    File(PathBuf),
    /// Streamed by the child straight into this open file (a command body's log). Shared:
    /// both streams of a command body name the same file, which each stage is given a
    /// duplicate of when it is spawned.
    Fd(Arc<File>),
    /// Read by prun and written to the launch's log (and its tap) as it comes; not kept.
    /// When both streams are `Log`, they share one pipe, so the log has them in the order
    /// they were written, as `2>&1` does.
    Log,
    /// prun's own stdout or stderr (an interactive proc's terminal).
    Inherit,
}

/// A log file that knows whether its last line is complete, so that prun's own lines
/// (a command's footer) always start on a line of their own.
#[derive(Debug)]
pub(crate) struct LogWriter {
    file: File,
    at_line_start: bool,
}

impl LogWriter {
    /// Wraps a log opened for appending.
    pub(crate) fn new(file: File) -> LogWriter {
        LogWriter {
            file,
            at_line_start: true,
        }
    }

    /// Appends one of prun's own lines to a log of `len` bytes that a child wrote into
    /// through its own descriptors, on a line of its own: whether the child's last line
    /// is complete is read from the file.
    pub(crate) fn line_after_child(mut file: &File, len: u64, text: &str) -> io::Result<()> {
        use std::os::unix::fs::FileExt;
        let mut last = [b'\n'];
        if len > 0 {
            let _ = file.read_exact_at(&mut last, len - 1);
        }
        let sep = if last[0] == b'\n' { "" } else { "\n" };
        file.write_all(format!("{sep}{text}\n").as_bytes())
    }

    /// The log file, to read back what was written.
    pub(crate) fn file(&self) -> &File {
        &self.file
    }

    /// Appends output bytes.
    pub(crate) fn write(&mut self, data: &[u8]) -> io::Result<()> {
        if let Some(&last) = data.last() {
            self.at_line_start = last == b'\n';
        }
        self.file.write_all(data)
    }

    /// Appends one of prun's own lines, on a line of its own.
    pub(crate) fn line(&mut self, text: &str) -> io::Result<()> {
        let sep = if self.at_line_start { "" } else { "\n" };
        self.at_line_start = true;
        self.file.write_all(format!("{sep}{text}\n").as_bytes())
    }
}

/// A log shared by the output readers of a launch.
pub(crate) type SharedLog = Arc<Mutex<LogWriter>>;

/// The default bound of a captured stream.
pub(crate) const CAPTURE_LIMIT: usize = 4 * 1024 * 1024;

/// A command or a pipeline, with its I/O and limits.
#[derive(Debug)]
pub(crate) struct Launch {
    pub stages: Vec<CommandSpec>,
    pub stdin: Input,
    pub stdout: Sink,
    pub stderr: Sink,
    /// How many bytes of each captured stream to keep.
    pub capture_limit: usize,
    /// Where captured streams are copied (the proc's or the script's log).
    pub log: Option<SharedLog>,
    /// `--output stream`: where the lines read from the streams are shown as they come.
    pub tap: Option<Tap>,
    pub timeout: Option<Duration>,
    pub kill_grace: Duration,
    /// Whether a launch that cannot start for lack of file descriptors (or of processes)
    /// waits for some to be freed and tries again ([`wait_for_fds`]). A caller that holds
    /// descriptors of its own for the launch (a command body's log) turns it off, and
    /// retries itself after releasing them, so that waiting launches hold none.
    pub wait_for_fds: bool,
    /// Whether the crash journal's record that this launch's process groups are gone may
    /// wait until the next group starts (see [`super::crashed::ended`]): the caller then
    /// sees to it that [`super::crashed::write_gone`] is called if nothing starts.
    /// Otherwise it is written before the launch returns.
    pub gone_later: bool,
}

impl Launch {
    /// One command with default I/O: stdin from `/dev/null`, outputs captured.
    pub(crate) fn new(spec: CommandSpec) -> Launch {
        Launch::pipeline(vec![spec])
    }

    /// A pipeline with default I/O.
    pub(crate) fn pipeline(stages: Vec<CommandSpec>) -> Launch {
        Launch {
            stages,
            stdin: Input::Null,
            stdout: Sink::Capture,
            stderr: Sink::Capture,
            capture_limit: CAPTURE_LIMIT,
            log: None,
            tap: None,
            timeout: None,
            kill_grace: super::KILL_GRACE,
            wait_for_fds: true,
            gone_later: false,
        }
    }
}

impl fmt::Display for Launch {
    /// The command line, stages joined by ` | `.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let [only] = self.stages.as_slice() {
            return write!(f, "{only}");
        }
        for (i, s) in self.stages.iter().enumerate() {
            if i > 0 {
                f.write_str(" | ")?;
            }
            // In a pipeline a shell string is one stage: `a; b | c` would mean something else.
            match &s.program {
                Program::Shell(text) => {
                    let text = crate::redact::redact(text);
                    let quoted = shlex::try_quote(&text)
                        .map_or_else(|_| format!("{text:?}"), |q| q.into_owned());
                    write!(f, "sh -c {quoted}")?;
                }
                Program::Argv(_) => write!(f, "{s}")?,
            }
        }
        Ok(())
    }
}

/// How a launch ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ending {
    /// Every stage exited on its own.
    Exited,
    /// The timeout elapsed and the stages were terminated.
    TimedOut,
    /// The run was aborted (Ctrl-C, `--fail-fast`) and the stages were terminated.
    Cancelled,
    /// The proc whose closure ran it timed out after this long, and the stages were
    /// terminated.
    ProcTimedOut(Duration),
    /// A stage was stopped by this signal (SIGTTIN, SIGTTOU) for using the terminal,
    /// which only an interactive command has, and the stages were terminated: no one
    /// would ever continue it (see [`unix::is_terminal_signal`]).
    TerminalStop(i32),
}

/// How one stage exited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct StageStatus {
    pub code: Option<i32>,
    pub signal: Option<i32>,
}

impl StageStatus {
    fn of(status: &ExitStatus) -> StageStatus {
        StageStatus {
            code: status.code(),
            signal: unix::exit_signal(status),
        }
    }

    /// True when the stage exited with one of `ok_codes`.
    pub(crate) fn ok(&self, ok_codes: &[i64]) -> bool {
        self.code.is_some_and(|c| ok_codes.contains(&i64::from(c)))
    }

    fn describe(&self) -> String {
        match (self.code, self.signal) {
            (Some(c), _) => format!("exited with code {c}"),
            (None, Some(s)) => format!("was killed by {}", unix::signal_name(s)),
            _ => "ended without an exit status".into(),
        }
    }
}

/// A captured stream: its tail (with a note when earlier bytes were dropped).
#[derive(Debug, Clone, Default)]
pub(crate) struct Captured {
    pub text: String,
}

/// The result of a finished launch.
#[derive(Debug, Clone)]
pub(crate) struct LaunchOutput {
    pub stages: Vec<StageStatus>,
    pub stdout: Captured,
    pub stderr: Captured,
    pub duration: Duration,
    pub ending: Ending,
    /// Where it ran, when not on this machine: the SSH host, or the Slurm job id.
    pub place: Option<String>,
}

impl LaunchOutput {
    /// Stages that did not exit with one of `ok_codes`, in order.
    ///
    /// A stage killed by SIGPIPE did not fail when every stage after it succeeded: the
    /// one it wrote to stopped reading, done (`pipe([["zcat", "big.gz"], ["head"]])`).
    pub(crate) fn failed_stages(&self, ok_codes: &[i64]) -> Vec<usize> {
        let n = self.stages.len();
        let mut failed = Vec::new();
        let mut rest_ok = true;
        for i in (0..n).rev() {
            let stage = self.stages[i];
            let ok =
                stage.ok(ok_codes) || (i + 1 < n && rest_ok && stage.signal == Some(unix::SIGPIPE));
            if !ok {
                failed.push(i);
            }
            rest_ok &= ok;
        }
        failed.reverse();
        failed
    }

    /// True when it exited on its own and every stage exited with one of `ok_codes`.
    pub(crate) fn ok(&self, ok_codes: &[i64]) -> bool {
        self.ending == Ending::Exited && self.failed_stages(ok_codes).is_empty()
    }

    /// The exit status as `set -o pipefail` reports it: the last failing stage's,
    /// else the last stage's.
    pub(crate) fn status(&self, ok_codes: &[i64]) -> StageStatus {
        let failed = self.failed_stages(ok_codes);
        let i = failed.last().copied().unwrap_or(self.stages.len() - 1);
        self.stages[i]
    }

    /// "exited with code 3", "timed out after 2s", "stage 2 of 3 (`grep x`) exited with
    /// code 1".
    pub(crate) fn describe(&self, launch: &Launch, ok_codes: &[i64]) -> String {
        match self.ending {
            Ending::TimedOut => {
                let t = launch.timeout.unwrap_or_default();
                return format!("timed out after {}", humantime::format_duration(t));
            }
            Ending::Cancelled => return "was terminated because the run was aborted".into(),
            Ending::ProcTimedOut(t) => {
                return format!(
                    "was terminated because its proc timed out after {}",
                    humantime::format_duration(t)
                );
            }
            Ending::TerminalStop(sig) => {
                let what = if sig == unix::SIGTTIN {
                    "read the terminal"
                } else {
                    "changed the terminal's modes (or wrote to it, under `stty tostop`)"
                };
                let who = if matches!(launch.stdin, Input::Inherit) {
                    "which prun could not lend it (its stdin is not the terminal, or it runs in the background of its shell)"
                } else {
                    "which only a proc with `interactive: true` may use"
                };
                return format!(
                    "was stopped by {} and terminated: it {what}, {who}",
                    unix::signal_name(sig)
                );
            }
            Ending::Exited => {}
        }
        let n = self.stages.len();
        if n == 1 {
            return self.stages[0].describe();
        }
        let failed = self.failed_stages(ok_codes);
        if failed.is_empty() {
            return self.stages[n - 1].describe();
        }
        failed
            .iter()
            .map(|&i| {
                format!(
                    "stage {} of {n} (`{}`) {}",
                    i + 1,
                    launch.stages[i],
                    self.stages[i].describe()
                )
            })
            .collect::<Vec<_>>()
            .join("; ")
    }
}

/// The header that precedes a command's output in a log (the command, its start time,
/// and where redirected streams go).
pub(crate) fn header(launch: &Launch) -> String {
    let now = humantime::format_rfc3339_millis(std::time::SystemTime::now());
    let mut head = format!("$ {launch}\n# started {now}");
    for (what, sink) in [("stdout", &launch.stdout), ("stderr", &launch.stderr)] {
        if let Sink::File(p) = sink {
            head.push_str(&format!("\n# {what} goes to {}", p.display()));
        }
    }
    head
}

/// The line that follows a command's output in a log (how it ended, how long it took).
pub(crate) fn footer(out: &LaunchOutput, launch: &Launch, ok_codes: &[i64]) -> String {
    format!(
        "# {} ({:.3}s)",
        out.describe(launch, ok_codes),
        out.duration.as_secs_f64()
    )
}

/// Runs launches somewhere: on this machine, or on a remote executor.
pub(crate) trait Launcher: Send + Sync {
    /// Runs `launch` to its end; `cancel` terminates it early.
    fn launch<'a>(
        &'a self,
        launch: &'a Launch,
        cancel: &'a CancellationToken,
    ) -> Pin<Box<dyn Future<Output = Result<LaunchOutput, CommandError>> + Send + 'a>>;

    /// SIGKILL to every process group of this launcher's commands that is still alive:
    /// the last resort of a second Ctrl-C, and what a run that ended on a bug does before
    /// it returns (it waits for no job any more).
    fn kill_all(&self) {}

    /// Waits, at most `limit`, until every process group of this launcher's commands is
    /// gone (reaped by its job), after [`Launcher::kill_all`]: a run that ended on a bug
    /// returns only once nothing of it is left. A launch spawning its processes meanwhile
    /// is waited for too, and none starts afterwards.
    fn wait_all_gone(&self, _limit: Duration) {}
}

/// Runs commands on this machine, each stage in its own process group.
#[derive(Debug, Default, Clone)]
pub(crate) struct Local {
    /// Variables of prun's environment that commands do not inherit (the policy's).
    hidden_env: Arc<[std::ffi::OsString]>,
    /// The live process groups of this launcher's commands (those of one run), and the
    /// launches about to add theirs.
    groups: Arc<Mutex<Groups>>,
    /// What a Ctrl-C at an interactive command does to its run (see
    /// [`Local::on_interrupt`]).
    interrupt: Arc<OnceLock<Interrupt>>,
    /// Set by [`Launcher::kill_all`] (a second Ctrl-C): the escaped processes still
    /// being ended get SIGKILL at once (see [`Local::end_escaped`]).
    killing: Arc<AtomicBool>,
    /// The environment of its commands, read when the first one starts.
    environment: Arc<OnceLock<Environment>>,
}

/// The process groups of a [`Local`] launcher's commands.
#[derive(Debug, Default)]
struct Groups {
    /// Groups being awaited by their launch.
    live: Vec<i32>,
    /// Launches that may still spawn a process and register its group: a group spawned
    /// but not registered yet is in no list [`Launcher::kill_all`] or
    /// [`Launcher::wait_all_gone`] read, and a run that ended on a bug returned while it
    /// still ran.
    spawning: usize,
    /// [`Launcher::wait_all_gone`] was called: no launch starts any more.
    closed: bool,
}

/// A launch of a [`Local`] launcher that may spawn processes (counted in
/// [`Groups::spawning`] until it is dropped, once its groups are registered).
struct Spawning<'a>(&'a Local);

impl Drop for Spawning<'_> {
    fn drop(&mut self) {
        self.0.groups().spawning -= 1;
    }
}

/// Interrupts a run, as its Ctrl-C handler would.
struct Interrupt(Box<dyn Fn() + Send + Sync>);

impl std::fmt::Debug for Interrupt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Interrupt")
    }
}

impl Local {
    /// A local launcher whose commands do not inherit these variables of prun's
    /// environment.
    pub(crate) fn hiding(hidden_env: Vec<std::ffi::OsString>) -> Local {
        Local {
            hidden_env: hidden_env.into(),
            ..Local::default()
        }
    }

    /// The variables of prun's environment that no program prun starts inherits (see
    /// [`crate::sigchld::spawn`]).
    pub(crate) fn hidden_env(&self) -> &[std::ffi::OsString] {
        &self.hidden_env
    }

    /// prun's environment less the hidden variables, read once (see [`Environment`]).
    fn environment(&self) -> &Environment {
        self.environment
            .get_or_init(|| Environment::read(&self.hidden_env))
    }

    /// What to do when an interactive command (one with the terminal) was ended by
    /// Ctrl-C: the terminal sent SIGINT to its process group only, and the run must end
    /// as if interrupted. Called before the command's launch returns, so nothing else
    /// starts in between.
    pub(crate) fn on_interrupt(&self, interrupt: impl Fn() + Send + Sync + 'static) {
        let _ = self.interrupt.set(Interrupt(Box::new(interrupt)));
    }

    /// Ends the processes of this launcher's commands that left their process group
    /// (`setsid`, as a daemon does) and outlived their command: prun adopted them (see
    /// [`unix::adopt_orphans`]). SIGTERM, up to `grace` for them to go, then SIGKILL, at
    /// once after [`Launcher::kill_all`] (a second Ctrl-C, even one that comes while they
    /// are being ended). A run calls it at its end, once its own commands and cleanups
    /// are done.
    pub(crate) fn end_escaped(&self, grace: Duration) {
        let keep = self.live_groups();
        unix::end_adopted(grace, &keep, || self.killing.load(Ordering::SeqCst));
    }

    /// Reaps the processes prun adopted (see [`Local::end_escaped`]) that exited, and
    /// leaves those still running to the run's end: a watch calls it after each cycle.
    pub(crate) fn reap_escaped(&self) {
        let keep = self.live_groups();
        unix::reap_adopted(&keep);
    }

    /// How long `launch`'s groups get between SIGTERM and SIGKILL when it is ended early:
    /// its kill grace, but none once [`Launcher::kill_all`] was called (a second Ctrl-C),
    /// which ends a command started after it (a cleanup's) at once too.
    fn grace(&self, launch: &Launch) -> Duration {
        if self.killing.load(Ordering::SeqCst) {
            Duration::ZERO
        } else {
            launch.kill_grace
        }
    }

    /// The process groups of this launcher's commands that are being awaited.
    fn live_groups(&self) -> Vec<i32> {
        self.groups().live.clone()
    }

    fn groups(&self) -> MutexGuard<'_, Groups> {
        self.groups.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Counts a launch that is about to spawn its processes, or refuses it once the run
    /// ended on a bug ([`Launcher::wait_all_gone`]).
    fn spawning(&self, launch: &Launch) -> Result<Spawning<'_>, CommandError> {
        let mut groups = self.groups();
        if groups.closed {
            return Err(CommandError::RunEnded {
                command: crate::shown::command(launch),
            });
        }
        groups.spawning += 1;
        Ok(Spawning(self))
    }

    fn register(&self, pgid: i32, since: Option<u64>, command: &CommandSpec, grace: Duration) {
        unix::register(pgid, since, command, grace);
        self.groups().live.push(pgid);
    }

    fn unregister(&self, pgid: i32) {
        unix::unregister(pgid);
        self.groups().live.retain(|&g| g != pgid);
    }
}

impl Launcher for Local {
    fn launch<'a>(
        &'a self,
        launch: &'a Launch,
        cancel: &'a CancellationToken,
    ) -> Pin<Box<dyn Future<Output = Result<LaunchOutput, CommandError>> + Send + 'a>> {
        Box::pin(async move {
            let mut idle_tries = 0;
            loop {
                match run_local(launch, cancel, self).await {
                    Err(e)
                        if launch.wait_for_fds
                            && e.resources_short()
                            && wait_for_fds(cancel, &mut idle_tries).await => {}
                    result => {
                        if !launch.gone_later {
                            super::crashed::write_gone();
                        }
                        return result;
                    }
                }
            }
        })
    }

    fn kill_all(&self) {
        self.killing.store(true, Ordering::SeqCst);
        for g in self.live_groups() {
            unix::kill_group(g);
        }
    }

    fn wait_all_gone(&self, limit: Duration) {
        // Killed groups take a moment to die and be reaped by their jobs' tasks, which
        // then unregister them; a process stuck in the kernel is not waited for past
        // `limit`. A launch spawning meanwhile registers its groups, then its cancelled
        // job ends them at once (see `Local::grace`). A short poll: this happens once, at
        // the end of a run that hit a bug.
        self.groups().closed = true;
        let deadline = Instant::now() + limit;
        let busy = |g: &Groups| !g.live.is_empty() || g.spawning > 0;
        while busy(&self.groups()) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(1));
        }
    }
}

/// The launcher of a run with a [`Policy`]: every command of the run comes through it
/// (`shell`, `exec`, `pipe`, command bodies), and each stage is checked before the whole
/// launch is handed to the launcher that runs it. This is the one place where the policy
/// is enforced: another executor goes inside it.
pub(crate) struct Policed {
    policy: Arc<Policy>,
    inner: Arc<dyn Launcher>,
}

impl Policed {
    /// `inner`, with every launch checked against `policy` first.
    pub(crate) fn new(policy: Arc<Policy>, inner: Arc<dyn Launcher>) -> Policed {
        Policed { policy, inner }
    }
}

impl Launcher for Policed {
    fn launch<'a>(
        &'a self,
        launch: &'a Launch,
        cancel: &'a CancellationToken,
    ) -> Pin<Box<dyn Future<Output = Result<LaunchOutput, CommandError>> + Send + 'a>> {
        let terminal = matches!(launch.stdin, Input::Inherit)
            || [&launch.stdout, &launch.stderr]
                .iter()
                .any(|s| matches!(s, Sink::Inherit));
        for spec in &launch.stages {
            if let Err(error) = spec.check_env() {
                return Box::pin(std::future::ready(Err(error)));
            }
            let checked = match self.policy.check(spec) {
                Ok(()) if terminal => self.policy.check_terminal(),
                checked => checked,
            };
            if let Err(refusal) = checked {
                let error = CommandError::Spawn {
                    command: crate::shown::command(spec),
                    source: io::Error::new(io::ErrorKind::PermissionDenied, refusal),
                };
                return Box::pin(std::future::ready(Err(error)));
            }
        }
        self.inner.launch(launch, cancel)
    }

    fn kill_all(&self) {
        self.inner.kill_all();
    }

    fn wait_all_gone(&self, limit: Duration) {
        self.inner.wait_all_gone(limit);
    }
}

/// Launches whose processes are running now: each one that ends may free descriptors.
static RUNNING: AtomicUsize = AtomicUsize::new(0);
/// Notified when a running launch ends.
static ENDED: Notify = Notify::const_new();
/// How many times a launch short of descriptors tries again while no other launch runs
/// (with a doubling pause from 50 ms: about 3 s in all) before it fails.
const IDLE_TRIES: u32 = 6;

/// Counts a launch as running while it lives.
struct Running;

impl Running {
    fn new() -> Running {
        RUNNING.fetch_add(1, Ordering::SeqCst);
        Running
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        RUNNING.fetch_sub(1, Ordering::SeqCst);
        ENDED.notify_waiters();
    }
}

/// Waits before another try of a launch that could not start for lack of file descriptors
/// or processes: until another launch ends (which frees some), or for a short pause when
/// none runs. Returns `false` when the launch should fail instead: it was cancelled, or
/// nothing was freed after [`IDLE_TRIES`] pauses while no launch ran.
pub(crate) async fn wait_for_fds(cancel: &CancellationToken, idle_tries: &mut u32) -> bool {
    let ended = ENDED.notified();
    tokio::pin!(ended);
    ended.as_mut().enable();
    let pause = if RUNNING.load(Ordering::SeqCst) > 0 {
        *idle_tries = 0;
        // Another launch ends and wakes this one; the pause only bounds a missed wake-up.
        Duration::from_secs(1)
    } else if *idle_tries < IDLE_TRIES {
        *idle_tries += 1;
        Duration::from_millis(50 << (*idle_tries - 1))
    } else {
        return false;
    };
    tokio::select! {
        () = ended => true,
        () = tokio::time::sleep(pause) => true,
        () = cancel.cancelled() => false,
    }
}

/// How the note a capture that dropped bytes starts with ends.
const CAPTURE_NOTE_END: &str = " dropped from this capture; the log has everything]";

/// True when `line` is the note a capture that dropped bytes starts with.
pub(crate) fn is_capture_note(line: &str) -> bool {
    line.starts_with("[prun: the first ") && line.ends_with(CAPTURE_NOTE_END)
}

/// Keeps at most the last `cap` bytes written to it, and counts what it dropped. A ring
/// buffer: dropping the oldest bytes moves none of the others.
#[derive(Debug, Default)]
struct Capture {
    buf: std::collections::VecDeque<u8>,
    dropped: u64,
    cap: usize,
}

impl Capture {
    fn push(&mut self, data: &[u8]) {
        let total = self.buf.len() + data.len();
        let keep = &data[data.len().saturating_sub(self.cap)..];
        let cut = (self.buf.len() + keep.len()).saturating_sub(self.cap);
        self.buf.drain(..cut);
        self.buf.extend(keep);
        self.dropped += (total - self.buf.len()) as u64;
    }

    /// The first line of a capture that dropped bytes.
    fn note(dropped: u64) -> String {
        let what = match dropped {
            1 => "the first byte was".to_string(),
            n => format!("the first {n} bytes were"),
        };
        format!("[prun: {what}{CAPTURE_NOTE_END}")
    }

    fn finish(mut self) -> Captured {
        if self.dropped > 0 {
            // The bound may fall inside a character: the tail starts at the next one.
            let partial = self
                .buf
                .iter()
                .take(3)
                .take_while(|&&b| b & 0xC0 == 0x80)
                .count();
            self.buf.drain(..partial);
            self.dropped += partial as u64;
        }
        let mut text = String::from_utf8_lossy(self.buf.make_contiguous()).into_owned();
        if self.dropped > 0 {
            text.insert_str(0, &format!("{}\n", Capture::note(self.dropped)));
        }
        Captured { text }
    }
}

/// Opens a `stdout` or `stderr` file, truncated. prun opens it, as `write_file` opens
/// its file, so it is opened as that one is: a symbolic link is followed only when it
/// belongs to the user or to root ([`crate::paths::trusted_write_target`]), and a file
/// another user made in a sticky directory anyone can write is refused
/// ([`crate::paths::not_planted_in_a_shared_directory`]), before it is truncated: root's
/// `stdout: "/tmp/out.txt"` must neither write `/etc/shadow` through a link planted there
/// nor hand its output to the user who made the file. A FIFO is opened without waiting
/// for a reader, which would happen in prun, past the command's timeout and Ctrl-C: one
/// that no process reads is an error saying so.
fn open_sink(what: &'static str, path: &Path, launch: &Launch) -> Result<File, CommandError> {
    let fail = |source: io::Error| CommandError::File {
        what,
        path: path.to_path_buf(),
        source: match source.raw_os_error() {
            Some(nix::libc::ENXIO) => io::Error::other(
                "it is a FIFO that no process reads, which prun would wait for, past the \
                 timeout and Ctrl-C",
            ),
            _ => source,
        },
        command: crate::shown::command(launch),
    };
    let target = crate::paths::trusted_write_target(path).map_err(fail)?;
    // Checked before the open too: a FIFO no one reads yet fails to open, for another reason.
    if let Ok(meta) = std::fs::metadata(&target) {
        crate::paths::not_planted_in_a_shared_directory(&target, &meta).map_err(fail)?;
    }
    let file = crate::paths::open_write_target(
        &target,
        std::fs::OpenOptions::new().write(true).create(true),
    )
    .map_err(fail)?;
    let meta = file.metadata().map_err(fail)?;
    crate::paths::not_planted_in_a_shared_directory(&target, &meta).map_err(fail)?;
    if meta.is_file() {
        file.set_len(0).map_err(fail)?;
    }
    Ok(file)
}

/// `/dev/null` for a child's stdin: opened once, and given to each child (which costs
/// less than a path lookup per child).
fn dev_null(launch: &Launch) -> Result<&'static File, CommandError> {
    static NULL: OnceLock<File> = OnceLock::new();
    let file = match NULL.get() {
        Some(f) => f,
        None => {
            let path = PathBuf::from("/dev/null");
            let opened = File::open(&path).map_err(|source| CommandError::File {
                what: "stdin",
                path,
                source,
                command: crate::shown::command(launch),
            })?;
            NULL.get_or_init(|| opened)
        }
    };
    Ok(file)
}

/// Copies a child's output stream into its capture, its log and its tap, until the end
/// of the stream or until `settled`: every process of the launch's groups is then gone,
/// so what they wrote is in the pipe already. What is there is read without waiting, and
/// the launch's output is complete. A process that left the groups (`setsid`, as a
/// daemon started by `pg_ctl start` does) can still hold the pipe: waiting for its end
/// would tie the launch (and a Ctrl-C) to that daemon's life, as `$(pg_ctl start)` hangs
/// in a shell. What it writes later goes on to the log alone, read by a task of its own,
/// which keeps the daemon's writes from failing while the run lasts.
async fn read_into<R>(
    mut r: R,
    capture: Option<Arc<Mutex<Capture>>>,
    log: Option<SharedLog>,
    mut lines: Option<Lines>,
    settled: CancellationToken,
) where
    R: AsyncReadExt + std::os::fd::AsFd + Unpin + Send + 'static,
{
    let mut buf = vec![0u8; 64 * 1024];
    let put = |data: &[u8], lines: &mut Option<Lines>| {
        if let Some(log) = &log {
            let _ = log.lock().expect("log").write(data);
        }
        if let Some(capture) = &capture {
            capture.lock().expect("capture").push(data);
        }
        if let Some(lines) = lines {
            unblocking(|| lines.push(data));
        }
    };
    let mut open = true;
    while open {
        tokio::select! {
            biased;
            read = r.read(&mut buf) => match read {
                Ok(0) | Err(_) => open = false,
                Ok(n) => put(&buf[..n], &mut lines),
            },
            () = settled.cancelled() => break,
        }
    }
    while open {
        match unix::read_now(&r, &mut buf) {
            Ok(Some(0)) | Err(_) => open = false,
            Ok(Some(n)) => put(&buf[..n], &mut lines),
            Ok(None) => break,
        }
    }
    if let Some(lines) = &mut lines {
        unblocking(|| lines.finish());
    }
    if open {
        tokio::spawn(async move {
            while let Ok(n @ 1..) = r.read(&mut buf).await {
                if let Some(log) = &log {
                    let _ = log.lock().expect("log").write(&buf[..n]);
                }
            }
        });
    }
}

/// Runs `f`, which writes to prun's stdout (`--output stream` lines), handing this
/// runtime thread's other tasks to another thread meanwhile: a reader that reads nothing
/// (`prun ... | less`) blocks the write, and the timeouts, `--fail-fast` and signals that
/// end commands must still be acted on.
fn unblocking(f: impl FnOnce()) {
    use tokio::runtime::{Handle, RuntimeFlavor};
    match Handle::try_current().map(|h| h.runtime_flavor()) {
        Ok(RuntimeFlavor::MultiThread) => tokio::task::block_in_place(f),
        _ => f(),
    }
}

/// The reading end of the pipe that both streams of a launch write into ([`Sink::Log`]).
fn merged_pipe() -> Result<(tokio::process::ChildStdout, std::io::PipeWriter), CommandError> {
    let (r, w) = std::io::pipe().map_err(CommandError::Pipe)?;
    let r = std::process::ChildStdout::from(std::os::fd::OwnedFd::from(r));
    let r = tokio::process::ChildStdout::from_std(r).map_err(CommandError::Pipe)?;
    Ok((r, w))
}

async fn run_local(
    launch: &Launch,
    cancel: &CancellationToken,
    local: &Local,
) -> Result<LaunchOutput, CommandError> {
    let started = Instant::now();
    let n = launch.stages.len();
    if n == 0 {
        return Err(CommandError::Empty);
    }
    let spawning = local.spawning(launch)?;
    let new_capture = || {
        Arc::new(Mutex::new(Capture {
            cap: launch.capture_limit,
            ..Capture::default()
        }))
    };
    let (out_cap, err_cap) = (new_capture(), new_capture());
    let mut readers = Vec::new();
    // Cancelled once no process of the launch's groups is left (see `read_into`).
    let settled = CancellationToken::new();
    let tap_lines = || launch.tap.as_ref().map(Tap::lines);
    let merged = match (&launch.stdout, &launch.stderr) {
        (Sink::Log, Sink::Log) => {
            let (r, w) = merged_pipe()?;
            readers.push(tokio::spawn(read_into(
                r,
                None,
                launch.log.clone(),
                tap_lines(),
                settled.clone(),
            )));
            Some(w)
        }
        _ => None,
    };
    // The same file for both streams is opened once, so they append to one offset (as
    // `>f 2>&1` does) instead of overwriting each other. An open file (`Sink::Fd`) is
    // only borrowed: each stage gets its own duplicate when it is spawned.
    let opened_stdout = match &launch.stdout {
        Sink::File(p) => Some(open_sink("stdout file", p, launch)?),
        Sink::Fd(_) | Sink::Capture | Sink::Log | Sink::Inherit => None,
    };
    let opened_stderr = match (&launch.stderr, &launch.stdout) {
        (Sink::File(e), Sink::File(o)) if e == o => None,
        (Sink::File(p), _) => Some(open_sink("stderr file", p, launch)?),
        (Sink::Fd(_) | Sink::Capture | Sink::Log | Sink::Inherit, _) => None,
    };
    let stdout_file: Option<&File> = match &launch.stdout {
        Sink::File(_) => opened_stdout.as_ref(),
        Sink::Fd(f) => Some(&**f),
        Sink::Capture | Sink::Log | Sink::Inherit => None,
    };
    let stderr_file: Option<&File> = match &launch.stderr {
        Sink::File(_) => opened_stderr.as_ref().or(opened_stdout.as_ref()),
        Sink::Fd(f) => Some(&**f),
        Sink::Capture | Sink::Log | Sink::Inherit => None,
    };
    // Where a stream that no file takes goes.
    let stream = |sink: &Sink| -> Stream<'_> {
        match (sink, &merged) {
            (Sink::Inherit, _) => Stream::Inherit,
            (Sink::Log, Some(w)) => Stream::Fd(w.as_fd()),
            _ => Stream::Piped,
        }
    };
    let stdin_file = match &launch.stdin {
        Input::File(p) => Some(File::open(p).map_err(|source| CommandError::File {
            what: "stdin file",
            path: p.clone(),
            source,
            command: crate::shown::command(launch),
        })?),
        Input::Null | Input::Inherit | Input::Bytes(_) | Input::Held => None,
    };
    let first_stdin = match (&launch.stdin, &stdin_file) {
        (_, Some(f)) => Stream::Fd(f.as_fd()),
        (Input::Null | Input::File(_), None) => Stream::Fd(dev_null(launch)?.as_fd()),
        (Input::Inherit, None) => Stream::Inherit,
        (Input::Bytes(_) | Input::Held, None) => Stream::Piped,
    };
    let environment = local.environment();
    let mut children: Vec<Child> = Vec::with_capacity(n);
    // The inode of the pipe from each stage to the next.
    let mut stage_pipes: Vec<Option<u64>> = Vec::with_capacity(n);
    let mut pgids: Vec<i32> = Vec::with_capacity(n);
    // The reading end of the pipe from the stage before.
    let mut from_before: Option<std::io::PipeReader> = None;
    // The first stage's stdin, when prun writes it or holds it.
    let mut first_stdin_pipe = None;
    for (i, spec) in launch.stages.iter().enumerate() {
        let spawned = (|| {
            let stdin = match &from_before {
                Some(r) => Stream::Fd(r.as_fd()),
                None => first_stdin,
            };
            let to_next = if i + 1 < n {
                let (r, w) = std::io::pipe().map_err(CommandError::Pipe)?;
                stage_pipes.push(unix::pipe_inode(&w));
                Some((r, w))
            } else {
                None
            };
            let stdout = match (&to_next, stdout_file) {
                (Some((_, w)), _) => Stream::Fd(w.as_fd()),
                (None, Some(f)) => Stream::Fd(f.as_fd()),
                (None, None) => stream(&launch.stdout),
            };
            let stderr = match stderr_file {
                Some(f) => Stream::Fd(f.as_fd()),
                None => stream(&launch.stderr),
            };
            let since = unix::boot_ticks();
            let started = spawn::spawn(
                spec,
                [stdin, stdout, stderr],
                environment,
                &local.hidden_env,
            )?;
            // The child has its copies: the stage after reads what this one writes.
            from_before = to_next.map(|(r, _)| r);
            let pgid = started.pid as i32;
            local.register(pgid, since, spec, launch.kill_grace);
            pgids.push(pgid);
            children.push(Child::new(started.pid));
            Ok((started.stdin, started.stdout, started.stderr))
        })()
        .map_err(|e: CommandError| e.in_stage(i, n, &crate::shown::command(launch)));
        // The pipes prun holds to the child, made asynchronous (which can fail, the child
        // running).
        let pipes = spawned.and_then(|(stdin, stdout, stderr)| {
            let pipe = CommandError::Pipe;
            Ok((
                stdin
                    .map(tokio::process::ChildStdin::from_std)
                    .transpose()
                    .map_err(pipe)?,
                stdout
                    .map(tokio::process::ChildStdout::from_std)
                    .transpose()
                    .map_err(pipe)?,
                stderr
                    .map(tokio::process::ChildStderr::from_std)
                    .transpose()
                    .map_err(pipe)?,
            ))
        });
        let (stdin, stdout, stderr) = match pipes {
            Ok(p) => p,
            Err(e) => {
                // Stages already started must not outlive a pipeline that failed to start.
                drop(from_before.take());
                terminate(&mut children, &pgids, local.grace(launch)).await;
                for &g in &pgids {
                    local.unregister(g);
                }
                // Once a stage ran, starting the pipeline again could repeat what it did:
                // the shortage is then an ordinary failure, not one to wait out.
                return Err(if pgids.is_empty() { e } else { e.final_error() });
            }
        };
        if i == 0 {
            first_stdin_pipe = stdin;
        }
        let capture = |sink: &Sink, cap: &Arc<Mutex<Capture>>| {
            matches!(sink, Sink::Capture).then(|| cap.clone())
        };
        if let Some(err) = stderr {
            readers.push(tokio::spawn(read_into(
                err,
                capture(&launch.stderr, &err_cap),
                launch.log.clone(),
                tap_lines(),
                settled.clone(),
            )));
        }
        if let Some(out) = stdout {
            readers.push(tokio::spawn(read_into(
                out,
                capture(&launch.stdout, &out_cap),
                launch.log.clone(),
                tap_lines(),
                settled.clone(),
            )));
        }
    }
    // Every group is registered: they are in the lists a run's end reads.
    drop(spawning);
    // The children hold the writing end now: the reader sees the end of the output when
    // they are gone.
    drop(merged);
    let mut foreground = match launch.stdin {
        Input::Inherit => unix::Foreground::give(pgids[0]),
        _ => None,
    };
    let _running = Running::new();
    // A held pipe is kept here, open until the launch ends.
    let mut held = match launch.stdin {
        Input::Held => first_stdin_pipe.take(),
        _ => None,
    };
    if let Input::Bytes(bytes) = &launch.stdin
        && let Some(mut stdin) = first_stdin_pipe.take()
    {
        let bytes = bytes.clone();
        tokio::spawn(async move {
            // A child that exits without reading its input is not an error here.
            let _ = stdin.write_all(&bytes).await;
        });
    }
    let ending = {
        let timeout = async {
            match launch.timeout {
                Some(t) => tokio::time::sleep(t).await,
                None => std::future::pending().await,
            }
        };
        // Each stage's leftovers (`sh -c 'tool & ...'`) are ended as soon as it exits, not
        // when the last stage does: they hold the pipe to the next stage, which would
        // never see the end of its input. Once the stage and those before it are gone,
        // what still holds that pipe left its group (`setsid daemon &`): it is ended too.
        let all_exited = async {
            for (i, (c, &g)) in children.iter_mut().zip(&pgids).enumerate() {
                let _ = c.wait().await;
                if unix::group_alive(g) {
                    end_leftovers(g, launch.kill_grace).await;
                }
                if let Some(&Some(pipe)) = stage_pipes.get(i) {
                    let keep = local.live_groups();
                    unix::end_pipe_holders(pipe, &keep, launch.kill_grace).await;
                }
            }
        };
        tokio::select! {
            () = all_exited => Ending::Exited,
            () = timeout => Ending::TimedOut,
            () = cancel.cancelled() => Ending::Cancelled,
            sig = watch_stops(&pgids, foreground.as_mut()) => Ending::TerminalStop(sig),
        }
    };
    if ending != Ending::Exited {
        if let Some(held) = held.take() {
            drop(held);
            let _ = tokio::time::timeout(launch.kill_grace.saturating_add(HELD_MARGIN), async {
                for c in children.iter_mut() {
                    let _ = c.wait().await;
                }
            })
            .await;
        }
        terminate(&mut children, &pgids, local.grace(launch)).await;
    }
    drop(held);
    let mut stages = Vec::with_capacity(n);
    for (i, c) in children.iter_mut().enumerate() {
        let status = c.wait().await.map_err(|source| CommandError::Wait {
            command: crate::shown::command(&launch.stages[i]),
            source,
        })?;
        stages.push(StageStatus::of(&status));
    }
    for &g in &pgids {
        local.unregister(g);
    }
    if let Some(lent) = foreground.take() {
        let hung_up = lent.hung_up();
        drop(lent);
        // Ctrl-C went to the foreground group only, and so does the SIGHUP of a terminal
        // closed (its command may also just read the end of its input, and exit 0): the run
        // acts on them as if it got them too.
        if (hung_up || stages.iter().any(|s| s.signal == Some(unix::SIGINT)))
            && let Some(interrupt) = local.interrupt.get()
        {
            (interrupt.0)();
        }
    }
    settled.cancel();
    for r in readers {
        let _ = r.await;
    }
    let take = |c: Arc<Mutex<Capture>>| std::mem::take(&mut *c.lock().expect("capture")).finish();
    Ok(LaunchOutput {
        stages,
        stdout: take(out_cap),
        stderr: take(err_cap),
        duration: started.elapsed(),
        ending,
        place: None,
    })
}

/// How often the stages of a launch are checked for a stop by the terminal.
const TERMINAL_CHECK: Duration = Duration::from_millis(500);

/// How often the command an interactive proc lent the terminal to is checked for a stop
/// (Ctrl-Z): a user waits for the shell's prompt, and 50 ms is below what one notices.
const LENT_CHECK: Duration = Duration::from_millis(50);

/// Watches the stages of a launch for stops while it runs, when prun has a terminal
/// (as under cron, nothing is checked without one).
///
/// The stage the terminal is `lent` to (an interactive command's first) stopped by Ctrl-Z
/// or otherwise is acted on as a job-control shell would, and the watch goes on (see
/// [`unix::Foreground::stopped`]). Another stage stopped for using the terminal (see
/// [`unix::is_terminal_signal`]) resolves this to the signal that stopped it: a command that
/// asks for a password (`sudo`, `ssh`) or reads `/dev/tty` from outside the terminal's
/// foreground group would otherwise stay stopped, and the run wait for it, for ever. So
/// does an interactive command that prun could not lend the terminal (prun's stdin is not
/// the terminal, or prun runs in the background of its shell): it would never get it.
async fn watch_stops(pgids: &[i32], mut lent: Option<&mut unix::Foreground>) -> i32 {
    if !unix::has_terminal() {
        return std::future::pending().await;
    }
    let every = if lent.is_some() {
        LENT_CHECK
    } else {
        TERMINAL_CHECK
    };
    loop {
        tokio::time::sleep(every).await;
        for (i, &g) in pgids.iter().enumerate() {
            let Some(sig) = unix::stop_signal(g) else {
                continue;
            };
            match lent.as_deref_mut() {
                Some(terminal) if i == 0 => {
                    if let Err(sig) = terminal.stopped(sig).await {
                        return sig;
                    }
                }
                _ if unix::is_terminal_signal(sig) => return sig,
                _ => {}
            }
        }
    }
}
/// How much longer than the kill grace a launch with a held input waits, once it has
/// closed it, for its client to exit: the remote side ends the command within the kill
/// grace, then reports back.
const HELD_MARGIN: Duration = Duration::from_secs(2);

/// SIGTERM to every child's group, up to `grace` for them to exit, then SIGKILL to the
/// groups (grandchildren that ignored SIGTERM included). A child that left its group
/// (`setpgid` into another) gets them itself.
async fn terminate(children: &mut [Child], pgids: &[i32], grace: Duration) {
    for &g in pgids {
        unix::term_group(g);
    }
    for c in children.iter_mut() {
        c.term_if_left();
    }
    let _ = tokio::time::timeout(grace, async {
        for c in children.iter_mut() {
            let _ = c.wait().await;
        }
    })
    .await;
    for &g in pgids {
        unix::kill_group(g);
        unix::unregister(g);
    }
    for c in children.iter_mut() {
        c.kill_if_left();
        let _ = c.wait().await;
    }
}

/// Ends processes left in a group whose leader has exited: SIGTERM, then SIGKILL once
/// `grace` has passed. The leader is gone, so nothing can be awaited; the group is polled.
async fn end_leftovers(pgid: i32, grace: Duration) {
    unix::term_group(pgid);
    let deadline = crate::duration::from_now(grace);
    while unix::group_alive(pgid) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    unix::kill_group(pgid);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exec::command::Program;

    fn true_launch() -> Launch {
        Launch::new(CommandSpec {
            program: Program::Argv(vec!["true".into()]),
            env: Vec::new(),
            cwd: None,
        })
    }

    /// A run that ended on a bug returns only once a launch that was spawning its
    /// processes has registered them (its job then ends them), and no launch starts after
    /// it: a group spawned but not registered yet was in no list the run's end read, and
    /// its `sleep 300` outlived the run (seen once in 25 loaded runs of the embedding test
    /// of panicking native functions).
    #[test]
    fn the_end_of_a_run_on_a_bug_waits_for_a_launch_spawning_and_refuses_later_ones() {
        let local = Local::default();
        let launch = true_launch();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::scope(|s| {
            let spawning = local.spawning(&launch).expect("not closed yet");
            let local = &local;
            s.spawn(move || {
                local.wait_all_gone(Duration::from_secs(600));
                tx.send(()).expect("the test waits");
            });
            assert!(
                rx.recv_timeout(Duration::from_millis(200)).is_err(),
                "returned while a launch could still add a group"
            );
            drop(spawning);
            rx.recv()
                .expect("returns once the launch registered its groups");
        });
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let refused = rt.block_on(run_local(&launch, &CancellationToken::new(), &local));
        assert!(
            matches!(refused, Err(CommandError::RunEnded { .. })),
            "{refused:?}"
        );
    }
}

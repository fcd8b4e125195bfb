//! Command bodies (`cmd: [...]`, `shell: "..."`): launched and awaited on the async
//! runtime, with their output going straight from the child into the proc's log.

use std::fs::File;
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rhai::Dynamic;
use tokio_util::sync::CancellationToken;

use super::command::{CommandSpec, Program};
use super::core::JobSpec;
use super::launch::{self, Ending, Launch, Launcher, LogWriter, Sink};
use super::log::{self, LogDir};
use super::state::Outcome;
use super::unix;
use crate::graph::shell::fill_shell;
use crate::graph::{Body, ProcDef, fill_known};

/// How long a command body runs before its unnamed log gets its name.
const NAME_RUNNING_LOG_AFTER: Duration = Duration::from_secs(1);

/// How often a running command body's unnamed log is looked at for output, which gives
/// it its name at once.
const LOOK_FOR_OUTPUT_EVERY: Duration = Duration::from_millis(100);

/// The command of a command body, with the proc's `env` and `cwd`. A proc made from a
/// proto gets its placeholder values filled in: as they are in an argv
/// (`cmd: ["gzip", "[file]"]`), `env` and `cwd`, which no shell reads; quoted in a shell
/// string, so that each arrives as one literal string (see [`fill_shell`]).
pub(super) fn command_of(def: &ProcDef, args: &[(String, String)]) -> Option<CommandSpec> {
    let fill = |s: &str| fill_known(s, args);
    let program = match &def.body {
        Body::Cmd(argv) => Program::Argv(argv.iter().map(&fill).collect()),
        Body::Shell(s) => Program::Shell(fill_shell(s, args)),
        Body::Closure(_) => return None,
    };
    Some(CommandSpec {
        program,
        env: def.env.iter().map(|(k, v)| (k.clone(), fill(v))).collect(),
        cwd: def.extras().cwd.as_ref().map(|c| fill(c).into()),
    })
}

/// The launch of a command body, with the proc's `timeout`.
pub(super) fn command_launch(job: &JobSpec, kill_grace: Duration) -> Option<Launch> {
    let spec = command_of(&job.def, &job.args)?;
    let mut l = Launch::new(spec);
    l.timeout = job.def.extras().timeout;
    l.kill_grace = kill_grace;
    // The scheduler writes it once the jobs this one's end lets start have started.
    l.gone_later = true;
    Some(l)
}

/// Runs a command body to completion and maps its exit to an [`Outcome`]; also returns
/// whether the proc's log exists afterwards.
///
/// The child writes its stdout and stderr straight into the log file through its own
/// descriptors, so prun copies nothing. A first attempt writes into an unnamed file
/// (`O_TMPFILE`) that is given the log's name only when the command printed something
/// (seen within a tenth of a second while it runs) or failed, or once it has run for a
/// second (so that a running job's log can be followed, and survives a crash of prun); otherwise it is written over by the next command body. On some filesystems creating a file costs more than running `/usr/bin/true`, and
/// most command bodies print nothing and end at once: they cost no file at all.
pub(super) async fn run_command_body(
    launcher: &dyn Launcher,
    mut l: Launch,
    cancel: CancellationToken,
    logs: &LogDir,
    log_path: &Path,
    attempt: u32,
) -> (Outcome, bool) {
    // The log's descriptors are released while the launch waits for more to be free.
    l.wait_for_fds = false;
    let mut idle_tries = 0;
    loop {
        match try_command_body(launcher, &mut l, &cancel, logs, log_path, attempt).await {
            Tried::Done(outcome, kept) => return (outcome, kept),
            Tried::Short(error) => {
                logs.drop_spares();
                if !launch::wait_for_fds(&cancel, &mut idle_tries).await {
                    let o = Outcome::Failed {
                        error,
                        exit_code: None,
                    };
                    return (o, log_path.exists());
                }
            }
        }
    }
}

/// What one try of a command body came to.
enum Tried {
    /// It ran (or failed for good); whether its log exists.
    Done(Outcome, bool),
    /// It could not start for lack of file descriptors or processes, and left nothing
    /// behind: it can be tried again once some are free.
    Short(String),
}

async fn try_command_body(
    launcher: &dyn Launcher,
    l: &mut Launch,
    cancel: &CancellationToken,
    logs: &LogDir,
    log_path: &Path,
    attempt: u32,
) -> Tried {
    let failed = |error: String| {
        let o = Outcome::Failed {
            error,
            exit_code: None,
        };
        Tried::Done(o, log_path.exists())
    };
    let open_failed = |e: std::io::Error| {
        let msg = format!("failed to open log {}: {e}", crate::paths::shown(log_path));
        if unix::fds_short(&e) {
            Tried::Short(msg)
        } else {
            failed(msg)
        }
    };
    // Only a retry can find the log already there (from an earlier attempt).
    let unnamed = if attempt > 1 && log_path.exists() {
        None
    } else {
        logs.take_unnamed()
    };
    let header = format!("{}\n", launch::header(l));
    let write_failed = |e: std::io::Error| {
        failed(format!(
            "failed to write log {}: {e}",
            crate::paths::shown(log_path)
        ))
    };
    // An unnamed log gets its header only when it is kept or named (nobody sees it
    // before): its child writes after the place kept for it. Most command bodies print
    // nothing and succeed, and their header is never written.
    let (file, is_unnamed, before) = match unnamed {
        Some(spare) => match spare.start(header.len() as u64) {
            Ok(f) => (f, true, 0),
            Err(e) => return write_failed(e),
        },
        None => {
            let mut f = match log::open_append(log_path) {
                Ok(f) => f,
                Err(e) => return open_failed(e),
            };
            let before = f.metadata().map(|m| m.len()).unwrap_or(0);
            if let Err(e) = f.write_all(header.as_bytes()) {
                return write_failed(e);
            }
            (f, false, before)
        }
    };
    // Shared with the child's streams, which get their own duplicates when it starts.
    let file = Arc::new(file);
    let start_len = before + header.len() as u64;
    let write_header = |file: &File| file.write_all_at(header.as_bytes(), 0);
    // An unnamed log is reused by the next command body; the launch holds no copy of it
    // once it has returned.
    let give_back = |file: Arc<File>, len: u64| {
        if let Ok(file) = Arc::try_unwrap(file) {
            logs.give_back(file, len);
        }
    };
    // Undoes this try's mark on the log, for another try.
    let roll_back = |file: Arc<File>| {
        if is_unnamed {
            give_back(file, start_len);
        } else {
            let _ = file.set_len(before);
        }
    };
    // Output goes straight into the log, or through prun (`--output stream`), or to the
    // terminal (an interactive proc, whose log gets only the header and the footer).
    let wired = match l.stdout {
        Sink::Log => file
            .try_clone()
            .map(|f| l.log = Some(Arc::new(Mutex::new(LogWriter::new(f))))),
        Sink::Inherit => Ok(()),
        _ => {
            l.stderr = Sink::Fd(file.clone());
            l.stdout = Sink::Fd(file.clone());
            Ok(())
        }
    };
    if let Err(e) = wired {
        roll_back(file);
        return open_failed(e);
    }
    // A command still running that printed something, or that has run for a second, gets
    // its log's name now, so that `prun log` and `tail -f` can follow it and a crash of
    // prun loses at most its last second of output.
    let mut named_early = false;
    let result = {
        let launched = launcher.launch(l, cancel);
        tokio::pin!(launched);
        if is_unnamed {
            tokio::select! {
                r = &mut launched => r,
                () = printed_or_long(&file, start_len) => {
                    named_early = write_header(&file)
                        .and_then(|()| {
                            log::remaking_dir(log_path, || unix::link_unnamed(&file, log_path))
                        })
                        .is_ok();
                    launched.await
                }
            }
        } else {
            launched.await
        }
    };
    // The streams let go of the log (prun's copies of the child's descriptors are closed).
    if matches!(l.stdout, Sink::Fd(_)) {
        l.stdout = Sink::Capture;
        l.stderr = Sink::Capture;
    }
    l.log = None;
    // (A log that already has its name is not reused: that failure is final.)
    if let Err(e) = &result
        && e.resources_short()
        && !named_early
    {
        roll_back(file);
        return Tried::Short(e.to_string());
    }
    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
    let printed = len > start_len;
    let outcome = match &result {
        Ok(out) if out.ending == Ending::Exited && out.ok(&[0]) => Outcome::Success(Dynamic::UNIT),
        Ok(out) => Outcome::Failed {
            error: format!(
                "command `{}` {}",
                crate::shown::command(l),
                out.describe(l, &[0])
            ),
            exit_code: out.status(&[0]).code,
        },
        Err(e) => Outcome::Failed {
            error: e.to_string(),
            exit_code: None,
        },
    };
    // A log an earlier attempt left has this attempt's header already: it gets its footer.
    let keep = printed || named_early || !is_unnamed || matches!(outcome, Outcome::Failed { .. });
    // A daemon the command left (`setsid daemon &`) may still hold the log and write into
    // it: the log is then kept for what it writes later, and never handed to the next
    // command body. Where that cannot be known (an embedder's run), it is not handed on.
    let held = if keep {
        Some(false)
    } else {
        unix::adopted_hold(&file)
    };
    if !keep && held != Some(true) {
        if held == Some(false) {
            give_back(file, len);
        }
        return Tried::Done(outcome, !is_unnamed);
    }
    // Made only for a log that is kept: most command bodies print nothing and succeed.
    let footer = match &result {
        Ok(out) => launch::footer(out, l, &[0]),
        Err(e) => format!("# {e}"),
    };
    // An unnamed log that cannot get its header is not kept, as one that cannot get its
    // name is not.
    if is_unnamed
        && !named_early
        && let Err(e) = write_header(&file)
    {
        return Tried::Done(unlogged(outcome, &e), false);
    }
    // On a line of its own: the child may have left its last line unfinished.
    let outcome = match LogWriter::line_after_child(&file, len.max(start_len), &footer) {
        Ok(()) => outcome,
        Err(e) => unlogged(outcome, &e),
    };
    if !is_unnamed || named_early {
        return Tried::Done(outcome, true);
    }
    let linked = log::remaking_dir(log_path, || unix::link_unnamed(&file, log_path)).is_ok();
    Tried::Done(outcome, linked)
}

/// Returns once the command has written past `start_len` into its log (looked at every
/// [`LOOK_FOR_OUTPUT_EVERY`]) or has run for [`NAME_RUNNING_LOG_AFTER`].
async fn printed_or_long(file: &File, start_len: u64) {
    let start = tokio::time::Instant::now();
    loop {
        tokio::time::sleep(LOOK_FOR_OUTPUT_EVERY).await;
        if start.elapsed() >= NAME_RUNNING_LOG_AFTER
            || file.metadata().is_ok_and(|m| m.len() > start_len)
        {
            return;
        }
    }
}

/// A failure whose log prun could not write (a full disk, most often): the error says so,
/// since what the command printed about its failure (`tr: write error: No space left on
/// device`) went to the same log and is lost with it.
fn unlogged(outcome: Outcome, e: &std::io::Error) -> Outcome {
    match outcome {
        Outcome::Failed { error, exit_code } => Outcome::Failed {
            error: format!("{error} (its log could not be written: {e})"),
            exit_code,
        },
        other => other,
    }
}

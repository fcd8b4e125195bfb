//! Command bodies (`cmd: [...]`, `shell: "..."`): spawned and awaited on the async runtime,
//! with their output going straight into the proc's log.

use std::io::Write;
use std::path::Path;
use std::time::Duration;

use rhai::Dynamic;
use tokio_util::sync::CancellationToken;

use super::command::{self, CommandSpec, Ending, Program};
use super::core::JobSpec;
use super::log;
use super::state::Outcome;
use super::unix;
use crate::graph::Body;

/// The command a command body runs, with the proc's `env`, `cwd` and `timeout`.
pub fn command_spec(job: &JobSpec, kill_grace: Duration) -> Option<CommandSpec> {
    let program = match &job.def.body {
        Body::Cmd(argv) => Program::Argv(argv.clone()),
        Body::Shell(s) => Program::Shell(s.clone()),
        Body::Closure(_) => return None,
    };
    Some(CommandSpec {
        program,
        env: job.def.env.clone(),
        cwd: job.def.cwd.as_ref().map(Into::into),
        timeout: job.def.timeout,
        kill_grace,
    })
}

/// Runs a command body to completion and maps its exit to an [`Outcome`].
///
/// The output goes straight from the child into the log file. A first attempt writes into
/// an unnamed file that is linked as the proc's log only if the command printed something
/// or failed: a silent, successful command leaves no log file (see `unix::open_unnamed`).
pub async fn run_command_body(
    spec: CommandSpec,
    cancel: CancellationToken,
    log_path: &Path,
) -> Outcome {
    let failed = |error: String| Outcome::Failed {
        error,
        exit_code: None,
    };
    let unnamed = if log_path.exists() {
        None
    } else {
        log_path.parent().and_then(|d| unix::open_unnamed(d).ok())
    };
    let (mut file, is_unnamed) = match unnamed {
        Some(f) => (f, true),
        None => match log::open_append(log_path) {
            Ok(f) => (f, false),
            Err(e) => return failed(format!("failed to open log {}: {e}", log_path.display())),
        },
    };
    if let Err(e) = command::write_header(&mut file, &spec) {
        return failed(format!("failed to write log {}: {e}", log_path.display()));
    }
    let header_len = file.metadata().map(|m| m.len()).unwrap_or(0);
    let dup = match file.try_clone() {
        Ok(f) => f,
        Err(e) => return failed(format!("failed to open log {}: {e}", log_path.display())),
    };
    let result = command::run_to_file(&spec, &cancel, dup).await;
    let printed = file.metadata().map(|m| m.len()).unwrap_or(0) > header_len;
    let outcome = match result {
        Ok(out) => {
            let _ = command::write_footer(&mut file, &out, &spec);
            if out.ending == Ending::Exited && out.code == Some(0) {
                Outcome::Success(Dynamic::UNIT)
            } else {
                Outcome::Failed {
                    error: format!("command `{spec}` {}", out.describe(spec.timeout)),
                    exit_code: out.code,
                }
            }
        }
        Err(e) => {
            let _ = writeln!(file, "# {e}");
            failed(e.to_string())
        }
    };
    if is_unnamed && (printed || matches!(outcome, Outcome::Failed { .. })) {
        let _ = unix::link_unnamed(&file, log_path);
    }
    outcome
}

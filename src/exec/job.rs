//! Command bodies (`cmd: [...]`, `shell: "..."`): spawned and awaited on the async runtime,
//! with their output going straight into the proc's log.

use std::path::Path;
use std::time::Duration;

use rhai::Dynamic;
use tokio_util::sync::CancellationToken;

use super::command::{self, CommandSpec, Ending, Program};
use super::core::JobSpec;
use super::log;
use super::state::Outcome;
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
pub async fn run_command_body(
    spec: CommandSpec,
    cancel: CancellationToken,
    log_path: &Path,
) -> Outcome {
    let failed = |error: String| Outcome::Failed {
        error,
        exit_code: None,
    };
    let mut file = match log::open_append(log_path) {
        Ok(f) => f,
        Err(e) => return failed(format!("failed to open log {}: {e}", log_path.display())),
    };
    if let Err(e) = command::write_header(&mut file, &spec) {
        return failed(format!("failed to write log {}: {e}", log_path.display()));
    }
    let dup = match file.try_clone() {
        Ok(f) => f,
        Err(e) => return failed(format!("failed to open log {}: {e}", log_path.display())),
    };
    match command::run_to_file(&spec, &cancel, dup).await {
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
            let _ = log::append_line(log_path, &format!("# {e}"));
            failed(e.to_string())
        }
    }
}

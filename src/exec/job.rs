//! Command bodies (`cmd: [...]`, `shell: "..."`): launched and awaited on the async
//! runtime, with their output going into the proc's log without passing through prun.

use std::path::Path;
use std::time::Duration;

use rhai::Dynamic;
use tokio_util::sync::CancellationToken;

use super::command::{CommandSpec, Program};
use super::core::JobSpec;
use super::launch::{self, Ending, Launch, Launcher, Sink};
use super::log::LazyLog;
use super::state::Outcome;
use crate::graph::Body;

/// The command a command body runs, with the proc's `env`, `cwd` and `timeout`.
pub fn command_launch(job: &JobSpec, kill_grace: Duration) -> Option<Launch> {
    let program = match &job.def.body {
        Body::Cmd(argv) => Program::Argv(argv.clone()),
        Body::Shell(s) => Program::Shell(s.clone()),
        Body::Closure(_) => return None,
    };
    let spec = CommandSpec {
        program,
        env: job.def.env.clone(),
        cwd: job.def.cwd.as_ref().map(Into::into),
    };
    let mut l = Launch::new(spec);
    l.timeout = job.def.timeout;
    l.kill_grace = kill_grace;
    Some(l)
}

/// Runs a command body to completion and maps its exit to an [`Outcome`]; also returns
/// whether the proc's log exists. The log is created when the command first prints, or
/// to record a failure: a silent, successful command leaves no log file.
pub async fn run_command_body(
    launcher: &dyn Launcher,
    mut l: Launch,
    cancel: CancellationToken,
    log_path: &Path,
) -> (Outcome, bool) {
    let log = LazyLog::new(log_path.to_path_buf(), launch::header(&l));
    l.stdout = Sink::Log(log.clone());
    l.stderr = Sink::Log(log.clone());
    let (outcome, footer) = match launcher.launch(&l, &cancel).await {
        Ok(out) if out.ending == Ending::Exited && out.ok(&[0]) => (
            Outcome::Success(Dynamic::UNIT),
            launch::footer(&out, &l, &[0]),
        ),
        Ok(out) => (
            Outcome::Failed {
                error: format!("command `{l}` {}", out.describe(&l, &[0])),
                exit_code: out.status(&[0]).code,
            },
            launch::footer(&out, &l, &[0]),
        ),
        Err(e) => {
            let footer = format!("# {e}");
            let o = Outcome::Failed {
                error: e.to_string(),
                exit_code: None,
            };
            (o, footer)
        }
    };
    let failed = matches!(outcome, Outcome::Failed { .. });
    let kept = log.finish(&footer, failed).unwrap_or(false);
    (outcome, kept)
}

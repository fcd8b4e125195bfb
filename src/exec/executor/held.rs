//! The wrapper a remote command runs under (an ssh command, a Slurm job): it ends the
//! command when the client's standard input closes, which prun holds open
//! ([`Input::Held`](crate::exec::launch::Input::Held)) until the command ends. A timeout,
//! Ctrl-C or `--fail-fast` closes it, and so does prun's death (SIGKILL included): the
//! client (`ssh`, `srun`) passes the end of its input on to the remote side, where no
//! process of prun's is left to end the command otherwise.

use std::time::Duration;

/// Runs the command given as its arguments after the first (the kill grace, in tenths of
/// a second), in its process group (an ssh session's, a Slurm task's), and exits with its
/// status. A watcher reads standard input meanwhile; when it closes (prun's timeout,
/// Ctrl-C or death, or the end of the ssh session) the whole group is ended: SIGTERM, up
/// to the grace, then SIGKILL. The watcher outlives the command: what the command left in
/// the group (`tool &`) is ended with it, and while such a process holds the session's
/// output, keeping the session open, a timeout or Ctrl-C still ends it (the watcher used
/// to be killed when the command exited, and the process ran on after prun returned). The
/// watcher's own output is `/dev/null`, so that it never keeps a session or a job's
/// output open itself. It ignores SIGTERM only once it sends it to the group: a SIGTERM
/// from elsewhere (a Slurm job cancelled with `scancel`) ends it too. Ignoring it from
/// the start, it outlived the shell, was no longer found as the job's (the job's
/// processes are found as the descendants of slurmstepd), and kept the job's output
/// open: the job stayed COMPLETING for a minute, and no other job started on its node
/// meanwhile. The wrapper's shell itself ends the group the same way when it gets a
/// SIGTERM (`scancel`, a host shutting down): it used to die of it at once, and a
/// command that ignores SIGTERM, reparented to init, escaped the SIGKILL Slurm sends
/// after `KillWait` (found as slurmstepd's descendant no more) and ran on, the job
/// stuck COMPLETING.
const WRAPPER: &str = r#"g=$1; shift
exec 3<&0 0</dev/null
"$@" 3<&- &
c=$!
e() { trap '' TERM; kill -TERM 0; i=0
  while kill -0 $c 2>/dev/null && [ $i -lt $g ]; do sleep 0.1; i=$((i+1)); done
  kill -KILL 0; }
{ read _ <&3; e; } >/dev/null 2>&1 &
exec 3<&-
trap e TERM
wait $c"#;

/// The words that run a command (the words after them) under [`WRAPPER`] with the kill
/// grace `grace`: `sh -c WRAPPER prun TENTHS`.
pub(super) fn wrapper(grace: Duration) -> [String; 5] {
    [
        "sh".into(),
        "-c".into(),
        WRAPPER.into(),
        "prun".into(),
        grace.as_millis().div_ceil(100).to_string(),
    ]
}

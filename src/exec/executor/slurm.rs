//! The `slurm` executor: each command runs as a Slurm job through `srun`, which waits for
//! the job, streams its output into the proc's log and exits with its exit code.
//!
//! `srun` rather than `sbatch --wait`: `sbatch --wait` polls the controller and takes
//! about 2 s per job at best, where `srun` returns as soon as the task ends (0.07 s for
//! `srun true` on a single node), and it needs no output files to copy back.
//!
//! Each job gets a name unique to this run (`prun.NAME.PID-TOKEN.N`), which is how prun finds
//! it again: to cancel it (`scancel --name`) when a timeout, `--fail-fast` or Ctrl-C ends
//! the local `srun`, and to learn its job id for the display, the JSON report and the task
//! DB. The command's environment and working directory are `srun`'s own (Slurm carries
//! the submitting environment and directory to the job), the proc's `resources` become
//! `--cpus-per-task` and `--mem`, and its timeout (plus the kill grace) becomes the job's
//! time limit. The job runs under the remote commands' wrapper ([`wrapper`]), which ends
//! it when srun's input closes: srun forwards its input to the job, and prun holds it
//! open until the command ends, so a prun killed with SIGKILL takes its jobs with it.

use std::ffi::OsString;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use super::cwd::{NO_DIR_STATUS, enter, no_dir, nonce, sh_word, stderr_tail};
use super::held::wrapper;
use super::{DeclarationError, OnExecutor, Options, argv_of, client_error, relay, single};
use crate::exec::command::{CommandError, CommandSpec, Program};
use crate::exec::launch::{Ending, Input, Launch, LaunchOutput, Launcher};
use crate::graph::Resources;
use crate::graph::resources::{CPUS, MEM};

/// `max_jobs` when the declaration leaves it out.
const DEFAULT_MAX_JOBS: usize = 16;

/// How long a job runs before prun looks up its id (shorter ones are looked up at their
/// end).
const LOOK_UP_AFTER: Duration = Duration::from_millis(500);

/// How long prun waits for a cancelled job to leave the queue.
const CANCEL_WAIT: Duration = Duration::from_secs(10);

/// The variable that gives srun its jobs' directory, as `--chdir` does.
const WORKING_DIR_VARIABLE: &str = "SLURM_WORKING_DIR";

/// Numbers the jobs of this run, for their unique names.
static JOBS: AtomicUsize = AtomicUsize::new(0);

/// A `slurm` executor.
#[derive(Debug)]
pub(crate) struct Slurm {
    max_jobs: usize,
    partition: Option<String>,
    args: Vec<String>,
}

impl Slurm {
    pub(super) fn parse(o: &Options) -> Result<Slurm, DeclarationError> {
        o.check_keys(&["max_jobs", "partition", "args"])?;
        Ok(Slurm {
            max_jobs: o.count("max_jobs")?.unwrap_or(DEFAULT_MAX_JOBS),
            partition: o.string("partition")?,
            args: o.strings("args")?,
        })
    }

    /// How many of its jobs may run at once.
    pub(crate) fn max_jobs(&self) -> usize {
        self.max_jobs
    }

    /// The options of the declaration's `args`, given to every `srun`.
    pub(crate) fn client_args(&self) -> &[String] {
        &self.args
    }

    /// `slurm max_jobs 4 partition batch`.
    pub(crate) fn describe(&self) -> String {
        let mut d = format!("slurm max_jobs {}", self.max_jobs);
        if let Some(p) = &self.partition {
            d.push_str(&format!(" partition {p}"));
        }
        d
    }

    /// Whether the declaration's `args` choose the jobs' directory (`-D DIR`,
    /// `--chdir=DIR`, or an abbreviation srun takes, down to `--ch`).
    fn args_choose_directory(&self) -> bool {
        self.args.iter().any(|a| {
            let name = a.split('=').next().unwrap_or(a);
            a.starts_with("-D") || (name.len() >= "--ch".len() && "--chdir".starts_with(name))
        })
    }

    /// The `srun` command line for one job, which runs `command` after entering `dir`
    /// (see [`enter`]) with the marker `nonce`, when it is given.
    fn srun(
        &self,
        job: &str,
        resources: &Resources,
        launch: &Launch,
        command: Vec<String>,
        enter_dir: Option<(&Path, &str)>,
    ) -> Vec<String> {
        // Quiet twice: errors too, among them the `srun: error: NODE: task 0: Exited with
        // exit code 3` that srun writes into the command's stderr (the reasons for a
        // refused job are asked for again, see [`why_refused`]).
        let mut argv: Vec<String> = ["srun", "--quiet", "--quiet", "--ntasks=1"]
            .map(String::from)
            .into();
        if let Some(p) = &self.partition {
            argv.push(format!("--partition={p}"));
        }
        // A zero amount asks for nothing, as an absent one (Slurm's `--mem=0` would ask
        // for all of a node's memory).
        if resources.get(CPUS) > 0 {
            argv.push(format!("--cpus-per-task={}", resources.get(CPUS)));
        }
        if resources.get(MEM) > 0 {
            argv.push(format!("--mem={}M", resources.get(MEM).div_ceil(1 << 20)));
        }
        if let Some(t) = launch.timeout {
            let secs = t.saturating_add(launch.kill_grace).as_secs_f64().ceil() as u64;
            argv.push(format!("--time={}:{:02}", secs / 60, secs % 60));
        }
        argv.extend(self.args.iter().cloned());
        // After `args`, where they win over a `--job-name` or `--input` there: prun finds
        // its jobs by this name (to cancel them, and to tell a refused job from a failed
        // command), and the job ends when srun's input, which prun holds, closes.
        argv.push(format!("--job-name={job}"));
        argv.push("--input=all".into());
        argv.push("--".into());
        argv.extend(wrapper(launch.kill_grace));
        if let Some((dir, nonce)) = enter_dir {
            let script = enter(&sh_word(&dir.to_string_lossy()), nonce) + "exec \"$@\"";
            argv.extend(["sh".into(), "-c".into(), script, "sh".into()]);
        }
        argv.extend(command);
        argv
    }

    /// Runs `launch` as a Slurm job of the proc of `on`, with its resources, through its
    /// local launcher, telling its `placed` the job's id.
    pub(super) async fn launch(
        &self,
        on: &OnExecutor,
        launch: &Launch,
        cancel: &CancellationToken,
    ) -> Result<LaunchOutput, CommandError> {
        let (local, proc, resources) = (&*on.local, on.proc.as_str(), &on.resources);
        let placed = &*on.placed;
        let spec = single(launch, "slurm")?;
        let hidden = local.hidden_env();
        let job = job_name(proc);
        // Where srun runs, and so the job, unless the executor's `args` or srun's
        // variable choose another: slurmstepd runs a job whose directory it cannot enter
        // in /tmp, so the job enters it again itself, or fails.
        let chosen = self.args_choose_directory()
            || spec.env.iter().any(|(k, _)| k == WORKING_DIR_VARIABLE)
            || std::env::var_os(WORKING_DIR_VARIABLE).is_some();
        let dir = match chosen {
            true => None,
            false => Some(
                std::path::absolute(spec.cwd.as_deref().unwrap_or(Path::new("."))).map_err(
                    |e| CommandError::Remote {
                        message: format!("cannot tell the job's working directory: {e}"),
                        command: crate::shown::command(launch),
                    },
                )?,
            ),
        };
        let nonce = nonce();
        let client = CommandSpec {
            program: Program::Argv(self.srun(
                &job,
                resources,
                launch,
                argv_of(spec, &on.policy),
                dir.as_deref().map(|d| (d, nonce.as_str())),
            )),
            env: spec.env.clone(),
            cwd: spec.cwd.clone(),
        };
        let relayed = relay(launch, client, Input::Held)?;
        let launched = local.launch(&relayed, cancel);
        tokio::pin!(launched);
        // A job still running after a moment is looked up, so that the display shows it
        // while it runs; a shorter one when it has ended.
        let mut place = None;
        let result = tokio::select! {
            r = &mut launched => r,
            () = tokio::time::sleep(LOOK_UP_AFTER) => {
                let info = job_info(&job, hidden).await;
                place = info.as_ref().map(|j| format!("slurm job {}", j.id));
                if let Some(p) = &place {
                    placed(p);
                }
                tokio::select! {
                    r = &mut launched => r,
                    stuck = never_starts(&job, info, hidden) => {
                        scancel(&job, hidden).await;
                        let _ = launched.await;
                        return Err(CommandError::Remote {
                            message: format!(
                                "slurm job {} can never start: {} ({}), so it was cancelled",
                                stuck.id, stuck.state, stuck.reason
                            ),
                            command: crate::shown::command(launch),
                        });
                    }
                }
            }
        };
        let ended_early = result.as_ref().map_or(true, |o| o.ending != Ending::Exited);
        if ended_early {
            scancel(&job, hidden).await;
        }
        let mut out = result.map_err(|e| client_error(e, launch, "slurm"))?;
        let failed = match out.stages[0].code {
            Some(code) if code != 0 && out.ending == Ending::Exited => Some(code),
            _ => None,
        };
        // An ended job is looked up whatever srun's status: srun exits 0 when the job's
        // node fails, and sometimes when it is cancelled (then COMPLETING hides the
        // CANCELLED for a moment).
        let info = match (ended_early, &place) {
            (false, _) => settled_job_info(&job, hidden, || stderr_tail(&relayed, &out)).await,
            (true, None) => job_info(&job, hidden).await,
            (true, Some(_)) => None,
        };
        if place.is_none()
            && let Some(j) = &info
        {
            let p = format!("slurm job {}", j.id);
            placed(&p);
            place = Some(p);
        }
        // srun, quiet twice, says nothing itself: a captured stderr's last line is the
        // command's or slurmstepd's.
        let said = match out.stderr.text.trim().lines().last() {
            Some(line) => format!(": {line}"),
            None => String::new(),
        };
        if let Some(j) = info
            .as_ref()
            .filter(|j| !ended_early && ENDED_BY_SLURM.contains(&j.state.as_str()))
        {
            let reason = match j.reason.as_str() {
                "" | "None" => String::new(),
                r => format!(" ({r})"),
            };
            let status = out.stages[0]
                .code
                .map_or(String::new(), |c| format!(" (srun exit status {c})"));
            return Err(CommandError::Remote {
                message: format!(
                    "slurm job {} ended as {}{reason}, not by its command{status}{said}",
                    j.id, j.state
                ),
                command: crate::shown::command(launch),
            });
        }
        if let Some(code) = failed
            && info.as_ref().is_none_or(|j| j.nodes.is_empty())
        {
            let said = match why_refused(&relayed.stages[0], hidden).await {
                Some(why) => format!(": {why}"),
                None => said,
            };
            let message = match &info {
                None => format!("srun did not submit the job (srun exit status {code}){said}"),
                Some(j) => format!(
                    "slurm job {} was refused: {} ({}){said}",
                    j.id, j.state, j.reason
                ),
            };
            return Err(CommandError::Remote {
                message,
                command: crate::shown::command(launch),
            });
        }
        if let Some(dir) = &dir
            && out.ending == Ending::Exited
            && out.stages[0].code == Some(NO_DIR_STATUS)
            && let Some(why) = no_dir(&stderr_tail(&relayed, &out), &nonce)
        {
            return Err(CommandError::Remote {
                message: format!(
                    "working directory {} {why} on {}",
                    dir.display(),
                    place.as_deref().unwrap_or("the slurm job")
                ),
                command: crate::shown::command(launch),
            });
        }
        out.place = place;
        Ok(out)
    }
}

/// The most of a proc's name a job name keeps: Slurm refuses a job name longer than 1024
/// bytes, and the pid and counter after it make it unique.
const JOB_NAME_PROC: usize = 200;

/// A job name unique to this run: `prun.NAME.PID-TOKEN.N`, with characters other than
/// letters, digits, `_`, `-` and `.` written as `_`, and `NAME` cut to [`JOB_NAME_PROC`].
/// `TOKEN` is random, drawn once per process: two prun on two login nodes of one cluster
/// may have the same pid, and one would cancel (or report) the other's job of a proc of
/// the same name.
fn job_name(proc: &str) -> String {
    static TOKEN: std::sync::LazyLock<u32> = std::sync::LazyLock::new(|| {
        use std::hash::{BuildHasher, Hasher};
        // The standard library seeds each `RandomState` from the system's randomness.
        std::collections::hash_map::RandomState::new()
            .build_hasher()
            .finish() as u32
    });
    let clean: String = proc
        .chars()
        .take(JOB_NAME_PROC)
        .map(|c| {
            if c.is_ascii_alphanumeric() || "_-.".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    let n = JOBS.fetch_add(1, Ordering::Relaxed);
    format!("prun.{clean}.{}-{:08x}.{n}", std::process::id(), *TOKEN)
}

/// Runs a Slurm client command to its end, returning its stdout when it succeeds. It
/// does not inherit the variables of prun's environment in `hidden` (see
/// [`crate::sigchld::spawn`]).
async fn query(argv: &[&str], hidden: &[OsString]) -> Option<String> {
    let mut cmd = std::process::Command::new(argv[0]);
    cmd.args(&argv[1..]);
    let (status, out) = read_client(cmd, Stream::Stdout, hidden).await?;
    status.success().then_some(out)
}

/// One of a client's output streams.
#[derive(Clone, Copy, PartialEq)]
enum Stream {
    Stdout,
    Stderr,
}

/// Runs the Slurm client command `cmd` to its end, returning its exit status and what
/// it wrote to `stream` (the other goes to /dev/null); see [`query`].
async fn read_client(
    mut cmd: std::process::Command,
    stream: Stream,
    hidden: &[OsString],
) -> Option<(std::process::ExitStatus, String)> {
    use std::os::unix::process::CommandExt;
    use std::process::Stdio;
    use tokio::io::AsyncReadExt;
    let pipe = |s| {
        if s == stream {
            Stdio::piped()
        } else {
            Stdio::null()
        }
    };
    // In a group of its own, as every child of prun: the Ctrl-C that the terminal sends
    // to prun's group does not cut short the `scancel` run because of it.
    cmd.process_group(0)
        .stdin(Stdio::null())
        .stdout(pipe(Stream::Stdout))
        .stderr(pipe(Stream::Stderr));
    let mut child = crate::sigchld::spawn(&mut cmd, hidden).ok()?;
    let read = match stream {
        Stream::Stdout => child.stdout.take().map(std::os::fd::OwnedFd::from),
        Stream::Stderr => child.stderr.take().map(std::os::fd::OwnedFd::from),
    };
    let mut child = crate::exec::unix::Child::new(child.id());
    let mut out = Vec::new();
    if let Some(Ok(mut read)) = read.map(tokio::net::unix::pipe::Receiver::from_owned_fd) {
        let _ = read.read_to_end(&mut out).await;
    }
    let status = child.wait().await.ok()?;
    Some((status, String::from_utf8_lossy(&out).into_owned()))
}

/// Why Slurm would not run the job of `client` (an `srun` command line of
/// [`Slurm::srun`]): what `srun --test-only` with its options, environment and directory
/// says on stderr, its lines joined by `; `, or `None` when that would run it. The job's
/// own `srun` said nothing: it is `--quiet` twice.
async fn why_refused(client: &CommandSpec, hidden: &[OsString]) -> Option<String> {
    let Program::Argv(argv) = &client.program else {
        return None;
    };
    let mut cmd = std::process::Command::new(&argv[0]);
    cmd.arg("--test-only")
        .args(argv[1..].iter().filter(|a| *a != "--quiet"))
        .envs(client.env.iter().map(|(k, v)| (k, v)));
    if let Some(dir) = &client.cwd {
        cmd.current_dir(dir);
    }
    let (status, said) = read_client(cmd, Stream::Stderr, hidden).await?;
    // Slurm would run it now: what stopped the job was not its request.
    if status.success() {
        return None;
    }
    let lines: Vec<&str> = said
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    (!lines.is_empty()).then(|| lines.join("; "))
}

/// A job as `squeue` shows it.
struct JobInfo {
    id: String,
    /// `COMPLETED`, `FAILED`, `TIMEOUT`, ...
    state: String,
    /// Why it is in that state: `NonZeroExitCode`, `BadConstraints`, `None`, ...
    reason: String,
    /// The nodes it was given: none when it never got any (the controller refused it).
    nodes: String,
}

/// The job named `job` (finished jobs stay known to the controller for a few minutes).
async fn job_info(job: &str, hidden: &[OsString]) -> Option<JobInfo> {
    let name = format!("--name={job}");
    let out = query(
        &[
            "squeue",
            "--noheader",
            "--states=all",
            &name,
            "--format=%i|%T|%r|%N",
        ],
        hidden,
    )
    .await?;
    let mut fields = out.lines().next()?.trim().splitn(4, '|');
    let id = fields.next().filter(|id| !id.is_empty())?.to_string();
    let mut next = || fields.next().unwrap_or_default().trim().to_string();
    Some(JobInfo {
        id,
        state: next(),
        reason: next(),
        nodes: next(),
    })
}

/// States of a job that Slurm ended, not its command: `srun` exits 0 after a node
/// failure, and with the status of a signal (143) when the job is cancelled from outside.
const ENDED_BY_SLURM: &[&str] = &[
    "NODE_FAIL",
    "CANCELLED",
    "TIMEOUT",
    "PREEMPTED",
    "OUT_OF_MEMORY",
    "BOOT_FAIL",
    "DEADLINE",
];

/// How long prun waits for an ended job to leave the COMPLETING state, which hides the
/// state it ended in. srun can exit 0 for a job cancelled from outside (when it is told
/// the job ended before the task's status reached it), so srun's status alone would call
/// a CANCELLED job a success; a loaded controller or a slow epilog keeps jobs COMPLETING
/// for seconds (3 s was not enough for the test suite on a loaded 2-core machine). Past
/// this wait, srun's status decides, unless slurmstepd's line said more before
/// (see [`stepd_ended`]).
const SETTLE_WAIT: Duration = Duration::from_secs(30);

/// The first wait between two look-ups of a COMPLETING job; each next one is twice as
/// long, up to a second (a thousand ending jobs must not query the controller in a loop).
const SETTLE_POLL: Duration = Duration::from_millis(100);

/// The job named `job` once it has ended: looked up again while it is COMPLETING (up to
/// [`SETTLE_WAIT`]), unless slurmstepd's line in the end of the job's stderr (`stderr`,
/// read when the job is found COMPLETING) says how Slurm ended it (see [`stepd_ended`]).
async fn settled_job_info(
    job: &str,
    hidden: &[OsString],
    stderr: impl Fn() -> String,
) -> Option<JobInfo> {
    let deadline = Instant::now() + SETTLE_WAIT;
    let mut poll = SETTLE_POLL;
    loop {
        let info = job_info(job, hidden).await;
        match info {
            Some(j) if j.state == "COMPLETING" => {
                if let Some(state) = stepd_ended(&stderr(), &j.id) {
                    return Some(JobInfo {
                        state: state.into(),
                        ..j
                    });
                }
                if Instant::now() >= deadline {
                    return Some(j);
                }
                tokio::time::sleep(poll).await;
                poll = (poll * 2).min(Duration::from_secs(1));
            }
            _ => return info,
        }
    }
}

/// The state Slurm ended the job `id` in, as slurmstepd's line in its stderr says it
/// (`slurmstepd-node: error: *** STEP 12.0 ON node CANCELLED AT 2026-12-01T17:45:58 ***`,
/// or `*** JOB 12 ON ...`, with ` DUE TO TIME LIMIT` and the like before the closing
/// stars), in `stderr_tail`, the end of the job's stderr. slurmstepd writes it when it
/// starts ending the job, so it is there while the job is still COMPLETING: a process
/// of the job that escaped the end and holds its output keeps it so for as long as it
/// lives, and `srun` has meanwhile exited 0.
fn stepd_ended(stderr_tail: &str, id: &str) -> Option<&'static str> {
    let (step, job) = (format!("*** STEP {id}."), format!("*** JOB {id} ON "));
    let line = stderr_tail
        .lines()
        .rev()
        .find_map(|l| l.find(&step).or_else(|| l.find(&job)).map(|at| &l[at..]))?;
    let (_, after) = line.split_once(" CANCELLED AT ")?;
    let due = [
        ("DUE TO TIME LIMIT", "TIMEOUT"),
        ("DUE TO PREEMPTION", "PREEMPTED"),
        ("DUE TO NODE FAILURE", "NODE_FAIL"),
    ];
    Some(
        due.iter()
            .find(|(why, _)| after.contains(why))
            .map_or("CANCELLED", |(_, state)| state),
    )
}

/// Why a pending job waits that no job's end can change: its request does not fit the
/// partition or the nodes (`srun` waits for good: "Requested partition configuration not
/// available now").
const NEVER_STARTS: &[&str] = &[
    "PartitionConfig",
    "PartitionNodeLimit",
    "PartitionTimeLimit",
    "BadConstraints",
    "InvalidAccount",
    "InvalidQOS",
];

/// How long after the first look-up a pending job is looked up again; each next look-up
/// waits twice as long, up to [`PENDING_POLL_MAX`] (Slurm gives most reasons at
/// submission, and a thousand pending jobs must not query the controller every second).
const PENDING_POLL: Duration = Duration::from_secs(1);

/// The longest wait between two look-ups of a pending job.
const PENDING_POLL_MAX: Duration = Duration::from_secs(60);

/// Returns once the job named `job` (first seen as `info`) is pending for a reason of
/// [`NEVER_STARTS`]; never, once it has started (or cannot be looked up).
async fn never_starts(job: &str, mut info: Option<JobInfo>, hidden: &[OsString]) -> JobInfo {
    let mut poll = PENDING_POLL;
    loop {
        match info {
            Some(j) if j.state == "PENDING" && NEVER_STARTS.contains(&j.reason.as_str()) => {
                return j;
            }
            Some(j) if j.state == "PENDING" => {}
            _ => std::future::pending::<()>().await,
        }
        tokio::time::sleep(poll).await;
        poll = (poll * 2).min(PENDING_POLL_MAX);
        info = job_info(job, hidden).await;
    }
}

/// Cancels the job named `job` and waits (bounded) until it has left the queue.
async fn scancel(job: &str, hidden: &[OsString]) {
    let name = format!("--name={job}");
    query(&["scancel", "--full", &name], hidden).await;
    let deadline = Instant::now() + CANCEL_WAIT;
    while Instant::now() < deadline {
        match query(&["squeue", "--noheader", &name, "--format=%i"], hidden).await {
            Some(ids) if !ids.trim().is_empty() => {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            _ => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_args_choose_the_directory_with_chdir_in_any_form_srun_takes() {
        let with = |args: &[&str]| Slurm {
            max_jobs: 1,
            partition: None,
            args: args.iter().map(|a| a.to_string()).collect(),
        };
        for args in [
            &["-D", "/x"][..],
            &["-D/x"],
            &["--chdir=/x"],
            &["--ch", "/x"],
        ] {
            assert!(with(args).args_choose_directory(), "{args:?}");
        }
        for args in [&["--constraint=a"][..], &["--c=1"], &["--qos=normal"], &[]] {
            assert!(!with(args).args_choose_directory(), "{args:?}");
        }
    }

    #[test]
    fn slurmstepd_s_line_tells_how_slurm_ended_the_job() {
        let tail = |line: &str| format!("the command's own line\n{line}\n");
        let cancelled =
            "slurmstepd-vm: error: *** STEP 12.0 ON vm CANCELLED AT 2026-12-01T17:45:58 ***";
        assert_eq!(stepd_ended(&tail(cancelled), "12"), Some("CANCELLED"));
        // Another job's line (a job id that starts the same) is not this one's.
        assert_eq!(stepd_ended(&tail(cancelled), "1"), None);
        let timed_out = "slurmstepd: error: *** JOB 7 ON vm CANCELLED AT 2026-12-01T17:45:58 DUE TO TIME LIMIT ***";
        assert_eq!(stepd_ended(&tail(timed_out), "7"), Some("TIMEOUT"));
        assert_eq!(stepd_ended(&tail("*** STEP 12.0 ON vm ***"), "12"), None);
    }

    #[test]
    fn a_long_proc_name_makes_a_job_name_slurm_takes() {
        // Slurm refused a job of a proc named with 2,000 characters: "Pathname of a
        // file, directory or other parameter too long".
        let long = "x".repeat(5000);
        let (a, b) = (job_name(&long), job_name(&long));
        assert!(a.len() <= 1024, "{} bytes", a.len());
        assert_ne!(a, b);
        assert!(a.starts_with(&format!("prun.{}.", "x".repeat(JOB_NAME_PROC))));
        assert!(job_name("a b/é").starts_with("prun.a_b__."));
        // The pid and a random token: unique across the submitting machines too.
        let token = format!(".{}-", std::process::id());
        assert!(a.contains(&token), "{a}");
        let hex = a.split(&token).nth(1).unwrap().split('.').next().unwrap();
        assert!(
            hex.len() == 8 && u32::from_str_radix(hex, 16).is_ok(),
            "{a}"
        );
    }
}

//! Executors: where a proc's commands run when not on this machine
//! (`set_options(#{ executors: #{ hpc: #{ kind: "slurm", ... } } })`, then
//! `proc(..., #{ executor: "hpc" })`).
//!
//! An executor is a [`Launcher`]: each command of a proc goes to it at the one point where
//! commands are launched, and it runs a local client (`ssh`, `srun`) through the local
//! launcher, with the command's output streams, timeout and cancellation. So output lands
//! in the proc's log and a timeout or Ctrl-C ends the client as it ends any local command;
//! each executor makes sure that ending the client ends the remote work too. The scheduler
//! bounds how many of an executor's procs run at once by its [`Executor::limit`] (Slurm's
//! `max_jobs`, the sum of the SSH hosts' slots) instead of `-j`.

mod cwd;
mod held;
mod slurm;
mod ssh;

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use rhai::{Dynamic, Map};
use tokio_util::sync::CancellationToken;

use super::command::{CommandError, CommandSpec, Program};
use super::launch::{Input, Launch, LaunchOutput, Launcher, Local, Sink};
use super::policy::Policy;
use crate::graph::Resources;

pub(crate) use slurm::Slurm;
pub(crate) use ssh::Ssh;

/// A declared executor.
#[derive(Debug)]
pub(crate) enum Executor {
    Ssh(Box<Ssh>),
    Slurm(Slurm),
}

impl Executor {
    /// Reads an executor's declaration (`#{ kind: "ssh", hosts: [...] }`).
    pub(crate) fn parse(name: &str, value: &Dynamic) -> Result<Executor, DeclarationError> {
        if name.is_empty() || name.chars().any(char::is_control) {
            return Err(DeclarationError::Name(name.to_string()));
        }
        let map = value
            .clone()
            .try_cast::<Map>()
            .ok_or_else(|| DeclarationError::NotAMap(name.to_string()))?;
        let kind = map.get("kind").map(|k| k.to_string()).unwrap_or_default();
        let opts = Options {
            executor: name,
            map: &map,
        };
        match kind.as_str() {
            "ssh" => Ssh::parse(&opts).map(|s| Executor::Ssh(Box::new(s))),
            "slurm" => Slurm::parse(&opts).map(Executor::Slurm),
            "" => Err(DeclarationError::NoKind(name.to_string())),
            other => Err(DeclarationError::UnknownKind {
                executor: name.to_string(),
                kind: other.to_string(),
            }),
        }
    }

    /// How many of its procs may run at once.
    pub(crate) fn limit(&self) -> usize {
        match self {
            Executor::Ssh(s) => s.slots(),
            Executor::Slurm(s) => s.max_jobs(),
        }
    }

    /// Its client (`ssh`, `srun`) and the options the script gives it (`args`).
    pub(crate) fn client_args(&self) -> (&'static str, &[String]) {
        match self {
            Executor::Ssh(s) => ("ssh", s.client_args()),
            Executor::Slurm(s) => ("srun", s.client_args()),
        }
    }

    /// What it is, for `prun list` and `--dry-run`: `ssh web1, web2:4`, `slurm max_jobs 4`.
    pub(crate) fn describe(&self) -> String {
        match self {
            Executor::Ssh(s) => s.describe(),
            Executor::Slurm(s) => s.describe(),
        }
    }

    /// The launcher for the commands of the proc `name`, which needs `resources`; it
    /// calls `placed` with where each command runs as soon as that is known, and runs
    /// each program as the run's `policy` pins it (see [`argv_of`]).
    pub(crate) fn launcher(
        self: &Arc<Self>,
        name: &str,
        resources: &Resources,
        placed: Placed,
        local: Arc<Local>,
        policy: Arc<Policy>,
    ) -> Arc<dyn Launcher> {
        Arc::new(OnExecutor {
            executor: self.clone(),
            proc: name.to_string(),
            resources: resources.clone(),
            placed,
            local,
            policy,
        })
    }

    /// Ends what it keeps open between commands (SSH master connections).
    pub(crate) fn close(&self) {
        if let Executor::Ssh(s) = self {
            s.close();
        }
    }
}

/// Where a proc runs and what it needs, for `prun list` and `--dry-run`:
/// `on farm (ssh web1, web2:4); needs cpus=2 mem=4G`, or `None` for a local proc without
/// resources. `executor` is the declared executor of its `executor` name.
pub(crate) fn placement(
    def: &crate::graph::ProcDef,
    executor: Option<&Executor>,
) -> Option<String> {
    let mut parts = Vec::new();
    if let Some(name) = &def.extras().executor {
        match executor {
            Some(e) => parts.push(format!("on {name} ({})", e.describe())),
            None => parts.push(format!("on {name}")),
        }
    }
    if !def.extras().resources.is_empty() {
        parts.push(format!("needs {}", def.extras().resources));
    }
    (!parts.is_empty()).then(|| parts.join("; "))
}

type Launched<'a> = Pin<Box<dyn Future<Output = Result<LaunchOutput, CommandError>> + Send + 'a>>;

/// Told where a command runs (the SSH host, `slurm job N`), once that is known.
pub(crate) type Placed = Arc<dyn Fn(&str) + Send + Sync>;

/// The commands of one proc on an executor.
struct OnExecutor {
    executor: Arc<Executor>,
    proc: String,
    resources: Resources,
    placed: Placed,
    /// The run's local launcher, which starts the executor's client (`ssh`, `srun`): its
    /// process groups are the run's, ended with it.
    local: Arc<Local>,
    /// The run's policy, which checked each command before it comes here.
    policy: Arc<Policy>,
}

impl Launcher for OnExecutor {
    fn launch<'a>(&'a self, launch: &'a Launch, cancel: &'a CancellationToken) -> Launched<'a> {
        match &*self.executor {
            Executor::Ssh(ssh) => {
                Box::pin(ssh.launch(&self.local, launch, &self.policy, cancel, &*self.placed))
            }
            Executor::Slurm(slurm) => Box::pin(slurm.launch(self, launch, cancel)),
        }
    }
}

/// A wrong executor declaration (`set_options(#{ executors })`); the message names the
/// executor.
#[derive(Debug, thiserror::Error)]
pub(crate) enum DeclarationError {
    #[error("executor \"{0}\" must be a map like #{{ kind: \"slurm\", max_jobs: 10 }}")]
    NotAMap(String),
    #[error("executor \"{0}\" needs a `kind`: \"ssh\" or \"slurm\"")]
    NoKind(String),
    #[error("executor \"{executor}\": unknown kind \"{kind}\" (valid kinds: ssh, slurm)")]
    UnknownKind { executor: String, kind: String },
    #[error("executor \"{0}\" is already declared")]
    Declared(String),
    /// A name a proc's `executor` could not give, or messages show on one line.
    #[error(
        "{} is not an executor name: a name is not empty and holds no control character (like hpc or farm)",
        crate::shown::c_quoted(.0).unwrap_or_else(|| format!("{:?}", .0))
    )]
    Name(String),
    #[error("executor \"{executor}\": {problem}")]
    Option { executor: String, problem: Problem },
}

/// What is wrong with one key of an executor's declaration.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Problem {
    #[error("unknown key `{key}` (valid keys: kind, {valid})")]
    UnknownKey { key: String, valid: String },
    #[error("`{key}` must be a string, not {found}")]
    NotAString { key: String, found: String },
    #[error("`{0}` must be a positive integer")]
    NotPositive(String),
    #[error("`{0}` must be an array of strings")]
    NotStrings(String),
    #[error("host \"{0}\": the slots after `:` must be a positive integer")]
    Slots(String),
    #[error("\"{0}\" is not a host name")]
    HostName(String),
    #[error("`hosts` must list at least one host, like [\"web1\", \"web2:4\"]")]
    NoHosts,
    #[error("`port` must be a TCP port number")]
    Port,
}

/// The declared executors, by name.
#[derive(Debug, Default)]
pub(crate) struct Executors {
    by_name: Mutex<HashMap<String, Arc<Executor>>>,
}

impl Executors {
    /// Declares `name`; a name is declared once.
    pub(crate) fn declare(
        &self,
        name: &str,
        executor: Executor,
    ) -> Result<Arc<Executor>, DeclarationError> {
        let mut by_name = self.by_name.lock().expect("executors");
        if name == "local" || by_name.contains_key(name) {
            return Err(DeclarationError::Declared(name.to_string()));
        }
        let e = Arc::new(executor);
        by_name.insert(name.to_string(), e.clone());
        Ok(e)
    }

    /// The executor declared as `name`.
    pub(crate) fn get(&self, name: &str) -> Option<Arc<Executor>> {
        self.by_name.lock().expect("executors").get(name).cloned()
    }

    /// Closes every executor (at the end of the run); see [`Executor::close`].
    pub(crate) fn close(&self) {
        for e in self.by_name.lock().expect("executors").values() {
            e.close();
        }
    }
}

/// An executor's declaration, with the helpers that read its keys.
struct Options<'a> {
    executor: &'a str,
    map: &'a Map,
}

impl Options<'_> {
    fn check_keys(&self, valid: &[&str]) -> Result<(), DeclarationError> {
        for k in self.map.keys() {
            if k != "kind" && !valid.contains(&k.as_str()) {
                return Err(self.error(Problem::UnknownKey {
                    key: k.to_string(),
                    valid: valid.join(", "),
                }));
            }
        }
        Ok(())
    }

    fn error(&self, problem: Problem) -> DeclarationError {
        DeclarationError::Option {
            executor: self.executor.to_string(),
            problem,
        }
    }

    fn string(&self, key: &str) -> Result<Option<String>, DeclarationError> {
        self.map
            .get(key)
            .map(|v| {
                v.clone().into_string().map_err(|found| {
                    self.error(Problem::NotAString {
                        key: key.to_string(),
                        found: found.to_string(),
                    })
                })
            })
            .transpose()
    }

    fn count(&self, key: &str) -> Result<Option<usize>, DeclarationError> {
        self.map
            .get(key)
            .map(|v| {
                v.as_int()
                    .ok()
                    .and_then(|n| usize::try_from(n).ok())
                    .filter(|&n| n > 0)
                    .ok_or_else(|| self.error(Problem::NotPositive(key.to_string())))
            })
            .transpose()
    }

    fn strings(&self, key: &str) -> Result<Vec<String>, DeclarationError> {
        let Some(v) = self.map.get(key) else {
            return Ok(Vec::new());
        };
        let bad = || self.error(Problem::NotStrings(key.to_string()));
        v.clone()
            .try_cast::<rhai::Array>()
            .ok_or_else(bad)?
            .into_iter()
            .map(|x| x.into_string().map_err(|_| bad()))
            .collect()
    }
}

/// `word` quoted for a POSIX shell: in single quotes, each `'` written as `'\''`. Every
/// byte but `'` is literal inside single quotes, so spaces, `$`, backticks, backslashes,
/// `*` and the empty string arrive as they are.
fn sh_quote(word: &str) -> String {
    format!("'{}'", word.replace('\'', r"'\''"))
}

/// The argv of a command on an executor's host: its own, or `sh -c TEXT` for a shell
/// string; under an allow list, the program is the file `policy` checked on this machine
/// (see [`Policy::remote_program`]), not what the host's `PATH` finds by its name.
fn argv_of(spec: &CommandSpec, policy: &Policy) -> Vec<String> {
    let mut argv = match &spec.program {
        Program::Argv(argv) => argv.clone(),
        Program::Shell(text) => vec!["sh".into(), "-c".into(), text.clone()],
    };
    if let (Some(program), Some(first)) = (policy.remote_program(spec), argv.first_mut()) {
        *first = program;
    }
    argv
}

/// The one command of `launch`: an executor (of `kind`) runs single commands, not
/// pipelines, and gives them no input.
fn single<'a>(launch: &'a Launch, kind: &str) -> Result<&'a CommandSpec, CommandError> {
    let refuse = |what: &str| CommandError::Remote {
        message: format!("{what} cannot run on a {kind} executor"),
        command: crate::shown::command(launch),
    };
    let [spec] = launch.stages.as_slice() else {
        return Err(refuse("a pipeline"));
    };
    match launch.stdin {
        Input::Null => {}
        Input::Inherit => return Err(refuse("a command of an interactive proc")),
        _ => return Err(refuse("a command with `stdin`")),
    }
    Ok(spec)
}

/// The executor's client command, run here with prun's environment.
fn client(argv: Vec<String>) -> CommandSpec {
    CommandSpec {
        program: Program::Argv(argv),
        env: Vec::new(),
        cwd: None,
    }
}

/// A local launch of `client` (the executor's client) that writes where `launch` writes
/// and has its timeout and grace.
fn relay(launch: &Launch, client: CommandSpec, stdin: Input) -> Result<Launch, CommandError> {
    let sink = |s: &Sink| -> Result<Sink, CommandError> {
        Ok(match s {
            Sink::Capture => Sink::Capture,
            Sink::File(p) => Sink::File(p.clone()),
            Sink::Fd(f) => Sink::Fd(f.clone()),
            Sink::Log => Sink::Log,
            Sink::Inherit => Sink::Inherit,
        })
    };
    let mut l = Launch::new(client);
    l.stdin = stdin;
    l.stdout = sink(&launch.stdout)?;
    l.stderr = sink(&launch.stderr)?;
    l.capture_limit = launch.capture_limit;
    l.log = launch.log.clone();
    l.tap = launch.tap.clone();
    l.timeout = launch.timeout;
    l.kill_grace = launch.kill_grace;
    l.wait_for_fds = launch.wait_for_fds;
    Ok(l)
}

/// An error of the executor's (`kind`) client, which could not start or be waited for,
/// told about the command of `launch` rather than the client's command line (which holds
/// prun's own options and, for ssh, the remote wrapper).
fn client_error(e: CommandError, launch: &Launch, kind: &str) -> CommandError {
    let command = crate::shown::command(launch);
    match e {
        CommandError::NotFound { program, .. } => CommandError::Remote {
            message: format!(
                "the {kind} executor runs commands through \"{program}\", which is not on PATH"
            ),
            command,
        },
        CommandError::NoDir { dir, .. } => CommandError::NoDir { dir, command },
        CommandError::Spawn { source, .. } => CommandError::Spawn { command, source },
        CommandError::Wait { source, .. } => CommandError::Wait { command, source },
        e => e,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_keeps_every_byte_literal() {
        assert_eq!(sh_quote(""), "''");
        assert_eq!(sh_quote("a b"), "'a b'");
        assert_eq!(sh_quote("it's"), r"'it'\''s'");
        assert_eq!(sh_quote("$HOME `x` \\ *"), "'$HOME `x` \\ *'");
    }

    #[test]
    fn a_declaration_is_checked_and_names_the_executor() {
        let decl = |m: Map| Executor::parse("farm", &Dynamic::from(m));
        let mut m = Map::new();
        assert!(matches!(
            decl(m.clone()).unwrap_err(),
            DeclarationError::NoKind(name) if name == "farm"
        ));
        m.insert("kind".into(), "pbs".into());
        assert_eq!(
            decl(m.clone()).unwrap_err().to_string(),
            "executor \"farm\": unknown kind \"pbs\" (valid kinds: ssh, slurm)"
        );
        m.insert("kind".into(), "ssh".into());
        assert!(matches!(
            decl(m.clone()).unwrap_err(),
            DeclarationError::Option {
                problem: Problem::NoHosts,
                ..
            }
        ));
        let hosts: rhai::Array = vec!["web1".into(), "web2:4".into()];
        m.insert("hosts".into(), hosts.into());
        let e = decl(m.clone()).unwrap();
        assert_eq!(e.limit(), 5);
        m.insert("max_jobs".into(), Dynamic::from(3_i64));
        assert!(matches!(
            decl(m).unwrap_err(),
            DeclarationError::Option {
                problem: Problem::UnknownKey { key, .. },
                ..
            } if key == "max_jobs"
        ));
    }
}

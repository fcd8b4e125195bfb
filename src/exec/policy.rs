//! [`Policy`]: what a script may run and read, for scripts an embedder does not trust.
//!
//! The policy is checked at one place: [`crate::exec::launch::Policed`], the launcher every
//! command of a run goes through (`shell`, `exec`, `pipe`, command bodies, and so the
//! stdlib modules, which are plain Rhai over those), right before the command is handed to
//! whatever runs it. A refused command fails like one that cannot start, with an error
//! naming the program and the rule.
//!
//! How programs and names match the rules is in [`Policy`]'s own documentation (public).

use std::path::{Component, Path, PathBuf};
use std::time::Duration;

use super::command::{CommandSpec, DEFAULT_SEARCH_PATH, Program, may_execute, on_path};

/// What scripts run by a [`crate::Runtime`] may do: which programs they may start, which
/// environment variables they may read or pass, whether shell strings run, and limits on
/// the run. The default policy allows everything.
///
/// ```
/// use std::time::Duration;
///
/// let policy = prun::Policy::new()
///     .allow_programs(["rclone", "psql", "/opt/acme/bin/*"])
///     .deny_programs(["rm"])
///     .deny_env(["AWS_SECRET_ACCESS_KEY"])
///     .no_shell()
///     .max_procs(100)
///     .max_run_time(Duration::from_secs(3600));
/// let rt = prun::Runtime::builder().policy(policy).build()?;
/// # Ok::<(), prun::Error>(())
/// ```
///
/// # Names and paths
///
/// A program is first resolved as the spawn would resolve it: a name through `PATH` (the
/// command's own `PATH` when its `env` sets one, the C library's default, `/bin:/usr/bin`,
/// when the policy hides prun's; a relative entry of it is relative to the
/// command's working directory), a path (anything with a `/`) against the command's
/// working directory, with `..` resolved as the kernel does (after a link, `..` leaves the
/// link's target); then symbolic links are followed.
///
/// - A rule without a `/` (`"rclone"`, `"pg_*"`) is a *name*: it allows a program whose name
///   matches it **and** that is the very file the name finds on prun's own `PATH` (read
///   when the command is checked). `allow_programs(["rclone"])` therefore allows `rclone`
///   and `/usr/bin/rclone` (when that is what `rclone` finds), but not `/tmp/rclone`,
///   `./rclone`, nor `rclone` found through a `PATH` the script set.
/// - A rule with a `/` (`"/opt/tools/*"`) is a *path* glob, matched against the program's
///   absolute path and against the file it resolves to; `*` does not cross a `/`.
/// - A deny rule matches more widely: a name rule matches the program's name or the name
///   of the file it resolves to, wherever it is. Deny rules win over allow rules. Only an
///   allow list is a boundary: a copy of a denied program under another name runs.
/// - A command on an executor (an SSH host, a Slurm node) is checked as this machine
///   resolves it; under an allow list the host is given the absolute path of that file
///   (`/usr/bin/rclone`), so that its own `PATH` cannot find another under the name.
///
/// A shell string runs `/bin/sh`, which can run anything: with [`Policy::no_shell`] every
/// shell string is refused (command bodies, `shell`, and `pipe` stages given as strings);
/// without it, a shell string is checked as the program `sh`. An allow list that names an
/// interpreter (`sh`, `bash`, `env`, `xargs`, `python3`) lets a script run anything
/// through it, and so does one that names a program whose arguments can name a command
/// for it to run: the policy checks programs, never their arguments. Among those are
/// `rclone` (the `ssh=` option of an sftp remote, `--password-command`), `psql` (`\!`),
/// `ssh` (`-o ProxyCommand=`), `git` (`-c core.sshCommand=`), `tar` (`--to-command`) and
/// `find` (`-exec`): `allow_programs(["rclone"])` keeps a script to what rclone does only
/// if the script is trusted with rclone's arguments.
///
/// A command on an executor (ssh, Slurm) is checked as this machine resolves it, before
/// the executor's client starts: a program the host has and this machine does not is
/// refused, even by a path rule that names it.
#[derive(Debug, Clone, Default)]
pub struct Policy {
    allow_programs: Option<Vec<String>>,
    deny_programs: Vec<String>,
    allow_env: Option<Vec<String>>,
    deny_env: Vec<String>,
    no_shell: bool,
    max_procs: Option<usize>,
    max_run_time: Option<Duration>,
    /// Commands may have the program's terminal (see `RuntimeBuilder::terminal`).
    terminal: bool,
}

/// Why the policy refuses a command, or an executor's client options; displayed as the
/// message, which names the program or variable and the rule.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Refusal {
    #[error("refused by the policy: the environment variable {name} may not be passed ({rule})")]
    Variable { name: String, rule: String },
    #[error(
        "refused by the policy: the environment variable {name} may not be passed: it can make an allowed program run other code (\"{rule}\"; allow_env lets it)"
    )]
    CodeVariable { name: String, rule: &'static str },
    #[error("refused by the policy: shell strings are off (no_shell)")]
    NoShell,
    #[error(
        "an interactive proc's command needs the terminal, which this program does not lend to scripts (prun::RuntimeBuilder::terminal)"
    )]
    NoTerminal,
    #[error("refused by the policy: program {program} matches the deny rule \"{rule}\"")]
    Denied { program: String, rule: String },
    #[error(
        "refused by the policy: program {program} is not found{searched}, and the allow list ({rules}) allows only a program that is"
    )]
    NotFound {
        program: String,
        /// Where, when not on prun's `PATH` or the command's own.
        searched: String,
        rules: String,
    },
    #[error("refused by the policy: program {program} ({}) is not on the allow list ({rules})", real.display())]
    NotAllowed {
        program: String,
        real: PathBuf,
        rules: String,
    },
    #[error(
        "executor \"{executor}\": the option `{option}` of `{client}` is refused by the policy: options can make {client} run any program, so under a policy that limits programs only these pass: {safe}"
    )]
    ClientOption {
        executor: String,
        option: String,
        client: String,
        safe: String,
    },
}

impl Policy {
    /// A policy that allows everything.
    pub fn new() -> Policy {
        Policy::default()
    }

    /// Allows these programs, and (once this is called) no others. Each is a name or a
    /// path, with globs (see [names and paths](Policy#names-and-paths)). Calls add
    /// up.
    pub fn allow_programs<I, S>(mut self, programs: I) -> Policy
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.allow_programs
            .get_or_insert_with(Vec::new)
            .extend(programs.into_iter().map(Into::into));
        self
    }

    /// Refuses these programs (names or paths, with globs), even when allowed.
    pub fn deny_programs<I, S>(mut self, programs: I) -> Policy
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.deny_programs
            .extend(programs.into_iter().map(Into::into));
        self
    }

    /// Lets scripts read (`env()`) and pass (`env:` options, inherited by commands) these
    /// environment variables (globs allowed), and (once this is called) no others.
    ///
    /// `PATH` is one of them: a command that does not inherit it (nor sets its own)
    /// finds a program by name only where the C library looks without one (`/bin` and
    /// `/usr/bin` with glibc), not on prun's `PATH`. Name it to keep it.
    pub fn allow_env<I, S>(mut self, names: I) -> Policy
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.allow_env
            .get_or_insert_with(Vec::new)
            .extend(names.into_iter().map(Into::into));
        self
    }

    /// Hides these environment variables (globs allowed): `env()` does not see them,
    /// commands do not inherit them, and an `env:` option may not set them.
    pub fn deny_env<I, S>(mut self, names: I) -> Policy
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.deny_env.extend(names.into_iter().map(Into::into));
        self
    }

    /// Refuses every shell string (`shell(...)`, `shell:` bodies, string stages of
    /// `pipe`): a shell can run any program, whatever the allow list says. It is not a
    /// boundary without an allow list: `exec(["sh", "-c", "..."])` starts the program
    /// `sh`, which only an allow list (one that does not name a shell) refuses.
    pub fn no_shell(mut self) -> Policy {
        self.no_shell = true;
        self
    }

    /// A run starts at most `n` procs: the next one does not start (it fails), and the run
    /// stops as a cancel stops it (a watch too: its outcome is then `Interrupted`). A
    /// proc counts once, however many retries or watch cycles run it.
    pub fn max_procs(mut self, n: usize) -> Policy {
        self.max_procs = Some(n);
        self
    }

    /// Stops a run (as a cancel does) once it has run for `limit`, counted from the call
    /// of `run_*` (the reading of the script's `args(#{...})` declaration included). A
    /// run that has not ended 5 s later (a command that ignores SIGTERM under the kill
    /// grace the script set, a cleanup that loops or hangs) is ended as a second cancel
    /// ends it: its commands killed at once, its cleanups stopped. A native function of
    /// the embedder still runs to its end (see [`crate::RuntimeBuilder::register_fn`]).
    pub fn max_run_time(mut self, limit: Duration) -> Policy {
        self.max_run_time = Some(limit);
        self
    }

    /// The limit of [`Policy::max_procs`].
    pub(crate) fn proc_limit(&self) -> Option<usize> {
        self.max_procs
    }

    /// The limit of [`Policy::max_run_time`].
    pub(crate) fn time_limit(&self) -> Option<Duration> {
        self.max_run_time
    }

    /// True when scripts may see the environment variable `name`.
    pub(crate) fn env_visible(&self, name: &str) -> bool {
        let hit = |rules: &[String]| rules.iter().any(|r| glob_matches(r, name));
        !hit(&self.deny_env) && self.allow_env.as_deref().is_none_or(hit)
    }

    /// This policy, with the program's terminal lent to interactive procs or not (the run's
    /// setting, not the embedder's rules: it counts in no fingerprint).
    pub(crate) fn lending_terminal(&self, on: bool) -> Policy {
        Policy {
            terminal: on,
            ..self.clone()
        }
    }

    /// Checks that a command may have the program's terminal (stdin, stdout and stderr).
    pub(crate) fn check_terminal(&self) -> Result<(), Refusal> {
        if self.terminal {
            Ok(())
        } else {
            Err(Refusal::NoTerminal)
        }
    }

    /// True when some variables of prun's environment must be kept from commands.
    pub(crate) fn hides_env(&self) -> bool {
        self.allow_env.is_some() || !self.deny_env.is_empty()
    }

    /// The names in prun's environment that commands must not inherit. A name that is not
    /// UTF-8 is one of them: no rule can name it, nor a script read it.
    pub(crate) fn hidden_env(&self) -> Vec<std::ffi::OsString> {
        if !self.hides_env() {
            return Vec::new();
        }
        std::env::vars_os()
            .map(|(k, _)| k)
            .filter(|k| k.to_str().is_none_or(|k| !self.env_visible(k)))
            .collect()
    }

    /// What the policy changes in what procs give, counted in every fingerprint (see
    /// `Cache::under`): its rules on the environment the script and its commands see, and
    /// on the programs and shell strings they may run. Empty when it has none. The rules,
    /// not the names they hide now: a variable that comes or goes while hidden changes
    /// nothing a proc sees.
    pub(crate) fn fingerprint_text(&self) -> String {
        let sorted = |rules: &[String]| {
            let mut rules = rules.to_vec();
            rules.sort_unstable();
            rules
        };
        let mut out = String::new();
        if let Some(allow) = &self.allow_env {
            out.push_str(&format!("allow env {:?}", sorted(allow)));
        }
        if !self.deny_env.is_empty() {
            out.push_str(&format!("deny env {:?}", sorted(&self.deny_env)));
        }
        if let Some(allow) = &self.allow_programs {
            out.push_str(&format!("allow programs {:?}", sorted(allow)));
        }
        if !self.deny_programs.is_empty() {
            out.push_str(&format!("deny programs {:?}", sorted(&self.deny_programs)));
        }
        if self.no_shell {
            out.push_str("no shell");
        }
        out
    }

    /// Checks that the program `name` (as `which` and `require` look it up, on prun's
    /// `PATH`) may be run by a command of its own; the error names it and the rule.
    pub(crate) fn check_tool(&self, name: &str) -> Result<(), Refusal> {
        self.check(&CommandSpec {
            program: Program::Argv(vec![name.to_string()]),
            env: Vec::new(),
            cwd: None,
        })
    }

    /// Checks one command against the policy; the error names the program and the rule.
    pub(crate) fn check(&self, spec: &CommandSpec) -> Result<(), Refusal> {
        for (name, _) in &spec.env {
            if !self.env_visible(name) {
                return Err(Refusal::Variable {
                    name: name.clone(),
                    rule: self.env_rule(name),
                });
            }
            if let Some(rule) = self.code_variable(name) {
                return Err(Refusal::CodeVariable {
                    name: name.clone(),
                    rule,
                });
            }
        }
        let argv0 = match &spec.program {
            Program::Shell(_) if self.no_shell => return Err(Refusal::NoShell),
            Program::Shell(_) => "/bin/sh",
            Program::Argv(argv) => argv.first().map_or("", String::as_str),
        };
        self.check_program(argv0, spec)
    }

    /// The program a command of `spec` runs on an executor's host, under an allow list:
    /// the absolute path of the file this machine found for it, which the policy checked
    /// (`/bin/sh` for a shell string), since the host's own `PATH` may find another file
    /// under an allowed name. `None` without an allow list: the host's `PATH` decides.
    pub(crate) fn remote_program(&self, spec: &CommandSpec) -> Option<String> {
        self.allow_programs.as_ref()?;
        match &spec.program {
            Program::Shell(_) => Some("/bin/sh".into()),
            Program::Argv(argv) => {
                let resolved = Resolved::of(argv.first()?, spec, !self.env_visible("PATH"));
                // A path that is not UTF-8 is sent altered, and fails on the host as not
                // found: never another program.
                resolved.path.map(|p| p.to_string_lossy().into_owned())
            }
        }
    }

    /// True when the policy limits the programs a script may run.
    fn limits_programs(&self) -> bool {
        self.allow_programs.is_some() || !self.deny_programs.is_empty() || self.no_shell
    }

    /// The rule of [`CODE_VARIABLES`] that `name` matches, when a script may not pass it:
    /// under a policy that limits programs, unless `allow_env` names it.
    fn code_variable(&self, name: &str) -> Option<&'static str> {
        if !self.limits_programs() {
            return None;
        }
        let allowed = self
            .allow_env
            .as_deref()
            .is_some_and(|rules| rules.iter().any(|r| glob_matches(r, name)));
        CODE_VARIABLES
            .iter()
            .copied()
            .find(|r| !allowed && glob_matches(r, name))
    }

    /// Checks the options a script gives an executor's `client` (`ssh`, `srun`): many
    /// can run any program where no check sees it (ssh's `ProxyCommand`, srun's
    /// `--task-prolog`), so under a policy that limits programs only those of
    /// [`SSH_OPTIONS`] and [`SRUN_OPTIONS`] pass.
    pub(crate) fn check_client_args(
        &self,
        executor: &str,
        client: &str,
        args: &[String],
    ) -> Result<(), Refusal> {
        if !self.limits_programs() {
            return Ok(());
        }
        let safe = if client == "ssh" {
            SSH_OPTIONS
        } else {
            SRUN_OPTIONS
        };
        let mut words = args.iter();
        while let Some(word) = words.next() {
            let (shown, name) = match word.as_str() {
                "-o" if client == "ssh" => {
                    let value = words.next().map_or("", String::as_str);
                    (format!("-o {value}"), ssh_option_name(value))
                }
                w if client == "ssh" && w.starts_with("-o") => {
                    (w.to_string(), ssh_option_name(&w[2..]))
                }
                w => (w.to_string(), w.split('=').next().unwrap_or(w).to_string()),
            };
            // A line break would start another line of ssh's configuration.
            let one_line = !shown.chars().any(char::is_control);
            if !one_line || !safe.iter().any(|s| s.eq_ignore_ascii_case(&name)) {
                return Err(Refusal::ClientOption {
                    executor: executor.to_string(),
                    option: shown,
                    client: client.to_string(),
                    safe: safe.join(", "),
                });
            }
        }
        Ok(())
    }

    fn check_program(&self, argv0: &str, spec: &CommandSpec) -> Result<(), Refusal> {
        if self.allow_programs.is_none() && self.deny_programs.is_empty() {
            return Ok(());
        }
        let shown = if matches!(spec.program, Program::Shell(_)) {
            "sh (a shell string)".to_string()
        } else {
            format!("\"{argv0}\"")
        };
        let path_hidden = !self.env_visible("PATH");
        let program = Resolved::of(argv0, spec, path_hidden);
        if let Some(rule) = self.deny_programs.iter().find(|r| program.denied_by(r)) {
            return Err(Refusal::Denied {
                program: shown,
                rule: rule.clone(),
            });
        }
        match &self.allow_programs {
            Some(rules) if !rules.iter().any(|r| program.allowed_by(r)) => {
                match &program.real {
                    // Named on the list or not, a missing program is what to fix.
                    None => Err(Refusal::NotFound {
                        program: shown,
                        searched: if path_hidden && !spec.env.iter().any(|(k, _)| k == "PATH") {
                            format!(
                                " in {DEFAULT_SEARCH_PATH} (the policy hides PATH from commands, which then look there)"
                            )
                        } else {
                            String::new()
                        },
                        rules: listed(rules),
                    }),
                    Some(real) => Err(Refusal::NotAllowed {
                        program: shown,
                        real: real.clone(),
                        rules: listed(rules),
                    }),
                }
            }
            _ => Ok(()),
        }
    }

    fn env_rule(&self, name: &str) -> String {
        match self.deny_env.iter().find(|r| glob_matches(r, name)) {
            Some(rule) => format!("deny_env \"{rule}\""),
            None => "not on the allow_env list".into(),
        }
    }
}

/// The rules of an allow list, as a refusal names them.
fn listed(rules: &[String]) -> String {
    if rules.is_empty() {
        "it is empty: no program may run".into()
    } else {
        rules.join(", ")
    }
}

/// Environment variables that make a program load or run other code (the dynamic
/// loader's, shells', interpreters', those naming a command to run, and srun's, which
/// are its options: `SLURM_PROLOG` is `--prolog`, and the slurm executor's `srun` gets
/// the command's `env`; not `PAGER` or
/// `EDITOR`, which a command run without a terminal does not start, and which scripts set
/// to keep tools quiet). A script may not
/// pass them (`env:`) under a policy that limits programs, unless `allow_env` names them:
/// through them an allowed program runs anything (`psql` is a Perl script on Debian:
/// `PERL5OPT=-MEvil`). The list is the known ones, not a proof; `allow_env` is the
/// boundary.
const CODE_VARIABLES: &[&str] = &[
    "LD_*",
    "GCONV_PATH",
    "BASH_ENV",
    "ENV",
    "BASH_FUNC_*",
    "SHELLOPTS",
    "PS4",
    "PERL5OPT",
    "PERL5LIB",
    "PERLLIB",
    "PERL5DB",
    "PYTHONPATH",
    "PYTHONHOME",
    "PYTHONSTARTUP",
    "PYTHONINSPECT",
    "PYTHONUSERBASE",
    "RUBYOPT",
    "RUBYLIB",
    "NODE_OPTIONS",
    "NODE_PATH",
    "JAVA_TOOL_OPTIONS",
    "_JAVA_OPTIONS",
    "JDK_JAVA_OPTIONS",
    "CLASSPATH",
    "PSQLRC",
    "GIT_SSH",
    "GIT_SSH_COMMAND",
    "GIT_EXTERNAL_DIFF",
    "GIT_ASKPASS",
    "GIT_EXEC_PATH",
    "GIT_CONFIG*",
    "SSH_ASKPASS",
    "TAR_OPTIONS",
    "RSYNC_RSH",
    "RSYNC_CONNECT_PROG",
    "LESSOPEN",
    "LESSCLOSE",
    "SLURM_*",
    "SRUN_*",
];

/// The `ssh` options a script may give an ssh executor under a policy that limits
/// programs: flags, and `-o NAME=VALUE` for these names (none runs a command or reads
/// another configuration file).
const SSH_OPTIONS: &[&str] = &[
    "-4",
    "-6",
    "-C",
    "-q",
    "-v",
    "-vv",
    "-vvv",
    "StrictHostKeyChecking",
    "UserKnownHostsFile",
    "LogLevel",
    "ConnectTimeout",
    "ConnectionAttempts",
    "BatchMode",
    "ServerAliveInterval",
    "ServerAliveCountMax",
    "TCPKeepAlive",
    "Compression",
    "User",
    "IdentitiesOnly",
    "AddressFamily",
    "CheckHostIP",
    "HashKnownHosts",
];

/// The `srun` options a script may give a Slurm executor under a policy that limits
/// programs (`--name` or `--name=value`): where and how long the job runs, not what runs
/// around it (`--prolog`, `--task-prolog`, `--export`, `--bcast` are not).
const SRUN_OPTIONS: &[&str] = &[
    "--qos",
    "--account",
    "--constraint",
    "--gres",
    "--nodes",
    "--ntasks",
    "--cpus-per-task",
    "--mem",
    "--mem-per-cpu",
    "--time",
    "--exclusive",
    "--reservation",
    "--nice",
    "--job-name",
    "--comment",
    "--exclude",
    "--nodelist",
    "--quiet",
    "--verbose",
];

/// The name of an ssh `-o` option: `Name=value`, `Name value`.
fn ssh_option_name(option: &str) -> String {
    option
        .trim_start()
        .split(|c: char| c == '=' || c.is_whitespace())
        .next()
        .unwrap_or_default()
        .to_string()
}

/// A program as the spawn would find it.
struct Resolved {
    /// The name it was given by (the last component of `argv[0]`).
    name: String,
    /// Its absolute path, `..` resolved as the kernel does (`None` when not found).
    path: Option<PathBuf>,
    /// The file it is, links followed (`None` when not found).
    real: Option<PathBuf>,
}

impl Resolved {
    /// `argv0` as the spawn of `spec` finds it; `path_hidden` when the command does not
    /// inherit prun's `PATH` (the policy hides it).
    fn of(argv0: &str, spec: &CommandSpec, path_hidden: bool) -> Resolved {
        let name = Path::new(argv0)
            .file_name()
            .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
        // The command's working directory: where a relative path, or a relative entry of
        // `PATH`, is looked up by the spawn.
        let here = std::env::current_dir().unwrap_or_default();
        let base = spec
            .cwd
            .as_ref()
            .map_or_else(|| here.clone(), |c| here.join(c));
        let path = if argv0.contains('/') {
            absolute(&base.join(argv0)).filter(|p| may_execute(p))
        } else {
            let own_path = spec
                .env
                .iter()
                .rev()
                .find(|(k, _)| k == "PATH")
                .map(|(_, v)| v.clone().into())
                .or_else(|| path_hidden.then(|| DEFAULT_SEARCH_PATH.into()));
            search(argv0, own_path, &base)
        };
        let real = path.as_ref().and_then(|p| p.canonicalize().ok());
        Resolved { name, path, real }
    }

    fn allowed_by(&self, rule: &str) -> bool {
        let Some(real) = &self.real else {
            return false;
        };
        if rule.contains('/') {
            return self.path_matches(rule);
        }
        glob_matches(rule, &self.name)
            && search(
                &self.name,
                None,
                &std::env::current_dir().unwrap_or_default(),
            )
            .and_then(|p| p.canonicalize().ok())
            .is_some_and(|trusted| &trusted == real)
    }

    fn denied_by(&self, rule: &str) -> bool {
        if rule.contains('/') {
            return self.path_matches(rule);
        }
        let real_name = self
            .real
            .as_ref()
            .and_then(|r| r.file_name())
            .map(|n| n.to_string_lossy().into_owned());
        glob_matches(rule, &self.name) || real_name.is_some_and(|n| glob_matches(rule, &n))
    }

    fn path_matches(&self, rule: &str) -> bool {
        [&self.path, &self.real]
            .into_iter()
            .flatten()
            .any(|p| glob_matches(rule, &p.to_string_lossy()))
    }
}

/// `name` looked up in `path` (prun's own `PATH` when `None`, the C library's default when
/// that is not set) by a process working in `base`, as the spawn does: a relative entry
/// (an empty one is `.`) is relative to `base`.
fn search(name: &str, path: Option<std::ffi::OsString>, base: &Path) -> Option<PathBuf> {
    let path = path
        .or_else(|| std::env::var_os("PATH"))
        .unwrap_or_else(|| DEFAULT_SEARCH_PATH.into());
    on_path(name, Some(&path))
        .filter_map(|file| absolute(&base.join(file)))
        .find(|p| may_execute(p))
}

/// The absolute path `p` (absolute) names, as written but without `.` components; with a
/// `..`, its directory as the kernel resolves it (links first, then `..`, which a lexical
/// clean-up would get wrong), then its name. `None` when that directory does not exist.
fn absolute(p: &Path) -> Option<PathBuf> {
    if !p.components().any(|c| c == Component::ParentDir) {
        return Some(p.components().filter(|c| *c != Component::CurDir).collect());
    }
    let dir = p.parent()?.canonicalize().ok()?;
    Some(dir.join(p.file_name()?))
}

/// `rule` (a glob; `*` does not cross `/`) matches `text`. A rule that is not a valid
/// glob matches only itself.
fn glob_matches(rule: &str, text: &str) -> bool {
    let opts = glob::MatchOptions {
        case_sensitive: true,
        require_literal_separator: true,
        require_literal_leading_dot: false,
    };
    glob::Pattern::new(rule).map_or(rule == text, |p| p.matches_with(text, opts))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(words: &[&str]) -> CommandSpec {
        CommandSpec {
            program: Program::Argv(words.iter().map(|w| w.to_string()).collect()),
            env: Vec::new(),
            cwd: None,
        }
    }

    #[test]
    fn under_an_allow_list_a_remote_program_is_the_file_found_here() {
        let real = search("true", None, Path::new("/")).expect("true on PATH");
        let p = Policy::new().allow_programs(["true"]);
        let pinned = p.remote_program(&argv(&["true", "x"]));
        assert_eq!(pinned, Some(real.to_string_lossy().into_owned()));
        let shell = CommandSpec {
            program: Program::Shell("true".into()),
            env: Vec::new(),
            cwd: None,
        };
        assert_eq!(p.remote_program(&shell).as_deref(), Some("/bin/sh"));
        let unlimited = Policy::new().deny_programs(["rm"]);
        assert_eq!(unlimited.remote_program(&argv(&["true"])), None);
    }

    #[test]
    fn a_name_rule_allows_the_program_on_path_only() {
        let p = Policy::new().allow_programs(["true"]);
        assert!(p.check(&argv(&["true"])).is_ok());
        let real = search("true", None, Path::new("/")).expect("true on PATH");
        assert!(p.check(&argv(&[&real.to_string_lossy()])).is_ok());
        let dir = tempfile::tempdir().expect("tempdir");
        let fake = dir.path().join("true");
        std::fs::copy(&real, &fake).expect("copy");
        let e = p.check(&argv(&[&fake.to_string_lossy()])).unwrap_err();
        assert!(matches!(e, Refusal::NotAllowed { .. }), "{e}");
        let mut own_path = argv(&["true"]);
        own_path.env = vec![("PATH".into(), dir.path().to_string_lossy().into())];
        assert!(p.check(&own_path).is_err());
        assert!(
            p.check(&argv(&["false"]))
                .unwrap_err()
                .to_string()
                .contains("\"false\"")
        );
    }

    #[test]
    fn deny_wins_and_shell_strings_follow_no_shell() {
        let p = Policy::new()
            .allow_programs(["sh", "echo"])
            .deny_programs(["ec*"]);
        assert!(matches!(
            p.check(&argv(&["echo"])).unwrap_err(),
            Refusal::Denied { rule, .. } if rule == "ec*"
        ));
        let shell = CommandSpec {
            program: Program::Shell("echo hi".into()),
            env: Vec::new(),
            cwd: None,
        };
        assert!(p.check(&shell).is_ok());
        let e = p.clone().no_shell().check(&shell).unwrap_err();
        assert!(matches!(e, Refusal::NoShell), "{e}");
    }

    #[test]
    fn env_rules_hide_and_refuse_variables() {
        let p = Policy::new().deny_env(["SECRET_*"]);
        assert!(!p.env_visible("SECRET_KEY") && p.env_visible("HOME"));
        let mut spec = argv(&["true"]);
        spec.env = vec![("SECRET_KEY".into(), "x".into())];
        assert_eq!(
            p.check(&spec).unwrap_err().to_string(),
            "refused by the policy: the environment variable SECRET_KEY may not be passed (deny_env \"SECRET_*\")"
        );
        let only = Policy::new().allow_env(["PATH"]);
        assert!(only.env_visible("PATH") && !only.env_visible("HOME"));
    }
}

//! The `ssh` executor: each command runs on a host with a free slot (`hosts: ["web1",
//! "web2:4"]`, one slot unless `:N` says more), through the local `ssh` client.
//!
//! The remote user's login shell, whichever it is (fish and csh read quotes their own
//! way), gets a line that hands a script to `sh` ([`login_line`]): it enters the `cwd`
//! (or ends, saying why, see [`enter`]), exports the `env` and runs the command under a
//! small POSIX-sh wrapper ([`wrapper`]). sshd
//! starts each session's command as a session and process-group leader, so the wrapper,
//! the command and everything the command starts share one process group. The wrapper
//! keeps reading its standard input, which prun holds open ([`Input::Held`]) until the
//! command ends: when it closes (prun's timeout or Ctrl-C closes it, or ends the local
//! client, or prun dies), it reads end-of-file and ends the group: SIGTERM, up to the
//! run's kill grace, then SIGKILL. So no remote process outlives the local client, and
//! prun, which waits for the client after closing its input, returns once the remote
//! command has ended.
//!
//! Connections are shared: every `ssh` of a run goes through a master connection to its
//! host (a socket in a private temporary directory), one for each [`SESSIONS_PER_MASTER`]
//! slots of the host, so a command costs a new channel, not a handshake. prun starts each
//! master itself ([`Ssh::open_master`]), before the first command that needs it, as a
//! child in a process group of its own recorded in the crash journal: `ssh -M` with
//! `ControlPersist=no` whose own session runs `cat` on the host, reading an input prun
//! holds open. When prun dies, even of SIGKILL, that input closes, the remote `cat` ends,
//! and the master exits as soon as its commands' sessions (which end the same way) have
//! closed; the journal lets the next run end one that is still there, and remove the
//! sockets' directory, which the journal records too. A master that `ControlMaster=auto`
//! made forked into the background, out of prun's reach, and stayed up for
//! `ControlPersist` after prun was killed; its directory was left for good. The masters
//! end with the run ([`Ssh::close`]).

use std::collections::{BTreeSet, HashMap};
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::cwd::{NO_DIR_STATUS, enter, no_dir, nonce, sh_word, stderr_tail};
use super::held::wrapper;
use super::{DeclarationError, Options, Problem, argv_of, client, client_error, relay, single};
use crate::exec::command::CommandError;
use crate::exec::crashed::{self, DirKey};
use crate::exec::launch::{
    Ending, Input, Launch, LaunchOutput, Launcher, Local, Sink, StageStatus,
};
use crate::exec::policy::Policy;
use crate::exec::unix;

/// How a host that stops answering is found lost, rather than waited for as long as the
/// network keeps a dead TCP connection (hours): it must answer the handshake within
/// `ConnectTimeout` seconds, and a keepalive within `ServerAliveInterval` ×
/// `ServerAliveCountMax` seconds while a command runs. The executor's `args` override
/// them.
const LIVENESS: [(&str, u32); 3] = [
    ("ConnectTimeout", 15),
    ("ServerAliveInterval", 5),
    ("ServerAliveCountMax", 3),
];

/// The longest temporary directory (`$TMPDIR`) the master sockets' directory is made in;
/// past it, `/tmp` is used. A socket's path holds at most 107 bytes, and ssh makes the
/// master's socket as `PATH.` and 16 random characters before renaming it: with
/// `/prun-ssh-XXXXXX` and `/N`, a longer `$TMPDIR` failed every command ("ControlPath
/// too long").
const SOCKET_BASE_MAX: usize = 107 - 17 - 16 - 6;

/// How many commands share one master connection: slot `n` of a host goes through its
/// master `n / 7`. sshd's `MaxSessions` is 10 by default; past it, a session was refused
/// and ssh fell back to a login of its own, writing `mux_client_request_session: session
/// request failed` into the command's stderr (its `exec(...).stderr`). The master's own
/// session takes one more, and two are left for those the server is still closing when
/// their slots are taken again.
const SESSIONS_PER_MASTER: usize = 7;

/// The bytes one argument of a program may hold on Linux (`MAX_ARG_STRLEN`, with its
/// NUL): the whole remote command is one argument of `ssh`.
const MAX_ARG_BYTES: usize = 32 * 4096;

/// How long a host whose last connection failed gets no commands while another host
/// can take them: a host that is down fails its commands at once, so it would otherwise
/// take every retry. After it, the host is tried again.
const AVOID_UNREACHABLE: Duration = Duration::from_secs(30);

/// How long a master connection may take to exit once prun closes its input at the end
/// of the run (one that answers does within a round trip); past it, it is killed.
const CLOSE_WAIT: Duration = Duration::from_secs(3);

/// What a master connection's own session runs on the host: it ends when the input prun
/// holds for it closes.
const MASTER_COMMAND: &str = "exec cat >/dev/null";

/// The longest word of the remote command line (see [`login_line`]): csh refuses words
/// of more than about 8 KiB ("Word too long").
const CHUNK_BYTES: usize = 4096;

/// ssh's own exit status when the connection failed (refused, lost, authentication).
const SSH_FAILED: i32 = 255;

/// An `ssh` executor.
#[derive(Debug)]
pub(crate) struct Ssh {
    hosts: Vec<Host>,
    port: Option<u16>,
    identity: Option<String>,
    args: Vec<String>,
    /// The numbers of the slots in use, by host.
    used: Mutex<Vec<BTreeSet<usize>>>,
    freed: Notify,
    /// The directory of the master connections' sockets, made on first use, and its
    /// entry in the crash journal.
    control_dir: Mutex<Option<(tempfile::TempDir, Option<DirKey>)>>,
    /// The master connections started, by socket.
    masters: Mutex<HashMap<PathBuf, std::process::Child>>,
    /// By host: held while a master connection to it starts.
    opening: Vec<tokio::sync::Mutex<()>>,
    /// By host: when a master connection to it last failed to start (the host is down,
    /// say): for [`AVOID_UNREACHABLE`], its commands connect on their own rather than
    /// each waiting for a master of its own to fail, and go to other hosts.
    unreachable: Vec<Mutex<Option<Instant>>>,
}

#[derive(Debug)]
struct Host {
    name: String,
    slots: usize,
}

impl Ssh {
    pub(super) fn parse(o: &Options) -> Result<Ssh, DeclarationError> {
        o.check_keys(&["hosts", "port", "identity", "args"])?;
        let mut hosts = Vec::new();
        for h in o.strings("hosts")? {
            let (name, slots) = split_slots(&h);
            let slots = match slots {
                Some(n) => n
                    .parse()
                    .ok()
                    .filter(|&n| n > 0)
                    .ok_or_else(|| o.error(Problem::Slots(h.clone())))?,
                None => 1,
            };
            if name.is_empty() || name.starts_with('-') {
                return Err(o.error(Problem::HostName(h)));
            }
            hosts.push(Host { name, slots });
        }
        if hosts.is_empty() {
            return Err(o.error(Problem::NoHosts));
        }
        let port = match o.count("port")? {
            Some(p) => Some(u16::try_from(p).map_err(|_| o.error(Problem::Port))?),
            None => None,
        };
        // As given: ssh reads a leading `~` as the home of the user's passwd entry, as
        // prun's state does (`$HOME` under `sudo -E` is the home of the user who ran it).
        let identity = o.string("identity")?;
        Ok(Ssh {
            used: Mutex::new(vec![BTreeSet::new(); hosts.len()]),
            opening: hosts.iter().map(|_| tokio::sync::Mutex::new(())).collect(),
            unreachable: hosts.iter().map(|_| Mutex::new(None)).collect(),
            hosts,
            port,
            identity,
            args: o.strings("args")?,
            freed: Notify::new(),
            control_dir: Mutex::new(None),
            masters: Mutex::new(HashMap::new()),
        })
    }

    /// The slots of all hosts.
    pub(crate) fn slots(&self) -> usize {
        // `web1:18446744073709551615` is a host without a limit, not an overflow.
        self.hosts
            .iter()
            .fold(0, |sum: usize, h| sum.saturating_add(h.slots))
    }

    /// The options of the declaration's `args`, given to every `ssh`.
    pub(crate) fn client_args(&self) -> &[String] {
        &self.args
    }

    /// `ssh web1, web2:4`.
    pub(crate) fn describe(&self) -> String {
        let hosts: Vec<String> = self
            .hosts
            .iter()
            .map(|h| match h.slots {
                1 => h.name.clone(),
                n if h.name.contains(':') => format!("[{}]:{n}", h.name),
                n => format!("{}:{n}", h.name),
            })
            .collect();
        format!("ssh {}", hosts.join(", "))
    }

    /// The directory of the master connections' sockets, made on first use and recorded
    /// in the crash journal, so that the next run removes it if this one is killed.
    fn control_dir(&self) -> std::io::Result<PathBuf> {
        let mut dir = self.control_dir.lock().expect("control dir");
        if dir.is_none() {
            let mut base = crate::paths::temp_dir();
            if base.as_os_str().len() > SOCKET_BASE_MAX {
                base = PathBuf::from("/tmp");
            }
            let made = tempfile::Builder::new()
                .prefix("prun-ssh-")
                .permissions(std::os::unix::fs::PermissionsExt::from_mode(0o700))
                .tempdir_in(base)?;
            let key = crashed::dir_made(made.path());
            *dir = Some((made, key));
        }
        Ok(dir.as_ref().expect("made above").0.path().to_path_buf())
    }

    /// The socket of the master connection `group` to the host `host` (its index).
    fn socket(control_dir: &Path, host: usize, group: usize) -> PathBuf {
        control_dir.join(format!("{host}.{group}"))
    }

    /// The `ssh` options every call shares (port, identity, multiplexing through
    /// `socket` as its master or as a client of it, `args`).
    fn options(&self, socket: &Path, master: bool) -> Vec<String> {
        let mut o: Vec<String> = vec!["-o".into(), "BatchMode=yes".into(), "-o".into()];
        o.push(match master {
            true => "ControlMaster=yes".into(),
            false => "ControlMaster=no".into(),
        });
        o.push("-o".into());
        o.push(format!("ControlPath={}", socket.display()));
        if master {
            o.extend(["-o".into(), "ControlPersist=no".into()]);
        }
        if let Some(p) = self.port {
            o.extend(["-p".into(), p.to_string()]);
        }
        if let Some(i) = &self.identity {
            o.extend(["-i".into(), i.clone()]);
        }
        o.extend(self.args.iter().cloned());
        // After `args`: ssh takes the first value of an option, so the script's win.
        for (option, value) in LIVENESS {
            o.push("-o".into());
            o.push(format!("{option}={value}"));
        }
        o
    }

    /// Takes a slot on the host with the most free ones, waiting until one frees;
    /// `None` when cancelled first.
    async fn acquire(&self, cancel: &CancellationToken) -> Option<Slot<'_>> {
        loop {
            let freed = self.freed.notified();
            tokio::pin!(freed);
            freed.as_mut().enable();
            // Hosts found unreachable lately take commands only when every host is.
            let avoided: Vec<Option<Instant>> = (0..self.hosts.len())
                .map(|i| {
                    self.unreachable_since(i)
                        .map(|t| t + AVOID_UNREACHABLE)
                        .filter(|&until| until > Instant::now())
                })
                .collect();
            let all_avoided = avoided.iter().all(Option::is_some);
            {
                let mut used = self.used.lock().expect("slots");
                let best = (0..self.hosts.len())
                    .filter(|&i| used[i].len() < self.hosts[i].slots)
                    .filter(|&i| all_avoided || avoided[i].is_none())
                    .max_by_key(|&i| (self.hosts[i].slots - used[i].len(), std::cmp::Reverse(i)));
                if let Some(host) = best {
                    let number = (0..)
                        .find(|n| !used[host].contains(n))
                        .expect("a free slot");
                    used[host].insert(number);
                    return Some(Slot {
                        ssh: self,
                        host,
                        number,
                    });
                }
            }
            let retry_host = avoided.iter().flatten().min().copied();
            tokio::select! {
                () = freed => {}
                () = cancel.cancelled() => return None,
                () = sleep_until(retry_host) => {}
            }
        }
    }

    /// When a command to the host `host` last ended without making a master, if the
    /// last such command did.
    fn unreachable_since(&self, host: usize) -> Option<Instant> {
        *self.unreachable[host].lock().expect("unreachable")
    }

    /// Records whether the last command to the host `host` that had no master made one.
    fn set_unreachable(&self, host: usize, unreachable: bool) {
        *self.unreachable[host].lock().expect("unreachable") = unreachable.then(Instant::now);
    }

    /// Runs `launch` on a host with a free slot, its program as `policy` pins it (see
    /// [`argv_of`]).
    pub(super) async fn launch(
        &self,
        local: &Local,
        launch: &Launch,
        policy: &Policy,
        cancel: &CancellationToken,
        placed: &(dyn Fn(&str) + Send + Sync),
    ) -> Result<LaunchOutput, CommandError> {
        let spec = single(launch, "ssh")?;
        let command = || crate::shown::command(launch);
        let Some(slot) = self.acquire(cancel).await else {
            return Ok(not_started());
        };
        let host = &self.hosts[slot.host].name;
        placed(host);
        let mut script = String::new();
        let nonce = nonce();
        if let Some(dir) = &spec.cwd {
            script.push_str(&enter(&dir_word(dir), &nonce));
        }
        for (k, v) in &spec.env {
            if !is_shell_name(k) {
                return Err(CommandError::Remote {
                    message: format!(
                        "the environment variable \"{k}\" cannot be set on ssh host \"{host}\": its shell takes only names of letters, digits and `_` that do not start with a digit"
                    ),
                    command: command(),
                });
            }
            script.push_str(&format!("export {}\n", sh_word(&format!("{k}={v}"))));
        }
        // A command's stderr sent to /dev/null goes there on the host, and prun reads
        // ssh's, which then carries only ssh's, the login shell's and `enter`'s lines: the
        // local /dev/null could not be read back for `enter`'s.
        let discarded = matches!(&launch.stderr, Sink::File(p) if p == Path::new("/dev/null"));
        if discarded {
            script.push_str("exec 2>/dev/null\n");
        }
        script.push_str("exec");
        for word in wrapper(launch.kill_grace)
            .into_iter()
            .chain(argv_of(spec, policy))
        {
            script.push(' ');
            script.push_str(&sh_word(&word));
        }
        let remote = login_line(&script);
        if remote.len() >= MAX_ARG_BYTES {
            return Err(CommandError::Remote {
                message: format!(
                    "the command is {} bytes for ssh host \"{host}\" once quoted for its shell, and ssh takes it as one argument, which Linux limits to {} bytes: give the command its long list in a file",
                    remote.len(),
                    MAX_ARG_BYTES - 1
                ),
                command: command(),
            });
        }
        let control_dir = self.control_dir().map_err(|e| CommandError::Remote {
            message: format!("cannot make the directory of the ssh connections: {e}"),
            command: command(),
        })?;
        let mut argv = vec!["ssh".to_string()];
        let socket = Ssh::socket(&control_dir, slot.host, slot.number / SESSIONS_PER_MASTER);
        argv.extend(self.options(&socket, false));
        argv.extend(["--".into(), host.clone(), remote]);
        let mut client = relay(launch, client(argv), Input::Held)?;
        if discarded {
            client.stderr = Sink::Capture;
        }
        let Some(out) = self
            .through_master(slot.host, &socket, local.hidden_env(), cancel, || {
                local.launch(&client, cancel)
            })
            .await
        else {
            return Ok(not_started());
        };
        let mut out = out.map_err(|e| client_error(e, launch, "ssh"))?;
        if out.ending == Ending::Exited && out.stages[0].code == Some(SSH_FAILED) {
            let tail = stderr_tail(&client, &out);
            let said = match tail.lines().map(str::trim).rfind(|l| !l.is_empty()) {
                Some(line) => format!(": {line}"),
                None => "; ssh's message is in the log".into(),
            };
            return Err(CommandError::Remote {
                message: format!(
                    "ssh to host \"{host}\" failed (ssh exit status {SSH_FAILED}: the connection was refused or lost, or the login failed){said}"
                ),
                command: command(),
            });
        }
        if let Some(dir) = &spec.cwd
            && out.ending == Ending::Exited
            && out.stages[0].code == Some(NO_DIR_STATUS)
        {
            let (said, after) = match unreadable(&client.stderr) {
                false => (no_dir(&stderr_tail(&client, &out), &nonce), String::new()),
                true => (
                    self.look_at(local, &socket, host, dir, cancel).await,
                    format!(
                        " (looked at after the command exited with code {NO_DIR_STATUS}: its stderr goes where prun cannot read it back)"
                    ),
                ),
            };
            if let Some(why) = said {
                return Err(CommandError::Remote {
                    message: format!(
                        "working directory {} {why} on ssh host \"{host}\"{after}",
                        dir.display()
                    ),
                    command: command(),
                });
            }
        }
        if discarded {
            out.stderr = Default::default();
        }
        out.place = Some(host.clone());
        Ok(out)
    }

    /// Why the host `host` cannot enter `dir` (`does not exist`...), looked at through
    /// the master socket `socket`; `None` when it can, or when the look fails.
    async fn look_at(
        &self,
        local: &Local,
        socket: &Path,
        host: &str,
        dir: &Path,
        cancel: &CancellationToken,
    ) -> Option<String> {
        let nonce = nonce();
        let mut argv = vec!["ssh".to_string()];
        argv.extend(self.options(socket, false));
        let script = enter(&dir_word(dir), &nonce) + "exit 0";
        argv.extend(["--".into(), host.to_string(), login_line(&script)]);
        let look = Launch::new(client(argv));
        let out = local.launch(&look, cancel).await.ok()?;
        no_dir(&out.stderr.text, &nonce)
    }

    /// Awaits `launch()`, an `ssh` to the host `host` through the master socket `socket`,
    /// once that master connection is up: it is started first when it is not (see
    /// [`Ssh::open_master`]), one at a time per host. While a master to the host failed
    /// to start lately ([`AVOID_UNREACHABLE`]), or when this one does, the command's
    /// `ssh` connects on its own (what fails then names why). `None` when `cancel` came
    /// first: the command never started.
    async fn through_master<T, F: std::future::Future<Output = T>>(
        &self,
        host: usize,
        socket: &Path,
        hidden: &[OsString],
        cancel: &CancellationToken,
        launch: impl FnOnce() -> F,
    ) -> Option<T> {
        let down_lately = || {
            self.unreachable_since(host)
                .is_some_and(|t| t.elapsed() < AVOID_UNREACHABLE)
        };
        if !self.master_up(socket) && !down_lately() {
            let _opening = tokio::select! {
                biased;
                () = cancel.cancelled() => return None,
                g = self.opening[host].lock() => g,
            };
            if !self.master_up(socket) && !down_lately() {
                let up = tokio::select! {
                    biased;
                    () = cancel.cancelled() => return None,
                    up = self.open_master(host, socket, hidden) => up,
                };
                self.set_unreachable(host, !up);
            }
        }
        if cancel.is_cancelled() {
            return None;
        }
        Some(launch().await)
    }

    /// Whether the master connection of `socket` is running and takes commands.
    fn master_up(&self, socket: &Path) -> bool {
        let mut masters = self.masters.lock().expect("masters");
        let Some(master) = masters.get_mut(socket) else {
            return false;
        };
        if matches!(master.try_wait(), Ok(None)) {
            return socket.exists();
        }
        unregister(master);
        masters.remove(socket);
        false
    }

    /// Starts the master connection of `socket` to the host `host` (without the variables
    /// of prun's environment in `hidden`), unless one is starting already (its opener was
    /// cancelled), and waits until it takes commands (`true`) or has exited (`false`: the
    /// host is down or refused the login).
    async fn open_master(&self, host: usize, socket: &Path, hidden: &[OsString]) -> bool {
        let starting = self.masters.lock().expect("masters").contains_key(socket);
        if !starting && !self.spawn_master(host, socket, hidden) {
            return false;
        }
        loop {
            if !self.masters.lock().expect("masters").contains_key(socket) {
                return false;
            }
            if self.master_up(socket) {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Spawns the master connection of `socket` to the host `host` and records it (in
    /// `masters` and the crash journal); `false` when it could not start.
    fn spawn_master(&self, host: usize, socket: &Path, hidden: &[OsString]) -> bool {
        use std::os::unix::process::CommandExt;
        // A socket a killed master left would make the new one give up multiplexing.
        let _ = std::fs::remove_file(socket);
        let name = &self.hosts[host].name;
        let mut cmd = std::process::Command::new("ssh");
        // In a group of its own, as every child of prun: out of reach of the Ctrl-C
        // the terminal sends to prun's group, which must not cut the commands' sessions.
        cmd.process_group(0)
            .args(self.options(socket, true))
            .args(["--", name, &login_line(MASTER_COMMAND)])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null());
        let since = unix::boot_ticks();
        let Ok(child) = crate::sigchld::spawn(&mut cmd, hidden) else {
            return false;
        };
        unix::register(
            child.id() as i32,
            since,
            &format!("ssh master connection to {name}"),
            crate::exec::KILL_GRACE,
        );
        self.masters
            .lock()
            .expect("masters")
            .insert(socket.to_path_buf(), child);
        true
    }

    /// Ends the master connections: their input closes, and one that has not exited
    /// after [`CLOSE_WAIT`] (stopped, stuck) is killed. Then removes the sockets'
    /// directory.
    pub(crate) fn close(&self) {
        let mut masters: Vec<std::process::Child> = self
            .masters
            .lock()
            .expect("masters")
            .drain()
            .map(|(_, m)| m)
            .collect();
        for m in &mut masters {
            drop(m.stdin.take());
        }
        let deadline = Instant::now() + CLOSE_WAIT;
        while masters.iter_mut().any(|m| matches!(m.try_wait(), Ok(None)))
            && Instant::now() < deadline
        {
            std::thread::sleep(Duration::from_millis(5));
        }
        for mut m in masters {
            if matches!(m.try_wait(), Ok(None)) {
                unix::kill_group(m.id() as i32);
            }
            let _ = m.wait();
            unregister(&m);
        }
        crashed::write_gone();
        if let Some((dir, key)) = self.control_dir.lock().expect("control dir").take() {
            drop(dir);
            if let Some(key) = key {
                crashed::dir_removed(key);
            }
        }
    }
}

/// Records in the crash journal that the master connection `master` is gone.
fn unregister(master: &std::process::Child) {
    unix::unregister(master.id() as i32);
}

/// What a command cancelled before it started gives.
fn not_started() -> LaunchOutput {
    LaunchOutput {
        stages: vec![StageStatus {
            code: None,
            signal: None,
        }],
        stdout: Default::default(),
        stderr: Default::default(),
        duration: std::time::Duration::ZERO,
        ending: Ending::Cancelled,
        place: None,
    }
}

/// The line the remote user's login shell runs (`$SHELL -c LINE`: POSIX shells, fish,
/// csh and tcsh read it alike): `exec sh -c BOOT sh CHUNK...`, where
/// the chunks are `script` with the bytes some of those shells read differently inside
/// single quotes (`'`, `\`, `!`, newlines and other control characters) written as
/// `printf %b` escapes; `sh` joins the chunks, decodes them and runs the script. A chunk
/// holds at most [`CHUNK_BYTES`]: csh refuses longer words.
fn login_line(script: &str) -> String {
    let mut line = String::from(r#"exec sh -c 'eval "$(IFS=; printf %b "$*")"' sh '"#);
    let mut chunk = 0;
    for c in script.chars() {
        let unit = if matches!(c, '\'' | '\\' | '!') || c.is_ascii_control() {
            format!("\\0{:03o}", c as u32)
        } else {
            c.to_string()
        };
        if chunk + unit.len() > CHUNK_BYTES {
            line.push_str("' '");
            chunk = 0;
        }
        chunk += unit.len();
        line.push_str(&unit);
    }
    line.push('\'');
    line
}

/// A command's `cwd` as a word for the remote `sh`: `cd -P` and `cd -` would be options
/// (`--` does not help with `-`), so a leading `-` gets `./` before it.
fn dir_word(dir: &Path) -> String {
    let dir = dir.to_string_lossy();
    match dir.starts_with('-') {
        true => sh_word(&format!("./{dir}")),
        false => sh_word(&dir),
    }
}

/// Whether a command's stderr goes where prun cannot read its end back: a FIFO, a
/// terminal or a device (not `/dev/null`, which the remote side is given itself).
fn unreadable(sink: &Sink) -> bool {
    match sink {
        Sink::Inherit => true,
        Sink::File(p) => std::fs::metadata(p).is_ok_and(|m| !m.is_file()),
        Sink::Capture | Sink::Fd(_) | Sink::Log => false,
    }
}

/// Whether `name` is a name a POSIX shell's `export` takes.
fn is_shell_name(name: &str) -> bool {
    name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Returns at `at`, or never.
async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at.into()).await,
        None => std::future::pending().await,
    }
}

/// A slot taken on a host, given back when dropped.
struct Slot<'a> {
    ssh: &'a Ssh,
    host: usize,
    /// Its number among the host's slots: the lowest free when it was taken.
    number: usize,
}

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        self.ssh.used.lock().expect("slots")[self.host].remove(&self.number);
        self.ssh.freed.notify_waiters();
    }
}

/// A host entry's name and its slots, when it gives them: `web2:4`, `[::1]:4` (an IPv6
/// address takes brackets then); a bare IPv6 address (`::1`) gives none.
fn split_slots(entry: &str) -> (String, Option<&str>) {
    let unbracket = |h: &str| {
        h.strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(h)
            .to_string()
    };
    match entry.rsplit_once(':') {
        Some((name, slots)) if !name.contains(':') || name.ends_with(']') => {
            (unbracket(name), Some(slots))
        }
        _ => (unbracket(entry), None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_login_line_has_short_words_and_no_byte_shells_read_apart() {
        let script = format!("a'b\\c!d\ne {}", "x".repeat(3 * CHUNK_BYTES));
        let line = login_line(&script);
        let (boot, chunks) = line.split_once(" sh '").unwrap();
        assert_eq!(boot, r#"exec sh -c 'eval "$(IFS=; printf %b "$*")"'"#);
        let chunks: Vec<&str> = chunks.strip_suffix('\'').unwrap().split("' '").collect();
        assert_eq!(chunks.len(), 4);
        for chunk in &chunks {
            assert!(chunk.len() <= CHUNK_BYTES, "{}", chunk.len());
            assert!(!chunk.contains(['\'', '!', '\n']) && !chunk.contains("\\\\"));
        }
        assert!(chunks[0].starts_with(r"a\0047b\0134c\0041d\0012e x"));
    }

    #[test]
    fn only_shell_names_are_exported() {
        assert!(is_shell_name("PATH") && is_shell_name("_a1"));
        assert!(!is_shell_name("B;C") && !is_shell_name("1A") && !is_shell_name("A-B"));
        assert!(!is_shell_name(""));
    }

    #[test]
    fn slots_past_the_largest_integer_add_up_to_it() {
        let mut m = rhai::Map::new();
        m.insert("kind".into(), "ssh".into());
        let hosts: rhai::Array = vec![format!("a:{}", usize::MAX).into(), "b:2".into()];
        m.insert("hosts".into(), hosts.into());
        let e = super::super::Executor::parse("farm", &rhai::Dynamic::from(m)).unwrap();
        assert_eq!(e.limit(), usize::MAX);
    }

    #[test]
    fn slots_follow_the_last_colon_but_not_inside_an_ipv6_address() {
        assert_eq!(split_slots("web2:4"), ("web2".into(), Some("4")));
        assert_eq!(split_slots("me@web1"), ("me@web1".into(), None));
        assert_eq!(split_slots("::1"), ("::1".into(), None));
        assert_eq!(split_slots("fe80::2"), ("fe80::2".into(), None));
        assert_eq!(split_slots("[::1]:3"), ("::1".into(), Some("3")));
        assert_eq!(split_slots("[::1]"), ("::1".into(), None));
        let mut m = rhai::Map::new();
        m.insert("kind".into(), "ssh".into());
        let hosts: rhai::Array = vec!["::1".into(), "[fe80::2]:2".into()];
        m.insert("hosts".into(), hosts.into());
        let e = super::super::Executor::parse("farm", &rhai::Dynamic::from(m)).unwrap();
        assert_eq!(
            (e.limit(), e.describe().as_str()),
            (3, "ssh ::1, [fe80::2]:2")
        );
    }
}

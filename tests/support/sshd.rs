//! A real OpenSSH server on a free loopback port, for the `ssh` executor's tests: host
//! and client keys made for it in a private directory, key-only login as the current
//! user (root on CI) or as a [`User`] made for the test, logging to a file the tests read.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running sshd, stopped when dropped.
pub(crate) struct Sshd {
    dir: tempfile::TempDir,
    pub port: u16,
    child: Child,
}

fn run(cmd: &mut Command, what: &str) {
    let out = cmd.output().unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(
        out.status.success(),
        "{what} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A TCP port nothing listens on right now.
pub(crate) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

impl Sshd {
    /// Starts a server (the binary must exist: the tests that call this are ignored
    /// where it does not, see `build.rs`).
    pub(crate) fn start() -> Sshd {
        Sshd::start_with_max_sessions(100)
    }

    /// Starts a server that takes at most `max_sessions` sessions per connection (sshd's
    /// default is 10).
    pub(crate) fn start_with_max_sessions(max_sessions: usize) -> Sshd {
        assert!(
            Path::new("/usr/sbin/sshd").exists(),
            "/usr/sbin/sshd is missing: install openssh-server (.ci/run does)"
        );
        let dir = tempfile::Builder::new()
            .prefix("prun-sshd.")
            .tempdir()
            .unwrap();
        let d = dir.path();
        for key in ["host_ed25519", "client_ed25519"] {
            run(
                Command::new("ssh-keygen")
                    .args(["-q", "-t", "ed25519", "-N", "", "-f"])
                    .arg(d.join(key)),
                "ssh-keygen",
            );
        }
        std::fs::copy(d.join("client_ed25519.pub"), d.join("authorized_keys")).unwrap();
        // The privilege-separation directory sshd requires.
        std::fs::create_dir_all("/run/sshd").expect("create /run/sshd (tests run as root)");
        let port = free_port();
        let config = format!(
            "Port {port}\nListenAddress 127.0.0.1\nHostKey {d}/host_ed25519\n\
             AuthorizedKeysFile {d}/authorized_keys .ssh/authorized_keys\nPasswordAuthentication no\n\
             KbdInteractiveAuthentication no\nPermitRootLogin prohibit-password\nUsePAM no\n\
             StrictModes no\nPidFile none\nMaxSessions {max_sessions}\nMaxStartups 100\n",
            d = d.display()
        );
        std::fs::write(d.join("sshd_config"), config).unwrap();
        let child = Command::new("/usr/sbin/sshd")
            .arg("-D")
            .arg("-f")
            .arg(d.join("sshd_config"))
            .arg("-E")
            .arg(d.join("sshd.log"))
            .stdin(Stdio::null())
            .spawn()
            .expect("start sshd");
        let sshd = Sshd { dir, port, child };
        let t = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                t.elapsed() < Duration::from_secs(10),
                "sshd did not listen on port {port}: {}",
                sshd.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        sshd
    }

    /// A user of the test's own who logs in to this server with its key: `shell` is its
    /// login shell, and its home is new and empty, so no startup file of the machine's
    /// users (root's `~/.bashrc`, which may print on stderr) runs with its commands.
    pub(crate) fn user(&self, shell: &str) -> User {
        User::new(self, shell)
    }

    /// The client's private key.
    pub(crate) fn identity(&self) -> PathBuf {
        self.dir.path().join("client_ed25519")
    }

    /// The server's log.
    pub(crate) fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("sshd.log")).unwrap_or_default()
    }

    /// How many logins the server accepted.
    pub(crate) fn logins(&self) -> usize {
        self.log().matches("Accepted publickey").count()
    }

    /// A Rhai map declaring an `ssh` executor on `hosts` of this server (host keys are
    /// not checked: they are new for every test).
    pub(crate) fn executor(&self, hosts: &[&str]) -> String {
        let hosts: Vec<String> = hosts.iter().map(|h| format!("\"{h}\"")).collect();
        format!(
            r#"#{{ kind: "ssh", hosts: [{}], port: {}, identity: "{}", args: ["-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR"] }}"#,
            hosts.join(", "),
            self.port,
            self.identity().display()
        )
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Processes whose command line contains `needle` (zombies do not count).
pub(crate) fn processes_with(needle: &str) -> Vec<String> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let pid = entry.file_name().to_string_lossy().to_string();
        if !pid.chars().all(|c| c.is_ascii_digit()) || !super::alive(pid.parse().unwrap()) {
            continue;
        }
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        if cmdline.contains(needle) {
            found.push(format!("{pid}: {cmdline}"));
        }
    }
    found
}

/// Waits (bounded, 10 s) until no process's command line contains `needle`; returns
/// those still there.
pub(crate) fn gone(needle: &str) -> Vec<String> {
    let t = Instant::now();
    loop {
        let left = processes_with(needle);
        if left.is_empty() || t.elapsed() > Duration::from_secs(10) {
            return left;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Asserts that no process's command line contains `needle` once they have had time to
/// end (see [`gone`]).
pub(crate) fn assert_none_left(needle: &str, out: &super::Output) {
    let left = gone(needle);
    assert!(
        left.is_empty(),
        "left on the host: {left:?}\n{}",
        out.describe()
    );
}

/// Asserts that no process's command line contains `needle` at once: prun waited for
/// them before it returned.
pub(crate) fn assert_none_at_return(needle: &str, out: &super::Output) {
    let left = processes_with(needle);
    assert!(
        left.is_empty(),
        "still on the host when prun returned: {left:?}\n{}",
        out.describe()
    );
}

/// A login made for one test (see [`Sshd::user`]), removed when dropped.
pub(crate) struct User {
    /// Its login name.
    pub name: String,
    home: tempfile::TempDir,
}

impl User {
    fn new(sshd: &Sshd, shell: &str) -> User {
        assert!(
            Path::new(shell).exists(),
            "{shell} is missing: install its package (.ci/run does)"
        );
        let base = Path::new(shell).file_name().unwrap().to_string_lossy();
        let name = format!("prun{}{base}", sshd.port);
        let home = tempfile::Builder::new()
            .prefix("prun-home.")
            .tempdir()
            .unwrap();
        let add = |name: &str| {
            Command::new("useradd")
                .args(["-M", "-N", "-p", "*", "-s", shell, "-d"])
                .arg(home.path())
                .arg(name)
                .output()
                .expect("run useradd")
        };
        let mut out = add(&name);
        // Left by a test process that was killed: made again, as new.
        if out.status.code() == Some(9) {
            userdel(&name);
            out = add(&name);
        }
        retry_while_locked(&mut out, || add(&name));
        assert!(
            out.status.success(),
            "useradd {name} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let user = User { name, home };
        let pw = nix::unistd::User::from_name(&user.name)
            .ok()
            .flatten()
            .expect("the new user's passwd entry");
        let ssh = user.home.path().join(".ssh");
        std::fs::create_dir(&ssh).unwrap();
        std::fs::copy(
            sshd.dir.path().join("authorized_keys"),
            ssh.join("authorized_keys"),
        )
        .unwrap();
        for p in [user.home.path(), &ssh, &ssh.join("authorized_keys")] {
            std::os::unix::fs::chown(p, Some(pw.uid.as_raw()), Some(pw.gid.as_raw())).unwrap();
        }
        user
    }

    /// Its home directory, where its commands start.
    pub(crate) fn home(&self) -> &Path {
        self.home.path()
    }
}

impl Drop for User {
    fn drop(&mut self) {
        userdel(&self.name);
    }
}

fn userdel(name: &str) {
    let del = || {
        Command::new("userdel")
            .args(["-f", name])
            .output()
            .expect("run userdel")
    };
    let mut out = del();
    retry_while_locked(&mut out, del);
}

/// Runs `again` while `out` says the password or group file was locked (by another
/// test's `useradd` or `userdel`), for up to 30 s.
fn retry_while_locked(out: &mut std::process::Output, again: impl Fn() -> std::process::Output) {
    let t = Instant::now();
    while !out.status.success()
        && String::from_utf8_lossy(&out.stderr).contains("lock")
        && t.elapsed() < Duration::from_secs(30)
    {
        std::thread::sleep(Duration::from_millis(100));
        *out = again();
    }
}

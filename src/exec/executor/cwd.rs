//! A remote command's working directory: entered by the remote script before the
//! command runs (an ssh host's login directory is not the command's, and slurmstepd runs a
//! job whose directory it cannot enter in `/tmp`), and told apart from the command's own
//! failure by a marked last line of stderr.

use crate::exec::launch::{Launch, LaunchOutput, Sink};

use super::sh_quote;

/// The exit status of a remote command (an ssh command, a Slurm job) whose working directory could not be entered (a
/// failed `cd`'s), told from the command's own by the last line of its stderr.
pub(super) const NO_DIR_STATUS: i32 = 1;

/// The remote script's first step, which enters the command's directory (`dir`, quoted; a
/// `CDPATH` of the host's would send a relative one elsewhere): a directory it cannot
/// enter ends the script, before the command, with
/// [`NO_DIR_STATUS`] and a last line of stderr naming why, marked with `nonce` (which no
/// command prints by chance; see [`no_dir`]).
pub(super) fn enter(dir: &str, nonce: &str) -> String {
    format!(
        "CDPATH= cd {dir} >/dev/null 2>&1 || {{ if [ ! -e {dir} ]; then r='does not exist'; elif [ ! -d {dir} ]; then r='is not a directory'; else r='cannot be entered'; fi; echo \"prun {nonce}: the working directory $r\" >&2; exit {NO_DIR_STATUS}; }}\n"
    )
}

/// Why the remote script could not enter the working directory (`does not exist`...),
/// when the last line of its stderr (`stderr_tail`) is [`enter`]'s marked line.
pub(super) fn no_dir(stderr_tail: &str, nonce: &str) -> Option<String> {
    // What comes before it on its line is not the script's (an unnamed log's room for
    // its header, a startup file's unfinished line).
    let last = stderr_tail.lines().rev().find(|l| !l.trim().is_empty())?;
    let (_, why) = last.split_once(&format!("prun {nonce}: the working directory "))?;
    Some(why.to_string())
}

/// A word no command prints by chance, different for every command.
pub(super) fn nonce() -> String {
    use std::hash::BuildHasher;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let n = std::hash::RandomState::new().hash_one((now, std::process::id()));
    format!("{n:016x}")
}

/// A word for a POSIX shell: as it is when the shell would read it so, else quoted.
pub(super) fn sh_word(word: &str) -> String {
    let plain = |c: char| c.is_ascii_alphanumeric() || "_./,:=@%+-".contains(c);
    if !word.is_empty() && word.chars().all(plain) {
        word.to_string()
    } else {
        sh_quote(word)
    }
}

/// The last bytes (up to 4 KiB) of what the client (`ssh`, `srun`) launched as `launch`, which gave
/// `out`, wrote to its stderr, wherever that went, without the NUL bytes a log keeps as
/// room for its header; empty when they cannot be read back.
pub(super) fn stderr_tail(launch: &Launch, out: &LaunchOutput) -> String {
    use std::os::unix::fs::FileExt;
    let tail = |f: &std::fs::File| -> Option<String> {
        let len = f.metadata().ok()?.len();
        let start = len.saturating_sub(4096);
        let mut buf = vec![0; usize::try_from(len - start).ok()?];
        f.read_exact_at(&mut buf, start).ok()?;
        Some(String::from_utf8_lossy(&buf).into_owned())
    };
    match &launch.stderr {
        Sink::Capture => Some(out.stderr.text.clone()),
        Sink::Fd(f) => tail(f),
        Sink::File(p) => regular_file(p).and_then(|f| tail(&f)),
        Sink::Log => launch
            .log
            .as_ref()
            .and_then(|l| tail(l.lock().expect("log").file())),
        Sink::Inherit => None,
    }
    .unwrap_or_default()
    .replace('\0', "")
}

/// The file at `path`, open for reading, when it is a regular file. Opened without
/// waiting: the open of a FIFO waits for a writer, which never comes once the command has
/// ended (prun hung there for good); a FIFO or a terminal has nothing to read back.
fn regular_file(path: &std::path::Path) -> Option<std::fs::File> {
    use nix::fcntl::OFlag;
    use std::os::unix::fs::OpenOptionsExt;
    let f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags((OFlag::O_NONBLOCK | OFlag::O_NOCTTY).bits())
        .open(path)
        .ok()?;
    f.metadata().ok()?.is_file().then_some(f)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cwd_that_cannot_be_entered_is_read_from_the_marked_last_line() {
        let tail = "startup noise\n\0\0prun 00ff: the working directory does not exist\n";
        assert_eq!(no_dir(tail, "00ff").as_deref(), Some("does not exist"));
        assert_eq!(no_dir(tail, "00fe"), None);
        assert_eq!(
            no_dir(&format!("{tail}the command's own line\n"), "00ff"),
            None
        );
    }
}

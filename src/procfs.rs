//! Reading `/proc`: the start time of a process, by which a pid given to another process
//! since is not taken for the one recorded (the crash journal's process groups, a run's
//! owner in the task DB), and the signals this process was started with.

use std::fs::File;
use std::io;

/// The start time of a process (field 22 of `/proc/<pid>/stat`, in clock ticks since
/// boot), or `None` when it does not exist. This process's own is read once: the crash
/// journal and the task DB's record of the run's owner both want it at the run's start.
pub(crate) fn start_time(pid: i32) -> Option<u64> {
    static OWN: std::sync::OnceLock<Option<u64>> = std::sync::OnceLock::new();
    if u32::try_from(pid).is_ok_and(|p| p == std::process::id()) {
        return *OWN.get_or_init(|| read_start_time(pid));
    }
    read_start_time(pid)
}

/// [`start_time`], read from `/proc`.
///
/// Read into a buffer on the stack with plain `read` calls: it runs once per started
/// group, and `fs::read_to_string` would first stat the file (whose size `/proc` reports
/// as 0) and then grow its buffer from 32 bytes, costing twice the system calls.
fn read_start_time(pid: i32) -> Option<u64> {
    use std::io::Read;
    let mut file = File::open(format!("/proc/{pid}/stat")).ok()?;
    // 52 fields, numbers of at most 20 digits and a command name of at most 64 bytes.
    let mut buf = [0u8; 2048];
    let mut len = 0;
    while len < buf.len() {
        match file.read(&mut buf[len..]) {
            Ok(0) => break,
            Ok(n) => {
                len += n;
                // A complete line needs no further read to find its end.
                if buf[len - 1] == b'\n'
                    && let Some(start) = stat_start_time(&buf[..len])
                {
                    return Some(start);
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return None,
        }
    }
    stat_start_time(&buf[..len])
}

/// Field 22 of a `/proc/<pid>/stat` line.
fn stat_start_time(stat: &[u8]) -> Option<u64> {
    let rest = &stat[stat.iter().rposition(|&b| b == b')')? + 1..];
    // `rest` starts at field 3 (the state): field 22 is its 20th word.
    let field = rest
        .split(u8::is_ascii_whitespace)
        .filter(|w| !w.is_empty())
        .nth(19)?;
    std::str::from_utf8(field).ok()?.parse().ok()
}

/// The signals this process ignored and those it caught (`SigIgn:` and `SigCgt:` of
/// `/proc/self/status`) when first asked, as bits (`1 << (sig - 1)`); none when `/proc`
/// cannot be read.
#[derive(Debug, Clone, Copy)]
pub(crate) struct StartSignals {
    pub(crate) ignored: u64,
    pub(crate) caught: u64,
}

/// [`StartSignals`], read once for both: the first call comes before prun installs a
/// handler of its own (see `unix::ignored_at_start` and `signals::listen`), so they are
/// what the process was started with and what its program set itself.
pub(crate) fn signals_at_start() -> StartSignals {
    static READ: std::sync::OnceLock<StartSignals> = std::sync::OnceLock::new();
    *READ.get_or_init(|| {
        let status = read_small("/proc/self/status").unwrap_or_default();
        let set = |field: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(field))
                .and_then(|hex| u64::from_str_radix(hex.trim(), 16).ok())
                .unwrap_or(0)
        };
        StartSignals {
            ignored: set("SigIgn:"),
            caught: set("SigCgt:"),
        }
    })
}

/// A small file of `/proc` (a few KiB) as text, read with plain `read` calls into a
/// buffer of that size: `fs::read_to_string` (and `File::read_to_end`) would first stat
/// the file (whose size `/proc` reports as 0) and seek, and then read it in growing
/// pieces from 32 bytes.
pub(crate) fn read_small(path: &str) -> io::Result<String> {
    use std::io::Read;
    let mut file = File::open(path)?;
    let mut text = vec![0u8; 4096];
    let mut len = 0;
    loop {
        if len == text.len() {
            text.resize(len * 2, 0);
        }
        match file.read(&mut text[len..]) {
            Ok(0) => break,
            Ok(n) => len += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    text.truncate(len);
    String::from_utf8(text).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}

/// Whether a process has exited and waits to be reaped (a zombie, state `Z` or `X` in
/// `/proc/<pid>/stat`): it keeps its pid and start time, but runs nothing.
pub(crate) fn is_zombie(pid: i32) -> bool {
    let Ok(stat) = std::fs::read(format!("/proc/{pid}/stat")) else {
        return false;
    };
    let state = stat
        .iter()
        .rposition(|&b| b == b')')
        .and_then(|i| stat[i + 1..].iter().find(|b| !b.is_ascii_whitespace()));
    matches!(state, Some(b'Z' | b'X'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_time_is_field_22_even_after_a_name_with_parentheses() {
        let fields: Vec<String> = (3..=52).map(|f| f.to_string()).collect();
        let line = format!("42 (a) b (c) {}\n", fields.join(" "));
        assert_eq!(stat_start_time(line.as_bytes()), Some(22));
        assert_eq!(stat_start_time(b"42 (a) S 1 2\n"), None);
    }

    #[test]
    fn a_child_that_exited_unreaped_is_a_zombie_and_this_process_is_not() {
        let mut child = std::process::Command::new("true").spawn().expect("true");
        let pid = child.id() as i32;
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while !is_zombie(pid) {
            assert!(std::time::Instant::now() < deadline, "never a zombie");
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        child.wait().expect("reap");
        assert!(!is_zombie(pid));
        assert!(!is_zombie(std::process::id() as i32));
    }

    #[test]
    fn a_small_file_is_read_whole_however_long() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("f");
        let text = "x".repeat(10_000);
        std::fs::write(&path, &text).expect("write");
        let read = read_small(path.to_str().expect("utf-8")).expect("read");
        assert_eq!(read, text);
        assert_eq!(
            read_small("/nonexistent/f").map_err(|e| e.kind()),
            Err(io::ErrorKind::NotFound)
        );
    }

    #[test]
    fn the_signals_at_start_are_those_of_proc_self_status() {
        let status = std::fs::read_to_string("/proc/self/status").expect("status");
        let field = |name: &str| {
            let hex = status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .expect(name);
            u64::from_str_radix(hex.trim(), 16).expect("hex")
        };
        let read = signals_at_start();
        assert_eq!(read.ignored, field("SigIgn:"));
        assert_eq!(read.caught, field("SigCgt:"));
    }

    #[test]
    fn start_time_reads_this_process() {
        let me = std::process::id() as i32;
        assert!(start_time(me).is_some_and(|t| t > 0));
        assert_eq!(start_time(me), start_time(me));
    }
}

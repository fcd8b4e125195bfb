//! The process groups a crashed run left running, and how the next run ends them.
//!
//! While a run lasts, every process group it starts is recorded in a journal,
//! `<state>/groups/<prun pid>`: a `+ PGID START COMMAND` line when the group starts
//! (`START` is the leader's start time as `/proc/<pid>/stat` gives it, so that a reused
//! pid is never mistaken for it: a number, or `FIRST-LAST` when it is known to lie between
//! two ticks of the boot-time clock read around the spawn) and a `- PGID` line when it is
//! gone. The run holds an `flock` on
//! its journal and removes it when it ends. When prun is killed (`kill -9`, the OOM
//! killer), the kernel releases the lock but the journal stays: the next run of the script
//! takes the lock of every journal it finds, ends the groups of it that are still alive
//! (SIGTERM, a grace period, SIGKILL) with a warning naming them, and removes it, all
//! before it starts anything of its own.

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::unix;

/// The journals of the runs in this process, by their ids. Every group started is
/// recorded in each of them: the groups of a process all die with it, and every journal a
/// crash leaves is read by the next run of its script, so each names them all.
/// Several runs at once happen when prun is a library (see [`crate::Runtime`]).
static JOURNALS: Mutex<Vec<(u64, Writer)>> = Mutex::new(Vec::new());

/// The id of the next journal of this process.
static NEXT_ID: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// A journal is rewritten with only its live groups once it holds this many more lines
/// than live groups, so that a run of many short commands keeps it small.
const COMPACT_SLACK: usize = 1024;

/// The longest command text kept per group (enough to name it in a warning).
const COMMAND_CHARS: usize = 200;

struct Writer {
    file: File,
    live: HashMap<i32, String>,
    lines: usize,
    /// `- PGID` lines not written yet: they go out with the next `+` line, in the same
    /// write (see [`ended`]).
    gone: String,
}

impl Writer {
    /// Appends a `+` line, after the `-` lines held back.
    fn append(&mut self, line: &str) {
        self.lines += 1;
        if self.lines > 2 * self.live.len() + COMPACT_SLACK {
            self.compact();
        } else if self.gone.is_empty() {
            let _ = self.file.write_all(line.as_bytes());
        } else {
            self.gone.push_str(line);
            let _ = self.file.write_all(self.gone.as_bytes());
            self.gone.clear();
        }
    }

    /// Records that a group is gone; its line waits for the next [`Writer::append`] or
    /// [`Writer::write_gone`].
    fn gone(&mut self, pgid: i32) {
        use std::fmt::Write as _;
        if self.live.remove(&pgid).is_some() {
            self.lines += 1;
            let _ = writeln!(self.gone, "- {pgid}");
        }
    }

    /// Writes the `- PGID` lines held back.
    fn write_gone(&mut self) {
        if !self.gone.is_empty() {
            let _ = self.file.write_all(self.gone.as_bytes());
            self.gone.clear();
        }
    }

    /// Rewrites the journal with the live groups only (the file is opened for appending,
    /// so writes after the truncation start at its beginning).
    fn compact(&mut self) {
        let text: String = self.live.values().map(String::as_str).collect();
        self.lines = self.live.len();
        self.gone.clear();
        if self.file.set_len(0).is_ok() {
            let _ = self.file.write_all(text.as_bytes());
        }
    }
}

/// This run's journal; dropping it removes the file (a run that ends leaves no groups).
#[derive(Debug)]
pub(crate) struct Journal {
    path: PathBuf,
    id: u64,
}

impl Journal {
    /// Creates `<dir>/<pid>` (`<dir>/<pid>.<n>` for the n-th further run of the
    /// process), locked, and records every group started from now on in it.
    /// The file is made under a hidden name and renamed once locked, so that a run
    /// looking for crashed journals never takes a live run's journal for one.
    pub(crate) fn start(dir: &Path) -> io::Result<Journal> {
        fs::create_dir_all(dir)?;
        let pid = std::process::id();
        let id = NEXT_ID.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let name = if id == 0 {
            pid.to_string()
        } else {
            format!("{pid}.{id}")
        };
        let hidden = dir.join(format!(".{name}.new"));
        let path = dir.join(&name);
        // The journal names commands: readable by the user only, like the logs.
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(&hidden)?;
        file.lock()?;
        file.set_len(0)?;
        fs::rename(&hidden, &path)?;
        let writer = Writer {
            file,
            live: HashMap::new(),
            lines: 0,
            gone: String::new(),
        };
        journals().push((id, writer));
        Ok(Journal { path, id })
    }
}

impl Drop for Journal {
    /// Removes the journal, then empties the file before it is closed: ext4 writes out,
    /// when it is closed, a file that was truncated to nothing since it was opened (its
    /// `auto_da_alloc` guard for files rewritten in place), and the journal is truncated
    /// when it starts and when it compacts. Emptied, it has nothing to write: closing it
    /// cost 0.2–4 ms at the end of every run, more than the rest of a short run's end.
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.path);
        let mut journals = journals();
        for (_, w) in journals.iter().filter(|(id, _)| *id == self.id) {
            let _ = w.file.set_len(0);
        }
        journals.retain(|(id, _)| *id != self.id);
    }
}

fn journals() -> std::sync::MutexGuard<'static, Vec<(u64, Writer)>> {
    JOURNALS
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Records a group that just started (its leader is `pgid`). `since` is
/// [`unix::boot_ticks`] read before the leader was started: with a second reading now,
/// the two bound its start time, which costs no read of `/proc` (opening its `stat`
/// while the leader is still in `execve` waits for the exec to finish).
pub(crate) fn started(pgid: i32, since: Option<u64>, command: &dyn std::fmt::Display) {
    let mut journals = journals();
    if journals.is_empty() {
        return;
    }
    let start = match (since, unix::boot_ticks()) {
        (Some(first), Some(last))
            if first <= last && boot_clock_is_proc_clock(pgid, first, last) =>
        {
            if first == last {
                first.to_string()
            } else {
                format!("{first}-{last}")
            }
        }
        _ => start_time(pgid).unwrap_or(0).to_string(),
    };
    let mut line = format!("+ {pgid} {start} ");
    let text = command.to_string();
    line.extend(
        text.chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .take(COMMAND_CHARS),
    );
    line.push('\n');
    for (_, w) in journals.iter_mut() {
        w.live.insert(pgid, line.clone());
        w.append(&line);
    }
}

/// Whether start times in `/proc` are ticks of the boot-time clock, as they are since
/// Linux 3.17: checked once per process, on the first group started (its leader, `pgid`,
/// started between `first` and `last`). Where they are not, every start time is read from
/// `/proc`, so that the next run still recognises the groups of a crashed one.
fn boot_clock_is_proc_clock(pgid: i32, first: u64, last: u64) -> bool {
    static MATCHES: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *MATCHES.get_or_init(|| start_time(pgid).is_some_and(|s| (first..=last).contains(&s)))
}

/// How often the journals are brought up to date with the processes prun adopted.
const ADOPTED_EVERY: Duration = Duration::from_millis(500);

/// Starts, once per process, a thread that records in the journals the process groups
/// of the processes prun adopted (see [`unix::adopt_orphans`]): a process that left its
/// command's group (`setsid`, as a daemon or the server `pg_ctl` starts does) and outlived
/// its parent is in no group recorded at its start, and would outlive a crash of prun.
/// One adopted less than [`ADOPTED_EVERY`] before the crash is missed.
pub(crate) fn watch_adopted() {
    static STARTED: std::sync::Once = std::sync::Once::new();
    STARTED.call_once(|| {
        let _ = std::thread::Builder::new()
            .name("prun-adopted".into())
            .spawn(|| {
                loop {
                    std::thread::sleep(ADOPTED_EVERY);
                    record_adopted();
                }
            });
    });
}

/// Records in the journals the group of each child of prun that is in no recorded group:
/// one prun adopted (or one just started, whose group is about to be recorded anyway).
fn record_adopted() {
    if journals().is_empty() {
        return;
    }
    let groups: Vec<(i32, i32)> = {
        // A child being started is not one that escaped its command.
        let _alone = crate::sigchld::none_starting();
        unix::children()
            .into_iter()
            .filter_map(|pid| Some((pid, unix::group_of(pid)?)))
            .collect()
    };
    let mut journals = journals();
    for (pid, pgid) in groups {
        if journals.iter().all(|(_, w)| w.live.contains_key(&pgid)) {
            continue;
        }
        // A group whose leader is gone has no start time: a pid still in use as a group
        // id is never given to a new process.
        let start = start_time(pgid).unwrap_or(0);
        let line = format!("+ {pgid} {start} {}\n", command_of(pid));
        for (_, w) in journals.iter_mut() {
            if let std::collections::hash_map::Entry::Vacant(e) = w.live.entry(pgid) {
                e.insert(line.clone());
                w.append(&line);
            }
        }
    }
}

/// The command line of a process, as a warning names it (`?` when it is gone).
fn command_of(pid: i32) -> String {
    let Ok(raw) = fs::read(format!("/proc/{pid}/cmdline")) else {
        return "?".into();
    };
    let text = String::from_utf8_lossy(&raw);
    text.trim_end_matches('\0')
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(COMMAND_CHARS)
        .collect()
}

/// Records a group that is gone. Its `- PGID` line is written with the next group's `+`
/// line or by [`write_gone`], whichever comes first: the end of a command body that lets
/// another one start costs no write of its own, and none between the child's exit and
/// the next spawn (the scheduler calls [`write_gone`] when the end started no command
/// body, or that one could not start). A crash in between loses nothing: the
/// next run ends only the groups that are still there (a leader with the recorded start
/// time, or members left in the group, see [`still_there`]), and this one has neither.
pub(crate) fn ended(pgid: i32) {
    for (_, w) in journals().iter_mut() {
        w.gone(pgid);
    }
}

/// Writes the `- PGID` lines held back by [`ended`].
pub(crate) fn write_gone() {
    for (_, w) in journals().iter_mut() {
        w.write_gone();
    }
}

/// The start time of a process (field 22 of `/proc/<pid>/stat`, in clock ticks since
/// boot), or `None` when it does not exist.
///
/// Read into a buffer on the stack with plain `read` calls: it runs once per started
/// group, and `fs::read_to_string` would first stat the file (whose size `/proc` reports
/// as 0) and then grow its buffer from 32 bytes, costing twice the system calls.
fn start_time(pid: i32) -> Option<u64> {
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

/// A group recorded in a crashed run's journal.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Recorded {
    pgid: i32,
    /// The first and the last tick the leader's start time can be.
    start: (u64, u64),
    command: String,
}

/// The groups a journal records as started and not gone.
fn parse(text: &str) -> Vec<Recorded> {
    let mut live: Vec<Recorded> = Vec::new();
    for line in text.lines() {
        let mut words = line.splitn(4, ' ');
        let (kind, pgid) = (words.next(), words.next().and_then(|p| p.parse().ok()));
        let Some(pgid) = pgid.filter(|&p: &i32| p > 1) else {
            continue;
        };
        live.retain(|r| r.pgid != pgid);
        if kind == Some("+") {
            let start = words.next().and_then(parse_start).unwrap_or((0, 0));
            let command = words.next().unwrap_or("").to_string();
            live.push(Recorded {
                pgid,
                start,
                command,
            });
        }
    }
    live
}

/// A journal's `START`: `N`, or `FIRST-LAST`.
fn parse_start(word: &str) -> Option<(u64, u64)> {
    match word.split_once('-') {
        Some((first, last)) => Some((first.parse().ok()?, last.parse().ok()?)),
        None => word.parse().ok().map(|n| (n, n)),
    }
}

/// True when the group is still the one the journal recorded: its leader has the recorded
/// start time, or the leader is gone and members are left (a pid still in use as a group
/// id is never given to a new process).
fn still_there(r: &Recorded) -> bool {
    match start_time(r.pgid) {
        Some(start) => (r.start.0..=r.start.1).contains(&start) && unix::group_alive(r.pgid),
        None => unix::group_alive(r.pgid),
    }
}

/// Ends the groups left alive by crashed runs whose journals are in `dir`: SIGTERM, up to
/// `grace` for them to exit, then SIGKILL, and only then removes the journals. Returns one
/// warning per crashed run that left groups behind, naming them.
pub(crate) fn end_orphans(dir: &Path, grace: Duration) -> Vec<String> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut warnings = Vec::new();
    let mut orphans: Vec<Recorded> = Vec::new();
    // The journals taken, locked until their groups are gone: a run killed meanwhile (a
    // cron job's `timeout`, systemd's stop) leaves them to the next one.
    let mut taken: Vec<(PathBuf, File)> = Vec::new();
    for e in entries.flatten() {
        let name = e.file_name();
        let Some(file_name) = name.to_str().filter(|n| !n.starts_with('.')) else {
            continue;
        };
        let pid = file_name.split('.').next().unwrap_or(file_name);
        let path = e.path();
        let Ok(file) = OpenOptions::new().read(true).write(true).open(&path) else {
            continue;
        };
        // A live run holds the lock of its journal.
        if file.try_lock().is_err() {
            continue;
        }
        let text = fs::read_to_string(&path).unwrap_or_default();
        let left: Vec<Recorded> = parse(&text).into_iter().filter(still_there).collect();
        if left.is_empty() {
            let _ = fs::remove_file(&path);
            continue;
        }
        taken.push((path, file));
        let named: Vec<String> = left
            .iter()
            .map(|r| format!("process group {} (`{}`)", r.pgid, r.command))
            .collect();
        warnings.push(format!(
            "a crashed run (prun pid {pid}) left {} running; ending {}: {}",
            if left.len() == 1 {
                "a job".to_string()
            } else {
                format!("{} jobs", left.len())
            },
            if left.len() == 1 { "it" } else { "them" },
            named.join(", ")
        ));
        orphans.extend(left);
    }
    end_groups(&orphans, grace);
    for (path, _locked) in taken {
        let _ = fs::remove_file(path);
    }
    warnings
}

/// SIGTERM to every group, up to `grace` for them to exit, then SIGKILL to those left
/// and up to `grace` again for them to be gone: a killed process exits only once the
/// kernel schedules it, and the run must not start its own jobs beside it.
fn end_groups(groups: &[Recorded], grace: Duration) {
    for r in groups {
        unix::term_group(r.pgid);
    }
    wait_gone(groups, grace);
    for r in groups {
        unix::kill_group(r.pgid);
    }
    wait_gone(groups, grace);
}

/// Waits until no process of `groups` is alive, or `limit` passed.
fn wait_gone(groups: &[Recorded], limit: Duration) {
    let deadline = Instant::now() + limit;
    while groups.iter().any(|r| unix::group_alive(r.pgid)) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_gone_line_is_written_with_the_next_start_or_when_asked() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("journal");
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .expect("journal file");
        let mut w = Writer {
            file,
            live: HashMap::new(),
            lines: 0,
            gone: String::new(),
        };
        let read = || fs::read_to_string(&path).expect("read the journal");
        let start = |w: &mut Writer, pgid: i32| {
            let line = format!("+ {pgid} 5 true\n");
            w.live.insert(pgid, line.clone());
            w.append(&line);
        };
        start(&mut w, 100);
        w.gone(100);
        assert_eq!(read(), "+ 100 5 true\n", "held back");
        start(&mut w, 200);
        assert_eq!(read(), "+ 100 5 true\n- 100\n+ 200 5 true\n");
        w.gone(200);
        w.gone(300);
        w.write_gone();
        assert_eq!(read(), "+ 100 5 true\n- 100\n+ 200 5 true\n- 200\n");
        assert!(parse(&read()).is_empty(), "nothing left running");
    }

    #[test]
    fn parse_keeps_the_groups_not_recorded_as_gone() {
        let text = "+ 100 5 sleep 1000\n+ 200 6 sh -c 'a b'\n- 100\n+ 300 7-9 x\n- 1\n";
        let got = parse(text);
        assert_eq!(
            got,
            vec![
                Recorded {
                    pgid: 200,
                    start: (6, 6),
                    command: "sh -c 'a b'".into()
                },
                Recorded {
                    pgid: 300,
                    start: (7, 9),
                    command: "x".into()
                },
            ]
        );
    }

    #[test]
    fn start_time_is_field_22_even_after_a_name_with_parentheses() {
        let fields: Vec<String> = (3..=52).map(|f| f.to_string()).collect();
        let line = format!("42 (a) b (c) {}\n", fields.join(" "));
        assert_eq!(stat_start_time(line.as_bytes()), Some(22));
        assert_eq!(stat_start_time(b"42 (a) S 1 2\n"), None);
    }

    #[test]
    fn a_child_started_between_two_readings_of_the_boot_clock_has_a_start_time_between_them() {
        for _ in 0..50 {
            let first = unix::boot_ticks().expect("CLOCK_BOOTTIME");
            let mut child = std::process::Command::new("sleep")
                .arg("5")
                .spawn()
                .expect("spawn sleep");
            let last = unix::boot_ticks().expect("CLOCK_BOOTTIME");
            let start = start_time(child.id() as i32);
            let _ = child.kill();
            let _ = child.wait();
            let start = start.expect("the child's start time");
            assert!(
                (first..=last).contains(&start),
                "{start} not in {first}..={last}"
            );
        }
    }

    #[test]
    fn start_time_reads_this_process() {
        let me = std::process::id() as i32;
        assert!(start_time(me).is_some_and(|t| t > 0));
        assert_eq!(start_time(me), start_time(me));
    }
}

//! The process groups a crashed run left running, and how the next run ends them.
//!
//! While a run lasts, every process group it starts is recorded in a journal,
//! `<state>/groups/<prun pid>`: a `+ PGID START gGRACE COMMAND` line when the group starts
//! (`START` is the leader's start time as `/proc/<pid>/stat` gives it, so that a reused
//! pid is never mistaken for it: a number, or `FIRST-LAST` when it is known to lie between
//! two ticks of the boot-time clock read around the spawn, as the initial time namespace
//! sees them: see [`boot_offset`]; `GRACE` is its kill grace in milliseconds, which the
//! next run gives it too) and a `- PGID` line when it is gone. The run holds an `flock` on
//! its journal and removes it when it ends. When prun is killed (`kill -9`, the OOM
//! killer), the kernel releases the lock but the journal stays: the next run of the script
//! takes the lock of every journal it finds, ends the groups of it that are still alive
//! (SIGTERM, the grace its run gave it, SIGKILL) with a warning naming them, and removes it, all
//! before it starts anything of its own.
//!
//! The journal also records the temporary directories the script makes (`tempdir()`): a
//! `D DEV:INO PATH` line when one is made and a `d DEV:INO` line when its cleanup removed
//! it. The next run removes, after ending the groups (a server may still run in one), each
//! recorded directory that is still the one the crashed run made (see [`remove_left_dir`]).
//!
//! And it records the run's procs ([`ProcJournal`]): a `P MILLIS CYCLE NAME LOG` line when
//! a proc starts (the time since the Unix epoch in milliseconds, its watch cycle, its name
//! and its log's path, each word escaped)
//! and a `p NAME` line when it ends, under an `O START` line naming the prun process
//! (its start time in `/proc`). The next run hands the procs a crashed run was running
//! to the task DB ([`CrashedRun`]), which records them as `DIED` rows of that run: a
//! proc's history row is otherwise written only when it ends.

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::unix;
use crate::procfs::start_time;
use crate::store::ProcRecord;

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
    /// The `O` line that names the run's prun, first in the file.
    head: String,
    live: HashMap<i32, String>,
    /// The `P` lines of the procs of this journal's run that are running, by name.
    procs: HashMap<String, String>,
    /// The `D` lines of the temporary directories not removed yet.
    dirs: HashMap<DirKey, String>,
    lines: usize,
    /// `- PGID` lines not written yet: they go out with the next `+` line, in the same
    /// write (see [`ended`]).
    gone: String,
    /// Why a write first failed (a full file system): the groups started since may be
    /// missing from the file, and a crash would leave them running.
    failed: Option<String>,
}

impl Writer {
    /// Appends a `+` (or `D`) line, after the `-` lines held back.
    fn append(&mut self, line: &str) {
        self.lines += 1;
        if self.lines > 2 * self.kept_lines() + COMPACT_SLACK {
            self.compact();
        } else if self.gone.is_empty() {
            self.write(line);
        } else {
            self.gone.push_str(line);
            write(&mut self.file, &mut self.failed, &self.gone);
            self.gone.clear();
        }
    }

    /// Writes `text` at the end of the file.
    fn write(&mut self, text: &str) {
        write(&mut self.file, &mut self.failed, text);
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
            write(&mut self.file, &mut self.failed, &self.gone);
            self.gone.clear();
        }
    }

    /// How many lines a compacted journal holds.
    fn kept_lines(&self) -> usize {
        1 + self.live.len() + self.dirs.len() + self.procs.len()
    }

    /// Rewrites the journal with the live groups only (the file is opened for appending,
    /// so writes after the truncation start at its beginning).
    fn compact(&mut self) {
        let text: String = std::iter::once(&self.head)
            .chain(self.live.values())
            .chain(self.dirs.values())
            .chain(self.procs.values())
            .map(String::as_str)
            .collect();
        self.lines = self.kept_lines();
        self.gone.clear();
        match self.file.set_len(0) {
            Ok(()) => self.write(&text),
            Err(e) => {
                self.failed.get_or_insert_with(|| e.to_string());
            }
        }
    }
}

/// Writes `text` at the end of `file`, keeping in `failed` why the first write that
/// failed did.
fn write(file: &mut File, failed: &mut Option<String>, text: &str) {
    if let Err(e) = file.write_all(text.as_bytes()) {
        failed.get_or_insert_with(|| e.to_string());
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
    /// process), locked, and records every group started from now on in it. `dir` exists:
    /// the run made it private before it looked for crashed runs' journals there.
    /// The file is made under a hidden name and renamed once locked, so that a run
    /// looking for crashed journals never takes a live run's journal for one.
    pub(crate) fn start(dir: &Path) -> io::Result<Journal> {
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
        let head = format!(
            "O {}\n",
            i32::try_from(pid)
                .ok()
                .and_then(start_time)
                .map_or_else(String::new, |s| s.to_string())
        );
        (&file).write_all(head.as_bytes())?;
        fs::rename(&hidden, &path)?;
        let writer = Writer {
            file,
            head,
            live: HashMap::new(),
            procs: HashMap::new(),
            dirs: HashMap::new(),
            lines: 1,
            gone: String::new(),
            failed: None,
        };
        journals().push((id, writer));
        Ok(Journal { path, id })
    }

    /// Why writing the journal first failed during the run, if it did (a full file
    /// system), as a warning: from then on, a crash would have left some of the run's
    /// process groups running.
    pub(crate) fn write_failure(&self) -> Option<String> {
        let journals = journals();
        let (_, w) = journals.iter().find(|(id, _)| *id == self.id)?;
        w.failed.as_ref().map(|why| {
            format!(
                "failed to write the crash journal {}: {why} (from then on, a crash of prun would have left some of its jobs running)",
                crate::paths::shown(&self.path)
            )
        })
    }

    /// What records this run's procs in its journal.
    pub(crate) fn procs(&self) -> ProcJournal {
        ProcJournal { id: self.id }
    }
}

/// Records a run's procs in its journal (not in the other journals of the process: the
/// next run records them as its run's, see [`CrashedRun`]).
#[derive(Debug, Clone, Copy)]
pub(crate) struct ProcJournal {
    id: u64,
}

impl ProcJournal {
    /// Records that proc `name`, logging to `log`, starts now, in watch cycle `cycle`.
    /// `held` holds the line back until the next write (a command body's, whose group is
    /// recorded at once after it, in the same write: no write of its own); otherwise it is
    /// written at once.
    pub(crate) fn started(&self, name: &str, cycle: u32, log: &Path, held: bool) {
        use std::fmt::Write as _;
        use std::os::unix::ffi::OsStrExt;
        let millis = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis());
        let log = log.as_os_str().as_bytes();
        let mut line = String::with_capacity(32 + name.len() + log.len());
        let _ = write!(line, "P {millis} {cycle} ");
        escape_word(&mut line, name.as_bytes());
        line.push(' ');
        escape_word(&mut line, log);
        line.push('\n');
        let mut journals = journals();
        let Some((_, w)) = journals.iter_mut().find(|(id, _)| *id == self.id) else {
            return;
        };
        if held {
            w.lines += 1;
            w.gone.push_str(&line);
        } else {
            w.append(&line);
        }
        w.procs.insert(name.to_string(), line);
    }

    /// Records that proc `name` ended (or one attempt of it did); the line waits for the
    /// next write, as a group's end does (see [`ended`]).
    pub(crate) fn ended(&self, name: &str) {
        let mut journals = journals();
        let Some((_, w)) = journals.iter_mut().find(|(id, _)| *id == self.id) else {
            return;
        };
        if w.procs.remove(name).is_some() {
            w.lines += 1;
            w.gone.push_str("p ");
            escape_word(&mut w.gone, name.as_bytes());
            w.gone.push('\n');
        }
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
/// while the leader is still in `execve` waits for the exec to finish). `grace` is the
/// time its run gives it between SIGTERM and SIGKILL.
pub(crate) fn started(
    pgid: i32,
    since: Option<u64>,
    command: &dyn std::fmt::Display,
    grace: Duration,
) {
    let mut journals = journals();
    if journals.is_empty() {
        return;
    }
    let start = match (since, unix::boot_ticks()) {
        (Some(first), Some(last))
            if first <= last && boot_clock_is_proc_clock(pgid, first, last) =>
        {
            journal_start(first, last)
        }
        _ => start_or_zero(pgid),
    };
    let mut line = format!("+ {pgid} {start} g{} ", grace.as_millis());
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

/// The `START` of a journal line for a leader started between the ticks `first` and
/// `last` of this process's boot-time clock: as the initial time namespace sees them (see
/// [`boot_offset`]), `N` or `FIRST-LAST`.
fn journal_start(first: u64, last: u64) -> String {
    let offset = boot_offset();
    let first = first.saturating_sub_signed(offset.ticks + i64::from(offset.part));
    let last = last.saturating_sub_signed(offset.ticks);
    if first == last {
        first.to_string()
    } else {
        format!("{first}-{last}")
    }
}

/// The `START` of the leader `pgid` as `/proc` gives it (see [`journal_start`]); `0`
/// when it is gone (a group whose leader is gone is recognised by its members).
fn start_or_zero(pgid: i32) -> String {
    match start_time(pgid) {
        Some(start) => journal_start(start, start),
        None => "0".into(),
    }
}

/// The boot-time offset of this process's time namespace (`unshare --time --boottime N`),
/// by which every start time in `/proc` and the boot-time clock it reads are ahead of
/// those of the initial namespace: whole clock ticks, and whether there is a part of a
/// tick more (the kernel rounds the shifted time down, so a time less the whole ticks is
/// the initial namespace's, or one tick more). None outside a time namespace, or on a
/// kernel without them. The journal records start times less it, and a run compares
/// start times less its own, so that runs in different time namespaces recognise each
/// other's groups.
fn boot_offset() -> BootOffset {
    static OFFSET: std::sync::OnceLock<BootOffset> = std::sync::OnceLock::new();
    *OFFSET.get_or_init(|| {
        use nix::unistd::{SysconfVar, sysconf};
        let hz = sysconf(SysconfVar::CLK_TCK).ok().flatten().unwrap_or(100);
        crate::procfs::read_small("/proc/self/timens_offsets")
            .ok()
            .and_then(|text| parse_boot_offset(&text, hz))
            .unwrap_or_default()
    })
}

/// A boot-time offset in clock ticks (see [`boot_offset`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct BootOffset {
    /// The whole ticks, rounded down.
    ticks: i64,
    /// Whether there is a part of a tick more.
    part: bool,
}

/// The `boottime SECS NSECS` line of `/proc/<pid>/timens_offsets`, in ticks of `hz`.
fn parse_boot_offset(text: &str, hz: i64) -> Option<BootOffset> {
    let line = text.lines().find(|l| l.starts_with("boottime"))?;
    let mut words = line.split_whitespace().skip(1);
    let secs: i64 = words.next()?.parse().ok()?;
    let nanos: i64 = words.next()?.parse().ok()?;
    let total = i128::from(secs) * 1_000_000_000 + i128::from(nanos);
    let per_tick = 1_000_000_000 / i128::from(hz.max(1));
    Some(BootOffset {
        ticks: i64::try_from(total.div_euclid(per_tick)).ok()?,
        part: total.rem_euclid(per_tick) != 0,
    })
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
/// One adopted less than [`ADOPTED_EVERY`] before the crash is missed. Those that exited
/// are reaped (see [`unix::reap_exited_orphans`]).
///
/// Started by a run once it has lasted [`ADOPTED_EVERY`] (see [`watch_adopted_later`]),
/// when the thread's first look is due: a shorter run, as most runs of a few commands
/// are, ends what it adopted at its end and costs no thread.
fn watch_adopted() {
    static STARTED: std::sync::Once = std::sync::Once::new();
    STARTED.call_once(|| {
        let _ = std::thread::Builder::new()
            .name("prun-adopted".into())
            .spawn(|| {
                loop {
                    record_adopted();
                    unix::reap_exited_orphans();
                    std::thread::sleep(ADOPTED_EVERY);
                }
            });
    });
}

/// Starts [`watch_adopted`]'s thread [`ADOPTED_EVERY`] from now, unless the task is
/// dropped first (its run's runtime shut down): spawned by a run that adopts orphans
/// (see [`unix::adopt_orphans`]) on its runtime.
pub(crate) async fn watch_adopted_later() {
    tokio::time::sleep(ADOPTED_EVERY).await;
    watch_adopted();
}

/// Records in the journals the group of each child of prun that is in no recorded group:
/// one prun adopted (or one just started, whose group is about to be recorded anyway).
fn record_adopted() {
    if journals().is_empty() {
        return;
    }
    // prun's own group, which a process may join (`setpgid`), is never recorded: the run
    // after a crash may be in it (started by the same script), and would end itself.
    let own = nix::unistd::getpgrp().as_raw();
    let groups: Vec<(i32, i32)> = {
        // A child being started is not one that escaped its command.
        let _alone = crate::sigchld::none_starting();
        unix::children()
            .into_iter()
            .filter_map(|pid| Some((pid, unix::group_of(pid)?)))
            .filter(|&(_, pgid)| pgid != own)
            .collect()
    };
    let mut journals = journals();
    for (pid, pgid) in groups {
        if journals.iter().all(|(_, w)| w.live.contains_key(&pgid)) {
            continue;
        }
        // A group whose leader is gone has no start time: a pid still in use as a group
        // id is never given to a new process.
        let start = start_or_zero(pgid);
        let grace = super::KILL_GRACE.as_millis();
        let line = format!("+ {pgid} {start} g{grace} {}\n", command_of(pid));
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

/// A directory as the file system knows it: a path a hostile user emptied and refilled
/// between a crash and the next run holds another one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct DirKey {
    dev: u64,
    ino: u64,
}

impl std::fmt::Display for DirKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.dev, self.ino)
    }
}

impl DirKey {
    /// `DEV:INO`, as [`DirKey`]'s `Display` writes it.
    fn parse(word: &str) -> Option<DirKey> {
        let (dev, ino) = word.split_once(':')?;
        Some(DirKey {
            dev: dev.parse().ok()?,
            ino: ino.parse().ok()?,
        })
    }

    /// The directory `meta` describes (from `lstat`).
    fn of(meta: &fs::Metadata) -> DirKey {
        use std::os::unix::fs::MetadataExt;
        DirKey {
            dev: meta.dev(),
            ino: meta.ino(),
        }
    }
}

/// Records a temporary directory the script just made, so that the next run removes it
/// if prun crashes before its cleanup does. Returns what [`dir_removed`] takes, or `None`
/// when the directory cannot be examined.
pub(crate) fn dir_made(path: &Path) -> Option<DirKey> {
    let path = std::path::absolute(path).ok()?;
    let key = DirKey::of(&fs::symlink_metadata(&path).ok()?);
    let line = format!("D {key} {}\n", escape_path(&path));
    for (_, w) in journals().iter_mut() {
        w.dirs.insert(key, line.clone());
        w.append(&line);
    }
    Some(key)
}

/// Records that the cleanup removed a directory [`dir_made`] recorded.
pub(crate) fn dir_removed(key: DirKey) {
    use std::fmt::Write as _;
    for (_, w) in journals().iter_mut() {
        if w.dirs.remove(&key).is_some() {
            w.lines += 1;
            let _ = writeln!(w.gone, "d {key}");
            w.write_gone();
        }
    }
}

/// A path on one line: bytes other than printable ASCII and space as `\xHH`, `\` doubled.
fn escape_path(path: &Path) -> String {
    use std::fmt::Write as _;
    use std::os::unix::ffi::OsStrExt;
    let mut text = String::new();
    for &b in path.as_os_str().as_bytes() {
        match b {
            b'\\' => text.push_str("\\\\"),
            b' ' | b'!'..=b'~' => text.push(char::from(b)),
            _ => {
                let _ = write!(text, "\\x{b:02x}");
            }
        }
    }
    text
}

/// Appends `bytes` to `out` as one word: as [`escape_path`] writes them, a space too as
/// `\x20`.
fn escape_word(out: &mut String, bytes: &[u8]) {
    use std::fmt::Write as _;
    // Most names and paths have nothing to escape: copied whole.
    if let Ok(plain) = std::str::from_utf8(bytes)
        && !plain.bytes().any(|b| b == b'\\' || !b.is_ascii_graphic())
    {
        out.push_str(plain);
        return;
    }
    for &b in bytes {
        match b {
            b'\\' => out.push_str("\\\\"),
            b'!'..=b'~' => out.push(char::from(b)),
            _ => {
                let _ = write!(out, "\\x{b:02x}");
            }
        }
    }
}

/// The path [`escape_path`] (or [`escape_word`]) wrote, or `None` when the text is not
/// one it writes.
fn unescape_path(text: &str) -> Option<PathBuf> {
    use std::os::unix::ffi::OsStringExt;
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' if bytes.get(i + 1) == Some(&b'\\') => {
                out.push(b'\\');
                i += 2;
            }
            b'\\' if bytes.get(i + 1) == Some(&b'x') => {
                let hex = std::str::from_utf8(bytes.get(i + 2..i + 4)?).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 4;
            }
            b'\\' => return None,
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    Some(PathBuf::from(std::ffi::OsString::from_vec(out)))
}

/// A group recorded in a crashed run's journal.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Recorded {
    pgid: i32,
    /// The first and the last tick the leader's start time can be.
    start: (u64, u64),
    /// Its kill grace, as its run gave it (none in a journal of an older prun).
    grace: Option<Duration>,
    command: String,
}

/// A temporary directory recorded in a crashed run's journal.
#[derive(Debug, Clone, PartialEq, Eq)]
struct RecordedDir {
    key: DirKey,
    path: PathBuf,
}

/// What a journal records as still there: the groups started and not gone, and the
/// directories made and not removed.
fn parse(text: &str) -> (Vec<Recorded>, Vec<RecordedDir>) {
    let mut live: Vec<Recorded> = Vec::new();
    let mut dirs: Vec<RecordedDir> = Vec::new();
    for line in text.lines() {
        let mut words = line.splitn(5, ' ');
        let kind = words.next();
        if let Some(kind @ ("D" | "d")) = kind {
            let Some(key) = words.next().and_then(DirKey::parse) else {
                continue;
            };
            dirs.retain(|d| d.key != key);
            let rest = line.splitn(3, ' ').nth(2);
            if let Some(path) = rest.filter(|_| kind == "D").and_then(unescape_path) {
                dirs.push(RecordedDir { key, path });
            }
            continue;
        }
        let pgid = words.next().and_then(|p| p.parse().ok());
        let Some(pgid) = pgid.filter(|&p: &i32| p > 1) else {
            continue;
        };
        live.retain(|r| r.pgid != pgid);
        if kind == Some("+") {
            let start = words.next().and_then(parse_start).unwrap_or((0, 0));
            let (grace, command) = match (words.next(), words.next()) {
                (Some(g), rest) if parse_grace(g).is_some() => {
                    (parse_grace(g), rest.unwrap_or("").to_string())
                }
                (first, rest) => (
                    None,
                    [first, rest]
                        .into_iter()
                        .flatten()
                        .collect::<Vec<_>>()
                        .join(" "),
                ),
            };
            live.push(Recorded {
                pgid,
                start,
                grace,
                command,
            });
        }
    }
    (live, dirs)
}

/// A journal's `gGRACE`: the kill grace in milliseconds (more than a `u64` holds, from a
/// grace as long as a `Duration`, is the longest one).
fn parse_grace(word: &str) -> Option<Duration> {
    let ms = word.strip_prefix('g')?;
    if ms.is_empty() || !ms.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(Duration::from_millis(ms.parse().unwrap_or(u64::MAX)))
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
/// id is never given to a new process). Never this process's own group (see
/// `record_adopted`).
fn still_there(r: &Recorded) -> bool {
    if r.pgid == nix::unistd::getpgrp().as_raw() {
        return false;
    }
    match start_time(r.pgid) {
        Some(start) => r.started_at(start) && alive(r),
        None => unix::group_alive(r.pgid),
    }
}

impl Recorded {
    /// Whether a process whose start time in `/proc` (as this process sees it) is
    /// `start` may be the recorded leader: `start` less this process's boot-time offset
    /// is within the recorded ticks (see [`boot_offset`]).
    fn started_at(&self, start: u64) -> bool {
        let offset = boot_offset();
        let (first, last) = self.start;
        let last = last.saturating_add(u64::from(offset.part));
        (first..=last).contains(&start.saturating_sub_signed(offset.ticks))
    }
}

/// Whether a recorded group, or its leader outside it, is alive.
fn alive(r: &Recorded) -> bool {
    unix::group_alive(r.pgid) || leader_left(r)
}

/// Whether the group's recorded leader (with its recorded start time, not a process that
/// got its pid since) runs in another group: it moved (`setpgid`), and the group's
/// signals no longer reach it.
fn leader_left(r: &Recorded) -> bool {
    start_time(r.pgid).is_some_and(|start| r.started_at(start))
        && unix::group_of(r.pgid).is_some_and(|g| g != r.pgid)
}

/// A crashed run's journal, taken: locked until its groups are gone and its directories
/// removed, so that a run killed meanwhile (a cron job's `timeout`, systemd's stop) leaves
/// them to the next one.
struct Taken {
    path: PathBuf,
    _locked: File,
    pid: String,
    dirs: Vec<RecordedDir>,
}

/// Ends the groups left alive by crashed runs whose journals are in `dir` (SIGTERM, up to
/// the kill grace their run gave them for them to exit, then SIGKILL; `default_grace` for
/// a group an older prun recorded without one, and for a process that left its group),
/// then removes the temporary directories they
/// recorded, and only then removes the journals. Each crashed run that left groups is
/// warned of before they are ended, naming them; what then differs (a group that needed
/// SIGKILL or outlived it) and each directory removed or refused is warned of after.
///
/// Returns the crashed runs that were running procs, for the task DB to record them.
pub(crate) fn end_orphans(
    dir: &Path,
    default_grace: Duration,
    warn: &mut dyn FnMut(String),
) -> Vec<CrashedRun> {
    let mut crashed = Vec::new();
    let Ok(entries) = fs::read_dir(dir) else {
        return crashed;
    };
    let mut orphans: Vec<Recorded> = Vec::new();
    let mut taken: Vec<Taken> = Vec::new();
    for e in entries.flatten() {
        let name = e.file_name();
        if let Some(hidden) = name.to_str().and_then(|n| n.strip_prefix('.')) {
            remove_unfinished(&e.path(), hidden);
            continue;
        }
        let Some(file_name) = name.to_str() else {
            continue;
        };
        let pid = file_name.split('.').next().unwrap_or(file_name).to_string();
        let path = e.path();
        let Ok(file) = OpenOptions::new().read(true).write(true).open(&path) else {
            continue;
        };
        // A live run holds the lock of its journal.
        if file.try_lock().is_err() {
            continue;
        }
        // Read whatever it holds: a line a full disk cut inside a character is no reason
        // to forget the groups of the lines before it. One that cannot be read is left
        // for the next run, not removed as if it named nothing.
        let Ok(bytes) = fs::read(&path) else {
            continue;
        };
        let text = String::from_utf8_lossy(&bytes);
        if let Some(run) = crashed_run(&pid, &text) {
            crashed.push(run);
        }
        let (groups, dirs) = parse(&text);
        let left: Vec<Recorded> = groups.into_iter().filter(still_there).collect();
        if left.is_empty() && dirs.is_empty() {
            let _ = fs::remove_file(&path);
            continue;
        }
        if !left.is_empty() {
            warn(format!(
                "a crashed run (prun pid {pid}) left {} running; ending {}: {}",
                if left.len() == 1 {
                    "a job".to_string()
                } else {
                    format!("{} jobs", left.len())
                },
                if left.len() == 1 { "it" } else { "them" },
                named(&left)
            ));
        }
        orphans.extend(left);
        taken.push(Taken {
            path,
            _locked: file,
            pid,
            dirs,
        });
    }
    let escaped = escaped_from(&orphans);
    if !escaped.is_empty() {
        warn(format!(
            "the crashed run's jobs started {} that left their groups; ending {} too: {}",
            if escaped.len() == 1 {
                "a process".to_string()
            } else {
                format!("{} processes", escaped.len())
            },
            if escaped.len() == 1 { "it" } else { "them" },
            named(&escaped)
        ));
    }
    orphans.extend(escaped);
    end_groups(&orphans, default_grace, warn);
    let mut seen = std::collections::HashSet::new();
    for t in taken {
        for d in t.dirs.iter().filter(|d| seen.insert(d.key)) {
            let shown = crate::shown::path(&d.path);
            match remove_left_dir(d) {
                Ok(true) => warn(format!(
                    "removed the temporary directory {shown} that a crashed run (prun pid {}) left",
                    t.pid
                )),
                Ok(false) => {}
                Err(why) => warn(format!(
                    "a crashed run (prun pid {}) left the temporary directory {shown}; not removing it: {why}",
                    t.pid
                )),
            }
        }
        let _ = fs::remove_file(&t.path);
    }
    crashed
}

/// Removes `path`, the hidden name (`.PID.new`, `.PID.N.new`; `hidden` is the name
/// without its dot) under which [`Journal::start`] makes a journal, when the prun that
/// made it is gone and holds no lock on it: it died (`kill -9`, or a signal before it
/// handled signals) before it gave the journal its name. Such a file names no group (a
/// journal records groups only once named), and no later run would remove it.
fn remove_unfinished(path: &Path, hidden: &str) {
    let Some(pid) = hidden
        .strip_suffix(".new")
        .and_then(|n| n.split('.').next())
        .and_then(|p| p.parse::<i32>().ok())
    else {
        return;
    };
    if start_time(pid).is_some() || !fs::symlink_metadata(path).is_ok_and(|m| m.is_file()) {
        return;
    }
    let Ok(file) = File::open(path) else {
        return;
    };
    if file.try_lock().is_ok() {
        let _ = fs::remove_file(path);
    }
}

/// A run that crashed, as its journal tells it: its prun, and the procs it was running
/// (the `DIED` rows its history gets: see the module's comment).
#[derive(Debug)]
pub(crate) struct CrashedRun {
    /// The prun process's pid.
    pub pid: i32,
    /// Its start time in `/proc` (field 22 of its `stat`), when the journal tells it.
    pub start: Option<u64>,
    pub procs: Vec<ProcRecord>,
}

/// What a proc running when its prun died gets as its error.
const DIED_ERROR: &str = "prun died while it ran (kill -9, the OOM killer, a power loss): \
                          its end and exit status are not known";

/// The crashed run whose journal, of prun pid `pid`, holds `text`; `None` when it was
/// running no proc.
fn crashed_run(pid: &str, text: &str) -> Option<CrashedRun> {
    let pid = pid.parse().ok()?;
    let start = text
        .lines()
        .find_map(|l| l.strip_prefix("O "))
        .and_then(|w| w.parse().ok());
    let procs = died_procs(text);
    (!procs.is_empty()).then_some(CrashedRun { pid, start, procs })
}

/// The procs a crashed run's journal names as running when its prun died: rows of state
/// `DIED`, with the error that says so.
pub(crate) fn died_procs(text: &str) -> Vec<ProcRecord> {
    running_procs(text, "DIED")
        .into_iter()
        .map(|p| ProcRecord {
            error: Some(DIED_ERROR.into()),
            ..p
        })
        .collect()
}

/// The procs a journal's text names as running (started, not ended), as rows of state
/// `state` with their start, cycle and log (when the log is there). `prun report` reads a
/// live or dead run's journal with it to show the procs that have no row yet.
pub(crate) fn running_procs(text: &str, state: &str) -> Vec<ProcRecord> {
    running(text)
        .into_iter()
        .map(|(name, millis, cycle, log)| {
            let at = std::time::UNIX_EPOCH + Duration::from_millis(millis);
            ProcRecord {
                name,
                state: state.into(),
                started: Some(humantime::format_rfc3339_millis(at).to_string()),
                log: fs::symlink_metadata(&log)
                    .is_ok()
                    .then(|| log.display().to_string()),
                cycle: Some(cycle),
                ..ProcRecord::default()
            }
        })
        .collect()
}

/// The procs a journal's text names as running, each with the log it writes (which a
/// command body that printed nothing yet may not have made): `prun log --follow` follows
/// one while it runs.
pub(crate) fn running_logs(text: &str) -> Vec<(String, PathBuf)> {
    running(text)
        .into_iter()
        .map(|(name, _, _, log)| (name, log))
        .collect()
}

/// The procs a journal's text names as running: name, start (milliseconds since the
/// epoch), watch cycle and log.
fn running(text: &str) -> Vec<(String, u64, u32, PathBuf)> {
    let mut running: Vec<(String, u64, u32, PathBuf)> = Vec::new();
    for line in text.lines() {
        let mut words = line.split(' ');
        match words.next() {
            Some("P") => {
                let millis = words.next().and_then(|w| w.parse().ok());
                let cycle = words.next().and_then(|w| w.parse().ok());
                let name = words.next().and_then(unescape_name);
                let log = words.next().and_then(unescape_path);
                if let (Some(millis), Some(cycle), Some(name), Some(log)) =
                    (millis, cycle, name, log)
                {
                    running.retain(|r| r.0 != name);
                    running.push((name, millis, cycle, log));
                }
            }
            Some("p") => {
                if let Some(name) = words.next().and_then(unescape_name) {
                    running.retain(|r| r.0 != name);
                }
            }
            _ => {}
        }
    }
    running
}

/// A proc's name as [`escape_word`] wrote it.
fn unescape_name(word: &str) -> Option<String> {
    unescape_path(word)?.into_os_string().into_string().ok()
}

/// The groups led by descendants of `groups`' processes outside them (see
/// [`unix::escaped_leaders`]), as if recorded: a `setsid` daemon whose parent still ran
/// when prun crashed was not prun's to adopt, so no journal names it.
fn escaped_from(groups: &[Recorded]) -> Vec<Recorded> {
    let pgids: Vec<i32> = groups.iter().map(|r| r.pgid).collect();
    unix::escaped_leaders(&pgids)
        .into_iter()
        .map(|pgid| Recorded {
            pgid,
            start: parse_start(&start_or_zero(pgid)).unwrap_or((0, 0)),
            grace: None,
            command: command_of(pgid),
        })
        .collect()
}

/// The groups as a warning names them.
fn named(groups: &[Recorded]) -> String {
    let named: Vec<String> = groups
        .iter()
        .map(|r| {
            format!(
                "process group {} (`{}`)",
                r.pgid,
                crate::shown::visible(&r.command)
            )
        })
        .collect();
    named.join(", ")
}

/// Removes a directory a crashed run recorded, if it is still the one the run made: a
/// directory (not a symbolic link) at the recorded path, with the recorded device and
/// inode, owned by this user, in a parent directory where nobody else can replace it (owned
/// by root or this user, and writable by nobody else or sticky, as `/tmp` is). Anything
/// else is refused, with the reason: between the crash and this run the directory may have
/// been removed (a reboot, `systemd-tmpfiles`) and something else put at its path. Returns
/// whether it was there to remove. The removal itself never follows a symbolic link.
fn remove_left_dir(d: &RecordedDir) -> Result<bool, Refused> {
    use std::os::unix::fs::MetadataExt;
    let meta = match fs::symlink_metadata(&d.path) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(Refused::Unreadable(e)),
    };
    let me = nix::unistd::geteuid().as_raw();
    if meta.file_type().is_symlink() {
        return Err(Refused::Symlink);
    }
    if !meta.is_dir() {
        return Err(Refused::NotDir);
    }
    if meta.uid() != me {
        return Err(Refused::Owner(meta.uid(), me));
    }
    if DirKey::of(&meta) != d.key {
        return Err(Refused::Another);
    }
    let parent = d.path.parent().unwrap_or(Path::new("/"));
    let pmeta = fs::metadata(parent).map_err(|error| Refused::Parent {
        parent: parent.into(),
        error,
    })?;
    if pmeta.uid() != 0 && pmeta.uid() != me {
        return Err(Refused::ParentOwner {
            parent: parent.into(),
            uid: pmeta.uid(),
        });
    }
    if pmeta.mode() & 0o022 != 0 && pmeta.mode() & 0o1000 == 0 {
        return Err(Refused::ParentOpen(parent.into()));
    }
    remove_private_dir(&d.path).map_err(Refused::Remove)?;
    Ok(true)
}

/// Removes the directory `path` (a `tempdir()`: the user's, mode 0700, so no other user
/// can change what is inside) and everything under it, as its owner may: directories its
/// commands left without write or search permission (Go's read-only module cache, a
/// `chmod 000`) get them back first. No symbolic link is followed.
pub(crate) fn remove_private_dir(path: &Path) -> io::Result<()> {
    match fs::remove_dir_all(path) {
        Err(e) if e.kind() == io::ErrorKind::PermissionDenied => {
            open_up(path);
            fs::remove_dir_all(path)
        }
        r => r,
    }
}

/// Gives the user's own directories at and under `top` read, write and search permission.
fn open_up(top: &Path) {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let me = nix::unistd::geteuid().as_raw();
    let mut dirs = vec![top.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        let Ok(meta) = fs::symlink_metadata(&dir) else {
            continue;
        };
        if !meta.is_dir() || meta.uid() != me {
            continue;
        }
        if meta.mode() & 0o700 != 0o700 {
            let mode = fs::Permissions::from_mode(meta.mode() & 0o7777 | 0o700);
            let _ = fs::set_permissions(&dir, mode);
        }
        if let Ok(entries) = fs::read_dir(&dir) {
            dirs.extend(
                entries
                    .flatten()
                    .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
                    .map(|e| e.path()),
            );
        }
    }
}

/// Why a crashed run's temporary directory is not removed (see [`remove_left_dir`]).
#[derive(Debug, thiserror::Error)]
enum Refused {
    #[error("{0}")]
    Unreadable(io::Error),
    #[error("it is now a symbolic link")]
    Symlink,
    #[error("it is no longer a directory")]
    NotDir,
    #[error("it is owned by uid {0}, not this user (uid {1})")]
    Owner(u32, u32),
    #[error("it is not the directory the crashed run made (another one is there)")]
    Another,
    #[error("{}: {error}", crate::shown::path(parent))]
    Parent { parent: PathBuf, error: io::Error },
    #[error(
        "its parent directory {} is owned by uid {uid}",
        crate::shown::path(parent)
    )]
    ParentOwner { parent: PathBuf, uid: u32 },
    #[error("its parent directory {} can be written by other users and is not sticky", crate::shown::path(.0))]
    ParentOpen(PathBuf),
    #[error("failed to remove it: {0}")]
    Remove(io::Error),
}

/// SIGTERM to every group, then SIGKILL to each one still there once its own grace has
/// passed (see [`Recorded::grace`]; `default` when it has none), and up to `default` more
/// for them to be gone: a killed process exits only once the kernel schedules it, and the
/// run must not start its own jobs beside it. Warns of the groups that needed SIGKILL, and
/// of those still there after it.
fn end_groups(groups: &[Recorded], default: Duration, warn: &mut dyn FnMut(String)) {
    let grace_of = |r: &Recorded| r.grace.unwrap_or(default);
    for r in groups {
        unix::term_group(r.pgid);
        if leader_left(r) {
            unix::term_process(r.pgid);
        }
    }
    let termed = Instant::now();
    let mut graces: Vec<Duration> = groups.iter().map(grace_of).collect();
    graces.sort();
    graces.dedup();
    let mut stubborn: Vec<Recorded> = Vec::new();
    for &grace in &graces {
        let due: Vec<Recorded> = groups
            .iter()
            .filter(|r| grace_of(r) == grace)
            .cloned()
            .collect();
        wait_gone(&due, grace.saturating_sub(termed.elapsed()));
        for r in due.into_iter().filter(alive) {
            unix::kill_group(r.pgid);
            if leader_left(&r) {
                unix::kill_process(r.pgid);
            }
            stubborn.push(r);
        }
    }
    if stubborn.is_empty() {
        return;
    }
    wait_gone(&stubborn, default);
    let (left, killed): (Vec<Recorded>, Vec<Recorded>) = stubborn.into_iter().partition(alive);
    for grace in graces {
        let these: Vec<Recorded> = killed
            .iter()
            .filter(|r| grace_of(r) == grace)
            .cloned()
            .collect();
        if !these.is_empty() {
            warn(format!(
                "of the crashed run's jobs, {} outlived SIGTERM by {} and {} killed (SIGKILL)",
                named(&these),
                humantime::format_duration(grace),
                if these.len() == 1 { "was" } else { "were" }
            ));
        }
    }
    if !left.is_empty() {
        warn(format!(
            "of the crashed run's jobs, {} still {} after SIGKILL",
            named(&left),
            if left.len() == 1 { "runs" } else { "run" }
        ));
    }
}

/// Waits until no process of `groups` is alive, or `limit` passed.
/// A limit past what `Instant` can hold (`kill_grace` may be as long as a `Duration`) is
/// no limit.
fn wait_gone(groups: &[Recorded], limit: Duration) {
    let deadline = Instant::now().checked_add(limit);
    while groups.iter().any(alive) && deadline.is_none_or(|d| Instant::now() < d) {
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_boot_time_offset_is_read_in_whole_ticks_and_a_part() {
        let offset = |text: &str| parse_boot_offset(text, 100);
        let whole = |ticks| Some(BootOffset { ticks, part: false });
        assert_eq!(offset("monotonic 0 0\nboottime 0 0\n"), whole(0));
        assert_eq!(
            offset("monotonic 5 0\nboottime   1000   0\n"),
            whole(100_000)
        );
        assert_eq!(offset("boottime -1 500000000\n"), whole(-50));
        assert_eq!(
            offset("boottime 0 15000000\n"),
            Some(BootOffset {
                ticks: 1,
                part: true
            })
        );
        assert_eq!(
            offset("boottime -1 995000000\n"),
            Some(BootOffset {
                ticks: -1,
                part: true
            })
        );
        assert_eq!(offset("monotonic 0 0\n"), None);
        assert_eq!(offset("boottime x 0\n"), None);
    }

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
            head: String::new(),
            live: HashMap::new(),
            procs: HashMap::new(),
            dirs: HashMap::new(),
            lines: 0,
            gone: String::new(),
            failed: None,
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
        assert!(parse(&read()).0.is_empty(), "nothing left running");
    }

    #[test]
    fn a_crashed_run_s_procs_are_those_started_and_not_ended() {
        let mut text = String::from("O 4242\n+ 100 5 sleep 9\nP 1764547200123 0 ");
        escape_word(&mut text, "a b\\c".as_bytes());
        text.push_str(
            " /l/a\\x20b.log\nP 1764547201000 0 done /l/done.log\nP 1 0 again /l/x\np done\n",
        );
        text.push_str("P 1764547202000 3 again /l/again.log\nP 7 0 bad\np gone\n");
        let run = crashed_run("77", &text).expect("a crashed run");
        assert_eq!((run.pid, run.start), (77, Some(4242)));
        let got: Vec<(&str, Option<&str>, Option<u32>)> = run
            .procs
            .iter()
            .map(|p| (p.name.as_str(), p.started.as_deref(), p.cycle))
            .collect();
        assert_eq!(
            got,
            [
                ("a b\\c", Some("2025-12-01T00:00:00.123Z"), Some(0)),
                ("again", Some("2025-12-01T00:00:02.000Z"), Some(3)),
            ]
        );
        assert!(
            run.procs
                .iter()
                .all(|p| p.state == "DIED" && p.log.is_none())
        );
        assert!(
            crashed_run("77", "O 1\nP 1 0 a /l\np a\n").is_none(),
            "all ended"
        );
    }

    /// A grace as long as a `Duration` (a `kill_grace` may be) is waited without a
    /// deadline: `Instant` cannot hold one, and adding it panicked.
    #[test]
    fn a_grace_longer_than_an_instant_holds_is_no_deadline() {
        wait_gone(&[], Duration::MAX);
    }

    #[test]
    fn parse_keeps_the_groups_not_recorded_as_gone() {
        // Lines of an older prun have no grace; `g5` alone is a command's first word.
        let text = "+ 100 5 g30000 sleep 1000\n+ 200 6 sh -c 'a b'\n- 100\n+ 300 7-9 g2500 x\n- 1\n+ 400 8 g5x y\n+ 500 9 g0 \n+ 600 9 g18446744073709551615000 z\n";
        let (got, dirs) = parse(text);
        assert!(dirs.is_empty());
        assert_eq!(
            got,
            vec![
                Recorded {
                    pgid: 200,
                    start: (6, 6),
                    grace: None,
                    command: "sh -c 'a b'".into()
                },
                Recorded {
                    pgid: 300,
                    start: (7, 9),
                    grace: Some(Duration::from_millis(2500)),
                    command: "x".into()
                },
                Recorded {
                    pgid: 400,
                    start: (8, 8),
                    grace: None,
                    command: "g5x y".into()
                },
                Recorded {
                    pgid: 500,
                    start: (9, 9),
                    grace: Some(Duration::ZERO),
                    command: String::new()
                },
                Recorded {
                    pgid: 600,
                    start: (9, 9),
                    grace: Some(Duration::from_millis(u64::MAX)),
                    command: "z".into()
                },
            ]
        );
    }

    #[test]
    fn parse_keeps_the_directories_not_recorded_as_removed() {
        let odd = Path::new("/tmp/a b\\c\nd\u{e9}");
        let text = format!(
            "D 1:2 /tmp/prun-x\n+ 100 5 sleep 1\nD 1:3 {}\nD 1:4 /tmp/gone\nd 1:2\nd 1:4\nD 7 /bad\n",
            escape_path(odd)
        );
        assert_eq!(
            text.lines().count(),
            7,
            "a path with a newline is on one line"
        );
        let (groups, dirs) = parse(&text);
        assert_eq!(groups.len(), 1);
        assert_eq!(
            dirs,
            vec![RecordedDir {
                key: DirKey { dev: 1, ino: 3 },
                path: odd.to_path_buf()
            }]
        );
    }

    #[test]
    fn a_directory_others_could_swap_is_not_removed_and_one_they_could_not_is() {
        use std::os::unix::fs::PermissionsExt;
        let parent = tempfile::tempdir().expect("tempdir");
        let made = parent.path().join("prun-x");
        fs::create_dir(&made).expect("mkdir");
        fs::write(made.join("data"), "x").expect("write");
        let d = RecordedDir {
            key: DirKey::of(&fs::symlink_metadata(&made).expect("lstat")),
            path: made.clone(),
        };
        let open = |mode| fs::set_permissions(parent.path(), fs::Permissions::from_mode(mode));
        open(0o777).expect("chmod");
        let refused = remove_left_dir(&d).expect_err("a parent anyone can write");
        assert!(matches!(refused, Refused::ParentOpen(_)), "{refused}");
        assert!(made.join("data").exists());
        open(0o1777).expect("chmod");
        assert!(remove_left_dir(&d).expect("a sticky parent, as /tmp"));
        assert!(!made.exists());
        assert!(!remove_left_dir(&d).expect("gone: nothing to do"));
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
}

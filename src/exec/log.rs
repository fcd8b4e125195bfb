//! Per-proc log files: where they live, how they are named, and reading their tail.
//!
//! Each run gets a directory `<log root>/<start time>/`, and each proc a file named after
//! it (with `/` and `%` escaped; a name too long for a file name is cut and followed by a
//! hash of the whole name, so that distinct names keep distinct logs). Command bodies
//! write straight into the file through the child's own descriptors, so prun copies
//! nothing and a log survives a crash of prun.
//!
//! Logs are private (run directories 0700, logs 0600), unless the user let others read the
//! log root and the last run's logs: then a run's directory and logs get the same read
//! permission (see [`shared_read`]).

use std::fs::{self, File, OpenOptions};
use std::io::{self, Seek, SeekFrom, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::SystemTime;

/// The log directory of one run.
#[derive(Debug)]
pub(crate) struct LogDir {
    dir: PathBuf,
    /// Unnamed files that command bodies wrote nothing into, ready for the next one, each
    /// with the length of what it still holds (see [`LogDir::give_back`]).
    spare: Mutex<Vec<Spare>>,
    /// See [`LogDir::kept`].
    kept: Option<usize>,
    /// The log root's [`root_stamp`] once this directory was made in it, when it was
    /// pruned then: another run's directory made or pruned since changes it.
    root_stamp: Option<RootStamp>,
    /// The directory, open and locked (`flock`) while the run lasts: another run that
    /// prunes the log root leaves it alone (see [`idle`]). `None` where it cannot be
    /// locked.
    _held: Option<File>,
}

impl LogDir {
    /// Creates `<root>/<timestamp>/` (mode 0700, as is a missing `root`, whatever the umask;
    /// logs are 0600: they may hold what commands printed about credentials), or with the
    /// read permission the user gave others on `root` and the last run's directory (see
    /// [`shared_read`]).
    pub(crate) fn create(root: &Path) -> io::Result<LogDir> {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(root)?;
        let newest = run_dirs(root).and_then(|mut dirs| dirs.pop());
        LogDir::create_in(root, shared_read(root, newest.as_deref()))
    }

    /// [`LogDir::create`] in an existing `root`, with the read permission `share`.
    fn create_in(root: &Path, share: u32) -> io::Result<LogDir> {
        let mode = 0o700 | share;
        let stamp = stamp();
        // `create_dir` (not `_all`) fails on an existing directory: two runs started in
        // the same millisecond get different directories.
        let mut n = 1;
        loop {
            let dir = numbered(root, &stamp, n);
            match fs::DirBuilder::new().mode(0o700).create(&dir) {
                Ok(()) => {
                    if mode != 0o700 {
                        fs::set_permissions(&dir, fs::Permissions::from_mode(mode))?;
                    }
                    let held = File::open(&dir).ok().filter(|f| f.try_lock().is_ok());
                    return Ok(LogDir::at(dir, held));
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => n += 1,
                Err(e) => return Err(e),
            }
        }
    }

    /// [`LogDir::create`] for a log root that keeps the newest `keep` runs (`keep_runs`; 0:
    /// all), pruning it now rather than at the end of the run ([`prune`]): when `keep` run
    /// directories are there already, those past them go, and the oldest one is emptied
    /// and renamed to this run's name instead of being removed while a new one is made.
    /// Removing a directory frees its block, which on a filesystem mounted with `discard`
    /// waits for the device (0.2 ms on average here, and up to milliseconds: as long as a
    /// short run), while a rename costs microseconds. Only a directory prun made is
    /// reused: a real directory named like a run's, owned by the user and private to them,
    /// in a log root only the user can write to; otherwise a new one is made and the end of
    /// the run prunes as before.
    ///
    /// A directory a run still holds is neither reused nor removed, but counts among the
    /// kept ones: the oldest idle directories go instead. When the root could not be
    /// pruned to `keep` (too many runs going, a directory prun may not reuse), the end of
    /// the run prunes again.
    pub(crate) fn create_reusing(root: &Path, keep: usize) -> io::Result<LogDir> {
        let Some(dirs) = run_dirs(root).filter(|_| keep > 0) else {
            return LogDir::create(root);
        };
        let share = shared_read(root, dirs.last().map(String::as_str));
        let mut excess = (dirs.len() + 1).saturating_sub(keep);
        let mut reused = None;
        for old in &dirs {
            if excess == 0 {
                break;
            }
            let path = root.join(old);
            if reused.is_none() {
                if idle(&path).is_none() {
                    continue;
                }
                match reuse(root, old, share) {
                    Some(dir) => {
                        reused = Some(dir);
                        excess -= 1;
                        continue;
                    }
                    None => break,
                }
            }
            if remove_idle(&path) {
                excess -= 1;
            }
        }
        let mut logs = match reused {
            Some((dir, held)) => LogDir::at(dir, Some(held)),
            None => LogDir::create_in(root, share)?,
        };
        if excess == 0 {
            logs.kept = Some(keep);
            logs.root_stamp = root_stamp(root);
        }
        Ok(logs)
    }

    /// A run directory under `root` that was not made (no directory could be): opening a
    /// log in it fails, naming the log.
    pub(crate) fn unmade(root: &Path) -> LogDir {
        LogDir::at(root.join(stamp()), None)
    }

    fn at(dir: PathBuf, held: Option<File>) -> LogDir {
        LogDir {
            dir,
            spare: Mutex::new(Vec::new()),
            kept: None,
            root_stamp: None,
            _held: held,
        }
    }

    /// The number of runs the log root was pruned to when this directory was made (this
    /// one included), if it was (see [`LogDir::create_reusing`]) and no other run made,
    /// reused or removed a directory in it since: a run that outlasted later ones prunes
    /// at its end what they could not (its own directory, held, counted among theirs).
    pub(crate) fn kept(&self) -> Option<usize> {
        let root = self.dir.parent()?;
        self.kept
            .filter(|_| self.root_stamp.is_some() && self.root_stamp == root_stamp(root))
    }

    /// The directory holding this run's logs.
    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }

    /// An unnamed file in this directory for a command body's output (see
    /// `job::run_command_body`), or `None` where the filesystem has no `O_TMPFILE`.
    pub(crate) fn take_unnamed(&self) -> Option<Spare> {
        if let Some(f) = self.spare.lock().expect("spare logs").pop() {
            return Some(f);
        }
        let file = super::unix::open_unnamed(&self.dir).ok()?;
        let mode = file_mode(&self.dir);
        if mode != 0o600 {
            file.set_permissions(fs::Permissions::from_mode(mode))
                .ok()?;
        }
        Some(Spare { file, stale: None })
    }

    /// Returns an unnamed file that ended up holding nothing worth keeping (`len` bytes of
    /// it), for the next command body: a silent command costs no file at all. It is not
    /// emptied here: its next user cuts what is left beyond its own header's place
    /// ([`Spare::start`]), which costs no truncation when the new header is as long as the
    /// old one, as it is for a run of the same command.
    pub(crate) fn give_back(&self, file: File, len: u64) {
        self.spare.lock().expect("spare logs").push(Spare {
            file,
            stale: Some(len),
        });
    }

    /// Closes the spare unnamed files, when file descriptors run short.
    pub(crate) fn drop_spares(&self) {
        self.spare.lock().expect("spare logs").clear();
    }

    /// The log file of a proc (not created yet).
    pub(crate) fn path_for(&self, proc_name: &str) -> PathBuf {
        self.dir.join(format!("{}.log", escape(proc_name)))
    }
}

/// An unnamed log file (`O_TMPFILE`) for a command body, reused from one silent command
/// to the next.
#[derive(Debug)]
pub(crate) struct Spare {
    file: File,
    /// How many bytes at its start are left from its last user (`None`: a new file).
    stale: Option<u64>,
}

impl Spare {
    /// The file for a command whose header is `head_len` bytes long: at most that long,
    /// its offset after the header's place (where the child's output goes). The place
    /// holds what its last user left there, or nothing, until the header is written into
    /// it; only then is the file given a name.
    pub(crate) fn start(self, head_len: u64) -> io::Result<File> {
        let Spare { mut file, stale } = self;
        if stale.is_some_and(|stale| stale > head_len) {
            file.set_len(head_len)?;
        }
        file.seek(SeekFrom::Start(head_len))?;
        Ok(file)
    }
}

/// The read and search permission (`go+rX`) the user gave group and others on both a log
/// root and its newest run directory (`newest`, its name), for a new run directory: the
/// user let others read the logs (`chmod -R go+rX`), not only made the log root with the
/// umask's mode. None (0) when there is no run directory yet.
fn shared_read(root: &Path, newest: Option<&str>) -> u32 {
    newest.map_or(0, |n| read_by_others(root) & read_by_others(&root.join(n)))
}

/// The read and search permission of group and others on a real directory that belongs to
/// the effective user and that no one else may write; none (0) on anything else.
fn read_by_others(dir: &Path) -> u32 {
    match fs::symlink_metadata(dir) {
        Ok(m)
            if m.is_dir()
                && m.uid() == nix::unistd::geteuid().as_raw()
                && m.mode() & 0o022 == 0 =>
        {
            m.mode() & 0o055
        }
        _ => 0,
    }
}

/// The mode of a log made in the run directory `dir`: 0600, with the read permission
/// `dir` gives others (see [`read_by_others`]).
fn file_mode(dir: &Path) -> u32 {
    0o600 | (read_by_others(dir) & 0o044)
}

/// Removes the oldest run directories under a log root until `keep` are left
/// (`keep_runs`). A directory a run still holds stays, and counts: an older idle one goes
/// in its place, if there is one.
///
/// Only directories prun made are touched: real directories (a symbolic link is never
/// followed, nor removed) named like a run's (see [`is_run_dir`]); anything else a user
/// put under a `log_dir` stays. The names sort by time.
pub(crate) fn prune(root: &Path, keep: usize) {
    let Some(dirs) = run_dirs(root).filter(|d| d.len() > keep) else {
        return;
    };
    let mut excess = dirs.len() - keep;
    for old in &dirs {
        if excess == 0 {
            break;
        }
        if remove_idle(&root.join(old)) {
            excess -= 1;
        }
    }
}

/// What changes when a directory is made, renamed or removed in a log root: its
/// modification time and its link count (one per subdirectory). Both, since the time's
/// granularity may be coarser than two runs starting apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct RootStamp {
    modified: (i64, i64),
    links: u64,
}

fn root_stamp(root: &Path) -> Option<RootStamp> {
    let m = fs::metadata(root).ok()?;
    Some(RootStamp {
        modified: (m.mtime(), m.mtime_nsec()),
        links: m.nlink(),
    })
}

/// The run directory `dir`, open and locked, unless a run that is still going holds its
/// lock (see [`LogDir`]): two runs of a script at once share its log root, and one must
/// not prune the logs the other is writing. A run's lock goes with its process, so the
/// directory of a run that crashed is pruned as usual.
fn idle(dir: &Path) -> Option<File> {
    let f = File::open(dir).ok()?;
    f.try_lock().ok()?;
    Some(f)
}

/// Removes the run directory `dir`, unless a run that is still going holds it; whether
/// it was idle (one that cannot be removed is not tried again in another's place).
fn remove_idle(dir: &Path) -> bool {
    let Some(_held) = idle(dir) else {
        return false;
    };
    let _ = fs::remove_dir_all(dir);
    true
}

/// The names of the run directories under a log root, oldest first.
fn run_dirs(root: &Path) -> Option<Vec<String>> {
    // The entry's type comes with the directory listing (it is not a symbolic link's
    // target): no stat per run directory.
    // Sorted by name, not by path: comparing paths splits them into components at every
    // comparison, which cost more than the rest of a short run's end.
    let mut dirs: Vec<String> = fs::read_dir(root)
        .ok()?
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|name| is_run_dir(name))
        .collect();
    dirs.sort_unstable();
    Some(dirs)
}

/// The run directory `name` under `root`, emptied and renamed to a new run's name, with
/// its lock (see [`idle`]); `None` when it is not one prun made, a run still holds it, or
/// it cannot be reused (one readable by others is not). It gets the read permission
/// `share` (see [`shared_read`]).
fn reuse(root: &Path, name: &str, share: u32) -> Option<(PathBuf, File)> {
    let me = nix::unistd::geteuid().as_raw();
    let mine = |m: &fs::Metadata, open_to_others: u32| {
        m.is_dir() && m.uid() == me && m.mode() & open_to_others == 0
    };
    // Nobody else may add, rename or remove entries where a directory is emptied and
    // renamed: a `log_dir` others can write to keeps to removing and making directories.
    let old = root.join(name);
    if !mine(&fs::metadata(root).ok()?, 0o022) || !mine(&fs::symlink_metadata(&old).ok()?, 0o077) {
        return None;
    }
    let held = idle(&old)?;
    // Emptied before it gets the newest name: `prun log` never finds an old log there.
    for entry in fs::read_dir(&old).ok()? {
        let entry = entry.ok()?;
        let path = entry.path();
        if entry.file_type().ok()?.is_dir() {
            fs::remove_dir_all(&path).ok()?;
        } else {
            fs::remove_file(&path).ok()?;
        }
    }
    let stamp = stamp();
    // Never over another run's directory made in the same millisecond.
    let mut n = 1;
    loop {
        let dir = numbered(root, &stamp, n);
        match rename_noreplace(&old, &dir) {
            Ok(()) => {
                if share != 0 {
                    fs::set_permissions(&dir, fs::Permissions::from_mode(0o700 | share)).ok()?;
                }
                return Some((dir, held));
            }
            Err(nix::errno::Errno::EEXIST) => n += 1,
            // Taken by another run, or a filesystem without `RENAME_NOREPLACE`.
            Err(_) => return None,
        }
    }
}

/// Renames `old` to `new` unless `new` exists (`RENAME_NOREPLACE`).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn rename_noreplace(old: &Path, new: &Path) -> nix::Result<()> {
    use nix::fcntl::{AT_FDCWD, RenameFlags, renameat2};
    renameat2(AT_FDCWD, old, AT_FDCWD, new, RenameFlags::RENAME_NOREPLACE)
}

/// Where `renameat2` is not at hand, nothing is reused: a new run directory is made.
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn rename_noreplace(_old: &Path, _new: &Path) -> nix::Result<()> {
    Err(nix::errno::Errno::ENOSYS)
}

/// A new run directory's name: the time, `2026-11-22T01-45-11.123Z`.
fn stamp() -> String {
    humantime::format_rfc3339_millis(SystemTime::now())
        .to_string()
        .replace(':', "-")
}

/// The `n`th directory name for a stamp: the stamp, then `stamp-2`, `stamp-3`...
fn numbered(root: &Path, stamp: &str, n: u32) -> PathBuf {
    match n {
        1 => root.join(stamp),
        n => root.join(format!("{stamp}-{n}")),
    }
}

/// True for a name [`LogDir::create`] gives: `2026-11-22T01-45-11.123Z`, maybe followed
/// by `-2`, `-3`... (two runs in the same millisecond).
fn is_run_dir(name: &str) -> bool {
    const SHAPE: &[u8] = b"dddd-dd-ddTdd-dd-dd.dddZ";
    // Bytes, not text: a user's name may have a character of several bytes across the end
    // of the shape.
    let Some((head, rest)) = name.as_bytes().split_at_checked(SHAPE.len()) else {
        return false;
    };
    let stamp = SHAPE.iter().zip(head).all(|(&want, &c)| match want {
        b'd' => c.is_ascii_digit(),
        _ => c == want,
    });
    stamp
        && (rest.is_empty()
            || rest
                .strip_prefix(b"-")
                .is_some_and(|n| !n.is_empty() && n.iter().all(u8::is_ascii_digit)))
}

fn escape(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for c in name.chars() {
        match c {
            '/' => out.push_str("%2F"),
            '%' => out.push_str("%25"),
            '\0' => out.push_str("%00"),
            c => out.push(c),
        }
    }
    if out.starts_with('.') {
        out.replace_range(0..1, "%2E");
    }
    if out.len() > MAX_STEM {
        let mut cut = MAX_STEM - HASH_SUFFIX;
        while !out.is_char_boundary(cut) {
            cut -= 1;
        }
        out.truncate(cut);
        // FNV-1a stays the same across Rust releases: `prun log` finds the logs of long
        // names written by an earlier prun.
        out.push_str(&format!("~{:016x}", crate::fnv::hash64(name.as_bytes())));
    }
    out
}

/// The longest file name stem: a file name has at most 255 bytes (`NAME_MAX`), and `.log`
/// follows the stem.
const MAX_STEM: usize = 255 - ".log".len();
/// `~` and 16 hex digits.
const HASH_SUFFIX: usize = 17;

/// The newest log of a proc under a log root (the run directories sort by time). prun
/// writes logs as regular files: a symbolic link there (planted in a `log_dir` another
/// user can write, pointing at `/etc/shadow`) is not a log. A log root that is not there
/// holds no log; one the user may not read (another user's) is an error.
pub(crate) fn latest(root: &Path, proc_name: &str) -> io::Result<Option<PathBuf>> {
    latest_file(root, &format!("{}.log", escape(proc_name)))
}

/// [`latest`] for the log file named `file` (`.script.log`).
pub(crate) fn latest_file(root: &Path, file: &str) -> io::Result<Option<PathBuf>> {
    let entries = match fs::read_dir(root) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let mut runs: Vec<PathBuf> = entries
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .map(|e| e.path())
        .collect();
    runs.sort();
    Ok(runs
        .iter()
        .rev()
        .map(|r| r.join(file))
        .find(|p| fs::symlink_metadata(p).is_ok_and(|m| m.is_file())))
}

/// The names of the procs that have a log in some run under a log root, sorted: the names
/// `prun log` suggests for one it finds no log of. A name cut to fit a file name (see
/// [`escape`]) is left out: it is no longer the proc's.
pub(crate) fn logged(root: &Path) -> Vec<String> {
    let Ok(entries) = fs::read_dir(root) else {
        return Vec::new();
    };
    let mut names: Vec<String> = entries
        .flatten()
        .filter(|run| run.file_name().to_str().is_some_and(is_run_dir))
        .filter_map(|run| fs::read_dir(run.path()).ok())
        .flat_map(|logs| logs.flatten())
        .filter_map(|log| {
            let file = log.file_name().into_string().ok()?;
            let stem = file.strip_suffix(".log")?;
            (!stem.starts_with('.') && stem.len() < MAX_STEM - HASH_SUFFIX).then(|| unescape(stem))
        })
        .collect();
    names.sort();
    names.dedup();
    names
}

/// A proc's name from its log's file name (the inverse of [`escape`]).
fn unescape(stem: &str) -> String {
    stem.replace("%2F", "/")
        .replace("%2E", ".")
        .replace("%00", "\0")
        .replace("%25", "%")
}

/// Reads a log [`latest`] found, not through a symbolic link planted there since.
pub(crate) fn read(path: &Path) -> io::Result<Vec<u8>> {
    use std::io::Read;
    let mut bytes = Vec::new();
    open_read(path)?.read_to_end(&mut bytes)?;
    Ok(bytes)
}

/// Opens a log for reading, not through a symbolic link (nor waiting on a FIFO).
pub(crate) fn open_read(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .read(true)
        .custom_flags(nix::libc::O_NOFOLLOW | nix::libc::O_NONBLOCK)
        .open(path)
}

/// The newest run directory under a log root, if there is one.
pub(crate) fn newest_run_dir(root: &Path) -> Option<PathBuf> {
    let newest = run_dirs(root)?.pop()?;
    Some(root.join(newest))
}

/// Opens a log for appending (and reading back its last byte), creating it (mode 0600,
/// or readable by those its run directory lets read it: see [`file_mode`]). A symbolic
/// link there is not followed: in a `log_dir` another user can write, that user could
/// swap the run's directory for one of theirs holding `build.log -> /etc/shadow`.
pub(crate) fn open_append(path: &Path) -> io::Result<File> {
    remaking_dir(path, || open_append_in_place(path))
}

/// Runs `make`, which makes the file `path`, once more after making its directory again
/// (mode 0700) when it failed because that directory is gone: a cleaner of old files
/// (`tmpreaper`, `systemd-tmpfiles`) may remove a run's log directory while a long run
/// lasts, and the logs written after are still wanted. Costs nothing unless `make` fails.
pub(crate) fn remaking_dir<T>(path: &Path, make: impl Fn() -> io::Result<T>) -> io::Result<T> {
    match make() {
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            let remade = path.parent().is_some_and(|dir| {
                !dir.exists()
                    && fs::DirBuilder::new()
                        .recursive(true)
                        .mode(0o700)
                        .create(dir)
                        .is_ok()
            });
            if remade { make() } else { Err(e) }
        }
        other => other,
    }
}

/// [`open_append`] in a directory that is there.
fn open_append_in_place(path: &Path) -> io::Result<File> {
    let mode = path.parent().map_or(0o600, file_mode);
    let open = |create_new| {
        OpenOptions::new()
            .create_new(create_new)
            .create(true)
            .read(true)
            .append(true)
            .mode(mode)
            .custom_flags(nix::libc::O_NOFOLLOW)
            .open(path)
    };
    if mode == 0o600 {
        return open(false);
    }
    // Made readable whatever the umask, but only when made here: a log that is there
    // keeps the mode it has.
    match open(true) {
        Ok(f) => f
            .set_permissions(fs::Permissions::from_mode(mode))
            .map(|()| f),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => open(false),
        Err(e) => Err(e),
    }
}

/// Appends one line to a log.
pub(crate) fn append_line(path: &Path, line: &str) -> io::Result<()> {
    let mut f = open_append(path)?;
    writeln!(f, "{line}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    /// Waits until the lock of a dropped run directory is free. A child another test
    /// thread is spawning at that moment shares the locked descriptor until its `execve`
    /// closes it, so the lock may outlive the drop by that long (a `prune` then kept the
    /// directory, and the test failed now and then under load).
    fn released(dir: &Path) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while idle(dir).is_none() {
            assert!(
                std::time::Instant::now() < deadline,
                "{} stays locked",
                dir.display()
            );
            std::thread::yield_now();
        }
    }

    #[test]
    fn a_long_name_ends_in_the_fnv_hash_earlier_pruns_wrote() {
        let stem = escape(&"x".repeat(300));
        assert_eq!(stem.len(), MAX_STEM);
        assert!(stem.ends_with("~e78ddf9f1ba85555"), "{stem}");
    }

    #[test]
    fn prun_log_never_reads_through_a_symbolic_link() {
        let root = tempfile::tempdir().unwrap();
        let victim = root.path().join("victim");
        fs::write(&victim, "secret\n").unwrap();
        let old = root.path().join("2026-01-01T00-00-00.000Z");
        let new = root.path().join("2026-01-02T00-00-00.000Z");
        fs::create_dir(&old).unwrap();
        fs::create_dir(&new).unwrap();
        fs::write(old.join("p.log"), "real log\n").unwrap();
        std::os::unix::fs::symlink(&victim, new.join("p.log")).unwrap();
        assert_eq!(latest(root.path(), "p").unwrap(), Some(old.join("p.log")));
        assert!(read(&new.join("p.log")).is_err());
        assert_eq!(read(&old.join("p.log")).unwrap(), b"real log\n");
    }

    #[test]
    fn a_log_is_never_opened_through_a_symbolic_link() {
        let root = tempfile::tempdir().unwrap();
        let victim = root.path().join("victim");
        fs::write(&victim, "precious\n").unwrap();
        let link = root.path().join("p.log");
        std::os::unix::fs::symlink(&victim, &link).unwrap();
        assert!(open_append(&link).is_err());
        assert!(append_line(&link, "output").is_err());
        assert_eq!(fs::read_to_string(&victim).unwrap(), "precious\n");
    }

    #[test]
    fn run_directories_and_logs_are_private() {
        let root = tempfile::tempdir().unwrap();
        let logs = LogDir::create(root.path()).unwrap();
        let named = logs.dir().join("a.log");
        append_line(&named, "x").unwrap();
        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(logs.dir()), 0o700);
        assert_eq!(mode(&named), 0o600);
        let unnamed = logs.take_unnamed().expect("O_TMPFILE").start(0).unwrap();
        assert_eq!(
            unnamed.metadata().unwrap().permissions().mode() & 0o777,
            0o600
        );
    }

    #[test]
    fn a_spare_log_holds_only_what_its_new_user_wrote() {
        use std::io::Read;
        use std::os::unix::fs::FileExt;
        let root = tempfile::tempdir().unwrap();
        let logs = LogDir::create(root.path()).unwrap();
        let read = |f: &mut File| {
            let mut text = String::new();
            f.seek(SeekFrom::Start(0)).unwrap();
            f.read_to_string(&mut text).unwrap();
            text
        };
        // A user writes its header into the place kept for it, the child writes after it.
        let start = |head: &[u8]| {
            let mut f = logs
                .take_unnamed()
                .unwrap()
                .start(head.len() as u64)
                .unwrap();
            assert_eq!(f.stream_position().unwrap(), head.len() as u64);
            f.write_all_at(head, 0).unwrap();
            f
        };
        let mut f = start(b"a long first header\n");
        f.write_all(b"output").unwrap();
        logs.give_back(f, 26);
        // Shorter: the rest of the old content is cut.
        let mut f = start(b"short\n");
        f.write_all(b"x").unwrap();
        assert_eq!(read(&mut f), "short\nx");
        logs.give_back(f, 7);
        // As long: written over, and the child's output follows it.
        let mut f = start(b"other\n");
        f.write_all(b"y").unwrap();
        assert_eq!(read(&mut f), "other\ny");
        logs.give_back(f, 7);
        // Longer.
        let mut f = start(b"a longer one\n");
        assert_eq!(read(&mut f), "a longer one\n");
        logs.give_back(f, 13);
        // A user whose child prints nothing leaves no more than the header's place.
        let f = logs.take_unnamed().unwrap().start(4).unwrap();
        assert_eq!(f.metadata().unwrap().len(), 4);
    }

    #[test]
    fn pruning_keeps_the_newest_runs_and_touches_only_run_directories() {
        let root = tempfile::tempdir().unwrap();
        let made: Vec<PathBuf> = (0..4)
            .map(|_| LogDir::create(root.path()).unwrap().dir)
            .collect();
        let mine = root.path().join("notes");
        fs::create_dir(&mine).unwrap();
        let elsewhere = tempfile::tempdir().unwrap();
        let link = root.path().join("2000-01-01T00-00-00.000Z");
        std::os::unix::fs::symlink(elsewhere.path(), &link).unwrap();
        prune(root.path(), 2);
        let left: Vec<bool> = made.iter().map(|d| d.exists()).collect();
        assert_eq!(left, [false, false, true, true]);
        assert!(mine.exists() && link.exists() && elsewhere.path().exists());
    }

    /// Waits until no run directory under `root` is locked. A directory's lock goes with
    /// its open file, which a process another test spawns meanwhile holds too, from its
    /// fork until its exec: a run then finds the directory busy, and leaves it to the
    /// next one.
    fn all_idle(root: &Path) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while !run_dirs(root)
            .unwrap_or_default()
            .iter()
            .all(|d| idle(&root.join(d)).is_some())
        {
            assert!(
                std::time::Instant::now() < deadline,
                "a run directory stays locked"
            );
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
    }

    #[test]
    fn a_new_run_reuses_the_oldest_run_directory_past_the_kept_ones() {
        use std::os::unix::fs::MetadataExt;
        let root = tempfile::tempdir().unwrap();
        let made: Vec<PathBuf> = (0..2)
            .map(|_| LogDir::create(root.path()).unwrap().dir)
            .collect();
        append_line(&made[0].join("p.log"), "an old run's log").unwrap();
        let inode = |p: &Path| fs::symlink_metadata(p).unwrap().ino();
        let oldest = inode(&made[0]);
        // Fewer than `keep`, or every run kept: a new directory.
        let fresh = LogDir::create_reusing(root.path(), 3).unwrap();
        let all = LogDir::create_reusing(root.path(), 0).unwrap();
        assert!(made.iter().all(|d| d.exists()));
        assert_ne!(inode(fresh.dir()), oldest);
        assert_ne!(inode(all.dir()), oldest);
        // Those runs ended: a run still going keeps its directory (see `idle`).
        drop((fresh, all));
        all_idle(root.path());
        // Four there, four kept: the oldest, emptied, under the newest name.
        let logs = LogDir::create_reusing(root.path(), 4).unwrap();
        assert_eq!(inode(logs.dir()), oldest);
        assert!(!made[0].exists() && made[1].exists());
        assert_eq!(fs::read_dir(logs.dir()).unwrap().count(), 0);
        let names = run_dirs(root.path()).unwrap();
        assert_eq!(names.len(), 4);
        assert_eq!(root.path().join(&names[3]), logs.dir());
        assert_eq!(logs.kept(), Some(4));
        assert_eq!(
            fs::metadata(logs.dir()).unwrap().permissions().mode() & 0o777,
            0o700
        );
        // Fewer kept now: those past them go at once, the oldest is reused.
        drop(logs);
        all_idle(root.path());
        let second = inode(&root.path().join(&names[0]));
        let logs = LogDir::create_reusing(root.path(), 2).unwrap();
        assert_eq!(inode(logs.dir()), second);
        assert_eq!(run_dirs(root.path()).unwrap().len(), 2);
        assert_eq!(logs.kept(), Some(2));
    }

    #[test]
    fn the_directory_of_a_run_still_going_is_neither_pruned_nor_reused() {
        let root = tempfile::tempdir().unwrap();
        let going = LogDir::create(root.path()).unwrap();
        let ended = LogDir::create(root.path()).unwrap().dir;
        append_line(&going.dir().join("p.log"), "going").unwrap();
        append_line(&ended.join("p.log"), "ended").unwrap();
        let new = LogDir::create_reusing(root.path(), 1).unwrap();
        // The new run may get the ended run's name (the same millisecond), not its logs.
        assert!(!ended.join("p.log").exists());
        assert!(going.dir().join("p.log").exists());
        assert_ne!(new.dir(), going.dir());
        prune(root.path(), 1);
        assert!(going.dir().join("p.log").exists() && new.dir().exists());
        let left = going.dir().to_path_buf();
        drop(going);
        released(&left);
        prune(root.path(), 1);
        assert_eq!(run_dirs(root.path()).unwrap().len(), 1);
        assert!(new.dir().exists());
    }

    #[test]
    fn a_directory_still_held_counts_among_the_kept_and_an_idle_one_goes_instead() {
        let root = tempfile::tempdir().unwrap();
        let going = LogDir::create_reusing(root.path(), 2).unwrap();
        assert_eq!(going.kept(), Some(2));
        let ended = LogDir::create(root.path()).unwrap().dir;
        // Another run made a directory: the run going prunes again at its end.
        assert_eq!(going.kept(), None);
        let newer = LogDir::create_reusing(root.path(), 2).unwrap();
        assert!(going.dir().exists() && !ended.exists());
        assert_eq!(run_dirs(root.path()).unwrap().len(), 2);
        assert_eq!(newer.kept(), Some(2));
        let left = newer.dir().to_path_buf();
        drop(newer);
        released(&left);
        prune(root.path(), 1);
        assert!(going.dir().exists());
        assert_eq!(run_dirs(root.path()).unwrap().len(), 1);
    }

    #[test]
    fn a_run_directory_open_to_others_or_in_a_shared_root_is_not_reused() {
        let root = tempfile::tempdir().unwrap();
        let old = LogDir::create(root.path()).unwrap().dir;
        fs::set_permissions(&old, fs::Permissions::from_mode(0o755)).unwrap();
        let logs = LogDir::create_reusing(root.path(), 1).unwrap();
        assert!(old.exists());
        assert_ne!(logs.dir(), old);
        // Nor one in a log root others can write to.
        fs::remove_dir_all(&old).unwrap();
        let private = logs.dir().to_path_buf();
        fs::set_permissions(root.path(), fs::Permissions::from_mode(0o777)).unwrap();
        let logs = LogDir::create_reusing(root.path(), 1).unwrap();
        assert!(private.exists());
        assert_ne!(logs.dir(), private);
        assert_eq!(
            fs::metadata(logs.dir()).unwrap().permissions().mode() & 0o777,
            0o700
        );
    }

    #[test]
    fn run_directory_names() {
        assert!(is_run_dir("2026-11-22T01-45-11.123Z"));
        assert!(is_run_dir("2026-11-22T01-45-11.123Z-12"));
        assert!(!is_run_dir("2026-11-22T01-45-11.123Z-"));
        assert!(!is_run_dir("2026-11-22T01-45-11.123"));
        assert!(!is_run_dir("notes"));
    }

    #[test]
    fn escapes_path_characters() {
        assert_eq!(escape("build::prod"), "build::prod");
        assert_eq!(escape("a/b%c"), "a%2Fb%25c");
        assert_eq!(escape(".hidden"), "%2Ehidden");
        for name in ["build::prod", "a/b%c", ".hidden", "%2F", "x%252Fy"] {
            assert_eq!(unescape(&escape(name)), name);
        }
    }

    #[test]
    fn long_names_are_cut_and_told_apart_by_a_hash() {
        let a = format!("{}a", "é".repeat(200));
        let b = format!("{}b", "é".repeat(200));
        let (ea, eb) = (escape(&a), escape(&b));
        assert!(ea.len() <= MAX_STEM && eb.len() <= MAX_STEM, "{}", ea.len());
        assert_ne!(ea, eb);
        assert_eq!(ea, escape(&a));
        let short = "x".repeat(MAX_STEM);
        assert_eq!(escape(&short), short);
    }
}

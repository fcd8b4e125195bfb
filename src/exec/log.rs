//! Per-proc log files: where they live, how they are named, and reading their tail.
//!
//! Each run gets a directory `<log root>/<start time>/`, and each proc a file named after
//! it (with `/` and `%` escaped; a name too long for a file name is cut and followed by a
//! hash of the whole name, so that distinct names keep distinct logs). Command bodies
//! write straight into the file through the child's own descriptors, so prun copies
//! nothing and a log survives a crash of prun.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Seek, SeekFrom, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::SystemTime;

/// The log directory of one run.
#[derive(Debug)]
pub struct LogDir {
    dir: PathBuf,
    /// Unnamed files that command bodies wrote nothing into, ready for the next one, each
    /// with the length of what it still holds (see [`LogDir::give_back`]).
    spare: Mutex<Vec<Spare>>,
}

impl LogDir {
    /// Creates `<root>/<timestamp>/` (mode 0700; logs are 0600: they may hold what commands
    /// printed about credentials).
    pub fn create(root: &Path) -> io::Result<LogDir> {
        fs::create_dir_all(root)?;
        let stamp = humantime::format_rfc3339_millis(SystemTime::now())
            .to_string()
            .replace(':', "-");
        // `create_dir` (not `_all`) fails on an existing directory: two runs started in
        // the same millisecond get different directories.
        let mut n = 1;
        loop {
            let dir = match n {
                1 => root.join(&stamp),
                n => root.join(format!("{stamp}-{n}")),
            };
            match fs::DirBuilder::new().mode(0o700).create(&dir) {
                Ok(()) => {
                    return Ok(LogDir {
                        dir,
                        spare: Mutex::new(Vec::new()),
                    });
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => n += 1,
                Err(e) => return Err(e),
            }
        }
    }

    /// The directory holding this run's logs.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// An unnamed file in this directory for a command body's output (see
    /// `job::run_command_body`), or `None` where the filesystem has no `O_TMPFILE`.
    pub fn take_unnamed(&self) -> Option<Spare> {
        if let Some(f) = self.spare.lock().expect("spare logs").pop() {
            return Some(f);
        }
        let file = super::unix::open_unnamed(&self.dir).ok()?;
        Some(Spare { file, stale: None })
    }

    /// Returns an unnamed file that ended up holding nothing worth keeping (`len` bytes of
    /// it), for the next command body: a silent command costs no file at all. It is not
    /// emptied here: its next user cuts what is left beyond its own header's place
    /// ([`Spare::start`]), which costs no truncation when the new header is as long as the
    /// old one, as it is for a run of the same command.
    pub fn give_back(&self, file: File, len: u64) {
        self.spare.lock().expect("spare logs").push(Spare {
            file,
            stale: Some(len),
        });
    }

    /// Closes the spare unnamed files, when file descriptors run short.
    pub fn drop_spares(&self) {
        self.spare.lock().expect("spare logs").clear();
    }

    /// The log file of a proc (not created yet).
    pub fn path_for(&self, proc_name: &str) -> PathBuf {
        self.dir.join(format!("{}.log", escape(proc_name)))
    }
}

/// An unnamed log file (`O_TMPFILE`) for a command body, reused from one silent command
/// to the next.
#[derive(Debug)]
pub struct Spare {
    file: File,
    /// How many bytes at its start are left from its last user (`None`: a new file).
    stale: Option<u64>,
}

impl Spare {
    /// The file for a command whose header is `head_len` bytes long: at most that long,
    /// its offset after the header's place (where the child's output goes). The place
    /// holds what its last user left there, or nothing, until the header is written into
    /// it; only then is the file given a name.
    pub fn start(self, head_len: u64) -> io::Result<File> {
        let Spare { mut file, stale } = self;
        if stale.is_some_and(|stale| stale > head_len) {
            file.set_len(head_len)?;
        }
        file.seek(SeekFrom::Start(head_len))?;
        Ok(file)
    }
}

/// Removes all but the newest `keep` run directories under a log root (`keep_runs`).
///
/// Only directories prun made are touched: real directories (a symbolic link is never
/// followed, nor removed) named like a run's (see [`is_run_dir`]); anything else a user
/// put under a `log_dir` stays. The names sort by time.
pub fn prune(root: &Path, keep: usize) {
    let Ok(entries) = fs::read_dir(root) else {
        return;
    };
    // The entry's type comes with the directory listing (it is not a symbolic link's
    // target): no stat per run directory.
    // Sorted by name, not by path: comparing paths splits them into components at every
    // comparison, which cost more than the rest of a short run's end.
    let mut dirs: Vec<String> = entries
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|name| is_run_dir(name))
        .collect();
    if dirs.len() <= keep {
        return;
    }
    dirs.sort_unstable();
    for old in &dirs[..dirs.len() - keep] {
        let _ = fs::remove_dir_all(root.join(old));
    }
}

/// True for a name [`LogDir::create`] gives: `2026-11-22T01-45-11.123Z`, maybe followed
/// by `-2`, `-3`... (two runs in the same millisecond).
fn is_run_dir(name: &str) -> bool {
    const SHAPE: &[u8] = b"dddd-dd-ddTdd-dd-dd.dddZ";
    let b = name.as_bytes();
    if b.len() < SHAPE.len() {
        return false;
    }
    let stamp = SHAPE.iter().zip(b).all(|(&want, &c)| match want {
        b'd' => c.is_ascii_digit(),
        _ => c == want,
    });
    let rest = &name[SHAPE.len()..];
    stamp
        && (rest.is_empty()
            || rest
                .strip_prefix('-')
                .is_some_and(|n| !n.is_empty() && n.bytes().all(|c| c.is_ascii_digit())))
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
        out.push_str(&format!("~{:016x}", fnv1a(name.as_bytes())));
    }
    out
}

/// The longest file name stem: a file name has at most 255 bytes (`NAME_MAX`), and `.log`
/// follows the stem.
const MAX_STEM: usize = 255 - ".log".len();
/// `~` and 16 hex digits.
const HASH_SUFFIX: usize = 17;

/// FNV-1a: a hash that stays the same across Rust releases, so that `prun log` finds the
/// logs of long names written by an earlier prun.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// The newest log of a proc under a log root (the run directories sort by time).
pub fn latest(root: &Path, proc_name: &str) -> Option<PathBuf> {
    let mut runs: Vec<PathBuf> = fs::read_dir(root)
        .ok()?
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .map(|e| e.path())
        .collect();
    runs.sort();
    let file = format!("{}.log", escape(proc_name));
    runs.iter()
        .rev()
        .map(|r| r.join(&file))
        .find(|p| p.is_file())
}

/// Opens a log for appending (and reading back its last byte), creating it.
pub fn open_append(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .create(true)
        .read(true)
        .append(true)
        .mode(0o600)
        .open(path)
}

/// Appends one line to a log.
pub fn append_line(path: &Path, line: &str) -> io::Result<()> {
    let mut f = open_append(path)?;
    writeln!(f, "{line}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

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

//! Per-proc log files: where they live, how they are named, and reading their tail.
//!
//! Each run gets a directory `<log root>/<start time>/`, and each proc a file named after
//! it (with `/` and `%` escaped). Command bodies write straight into the file through the
//! child's own descriptors, so prun copies nothing and a log survives a crash of prun.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

/// How many earlier run directories to keep under a log root.
const KEEP_RUNS: usize = 20;
/// Pruning waits until this many extra directories have piled up, so that most runs do
/// not pay for deleting files (slow on some filesystems) at start-up.
const PRUNE_SLACK: usize = 10;

/// The log directory of one run.
#[derive(Debug, Clone)]
pub struct LogDir {
    dir: PathBuf,
}

impl LogDir {
    /// Creates `<root>/<timestamp>/`, pruning the oldest run directories (the last 20 runs'
    /// logs are kept).
    pub fn create(root: &Path) -> io::Result<LogDir> {
        fs::create_dir_all(root)?;
        prune(root);
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
            match fs::create_dir(&dir) {
                Ok(()) => return Ok(LogDir { dir }),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => n += 1,
                Err(e) => return Err(e),
            }
        }
    }

    /// The directory holding this run's logs.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The log file of a proc (not created yet).
    pub fn path_for(&self, proc_name: &str) -> PathBuf {
        self.dir.join(format!("{}.log", escape(proc_name)))
    }
}

fn prune(root: &Path) {
    let Ok(entries) = fs::read_dir(root) else {
        return;
    };
    // The entry's type comes with the directory listing: no stat per run directory.
    let mut dirs: Vec<PathBuf> = entries
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .map(|e| e.path())
        .collect();
    if dirs.len() < KEEP_RUNS + PRUNE_SLACK {
        return;
    }
    dirs.sort();
    for old in &dirs[..=dirs.len() - KEEP_RUNS] {
        let _ = fs::remove_dir_all(old);
    }
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
    out
}

/// A proc's log that is created when its command first writes something, or when prun
/// has a failure to record: a command that succeeds silently costs no file. (Creating a
/// file costs a directory update, which on some filesystems takes longer than running
/// `/usr/bin/true`.)
#[derive(Debug)]
pub struct LazyLog {
    path: PathBuf,
    header: String,
    file: Mutex<Option<File>>,
}

impl LazyLog {
    /// A log at `path` that will start with `header` (one or more lines, no final newline).
    pub fn new(path: PathBuf, header: String) -> Arc<LazyLog> {
        Arc::new(LazyLog {
            path,
            header,
            file: Mutex::new(None),
        })
    }

    /// Runs `f` on the log file, creating it (or, on a retry, opening the earlier attempt's
    /// log at its end) and writing the header on first use. The file is not opened in
    /// append mode, because `splice(2)` refuses such files; prun is its only writer.
    pub fn with_file<R>(&self, f: impl FnOnce(&File) -> io::Result<R>) -> io::Result<R> {
        let mut slot = self.file.lock().expect("log");
        if slot.is_none() {
            let mut file = OpenOptions::new()
                .create(true)
                .read(true)
                .write(true)
                .truncate(false)
                .open(&self.path)?;
            file.seek(SeekFrom::End(0))?;
            file.write_all(format!("{}\n", self.header).as_bytes())?;
            *slot = Some(file);
        }
        f(slot.as_ref().expect("opened"))
    }

    /// Appends output bytes.
    pub fn write(&self, data: &[u8]) -> io::Result<()> {
        self.with_file(|mut f| f.write_all(data))
    }

    /// Ends the log with `line` on a line of its own, if the log exists or `force` is set.
    /// Returns whether the log exists.
    pub fn finish(&self, line: &str, force: bool) -> io::Result<bool> {
        if !force && self.file.lock().expect("log").is_none() {
            return Ok(false);
        }
        self.with_file(|mut f| {
            use std::os::unix::fs::FileExt;
            let len = f.metadata()?.len();
            let mut last = [b'\n'];
            if len > 0 {
                f.read_exact_at(&mut last, len - 1)?;
            }
            let sep = if last[0] == b'\n' { "" } else { "\n" };
            f.write_all(format!("{sep}{line}\n").as_bytes())
        })?;
        Ok(true)
    }
}

/// Opens a log for appending (and reading back its last byte), creating it.
pub fn open_append(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .create(true)
        .read(true)
        .append(true)
        .open(path)
}

/// Appends one line to a log.
pub fn append_line(path: &Path, line: &str) -> io::Result<()> {
    let mut f = open_append(path)?;
    writeln!(f, "{line}")
}

/// The last `n` lines of a file (reading at most its last 64 KiB).
pub fn tail(path: &Path, n: usize) -> Vec<String> {
    let Ok(mut f) = File::open(path) else {
        return Vec::new();
    };
    let len = f.metadata().map(|m| m.len()).unwrap_or(0);
    let start = len.saturating_sub(64 * 1024);
    if f.seek(SeekFrom::Start(start)).is_err() {
        return Vec::new();
    }
    let mut buf = Vec::new();
    if f.read_to_end(&mut buf).is_err() {
        return Vec::new();
    }
    let text = String::from_utf8_lossy(&buf);
    let lines: Vec<&str> = text.lines().collect();
    let skip = usize::from(start > 0);
    let from = lines.len().saturating_sub(n).max(skip.min(lines.len()));
    lines[from..].iter().map(|l| l.to_string()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_path_characters() {
        assert_eq!(escape("build::prod"), "build::prod");
        assert_eq!(escape("a/b%c"), "a%2Fb%25c");
        assert_eq!(escape(".hidden"), "%2Ehidden");
    }

    #[test]
    fn tail_returns_last_lines() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.log");
        fs::write(&p, "1\n2\n3\n4\n").unwrap();
        assert_eq!(tail(&p, 2), vec!["3", "4"]);
        assert_eq!(tail(&p, 10).len(), 4);
    }
}

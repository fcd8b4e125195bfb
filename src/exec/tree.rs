//! The files an input stands for: itself, or every file under it when it is a directory.
//!
//! A directory is walked depth first, each directory's entries in sorted order (the order
//! fingerprints saved by earlier runs were made in). Symbolic links are followed, since a
//! proc reads through them, but each directory is entered once per walk, by the first path
//! that reaches it: a link to an ancestor (`up -> ..`, `X11 -> .`) would otherwise make the
//! walk endless, and it adds no file the walk does not already have. The walk keeps its
//! own stack, so a deep tree cannot overflow the thread's. A directory of a kernel's
//! pseudo file system (`/proc`, `/sys`, cgroups, debugfs...) is never entered: reached
//! through a link (`p -> /proc`), its processes' `root` links lead to the whole system, and
//! what it holds changes from one instant to the next, so a proc reading it could never be
//! up to date anyway. prun's own files (the task DB,
//! the `--json` report, the state and log directories) are left out, so that a run never makes its own inputs
//! change. A directory the walk cannot read, or a file it cannot look at (permission
//! denied), is an error naming it: what it holds would be left out of the fingerprint
//! unseen, and a proc reading it judged up to date while it changed.

use std::collections::{HashMap, HashSet};
use std::ffi::OsString;
use std::fs::Metadata;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// A file of an input, with its metadata (`None` when it does not exist).
pub(crate) type Entry = (PathBuf, Option<Metadata>);

/// A directory a walk could not read, or a path it could not look at: what it holds is
/// unknown, so a listing without it would be silently short.
#[derive(Debug, thiserror::Error)]
pub(crate) struct Unreadable {
    /// The directory or path.
    pub path: PathBuf,
    /// Whether it is a directory whose entries could not be listed.
    pub dir: bool,
    /// Why.
    pub source: std::io::Error,
}

impl std::fmt::Display for Unreadable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let path = super::fileglob::display(&self.path);
        let why = super::command::reason(&self.source);
        if self.dir {
            write!(f, "the directory {path} cannot be read: {why}")
        } else {
            write!(f, "the path {path} cannot be looked at: {why}")
        }
    }
}

/// The metadata of `path` (links followed); `None` when it does not exist (a dangling
/// link, a link loop, or a file under something that is not a directory count as
/// missing); any other failure (permission denied) is [`Unreadable`].
pub(crate) fn look(path: &Path) -> Result<Option<Metadata>, Unreadable> {
    match std::fs::metadata(path) {
        Ok(m) => Ok(Some(m)),
        Err(e) if absent(&e) => Ok(None),
        Err(source) => Err(Unreadable {
            path: path.to_path_buf(),
            dir: false,
            source,
        }),
    }
}

/// Whether the error of looking at a path says that there is nothing there.
pub(crate) fn absent(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::NotFound | std::io::ErrorKind::NotADirectory
    ) || e.raw_os_error() == Some(nix::libc::ELOOP)
}

/// The names in the directory `dir` (`""` is the working directory), unsorted; `None`
/// when it no longer exists.
pub(crate) fn read_names(dir: &Path) -> Result<Option<Vec<OsString>>, Unreadable> {
    let shown = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    let unreadable = |source| Unreadable {
        path: shown.to_path_buf(),
        dir: true,
        source,
    };
    let entries = match std::fs::read_dir(shown) {
        Ok(entries) => entries,
        Err(e) if absent(&e) => return Ok(None),
        Err(e) => return Err(unreadable(e)),
    };
    let names = entries
        .map(|e| e.map(|e| e.file_name()))
        .collect::<Result<Vec<_>, _>>()
        .map_err(unreadable)?;
    Ok(Some(names))
}

/// Which file or directory a path is, whatever path reaches it.
type Identity = (u64, u64);

fn identity(m: &Metadata) -> Identity {
    (m.dev(), m.ino())
}

/// prun's own files, which a directory input never includes: the task DB (with its
/// `-wal`, `-shm` and `-journal` files, which change with every run), the log directory
/// and the script's state directory (lock, journal of process groups). Without this, a
/// proc whose input is a directory holding them (`inputs: ["."]` with `--db ./tasks.db`)
/// would never be up to date.
#[derive(Debug, Default, Clone)]
pub(crate) struct OwnFiles {
    /// The task DB file.
    pub db: Option<PathBuf>,
    /// The `--json` report, which every run writes.
    pub report: Option<PathBuf>,
    /// The log directory and the state directory.
    pub dirs: Vec<PathBuf>,
}

/// [`OwnFiles`] by identity, to compare with the entries of a walked directory. The DB's
/// files are named in their directory: its `-wal` and `-shm` may not exist yet.
#[derive(Debug, Default)]
pub(crate) struct OwnIds {
    files: Vec<(Identity, OsString)>,
    dirs: Vec<Identity>,
}

impl OwnFiles {
    fn ids(&self) -> OwnIds {
        let mut own = OwnIds::default();
        let named = [
            (&self.db, &["", "-wal", "-shm", "-journal"][..]),
            (&self.report, &[""][..]),
        ];
        for (file, suffixes) in named {
            if let Some(file) = file
                && let (Some(name), Some(dir)) = (file.file_name(), file.parent())
            {
                let dir = if dir.as_os_str().is_empty() {
                    Path::new(".")
                } else {
                    dir
                };
                if let Ok(m) = std::fs::metadata(dir) {
                    for suffix in suffixes {
                        let mut n = name.to_os_string();
                        n.push(suffix);
                        own.files.push((identity(&m), n));
                    }
                }
            }
        }
        own.dirs = self
            .dirs
            .iter()
            .filter_map(|d| std::fs::metadata(d).ok())
            .map(|m| identity(&m))
            .collect();
        own
    }
}

/// Lists the files of inputs one after the other, sharing what they need to know of
/// prun's own files (read when a first directory is walked).
pub(crate) struct Lister<'a> {
    owner: &'a OwnFiles,
    own: std::cell::OnceCell<OwnIds>,
}

impl<'a> Lister<'a> {
    pub(crate) fn new(owner: &'a OwnFiles) -> Self {
        Lister {
            owner,
            own: std::cell::OnceCell::new(),
        }
    }

    /// Appends to `out` the file `path`, or every file under it when it is a directory.
    pub(crate) fn files_under(&self, path: &Path, out: &mut Vec<Entry>) -> Result<(), Unreadable> {
        match look(path)? {
            Some(m) if m.is_dir() => {
                walk(path, &m, self.own.get_or_init(|| self.owner.ids()), out)?;
            }
            meta => out.push((path.to_path_buf(), meta)),
        }
        Ok(())
    }
}

/// A directory being walked: its entries not visited yet, in order.
struct Open {
    entries: std::vec::IntoIter<PathBuf>,
}

/// Appends the files under the directory `root` (whose metadata is `meta`), as the module
/// describes.
fn walk(
    root: &Path,
    meta: &Metadata,
    own: &OwnIds,
    out: &mut Vec<Entry>,
) -> Result<(), Unreadable> {
    let mut seen = Seen::default();
    let mut stack: Vec<Open> = Vec::new();
    stack.extend(enter(root, meta, own, &mut seen)?);
    while let Some(open) = stack.last_mut() {
        let Some(path) = open.entries.next() else {
            stack.pop();
            continue;
        };
        match look(&path)? {
            Some(m) if m.is_dir() => stack.extend(enter(&path, &m, own, &mut seen)?),
            meta => out.push((path, meta)),
        }
    }
    Ok(())
}

/// What a walk knows of the directories it met.
#[derive(Default)]
struct Seen {
    /// The directories entered.
    entered: HashSet<Identity>,
    /// Whether each file system (by device) met is a kernel's pseudo file system.
    pseudo: HashMap<u64, bool>,
}

/// The kernel's pseudo file systems, which a walk does not enter (see the module
/// documentation).
const PSEUDO_FILE_SYSTEMS: [i64; 12] = [
    0x9fa0,      // proc
    0x6265_6572, // sysfs
    0x0027_e0eb, // cgroup
    0x6367_7270, // cgroup2
    0x6462_6720, // debugfs
    0x7472_6163, // tracefs
    0x7365_6373, // securityfs
    0xcafe_4a11, // bpf
    0x1cd1,      // devpts
    0xf97c_ff8c, // selinuxfs
    0x4341_5d53, // smackfs
    0x6e73_6673, // nsfs
];

/// Whether `dir` (on device `dev`) is on a kernel's pseudo file system.
fn on_pseudo_fs(dir: &Path, dev: u64, known: &mut HashMap<u64, bool>) -> bool {
    *known.entry(dev).or_insert_with(|| {
        nix::sys::statfs::statfs(dir).is_ok_and(|fs| {
            let kind = fs.filesystem_type().0;
            PSEUDO_FILE_SYSTEMS.contains(&kind)
        })
    })
}

/// Reads the directory `dir` for the walk, unless it is one of prun's own, was entered
/// already, is on a pseudo file system, or is gone.
fn enter(
    dir: &Path,
    meta: &Metadata,
    own: &OwnIds,
    seen: &mut Seen,
) -> Result<Option<Open>, Unreadable> {
    let id = identity(meta);
    if own.dirs.contains(&id)
        || on_pseudo_fs(dir, meta.dev(), &mut seen.pseudo)
        || !seen.entered.insert(id)
    {
        return Ok(None);
    }
    let Some(names) = read_names(dir)? else {
        return Ok(None);
    };
    let mut paths: Vec<PathBuf> = names
        .into_iter()
        .filter(|name| !own.files.iter().any(|(d, n)| *d == id && n == name))
        .map(|name| dir.join(name))
        .collect();
    paths.sort();
    Ok(Some(Open {
        entries: paths.into_iter(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn list(path: &Path, owner: &OwnFiles) -> Vec<PathBuf> {
        let mut out = Vec::new();
        Lister::new(owner).files_under(path, &mut out).unwrap();
        out.into_iter().map(|(p, _)| p).collect()
    }

    /// A link to `/proc` is not followed into it: its processes' `root` links lead to the
    /// whole system (the walk ran for minutes). Walked on a thread of its own, so that the
    /// test fails rather than hangs.
    #[test]
    fn a_link_to_proc_is_not_walked_into() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a"), "1").unwrap();
        symlink("/proc", dir.path().join("p")).unwrap();
        let root = dir.path().to_path_buf();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(list(&root, &OwnFiles::default()));
        });
        let files = rx
            .recv_timeout(std::time::Duration::from_secs(60))
            .expect("the walk went into /proc");
        assert_eq!(files, [dir.path().join("a")]);
    }

    #[test]
    fn links_to_ancestors_end_the_walk_and_linked_directories_are_walked_once() {
        let dir = tempfile::tempdir().unwrap();
        let (d, outside) = (dir.path().join("d"), dir.path().join("outside"));
        std::fs::create_dir_all(d.join("sub")).unwrap();
        std::fs::create_dir_all(&outside).unwrap();
        std::fs::write(d.join("sub/f.txt"), "1").unwrap();
        std::fs::write(outside.join("o.txt"), "2").unwrap();
        symlink("..", d.join("sub/up")).unwrap();
        symlink(".", d.join("self")).unwrap();
        symlink(&outside, d.join("ext")).unwrap();
        symlink(&outside, d.join("ext2")).unwrap();
        symlink("nowhere", d.join("dangling")).unwrap();
        assert_eq!(
            list(&d, &OwnFiles::default()),
            [d.join("dangling"), d.join("ext/o.txt"), d.join("sub/f.txt")],
            "each directory once, by its first path in sorted order"
        );
    }

    #[test]
    fn a_tree_deeper_than_a_thread_stack_could_recurse_is_walked() {
        let dir = tempfile::tempdir().unwrap();
        let mut deep = dir.path().to_path_buf();
        // Short names keep the path well under PATH_MAX: 600 levels of "a/".
        for _ in 0..600 {
            deep.push("a");
        }
        std::fs::create_dir_all(&deep).unwrap();
        std::fs::write(deep.join("leaf"), "x").unwrap();
        let files = std::thread::Builder::new()
            .stack_size(32 * 1024)
            .spawn({
                let root = dir.path().to_path_buf();
                move || list(&root, &OwnFiles::default())
            })
            .unwrap()
            .join()
            .unwrap();
        assert_eq!(files, [deep.join("leaf")]);
    }

    #[test]
    fn prun_s_own_files_are_left_out_even_through_a_link() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().join("d");
        std::fs::create_dir_all(d.join("logs/run")).unwrap();
        std::fs::write(d.join("logs/run/a.log"), "x").unwrap();
        std::fs::write(d.join("tasks.db"), "x").unwrap();
        std::fs::write(d.join("tasks.db-wal"), "x").unwrap();
        std::fs::write(d.join("in.txt"), "x").unwrap();
        std::fs::write(d.join("report.json"), "{}").unwrap();
        symlink("logs", d.join("logs-link")).unwrap();
        let owner = OwnFiles {
            db: Some(dir.path().join("d-link/tasks.db")),
            report: Some(d.join("report.json")),
            dirs: vec![d.join("logs")],
        };
        symlink(&d, dir.path().join("d-link")).unwrap();
        assert_eq!(list(&d, &owner), [d.join("in.txt")]);
    }
}

//! Opening the task DB to read it only (`prun history`, `prun report`): also another
//! user's DB, which this user may read (its owner made it so, `chmod a+r`) but not write,
//! in a directory this user cannot write either. Nothing is written, and no file is made.
//!
//! Theory of operation. SQLite reads a WAL-mode DB through its `-wal` and `-shm` files. A
//! connection opened read-only (`mode=ro`) still makes them when they are missing, and
//! leaves them behind when it closes; where it cannot make them (a directory it may not
//! write), it fails (`SQLITE_READONLY_DIRECTORY`, or `SQLITE_CANTOPEN`), "unless the
//! database is designated as immutable" (sqlite.org, walformat.html). Between runs there is
//! no `-wal` file: the last connection to close moves its pages into the DB file and
//! deletes it. So:
//!
//! 1. A read lock is taken on the DB file's shared bytes, as SQLite's own readers take it.
//!    While it is held, no connection gets the exclusive lock it needs to write the DB
//!    file itself (a DB in rollback mode) or, closing, to move the `-wal` into the DB file
//!    and delete it (it then leaves it for later).
//! 2. Without a `-wal` file, every commit is in the DB file, which (1) keeps as it is: it
//!    is read as `immutable`, with no lock and no file of SQLite's. A run that starts
//!    meanwhile commits to a new `-wal`, whose pages reach the DB file only at a
//!    checkpoint, which SQLite's `immutable` reader does not see coming: it would read
//!    pages half copied. So a reader also holds a read lock on [`READER_BYTE`], and a
//!    run's writer checkpoints only under a write lock on it ([`checkpointing`]), never
//!    automatically (SQLite's own checkpoint after some 1,000 pages is off); the
//!    checkpoint when the last connection closes needs the exclusive lock that (1) keeps.
//! 3. With a `-wal` file (a run is writing the DB, or one closed while (1) was held), the
//!    DB is read through it, `mode=ro`; a reader that is not its owner opens the `-shm` file
//!    read-only (`readonly_shm`: SQLite then reads the `-wal` into memory), so as to make
//!    no file in the owner's directory.
//! 4. A `-wal` file without its `-shm` (left by a connection that never closed: a killed
//!    run) cannot be read that way: SQLite must make the `-shm` to read the `-wal`, and
//!    failed with "unable to open database file". The DB file alone is no answer: a
//!    checkpoint cut short leaves it half moved, which only the `-wal` makes whole. So
//!    a reader that is not the owner copies both into a directory of its own and reads
//!    the copy, `mode=ro`; the copy counts only when neither file changed while it was
//!    made and no `-shm` appeared (no connection opened the DB meanwhile), else it is
//!    made again. The owner's next connection moves the `-wal` into the DB file.
//!
//! A DB this prun cannot read as it is (its schema older than this prun's) is not brought up
//! to date here: the caller does that through a run's opening when the DB is the user's
//! own, and tells any other user that its owner's next run will.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::Path;
use std::time::{Duration, Instant};

use nix::fcntl::{FcntlArg, fcntl};
use nix::unistd::Uid;
use rusqlite::{Connection, OpenFlags};

use super::StoreError;
use super::db::with_suffix;
use super::schema;

/// SQLite's lock bytes (`os_unix.c`): a reader holds a read lock on the `SHARED_SIZE`
/// bytes from `SHARED_FIRST`, a writer of the DB file a write lock.
const PENDING_BYTE: i64 = 0x4000_0000;
const SHARED_FIRST: i64 = PENDING_BYTE + 2;
const SHARED_SIZE: i64 = 510;

/// A byte that SQLite locks nowhere (its lock bytes end at `SHARED_FIRST + SHARED_SIZE`),
/// on which readers hold a read lock and a run's writer takes a write lock for a
/// checkpoint (step 2).
const READER_BYTE: i64 = PENDING_BYTE + 1024;

/// How long the read lock is waited for: a connection holds its exclusive lock for the
/// moment it takes to move a `-wal` into the DB file.
const LOCK_PATIENCE: Duration = Duration::from_secs(10);

/// The read lock of (1) above, held as long as the file is open: an open file
/// description's lock (`F_OFD_SETLK`), which the connection's own opening and closing of
/// the DB file do not release, as they would a process's `F_SETLK` lock.
#[derive(Debug)]
pub(super) struct Hold {
    _file: File,
    /// The copy read instead of the DB (step 4), removed with the hold.
    _copy: Option<tempfile::TempDir>,
}

/// How many times step (4) copies a DB that changes while it is copied before it gives up.
const COPY_TRIES: usize = 3;

/// A DB opened to read only, or why it was not.
pub(super) enum ReadOnly {
    /// Open for reading; the hold keeps the DB file as the connection reads it.
    Open(Connection, Hold),
    /// The user's own DB, with a schema older than this prun's: a run's opening brings it
    /// up to date.
    Outdated,
}

/// Opens the DB at `path` to read only (see the module's documentation).
pub(super) fn open(path: &Path) -> Result<ReadOnly, StoreError> {
    let file_err = |source| StoreError::File {
        path: path.to_path_buf(),
        source,
    };
    let file = open_readable(path).map_err(file_err)?;
    let meta = file.metadata().map_err(file_err)?;
    if !meta.is_file() {
        return Err(file_err(std::io::Error::other(format!(
            "it is not a regular file, {}",
            crate::paths::describe(&meta)
        ))));
    }
    let ours = meta.uid() == Uid::effective().as_raw();
    hold(&file, path)?;
    let (wal, shm) = (with_suffix(path, "-wal"), with_suffix(path, "-shm"));
    let mut copy = None;
    let uri = if !ours && exists(&wal) && !exists(&shm) {
        let dir = copied(path, &file)?;
        let uri = format!("{}?mode=ro", uri_of(&dir.path().join(COPY_NAME)));
        copy = Some(dir);
        uri
    } else if exists(&wal) {
        for side in [wal, shm] {
            match open_readable(&side) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(file_err(e)),
                _ => {}
            }
        }
        let shm = if ours { "" } else { "&readonly_shm=1" };
        format!("{}?mode=ro{shm}", uri_of(path))
    } else {
        format!("{}?immutable=1", uri_of(path))
    };
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY
        | OpenFlags::SQLITE_OPEN_URI
        | OpenFlags::SQLITE_OPEN_NO_MUTEX
        | OpenFlags::SQLITE_OPEN_NOFOLLOW;
    let open_err = |source| StoreError::Open {
        path: path.to_path_buf(),
        source,
    };
    let conn = Connection::open_with_flags(uri, flags).map_err(open_err)?;
    schema::harden(&conn).map_err(open_err)?;
    conn.busy_timeout(LOCK_PATIENCE).map_err(open_err)?;
    let sql_err = |source| StoreError::Sql {
        path: path.to_path_buf(),
        source,
    };
    let found: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(sql_err)?;
    if found > schema::VERSION {
        return Err(StoreError::TooNew {
            path: path.to_path_buf(),
            found,
            known: schema::VERSION,
            by: schema::written_by(&conn),
        });
    }
    if let Some(what) = schema::foreign_object(&conn).map_err(sql_err)? {
        return Err(StoreError::Foreign {
            path: path.to_path_buf(),
            what,
        });
    }
    // A version no prun writes is a corrupt DB, which only a run moves aside.
    schema::unwritten(found).map_err(sql_err)?;
    if found < schema::VERSION {
        if ours {
            return Ok(ReadOnly::Outdated);
        }
        return Err(StoreError::TooOld {
            path: path.to_path_buf(),
            found,
            known: schema::VERSION,
            owner: crate::paths::user_text(Uid::from_raw(meta.uid())),
        });
    }
    Ok(ReadOnly::Open(
        conn,
        Hold {
            _file: file,
            _copy: copy,
        },
    ))
}

/// Whether `path` names a file (or a link), without following it.
fn exists(path: &Path) -> bool {
    std::fs::symlink_metadata(path).is_ok()
}

/// The name of the DB in a copy of step (4).
const COPY_NAME: &str = "tasks.db";

/// Step (4): the DB at `path` (open as `held`) and its `-wal`, copied into a new private
/// directory, once a copy is made while neither changed and no `-shm` appeared.
fn copied(path: &Path, held: &File) -> Result<tempfile::TempDir, StoreError> {
    let wal = with_suffix(path, "-wal");
    let err = |at: &Path| {
        let at = at.to_path_buf();
        move |source| StoreError::File { path: at, source }
    };
    let stamp = |at: &Path| -> std::io::Result<(u64, u64, i64, i64)> {
        let m = std::fs::symlink_metadata(at)?;
        Ok((m.ino(), m.len(), m.mtime(), m.mtime_nsec()))
    };
    let held_ino = held.metadata().map_err(err(path))?.ino();
    for _ in 0..COPY_TRIES {
        let before = (
            stamp(path).map_err(err(path))?,
            stamp(&wal).map_err(err(&wal))?,
        );
        let dir = tempfile::Builder::new()
            .prefix("prun-db-copy.")
            .tempdir_in(crate::paths::temp_dir())
            .map_err(err(&crate::paths::temp_dir()))?;
        let to = dir.path().join(COPY_NAME);
        copy_file(path, &to).map_err(err(path))?;
        copy_file(&wal, &with_suffix(&to, "-wal")).map_err(err(&wal))?;
        let after = (
            stamp(path).map_err(err(path))?,
            stamp(&wal).map_err(err(&wal))?,
        );
        let shm = with_suffix(path, "-shm");
        if before == after && after.0.0 == held_ino && !exists(&shm) {
            return Ok(dir);
        }
    }
    Err(err(path)(std::io::Error::other(format!(
        "its -wal file has no -shm beside it, so it is read from a copy, and it changed \
         while each of {COPY_TRIES} copies was made (a run is writing it): try again"
    ))))
}

/// Copies the file at `from` (not through a link) into a new file `to`.
fn copy_file(from: &Path, to: &Path) -> std::io::Result<()> {
    let mut src = open_readable(from)?;
    let mut dst = OpenOptions::new().write(true).create_new(true).open(to)?;
    std::io::copy(&mut src, &mut dst)?;
    Ok(())
}

/// Opens `path` for reading, not through a symbolic link (as every state file) and without
/// waiting on a FIFO. A permission refused is told with the file's owner and mode, or the
/// directory that cannot be entered.
fn open_readable(path: &Path) -> std::io::Result<File> {
    OpenOptions::new()
        .read(true)
        .custom_flags(nix::libc::O_NOFOLLOW | nix::libc::O_NONBLOCK)
        .open(path)
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::PermissionDenied => refused(path, e),
            _ => crate::paths::refused_link(path, e),
        })
}

/// Why the user may not read `path`: the file's owner and mode, or the directory above
/// it that they may not enter; and what its owner can do about it.
fn refused(path: &Path, e: std::io::Error) -> std::io::Error {
    use nix::unistd::{AccessFlags, access};
    let (what, at, may, chmod) = match std::fs::metadata(path) {
        Ok(_) => ("", path, "read", "a+r"),
        Err(_) => {
            let mut above: Vec<&Path> = path.ancestors().skip(1).collect();
            above.reverse();
            let closed = above
                .into_iter()
                .find(|d| !d.as_os_str().is_empty() && access(*d, AccessFlags::X_OK).is_err());
            match closed {
                Some(d) => ("the directory ", d, "enter", "a+x"),
                None => return e,
            }
        }
    };
    let Ok(meta) = std::fs::metadata(at) else {
        return e;
    };
    std::io::Error::new(
        e.kind(),
        format!(
            "{what}{} is {}, and you ({}) may not {may} it; its owner can let you: chmod {chmod} {}",
            at.display(),
            crate::paths::describe(&meta),
            crate::paths::user_text(Uid::effective()),
            at.display()
        ),
    )
}

/// Takes the read lock of the module's step (1) on `file`, waiting while a connection
/// holds its exclusive lock (at most [`LOCK_PATIENCE`]). Where the file system has no such
/// locks (the kernel refuses them), the DB is read without: it is then as SQLite's own
/// `immutable` reader sees it, which a run that ends meanwhile can change under it.
fn hold(file: &File, path: &Path) -> Result<(), StoreError> {
    read_lock(file, path, SHARED_FIRST, SHARED_SIZE)?;
    read_lock(file, path, READER_BYTE, 1)
}

/// A read lock on `len` bytes of `file` from `start`, waited for as [`hold`] says.
fn read_lock(file: &File, path: &Path, start: i64, len: i64) -> Result<(), StoreError> {
    let lock = byte_lock(nix::libc::F_RDLCK, start, len);
    let deadline = Instant::now() + LOCK_PATIENCE;
    loop {
        match fcntl(file, FcntlArg::F_OFD_SETLK(&lock)) {
            Ok(_) => return Ok(()),
            Err(nix::errno::Errno::EAGAIN | nix::errno::Errno::EACCES)
                if Instant::now() < deadline =>
            {
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(e @ (nix::errno::Errno::EAGAIN | nix::errno::Errno::EACCES)) => {
                return Err(StoreError::File {
                    path: path.to_path_buf(),
                    source: std::io::Error::other(format!(
                        "failed to take a read lock on it ({e}): another process has held it \
                         locked for writing for {}s",
                        LOCK_PATIENCE.as_secs()
                    )),
                });
            }
            Err(_) => return Ok(()),
        }
    }
}

/// A lock of type `kind` on `len` bytes from `start`.
fn byte_lock(kind: i32, start: i64, len: i64) -> nix::libc::flock {
    nix::libc::flock {
        l_type: kind as i16,
        l_whence: nix::libc::SEEK_SET as i16,
        l_start: start,
        l_len: len,
        l_pid: 0,
    }
}

/// Leave for a run's writer to copy the `-wal` into the DB file at `path` (a checkpoint),
/// held until it is dropped: a write lock on [`READER_BYTE`], which no reader of the DB
/// file then holds (step 2). `None` while one does: the checkpoint waits for a later
/// batch. Where the file system has no such locks, readers have none either, and the
/// leave is given without a lock.
pub(super) fn checkpointing(path: &Path) -> Option<Checkpointing> {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(nix::libc::O_NOFOLLOW | nix::libc::O_NONBLOCK)
        .open(path)
        .ok()?;
    let lock = byte_lock(nix::libc::F_WRLCK, READER_BYTE, 1);
    match fcntl(&file, FcntlArg::F_OFD_SETLK(&lock)) {
        Ok(_) => Some(Checkpointing { _file: Some(file) }),
        Err(nix::errno::Errno::EAGAIN | nix::errno::Errno::EACCES) => None,
        Err(_) => Some(Checkpointing { _file: None }),
    }
}

/// See [`checkpointing`].
pub(super) struct Checkpointing {
    /// The file whose open description holds the lock.
    _file: Option<File>,
}

/// `path` as an SQLite URI (`file:/a/b%3F.db`): every byte but an unreserved one or `/`
/// is %-escaped, so that a `?` or `#` in a name is a name.
fn uri_of(path: &Path) -> String {
    use std::fmt::Write;
    let mut uri = String::from("file:");
    for &b in path.as_os_str().as_encoded_bytes() {
        if b.is_ascii_alphanumeric() || b"/-_.~".contains(&b) {
            uri.push(char::from(b));
        } else {
            let _ = write!(uri, "%{b:02X}");
        }
    }
    uri
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_path_is_a_uri_whatever_its_characters() {
        assert_eq!(
            uri_of(Path::new("/a b/t?.db#1%")),
            "file:/a%20b/t%3F.db%231%25"
        );
        assert_eq!(uri_of(Path::new("rel/t.db")), "file:rel/t.db");
    }
}

//! Where prun keeps per-script state, and the checks that keep it private.
//!
//! The state of a script (its task DB, `--lock` file and logs) lives in
//! `<state root>/<script>-<hash>/`, the hash of its canonical path: every path that
//! resolves to it (`s.rhai`, `./s.rhai`, `/abs/s.rhai`, a symbolic link) shares it, two
//! hard links (or a file reached through a bind mount) each have their own. `--lock` also
//! takes a lock per file ([`lock_files`]), so that it holds across every path to it. The state root is `$XDG_STATE_HOME/prun`, else
//! `$HOME/.local/state/prun`; without `HOME` (`env -i`, a bare systemd unit) it is
//! `.local/state/prun` under the home directory of the user's passwd entry (so that a cron
//! run and a shell run of the same script share their cache and lock), and only where that
//! home does not exist (or is `/`) `$TMPDIR/prun-<uid>`.
//!
//! prun runs as root from cron, and what its state holds ends up in commands: a cached
//! result is interpolated into shell strings, a lock file is truncated and written. So
//! every directory of its own that prun keeps state in is checked the way tmux and
//! ssh-agent check theirs ([`private_state_dir`]): it must be a real directory (not a
//! symbolic link) owned by the effective user; prun creates it with mode 0700 and tightens
//! an older, more open one to 0700. A directory owned by anyone else is never used: the
//! run stops with an error naming it, its owner and its mode; so does a directory above
//! the state root that another user could write ([`private_state_dir`]). State files are opened
//! without following symbolic links and must belong to the user ([`open_private_file`]).

use std::fs::{DirBuilder, File, Metadata, OpenOptions, Permissions};
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use nix::unistd::{Uid, User};
use thiserror::Error;

mod looked;

use looked::Looked;

/// A path as a message about it names it: a relative one followed by the working
/// directory it is relative to (`sync.rhai (in /root)`). Under cron the working directory
/// is `/` or `HOME`, rarely where the user thought. Control characters in either are
/// written out (see [`crate::shown::visible`]).
pub(crate) fn shown(path: &Path) -> Shown<'_> {
    Shown(path)
}

/// See [`shown`].
pub(crate) struct Shown<'a>(&'a Path);

impl std::fmt::Display for Shown<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}{}", crate::shown::path(self.0), in_cwd(self.0))
    }
}

/// ` (in CWD)` after a relative path, nothing after an absolute one (or when the working
/// directory is gone).
pub(crate) fn in_cwd(path: &Path) -> String {
    match std::env::current_dir() {
        Ok(cwd) if path.is_relative() => format!(" (in {})", crate::shown::path(&cwd)),
        _ => String::new(),
    }
}

/// A directory prun refuses to keep its state in, or could not create; or root's `PATH`,
/// which it refuses to run with.
#[derive(Debug, Error)]
pub(crate) enum StateDirError {
    #[error(
        "failed to create the state directory {}: {source}",
        crate::shown::path(path)
    )]
    Create {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error(
        "refusing to keep prun's state in {}: {why}; prun only uses a directory that belongs \
         to you ({}) and no other user can write: remove it, or set XDG_STATE_HOME",
        crate::shown::path(path),
        user_text(Uid::effective())
    )]
    Unsafe { path: PathBuf, why: String },
    #[error(
        "refusing to keep prun's state in {}: {} above it is {why}, so another user could \
         replace what prun keeps there; set XDG_STATE_HOME to a directory of yours",
        crate::shown::path(path),
        crate::shown::path(above)
    )]
    UnsafeAbove {
        path: PathBuf,
        above: PathBuf,
        why: String,
    },
    /// Root's `PATH` holds an entry that is not an absolute directory (see
    /// [`root_path_is_safe`]).
    #[error(
        "refusing to run as root with {entry} in PATH: programs would be looked for in the \
         working directory ({}), where another user may put one of their own; remove it \
         from PATH (give a program of that directory by its path, ./tool)",
        std::env::current_dir().map_or_else(|_| "unknown".into(), |d| crate::shown::path(&d))
    )]
    RelativePath { entry: String },
    /// Root's `PATH` holds a directory another user could put a program in (see
    /// [`why_others_could_add_to`]).
    #[error(
        "refusing to run as root with {} in PATH: {why}, so another user could put a \
         program there (a `true`, an `ls`) that root would run; remove it from PATH, or \
         make it root's and writable by root alone (chown root, chmod go-w)",
        crate::shown::path(entry)
    )]
    OpenPathEntry { entry: PathBuf, why: String },
    /// Root's `TMPDIR` is a directory another user could change (see
    /// [`root_environment_is_safe`]).
    #[error(
        "refusing to run as root with TMPDIR={}: {what} is {why}, so another user could \
         swap the temporary directories prun and its commands make there; set TMPDIR to a \
         directory only root can change, or unset it (for /tmp)",
        crate::shown::path(dir)
    )]
    UnsafeTmpdir {
        dir: PathBuf,
        what: String,
        why: String,
    },
}

/// Under root, checks the environment that decides where programs and temporary files
/// are: every entry of `PATH` must be an absolute directory (`.`, an empty entry, which
/// means `.`, or `bin` would have root run a program found relative to its working
/// directory, which another user may be able to write, as soon as they put a `tar` or an
/// `ls` there) that only root can add programs to (not a directory of another user's,
/// nor one anyone may write, sticky or not: see [`why_others_could_add_to`]), and `TMPDIR`, with the directories above it, must be root's and writable
/// by no one else unless sticky (`/tmp`): whoever can write it could rename a private
/// temporary directory away and put theirs in its place (a `tempdir()`, the logs'
/// fallback, the ssh executor's connection sockets). `sudo -E` passes on the user's own.
pub(crate) fn root_environment_is_safe() -> Result<(), StateDirError> {
    if !Uid::effective().is_root() {
        return Ok(());
    }
    // Most entries of `PATH` share the directories above them (`/usr`, `/`), and TMPDIR
    // is often one of them: each is looked at once.
    let mut looked = Looked::default();
    let root_group = nix::unistd::Gid::effective().as_raw();
    root_path_is_safe(&mut looked, root_group)?;
    let Some(given) = std::env::var_os("TMPDIR").filter(|t| !t.is_empty()) else {
        return Ok(());
    };
    let given = PathBuf::from(given);
    // A missing one (or one that vanishes meanwhile) fails where it is used, naming it.
    let Some(real) = looked.real(&given) else {
        return Ok(());
    };
    match changeable_by_others(&real, &mut looked, root_group).unwrap_or(None) {
        None => Ok(()),
        Some((p, meta)) => Err(StateDirError::UnsafeTmpdir {
            what: if p == real {
                "it".into()
            } else {
                format!("{} above it", crate::shown::path(&p))
            },
            dir: given,
            why: describe(&meta),
        }),
    }
}

/// See [`root_environment_is_safe`].
fn root_path_is_safe(looked: &mut Looked, root_group: u32) -> Result<(), StateDirError> {
    let Some(path) = std::env::var_os("PATH") else {
        return Ok(());
    };
    let entries = || path.as_encoded_bytes().split(|&b| b == b':');
    match entries().find(|e| !e.starts_with(b"/")) {
        None => {}
        Some([]) => {
            return Err(StateDirError::RelativePath {
                entry: "an empty entry".into(),
            });
        }
        Some(e) => {
            return Err(StateDirError::RelativePath {
                entry: format!("{:?}", String::from_utf8_lossy(e)),
            });
        }
    }
    let mut seen = std::collections::HashSet::new();
    for e in entries().filter(|e| seen.insert(*e)) {
        let entry = Path::new(std::ffi::OsStr::from_bytes(e));
        if let Some(why) = why_others_could_add_to(entry, looked, root_group) {
            return Err(StateDirError::OpenPathEntry {
                entry: entry.to_path_buf(),
                why,
            });
        }
    }
    Ok(())
}

/// Under root, why another user could put a program in `dir`, an entry of `PATH`, if
/// they could: as for a directory root keeps files in ([`why_root_may_not_use`]), and
/// also when it (or, missing, the directory it would be made in) is sticky and anyone
/// may write it: a sticky directory keeps a user from replacing root's files, not from
/// adding a `true` of their own. `root_group` is root's effective group.
fn why_others_could_add_to(dir: &Path, looked: &mut Looked, root_group: u32) -> Option<String> {
    let real = match judge_for_root(dir, looked, root_group) {
        ForRoot::Usable(real) => real?,
        ForRoot::Refused(why) => return Some(why),
    };
    let meta = looked.stat_real(&real).ok()?;
    let mode = meta.mode();
    (mode & 0o002 != 0 || (mode & 0o020 != 0 && meta.gid() != root_group))
        .then(|| format!("{} is {}", crate::shown::path(&real), describe(&meta)))
}

/// The state directory of one script (not created: see [`private_state_dir`]).
pub(crate) fn script_state_dir(script: &Path) -> PathBuf {
    state_dir_of(&script_identity(script))
}

/// The state directory of the script whose identity is `abs` (see [`script_identity`]).
pub(crate) fn state_dir_of(abs: &Path) -> PathBuf {
    state_dir_in(&state_root(), abs)
}

/// The state directory of the script whose identity is `abs`, in `root`.
pub(crate) fn state_dir_in(root: &Path, abs: &Path) -> PathBuf {
    let stem = abs
        .file_stem()
        .map_or_else(|| "script".into(), |s| s.to_string_lossy().into_owned());
    let key = format!(
        "{stem}-{:08x}",
        crate::fnv::hash64(abs.as_os_str().as_encoded_bytes()) as u32
    );
    root.join(key)
}

/// The path that names `script` whatever way it is reached (`s.rhai`, `./s.rhai`, a link
/// to it): its canonical path, or the path as given when it has none (a script given as
/// text by a library caller, a file since removed). Its state directory is named after
/// it, and the task DB tells the runs of scripts sharing it apart by it.
pub(crate) fn script_identity(script: &Path) -> PathBuf {
    std::fs::canonicalize(script).unwrap_or_else(|_| script.to_path_buf())
}

/// A file `--lock` takes (see [`lock_files`]).
pub(crate) struct LockFile {
    pub(crate) path: PathBuf,
    /// Whether it is removed when released (see [`HeldLock`]).
    removed: bool,
}

/// The files `--lock` takes, in order: `run.lock` in the script's state directory
/// `state_dir` (one lock per path, which an editor's save by rename keeps), then, when
/// the script is a file, `<state root>/file-locks/<device>-<inode>.lock` (one lock per
/// file, whatever path reaches it: a hard link, a bind mount). The directory is created
/// private (see [`private_dir`]). The second is removed when released: every save by
/// rename gives the script a new inode, and so a new lock file, which would otherwise
/// stay for ever.
pub(crate) fn lock_files(script: &Path, state_dir: &Path) -> Result<Vec<LockFile>, StateDirError> {
    use std::os::unix::fs::MetadataExt;
    let mut files = vec![LockFile {
        path: state_dir.join("run.lock"),
        removed: false,
    }];
    if let Ok(meta) = std::fs::metadata(script) {
        let dir = state_root().join("file-locks");
        private_dir(&dir)?;
        files.push(LockFile {
            path: dir.join(format!("{}-{}.lock", meta.dev(), meta.ino())),
            removed: true,
        });
    }
    Ok(files)
}

/// Whether `path` still names `file`, which was opened at it (the same device and
/// inode, the link not followed). A lock taken on a file that its last holder removed
/// meanwhile (see [`HeldLock`]) is on a file no later run opens: it must be taken again
/// on the file the path names now.
pub(crate) fn still_names(path: &Path, file: &File) -> bool {
    match (std::fs::symlink_metadata(path), file.metadata()) {
        (Ok(named), Ok(held)) => named.dev() == held.dev() && named.ino() == held.ino(),
        _ => false,
    }
}

/// An `flock` held on a [`LockFile`] that [`still_names`] said its path names. When it
/// is dropped, a file to remove is removed first, while still held, and then released:
/// a run waiting on it meanwhile gets a lock on a removed file, sees so, and opens the
/// path again; so two runs never both hold a lock on a file the path names.
pub(crate) struct HeldLock {
    /// Removed before `file` closes: the fields drop in this order.
    remove: Option<PathBuf>,
    file: File,
}

impl HeldLock {
    /// `file`, opened at `lock`'s path and locked.
    pub(crate) fn new(file: File, lock: &LockFile) -> HeldLock {
        HeldLock {
            remove: lock.removed.then(|| lock.path.clone()),
            file,
        }
    }
}

impl Drop for HeldLock {
    fn drop(&mut self) {
        if let Some(path) = &self.remove
            && still_names(path, &self.file)
        {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// Creates (or checks) the state directory of a script and its `logs` directory, and
/// returns the state directory: every directory from the state root down is private to
/// the user (see the module documentation).
pub(crate) fn private_state_dir(script: &Path) -> Result<PathBuf, StateDirError> {
    make_private_state_dir(script_state_dir(script))
}

/// [`private_state_dir`] of the state directory `dir` (see [`state_dir_of`]).
pub(crate) fn make_private_state_dir(dir: PathBuf) -> Result<PathBuf, StateDirError> {
    let root = dir.parent().unwrap_or(&dir);
    no_one_else_can_replace(root)?;
    for d in [root, &dir, &dir.join("logs")] {
        private_dir(d)?;
    }
    Ok(dir)
}

/// Checks the directories above the state root, as OpenSSH checks those above
/// `authorized_keys`: each must belong to the effective user or to root, and no other user
/// may write to it (unless it is sticky, like `/tmp`, or only the user's own group may).
/// Whoever can write a directory above the state could rename prun's directories away and
/// put their own in place. Both the path as given and the one its links lead to are
/// checked.
fn no_one_else_can_replace(root: &Path) -> Result<(), StateDirError> {
    no_one_else_can_replace_in(root, &mut Looked::default())
}

/// [`no_one_else_can_replace`], with what `looked` has already seen: without links, both
/// ways are the same directories, each looked at once.
fn no_one_else_can_replace_in(root: &Path, looked: &mut Looked) -> Result<(), StateDirError> {
    let me = Uid::effective().as_raw();
    let my_group = nix::unistd::Gid::effective().as_raw();
    let unsafe_above = |meta: &Metadata| {
        let owner_ok = meta.uid() == me || meta.uid() == 0;
        let writable = !meta.file_type().is_symlink() && others_may_write(meta, my_group);
        !owner_ok || writable
    };
    let refused = |above: &Path, meta: &Metadata| StateDirError::UnsafeAbove {
        path: root.to_path_buf(),
        above: above.to_path_buf(),
        why: describe(meta),
    };
    let Some(parent) = root.parent() else {
        return Ok(());
    };
    // The deepest one, as each directory from the root up was looked at before.
    let mut unsafe_way: Option<(PathBuf, Metadata)> = None;
    let real = looked.walk_seeing(parent, &mut |path, meta| {
        if unsafe_above(meta) {
            unsafe_way = Some((path.to_path_buf(), meta.clone()));
        }
    });
    if let Some((above, meta)) = unsafe_way {
        return Err(refused(&above, &meta));
    }
    for above in real.iter().flat_map(|r| r.ancestors()) {
        if let Ok(meta) = looked.lstat(above)
            && unsafe_above(&meta)
        {
            return Err(refused(above, &meta));
        }
    }
    Ok(())
}

/// Whether `dir` is the user's own to read state from, as [`private_state_dir`] would
/// keep it: a real directory (not a symbolic link) of the effective user that no other
/// user may write, under directories no other user could replace it in. For readers that
/// make nothing (the hints that name scripts): what another user made there is not read.
pub(crate) fn is_own_dir(dir: &Path) -> bool {
    std::fs::symlink_metadata(dir).is_ok_and(|m| {
        m.is_dir()
            && m.uid() == Uid::effective().as_raw()
            && !others_may_write(&m, nix::unistd::Gid::effective().as_raw())
    }) && no_one_else_can_replace(dir).is_ok()
}

/// Whether a user other than the owner may write to what `meta` describes: anyone may
/// (unless it is a sticky directory, like `/tmp`), or its group may and that group is not
/// `my_group`.
fn others_may_write(meta: &Metadata, my_group: u32) -> bool {
    let mode = meta.mode();
    let sticky = meta.is_dir() && mode & 0o1000 != 0;
    (mode & 0o002 != 0 || (mode & 0o020 != 0 && meta.gid() != my_group)) && !sticky
}

/// The path to read a script or module from. Under root it is the file's canonical path,
/// once the file and every directory above it are found to be root's and writable by root
/// alone (a sticky directory, like `/tmp`, being allowed): a file another user could
/// change, or put in its place, would run as root. The file is then read by that path,
/// whose directories no one else can change, not through the links of the path given.
/// Other users read `path` as it is: the code they run is theirs to trust.
pub(crate) fn code_to_run(path: &Path) -> io::Result<PathBuf> {
    if !Uid::effective().is_root() {
        return Ok(path.to_path_buf());
    }
    let real = std::fs::canonicalize(path)?;
    let root_group = nix::unistd::Gid::effective().as_raw();
    match changeable_by_others(&real, &mut Looked::default(), root_group)? {
        None => Ok(real),
        Some((p, meta)) => {
            let what = if p == real {
                "it".to_string()
            } else {
                format!("{} above it", crate::shown::path(&p))
            };
            Err(io::Error::other(format!(
                "refusing to run it as root: {what} is {}, so another user could change \
                 what root runs; make it root's and writable by root alone (chown root, \
                 chmod go-w), or run the script as a user who may run that code",
                describe(&meta)
            )))
        }
    }
}

/// Under root, why `dir` (a `log_dir`, the parent of a `tempdir(parent)`) may not hold
/// the private directories root makes there, if it may not: it must be a directory only
/// root can change (a sticky one, like `/tmp`, being allowed), as must every directory
/// above it, whether `dir` exists yet or not, and no symbolic link on its path may belong
/// to another user (who could point it elsewhere). Whoever can write there could rename
/// a private directory of root's away and put theirs, or a link, in its place, where the
/// logs (what commands print, credentials included) or the files of a run would then go.
pub(crate) fn why_root_may_not_use(dir: &Path) -> Option<String> {
    if !Uid::effective().is_root() {
        return None;
    }
    let root_group = nix::unistd::Gid::effective().as_raw();
    match judge_for_root(dir, &mut Looked::default(), root_group) {
        ForRoot::Usable(_) => None,
        ForRoot::Refused(why) => Some(why),
    }
}

/// What [`judge_for_root`] found of a directory.
enum ForRoot {
    /// Root may use it: its canonical path (of the directory it would be made in, when
    /// missing), if it has one.
    Usable(Option<PathBuf>),
    /// Why root may not.
    Refused(String),
}

/// [`why_root_may_not_use`] for root, with what `looked` has already seen.
fn judge_for_root(dir: &Path, looked: &mut Looked, root_group: u32) -> ForRoot {
    let abs = if dir.is_absolute() {
        dir.to_path_buf()
    } else {
        std::env::current_dir().unwrap_or_default().join(dir)
    };
    // The deepest one, as each directory from `dir` up was looked at before.
    let mut theirs: Option<(PathBuf, u32)> = None;
    let real = looked.walk_seeing(&abs, &mut |path, meta| {
        if meta.file_type().is_symlink() && meta.uid() != 0 {
            theirs = Some((path.to_path_buf(), meta.uid()));
        }
    });
    if let Some((link, uid)) = theirs {
        return ForRoot::Refused(format!(
            "{} is a symbolic link owned by {}",
            crate::shown::path(&link),
            user_text(Uid::from_raw(uid))
        ));
    }
    let Some(real) = real else {
        return ForRoot::Usable(None);
    };
    match changeable_by_others(&real, looked, root_group) {
        Ok(None) => ForRoot::Usable(Some(real)),
        Ok(Some((p, meta))) => {
            ForRoot::Refused(format!("{} is {}", crate::shown::path(&p), describe(&meta)))
        }
        Err(e) => ForRoot::Refused(format!("{}: {e}", crate::shown::path(&real))),
    }
}

/// The first of `real` (a canonical path, read by root) and the directories above it that
/// is not root's, or that another user may write (a sticky directory excepted; one of
/// `root_group`, root's effective group, may), with its metadata.
fn changeable_by_others(
    real: &Path,
    looked: &mut Looked,
    root_group: u32,
) -> io::Result<Option<(PathBuf, Metadata)>> {
    looked.first_unfit(real, |meta| {
        meta.uid() != 0 || others_may_write(meta, root_group)
    })
}

/// The directory for temporary files: `$TMPDIR`, or `/tmp` when it is unset or empty.
/// `std::env::temp_dir()` takes an empty `TMPDIR` as it is, a relative path that is the
/// working directory: temporary directories landed among the user's files (under cron,
/// the home directory), and under root in a directory its check of `TMPDIR` had not
/// looked at. glibc, mktemp and Python read an empty one as unset too.
pub(crate) fn temp_dir() -> PathBuf {
    std::env::var_os("TMPDIR")
        .filter(|t| !t.is_empty())
        .map_or_else(|| PathBuf::from("/tmp"), PathBuf::from)
}

/// The directory every script's state directory is in, named `<stem>-<hash>` (see
/// [`script_state_dir`]): `$XDG_STATE_HOME/prun` and the others [`state_root_of`] says.
pub(crate) fn state_root() -> PathBuf {
    let uid = Uid::effective();
    state_root_of(
        std::env::var_os("XDG_STATE_HOME").map(PathBuf::from),
        std::env::var_os("HOME").map(PathBuf::from),
        || User::from_uid(uid).ok().flatten().map(|u| u.dir),
        &temp_dir().join(format!("prun-{uid}")),
        uid.as_raw(),
    )
}

/// Where prun keeps its state: under `$XDG_STATE_HOME` (absolute), else under a home
/// directory that exists and belongs to `uid`, `$HOME`'s or the passwd entry's
/// (`passwd_home`), else in `temp` (`/tmp/prun-UID`). A home that does not exist is never
/// created: `HOME=/nonexistent` (the `nobody` user's, a bare systemd unit's) must not make
/// prun create `/nonexistent`. A `HOME` of another user (root's run under `sudo -E`) is
/// not used: root's state stays in root's home, where its cron runs keep theirs.
fn state_root_of(
    xdg: Option<PathBuf>,
    home: Option<PathBuf>,
    passwd_home: impl FnOnce() -> Option<PathBuf>,
    temp: &Path,
    uid: u32,
) -> PathBuf {
    if let Some(x) = xdg.filter(|p| p.is_absolute()) {
        return x.join("prun");
    }
    let usable = |h: &PathBuf| {
        h.is_absolute()
            && h != Path::new("/")
            && std::fs::metadata(h).is_ok_and(|m| m.is_dir() && m.uid() == uid)
    };
    match home.filter(usable).or_else(|| passwd_home().filter(usable)) {
        Some(h) => h.join(".local/state/prun"),
        None => temp.to_path_buf(),
    }
}

/// Makes sure `dir` is a directory private to the user: created with mode 0700 (its
/// missing parents too) when missing; when it exists, a real directory owned by the
/// effective user, tightened to 0700. Anything else is an [`StateDirError::Unsafe`].
pub(crate) fn private_dir(dir: &Path) -> Result<(), StateDirError> {
    let create = |source| StateDirError::Create {
        path: dir.to_path_buf(),
        source,
    };
    let meta = match std::fs::symlink_metadata(dir) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
                DirBuilder::new()
                    .recursive(true)
                    .mode(0o700)
                    .create(parent)
                    .map_err(create)?;
            }
            match DirBuilder::new().mode(0o700).create(dir) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(create(e)),
            }
            std::fs::symlink_metadata(dir).map_err(create)?
        }
        Err(e) => return Err(create(e)),
    };
    let unsafe_because = |why: String| StateDirError::Unsafe {
        path: dir.to_path_buf(),
        why,
    };
    if meta.file_type().is_symlink() {
        let target = std::fs::read_link(dir).unwrap_or_default();
        return Err(unsafe_because(format!(
            "it is a symbolic link (to {}), {}",
            crate::shown::path(&target),
            describe(&meta)
        )));
    }
    if !meta.is_dir() {
        return Err(unsafe_because(format!(
            "it is not a directory, {}",
            describe(&meta)
        )));
    }
    if meta.uid() != Uid::effective().as_raw() {
        return Err(unsafe_because(describe(&meta)));
    }
    // The owner can always make it private: it was made by this user, perhaps by an older
    // prun with a permissive umask.
    if meta.mode() & 0o7777 != 0o700 {
        std::fs::set_permissions(dir, Permissions::from_mode(0o700)).map_err(create)?;
    }
    Ok(())
}

/// Checks the directory a task DB is kept in (`--db`, `task_db`): it belongs to the user or
/// to root, and no other user may write it, sticky or not (`/tmp` is refused), nor replace
/// it ([`no_one_else_can_replace`]). SQLite reads the files it finds beside a DB as part of
/// it (a `-journal` is played back into the DB, a `-wal` read as its newest pages), so
/// whoever can create one there writes the cached results that commands are made from;
/// checking such a file before SQLite opens it would leave a moment to create it in.
pub(crate) fn check_db_dir(db: &Path) -> io::Result<()> {
    let dir = db
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let refused = |why: String| {
        io::Error::other(format!(
            "refusing to keep a task DB in {why}, so another user could put a file beside \
             it that SQLite would read as part of the DB (a -journal is played back into \
             it); keep it in a directory only you ({}) can write",
            user_text(Uid::effective())
        ))
    };
    let mut looked = Looked::default();
    no_one_else_can_replace_in(db, &mut looked).map_err(|e| match e {
        StateDirError::UnsafeAbove { above, why, .. } => refused(format!(
            "{}: {} above it is {why}",
            crate::shown::path(dir),
            crate::shown::path(&above)
        )),
        e => io::Error::other(e.to_string()),
    })?;
    // The directory was resolved above, as the one over the DB.
    let meta = match looked.real(dir) {
        Some(real) => looked.stat_real(&real)?,
        None => std::fs::metadata(dir)?,
    };
    let me = Uid::effective().as_raw();
    let mode = meta.mode();
    let others_write = mode & 0o002 != 0
        || (mode & 0o020 != 0 && meta.gid() != nix::unistd::Gid::effective().as_raw());
    if (meta.uid() != me && meta.uid() != 0) || others_write {
        return Err(refused(format!(
            "{}: it is {}",
            crate::shown::path(dir),
            describe(&meta)
        )));
    }
    Ok(())
}

/// Who besides its owner may read a state file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Readers {
    /// No one: a lock file. A more open mode is tightened to 0600.
    Owner,
    /// Whoever its owner lets (`chmod a+r`): the task DB, whose history a team may read
    /// (`prun history`, `prun report`). Only its owner may write it: a mode that lets
    /// others write, or execute, is tightened (0666 to 0644), read permission is kept.
    AsOwnerSays,
}

/// Opens a state file (a lock, a task DB) for reading and writing, creating it with mode
/// 0600 when missing. It is not opened through a symbolic link, it must be a regular file
/// owned by the effective user, and a more open mode is tightened as `readers` says.
pub(crate) fn open_private_file(path: &Path, readers: Readers) -> io::Result<File> {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .custom_flags(nix::libc::O_NOFOLLOW | nix::libc::O_NONBLOCK)
        .open(path)
        .map_err(|e| refused_link(path, e))?;
    check_private_file(path, &file, readers)?;
    Ok(file)
}

/// Checks a state file that may exist (the `-wal` and `-shm` files of a task DB) like
/// [`open_private_file`] does; a missing file is fine.
pub(crate) fn check_existing_private_file(path: &Path, readers: Readers) -> io::Result<()> {
    match OpenOptions::new()
        .read(true)
        .custom_flags(nix::libc::O_NOFOLLOW | nix::libc::O_NONBLOCK)
        .open(path)
    {
        Ok(file) => check_private_file(path, &file, readers),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(refused_link(path, e)),
    }
}

/// Where writing to `path` lands (`--json`, `report --html`, `write_file`, a command's
/// `stdout:` file): `path` itself, or, when it is a symbolic link, where its chain of
/// links ends. A link is followed only when it belongs to the effective user or to root,
/// the file's own as well as those among its directories ([`untrusted_link_above`]), as the kernel's `protected_symlinks`
/// does in `/tmp` (but in any directory, and also for a link read rather than opened):
/// in a directory another user can write (`/tmp/x`, a shared project directory) that user
/// could otherwise point `report.json` at `/etc/passwd` and have root's run replace it.
/// Each link is opened (`O_PATH | O_NOFOLLOW`) before it is checked and read, so it cannot
/// be swapped in between. The last component of the path returned was not a link when
/// looked at (open it with `O_NOFOLLOW`, or rename over it, so a link planted since is not
/// followed either), unless it is a link of `/proc` naming no path (`/proc/self/fd/1` of
/// a pipe), which only opening it can follow.
pub(crate) fn trusted_write_target(path: &Path) -> io::Result<PathBuf> {
    let mut current = path.to_path_buf();
    for _ in 0..40 {
        untrusted_link_above(&current)?;
        let link = match OpenOptions::new()
            .read(true)
            .custom_flags(nix::libc::O_PATH | nix::libc::O_NOFOLLOW)
            .open(&current)
        {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(current),
            Err(e) => return Err(e),
        };
        let meta = link.metadata()?;
        if !meta.file_type().is_symlink() {
            return Ok(current);
        }
        trusted_link(&current, &meta)?;
        let target = PathBuf::from(nix::fcntl::readlinkat(&link, "")?);
        let next = match current.parent() {
            Some(dir) if target.is_relative() => dir.join(target),
            _ => target,
        };
        // A link of /proc (`/dev/stdout` leads to `/proc/self/fd/1`, which reads
        // `pipe:[1234]`) names no path but opens the file it stands for.
        if std::fs::symlink_metadata(&next).is_err() && std::fs::metadata(&current).is_ok() {
            return Ok(current);
        }
        current = next;
    }
    Err(io::Error::other(format!(
        "{}: too many levels of symbolic links",
        crate::shown::path(path)
    )))
}

/// Refuses a symbolic link of another user (not root) among the directories of `path`
/// ([`trusted_link`]): `/tmp/work -> /etc`, planted before root's script ran `mkdir -p
/// /tmp/work` (which a link to a directory satisfies), would have `/tmp/work/passwd`
/// replace `/etc/passwd`. Checked before the file is opened: one who owns a directory on
/// the path could still swap a directory of theirs for a link in between, as the kernel's
/// `protected_symlinks` (on in most distributions) keeps them from doing in `/tmp`.
fn untrusted_link_above(path: &Path) -> io::Result<()> {
    for dir in path
        .ancestors()
        .skip(1)
        .filter(|d| !d.as_os_str().is_empty())
    {
        if let Ok(meta) = std::fs::symlink_metadata(dir)
            && meta.file_type().is_symlink()
        {
            trusted_link(dir, &meta)?;
        }
    }
    Ok(())
}

/// Refuses the symbolic link `link` (described by `meta`) unless it belongs to the
/// effective user or to root: another user could point it at any file.
fn trusted_link(link: &Path, meta: &Metadata) -> io::Result<()> {
    let me = Uid::effective();
    if meta.uid() == me.as_raw() || meta.uid() == 0 {
        return Ok(());
    }
    let trusted = if me.is_root() {
        "root".to_string()
    } else {
        format!("you ({}) or to root", user_text(me))
    };
    Err(io::Error::other(format!(
        "{} is a symbolic link {}; prun writes through a link only when it belongs to \
         {trusted} (another user could point it at any file)",
        crate::shown::path(link),
        describe(meta),
    )))
}

/// Opens a path [`trusted_write_target`] returned with `opts`: without following a link
/// planted there since (a link of `/proc` it returned excepted), and without blocking on a
/// FIFO (no reader is `ENXIO`); the file is then back in blocking mode.
pub(crate) fn open_write_target(target: &Path, opts: &mut OpenOptions) -> io::Result<File> {
    use nix::fcntl::{FcntlArg, OFlag, fcntl};
    let magic = std::fs::symlink_metadata(target).is_ok_and(|m| m.file_type().is_symlink());
    let nofollow = if magic { 0 } else { nix::libc::O_NOFOLLOW };
    let file = opts
        .custom_flags(nofollow | nix::libc::O_NONBLOCK)
        .open(target)
        .map_err(|e| {
            if e.raw_os_error() == Some(nix::libc::ELOOP) {
                io::Error::other(format!(
                    "{} became a symbolic link while prun was about to write it; not followed",
                    crate::shown::path(target)
                ))
            } else {
                e
            }
        })?;
    let flags = OFlag::from_bits_truncate(fcntl(&file, FcntlArg::F_GETFL)?);
    fcntl(&file, FcntlArg::F_SETFL(flags - OFlag::O_NONBLOCK))?;
    Ok(file)
}

/// Refuses a file (not a directory) of another user (not root) in a sticky directory
/// anyone can write, like `/tmp`, where `target` is about to be written by prun
/// (`write_file`, a command's `stdout:` or `stderr:` file): it was made there to read
/// what root writes, or, a FIFO, to take it as it comes. The kernel's `protected_regular`
/// and `protected_fifos` refuse such opens, as prun does whatever they say (both are off
/// by default). `meta` is the file's (followed, as opened).
pub(crate) fn not_planted_in_a_shared_directory(target: &Path, meta: &Metadata) -> io::Result<()> {
    if meta.is_dir() || meta.uid() == Uid::effective().as_raw() || meta.uid() == 0 {
        return Ok(());
    }
    let dir = target
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    if std::fs::metadata(dir).is_ok_and(|d| d.mode() & 0o1002 == 0o1002) {
        return Err(io::Error::other(format!(
            "it belongs to {} in a sticky directory anyone can write (like /tmp): another \
             user made it there to read what is written",
            user_text(Uid::from_raw(meta.uid()))
        )));
    }
    Ok(())
}

pub(crate) fn refused_link(path: &Path, e: io::Error) -> io::Error {
    if e.raw_os_error() == Some(nix::libc::ELOOP) {
        io::Error::other(format!(
            "{} is a symbolic link; prun does not follow links to its state files",
            crate::shown::path(path)
        ))
    } else {
        e
    }
}

fn check_private_file(path: &Path, file: &File, readers: Readers) -> io::Result<()> {
    let meta = file.metadata()?;
    if !meta.is_file() || meta.uid() != Uid::effective().as_raw() {
        let kind = if meta.is_file() {
            ""
        } else if meta.file_type().is_fifo() {
            "a FIFO, "
        } else if meta.is_dir() {
            "a directory, "
        } else {
            "not a regular file, "
        };
        return Err(io::Error::other(format!(
            "refusing to use {}: {kind}{}; prun only uses state files that are regular files \
             belonging to you ({})",
            crate::shown::path(path),
            describe(&meta),
            user_text(Uid::effective())
        )));
    }
    let mode = meta.mode() & 0o7777;
    let tight = match readers {
        Readers::Owner => 0o600,
        Readers::AsOwnerSays => mode & 0o644,
    };
    if mode & !tight != 0 {
        file.set_permissions(Permissions::from_mode(tight))?;
    }
    Ok(())
}

/// Why this user may not look at `path` (`EACCES`): the first directory on the way to it
/// that they may not search, with its owner and mode ("the directory /srv/x may not be
/// searched by this user: it is owned by uid 0 (root), mode 0700"). `None` when every
/// directory may be searched.
pub(crate) fn unsearchable(path: &Path) -> Option<String> {
    let full = std::env::current_dir().ok()?.join(path);
    let mut dirs: Vec<&Path> = full.ancestors().skip(1).collect();
    dirs.reverse();
    let dir = dirs.into_iter().find(|d| {
        nix::unistd::access(*d, nix::unistd::AccessFlags::X_OK) == Err(nix::errno::Errno::EACCES)
    })?;
    let how = std::fs::metadata(dir)
        .map_or_else(|_| String::new(), |m| format!(": it is {}", describe(&m)));
    Some(format!(
        "the directory {} may not be searched by this user{how}",
        crate::shown::path(dir)
    ))
}

/// Why `path`, which names no file, names none, when it is a symbolic link: " (it is a
/// symbolic link to TARGET, which does not exist)". The nearest names of its directory
/// would offer the link's own name.
pub(crate) fn dangling_link(path: &Path) -> Option<String> {
    let target = std::fs::read_link(path).ok()?;
    Some(format!(
        " (it is a symbolic link to {}, which does not exist)",
        crate::shown::path(&target)
    ))
}

/// "owned by uid 65534 (nobody), mode 0777".
pub(crate) fn describe(meta: &Metadata) -> String {
    format!(
        "owned by {}, mode {:04o}",
        user_text(Uid::from_raw(meta.uid())),
        meta.mode() & 0o7777
    )
}

/// "uid 65534 (nobody)".
pub(crate) fn user_text(uid: Uid) -> String {
    match User::from_uid(uid).ok().flatten() {
        Some(u) => format!("uid {uid} ({})", u.name),
        None => format!("uid {uid}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_home_that_does_not_exist_is_not_used_nor_created() {
        let dir = tempfile::tempdir().unwrap();
        let home = dir.path().join("home");
        std::fs::create_dir(&home).unwrap();
        let missing = dir.path().join("nonexistent");
        let temp = dir.path().join("prun-0");
        let root = |xdg: Option<&Path>, h: &Path, passwd: &Path| {
            state_root_of(
                xdg.map(Path::to_path_buf),
                Some(h.to_path_buf()),
                || Some(passwd.to_path_buf()),
                &temp,
                Uid::effective().as_raw(),
            )
        };
        assert_eq!(root(None, &home, &missing), home.join(".local/state/prun"));
        assert_eq!(root(None, &missing, &home), home.join(".local/state/prun"));
        assert_eq!(root(None, &missing, &missing), temp);
        // A home of another user is not used.
        let me = Uid::effective().as_raw();
        let other = state_root_of(None, Some(home.clone()), || None, &temp, me + 1);
        assert_eq!(other, temp);
        assert_eq!(root(None, Path::new("relative"), &missing), temp);
        let xdg = dir.path().join("xdg-not-yet");
        assert_eq!(root(Some(&xdg), &missing, &missing), xdg.join("prun"));
        assert!(!missing.exists());
    }

    fn mode(p: &Path) -> u32 {
        std::fs::symlink_metadata(p).unwrap().mode() & 0o7777
    }

    #[test]
    fn missing_directories_are_made_0700_and_open_ones_tightened() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("a/b");
        private_dir(&dir).unwrap();
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(mode(&tmp.path().join("a")), 0o700);
        std::fs::set_permissions(&dir, Permissions::from_mode(0o777)).unwrap();
        private_dir(&dir).unwrap();
        assert_eq!(mode(&dir), 0o700);
    }

    #[test]
    fn a_symlinked_directory_is_refused_with_its_target() {
        let tmp = tempfile::tempdir().unwrap();
        let link = tmp.path().join("link");
        std::os::unix::fs::symlink(tmp.path(), &link).unwrap();
        let e = private_dir(&link).unwrap_err().to_string();
        assert!(e.contains("symbolic link"), "{e}");
        assert!(e.contains(&link.display().to_string()), "{e}");
    }

    #[test]
    fn a_directory_someone_else_owns_is_refused_naming_owner_and_mode() {
        if !Uid::effective().is_root() {
            eprintln!("skipped: only root can give a directory to another user");
            return;
        }
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("theirs");
        std::fs::create_dir(&dir).unwrap();
        std::fs::set_permissions(&dir, Permissions::from_mode(0o777)).unwrap();
        nix::unistd::chown(&dir, Some(Uid::from_raw(65534)), None).unwrap();
        let e = private_dir(&dir).unwrap_err().to_string();
        assert!(e.contains("owned by uid 65534"), "{e}");
        assert!(e.contains("mode 0777"), "{e}");
        assert_eq!(mode(&dir), 0o777, "left as it was");
    }

    #[test]
    fn state_files_are_0600_and_never_opened_through_a_link() {
        let tmp = tempfile::tempdir().unwrap();
        let f = tmp.path().join("f");
        open_private_file(&f, Readers::Owner).unwrap();
        assert_eq!(mode(&f), 0o600);
        std::fs::set_permissions(&f, Permissions::from_mode(0o644)).unwrap();
        check_existing_private_file(&f, Readers::Owner).unwrap();
        assert_eq!(mode(&f), 0o600);
        let victim = tmp.path().join("victim");
        std::fs::write(&victim, "x").unwrap();
        let link = tmp.path().join("link");
        std::os::unix::fs::symlink(&victim, &link).unwrap();
        let e = open_private_file(&link, Readers::Owner)
            .unwrap_err()
            .to_string();
        assert!(e.contains("symbolic link"), "{e}");
        assert!(check_existing_private_file(&link, Readers::Owner).is_err());
        check_existing_private_file(&tmp.path().join("missing"), Readers::Owner).unwrap();
    }

    #[test]
    fn a_task_db_keeps_the_read_permission_its_owner_gave_never_a_write_one() {
        let tmp = tempfile::tempdir().unwrap();
        let f = tmp.path().join("tasks.db");
        open_private_file(&f, Readers::AsOwnerSays).unwrap();
        assert_eq!(mode(&f), 0o600, "private when made");
        for (given, kept) in [
            (0o644, 0o644),
            (0o640, 0o640),
            (0o666, 0o644),
            (0o777, 0o644),
        ] {
            std::fs::set_permissions(&f, Permissions::from_mode(given)).unwrap();
            check_existing_private_file(&f, Readers::AsOwnerSays).unwrap();
            assert_eq!(mode(&f), kept, "{given:o}");
        }
    }
}

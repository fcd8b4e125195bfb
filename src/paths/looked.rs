//! What one check of directories has read of the file system ([`Looked`]): each path is
//! looked at once, however many of the paths checked lead through it. Root's `PATH` has
//! `/usr` and `/` above most of its entries; checked one by one, each entry took every
//! directory above it through `realpath` twice and `stat` twice (about 200 system calls
//! for a common `PATH`); walked here, each directory costs one `lstat`, and each symbolic
//! link one `readlink` more.
//!
//! A [`Looked`] lives for one check only: what it saw may change afterwards, and a later
//! check must look again.

use std::collections::HashMap;
use std::fs::Metadata;
use std::io;
use std::path::{Component, Path, PathBuf};

/// How many symbolic links one resolution follows before it gives up, as the kernel's
/// `ELOOP` does.
const MAX_LINKS: u32 = 40;

/// The file system as one check saw it: each path's `lstat`, and each path's canonical
/// form (the path with every symbolic link, `.` and `..` resolved, as `realpath` gives
/// it), each found once.
#[derive(Default)]
pub(crate) struct Looked {
    /// `lstat` of each path looked at, or the OS error it gave.
    meta: HashMap<PathBuf, Result<Metadata, i32>>,
    /// The canonical path of each absolute path resolved; `None` when it has none (it, or
    /// a directory on its way, is missing, or a link leads nowhere).
    real: HashMap<PathBuf, Option<PathBuf>>,
}

impl Looked {
    /// `lstat` of `path` (its last component not followed).
    pub(crate) fn lstat(&mut self, path: &Path) -> io::Result<Metadata> {
        let seen = self.meta.entry(path.to_path_buf()).or_insert_with(|| {
            std::fs::symlink_metadata(path).map_err(|e| e.raw_os_error().unwrap_or(nix::libc::EIO))
        });
        seen.clone().map_err(io::Error::from_raw_os_error)
    }

    /// `stat` of `real`, a canonical path (see [`Looked::real`]), which no link leads
    /// through: its `lstat`, unless it has become a link since.
    pub(crate) fn stat_real(&mut self, real: &Path) -> io::Result<Metadata> {
        match self.lstat(real)? {
            meta if meta.file_type().is_symlink() => std::fs::metadata(real),
            meta => Ok(meta),
        }
    }

    /// The canonical path of `path` (relative to the working directory when relative),
    /// as `std::fs::canonicalize` gives it; `None` where it gives an error.
    pub(crate) fn real(&mut self, path: &Path) -> Option<PathBuf> {
        self.resolve(&absolute(path)?, 0)
    }

    /// The canonical path of the first of `path` and the directories above it that has one.
    pub(crate) fn nearest_real(&mut self, path: &Path) -> Option<PathBuf> {
        path.ancestors().find_map(|a| self.real(a))
    }

    /// `lstat` of `path` as the kernel does it: the directory above resolved, its last
    /// component not followed (a path that ends in `..` names a directory, never a link).
    /// `None` where `lstat` fails.
    pub(crate) fn lstat_last(&mut self, path: &Path) -> Option<Metadata> {
        let path = absolute(path)?;
        let mut components = path.components();
        match components.next_back()? {
            Component::RootDir => self.lstat(Path::new("/")).ok(),
            Component::Normal(name) => {
                let dir = self.resolve(components.as_path(), 0)?;
                self.lstat(&dir.join(name)).ok()
            }
            Component::ParentDir => {
                let dir = self.resolve(&path, 0)?;
                self.lstat(&dir).ok()
            }
            Component::CurDir | Component::Prefix(_) => None,
        }
    }

    /// [`Looked::real`] of an absolute path, `links` symbolic links already followed on
    /// the way to it.
    fn resolve(&mut self, path: &Path, links: u32) -> Option<PathBuf> {
        if let Some(known) = self.real.get(path) {
            return known.clone();
        }
        let found = self.resolve_first(path, links);
        self.real.insert(path.to_path_buf(), found.clone());
        found
    }

    /// [`Looked::resolve`] of a path not resolved yet: the directory above it first
    /// (resolved once for all the paths below it), then its last component.
    fn resolve_first(&mut self, path: &Path, links: u32) -> Option<PathBuf> {
        let mut components = path.components();
        let last = components.next_back()?;
        let above = components.as_path();
        match last {
            Component::RootDir => Some(PathBuf::from("/")),
            Component::ParentDir => {
                let dir = self.resolve(above, links)?;
                self.lstat(&dir)
                    .ok()
                    .filter(Metadata::is_dir)
                    .map(|_| dir.parent().unwrap_or(&dir).to_path_buf())
            }
            Component::Normal(name) => {
                let dir = self.resolve(above, links)?;
                let here = dir.join(name);
                if !self.lstat(&here).ok()?.file_type().is_symlink() {
                    return Some(here);
                }
                if links >= MAX_LINKS {
                    return None;
                }
                // A relative target is relative to the link's directory; an absolute one
                // replaces it in the join.
                let target = std::fs::read_link(&here).ok()?;
                self.resolve(&dir.join(target), links + 1)
            }
            // Neither is in an absolute path once split (`.` only leads a relative one).
            Component::CurDir | Component::Prefix(_) => None,
        }
    }
}

/// `path`, relative to the working directory when relative; `None` for an empty one, which
/// names nothing.
fn absolute(path: &Path) -> Option<PathBuf> {
    if path.as_os_str().is_empty() {
        None
    } else if path.is_absolute() {
        Some(path.to_path_buf())
    } else {
        Some(std::env::current_dir().ok()?.join(path))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn resolves_every_path_as_realpath_does() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let base = std::fs::canonicalize(tmp.path()).expect("canonical");
        std::fs::create_dir_all(base.join("a/b/c")).expect("dirs");
        std::fs::write(base.join("a/file"), "").expect("file");
        symlink("a/b", base.join("rel")).expect("link");
        symlink(base.join("a"), base.join("abs")).expect("link");
        symlink("rel/c", base.join("chain")).expect("link");
        symlink("../../file", base.join("a/b/up")).expect("link");
        symlink("nowhere/x", base.join("dangling")).expect("link");
        symlink("loop2", base.join("loop1")).expect("link");
        symlink("loop1", base.join("loop2")).expect("link");
        let mut looked = Looked::default();
        for p in [
            "a",
            "a/b/c",
            "a/file",
            "rel",
            "rel/c",
            "abs/b/../file",
            "chain",
            "chain/..",
            "rel/../file",
            "a/b/up",
            "a/file/..",
            "a/file/x",
            "dangling",
            "dangling/..",
            "loop1",
            "loop1/x",
            "missing",
            "missing/..",
            "a/./b/.",
            "abs/b/c/../../b/up",
        ] {
            let path = base.join(p);
            assert_eq!(
                looked.real(&path),
                std::fs::canonicalize(&path).ok(),
                "{}",
                path.display()
            );
        }
    }

    #[test]
    fn the_last_component_is_looked_at_without_following_it() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let base = std::fs::canonicalize(tmp.path()).expect("canonical");
        std::fs::create_dir(base.join("d")).expect("dir");
        symlink("d", base.join("link")).expect("link");
        let mut looked = Looked::default();
        let last = |looked: &mut Looked, p: &str| {
            looked
                .lstat_last(&base.join(p))
                .map(|m| m.file_type().is_symlink())
        };
        assert_eq!(last(&mut looked, "link"), Some(true));
        assert_eq!(last(&mut looked, "link/.."), Some(false));
        assert_eq!(last(&mut looked, "link/missing/.."), None);
        assert_eq!(last(&mut looked, "d"), Some(false));
        assert_eq!(last(&mut looked, "missing"), None);
        assert_eq!(
            looked.nearest_real(&base.join("link/missing/x")),
            Some(base.join("d"))
        );
        assert_eq!(looked.real(Path::new("")), None);
        assert_eq!(looked.lstat_last(Path::new("")).map(|_| ()), None);
    }
}

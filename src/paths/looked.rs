//! What one check of directories has read of the file system ([`Looked`]): each path is
//! looked at once, however many of the paths checked lead through it. Root's `PATH` has
//! `/usr` and `/` above most of its entries; checked one by one, each entry took every
//! directory above it through `realpath` twice and `stat` twice (about 200 system calls
//! for a common `PATH`); walked here, each directory costs one `lstat`, and each symbolic
//! link one `readlink` more.
//!
//! A [`Looked`] lives for one check only: what it saw may change afterwards, and a later
//! check must look again.

use std::fs::Metadata;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

use hashbrown::{HashMap, HashSet};

/// How many symbolic links one resolution follows before it gives up, as the kernel's
/// `ELOOP` does.
const MAX_LINKS: u32 = 40;

/// The file system as one check saw it: each path's `lstat`, and the canonical form of
/// each link's target (the path with every symbolic link, `.` and `..` resolved, as
/// `realpath` gives it), each found once. Paths are kept by their bytes.
#[derive(Default)]
pub(crate) struct Looked {
    /// `lstat` of each path looked at, or the OS error it gave.
    meta: HashMap<Vec<u8>, Result<Metadata, i32>>,
    /// The canonical path each symbolic link leads to; `None` when it leads nowhere.
    targets: HashMap<Vec<u8>, Option<PathBuf>>,
    /// Canonical directories found fine, with every directory above them (see
    /// [`Looked::first_unfit`]).
    fine: HashSet<Vec<u8>>,
}

/// Where [`Looked::walk`] got to.
struct Walked {
    /// The canonical path of the longest part of the path walked that has one.
    real: Option<PathBuf>,
    /// Whether that was the whole path.
    whole: bool,
}

impl Looked {
    /// `lstat` of `path` (its last component not followed).
    pub(crate) fn lstat(&mut self, path: &Path) -> io::Result<Metadata> {
        let key = path.as_os_str().as_bytes();
        let seen = match self.meta.get(key) {
            Some(seen) => seen.clone(),
            None => {
                let seen = std::fs::symlink_metadata(path)
                    .map_err(|e| e.raw_os_error().unwrap_or(nix::libc::EIO));
                self.meta.insert(key.to_vec(), seen.clone());
                seen
            }
        };
        seen.map_err(io::Error::from_raw_os_error)
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
        let walked = self.walk(path, 0, &mut |_, _| {});
        walked.real.filter(|_| walked.whole)
    }

    /// The canonical path of the first of `path` and the directories above it that has
    /// one. `seen` is called with each of them (as far as `path` goes when relative) that
    /// `lstat` finds, and what it finds, from the top down: as `lstat` of each would, the
    /// directory above resolved, its last component not followed (a path that ends in
    /// `..` names a directory, never a link).
    pub(crate) fn walk_seeing(
        &mut self,
        path: &Path,
        seen: &mut dyn FnMut(&Path, &Metadata),
    ) -> Option<PathBuf> {
        self.walk(path, 0, seen).real
    }

    /// Resolves `path` a component at a time, as the kernel does, `links` symbolic links
    /// already followed on the way to it; each link's target is resolved once. `seen` is
    /// called as [`Looked::walk_seeing`] says.
    fn walk(&mut self, path: &Path, links: u32, seen: &mut dyn FnMut(&Path, &Metadata)) -> Walked {
        let stop = |real: PathBuf| Walked {
            real: Some(real),
            whole: false,
        };
        if path.as_os_str().is_empty() {
            return Walked {
                real: None,
                whole: false,
            };
        }
        let (mut real, mut lexical) = if path.is_absolute() {
            (PathBuf::new(), PathBuf::new())
        } else {
            let Ok(cwd) = std::env::current_dir() else {
                return Walked {
                    real: None,
                    whole: false,
                };
            };
            (cwd, PathBuf::new())
        };
        for component in path.components() {
            lexical.push(component);
            match component {
                Component::RootDir => {
                    real.push("/");
                    if let Ok(meta) = self.lstat(&real) {
                        seen(&lexical, &meta);
                    }
                }
                Component::ParentDir => {
                    match self.lstat(&real) {
                        Ok(meta) if meta.is_dir() => {}
                        _ => return stop(real),
                    }
                    // `/..` is `/`.
                    let below = real.clone();
                    real.pop();
                    match self.lstat(&real) {
                        Ok(meta) => seen(&lexical, &meta),
                        Err(_) => return stop(below),
                    }
                }
                Component::Normal(name) => {
                    real.push(name);
                    let Ok(meta) = self.lstat(&real) else {
                        real.pop();
                        return stop(real);
                    };
                    seen(&lexical, &meta);
                    if meta.file_type().is_symlink() {
                        let link = std::mem::take(&mut real);
                        match self.target(&link, links) {
                            Some(target) => real = target,
                            None => return stop(link.parent().unwrap_or(&link).to_path_buf()),
                        }
                    }
                }
                // Only a relative path starts with `.`: the working directory.
                Component::CurDir => {
                    if let Ok(meta) = self.lstat(&real) {
                        seen(&lexical, &meta);
                    }
                }
                Component::Prefix(_) => {}
            }
        }
        Walked {
            real: Some(real),
            whole: true,
        }
    }

    /// The canonical path the symbolic link `link`, in a canonical directory, leads to,
    /// `links` links already followed; `None` when it leads nowhere.
    fn target(&mut self, link: &Path, links: u32) -> Option<PathBuf> {
        let key = link.as_os_str().as_bytes();
        if let Some(known) = self.targets.get(key) {
            return known.clone();
        }
        let found = if links >= MAX_LINKS {
            None
        } else {
            // A relative target is relative to the link's directory; an absolute one
            // replaces it in the join.
            std::fs::read_link(link).ok().and_then(|to| {
                let dir = link.parent().unwrap_or(link);
                let walked = self.walk(&dir.join(to), links + 1, &mut |_, _| {});
                walked.real.filter(|_| walked.whole)
            })
        };
        self.targets.insert(key.to_vec(), found.clone());
        found
    }

    /// The first of `real` (a canonical path) and the directories above it that `unfit`
    /// says is unfit, with its metadata (`stat`). A directory found fine is not looked at
    /// again, nor are those above it: `unfit` must be the same in every call on this
    /// [`Looked`].
    pub(crate) fn first_unfit(
        &mut self,
        real: &Path,
        unfit: impl Fn(&Metadata) -> bool,
    ) -> io::Result<Option<(PathBuf, Metadata)>> {
        let mut walked = Vec::new();
        for p in real.ancestors() {
            if self.fine.contains(p.as_os_str().as_bytes()) {
                break;
            }
            let meta = self.stat_real(p)?;
            if unfit(&meta) {
                return Ok(Some((p.to_path_buf(), meta)));
            }
            walked.push(p);
        }
        self.fine
            .extend(walked.iter().map(|p| p.as_os_str().as_bytes().to_vec()));
        Ok(None)
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
        assert_eq!(looked.real(Path::new("")), None);
        assert_eq!(looked.walk_seeing(Path::new(""), &mut |_, _| {}), None);
        assert_eq!(
            looked.walk_seeing(&base.join("rel/missing/x"), &mut |_, _| {}),
            Some(base.join("a/b"))
        );
        assert_eq!(
            looked.walk_seeing(&base.join("dangling/x"), &mut |_, _| {}),
            Some(base.clone())
        );
    }

    #[test]
    fn each_directory_on_the_way_is_seen_as_lstat_sees_it() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let base = std::fs::canonicalize(tmp.path()).expect("canonical");
        std::fs::create_dir(base.join("d")).expect("dir");
        symlink("d", base.join("link")).expect("link");
        let mut looked = Looked::default();
        let mut seen = Vec::new();
        let real = looked.walk_seeing(&base.join("link/../link/missing"), &mut |p, m| {
            seen.push((p.to_path_buf(), m.file_type().is_symlink()))
        });
        assert_eq!(real, Some(base.join("d")));
        let ours: Vec<_> = seen
            .iter()
            .filter(|(p, _)| p.starts_with(&base) && *p != base)
            .map(|(p, link)| (p.strip_prefix(&base).expect("under").to_path_buf(), *link))
            .collect();
        assert_eq!(
            ours,
            [
                (PathBuf::from("link"), true),
                (PathBuf::from("link/.."), false),
                (PathBuf::from("link/../link"), true),
            ]
        );
        for (p, link) in &seen {
            let meta = std::fs::symlink_metadata(p).expect("lstat");
            assert_eq!(meta.file_type().is_symlink(), *link, "{}", p.display());
        }
    }
}

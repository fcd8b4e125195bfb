//! Glob expansion that keeps every file name, UTF-8 or not.
//!
//! The `glob` crate passes over names that are not valid UTF-8 (its FIXME #9639), so a
//! changed `in/bad\xff.txt` would vanish from `inputs: ["in/*.txt"]`. This walk reads each
//! directory itself, matches each name (lossily decoded: an invalid byte reads as U+FFFD,
//! which `*` and `?` match) with `glob::Pattern`, and keeps the name's real bytes. `**`
//! matches any number of directories; it does not descend into symlinked directories (a
//! link to an ancestor would make the walk endless). Unlike the shell's, it does not pass
//! over a directory it cannot read (permission denied): that is an error naming it, since
//! the paths it holds would be missing from the list without a word. A pattern ending in
//! `/` matches directories only, each with its `/` (`dir/`), as in the shell.

use std::path::{Path, PathBuf};

use glob::{MatchOptions, Pattern};

use super::tree::{Unreadable, absent, look, read_names};

/// Why a pattern could not be expanded.
#[derive(Debug, thiserror::Error)]
pub(crate) enum GlobError {
    /// Not a valid pattern.
    #[error("{0}")]
    Pattern(#[from] glob::PatternError),
    /// A directory it had to read, or a path it had to look at, could not be.
    #[error("{0}")]
    Unreadable(#[from] Unreadable),
}

/// The existing paths matching `pattern`, sorted. With `hidden`, wildcards also match names
/// starting with `.` (the `glob` crate's default); without, only a literal `.` does (the
/// shell's rule).
pub(crate) fn expand(pattern: &str, hidden: bool) -> Result<Vec<PathBuf>, GlobError> {
    Pattern::new(pattern)?;
    let opts = MatchOptions {
        case_sensitive: true,
        require_literal_separator: true,
        require_literal_leading_dot: !hidden,
    };
    let (mut current, rest) = match pattern.strip_prefix('/') {
        Some(rest) => (vec![PathBuf::from("/")], rest),
        None => (vec![PathBuf::new()], pattern),
    };
    let parts: Vec<&str> = rest.split('/').filter(|c| !c.is_empty()).collect();
    for (i, part) in parts.iter().enumerate() {
        let last = i + 1 == parts.len();
        let mut next = Vec::new();
        if *part == "**" {
            for base in &current {
                next.push(base.clone());
                under(base, hidden, last, &mut next)?;
            }
        } else if !part.contains(['*', '?', '[']) {
            next.extend(current.iter().map(|base| base.join(part)));
        } else {
            let matcher = Pattern::new(part)?;
            for base in &current {
                for name in read_names(base)?.unwrap_or_default() {
                    if matcher.matches_with(&name.to_string_lossy(), opts) {
                        next.push(base.join(name));
                    }
                }
            }
        }
        current = next;
    }
    current.retain(|p| !p.as_os_str().is_empty());
    let mut existing = Vec::with_capacity(current.len());
    for p in current {
        if exists(&p)? {
            existing.push(p);
        }
    }
    let mut current = existing;
    if pattern.ends_with('/') {
        // As in the shell, a pattern ending in `/` matches directories only, and each
        // keeps the `/` (`dir/`, as `echo */` prints it).
        current.retain(|p| p.is_dir());
        for p in &mut current {
            p.push("");
        }
    }
    current.sort();
    current.dedup();
    Ok(current)
}

/// Whether `path` exists (a dangling link does); an error when it cannot be looked at.
fn exists(path: &Path) -> Result<bool, Unreadable> {
    match std::fs::symlink_metadata(path) {
        Ok(_) => Ok(true),
        Err(e) if absent(&e) => Ok(false),
        Err(source) => Err(Unreadable {
            path: path.to_path_buf(),
            dir: false,
            source,
        }),
    }
}

/// Every directory under `dir` (and every file too when `files`), depth first.
fn under(dir: &Path, hidden: bool, files: bool, out: &mut Vec<PathBuf>) -> Result<(), Unreadable> {
    for name in read_names(dir)?.unwrap_or_default() {
        if !hidden && name.as_encoded_bytes().starts_with(b".") {
            continue;
        }
        let path = dir.join(&name);
        let is_dir = look(&path)?.is_some_and(|m| m.is_dir());
        if is_dir || files {
            out.push(path.clone());
        }
        if is_dir && !std::fs::symlink_metadata(&path).is_ok_and(|m| m.is_symlink()) {
            under(&path, hidden, files, out)?;
        }
    }
    Ok(())
}

/// A path for messages: as text, each byte that is not UTF-8 written as `\xNN`.
pub(crate) fn display(path: &Path) -> String {
    let mut out = String::new();
    for chunk in path.as_os_str().as_encoded_bytes().utf8_chunks() {
        out.push_str(chunk.valid());
        for b in chunk.invalid() {
            out.push_str(&format!("\\x{b:02x}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::OsStr;
    use std::os::unix::ffi::OsStrExt;

    #[test]
    fn names_that_are_not_utf8_are_matched_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let bad = dir.path().join(OsStr::from_bytes(b"in/bad\xff.txt"));
        std::fs::create_dir_all(dir.path().join("in/sub")).unwrap();
        std::fs::write(&bad, "x").unwrap();
        std::fs::write(dir.path().join("in/good.txt"), "x").unwrap();
        std::fs::write(dir.path().join("in/sub/deep.txt"), "x").unwrap();
        let base = dir.path().to_str().unwrap();
        let hits = expand(&format!("{base}/in/*.txt"), false).unwrap();
        assert_eq!(hits, [bad.clone(), dir.path().join("in/good.txt")]);
        let all = expand(&format!("{base}/**/*.txt"), false).unwrap();
        assert_eq!(all.len(), 3, "{all:?}");
        assert_eq!(display(&bad), format!("{base}/in/bad\\xff.txt"));
    }

    #[test]
    fn a_pattern_ending_in_a_slash_matches_directories_only() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("sub/d")).unwrap();
        std::fs::write(dir.path().join("sub/s.txt"), "x").unwrap();
        let base = dir.path().to_str().unwrap();
        let hits = expand(&format!("{base}/sub/*/"), false).unwrap();
        assert_eq!(hits, [dir.path().join("sub/d/")]);
        assert_eq!(hits[0].to_str().unwrap(), format!("{base}/sub/d/"));
        let literal = expand(&format!("{base}/sub/d/"), false).unwrap();
        assert_eq!(literal[0].to_str().unwrap(), format!("{base}/sub/d/"));
        assert!(
            expand(&format!("{base}/sub/s.txt/"), false)
                .unwrap()
                .is_empty()
        );
        assert_eq!(expand("/", false).unwrap(), [PathBuf::from("/")]);
    }
}

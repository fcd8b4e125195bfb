//! Glob expansion that keeps every file name, UTF-8 or not.
//!
//! The `glob` crate passes over names that are not valid UTF-8 (its FIXME #9639), so a
//! changed `in/bad\xff.txt` would vanish from `inputs: ["in/*.txt"]`. This walk reads each
//! directory itself, matches each name (lossily decoded: an invalid byte reads as U+FFFD,
//! which `*` and `?` match) with `glob::Pattern`, and keeps the name's real bytes. `**`
//! matches any number of directories; it does not descend into symlinked directories (a
//! link to an ancestor would make the walk endless).

use std::path::{Path, PathBuf};

use glob::{MatchOptions, Pattern};

/// The existing paths matching `pattern`, sorted. With `hidden`, wildcards also match names
/// starting with `.` (the `glob` crate's default); without, only a literal `.` does (the
/// shell's rule).
pub(crate) fn expand(pattern: &str, hidden: bool) -> Result<Vec<PathBuf>, glob::PatternError> {
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
                under(base, hidden, last, &mut next);
            }
        } else if !part.contains(['*', '?', '[']) {
            next.extend(current.iter().map(|base| base.join(part)));
        } else {
            let matcher = Pattern::new(part)?;
            for base in &current {
                for name in names(base) {
                    if matcher.matches_with(&name.to_string_lossy(), opts) {
                        next.push(base.join(name));
                    }
                }
            }
        }
        current = next;
    }
    current.retain(|p| !p.as_os_str().is_empty() && std::fs::symlink_metadata(p).is_ok());
    if pattern.ends_with('/') {
        // As in the shell, a pattern ending in `/` matches directories only.
        current.retain(|p| p.is_dir());
    }
    current.sort();
    current.dedup();
    Ok(current)
}

/// The names in directory `dir` (`""` is the working directory); none when it cannot be read.
fn names(dir: &Path) -> Vec<std::ffi::OsString> {
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    std::fs::read_dir(dir)
        .map(|entries| entries.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default()
}

/// Every directory under `dir` (and every file too when `files`), depth first.
fn under(dir: &Path, hidden: bool, files: bool, out: &mut Vec<PathBuf>) {
    for name in names(dir) {
        if !hidden && name.as_encoded_bytes().starts_with(b".") {
            continue;
        }
        let path = dir.join(&name);
        let is_dir = std::fs::metadata(&path).is_ok_and(|m| m.is_dir());
        if is_dir || files {
            out.push(path.clone());
        }
        if is_dir && !std::fs::symlink_metadata(&path).is_ok_and(|m| m.is_symlink()) {
            under(&path, hidden, files, out);
        }
    }
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
        assert_eq!(hits, [dir.path().join("sub/d")]);
    }
}

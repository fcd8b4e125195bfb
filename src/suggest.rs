//! "Did you mean …": the valid names nearest to a wrong one, for every message that
//! reports a name prun does not know (a target, a proc, a dependency, an option key, a
//! subcommand, a module, a function).
//!
//! Nearness is the Damerau–Levenshtein distance (a swap of two neighbours counts as one
//! edit, so `dpes` is one edit from `deps`), compared case-insensitively. A candidate is
//! offered when it is at most a third of the wrong name's length away (at least one
//! edit, and fewer edits than the wrong name has characters), or when one name contains
//! the other (`build` for `build::prod`); the nearest
//! few are offered, nearest first.

use std::path::{Path, PathBuf};

/// How many names a hint offers at most.
const MAX: usize = 3;

/// The candidates nearest to `wrong`, nearest first (at most three, none when nothing is
/// near). `wrong` itself is never offered.
pub(crate) fn nearest<'a>(
    wrong: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Vec<&'a str> {
    let w = wrong.to_lowercase();
    let limit = (w.chars().count() / 3).max(1);
    let mut scored: Vec<(usize, &str)> = candidates
        .into_iter()
        .filter(|c| *c != wrong && !c.is_empty())
        .filter_map(|c| {
            let lc = c.to_lowercase();
            let d = strsim::damerau_levenshtein(&w, &lc);
            let contains = w.len() >= 3 && lc.len() >= 3 && (lc.contains(&w) || w.contains(&lc));
            // A name is never "near" one it shares no character with (`a` and `b`).
            ((d <= limit && d < w.chars().count()) || contains).then_some((d, c))
        })
        .collect();
    scored.sort();
    scored.dedup_by(|a, b| a.1 == b.1);
    scored.into_iter().take(MAX).map(|(_, c)| c).collect()
}

/// `; did you mean "a" or "b"?` for the nearest candidates, quoted with `quote` on both
/// sides (`"` for names, `` ` `` for code), or an empty string.
pub(crate) fn hint<'a>(
    wrong: &str,
    candidates: impl IntoIterator<Item = &'a str>,
    quote: &str,
) -> String {
    question(&nearest(wrong, candidates), quote)
}

/// `; did you mean "a" or "b"?` for `near`, or an empty string when it is empty. Control
/// characters are written out (see [`crate::shown::visible`]): a candidate may be a file
/// name another user chose.
fn question(near: &[impl std::fmt::Display], quote: &str) -> String {
    if near.is_empty() {
        return String::new();
    }
    let quoted: Vec<String> = near
        .iter()
        .map(|n| format!("{quote}{}{quote}", crate::shown::visible(&n.to_string())))
        .collect();
    let list = match quoted.as_slice() {
        [one] => one.clone(),
        [init @ .., last] => format!("{} or {last}", init.join(", ")),
        [] => String::new(),
    };
    format!("; did you mean {list}?")
}

/// How many entries of the state root one hint looks at, and how many task DBs it opens
/// there: a hint stays quick however many scripts have run.
const STATE_ENTRIES: usize = 10_000;
const DBS_OPENED: usize = 8;

/// How many scripts a hint reads from one task DB.
const DB_SCRIPTS: usize = 1_000;

/// `; did you mean `build.rhai`?` for a script path that names no file (`buld.rhai`, or
/// `build` as `just build` is typed): the nearest `.rhai` files of its directory, written
/// as the path was, then the nearest scripts elsewhere that have runs recorded (see
/// [`recorded_elsewhere`]) and are still there. An empty string when none is near.
pub(crate) fn script_hint(path: &Path) -> String {
    let mut near = nearest_scripts(path, |_| true);
    let elsewhere = recorded_elsewhere(path).into_iter().filter(|p| p.is_file());
    join(&mut near, elsewhere);
    question(&near, "`")
}

/// `; did you mean `build.rhai`?` for a script that has no run recorded (`prun history
/// buld.rhai`): the nearest `.rhai` files of its directory that have runs recorded in
/// their own task DB (see [`crate::paths::script_state_dir`]), written as the path was,
/// then the nearest scripts elsewhere with runs recorded (see [`recorded_elsewhere`]).
/// An empty string when none is near.
pub(crate) fn recorded_script_hint(path: &Path) -> String {
    let recorded = |candidate: &Path| {
        let db = crate::paths::script_state_dir(candidate).join("tasks.db");
        !crate::store::missing(&db)
    };
    let mut near = nearest_scripts(path, recorded);
    join(&mut near, recorded_elsewhere(path));
    question(&near, "`")
}

/// `; did you mean `build.rhai`?` for a script that has no run in the task DB at `db`
/// (`prun history buld.rhai --db shared.db`): the scripts of that DB nearest to it. An
/// empty string when none is near or the DB cannot be read.
pub(crate) fn db_script_hint(path: &Path, db: &Path) -> String {
    let keys = crate::store::recorded_scripts(db, DB_SCRIPTS);
    let near: Vec<String> = nearest_paths(path, keys.iter().map(PathBuf::from))
        .iter()
        .map(|p| shown(p))
        .collect();
    question(&near, "`")
}

/// The scripts with runs recorded in their default task DBs, anywhere (the state root
/// holds a directory per script, named after its file's stem), nearest to `path`'s name:
/// their canonical paths. Only the first [`STATE_ENTRIES`] entries of the state root are
/// looked at, and only the DBs of the [`DBS_OPENED`] nearest opened. Only what the user
/// owns is read: a state root another user made (`$TMPDIR/prun-UID`, made before the
/// user's first run) or could change, a symbolic link, a FIFO, another user's DB are not.
fn recorded_elsewhere(path: &Path) -> Vec<PathBuf> {
    let root = crate::paths::state_root();
    if !crate::paths::is_own_dir(&root) {
        return Vec::new();
    }
    let Ok(entries) = std::fs::read_dir(root) else {
        return Vec::new();
    };
    let dirs: Vec<(String, PathBuf)> = entries
        .take(STATE_ENTRIES)
        .filter_map(|e| {
            let e = e.ok()?;
            if !e.file_type().ok()?.is_dir() {
                return None;
            }
            let name = e.file_name().into_string().ok()?;
            let (stem, hash) = name.rsplit_once('-')?;
            let named = hash.len() == 8 && hash.bytes().all(|b| b.is_ascii_hexdigit());
            named.then(|| (stem.to_string(), e.path()))
        })
        .collect();
    let near = near_or_same(&stem(path), dirs.iter().map(|(s, _)| s.as_str()));
    let keys: Vec<PathBuf> = near
        .iter()
        .flat_map(|n| dirs.iter().filter(move |(s, _)| s == n))
        .take(DBS_OPENED)
        .map(|(_, dir)| dir.join("tasks.db"))
        .filter(|db| is_own_file(db))
        .flat_map(|db| crate::store::recorded_scripts(&db, DB_SCRIPTS))
        .map(PathBuf::from)
        .collect();
    nearest_paths(path, keys.into_iter())
}

/// Whether `path` is a regular file of the effective user, not reached through a
/// symbolic link: a task DB a hint may open (a FIFO there would block it for ever, a
/// link or another user's file is not the user's state).
fn is_own_file(path: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    std::fs::symlink_metadata(path)
        .is_ok_and(|m| m.is_file() && m.uid() == nix::unistd::Uid::effective().as_raw())
}

/// The name a script is compared by: its file name without `.rhai`.
fn stem(path: &Path) -> String {
    let name = path
        .file_name()
        .map_or(String::new(), |n| n.to_string_lossy().into_owned());
    name.strip_suffix(".rhai").unwrap_or(&name).to_string()
}

/// The candidates named `wrong`, then those nearest to it (see [`nearest`]).
fn near_or_same<'a>(
    wrong: &str,
    candidates: impl Iterator<Item = &'a str> + Clone,
) -> Vec<&'a str> {
    let mut near: Vec<&str> = candidates.clone().filter(|c| *c == wrong).take(1).collect();
    near.extend(nearest(wrong, candidates));
    near
}

/// The scripts among `candidates` (paths) whose names are `path`'s or nearest to it,
/// nearest first, at most [`MAX`]; `path` itself (its canonical path) is not one.
fn nearest_paths(path: &Path, candidates: impl Iterator<Item = PathBuf>) -> Vec<PathBuf> {
    let me = crate::paths::script_identity(path);
    let named: Vec<(String, PathBuf)> = candidates
        .filter(|c| *c != me)
        .map(|c| (stem(&c), c))
        .collect();
    let near = near_or_same(&stem(path), named.iter().map(|(s, _)| s.as_str()));
    let mut found: Vec<PathBuf> = Vec::new();
    for n in near {
        for (_, c) in named.iter().filter(|(s, _)| s == n) {
            if !found.contains(c) {
                found.push(c.clone());
            }
        }
    }
    found.truncate(MAX);
    found
}

/// Adds to `near` (paths as shown) those of `more` (canonical paths) that it does not
/// name already, shown relative to the working directory when under it, up to [`MAX`].
fn join(near: &mut Vec<String>, more: impl IntoIterator<Item = PathBuf>) {
    let named: Vec<PathBuf> = near
        .iter()
        .map(|n| crate::paths::script_identity(Path::new(n)))
        .collect();
    for p in more {
        if near.len() >= MAX {
            break;
        }
        if !named.contains(&p) {
            near.push(shown(&p));
        }
    }
}

/// A script's path as a hint shows it: relative to the working directory when under it.
fn shown(path: &Path) -> String {
    std::env::current_dir()
        .ok()
        .and_then(|d| Some(path.strip_prefix(d).ok()?.display().to_string()))
        .unwrap_or_else(|| path.display().to_string())
}

/// The `.rhai` files of `path`'s directory nearest to its name, those `keep` keeps (the
/// file itself, when it is there, first), written as the path was.
fn nearest_scripts(path: &Path, keep: impl Fn(&Path) -> bool) -> Vec<String> {
    let Some(wrong) = path.file_name().map(|n| n.to_string_lossy()) else {
        return Vec::new();
    };
    let dir = path.parent().unwrap_or(Path::new(""));
    let Ok(entries) = std::fs::read_dir(if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    }) else {
        return Vec::new();
    };
    // Names compared without `.rhai`, which every candidate shares.
    let stems: Vec<String> = entries
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter_map(|n| n.strip_suffix(".rhai").map(str::to_string))
        .filter(|n| keep(&dir.join(format!("{n}.rhai"))))
        .collect();
    let wrong = wrong.strip_suffix(".rhai").unwrap_or(&wrong);
    let near = match stems.iter().find(|s| *s == wrong) {
        Some(same) => vec![same.as_str()],
        None => nearest(wrong, stems.iter().map(String::as_str)),
    };
    near.into_iter()
        .map(|n| dir.join(format!("{n}.rhai")).display().to_string())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_typo_finds_the_name() {
        assert_eq!(nearest("dpes", ["deps", "rdeps", "now"]), ["deps"]);
        assert_eq!(nearest("shel", ["shell", "exec", "pipe"]), ["shell"]);
        assert_eq!(nearest("chek", ["check", "list", "graph"]), ["check"]);
    }

    #[test]
    fn nothing_near_gives_nothing() {
        assert!(nearest("xyzzy", ["deps", "wave"]).is_empty());
        assert!(nearest("a", ["b"]).is_empty());
        assert_eq!(nearest("aa", ["a"]), ["a"]);
        assert_eq!(hint("xyzzy", ["deps"], "`"), "");
    }

    #[test]
    fn a_name_inside_another_is_near() {
        assert_eq!(nearest("build", ["build::prod", "test"]), ["build::prod"]);
    }

    #[test]
    fn scripts_named_alike_come_first_then_the_nearest_and_never_the_script_itself() {
        let me = crate::paths::script_identity(Path::new("buld.rhai"));
        let candidates = [
            "/a/build.rhai",
            "/b/deploy.rhai",
            "/c/buld.rhai",
            me.to_str().expect("utf-8"),
        ]
        .map(PathBuf::from);
        assert_eq!(
            nearest_paths(Path::new("buld.rhai"), candidates.into_iter()),
            [
                PathBuf::from("/c/buld.rhai"),
                PathBuf::from("/a/build.rhai")
            ]
        );
    }

    #[test]
    fn hints_read_as_a_question() {
        assert_eq!(hint("dpes", ["deps"], "`"), "; did you mean `deps`?");
        assert_eq!(
            hint("ab", ["aa", "ac", "zz"], "\""),
            "; did you mean \"aa\" or \"ac\"?"
        );
    }
}

//! What a watch looks at: the input patterns of the watched procs, the directories to
//! watch for them, and which procs a changed path affects.
//!
//! Directories are watched, never single files: a literal input is watched through its
//! parent directory (so that an editor replacing it by a rename, or its deletion and
//! re-creation, is seen), a directory input and a glob whose wildcards span several path
//! components (`src/**/*.rs`, `src/*/x.rs`) through their directory recursively, and a glob
//! with a wildcard in its last component only (`src/*.rs`) through that one directory. A
//! root that does not exist yet is watched through its nearest existing ancestor, and the
//! watch is refreshed when something appears there.
//!
//! The procs' own declared outputs, prun's log directory and the task DB never count as
//! changes: a proc writing them would otherwise trigger the next cycle itself.

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};
use std::time::SystemTime;

use glob::{MatchOptions, Pattern};

use crate::exec::InputPattern;
use crate::exec::fileglob::GlobError;
use crate::graph::ProcId;

/// The same matching rules as input globs (see `exec::fileglob`).
const MATCH: MatchOptions = MatchOptions {
    case_sensitive: true,
    require_literal_separator: true,
    require_literal_leading_dot: true,
};

/// How a directory is watched.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Depth {
    /// The directory's own entries.
    Flat,
    /// Everything under it.
    Tree,
}

/// One input of a watched proc, ready to match changed paths.
#[derive(Debug)]
enum Matcher {
    /// A file or directory: matches itself, what is under it, and its ancestors (a
    /// directory on its path was removed or renamed). A file reached through a symbolic
    /// link elsewhere also matches the file the link leads to (`targets`), which is where
    /// an editor changes it.
    Path {
        path: PathBuf,
        targets: Vec<PathBuf>,
    },
    /// A glob over absolute paths; `base` is its literal leading directory.
    Glob {
        pattern: Pattern,
        base: PathBuf,
        depth: Depth,
        /// The files it matched when the watch was set up, sorted: a removed or renamed
        /// directory that held one of them is a change.
        known: Vec<PathBuf>,
        /// The files elsewhere that those of `known` that are links lead to, sorted.
        targets: Vec<PathBuf>,
        /// The file of the pattern's literal name (`report [final].csv`), which the input
        /// stands for when the pattern matches nothing, as in the shell (see
        /// `exec::cache`'s `expand`).
        literal: PathBuf,
    },
}

/// The files that those of `paths` that are symbolic links to a file elsewhere lead to,
/// sorted.
fn link_targets(paths: &[PathBuf]) -> Vec<PathBuf> {
    let mut targets: Vec<PathBuf> = paths
        .iter()
        .filter_map(|p| p.canonicalize().ok().filter(|t| t != p && t.is_file()))
        .collect();
    targets.sort();
    targets
}

impl Matcher {
    fn new(input: InputPattern, cwd: &Path) -> Result<Matcher, GlobError> {
        match input {
            InputPattern::Path(p) => {
                let path = absolute(cwd, &p);
                let targets = link_targets(std::slice::from_ref(&path));
                Ok(Matcher::Path { path, targets })
            }
            InputPattern::Glob(g) => {
                let literal = absolute(cwd, Path::new(&g));
                let text = if Path::new(&g).is_absolute() {
                    g
                } else {
                    let base = Pattern::escape(&cwd.to_string_lossy());
                    format!("{}/{g}", base.trim_end_matches('/'))
                };
                let pattern = Pattern::new(&text)?;
                let (base, depth) = glob_base(&text);
                let mut known = crate::exec::fileglob::expand(&text, false)?;
                known.sort();
                let targets = link_targets(&known);
                Ok(Matcher::Glob {
                    pattern,
                    base,
                    depth,
                    known,
                    targets,
                    literal,
                })
            }
        }
    }

    fn matches(&self, changed: &Path) -> bool {
        match self {
            Matcher::Path { path: p, targets } => {
                changed.starts_with(p)
                    || p.starts_with(changed)
                    || targets
                        .binary_search_by(|t| t.as_path().cmp(changed))
                        .is_ok()
            }
            Matcher::Glob {
                pattern,
                base,
                depth,
                known,
                targets,
                literal,
            } => {
                if pattern.matches_path_with(changed, MATCH)
                    || base.starts_with(changed)
                    || changed.starts_with(literal)
                    || targets
                        .binary_search_by(|t| t.as_path().cmp(changed))
                        .is_ok()
                {
                    return true;
                }
                if !changed.starts_with(base) {
                    return false;
                }
                // A directory that held matches went away, or one that may hold some
                // appeared in a tree the glob covers.
                let i = known.partition_point(|k| k.as_path() < changed);
                let held = known.get(i).is_some_and(|k| k.starts_with(changed));
                held || (*depth == Depth::Tree && changed.is_dir())
            }
        }
    }

    /// The directory to watch for this input, and how.
    fn root(&self) -> (PathBuf, Depth) {
        match self {
            Matcher::Path { path: p, .. } if p.is_dir() => (p.clone(), Depth::Tree),
            Matcher::Path { path: p, .. } => (
                p.parent().map_or_else(|| p.clone(), Path::to_path_buf),
                Depth::Flat,
            ),
            Matcher::Glob { base, depth, .. } => (base.clone(), *depth),
        }
    }

    /// The files elsewhere that its links lead to.
    fn targets(&self) -> &[PathBuf] {
        match self {
            Matcher::Path { targets, .. } | Matcher::Glob { targets, .. } => targets,
        }
    }

    /// How many files it stands for now (for the "watching" line).
    fn files(&self) -> usize {
        match self {
            Matcher::Path { .. } => 1,
            Matcher::Glob { known, .. } => known.len(),
        }
    }

    /// The files it stands for, as far as known (for the catch-up of changes made while
    /// the first run ran).
    fn paths(&self) -> &[PathBuf] {
        match self {
            Matcher::Path { path: p, .. } => std::slice::from_ref(p),
            Matcher::Glob { known, .. } => known,
        }
    }
}

/// A glob's literal leading directory, and whether its wildcards span more than the last
/// component (then the whole tree under that directory is watched).
fn glob_base(text: &str) -> (PathBuf, Depth) {
    let mut base = PathBuf::new();
    let mut rest = 0;
    for c in Path::new(text).components() {
        let s = c.as_os_str().to_string_lossy();
        if rest > 0 || s.contains(['*', '?', '[']) {
            rest += 1;
        } else {
            base.push(c);
        }
    }
    let depth = if rest > 1 || text.contains("**") {
        Depth::Tree
    } else {
        Depth::Flat
    };
    (base, depth)
}

/// The directories holding the symbolic links on the way to `root` (`root` included).
fn link_parents(root: &Path) -> Vec<PathBuf> {
    root.ancestors()
        .filter(|a| {
            a.symlink_metadata()
                .is_ok_and(|m| m.file_type().is_symlink())
        })
        .filter_map(|a| a.parent().map(Path::to_path_buf))
        .collect()
}

/// `p` made absolute against `cwd`, with `.` and `..` resolved lexically (events name
/// paths that way).
pub(super) fn absolute(cwd: &Path, p: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in cwd.join(p).components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            c => out.push(c),
        }
    }
    out
}

/// Whether `path` names a file an editor keeps beside the one it edits, and writes
/// without any save: vim's swap file (`.a.txt.swp`, `.swo`..., `.swpx` while it checks
/// one), kate's (`.a.txt.kate-swp`), emacs's lock link (`.#a.txt`) and auto-save file
/// (`#a.txt#`). They come and change while a file is only open, so they never count as
/// changes (as watchexec ignores them). What a save makes (vim's `a.txt~` backup, its
/// `4913` probe) comes with the save, in the same cycle.
fn editor_file(path: &Path) -> bool {
    let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
        return false;
    };
    // `sw` and a letter, then an `x` while vim checks a name: `.swp`, `.swo`, `.swx`, `.swpx`.
    let vim_swap = |n: &str| {
        let ext = n.rsplit_once('.').map_or("", |(_, e)| e);
        let ext = ext
            .strip_suffix('x')
            .filter(|e| e.len() == 3)
            .unwrap_or(ext);
        n.starts_with('.')
            && ext.len() == 3
            && ext.starts_with("sw")
            && ext.as_bytes()[2].is_ascii_lowercase()
    };
    let emacs_autosave = name.len() > 2 && name.starts_with('#') && name.ends_with('#');
    vim_swap(name)
        || name.starts_with(".#")
        || emacs_autosave
        || (name.starts_with('.') && name.ends_with(".kate-swp"))
}

/// The inputs and outputs of one watched proc, resolved off the core's lock.
#[derive(Debug, Default)]
pub(super) struct ProcFiles {
    pub inputs: Vec<InputPattern>,
    pub outputs: Vec<PathBuf>,
}

/// Everything watched: the procs' matchers, the paths whose changes are ignored, and the
/// directories to watch.
#[derive(Debug, Default)]
pub(super) struct Watched {
    procs: Vec<(ProcId, Vec<Matcher>)>,
    ignored: Vec<PathBuf>,
    /// Each scheduled proc's declared outputs (absolute), for those that declare any.
    outputs: BTreeMap<ProcId, Vec<PathBuf>>,
}

impl Watched {
    /// Builds the watch over `procs`, ignoring changes at or under `ignored` (prun's log
    /// directory, the task DB) and the procs' outputs. Relative paths are relative to
    /// `cwd`, as everywhere in a script. An input glob that is not valid, or that meets a directory it cannot read, is left out and
    /// passed to `bad` with its error (its proc failed on it already).
    pub(super) fn new(
        cwd: &Path,
        procs: Vec<(ProcId, ProcFiles)>,
        ignored: &[PathBuf],
        mut bad: impl FnMut(&GlobError),
    ) -> Watched {
        let mut w = Watched {
            procs: Vec::new(),
            ignored: ignored.iter().map(|p| absolute(cwd, p)).collect(),
            outputs: BTreeMap::new(),
        };
        for (id, files) in procs {
            let outputs: Vec<PathBuf> = files.outputs.iter().map(|o| absolute(cwd, o)).collect();
            w.ignored.extend(outputs.iter().cloned());
            if !outputs.is_empty() {
                w.outputs.insert(id, outputs);
            }
            let matchers: Vec<Matcher> = files
                .inputs
                .into_iter()
                .filter_map(|i| Matcher::new(i, cwd).map_err(|e| bad(&e)).ok())
                .collect();
            if !matchers.is_empty() {
                w.procs.push((id, matchers));
            }
        }
        w
    }

    /// Whether a change of `path` is ignored: an output of a proc, under prun's own
    /// directories, or an editor's file of its own (see [`editor_file`]).
    pub(super) fn ignores(&self, path: &Path) -> bool {
        editor_file(path) || self.ignored.iter().any(|i| path.starts_with(i))
    }

    /// Whether a declared output of proc `p` is missing (deleted by hand since it ran).
    pub(super) fn output_missing(&self, p: ProcId) -> bool {
        self.outputs
            .get(&p)
            .is_some_and(|o| o.iter().any(|f| !f.exists()))
    }

    /// The procs whose inputs a change of `path` affects.
    pub(super) fn affected(&self, path: &Path) -> Vec<ProcId> {
        if self.ignores(path) {
            return Vec::new();
        }
        self.procs
            .iter()
            .filter(|(_, ms)| ms.iter().any(|m| m.matches(path)))
            .map(|(id, _)| *id)
            .collect()
    }

    /// Every watched proc (a lost event queue makes all of them suspect).
    pub(super) fn all(&self) -> Vec<ProcId> {
        self.procs.iter().map(|(id, _)| *id).collect()
    }

    /// How many procs have inputs, and how many input files they name.
    pub(super) fn counts(&self) -> (usize, usize) {
        let files = self
            .procs
            .iter()
            .flat_map(|(_, ms)| ms.iter().map(Matcher::files))
            .sum();
        (self.procs.len(), files)
    }

    /// The directories to watch: each input's root, where it exists, or else its nearest
    /// existing ancestor (watched flat); nested roots inside a watched tree are dropped.
    pub(super) fn roots(&self) -> BTreeMap<PathBuf, Depth> {
        let mut roots: BTreeMap<PathBuf, Depth> = BTreeMap::new();
        for (_, ms) in &self.procs {
            for m in ms {
                let (mut dir, mut depth) = m.root();
                while !dir.is_dir() {
                    match dir.parent() {
                        Some(p) => dir = p.to_path_buf(),
                        None => break,
                    }
                    depth = Depth::Flat;
                }
                let d = roots.entry(dir).or_insert(depth);
                *d = (*d).max(depth);
            }
        }
        // A root reached through a symbolic link (`current -> releases/v3`) is watched
        // where the link leads; the directory holding the link is watched too, so that
        // the link's replacement is seen (and the root watched anew).
        let links: Vec<PathBuf> = roots.keys().flat_map(|r| link_parents(r)).collect();
        for dir in links {
            roots.entry(dir).or_insert(Depth::Flat);
        }
        // A file input (or glob match) that is a link to a file elsewhere: the directory of
        // that file too, unless a root already watches it (under another path: the kernel
        // has one watch per directory, which events would then name by either path).
        let watched: Vec<(PathBuf, Depth)> = roots
            .iter()
            .filter_map(|(p, d)| Some((p.canonicalize().ok()?, *d)))
            .collect();
        for (_, ms) in &self.procs {
            for t in ms.iter().flat_map(Matcher::targets) {
                let Some(dir) = t.parent() else { continue };
                let covered = watched
                    .iter()
                    .any(|(w, d)| w == dir || (*d == Depth::Tree && dir.starts_with(w)));
                if !covered {
                    roots.entry(dir.to_path_buf()).or_insert(Depth::Flat);
                }
            }
        }
        let trees: Vec<PathBuf> = roots
            .iter()
            .filter(|(_, d)| **d == Depth::Tree)
            .map(|(p, _)| p.clone())
            .collect();
        roots.retain(|p, _| !trees.iter().any(|t| p != t && p.starts_with(t)));
        roots
    }

    /// The input files modified at or after `since` (changes made before the watch began),
    /// with the procs they affect. A directory input stands for the files under it: its
    /// own time changes when a proc creates an output in it.
    pub(super) fn modified_since(&self, since: SystemTime) -> Vec<(PathBuf, ProcId)> {
        let mut out = Vec::new();
        for (id, ms) in &self.procs {
            let mut newer = Vec::new();
            for p in ms.iter().flat_map(Matcher::paths) {
                self.newer_files(p, since, &mut newer);
            }
            out.extend(newer.into_iter().map(|p| (p, *id)));
        }
        out
    }

    /// The files at or under `path` modified at or after `since`, but for those ignored.
    fn newer_files(&self, path: &Path, since: SystemTime, out: &mut Vec<PathBuf>) {
        if self.ignores(path) {
            return;
        }
        match std::fs::metadata(path) {
            Ok(m) if m.is_dir() => {
                let Ok(entries) = std::fs::read_dir(path) else {
                    return;
                };
                for e in entries.flatten() {
                    // A link to a directory is not followed (it may lead to an ancestor).
                    let link = e.file_type().is_ok_and(|t| t.is_symlink());
                    if !(link && e.path().is_dir()) {
                        self.newer_files(&e.path(), since, out);
                    }
                }
            }
            Ok(m) if m.modified().is_ok_and(|t| t >= since) => out.push(path.to_path_buf()),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn watched(dir: &Path, inputs: &[InputPattern], outputs: &[&str]) -> Watched {
        let files = ProcFiles {
            inputs: inputs.to_vec(),
            outputs: outputs.iter().map(PathBuf::from).collect(),
        };
        Watched::new(dir, vec![(7, files)], &[], |e| panic!("{e}"))
    }

    #[test]
    fn a_flat_glob_watches_its_directory_and_matches_new_files_only_there() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("src/sub")).unwrap();
        let w = watched(dir.path(), &[InputPattern::Glob("src/*.txt".into())], &[]);
        let roots: Vec<_> = w.roots().into_iter().collect();
        assert_eq!(roots, [(dir.path().join("src"), Depth::Flat)]);
        let hit = |p: &str| w.affected(&dir.path().join(p)).len() == 1;
        assert!(hit("src/new.txt"));
        assert!(!hit("src/new.rs"));
        assert!(!hit("src/sub/deep.txt"));
        assert!(!hit("src/.hidden.txt"));
        assert!(hit("src"), "the directory itself removed");
    }

    #[test]
    fn a_glob_matches_the_file_of_its_literal_name_too() {
        let dir = tempfile::tempdir().unwrap();
        let w = watched(
            dir.path(),
            &[InputPattern::Glob("report [final].csv".into())],
            &[],
        );
        let hit = |p: &str| w.affected(&dir.path().join(p)).len() == 1;
        assert!(
            hit("report [final].csv"),
            "the literal file the input stands for"
        );
        assert!(hit("report f.csv"));
        assert!(!hit("report x.csv"));
    }

    #[test]
    fn a_tree_glob_is_one_recursive_root_and_nested_roots_collapse() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("src/a/b")).unwrap();
        let w = watched(
            dir.path(),
            &[
                InputPattern::Glob("src/**/*.rs".into()),
                InputPattern::Glob("src/a/*.rs".into()),
                InputPattern::Path("src/a/b/x.rs".into()),
            ],
            &[],
        );
        let roots: Vec<_> = w.roots().into_iter().collect();
        assert_eq!(roots, [(dir.path().join("src"), Depth::Tree)]);
        assert_eq!(w.affected(&dir.path().join("src/a/b/c.rs")).len(), 1);
    }

    #[test]
    fn outputs_and_ignored_directories_never_count() {
        let dir = tempfile::tempdir().unwrap();
        let w = watched(
            dir.path(),
            &[InputPattern::Glob("*.txt".into())],
            &["out.txt"],
        );
        assert_eq!(w.affected(&dir.path().join("in.txt")).len(), 1);
        assert_eq!(w.affected(&dir.path().join("out.txt")).len(), 0);
    }

    #[test]
    fn an_editor_s_own_files_are_known_by_their_names() {
        for name in [
            ".a.txt.swp",
            ".a.txt.swo",
            ".a.txt.swpx",
            ".swp",
            ".#a.txt",
            "#a.txt#",
        ] {
            assert!(editor_file(Path::new(name)), "{name}");
        }
        assert!(editor_file(Path::new("src/.a.txt.kate-swp")));
        for name in [
            "a.swp",
            ".a.txt",
            "a.txt~",
            "#",
            "##",
            "4913",
            ".sw",
            "a.txt.swp",
        ] {
            assert!(!editor_file(Path::new(name)), "{name}");
        }
    }

    #[test]
    fn a_missing_root_is_watched_through_its_nearest_existing_ancestor() {
        let dir = tempfile::tempdir().unwrap();
        let w = watched(
            dir.path(),
            &[InputPattern::Path("gen/x/in.txt".into())],
            &[],
        );
        let roots: Vec<_> = w.roots().into_iter().collect();
        assert_eq!(roots, [(dir.path().to_path_buf(), Depth::Flat)]);
        assert_eq!(w.affected(&dir.path().join("gen")).len(), 1);
    }
}

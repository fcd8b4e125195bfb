//! The file-system events of a watch: notify's watcher behind `notify-debouncer-full`,
//! turned into [`Msg`]s on the watch loop's channel.
//!
//! The debouncer holds each event for the debounce time, merges repeated events of a path
//! and pairs the two halves of a rename (an editor saving through a temporary file), so a
//! burst of writes arrives as few messages; the watch loop then waits for a quiet period
//! before it starts a cycle. A debounce of 0 uses the watcher directly. Reads of a file
//! (open, close without writing) are not changes and are dropped here.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::mpsc::Sender;
use std::time::Duration;

use notify::event::{AccessKind, AccessMode};
use notify::{EventKind, RecommendedWatcher, RecursiveMode, Watcher};
use notify_debouncer_full::{DebounceEventResult, Debouncer, RecommendedCache, new_debouncer};

use super::WatchError;
use super::watched::Depth;

/// What the watch loop reacts to.
#[derive(Debug)]
pub(super) enum Msg {
    /// These paths changed; with `rescan`, events were lost and anything may have.
    Changes { paths: Vec<PathBuf>, rescan: bool },
    /// The watcher reported a problem (the watch goes on).
    Failed(String),
    /// The running cycle ended.
    CycleDone,
    /// Ctrl-C (or another terminating signal): the watch ends.
    Stop,
}

enum Inner {
    Debounced(Debouncer<RecommendedWatcher, RecommendedCache>),
    Direct(RecommendedWatcher),
}

/// The watcher, and the directories it watches.
pub(super) struct Source {
    inner: Inner,
    roots: BTreeMap<PathBuf, Depth>,
    /// What each root resolved to when it was watched: the kernel watches that directory,
    /// so a root whose symbolic link now leads elsewhere is watched anew.
    targets: BTreeMap<PathBuf, Target>,
}

/// The directory a root resolved to: its path without links, and the file it is. A
/// directory renamed away (`mv src src.old; mkdir src`) keeps its kernel watch, which
/// then watches `src.old`: the new `src`, at the same path, is another file.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Target {
    path: PathBuf,
    dev: u64,
    ino: u64,
}

impl Target {
    fn of(path: &Path) -> Option<Target> {
        use std::os::unix::fs::MetadataExt;
        let path = path.canonicalize().ok()?;
        let meta = std::fs::metadata(&path).ok()?;
        Some(Target {
            dev: meta.dev(),
            ino: meta.ino(),
            path,
        })
    }
}

impl Source {
    /// A watcher sending its events to `tx`, debounced by `debounce` (none when 0).
    pub(super) fn new(debounce: Duration, tx: Sender<Msg>) -> Result<Source, WatchError> {
        let inner = if debounce.is_zero() {
            let w = notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
                let msg = match res {
                    Ok(e) => changes(std::iter::once(e)),
                    Err(e) => Some(Msg::Failed(describe(&e))),
                };
                if let Some(msg) = msg {
                    let _ = tx.send(msg);
                }
            })
            .map_err(|e| WatchError::Start(describe(&e)))?;
            Inner::Direct(w)
        } else {
            let d = new_debouncer(debounce, None, move |res: DebounceEventResult| {
                let msgs = match res {
                    Ok(events) => changes(events.into_iter().map(|d| d.event))
                        .into_iter()
                        .collect(),
                    Err(errors) => errors
                        .iter()
                        .map(|e| Msg::Failed(describe(e)))
                        .collect::<Vec<_>>(),
                };
                for msg in msgs {
                    let _ = tx.send(msg);
                }
            })
            .map_err(|e| WatchError::Start(describe(&e)))?;
            Inner::Debounced(d)
        };
        Ok(Source {
            inner,
            roots: BTreeMap::new(),
            targets: BTreeMap::new(),
        })
    }

    /// Watches exactly `roots`: new ones are added, those no longer wanted removed, and
    /// those that now resolve to another directory (a symbolic link replaced) watched
    /// again, as are those that are another directory now (the one watched was renamed
    /// away). A directory that vanished meanwhile is skipped (the next refresh sees its
    /// ancestor). A directory that cannot be watched (inotify's limit reached) is left
    /// out, its partial watch removed, and returned with the reason; the others are
    /// watched all the same, and the next call tries it again.
    pub(super) fn set_roots(&mut self, roots: BTreeMap<PathBuf, Depth>) -> Vec<WatchError> {
        let old = std::mem::take(&mut self.roots);
        let old_targets = std::mem::take(&mut self.targets);
        let targets: BTreeMap<PathBuf, Target> = roots
            .keys()
            .filter_map(|p| Some((p.clone(), Target::of(p)?)))
            .collect();
        // Watched already, the same way, on the same directory.
        let kept = |path: &PathBuf, depth: Option<&Depth>| {
            old.get(path) == depth && old_targets.get(path) == targets.get(path)
        };
        for path in old.keys() {
            if !kept(path, roots.get(path)) {
                // It may be gone already (the kernel drops the watch of a removed directory).
                let _ = self.unwatch(path);
            }
        }
        let mut failed = Vec::new();
        for (path, depth) in roots {
            let target = targets.get(&path).cloned();
            if kept(&path, Some(&depth)) {
                self.targets.extend(target.map(|t| (path.clone(), t)));
                self.roots.insert(path, depth);
                continue;
            }
            match self.watch(&path, depth) {
                Ok(()) => {
                    self.targets.extend(target.map(|t| (path.clone(), t)));
                    self.roots.insert(path, depth);
                }
                Err(e) if matches!(e.kind, notify::ErrorKind::PathNotFound) => {}
                Err(e) => {
                    // A recursive watch that failed part way keeps what it added.
                    let _ = self.unwatch(&path);
                    failed.push(WatchError::Watch {
                        path,
                        why: describe(&e),
                    });
                }
            }
        }
        failed
    }

    /// The directories watched.
    pub(super) fn roots(&self) -> &BTreeMap<PathBuf, Depth> {
        &self.roots
    }

    fn watch(&mut self, path: &Path, depth: Depth) -> notify::Result<()> {
        let mode = match depth {
            Depth::Flat => RecursiveMode::NonRecursive,
            Depth::Tree => RecursiveMode::Recursive,
        };
        match &mut self.inner {
            Inner::Debounced(d) => d.watch(path, mode),
            Inner::Direct(w) => w.watch(path, mode),
        }
    }

    fn unwatch(&mut self, path: &Path) -> notify::Result<()> {
        match &mut self.inner {
            Inner::Debounced(d) => d.unwatch(path),
            Inner::Direct(w) => w.unwatch(path),
        }
    }
}

/// The changes among `events`, as one message (`None` when there are none).
fn changes(events: impl Iterator<Item = notify::Event>) -> Option<Msg> {
    let mut paths = Vec::new();
    let mut rescan = false;
    for e in events {
        if e.need_rescan() {
            rescan = true;
            continue;
        }
        let change = match e.kind {
            EventKind::Create(_) | EventKind::Remove(_) | EventKind::Modify(_) => true,
            EventKind::Access(AccessKind::Close(AccessMode::Write)) => true,
            EventKind::Any => true,
            EventKind::Access(_) | EventKind::Other => false,
        };
        if change {
            paths.extend(e.paths);
        }
    }
    paths.sort();
    paths.dedup();
    (rescan || !paths.is_empty()).then_some(Msg::Changes { paths, rescan })
}

/// A watcher error for the user; inotify's limits get a hint (as watchexec gives).
fn describe(e: &notify::Error) -> String {
    let hint = match &e.kind {
        notify::ErrorKind::MaxFilesWatch => Some(
            "the limit of inotify watches is reached (raise it: sysctl fs.inotify.max_user_watches=524288)",
        ),
        notify::ErrorKind::Io(io) if io.raw_os_error() == Some(24) => Some(
            "too many inotify instances or open files (raise fs.inotify.max_user_instances or the open file limit)",
        ),
        _ => None,
    };
    let Some(hint) = hint else {
        return e.to_string();
    };
    let paths: Vec<String> = e.paths.iter().map(|p| p.display().to_string()).collect();
    if paths.is_empty() {
        hint.to_string()
    } else {
        format!("{hint} ({})", paths.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use notify::event::{Flag, ModifyKind};

    #[test]
    fn an_overflow_of_the_event_queue_counts_as_a_change_of_anything() {
        // What notify's inotify backend sends on IN_Q_OVERFLOW: no path, the Rescan flag.
        let overflow = notify::Event::new(EventKind::Other).set_flag(Flag::Rescan);
        match changes(std::iter::once(overflow)) {
            Some(Msg::Changes { paths, rescan }) => assert!(rescan && paths.is_empty()),
            other => panic!("an overflow was not a change: {other:?}"),
        }
    }

    #[test]
    fn a_write_is_a_change_and_a_read_is_not() {
        let write = notify::Event::new(EventKind::Modify(ModifyKind::Any)).add_path("a".into());
        let read = notify::Event::new(EventKind::Access(AccessKind::Close(AccessMode::Read)))
            .add_path("b".into());
        match changes([write, read].into_iter()) {
            Some(Msg::Changes { paths, rescan }) => {
                assert!(!rescan);
                assert_eq!(paths, vec![PathBuf::from("a")]);
            }
            other => panic!("the write was lost: {other:?}"),
        }
        let read = notify::Event::new(EventKind::Access(AccessKind::Open(AccessMode::Any)));
        assert!(changes(std::iter::once(read)).is_none());
    }
}

//! `defer(closure)` and `tempdir()`: cleanups that run when the script ends — after
//! success, after a failure, and after Ctrl-C — in reverse order of registration.

use std::path::Path;
use std::sync::{Arc, Mutex, Weak};

use rhai::{Dynamic, Engine, EvalAltResult, FnPtr, NativeCallContext};
use tempfile::TempDir;

use super::callback::ScriptCallback;
use crate::exec::crashed::{self, DirKey};
use crate::graph::Callback;
use crate::graph::arity::{passed, takes};

/// Refuses a cleanup that could not be called when the script ends: a function pointer to
/// no function, or a closure taking parameters (a cleanup is called with none; one
/// taking a single parameter gets `()`, as a ctx-taking closure is passed).
fn callable(cb: &Callback) -> Result<(), Box<EvalAltResult>> {
    if let Some(why) = cb.missing() {
        return Err(format!("defer: the closure at {} is {why}", cb.origin()).into());
    }
    match cb.arities() {
        Some(arities) if passed(Some(arities), 0).is_none() => Err(format!(
            "defer: the closure at {} takes {}; a deferred cleanup is called as ||",
            cb.origin(),
            takes(arities)
        )
        .into()),
        _ => Ok(()),
    }
}

enum Cleanup {
    Deferred(Callback),
    /// A directory made by `tempdir()`, with its record in the crash journal.
    Dir(TempDir, Option<DirKey>),
}

/// The cleanups registered so far.
#[derive(Clone, Default)]
pub(super) struct Cleanups(Arc<Mutex<Vec<Cleanup>>>);

impl Cleanups {
    /// Registers `defer` and `tempdir`.
    pub(super) fn register(&self, engine: &mut Engine, weak: &Weak<Engine>) {
        let (me, w) = (self.clone(), weak.clone());
        engine.register_fn(
            "defer",
            move |ctx: NativeCallContext, f: FnPtr| -> Result<(), Box<EvalAltResult>> {
                super::job::unrepeatable();
                let cb: Callback = ScriptCallback::new(&ctx, f, w.clone());
                callable(&cb)?;
                me.push(Cleanup::Deferred(cb));
                Ok(())
            },
        );
        let me = self.clone();
        engine.register_fn("tempdir", move || me.tempdir(&crate::paths::temp_dir()));
        let me = self.clone();
        engine.register_fn("tempdir", move |parent: &str| me.tempdir(Path::new(parent)));
    }

    /// Makes a private directory in `parent` and registers its removal; it is recorded in
    /// the crash journal, so that the next run removes it if prun crashes first.
    fn tempdir(&self, parent: &Path) -> Result<String, Box<EvalAltResult>> {
        super::job::unrepeatable();
        if let Some(why) = crate::paths::why_root_may_not_use(parent) {
            return Err(format!(
                "root makes no temporary directory in {}: {why}, so another user could put \
                 a directory or a link of theirs in its place; choose a directory only root \
                 can change (or /tmp)",
                crate::shown::path(parent)
            )
            .into());
        }
        let dir = tempfile::Builder::new()
            .prefix("prun-")
            .tempdir_in(parent)
            // tempfile's error names the directory it tried, as an absolute path.
            .map_err(|e| format!("failed to create a temporary directory: {e}"))?;
        let path = dir.path().to_string_lossy().into_owned();
        let key = crashed::dir_made(dir.path());
        self.push(Cleanup::Dir(dir, key));
        Ok(path)
    }

    fn push(&self, c: Cleanup) {
        self.0.lock().expect("cleanups").push(c);
    }

    /// Runs every cleanup, newest first. A failing cleanup does not stop the others; each
    /// failure is returned as a message.
    pub(super) fn run(&self) -> Vec<String> {
        let mut errors = Vec::new();
        loop {
            // Cleanups may register more cleanups; take one at a time.
            let Some(c) = self.0.lock().expect("cleanups").pop() else {
                return errors;
            };
            match c {
                Cleanup::Deferred(cb) => {
                    // `exit()` ends the cleanup early, as it ends the script.
                    if let Err(e) = cb.call(Dynamic::UNIT, &[]).or_else(|e| match *e {
                        EvalAltResult::Exit(..) => Ok(Dynamic::UNIT),
                        _ => Err(e),
                    }) {
                        let src = cb.origin();
                        errors.push(format!(
                            "deferred cleanup ({src}) failed: {}",
                            crate::diag::closure_error(&src, &e)
                        ));
                    }
                }
                Cleanup::Dir(dir, key) => {
                    let removed = crashed::remove_private_dir(dir.path());
                    let path = dir.path().display().to_string();
                    drop(dir);
                    // A directory the script removed itself is no error.
                    match removed {
                        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                            errors.push(format!("failed to remove temporary directory {path}: {e}"))
                        }
                        _ => {
                            if let Some(key) = key {
                                crashed::dir_removed(key);
                            }
                        }
                    }
                }
            }
        }
    }
}

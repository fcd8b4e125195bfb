//! `defer(closure)` and `tempdir()`: cleanups that run when the script ends — after
//! success, after a failure, and after Ctrl-C — in reverse order of registration.

use std::sync::{Arc, Mutex, Weak};

use rhai::{Dynamic, Engine, EvalAltResult, FnPtr, NativeCallContext};
use tempfile::TempDir;

use super::callback::ScriptCallback;
use crate::graph::Callback;

enum Cleanup {
    Deferred(Callback),
    Dir(TempDir),
}

/// The cleanups registered so far.
#[derive(Clone, Default)]
pub(super) struct Cleanups(Arc<Mutex<Vec<Cleanup>>>);

impl Cleanups {
    /// Registers `defer` and `tempdir`.
    pub(super) fn register(&self, engine: &mut Engine, weak: &Weak<Engine>) {
        let (me, w) = (self.clone(), weak.clone());
        engine.register_fn("defer", move |ctx: NativeCallContext, f: FnPtr| {
            let cb = ScriptCallback::new(&ctx, f, w.clone());
            me.push(Cleanup::Deferred(cb));
        });
        let me = self.clone();
        engine.register_fn("tempdir", move || -> Result<String, Box<EvalAltResult>> {
            let dir = tempfile::Builder::new()
                .prefix("prun-")
                .tempdir()
                .map_err(|e| format!("failed to create a temporary directory: {e}"))?;
            let path = dir.path().to_string_lossy().into_owned();
            me.push(Cleanup::Dir(dir));
            Ok(path)
        });
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
                Cleanup::Dir(dir) => {
                    let path = dir.path().display().to_string();
                    if let Err(e) = dir.close() {
                        errors.push(format!("failed to remove temporary directory {path}: {e}"));
                    }
                }
            }
        }
    }
}

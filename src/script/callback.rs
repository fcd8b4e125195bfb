//! Script closures kept for later calls on other threads.

// rhai marks its stored-context API "deprecated" only to flag it as volatile.
#![expect(
    deprecated,
    reason = "NativeCallContextStore is volatile, not deprecated"
)]

use std::sync::{Arc, Weak};

use rhai::{Dynamic, Engine, EvalAltResult, FnPtr, NativeCallContext, NativeCallContextStore};

use crate::graph::Callable;

/// A closure plus a snapshot of the context it was handed over in.
///
/// `FnPtr::call` would run the closure with a fresh global state in which the script's
/// `import`s are missing; calling it within the stored context keeps them.
pub struct ScriptCallback {
    fp: FnPtr,
    /// Parameter counts the closure can be called with (after captured variables).
    arities: Vec<usize>,
    store: NativeCallContextStore,
    engine: Weak<Engine>,
    origin: String,
}

impl ScriptCallback {
    /// Captures `fp`, received by a native function called with `ctx`.
    pub fn new(ctx: &NativeCallContext, fp: FnPtr, engine: Weak<Engine>) -> Arc<ScriptCallback> {
        let curried = fp.curry().len();
        let arities: Vec<usize> = ctx
            .iter_namespaces()
            .flat_map(|m| m.iter_script_fn_info())
            .filter(|(.., name, _, _)| *name == fp.fn_name())
            .map(|(.., n, _)| n.saturating_sub(curried))
            .collect();
        let origin = crate::diag::location(ctx.call_source(), ctx.call_position());
        Arc::new(ScriptCallback {
            fp,
            arities,
            store: ctx.store_data(),
            engine,
            origin,
        })
    }
}

impl Callable for ScriptCallback {
    fn call(&self, ctx: Dynamic, args: &[String]) -> Result<Dynamic, Box<EvalAltResult>> {
        let Some(engine) = self.engine.upgrade() else {
            return Err("the script engine is gone".into());
        };
        let n = if self.arities.is_empty() || self.arities.contains(&(args.len() + 1)) {
            args.len() + 1
        } else if self.arities.contains(&1) {
            1
        } else if self.arities.contains(&0) {
            0
        } else {
            return Err(format!(
                "the closure at {} takes {} parameter(s); it is called as |ctx| or |ctx{}|",
                self.origin,
                self.arities[0],
                ", x".repeat(args.len())
            )
            .into());
        };
        let mut argv: Vec<Dynamic> = Vec::with_capacity(n);
        if n > 0 {
            argv.push(ctx);
            argv.extend(args.iter().take(n - 1).map(|a| Dynamic::from(a.clone())));
        }
        let nctx = NativeCallContext::from_stored_data(&engine, &self.store);
        self.fp.call_raw(&nctx, None, argv)
    }

    fn origin(&self) -> String {
        self.origin.clone()
    }
}

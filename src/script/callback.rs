//! Script closures kept for later calls on other threads.

// rhai marks its stored-context API "deprecated" only to flag it as volatile.
#![expect(
    deprecated,
    reason = "NativeCallContextStore is volatile, not deprecated"
)]

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex, Weak};

use rhai::{Dynamic, Engine, EvalAltResult, FnPtr, NativeCallContext, NativeCallContextStore};

use crate::graph::Callable;

/// A closure plus a snapshot of the context it was handed over in.
///
/// `FnPtr::call` would run the closure with a fresh global state in which the script's
/// `import`s are missing; calling it within the stored context keeps them.
pub struct ScriptCallback {
    fp: FnPtr,
    /// The closure's code (its syntax tree, without positions) and captured values.
    identity: String,
    /// Parameter counts the closure can be called with (after captured variables).
    arities: Vec<usize>,
    store: NativeCallContextStore,
    engine: Weak<Engine>,
    origin: crate::diag::Origin,
}

impl ScriptCallback {
    /// Captures `fp`, received by a native function called with `ctx`.
    pub fn new(ctx: &NativeCallContext, fp: FnPtr, engine: Weak<Engine>) -> Arc<ScriptCallback> {
        let curried = fp.curry().len();
        let defs: Vec<_> = ctx
            .iter_namespaces()
            .flat_map(|m| m.iter_script_fn_info())
            .filter(|(.., name, _, _)| *name == fp.fn_name())
            .collect();
        let arities: Vec<usize> = defs
            .iter()
            .map(|(.., n, _)| n.saturating_sub(curried))
            .collect();
        let mut identity = defs
            .iter()
            .map(|(.., def)| {
                let span = rhai::Span::new(def.body.start_position(), def.body.end_position());
                source_text(ctx.call_source(), span).unwrap_or_else(|| format!("{:?}", def.body))
            })
            .collect::<Vec<_>>()
            .join("\n");
        for v in fp.curry() {
            identity.push_str(&format!("\n{v:?}"));
        }
        let origin = crate::diag::Origin::new(ctx.call_source(), ctx.call_position());
        Arc::new(ScriptCallback {
            fp,
            identity,
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

    fn origin(&self) -> crate::diag::Origin {
        self.origin.clone()
    }

    fn identity(&self) -> String {
        self.identity.clone()
    }
}

/// Script texts by source name, read once per run.
static SOURCES: LazyLock<Mutex<HashMap<String, Option<Arc<str>>>>> =
    LazyLock::new(|| Mutex::new(HashMap::new()));

/// The text of a closure's body, read back from its script: what a closure *is*, for the
/// fingerprint (Rhai's syntax tree holds hashes that change from one process to the next).
fn source_text(source: Option<&str>, span: rhai::Span) -> Option<String> {
    let (start, end) = (span.start(), span.end());
    let (sl, sc, el, ec) = (
        start.line()?,
        start.position()?,
        end.line()?,
        end.position()?,
    );
    let text = SOURCES
        .lock()
        .expect("sources")
        .entry(source?.to_string())
        .or_insert_with(|| std::fs::read_to_string(source?).ok().map(Arc::from))
        .clone()?;
    let mut out = String::new();
    for (i, line) in text.lines().enumerate().skip(sl - 1).take(el + 1 - sl) {
        let l = i + 1;
        let from = if l == sl { sc.saturating_sub(1) } else { 0 };
        let to = if l == el { ec } else { usize::MAX };
        out.extend(line.chars().skip(from).take(to.saturating_sub(from)));
        out.push('\n');
    }
    Some(out)
}

//! Script closures kept for later calls on other threads.

// rhai marks its stored-context API "deprecated" only to flag it as volatile.
#![expect(
    deprecated,
    reason = "NativeCallContextStore is volatile, not deprecated"
)]

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, LazyLock, Mutex, PoisonError, Weak};

use rhai::{
    Dynamic, Engine, EvalAltResult, FnPtr, NativeCallContext, NativeCallContextStore,
    ScriptFuncDef, Shared,
};

use super::identity;
use super::values::MAX_NESTING;
use crate::graph::Callable;
use crate::graph::arity::{mismatch, passed};

/// A closure plus a snapshot of the context it was handed over in.
///
/// `FnPtr::call` would run the closure with a fresh global state in which the script's
/// `import`s are missing; calling it within the stored context keeps them.
pub(super) struct ScriptCallback {
    fp: FnPtr,
    /// A hash of the closure's code (its syntax tree, without positions), the script
    /// functions and modules it calls and its captured values: the text itself, which
    /// holds every captured value and imported module, is not kept per proc.
    identity: u128,
    /// Its code imports a module: never cached (see [`identity::Identity::never_cached`]).
    never_cached: bool,
    /// Parameter counts the closure can be called with (after its curried and captured
    /// values); `None` when it is no script function (a native one: unknown).
    arities: Option<Vec<usize>>,
    /// Why it cannot be called, when it names no function (see [`Callable::missing`]).
    missing: Option<String>,
    store: NativeCallContextStore,
    engine: Weak<Engine>,
    origin: crate::diag::Origin,
    /// Whether each call gets its own copies of the captured values, which other procs
    /// share (see [`ScriptCallback::detached`]).
    copies_per_call: bool,
}

impl ScriptCallback {
    /// Captures `fp`, received by a native function called with `ctx`, keeping its captured
    /// variables shared with the script (for `defer`, which sees their latest values).
    pub(super) fn new(
        ctx: &NativeCallContext,
        fp: FnPtr,
        engine: Weak<Engine>,
    ) -> Arc<ScriptCallback> {
        ScriptCallback::build(ctx, fp, engine, false)
    }

    fn build(
        ctx: &NativeCallContext,
        fp: FnPtr,
        engine: Weak<Engine>,
        copies_per_call: bool,
    ) -> Arc<ScriptCallback> {
        let curried = fp.curry().len();
        let defs_in = |m: &rhai::Module| -> Vec<Shared<ScriptFuncDef>> {
            m.iter_script_fn_info()
                .filter(|(.., name, _, _)| *name == fp.fn_name())
                .map(|(.., def)| def.clone())
                .collect()
        };
        let mut defs: Vec<Shared<ScriptFuncDef>> =
            ctx.iter_namespaces().flat_map(defs_in).collect();
        let mut store = ctx.store_data();
        let mut source = ctx.call_source().map(str::to_string);
        // A closure defined in an imported module is a function of that module (with the
        // module's functions, imports and constants): it is called with the module first
        // in line, its positions read against the module's file.
        if defs.is_empty()
            && fp.is_anonymous()
            && let Some((module, module_source)) =
                identity::closure_module(ctx.engine(), fp.fn_name())
        {
            defs = defs_in(&module);
            store.global.lib.insert(0, module);
            store.global.source = Some(module_source.clone().into());
            source = Some(module_source);
        }
        // A function given more curried values than it has parameters takes no count.
        let arities = (!defs.is_empty()).then(|| {
            defs.iter()
                .filter_map(|def| def.params.len().checked_sub(curried))
                .collect()
        });
        let missing = (defs.is_empty() && !fp.is_anonymous())
            .then(|| missing(ctx, fp.fn_name()))
            .flatten();
        let of = identity::of_closure(ctx, &fp);
        let identity = {
            let mut h = crate::fnv::Fnv::<u128>::new();
            h.update(of.text.as_bytes());
            h.0
        };
        // Where the closure is, for the messages that name it: its `|`, else (a named
        // function) the call that handed it over.
        let origin = defs
            .first()
            .and_then(|def| identity::closure_origin(ctx.engine(), &fp, def, source.as_deref()))
            .unwrap_or_else(|| crate::diag::Origin::new(ctx.call_source(), ctx.call_position()));
        Arc::new(ScriptCallback {
            fp,
            identity,
            never_cached: of.never_cached,
            arities,
            missing,
            store,
            engine,
            origin,
            copies_per_call,
        })
    }

    /// Captures a closure given to `proc`/`proto`: its captured variables are copied now
    /// (deeply, nested arrays and maps included), so that it sees the values they had at
    /// the definition — a closure made in a loop sees its own iteration's values, and a
    /// later assignment in the script changes neither what it returns nor its fingerprint.
    ///
    /// A captured array or map equal to the copy made of the same variable for an earlier
    /// proc shares that copy: the procs a loop defines, all capturing one big unchanged
    /// list, hold it once (each call of the closure gets its own copy, see
    /// [`Callable::call`]).
    pub(super) fn detached(
        ctx: &NativeCallContext,
        mut fp: FnPtr,
        engine: Weak<Engine>,
    ) -> Result<Arc<ScriptCallback>, TooDeep> {
        let run = run_of(ctx.engine());
        let copies = fp
            .curry()
            .iter()
            .map(|v| shared_copy(run, v))
            .collect::<Result<Vec<_>, _>>()?;
        fp.set_curry(copies);
        Ok(ScriptCallback::build(ctx, fp, engine, true))
    }
}

/// Why the function pointer to `name`, which is no script function, cannot be called:
/// `None` when a native function has that name (`Fn("to_string")`). A script function
/// defined further down counts, as Rhai hoists them.
fn missing(ctx: &NativeCallContext, name: &str) -> Option<String> {
    let natives = native_names(ctx.engine());
    if natives.contains(name) {
        return None;
    }
    let scripts: Vec<String> = ctx
        .iter_namespaces()
        .flat_map(|m| m.iter_script_fn_info().map(|(.., n, _, _)| n.to_string()))
        .collect();
    let candidates = scripts
        .iter()
        .map(String::as_str)
        .chain(natives.iter().map(String::as_str));
    let hint = crate::suggest::hint(name, candidates, "`");
    Some(format!(
        "Fn(\"{name}\"), and no function is named `{name}`{hint}"
    ))
}

/// The native functions of each run's engine (by its address) callable by a bare name,
/// listed once: listing them takes a while.
static NATIVES: LazyLock<Mutex<HashMap<usize, Arc<BTreeSet<String>>>>> =
    LazyLock::new(|| Mutex::new(HashMap::new()));

/// The names of the native functions of `engine` that a bare name calls.
fn native_names(engine: &Engine) -> Arc<BTreeSet<String>> {
    let mut natives = NATIVES.lock().unwrap_or_else(PoisonError::into_inner);
    natives
        .entry(run_of(engine))
        .or_insert_with(|| {
            let names = engine.collect_fn_metadata(
                None,
                |f| {
                    (f.namespace.is_empty() && f.script.is_none())
                        .then(|| f.metadata.name.to_string())
                },
                true,
            );
            Arc::new(names.into_iter().collect())
        })
        .clone()
}

/// The copies of captured arrays and maps made for the procs of each run (by its
/// engine's address), by the address of the variable each was copied from.
static COPIES: LazyLock<Mutex<HashMap<usize, HashMap<usize, Dynamic>>>> =
    LazyLock::new(|| Mutex::new(HashMap::new()));

fn run_of(engine: &Engine) -> usize {
    std::ptr::from_ref(engine) as usize
}

/// Forgets the copies and the native functions listed for the run of `engine` (it has
/// ended).
pub(super) fn forget(engine: &Engine) {
    COPIES
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .remove(&run_of(engine));
    NATIVES
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .remove(&run_of(engine));
}

/// A copy of the captured value `v` for a proc of `run`: for an array or a map held by a
/// captured variable, the copy made of that variable before, when the value has not
/// changed since (a shared, never modified value); otherwise a new one.
fn shared_copy(run: usize, v: &Dynamic) -> Result<Dynamic, TooDeep> {
    let address = if !v.is_shared() {
        None
    } else if let Some(a) = v.read_lock::<rhai::Array>() {
        Some(std::ptr::from_ref::<rhai::Array>(&a) as usize)
    } else {
        v.read_lock::<rhai::Map>()
            .map(|m| std::ptr::from_ref::<rhai::Map>(&m) as usize)
    };
    let Some(address) = address else {
        return deep_copy(v, 0);
    };
    let mut copies = COPIES.lock().unwrap_or_else(PoisonError::into_inner);
    let of_run = copies.entry(run).or_default();
    // The address only finds a candidate (a variable freed since may have left it to
    // another): the value itself decides.
    if let Some(copy) = of_run.get(&address)
        && same(copy, v, 0)
    {
        return Ok(copy.clone());
    }
    let copy = deep_copy(v, 0)?.into_shared();
    of_run.insert(address, copy.clone());
    Ok(copy)
}

/// Whether `a` and `b` hold the same value: arrays and maps element by element, closures
/// by name and captured values, other values by type and content. False where unsure (a
/// value of a type this does not compare).
fn same(a: &Dynamic, b: &Dynamic, depth: usize) -> bool {
    if depth > MAX_NESTING {
        return false;
    }
    if let (Some(x), Some(y)) = (a.read_lock::<rhai::Array>(), b.read_lock::<rhai::Array>()) {
        return x.len() == y.len() && x.iter().zip(y.iter()).all(|(x, y)| same(x, y, depth + 1));
    }
    if let (Some(x), Some(y)) = (a.read_lock::<rhai::Map>(), b.read_lock::<rhai::Map>()) {
        return x.len() == y.len()
            && x.iter()
                .all(|(k, v)| y.get(k).is_some_and(|w| same(v, w, depth + 1)));
    }
    if let (Some(x), Some(y)) = (a.read_lock::<FnPtr>(), b.read_lock::<FnPtr>()) {
        return x.fn_name() == y.fn_name()
            && x.curry().len() == y.curry().len()
            && x.curry()
                .iter()
                .zip(y.curry().iter())
                .all(|(x, y)| same(x, y, depth + 1));
    }
    if let (Some(x), Some(y)) = (
        a.read_lock::<rhai::ImmutableString>(),
        b.read_lock::<rhai::ImmutableString>(),
    ) {
        return *x == *y;
    }
    if let (Some(x), Some(y)) = (a.read_lock::<rhai::Blob>(), b.read_lock::<rhai::Blob>()) {
        return *x == *y;
    }
    if let (Ok(x), Ok(y)) = (a.as_float(), b.as_float()) {
        return x.to_bits() == y.to_bits();
    }
    match (a.as_int(), b.as_int()) {
        (Ok(x), Ok(y)) => return x == y,
        (Ok(_), Err(_)) | (Err(_), Ok(_)) => return false,
        (Err(_), Err(_)) => {}
    }
    match (a.as_bool(), b.as_bool()) {
        (Ok(x), Ok(y)) => return x == y,
        (Ok(_), Err(_)) | (Err(_), Ok(_)) => return false,
        (Err(_), Err(_)) => {}
    }
    match (a.as_char(), b.as_char()) {
        (Ok(x), Ok(y)) => return x == y,
        (Ok(_), Err(_)) | (Err(_), Ok(_)) => return false,
        (Err(_), Err(_)) => {}
    }
    a.is_unit() && b.is_unit()
}

/// A captured value too deeply nested to copy.
#[derive(Debug, thiserror::Error)]
#[error(
    "a captured value is nested deeper than {MAX_NESTING} levels; pass it through params or a result instead"
)]
pub(super) struct TooDeep;

/// An unshared copy of `v`: shared (captured) values are read, arrays, maps and the
/// captures of closures are copied element by element.
fn deep_copy(v: &Dynamic, depth: usize) -> Result<Dynamic, TooDeep> {
    if depth > MAX_NESTING {
        return Err(TooDeep);
    }
    if let Some(a) = v.read_lock::<rhai::Array>() {
        let copy = a
            .iter()
            .map(|x| deep_copy(x, depth + 1))
            .collect::<Result<rhai::Array, _>>()?;
        return Ok(copy.into());
    }
    if let Some(m) = v.read_lock::<rhai::Map>() {
        let mut copy = rhai::Map::new();
        for (k, x) in m.iter() {
            copy.insert(k.clone(), deep_copy(x, depth + 1)?);
        }
        return Ok(copy.into());
    }
    if let Some(f) = v.read_lock::<FnPtr>() {
        let mut copy = f.clone();
        let curry = f
            .curry()
            .iter()
            .map(|x| deep_copy(x, depth + 1))
            .collect::<Result<Vec<_>, _>>()?;
        copy.set_curry(curry);
        return Ok(Dynamic::from(copy));
    }
    Ok(v.flatten_clone())
}

std::thread_local! {
    /// How many closures the scheduler called are running on this thread.
    static CALLED: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// True while a closure the scheduler called (a proc's body, its `inputs`, a dependency
/// closure...) runs on this thread: what runs is not the script's top level.
pub(super) fn in_called_closure() -> bool {
    CALLED.get() > 0
}

/// A called closure running: counted in [`CALLED`] until dropped.
struct Called;

impl Called {
    fn enter() -> Called {
        CALLED.set(CALLED.get() + 1);
        Called
    }
}

impl Drop for Called {
    fn drop(&mut self) {
        CALLED.set(CALLED.get() - 1);
    }
}

impl Callable for ScriptCallback {
    fn call(&self, ctx: Dynamic, args: &[String]) -> Result<Dynamic, Box<EvalAltResult>> {
        let Some(engine) = self.engine.upgrade() else {
            return Err("the script engine is gone".into());
        };
        let _called = Called::enter();
        let Some(n) = passed(self.arities.as_deref(), args.len()) else {
            let arities = self.arities.as_deref().unwrap_or_default();
            let params = vec!["x"; args.len()];
            return Err(mismatch(None, &self.origin, arities, &params).into());
        };
        let mut argv: Vec<Dynamic> = Vec::with_capacity(n);
        if n > 0 {
            argv.push(ctx);
            argv.extend(args.iter().take(n - 1).map(|a| Dynamic::from(a.clone())));
        }
        let nctx = NativeCallContext::from_stored_data(&engine, &self.store);
        // Captured values shared with other procs (see `detached`): this call gets its own
        // copies (nothing in them is shared), passed before the arguments as curried
        // values are.
        if self.copies_per_call && self.fp.curry().iter().any(Dynamic::is_shared) {
            let mut fp = self.fp.clone();
            let mut all: Vec<Dynamic> = fp.curry().iter().map(Dynamic::flatten_clone).collect();
            all.extend(argv);
            fp.set_curry(Vec::new());
            return fp.call_raw(&nctx, None, all);
        }
        self.fp.call_raw(&nctx, None, argv)
    }

    fn origin(&self) -> crate::diag::Origin {
        self.origin.clone()
    }

    fn identity(&self) -> String {
        format!("{:032x}", self.identity)
    }

    fn cacheable(&self) -> bool {
        !self.never_cached
    }

    fn arities(&self) -> Option<&[usize]> {
        self.arities.as_deref()
    }

    fn missing(&self) -> Option<&str> {
        self.missing.as_deref()
    }
}

//! What a closure *is*, for the fingerprint of the proc it defines: the source text of the
//! closure, of the script functions it calls (transitively), and its captured values; a
//! closure that calls into a module (`::`) also counts the texts of the imported modules,
//! and one that reads the script's constants (`global::NAME`) their values.
//!
//! Rhai's syntax tree holds hashes that change from one process to the next, so the text is
//! read back from the script file. A closure starts at its `|`, found once per script by
//! walking the AST ([`remember`]); it ends where its body does: after a block body, or,
//! for an expression body, at the first `,`, `;` or unmatched closing bracket outside
//! brackets, strings and comments.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::fmt::Write as _;
use std::sync::{Arc, LazyLock, Mutex, MutexGuard, PoisonError};

use rhai::{
    AST, ASTNode, Dynamic, Engine, Expr, FnPtr, Module, NativeCallContext, Position, Shared,
};

use super::values::MAX_NESTING;
use crate::watch::ReadAtStart;

/// What is read once per run to tell closures apart. Each run has its own engine, which
/// names the run here (several runs may share a process: see [`crate::Runtime`]); the
/// host forgets its run when it ends ([`forget`]), before its engine's address can be
/// reused.
#[derive(Default)]
struct RunTexts {
    /// Script texts by source name.
    sources: HashMap<String, Option<Arc<str>>>,
    /// Where each closure of the compiled scripts starts: its function name → (source,
    /// `|`).
    starts: HashMap<String, (String, Position)>,
    /// The texts of script functions by name.
    texts: HashMap<String, Arc<Vec<String>>>,
    /// The texts of the modules imported so far, by the file (or stdlib name) they came
    /// from, in order.
    modules: BTreeMap<String, Arc<str>>,
    /// The values of the variables of the modules imported so far (`export let v = ...`),
    /// by origin, as [`record_module_closures`] found them once each module had run.
    module_values: BTreeMap<String, String>,
    /// The modules imported so far and their sources, by the names of the closures defined
    /// in them ([`record_module_closures`]).
    closure_modules: HashMap<String, (Shared<Module>, String)>,
    /// What the texts of script functions (by name) and of modules (by origin, `<` first)
    /// read, found once per run.
    reads: HashMap<String, Arc<Reads>>,
    /// The files the top level read with `read_file` (see [`record_top_level_read`]).
    top_level_reads: BTreeSet<std::path::PathBuf>,
    /// The embedder's modules imported so far whose functions are not pure (see
    /// [`record_opaque_module`]).
    opaque_modules: BTreeSet<String>,
    /// The modules imported so far, by origin, a function of which imports a module as it
    /// runs (see [`record_run_time_imports`]).
    importing_modules: BTreeSet<String>,
}

/// What a text reads, and the words it holds (each once), which may name script functions.
struct Reads {
    found: Found,
    words: Vec<String>,
}

impl Reads {
    fn of<'t>(texts: impl Iterator<Item = &'t str> + Clone) -> Reads {
        let mut found = Found::default();
        let mut words = HashSet::new();
        for text in texts {
            found.scan(text);
            words.extend(
                text.split(|c: char| !(c.is_alphanumeric() || c == '_'))
                    .filter(|w| !w.is_empty()),
            );
        }
        let mut words: Vec<String> = words.into_iter().map(str::to_string).collect();
        words.sort_unstable();
        Reads { found, words }
    }
}

/// What the texts `key` stands for read, found once per run of `engine`.
fn reads_of<'t>(
    engine: &Engine,
    key: &str,
    texts: impl Iterator<Item = &'t str> + Clone,
) -> Arc<Reads> {
    let run = run_of(engine);
    if let Some(r) = runs().get(&run).and_then(|r| r.reads.get(key)) {
        return r.clone();
    }
    let reads = Arc::new(Reads::of(texts));
    runs()
        .entry(run)
        .or_default()
        .reads
        .insert(key.to_string(), reads.clone());
    reads
}

/// How the origins of the stdlib's modules start (`<stdlib>/retry.rhai`).
pub(super) const STDLIB_ORIGIN: &str = "<stdlib>/";

static RUNS: LazyLock<Mutex<HashMap<usize, RunTexts>>> =
    LazyLock::new(|| Mutex::new(HashMap::new()));

/// The run of `engine`.
fn run_of(engine: &Engine) -> usize {
    std::ptr::from_ref(engine) as usize
}

fn runs() -> MutexGuard<'static, HashMap<usize, RunTexts>> {
    RUNS.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Records where the closures of `ast`, compiled by `engine`, start.
pub(super) fn remember(engine: &Engine, ast: &AST) {
    let Some(source) = ast.source() else {
        return;
    };
    let mut runs = runs();
    let starts = &mut runs.entry(run_of(engine)).or_default().starts;
    ast.walk(&mut |path: &[ASTNode]| {
        if let Some(ASTNode::Expr(Expr::DynamicConstant(v, pos))) = path.last()
            && let Some(f) = v.read_lock::<FnPtr>()
            && f.is_anonymous()
        {
            starts
                .entry(f.fn_name().to_string())
                .or_insert_with(|| (source.to_string(), *pos));
        }
        true
    });
}

/// Where the closure `fp` (a proc's body, a dependency closure...) is written: its `|`.
/// `source` is the file whose functions hold it (the module's, for a closure defined in
/// a module), `def` the closure. `None` for a named function, or a closure whose
/// position is unknown (`eval`).
pub(super) fn closure_origin(
    engine: &Engine,
    fp: &FnPtr,
    def: &rhai::ScriptFuncDef,
    source: Option<&str>,
) -> Option<crate::diag::Origin> {
    if !fp.is_anonymous() {
        return None;
    }
    let run = run_of(engine);
    let start = (runs().get(&run)?.starts.get(fp.fn_name()))
        .map(|(file, pos)| crate::diag::Origin::new(Some(file), *pos));
    if start.is_some() {
        return start;
    }
    // A closure inside a constant array or map (`deps: [|ctx| ...]`) is folded into that
    // constant, which has one position: the closure's `|` is found before its body.
    let source = source?;
    let body = def.body.start_position();
    let pos = pipe_before(&source_text(run, source)?, body).unwrap_or(body);
    Some(crate::diag::Origin::new(Some(source), pos))
}

/// The position of the opening `|` of the parameters (`|a, b|`, `||`) that end right
/// before `body` in `text`, if they do.
fn pipe_before(text: &str, body: Position) -> Option<Position> {
    let before = text[..offset_of(text, body)?]
        .trim_end()
        .strip_suffix('|')?;
    let open = before.rfind('|')?;
    let params = &before[open + 1..];
    if !params
        .chars()
        .all(|c| c.is_alphanumeric() || c == '_' || c == ',' || c.is_whitespace())
    {
        return None;
    }
    let line_start = before[..open].rfind('\n').map_or(0, |i| i + 1);
    let line = before[..open].matches('\n').count() + 1;
    let column = before[line_start..open].chars().count() + 1;
    Some(Position::new(
        u16::try_from(line).ok()?,
        u16::try_from(column).ok()?,
    ))
}

/// Records that a function (or closure) of the module compiled as `ast`, imported from
/// `source`, imports a module in its body, if one does: that module is read only when the
/// function runs, so its text is in no fingerprint, and a closure that calls into modules
/// is never UP_TO_DATE (see [`Writer::modules`]).
pub(super) fn record_run_time_imports(engine: &Engine, ast: &AST, source: &str) {
    let mut found = false;
    ast.clone_functions_only().walk(&mut |path: &[ASTNode]| {
        found |= matches!(path.last(), Some(ASTNode::Stmt(rhai::Stmt::Import(..))));
        !found
    });
    if found {
        runs()
            .entry(run_of(engine))
            .or_default()
            .importing_modules
            .insert(source.to_string());
    }
}

/// Records the text of a script that is not a file (`Runtime::run_str`), named `source`.
pub(super) fn set_source(engine: &Engine, source: &str, text: &str) {
    runs()
        .entry(run_of(engine))
        .or_default()
        .sources
        .insert(source.to_string(), Some(Arc::from(text)));
}

/// Records the text of a module the run of `engine` imports, from `origin` (its file, or
/// its stdlib name): a closure that calls into modules (`lib::f()`) is the text of every
/// module imported before it was defined, since which module an alias names is not
/// known from the closure's text.
pub(super) fn record_module(engine: &Engine, origin: &str, text: &str) {
    runs()
        .entry(run_of(engine))
        .or_default()
        .modules
        .insert(origin.to_string(), Arc::from(text));
}

/// Records that the run of `engine` imported `name`, a module of the embedder's that it
/// did not register as pure (`RuntimeBuilder::module`): its native functions have no text,
/// so what they give is in no fingerprint, and a closure that calls into modules (which
/// one an alias names is not known from its text) is never UP_TO_DATE.
pub(crate) fn record_opaque_module(engine: &Engine, name: &str) {
    runs()
        .entry(run_of(engine))
        .or_default()
        .opaque_modules
        .insert(name.to_string());
}

/// Records a module the run of `engine` imported from `source` (its file): a closure
/// defined in it is one of its functions, which a call from outside the module finds only
/// with it ([`closure_module`]).
///
/// Its variables' values are recorded too: what `lib::v` reads is made when the module
/// runs (`export const DATA = read_file("cfg")`), not written in its text.
pub(super) fn record_module_closures(engine: &Engine, module: &Shared<Module>, source: &str) {
    let mut values = String::new();
    for (name, value) in module.iter_var() {
        let _ = write!(values, "\nlet {name} = ");
        plain_value(&mut values, value, 0);
    }
    let mut runs = runs();
    let run = runs.entry(run_of(engine)).or_default();
    run.module_values.insert(source.to_string(), values);
    for (.., name, _, _) in module.iter_script_fn_info() {
        if is_anonymous(name) {
            run.closure_modules
                .insert(name.to_string(), (module.clone(), source.to_string()));
        }
    }
}

/// A deterministic rendering of a module's variable: as [`Writer::value`], but a function
/// pointer by its curried values alone (its code is in the module's text).
fn plain_value(out: &mut String, v: &Dynamic, depth: usize) {
    if depth > MAX_NESTING {
        out.push_str("<too deep>");
    } else if let Some(a) = v.read_lock::<rhai::Array>() {
        out.push('[');
        for x in a.iter() {
            plain_value(out, x, depth + 1);
            out.push_str(", ");
        }
        out.push(']');
    } else if let Some(m) = v.read_lock::<rhai::Map>() {
        out.push_str("#{");
        for (k, x) in m.iter() {
            let _ = write!(out, "{k:?}: ");
            plain_value(out, x, depth + 1);
            out.push_str(", ");
        }
        out.push('}');
    } else if let Some(f) = v.read_lock::<FnPtr>() {
        let _ = write!(out, "Fn({:?}", f.fn_name());
        for x in f.curry() {
            out.push_str(", ");
            plain_value(out, x, depth + 1);
        }
        out.push(')');
    } else {
        let v = v.flatten_clone();
        match shown(&v) {
            Some(text) => {
                let _ = write!(out, "{}:{text}", v.type_name());
            }
            // What it holds is not known: no later run's text matches this one.
            None => {
                use std::hash::BuildHasher;
                let random = std::collections::hash_map::RandomState::new().hash_one(0u8);
                let _ = write!(out, "{}:<unknown {random:x}>", v.type_name());
            }
        }
    }
}

/// A value's text for a fingerprint, which tells its contents apart: as Rhai's `Debug`
/// writes it, and prun's own values (the error a failed `wait` threw, `skip(...)`,
/// `when_scheduled(...)`) by their fields. `None` for a value of a type whose contents
/// prun cannot read (an embedder's own type, a proc's `ctx`), which Rhai writes as the
/// type's name alone: two such values could not be told apart.
fn shown(v: &Dynamic) -> Option<String> {
    use super::values::{Aborted, NoFailures, ProcFailure, SkipSignal, WhenScheduled};
    if !super::values::opaque(v) {
        return Some(format!("{v:?}"));
    }
    if let Some(f) = v.read_lock::<ProcFailure>() {
        Some(format!("{:?}", *f))
    } else if let Some(a) = v.read_lock::<Aborted>() {
        Some(format!("{:?}", *a))
    } else if let Some(s) = v.read_lock::<SkipSignal>() {
        Some(format!("{:?}", *s))
    } else if let Some(w) = v.read_lock::<WhenScheduled>() {
        Some(format!("{:?}", *w))
    } else {
        v.is::<NoFailures>().then(|| "NO_FAILURES".to_string())
    }
}

/// The imported module that defines the closure `name`, and its source, if a module does.
pub(crate) fn closure_module(engine: &Engine, name: &str) -> Option<(Shared<Module>, String)> {
    runs()
        .get(&run_of(engine))?
        .closure_modules
        .get(name)
        .cloned()
}

/// Records that the top level of the run of `engine` read the file `path` with
/// `read_file`: what it read then is in its procs' values for the whole run.
pub(crate) fn record_top_level_read(engine: &Engine, path: &str) {
    let mut runs = runs();
    let reads = &mut runs.entry(run_of(engine)).or_default().top_level_reads;
    reads.insert(path.into());
}

/// The files the run of `engine` has read so far and keeps what it read: the files of the
/// modules it imported (not the stdlib's) and those its top level read with `read_file`.
/// Found by the function returned, which may be called from any thread until the run ends.
pub(crate) fn read_at_start(engine: &Engine) -> impl Fn() -> Vec<ReadAtStart> + use<> {
    let run = run_of(engine);
    move || {
        let runs = runs();
        let Some(r) = runs.get(&run) else {
            return Vec::new();
        };
        let modules = (r.modules.keys())
            .filter(|origin| !origin.starts_with(STDLIB_ORIGIN))
            .map(|origin| ReadAtStart {
                path: origin.into(),
                module: true,
            });
        let read = r.top_level_reads.iter().map(|path| ReadAtStart {
            path: path.clone(),
            module: false,
        });
        modules.chain(read).collect()
    }
}

/// Forgets what was read for the run of `engine` (it has ended).
pub(super) fn forget(engine: &Engine) {
    runs().remove(&run_of(engine));
}

/// What a closure is, for the fingerprint of the proc it defines.
pub(super) struct Identity {
    /// Its text: code, captured values, and what its code reads (module texts, constants,
    /// environment variables).
    pub text: String,
    /// Its code imports a module: the module is read only when the closure runs, so its
    /// text is in no fingerprint, and the closure is never UP_TO_DATE. So is one that
    /// captured a value whose contents prun cannot read (see [`shown`]). (A body that reads
    /// or schedules other procs, sets the params, or makes a `tempdir()` or a `defer` is
    /// found as it does so, however it gets there: see `job::unrepeatable`.)
    pub never_cached: bool,
}

/// The identity of the closure `fp` received by a native function called with `ctx`.
pub(super) fn of_closure(ctx: &NativeCallContext, fp: &FnPtr) -> Identity {
    let named = ctx
        .iter_namespaces()
        .flat_map(|m| m.iter_script_fn_info())
        .map(|(.., n, _, _)| n.to_string())
        .filter(|n| !is_anonymous(n))
        .collect();
    let mut w = Writer {
        ctx,
        named,
        seen: HashSet::new(),
        out: String::new(),
        found: Found::default(),
        opaque: false,
    };
    w.function(fp, 0);
    let from_module = texts(ctx, fp.fn_name()).is_empty();
    // A closure defined in a module is not among the script's functions: its own text is
    // read from the module's file, for what it reads (its module's text counts below).
    if from_module && let Some(text) = start_text(run_of(ctx.engine()), fp.fn_name()) {
        let reads = Reads::of(std::iter::once(text.as_str()));
        w.found.add(&reads.found, true);
        w.mentioned(&reads);
    }
    let (mut modules_done, mut all_done) = (false, false);
    loop {
        // A function named at run time (`call(Fn("in" + "ner"))`, `eval(...)`) may be any
        // script function: all of them count.
        if w.found.dynamic && !all_done {
            all_done = true;
            let mut all: Vec<String> = w.named.iter().cloned().collect();
            all.sort_unstable();
            for name in &all {
                w.text(name);
            }
        }
        if !modules_done && (from_module || w.out.contains("::")) {
            modules_done = true;
            w.modules();
            continue;
        }
        break;
    }
    if w.found.constants
        && let Some(constants) = &ctx.global_runtime_state().constants
    {
        let constants: Vec<(String, Dynamic)> = constants
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect();
        for (name, value) in &constants {
            w.out.push_str(&format!("\nconst {name} = "));
            w.value(value, 0);
        }
    }
    w.environment();
    w.limits();
    let opaque = (modules_done || w.found.dynamic) && calls_opaque_modules(ctx.engine());
    Identity {
        text: w.out,
        never_cached: w.found.never_cached || opaque || w.opaque,
    }
}

/// Whether the run of `engine` imported a module of the embedder's that is not pure (see
/// [`record_opaque_module`]).
fn calls_opaque_modules(engine: &Engine) -> bool {
    runs()
        .get(&run_of(engine))
        .is_some_and(|r| !r.opaque_modules.is_empty())
}

/// Builds an identity, writing each script function once.
struct Writer<'a, 'b> {
    ctx: &'a NativeCallContext<'b>,
    /// The names of the script's named (not anonymous) functions.
    named: HashSet<String>,
    seen: HashSet<String>,
    out: String,
    /// What the texts written so far read at run time.
    found: Found,
    /// A captured value's contents cannot be read (see [`shown`]): the closure is never
    /// UP_TO_DATE.
    opaque: bool,
}

impl Writer<'_, '_> {
    /// The text of a function and of the script functions it names, then its captured
    /// values.
    fn function(&mut self, fp: &FnPtr, depth: usize) {
        // A captured pointer to `env` (`Fn("env").curry(name)`) reads a variable no text
        // names: every variable counts.
        self.found.all_env |= fp.fn_name() == "env";
        self.out.push_str("Fn(");
        self.text(fp.fn_name());
        for v in fp.curry() {
            self.out.push_str(", ");
            self.value(v, depth + 1);
        }
        self.out.push(')');
    }

    /// Appends the text of the script function `name` (every overload) and of the named
    /// script functions its text mentions, each once.
    fn text(&mut self, name: &str) {
        if !self.seen.insert(name.to_string()) {
            return;
        }
        let texts = texts(self.ctx, name);
        for text in texts.iter() {
            self.out.push_str(text);
            self.out.push('\n');
        }
        let reads = reads_of(self.ctx.engine(), name, texts.iter().map(String::as_str));
        self.found.add(&reads.found, true);
        self.mentioned(&reads);
    }

    /// Appends the texts of the named script functions `reads` mentions.
    fn mentioned(&mut self, reads: &Reads) {
        // The smaller side is walked: a module holds hundreds of words, a script often a
        // few functions, and thousands of closures may call into modules.
        let names: Vec<String> = if self.named.len() < reads.words.len() {
            let mut names: Vec<String> = self
                .named
                .iter()
                .filter(|n| reads.words.binary_search(n).is_ok())
                .cloned()
                .collect();
            names.sort_unstable();
            names
        } else {
            reads
                .words
                .iter()
                .filter(|w| self.named.contains(*w))
                .cloned()
                .collect()
        };
        for name in &names {
            self.text(name);
        }
    }

    /// Appends the texts of the modules imported so far, and of the script functions they
    /// name (a module's function may call the script's: Rhai looks there too).
    fn modules(&mut self) {
        let modules: Vec<(String, Arc<str>, String)> = match runs().get(&run_of(self.ctx.engine()))
        {
            Some(run) => {
                // A module's function that imports a module as it runs reads a text no
                // fingerprint holds, as a closure that imports one does.
                self.found.never_cached |= run
                    .modules
                    .keys()
                    .any(|o| run.importing_modules.contains(o));
                run.modules
                    .iter()
                    .map(|(o, t)| {
                        let values = run.module_values.get(o).cloned().unwrap_or_default();
                        (o.clone(), t.clone(), values)
                    })
                    .collect()
            }
            None => return,
        };
        let mut all = Vec::with_capacity(modules.len());
        for (origin, text, values) in &modules {
            self.out
                .push_str(&format!("\nmodule {origin}:\n{text}{values}"));
            let reads = reads_of(
                self.ctx.engine(),
                &format!("<{origin}"),
                std::iter::once(&**text),
            );
            self.found.add(&reads.found, false);
            all.push(reads);
        }
        for reads in &all {
            self.mentioned(reads);
        }
    }

    /// Appends the values of the environment variables the texts read (all of them when
    /// one is named at run time), as the closure's commands and `env(...)` would see them.
    fn environment(&mut self) {
        let vars: Vec<(String, Option<std::ffi::OsString>)> = if self.found.all_env {
            let mut all: Vec<_> = std::env::vars_os()
                .map(|(k, v)| (k.to_string_lossy().into_owned(), Some(v)))
                .collect();
            all.sort();
            all
        } else {
            let names = std::mem::take(&mut self.found.env);
            names
                .into_iter()
                .map(|n| {
                    let v = std::env::var_os(&n);
                    (n, v)
                })
                .collect()
        };
        for (name, value) in vars {
            self.out.push_str(&format!("\nenv {name}={value:?}"));
        }
    }

    /// Appends the engine's limits, which bound what the closure may do: a result made
    /// under a higher `max_operations` (or size, or call depth) is not what running it
    /// under a lower one gives, as a proc's `timeout` counts for its commands. An
    /// embedder sets them (`RuntimeBuilder::max_operations`...), and two runtimes may
    /// share a task DB.
    fn limits(&mut self) {
        let e = self.ctx.engine();
        let _ = write!(
            self.out,
            "\nlimits {} {} {} {} {}",
            e.max_operations(),
            e.max_call_levels(),
            e.max_string_size(),
            e.max_array_size(),
            e.max_map_size()
        );
    }

    /// Appends a deterministic rendering of a captured value (closures by their text).
    fn value(&mut self, v: &Dynamic, depth: usize) {
        if depth > MAX_NESTING {
            self.out.push_str("<too deep>");
            return;
        }
        if let Some(a) = v.read_lock::<rhai::Array>() {
            self.out.push('[');
            for x in a.iter() {
                self.value(x, depth + 1);
                self.out.push_str(", ");
            }
            self.out.push(']');
        } else if let Some(m) = v.read_lock::<rhai::Map>() {
            self.out.push_str("#{");
            for (k, x) in m.iter() {
                self.out.push_str(&format!("{k:?}: "));
                self.value(x, depth + 1);
                self.out.push_str(", ");
            }
            self.out.push('}');
        } else if let Some(f) = v.read_lock::<FnPtr>() {
            self.function(&f, depth);
        } else if v.is_shared() {
            self.value(&v.flatten_clone(), depth);
        } else if v.is_variant() {
            let text = shown(v);
            self.opaque |= text.is_none();
            let _ = write!(self.out, "{}:{}", v.type_name(), text.unwrap_or_default());
        } else {
            // Written in place: a captured list of 20,000 names is 20,000 of these.
            let _ = write!(self.out, "{}:{:?}", v.type_name(), v);
        }
    }
}

/// What code reads at run time beyond its own text, found by reading it (strings and
/// comments included: a word read too many makes a proc re-run, one missed would make a
/// result stale).
#[derive(Default)]
struct Found {
    /// A function is named at run time: `Fn(...)` of anything but a string literal, or
    /// `eval(...)`.
    dynamic: bool,
    /// A module is imported (see [`Identity::never_cached`]).
    never_cached: bool,
    /// Environment variables named: `env("NAME")`, `$NAME`, `${NAME}`.
    env: std::collections::BTreeSet<String>,
    /// `env(...)` of anything but a string literal: every variable counts.
    all_env: bool,
    /// The script's constants are read (`global::NAME`).
    constants: bool,
}

impl Found {
    /// Adds what `other` found; whether it imports a module or reads the script's
    /// constants only when `procs` (a module's text is not the code the closure runs, and
    /// a module's `global::` is the module's).
    fn add(&mut self, other: &Found, procs: bool) {
        self.dynamic |= other.dynamic;
        self.never_cached |= procs && other.never_cached;
        self.env.extend(other.env.iter().cloned());
        self.all_env |= other.all_env;
        self.constants |= procs && other.constants;
    }

    fn scan(&mut self, text: &str) {
        self.constants |= text.contains("global::");
        for name in crate::exec::shell_variables(text) {
            self.env.insert(name.to_string());
        }
        self.all_env |= crate::exec::shell_names_indirectly(text);
        let b = text.as_bytes();
        let mut i = 0;
        while i < b.len() {
            let starts_word = (b[i].is_ascii_alphabetic() || b[i] == b'_')
                && (i == 0 || !(b[i - 1].is_ascii_alphanumeric() || b[i - 1] == b'_'));
            if !starts_word {
                i += 1;
                continue;
            }
            let len = b[i..]
                .iter()
                .take_while(|c| c.is_ascii_alphanumeric() || **c == b'_')
                .count();
            let word = &text[i..i + len];
            let rest = text[i + len..].trim_start();
            // A module imported while the closure runs is not known when it is defined.
            if word == "import" && text[i + len..].starts_with(char::is_whitespace) {
                self.never_cached = true;
            }
            if let Some(args) = rest.strip_prefix('(') {
                let literal = string_argument(args);
                // A function named at run time may be `env` of any name, and so may a
                // pointer to `env` (`Fn("env").call(name)`): every variable counts.
                match word {
                    "Fn" => {
                        self.dynamic |= literal.is_none();
                        self.all_env |= literal.is_none_or(|f| f == "env");
                    }
                    "eval" => {
                        self.dynamic = true;
                        self.all_env = true;
                    }
                    "env" => match literal {
                        Some(name) => {
                            self.env.insert(name.to_string());
                        }
                        None => self.all_env = true,
                    },
                    _ => {}
                }
            }
            i += len;
        }
    }
}

/// The string a call's arguments start with when it is a plain literal (`"name")` or
/// `"name", ...`), without escapes.
fn string_argument(args: &str) -> Option<&str> {
    let rest = args.trim_start().strip_prefix('"')?;
    let end = rest.find(['"', '\\'])?;
    let after = rest[end..].strip_prefix('"')?.trim_start();
    (after.starts_with(')') || after.starts_with(',')).then_some(&rest[..end])
}

/// The texts of the script function `name`, one per overload, read once per run.
fn texts(ctx: &NativeCallContext, name: &str) -> Arc<Vec<String>> {
    let run = run_of(ctx.engine());
    if let Some(t) = runs().get(&run).and_then(|r| r.texts.get(name)) {
        return t.clone();
    }
    let texts: Vec<String> = ctx
        .iter_namespaces()
        .flat_map(|m| m.iter_script_fn_info())
        .filter(|(.., n, _, _)| *n == name)
        .map(|(.., def)| {
            let text = text_of(run, ctx.call_source(), name, def)
                .unwrap_or_else(|| format!("{:?}", def.body));
            let shown = if is_anonymous(name) { "" } else { name };
            format!("{shown}/{}: {text}", def.params.len())
        })
        .collect();
    let texts = Arc::new(texts);
    runs()
        .entry(run)
        .or_default()
        .texts
        .insert(name.to_string(), texts.clone());
    texts
}

fn is_anonymous(name: &str) -> bool {
    name.starts_with("anon$")
}

/// The text of the closure `name` from its `|`, when its start is known.
fn start_text(run: usize, name: &str) -> Option<String> {
    let (file, pos) = runs().get(&run)?.starts.get(name).cloned()?;
    let text = from_position(run, &file, pos)?;
    Some(text[..closure_len(&text)].to_string())
}

/// The source text of a script function: from the closure's `|` when known, else from its
/// body's start.
fn text_of(
    run: usize,
    source: Option<&str>,
    name: &str,
    def: &rhai::ScriptFuncDef,
) -> Option<String> {
    if runs()
        .get(&run)
        .is_some_and(|r| r.starts.contains_key(name))
    {
        return start_text(run, name);
    }
    let (start, end) = (def.body.start_position(), def.body.end_position());
    let text = from_position(run, source?, start)?;
    let len = match (start.line(), start.position(), end.line(), end.position()) {
        (Some(sl), Some(sc), Some(el), Some(ec)) if el >= sl => {
            let lines: Vec<&str> = text.split_inclusive('\n').take(el - sl + 1).collect();
            let before: usize = lines[..lines.len() - 1].iter().map(|l| l.len()).sum();
            let chars = if el == sl {
                ec + 1 - sc.min(ec + 1)
            } else {
                ec
            };
            let last = lines.last()?;
            before
                + last
                    .char_indices()
                    .nth(chars)
                    .map_or(last.len(), |(i, _)| i)
        }
        _ => expression_len(&text),
    };
    Some(text[..len.min(text.len())].to_string())
}

/// The text of `file` from `pos` (1-based line and column, in characters) to its end.
fn from_position(run: usize, file: &str, pos: Position) -> Option<String> {
    let text = source_text(run, file)?;
    Some(text[offset_of(&text, pos)?..].to_string())
}

/// The text of the script or module `file`, read once per run.
fn source_text(run: usize, file: &str) -> Option<Arc<str>> {
    runs()
        .entry(run)
        .or_default()
        .sources
        .entry(file.to_string())
        .or_insert_with(|| std::fs::read_to_string(file).ok().map(Arc::from))
        .clone()
}

/// The byte offset in `text` of `pos` (1-based line and column, in characters).
fn offset_of(text: &str, pos: Position) -> Option<usize> {
    let (line, col) = (pos.line()?, pos.position()?);
    let line_start: usize = text
        .split_inclusive('\n')
        .take(line - 1)
        .map(str::len)
        .sum();
    let rest = text.get(line_start..)?;
    let offset = rest
        .char_indices()
        .nth(col.saturating_sub(1))
        .map_or(rest.len(), |(i, _)| i);
    Some(line_start + offset)
}

/// The length in bytes of the closure `text` starts with (`|params| body`).
fn closure_len(text: &str) -> usize {
    let params = if text.starts_with("||") {
        2
    } else {
        match text.get(1..).and_then(|t| t.find('|')) {
            Some(i) => i + 2,
            None => return text.len(),
        }
    };
    params + expression_len(&text[params..])
}

/// The length in bytes of the expression `text` starts with.
fn expression_len(text: &str) -> usize {
    let mut s = Scan {
        b: text.as_bytes(),
        i: 0,
    };
    s.code(false);
    s.i.min(text.len())
}

/// A scanner over Rhai source that knows brackets, strings and comments.
struct Scan<'a> {
    b: &'a [u8],
    i: usize,
}

impl Scan<'_> {
    fn at(&self, k: usize) -> Option<u8> {
        self.b.get(self.i + k).copied()
    }

    /// Skips code up to a `,`, `;` or closing bracket outside brackets; inside `${...}`
    /// (`interpolation`), up to and including the closing `}`.
    fn code(&mut self, interpolation: bool) {
        let mut depth = 0usize;
        while let Some(c) = self.at(0) {
            match c {
                b'"' => self.quoted(b'"'),
                b'\'' => self.quoted(b'\''),
                b'`' => self.backtick(),
                b'/' if self.at(1) == Some(b'/') => {
                    while self.at(0).is_some_and(|c| c != b'\n') {
                        self.i += 1;
                    }
                }
                b'/' if self.at(1) == Some(b'*') => self.block_comment(),
                b'#' if matches!(self.at(1), Some(b'#' | b'"')) => self.raw_string(),
                b'(' | b'[' | b'{' => {
                    depth += 1;
                    self.i += 1;
                }
                b')' | b']' | b'}' => {
                    if depth == 0 {
                        if interpolation && c == b'}' {
                            self.i += 1;
                        }
                        return;
                    }
                    depth -= 1;
                    self.i += 1;
                }
                b',' | b';' if depth == 0 && !interpolation => return,
                _ => self.i += 1,
            }
        }
    }

    /// A `"string"` or `'c'`, with backslash escapes.
    fn quoted(&mut self, quote: u8) {
        self.i += 1;
        while let Some(c) = self.at(0) {
            self.i += 1;
            if c == b'\\' {
                self.i += 1;
            } else if c == quote {
                return;
            }
        }
    }

    /// A `` `string` `` (no escapes; a doubled backtick stands for one) with `${...}`.
    fn backtick(&mut self) {
        self.i += 1;
        while let Some(c) = self.at(0) {
            match c {
                b'`' if self.at(1) == Some(b'`') => self.i += 2,
                b'`' => {
                    self.i += 1;
                    return;
                }
                b'$' if self.at(1) == Some(b'{') => {
                    self.i += 2;
                    self.code(true);
                }
                _ => self.i += 1,
            }
        }
    }

    /// A `/* comment */`, which may nest.
    fn block_comment(&mut self) {
        let mut level = 0usize;
        while let Some(c) = self.at(0) {
            if c == b'/' && self.at(1) == Some(b'*') {
                level += 1;
                self.i += 2;
            } else if c == b'*' && self.at(1) == Some(b'/') {
                level -= 1;
                self.i += 2;
                if level == 0 {
                    return;
                }
            } else {
                self.i += 1;
            }
        }
    }

    /// A raw string `#"..."#` (any number of `#`), or a lone `#`.
    fn raw_string(&mut self) {
        let hashes = self.b[self.i..].iter().take_while(|&&c| c == b'#').count();
        if self.at(hashes) != Some(b'"') {
            self.i += hashes;
            return;
        }
        self.i += hashes + 1;
        while let Some(c) = self.at(0) {
            self.i += 1;
            if c == b'"'
                && self.b[self.i..]
                    .iter()
                    .take(hashes)
                    .filter(|&&c| c == b'#')
                    .count()
                    == hashes
            {
                self.i += hashes;
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_closure_ends_with_its_expression_or_block() {
        let cases = [
            (r#"|ctx| read_file("x"));"#, r#"|ctx| read_file("x")"#),
            ("|ctx| a + b, 2)", "|ctx| a + b"),
            ("|| { let x = [1, 2]; x }) + 1", "|| { let x = [1, 2]; x }"),
            (r#"|x| "a,b)" + x; rest"#, r#"|x| "a,b)" + x"#),
            ("|x| `v${x + f(1, 2)}`, y", "|x| `v${x + f(1, 2)}`"),
            (
                "|x| #{ a: 1, b: [x, 2] }.a }",
                "|x| #{ a: 1, b: [x, 2] }.a ",
            ),
            ("|x| x // a, comment\n + 1, z", "|x| x // a, comment\n + 1"),
            ("|x| x /* ) */ + 1)", "|x| x /* ) */ + 1"),
            (r##"|x| #"raw ) "# + x)"##, r##"|x| #"raw ) "# + x"##),
            ("|c| ','", "|c| ','"),
        ];
        for (text, want) in cases {
            assert_eq!(&text[..closure_len(text)], want, "{text}");
        }
    }
}

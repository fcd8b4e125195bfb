//! The graph API scripts call: `proc`, `proto`, `run`, `start`, `create`, `wait`,
//! `results`, `state`, `set_options`, `set_params`, `when_scheduled`, `skip`, `no_change`.

use std::sync::{Arc, Weak};

use rhai::{
    Array, Dynamic, Engine, EvalAltResult, FnPtr, ImmutableString, Map, NativeCallContext, Position,
};

use super::ctx::Ctx;
use super::job;
use super::opts::{self, Kind};
use super::values::{Aborted, NoFailures, ProcFailure, SkipSignal, WhenScheduled};
use crate::exec::{AbortReason, Core, Scheduler, Wake};
use crate::graph::{GraphError, ProcId, pattern::is_glob};

type R<T> = Result<T, Box<EvalAltResult>>;

/// Settings of the host that the API needs.
#[derive(Clone)]
pub(super) struct ApiConfig {
    /// `-j` from the command line, which wins over `set_options(#{ parallel })`.
    pub cli_parallel: Option<usize>,
    /// How `set_options(#{ task_db })` opens a DB.
    pub db: DbSettings,
    /// `--full-log-on-failure` was given: it wins over the script.
    pub cli_full_log: bool,
    /// `--live` or `--no-live` was given: it wins over `set_options(#{ dynamic })`.
    pub cli_live: bool,
    /// `--output` was given: it wins over `set_options(#{ output })`.
    pub cli_output: bool,
    /// The runtime has a log directory (`RuntimeBuilder::log_dir`): it wins over
    /// `set_options(#{ log_dir })`.
    pub fixed_log_dir: bool,
    /// Where `set_options(#{ keep_runs })` goes when the log directory is the runtime's,
    /// shared with other scripts' runs: the script's history is pruned, not those logs.
    pub history_keep: Option<Arc<std::sync::atomic::AtomicU64>>,
    /// `prun check`: unknown option keys and wrong `proc`/`proto` option values are
    /// recorded here and left out, so that the evaluation goes on to find more problems.
    pub findings: Option<Findings>,
    /// Watch mode's settings (`--watch`, `set_options(#{ watch, watch_debounce })`).
    pub watch: Arc<crate::watch::Session>,
}

/// What `prun check` finds while the script is evaluated (see [`Found`]).
pub(super) type Findings = Arc<Found>;

/// What `prun check` found while the script was evaluated: where, and what is wrong; and
/// the calls whose errors the script catches, which are not findings.
#[derive(Debug, Default)]
pub(super) struct Found {
    found: std::sync::Mutex<Vec<(crate::diag::Origin, String)>>,
    caught: std::sync::RwLock<super::lint::Caught>,
}

impl Found {
    /// Sets the calls whose errors the script catches: those of `ast`.
    pub(super) fn know_caught(&self, ast: &rhai::AST) {
        *self.caught.write().unwrap_or_else(|e| e.into_inner()) = super::lint::Caught::of(ast);
    }

    /// Records `message`, the error of the call `ctx` is about, so that the evaluation
    /// goes on; except when the script catches that call's errors: then it is the call's
    /// error, as in a run, and the script's `catch` decides what follows.
    pub(super) fn record(&self, ctx: &NativeCallContext, message: String) -> R<()> {
        let caught = self.caught.read().unwrap_or_else(|e| e.into_inner());
        if caught.holds(ctx.call_source(), ctx.call_position()) {
            return Err(err(message));
        }
        let origin = crate::diag::Origin::new(ctx.call_source(), ctx.call_position());
        let mut found = self.found.lock().unwrap_or_else(|e| e.into_inner());
        found.push((origin, message));
        Ok(())
    }

    /// Takes what was found.
    pub(super) fn take(&self) -> Vec<(crate::diag::Origin, String)> {
        std::mem::take(&mut *self.found.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

/// In `prun check`, records the keys of `opts` that are not options and leaves them out
/// (see [`Found::record`]).
fn known_options(
    ctx: &NativeCallContext,
    findings: Option<&Findings>,
    what: &str,
    unknown: impl Fn(&str) -> Option<String>,
    opts: Map,
) -> R<Map> {
    let Some(findings) = findings else {
        return Ok(opts);
    };
    let mut known = Map::new();
    for (k, v) in opts {
        match unknown(&k) {
            Some(m) => findings.record(ctx, format!("{what}{m}"))?,
            None => {
                known.insert(k, v);
            }
        }
    }
    Ok(known)
}

/// What `set_options(#{ task_db })` needs to open another task DB.
#[derive(Debug, Clone, Default)]
pub(crate) struct DbSettings {
    /// `--db` or `--no-db` was given: the command line wins over the script.
    pub fixed: bool,
    /// The script's name and arguments, recorded with each run.
    pub script: crate::store::ScriptName,
    pub args: Vec<String>,
    /// `--full`.
    pub full: bool,
    /// A dry run: the DB is only read (see `Cache::open_read_only`).
    pub read_only: bool,
}

fn err(msg: impl Into<String>) -> Box<EvalAltResult> {
    msg.into().into()
}

fn throw(value: Dynamic) -> Box<EvalAltResult> {
    Box::new(EvalAltResult::ErrorRuntime(value, Position::NONE))
}

/// Runs a graph operation `what` (the API function's name) on the scheduler core.
/// Closures evaluated for the core (dependency, `arg_choices`, `inputs`/`outputs`) compute
/// values; they cannot schedule, wait, define or change options.
fn core<T>(
    sched: &Arc<Scheduler>,
    what: &str,
    f: impl FnMut(&mut Core) -> Result<T, GraphError>,
) -> R<T> {
    only_outside_evaluation(what)?;
    job::unrepeatable();
    sched
        .graph_op(f)
        .map_err(|e| err(crate::graph::graph_error(sched.lock().graph(), &e)))
}

/// Refuses `what` in a deferred cleanup: the run has ended, so a proc defined there could
/// never run and an option or a param set there could never act (scheduling is refused
/// there too, see [`GraphError::RunEnded`]).
fn only_before_the_end(sched: &Scheduler, what: &str) -> R<()> {
    if sched.lock().scheduling_ended() {
        return Err(err(format!(
            "the run has ended: a deferred cleanup cannot call {what}() (nothing it defines or sets could act; run its commands with exec, shell or pipe)"
        )));
    }
    Ok(())
}

/// Refuses `what` in a closure evaluated for the core (a dependency, `arg_choices`,
/// `inputs` or `outputs` closure), naming the rule.
fn only_outside_evaluation(what: &str) -> R<()> {
    match crate::exec::evaluating() {
        Some(kind) => Err(err(format!(
            "{kind} cannot call {what}(): it must only compute its value (it may call state(), results(), exec(), shell(), pipe() and sleep())"
        ))),
        None => Ok(()),
    }
}

/// What params cannot hold: a function's code, or a value whose contents prun cannot
/// read; either would count in fingerprints without what it stands for.
enum NotData {
    Function,
    /// Of this type (as Rust names it).
    Opaque(&'static str),
}

/// The key path (`a.b[0]`) of the first value in `m` that is not data, and what it is.
fn not_data_in(m: &Map) -> Option<(String, NotData)> {
    fn find(v: &rhai::Dynamic, path: String, depth: usize) -> Option<(String, NotData)> {
        if depth > super::values::MAX_NESTING {
            return None;
        }
        if v.is::<rhai::FnPtr>() {
            return Some((path, NotData::Function));
        }
        if super::values::opaque(v) {
            return Some((path, NotData::Opaque(v.type_name())));
        }
        if let Some(a) = v.read_lock::<Array>() {
            return a
                .iter()
                .enumerate()
                .find_map(|(i, x)| find(x, format!("{path}[{i}]"), depth + 1));
        }
        let m = v.read_lock::<Map>()?;
        m.iter()
            .find_map(|(k, x)| find(x, format!("{path}.{k}"), depth + 1))
    }
    m.iter().find_map(|(k, v)| find(v, k.to_string(), 0))
}

fn names(c: &Core, ids: &[ProcId]) -> Array {
    ids.iter()
        .map(|&i| c.graph().proc(i).name.clone().into())
        .collect()
}

/// The names of an array given to `what` (`run`, `start`, `wait`, `watch`): each must be
/// a string; the error names the function, the entry and what it is.
fn strings(what: &str, a: Array) -> R<Vec<String>> {
    a.into_iter()
        .enumerate()
        .map(|(i, v)| {
            let shown = crate::diag::value_words(&v);
            v.into_string().map_err(|_| {
                err(format!(
                    "{what}: the array must hold proc names (strings), but entry {} is {shown}",
                    i + 1
                ))
            })
        })
        .collect()
}

/// In `prun check`, records the keys of a `proc`/`proto` options map that are not options
/// (as [`known_options`]), naming the definition.
fn known_definition_options(
    ctx: &NativeCallContext,
    findings: Option<&Findings>,
    fn_name: &str,
    kind: Kind,
    name: &str,
    opts: Map,
) -> R<Map> {
    if findings.is_none() {
        return Ok(opts);
    }
    let what = format!("{fn_name} \"{name}\": ");
    known_options(ctx, findings, &what, |k| opts::unknown_key(kind, k), opts)
}

/// Registers the graph API. Closures stored in definitions keep a weak reference to the
/// engine, so the engine does not keep itself alive through the scheduler.
pub(super) fn register(
    engine: &mut Engine,
    sched: &Arc<Scheduler>,
    weak: &Weak<Engine>,
    cfg: &ApiConfig,
) {
    let definer = Arc::new(Definer {
        sched: sched.clone(),
        weak: weak.clone(),
        findings: cfg.findings.clone(),
    });
    for (fn_name, kind) in [("proc", Kind::Proc), ("proto", Kind::Proto)] {
        let d = definer.clone();
        engine.register_fn(
            fn_name,
            move |ctx: NativeCallContext, name: ImmutableString, body: FnPtr| {
                d.define(&ctx, kind, name, Map::new(), Some(body))
            },
        );
        let d = definer.clone();
        engine.register_fn(
            fn_name,
            move |ctx: NativeCallContext, name: ImmutableString, opts: Map| {
                let f = d.findings.as_ref();
                let opts = known_definition_options(&ctx, f, fn_name, kind, &name, opts)?;
                d.define(&ctx, kind, name, opts, None)
            },
        );
        let d = definer.clone();
        engine.register_fn(
            fn_name,
            move |ctx: NativeCallContext, name: ImmutableString, opts: Map, body: FnPtr| {
                let f = d.findings.as_ref();
                let opts = known_definition_options(&ctx, f, fn_name, kind, &name, opts)?;
                d.define(&ctx, kind, name, opts, Some(body))
            },
        );
    }

    let s = sched.clone();
    engine.register_fn("run", move |pattern: &str| {
        run(&s, vec![pattern.to_string()])
    });
    let s = sched.clone();
    engine.register_fn("run", move |patterns: Array| {
        run(&s, strings("run", patterns)?)
    });
    let s = sched.clone();
    engine.register_fn("run", move |_: &mut Ctx, pattern: &str| {
        run(&s, vec![pattern.to_string()])
    });
    let s = sched.clone();
    engine.register_fn("run", move |_: &mut Ctx, patterns: Array| {
        run(&s, strings("run", patterns)?)
    });
    let s = sched.clone();
    engine.register_fn("run", move |pattern: &str, args: Map| {
        run(&s, vec![filled(&s, "run", pattern, args)?])
    });
    let s = sched.clone();
    engine.register_fn("run", move |_: &mut Ctx, pattern: &str, args: Map| {
        run(&s, vec![filled(&s, "run", pattern, args)?])
    });
    let s = sched.clone();
    engine.register_fn("start", move |name: &str| start(&s, vec![name.to_string()]));
    let s = sched.clone();
    engine.register_fn("start", move |names: Array| {
        start(&s, strings("start", names)?)
    });
    let s = sched.clone();
    engine.register_fn("start", move |_: &mut Ctx, name: &str| {
        start(&s, vec![name.to_string()])
    });
    let s = sched.clone();
    engine.register_fn("start", move |_: &mut Ctx, names: Array| {
        start(&s, strings("start", names)?)
    });
    let s = sched.clone();
    engine.register_fn("create", move |pattern: &str| create(&s, pattern));
    let s = sched.clone();
    engine.register_fn("create", move |_: &mut Ctx, pattern: &str| {
        create(&s, pattern)
    });
    let s = sched.clone();
    engine.register_fn("create", move |pattern: &str, args: Map| {
        create(&s, &filled(&s, "create", pattern, args)?)
    });
    let s = sched.clone();
    engine.register_fn("create", move |_: &mut Ctx, pattern: &str, args: Map| {
        create(&s, &filled(&s, "create", pattern, args)?)
    });

    let s = sched.clone();
    engine.register_fn("wait", move || wait_all(&s));
    // `ctx.wait()` says what `wait()` inside a proc says.
    let s = sched.clone();
    engine.register_fn("wait", move |_: &mut Ctx| wait_all(&s));
    let s = sched.clone();
    engine.register_fn("wait", move |name: &str| {
        wait(&s, vec![name.to_string()], true)
    });
    let s = sched.clone();
    engine.register_fn("wait", move |names: Array| {
        wait(&s, strings("wait", names)?, false)
    });
    let s = sched.clone();
    engine.register_fn("wait", move |_: &mut Ctx, name: &str| {
        wait(&s, vec![name.to_string()], true)
    });
    let s = sched.clone();
    engine.register_fn("wait", move |_: &mut Ctx, names: Array| {
        wait(&s, strings("wait", names)?, false)
    });

    let s = sched.clone();
    engine.register_fn("results", move || -> Map {
        job::unrepeatable();
        let c = s.lock();
        c.scheduled()
            .filter_map(|p| p.result.map(|r| (p.name.as_ref().into(), r)))
            .collect()
    });
    let s = sched.clone();
    engine.register_fn("state", move |name: &str| -> R<String> {
        job::unrepeatable();
        let c = s.lock();
        let Some(id) = c.graph().lookup(name) else {
            if crate::exec::being_made(name) {
                return Ok(crate::exec::State::Idle.to_string());
            }
            return Err(err(crate::graph::graph_error(
                c.graph(),
                &GraphError::UnknownProc(name.into()),
            )));
        };
        Ok(c.state(id).to_string())
    });

    let (s, c) = (sched.clone(), cfg.clone());
    engine.register_fn("set_options", move |ctx: NativeCallContext, m: Map| {
        let unknown = |k: &str| (!is_option(k)).then(|| unknown_option(k));
        let m = known_options(&ctx, c.findings.as_ref(), "", unknown, m)?;
        set_options(&s, &c, m)
    });
    let (s, w) = (sched.clone(), cfg.watch.clone());
    engine.register_fn("watch", move || watch(&s, &w, Vec::new()));
    let (s, w) = (sched.clone(), cfg.watch.clone());
    engine.register_fn("watch", move |name: &str| {
        watch(&s, &w, vec![name.to_string()])
    });
    let (s, w) = (sched.clone(), cfg.watch.clone());
    engine.register_fn("watch", move |names: Array| {
        watch(&s, &w, strings("watch", names)?)
    });
    let s = sched.clone();
    engine.register_fn("set_params", move |ctx: NativeCallContext, m: Map| {
        match not_data_in(&m) {
            Some((key, NotData::Function)) => return Err(err(format!(
                "set_params: `{key}` is a function; params are data (they count in fingerprints, which cannot see a function's code there): let the closures that call it capture it"
            ))),
            Some((key, NotData::Opaque(type_name))) => return Err(err(format!(
                "set_params: `{key}` is a value of type {}, whose contents prun cannot read; params are data (they count in fingerprints by their text): pass what the procs need of it (a string, a number, a map)",
                ctx.engine().map_type_name(type_name)
            ))),
            None => {}
        }
        only_before_the_end(&s, "set_params")?;
        core(&s, "set_params", |c| {
            c.set_params(m.clone());
            Ok(())
        })
    });

    engine
        .register_type_with_name::<NoFailures>("NoFailures")
        .register_fn("to_string", |_: &mut NoFailures| "NO_FAILURES".to_string())
        .register_type_with_name::<WhenScheduled>("WhenScheduled")
        .register_fn("when_scheduled", |p: &str| WhenScheduled(p.to_string()))
        .register_fn("to_string", |w: &mut WhenScheduled| {
            format!("when_scheduled(\"{}\")", w.0)
        })
        .register_type_with_name::<SkipSignal>("Skip")
        .register_fn("skip", |why: &str| SkipSignal {
            why: why.to_string(),
            no_change: false,
        })
        .register_fn("skip", || SkipSignal {
            why: String::new(),
            no_change: false,
        })
        .register_fn("no_change", |why: &str| SkipSignal {
            why: why.to_string(),
            no_change: true,
        })
        .register_fn("no_change", || SkipSignal {
            why: String::new(),
            no_change: true,
        })
        .register_fn("to_string", |s: &mut SkipSignal| {
            let what = if s.no_change { "no change" } else { "skipped" };
            if s.why.is_empty() {
                what.to_string()
            } else {
                format!("{what}: {}", s.why)
            }
        })
        .register_type_with_name::<ProcFailure>("ProcFailure")
        .register_fn("to_string", |p: &mut ProcFailure| p.0.clone())
        .register_type_with_name::<Aborted>("Aborted")
        .register_fn("to_string", |a: &mut Aborted| a.0.clone());
}

/// What `proc` and `proto` need to define one.
struct Definer {
    sched: Arc<Scheduler>,
    weak: Weak<Engine>,
    /// `prun check`'s findings (see [`ApiConfig::findings`]).
    findings: Option<Findings>,
}

impl Definer {
    /// Defines a proc or proto named `name` and returns the name (the script's own
    /// string, not a copy). In `prun check`, a wrong option value is recorded and the
    /// definition made without that option, so that the evaluation goes on.
    fn define(
        &self,
        ctx: &NativeCallContext,
        kind: Kind,
        name: ImmutableString,
        opts: Map,
        body: Option<FnPtr>,
    ) -> R<ImmutableString> {
        let weak = &self.weak;
        let def = match &self.findings {
            None => opts::parse(ctx, weak, kind, &name, opts, body),
            Some(found) => parse_recording(ctx, weak, found, kind, &name, opts, body),
        }
        .map_err(|e| err(e.to_string()))?;
        let mut def = Arc::new(def);
        let what = match kind {
            Kind::Proc => "proc",
            Kind::Proto => "proto",
        };
        let proto = matches!(kind, Kind::Proto);
        let by = job::body_run();
        only_before_the_end(&self.sched, what)?;
        let defined = core(&self.sched, what, |c| {
            if by.is_some_and(|by| c.defined_by_earlier_run(proto, &name, by)) {
                return Ok(());
            }
            match kind {
                Kind::Proc => c.define_proc(name.clone(), &mut def).map(|_| ())?,
                Kind::Proto => c.define_proto(&name, def.clone())?,
            }
            if let Some(by) = by {
                c.defined_in_body(proto, &name, by);
            }
            Ok(())
        });
        match (defined, &self.findings) {
            (Ok(()), _) => {}
            // `prun check`: a definition the graph refuses (a name defined twice, a name
            // no proc can have) is recorded and left out, so that the evaluation goes on.
            (Err(e), Some(found)) => {
                let message = match *e {
                    EvalAltResult::ErrorRuntime(v, _) => v.to_string(),
                    other => other.to_string(),
                };
                found.record(ctx, message)?;
            }
            (Err(e), None) => return Err(e),
        }
        Ok(name)
    }
}

/// [`opts::parse`] for `prun check`: each error about one option is recorded in `found`
/// and that option left out (a wrong `cmd` or `shell` replaced by `true`), and a missing
/// or doubled body recorded and made one (see [`one_body`]), until the rest parse; any
/// other error is returned.
fn parse_recording(
    ctx: &NativeCallContext,
    weak: &Weak<Engine>,
    found: &Findings,
    kind: Kind,
    name: &str,
    mut opts: Map,
    body: Option<FnPtr>,
) -> Result<crate::graph::ProcDef, opts::DefError> {
    loop {
        let e = match opts::parse(ctx, weak, kind, name, opts.clone(), body.clone()) {
            Ok(def) => return Ok(def),
            Err(e) => e,
        };
        match e.option().filter(|k| opts.contains_key(*k)) {
            // A wrong body is replaced, not left out: without one, "it has no body" would
            // be a second problem the script does not have.
            Some(key @ "cmd") => opts.insert(key.into(), true_cmd()),
            Some(key @ "shell") => opts.insert(key.into(), "true".into()),
            Some(key) => opts.remove(key),
            None if one_body(&mut opts, body.is_some()) => None,
            None => return Err(e),
        };
        found.record(ctx, e.to_string()).map_err(|_| e)?;
    }
}

/// `cmd: ["true"]`, the body `prun check` gives a definition in place of a wrong one.
fn true_cmd() -> Dynamic {
    Dynamic::from(vec![Dynamic::from("true")])
}

/// For `prun check`: gives a definition that has no body, or more than one, exactly one
/// (`cmd: ["true"]`, or the first of its closure, `cmd` and `shell`); false when it has
/// one already (its body is not what is wrong).
fn one_body(opts: &mut Map, closure: bool) -> bool {
    let given = [
        closure,
        opts.contains_key("cmd"),
        opts.contains_key("shell"),
    ];
    match given.iter().filter(|g| **g).count() {
        0 => {
            opts.insert("cmd".into(), true_cmd());
            true
        }
        1 => false,
        _ => {
            opts.remove("shell");
            if closure {
                opts.remove("cmd");
            }
            true
        }
    }
}

fn run(sched: &Arc<Scheduler>, patterns: Vec<String>) -> R<Array> {
    // Each pattern is expanded once, even when the operation is retried (see Core::expand).
    let mut expanded: Vec<Vec<ProcId>> = Vec::new();
    core(sched, "run", |c| {
        for p in &patterns[expanded.len()..] {
            expanded.push(c.expand(p)?);
        }
        // One pattern (the usual case) is not copied: it may stand for many procs.
        let all;
        let ids = match &expanded[..] {
            [one] => one,
            _ => {
                all = expanded.concat();
                &all
            }
        };
        c.start_with_now(ids)?;
        Ok(names(c, ids))
    })
}

fn start(sched: &Arc<Scheduler>, patterns: Vec<String>) -> R<()> {
    core(sched, "start", |c| {
        let mut ids = Vec::new();
        for p in &patterns {
            match c.graph().lookup(p) {
                Some(id) => ids.push(id),
                None if is_glob(p) => {
                    let hits: Vec<ProcId> = c.graph().matching(p).collect();
                    if hits.is_empty() {
                        return Err(GraphError::NoProcMatch(p.clone()));
                    }
                    ids.extend(hits);
                }
                None => return Err(GraphError::UnknownProc(p.clone())),
            }
        }
        c.start_with_now(&ids)
    })
}

fn create(sched: &Arc<Scheduler>, pattern: &str) -> R<Array> {
    only_before_the_end(sched, "create")?;
    let mut expanded: Option<Vec<ProcId>> = None;
    core(sched, "create", |c| {
        let ids = match expanded.take() {
            Some(ids) => ids,
            None => c.expand(pattern)?,
        };
        expanded = Some(ids.clone());
        c.created()?;
        Ok(names(c, &ids))
    })
}

/// The name `run(pattern, args)` and `create(pattern, args)` stand for: `pattern` with
/// each `[placeholder]` replaced by its value in `args` (parproc's
/// `run("build::[env]", env="prod")`). A key that is no placeholder of the pattern, a
/// placeholder without a value, a value that is not text, a number or a bool, and one that
/// is empty or holds the separator (no name can) are errors.
fn filled(sched: &Arc<Scheduler>, what: &str, pattern: &str, args: Map) -> R<String> {
    let sep = separator_of(sched, pattern);
    let mut values = Vec::with_capacity(args.len());
    for (key, value) in args {
        if !pattern.contains(&format!("[{key}]")) {
            return Err(err(format!(
                "{what}(\"{pattern}\", ...): `{key}` is not a [placeholder] of the pattern"
            )));
        }
        if !(value.is_string() || value.is_int() || value.is_float() || value.is_bool()) {
            return Err(err(format!(
                "{what}(\"{pattern}\", ...): the value of `{key}` must be text, a number or a bool, not {}",
                crate::diag::value_words(&value)
            )));
        }
        let value = value.to_string();
        if value.is_empty() {
            return Err(err(format!(
                "{what}(\"{pattern}\", ...): the value of `{key}` is empty, which a placeholder's value cannot be"
            )));
        }
        if value.contains(&sep) {
            return Err(err(format!(
                "{what}(\"{pattern}\", ...): the value of `{key}` ({value:?}) holds the separator \"{sep}\", which a placeholder's value cannot"
            )));
        }
        values.push((key.to_string(), value));
    }
    crate::graph::fill_text(pattern, &values).map_err(|e| err(format!("{what}: {e}")))
}

/// The separator of the proto `pattern` names, or the one protos are made with now.
fn separator_of(sched: &Arc<Scheduler>, pattern: &str) -> String {
    let c = sched.lock();
    let g = c.graph();
    match g.proto_named(pattern) {
        Some(p) => g.proto(p).template.separator().to_string(),
        None => g.separator().to_string(),
    }
}

/// Blocks until `rx` fires; the error explains why a wait cannot finish.
fn block(sched: &Arc<Scheduler>, rx: Option<std::sync::mpsc::Receiver<Wake>>) -> R<()> {
    let Some(rx) = rx else {
        return Ok(());
    };
    match sched.block(rx) {
        Wake::Done => Ok(()),
        Wake::Deadlock(msg) => Err(err(msg)),
        Wake::Aborted(reason) => Err(throw(Dynamic::from(Aborted(aborted_text(reason))))),
    }
}

fn aborted_text(reason: AbortReason) -> String {
    match reason {
        AbortReason::Interrupted => "the run was interrupted".into(),
        AbortReason::FailFast => "the run was aborted: a proc failed and --fail-fast is on".into(),
        AbortReason::ScriptError => "the run was aborted by a script error".into(),
        AbortReason::Internal => "the run was aborted by an internal error".into(),
    }
}

fn wait(sched: &Arc<Scheduler>, patterns: Vec<String>, single: bool) -> R<Dynamic> {
    let job = job::current().map(|j| j.id);
    let (ids, rx) = core(sched, "wait", |c| {
        c.flush_now()?;
        let mut ids = Vec::new();
        for p in &patterns {
            match c.graph().lookup(p) {
                Some(id) => ids.push(id),
                None if is_glob(p) => {
                    let hits = c.scheduled_matching(p);
                    if hits.is_empty() {
                        return Err(GraphError::NoScheduledMatch(p.clone()));
                    }
                    ids.extend(hits);
                }
                None => return Err(GraphError::UnknownProc(p.clone())),
            }
        }
        let rx = c.wait_for(&ids, job)?;
        Ok((ids, rx))
    })?;
    let single = single && !is_glob(&patterns[0]);
    block(sched, rx)?;
    let c = sched.lock();
    let mut failures = Vec::new();
    let mut out = Map::new();
    for &id in &ids {
        let s = c.summary(id);
        if s.state.is_failure() {
            // In a body the frames of the proc's own error (its report line has them)
            // would read as the body's: the body's error ends with its own.
            let error = s.error.map(|e| match job {
                Some(_) => e.lines().next().unwrap_or_default().to_string(),
                None => e,
            });
            failures.push(format!(
                "proc \"{}\" {}{}",
                s.name,
                s.state,
                error.map(|e| format!(": {e}")).unwrap_or_default()
            ));
        }
        out.insert(s.name.as_ref().into(), s.result.unwrap_or(Dynamic::UNIT));
    }
    if !failures.is_empty() {
        return Err(throw(Dynamic::from(ProcFailure(failures.join("\n")))));
    }
    Ok(if single {
        out.into_iter()
            .next()
            .map(|(_, v)| v)
            .unwrap_or(Dynamic::UNIT)
    } else {
        out.into()
    })
}

/// `watch()`: waits for the run, then re-runs what changes of inputs affect until Ctrl-C,
/// which ends the script (its cleanups still run).
fn watch(sched: &Arc<Scheduler>, session: &crate::watch::Session, names: Vec<String>) -> R<()> {
    if job::current().is_some() || crate::exec::evaluating().is_some() {
        return Err(err(
            "watch() can only be called at the top level of the script",
        ));
    }
    if !session.enabled() {
        return Err(err(
            "watch() needs watch mode: call set_options(#{ watch: true }) first, or run prun with --watch",
        ));
    }
    crate::watch::watch(sched, session, &names).map_err(|e| err(e.to_string()))?;
    if sched.interrupted() {
        return Err(throw(Dynamic::from(Aborted(
            "the watch was ended by an interrupt".into(),
        ))));
    }
    Ok(())
}

fn wait_all(sched: &Arc<Scheduler>) -> R<Dynamic> {
    if job::current().is_some() {
        return Err(err(
            "wait() without names inside a proc would wait for the proc itself; name the procs to wait for",
        ));
    }
    let rx = core(sched, "wait", |c| c.wait_all())?;
    block(sched, rx)?;
    let c = sched.lock();
    let mut failures = Vec::new();
    let mut out = Map::new();
    for s in c.scheduled() {
        if s.state.is_failure() {
            failures.push(format!("\"{}\" ({})", s.name, s.state));
        }
        if let Some(r) = s.result {
            out.insert(s.name.as_ref().into(), r);
        }
    }
    if !failures.is_empty() {
        return Err(throw(Dynamic::from(ProcFailure(format!(
            "{} proc(s) failed: {}",
            failures.len(),
            failures.join(", ")
        )))));
    }
    Ok(out.into())
}

const OPTIONS: &[&str] = &[
    "parallel",
    "resources",
    "executors",
    "separator",
    "allow_missing_deps",
    "log_dir",
    "kill_grace",
    "task_db",
    "full_log_on_failure",
    "dynamic",
    "watch",
    "watch_debounce",
    "output",
    "keep_runs",
];

/// The message for a key `set_options` does not take, with the nearest valid keys.
pub(super) fn unknown_option(key: &str) -> String {
    format!(
        "set_options: unknown option `{key}`{} (valid options: {})",
        crate::suggest::hint(key, OPTIONS.iter().copied(), "`"),
        OPTIONS.join(", ")
    )
}

/// Whether `set_options` takes `key`.
pub(super) fn is_option(key: &str) -> bool {
    OPTIONS.contains(&key)
}

/// Switches the task DB (before any proc has started).
fn set_task_db(sched: &Arc<Scheduler>, db: &DbSettings, path: Option<String>) -> R<()> {
    let reporter = sched.reporter().clone();
    let warn: Arc<dyn Fn(&str) + Send + Sync> = Arc::new(move |m: &str| reporter.warning(m));
    core(sched, "set_options", |c| {
        if c.any_started() {
            return Err(GraphError::Option(
                "set_options: `task_db` must be set before the first proc starts".into(),
            ));
        }
        // As `--db` onto `--json` is refused: the report would replace the task DB.
        if let (Some(p), Some(report)) = (&path, c.report_path())
            && crate::report::same_place(std::path::Path::new(p), report)
        {
            return Err(GraphError::Option(format!(
                "set_options: `task_db` \"{p}\" is the file of the --json report, which would replace the task DB"
            )));
        }
        let (script, args, full) = (db.script.clone(), db.args.clone(), db.full);
        let started = std::time::SystemTime::now();
        let warn = warn.clone();
        let read_only = db.read_only;
        let opener = path.clone().map(|p| {
            crate::exec::CacheOpener::Here(Box::new(move || {
                let path = std::path::Path::new(&p);
                if read_only {
                    crate::exec::Cache::open_read_only(path, script, args, full, started, warn)
                } else {
                    crate::exec::Cache::open(path, script, args, full, started, warn)
                }
            }))
        });
        c.set_cache_opener(opener);
        Ok(())
    })
}

fn set_options(sched: &Arc<Scheduler>, cfg: &ApiConfig, m: Map) -> R<()> {
    // Before any key: some settings never reach the core, whose lock checks the rule.
    only_outside_evaluation("set_options")?;
    only_before_the_end(sched, "set_options")?;
    for (k, v) in m {
        let k = k.as_str();
        let bad = |what: &str| {
            err(format!(
                "set_options: `{k}` must be {what}, not {}",
                crate::diag::value_words(&v)
            ))
        };
        match k {
            "parallel" => {
                let n = v.as_int().map_err(|_| bad("a positive integer"))?;
                let n = usize::try_from(n)
                    .ok()
                    .filter(|&n| n > 0)
                    .ok_or_else(|| bad("a positive integer"))?;
                if cfg.cli_parallel.is_none() {
                    core(sched, "set_options", |c| {
                        c.set_parallel(n);
                        Ok(())
                    })?;
                }
            }
            "separator" => {
                let s = v.clone().into_string().map_err(|_| bad("a string"))?;
                if s.is_empty() || s.contains(['[', ']', '*', '?']) {
                    return Err(err(format!(
                        "set_options: separator \"{s}\" must be non-empty and must not contain [ ] * ?"
                    )));
                }
                core(sched, "set_options", |c| {
                    c.graph_mut().set_separator(&s);
                    Ok(())
                })?;
            }
            "allow_missing_deps" => {
                let b = v.as_bool().map_err(|_| bad("a bool"))?;
                core(sched, "set_options", |c| {
                    c.set_allow_missing_deps(b);
                    Ok(())
                })?;
            }
            "kill_grace" => {
                let d = crate::duration::parse(&v)
                    .map_err(|e| err(format!("set_options: `kill_grace`: {e}")))?;
                sched.set_kill_grace(d);
            }
            "task_db" => {
                let path = if v.is_unit() || v.as_bool() == Ok(false) {
                    None
                } else {
                    Some(
                        v.clone()
                            .into_string()
                            .ok()
                            .filter(|p| !p.is_empty())
                            .ok_or_else(|| bad("a path, or () for none"))?,
                    )
                };
                if !cfg.db.fixed {
                    if let Some(p) = &path {
                        cfg.watch.ignore_db(std::path::Path::new(p));
                    }
                    set_task_db(sched, &cfg.db, path)?;
                }
            }
            "log_dir" => {
                let p = (v.clone().into_string().ok())
                    .filter(|p| !p.is_empty())
                    .ok_or_else(|| bad("a path"))?;
                if !cfg.fixed_log_dir {
                    sched
                        .set_log_root(p.clone().into())
                        .map_err(|e| err(e.to_string()))?;
                    cfg.watch.ignore(p.into());
                }
            }
            "full_log_on_failure" => {
                let b = v.as_bool().map_err(|_| bad("a bool"))?;
                if !cfg.cli_full_log {
                    sched.reporter().set_full_log(b);
                }
            }
            // `dynamic: false` turns a live display into plain lines; plain output (not a
            // terminal) cannot become live.
            "dynamic" => {
                let on = v.as_bool().map_err(|_| bad("a bool"))?;
                if !cfg.cli_live {
                    sched.reporter().set_dynamic(on);
                }
            }
            "watch" => {
                let on = v.as_bool().map_err(|_| bad("a bool"))?;
                // `--watch` wins over `watch: false`.
                if on {
                    cfg.watch.enable(true);
                }
            }
            "output" => {
                let name = v.clone().into_string().map_err(|_| bad("a string"))?;
                let mode = crate::graph::OutputMode::parse(&name).ok_or_else(|| {
                    err(format!(
                        "set_options: `output` must be one of {}, not \"{name}\"",
                        super::opts::quoted_names(crate::graph::OutputMode::NAMES)
                    ))
                })?;
                if !cfg.cli_output {
                    sched.set_output(mode);
                }
            }
            "keep_runs" => {
                let n = v
                    .as_int()
                    .ok()
                    .and_then(|n| u64::try_from(n).ok())
                    .ok_or_else(|| bad("an integer, 0 or more (0 keeps every run)"))?;
                match &cfg.history_keep {
                    Some(keep) => keep.store(n, std::sync::atomic::Ordering::Relaxed),
                    None => sched.set_keep_runs(n),
                }
            }
            "resources" => {
                let m = v
                    .clone()
                    .try_cast::<Map>()
                    .ok_or_else(|| bad("a map like #{ cpus: 2, mem: \"8G\" }"))?;
                let amounts = crate::graph::resources::parse(&m)
                    .map_err(|e| err(format!("set_options: `resources`: {e}")))?;
                core(sched, "set_options", |c| c.set_budget(&amounts))?;
            }
            "executors" => {
                let m = v
                    .clone()
                    .try_cast::<Map>()
                    .ok_or_else(|| bad("a map of names to executors"))?;
                for (name, decl) in m {
                    let e = crate::exec::executor::Executor::parse(&name, &decl)
                        .map_err(|e| err(format!("set_options: {e}")))?;
                    sched
                        .declare_executor(&name, e)
                        .map_err(|e| err(format!("set_options: {e}")))?;
                }
            }
            "watch_debounce" => {
                let d = crate::duration::parse(&v)
                    .map_err(|e| err(format!("set_options: `watch_debounce`: {e}")))?;
                cfg.watch.set_debounce(d);
            }
            k => return Err(err(unknown_option(k))),
        }
    }
    Ok(())
}

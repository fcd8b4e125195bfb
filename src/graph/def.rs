//! Definitions shared by procs and protos, as the script declared them.

use std::fmt;
use std::ops::Deref;
use std::sync::Arc;
use std::time::Duration;

use rhai::{Dynamic, EvalAltResult};

pub(super) use super::argv::Argv;
pub(super) use crate::diag::Origin;

/// A script closure that the graph or a job calls later, possibly on another thread.
pub(crate) trait Callable: Send + Sync {
    /// Calls the closure with a context value and the placeholder values. The closure may
    /// declare fewer parameters (`|ctx|` or `||`); extra values are then not passed.
    fn call(&self, ctx: Dynamic, args: &[String]) -> Result<Dynamic, Box<EvalAltResult>>;
    /// Where the closure was written, for messages (`script.rhai:12:5`).
    fn origin(&self) -> Origin;
    /// A text that changes when what the closure sees changes — its code, the script
    /// functions it calls, its captured values — and only then: part of the fingerprint
    /// of a proc, so that editing a proc re-runs it and a cached result stays valid.
    fn identity(&self) -> String;
    /// Whether a result of the closure may be cached: not when its code imports a module,
    /// whose text is in no fingerprint. (What a body does as it runs may also keep its
    /// result out of the cache: see `Cache::unrepeatable`.)
    fn cacheable(&self) -> bool {
        true
    }
    /// The parameter counts it can be called with (after its curried and captured
    /// values); `None` when unknown (a native function), then it is passed everything.
    fn arities(&self) -> Option<&[usize]> {
        None
    }
    /// Why it cannot be called at all, when it points to no function (`Fn("nosuch")`
    /// names no script or native function): `Fn("nosuch") names no function; did you
    /// mean ...?`.
    fn missing(&self) -> Option<&str> {
        None
    }
}

/// A shared handle to a script closure.
pub(crate) type Callback = Arc<dyn Callable>;

/// One entry of `deps`.
#[derive(Clone)]
pub(crate) enum DepSpec {
    /// A proc name, or a pattern whose `[placeholders]` are filled from the parent's args.
    Name(String),
    /// A closure returning a name or an array of names.
    Closure(Callback),
}

/// What a proc runs.
#[derive(Clone)]
pub(crate) enum Body {
    /// A Rhai closure, run on a worker thread.
    Closure(Callback),
    /// An argv, spawned directly without a shell.
    Cmd(Argv),
    /// A string run with `sh -c` (boxed: a run keeps each proc's definition, and a box is
    /// two words and has no unused room).
    Shell(Box<str>),
}

/// Files named by `inputs` or `outputs`.
#[derive(Clone)]
pub(crate) enum FileSpec {
    /// A path or a glob (`*`, `?`, `[...]`, `**`); `[placeholders]` are filled first.
    Path(String),
    /// A closure returning a path or an array of paths and globs.
    Closure(Callback),
}

/// One entry of `outputs`.
#[derive(Clone)]
pub(crate) struct OutputSpec {
    pub files: FileSpec,
    /// An output older than this is stale.
    pub max_age: Option<Duration>,
    /// Whether a stale output fails the proc after it ran (default true).
    pub enforce_freshness: bool,
}

/// The allowed values of one placeholder.
#[derive(Clone)]
pub(crate) enum Choices {
    /// A fixed list.
    List(Vec<String>),
    /// A closure returning an array, called whenever a glob is expanded.
    Closure(Callback),
}

/// A list option of a [`ProcDef`], which most definitions leave empty: one word then (a
/// `Vec` takes three), as a run keeps every definition of its procs to its end. Read as a
/// slice.
#[derive(Clone, Debug)]
#[expect(
    clippy::box_collection,
    reason = "a thin pointer: one word, not a Vec's three"
)]
pub struct List<T>(Option<Box<Vec<T>>>);

impl<T> List<T> {
    /// No items.
    pub const fn new() -> List<T> {
        List(None)
    }

    /// Appends an item.
    pub fn push(&mut self, item: T) {
        self.0.get_or_insert_default().push(item);
    }

    /// Removes every item (and frees their room).
    pub fn clear(&mut self) {
        self.0 = None;
    }
}

impl<T> Default for List<T> {
    fn default() -> Self {
        List::new()
    }
}

impl<T> Deref for List<T> {
    type Target = [T];

    fn deref(&self) -> &[T] {
        self.0.as_deref().map_or(&[], Vec::as_slice)
    }
}

impl<T> From<Vec<T>> for List<T> {
    fn from(items: Vec<T>) -> List<T> {
        List((!items.is_empty()).then(|| Box::new(items)))
    }
}

impl<T> FromIterator<T> for List<T> {
    fn from_iter<I: IntoIterator<Item = T>>(iter: I) -> List<T> {
        List::from(iter.into_iter().collect::<Vec<T>>())
    }
}

impl<'a, T> IntoIterator for &'a List<T> {
    type Item = &'a T;
    type IntoIter = std::slice::Iter<'a, T>;

    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

/// Options shared by a proc and by every proc a proto creates. Kept small (options most
/// procs leave out take a word each, or are [`Extras`]): a run holds the definition of
/// each of its procs.
#[derive(Clone)]
pub(crate) struct ProcDef {
    pub deps: List<DepSpec>,
    pub no_failures: bool,
    pub now: bool,
    pub body: Body,
    pub env: List<(String, String)>,
    pub inputs: List<FileSpec>,
    pub outputs: List<OutputSpec>,
    /// Never UP_TO_DATE: side effects (deploys, notifications).
    pub no_skip: bool,
    /// `output`: how this proc's output is shown, instead of the run's mode.
    pub output: Option<OutputMode>,
    /// `interactive`: the proc gets the terminal and runs alone.
    pub interactive: bool,
    /// Where the `proc(...)`/`proto(...)` call is.
    pub origin: Origin,
    /// The options few procs set, read with [`ProcDef::extras`].
    pub extras: Option<Box<Extras>>,
}

/// Options of a [`ProcDef`] that few procs set, in a box made when one is set.
#[derive(Clone)]
pub(crate) struct Extras {
    pub rdeps: List<String>,
    pub when_scheduled: List<String>,
    pub wave: i64,
    pub locks: List<String>,
    pub arg_choices: List<(String, Choices)>,
    /// What one run needs, counted against the local budget (or asked of Slurm).
    pub resources: super::Resources,
    pub timeout: Option<Duration>,
    pub retries: u32,
    pub retry_delay: Duration,
    pub cwd: Option<String>,
    pub help: Option<String>,
    /// `arg_choices: |ctx| #{ ... }`: a closure returning the whole map, for the
    /// placeholders that `arg_choices` does not list.
    pub choices_map: Option<Callback>,
    /// The executor its commands run on (`None`: on this machine).
    pub executor: Option<String>,
}

/// Every extra option at its default.
static NO_EXTRAS: Extras = Extras {
    rdeps: List::new(),
    when_scheduled: List::new(),
    wave: 0,
    locks: List::new(),
    arg_choices: List::new(),
    resources: super::Resources::new(),
    timeout: None,
    retries: 0,
    retry_delay: Duration::ZERO,
    cwd: None,
    help: None,
    choices_map: None,
    executor: None,
};

impl Default for Extras {
    fn default() -> Self {
        NO_EXTRAS.clone()
    }
}

impl ProcDef {
    /// A definition with this body and every option at its default.
    pub(crate) fn new(body: Body, origin: Origin) -> ProcDef {
        ProcDef {
            deps: List::new(),
            no_failures: false,
            now: false,
            body,
            env: List::new(),
            inputs: List::new(),
            outputs: List::new(),
            no_skip: false,
            output: None,
            interactive: false,
            origin,
            extras: None,
        }
    }

    /// Its `rdeps`, `when_scheduled` targets, `wave`, `locks`, `arg_choices`,
    /// `resources`, `timeout`, `retries`, `retry_delay`, `cwd`, `help`, `arg_choices`
    /// closure and `executor`: kept apart, as most definitions set none of them and a run
    /// holds the definition of each of its procs.
    pub(crate) fn extras(&self) -> &Extras {
        self.extras.as_deref().unwrap_or(&NO_EXTRAS)
    }

    /// The extra options, to set one.
    pub(crate) fn extras_mut(&mut self) -> &mut Extras {
        self.extras.get_or_insert_default()
    }

    /// Whether `other` says the same, from the same place, but perhaps for its command (a
    /// `cmd` or `shell` body): so that procs declared in a loop with the same options can
    /// keep one definition. A closure is the same only as itself (two calls of `proc` make
    /// two closures), and a definition with any [`Extras`] is the same only as itself.
    pub(crate) fn same_but_command(&self, other: &ProcDef) -> bool {
        let ProcDef {
            deps,
            no_failures,
            now,
            body,
            env,
            inputs,
            outputs,
            no_skip,
            output,
            interactive,
            origin,
            extras,
        } = self;
        extras.is_none()
            && other.extras.is_none()
            && *no_failures == other.no_failures
            && *now == other.now
            && *no_skip == other.no_skip
            && *output == other.output
            && *interactive == other.interactive
            && *origin == other.origin
            && match (body, &other.body) {
                (Body::Closure(a), Body::Closure(b)) => Arc::ptr_eq(a, b),
                (Body::Closure(_), _) | (_, Body::Closure(_)) => false,
                (Body::Cmd(_) | Body::Shell(_), Body::Cmd(_) | Body::Shell(_)) => true,
            }
            && **env == *other.env
            && same_items(deps, &other.deps, same_dep)
            && same_items(inputs, &other.inputs, same_files)
            && same_items(outputs, &other.outputs, |a, b| {
                same_files(&a.files, &b.files)
                    && a.max_age == b.max_age
                    && a.enforce_freshness == b.enforce_freshness
            })
    }

    /// Whether `other` runs the same command or closure.
    pub(crate) fn same_command(&self, other: &ProcDef) -> bool {
        match (&self.body, &other.body) {
            (Body::Closure(a), Body::Closure(b)) => Arc::ptr_eq(a, b),
            (Body::Cmd(a), Body::Cmd(b)) => a == b,
            (Body::Shell(a), Body::Shell(b)) => a == b,
            _ => false,
        }
    }
}

fn same_items<T>(a: &[T], b: &[T], same: impl Fn(&T, &T) -> bool) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(a, b)| same(a, b))
}

fn same_dep(a: &DepSpec, b: &DepSpec) -> bool {
    match (a, b) {
        (DepSpec::Name(a), DepSpec::Name(b)) => a == b,
        (DepSpec::Closure(a), DepSpec::Closure(b)) => Arc::ptr_eq(a, b),
        _ => false,
    }
}

fn same_files(a: &FileSpec, b: &FileSpec) -> bool {
    match (a, b) {
        (FileSpec::Path(a), FileSpec::Path(b)) => a == b,
        (FileSpec::Closure(a), FileSpec::Closure(b)) => Arc::ptr_eq(a, b),
        _ => false,
    }
}

/// Where a proc's output goes besides its log (`--output`, the `output` option).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum OutputMode {
    /// Only to the log; a failure shows excerpts of it.
    #[default]
    Log,
    /// Every line as it comes, prefixed with the proc's name.
    Stream,
    /// The whole log at once when the proc ends.
    Grouped,
}

impl OutputMode {
    /// The modes' names, as the command line and scripts spell them.
    pub(crate) const NAMES: &[&str] = &["log", "stream", "grouped"];

    /// The mode named `name`, if it is one.
    pub(crate) fn parse(name: &str) -> Option<OutputMode> {
        match name {
            "log" => Some(OutputMode::Log),
            "stream" => Some(OutputMode::Stream),
            "grouped" => Some(OutputMode::Grouped),
            _ => None,
        }
    }
}

impl fmt::Debug for Body {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Body::Closure(cb) => write!(f, "Closure({})", cb.origin()),
            Body::Cmd(argv) => f.debug_tuple("Cmd").field(argv).finish(),
            Body::Shell(s) => f.debug_tuple("Shell").field(s).finish(),
        }
    }
}

impl fmt::Debug for ProcDef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProcDef")
            .field("origin", &self.origin)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use rhai::{Dynamic, EvalAltResult};

    use super::*;

    struct Closure;

    impl Callable for Closure {
        fn call(&self, _: Dynamic, _: &[String]) -> Result<Dynamic, Box<EvalAltResult>> {
            Ok(Dynamic::UNIT)
        }
        fn origin(&self) -> Origin {
            Origin::from("t")
        }
        fn identity(&self) -> String {
            String::new()
        }
    }

    fn cmd(args: &[&str]) -> ProcDef {
        ProcDef::new(Body::Cmd(args.iter().collect()), Origin::from("t"))
    }

    /// Says the same: but for the command, and with it.
    fn same(a: &ProcDef, b: &ProcDef) -> (bool, bool) {
        let alike = a.same_but_command(b);
        (alike, alike && a.same_command(b))
    }

    #[test]
    fn definitions_are_the_same_only_when_nothing_tells_them_apart() {
        assert_eq!(same(&cmd(&["true"]), &cmd(&["true"])), (true, true));
        assert_eq!(same(&cmd(&["true"]), &cmd(&["true", "x"])), (true, false));
        let shell = ProcDef::new(Body::Shell("true".into()), Origin::from("t"));
        assert_eq!(same(&cmd(&["true"]), &shell), (true, false));
        assert_eq!(same(&shell, &shell.clone()), (true, true));
        let elsewhere = ProcDef::new(Body::Cmd(["true"].iter().collect()), Origin::from("u"));
        assert!(
            !cmd(&["true"]).same_but_command(&elsewhere),
            "declared elsewhere"
        );
        let with_env = ProcDef {
            env: vec![("A".to_string(), "1".to_string())].into(),
            ..cmd(&["true"])
        };
        assert!(!cmd(&["true"]).same_but_command(&with_env));
        assert_eq!(same(&with_env, &with_env.clone()), (true, true));
        let with_input = ProcDef {
            inputs: vec![FileSpec::Path("in".into())].into(),
            ..cmd(&["true"])
        };
        assert!(!with_input.same_but_command(&cmd(&["true"])));
        let mut with_extras = cmd(&["true"]);
        with_extras.extras_mut().retries = 1;
        assert!(
            !with_extras.same_but_command(&with_extras.clone()),
            "extras: never shared"
        );
        let f: Callback = Arc::new(Closure);
        let closure = ProcDef::new(Body::Closure(f.clone()), Origin::from("t"));
        assert_eq!(
            same(&closure, &closure.clone()),
            (true, true),
            "the same closure"
        );
        let other = ProcDef::new(Body::Closure(Arc::new(Closure)), Origin::from("t"));
        assert!(
            !closure.same_but_command(&other),
            "another closure, alike as it may be"
        );
        assert!(
            !closure.same_but_command(&cmd(&["true"])),
            "a closure and a command"
        );
        assert!(!cmd(&["true"]).same_but_command(&closure));
    }
}

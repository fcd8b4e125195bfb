//! The embedding API: [`Runtime`] (built by [`RuntimeBuilder`]) runs scripts and returns
//! their [`crate::Report`]; [`Cancel`] stops a run from another thread.

use std::any::TypeId;
use std::collections::HashSet;
use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::Instant;

use rhai::module_resolvers::StaticModuleResolver;
use rhai::{
    Dynamic, Engine, FuncRegistration, Module, ModuleResolver, NativeCallContext, RhaiFunc,
    RhaiNativeFunc, Shared, Variant,
};

use crate::error::{Error, Failure};
use crate::event::Event;
use crate::exec::Scheduler;
use crate::exec::policy::Policy;
use crate::redact::Secrets;
use crate::report::Report;
use crate::run::{Call, CliExtras, Output, Script, Settings, TaskDb};
use crate::script::EngineSetup;

/// What scripts run with [`Runtime::run_str`] are called, in messages and reports. Their
/// state (the default task DB, logs) is that of a script of this name in the current
/// directory.
const STRING_SCRIPT: &str = "<string>";

/// Runs prun scripts: the scheduler, the commands, the cache and the reports of the `prun`
/// binary, with the embedder's own native functions and modules, under its [`Policy`].
///
/// A runtime is cheap to clone and may run several scripts at once from different
/// threads. Each run happens on threads of its own, so `run_*` may be called from inside
/// a tokio runtime (it blocks the calling thread until the run ends).
///
/// ```
/// # let state = tempfile::tempdir().unwrap();
/// let rt = prun::Runtime::builder()
///     .parallel(4)
///     .task_db(prun::TaskDb::Off)
///     .register_fn("double", |x: i64| x * 2)
/// #   .state_dir(state.path())
///     .build()?;
/// let report = rt.run_str(
///     r#"proc("a", || double(21)); proc("b", #{ cmd: ["true"] });"#,
///     ["a", "b"],
/// )?;
/// assert_eq!(report.run.outcome, prun::Outcome::Ok);
/// assert_eq!(report.proc("a").unwrap().result, serde_json::json!(42));
/// # Ok::<(), prun::Error>(())
/// ```
#[derive(Clone)]
pub struct Runtime {
    settings: Arc<Settings>,
    /// The engine's limits, for the pass that reads a script's declaration too.
    limits: Limits,
}

impl std::fmt::Debug for Runtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runtime").finish_non_exhaustive()
    }
}

impl Runtime {
    /// A builder with the defaults: as many procs at once as CPUs, the script's own task
    /// DB, no output ([`Output::Silent`]), the stdlib on, no policy, no signal handlers.
    pub fn builder() -> RuntimeBuilder {
        RuntimeBuilder::default()
    }

    /// Runs the script at `path`. `args` are the words the command line would have
    /// after the script's path, without prun's own flags: the script's declared options
    /// (`args(#{...})`), the targets to run, and after `--` the words `args()` returns.
    ///
    /// An [`Error`] means the run could not start (the script does not compile, the
    /// arguments are wrong); what happens once it runs is in the [`Report`].
    pub fn run_file<I, S>(&self, path: impl AsRef<Path>, args: I) -> Result<Report, Error>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.start(Script::File(path.as_ref().to_path_buf()), args, None)
    }

    /// Runs script text, as [`Runtime::run_file`] runs a file. It is called `<string>` in
    /// messages and reports; `import` of a relative path is relative to the current
    /// directory.
    ///
    /// ```
    /// # let state = tempfile::tempdir().unwrap();
    /// let rt = prun::Runtime::builder()
    ///     .task_db(prun::TaskDb::Off)
    /// #     .state_dir(state.path())
    ///     .build()?;
    /// let report = rt.run_str(r#"proc("a", #{ cmd: ["true"], now: true });"#, [""; 0])?;
    /// assert_eq!(report.procs[0].state, prun::State::Succeeded);
    /// # Ok::<(), prun::Error>(())
    /// ```
    pub fn run_str<I, S>(&self, source: &str, args: I) -> Result<Report, Error>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.start(text_script(source), args, None)
    }

    /// [`Runtime::run_file`], stopped when `cancel` is cancelled: as Ctrl-C stops the
    /// `prun` binary (process groups terminated, then killed after a grace period;
    /// cleanups run), and the report's outcome is [`crate::Outcome::Interrupted`]. A
    /// cancel ends a watch (`set_options(#{ watch: true })`) as Ctrl-C does, with the
    /// outcome of its last cycle: [`crate::Outcome::Ok`] when that cycle completed and no
    /// scheduled proc is failed, else [`crate::Outcome::Failed`].
    pub fn run_file_with_cancel<I, S>(
        &self,
        path: impl AsRef<Path>,
        args: I,
        cancel: &Cancel,
    ) -> Result<Report, Error>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let script = Script::File(path.as_ref().to_path_buf());
        self.start(script, args, Some(cancel.clone()))
    }

    /// [`Runtime::run_str`], stopped when `cancel` is cancelled (see
    /// [`Runtime::run_file_with_cancel`]).
    ///
    /// ```
    /// # let state = tempfile::tempdir().unwrap();
    /// let rt = prun::Runtime::builder()
    ///     .task_db(prun::TaskDb::Off)
    /// #     .state_dir(state.path())
    ///     .build()?;
    /// let cancel = prun::Cancel::new();
    /// cancel.cancel();
    /// let report = rt.run_str_with_cancel(
    ///     r#"proc("a", #{ cmd: ["sleep", "60"], now: true });"#,
    ///     [""; 0],
    ///     &cancel,
    /// )?;
    /// assert_eq!(report.run.outcome, prun::Outcome::Interrupted);
    /// # Ok::<(), prun::Error>(())
    /// ```
    pub fn run_str_with_cancel<I, S>(
        &self,
        source: &str,
        args: I,
        cancel: &Cancel,
    ) -> Result<Report, Error>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.start(text_script(source), args, Some(cancel.clone()))
    }

    fn start<I, S>(&self, script: Script, args: I, cancel: Option<Cancel>) -> Result<Report, Error>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let started = Instant::now();
        let words: Vec<String> = args.into_iter().map(Into::into).collect();
        let bound = self.declaration_bounds(cancel.clone(), started);
        let split = crate::run::split_words(&script, words, &self.settings.policy, &bound)?;
        let mut secrets = Secrets::default();
        secrets.add(split.secrets);
        let call = Call {
            script,
            targets: split.targets,
            script_args: split.script_args,
            script_values: split.values,
            history_args: split.script_words,
            cancel,
            started,
            cli: CliExtras::default(),
            secrets,
        };
        Ok(self.execute(call)?)
    }

    /// What bounds the pass that reads a script's `args(#{...})` declaration before a run
    /// (it runs the script's top level, which may loop for ever): the engine's limits,
    /// `cancel` and the policy's `max_run_time`, counted from `started`, as for the run.
    fn declaration_bounds(
        &self,
        cancel: Option<Cancel>,
        started: Instant,
    ) -> impl Fn(&mut Engine) + use<> {
        let limits = self.limits;
        let time_limit = self.settings.policy.time_limit();
        move |engine: &mut Engine| {
            let levels = engine.max_call_levels();
            limits.apply(engine);
            // The pass runs on the caller's thread, whose stack prun does not know (a run's
            // own threads are checked as they go): it nests no deeper than Rhai's default.
            engine.set_max_call_levels(engine.max_call_levels().min(levels));
            let cancel = cancel.clone();
            engine.on_progress(move |ops| {
                // As the run's engine does: every 256th operation is soon enough.
                if ops % 256 != 0 {
                    return None;
                }
                let stop = cancel.as_ref().is_some_and(Cancel::is_cancelled)
                    || time_limit.is_some_and(|limit| started.elapsed() >= limit);
                stop.then(|| Dynamic::from("stopped"))
            });
        }
    }

    /// Runs `call` on a thread of its own.
    pub(crate) fn execute(&self, call: Call) -> Result<Report, Failure> {
        let settings = self.settings.clone();
        crate::run::on_own_thread(move |base| crate::run::execute(&settings, call, base))
    }

    /// Runs `call` on this thread, which [`crate::run::on_run_thread`] started, with the
    /// engine its caller builds (the `prun` binary).
    pub(crate) fn execute_here(
        &self,
        call: Call,
        base: crate::run::BaseEngine,
    ) -> Result<Report, Failure> {
        crate::run::execute(&self.settings, call, base)
    }
}

fn text_script(source: &str) -> Script {
    Script::Text {
        name: STRING_SCRIPT.into(),
        text: source.to_string(),
    }
}

/// The limits of the Rhai engine; `None` keeps prun's.
#[derive(Debug, Clone, Copy, Default)]
struct Limits {
    operations: Option<u64>,
    call_levels: Option<usize>,
    string_size: Option<usize>,
    array_size: Option<usize>,
    map_size: Option<usize>,
}

impl Limits {
    fn apply(&self, engine: &mut Engine) {
        if let Some(n) = self.operations {
            engine.set_max_operations(n);
        }
        if let Some(n) = self.call_levels {
            engine.set_max_call_levels(n);
        }
        if let Some(n) = self.string_size {
            engine.set_max_string_size(n);
        }
        if let Some(n) = self.array_size {
            engine.set_max_array_size(n);
        }
        if let Some(n) = self.map_size {
            engine.set_max_map_size(n);
        }
    }
}

/// Builds a [`Runtime`]; from [`Runtime::builder`].
///
/// ```
/// use std::time::Duration;
///
/// let mut acme = rhai::Module::new();
/// acme.set_native_fn("greeting", |who: &str| Ok(format!("hello, {who}")));
/// # let state = tempfile::tempdir().unwrap();
/// let rt = prun::Runtime::builder()
///     .parallel(8)
///     .task_db(prun::TaskDb::Off)
///     .policy(prun::Policy::new().allow_programs(["echo"]).no_shell())
///     .register_fn("vault_get", |key: &str| -> String { format!("secret-of-{key}") })
///     .module("acme", acme)
///     .max_operations(1_000_000)
///     .on_event(|e: &prun::Event| eprintln!("{e:?}"))
/// #   .state_dir(state.path())
///     .build()?;
/// let report = rt.run_str(
///     r#"import "acme" as acme; proc("a", || acme::greeting(vault_get("db"))); run("a");"#,
///     [""; 0],
/// )?;
/// assert_eq!(report.procs[0].result, "hello, secret-of-db");
/// # Ok::<(), prun::Error>(())
/// ```
pub struct RuntimeBuilder {
    settings: Settings,
    natives: Module,
    modules: StaticModuleResolver,
    /// The names of the modules given with [`RuntimeBuilder::pure_module`].
    pure_modules: HashSet<String>,
    stdlib: bool,
    limits: Limits,
    problems: Vec<String>,
}

impl Default for RuntimeBuilder {
    fn default() -> RuntimeBuilder {
        RuntimeBuilder {
            settings: Settings::default(),
            natives: Module::new(),
            modules: StaticModuleResolver::new(),
            pure_modules: HashSet::new(),
            stdlib: true,
            limits: Limits::default(),
            problems: Vec::new(),
        }
    }
}

impl std::fmt::Debug for RuntimeBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RuntimeBuilder").finish_non_exhaustive()
    }
}

impl RuntimeBuilder {
    /// At most `n` procs run at once (default: the number of CPUs). A script's
    /// `set_options(#{ parallel })` cannot change it.
    pub fn parallel(mut self, n: usize) -> Self {
        if n == 0 {
            self.problems
                .push("parallel: the limit must be at least 1".into());
        }
        self.settings.parallel = Some(n);
        self
    }

    /// Where the task DB is: [`TaskDb::Off`], a path, or [`TaskDb::Default`] (the
    /// script's own under the user's state directory). A script's
    /// `set_options(#{ task_db })` cannot change a setting other than the default.
    pub fn task_db(mut self, db: impl Into<TaskDb>) -> Self {
        let db = db.into();
        if db == TaskDb::Path(Default::default()) {
            self.problems
                .push("task_db: an empty path (TaskDb::Off is no task DB)".into());
        }
        self.settings.task_db = db;
        self
    }

    /// Where the runtime makes each script's state directory (`DIR/<script>-<hash>/`,
    /// private to the user, 0700), which holds the journal of the process groups a run
    /// started (a crash of the program leaves them to the next run to end) and, unless
    /// [`task_db`](Self::task_db) and [`log_dir`](Self::log_dir) say otherwise, the
    /// script's task DB and logs. Default: prun's per-user state directory
    /// (`$XDG_STATE_HOME/prun`, else `~/.local/state/prun`), shared with the `prun`
    /// command, whose `prun history` and `prun log` read it there. `DIR` is made when
    /// missing.
    pub fn state_dir(mut self, dir: impl AsRef<Path>) -> Self {
        if dir.as_ref().as_os_str().is_empty() {
            self.problems
                .push("state_dir: an empty path (state would go to the working directory)".into());
        }
        self.settings.state_root = Some(dir.as_ref().to_path_buf());
        self
    }

    /// Where the logs of the runs go (default: the script's state directory, or where its
    /// `set_options(#{ log_dir })` says). A script's `log_dir` cannot change it. The runs of
    /// every script of the runtime share it: it keeps the last 100 runs of all, and a
    /// script's `keep_runs` prunes only its history in the task DB.
    pub fn log_dir(mut self, dir: impl AsRef<Path>) -> Self {
        if dir.as_ref().as_os_str().is_empty() {
            self.problems
                .push("log_dir: an empty path (logs would go to the working directory)".into());
        }
        self.settings.log_dir = Some(dir.as_ref().to_path_buf());
        self
    }

    /// What runs print (default: [`Output::Silent`]).
    pub fn output(mut self, output: Output) -> Self {
        self.settings.output = output;
        self
    }

    /// With [`Output::Plain`] or [`Output::Live`]: a line for each command a proc runs, and
    /// in plain output for each `ctx.progress(...)` (`-v`).
    pub fn verbose(mut self, on: bool) -> Self {
        self.settings.verbose = on;
        self
    }

    /// With [`Output::Plain`]: only failures and the summary (`-q`).
    pub fn quiet(mut self, on: bool) -> Self {
        self.settings.quiet = on;
        self
    }

    /// With [`Output::Plain`] or [`Output::Live`]: a failed proc's whole log instead of
    /// its last lines.
    pub fn full_log_on_failure(mut self, on: bool) -> Self {
        self.settings.full_log_on_failure = on;
        self
    }

    /// On the first failure, schedule nothing more and terminate running jobs.
    pub fn fail_fast(mut self, on: bool) -> Self {
        self.settings.fail_fast = on;
        self
    }

    /// Ignore the cache: every scheduled proc runs (results are still saved).
    pub fn full(mut self, on: bool) -> Self {
        self.settings.full = on;
        self
    }

    /// Resolve the graph and report what would run; run no proc.
    pub fn dry_run(mut self, on: bool) -> Self {
        self.settings.dry_run = on;
        self
    }

    /// What scripts may run and read (see [`Policy`]).
    pub fn policy(mut self, policy: Policy) -> Self {
        self.settings.policy = Arc::new(policy);
        self
    }

    /// Makes a native function callable from scripts, with any signature Rhai accepts
    /// (see [`rhai::Engine::register_fn`]). It may be called from several procs at once,
    /// on different threads. A panic in it ends the run cleanly as an internal error
    /// ([`crate::Outcome::InternalError`]).
    ///
    /// What it gives is in no proc's fingerprint, so a proc's body that calls it (however:
    /// directly, through a script or module function, a closure, `eval`) saves no result
    /// in the task DB: it runs every time, and its dependents run after it, as a body
    /// that calls `results()` does. A cached result would be what the function gave once,
    /// not what it gives now. A function whose result depends on its arguments alone is
    /// registered with [`RuntimeBuilder::register_pure_fn`] instead. Calls outside a
    /// body (the top level, `inputs` and dependency closures) are made in every run anyway.
    ///
    /// It runs to its end: nothing can stop Rust code from outside, so a [`Cancel`] (even
    /// a second one) or [`Policy::max_run_time`] ends the run's commands and cleanups, but
    /// `run_*` returns only once every call of a native function has returned. One that
    /// may wait long (a network call) bounds its own wait with a timeout.
    ///
    /// A second function of the same name and parameter types replaces the first, as in
    /// Rhai. [`RuntimeBuilder::build`] refuses a name scripts could not call it by
    /// (empty, with spaces, a Rhai keyword such as `type_of`) and the name of a function
    /// of prun's script API (`shell`, `proc`, `run`, ...), which scripts would call
    /// instead. Rhai's own functions (`len`, `contains`, ...) may be overloaded or
    /// replaced: the embedder's come first. An operator (`+`) is for the embedder's own
    /// types: Rhai's built-in operators on its types (`+` on two integers) come first.
    ///
    /// A script's integers are `i64` and its floats `f64` (prun's Rhai has `only_i64`):
    /// [`RuntimeBuilder::build`] refuses a function that takes or returns another number
    /// type (`i32`, `usize`, `f32`...), which no call would match, or which a script could
    /// not add to (`s.len()` is a `usize`: return it `as i64`). The embedder's `rhai`
    /// dependency (for [`rhai::Module`], `rhai::NativeCallContext`,
    /// `Result<T, Box<rhai::EvalAltResult>>`) is the one prun uses: `rhai = "1.27"`.
    pub fn register_fn<A, const N: usize, const X: bool, R, const F: bool, FN>(
        self,
        name: impl Into<String>,
        func: FN,
    ) -> Self
    where
        A: 'static,
        R: Variant + Clone,
        FN: RhaiNativeFunc<A, N, X, R, F> + Send + Sync + 'static,
    {
        self.register(name.into(), func, false)
    }

    /// [`RuntimeBuilder::register_fn`] for a function whose result depends on its
    /// arguments alone (a checksum, a format, a lookup in a table built into the
    /// program): calling it keeps a body's result in the task DB, and the proc is
    /// UP_TO_DATE when nothing else changed. The arguments are in the fingerprint as the
    /// body's code and values are; the function's own code is not: a program whose pure
    /// function now computes something else gives it another name, or a new task DB.
    ///
    /// ```
    /// let dir = tempfile::tempdir().unwrap();
    /// std::fs::write(dir.path().join("in.txt"), "data").unwrap();
    /// # let state = tempfile::tempdir().unwrap();
    /// let rt = prun::Runtime::builder()
    ///     .task_db(dir.path().join("tasks.db"))
    ///     .log_dir(dir.path().join("logs"))
    ///     .register_pure_fn("shout", |s: &str| s.to_uppercase())
    ///     .register_fn("now_ns", || -> i64 { 7 })
    /// #   .state_dir(state.path())
    ///     .build()?;
    /// let script = format!(
    ///     r#"proc("pure", #{{ inputs: ["{0}"] }}, || shout(read_file("{0}")));
    ///        proc("impure", #{{ inputs: ["{0}"] }}, || now_ns());
    ///        run(["pure", "impure"]);"#,
    ///     dir.path().join("in.txt").display()
    /// );
    /// rt.run_str(&script, [""; 0])?;
    /// let again = rt.run_str(&script, [""; 0])?;
    /// assert_eq!(again.proc("pure").unwrap().state, prun::State::UpToDate);
    /// assert_eq!(again.proc("pure").unwrap().result, "DATA");
    /// assert_eq!(again.proc("impure").unwrap().state, prun::State::Succeeded);
    /// # Ok::<(), prun::Error>(())
    /// ```
    pub fn register_pure_fn<A, const N: usize, const X: bool, R, const F: bool, FN>(
        self,
        name: impl Into<String>,
        func: FN,
    ) -> Self
    where
        A: 'static,
        R: Variant + Clone,
        FN: RhaiNativeFunc<A, N, X, R, F> + Send + Sync + 'static,
    {
        self.register(name.into(), func, true)
    }

    /// Registers a native function (see [`RuntimeBuilder::register_fn`]); unless `pure`,
    /// each call marks the body running on its thread as one whose result is not saved.
    fn register<A, const N: usize, const X: bool, R, const F: bool, FN>(
        mut self,
        name: String,
        func: FN,
        pure: bool,
    ) -> Self
    where
        A: 'static,
        R: Variant + Clone,
        FN: RhaiNativeFunc<A, N, X, R, F> + Send + Sync + 'static,
    {
        self.problems.extend(native_name_problem(&name));
        self.problems.extend(foreign_numbers(
            &name,
            &FN::param_types(),
            &FN::param_names(),
            (TypeId::of::<R>(), std::any::type_name::<R>()),
        ));
        // As Rhai's `set_into_module` does: a setter may not be called on a constant.
        let setter = (N == 3 && name == "index$set$") || (N == 2 && name.starts_with("set$"));
        let mut func = func.into_rhai_function(!setter, !pure);
        if !pure {
            func = marking(func);
        }
        FuncRegistration::new(name).set_into_module_raw(&mut self.natives, FN::param_types(), func);
        self
    }

    /// Makes `module` importable by scripts as `import "name"`. The embedder's modules
    /// come before the stdlib's and the script's files of the same name.
    ///
    /// Its functions have no text prun can read, so what they give is in no fingerprint:
    /// once a script imported it, a proc's closure that calls into any module (`m::f()`,
    /// which module an alias names is not known from the text), or names a function at
    /// run time (`eval`, a computed `Fn(...)`), is never UP_TO_DATE. A module whose
    /// functions' results depend on their arguments alone is given with
    /// [`RuntimeBuilder::pure_module`] instead.
    pub fn module(mut self, name: impl Into<String>, module: Module) -> Self {
        let name = name.into();
        self.pure_modules.remove(&name);
        self.modules.insert(name, module);
        self
    }

    /// [`RuntimeBuilder::module`] for a module whose functions' results depend on their
    /// arguments alone, and whose variables never change (see
    /// [`RuntimeBuilder::register_pure_fn`]): importing it keeps the closures that call
    /// into it cached as usual.
    ///
    /// ```
    /// let dir = tempfile::tempdir().unwrap();
    /// std::fs::write(dir.path().join("in.txt"), "data").unwrap();
    /// let mut text = rhai::Module::new();
    /// text.set_native_fn("shout", |s: &str| Ok(s.to_uppercase()));
    /// # let state = tempfile::tempdir().unwrap();
    /// let rt = prun::Runtime::builder()
    ///     .task_db(dir.path().join("tasks.db"))
    ///     .log_dir(dir.path().join("logs"))
    ///     .pure_module("text", text)
    /// #   .state_dir(state.path())
    ///     .build()?;
    /// let script = format!(
    ///     r#"import "text" as t;
    ///        proc("a", #{{ inputs: ["{}"] }}, || t::shout("v"));
    ///        run("a");"#,
    ///     dir.path().join("in.txt").display()
    /// );
    /// rt.run_str(&script, [""; 0])?;
    /// let again = rt.run_str(&script, [""; 0])?;
    /// assert_eq!(again.procs[0].state, prun::State::UpToDate);
    /// assert_eq!(again.procs[0].result, "V");
    /// # Ok::<(), prun::Error>(())
    /// ```
    pub fn pure_module(mut self, name: impl Into<String>, module: Module) -> Self {
        let name = name.into();
        self.modules.insert(name.clone(), module);
        self.pure_modules.insert(name);
        self
    }

    /// The stdlib modules (`import "retry"`, `"fs"`, `"pg"`, `"rclone"`) on or off
    /// (default: on).
    pub fn stdlib(mut self, on: bool) -> Self {
        self.stdlib = on;
        self
    }

    /// At most `n` Rhai operations per evaluation (the top level, each closure), for
    /// scripts that must not loop for ever. An exceeded limit is a script error naming
    /// it. This and the other limits bound the pass that reads a script's
    /// `args(#{...})` declaration before the run too (it evaluates the top level).
    /// The limits count in the fingerprints of closure bodies: a result cached under
    /// other limits is not taken (it may be one these limits would stop).
    pub fn max_operations(mut self, n: u64) -> Self {
        self.refuse_zero("max_operations", n == 0);
        self.limits.operations = Some(n);
        self
    }

    /// At most `n` levels of script function calls (default 64).
    pub fn max_call_levels(mut self, n: usize) -> Self {
        self.limits.call_levels = Some(n);
        self
    }

    /// Strings of at most `n` bytes.
    pub fn max_string_size(mut self, n: usize) -> Self {
        self.refuse_zero("max_string_size", n == 0);
        self.limits.string_size = Some(n);
        self
    }

    /// Arrays of at most `n` items.
    pub fn max_array_size(mut self, n: usize) -> Self {
        self.refuse_zero("max_array_size", n == 0);
        self.limits.array_size = Some(n);
        self
    }

    /// Object maps of at most `n` entries.
    pub fn max_map_size(mut self, n: usize) -> Self {
        self.refuse_zero("max_map_size", n == 0);
        self.limits.map_size = Some(n);
        self
    }

    /// A limit of 0 operations or of a size 0 is refused: Rhai reads it as no limit at
    /// all, the opposite of what it says (unset, there is none).
    fn refuse_zero(&mut self, limit: &str, zero: bool) {
        if zero {
            self.problems.push(format!(
                "{limit}: the limit must be at least 1 (Rhai would read 0 as no limit; \
                 leave it unset for none)"
            ));
        }
    }

    /// Calls `f` with every [`Event`] of every run (from the run's threads). A panic in
    /// `f` ends the run as an internal error, which says it was the callback's.
    ///
    /// An event does not say which run it is of: a program that runs several scripts at
    /// once and must tell their events apart builds a runtime for each run (building one
    /// costs little: each run makes its own engine anyway).
    pub fn on_event(mut self, f: impl Fn(&Event) + Send + Sync + 'static) -> Self {
        self.settings.on_event = Some(Arc::new(move |e: &Event| {
            if let Err(payload) = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(e))) {
                let why = crate::exec::panic_message(&*payload)
                    .map_or_else(String::new, |m| format!(": {m}"));
                std::panic::resume_unwind(Box::new(format!("the on_event callback panicked{why}")));
            }
        }));
        self
    }

    /// Ctrl-C, SIGTERM, SIGHUP and SIGQUIT interrupt a run while it lasts (default: off;
    /// the handlers are the whole process's, so only a program that owns its signals
    /// should ask, as the `prun` binary does). One of these signals that comes while no
    /// such run lasts gets its default action: it ends the program as if prun had never
    /// caught it. A signal the program ignored when it started (`nohup`) stays ignored,
    /// and one it handles itself (a handler installed before the first such run, with
    /// `sigaction` or `signal-hook`) goes to its handler alone between runs; during a run,
    /// to both.
    /// Unlike the `prun` binary, a library run does not adopt the processes that left
    /// their command's process group (`setsid`, a daemon): they outlive a cancel.
    pub fn handle_signals(mut self, on: bool) -> Self {
        self.settings.signals = on;
        self
    }

    /// Lend the program's terminal (its stdin, stdout and stderr) to procs with
    /// `interactive: true`, as the `prun` binary does (default: off). Such a proc's
    /// commands then read the program's input and write to its output, are made the
    /// terminal's foreground process group, and a Ctrl-Z at one stops the program's whole
    /// process group, as a job-control shell does; so only a program that owns its
    /// terminal should ask. Off, an interactive proc's command is refused: it fails,
    /// naming this setting.
    ///
    /// ```
    /// let dir = tempfile::tempdir().unwrap();
    /// # let state = tempfile::tempdir().unwrap();
    /// let rt = prun::Runtime::builder()
    ///     .task_db(prun::TaskDb::Off)
    ///     .log_dir(dir.path().join("logs"))
    /// #   .state_dir(state.path())
    ///     .build()?;
    /// let report = rt.run_str(r#"proc("ask", #{ interactive: true, cmd: ["true"] });"#, ["ask"])?;
    /// let error = report.proc("ask").unwrap().error.clone().unwrap();
    /// assert!(error.contains("prun::RuntimeBuilder::terminal"), "{error}");
    /// # Ok::<(), prun::Error>(())
    /// ```
    pub fn terminal(mut self, on: bool) -> Self {
        self.settings.terminal = on;
        self
    }

    /// `--live` or `--no-live` was given (a script's `set_options` then cannot change it).
    pub(crate) fn live_flag(mut self, given: bool) -> Self {
        self.settings.cli_live = given;
        self
    }

    /// `--output MODE`: where procs' output goes, over the script's `set_options`.
    pub(crate) fn proc_output(mut self, mode: Option<crate::graph::OutputMode>) -> Self {
        self.settings.proc_output = mode;
        self
    }

    /// `--watch`: after the run, watch the declared inputs and re-run what changes, until
    /// the run is interrupted.
    pub(crate) fn watch(mut self, on: bool) -> Self {
        self.settings.watch = on;
        self
    }

    /// The runtime; an [`crate::ErrorKind::Config`] error when a setting is wrong: a
    /// `parallel` of 0, a `max_operations` or size limit of 0 (which Rhai would read as
    /// no limit), an empty `task_db`, `log_dir` or `state_dir` path, a native function's name or a
    /// number type of its (see [`RuntimeBuilder::register_fn`]).
    pub fn build(self) -> Result<Runtime, Error> {
        if !self.problems.is_empty() {
            return Err(Failure::Config(self.problems.join("; ")).into());
        }
        let mut settings = self.settings;
        let modules = EmbedderModules {
            modules: self.modules,
            pure: Arc::new(self.pure_modules),
        };
        settings.setup = Some(engine_setup(
            self.natives.into(),
            modules,
            self.stdlib,
            self.limits,
            settings.policy.clone(),
        ));
        Ok(Runtime {
            settings: Arc::new(settings),
            limits: self.limits,
        })
    }
}

/// How Rhai holds a native function (its `FnAny`).
type NativeFn = dyn Fn(Option<NativeCallContext>, &mut [&mut Dynamic]) -> Result<Dynamic, Box<rhai::EvalAltResult>>
    + Send
    + Sync;

/// `func`, which marks the body that calls it as one whose result is not saved (see
/// [`RuntimeBuilder::register_fn`]) before it runs.
fn marking(func: RhaiFunc) -> RhaiFunc {
    let wrap = |inner: Shared<NativeFn>| -> Shared<NativeFn> {
        Shared::new(
            move |ctx: Option<NativeCallContext>, args: &mut [&mut Dynamic]| {
                crate::script::impure_native_called();
                inner(ctx, args)
            },
        )
    };
    match func {
        RhaiFunc::Pure {
            func,
            has_context,
            is_pure,
            is_volatile,
        } => RhaiFunc::Pure {
            func: wrap(func),
            has_context,
            is_pure,
            is_volatile,
        },
        RhaiFunc::Method {
            func,
            has_context,
            is_pure,
            is_volatile,
        } => RhaiFunc::Method {
            func: wrap(func),
            has_context,
            is_pure,
            is_volatile,
        },
        other => other,
    }
}

/// The operators a native function may overload for the embedder's types.
const OPERATORS: &[&str] = &[
    "+", "-", "*", "/", "%", "**", "<<", ">>", "&", "|", "^", "==", "!=", "<", "<=", ">", ">=",
    "!", "+=", "-=", "*=", "/=", "%=", "**=", "<<=", ">>=", "&=", "|=", "^=",
];

/// Why a native function cannot be called `name`, if it cannot (see
/// [`RuntimeBuilder::register_fn`]).
fn native_name_problem(name: &str) -> Option<String> {
    if crate::script::API_FUNCTIONS.contains(&name) {
        return Some(format!(
            "register_fn(\"{name}\"): `{name}` is a function of prun's script API, which \
             scripts would call instead of this one; give the native function another name"
        ));
    }
    let accessor = ["get$", "set$"]
        .iter()
        .filter_map(|prefix| name.strip_prefix(prefix))
        .any(rhai::is_valid_identifier);
    // `print` and `debug` are keywords, but Rhai calls the functions of those names to
    // make the text it prints: they may be overloaded for the embedder's types.
    let callable = rhai::is_valid_function_name(name)
        || ["print", "debug"].contains(&name)
        || accessor
        || OPERATORS.contains(&name)
        || ["index$get$", "index$set$"].contains(&name);
    (!callable).then(|| {
        format!(
            "register_fn({name:?}): not a name a native function can have: scripts call \
             one by a Rhai identifier (letters, digits and `_`) that is not a Rhai keyword \
             (`type_of`, `Fn`, `eval`, ...), or by an operator such as \"+\""
        )
    })
}

/// Number types no script value is: a script's integers are `i64` and its floats `f64`.
const FOREIGN_NUMBERS: [fn() -> TypeId; 12] = [
    TypeId::of::<i8>,
    TypeId::of::<i16>,
    TypeId::of::<i32>,
    TypeId::of::<i128>,
    TypeId::of::<isize>,
    TypeId::of::<u8>,
    TypeId::of::<u16>,
    TypeId::of::<u32>,
    TypeId::of::<u64>,
    TypeId::of::<u128>,
    TypeId::of::<usize>,
    TypeId::of::<f32>,
];

/// Why the native function `name` cannot work with scripts' values, if it cannot: a
/// parameter of a number type no script value is (the call matches nothing), or such a
/// result (a script cannot compute with it, nor can a proc return it).
fn foreign_numbers(
    name: &str,
    params: &[TypeId],
    param_names: &[&str],
    (result, result_name): (TypeId, &str),
) -> Vec<String> {
    let foreign = |t: TypeId| FOREIGN_NUMBERS.iter().any(|f| f() == t);
    let mut problems: Vec<String> = params
        .iter()
        .zip(param_names)
        .enumerate()
        .filter(|(_, (t, _))| foreign(**t))
        .map(|(i, (_, type_name))| {
            format!(
                "register_fn({name:?}): its parameter {} is {type_name}, which no script \
                 value is (a script's integers are i64, its floats f64); take i64 or f64 \
                 and convert",
                i + 1
            )
        })
        .collect();
    if foreign(result) {
        problems.push(format!(
            "register_fn({name:?}): it returns {result_name}, which a script cannot \
             compute with (a script's integers are i64, its floats f64); return i64 or f64"
        ));
    }
    problems
}

/// The embedder's modules ([`RuntimeBuilder::module`]): importing one that is not pure
/// tells the run that closures calling into modules may call code no fingerprint covers.
#[derive(Clone)]
struct EmbedderModules {
    modules: StaticModuleResolver,
    pure: Arc<HashSet<String>>,
}

impl ModuleResolver for EmbedderModules {
    fn resolve(
        &self,
        engine: &Engine,
        source: Option<&str>,
        path: &str,
        pos: rhai::Position,
    ) -> Result<Shared<Module>, Box<rhai::EvalAltResult>> {
        let module = self.modules.resolve(engine, source, path, pos)?;
        if !self.pure.contains(path) {
            crate::script::record_opaque_module(engine, path);
        }
        Ok(module)
    }
}

/// What every engine of the runtime gets: the native functions, the modules, the limits,
/// and an `env()` that sees only what the policy lets scripts read.
fn engine_setup(
    natives: Shared<Module>,
    modules: EmbedderModules,
    stdlib: bool,
    limits: Limits,
    policy: Arc<Policy>,
) -> EngineSetup {
    EngineSetup(Arc::new(move |engine: &mut Engine| {
        engine.register_global_module(natives.clone());
        crate::script::install_modules(engine, Some(modules.clone()), stdlib);
        limits.apply(engine);
        if policy.hides_env() {
            let p = policy.clone();
            let read = move |name: &str| {
                if p.env_visible(name) {
                    crate::script::env_of_run(name)
                } else {
                    Ok(None)
                }
            };
            let r = read.clone();
            engine.register_fn(
                "env",
                move |name: &str| -> Result<Dynamic, Box<rhai::EvalAltResult>> {
                    Ok(r(name)?.map_or(Dynamic::UNIT, Into::into))
                },
            );
            engine.register_fn(
                "env",
                move |name: &str, default: &str| -> Result<String, Box<rhai::EvalAltResult>> {
                    Ok(read(name)?.unwrap_or_else(|| default.to_string()))
                },
            );
        }
    }))
}

/// Stops runs from another thread: [`Cancel::cancel`] stops every run given this cancel
/// (or a clone of it) as Ctrl-C stops the `prun` binary. A cancel stays cancelled: a run
/// started with it later stops at once.
///
/// ```
/// let cancel = prun::Cancel::new();
/// let handle = cancel.clone();
/// std::thread::spawn(move || handle.cancel()).join().unwrap();
/// assert!(cancel.is_cancelled());
/// ```
#[derive(Clone, Default)]
pub struct Cancel {
    inner: Arc<Mutex<CancelState>>,
}

#[derive(Default)]
struct CancelState {
    cancelled: bool,
    /// The runs to stop, by an id of their attachment.
    runs: Vec<(u64, Weak<Scheduler>)>,
    next: u64,
}

impl std::fmt::Debug for Cancel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cancel")
            .field("cancelled", &self.is_cancelled())
            .finish()
    }
}

impl Cancel {
    /// A cancel not cancelled yet.
    pub fn new() -> Cancel {
        Cancel::default()
    }

    /// Stops the runs given this cancel, as a first Ctrl-C does: their commands are
    /// ended (SIGTERM, the kill grace, SIGKILL) and their `defer` cleanups run to their
    /// end. A second call is a second Ctrl-C: it ends the cleanups' commands at once too
    /// (SIGKILL; those they start later as well, and the cleanups stop at their next
    /// operation, whether they had started or not), so a cleanup that hangs does not keep
    /// `run_*` from returning.
    pub fn cancel(&self) {
        let runs: Vec<Arc<Scheduler>> = {
            let mut state = self.state();
            state.cancelled = true;
            state.runs.iter().filter_map(|(_, w)| w.upgrade()).collect()
        };
        for s in runs {
            s.interrupt();
        }
    }

    /// True once [`Cancel::cancel`] was called.
    pub fn is_cancelled(&self) -> bool {
        self.state().cancelled
    }

    /// Makes `cancel()` stop the run of `sched` while the returned guard lives; a cancel
    /// already cancelled stops it now.
    pub(crate) fn attach(&self, sched: &Arc<Scheduler>) -> Attached {
        let (id, cancelled) = {
            let mut state = self.state();
            let id = state.next;
            state.next += 1;
            state.runs.push((id, Arc::downgrade(sched)));
            (id, state.cancelled)
        };
        if cancelled {
            sched.interrupt();
        }
        Attached {
            cancel: self.clone(),
            id,
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, CancelState> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A run attached to a [`Cancel`]; detached when dropped.
pub(crate) struct Attached {
    cancel: Cancel,
    id: u64,
}

impl Drop for Attached {
    fn drop(&mut self) {
        self.cancel.state().runs.retain(|(id, _)| *id != self.id);
    }
}

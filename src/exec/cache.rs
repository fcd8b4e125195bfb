//! Incremental runs: resolving `inputs` and `outputs`, fingerprints, deciding that a proc
//! is UP_TO_DATE, and keeping the task DB's cache up to date.
//!
//! A proc's fingerprint covers its definition (the command, or the closure's code and
//! captured values, with `env`, `cwd`, `executor` and the environment variables it names), its placeholder values, the params, the stamps
//! of its dependencies (a stamp changes whenever a proc really runs, so a dependency that
//! ran since makes its dependents stale even in a later run), and every resolved input
//! file: its path (as bytes, so names that are not UTF-8 count too), size, modification
//! time in nanoseconds, inode number and status change time. A glob contributes the set of files it matched, so an added or
//! removed file is a change.
//!
//! Inputs modified less than [`RACY_WINDOW`] before the fingerprint is taken are *racily
//! clean* (git's term): on a file system with coarse timestamps they could be rewritten
//! with the same size and mtime. The fingerprint then ends with `:SINCE:CONTENT`, a hash
//! of the contents of the files modified at or after SINCE, and a later run checks the
//! contents of those same files (the ones modified since SINCE) before it trusts the
//! result ([`Fingerprint::matches`]).
//!
//! A row of a proc with declared outputs also holds a stamp of them as its run left them
//! (see `Outputs::stamp`), and rows are keyed by the script (see [`row_prefix`]).

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use rhai::{Dynamic, Map};

use super::fileglob::GlobError;
use super::tree::{Entry, Lister, OwnFiles};
use crate::fnv::Fnv;
use crate::graph::{
    Body, CallFailure, Callback, FileSpec, Items, OutputSpec, ProcId, ProcNode, call_strings,
    closure_ctx, fill_known,
};
use crate::store::{CacheRow, ProcRecord, ScriptName, Store, StoreError};

/// The cache of one run, in memory, in front of the task DB.
pub(crate) struct Cache {
    store: Arc<Store>,
    rows: HashMap<String, Arc<CacheRow>>,
    /// Procs that ran in this run without saving a result ([`Cache::touch`]): the
    /// sequence number of their new stamp, by proc id (0: none). Every other proc's stamp
    /// is in its row. Eight bytes a proc: a run of 10,000 command procs touches every one.
    touched: Vec<u64>,
    /// Procs whose running attempt did something no cached result can stand for (see
    /// [`Cache::unrepeatable`]): their result is not saved.
    unrepeatable: std::collections::HashSet<ProcId>,
    /// The stamp of the declared outputs of procs that just ran, read after they ran (see
    /// [`Cache::outputs_read`]).
    outputs: HashMap<ProcId, String>,
    begun: bool,
    /// What the task DB's key of each of the script's rows starts with (see
    /// [`row_prefix`]); `rows` are by proc name.
    prefix: Arc<str>,
    script: ScriptName,
    args: Vec<String>,
    /// `--full`: every proc runs, but results are still saved.
    pub full: bool,
    stamp_base: u128,
    stamp_seq: u64,
    started: SystemTime,
    /// `--dry-run`: the cache is read, nothing is written.
    read_only: bool,
    /// The directory prun runs in, which every fingerprint counts.
    cwd: Arc<Path>,
    /// What the run's policy changes in what procs give, which every fingerprint counts
    /// (see [`Cache::under`]).
    policy: Arc<str>,
}

/// What `inputs` resolved to, and their fingerprint.
#[derive(Debug, Clone, Default)]
pub(crate) struct Fingerprint {
    /// The hash stored with a result.
    pub hash: String,
    /// Resolved input files (globs expanded, directories walked).
    pub files: Vec<PathBuf>,
    /// Each input file that exists (directories walked) with its modification time in
    /// nanoseconds, for `ctx.input_fingerprint` ([`Fingerprint::input_map`]): the map is
    /// only made for a proc that runs, not for each one judged UP_TO_DATE.
    mtimes: Vec<(PathBuf, i64)>,
    /// Whether the proc declares inputs (`ctx.input_fingerprint` is `()` when not).
    declared: bool,
    /// prun's own files, left out of the directories among `files`.
    pub own: Arc<OwnFiles>,
}

impl Fingerprint {
    /// Whether a fingerprint saved earlier still holds: the same definition, dependencies
    /// and input names, sizes and mtimes, and, when some inputs were racily clean then, the
    /// same content of the inputs modified since that moment.
    pub(crate) fn matches(&self, saved: &str) -> bool {
        let mut parts = saved.splitn(3, ':');
        let (main, since, content) = (parts.next(), parts.next(), parts.next());
        if main != self.hash.split(':').next() {
            return false;
        }
        match (since.map(str::parse::<i64>), content) {
            (None, None) => true,
            (Some(Ok(since)), Some(content)) => content_since(&self.files, since, &self.own)
                .is_some_and(|c| format!("{c:032x}") == content),
            _ => false,
        }
    }

    /// `ctx.input_fingerprint`: path → modification time in nanoseconds (absent files
    /// are left out); `()` when the proc declares no inputs.
    pub(crate) fn input_map(&self) -> Dynamic {
        if !self.declared {
            return Dynamic::UNIT;
        }
        let map: Map = self
            .mtimes
            .iter()
            .map(|(path, mtime)| (super::fileglob::display(path).into(), Dynamic::from(*mtime)))
            .collect();
        map.into()
    }
}

impl Cache {
    /// A cache over `store`, whose rows have been loaded.
    pub(crate) fn new(
        store: Arc<Store>,
        rows: HashMap<String, Arc<CacheRow>>,
        script: ScriptName,
        args: Vec<String>,
        full: bool,
        started: SystemTime,
    ) -> Cache {
        let prefix = row_prefix(&script);
        Cache {
            store,
            rows: rows_of(&prefix, rows),
            prefix,
            touched: Vec::new(),
            unrepeatable: std::collections::HashSet::new(),
            outputs: HashMap::new(),
            begun: false,
            script,
            args,
            full,
            stamp_base: started
                .duration_since(SystemTime::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos()),
            stamp_seq: 0,
            started,
            read_only: false,
            cwd: std::env::current_dir().unwrap_or_default().into(),
            policy: Arc::from(""),
        }
    }

    /// The same cache, for a run under a policy that changes what procs give (see
    /// [`crate::Policy`]'s `fingerprint_text`: the variables it hides from the script and
    /// its commands, the programs it refuses): every fingerprint counts it, so that a
    /// result cached while a proc saw `$TOKEN`, or ran a program now refused, is not taken
    /// when running the proc now would not give it, nor the other way round.
    pub(crate) fn under(mut self, policy: String) -> Cache {
        self.policy = Arc::from(policy);
        self
    }

    /// What the run's policy changes in what procs give (see [`Cache::under`]).
    pub(crate) fn policy(&self) -> &Arc<str> {
        &self.policy
    }

    /// Opens the task DB at `path` and loads its cache. Any problem is a warning and
    /// `None`: the run goes on without a DB.
    pub(crate) fn open(
        path: &Path,
        script: ScriptName,
        args: Vec<String>,
        full: bool,
        started: SystemTime,
        warn: Arc<dyn Fn(&str) + Send + Sync>,
    ) -> Option<Cache> {
        let store = Store::open(path, warn.clone());
        Cache::opened(store, script, args, full, started, &*warn)
    }

    /// The cache of a dry run, which reads the task DB at `path` and writes nothing: it is
    /// opened read-only (see [`Store::open_read_only`]), so a DB the user may read but not
    /// write is judged from too, and none is made (`None` when there is none).
    pub(crate) fn open_read_only(
        path: &Path,
        script: ScriptName,
        args: Vec<String>,
        full: bool,
        started: SystemTime,
        warn: Arc<dyn Fn(&str) + Send + Sync>,
    ) -> Option<Cache> {
        if crate::store::missing(path) {
            return None;
        }
        let store = Store::open_read_only(path, warn.clone());
        Cache::opened(store, script, args, full, started, &*warn).map(|c| c.read_only(true))
    }

    /// [`Cache::open`] on a DB opened already (see [`Store::start`]), or that failed to.
    pub(crate) fn opened(
        store: Result<Store, StoreError>,
        script: ScriptName,
        args: Vec<String>,
        full: bool,
        started: SystemTime,
        warn: &dyn Fn(&str),
    ) -> Option<Cache> {
        let opened = store.and_then(|s| {
            let rows = s.load_cache()?;
            Ok((s, rows))
        });
        match opened {
            Ok((store, rows)) => Some(Cache::new(
                Arc::new(store),
                rows,
                script,
                args,
                full,
                started,
            )),
            Err(e) => {
                warn(&format!(
                    "{e}; running without the task DB (no cache, no history)"
                ));
                None
            }
        }
    }

    /// Whether it writes nothing (`--dry-run`).
    pub(crate) fn is_read_only(&self) -> bool {
        self.read_only
    }

    /// Makes the cache read-only (for `--dry-run`).
    pub(crate) fn read_only(mut self, on: bool) -> Cache {
        self.read_only = on;
        self
    }

    /// Records the end of the run, with why it stopped when an error stopped it, and keeps
    /// the history of the last `keep_runs` runs of the script (0: all). The DB's writer
    /// commits it while the caller goes on; dropping the cache waits until everything is
    /// written.
    pub(crate) fn finish(
        &mut self,
        duration: Duration,
        outcome: &str,
        counts: &str,
        keep_runs: u64,
        error: Option<&str>,
    ) {
        if !self.read_only {
            self.begin_run();
            self.store
                .end_run(duration, outcome, counts, keep_runs, error);
        }
        self.store.finish();
    }

    /// The directory prun runs in, as every fingerprint of the run counts it.
    pub(crate) fn cwd(&self) -> &Arc<Path> {
        &self.cwd
    }

    /// The DB behind the cache.
    pub(crate) fn store(&self) -> &Arc<Store> {
        &self.store
    }

    /// The cached row of a proc.
    pub(crate) fn row(&self, name: &str) -> Option<&Arc<CacheRow>> {
        self.rows.get(name)
    }

    /// What the task DB's key of each of the script's rows starts with (see
    /// [`row_prefix`]).
    pub(crate) fn prefix(&self) -> &Arc<str> {
        &self.prefix
    }

    /// The current stamp of proc `id`, named `name` (empty when it never ran with a DB).
    pub(crate) fn stamp(&self, id: ProcId, name: &str) -> String {
        self.stamp_of(id, name).unwrap_or_default()
    }

    /// The stamp of a proc, if it has one: in its cached row, or given in this run.
    fn stamp_of(&self, id: ProcId, name: &str) -> Option<String> {
        match (self.rows.get(name), self.touched.get(id)) {
            (Some(row), _) => Some(row.stamp.clone()),
            (None, Some(&seq)) if seq > 0 => Some(self.stamp_text(seq)),
            (None, _) => None,
        }
    }

    /// Forgets the stamp proc `id` was given in this run, if any.
    fn untouch(&mut self, id: ProcId) {
        if let Some(seq) = self.touched.get_mut(id) {
            *seq = 0;
        }
    }

    /// The text of this run's stamp number `seq`: unique to the run and to the proc.
    fn stamp_text(&self, seq: u64) -> String {
        format!("{:x}.{seq}", self.stamp_base)
    }

    /// A new stamp number of this run.
    fn next_stamp(&mut self) -> u64 {
        self.stamp_seq += 1;
        self.stamp_seq
    }

    /// The task DB's key of proc `name`'s row: the script's prefix, then the name (built
    /// by hand: `format!` cost a thousand instructions a finished proc).
    fn key(&self, name: &str) -> String {
        let mut key = String::with_capacity(self.prefix.len() + name.len());
        key.push_str(&self.prefix);
        key.push_str(name);
        key
    }

    /// Saves the result of proc `id`, named `name`; `fresh` gives it a new stamp (it
    /// really ran). For a proc that `writes` declared outputs, the row is dropped instead
    /// when another run of the script saved the proc since this one read its row: both
    /// ran it at once, writing its outputs together, and neither row stands for them (a
    /// result alone is right whichever run made it).
    pub(crate) fn save(
        &mut self,
        id: ProcId,
        name: &str,
        result: String,
        fp: String,
        fresh: bool,
        writes: bool,
    ) {
        let stamp = match self.stamp_of(id, name) {
            Some(old) if !fresh => old,
            _ => {
                let seq = self.next_stamp();
                self.stamp_text(seq)
            }
        };
        self.untouch(id);
        let row = CacheRow {
            result,
            fingerprint: fp,
            stamp,
        };
        let key = self.key(name);
        if writes {
            let seen = self.rows.get(name).map(|r| r.stamp.clone());
            self.store.save_seen(&key, row.clone(), seen);
        } else {
            self.store.save(&key, row.clone());
        }
        self.rows.insert(name.to_string(), Arc::new(row));
    }

    /// Gives proc `id`, named `name`, a new stamp without saving a result (a proc that is
    /// never UP_TO_DATE ran); a cached result of an earlier definition of it is forgotten.
    pub(crate) fn touch(&mut self, id: ProcId, name: &str) {
        self.invalidate(id, name);
        let seq = self.next_stamp();
        if self.touched.len() <= id {
            self.touched.resize(id + 1, 0);
        }
        self.touched[id] = seq;
    }

    /// Forgets the result of proc `id`, named `name`: it failed, so what is cached is
    /// stale.
    pub(crate) fn invalidate(&mut self, id: ProcId, name: &str) {
        if !self.rows.is_empty() && self.rows.remove(name).is_some() {
            self.store.invalidate(&self.key(name));
        }
        self.untouch(id);
        self.take_unrepeatable(id);
        self.take_outputs(id);
    }

    /// The stamp of proc `id`'s declared outputs as its attempt that just ended left them
    /// (see [`Outputs::stamp`]): saved with its result.
    pub(crate) fn outputs_read(&mut self, id: ProcId, stamp: String) {
        self.outputs.insert(id, stamp);
    }

    /// The stamp [`Cache::outputs_read`] was given for proc `id` (used up).
    /// Usually none: an empty map is not searched (hashing the id for nothing, here and in
    /// the other maps a proc's end looks in, cost about 800 instructions a proc).
    pub(crate) fn take_outputs(&mut self, id: ProcId) -> Option<String> {
        if self.outputs.is_empty() {
            return None;
        }
        self.outputs.remove(&id)
    }

    /// Marks the running attempt of proc `id` as one whose result must not be saved: its
    /// body read or scheduled other procs, set the params, or made what lasts only until
    /// the script ends (a `tempdir()`, a `defer`), however it called them (a module's
    /// `pg::start` included). Running it again is the only way to get what it gives.
    pub(crate) fn unrepeatable(&mut self, id: ProcId) {
        self.unrepeatable.insert(id);
    }

    /// Whether the attempt of proc `id` that just ended was marked [`Cache::unrepeatable`]
    /// (the mark is used up).
    /// Usually none marked: an empty set is not searched (see [`Cache::take_outputs`]).
    pub(crate) fn take_unrepeatable(&mut self, id: ProcId) -> bool {
        !self.unrepeatable.is_empty() && self.unrepeatable.remove(&id)
    }

    /// Starts the run's history row now (once), before any proc ends: a run killed while
    /// its first proc runs is then in the history, that proc recorded `DIED` by the next
    /// run (see [`crate::store::record_died_procs`]). Nothing for a `--dry-run`.
    pub(crate) fn begin(&mut self) {
        if !self.read_only {
            self.begin_run();
        }
    }

    /// Starts the run's history row, once.
    fn begin_run(&mut self) {
        if !self.begun {
            self.begun = true;
            let started = humantime::format_rfc3339_millis(self.started).to_string();
            self.store.begin_run(&self.script, &self.args, &started);
        }
    }

    /// Records the run's parallel limit in its history.
    pub(crate) fn record_parallel(&mut self, parallel: usize) {
        if !self.read_only {
            self.begin_run();
            self.store.record_parallel(parallel);
        }
    }

    /// Adds a finished proc to the run's history.
    pub(crate) fn record(&mut self, rec: ProcRecord) {
        if self.read_only {
            return;
        }
        self.begin_run();
        self.store.record_proc(rec);
    }
}

impl Drop for Cache {
    /// Waits until the DB's writer has committed what the run sent it (see
    /// [`Store::close`]), though a batch of procs being judged may still hold the store:
    /// a run's process that exits after dropping its cache would otherwise end the writer
    /// before it committed the run's end.
    fn drop(&mut self) {
        self.store.close();
    }
}

/// What the task DB's key of a cached row starts with: a hash of the script's identity,
/// so that scripts sharing a DB (`--db`) keep their own rows of procs named alike, instead
/// of each run replacing the other script's (which then ran again). The proc name follows.
fn row_prefix(script: &ScriptName) -> Arc<str> {
    let mut h = Fnv::<u64>::new();
    h.update(script.key.as_bytes());
    format!("{:016x}/", h.0).into()
}

/// The rows of the script whose rows' keys start with `prefix`, by proc name, among those
/// of every script sharing the DB.
fn rows_of(prefix: &str, all: HashMap<String, Arc<CacheRow>>) -> HashMap<String, Arc<CacheRow>> {
    all.into_iter()
        .filter(|(key, _)| key.starts_with(prefix))
        .map(|(mut key, row)| {
            key.drain(..prefix.len());
            (key, row)
        })
        .collect()
}

/// Why `inputs` or `outputs` cannot be resolved, or why declared outputs fail a proc.
#[derive(Debug, thiserror::Error)]
pub(crate) enum FilesError {
    /// A closure threw: `message` says where, as [`crate::diag::closure_error`] does.
    #[error("the {which} closure of \"{proc}\" failed: {message}")]
    Threw {
        which: Which,
        proc: rhai::ImmutableString,
        message: String,
    },
    #[error(
        "the {which} closure of \"{proc}\" failed: it must return a path or an array of paths, not {got} ({origin})"
    )]
    NotPaths {
        which: Which,
        proc: rhai::ImmutableString,
        /// What it returned instead, in words.
        got: String,
        origin: crate::diag::Origin,
    },
    #[error("invalid glob \"{}\": {source}", crate::shown::visible(pattern))]
    Glob {
        pattern: String,
        source: glob::PatternError,
    },
    #[error("declared outputs are missing or stale:\n  {}", crate::shown::visible(&.0.join("\n  ")))]
    Outputs(Vec<String>),
    #[error(
        "the input \"{}\" names no file: prun does not read a leading \"~\" as the home directory (write `env(\"HOME\") + \"/...\"`)",
        crate::shown::visible(&.0.to_string_lossy())
    )]
    Tilde(PathBuf),
    #[error(
        "the inputs cannot be listed: {0} (prun does not judge a proc on inputs it cannot see)"
    )]
    Unreadable(#[from] super::tree::Unreadable),
}

/// Which of a proc's file closures an error is of.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Which {
    Inputs,
    Outputs,
}

impl std::fmt::Display for Which {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Which::Inputs => "inputs",
            Which::Outputs => "outputs",
        })
    }
}

/// A result that JSON cannot hold, or could not read back.
#[derive(Debug, thiserror::Error)]
pub(super) enum JsonError {
    #[error("a value of type {0}")]
    Type(&'static str),
    #[error("a value nested deeper than {MAX_NESTING} levels")]
    Nested,
    #[error("the number {0}: JSON has no NaN or infinity")]
    NotFinite(f64),
    #[error("{0}")]
    Serde(#[from] serde_json::Error),
}

/// How deeply nested a result may be: less than `serde_json` reads back (128 levels),
/// so that a saved result is never one the next run cannot load.
const MAX_NESTING: usize = 100;

/// A result as JSON, for the cache. Only data survives the trip: closures and other
/// values of types JSON does not have are an error naming the type (serde would write a
/// closure as its name, and the next run would hand dependents a string), and so is a
/// value nested deeper than [`MAX_NESTING`] levels (the next run could not read it back).
pub(super) fn to_json(v: &Dynamic) -> Result<String, JsonError> {
    check_result(v)?;
    Ok(serde_json::to_string(v)?)
}

/// Whether JSON can hold `v` (see [`to_json`]); `Ok(true)` when it holds a character,
/// which comes back from JSON as a string ([`strings_for_chars`]).
pub(super) fn check_result(v: &Dynamic) -> Result<bool, JsonError> {
    fn check(v: &Dynamic, depth: usize) -> Result<bool, JsonError> {
        if let Some(f) = v.as_float().ok().filter(|f| !f.is_finite()) {
            return Err(JsonError::NotFinite(f));
        }
        if v.is_char() {
            return Ok(true);
        }
        if v.is_unit() || v.is_bool() || v.is_int() || v.is_float() || v.is_string() {
            return Ok(false);
        }
        if depth >= MAX_NESTING && (v.is_array() || v.is_map()) {
            return Err(JsonError::Nested);
        }
        let mut chars = false;
        if let Some(a) = v.read_lock::<rhai::Array>() {
            for x in a.iter() {
                chars |= check(x, depth + 1)?;
            }
            return Ok(chars);
        }
        if let Some(m) = v.read_lock::<Map>() {
            for x in m.values() {
                chars |= check(x, depth + 1)?;
            }
            return Ok(chars);
        }
        Err(JsonError::Type(short_type_name(v.type_name())))
    }
    check(v, 0)
}

/// `v` with each character (also inside arrays and maps) turned into a string of it.
pub(super) fn strings_for_chars(v: Dynamic) -> Dynamic {
    if let Ok(c) = v.as_char() {
        return Dynamic::from(c.to_string());
    }
    if v.is_array() {
        let a: rhai::Array = v.cast();
        return a
            .into_iter()
            .map(strings_for_chars)
            .collect::<rhai::Array>()
            .into();
    }
    if v.is_map() {
        let m: Map = v.cast();
        return m
            .into_iter()
            .map(|(k, x)| (k, strings_for_chars(x)))
            .collect::<Map>()
            .into();
    }
    v
}

/// A type's name without a Rust path or parameters: `range` for
/// `core::ops::range::Range<i64>`; Rhai's own names (`blob`, `timestamp`) stay.
fn short_type_name(name: &'static str) -> &'static str {
    let bare = name.split('<').next().unwrap_or(name);
    match bare.rsplit("::").next().unwrap_or(bare) {
        "Range" | "RangeInclusive" => "range",
        "Fn" => "closure",
        short => short,
    }
}

/// One resolved entry of `inputs`, before globs are expanded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum InputPattern {
    /// A path (kept even when it does not exist; a directory stands for every file under
    /// it).
    Path(PathBuf),
    /// A glob, with placeholder values escaped.
    Glob(String),
}

/// Resolves `inputs` to paths and globs: placeholders filled, closures called; globs are
/// not expanded. A placeholder's value is a name, never a pattern: `in/[file]` for a file
/// `br[env].log` is that file.
pub(crate) fn input_patterns(
    params: &Map,
    node: &ProcNode,
    specs: &[&FileSpec],
) -> Result<Vec<InputPattern>, FilesError> {
    let mut out = Vec::new();
    let pattern = |p: String| {
        if is_glob(&p) {
            InputPattern::Glob(p)
        } else {
            InputPattern::Path(PathBuf::from(p))
        }
    };
    for spec in specs {
        match spec {
            FileSpec::Path(p) => {
                if is_glob_free_template(p, node.args()) {
                    out.push(InputPattern::Path(PathBuf::from(fill_known(
                        p,
                        node.args(),
                    ))));
                } else {
                    out.push(pattern(fill_escaped(p, node.args())));
                }
            }
            FileSpec::Closure(cb) => out.extend(
                call_paths(params, node, cb, Which::Inputs)?
                    .into_iter()
                    .map(pattern),
            ),
        }
    }
    Ok(out)
}

/// Resolves `inputs` to paths: [`input_patterns`], with globs expanded (sorted). Literal
/// paths are kept even when they do not exist.
pub(super) fn resolve(
    params: &Map,
    node: &ProcNode,
    specs: &[&FileSpec],
) -> Result<Vec<PathBuf>, FilesError> {
    let mut out = Vec::new();
    for p in input_patterns(params, node, specs)? {
        match p {
            InputPattern::Path(p) => out.push(p),
            InputPattern::Glob(g) => expand(&g, &mut out)?,
        }
    }
    if let Some(p) = out.iter().find(|p| is_home_like(p)) {
        return Err(FilesError::Tilde(p.clone()));
    }
    Ok(out)
}

/// Whether `path` starts with `~` and is not there: the shell would have read `~` as a
/// home directory, and the input would count as a missing file whatever became of the
/// file meant.
fn is_home_like(path: &Path) -> bool {
    path.as_os_str().as_encoded_bytes().starts_with(b"~")
        && std::fs::symlink_metadata(path).is_err()
}

/// The files a proc's `outputs` name (placeholders filled, closures called).
pub(crate) fn output_paths(params: &Map, node: &ProcNode) -> Result<Vec<PathBuf>, FilesError> {
    let mut out = Vec::new();
    for o in &node.def.outputs {
        out.extend(resolve_output(params, node, &o.files)?);
    }
    Ok(out)
}

/// Resolves the files of one output to paths: placeholders filled, closures called.
/// Outputs are paths, never globs: a proc's output is a file it must write, and
/// `out[1].txt` names that file, not `out1.txt`.
fn resolve_output(
    params: &Map,
    node: &ProcNode,
    spec: &FileSpec,
) -> Result<Vec<PathBuf>, FilesError> {
    match spec {
        FileSpec::Path(p) => Ok(vec![PathBuf::from(fill_known(p, node.args()))]),
        FileSpec::Closure(cb) => Ok(call_paths(params, node, cb, Which::Outputs)?
            .into_iter()
            .map(PathBuf::from)
            .collect()),
    }
}

fn is_glob(text: &str) -> bool {
    text.contains(['*', '?', '['])
}

/// True when `template`'s only pattern characters are its placeholders (`[file].gz`).
fn is_glob_free_template(template: &str, args: &[(String, String)]) -> bool {
    let mut rest = template.to_string();
    for (k, _) in args {
        rest = rest.replace(&format!("[{k}]"), "");
    }
    !is_glob(&rest)
}

/// `template` with each placeholder replaced by its value escaped for a glob.
fn fill_escaped(template: &str, args: &[(String, String)]) -> String {
    let escaped: Vec<(String, String)> = args
        .iter()
        .map(|(k, v)| (k.clone(), glob::Pattern::escape(v)))
        .collect();
    fill_known(template, &escaped)
}

/// Calls the `which` closure `cb` of `node`; an error names the closure and the proc.
fn call_paths(
    params: &Map,
    node: &ProcNode,
    cb: &Callback,
    which: Which,
) -> Result<Vec<String>, FilesError> {
    let values: Vec<String> = node.args().iter().map(|(_, v)| v.clone()).collect();
    let ctx = closure_ctx(&node.name, node.args(), params);
    let proc = node.name.clone();
    call_strings(cb, ctx, &values, Items::Strings).map_err(|f| match f {
        CallFailure::Threw(message) => FilesError::Threw {
            which,
            proc,
            message,
        },
        CallFailure::NotStrings(got) => FilesError::NotPaths {
            which,
            proc,
            got,
            origin: cb.origin(),
        },
    })
}

fn expand(pattern: &str, out: &mut Vec<PathBuf>) -> Result<(), FilesError> {
    if !pattern.contains(['*', '?', '[']) {
        out.push(PathBuf::from(pattern));
        return Ok(());
    }
    let hits = super::fileglob::expand(pattern, false).map_err(|e| match e {
        GlobError::Pattern(source) => FilesError::Glob {
            pattern: pattern.to_string(),
            source,
        },
        GlobError::Unreadable(source) => FilesError::Unreadable(source),
    })?;
    if hits.is_empty() {
        // As in the shell, a pattern that matches nothing stands for the file of its
        // literal name: `report [final].csv` is that file, whose changes would otherwise
        // go unseen.
        out.push(PathBuf::from(pattern));
    } else {
        out.extend(hits);
    }
    Ok(())
}

/// How close to the fingerprint's time a modification time must be to be trusted only
/// with the file's content: it covers file systems that keep whole seconds (a file written
/// again in the same second keeps its mtime) and a second of clock granularity on top.
const RACY_WINDOW: Duration = Duration::from_secs(2);

/// The modification time (ns since the epoch) from which an input is *racily clean*: it may
/// change again without its size or mtime changing, as git says of its index entries.
fn racy_since(now: SystemTime) -> i64 {
    let now = now
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default()
        .saturating_sub(RACY_WINDOW);
    i64::try_from(now.as_nanos()).unwrap_or(i64::MAX)
}

/// A hash of the names and contents of the regular files among `files` (directories
/// walked) modified at or after `since` (ns since the epoch); `None` when there is none.
fn content_since(files: &[PathBuf], since: i64, owner: &OwnFiles) -> Option<u128> {
    let lister = Lister::new(owner);
    let mut all = Vec::new();
    for f in files {
        lister.files_under(f, &mut all).ok()?;
    }
    content_of(&all, since)
}

/// [`content_since`] of files already listed with their metadata (as they were read for
/// the fingerprint: each file is read from the disk once per judging).
fn content_of(files: &[Entry], since: i64) -> Option<u128> {
    let mut h = Fnv::<u128>::new();
    let mut any = false;
    for (path, meta) in files {
        if let Some(m) = meta
            && m.is_file()
            && mtime_ns(m) >= since
        {
            any = true;
            h.feed(path.as_os_str().as_encoded_bytes());
            h.feed(&content_hash(path).to_le_bytes());
        }
    }
    any.then_some(h.0)
}

/// A hash of a file's bytes. A file that cannot be read gets a value no later reading
/// gives (a random one): what it holds is not known, so no result may be judged fresh by
/// it, where a fixed marker would match the file rewritten, as unreadable, with its size
/// and mtime put back.
fn content_hash(path: &Path) -> u128 {
    let unknown = || {
        use std::hash::{BuildHasher, Hasher};
        let random = std::collections::hash_map::RandomState::new();
        u128::from(random.build_hasher().finish()) << 64 | u128::from(random.hash_one(path))
    };
    let Ok(f) = std::fs::File::open(path) else {
        return unknown();
    };
    // Read 64 KiB at a time into a buffer that is not zeroed first: zeroing one for each
    // file was a twentieth of a no-op run whose inputs had just been written.
    let mut h = Fnv::<u128>::new();
    match std::io::copy(&mut std::io::BufReader::with_capacity(64 * 1024, f), &mut h) {
        Ok(_) => h.0,
        Err(_) => unknown(),
    }
}

/// What tells an input rewritten with its size and mtime put back (`touch -r`, `cp -p`,
/// `tar x`), or a link turned to another file just like it, from the file the result was
/// made of: its inode number and its status change time, which no program can set back
/// (git's index compares the same).
fn change_stamp(m: &std::fs::Metadata) -> [u8; 24] {
    use std::os::unix::fs::MetadataExt;
    let mut out = [0u8; 24];
    out[..8].copy_from_slice(&m.ino().to_le_bytes());
    out[8..16].copy_from_slice(&m.ctime().to_le_bytes());
    out[16..].copy_from_slice(&m.ctime_nsec().to_le_bytes());
    out
}

/// A file's modification time in nanoseconds since the epoch; one before 1677 or after
/// 2262 (`touch -d 2300-01-01`), beyond what that holds, is the nearest it holds (its
/// status change time, hashed beside it, still tells a rewrite).
fn mtime_ns(m: &std::fs::Metadata) -> i64 {
    use std::os::unix::fs::MetadataExt;
    m.mtime()
        .saturating_mul(1_000_000_000)
        .saturating_add(m.mtime_nsec())
}

/// What this prun's fingerprints stand for, beyond what they hash: changed when a kind of
/// result saved earlier by the same version may no longer be taken. Rows saved before a
/// body's unrepeatable calls were found as it ran (a module's `pg::start` kept a result
/// naming a removed temporary directory) match no fingerprint now: they run once again,
/// and so do rows saved before reading `ctx.deps_changed` while a dependency ran, or
/// calling an embedder's native function that is not pure, kept a result out.
const SCHEME: &[u8] = b"unrepeatable calls found at run time: deps_changed, native functions";

/// Computes the fingerprint of a proc about to be judged or run. `dep_stamps` are the
/// stamps of its dependencies, in order; `cwd` is the directory prun runs in, and
/// `policy` what the run's policy changes in what procs give (see [`Cache::under`]).
pub(super) fn fingerprint(
    params: &Map,
    node: &ProcNode,
    dep_stamps: &[(String, String)],
    owner: &Arc<OwnFiles>,
    cwd: &Path,
    policy: &str,
) -> Result<Fingerprint, FilesError> {
    let def = &node.def;
    let mut h = Fnv::<u128>::new();
    // Where its relative paths lead and its commands run (a proc's `cwd` is relative to
    // it): the same script run from another directory works on other files.
    h.feed(cwd.as_os_str().as_encoded_bytes());
    // Fed only when the policy changes something: a run without one keeps the
    // fingerprints it had.
    if !policy.is_empty() {
        h.feed(b"policy");
        h.feed(policy.as_bytes());
    }
    match node.body() {
        Body::Cmd(argv) => {
            h.feed(b"cmd");
            for a in argv {
                h.feed(a.as_bytes());
            }
            feed_variables(&mut h, argv.iter(), &def.env);
        }
        Body::Shell(s) => {
            h.feed(b"shell");
            h.feed(s.as_bytes());
            feed_variables(&mut h, std::iter::once(&**s), &def.env);
        }
        Body::Closure(cb) => {
            h.feed(b"closure");
            h.feed(cb.identity().as_bytes());
        }
    }
    for (k, v) in &def.env {
        h.feed(k.as_bytes());
        h.feed(v.as_bytes());
    }
    h.feed(def.extras().cwd.as_deref().unwrap_or("").as_bytes());
    // Where its commands run: another executor is another machine (which host of an
    // executor's pool runs it is not chosen by the script, and does not count).
    if let Some(executor) = &def.extras().executor {
        h.feed(b"executor");
        h.feed(executor.as_bytes());
        // Slurm gives them to the job (`--cpus-per-task`, `--mem`), whose commands see
        // them (`nproc`); on this machine they only limit what runs at once.
        for (k, v) in def.extras().resources.iter() {
            h.feed(k.as_bytes());
            h.feed(&v.to_le_bytes());
        }
    }
    feed_limits(&mut h, def);
    for (k, v) in node.args() {
        h.feed(k.as_bytes());
        h.feed(v.as_bytes());
    }
    // The params as `{params:?}` prints them, written into the hash (not into a string
    // per proc), then ended as `feed` ends a field.
    let mut text = Hashing::new(&mut h);
    let _ = write!(text, "{params:?}");
    let len = text.len;
    h.end_field(len);
    for (name, stamp) in dep_stamps {
        h.feed(name.as_bytes());
        h.feed(stamp.as_bytes());
    }
    let specs: Vec<&FileSpec> = def.inputs.iter().collect();
    let files = resolve(params, node, &specs)?;
    let racy_from = racy_since(SystemTime::now());
    let lister = Lister::new(owner);
    let mut all = Vec::with_capacity(files.len());
    for f in &files {
        lister.files_under(f, &mut all)?;
    }
    for (path, meta) in &all {
        h.feed(path.as_os_str().as_encoded_bytes());
        match meta {
            Some(m) => {
                h.feed(&mtime_ns(m).to_le_bytes());
                h.feed(&m.len().to_le_bytes());
                h.feed(&change_stamp(m));
            }
            None => h.feed(b"missing"),
        }
    }
    h.feed(SCHEME);
    // prun's version first: what a body runs is prun's reading of the script (how a
    // placeholder is quoted, what a helper does), which another version may change. Its
    // results are not taken as this version's: the first run after an upgrade runs every
    // proc again, as cargo rebuilds everything after a new compiler.
    let mut hash = format!("{}/{:032x}", env!("CARGO_PKG_VERSION"), h.0);
    if let Some(content) = content_of(&all, racy_from) {
        hash.push_str(&format!(":{racy_from}:{content:032x}"));
    }
    let mtimes = all
        .into_iter()
        .filter_map(|(path, meta)| Some((path, mtime_ns(&meta?))))
        .collect();
    Ok(Fingerprint {
        hash,
        files,
        mtimes,
        declared: !def.inputs.is_empty(),
        own: owner.clone(),
    })
}

/// What else a proc's commands are given that their results may tell: prun's terminal
/// instead of a captured stdout (`interactive`), and the time they may take (a success
/// that took longer than a new `timeout` is not what running the proc now gives). Fed
/// only when set: a proc without them keeps the fingerprint it had.
fn feed_limits(h: &mut Fnv<u128>, def: &crate::graph::ProcDef) {
    if def.interactive {
        h.feed(b"interactive");
    }
    if let Some(timeout) = def.extras().timeout {
        h.feed(b"timeout");
        h.feed(&timeout.as_nanos().to_le_bytes());
    }
}

/// Feeds the values, in prun's environment, of the variables `texts` name (see
/// [`shell_variables`]; all of them after a `${!NAME}`) and `env` does not set (its values
/// are fed already): a command that expands `$MODE` gives another result when `MODE`
/// changes, so its cached one is stale then.
fn feed_variables<'a>(
    h: &mut Fnv<u128>,
    texts: impl Iterator<Item = &'a str>,
    env: &[(String, String)],
) {
    let texts: Vec<&str> = texts.collect();
    let all: Vec<String> = if texts.iter().any(|t| shell_names_indirectly(t)) {
        std::env::vars_os()
            .map(|(k, _)| k.to_string_lossy().into_owned())
            .collect()
    } else {
        Vec::new()
    };
    let mut names: Vec<&str> = texts
        .iter()
        .flat_map(|t| shell_variables(t))
        .chain(all.iter().map(String::as_str))
        .filter(|n| !env.iter().any(|(k, _)| k == n))
        .collect();
    names.sort_unstable();
    names.dedup();
    for name in names {
        h.feed(name.as_bytes());
        match std::env::var_os(name) {
            Some(v) => h.feed(v.as_encoded_bytes()),
            None => h.feed(b"\0unset"),
        }
    }
}

/// The names of the variables `text` expands as a shell would (`$NAME`, `${NAME...}`,
/// `${#NAME}`, `${!NAME}`), and every name in its arithmetic (`$((...))`, `((...))`,
/// `$[...]`), where the shell reads a bare name as a variable (`$((N * 2))`). Read
/// anywhere in it (quoted or not: over-reading a name costs at most a re-run).
pub(crate) fn shell_variables(text: &str) -> impl Iterator<Item = &str> {
    let expanded = text.match_indices('$').filter_map(|(i, _)| {
        let rest = &text[i + 1..];
        let rest = match rest.strip_prefix('{') {
            Some(inner) => inner.strip_prefix(['#', '!']).unwrap_or(inner),
            None => rest,
        };
        let name = &rest[..word_len(rest)];
        name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
            .then_some(name)
    });
    expanded.chain(arithmetic(text).flat_map(bare_names))
}

/// Whether `text` expands a variable whose name is another's value (`${!NAME}`), or lists
/// the names of variables (`${!PREFIX*}`): which variables it reads is not in the text,
/// so every variable counts. The keys of an array (`${!NAME[@]}`) read `NAME` alone.
pub(crate) fn shell_names_indirectly(text: &str) -> bool {
    text.match_indices("${!").any(|(i, _)| {
        let rest = &text[i + 3..];
        let len = word_len(rest);
        rest.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
            && !rest[len..].starts_with('[')
    })
}

/// The length of the name (letters, digits, `_`) `text` starts with.
fn word_len(text: &str) -> usize {
    text.bytes()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == b'_')
        .count()
}

/// The insides of the shell's arithmetic in `text`: after each `((` to the `)` that
/// closes it, and after each `$[` to its `]` (or to the end of `text`).
fn arithmetic(text: &str) -> impl Iterator<Item = &str> {
    let parens = text
        .match_indices("((")
        .map(|(i, _)| (i + 2, b'(', b')', 2));
    let brackets = text
        .match_indices("$[")
        .map(|(i, _)| (i + 2, b'[', b']', 1));
    parens
        .chain(brackets)
        .map(|(start, open, close, mut depth)| {
            let inside = &text[start..];
            let end = inside
                .bytes()
                .position(|c| {
                    if c == open {
                        depth += 1;
                    } else if c == close {
                        depth -= 1;
                    }
                    depth == 0
                })
                .unwrap_or(inside.len());
            &inside[..end]
        })
}

/// The names (a letter or `_`, then letters, digits and `_`) in `text` that no letter,
/// digit or `_` comes right before (`0x1f` holds none).
fn bare_names(text: &str) -> impl Iterator<Item = &str> {
    let b = text.as_bytes();
    (0..b.len()).filter_map(move |i| {
        let starts = (b[i].is_ascii_alphabetic() || b[i] == b'_')
            && (i == 0 || !(b[i - 1].is_ascii_alphanumeric() || b[i - 1] == b'_'));
        starts.then(|| &text[i..i + word_len(&text[i..])])
    })
}

/// Text written into a hash as it is formatted, and its length so far (to end it as a
/// field: [`Fnv::end_field`]).
struct Hashing<'a> {
    hash: &'a mut Fnv<u128>,
    len: usize,
}

impl<'a> Hashing<'a> {
    fn new(hash: &'a mut Fnv<u128>) -> Hashing<'a> {
        Hashing { hash, len: 0 }
    }
}

impl std::fmt::Write for Hashing<'_> {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        self.hash.update(s.as_bytes());
        self.len += s.len();
        Ok(())
    }
}

/// What can be wrong with a declared output.
enum OutputProblem {
    Missing(PathBuf),
    /// Older than its `max_age`; `enforced` unless `enforce_freshness: false`.
    Stale {
        path: PathBuf,
        max_age: Duration,
        age: Duration,
        enforced: bool,
    },
}

/// Every problem with a proc's declared outputs, read afresh (never from a cache of
/// stats), and their stamp ([`Outputs::stamp`]).
fn read_outputs(params: &Map, node: &ProcNode) -> Result<Outputs, FilesError> {
    let mut problems = Vec::new();
    let mut h = Fnv::<u128>::new();
    let now = SystemTime::now();
    for out in &node.def.outputs {
        let files = resolve_output(params, node, &out.files)?;
        for f in files {
            h.feed(f.as_os_str().as_encoded_bytes());
            match std::fs::metadata(&f) {
                Err(_) => {
                    h.feed(b"missing");
                    problems.push(OutputProblem::Missing(f));
                }
                Ok(m) => {
                    feed_output(&mut h, &m);
                    if let Some(age) = stale(out, &m, now) {
                        problems.push(OutputProblem::Stale {
                            path: f,
                            max_age: out.max_age.unwrap_or_default(),
                            age,
                            enforced: out.enforce_freshness,
                        });
                    }
                }
            }
        }
    }
    Ok(Outputs {
        problems,
        stamp: format!("{:032x}", h.0),
    })
}

/// A proc's declared outputs as read after it ran, or before it is judged.
struct Outputs {
    problems: Vec<OutputProblem>,
    /// A hash of each output's path, size, mtime, inode number and status change time (a
    /// directory by its path only): saved with the proc's result, which is taken again
    /// only while it is the same. An output written since (by a run killed half-way or
    /// failing that could not forget the result, a `--no-db` run, a hand) runs it again.
    stamp: String,
}

/// Feeds what tells one version of an output file from another (a directory counts as
/// there: what is in it is written by other procs too).
fn feed_output(h: &mut Fnv<u128>, m: &std::fs::Metadata) {
    if m.is_dir() {
        h.feed(b"dir");
        return;
    }
    h.feed(&mtime_ns(m).to_le_bytes());
    h.feed(&m.len().to_le_bytes());
    h.feed(&change_stamp(m));
}

/// Checks the declared outputs of a proc that ran: an error naming each output that is
/// missing, or older than its enforced `max_age`; else their stamp, saved with its result.
pub(super) fn check_outputs(params: &Map, node: &ProcNode) -> Result<String, FilesError> {
    let outputs = read_outputs(params, node)?;
    let lines: Vec<String> = outputs
        .problems
        .into_iter()
        .filter_map(|p| match p {
            OutputProblem::Stale {
                enforced: false, ..
            } => None,
            OutputProblem::Missing(f) => Some(format!("{} (missing)", f.display())),
            OutputProblem::Stale {
                path, max_age, age, ..
            } => Some(format!(
                "{} (older than max_age {}: {} old)",
                path.display(),
                humantime::format_duration(max_age),
                humantime::format_duration(shown_age(age, max_age))
            )),
        })
        .collect();
    if lines.is_empty() {
        return Ok(outputs.stamp);
    }
    Err(FilesError::Outputs(lines))
}

/// The stamp of a proc's declared outputs as they are, whatever their problems (for a
/// proc that ended with `skip` or `no_change`, whose outputs are not checked).
pub(super) fn outputs_stamp(params: &Map, node: &ProcNode) -> Option<String> {
    read_outputs(params, node).ok().map(|o| o.stamp)
}

/// An output's age as a message shows it: in whole seconds when that is still more than
/// `max_age`, else in milliseconds, so that it never reads as younger than the limit it
/// broke ("max_age 100ms: 0s old").
fn shown_age(age: Duration, max_age: Duration) -> Duration {
    let secs = Duration::from_secs(age.as_secs());
    if secs > max_age {
        secs
    } else {
        Duration::from_millis(u64::try_from(age.as_millis()).unwrap_or(u64::MAX))
    }
}

/// The stamp of a proc's declared outputs when every one exists and none is older than
/// its `max_age`: what a proc needs to be UP_TO_DATE, with its stamp the one saved with its
/// result.
pub(super) fn outputs_fresh(params: &Map, node: &ProcNode) -> Option<String> {
    read_outputs(params, node)
        .ok()
        .filter(|o| o.problems.is_empty())
        .map(|o| o.stamp)
}

/// How old an output is when that is beyond its `max_age`.
fn stale(out: &OutputSpec, m: &std::fs::Metadata, now: SystemTime) -> Option<Duration> {
    let max = out.max_age?;
    let age = now.duration_since(m.modified().ok()?).unwrap_or_default();
    (age > max).then_some(age)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nested(levels: usize) -> Dynamic {
        let mut v: Dynamic = rhai::Array::new().into();
        for _ in 1..levels {
            v = vec![v].into();
        }
        v
    }

    /// The fingerprint hash of a command proc `argv` with no inputs, as `edit` sets it up.
    fn command_hash(argv: &[&str], edit: &dyn Fn(&mut crate::graph::ProcDef)) -> String {
        let mut def = crate::graph::ProcDef::new(
            Body::Cmd(argv.iter().collect()),
            crate::diag::Origin::from("t"),
        );
        edit(&mut def);
        let node = ProcNode::new("p".into(), Arc::new(def), None, Vec::new());
        fingerprint(
            &Map::new(),
            &node,
            &[],
            &Arc::default(),
            Path::new("/w"),
            "",
        )
        .map(|f| f.hash)
        .unwrap_or_default()
    }

    #[test]
    fn the_executor_a_proc_runs_on_counts_in_its_fingerprint() {
        let of = |executor: Option<&str>| {
            command_hash(&["hostname"], &|d| {
                d.extras_mut().executor = executor.map(str::to_string);
            })
        };
        assert_ne!(of(None), of(Some("farm")));
        assert_ne!(of(Some("farm")), of(Some("hpc")));
        assert_eq!(of(Some("farm")), of(Some("farm")));
    }

    #[test]
    fn what_a_proc_s_commands_are_given_counts_in_its_fingerprint() {
        let of = |f: &dyn Fn(&mut crate::graph::ProcDef)| command_hash(&["nproc"], f);
        let plain = of(&|_| {});
        let timeout = |secs| {
            move |d: &mut crate::graph::ProcDef| {
                d.extras_mut().timeout = Some(std::time::Duration::from_secs(secs));
            }
        };
        assert_ne!(plain, of(&timeout(60)));
        assert_ne!(of(&timeout(60)), of(&timeout(120)));
        assert_ne!(plain, of(&|d| d.interactive = true));
        let cpus = |executor: Option<&str>, n| {
            let executor = executor.map(str::to_string);
            move |d: &mut crate::graph::ProcDef| {
                d.extras_mut().executor = executor.clone();
                d.extras_mut().resources.set("cpus", n);
            }
        };
        // On this machine, resources only limit what runs at once; Slurm gives them to
        // the job (`--cpus-per-task`), whose commands see them.
        assert_eq!(plain, of(&cpus(None, 2)));
        assert_ne!(of(&cpus(Some("hpc"), 2)), of(&cpus(Some("hpc"), 4)));
    }

    #[test]
    fn a_touched_proc_gets_a_new_stamp_each_time_until_its_result_is_saved() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("t.db"), Arc::new(|_| {})).unwrap();
        let mut cache = Cache::new(
            Arc::new(store),
            HashMap::new(),
            crate::store::ScriptName::of(std::path::Path::new("s.rhai")),
            Vec::new(),
            false,
            SystemTime::now(),
        );
        assert_eq!(cache.stamp(3, "build"), "");
        cache.touch(3, "build");
        let first = cache.stamp(3, "build");
        assert!(first.ends_with(".1"), "{first}");
        assert_eq!(
            cache.stamp(2, "other"),
            "",
            "only the proc touched has a stamp"
        );
        cache.touch(3, "build");
        assert!(cache.stamp(3, "build").ends_with(".2"));
        cache.invalidate(3, "build");
        assert_eq!(cache.stamp(3, "build"), "", "a failure forgets the stamp");
        cache.touch(3, "build");
        cache.save(3, "build", "1".into(), "fp".into(), false, false);
        let saved = cache.stamp(3, "build");
        assert!(
            saved.ends_with(".3"),
            "the saved row keeps the stamp: {saved}"
        );
        cache.save(3, "build", "2".into(), "fp".into(), true, false);
        assert!(cache.stamp(3, "build").ends_with(".4"));
        cache.store().close();
    }

    #[test]
    fn dropping_the_cache_waits_for_the_db_writer_though_a_judged_batch_still_holds_the_store() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        let (tx, warnings) = std::sync::mpsc::channel();
        let warn = move |m: &str| {
            let _ = tx.send(m.to_string());
        };
        let store = Arc::new(Store::open(&path, Arc::new(warn)).unwrap());
        // Another process holds the DB's write lock: the writer, told not to wait for it,
        // drops the run's last batch and says so, then stops.
        let blocker = rusqlite::Connection::open(&path).unwrap();
        blocker.execute_batch("BEGIN IMMEDIATE").unwrap();
        let judged_batch = store.clone();
        let mut cache = Cache::new(
            store,
            HashMap::new(),
            crate::store::ScriptName::of(std::path::Path::new("s.rhai")),
            Vec::new(),
            false,
            SystemTime::now(),
        );
        cache.finish(Duration::from_secs(1), "ok", "{}", 0, None);
        cache.store().impatience().give_up_waiting();
        drop(cache);
        let said = warnings
            .try_recv()
            .expect("the writer was done with the run's end when its cache was dropped");
        assert!(said.contains("failed to write the task DB"), "{said}");
        drop(judged_batch);
    }

    #[test]
    fn every_result_saved_is_one_the_next_run_can_read() {
        let json = to_json(&nested(MAX_NESTING)).unwrap();
        let back: Dynamic = serde_json::from_str(&json).expect("read back");
        assert!(back.is_array());
        let e = to_json(&nested(MAX_NESTING + 1)).unwrap_err();
        assert!(
            e.to_string().contains("nested deeper than 100 levels"),
            "{e}"
        );
    }

    #[test]
    fn the_shell_s_variables_are_read_from_expansions_and_arithmetic() {
        fn names(text: &str) -> Vec<&str> {
            let mut v: Vec<&str> = shell_variables(text).collect();
            v.sort_unstable();
            v.dedup();
            v
        }
        assert_eq!(
            names("echo $A ${B:-x} ${#C} ${!D} $1 $$"),
            ["A", "B", "C", "D"]
        );
        assert_eq!(names("echo $(( (N + 1) * 0x1f )) M"), ["N"]);
        assert_eq!(names("((i < LIMIT)) && echo $[J+1] K"), ["J", "LIMIT", "i"]);
        assert!(shell_names_indirectly("echo ${!REF}"));
        assert!(shell_names_indirectly("echo ${!REF:-none} ${!PRUN_*}"));
        assert!(!shell_names_indirectly("echo ${!} ${REF} ${!list[@]}"));
    }

    #[test]
    fn params_hash_as_their_printed_text_fed_as_one_field() {
        let mut params = Map::new();
        params.insert("mode".into(), Dynamic::from("fast"));
        params.insert("n".into(), Dynamic::from(3_i64));
        let (mut written, mut fed) = (Fnv::<u128>::new(), Fnv::<u128>::new());
        let mut text = Hashing::new(&mut written);
        let _ = write!(text, "{params:?}");
        let len = text.len;
        written.end_field(len);
        fed.feed(format!("{params:?}").as_bytes());
        assert_eq!(
            written.0, fed.0,
            "the params must be one field, told apart from the fields around them"
        );
    }

    #[test]
    fn a_file_is_hashed_whole_across_reads() {
        // Longer than one read, ending in a partial one: every byte counts, once.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("big.bin");
        let bytes: Vec<u8> = (0..200_001u32).map(|i| (i % 251) as u8).collect();
        std::fs::write(&path, &bytes).unwrap();
        let mut whole = Fnv::<u128>::new();
        whole.update(&bytes);
        assert_eq!(content_hash(&path), whole.0);
    }

    #[test]
    fn a_file_that_cannot_be_read_has_a_content_no_later_reading_matches() {
        // Gone between its listing and its reading (or unreadable): a fixed marker would
        // match it back when it is rewritten alike.
        let dir = tempfile::tempdir().unwrap();
        let gone = dir.path().join("gone.txt");
        assert_ne!(content_hash(&gone), content_hash(&gone));
        std::fs::write(&gone, "x").unwrap();
        assert_eq!(content_hash(&gone), content_hash(&gone));
    }

    #[test]
    fn a_racily_clean_input_is_checked_by_content_in_later_runs() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("in.txt");
        let mtime = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let write = |text: &str| {
            std::fs::write(&f, text).unwrap();
            let file = std::fs::File::options().write(true).open(&f).unwrap();
            file.set_modified(mtime).unwrap();
        };
        write("aaa");
        let since = racy_since(mtime);
        let content = content_since(std::slice::from_ref(&f), since, &OwnFiles::default()).unwrap();
        let fp = Fingerprint {
            hash: "main".into(),
            files: vec![f.clone()],
            ..Fingerprint::default()
        };
        let saved = format!("main:{since}:{content:032x}");
        assert!(fp.matches(&saved), "unchanged content must match");
        assert!(fp.matches("main"), "a fingerprint without racy inputs");
        assert!(!fp.matches("other"));
        write("bbb");
        assert!(!fp.matches(&saved), "same size and mtime, other content");
        let later = racy_since(mtime + Duration::from_secs(10));
        assert_eq!(
            content_since(std::slice::from_ref(&f), later, &OwnFiles::default()),
            None
        );
    }
}

//! [`Store`]: opening the task DB (with its fault handling), reading the cache and the
//! history, and the writer thread.

use std::collections::{HashMap, HashSet};
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use rusqlite::config::DbConfig;
use rusqlite::{Connection, ErrorCode, OptionalExtension, TransactionBehavior, params};

use super::StoreError;
use super::schema;

/// How long the writer waits for more to commit in one transaction. Every commit writes
/// each page it changed to the WAL again: at 20 ms, 2,000 short procs made ~50 commits
/// and the writer spent 17–20 ms of CPU, at 250 ms 11–14 ms (a fresh DB: 24 → 8 ms;
/// measured with the index by name that the schema's version 7 dropped). Nothing waits
/// for a batch: a reader of the history during the run sees it up to this much later,
/// and [`Store::close`] commits what is left at once.
const BATCH_WINDOW: Duration = Duration::from_millis(250);

/// A cached result: the result as JSON, the fingerprint it was computed from, and a stamp
/// that changes whenever the proc really runs (dependents record their dependencies'
/// stamps, so a dependency that ran since makes them stale).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CacheRow {
    pub result: String,
    pub fingerprint: String,
    pub stamp: String,
}

/// One proc of a run, as the history keeps it.
#[derive(Debug, Clone, Default)]
pub(crate) struct ProcRecord {
    pub name: String,
    pub state: String,
    pub started: Option<String>,
    pub duration: Option<f64>,
    pub exit_code: Option<i32>,
    pub log: Option<String>,
    pub error: Option<String>,
    /// When it ended (RFC 3339).
    pub ended: Option<String>,
    /// How many times it was started (retries included).
    pub attempts: Option<u32>,
    /// Each attempt, as a JSON array of `{start, end, place, error}` (times in seconds
    /// since the Unix epoch).
    pub segments: Option<String>,
    /// Seconds it spent ready but not started (a held lock, a lower wave, no free slot).
    pub waited: Option<f64>,
    /// Where its last attempt ran: a local slot number, or a host or batch job.
    pub place: Option<String>,
    /// Its dependencies as resolved in this run, a JSON array of names.
    pub deps: Option<String>,
    /// The template of the proto it was made from (`encode::[f]`).
    pub proto: Option<String>,
}

/// A recorded run, as `prun report` shows it.
#[derive(Debug, Clone)]
pub(crate) struct RunRow {
    pub id: i64,
    pub script: String,
    /// The script's arguments, a JSON array of strings.
    pub args: String,
    pub started: String,
    pub duration: Option<f64>,
    pub outcome: Option<String>,
    /// The parallel limit the run ended with.
    pub parallel: Option<i64>,
    /// How many procs ended in each state, a JSON object (`{"up_to_date": 3, ...}`).
    pub counts: Option<String>,
}

/// A recorded run with what `prun report` shows of it (see [`Store::recorded_run`]).
#[derive(Debug)]
pub(crate) struct RecordedRun {
    pub row: RunRow,
    /// Its procs, in the order they finished.
    pub procs: Vec<ProcRecord>,
    /// For each of its procs that succeeded before: the median of its last 10 successful
    /// durations before this run.
    pub medians: HashMap<String, f64>,
}

/// The script a run is of, as the history records it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct ScriptName {
    /// The path the run was given (`./s.rhai`), shown back as it was typed.
    pub shown: String,
    /// The script's identity (see [`crate::paths::script_identity`]): runs of one script
    /// are found, pruned and compared by it, so that scripts sharing a DB (`--db`) each
    /// have their own history.
    pub key: String,
}

impl ScriptName {
    /// The name of the script at `path` (a file, or a library caller's name for a text).
    pub(crate) fn of(path: &Path) -> ScriptName {
        ScriptName {
            shown: path.display().to_string(),
            key: crate::paths::script_identity(path).display().to_string(),
        }
    }
}

/// One run, as `prun history` shows it.
#[derive(Debug, Clone)]
pub(crate) struct HistoryRun {
    pub id: i64,
    pub started: String,
    pub duration: Option<f64>,
    pub outcome: Option<String>,
    pub counts: Option<String>,
}

enum Msg {
    BeginRun {
        script: ScriptName,
        args: String,
        started: String,
    },
    Proc(ProcRecord),
    Save(String, CacheRow),
    Invalidate(String),
    EndRun {
        duration: f64,
        outcome: String,
        counts: String,
        keep_runs: u64,
    },
    Parallel(usize),
    /// A reader found the DB corrupt (the error): move it aside and start a new one.
    Corrupt(String, mpsc::Sender<()>),
}

impl Msg {
    /// A message whose sender waits for the writer's answer.
    fn is_urgent(&self) -> bool {
        matches!(self, Msg::Corrupt(..))
    }
}

/// Reports a problem with the DB; the run goes on.
pub(super) type Warn = Arc<dyn Fn(&str) + Send + Sync>;

/// An open task DB.
pub(crate) struct Store {
    path: PathBuf,
    /// A connection for reads other than the start-up one (history, tests), opened when
    /// first needed: a run only reads the cache, which `open` already did.
    read: Mutex<Option<Connection>>,
    /// The cache as read at open time, until [`Store::load_cache`] takes it.
    initial: Mutex<Option<CacheRows>>,
    tx: Mutex<Option<mpsc::Sender<Msg>>>,
    writer: Mutex<Option<JoinHandle<()>>>,
    /// Set when the writer must stop waiting for another process's lock.
    impatient: Arc<AtomicBool>,
    /// For a DB opened to read only ([`Store::open_read_only`]), which has no writer: the
    /// lock that keeps the DB file as its read connection reads it.
    held: Option<super::readonly::Hold>,
}

/// How long the writer waits for the DB's write lock while another process holds it.
const LOCK_PATIENCE: Duration = Duration::from_secs(10);
/// How long one try for the write lock waits (SQLite's busy timeout on the writer's
/// connection): between tries the writer sees whether it must stop waiting.
const LOCK_TRY: Duration = Duration::from_millis(50);

/// Makes a task DB's writer stop waiting for a lock (see [`Store::impatience`]).
#[derive(Debug, Clone)]
pub(crate) struct Impatience(Arc<AtomicBool>);

impl Impatience {
    /// From now on the writer commits only what it can at once: a batch that would wait
    /// for another process's lock is dropped, with the warning of a failed write.
    pub(crate) fn give_up_waiting(&self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

fn now() -> String {
    humantime::format_rfc3339_millis(SystemTime::now()).to_string()
}

fn connect(path: &Path) -> rusqlite::Result<Connection> {
    let conn = Connection::open(path)?;
    conn.busy_timeout(Duration::from_secs(10))?;
    // Switching to WAL takes an exclusive lock and SQLite does not wait for it (the busy
    // timeout does not apply): when two runs start together, one of them retries.
    let mut tries = 0;
    loop {
        let mode: String = conn.query_row("PRAGMA journal_mode", [], |r| r.get(0))?;
        if mode.eq_ignore_ascii_case("wal") {
            break;
        }
        match conn.pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get::<_, String>(0)) {
            Ok(_) => break,
            Err(e) if e.sqlite_error_code() == Some(ErrorCode::DatabaseBusy) && tries < 200 => {
                tries += 1;
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(e) => return Err(e),
        }
    }
    // The DB is a cache and a history, safe to lose: no fsync at all (a commit costs
    // microseconds, not the milliseconds of a start-up). A file damaged by a power loss
    // is detected as corrupt, moved aside and rebuilt.
    conn.pragma_update(None, "synchronous", "OFF")?;
    // No checkpoint but the writer's own, which none does while someone reads the DB file
    // itself (see `checkpoint`): SQLite's, after some 1,000 pages, would change pages
    // under such a reader.
    conn.pragma_update(None, "wal_autocheckpoint", 0)?;
    // No foreign keys enforced: a run's procs go with it by its range of rows (see the
    // schema's version 6), and checking each new proc row's run cost a twentieth of
    // the writer's work.
    conn.set_db_config(DbConfig::SQLITE_DBCONFIG_ENABLE_FKEY, false)?;
    // A page cache of 128 KiB instead of SQLite's 2 MiB: a run appends rows and reads its
    // cache once, and a run of many procs would otherwise keep megabytes of pages (a
    // page not cached is read again from the OS's file cache, see docs/decisions.md).
    conn.pragma_update(None, "cache_size", -128)?;
    Ok(conn)
}

/// Whether `e` says the DB is damaged: SQLite found it so, or a text prun wrote reads back
/// as something else (a page overwritten with garbage can still parse as SQLite), which
/// would otherwise keep every later run from using the DB at all.
fn is_corrupt(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error_code(),
        Some(ErrorCode::NotADatabase | ErrorCode::DatabaseCorrupt)
    ) || matches!(
        e,
        rusqlite::Error::Utf8Error(..)
            | rusqlite::Error::FromSqlConversionFailure(..)
            | rusqlite::Error::InvalidColumnType(..)
    )
}

/// Makes the DB file ready for SQLite: its directory (mode 0700 when prun makes it), the
/// file itself created with mode 0600 (SQLite gives its `-wal` and `-shm` files the mode
/// of the DB file), and every one of them checked by [`crate::paths`]: not a symbolic
/// link, owned by the user, writable by no one else; readable by others only when the
/// user made the DB so (`chmod a+r`: see [`crate::paths::Readers`]).
fn prepare(path: &Path) -> Result<(), StoreError> {
    use crate::paths::Readers;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|source| StoreError::Dir {
                path: dir.to_path_buf(),
                source,
            })?;
    }
    let file_err = |source| StoreError::File {
        path: path.to_path_buf(),
        source,
    };
    crate::paths::open_private_file(path, Readers::AsOwnerSays).map_err(file_err)?;
    for side in ["-wal", "-shm"] {
        crate::paths::check_existing_private_file(&with_suffix(path, side), Readers::AsOwnerSays)
            .map_err(file_err)?;
    }
    Ok(())
}

/// `path` with `suffix` appended to its file name (`tasks.db` → `tasks.db-wal`).
pub(super) fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut s = path.as_os_str().to_os_string();
    s.push(suffix);
    PathBuf::from(s)
}

/// Moves a corrupt DB and its `-wal` and `-shm` files aside, to a name no other move
/// takes (`tasks.corrupt-<seconds>-<pid>-<n>`), and returns where the DB went.
fn move_aside(path: &Path) -> std::io::Result<PathBuf> {
    static MOVED: AtomicU32 = AtomicU32::new(0);
    let secs = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let aside = loop {
        let n = MOVED.fetch_add(1, Ordering::Relaxed);
        let aside = path.with_extension(format!("corrupt-{secs}-{}-{n}", std::process::id()));
        if std::fs::symlink_metadata(&aside).is_err() {
            break aside;
        }
    };
    std::fs::rename(path, &aside)?;
    for side in ["-wal", "-shm"] {
        match std::fs::rename(with_suffix(path, side), with_suffix(&aside, side)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
    }
    Ok(aside)
}

/// Opens the DB, brings its schema up to date and reads the cache (unless the schema is
/// newer than this prun's); returns the schema version found.
fn load(path: &Path) -> rusqlite::Result<(Connection, i64, HashMap<String, Arc<CacheRow>>)> {
    let mut conn = connect(path)?;
    let found = schema::migrate(&mut conn)?;
    if found > schema::VERSION {
        return Ok((conn, found, HashMap::new()));
    }
    conn.set_transaction_behavior(TransactionBehavior::Immediate);
    let cache = read_cache(&conn)?;
    Ok((conn, found, cache))
}

/// Why a corrupt DB could not be replaced by a new one.
#[derive(Debug, thiserror::Error)]
pub(crate) enum StartOverError {
    #[error("failed to move it aside: {0}")]
    MoveAside(std::io::Error),
    #[error("{0}")]
    Prepare(Box<StoreError>),
    #[error("failed to start a new one: {0}")]
    New(rusqlite::Error),
}

/// Moves a corrupt DB aside and makes a new, empty one in its place.
fn start_over(path: &Path) -> Result<(PathBuf, Connection), StartOverError> {
    let aside = move_aside(path).map_err(StartOverError::MoveAside)?;
    prepare(path).map_err(|e| StartOverError::Prepare(Box::new(e)))?;
    let (conn, _, _) = load(path).map_err(StartOverError::New)?;
    Ok((aside, conn))
}

/// What [`Store::open`] does before the writer starts: makes the file ready, opens it,
/// brings its schema up to date and reads the cache. A file that is not a valid DB, or
/// whose cache cannot be read because it is corrupt, is moved aside (with a warning) and
/// a new one is made in its place.
fn connect_and_load(path: &Path, warn: &Warn) -> Result<(Connection, CacheRows), StoreError> {
    prepare(path)?;
    match load(path) {
        Ok((_, found, _)) if found > schema::VERSION => Err(StoreError::TooNew {
            path: path.to_path_buf(),
            found,
            known: schema::VERSION,
        }),
        Ok((conn, _, cache)) => Ok((conn, cache)),
        Err(e) if is_corrupt(&e) => {
            let (aside, conn) = start_over(path).map_err(|why| StoreError::Corrupt {
                path: path.to_path_buf(),
                error: e.to_string(),
                why,
            })?;
            warn(&format!(
                "the task DB {} is corrupt ({e}); moved it to {} and started a new one",
                path.display(),
                aside.display()
            ));
            Ok((conn, HashMap::new()))
        }
        Err(source) => Err(StoreError::Open {
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// The cache as read at open time: each proc's row, by name.
type CacheRows = HashMap<String, Arc<CacheRow>>;

/// A task DB being opened on its writer's thread (see [`Store::start`]).
pub(crate) struct Opening {
    store: Store,
    handoff: Arc<Handoff>,
}

/// What the writer's thread hands over once it opened the DB: the cache it read, or why
/// the DB cannot be used.
type Opened = Result<CacheRows, StoreError>;

/// Where the writer's thread leaves [`Opened`]: for a thread that waits for it
/// ([`Opening::wait`]), or given at once to a callback left there ([`Opening::then`]).
#[derive(Default)]
struct Handoff {
    slot: Mutex<Slot>,
    filled: std::sync::Condvar,
}

#[derive(Default)]
enum Slot {
    #[default]
    Empty,
    Filled(Opened),
    Then(Box<dyn FnOnce(Opened) + Send>),
    Taken,
}

impl Handoff {
    /// Gives `opened` to the callback left, or leaves it for whoever comes for it.
    fn fill(&self, opened: Opened) {
        let mut slot = self.slot.lock().expect("db handoff");
        match std::mem::replace(&mut *slot, Slot::Taken) {
            Slot::Then(then) => {
                drop(slot);
                then(opened);
            }
            Slot::Empty => {
                *slot = Slot::Filled(opened);
                self.filled.notify_all();
            }
            done @ (Slot::Filled(_) | Slot::Taken) => *slot = done,
        }
    }
}

/// The writer thread's promise to fill its [`Handoff`]: kept even when the thread ends
/// (or panics) before the DB is open, so that no one waits for it forever.
struct Filler {
    handoff: Option<Arc<Handoff>>,
    path: PathBuf,
}

impl Filler {
    fn fill(mut self, opened: Opened) {
        if let Some(handoff) = self.handoff.take() {
            handoff.fill(opened);
        }
    }
}

impl Drop for Filler {
    fn drop(&mut self) {
        if let Some(handoff) = self.handoff.take() {
            handoff.fill(Err(StoreError::File {
                path: self.path.clone(),
                source: std::io::Error::other("its thread ended before it was open"),
            }));
        }
    }
}

impl Opening {
    /// Waits until the DB is open and its cache read.
    pub(crate) fn wait(self) -> Result<Store, StoreError> {
        let Opening { store, handoff } = self;
        let mut slot = handoff.slot.lock().expect("db handoff");
        loop {
            match std::mem::replace(&mut *slot, Slot::Taken) {
                Slot::Filled(opened) => return store.with_initial(opened),
                Slot::Empty => {
                    *slot = Slot::Empty;
                    slot = handoff.filled.wait(slot).expect("db handoff");
                }
                // An opening is taken once, by `wait` or `then`.
                Slot::Then(_) | Slot::Taken => return Err(store.gone()),
            }
        }
    }

    /// Calls `then` with the store once the DB is open and its cache read, without a
    /// thread that waits for it: at once on this thread when it is open already, else on
    /// the writer's thread as soon as it is (before that thread writes anything). `then`
    /// must not wait for the writer: it runs on it.
    pub(crate) fn then(self, then: impl FnOnce(Result<Store, StoreError>) + Send + 'static) {
        let Opening { store, handoff } = self;
        let mut slot = handoff.slot.lock().expect("db handoff");
        match std::mem::replace(&mut *slot, Slot::Taken) {
            Slot::Empty => {
                *slot = Slot::Then(Box::new(move |opened| then(store.with_initial(opened))));
            }
            Slot::Filled(opened) => {
                drop(slot);
                then(store.with_initial(opened));
            }
            // An opening is taken once, by `wait` or `then`.
            Slot::Then(_) | Slot::Taken => {
                drop(slot);
                then(Err(store.gone()));
            }
        }
    }
}

impl Store {
    /// The DB file.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Opens (or creates) the DB at `path`. A file that is not a valid DB, or whose cache
    /// cannot be read because it is corrupt, is moved aside (with a warning) and a new one
    /// is made in its place.
    pub(crate) fn open(path: &Path, warn: Warn) -> Result<Store, StoreError> {
        Store::start(path, warn)?.wait()
    }

    /// [`Store::open`] on the thread that then writes the DB, without waiting for it: the
    /// caller goes on with its own work (a run compiles its script meanwhile) and
    /// [`Opening::wait`]s when it needs the cache. One thread opens and writes: a second
    /// one would cost a run of one short proc a clone, a stack and a malloc arena.
    pub(crate) fn start(path: &Path, warn: Warn) -> Result<Opening, StoreError> {
        let (tx, rx) = mpsc::channel();
        let handoff = Arc::new(Handoff::default());
        let opened = Filler {
            handoff: Some(handoff.clone()),
            path: path.to_path_buf(),
        };
        let wpath = path.to_path_buf();
        let impatient = Arc::new(AtomicBool::new(false));
        let patience = impatient.clone();
        let writer = std::thread::Builder::new()
            .name("prun-db".into())
            .spawn(move || {
                // The writer never waits for a child: the run's children must not wake it
                // (see `sigchld::block`), whichever thread starts it.
                let _quiet = crate::sigchld::Blocked::here();
                match connect_and_load(&wpath, &warn) {
                    Ok((conn, initial)) => {
                        opened.fill(Ok(initial));
                        warm(&conn);
                        writer(conn, rx, &wpath, &warn, &patience);
                    }
                    Err(e) => opened.fill(Err(e)),
                }
            })
            .map_err(|source| StoreError::Dir {
                path: path.to_path_buf(),
                source,
            })?;
        let store = Store {
            path: path.to_path_buf(),
            read: Mutex::new(None),
            initial: Mutex::new(None),
            tx: Mutex::new(Some(tx)),
            writer: Mutex::new(Some(writer)),
            impatient,
            held: None,
        };
        Ok(Opening { store, handoff })
    }

    /// Opens the DB at `path` to read its history (`prun history`, `prun report`) without
    /// writing anything: the DB may be another user's, readable but not writable (see
    /// `readonly.rs`). A corrupt DB is an error, not moved aside. The user's own DB whose
    /// schema is older than this prun's is opened as a run opens it, which brings it up
    /// to date (another user's is an error: its owner's next run will).
    pub(crate) fn open_read_only(path: &Path, warn: Warn) -> Result<Store, StoreError> {
        match super::readonly::open(path)? {
            super::readonly::ReadOnly::Open(conn, held) => Ok(Store {
                path: path.to_path_buf(),
                read: Mutex::new(Some(conn)),
                initial: Mutex::new(None),
                tx: Mutex::new(None),
                writer: Mutex::new(None),
                impatient: Arc::new(AtomicBool::new(false)),
                held: Some(held),
            }),
            super::readonly::ReadOnly::Outdated => Store::open(path, warn),
        }
    }

    /// The store with the cache its writer read at open time (see [`Store::load_cache`]).
    fn with_initial(self, opened: Opened) -> Result<Store, StoreError> {
        *self.initial.lock().expect("db") = Some(opened?);
        Ok(self)
    }

    /// Why the cache of an [`Opening`] taken twice is not there.
    fn gone(&self) -> StoreError {
        StoreError::File {
            path: self.path.clone(),
            source: std::io::Error::other("its thread ended before it was open"),
        }
    }

    /// True on the writer's own thread (where [`Opening::then`] may run its callback).
    fn on_writer(&self) -> bool {
        self.writer
            .lock()
            .expect("db")
            .as_ref()
            .is_some_and(|w| w.thread().id() == std::thread::current().id())
    }

    fn sql(&self, source: rusqlite::Error) -> StoreError {
        StoreError::Sql {
            path: self.path.clone(),
            source,
        }
    }

    /// Every cached result.
    pub(crate) fn load_cache(&self) -> Result<HashMap<String, Arc<CacheRow>>, StoreError> {
        if let Some(rows) = self.initial.lock().expect("db").take() {
            return Ok(rows);
        }
        self.read(read_cache)
    }

    /// Runs a query on the read connection (opened on first use). A corrupt DB found here
    /// is handed to the writer, which moves it aside and starts a new one (a DB opened to
    /// read only has none: it is left as it is).
    fn read<T>(
        &self,
        query: impl FnOnce(&Connection) -> rusqlite::Result<T>,
    ) -> Result<T, StoreError> {
        let result = {
            let mut guard = self.read.lock().expect("db");
            match guard.as_ref() {
                Some(conn) => query(conn),
                None => connect(&self.path).and_then(|conn| query(guard.insert(conn))),
            }
        };
        result.map_err(|e| {
            if is_corrupt(&e) && self.held.is_none() {
                self.read.lock().expect("db").take();
                let (ack, done) = mpsc::channel();
                self.send(Msg::Corrupt(e.to_string(), ack));
                // The writer answers once it has started anew; on its own thread (a
                // callback of `Opening::then`) it does so only after that returns.
                if !self.on_writer() {
                    let _ = done.recv();
                }
            }
            self.sql(e)
        })
    }

    /// Queues the start of a run (at `started`, RFC 3339); the procs and the end recorded
    /// after it belong to it.
    pub(crate) fn begin_run(&self, script: &ScriptName, args: &[String], started: &str) {
        self.send(Msg::BeginRun {
            script: script.clone(),
            args: serde_json::to_string(&crate::redact::redact_all(args))
                .unwrap_or_else(|_| "[]".into()),
            started: started.to_string(),
        });
    }

    fn send(&self, m: Msg) {
        let urgent = m.is_urgent();
        if let Some(tx) = self.tx.lock().expect("db").as_ref() {
            let _ = tx.send(m);
        }
        // The writer sleeps through its batch window without waking for each message
        // (see `writer`); one that someone waits for wakes it.
        if urgent && let Some(w) = self.writer.lock().expect("db").as_ref() {
            w.thread().unpark();
        }
    }

    /// Queues a proc's history row.
    pub(crate) fn record_proc(&self, rec: ProcRecord) {
        self.send(Msg::Proc(rec));
    }

    /// Queues a cache row.
    pub(crate) fn save(&self, name: &str, row: CacheRow) {
        self.send(Msg::Save(name.to_string(), row));
    }

    /// Queues the removal of a proc's cached result (it failed: its old result is stale).
    pub(crate) fn invalidate(&self, name: &str) {
        self.send(Msg::Invalidate(name.to_string()));
    }

    /// Queues the end of a run, and the pruning of the script's history to its last
    /// `keep_runs` runs (0: none is pruned). The cache is not history: it stays whole.
    pub(crate) fn end_run(&self, duration: Duration, outcome: &str, counts: &str, keep_runs: u64) {
        self.send(Msg::EndRun {
            duration: duration.as_secs_f64(),
            outcome: outcome.to_string(),
            counts: counts.to_string(),
            keep_runs,
        });
    }

    /// Queues the run's parallel limit.
    pub(crate) fn record_parallel(&self, parallel: usize) {
        self.send(Msg::Parallel(parallel));
    }

    /// What makes the writer stop waiting for another process's lock on the DB (it waits
    /// up to 10 s per batch): a run gives up on a signal while it waits for its last
    /// commit, which would otherwise keep it past SIGTERM.
    pub(crate) fn impatience(&self) -> Impatience {
        Impatience(self.impatient.clone())
    }

    /// Waits until everything queued is committed, then stops the writer. On the writer's
    /// own thread (a callback of [`Opening::then`] that drops the store), it only lets
    /// the writer stop once the callback returns.
    pub(crate) fn close(&self) {
        self.finish();
        if self.on_writer() {
            return;
        }
        if let Some(w) = self.writer.lock().expect("db").take() {
            let _ = w.join();
        }
    }

    /// Lets the writer commit what is queued and stop, without waiting for it: the caller
    /// goes on meanwhile, and [`Store::close`] (or dropping the store) waits.
    pub(crate) fn finish(&self) {
        // The writer commits what the closed channel still holds and ends: one wake-up,
        // not a flush answered and then an end.
        self.tx.lock().expect("db").take();
        if let Some(w) = self.writer.lock().expect("db").as_ref() {
            w.thread().unpark();
        }
    }

    /// The most recent runs of the script whose key is `key` (see [`ScriptName`]), newest
    /// first. Runs recorded before scripts had keys are runs of every script.
    pub(crate) fn history(&self, key: &str, limit: usize) -> Result<Vec<HistoryRun>, StoreError> {
        self.read(|conn| {
            let mut stmt = conn.prepare(
                "SELECT id, started, duration, outcome, counts FROM runs
                 WHERE script_key IN (?1, '') ORDER BY id DESC LIMIT ?2",
            )?;
            let rows = stmt.query_map(params![key, limit as i64], |r| {
                Ok(HistoryRun {
                    id: r.get(0)?,
                    started: r.get(1)?,
                    duration: r.get(2)?,
                    outcome: r.get(3)?,
                    counts: r.get(4)?,
                })
            })?;
            rows.collect()
        })
    }

    /// The procs of one run, in the order they finished.
    pub(crate) fn run_procs(&self, run: i64) -> Result<Vec<ProcRecord>, StoreError> {
        self.read(|conn| run_procs(conn, run))
    }

    /// A recorded run of the script whose key is `key` (`run`, or its latest when `None`)
    /// with its procs and their earlier medians, all read at one moment of the DB: another
    /// run that prunes old runs meanwhile cannot leave the run without its procs. `None`
    /// when there is no such run of it.
    pub(crate) fn recorded_run(
        &self,
        key: &str,
        run: Option<i64>,
    ) -> Result<Option<RecordedRun>, StoreError> {
        self.read(|conn| {
            // One read transaction: its first statement fixes what the others see.
            let tx = conn.unchecked_transaction()?;
            let Some(row) = run_row(&tx, key, run)? else {
                return Ok(None);
            };
            let procs = run_procs(&tx, row.id)?;
            let medians = earlier_medians(&tx, row.id)?;
            tx.finish()?;
            Ok(Some(RecordedRun {
                row,
                procs,
                medians,
            }))
        })
    }

    /// The expected duration of each proc of the script whose key is `key`: the median of
    /// its last [`MEDIAN_OF`] successful runs in that script, among its newest
    /// [`EXPECTED_FROM_RUNS`] runs. With `stop_early`, the reading stops once every proc
    /// found has its [`MEDIAN_OF`]; the flag returned says whether it read every one of
    /// those runs (a proc not found may be in the others when it did not).
    fn expected_durations(
        &self,
        key: &str,
        stop_early: bool,
    ) -> Result<(HashMap<String, Duration>, bool), StoreError> {
        let earlier = Earlier {
            key,
            before: i64::MAX,
            runs: EXPECTED_FROM_RUNS,
            names: None,
            stop_early,
        };
        let (medians, whole) = self.read(|conn| earlier.medians(conn))?;
        let durations = medians
            .into_iter()
            .map(|(name, m)| (name, Duration::from_secs_f64(m)))
            .collect();
        Ok((durations, whole))
    }
}

/// The procs of run `run`, in the order they finished.
fn run_procs(conn: &Connection, run: i64) -> rusqlite::Result<Vec<ProcRecord>> {
    let mut stmt = conn.prepare(&format!(
        "SELECT name, state, started, duration, exit_code, log, error,
                ended, attempts, segments, waited, place, deps, proto FROM proc_runs
         WHERE {RUN_ROWS} ORDER BY rowid"
    ))?;
    let rows = stmt.query_map([run], |r| {
        Ok(ProcRecord {
            name: r.get(0)?,
            state: r.get(1)?,
            started: r.get(2)?,
            duration: r.get(3)?,
            exit_code: r.get(4)?,
            log: r.get(5)?,
            error: r.get(6)?,
            ended: r.get(7)?,
            attempts: r.get(8)?,
            segments: r.get(9)?,
            waited: r.get(10)?,
            place: r.get(11)?,
            deps: r.get(12)?,
            proto: r.get(13)?,
        })
    })?;
    rows.collect()
}

/// The run `run` of the script whose key is `key`, or its latest when `None`.
fn run_row(conn: &Connection, key: &str, run: Option<i64>) -> rusqlite::Result<Option<RunRow>> {
    let mut stmt = conn.prepare(
        "SELECT id, script, args, started, duration, outcome, parallel, counts FROM runs
         WHERE script_key IN (?2, '') AND (id = ?1 OR (?1 IS NULL AND id =
             (SELECT MAX(id) FROM runs WHERE script_key IN (?2, ''))))",
    )?;
    let mut rows = stmt.query_map(params![run, key], |r| {
        Ok(RunRow {
            id: r.get(0)?,
            script: r.get(1)?,
            args: r.get(2)?,
            started: r.get(3)?,
            duration: r.get(4)?,
            outcome: r.get(5)?,
            parallel: r.get(6)?,
            counts: r.get(7)?,
        })
    })?;
    rows.next().transpose()
}

/// For each proc of `run` that succeeded before it: the median of its durations in its
/// last 10 successful runs of the same script before `run`.
fn earlier_medians(conn: &Connection, run: i64) -> rusqlite::Result<HashMap<String, f64>> {
    let key: Option<String> = conn
        .query_row("SELECT script_key FROM runs WHERE id = ?1", [run], |r| {
            r.get(0)
        })
        .optional()?;
    let Some(key) = key else {
        return Ok(HashMap::new());
    };
    let names: HashSet<String> = conn
        .prepare(&format!("SELECT name FROM proc_runs WHERE {RUN_ROWS}"))?
        .query_map([run], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    let earlier = Earlier {
        key: &key,
        before: run,
        runs: i64::MAX,
        names: Some(&names),
        stop_early: false,
    };
    Ok(earlier.medians(conn)?.0)
}

/// The expected durations of a script's procs, which the live display shows: the median
/// of each proc's last [`MEDIAN_OF`] successful runs among the script's newest
/// [`EXPECTED_FROM_RUNS`] runs, read from the DB as procs are asked about. The first
/// reading stops once every proc found has its [`MEDIAN_OF`] runs (about as many runs as
/// that, when a script runs the same procs each time); a proc not found then, such as one
/// only some runs name as a target, has the rest of those runs read, once.
pub(crate) struct ExpectedDurations {
    /// The script's key.
    key: String,
    /// What was read; `None` before the first reading.
    found: Option<HashMap<String, Duration>>,
    /// Whether every run to read was read.
    whole: bool,
}

impl ExpectedDurations {
    /// Nothing read yet, for the script whose key is `key`.
    pub(crate) fn new(key: &str) -> Self {
        Self {
            key: key.to_string(),
            found: None,
            whole: false,
        }
    }

    /// The expected duration of `name` if what was read answers it; `None`: ask
    /// [`ExpectedDurations::get`], which reads the DB.
    pub(crate) fn known(&self, name: &str) -> Option<Option<Duration>> {
        match self.found.as_ref()?.get(name) {
            Some(d) => Some(Some(*d)),
            None if self.whole => Some(None),
            None => None,
        }
    }

    /// The expected duration of `name`, reading `store` when what was read does not
    /// answer it. A DB that cannot be read gives none (and is not read again).
    pub(crate) fn get(&mut self, store: &Store, name: &str) -> Option<Duration> {
        loop {
            if let Some(known) = self.known(name) {
                return known;
            }
            let stop_early = self.found.is_none();
            let (found, whole) = store
                .expected_durations(&self.key, stop_early)
                .unwrap_or_else(|_| (HashMap::new(), true));
            self.found = Some(found);
            self.whole = whole;
        }
    }
}

/// How many successful runs of a proc its median duration is taken over.
const MEDIAN_OF: usize = 10;

/// How many of a script's newest runs the expected durations are read from at most.
const EXPECTED_FROM_RUNS: i64 = 100;

/// A look-up of procs' durations in a script's earlier runs. There is no index by proc
/// name (see the schema's version 7): the runs are read one by one, newest first, each
/// by its range of rows (newest first too: a watch records each cycle's row of a proc in
/// its one run), until every proc looked for has [`MEDIAN_OF`] durations.
struct Earlier<'a> {
    /// The script's key (runs recorded before scripts had keys count too).
    key: &'a str,
    /// Only runs before this one.
    before: i64,
    /// At most this many runs.
    runs: i64,
    /// The procs looked for; `None`: every proc found.
    names: Option<&'a HashSet<String>>,
    /// Whether to stop once every proc found has [`MEDIAN_OF`] durations when `names` is
    /// `None` (a proc not found yet may then be in the runs left unread).
    stop_early: bool,
}

impl Earlier<'_> {
    /// Each proc's median duration over its last [`MEDIAN_OF`] successful runs, and
    /// whether every run to read was read.
    fn medians(&self, conn: &Connection) -> rusqlite::Result<(HashMap<String, f64>, bool)> {
        let runs: Vec<(i64, i64, i64)> = conn
            .prepare_cached(
                "SELECT id, first_proc, last_proc FROM runs
                 WHERE script_key IN (?1, '') AND id < ?2 AND first_proc IS NOT NULL
                 ORDER BY id DESC LIMIT ?3",
            )?
            .query_map(params![self.key, self.before, self.runs], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })?
            .collect::<rusqlite::Result<_>>()?;
        let mut procs = conn.prepare_cached(
            "SELECT name, duration FROM proc_runs
             WHERE rowid BETWEEN ?2 AND ?3 AND run_id = ?1
               AND state = 'SUCCEEDED' AND duration IS NOT NULL
             ORDER BY rowid DESC",
        )?;
        let mut found: HashMap<String, Vec<f64>> = HashMap::new();
        let mut whole = true;
        for (i, (id, first, last)) in runs.iter().enumerate() {
            let mut rows = procs.query(params![id, first, last])?;
            while let Some(row) = rows.next()? {
                let name: String = row.get(0)?;
                if self.names.is_some_and(|n| !n.contains(&name)) {
                    continue;
                }
                let durations = found.entry(name).or_default();
                if durations.len() < MEDIAN_OF {
                    durations.push(row.get(1)?);
                }
            }
            if self.enough(&found) {
                whole = i + 1 == runs.len();
                break;
            }
        }
        let medians = found
            .into_iter()
            .filter_map(|(name, d)| Some((name, median(d)?)))
            .collect();
        Ok((medians, whole))
    }

    /// Whether the durations found are all that the runs left could add to.
    fn enough(&self, found: &HashMap<String, Vec<f64>>) -> bool {
        let all_found = match self.names {
            Some(n) => found.len() == n.len(),
            None => self.stop_early && !found.is_empty(),
        };
        all_found && found.values().all(|d| d.len() == MEDIAN_OF)
    }
}

impl Drop for Store {
    fn drop(&mut self) {
        self.close();
    }
}

/// The median of some durations; `None` when there are none.
fn median(mut d: Vec<f64>) -> Option<f64> {
    if d.is_empty() {
        return None;
    }
    d.sort_by(f64::total_cmp);
    let mid = d.len() / 2;
    Some(if d.len() % 2 == 1 {
        d[mid]
    } else {
        (d[mid - 1] + d[mid]) / 2.0
    })
}

fn read_cache(conn: &Connection) -> rusqlite::Result<HashMap<String, Arc<CacheRow>>> {
    let mut stmt = conn.prepare("SELECT name, result, fingerprint, stamp FROM cache")?;
    let rows = stmt.query_map([], |r| {
        Ok((
            r.get::<_, String>(0)?,
            Arc::new(CacheRow {
                result: r.get(1)?,
                fingerprint: r.get(2)?,
                stamp: r.get(3)?,
            }),
        ))
    })?;
    rows.collect()
}

/// The run being recorded: its row, and what it was begun with (to begin it again in a
/// new DB after a corrupt one was moved aside).
#[derive(Default)]
struct Recording {
    id: Option<i64>,
    begun: Option<(ScriptName, String, String)>,
}

/// Commits whatever has queued up, one transaction per batch, until the channel closes.
/// When the DB turns out to be corrupt, it is moved aside, a new one is started and the
/// batch is written again into it.
fn writer(
    conn: Connection,
    rx: mpsc::Receiver<Msg>,
    path: &Path,
    warn: &Warn,
    impatient: &AtomicBool,
) {
    let mut conn = Some(conn);
    let mut failed = false;
    let mut rec = Recording::default();
    let replace = |conn: &mut Option<Connection>, rec: &mut Recording, error: &str| {
        // Close the old connection first: closing it later would checkpoint into, and
        // delete, the `-wal` file of the new DB.
        drop(conn.take());
        rec.id = None;
        match start_over(path) {
            Ok((aside, fresh)) => {
                *conn = Some(fresh);
                warn(&format!(
                    "the task DB {} is corrupt ({error}); moved it to {} and started a new one",
                    path.display(),
                    aside.display()
                ));
            }
            Err(why) => warn(&format!(
                "the task DB {} is corrupt ({error}) and could not be replaced: {why}; \
                 this run's history and cache are not recorded",
                path.display()
            )),
        }
    };
    while let Ok(first) = rx.recv() {
        // Gather what arrives in the next few milliseconds too: one transaction per
        // finished proc would cost more than the procs themselves in a run of many short
        // ones. Meanwhile the writer sleeps (parked) and messages wait in the channel, so
        // that each one does not wake it: on a busy machine every wake-up takes a CPU
        // from the jobs. A message someone waits for (a corrupt DB) unparks it and is
        // committed at once, and so is the rest when the store closes (the channel is
        // closed and the writer unparked: see `Store::close`).
        let mut batch = vec![first];
        let until = std::time::Instant::now() + BATCH_WINDOW;
        let mut closed;
        loop {
            closed = drain(&rx, &mut batch);
            let left = until.saturating_duration_since(std::time::Instant::now());
            if closed || left.is_zero() || batch.iter().any(Msg::is_urgent) {
                break;
            }
            std::thread::park_timeout(left);
        }
        let mut result = apply(conn.as_mut(), &batch, &mut rec, impatient);
        if let Err(e) = &result
            && is_corrupt(e)
        {
            replace(&mut conn, &mut rec, &e.to_string());
            result = apply(conn.as_mut(), &batch, &mut rec, impatient);
        }
        if result.is_ok() && !closed {
            checkpoint(path, conn.as_ref());
        }
        if let Err(e) = result {
            rec.id = None;
            if !failed {
                failed = true;
                warn(&format!(
                    "failed to write the task DB {}: {e}; this run's history and cache may be incomplete",
                    path.display()
                ));
            }
        }
        for m in batch {
            if let Msg::Corrupt(error, ack) = m {
                replace(&mut conn, &mut rec, &error);
                let _ = ack.send(());
            }
        }
    }
}

/// Copies what the last commits wrote to the `-wal` file into the DB while the run goes
/// on, so that closing the DB at the run's end, which the run waits for, copies only the
/// last batch (two system calls a page): after a chain of 500 short procs the close took
/// 0.32-0.40 ms, and 0.18-0.20 with this. A checkpoint that cannot be done at once
/// (another run reading or writing) is left to a later one, and so is one while someone
/// reads the DB file at `path` itself (see [`super::readonly::checkpointing`]).
fn checkpoint(path: &Path, conn: Option<&Connection>) {
    if let Some(conn) = conn
        && let Some(_leave) = super::readonly::checkpointing(path)
    {
        let _ = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()));
    }
}

/// Moves what is queued into `batch`; true when the channel is closed.
fn drain(rx: &mpsc::Receiver<Msg>, batch: &mut Vec<Msg>) -> bool {
    loop {
        match rx.try_recv() {
            Ok(m) => batch.push(m),
            Err(mpsc::TryRecvError::Empty) => return false,
            Err(mpsc::TryRecvError::Disconnected) => return true,
        }
    }
}

/// The statements every run's history takes, prepared once per connection (see [`warm`]).
const BEGIN_RUN: &str =
    "INSERT INTO runs (script, args, started, script_key) VALUES (?1, ?2, ?3, ?4)";
const PARALLEL: &str = "UPDATE runs SET parallel = ?2 WHERE id = ?1";
const RECORD_PROC: &str =
    "INSERT INTO proc_runs (run_id, name, state, started, duration, exit_code,
        log, error, ended, attempts, segments, waited, place, deps, proto)
    VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)";
const END_RUN: &str =
    "UPDATE runs SET ended = ?2, duration = ?3, outcome = ?4, counts = ?5 WHERE id = ?1";
/// Records that the rows `?2` to `?3` of `proc_runs` hold procs of run `?1` (see the
/// schema's version 6): the range grows as the run's procs are written.
const MARK_PROCS: &str =
    "UPDATE runs SET first_proc = COALESCE(first_proc, ?2), last_proc = ?3 WHERE id = ?1";
/// The rows of `proc_runs` that hold the procs of run `?1`: a search of its range of
/// rows, not a scan of the table.
const RUN_ROWS: &str = "rowid BETWEEN (SELECT first_proc FROM runs WHERE id = ?1)
        AND (SELECT last_proc FROM runs WHERE id = ?1) AND run_id = ?1";
/// Deletes rows `?2` to `?3` of `proc_runs` that belong to run `?1`: the procs written
/// for a run that was deleted meanwhile (pruned by another run at once).
const DROP_PROCS: &str = "DELETE FROM proc_runs WHERE rowid BETWEEN ?2 AND ?3 AND run_id = ?1";
/// The ids of the runs that [`PRUNE`] deletes: every run of the script whose key is `?1`
/// (runs of an unknown script, recorded before scripts had keys, count as its runs too)
/// up to the newest one past the `?2` kept. Found that way, not as `id NOT IN (the kept
/// ones)`: a third of the instructions, which every run paid at its end.
macro_rules! pruned_runs {
    () => {
        "SELECT id FROM runs WHERE script_key IN (?1, '')
            AND id <= (SELECT id FROM runs WHERE script_key IN (?1, '')
                       ORDER BY id DESC LIMIT 1 OFFSET ?2)"
    };
}
/// Deletes the procs of the runs [`PRUNE`] deletes, each run's by its range of rows.
const PRUNE_PROCS: &str = concat!(
    "DELETE FROM proc_runs WHERE rowid IN (SELECT p.rowid FROM runs r, proc_runs p
        WHERE p.rowid BETWEEN r.first_proc AND r.last_proc AND p.run_id = r.id
          AND r.id IN (",
    pruned_runs!(),
    "))"
);
/// Keeps the newest `?2` runs of the script whose key is `?1` (see [`pruned_runs`]).
const PRUNE: &str = concat!("DELETE FROM runs WHERE id IN (", pruned_runs!(), ")");

/// Prepares the statements of a run's history while the run goes on: the writer commits
/// them all at once when the store closes, after the last proc, where parsing them (a
/// fifth of a million instructions) made the run longer.
fn warm(conn: &Connection) {
    for sql in [
        BEGIN_RUN,
        PARALLEL,
        RECORD_PROC,
        MARK_PROCS,
        END_RUN,
        PRUNE_PROCS,
        PRUNE,
    ] {
        // A statement that does not prepare fails again, with its error, when it is used.
        let _ = conn.prepare_cached(sql);
    }
}

/// Writes one batch in one transaction (nothing when there is no DB left to write to).
fn apply(
    conn: Option<&mut Connection>,
    batch: &[Msg],
    rec: &mut Recording,
    impatient: &AtomicBool,
) -> rusqlite::Result<()> {
    let Some(conn) = conn else { return Ok(()) };
    // The write lock, waited for up to LOCK_PATIENCE while another process holds it, in
    // tries of LOCK_TRY, unless told to give up.
    conn.busy_timeout(LOCK_TRY)?;
    let until = Instant::now() + LOCK_PATIENCE;
    let tx = loop {
        match conn.transaction_with_behavior(TransactionBehavior::Immediate) {
            Ok(tx) => break tx,
            Err(e)
                if e.sqlite_error_code() == Some(ErrorCode::DatabaseBusy)
                    && !impatient.load(Ordering::SeqCst)
                    && Instant::now() < until => {}
            Err(e) => return Err(e),
        }
    };
    let begin = |tx: &rusqlite::Transaction, rec: &mut Recording| -> rusqlite::Result<()> {
        if let Some((script, args, started)) = &rec.begun {
            tx.prepare_cached(BEGIN_RUN)?.execute(params![
                script.shown,
                args,
                started,
                script.key
            ])?;
            rec.id = Some(tx.last_insert_rowid());
        }
        Ok(())
    };
    // The statements of the rows a batch holds many of, each prepared (found in the
    // connection's cache) once per batch rather than once per row.
    let mut insert_proc = None;
    let mut save_row = None;
    // When the batch's cache rows were saved: they are committed together.
    let mut saved = None;
    // The rows of proc_runs this batch wrote for a run, marked in its row when done.
    let mut written: Option<Written> = None;
    for m in batch {
        match m {
            Msg::BeginRun {
                script,
                args,
                started,
            } => {
                rec.begun = Some((script.clone(), args.clone(), started.clone()));
                begin(&tx, rec)?;
            }
            Msg::Proc(p) => {
                if rec.id.is_none() {
                    begin(&tx, rec)?;
                }
                let Some(run) = rec.id else { continue };
                let insert = match &mut insert_proc {
                    Some(stmt) => stmt,
                    None => insert_proc.insert(tx.prepare_cached(RECORD_PROC)?),
                };
                insert.execute(params![
                    run,
                    p.name,
                    p.state,
                    p.started,
                    p.duration,
                    p.exit_code,
                    p.log,
                    p.error,
                    p.ended,
                    p.attempts,
                    p.segments,
                    p.waited,
                    p.place,
                    p.deps,
                    p.proto
                ])?;
                let row = tx.last_insert_rowid();
                match &mut written {
                    Some(w) if w.run == run => w.last = row,
                    _ => {
                        if let Some(w) = written.take() {
                            w.mark(&tx)?;
                        }
                        written = Some(Written {
                            run,
                            first: row,
                            last: row,
                        });
                    }
                }
            }
            Msg::Save(name, row) => {
                // An upsert, not `INSERT OR REPLACE`: the row is rewritten where it is
                // (a replace deletes it, and its key in the index, and inserts both anew
                // at the end of the table).
                let save = match &mut save_row {
                    Some(stmt) => stmt,
                    None => save_row.insert(tx.prepare_cached(
                        "INSERT INTO cache (name, result, fingerprint, stamp, saved)
                         VALUES (?1, ?2, ?3, ?4, ?5)
                         ON CONFLICT (name) DO UPDATE SET result = excluded.result,
                             fingerprint = excluded.fingerprint, stamp = excluded.stamp,
                             saved = excluded.saved",
                    )?),
                };
                save.execute(params![
                    name,
                    row.result,
                    row.fingerprint,
                    row.stamp,
                    &*saved.get_or_insert_with(now)
                ])?;
            }
            Msg::Invalidate(name) => {
                tx.prepare_cached("DELETE FROM cache WHERE name = ?1")?
                    .execute([name])?;
            }
            Msg::EndRun {
                duration,
                outcome,
                counts,
                keep_runs,
            } => {
                if rec.id.is_none() {
                    begin(&tx, rec)?;
                }
                tx.prepare_cached(END_RUN)?.execute(params![
                    rec.id,
                    now(),
                    duration,
                    outcome,
                    counts
                ])?;
                // Runs of other scripts sharing the DB (`--db`) are theirs to prune; the
                // procs of a deleted run go with it (ON DELETE CASCADE).
                if *keep_runs > 0
                    && let Some((script, ..)) = &rec.begun
                {
                    let kept = i64::try_from(*keep_runs).unwrap_or(i64::MAX);
                    tx.prepare_cached(PRUNE_PROCS)?
                        .execute(params![script.key, kept])?;
                    tx.prepare_cached(PRUNE)?
                        .execute(params![script.key, kept])?;
                }
            }
            Msg::Parallel(n) => {
                if rec.id.is_none() {
                    begin(&tx, rec)?;
                }
                tx.prepare_cached(PARALLEL)?
                    .execute(params![rec.id, *n as i64])?;
            }
            Msg::Corrupt(..) => {}
        }
    }
    drop((insert_proc, save_row));
    if let Some(w) = written {
        w.mark(&tx)?;
    }
    tx.commit()
}

/// Rows `first` to `last` of `proc_runs`, written for run `run` (and maybe, in between,
/// for another run writing at once).
struct Written {
    run: i64,
    first: i64,
    last: i64,
}

impl Written {
    /// Records the range in the run's row; when the run is gone (another run pruned it
    /// meanwhile), deletes its rows instead, which nothing would find or delete later.
    fn mark(&self, tx: &rusqlite::Transaction) -> rusqlite::Result<()> {
        let marked = tx
            .prepare_cached(MARK_PROCS)?
            .execute(params![self.run, self.first, self.last])?;
        if marked == 0 {
            tx.prepare_cached(DROP_PROCS)?
                .execute(params![self.run, self.first, self.last])?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A script known by the name it was given (no such file: its key is that name).
    fn script(name: &str) -> ScriptName {
        ScriptName::of(Path::new(name))
    }

    fn quiet() -> Warn {
        Arc::new(|_| {})
    }

    /// Whether each live thread of this process named `name` blocks SIGCHLD (from the
    /// `SigBlk` mask in its `/proc` status).
    fn sigchld_blocked_in_threads(name: &str) -> Vec<bool> {
        const SIGCHLD_BIT: u64 = 1 << (17 - 1);
        let mut found = Vec::new();
        for task in std::fs::read_dir("/proc/self/task").unwrap().flatten() {
            let comm = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
            if comm.trim_end() != name {
                continue;
            }
            let Ok(status) = std::fs::read_to_string(task.path().join("status")) else {
                continue;
            };
            let mask = status
                .lines()
                .find_map(|l| l.strip_prefix("SigBlk:"))
                .and_then(|m| u64::from_str_radix(m.trim(), 16).ok())
                .expect("a SigBlk line");
            found.push(mask & SIGCHLD_BIT != 0);
        }
        found
    }

    #[test]
    fn the_writer_thread_is_never_woken_by_a_child_signal() {
        // Started from a thread that takes SIGCHLD, as a run's thread does.
        let dir = tempfile::tempdir().unwrap();
        let s = std::thread::spawn(move || {
            let s = Store::open(&dir.path().join("t.db"), quiet()).unwrap();
            (s, dir)
        })
        .join()
        .unwrap();
        // Other tests' writers may be seen in the instant between their start and their
        // first line, which blocks it: a thread that never blocks it fails after 5 s.
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        loop {
            let writers = sigchld_blocked_in_threads("prun-db");
            assert!(!writers.is_empty(), "the writer thread is running");
            if writers.iter().all(|&blocked| blocked) {
                break;
            }
            assert!(std::time::Instant::now() < deadline, "{writers:?}");
            std::thread::sleep(Duration::from_millis(10));
        }
        s.0.close();
    }

    /// A DB that another connection holds locked, so that its writer's open waits until
    /// the returned connection commits.
    fn locked_db(path: &Path) -> Connection {
        Store::open(path, quiet()).unwrap().close();
        let blocker = Connection::open(path).unwrap();
        blocker
            .execute_batch("PRAGMA journal_mode = DELETE; BEGIN EXCLUSIVE; DELETE FROM cache;")
            .unwrap();
        blocker
    }

    #[test]
    fn a_callback_left_before_the_db_is_open_gets_it_on_the_writer_thread_which_it_may_drop() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        let blocker = locked_db(&path);
        let opening = Store::start(&path, quiet()).unwrap();
        let (tx, rx) = mpsc::channel();
        opening.then(move |store| {
            let store = store.expect("open");
            let on = std::thread::current().name().map(str::to_string);
            store.begin_run(&script("s.rhai"), &[], &now());
            store.end_run(Duration::from_secs(1), "ok", "{}", 0);
            // On the writer's own thread: neither a wait for itself nor a panic.
            drop(store);
            tx.send(on).unwrap();
        });
        assert!(rx.try_recv().is_err(), "the DB is not open yet");
        blocker.execute_batch("COMMIT").unwrap();
        let on = rx.recv_timeout(Duration::from_secs(60)).expect("called");
        assert_eq!(on.as_deref(), Some("prun-db"));
        // What the callback queued is committed before the writer stops, which is after the
        // callback returned (it cannot wait for its own thread): read until it is there.
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        while Store::open(&path, quiet())
            .unwrap()
            .history("s.rhai", 5)
            .unwrap()
            .is_empty()
        {
            assert!(
                std::time::Instant::now() < deadline,
                "the callback's run was never committed"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    #[test]
    fn a_callback_left_once_the_db_is_open_gets_it_at_once_on_the_callers_thread() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        Store::open(&path, quiet()).unwrap().save(
            "a",
            CacheRow {
                result: "1".into(),
                fingerprint: "f".into(),
                stamp: "s".into(),
            },
        );
        let opening = Store::start(&path, quiet()).unwrap();
        // Filled once the writer's open is done: a second store waiting for it knows when.
        let filled = opening.handoff.clone();
        drop(
            filled
                .filled
                .wait_while(filled.slot.lock().unwrap(), |s| matches!(s, Slot::Empty)),
        );
        let here = std::thread::current().id();
        let (tx, rx) = mpsc::channel();
        opening.then(move |store| {
            let rows = store.expect("open").load_cache().unwrap();
            tx.send((std::thread::current().id(), rows.len())).unwrap();
        });
        assert_eq!(rx.try_recv().expect("called at once"), (here, 1));
    }

    #[test]
    fn a_callback_learns_that_the_db_cannot_be_opened() {
        let dir = tempfile::tempdir().unwrap();
        // A directory where the DB file should be.
        let path = dir.path().join("t.db");
        std::fs::create_dir(&path).unwrap();
        let (tx, rx) = mpsc::channel();
        Store::start(&path, quiet())
            .unwrap()
            .then(move |store| tx.send(store.is_err()).unwrap());
        assert!(rx.recv_timeout(Duration::from_secs(60)).expect("called"));
    }

    #[test]
    fn cache_rows_round_trip_and_failures_invalidate() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        let s = Store::open(&path, quiet()).unwrap();
        let row = CacheRow {
            result: "[1,2]".into(),
            fingerprint: "f".into(),
            stamp: "s".into(),
        };
        s.save("a", row.clone());
        s.save("b", row.clone());
        s.invalidate("b");
        s.close();
        let s = Store::open(&path, quiet()).unwrap();
        let cache = s.load_cache().unwrap();
        assert_eq!(cache.get("a").map(|r| &**r), Some(&row));
        assert!(!cache.contains_key("b"));
    }

    #[test]
    fn a_result_saved_again_rewrites_its_row_in_place() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        let s = Store::open(&path, quiet()).unwrap();
        let row = |result: &str| CacheRow {
            result: result.into(),
            fingerprint: format!("f{result}"),
            stamp: format!("s{result}"),
        };
        s.save("a", row("1"));
        s.save("b", row("1"));
        s.close();
        let rowid = |s: &Store| -> i64 {
            s.read(|c| c.query_row("SELECT rowid FROM cache WHERE name = 'a'", [], |r| r.get(0)))
                .unwrap()
        };
        let s = Store::open(&path, quiet()).unwrap();
        let before = rowid(&s);
        s.save("a", row("2"));
        s.close();
        let s = Store::open(&path, quiet()).unwrap();
        let cache = s.load_cache().unwrap();
        assert_eq!(cache.get("a").map(|r| &**r), Some(&row("2")));
        assert_eq!(cache.get("b").map(|r| &**r), Some(&row("1")));
        assert_eq!(cache.len(), 2);
        assert_eq!(rowid(&s), before, "an upsert, not a delete and an insert");
    }

    #[test]
    fn history_and_the_median_of_recent_durations() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(&dir.path().join("t.db"), quiet()).unwrap();
        for d in [1.0, 9.0, 2.0] {
            s.begin_run(&script("s.rhai"), &["-x".into()], &now());
            record_timed(&s, "p", "SUCCEEDED", d);
            s.end_run(Duration::from_secs(1), "ok", "{}", 100);
        }
        s.close();
        let mut expected = ExpectedDurations::new("s.rhai");
        assert_eq!(expected.get(&s, "p"), Some(Duration::from_secs(2)));
        assert_eq!(expected.get(&s, "q"), None);
        let h = s.history("s.rhai", 2).unwrap();
        assert_eq!(h.len(), 2);
        assert!(h[0].id > h[1].id);
        assert_eq!(h[0].outcome.as_deref(), Some("ok"));
    }

    /// Queues a history row of `name` that ended in `state` after `d` seconds.
    /// The run `run` of the script whose key is `key`, as `prun report` reads it.
    fn recorded(s: &Store, key: &str, run: i64) -> RecordedRun {
        s.recorded_run(key, Some(run))
            .unwrap()
            .expect("a run of the script")
    }

    fn record_timed(s: &Store, name: &str, state: &str, d: f64) {
        s.record_proc(ProcRecord {
            name: name.into(),
            state: state.into(),
            duration: Some(d),
            ..ProcRecord::default()
        });
    }

    #[test]
    fn earlier_durations_are_found_however_far_back_and_only_before_the_run() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(&dir.path().join("t.db"), quiet()).unwrap();
        let record = |name: &str, state: &str, d: f64| record_timed(&s, name, state, d);
        // `every` runs in each run (failing in run 13) for as many seconds as the run's
        // number; `rare` in the first three runs and the last.
        for run in 1..=14 {
            s.begin_run(&script("s.rhai"), &[], &now());
            let state = if run == 13 { "FAILED" } else { "SUCCEEDED" };
            record("every", state, f64::from(run));
            if run <= 3 {
                record("rare", "SUCCEEDED", 100.0 * f64::from(run));
            }
            if run == 14 {
                record("rare", "SUCCEEDED", 1.0);
            }
            s.end_run(Duration::from_secs(1), "ok", "{}", 0);
        }
        s.close();
        let medians = recorded(&s, "s.rhai", 14).medians;
        assert_eq!(medians.get("every"), Some(&7.5), "runs 3 to 12");
        assert_eq!(
            medians.get("rare"),
            Some(&200.0),
            "runs 1 to 3, ten runs back"
        );
        let mut expected = ExpectedDurations::new("s.rhai");
        assert_eq!(
            expected.get(&s, "every"),
            Some(Duration::from_secs_f64(8.5)),
            "runs 4 to 14 but 13"
        );
        assert_eq!(
            expected.get(&s, "rare"),
            Some(Duration::from_secs(150)),
            "runs 1 to 3 and 14"
        );
    }

    #[test]
    fn a_proc_absent_from_the_newest_runs_keeps_its_expected_duration() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(&dir.path().join("t.db"), quiet()).unwrap();
        let record = |name: &str, d: f64| record_timed(&s, name, "SUCCEEDED", d);
        // `prun s.rhai deploy` twice, then `prun s.rhai test` twelve times.
        for d in [20.0, 40.0] {
            s.begin_run(&script("s.rhai"), &[], &now());
            record("deploy", d);
            s.end_run(Duration::from_secs(1), "ok", "{}", 0);
        }
        for _ in 0..12 {
            s.begin_run(&script("s.rhai"), &[], &now());
            record("test", 1.0);
            s.end_run(Duration::from_secs(1), "ok", "{}", 0);
        }
        s.close();
        let mut expected = ExpectedDurations::new("s.rhai");
        assert_eq!(expected.get(&s, "test"), Some(Duration::from_secs(1)));
        assert_eq!(
            expected.get(&s, "deploy"),
            Some(Duration::from_secs(30)),
            "runs 1 and 2, among the newest 100"
        );
    }

    #[test]
    fn the_newest_cycles_of_a_watch_count_first() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(&dir.path().join("t.db"), quiet()).unwrap();
        // A watch (one run) that ran `p` twelve times, taking 1 s to 12 s, then a run.
        for cycles in [12, 1] {
            s.begin_run(&script("s.rhai"), &[], &now());
            for d in 1..=cycles {
                s.record_proc(ProcRecord {
                    name: "p".into(),
                    state: "SUCCEEDED".into(),
                    duration: Some(f64::from(d)),
                    ..ProcRecord::default()
                });
            }
            s.end_run(Duration::from_secs(1), "ok", "{}", 0);
        }
        s.close();
        assert_eq!(
            recorded(&s, "s.rhai", 2).medians.get("p"),
            Some(&7.5),
            "cycles 3 to 12"
        );
        assert_eq!(
            ExpectedDurations::new("s.rhai").get(&s, "p"),
            Some(Duration::from_secs_f64(7.5)),
            "run 2's 1 s and cycles 4 to 12"
        );
    }

    #[test]
    fn pruning_keeps_the_last_runs_of_the_script_and_the_whole_cache() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(&dir.path().join("t.db"), quiet()).unwrap();
        let row = CacheRow {
            result: "1".into(),
            fingerprint: "f".into(),
            stamp: "s".into(),
        };
        s.save("cached", row.clone());
        s.begin_run(&script("other.rhai"), &[], &now());
        s.end_run(Duration::from_secs(1), "ok", "{}", 0);
        for _ in 0..5 {
            s.begin_run(&script("s.rhai"), &[], &now());
            s.record_proc(ProcRecord {
                name: "p".into(),
                state: "SUCCEEDED".into(),
                ..ProcRecord::default()
            });
            s.end_run(Duration::from_secs(1), "ok", "{}", 2);
        }
        s.close();
        let s = Store::open(&dir.path().join("t.db"), quiet()).unwrap();
        let ids: Vec<i64> = s
            .read(|c| {
                c.prepare("SELECT id FROM runs ORDER BY id DESC")?
                    .query_map([], |r| r.get(0))?
                    .collect()
            })
            .unwrap();
        assert_eq!(ids, [6, 5, 1], "two runs of s.rhai, and the other script's");
        let procs: i64 = s
            .read(|c| c.query_row("SELECT COUNT(*) FROM proc_runs", [], |r| r.get(0)))
            .unwrap();
        assert_eq!(procs, 2);
        assert_eq!(
            s.load_cache().unwrap().get("cached").map(|r| &**r),
            Some(&row)
        );
    }

    /// The plan SQLite makes for `sql`, one step per line.
    fn plan(conn: &Connection, sql: &str) -> String {
        // Unbound parameters are NULL: the plan does not depend on them.
        let mut stmt = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
        let mut rows = stmt.raw_query();
        let mut steps = Vec::new();
        while let Some(row) = rows.next().unwrap() {
            steps.push(row.get::<_, String>(3).unwrap());
        }
        steps.join("\n")
    }

    #[test]
    fn a_runs_procs_are_read_and_pruned_by_their_range_of_rows_not_by_a_scan() {
        let dir = tempfile::tempdir().unwrap();
        // Configured as every connection of a run is (no foreign keys: a cascade from
        // `runs` would scan `proc_runs`).
        let (conn, ..) = load(&dir.path().join("t.db")).unwrap();
        let read = plan(
            &conn,
            &format!("SELECT name FROM proc_runs WHERE {RUN_ROWS}"),
        );
        assert!(
            read.contains("SEARCH proc_runs USING INTEGER PRIMARY KEY"),
            "{read}"
        );
        let prune = plan(&conn, PRUNE_PROCS);
        assert!(!prune.contains("SCAN p"), "{prune}");
        assert!(prune.contains("USING INTEGER PRIMARY KEY"), "{prune}");
        let runs = plan(&conn, PRUNE);
        assert!(!runs.contains("proc_runs"), "{runs}");
    }

    /// One batch of the writer, as it commits it.
    fn commit(conn: &mut Connection, rec: &mut Recording, batch: Vec<Msg>) {
        apply(Some(conn), &batch, rec, &AtomicBool::new(false)).unwrap();
    }

    fn begin(name: &str) -> Msg {
        Msg::BeginRun {
            script: script(name),
            args: "[]".into(),
            started: now(),
        }
    }

    fn proc(name: &str) -> Msg {
        Msg::Proc(ProcRecord {
            name: name.into(),
            state: "SUCCEEDED".into(),
            ..ProcRecord::default()
        })
    }

    fn end(keep_runs: u64) -> Msg {
        Msg::EndRun {
            duration: 1.0,
            outcome: "ok".into(),
            counts: "{}".into(),
            keep_runs,
        }
    }

    /// How many pages of the DB a run of 300 procs changes (the frames its commit adds to
    /// the `-wal`), written after `earlier` runs of the same procs.
    fn pages_a_run_changes_after(earlier: usize) -> i64 {
        let dir = tempfile::tempdir().unwrap();
        let (mut conn, ..) = load(&dir.path().join("t.db")).unwrap();
        let run = |conn: &mut Connection| {
            let mut batch = vec![begin("s.rhai")];
            batch.extend((0..300).map(|i| proc(&format!("build::{i}"))));
            batch.push(end(0));
            commit(conn, &mut Recording::default(), batch);
        };
        for _ in 0..earlier {
            run(&mut conn);
        }
        conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
            .unwrap();
        run(&mut conn);
        conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| r.get(1))
            .unwrap()
    }

    #[test]
    fn a_run_changes_as_many_pages_whatever_the_history_kept() {
        let fresh = pages_a_run_changes_after(0);
        let later = pages_a_run_changes_after(40);
        assert!(
            later <= fresh + 2,
            "{fresh} pages on a new DB, {later} after 40 runs"
        );
    }

    #[test]
    fn a_db_file_read_by_someone_gets_no_checkpoint_until_they_are_done() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        let s = Store::open(&path, quiet()).unwrap();
        s.begin_run(&script("s.rhai"), &[], &now());
        s.end_run(Duration::from_secs(1), "ok", "{}", 0);
        drop(s);
        // No `-wal` left: the reader reads the DB file itself.
        let reader = Store::open_read_only(&path, quiet()).unwrap();
        let before = std::fs::read(&path).unwrap();
        let (mut conn, ..) = load(&path).unwrap();
        let mut rec = Recording::default();
        // Past the 1,000 pages after which SQLite would checkpoint by itself.
        for _ in 0..3 {
            let mut batch = vec![begin("s.rhai")];
            batch.extend((0..30).map(|i| {
                Msg::Proc(ProcRecord {
                    name: format!("p{i}"),
                    state: "FAILED".into(),
                    error: Some("x".repeat(64 * 1024)),
                    ..ProcRecord::default()
                })
            }));
            batch.push(end(0));
            commit(&mut conn, &mut rec, batch);
            checkpoint(&path, Some(&conn));
        }
        assert!(
            std::fs::read(&path).unwrap() == before,
            "the DB file changed while it was read"
        );
        assert_eq!(reader.history("s.rhai", 10).unwrap().len(), 1);
        drop(reader);
        checkpoint(&path, Some(&conn));
        assert!(
            std::fs::read(&path).unwrap() != before,
            "checkpointed once no one reads it"
        );
    }

    #[test]
    fn two_runs_written_at_once_each_keep_their_own_procs_and_are_pruned_alone() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        let (mut conn, ..) = load(&path).unwrap();
        let (mut one, mut two) = (Recording::default(), Recording::default());
        // Their batches interleave, so their rows do too.
        commit(&mut conn, &mut one, vec![begin("s.rhai"), proc("a1")]);
        commit(
            &mut conn,
            &mut two,
            vec![begin("s.rhai"), proc("b1"), proc("b2")],
        );
        commit(&mut conn, &mut one, vec![proc("a2")]);
        commit(&mut conn, &mut two, vec![proc("b3")]);
        let s = Store::open(&path, quiet()).unwrap();
        let names = |run: i64| -> Vec<String> {
            s.run_procs(run)
                .unwrap()
                .into_iter()
                .map(|p| p.name)
                .collect()
        };
        assert_eq!(names(1), ["a1", "a2"]);
        assert_eq!(names(2), ["b1", "b2", "b3"]);
        // The second ends keeping one run of the script: the first goes, with its procs.
        commit(&mut conn, &mut two, vec![end(1)]);
        assert!(names(1).is_empty());
        assert_eq!(names(2), ["b1", "b2", "b3"]);
        let left: i64 = conn
            .query_row("SELECT COUNT(*) FROM proc_runs", [], |r| r.get(0))
            .unwrap();
        assert_eq!(left, 3, "the pruned run's procs are deleted, no other");
    }

    /// Runs of two scripts (`a`, `b`) and of no known script (key `''`), written in
    /// interleaved batches as runs at once write them: procs that fail sometimes, run
    /// only in some runs (or only in old ones), are retried, succeed without a duration;
    /// runs with no procs.
    fn a_varied_history(conn: &mut Connection) {
        let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = move |n: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % n
        };
        let keyless = ScriptName {
            shown: "old.rhai".into(),
            key: String::new(),
        };
        let mut open: Vec<Recording> = Vec::new();
        for step in 0..1000 {
            if open.len() < 3 && next(4) == 0 {
                let mut rec = Recording::default();
                let begun = match next(8) {
                    0 => Msg::BeginRun {
                        script: keyless.clone(),
                        args: "[]".into(),
                        started: now(),
                    },
                    1..=4 => begin("a.rhai"),
                    _ => begin("b.rhai"),
                };
                commit(conn, &mut rec, vec![begun]);
                open.push(rec);
                continue;
            }
            if open.is_empty() {
                continue;
            }
            let which = usize::try_from(next(open.len() as u64)).unwrap();
            let rec = &mut open[which];
            if next(6) == 0 {
                commit(conn, rec, vec![end(0)]);
                open.remove(which);
                continue;
            }
            let batch = (0..next(4))
                .map(|_| {
                    // `p0` in almost every run, `p7` in few, `p5` failing often; the
                    // newest runs only `p0` and `p1` (`prun a.rhai p0 p1`).
                    let p = next(8).min(next(9)) % if step < 700 { 8 } else { 2 };
                    let state = match (p, next(10)) {
                        (5, 0..=4) | (_, 0) => "FAILED",
                        (_, 1) => "UP_TO_DATE",
                        _ => "SUCCEEDED",
                    };
                    Msg::Proc(ProcRecord {
                        name: format!("p{p}"),
                        state: state.into(),
                        duration: (state != "UP_TO_DATE" && next(20) != 0)
                            .then(|| f64::from(u32::try_from(next(1000)).unwrap()) / 8.0),
                        attempts: Some(1 + u32::try_from(next(3) / 2).unwrap()),
                        ..ProcRecord::default()
                    })
                })
                .collect();
            commit(conn, rec, batch);
        }
        for mut rec in open {
            commit(conn, &mut rec, vec![end(0)]);
        }
    }

    /// The median of the durations of `name`'s last 10 successful runs among the runs of
    /// the script whose key is `key` before run `before`: one query of every row, and a
    /// median taken apart from [`median`].
    fn brute_median(conn: &Connection, key: &str, name: &str, before: i64) -> Option<f64> {
        let mut d: Vec<f64> = conn
            .prepare(
                "SELECT p.duration FROM proc_runs p JOIN runs r ON r.id = p.run_id
                 WHERE r.script_key IN (?1, '') AND r.id < ?3 AND p.name = ?2
                   AND p.state = 'SUCCEEDED' AND p.duration IS NOT NULL
                 ORDER BY r.id DESC, p.rowid DESC LIMIT 10",
            )
            .unwrap()
            .query_map(params![key, name, before], |r| r.get(0))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        d.sort_by(|x, y| x.partial_cmp(y).unwrap());
        let n = d.len();
        (n > 0).then(|| (d[(n - 1) / 2] + d[n / 2]) / 2.0)
    }

    #[test]
    fn earlier_medians_and_expected_durations_agree_with_a_brute_force_count() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        let (mut conn, ..) = load(&path).unwrap();
        a_varied_history(&mut conn);
        let s = Store::open(&path, quiet()).unwrap();
        let runs: Vec<(i64, String)> = conn
            .prepare("SELECT id, script_key FROM runs ORDER BY id")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        assert!(runs.len() > 80, "{} runs", runs.len());
        for key in ["a.rhai", "b.rhai"] {
            let of = runs.iter().filter(|r| r.1 == key || r.1.is_empty()).count();
            assert!(
                of < 100,
                "{of} runs of {key}: more than the expected durations read"
            );
        }
        let names: Vec<String> = (0..8).map(|p| format!("p{p}")).collect();
        for (run, key) in &runs {
            let in_run: HashSet<String> = s
                .run_procs(*run)
                .unwrap()
                .into_iter()
                .map(|p| p.name)
                .collect();
            let want: HashMap<String, f64> = in_run
                .iter()
                .filter_map(|n| Some((n.clone(), brute_median(&conn, key, n, *run)?)))
                .collect();
            assert_eq!(
                recorded(&s, key, *run).medians,
                want,
                "run {run} of {key:?}"
            );
        }
        for key in ["a.rhai", "b.rhai", ""] {
            let mut expected = ExpectedDurations::new(key);
            for n in &names {
                let want = brute_median(&conn, key, n, i64::MAX).map(Duration::from_secs_f64);
                assert_eq!(expected.get(&s, n), want, "{n} of script {key:?}");
            }
        }
    }

    #[test]
    fn procs_written_for_a_run_pruned_meanwhile_are_not_left_behind() {
        let dir = tempfile::tempdir().unwrap();
        let (mut conn, ..) = load(&dir.path().join("t.db")).unwrap();
        let (mut one, mut two) = (Recording::default(), Recording::default());
        commit(&mut conn, &mut one, vec![begin("s.rhai"), proc("a1")]);
        commit(&mut conn, &mut two, vec![begin("s.rhai"), end(1)]);
        commit(&mut conn, &mut one, vec![proc("a2"), proc("a3")]);
        let names: Vec<String> = conn
            .prepare("SELECT name FROM proc_runs")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        assert!(names.is_empty(), "{names:?}");
    }

    #[test]
    fn what_a_batch_commits_reaches_the_db_file_while_the_run_goes_on() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        let s = Store::open(&path, quiet()).unwrap();
        s.begin_run(&script("s.rhai"), &[], &now());
        s.record_proc(ProcRecord {
            name: "p".into(),
            state: "SUCCEEDED".into(),
            ..ProcRecord::default()
        });
        // The DB file alone, without its -wal: what a checkpoint copied into it (read
        // afresh each time: an immutable file is read once per connection).
        let in_file = || -> rusqlite::Result<i64> {
            Connection::open_with_flags(
                format!("file:{}?immutable=1", path.display()),
                rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_URI,
            )?
            .query_row("SELECT COUNT(*) FROM proc_runs", [], |r| r.get(0))
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        let copied = loop {
            let n = in_file().unwrap_or(0);
            if n == 1 || Instant::now() > deadline {
                break n;
            }
            std::thread::park_timeout(Duration::from_millis(10));
        };
        assert_eq!(
            copied, 1,
            "the batch is in the DB file before the store closes"
        );
        s.close();
    }

    #[test]
    fn scripts_sharing_a_db_each_have_their_own_history() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(&dir.path().join("t.db"), quiet()).unwrap();
        // `./a.rhai` and `a.rhai` typed differently are one script, known by its key.
        let a1 = ScriptName {
            shown: "a.rhai".into(),
            key: "/w/a.rhai".into(),
        };
        let a2 = ScriptName {
            shown: "./a.rhai".into(),
            key: "/w/a.rhai".into(),
        };
        let b = ScriptName {
            shown: "b.rhai".into(),
            key: "/w/b.rhai".into(),
        };
        for (script, d) in [(&a1, 1.0), (&b, 50.0), (&a2, 3.0), (&b, 70.0), (&b, 90.0)] {
            s.begin_run(script, &[], &now());
            record_timed(&s, "build", "SUCCEEDED", d);
            s.end_run(Duration::from_secs(1), "ok", "{}", 2);
        }
        s.close();
        let ids =
            |key: &str| -> Vec<i64> { s.history(key, 10).unwrap().iter().map(|r| r.id).collect() };
        assert_eq!(ids("/w/a.rhai"), [3, 1]);
        // Two runs kept of b: its first went, a's runs did not count against it.
        assert_eq!(ids("/w/b.rhai"), [5, 4]);
        let latest = s.recorded_run("/w/a.rhai", None).unwrap().unwrap();
        assert_eq!((latest.row.id, latest.row.script.as_str()), (3, "./a.rhai"));
        assert!(
            s.recorded_run("/w/a.rhai", Some(4)).unwrap().is_none(),
            "a run of b"
        );
        assert_eq!(
            ExpectedDurations::new("/w/a.rhai").get(&s, "build"),
            Some(Duration::from_secs(2)),
            "the median of a's 1 s and 3 s, not of b's"
        );
        let medians = recorded(&s, "/w/b.rhai", 5).medians;
        assert_eq!(medians.get("build"), Some(&70.0), "b's run 4 only");
    }

    #[test]
    fn runs_recorded_before_scripts_had_keys_are_every_scripts() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        let s = Store::open(&path, quiet()).unwrap();
        s.close();
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch(
            "INSERT INTO runs (id, script, args, started) VALUES (1, 'old.rhai', '[]', 'then');",
        )
        .unwrap();
        drop(conn);
        let ids = |key: &str| -> Vec<i64> {
            let s = Store::open(&path, quiet()).unwrap();
            s.history(key, 10).unwrap().iter().map(|r| r.id).collect()
        };
        let run = || {
            let s = Store::open(&path, quiet()).unwrap();
            s.begin_run(&script("new.rhai"), &[], &now());
            s.end_run(Duration::from_secs(1), "ok", "{}", 2);
        };
        run();
        assert_eq!(ids("other.rhai"), [1], "the old run is any script's");
        assert_eq!(ids("new.rhai"), [2, 1]);
        run();
        assert_eq!(
            ids("new.rhai"),
            [3, 2],
            "the old run counted among the two kept"
        );
        assert_eq!(ids("other.rhai"), Vec::<i64>::new());
    }

    #[test]
    fn a_corrupt_file_is_moved_aside() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        std::fs::write(&path, vec![7u8; 8192]).unwrap();
        let warned = Arc::new(Mutex::new(Vec::new()));
        let w = warned.clone();
        let s = Store::open(
            &path,
            Arc::new(move |m| w.lock().unwrap().push(m.to_string())),
        )
        .unwrap();
        assert!(s.load_cache().unwrap().is_empty());
        assert!(warned.lock().unwrap()[0].contains("corrupt"));
        let moved = std::fs::read_dir(dir.path())
            .unwrap()
            .flatten()
            .any(|e| e.file_name().to_string_lossy().contains("corrupt"));
        assert!(moved);
    }

    /// Overwrites the root page of `table` with garbage (after moving the WAL into the
    /// file), as a disk error inside the file would.
    fn corrupt_table(path: &Path, table: &str) {
        use std::io::{Seek, SeekFrom, Write};
        let conn = Connection::open(path).unwrap();
        conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
            .unwrap();
        let page: i64 = conn
            .query_row("PRAGMA page_size", [], |r| r.get(0))
            .unwrap();
        let root: i64 = conn
            .query_row(
                "SELECT rootpage FROM sqlite_master WHERE name = ?1",
                [table],
                |r| r.get(0),
            )
            .unwrap();
        drop(conn);
        let mut f = std::fs::OpenOptions::new().write(true).open(path).unwrap();
        f.seek(SeekFrom::Start(((root - 1) * page) as u64)).unwrap();
        f.write_all(&vec![0xA5; page as usize]).unwrap();
    }

    fn moved_aside(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.contains(".corrupt-") && !n.ends_with("-wal") && !n.ends_with("-shm"))
            .collect();
        names.sort();
        names
    }

    #[test]
    fn two_corrupt_files_moved_aside_at_once_both_stay() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        for garbage in [1u8, 2] {
            std::fs::write(&path, vec![garbage; 8192]).unwrap();
            Store::open(&path, quiet()).unwrap().close();
        }
        let aside = moved_aside(dir.path());
        assert_eq!(aside.len(), 2, "{aside:?}");
        let firsts: Vec<u8> = aside
            .iter()
            .map(|n| std::fs::read(dir.path().join(n)).unwrap()[0])
            .collect();
        assert_eq!(firsts, [1, 2]);
    }

    /// Saves a row, damages the DB with `damage`, and checks that the next open finds no
    /// cache, moves the file aside and keeps what is saved after.
    fn a_damaged_cache_is_moved_aside(damage: impl FnOnce(&Path)) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        let s = Store::open(&path, quiet()).unwrap();
        let row = CacheRow {
            result: "1".into(),
            fingerprint: "f".into(),
            stamp: "s".into(),
        };
        s.save("a", row.clone());
        s.close();
        damage(&path);
        let s = Store::open(&path, quiet()).unwrap();
        assert!(s.load_cache().unwrap().is_empty());
        s.save("a", row.clone());
        s.close();
        assert_eq!(moved_aside(dir.path()).len(), 1);
        let s = Store::open(&path, quiet()).unwrap();
        assert_eq!(s.load_cache().unwrap().get("a").map(|r| &**r), Some(&row));
    }

    #[test]
    fn a_corrupt_page_in_the_cache_is_moved_aside_at_open() {
        a_damaged_cache_is_moved_aside(|path| corrupt_table(path, "cache"));
    }

    #[test]
    fn a_cached_text_that_is_not_utf8_counts_as_corrupt_and_is_moved_aside() {
        a_damaged_cache_is_moved_aside(|path| {
            let conn = Connection::open(path).unwrap();
            conn.execute("UPDATE cache SET result = CAST(x'ff' AS TEXT)", [])
                .unwrap();
        });
    }

    #[test]
    fn a_corrupt_page_met_by_the_writer_moves_the_db_aside_and_the_batch_goes_to_a_new_one() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        Store::open(&path, quiet()).unwrap().close();
        let warned = Arc::new(Mutex::new(Vec::new()));
        let w = warned.clone();
        let s = Store::open(
            &path,
            Arc::new(move |m| w.lock().unwrap().push(m.to_string())),
        )
        .unwrap();
        corrupt_table(&path, "proc_runs");
        s.begin_run(&script("s.rhai"), &[], &now());
        s.record_proc(ProcRecord {
            name: "p".into(),
            state: "SUCCEEDED".into(),
            ..ProcRecord::default()
        });
        s.end_run(Duration::from_secs(1), "ok", "{}", 100);
        s.close();
        let warned = warned.lock().unwrap().join("\n");
        assert!(warned.contains("corrupt"), "{warned}");
        assert_eq!(moved_aside(dir.path()).len(), 1, "{warned}");
        let s = Store::open(&path, quiet()).unwrap();
        let runs = s.history("s.rhai", 10).unwrap();
        assert_eq!(runs.len(), 1);
        assert_eq!(runs[0].outcome.as_deref(), Some("ok"));
        assert_eq!(s.run_procs(runs[0].id).unwrap()[0].name, "p");
    }

    #[test]
    fn a_corrupt_page_met_by_a_read_moves_the_db_aside() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        let s = Store::open(&path, quiet()).unwrap();
        s.begin_run(&script("s.rhai"), &[], &now());
        s.end_run(Duration::from_secs(1), "ok", "{}", 100);
        s.close();
        corrupt_table(&path, "runs");
        let s = Store::open(&path, quiet()).unwrap();
        assert!(s.history("s.rhai", 10).is_err());
        assert_eq!(moved_aside(dir.path()).len(), 1);
        assert!(s.history("s.rhai", 10).unwrap().is_empty());
    }

    #[test]
    fn a_db_opened_to_read_only_makes_no_file_and_is_read_as_it_was_while_held() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        let run = || {
            let s = Store::open(&path, quiet()).unwrap();
            s.begin_run(&script("s.rhai"), &[], &now());
            s.end_run(Duration::from_secs(1), "ok", "{}", 100);
            s.close();
        };
        run();
        let files = || {
            let mut names: Vec<String> = std::fs::read_dir(dir.path())
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect();
            names.sort();
            names
        };
        assert_eq!(files(), ["t.db"]);
        let reader = Store::open_read_only(&path, quiet()).unwrap();
        assert_eq!(reader.history("s.rhai", 10).unwrap().len(), 1);
        assert_eq!(files(), ["t.db"], "no -wal or -shm made to read it");
        // A run that ends while the reader holds the DB cannot move its -wal into the DB
        // file under the reader's feet: it leaves it.
        run();
        assert_eq!(files(), ["t.db", "t.db-shm", "t.db-wal"]);
        assert_eq!(reader.history("s.rhai", 10).unwrap().len(), 1);
        drop(reader);
        let reader = Store::open_read_only(&path, quiet()).unwrap();
        assert_eq!(
            reader.history("s.rhai", 10).unwrap().len(),
            2,
            "read through the -wal"
        );
    }

    #[test]
    fn a_reader_waits_while_a_writer_holds_the_db_file_then_reads_what_it_committed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        let s = Store::open(&path, quiet()).unwrap();
        s.begin_run(&script("s.rhai"), &[], &now());
        s.end_run(Duration::from_secs(1), "ok", "{}", 100);
        s.close();
        // A DB in rollback mode, written in place under an exclusive lock.
        let blocker = Connection::open(&path).unwrap();
        blocker
            .execute_batch("PRAGMA journal_mode = DELETE; BEGIN EXCLUSIVE; DELETE FROM runs;")
            .unwrap();
        let (tx, rx) = mpsc::channel();
        let reading = path.clone();
        std::thread::spawn(move || {
            let runs = Store::open_read_only(&reading, quiet())
                .and_then(|r| r.history("s.rhai", 10))
                .map(|h| h.len());
            tx.send(runs).unwrap();
        });
        assert!(rx.try_recv().is_err(), "it did not read a DB being written");
        blocker.execute_batch("COMMIT").unwrap();
        let runs = rx.recv_timeout(Duration::from_secs(60)).expect("read");
        assert_eq!(runs.unwrap(), 0, "what the writer committed");
    }

    #[test]
    fn a_new_db_file_is_0600_in_a_0700_directory() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("new/t.db");
        let s = Store::open(&path, quiet()).unwrap();
        s.save(
            "a",
            CacheRow {
                result: "1".into(),
                fingerprint: "f".into(),
                stamp: "s".into(),
            },
        );
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        s.close();
        assert_eq!(mode(&path), 0o600);
        assert_eq!(mode(&dir.path().join("new")), 0o700);
    }
}

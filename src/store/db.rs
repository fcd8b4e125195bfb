//! [`Store`]: opening the task DB (with its fault handling), reading its cache, and the
//! calls that send the writer thread (`writer.rs`) what to record.

use std::collections::HashMap;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime};

use rusqlite::config::DbConfig;
use rusqlite::{Connection, ErrorCode, TransactionBehavior};

use super::StoreError;
use super::schema;
use super::writer::{Msg, writer};

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
    /// The watch cycle it ran in (0: the first run); `None` in a row recorded before the
    /// history kept it.
    pub cycle: Option<u32>,
    /// Its wave; `None` in a row recorded before the history kept it.
    pub wave: Option<i64>,
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

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

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

pub(super) fn now() -> String {
    humantime::format_rfc3339_millis(SystemTime::now()).to_string()
}

pub(super) fn connect(path: &Path) -> rusqlite::Result<Connection> {
    let conn = Connection::open(path)?;
    schema::harden(&conn)?;
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
pub(super) fn is_corrupt(e: &rusqlite::Error) -> bool {
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
pub(super) fn prepare(path: &Path) -> Result<(), StoreError> {
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
    crate::paths::check_db_dir(path).map_err(file_err)?;
    crate::paths::open_private_file(path, Readers::AsOwnerSays).map_err(file_err)?;
    for side in ["-wal", "-shm", "-journal"] {
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

/// A DB opened by [`load`].
enum Loaded {
    /// Its schema brought up to date, and its cache.
    Ready(Connection, CacheRows),
    /// Of a newer schema (the version found) than this prun's: neither changed nor read.
    TooNew(Connection, i64),
    /// Holding an object prun did not make (see [`schema::foreign_object`]): refused.
    Foreign(String),
}

/// Opens the DB, checks that it holds only what prun makes, brings its schema up to
/// date and reads the cache (unless the schema is newer than this prun's).
fn load(path: &Path) -> rusqlite::Result<Loaded> {
    let mut conn = connect(path)?;
    let found: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if found > schema::VERSION {
        return Ok(Loaded::TooNew(conn, found));
    }
    if let Some(what) = schema::foreign_object(&conn)? {
        return Ok(Loaded::Foreign(what));
    }
    schema::upgrade(&mut conn, found)?;
    conn.set_transaction_behavior(TransactionBehavior::Immediate);
    let cache = read_cache(&conn)?;
    Ok(Loaded::Ready(conn, cache))
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
pub(super) fn start_over(path: &Path) -> Result<(PathBuf, Connection), StartOverError> {
    let aside = move_aside(path).map_err(StartOverError::MoveAside)?;
    prepare(path).map_err(|e| StartOverError::Prepare(Box::new(e)))?;
    let mut conn = connect(path).map_err(StartOverError::New)?;
    schema::migrate(&mut conn).map_err(StartOverError::New)?;
    conn.set_transaction_behavior(TransactionBehavior::Immediate);
    Ok((aside, conn))
}

/// What [`Store::open`] does before the writer starts: makes the file ready, opens it,
/// brings its schema up to date and reads the cache. A file that is not a valid DB, or
/// whose cache cannot be read because it is corrupt, is moved aside (with a warning) and
/// a new one is made in its place.
fn connect_and_load(path: &Path, warn: &Warn) -> Result<(Connection, CacheRows), StoreError> {
    prepare(path)?;
    match load(path) {
        Ok(Loaded::TooNew(conn, found)) => Err(StoreError::TooNew {
            path: path.to_path_buf(),
            found,
            known: schema::VERSION,
            by: schema::written_by(&conn),
        }),
        Ok(Loaded::Foreign(what)) => Err(StoreError::Foreign {
            path: path.to_path_buf(),
            what,
        }),
        Ok(Loaded::Ready(conn, cache)) => Ok((conn, cache)),
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
    pub(super) fn read<T>(
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

    /// Queues a cache row, whatever row of its proc the DB holds.
    pub(crate) fn save(&self, name: &str, row: CacheRow) {
        self.send(Msg::Save(name.to_string(), row, None));
    }

    /// Queues a cache row of a proc whose row this run last saw with the stamp `seen`
    /// (`None`: none). When the DB then holds another row of it, another run saved it
    /// since, having run it at the same time as this one: both rows are dropped.
    pub(crate) fn save_seen(&self, name: &str, row: CacheRow, seen: Option<String>) {
        self.send(Msg::Save(name.to_string(), row, Some(seen)));
    }

    /// Queues the removal of a proc's cached result (it failed: its old result is stale).
    pub(crate) fn invalidate(&self, name: &str) {
        self.send(Msg::Invalidate(name.to_string()));
    }

    /// Removes the cached results of `names` and waits until that is committed. For procs
    /// about to run again while their cached result still matches: were the run killed
    /// while they run, the next one would otherwise take that result beside half-written
    /// outputs. `Err` says why the commit failed (a full disk, a read-only file system):
    /// the rows are still there.
    pub(crate) fn forget_now(&self, names: Vec<String>) -> Result<(), StoreError> {
        if names.is_empty() || self.held.is_some() {
            return Ok(());
        }
        let (ack, done) = mpsc::channel();
        self.send(Msg::Forget(names, ack));
        if self.on_writer() {
            return Ok(());
        }
        let why = done
            .recv()
            .unwrap_or_else(|_| Some("its writer has stopped".into()));
        match why {
            None => Ok(()),
            Some(why) => Err(StoreError::Write {
                path: self.path.clone(),
                why,
            }),
        }
    }

    /// Queues the end of a run, with why it stopped when an error stopped it (`error`,
    /// recorded with the run's secrets masked), and the pruning of the script's history to
    /// its last `keep_runs` runs (0: none is pruned). The cache is not history: it stays
    /// whole.
    pub(crate) fn end_run(
        &self,
        duration: Duration,
        outcome: &str,
        counts: &str,
        keep_runs: u64,
        error: Option<&str>,
    ) {
        self.send(Msg::EndRun {
            duration: duration.as_secs_f64(),
            outcome: outcome.to_string(),
            counts: counts.to_string(),
            keep_runs,
            error: error.map(|e| crate::redact::redact(e).into_owned()),
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
}

impl Drop for Store {
    fn drop(&mut self) {
        self.close();
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::history::{ExpectedDurations, RUN_ROWS, RecordedRun};
    use crate::store::writer::{DROP_PROCS, DROP_RUN, Recording, apply, checkpoint, pruned_runs};
    use rusqlite::params;
    use std::collections::HashSet;
    use std::time::Instant;

    /// The DB at `path` as [`load`] opens it, which must be ready to use.
    fn loaded(path: &Path) -> (Connection, CacheRows) {
        match load(path).unwrap() {
            Loaded::Ready(conn, cache) => (conn, cache),
            Loaded::TooNew(..) | Loaded::Foreign(_) => panic!("not ready: {}", path.display()),
        }
    }

    /// A script known by the name it was given (no such file: its key is that name).
    fn script(name: &str) -> ScriptName {
        ScriptName::of(Path::new(name))
    }

    fn quiet() -> Warn {
        Arc::new(|_| {})
    }

    #[test]
    fn a_runs_row_is_committed_without_waiting_for_the_batch_window() {
        let begin = super::super::writer::Msg::BeginRun {
            script: script("s.rhai"),
            args: "[]".into(),
            started: "2026-12-02T00:00:00.000Z".into(),
        };
        assert!(begin.is_urgent());
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        let s = Store::open(&path, quiet()).unwrap();
        s.begin_run(&script("s.rhai"), &[], "2026-12-02T00:00:00.000Z");
        let other = connect(&path).unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        while other
            .query_row("SELECT COUNT(*) FROM runs", [], |r| r.get::<_, i64>(0))
            .unwrap_or(0)
            == 0
        {
            assert!(Instant::now() < deadline, "the run's row was not committed");
            std::thread::sleep(Duration::from_millis(5));
        }
        s.close();
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
            store.end_run(Duration::from_secs(1), "ok", "{}", 0, None);
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
            s.end_run(Duration::from_secs(1), "ok", "{}", 100, None);
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
            s.end_run(Duration::from_secs(1), "ok", "{}", 0, None);
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
            s.end_run(Duration::from_secs(1), "ok", "{}", 0, None);
        }
        for _ in 0..12 {
            s.begin_run(&script("s.rhai"), &[], &now());
            record("test", 1.0);
            s.end_run(Duration::from_secs(1), "ok", "{}", 0, None);
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
            s.end_run(Duration::from_secs(1), "ok", "{}", 0, None);
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
        s.end_run(Duration::from_secs(1), "ok", "{}", 0, None);
        for _ in 0..5 {
            s.begin_run(&script("s.rhai"), &[], &now());
            s.record_proc(ProcRecord {
                name: "p".into(),
                state: "SUCCEEDED".into(),
                ..ProcRecord::default()
            });
            s.end_run(Duration::from_secs(1), "ok", "{}", 2, None);
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
        let (conn, ..) = loaded(&dir.path().join("t.db"));
        let read = plan(
            &conn,
            &format!("SELECT name FROM proc_runs WHERE {RUN_ROWS}"),
        );
        assert!(
            read.contains("SEARCH proc_runs USING INTEGER PRIMARY KEY"),
            "{read}"
        );
        let prune = plan(&conn, DROP_PROCS);
        assert!(
            prune.contains("SEARCH proc_runs USING INTEGER PRIMARY KEY"),
            "{prune}"
        );
        let runs = plan(&conn, DROP_RUN);
        assert!(runs.contains("USING INTEGER PRIMARY KEY"), "{runs}");
        for going in [0, 1, 3] {
            let pruned = plan(&conn, &pruned_runs(going));
            assert!(
                pruned.contains("SEARCH runs USING COVERING INDEX runs_by_start"),
                "{pruned}"
            );
            assert!(!pruned.contains("json"), "{pruned}");
        }
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
            error: None,
        }
    }

    /// How many pages of the DB a run of 300 procs changes (the frames its commit adds to
    /// the `-wal`), written after `earlier` runs of the same procs.
    fn pages_a_run_changes_after(earlier: usize) -> i64 {
        let dir = tempfile::tempdir().unwrap();
        let (mut conn, ..) = loaded(&dir.path().join("t.db"));
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
        s.end_run(Duration::from_secs(1), "ok", "{}", 0, None);
        drop(s);
        // No `-wal` left: the reader reads the DB file itself.
        let reader = Store::open_read_only(&path, quiet()).unwrap();
        let before = std::fs::read(&path).unwrap();
        let (mut conn, ..) = loaded(&path);
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
        // The reader's lock goes with its open file, which a process another test spawns
        // meanwhile holds too, for the moment between its fork and its exec: the
        // checkpoint is then left to the next try, as a run's writer leaves it to its next
        // batch.
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            checkpoint(&path, Some(&conn));
            if std::fs::read(&path).unwrap() != before {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "checkpointed once no one reads it"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    #[test]
    fn two_runs_written_at_once_each_keep_their_own_procs_and_are_pruned_alone() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        let (mut conn, ..) = loaded(&path);
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
        // The second ends keeping one run of the script: the first, still going (its
        // prun, this process, runs), stays and counts, as its log directory does.
        commit(&mut conn, &mut two, vec![end(1)]);
        assert_eq!(names(1), ["a1", "a2"]);
        // The first ends keeping one: the second, ended, goes with its procs.
        commit(&mut conn, &mut one, vec![end(1)]);
        assert!(names(2).is_empty());
        assert_eq!(names(1), ["a1", "a2"]);
        let left: i64 = conn
            .query_row("SELECT COUNT(*) FROM proc_runs", [], |r| r.get(0))
            .unwrap();
        assert_eq!(left, 2, "the pruned run's procs are deleted, no other");
    }

    /// The parallel limit a run sends just before its end is recorded with the end when
    /// both come in one batch, and on its own when the end comes in a later one.
    #[test]
    fn the_parallel_limit_is_recorded_with_the_run_s_end_or_alone() {
        let dir = tempfile::tempdir().unwrap();
        let (mut conn, ..) = loaded(&dir.path().join("t.db"));
        let mut together = Recording::default();
        commit(
            &mut conn,
            &mut together,
            vec![begin("s.rhai"), Msg::Parallel(3), end(0)],
        );
        let mut apart = Recording::default();
        commit(
            &mut conn,
            &mut apart,
            vec![begin("s.rhai"), Msg::Parallel(5)],
        );
        let parallel = |id: i64| -> Option<i64> {
            conn.query_row("SELECT parallel FROM runs WHERE id = ?1", [id], |r| {
                r.get(0)
            })
            .unwrap()
        };
        assert_eq!((parallel(1), parallel(2)), (Some(3), Some(5)));
        commit(&mut conn, &mut apart, vec![end(0)]);
        let runs: Vec<(Option<i64>, Option<String>)> = conn
            .prepare("SELECT parallel, outcome FROM runs ORDER BY id")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        let ok = Some("ok".to_string());
        assert_eq!(runs, [(Some(3), ok.clone()), (Some(5), ok)]);
    }

    /// Runs are pruned in the order they started, as their log directories are (named by
    /// it), not in the order their rows were written: a run that started first and wrote
    /// its row last (its first proc ended after another run's) goes first.
    #[test]
    fn runs_are_pruned_in_the_order_they_started() {
        let dir = tempfile::tempdir().unwrap();
        let (mut conn, ..) = loaded(&dir.path().join("t.db"));
        let started = |at: &str| Msg::BeginRun {
            script: script("s.rhai"),
            args: "[]".into(),
            started: at.into(),
        };
        let (mut late, mut early, mut last) = Default::default();
        commit(
            &mut conn,
            &mut late,
            vec![started("2026-01-01T00:00:02.000Z"), end(0)],
        );
        commit(
            &mut conn,
            &mut early,
            vec![started("2026-01-01T00:00:01.000Z"), end(0)],
        );
        commit(
            &mut conn,
            &mut last,
            vec![started("2026-01-01T00:00:03.000Z"), end(2)],
        );
        let ids: Vec<i64> = conn
            .prepare("SELECT id FROM runs ORDER BY id")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        assert_eq!(ids, [1, 3], "the run that started first, row 2, went");
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
        let (mut conn, ..) = loaded(&path);
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
        let (mut conn, ..) = loaded(&dir.path().join("t.db"));
        let (mut one, mut two) = (Recording::default(), Recording::default());
        commit(&mut conn, &mut one, vec![begin("s.rhai"), proc("a1")]);
        // Run on another machine sharing the DB: whether it still goes cannot be told.
        conn.execute(
            "UPDATE runs SET owner = json_set(owner, '$.host', 'far', '$.boot', 'other')",
            [],
        )
        .unwrap();
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
            s.end_run(Duration::from_secs(1), "ok", "{}", 2, None);
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
            "INSERT INTO runs (id, script, args, started) VALUES (1, 'old.rhai', '[]', '2001-01-01T00:00:00.000Z');",
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
            s.end_run(Duration::from_secs(1), "ok", "{}", 2, None);
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
    fn history_text_that_is_not_utf8_is_read_lossily_not_taken_for_a_corrupt_db() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        let s = Store::open(&path, quiet()).unwrap();
        for d in [2.0, 4.0] {
            s.begin_run(&script("s.rhai"), &[], &now());
            record_timed(&s, "a", "SUCCEEDED", d);
            record_timed(&s, "b", "SUCCEEDED", d);
            s.end_run(Duration::from_secs(1), "ok", "{}", 100, None);
        }
        s.close();
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch(
            "UPDATE proc_runs SET name = CAST(x'62ff' AS TEXT), duration = 'x' WHERE name = 'b';
             UPDATE runs SET outcome = CAST(x'ff' AS TEXT) WHERE id = 1;",
        )
        .unwrap();
        drop(conn);
        // A run's own store, which moves a DB it finds corrupt aside.
        let s = Store::open(&path, quiet()).unwrap();
        assert_eq!(
            ExpectedDurations::new("s.rhai").get(&s, "a"),
            Some(Duration::from_secs(3)),
            "the live display's expected duration, beside a row it cannot use"
        );
        let runs = s.history("s.rhai", 10).unwrap();
        assert_eq!(runs[1].outcome.as_deref(), Some("\u{fffd}"));
        let procs = s.run_procs(2).unwrap();
        assert_eq!(procs[1].name, "b\u{fffd}");
        assert_eq!(procs[1].duration, None);
        assert!(recorded(&s, "s.rhai", 2).medians.contains_key("a"));
        s.close();
        assert!(moved_aside(dir.path()).is_empty());
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
        s.end_run(Duration::from_secs(1), "ok", "{}", 100, None);
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
        s.end_run(Duration::from_secs(1), "ok", "{}", 100, None);
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
            s.end_run(Duration::from_secs(1), "ok", "{}", 100, None);
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
        s.end_run(Duration::from_secs(1), "ok", "{}", 100, None);
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

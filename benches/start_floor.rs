//! The floor under case 4 of `benches/compare.sh` (start-up plus one trivial proc): a
//! program that does only what any runner of prun's scripts must do for
//! `proc("one", #{ cmd: ["/usr/bin/true"] }); run("one");` and nothing else.
//!
//! It reads the script, builds Rhai's engine with the features prun uses, runs the script
//! with a `proc` and a `run` that only record the command, starts that command and waits
//! for it, while a second thread opens a SQLite DB in WAL mode, makes sure its two tables
//! exist and records the run and the proc in one transaction. No command line parsing, no
//! state directory, log, crash journal, signal handling, async runtime or policy: what
//! prun takes above this program's time is what those cost it.
//!
//! Given a state directory too, it also does the least of what prun's own start and end
//! add, each the simplest way: a command line of twenty flags read with clap, the abort
//! signals taken by a thread of `signal-hook`, an async runtime of two workers that awaits
//! the command, the command in its own process group with its output in a log file under
//! the state directory, and a crash journal naming the group while it runs.
//!
//! ```text
//! cargo build --release --example start_floor
//! target/<host tuple>/release/examples/start_floor one.rhai /tmp/floor.db
//! target/<host tuple>/release/examples/start_floor one.rhai /tmp/floor.db /tmp/floor-state
//! ```

use std::sync::{Arc, Mutex};

type Commands = Arc<Mutex<Vec<Vec<String>>>>;

/// Records one run and one proc in the DB at `path`, as a run's history does.
fn record(path: &str) -> rusqlite::Result<()> {
    let mut db = rusqlite::Connection::open(path)?;
    db.pragma_update(None, "journal_mode", "wal")?;
    db.pragma_update(None, "synchronous", "off")?;
    db.execute_batch(
        "CREATE TABLE IF NOT EXISTS runs (id INTEGER PRIMARY KEY, script TEXT, started TEXT);
         CREATE TABLE IF NOT EXISTS procs (run INTEGER, name TEXT, status TEXT, seconds REAL);",
    )?;
    let tx = db.transaction()?;
    tx.execute(
        "INSERT INTO runs (script, started) VALUES ('one', datetime('now'))",
        [],
    )?;
    let run = tx.last_insert_rowid();
    tx.execute(
        "INSERT INTO procs VALUES (?1, 'one', 'SUCCEEDED', 0.001)",
        [run],
    )?;
    tx.commit()
}

/// The commands the script's `proc` calls give, in order.
fn commands_of(script: &str) -> Result<Vec<Vec<String>>, String> {
    let commands = Commands::default();
    let mut engine = rhai::Engine::new();
    let seen = commands.clone();
    engine.register_fn(
        "proc",
        move |_name: &str, def: rhai::Map| -> Result<(), Box<rhai::EvalAltResult>> {
            let words = def
                .get("cmd")
                .and_then(|c| c.clone().into_typed_array::<String>().ok())
                .ok_or("cmd must be an array of strings")?;
            seen.lock().expect("commands").push(words);
            Ok(())
        },
    );
    engine.register_fn("run", |_pattern: &str| {});
    engine.run(script).map_err(|e| e.to_string())?;
    let found = commands.lock().expect("commands").clone();
    Ok(found)
}

/// Runs `words` the simplest way: started, waited for, its status checked.
fn run_plainly(words: &[String]) -> Result<(), String> {
    let (program, rest) = words.split_first().ok_or("an empty cmd")?;
    let status = std::process::Command::new(program)
        .args(rest)
        .status()
        .map_err(|e| format!("{program}: {e}"))?;
    status
        .success()
        .then_some(())
        .ok_or_else(|| format!("{program}: {status}"))
}

/// A command line of twenty flags, as many as a run of prun reads.
#[derive(clap::Parser)]
#[allow(dead_code, reason = "only parsed: what reading a command line costs")]
struct Words {
    script: String,
    db: String,
    state: String,
    #[arg(short = 'j', long)]
    parallel: Option<u32>,
    #[arg(long)]
    fail_fast: bool,
    #[arg(short, long)]
    verbose: bool,
    #[arg(short, long)]
    quiet: bool,
    #[arg(long)]
    no_db: bool,
    #[arg(long)]
    full: bool,
    #[arg(long)]
    full_log_on_failure: bool,
    #[arg(long)]
    json: Option<String>,
    #[arg(long)]
    dry_run: bool,
    #[arg(long)]
    watch: bool,
    #[arg(long)]
    live: bool,
    #[arg(long)]
    no_live: bool,
    #[arg(long)]
    output: Option<String>,
    #[arg(long)]
    lock: Option<String>,
    #[arg(long)]
    allow: Vec<String>,
    #[arg(long)]
    no_shell: bool,
    #[arg(long)]
    deny_env: Vec<String>,
    #[arg(long)]
    log_dir: Option<String>,
    #[arg(long)]
    timeout: Option<String>,
    #[arg(long)]
    keep_runs: Option<u64>,
}

/// Runs `words` as prun's start and end would at the least: its output in a log under
/// `state`, its own process group recorded in a crash journal while it runs, awaited on
/// an async runtime while a thread takes the abort signals.
fn run_with_essentials(words: &[String], state: &std::path::Path) -> Result<(), String> {
    use signal_hook::consts::{SIGHUP, SIGINT, SIGQUIT, SIGTERM};
    let io = |e: std::io::Error| e.to_string();
    let mut signals =
        signal_hook::iterator::Signals::new([SIGINT, SIGTERM, SIGHUP, SIGQUIT]).map_err(io)?;
    let taken = signals.handle();
    let listener = std::thread::spawn(move || signals.forever().next());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(io)?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos();
    let logs = state.join("logs").join(now.to_string());
    let groups = state.join("groups");
    std::fs::create_dir_all(&logs).map_err(io)?;
    std::fs::create_dir_all(&groups).map_err(io)?;
    let log = std::fs::File::create(logs.join("one.log")).map_err(io)?;
    let (program, rest) = words.split_first().ok_or("an empty cmd")?;
    let journal = groups.join(std::process::id().to_string());
    let status = runtime.block_on(async {
        let mut child = tokio::process::Command::new(program)
            .args(rest)
            .stdin(std::process::Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .process_group(0)
            .spawn()?;
        let pgid = child.id().unwrap_or_default();
        // Waited for even when the journal cannot be written: no child is left behind.
        let written = std::fs::write(&journal, format!("+ {pgid} one\n"));
        let status = child.wait().await?;
        written.map(|()| status)
    });
    // No journal when the command did not start: its own error is the one to tell.
    let removed = match std::fs::remove_file(&journal) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        r => r,
    };
    taken.close();
    listener.join().map_err(|_| "the signal thread panicked")?;
    runtime.shutdown_background();
    let status = status.map_err(|e| format!("{program}: {e}"))?;
    removed.map_err(|e| format!("{}: {e}", journal.display()))?;
    status
        .success()
        .then_some(())
        .ok_or_else(|| format!("{program}: {status}"))
}

fn main() -> Result<(), String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (script, db, state) = match args.as_slice() {
        [script, db] => (script.clone(), db.clone(), None),
        [_, _, _] => {
            let words = <Words as clap::Parser>::parse();
            (words.script, words.db, Some(words.state))
        }
        _ => return Err("usage: start_floor SCRIPT DB [STATE_DIR]".into()),
    };
    let history = std::thread::spawn(move || record(&db));
    let text = std::fs::read_to_string(&script).map_err(|e| format!("{script}: {e}"))?;
    for words in commands_of(&text)? {
        match &state {
            Some(dir) => run_with_essentials(&words, std::path::Path::new(dir))?,
            None => run_plainly(&words)?,
        }
    }
    history
        .join()
        .map_err(|_| "the DB thread panicked")?
        .map_err(|e| e.to_string())
}

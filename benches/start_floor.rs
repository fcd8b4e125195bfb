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
//! ```text
//! cargo build --release --example start_floor
//! target/<host tuple>/release/examples/start_floor one.rhai /tmp/floor.db
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

fn main() -> Result<(), String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [script, db] = args.as_slice() else {
        return Err("usage: start_floor SCRIPT DB".into());
    };
    let db = db.clone();
    let history = std::thread::spawn(move || record(&db));
    let text = std::fs::read_to_string(script).map_err(|e| format!("{script}: {e}"))?;
    for words in commands_of(&text)? {
        let (program, rest) = words.split_first().ok_or("an empty cmd")?;
        let status = std::process::Command::new(program)
            .args(rest)
            .status()
            .map_err(|e| format!("{program}: {e}"))?;
        if !status.success() {
            return Err(format!("{program}: {status}"));
        }
    }
    history
        .join()
        .map_err(|_| "the DB thread panicked")?
        .map_err(|e| e.to_string())
}

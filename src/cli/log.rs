//! `prun log`: the latest log of a proc, or of the script's top level (`.script.log`),
//! printed once or, with `--follow`, as it grows while its job (or the run) lasts.
//!
//! A job is running while a live run's journal (`<state>/groups/<prun pid>`, see
//! `exec::crashed`) names it as started and not ended: the journal's `O` line is its
//! prun's start time, which the live process with that pid has. The journal gives the log
//! the job writes (a command body's may not exist yet: it gets its name once it prints).
//! The top level's log is followed in the newest run directory while a run holds that
//! directory's lock (see `exec::log::LogDir`). The file is read again every
//! [`POLL`]; what it holds when the job or the run has ended is printed before `prun log`
//! exits. A follow ends early, quietly, when stdout is closed (`| head -1`); one whose log
//! was never made prints what `prun log` prints without `--follow`.

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::error::Failure;
use crate::exit::Exit;

/// Whose log `prun log` prints.
#[derive(Debug)]
pub(crate) enum LogOf {
    /// A proc's, by name.
    Proc(String),
    /// The script's top level's (`--script`).
    TopLevel,
}

/// How often a followed log is read again, and the job or run looked at.
const POLL: Duration = Duration::from_millis(100);

/// The top level's log file in a run directory.
const TOP_LEVEL_LOG: &str = ".script.log";

/// `prun log SCRIPT PROC` and `prun log SCRIPT --script`, with `--follow`.
pub(super) fn log(script: &Path, of: &LogOf, follow: bool) -> Result<Exit, Failure> {
    let root = crate::script::recorded_place(script, "log_dir", "logs")?;
    let live = if follow {
        match of {
            LogOf::Proc(name) => running_job(script, name),
            LogOf::TopLevel => running_top_level(&root),
        }
    } else {
        None
    };
    if let Some(live) = live
        && let Some(exit) = follow_log(&live)?
    {
        return Ok(exit);
    }
    let found = match of {
        LogOf::Proc(name) => crate::exec::log::latest(&root, name),
        LogOf::TopLevel => crate::exec::log::latest_file(&root, TOP_LEVEL_LOG),
    }
    .map_err(|source| Failure::ReadLog {
        path: root.clone(),
        source,
    })?;
    let Some(path) = found else {
        return Err(no_log(script, of, root));
    };
    // As written: the output of a command need not be UTF-8.
    let text = crate::exec::log::read(&path).map_err(|source| Failure::ReadLog {
        path: path.clone(),
        source,
    })?;
    let mut shown = format!("# {}\n", path.display()).into_bytes();
    shown.extend_from_slice(text.trim_ascii_end());
    shown.push(b'\n');
    print(&shown)?;
    Ok(Exit::Ok)
}

/// The error for a log that is nowhere, with the nearest procs that have one (or, for a
/// script with no run at all, the nearest scripts that have runs).
fn no_log(script: &Path, of: &LogOf, root: PathBuf) -> Failure {
    let logged = crate::exec::log::logged(&root);
    // A run that printed nothing leaves a run directory and no log: the script has
    // runs, so no other script is offered as the one meant.
    let ran = std::fs::read_dir(&root).is_ok_and(|mut runs| runs.next().is_some());
    let (of, hint) = match of {
        LogOf::Proc(name) => {
            let hint = if logged.is_empty() && !ran {
                scripts_hint(script)
            } else {
                crate::suggest::hint(name, logged.iter().map(String::as_str), "\"")
            };
            (format!("proc \"{name}\""), hint)
        }
        LogOf::TopLevel => {
            let hint = if ran {
                String::new()
            } else {
                scripts_hint(script)
            };
            (format!("the script's top level ({TOP_LEVEL_LOG})"), hint)
        }
    };
    Failure::NoLog { of, root, hint }
}

/// `prun log` of a script that has no log at all: `; no run of buld.rhai is recorded`,
/// with `; did you mean `build.rhai`?` when a script near it has runs recorded.
fn scripts_hint(script: &Path) -> String {
    // A script with a task DB has runs (its procs printed nothing, or only its top level
    // did, to `.script.log`): offering other scripts, itself among them, would say it
    // has none.
    let has_db = crate::script::recorded_place(script, "task_db", "tasks.db")
        .is_ok_and(|db| !crate::store::missing(&db));
    let near = crate::suggest::recorded_script_hint(script);
    if has_db {
        return String::new();
    }
    format!(
        "; no run of {} is recorded{near}",
        crate::shown::path(script)
    )
}

fn print(bytes: &[u8]) -> Result<(), Failure> {
    crate::report::print_text(bytes).map_err(|source| Failure::Write {
        path: "stdout".into(),
        source,
    })
}

/// A log being written, and what says whether its writer still runs.
struct Live {
    log: PathBuf,
    until: Until,
}

/// What ends a follow.
enum Until {
    /// The end of the job of proc `name` in the run whose journal is `journal`.
    JobEnds { journal: PathBuf, name: String },
    /// The end of the run that holds the run directory `dir`.
    RunEnds { dir: PathBuf },
}

impl Until {
    fn running(&self) -> bool {
        match self {
            Until::JobEnds { journal, name } => {
                live_journal(journal).is_some_and(|text| runs_job(&text, name).is_some())
            }
            Until::RunEnds { dir } => held(dir),
        }
    }
}

/// The log of the job of proc `name` that a live run of `script` is running, if one is.
fn running_job(script: &Path, name: &str) -> Option<Live> {
    let dir = crate::paths::script_state_dir(script).join("groups");
    let mut journals: Vec<PathBuf> = std::fs::read_dir(dir)
        .ok()?
        .flatten()
        .filter(|e| {
            let file = e.file_name();
            let file = file.to_string_lossy();
            !file.starts_with('.') && e.file_type().is_ok_and(|t| t.is_file())
        })
        .map(|e| e.path())
        .collect();
    journals.sort();
    journals.into_iter().find_map(|journal| {
        let log = runs_job(&live_journal(&journal)?, name)?;
        Some(Live {
            log: from_run_dir(&journal, log),
            until: Until::JobEnds {
                journal,
                name: name.to_string(),
            },
        })
    })
}

/// The log a journal names, found from here: a relative `log_dir` is relative to the
/// directory its run was started in, which need not be this one.
fn from_run_dir(journal: &Path, log: PathBuf) -> PathBuf {
    if log.is_absolute() {
        return log;
    }
    let run_dir =
        journal_pid(journal).and_then(|pid| std::fs::read_link(format!("/proc/{pid}/cwd")).ok());
    match run_dir {
        Some(dir) if std::env::current_dir().is_ok_and(|here| here != dir) => dir.join(log),
        _ => log,
    }
}

/// The pid of the prun whose journal is at `path` (its name is the pid).
fn journal_pid(path: &Path) -> Option<i32> {
    path.file_name()?.to_str()?.split('.').next()?.parse().ok()
}

/// The log the journal's text names for proc `name`, while it names it as running.
fn runs_job(text: &str, name: &str) -> Option<PathBuf> {
    crate::exec::crashed::running_logs(text)
        .into_iter()
        .find_map(|(n, log)| (n == name).then_some(log))
}

/// The text of the journal at `path`, while its run is live: the prun its name and its
/// `O` line give (a pid, with its start time) still runs. A journal is removed when its
/// run ends; one a crash left names a prun that is gone.
fn live_journal(path: &Path) -> Option<String> {
    let pid = journal_pid(path)?;
    // Read lossily, as the next run reads a crashed one's: a line cut inside a character
    // (a full disk) does not hide the lines before it.
    let text = String::from_utf8_lossy(&std::fs::read(path).ok()?).into_owned();
    let started: u64 = text
        .lines()
        .find_map(|l| l.strip_prefix("O "))?
        .parse()
        .ok()?;
    (crate::procfs::start_time(pid) == Some(started)).then_some(text)
}

/// The top level's log of the run going on now: the newest run directory's, while a run
/// holds that directory.
fn running_top_level(root: &Path) -> Option<Live> {
    let dir = crate::exec::log::newest_run_dir(root)?;
    held(&dir).then(|| Live {
        log: dir.join(TOP_LEVEL_LOG),
        until: Until::RunEnds { dir },
    })
}

/// Whether a run holds the run directory `dir` (its lock is taken).
fn held(dir: &Path) -> bool {
    File::open(dir).is_ok_and(|f| matches!(f.try_lock(), Err(std::fs::TryLockError::WouldBlock)))
}

/// Prints the log as it grows until its writer ends, then what it holds by then; or
/// until stdout is closed (`prun log -f ... | head -1`). `None` when the writer ended
/// without making the log (a job that printed nothing): nothing was printed, and the
/// latest log is printed as without `--follow`.
fn follow_log(live: &Live) -> Result<Option<Exit>, Failure> {
    let mut file: Option<File> = None;
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        // Looked at before the read: what the job wrote before it ended is read after.
        let running = live.until.running();
        if file.is_none() {
            file = open_log(&live.log)?;
            if file.is_some() && !emit(format!("# {}\n", live.log.display()).as_bytes())? {
                return Ok(Some(Exit::Ok));
            }
        }
        if let Some(f) = &mut file {
            loop {
                let n = f.read(&mut buf).map_err(|source| Failure::ReadLog {
                    path: live.log.clone(),
                    source,
                })?;
                if n == 0 {
                    break;
                }
                if !emit(&buf[..n])? {
                    return Ok(Some(Exit::Ok));
                }
            }
        }
        if !running {
            return Ok(file.map(|_| Exit::Ok));
        }
        std::thread::sleep(POLL);
    }
}

/// Writes a followed log's bytes to stdout: false once stdout is closed, which ends the
/// follow quietly.
fn emit(bytes: &[u8]) -> Result<bool, Failure> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    match out.write_all(bytes).and_then(|()| out.flush()) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(false),
        Err(source) => Err(Failure::Write {
            path: "stdout".into(),
            source,
        }),
    }
}

/// The log, opened for reading; `None` while it does not exist yet.
fn open_log(path: &Path) -> Result<Option<File>, Failure> {
    match crate::exec::log::open_read(path) {
        Ok(f) => Ok(Some(f)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(Failure::ReadLog {
            path: path.to_path_buf(),
            source,
        }),
    }
}

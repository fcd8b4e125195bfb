//! `shell(cmd)`, `exec(argv)` and `pipe([argv, ...])`: run commands from a script and get
//! their result.
//!
//! Inside a proc, a command inherits the proc's `env` and `cwd`, its output is copied into
//! the proc's log, and the proc's timeout or an abort terminates it. At the top level the
//! output is copied into the script's log (`.script.log` in the run's log directory) and
//! Ctrl-C terminates it.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use rhai::{Array, Dynamic, Engine, EvalAltResult, Map, NativeCallContext};

use super::job;
use crate::duration;
use crate::exec::Scheduler;
use crate::exec::command::{CommandSpec, Program};
use crate::exec::launch::{self, Input, Launch, LogWriter, Sink};
use crate::exec::log;

type R<T> = Result<T, Box<EvalAltResult>>;

const OPTIONS: &[&str] = &[
    "timeout",
    "env",
    "cwd",
    "stdin",
    "stdout",
    "stderr",
    "capture",
    "ok_codes",
    "check",
    "quiet",
    "kill_grace",
];

/// The message for a key the options of `shell`, `exec` and `pipe` do not have, with the
/// nearest valid keys; `None` for a valid key.
pub(super) fn unknown_option(key: &str) -> Option<String> {
    (!OPTIONS.contains(&key)).then(|| {
        format!(
            "unknown option `{key}`{} (valid options: {})",
            crate::suggest::hint(key, OPTIONS.iter().copied(), "`"),
            OPTIONS.join(", ")
        )
    })
}

/// How many lines of stderr a failure message quotes.
const STDERR_LINES: usize = 5;

/// The most characters of one stderr line an error quotes.
const STDERR_LINE_CHARS: usize = 300;

/// Registers `shell`, `exec` and `pipe`.
pub(super) fn register(engine: &mut Engine, sched: &Arc<Scheduler>) {
    let s = sched.clone();
    engine.register_fn("shell", move |ctx: NativeCallContext, cmd: &str| {
        run(&s, &ctx, vec![Program::Shell(cmd.to_string())], Map::new())
    });
    let s = sched.clone();
    engine.register_fn(
        "shell",
        move |ctx: NativeCallContext, cmd: &str, opts: Map| {
            run(&s, &ctx, vec![Program::Shell(cmd.to_string())], opts)
        },
    );
    let s = sched.clone();
    engine.register_fn("exec", move |ctx: NativeCallContext, argv: Array| {
        run(&s, &ctx, vec![argv_of("exec", argv)?], Map::new())
    });
    let s = sched.clone();
    engine.register_fn(
        "exec",
        move |ctx: NativeCallContext, argv: Array, opts: Map| {
            run(&s, &ctx, vec![argv_of("exec", argv)?], opts)
        },
    );
    let s = sched.clone();
    engine.register_fn("pipe", move |ctx: NativeCallContext, stages: Array| {
        run(&s, &ctx, stages_of(stages)?, Map::new())
    });
    let s = sched.clone();
    engine.register_fn(
        "pipe",
        move |ctx: NativeCallContext, stages: Array, opts: Map| {
            run(&s, &ctx, stages_of(stages)?, opts)
        },
    );
}

fn argv_of(what: &str, argv: Array) -> R<Program> {
    if argv.is_empty() {
        return Err(format!("{what}: the argv is empty").into());
    }
    let words = argv
        .iter()
        .enumerate()
        .map(|(i, v)| {
            super::values::argument_text(v).map_err(|t| -> Box<EvalAltResult> {
                format!(
                    "{what}: argument {} must be a string, a number or a bool, not {t}",
                    i + 1
                )
                .into()
            })
        })
        .collect::<R<_>>()?;
    Ok(Program::Argv(words))
}

/// A pipe's stages: argv arrays, or strings run with `sh -c`.
fn stages_of(stages: Array) -> R<Vec<Program>> {
    if stages.is_empty() {
        return Err("pipe: give at least one stage".into());
    }
    stages
        .into_iter()
        .enumerate()
        .map(|(i, s)| {
            if s.is_string() {
                Ok(Program::Shell(s.to_string()))
            } else if let Some(a) = s.clone().try_cast::<Array>() {
                argv_of(&format!("pipe: stage {}", i + 1), a)
            } else {
                Err(format!(
                    "pipe: stage {} must be an argv array or a shell string, not {}",
                    i + 1,
                    crate::diag::type_words(s.type_name())
                )
                .into())
            }
        })
        .collect()
}

/// What the options decide beyond the [`Launch`] itself.
struct Checks {
    ok_codes: Vec<i64>,
    check: bool,
    capture: bool,
    quiet: bool,
}

fn options(sched: &Scheduler, programs: Vec<Program>, opts: Map) -> R<(Launch, Checks)> {
    let job = job::current();
    let (env, cwd) = match &job {
        Some(j) => (
            j.def.env.to_vec(),
            j.def.extras().cwd.as_ref().map(PathBuf::from),
        ),
        None => (Vec::new(), None),
    };
    let stages = programs
        .into_iter()
        .map(|program| CommandSpec {
            program,
            env: env.clone(),
            cwd: cwd.clone(),
        })
        .collect();
    let mut l = Launch::pipeline(stages);
    l.kill_grace = sched.kill_grace();
    let mut c = Checks {
        ok_codes: vec![0],
        check: true,
        capture: true,
        quiet: false,
    };
    for (k, v) in opts {
        let bad = |what: &str| -> Box<EvalAltResult> {
            format!(
                "option `{k}` must be {what}, not {}",
                crate::diag::value_words(&v)
            )
            .into()
        };
        let what = if k == "cwd" {
            "a directory path"
        } else {
            "a file path"
        };
        let path = |v: &Dynamic| -> R<PathBuf> {
            match v.clone().into_string() {
                Ok(p) if p.is_empty() => {
                    Err(format!("option `{k}` must be {what}, not an empty string").into())
                }
                Ok(p) => Ok(PathBuf::from(p)),
                Err(_) => Err(bad(what)),
            }
        };
        match k.as_str() {
            "timeout" => {
                l.timeout =
                    Some(duration::parse_limit(&v).map_err(|e| format!("option `timeout`: {e}"))?)
            }
            "kill_grace" => {
                l.kill_grace =
                    duration::parse(&v).map_err(|e| format!("option `kill_grace`: {e}"))?
            }
            "env" => {
                let m = v.clone().try_cast::<Map>().ok_or_else(|| bad("a map"))?;
                let vars = m
                    .iter()
                    .map(|(k, v)| {
                        let text = super::values::argument_text(v).map_err(|t| -> Box<EvalAltResult> {
                            format!("option `env`: the value of {k} must be a string, a number or a bool, not {t}").into()
                        })?;
                        Ok((k.to_string(), text))
                    })
                    .collect::<R<Vec<_>>>()?;
                for s in &mut l.stages {
                    s.env.extend(vars.iter().cloned());
                }
            }
            "cwd" => {
                let dir = path(&v)?;
                for s in &mut l.stages {
                    s.cwd = Some(dir.clone());
                }
            }
            "stdin" => {
                l.stdin = if v.is_string() {
                    Input::Bytes(v.to_string().into_bytes())
                } else if let Some(m) = v.clone().try_cast::<Map>() {
                    if let Some(key) = m.keys().find(|key| key.as_str() != "file") {
                        return Err(format!(
                            "option `stdin`: unknown key `{key}` (its map takes only `file`)"
                        )
                        .into());
                    }
                    let file = m
                        .get("file")
                        .ok_or_else(|| bad("a string or #{ file: path }"))?;
                    Input::File(path(file)?)
                } else if v.is_unit() {
                    Input::Null
                } else {
                    return Err(bad("a string or #{ file: path }"));
                }
            }
            "stdout" => l.stdout = Sink::File(path(&v)?),
            "stderr" => l.stderr = Sink::File(path(&v)?),
            "capture" => {
                if let Ok(b) = v.as_bool() {
                    c.capture = b;
                } else if let Ok(n) = v.as_int() {
                    l.capture_limit = usize::try_from(n)
                        .map_err(|_| bad("a bool or a byte count (0 or more)"))?;
                } else {
                    return Err(bad("a bool or a byte count"));
                }
            }
            "ok_codes" => {
                let a = v
                    .clone()
                    .try_cast::<Array>()
                    .ok_or_else(|| bad("an array of integers"))?;
                c.ok_codes = a.iter().map(ok_code).collect::<R<_>>()?;
                if c.ok_codes.is_empty() {
                    return Err("option `ok_codes` must list at least one exit code (`check: false` never throws)".into());
                }
            }
            "check" => c.check = v.as_bool().map_err(|_| bad("a bool"))?,
            "quiet" => c.quiet = v.as_bool().map_err(|_| bad("a bool"))?,
            other => return Err(unknown_option(other).unwrap_or_default().into()),
        }
    }
    check_stdin_file(&l)?;
    check_no_fifo(&l)?;
    Ok((l, c))
}

/// A line of stderr as an error quotes it: its first [`STDERR_LINE_CHARS`] characters,
/// and how many bytes follow.
fn shortened(line: &str) -> std::borrow::Cow<'_, str> {
    match line.char_indices().nth(STDERR_LINE_CHARS) {
        Some((at, _)) => format!("{}… ({} more bytes)", &line[..at], line.len() - at).into(),
        None => line.into(),
    }
}

/// A `stdin` file must be one the command can read: not a directory, and not a regular
/// file that is also its `stdout` or `stderr` file, truncated before the command starts
/// (`sort < f > f` would lose `f`).
fn check_stdin_file(l: &Launch) -> R<()> {
    use std::os::unix::fs::MetadataExt;
    let Input::File(input) = &l.stdin else {
        return Ok(());
    };
    let Ok(meta) = std::fs::metadata(input) else {
        return Ok(());
    };
    if meta.is_dir() {
        return Err(format!(
            "option `stdin`: {} is a directory, not a file",
            input.display()
        )
        .into());
    }
    for (name, sink) in [("stdout", &l.stdout), ("stderr", &l.stderr)] {
        if let Sink::File(out) = sink
            && meta.is_file()
            && std::fs::metadata(out).is_ok_and(|o| (o.dev(), o.ino()) == (meta.dev(), meta.ino()))
        {
            return Err(format!(
                "option `{name}`: {} is also the `stdin` file, which it would empty before the command reads it",
                out.display()
            )
            .into());
        }
    }
    Ok(())
}

/// A `stdin` file must not be a FIFO (or a socket): prun opens it before the command
/// starts, and that open waits for a writer in prun itself, where neither the command's
/// timeout nor Ctrl-C reaches it. A shell's `cmd < fifo` waits in the command instead.
/// (A `stdout` or `stderr` FIFO is opened without waiting: see the launcher.)
fn check_no_fifo(l: &Launch) -> R<()> {
    use std::os::unix::fs::FileTypeExt;
    let Input::File(path) = &l.stdin else {
        return Ok(());
    };
    let Ok(t) = std::fs::metadata(path).map(|m| m.file_type()) else {
        return Ok(());
    };
    let kind = if t.is_fifo() {
        "a FIFO"
    } else if t.is_socket() {
        "a socket"
    } else {
        return Ok(());
    };
    let shown = crate::shown::path(path);
    Err(format!(
        "option `stdin`: {shown} is {kind}, whose writer prun would wait for, past the timeout \
         and Ctrl-C (let the command open it: `shell(\"cmd < {shown}\")`)"
    )
    .into())
}

/// The error of a command the script asked for once its proc (or, at the top level, the
/// run) was already ended: a script that caught the error of the command ended by Ctrl-C
/// or a timeout (a retry loop) does not start another one, which would be terminated as
/// it starts, after doing who knows what.
fn not_started(
    sched: &Scheduler,
    l: &Launch,
    log_path: &std::path::Path,
    log: &mut LogWriter,
) -> Box<EvalAltResult> {
    let why = match job::current() {
        Some(j) if sched.proc_timed_out(j.id) => "its proc timed out",
        _ => "the run was aborted",
    };
    let _ = log.line(&format!("$ {l}\n# not started: {why}"));
    format!(
        "command `{}` was not started: {why}\n  log: {}",
        crate::shown::command(l),
        log_path.display()
    )
    .into()
}

/// How many bytes the log has.
fn log_len(log: &launch::SharedLog) -> u64 {
    let log = log.lock().expect("log");
    log.file().metadata().map_or(0, |m| m.len())
}

/// The most bytes of a command's logged output an error reads back for its last lines.
const OUTPUT_TAIL_BYTES: u64 = 16 * 1024;

/// The end of what the log got in the byte range `written` (a command's output, which
/// went straight into it): its last [`OUTPUT_TAIL_BYTES`] at most, from a line's start.
fn logged(log: &launch::SharedLog, written: std::ops::Range<u64>) -> String {
    use std::os::unix::fs::FileExt;
    let from = written
        .start
        .max(written.end.saturating_sub(OUTPUT_TAIL_BYTES));
    let mut buf = vec![0; usize::try_from(written.end.saturating_sub(from)).unwrap_or(0)];
    let log = log.lock().expect("log");
    if log.file().read_exact_at(&mut buf, from).is_err() {
        return String::new();
    }
    let text = String::from_utf8_lossy(&buf);
    match text.split_once('\n') {
        Some((_, whole)) if from > written.start => whole.to_string(),
        _ => text.into_owned(),
    }
}

/// One entry of `ok_codes`: an exit code, 0 to 255 (another could never match).
fn ok_code(v: &Dynamic) -> R<i64> {
    let code = v.as_int().map_err(|_| {
        format!(
            "option `ok_codes` must be an array of integers, not one holding {}",
            crate::diag::value_words(v)
        )
    })?;
    if !(0..=255).contains(&code) {
        return Err(format!("option `ok_codes`: {code} is not an exit code (0 to 255)").into());
    }
    Ok(code)
}

/// In an interactive proc a command gets the terminal: the streams its options leave at
/// their defaults are prun's own stdin, stdout and stderr (not captured, not logged).
fn terminal(l: &mut Launch) {
    if matches!(l.stdin, Input::Null) {
        l.stdin = Input::Inherit;
    }
    for sink in [&mut l.stdout, &mut l.stderr] {
        if matches!(sink, Sink::Capture) {
            *sink = Sink::Inherit;
        }
    }
}

fn run(
    sched: &Arc<Scheduler>,
    ctx: &NativeCallContext,
    programs: Vec<Program>,
    opts: Map,
) -> R<Map> {
    let (mut l, c) = options(sched, programs, opts)?;
    let job = job::current();
    let cancel = job::cancel_token(sched);
    let log_path = match &job {
        Some(j) => j.log.clone(),
        None => sched.logs().dir().join(".script.log"),
    };
    let file = log::open_append(&log_path)
        .map_err(|e| format!("failed to open log {}: {e}", crate::paths::shown(&log_path)))?;
    let mut writer = LogWriter::new(file);
    if cancel.is_cancelled() {
        return Err(not_started(sched, &l, &log_path, &mut writer));
    }
    let _ = writer.line(&launch::header(&l));
    let shared = Arc::new(Mutex::new(writer));
    l.log = Some(shared.clone());
    if let Some(j) = &job {
        if j.def.interactive {
            terminal(&mut l);
        } else {
            l.tap = sched.tap_for(&j.name, &j.def);
        }
    }
    // Nothing is kept apart: both streams share one pipe, so the log has them in order.
    if !c.capture && matches!((&l.stdout, &l.stderr), (Sink::Capture, Sink::Capture)) {
        l.stdout = Sink::Log;
        l.stderr = Sink::Log;
    }
    let output_start = log_len(&shared);
    if !c.quiet {
        sched.reporter().command(job.as_ref().map(|j| &*j.name), &l);
    }
    let launcher = match &job {
        Some(j) => sched.launcher_for(j.id, &j.name, &j.def),
        None => sched.launcher().clone(),
    };
    let result = sched.runtime().block_on(launcher.launch(&l, &cancel));
    let mut file = shared.lock().expect("log");
    let mut out = match result {
        Ok(out) => out,
        Err(e) => {
            let _ = file.line(&format!("# {e}"));
            return Err(format!("{e}\n  log: {}", log_path.display()).into());
        }
    };
    // Ended by its proc's timeout, not by an abort of the run: its log says so.
    if out.ending == launch::Ending::Cancelled
        && let Some(j) = &job
        && let Some(limit) = j
            .def
            .extras()
            .timeout
            .filter(|_| sched.proc_timed_out(j.id))
    {
        out.ending = launch::Ending::ProcTimedOut(limit);
    }
    let output_end = file.file().metadata().map_or(output_start, |m| m.len());
    let _ = file.line(&launch::footer(&out, &l, &c.ok_codes));
    drop(file);
    if job.is_none() && out.ending == launch::Ending::Cancelled && sched.interrupted() {
        let origin = crate::diag::Origin::new(ctx.call_source(), ctx.call_position());
        sched.with(|core| {
            core.interrupted_command(format!("`{}` ({origin})", crate::shown::command(&l)));
        });
    }
    let ok = out.ok(&c.ok_codes);
    let ended = matches!(
        out.ending,
        launch::Ending::Cancelled | launch::Ending::ProcTimedOut(_)
    );
    if ended || (!ok && c.check) {
        let mut msg = format!(
            "command `{}` {}",
            crate::shown::command(&l),
            out.describe(&l, &c.ok_codes)
        );
        let (what, text) = match l.stderr {
            Sink::Log => ("its output", logged(&shared, output_start..output_end)),
            _ => ("stderr", std::mem::take(&mut out.stderr.text)),
        };
        let lines: Vec<&str> = text
            .lines()
            .enumerate()
            .filter(|(i, l)| *i > 0 || !launch::is_capture_note(l))
            .map(|(_, l)| l)
            .collect();
        if !c.quiet && !lines.is_empty() {
            msg.push_str(&format!("; {what} ends with:"));
            for line in &lines[lines.len().saturating_sub(STDERR_LINES)..] {
                msg.push_str("\n  | ");
                msg.push_str(&shortened(&crate::redact::redact(line)));
            }
        }
        // Its stderr is in that file, not in the log: the reader is told where to look.
        if let launch::Sink::File(path) = &l.stderr {
            msg.push_str(&format!(
                "; its stderr went to {}",
                crate::shown::path(path)
            ));
        }
        msg.push_str(&format!("\n  log: {}", log_path.display()));
        return Err(msg.into());
    }
    let status = out.status(&c.ok_codes);
    let mut m = Map::new();
    m.insert(
        "code".into(),
        status
            .code
            .map_or(Dynamic::UNIT, |x| Dynamic::from(i64::from(x))),
    );
    if let Some(sig) = status.signal {
        m.insert("signal".into(), Dynamic::from(i64::from(sig)));
    }
    let text = |cap: launch::Captured| if c.capture { cap.text } else { String::new() };
    m.insert("stdout".into(), text(out.stdout).into());
    m.insert("stderr".into(), text(out.stderr).into());
    m.insert("ok".into(), ok.into());
    m.insert("duration".into(), Dynamic::from(out.duration.as_secs_f64()));
    if l.stages.len() > 1 {
        let codes: Array = out
            .stages
            .iter()
            .map(|s| {
                s.code
                    .map_or(Dynamic::UNIT, |x| Dynamic::from(i64::from(x)))
            })
            .collect();
        m.insert("codes".into(), codes.into());
    }
    Ok(m)
}

//! `shell(cmd)` and `exec(argv)`: run a command from a script and get its result.
//!
//! Inside a proc, the command inherits the proc's `env` and `cwd`, its output is copied
//! into the proc's log, and the proc's timeout or an abort terminates it. At the top level
//! the command is tied to the run itself (Ctrl-C terminates it).

use std::fs::File;
use std::sync::{Arc, Mutex};

use rhai::{Array, Dynamic, Engine, EvalAltResult, Map};

use super::job;
use crate::duration;
use crate::exec::Scheduler;
use crate::exec::command::{self, CommandSpec, Ending, Program};

type R<T> = Result<T, Box<EvalAltResult>>;

const OPTIONS: &[&str] = &["timeout", "env", "cwd", "check", "ok_codes"];

/// How many lines of stderr a failure message quotes.
const STDERR_LINES: usize = 5;

/// Registers `shell` and `exec`.
pub fn register(engine: &mut Engine, sched: &Arc<Scheduler>) {
    let s = sched.clone();
    engine.register_fn("shell", move |cmd: &str| {
        run(&s, Program::Shell(cmd.to_string()), Map::new())
    });
    let s = sched.clone();
    engine.register_fn("shell", move |cmd: &str, opts: Map| {
        run(&s, Program::Shell(cmd.to_string()), opts)
    });
    let s = sched.clone();
    engine.register_fn("exec", move |argv: Array| {
        run(&s, argv_of(argv)?, Map::new())
    });
    let s = sched.clone();
    engine.register_fn("exec", move |argv: Array, opts: Map| {
        run(&s, argv_of(argv)?, opts)
    });
}

fn argv_of(argv: Array) -> R<Program> {
    if argv.is_empty() {
        return Err("exec: the argv is empty".into());
    }
    Ok(Program::Argv(
        argv.into_iter().map(|v| v.to_string()).collect(),
    ))
}

struct Options {
    spec: CommandSpec,
    check: bool,
    ok_codes: Vec<i64>,
}

fn options(sched: &Scheduler, program: Program, opts: Map) -> R<Options> {
    let job = job::current();
    let mut spec = CommandSpec::new(program);
    spec.kill_grace = sched.kill_grace();
    if let Some(j) = &job {
        spec.env = j.def.env.clone();
        spec.cwd = j.def.cwd.as_ref().map(Into::into);
    }
    let mut out = Options {
        spec,
        check: true,
        ok_codes: vec![0],
    };
    for (k, v) in opts {
        let bad = |what: &str| -> Box<EvalAltResult> {
            format!("`{k}` must be {what}, not {}", v.type_name()).into()
        };
        match k.as_str() {
            "timeout" => {
                out.spec.timeout = Some(duration::parse(&v).map_err(|e| format!("`timeout`: {e}"))?)
            }
            "env" => {
                let m = v.clone().try_cast::<Map>().ok_or_else(|| bad("a map"))?;
                out.spec
                    .env
                    .extend(m.into_iter().map(|(k, v)| (k.to_string(), v.to_string())));
            }
            "cwd" => out.spec.cwd = Some(v.to_string().into()),
            "check" => out.check = v.as_bool().map_err(|_| bad("a bool"))?,
            "ok_codes" => {
                let a = v
                    .clone()
                    .try_cast::<Array>()
                    .ok_or_else(|| bad("an array of integers"))?;
                out.ok_codes = a
                    .into_iter()
                    .map(|c| c.as_int().map_err(|_| bad("an array of integers")))
                    .collect::<R<_>>()?;
            }
            other => {
                return Err(format!(
                    "unknown option `{other}` (valid options: {})",
                    OPTIONS.join(", ")
                )
                .into());
            }
        }
    }
    Ok(out)
}

fn run(sched: &Arc<Scheduler>, program: Program, opts: Map) -> R<Map> {
    let o = options(sched, program, opts)?;
    let job = job::current();
    let cancel = job
        .as_ref()
        .map_or_else(|| sched.script_cancel().clone(), |j| j.cancel.clone());
    let log: Option<(Arc<Mutex<File>>, std::path::PathBuf)> = match &job {
        Some(j) => {
            let mut f = crate::exec::log::open_append(&j.log)
                .map_err(|e| format!("failed to open log {}: {e}", j.log.display()))?;
            let _ = command::write_header(&mut f, &o.spec);
            Some((Arc::new(Mutex::new(f)), j.log.clone()))
        }
        None => None,
    };
    let shared = log.as_ref().map(|(f, _)| f.clone());
    let result = sched
        .runtime()
        .block_on(command::run_captured(&o.spec, &cancel, shared));
    let out = match result {
        Ok(out) => out,
        Err(e) => {
            if let Some((f, _)) = &log {
                let mut f = f.lock().expect("log");
                let _ = std::io::Write::write_all(&mut *f, format!("# {e}\n").as_bytes());
            }
            return Err(e.to_string().into());
        }
    };
    if let Some((f, _)) = &log {
        let _ = command::write_footer(&mut f.lock().expect("log"), &out, &o.spec);
    }
    let ok = out.ending == Ending::Exited
        && out.code.is_some_and(|c| o.ok_codes.contains(&i64::from(c)));
    if out.ending == Ending::Cancelled || (!ok && o.check) {
        let mut msg = format!("command `{}` {}", o.spec, out.describe(o.spec.timeout));
        let tail: Vec<&str> = out.stderr.lines().collect();
        let from = tail.len().saturating_sub(STDERR_LINES);
        if !tail.is_empty() {
            msg.push_str("; stderr ends with:");
            for l in &tail[from..] {
                msg.push_str("\n  ");
                msg.push_str(l);
            }
        }
        if let Some((_, path)) = &log {
            msg.push_str(&format!("\n  log: {}", path.display()));
        }
        return Err(msg.into());
    }
    let mut m = Map::new();
    m.insert(
        "code".into(),
        out.code
            .map_or(Dynamic::UNIT, |c| Dynamic::from(i64::from(c))),
    );
    m.insert("stdout".into(), out.stdout.into());
    m.insert("stderr".into(), out.stderr.into());
    m.insert("ok".into(), ok.into());
    m.insert("duration".into(), Dynamic::from(out.duration.as_secs_f64()));
    if let Some(sig) = out.signal {
        m.insert("signal".into(), Dynamic::from(i64::from(sig)));
    }
    Ok(m)
}

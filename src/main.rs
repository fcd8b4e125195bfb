//! The `prun` binary: parse the command line, run, exit with prun's status.

#![forbid(unsafe_code)]

use std::process::ExitCode;

use prun::cli::{self, Invocation};

fn main() -> ExitCode {
    let exit = match cli::parse(std::env::args_os()) {
        Invocation::Run(cfg) => prun::run(cfg),
        Invocation::Check(script) => prun::check(&script),
        Invocation::History { script, db, limit } => prun::history(&script, db, limit),
        Invocation::Log { script, proc_name } => prun::log(&script, &proc_name),
        Invocation::Exit(code) => code,
    };
    ExitCode::from(exit as u8)
}

//! The `prun` binary: parse the command line, run, exit with prun's status.

#![forbid(unsafe_code)]

use std::process::ExitCode;

use prun::cli::{self, Invocation};

fn main() -> ExitCode {
    let result = match cli::parse(std::env::args_os()) {
        Invocation::Run(cfg) => prun::run(cfg),
        Invocation::Completions(shell) => prun::completions(shell),
        Invocation::Man => prun::man(),
        Invocation::Definitions(dir) => prun::definitions(&dir),
        Invocation::History { script, db, limit } => prun::history(&script, db, limit),
        Invocation::Report(req) => prun::run_report(&req),
        Invocation::Log { script, proc_name } => prun::log(&script, &proc_name),
        Invocation::Exit(code) => Ok(code),
    };
    let exit = result.unwrap_or_else(|e| {
        e.print();
        e.code()
    });
    ExitCode::from(exit as u8)
}

//! The `prun` binary: the command line of the library (see `prun::cli::main`).

#![forbid(unsafe_code)]

fn main() -> std::process::ExitCode {
    prun::cli::main()
}

//! A policy for scripts prun's embedder does not trust: only some programs, no shell
//! strings, a hidden environment variable, limits. Runs a script (a file given as the
//! first argument, or a built-in one) and prints what was refused.
//!
//! `cargo run --example policy [SCRIPT.rhai [ARGS...]]`

use std::time::Duration;

/// Tries a program that is allowed, one that is not, and a shell string.
const SCRIPT: &str = r#"
proc("allowed", #{ cmd: ["echo", "echo may run"] });
proc("not_allowed", #{ cmd: ["rm", "-rf", "/tmp/prun-policy-example"] });
proc("shell", #{ shell: "echo a shell string" });
proc("secret", || `AWS_SECRET_ACCESS_KEY is ${if env("AWS_SECRET_ACCESS_KEY") == () { "hidden" } else { "visible" }}`);
"#;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let policy = prun::Policy::new()
        .allow_programs(["echo"])
        .no_shell()
        .deny_env(["AWS_SECRET_ACCESS_KEY"])
        .max_procs(50)
        .max_run_time(Duration::from_secs(60));
    let rt = prun::Runtime::builder()
        .task_db(prun::TaskDb::Off)
        .policy(policy)
        .max_operations(10_000_000)
        .build()?;
    let mut args = std::env::args().skip(1);
    let report = match args.next() {
        Some(path) => rt.run_file(path, args)?,
        None => rt.run_str(SCRIPT, ["allowed", "not_allowed", "shell", "secret"])?,
    };
    for p in &report.procs {
        match (&p.error, &p.result) {
            (Some(error), _) => println!("{:<12} {:<10} {error}", p.name, p.state),
            (None, result) => println!("{:<12} {:<10} {result}", p.name, p.state),
        }
    }
    println!("outcome: {}", report.run.outcome);
    Ok(())
}

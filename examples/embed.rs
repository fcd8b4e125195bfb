//! Embedding prun: a program registers a native function, runs a script whose procs call
//! it in parallel, and prints the report (the same JSON as `prun --json -`).
//!
//! `cargo run --example embed`
//!
//! The program is an async one (`#[tokio::main]`): a run blocks the calling thread, and
//! works from inside the program's own tokio runtime.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// The script: four procs from one proto, each calling the native `checksum`, and one
/// that sums their results once they are done.
const SCRIPT: &str = r#"
proto("sum:[part]", |ctx, part| checksum(`part ${part}`));
proc("total", #{ deps: ["sum:1", "sum:2", "sum:3", "sum:4"] }, |ctx| {
    let total = 0;
    for r in ctx.results.values() { total += r; }
    total
});
"#;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let calls = Arc::new(AtomicUsize::new(0));
    let counter = calls.clone();
    let rt = prun::Runtime::builder()
        .parallel(4)
        .task_db(prun::TaskDb::Off)
        // Its result depends on its argument alone: with a task DB, the procs calling it
        // may be UP_TO_DATE (a function registered with `register_fn` keeps their results
        // out of the cache, since what it gives is in no fingerprint).
        .register_pure_fn("checksum", move |text: &str| -> i64 {
            counter.fetch_add(1, Ordering::SeqCst);
            text.bytes().map(i64::from).sum()
        })
        .on_event(|e: &prun::Event| {
            if let prun::Event::Finished { name, state, .. } = e {
                eprintln!("{name}: {state}");
            }
        })
        .build()?;
    let report = rt.run_str(SCRIPT, ["total"])?;
    println!("{}", serde_json::to_string_pretty(&report)?);
    eprintln!(
        "checksum was called {} times; outcome: {}",
        calls.load(Ordering::SeqCst),
        report.run.outcome
    );
    std::process::exit(report.exit_code());
}

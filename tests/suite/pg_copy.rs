//! scripts/pg-copy.rhai end to end against a real PostgreSQL: a driver script starts a
//! throwaway server with the `pg` module, makes a source and a target database, runs the
//! real prun on pg-copy.rhai between them, and prints what each database then holds.
//! Without PostgreSQL the tests say so and skip, unless `PRUN_E2E=require` (CI).

use std::path::PathBuf;

use crate::support::Test;
use crate::support::postgres::{self, one_server_at_a_time};

const DRIVER: &str = r#"
import "pg" as pg;
let opt = args(#{ prun: #{ required: true }, copy: #{ required: true },
                  rows: #{ int: true, required: true }, spec: #{ list: true }, work: #{} });
let s = pg::start(#{});
print(`pgdir=${s.dir}`);
pg::query(s, "postgres", "CREATE DATABASE app");
pg::query(s, "postgres", "CREATE DATABASE wh");
pg::query(s, "app", `CREATE TABLE big AS SELECT g AS id, md5(g::text) AS name,
    CASE WHEN g % 1000 = 0 THEN E'two\nlines\ttab' END AS note FROM generate_series(1, ${opt.rows}) g`);
pg::query(s, "wh", "CREATE TABLE big (id int); INSERT INTO big VALUES (-1)");
let cmd = [opt.prun, opt.copy, "--from", pg::conninfo(s, "app"), "--to", pg::conninfo(s, "wh"),
           "-j", "2", "--no-db"];
for spec in opt.spec { cmd += ["-t", spec]; }
if opt.work != () {
    exec(["mkdir", "--", opt.work]);
    cmd.push(`--work-dir=${opt.work}`);
}
let out = exec(cmd, #{ check: false });
print(out.stdout);
print(out.stderr);
print(`code=${out.code}`);
let sig = "select count(*) || ':' || min(id) || ':' || md5(string_agg(b::text, ',' order by id)) from big b";
print(`src=${pg::query(s, "app", sig)}`);
print(`dst=${pg::query(s, "wh", sig)}`);
print(`tables=${pg::query(s, "wh", "select string_agg(tablename, ',' order by tablename) from pg_tables where schemaname = 'public'")}`);
if opt.spec.contains("evens=SELECT id, name FROM big WHERE id % 2 = 0") {
    print(`evens=${pg::query(s, "wh", "select count(*) || ':' || min(id) || ':' || max(id) from evens")}`);
}
"#;

fn run(rows: usize, specs: &[&str]) -> crate::support::Output {
    run_with(rows, specs, &[])
}

/// [`run`], with more arguments for the driver (`--work=DIR`: pg-copy's `--work-dir`,
/// made first).
fn run_with(rows: usize, specs: &[&str], more: &[&str]) -> crate::support::Output {
    let copy = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("scripts/pg-copy.rhai");
    let rows = rows.to_string();
    let mut args = vec![
        "--prun",
        env!("CARGO_BIN_EXE_prun"),
        "--copy",
        copy.to_str().unwrap(),
        "--rows",
        &rows,
    ];
    for spec in specs {
        args.extend(["--spec", spec]);
    }
    args.extend(more);
    let out = Test::new().script(DRIVER).args(&args).run();
    out.ok();
    let left = postgres::leftovers_of(&value(&out, "pgdir"));
    assert!(left.is_empty(), "left behind: {left:?}\n{}", out.describe());
    out
}

/// The value of the driver's `key=value` line.
fn value(out: &crate::support::Output, key: &str) -> String {
    let stdout = out.stdout.clone();
    let prefix = format!("{key}=");
    stdout
        .lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .unwrap_or_else(|| panic!("no {key}= line\n{}", out.describe()))
        .to_string()
}

fn have_postgres() -> bool {
    let here = postgres::installed();
    if !here {
        postgres::skip(
            "PostgreSQL (initdb) is not installed",
            "apt-get install postgresql",
        );
    }
    here
}

#[test]
#[cfg_attr(prun_no_postgres, ignore = "PostgreSQL (initdb) is not installed")]
fn a_million_rows_move_between_databases_and_the_counts_match() {
    if !have_postgres() {
        return;
    }
    let _one = one_server_at_a_time();
    let out = run(
        1_000_000,
        &["big", "evens=SELECT id, name FROM big WHERE id % 2 = 0"],
    );
    assert_eq!(value(&out, "code"), "0", "{}", out.describe());
    let src = value(&out, "src");
    assert!(src.starts_with("1000000:1:"), "{src}");
    assert_eq!(
        value(&out, "dst"),
        src,
        "the target's rows differ from the source's"
    );
    assert_eq!(value(&out, "evens"), "500000:2:1000000");
    // The staging tables were swapped in: none is left.
    assert_eq!(value(&out, "tables"), "big,evens");
    out.out_has("SUCCEEDED  load::big")
        .out_has("SUCCEEDED  load::evens");
}

#[test]
#[cfg_attr(prun_no_postgres, ignore = "PostgreSQL (initdb) is not installed")]
fn a_failing_export_leaves_the_target_table_as_it_was() {
    if !have_postgres() {
        return;
    }
    let _one = one_server_at_a_time();
    let out = run(10, &["big=SELECT nope FROM big"]);
    assert_eq!(value(&out, "code"), "1", "{}", out.describe());
    out.out_has("FAILED     export::big")
        .out_has("column \"nope\" does not exist")
        .out_has("FAILED_DEP load::big");
    let dst = value(&out, "dst");
    assert!(
        dst.starts_with("1:-1:"),
        "the old table is gone or changed: {dst}"
    );
    assert_eq!(value(&out, "tables"), "big");
}

/// A `--work-dir` that starts with `-` is a directory, never an option of a command the
/// script gives it to (`wc -l -w/big.copy` failed: "invalid option").
#[test]
#[cfg_attr(prun_no_postgres, ignore = "PostgreSQL (initdb) is not installed")]
fn a_work_dir_that_starts_with_a_dash_is_a_path() {
    if !have_postgres() {
        return;
    }
    let _one = one_server_at_a_time();
    let out = run_with(10, &["big"], &["--work=-w"]);
    assert_eq!(value(&out, "code"), "0", "{}", out.describe());
    assert_eq!(value(&out, "dst"), value(&out, "src"), "{}", out.describe());
    assert!(
        out.path("-w/big.copy").is_file(),
        "the export is not in -w\n{}",
        out.describe()
    );
}

#[test]
fn a_table_name_that_is_not_an_sql_name_is_refused_before_anything_runs() {
    // `-t 'a;drop table z'` reached the target's SQL as `DROP TABLE IF EXISTS a;drop table
    // z; ...`; only an empty name or one holding `::` was refused.
    let copy = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("scripts/pg-copy.rhai");
    for name in [
        "a;drop table z",
        "my table",
        "1st",
        "a.b.c",
        "sales.",
        "x=",
        "a::b",
    ] {
        Test::new()
            .raw(&[copy.to_str().unwrap(), "--from", "dbname=nowhere", "--to", "dbname=nowhere", "-t", name])
            .run()
            .code(2)
            .err_has(&format!(
                "--table \"{name}\": expected a table name (such as orders or sales.orders) or NAME=SELECT ..."
            ))
            .out_lacks("STARTED");
    }
}

/// Listing the script needs no psql (cron's PATH may lack it); a run without it names it
/// before anything runs.
#[test]
fn listing_needs_no_psql_and_a_run_names_it() {
    let copy = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("scripts/pg-copy.rhai");
    let t = Test::new().file("empty/.keep", "");
    let path = t.dir().join("empty").display().to_string();
    t.env("PATH", &path)
        .raw(&["list", copy.to_str().unwrap()])
        .run()
        .ok()
        .out_has("export::[table]")
        .out_has("load::[table]");
    // A PATH entry of its own: root refuses one that is missing in /tmp, which anyone
    // could make (the first test's directory is gone with it).
    let t = Test::new().file("empty/.keep", "");
    let path = t.dir().join("empty").display().to_string();
    t.env("PATH", &path)
        .raw(&[
            copy.to_str().unwrap(),
            "--from",
            "a",
            "--to",
            "b",
            "-t",
            "t",
            "-q",
        ])
        .run()
        .code(2)
        .err_has(&format!(r#"required tool "psql" not found on PATH={path}"#))
        .out_lacks("STARTED");
}

#[test]
fn help_lists_the_options() {
    let copy = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("scripts/pg-copy.rhai");
    Test::new()
        .raw(&[copy.to_str().unwrap(), "--help"])
        .run()
        .ok()
        .out_has("Copy tables or query results from one PostgreSQL database into another")
        .out_has("--from <FROM>")
        .out_has("--to <TO>")
        .out_has("-t, --table <TABLE>");
}

#[test]
#[cfg_attr(prun_no_postgres, ignore = "PostgreSQL (initdb) is not installed")]
fn pg_restore_loads_a_plain_and_a_gzipped_dump_and_query_takes_any_database_name() {
    if !have_postgres() {
        return;
    }
    let _one = one_server_at_a_time();
    let out = Test::new()
        .file("plain.sql", "CREATE TABLE z (a int);\nINSERT INTO z VALUES (1), (2);\n")
        .script(
            r#"
import "pg" as pg;
shell("printf 'CREATE TABLE y (b text);\\nINSERT INTO y VALUES (1);\\n' | gzip > packed.sql.gz");
let s = pg::start(#{});
print(`pgdir=${s.dir}`);
pg::query(s, "postgres", "CREATE DATABASE d");
pg::restore(s, "d", "plain.sql");
pg::restore(s, "d", "packed.sql.gz");
pg::query(s, "postgres", "CREATE DATABASE \"x=1 'y'\"");
print(`named=${pg::query(s, "x=1 'y'", "select current_database()")}`);
print(`rows=${pg::query(s, "d", "select (select count(*) from z) || '+' || (select count(*) from y)")}`);
pg::stop(s);
print(`stopped dir gone=${file_info(s.dir) == ()}`);
"#,
        )
        .run();
    out.ok()
        .line("rows=2+1")
        .line("named=x=1 'y'")
        .line("stopped dir gone=true");
    let left = postgres::leftovers_of(&value(&out, "pgdir"));
    assert!(left.is_empty(), "left behind: {left:?}\n{}", out.describe());
}

#[test]
#[cfg_attr(prun_no_postgres, ignore = "PostgreSQL (initdb) is not installed")]
fn pg_start_refuses_a_port_that_is_not_a_number() {
    if !have_postgres() {
        return;
    }
    // pg_ctl hands the port to a shell: a string would run there, and the `#` would drop
    // the socket and log options (the server then held prun's stdout and outlived it).
    Test::new()
        .script(
            r#"
import "pg" as pg;
pg::start(#{ port: "55499 $(touch pwned) #" });
"#,
        )
        .run()
        .code(2)
        .err_has(r#"port must be an integer from 1 to 65535, not "55499 $(touch pwned) #""#);
}

#[test]
#[cfg_attr(prun_no_postgres, ignore = "PostgreSQL (initdb) is not installed")]
fn pg_conninfo_quotes_a_database_name_and_restore_takes_a_dump_named_like_an_option() {
    if !have_postgres() {
        return;
    }
    let _one = one_server_at_a_time();
    let out = Test::new()
        .script(
            r#"
import "pg" as pg;
shell("printf 'CREATE TABLE y (b text);\\nINSERT INTO y VALUES (1);\\n' | gzip > ./-v.sql.gz");
let s = pg::start(#{});
print(`pgdir=${s.dir}`);
pg::query(s, "postgres", "CREATE DATABASE \"my 'db\\\"");
pg::restore(s, "my 'db\\", "-v.sql.gz");
let dsn = pg::conninfo(s, "my 'db\\");
print(`db=${exec(["psql", "-d", dsn, "-tAc", "select current_database() || count(*) from y"]).stdout}`);
"#,
        )
        .run();
    out.ok().line("db=my 'db\\1");
    let left = postgres::leftovers_of(&value(&out, "pgdir"));
    assert!(left.is_empty(), "left behind: {left:?}\n{}", out.describe());
}

#[test]
#[cfg_attr(prun_no_postgres, ignore = "PostgreSQL (initdb) is not installed")]
fn pg_start_works_with_crons_path_which_has_no_sbin() {
    if !have_postgres() {
        return;
    }
    let _one = one_server_at_a_time();
    // As root the server runs through runuser, which lives in /usr/sbin.
    let out = Test::new()
        .env("PATH", "/usr/bin:/bin")
        .script(
            r#"
import "pg" as pg;
let s = pg::start(#{});
print(`pgdir=${s.dir}`);
print(`one=${pg::query(s, "postgres", "select 1")}`);
"#,
        )
        .run();
    out.ok().line("one=1");
    let left = postgres::leftovers_of(&value(&out, "pgdir"));
    assert!(left.is_empty(), "left behind: {left:?}\n{}", out.describe());
}

#[test]
#[cfg_attr(prun_no_postgres, ignore = "PostgreSQL (initdb) is not installed")]
fn pg_start_takes_any_duration_as_max_wait_and_refuses_another_naming_the_option() {
    if !have_postgres() {
        return;
    }
    Test::new()
        .script(
            r#"
import "pg" as pg;
let s = pg::start(#{ max_wait: "1m30s" });
print(`one=${pg::query(s, "postgres", "select 1")}`);
pg::start(#{ max_wait: "1x" });
"#,
        )
        .run()
        .code(2)
        .line("one=1")
        .err_has(r#"pg::start: max_wait must be a duration: seconds (30, 0.5) or a string such as "300ms", "2m", "2d", not "1x""#);
}

/// Copies one row whose `name` is the SQL expression `text` from a UTF8 database into a
/// LATIN1 one; prints the exit code, what the target then holds and its tables.
const ENCODINGS: &str = r#"
import "pg" as pg;
let opt = args(#{ prun: #{ required: true }, copy: #{ required: true }, text: #{ required: true } });
let s = pg::start(#{});
print(`pgdir=${s.dir}`);
pg::query(s, "postgres", "CREATE DATABASE app");
pg::query(s, "postgres", "CREATE DATABASE wh ENCODING 'LATIN1' TEMPLATE template0 LC_COLLATE 'C' LC_CTYPE 'C'");
pg::query(s, "app", `CREATE TABLE t AS SELECT ${opt.text} AS name`);
let out = exec([opt.prun, opt.copy, "--from", pg::conninfo(s, "app"), "--to", pg::conninfo(s, "wh"),
                "-t", "t", "--no-db"], #{ check: false });
print(out.stdout);
print(out.stderr);
print(`code=${out.code}`);
let has_t = pg::query(s, "wh", "select to_regclass('t') is not null") == "t";
print(`dst=${if has_t { pg::query(s, "wh", "select length(name) || ':' || (name = chr(233)) from t") } else { "none" }}`);
print(`tables=${pg::query(s, "wh", "select count(*) || ':' || coalesce(string_agg(tablename, ','), '') from pg_tables where schemaname = 'public'")}`);
"#;

fn copy_text(text: &str) -> crate::support::Output {
    let copy = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("scripts/pg-copy.rhai");
    let out = Test::new()
        .script(ENCODINGS)
        .args(&[
            "--prun",
            env!("CARGO_BIN_EXE_prun"),
            "--copy",
            copy.to_str().unwrap(),
            "--text",
            text,
        ])
        .run();
    out.ok();
    let left = postgres::leftovers_of(&value(&out, "pgdir"));
    assert!(left.is_empty(), "left behind: {left:?}\n{}", out.describe());
    out
}

/// The rows travel as UTF8 and the target converts them: `é` stays one character in a
/// LATIN1 database (read as LATIN1 bytes, it became two).
#[test]
#[cfg_attr(prun_no_postgres, ignore = "PostgreSQL (initdb) is not installed")]
fn text_keeps_its_characters_in_a_target_of_another_encoding() {
    if !have_postgres() {
        return;
    }
    let _one = one_server_at_a_time();
    let out = copy_text("chr(233)");
    assert_eq!(value(&out, "code"), "0", "{}", out.describe());
    assert_eq!(value(&out, "dst"), "1:true", "{}", out.describe());
}

/// A character the target's encoding lacks fails the load, and its staging table goes too.
#[test]
#[cfg_attr(prun_no_postgres, ignore = "PostgreSQL (initdb) is not installed")]
fn a_failing_load_leaves_no_staging_table() {
    if !have_postgres() {
        return;
    }
    let _one = one_server_at_a_time();
    let out = copy_text("chr(28450)");
    assert_eq!(value(&out, "code"), "1", "{}", out.describe());
    out.out_has("FAILED     load::t")
        .out_has("has no equivalent in encoding \"LATIN1\"");
    assert_eq!(value(&out, "dst"), "none");
    assert_eq!(value(&out, "tables"), "0:", "{}", out.describe());
}

/// Every file under `dir` (recursively) whose bytes hold `text`.
fn files_holding(dir: &std::path::Path, text: &str) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if String::from_utf8_lossy(&std::fs::read(&path).unwrap_or_default())
                .contains(text)
            {
                found.push(path);
            }
        }
    }
    found
}

/// `--from` and `--to` are connection strings that may hold a password: the copy gets
/// them, but its display (`-v` echoes, failure messages), its `--json` report, its logs
/// and its history show `***`.
#[test]
#[cfg_attr(prun_no_postgres, ignore = "PostgreSQL (initdb) is not installed")]
fn a_password_in_from_or_to_is_never_shown() {
    if !have_postgres() {
        return;
    }
    let _one = one_server_at_a_time();
    let driver = r#"
import "pg" as pg;
let opt = args(#{ prun: #{ required: true }, copy: #{ required: true } });
let s = pg::start(#{});
print(`pgdir=${s.dir}`);
pg::query(s, "postgres", "CREATE DATABASE app");
pg::query(s, "postgres", "CREATE DATABASE wh");
pg::query(s, "app", "CREATE TABLE big AS SELECT 1 AS id");
let here = exec(["pwd"]).stdout;
here.trim();
let env = #{ XDG_STATE_HOME: `${here}/inner` };
let from = pg::conninfo(s, "app") + " password=pw-from-i4";
let to = pg::conninfo(s, "wh") + " password='pw to i4'";
let out = exec([opt.prun, opt.copy, "--from", from, "--to", to, "-t", "big", "-t", "bad=SELECT nope",
                "-v", "--json", "report.json", "--db", "inner/prun.db"], #{ env: env, check: false });
print(out.stdout);
print(out.stderr);
print(`code=${out.code}`);
print(`dst=${pg::query(s, "wh", "select count(*) from big")}`);
let history = exec([opt.prun, "history", opt.copy, "--db", "inner/prun.db"], #{ env: env });
print(history.stdout);
"#;
    let copy = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("scripts/pg-copy.rhai");
    let out = Test::new()
        .script(driver)
        .args(&[
            "--prun",
            env!("CARGO_BIN_EXE_prun"),
            "--copy",
            copy.to_str().unwrap(),
        ])
        .run();
    out.ok();
    let left = postgres::leftovers_of(&value(&out, "pgdir"));
    assert!(left.is_empty(), "left behind: {left:?}\n{}", out.describe());
    // The copy got the real values: big was copied, bad failed (naming its command).
    assert_eq!(value(&out, "code"), "1", "{}", out.describe());
    assert_eq!(value(&out, "dst"), "1", "{}", out.describe());
    out.out_has("SUCCEEDED  load::big")
        .out_has("FAILED     export::bad")
        .out_has("psql -X -d '***'");
    let report: serde_json::Value = serde_json::from_str(&out.read("report.json")).unwrap();
    let args = report["run"]["args"].to_string();
    assert!(
        args.starts_with(r#"["--from","***","--to","***""#),
        "{args}"
    );
    for pw in ["pw-from-i4", "pw to i4"] {
        assert!(!out.stdout.contains(pw), "{pw} shown\n{}", out.describe());
        let files = files_holding(&out.path("inner"), pw);
        assert!(files.is_empty(), "{pw} in {files:?}");
        assert!(!out.read("report.json").contains(pw), "{pw} in the report");
    }
}

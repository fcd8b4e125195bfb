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

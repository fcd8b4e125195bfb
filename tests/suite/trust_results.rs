//! No stale or wrong results (issue 9, "Wrong results"): closures see the values their
//! captured variables had at definition, a cached result equals what running the proc now
//! would give, file names that are not UTF-8 are never silently left out, racily clean
//! inputs are confirmed by content, names are one printable line, and deeply nested
//! values fail their proc with a clear error instead of aborting prun.
//!
//! Several runs share one directory and one state directory, so these tests use their own
//! small runner ([`Ws`]); modification times are set explicitly, never waited for.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, SystemTime};

use crate::support::Test;

/// A directory that several prun runs share (and their `XDG_STATE_HOME`).
struct Ws {
    dir: tempfile::TempDir,
}

/// What one prun run printed.
struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl Ws {
    fn new(script: &str) -> Ws {
        let ws = Ws {
            dir: tempfile::tempdir().expect("tempdir"),
        };
        ws.write("main.rhai", script);
        ws
    }

    fn path(&self, p: impl AsRef<Path>) -> PathBuf {
        self.dir.path().join(p)
    }

    fn write(&self, p: impl AsRef<Path>, text: &str) {
        let path = self.path(p);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(path, text).expect("write file");
    }

    /// `prun WORDS...` with extra environment variables.
    fn prun(&self, words: &[&str], env: &[(&str, &str)]) -> Run {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_prun"));
        cmd.args(words)
            .current_dir(self.dir.path())
            .env("XDG_STATE_HOME", self.path("state"))
            .env_remove("NO_COLOR")
            .envs(env.iter().copied());
        let done = crate::support::run_bounded(cmd, &format!("prun {words:?}"), |_| {});
        Run {
            code: done.status.code(),
            stdout: crate::support::unstamp(&done.stdout),
            stderr: done.stderr,
        }
    }

    /// `prun main.rhai` with extra environment variables.
    fn run(&self, env: &[(&str, &str)]) -> Run {
        self.prun(&["main.rhai"], env)
    }
}

impl Run {
    fn describe(&self) -> String {
        format!(
            "exit {:?}\n--- stdout\n{}\n--- stderr\n{}",
            self.code, self.stdout, self.stderr
        )
    }

    fn code(&self, code: i32) -> &Self {
        assert_eq!(self.code, Some(code), "{}", self.describe());
        self
    }

    fn has(&self, s: &str) -> &Self {
        assert!(
            self.stdout.contains(s) || self.stderr.contains(s),
            "expected {s:?}\n{}",
            self.describe()
        );
        self
    }

    fn lacks(&self, s: &str) -> &Self {
        assert!(
            !self.stdout.contains(s) && !self.stderr.contains(s),
            "unexpected {s:?}\n{}",
            self.describe()
        );
        self
    }

    /// `name` was UP_TO_DATE (not run).
    fn up_to_date(&self, name: &str) -> &Self {
        self.has(&format!("UP_TO_DATE {name}\n"))
            .lacks(&format!("STARTED    {name}\n"))
    }

    /// `name` really ran.
    fn ran(&self, name: &str) -> &Self {
        self.has(&format!("SUCCEEDED  {name} ("))
            .lacks(&format!("UP_TO_DATE {name}\n"))
    }
}

/// Sets a file's modification time exactly (whole seconds, as on a coarse file system).
fn set_mtime(path: &Path, t: SystemTime) {
    std::fs::File::options()
        .write(true)
        .open(path)
        .expect("open")
        .set_modified(t)
        .expect("set mtime");
}

#[test]
fn closures_made_in_a_loop_see_the_values_of_their_own_iteration() {
    let out = Test::new()
        .script(
            r#"
            let files = ["a.txt", "b.txt", "c.txt"];
            let n = 0;
            let m = #{ tag: "first", list: [1, [2]] };
            for f in files {
                n += 1;
                proc(`q::${f}`, #{ now: true }, |ctx| `${f}/${n}/${m.tag}/${m.list}`);
            }
            let late = "at definition";
            proto("p::[x]", |ctx, x| `${x}/${late}/${m.list}`);
            m.tag = "changed";
            m.list[1].push(3);
            late = "changed";
            let r = wait(["q::a.txt", "q::b.txt", "q::c.txt"]);
            run("p::one");
            let p = wait("p::one");
            write_file("out.txt", `${r["q::a.txt"]} ${r["q::b.txt"]} ${r["q::c.txt"]} ${p}`);
            "#,
        )
        .run();
    out.ok();
    assert_eq!(
        out.read("out.txt"),
        "a.txt/1/first/[1, [2]] b.txt/2/first/[1, [2]] c.txt/3/first/[1, [2]] one/at definition/[1, [2]]"
    );
}

#[test]
fn a_cached_result_is_what_running_the_closure_now_would_give() {
    let ws = Ws::new(
        r#"
        let later = "at definition";
        let now = env("V", "unset");
        proc("later", #{ now: true, inputs: ["in.txt"] }, |ctx| { later });
        proc("now", #{ now: true, inputs: ["in.txt"] }, |ctx| now + "!");
        later = env("V", "unset");
        let r = wait(["later", "now"]);
        print(`later=${r.later} now=${r.now}`);
        "#,
    );
    ws.write("in.txt", "x");
    let first = ws.run(&[("V", "one")]);
    first.code(0).ran("later").ran("now");
    first.has("later=at definition now=one!");
    let second = ws.run(&[("V", "one")]);
    second.code(0).up_to_date("later").up_to_date("now");
    second.has("later=at definition now=one!");
    let third = ws.run(&[("V", "two")]);
    third.code(0).up_to_date("later").ran("now");
    third.has("later=at definition now=two!");
}

#[test]
fn an_expression_bodied_closure_is_up_to_date_and_its_helpers_count() {
    let script = |above: &str, first: &str, tag: &str| {
        format!(
            r#"{above}
            fn tag() {{ "{tag}" }}
            proc("expr", #{{ now: true, inputs: ["in.txt"] }}, |ctx| "{first}" + read_file("in.txt") + tag());
            proc("block", #{{ now: true, inputs: ["in.txt"] }}, |ctx| {{ tag() }});
            let r = wait(["expr", "block"]);
            print(`expr=${{r.expr}} block=${{r.block}}`);
            "#
        )
    };
    let ws = Ws::new(&script("", "a", "t1"));
    ws.write("in.txt", "x");
    ws.run(&[]).code(0).ran("expr").ran("block");
    ws.run(&[])
        .code(0)
        .up_to_date("expr")
        .up_to_date("block")
        .has("expr=axt1 block=t1");
    // Moved (lines above it): still up to date.
    ws.write("main.rhai", &script("\n// a comment\n", "a", "t1"));
    ws.run(&[]).code(0).up_to_date("expr").up_to_date("block");
    // The first operand of the expression body changed (Rhai positions such a body at its
    // operator): only that proc runs.
    ws.write("main.rhai", &script("", "b", "t1"));
    ws.run(&[])
        .code(0)
        .ran("expr")
        .up_to_date("block")
        .has("expr=bxt1 block=t1");
    // A script function the closures call changed.
    ws.write("main.rhai", &script("", "b", "t2"));
    ws.run(&[])
        .code(0)
        .ran("expr")
        .ran("block")
        .has("expr=bxt2 block=t2");
}

#[test]
fn an_input_whose_name_is_not_utf8_is_part_of_the_fingerprint() {
    let ws = Ws::new(
        r#"
        proc("cat", #{ now: true, inputs: ["in/*.txt"], shell: "cat in/*.txt > out.txt" });
        "#,
    );
    ws.write("in/good.txt", "good\n");
    let bad = ws.path(OsStr::from_bytes(b"in/bad\xff.txt"));
    std::fs::write(&bad, "bad\n").expect("write");
    ws.run(&[]).code(0).ran("cat");
    ws.run(&[]).code(0).up_to_date("cat");
    std::fs::write(&bad, "bad, changed\n").expect("rewrite");
    ws.run(&[]).code(0).ran("cat");
    let out = std::fs::read_to_string(ws.path("out.txt")).expect("out.txt");
    assert!(out.contains("bad, changed"), "{out}");
}

#[test]
fn glob_and_fanout_name_a_file_whose_name_is_not_utf8_instead_of_skipping_it() {
    let fanout = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("scripts/fanout.rhai");
    let ws = Ws::new(r#"print(glob("in/*.log"));"#);
    ws.write("in/a.log", "alpha\n");
    std::fs::write(ws.path(OsStr::from_bytes(b"in/bad\xff.log")), "bad\n").expect("write");
    ws.run(&[])
        .code(2)
        .has(r"main.rhai:1:7")
        .has(r#"matched "in/bad\xff.log", whose name is not UTF-8"#);
    ws.prun(&[fanout.to_str().expect("utf-8 path"), "in/*.log"], &[])
        .code(2)
        .has(r#""in/bad\xff.log""#);
    assert!(
        !ws.path("in/a.log.gz").exists(),
        "fanout compressed some files and skipped the one it could not name"
    );
}

#[test]
fn a_racily_clean_input_rewritten_with_the_same_size_and_mtime_reruns() {
    let ws = Ws::new(
        r#"
        proc("r", #{ now: true, inputs: ["in.txt"] }, |ctx| read_file("in.txt"));
        print(`r=${wait("r")}`);
        "#,
    );
    // A whole-second mtime that is not safely older than the fingerprint (in the future, so
    // that a slow machine cannot make it old by the time prun runs).
    let secs = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .expect("clock")
        .as_secs()
        + 30;
    let mtime = SystemTime::UNIX_EPOCH + Duration::from_secs(secs);
    ws.write("in.txt", "aaa");
    set_mtime(&ws.path("in.txt"), mtime);
    ws.run(&[]).code(0).ran("r").has("r=aaa");
    ws.write("in.txt", "bbb");
    set_mtime(&ws.path("in.txt"), mtime);
    ws.run(&[]).code(0).ran("r").has("r=bbb");
    ws.run(&[]).code(0).up_to_date("r").has("r=bbb");
}

#[test]
fn a_control_character_in_a_name_or_an_empty_name_is_a_definition_error() {
    Test::new()
        .script("let x = 1;\nproc(\"a\\nb\", #{ cmd: [\"true\"], now: true });\n")
        .run()
        .code(2)
        .err_has(r#"main.rhai:2:1: name "a\nb" contains a newline or another control character"#);
    Test::new()
        .script("proto(\"p::[x]\\r\", #{ cmd: [\"true\"] });\n")
        .run()
        .code(2)
        .err_has(r#"main.rhai:1:1: name "p::[x]\r" contains a newline"#);
    Test::new()
        .script("proto(\"p::[x]\", #{ cmd: [\"true\"] });\nrun(\"p::a\\tb\");\n")
        .run()
        .code(2)
        .err_has(r#"main.rhai:2:1: name "p::a\tb" contains a newline"#);
    Test::new()
        .script("proc(\"safe\u{202e}hs.exe\", #{ cmd: [\"true\"], now: true });\n")
        .run()
        .code(2)
        .err_has(r#"main.rhai:1:1: name "safe\u{202e}hs.exe" contains a newline"#);
    Test::new()
        .script("let x = 1;\nproc(\"\", #{ cmd: [\"true\"], now: true });\n")
        .run()
        .code(2)
        .err_has("main.rhai:2:1: a proc or proto name cannot be empty");
}

#[test]
fn a_deeply_nested_value_fails_its_proc_and_nothing_else() {
    let ws = Ws::new(
        r#"
        fn nest(n) { if n == 0 { [] } else { [nest(n - 1)] } }
        proc("ok", #{ inputs: ["in.txt"] }, |ctx| #{ answer: 42 });
        proc("built", #{ inputs: ["in.txt"] }, |ctx| {
            let a = [];
            for i in 0..150 { a = [a]; }
            a
        });
        proc("parsed", #{ inputs: ["in.txt"] }, |ctx| {
            let s = "";
            for i in 0..60000 { s += "["; }
            parse_json(s)
        });
        proc("recursed", #{ inputs: ["in.txt"] }, |ctx| nest(60000));
        proc("after", #{ deps: ["ok"] }, |ctx| ctx.results.ok.answer);
        run(["built", "parsed", "recursed", "after"]);
        print(`after=${wait("after")}`);
        "#,
    );
    ws.write("in.txt", "x");
    for round in 0..2 {
        let r = ws.run(&[]);
        r.code(1)
            .has("FAILED     built")
            .has("(a value nested deeper than 100 levels)")
            .has("FAILED     parsed")
            .has("recursion limit exceeded")
            .has("FAILED     recursed")
            .has("Stack overflow")
            .has("after=42");
        if round == 1 {
            r.up_to_date("ok").up_to_date("after");
        }
    }
}

/// A cached result of NaN or infinity would come back as `()` (JSON has neither): such
/// a result fails the proc like any other the task DB cannot store, nested or not.
/// A number read back from the cache is the number saved, to the last bit: JSON's
/// shortest decimal of it parsed exactly. `1e15 + 0.5` came back as `1e15 + 0.375`.
#[test]
fn a_cached_number_is_read_back_to_the_last_bit() {
    let ws = Ws::new(
        r#"
proc("a", #{ inputs: ["in.txt"] }, |ctx| [1.0e15 + 0.5, 0.1 + 0.2, 2.2250738585072014e-308]);
proc("b", #{ deps: ["a"], no_skip: true }, |ctx| {
    let v = ctx.results["a"];
    write_file(`seen-${env("PASS")}.txt`, `${v[0] - 1.0e15} ${v[1] - 0.3} ${v[2] * 1.0e308}`);
});
run("b");
"#,
    );
    ws.write("in.txt", "x\n");
    ws.run(&[("PASS", "1")]).code(0).ran("a");
    ws.run(&[("PASS", "2")]).code(0).up_to_date("a");
    let seen: Vec<String> = ["seen-1.txt", "seen-2.txt"]
        .iter()
        .map(|f| std::fs::read_to_string(ws.path(f)).expect("read what b saw"))
        .collect();
    assert_eq!(
        seen[0], seen[1],
        "the cached result differs from the one computed"
    );
    assert!(seen[0].starts_with("0.5 "), "{seen:?}");
}

#[test]
fn a_result_that_is_nan_or_infinite_fails_instead_of_coming_back_as_unit() {
    let out = Test::new()
        .file("x.txt", "x\n")
        .script(
            r#"
proc("inf", #{ inputs: ["x.txt"] }, |ctx| 1.0 / 0.0);
proc("nan", #{ inputs: ["x.txt"] }, |ctx| #{ avg: [0.0 / 0.0] });
proc("fine", #{ inputs: ["x.txt"] }, |ctx| 1.5);
run(["inf", "nan", "fine"]);
"#,
        )
        .run();
    out.code(1).proc_state("SUCCEEDED", "fine");
    for (name, number) in [("inf", "inf"), ("nan", "NaN")] {
        let line = out.proc_line("FAILED", name);
        assert!(
            line.contains(&format!(
                "cannot be stored in the task DB (the number {number}: JSON has no NaN or infinity)"
            )),
            "{line}\n{}",
            out.describe()
        );
    }
}

#[test]
fn a_result_is_the_same_whether_the_proc_ran_or_came_from_the_cache() {
    // A character came back from the cache as a string; without inputs (nothing cached)
    // a closure, blob or timestamp result succeeded, and the report showed `anon$...`.
    let ws = Ws::new(
        r#"
proc("ch", #{ inputs: ["x.txt"] }, |ctx| ['c', #{ k: 'd' }]);
proc("show", #{ deps: ["ch"], no_skip: true }, |ctx| {
    let r = ctx.results.ch;
    print(`types: ${type_of(r[0])} ${type_of(r[1].k)}`);
});
proc("closure", |ctx| |x| x);
proc("blob", |ctx| blob(2, 65));
proc("stamp", |ctx| timestamp());
proc("range", |ctx| 1..3);
run(["show", "closure", "blob", "stamp", "range"]);
"#,
    );
    ws.write("x.txt", "x\n");
    set_mtime(
        &ws.path("x.txt"),
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000),
    );
    let first = ws.run(&[]);
    first.code(1).ran("ch").has("types: string string");
    let second = ws.run(&[]);
    second.code(1).up_to_date("ch").has("types: string string");
    for (name, kind) in [
        ("closure", "closure"),
        ("blob", "blob"),
        ("stamp", "timestamp"),
        ("range", "range"),
    ] {
        let line = second
            .stdout
            .lines()
            .find(|l| l.starts_with(&format!("FAILED     {name} (")))
            .unwrap_or_else(|| panic!("no FAILED line for {name}\n{}", second.describe()));
        assert!(
            line.contains(&format!(
                "its result cannot be stored in the task DB (a value of type {kind})"
            )),
            "{line}"
        );
    }
}

/// `no_change` keeps a proc's stamp (its dependents stay UP_TO_DATE) only when the
/// result its dependents saw was `()` already: ending with `no_change` after returning a
/// value leaves `()`, and a dependent kept with what it made of the value would not give
/// what running it now gives (nor what a run without the task DB gives).
#[test]
fn no_change_after_a_value_runs_the_dependents_that_saw_the_value() {
    let ws = Ws::new(
        r#"
proc("x", #{ inputs: ["x.txt"] }, |ctx| {
    let t = read_file("x.txt");
    if t == "same" { throw no_change("same"); }
    t
});
proc("y", #{ deps: ["x"] }, |ctx| `y saw <${ctx.results.x}>`);
proc("show", #{ deps: ["y"], no_skip: true }, |ctx| print(ctx.results.y));
run("show");
"#,
    );
    ws.write("x.txt", "v1");
    ws.run(&[]).code(0).ran("x").ran("y").has("y saw <v1>");
    ws.write("x.txt", "same");
    ws.run(&[])
        .code(0)
        .ran("y")
        .has("y saw <>")
        .lacks("y saw <v1>");
    ws.run(&[]).code(0).up_to_date("y").has("y saw <>");
    ws.prun(&["--no-db", "main.rhai"], &[])
        .code(0)
        .has("y saw <>");
}

/// `interactive` hands a closure's commands prun's own stdout: what they print is no
/// longer in their result. Turning it on or off runs the proc again, so that its cached
/// result is what running it now gives.
#[test]
fn turning_interactive_on_runs_the_proc_again() {
    let script = |interactive: bool| {
        format!(
            r#"
proc("p", #{{ inputs: ["in.txt"], interactive: {interactive} }}, |ctx| shell("echo hi").stdout);
proc("show", #{{ deps: ["p"], no_skip: true }}, |ctx| print(`p gave <${{ctx.results.p}}>`));
run("show");
"#
        )
    };
    let ws = Ws::new(&script(false));
    ws.write("in.txt", "x\n");
    ws.run(&[]).code(0).ran("p").has("p gave <hi\n>");
    ws.run(&[]).code(0).up_to_date("p");
    ws.write("main.rhai", &script(true));
    ws.run(&[]).code(0).ran("p").has("p gave <>");
}

/// `--deny-env NAME` hides a variable from the script and its commands: a result cached
/// while they saw it (the variable's value, maybe a secret) is not what running the proc
/// now gives.
#[test]
fn a_variable_hidden_by_deny_env_runs_the_procs_that_saw_it_again() {
    let ws = Ws::new(
        r#"
proc("sh", #{ inputs: ["in.txt"], outputs: ["sh.out"], shell: "echo \"<$PRUN_G1_TOKEN>\" > sh.out" });
proc("cl", #{ inputs: ["in.txt"] }, |ctx| env("PRUN_G1_TOKEN"));
proc("other", #{ inputs: ["in.txt"] }, |ctx| "no variable");
proc("show", #{ deps: ["sh", "cl"], no_skip: true }, |ctx| print(`cl gave <${ctx.results.cl}>`));
run(["show", "other"]);
"#,
    );
    ws.write("in.txt", "x\n");
    let env = [("PRUN_G1_TOKEN", "s3cret")];
    let deny = ["main.rhai", "--deny-env", "PRUN_G1_TOKEN"];
    ws.run(&env)
        .code(0)
        .ran("sh")
        .ran("cl")
        .has("cl gave <s3cret>");
    ws.prun(&deny, &env)
        .code(0)
        .ran("sh")
        .ran("cl")
        .has("cl gave <>");
    assert_eq!(std::fs::read_to_string(ws.path("sh.out")).unwrap(), "<>\n");
    ws.prun(&deny, &env)
        .code(0)
        .up_to_date("sh")
        .up_to_date("cl");
    // The rules count, not the names they hide: a hidden variable gone changes nothing.
    ws.prun(&deny, &[]).code(0).up_to_date("other");
}

/// A program the policy now refuses (`--no-shell`, `--allow`) fails its proc, cached or
/// not: running it now would be refused, so its earlier result is not taken.
#[test]
fn a_proc_whose_command_the_policy_now_refuses_is_not_up_to_date() {
    let ws = Ws::new(
        r#"
proc("sh", #{ inputs: ["in.txt"], shell: "echo hi" });
proc("cl", #{ inputs: ["in.txt"] }, |ctx| exec(["echo", "hi"]).stdout);
run(["sh", "cl"]);
"#,
    );
    ws.write("in.txt", "x\n");
    ws.run(&[]).code(0).ran("sh").ran("cl");
    ws.run(&[]).code(0).up_to_date("sh").up_to_date("cl");
    ws.prun(&["main.rhai", "--no-shell"], &[])
        .code(1)
        .has("FAILED     sh (")
        .has("shell strings are off")
        .ran("cl");
    ws.prun(&["main.rhai", "--allow", "true"], &[])
        .code(1)
        .has("FAILED     cl (")
        .has("is not on the allow list");
}

/// `ctx.deps_changed` and `ctx.changed_deps` say which dependencies ran in this run. A
/// later run judges a proc UP_TO_DATE only when none did, where its body would read
/// `false` and `[]`: a result made of them while some had run is not cached (it was, and
/// the next run handed dependents `true` where running the proc now gives `false`).
#[test]
fn a_result_made_of_deps_changed_is_what_running_the_proc_now_would_give() {
    let ws = Ws::new(
        r#"
proc("a", #{ inputs: ["a.txt"] }, |ctx| read_file("a.txt"));
proc("flag", #{ deps: ["a"] }, |ctx| ctx.deps_changed);
proc("names", #{ deps: ["a"] }, |ctx| { let n = ctx.changed_deps; `${n}` });
proc("seen", #{ deps: ["flag"] }, |ctx| `flag=${ctx.results.flag}`);
proc("show", #{ deps: ["seen", "names"], no_skip: true }, |ctx| {
    print(`${ctx.results.seen} names=${ctx.results.names}`);
});
run("show");
"#,
    );
    ws.write("a.txt", "v1");
    ws.run(&[])
        .code(0)
        .ran("flag")
        .has("flag=true names=[\"a\"]");
    ws.run(&[])
        .code(0)
        .up_to_date("a")
        .ran("flag")
        .ran("names")
        .ran("seen")
        .has("flag=false names=[]");
    ws.run(&[])
        .code(0)
        .up_to_date("flag")
        .up_to_date("names")
        .up_to_date("seen")
        .has("flag=false names=[]");
    ws.write("a.txt", "v2");
    ws.run(&[])
        .code(0)
        .ran("a")
        .ran("flag")
        .has("flag=true names=[\"a\"]");
}

/// A proc with `NO_FAILURES` is FAILED_DEP once a proc of the run has failed, cached
/// result or not: running it now gives FAILED_DEP, and its dependents (a deploy) must not
/// run on its earlier result, as they do not in a run without the task DB.
#[test]
fn a_no_failures_proc_after_a_failure_is_failed_dep_not_up_to_date() {
    failure_stops_a_cached_gate(
        r#"
proc("check", #{ wave: 1, shell: "exit $(cat code.txt)" });
proc("gate", #{ wave: 2, inputs: ["in.txt"], deps: [NO_FAILURES] }, |ctx| "gate passed");
proc("deploy", #{ wave: 2, deps: ["gate"], no_skip: true }, |ctx| print("DEPLOYED"));
run(["check", "deploy"]);
"#,
    );
}

/// Runs `script`, whose `gate` (`NO_FAILURES`, with inputs) comes before `deploy`, with
/// `check` passing, then failing: the second run makes `gate` FAILED_DEP, not UP_TO_DATE,
/// and `deploy` does not run.
fn failure_stops_a_cached_gate(script: &str) {
    let ws = Ws::new(script);
    ws.write("in.txt", "x\n");
    ws.write("code.txt", "0\n");
    ws.run(&[]).code(0).ran("gate").has("DEPLOYED");
    ws.write("code.txt", "1\n");
    ws.run(&[])
        .code(1)
        .has("FAILED_DEP gate: run aborted: a proc has failed")
        .lacks("UP_TO_DATE gate")
        .lacks("DEPLOYED");
}

/// The same when the failure comes while the `NO_FAILURES` proc is being judged (its
/// `inputs` closure waits for it here): a verdict that it is UP_TO_DATE does not let it,
/// and so its dependents, through.
#[test]
fn a_no_failures_proc_judged_while_a_proc_fails_is_failed_dep_not_up_to_date() {
    failure_stops_a_cached_gate(
        r#"
set_options(#{ parallel: 4 });
let inputs = |ctx| {
    let deadline = now_ms() + 30000;
    while read_file("code.txt") == "1\n" && state("check") != "FAILED" && now_ms() < deadline {
        sleep(0.01);
    }
    ["in.txt"]
};
proc("check", #{ shell: "exit $(cat code.txt)" });
proc("gate", #{ inputs: [inputs], deps: [NO_FAILURES] }, |ctx| "gate passed");
proc("deploy", #{ deps: ["gate"], no_skip: true }, |ctx| print("DEPLOYED"));
run(["check", "deploy"]);
"#,
    );
}

/// A variable a proc reads counts in its fingerprint however the text names it: bare in
/// the shell's arithmetic, by its length or as the name of another (`${!REF}`: every
/// variable counts), or through a pointer to `env` (called, captured with its name
/// curried, or made at run time by `Fn` of a computed name or `eval`).
#[test]
fn variables_read_through_arithmetic_indirection_or_a_pointer_to_env_count() {
    let ws = Ws::new(
        r#"
proc("arith", #{ inputs: ["in.txt"], shell: "echo $((PRUN_C1_N * 2)) > arith.txt" });
proc("length", #{ inputs: ["in.txt"], shell: "echo ${#PRUN_C1_N} > length.txt" });
proc("indirect", #{ inputs: ["in.txt"], cmd: ["bash", "-c", "echo ${!PRUN_C1_REF} > indirect.txt"] });
let curried = Fn("env").curry("PRUN_C1_N");
proc("pointer", #{ inputs: ["in.txt"] }, |ctx| Fn("env").call("PRUN_C1_N"));
proc("captured", #{ inputs: ["in.txt"] }, |ctx| curried.call());
proc("computed", #{ inputs: ["in.txt"] }, |ctx| Fn("en" + "v").call("PRUN_C1_N"));
proc("evaluated", #{ inputs: ["in.txt"] }, |ctx| eval("en" + "v(\"PRUN_C1_N\")"));
proc("other", #{ inputs: ["in.txt"] }, |ctx| "no variable");
proc("show", #{ deps: ["pointer", "captured", "computed", "evaluated"], no_skip: true }, |ctx| {
    let r = ctx.results;
    print(`got ${r.pointer} ${r.captured} ${r.computed} ${r.evaluated}`);
});
run(["arith", "length", "indirect", "show", "other"]);
"#,
    );
    ws.write("in.txt", "x\n");
    let five = [("PRUN_C1_N", "5"), ("PRUN_C1_REF", "PRUN_C1_N")];
    ws.run(&five).code(0).has("got 5 5 5 5");
    ws.run(&five)
        .code(0)
        .up_to_date("arith")
        .up_to_date("pointer");
    let ten = [("PRUN_C1_N", "10"), ("PRUN_C1_REF", "PRUN_C1_N")];
    let run = ws.run(&ten);
    run.code(0).has("got 10 10 10 10").up_to_date("other");
    for name in ["arith", "length", "indirect"] {
        run.ran(name);
    }
    let read = |f: &str| std::fs::read_to_string(ws.path(f)).unwrap();
    assert_eq!(
        [read("arith.txt"), read("length.txt"), read("indirect.txt")],
        ["20\n", "2\n", "10\n"]
    );
}

/// Params set after a proc was judged, while it waited for a lock, are the ones it runs
/// with: it is judged again, so its result is saved under a fingerprint of those (it was
/// saved under the params it was judged with, and taken by later runs whatever the script
/// then set). `hold` and `p` are judged together while the lock is free (a proc is not
/// judged while another holds its lock); `hold`, defined first, takes it.
#[test]
fn params_set_while_a_judged_proc_waits_for_a_lock_are_in_its_fingerprint() {
    let ws = Ws::new(&with_wait_until(
        r#"
set_params(#{ v: "none" });
proc("hold", #{ locks: ["l"], inputs: ["in.txt"], no_skip: true },
     || wait_until("go", || file_info("go.txt") != ()));
proc("p", #{
    locks: ["l"],
    inputs: [|ctx| { write_file("judged.txt", ""); ["in.txt"] }],
}, |ctx| ctx.params.v);
proc("show", #{ deps: ["p"], no_skip: true }, |ctx| print(`p gave ${ctx.results.p}`));
run(["hold", "show"]);
wait_until("hold running", || state("hold") == "RUNNING");
wait_until("judging", || file_info("judged.txt") != ());
set_params(#{ v: read_file("v.txt") });
write_file("go.txt", "");
wait();
"#,
    ));
    ws.write("in.txt", "x\n");
    for v in ["one", "one", "two"] {
        let _ = std::fs::remove_file(ws.path("go.txt"));
        let _ = std::fs::remove_file(ws.path("judged.txt"));
        ws.write("v.txt", v);
        ws.run(&[]).code(0).has(&format!("p gave {v}\n"));
    }
}

/// A proc that names a lock another proc holds is judged only once that lock is free, so
/// that what the holder changes before it lets go (here the params) reaches it: it was
/// judged at once, UP_TO_DATE with its earlier result while the holder still held the
/// lock, where running it after the holder gives the new params.
#[test]
fn a_proc_is_judged_only_once_the_lock_it_names_is_free() {
    let ws = Ws::new(&with_wait_until(
        r#"
set_params(#{ v: "one" });
proc("d", #{ inputs: ["in.txt"] }, |ctx| "d");
proc("hold", #{ locks: ["l"] }, |ctx| {
    wait_until("go", || file_info("go.txt") != ());
    set_params(#{ v: read_file("v.txt") });
});
proc("p", #{ locks: ["l"], deps: ["d"] }, |ctx| ctx.params.v);
proc("show", #{ deps: ["p"], no_skip: true }, |ctx| print(`p gave ${ctx.results.p}`));
run("d");
wait("d");
run("hold");
wait_until("hold running", || state("hold") == "RUNNING");
run("show");
write_file("go.txt", "");
wait();
"#,
    ));
    ws.write("in.txt", "x\n");
    let run = |v: &str| {
        let _ = std::fs::remove_file(ws.path("go.txt"));
        ws.write("v.txt", v);
        let run = ws.run(&[]);
        run.code(0).has(&format!("p gave {v}\n"));
        run
    };
    run("one").ran("p");
    run("two").up_to_date("d").ran("p");
    run("two").up_to_date("p");
}

/// Only a change of the params has a judged proc judged again (or a retry run without a
/// fingerprint, saving no result): the answer of a dependency closure and the same params
/// set again, while `judged` is judged and while `retried` waits to retry, change no
/// fingerprint. Each counted as a change: `judged` was judged twice, and `retried` saved
/// no result, so the next run ran it again instead of finding it UP_TO_DATE.
#[test]
fn a_dependency_closure_answered_meanwhile_neither_judges_a_proc_again_nor_loses_its_result() {
    let ws = Ws::new(&with_wait_until(
        r#"
let inputs = |ctx| {
    let before = if file_info("judged.log") == () { "" } else { read_file("judged.log") };
    write_file("judged.log", before + "judged\n");
    wait_until("answer", || file_info("answered.txt") != ());
    ["in.txt"]
};
set_params(#{ mode: "same" });
proc("d", #{ inputs: ["in.txt"] }, |ctx| "d");
proc("judged", #{ inputs: [inputs] }, |ctx| "judged");
// Judged at once (no inputs), not behind `judged` on the worker that judges it.
proc("retried", #{ deps: ["d"], retries: 1 }, |ctx| {
    if file_info("tried.txt") == () {
        write_file("tried.txt", "");
        wait_until("answer", || file_info("answered.txt") != ());
        throw "the first attempt fails";
    }
    "retried"
});
run("d");
wait("d");
run(["judged", "retried"]);
wait_until("judging and a first attempt",
           || file_info("judged.log") != () && file_info("tried.txt") != ());
// Its dependency closure is asked as it is defined.
proc("x", #{ deps: [|ctx| []] }, |ctx| "x");
set_params(#{ mode: "same" });
write_file("answered.txt", "");
wait();
"#,
    ));
    ws.write("in.txt", "x\n");
    let run = || {
        let _ = std::fs::remove_file(ws.path("answered.txt"));
        let _ = std::fs::remove_file(ws.path("judged.log"));
        ws.run(&[])
    };
    run().code(0).ran("judged").ran("retried");
    let judged = std::fs::read_to_string(ws.path("judged.log")).expect("judged.log");
    assert_eq!(judged, "judged\n", "judged once");
    run()
        .code(0)
        .up_to_date("d")
        .up_to_date("judged")
        .up_to_date("retried");
}

/// The program a command runs counts only when it is named in `inputs`: `./tool`
/// rebuilt runs the proc that names it again, and not the one that does not (see
/// docs/decisions.md, "The program a command runs is not in the fingerprint").
#[test]
fn a_program_named_in_inputs_runs_its_proc_again_when_rebuilt() {
    let ws = Ws::new(
        r#"
proc("named", #{ inputs: ["tool", "in.txt"], cmd: ["./tool"] });
proc("unnamed", #{ inputs: ["in.txt"], cmd: ["./tool"] });
run(["named", "unnamed"]);
"#,
    );
    ws.write("in.txt", "x\n");
    let build = |text: &str| {
        ws.write("tool", &format!("#!/bin/sh\necho {text}\n"));
        let mode = std::os::unix::fs::PermissionsExt::from_mode(0o755);
        std::fs::set_permissions(ws.path("tool"), mode).expect("chmod");
    };
    build("v1");
    ws.run(&[]).code(0).ran("named").ran("unnamed");
    build("v2");
    ws.run(&[]).code(0).ran("named").up_to_date("unnamed");
}

/// A value of an embedder's own type, kept from one pure function and read by another
/// in a closure that captured it: Rhai writes it as its type's name alone, so no
/// fingerprint can tell one from another, and the closure is never UP_TO_DATE.
#[test]
fn a_closure_capturing_a_value_prun_cannot_read_is_never_up_to_date() {
    #[derive(Clone)]
    struct Token(String);
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("in.txt"), "x").expect("write");
    let script = format!(
        r#"let t = token();
        proc("p", #{{ inputs: ["{}"] }}, || token_text(t));
        run("p");"#,
        dir.path().join("in.txt").display()
    );
    let run = |text: &'static str| {
        let report = prun::Runtime::builder()
            .task_db(dir.path().join("tasks.db"))
            .log_dir(dir.path().join("logs"))
            .state_dir(dir.path().join("state"))
            .register_pure_fn("token", move || Token(text.to_string()))
            .register_pure_fn("token_text", |t: Token| t.0)
            .build()
            .expect("runtime")
            .run_str(&script, [""; 0])
            .expect("run");
        let p = report.proc("p").expect("p in the report").clone();
        (p.state, p.result)
    };
    assert_eq!(run("one"), (prun::State::Succeeded, "one".into()));
    assert_eq!(run("two"), (prun::State::Succeeded, "two".into()));
}

/// The error a failed `wait` threw, caught and captured, counts by its text.
#[test]
fn a_captured_wait_error_counts_by_its_text() {
    let ws = Ws::new(
        r#"
proc("x", #{ shell: "exit $(cat code.txt)" });
run("x");
let e = "";
try { wait("x"); } catch (err) { e = err; }
proc("p", #{ inputs: ["in.txt"] }, |ctx| print(`p says ${e}`));
run("p");
"#,
    );
    ws.write("in.txt", "x\n");
    ws.write("code.txt", "3\n");
    ws.run(&[]).code(1).ran("p").has("p says proc \"x\" FAILED");
    ws.run(&[]).code(1).up_to_date("p");
    ws.write("code.txt", "4\n");
    ws.run(&[]).code(1).ran("p").has("exited with code 4");
}

/// A module's variable holding a function pointer counts by the function it names, which
/// its text does not say when the name is computed.
#[test]
fn a_module_s_function_pointer_counts_by_the_function_it_names() {
    let ws = Ws::new(
        r#"
import "lib" as lib;
fn a() { "from a" }
fn b() { "from b" }
proc("p", #{ inputs: ["in.txt"] }, |ctx| print(`p says ${lib::F.call()}`));
run("p");
"#,
    );
    ws.write("lib.rhai", r#"export const F = Fn(read_file("name.txt"));"#);
    ws.write("in.txt", "x\n");
    ws.write("name.txt", "a");
    ws.run(&[]).code(0).has("p says from a");
    ws.write("name.txt", "b");
    ws.run(&[]).code(0).ran("p").has("p says from b");
}

/// Params count in fingerprints by their text: a value whose contents prun cannot read
/// (the error a failed `wait` threw) is refused, naming its key, as a function is; it
/// counted the same whatever it held.
#[test]
fn set_params_refuses_a_value_whose_contents_no_fingerprint_would_see() {
    let ws = Ws::new(
        r#"
proc("x", #{ shell: "exit 1" });
run("x");
try { wait("x"); } catch (err) { set_params(#{ last: #{ error: err } }); }
"#,
    );
    ws.run(&[]).code(2).has(
        "set_params: `last.error` is a value of type ProcFailure, whose contents prun cannot read",
    );
}

/// A module's function that imports a module in its body reads that module only as it
/// runs, so its text is in no fingerprint: a closure that calls into modules then is
/// never UP_TO_DATE, as one that imports a module itself is.
#[test]
fn a_closure_calling_a_module_function_that_imports_a_module_is_never_up_to_date() {
    let ws = Ws::new(
        r#"
import "outer" as outer;
proc("p", #{ inputs: ["in.txt"] }, |ctx| print(`p says ${outer::f()}`));
proc("plain", #{ inputs: ["in.txt"] }, |ctx| "no module");
run(["p", "plain"]);
"#,
    );
    ws.write(
        "outer.rhai",
        r#"fn f() { import "inner" as inner; inner::g() }"#,
    );
    ws.write("inner.rhai", r#"fn g() { "one" }"#);
    ws.write("in.txt", "x\n");
    ws.run(&[]).code(0).has("p says one");
    ws.write("inner.rhai", r#"fn g() { "two" }"#);
    ws.run(&[])
        .code(0)
        .ran("p")
        .has("p says two")
        .up_to_date("plain");
}

/// `script` after a Rhai function `wait_until(what, done)` that polls the closure `done`
/// every 10 ms and throws after 30 s.
fn with_wait_until(script: &str) -> String {
    format!(
        r#"fn wait_until(what, done) {{
    let deadline = now_ms() + 30000;
    while !done.call() {{
        if now_ms() > deadline {{ throw `no ${{what}} in 30 s`; }}
        sleep(0.01);
    }}
}}
{script}"#
    )
}

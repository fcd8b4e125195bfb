//! Script errors name the script, line and column.

use crate::support::Test;

#[test]
fn syntax_error_names_line_and_column() {
    let out = Test::new()
        .script("proc(\"n\", #{ now: true, cmd: [\"touch\", \"ran\"] });\nlet b = ;\n")
        .run();
    out.code(2).err_has("main.rhai:2:9").err_has("syntax error");
    assert!(
        !out.exists("ran"),
        "a proc ran although the script does not compile"
    );
}

#[test]
fn runtime_error_at_top_level() {
    let out = Test::new().script("let a = 1;\n  throw \"boom\";\n").run();
    out.code(2);
    assert!(
        out.stderr
            .lines()
            .any(|l| l == "prun: error: main.rhai:2:3: boom"),
        "{}",
        out.describe()
    );
}

#[test]
fn runtime_error_in_a_function_at_top_level() {
    let out = Test::new()
        .script("fn f(x) {\n    x.no_such_method()\n}\nf(1);\n")
        .run();
    out.code(2)
        .err_has("main.rhai:2:")
        .err_has("no_such_method");
}

#[test]
fn throw_inside_a_proc_fails_the_proc_with_its_location() {
    let out = Test::new()
        .script(
            r#"proc("p", |ctx| {
    let x = 1;
    throw "kaput";
});
proc("q", #{ deps: ["p"] }, |ctx| 1);
run("q");
"#,
        )
        .run();
    out.code(1).line(r#"FAILED_DEP q: dependency "p" failed"#);
    let p = out.proc_line("FAILED", "p");
    assert!(p.contains("main.rhai:3:5") && p.contains("kaput"), "{p}");
}

#[test]
fn unknown_proc_option_names_the_key() {
    let out = Test::new()
        .script("proc(\"p\", #{ bogus_key: 1 }, |ctx| 1);\nrun(\"p\");\n")
        .run();
    out.code(2)
        .err_has("bogus_key")
        .err_has("\"p\"")
        .err_has("main.rhai:1:1");
}

#[test]
fn errors_in_an_imported_module_name_its_file_and_an_import_cycle_is_named() {
    // The positions inside the module were shown against the importing script
    // (`main.rhai:2:11`), and modules importing each other printed thousands of
    // "in call to" lines before "the script nests too deep".
    let out = Test::new()
        .file("lib/util.rhai", "let x = 1;\nlet y = x / 0;\n")
        .script("import \"lib/util\" as u;\n")
        .run();
    out.code(2)
        .err_has("lib/util.rhai:2:11: Division by zero")
        .err_has("in the import of lib/util.rhai at main.rhai:1:8");
    let out = Test::new()
        .file("broken.rhai", "fn x() { 1 +* }\n")
        .script("import \"broken\" as b;\n")
        .run();
    out.code(2).err_has("broken.rhai:1:13: syntax error");
    let out = Test::new()
        .file("a.rhai", "import \"b\" as b;\n")
        .file("b.rhai", "import \"a\" as a;\n")
        .script("import \"a\" as a;\n")
        .run();
    out.code(2)
        .err_has("import cycle: a.rhai -> b.rhai -> a.rhai")
        .err_has("in the import of a.rhai at main.rhai:1:8");
    assert!(out.stderr.lines().count() < 10, "{}", out.describe());
}

#[test]
fn a_module_file_that_cannot_be_read_is_not_called_missing() {
    // A directory named lib.rhai, or a file that is not UTF-8, was "module not found".
    let out = Test::new()
        .file("lib.rhai/keep", "")
        .script("import \"lib\" as l;\n")
        .run();
    out.code(2)
        .err_has(&format!(
            "cannot read module lib.rhai (in {}): Is a directory",
            out.dir.path().display()
        ))
        .err_has("in the import of lib.rhai at main.rhai:1:8");
}

#[test]
fn throwing_nothing_still_says_something() {
    // `throw ()` (or a bare `throw;`) failed the proc with an empty message.
    let out = Test::new()
        .script("proc(\"b\", || throw ());\nrun(\"b\");\n")
        .run();
    out.code(1)
        .out_has("main.rhai:1:14: the script threw () (an error without a message)");
}

#[test]
fn an_inclusive_range_in_an_error_reads_as_a_range() {
    // Rhai names the type of `1..=3` "range=", which messages printed as it was.
    let out = Test::new().script("(1..=3).map(|x| x);\n").run();
    out.code(2)
        .err_has("function map(a range, a closure) does not exist");
    let out = Test::new().script("let r = 1..=3;\nr.foo;\n").run();
    out.code(2)
        .err_has("a getter is not registered for type a range");
}

#[test]
fn skip_thrown_outside_a_body_and_prun_values_thrown_are_told_in_words() {
    // The message was the Rust type's path: "prun::script::values::SkipSignal".
    let cases = [
        (
            r#"throw skip("why");"#,
            r#"skip("why") ends a proc's body as SKIPPED: thrown here, it is an error"#,
        ),
        (
            r#"proc("a", |ctx| 1);
proc("p", #{ deps: [|ctx| { throw no_change(); }] }, |ctx| 1);"#,
            "no_change() ends a proc's body as SKIPPED: thrown here, it is an error",
        ),
        ("throw NO_FAILURES;", "the script threw NO_FAILURES"),
        (
            r#"throw when_scheduled("a");"#,
            "the script threw when_scheduled(...)",
        ),
    ];
    for (script, said) in cases {
        let out = Test::new().script(script).run();
        out.code(2).err_has(said);
        assert!(!out.stderr.contains("prun::"), "{}", out.describe());
    }
    let out = Test::new()
        .script(r#"proc("p", #{ inputs: [|ctx| { throw skip("later"); }] }, |ctx| 1); run("p");"#)
        .run();
    out.code(1)
        .out_has(r#"skip("later") ends a proc's body as SKIPPED: thrown here, it is an error"#);
}

#[test]
fn a_mistyped_name_gets_the_nearest_proc_from_state_as_from_run_and_wait() {
    // `state("fetc")` said only `no proc named "fetc" exists`, where `run`, `start`,
    // `create` and `wait` add the nearest names, as docs/script-api.md promises for all.
    for call in ["state", "run", "start", "create", "wait"] {
        let out = Test::new()
            .script(&format!(
                "proc(\"fetch\", || 1);\nprint({call}(\"fetc\"));\n"
            ))
            .run();
        out.code(2)
            .err_has("main.rhai:2:")
            .err_has("\"fetc\"")
            .err_has("did you mean \"fetch\"?");
    }
}

#[test]
fn require_without_a_tool_says_how_many_it_takes() {
    // `require()` said "`require` is called as require()", the very call that failed: its
    // forms were registered without parameter information.
    Test::new()
        .script("let x = 1;\nrequire();\n")
        .run()
        .code(2)
        .err_has("main.rhai:2:1: function require() does not exist: `require` takes 1 to 8 values");
}

#[test]
fn a_mistyped_ctx_member_gets_the_nearest_member() {
    // `ctx.nmae` said "Unknown property 'nmae' - a getter is not registered for type ctx".
    let out = Test::new()
        .script("proc(\"p\", |ctx| ctx.nmae);\nrun(\"p\");\n")
        .run();
    out.code(1);
    let failed = out.proc_line("FAILED", "p");
    assert!(
        failed.contains("main.rhai:1:21: ctx has no member `nmae`; did you mean `name`?")
            && failed.contains("input_fingerprint")
            && !failed.contains("to_string"),
        "{failed}"
    );
}

#[test]
fn a_syntax_error_in_a_module_is_placed_and_worded_as_one_in_the_script() {
    // A module's missing `;` was reported at the next statement (`lib/util.rhai:3:2`) and
    // as "Syntax error", unlike the script's.
    Test::new()
        .file("lib/util.rhai", "fn g() {\n let x = 1\n let y = 2; }\n")
        .script("import \"lib/util\" as u;\n")
        .run()
        .code(2)
        .err_has("lib/util.rhai:2:11: syntax error: Expecting ';' to terminate this statement");
}

/// A limit met in a closure's body was placed at the `proc(` call that handed the closure
/// over (Rhai moves a limit's position to each call it passes through, the last being
/// prun's): it names the closure instead, and no line.
#[test]
fn a_limit_met_in_a_body_names_the_closure_not_the_proc_call() {
    let out = Test::new()
        .script(
            r#"fn deep(n) { deep(n + 1) }
proc("b", || {
    deep(1)
});
run("b");
"#,
        )
        .run();
    out.code(1)
        .out_has("in the closure at main.rhai:2:11 (Rhai keeps no line for this error)");
    let b = out.proc_line("FAILED", "b");
    assert!(
        b.ends_with(": Stack overflow (over the limit max_call_levels)"),
        "{b}\n{}",
        out.describe()
    );
}

/// `prun log` of a proc whose script ran but printed nothing said "no run of main.rhai is
/// recorded; did you mean `main.rhai`?": the script has runs, only no log.
#[test]
fn a_log_that_was_never_written_does_not_say_the_script_never_ran() {
    let out = Test::new()
        .script("proc(\"a\", || 1);\nrun(\"a\");\n")
        .run();
    out.ok();
    let log = std::process::Command::new(env!("CARGO_BIN_EXE_prun"))
        .args(["log", "main.rhai", "a"])
        .current_dir(out.dir.path())
        .env("XDG_STATE_HOME", out.dir.path().join("state"))
        .output()
        .expect("prun log");
    let stderr = String::from_utf8_lossy(&log.stderr);
    assert_eq!(log.status.code(), Some(64), "{stderr}");
    assert!(stderr.contains("no log of proc \"a\""), "{stderr}");
    assert!(!stderr.contains("no run of"), "{stderr}");
}

#[test]
fn a_newline_in_the_script_s_name_keeps_each_position_on_one_line() {
    // A script named `bad<newline>name.rhai` printed `bad` on a line of its own and
    // `name.rhai:1:9: ...` on the next: each position is one word on one line, the
    // newline written out as `\n` (as a control character elsewhere in an error).
    let syntax = Test::new()
        .file("bad\nname.rhai", "let x = ;\n")
        .raw(&["bad\nname.rhai"])
        .run();
    syntax.code(2);
    err_line(
        &syntax,
        "prun: error: bad\\nname.rhai:1:9: syntax error: Unexpected ';'",
    );
    let check = Test::new()
        .file("bad\nname.rhai", "let x = ;\n")
        .raw(&["check", "bad\nname.rhai"])
        .run();
    check.code(2);
    err_line(&check, "bad\\nname.rhai:1:9: syntax error: Unexpected ';'");
    let closure = Test::new()
        .file(
            "a\tb\nc.rhai",
            "proc(\"p\", |ctx| {\n    throw \"boom\";\n});\nrun(\"p\");\n",
        )
        .raw(&["--no-db", "a\tb\nc.rhai"])
        .run();
    let failed = closure.code(1).proc_line("FAILED", "p");
    assert!(failed.ends_with("a\\tb\\nc.rhai:2:5: boom"), "{failed}");
    closure.line("             in the closure at a\\tb\\nc.rhai:1:11");
    let declaration = Test::new()
        .file("d\ne.rhai", "let o = args(#{ x: #{ bogus: 1 } });\n")
        .raw(&["d\ne.rhai"])
        .run();
    declaration
        .code(2)
        .err_has("prun: error: d\\ne.rhai:1:9: args: `x` has an unknown setting `bogus`");
}

/// Asserts that a line of stderr is exactly `line`.
fn err_line(out: &crate::support::Output, line: &str) {
    assert!(
        out.stderr.lines().any(|l| l == line),
        "no stderr line {line:?}\n{}",
        out.describe()
    );
}

#[test]
fn an_array_of_names_holding_something_else_names_the_function_and_the_entry() {
    // It said "expected proc names, found an integer", naming neither `run` nor which.
    let out = Test::new()
        .script("proc(\"a\", #{ shell: \"true\" });\nrun([\"a\", 5]);\n")
        .run();
    out.code(2)
        .err_has("main.rhai:2:1: run: the array must hold proc names (strings), but entry 2 is 5");
    Test::new()
        .script("wait([()]);\n")
        .run()
        .code(2)
        .err_has("wait: the array must hold proc names (strings), but entry 1 is nothing");
}

#[test]
fn an_import_of_an_empty_name_says_the_name_is_empty() {
    // It said `module "" not found: no file  (in DIR)`, naming no file.
    Test::new()
        .script("import \"\" as m;\n")
        .run()
        .code(2)
        .err_has("main.rhai:1:8: module \"\" not found: a module's name is not empty");
}

/// A closure that calls `lib::f()` but is defined before `import "lib" as lib` finds no
/// module `lib` in its scope: it said `no file lib.rhai`, of a file that is there.
#[test]
fn a_module_used_before_its_import_is_said_to_be_out_of_scope_not_missing() {
    let out = Test::new()
        .file("lib.rhai", "fn hi() { \"hi\" }\n")
        .script("proc(\"a\", || lib::hi());\nimport \"lib\" as lib;\nrun(\"a\");\n")
        .run();
    out.code(1).out_has(
        "main.rhai:1:14: module \"lib\" not found: nothing is imported as lib where this code is, though the file lib.rhai (in ",
    )
    .out_has("is there: import it before the code that uses it (a closure sees only the imports made before it)");
    assert!(!out.stdout.contains("no file"), "{}", out.describe());
}

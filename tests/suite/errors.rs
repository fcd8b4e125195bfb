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

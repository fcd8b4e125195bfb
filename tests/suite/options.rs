//! `set_options` keys of API.md section 4 and the display flags of section 1.

use crate::support::Test;

const FIFTEEN_LINES: &str =
    r#"proc("bad", #{ shell: "for i in $(seq 1 15); do echo line$i; done; exit 1" });"#;

fn log_lines(out: &crate::support::Output) -> usize {
    out.stdout.matches("| line").count()
}

#[test]
fn a_failure_shows_the_last_lines_of_its_log_by_default() {
    let out = Test::new()
        .script(&format!("{FIFTEEN_LINES}\nrun(\"bad\");"))
        .run();
    out.code(1).out_has("| line15").out_lacks("| line5\n");
    assert!(log_lines(&out) < 15, "{}", out.describe());
}

#[test]
fn full_log_on_failure_shows_the_whole_log_from_the_script_or_the_flag() {
    let from_script = Test::new()
        .script(&format!(
            "set_options(#{{ full_log_on_failure: true }});\n{FIFTEEN_LINES}\nrun(\"bad\");"
        ))
        .run();
    from_script.code(1).out_has("| line1\n").out_has("| line15");
    assert_eq!(log_lines(&from_script), 15, "{}", from_script.describe());

    let from_flag = Test::new()
        .script(&format!(
            "set_options(#{{ full_log_on_failure: false }});\n{FIFTEEN_LINES}\nrun(\"bad\");"
        ))
        .args(&["--full-log-on-failure"])
        .run();
    assert_eq!(log_lines(&from_flag), 15, "{}", from_flag.describe());
}

#[test]
fn every_documented_option_is_accepted() {
    Test::new()
        .script(
            r#"
set_options(#{ parallel: 2, dynamic: false, watch: false, watch_debounce: "300ms",
               separator: "::", allow_missing_deps: true, full_log_on_failure: false,
               task_db: "t.db", log_dir: "logs", kill_grace: "1s" });
proc("p", |ctx| 1);
run("p");
"#,
        )
        .args(&["--no-live"])
        .run()
        .ok();
}

/// A `kill_grace` longer than a count of milliseconds holds is as long as it can be: a
/// command that ignores SIGTERM ends on its own. It was cut to the bits that fit, here
/// 384 ms, and the command was killed. (The timeout leaves `sh` a second to ignore
/// SIGTERM: at 100 ms, a loaded machine could end it before its `trap` ran.)
#[test]
fn a_kill_grace_beyond_the_millisecond_range_is_not_cut_short() {
    let out = Test::new()
        .script(
            r#"set_options(#{ kill_grace: "18446744073709552s" });
               proc("p", #{ timeout: "1s", shell: "trap '' TERM; sleep 2; touch survived" });
               run("p");"#,
        )
        .args(&["--no-live"])
        .run();
    out.code(1);
    assert!(
        out.proc_line("FAILED", "p").contains("timed out after 1s"),
        "{}",
        out.describe()
    );
    assert!(out.exists("survived"), "{}", out.describe());
}

#[test]
fn bad_option_values_are_errors_naming_the_option() {
    Test::new()
        .script(r#"set_options(#{ watch: "yes" });"#)
        .run()
        .code(2)
        .err_has("`watch` must be a bool");
    Test::new()
        .script(r#"set_options(#{ dynamic: "yes" });"#)
        .run()
        .code(2)
        .err_has("`dynamic` must be a bool");
    Test::new()
        .script(r#"set_options(#{ watch_debounce: "soon" });"#)
        .run()
        .code(2)
        .err_has("watch_debounce");
}

/// An integer is a fraction too (`ctx.progress(1)` is done, not "function does not
/// exist"), and NaN shows as 0%.
#[test]
fn progress_accepts_integers_and_nan() {
    Test::new()
        .script(r#"proc("p", |ctx| { ctx.progress(0); ctx.progress(1); ctx.progress(0.0 / 0.0); 1 }); run("p");"#)
        .args(&["-v"])
        .run()
        .ok()
        .line("PROGRESS   p: 100%")
        .line("PROGRESS   p: 0%");
}

/// A progress text is one line: its newlines and escape characters become spaces.
#[test]
fn a_progress_text_is_one_line_without_control_characters() {
    let out = Test::new()
        .script(r#"proc("p", |ctx| { ctx.progress("step 1\nof 2\t\x1b[31mred"); 1 }); run("p");"#)
        .args(&["-v"])
        .run();
    out.ok().line("PROGRESS   p: step 1 of 2  [31mred");
    assert!(!out.stdout.contains('\x1b'), "{}", out.describe());
}

#[test]
fn progress_is_shown_with_verbose_and_accepts_fractions_and_text() {
    let script =
        r#"proc("p", |ctx| { ctx.progress(0.25); ctx.progress("copying"); 1 }); run("p");"#;
    Test::new()
        .script(script)
        .args(&["-v"])
        .run()
        .ok()
        .line("PROGRESS   p: 25%")
        .line("PROGRESS   p: copying");
    Test::new().script(script).run().ok().out_lacks("PROGRESS");
}

#[test]
fn an_empty_task_db_or_log_dir_is_a_script_error_not_the_working_directory() {
    for key in ["task_db", "log_dir"] {
        let out = Test::new()
            .script(&format!(
                "set_options(#{{ {key}: \"\" }});\nproc(\"a\", #{{ shell: \"touch ran\" }}); run(\"a\");"
            ))
            .run();
        out.code(2).err_has(&format!(
            "main.rhai:1:1: set_options: `{key}` must be a path"
        ));
        assert!(!out.exists("ran"), "{key}: the proc ran");
    }
}

#[test]
fn a_proc_cwd_help_or_env_name_of_the_wrong_kind_is_an_error_naming_the_option() {
    // `cwd: 5` ran the command in a directory named `5`, `cwd: ""` failed only when the
    // proc ran (`working directory  does not exist`), and `help: 5` was listed as `5`;
    // `exec` refuses a non-path `cwd` already.
    for (opts, message) in [
        ("cwd: 5", "`cwd` must be a path, not an integer"),
        ("cwd: ()", "`cwd` must be a path, not nothing"),
        ("cwd: \"\"", "`cwd` must be a path, not an empty string"),
        ("help: 5", "`help` must be a string, not an integer"),
        ("help: [\"a\"]", "`help` must be a string, not an array"),
        // An env name no process can have failed only once the proc started.
        (
            "env: #{ \"\": \"x\" }",
            "`env` name \"\" is not valid: a name is not empty and holds no `=` or NUL byte",
        ),
        (
            "env: #{ \"A=B\": \"x\" }",
            "`env` name \"A=B\" is not valid",
        ),
    ] {
        let out = Test::new()
            .script(&format!(
                "proc(\"a\", #{{ {opts}, shell: \"touch ran\" }});\nrun(\"a\");\n"
            ))
            .run();
        out.code(2)
            .err_has(&format!("main.rhai:1:1: proc \"a\": {message}"));
        assert!(!out.exists("ran"), "{opts}: the proc ran");
    }
}

/// An option that only acts with another one is refused without it: it was accepted and
/// did nothing.
#[test]
fn an_option_given_without_the_one_it_acts_with_is_an_error_naming_both() {
    let cases = [
        (
            r#"proc("a", #{ retry_delay: "1s", shell: "true" });"#,
            "main.rhai:1:1: proc \"a\": `retry_delay` is the pause before each retry, and it has no `retries`",
        ),
        (
            r#"proto("a::[x]", #{ retry_delay: 2, shell: "true" });"#,
            "main.rhai:1:1: proto \"a::[x]\": `retry_delay` is the pause before each retry, and it has no `retries`",
        ),
        (
            r#"proc("a", #{ outputs: [#{ file: "o", enforce_freshness: false }], shell: "true" });"#,
            "main.rhai:1:1: proc \"a\": `outputs`: `enforce_freshness` says whether an output older than its `max_age` fails the proc, and this one has no `max_age`",
        ),
    ];
    for (script, message) in cases {
        Test::new().script(script).run().code(2).err_has(message);
    }
    // A computed count of 0 keeps its delay; a max_age takes enforce_freshness.
    Test::new()
        .script(
            r#"proc("a", #{ retries: 0, retry_delay: "1s", outputs: [#{ file: "o", max_age: "1h", enforce_freshness: false }], shell: "touch o" });
run("a");"#,
        )
        .run()
        .ok()
        .summary_is("prun: 1 succeeded");
}

/// A duration past the longest one prun holds (`1e300`, `"inf"`) was an "invalid
/// duration" with the examples of a valid one, as if mistyped: each option says it is too
/// long, naming the option, the value and the longest.
#[test]
fn a_duration_too_long_is_named_too_long_with_the_longest_for_every_duration_option() {
    const LONGEST: &str = "the longest is 18446744073709551615s (about 584 billion years)";
    for (script, option) in [
        (
            r#"proc("a", #{ timeout: 1e300, shell: "true" }); run("a");"#,
            "`timeout`: duration 1e300 is too long",
        ),
        (
            r#"proc("a", #{ retries: 1, retry_delay: "1e300", shell: "true" }); run("a");"#,
            "`retry_delay`: duration 1e300 is too long",
        ),
        (
            r#"set_options(#{ kill_grace: "inf" });"#,
            "set_options: `kill_grace`: duration inf is too long",
        ),
        (
            r#"set_options(#{ watch_debounce: "600000000000y" });"#,
            "set_options: `watch_debounce`: duration 600000000000y is too long",
        ),
        (
            r#"exec(["true"], #{ kill_grace: 1e300 });"#,
            "option `kill_grace`: duration 1e300 is too long",
        ),
        (r#"sleep(1e300);"#, "sleep: duration 1e300 is too long"),
    ] {
        Test::new()
            .script(script)
            .run()
            .code(2)
            .err_has(option)
            .err_has(LONGEST)
            .err_has("main.rhai:1:");
    }
    Test::new()
        .script(r#"let o = args(#{ age: #{ duration: true } }); print(o.age);"#)
        .args(&["--age", "1e300"])
        .run()
        .code(64)
        .err_has("option --age: duration 1e300 is too long")
        .err_has(LONGEST);
    // A negative one says so too, rather than offering examples.
    Test::new()
        .script(r#"proc("a", #{ timeout: -5, shell: "true" }); run("a");"#)
        .run()
        .code(2)
        .err_has("`timeout`: invalid duration -5: a duration cannot be negative");
}

/// A `mem` past 64 bits of bytes got the generic "must be a whole number or a size"
/// message, as if "99999999T" were no size: it says too large, with the largest.
#[test]
fn a_resource_amount_too_large_is_named_too_large_with_the_largest() {
    for (script, said) in [
        (
            r#"proc("a", #{ resources: #{ mem: "99999999T" }, shell: "true" }); run("a");"#,
            r#"`resources`: `mem` "99999999T" is too large: the largest is 16777215T (as a number of MiB, 17592186044415)"#,
        ),
        (
            r#"set_options(#{ resources: #{ mem: 17592186044416 } });"#,
            "`mem` 17592186044416 is too large: the largest is 16777215T",
        ),
        (
            r#"proc("a", #{ resources: #{ cpus: "99999999999999999999" }, shell: "true" }); run("a");"#,
            r#"`cpus` "99999999999999999999" is too large: the largest is 18446744073709551615"#,
        ),
    ] {
        Test::new()
            .script(script)
            .run()
            .code(2)
            .err_has(said)
            .err_has("main.rhai:1:");
    }
}

/// Three messages that did not name what was given: `parallel: 1e300` was written out
/// as 301 digits; an executor declared with the empty name was taken, and a proc's
/// `executor: ""` got the hint `set_options(#{ executors: #{ : #{ kind: ... } } })`.
#[test]
fn a_huge_number_or_an_empty_executor_name_is_named_as_written() {
    Test::new()
        .script("set_options(#{ parallel: 1e300 });")
        .run()
        .code(2)
        .err_has("main.rhai:1:1: set_options: `parallel` must be a positive integer, not 1e300\n");
    Test::new()
        .script(r#"set_options(#{ executors: #{ "": #{ kind: "slurm" } } });"#)
        .run()
        .code(2)
        .err_has(r#"main.rhai:1:1: set_options: "" is not an executor name"#);
    Test::new()
        .script(r#"proc("a", #{ executor: "", shell: "true" });"#)
        .run()
        .code(2)
        .err_has(r#"main.rhai:1:1: proc "a": `executor` must be a name, not an empty string"#);
}

/// `args(#{ a: #{ env: "" } })` was taken, and the option was never read from any
/// variable, silently: a name no variable can have is a declaration error.
#[test]
fn a_script_option_s_env_that_no_variable_can_have_is_refused() {
    for env in ["", "A=B"] {
        Test::new()
            .script(&format!(r#"let o = args(#{{ a: #{{ env: "{env}" }} }});"#))
            .run()
            .code(2)
            .err_has(&format!(
                "main.rhai:1:9: args: `a.env` must be an environment variable's name (not empty, without `=` or a NUL byte), not {env:?}"
            ));
    }
}

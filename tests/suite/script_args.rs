//! `args(#{...})`: a script's own command line (API.md section 6).

use crate::support::Test;

const DECL: &str = r#"
let opt = args(#{
    about: "Verify that the newest backup restores",
    rclone_source: #{ short: "r", required: true, help: "file, dir or rclone remote" },
    max_age:       #{ "default": "2d", help: "fail when no backup is newer" },
    queries_dir:   #{ short: "q", "default": "queries", help: "the check queries" },
    port:          #{ int: true, "default": 5432 },
    password:      #{ env: "PRUN_TEST_PASSWORD" },
    tag:           #{ list: true },
    verbose:       #{ short: "v", flag: true },
});
for k in opt.keys() { print(`${k}=${opt[k]}`); }
proc("p", |ctx| 1);
run("p");
"#;

#[test]
fn help_prints_the_script_s_usage() {
    Test::new()
        .script(DECL)
        .args(&["--help"])
        .run()
        .ok()
        .out_has("Verify that the newest backup restores")
        .out_has("Usage: prun main.rhai [OPTIONS]")
        .out_has("-r, --rclone-source <RCLONE_SOURCE>  file, dir or rclone remote (required)")
        .out_has("[default: 2d]")
        .out_has("[env: PRUN_TEST_PASSWORD]")
        .out_lacks("STARTED");
}

#[test]
fn options_are_read_with_their_types_and_defaults() {
    Test::new()
        .script(DECL)
        .args(&[
            "-r",
            "remote:b/",
            "--port=6000",
            "-v",
            "--tag",
            "a",
            "--tag",
            "b",
            "--max-age",
            "1d",
        ])
        .run()
        .ok()
        .line("rclone_source=remote:b/")
        .line("port=6000")
        .line("verbose=true")
        .line("tag=[\"a\", \"b\"]")
        .line("max_age=1d")
        .line("queries_dir=queries")
        .line("password=")
        .proc_state("SUCCEEDED", "p");
}

#[test]
fn a_script_option_wins_over_prun_s_and_prun_s_flags_still_work() {
    // -q is the script's here, not prun's quiet: the proc lines are still printed.
    let out = Test::new()
        .script(DECL)
        .args(&["-r", "x", "-q", "myq", "--dry-run"])
        .run();
    out.ok()
        .line("queries_dir=myq")
        .out_has("WOULD RUN  p:")
        .out_has("prun: dry run: 1 would run");
}

#[test]
fn env_fallback_and_bad_arguments() {
    Test::new()
        .script(&DECL.replace("PRUN_TEST_PASSWORD", "HOME"))
        .args(&["-r", "x"])
        .run()
        .ok()
        .out_has("password=/");
    Test::new()
        .script(DECL)
        .run()
        .code(64)
        .err_has("missing required option --rclone-source");
    Test::new()
        .script(DECL)
        .args(&["-r", "x", "--port", "many"])
        .run()
        .code(64)
        .err_has("--port takes an integer");
    Test::new()
        .script(DECL)
        .args(&["-r", "x", "--bogus"])
        .run()
        .code(64)
        .err_has("--bogus");
}

#[test]
fn an_option_with_choices_takes_one_of_them_and_says_which_otherwise() {
    let script = r#"let o = args(#{
    engine: #{ choices: ["local", "podman"], "default": "local", env: "PRUN_TEST_ENGINE" },
    level:  #{ int: true, choices: [1, 3], list: true },
});
print(`engine=${o.engine} level=${o.level}`);"#;
    Test::new()
        .script(script)
        .args(&["--engine", "podman", "--level", "03", "--level=1"])
        .run()
        .ok()
        .line("engine=podman level=[3, 1]");
    Test::new()
        .script(script)
        .args(&["--help"])
        .run()
        .ok()
        .out_has("[default: local] [possible values: local, podman] [env: PRUN_TEST_ENGINE]")
        .out_has("(repeatable) [possible values: 1, 3]");
    for (args, var, message) in [
        (
            &["--engine", "docker"][..],
            "",
            "option --engine takes one of local, podman, not \"docker\"",
        ),
        (
            &["--level", "2"][..],
            "",
            "option --level takes one of 1, 3, not \"2\"",
        ),
        (
            &[][..],
            "Local",
            "option --engine takes one of local, podman, not \"Local\"",
        ),
    ] {
        Test::new()
            .script(script)
            .env("PRUN_TEST_ENGINE", var)
            .args(args)
            .run()
            .code(64)
            .err_has(message)
            .out_lacks("engine=");
    }
    for (decl, message) in [
        (
            "x: #{ choices: [] }",
            "`x.choices` must be a non-empty array of the values it takes (strings, or integers with `int: true`), not []",
        ),
        (
            "x: #{ choices: \"a\" }",
            "`x.choices` must be a non-empty array",
        ),
        (
            "x: #{ choices: [\"a\"], \"default\": \"b\" }",
            "`x.default` must be one of its choices (a), not \"b\"",
        ),
        (
            "x: #{ int: true, choices: [\"one\"] }",
            "`x.choices` must be a non-empty array",
        ),
        (
            "x: #{ flag: true, choices: [\"a\"] }",
            "`x` is a flag: it takes no value, so it cannot also have `choices`",
        ),
    ] {
        declaration_is_refused(decl, message);
    }
}

#[test]
fn a_missing_or_bad_positional_argument_is_named_as_help_shows_it() {
    // "missing required option src": src is no option, and --help shows it as <SRC>.
    let script = r#"let o = args(#{ src: #{ positional: true, required: true }, tally: #{ positional: true, int: true } });
print(o);"#;
    Test::new()
        .script(script)
        .run()
        .code(64)
        .err_has("missing required argument <SRC>");
    Test::new()
        .script(script)
        .args(&["x", "five"])
        .run()
        .code(64)
        .err_has("argument [TALLY] takes an integer, not \"five\"");
}

#[test]
fn positional_arguments_are_the_script_s_not_targets() {
    Test::new()
        .script(
            r#"
let opt = args(#{ files: #{ positional: true, list: true, help: "files to check" } });
print(`files=${opt.files}`);
proc("p", |ctx| 1);
run("p");
"#,
        )
        .args(&["a.txt", "b.txt", "-j", "2"])
        .run()
        .ok()
        .line("files=[\"a.txt\", \"b.txt\"]")
        .proc_state("SUCCEEDED", "p");
}

#[test]
fn a_mistyped_script_option_gets_the_nearest_declared_option() {
    let hint = "did you mean `--max-age`?";
    // Mixed with prun's own flags, and after `--` (the script's only).
    for args in [
        &["-r", "x", "--max-ag", "1d"][..],
        &["--", "-r", "x", "--max-ag=1d"],
    ] {
        let out = Test::new().script(DECL).args(args).run();
        out.code(64).err_has(hint).out_lacks("STARTED");
        // After `--` the word would be the script's, which refuses it too.
        assert!(
            !out.stderr.contains("use '-- --max-ag"),
            "{}",
            out.describe()
        );
    }
    // `list`, `graph` and `check` read the script's arguments as a run does.
    for sub in ["list", "graph", "check"] {
        Test::new()
            .script(DECL)
            .raw(&[sub, "main.rhai", "--max-ag", "1d"])
            .run()
            .code(64)
            .err_has(&format!(
                "prun: {sub} main.rhai: unexpected argument \"--max-ag\"; {hint}"
            ));
    }
}

#[test]
fn a_flag_read_from_its_variable_is_off_for_0_no_and_false() {
    // Any value but "false" turned the flag on: VERBOSE=0 meant verbose.
    let script = r#"let o = args(#{ verbose: #{ flag: true, env: "PRUN_TEST_VERBOSE" } });
print(`verbose=${o.verbose}`);"#;
    for (value, want) in [
        ("0", false),
        ("no", false),
        ("OFF", false),
        ("false", false),
        ("1", true),
        ("yes", true),
        ("true", true),
    ] {
        Test::new()
            .script(script)
            .env("PRUN_TEST_VERBOSE", value)
            .run()
            .ok()
            .line(&format!("verbose={want}"));
    }
    Test::new()
        .script(script)
        .env("PRUN_TEST_VERBOSE", "maybe")
        .run()
        .code(64)
        .err_has("its variable PRUN_TEST_VERBOSE must say true or false")
        .err_has("\"maybe\"");
    // Given on the command line, the flag is on whatever the variable says.
    Test::new()
        .script(script)
        .env("PRUN_TEST_VERBOSE", "0")
        .args(&["--verbose"])
        .run()
        .ok()
        .line("verbose=true");
}

#[test]
fn a_wrong_declaration_names_the_args_call_and_the_nearest_setting() {
    // A misspelt setting had no suggestion and no line:column; a non-integer default of
    // an `int` option was blamed on the command line (exit 64, "option --d takes ...").
    Test::new()
        .script("let x = 1;\nlet o = args(#{ src: #{ requried: true } });\n")
        .run()
        .code(2)
        .err_has(
            "main.rhai:2:9: args: `src` has an unknown setting `requried`; did you mean `required`?",
        );
    Test::new()
        .script("let o = args(#{ d: #{ int: true, \"default\": \"abc\" } });\n")
        .run()
        .code(2)
        .err_has("main.rhai:1:9: args: `d.default` must be an integer (the option is `int: true`), not \"abc\"");
    Test::new()
        .script("let o = args(#{ d: #{ int: true, \"default\": \"12\" } });\nprint(o.d + 1);\n")
        .run()
        .ok()
        .line("13");
}

#[test]
fn a_default_has_the_type_of_a_given_value_and_settings_that_do_not_go_together_are_errors() {
    // A default kept its own type: `"default": 7` was an integer when not given and
    // "8" when given, a list's `"default": "a"` was no array, an `int` list's `[1, 2]`
    // was refused; a flag's default was ignored, a `positional` flag failed with "its
    // variable  must say true or false", and `env: 5`, `help: 5`, `about: 5` were taken
    // as text.
    let value = |decl: &str, words: &[&str]| {
        let out = Test::new()
            .script(&format!(
                "let o = args(#{{ {decl} }});\nprint(`${{type_of(o.x)}} ${{o.x}}`);\n"
            ))
            .args(words)
            .run();
        out.ok();
        out.stdout.lines().next().unwrap_or("").to_string()
    };
    assert_eq!(value("x: #{ \"default\": 7 }", &[]), "string 7");
    assert_eq!(value("x: #{ \"default\": 7 }", &["--x", "8"]), "string 8");
    assert_eq!(
        value("x: #{ list: true, \"default\": [1, \"b\"] }", &[]),
        "array [\"1\", \"b\"]"
    );
    assert_eq!(
        value(
            "x: #{ int: true, list: true, \"default\": [1, \"2\"] }",
            &[]
        ),
        "array [1, 2]"
    );
    for (decl, message) in [
        (
            "x: #{ list: true, \"default\": \"a\" }",
            "`x.default` must be an array (the option is `list: true`), not a string",
        ),
        (
            "x: #{ \"default\": [1] }",
            "`x.default` must be a string, a number or a bool (the value is text), not an array",
        ),
        (
            "x: #{ flag: true, \"default\": true }",
            "`x` is a flag: it is false unless given, and takes no `\"default\"`",
        ),
        (
            "x: #{ flag: true, positional: true }",
            "`x` is a flag: it takes no value, so it cannot also be `positional: true`",
        ),
        (
            "x: #{ flag: true, required: true }",
            "`x` is a flag: it takes no value, so it cannot also be `required: true`",
        ),
        (
            "x: #{ flag: true, int: true }",
            "`x` is a flag: it takes no value, so it cannot also be `int: true`",
        ),
        ("x: #{ env: 5 }", "`x.env` must be a string, not an integer"),
        (
            "x: #{ help: 5 }",
            "`x.help` must be a string, not an integer",
        ),
        (
            "x: #{ long: 5 }",
            "`x.long` must be a string, not an integer",
        ),
        ("about: 5", "`about` must be a string, not an integer"),
    ] {
        declaration_is_refused(decl, message);
    }
}

#[test]
fn short_flags_cluster_as_with_getopt() {
    // `-ab` said "option -a takes no value".
    let script = r#"let o = args(#{ a: #{ short: "a", flag: true }, b: #{ short: "b", flag: true }, n: #{ short: "n", int: true } });
print(`a=${o.a} b=${o.b} n=${o.n}`);"#;
    for (words, want) in [
        (&["-ab"][..], "a=true b=true n="),
        (&["-ban", "3"], "a=true b=true n=3"),
        (&["-an-5"], "a=true b=false n=-5"),
    ] {
        Test::new().script(script).args(words).run().ok().line(want);
    }
    Test::new()
        .script(script)
        .args(&["-aj2"])
        .run()
        .code(64)
        .err_has("unknown option -j (in -aj2)");
}

#[test]
fn a_short_option_s_value_after_an_equals_sign_is_the_value_as_for_prun_s_own() {
    // `-r=remote:pg/` gave "=remote:pg/" (and `-n=5`: "takes an integer, not "=5""),
    // while prun's own `-j=2` is 2.
    let script = r#"let o = args(#{ r: #{ short: "r" }, n: #{ short: "n", int: true }, a: #{ short: "a", flag: true } });
print(`r=${o.r} n=${o.n} a=${o.a}`);"#;
    for (words, want) in [
        (&["-r=remote:pg/"][..], "r=remote:pg/ n= a=false"),
        (&["-n=5", "-r", "=x"], "r==x n=5 a=false"),
        (&["-an=-5", "-r=="], "r== n=-5 a=true"),
        (&["-r=", "-n", "1"], "r= n=1 a=false"),
    ] {
        Test::new().script(script).args(words).run().ok().line(want);
    }
    // A flag takes none, as `--a=yes` says (it said "unknown option -= (in -a=yes)").
    Test::new()
        .script(script)
        .args(&["-a=yes"])
        .run()
        .code(64)
        .err_has("option -a takes no value");
}

#[test]
fn a_positional_list_takes_the_words_the_single_positionals_leave() {
    // `files` sorted before `first` and took every word: `first` was always ().
    let script = r#"let o = args(#{
    files: #{ positional: true, list: true },
    first: #{ positional: true },
    pw: #{ secret: true, "default": "hunter2-x" },
});
print(`first=${o.first} files=${o.files}`);"#;
    Test::new()
        .script(script)
        .args(&["a", "b", "c"])
        .run()
        .ok()
        .line(r#"first=a files=["b", "c"]"#);
    // The default of a secret option is not printed by --help either.
    let help = Test::new().script(script).args(&["--help"]).run();
    help.ok().out_has("[default: ***]").out_lacks("hunter2-x");
    Test::new()
        .script(r#"let o = args(#{ a: #{ positional: true, list: true }, b: #{ positional: true, list: true } });"#)
        .run()
        .code(2)
        .err_has("args: `a`, `b` are all positional lists");
}

#[test]
fn a_second_declaration_is_an_error_not_the_first_one_s_values() {
    // `let p = args(#{ host: ... })` after `args(#{ port: ... })` got #{"port": ()}.
    Test::new()
        .script("let o = args(#{ port: #{ int: true } });\nlet p = args(#{ host: #{} });\n")
        .run()
        .code(2)
        .err_has("main.rhai:2:9: args(#{...}) declares the script's options once");
}

#[test]
fn option_names_no_command_line_can_give_are_declaration_errors() {
    // `long: "a=b"` or `"two words"`, and a second `-x`, were accepted and never matched.
    for (decl, want) in [
        (
            r#"x: #{ long: "a=b" }"#,
            "args: `--a=b` cannot be an option name",
        ),
        (
            r#"x: #{ long: "two words" }"#,
            "args: `--two words` cannot be an option name",
        ),
        (
            r#"x: #{ short: "-" }"#,
            "args: `--` cannot be an option name",
        ),
        (
            r#"a: #{ short: "x" }, b: #{ short: "x" }"#,
            "args: -x is declared by both `a` and `b`",
        ),
        (
            r#"a: #{}, c: #{ long: "a" }"#,
            "args: --a is declared by both `a` and `c`",
        ),
    ] {
        Test::new()
            .script(&format!("let o = args(#{{ {decl} }});\n"))
            .run()
            .code(2)
            .err_has(want);
    }
}

/// A script whose `args` call comes after other prun functions has no options prun can
/// read before the run: an option given for it is a usage error that says why.
#[test]
fn an_option_for_an_args_call_that_comes_too_late_says_why() {
    Test::new()
        .script("proc(\"a\", #{ cmd: [\"true\"] });\nlet o = args(#{ port: #{ int: true } });\n")
        .args(&["--port", "5"])
        .run()
        .code(64)
        .err_has("unexpected argument '--port'")
        .err_has("only when that call comes before the script's other prun functions");
}

#[test]
fn a_secret_in_a_proc_s_result_is_hidden_in_the_json_report() {
    // pg::start's server holds the password (server.env.PGPASSWORD), and backup-verify's
    // restore proc returns the server: the --json report showed it.
    let out = Test::new()
        .env("PRUN_TEST_PASSWORD", "pw-in-result-7")
        .script(
            r#"let o = args(#{ password: #{ env: "PRUN_TEST_PASSWORD" } });
proc("server", || #{ env: #{ PGPASSWORD: o.password }, dsn: `user=me password=${o.password}`, tags: [o.password] });
run("server");"#,
        )
        .before(&["--json", "report.json"])
        .run();
    out.ok();
    let report = out.read("report.json");
    assert!(!report.contains("pw-in-result-7"), "{report}");
    let json: serde_json::Value = serde_json::from_str(&report).unwrap();
    assert_eq!(
        json["procs"][0]["result"],
        serde_json::json!({ "env": { "PGPASSWORD": "***" }, "dsn": "user=me password=***", "tags": ["***"] }),
        "{report}"
    );
}

/// `args(#{ DECL })` is a script error at its position, saying `message`.
fn declaration_is_refused(decl: &str, message: &str) {
    Test::new()
        .script(&format!("let o = args(#{{ {decl} }});\n"))
        .run()
        .code(2)
        .err_has(&format!("main.rhai:1:9: args: {message}"));
}

/// `min`/`max` bound an `int` option and `duration: true` makes an option's value a
/// duration (it stays text, as given): a value outside them, from the command line or
/// the `env` variable, is a usage error naming the option and the value, before anything
/// runs; a `"default"` outside them is an error of the declaration.
#[test]
fn an_option_s_range_and_duration_are_checked_before_anything_runs() {
    let script = r#"let o = args(#{
    port: #{ int: true, min: 1, max: 65535, "default": 5432 },
    workers: #{ int: true, min: 1, list: true },
    age: #{ duration: true, "default": "2d", env: "PRUN_TEST_AGE" },
});
shell("touch ran");
print(`port=${o.port} workers=${o.workers} age=${o.age}`);"#;
    Test::new()
        .script(script)
        .args(&["--port", "65535", "--workers", "1", "--age", "1h 30m"])
        .run()
        .ok()
        .line("port=65535 workers=[1] age=1h 30m");
    let duration = "a duration (seconds, or a number with a unit: 30s, 2m, 1h 30m, 2d)";
    for (args, var, message) in [
        (
            &["--port", "0"][..],
            "",
            "option --port takes an integer from 1 to 65535, not \"0\"".to_string(),
        ),
        (
            &["--port", "65536"][..],
            "",
            "option --port takes an integer from 1 to 65535, not \"65536\"".to_string(),
        ),
        (
            &["--workers", "2", "--workers", "-1"][..],
            "",
            "option --workers takes an integer of at least 1, not \"-1\"".to_string(),
        ),
        (
            &["--age", "banana"][..],
            "",
            format!("option --age takes {duration}, not \"banana\""),
        ),
        (
            &[][..],
            "-2d",
            format!("option --age takes {duration}, not \"-2d\""),
        ),
    ] {
        let out = Test::new()
            .script(script)
            .env("PRUN_TEST_AGE", var)
            .args(args)
            .run();
        out.code(64).err_has(&message).out_lacks("port=");
        assert!(!out.exists("ran"), "the script ran\n{}", out.describe());
    }
    for (decl, message) in [
        (
            "x: #{ int: true, max: 9, \"default\": 10 }",
            "`x.default` is not a value the option takes: option --x takes an integer of at most 9, not \"10\"",
        ),
        (
            "x: #{ duration: true, \"default\": \"soon\" }",
            "`x.default` is not a value the option takes: option --x takes a duration",
        ),
        (
            "x: #{ min: 1 }",
            "`x.min` bounds an integer: the option must be `int: true`",
        ),
        (
            "x: #{ int: true, max: \"9\" }",
            "`x.max` must be an integer, not a string",
        ),
        (
            "x: #{ int: true, min: 2, max: 1 }",
            "`x.min` (2) is more than its `max` (1)",
        ),
        (
            "x: #{ int: true, duration: true }",
            "`x` cannot be both `int: true` and `duration: true`",
        ),
        (
            "x: #{ flag: true, duration: true }",
            "`x` is a flag: it takes no value, so it cannot also be `duration: true`",
        ),
    ] {
        declaration_is_refused(decl, message);
    }
}

/// A word after the script path that is not UTF-8 is a usage error naming it, wherever
/// the script would have taken it (an option's value, `--opt=`, a positional argument, a
/// word after `--`) and as a target, in a run and in `list`, `check` and `graph`: its lossy text (`a\u{fffd}b`) named another file to
/// the commands it was handed to. The path of `--db` or `--json` may be any bytes.
#[test]
fn a_word_that_is_not_utf8_is_a_usage_error_naming_it_but_a_path_of_prun_s_flag_is_not() {
    use std::ffi::OsStr;
    use std::os::unix::ffi::OsStrExt;
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("main.rhai"),
        r#"let o = args(#{ remote: #{ short: "r" }, files: #{ positional: true, list: true } });
print(`remote=${o.remote} files=${o.files}`);
proc("p", #{ shell: "true" });
"#,
    )
    .expect("script");
    std::fs::write(
        dir.path().join("plain.rhai"),
        r#"proc("p", #{ shell: "true" });"#,
    )
    .expect("script");
    let prun = |words: &[&[u8]]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_prun"))
            .args(words.iter().map(|w| OsStr::from_bytes(w)))
            .current_dir(dir.path())
            .env("XDG_STATE_HOME", dir.path().join("state"))
            .output()
            .expect("run prun")
    };
    for (words, shown) in [
        (
            &[&b"main.rhai"[..], b"-r", b"a\xe9b"][..],
            "word 2 after the script path, \"a\\xe9b\", is not UTF-8 (byte 2 is 0xe9)",
        ),
        (
            &[&b"main.rhai"[..], b"--remote=\xff"][..],
            "word 1 after the script path, \"--remote=\\xff\", is not UTF-8 (byte 10 is 0xff)",
        ),
        (
            &[&b"main.rhai"[..], b"f\xe9"][..],
            "word 1 after the script path, \"f\\xe9\", is not UTF-8",
        ),
        (
            &[&b"main.rhai"[..], b"--", b"--db", b"x\xe9"][..],
            "word 3 after the script path, \"x\\xe9\", is not UTF-8",
        ),
        (
            &[&b"plain.rhai"[..], b"p\xe9"][..],
            "word 1 after the script path, \"p\\xe9\", is not UTF-8",
        ),
        (
            &[&b"list"[..], b"main.rhai", b"-r", b"a\xe9"][..],
            "word 2 after the script path, \"a\\xe9\", is not UTF-8",
        ),
        (
            &[&b"check"[..], b"plain.rhai", b"p\xe9"][..],
            "word 1 after the script path, \"p\\xe9\", is not UTF-8",
        ),
        (
            &[&b"graph"[..], b"main.rhai", b"--", b"x\xe9"][..],
            "word 2 after the script path, \"x\\xe9\", is not UTF-8",
        ),
    ] {
        let out = prun(words);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(64), "{words:?}: {out:?}");
        assert!(stderr.contains(shown), "{words:?}: {stderr}");
        assert!(
            stderr.contains("a target or a script's argument is text"),
            "{stderr}"
        );
        assert!(
            !String::from_utf8_lossy(&out.stdout).contains("remote="),
            "{out:?}"
        );
    }
    let json = b"r\xe9.json";
    let out = prun(&[
        b"main.rhai",
        b"-r",
        b"x",
        b"--db",
        b"d\xe9.db",
        b"--json",
        json,
    ]);
    assert!(out.status.success(), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("remote=x files=[]"),
        "{out:?}"
    );
    assert!(dir.path().join(OsStr::from_bytes(json)).exists(), "{out:?}");
}

/// An option that takes one value, given twice, is a usage error, as prun's own are: the
/// script got the last value silently (`-r a -r b` backed up `b` alone). A flag may be
/// repeated; a `list` option takes every value.
#[test]
fn an_option_that_takes_one_value_given_twice_is_a_usage_error() {
    let script = r#"let o = args(#{
    remote: #{ short: "r" },
    pw: #{ secret: true },
    verbose: #{ short: "v", flag: true },
    tag: #{ list: true },
});
print(`remote=${o.remote} verbose=${o.verbose} tag=${o.tag}`);"#;
    for words in [
        &["-r", "a", "-r", "b"][..],
        &["--remote=a", "-r", "b"],
        &["-r", "a", "--", "--remote", "b"],
    ] {
        Test::new()
            .script(script)
            .args(words)
            .run()
            .code(64)
            .err_has("option --remote is given 2 times: it takes one value");
    }
    let out = Test::new()
        .script(script)
        .args(&["--pw", "hunter2", "--pw", "swordfish"])
        .run();
    out.code(64).err_has("option --pw is given 2 times");
    assert!(
        !out.stderr.contains("hunter2") && !out.stderr.contains("swordfish"),
        "{}",
        out.describe()
    );
    Test::new()
        .script(script)
        .args(&["-r", "a", "-v", "-v", "--tag", "x", "--tag", "y"])
        .run()
        .ok()
        .out_has("remote=a verbose=true tag=[\"x\", \"y\"]");
}

/// `--help` after the path of a script that calls `args()` without a declaration (it
/// takes the words after `--` as they are), or declares its options too late to be read,
/// is prun's help on stdout, exit 0, as for any other script: it was a usage error (64,
/// the help on stderr, a `--json` report of a "usage error").
#[test]
fn help_of_a_script_that_calls_args_without_a_declaration_is_prun_s_help() {
    for script in [
        "print(args());\n",
        "proc(\"a\", #{ cmd: [\"true\"] });\nlet o = args(#{ port: #{ int: true } });\n",
    ] {
        let out = Test::new()
            .script(script)
            .args(&["--help", "--json", "r.json"])
            .run();
        out.ok()
            .out_has("Usage: prun SCRIPT [OPTIONS]")
            .out_has("--parallel <N>");
        assert!(!out.exists("r.json"), "{}", out.describe());
    }
}

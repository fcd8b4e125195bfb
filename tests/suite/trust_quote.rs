//! Issue 9, "Security": placeholder values reach `sh -c` as one literal string each, and
//! secret script arguments are redacted wherever prun writes arguments or command lines.

use crate::support::Test;

/// A Rhai string literal holding exactly `s`.
fn rhai_str(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Placeholder values a file or target name can carry (proc names hold no line break).
const NASTY: &[&str] = &[
    "b;touch PWNED;.log",
    "a;touch PWNED",
    "$(touch PWNED)",
    "`touch PWNED`",
    "it's",
    "say \"hi\" 'there'",
    "back\\slash\\",
    "two  spaces",
    "*",
    " ",
    "''",
    "$HOME ${x} \\$ \\` \\\"",
    "-n",
    "a&&touch PWNED||b",
    "a|touch PWNED",
    "a>PWNED",
];

#[test]
fn an_injected_file_name_is_compressed_not_run() {
    let name = "b;touch PWNED;.log";
    let out = Test::new()
        .file(name, "data\n")
        .script(&format!(
            r#"proto("gz::[file]", #{{ shell: "gzip -kf [file]" }});
run({});"#,
            rhai_str(&format!("gz::{name}"))
        ))
        .run();
    out.ok();
    assert!(out.exists(&format!("{name}.gz")), "{}", out.describe());
    assert!(
        !out.exists("PWNED"),
        "the file name ran a command\n{}",
        out.describe()
    );
}

#[test]
fn injected_targets_on_the_command_line_are_values_not_commands() {
    for target in ["x::a;touch PWNED", "x::$(touch PWNED)", "x::`touch PWNED`"] {
        let out = Test::new()
            .script(r#"proto("x::[v]", #{ shell: "printf '%s' [v] > got" });"#)
            .args(&[target])
            .run();
        out.ok();
        assert_eq!(out.read("got"), target["x::".len()..], "{}", out.describe());
        assert!(
            !out.exists("PWNED"),
            "{target} ran a command\n{}",
            out.describe()
        );
    }
}

#[test]
fn every_quote_context_gives_the_command_the_exact_bytes() {
    let values: Vec<String> = NASTY.iter().map(|v| rhai_str(v)).collect();
    // The same value unquoted, in double quotes, in single quotes and inside `$(...)` in
    // double quotes; each record ends with a NUL byte.
    let shell = r#"printf '%s\0' [v] >> plain; printf '%s\0' "[v]" >> dq; printf '%s\0' '[v]' >> sq; printf '%s\0' "$(printf '%s' [v])" >> sub"#;
    let out = Test::new()
        .script(&format!(
            "proto(\"p::[v]\", #{{ arg_choices: #{{ v: [{}] }}, shell: {} }});\nrun(\"p::*\");",
            values.join(", "),
            rhai_str(shell)
        ))
        .run();
    out.ok();
    let mut want: Vec<&str> = NASTY.to_vec();
    want.sort_unstable();
    for file in ["plain", "dq", "sq", "sub"] {
        let bytes = std::fs::read(out.path(file)).expect(file);
        let text = String::from_utf8(bytes).expect("utf-8");
        let mut got: Vec<&str> = text.split_terminator('\0').collect();
        got.sort_unstable();
        assert_eq!(got, want, "{file}\n{}", out.describe());
    }
    assert!(
        !out.exists("PWNED"),
        "a value ran a command\n{}",
        out.describe()
    );
}

#[test]
fn a_value_after_a_dollar_neither_runs_nor_lengthens_a_variable_name() {
    // `"$[v]"` gave `"$(touch PWNED)"`, and `"$P[v]"` read the variable `$Pit`.
    let out = Test::new()
        .script(
            r#"proto("d::[v]", #{ env: #{ P: "p" }, shell: "printf '%s|%s|%s' \"$[v]\" \"$P[v]\" $[v] > got" });
run("d::(touch PWNED)"); wait();
run("d::it's"); wait();"#,
        )
        .run();
    out.ok();
    assert_eq!(out.read("got"), "$it's|pit's|$it's", "{}", out.describe());
    assert!(
        !out.exists("PWNED"),
        "a value ran a command\n{}",
        out.describe()
    );
}

#[test]
fn a_value_that_would_end_a_here_document_is_refused_before_anything_runs() {
    let out = Test::new()
        .script(
            r#"proto("h::[v]", #{ shell: "cat > got <<EOF\n[v]\nEOF" });
run("h::EOF");"#,
        )
        .run();
    out.code(2)
        .err_has("placeholder [v]")
        .err_has("here-document");
    assert!(!out.exists("got"), "{}", out.describe());
}

const PASSWORD: &str = "hunter2-Pw-7731";
const TOKEN: &str = "tok-Xyzzy-5512";

/// A script with a secret option given on the command line and one read from a
/// `*TOKEN*` variable, used in commands that fail: a `cmd` body (which also saves what it
/// got) and a closure's `exec` and `shell`.
const SECRET_SCRIPT: &str = r#"
let opt = args(#{
    password: #{ secret: true, help: "the database password" },
    api:      #{ env: "PRUN_TEST_API_TOKEN" },
    user:     #{ "default": "bob" },
});
proc("login", #{ now: true, cmd: ["sh", "-c", "printf '%s %s' \"$1\" \"$2\" > got; exit 3", "login", opt.password, opt.api] });
proc("closure", #{ now: true }, |ctx| {
    exec(["true", opt.password]);
    shell(`exit 4 # ${opt.password} ${opt.api} ${opt.user}`);
});
"#;

/// Runs the `prun` binary in `dir` (state under `dir/state`, as the harness sets it).
fn prun_in(dir: &std::path::Path, words: &[&str]) -> (String, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_prun"))
        .args(words)
        .current_dir(dir)
        .env("XDG_STATE_HOME", dir.join("state"))
        .env("PRUN_TEST_API_TOKEN", TOKEN)
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run prun");
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Every file under `dir`, with its bytes.
fn files_under(dir: &std::path::Path) -> Vec<(std::path::PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(files_under(&p));
        } else if let Ok(bytes) = std::fs::read(&p) {
            out.push((p, bytes));
        }
    }
    out
}

fn assert_hidden(what: &str, text: &[u8]) {
    for secret in [PASSWORD, TOKEN] {
        let found = text.windows(secret.len()).any(|w| w == secret.as_bytes());
        assert!(
            !found,
            "{what} shows the secret {secret}:\n{}",
            String::from_utf8_lossy(text)
        );
    }
}

#[test]
fn secret_arguments_are_hidden_everywhere_prun_writes_them() {
    let out = Test::new()
        .env("PRUN_TEST_API_TOKEN", TOKEN)
        .script(SECRET_SCRIPT)
        .before(&["-v", "--no-live", "--json", "report.json"])
        .args(&["--password", PASSWORD])
        .run();
    out.code(1);
    // The commands got the real values.
    assert_eq!(
        out.read("got"),
        format!("{PASSWORD} {TOKEN}"),
        "{}",
        out.describe()
    );
    assert_hidden("stdout", out.stdout.as_bytes());
    assert_hidden("stderr", out.stderr.as_bytes());
    // The failure message and the -v echo still name the command, with the secret masked.
    assert!(
        out.stdout.contains("login '***' '***'") || out.stderr.contains("login '***' '***'"),
        "no masked command line\n{}",
        out.describe()
    );
    out.out_has("$ true '***'");
    let dir = out.dir.path();
    assert_hidden(
        "the JSON report",
        &std::fs::read(dir.join("report.json")).unwrap(),
    );
    let (history, history_err) = prun_in(dir, &["history", "main.rhai"]);
    assert!(history.contains("login"), "{history}{history_err}");
    assert_hidden("prun history", format!("{history}{history_err}").as_bytes());
    let state = files_under(&dir.join("state"));
    assert!(
        state.iter().any(|(p, _)| p.ends_with("tasks.db")),
        "no task DB under state/: {:?}",
        state.iter().map(|(p, _)| p).collect::<Vec<_>>()
    );
    assert!(
        state
            .iter()
            .any(|(p, b)| p.to_string_lossy().contains("login") && !b.is_empty()),
        "no log of login under state/"
    );
    for (path, bytes) in &state {
        assert_hidden(&path.display().to_string(), bytes);
    }
    // --dry-run and the password given as `--password=...`.
    let flag = format!("--password={PASSWORD}");
    let (dry, dry_err) = prun_in(dir, &["--dry-run", "--no-live", "main.rhai", &flag]);
    assert!(dry.contains("login '***' '***'"), "{dry}{dry_err}");
    assert_hidden("--dry-run", format!("{dry}{dry_err}").as_bytes());
}

#[test]
fn the_pg_container_entry_quotes_the_server_directory_it_found() {
    let out = Test::new()
        .file("root/usr/lib/postgresql/16 x;touch PWNED/bin/initdb", "")
        .script(
            r#"import "pg" as pg;
print(pg::podman_entry("root", (), "pw"));"#,
        )
        .before(&["--no-live"])
        .run();
    out.ok()
        .out_has("'/usr/lib/postgresql/16 x;touch PWNED/bin'/initdb -D")
        .out_has("exec '/usr/lib/postgresql/16 x;touch PWNED/bin'/postgres -D");
}

#[test]
fn an_option_read_from_a_token_variable_is_secret_without_saying_so() {
    let out = Test::new()
        .env("PRUN_TEST_API_TOKEN", TOKEN)
        .script(
            r#"let opt = args(#{ api: #{ env: "PRUN_TEST_API_TOKEN" } });
proc("call", #{ now: true, cmd: ["sh", "-c", "exit 5", "call", opt.api] });"#,
        )
        .before(&["-v", "--no-live"])
        .run();
    out.code(1).out_has("call '***'` exited with code 5");
    assert_hidden("stdout", out.stdout.as_bytes());
    assert_hidden("stderr", out.stderr.as_bytes());
    for (path, bytes) in files_under(&out.dir.path().join("state")) {
        assert_hidden(&path.display().to_string(), &bytes);
    }
}

#[test]
fn what_a_failing_command_printed_is_masked_in_messages_and_kept_in_its_log() {
    let out = Test::new()
        .env("PRUN_TEST_API_TOKEN", TOKEN)
        .script(
            r#"let opt = args(#{ api: #{ env: "PRUN_TEST_API_TOKEN" } });
proc("body", #{ now: true, cmd: ["sh", "-c", "echo \"denied: $1\" >&2; exit 5", "body", opt.api] });
proc("closure", #{ now: true }, |ctx| {
    exec(["sh", "-c", "echo \"denied: $1\" >&2; exit 6", "closure", opt.api]);
});"#,
        )
        .before(&["--no-live", "--json", "report.json"])
        .run();
    out.code(1).out_has("| denied: ***");
    assert_hidden("stdout", out.stdout.as_bytes());
    assert_hidden("stderr", out.stderr.as_bytes());
    let report = out.read("report.json");
    assert!(report.contains("denied: ***"), "{report}");
    assert_hidden("the JSON report", report.as_bytes());
    let state = files_under(&out.dir.path().join("state"));
    for (path, bytes) in &state {
        if path.extension().is_none_or(|e| e != "log") {
            assert_hidden(&path.display().to_string(), bytes);
        }
    }
    let logged = state
        .iter()
        .filter(|(p, _)| p.extension().is_some_and(|e| e == "log"))
        .filter(|(_, b)| String::from_utf8_lossy(b).contains(&format!("denied: {TOKEN}")))
        .count();
    assert_eq!(logged, 2, "both logs keep what the commands printed");
}

#[test]
fn inside_arithmetic_only_a_whole_number_is_written_and_nothing_runs() {
    // Quotes do not quote inside $((...)): `'$(touch PWNED)'` ran `touch`, and `'5'`
    // was an arithmetic syntax error.
    let out = Test::new()
        .script(r#"proto("n::[n]", #{ shell: "echo $(( [n] + 1 )) > got" });"#)
        .args(&["n::5"])
        .run();
    out.ok();
    assert_eq!(out.read("got"), "6\n", "{}", out.describe());
    let out = Test::new()
        .script(r#"proto("n::[n]", #{ shell: "echo $(( [n] + 1 )) > got" });"#)
        .args(&["n::$(touch PWNED)"])
        .run();
    out.code(64)
        .err_has("placeholder [n]")
        .err_has("only a whole number");
    assert!(
        !out.exists("PWNED"),
        "a value ran a command\n{}",
        out.describe()
    );
}

#[test]
fn inside_a_parameter_expansion_a_value_is_a_plain_word_or_refused() {
    // In "${OUT:-"[v]"}" the inner quotes open a string of their own: the value was
    // quoted for the outside, and `$(touch PWNED)` ran.
    let script = r#"proto("p::[v]", #{ shell: "printf '%s' \"${OUT:-\"[v]\"}\" > got" });"#;
    let out = Test::new().script(script).args(&["p::report-1.txt"]).run();
    out.ok();
    assert_eq!(out.read("got"), "report-1.txt", "{}", out.describe());
    let out = Test::new()
        .script(script)
        .args(&["p::$(touch PWNED)"])
        .run();
    out.code(64).err_has("only a plain word");
    assert!(
        !out.exists("PWNED"),
        "a value ran a command\n{}",
        out.describe()
    );
}

#[test]
fn a_value_is_quoted_for_where_the_shell_reads_it_after_continuations_escapes_and_backquotes() {
    // The shell joins `\` + line break before it reads anything (but in single quotes,
    // comments and quoted here-documents), and `\;` is no word's end: each template
    // below ran `touch` (or read `$Px`, or failed) when prun read it otherwise.
    let cases = [
        (
            "printf '%s|' \"$\\\n[v]\" > got",
            "(touch PWNED)",
            "$(touch PWNED)|",
        ),
        ("P=p; printf '%s' \"$P\\\n[v]\" > got", "x", "px"),
        (
            "cat << \\\nEOF > got\n[v]\nEOF\n",
            "$(touch PWNED)",
            "$(touch PWNED)\n",
        ),
        (
            "cat <<\\\n-EOF > got\n\t[v]\n\tEOF\n",
            "$(touch PWNED)",
            "$(touch PWNED)\n",
        ),
        (
            "cat <\\\n<EOF > got\n[v]\nEOF\n",
            "$(touch PWNED)",
            "$(touch PWNED)\n",
        ),
        (
            "printf '%s' \"$(ca\\\nse y in y) printf '%s' [v];; esac)\" > got",
            "x;touch PWNED",
            "x;touch PWNED",
        ),
        (
            "printf '%s' a\\\n#[v] > got",
            "x;touch PWNED",
            "a#x;touch PWNED",
        ),
        (
            "printf '%s' a\\;#[v] > got",
            ";touch PWNED",
            "a;#;touch PWNED",
        ),
        ("echo $(\\\n(1 + [v])) > got", "2", "3\n"),
        // In backquotes: a here-document's body, and `\"` within double quotes.
        (
            "x=`cat <<EOF\n[v]\nEOF\n`; printf '%s' \"$x\" > got",
            "$(touch PWNED)",
            "$(touch PWNED)",
        ),
        (
            "printf '%s' \"`printf '%s' \\\"[v]\\\"`\" > got",
            "a\\\"b`touch PWNED`",
            "a\\\"b`touch PWNED`",
        ),
    ];
    for (shell, value, want) in cases {
        let out = Test::new()
            .script(&format!(
                "proto(\"t::[v]\", #{{ arg_choices: #{{ v: [{}] }}, shell: {} }});\nrun(\"t::*\");",
                rhai_str(value),
                rhai_str(shell)
            ))
            .run();
        out.ok();
        assert_eq!(out.read("got"), want, "{shell:?}\n{}", out.describe());
        assert!(
            !out.exists("PWNED"),
            "{shell:?} ran a command\n{}",
            out.describe()
        );
    }
}

/// Neither stdout nor stderr holds an ESC or a BEL: no escape sequence of a file's name
/// reached the terminal.
fn no_escape_reached_the_terminal(out: &crate::support::Output) {
    let said = format!("{}{}", out.stdout, out.stderr);
    assert!(
        !said.contains('\u{1b}') && !said.contains('\u{7}'),
        "a control character reached the terminal\n{}",
        out.describe()
    );
}

#[test]
fn an_escape_sequence_in_a_file_name_reaches_no_terminal_through_prun_s_messages() {
    // A file name another user chose, holding a window-title sequence and a screen clear.
    let name = "x\u{1b}]0;owned\u{7}\u{1b}[2J.txt";
    let out = Test::new()
        .file(name, "data\n")
        .script(
            r#"let f = glob("*.txt")[0];
proc("argv", #{ cmd: ["sh", "-c", "exit 3", "sh", f] });
proc("text", #{ shell: "exit 4 # " + f });
proc("out", #{ outputs: [f + ".out"], cmd: ["true"] });
run(["argv", "text", "out"]);"#,
        )
        .run();
    out.code(1);
    no_escape_reached_the_terminal(&out);
    out.out_has("`sh -c 'exit 3' sh $'x\\e]0;owned\\x07\\e[2J.txt'`")
        .out_has("`exit 4 # x\\e]0;owned\\x07\\e[2J.txt`")
        .out_has("x\\e]0;owned\\x07\\e[2J.txt.out (missing)");
}

/// The hint for a mistyped script name lists the scripts of its directory, whose names
/// another user may choose (`/srv/shared`, `/tmp`): none reaches the terminal as an
/// escape sequence.
#[test]
fn an_escape_sequence_in_a_script_s_name_reaches_no_terminal_through_a_hint() {
    let dir = tempfile::tempdir().expect("tempdir");
    let name = "buld\u{1b}]0;owned\u{7}\u{1b}[2J.rhai";
    std::fs::write(dir.path().join(name), "").expect("write the script");
    for words in [&["buld.rhai"][..], &["list", "bul.rhai"][..]] {
        let (stdout, stderr) = prun_in(dir.path(), words);
        let said = format!("{stdout}{stderr}");
        assert!(
            !said.contains('\u{1b}') && !said.contains('\u{7}'),
            "a control character reached the terminal\n{said}"
        );
        assert!(
            said.contains("did you mean `buld\\e]0;owned\\x07\\e[2J.rhai`"),
            "{said}"
        );
    }
}

#[test]
fn a_text_thrown_with_a_file_s_name_reaches_no_terminal_through_the_plain_report() {
    // A closure that fails naming a file another user chose, and a script named so: the
    // plain report names both (the error, the log's directory).
    let name = "y\u{1b}]0;owned\u{7}.txt";
    let script = "s\u{1b}[2J.rhai";
    let out = Test::new()
        .file(name, "data\n")
        .file(
            script,
            r#"let f = glob("*.txt")[0];
proc("say", || print("checking"));
proc("check", #{ deps: ["say"], cmd: ["sh", "-c", "echo checking; exit 3"] });
proc("throws", || throw "cannot read " + f);
run(["check", "throws"]);"#,
        )
        .raw(&[script])
        .run();
    out.code(1);
    no_escape_reached_the_terminal(&out);
    out.out_has("cannot read y\\e]0;owned\\x07.txt")
        .out_has("s\\e[2J");
}

/// prun's own error lines quote what the command line and the script gave them: a target,
/// a pattern or a dependency that matches nothing, a script's path, an option the script
/// does not declare. An escape sequence in one (pasted, or a file name a shell's glob
/// found) is written out, not sent to the terminal, in a run, `check`, `graph`, `log`,
/// the tips (`prun run SCRIPT`, `--list`), a script's `--help`, the list of what to run
/// and the scripts `prun` alone names (with an empty path too, as `prun "$SCRIPT"` gives).
#[test]
fn an_escape_sequence_in_a_target_or_a_script_s_path_reaches_no_terminal_through_an_error() {
    const E: &str = "\u{1b}]0;owned\u{7}";
    const SHOWN: &str = "\\e]0;owned\\x07";
    let dir = tempfile::tempdir().expect("tempdir");
    let file = |name: &str, text: &str| std::fs::write(dir.path().join(name), text).expect("write");
    file("s.rhai", r#"proc("a", #{ shell: "true" });"#);
    file(
        "o.rhai",
        r#"let o = args(#{ n: #{} }); proc("a", #{ shell: "true" });"#,
    );
    file("run.rhai", &format!("run(\"x{E}\");"));
    file(
        "dep.rhai",
        &format!("proc(\"a\", #{{ deps: [\"x{E}\"], shell: \"true\" }});"),
    );
    file(
        "p.rhai",
        r#"proto("b::[e]", #{ arg_choices: #{ e: ["a"] }, shell: "true" });"#,
    );
    let broken = format!("m{E}.rhai");
    file(&broken, "let x = ;");
    let plain = format!("t{E}.rhai");
    file(&plain, r#"proc("a", #{ shell: "true" });"#);
    let declaring = format!("o{E}.rhai");
    file(&declaring, r#"let o = args(#{ n: #{} });"#);
    let target = format!("x{E}");
    let value = format!("b::x{E}");
    let option = format!("--x{E}");
    for (words, said) in [
        (
            vec!["s.rhai", &target],
            format!("no proc or proto matches \"x{SHOWN}\""),
        ),
        (
            vec!["graph", "s.rhai", &target],
            format!("matches \"x{SHOWN}\""),
        ),
        (
            vec!["check", "s.rhai", &target],
            format!("target \"x{SHOWN}\""),
        ),
        (
            vec!["log", "s.rhai", &target],
            format!("no log of proc \"x{SHOWN}\""),
        ),
        (
            vec!["p.rhai", &value],
            format!("value \"x{SHOWN}\" for placeholder [e]"),
        ),
        (
            vec!["o.rhai", "--", &option],
            format!("unknown option --x{SHOWN}"),
        ),
        (
            vec!["run.rhai"],
            format!("run.rhai:1:1: no proc or proto matches \"x{SHOWN}\""),
        ),
        (
            vec!["check", "dep.rhai"],
            format!("depends on \"x{SHOWN}\""),
        ),
        (vec![&broken], format!("m{SHOWN}.rhai:1:9: syntax error")),
        (
            vec!["check", &broken],
            format!("m{SHOWN}.rhai:1:9: syntax error"),
        ),
        (
            vec!["run", &broken],
            format!("a script runs as `prun m{SHOWN}.rhai`"),
        ),
        (
            vec![&plain],
            format!("name targets (prun t{SHOWN}.rhai TARGET ...)"),
        ),
        (vec![&plain, "--help"], format!("prun list t{SHOWN}.rhai")),
        (
            vec![&plain, "--list"],
            format!("tip: to list the script's procs and protos: prun list t{SHOWN}.rhai"),
        ),
        (
            vec![&declaring, "--help"],
            format!("Usage: prun o{SHOWN}.rhai [OPTIONS]"),
        ),
        (
            vec![],
            format!("no script given (scripts here: dep.rhai, m{SHOWN}.rhai"),
        ),
        (
            vec![""],
            format!(
                "no script given (the script's path is empty) (scripts here: dep.rhai, m{SHOWN}.rhai"
            ),
        ),
    ] {
        let (stdout, stderr) = prun_in(dir.path(), &words);
        let all = format!("{stdout}{stderr}");
        assert!(
            !all.contains('\u{1b}') && !all.contains('\u{7}'),
            "{words:?}: a control character reached the terminal\n{all}"
        );
        assert!(all.contains(&said), "{words:?}: no {said:?} in\n{all}");
    }
}

#[test]
fn a_case_word_given_as_an_argument_does_not_change_how_a_value_is_quoted() {
    // `"$(echo case)"` was read as an unfinished `case`: the value after it was quoted for
    // double quotes while the shell read it outside them.
    let target = "x::\";touch PWNED;\"";
    let out = Test::new()
        .script(r#"proto("x::[v]", #{ shell: "printf '%s|' \"$(echo case)\" [v] > got" });"#)
        .args(&[target])
        .run();
    out.ok();
    assert_eq!(
        out.read("got"),
        "case|\";touch PWNED;\"|",
        "{}",
        out.describe()
    );
    assert!(!out.exists("PWNED"), "the value ran\n{}", out.describe());
}

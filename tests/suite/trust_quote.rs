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

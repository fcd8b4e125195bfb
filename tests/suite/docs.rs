//! The examples of the user reference in `docs/` run as they say.
//!
//! Every fenced block whose info string is exactly `rhai` is a whole script: it is written
//! to a fresh directory and run with the real prun. A first line `// $ prun NAME.rhai
//! WORDS...` gives the command line (default `prun main.rhai`), a line `// exit status N`
//! the expected exit status (default 0), and a `print(...)` line ending in `// VALUE`
//! promises that VALUE is a line of the output. `rhai needs=postgresql` and
//! `rhai needs=rclone` blocks run only where the tool is installed (they are ignored
//! otherwise, see `build.rs`); `rhai no-run` blocks (tools the tests cannot provide, such
//! as podman with a registry) are not run.

use std::path::{Path, PathBuf};

use crate::support::{Test, postgres};

/// One example: where it is, its info string and its text.
struct Example {
    at: String,
    info: String,
    text: String,
}

fn examples(md: &Path) -> Vec<Example> {
    let text = std::fs::read_to_string(md).expect("read docs");
    let mut out = Vec::new();
    let mut open: Option<(usize, String, Vec<&str>)> = None;
    for (i, line) in text.lines().enumerate() {
        match &mut open {
            None => {
                if let Some(info) = line.strip_prefix("```rhai") {
                    open = Some((i + 1, format!("rhai{info}"), Vec::new()));
                }
            }
            Some((start, info, lines)) => {
                if line.starts_with("```") {
                    out.push(Example {
                        at: format!("{}:{}", md.display(), *start + 1),
                        info: info.trim().to_string(),
                        text: lines.join("\n") + "\n",
                    });
                    open = None;
                } else {
                    lines.push(line);
                }
            }
        }
    }
    assert!(
        open.is_none(),
        "{}: an unclosed ```rhai block",
        md.display()
    );
    out
}

fn docs() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("docs/")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .collect();
    files.sort();
    files
}

/// Runs one example; the reason it is wrong, if it is.
fn check(ex: &Example) -> Option<String> {
    let first = ex.text.lines().next().unwrap_or("");
    let words: Vec<&str> = match first.strip_prefix("// $ prun ") {
        Some(rest) => rest.split_whitespace().collect(),
        None => vec!["main.rhai"],
    };
    let script = words
        .iter()
        .find(|w| w.ends_with(".rhai"))
        .expect("the command line names the script");
    let want: i32 = ex
        .text
        .lines()
        .find_map(|l| l.strip_prefix("// exit status "))
        .map_or(0, |n| n.trim().parse().expect("an exit status"));
    let out = Test::new().file(script, &ex.text).raw(&words).run();
    if out.code != Some(want) {
        return Some(format!(
            "{}: exit status {:?}, not {want}\n{}",
            ex.at,
            out.code,
            out.describe()
        ));
    }
    let printed: Vec<&str> = out.stdout.lines().map(str::trim).collect();
    for line in ex.text.lines().filter(|l| l.starts_with("print(")) {
        if let Some((_, value)) = line.split_once("// ")
            && !printed.contains(&value.trim())
        {
            return Some(format!(
                "{}: `{line}` did not print `{}`\n{}",
                ex.at,
                value.trim(),
                out.describe()
            ));
        }
    }
    None
}

/// Runs the examples of `docs/` whose info string is `info`; how many ran.
fn run_examples(info: &str) -> usize {
    let mut wrong = Vec::new();
    let mut ran = 0;
    for md in docs() {
        for ex in examples(&md) {
            assert!(
                [
                    "rhai",
                    "rhai no-run",
                    "rhai needs=postgresql",
                    "rhai needs=rclone"
                ]
                .contains(&ex.info.as_str()),
                "{}: unknown info string `{}`",
                ex.at,
                ex.info
            );
            if ex.info == info {
                wrong.extend(check(&ex));
                ran += 1;
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n\n"));
    ran
}

#[test]
fn every_example_in_docs_runs_and_prints_what_it_says() {
    let ran = run_examples("rhai");
    assert!(ran >= 20, "only {ran} examples found in docs/");
}

#[test]
#[cfg_attr(prun_no_postgres, ignore = "PostgreSQL (initdb) is not installed")]
fn the_postgresql_examples_in_docs_run() {
    if !postgres::installed() {
        postgres::skip(
            "PostgreSQL (initdb) is not installed",
            "apt-get install postgresql",
        );
        return;
    }
    let _one = postgres::one_server_at_a_time();
    assert!(run_examples("rhai needs=postgresql") >= 1);
}

#[test]
#[cfg_attr(prun_no_rclone, ignore = "rclone 1.63+ is not installed")]
fn the_rclone_examples_in_docs_run() {
    assert!(run_examples("rhai needs=rclone") >= 1);
}

/// The GitHub anchor of a heading: lower case, punctuation dropped, spaces as dashes.
fn anchor(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || *c == ' ' || *c == '-' || *c == '_')
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

/// The targets of the `[text](target)` links of a Markdown file, outside code.
fn links(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut fenced = false;
    for line in text.lines() {
        if line.starts_with("```") {
            fenced = !fenced;
            continue;
        }
        if fenced {
            continue;
        }
        let mut rest = line;
        while let Some(i) = rest.find("](") {
            let after = &rest[i + 2..];
            let Some(end) = after.find(')') else { break };
            out.push(after[..end].to_string());
            rest = &after[end..];
        }
    }
    out
}

#[test]
fn readme_and_docs_link_only_to_files_and_headings_in_the_repository() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = docs();
    files.push(root.join("README.md"));
    let mut wrong = Vec::new();
    let mut checked = 0;
    for md in &files {
        let text = std::fs::read_to_string(md).expect("read");
        for link in links(&text) {
            checked += 1;
            if link.contains("://") || link.starts_with("mailto:") {
                wrong.push(format!("{}: {link} leaves the repository", md.display()));
                continue;
            }
            let (file, frag) = link.split_once('#').unwrap_or((&link, ""));
            let target = if file.is_empty() {
                md.clone()
            } else {
                md.parent().expect("dir").join(file)
            };
            if !target.exists() {
                wrong.push(format!("{}: {link}: no such file", md.display()));
                continue;
            }
            if !frag.is_empty() && target.is_file() {
                let headings = std::fs::read_to_string(&target).expect("read");
                let found = headings
                    .lines()
                    .filter_map(|l| l.strip_prefix('#'))
                    .any(|h| anchor(h.trim_start_matches('#')) == frag);
                if !found {
                    wrong.push(format!("{}: {link}: no such heading", md.display()));
                }
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    assert!(checked >= 10, "only {checked} links found");
}

#[test]
fn readme_and_docs_refer_to_nothing_a_reader_does_not_have() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = docs();
    files.push(root.join("README.md"));
    let mut wrong = Vec::new();
    for md in &files {
        let text = std::fs::read_to_string(md).expect("read").to_lowercase();
        // The project's own working documents and a library the docs never introduce.
        for word in ["parproc", "contract", "third post", "shared/api"] {
            if text.contains(word) {
                wrong.push(format!("{}: mentions {word:?}", md.display()));
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

/// The keys of a JSON text, in the order they are written.
fn json_keys(text: &str) -> Vec<String> {
    text.lines()
        .filter_map(|l| {
            let rest = l.trim_start().strip_prefix('"')?;
            let (key, after) = rest.split_once('"')?;
            after.starts_with(':').then(|| key.to_string())
        })
        .collect()
}

#[test]
fn the_json_report_has_its_keys_in_the_order_cli_md_shows() {
    // The report was written with its keys sorted (`"procs"` before `"run"`, a proc's
    // `"duration"` first), unlike the example in docs/cli.md.
    let md = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/cli.md");
    let text = std::fs::read_to_string(md).expect("read docs/cli.md");
    let (_, after) = text
        .split_once("```json\n")
        .expect("cli.md has a ```json block");
    let (example, _) = after.split_once("```").expect("the block ends");
    let out = Test::new()
        .script("proc(\"fetch\", #{ shell: \"true\" });\n")
        .args(&["fetch", "--json", "r.json", "--", "x"])
        .run();
    out.ok();
    assert_eq!(json_keys(&out.read("r.json")), json_keys(example));
}

#[test]
fn the_inputs_example_is_up_to_date_when_run_twice_as_its_text_says() {
    // The example wrote its input on every run, so `bundle` was never UP_TO_DATE.
    let md = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/script-api.md");
    let ex = examples(&md)
        .into_iter()
        .find(|e| e.text.contains("proc(\"bundle\""))
        .expect("the inputs example");
    let first = Test::new()
        .file("main.rhai", &ex.text)
        .raw(&["main.rhai"])
        .run();
    first.ok();
    let dir = first.dir.path();
    let second = std::process::Command::new(env!("CARGO_BIN_EXE_prun"))
        .args(["main.rhai", "--no-live"])
        .current_dir(dir)
        .env("XDG_STATE_HOME", dir.join("state"))
        .output()
        .expect("run prun");
    let out = String::from_utf8_lossy(&second.stdout);
    assert!(second.status.success(), "{out}");
    assert!(
        out.contains("UP_TO_DATE bundle") && out.contains("SUCCEEDED  deploy"),
        "{out}"
    );
}

/// The keys prun lists as valid after an unknown one (`(valid options: a, b, ...)`), for
/// a script whose last line uses the key `zz_unknown`.
fn valid_keys(script: &str) -> Vec<String> {
    let out = Test::new().script(script).run();
    let (_, list) = out
        .stderr
        .split_once("valid options: ")
        .unwrap_or_else(|| panic!("no list of valid options:\n{}", out.describe()));
    let list = list.split(')').next().unwrap_or("");
    list.split(", ").map(str::to_string).collect()
}

/// The text of `md` from `start` (included) to the next `end`.
fn between<'a>(md: &'a str, start: &str, end: &str) -> &'a str {
    let at = md.find(start).unwrap_or_else(|| panic!("no {start:?}"));
    let after = &md[at..];
    after.split_once(end).map_or(after, |(t, _)| t)
}

#[test]
fn readme_and_script_api_name_every_option_prun_takes() {
    // README's list of proc options left out `no_skip`, `inputs` and `outputs`.
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let readme = std::fs::read_to_string(root.join("README.md")).expect("README.md");
    let api = std::fs::read_to_string(root.join("docs/script-api.md")).expect("script-api.md");
    let kinds = [
        (
            "proto(\"p::[x]\", #{ zz_unknown: 1 }, |ctx, x| 1);",
            between(&readme, "Options: `deps`", "An unknown option"),
        ),
        (
            "set_options(#{ zz_unknown: 1 });",
            between(&readme, "`set_options(#{ parallel, resources", "})`"),
        ),
        (
            "exec([\"true\"], #{ zz_unknown: 1 });",
            between(
                &readme,
                "work inside procs and at the top level. Options:",
                "A pipe stage",
            ),
        ),
    ];
    let mut wrong = Vec::new();
    for (script, readme_list) in kinds {
        for key in valid_keys(script) {
            let row = [
                format!("| `{key}` |"),
                format!("| `{key}`, "),
                format!(", `{key}` |"),
            ];
            if !row.iter().any(|r| api.contains(r.as_str())) {
                wrong.push(format!("docs/script-api.md has no table row for `{key}`"));
            }
            let named = readme_list
                .split(|c: char| !(c.is_alphanumeric() || c == '_'))
                .any(|w| w == key);
            if !named {
                wrong.push(format!("README.md does not list `{key}` ({script})"));
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn the_options_readme_gives_backup_verify_are_its_own() {
    // README said `-v` prints what each step found; the script's option is `--details`
    // (`-v` is prun's, and adds command lines).
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let readme = std::fs::read_to_string(root.join("README.md")).expect("README.md");
    let text = between(
        &readme,
        "It fetches the newest backup",
        "`scripts/pg-copy.rhai`",
    );
    let help = std::process::Command::new(env!("CARGO_BIN_EXE_prun"))
        .args(["scripts/backup-verify.rhai", "--help"])
        .current_dir(root)
        .output()
        .expect("run prun");
    let help = String::from_utf8_lossy(&help.stdout);
    let mut wrong = Vec::new();
    for quoted in text.split('`').skip(1).step_by(2) {
        let Some(option) = quoted.split(' ').next().filter(|w| w.starts_with('-')) else {
            continue;
        };
        let declared = help
            .split(|c: char| c.is_whitespace() || c == ',')
            .any(|w| w == option);
        if !declared {
            wrong.push(format!(
                "README gives backup-verify {option}, which its --help lacks"
            ));
        }
    }
    assert!(wrong.is_empty(), "{}\n{help}", wrong.join("\n"));
}

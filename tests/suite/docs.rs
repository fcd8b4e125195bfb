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
//!
//! The transcripts of `docs/cli.md` (plain blocks of `$ prun ...` lines, each followed
//! by what it prints) are run too, with the scripts they name written here, and must print
//! what they show, times and numbers aside. The `rhai` blocks of README.md, a tour that
//! calls git, make, rclone and npm, are checked with `prun check`, which runs no command.

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

/// A transcript of `docs/cli.md`: a fenced block of `$ prun ...` command lines, each
/// followed by what it prints.
struct Transcript {
    at: String,
    /// Each command line (without `$ `) and the lines it prints.
    commands: Vec<(String, Vec<String>)>,
}

fn transcripts(md: &Path) -> Vec<Transcript> {
    let text = std::fs::read_to_string(md).expect("read docs");
    let mut out = Vec::new();
    let mut lines = text.lines().enumerate();
    while let Some((i, line)) = lines.next() {
        let Some(info) = line.strip_prefix("```") else {
            continue;
        };
        let block: Vec<&str> = lines
            .by_ref()
            .map(|(_, l)| l)
            .take_while(|l| !l.starts_with("```"))
            .collect();
        if !info.is_empty() || !block.first().is_some_and(|l| l.starts_with("$ prun ")) {
            continue;
        }
        let mut commands: Vec<(String, Vec<String>)> = Vec::new();
        for l in block {
            match l.strip_prefix("$ ") {
                Some(cmd) => commands.push((cmd.to_string(), Vec::new())),
                None => commands
                    .last_mut()
                    .expect("a command")
                    .1
                    .push(l.to_string()),
            }
        }
        out.push(Transcript {
            at: format!("{}:{}", md.display(), i + 2),
            commands,
        });
    }
    out
}

/// `build.rhai` of the transcripts: a proc with help and a proto with choices.
const BUILD_RHAI: &str = r#"proc("fetch", #{ help: "get data", shell: "echo fetched > data.txt" });
proto("build::[env]", #{ help: "build one env", arg_choices: #{ env: ["dev", "prod"] } },
    |ctx, env| `built_${env}`);
"#;

/// `s.rhai` of the transcripts (its closure at line 3, column 1).
const S_RHAI: &str = r#"proc("fetch", #{ help: "get data", shell: "echo fetched > data.txt" });
proc("compress", #{ deps: ["fetch"], shell: "gzip -kf data.txt" }); proto("build::[env]", #{ help: "build one env", deps: ["compress"], arg_choices: #{ env: ["dev", "prod"] } },
|ctx, env| `built_${env}`);
run("compress");
"#;

/// `s.rhai` of the `prun check` transcript: its mistakes at the lines it shows.
const CHECK_S_RHAI: &str = r#"proc("a", #{ wave: 1, shell: "true" });
proc("b", #{ deps: ["aa"], shell: "true" });
proc("c", #{ dpes: ["a"], shell: "true" });
proc("d", #{ deps: ["e"], shell: "true" });
proc("e", #{ deps: ["d"], shell: "true" });
proc("f", #{ deps: ["a"], shell: "true" });
proto("deploy::[env]", |ctx, env| env);
"#;

const GOOD_RHAI: &str = r#"proc("a", #{ shell: "true" });
proc("b", #{ deps: ["a"], shell: "true" });
proc("c", #{ deps: ["b"], shell: "true" });
proto("p::[x]", |ctx, x| x);
"#;

/// The files (name, text) a transcript's commands need, and the commands to run first.
type Setting = (Vec<(&'static str, &'static str)>, Vec<&'static str>);

/// The [`Setting`] of a transcript, by its first command line; `Err` says why it cannot
/// be checked here (`""`: no setting was written for it).
fn setting(first: &str) -> Result<Setting, &'static str> {
    let build = vec![("build.rhai", BUILD_RHAI)];
    let s = vec![("s.rhai", S_RHAI)];
    Ok(match first {
        "prun build.rhai bulid::dev" | "prun build.rhai" => (build, vec![]),
        "prun s.rhai --dry-run 'build::*'" | "prun list s.rhai" | "prun graph s.rhai" => {
            (s, vec![])
        }
        "prun check s.rhai deploy" => (
            vec![("s.rhai", CHECK_S_RHAI), ("good.rhai", GOOD_RHAI)],
            vec![],
        ),
        "prun history s.rhai" => (s, vec!["prun s.rhai 'build::*'"; 2]),
        "prun report media.rhai" => {
            return Err("a run of 30 procs on Slurm with a history of slower runs");
        }
        _ => return Err(""),
    })
}

/// A line with its digits (times, durations, numbers) made `0`, for comparing output
/// whose times differ from run to run.
fn digits_zeroed(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut in_number = false;
    for c in line.chars() {
        if !c.is_ascii_digit() {
            out.push(c);
        } else if !in_number {
            out.push('0');
        }
        in_number = c.is_ascii_digit();
    }
    out
}

/// Runs `command` (a shell command line starting with `prun`) in `dir`; stdout and
/// stderr as one text, in the order written.
fn shell_prun(dir: &Path, command: &str) -> String {
    let line = format!("{} 2>&1", command.replacen("prun", "\"$PRUN\"", 1));
    let mut cmd = std::process::Command::new("sh");
    cmd.args(["-c", &line])
        .current_dir(dir)
        .env("PRUN", env!("CARGO_BIN_EXE_prun"))
        .env("XDG_STATE_HOME", dir.join("state"))
        .env_remove("NO_COLOR");
    crate::support::run_bounded(cmd, command, |_| {}).stdout
}

/// Why what a command printed is not what the transcript shows, if it is not: lines
/// compared with their digits zeroed; a line `...` stands for any further lines, and a
/// line ending in `...)` for any line that starts as it does.
fn transcript_differs(want: &[String], got: &str) -> Option<String> {
    let got: Vec<&str> = got.lines().collect();
    for (i, w) in want.iter().enumerate() {
        if w.trim() == "..." {
            return None;
        }
        let g = got.get(i).map(|g| digits_zeroed(g));
        let same = match w.split_once("...") {
            Some((head, _)) => g
                .as_deref()
                .is_some_and(|g| g.starts_with(&digits_zeroed(head))),
            None => g.as_deref() == Some(&digits_zeroed(w)),
        };
        if !same {
            return Some(format!(
                "line {}: shown {w:?}, printed {:?}",
                i + 1,
                got.get(i)
            ));
        }
    }
    (got.len() > want.len()).then(|| format!("more lines printed: {:?}", &got[want.len()..]))
}

#[test]
fn the_transcripts_of_cli_md_are_what_prun_prints() {
    let md = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/cli.md");
    let mut wrong = Vec::new();
    let mut checked = 0;
    for t in transcripts(&md) {
        let (files, before) = match setting(&t.commands[0].0) {
            Ok(s) => s,
            Err("") => {
                wrong.push(format!("{}: no setting for `{}`", t.at, t.commands[0].0));
                continue;
            }
            Err(_) => continue,
        };
        let dir = tempfile::tempdir().expect("tempdir");
        for (name, text) in files {
            std::fs::write(dir.path().join(name), text).expect("write script");
        }
        for command in before {
            shell_prun(dir.path(), command);
        }
        for (command, want) in &t.commands {
            let got = shell_prun(dir.path(), command);
            if let Some(why) = transcript_differs(want, &got) {
                wrong.push(format!("{}: `{command}`: {why}\n--- printed\n{got}", t.at));
            }
        }
        checked += 1;
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n\n"));
    assert!(checked >= 7, "only {checked} transcripts checked");
}

#[test]
fn the_readme_s_examples_pass_prun_check() {
    // The README's are a tour that calls git, make, rclone and npm, so they are checked,
    // not run: `prun check` runs no command. The one of commands used `src` and `dst`
    // without defining them ("Variable not found: src").
    let readme = Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md");
    let mut wrong = Vec::new();
    let mut checked = 0;
    for ex in examples(&readme) {
        let out = Test::new()
            .file("main.rhai", &ex.text)
            .raw(&["check", "main.rhai"])
            .run();
        if out.code != Some(0) {
            wrong.push(format!("{}: {}", ex.at, out.describe()));
        }
        checked += 1;
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n\n"));
    assert!(checked >= 4, "only {checked} examples found in README.md");
}

//! The policy (issue 11): every path that starts a process is refused for a program the
//! policy does not allow, a shell string too when shell strings are off, and denied
//! environment variables are hidden from `env()` and from commands. Through the library
//! and through the command line (`--allow`, `--no-shell`, `--deny-env`).

use std::path::Path;

use prun::{Outcome, Policy, Runtime, TaskDb};

use crate::support::Test;

fn runtime(dir: &Path, policy: Policy) -> Runtime {
    Runtime::builder()
        .task_db(TaskDb::Off)
        .log_dir(dir.join("logs"))
        .state_dir(dir.join("state"))
        .policy(policy)
        .build()
        .unwrap()
}

/// Runs `script` (where `MARK` stands for a file in a fresh directory) under `policy`;
/// returns every error of the run and whether the file was made.
fn attempt(policy: Policy, script: &str) -> (String, bool) {
    let dir = tempfile::tempdir().unwrap();
    let mark = dir.path().join("mark");
    let script = script.replace("MARK", &mark.display().to_string());
    let report = runtime(dir.path(), policy)
        .run_str(&script, [""; 0])
        .unwrap();
    let mut errors: Vec<String> = report.run.error.iter().cloned().collect();
    errors.extend(report.procs.iter().filter_map(|p| p.error.clone()));
    assert_ne!(report.run.outcome, Outcome::Ok, "{script}: {report:?}");
    (errors.join("\n"), mark.exists())
}

/// Asserts that `script` was refused by `rule` before its command made the file.
fn refused(policy: Policy, script: &str, rule: &str) {
    let (errors, made) = attempt(policy, script);
    assert!(!made, "{script}: the refused command ran");
    assert!(
        errors.contains("refused by the policy"),
        "{script}: {errors}"
    );
    assert!(
        errors.contains(rule),
        "{script}: {rule} not named in: {errors}"
    );
}

#[test]
fn an_empty_allow_list_is_named_as_empty() {
    // `allow_programs([])` allows nothing; the refusal read "is not on the allow list ()".
    let none: [&str; 0] = [];
    refused(
        Policy::new().allow_programs(none),
        r#"proc("t", #{ cmd: ["touch", "MARK"], now: true });"#,
        "is not on the allow list (it is empty: no program may run)",
    );
}

#[test]
fn every_path_that_starts_a_process_checks_the_allow_list() {
    let only_true = || Policy::new().allow_programs(["true"]);
    let rule = "program \"touch\"";
    refused(only_true(), r#"exec(["touch", "MARK"]);"#, rule);
    refused(
        only_true(),
        r#"proc("a", #{ cmd: ["touch", "MARK"], now: true });"#,
        rule,
    );
    refused(
        only_true(),
        r#"proc("a", || exec(["touch", "MARK"])); run("a");"#,
        rule,
    );
    refused(only_true(), r#"pipe([["true"], ["touch", "MARK"]]);"#, rule);
    // A shell string runs sh, which is not allowed.
    refused(
        only_true(),
        r#"shell("touch MARK");"#,
        "sh (a shell string)",
    );
    refused(
        only_true(),
        r#"proc("a", #{ shell: "touch MARK", now: true });"#,
        "not on the allow list",
    );
    // The stdlib is Rhai over exec: `fs::ensure_dir` runs mkdir.
    refused(
        only_true(),
        r#"import "fs" as fs; fs::ensure_dir("MARK");"#,
        "program \"mkdir\"",
    );
    // Allowed, it runs.
    let dir = tempfile::tempdir().unwrap();
    let mark = dir.path().join("mark");
    let script = format!(r#"exec(["touch", "{}"]);"#, mark.display());
    let report = runtime(dir.path(), Policy::new().allow_programs(["touch"]))
        .run_str(&script, [""; 0])
        .unwrap();
    assert_eq!(report.run.outcome, Outcome::Ok, "{report:?}");
    assert!(mark.exists());
}

#[test]
fn an_allowed_name_cannot_be_borrowed_by_another_file() {
    let dir = tempfile::tempdir().unwrap();
    let fake = dir.path().join("touch");
    std::fs::write(&fake, "#!/bin/sh\necho fake > \"$1\"\n").unwrap();
    std::fs::set_permissions(&fake, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let allow = || Policy::new().allow_programs(["touch"]);
    let by_path = format!(r#"exec(["{}", "MARK"]);"#, fake.display());
    refused(allow(), &by_path, "not on the allow list");
    let relative = format!(
        r#"exec(["./touch", "MARK"], #{{ cwd: "{}" }});"#,
        dir.path().display()
    );
    refused(allow(), &relative, "not on the allow list");
    let own_path = format!(
        r#"exec(["touch", "MARK"], #{{ env: #{{ PATH: "{}" }} }});"#,
        dir.path().display()
    );
    refused(allow(), &own_path, "not on the allow list");
}

#[test]
fn an_allowed_name_is_checked_where_the_command_runs() {
    use std::os::unix::fs::{PermissionsExt, symlink};
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let fake = |path: &Path| {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, "#!/bin/sh\necho fake > \"$1\"\n").unwrap();
        std::fs::set_permissions(path, PermissionsExt::from_mode(0o755)).unwrap();
    };
    fake(&d.join("bin/true"));
    let allow = || Policy::new().allow_programs(["true"]);
    // A relative entry of the command's PATH is relative to its cwd, not to prun's.
    let relative_entry = format!(
        r#"exec(["true", "MARK"], #{{ cwd: "{}", env: #{{ PATH: "bin:" + env("PATH") }} }});"#,
        d.display()
    );
    refused(allow(), &relative_entry, "not on the allow list");
    let empty_entry = format!(
        r#"exec(["true", "MARK"], #{{ cwd: "{}", env: #{{ PATH: ":" + env("PATH") }} }});"#,
        d.join("bin").display()
    );
    refused(allow(), &empty_entry, "not on the allow list");
    // `..` after a link leaves the link's target, as the kernel resolves it: `lnk/../true`
    // is `a/true` (the fake), not `./true` (a link to the real one).
    let real = std::env::split_paths(&std::env::var_os("PATH").unwrap())
        .map(|p| p.join("true"))
        .find(|p| p.is_file())
        .unwrap();
    symlink(&real, d.join("true")).unwrap();
    fake(&d.join("a/true"));
    std::fs::create_dir_all(d.join("a/b")).unwrap();
    symlink(d.join("a/b"), d.join("lnk")).unwrap();
    let dot_dot = format!(
        r#"exec(["lnk/../true", "MARK"], #{{ cwd: "{}" }});"#,
        d.display()
    );
    refused(allow(), &dot_dot, "not on the allow list");
    let allowed = format!(r#"exec(["./true"], #{{ cwd: "{}" }});"#, d.display());
    let report = runtime(d, allow()).run_str(&allowed, [""; 0]).unwrap();
    assert_eq!(report.run.outcome, Outcome::Ok, "{report:?}");
}

#[test]
fn a_missing_program_is_refused_as_missing_not_as_unlisted() {
    let allow = || Policy::new().allow_programs(["prun-no-such-tool", "true"]);
    let (errors, _) = attempt(allow(), r#"exec(["prun-no-such-tool", "MARK"]);"#);
    assert!(
        errors.contains("program \"prun-no-such-tool\" is not found"),
        "{errors}"
    );
    assert!(!errors.contains("is not on the allow list"), "{errors}");
}

#[test]
fn a_variable_that_makes_an_allowed_program_run_code_is_not_passed() {
    // An allowed tool that is a bash script: BASH_ENV makes bash run any file first.
    let t = Test::new();
    let bin = t.dir().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let tool = bin.join("prun-test-tool");
    std::fs::write(&tool, "#!/bin/bash\ntrue\n").unwrap();
    std::fs::set_permissions(&tool, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap());
    let script = r#"write_file("evil.sh", "touch made\n");
        exec(["prun-test-tool"], #{ env: #{ BASH_ENV: "evil.sh" } });"#;
    let out = t
        .env("PATH", &path)
        .script(script)
        .before(&["--allow", "prun-test-tool"])
        .run();
    out.code(2)
        .err_has("environment variable BASH_ENV may not be passed");
    assert!(
        !out.exists("made"),
        "BASH_ENV ran code through the allowed tool"
    );
    // Without a policy on programs, or when allow_env names it, it is passed.
    let dir = tempfile::tempdir().unwrap();
    let run = |policy: Policy| {
        runtime(dir.path(), policy)
            .run_str(
                r#"exec(["sh", "-c", "test \"$PYTHONPATH\" = /x"], #{ env: #{ PYTHONPATH: "/x" } });"#,
                [""; 0],
            )
            .unwrap()
    };
    let refused = run(Policy::new().allow_programs(["sh"]));
    let error = refused.run.error.clone().unwrap_or_default();
    assert!(error.contains("PYTHONPATH may not be passed"), "{error}");
    for policy in [
        Policy::new().deny_env(["SECRET"]),
        Policy::new()
            .allow_programs(["sh"])
            .allow_env(["PATH", "PYTHON*"]),
    ] {
        let report = run(policy);
        assert_eq!(report.run.outcome, Outcome::Ok, "{report:?}");
    }
}

/// A command that does not inherit `PATH` (the policy hides it) finds programs where the
/// C library looks without one, not on prun's `PATH`: the policy resolves a name as that
/// spawn does, so it does not allow one file and see another run.
#[test]
fn a_name_is_resolved_as_a_command_without_path_finds_it() {
    let t = Test::new();
    let bin = t.dir().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let tool = bin.join("prun-test-tool");
    std::fs::write(&tool, "#!/bin/sh\ntouch made\n").unwrap();
    std::fs::set_permissions(&tool, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap());
    let out = t
        .env("PATH", &path)
        .script(r#"exec(["prun-test-tool"]);"#)
        .before(&["--allow", "prun-test-tool", "--deny-env", "PATH"])
        .run();
    out.code(2)
        .err_has("refused by the policy: program \"prun-test-tool\" is not found in /")
        .err_has("(the policy hides PATH from commands, which then look there)");
    assert!(!out.exists("made"));
}

#[test]
fn no_shell_refuses_shell_strings_that_name_allowed_programs() {
    let policy = || {
        Policy::new()
            .allow_programs(["touch", "sh", "true"])
            .no_shell()
    };
    refused(policy(), r#"shell("touch MARK");"#, "no_shell");
    refused(
        policy(),
        r#"proc("a", #{ shell: "touch MARK", now: true });"#,
        "no_shell",
    );
    refused(policy(), r#"pipe([["true"], "touch MARK"]);"#, "no_shell");
}

#[test]
fn an_executors_client_options_cannot_run_a_program_around_the_policy() {
    let only_true = || Policy::new().allow_programs(["true"]);
    // ssh runs a ProxyCommand (a shell string) before it connects anywhere.
    let ssh = |args: &str| {
        format!(
            r#"set_options(#{{ executors: #{{ farm: #{{ kind: "ssh", hosts: ["prun-test.invalid"],
                args: [{args}, "-o", "BatchMode=yes"] }} }} }});
            proc("a", #{{ executor: "farm", cmd: ["true"], now: true }});"#
        )
    };
    refused(
        only_true(),
        &ssh(r#""-o", "ProxyCommand=touch MARK""#),
        "the option `-o ProxyCommand=touch ",
    );
    refused(
        Policy::new().no_shell(),
        &ssh(r#""-oProxyCommand touch MARK""#),
        "the option `-oProxyCommand touch ",
    );
    refused(
        only_true(),
        &ssh(r#""-o", "LogLevel=ERROR\nProxyCommand=touch MARK""#),
        "of `ssh` is refused by the policy",
    );
    let slurm = r#"set_options(#{ executors: #{ hpc: #{ kind: "slurm", args: ["--qos=normal", "--task-prolog=MARK"] } } });"#;
    refused(only_true(), slurm, "the option `--task-prolog=");
    // Options that only say how to connect, or where a job runs, are declared as usual.
    let dir = tempfile::tempdir().unwrap();
    let report = runtime(dir.path(), only_true())
        .run_str(
            r#"set_options(#{ executors: #{
                farm: #{ kind: "ssh", hosts: ["prun-test.invalid"], args: ["-o", "StrictHostKeyChecking=no", "-oLogLevel=ERROR", "-q"] },
                hpc: #{ kind: "slurm", args: ["--qos=normal", "--exclusive"] },
            } });"#,
            [""; 0],
        )
        .unwrap();
    assert_eq!(report.run.outcome, Outcome::Ok, "{report:?}");
}

/// srun, the slurm executor's client, reads its options from `SLURM_*` and `SRUN_*`
/// variables too: `SLURM_PROLOG` is `--prolog`, a program srun runs here before the job.
#[test]
#[cfg_attr(prun_no_slurm, ignore = "needs root and Slurm (slurm-wlm, munge)")]
fn an_executors_client_reads_no_options_from_the_scripts_variables() {
    let _node = crate::support::slurm::up();
    let dir = tempfile::tempdir().unwrap();
    let program = dir.path().join("not-allowed");
    std::fs::write(&program, "#!/bin/sh\ntouch \"$0.ran\"\n").unwrap();
    std::fs::set_permissions(
        &program,
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    for variable in ["SLURM_PROLOG", "SLURM_TASK_PROLOG", "SRUN_EXPORT_ENV"] {
        refused(
            Policy::new().allow_programs(["true"]),
            &format!(
                r#"set_options(#{{ executors: #{{ hpc: #{{ kind: "slurm" }} }} }});
                proc("a", #{{ executor: "hpc", cmd: ["true"], now: true,
                    env: #{{ {variable}: "{}" }} }});"#,
                program.display()
            ),
            &format!("environment variable {variable} may not be passed"),
        );
        assert!(
            !dir.path().join("not-allowed.ran").exists(),
            "{variable} ran a program the policy does not allow"
        );
    }
}

/// A script that picks its tools with `which` (`pigz` when there is one, else `gzip`) or
/// checks them first with `require` sees the policy: a program it may not run is as good
/// as missing, and `require` says why.
#[test]
fn which_and_require_see_what_the_policy_refuses() {
    let dir = tempfile::tempdir().unwrap();
    let rt = runtime(dir.path(), Policy::new().allow_programs(["true"]));
    let report = rt
        .run_str(
            r#"proc("a", || [which("touch"), type_of(which("true"))]); run("a");"#,
            [""; 0],
        )
        .unwrap();
    assert_eq!(report.run.outcome, Outcome::Ok, "{report:?}");
    assert_eq!(
        report.proc("a").unwrap().result,
        serde_json::json!([null, "string"])
    );
    let (errors, _) = attempt(
        Policy::new().allow_programs(["true"]),
        r#"require("true", "touch");"#,
    );
    assert!(
        errors.contains("required tool \"touch\" is refused by the policy"),
        "{errors}"
    );
    assert!(errors.contains("not on the allow list"), "{errors}");
}

#[test]
fn deny_rules_win_over_allow_rules() {
    refused(
        Policy::new()
            .allow_programs(["to*"])
            .deny_programs(["touch"]),
        r#"exec(["touch", "MARK"]);"#,
        "deny rule \"touch\"",
    );
}

#[test]
fn a_denied_variable_is_hidden_from_env_and_from_commands() {
    let dir = tempfile::tempdir().unwrap();
    let rt = runtime(dir.path(), Policy::new().deny_env(["HOME"]));
    let report = rt
        .run_str(
            r#"
            proc("read", || env("HOME"));
            proc("child", || exec(["sh", "-c", "echo \"[$HOME]\""]).stdout);
            proc("path", || env("PATH") != ());
            run(["read", "child", "path"]);
            "#,
            [""; 0],
        )
        .unwrap();
    let result = |name: &str| report.proc(name).unwrap().result.clone();
    assert_eq!(result("read"), serde_json::Value::Null, "{report:?}");
    assert_eq!(result("child"), serde_json::json!("[]\n"));
    assert_eq!(result("path"), serde_json::json!(true));
    refused(
        Policy::new().deny_env(["HOME"]),
        r#"exec(["touch", "MARK"], #{ env: #{ HOME: "/tmp" } });"#,
        "deny_env \"HOME\"",
    );
}

#[test]
fn max_procs_stops_a_run_that_starts_too_many() {
    let dir = tempfile::tempdir().unwrap();
    let rt = runtime(dir.path(), Policy::new().max_procs(2));
    let report = rt
        .run_str(
            &format!(
                r#"for i in 0..5 {{ proc(`p${{i}}`, #{{ cmd: ["touch", `{}/p${{i}}`], deps: if i > 0 {{ [`p${{i - 1}}`] }} else {{ [] }} }}); }} run("p4");"#,
                dir.path().display()
            ),
            [""; 0],
        )
        .unwrap();
    assert_eq!(report.run.outcome, Outcome::Interrupted, "{report:?}");
    let error = report.run.error.clone().unwrap_or_default();
    assert!(error.contains("max_procs"), "{error}");
    // Two procs ran; the third did not start its command.
    assert!(dir.path().join("p1").exists(), "{report:?}");
    assert!(
        !dir.path().join("p2").exists(),
        "a third proc ran: {report:?}"
    );
    let third = report.proc("p2").unwrap();
    assert_eq!(third.state, prun::State::Failed, "{third:?}");
    let why = third.error.clone().unwrap_or_default();
    assert!(why.contains("at most 2 procs (max_procs)"), "{why}");
}

#[test]
fn max_run_time_stops_a_long_run() {
    let dir = tempfile::tempdir().unwrap();
    let rt = runtime(
        dir.path(),
        Policy::new().max_run_time(std::time::Duration::from_millis(200)),
    );
    let report = rt
        .run_str(
            r#"proc("a", #{ cmd: ["sleep", "60"], now: true });"#,
            [""; 0],
        )
        .unwrap();
    assert_eq!(report.run.outcome, Outcome::Interrupted, "{report:?}");
    let error = report.run.error.unwrap_or_default();
    assert!(error.contains("max_run_time"), "{error}");
}

#[test]
fn the_command_line_has_the_policy_as_flags() {
    let out = Test::new()
        .script(r#"exec(["touch", "made"]); shell("touch shelled");"#)
        .before(&["--allow", "touch", "--no-shell"])
        .run();
    out.code(2).err_has("no_shell");
    assert!(out.exists("made") && !out.exists("shelled"));
    let out = Test::new()
        .script(r#"exec(["touch", "made"]);"#)
        .before(&["--allow", "true"])
        .run();
    out.code(2).err_has("program \"touch\"");
    assert!(!out.exists("made"));
    let out = Test::new()
        .env("PRUN_TEST_HIDDEN", "visible")
        .script(r#"print(`hidden: ${env("PRUN_TEST_HIDDEN") == ()}`); exec(["sh", "-c", "test -z \"$PRUN_TEST_HIDDEN\""]);"#)
        .args(&["--deny-env", "PRUN_TEST_HIDDEN"])
        .run();
    out.ok().out_has("hidden: true");
}

/// The programs prun runs itself, not for a command of the script (here the Slurm
/// client's `squeue` and `scancel`, which find and cancel the job of a proc that timed
/// out), do not get a variable the policy hides either. Fakes of the Slurm client on PATH
/// write down the environment they were given.
#[test]
fn a_denied_variable_is_hidden_from_the_programs_prun_runs_itself() {
    use std::os::unix::fs::PermissionsExt;
    let test = Test::new();
    let dir = test.dir().to_path_buf();
    let bin = dir.join("bin");
    std::fs::create_dir(&bin).unwrap();
    for (tool, then) in [("srun", "exec sleep 30"), ("squeue", ""), ("scancel", "")] {
        let path = bin.join(tool);
        let script = format!("#!/bin/sh\nenv >> {}/{tool}.env\n{then}\n", dir.display());
        std::fs::write(&path, script).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap());
    let out = test
        .env("PATH", &path)
        .env("PRUN_TEST_HIDDEN", "secret")
        .env("PRUN_TEST_SEEN", "yes")
        .script(
            r#"
set_options(#{ executors: #{ hpc: #{ kind: "slurm" } } });
proc("job", #{ executor: "hpc", cmd: ["true"], timeout: "2s" });
run("job");
"#,
        )
        .args(&["--deny-env", "PRUN_TEST_HIDDEN"])
        .run();
    out.code(1);
    for tool in ["squeue", "scancel"] {
        let env = out.read(&format!("{tool}.env"));
        assert!(env.contains("PRUN_TEST_SEEN=yes"), "{tool}: {env}");
        assert!(!env.contains("PRUN_TEST_HIDDEN"), "{tool}: {env}");
    }
}

#[test]
fn a_denied_variable_is_hidden_from_the_declaration_of_the_scripts_options() {
    let script = |var: &str| {
        format!(
            r#"let opts = args(#{{ token: #{{ "default": env("{var}") ?? "none" }} }});
            print(`token: ${{opts.token}}`);
            proc("t", || opts.token);"#
        )
    };
    let out = Test::new()
        .env("PRUN_TEST_HIDDEN", "visible")
        .script(&script("PRUN_TEST_HIDDEN"))
        .args(&["--deny-env", "PRUN_TEST_HIDDEN"])
        .run();
    out.ok().out_has("token: none").out_lacks("visible");
    // The library: HOME is set in the tests' environment.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.rhai");
    std::fs::write(&path, script("HOME")).unwrap();
    let report = runtime(dir.path(), Policy::new().deny_env(["HOME"]))
        .run_file(&path, ["t"])
        .unwrap();
    assert_eq!(
        report.procs[0].result,
        serde_json::json!("none"),
        "{report:?}"
    );
}

#[test]
fn an_options_env_setting_does_not_read_a_denied_variable() {
    let script = |var: &str| {
        format!(
            r#"let opts = args(#{{ token: #{{ env: "{var}", "default": "none" }}, all: #{{ env: "{var}", list: true }} }});
            print(`token: ${{opts.token}} all: ${{opts.all}}`);
            proc("t", || `${{opts.token}} ${{opts.all}}`);"#
        )
    };
    let out = Test::new()
        .env("PRUN_TEST_HIDDEN", "visible")
        .script(&script("PRUN_TEST_HIDDEN"))
        .args(&["--deny-env", "PRUN_TEST_HIDDEN"])
        .run();
    out.ok().out_has("token: none all: []").out_lacks("visible");
    // Without the policy the setting reads the variable.
    let out = Test::new()
        .env("PRUN_TEST_HIDDEN", "visible")
        .script(&script("PRUN_TEST_HIDDEN"))
        .run();
    out.ok().out_has("token: visible");
    // The library: HOME is set in the tests' environment.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.rhai");
    std::fs::write(&path, script("HOME")).unwrap();
    let report = runtime(dir.path(), Policy::new().deny_env(["HOME"]))
        .run_file(&path, ["t"])
        .unwrap();
    assert_eq!(
        report.procs[0].result,
        serde_json::json!("none []"),
        "{report:?}"
    );
}

#[test]
fn list_and_graph_take_the_policy_flags() {
    // Both run the script's top level, and so its commands there.
    let script = r#"exec(["touch", "made"]); proc("a", #{ cmd: ["true"] });"#;
    for command in ["list", "graph"] {
        let out = Test::new()
            .script(script)
            .raw(&[command, "--allow", "true", "main.rhai"])
            .run();
        out.code(2).err_has("program \"touch\"");
        assert!(!out.exists("made"), "prun {command} ran a refused command");
        let out = Test::new()
            .script(r#"shell("touch made"); proc("a", #{ cmd: ["true"] });"#)
            .raw(&[command, "--no-shell", "main.rhai"])
            .run();
        out.code(2).err_has("no_shell");
        assert!(!out.exists("made"), "prun {command} ran a shell string");
    }
    let out = Test::new()
        .env("PRUN_TEST_HIDDEN", "visible")
        .script(r#"proc(`p-${env("PRUN_TEST_HIDDEN") ?? "hidden"}`, || 1);"#)
        .raw(&["list", "--deny-env", "PRUN_TEST_HIDDEN", "main.rhai"])
        .run();
    out.ok().out_has("p-hidden").out_lacks("visible");
}

/// A runtime under `policy` that cancels its run at the `stop_at`th time its watch
/// settles ("watching ..."), having written `input` before each earlier one, so that
/// each starts a cycle.
fn watching_runtime(
    dir: &Path,
    policy: Policy,
    input: &Path,
    stop_at: usize,
) -> (Runtime, prun::Cancel) {
    let cancel = prun::Cancel::new();
    let stop = cancel.clone();
    let input = input.to_path_buf();
    let settled = std::sync::atomic::AtomicUsize::new(0);
    let rt = Runtime::builder()
        .task_db(TaskDb::Off)
        .log_dir(dir.join("logs"))
        .state_dir(dir.join("state"))
        .policy(policy)
        .on_event(move |e| {
            if let prun::Event::Log { text, .. } = e
                && text.starts_with("prun: watch: watching")
            {
                let n = settled.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
                if n >= stop_at {
                    stop.cancel();
                } else {
                    std::fs::write(&input, n.to_string()).unwrap();
                }
            }
        })
        .build()
        .unwrap();
    (rt, cancel)
}

#[test]
fn max_procs_counts_a_proc_once_however_many_watch_cycles_rerun_it() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.txt");
    std::fs::write(&input, "0").unwrap();
    let (rt, cancel) = watching_runtime(dir.path(), Policy::new().max_procs(2), &input, 4);
    let script = format!(
        r#"set_options(#{{ watch: true }});
        proc("a", #{{ inputs: [{input:?}] }}, |ctx| read_file({input:?}));
        proc("b", || 1);
        run(["a", "b"]);
        watch();"#
    );
    let report = rt.run_str_with_cancel(&script, [""; 0], &cancel).unwrap();
    // Three cycles re-ran `a`: it is still one of the two procs the policy allows.
    assert_eq!(report.run.outcome, Outcome::Ok, "{report:?}");
    let a = report.proc("a").unwrap();
    assert_eq!(a.state, prun::State::Succeeded, "{a:?}");
    assert_eq!(a.result, "3", "{a:?}");
}

#[test]
fn a_policy_limit_that_ends_a_watch_is_its_outcome() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.txt");
    std::fs::write(&input, "0").unwrap();
    let (rt, cancel) = watching_runtime(dir.path(), Policy::new().max_procs(1), &input, 3);
    // The first cycle asks for a second proc, which the policy does not allow.
    let script = format!(
        r#"set_options(#{{ watch: true }});
        proc("b", || 2);
        proc("a", #{{ inputs: [{input:?}] }}, |ctx| {{
            let n = read_file({input:?});
            if n == "1" {{ ctx.wait("b"); }}
            n
        }});
        run("a");
        watch();"#
    );
    let report = rt.run_str_with_cancel(&script, [""; 0], &cancel).unwrap();
    assert_eq!(report.run.outcome, Outcome::Interrupted, "{report:?}");
    assert_eq!(report.exit_code(), 130);
    let error = report.run.error.clone().unwrap_or_default();
    assert!(error.contains("max_procs"), "{error}");
    let b = report.proc("b").unwrap();
    assert_eq!(b.state, prun::State::Failed, "{b:?}");
}

#[test]
fn a_command_on_an_executor_is_checked_as_this_machine_resolves_it() {
    // No ssh starts (the host does not exist): the check comes first, and finds no file.
    let executor = r#"set_options(#{ executors: #{ r: #{ kind: "ssh", hosts: ["prun-no-such-host.invalid"] } } });"#;
    let host_only = format!(
        r#"{executor} proc("a", #{{ executor: "r", cmd: ["/opt/prun-host-only/tool", "MARK"], now: true }});"#
    );
    refused(
        Policy::new().allow_programs(["/opt/prun-host-only/*"]),
        &host_only,
        "program \"/opt/prun-host-only/tool\" is not found",
    );
    let not_listed = format!(
        r#"{executor} proc("a", #{{ executor: "r", cmd: ["touch", "MARK"], now: true }});"#
    );
    refused(
        Policy::new().allow_programs(["true"]),
        &not_listed,
        "program \"touch\"",
    );
}

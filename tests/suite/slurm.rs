//! The `slurm` executor against a real single-node Slurm: exit codes and output, the
//! executor's own parallel limit, resources, `cwd` and `env`, and a timeout that cancels
//! the job.

use crate::support::Test;
use crate::support::slurm::{alone, own, queued_jobs_of, unqueued, up};
use crate::support::sshd::{assert_none_left, gone, processes_with};

fn declare(max_jobs: usize) -> String {
    format!(
        "set_options(#{{ executors: #{{ hpc: #{{ kind: \"slurm\", max_jobs: {max_jobs} }} }} }});\n"
    )
}

#[test]
#[cfg_attr(prun_no_slurm, ignore = "needs root and Slurm (slurm-wlm, munge)")]
fn exit_codes_and_output_come_back() {
    let _node = up();
    let out = Test::new()
        .script(&format!(
            r#"{}
proc("seven", #{{ executor: "hpc", shell: "echo to-stdout; echo to-stderr >&2; exit 7" }});
proc("talk", #{{ executor: "hpc" }}, |ctx| {{
    let r = exec(["sh", "-c", "echo hi; echo oops >&2; exit 3"], #{{ check: false }});
    write_file("talk.txt", `${{r.code}} ${{r.stdout}}${{r.stderr}}`);
}});
run(["seven", "talk"]);
"#,
            declare(4)
        ))
        .run();
    out.code(1).out_has("to-stdout").out_has("to-stderr");
    let line = out.proc_line("FAILED", "seven");
    assert!(
        line.contains("exited with code 7"),
        "{line}\n{}",
        out.describe()
    );
    assert!(
        line.contains(") on slurm job "),
        "{line}\n{}",
        out.describe()
    );
    out.proc_state("SUCCEEDED", "talk");
    // The command's stderr is its own: srun adds no line of its own saying how it ended.
    assert_eq!(out.read("talk.txt"), "3 hi\noops\n", "{}", out.describe());
}

#[test]
#[cfg_attr(prun_no_slurm, ignore = "needs root and Slurm (slurm-wlm, munge)")]
fn max_jobs_bounds_the_jobs_not_the_local_parallel_limit() {
    let _node = up();
    // -j 1: only the executor's max_jobs (4) limits these procs. The jobs run in the
    // test's directory (srun's own) and stamp their intervals there.
    let mut script = declare(4);
    for i in 1..=12 {
        script.push_str(&format!(
            "proc(\"s{i}\", #{{ executor: \"hpc\", cmd: [\"sh\", \"job.sh\", \"s{i}\", \"1\"] }});\n"
        ));
    }
    script.push_str("run(\"s*\");\n");
    let out = Test::new().args(&["-j", "1"]).script(&script).run();
    out.ok().summary_is("prun: 12 succeeded");
    let ev = out.events();
    let most = ev.max_overlap();
    assert!(
        (2..=4).contains(&most),
        "{most} jobs ran at once (want 2 to 4)\n{}",
        ev.context()
    );
}

#[test]
#[cfg_attr(prun_no_slurm, ignore = "needs root and Slurm (slurm-wlm, munge)")]
fn resources_cwd_and_env_reach_the_job() {
    let _node = up();
    let test = Test::new().file("sub/.keep", "");
    let dir = test.dir().join("sub");
    let out = test
        .script(&format!(
            r#"{}
proc("job", #{{ executor: "hpc", cwd: "{}", env: #{{ GREETING: "hello 'world' $x" }},
               resources: #{{ cpus: 2, mem: "100M" }},
               shell: "pwd > where.txt; printf '%s' \"$GREETING\" > greeting.txt; echo $SLURM_CPUS_PER_TASK > res.txt; scontrol show job $SLURM_JOB_ID | grep -o 'MinMemoryNode=[^ ]*' >> res.txt" }});
run("job");
"#,
            declare(2),
            dir.display()
        ))
        .run();
    out.ok();
    assert_eq!(out.read("sub/where.txt").trim(), dir.display().to_string());
    assert_eq!(out.read("sub/greeting.txt"), "hello 'world' $x");
    assert_eq!(out.read("sub/res.txt"), "2\nMinMemoryNode=100M\n");
}

#[test]
#[cfg_attr(prun_no_slurm, ignore = "needs root and Slurm (slurm-wlm, munge)")]
fn arguments_cwd_and_env_arrive_intact() {
    let _node = up();
    // The job's command passes through `sh -c` twice (the wrapper, then the entering of
    // its directory): each word must reach the command as it was, never read by a shell.
    let test = Test::new();
    let sub = "odd dir $HOME 'q' `id` \\ *";
    std::fs::create_dir(test.dir().join(sub)).unwrap();
    let words = [
        "a b",
        "it's",
        "say \"hi\"",
        "$HOME",
        "`id`",
        "back\\slash",
        "",
        "*",
        "new\nline",
        "-n",
    ];
    let rhai = |w: &str| format!("{w:?}");
    let out = test
        .script(&format!(
            r#"{}
proc("odd", #{{ executor: "hpc", cwd: {}, env: #{{ ODD: {} }}, cmd: ["sh", "-c", "printf '[%s]' \"$@\" > ../args.txt; printf '%s' \"$ODD\" > ../env.txt", "sh", {}] }});
run("odd");
"#,
            declare(2),
            rhai(sub),
            rhai("v $HOME `id` 'q'\nl2"),
            words.map(rhai).join(", ")
        ))
        .run();
    out.ok();
    let want: String = words.iter().map(|w| format!("[{w}]")).collect();
    assert_eq!(out.read("args.txt"), want, "{}", out.describe());
    assert_eq!(
        out.read("env.txt"),
        "v $HOME `id` 'q'\nl2",
        "{}",
        out.describe()
    );
}

#[test]
#[cfg_attr(prun_no_slurm, ignore = "needs root and Slurm (slurm-wlm, munge)")]
fn zero_resources_ask_slurm_for_nothing() {
    // `mem: 0` is no request, as an absent `mem`: the job gets the partition's default,
    // not a 1M limit.
    let _node = up();
    let out = Test::new()
        .script(&format!(
            r#"{}
proc("job", #{{ executor: "hpc", resources: #{{ cpus: 0, mem: 0 }},
               shell: "scontrol show job $SLURM_JOB_ID | grep -o 'MinMemoryNode=[^ ]*' > res.txt" }});
run("job");
"#,
            declare(2)
        ))
        .run();
    out.ok();
    assert_eq!(
        out.read("res.txt"),
        "MinMemoryNode=0\n",
        "{}",
        out.describe()
    );
}

#[test]
#[cfg_attr(prun_no_slurm, ignore = "needs root and Slurm (slurm-wlm, munge)")]
fn a_timeout_cancels_the_job() {
    let _node = up();
    let secs = format!("5{}", std::process::id() % 10000);
    let name = own("slow_timeout");
    let out = Test::new()
        .script(&format!(
            r#"{}
proc("{name}", #{{ executor: "hpc", timeout: "10s", shell: "touch running; sleep {secs}" }});
run("{name}");
"#,
            declare(2)
        ))
        .run();
    out.code(1);
    let line = out.proc_line("FAILED", &name);
    assert!(line.contains("timed out"), "{line}\n{}", out.describe());
    // The job was running when the timeout ended it (it runs in prun's directory). The
    // timeout counts from the submission: on a loaded machine Slurm took more than 3 s
    // to start the job, which the timeout then cancelled while still queued.
    assert!(out.exists("running"), "{}", out.describe());
    // prun waits for the cancelled job to leave the queue.
    let left = queued_jobs_of(&name);
    assert!(left.is_empty(), "{left:?}");
    assert_none_left(&format!("sleep {secs}"), &out);
}

#[test]
#[cfg_attr(prun_no_slurm, ignore = "needs root and Slurm (slurm-wlm, munge)")]
fn ctrl_c_cancels_the_job() {
    let _node = up();
    let secs = format!("6{}", std::process::id() % 10000);
    let name = own("slow_interrupted");
    let out = Test::new()
        .signal_when("running", "INT")
        .script(&format!(
            r#"{}
proc("{name}", #{{ executor: "hpc", shell: "touch running; sleep {secs}" }});
run("{name}");
"#,
            declare(2)
        ))
        .run();
    assert_ne!(out.code, Some(0), "{}", out.describe());
    let ours = queued_jobs_of(&name);
    assert!(
        ours.is_empty(),
        "still queued: {ours:?}\n{}",
        out.describe()
    );
    assert_none_left(&format!("sleep {secs}"), &out);
}

#[test]
#[cfg_attr(prun_no_slurm, ignore = "needs root and Slurm (slurm-wlm, munge)")]
fn a_running_job_is_shown_with_its_id() {
    let _node = up();
    let out = Test::new()
        .args(&["-v"])
        .script(&format!(
            "{}proc(\"waits\", #{{ executor: \"hpc\", cmd: [\"sleep\", \"1.5\"] }});\nrun(\"waits\");\n",
            declare(2)
        ))
        .run();
    out.ok();
    let shown = out
        .stdout
        .lines()
        .find(|l| l.contains("PROGRESS") && l.contains("waits: on slurm job "));
    let done = out.proc_line("SUCCEEDED", "waits");
    // The job shown while it ran is the one recorded when it ended.
    let id = done.rsplit("slurm job ").next().unwrap();
    assert!(
        shown.is_some_and(|l| l.ends_with(&format!("slurm job {id}"))),
        "{}",
        out.describe()
    );
}

#[test]
#[cfg_attr(prun_no_slurm, ignore = "needs root and Slurm (slurm-wlm, munge)")]
fn the_policy_holds_for_commands_on_slurm() {
    let _node = up();
    let out = Test::new()
        .env("PRUN_QA_SECRET", "hush")
        .script(&format!(
            r#"{}
proc("allowed", #{{ executor: "hpc", cmd: ["printenv", "HOME"] }});
proc("refused", #{{ executor: "hpc", cmd: ["touch", "pwned"] }});
proc("string", #{{ executor: "hpc", shell: "touch pwned-by-shell" }});
proc("closure", #{{ executor: "hpc" }}, |ctx| {{ exec(["touch", "pwned-by-closure"]); }});
proc("secret", #{{ executor: "hpc" }}, |ctx| {{
    let r = exec(["printenv", "PRUN_QA_SECRET"], #{{ check: false }});
    write_file("secret.txt", `${{r.code}}:${{r.stdout}}`);
}});
run(["allowed", "refused", "string", "closure", "secret"]);
"#,
            declare(4)
        ))
        .args(&[
            "--allow",
            "printenv",
            "--no-shell",
            "--deny-env",
            "PRUN_QA_SECRET",
        ])
        .run();
    out.code(1);
    out.proc_state("SUCCEEDED", "allowed");
    out.proc_state("SUCCEEDED", "secret");
    for name in ["refused", "closure"] {
        let line = out.proc_line("FAILED", name);
        assert!(
            line.contains("refused by the policy") && line.contains("\"touch\""),
            "{line}\n{}",
            out.describe()
        );
    }
    let string = out.proc_line("FAILED", "string");
    assert!(
        string.contains("shell strings are off"),
        "{string}\n{}",
        out.describe()
    );
    for file in ["pwned", "pwned-by-shell", "pwned-by-closure"] {
        assert!(!out.exists(file), "{file}\n{}", out.describe());
    }
    // The job does not see a variable the policy hides (srun carries prun's environment).
    assert_eq!(out.read("secret.txt"), "1:", "{}", out.describe());
}

#[test]
fn a_missing_srun_is_named_with_the_command() {
    // Nothing is on PATH: the executor's client cannot start.
    let test = Test::new().file("empty/.keep", "");
    let path = test.dir().join("empty");
    let out = test
        .env("PATH", &path.display().to_string())
        .script(&format!(
            "{}proc(\"job\", #{{ executor: \"hpc\", cmd: [\"echo\", \"hi\"] }});\nrun(\"job\");\n",
            declare(2)
        ))
        .run();
    out.code(1);
    let line = out.proc_line("FAILED", "job");
    assert!(
        line.contains(
            "the slurm executor runs commands through \"srun\", which is not on PATH (command: `echo hi`)"
        ),
        "{line}\n{}",
        out.describe()
    );
}

#[test]
#[cfg_attr(prun_no_slurm, ignore = "needs root and Slurm (slurm-wlm, munge)")]
fn a_job_slurm_refuses_is_not_reported_as_the_commands_exit() {
    let _node = up();
    // srun exits 1 in both cases, but `true` never ran: no partition "nope" (no job is
    // made), and more memory than the node has (a job is made and refused).
    let out = Test::new()
        .script(
            r#"
set_options(#{ executors: #{ hpc: #{ kind: "slurm", partition: "nope" }, big: #{ kind: "slurm" } } });
proc("nowhere", #{ executor: "hpc", cmd: ["true"] });
proc("too_big", #{ executor: "big", resources: #{ mem: "1000G" } }, |ctx| { exec(["true"]); });
run(["nowhere", "too_big"]);
"#,
        )
        .run();
    out.code(1);
    let line = out.proc_line("FAILED", "nowhere");
    assert!(
        line.contains("srun did not submit the job (srun exit status 1)")
            && !line.contains("exited with code"),
        "{line}\n{}",
        out.describe()
    );
    assert!(
        line.contains(": srun: error: invalid partition specified: nope"),
        "{line}\n{}",
        out.describe()
    );
    let line = out.proc_line("FAILED", "too_big");
    assert!(
        line.contains(
            "was refused: FAILED (BadConstraints): allocation failure: Requested node configuration is not available"
        ),
        "{line}\n{}",
        out.describe()
    );
}

#[test]
#[cfg_attr(prun_no_slurm, ignore = "needs root and Slurm (slurm-wlm, munge)")]
fn a_job_that_can_never_start_fails_instead_of_waiting_for_good() {
    let _node = up();
    // More CPUs than any node of the partition has: Slurm keeps the job PENDING
    // (PartitionConfig) and srun waits for ever; the run hung until killed.
    let name = own("wide");
    let out = Test::new()
        .timeout(std::time::Duration::from_secs(40))
        .script(&format!(
            r#"{}
proc("{name}", #{{ executor: "hpc", resources: #{{ cpus: 1000 }}, cmd: ["true"] }});
run("{name}");
"#,
            declare(2)
        ))
        .run();
    out.code(1);
    let line = out.proc_line("FAILED", &name);
    assert!(
        line.contains("can never start: PENDING (PartitionConfig), so it was cancelled")
            && line.contains("(command: `true`)"),
        "{line}\n{}",
        out.describe()
    );
    let left = queued_jobs_of(&name);
    assert!(left.is_empty(), "{left:?}");
}

#[test]
#[cfg_attr(prun_no_slurm, ignore = "needs root and Slurm (slurm-wlm, munge)")]
fn a_timeout_near_the_largest_duration_is_no_internal_error() {
    let _node = up();
    // The job's time limit is the timeout plus the kill grace: their sum overflowed.
    let out = Test::new()
        .script(&format!(
            r#"{}
proc("long", #{{ executor: "hpc", timeout: "18446744073709551615s", cmd: ["true"] }});
run("long");
"#,
            declare(2)
        ))
        .run();
    out.ok().summary_is("prun: 1 succeeded");
}

#[test]
#[cfg_attr(prun_no_slurm, ignore = "needs root and Slurm (slurm-wlm, munge)")]
fn a_job_name_in_the_executors_args_does_not_hide_prun_s_jobs() {
    let _node = up();
    // With `--job-name` in `args`, prun could not find its job by name: a command that
    // exited 3 was reported as "srun did not submit the job".
    let out = Test::new()
        .script(
            r#"
set_options(#{ executors: #{ hpc: #{ kind: "slurm", args: ["--job-name=mine"] } } });
proc("three", #{ executor: "hpc", cmd: ["sh", "-c", "exit 3"] });
run("three");
"#,
        )
        .run();
    out.code(1);
    let line = out.proc_line("FAILED", "three");
    assert!(
        line.contains("exited with code 3") && line.contains(") on slurm job "),
        "{line}\n{}",
        out.describe()
    );
}

#[test]
#[cfg_attr(prun_no_slurm, ignore = "needs root and Slurm (slurm-wlm, munge)")]
fn a_job_cancelled_from_outside_fails_naming_the_cancel_not_an_exit_code() {
    let _node = up();
    // Cancelled by someone else (here the job itself): srun exits 143, which was
    // reported as the command's exit code, or 0, and the proc SUCCEEDED; so does it
    // after a node failure. The job's end state is what tells, or slurmstepd's line in
    // its stderr while the job is still COMPLETING (which took past 30 s on a loaded
    // machine: see the next test).
    let out = Test::new()
        .script(&format!(
            r#"{}
proc("cancelled", #{{ executor: "hpc", shell: "scancel $SLURM_JOB_ID; sleep 30" }});
run("cancelled");
"#,
            declare(2)
        ))
        .run();
    out.code(1);
    let line = out.proc_line("FAILED", "cancelled");
    assert!(
        line.contains("ended as CANCELLED, not by its command (srun exit status ")
            && !line.contains("exited with code"),
        "{line}\n{}",
        out.describe()
    );
}

#[test]
#[cfg_attr(prun_no_slurm, ignore = "needs root and Slurm (slurm-wlm, munge)")]
fn a_cancelled_job_kept_completing_by_a_stray_process_fails_naming_the_cancel() {
    let _node = up();
    // A process of the job that left its group (out of the wrapper's reach), shrugs off
    // the cancel's SIGTERM and outlives its parent is no longer found as the job's (Slurm finds them as slurmstepd's descendants),
    // escapes the SIGKILL, and keeps the job's output open: srun exits 0 at once, but the
    // job stays COMPLETING, which hides that it was cancelled, until that process ends
    // (on a loaded machine, the same happened for no visible reason). prun waited 30 s
    // for it to leave COMPLETING, then took srun's status: the proc SUCCEEDED.
    let secs = format!("8{}", std::process::id() % 10000);
    let name = own("kept");
    let out = Test::new()
        .script(&format!(
            r#"{}
proc("{name}", #{{ executor: "hpc", shell: "setsid sh -c \"trap '' TERM; exec sleep {secs}\" & scancel $SLURM_JOB_ID; sleep 30" }});
run("{name}");
"#,
            declare(2)
        ))
        .run();
    let stray = processes_with(&format!("sleep {secs}"));
    for p in &stray {
        let pid = p.split(':').next().unwrap();
        let _ = std::process::Command::new("kill")
            .args(["-KILL", pid])
            .status();
    }
    // Out of the queue before the next test's job (see `alone`).
    unqueued(&name);
    assert!(
        !stray.is_empty(),
        "no stray process kept the job COMPLETING: the test proves nothing\n{}",
        out.describe()
    );
    out.code(1);
    let line = out.proc_line("FAILED", &name);
    assert!(
        line.contains("ended as CANCELLED, not by its command (srun exit status "),
        "{line}\n{}",
        out.describe()
    );
}

#[test]
#[cfg_attr(prun_no_slurm, ignore = "needs root and Slurm (slurm-wlm, munge)")]
fn a_cwd_the_job_cannot_enter_fails_the_command_instead_of_running_it_in_tmp() {
    let _node = alone();
    // slurmstepd runs a job whose directory it cannot enter in /tmp, saying so on stderr
    // only. The job runs as `nobody` here, for whom the directory is closed.
    let test = Test::new();
    let dir = test.dir().join("closed");
    std::fs::create_dir(&dir).unwrap();
    std::fs::set_permissions(&dir, std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
    let out = test
        .script(&format!(
            r#"
set_options(#{{ executors: #{{ hpc: #{{ kind: "slurm", args: ["--uid=nobody"] }} }} }});
proc("job", #{{ executor: "hpc", cwd: "{}", shell: "echo ran in $(pwd)" }});
run("job");
"#,
            dir.display()
        ))
        .run();
    out.code(1).out_lacks("ran in /");
    let line = out.proc_line("FAILED", "job");
    assert!(
        line.contains(&format!("working directory {} ", dir.display()))
            && line.contains(" on slurm job "),
        "{line}\n{}",
        out.describe()
    );
}

#[test]
#[cfg_attr(prun_no_slurm, ignore = "needs root and Slurm (slurm-wlm, munge)")]
fn a_chdir_in_the_executors_args_is_the_jobs_directory() {
    let _node = up();
    let test = Test::new();
    let dir = test.dir().join("elsewhere");
    std::fs::create_dir(&dir).unwrap();
    let out = test
        .script(&format!(
            r#"
set_options(#{{ executors: #{{ hpc: #{{ kind: "slurm", args: ["--chdir={}"] }} }} }});
proc("job", #{{ executor: "hpc", shell: "pwd > where.txt" }});
run("job");
"#,
            dir.display()
        ))
        .run();
    out.ok();
    assert_eq!(
        out.read("elsewhere/where.txt").trim(),
        dir.display().to_string()
    );
}

#[test]
#[cfg_attr(prun_no_slurm, ignore = "needs root and Slurm (slurm-wlm, munge)")]
fn a_job_ends_when_prun_is_killed() {
    let _node = up();
    // prun killed with SIGKILL while its job runs: the job ends with it (its `srun` reads
    // a pipe prun holds, and the job ends when it closes), rather than running on until
    // its time limit (here none) or until the next run ends the `srun` left behind.
    let secs = format!("7{}", std::process::id() % 10000);
    let name = own("orphaned");
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("main.rhai"),
        format!(
            "{}proc(\"{name}\", #{{ executor: \"hpc\", shell: \"touch running; sleep {secs}\" }});\nrun(\"{name}\");\n",
            declare(2)
        ),
    )
    .unwrap();
    crate::support::kill_prun_when(dir.path(), "running");
    let queued = unqueued(&name);
    let sleeps = gone(&format!("sleep {secs}"));
    let clients = gone(&format!("--job-name=prun.{name}."));
    assert!(
        queued.is_empty() && sleeps.is_empty() && clients.is_empty(),
        "after prun was killed: queued {queued:?}, running {sleeps:?}, clients {clients:?}"
    );
}

#[test]
#[cfg_attr(prun_no_slurm, ignore = "needs root and Slurm (slurm-wlm, munge)")]
fn a_job_cancelled_from_outside_leaves_no_command_that_ignores_sigterm_on_the_node() {
    let _node = up();
    // The cancel's SIGTERM killed the wrapper's shell; the command, which ignores it,
    // was reparented to init, no longer found as the job's, escaped the SIGKILL after
    // `KillWait`, and ran on, the job stuck COMPLETING.
    let secs = format!("7{}", std::process::id() % 10000);
    let name = own("stubborn");
    let out = Test::new()
        .script(&format!(
            r#"set_options(#{{ kill_grace: "1s" }});
{}
proc("{name}", #{{ executor: "hpc", shell: "trap '' TERM; scancel $SLURM_JOB_ID; sleep {secs}" }});
run("{name}");
"#,
            declare(2)
        ))
        .run();
    let left = gone(&format!("sleep {secs}"));
    for p in &left {
        let pid = p.split(':').next().unwrap();
        let _ = std::process::Command::new("kill")
            .args(["-KILL", pid])
            .status();
    }
    unqueued(&name);
    out.code(1);
    assert!(
        left.is_empty(),
        "left on the node: {left:?}\n{}",
        out.describe()
    );
}

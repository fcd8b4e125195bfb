//! Local resources: the sum of running procs' `resources` stays within the budget, a big
//! proc is not starved by small ones, and a proc that could never fit is refused before
//! anything runs. Checked from the intervals the jobs recorded.

use crate::support::{Events, Test};

/// The largest sum of `weight` over the jobs running at one instant.
fn peak(ev: &Events, weights: &[(&str, u64)]) -> u64 {
    let mut points: Vec<(u128, i64)> = Vec::new();
    for &(name, w) in weights {
        let s = ev.span(name);
        points.push((s.start, w as i64));
        points.push((s.end, -(w as i64)));
    }
    // At equal times, ends come first.
    points.sort();
    let (mut cur, mut max) = (0i64, 0i64);
    for (_, d) in points {
        cur += d;
        max = max.max(cur);
    }
    max as u64
}

#[test]
fn running_procs_never_use_more_memory_than_the_budget() {
    // 1G of memory: a and b (400M each) fit together and meet; c, d, e never push the
    // sum of what runs past 1024M.
    let out = Test::new()
        .args(&["-j", "8"])
        .script(
            r#"
set_options(#{ resources: #{ mem: "1G" } });
proc("a", #{ resources: #{ mem: "400M" }, SYNC(all, a, b) });
proc("b", #{ resources: #{ mem: 400 }, SYNC(all, b, a) });
proc("c", #{ resources: #{ mem: "700M" }, JOB(c, 0.2) });
proc("d", #{ resources: #{ mem: "300M" }, JOB(d, 0.2) });
proc("e", #{ resources: #{ mem: "600M", cpus: 1 }, JOB(e, 0.2) });
proc("f", #{ resources: #{ mem: "1G" }, JOB(f, 0.1) });
run(["a", "b", "c", "d", "e", "f"]);
"#,
        )
        .run();
    out.ok().summary_is("prun: 6 succeeded");
    let ev = out.events();
    let weights = [
        ("a", 400),
        ("b", 400),
        ("c", 700),
        ("d", 300),
        ("e", 600),
        ("f", 1024),
    ];
    let most = peak(&ev, &weights);
    assert!(most <= 1024, "{most}M ran at once\n{}", ev.context());
}

#[test]
fn user_named_resources_are_counted_like_memory() {
    // Two database connections: never more than two of the four procs at once.
    let out = Test::new()
        .args(&["-j", "8"])
        .script(
            r#"
set_options(#{ resources: #{ db_conn: 2 } });
for p in ["p1", "p2", "p3", "p4"] {
    proc(p, #{ resources: #{ db_conn: 1 }, cmd: ["sh", "job.sh", p, "0.2"] });
}
run("p*");
"#,
        )
        .run();
    out.ok().summary_is("prun: 4 succeeded");
    let ev = out.events();
    let weights = [("p1", 1), ("p2", 1), ("p3", 1), ("p4", 1)];
    assert!(peak(&ev, &weights) <= 2, "{}", ev.context());
}

#[test]
fn a_big_proc_is_not_starved_by_a_stream_of_small_ones() {
    // s1 and s2 run; big needs all the memory and waits for them. The later small procs
    // would fit beside s1 or s2, but starting them would keep big waiting: they wait for it.
    let mut script = String::from(
        r#"set_options(#{ resources: #{ mem: "1G" } });
proc("s1", #{ resources: #{ mem: "300M" }, SYNC(all, s1, s2) });
proc("s2", #{ resources: #{ mem: "300M" }, SYNC(all, s2, s1) });
proc("big", #{ resources: #{ mem: "1G" }, JOB(big, 0.1) });
"#,
    );
    for i in 3..=10 {
        script.push_str(&format!(
            "proc(\"s{i}\", #{{ resources: #{{ mem: \"300M\" }}, JOB(s{i}, 0.1) }});\n"
        ));
    }
    script.push_str("run(\"*\");\n");
    let out = Test::new().args(&["-j", "8"]).script(&script).run();
    out.ok().summary_is("prun: 11 succeeded");
    let ev = out.events();
    ev.before("s1", "big");
    ev.before("s2", "big");
    for i in 3..=10 {
        ev.before("big", &format!("s{i}"));
    }
}

#[test]
fn a_proc_that_could_never_fit_is_refused_before_anything_runs() {
    let out = Test::new()
        .script(
            r#"
set_options(#{ resources: #{ mem: "1G" } });
proc("first", #{ JOB(first) });
proc("huge", #{ deps: ["first"], resources: #{ mem: "2G" }, JOB(huge) });
run("huge");
"#,
        )
        .run();
    out.code(2)
        .err_has("proc \"huge\" needs mem 2G but the budget has 1G")
        .err_has("main.rhai:4:1");
    assert!(!out.events().ran("first"));
}

#[test]
fn a_resource_missing_from_the_budget_is_named() {
    let out = Test::new()
        .script(
            r#"
proc("train", #{ resources: #{ gpu: 1 }, JOB(train) });
run("train");
"#,
        )
        .run();
    out.code(2)
        .err_has("proc \"train\" needs gpu 1 but the budget has no `gpu`")
        .err_has("resources: #{ gpu: N }");
    assert!(!out.events().ran("train"));
}

#[test]
fn a_request_beyond_the_hosts_memory_names_it_readably() {
    // The default budget is the host's RAM, which is no round number: it is shown with
    // one decimal of its largest unit (`23.5G`), not as a count of KiB.
    let out = Test::new()
        .script(
            r#"
proc("huge", #{ resources: #{ mem: "1000T" }, JOB(huge) });
run("huge");
"#,
        )
        .run();
    out.code(2)
        .err_has("proc \"huge\" needs mem 1000T but the budget has ");
    let have = out
        .stderr
        .split("the budget has ")
        .nth(1)
        .and_then(|rest| rest.split(':').next())
        .unwrap_or_default();
    let (number, unit) = have.split_at(have.len().saturating_sub(1));
    assert!(
        ["M", "G", "T"].contains(&unit) && number.len() <= 6 && number.parse::<f64>().is_ok(),
        "the host's memory shown as {have:?}\n{}",
        out.describe()
    );
    assert!(!out.events().ran("huge"));
}

#[test]
fn lowering_the_budget_below_a_declared_proc_is_refused() {
    let out = Test::new()
        .script(
            r#"
proto("enc::[f]", #{ resources: #{ cpus: 2 }, cmd: ["sh", "job.sh", "[f]"] });
set_options(#{ resources: #{ cpus: 1 } });
"#,
        )
        .run();
    out.code(2)
        .err_has("proto \"enc::[f]\" needs cpus 2 but the budget has 1");
}

#[test]
fn a_bad_amount_is_named() {
    let out = Test::new()
        .script(r#"proc("p", #{ resources: #{ mem: "lots" }, cmd: ["true"] });"#)
        .run();
    out.code(2)
        .err_has("proc \"p\"")
        .err_has("`mem` must be a whole number or a size like \"512M\"");
}

#[test]
fn a_cpu_count_with_a_size_suffix_is_refused_not_read_as_thousands() {
    let out = Test::new()
        .script(r#"proc("p", #{ resources: #{ cpus: "2K" }, cmd: ["true"] });"#)
        .run();
    out.code(2)
        .err_has("1:1")
        .err_has("proc \"p\"")
        .err_has("`cpus` is a count: a whole number like 2, not \"2K\"");
    let out = Test::new()
        .script(r#"set_options(#{ resources: #{ cpus: "1k" } }); proc("p", #{ cmd: ["true"] });"#)
        .run();
    out.code(2)
        .err_has("`resources`")
        .err_has("`cpus` is a count: a whole number like 2, not \"1k\"");
}

/// Procs on an executor and with resources (the executor is never contacted: nothing runs).
const PLACED: &str = r#"
set_options(#{ resources: #{ mem: "4G", gpu: 1 },
               executors: #{ farm: #{ kind: "ssh", hosts: ["web1", "web2:4"] },
                             hpc: #{ kind: "slurm", max_jobs: 4, partition: "batch" } } });
proc("train", #{ resources: #{ gpu: 1, mem: "2G" }, shell: "touch trained" });
proc("fetch", #{ executor: "farm", shell: "touch fetched" });
proto("enc::[f]", #{ executor: "hpc", resources: #{ cpus: 4 }, cmd: ["touch", "[f]"] });
proc("plain", #{ shell: "touch plain" });
"#;

#[test]
fn list_shows_each_procs_executor_and_resources() {
    let out = Test::new().script(PLACED).before(&["list"]).run();
    out.ok();
    let line = |name: &str| {
        let l = out
            .stdout
            .lines()
            .find(|l| l.trim_start().starts_with(name));
        l.map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
            .unwrap_or_else(|| panic!("no line for {name}\n{}", out.describe()))
    };
    assert_eq!(line("train"), "train [needs gpu=1 mem=2G]");
    assert_eq!(line("fetch"), "fetch [on farm (ssh web1, web2:4)]");
    assert_eq!(
        line("enc::"),
        "enc::[f] [on hpc (slurm max_jobs 4 partition batch); needs cpus=4]"
    );
    assert_eq!(line("plain"), "plain");
}

#[test]
fn dry_run_shows_each_procs_executor_and_resources() {
    let out = Test::new()
        .script(&format!(
            "{PLACED}\nrun([\"train\", \"fetch\", \"enc::x\"]);"
        ))
        .args(&["--dry-run"])
        .run();
    out.ok()
        .out_has("train: touch trained  [needs gpu=1 mem=2G]")
        .out_has("fetch: touch fetched  [on farm (ssh web1, web2:4)]")
        .out_has("enc::x: touch x  [on hpc (slurm max_jobs 4 partition batch); needs cpus=4]");
    assert!(!out.exists("trained") && !out.exists("fetched") && !out.exists("x"));
}

#[test]
fn an_unknown_executor_is_named() {
    let out = Test::new()
        .script(r#"proc("p", #{ executor: "hpc", cmd: ["true"] });"#)
        .run();
    out.code(2)
        .err_has("proc \"p\": unknown executor \"hpc\"")
        .err_has("set_options(#{ executors: #{ hpc: #{ kind: ... } } })");
}

#[test]
fn a_waiting_proc_keeps_its_resources_and_a_wait_that_could_never_end_fails() {
    // a holds the whole budget while it waits for b, which needs part of it: the wait
    // fails with the reason instead of hanging, and b runs once a has let go.
    let out = Test::new()
        .script(
            r#"
set_options(#{ resources: #{ mem: "1G" } });
proc("b", #{ resources: #{ mem: "512M" }, JOB(b) });
proc("a", #{ resources: #{ mem: "1G" } }, |ctx| { ctx.wait("b"); "done" });
run("a");
"#,
        )
        .timeout(std::time::Duration::from_secs(20))
        .run();
    out.code(1).proc_state("SUCCEEDED", "b");
    let line = out.proc_line("FAILED", "a");
    assert!(
        line.contains(r#"a -> b -> a, where "b" needs resource "mem" held by "a""#),
        "{line}\n{}",
        out.describe()
    );
}

#[test]
fn a_reservation_does_not_hold_back_what_a_waiting_proc_waits_for() {
    // w runs and holds 500M; big needs all of 1G and reserves it. w then waits for s
    // (300M): s fits beside w, and w can give its memory back only once s has run, so
    // the reservation must not hold s back.
    let out = Test::new()
        .script(
            r#"
set_options(#{ resources: #{ mem: "1G" } });
proc("w", #{ resources: #{ mem: "500M" } }, |ctx| { ctx.wait("s"); "done" });
proc("big", #{ resources: #{ mem: "1G" }, JOB(big) });
proc("s", #{ resources: #{ mem: "300M" }, JOB(s) });
run(["w", "big"]);
"#,
        )
        .timeout(std::time::Duration::from_secs(20))
        .run();
    out.ok().summary_is("prun: 3 succeeded");
    out.events().before("s", "big");
}

#[test]
fn the_json_report_has_each_procs_executor_and_resources() {
    let out = Test::new()
        .script(&format!(
            "{PLACED}\nrun([\"train\", \"fetch\", \"enc::x\", \"plain\"]);"
        ))
        .args(&["--dry-run", "--json", "report.json"])
        .run();
    out.ok();
    let report: serde_json::Value = serde_json::from_str(&out.read("report.json")).unwrap();
    let proc = |name: &str| {
        report["procs"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == name)
            .cloned()
            .unwrap_or_else(|| panic!("no {name} in {report}"))
    };
    let train = proc("train");
    assert_eq!(train["executor"], serde_json::Value::Null);
    assert_eq!(
        train["resources"],
        serde_json::json!({ "gpu": 1, "mem": 2u64 << 30 })
    );
    assert_eq!(proc("fetch")["executor"], "farm");
    assert_eq!(proc("enc::x")["executor"], "hpc");
    assert_eq!(
        proc("enc::x")["resources"],
        serde_json::json!({ "cpus": 4 })
    );
    assert_eq!(proc("plain")["resources"], serde_json::json!({}));
}

#[test]
fn amounts_near_the_largest_integer_never_run_two_procs_past_the_budget() {
    // Two procs that each need the whole (huge) budget: their sum overflowed 64 bits
    // (a panic, "internal error", in a debug build; a wrapped sum that let both run in
    // a release build). They run one after the other.
    let out = Test::new()
        .args(&["-j", "4"])
        .script(
            r#"
set_options(#{ resources: #{ gpu: 9223372036854775807 } });
proc("a", #{ resources: #{ gpu: 9223372036854775807 }, JOB(a, 0.2) });
proc("b", #{ resources: #{ gpu: 9223372036854775807 }, JOB(b, 0.2) });
proc("c", #{ resources: #{ gpu: 9223372036854775807 }, JOB(c, 0.2) });
run(["a", "b", "c"]);
"#,
        )
        .run();
    out.ok().summary_is("prun: 3 succeeded");
    let ev = out.events();
    ev.disjoint("a", "b");
    ev.disjoint("b", "c");
    ev.disjoint("a", "c");
}

#[test]
fn a_memory_amount_past_64_bits_of_bytes_is_an_error_not_zero() {
    // 2^44 MiB is 2^64 bytes: shifted into bytes, it wrapped to 0 and needed nothing.
    Test::new()
        .script(r#"proc("a", #{ resources: #{ mem: 17592186044416 }, cmd: ["true"] }); run("a");"#)
        .run()
        .code(2)
        .err_has("`mem` 17592186044416 is too large: the largest is 16777215T");
}

#[test]
fn a_reservation_waiting_for_a_lock_does_not_hold_back_what_the_lock_holder_waits_for() {
    // big needs the whole budget while hold runs: it is the reservation. q then takes the
    // lock big needs too and waits for s, which fits in what is free. The reservation
    // held s back while big waited for the lock that q holds until s has run: q's wait
    // failed ("can never finish") though every proc could run.
    let out = Test::new()
        .script(
            r#"
set_options(#{ resources: #{ gpu: 2 } });
proc("hold", #{ resources: #{ gpu: 1 }, shell: "until [ -e q.ready ]; do sleep 0.05; done" });
proc("big", #{ resources: #{ gpu: 2 }, locks: ["L"], JOB(big) });
proc("q", #{ locks: ["L"] }, |ctx| { write_file("q.ready", ""); ctx.wait("s"); "q" });
proc("s", #{ resources: #{ gpu: 1 }, JOB(s) });
run(["hold", "big", "q"]);
"#,
        )
        .timeout(std::time::Duration::from_secs(20))
        .run();
    out.ok().summary_is("prun: 4 succeeded");
    out.events().before("s", "big");
}

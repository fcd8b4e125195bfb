//! Whether a run whose end is not recorded is still going: its prun may be running it,
//! or may have died without recording its end (`kill -9`, the OOM killer, a power loss),
//! which leaves the run unfinished in the history for ever.
//!
//! Each run records its owner (the schema's version 9): the prun process's pid and
//! start time (field 22 of `/proc/<pid>/stat`, so that a pid given to another process
//! since is not taken for it), its PID namespace, the boot it ran in
//! (`/proc/sys/kernel/random/boot_id`), its time namespace (a boot-time offset shifts the
//! start times its processes read) and the host's name. A reader that shares the boot,
//! the PID namespace and the time namespace looks at the process: the same pid with the same start
//! time is the run's prun, still going (unless it exited and waits to be reaped); no such
//! process, or another one with that pid, is a prun that died. A reader on the same host after a restart (another boot, a boot time
//! later than the run's start) knows the run died with the machine. Anywhere else (another
//! machine sharing the DB over NFS, a container with its own PID namespace, a run recorded
//! before owners were) it cannot be told: the run is "unknown", never "died" while its
//! prun may be running it.
//!
//! A reader only judges; a writer of the DB (every run, as it begins) also records what
//! it can prove ([`dead_runs`], [`record_dead`]): a run of the same boot and PID namespace whose prun is
//! gone gets the outcome `died`, which every reader, on any machine, then shows without
//! judging again.

use std::sync::OnceLock;

use serde::{Deserialize, Serialize};

/// The prun process that runs a run, as the `owner` column records it (JSON).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct Owner {
    /// The version of the prun that recorded the run (see `schema::written_by`).
    #[serde(default)]
    prun: String,
    /// The host's name (`/proc/sys/kernel/hostname`).
    host: String,
    /// The boot (`/proc/sys/kernel/random/boot_id`).
    boot: String,
    /// The PID namespace (`/proc/self/ns/pid`'s link, `pid:[4026531836]`).
    pidns: String,
    /// The time namespace (`/proc/self/ns/time`'s link; empty on a kernel without them),
    /// which `start` is counted in: a boot-time offset (`unshare --time --boottime`)
    /// shifts every start time its processes read.
    #[serde(default)]
    timens: String,
    pid: i32,
    /// Field 22 of `/proc/<pid>/stat`: clock ticks since the boot.
    start: u64,
}

impl Owner {
    /// This process, read once; `None` where `/proc` does not tell it.
    pub(super) fn this_process() -> Option<&'static Owner> {
        static THIS: OnceLock<Option<Owner>> = OnceLock::new();
        THIS.get_or_init(|| {
            let pid = i32::try_from(std::process::id()).ok()?;
            Some(Owner {
                prun: env!("CARGO_PKG_VERSION").to_string(),
                host: first_line("/proc/sys/kernel/hostname")?,
                boot: first_line("/proc/sys/kernel/random/boot_id")?,
                pidns: std::fs::read_link("/proc/self/ns/pid")
                    .ok()?
                    .to_string_lossy()
                    .into_owned(),
                timens: std::fs::read_link("/proc/self/ns/time")
                    .map(|l| l.to_string_lossy().into_owned())
                    .unwrap_or_default(),
                pid,
                start: crate::procfs::start_time(pid)?,
            })
        })
        .as_ref()
    }

    /// As the `owner` column records it.
    pub(super) fn json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Whether this is the process `pid` of this boot and PID namespace (a pid names a
    /// process only there), started at `start` when that is given.
    pub(super) fn is_process(&self, pid: i32, start: Option<u64>) -> bool {
        Owner::this_process().is_some_and(|me| {
            self.boot == me.boot
                && self.pidns == me.pidns
                && self.pid == pid
                && start.is_none_or(|s| s == self.start)
        })
    }
}

/// The first line of a small file, `None` when it cannot be read.
fn first_line(path: &str) -> Option<String> {
    let text = std::fs::read_to_string(path).ok()?;
    Some(text.lines().next().unwrap_or("").to_string())
}

/// What is known of a run whose end is not recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Liveness {
    /// Its prun, with this pid, is still running it.
    Running { pid: i32 },
    /// Its prun (this pid) died before it recorded the end: killed, or, with `restarted`,
    /// the machine restarted since.
    Died { pid: i32, restarted: bool },
    /// It cannot be told from here, for the reason given.
    Unknown(String),
}

impl Liveness {
    /// What `prun history` and `prun report` show as the run's outcome.
    pub(crate) fn label(&self) -> &'static str {
        match self {
            Liveness::Running { .. } => "running",
            Liveness::Died { .. } => "died",
            Liveness::Unknown(_) => "unknown",
        }
    }

    /// What is known, after its [`Liveness::label`]: what happened, and what that means
    /// for the run's exit status and its procs.
    pub(crate) fn explain(&self) -> String {
        const LOST: &str = "no exit status; the procs it was running are recorded (DIED) \
                            by the script's next run";
        match self {
            Liveness::Running { pid } => format!("its prun (pid {pid}) is still running it"),
            Liveness::Died {
                pid,
                restarted: false,
            } => format!(
                "its prun (pid {pid}) was killed before it recorded the run's end \
                 (kill -9, the OOM killer): {LOST}"
            ),
            Liveness::Died {
                pid,
                restarted: true,
            } => format!("the machine restarted while its prun (pid {pid}) ran it: {LOST}"),
            Liveness::Unknown(why) => format!(
                "its end is not recorded, and whether its prun still runs it cannot be \
                 told from here: {why}"
            ),
        }
    }

    /// The line `prun history` and `prun report` give a run without a recorded end.
    pub(crate) fn line(&self, run: i64) -> String {
        format!("run {run} {}: {}", self.label(), self.explain())
    }
}

/// The outcome recorded for a run whose prun was found dead by a later writer of the DB
/// (see [`record_dead`]): its end time, duration and counts stay unknown (NULL).
pub(super) const DIED: &str = "died";

/// The runs without a recorded end whose prun this process proves gone: the same host,
/// boot, PID namespace and time namespace, and no process with its pid and start time (or
/// only a zombie of it). A run judged dead only because the machine restarted is left to
/// the readers: a host's name does not prove it is this machine, and the run may be going
/// on another one of that name sharing the DB. Read when the writer opens the DB, while
/// the run gets ready (see `writer::warm`): a run that dies later is found by a later
/// writer, and a prun proved gone never records an end after.
pub(super) fn dead_runs(conn: &rusqlite::Connection) -> rusqlite::Result<Vec<i64>> {
    let unended = unended(conn)?;
    let Some(me) = Owner::this_process() else {
        return Ok(Vec::new());
    };
    let dead = unended.into_iter().filter(|run| {
        let here = run
            .owner
            .as_deref()
            .and_then(|o| serde_json::from_str::<Owner>(o).ok())
            .is_some_and(|o| o.host == me.host);
        here && matches!(
            judge(run.owner.as_deref(), &run.started),
            Liveness::Died {
                restarted: false,
                ..
            }
        )
    });
    Ok(dead.map(|run| run.id).collect())
}

/// The runs without a recorded end, of every script: [`dead_runs`] as the writer opens
/// the DB and [`going_runs`] as a run prunes read them with this one statement, prepared
/// once per connection (see `writer::warm`). A scan of the index of such runs (the
/// schema's version 11), which holds few: the runs going and those whose prun died.
pub(super) const UNENDED: &str =
    "SELECT id, owner, started, script_key FROM runs WHERE outcome IS NULL";

/// A run without a recorded end, as [`UNENDED`] reads it.
struct Unended {
    id: i64,
    owner: Option<String>,
    started: String,
    script_key: String,
}

/// The runs without a recorded end (see [`UNENDED`]).
fn unended(conn: &rusqlite::Connection) -> rusqlite::Result<Vec<Unended>> {
    conn.prepare_cached(UNENDED)?
        .query_map([], |r| {
            Ok(Unended {
                id: r.get(0)?,
                owner: super::lenient::opt_text(r, 1)?,
                started: super::lenient::text(r, 2)?,
                script_key: super::lenient::text(r, 3)?,
            })
        })?
        .collect()
}

/// The runs of the script whose key is `key` (and of an unknown script, see
/// `writer::pruned_runs`) without a recorded end whose prun is running them: pruning
/// keeps them. One whose prun died or cannot be told is not kept for that.
pub(super) fn going_runs(tx: &rusqlite::Transaction, key: &str) -> rusqlite::Result<Vec<i64>> {
    Ok(unended(tx)?
        .into_iter()
        .filter(|run| run.script_key.is_empty() || run.script_key == key)
        .filter(|run| {
            matches!(
                judge(run.owner.as_deref(), &run.started),
                Liveness::Running { .. }
            )
        })
        .map(|run| run.id)
        .collect())
}

/// Records as [`DIED`] the runs [`dead_runs`] found, unless one recorded its end since
/// (which its prun did before it died). No statement when there are none: the common case
/// of every run's first write.
pub(super) fn record_dead(tx: &rusqlite::Transaction, dead: &[i64]) -> rusqlite::Result<()> {
    for id in dead {
        tx.prepare_cached("UPDATE runs SET outcome = ?2 WHERE id = ?1 AND outcome IS NULL")?
            .execute(rusqlite::params![id, DIED])?;
    }
    Ok(())
}

/// The pid of a run's prun, from its `owner` column.
fn pid_of(owner: Option<&str>) -> Option<i32> {
    Some(serde_json::from_str::<Owner>(owner?).ok()?.pid)
}

/// What is known of a run that recorded `outcome`: for [`DIED`], that its prun died (a
/// later writer proved it gone, see [`record_dead`]); `None` for a run that ended (or
/// whose owner cannot be read: its outcome alone is shown).
pub(super) fn recorded(outcome: &str, owner: Option<&str>) -> Option<Liveness> {
    let pid = pid_of(owner).filter(|_| outcome == DIED)?;
    Some(Liveness::Died {
        pid,
        restarted: false,
    })
}

/// What `prun history` and `prun report` show as a run's outcome: the one it recorded,
/// else what is known of it (`running`, `died`, `unknown`).
pub(crate) fn outcome_label<'a>(outcome: Option<&'a str>, alive: Option<&Liveness>) -> &'a str {
    match (outcome, alive) {
        (Some(o), _) => o,
        (None, Some(a)) => a.label(),
        (None, None) => "unfinished",
    }
}

/// What is known of a run that started at `started` (RFC 3339) and did not record its end,
/// from its `owner` column.
pub(super) fn judge(owner: Option<&str>, started: &str) -> Liveness {
    let Some(owner) = owner.and_then(|o| serde_json::from_str::<Owner>(o).ok()) else {
        return Liveness::Unknown(
            "it was recorded by an older prun, which did not record its process".into(),
        );
    };
    let Some(me) = Owner::this_process() else {
        return Liveness::Unknown("this machine's /proc does not tell its processes".into());
    };
    let pid = owner.pid;
    if owner.boot == me.boot {
        if owner.pidns != me.pidns {
            return Liveness::Unknown(format!(
                "its prun (pid {pid}) ran in another PID namespace (a container)"
            ));
        }
        if owner.timens != me.timens {
            return Liveness::Unknown(format!(
                "its prun (pid {pid}) ran in another time namespace, whose start times \
                 are not this one's"
            ));
        }
        return match crate::procfs::start_time(pid) {
            Some(start) if start == owner.start && !crate::procfs::is_zombie(pid) => {
                Liveness::Running { pid }
            }
            Some(_) => Liveness::Died {
                pid,
                restarted: false,
            },
            None if exists(pid) => Liveness::Unknown(format!(
                "a process with its prun's pid ({pid}) runs, and /proc does not show it"
            )),
            None => Liveness::Died {
                pid,
                restarted: false,
            },
        };
    }
    if owner.host == me.host && booted_after(started) {
        return Liveness::Died {
            pid,
            restarted: true,
        };
    }
    Liveness::Unknown(format!(
        "its prun (pid {pid}) ran on {}, in another boot",
        if owner.host == me.host {
            "a host of this name".to_string()
        } else {
            format!("host {}", owner.host)
        }
    ))
}

/// Whether a process with pid `pid` exists, though `/proc` may hide it (`hidepid`).
fn exists(pid: i32) -> bool {
    use nix::errno::Errno;
    !matches!(
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None),
        Err(Errno::ESRCH)
    )
}

/// Whether this machine booted after the time `started` (RFC 3339): a run that started
/// before the boot did not outlive it.
fn booted_after(started: &str) -> bool {
    let Ok(started) = humantime::parse_rfc3339_weak(started) else {
        return false;
    };
    let Ok(started) = started.duration_since(std::time::UNIX_EPOCH) else {
        return false;
    };
    boot_time().is_some_and(|boot| boot > started.as_secs())
}

/// When this machine booted, in seconds since the Unix epoch (`btime` in `/proc/stat`).
fn boot_time() -> Option<u64> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    stat.lines()
        .find_map(|l| l.strip_prefix("btime "))?
        .trim()
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn me() -> Owner {
        Owner::this_process().expect("this process").clone()
    }

    const LONG_AGO: &str = "2001-01-01T00:00:00Z";

    #[test]
    fn this_process_is_running_and_a_pid_with_another_start_time_died() {
        let owner = me();
        assert_eq!(
            judge(Some(&owner.json()), LONG_AGO),
            Liveness::Running { pid: owner.pid }
        );
        let reused = Owner {
            start: owner.start + 1,
            ..owner.clone()
        };
        assert!(matches!(
            judge(Some(&reused.json()), LONG_AGO),
            Liveness::Died {
                restarted: false,
                ..
            }
        ));
    }

    #[test]
    fn a_process_that_exited_died_reaped_or_not() {
        let mut child = std::process::Command::new("true").spawn().expect("true");
        let pid = i32::try_from(child.id()).expect("pid");
        let gone = Owner {
            pid,
            start: crate::procfs::start_time(pid).expect("its start time"),
            ..me()
        };
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while !crate::procfs::is_zombie(pid) {
            assert!(std::time::Instant::now() < deadline, "it never exited");
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        let died = || matches!(judge(Some(&gone.json()), LONG_AGO), Liveness::Died { .. });
        assert!(
            died(),
            "exited, its pid and start time kept until it is reaped"
        );
        child.wait().expect("wait");
        assert!(died());
    }

    #[test]
    fn another_boot_is_a_restart_on_this_host_only_if_the_run_started_before_it() {
        let other_boot = Owner {
            boot: "another".into(),
            ..me()
        };
        assert!(matches!(
            judge(Some(&other_boot.json()), LONG_AGO),
            Liveness::Died {
                restarted: true,
                ..
            }
        ));
        // Started after this machine's boot: another machine of the same name.
        let now = humantime::format_rfc3339(std::time::SystemTime::now()).to_string();
        assert!(matches!(
            judge(Some(&other_boot.json()), &now),
            Liveness::Unknown(_)
        ));
    }

    /// Only a run whose prun is proven gone here (this host, boot and PID namespace) is
    /// recorded `died`: not one going, not one of another namespace or host, and not one
    /// a reader takes for dead because this host restarted since (a host's name is no
    /// proof); a run that ended keeps its outcome.
    #[test]
    fn only_a_run_whose_prun_is_proven_gone_here_is_recorded_died() {
        let mut conn = rusqlite::Connection::open_in_memory().expect("open");
        super::super::schema::migrate(&mut conn).expect("schema");
        let killed = Owner {
            start: me().start + 1,
            ..me()
        };
        let restarted = Owner {
            boot: "another".into(),
            ..me()
        };
        let contained = Owner {
            pidns: "pid:[1]".into(),
            ..killed.clone()
        };
        let renamed = Owner {
            host: "far".into(),
            ..killed.clone()
        };
        let rows = [
            (1, me().json(), None),
            (2, killed.json(), None),
            (3, restarted.json(), None),
            (4, contained.json(), None),
            (5, killed.json(), Some("ok")),
            (6, renamed.json(), None),
        ];
        for (id, owner, outcome) in rows {
            conn.execute(
                "INSERT INTO runs (id, script, args, started, owner, outcome)
                 VALUES (?1, 's', '[]', ?2, ?3, ?4)",
                rusqlite::params![id, LONG_AGO, owner, outcome],
            )
            .expect("run");
        }
        let dead = dead_runs(&conn).expect("read");
        assert_eq!(dead, [2]);
        conn.execute("UPDATE runs SET outcome = 'ok' WHERE id = 6", [])
            .expect("an end recorded since");
        let tx = conn.transaction().expect("tx");
        record_dead(&tx, &[2, 6]).expect("record");
        tx.commit().expect("commit");
        let outcomes: Vec<Option<String>> = conn
            .prepare("SELECT outcome FROM runs ORDER BY id")
            .expect("prepare")
            .query_map([], |r| r.get(0))
            .expect("query")
            .collect::<Result<_, _>>()
            .expect("rows");
        let died = Some(DIED.to_string());
        assert_eq!(
            outcomes,
            [
                None,
                died,
                None,
                None,
                Some("ok".to_string()),
                Some("ok".to_string())
            ]
        );
        assert_eq!(
            recorded(DIED, Some(&killed.json())),
            Some(Liveness::Died {
                pid: killed.pid,
                restarted: false
            })
        );
        assert_eq!(recorded("ok", Some(&killed.json())), None);
    }

    /// The dead runs are looked for when the writer opens the DB, while the run gets
    /// ready, not in the run's first write (where the query cost every run about 40,000
    /// instructions): a run found dead then is recorded `died` with this run's start, and
    /// one that dies after is left to the next writer.
    #[test]
    fn dead_runs_are_found_as_the_db_opens_and_recorded_with_the_run_s_start() {
        use crate::store::{ScriptName, Store};
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("t.db");
        Store::open(&path, std::sync::Arc::new(|_| {}))
            .expect("open")
            .close();
        let killed = Owner {
            start: me().start + 1,
            ..me()
        };
        let add_dead = |id: i64| {
            rusqlite::Connection::open(&path)
                .expect("open")
                .execute(
                    "INSERT INTO runs (id, script, args, started, owner) VALUES (?1, 's', '[]', ?2, ?3)",
                    rusqlite::params![id, LONG_AGO, killed.json()],
                )
                .expect("a dead run");
        };
        let outcome = |id: i64| -> Option<String> {
            rusqlite::Connection::open(&path)
                .expect("open")
                .query_row("SELECT outcome FROM runs WHERE id = ?1", [id], |r| r.get(0))
                .expect("outcome")
        };
        let script = ScriptName::of(std::path::Path::new("s.rhai"));
        add_dead(1);
        let s = Store::open(&path, std::sync::Arc::new(|_| {})).expect("open");
        // Answered once the writer has committed: it opened the DB before.
        s.forget_now(vec!["x".into()]).expect("forget");
        add_dead(2);
        s.begin_run(&script, &[], LONG_AGO);
        s.close();
        assert_eq!((outcome(1).as_deref(), outcome(2)), (Some(DIED), None));
        let s = Store::open(&path, std::sync::Arc::new(|_| {})).expect("open");
        s.begin_run(&script, &[], LONG_AGO);
        s.close();
        assert_eq!(outcome(2).as_deref(), Some(DIED), "the next writer's");
    }

    /// A prun in a time namespace with a boot-time offset (`unshare --time --boottime`),
    /// in this PID namespace, reads its own start time shifted by the offset: it is
    /// running, not a pid with another start time that died.
    #[test]
    fn a_prun_in_another_time_namespace_is_not_taken_for_dead() {
        use std::io::{BufRead, BufReader};
        if !nix::unistd::Uid::effective().is_root() {
            eprintln!("skipped: only root can make a time namespace");
            return;
        }
        let mut child = std::process::Command::new("unshare")
            .args(["--time", "--boottime", "100000", "--fork", "sh", "-c"])
            .arg(r#"echo $$; cut -d" " -f22 /proc/$$/stat; readlink /proc/$$/ns/time; exec cat"#)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("unshare");
        let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
        let mut line = || lines.next().expect("a line").expect("read");
        let pid: i32 = line().parse().expect("pid");
        let start: u64 = line().parse().expect("start");
        let timens = line();
        let inside = Owner {
            pid,
            start,
            timens,
            ..me()
        };
        assert_ne!(
            crate::procfs::start_time(pid),
            Some(start),
            "the premise: its start time reads otherwise from here"
        );
        let judged = judge(Some(&inside.json()), LONG_AGO);
        drop(child.stdin.take());
        child.wait().expect("wait");
        assert!(matches!(judged, Liveness::Unknown(_)), "{judged:?}");
    }

    #[test]
    fn another_host_another_namespace_or_no_owner_is_unknown() {
        let elsewhere = Owner {
            host: "far".into(),
            boot: "another".into(),
            ..me()
        };
        assert_eq!(
            judge(Some(&elsewhere.json()), LONG_AGO),
            Liveness::Unknown(format!(
                "its prun (pid {}) ran on host far, in another boot",
                me().pid
            ))
        );
        let contained = Owner {
            pidns: "pid:[1]".into(),
            ..me()
        };
        assert!(matches!(
            judge(Some(&contained.json()), LONG_AGO),
            Liveness::Unknown(_)
        ));
        assert!(matches!(judge(None, LONG_AGO), Liveness::Unknown(_)));
        assert!(matches!(judge(Some("{"), LONG_AGO), Liveness::Unknown(_)));
    }
}

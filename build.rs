//! Finds out which of the tools some integration tests need are missing, so that those
//! tests are marked ignored (with the reason) and `cargo test` counts them in its summary
//! ("N ignored"; `cargo test -- --ignored` runs them and shows why they were skipped).
//!
//! Each missing tool sets a cfg, `prun_no_<tool>`, that the tests read with
//! `#[cfg_attr(prun_no_<tool>, ignore = "...")]`. Under `PRUN_E2E=require` (CI) no such
//! cfg is set: the tests run, and their own check fails loudly on a missing tool. prun
//! itself does not read these cfgs.
//!
//! The probes run again when `PATH` or `PRUN_E2E` changes and, while a tool is missing,
//! when a directory on `PATH` changes (the tool may have been installed there; cargo then
//! rebuilds the crate, since a build script's cfgs apply to all of it). A tool removed
//! later is caught by the test's own check at run time.
//!
//! It also lays out a release binary's code: see [`order_hot_code`].

use std::path::{Path, PathBuf};
use std::process::Command;

/// The text a command prints on stdout, when it runs and succeeds.
fn output(program: &str, args: &[&str]) -> Option<String> {
    let out = Command::new(program).args(args).output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

fn runs(program: &str, args: &[&str]) -> bool {
    output(program, args).is_some()
}

/// rclone 1.63 or later (the `rclone` module needs `--inplace`).
fn recent_rclone() -> bool {
    output("rclone", &["version"]).is_some_and(|v| {
        let version = v
            .lines()
            .next()
            .and_then(|l| l.split(" v").nth(1))
            .unwrap_or("");
        let mut parts = version
            .split('.')
            .map(|p| p.split(|c: char| !c.is_ascii_digit()).next().unwrap_or(""))
            .map(|p| p.parse::<u32>().unwrap_or(0));
        (parts.next().unwrap_or(0), parts.next().unwrap_or(0)) >= (1, 63)
    })
}

/// PostgreSQL's initdb, on PATH or in Debian's /usr/lib/postgresql/*/bin.
fn postgres() -> bool {
    runs(
        "sh",
        &[
            "-c",
            "command -v initdb || ls /usr/lib/postgresql/*/bin/initdb",
        ],
    )
}

/// An OpenSSH server the tests can start on a loopback port: it needs root (for its
/// privilege separation) and the client tools.
fn sshd() -> bool {
    Path::new("/usr/sbin/sshd").exists()
        && runs("sh", &["-c", "command -v ssh && command -v ssh-keygen"])
        && output("id", &["-u"]).is_some_and(|u| u.trim() == "0")
}

/// The login shells the ssh executor's tests give their users (Debian's paths: fish,
/// tcsh, and BSD csh from the `csh` package).
fn shells() -> bool {
    ["/usr/bin/fish", "/usr/bin/tcsh", "/usr/bin/bsd-csh"]
        .iter()
        .all(|s| Path::new(s).exists())
}

/// Slurm's daemons and client, and munge, to start a single-node cluster (as root).
fn slurm() -> bool {
    runs(
        "sh",
        &[
            "-c",
            "command -v srun && command -v scancel && command -v squeue && test -x /usr/sbin/slurmctld && test -x /usr/sbin/slurmd && test -x /usr/sbin/munged",
        ],
    ) && output("id", &["-u"]).is_some_and(|u| u.trim() == "0")
}

/// Root, who may mount a small tmpfs to fill a file system for real.
fn root() -> bool {
    output("id", &["-u"]).is_some_and(|u| u.trim() == "0")
}

/// Release builds for x86-64 Linux, linked by LLD (Rust's default linker there): the
/// functions typical runs execute (`link/hot-symbols.txt`, made by `link/hot-symbols.sh`)
/// are placed next to each other. The kernel maps a program's code by the page and its
/// neighbours, so scattered over the whole binary they made 6.5 MB of its 9 MB of code
/// resident in a run of one proc; laid out together, about 3 MB. Names the list has and the
/// binary lacks (a list made before the code changed) are skipped. Not done when a linker
/// or link arguments of one's own are configured: another linker may not know the option.
///
/// The same builds pack their relative relocations (`-z pack-relative-relocs`, DT_RELR)
/// when the C library they are built against can load such a binary (glibc 2.36 or
/// later): the relocation table shrinks from about 280 KB to 8 KB, all of which the
/// loader reads at start-up and which stayed resident, about 0.2 MiB of a run's peak
/// memory (10,000 procs: 11.9 against 12.1 MiB, medians of six runs each).
fn order_hot_code() {
    println!("cargo::rerun-if-changed=link/hot-symbols.txt");
    println!("cargo::rerun-if-env-changed=RUSTC_LINKER");
    let var = |k: &str| std::env::var(k).unwrap_or_default();
    let own_linker = std::env::var_os("RUSTC_LINKER").is_some()
        || var("CARGO_ENCODED_RUSTFLAGS").contains("link");
    if var("PROFILE") != "release" || var("TARGET") != "x86_64-unknown-linux-gnu" || own_linker {
        return;
    }
    let list = Path::new(&var("CARGO_MANIFEST_DIR")).join("link/hot-symbols.txt");
    println!(
        "cargo::rustc-link-arg-bins=-Wl,--symbol-ordering-file={}",
        list.display()
    );
    println!("cargo::rustc-link-arg-bins=-Wl,--no-warn-symbol-ordering");
    if glibc_loads_relr() {
        println!("cargo::rustc-link-arg-bins=-Wl,-z,pack-relative-relocs");
    }
}

/// Whether the build machine's glibc is 2.36 or later, the first whose loader applies
/// packed relocations (an older one refuses to start such a binary). `getconf` prints
/// `glibc 2.36`.
fn glibc_loads_relr() -> bool {
    output("getconf", &["GNU_LIBC_VERSION"]).is_some_and(|v| {
        let mut numbers = v
            .trim()
            .trim_start_matches("glibc ")
            .split('.')
            .map(|n| n.parse::<u32>().unwrap_or(0));
        let major = numbers.next().unwrap_or(0);
        let minor = numbers.next().unwrap_or(0);
        (major, minor) >= (2, 36)
    })
}

/// Keeps the binary reachable where cargo puts it when no target is named
/// (`target/release/prun`, `target/debug/prun`). `.cargo/config.toml` names the host's
/// target, to link the C library statically, and cargo then builds into
/// `target/<host tuple>/<profile>/`: a symbolic link at the usual place points there, for
/// the scripts and habits that look for prun in `target/release`. The link is relative
/// (the target directory can move) and replaces a binary an older build left there; it
/// points to a file the link step of this build writes.
fn link_usual_place() {
    let (Some(out), Ok(target)) = (std::env::var_os("OUT_DIR"), std::env::var("TARGET")) else {
        return;
    };
    // OUT_DIR is `<target dir>/<tuple>/<profile>/build/prun-<hash>/out`.
    let out = PathBuf::from(out);
    let Some(profile_dir) = out.ancestors().nth(3) else {
        return;
    };
    let (Some(profile), Some(tuple_dir)) = (profile_dir.file_name(), profile_dir.parent()) else {
        return;
    };
    let Some(target_dir) = tuple_dir.parent() else {
        return;
    };
    if tuple_dir.file_name() != Some(std::ffi::OsStr::new(&target)) {
        return;
    }
    let to = Path::new("..").join(&target).join(profile).join("prun");
    let usual_dir = target_dir.join(profile);
    let usual = usual_dir.join("prun");
    if std::fs::read_link(&usual).is_ok_and(|now| now == to) {
        return;
    }
    let _ = std::fs::create_dir_all(&usual_dir);
    let _ = std::fs::remove_file(&usual);
    let _ = std::os::unix::fs::symlink(&to, &usual);
}

/// A cfg that says a tool is missing, and how to find out whether it is there.
type Probe = (&'static str, fn() -> bool);

fn main() {
    println!("cargo::rerun-if-changed=build.rs");
    println!("cargo::rerun-if-env-changed=PRUN_E2E");
    // Only the tests read the cfgs below. A release build looks for the tools once: made
    // again whenever `PATH` or a directory on it changed (any package installed, while a
    // tool is missing), it cost a whole optimised build of the binary for nothing.
    let watch_tools = std::env::var("PROFILE").as_deref() != Ok("release");
    if watch_tools {
        println!("cargo::rerun-if-env-changed=PATH");
    }
    order_hot_code();
    link_usual_place();
    let require = std::env::var("PRUN_E2E").is_ok_and(|v| v == "require");
    let probes: [Probe; 11] = [
        ("prun_no_tmux", || runs("tmux", &["-V"])),
        ("prun_no_doc_tools", || {
            runs(
                "sh",
                &["-c", "command -v zsh && command -v fish && command -v man"],
            )
        }),
        ("prun_no_dot", || runs("dot", &["-V"])),
        ("prun_no_postgres", postgres),
        ("prun_no_rclone", recent_rclone),
        ("prun_no_chromium", || runs("chromium", &["--version"])),
        ("prun_no_podman", || {
            runs("sh", &["-c", "command -v podman && command -v runc"])
        }),
        ("prun_no_sshd", sshd),
        ("prun_no_shells", shells),
        ("prun_no_slurm", slurm),
        ("prun_no_root", root),
    ];
    let mut missing = false;
    for (cfg, present) in probes {
        println!("cargo::rustc-check-cfg=cfg({cfg})");
        if !require && !present() {
            println!("cargo::rustc-cfg={cfg}");
            missing = true;
        }
    }
    if missing && watch_tools {
        let path = std::env::var_os("PATH").unwrap_or_default();
        let dirs = std::env::split_paths(&path).chain([Path::new("/usr/lib/postgresql").into()]);
        for dir in dirs.filter(|d| d.is_absolute() && d.is_dir()) {
            println!("cargo::rerun-if-changed={}", dir.display());
        }
    }
}

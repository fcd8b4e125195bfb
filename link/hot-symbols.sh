#!/usr/bin/env bash
# Regenerates link/hot-symbols.txt: the functions of a release prun that typical runs
# execute, which the release link lays out next to each other (see build.rs). The kernel
# maps a program's code by the page (and its neighbours, "fault-around"), so a run's
# resident memory counts every page that holds one function it calls: scattered over the
# whole binary, a few thousand small functions touch most of its pages.
#
#   link/hot-symbols.sh [path/to/prun]           # default: the release build
#   link/hot-symbols.sh --check [path/to/prun]   # CI: is the committed list still current?
#
# --check writes nothing and builds nothing: it traces the given release binary as above
# and fails when the committed list misses more than MAX_MISSED of the functions the
# binary's runs execute (hot functions added or renamed since the list was made: their
# mangled names changed), naming how many and the command that remakes the list.
# Callgrind is deterministic, but runs take different paths with the timing of their jobs
# and threads: six lists made from one binary missed 0 or 1 of each other's 2,401
# functions. MAX_MISSED (0.8% of the list) leaves room for another machine's timing and
# is below what one merge did (31 missed; a build missing 32 mapped 0.2 MiB more code).
#
# Needs valgrind (callgrind lists every function a run executes, however rarely), nm and
# c++filt (binutils).
# A list made from an older build stays usable: names it does not find are skipped, and
# the functions it misses are only laid out as before.
set -euo pipefail
MAX_MISSED=20
check=false
if [ "${1:-}" = --check ]; then
    check=true
    shift
fi
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BIN=$(realpath "${1:-$ROOT/target/$(rustc --print host-tuple)/release/prun}")
LIST="$ROOT/link/hot-symbols.txt"
if ! [ -x "$BIN" ]; then
    echo "$BIN: no such program; build it first: cargo build --release" >&2
    exit 2
fi
TMP=$(mktemp -d "${TMPDIR:-/tmp}/prun-hot.XXXXXX")
trap 'rm -rf "$TMP"' EXIT
export XDG_STATE_HOME="$TMP/state"
cd "$TMP"
mkdir -p in out

cat >one.rhai <<'RHAI'
proc("one", #{ cmd: ["/usr/bin/true"] });
run("one");
RHAI
cat >many.rhai <<'RHAI'
for i in 0..300 { proc("t" + i, #{ cmd: ["/usr/bin/true"] }); }
for i in 0..300 { proc("p" + i, |ctx| 1); }
proc("sh", #{ shell: "echo hi; echo err >&2", deps: ["t*"] });
run("t*"); run("p*"); run("sh");
RHAI
for i in 0..50; do echo "$i" >"in/$i.txt"; done
cat >files.rhai <<'RHAI'
for i in 0..50 {
    proc(`c${i}`, #{ inputs: [`in/${i}.txt`], outputs: [`out/${i}.txt`],
                     cmd: ["cp", `in/${i}.txt`, `out/${i}.txt`] });
}
run("c*");
RHAI
# Many procs, each with its own argument, and a history that keeps two runs: its third
# run prunes a run of as many procs, which rebalances the task DB's tables (SQLite's
# B-tree code that runs of a few procs on a new DB never reach, but a run of 10,000
# procs and a full history do).
cat >args.rhai <<'RHAI'
set_options(#{ keep_runs: 2 });
for i in 0..1500 { proc("a" + i, #{ cmd: ["/usr/bin/true", `${i}`] }); }
run("a*");
RHAI
cat >fail.rhai <<'RHAI'
proc("bad", #{ cmd: ["sh", "-c", "echo failing; exit 3"] });
proc("after", #{ deps: ["bad"], cmd: ["/usr/bin/true"] });
run("after");
RHAI

n=0
trace() {
    n=$((n + 1))
    valgrind --tool=callgrind --demangle=no --callgrind-out-file="$TMP/cg.$n" \
        "$BIN" "$@" >/dev/null 2>&1 || true
}
trace one.rhai -q
"$BIN" args.rhai -j 2 -q >/dev/null && "$BIN" args.rhai -j 2 -q >/dev/null
trace args.rhai -j 2 -q
trace many.rhai -j 2 -q
trace many.rhai -j 2 --json "$TMP/report.json"
trace files.rhai -q
trace files.rhai -q
trace fail.rhai -q
trace fail.rhai

# Every function named in the profiles (in order of first mention) that is a code
# symbol of the binary. The traces go from the commonest runs (one command, many) to
# the rarer (closures, reports, cached files, failures): the code a run of commands
# executes lies at the front of the list, and its pages hold little it does not run.
nm --defined-only "$BIN" | awk '$2 ~ /^[tTwW]$/ { print $3 }' | sort -u >"$TMP/code"
sed -n 's/^c\{0,1\}fn=([0-9]*) //p' "$TMP"/cg.* | sed "s/'.*//" \
    | awk 'NR == FNR { code[$0] = 1; next } ($0 in code) && !seen[$0]++' "$TMP/code" - \
        >"$TMP/hot"
if ! $check; then
    mv "$TMP/hot" "$LIST"
    echo "$(wc -l <"$LIST") functions in $LIST" >&2
    exit 0
fi
# The hot functions of this binary that the committed list lacks.
sort -u "$LIST" >"$TMP/listed"
sort -u "$TMP/hot" | comm -23 - "$TMP/listed" >"$TMP/missed"
missed=$(wc -l <"$TMP/missed")
total=$(wc -l <"$TMP/hot")
if [ "$missed" -gt "$MAX_MISSED" ]; then
    echo "link/hot-symbols.txt is stale: it misses $missed of the $total functions that" \
        "runs of $BIN execute (more than $MAX_MISSED); remake it from a release build" \
        "and commit it: cargo build --release && link/hot-symbols.sh" >&2
    echo "some of the functions it misses:" >&2
    head -n 10 "$TMP/missed" | c++filt >&2
    exit 1
fi
echo "link/hot-symbols.txt misses $missed of the $total hot functions of $BIN" \
    "(at most $MAX_MISSED allowed)" >&2

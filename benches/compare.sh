#!/usr/bin/env bash
# Two prun binaries side by side on the speed cases of issue 10, with make and ninja as
# references, in one invocation: each case runs both builds one right after the other, so
# the machine's load is about the same for both. Use it to measure a change before and
# after (keep a copy of the old binary first).
#
#   benches/compare.sh OLD_PRUN NEW_PRUN     # e.g. /tmp/prun-before target/x86_64-unknown-linux-gnu/release/prun
#   R=20 benches/compare.sh OLD NEW          # runs per case (default 10; case 4 uses 20 × R)
#
# Cases (numbers as in benches/engine.sh): 1. 2000 × /usr/bin/true at -j2 -q, with the
# ceiling (benches/spawnloop.c: posix_spawn and waitpid and nothing else, built with the
# system's cc when there is one) and each program's speed as a fraction of it; 2. a chain
# of 500; 4. start-up plus one trivial proc, with its floor (benches/start_floor.rs, when
# built: `cargo build --release --example start_floor`; or FLOOR=path), timed by
# hyperfine and then interleaved run by run (benches/interleave.py, with python3); 5. a
# no-op run of 10,000 up-to-date procs; 6. peak RSS of 10,000 command procs, all with the
# same command (6) and each with its own (6'); and the CPU time (task-clock, children
# included) of cases 4, 1 and 2 when `perf` is there. Each binary has its own
# XDG_STATE_HOME in a temp dir, and its task DB exists before anything is timed. Needs
# hyperfine, make and ninja; everything generated goes to a temp dir that is removed at
# the end.
set -euo pipefail

die() { echo "compare.sh: $*" >&2; exit 1; }
(($# == 2)) || die "usage: compare.sh OLD_PRUN NEW_PRUN"
OLD=$(realpath "$1") NEW=$(realpath "$2")
[[ -x $OLD && -x $NEW ]] || die "both binaries must exist and be executable"
for t in hyperfine make ninja; do command -v "$t" >/dev/null || die "$t is required"; done
R=${R:-10}
HERE=$(cd "$(dirname "$0")" && pwd)
TMP=$(mktemp -d "${TMPDIR:-/tmp}/prun-compare.XXXXXX")
trap 'rm -rf "$TMP"' EXIT
cd "$TMP"
# The code a run maps resident depends on how the binary's file sits in the page cache
# (byte-identical copies differed by 0.6 MiB at the peak of case 6): each binary is run
# from a fresh copy whose cached pages are dropped, read afresh by its first run below.
cp "$OLD" old-prun && cp "$NEW" new-prun && sync old-prun new-prun
dd if=old-prun iflag=nocache count=0 status=none && dd if=new-prun iflag=nocache count=0 status=none
echo "old = $OLD"
echo "new = $NEW"
OLD=$TMP/old-prun NEW=$TMP/new-prun

echo 'for i in 0..2000 { proc("t" + i, #{ cmd: ["/usr/bin/true"] }); }
run("t*");' >flat.rhai
{
    echo 'proc("c0", #{ cmd: ["/usr/bin/true"] });'
    echo 'for i in 1..500 { proc("c" + i, #{ deps: ["c" + (i - 1)], cmd: ["/usr/bin/true"] }); }'
    echo 'run("c499");'
} >chain.rhai
echo 'proc("one", #{ cmd: ["/usr/bin/true"] });
run("one");' >one.rhai
echo 'for i in 0..10000 { proc("t" + i, #{ cmd: ["/usr/bin/true"] }); }
run("t*");' >rss.rhai
echo 'for i in 0..10000 { proc("t" + i, #{ cmd: ["/usr/bin/true", `${i}`] }); }
run("t*");' >rss2.rhai
{
    printf '.PHONY: all'; for ((i = 0; i < 2000; i++)); do printf ' t%d' "$i"; done; echo
    printf 'all:'; for ((i = 0; i < 2000; i++)); do printf ' t%d' "$i"; done; echo
    for ((i = 0; i < 2000; i++)); do printf 't%d:\n\t/usr/bin/true\n' "$i"; done
} >flat.mk
{
    printf '.PHONY:'; for ((i = 0; i < 500; i++)); do printf ' c%d' "$i"; done; echo
    printf 'c0:\n\t/usr/bin/true\n'
    for ((i = 1; i < 500; i++)); do printf 'c%d: c%d\n\t/usr/bin/true\n' "$i" $((i - 1)); done
} >chain.mk
{
    printf 'rule t\n  command = /usr/bin/true\n'
    for ((i = 0; i < 10000; i++)); do printf 'build t%d: t\n' "$i"; done
} >rss.ninja

# Case 5: one input tree, an output dir per tool.
mkdir -p in
for ((i = 0; i < 10000; i++)); do echo "$i" >"in/$i.txt"; done
cat >noop.rhai <<'EOF'
for i in 0..10000 {
    proc(`c${i}`, #{
        inputs: [`in/${i}.txt`],
        outputs: [`out-prun/${i}.txt`],
        cmd: ["cp", `in/${i}.txt`, `out-prun/${i}.txt`],
    });
}
run("c*");
EOF
for v in old new ninja; do mkdir -p "n-$v/out-prun" "n-$v/out-ninja"; ln -s ../in "n-$v/in"; done
cp noop.rhai n-old/; cp noop.rhai n-new/
{
    printf 'rule cp\n  command = cp $in $out\n'
    for ((i = 0; i < 10000; i++)); do printf 'build out-ninja/%d.txt: cp in/%d.txt\n' "$i" "$i"; done
} >n-ninja/build.ninja

A="env XDG_STATE_HOME=$TMP/state-old $OLD"
B="env XDG_STATE_HOME=$TMP/state-new $NEW"
A5="env -C $TMP/n-old XDG_STATE_HOME=$TMP/state-old $OLD"
B5="env -C $TMP/n-new XDG_STATE_HOME=$TMP/state-new $NEW"
# Every run below must succeed: make the task DBs and bring case 5 up to date first.
$A one.rhai -q && $B one.rhai -q
XDG_STATE_HOME=$TMP/state-4 $OLD one.rhai -q --db $TMP/old4.db
XDG_STATE_HOME=$TMP/state-4 $NEW one.rhai -q --db $TMP/new4.db
$A5 noop.rhai -j 2 -q >/dev/null && $B5 noop.rhai -j 2 -q >/dev/null
ninja -C n-ninja -j2 >/dev/null

hf() { hyperfine -N --style basic "$@" 2>&1 | grep -E '^Benchmark|  Time'; }
echo "### 1. 2000 x /usr/bin/true, -j2 -q"
case1=("$A flat.rhai -j 2 -q" "$B flat.rhai -j 2 -q" "make -s -j2 -f flat.mk all")
if command -v cc >/dev/null && cc -O2 -o spawnloop "$HERE/spawnloop.c"; then
    case1+=("$TMP/spawnloop 2000 2 /usr/bin/true")
fi
hf -w 1 -r "$R" --export-csv case1.csv "${case1[@]}"
if ((${#case1[@]} == 4)); then
    # Speed as a fraction of the ceiling's: its mean time over each one's.
    awk -F, 'NR > 1 { mean[NR - 1] = $2 } END {
        printf "fraction of the ceiling: old %.3f  new %.3f  make %.3f\n",
            mean[4] / mean[1], mean[4] / mean[2], mean[4] / mean[3] }' case1.csv
fi
echo "### 2. chain of 500, -j2 -q"
hf -w 1 -r $((R * 2)) "$A chain.rhai -j 2 -q" "$B chain.rhai -j 2 -q" "make -s -j2 -f chain.mk c499"
echo "### 4. start-up + 1 proc, -q"
# Without the `env` wrapper of the other cases: its own exec costs about 0.9 ms here, as
# much as /usr/bin/true's whole run. Both builds share a state directory (set for
# hyperfine itself) and keep a task DB each.
# The floor, when built (`cargo build --release --example start_floor`): Rhai's engine,
# the script, one spawn and one SQLite transaction, nothing else; then the same with the
# least of prun's own start and end added (a state directory given: the command line,
# signals, an async runtime, a log and a crash journal; see benches/start_floor.rs).
case4=("$OLD one.rhai -q --db $TMP/old4.db" "$NEW one.rhai -q --db $TMP/new4.db" "/usr/bin/true")
FLOOR=${FLOOR:-$HERE/../target/$(rustc --print host-tuple 2>/dev/null)/release/examples/start_floor}
if [[ -x $FLOOR ]]; then
    "$FLOOR" one.rhai "$TMP/floor4.db"
    case4+=("$FLOOR one.rhai $TMP/floor4.db" "$FLOOR one.rhai $TMP/floor4.db $TMP/floor-state")
fi
XDG_STATE_HOME=$TMP/state-4 hf -w 5 -r $((R * 20)) "${case4[@]}"
if command -v python3 >/dev/null; then
    echo "interleaved, one run of each in turn (benches/interleave.py):"
    XDG_STATE_HOME=$TMP/state-4 python3 "$HERE/interleave.py" $((R * 40)) "${case4[@]}"
fi
echo "### 5. no-op, 10000 up to date"
hf -w 2 -r $((R * 3)) "$A5 noop.rhai -j 2 -q" "$B5 noop.rhai -j 2 -q" "ninja -C $TMP/n-ninja -j2"
echo "### 6. peak RSS (KiB) of 10000 command procs: 6 the same command, 6' each its own"
peak() { /usr/bin/time -f %M "$@" 2>&1 >/dev/null | tail -n 1; }
for _ in 1 2 3; do
    echo "6  old $(peak $A rss.rhai -j 2 -q)  new $(peak $B rss.rhai -j 2 -q)  ninja $(peak ninja -j2 -f rss.ninja)"
    echo "6' old $(peak $A rss2.rhai -j 2 -q)  new $(peak $B rss2.rhai -j 2 -q)"
done
if command -v perf >/dev/null; then
    echo "### CPU time (task-clock, children included), 10 runs each"
    for c in "one.rhai -q" "flat.rhai -j 2 -q" "chain.rhai -j 2 -q"; do
        for v in A B; do
            ms=$(perf stat -r 10 -e task-clock ${!v} $c 2>&1 >/dev/null | awk '/task-clock/ {print $1}')
            echo "$([[ $v == A ]] && echo old || echo new) $c: $ms ms"
        done
    done
fi

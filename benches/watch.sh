#!/usr/bin/env bash
# Watch-mode benchmark for prun: how many inotify watches a watching prun holds for 10,000
# input files, how much CPU it uses while idle, and how long one change takes to re-run.
#
#   benches/watch.sh                    # build release prun, run both layouts, print markdown
#   IDLE=30 benches/watch.sh            # seconds of idle CPU to measure (default 10)
#   PRUN=/path/to/prun benches/watch.sh   # measure another binary (no build)
#   KEEP=1 benches/watch.sh             # keep the temp dir
#
# Two layouts of 10,000 files: `tree` (100 directories of 100 files, inputs
# `data/**/*.txt`: a recursive watch, one inotify watch per directory) and `flat` (one
# directory, inputs `flat/*.txt`: one watch). The watches are counted from the `inotify wd:`
# lines of /proc/PID/fdinfo of prun's inotify descriptor; idle CPU is utime+stime from
# /proc/PID/stat over the idle period. Linux only.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
IDLE=${IDLE:-10}
N_DIRS=100
N_FILES=100

die() { echo "watch.sh: $*" >&2; exit 1; }

if [[ -z ${PRUN:-} ]]; then
    echo "building release prun..." >&2
    (cd "$ROOT" && cargo build --release --quiet) || die "cargo build --release failed"
    PRUN="$ROOT/target/$(rustc --print host-tuple)/release/prun"
fi
PRUN=$(cd "$(dirname "$PRUN")" && pwd)/$(basename "$PRUN")
[[ -x $PRUN ]] || die "no binary at $PRUN"
[[ -d /proc/self/fdinfo ]] || die "needs Linux /proc"

TMP=$(mktemp -d "${TMPDIR:-/tmp}/prun-watch-bench.XXXXXX")
PID=
cleanup() {
    if [[ -n $PID ]] && kill -0 "$PID" 2>/dev/null; then kill -KILL "$PID" 2>/dev/null || true; fi
    if [[ -z ${KEEP:-} ]]; then rm -rf "$TMP"; else echo "kept $TMP" >&2; fi
}
trap cleanup EXIT
export XDG_STATE_HOME="$TMP/state"
TICK=$(getconf CLK_TCK)

# Waits (bounded) until FILE has N lines containing TEXT.
wait_lines() {
    local file=$1 text=$2 n=$3 i=0
    while [[ $(grep -c -- "$text" "$file" 2>/dev/null || true) -lt $n ]]; do
        i=$((i + 1))
        [[ $i -lt 6000 ]] || die "timed out waiting for '$text' in $file: $(cat "$file")"
        sleep 0.01
    done
}

cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }

inotify_watches() {
    local pid=$1 fd
    for fd in /proc/"$pid"/fd/*; do
        if [[ $(readlink "$fd" 2>/dev/null) == "anon_inode:inotify" ]]; then
            grep -c '^inotify wd:' "/proc/$pid/fdinfo/${fd##*/}"
            return
        fi
    done
    echo 0
}

now_ms() { date +%s%3N; }

# case NAME GLOB MAKE-FILES-COMMAND
run_case() {
    local name=$1 glob=$2 dir="$TMP/$1"
    mkdir -p "$dir"
    cd "$dir"
    "$3"
    cat > watch.rhai <<EOF
proc("all", #{ inputs: ["$glob"], shell: "cat $glob > /dev/null" });
proc("after", #{ deps: ["all"], shell: "true" });
EOF
    "$PRUN" watch.rhai after --watch > out.txt 2> err.txt &
    PID=$!
    wait_lines out.txt "prun: watch: watching" 1
    local watches start end idle_ticks t0 t1
    watches=$(inotify_watches "$PID")
    start=$(cpu_ticks "$PID")
    sleep "$IDLE"
    end=$(cpu_ticks "$PID")
    idle_ticks=$((end - start))
    local first
    first=$(find "${glob%%/*}" -name '*.txt' -print -quit)
    t0=$(now_ms)
    echo changed >> "$first"
    wait_lines out.txt "prun: watch: cycle 1: .* in " 1
    t1=$(now_ms)
    kill -INT "$PID"
    local code=0
    wait "$PID" || code=$?
    PID=
    [[ $code -eq 0 ]] || die "$name: prun exited $code after Ctrl-C: $(cat err.txt)"
    local files
    files=$(grep -m1 -o "watching [0-9]* inputs" out.txt | grep -o "[0-9][0-9]*")
    printf '| %s | %s | %s | %s | %s | %d ms |\n' "$name" "$glob" "$files" "$watches" \
        "$(awk -v t="$idle_ticks" -v k="$TICK" -v s="$IDLE" 'BEGIN { printf "%.2f%% (%d ticks in %d s)", 100 * t / k / s, t, s }')" \
        $((t1 - t0))
    cd "$TMP"
}

make_tree() {
    local d f
    for ((d = 0; d < N_DIRS; d++)); do
        mkdir -p "data/d$d"
        for ((f = 0; f < N_FILES; f++)); do echo "$d $f" > "data/d$d/f$f.txt"; done
    done
}

make_flat() {
    mkdir -p flat
    local i
    for ((i = 0; i < N_DIRS * N_FILES; i++)); do echo "$i" > "flat/f$i.txt"; done
}

echo "| layout | inputs | input files | inotify watches | idle CPU | change → cycle done |"
echo "|---|---|---|---|---|---|"
run_case tree 'data/**/*.txt' make_tree
run_case flat 'flat/*.txt' make_flat

#!/usr/bin/env bash
# Throughput of prun's command layer against the shell, measured side by side in one run:
#   1. pipe([["cat", BIG], ["cat"]], #{ stdout: OUT })   vs   sh -c 'cat BIG | cat > OUT'
#   2. a command body writing 1 GiB to stdout (captured to its log)
#                                                        vs   sh -c 'head -c 1G /dev/zero > OUT'
# Usage: benches/commands.sh            (REPS=5 by default; SIZE_MB=1024)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
REPS=${REPS:-5}
SIZE_MB=${SIZE_MB:-1024}
if [ -z "${SKIP_BUILD:-}" ]; then
    (cd "$ROOT" && cargo build --release --quiet)
fi
PRUN="$ROOT/target/$(rustc --print host-tuple)/release/prun"
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
export XDG_STATE_HOME="$TMP/state"
cd "$TMP"
head -c "${SIZE_MB}M" /dev/urandom > big

cat > pipe.rhai <<RHAI
pipe([["cat", "big"], ["cat"]], #{ stdout: "out" });
RHAI
cat > body.rhai <<RHAI
proc("write", #{ cmd: ["head", "-c", "${SIZE_MB}M", "/dev/zero"] });
run("write");
RHAI

now() { date +%s%N; }
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

declare -A times
run_case() { # name command...
    local name=$1; shift
    local t0 t1
    sync
    t0=$(now); "$@" >/dev/null; t1=$(now)
    times[$name]+="$(( (t1 - t0) / 1000 )) "
}

# Check once that prun's results are right, outside the timed runs.
"$PRUN" -q pipe.rhai >/dev/null
cmp -s big out || { echo "pipe output differs" >&2; exit 1; }
rm -f out
"$PRUN" -q body.rhai >/dev/null
log=$(ls -t "$XDG_STATE_HOME"/prun/body-*/logs/*/write.log | head -1)
size=$(stat -c %s "$log")
[ "$size" -gt $((SIZE_MB * 1024 * 1024)) ] || { echo "log too small: $size" >&2; exit 1; }
rm -rf "$XDG_STATE_HOME"/prun/body-*/logs/*

# Timed runs; the order of prun and sh alternates so that page-cache and writeback
# effects of one run fall on both alike.
for ((i = 0; i < REPS; i++)); do
    if ((i % 2 == 0)); then order=(prun sh); else order=(sh prun); fi
    for tool in "${order[@]}"; do
        if [ "$tool" = prun ]; then
            run_case "pipe: prun" "$PRUN" -q pipe.rhai
        else
            run_case "pipe: sh" sh -c 'cat big | cat > out'
        fi
        rm -f out
    done
    for tool in "${order[@]}"; do
        if [ "$tool" = prun ]; then
            run_case "log: prun" "$PRUN" -q body.rhai
            rm -rf "$XDG_STATE_HOME"/prun/body-*/logs/*
        else
            run_case "log: sh" sh -c "head -c ${SIZE_MB}M /dev/zero > out"
            rm -f out
        fi
    done
done

echo "| case | median wall (s) | MiB/s | ratio to sh |"
echo "|---|---:|---:|---:|"
for pair in pipe log; do
    sh_us=$(echo ${times["$pair: sh"]} | tr ' ' '\n' | median)
    for tool in prun sh; do
        us=$(echo ${times["$pair: $tool"]} | tr ' ' '\n' | median)
        awk -v n="$pair: $tool" -v us="$us" -v sh="$sh_us" -v mb="$SIZE_MB" \
            'BEGIN { printf "| %s | %.3f | %.0f | %.2f |\n", n, us / 1e6, mb / (us / 1e6), sh / us }'
    done
done

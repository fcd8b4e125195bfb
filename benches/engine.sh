#!/usr/bin/env bash
# Engine benchmark for prun: scheduling/spawn overhead against make, ninja, xargs and
# GNU parallel on trivial jobs (`/usr/bin/true`), a long dependency chain, many closure
# procs, start-up time, a no-op run of up-to-date procs against ninja, peak memory, and
# whether 100,000 procs cost ten times what 10,000 do.
#
#   benches/engine.sh               # build release prun, run everything, print markdown
#   REPS=7 benches/engine.sh        # repetitions per case (median is reported; default 5)
#   KEEP=1 benches/engine.sh        # keep the temp dir with generated inputs and outputs
#   SKIP_BUILD=1 benches/engine.sh  # use the existing release build
#   NO_TMPFS=1 benches/engine.sh    # skip the extra prun row with its logs on tmpfs
#   NO_HYPERFINE=1 benches/engine.sh # time case 4 with a plain loop even if hyperfine exists
#   NO_LINEAR=1 benches/engine.sh   # skip case 7 (100,000 closure procs: a few seconds)
#
# Every generated input (Rhai scripts, Makefiles, build.ninja) is written to a temp dir at
# run time; XDG_STATE_HOME points there too, so prun's logs never touch the user's state.
# Each run's exit status is checked, and for prun the last line of its output must be
# `prun: N succeeded in X.XXs` with the expected N. Repetitions are interleaved
# (round-robin over the tools of a case) so drift in machine load hits all tools alike.
set -euo pipefail

REPS=${REPS:-5}
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PRUN="$ROOT/target/$(rustc --print host-tuple)/release/prun"
N_FLAT=2000    # case 1
N_CHAIN=500    # case 2
N_CLOS=20000   # case 3
N_START=50     # case 4: runs per command (hyperfine --runs, or the fallback loop)
N_NOOP=10000   # case 5: up-to-date procs, each with one input and one output
N_RSS=10000    # case 6: command procs whose peak memory is measured
N_LINEAR=(10000 100000) # case 7: closure procs, a small and a ten times larger run

die() { echo "engine.sh: $*" >&2; exit 1; }
have() { command -v "$1" >/dev/null 2>&1; }

if [[ -z ${SKIP_BUILD:-} ]]; then
    echo "building release prun..." >&2
    (cd "$ROOT" && cargo build --release --quiet) || die "cargo build --release failed"
fi
[[ -x $PRUN ]] || die "no binary at $PRUN"
have make || die "make is required"

TMP=$(mktemp -d "${TMPDIR:-/tmp}/prun-bench.XXXXXX")
# prun writes one log file per command proc. A second state dir on tmpfs (when there is
# one) separates the cost of creating those files from the rest of the engine.
SHM=""
if [[ -z ${NO_TMPFS:-} && -d /dev/shm && -w /dev/shm ]]; then
    SHM=$(mktemp -d /dev/shm/prun-bench.XXXXXX)
fi
if [[ -n ${KEEP:-} ]]; then
    echo "keeping $TMP ${SHM}" >&2
else
    trap 'rm -rf "$TMP" ${SHM:+"$SHM"}' EXIT
fi
export XDG_STATE_HOME="$TMP/state"
mkdir -p "$XDG_STATE_HOME"
cd "$TMP"

# ---------------------------------------------------------------- generated inputs

# Case 1: N_FLAT independent command procs, argv exec'd directly (no shell).
cat >flat.rhai <<EOF
for i in 0..$N_FLAT { proc("t" + i, #{ cmd: ["/usr/bin/true"] }); }
run("t*");
EOF
# Same, as a proto filled out by a glob over arg_choices.
cat >flat_proto.rhai <<EOF
let ids = [];
for i in 0..$N_FLAT { ids.push(i.to_string()); }
proto("t::[i]", #{ arg_choices: #{ i: ids }, cmd: ["/usr/bin/true"] });
run("t::*");
EOF
{
    printf '.PHONY: all'; for ((i = 0; i < N_FLAT; i++)); do printf ' t%d' "$i"; done; echo
    printf 'all:';        for ((i = 0; i < N_FLAT; i++)); do printf ' t%d' "$i"; done; echo
    for ((i = 0; i < N_FLAT; i++)); do printf 't%d:\n\t/usr/bin/true\n' "$i"; done
} >flat.mk
# ninja: outputs are never created, so every edge is dirty on every run.
{
    printf 'rule t\n  command = /usr/bin/true\n'
    for ((i = 0; i < N_FLAT; i++)); do printf 'build t%d: t\n' "$i"; done
} >flat.ninja

# Case 2: a chain of N_CHAIN procs, each depending on the previous one.
cat >chain.rhai <<EOF
proc("c0", #{ cmd: ["/usr/bin/true"] });
for i in 1..$N_CHAIN { proc("c" + i, #{ deps: ["c" + (i - 1)], cmd: ["/usr/bin/true"] }); }
run("c$((N_CHAIN - 1))");
EOF
{
    printf '.PHONY:'; for ((i = 0; i < N_CHAIN; i++)); do printf ' c%d' "$i"; done; echo
    printf 'c0:\n\t/usr/bin/true\n'
    for ((i = 1; i < N_CHAIN; i++)); do printf 'c%d: c%d\n\t/usr/bin/true\n' "$i" $((i - 1)); done
} >chain.mk
{
    printf 'rule t\n  command = /usr/bin/true\n'
    printf 'build c0: t\n'
    for ((i = 1; i < N_CHAIN; i++)); do printf 'build c%d: t c%d\n' "$i" $((i - 1)); done
} >chain.ninja

# Case 3: N_CLOS closure procs returning a constant (no subprocesses at all).
cat >closures.rhai <<EOF
for i in 0..$N_CLOS { proc("p" + i, |ctx| 1); }
run("p*");
EOF
# Reference: make's own graph walk over N_CLOS phony targets with empty recipes (no spawns).
{
    printf '.PHONY: all'; for ((i = 0; i < N_CLOS; i++)); do printf ' p%d' "$i"; done; echo
    printf 'all:';        for ((i = 0; i < N_CLOS; i++)); do printf ' p%d' "$i"; done; echo
    for ((i = 0; i < N_CLOS; i++)); do printf 'p%d: ;\n' "$i"; done
} >closures.mk

# Case 4: start-up plus one trivial proc.
cat >one.rhai <<'EOF'
proc("one", #{ cmd: ["/usr/bin/true"] });
run("one");
EOF

# Case 5: N_NOOP procs, each copying one input to one output; measured once all are up
# to date (prun's task DB, ninja's log). The same tree for both, generated once.
mkdir -p in out-prun out-ninja
for ((i = 0; i < N_NOOP; i++)); do echo "$i" >"in/$i.txt"; done
cat >noop.rhai <<EOF
for i in 0..$N_NOOP {
    proc(\`c\${i}\`, #{
        inputs: [\`in/\${i}.txt\`],
        outputs: [\`out-prun/\${i}.txt\`],
        cmd: ["cp", \`in/\${i}.txt\`, \`out-prun/\${i}.txt\`],
    });
}
run("c*");
EOF
{
    printf 'rule cp\n  command = cp $in $out\n'
    for ((i = 0; i < N_NOOP; i++)); do printf 'build out-ninja/%d.txt: cp in/%d.txt\n' "$i" "$i"; done
} >noop.ninja

# Case 6: N_RSS independent command procs (and the same for ninja).
cat >rss.rhai <<EOF
for i in 0..$N_RSS { proc("t" + i, #{ cmd: ["/usr/bin/true"] }); }
run("t*");
EOF
{
    printf 'rule t\n  command = /usr/bin/true\n'
    for ((i = 0; i < N_RSS; i++)); do printf 'build t%d: t\n' "$i"; done
} >rss.ninja

# Case 7: closure procs at two sizes.
for n in "${N_LINEAR[@]}"; do
    printf 'for i in 0..%d { proc("p" + i, |ctx| 1); }\nrun("p*");\n' "$n" >"linear$n.rhai"
done

# ---------------------------------------------------------------- measuring

# A case is built with `add LABEL JOBS EXPECT COMMAND` calls, then `bench_case TITLE`.
# EXPECT is `prun:N` (check the summary line), `quiet` (exit status 0 and no output at
# all, as `-q` gives on success) or `-` (exit status only). Commands run via
# eval in a subshell in $TMP (no extra exec, so no extra shell start-up in the timing).
declare -a ROWS=()   # finished table rows
declare -a L=() J=() E=() C=()
declare -A SAMPLES=()

# Wall clock in microseconds: bash 5's $EPOCHREALTIME (no fork), else date +%s%N.
if [[ -n ${EPOCHREALTIME:-} ]]; then
    now_us() { local t=${EPOCHREALTIME//[!0-9]/}; echo "$((10#$t))"; }
else
    now_us() { echo $(( $(date +%s%N) / 1000 )); }
fi

add() { L+=("$1"); J+=("$2"); E+=("$3"); C+=("$4"); }

run_once() { # idx label expect cmd -> appends microseconds to SAMPLES[idx]
    local idx=$1 label=$2 expect=$3 cmd=$4 out="$TMP/out.$1" err="$TMP/err.$1" t0 t1 rc=0
    t0=$(now_us)
    (eval "$cmd") >"$out" 2>"$err" || rc=$?
    t1=$(now_us)
    if ((rc != 0)); then
        echo "engine.sh: '$label' failed (exit $rc): $cmd" >&2
        tail -n 20 "$err" "$out" >&2
        exit 1
    fi
    if [[ $expect == quiet && ( -s $out || -s $err ) ]]; then
        echo "engine.sh: '$label': -q printed something on success:" >&2
        head -n 5 "$out" "$err" >&2
        exit 1
    fi
    if [[ $expect == prun:* ]]; then
        local n=${expect#prun:} last bad
        last=$(tail -n 1 "$out")
        if ! [[ $last =~ ^prun:\ ${n}\ succeeded\ in\ [0-9]+\.[0-9]+s$ ]]; then
            echo "engine.sh: '$label': unexpected summary line: '$last' (want 'prun: $n succeeded in ...')" >&2
            tail -n 20 "$err" >&2
            exit 1
        fi
        # Plain lines are "<RFC 3339 time> STATE name"; only STARTED and SUCCEEDED are expected.
        local ok_line='^([0-9T:.-]+Z )?(STARTED|SUCCEEDED) |^prun: '
        bad=$(grep -Ecv "$ok_line" "$out" || true)
        if ((bad != 0)); then
            echo "engine.sh: '$label': $bad unexpected output line(s), e.g.:" >&2
            grep -Ev "$ok_line" "$out" | head -n 5 >&2
        fi
        if [[ -s $err ]]; then
            echo "engine.sh: '$label' wrote to stderr:" >&2
            head -n 5 "$err" >&2
        fi
    fi
    SAMPLES[$idx]+="$((t1 - t0)) "
}

stats() { # "us us us ..." -> "median_s min_s"
    tr ' ' '\n' <<<"$1" | grep . | sort -n | awk '
        { a[NR] = $1 }
        END { m = (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2;
              printf "%.6f %.6f", m / 1e6, a[1] / 1e6 }'
}

bench_case() { # title; runs the entries added since the last case, round-robin
    local title=$1 i rep med min rate
    SAMPLES=()
    echo "case: $title ($REPS reps)" >&2
    for ((rep = 0; rep < REPS; rep++)); do
        for i in "${!L[@]}"; do run_once "$i" "${L[$i]}" "${E[$i]}" "${C[$i]}"; done
    done
    for i in "${!L[@]}"; do
        read -r med min <<<"$(stats "${SAMPLES[$i]}")"
        rate=$(awk -v n="${J[$i]}" -v t="$med" 'BEGIN { if (t > 0) printf "%.0f", n / t; else print "-" }')
        ROWS+=("| $title | ${L[$i]} | ${J[$i]} | $(printf %.3f "$med") | $(printf %.3f "$min") | $rate | \`${C[$i]//|/\\|}\` |")
    done
    L=() J=() E=() C=()
}

# Case 1
add "prun -j2 (proc loop)" $N_FLAT prun:$N_FLAT "$PRUN flat.rhai -j 2"
add "prun -j2 (proto + arg_choices)" $N_FLAT prun:$N_FLAT "$PRUN flat_proto.rhai -j 2"
add "prun -j2 -q (silent on success)" $N_FLAT quiet "$PRUN flat.rhai -j 2 -q"
[[ -n $SHM ]] && add "prun -j2 -q, logs on tmpfs" $N_FLAT quiet "XDG_STATE_HOME=$SHM $PRUN flat.rhai -j 2 -q"
add "make -j2" $N_FLAT - "make -s -j2 -f flat.mk all"
add "xargs -P2" $N_FLAT - "seq $N_FLAT | xargs -P2 -I{} /usr/bin/true"
add "xargs -P1 (sequential spawn baseline)" $N_FLAT - "seq $N_FLAT | xargs -P1 -I{} /usr/bin/true"
if have ninja; then
    add "ninja -j2 (sh -c per job)" $N_FLAT - "ninja -j2 -f flat.ninja"
else
    echo "ninja not installed: skipped" >&2
fi
if have parallel; then
    add "GNU parallel -j2" $N_FLAT - "seq $N_FLAT | parallel --will-cite -j2 /usr/bin/true"
else
    echo "GNU parallel not installed: skipped" >&2
fi
bench_case "1. $N_FLAT x /usr/bin/true, -j2"

# Case 2
add "prun -j2" $N_CHAIN prun:$N_CHAIN "$PRUN chain.rhai -j 2"
[[ -n $SHM ]] && add "prun -j2, logs on tmpfs" $N_CHAIN prun:$N_CHAIN "XDG_STATE_HOME=$SHM $PRUN chain.rhai -j 2"
add "make -j2" $N_CHAIN - "make -s -j2 -f chain.mk c$((N_CHAIN - 1))"
add "xargs -P1 (sequential spawn baseline)" $N_CHAIN - "seq $N_CHAIN | xargs -P1 -I{} /usr/bin/true"
have ninja && add "ninja -j2 (sh -c per job)" $N_CHAIN - "ninja -j2 -f chain.ninja"
bench_case "2. chain of $N_CHAIN, -j2"

# Case 3
add "prun (default -j)" $N_CLOS prun:$N_CLOS "$PRUN closures.rhai"
add "make -j$(nproc) (empty recipes, no spawn; reference)" $N_CLOS - "make -s -j$(nproc) -f closures.mk all"
bench_case "3. $N_CLOS closure procs"

# Case 4
START_ROWS=()
if [[ -z ${NO_HYPERFINE:-} ]] && have hyperfine && have jq; then
    echo "case: start-up (hyperfine)" >&2
    hyperfine -N --warmup 5 --runs "$N_START" --export-json "$TMP/start.json" \
        "$PRUN one.rhai" "/usr/bin/true" >"$TMP/hyperfine.out" 2>&1 \
        || { cat "$TMP/hyperfine.out" >&2; die "hyperfine failed"; }
    # hyperfine ignores the output; check one run of prun separately.
    SAMPLES=(); run_once 0 "prun one.rhai" "prun:1" "$PRUN one.rhai"
    while IFS=$'\t' read -r cmd med mean sd min; do
        START_ROWS+=("| 4. start-up + 1 proc | hyperfine ($N_START runs) | 1 | $med | $min | mean $mean ± $sd | \`$cmd\` |")
    done < <(jq -r '.results[] | [.command, (.median*1000|.*100|round/100|tostring) + " ms",
        (.mean*1000|.*100|round/100|tostring) + " ms", (.stddev*1000|.*100|round/100|tostring) + " ms",
        (.min*1000|.*100|round/100|tostring) + " ms"] | @tsv' "$TMP/start.json")
else
    echo "case: start-up (no hyperfine/jq, or NO_HYPERFINE: a loop of $N_START timed runs)" >&2
    for entry in "prun one.rhai|prun:1|$PRUN one.rhai" "/usr/bin/true|-|/usr/bin/true"; do
        IFS='|' read -r label expect cmd <<<"$entry"
        SAMPLES=()
        for ((r = 0; r < N_START; r++)); do run_once 0 "$label" "$expect" "$cmd"; done
        read -r med min <<<"$(stats "${SAMPLES[0]}")"
        START_ROWS+=("| 4. start-up + 1 proc | loop of $N_START (incl. a subshell fork) | 1 | $(awk -v t="$med" 'BEGIN{printf "%.2f ms", t*1000}') | $(awk -v t="$min" 'BEGIN{printf "%.2f ms", t*1000}') | - | \`$cmd\` |")
    done
fi

# Case 5: build once, check that prun's second run has nothing to do, then measure.
echo "case: no-op run of $N_NOOP up-to-date procs" >&2
"$PRUN" -q noop.rhai -j 2 >/dev/null || die "prun: the first run of noop.rhai failed"
last=$("$PRUN" noop.rhai -j 2 | tail -n 1)
[[ $last =~ ^prun:\ 0\ succeeded,\ $N_NOOP\ up\ to\ date ]] \
    || die "prun's second run of noop.rhai was not all up to date: $last"
add "prun -j2 -q (all up to date)" $N_NOOP quiet "$PRUN noop.rhai -j 2 -q"
if have ninja; then
    ninja -j2 -f noop.ninja >/dev/null || die "ninja: the first build of noop.ninja failed"
    add "ninja -j2 (no work to do)" $N_NOOP - "ninja -j2 -f noop.ninja"
else
    echo "ninja not installed: no reference for case 5" >&2
fi
bench_case "5. no-op, $N_NOOP up to date"

# Case 6: peak resident memory (load-independent), with GNU time.
RSS_ROWS=()
if [[ -x /usr/bin/time ]]; then
    echo "case: peak RSS of $N_RSS command procs" >&2
    peak() { # command... -> max RSS in KiB
        /usr/bin/time -f '%M' -o "$TMP/rss" "$@" >/dev/null 2>&1 || die "'$*' failed"
        tail -n 1 "$TMP/rss"
    }
    mib() { awk -v k="$1" 'BEGIN { printf "%.1f MiB", k / 1024 }'; }
    RSS_ROWS+=("| 6. peak RSS, $N_RSS command procs | prun -j2 -q | $(mib "$(peak "$PRUN" rss.rhai -j 2 -q)") | \`$PRUN rss.rhai -j 2 -q\` |")
    if have ninja; then
        RSS_ROWS+=("| 6. peak RSS, $N_RSS command procs | ninja -j2 | $(mib "$(peak ninja -j2 -f rss.ninja)") | \`ninja -j2 -f rss.ninja\` |")
    fi
else
    echo "/usr/bin/time (GNU time) not installed: case 6 skipped" >&2
fi

# Case 7: the larger run should cost about ten times the smaller one (per proc alike).
if [[ -z ${NO_LINEAR:-} ]]; then
    for n in "${N_LINEAR[@]}"; do
        add "prun (default -j), $n closure procs" "$n" "prun:$n" "$PRUN linear$n.rhai"
    done
    bench_case "7. linearity"
fi

# ---------------------------------------------------------------- report

echo
echo "## prun engine benchmark"
echo
echo "$(uname -srm), $(nproc) CPUs; prun $("$PRUN" --version 2>/dev/null | awk '{print $2}') ($(cd "$ROOT" && git rev-parse --short HEAD 2>/dev/null || echo '?')$(cd "$ROOT" && git diff --quiet HEAD -- src 2>/dev/null || echo '+dirty')); $REPS reps per case, median reported; commands run in \`$TMP\`; XDG_STATE_HOME=\`$XDG_STATE_HOME\` ($(df -T "$XDG_STATE_HOME" | awk 'NR == 2 { print $2 }'))."
echo
echo "| case | tool | jobs | median wall (s) | min (s) | jobs/s (median) | command |"
echo "|---|---|---:|---:|---:|---:|---|"
printf '%s\n' "${ROWS[@]}"
echo
echo "| case | tool | jobs | median | min | mean ± sd | command |"
echo "|---|---|---:|---:|---:|---:|---|"
printf '%s\n' "${START_ROWS[@]}"
echo
if ((${#RSS_ROWS[@]} > 0)); then
    echo "| case | tool | peak RSS | command |"
    echo "|---|---|---:|---|"
    printf '%s\n' "${RSS_ROWS[@]}"
    echo
fi
echo "prun = \`$PRUN\`. make runs a single-word recipe by exec without a shell; ninja always"
echo "uses \`/bin/sh -c\`; GNU parallel runs each job through a shell too. On a shared or"
echo "busy machine trust the min column more than the median. Case 4 runs prun $N_START+ times"
echo "against one state dir, so it includes prun's pruning of old run-log directories."
echo "Case 7 is linear when the jobs/s column is about the same for both sizes."

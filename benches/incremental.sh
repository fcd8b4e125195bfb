#!/usr/bin/env bash
# No-op incremental runs: N procs (default 10,000), each with one input and one output,
# all up to date. prun against ninja and make on an equivalent generated tree, measured
# side by side (hyperfine when installed, else a timed loop).
# Usage: benches/incremental.sh        (N=10000 RUNS=10)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
N=${N:-10000}
RUNS=${RUNS:-10}
if [ -z "${SKIP_BUILD:-}" ]; then
    (cd "$ROOT" && cargo build --release --quiet)
fi
PRUN="$ROOT/target/$(rustc --print host-tuple)/release/prun"
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
export XDG_STATE_HOME="$TMP/state"
cd "$TMP"
mkdir -p in out-prun out-make out-ninja
for ((i = 0; i < N; i++)); do echo "$i" > "in/$i.txt"; done

cat > noop.rhai <<RHAI
for i in 0..$N {
    proc(\`c\${i}\`, #{
        inputs: [\`in/\${i}.txt\`],
        outputs: [\`out-prun/\${i}.txt\`],
        cmd: ["cp", \`in/\${i}.txt\`, \`out-prun/\${i}.txt\`],
    });
}
run("c*");
RHAI

{
    printf 'all:'
    for ((i = 0; i < N; i++)); do printf ' out-make/%d.txt' "$i"; done
    printf '\n\nout-make/%%.txt: in/%%.txt\n\tcp $< $@\n'
} > Makefile

{
    printf 'rule cp\n  command = cp $in $out\n\n'
    for ((i = 0; i < N; i++)); do printf 'build out-ninja/%d.txt: cp in/%d.txt\n' "$i" "$i"; done
} > build.ninja

# Build everything once; the measured runs have nothing to do.
"$PRUN" -q noop.rhai >/dev/null
make -s -j2 all
have_ninja=$(command -v ninja || true)
[ -n "$have_ninja" ] && ninja -j2 >/dev/null
"$PRUN" noop.rhai | tail -1 | grep -q "0 succeeded, $N up to date" \
    || { echo "prun's second run was not all up to date" >&2; exit 1; }

echo "$N procs, each one input and one output, all up to date; $(nproc) CPUs"
if command -v hyperfine >/dev/null; then
    cmds=("$PRUN -q noop.rhai" "make -s -j2 all")
    [ -n "$have_ninja" ] && cmds+=("ninja -j2")
    hyperfine -N --warmup 2 --runs "$RUNS" --export-markdown "$TMP/table.md" "${cmds[@]}" >/dev/null 2>&1
    cat "$TMP/table.md"
else
    for cmd in "$PRUN -q noop.rhai" "make -s -j2 all" ${have_ninja:+"ninja -j2"}; do
        t0=$(date +%s%N)
        for ((r = 0; r < RUNS; r++)); do $cmd >/dev/null; done
        t1=$(date +%s%N)
        echo "$cmd: $(( (t1 - t0) / RUNS / 1000000 )) ms per run"
    done
fi

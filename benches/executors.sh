#!/usr/bin/env bash
# Overhead per command of the ssh and slurm executors against the local one: a closure
# proc runs `true` N times in a row (the latency of one command), and N command-body
# procs `true` run at once (the throughput, with 8 slots on each executor and -j 8).
#
#   benches/executors.sh               # build release prun, run everything, print markdown
#   N=100 benches/executors.sh         # commands per case (default 50)
#   SKIP_BUILD=1 benches/executors.sh  # use the existing release build
#
# Needs root, openssh-server (a loopback sshd on a free port is started here and stopped
# at the end) and slurm-wlm with munge (.ci/slurm-up starts a single-node Slurm if none
# answers). A case whose tool is missing is reported as skipped.
set -euo pipefail

N=${N:-50}
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PRUN="$ROOT/target/$(rustc --print host-tuple)/release/prun"

die() { echo "executors.sh: $*" >&2; exit 1; }

if [[ -z ${SKIP_BUILD:-} ]]; then
    echo "building release prun..." >&2
    (cd "$ROOT" && cargo build --release --quiet) || die "cargo build --release failed"
fi
[[ -x $PRUN ]] || die "no binary at $PRUN"

TMP=$(mktemp -d "${TMPDIR:-/tmp}/prun-bench-exec.XXXXXX")
export XDG_STATE_HOME=$TMP/state
SSHD_PID=
cleanup() {
    [[ -n $SSHD_PID ]] && kill "$SSHD_PID" 2>/dev/null
    rm -rf "$TMP"
}
trap cleanup EXIT

executors=""
if [[ -x /usr/sbin/sshd ]]; then
    ssh-keygen -q -t ed25519 -N '' -f "$TMP/host_key"
    ssh-keygen -q -t ed25519 -N '' -f "$TMP/client_key"
    mkdir -p /run/sshd
    PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    cat > "$TMP/sshd_config" <<CONF
Port $PORT
ListenAddress 127.0.0.1
HostKey $TMP/host_key
AuthorizedKeysFile $TMP/client_key.pub
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
UsePAM no
StrictModes no
PidFile none
MaxSessions 100
MaxStartups 100
CONF
    /usr/sbin/sshd -D -f "$TMP/sshd_config" -E "$TMP/sshd.log" &
    SSHD_PID=$!
    until (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; do sleep 0.05; done
    executors+="farm: #{ kind: \"ssh\", hosts: [\"127.0.0.1:8\"], port: $PORT, identity: \"$TMP/client_key\",
        args: [\"-o\", \"StrictHostKeyChecking=no\", \"-o\", \"UserKnownHostsFile=/dev/null\", \"-o\", \"LogLevel=ERROR\"] },"
fi
if command -v srun >/dev/null && "$ROOT/.ci/slurm-up"; then
    executors+="hpc: #{ kind: \"slurm\", max_jobs: 8 },"
fi

# Runs the script "$2" as case "$1"; prints the wall time in seconds.
timed() {
    local dir="$TMP/$1"
    mkdir -p "$dir"
    printf '%s\n' "$2" > "$dir/main.rhai"
    local t0 t1
    t0=$(date +%s%N)
    (cd "$dir" && "$PRUN" -j 8 --no-db -q main.rhai) || die "case $1 failed"
    t1=$(date +%s%N)
    awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", (b - a) / 1e9 }'
}

echo "| executor | $N commands in a row | per command | $N procs at once | per proc |"
echo "|---|---|---|---|---|"
for ex in local farm hpc; do
    if [[ $ex != local && $executors != *"$ex:"* ]]; then
        echo "| $ex | skipped (not available) | | | |"
        continue
    fi
    decl="set_options(#{ executors: #{ $executors } });"
    on=""
    [[ $ex != local ]] && on="executor: \"$ex\""
    seq=$(timed "$ex-seq" "$decl
proc(\"seq\", #{ $on }, |ctx| { for i in 0..$N { exec([\"true\"]); } });
run(\"seq\");")
    par=$(timed "$ex-par" "$decl
for i in 0..$N { proc(\`p\${i}\`, #{ $on${on:+,} cmd: [\"true\"] }); }
run(\"p*\");")
    per() { awk -v t="$1" -v n="$N" 'BEGIN { printf "%.1f", t * 1000 / n }'; }
    printf '| %s | %ss | %s ms | %ss | %s ms |\n' "$ex" "$seq" "$(per "$seq")" "$par" "$(per "$par")"
done

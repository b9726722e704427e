# shellcheck shell=bash
# shellcheck disable=SC2034  # the options are read by the scripts that source this file
# Shared by compare.sh, limit.sh and journal-cost.sh (sourced): the options they take, the
# server binary, a network namespace to run servers in, starting and stopping them, and a run of
# every workload against two servers, alternating which goes first.

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
RESULTS="$ROOT/Benchmarks/results"
DURATION=10
WARMUP=1
WORKLOADS=all
KEEP=0
# More options of every `swiftnfsd bench` that bench_run starts (e.g. -c 4 --server-pid PID);
# a caller may set it with `local` around one call.
BENCH_OPTIONS=()

# take_common_option ARGS...: applies the option in $1 (and its value in $2); sets TOOK to the
# number of arguments used. Anything else is an error.
take_common_option() {
    TOOK=1
    case "$1" in
        --quick) DURATION=3; WARMUP=0.5 ;;
        --duration) DURATION="$2"; TOOK=2 ;;
        --warmup) WARMUP="$2"; TOOK=2 ;;
        --workloads) WORKLOADS="$2"; TOOK=2 ;;
        --keep) KEEP=1 ;;
        -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) echo "$(basename "$0"): unknown option $1 (try --help)" >&2; exit 64 ;;
    esac
}

# parse_options ARGS...: every option, each taken by the script's take_own_option if it defines
# one (returning 0 with TOOK set), else by take_common_option.
parse_options() {
    while [ $# -gt 0 ]; do
        if ! { declare -F take_own_option >/dev/null && take_own_option "$@"; }; then take_common_option "$@"; fi
        shift "$TOOK"
    done
}

# swiftnfsd_binary ROOT: sets BIN to $SWIFTNFSD_BIN, or builds the release binary.
swiftnfsd_binary() {
    if [ -n "${SWIFTNFSD_BIN:-}" ]; then
        BIN="$SWIFTNFSD_BIN"
        log "using $BIN (SWIFTNFSD_BIN), not building"
    else
        log "building swiftnfsd (release)"
        (cd "$1" && swift build -c release --product swiftnfsd >&2)
        BIN="$(cd "$1" && swift build -c release --show-bin-path)/swiftnfsd"
    fi
}

# bench_run LABEL NFS_PORT MOUNT_PORT EXPORT WORKLOAD [COMMAND PREFIX...]: one workload at 1
# and 16 in flight, appended to $WORK/LABEL.jsonl.
bench_run() {
    local label=$1 nfs_port=$2 mount_port=$3 export=$4 workload=$5 status=0
    shift 5
    log "$workload on $label"
    "$@" "$BIN" bench --server 127.0.0.1 --export "$export" --nfs-port "$nfs_port" --mount-port "$mount_port" \
        --workload "$workload" --inflight 1 --inflight 16 --duration "$DURATION" --warmup "$WARMUP" \
        --label "$label" --json "${BENCH_OPTIONS[@]}" >>"$WORK/$label.jsonl" 2>>"$WORK/bench-$label.log" || status=$?
    # 2: the runs finished but some operations failed; they are in the results and the table.
    if [ "$status" != 0 ] && [ "$status" != 2 ]; then
        log "bench of $workload on $label failed (exit $status):"
        tail -n 5 "$WORK/bench-$label.log" >&2
        exit 1
    fi
}

# run_alternating FIRST SECOND: calls `FIRST WORKLOAD` and `SECOND WORKLOAD` for every workload,
# swapping the order each time so neither always runs on a warmer (or hotter) machine.
run_alternating() {
    local i=0 w list
    if [ "$WORKLOADS" = all ]; then WORKLOADS="$("$BIN" bench workloads --names | paste -sd, -)"; fi
    IFS=, read -r -a list <<<"$WORKLOADS"
    for w in "${list[@]}"; do
        if [ $((i % 2)) = 0 ]; then "$1" "$w"; "$2" "$w"; else "$2" "$w"; "$1" "$w"; fi
        i=$((i + 1))
    done
}

# described_commit ROOT: the commit measured, and whether the tree had changes on top; with
# SWIFTNFSD_BIN, that the binary measured is that one, not one built from the tree.
described_commit() {
    local c
    c="$(git -C "$1" rev-parse --short HEAD 2>/dev/null || echo unknown)"
    git -C "$1" diff --quiet HEAD 2>/dev/null || c="$c + uncommitted changes"
    [ -z "${SWIFTNFSD_BIN:-}" ] || c="$c (the tree's; the binary measured is $SWIFTNFSD_BIN)"
    echo "$c"
}

# machine_description: cores, CPU, memory and kernel, for the results' header.
machine_description() {
    echo "$(nproc) cores, $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1), $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), Linux $(uname -r)"
}

# stop PID [NAME]: SIGTERM, then SIGKILL after 15 s.
stop() {
    local pid="$1"
    [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 0
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 150); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.1; done
    log "${2:-$pid} did not stop within 15 s of SIGTERM; killing it"
    kill -KILL "$pid" 2>/dev/null || true
}

# namespace_up NAME: a network namespace where loopback is the only interface, so that no server
# is reachable from outside and no port of the host (111 above all, which the project's tests
# use) is taken. Sets NS; in_ns runs a command in it; namespace_down removes it.
namespace_up() {
    NS="$1"
    ip netns add "$NS"
    ip netns exec "$NS" ip link set lo up
}
in_ns() { ip netns exec "$NS" "$@"; }
namespace_down() { [ -z "${NS:-}" ] || ip netns del "$NS" 2>/dev/null || true; }

# start_swiftnfsd DIR PORT: `swiftnfsd serve` in the namespace, plain mode, exporting DIR/export
# (state in DIR/state, log in DIR/server.log) on 127.0.0.1:PORT for NFS and MOUNT. Sets SWIFT_PID:
# ip execs swiftnfsd, so it is the server's own pid.
# export_arguments DIR: sets EXPORT_ARGS to serve DIR/export read-write to everyone, root not
# squashed. ASYNC=1 makes the export `async` (changes answered before they are on disk, as
# Ganesha's VFS backend answers them); the default `sync` syncs each change first, as knfsd does.
export_arguments() {
    EXPORT_ARGS=(--export "$1/export")
    if [ "${ASYNC:-0}" = 1 ]; then
        echo "$1/export *(rw,async,no_root_squash,insecure)" >"$1/exports"
        EXPORT_ARGS=(--exports "$1/exports")
    fi
}

start_swiftnfsd() {
    mkdir -p "$1/export" "$1/state"
    export_arguments "$1"
    log "starting SwiftNFS on 127.0.0.1:$2"
    ip netns exec "$NS" "$BIN" serve "${EXPORT_ARGS[@]}" --listen 127.0.0.1 --nfs-port "$2" \
        --portmap-port 0 --state-dir "$1/state" >"$1/server.log" 2>&1 &
    SWIFT_PID=$!
}

# wait_ready NAME PID PORT: until the port takes connections in the namespace (rpcinfo -n would
# still ask a portmapper); fails if the process exits or 30 s pass.
wait_ready() {
    for _ in $(seq 300); do
        kill -0 "$2" 2>/dev/null || { log "$1 exited while starting"; return 1; }
        in_ns timeout 1 bash -c "exec 3<>/dev/tcp/127.0.0.1/$3" 2>/dev/null && return 0
        sleep 0.1
    done
    log "$1 did not answer on port $3 within 30 s"
    return 1
}

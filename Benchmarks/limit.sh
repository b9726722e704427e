#!/usr/bin/env bash
# SwiftNFS against the limit of this machine, in one command (issue 16).
#
# The limit is Benchmarks/limit/limit-responder.c: a do-nothing ONC RPC responder that answers
# the bench's calls from memory with one event loop per core. What it reaches is what the bench
# client, loopback TCP and the machine allow; SwiftNFS's share of that is the ratio printed here.
#
# Builds the responder with gcc, starts it and `swiftnfsd serve` (plain mode, an empty export
# under /tmp) in a network namespace of their own, runs the workloads of `swiftnfsd bench` with
# 1 and 4 connections (1, 2, 4 and 8 on more than 2 cores) at 1 and 16 requests in flight per
# connection against each, alternating which goes first, and prints:
#   - SwiftNFS / limit ops/s (and p99) per workload, connection count and depth; the goal is
#     0.6 for null, getattr and read4k, 0.5 for write4k-unstable;
#   - GETATTR's scaling, ops/s with N connections over 1 connection, of each (goal for
#     SwiftNFS: 1.4 with 4 connections on 2 cores);
#   - the server CPU of each run: cores used, and the busiest thread's share.
# Writes Benchmarks/results/limit.md and the raw JSON lines beside it (limit-swiftnfs.jsonl,
# limit-responder.jsonl).
#
# Usage: Benchmarks/limit.sh [--quick] [--duration SECONDS] [--warmup SECONDS]
#                            [--workloads a,b,...] [--connections 1,4] [--keep]
#   --quick        3 s per run instead of 10
#   --workloads    default null,getattr,read4k,write4k-unstable; the responder also answers
#                  lookup, access, write4k-filesync, read1m, write1m-* and create-remove
#   --connections  connection counts, default 1,4 (1,2,4,8 on more than 2 cores)
#   --keep         keep the servers' directories and logs (printed at the end)
# Needs root (network namespace), gcc and jq. SWIFTNFSD_BIN=PATH uses that binary instead of building.
set -euo pipefail

# shellcheck source=Benchmarks/lib.sh
. "$(dirname "$0")/lib.sh"
WORKLOADS=null,getattr,read4k,write4k-unstable
if [ "$(nproc)" -gt 2 ]; then CONNECTIONS=1,2,4,8; else CONNECTIONS=1,4; fi
take_own_option() { [ "$1" = --connections ] && CONNECTIONS="$2" && TOOK=2; }
parse_options "$@"

SWIFT_PORT=20490      # NFS and MOUNT
LIMIT_PORT=20495      # every program
log() { echo "limit: $*" >&2; }

[ "$(id -u)" = 0 ] || { echo "limit.sh: run as root (network namespace)" >&2; exit 1; }
for tool in gcc jq; do
    command -v "$tool" >/dev/null || { echo "limit.sh: needs $tool (apt-get install $tool)" >&2; exit 1; }
done

swiftnfsd_binary "$ROOT"
commit="$(described_commit "$ROOT")"

WORK="$(mktemp -d /tmp/swiftnfs-limit.XXXXXX)"
SWIFT_PID=""
LIMIT_PID=""
cleanup() {
    stop "$SWIFT_PID" swiftnfsd
    stop "$LIMIT_PID" limit-responder
    namespace_down
    if [ "$KEEP" = 1 ]; then log "kept $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

log "building the responder"
gcc -O2 -Wall -Wextra -Werror -pthread -o "$WORK/limit-responder" "$ROOT/Benchmarks/limit/limit-responder.c"

namespace_up "swiftnfs-limit-$$"
start_swiftnfsd "$WORK/swiftnfs" "$SWIFT_PORT"
log "starting the limit responder on 127.0.0.1:$LIMIT_PORT"
# The bench's file sizes are its defaults, which the responder's are too (64 and 128 MiB).
ip netns exec "$NS" "$WORK/limit-responder" -p "$LIMIT_PORT" >"$WORK/limit-responder.log" 2>&1 &
LIMIT_PID=$!
wait_ready swiftnfsd "$SWIFT_PID" "$SWIFT_PORT" || { tail -n 20 "$WORK/swiftnfs/server.log" >&2; exit 1; }
wait_ready limit-responder "$LIMIT_PID" "$LIMIT_PORT" || { cat "$WORK/limit-responder.log" >&2; exit 1; }

# The responder accepts any export path; SwiftNFS's is its directory.
bench_swiftnfs() {
    local BENCH_OPTIONS=(-c "$connections" --server-pid "$SWIFT_PID")
    bench_run swiftnfs "$SWIFT_PORT" "$SWIFT_PORT" "$WORK/swiftnfs/export" "$1" in_ns
}
bench_limit() {
    local BENCH_OPTIONS=(-c "$connections" --server-pid "$LIMIT_PID")
    bench_run limit "$LIMIT_PORT" "$LIMIT_PORT" /limit "$1" in_ns
}
started=$(date +%s)
load_before="$(cut -d' ' -f1-3 /proc/loadavg)"
IFS=, read -r -a counts <<<"$CONNECTIONS"
workloads="$WORKLOADS"
for connections in "${counts[@]}"; do
    WORKLOADS="$workloads"  # run_alternating expands "all" in place
    run_alternating bench_swiftnfs bench_limit
done
elapsed=$(( $(date +%s) - started ))
load_after="$(cut -d' ' -f1-3 /proc/loadavg)"

mkdir -p "$RESULTS"
cp "$WORK/swiftnfs.jsonl" "$RESULTS/limit-swiftnfs.jsonl"
cp "$WORK/limit.jsonl" "$RESULTS/limit-responder.jsonl"

# In jq: a number with two decimals. (jq syntax in single quotes, not the shell's)
# shellcheck disable=SC2016
TWO_DECIMALS='def two: (. * 100 | round) as $h | "\($h / 100 | floor).\($h % 100 | tostring | if length < 2 then "0" + . else . end)";'

# goals: markdown rows of SwiftNFS / limit at 16 in flight, against issue 16's goal.
goals() {
    jq -rs "$TWO_DECIMALS"'
        def goal: if .workload == "write4k-unstable" then 0.5
                  elif (.workload | IN("null", "getattr", "read4k")) then 0.6 else null end;
        (map(select(.label == "limit")) | map({key: "\(.workload) \(.connections)x\(.inflight)", value: .ops_per_s})
            | from_entries) as $limit
        | .[] | select(.label == "swiftnfs" and .inflight == 16)
        | ($limit["\(.workload) \(.connections)x\(.inflight)"] // 0) as $l
        | (if $l > 0 then .ops_per_s / $l else 0 end) as $r
        | "| \(.workload) | \(.connections) | \($r | two) | \(goal // "-") | \(if goal == null then "-" elif $r >= goal then "yes" else "no" end) |"
    ' "$RESULTS/limit-swiftnfs.jsonl" "$RESULTS/limit-responder.jsonl"
}

# scaling: markdown rows of GETATTR ops/s with N connections over 1 connection, per server and depth.
scaling() {
    jq -rs "$TWO_DECIMALS"'
        map(select(.workload == "getattr")) | group_by(.label, .inflight)[]
        | (map(select(.connections == 1))[0].ops_per_s // 0) as $one
        | .[] | select(.connections > 1)
        | "| \(.label) | \(.inflight) | \(.connections) | \(if $one > 0 then .ops_per_s / $one | two else "-" end) |"
    ' "$RESULTS/limit-swiftnfs.jsonl" "$RESULTS/limit-responder.jsonl"
}

# cpu: markdown rows of each run's server CPU: cores used and the busiest thread's share.
cpu() {
    jq -rs "$TWO_DECIMALS"'
        .[] | select(.server_threads != null and (.server_threads | length) > 0)
        | (.server_threads | map(.cpu_s) | add) as $total
        | "| \(.label) | \(.workload) | \(.connections)x\(.inflight) | \($total / .seconds | two) | \(if $total > 0 then .server_threads[0].cpu_s / $total * 100 | round else 0 end)% \(.server_threads[0].name) | \(.server_threads | map(select(.cpu_s >= 0.01)) | length) |"
    ' "$RESULTS/limit-swiftnfs.jsonl" "$RESULTS/limit-responder.jsonl"
}

report() {
    echo "# SwiftNFS against the do-nothing limit"
    echo
    echo "Made by \`Benchmarks/limit.sh\` on $(date -u '+%Y-%m-%d %H:%M UTC') in ${elapsed} s of runs."
    echo
    echo "- machine: $(machine_description)"
    echo "- load average (1, 5, 15 min) before the runs: $load_before; after: $load_after (other work on the machine shares its $(nproc) cores)"
    echo "- SwiftNFS: commit $commit, release build, \`serve --export DIR --portmap-port 0\` on $(df -T "$WORK" | awk 'NR==2 {print $2}')"
    echo "- limit: \`Benchmarks/limit/limit-responder.c\` (gcc -O2), $(nproc) event loops, answers from memory"
    echo "- client: \`swiftnfsd bench\`, ${DURATION} s per run after ${WARMUP} s of warm-up, connections $CONNECTIONS, client and servers on one host over loopback"
    echo
    echo "## SwiftNFS / limit, 16 in flight per connection (issue 16's goal)"
    echo
    echo "| workload | connections | SwiftNFS / limit | goal | met |"
    echo "| :-- | --: | --: | --: | :-- |"
    goals
    echo
    echo "## GETATTR: N connections over 1 connection (goal for SwiftNFS: 1.4 with 4 on 2 cores)"
    echo
    echo "| server | in flight | connections | ops/s over 1 connection |"
    echo "| :-- | --: | --: | --: |"
    scaling
    echo
    echo "## Every run"
    echo
    "$BIN" bench compare --candidate "$RESULTS/limit-swiftnfs.jsonl" --baseline "$RESULTS/limit-responder.jsonl" --markdown --no-goal
    echo
    echo "## Server CPU in the measured time"
    echo
    echo "| server | workload | conn x infl | cores used | busiest thread | threads used (>= 10 ms) |"
    echo "| :-- | :-- | :-- | --: | :-- | --: |"
    cpu
}
report >"$RESULTS/limit.md"
echo
cat "$RESULTS/limit.md"
log "wrote $RESULTS/limit.md, limit-swiftnfs.jsonl, limit-responder.jsonl"

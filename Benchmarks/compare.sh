#!/usr/bin/env bash
# SwiftNFS against NFS-Ganesha on this machine, in one command.
#
# Builds swiftnfsd (release), installs NFS-Ganesha if it is missing, starts both servers with
# equivalent exports of two empty directories on the same file system, runs every workload of
# `swiftnfsd bench` against each, alternating which server goes first, at 1 and 16 requests in
# flight, and prints each workload's ratios (ops/s and p99, SwiftNFS over Ganesha). Writes
# Benchmarks/results/latest.md (the table and the machine it came from), latest.svg (latency
# distributions) and the raw JSON lines beside them.
#
# Everything runs in a network namespace of its own, where loopback is the only interface:
# no server is reachable from outside, and no port of the host (111 above all, which the
# project's tests use) is taken. Ganesha registers with an rpcbind started for it in that
# namespace, with a private /run (rpcbind's socket and lock are files there); the bench gives
# both servers' ports explicitly, so nothing else asks the portmapper.
#
# Usage: Benchmarks/compare.sh [--quick] [--duration SECONDS] [--warmup SECONDS]
#                              [--workloads a,b,...] [--async] [--keep]
#   --quick      3 s per run instead of 10 (a full comparison in about 4 minutes instead of 11)
#   --async      SwiftNFS's export `async`: changes answered before they are on disk, the
#                promise Ganesha's VFS backend makes (the default `sync` export syncs each
#                namespace change first, as knfsd does: CREATE and REMOVE then pay a disk flush)
#   --keep       keep the servers' directories and logs (printed at the end)
# Needs root (network namespace, apt-get). SWIFTNFSD_BIN=PATH uses that binary instead of building.
set -euo pipefail

# shellcheck source=Benchmarks/lib.sh
. "$(dirname "$0")/lib.sh"
ASYNC=0
take_own_option() { [ "$1" = --async ] && ASYNC=1 && TOOK=1; }
parse_options "$@"

SWIFT_PORT=20490      # NFS and MOUNT
GANESHA_PORT=20491    # NFS
GANESHA_MOUNT_PORT=20492
log() { echo "compare: $*" >&2; }

[ "$(id -u)" = 0 ] || { echo "compare.sh: run as root (network namespace, apt-get)" >&2; exit 1; }

swiftnfsd_binary "$ROOT"
# Before the run writes its results into the tree.
commit="$(described_commit "$ROOT")"

missing=()
for p in nfs-ganesha nfs-ganesha-vfs rpcbind iproute2 util-linux; do
    dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    log "installing ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
fi

WORK="$(mktemp -d /tmp/swiftnfs-compare.XXXXXX)"
SWIFT_PID=""
GANESHA_PID=""

cleanup() {
    stop "$SWIFT_PID" swiftnfsd
    stop "$GANESHA_PID" ganesha.nfsd
    [ -s "$WORK/rpcbind.pid" ] && stop "$(cat "$WORK/rpcbind.pid")" rpcbind
    namespace_down
    if [ "$KEEP" = 1 ]; then log "kept $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

namespace_up "swiftnfs-compare-$$"
mkdir -p "$WORK/ganesha/export" "$WORK/ganesha/recovery"
start_swiftnfsd "$WORK/swiftnfs" "$SWIFT_PORT"

# The same export as `swiftnfsd serve --export`: read-write, root not squashed, any source
# port, NFSv3 over TCP, 1 MiB transfers. No Bind_addr: Ganesha resolves it with AI_ADDRCONFIG,
# which finds no address where loopback is the only interface; the wildcard address is
# loopback only in this namespace anyway.
cat >"$WORK/ganesha/ganesha.conf" <<EOF
NFS_CORE_PARAM {
    Protocols = 3;
    NFS_Port = $GANESHA_PORT;
    MNT_Port = $GANESHA_MOUNT_PORT;
    Enable_NLM = false;
    Enable_RQUOTA = false;
    Enable_UDP = false;
}
NFSV4 {
    Graceless = true;
    RecoveryRoot = $WORK/ganesha/recovery;
}
LOG {
    Default_Log_Level = EVENT;
}
EXPORT {
    Export_Id = 1;
    Path = $WORK/ganesha/export;
    Pseudo = $WORK/ganesha/export;
    Protocols = 3;
    Transports = TCP;
    Access_Type = RW;
    Squash = No_Root_Squash;
    SecType = sys;
    MaxRead = 1048576;
    MaxWrite = 1048576;
    FSAL {
        Name = VFS;
    }
}
EOF

# rpcbind and Ganesha share a private /run. ip, unshare and the shell each exec the next, so
# $! is Ganesha's pid (likewise for swiftnfsd: start_swiftnfsd).
cat >"$WORK/ganesha/start.sh" <<EOF
set -e
mount -t tmpfs tmpfs /run
rpcbind -f -w &
echo \$! >"$WORK/rpcbind.pid"
for _ in \$(seq 100); do [ -S /run/rpcbind.sock ] && break; sleep 0.1; done
exec ganesha.nfsd -F -f "$WORK/ganesha/ganesha.conf" -L "$WORK/ganesha/ganesha.log" -p "$WORK/ganesha/ganesha.pid" -N NIV_EVENT
EOF
log "starting NFS-Ganesha $(dpkg-query -W -f '${Version}' nfs-ganesha) on 127.0.0.1:$GANESHA_PORT (MOUNT $GANESHA_MOUNT_PORT)"
ip netns exec "$NS" unshare --mount --propagation private bash "$WORK/ganesha/start.sh" >"$WORK/ganesha/stdout.log" 2>&1 &
GANESHA_PID=$!

wait_ready swiftnfsd "$SWIFT_PID" "$SWIFT_PORT" || { tail -n 20 "$WORK/swiftnfs/server.log" >&2; exit 1; }
if ! { wait_ready ganesha.nfsd "$GANESHA_PID" "$GANESHA_PORT" \
       && wait_ready ganesha.nfsd "$GANESHA_PID" "$GANESHA_MOUNT_PORT"; }; then
    tail -n 20 "$WORK/ganesha/ganesha.log" "$WORK/ganesha/stdout.log" >&2 || true
    exit 1
fi

bench_swiftnfs() { bench_run swiftnfs "$SWIFT_PORT" "$SWIFT_PORT" "$WORK/swiftnfs/export" "$1" in_ns; }
bench_ganesha() { bench_run ganesha "$GANESHA_PORT" "$GANESHA_MOUNT_PORT" "$WORK/ganesha/export" "$1" in_ns; }
started=$(date +%s)
load_before="$(cut -d' ' -f1-3 /proc/loadavg)"
run_alternating bench_swiftnfs bench_ganesha
elapsed=$(( $(date +%s) - started ))
load_after="$(cut -d' ' -f1-3 /proc/loadavg)"

mkdir -p "$RESULTS"
cp "$WORK/swiftnfs.jsonl" "$WORK/ganesha.jsonl" "$RESULTS/"
"$BIN" bench chart "$RESULTS/swiftnfs.jsonl" "$RESULTS/ganesha.jsonl" --svg "$RESULTS/latest.svg" \
    --title "SwiftNFS and NFS-Ganesha: latency by percentile (lower is better)"

echo
echo "SwiftNFS over NFS-Ganesha (goal: ops ratio >= 1.5 and p99 ratio <= 1.0)"
"$BIN" bench compare --candidate "$RESULTS/swiftnfs.jsonl" --baseline "$RESULTS/ganesha.jsonl"

{
    echo "# SwiftNFS and NFS-Ganesha, side by side"
    echo
    echo "Made by \`Benchmarks/compare.sh\` on $(date -u '+%Y-%m-%d %H:%M UTC') in ${elapsed} s of runs."
    echo
    echo "- machine: $(machine_description)"
    echo "- load average (1, 5, 15 min) before the runs: $load_before; after: $load_after (other work on the machine shares its $(nproc) cores)"
    echo "- file system of both exports: $(df -T "$WORK" | awk 'NR==2 {print $2}') ($(dirname "$WORK"))"
    if [ "$ASYNC" = 1 ]; then how="an \`async\` export (\`--async\`)"; else how="\`serve --export DIR --portmap-port 0\` (a \`sync\` export)"; fi
    echo "- SwiftNFS: commit $commit, release build, $how"
    echo "- NFS-Ganesha: $(dpkg-query -W -f '${Version}' nfs-ganesha), FSAL VFS, NFSv3 over TCP, no root squash, MaxRead/MaxWrite 1 MiB"
    echo "- client: \`swiftnfsd bench\`, 1 connection, ${DURATION} s per run after ${WARMUP} s of warm-up, client and servers on one host over loopback"
    echo "- ratios are SwiftNFS / Ganesha; the goal is ops ratio >= 1.5 and p99 ratio <= 1.0"
    echo
    "$BIN" bench compare --candidate "$RESULTS/swiftnfs.jsonl" --baseline "$RESULTS/ganesha.jsonl" --markdown
    echo
    echo "Latency distributions: [latest.svg](latest.svg). Raw results: swiftnfs.jsonl, ganesha.jsonl."
} >"$RESULTS/latest.md"
log "wrote $RESULTS/latest.md, latest.svg, swiftnfs.jsonl, ganesha.jsonl"

#!/usr/bin/env bash
# What the write-back journal costs: the same workloads against SwiftNFS without and with a
# durable directory, as ratios (with journal over without).
#
# Starts two swiftnfsd servers on loopback, exporting two empty directories side by side: one
# plain (`serve --export DIR`), one with `--durable-dir`. Runs every workload of
# `swiftnfsd bench` against each, alternating which goes first, at 1 and 16 requests in flight,
# prints the ratios, and writes Benchmarks/results/journal-cost.md and the raw JSON lines.
#
# Usage: Benchmarks/journal-cost.sh [--quick] [--duration SECONDS] [--warmup SECONDS]
#                                   [--workloads a,b,...] [--durable-dir DIR] [--exports-dir DIR]
#                                   [--async] [--keep]
#   --quick        3 s per run instead of 10
#   --durable-dir  where the journal goes (default: a directory beside the exports, on the same
#                  disk). Give an EBS mount to measure what a deployment pays.
#   --exports-dir  where the two exports (and the servers' state) go (default: /var/tmp). Give
#                  the instance store's mount, with --durable-dir on EBS, to measure a deployment.
#   --async        both exports `async` (changes answered before they are on disk; the default
#                  `sync` answers them once they are, through the journal or fsyncs)
#   --keep         keep the servers' directories and logs
# SWIFTNFSD_BIN=PATH uses that binary instead of building one (release).
set -euo pipefail

# shellcheck source=Benchmarks/lib.sh
. "$(dirname "$0")/lib.sh"
DURABLE=""
EXPORTS=/var/tmp
ASYNC=0
take_own_option() {
    case "$1" in
        --durable-dir) DURABLE="$2"; TOOK=2 ;;
        --exports-dir) EXPORTS="$2"; TOOK=2 ;;
        --async) ASYNC=1; TOOK=1 ;;
        *) return 1 ;;
    esac
}
parse_options "$@"

PLAIN_PORT=20493
JOURNAL_PORT=20494
log() { echo "journal-cost: $*" >&2; }

swiftnfsd_binary "$ROOT"
# Before the run writes its results into the tree.
commit="$(described_commit "$ROOT")"

WORK="$(mktemp -d "$EXPORTS/swiftnfs-journal-cost.XXXXXX")"
[ -n "$DURABLE" ] || DURABLE="$WORK/durable"
mkdir -p "$WORK/plain/export" "$WORK/plain/state" "$WORK/journal/export" "$WORK/journal/state" "$DURABLE"
PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
    if [ "$KEEP" = 1 ]; then log "kept $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

start() {  # start NAME PORT [ARGS...]
    local name=$1 port=$2
    shift 2
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
        log "port $port is taken; stop what holds it"
        exit 1
    fi
    export_arguments "$WORK/$name"
    "$BIN" serve "${EXPORT_ARGS[@]}" --listen 127.0.0.1 --nfs-port "$port" --portmap-port 0 \
        --state-dir "$WORK/$name/state" "$@" >"$WORK/$name/server.log" 2>&1 &
    PIDS+=($!)
    for _ in $(seq 300); do
        (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && return 0
        sleep 0.1
    done
    log "$name did not answer on port $port"; tail -n 20 "$WORK/$name/server.log" >&2; exit 1
}
start plain "$PLAIN_PORT"
start journal "$JOURNAL_PORT" --durable-dir "$DURABLE"
log "servers up: plain on $PLAIN_PORT, with the journal in $DURABLE on $JOURNAL_PORT"

bench_plain() { bench_run plain "$PLAIN_PORT" "$PLAIN_PORT" "$WORK/plain/export" "$1"; }
bench_journal() { bench_run journal "$JOURNAL_PORT" "$JOURNAL_PORT" "$WORK/journal/export" "$1"; }
load_before="$(cut -d' ' -f1-3 /proc/loadavg)"
run_alternating bench_plain bench_journal

mkdir -p "$RESULTS"
cp "$WORK/plain.jsonl" "$RESULTS/journal-cost-plain.jsonl"
cp "$WORK/journal.jsonl" "$RESULTS/journal-cost-journal.jsonl"
echo
echo "With the journal over without (ops ratio below 1 and p99 ratio above 1 are its cost)"
"$BIN" bench compare --candidate "$RESULTS/journal-cost-journal.jsonl" --baseline "$RESULTS/journal-cost-plain.jsonl" --no-goal
{
    echo "# The write-back journal's cost"
    echo
    echo "Made by \`Benchmarks/journal-cost.sh\` on $(date -u '+%Y-%m-%d %H:%M UTC'), SwiftNFS commit $commit (release)."
    echo
    echo "- machine: $(machine_description); load average before: $load_before"
    echo "- exports: $(df -T "$WORK" | awk 'NR==2 {print $2}') ($(dirname "$WORK")); journal: $(df -T "$DURABLE" | awk 'NR==2 {print $2 " (" $7 ")"}')"
    echo "- client: \`swiftnfsd bench\`, 1 connection, ${DURATION} s per run after ${WARMUP} s of warm-up, over loopback"
    echo "- exports: $([ "$ASYNC" = 1 ] && echo "async (--async)" || echo sync)"
    echo "- ratios are with the journal over without"
    echo
    "$BIN" bench compare --candidate "$RESULTS/journal-cost-journal.jsonl" --baseline "$RESULTS/journal-cost-plain.jsonl" --no-goal --markdown
} >"$RESULTS/journal-cost.md"
log "wrote $RESULTS/journal-cost.md"

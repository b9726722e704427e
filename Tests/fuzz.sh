#!/usr/bin/env bash
# Builds the decoder fuzz target with libFuzzer and runs it for a bounded time (default 60 s)
# from the committed seeds. Exits non-zero, leaving crash-* files, if any input crashes it.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${FUZZ_SECONDS:-60}"
swift build --scratch-path .build-fuzz --product swiftnfs-fuzz -Xswiftc -sanitize=fuzzer -Xswiftc -DFUZZING
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cp Tests/FuzzCorpus/seeds/* "$work/"
.build-fuzz/debug/swiftnfs-fuzz -max_total_time="$seconds" -max_len=4096 -timeout=10 -rss_limit_mb=2048 \
    -print_final_stats=1 "$work" 2>&1 | tail -n 15
echo "fuzzing: no crash in ${seconds} s"

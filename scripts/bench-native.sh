#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Native protocol benchmark (called by `make bench` after the store benchmark): starts ferryd on
# free ports in a temporary directory (once per flush policy), runs ferry-bench cases against it,
# prints a Markdown table and rewrites the native-bench section of docs/benchmarks.md.
#   scripts/bench-native.sh BUILD_DIR      (BENCH_SCALE=1 multiplies the message counts)
set -euo pipefail

if [[ $# -ne 1 ]]; then
    echo "usage: $0 BUILD_DIR" >&2
    exit 2
fi
build=$1
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
ferryd=$build/broker/ferryd
bench=$build/tools/ferry-bench
doc=$root/docs/benchmarks.md
scale=${BENCH_SCALE:-1}
begin='<!-- native-bench:begin -->'
end='<!-- native-bench:end -->'
for b in "$ferryd" "$bench"; do
    [[ -x $b ]] || { echo "$0: $b not found: build first (make build)" >&2; exit 1; }
done

tmp=$(mktemp -d)
pid=
cleanup() {
    if [[ -n $pid ]]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
    rm -rf "$tmp"
}
trap cleanup EXIT

# start FLUSH: ferryd on free ports; sets pid and port.
start() {
    rm -rf "$tmp/data"
    "$ferryd" --data-dir "$tmp/data" --flush "$1" --port 0 --admin-port 0 --mqtt-port 0 \
        --amqp-port 0 >"$tmp/ferryd.log" 2>&1 &
    pid=$!
    for _ in $(seq 1 100); do
        port=$(sed -nE 's/.*INFO native addr=\S+ port=([0-9]+) msg="native listening".*/\1/p' \
            "$tmp/ferryd.log")
        grep -q 'msg="ready"' "$tmp/ferryd.log" && [[ -n $port ]] && return 0
        sleep 0.1
    done
    echo "$0: ferryd did not start:" >&2
    cat "$tmp/ferryd.log" >&2
    exit 1
}

stop() {
    kill "$pid"
    wait "$pid" || true
    pid=
}

field() {
    sed -nE 's/.*"'"$2"'":"?([^",}]*)"?[,}].*/\1/p' <<<"$1"
}

table=$(mktemp -p "$tmp")
{
    echo "| case | flush | in flight | offered rate | msgs/s | broker CPU s per 1M msgs | latency p50 / p99 / p99.9 (µs) |"
    echo "| --- | --- | ---: | ---: | ---: | ---: | --- |"
} >"$table"

# run NAME FLUSH MODE COUNT INFLIGHT RATE [REPEAT [EXTRA...]]: with REPEAT > 1 the case runs that many
# times and the run with the median p99.9 latency is reported (one noisy run on a shared
# 2-CPU machine should not decide the tail).
run() {
    local name=$1 flush=$2 mode=$3 count=$4 inflight=$5 rate=$6 repeat=${7:-1} out lat="—"
    local args=(--broker "127.0.0.1:$port" --count "$count" --inflight "$inflight"
        --broker-pid "$pid" --json "${@:8}")
    local runs=()
    [[ $rate != 0 ]] && args+=(--rate "$rate")
    for _ in $(seq 1 "$repeat"); do
        echo "running: ferry-bench ${args[*]} $mode" >&2
        runs+=("$("$bench" --topic "b$RANDOM" "${args[@]}" "$mode")")
    done
    if [[ $repeat -gt 1 ]]; then
        out=$(for r in "${runs[@]}"; do printf '%s %s\n' "$(field "$r" p999)" "$r"; done |
            sort -n | sed -n "$(((repeat + 1) / 2))p" | cut -d' ' -f2-)
    else
        out=${runs[0]}
    fi
    if [[ $mode == e2e ]]; then
        lat="$(field "$out" p50) / $(field "$out" p99) / $(field "$out" p999)"
    fi
    printf '| %s | %s | %s | %s | %s | %s | %s |\n' "$name" "$flush" "$inflight" \
        "$([[ $rate == 0 ]] && echo max || echo "$rate/s")" "$(field "$out" msgs_per_s)" \
        "$(field "$out" broker_cpu_s_per_million)" "$lat" >>"$table"
}

start async
run produce async produce $((1000000 * scale)) 1024 0
run "produce → consume" async e2e $((1000000 * scale)) 1024 0
run "produce → consume" async e2e $((100000 * scale)) 1024 10000 3
run "produce → consume, tag filter" async e2e $((300000 * scale)) 1024 0 1 --filter a
run "produce → consume, SQL92 filter" async e2e $((300000 * scale)) 1024 0 1 \
    --sql "region = 'eu' AND amount > 100"
run "delayed, random within 60 s (lateness)" async e2e $((100000 * scale)) 1024 0 1 \
    --max-delay-ms 60000
stop
start sync
run produce sync produce $((300000 * scale)) 64 0
run produce sync produce $((300000 * scale)) 1024 0
stop

cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//' || true)
section=$(mktemp -p "$tmp")
{
    echo "$begin"
    echo "Measured $(date -u +%Y-%m-%d) on $(nproc) CPUs ($cpu), Linux $(uname -r); one ferryd and"
    echo "ferry-bench (producer and consumer processes) on the same machine, 100-byte messages,"
    echo "topic of 8 queues. The fixed-rate case paces sends in 1 ms ticks and is the median"
    echo "(by p99.9) of 3 runs; the others are one run each. For the delayed case the latency"
    echo "columns are how late each message came after its due time (ms resolution)."
    echo
    cat "$table"
    echo "$end"
} >"$section"
cat "$table"

if ! grep -q "$begin" "$doc"; then
    printf '\n## Native protocol\n\n%s\n%s\n' \
        "\`ferry-bench\` over libferry: \`produce\` pipelines async sends from one producer; \`e2e\` adds a consumer process in a clustering group; latency is send to receive (monotonic clock, same machine)." \
        "$begin
$end" >>"$doc"
fi
awk -v b="$begin" -v e="$end" -v f="$section" '
    $0 == b { while ((getline l < f) > 0) print l; skip = 1; next }
    $0 == e { skip = 0; next }
    !skip { print }' "$doc" >"$tmp/doc" && cp "$tmp/doc" "$doc"

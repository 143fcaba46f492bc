#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Native protocol benchmark (called by `make bench` after the store benchmark): starts ferryd on
# free ports in a temporary directory (once per flush policy), runs ferry-bench cases against it,
# prints a Markdown table and rewrites the native-bench section of docs/benchmarks.md.
#   scripts/bench-native.sh BUILD_DIR      (BENCH_SCALE=1 multiplies the message counts)
set -euo pipefail
# shellcheck source=scripts/bench-lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/bench-lib.sh"

bench_init "$@"
ferryd=$build/broker/ferryd
bench=$build/tools/ferry-bench
begin='<!-- native-bench:begin -->'
end='<!-- native-bench:end -->'
need_executables "make build" "$ferryd" "$bench"

tmp=$(mktemp -d)
pid=
port=
cleanup() {
    if [[ -n $pid ]]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
    rm -rf "$tmp"
}
trap cleanup EXIT

# start FLUSH: ferryd on free ports; sets pid and port.
start() {
    rm -rf "$tmp/data"
    : >"$tmp/ferryd.log" # exists before the background job opens it: the wait below reads it at once
    "$ferryd" --data-dir "$tmp/data" --flush "$1" --port 0 --admin-port 0 --mqtt-port 0 \
        --amqp-port 0 >"$tmp/ferryd.log" 2>&1 &
    pid=$!
    wait_started ferryd "$tmp/ferryd.log" 'msg="ready"' \
        port='.*INFO native addr=\S+ port=([0-9]+) msg="native listening".*'
}

# stop: as bench-lib.sh's, but a ferryd that has already exited is an error.
stop() {
    kill "$pid"
    wait "$pid" || true
    pid=
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
        out=$(median_p999 "${runs[@]}")
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

cpu=$(cpu_model)
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

write_section "$begin" "$end" "$section" "Native protocol" \
    "\`ferry-bench\` over libferry: \`produce\` pipelines async sends from one producer; \`e2e\` adds a consumer process in a clustering group; latency is send to receive (monotonic clock, same machine)."

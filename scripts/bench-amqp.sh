#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# AMQP 1.0 benchmark (make bench-amqp): starts ferryd (flush async) on free ports in a temporary
# directory and runs ferry-amqp-bench against it; then, when Debian's rabbitmq-server and its
# rabbitmq_amqp1_0 plugin are installed, starts a private RabbitMQ node on free loopback ports
# (its own mnesia, config, cookie and epmd) and runs the same cases with the same generator.
# Prints a Markdown table and rewrites the amqp-bench section of docs/benchmarks.md.
# The receiver runs in the sender's thread (--one-process: three busy processes on two CPUs
# would make the tail the generator's). The fixed-rate case runs BENCH_LAT_ROUNDS times beside
# ferry-pausemeter; the section lists every round's p99.9 with the machine's steal and pauses
# during it, and the p99.9 of the messages no pause touched.
#   scripts/bench-amqp.sh BUILD_DIR      (BENCH_SCALE=1 multiplies the message counts;
#                                         BENCH_LAT_ROUNDS=5 fixed-rate rounds;
#                                         BENCH_RABBITMQ=0 skips RabbitMQ)
set -euo pipefail
# shellcheck source=scripts/bench-lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/bench-lib.sh"

bench_init "$@"
ferryd=$build/broker/ferryd
bench=$build/tools/ferry-amqp-bench
rounds=${BENCH_LAT_ROUNDS:-5}
rabbit_bin=/usr/lib/rabbitmq/bin/rabbitmq-server
begin='<!-- amqp-bench:begin -->'
end='<!-- amqp-bench:end -->'
need_executables "make build" "$ferryd" "$bench" "$build/tools/ferry-pausemeter"

tmp=$(mktemp -d)
pid=       # the broker process measured (ferryd, or RabbitMQ's beam.smp)
epmd_port= # RabbitMQ's private epmd
cleanup() {
    if [[ -n ${pm_pid:-} ]]; then kill "$pm_pid" 2>/dev/null || true; fi
    if [[ -n $pid ]]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
    if [[ -n $epmd_port ]]; then ERL_EPMD_PORT=$epmd_port epmd -kill >/dev/null 2>&1 || true; fi
    rm -rf "$tmp"
}
trap cleanup EXIT

# start_ferryd: ferryd (flush async) on free ports in a fresh data directory; sets pid and port.
start_ferryd() {
    rm -rf "$tmp/data"
    : >"$tmp/ferryd.log" # exists before the background job opens it: the wait below reads it at once
    "$ferryd" --data-dir "$tmp/data" --flush async --port 0 --admin-port 0 --mqtt-port 0 \
        --amqp-port 0 >"$tmp/ferryd.log" 2>&1 &
    pid=$!
    wait_started ferryd "$tmp/ferryd.log" 'msg="ready"' \
        port='.*INFO amqp addr=\S+ port=([0-9]+) msg="listening".*'
}

# A RabbitMQ node of its own: nothing of the system's node (/var/lib/rabbitmq, port 5672, epmd
# 4369) is used. Sets pid to beam.smp's; returns 1 if it does not come up within 60 s.
start_rabbitmq() {
    local r=$tmp/rabbitmq spid
    mkdir -p "$r/home"
    port=$(free_port)
    epmd_port=$(free_port)
    # The distribution port defaults to the AMQP port + 20000, which a free port above 45535
    # would push past 65535: give it a free port of its own.
    dist_port=$(free_port)
    echo '[rabbitmq_amqp1_0].' >"$r/enabled_plugins"
    cat >"$r/rabbitmq.conf" <<EOC
listeners.tcp.default = 127.0.0.1:$port
amqp1_0.default_user = guest
loopback_users = none
log.console = false
log.file.level = warning
EOC
    HOME=$r/home RABBITMQ_MNESIA_BASE=$r/mnesia RABBITMQ_LOG_BASE=$r/log \
        RABBITMQ_NODENAME=ferrybench$$@localhost RABBITMQ_NODE_IP_ADDRESS=127.0.0.1 \
        RABBITMQ_NODE_PORT=$port RABBITMQ_DIST_PORT=$dist_port ERL_CRASH_DUMP=$r/erl_crash.dump \
        ERL_EPMD_PORT=$epmd_port ERL_EPMD_ADDRESS=127.0.0.1 \
        RABBITMQ_ENABLED_PLUGINS_FILE=$r/enabled_plugins RABBITMQ_CONFIG_FILE=$r/rabbitmq \
        RABBITMQ_ADVANCED_CONFIG_FILE=$r/advanced.config RABBITMQ_CONF_ENV_FILE=$r/env.conf \
        RABBITMQ_PID_FILE=$r/pid RABBITMQ_PLUGINS_EXPAND_DIR=$r/plugins \
        "$rabbit_bin" >"$r/out.log" 2>&1 &
    spid=$!
    for _ in $(seq 1 600); do
        if grep -q 'Starting broker.*completed' "$r/out.log"; then
            pid=$(cat "$r/pid" 2>/dev/null || true)
            [[ -n $pid ]] && return 0
        fi
        kill -0 "$spid" 2>/dev/null || break
        sleep 0.1
    done
    echo "$0: RabbitMQ did not start:" >&2
    tail -20 "$r/out.log" >&2
    return 1
}

# stop: unlike bench-lib.sh's, also waits for RabbitMQ's beam.smp (not our child) and stops its epmd.
stop() {
    kill "$pid"
    wait "$pid" 2>/dev/null || true
    while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done # beam.smp is not our child
    pid=
    if [[ -n $epmd_port ]]; then
        ERL_EPMD_PORT=$epmd_port epmd -kill >/dev/null 2>&1 || true
        epmd_port=
    fi
}

table=$(mktemp -p "$tmp")
rounds_list=$(mktemp -p "$tmp")
{
    echo "| broker | case | window | offered rate | msgs/s | broker CPU s per 1M msgs | latency p50 / p99 / p99.9 (µs) | steal % |"
    echo "| --- | --- | ---: | ---: | ---: | ---: | --- | ---: |"
} >"$table"

# run BROKER NAME MODE COUNT RATE REPEAT TARGET [SOURCE]: with REPEAT > 1 the case runs that many
# times and the run with the median p99.9 latency is reported.
run() {
    local broker=$1 name=$2 mode=$3 count=$4 rate=$5 repeat=$6 target=$7 source=${8:-} out lat="—"
    local args=(--broker "127.0.0.1:$port" --count "$count" --inflight 1024 --credit 1000
        --broker-pid "$pid" --json)
    local runs=() n=0 all=() pm st
    [[ $mode == e2e ]] && args+=(--one-process)
    [[ $rate != 0 ]] && args+=(--rate "$rate")
    for _ in $(seq 1 "$repeat"); do
        n=$((n + 1))
        local t=${target//@/$RANDOM$n} s=()
        [[ -n $source ]] && s=(--source "${source//@/${t##*/}}")
        echo "running ($broker): ferry-amqp-bench ${args[*]} --target $t ${s[*]} $mode" >&2
        if [[ $rate != 0 ]]; then
            # A fixed-rate round: the machine's pauses beside every message's latency.
            pauses_start "$tmp/pauses"
            runs+=("$("$bench" "${args[@]}" --target "$t" "${s[@]}" --latency-log "$tmp/lat" "$mode")")
            pauses_stop
            pm=$(cat "$tmp/pauses.json")
            st=$(/usr/bin/python3 "$root/scripts/latency-stalls.py" "$tmp/lat" --pauses "$tmp/pauses" --json)
            all+=("$(field "${runs[-1]}" p999) ($(field "${runs[-1]}" steal_pct) %, $(field "$pm" pauses_2ms), $(clear_p999 "$st"))")
        else
            runs+=("$("$bench" "${args[@]}" --target "$t" "${s[@]}" "$mode")")
        fi
    done
    if [[ $repeat -gt 1 ]]; then
        out=$(median_p999 "${runs[@]}")
    else
        out=${runs[0]}
    fi
    if [[ $mode == e2e ]]; then
        lat="$(field "$out" p50) / $(field "$out" p99) / $(field "$out" p999)"
    fi
    printf '| %s | %s | %s | %s | %s | %s | %s | %s |\n' "$broker" "$name" 1024 \
        "$([[ $rate == 0 ]] && echo max || echo "$rate/s")" "$(field "$out" msgs_per_s)" \
        "$(field "$out" broker_cpu_s_per_million)" "$lat" "$(field "$out" steal_pct)" >>"$table"
    if [[ $rate != 0 ]]; then
        echo "- $broker, $name at $rate/s, each run's p99.9 in µs (steal, machine pauses ≥ 2 ms," \
            "p99.9 of the messages no pause touched): ${all[*]}" >>"$rounds_list"
    fi
    echo "$out" >&2
}

# clear_p999 JSON: the p99.9 of the messages no machine pause touched, from latency-stalls.py
# --json (its "clear" object).
clear_p999() {
    sed -nE 's/.*"clear": \{[^}]*"p999": ([0-9.]+).*/\1/p' <<<"$1"
}

# cases BROKER TARGET [SOURCE]: `@` in the addresses becomes a fresh name per run.
cases() {
    run "$1" "produce (unsettled, accepted)" produce $((500000 * scale)) 0 1 "$2"
    run "$1" "produce → consume" e2e $((500000 * scale)) 0 1 "$2" "${3:-}"
    run "$1" "produce → consume" e2e $((100000 * scale)) 10000 "$rounds" "$2" "${3:-}"
}

ferry_version=$("$ferryd" --version 2>/dev/null | head -1 || echo ferryd)
start_ferryd
cases "Ferry (flush async)" "b@" # receiver: b<n>/subscriptions/bench, a clustering group
stop

rabbit_note=
if [[ ${BENCH_RABBITMQ:-1} == 0 ]]; then
    rabbit_note="RabbitMQ skipped (BENCH_RABBITMQ=0)."
elif [[ ! -x $rabbit_bin ]] || ! ls /usr/lib/rabbitmq/lib/*/plugins 2>/dev/null | grep -q rabbitmq_amqp1_0; then
    rabbit_note="RabbitMQ not measured: rabbitmq-server (with rabbitmq_amqp1_0) is not installed (apt-get install rabbitmq-server)."
elif start_rabbitmq; then
    rabbit_version=$(dpkg-query -W -f '${Version}' rabbitmq-server 2>/dev/null || echo "?")
    cases "RabbitMQ $rabbit_version" "/queue/b@" "/queue/@"
    stop
else
    rabbit_note="RabbitMQ not measured: it did not start (see the run's output)."
    pid=
fi

cpu=$(cpu_model)
section=$(mktemp -p "$tmp")
{
    echo "$begin"
    echo "Measured $(date -u +%Y-%m-%d) on $(nproc) CPUs ($cpu), Linux $(uname -r), with"
    echo "\`scripts/bench-amqp.sh build\` (\`make bench-amqp\`): one broker at a time and ferry-amqp-bench"
    echo "(one process: for produce → consume the receiver is a second connection in the sender's"
    echo "thread) on the same machine;"
    echo "100-byte \`data\` bodies, durable, unsettled transfers with at most 1,024 outstanding"
    echo "(Ferry's sender link credit, 256, limits it further), the receiver accepting each delivery"
    echo "with a credit window of 1,000. Ferry: \`$ferry_version\`, \`--flush async\`, sender to topic"
    echo "\`b<n>\` (8 queues), receiver from \`b<n>/subscriptions/bench\` (a clustering group)."
    echo "RabbitMQ: its own node on loopback, default settings, AMQP 1.0 plugin, sender and receiver"
    echo "on \`/queue/b<n>\` (a classic queue). The fixed-rate case paces sends in 1 ms ticks and is the"
    echo "median (by p99.9) of $rounds runs; the others are one run each. \"steal\" is the share of the"
    echo "machine's CPU time the hypervisor gave to other guests during the run (/proc/stat): on a VM"
    echo "it is what moves the tail. During each fixed-rate run \`ferry-pausemeter\` (one SCHED_FIFO"
    echo "thread per CPU waking every 0.5 ms) counts the times a CPU of the machine stood still"
    echo "(a vCPU the hypervisor did not run): a pause stalls every message in flight on any broker."
    echo "\`scripts/latency-stalls.py --pauses\` then gives the p99.9 of the messages that no pause of"
    echo "1 ms or more touched: the broker's own tail.${rabbit_note:+ $rabbit_note}"
    echo
    cat "$table"
    echo
    cat "$rounds_list"
    echo "$end"
} >"$section"
cat "$table"
cat "$rounds_list"

write_section "$begin" "$end" "$section" "AMQP 1.0" \
    "\`ferry-amqp-bench\` (tools/ferry_amqp_bench.c) on qpid-proton's proactor, for any AMQP 1.0 broker: \`produce\` counts transfers settled \`accepted\`; \`e2e\` adds a receiver process; latency is send to receive (monotonic clock, same machine)."

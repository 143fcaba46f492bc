#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# MQTT benchmark, side by side with mosquitto (called by `make bench-mqtt` and `make bench`):
# starts mosquitto 2.0.11 (defaults, without queue limits, with TCP_NODELAY) and ferryd on free
# ports, one at a time, drives each with the same ferry-mqtt-bench cases, prints a Markdown
# table and rewrites the mqtt-bench section of docs/benchmarks.md.
# The fixed-rate latency cases run last, with the three brokers up at once and taking turns, run
# by run, so that each round sees the same machine (on a VM, the hypervisor's steal moves the
# tail from one minute to the next); every round's p99.9, steal and the machine's pauses
# (ferry-pausemeter beside each fixed-rate run) go into the section.
#   scripts/bench-mqtt.sh BUILD_DIR     (BENCH_SCALE=1 multiplies the message counts;
#                                        BENCH_LAT_ROUNDS=5 latency rounds;
#                                        MOSQUITTO=/usr/sbin/mosquitto)
set -euo pipefail
# shellcheck source=scripts/bench-lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/bench-lib.sh"

bench_init "$@"
ferryd=$build/broker/ferryd
bench=$build/tools/ferry-mqtt-bench
mosquitto=${MOSQUITTO:-/usr/sbin/mosquitto}
rounds=${BENCH_LAT_ROUNDS:-5}
begin='<!-- mqtt-bench:begin -->'
end='<!-- mqtt-bench:end -->'
need_executables "make build; make deps" "$ferryd" "$bench" "$mosquitto" \
    "$build/tools/ferry-pausemeter"

# 10,000 idle clients take 10,000 fds in the broker and as many over the generator's processes:
# raise this shell's limit (inherited by both) as far as the hard limit allows.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
nofile=$(ulimit -n)
idle_clients=10000
if [[ $nofile != unlimited ]] && ((nofile < idle_clients + 256)); then
    idle_clients=$((nofile - 256))
    echo "$0: ulimit -n is $nofile: idle case with $idle_clients clients" >&2
fi

# Other work on the machine shows in every figure: the section records the load around the run.
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
tmp=$(mktemp -d)
pid=
declare -A bpid bport # the brokers up together for the latency rounds
cleanup() {
    if [[ -n ${pm_pid:-} ]]; then kill "$pm_pid" 2>/dev/null || true; fi
    if [[ -n $pid ]]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
    for b in "${!bpid[@]}"; do
        kill "${bpid[$b]}" 2>/dev/null || true
        wait "${bpid[$b]}" 2>/dev/null || true
    done
    rm -rf "$tmp"
}
trap cleanup EXIT

# start_mosquitto NAME [CONFIG LINE...]: mosquitto on a free port; sets pid, port and log.
start_mosquitto() {
    local name=$1
    shift
    port=$(free_port)
    log=$tmp/$name.log
    {
        echo "listener $port 127.0.0.1"
        echo "allow_anonymous true"
        echo "max_connections -1"
        echo "connection_messages false"
        echo "log_dest stderr"
        printf '%s\n' "$@"
    } >"$tmp/$name.conf"
    : >"$log" # exists before the background job opens it: the wait below reads it at once
    "$mosquitto" -c "$tmp/$name.conf" >"$log" 2>&1 &
    pid=$!
    wait_started mosquitto "$log" 'running'
}

# start_ferry NAME: ferryd (flush async) on free ports in a fresh data directory; sets pid, port, log.
start_ferry() {
    log=$tmp/$1.log
    rm -rf "$tmp/data"
    : >"$log"
    # Every client comes from 127.0.0.1: no connect rate limit (as mosquitto's max_connections -1).
    printf '[limits]\nmax_connect_rate 0\n' >"$tmp/ferry.conf"
    "$ferryd" -c "$tmp/ferry.conf" --data-dir "$tmp/data" --flush async --port 0 --admin-port 0 \
        --mqtt-port 0 --amqp-port 0 >"$log" 2>&1 &
    pid=$!
    wait_started ferryd "$log" 'msg="ready"' port='.*INFO mqtt addr=\S+ port=([0-9]+) msg="listening".*'
}

failures=()
ran=()
# run BROKER CASE REPEAT ARGS...: runs ferry-mqtt-bench against the running broker and keeps its
# JSON line in $tmp/res/BROKER.CASE. With REPEAT > 1 the run with the median p99.9 is kept.
mkdir -p "$tmp/res"
run() {
    local broker=$1 case=$2 repeat=$3 rc out prefix runs=()
    shift 3
    ran+=("$broker.$case")
    for _ in $(seq 1 "$repeat"); do
        # A fresh topic prefix per run; @P in the arguments stands for it.
        prefix=b$RANDOM
        local args=(--broker "127.0.0.1:$port" --broker-pid "$pid" --prefix "$prefix" "${@//@P/$prefix}")
        echo "running: $broker: ferry-mqtt-bench ${args[*]}" >&2
        rc=0
        if [[ " $* " == *" --rate "* ]]; then
            # A fixed-rate run: the machine's own pauses beside it (ferry-pausemeter).
            pauses_start "$tmp/pauses"
            out=$("$bench" "${args[@]}" 2>"$tmp/err") || rc=$?
            pauses_stop
            [[ -n $out ]] && out="${out%\}},\"pauses_2ms\":$(field "$(cat "$tmp/pauses.json")" pauses_2ms)}"
        else
            out=$("$bench" "${args[@]}" 2>"$tmp/err") || rc=$?
        fi
        cat "$tmp/err" >&2
        if [[ $rc -ne 0 || -z $out ]] || ! kill -0 "$pid" 2>/dev/null; then
            failures+=("$broker $case: ferry-mqtt-bench exit $rc: $(tr '\n' ' ' <"$tmp/err")")
            if ! kill -0 "$pid" 2>/dev/null; then
                failures+=("$broker $case: the broker died; last log lines: $(tail -5 "$log")")
                echo "$0: $broker died during $case:" >&2
                tail -20 "$log" >&2
                pid=
                return 0
            fi
        fi
        [[ -n $out ]] && runs+=("$out")
    done
    [[ ${#runs[@]} -gt 0 ]] || return 0
    median_p999 "${runs[@]}" >"$tmp/res/$broker.$case"
}

# cases BROKER CASE...: the named cases against the broker just started, until one kills it.
cases() {
    local b=$1 c
    shift
    for c in "$@"; do
        [[ -n $pid ]] || return 0
        case $c in
        fanin) run "$b" fanin 1 --pubs 4 --subs 1 --count $((400000 * scale)) --window 800 pubsub ;;
        fanout)
            run "$b" fanout 1 --pubs 1 --subs 100 --count $((20000 * scale)) --window 800 \
                --filter @P/0 pubsub
            ;;
        qos1)
            run "$b" qos1 1 --qos-pub 1 --qos-sub 1 --count $((200000 * scale)) --window 500 \
                --drain-ms 5000 pubsub
            ;;
        qos1slow)
            run "$b" qos1slow 1 --qos-pub 1 --qos-sub 1 --count $((200000 * scale)) --window 500 \
                --pause-ms 2000 --drain-ms 5000 pubsub
            ;;
        lat0) run "$b" lat0 1 --rate 10000 --count $((100000 * scale)) pubsub ;;
        lat1)
            run "$b" lat1 1 --rate 10000 --count $((100000 * scale)) --qos-pub 1 --qos-sub 1 pubsub
            ;;
        idle) run "$b" idle 1 --clients "$idle_clients" --procs 4 --timeout 180 idle ;;
        esac
    done
}

# Idle clients on a freshly started broker, so that RSS grows from the start-up figure.
start_mosquitto mosq
cases mosq fanin fanout qos1 qos1slow
stop
start_mosquitto mosq-idle
cases mosq idle
stop
start_mosquitto nolimits "max_queued_messages 0" "max_inflight_messages 0"
cases nolimits qos1 qos1slow
stop
start_mosquitto nodelay "set_tcp_nodelay true"
cases nodelay fanin fanout
stop
start_ferry ferry
cases ferry fanin fanout qos1 qos1slow
[[ -z $pid ]] || stop
start_ferry ferry-idle
cases ferry idle
[[ -z $pid ]] || stop

# Latency: mosquitto (defaults and TCP_NODELAY) and ferryd up together, one run each in turn.
# keep BROKER: the broker just started joins the rounds.
keep() {
    bpid[$1]=$pid
    bport[$1]=$port
    pid=
}
start_mosquitto mosq-lat
keep mosq
start_mosquitto nodelay-lat "set_tcp_nodelay true"
keep nodelay
start_ferry ferry-lat
keep ferry
mkdir -p "$tmp/rounds"
for r in $(seq 1 "$rounds"); do
    for c in lat0 lat1; do
        for b in mosq nodelay ferry; do
            [[ -n ${bpid[$b]:-} ]] || continue
            pid=${bpid[$b]} port=${bport[$b]}
            cases "$b" "$c"
            [[ -n $pid ]] || unset "bpid[$b]" # it died: no more rounds for it
            [[ -f $tmp/res/$b.$c ]] && mv "$tmp/res/$b.$c" "$tmp/rounds/$b.$c.$r"
        done
    done
done
pid=
for b in "${!bpid[@]}"; do
    kill "${bpid[$b]}" 2>/dev/null || true
    wait "${bpid[$b]}" 2>/dev/null || true
done
bpid=()
# The run with the median p99.9 of each broker's rounds is its result.
for b in mosq nodelay ferry; do
    for c in lat0 lat1; do
        ls "$tmp/rounds/$b.$c".* >/dev/null 2>&1 || continue
        n=$(cat "$tmp/rounds/$b.$c".* | wc -l)
        for f in "$tmp/rounds/$b.$c".*; do printf '%s %s\n' "$(field "$(cat "$f")" p999)" "$(cat "$f")"; done |
            sort -n | sed -n "$(((n + 1) / 2))p" | cut -d' ' -f2- >"$tmp/res/$b.$c"
    done
done

# get BROKER CASE KEY: a number from a kept result, or empty.
get() {
    [[ -f $tmp/res/$1.$2 ]] && field "$(cat "$tmp/res/$1.$2")" "$3" || true
}

# missing BROKER CASE: "failed" when the case ran without a result, "—" when it did not run.
missing() {
    if [[ " ${ran[*]} " == *" $1.$2 "* ]]; then echo "failed"; else echo "—"; fi
}

# rate BROKER CASE: delivered msgs/s, with loss and duplicates when there were any.
rate() {
    local v lost dups
    v=$(get "$1" "$2" msgs_per_s)
    [[ -n $v ]] || { missing "$1" "$2"; return; }
    lost=$(get "$1" "$2" lost)
    dups=$(get "$1" "$2" dups)
    [[ $lost == 0 ]] || v="$v ($lost lost)"
    [[ $dups == 0 ]] || v="$v ($dups dup)"
    echo "$v"
}

cpu() {
    local v
    v=$(get "$1" "$2" broker_cpu_s_per_million)
    [[ -n $v ]] || { missing "$1" "$2"; return; }
    echo "$v"
}

lat() {
    local p50
    p50=$(get "$1" "$2" p50)
    [[ -n $p50 ]] || { missing "$1" "$2"; return; }
    echo "$p50 / $(get "$1" "$2" p99) / $(get "$1" "$2" p999)"
}

lost() {
    local v
    v=$(get "$1" "$2" lost)
    [[ -n $v ]] || { missing "$1" "$2"; return; }
    echo "$v of $(get "$1" "$2" acked)"
}

# rss_of BROKER idle
rss_of() {
    local v
    v=$(get "$1" idle bytes_per_client)
    [[ -n $v ]] || { missing "$1" idle; return; }
    echo "$v"
}

# verdict OK: "met" or "missed" (or "—" when a figure is missing).
verdict() {
    case $1 in
    1) echo "met" ;;
    0) echo "**missed**" ;;
    *) echo "—" ;;
    esac
}

# cpu_target CASE: Ferry's broker CPU per message against the lowest of mosquitto's.
cpu_target() {
    local f m
    f=$(get ferry "$1" broker_cpu_s_per_million)
    m=$(for v in mosq nolimits nodelay; do get "$v" "$1" broker_cpu_s_per_million; done |
        sort -g | head -1)
    [[ -n $f && -n $m ]] || { echo "≤ mosquitto's: —"; return; }
    echo "≤ $m: $(verdict "$(awk -v f="$f" -v m="$m" 'BEGIN { print (f <= m) }')")"
}

# qos1_target CASE
qos1_target() {
    local r l
    r=$(get ferry "$1" msgs_per_s)
    l=$(get ferry "$1" lost)
    [[ -n $r ]] || { echo "≥ 20000, 0 lost: —"; return; }
    echo "≥ 20000, 0 lost: $(verdict "$(awk -v r="$r" -v l="$l" 'BEGIN { print (r >= 20000 && l == 0) }')")"
}

lat_target() {
    local p
    p=$(get ferry "$1" p999)
    [[ -n $p ]] || { echo "p99.9 < 2000: —"; return; }
    echo "p99.9 < 2000: $(verdict "$(awk -v p="$p" 'BEGIN { print (p < 2000) }')")"
}

rss_target() {
    local v
    v=$(get ferry idle bytes_per_client)
    [[ -n $v ]] || { echo "≤ 2048: —"; return; }
    echo "≤ 2048: $(verdict "$(awk -v v="$v" 'BEGIN { print (v <= 2048) }')")"
}

table=$tmp/table
# row CASE MEASURE FUNC CASE_NAME TARGET: one row, a column per broker.
row() {
    printf '| %s | %s | %s | %s | %s | %s | %s |\n' "$1" "$2" "$($3 mosq "$4")" "$($3 nolimits "$4")" \
        "$($3 nodelay "$4")" "$($3 ferry "$4")" "$5"
}
{
    echo "| case | measure | mosquitto defaults | mosquitto, no queue limits | mosquitto, TCP_NODELAY | Ferry | Ferry target |"
    echo "| --- | --- | ---: | ---: | ---: | ---: | --- |"
    row "QoS 0 fan-in, 4 publishers → 1 subscriber on \`P/+\`" "delivered msgs/s" rate fanin "—"
    row "" "broker CPU s per 1M delivered" cpu fanin "$(cpu_target fanin)"
    row "QoS 0 fan-out, 1 publisher → 100 subscribers" "delivered msgs/s (all subscribers)" rate fanout "—"
    row "" "broker CPU s per 1M delivered" cpu fanout "$(cpu_target fanout)"
    row "QoS 1 end to end, 500 PUBACKs outstanding" "delivered msgs/s" rate qos1 "$(qos1_target qos1)"
    row "" "lost (PUBACKed, never delivered)" lost qos1 ""
    row "QoS 1 end to end, subscriber reads nothing for the first 2 s" "delivered msgs/s" rate qos1slow "$(qos1_target qos1slow)"
    row "" "lost (PUBACKed, never delivered)" lost qos1slow ""
    row "QoS 0 at 10,000 msg/s, 1 → 1" "latency p50 / p99 / p99.9 (µs)" lat lat0 "$(lat_target lat0)"
    row "QoS 1 at 10,000 msg/s, 1 → 1" "latency p50 / p99 / p99.9 (µs)" lat lat1 "$(lat_target lat1)"
    row "$idle_clients idle clients, each subscribed to \`dev/<i>/cmd\` (QoS 1)" "broker RSS per client (bytes)" rss_of idle "$(rss_target)"
} >"$table"

# The latency rounds, each cell "p99.9 µs (steal %, machine pauses ≥ 2 ms)".
rounds_table=$tmp/rounds_table
{
    echo "| round | case | mosquitto defaults | mosquitto, TCP_NODELAY | Ferry |"
    echo "| ---: | --- | ---: | ---: | ---: |"
    for r in $(seq 1 "$rounds"); do
        for c in lat0 lat1; do
            cells=()
            for b in mosq nodelay ferry; do
                f=$tmp/rounds/$b.$c.$r
                if [[ -f $f ]]; then
                    cells+=("$(field "$(cat "$f")" p999) ($(field "$(cat "$f")" steal_pct) %, $(field "$(cat "$f")" pauses_2ms))")
                else
                    cells+=("—")
                fi
            done
            printf '| %s | %s | %s | %s | %s |\n' "$r" "$([[ $c == lat0 ]] && echo "QoS 0" || echo "QoS 1")" \
                "${cells[@]}"
        done
    done
} >"$rounds_table"

cpu_name=$(cpu_model)
section=$tmp/section
{
    echo "$begin"
    echo "Measured $(date -u +%Y-%m-%d) on $(nproc) CPUs ($cpu_name), Linux $(uname -r); the broker and"
    echo "ferry-mqtt-bench on the same machine, MQTT 3.1.1, 100-byte payloads, clean sessions."
    echo "$("$mosquitto" -h 2>/dev/null | sed -n 1p || true): \"no queue limits\" is \`max_queued_messages 0\` and"
    echo "\`max_inflight_messages 0\`, \"TCP_NODELAY\" is \`set_tcp_nodelay true\` (\"—\": case not run)."
    echo "Ferry: \`flush async\`, defaults otherwise. Load average (1/5/15 min) before the run"
    echo "$load_before, after it $(cut -d' ' -f1-3 /proc/loadavg)."
    echo "The fixed-rate rows ran last, with mosquitto (both settings) and ferryd up together and"
    echo "taking turns run by run for $rounds rounds of 10 s each, so that every round saw the same"
    echo "machine; each row is the broker's median round by p99.9. The other rows are one run each."
    echo
    cat "$table"
    echo
    echo "Every latency round, p99.9 in µs, with the share of the machine's CPU time the hypervisor"
    echo "stole during the run (\`steal_pct\` of ferry-mqtt-bench, from /proc/stat) and the number"
    echo "of times a CPU of the machine stood still for 2 ms or more (\`ferry-pausemeter\`, run"
    echo "beside it): on a VM these are what move the tail, for every broker alike."
    echo
    cat "$rounds_table"
    echo "$end"
} >"$section"
cat "$table"
echo
cat "$rounds_table"

write_section "$begin" "$end" "$section" "MQTT, side by side with mosquitto" "See scripts/bench-mqtt.sh."

if [[ ${#failures[@]} -gt 0 ]]; then
    echo "$0: some cases failed:" >&2
    printf '  %s\n' "${failures[@]}" >&2
    exit 1
fi

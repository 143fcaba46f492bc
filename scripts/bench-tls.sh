#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# MQTT over TLS against plain TCP, side by side with mosquitto (called by `make bench-tls`): makes
# a CA and a server certificate (EC P-256) with the openssl CLI, starts mosquitto 2.0.11 (plain
# and TLS listeners, set_tcp_nodelay true) and ferryd (plain and TLS ports) on free ports, one at
# a time, drives each with the same ferry-mqtt-bench cases (QoS 0 fan-in throughput, QoS 0
# latency at 10,000 msg/s, connections per second), prints a Markdown table and rewrites the
# tls-bench section of docs/benchmarks.md.
#   scripts/bench-tls.sh BUILD_DIR      (BENCH_SCALE=1 multiplies the message counts;
#                                        MOSQUITTO=/usr/sbin/mosquitto)
set -euo pipefail
# shellcheck source=scripts/bench-lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/bench-lib.sh"

bench_init "$@"
ferryd=$build/broker/ferryd
bench=$build/tools/ferry-mqtt-bench
mosquitto=${MOSQUITTO:-/usr/sbin/mosquitto}
begin='<!-- tls-bench:begin -->'
end='<!-- tls-bench:end -->'
need_executables "make build; make deps" "$ferryd" "$bench" "$mosquitto" /usr/bin/openssl

load_before=$(cut -d' ' -f1-3 /proc/loadavg)
tmp=$(mktemp -d)
pid=
cleanup() {
    if [[ -n $pid ]]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
    rm -rf "$tmp"
}
trap cleanup EXIT
# mosquitto started as root runs as user mosquitto: it must read the certificate and key.
chmod 755 "$tmp"

# The PKI: a CA and a server certificate for 127.0.0.1, EC P-256 (what a deployment would use).
(
    cd "$tmp"
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout ca.key \
        -out ca.crt -subj "/CN=bench CA" -days 2 2>/dev/null
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout server.key \
        -out server.csr -subj "/CN=localhost" 2>/dev/null
    printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\n' >server.ext
    openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out server.crt \
        -days 2 -extfile server.ext 2>/dev/null
    chmod 644 server.key
)
ca=$tmp/ca.crt

# start_mosquitto: plain and TLS listeners on free ports; sets pid, port, tls_port and log.
start_mosquitto() {
    port=$(free_port)
    tls_port=$(free_port)
    log=$tmp/mosquitto.log
    cat >"$tmp/mosquitto.conf" <<EOF
per_listener_settings false
allow_anonymous true
max_connections -1
connection_messages false
log_dest stderr
set_tcp_nodelay true
listener $port 127.0.0.1
listener $tls_port 127.0.0.1
certfile $tmp/server.crt
keyfile $tmp/server.key
EOF
    : >"$log"
    "$mosquitto" -c "$tmp/mosquitto.conf" >"$log" 2>&1 &
    pid=$!
    wait_started mosquitto "$log" 'running'
}

# start_ferry: ferryd (flush async) with [tls] on free ports; sets pid, port, tls_port and log.
start_ferry() {
    log=$tmp/ferry.log
    rm -rf "$tmp/data"
    printf '[tls]\ncertfile %s\nkeyfile %s\n[mqtt]\ntls_port 0\n' "$tmp/server.crt" \
        "$tmp/server.key" >"$tmp/ferry.conf"
    : >"$log"
    "$ferryd" -c "$tmp/ferry.conf" --data-dir "$tmp/data" --flush async --port 0 --admin-port 0 \
        --mqtt-port 0 --amqp-port 0 >"$log" 2>&1 &
    pid=$!
    wait_started ferryd "$log" 'msg="ready"' \
        port='.*INFO mqtt addr=\S+ port=([0-9]+) msg="listening".*' \
        tls_port='.*INFO mqtt addr=\S+ tls_port=([0-9]+) msg="TLS listening".*'
}

failures=()
mkdir -p "$tmp/res"
# run NAME CASE REPEAT PORT ARGS...: ferry-mqtt-bench against PORT of the running broker; keeps
# its JSON line in $tmp/res/NAME.CASE (with REPEAT > 1, the run with the median p99.9).
run() {
    local name=$1 case=$2 repeat=$3 p=$4 rc out prefix runs=()
    shift 4
    for _ in $(seq 1 "$repeat"); do
        prefix=t$RANDOM
        local args=(--broker "127.0.0.1:$p" --broker-pid "$pid" --prefix "$prefix" --id-prefix "$prefix" "$@")
        echo "running: $name: ferry-mqtt-bench ${args[*]}" >&2
        rc=0
        out=$("$bench" "${args[@]}" 2>"$tmp/err") || rc=$?
        cat "$tmp/err" >&2
        if [[ $rc -ne 0 || -z $out ]]; then
            failures+=("$name $case: ferry-mqtt-bench exit $rc: $(tr '\n' ' ' <"$tmp/err")")
        fi
        [[ -n $out ]] && runs+=("$out")
        kill -0 "$pid" 2>/dev/null || { failures+=("$name $case: the broker died"); return 0; }
    done
    [[ ${#runs[@]} -gt 0 ]] || return 0
    median_p999 "${runs[@]}" >"$tmp/res/$name.$case"
}

# cases NAME PORT [--cafile CA]: the three cases against one port.
cases() {
    local name=$1 p=$2
    shift 2
    run "$name" fanin 1 "$p" "$@" --pubs 4 --subs 1 --count $((200000 * scale)) --window 800 pubsub
    run "$name" lat0 3 "$p" "$@" --rate 10000 --count $((50000 * scale)) pubsub
    run "$name" connect 1 "$p" "$@" --clients $((300 * scale)) --procs 2 connect
}

start_mosquitto
cases mosq "$port"
cases mosq-tls "$tls_port" --cafile "$ca"
stop
start_ferry
cases ferry "$port"
cases ferry-tls "$tls_port" --cafile "$ca"
stop

get() {
    [[ -f $tmp/res/$1.$2 ]] && field "$(cat "$tmp/res/$1.$2")" "$3" || true
}
or_failed() {
    [[ -n $1 ]] && echo "$1" || echo "failed"
}
rate() {
    local v lost
    v=$(get "$1" fanin msgs_per_s)
    lost=$(get "$1" fanin lost)
    [[ -z $v || $lost == 0 ]] || v="$v ($lost lost)"
    or_failed "$v"
}
cpu() { or_failed "$(get "$1" fanin broker_cpu_s_per_million)"; }
lat() {
    local p50
    p50=$(get "$1" lat0 p50)
    [[ -n $p50 ]] || { echo "failed"; return; }
    echo "$p50 / $(get "$1" lat0 p99) / $(get "$1" lat0 p999)"
}
conn() { or_failed "$(get "$1" connect connects_per_s)"; }
conn_cpu() { or_failed "$(get "$1" connect broker_cpu_ms_per_connect)"; }

table=$tmp/table
row() {
    printf '| %s | %s | %s | %s | %s | %s |\n' "$1" "$2" "$($3 mosq)" "$($3 mosq-tls)" "$($3 ferry)" \
        "$($3 ferry-tls)"
}
{
    echo "| case | measure | mosquitto TCP | mosquitto TLS | Ferry TCP | Ferry TLS |"
    echo "| --- | --- | ---: | ---: | ---: | ---: |"
    row "QoS 0 fan-in, 4 publishers → 1 subscriber" "delivered msgs/s" rate
    row "" "broker CPU s per 1M delivered" cpu
    row "QoS 0 at 10,000 msg/s, 1 → 1" "latency p50 / p99 / p99.9 (µs)" lat
    row "connect + CONNACK + DISCONNECT, one at a time, 2 clients" "connections/s (TLS: full handshakes)" conn
    row "" "broker CPU ms per connection" conn_cpu
} >"$table"

cpu_name=$(cpu_model)
section=$tmp/section
{
    echo "$begin"
    echo "Measured $(date -u +%Y-%m-%d) on $(nproc) CPUs ($cpu_name), Linux $(uname -r); the broker and"
    echo "ferry-mqtt-bench on the same machine, MQTT 3.1.1, 100-byte payloads, clean sessions, TLS 1.3"
    echo "with an EC P-256 server certificate (no client certificates), libmosquitto clients (one TLS"
    echo "record per MQTT packet). $("$mosquitto" -h 2>/dev/null | sed -n 1p || true) with"
    echo "\`set_tcp_nodelay true\`; Ferry with \`flush async\`. Load average (1/5/15 min) before the run"
    echo "$load_before, after it $(cut -d' ' -f1-3 /proc/loadavg)."
    echo "The latency row is the median (by p99.9) of 3 runs of 5 s; the others one run each."
    echo
    cat "$table"
    echo "$end"
} >"$section"
cat "$table"

write_section "$begin" "$end" "$section" "MQTT over TLS" "See scripts/bench-tls.sh (\`make bench-tls\`)."

if [[ ${#failures[@]} -gt 0 ]]; then
    echo "$0: some cases failed:" >&2
    printf '  %s\n' "${failures[@]}" >&2
    exit 1
fi

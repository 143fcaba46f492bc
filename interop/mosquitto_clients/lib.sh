# SPDX-License-Identifier: Apache-2.0
# Helpers for the mosquitto_pub/mosquitto_sub interop tests (sourced, not run). Needs
# FERRY_MQTT_HOST and FERRY_MQTT_PORT (interop/run.py sets them). Every client started in the
# background is stopped by PID on exit; every wait has a deadline.
set -euo pipefail

for tool in mosquitto_pub mosquitto_sub timeout stdbuf; do
    if ! command -v "$tool" >/dev/null 2>&1; then
        echo "SKIP: $tool is not installed (scripts/deps.sh installs mosquitto-clients)"
        exit 77
    fi
done

: "${FERRY_MQTT_HOST:?run through interop/run.py}"
: "${FERRY_MQTT_PORT:?run through interop/run.py}"
H=(-h "$FERRY_MQTT_HOST" -p "$FERRY_MQTT_PORT")
T=$(mktemp -d /tmp/ferry-interop-sh.XXXXXX)
# A per-run prefix keeps topics apart from anything else on the broker.
P="it$$"
BG_PIDS=()
DEADLINE=10 # seconds, for every wait

cleanup() {
    local pid
    for pid in "${BG_PIDS[@]}"; do
        kill -9 "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    if [ -z "${FERRY_INTEROP_KEEP:-}" ]; then
        rm -rf "$T"
    fi
}
trap cleanup EXIT

fail() {
    echo "FAIL: $*" >&2
    exit 1
}

# pub ARGS...: mosquitto_pub against the broker under test, bounded.
pub() {
    timeout "$DEADLINE" mosquitto_pub "${H[@]}" "$@" || fail "mosquitto_pub $* exited with $?"
}

# sub_bg NAME ARGS...: mosquitto_sub in the background with -d, output in $T/NAME.out. Returns once
# the broker acknowledged the subscription (SUBACK), so that what is published next must arrive.
# Message lines are formatted by the caller's -F (or -v); debug lines start with "Client ".
sub_bg() {
    local name=$1
    shift
    stdbuf -oL mosquitto_sub "${H[@]}" -d "$@" >"$T/$name.out" 2>"$T/$name.err" &
    local pid=$!
    BG_PIDS+=("$pid")
    eval "PID_$name=$pid"
    wait_for "$name" "received SUBACK" 1
}

# wait_for NAME PATTERN [COUNT]: waits until $T/NAME.out has COUNT lines matching the grep pattern.
wait_for() {
    local name=$1 pat=$2 count=${3:-1} end=$((SECONDS + DEADLINE))
    local n
    while :; do
        n=$(grep -c -- "$pat" "$T/$name.out" 2>/dev/null || true)
        if [ "${n:-0}" -ge "$count" ]; then
            break
        fi
        if [ $SECONDS -ge $end ]; then
            echo "---- $name output ----" >&2
            cat "$T/$name.out" "$T/$name.err" >&2 || true
            fail "$name: no $count line(s) matching '$pat' within ${DEADLINE}s"
        fi
        sleep 0.05
    done
}

# wait_exit NAME: waits (bounded) for the background client NAME to exit; returns its exit code.
wait_exit() {
    local name=$1 pidvar="PID_$1" end=$((SECONDS + DEADLINE)) pid
    pid=${!pidvar}
    while kill -0 "$pid" 2>/dev/null; do
        if [ $SECONDS -ge $end ]; then
            cat "$T/$name.out" "$T/$name.err" >&2 || true
            fail "$name (pid $pid) still running after ${DEADLINE}s"
        fi
        sleep 0.05
    done
    local rc=0
    wait "$pid" || rc=$?
    return $rc
}

# kill9 NAME: kills the background client NAME (no DISCONNECT: its socket just closes).
kill9() {
    local pidvar="PID_$1"
    kill -9 "${!pidvar}" 2>/dev/null || true
    wait "${!pidvar}" 2>/dev/null || true
}

# msgs NAME: the message lines of NAME's output (the debug lines dropped).
msgs() {
    grep -v -e '^Client ' -e '^Subscribed (mid' "$T/$1.out" || true
}

# expect_eq WHAT EXPECTED ACTUAL
expect_eq() {
    if [ "$2" != "$3" ]; then
        printf 'FAIL: %s\n--- expected\n%s\n--- got\n%s\n' "$1" "$2" "$3" >&2
        exit 1
    fi
}

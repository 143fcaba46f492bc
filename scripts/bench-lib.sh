# shellcheck shell=bash
# SPDX-License-Identifier: Apache-2.0
# What the benchmark scripts (bench.sh, bench-native.sh, bench-mqtt.sh, bench-amqp.sh and
# bench-tls.sh) share. Sourced, after `set -euo pipefail`, with
#   . "$(dirname "${BASH_SOURCE[0]}")/bench-lib.sh"
# The functions read and set the calling script's globals named in their comments.

# bench_init "$@": checks that the script got one argument, the build directory, and sets build,
# root (the source tree), doc (docs/benchmarks.md) and scale (BENCH_SCALE, 1 by default).
# shellcheck disable=SC2034 # build and scale are for the scripts that source this file
bench_init() {
    if [[ $# -ne 1 ]]; then
        echo "usage: $0 BUILD_DIR" >&2
        exit 2
    fi
    build=$1
    root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
    doc=$root/docs/benchmarks.md
    scale=${BENCH_SCALE:-1}
}

# need_executables HINT FILE...: exits with "FILE not found: build first (HINT)" unless every
# FILE is executable.
need_executables() {
    local hint=$1 b
    shift
    for b in "$@"; do
        [[ -x $b ]] || { echo "$0: $b not found: build first ($hint)" >&2; exit 1; }
    done
}

# free_port: prints a TCP port on 127.0.0.1 that is free now.
free_port() {
    /usr/bin/python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# field JSON KEY: the value of a number or string member of a generator's one-line JSON, or
# nothing when the line has no such member.
field() {
    sed -nE 's/.*"'"$2"'":"?([^",}]*)"?[,}].*/\1/p' <<<"$1"
}

# median_p999 JSON...: prints the JSON line with the median p99.9 (the lower one of the middle
# two for an even count).
median_p999() {
    local r
    for r in "$@"; do printf '%s %s\n' "$(field "$r" p999)" "$r"; done |
        sort -n | sed -n "$((($# + 1) / 2))p" | cut -d' ' -f2-
}

# cpu_model: the CPU's model name from /proc/cpuinfo, or nothing.
cpu_model() {
    grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//' || true
}

# wait_started NAME LOG READY [VAR=REGEX...]: waits up to 10 s for the broker started in the
# background as $pid to write a line matching READY (grep) to its log LOG and, for each
# VAR=REGEX, a line matching the sed -E REGEX, whose first group (a port) goes into VAR. If the
# broker exits or does not get there, prints "NAME did not start:" and the log and exits.
wait_started() {
    local name=$1 file=$2 ready=$3 spec v all
    shift 3
    for _ in $(seq 1 100); do
        all=1
        for spec in "$@"; do
            v=$(sed -nE "s/${spec#*=}/\1/p" "$file")
            printf -v "${spec%%=*}" '%s' "$v"
            [[ -n $v ]] || all=0
        done
        grep -q "$ready" "$file" && ((all)) && return 0
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    echo "$0: $name did not start:" >&2
    cat "$file" >&2
    exit 1
}

# pauses_start LOG: starts ferry-pausemeter (from $build) in the background, logging each pause
# of the machine's CPUs to LOG and its JSON summary to LOG.json; sets pm_pid. pauses_stop: stops
# it and waits until it has written both (not in a subshell: it waits for its own child).
pauses_start() {
    "$build/tools/ferry-pausemeter" --log "$1" >"$1.json" &
    pm_pid=$!
}
pauses_stop() {
    kill -INT "$pm_pid" 2>/dev/null || true
    wait "$pm_pid" || true
    pm_pid=
}

# stop: stops the broker $pid (its own child) and waits for it; clears pid.
stop() {
    kill "$pid" 2>/dev/null || true
    wait "$pid" || true
    pid=
}

# write_section BEGIN END SECTION [HEADING INTRO]: replaces the lines from the marker line BEGIN
# to the marker line END in $doc with the file SECTION (which holds the markers). If $doc has no
# BEGIN yet, first appends the two markers, after "## HEADING" and the paragraph INTRO if given.
write_section() {
    local begin=$1 end=$2 section=$3 out
    if ! grep -qF "$begin" "$doc"; then
        if [[ $# -gt 3 ]]; then
            printf '\n## %s\n\n%s\n%s\n%s\n' "$4" "$5" "$begin" "$end" >>"$doc"
        else
            printf '\n%s\n%s\n' "$begin" "$end" >>"$doc"
        fi
    fi
    out=$(mktemp)
    awk -v b="$begin" -v e="$end" -v f="$section" '
        $0 == b { while ((getline l < f) > 0) print l; skip = 1; next }
        $0 == e { skip = 0; next }
        !skip { print }' "$doc" >"$out"
    cp "$out" "$doc"
    rm -f "$out"
}

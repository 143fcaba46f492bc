#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Runs every libFuzzer target of a build (BUILD_DIR/tests/fuzz/fuzz_*) for SECONDS each, starting
# from the seeds in tests/fuzz/seeds/<name>/, and prints one summary line per target: executions,
# coverage (libFuzzer's cov: edges and ft: features from the last stats line), corpus size. The
# same as a Markdown table goes to BUILD_DIR/fuzz-run/summary.md and, with DOC, between the
# markers `<!-- fuzz-results:begin -->` and `<!-- fuzz-results:end -->` of DOC. Exits non-zero if
# a target crashes, leaks or times out, or if there are no targets at all.
# Usage: scripts/fuzz.sh BUILD_DIR SECONDS [DOC]   (`make fuzz` builds build-fuzz and calls this)
set -euo pipefail

usage() {
    echo "usage: $0 BUILD_DIR SECONDS" >&2
    exit 2
}

[ $# -eq 2 ] || [ $# -eq 3 ] || usage
build=$1
secs=$2
doc=${3:-}
[[ $secs =~ ^[1-9][0-9]*$ ]] || usage
[ -d "$build" ] || {
    echo "fuzz: no build directory $build" >&2
    exit 2
}

src=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=$(cd "$build" && pwd)
scratch=$build/fuzz-run # corpus, logs and crash artifacts of the last run

shopt -s nullglob
targets=()
for bin in "$build"/tests/fuzz/fuzz_*; do
    if [ -f "$bin" ] && [ -x "$bin" ]; then
        targets+=("$bin")
    fi
done
if [ ${#targets[@]} -eq 0 ]; then
    echo "fuzz: no fuzz targets in $build/tests/fuzz (configure with -DFERRY_FUZZ=ON and clang)" >&2
    exit 1
fi

# What went wrong, from the libFuzzer log and exit status.
classify() {
    local log=$1 rc=$2
    if [ "$rc" -eq 0 ]; then
        echo ok
    elif grep -q 'ERROR: LeakSanitizer' "$log"; then
        echo leak
    elif grep -q 'ERROR: libFuzzer: timeout' "$log"; then
        echo timeout
    elif grep -q 'ERROR: libFuzzer: out-of-memory' "$log"; then
        echo oom
    elif [ "$rc" -eq 124 ]; then
        echo hung
    elif grep -q -e 'ERROR: AddressSanitizer' -e 'ERROR: libFuzzer: deadly signal' \
        -e 'runtime error:' -e 'ERROR: libFuzzer' "$log"; then
        echo crash
    else
        echo "error(rc=$rc)"
    fi
}

failed=0
mkdir -p "$scratch"
summary=$scratch/summary.md
{
    echo "Run of $(date -u '+%Y-%m-%d %H:%M UTC'), ${secs} s per target (\`make fuzz FUZZ_SECONDS=$secs\`)."
    echo
    echo "| target | executions | exec/s | cov (edges) | ft (features) | corpus | seeds | result |"
    echo "| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |"
} >"$summary"
for bin in "${targets[@]}"; do
    name=${bin##*/fuzz_}
    corpus=$scratch/$name/corpus
    artifacts=$scratch/$name/artifacts
    log=$scratch/$name/fuzz.log
    rm -rf "${scratch:?}/$name"
    mkdir -p "$corpus" "$artifacts"
    seeds=$src/tests/fuzz/seeds/$name
    if [ -d "$seeds" ]; then
        cp -- "$seeds"/* "$corpus"/ 2>/dev/null || true
    else
        echo "fuzz: $name has no seeds in tests/fuzz/seeds/$name, starting empty" >&2
    fi

    rc=0
    # The outer timeout only guards against a fuzzer that ignores -max_total_time.
    timeout --signal=KILL $((secs * 2 + 120)) "$bin" \
        -max_total_time="$secs" -max_len=65536 -timeout=10 -rss_limit_mb=2048 \
        -print_final_stats=1 -artifact_prefix="$artifacts/" "$corpus" >"$log" 2>&1 || rc=$?

    result=$(classify "$log" "$rc")
    execs=$(sed -n 's/^stat::number_of_executed_units: *\([0-9]*\).*/\1/p' "$log" | tail -n 1)
    if [ -z "$execs" ]; then
        execs=$(grep -o '^#[0-9]*' "$log" | tail -n 1 | tr -d '#' || true)
    fi
    cov=$(grep -o 'cov: [0-9]*' "$log" | tail -n 1 | sed 's/cov: //' || true)
    ft=$(grep -o 'ft: [0-9]*' "$log" | tail -n 1 | sed 's/ft: //' || true)
    eps=$(sed -n 's/^stat::average_exec_per_sec: *\([0-9]*\).*/\1/p' "$log" | tail -n 1)
    corp=$(grep -o 'corp: [0-9]*' "$log" | tail -n 1 | sed 's/corp: //' || true)
    nseeds=0
    if [ -d "$seeds" ]; then
        nseeds=$(find "$seeds" -type f | wc -l)
    fi
    printf 'fuzz %-16s execs=%-10s cov: %-6s ft: %-6s corpus=%-5s result=%s\n' "$name" \
        "${execs:-?}" "${cov:-?}" "${ft:-?}" "${corp:-?}" "$result"
    printf '| %s | %s | %s | %s | %s | %s | %s | %s |\n' "$name" "${execs:-?}" "${eps:-?}" \
        "${cov:-?}" "${ft:-?}" "${corp:-?}" "$nseeds" "$result" >>"$summary"
    if [ "$result" != ok ]; then
        failed=$((failed + 1))
        echo "fuzz: $name failed, log $log" >&2
        for a in "$artifacts"/*; do
            echo "fuzz: reproduce with $bin $a" >&2
        done
        grep -m 20 -e 'ERROR:' -e 'SUMMARY:' -e 'runtime error:' "$log" >&2 || true
    fi
done

echo "fuzz: ${#targets[@]} target(s), $failed failed, ${secs}s each; table in $summary"
if [ -n "$doc" ]; then
    # The table replaces what lies between the markers (python3: portable multi-line edit).
    /usr/bin/python3 - "$doc" "$summary" <<'PY'
import sys
doc, summary = sys.argv[1], sys.argv[2]
begin, end = "<!-- fuzz-results:begin -->", "<!-- fuzz-results:end -->"
text = open(doc).read()
a, b = text.index(begin) + len(begin), text.index(end)
open(doc, "w").write(text[:a] + "\n" + open(summary).read() + text[b:])
PY
    echo "fuzz: table written into $doc"
fi
[ "$failed" -eq 0 ]

#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Runs the store benchmark cases (called by `make bench`), prints a Markdown table and rewrites
# the section between the store-bench markers in docs/benchmarks.md.
#   scripts/bench.sh BUILD_DIR          (BENCH_SECONDS=5 per case by default)
set -euo pipefail
# shellcheck source=scripts/bench-lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/bench-lib.sh"

bench_init "$@"
bench=$build/bench/ferry-store-bench
seconds=${BENCH_SECONDS:-5}
begin='<!-- store-bench:begin -->'
end='<!-- store-bench:end -->'

need_executables "make build" "$bench"

# The four cases: flush policy and batches in flight (one message each).
cases=("async 1" "async 64" "sync 1" "sync 64")

cpu=$(cpu_model)
fs=$(findmnt -no FSTYPE -T "${TMPDIR:-/tmp}" 2>/dev/null || stat -f -c %T "${TMPDIR:-/tmp}" 2>/dev/null || echo unknown)
table=$(mktemp)
section=$(mktemp)
trap 'rm -f "$table" "$section"' EXIT

{
    echo "| flush | in flight | msgs/s | MiB/s (payload) | mean group commit (msgs) | mean commit (µs) | mean ack latency (µs) |"
    echo "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"
} >"$table"
for c in "${cases[@]}"; do
    read -r flush inflight <<<"$c"
    echo "running: $bench --flush $flush --inflight $inflight --seconds $seconds --json" >&2
    out=$("$bench" --flush "$flush" --inflight "$inflight" --seconds "$seconds" --json)
    printf '| %s | %s | %s | %s | %s | %s | %s |\n' "$flush" "$inflight" \
        "$(field "$out" msgs_per_s)" "$(field "$out" mib_per_s)" "$(field "$out" mean_group)" \
        "$(field "$out" commit_us)" "$(field "$out" ack_us)" >>"$table"
done

{
    echo "$begin"
    echo "Measured $(date -u +%Y-%m-%d) on $(nproc) CPUs ($cpu), Linux $(uname -r), data directory"
    echo "on ${fs} (\`${TMPDIR:-/tmp}\`); ${seconds} s per case, 100-byte messages, 8 queues, one run."
    echo
    cat "$table"
    echo "$end"
} >"$section"

cat "$table"

if [[ ! -f $doc ]]; then
    cat >"$doc" <<'EOF'
# Benchmarks

Numbers from one run of `make bench` (which builds and then runs `scripts/bench.sh build`) on the
machine named in each section; they show orders of magnitude and regressions, not guarantees.
`make bench` rewrites the sections between the markers.

## Store appends

`ferry-store-bench` appends 100-byte messages to topic `bench` (8 queues, round robin) through
the store's writer thread. Each batch holds one message, so "in flight" is the number of
concurrent appenders; the writer group-commits whatever is queued into one LevelDB write (one
fsync under `flush sync`). "Mean group commit" is appends per LevelDB write, "mean commit" the
time of one LevelDB write, "mean ack latency" submit to completion callback.

<!-- store-bench:begin -->
<!-- store-bench:end -->
EOF
fi
write_section "$begin" "$end" "$section"
echo "updated $doc" >&2

#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# make torture: the crash loop across protocols (tests/torture/crash_loop.py) for ROUNDS SIGKILL
# rounds under flush=sync and ASYNC_ROUNDS under flush=async; the results table goes into
# docs/reliability.md. Exits non-zero when a run fails (and still writes the table).
# Usage: scripts/torture.sh BUILD_DIR [ROUNDS] [ASYNC_ROUNDS]
set -u
build=$1
rounds=${2:-100}
async_rounds=${3:-50}
src=$(cd "$(dirname "$0")/.." && pwd)
out=$build/torture
mkdir -p "$out"
rc=0
for run in "sync $rounds" "async $async_rounds"; do
    set -- $run
    echo "== crash loop: flush=$1, $2 rounds =="
    /usr/bin/python3 "$src/tests/torture/crash_loop.py" "$build/broker/ferryd" "$build/tools/ferryctl" \
        --rounds "$2" --flush "$1" --seconds-per-round 3-7 --allow-qos2-redelivery \
        --json "$out/crash_loop_$1.json" || rc=1
done
/usr/bin/python3 "$src/tests/torture/report.py" "$src/docs/reliability.md" \
    "$out/crash_loop_sync.json" "$out/crash_loop_async.json" || rc=1
echo "results table written into docs/reliability.md"
exit $rc

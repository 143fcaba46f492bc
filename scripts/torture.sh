#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# make torture: the crash loop across protocols (tests/torture/crash_loop.py) for ROUNDS SIGKILL
# rounds under flush=sync, ASYNC_ROUNDS under flush=async, and TERM_ROUNDS clean stops (SIGTERM
# under full load, flush=sync); then the hostile clients at full size (tests/torture/hostile.py
# --long, ~3 min). The results tables go into docs/reliability.md. Exits non-zero when a run
# fails (and still writes the tables).
# Usage: scripts/torture.sh BUILD_DIR [ROUNDS] [ASYNC_ROUNDS] [TERM_ROUNDS]
set -u
build=$1
rounds=${2:-100}
async_rounds=${3:-50}
term_rounds=${4:-30}
src=$(cd "$(dirname "$0")/.." && pwd)
out=$build/torture
mkdir -p "$out"
rc=0
for run in "kill sync $rounds 100" "kill async $async_rounds 100" \
    "term sync $term_rounds 0"; do
    set -- $run
    echo "== crash loop: SIG$1, flush=$2, $3 rounds, rate $4/s per producer (0: full load) =="
    /usr/bin/python3 "$src/tests/torture/crash_loop.py" "$build/broker/ferryd" "$build/tools/ferryctl" \
        --signal "$1" --flush "$2" --rounds "$3" --rate "$4" --seconds-per-round 3-7 \
        --drain-seconds 600 --json "$out/crash_loop_$1_$2.json" || rc=1
done
/usr/bin/python3 "$src/tests/torture/report.py" "$src/docs/reliability.md" \
    "$out/crash_loop_kill_sync.json" "$out/crash_loop_kill_async.json" \
    "$out/crash_loop_term_sync.json" || rc=1
echo "== hostile clients, long (tests/torture/hostile.py --long) =="
/usr/bin/python3 "$src/tests/torture/hostile.py" "$build/broker/ferryd" --long \
    --json "$out/hostile.json" --doc "$src/docs/reliability.md" || rc=1
echo "results tables written into docs/reliability.md"
exit $rc

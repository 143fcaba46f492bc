#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Checks: QoS 0, 1 and 2 publish/subscribe with mosquitto_pub -l (one message per stdin line) and
# mosquitto_sub -C N: exactly N messages, payloads exact and in order (one publisher, one topic),
# and each delivered at QoS min(published, granted) — read from the subscriber's debug lines.
# Also: an empty payload (-n) and a 64 KiB payload arrive intact.
. "$(dirname "$0")/lib.sh"

N=50
seq_payloads() {
    local i
    for i in $(seq 1 "$N"); do
        echo "msg-$1-$i payload with spaces ü"
    done
}

for sq in 0 1 2; do
    for pq in 0 1 2; do
        name="s${sq}p${pq}"
        sub_bg "$name" -t "$P/qos/$name" -q "$sq" -F 'M|%q|%p' -C "$N" -W "$DEADLINE"
        seq_payloads "$name" | pub -t "$P/qos/$name" -q "$pq" -l
        wait_exit "$name" || fail "$name: subscriber exited with $? (timeout = fewer than $N)"
        dq=$((sq < pq ? sq : pq))
        expect_eq "$name: payloads and delivered QoS" \
            "$(seq_payloads "$name" | sed "s/^/M|$dq|/")" "$(msgs "$name")"
        got=$(grep -c "received PUBLISH (d0, q$dq," "$T/$name.out" || true)
        expect_eq "$name: PUBLISH packets at QoS $dq" "$N" "$got"
    done
done

# Empty and large payloads.
head -c 32768 /dev/urandom | od -An -tx1 -v | tr -d ' \n' >"$T/big" # 65536 hex digits
sub_bg big -t "$P/size/#" -q 1 -F 'M|%t|%l' -C 2 -W "$DEADLINE"
pub -t "$P/size/empty" -q 1 -n
pub -t "$P/size/big" -q 1 -f "$T/big"
wait_exit big || fail "size subscriber exited with $?"
expect_eq "empty and 64 KiB payload lengths" "M|$P/size/big|65536
M|$P/size/empty|0" "$(msgs big | sort)"

# The large payload byte for byte.
sub_bg bigx -t "$P/size2" -q 2 -F '%p' -C 1 -W "$DEADLINE"
pub -t "$P/size2" -q 2 -f "$T/big"
wait_exit bigx || fail "big payload subscriber exited with $?"
msgs bigx | tr -d '\n' >"$T/big.got"
cmp -s "$T/big" "$T/big.got" || fail "64 KiB payload differs"
echo "ok"

#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Checks: mosquitto_sub and mosquitto_pub connect with each protocol version (-V mqttv31 = 3.1,
# mqttv311 = 3.1.1, mqttv5 = 5.0), get CONNACK accepted, and a message crosses every pair of
# versions (3.1 -> 5, 5 -> 3.1.1, 3.1.1 -> 3.1) with its topic and payload intact.
. "$(dirname "$0")/lib.sh"

for v in mqttv31 mqttv311 mqttv5; do
    sub_bg "s_$v" -V "$v" -t "$P/v/#" -F 'M|%t|%p' -C 3 -W "$DEADLINE"
    grep -q "received CONNACK (0)" "$T/s_$v.out" || fail "$v: CONNACK not accepted"
done

pub -V mqttv31 -t "$P/v/from31" -m "hello from 3.1"
pub -V mqttv5 -t "$P/v/from5" -m "hello from 5"
pub -V mqttv311 -t "$P/v/from311" -m "hello from 3.1.1"

want="M|$P/v/from31|hello from 3.1
M|$P/v/from5|hello from 5
M|$P/v/from311|hello from 3.1.1"
for v in mqttv31 mqttv311 mqttv5; do
    wait_exit "s_$v" || fail "$v subscriber exited with $?"
    # sorted: order is kept per topic only (Ferry spreads topics over queues)
    expect_eq "messages at the $v subscriber" "$(echo "$want" | sort)" "$(msgs "s_$v" | sort)"
done
echo "ok"

#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Checks MQTT 5 PUBLISH properties set with mosquitto_pub -V mqttv5 -D PUBLISH ...: user properties
# (two, one key repeated, order kept), content type, response topic, correlation data, message
# expiry interval (forwarded, reduced by the time waited: at most the value sent), payload format
# indicator — all arrive at a v5 subscriber (-F %P %C %R %D %E %F), at QoS 0, 1 and 2; a 3.1.1
# subscriber of the same topic gets the same topic and payload.
. "$(dirname "$0")/lib.sh"

for q in 0 1 2; do
    sub_bg v5_$q -V mqttv5 -t "$P/props/$q" -q 2 -F 'M|%t|%q|%P|%C|%R|%D|%F|%p' -C 1 -W "$DEADLINE"
    sub_bg e_$q -V mqttv5 -t "$P/props/$q" -q 2 -F 'E|%E' -C 1 -W "$DEADLINE"
    sub_bg v3_$q -V mqttv311 -t "$P/props/$q" -q 2 -v -C 1 -W "$DEADLINE"
    pub -V mqttv5 -t "$P/props/$q" -q "$q" -m "payload $q" \
        -D PUBLISH user-property "k" "v1" -D PUBLISH user-property "k2" "x y" \
        -D PUBLISH user-property "k" "v2" \
        -D PUBLISH content-type "application/json" \
        -D PUBLISH response-topic "$P/reply/$q" \
        -D PUBLISH correlation-data "corr-$q" \
        -D PUBLISH message-expiry-interval 3600 \
        -D PUBLISH payload-format-indicator 1
    for s in v5 e v3; do
        wait_exit "${s}_$q" || fail "${s}_$q exited with $?"
    done
    expect_eq "QoS $q: v5 subscriber's properties" \
        "M|$P/props/$q|$q|k:v1 k2:x y k:v2|application/json|$P/reply/$q|corr-$q|1|payload $q" \
        "$(msgs v5_$q)"
    e=$(msgs e_$q | sed 's/^E|//')
    if ! [[ "$e" =~ ^[0-9]+$ ]] || [ "$e" -gt 3600 ] || [ "$e" -lt 3590 ]; then
        fail "QoS $q: message expiry interval '$e', want 3590..3600"
    fi
    expect_eq "QoS $q: 3.1.1 subscriber" "$P/props/$q payload $q" "$(msgs v3_$q)"
done

# A message without properties arrives without them (no expiry, no content type, ...).
sub_bg none -V mqttv5 -t "$P/plain" -q 1 -F 'M|%P|%C|%R|%D|%E|%F|%p' -C 1 -W "$DEADLINE"
pub -V mqttv5 -t "$P/plain" -q 1 -m "plain"
wait_exit none || fail "plain subscriber exited with $?"
expect_eq "no properties" "M|||||||plain" "$(msgs none)"
echo "ok"

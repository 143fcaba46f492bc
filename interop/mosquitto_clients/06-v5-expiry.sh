#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Checks MQTT 5 message expiry in the broker: a retained message whose expiry interval has passed
# is not delivered to a new subscriber, one that has not is delivered with its interval reduced by
# the time it waited; a message queued for an offline persistent session (-c -x) that expires while
# the session is offline is dropped, one without expiry is delivered on reconnect.
. "$(dirname "$0")/lib.sh"

id="$P-sess"
# Create the persistent session (session expiry 300 s) and go offline.
timeout "$DEADLINE" mosquitto_sub "${H[@]}" -V mqttv5 -c -x 300 -i "$id" -q 1 -t "$P/q" -E ||
    fail "creating the session failed"

start=$SECONDS
pub -V mqttv5 -t "$P/ret/short" -q 1 -r -m "short" -D PUBLISH message-expiry-interval 1
pub -V mqttv5 -t "$P/ret/long" -q 1 -r -m "long" -D PUBLISH message-expiry-interval 60
pub -V mqttv5 -t "$P/q" -q 1 -m "expires" -D PUBLISH message-expiry-interval 1
pub -V mqttv5 -t "$P/q" -q 1 -m "keeps"

# Wait (bounded by construction) until both 1 s intervals have surely passed.
while [ $((SECONDS - start)) -lt 3 ]; do
    sleep 0.1
done

sub_bg r -V mqttv5 -t "$P/ret/#" -q 1 -F 'M|%t|%r|%E|%p' -C 1 -W "$DEADLINE"
wait_exit r || fail "retained subscriber exited with $?"
line=$(msgs r)
case "$line" in
"M|$P/ret/long|1|"*"|long") ;;
*) fail "want only the unexpired retained message, got: $line" ;;
esac
e=$(echo "$line" | cut -d'|' -f4)
if ! [[ "$e" =~ ^[0-9]+$ ]] || [ "$e" -gt 58 ] || [ "$e" -lt 40 ]; then
    fail "retained message expiry interval $e after waiting >= 2 s, want 40..58"
fi

sub_bg s -V mqttv5 -c -x 300 -i "$id" -q 1 -t "$P/q" -F 'M|%p' -C 2 -W "$DEADLINE"
pub -V mqttv5 -t "$P/q" -q 1 -m "live"
wait_exit s || fail "session subscriber exited with $?"
expect_eq "offline queue after expiry" "M|keeps
M|live" "$(msgs s)"
echo "ok"

#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Checks last will: a client holding a will (3.1.1, and 5.0 with will properties) that dies without
# DISCONNECT (SIGKILL, the kernel closes its socket) has its will published with topic, payload and
# QoS; a client that disconnects normally has its will discarded.
. "$(dirname "$0")/lib.sh"

sub_bg w -t "$P/will/#" -q 2 -F 'M|%t|%q|%p' -C 3 -W "$DEADLINE"
sub_bg w5 -V mqttv5 -t "$P/will/v5" -q 1 -F 'M|%t|%C|%P|%p' -C 1 -W "$DEADLINE"

# 3.1.1 client with a will, killed.
sub_bg dier -t "$P/dier/in" --will-topic "$P/will/a" --will-payload "a died" --will-qos 1 -k 60
kill9 dier
wait_for w "^M|$P/will/a|" 1

# A normal disconnect discards the will: the next message after it is "after", not the will.
pub -t "$P/other" -m "hi" --will-topic "$P/will/b" --will-payload "must not be sent"
pub -t "$P/will/c" -q 1 -m "after"
wait_for w "^M|$P/will/c|" 1

# 5.0 client with will properties, killed.
sub_bg dier5 -V mqttv5 -t "$P/dier/in" --will-topic "$P/will/v5" --will-payload "v5 died" \
    --will-qos 2 -D will content-type "text/plain" -D will user-property "who" "dier5" -k 60
kill9 dier5
wait_exit w || fail "will subscriber exited with $?"
wait_exit w5 || fail "v5 will subscriber exited with $?"

expect_eq "wills and messages in order" "M|$P/will/a|1|a died
M|$P/will/c|1|after
M|$P/will/v5|2|v5 died" "$(msgs w)"
expect_eq "v5 will with its properties" "M|$P/will/v5|text/plain|who:dier5|v5 died" "$(msgs w5)"
echo "ok"

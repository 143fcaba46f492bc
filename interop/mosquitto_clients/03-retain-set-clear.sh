#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Checks retained messages with mosquitto_pub -r: a new subscriber gets the last retained message
# at once with the RETAIN flag set, then live messages with RETAIN 0; a wildcard subscriber gets the
# retained message of every matching topic; an empty retained publish (-r -n) is delivered to
# current subscribers as a normal (empty) message and clears the retained message, so a later
# subscriber gets nothing retained (the first thing it receives is the next live message).
. "$(dirname "$0")/lib.sh"

pub -t "$P/ret/a" -q 1 -r -m "old"
pub -t "$P/ret/a" -q 1 -r -m "new"

# Retained first (r=1), then a live one (r=0): a message published after SUBACK is live.
sub_bg s1 -t "$P/ret/a" -q 1 -F 'M|%r|%p' -C 3 -W "$DEADLINE"
wait_for s1 '^M|' 1
pub -t "$P/ret/a" -q 1 -m "live"

# Wildcard: every retained message under the filter.
pub -t "$P/ret/w/x" -q 1 -r -m "x"
pub -t "$P/ret/w/y/z" -q 2 -r -m "yz"
sub_bg s2 -t "$P/ret/w/#" -q 2 -F 'M|%r|%t|%p' -C 2 -W "$DEADLINE"
wait_exit s2 || fail "wildcard subscriber exited with $?"
expect_eq "retained messages under $P/ret/w/#" "M|1|$P/ret/w/x|x
M|1|$P/ret/w/y/z|yz" "$(msgs s2 | sort)"

# Clear: s1 (subscribed) receives the empty publish as a normal message.
pub -t "$P/ret/a" -q 1 -r -n
wait_exit s1 || fail "s1 exited with $?"
expect_eq "s1: retained, live, then the empty clearing message" "M|1|new
M|0|live
M|0|" "$(msgs s1)"

# A later subscriber gets no retained message: the first message it sees is the next live one.
sub_bg s3 -t "$P/ret/a" -q 1 -F 'M|%r|%p' -C 1 -W "$DEADLINE"
pub -t "$P/ret/a" -q 1 -m "after clear"
wait_exit s3 || fail "s3 exited with $?"
expect_eq "s3 after the retained message was cleared" "M|0|after clear" "$(msgs s3)"
echo "ok"

#!/bin/bash
# SPDX-License-Identifier: MIT
#
# The closing message, and what each side does after it (dbus/org.shadowmesh1.Tunnel.txt,
# "States"). a initiates (peer.address is b), b waits. Each case prints how long the other
# side took to leave `connected`; the bound is 1 s (the message is sent, and opened on the rx
# thread, at once; the rest is the test's 0.1 s polling):
#  - b stopped with Ctrl+C (SIGINT): a -> reconnecting within 1 s, Path none; b started again:
#    a connected again within 5 s (its first retry after a close comes after 1 s);
#  - a stopped with SIGTERM (what `systemctl stop` sends): b -> waiting within 1 s, Path none,
#    Endpoint ""; a started again: connected;
#  - Disconnect on a: a is disconnected, b -> waiting within 1 s; a refuses b until Connect
#    (Disconnect again: NotConnected); Connect on a: both connected;
#  - Disconnect on b, the waiting side: b is disconnected, a -> reconnecting within 1 s, a's
#    retries are refused (b stays disconnected, a does not connect); Connect on b: connected.
# At each step shadowmeshctl, D-Bus and the HTTP API report the same state.

# shellcheck disable=SC2317
set -euo pipefail
# shellcheck source=tests/netns/faults-lib.sh
source "$(dirname "$(readlink -f "$0")")/faults-lib.sh"

faults_init 23

start_node b
check "b up" wait_until 10 node_up b
check "b waiting" wait_until 5 state_is b waiting
check "b: the same state everywhere (waiting)" same_state_everywhere b Waiting
start_node a
check "a up" wait_until 10 node_up a
both_connected() { state_is a connected && state_is b connected; }
check "a and b connected" wait_until 15 both_connected
check "a: the same state everywhere (connected)" same_state_everywhere a Connected
check "b: the same state everywhere (connected)" same_state_everywhere b Connected
check "ping a->b" wait_ping 10 "$NS_A" "$TUN4_B"

# left_connected LABEL NAME T0: NAME is no longer connected within 1 s of T0 (ms).
left_connected() {
        local label=$1 name=$2 t0=$3 t
        if wait_until 3 state_is_not "$name" connected; then
                t=$(($(now_ms) - t0))
                echo "# $label: $name left connected after $((t / 1000)).$(((t % 1000) / 100)) s ($(prop "$name" State))"
                check "$label: $name leaves connected within 1 s (took $t ms)" test "$t" -le 1000
        else
                fail "$label: $name leaves connected within 1 s (still connected after 3 s)"
        fi
}

# ---- Ctrl+C on b ------------------------------------------------------------------------------
t0=$(now_ms)
if stop_daemon b INT 10; then
        pass "SIGINT b: exits (status $EXIT_CODE)"
else
        fail "SIGINT b: exits"
fi
left_connected "Ctrl+C on b" a "$t0"
check_eq "Ctrl+C on b: a is reconnecting" "$(prop a State)" reconnecting
check_eq "Ctrl+C on b: a's Path is none" "$(prop a Path)" none
check "Ctrl+C on b: b said it sent the closing message" log_has b "sent the peer a closing message"
check "Ctrl+C on b: a logged the close, once" test "$(log_count a "closed the tunnel")" -eq 1
check "a: the same state everywhere (reconnecting)" same_state_everywhere a Reconnecting
t0=$(now_ms)
start_node b
check "restarted b: up" wait_until 10 node_up b
timed "restarted b: a and b connected again" 5 both_connected
check "restarted b: ping a->b" wait_ping 10 "$NS_A" "$TUN4_B"

# ---- SIGTERM on a (systemctl stop) ------------------------------------------------------------
t0=$(now_ms)
if stop_daemon a TERM 10; then
        pass "SIGTERM a: exits (status $EXIT_CODE)"
else
        fail "SIGTERM a: exits"
fi
left_connected "SIGTERM on a" b "$t0"
check_eq "SIGTERM on a: b, which waited for a, is waiting again" "$(prop b State)" waiting
check_eq "SIGTERM on a: b's Path is none" "$(prop b Path)" none
check_eq "SIGTERM on a: b's Endpoint is empty" "$(prop b Endpoint)" ""
check "b: the same state everywhere (waiting)" same_state_everywhere b Waiting
start_node a
check "restarted a: up" wait_until 10 node_up a
timed "restarted a: a and b connected again" 5 both_connected

# ---- Disconnect on a --------------------------------------------------------------------------
t0=$(now_ms)
check "Disconnect on a: succeeds" call a Disconnect
check_eq "Disconnect on a: a is disconnected" "$(prop a State)" disconnected
left_connected "Disconnect on a" b "$t0"
check_eq "Disconnect on a: b is waiting" "$(prop b State)" waiting
check "a: the same state everywhere (disconnected)" same_state_everywhere a Disconnected
check "b: the same state everywhere (waiting)" same_state_everywhere b Waiting
check_not "Disconnect on a: a second Disconnect fails" call a Disconnect
check_has "... with NotConnected's message" "$CALL_OUT" "No peer is connected"
# What a then does: nothing toward b, and it stays disconnected while pinged through.
check_not "Disconnect on a: no ping a->b" ping_ok "$NS_A" "$TUN4_B"
check_eq "Disconnect on a: a is still disconnected" "$(prop a State)" disconnected
t0=$(now_ms)
check "Connect on a: succeeds" call a Connect 'sa{sv}' "$UNDER_B:$PORT" 0
echo "# Connect on a: took $(secs_since "$t0") s"
check "Connect on a: both connected" wait_until 5 both_connected
check "Connect on a: ping a->b" wait_ping 10 "$NS_A" "$TUN4_B"

# ---- Disconnect on b, the side that waited ----------------------------------------------------
t0=$(now_ms)
check "Disconnect on b: succeeds" call b Disconnect
check_eq "Disconnect on b: b is disconnected" "$(prop b State)" disconnected
left_connected "Disconnect on b" a "$t0"
check_eq "Disconnect on b: a, which holds b's address, is reconnecting" "$(prop a State)" \
        reconnecting
# a's first retry comes after about 1 s: b refuses it and stays disconnected.
check "Disconnect on b: b refuses a's handshake" wait_log b "ignored handshake from" 10
check_eq "Disconnect on b: b is still disconnected" "$(prop b State)" disconnected
check_not "Disconnect on b: a does not connect" state_is a connected
check "a: the same state everywhere (reconnecting)" same_state_everywhere a Reconnecting
check "b: the same state everywhere (disconnected)" same_state_everywhere b Disconnected
check "Connect on b (to a): succeeds" call b Connect 'sa{sv}' "$UNDER_A:$PORT" 0
check "Connect on b: both connected" wait_until 5 both_connected
check "Connect on b: ping a->b" wait_ping 10 "$NS_A" "$TUN4_B"

summary

#!/bin/bash
# SPDX-License-Identifier: MIT
#
# Dead-peer detection without a closing message (timers.c rules 4b, 8 and 1):
#  - an idle tunnel (no traffic at all) stays `connected` on both sides for 25 s: each side
#    sends a keepalive after 5 s without sending, well inside the 15 s window;
#  - b killed with SIGKILL (a crash, a pulled cable: no goodbye) while idle: a says `connected`
#    for as long as an authenticated packet came within keepalive + rekey-timeout (15 s), so
#    still at 9 s after the kill (b's last keepalive is at most 5 s older than the kill), and
#    `reconnecting` within 16 s of the kill, with Path none; the time is printed;
#  - a's retries give up after 90 s: State `failed`, FailureReason names the peer and the
#    attempts, Path none (never "direct" on a dead path); shadowmeshctl shows the reason;
#  - b started again and pinged from a: a is connected again (failed -> reconnecting ->
#    connected on traffic), FailureReason empty.

# shellcheck disable=SC2317
set -euo pipefail
# shellcheck source=tests/netns/faults-lib.sh
source "$(dirname "$(readlink -f "$0")")/faults-lib.sh"

faults_init 24

start_node b
check "b up" wait_until 10 node_up b
start_node a
check "a up" wait_until 10 node_up a
both_connected() { state_is a connected && state_is b connected; }
check "a and b connected" wait_until 15 both_connected

# stays NAME STATE SECONDS: NAME's State is STATE at every 0.5 s sample for SECONDS.
stays() {
        local end=$(($(now_ms) + $3 * 1000)) s
        while (($(now_ms) < end)); do
                s=$(prop "$1" State)
                [[ $s == "$2" ]] || { echo "# $1 is $s, not $2"; return 1; }
                sleep 0.5
        done
}
check "idle for 25 s: a stays connected" stays a connected 25
check "... and so does b" state_is b connected

# ---- b crashes --------------------------------------------------------------------------------
T_KILL=$(now_ms)
if stop_daemon b KILL 10; then
        pass "SIGKILL b: exits"
else
        fail "SIGKILL b: exits"
fi
check "a: still connected 9 s after the kill (15 s since b's last keepalive not yet over)" \
        stays a connected $((9 - ($(now_ms) - T_KILL) / 1000))
if wait_until 10 state_is a reconnecting; then
        t=$(($(now_ms) - T_KILL))
        echo "# b crashed: a reconnecting after $((t / 1000)).$(((t % 1000) / 100)) s"
        check "a: reconnecting within 16 s of the kill (took $t ms)" test "$t" -le 16000
else
        fail "a: reconnecting within 16 s of the kill ($(prop a State))"
fi
check_eq "a: Path none while reconnecting" "$(prop a Path)" none
check "a: says why" log_has a "nothing authenticated from the peer for 15 s"

# ---- retries give up --------------------------------------------------------------------------
# The handshake started at the 15 s mark is retried every 5 s for 90 s.
if wait_until 100 state_is a failed; then
        echo "# a failed after $(secs_since "$T_KILL") s: $(prop a FailureReason)"
        pass "a: failed when retries gave up"
else
        fail "a: failed when retries gave up ($(prop a State))"
fi
check_has "a: FailureReason names the peer" "$(prop a FailureReason)" "$UNDER_B:$PORT"
check_has "a: ... and the attempts" "$(prop a FailureReason)" "attempts"
check_eq "a: Path none when failed" "$(prop a Path)" none
check_has "shadowmeshctl shows the reason" "$("$SHADOWMESHCTL" -i a status 2>&1)" "Reason:"
check "a: the same state everywhere (failed)" same_state_everywhere a Failed

# ---- b comes back; traffic from a reconnects ---------------------------------------------------
start_node b
check "restarted b: up" wait_until 10 node_up b
check "a: ping a->b (the traffic retries)" wait_ping 15 "$NS_A" "$TUN4_B"
check "a and b connected again" wait_until 10 both_connected
check_eq "a: FailureReason empty again" "$(prop a FailureReason)" ""
check_eq "a: Path direct again" "$(prop a Path)" direct

summary
